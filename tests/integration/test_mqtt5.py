"""MQTT 5 features: topic aliases, subscription identifiers and options,
shared subscriptions, message expiry, forwarded properties, flow control
and maximum packet size."""

import time

import mqtt_raw as raw
from mqtt_raw import sub_options


def raw_sub(sedge, client_id, filters, **connect_kw):
    c = sedge.raw()
    ack = c.connect(client_id, **connect_kw)
    assert ack.reason == 0, ack
    if filters:
        sa = c.subscribe(filters)
        assert all(r < 0x80 for r in sa.reasons), sa
    return c


def until_marker(c, marker):
    """PUBLISHes received by raw client `c` up to the one on `marker`."""
    got = []
    while True:
        p = c.recv_publish()
        if p.topic == marker:
            return got
        got.append(p)



def test_topic_alias_set_with_a_topic_is_used_by_alias_only_publishes(sedge):
    sub = sedge.client("ta-sub")
    sub.subscribe("ta/#", 1)
    pub = sedge.raw()
    pub.connect("ta-pub")
    pub.publish("ta/x", b"1", qos=1, props={"topic_alias": 1})
    pub.publish("", b"2", qos=1, props={"topic_alias": 1})
    pub.publish("ta/y", b"3", qos=1, props={"topic_alias": 1})  # remap
    pub.publish("", b"4", qos=1, props={"topic_alias": 1})
    got = [(m.topic, m.payload) for m in sub.get_many(4)]
    assert got == [("ta/x", b"1"), ("ta/x", b"2"), ("ta/y", b"3"), ("ta/y", b"4")]


def test_topic_alias_above_the_maximum_is_refused_with_0x94(make_sedge):
    s = make_sedge(limits={"topic_alias_maximum": 5})
    c = s.raw()
    assert c.connect("ta-big").props.get("topic_alias_maximum") == 5
    c.send(raw.publish("ta/x", b"x", props={"topic_alias": 6}))
    # [MQTT-3.3.2-8]: alias 0 or above the maximum -> DISCONNECT 0x94.
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_TOPIC_ALIAS_INVALID)]


def test_topic_alias_0_is_refused_with_0x94(sedge):
    c = sedge.raw()
    c.connect("ta-zero")
    c.send(raw.publish("ta/x", b"x", props={"topic_alias": 0}))
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_TOPIC_ALIAS_INVALID)]


def test_alias_only_publish_for_an_unknown_alias_is_a_protocol_error(sedge):
    c = sedge.raw()
    c.connect("ta-unknown")
    c.send(raw.publish("", b"x", props={"topic_alias": 3}))
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_PROTOCOL_ERROR)]


def test_topic_aliases_sent_by_the_server_stay_within_the_client_maximum(sedge):
    c = raw_sub(sedge, "ta-recv", [("tas/#", 0)], props={"topic_alias_maximum": 2})
    plain = raw_sub(sedge, "ta-plain", [("tas/#", 0)])
    pub = sedge.raw()
    pub.connect("tas-pub")
    topics = ["tas/%d" % (i % 5) for i in range(20)]
    for i, t in enumerate(topics):
        pub.publish(t, b"%d" % i, qos=1)
    aliases = {}
    for i, t in enumerate(topics):
        p = c.recv_publish()
        alias = p.props.get("topic_alias")
        if alias is not None:
            # [MQTT-3.3.2-9]: never above what the client announced.
            assert 1 <= alias <= 2, p
            if p.topic:
                aliases[alias] = p.topic
            else:
                assert alias in aliases, "alias %d used before it was set" % alias
        topic = p.topic or aliases[alias]
        assert (topic, p.payload) == (t, b"%d" % i)
        q = plain.recv_publish()
        # [MQTT-3.3.2-10]: no aliases to a client that allowed none.
        assert "topic_alias" not in q.props and q.topic == t, q



def test_subscription_identifier_is_delivered_with_matching_messages(sedge):
    c = raw_sub(sedge, "si", [])
    c.subscribe([("si/a/#", 1)], props={"sub_id": 11})
    c.subscribe([("si/b/#", 1)], props={"sub_id": 12})
    c.subscribe([("si/c/#", 1)])
    pub = sedge.client("si-pub")
    for t in ("si/a/1", "si/b/1", "si/c/1"):
        pub.publish(t, b"x", qos=1)
    got = {p.topic: p.props.get("sub_id") for p in (c.recv_publish() for _ in range(3))}
    # [MQTT-3.3.4-3]: the identifier of the matching subscription; none for a
    # subscription made without one.
    assert got == {"si/a/1": [11], "si/b/1": [12], "si/c/1": None}


def test_overlapping_subscriptions_deliver_once_at_max_qos_with_every_identifier(sedge):
    c = raw_sub(sedge, "ov", [])
    c.subscribe([("ov/#", 0)], props={"sub_id": 1})
    c.subscribe([("ov/+", 2)], props={"sub_id": 2})
    pub = sedge.client("ov-pub")
    pub.publish("ov/x", b"both", qos=2)
    pub.publish("ov/x/y", b"only hash", qos=2)
    c.subscribe([("ov-marker", 2)])
    pub.publish("ov-marker", b"m", qos=1)
    got = until_marker(c, "ov-marker")
    # [MQTT-3.3.4-2]: the maximum QoS of the matching subscriptions;
    # [MQTT-3.3.4-3]: a single copy carries all their identifiers.
    assert [(p.topic, p.qos, sorted(p.props.get("sub_id", []))) for p in got] == [
        ("ov/x", 2, [1, 2]), ("ov/x/y", 0, [1])]


def test_subscription_identifier_0_is_a_protocol_error(sedge):
    c = raw_sub(sedge, "si0", [])
    c.send(raw.subscribe(1, [("si0/#", 0)], props={"sub_id": 0}))
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_PROTOCOL_ERROR)]



def test_no_local_subscription_does_not_receive_its_own_messages(sedge):
    me = raw_sub(sedge, "nl", [("nl/#", sub_options(1, no_local=True))])
    other = raw_sub(sedge, "nl-other", [("nl/#", sub_options(1))])
    me.publish("nl/mine", b"mine", qos=1)
    sedge.client("nl-pub").publish("nl/theirs", b"theirs", qos=1)
    # [MQTT-3.8.3-3]: not forwarded to the connection that published it.
    assert me.recv_publish().topic == "nl/theirs"
    me.ping()
    assert [other.recv_publish().topic for _ in range(2)] == ["nl/mine", "nl/theirs"]


def test_without_no_local_a_client_receives_its_own_messages(sedge):
    me = raw_sub(sedge, "local", [("loc/#", sub_options(1))])
    me.publish("loc/mine", b"mine", qos=1)
    assert me.recv_publish().topic == "loc/mine"


def test_retain_as_published_keeps_the_retain_flag_on_live_delivery(sedge):
    rap = raw_sub(sedge, "rap", [("rap/#", sub_options(1, retain_as_published=True))])
    norap = raw_sub(sedge, "norap", [("rap/#", sub_options(1))])
    pub = sedge.client("rap-pub")
    pub.publish("rap/x", b"r", qos=1, retain=True)
    pub.publish("rap/y", b"n", qos=1, retain=False)
    # [MQTT-3.3.1-13]: retain as published 1 keeps the flag; 0 clears it.
    assert [(p.topic, p.retain) for p in (rap.recv_publish(), rap.recv_publish())] == [
        ("rap/x", True), ("rap/y", False)]
    assert [(p.topic, p.retain) for p in (norap.recv_publish(), norap.recv_publish())] == [
        ("rap/x", False), ("rap/y", False)]


def retained_after_subscribe(c, flt, handling, marker="rh-marker"):
    """Subscribe `c` to `flt` with retain handling `handling`; return the
    retained messages that brings (a retained marker ends them)."""
    c.subscribe([(flt, sub_options(1, retain_handling=handling))])
    c.subscribe([(marker, sub_options(1))])
    got = [p.topic for p in until_marker(c, marker)]
    c.unsubscribe([marker])
    return got


def test_retain_handling_0_sends_retained_messages_on_every_subscribe(sedge):
    sedge.client("rh-pub").publish("rh/a", b"r", qos=1, retain=True)
    sedge.client("rh-mpub").publish("rh-marker", b"m", qos=1, retain=True)
    c = raw_sub(sedge, "rh0", [])
    assert retained_after_subscribe(c, "rh/#", 0) == ["rh/a"]
    # [MQTT-3.3.1-9]: handling 0 sends them again on a repeated subscribe.
    assert retained_after_subscribe(c, "rh/#", 0) == ["rh/a"]


def test_retain_handling_1_sends_retained_messages_only_for_a_new_subscription(sedge):
    sedge.client("rh-pub").publish("rh/a", b"r", qos=1, retain=True)
    sedge.client("rh-mpub").publish("rh-marker", b"m", qos=1, retain=True)
    c = raw_sub(sedge, "rh1", [])
    assert retained_after_subscribe(c, "rh/#", 1) == ["rh/a"]
    # [MQTT-3.3.1-10]: not when the subscription already existed.
    assert retained_after_subscribe(c, "rh/#", 1) == []


def test_retain_handling_2_never_sends_retained_messages(sedge):
    sedge.client("rh-pub").publish("rh/a", b"r", qos=1, retain=True)
    sedge.client("rh-mpub").publish("rh-marker", b"m", qos=1, retain=True)
    c = raw_sub(sedge, "rh2", [])
    # [MQTT-3.3.1-11]
    assert retained_after_subscribe(c, "rh/#", 2) == []


def test_retain_handling_3_is_a_protocol_error(sedge):
    c = raw_sub(sedge, "rh3", [])
    c.send(raw.subscribe(1, [("rh/#", 0x30)]))
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_PROTOCOL_ERROR)]



def test_shared_subscription_gives_each_message_to_one_member_of_the_group(sedge):
    members = [raw_sub(sedge, "sh%d" % i, [("$share/grp/sh/#", 1)]) for i in range(2)]
    plain = raw_sub(sedge, "sh-plain", [("sh/#", 1)])
    pub = sedge.raw()
    pub.connect("sh-pub")
    for i in range(20):
        pub.publish("sh/t", b"%d" % i, qos=1)
    # Everyone not sharing still gets every message.
    assert [plain.recv_publish().payload for _ in range(20)] == [b"%d" % i for i in range(20)]
    for m in members:
        m.subscribe([("sh-marker", 1)])
    pub.publish("sh-marker", b"m", qos=1)
    per_member = [[int(p.payload) for p in until_marker(m, "sh-marker")] for m in members]
    everything = sorted(per_member[0] + per_member[1])
    # [MQTT-4.8.2-?]: each message goes to exactly one member of the group.
    assert everything == list(range(20)), per_member
    assert all(per_member), "all messages went to one member: %s" % per_member


def test_shared_subscription_keeps_delivering_when_a_member_leaves(sedge):
    stay = raw_sub(sedge, "stay", [("$share/g2/sl/#", 1)])
    leave = raw_sub(sedge, "leave", [("$share/g2/sl/#", 1)])
    leave.disconnect()
    sedge.wait_status(lambda s: s["connections"] == 1, what="the member to leave")
    pub = sedge.client("sl-pub")
    for i in range(6):
        pub.publish("sl/t", b"%d" % i, qos=1)
    assert sorted(int(stay.recv_publish().payload) for _ in range(6)) == list(range(6))


def test_shared_subscription_does_not_get_retained_messages(sedge):
    sedge.client("shr-pub").publish("shr/a", b"retained", qos=1, retain=True)
    sedge.client("shr-mpub").publish("shr-marker", b"m", qos=1, retain=True)
    c = raw_sub(sedge, "shr", [("$share/g3/shr/#", 1)])
    c.subscribe([("shr-marker", 1)])
    # 4.8.2: retained messages are not sent for a new shared subscription.
    assert until_marker(c, "shr-marker") == []


def test_shared_subscription_with_no_local_is_a_protocol_error(sedge):
    c = raw_sub(sedge, "shnl", [])
    c.send(raw.subscribe(1, [("$share/g/x/#", sub_options(0, no_local=True))]))
    # [MQTT-3.8.3-4]
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_PROTOCOL_ERROR)]



def test_expired_message_queued_for_an_offline_session_is_not_delivered(sedge):
    sub = raw_sub(sedge, "mx", [("mx/#", 1)], clean=False, props={"session_expiry": 300})
    sub.disconnect()
    pub = sedge.client("mx-pub")
    pub.publish("mx/short", b"expires", qos=1, props={"MessageExpiryInterval": 1})
    pub.publish("mx/marker", b"stays", qos=1)
    time.sleep(2.5)  # the message's whole life, and more
    sub = sedge.raw()
    assert sub.connect("mx", clean=False, props={"session_expiry": 300}).session_present
    # [MQTT-3.3.2-5]: past its expiry it is not sent.
    assert [p.topic for p in until_marker(sub, "mx/marker")] == []


def test_message_expiry_interval_is_reduced_by_the_time_spent_waiting(sedge):
    sub = raw_sub(sedge, "mxr", [("mxr/#", 1)], clean=False, props={"session_expiry": 300})
    sub.disconnect()
    sedge.client("mxr-pub").publish("mxr/t", b"x", qos=1, props={"MessageExpiryInterval": 60})
    time.sleep(2.2)
    sub = sedge.raw()
    sub.connect("mxr", clean=False, props={"session_expiry": 300})
    p = sub.recv_publish()
    # [MQTT-3.3.2-6]: the received value minus the time it waited (>= 2 s).
    assert 0 < p.props.get("message_expiry", 0) <= 58, p


def test_message_expiry_is_forwarded_to_an_online_subscriber(sedge):
    sub = raw_sub(sedge, "mxo", [("mxo/#", 1)])
    sedge.client("mxo-pub").publish("mxo/t", b"x", qos=1, props={"MessageExpiryInterval": 60})
    p = sub.recv_publish()
    assert 0 < p.props.get("message_expiry", 0) <= 60, p



def test_request_response_properties_reach_subscribers_unchanged(sedge):
    sub = raw_sub(sedge, "rr", [("req/#", 1)])
    pub = sedge.raw()
    pub.connect("rr-pub")
    pub.publish("req/x", b"{\"q\": 1}", qos=1, props=[
        ("payload_format", 1), ("content_type", "application/json"),
        ("response_topic", "resp/rr-pub"), ("correlation_data", b"\x00\xffid"),
        ("user", [("b", "2"), ("a", "1"), ("b", "3")])])
    p = sub.recv_publish()
    # [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-20], [MQTT-3.3.2-4],
    # [MQTT-3.3.2-17]/[MQTT-3.3.2-18]: unchanged, user properties in order.
    assert p.props.get("response_topic") == "resp/rr-pub"
    assert p.props.get("correlation_data") == b"\x00\xffid"
    assert p.props.get("content_type") == "application/json"
    assert p.props.get("payload_format") == 1
    assert p.props.get("user") == [("b", "2"), ("a", "1"), ("b", "3")]
    assert p.payload == b"{\"q\": 1}"


def test_request_response_round_trip_with_paho(sedge):
    responder = sedge.client("responder")
    responder.subscribe("svc/request", 1)
    requester = sedge.client("requester")
    requester.subscribe("svc/reply/requester", 1)
    requester.publish("svc/request", b"ping", qos=1,
                      props={"ResponseTopic": "svc/reply/requester", "CorrelationData": b"42"})
    req = responder.get()
    responder.publish(req.properties.ResponseTopic, b"pong", qos=1,
                      props={"CorrelationData": req.properties.CorrelationData})
    rsp = requester.get()
    assert (rsp.topic, rsp.payload, rsp.properties.CorrelationData) == (
        "svc/reply/requester", b"pong", b"42")



def test_more_unacknowledged_publishes_than_receive_maximum_disconnects_with_0x93(make_sedge):
    s = make_sedge(limits={"max_inflight": 4})
    c = s.raw()
    assert c.connect("greedy").props.get("receive_maximum") == 4
    for pid in range(1, 6):
        c.send(raw.publish("rm/t", b"x", qos=2, packet_id=pid))
    got = c.wait_closed()
    # [MQTT-3.3.4-8]: more than Receive Maximum unacknowledged -> 0x93.
    assert [p.type for p in got] == [raw.PUBREC] * 4 + [raw.DISCONNECT], got
    assert got[-1].reason == raw.RC_RECEIVE_MAXIMUM_EXCEEDED


def test_client_still_acknowledging_reads_the_0x93_disconnect_without_a_reset(make_sedge):
    # What the Paho conformance suite's flow control test does: one QoS 2
    # publish too many, then a PUBREL for every PUBREC. The server must not
    # close with those PUBRELs unread: the kernel would answer them with a
    # reset, and the client would lose the connection before the reason.
    s = make_sedge(limits={"max_inflight": 4})
    c = s.raw()
    c.connect("greedy-but-polite")
    for pid in range(1, 6):
        c.send(raw.publish("rm/t", b"x", qos=2, packet_id=pid))
    pubrecs = 0
    while True:
        p = c.recv()
        if p.type != raw.PUBREC:
            break
        pubrecs += 1
        time.sleep(0.05)  # the server's DISCONNECT and close come meanwhile
        c.send(raw.ack(raw.PUBREL, p.packet_id))  # a reset shows as BrokenPipe here
    assert pubrecs == 4
    assert p.type == raw.DISCONNECT and p.reason == raw.RC_RECEIVE_MAXIMUM_EXCEEDED, p
    assert c.wait_closed() == []


def test_receive_maximum_unacknowledged_publishes_are_accepted(make_sedge):
    s = make_sedge(limits={"max_inflight": 4})
    c = s.raw()
    c.connect("patient")
    for pid in range(1, 5):
        c.send(raw.publish("rm/t", b"x", qos=2, packet_id=pid))
    for pid in range(1, 5):
        assert c.expect(raw.PUBREC).packet_id == pid
    for pid in range(1, 5):
        c.send(raw.ack(raw.PUBREL, pid))
        assert c.expect(raw.PUBCOMP).packet_id == pid
    for pid in range(5, 10):  # the window is free again
        c.publish("rm/t", b"y", qos=2)
    c.ping()


def test_server_sends_no_more_unacknowledged_publishes_than_the_client_receive_maximum(sedge):
    sub = raw_sub(sedge, "slow", [("rmc/#", 1)], props={"receive_maximum": 2})
    pub = sedge.raw()
    pub.connect("rmc-pub")
    for i in range(5):
        pub.publish("rmc/t", b"%d" % i, qos=1)  # each PUBACKed: all routed

    def until_pingresp():
        sub.send(raw.pingreq())
        got = []
        while True:
            p = sub.recv()
            if p.type == raw.PINGRESP:
                return got
            got.append(p)

    first = until_pingresp()
    # [MQTT-3.3.4-9]: at most Receive Maximum unacknowledged QoS 1 PUBLISHes.
    assert [p.payload for p in first] == [b"0", b"1"], first
    sub.ack_publish(first[0])
    third = sub.recv_publish(auto_ack=False)
    assert third.payload == b"2"
    assert until_pingresp() == []
    for p in (first[1], third):
        sub.ack_publish(p)
    rest = [sub.recv_publish() for _ in range(2)]
    assert [p.payload for p in rest] == [b"3", b"4"]


def test_client_maximum_packet_size_is_never_exceeded(sedge):
    sub = raw_sub(sedge, "small", [("mps/#", 1)], props={"maximum_packet_size": 200})
    pub = sedge.client("mps-pub")
    pub.publish("mps/big", b"x" * 1000, qos=1)
    pub.publish("mps/small", b"fits", qos=1)
    # [MQTT-3.1.2-24]: a packet over the client's maximum is not sent (and
    # [MQTT-3.1.2-25] the message is discarded for that client).
    p = sub.recv_publish()
    assert (p.topic, p.payload) == ("mps/small", b"fits")
    sub.ping()



def test_session_expiry_0_on_disconnect_ends_the_session(sedge):
    c = raw_sub(sedge, "shortened", [("se/#", 1)], clean=False, props={"session_expiry": 300})
    c.disconnect(props={"session_expiry": 0})
    c = sedge.raw()
    assert not c.connect("shortened", clean=False, props={"session_expiry": 300}).session_present


def test_session_expiry_set_on_disconnect_after_0_on_connect_is_refused(sedge):
    c = raw_sub(sedge, "lengthened", [("se/#", 1)], clean=False)
    c.send(raw.disconnect(props={"session_expiry": 300}))
    # [MQTT-3.14.2-2]: a Protocol Error; the session does not outlive it.
    got = c.wait_closed()
    assert all(p.type == raw.DISCONNECT and p.reason == raw.RC_PROTOCOL_ERROR for p in got), got
    c = sedge.raw()
    assert not c.connect("lengthened", clean=False,
                         props={"session_expiry": 300}).session_present


def test_no_reason_string_on_suback_when_problem_information_is_not_requested(sedge):
    c = raw_sub(sedge, "quiet", [], props={"request_problem_info": 0})
    ack = c.subscribe([("ok/#", 0), ("bad/#/x", 0)])
    assert ack.reasons == [0, raw.RC_TOPIC_FILTER_INVALID]
    # [MQTT-3.1.2-29]: no Reason String or User Property on a SUBACK.
    assert "reason_string" not in ack.props and "user" not in ack.props, ack



def test_expired_retained_message_is_not_sent_to_new_subscribers(sedge):
    pub = sedge.client("rx-pub")
    pub.publish("rx/short", b"expires", qos=1, retain=True, props={"MessageExpiryInterval": 1})
    pub.publish("rx/long", b"stays", qos=1, retain=True)
    time.sleep(2.5)
    c = raw_sub(sedge, "rx-sub", [])
    c.subscribe([("rx/#", 1)])
    sedge.client("rx-mpub").publish("rx-marker", b"m", qos=1, retain=True)
    c.subscribe([("rx-marker", 1)])
    # [MQTT-3.3.2-5]: once its interval has passed it is not sent.
    assert [p.topic for p in until_marker(c, "rx-marker")] == ["rx/long"]


def test_retained_message_is_sent_with_its_remaining_expiry(sedge):
    sedge.client("rxr-pub").publish("rxr/t", b"x", qos=1, retain=True,
                                    props={"MessageExpiryInterval": 60})
    time.sleep(2.2)
    c = raw_sub(sedge, "rxr-sub", [("rxr/t", 1)])
    p = c.recv_publish()
    # [MQTT-3.3.2-6]
    assert p.retain and 0 < p.props.get("message_expiry", 0) <= 58, p
