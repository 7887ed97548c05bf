#!/usr/bin/python3
"""make soak: kill -9 sedged over and over under QoS 1 and QoS 2 load, and
count what the clients saw.

One process, one selector loop, raw MQTT (tests/integration/mqtt_raw.py)
so that every client follows the protocol exactly across reconnections:

- publishers (persistent sessions, MQTT 5) send numbered messages at QoS 1
  and QoS 2, keep their in-flight ones and, after reconnecting, resend them
  (PUBLISH with DUP, or PUBREL for those already PUBREC'd). A message is
  *acknowledged* at PUBACK (QoS 1) or PUBREC (QoS 2): from then on the
  broker owns it.
- subscribers in persistent sessions (one MQTT 5 at QoS 2, one MQTT 3.1.1
  at QoS 1) receive them; a QoS 2 message is delivered to the "application"
  when first seen and its packet identifier remembered until PUBREL (method
  B of MQTT 4.3.3), so a resend is not a duplicate but a second delivery is.
- a thing updates its device shadow with an increasing counter; an update
  is acknowledged at /accepted, and after each restart the shadow must hold
  at least the last acknowledged value.

Each cycle runs the load for a random time, kill -9s sedged, restarts it
and reconnects everyone. At the end the publishers stop, the subscribers
drain, and the report gives: acknowledged, lost (acknowledged, never
delivered to a persistent subscriber), QoS 2 duplicates, QoS 1 duplicates
(allowed: a redelivery of messages in flight at the crash), reordered, and
shadow updates lost. Exit status 1 if anything was lost or a QoS 2 message
was delivered twice.

    tests/soak/soak.py [--build DIR] [--cycles N] [--seed S]
"""

import argparse
import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import mqtt_raw as raw  # noqa: E402

TOPIC = "soak/%s/%d"
INFLIGHT = 16          # each publisher's window
BROKER_INFLIGHT = 32   # the broker's window to each subscriber (limits.max_inflight)
LAG = 20000            # publishers wait while a subscriber is this far behind
SESSION = {"session_expiry": 86400}


class Conn:
    """A non-blocking MQTT connection; `on_packet(conn, packet)` per packet."""

    def __init__(self, port, version, on_packet):
        self.version = version
        self.on_packet = on_packet
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.inbuf = bytearray()
        self.out = bytearray()
        self.closed = False

    def send(self, data):
        self.out += data
        self.flush()

    def flush(self):
        while self.out and not self.closed:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError:
                self.closed = True
                return
            del self.out[:n]

    def read(self):
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.inbuf += data
        while len(self.inbuf) >= 2:
            try:
                length, pos = raw.decode_vbi(self.inbuf, 1)
            except raw.MalformedResponse:
                return
            if len(self.inbuf) < pos + length:
                return
            first = self.inbuf[0]
            body = bytes(self.inbuf[pos:pos + length])
            del self.inbuf[:pos + length]
            self.on_packet(self, raw.Packet(first >> 4, first & 0x0F, body, self.version))

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


class Client:
    """A persistent-session client that reconnects after each restart."""

    def __init__(self, name, version):
        self.name, self.version = name, version
        self.conn = None
        self.connected = False

    def connect(self, port):
        self.conn = Conn(port, self.version, self.dispatch)
        self.connected = False
        if self.version == 5:
            self.conn.send(raw.connect(self.name, clean=False, props=SESSION, keepalive=0))
        else:
            self.conn.send(raw.connect(self.name, version=4, clean=False, keepalive=0))

    def dispatch(self, conn, p):
        if p.type == raw.CONNACK:
            if p.reason != 0:
                raise SystemExit("%s: CONNACK 0x%02x" % (self.name, p.reason))
            self.connected = True
            self.on_connack(p.session_present)
        else:
            self.on(p)

    def on_connack(self, session_present):
        pass

    def on(self, p):
        pass


class Publisher(Client):
    def __init__(self, name, qos):
        super().__init__(name, 5)
        self.qos = qos
        self.next_seq = 0
        self.next_pid = 1
        self.inflight = {}  # packet id -> [seq, state: "sent" | "rec"]
        self.acked = set()
        self.running = True

    def on_connack(self, session_present):
        for pid, (seq, state) in sorted(self.inflight.items(), key=lambda kv: kv[1][0]):
            if state == "rec" and session_present:
                self.conn.send(raw.ack(raw.PUBREL, pid))
            elif state == "sent":
                self.conn.send(raw.publish(TOPIC % (self.name, seq), b"%d" % seq, self.qos,
                                           packet_id=pid, dup=True))
            else:  # PUBREC'd, session gone: acknowledged all the same
                del self.inflight[pid]

    def pump(self):
        while self.connected and self.running and len(self.inflight) < INFLIGHT:
            pid = self.next_pid
            self.next_pid = pid % 65535 + 1
            if pid in self.inflight:
                return
            seq = self.next_seq
            self.next_seq += 1
            self.inflight[pid] = [seq, "sent"]
            self.conn.send(raw.publish(TOPIC % (self.name, seq), b"%d" % seq, self.qos,
                                       packet_id=pid))

    def on(self, p):
        entry = self.inflight.get(p.packet_id)
        if entry is None:
            return
        if p.type == raw.PUBACK:
            if p.reason >= 0x80:
                raise SystemExit("%s: PUBACK 0x%02x" % (self.name, p.reason))
            self.acked.add(entry[0])
            del self.inflight[p.packet_id]
        elif p.type == raw.PUBREC:
            if p.reason >= 0x80:
                raise SystemExit("%s: PUBREC 0x%02x" % (self.name, p.reason))
            self.acked.add(entry[0])
            entry[1] = "rec"
            self.conn.send(raw.ack(raw.PUBREL, p.packet_id))
        elif p.type == raw.PUBCOMP:
            del self.inflight[p.packet_id]


class Subscriber(Client):
    def __init__(self, name, version, qos):
        super().__init__(name, version)
        self.qos = qos
        self.pending_qos2 = set()
        self.seen = {}  # publisher -> set of seqs
        self.last = {}  # publisher -> highest seq delivered
        self.dup_qos1 = self.dup_qos2 = self.reordered = 0
        self.subscribed = False

    def on_connack(self, session_present):
        if not session_present:
            self.conn.send(raw.subscribe(1, [("soak/#", raw.sub_options(qos=self.qos))],
                                         self.version))

    def deliver(self, p):
        _, publisher, seq = p.topic.split("/")
        seq = int(seq)
        seen = self.seen.setdefault(publisher, set())
        if seq in seen:
            if p.qos == 2:
                self.dup_qos2 += 1
            else:
                self.dup_qos1 += 1
            return
        seen.add(seq)
        if seq < self.last.get(publisher, -1):
            self.reordered += 1
        self.last[publisher] = max(seq, self.last.get(publisher, -1))

    def on(self, p):
        if p.type == raw.SUBACK:
            self.subscribed = True
        elif p.type == raw.PUBLISH:
            if p.qos == 2:
                if p.packet_id not in self.pending_qos2:
                    self.deliver(p)
                    self.pending_qos2.add(p.packet_id)
                self.conn.send(raw.ack(raw.PUBREC, p.packet_id, self.version))
            else:
                self.deliver(p)
                if p.qos == 1:
                    self.conn.send(raw.ack(raw.PUBACK, p.packet_id, self.version))
        elif p.type == raw.PUBREL:
            self.pending_qos2.discard(p.packet_id)
            self.conn.send(raw.ack(raw.PUBCOMP, p.packet_id, self.version))


class ShadowThing(Client):
    TOPIC = "$aws/things/soak-thing/shadow/"

    def __init__(self):
        super().__init__("soak-thing", 5)
        self.n = 0
        self.waiting = None
        self.accepted = 0
        self.lost = 0
        self.checking = False

    def on_connack(self, session_present):
        self.conn.send(raw.subscribe(1, [(self.TOPIC + "+/+", raw.sub_options(qos=0))]))
        self.waiting = None
        self.checking = True
        self.conn.send(raw.publish(self.TOPIC + "get", json.dumps({"clientToken": "check"})))

    def pump(self):
        if self.connected and not self.checking and self.waiting is None:
            self.n += 1
            self.waiting = str(self.n)
            doc = {"state": {"reported": {"n": self.n}}, "clientToken": self.waiting}
            self.conn.send(raw.publish(self.TOPIC + "update", json.dumps(doc)))

    def on(self, p):
        if p.type != raw.PUBLISH:
            return
        doc = json.loads(p.payload or b"{}")
        token = doc.get("clientToken")
        if p.topic.endswith("get/accepted") and token == "check":
            n = doc.get("state", {}).get("reported", {}).get("n", 0)
            if n < self.accepted:
                self.lost += 1
            self.checking = False
        elif p.topic.endswith("get/rejected") and token == "check":
            if self.accepted:
                self.lost += 1
            self.checking = False
        elif p.topic.endswith("update/accepted") and token == self.waiting:
            self.accepted = max(self.accepted, int(token))
            self.waiting = None
        elif p.topic.endswith("update/rejected") and token == self.waiting:
            raise SystemExit("shadow update rejected: %r" % doc)


def start_sedged(sedged, root, port):
    log = open(os.path.join(root, "sedged.log"), "ab")
    proc = subprocess.Popen([sedged, "--config", os.path.join(root, "sedge.json")],
                            stdout=log, stderr=log, cwd=root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("sedged exited with %s; see %s/sedged.log"
                                 % (proc.returncode, root))
            time.sleep(0.02)
    raise SystemExit("sedged did not start")


def run(args):
    rnd = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="sedge-soak-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = {"data_dir": "data", "listeners": [{"type": "tcp", "bind": "127.0.0.1:%d" % port}],
           "limits": {"max_queued_messages": 100000}, "store": {"synchronous": "normal"},
           "log_level": "warn"}
    with open(os.path.join(root, "sedge.json"), "w") as f:
        json.dump(cfg, f)
    sedged = os.path.join(os.path.abspath(args.build), "sedged")
    proc = start_sedged(sedged, root, port)
    pubs = [Publisher("q1a", 1), Publisher("q1b", 1), Publisher("q2a", 2), Publisher("q2b", 2)]
    subs = [Subscriber("sub-v5", 5, 2), Subscriber("sub-v311", 4, 1)]
    shadow = ShadowThing()
    clients = subs + pubs + [shadow]

    def connect_all():
        for c in clients:
            c.connect(port)

    def lagging():
        """The subscribers are far behind (their queues would fill)."""
        acked = sum(len(p.acked) for p in pubs)
        return any(acked - sum(len(v) for v in s.seen.values()) > LAG for s in subs)

    def turn(seconds, pumping=True):
        sel = selectors.DefaultSelector()
        for c in clients:
            if c.conn and not c.conn.closed:
                sel.register(c.conn.sock, selectors.EVENT_READ, c)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.01):
                key.data.conn.read()
            behind = pumping and lagging()
            for c in clients:
                if pumping and isinstance(c, ShadowThing) or (
                        pumping and not behind and isinstance(c, Publisher)):
                    c.pump()
                if c.conn:
                    c.conn.flush()
        sel.close()

    for c in subs:
        c.connect(port)
    turn(0.5, pumping=False)
    if not all(s.subscribed for s in subs):
        raise SystemExit("the subscribers did not subscribe")
    for c in pubs + [shadow]:
        c.connect(port)
    for cycle in range(args.cycles):
        turn(rnd.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for c in clients:
            c.conn.close()
        proc = start_sedged(sedged, root, port)
        connect_all()
        turn(0.05)
        print("cycle %d/%d: %d acknowledged so far" % (
            cycle + 1, args.cycles, sum(len(p.acked) for p in pubs)), flush=True)
    # Stop publishing, let everything in flight complete, and drain.
    for p in pubs:
        p.running = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        turn(0.5, pumping=False)
        if all(not p.inflight for p in pubs) and all(
                all(set(p.acked) <= s.seen.get(p.name, set()) for p in pubs) for s in subs):
            break
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)

    acked = sum(len(p.acked) for p in pubs)
    report = {"cycles": args.cycles, "acknowledged": acked, "shadow_updates_accepted":
              shadow.accepted, "shadow_updates_lost": shadow.lost}
    failed = shadow.lost > 0
    # A crash may redeliver, at QoS 1, what was in flight to the subscriber
    # (the broker's window) and what the QoS 1 publishers resend without
    # having seen its PUBACK (their windows): no more.
    window = BROKER_INFLIGHT + INFLIGHT * sum(1 for p in pubs if p.qos == 1)
    for s in subs:
        lost = sum(len(p.acked - s.seen.get(p.name, set())) for p in pubs
                   if s.qos >= 1)
        report[s.name] = {"lost": lost, "qos2_duplicates": s.dup_qos2,
                          "qos1_duplicates": s.dup_qos1,
                          "qos1_duplicates_bound": window * (args.cycles + 1),
                          "reordered": s.reordered}
        failed |= lost > 0 or s.dup_qos2 > 0 or s.dup_qos1 > window * (args.cycles + 1)
    print(json.dumps(report, indent=1))
    print("soak %s (data and log in %s)" % ("FAILED" if failed else "passed", root))
    if not failed:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    sys.exit(run(ap.parse_args()))


if __name__ == "__main__":
    main()
