"""A thing's session belongs to its certificate's identity.

On a TLS listener client ids are namespaced by the identity (the
certificate's CN): another thing using the same client id gets a session of
its own, and can neither take over nor block this one (issue 10 item 11:
thing `other` took client id `lamp-id` as a persistent session and `lamp`
was refused with 0x87 for ever).
"""

import sqlite3

import mqtt_raw as raw

SESSION = {"session_expiry": 3600}


def test_another_identity_cannot_squat_a_client_id(tls_sedge):
    s = tls_sedge
    other = s.raw(cert="other")
    assert other.connect("lamp-id", clean=False, props=SESSION).reason == 0
    other.subscribe([("squat/#", raw.sub_options(qos=1))])
    # lamp uses the same client id while other's connection is up: its own
    # session, and other stays connected.
    lamp = s.raw(cert="lamp")
    ack = lamp.connect("lamp-id", clean=False, props=SESSION)
    assert ack.reason == 0 and not ack.session_present
    assert other.ping().type == raw.PINGRESP
    lamp.subscribe([("lamp/#", raw.sub_options(qos=1))])
    pub = s.raw()
    pub.connect("squat-pub")
    pub.publish("squat/x", b"for other", qos=1)
    pub.publish("lamp/x", b"for lamp", qos=1)
    assert other.recv_publish().payload == b"for other"
    assert lamp.recv_publish().payload == b"for lamp"
    # Each identity's session survives a restart as its own.
    other.close()
    lamp.close()
    s.kill9()
    s.start()
    pub = s.raw()
    pub.connect("squat-pub")
    pub.publish("lamp/x", b"queued for lamp", qos=1)
    lamp = s.raw(cert="lamp")
    assert lamp.connect("lamp-id", clean=False, props=SESSION).session_present
    got = lamp.recv_publish().payload
    if got == b"for lamp":  # QoS 1: its PUBACK may not have been committed before kill -9
        got = lamp.recv_publish().payload
    assert got == b"queued for lamp"
    other = s.raw(cert="other")
    assert other.connect("lamp-id", clean=False, props=SESSION).session_present
    # The same identity still takes its own session over.
    again = s.raw(cert="lamp")
    assert again.connect("lamp-id", clean=False, props=SESSION).session_present
    assert [p.reason for p in lamp.wait_closed() if p.type == raw.DISCONNECT] == [0x8E]
    assert other.ping().type == raw.PINGRESP


def test_a_store_from_before_namespacing_keeps_each_session_with_its_owner(make_sedge):
    # A session row written before client ids were namespaced (owner lamp,
    # client id lamp-id) is found again by lamp after the upgrade.
    s = make_sedge(tls=True)
    s.stop()
    db = sqlite3.connect(str(s.data_dir / "sedge.db"))
    db.execute("INSERT INTO session VALUES ('lamp-id', 'lamp', 3600, 5, 0)")
    db.execute("INSERT INTO sub VALUES ('lamp-id', 'legacy/#', 1, 0)")
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    s.start()
    lamp = s.raw(cert="lamp")
    assert lamp.connect("lamp-id", clean=False, props=SESSION).session_present
    pub = s.raw()
    pub.connect("legacy-pub")
    pub.publish("legacy/x", b"still subscribed", qos=1)
    assert lamp.recv_publish().payload == b"still subscribed"
