"""Groups: deployment documents, routes as authorisation, deployment history
and rollback, revocation, and what survives restart and kill -9.

Once a group is deployed a thing (client id over tcp, certificate CN over
tls) may publish only where a route from it matches, subscribe only to what
a route to it could deliver, and receives a message only when a route from
its publisher to it matches and it is subscribed.
"""

import json
import subprocess
import time

import pytest

import mqtt_raw as raw
from conftest import SEDGECTL, SLOW, TIMEOUT, wait_for
from groups_helpers import (ShadowDevice, active_group, by_version, deploy, deploy_ok,
                            deployments, group_doc, route_counters, write_doc)

KITCHEN = group_doc("kitchen", ["sensor", "lamp", "panel"], [
    ("thing:sensor", "temp/#", "thing:lamp"),
    ("thing:sensor", "temp/#", "thing:panel"),
    ("thing:panel", "cmd/lamp", "thing:lamp"),
    ("thing:sensor", "up/#", "cloud"),
])


def expect_nothing_then(client, marker_publish, marker_topic):
    """Run marker_publish() (a message that is routed to `client` after
    whatever the test published before) and assert that the marker is the
    first thing `client` receives."""
    marker_publish()
    got = client.get_until(marker_topic)
    assert [m.topic for m in got] == [marker_topic], \
        "received what it should not have: %r" % [(m.topic, m.payload) for m in got[:-1]]


def refused_connect(sedge, client_id, version, cert=None):
    """CONNECT as `client_id`; returns the CONNACK reason and asserts the
    connection is closed after it."""
    c = sedge.raw(version=version, cert=cert)
    ack = c.connect(client_id)
    if ack.reason != 0:
        c.wait_closed()
    return ack.reason


def flows_as_v1(sedge):
    """Whether KITCHEN's sensor -> temp/# route is in force."""
    sensor = sedge.raw(version=5)
    assert sensor.connect("sensor").reason == 0
    return sensor.publish("temp/x", b"", qos=1).reason == 0



def test_broker_is_open_before_any_deployment(sedge):
    assert active_group(sedge) is None
    assert deployments(sedge) == []
    sub = sedge.client("anyone")
    assert sub.subscribe("any/#", 1) == [1]
    pub = sedge.raw(version=5)
    assert pub.connect("whoever").reason == 0
    assert pub.publish("any/x", b"open", qos=1).reason == 0
    m = sub.get()
    assert (m.topic, m.payload) == ("any/x", b"open")



def test_deploy_makes_the_group_active_in_status_and_deployments(sedge):
    r = deploy(sedge, KITCHEN)
    assert r.returncode == 0, r.stderr
    assert "version 1" in r.stdout and "kitchen" in r.stdout, r.stdout
    s = sedge.status()
    g = s["group"]
    assert (g["name"], g["version"], g["things"]) == ("kitchen", 1, 3)
    assert [x["route"] for x in s["routes"]] == [
        "thing:sensor -> temp/# -> thing:lamp", "thing:sensor -> temp/# -> thing:panel",
        "thing:panel -> cmd/lamp -> thing:lamp", "thing:sensor -> up/# -> cloud"]
    assert all(x["messages"] == 0 for x in s["routes"])
    [d] = deployments(sedge)
    assert {"version", "group", "created_at", "status", "checksum"} <= set(d), d
    assert (d["version"], d["group"], d["status"]) == (1, "kitchen", "active")
    assert d["checksum"] == g["checksum"] and len(d["checksum"]) >= 12
    assert abs(d["created_at"] - time.time()) < 300
    human = sedge.ctl("deployments")
    assert human.returncode == 0 and "kitchen" in human.stdout and "active" in human.stdout


def test_route_counters_count_routed_messages(sedge):
    deploy_ok(sedge, KITCHEN)
    lamp = sedge.client("lamp")
    assert lamp.subscribe("temp/#", 1) == [1]
    panel = sedge.client("panel", version=4)
    assert panel.subscribe("temp/#", 1) == [1]
    sensor = sedge.client("sensor")
    for i in range(3):
        sensor.publish("temp/kitchen", b"%d" % i, qos=1)
    assert len(lamp.get_many(3)) == 3 and len(panel.get_many(3)) == 3
    counters = sedge.wait_status(
        lambda s: {r["route"]: r["messages"] for r in s["routes"]}
        ["thing:sensor -> temp/# -> thing:panel"] == 3, what="route counter 3")
    routes = {r["route"]: r["messages"] for r in counters["routes"]}
    assert routes["thing:sensor -> temp/# -> thing:lamp"] == 3
    assert routes["thing:panel -> cmd/lamp -> thing:lamp"] == 0



@pytest.mark.parametrize("qos", [1, 2])
def test_v5_publish_without_a_route_gets_not_authorized(sedge, qos):
    deploy_ok(sedge, KITCHEN)
    lamp = sedge.client("lamp")
    lamp.subscribe("temp/#", 1)
    sensor = sedge.raw(version=5)
    assert sensor.connect("sensor").reason == 0
    ack = sensor.publish("cmd/lamp", b"not sensor's to send", qos=qos)  # panel's route
    assert ack.type == (raw.PUBACK if qos == 1 else raw.PUBREC), ack
    assert ack.reason == raw.RC_NOT_AUTHORIZED, ack
    ok = sensor.publish("temp/x", b"allowed", qos=qos)
    assert ok.reason == 0, ok
    m = lamp.get()
    assert (m.topic, m.payload) == ("temp/x", b"allowed")


def test_v311_publish_without_a_route_is_dropped_counted_and_the_connection_stays(sedge):
    deploy_ok(sedge, KITCHEN)
    lamp = sedge.client("lamp")
    lamp.subscribe("cmd/lamp", 1)
    lamp.subscribe("temp/#", 1)
    dropped = sedge.status()["messages_dropped"]
    sensor = sedge.raw(version=4)
    assert sensor.connect("sensor").reason == 0
    sensor.publish("cmd/lamp", b"forbidden", qos=1)
    sensor.publish("cmd/lamp", b"forbidden too", qos=0)
    sedge.wait_status(lambda s: s["messages_dropped"] >= dropped + 2, what="2 drops counted")
    sensor.ping()  # still connected
    sensor.publish("temp/ok", b"allowed", qos=1)
    m = lamp.get()
    assert (m.topic, m.payload) == ("temp/ok", b"allowed")


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_only_to_filters_a_route_could_deliver(sedge, version):
    deploy_ok(sedge, KITCHEN)
    lamp = sedge.raw(version=version)
    assert lamp.connect("lamp").reason == 0
    refused = 0x87 if version == 5 else 0x80
    ack = lamp.subscribe([("temp/#", 1), ("cmd/lamp", 1), ("up/#", 1), ("other/x", 0)])
    assert ack.reasons == [1, 1, refused, refused], ack
    ack = lamp.subscribe([("temp/kitchen/+", 0)])  # narrower than the route: deliverable
    assert ack.reasons == [0], ack
    sensor = sedge.raw(version=version)
    assert sensor.connect("sensor").reason == 0
    ack = sensor.subscribe([("temp/#", 0)])  # no route delivers to sensor
    assert ack.reasons == [refused], ack


def test_broad_subscription_receives_only_what_routes_deliver(sedge):
    deploy_ok(sedge, KITCHEN)
    lamp = sedge.client("lamp")
    acks = lamp.subscribe("#", 1)
    if acks == [raw.RC_NOT_AUTHORIZED]:  # refusing a filter wider than the routes is fine too
        assert lamp.subscribe("temp/#", 1) == [1]
    else:
        assert acks == [1], acks
    sensor, panel = sedge.client("sensor"), sedge.client("panel")
    sensor.publish("up/x", b"for the cloud", qos=1)
    panel.publish("cmd/lamp", b"on", qos=1)
    got = lamp.get_until("cmd/lamp") if acks == [1] else []
    assert [(m.topic, m.payload) for m in got] in ([], [("cmd/lamp", b"on")]), got
    expect_nothing_then(lamp, lambda: sensor.publish("temp/end", b"", qos=1), "temp/end")


def test_delivery_needs_a_route_from_the_publisher_and_a_subscription(sedge):
    doc = group_doc("pair", ["a", "b", "c", "d"], [
        ("thing:a", "f/#", "thing:b"),
        ("thing:a", "f/#", "thing:c"),
        ("thing:d", "f/#", "thing:c"),
        ("thing:a", "mark/#", "thing:b"),
        ("thing:a", "mark/#", "thing:c"),
    ])
    deploy_ok(sedge, doc)
    b = sedge.client("b")
    assert b.subscribe("f/#", 1) == [1]
    assert b.subscribe("mark/b", 1) == [1]
    c = sedge.client("c")
    assert c.subscribe("mark/c", 1) == [1]  # f/# is routed to c, but c did not subscribe it
    a = sedge.client("a")
    d = sedge.client("d")
    a.publish("f/1", b"from a", qos=1)
    m = b.get()
    assert (m.topic, m.payload) == ("f/1", b"from a")
    d.publish("f/2", b"from d", qos=1)  # routed to c only, and c is not subscribed
    expect_nothing_then(b, lambda: a.publish("mark/b", b"m", qos=1), "mark/b")
    expect_nothing_then(c, lambda: a.publish("mark/c", b"m", qos=1), "mark/c")
    assert c.subscribe("f/#", 1) == [1]
    d.publish("f/3", b"from d", qos=1)
    m = c.get()
    assert (m.topic, m.payload) == ("f/3", b"from d")
    # b is subscribed to f/# but there is no route from d to b
    expect_nothing_then(b, lambda: a.publish("mark/b", b"m", qos=1), "mark/b")


def test_thing_wildcard_as_source_and_as_target(sedge):
    doc = group_doc("wild", ["a", "b", "c"], [
        ("thing:*", "report/#", "thing:c"),
        ("thing:c", "alert/#", "thing:*"),
    ])
    deploy_ok(sedge, doc)
    c = sedge.client("c")
    assert c.subscribe("report/#", 1) == [1]
    a, b = sedge.client("a"), sedge.client("b", version=4)
    for t in (a, b):
        assert t.subscribe("alert/#", 1) == [1]
    a.publish("report/a", b"ra", qos=1)
    b.publish("report/b", b"rb", qos=1)
    got = sorted((m.topic, m.payload) for m in c.get_many(2))
    assert got == [("report/a", b"ra"), ("report/b", b"rb")]
    c.publish("alert/fire", b"!", qos=1)
    for t in (a, b):
        m = t.get()
        assert (m.topic, m.payload) == ("alert/fire", b"!")
    # thing:* means the group's things, not anyone
    assert refused_connect(sedge, "not-in-group", 5) == raw.RC_NOT_AUTHORIZED
    # and c's alert route does not let a publish alerts
    r = sedge.raw(version=5)
    assert r.connect("a").reason == 0
    assert r.publish("alert/fake", b"", qos=1).reason == raw.RC_NOT_AUTHORIZED


@pytest.mark.parametrize("version", [4, 5])
def test_thing_not_in_the_group_is_refused_at_connect(sedge, version):
    deploy_ok(sedge, KITCHEN)
    expected = raw.RC_NOT_AUTHORIZED if version == 5 else 5
    assert refused_connect(sedge, "intruder", version) == expected
    assert refused_connect(sedge, "lamp", version) == 0


def test_tls_identity_is_the_certificate_cn_not_the_client_id(make_sedge):
    s = make_sedge(tls=True)
    deploy_ok(s, KITCHEN)
    lamp = s.client("lamp-device-17", cert="lamp")
    assert lamp.subscribe("temp/#", 1) == [1]
    sensor = s.raw(cert="sensor")
    assert sensor.connect("some-sensor-id").reason == 0
    assert sensor.publish("temp/x", b"via cert", qos=1).reason == 0
    m = lamp.get()
    assert (m.topic, m.payload) == ("temp/x", b"via cert")
    # a certificate for a thing outside the group, claiming a member's client id
    assert refused_connect(s, "lamp", 5, cert="mallory") == raw.RC_NOT_AUTHORIZED
    assert refused_connect(s, "sensor", 4, cert="mallory") == 5



GOOD_ROUTES = KITCHEN["routes"]
BAD_DOCS = {
    "invalid-json": ('{"group": "kitchen", "things": [', "invalid JSON"),
    "not-an-object": ('["kitchen"]', "object"),
    "unknown-function": (group_doc("kitchen", ["sensor"], [
        ("thing:sensor", "temp/#", "thing:sensor"), ("thing:sensor", "t", "function:alarm")]),
        'routes[1].target: unknown function "alarm"'),
    "unknown-thing": (group_doc("kitchen", ["sensor"], [("thing:ghost", "t", "cloud")]),
                      'routes[0].source: unknown thing "ghost"'),
    "unknown-connector": (group_doc("kitchen", ["sensor"], [("connector:modbus", "t",
                                                             "thing:sensor")]),
                          'routes[0].source: unknown connector "modbus"'),
    "unknown-endpoint-kind": (group_doc("kitchen", ["sensor"], [("thing:sensor", "t",
                                                                 "database")]),
                              "routes[0].target"),
    "bad-filter": (group_doc("kitchen", ["sensor"], [("thing:sensor", "a/#/b", "cloud")]),
                   "routes[0].filter"),
    "bad-filter-plus": (group_doc("kitchen", ["sensor"], [("thing:sensor", "a/b+", "cloud")]),
                        "routes[0].filter"),
    "duplicate-thing": (group_doc("kitchen", ["sensor", "lamp", "sensor"], []),
                        'things[2].name: duplicate name "sensor"'),
    "unknown-top-key": (dict(group_doc("kitchen", ["sensor"], []), colour="blue"),
                        "colour: unknown key"),
    "unknown-route-key": (group_doc("kitchen", ["sensor"], [
        {"source": "thing:sensor", "filter": "t", "target": "cloud", "priority": 1}]),
        "routes[0].priority: unknown key"),
    "bad-qos": (group_doc("kitchen", ["sensor"], [
        {"source": "thing:sensor", "filter": "t", "target": "cloud", "qos": 3}]),
        "routes[0].qos"),
    "missing-group-name": ({"things": [], "routes": []}, "group"),
}


def assert_running_group_untouched(sedge, before_status, before_deployments):
    g = active_group(sedge)
    assert g == before_status["group"], (g, before_status["group"])
    assert deployments(sedge) == before_deployments
    # and it still decides what flows
    lamp = sedge.client("lamp")
    assert lamp.subscribe("temp/#", 1) == [1]
    sensor = sedge.raw(version=5)
    assert sensor.connect("sensor").reason == 0
    assert sensor.publish("cmd/lamp", b"x", qos=1).reason == raw.RC_NOT_AUTHORIZED
    assert sensor.publish("temp/still", b"y", qos=1).reason == 0
    assert lamp.get().payload == b"y"
    lamp.close()


@pytest.mark.parametrize("case", sorted(BAD_DOCS))
def test_bad_document_is_refused_with_its_json_path_and_the_group_untouched(sedge, case):
    deploy_ok(sedge, KITCHEN)
    before, hist = sedge.status(), deployments(sedge)
    doc, message = BAD_DOCS[case]
    r = deploy(sedge, doc)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert_running_group_untouched(sedge, before, hist)


def test_every_problem_is_reported_at_once(sedge):
    doc = group_doc("kitchen", ["sensor", "lamp", "sensor"], [
        ("thing:sensor", "temp/#", "thing:lamp"),
        ("thing:sensor", "x/#/y", "thing:lamp"),
        ("thing:sensor", "t", "function:alarm"),
        ("thing:nobody", "t", "cloud"),
    ])
    doc["extra"] = True
    r = deploy(sedge, doc)
    assert r.returncode == 1
    for needle in ('things[2].name: duplicate name "sensor"', "routes[1].filter",
                   'routes[2].target: unknown function "alarm"',
                   'routes[3].source: unknown thing "nobody"', "extra: unknown key"):
        assert needle in r.stderr, (needle, r.stderr)
    assert active_group(sedge) is None and deployments(sedge) == []


def test_missing_file_and_document_over_4_mib_are_refused(sedge):
    deploy_ok(sedge, KITCHEN)
    before, hist = sedge.status(), deployments(sedge)
    r = sedge.ctl("deploy", sedge.root / "no-such-file.json")
    assert r.returncode == 1 and r.stderr.strip(), r
    big = dict(KITCHEN, description="x" * (4 * 1024 * 1024))
    r = deploy(sedge, big)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "limit" in r.stderr.lower() or "large" in r.stderr.lower(), r.stderr
    assert_running_group_untouched(sedge, before, hist)
    # just under the limit is fine
    fits = dict(KITCHEN, description="x" * (4 * 1024 * 1024 - 2048))
    r = deploy(sedge, fits)
    assert r.returncode == 0, r.stderr
    assert active_group(sedge)["version"] == 2


def large_group(name, routes):
    doc = group_doc(name, ["sensor", "lamp", "panel"] + ["t%d" % i for i in range(routes)],
                    list(KITCHEN["routes"]))
    doc["routes"] += [{"source": "thing:t%d" % i, "filter": "big/%d/+/#" % i,
                       "target": "thing:t%d" % ((i + 1) % routes)} for i in range(routes)]
    return doc


def test_concurrent_deploys_are_sequential_or_refused(sedge):
    deploy_ok(sedge, KITCHEN)
    paths = [write_doc(sedge, large_group("big-%d" % i, 20000)) for i in range(2)]
    procs = [subprocess.Popen([str(SEDGECTL), "--data-dir", str(sedge.data_dir), "deploy",
                               str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for p in paths]
    results = [p.communicate(timeout=60 * SLOW) for p in procs]
    codes = [p.returncode for p in procs]
    for p, (out, err) in zip(procs, results):
        if p.returncode != 0:
            assert p.returncode == 1, (p.returncode, out, err)
            assert "another deployment is in progress" in err, err
    assert 0 in codes, results
    hist = by_version(sedge)
    g = active_group(sedge)
    ok = codes.count(0)
    assert g["version"] == 1 + ok, (g, codes)
    assert g["name"] in ("big-0", "big-1")
    assert hist[g["version"]]["status"] == "active"
    assert sorted(d["status"] for d in hist.values()) == sorted(["active"] + ["superseded"] * ok)
    # the winner's routes are the ones in force
    t0 = sedge.raw(version=5)
    assert t0.connect("t0").reason == 0
    assert t0.publish("big/0/x/y", b"", qos=1).reason == 0
    assert t0.publish("big/1/x/y", b"", qos=1).reason == raw.RC_NOT_AUTHORIZED



V2 = group_doc("kitchen", ["sensor", "lamp", "panel"], [
    ("thing:sensor", "humidity/#", "thing:lamp"),
])


def test_deployments_history_and_rollback_to_the_previous_good_version(sedge):
    deploy_ok(sedge, KITCHEN)
    assert deploy_ok(sedge, V2) == 2
    hist = by_version(sedge)
    assert (hist[1]["status"], hist[2]["status"]) == ("superseded", "active")
    assert hist[1]["checksum"] != hist[2]["checksum"]
    sensor = sedge.raw(version=5)
    assert sensor.connect("sensor").reason == 0
    assert sensor.publish("temp/x", b"", qos=1).reason == raw.RC_NOT_AUTHORIZED
    assert sensor.publish("humidity/x", b"", qos=1).reason == 0

    r = sedge.ctl("rollback")
    assert r.returncode == 0, r.stderr
    g = active_group(sedge)
    assert g["checksum"] == hist[1]["checksum"], (g, hist)
    after = by_version(sedge)
    statuses = {v: d["status"] for v, d in after.items()}
    assert statuses[2] == "rolled_back", statuses
    assert after[2].get("reason"), after[2]
    assert statuses[g["version"]] == "active"
    assert list(statuses.values()).count("active") == 1
    assert sensor.publish("temp/x", b"", qos=1).reason == 0
    assert sensor.publish("humidity/x", b"", qos=1).reason == raw.RC_NOT_AUTHORIZED


def test_deploy_that_fails_to_apply_is_recorded_failed_and_the_old_group_stays(sedge):
    deploy_ok(sedge, KITCHEN)
    before = active_group(sedge)
    broken = dict(KITCHEN, functions=[{"name": "f", "exec": [str(sedge.root / "no-such-binary")],
                                       "lifecycle": "long-lived"}],
                  routes=KITCHEN["routes"] + [{"source": "function:f", "filter": "fn/#",
                                               "target": "thing:lamp"}])
    r = deploy(sedge, broken)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no-such-binary" in r.stderr, r.stderr
    assert active_group(sedge) == before
    hist = by_version(sedge)
    assert hist[1]["status"] == "active"
    assert hist[2]["status"] == "failed" and "no-such-binary" in hist[2].get("reason", ""), hist
    assert flows_as_v1(sedge)


def test_rollback_to_a_given_version(sedge):
    deploy_ok(sedge, KITCHEN)
    deploy_ok(sedge, V2)
    deploy_ok(sedge, group_doc("v3", ["sensor"], [("thing:sensor", "v3/#", "cloud")]))
    first = by_version(sedge)[1]["checksum"]
    r = sedge.ctl("rollback", "1")
    assert r.returncode == 0, r.stderr
    g = active_group(sedge)
    assert (g["name"], g["checksum"]) == ("kitchen", first)
    assert refused_connect(sedge, "lamp", 5) == 0  # not in v3, back in with v1
    r = sedge.ctl("rollback", "99")
    assert r.returncode == 1 and "99" in r.stderr, r
    assert active_group(sedge) == g


def test_rollback_without_an_earlier_version_fails_clearly(sedge):
    r = sedge.ctl("rollback")
    assert r.returncode == 1 and r.stderr.strip(), r
    deploy_ok(sedge, KITCHEN)
    r = sedge.ctl("rollback")
    assert r.returncode == 1 and r.stderr.strip(), r
    assert active_group(sedge)["version"] == 1



@pytest.mark.parametrize("how", ["removed", "revoked"])
@pytest.mark.parametrize("version", [4, 5])
def test_removed_or_revoked_thing_is_disconnected_within_1s_and_refused(sedge, how, version):
    deploy_ok(sedge, KITCHEN)
    lamp = sedge.client("lamp", version=version)
    assert lamp.subscribe("temp/#", 1) == [1]
    panel = sedge.client("panel")
    if how == "removed":
        doc = group_doc("kitchen", ["sensor", "panel"], [("thing:sensor", "temp/#",
                                                           "thing:panel")])
    else:
        doc = dict(KITCHEN, revoked=["lamp"])
    r = deploy(sedge, doc)
    done = time.monotonic()
    assert r.returncode == 0, r.stderr
    lamp.wait_disconnected(timeout=TIMEOUT)
    assert time.monotonic() - done < 1.0 * SLOW, "disconnected %.2f s after the deploy" % (
        time.monotonic() - done)
    expected = raw.RC_NOT_AUTHORIZED if version == 5 else 5
    assert refused_connect(sedge, "lamp", version) == expected
    panel.subscribe("temp/#", 1)
    sedge.client("sensor").publish("temp/x", b"still works", qos=1)
    assert panel.get().payload == b"still works"
    assert panel.disconnects.empty()



def test_active_group_survives_restart_and_kill_9(sedge):
    deploy_ok(sedge, KITCHEN)
    deploy_ok(sedge, V2)
    before = active_group(sedge)
    hist = deployments(sedge)
    sedge.restart()
    assert active_group(sedge) == before
    assert deployments(sedge) == hist
    sedge.kill9()
    sedge.start()
    assert active_group(sedge) == before
    assert deployments(sedge) == hist
    assert refused_connect(sedge, "intruder", 5) == raw.RC_NOT_AUTHORIZED
    assert not flows_as_v1(sedge)
    assert [r["route"] for r in sedge.status()["routes"]] == [
        "thing:sensor -> humidity/# -> thing:lamp"]


def test_kill_9_just_after_a_deploy_keeps_the_new_version(sedge):
    deploy_ok(sedge, KITCHEN)
    r = deploy(sedge, V2)
    assert r.returncode == 0, r.stderr
    sedge.kill9()
    sedge.start()
    g = active_group(sedge)
    assert g["version"] == 2 and by_version(sedge)[2]["status"] == "active"
    assert not flows_as_v1(sedge)


@pytest.mark.parametrize("moment", ["deploying version 2", "deployed version 2"])
def test_kill_9_during_a_deploy_leaves_one_whole_version(sedge, moment):
    deploy_ok(sedge, KITCHEN)
    old = active_group(sedge)
    big = large_group("big", 20000)
    path = write_doc(sedge, big)
    proc = subprocess.Popen([str(SEDGECTL), "--data-dir", str(sedge.data_dir), "deploy",
                             str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # kill as soon as sedged logs `moment` (or sedgectl is done)
    wait_for(lambda: proc.poll() is not None or moment in sedge.log(),
             timeout=TIMEOUT, interval=0.001, what="the deploy to start")
    sedge.kill9()
    out, err = proc.communicate(timeout=TIMEOUT)
    sedge.start()
    g = active_group(sedge)
    hist = by_version(sedge)
    if proc.returncode == 0:
        assert g["name"] == "big", (out, err, g)
    assert g["name"] in ("kitchen", "big"), g
    assert hist[g["version"]]["status"] == "active"
    assert hist[g["version"]]["checksum"] == g["checksum"]
    assert [d["status"] for d in hist.values()].count("active") == 1, hist
    routes = sedge.status()["routes"]
    if g["name"] == "kitchen":
        assert g == old
        assert len(routes) == 4 and flows_as_v1(sedge)
    else:
        assert len(routes) == len(big["routes"])
        t5 = sedge.raw(version=5)
        assert t5.connect("t5").reason == 0
        assert t5.publish("big/5/a/b", b"", qos=1).reason == 0



def test_status_lists_the_unattached_cloud_as_soon_as_a_route_targets_it(sedge):
    deploy_ok(sedge, KITCHEN)
    cloud = sedge.status().get("services", {}).get("cloud")
    assert cloud is not None and cloud["attached"] is False and cloud["waiting"] == 0, \
        sedge.status().get("services")


def test_messages_routed_to_an_unattached_cloud_wait_in_status(sedge):
    deploy_ok(sedge, KITCHEN)
    sensor = sedge.client("sensor")
    for i in range(3):
        sensor.publish("up/reading", b"%d" % i, qos=1)
    s = sedge.wait_status(lambda s: s.get("services", {}).get("cloud", {}).get("waiting") == 3,
                          what="3 messages waiting for the cloud")
    assert s["services"]["cloud"]["attached"] is False
    assert route_counters(sedge)["thing:sensor -> up/# -> cloud"] == 3


def test_waiting_for_the_cloud_is_bounded(sedge):
    deploy_ok(sedge, KITCHEN)
    sensor = sedge.raw(version=5)
    assert sensor.connect("sensor").reason == 0
    n = 0
    last = None
    while n < 20000:
        for _ in range(500):
            sensor.publish("up/x", b"m", qos=0)
            n += 1
        sensor.ping()
        s = sedge.status()["services"]["cloud"]
        if last is not None and s["waiting"] == last["waiting"]:
            break
        last = s
    s = sedge.status()["services"]["cloud"]
    assert s["attached"] is False
    assert s["waiting"] < n, "nothing bounds the cloud's inbox: %r after %d" % (s, n)
    assert s.get("dropped", 0) >= n - s["waiting"], s



def test_route_to_shadow_grants_the_thing_its_shadow_topics(sedge):
    doc = group_doc("shadows", ["lamp", "sensor"], [
        ("thing:lamp", "$aws/things/lamp/shadow/#", "shadow"),
        ("thing:sensor", "temp/#", "thing:lamp"),
    ])
    deploy_ok(sedge, doc)
    lamp = ShadowDevice(sedge, "lamp")
    reply = lamp.accepted("update", {"state": {"reported": {"on": True}}})
    assert reply["state"] == {"reported": {"on": True}}
    got = lamp.accepted("get")
    assert got["state"]["reported"] == {"on": True}
    # sensor has no route to the shadow: refused and no reply
    sensor = sedge.raw(version=5)
    assert sensor.connect("sensor").reason == 0
    ack = sensor.publish("$aws/things/sensor/shadow/update",
                         json.dumps({"state": {"reported": {"x": 1}}}), qos=1)
    assert ack.reason == raw.RC_NOT_AUTHORIZED
    ack = sensor.publish("$aws/things/lamp/shadow/update",
                         json.dumps({"state": {"reported": {"on": False}}}), qos=1)
    assert ack.reason == raw.RC_NOT_AUTHORIZED
    assert lamp.accepted("get")["state"]["reported"] == {"on": True}


def test_thing_wildcard_shadow_route_keeps_replies_to_their_own_thing(make_sedge):
    sedge = make_sedge(tls=True)
    doc = group_doc("shadows", ["a", "b"], [
        ("thing:*", "$aws/things/+/shadow/#", "shadow"),
    ])
    deploy_ok(sedge, doc)
    spy = sedge.client("a-spy", cert="a")
    acks = spy.subscribe("$aws/things/b/shadow/#", 1)
    b = ShadowDevice(sedge, "b-device", thing="b", cert="b")
    b.accepted("update", {"state": {"reported": {"secret": 42}}})
    b.accepted("get")
    a = ShadowDevice(sedge, "a-device", thing="a", version=4, cert="a")
    a.accepted("update", {"state": {"desired": {"mine": 1}}})
    assert a.accepted("get")["state"]["desired"] == {"mine": 1}
    if acks == [raw.RC_NOT_AUTHORIZED]:
        return
    # the subscription was granted: then nothing of b's may reach a; the
    # spy's own shadow reply, published after b's, marks the end
    spy.subscribe("$aws/things/a/shadow/get/accepted", 1)
    a.accepted("get")
    got = spy.get_until("$aws/things/a/shadow/get/accepted")
    leaked = [(m.topic, m.payload) for m in got if "/things/b/" in m.topic]
    assert not leaked, leaked
