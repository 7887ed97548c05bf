"""Persistent sessions, session expiry, and what survives kill -9.

What the broker acknowledged must survive a crash: a QoS 1 message the
publisher got a PUBACK for and that was routed to a persistent session is
delivered after kill -9 and restart (duplicates are allowed, losses not).
"""

import threading

import pytest

import mqtt_raw as raw
from conftest import TIMEOUT, wait_for


def persistent(sedge, client_id, version, **kw):
    """A client whose session outlives its connection."""
    if version == 4:
        return sedge.client(client_id, version=4, clean=False, **kw)
    return sedge.client(client_id, version=5, clean=False, session_expiry=3600, **kw)


@pytest.mark.parametrize("version", [4, 5])
def test_offline_persistent_session_gets_qos1_and_qos2_messages_on_reconnect(sedge, version):
    sub = persistent(sedge, "offline-sub", version)
    assert sub.subscribe("off/#", 2) == [2]
    sub.disconnect()
    pub = sedge.client("offline-pub")
    pub.publish("off/1", b"one", qos=1)
    pub.publish("off/2", b"two", qos=2)
    ack = sub.connect()
    # [MQTT-3.2.2-2] / v5 [MQTT-3.2.2-3]: the session is resumed...
    assert ack.session_present == 1
    # ...and [MQTT-3.1.2-5]: what came while it was away is delivered.
    got = sorted((m.topic, m.payload, m.qos) for m in sub.get_many(2))
    assert got == [("off/1", b"one", 1), ("off/2", b"two", 2)]


@pytest.mark.parametrize("version", [4, 5])
def test_subscriptions_survive_a_disconnect(sedge, version):
    sub = persistent(sedge, "keeps-subs", version)
    sub.subscribe("ks/+", 1)
    sub.disconnect()
    assert sub.connect().session_present == 1
    sedge.client("ks-pub").publish("ks/x", b"still subscribed", qos=1)
    m = sub.get()
    assert (m.topic, m.payload) == ("ks/x", b"still subscribed")


@pytest.mark.parametrize("version", [4, 5])
def test_clean_start_discards_the_stored_session(sedge, version):
    sub = persistent(sedge, "forgetful", version)
    sub.subscribe("fg/#", 1)
    sub.disconnect()
    pub = sedge.client("fg-pub")
    pub.publish("fg/queued", b"for the old session", qos=1)
    ack = sub.connect(clean=True)
    assert ack.session_present == 0
    sub.subscribe("fg/marker", 1)
    pub.publish("fg/after", b"not subscribed any more", qos=1)
    pub.publish("fg/marker", b"m", qos=1)
    got = [m.topic for m in sub.get_until("fg/marker")]
    assert got == ["fg/marker"]


def test_session_with_expiry_2s_is_gone_after_2s_offline(sedge):
    sub = sedge.client("brief", clean=False, session_expiry=2)
    sub.subscribe("brief/#", 1)
    sub.disconnect()
    sedge.wait_status(lambda s: s["sessions_persistent"] == 0, timeout=15,
                      what="the session to expire")
    # [MQTT-3.1.2-23]: the session is discarded once the interval passes.
    ack = sub.connect(clean=False, session_expiry=60)
    assert ack.session_present == 0
    sedge.client("brief-pub").publish("brief/x", b"no subscription", qos=1)
    sub.subscribe("brief/marker", 1)
    sedge.client("brief-pub2").publish("brief/marker", b"m", qos=1)
    assert [m.topic for m in sub.get_until("brief/marker")] == ["brief/marker"]


def test_session_loaded_at_restart_expires_when_its_interval_ends(sedge):
    sub = sedge.client("reloaded", clean=False, session_expiry=4)
    sub.subscribe("reloaded/#", 1)
    sub.disconnect()
    sedge.kill9()
    sedge.start()
    # Loaded from the store with time left: it must still end on time.
    assert sedge.status()["sessions_persistent"] == 1
    sedge.wait_status(lambda s: s["sessions_persistent"] == 0, timeout=15,
                      what="the reloaded session to expire")
    assert sub.connect(clean=False, session_expiry=60).session_present == 0


def test_session_with_expiry_is_kept_while_within_its_interval(sedge):
    sub = sedge.client("lasting", clean=False, session_expiry=120)
    sub.subscribe("lasting/#", 1)
    sub.disconnect()
    assert sub.connect(clean=False).session_present == 1


def test_500_acknowledged_qos1_messages_survive_kill_9(sedge):
    sub = persistent(sedge, "crash-sub", 5)
    sub.subscribe("crash/#", 1)
    sub.disconnect()
    pub = sedge.client("crash-pub")
    infos = [pub.publish("crash/m", b"%d" % i, qos=1, wait=False) for i in range(500)]
    for info in infos:
        info.wait_for_publish(TIMEOUT * 3)
        assert info.is_published()
    pub.close()
    sedge.kill9()
    sedge.start()
    assert sub.connect().session_present == 1
    got = []
    while len(set(got)) < 500:
        got.append(int(sub.get(timeout=TIMEOUT * 3).payload))
    assert set(got) == set(range(500))
    # [MQTT-4.6.0-5]: still in publish order (a resent duplicate aside).
    firsts = list(dict.fromkeys(got))
    assert firsts == list(range(500)), firsts[:20]


def test_every_qos1_message_acknowledged_before_a_kill_9_mid_stream_is_delivered(make_sedge):
    sedge = make_sedge(limits={"max_queued_messages": 100000})
    sub = sedge.raw(version=4)
    assert sub.connect("mid-sub", version=4, clean=False).reason == 0
    sub.subscribe([("mid/#", 1)])
    sub.disconnect()

    pub = sedge.raw(version=4)
    pub.connect("mid-pub", version=4)
    acked, lock, window = set(), threading.Lock(), 16

    def publish_forever():
        outstanding = {}
        i = 0
        try:
            while True:
                while len(outstanding) < window:
                    pid = i % 65535 + 1
                    pub.send(raw.publish("mid/m", b"%d" % i, qos=1, packet_id=pid, version=4))
                    outstanding[pid] = i
                    i += 1
                p = pub.recv(timeout=TIMEOUT * 3)
                if p.type == raw.PUBACK and p.packet_id in outstanding:
                    with lock:
                        acked.add(outstanding.pop(p.packet_id))
        except (raw.ConnectionClosed, OSError, TimeoutError):
            return

    t = threading.Thread(target=publish_forever, daemon=True)
    t.start()
    wait_for(lambda: len(acked) >= 300, timeout=TIMEOUT * 6, what="300 PUBACKs")
    sedge.kill9()
    t.join(TIMEOUT)
    with lock:
        must_have = set(acked)
    sedge.start()
    sub = sedge.raw(version=4, timeout=TIMEOUT * 3)
    assert sub.connect("mid-sub", version=4, clean=False).session_present
    got = set()
    while not must_have <= got:
        try:
            p = sub.recv_publish()
        except TimeoutError:
            missing = sorted(must_have - got)
            raise AssertionError("%d acknowledged messages lost after kill -9, e.g. %s"
                                 % (len(missing), missing[:10])) from None
        got.add(int(p.payload))


def test_acknowledged_qos2_messages_survive_kill_9(sedge):
    sub = persistent(sedge, "crash2-sub", 4)
    sub.subscribe("crash2/#", 2)
    sub.disconnect()
    pub = sedge.raw()
    pub.connect("crash2-pub")
    for i in range(100):
        assert pub.publish("crash2/m", b"%d" % i, qos=2).type == raw.PUBCOMP
    sedge.kill9()
    sedge.start()
    assert sub.connect().session_present == 1
    got = set()
    while len(got) < 100:
        got.add(int(sub.get(timeout=TIMEOUT * 3).payload))
    assert got == set(range(100))


def test_retained_messages_survive_kill_9(sedge):
    pub = sedge.client("rk-pub")
    pub.publish("rk/a", b"alpha", qos=1, retain=True)
    pub.publish("rk/b", b"beta", qos=1, retain=True)
    pub.publish("rk/b", b"beta2", qos=1, retain=True)
    pub.publish("rk/c", b"gamma", qos=1, retain=True)
    pub.publish("rk/c", b"", qos=1, retain=True)
    sedge.kill9()
    sedge.start()
    sub = sedge.client("rk-sub")
    sub.subscribe("rk/#", 1)
    sedge.client("rk-marker").publish("rk0/marker", b"m", qos=1, retain=True)
    sub.subscribe("rk0/marker", 1)
    got = {m.topic: (m.payload, m.retain) for m in sub.get_until("rk0/marker")}
    del got["rk0/marker"]
    assert got == {"rk/a": (b"alpha", 1), "rk/b": (b"beta2", 1)}


@pytest.mark.parametrize("version", [4, 5])
def test_subscriptions_survive_kill_9(sedge, version):
    sub = persistent(sedge, "subs-crash", version)
    pub = sedge.client("sk-pub", connect=False)
    # Three rounds: each subscription is acknowledged, then sedged is
    # killed at once; every SUBACKed subscription must be there after.
    for n in range(3):
        assert sub.subscribe("sk/%d/+" % n, 2) == [2]
        sedge.kill9()
        sub.wait_disconnected()
        sedge.start()
        assert sub.connect().session_present == 1, "the session is gone (round %d)" % n
    pub.connect()
    for n in range(3):
        pub.publish("sk/%d/x" % n, b"after crash", qos=2)
    sub.subscribe("sk-marker", 1)
    pub.publish("sk-marker", b"m", qos=1)
    got = sorted((m.topic, m.qos) for m in sub.get_until("sk-marker")[:-1])
    assert got == [("sk/%d/x" % n, 2) for n in range(3)]


def test_unacknowledged_inflight_message_is_redelivered_after_kill_9(sedge):
    sub = sedge.raw(version=4)
    sub.connect("inflight", version=4, clean=False)
    sub.subscribe([("if/#", 1)])
    sedge.client("if-pub").publish("if/x", b"in flight", qos=1)
    p = sub.recv_publish(auto_ack=False)
    assert p.payload == b"in flight"
    sedge.kill9()
    sedge.start()
    sub = sedge.raw(version=4)
    assert sub.connect("inflight", version=4, clean=False).session_present
    again = sub.recv_publish()
    assert (again.topic, again.payload) == ("if/x", b"in flight")


def test_sessions_and_queued_messages_survive_a_clean_restart(sedge):
    sub = persistent(sedge, "restart-sub", 5)
    sub.subscribe("rs/#", 1)
    sub.disconnect()
    pub = sedge.client("rs-pub")
    for i in range(20):
        pub.publish("rs/m", b"%d" % i, qos=1)
    sedge.restart()
    assert sub.connect().session_present == 1
    got = [int(m.payload) for m in sub.get_many(20)]
    assert got == list(range(20))


def test_queue_limit_drops_messages_and_counts_them(make_sedge):
    sedge = make_sedge(limits={"max_queued_messages": 5})
    sub = persistent(sedge, "small-queue", 5)
    sub.subscribe("sq/#", 1)
    sub.disconnect()
    mark = sedge.log_mark()
    pub = sedge.client("sq-pub")
    for i in range(8):
        pub.publish("sq/m", b"%d" % i, qos=1)
    status = sedge.wait_status(lambda s: s["messages_dropped"] >= 3, what="3 drops")
    assert status["messages_dropped"] == 3
    sedge.wait_log(r"small-queue", since=mark)
    sub.connect()
    got = [int(m.payload) for m in sub.get_many(5)]
    assert len(set(got)) == 5


def test_sigterm_right_after_writes_commits_them_without_error(sedge):
    sub = persistent(sedge, "late-sub", 4)
    assert sub.subscribe("late/#", 1) == [1]
    mark = sedge.log_mark()
    assert sedge.stop() == 0
    shutdown = sedge.log_since(mark)
    # A clean stop writes what is pending; it has nothing to report as lost.
    assert not [l for l in shutdown.splitlines() if " E " in l], shutdown
    sedge.start()
    sub.wait_disconnected()
    assert sub.connect().session_present == 1
    sedge.client("late-pub").publish("late/x", b"x", qos=1)
    assert sub.get().payload == b"x"


def test_subscription_options_and_identifier_survive_kill_9(sedge):
    c = sedge.raw()
    c.connect("opts", clean=False, props={"session_expiry": 3600})
    c.subscribe([("opt/#", raw.sub_options(2, no_local=True, retain_as_published=True))],
                props={"sub_id": 77})
    # A retained publish is acknowledged after its commit, and commits are
    # in order: once it is, the subscription is on disk too.
    c.publish("opt-sync", b"x", qos=1, retain=True)
    sedge.kill9()
    sedge.start()
    c = sedge.raw()
    assert c.connect("opts", clean=False, props={"session_expiry": 3600}).session_present
    c.publish("opt/own", b"no local", qos=1)
    sedge.client("opt-pub").publish("opt/x", b"kept", qos=2, retain=True)
    p = c.recv_publish()
    assert (p.topic, p.qos, p.retain, p.props.get("sub_id")) == ("opt/x", 2, True, [77]), p


def test_publisher_gone_before_its_held_puback_commits_loses_nothing(sedge):
    """A QoS 1 PUBACK owed to a persistent session waits for the store's
    commit; a publisher that resets its connection before then must leave
    the broker serving (its held reply is dropped, not sent to a freed
    connection) and the messages it handed over are still delivered."""
    import socket
    import struct

    sub = persistent(sedge, "held-sub", 5)
    assert sub.subscribe("held/#", 1) == [1]
    sub.disconnect()
    for i in range(20):
        pub = sedge.raw()
        pub.connect("held-pub-%d" % i)
        pub.publish("held/%d" % i, b"%d" % i, qos=1, wait=False)
        # Reset at once (SO_LINGER 0): the connection is gone long before
        # the commit its PUBACK waits for.
        pub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        pub.sock.close()
    sedge.wait_status(lambda s: s["connections"] == 0, what="publishers gone")
    sub.connect()
    got = sorted(int(m.payload) for m in sub.get_many(20))
    assert got == list(range(20))
    assert sedge.proc.poll() is None
