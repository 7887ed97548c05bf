"""Fan-out of big payloads (issue 15, part 3): a message is held once and
every subscriber's output refers to its payload instead of holding a copy.
A slow subscriber among fast ones holds nobody back and costs no copy per
subscriber; a subscriber that goes away in the middle of a shared payload
leaves the others' copies of nothing intact.
"""

import socket
import struct
import threading
import time

import mqtt_raw as raw
import pytest
from conftest import SANITIZED, TIMEOUT, wait_for

MB = 1 << 20
FILL = bytes(range(256)) * 4096  # 1 MB


def payload(seq, size=MB):
    """Message `seq`: its number, then a pattern (a misplaced byte shows)."""
    return struct.pack("!I", seq) + FILL[seq % 251:][:size - 4]


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Reader(threading.Thread):
    """Reads the PUBLISHes of one connection (TCP or TLS), checking each
    payload against payload(seq) in order; acknowledges QoS 1."""

    def __init__(self, client, size=MB, reading=True):
        super().__init__(daemon=True)
        self.c, self.size = client, size
        self.c.sock.settimeout(0.2)
        self.got, self.bad, self.dups = 0, [], 0
        self.reading = threading.Event()
        if reading:
            self.reading.set()
        self.stop = False
        # What the client read ahead (after a CONNACK: the resent ones).
        self.early, self.buf = list(client.pending), bytearray(client.buf)
        client.pending.clear()
        client.buf.clear()

    def handle(self, p):
        if p.type != raw.PUBLISH:
            return
        if p.qos:
            self.c.sock.sendall(raw.ack(raw.PUBACK, p.packet_id))
        seq = struct.unpack("!I", p.payload[:4])[0] if len(p.payload) >= 4 else -1
        if p.dup and seq < self.got:
            self.dups += 1
            return
        if seq != self.got or p.payload != payload(seq, self.size):
            self.bad.append((self.got, seq, len(p.payload)))
        self.got += 1

    def run(self):
        for p in self.early:
            self.handle(p)
        buf = self.buf
        self.parse(buf)
        while not self.stop:
            if not self.reading.wait(0.1):
                continue
            try:
                data = self.c.sock.recv(1 << 18)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            self.parse(buf)

    def parse(self, buf):
        pos = 0
        while len(buf) - pos >= 2:
            try:
                length, start = raw.decode_vbi(buf, pos + 1)
            except raw.MalformedResponse:
                break
            if len(buf) < start + length:
                break
            p = raw.Packet(buf[pos] >> 4, buf[pos] & 15, buf[start:start + length],
                           self.c.version)
            pos = start + length
            self.handle(p)
        del buf[:pos]

    def close(self):
        self.stop = True
        self.c.close()


def subscriber(sedge, name, filt, qos=0, cert=None, version=5, **connect):
    c = sedge.raw(version=version, cert=cert)
    c.connect(name, **connect)
    c.subscribe([(filt, qos)])
    return c


def test_a_slow_subscriber_among_fast_ones_on_a_1mb_fanout(make_sedge):
    sedge = make_sedge(limits={"slow_reader_timeout_s": 1})
    n_fast, count = 20, 20
    fast = [Reader(subscriber(sedge, "fast%d" % i, "big/#")) for i in range(n_fast)]
    for r in fast:
        r.start()
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", sedge.port))
    slow.sendall(raw.connect("slow") + raw.subscribe(1, [("big/#", 0)]))
    wait_for(lambda: sedge.status()["connections"] == n_fast + 1, what="all subscribed")
    time.sleep(0.2)  # the slow one's SUBACK is out before the burst
    before = vm_kb(sedge.pid, "VmRSS")
    pub = sedge.raw()
    pub.connect("pub")
    for seq in range(count):
        pub.send(raw.publish("big/frame", payload(seq)))
    wait_for(lambda: all(r.got >= count for r in fast), timeout=6 * TIMEOUT,
             what="every fast subscriber has all %d" % count)
    for r in fast:
        assert r.got == count and not r.bad, (r.got, r.bad[:3])
    peak = vm_kb(sedge.pid, "VmHWM")
    # Held once: the message being delivered, the publisher's packet being
    # read and the few the slow one still has queued (max_output_bytes:
    # 4 MB) -- not one copy per subscriber (20 MB for each message).
    if not SANITIZED:  # ASan keeps freed memory in quarantine
        assert peak - before < 10 * 1024, "RSS grew by %d KB" % (peak - before)
    slow.close()
    for r in fast:
        r.close()


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_subscriber_gone_in_the_middle_of_a_shared_payload(make_sedge, tls):
    sedge = make_sedge(tls=tls, limits={"slow_reader_timeout_s": 2})
    cert = (lambda name: name) if tls else (lambda name: None)
    count, size = 12, MB
    fast = [Reader(subscriber(sedge, "f%d" % i, "cam/#", cert=cert("f%d" % i)), size)
            for i in range(3)]
    for r in fast:
        r.start()
    # Reads nothing, so its write of the shared payloads is left pending,
    # then resets the connection.
    quitter = subscriber(sedge, "quitter", "cam/#", cert=cert("quitter"))
    # A QoS 1 subscriber whose session stays: it goes away mid-payload
    # too, and gets every message again, intact, when it comes back.
    durable = subscriber(sedge, "durable", "cam/#", qos=1, cert=cert("durable"), version=4,
                         clean=False)
    pub = sedge.raw()
    pub.connect("pub")
    for seq in range(count):
        pub.publish("cam/frame", payload(seq, size), qos=1, wait=False)
        if seq == count // 2:
            quitter.abort()
            durable.abort()
    wait_for(lambda: all(r.got >= count for r in fast), timeout=6 * TIMEOUT,
             what="every subscriber still there has all %d" % count)
    for r in fast:
        assert r.got == count and not r.bad, (r.got, r.bad[:3])
    back = sedge.raw(version=4, cert=cert("durable"))
    back.connect("durable", clean=False)
    again = Reader(back, size)
    again.start()
    wait_for(lambda: again.got >= count, timeout=6 * TIMEOUT, what="the durable one has all")
    assert again.got == count and not again.bad, (again.got, again.bad[:3])
    # The broker goes on: one more to everybody.
    pub.publish("cam/frame", payload(count, size), qos=1, wait=False)
    wait_for(lambda: all(r.got == count + 1 for r in fast + [again]), what="one more")
    for r in fast + [again]:
        r.close()


def test_one_publish_to_subscribers_of_every_shape_gives_each_its_own_packet(make_sedge):
    """A message is encoded once per shape (MQTT version, QoS, retain) and
    copied to the other subscribers of that shape with their own packet
    id. Sessions at different packet ids, versions, QoS and with or
    without a subscription identifier each get exactly their PUBLISH, and
    their acknowledgements match: the next message follows at once."""
    from mqtt_raw import PUBLISH
    s = make_sedge()
    subs = {}

    def sub(name, version, qos, props=None, warm=0):
        c = s.raw(version=version)
        assert c.connect(name, version=version).reason == 0
        if warm:  # move this session's packet ids along
            c.subscribe([("warm/%s" % name, 1)])
            for i in range(warm):
                pub.publish("warm/%s" % name, b"w", qos=1)
                assert c.recv_publish().packet_id == i + 1
        sa = c.subscribe([("shape/x", qos)], props=props)
        assert all(r < 0x80 for r in sa.reasons), sa
        subs[name] = (c, version, qos, props)
        return c

    pub = s.raw(version=5)
    assert pub.connect("shape-pub").reason == 0
    sub("v4-q1-a", 4, 1, warm=3)
    sub("v4-q1-b", 4, 1)
    sub("v4-q0", 4, 0)
    sub("v5-q1-a", 5, 1, warm=5)
    sub("v5-q1-b", 5, 1)
    sub("v5-q1-id", 5, 1, props={"sub_id": 7})
    sub("v5-q2", 5, 2, warm=2)
    expected_id = {"v4-q1-a": 4, "v4-q1-b": 1, "v5-q1-a": 6, "v5-q1-b": 1, "v5-q1-id": 1,
                   "v5-q2": 3}
    for round_ in range(2):
        payload = b"shape-%d" % round_
        pub.publish("shape/x", payload, qos=2)
        for name, (c, version, qos, props) in subs.items():
            p = c.expect(PUBLISH)
            assert (p.topic, p.payload, p.qos, p.dup) == ("shape/x", payload, qos, False), \
                (name, p)
            if qos:
                assert p.packet_id == expected_id[name] + round_, (name, p)
            if version == 5:
                want = [7] if props else None
                assert p.props.get("sub_id") == want, (name, p)
            c.ack_publish(p)
