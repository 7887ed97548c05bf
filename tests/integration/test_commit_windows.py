"""Acknowledgements never precede durability: the crash-window tests.

Each test holds sedged's store commit from outside (store_hold.StoreHold),
does one exchange inside the window, and kill -9s sedged there. The rule
they check, for every acknowledgement the broker sends (PUBACK, PUBREC,
PUBREL, PUBCOMP, SUBACK, UNSUBACK): what it promises holds after the crash.
A client that got nothing inside the window redoes its part after
reconnecting, as MQTT clients do, and then the exchange completes.
"""

import time

import mqtt_raw as raw
from conftest import TIMEOUT
from store_hold import StoreHold

# Long enough for sedged to answer if it were going to answer from memory.
QUIET = 0.5
SESSION = {"session_expiry": 3600}


def persistent_raw(sedge, client_id, version=5):
    c = sedge.raw(version=version)
    if version == 5:
        ack = c.connect(client_id, clean=False, props=SESSION)
    else:
        ack = c.connect(client_id, clean=False)
    assert ack.reason == 0
    return c


def nothing_within(client, seconds, match):
    """The packets matching `match` that arrive within `seconds`."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            p = client.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        except raw.ConnectionClosed:
            break
        if match(p):
            got.append(p)
        else:
            client.pending.append(p)
            break
    return got


def is_type(ptype, pid=None):
    return lambda p: p.type == ptype and (pid is None or p.packet_id == pid)


class Qos2Receiver:
    """A QoS 2 receiver as the specification describes (method B of
    4.3.3): a PUBLISH is delivered to the application when first seen; its
    packet identifier is remembered until PUBREL, so a resend is not
    delivered again. The state outlives connections (a persistent
    session)."""

    def __init__(self):
        self.pending = set()
        self.delivered = []

    def on_publish(self, client, p):
        if p.packet_id not in self.pending:
            self.delivered.append(p.payload)
            self.pending.add(p.packet_id)
        client.send(raw.ack(raw.PUBREC, p.packet_id, client.version))

    def on_pubrel(self, client, p):
        self.pending.discard(p.packet_id)
        client.send(raw.ack(raw.PUBCOMP, p.packet_id, client.version))

    def run(self, client, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                p = client.recv(timeout=max(0.01, deadline - time.monotonic()))
            except (TimeoutError, raw.ConnectionClosed):
                return
            if p.type == raw.PUBLISH:
                self.on_publish(client, p)
            elif p.type == raw.PUBREL:
                self.on_pubrel(client, p)


def test_pubcomp_waits_until_the_released_packet_id_is_durable(sedge):
    # Issue 10 item 5: a PUBCOMP sent before the deletion of the inbound
    # packet identifier committed let a new message reusing the identifier
    # be taken, after kill -9, for a resend of the old one and dropped.
    sub = persistent_raw(sedge, "c5-sub")
    assert sub.subscribe([("c5/#", raw.sub_options(qos=1))]).reasons == [1]
    pub = persistent_raw(sedge, "c5-pub")
    pub.send(raw.publish("c5/t", b"first", qos=2, packet_id=7))
    assert pub.expect(raw.PUBREC).reason == 0
    assert sub.recv_publish().payload == b"first"
    with StoreHold(sedge):
        pub.send(raw.ack(raw.PUBREL, 7))
        early = nothing_within(pub, QUIET, is_type(raw.PUBCOMP, 7))
        sedge.kill9()
    sedge.start()
    pub = persistent_raw(sedge, "c5-pub")
    if not early:
        # No PUBCOMP came: the client releases again, as MQTT requires.
        pub.send(raw.ack(raw.PUBREL, 7))
        pub.expect(raw.PUBCOMP)
    # The identifier is free: a new message on it is a new message.
    pub.send(raw.publish("c5/t", b"second", qos=2, packet_id=7))
    assert pub.expect(raw.PUBREC).reason == 0
    pub.send(raw.ack(raw.PUBREL, 7))
    pub.expect(raw.PUBCOMP)
    sub = persistent_raw(sedge, "c5-sub")
    # "first" may come again (its PUBACK may have been inside the window:
    # QoS 1 allows that); "second" must come.
    got = [sub.recv_publish().payload]
    if got[0] == b"first":
        got.append(sub.recv_publish().payload)
    assert got[-1] == b"second", got
    assert not early, "PUBCOMP was sent before the deletion it announces was committed"


def test_pubrel_to_a_subscriber_waits_until_released_is_durable(sedge):
    # Issue 10 item 7: PUBREL sent before "released" committed made the
    # broker send the PUBLISH again after kill -9, to a receiver that had
    # completed it: a QoS 2 duplicate.
    receiver = Qos2Receiver()
    sub = persistent_raw(sedge, "c7-sub")
    sub.subscribe([("c7/#", raw.sub_options(qos=2))])
    pub = sedge.raw()
    pub.connect("c7-pub")
    pub.publish("c7/t", b"exactly once", qos=2)
    p = sub.expect(raw.PUBLISH)
    with StoreHold(sedge):
        receiver.on_publish(sub, p)  # PUBREC inside the window
        receiver.run(sub, QUIET)     # a PUBREL, if sedged sends one now
        sedge.kill9()
    sedge.start()
    sub = persistent_raw(sedge, "c7-sub")
    receiver.run(sub, 2.0)
    assert receiver.delivered == [b"exactly once"]


def test_unsuback_waits_until_the_removal_is_durable(sedge):
    # Issue 10 item 8: an UNSUBACK sent before the removal committed, and
    # the subscription came back after kill -9.
    sub = persistent_raw(sedge, "c8-sub")
    sub.subscribe([("c8/#", raw.sub_options(qos=1))])
    with StoreHold(sedge):
        sub.send(raw.unsubscribe(9, ["c8/#"]))
        early = nothing_within(sub, QUIET, is_type(raw.UNSUBACK, 9))
        sedge.kill9()
    sedge.start()
    sub = persistent_raw(sedge, "c8-sub")
    if not early:
        assert sub.unsubscribe(["c8/#"]).reasons == [0]
    pub = sedge.raw()
    pub.connect("c8-pub")
    pub.publish("c8/t", b"after unsubscribing", qos=1)
    assert nothing_within(sub, QUIET, is_type(raw.PUBLISH)) == []
    assert not early, "UNSUBACK was sent before the removal was committed"


def test_suback_of_a_persistent_session_waits_for_its_commit(sedge):
    sub = persistent_raw(sedge, "c8b-sub")
    with StoreHold(sedge):
        sub.send(raw.subscribe(3, [("c8b/#", raw.sub_options(qos=1))]))
        early = nothing_within(sub, QUIET, is_type(raw.SUBACK, 3))
        sedge.kill9()
    sedge.start()
    sub = persistent_raw(sedge, "c8b-sub")
    if not early:
        assert sub.subscribe([("c8b/#", raw.sub_options(qos=1))]).reasons == [1]
    pub = sedge.raw()
    pub.connect("c8b-pub")
    pub.publish("c8b/t", b"subscribed", qos=1)
    assert sub.recv_publish().payload == b"subscribed"
    assert not early, "SUBACK was sent before the subscription was committed"


def test_suback_of_only_refused_filters_is_not_held_for_ever(sedge):
    # A SUBSCRIBE that writes nothing (every filter invalid) must not wait
    # for a commit that never comes.
    sub = persistent_raw(sedge, "c8c-sub")
    ack = sub.subscribe([("bad/#/filter", raw.sub_options(qos=1))])
    assert ack.reasons == [raw.RC_TOPIC_FILTER_INVALID]


def test_qos2_resend_while_the_first_write_commits_is_not_acknowledged_from_memory(sedge):
    # Issue 10 item 6 (3.1.1): a DUP resend was acknowledged from memory
    # while the write of the first one had not committed; after kill -9 the
    # message was gone though the publisher held a PUBREC for it.
    sub = persistent_raw(sedge, "c6-sub", version=4)
    sub.subscribe([("c6/#", raw.sub_options(qos=2))])
    sub.close()
    pub = persistent_raw(sedge, "c6-pub", version=4)
    with StoreHold(sedge):
        pub.send(raw.publish("c6/t", b"kept", qos=2, packet_id=11, version=4))
        assert nothing_within(pub, QUIET, is_type(raw.PUBREC, 11)) == []
        pub.close()
        pub = persistent_raw(sedge, "c6-pub", version=4)
        pub.send(raw.publish("c6/t", b"kept", qos=2, packet_id=11, dup=True, version=4))
        early = nothing_within(pub, QUIET, is_type(raw.PUBREC, 11))
        sedge.kill9()
    sedge.start()
    assert not early, "a resend was acknowledged before the message was committed"
    pub = persistent_raw(sedge, "c6-pub", version=4)
    pub.send(raw.publish("c6/t", b"kept", qos=2, packet_id=11, dup=True, version=4))
    pub.expect(raw.PUBREC)
    pub.send(raw.ack(raw.PUBREL, 11, version=4))
    pub.expect(raw.PUBCOMP)
    receiver = Qos2Receiver()
    sub = persistent_raw(sedge, "c6-sub", version=4)
    receiver.run(sub, 2.0)
    assert receiver.delivered == [b"kept"]


def test_a_failed_commit_is_retried_and_acknowledgements_wait_for_it(make_sedge):
    # Issue 10 item 6 (5.0): after a failed commit a v5 publisher got
    # PUBREC 0x80 while the identifier stayed pending, so the next message
    # on it was acknowledged and dropped. Now the failed writes are kept
    # and retried: the acknowledgement comes, successful, once they commit,
    # and the identifier is then free for the next message.
    sedge = make_sedge(extra={"store": {"synchronous": "full", "busy_timeout_ms": 100}})
    sub = persistent_raw(sedge, "c6b-sub")
    sub.subscribe([("c6b/#", raw.sub_options(qos=2))])
    pub = persistent_raw(sedge, "c6b-pub")
    with StoreHold(sedge) as hold:
        pub.send(raw.publish("c6b/t", b"one", qos=2, packet_id=5))
        sedge.wait_log("could not commit")
        assert nothing_within(pub, QUIET, is_type(raw.PUBREC, 5)) == []
        hold.release()
        assert pub.expect(raw.PUBREC, timeout=TIMEOUT).reason == 0
    pub.send(raw.ack(raw.PUBREL, 5))
    pub.expect(raw.PUBCOMP)
    pub.send(raw.publish("c6b/t", b"two", qos=2, packet_id=5))
    assert pub.expect(raw.PUBREC).reason == 0
    pub.send(raw.ack(raw.PUBREL, 5))
    pub.expect(raw.PUBCOMP)
    receiver = Qos2Receiver()
    receiver.run(sub, 2.0)
    assert receiver.delivered == [b"one", b"two"]
    assert sedge.status()["store_failures"] >= 1


def test_qos1_to_a_persistent_session_survives_a_crash_inside_the_commit(sedge):
    # The rule as a whole: whatever the publisher got a PUBACK for is
    # delivered after the crash; whatever it did not get one for, it sends
    # again (and is then delivered).
    sub = persistent_raw(sedge, "c9-sub")
    sub.subscribe([("c9/#", raw.sub_options(qos=1))])
    sub.close()
    pub = persistent_raw(sedge, "c9-pub")
    pub.publish("c9/t", b"before", qos=1)
    with StoreHold(sedge):
        pub.send(raw.publish("c9/t", b"inside", qos=1, packet_id=21))
        acked_inside = nothing_within(pub, QUIET, is_type(raw.PUBACK, 21))
        sedge.kill9()
    sedge.start()
    assert not acked_inside
    pub = persistent_raw(sedge, "c9-pub")
    pub.send(raw.publish("c9/t", b"inside", qos=1, packet_id=21, dup=True))
    pub.expect(raw.PUBACK)
    sub = persistent_raw(sedge, "c9-sub")
    got = [sub.recv_publish().payload for _ in range(2)]
    assert got == [b"before", b"inside"]


def test_a_full_queue_does_not_acknowledge_a_311_publisher(make_sedge):
    # Issue 10 item 9: a 3.1.1 publisher got PUBACK for a message a full
    # subscriber queue dropped. 3.1.1 has no negative PUBACK: it is
    # disconnected instead, and resends after reconnecting.
    sedge = make_sedge(limits={"max_queued_messages": 2})
    sub = persistent_raw(sedge, "c9q-sub")
    sub.subscribe([("c9q/#", raw.sub_options(qos=1))])
    sub.close()
    pub = sedge.raw(version=4)
    pub.connect("c9q-pub", version=4)
    pub.publish("c9q/t", b"1", qos=1)
    pub.publish("c9q/t", b"2", qos=1)
    pub.send(raw.publish("c9q/t", b"3", qos=1, packet_id=33, version=4))
    got = pub.wait_closed()
    assert not [p for p in got if p.type == raw.PUBACK], got
    sedge.wait_log("no negative PUBACK")
    assert sedge.status()["messages_dropped"] >= 1
    # A v5 publisher is told with 0x97 and stays connected.
    pub5 = sedge.raw()
    pub5.connect("c9q-pub5")
    assert pub5.publish("c9q/t", b"4", qos=1).reason == 0x97
    assert pub5.ping().type == raw.PINGRESP


def test_while_the_store_cannot_commit_new_durable_messages_are_refused(make_sedge):
    # What waits for a failed commit is kept and retried; meanwhile new
    # QoS 1/2 messages are refused (v5 0x97; 3.1.1 disconnected without
    # PUBACK), QoS 0 flows on, and once the store commits again the waiting
    # acknowledgement goes out and everything flows.
    sedge = make_sedge(extra={"store": {"synchronous": "full", "busy_timeout_ms": 50}})
    sub = persistent_raw(sedge, "cf-sub")
    sub.subscribe([("cf/#", raw.sub_options(qos=1))])
    first = persistent_raw(sedge, "cf-first")
    with StoreHold(sedge) as hold:
        first.send(raw.publish("cf/t", b"waits", qos=1, packet_id=1))
        sedge.wait_log("could not commit")
        v5 = sedge.raw()
        v5.connect("cf-v5")
        assert v5.publish("cf/t", b"refused", qos=1).reason == 0x97
        v5.publish("cf/t", b"qos 0 flows", qos=0)
        assert sub.expect(raw.PUBLISH).payload == b"qos 0 flows"
        v311 = sedge.raw(version=4)
        v311.connect("cf-311", version=4)
        v311.send(raw.publish("cf/t", b"not acknowledged", qos=1, packet_id=2, version=4))
        assert not [p for p in v311.wait_closed() if p.type == raw.PUBACK]
        assert nothing_within(first, QUIET, is_type(raw.PUBACK, 1)) == []
        hold.release()
        assert first.expect(raw.PUBACK, timeout=TIMEOUT).reason == 0
    assert sub.recv_publish().payload == b"waits"
    assert v5.publish("cf/t", b"accepted again", qos=1).reason == 0
    assert sub.recv_publish().payload == b"accepted again"
    sedge.wait_log("the store commits again")


def test_a_qos2_message_in_flight_keeps_its_packet_id_across_a_crash(sedge):
    # Found by make soak: the packet identifier a QoS 1 entry gets when the
    # window opens is not stored, and at restart a QoS 2 entry after it
    # lost its identifier and was sent with a new one: a second delivery
    # (the receiver held the old one as pending), and the old one, free in
    # the broker's eyes, made the receiver drop the next message given it.
    sub = sedge.raw()
    props = dict(SESSION, receive_maximum=2)
    assert sub.connect("pid-sub", clean=False, props=props).reason == 0
    sub.subscribe([("pid/#", raw.sub_options(qos=2))])
    pub = sedge.raw()
    pub.connect("pid-pub")
    for topic, qos in (("pid/x1", 1), ("pid/x2", 1), ("pid/b", 1), ("pid/c", 2)):
        pub.publish(topic, topic.encode(), qos=qos)
    # The window (2) is full: b and c wait, without packet identifiers.
    for _ in range(2):
        p = sub.expect(raw.PUBLISH)
        sub.send(raw.ack(raw.PUBACK, p.packet_id))
    # Now b gets an identifier (not stored: QoS 1), then c (stored).
    got = {}
    for _ in range(2):
        p = sub.expect(raw.PUBLISH)
        got[p.qos] = p
    receiver = Qos2Receiver()
    receiver.delivered.append(got[2].payload)  # delivered, identifier held,
    receiver.pending.add(got[2].packet_id)      # not acknowledged at the crash
    sedge.kill9()
    sedge.start()
    sub = sedge.raw()
    assert sub.connect("pid-sub", clean=False, props=props).session_present
    again = []
    for _ in range(2):
        p = sub.expect(raw.PUBLISH)
        again.append(p)
        if p.qos == 2:
            receiver.on_publish(sub, p)
        else:
            sub.send(raw.ack(raw.PUBACK, p.packet_id))
    resent = [p for p in again if p.qos == 2]
    assert resent and resent[0].packet_id == got[2].packet_id and resent[0].dup, again
    receiver.run(sub, 1.0)
    assert receiver.delivered == [b"pid/c"]
