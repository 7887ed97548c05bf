"""Will messages: when they are sent and when they are not."""

import time

import pytest

import mqtt_raw as raw


def observer(sedge, flt="will/#"):
    o = sedge.client("observer")
    o.subscribe(flt, 1)
    return o


def messages_until_marker(sedge, o, marker="will/marker"):
    """Publish a marker and return what `o` received up to it."""
    sedge.client("marker-pub", version=4).publish(marker, b"marker", qos=1)
    return [(m.topic, m.payload) for m in o.get_until(marker) if m.topic != marker]


def connect_with_will(sedge, client_id, version=5, topic="will/t", payload=b"gone", qos=1,
                      retain=False, will_props=None, props=None, keepalive=60):
    c = sedge.raw(version=version)
    ack = c.connect(client_id, version=version, keepalive=keepalive, props=props,
                    will={"topic": topic, "payload": payload, "qos": qos, "retain": retain,
                          "props": will_props})
    assert ack.reason == 0, ack
    return c


@pytest.mark.parametrize("version", [4, 5])
def test_will_is_published_when_the_connection_drops(sedge, version):
    o = observer(sedge)
    c = connect_with_will(sedge, "dropper", version=version)
    c.abort()
    m = o.get()
    assert (m.topic, m.payload, m.qos) == ("will/t", b"gone", 1)


@pytest.mark.parametrize("version", [4, 5])
def test_will_is_not_published_after_a_normal_disconnect(sedge, version):
    o = observer(sedge)
    c = connect_with_will(sedge, "polite", version=version)
    before = sedge.status()["connections"]
    c.disconnect()
    sedge.wait_status(lambda s: s["connections"] == before - 1, what="the close")
    # [MQTT-3.1.2-10] / v5 [MQTT-3.1.2-8]: DISCONNECT deletes the will.
    assert messages_until_marker(sedge, o) == []


def test_disconnect_with_reason_0x04_publishes_the_will(sedge):
    o = observer(sedge)
    c = connect_with_will(sedge, "leaver")
    c.disconnect(reason=raw.RC_DISCONNECT_WITH_WILL)
    m = o.get()
    assert (m.topic, m.payload) == ("will/t", b"gone")


def test_will_is_published_after_the_will_delay(sedge):
    o = observer(sedge)
    c = connect_with_will(sedge, "delayed", will_props={"will_delay": 2},
                          props={"session_expiry": 60})
    closed_at = time.monotonic()
    c.abort()
    m = o.get(timeout=15)
    waited = time.monotonic() - closed_at
    assert (m.topic, m.payload) == ("will/t", b"gone")
    # [MQTT-3.1.3-9]: not before the delay has passed.
    assert waited >= 1.9, "will published %.2f s after the close, delay is 2 s" % waited
    # And when it has, not a tick later: the conformance suites allow 1 s.
    assert waited < 2.9, "will published %.2f s after the close, delay is 2 s" % waited


def test_will_is_not_published_when_the_client_reconnects_within_the_will_delay(sedge):
    o = observer(sedge)
    back = connect_with_will(sedge, "returner", topic="will/returner",
                             will_props={"will_delay": 3}, props={"session_expiry": 60})
    back.abort()
    back = sedge.raw()
    ack = back.connect("returner", clean=False, props={"session_expiry": 60})
    assert ack.reason == 0 and ack.session_present
    # A client with the same delay that stays away: when its will comes,
    # the returner's would have come too.
    gone = connect_with_will(sedge, "stayer", topic="will/stayer",
                             will_props={"will_delay": 3}, props={"session_expiry": 60})
    gone.abort()
    m = o.get(timeout=15)
    assert m.topic == "will/stayer", "got %s: the returner's will was published" % m.topic
    assert messages_until_marker(sedge, o) == []


def test_will_is_published_when_the_session_ends_before_the_will_delay(sedge):
    o = observer(sedge)
    c = connect_with_will(sedge, "short-session", will_props={"will_delay": 300},
                          props={"session_expiry": 1})
    closed_at = time.monotonic()
    c.abort()
    # 3.1.3.2.2: the will waits for the delay OR the end of the session,
    # whichever comes first.
    m = o.get(timeout=15)
    waited = time.monotonic() - closed_at
    assert (m.topic, m.payload) == ("will/t", b"gone")
    assert 0.9 <= waited < 1.9, "will published %.2f s after the close, session expiry 1 s" % waited


def test_will_with_retain_is_kept_as_a_retained_message(sedge):
    c = connect_with_will(sedge, "retainer", topic="will/retained", retain=True)
    c.abort()
    sedge.wait_status(lambda s: s["connections"] == 0, what="the close")
    late = sedge.raw()
    late.connect("late")
    late.subscribe([("will/retained", 1)])
    p = late.recv_publish()
    assert (p.payload, p.retain) == (b"gone", True)


def test_will_is_published_when_keep_alive_expires(sedge):
    o = observer(sedge)
    c = connect_with_will(sedge, "quiet", version=4, keepalive=1)
    m = o.get(timeout=15)
    assert (m.topic, m.payload) == ("will/t", b"gone")
    c.wait_closed()


def test_will_is_published_when_the_server_closes_on_a_protocol_violation(sedge):
    o = observer(sedge)
    c = connect_with_will(sedge, "violator", version=4)
    c.send(raw.publish("a/b", b"x", flags=0x06, version=4))  # QoS 3
    c.wait_closed()
    # 3.1.1 section 3.1.2.5: a close for a protocol error publishes the will.
    m = o.get()
    assert (m.topic, m.payload) == ("will/t", b"gone")


def test_will_is_published_when_the_session_is_taken_over(sedge):
    o = observer(sedge)
    c = connect_with_will(sedge, "taken")
    other = sedge.raw()
    assert other.connect("taken").reason == 0
    c.wait_closed()
    # 3.1.4: the existing client's will is published (delay 0).
    m = o.get()
    assert (m.topic, m.payload) == ("will/t", b"gone")


def test_will_properties_reach_subscribers(sedge):
    o = observer(sedge)
    c = connect_with_will(sedge, "propertied", will_props={
        "content_type": "text/plain", "response_topic": "will/reply",
        "correlation_data": b"\x01\x02", "user": [("k", "v"), ("k", "w")]})
    c.abort()
    m = o.get()
    p = m.properties
    assert p.ContentType == "text/plain"
    assert p.ResponseTopic == "will/reply"
    assert p.CorrelationData == b"\x01\x02"
    assert p.UserProperty == [("k", "v"), ("k", "w")]
