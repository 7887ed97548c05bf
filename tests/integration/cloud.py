"""A cloud for the uplink tests: a real Debian mosquitto on loopback with
mTLS behind a gate that refuses what AWS IoT Core refuses, clients that
watch it, and fakes of AWS IoT's shadow and jobs services running on it.

`CloudBroker` is one mosquitto with its own CA (made by `sedgectl ca init
--core-name cloud-broker`, so its certificate names localhost and
127.0.0.1). It keeps sessions in a persistence file across stop and start,
like a real cloud broker would, unless told to forget them, so a test can
stop and restart the cloud without losing what it had acknowledged.

The core reaches it through `AwsGate` (`endpoint`): a TLS endpoint with
the same certificates that relays MQTT to mosquitto as the same identity
and applies AWS IoT Core's message broker quotas the way AWS does —
at most 8 filters a SUBSCRIBE, topics of 256 bytes and 7 slashes, payloads
of 128 KB (an MQTT 3.1.1 client that breaks one is disconnected), and,
when a test sets them, the publish and byte rates per connection (a
throttled MQTT 3.1.1 publish gets no PUBACK, an MQTT 5 one PUBACK 0x97) and
a policy of denied topics. The cloud's own clients (observers, the fake
services) connect to mosquitto directly (`direct_endpoint`).

`CloudClient` is a paho client on that broker: it reconnects on its own,
keeps a persistent session (QoS 1 subscriptions are re-made on every
connect) and records every message it receives. `FakeShadows` and
`FakeJobs` are such clients answering AWS IoT's Device Shadow and Jobs MQTT
topics from documents kept in memory.

Use `make_cloud` for brokers, `cloud_config()` for the "cloud" section of
sedged's config, and `deploy()` to deploy a group document.
"""

import asyncio
import collections
import copy
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from conftest import TIMEOUT, free_port, issue_cert, make_ca, wait_for
from groups_helpers import deploy, deploy_ok, deployments  # noqa: F401 (the tests' one copy)

MOSQUITTO = "/usr/sbin/mosquitto"
SYNC_TOKEN = "sedge-sync"


def is_sync_token(token):
    """The shadow sync's client token: "sedge-sync" on its local changes,
    "sedge-sync:RUN-N" (one per request) on its requests to the cloud."""
    return isinstance(token, str) and (token == SYNC_TOKEN or token.startswith(SYNC_TOKEN + ":"))


class CloudBroker:
    """One mosquitto acting as the cloud: listener on 127.0.0.1:mqtt_port
    with mTLS (the client certificate's CN is the username), and the AWS
    gate in front of it on 127.0.0.1:port."""

    def __init__(self, root, server_ca_dir=None, acl=None, aws=None):
        self.root = Path(root)
        self.acl = acl  # the text of a mosquitto acl_file, or None
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.certs = self.root / "certs"
        make_ca(self.certs, core_name="cloud-broker")
        # The certificate the broker presents (another CA's, to test TLS
        # failures); clients are always verified against our own CA.
        self.server_certs = Path(server_ca_dir) if server_ca_dir else self.certs
        self.port = free_port()  # the gate's
        self.mqtt_port = free_port()  # mosquitto's
        self.gate = AwsGate(self, **(aws or {}))
        self.conf_path = self.root / "mosquitto.conf"
        self.log_path = self.root / "mosquitto.log"
        self.db_dir = self.root / "db"
        self.db_dir.mkdir(exist_ok=True)
        self.proc = None
        self.starts = 0
        self.links = []

    @property
    def endpoint(self):
        """Through the AWS gate."""
        return "localhost:%d" % self.port

    @property
    def direct_endpoint(self):
        """mosquitto itself: a cloud without AWS's limits."""
        return "localhost:%d" % self.mqtt_port

    @property
    def ca_file(self):
        return self.certs / "ca.pem"

    def issue(self, name):
        """A client certificate (pem, key) from the cloud's CA."""
        pem, key = self.certs / (name + ".pem"), self.certs / (name + ".key")
        if not pem.exists():
            issue_cert(self.certs, name)
        return pem, key

    def present_certificate_of(self, ca_dir):
        """Present D/core.pem (of another CA, say) from the next start."""
        self.server_certs = Path(ca_dir)

    def write_conf(self):
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            "persistence true",
            "persistence_location %s/" % self.db_dir,
            "autosave_interval 0",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            "log_dest file %s" % self.log_path,
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
            "listener %d 127.0.0.1" % self.mqtt_port,
            "cafile %s" % (self.certs / "ca.pem"),
            "certfile %s" % (self.server_certs / "core.pem"),
            "keyfile %s" % (self.server_certs / "core.key"),
            "require_certificate true",
            "use_identity_as_username true",
        ]
        if self.acl is not None:
            acl_path = self.root / "acl"
            acl_path.write_text(self.acl)
            lines.insert(0, "acl_file %s" % acl_path)
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=TIMEOUT):
        assert not self.running(), "the cloud broker is already running"
        self.write_conf()
        with open(self.root / "mosquitto.stderr", "ab") as err:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s:\n%s\n%s" % (
                    self.proc.returncode, self.log()[-3000:],
                    (self.root / "mosquitto.stderr").read_text()[-3000:]))
            try:
                with socket.create_connection(("127.0.0.1", self.mqtt_port), timeout=1):
                    self.gate.start()
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto not listening on %d after %d s" % (
                    self.port, timeout))
            time.sleep(0.02)

    def stop(self, forget_sessions=False, timeout=TIMEOUT):
        """SIGTERM (mosquitto saves its sessions and their queues); with
        forget_sessions the saved state is deleted, as if the cloud lost
        every session."""
        self.gate.stop()
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if forget_sessions:
            for f in self.db_dir.iterdir():
                f.unlink()

    def restart(self, forget_sessions=False):
        self.stop(forget_sessions)
        return self.start()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self, name, **kw):
        return CloudClient(self, name, **kw)

    def slow_link(self, rate):
        """A SlowLink to this broker (closed at teardown)."""
        link = SlowLink(self, rate)
        self.links.append(link)
        return link


def _varint(data, pos):
    """(value, next position) of an MQTT variable byte integer at pos."""
    value, shift = 0, 0
    for i in range(4):
        b = data[pos + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos + i + 1
        shift += 7
    raise ValueError("malformed variable byte integer")


async def _read_packet(reader):
    """(whole packet, first byte, body) of one MQTT packet, or None at the
    end of the stream."""
    head = await reader.read(1)
    if not head:
        return None
    lenbytes = b""
    while True:
        b = await reader.readexactly(1)
        lenbytes += b
        if not b[0] & 0x80:
            break
        if len(lenbytes) == 4:
            raise ValueError("malformed remaining length")
    length, _ = _varint(lenbytes, 0)
    body = await reader.readexactly(length) if length else b""
    return head + lenbytes + body, head[0], body


def aws_counted_slashes(topic):
    """Forward slashes as AWS IoT Core counts them: not those of a Basic
    Ingest prefix $aws/rules/RULE/."""
    n = topic.count("/")
    if topic.lower().startswith("$aws/rules/") and "/" in topic[len("$aws/rules/"):]:
        n -= 3
    return n


class AwsGate:
    """AWS IoT Core's message broker quotas in front of mosquitto. Every
    refusal is recorded in `events` as (kind, detail): "disconnect" (a
    client broke a limit and was cut off), "refused" (MQTT 5: a PUBACK with
    a failure code), "throttled". `subscribes` holds the filters of every
    SUBSCRIBE, a list a packet; `connects` the time of every CONNECT;
    `forwarded` (topic, payload, retain) of every PUBLISH passed on."""

    def __init__(self, broker, max_filters=8, max_topic_bytes=256, max_topic_slashes=7,
                 max_payload_bytes=128 * 1024, publishes_per_s=None, bytes_per_s=None,
                 deny_topics=()):
        self.broker = broker
        self.max_filters = max_filters
        self.max_topic_bytes = max_topic_bytes
        self.max_topic_slashes = max_topic_slashes
        self.max_payload_bytes = max_payload_bytes
        self.publishes_per_s = publishes_per_s
        self.bytes_per_s = bytes_per_s
        self.deny_topics = list(deny_topics)  # topic prefixes the policy refuses
        self.lock = threading.Lock()
        self.events = []
        self.subscribes = []
        self.connects = []
        self.forwarded = []
        self.loop = None
        self.thread = None
        self.server = None
        self.writers = set()
        self.identities = {}

    # -- what a test looks at
    def events_of(self, kind):
        with self.lock:
            return [e[1] for e in self.events if e[0] == kind]

    def snapshot(self):
        with self.lock:
            return list(self.forwarded)

    def subscribed(self):
        """Every filter subscribed through the gate."""
        with self.lock:
            return [f for packet in self.subscribes for f in packet]

    def _event(self, kind, detail):
        with self.lock:
            self.events.append((kind, detail))

    # -- lifecycle
    def start(self):
        if self.thread:
            return
        ready = threading.Event()
        failure = []

        def run():
            self.loop = asyncio.new_event_loop()
            # Handshakes refused on purpose and connections cut are not news.
            self.loop.set_exception_handler(lambda loop, ctx: None)
            try:
                self.server = self.loop.run_until_complete(asyncio.start_server(
                    self._serve, "127.0.0.1", self.broker.port, ssl=self._server_context(),
                    reuse_address=True))
            except Exception as e:  # start() reports it
                failure.append(e)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(TIMEOUT)
        if failure:
            self.thread.join(TIMEOUT)
            self.thread = None
            raise RuntimeError("the AWS gate cannot listen on %d: %s" % (self.broker.port,
                                                                        failure[0]))

    def stop(self):
        if not self.thread:
            return
        done = threading.Event()

        def close():
            self.server.close()
            for w in list(self.writers):
                w.transport.abort()
            self.writers.clear()
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.call_later(0.05, self.loop.stop)
            done.set()
        self.loop.call_soon_threadsafe(close)
        done.wait(TIMEOUT)
        self.thread.join(TIMEOUT)
        self.thread = None

    def _server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        certs = self.broker.server_certs
        ctx.load_cert_chain(str(certs / "core.pem"), str(certs / "core.key"))
        ctx.load_verify_locations(str(self.broker.ca_file))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def _client_context(self, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # loopback, to our own mosquitto
        if name not in self.identities:
            self.identities[name] = self.broker.issue(name)
        pem, key = self.identities[name]
        ctx.load_cert_chain(str(pem), str(key))
        return ctx

    # -- one connection
    async def _serve(self, reader, writer):
        peer = writer.get_extra_info("peercert") or {}
        name = None
        for rdn in peer.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    name = v
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.broker.mqtt_port, ssl=self._client_context(name))
        except (OSError, ssl.SSLError):
            writer.transport.abort()
            self.writers.discard(writer)
            return
        self.writers.add(up_writer)
        conn = {"version": 4, "sent": collections.deque()}
        down = asyncio.ensure_future(self._to_client(up_reader, writer))
        try:
            await self._to_cloud(reader, writer, up_writer, conn)
        except (OSError, asyncio.IncompleteReadError, ValueError, ssl.SSLError,
                asyncio.CancelledError):
            pass
        finally:
            for w in (writer, up_writer):
                w.transport.abort()
                self.writers.discard(w)
            down.cancel()

    async def _to_client(self, up_reader, writer):
        try:
            while True:
                pkt = await _read_packet(up_reader)
                if pkt is None:
                    break
                writer.write(pkt[0])
        except (OSError, asyncio.IncompleteReadError, ValueError, ssl.SSLError,
                asyncio.CancelledError):
            pass
        writer.transport.abort()

    def _cut(self, writer, conn, why, v5_reason=None):
        """AWS's answer to a client that broke a limit: the end of its
        connection (MQTT 5 is told why first)."""
        self._event("disconnect", why)
        if conn["version"] == 5 and v5_reason is not None:
            writer.write(bytes([0xE0, 2, v5_reason, 0]))
        raise ValueError(why)

    def _topic_problem(self, topic):
        raw = topic.encode()
        if self.max_topic_bytes and len(raw) > self.max_topic_bytes:
            return "topic of %d bytes: %s..." % (len(raw), topic[:60])
        if self.max_topic_slashes and aws_counted_slashes(topic) > self.max_topic_slashes:
            return "topic with %d slashes: %s" % (aws_counted_slashes(topic), topic)
        return None

    def _throttled(self, conn, size):
        """Over the publishes or bytes a connection may send in a second?"""
        now = time.monotonic()
        sent = conn["sent"]
        while sent and sent[0][0] <= now - 1:
            sent.popleft()
        if self.publishes_per_s and len(sent) >= self.publishes_per_s:
            return True
        if self.bytes_per_s and sum(b for _, b in sent) + size > self.bytes_per_s:
            return True
        sent.append((now, size))
        return False

    async def _to_cloud(self, reader, writer, up_writer, conn):
        while True:
            pkt = await _read_packet(reader)
            if pkt is None:
                return
            raw, first, body = pkt
            kind = first >> 4
            if kind == 1:  # CONNECT
                name_len = struct.unpack(">H", body[:2])[0]
                conn["version"] = body[2 + name_len]
                with self.lock:
                    self.connects.append(time.monotonic())
            elif kind == 8:  # SUBSCRIBE
                pos = 2
                if conn["version"] == 5:
                    plen, pos = _varint(body, pos)
                    pos += plen
                filters = []
                while pos < len(body):
                    n = struct.unpack(">H", body[pos:pos + 2])[0]
                    filters.append(body[pos + 2:pos + 2 + n].decode(errors="replace"))
                    pos += 3 + n
                with self.lock:
                    self.subscribes.append(filters)
                if self.max_filters and len(filters) > self.max_filters:
                    self._cut(writer, conn, "SUBSCRIBE with %d filters" % len(filters), 0x97)
                for f in filters:
                    why = self._topic_problem(f)
                    if why:
                        self._cut(writer, conn, "subscription to a " + why, 0x8F)
            elif kind == 3:  # PUBLISH
                qos = (first >> 1) & 3
                n = struct.unpack(">H", body[:2])[0]
                topic = body[2:2 + n].decode(errors="replace")
                pos = 2 + n
                pid = None
                if qos:
                    pid = struct.unpack(">H", body[pos:pos + 2])[0]
                    pos += 2
                if conn["version"] == 5:
                    plen, pos = _varint(body, pos)
                    pos += plen
                payload = body[pos:]

                def answer(code):
                    if qos == 1:
                        writer.write(bytes([0x40, 3]) + struct.pack(">H", pid) + bytes([code]))

                why = self._topic_problem(topic)
                if why:
                    if conn["version"] != 5:
                        self._cut(writer, conn, "publish on a " + why)
                    self._event("refused", why)
                    answer(0x90)
                    continue
                if self.max_payload_bytes and len(payload) > self.max_payload_bytes:
                    self._cut(writer, conn, "payload of %d bytes on %s" % (len(payload), topic),
                              0x95)
                if any(topic.startswith(p) for p in self.deny_topics):
                    if conn["version"] != 5:
                        self._cut(writer, conn, "publish on %s, which the policy denies" % topic)
                    self._event("refused", "not authorised: " + topic)
                    answer(0x87)
                    continue
                if self._throttled(conn, len(payload)):
                    self._event("throttled", topic)
                    if conn["version"] == 5:
                        answer(0x97)
                    continue  # 3.1.1: no PUBACK, as AWS IoT Core does
                with self.lock:
                    self.forwarded.append((topic, bytes(payload), bool(first & 1)))
            up_writer.write(raw)


class SlowLink:
    """A TCP relay in front of the cloud broker that passes the core's
    bytes on at most `rate` bytes a second (TLS goes through untouched), so
    that a drain takes long enough to interrupt it half-way."""

    def __init__(self, broker, rate):
        self.broker = broker
        self.rate = rate
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.closing = threading.Event()
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self):
        return "localhost:%d" % self.port

    def _accept(self):
        while not self.closing.is_set():
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.broker.port), timeout=5)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            self.sockets += [down, up]
            threading.Thread(target=self._pump, args=(down, up, self.rate), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, None), daemon=True).start()

    def _pump(self, src, dst, rate):
        due = time.monotonic()  # when the next byte may go
        try:
            while True:
                data = src.recv(1024 if rate else 65536)
                if not data:
                    break
                if rate:
                    now = time.monotonic()
                    due = max(due, now) + len(data) / rate
                    if due > now:
                        time.sleep(due - now)
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closing.set()
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


class CloudClient:
    """A paho client (3.1.1, persistent session) on the cloud broker, with
    its own certificate CN=name. It reconnects by itself; `filters` are
    subscribed at QoS 1 on every connect. Received messages are appended to
    `messages` as (topic, payload bytes, dup)."""

    def __init__(self, broker, name, filters=(), on_message=None, clean=False):
        self.broker = broker
        self.name = name
        self.filters = list(filters)
        self.handler = on_message
        self.messages = []
        self.retained = []  # (topic, payload, retain flag) of the same messages
        self.lock = threading.Condition()
        self.connected = threading.Event()
        self.connects = 0
        self.unacked = []
        pem, key = broker.issue(name)
        c = paho.Client(client_id=name, clean_session=clean, protocol=paho.MQTTv311)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(broker.ca_file))
        ctx.load_cert_chain(str(pem), str(key))
        c.tls_set_context(ctx)
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda _c, _u, rc: self.connected.clear()
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c
        c.connect_async("localhost", broker.mqtt_port, keepalive=30)
        # Our own loop: paho's loop_start thread dies on some TLS errors
        # when the broker goes away mid-write, and we want to reconnect
        # through every restart of the cloud.
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        c._thread = self.thread  # publish() from other threads: queue for ours
        self.thread.start()
        self.wait_connected()

    def _run(self):
        need_connect = True
        while not self.stopping.is_set():
            if need_connect:
                try:
                    self.client.reconnect()
                    need_connect = False
                except Exception:
                    self.stopping.wait(0.05)
                    continue
            try:
                rc = self.client.loop(timeout=0.05)
            except Exception:
                rc = -1
            if rc != paho.MQTT_ERR_SUCCESS:
                self.connected.clear()
                need_connect = True
                self.stopping.wait(0.05)

    def _on_connect(self, c, _u, _flags, rc):
        if rc != 0:
            return
        if self.filters:
            _, mid = c.subscribe([(f, 1) for f in self.filters])
            with self.lock:
                self.pending_sub = mid
        else:
            self._ready()

    def _on_subscribe(self, _c, _u, mid, _granted):
        with self.lock:
            if getattr(self, "pending_sub", None) == mid:
                self.pending_sub = None
                ready = True
            else:
                ready = False
        if ready:
            self._ready()

    def _ready(self):
        with self.lock:
            self.connects += 1
            self.lock.notify_all()
        self.connected.set()

    def _on_message(self, _c, _u, m):
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload), bool(m.dup)))
            self.retained.append((m.topic, bytes(m.payload), bool(m.retain)))
            self.lock.notify_all()
        if self.handler:
            self.handler(m.topic, bytes(m.payload), bool(m.dup))

    def wait_connected(self, timeout=TIMEOUT):
        """Connected and subscribed."""
        assert self.connected.wait(timeout), "%s: not connected to the cloud broker" % self.name

    def publish(self, topic, payload, qos=1, wait=True):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos)
        if wait and qos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published(), "%s: publish to %s not acknowledged" % (self.name, topic)
        elif qos:
            with self.lock:
                self.unacked.append(info)
        return info

    def flush(self, timeout=TIMEOUT):
        """Wait until the broker acknowledged every QoS 1 publish made
        with wait=False."""
        with self.lock:
            pending, self.unacked = self.unacked, []
        for info in pending:
            info.wait_for_publish(timeout)
            assert info.is_published(), "%s: a publish was not acknowledged" % self.name

    def count(self, predicate=None):
        with self.lock:
            if predicate is None:
                return len(self.messages)
            return sum(1 for m in self.messages if predicate(m))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def wait_count(self, n, predicate=None, timeout=TIMEOUT, what=None):
        """Wait until at least n (matching) messages arrived; returns them."""
        def enough():
            got = [m for m in self.messages if predicate is None or predicate(m)]
            return got if len(got) >= n else None
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = enough()
                if got is not None:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    have = len([m for m in self.messages if predicate is None or predicate(m)])
                    raise AssertionError("%s: %d of %d %s within %.0f s" % (
                        self.name, have, n, what or "messages", timeout))
                self.lock.wait(min(left, 0.5))

    def close(self):
        self.stopping.set()
        self.thread.join(TIMEOUT)
        try:
            sock = self.client.socket()
            if sock:
                sock.close()
        except Exception:
            pass



def sequence_report(messages, expected):
    """Per topic, check that the messages arrived in order with nothing
    missing. `messages`: (topic, payload, dup) with payloads b"<n>[ ...]";
    `expected`: {topic: count}, messages numbered 0..count-1. Order means:
    the first copies of the messages came in numeric order; later copies
    (QoS 1 resends) are counted as duplicates. Returns (problems,
    duplicates)."""
    problems, duplicates = [], 0
    seen = {t: set() for t in expected}
    firsts = {t: [] for t in expected}
    for topic, payload, _dup in messages:
        if topic not in expected:
            problems.append("unexpected topic %r" % topic)
            continue
        n = int(payload.split(b" ", 1)[0])
        if n in seen[topic]:
            duplicates += 1
            continue
        seen[topic].add(n)
        firsts[topic].append(n)
    for topic, count in expected.items():
        missing = sorted(set(range(count)) - seen[topic])
        if missing:
            problems.append("%s: %d of %d missing (first missing: %s)" % (
                topic, len(missing), count, missing[:10]))
        order = firsts[topic]
        for i in range(1, len(order)):
            if order[i] < order[i - 1]:
                problems.append("%s: message %d arrived after %d (first copies out of order)"
                                % (topic, order[i], order[i - 1]))
                break
        extra = seen[topic] - set(range(count))
        if extra:
            problems.append("%s: unexpected numbers %s" % (topic, sorted(extra)[:10]))
    return problems, duplicates



def cloud_config(cloud, core_name="edge-core", **kw):
    """The "cloud" section of sedged's config for `cloud`, with a client
    certificate CN=core_name from the cloud's CA. Keyword arguments are
    merged in (spool={...} included)."""
    pem, key = cloud.issue(core_name)
    cfg = {"endpoint": cloud.endpoint, "ca_file": str(cloud.ca_file), "cert_file": str(pem),
           "key_file": str(key), "reconnect_min_ms": 100, "reconnect_max_ms": 1000,
           "keepalive_s": 30}
    cfg.update(kw)
    return cfg


def spool(sedge):
    """`sedgectl spool --json`, parsed."""
    r = sedge.ctl("spool", "--json")
    assert r.returncode == 0, "sedgectl spool failed (%d): %s%s" % (
        r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def wait_spool(sedge, predicate, timeout=TIMEOUT, what="spool state"):
    last = {}

    def check():
        last["s"] = spool(sedge)
        return predicate(last["s"])
    try:
        wait_for(check, timeout, interval=0.1, what=what)
    except AssertionError as e:
        raise AssertionError("%s; last spool: %r" % (e, last.get("s"))) from None
    return last["s"]


def publish_many(raw, messages, window=16, timeout=TIMEOUT * 6):
    """QoS 1 PUBLISHes from a RawClient with up to `window` in flight;
    returns the PUBACK reason codes in order of `messages` ((topic,
    payload) pairs)."""
    import mqtt_raw
    reasons = {}
    order = []
    inflight = set()
    deadline = time.monotonic() + timeout
    it = iter(messages)
    done = False
    while True:
        while not done and len(inflight) < window:
            try:
                topic, payload = next(it)
            except StopIteration:
                done = True
                break
            pid = raw.new_id()
            raw.send(mqtt_raw.publish(topic, payload, 1, packet_id=pid, version=raw.version))
            inflight.add(pid)
            order.append(pid)
        if not inflight:
            break
        p = raw._recv_matching(lambda p: p.type == mqtt_raw.PUBACK and p.packet_id in inflight,
                               max(0.1, deadline - time.monotonic()))
        inflight.discard(p.packet_id)
        reasons[len(order) - 1 - order[::-1].index(p.packet_id)] = p.reason
    return [reasons[i] for i in range(len(order))]



def _merge(target, patch):
    """AWS shadow merge: objects merge, null deletes, the rest replaces."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
            if not target[k]:
                target.pop(k)
        elif isinstance(v, dict):
            sub = {}
            _merge(sub, v)
            if sub:
                target[k] = sub
        else:
            target[k] = copy.deepcopy(v)


def _delta(desired, reported):
    out = {}
    for k, v in desired.items():
        r = reported.get(k) if isinstance(reported, dict) else None
        if isinstance(v, dict) and isinstance(r, dict):
            d = _delta(v, r)
            if d:
                out[k] = d
        elif v != r:
            out[k] = copy.deepcopy(v)
    return out


class FakeShadows:
    """AWS IoT Device Shadow over MQTT, on the cloud broker: documents in
    memory, `$aws/things/T/shadow[/name/N]/update|get|delete` answered
    with accepted / rejected / delta / documents as AWS does. Every request
    is recorded in `requests` as (thing, name, op, payload dict)."""

    def __init__(self, broker, name="aws-shadow", extra_filters=()):
        self.docs = {}  # (thing, name) -> {"state": {...}, "version": n}
        self.requests = []
        # [(thing, name, op, code)]: the next matching requests are rejected
        # with that code (429 throttled, 500 failed, 400...), in order.
        self.fail_next = []
        self.rejections = []  # (thing, name, op, code) of every rejection
        # before_update(thing, name, request): runs before an update is
        # applied (a concurrent edit), once; then it is cleared.
        self.before_update = None
        # More requests than this for one thing within a second: 429, as
        # AWS IoT's Device Shadow service does.
        self.rate_per_thing = None
        self.recent = {}  # thing -> deque of request times
        self.others = []  # messages on extra_filters, in order
        self.hold_gets = False  # answers to GET wait for release_gets()
        self.held = []
        self.mutex = threading.RLock()
        self.client = broker.client(name, filters=["$aws/things/+/shadow/#"] + list(extra_filters),
                                    on_message=self._on_message)

    @staticmethod
    def split(topic):
        """(thing, name, op) of a request topic, or None."""
        parts = topic.split("/")
        if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "shadow":
            return None
        if parts[4] == "name":
            if len(parts) != 7:
                return None
            return parts[2], parts[5], parts[6]
        if len(parts) != 5:
            return None
        return parts[2], "", parts[4]

    @staticmethod
    def base(thing, name):
        if name:
            return "$aws/things/%s/shadow/name/%s" % (thing, name)
        return "$aws/things/%s/shadow" % thing

    def _on_message(self, topic, payload, dup):
        if dup:
            # The broker redelivers a request whose PUBACK it had not seen
            # when it stopped; we answered it already.
            return
        if not topic.startswith("$aws/"):
            with self.mutex:
                self.others.append((topic, payload))
            return
        parts = self.split(topic)
        if not parts or parts[2] not in ("update", "get", "delete"):
            return  # our own answers
        thing, name, op = parts
        try:
            req = json.loads(payload.decode()) if payload else {}
        except ValueError:
            req = None
        refusal = None
        with self.mutex:
            self.requests.append((thing, name, op, req))
            for i, (t, n, o, code) in enumerate(self.fail_next):
                if (t, n, o) == (thing, name, op):
                    del self.fail_next[i]
                    refusal = (code, "Injected failure")
                    break
            times = self.recent.setdefault(thing, collections.deque())
            now = time.monotonic()
            while times and times[0] <= now - 1:
                times.popleft()
            times.append(now)
            if refusal is None and self.rate_per_thing and len(times) > self.rate_per_thing:
                refusal = (429, "Too Many Requests")
            if refusal:
                self.rejections.append((thing, name, op, refusal[0]))
        if refusal:
            body = {"code": refusal[0], "message": refusal[1], "timestamp": int(time.time())}
            if isinstance(req, dict) and req.get("clientToken") is not None:
                body["clientToken"] = req["clientToken"]
            self._reply(thing, name, op + "/rejected", body)
            return
        if not isinstance(req, dict):
            self._reply(thing, name, op + "/rejected",
                        {"code": 400, "message": "Payload contains invalid json"})
            return
        if op == "update" and self.before_update:
            hook, self.before_update = self.before_update, None
            hook(thing, name, req)
        getattr(self, "_" + op)(thing, name, req)

    def _reply(self, thing, name, suffix, payload):
        self.client.publish(self.base(thing, name) + "/" + suffix, json.dumps(payload),
                            qos=1, wait=False)

    def _update(self, thing, name, req, publish=True):
        token = req.get("clientToken")
        state = req.get("state")
        now = int(time.time())
        with self.mutex:
            key = (thing, name)
            if not isinstance(state, dict):
                out = [("update/rejected",
                        {"code": 400, "message": "Missing required node: state"})]
            elif ("version" in req and key in self.docs
                  and req["version"] != self.docs[key]["version"]):
                out = [("update/rejected", {"code": 409, "message": "Version conflict"})]
            else:
                doc = self.docs.get(key) or {"state": {}, "version": 0}
                previous = copy.deepcopy(doc)
                for section in ("desired", "reported"):
                    if section in state:
                        if state[section] is None:
                            doc["state"].pop(section, None)
                            continue
                        cur = doc["state"].setdefault(section, {})
                        _merge(cur, state[section])
                        if not cur:
                            doc["state"].pop(section)
                doc["version"] += 1
                self.docs[key] = doc
                accepted = {"state": state, "metadata": {}, "version": doc["version"],
                            "timestamp": now}
                if token is not None:
                    accepted["clientToken"] = token
                out = [("update/accepted", accepted)]
                delta = _delta(doc["state"].get("desired", {}), doc["state"].get("reported", {}))
                if "desired" in state and delta:
                    out.append(("update/delta", {"state": delta, "metadata": {},
                                                 "version": doc["version"], "timestamp": now}))
                out.append(("update/documents", {
                    "previous": previous if previous["version"] else None,
                    "current": copy.deepcopy(doc), "timestamp": now}))
        if not publish:
            return
        for suffix, payload in out:
            if suffix.endswith("rejected") and token is not None:
                payload["clientToken"] = token
            self._reply(thing, name, suffix, payload)

    def _get(self, thing, name, req):
        token = req.get("clientToken")
        with self.mutex:
            doc = copy.deepcopy(self.docs.get((thing, name)))
        if doc is None:
            out = {"code": 404, "message": "No shadow exists with name: '%s'" % (name or thing)}
            suffix = "get/rejected"
        else:
            out = {"state": doc["state"], "metadata": {}, "version": doc["version"],
                   "timestamp": int(time.time())}
            delta = _delta(doc["state"].get("desired", {}), doc["state"].get("reported", {}))
            if delta:
                out["state"]["delta"] = delta
            suffix = "get/accepted"
        if token is not None:
            out["clientToken"] = token
        with self.mutex:
            if self.hold_gets:
                # Computed now, delivered later: a slow network.
                self.held.append((thing, name, suffix, out))
                return
        self._reply(thing, name, suffix, out)

    def release_gets(self):
        with self.mutex:
            self.hold_gets = False
            held, self.held = self.held, []
        for thing, name, suffix, out in held:
            self._reply(thing, name, suffix, out)

    def _delete(self, thing, name, req):
        token = req.get("clientToken")
        with self.mutex:
            doc = self.docs.pop((thing, name), None)
        if doc is None:
            out = {"code": 404, "message": "No shadow exists with name: '%s'" % (name or thing)}
            suffix = "delete/rejected"
        else:
            out = {"version": doc["version"], "timestamp": int(time.time())}
            suffix = "delete/accepted"
        if token is not None:
            out["clientToken"] = token
        self._reply(thing, name, suffix, out)

    # -- what a cloud application does
    def app_update(self, thing, name, state, token="cloud-app", publish=True):
        """An update made in the cloud (by an application, not the core).
        publish=False changes the document without telling anyone, as
        happens while the core's link is down."""
        self._update(thing, name, {"state": state, "clientToken": token}, publish=publish)

    def app_delete(self, thing, name, token="cloud-app"):
        self._delete(thing, name, {"clientToken": token})

    def doc(self, thing, name=""):
        with self.mutex:
            return copy.deepcopy(self.docs.get((thing, name)))

    def set_doc(self, thing, name, state, version):
        with self.mutex:
            self.docs[(thing, name)] = {"state": copy.deepcopy(state), "version": version}

    def requests_for(self, thing, name="", op=None, token=None):
        """token=SYNC_TOKEN: the shadow sync's requests, whatever their
        number (see is_sync_token)."""
        def token_matches(req):
            if token is None:
                return True
            if not isinstance(req, dict):
                return False
            got = req.get("clientToken")
            return is_sync_token(got) if token == SYNC_TOKEN else got == token
        with self.mutex:
            return [r for r in self.requests
                    if r[0] == thing and r[1] == name and (op is None or r[2] == op)
                    and token_matches(r[3])]

    def wait_doc(self, thing, name, predicate, timeout=TIMEOUT, what="cloud shadow"):
        last = {}

        def check():
            last["d"] = self.doc(thing, name)
            return predicate(last["d"])
        try:
            wait_for(check, timeout, what=what)
        except AssertionError as e:
            raise AssertionError("%s; cloud document: %r; requests: %r" % (
                e, last.get("d"), self.requests_for(thing, name))) from None
        return last["d"]

    def close(self):
        self.client.close()


class FakeJobs:
    """AWS IoT Jobs over MQTT for the things that ask: jobs queued by the
    test, notify-next, $next/get, JOBID/get and JOBID/update with accepted
    / rejected answers. `updates` records (thing, job id, payload) of every
    status update in the order they came."""

    TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "REMOVED", "CANCELED", "TIMED_OUT")

    def __init__(self, broker, name="aws-jobs", notify_with_document=True):
        self.jobs = {}  # thing -> [execution dicts] in queue order
        self.updates = []
        # lose(job_id, request) -> True: the update request is lost on its
        # way (recorded in `lost`, neither applied nor answered).
        self.lose = None
        self.lost = []
        self.throttle_updates = 0  # this many updates rejected RequestThrottled
        self.gets = []  # (thing, what) for every get request
        self.notify_with_document = notify_with_document
        self.mutex = threading.RLock()
        self.client = broker.client(name, filters=["$aws/things/+/jobs/#"],
                                    on_message=self._on_message)

    def _execution(self, e, with_document=True):
        out = {k: copy.deepcopy(v) for k, v in e.items() if k != "jobDocument"}
        if with_document:
            out["jobDocument"] = copy.deepcopy(e["jobDocument"])
        return out

    def _next(self, thing):
        for e in self.jobs.get(thing, []):
            if e["status"] in ("QUEUED", "IN_PROGRESS"):
                return e
        return None

    def _publish(self, thing, suffix, payload):
        self.client.publish("$aws/things/%s/jobs/%s" % (thing, suffix), json.dumps(payload),
                            qos=1, wait=False)

    def notify_next(self, thing):
        with self.mutex:
            e = self._next(thing)
            msg = {"timestamp": int(time.time())}
            if e:
                msg["execution"] = self._execution(e, self.notify_with_document)
        self._publish(thing, "notify-next", msg)

    def add_job(self, thing, job_id, document, notify=True):
        """Queue a job for `thing`; AWS sends notify-next when it becomes
        the thing's next job."""
        now = int(time.time())
        with self.mutex:
            was_next = self._next(thing)
            self.jobs.setdefault(thing, []).append({
                "jobId": job_id, "thingName": thing, "status": "QUEUED", "queuedAt": now,
                "lastUpdatedAt": now, "versionNumber": 1, "executionNumber": 1,
                "jobDocument": document})
        if notify and was_next is None:
            self.notify_next(thing)

    def execution(self, thing, job_id):
        with self.mutex:
            for e in self.jobs.get(thing, []):
                if e["jobId"] == job_id:
                    return copy.deepcopy(e)
        return None

    def updates_for(self, job_id):
        with self.mutex:
            return [u[2] for u in self.updates if u[1] == job_id]

    def wait_status(self, thing, job_id, statuses, timeout=TIMEOUT):
        statuses = (statuses,) if isinstance(statuses, str) else statuses
        last = {}

        def check():
            last["e"] = self.execution(thing, job_id)
            return last["e"] and last["e"]["status"] in statuses
        try:
            wait_for(check, timeout, what="job %s to be %s" % (job_id, "/".join(statuses)))
        except AssertionError as e:
            raise AssertionError("%s; execution: %r; updates: %r" % (
                e, last.get("e"), self.updates_for(job_id))) from None
        return last["e"]

    def _on_message(self, topic, payload, dup):
        parts = topic.split("/")
        if dup:
            return  # a redelivery of a request we answered (see FakeShadows)
        if len(parts) < 5 or parts[:2] != ["$aws", "things"] or parts[3] != "jobs":
            return
        thing, rest = parts[2], parts[4:]
        try:
            req = json.loads(payload.decode()) if payload else {}
        except ValueError:
            req = {}
        if not isinstance(req, dict):
            req = {}
        token = req.get("clientToken")
        now = int(time.time())

        def answer(suffix, body):
            if token is not None:
                body["clientToken"] = token
            body.setdefault("timestamp", now)
            self._publish(thing, suffix, body)

        if rest == ["$next", "get"]:
            with self.mutex:
                self.gets.append((thing, "$next"))
                e = self._next(thing)
                body = {"execution": self._execution(e)} if e else {}
            answer("$next/get/accepted", body)
        elif len(rest) == 2 and rest[1] == "get":
            with self.mutex:
                self.gets.append((thing, rest[0]))
                e = next((x for x in self.jobs.get(thing, []) if x["jobId"] == rest[0]), None)
                body = {"execution": self._execution(e)} if e else None
            if body is None:
                answer(rest[0] + "/get/rejected",
                       {"code": "ResourceNotFound", "message": "Job Execution not found"})
            else:
                answer(rest[0] + "/get/accepted", body)
        elif len(rest) == 2 and rest[1] == "update":
            job_id = rest[0]
            status = req.get("status")
            notify = False
            with self.mutex:
                if self.lose and self.lose(job_id, req):
                    self.lost.append((thing, job_id, req))
                    return
                if self.throttle_updates > 0:
                    self.throttle_updates -= 1
                    self.updates.append((thing, job_id, req))
                    throttled = True
                else:
                    throttled = False
            if throttled:
                answer(job_id + "/update/rejected",
                       {"code": "RequestThrottled", "message": "Rate exceeded"})
                return
            with self.mutex:
                self.updates.append((thing, job_id, req))
                e = next((x for x in self.jobs.get(thing, []) if x["jobId"] == job_id), None)
                if e is None:
                    verdict = ("rejected", {"code": "ResourceNotFound",
                                            "message": "Job Execution not found"})
                elif e["status"] in self.TERMINAL or status not in (
                        "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "QUEUED"):
                    verdict = ("rejected", {"code": "InvalidStateTransition",
                                            "message": "cannot go from %s to %s"
                                                       % (e["status"], status)})
                else:
                    e["status"] = status
                    if "statusDetails" in req:
                        e["statusDetails"] = copy.deepcopy(req["statusDetails"])
                    e["versionNumber"] += 1
                    e["lastUpdatedAt"] = now
                    verdict = ("accepted", {})
                    notify = status in self.TERMINAL
            answer(job_id + "/update/" + verdict[0], verdict[1])
            if notify:
                self.notify_next(thing)

    def close(self):
        self.client.close()



@pytest.fixture
def make_cloud(tmp_path):
    """Factory: make_cloud(start=True, name=...) -> CloudBroker. Every
    broker and client made is stopped at teardown."""
    made = []

    def make(start=True, name=None, **kw):
        """aws={...}: the AWS gate's settings (see AwsGate)."""
        b = CloudBroker(tmp_path / (name or "cloud%d" % len(made)), **kw)
        b.clients = []
        orig_client = b.client

        def client(n, **ckw):
            c = orig_client(n, **ckw)
            b.clients.append(c)
            return c
        b.client = client
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        for c in b.clients:
            c.close()
        for link in b.links:
            link.close()
        b.stop()


@pytest.fixture
def cloud(make_cloud):
    """A running cloud broker."""
    return make_cloud()



def cloud_sedge(make_sedge, cloud, start=True, thing_name=None, name=None, extra=None,
                **cloud_kw):
    """A sedged whose "cloud" section points at `cloud` (its client
    certificate's CN is the core's thing name); `extra`: more config."""
    more = {"cloud": cloud_config(cloud, core_name=thing_name or "edge-core", **cloud_kw)}
    if thing_name:
        more["core"] = {"thing_name": thing_name}
    more.update(extra or {})
    s = make_sedge(start=False, name=name, extra=more)
    if "data_dir" in more:
        s.data_dir = s.root / more["data_dir"]
    if start:
        s.start()
    return s


def sensor_group(qos=None, things=("s1",), extra_routes=(), **more):
    """A group routing thing:s1's sensors/# to the cloud."""
    route = {"source": "thing:s1", "filter": "sensors/#", "target": "cloud"}
    if qos is not None:
        route["qos"] = qos
    doc = {"group": "uplink", "things": [{"name": t} for t in things],
           "routes": [route] + list(extra_routes)}
    doc.update(more)
    return doc


def numbered(topics, count, size=0):
    """(topic, payload) for messages 0..count-1 on each topic, interleaved;
    payloads are b"<n>" padded to `size` bytes."""
    out = []
    for i in range(count):
        for t in topics:
            p = b"%d" % i
            if size > len(p):
                p += b" " + b"x" * (size - len(p) - 1)
            out.append((t, p))
    return out
