"""Shadow sync and jobs over the uplink, against fakes of AWS IoT's Device
Shadow and Jobs services on a real mosquitto (cloud.py).

Shadow sync: while connected, a local change goes to the cloud (client
token "sedge-sync:RUN-N") and a cloud change is applied locally, neither echoed
back; when the link comes up the two documents are reconciled — the cloud
wins on desired, the local copy on reported, one-way directions copy one
way — and versions move only as much as the changes need.

Jobs: a job whose document is a group document is deployed like `sedgectl
deploy` and reported IN_PROGRESS, then SUCCEEDED with the version, or
FAILED with a reason, leaving the running group untouched.

Barriers instead of sleeps: `from_cloud_barrier` sends a message from the
cloud through a cloud-sourced route to a local probe, so everything the
cloud sent the core before it has been handled; `to_cloud_barrier` sends a
message from a thing through a cloud route to the shadow fake, so
everything the core sent the cloud before it has arrived.
"""

import json

import pytest

import groups_helpers

pytest.register_assert_rewrite("cloud")
from cloud import (SYNC_TOKEN, FakeJobs, FakeShadows, cloud_sedge,  # noqa: E402
                   deploy_ok, deployments, is_sync_token, sensor_group, spool, wait_spool)
from conftest import TIMEOUT, wait_for  # noqa: E402

pytest_plugins = ("cloud",)  # the make_cloud and cloud fixtures

CORE = "gw-core"


def local_get(s, thing, name=None):
    args = ["shadow", "get", thing] + (["--name", name] if name else [])
    r = s.ctl(*args)
    if r.returncode != 0:
        assert "404" in r.stderr, r.stderr
        return None
    return json.loads(r.stdout)


def local_update(s, thing, name, doc):
    args = ["shadow", "update", thing] + (["--name", name] if name else []) + [json.dumps(doc)]
    r = s.ctl(*args)
    assert r.returncode == 0, "sedgectl shadow update: %s%s" % (r.stdout, r.stderr)
    return json.loads(r.stdout)


def local_delete(s, thing, name=None):
    r = s.ctl(*(["shadow", "delete", thing] + (["--name", name] if name else [])))
    assert r.returncode == 0, r.stderr


def state(doc):
    """desired and reported of a document (None: no document)."""
    if doc is None:
        return None
    st = doc.get("state", {})
    return {k: st[k] for k in ("desired", "reported") if k in st}


def wait_local(s, thing, name, predicate, what="the local shadow", timeout=TIMEOUT):
    last = {}

    def check():
        last["d"] = local_get(s, thing, name)
        return predicate(last["d"])
    try:
        wait_for(check, timeout, interval=0.1, what=what)
    except AssertionError as e:
        raise AssertionError("%s; local document: %r" % (e, last.get("d"))) from None
    return last["d"]


def sync_group(direction=None, names=("cfg",), classic=True):
    entry = {"thing": "lamp", "names": list(names), "classic": classic}
    if direction:
        entry["direction"] = direction
    return {"group": "synced", "things": [{"name": "lamp"}, {"name": "probe"}],
            "routes": [{"source": "cloud", "filter": "down-barrier/#", "target": "thing:probe"},
                       {"source": "thing:probe", "filter": "up-barrier/#", "target": "cloud"},
                       {"source": "thing:lamp", "filter": "$aws/things/lamp/shadow/#",
                        "target": "shadow"}],
            "shadows": {"sync": [entry]}}


class Synced:
    """A core syncing lamp's classic shadow and its shadow "cfg" with the
    fake AWS shadow service, plus the barriers."""

    def __init__(self, make_sedge, cloud, direction=None, **cloud_kw):
        self.cloud = cloud
        self.shadows = FakeShadows(cloud, extra_filters=["up-barrier/#"])
        self.app = cloud.client("cloud-app")
        self.s = cloud_sedge(make_sedge, cloud, thing_name=CORE, **cloud_kw)
        wait_spool(self.s, lambda st: st["state"] == "connected")
        deploy_ok(self.s, sync_group(direction))
        self.probe = self.s.client("probe")
        self.probe.subscribe("down-barrier/#", qos=1)
        self.n = 0
        self.wait_reconciled(0)

    def sync_gets(self, name="cfg"):
        return len(self.shadows.requests_for("lamp", name, "get", token=SYNC_TOKEN))

    def sync_updates(self, name="cfg"):
        return [r[3] for r in self.shadows.requests_for("lamp", name, "update",
                                                        token=SYNC_TOKEN)]

    def wait_reconciled(self, gets_before):
        """The core asked the cloud for both documents again and has
        handled the answers."""
        for name in ("cfg", ""):
            wait_for(lambda: self.sync_gets(name) > gets_before, what="a reconciling GET of "
                     "lamp's %s shadow" % (name or "classic"))
        self.from_cloud_barrier()

    def from_cloud_barrier(self):
        self.shadows.client.flush()
        self.n += 1
        mark = b"%d" % self.n
        self.app.publish("down-barrier/x", mark, qos=1)
        while True:
            m = self.probe.get(timeout=TIMEOUT)
            if m.payload == mark:
                return

    def to_cloud_barrier(self):
        self.n += 1
        mark = b"%d" % self.n
        self.probe.publish("up-barrier/x", mark, qos=1)
        wait_for(lambda: ("up-barrier/x", mark) in self.shadows.others,
                 what="the up barrier at the cloud")


@pytest.fixture
def synced(make_sedge, cloud):
    return Synced(make_sedge, cloud)



@pytest.mark.parametrize("name", ["cfg", None], ids=["named", "classic"])
def test_local_update_is_sent_to_the_cloud_shadow(synced, name):
    s, shadows = synced.s, synced.shadows
    key = name or ""
    local = local_update(s, "lamp", name, {"state": {"reported": {"on": True, "level": 3},
                                                     "desired": {"level": 4}}})
    assert local["version"] == 1
    doc = shadows.wait_doc("lamp", key, lambda d: d and state(d) == {
        "reported": {"on": True, "level": 3}, "desired": {"level": 4}})
    assert doc["version"] == 1
    synced.to_cloud_barrier()
    updates = synced.sync_updates(key)
    assert len(updates) == 1, updates
    assert is_sync_token(updates[0]["clientToken"]), updates[0]
    # Partial updates stay partial; null removes a key on both sides.
    local_update(s, "lamp", name, {"state": {"reported": {"level": None}}})
    shadows.wait_doc("lamp", key, lambda d: state(d) == {"reported": {"on": True},
                                                         "desired": {"level": 4}})
    assert shadows.doc("lamp", key)["version"] == 2


def test_cloud_update_is_applied_locally_and_not_sent_back(synced):
    s, shadows = synced.s, synced.shadows
    shadows.app_update("lamp", "cfg", {"desired": {"level": 7, "mode": "eco"}})
    doc = wait_local(s, "lamp", "cfg", lambda d: d and state(d).get("desired") == {
        "level": 7, "mode": "eco"})
    assert doc["version"] == 1
    synced.from_cloud_barrier()
    synced.to_cloud_barrier()
    assert synced.sync_updates() == [], "the cloud's change came back to it"
    assert shadows.doc("lamp", "cfg")["version"] == 1
    # A later local change still goes up, once.
    local_update(s, "lamp", "cfg", {"state": {"reported": {"level": 7}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d["state"].get("reported") == {"level": 7})
    synced.to_cloud_barrier()
    assert len(synced.sync_updates()) == 1, synced.sync_updates()
    assert shadows.doc("lamp", "cfg")["version"] == 2
    assert local_get(s, "lamp", "cfg")["version"] == 2


def test_device_and_cloud_application_meet_in_the_synced_shadow(synced):
    """The lamp speaks AWS's shadow protocol to the core over MQTT; a cloud
    application speaks it to the cloud."""
    s, shadows = synced.s, synced.shadows
    lamp = s.client("lamp")
    base = "$aws/things/lamp/shadow/name/cfg"
    lamp.subscribe(base + "/update/delta", qos=1)
    lamp.subscribe(base + "/update/accepted", qos=1)
    lamp.publish(base + "/update", json.dumps({"state": {"reported": {"power": "off"}},
                                               "clientToken": "lamp-1"}), qos=1)
    m = lamp.get()
    assert m.topic == base + "/update/accepted", m.topic
    shadows.wait_doc("lamp", "cfg", lambda d: d and d["state"].get("reported") == {
        "power": "off"})
    shadows.app_update("lamp", "cfg", {"desired": {"power": "on"}})
    got = lamp.get_until(base + "/update/delta")
    delta = json.loads(got[-1].payload)
    assert delta["state"] == {"power": "on"}, delta
    lamp.publish(base + "/update", json.dumps({"state": {"reported": {"power": "on"}}}), qos=1)
    remote = shadows.wait_doc("lamp", "cfg", lambda d: d["state"].get("reported") == {
        "power": "on"})
    assert state(remote) == {"desired": {"power": "on"}, "reported": {"power": "on"}}
    synced.to_cloud_barrier()
    assert remote["version"] == 3 == shadows.doc("lamp", "cfg")["version"]


def test_deletes_are_synchronised_both_ways(synced):
    s, shadows = synced.s, synced.shadows
    local_update(s, "lamp", "cfg", {"state": {"reported": {"on": True}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d is not None)
    local_delete(s, "lamp", "cfg")
    shadows.wait_doc("lamp", "cfg", lambda d: d is None, what="the cloud shadow deleted")
    shadows.app_update("lamp", "", {"desired": {"on": False}})
    wait_local(s, "lamp", None, lambda d: d is not None, what="the classic shadow made")
    shadows.app_delete("lamp", "")
    wait_local(s, "lamp", None, lambda d: d is None, what="the classic shadow deleted")



def test_reconcile_after_an_outage_cloud_wins_desired_device_wins_reported(synced):
    s, shadows, cloud = synced.s, synced.shadows, synced.cloud
    local_update(s, "lamp", "cfg", {"state": {"desired": {"level": 1, "mode": "a"},
                                              "reported": {"level": 1, "mode": "a"}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d and d["version"] == 1)
    gets = synced.sync_gets()
    cloud.stop()
    wait_spool(s, lambda st: st["state"] != "connected")
    # Both sides change while apart.
    local_update(s, "lamp", "cfg", {"state": {"desired": {"level": 2},
                                              "reported": {"level": 2}}})
    shadows.app_update("lamp", "cfg", {"desired": {"level": 3, "mode": "c"},
                                       "reported": {"level": 3}}, publish=False)
    assert local_get(s, "lamp", "cfg")["version"] == 2
    assert shadows.doc("lamp", "cfg")["version"] == 2
    cloud.start()
    synced.wait_reconciled(gets)
    want = {"desired": {"level": 3, "mode": "c"}, "reported": {"level": 2, "mode": "a"}}
    local = wait_local(s, "lamp", "cfg", lambda d: state(d) == want)
    remote = shadows.wait_doc("lamp", "cfg", lambda d: state(d) == want)
    synced.from_cloud_barrier()
    synced.to_cloud_barrier()
    # One update each way, no more.
    assert local_get(s, "lamp", "cfg")["version"] == 3, local
    assert shadows.doc("lamp", "cfg")["version"] == 3, remote
    assert len(synced.sync_updates()) == 2, synced.sync_updates()


def test_local_change_while_reconciling_is_neither_lost_nor_applied_twice(synced):
    """The link comes up, the core asks the cloud for its document, and a
    local change is made (and sent) before the cloud's answer, computed
    before the change reached it, comes back."""
    s, shadows, cloud = synced.s, synced.shadows, synced.cloud
    local_update(s, "lamp", "cfg", {"state": {"desired": {"level": 1},
                                              "reported": {"level": 1}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d and d["version"] == 1)
    gets = synced.sync_gets()
    shadows.hold_gets = True
    cloud.restart()
    for name in ("cfg", ""):
        wait_for(lambda: synced.sync_gets(name) > gets, what="the reconciling GETs")
    local_update(s, "lamp", "cfg", {"state": {"desired": {"level": 5},
                                              "reported": {"level": 5}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d["version"] == 2)
    shadows.release_gets()
    synced.from_cloud_barrier()
    synced.to_cloud_barrier()
    want = {"desired": {"level": 5}, "reported": {"level": 5}}
    local = local_get(s, "lamp", "cfg")
    remote = shadows.doc("lamp", "cfg")
    assert state(local) == want and state(remote) == want, (
        "local %r, cloud %r after the stale answer" % (state(local), state(remote)))
    assert (local["version"], remote["version"]) == (2, 2), (
        "versions local %d, cloud %d; updates sent to the cloud: %r"
        % (local["version"], remote["version"], synced.sync_updates()))


def test_cloud_clearing_desired_clears_it_locally(synced):
    s, shadows = synced.s, synced.shadows
    shadows.app_update("lamp", "cfg", {"desired": {"a": 1}, "reported": {"a": 0}})
    wait_local(s, "lamp", "cfg", lambda d: d and state(d) == {"desired": {"a": 1},
                                                              "reported": {"a": 0}})
    shadows.app_update("lamp", "cfg", {"desired": None})
    wait_local(s, "lamp", "cfg", lambda d: state(d) == {"reported": {"a": 0}},
               what="desired cleared locally")


def test_reconcile_with_nothing_changed_changes_nothing(synced):
    s, shadows, cloud = synced.s, synced.shadows, synced.cloud
    local_update(s, "lamp", "cfg", {"state": {"desired": {"x": 1}, "reported": {"x": 0}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d and d["version"] == 1)
    updates = len(synced.sync_updates())
    for _ in range(2):
        gets = synced.sync_gets()
        cloud.restart()
        synced.wait_reconciled(gets)
    synced.to_cloud_barrier()
    assert len(synced.sync_updates()) == updates, synced.sync_updates()
    assert local_get(s, "lamp", "cfg")["version"] == 1
    assert shadows.doc("lamp", "cfg")["version"] == 1


def test_shadow_made_in_the_cloud_while_the_core_was_stopped_arrives(synced):
    s, shadows = synced.s, synced.shadows
    gets = synced.sync_gets()
    s.stop()
    shadows.set_doc("lamp", "cfg", {"desired": {"color": "red"}, "reported": {"color": "blue"}},
                    version=5)
    s.start()
    synced.probe = s.client("probe")
    synced.probe.subscribe("down-barrier/#", qos=1)
    synced.wait_reconciled(gets)
    local = wait_local(s, "lamp", "cfg", lambda d: d is not None)
    assert state(local) == {"desired": {"color": "red"}, "reported": {"color": "blue"}}
    assert local["version"] == 1
    synced.to_cloud_barrier()
    # The cloud already had it all: nothing goes back.
    assert synced.sync_updates() == []
    assert shadows.doc("lamp", "cfg")["version"] == 5


def test_shadow_made_locally_while_the_cloud_was_away_is_created_there(synced):
    s, shadows, cloud = synced.s, synced.shadows, synced.cloud
    gets = synced.sync_gets()
    cloud.stop()
    wait_spool(s, lambda st: st["state"] != "connected")
    local_update(s, "lamp", "cfg", {"state": {"reported": {"temp": 21}}})
    cloud.start()
    synced.wait_reconciled(gets)
    remote = shadows.wait_doc("lamp", "cfg", lambda d: d is not None)
    assert state(remote) == {"reported": {"temp": 21}}
    synced.to_cloud_barrier()
    assert shadows.doc("lamp", "cfg")["version"] == 1
    assert local_get(s, "lamp", "cfg")["version"] == 1



def test_device_to_cloud_sends_up_and_ignores_the_cloud(make_sedge, cloud):
    sy = Synced(make_sedge, cloud, direction="device_to_cloud")
    s, shadows = sy.s, sy.shadows
    local_update(s, "lamp", "cfg", {"state": {"reported": {"on": True}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d and state(d) == {"reported": {"on": True}})
    shadows.app_update("lamp", "cfg", {"desired": {"on": False}})
    sy.from_cloud_barrier()
    assert state(local_get(s, "lamp", "cfg")) == {"reported": {"on": True}}
    # After an outage the cloud's copy becomes the local one.
    gets = sy.sync_gets()
    cloud.stop()
    wait_spool(s, lambda st: st["state"] != "connected")
    local_update(s, "lamp", "cfg", {"state": {"reported": {"level": 5}}})
    shadows.app_update("lamp", "cfg", {"desired": {"extra": 1}}, publish=False)
    cloud.start()
    sy.wait_reconciled(gets)
    want = {"reported": {"on": True, "level": 5}}
    shadows.wait_doc("lamp", "cfg", lambda d: state(d) == want)
    sy.to_cloud_barrier()
    assert state(local_get(s, "lamp", "cfg")) == want
    assert local_get(s, "lamp", "cfg")["version"] == 2


def test_cloud_to_device_applies_down_and_sends_nothing_up(make_sedge, cloud):
    sy = Synced(make_sedge, cloud, direction="cloud_to_device")
    s, shadows = sy.s, sy.shadows
    shadows.app_update("lamp", "cfg", {"desired": {"on": True}})
    wait_local(s, "lamp", "cfg", lambda d: d and state(d) == {"desired": {"on": True}})
    local_update(s, "lamp", "cfg", {"state": {"reported": {"on": True}}})
    sy.to_cloud_barrier()
    assert sy.sync_updates() == [], "a cloud_to_device shadow was sent to the cloud"
    assert state(shadows.doc("lamp", "cfg")) == {"desired": {"on": True}}
    # After an outage the local copy becomes the cloud's.
    gets = sy.sync_gets()
    cloud.stop()
    wait_spool(s, lambda st: st["state"] != "connected")
    local_update(s, "lamp", "cfg", {"state": {"reported": {"level": 9}}})
    shadows.app_update("lamp", "cfg", {"desired": {"level": 1}}, publish=False)
    cloud.start()
    sy.wait_reconciled(gets)
    want = state(shadows.doc("lamp", "cfg"))
    assert want == {"desired": {"on": True, "level": 1}}
    wait_local(s, "lamp", "cfg", lambda d: state(d) == want)
    sy.to_cloud_barrier()
    assert sy.sync_updates() == []


def test_sync_section_is_validated_at_deploy(make_sedge, cloud):
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE)
    doc = sync_group()
    doc["shadows"]["sync"][0]["direction"] = "sideways"
    path = s.root / "bad.json"
    path.write_text(json.dumps(doc))
    r = s.ctl("deploy", str(path))
    assert r.returncode != 0
    assert "direction" in r.stderr + r.stdout



def sync_status(s, name="cfg"):
    for sh in spool(s)["shadow_sync"]["shadows"]:
        if sh["thing"] == "lamp" and sh["name"] == name:
            return sh
    raise AssertionError("lamp's %r shadow is not synchronised: %r" % (name, spool(s)))


@pytest.mark.parametrize("direction", ["cloud_to_device", "between_device_and_cloud"])
@pytest.mark.parametrize("code", [429, 500])
def test_get_rejected_for_a_passing_reason_is_retried_not_taken_for_no_shadow(make_sedge, cloud,
                                                                              direction, code):
    """Only 404 means the cloud has no shadow. A throttled or failing GET
    taken for "no shadow" deletes the local copy (cloud_to_device) or
    overwrites the cloud's (both ways)."""
    sy = Synced(make_sedge, cloud, direction=direction)
    s, shadows = sy.s, sy.shadows
    cloud.stop()
    wait_spool(s, lambda st: st["state"] != "connected")
    local_update(s, "lamp", "cfg", {"state": {"desired": {"mode": "boost"},
                                              "reported": {"mode": "off"}}})
    shadows.set_doc("lamp", "cfg", {"desired": {"mode": "eco"}, "reported": {"mode": "on"}},
                    version=4)
    gets = sy.sync_gets()
    shadows.fail_next = [("lamp", "cfg", "get", code), ("lamp", "cfg", "get", code)]
    cloud.start()
    wait_for(lambda: sy.sync_gets() >= gets + 3, what="the GET retried after two failures")
    if direction == "cloud_to_device":
        want = {"desired": {"mode": "eco"}, "reported": {"mode": "on"}}
    else:  # the cloud wins desired, the device reported
        want = {"desired": {"mode": "eco"}, "reported": {"mode": "off"}}
    try:
        wait_local(s, "lamp", "cfg", lambda d: d is not None and state(d) == want,
                   what="the cloud's desired applied locally")
    except AssertionError as e:
        sync_log = [line for line in s.log().splitlines() if "shadow-sync" in line]
        raise AssertionError("%s; requests %r; sedged: %s" % (
            e, shadows.requests_for("lamp", "cfg"), "\n".join(sync_log[-20:]))) from None
    # The sync slowed down after the throttles: wait for its update.
    shadows.wait_doc("lamp", "cfg", lambda d: state(d) == want)
    st = sync_status(s)
    assert st["throttled"] >= 2, st
    assert s.wait_log(r"answered %d; reconciling again" % code)


def held_gets(shadows, name="cfg"):
    with shadows.mutex:
        return len([h for h in shadows.held if h[0] == "lamp" and h[1] == name])


def test_answer_delivered_again_after_a_reconnect_is_not_taken_for_the_new_one(make_sedge,
                                                                               cloud):
    """The cloud broker delivers a QoS 1 answer again when the core's PUBACK
    was lost with the link, as happens when the link drops just after the
    answer came. Here the answer is the 404 to the GET before an outage;
    after it the cloud has a document. Taken for the answer to the GET
    after the reconnect, it would say the cloud has no shadow, and the
    core's desired would overwrite the cloud's."""
    sy = Synced(make_sedge, cloud)
    s, shadows = sy.s, sy.shadows
    first = shadows.requests_for("lamp", "cfg", "get", token=SYNC_TOKEN)[0][3]
    assert shadows.doc("lamp", "cfg") is None  # so the fake answered it 404
    cloud.stop()
    wait_spool(s, lambda st: st["state"] != "connected")
    local_update(s, "lamp", "cfg", {"state": {"desired": {"mode": "boost"},
                                              "reported": {"mode": "off"}}})
    shadows.set_doc("lamp", "cfg", {"desired": {"mode": "eco"}, "reported": {"mode": "on"}},
                    version=4)
    shadows.hold_gets = True
    cloud.start()
    wait_for(lambda: held_gets(shadows) == 1, what="the GET after the reconnect")
    # The old answer comes again, before the answer to the new GET.
    sy.app.wait_connected()
    sy.app.publish(shadows.base("lamp", "cfg") + "/get/rejected", {
        "code": 404, "message": "No shadow exists with name: 'cfg'", "timestamp": 1,
        "clientToken": first["clientToken"]})
    shadows.release_gets()
    want = {"desired": {"mode": "eco"}, "reported": {"mode": "off"}}
    wait_local(s, "lamp", "cfg", lambda d: d is not None and state(d) == want,
               what="the cloud's desired applied locally")
    shadows.wait_doc("lamp", "cfg", lambda d: state(d) == want)
    sy.to_cloud_barrier()
    updates = sy.sync_updates()
    assert [u["state"] for u in updates] == [{"reported": {"mode": "off"}}], updates
    assert updates[0]["version"] == 4, updates
    assert shadows.doc("lamp", "cfg")["version"] == 5


def test_late_answer_to_a_get_given_up_is_not_taken_for_the_next(make_sedge, cloud):
    """The cloud answers a GET after the core stopped waiting for it
    (ack_timeout_ms) and asked again, and the document changed in between.
    Taken for the answer to the second GET, the first would bring the old
    desired down, and the answer to the second would then be ignored: the
    two copies would differ for good."""
    sy = Synced(make_sedge, cloud, limits={"ack_timeout_ms": 1500})
    s, shadows = sy.s, sy.shadows
    cloud.stop()
    wait_spool(s, lambda st: st["state"] != "connected")
    shadows.set_doc("lamp", "cfg", {"desired": {"mode": "old"}}, version=1)
    shadows.hold_gets = True
    cloud.start()
    wait_for(lambda: held_gets(shadows) == 1, what="the first GET after the reconnect")
    shadows.set_doc("lamp", "cfg", {"desired": {"mode": "new"}}, version=2)
    wait_for(lambda: held_gets(shadows) == 2, what="the GET again after no answer")
    shadows.release_gets()  # both answers, the late one first
    want = {"desired": {"mode": "new"}}
    wait_local(s, "lamp", "cfg", lambda d: d is not None and state(d) == want,
               what="the cloud's current desired applied locally")
    sy.from_cloud_barrier()
    assert state(local_get(s, "lamp", "cfg")) == want
    assert local_get(s, "lamp", "cfg")["version"] == 1
    assert s.wait_log(r"cfg: no answer from the cloud; reconciling again")


def test_concurrent_cloud_edit_is_detected_by_version_and_reconciled(synced):
    """A cloud application changes the shadow just before the core's update
    arrives, and its notification is lost. Without a version in the
    update the core's change lands on top and the core never learns of the
    other: the copies differ for good."""
    s, shadows = synced.s, synced.shadows
    local_update(s, "lamp", "cfg", {"state": {"reported": {"level": 1}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d and d["version"] == 1)
    synced.to_cloud_barrier()

    def concurrent_edit(thing, name, req):
        shadows.app_update("lamp", "cfg", {"desired": {"level": 9}}, publish=False)
    shadows.before_update = concurrent_edit
    local_update(s, "lamp", "cfg", {"state": {"reported": {"level": 2}}})
    want = {"desired": {"level": 9}, "reported": {"level": 2}}
    wait_local(s, "lamp", "cfg", lambda d: state(d) == want, what="the cloud's edit locally")
    shadows.wait_doc("lamp", "cfg", lambda d: state(d) == want, what="the device's edit remotely")
    assert ("lamp", "cfg", "update", 409) not in shadows.rejections  # the fake's own 409s
    conflicts = [r for r in synced.sync_updates() if "version" in r]
    assert conflicts, "updates without a version: %r" % synced.sync_updates()
    assert sync_status(s)["conflicts"] == 1, sync_status(s)
    assert s.wait_log(r"changed meanwhile \(409 on update\)")


def test_second_update_sent_before_the_first_is_answered_carries_a_version(synced):
    """The shadow does not exist in the cloud yet: the core's first update
    creates it, and a second is sent before the first one's answer. A
    cloud application's edit between the two must still be a 409: sent
    without a version, the second update lands on top and the edit is
    never learnt."""
    s, shadows = synced.s, synced.shadows
    assert shadows.doc("lamp", "cfg") is None

    def concurrent_edit(thing, name, req):
        shadows.app_update("lamp", "cfg", {"desired": {"level": 9}}, publish=False)

    def second_update_before_the_answer(thing, name, req):
        # The fake answers nothing until this returns: the core has
        # the first update unanswered when it sends the second.
        local_update(s, "lamp", "cfg", {"state": {"reported": {"level": 2}}})
        wait_for(lambda: spool(s)["shadow_sync"]["inflight"] == 2,
                 what="both updates sent")
        shadows.before_update = concurrent_edit
    shadows.before_update = second_update_before_the_answer
    local_update(s, "lamp", "cfg", {"state": {"reported": {"level": 1}}})
    want = {"desired": {"level": 9}, "reported": {"level": 2}}
    wait_local(s, "lamp", "cfg", lambda d: state(d) == want, what="the cloud's edit locally")
    shadows.wait_doc("lamp", "cfg", lambda d: state(d) == want, what="the device's edit remotely")
    versions = [r.get("version") for r in synced.sync_updates()]
    assert versions[:2] == [None, 1], synced.sync_updates()
    assert sync_status(s)["conflicts"] == 1, sync_status(s)


def test_update_the_cloud_rejects_for_good_is_logged_and_not_retried(synced):
    s, shadows = synced.s, synced.shadows
    shadows.fail_next = [("lamp", "cfg", "update", 400)]
    local_update(s, "lamp", "cfg", {"state": {"reported": {"too": "odd"}}})
    line = s.wait_log(r"rejected the update: 400")
    assert "cfg" in line, line
    synced.to_cloud_barrier()
    assert len(synced.sync_updates()) == 1, synced.sync_updates()
    assert sync_status(s)["rejected"] == 1
    # The next change goes through as usual.
    local_update(s, "lamp", "cfg", {"state": {"reported": {"fine": True}}})
    shadows.wait_doc("lamp", "cfg", lambda d: d and d["state"].get("reported", {}).get("fine"))


def many_shadows_group(n):
    doc = sync_group(names=["s%02d" % i for i in range(n)], classic=False)
    return doc


def test_shadow_requests_unanswered_at_once_stay_within_the_limit(make_sedge, cloud):
    """AWS IoT Core refuses an 11th unanswered shadow request on a
    connection with 429: 15 shadows reconciling at once must wait."""
    shadows = FakeShadows(cloud)
    shadows.hold_gets = True
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE)
    wait_spool(s, lambda st: st["state"] == "connected")
    deploy_ok(s, many_shadows_group(15))
    wait_for(lambda: len(shadows.held) >= 10, what="10 GETs at the cloud")
    st = wait_spool(s, lambda st: st["shadow_sync"]["inflight"] == 10 and
                    st["shadow_sync"]["queued"] == 5, what="5 GETs queued behind 10")
    assert len(shadows.held) == 10, len(shadows.held)
    shadows.release_gets()
    wait_for(lambda: len(shadows.requests) >= 15, what="the other 5 GETs")
    wait_spool(s, lambda st: st["shadow_sync"]["inflight"] == 0 and
               st["shadow_sync"]["queued"] == 0, what="every GET answered")
    assert not shadows.rejections, shadows.rejections
    assert st["shadow_sync"]["queued"] == 5


def test_shadow_requests_are_paced_per_thing(make_sedge, cloud):
    shadows = FakeShadows(cloud)
    shadows.rate_per_thing = 6
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE, profile="aws-iot",
                    limits={"publishes_per_s": 0, "bytes_per_s": 0, "shadow_requests_per_s": 4})
    wait_spool(s, lambda st: st["state"] == "connected")
    for i in range(12):
        shadows.set_doc("lamp", "s%02d" % i, {"desired": {"n": i}}, version=1)
    deploy_ok(s, many_shadows_group(12))
    for i in range(12):
        wait_local(s, "lamp", "s%02d" % i, lambda d: d is not None, timeout=TIMEOUT * 2,
                   what="shadow s%02d reconciled" % i)
    assert not shadows.rejections, "the cloud throttled: %r" % shadows.rejections[:5]



def group_v(n, route_filter="sensors/#"):
    doc = sensor_group()
    doc["group"] = "from-job"
    doc["routes"][0]["filter"] = route_filter
    doc["things"].append({"name": "v%d" % n})
    return doc


@pytest.fixture
def jobs_core(make_sedge, cloud):
    jobs = FakeJobs(cloud)
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE)
    wait_spool(s, lambda st: st["state"] == "connected")
    wait_for(lambda: (CORE, "$next") in jobs.gets, what="the core to ask for its next job")
    return s, jobs


def active_version(s):
    return groups_helpers.active_version(s)


def statuses(jobs, job_id):
    return [u.get("status") for u in jobs.updates_for(job_id)]


def test_job_with_a_group_document_is_deployed_and_reported(jobs_core):
    s, jobs = jobs_core
    deploy_ok(s, sensor_group())
    assert active_version(s) == 1
    jobs.add_job(CORE, "job-1", group_v(2))
    e = jobs.wait_status(CORE, "job-1", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", (e, jobs.updates_for("job-1"))
    assert statuses(jobs, "job-1") == ["IN_PROGRESS", "SUCCEEDED"]
    assert e["statusDetails"] == {"version": "2"}
    assert active_version(s) == 2
    st = s.status()
    assert st["group"]["name"] == "from-job" and st["group"]["version"] == 2
    assert st["group"]["things"] == 2


def test_job_deploying_a_group_with_synced_shadows_starts_the_sync(make_sedge, cloud):
    jobs = FakeJobs(cloud)
    shadows = FakeShadows(cloud)
    shadows.set_doc("lamp", "cfg", {"desired": {"mode": "night"}}, version=3)
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE)
    wait_for(lambda: (CORE, "$next") in jobs.gets, what="the core to ask for its next job")
    assert local_get(s, "lamp", "cfg") is None
    jobs.add_job(CORE, "job-sync", sync_group(names=("cfg",), classic=False))
    e = jobs.wait_status(CORE, "job-sync", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-sync")
    local = wait_local(s, "lamp", "cfg", lambda d: d is not None)
    assert state(local) == {"desired": {"mode": "night"}}


def test_job_queued_while_the_core_was_down_runs_on_connect(make_sedge, cloud):
    jobs = FakeJobs(cloud)
    jobs.add_job(CORE, "job-early", group_v(1))  # nobody listens yet
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE)
    e = jobs.wait_status(CORE, "job-early", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-early")
    assert (CORE, "$next") in jobs.gets
    assert active_version(s) == 1


def test_job_notified_without_its_document_is_fetched(make_sedge, cloud):
    jobs = FakeJobs(cloud, notify_with_document=False)
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE)
    wait_for(lambda: (CORE, "$next") in jobs.gets, what="the core to ask for its next job")
    jobs.add_job(CORE, "job-doc", group_v(1))
    e = jobs.wait_status(CORE, "job-doc", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-doc")
    assert (CORE, "job-doc") in jobs.gets
    assert active_version(s) == 1


@pytest.mark.parametrize("document", [
    {"group": "broken", "routes": "not a list"},
    {"group": "broken", "things": [{"name": "a"}],
     "routes": [{"source": "thing:a", "filter": "x/#", "target": "nowhere:else"}]},
    ["not", "an", "object"],
    "a string",
], ids=["routes-not-a-list", "bad-target", "array", "string"])
def test_malformed_job_document_fails_the_job_and_keeps_the_group(jobs_core, cloud, document):
    s, jobs = jobs_core
    obs = cloud.client("observer", filters=["sensors/#"])
    deploy_ok(s, sensor_group())
    before = {"active": active_version(s)}
    jobs.add_job(CORE, "job-bad", document)
    e = jobs.wait_status(CORE, "job-bad", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "FAILED", jobs.updates_for("job-bad")
    assert statuses(jobs, "job-bad")[-1] == "FAILED"
    assert "IN_PROGRESS" not in statuses(jobs, "job-bad")[1:], statuses(jobs, "job-bad")
    reason = e["statusDetails"]["reason"]
    assert isinstance(reason, str) and reason.strip(), e
    assert active_version(s) == before["active"] == 1
    assert s.status()["group"]["version"] == 1
    # The running group still routes.
    c = s.raw(version=5)
    c.connect("s1")
    assert c.publish("sensors/still", b"0", qos=1).reason == 0
    obs.wait_count(1, lambda m: m[0] == "sensors/still")


def test_jobs_run_one_after_another(jobs_core):
    s, jobs = jobs_core
    jobs.add_job(CORE, "job-a", group_v(1))
    jobs.add_job(CORE, "job-b", group_v(2, route_filter="sensors/b/#"))
    jobs.wait_status(CORE, "job-b", ("SUCCEEDED", "FAILED"))
    assert statuses(jobs, "job-a") == ["IN_PROGRESS", "SUCCEEDED"]
    assert statuses(jobs, "job-b") == ["IN_PROGRESS", "SUCCEEDED"]
    assert jobs.execution(CORE, "job-a")["statusDetails"] == {"version": "1"}
    assert jobs.execution(CORE, "job-b")["statusDetails"] == {"version": "2"}
    assert active_version(s) == 2


def test_job_repeating_the_active_group_succeeds_with_its_version(jobs_core):
    s, jobs = jobs_core
    jobs.add_job(CORE, "job-1", group_v(1))
    jobs.wait_status(CORE, "job-1", "SUCCEEDED")
    jobs.add_job(CORE, "job-again", group_v(1))
    e = jobs.wait_status(CORE, "job-again", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-again")
    active = active_version(s)
    assert e["statusDetails"] == {"version": str(active)}, e


def test_core_asks_for_its_next_job_after_every_reconnect(jobs_core, cloud):
    s, jobs = jobs_core
    asked = jobs.gets.count((CORE, "$next"))
    cloud.restart()
    wait_for(lambda: jobs.gets.count((CORE, "$next")) > asked,
             what="the core to ask $next/get again")


def test_job_offered_again_while_it_deploys_is_run_once(jobs_core):
    """After a reconnect the cloud names the job in hand twice, in
    notify-next and in the answer to $next/get, each with its document.
    Run twice, the second run fails as "another deployment is in
    progress" and the job ends FAILED though its group went live."""
    s, jobs = jobs_core
    jobs.add_job(CORE, "job-twice", group_v(1))
    for _ in range(3):
        jobs.notify_next(CORE)
    e = jobs.wait_status(CORE, "job-twice", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-twice")
    assert statuses(jobs, "job-twice") == ["IN_PROGRESS", "SUCCEEDED"]


def test_core_subscribes_to_its_jobs_again_when_the_cloud_forgot_its_session(jobs_core, cloud):
    s, jobs = jobs_core
    reconnects = spool(s)["reconnects"]
    cloud.restart(forget_sessions=True)
    jobs.client.wait_connected()
    wait_spool(s, lambda st: st["state"] == "connected" and st["reconnects"] > reconnects)
    jobs.add_job(CORE, "job-after", group_v(1))
    e = jobs.wait_status(CORE, "job-after", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-after")



def pending_jobs(s):
    return spool(s).get("jobs", {}).get("pending", [])


def test_job_status_lost_on_its_way_is_sent_again_until_accepted(make_sedge, cloud):
    jobs = FakeJobs(cloud)
    lost_once = []

    def lose(job_id, req):
        if req.get("status") == "SUCCEEDED" and not lost_once:
            lost_once.append(req)
            return True
        return False
    jobs.lose = lose
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE, limits={"ack_timeout_ms": 500})
    wait_for(lambda: (CORE, "$next") in jobs.gets, what="the core to ask for its next job")
    jobs.add_job(CORE, "job-lost", group_v(1))
    e = jobs.wait_status(CORE, "job-lost", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-lost")
    assert lost_once, "the fake lost nothing: the test is void"
    wait_for(lambda: pending_jobs(s) == [], what="no job update left waiting")


def succeeded_lost(make_sedge, cloud, job_id):
    """A core that ran job_id and whose SUCCEEDED the cloud never got; the
    answer timeout is long, so only a reconnect or a restart can send it
    again. Returns (sedged, jobs), the fake losing nothing more."""
    jobs = FakeJobs(cloud)
    jobs.lose = lambda _job, req: req.get("status") == "SUCCEEDED"
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE, limits={"ack_timeout_ms": 600000})
    wait_for(lambda: (CORE, "$next") in jobs.gets, what="the core to ask for its next job")
    jobs.add_job(CORE, job_id, group_v(1))
    wait_for(lambda: jobs.lost, what="the SUCCEEDED update lost")
    return s, jobs


def test_job_status_made_while_the_link_is_down_is_sent_when_it_is_back(make_sedge, cloud):
    """SUCCEEDED published while the link is going down: the cloud never
    got it. The core must send it again on the next link."""
    s, jobs = succeeded_lost(make_sedge, cloud, "job-down")
    assert jobs.execution(CORE, "job-down")["status"] == "IN_PROGRESS"
    assert [p["status"] for p in pending_jobs(s)] == ["SUCCEEDED"], pending_jobs(s)
    jobs.lose = None
    cloud.restart()
    e = jobs.wait_status(CORE, "job-down", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED" and e["statusDetails"] == {"version": "1"}, e
    wait_for(lambda: pending_jobs(s) == [], what="no job update left waiting")
    assert active_version(s) == 1


def test_job_status_survives_kill_9_and_the_job_is_not_run_again(make_sedge, cloud):
    """The cloud never answered SUCCEEDED; meanwhile the operator deployed a
    newer group; sedged is killed. After the restart the core must report
    SUCCEEDED from its store — not deploy the job's document again over the
    newer group, which is what the cloud, still showing the job
    IN_PROGRESS, offers it."""
    s, jobs = succeeded_lost(make_sedge, cloud, "job-k9")
    assert active_version(s) == 1
    deploy_ok(s, group_v(7))
    assert active_version(s) == 2
    s.kill9()
    jobs.lose = None
    mark = s.log_mark()
    s.start()
    s.wait_log(r"job-k9: SUCCEEDED waits for the cloud from before the restart", since=mark)
    e = jobs.wait_status(CORE, "job-k9", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED" and e["statusDetails"] == {"version": "1"}, e
    wait_for(lambda: pending_jobs(s) == [], what="no job update left waiting")
    assert active_version(s) == 2, deployments(s)
    assert statuses(jobs, "job-k9").count("IN_PROGRESS") == 1, statuses(jobs, "job-k9")


def test_job_status_throttled_by_the_cloud_is_retried_and_a_final_rejection_is_not(make_sedge,
                                                                                   cloud):
    jobs = FakeJobs(cloud)
    s = cloud_sedge(make_sedge, cloud, thing_name=CORE, limits={"ack_timeout_ms": 500})
    wait_for(lambda: (CORE, "$next") in jobs.gets, what="the core to ask for its next job")
    jobs.throttle_updates = 2  # IN_PROGRESS and the first SUCCEEDED
    jobs.add_job(CORE, "job-t", group_v(1))
    e = jobs.wait_status(CORE, "job-t", ("SUCCEEDED", "FAILED"))
    assert e["status"] == "SUCCEEDED", jobs.updates_for("job-t")
    wait_for(lambda: pending_jobs(s) == [], what="no job update left waiting")
    # A job the cloud cancelled: the rejection is final, nothing waits.
    mark = s.log_mark()
    jobs._publish(CORE, "notify-next", {"execution": {
        "jobId": "job-gone", "thingName": CORE, "status": "QUEUED", "versionNumber": 1,
        "executionNumber": 1, "jobDocument": group_v(2)}})
    s.wait_log(r"job-gone: the cloud rejected \w+: ResourceNotFound", since=mark)
    wait_for(lambda: pending_jobs(s) == [], what="the rejected update given up")
