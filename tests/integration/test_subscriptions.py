"""Topic filters: wildcards, '$' topics, repeated and overlapping
subscriptions, unsubscribe."""

import pytest

import mqtt_raw as raw

TOPICS = ["sport", "sport/", "sport/tennis", "sport/tennis/player1",
          "sport/tennis/player1/ranking", "/finance", "finance", "a//b"]

# Filter -> the TOPICS it matches (MQTT 3.1.1 / 5.0 section 4.7).
MATCHES = {
    "sport/#": {"sport", "sport/", "sport/tennis", "sport/tennis/player1",
                "sport/tennis/player1/ranking"},
    "sport/tennis/+": {"sport/tennis/player1"},
    "sport/+": {"sport/", "sport/tennis"},
    "+/+": {"sport/", "sport/tennis", "/finance"},
    "/+": {"/finance"},
    "+": {"sport", "finance"},
    "#": set(TOPICS),
    "a/+/b": {"a//b"},
    "sport/tennis/player1": {"sport/tennis/player1"},
}


def test_wildcards_match_topics_as_the_specification_says(sedge):
    subs = {}
    for i, flt in enumerate(MATCHES):
        c = sedge.raw()
        c.connect("wild%d" % i)
        assert c.subscribe([(flt, 1), ("zz-marker", 1)]).reasons == [1, 1]
        subs[flt] = c
    pub = sedge.raw()
    pub.connect("wild-pub")
    for t in TOPICS:
        pub.publish(t, t.encode(), qos=1)
    pub.publish("zz-marker", b"m", qos=1)
    for flt, c in subs.items():
        got = []
        while True:
            p = c.recv_publish()
            if p.topic == "zz-marker":
                break
            got.append(p.topic)
        assert len(got) == len(set(got)), "%s: duplicates %s" % (flt, got)
        assert set(got) == MATCHES[flt], flt


def test_dollar_topics_are_not_matched_by_filters_starting_with_a_wildcard(sedge):
    subs = {}
    for flt in ("#", "+/info", "+/+", "$app/#", "$app/+"):
        c = sedge.raw()
        c.connect("dollar-" + flt.replace("/", "_").replace("#", "H").replace("+", "P"))
        c.subscribe([(flt, 1), ("zz/marker", 1)])
        subs[flt] = c
    pub = sedge.raw()
    pub.connect("dollar-pub")
    pub.publish("$app/info", b"dollar", qos=1)
    pub.publish("zz/marker", b"m", qos=1)
    got = {}
    for flt, c in subs.items():
        got[flt] = []
        while True:
            p = c.recv_publish()
            if p.topic == "zz/marker":
                break
            got[flt].append(p.topic)
    # [MQTT-4.7.2-1]: '#' and '+' first never match a topic starting with '$'.
    assert got == {"#": [], "+/info": [], "+/+": [], "$app/#": ["$app/info"],
                   "$app/+": ["$app/info"]}


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_stops_delivery(sedge, version):
    c = sedge.raw(version=version)
    c.connect("unsub")
    c.subscribe([("us/#", 1), ("us-marker", 1)])
    ack = c.unsubscribe(["us/#"])
    if version == 5:
        assert ack.reasons == [0x00]
    pub = sedge.client("us-pub")
    pub.publish("us/x", b"x", qos=1)
    pub.publish("us-marker", b"m", qos=1)
    # [MQTT-3.10.4-2]: no new messages for a deleted subscription.
    assert c.recv_publish().topic == "us-marker"


def test_unsubscribe_from_an_unknown_filter_gets_0x11(sedge):
    c = sedge.raw()
    c.connect("unsub-none")
    # MQTT 5 3.11.3: 0x11 No subscription existed.
    assert c.unsubscribe(["never/subscribed"]).reasons == [raw.RC_NO_SUBSCRIPTION_EXISTED]


@pytest.mark.parametrize("version", [4, 5])
def test_subscribing_again_replaces_the_subscription(sedge, version):
    c = sedge.raw(version=version)
    c.connect("resub")
    assert c.subscribe([("rs/#", 2)]).reasons == [2]
    assert c.subscribe([("rs/#", 0)]).reasons == [0]
    sedge.client("rs-pub").publish("rs/x", b"x", qos=2)
    c.subscribe([("rs-marker", 0)])
    sedge.client("rs-pub2").publish("rs-marker", b"m", qos=0)
    # [MQTT-3.8.4-3]: the new subscription replaces the old one (QoS 0, once).
    got = []
    while True:
        p = c.recv_publish()
        if p.topic == "rs-marker":
            break
        got.append((p.topic, p.qos))
    assert got == [("rs/x", 0)]


@pytest.mark.parametrize("version", [4, 5])
def test_overlapping_subscriptions_deliver_one_copy_at_the_highest_qos(sedge, version):
    c = sedge.raw(version=version)
    c.connect("overlap")
    assert c.subscribe([("ol/#", 0), ("ol/+", 1), ("ol-marker", 1)]).reasons == [0, 1, 1]
    pub = sedge.client("ol-pub")
    pub.publish("ol/x", b"x", qos=2)
    pub.publish("ol-marker", b"m", qos=1)
    got = []
    while True:
        p = c.recv_publish()
        if p.topic == "ol-marker":
            break
        got.append((p.topic, p.qos))
    # [MQTT-3.3.5-1] / v5 [MQTT-3.3.4-2]: the maximum QoS of the matches.
    assert got == [("ol/x", 1)]


@pytest.mark.parametrize("version", [4, 5])
def test_one_subscribe_with_several_filters_gets_a_code_per_filter(sedge, version):
    c = sedge.raw(version=version)
    c.connect("multi")
    # [MQTT-3.8.4-5]/[MQTT-3.9.3-1]: one code per filter, in order.
    assert c.subscribe([("m/a", 2), ("m/b", 0), ("m/c", 1)]).reasons == [2, 0, 1]


def test_unsubscribe_matches_filters_literally_not_by_wildcard(sedge):
    c = sedge.raw()
    c.connect("literal")
    c.subscribe([("lit/+", 1), ("lit/#", 1)])
    # [MQTT-3.10.4-1]: filters are compared character by character.
    assert c.unsubscribe(["lit/#"]).reasons == [0x00]
    assert c.unsubscribe(["lit/x"]).reasons == [raw.RC_NO_SUBSCRIPTION_EXISTED]
    sedge.client("lit-pub").publish("lit/x", b"via plus", qos=1)
    p = c.recv_publish()
    assert (p.topic, p.payload) == ("lit/x", b"via plus")
