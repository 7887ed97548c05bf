"""Bad input from a client: malformed packets, protocol errors, invalid
topics, oversized packets.

For each one the offending connection is answered as the specification
says (MQTT 5: DISCONNECT with the reason code, then close; 3.1.1: close),
sedged logs a line naming the client and the reason, and - in the same
test - a client connected before keeps working and a persistent session's
stored messages are still delivered: nothing stored is lost.
"""

import re

import pytest

import mqtt_raw as raw
from mqtt_raw import PUBLISH, PUBREL, SUBSCRIBE, UNSUBSCRIBE, packet, publish, subscribe


class Bystanders:
    """A live 3.1.1 client and an offline MQTT 5 persistent session with a
    stored message, set up before the bad input and checked after it."""

    def __init__(self, sedge):
        self.sedge = sedge
        self.keeper = sedge.client("keeper", clean=False, session_expiry=3600)
        assert self.keeper.subscribe("keep/#", 1) == [1]
        self.keeper.disconnect()
        self.live = sedge.client("live", version=4)
        assert self.live.subscribe("live/#", 1) == [1]
        self.pub = sedge.client("bystander-pub")
        self.pub.publish("keep/1", b"stored before", qos=1)

    def check(self):
        self.pub.publish("live/x", b"still here", qos=1)
        m = self.live.get()
        assert (m.topic, m.payload) == ("live/x", b"still here")
        self.live.publish("keep/2", b"stored after", qos=1)
        assert self.keeper.connect().session_present == 1
        got = sorted(m.payload for m in self.keeper.get_many(2))
        assert got == [b"stored after", b"stored before"]


@pytest.fixture
def bystanders(sedge):
    return Bystanders(sedge)


def reason_logged(sedge, mark, names, words):
    """A log line since `mark` names the client (one of `names`) and says
    why (one of the regexes in `words`)."""
    def wanted(line):
        return any(n in line for n in names) and "connected from" not in line
    line = sedge.wait_log(wanted, since=mark)
    assert any(re.search(w, line, re.I) for w in words), \
        "log line does not say why: %r (expected one of %s)" % (line, words)
    return line


MALFORMED = ["malformed", "length", "invalid", "flags", "utf-?8", "qos"]
PROTOCOL = ["protocol", "second CONNECT", "no topic", "empty", "duplicate", "more than once",
            "subscription identifier", "retain handling", "no local", "filters"]

# MQTT 5: (bytes after a successful CONNECT, DISCONNECT reasons allowed,
# what the log line should say).
V5_CASES = {
    # [MQTT-1.5.5-1]: a Variable Byte Integer is at most 4 bytes.
    "remaining_length_over_4_bytes": (b"\x30\xff\xff\xff\xff\x7f", [raw.RC_MALFORMED],
                                      MALFORMED),
    # The topic's length runs past the end of the packet.
    "topic_length_past_the_packet": (packet(PUBLISH, 0, b"\x00\x10ab"), [raw.RC_MALFORMED],
                                     MALFORMED),
    # The property length runs past the end of the packet.
    "property_length_past_the_packet": (packet(PUBLISH, 0, b"\x00\x01a\x0a"),
                                        [raw.RC_MALFORMED], MALFORMED),
    # [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error.
    "second_connect": (raw.connect("again"), [raw.RC_PROTOCOL_ERROR], PROTOCOL),
    # [MQTT-1.5.4-1]: ill-formed UTF-8 is a Malformed Packet.
    "invalid_utf8_in_topic": (publish(b"a/\xff\xfe"), [raw.RC_MALFORMED], MALFORMED),
    # [MQTT-1.5.4-1]: UTF-16 surrogates are ill-formed UTF-8.
    "surrogate_in_topic": (publish(b"a/\xed\xa0\x80"), [raw.RC_MALFORMED], MALFORMED),
    # [MQTT-1.5.4-2]: U+0000 in a string is a Malformed Packet.
    "null_character_in_topic": (publish(b"a/\x00b"), [raw.RC_MALFORMED], MALFORMED),
    # [MQTT-3.3.1-4]: both QoS bits set is a Malformed Packet.
    "publish_qos_3": (publish("a/b", b"x", flags=0x06), [raw.RC_MALFORMED], MALFORMED),
    # [MQTT-3.3.2-2]: no wildcards in a topic name -> Topic Name invalid.
    "plus_wildcard_in_publish_topic": (publish("a/+/b", b"x"), [raw.RC_TOPIC_NAME_INVALID],
                                       ["topic"]),
    "hash_wildcard_in_publish_topic": (publish("a/#", b"x", qos=1),
                                       [raw.RC_TOPIC_NAME_INVALID], ["topic"]),
    # 3.3.2.1: an empty topic without a topic alias is a Protocol Error.
    "empty_topic_without_alias": (publish("", b"x"), [raw.RC_PROTOCOL_ERROR],
                                  PROTOCOL + ["topic"]),
    # [MQTT-3.3.4-6]: a client's PUBLISH must not carry a subscription id.
    "subscription_identifier_in_publish": (publish("a/b", b"x", props={"sub_id": 3}),
                                           [raw.RC_PROTOCOL_ERROR], PROTOCOL),
    # 2.2.2.2: a property more than once is a Protocol Error.
    "duplicate_property": (publish("a/b", b"x", props=[("message_expiry", 5),
                                                       ("message_expiry", 6)]),
                           [raw.RC_PROTOCOL_ERROR], PROTOCOL + ["propert"]),
    # [MQTT-3.8.1-1]: SUBSCRIBE's fixed header flags must be 0010.
    "subscribe_with_wrong_header_flags": (subscribe(1, [("a/b", 0)], flags=0),
                                          [raw.RC_MALFORMED], MALFORMED),
    # [MQTT-3.8.3-2]: a SUBSCRIBE with no filter is a Protocol Error.
    "subscribe_without_filters": (packet(SUBSCRIBE, 2, b"\x00\x01\x00"),
                                  [raw.RC_PROTOCOL_ERROR], PROTOCOL),
    # [MQTT-3.8.3-5]: reserved subscription option bits set -> malformed.
    "subscribe_reserved_option_bits": (subscribe(1, [("a/b", 0xC0)]), [raw.RC_MALFORMED],
                                       MALFORMED + ["option", "reserved"]),
    # [MQTT-3.10.1-1]: UNSUBSCRIBE's fixed header flags must be 0010.
    "unsubscribe_with_wrong_header_flags": (packet(UNSUBSCRIBE, 0, b"\x00\x01\x00\x00\x01a"),
                                            [raw.RC_MALFORMED], MALFORMED),
    # [MQTT-3.6.1-1]: PUBREL's fixed header flags must be 0010.
    "pubrel_with_wrong_header_flags": (packet(PUBREL, 0, b"\x00\x01"), [raw.RC_MALFORMED],
                                       MALFORMED),
    # Packet type 0 is reserved (forbidden).
    "reserved_packet_type_0": (packet(0, 0, b""), [raw.RC_MALFORMED, raw.RC_PROTOCOL_ERROR],
                               MALFORMED + PROTOCOL + ["type", "reserved"]),
    # A packet only a server sends.
    "connack_from_a_client": (packet(raw.CONNACK, 0, b"\x00\x00\x00"),
                              [raw.RC_MALFORMED, raw.RC_PROTOCOL_ERROR],
                              MALFORMED + PROTOCOL + ["CONNACK", "may not"]),
    # [MQTT-2.2.1-3]: QoS > 0 needs a non-zero packet identifier.
    "qos1_publish_with_packet_id_0": (publish("a/b", b"x", qos=1, packet_id=0),
                                      [raw.RC_MALFORMED, raw.RC_PROTOCOL_ERROR],
                                      MALFORMED + PROTOCOL + ["packet id", "identifier"]),
}


@pytest.mark.parametrize("case", list(V5_CASES))
def test_mqtt5_bad_packet_gets_disconnect_with_reason_and_harms_nobody(sedge, bystanders,
                                                                       case):
    data, reasons, words = V5_CASES[case]
    c = sedge.raw()
    client_id = "bad-" + case
    assert c.connect(client_id).reason == 0
    mark = sedge.log_mark()
    c.send(data)
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == raw.DISCONNECT, got
    assert got[0].reason in reasons, "DISCONNECT reason 0x%02x, expected %s" % (
        got[0].reason, ["0x%02x" % r for r in reasons])
    reason_logged(sedge, mark, [client_id], words)
    bystanders.check()


# MQTT 3.1.1: bytes after a successful CONNECT; the server must close
# without answering ([MQTT-4.8.0-1]).
V311_CASES = {
    "remaining_length_over_4_bytes": (b"\x30\xff\xff\xff\xff\x7f", MALFORMED),
    "second_connect": (raw.connect("again", version=4), PROTOCOL),  # [MQTT-3.1.0-2]
    "invalid_utf8_in_topic": (publish(b"a/\xc3\x28", version=4), MALFORMED),  # [MQTT-1.5.3-1]
    "null_character_in_topic": (publish(b"a\x00", version=4), MALFORMED),  # [MQTT-1.5.3-2]
    "publish_qos_3": (publish("a/b", b"x", flags=0x06, version=4), MALFORMED),  # [MQTT-3.3.1-4]
    "wildcard_in_publish_topic": (publish("a/+", b"x", version=4), ["topic"]),  # [MQTT-3.3.2-2]
    "subscribe_with_wrong_header_flags": (subscribe(1, ["a"], version=4, flags=0),
                                          MALFORMED),  # [MQTT-3.8.1-1]
    "subscribe_without_filters": (packet(SUBSCRIBE, 2, b"\x00\x01"),
                                  MALFORMED + PROTOCOL),  # [MQTT-3.8.3-3]
    "subscribe_qos_3": (subscribe(1, [("a", 3)], version=4), MALFORMED),  # [MQTT-3-8.3-4]
    "truncated_string_in_subscribe": (packet(SUBSCRIBE, 2, b"\x00\x01\x00\x09ab\x00"),
                                      MALFORMED),
}


@pytest.mark.parametrize("case", list(V311_CASES))
def test_mqtt311_bad_packet_closes_the_connection_and_harms_nobody(sedge, bystanders, case):
    data, words = V311_CASES[case]
    c = sedge.raw(version=4)
    client_id = "bad311-" + case
    assert c.connect(client_id, version=4).reason == 0
    mark = sedge.log_mark()
    c.send(data)
    assert c.wait_closed() == []
    reason_logged(sedge, mark, [client_id], words)
    bystanders.check()


# Bad CONNECTs: the connection is closed; a CONNACK, if any, refuses.
CONNECT_CASES = {
    # [MQTT-3.1.0-1]: the first packet must be CONNECT.
    "first_packet_is_publish": (publish("a/b", b"x", version=4), ["CONNECT", "first"]),
    "first_packet_is_http": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", MALFORMED + ["CONNECT"]),
    # [MQTT-3.1.2-3]: the reserved connect flag must be 0.
    "reserved_connect_flag_311": (raw.connect("x", version=4, flags=0x03),
                                  MALFORMED + ["reserved"]),
    "reserved_connect_flag_5": (raw.connect("x", version=5, flags=0x03),
                                MALFORMED + ["reserved"]),
    # [MQTT-3.1.2-14]: will QoS 3 is malformed.
    "will_qos_3": (raw.connect("x", version=4, will={"topic": "w", "qos": 3}),
                   MALFORMED + ["will"]),
    # [MQTT-3.1.2-22] (3.1.1): a password needs a user name.
    "password_without_user_name_311": (raw.connect("x", version=4, password=b"pw"),
                                       MALFORMED + PROTOCOL + ["password", "user"]),
    # [MQTT-3.1.2-11]/[MQTT-3.1.2-13]: will QoS set without the will flag.
    "will_qos_without_will_flag": (raw.connect("x", version=4, flags=0x02 | 0x08),
                                   MALFORMED + ["will"]),
    # [MQTT-1.5.3-1]: the client identifier is a UTF-8 string.
    "client_id_invalid_utf8_311": (raw.connect(b"x\xff\xfe", version=4), MALFORMED),
    "client_id_invalid_utf8_5": (raw.connect(b"x\xff\xfe", version=5), MALFORMED),
    # A will topic must be a valid topic name: no wildcards.
    "will_topic_with_wildcard_311": (raw.connect("x", version=4, will={"topic": "w/#"}),
                                     ["will", "topic"]),
    "will_topic_with_wildcard_5": (raw.connect("x", version=5, will={"topic": "w/+"}),
                                   ["will", "topic"]),
}


@pytest.mark.parametrize("case", list(CONNECT_CASES))
def test_bad_connect_is_refused_and_harms_nobody(sedge, bystanders, case):
    data, words = CONNECT_CASES[case]
    c = sedge.raw()
    mark = sedge.log_mark()
    c.send(data)
    got = c.wait_closed()
    # A CONNACK, if any, refuses (3.1.1: return code 1-5, 5.0: >= 0x80).
    assert all(p.type == raw.CONNACK and p.reason != 0 for p in got), got
    reason_logged(sedge, mark, [c.peer_name, "'x'"], words)
    bystanders.check()


def test_unsupported_protocol_level_gets_connack_return_code_1(sedge, bystanders):
    c = sedge.raw(version=4)
    mark = sedge.log_mark()
    c.send(raw.connect("future", level=6))
    got = c.wait_closed()
    # [MQTT-3.1.2-2]: CONNACK 0x01 (unacceptable protocol level), then close.
    assert [(p.type, p.body) for p in got] == [(raw.CONNACK, b"\x00\x01")], got
    reason_logged(sedge, mark, [c.peer_name, "future"], ["version", "level", "protocol"])
    bystanders.check()


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_with_invalid_filters_refuses_only_those_filters(sedge, bystanders, version):
    c = sedge.raw(version=version)
    c.connect("picky")
    bad = 0x80 if version == 4 else raw.RC_TOPIC_FILTER_INVALID
    ack = c.subscribe([("good/#", 1), ("bad/#/x", 1), ("bad+/x", 0), ("", 0),
                       ("$share/g+/x", 0), ("also/good", 2)])
    # [MQTT-4.7.1-1]/[MQTT-4.7.1-2]/[MQTT-4.7.3-1]: invalid filters; v5:
    # 0x8F for each, 3.1.1: 0x80, and the valid ones are granted.
    if version == 4:
        ack.reasons[4] = bad  # "$share/g+/x" is an ordinary valid filter in 3.1.1
    assert ack.reasons == [1, bad, bad, bad, bad, 2], ack
    sedge.client("picky-pub").publish("good/x", b"ok", qos=1)
    p = c.recv_publish()
    assert (p.topic, p.payload) == ("good/x", b"ok")
    bystanders.check()


@pytest.mark.parametrize("version", [4, 5])
def test_packet_over_max_packet_bytes_is_refused(make_sedge, version):
    sedge = make_sedge(limits={"max_packet_bytes": 1024})
    bystanders = Bystanders(sedge)
    c = sedge.raw(version=version)
    client_id = "big%d" % version
    ack = c.connect(client_id)
    if version == 5:
        assert ack.props.get("maximum_packet_size") == 1024
    mark = sedge.log_mark()
    c.send(publish("big/x", b"x" * 2000, qos=1, version=version))
    got = c.wait_closed()
    if version == 5:
        # 3.2.2.3.6: over the server's Maximum Packet Size -> DISCONNECT 0x95.
        assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_PACKET_TOO_LARGE)]
    else:
        assert got == []
    reason_logged(sedge, mark, [client_id], ["large", "maximum", "size"])
    bystanders.check()


def publish_of_size(total, packet_id):
    """A QoS 1 PUBLISH of exactly `total` bytes."""
    n = total
    while len(publish("e/x", b"x" * n, qos=1, packet_id=packet_id)) > total:
        n -= 1
    p = publish("e/x", b"x" * n, qos=1, packet_id=packet_id)
    assert len(p) == total
    return p


def test_packet_of_exactly_max_packet_bytes_is_accepted_and_one_more_is_not(make_sedge):
    sedge = make_sedge(limits={"max_packet_bytes": 1024})
    c = sedge.raw()
    c.connect("edge")
    # 3.2.2.3.6: the Maximum Packet Size is the whole packet's size.
    c.send(publish_of_size(1024, 1))
    assert c.expect(raw.PUBACK).packet_id == 1
    c.send(publish_of_size(1025, 2))
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_PACKET_TOO_LARGE)]


def test_oversized_packet_is_refused_from_its_header_alone(make_sedge):
    sedge = make_sedge(limits={"max_packet_bytes": 1024})
    c = sedge.raw()
    c.connect("header-only")
    c.send(b"\x30" + raw.vbi(100000) + b"\x00\x01a")  # the rest never comes
    got = c.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_PACKET_TOO_LARGE)]


def test_truncated_packet_then_close_harms_nobody(sedge, bystanders):
    c = sedge.raw()
    c.connect("truncated")
    c.send(publish("t/x", b"y" * 100, qos=1)[:20])
    c.close()
    sedge.wait_status(lambda s: s["connections"] == 2, what="the close")
    bystanders.check()


def test_protocol_errors_are_counted_in_status(sedge):
    before = sedge.status()["protocol_errors"]
    for i in range(3):
        c = sedge.raw()
        c.connect("counted%d" % i)
        c.send(publish("a/b", b"x", flags=0x06))
        c.wait_closed()
    sedge.wait_status(lambda s: s["protocol_errors"] == before + 3, what="protocol_errors + 3")
