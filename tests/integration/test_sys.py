"""$SYS/broker/... statistics topics."""

import re

import pytest

from conftest import TIMEOUT


@pytest.fixture
def sys_sedge(make_sedge):
    return make_sedge(limits={"sys_interval_s": 1})


def number(payload):
    m = re.match(rb"\s*(\d+)", payload)
    assert m, "not a number: %r" % payload
    return int(m.group(1))


def next_value(c, topic, timeout=TIMEOUT * 2):
    """The next message `c` receives on `topic`."""
    while True:
        m = c.get(timeout)
        if m.topic == topic:
            return m


def test_sys_uptime_and_clients_connected_are_published_every_interval(sys_sedge):
    c = sys_sedge.client("sys-watcher")
    c.subscribe("$SYS/#", 0)
    first = number(next_value(c, "$SYS/broker/uptime").payload)
    connected = number(next_value(c, "$SYS/broker/clients/connected").payload)
    assert connected >= 1
    while True:  # published again, later
        later = number(next_value(c, "$SYS/broker/uptime").payload)
        if later > first:
            break


def test_sys_clients_connected_follows_connections(sys_sedge):
    c = sys_sedge.client("sys-count")
    c.subscribe("$SYS/broker/clients/connected", 0)
    others = [sys_sedge.client("extra%d" % i) for i in range(2)]
    while number(next_value(c, "$SYS/broker/clients/connected").payload) != 3:
        pass
    for o in others:
        o.disconnect()
    while number(next_value(c, "$SYS/broker/clients/connected").payload) != 1:
        pass


def test_sys_messages_received_counts_publishes(sys_sedge):
    c = sys_sedge.client("sys-msgs")
    c.subscribe("$SYS/broker/messages/received", 0)
    base = number(next_value(c, "$SYS/broker/messages/received").payload)
    pub = sys_sedge.client("sys-pub")
    for i in range(5):
        pub.publish("count/me", b"x", qos=1)
    while number(next_value(c, "$SYS/broker/messages/received").payload) < base + 5:
        pass


def test_sys_topics_are_not_matched_by_a_hash_subscription(sys_sedge):
    everything = sys_sedge.client("hash-sub")
    everything.subscribe("#", 0)
    sys_watch = sys_sedge.client("sys-watch")
    sys_watch.subscribe("$SYS/#", 0)
    next_value(sys_watch, "$SYS/broker/uptime")
    next_value(sys_watch, "$SYS/broker/uptime")  # a whole interval went by
    sys_sedge.client("marker-pub").publish("plain/marker", b"m", qos=1)
    got = [m.topic for m in everything.get_until("plain/marker")]
    # [MQTT-4.7.2-1]
    assert got == ["plain/marker"]


def test_clients_cannot_publish_on_sys_topics(sys_sedge):
    watch = sys_sedge.client("sys-guard")
    watch.subscribe("$SYS/broker/version", 0)
    faker = sys_sedge.client("faker", version=4)
    faker.publish("$SYS/broker/version", b"fake 9.9", qos=1)
    faker.publish("$SYS/broker/version", b"fake 9.9", qos=0)
    for _ in range(3):
        assert next_value(watch, "$SYS/broker/version").payload != b"fake 9.9"
