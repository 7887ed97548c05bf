"""Retained messages: set, replace, clear, and delivery on subscribe."""

import pytest


def retained_on_subscribe(sedge, client_id, flt, version=5, qos=1, marker="zz/marker"):
    """Subscribe to `flt` and return the retained messages it brings, as
    {topic: PUBLISH}. A retained marker, subscribed to afterwards, tells
    when they have all arrived."""
    sedge.client(client_id + "-m", version=4).publish(marker, b"m", qos=1, retain=True)
    c = sedge.raw(version=version)
    c.connect(client_id)
    c.subscribe([(flt, qos)])
    c.subscribe([(marker, 1)])
    got = {}
    while True:
        p = c.recv_publish()
        if p.topic == marker:
            return got
        assert p.topic not in got, "retained message %s sent twice" % p.topic
        got[p.topic] = p


@pytest.mark.parametrize("version", [4, 5])
def test_retained_message_is_delivered_on_subscribe_with_retain_flag(sedge, version):
    sedge.client("rpub", version=version).publish("r/a", b"kept", qos=1, retain=True)
    got = retained_on_subscribe(sedge, "rsub", "r/a", version=version)
    # [MQTT-3.3.1-6] / v5 [MQTT-3.3.1-9]: sent with RETAIN 1.
    assert list(got) == ["r/a"]
    assert got["r/a"].payload == b"kept" and got["r/a"].retain


def test_retained_message_is_replaced_by_the_next_one(sedge):
    pub = sedge.client("rpub")
    pub.publish("r/b", b"first", qos=1, retain=True)
    pub.publish("r/b", b"second", qos=1, retain=True)
    got = retained_on_subscribe(sedge, "rsub", "r/b")
    assert got["r/b"].payload == b"second"


def test_empty_retained_message_clears_the_topic(sedge):
    pub = sedge.client("rpub")
    pub.publish("r/c", b"soon gone", qos=1, retain=True)
    pub.publish("r/c", b"", qos=1, retain=True)
    # [MQTT-3.3.1-10] (v5 [MQTT-3.3.1-6]): nothing stays retained for it.
    assert retained_on_subscribe(sedge, "rsub", "r/#") == {}


def test_empty_retained_message_still_reaches_current_subscribers(sedge):
    sub = sedge.client("live")
    sub.subscribe("r/d", 1)
    pub = sedge.client("rpub")
    pub.publish("r/d", b"", qos=1, retain=True)
    m = sub.get()
    assert (m.topic, m.payload) == ("r/d", b"")


@pytest.mark.parametrize("version", [4, 5])
def test_live_delivery_of_a_retained_publish_has_retain_flag_0(sedge, version):
    sub = sedge.raw(version=version)
    sub.connect("live-sub")
    sub.subscribe([("r/e", 1)])
    sedge.client("rpub").publish("r/e", b"live", qos=1, retain=True)
    p = sub.recv_publish()
    # [MQTT-3.3.1-9] / v5 retain as published 0 [MQTT-3.3.1-12].
    assert p.payload == b"live" and not p.retain


def test_wildcard_subscription_gets_every_matching_retained_message(sedge):
    pub = sedge.client("rpub")
    for t in ("w/1", "w/2/x", "w/3", "other/1"):
        pub.publish(t, t.encode(), qos=1, retain=True)
    got = retained_on_subscribe(sedge, "rsub", "w/#")
    assert sorted(got) == ["w/1", "w/2/x", "w/3"]
    assert all(p.retain and p.payload == t.encode() for t, p in got.items())


def test_retained_message_is_sent_at_the_lower_of_its_qos_and_the_subscription_qos(sedge):
    pub = sedge.client("rpub")
    pub.publish("rq/two", b"q2", qos=2, retain=True)
    pub.publish("rq/zero", b"q0", qos=0, retain=True)
    got = retained_on_subscribe(sedge, "rsub1", "rq/#", qos=1)
    assert {t: p.qos for t, p in got.items()} == {"rq/two": 1, "rq/zero": 0}


def test_retained_qos0_message_replaces_the_previous_one(sedge):
    pub = sedge.client("rpub")
    pub.publish("r/f", b"old", qos=1, retain=True)
    pub.publish("r/f", b"new", qos=0, retain=True)
    # [MQTT-3.3.1-7]: a retained QoS 0 message discards the one before.
    got = retained_on_subscribe(sedge, "rsub", "r/f")
    assert got.get("r/f") is None or got["r/f"].payload == b"new"
    assert "r/f" in got, "the QoS 0 retained message was not kept"


def test_retained_messages_survive_a_restart(sedge):
    sedge.client("rpub").publish("r/keep", b"across restarts", qos=1, retain=True)
    sedge.restart()
    got = retained_on_subscribe(sedge, "rsub", "r/keep")
    assert got["r/keep"].payload == b"across restarts"


def test_retained_count_in_status_follows_set_and_clear(sedge):
    base = sedge.status()["retained"]
    pub = sedge.client("rpub")
    pub.publish("rc/1", b"x", qos=1, retain=True)
    pub.publish("rc/2", b"x", qos=1, retain=True)
    sedge.wait_status(lambda s: s["retained"] == base + 2, what="retained +2")
    pub.publish("rc/1", b"", qos=1, retain=True)
    sedge.wait_status(lambda s: s["retained"] == base + 1, what="retained +1")
