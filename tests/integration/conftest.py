"""Fixtures for the integration tests: a real sedged per test.

Each test gets its own temporary directory (config, data directory,
certificates, log) and its own sedged on free loopback ports. `Sedge` writes
the config, makes certificates with sedgectl, starts, stops, kill -9s and
restarts the daemon, reads its log and runs sedgectl. `PahoClient` wraps a
paho client (a client nobody here wrote) with waits that time out instead
of sleeps. Hand-built packets live in mqtt_raw.py.

Environment: SEDGE_BUILD is the build directory holding sedged and sedgectl
(default: build/ at the top of the repository). With SEDGE_SANITIZED=1 the
timeouts grow, and in every build a test fails if sedged's log shows a
sanitizer report or sedged did not exit cleanly.
"""

import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

import mqtt_raw

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SEDGE_BUILD", REPO / "build"))
SEDGED = BUILD / "sedged"
SEDGECTL = BUILD / "sedgectl"
SANITIZED = os.environ.get("SEDGE_SANITIZED") == "1"
SLOW = 3 if SANITIZED else 1

TIMEOUT = 10 * SLOW  # for any single expected event
START_TIMEOUT = 30 * SLOW
STOP_TIMEOUT = 30 * SLOW
READY_LINE = "sedged 0.1.0 ready"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")

DEFAULT_LIMITS = {
    "max_connections": 10000,
    "max_packet_bytes": 268435455,
    "max_queued_messages": 1000,
    "max_inflight": 32,
    "topic_alias_maximum": 64,
    "max_keepalive": 65535,
    "max_session_expiry": 4294967295,
    "sys_interval_s": 10,
    "max_output_bytes": 4194304,
    "slow_reader_timeout_s": 60,
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=TIMEOUT, interval=0.05, what="condition"):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def run_sedgectl(*args, data_dir=None, cwd=None, timeout=60):
    cmd = [str(SEDGECTL)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * SLOW, cwd=cwd)


def make_ca(directory, core_name=None, sans=()):
    """A CA and core certificate from `sedgectl ca init`."""
    args = ["ca", "init", "--dir", directory]
    if core_name:
        args += ["--core-name", core_name]
    for san in sans:
        args += ["--san", san]
    r = run_sedgectl(*args)
    assert r.returncode == 0, r.stderr
    return Path(directory)


def issue_cert(directory, name):
    r = run_sedgectl("cert", "issue", name, "--dir", directory)
    assert r.returncode == 0, r.stderr
    return Path(directory) / (name + ".pem"), Path(directory) / (name + ".key")


def client_ssl_context(ca_file, cert=None, key=None):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class Sedge:
    """One sedged, its config, data directory, certificates and log."""

    def __init__(self, root, limits=None, tls=False, log_level="info", extra=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path = self.root / "sedge.json"
        self.data_dir = self.root / "data"
        self.certs = self.root / "certs"
        self.log_path = self.root / "sedged.log"
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.limits = dict(DEFAULT_LIMITS)
        self.limits.update(limits or {})
        self.log_level = log_level
        self.extra = extra or {}
        self.proc = None
        self.expected_exit = True  # False while a process runs that we did not stop
        self.exit_problems = []
        self.clients = []
        if tls:
            make_ca(self.certs)
        self.write_config()

    # -- config
    def config(self):
        listeners = [{"type": "tcp", "bind": "127.0.0.1:%d" % self.port}]
        if self.tls_port:
            listeners.append({"type": "tls", "bind": "127.0.0.1:%d" % self.tls_port,
                              "ca_file": "certs/ca.pem", "cert_file": "certs/core.pem",
                              "key_file": "certs/core.key"})
        cfg = {"data_dir": "data", "listeners": listeners, "limits": self.limits,
               "store": {"synchronous": "full"}, "log_level": self.log_level}
        cfg.update(self.extra)
        return cfg

    def write_config(self):
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n")

    # -- process
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=START_TIMEOUT):
        """Start sedged and wait until it is ready. A port taken by another
        process meanwhile is replaced by a fresh one (clients look the
        ports up when they connect)."""
        for attempt in range(5):
            mark = self.log_mark()
            try:
                return self._start(timeout)
            except RuntimeError:
                if attempt == 4 or "address already in use" not in self.log_since(mark):
                    raise
            self.port = free_port()
            self.tls_port = free_port() if self.tls_port else None
            self.write_config()

    def _start(self, timeout):
        assert not self.running(), "sedged is already running"
        mark = self.log_mark()
        env = dict(os.environ)
        if SANITIZED:
            env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(SEDGED), "--config", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, cwd=str(self.root))
        self.expected_exit = False
        sock = self.data_dir / "admin.sock"
        deadline = time.monotonic() + timeout
        while True:
            if READY_LINE in self.log_since(mark) and sock.exists():
                return self
            if self.proc.poll() is not None:
                self.expected_exit = True
                raise RuntimeError("sedged exited with %s before it was ready:\n%s"
                                   % (self.proc.returncode, self.log_since(mark)))
            if time.monotonic() > deadline:
                raise RuntimeError("sedged not ready after %d s:\n%s"
                                   % (timeout, self.log_since(mark)))
            time.sleep(0.02)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; returns the exit status."""
        if not self.running():
            self.expected_exit = True
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.exit_problems.append("sedged did not stop within %d s of SIGTERM" % timeout)
            rc = self.proc.returncode
        self.expected_exit = True
        return rc

    def kill9(self):
        assert self.running(), "sedged is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        self.expected_exit = True

    def restart(self):
        rc = self.stop()
        assert rc == 0, "sedged exited with %s on SIGTERM" % rc
        return self.start()

    def close_clients(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        self.clients = []

    # -- log
    def log(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, since=0, timeout=TIMEOUT):
        """The first log line after `since` that matches the regex (or the
        predicate) `pattern`."""
        def find():
            for line in self.log_since(since).splitlines():
                if callable(pattern) and pattern(line):
                    return line
                if not callable(pattern) and re.search(pattern, line):
                    return line
            return None
        try:
            return wait_for(find, timeout, what="a log line matching %r" % (pattern,))
        except AssertionError as e:
            raise AssertionError("%s; the log since then:\n%s"
                                 % (e, self.log_since(since)[-4000:])) from None

    # -- sedgectl
    def ctl(self, *args):
        return run_sedgectl(*args, data_dir=self.data_dir)

    def status(self):
        r = self.ctl("status", "--json")
        assert r.returncode == 0, "sedgectl status failed (%d): %s" % (r.returncode, r.stderr)
        return json.loads(r.stdout)

    def wait_status(self, predicate, timeout=TIMEOUT, what="status"):
        last = {}

        def check():
            last["s"] = self.status()
            return predicate(last["s"])
        try:
            wait_for(check, timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError("%s; last status: %r" % (e, last.get("s"))) from None
        return last["s"]

    # -- certificates and clients
    def issue_cert(self, name):
        return issue_cert(self.certs, name)

    def ssl_context(self, cert_name=None):
        if cert_name is None:
            return client_ssl_context(self.certs / "ca.pem")
        pem, key = self.certs / (cert_name + ".pem"), self.certs / (cert_name + ".key")
        if not pem.exists():
            self.issue_cert(cert_name)
        return client_ssl_context(self.certs / "ca.pem", pem, key)

    def raw(self, version=5, cert=None, timeout=TIMEOUT):
        """A RawClient on the tcp listener, or on tls with certificate `cert`."""
        if cert is None:
            c = mqtt_raw.RawClient(self.port, version=version, timeout=timeout)
        else:
            c = mqtt_raw.RawClient(self.tls_port, version=version, timeout=timeout,
                                   ssl_context=self.ssl_context(cert))
        self.clients.append(c)
        return c

    def mosquitto_sub(self, *args):
        """MosquittoSub with `args`, stopped at teardown."""
        m = MosquittoSub(*args)
        self.clients.append(m)
        return m

    def client(self, client_id, version=5, connect=True, **kw):
        """A PahoClient, connected (CONNACK success asserted) unless
        connect=False."""
        c = PahoClient(self, client_id, version=version, **kw)
        self.clients.append(c)
        if connect:
            c.connect()
        return c


def paho_props(packet_type, values):
    """paho Properties from a dict of paho property names."""
    if values is None:
        return None
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


class Connack:
    def __init__(self, session_present, rc, props):
        self.session_present, self.rc, self.props = session_present, rc, props

    def __repr__(self):
        return "<CONNACK sp=%d rc=%s props=%s>" % (self.session_present, self.rc, self.props)


class PahoClient:
    """A paho client run by our own loop thread: it never reconnects on its
    own, so a test sees every disconnect. Messages land in `messages`."""

    def __init__(self, sedge, client_id, version=5, clean=True, session_expiry=None,
                 keepalive=60, will=None, cert=None, connect_props=None, port=None):
        self.sedge = sedge
        self.client_id = client_id
        self.version = version
        self.clean = clean
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.connect_props = connect_props
        self.cert = cert
        self.fixed_port = port
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = {}
        self.unsubacks = {}
        self.cond = threading.Condition()
        self.thread = None
        self.loop_error = None
        self.stop = threading.Event()
        self.client = self._make_client(will)

    @property
    def port(self):
        return self.fixed_port or (self.sedge.tls_port if self.cert else self.sedge.port)

    def _make_client(self, will):
        v5 = self.version == 5
        kw = {} if v5 else {"clean_session": self.clean}
        c = paho.Client(client_id=self.client_id,
                        protocol=paho.MQTTv5 if v5 else paho.MQTTv311, **kw)
        if self.cert:
            c.tls_set_context(self.sedge.ssl_context(self.cert))
        if will:
            c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                       will.get("retain", False),
                       paho_props(PacketTypes.WILLMESSAGE, will.get("props")) if v5 else None)
        c.on_message = lambda _c, _u, m: self.messages.put(m)
        if v5:
            c.on_connect = lambda _c, _u, flags, rc, props: self.connacks.put(
                Connack(flags.get("session present", 0), rc.value, props))
            c.on_disconnect = lambda _c, _u, rc, props=None: self.disconnects.put(rc)
            c.on_subscribe = lambda _c, _u, mid, rcs, props: self._acked(
                self.subacks, mid, [r.value for r in rcs])
            c.on_unsubscribe = lambda _c, _u, mid, props, rcs: self._acked(
                self.unsubacks, mid, [r.value for r in (rcs if isinstance(rcs, list) else [rcs])])
        else:
            c.on_connect = lambda _c, _u, flags, rc: self.connacks.put(
                Connack(flags.get("session present", 0), rc, None))
            c.on_disconnect = lambda _c, _u, rc: self.disconnects.put(rc)
            c.on_subscribe = lambda _c, _u, mid, granted: self._acked(
                self.subacks, mid, list(granted))
            c.on_unsubscribe = lambda _c, _u, mid: self._acked(self.unsubacks, mid, [])
        return c

    def _acked(self, table, mid, value):
        with self.cond:
            table[mid] = value
            self.cond.notify_all()

    def _loop(self):
        try:
            while not self.stop.is_set():
                if self.client.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                    break
        except Exception as e:  # a client-side failure: the test sees a disconnect
            self.loop_error = e
            self.disconnects.put(e)

    def connect(self, clean=None, session_expiry=None, expect_rc=0, timeout=TIMEOUT):
        """Connect and wait for the CONNACK; returns it (a Connack)."""
        if self.thread and self.thread.is_alive():
            raise AssertionError("%s is still connected" % self.client_id)
        clean = self.clean if clean is None else clean
        expiry = self.session_expiry if session_expiry is None else session_expiry
        self.stop.clear()
        self.loop_error = None
        # Tell paho that a thread runs its loop, so that publish() and
        # subscribe() from the test's thread queue packets for that thread
        # instead of writing to the socket concurrently with it.
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.client._thread = self.thread
        if self.version == 5:
            props = dict(self.connect_props or {})
            if expiry is not None:
                props["SessionExpiryInterval"] = expiry
            self.client.connect("localhost" if self.cert else "127.0.0.1", self.port,
                                self.keepalive, clean_start=clean,
                                properties=paho_props(PacketTypes.CONNECT, props or None))
        else:
            self.client._clean_session = clean
            self.client.connect("localhost" if self.cert else "127.0.0.1", self.port,
                                self.keepalive)
        self.thread.start()
        try:
            ack = self.connacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: no CONNACK" % self.client_id) from None
        if expect_rc is not None:
            assert ack.rc == expect_rc, "%s: CONNACK %r" % (self.client_id, ack)
        return ack

    def subscribe(self, topic, qos=0, no_local=False, retain_as_published=False,
                  retain_handling=0, sub_id=None, timeout=TIMEOUT):
        """Subscribe and wait for the SUBACK; returns its reason codes."""
        if self.version == 5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local,
                                    retainAsPublished=retain_as_published,
                                    retainHandling=retain_handling)
            props = paho_props(PacketTypes.SUBSCRIBE,
                               {"SubscriptionIdentifier": sub_id} if sub_id else None)
            rc, mid = self.client.subscribe(topic, options=opts, properties=props)
        else:
            rc, mid = self.client.subscribe(topic, qos)
        assert rc == paho.MQTT_ERR_SUCCESS, "subscribe failed locally: %s" % rc
        with self.cond:
            ok = self.cond.wait_for(lambda: mid in self.subacks, timeout)
            assert ok, "%s: no SUBACK for %s" % (self.client_id, topic)
            return self.subacks.pop(mid)

    def unsubscribe(self, topic, timeout=TIMEOUT):
        rc, mid = self.client.unsubscribe(topic)
        assert rc == paho.MQTT_ERR_SUCCESS
        with self.cond:
            ok = self.cond.wait_for(lambda: mid in self.unsubacks, timeout)
            assert ok, "%s: no UNSUBACK for %s" % (self.client_id, topic)
            return self.unsubacks.pop(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, wait=True,
                timeout=TIMEOUT):
        """Publish; with wait, until paho saw the PUBACK/PUBCOMP (or, at
        QoS 0, wrote it)."""
        info = self.client.publish(topic, payload, qos, retain,
                                   paho_props(PacketTypes.PUBLISH, props))
        assert info.rc == paho.MQTT_ERR_SUCCESS, "publish failed locally: %s" % info.rc
        if wait:
            info.wait_for_publish(timeout)
            assert info.is_published(), "%s: publish to %s not acknowledged" % (
                self.client_id, topic)
        return info

    def get(self, timeout=TIMEOUT):
        """The next message; AssertionError if none comes in time."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: no message within %d s" % (self.client_id, timeout)) \
                from None

    def get_until(self, topic, timeout=TIMEOUT):
        """Messages up to and including the first one on `topic`."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.get(max(0.01, deadline - time.monotonic()))
            got.append(m)
            if m.topic == topic:
                return got

    def get_many(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < n:
            try:
                got.append(self.messages.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError("%s: got %d of %d messages" % (
                    self.client_id, len(got), n)) from None
        return got

    def wait_disconnected(self, timeout=TIMEOUT):
        """Wait until the connection is gone; returns paho's disconnect rc."""
        try:
            rc = self.disconnects.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s is still connected" % self.client_id) from None
        if self.thread:
            self.thread.join(timeout)
        return rc

    def disconnect(self, timeout=TIMEOUT):
        """A normal DISCONNECT, then wait until the socket is closed."""
        self.client.disconnect()
        self.wait_disconnected(timeout)

    def close(self):
        self.stop.set()
        if self.thread:
            self.thread.join(TIMEOUT)
        try:
            sock = self.client.socket()
            if sock:
                sock.close()
        except Exception:
            pass


def tls_args(sedge, cert):
    """mosquitto_pub/sub arguments for mTLS with certificate `cert`."""
    pem, key = sedge.certs / (cert + ".pem"), sedge.certs / (cert + ".key")
    if not pem.exists():
        sedge.issue_cert(cert)
    return ["-h", "localhost", "-p", str(sedge.tls_port), "--cafile", str(sedge.certs / "ca.pem"),
            "--cert", str(pem), "--key", str(key)]


def mosquitto_pub(*args, timeout=TIMEOUT):
    return subprocess.run(["mosquitto_pub"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


class MosquittoSub:
    """mosquitto_sub in the background, run with -d so that the test can
    wait for its SUBACK before publishing."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-d"] + [str(a) for a in args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("mosquitto_sub: no matching line; saw %r" % self.seen) \
                    from None
            if line is None:
                raise AssertionError("mosquitto_sub exited (%s); saw %r"
                                     % (self.proc.wait(), self.seen))
            self.seen.append(line)
            if predicate(line):
                return line

    def wait_subscribed(self):
        return self.wait_line(lambda l: "received SUBACK" in l)

    def finish(self, timeout=TIMEOUT):
        """Wait for exit (e.g. after -C N messages); returns (rc, all lines)."""
        rc = self.proc.wait(timeout)
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return rc, self.seen

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()



@pytest.fixture
def make_sedge(tmp_path):
    """Factory: make_sedge(limits={...}, tls=True, start=True, ...) -> Sedge.
    At teardown every instance is stopped with SIGTERM; the test fails if one
    died on its own, did not exit 0, or its log shows a sanitizer report."""
    made = []

    def make(start=True, name=None, **kw):
        s = Sedge(tmp_path / (name or "sedge%d" % len(made)), **kw)
        made.append(s)
        if start:
            s.start()
        return s

    yield make

    problems = []
    for s in made:
        s.close_clients()
        if s.proc is not None and not s.expected_exit and s.proc.poll() is not None:
            problems.append("sedged exited on its own with %s during the test"
                            % s.proc.returncode)
        if s.running():
            rc = s.stop()
            if rc != 0:
                problems.append("sedged exited with %s on SIGTERM" % rc)
        problems += s.exit_problems
        log = s.log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                at = log.index(mark)
                problems.append("sanitizer report in the log of %s:\n%s"
                                % (s.root, log[max(0, at - 2000):at + 6000]))
                break
        if problems:
            problems.append("log tail:\n" + log[-4000:])
            break
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def sedge(make_sedge):
    """A running sedged with a tcp listener and default limits."""
    return make_sedge()


@pytest.fixture
def tls_sedge(make_sedge):
    """A running sedged with tcp and mTLS listeners and a CA made by sedgectl."""
    return make_sedge(tls=True)
