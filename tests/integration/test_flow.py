"""Flow control: a subscriber that falls behind pauses the connections that
publish to it (TCP pushes back), instead of its QoS 0 being dropped; only
those publishers wait; a subscriber stuck for slow_reader_timeout_s is
dealt with by slow_reader_policy (issue 15, part 1).
"""

import socket
import threading
import time

import mqtt_raw as raw
from conftest import TIMEOUT, wait_for


class Flooder:
    """Writes QoS 0 PUBLISHes as fast as the socket takes them, keeping
    count of the whole packets sent."""

    def __init__(self, sedge, client_id, topic, count, size=64):
        self.c = sedge.raw()
        self.c.connect(client_id)
        self.packet = raw.publish(topic, b"x" * size)
        self.count, self.sent = count, 0
        self.c.sock.setblocking(False)
        self.pending = b""
        self.blocked = 0.0  # seconds spent pushed back

    def push(self, seconds):
        """Send for up to `seconds`; True once every packet is out."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.pending:
                if self.sent == self.count:
                    return True
                self.pending = self.packet
                self.sent += 1
            try:
                self.pending = self.pending[self.c.sock.send(self.pending):]
            except BlockingIOError:
                time.sleep(0.01)
                self.blocked += 0.01
        return self.sent == self.count and not self.pending


class Counter(threading.Thread):
    """Reads PUBLISHes on a raw connection and counts them per topic; can
    be told to stop reading (a stuck subscriber)."""

    def __init__(self, sedge, client_id, filt, qos=0, rcvbuf=None, pace=0.0):
        super().__init__(daemon=True)
        self.pace = pace  # seconds to sleep after each read: a slow reader
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", sedge.port))
        self.sock.sendall(raw.connect(client_id) + raw.subscribe(1, [(filt, qos)]))
        self.counts = {}
        self.reading = threading.Event()
        self.reading.set()
        self.stop = False
        self.suback = threading.Event()
        self.buf = bytearray()

    def run(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            if not self.reading.wait(0.1):
                continue
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            if self.pace:
                time.sleep(self.pace)
            self.buf += data
            while len(self.buf) >= 2:
                try:
                    length, pos = raw.decode_vbi(self.buf, 1)
                except raw.MalformedResponse:
                    break  # the length itself is not complete yet
                if len(self.buf) < pos + length:
                    break
                p = raw.Packet(self.buf[0] >> 4, self.buf[0] & 15, bytes(self.buf[pos:pos + length]), 5)
                del self.buf[:pos + length]
                if p.type == raw.SUBACK:
                    self.suback.set()
                elif p.type == raw.PUBLISH:
                    self.counts[p.topic] = self.counts.get(p.topic, 0) + 1
                    if p.qos == 1:
                        self.sock.sendall(raw.ack(raw.PUBACK, p.packet_id))

    def total(self):
        return sum(self.counts.values())

    def close(self):
        self.stop = True
        self.sock.close()


def start(counter):
    counter.start()
    assert counter.suback.wait(TIMEOUT)
    return counter


def test_a_qos0_burst_into_one_subscriber_loses_nothing(sedge):
    # 4 publishers -> 1 subscriber, as fast as they can: all of it arrives
    # (was: 40 % dropped past max_output_bytes).
    # 16 MB in all, to a subscriber that reads slower than they write.
    sub = start(Counter(sedge, "burst-sub", "burst/#", rcvbuf=65536, pace=0.002))
    pubs = [Flooder(sedge, "burst-pub-%d" % i, "burst/%d" % i, 40000) for i in range(4)]
    deadline = time.monotonic() + 120
    while not all(p.push(0.05) for p in pubs):
        assert time.monotonic() < deadline, [p.sent for p in pubs]
    wait_for(lambda: sub.total() == 160000, timeout=TIMEOUT * 6,
             what="every message at the subscriber (got %r)" % sub.counts)
    assert sedge.status()["flow_pauses"] > 0
    st = sedge.status()
    assert st["messages_dropped"] == 0, st
    sub.close()


def test_a_stuck_subscriber_holds_back_only_its_own_publishers(sedge):
    stuck = start(Counter(sedge, "stuck", "slow/#", rcvbuf=4096))
    stuck.reading.clear()
    fast = start(Counter(sedge, "fast", "quick/#"))
    flood = Flooder(sedge, "to-stuck", "slow/t", 100000, size=1000)
    flood.push(3.0)
    wait_for(lambda: sedge.status()["flow_pauses"] > 0, what="the flooder paused")
    assert flood.blocked > 0
    # Another publisher, to another subscriber, is not held back.
    other = sedge.raw()
    other.connect("to-fast")
    for i in range(200):
        other.publish("quick/t", b"%d" % i, qos=1)
    wait_for(lambda: fast.total() == 200, what="the fast subscriber's messages")
    # Once the stuck subscriber reads again, what was sent to it arrives.
    stuck.reading.set()
    deadline = time.monotonic() + 60
    while not flood.push(0.05) and flood.sent < 20000:
        assert time.monotonic() < deadline
    while flood.pending:
        flood.push(0.05)
    sent = flood.sent
    wait_for(lambda: stuck.total() == sent, timeout=TIMEOUT * 3,
             what="all %d at the once stuck subscriber (got %d)" % (sent, stuck.total()))
    assert sedge.status()["messages_dropped"] == 0
    for c in (stuck, fast):
        c.close()


def test_a_stuck_subscriber_is_disconnected_after_slow_reader_timeout(make_sedge):
    sedge = make_sedge(limits={"slow_reader_timeout_s": 2})
    stuck = start(Counter(sedge, "stuck-d", "slowd/#", rcvbuf=4096))
    stuck.reading.clear()
    flood = Flooder(sedge, "to-stuck-d", "slowd/t", 100000, size=1000)
    flood.push(1.0)
    wait_for(lambda: sedge.status()["flow_pauses"] > 0, what="the flooder paused")
    sedge.wait_log("slow reader: nothing it was sent was read for too long")
    # Its publisher goes on.
    before = flood.sent
    flood.push(1.0)
    assert flood.sent > before + 100
    assert sedge.status()["slow_readers"] == 1
    stuck.close()


def test_a_stuck_subscriber_can_have_its_qos0_dropped_instead(make_sedge):
    sedge = make_sedge(limits={"slow_reader_timeout_s": 2, "slow_reader_policy": "drop_qos0",
                               "max_output_bytes": 1 << 20})
    stuck = start(Counter(sedge, "stuck-q", "slowq/#", rcvbuf=4096))
    stuck.reading.clear()
    flood = Flooder(sedge, "to-stuck-q", "slowq/t", 100000, size=1000)
    flood.push(1.0)
    sedge.wait_log("slow reader .* dropped")
    before = flood.sent
    flood.push(1.0)
    assert flood.sent > before + 100
    st = sedge.status()
    assert st["messages_dropped"] > 0 and st["slow_readers"] == 1 and st["connections"] == 2
    # Reading again, it catches up and gets messages again.
    stuck.reading.set()
    sedge.wait_log("caught up with its output")
    stuck.close()
