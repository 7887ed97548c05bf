"""Quality of service 0, 1 and 2, in both directions."""

import pytest

import mqtt_raw as raw
from conftest import mosquitto_pub


@pytest.mark.parametrize("version", [4, 5])
def test_delivery_qos_is_the_minimum_of_publish_and_subscription_qos(sedge, version):
    sub = sedge.client("qsub", version=version)
    for q in range(3):
        assert sub.subscribe("q/sub%d" % q, q) == [q]
    pub = sedge.client("qpub", version=version)
    for sq in range(3):
        for pq in range(3):
            pub.publish("q/sub%d" % sq, b"p%d" % pq, qos=pq)
    got = {(m.topic, m.payload): m.qos for m in sub.get_many(9)}
    # [MQTT-3.8.4-6] (3.1.1: [MQTT-3.8.4-8]): the minimum of the two.
    want = {("q/sub%d" % sq, b"p%d" % pq): min(sq, pq) for sq in range(3) for pq in range(3)}
    assert got == want


def test_mosquitto_clients_exchange_messages_at_every_qos(sedge):
    sub = sedge.mosquitto_sub("-h", "127.0.0.1", "-p", sedge.port, "-i", "msub", "-t", "mq/#",
                              "-q", "2", "-v", "-C", "3", "-W", "30")
    sub.wait_subscribed()
    for q in range(3):
        r = mosquitto_pub("-h", "127.0.0.1", "-p", sedge.port, "-i", "mpub%d" % q,
                          "-t", "mq/%d" % q, "-m", "hello %d" % q, "-q", q)
        assert r.returncode == 0, r.stderr
    rc, lines = sub.finish()
    assert rc == 0, lines
    got = sorted(l for l in lines if l.startswith("mq/"))
    assert got == ["mq/0 hello 0", "mq/1 hello 1", "mq/2 hello 2"]


def test_mosquitto_clients_exchange_messages_over_mqtt5(sedge):
    sub = sedge.mosquitto_sub("-h", "127.0.0.1", "-p", sedge.port, "-V", "mqttv5",
                              "-i", "msub5", "-t", "m5/#", "-q", "1", "-v", "-C", "1", "-W", "30")
    sub.wait_subscribed()
    r = mosquitto_pub("-h", "127.0.0.1", "-p", sedge.port, "-V", "mqttv5", "-t", "m5/x",
                      "-m", "five", "-q", "1")
    assert r.returncode == 0, r.stderr
    rc, lines = sub.finish()
    assert rc == 0 and "m5/x five" in lines, lines


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_publish_resent_before_pubrel_is_delivered_once(sedge, version):
    sub = sedge.raw(version=version)
    sub.connect("once-sub")
    sub.subscribe([("once/#", 2)])
    pub = sedge.raw(version=version)
    pub.connect("once-pub")
    pub.send(raw.publish("once/x", b"exactly once", qos=2, packet_id=7, version=version))
    assert pub.expect(raw.PUBREC).packet_id == 7
    # The publisher did not see the PUBREC (as far as it knows) and resends.
    pub.send(raw.publish("once/x", b"exactly once", qos=2, dup=True, packet_id=7,
                         version=version))
    assert pub.expect(raw.PUBREC).packet_id == 7
    pub.send(raw.ack(raw.PUBREL, 7, version))
    assert pub.expect(raw.PUBCOMP).packet_id == 7
    pub.publish("once/marker", b"end", qos=1)
    # [MQTT-4.3.3-?] exactly once: the copy is not delivered a second time.
    got = []
    while True:
        p = sub.recv_publish()
        got.append((p.topic, p.payload))
        if p.topic == "once/marker":
            break
    assert got == [("once/x", b"exactly once"), ("once/marker", b"end")]


@pytest.mark.parametrize("version", [4, 5])
def test_unacknowledged_qos1_message_is_resent_with_dup_on_reconnect(sedge, version):
    persist = {} if version == 4 else {"props": {"session_expiry": 300}}
    sub = sedge.raw(version=version)
    assert sub.connect("dup-sub", clean=False, **persist).reason == 0
    sub.subscribe([("dup/#", 1)])
    sedge.client("dup-pub").publish("dup/x", b"ack me", qos=1)
    first = sub.recv_publish(auto_ack=False)
    assert first.qos == 1 and not first.dup
    sub.abort()
    sub = sedge.raw(version=version)
    ack = sub.connect("dup-sub", clean=False, **persist)
    assert ack.session_present
    again = sub.recv_publish(auto_ack=False)
    # [MQTT-4.4.0-1]: resent with the original packet id; [MQTT-3.3.1-1]: DUP 1.
    assert (again.topic, again.payload, again.packet_id) == ("dup/x", b"ack me", first.packet_id)
    assert again.dup
    sub.ack_publish(again)
    sub.ping()


@pytest.mark.parametrize("version", [4, 5])
def test_pubrel_is_resent_on_reconnect_when_pubcomp_was_not_sent(sedge, version):
    persist = {} if version == 4 else {"props": {"session_expiry": 300}}
    sub = sedge.raw(version=version)
    assert sub.connect("rel-sub", clean=False, **persist).reason == 0
    sub.subscribe([("rel/#", 2)])
    sedge.client("rel-pub").publish("rel/x", b"two", qos=2)
    p = sub.recv_publish(auto_ack=False)
    assert p.qos == 2
    sub.send(raw.ack(raw.PUBREC, p.packet_id, version))
    assert sub.expect(raw.PUBREL).packet_id == p.packet_id
    sub.abort()
    sub = sedge.raw(version=version)
    assert sub.connect("rel-sub", clean=False, **persist).session_present
    # [MQTT-4.4.0-1]: the PUBREL is resent, not the PUBLISH.
    rel = sub.recv()
    assert rel.type == raw.PUBREL and rel.packet_id == p.packet_id, rel
    sub.send(raw.ack(raw.PUBCOMP, p.packet_id, version))
    sub.ping()


@pytest.mark.parametrize("qos", [1, 2])
def test_messages_on_one_topic_arrive_in_publish_order(sedge, qos):
    sub = sedge.client("order-sub")
    sub.subscribe("order/t", qos)
    pub = sedge.client("order-pub", version=4)
    infos = [pub.publish("order/t", b"%d" % i, qos=qos, wait=False) for i in range(200)]
    for info in infos:
        info.wait_for_publish(10)
    got = [int(m.payload) for m in sub.get_many(200, timeout=30)]
    # [MQTT-4.6.0-5]/[MQTT-4.6.0-6]: an ordered topic keeps publish order.
    assert got == list(range(200))


def test_client_qos1_and_qos2_publishes_are_acknowledged_with_their_packet_ids(sedge):
    c = sedge.raw()
    c.connect("acker")
    for pid, qos in ((1, 1), (65535, 1), (300, 2)):
        c.send(raw.publish("ack/t", b"x", qos=qos, packet_id=pid))
        if qos == 1:
            a = c.expect(raw.PUBACK)
            assert a.packet_id == pid and a.reason in (0x00, 0x10), a
        else:
            a = c.expect(raw.PUBREC)
            assert a.packet_id == pid and a.reason in (0x00, 0x10), a
            c.send(raw.ack(raw.PUBREL, pid))
            a = c.expect(raw.PUBCOMP)
            assert a.packet_id == pid and a.reason == 0, a


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_publish_interrupted_after_pubrec_is_delivered_once_after_reconnect(sedge,
                                                                               version):
    persist = {} if version == 4 else {"props": {"session_expiry": 300}}
    sub = sedge.raw(version=version)
    sub.connect("q2r-sub")
    sub.subscribe([("q2r/#", 2)])
    pub = sedge.raw(version=version)
    assert pub.connect("q2r-pub", clean=False, **persist).reason == 0
    pub.send(raw.publish("q2r/x", b"once", qos=2, packet_id=42, version=version))
    assert pub.expect(raw.PUBREC).packet_id == 42
    pub.abort()
    pub = sedge.raw(version=version)
    assert pub.connect("q2r-pub", clean=False, **persist).session_present
    # The client lost track and resends the PUBLISH, then releases it.
    pub.send(raw.publish("q2r/x", b"once", qos=2, dup=True, packet_id=42, version=version))
    assert pub.expect(raw.PUBREC).packet_id == 42
    pub.send(raw.ack(raw.PUBREL, 42, version))
    assert pub.expect(raw.PUBCOMP).packet_id == 42
    try:  # the publisher goes on publishing normally
        pub.publish("q2r/marker", b"m", qos=2)
    except raw.ConnectionClosed:
        raise AssertionError("the server closed the publisher's connection after a "
                             "normal QoS 2 PUBLISH; it sent %r" % pub.pending) from None
    got = []
    while True:
        p = sub.recv_publish()
        if p.topic == "q2r/marker":
            break
        got.append(p.payload)
    # [MQTT-4.3.3-?]: the packet id stays "received" across the reconnect
    # (it is session state), so the message is not delivered twice.
    assert got == [b"once"]


@pytest.mark.parametrize("version", [4, 5])
def test_pubrel_for_an_unknown_packet_id_gets_pubcomp(sedge, version):
    c = sedge.raw(version=version)
    c.connect("stray-rel")
    c.send(raw.ack(raw.PUBREL, 999, version))
    p = c.expect(raw.PUBCOMP)
    # [MQTT-4.3.3-?]: PUBCOMP with the same id (v5: 0x00 or 0x92, not found).
    assert p.packet_id == 999 and p.reason in (0x00, 0x92), p
    for _ in range(3):  # and the client's own publishing is unaffected
        assert c.publish("stray/t", b"x", qos=1).reason in (0x00, 0x10)
        assert c.publish("stray/t", b"x", qos=2).reason in (0x00, 0x10)
    c.ping()


@pytest.mark.parametrize("size", [256 * 1024, 3 * 1024 * 1024])
def test_large_payloads_are_delivered_intact(sedge, size):
    sub = sedge.client("big-sub")
    sub.subscribe("big/#", 1)
    pub = sedge.client("big-pub", version=4)
    payload = bytes(i % 251 for i in range(size))
    pub.publish("big/x", payload, qos=1, timeout=60)
    m = sub.get(timeout=60)
    assert len(m.payload) == size and m.payload == payload


def test_many_clients_publish_and_subscribe_at_once(sedge):
    subs = [sedge.client("fan-sub%d" % i, version=4 if i % 2 else 5) for i in range(10)]
    for s in subs:
        s.subscribe("fan/#", 1)
    pubs = [sedge.client("fan-pub%d" % i, version=5 if i % 2 else 4) for i in range(10)]
    infos = [p.publish("fan/%d" % i, b"%d-%d" % (i, j), qos=1, wait=False)
             for j in range(10) for i, p in enumerate(pubs)]
    for info in infos:
        info.wait_for_publish(30)
    want = sorted(b"%d-%d" % (i, j) for i in range(10) for j in range(10))
    for s in subs:
        assert sorted(m.payload for m in s.get_many(100, timeout=30)) == want
