"""CONNECT / CONNACK, client identifiers, session takeover and keep alive."""

import time

import mqtt_raw as raw


def test_mqtt311_connect_is_accepted_with_a_new_session(sedge):
    c = sedge.raw(version=4)
    ack = c.connect("plain-311", version=4)
    # [MQTT-3.2.2-1]..[MQTT-3.2.2-3]: a clean session gets session present 0.
    assert ack.body == b"\x00\x00", ack


def test_mqtt5_connack_announces_the_configured_limits(make_sedge):
    s = make_sedge(limits={"max_inflight": 7, "topic_alias_maximum": 5,
                           "max_packet_bytes": 100000})
    c = s.raw()
    ack = c.connect("limits")
    assert ack.reason == 0
    assert ack.props.get("receive_maximum") == 7, ack
    assert ack.props.get("topic_alias_maximum") == 5, ack
    assert ack.props.get("maximum_packet_size") == 100000, ack


def test_mqtt5_empty_client_id_gets_an_assigned_client_identifier(sedge):
    ids = []
    for _ in range(2):
        c = sedge.raw()
        ack = c.connect("")
        assert ack.reason == 0
        # [MQTT-3.2.2-16]: the server MUST return the identifier it assigned.
        assert ack.props.get("assigned_client_id"), ack
        ids.append(ack.props["assigned_client_id"])
    assert ids[0] != ids[1]


def test_mqtt311_empty_client_id_with_clean_session_is_accepted(sedge):
    c = sedge.raw(version=4)
    ack = c.connect("", version=4, clean=True)
    assert ack.reason == 0
    c.ping()


def test_mqtt311_empty_client_id_without_clean_session_is_rejected(sedge):
    c = sedge.raw(version=4)
    ack = c.connect("", version=4, clean=False)
    # [MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected), then close.
    assert ack.reason == 0x02, ack
    c.wait_closed()


def test_mqtt311_second_connection_with_same_client_id_closes_the_first(sedge):
    first = sedge.raw(version=4)
    assert first.connect("twin", version=4).reason == 0
    second = sedge.raw(version=4)
    assert second.connect("twin", version=4).reason == 0
    # [MQTT-3.1.4-2]: the existing client is disconnected.
    assert first.wait_closed() == []
    second.ping()


def test_mqtt5_session_takeover_sends_disconnect_0x8e_to_the_first(sedge):
    first = sedge.raw()
    assert first.connect("twin5").reason == 0
    second = sedge.raw()
    assert second.connect("twin5").reason == 0
    # [MQTT-3.1.4-3]: DISCONNECT with 0x8E (session taken over), then close.
    got = first.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(raw.DISCONNECT, raw.RC_SESSION_TAKEN_OVER)], got
    second.ping()


def test_session_takeover_resumes_the_session_and_its_subscriptions(sedge):
    first = sedge.raw()
    assert first.connect("mover", props={"session_expiry": 300}).reason == 0
    assert first.subscribe([("move/#", 1)]).reasons == [1]
    second = sedge.raw()
    ack = second.connect("mover", clean=False, props={"session_expiry": 300})
    assert ack.reason == 0 and ack.session_present, ack
    first.wait_closed()
    pub = sedge.client("mover-pub")
    pub.publish("move/x", b"after takeover", qos=1)
    p = second.recv_publish()
    assert (p.topic, p.payload) == ("move/x", b"after takeover")


def test_server_keep_alive_is_sent_when_the_client_asks_for_more_than_max_keepalive(make_sedge):
    s = make_sedge(limits={"max_keepalive": 30})
    c = s.raw()
    ack = c.connect("lazy", keepalive=60)
    assert ack.reason == 0
    assert ack.props.get("server_keep_alive") == 30, ack


def test_keep_alive_within_max_keepalive_is_kept(make_sedge):
    s = make_sedge(limits={"max_keepalive": 30})
    c = s.raw()
    ack = c.connect("modest", keepalive=20)
    assert ack.reason == 0
    assert ack.props.get("server_keep_alive", 20) == 20, ack


def test_mqtt5_client_silent_past_keep_alive_is_disconnected(sedge):
    mark = sedge.log_mark()
    c = sedge.raw()
    assert c.connect("sleepy", keepalive=1).reason == 0
    # [MQTT-3.1.2-22]: nothing for 1.5 x keep alive -> the server closes.
    got = c.wait_closed(timeout=15)
    assert all(p.type == raw.DISCONNECT and p.reason == raw.RC_KEEP_ALIVE_TIMEOUT
               for p in got), got
    sedge.wait_log(r"sleepy.*keep alive", since=mark)


def test_mqtt311_client_silent_past_keep_alive_is_disconnected(sedge):
    c = sedge.raw(version=4)
    assert c.connect("sleepy311", version=4, keepalive=1).reason == 0
    assert c.wait_closed(timeout=15) == []


def test_pingreq_keeps_a_short_keep_alive_connection_open(sedge):
    c = sedge.raw()
    assert c.connect("pinger", keepalive=2).reason == 0
    # Ping well inside the keep alive for twice its grace period.
    end = time.monotonic() + 4.5
    while time.monotonic() < end:
        c.ping()  # [MQTT-3.12.4-1]: the server MUST answer PINGRESP
        time.sleep(0.3)
    c.ping()


def test_connections_over_max_connections_are_refused(make_sedge):
    s = make_sedge(limits={"max_connections": 2})
    first, second = s.raw(), s.raw()
    assert first.connect("one").reason == 0
    assert second.connect("two").reason == 0
    mark = s.log_mark()
    third = s.raw()
    try:
        third.send(raw.connect("three"))
    except OSError:
        pass
    got = third.wait_closed()
    assert all(p.type != raw.CONNACK or p.reason >= 0x80 for p in got), got
    s.wait_log(lambda l: third.peer_name in l and "max_connections" in l, since=mark)
    assert s.status()["connections_refused"] >= 1
    first.disconnect()
    s.wait_status(lambda st: st["connections"] == 1, what="a free slot")
    assert s.raw().connect("four").reason == 0
    second.ping()


def test_unsupported_authentication_method_is_refused(sedge):
    c = sedge.raw()
    ack = c.connect("authy", props={"auth_method": "SCRAM-SHA-1"})
    # [MQTT-4.12.0-1]: 0x8C (bad authentication method) or 0x87, then close.
    assert ack.reason in (0x8C, raw.RC_NOT_AUTHORIZED), ack
    c.wait_closed()
