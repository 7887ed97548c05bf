"""Device shadows as AWS IoT Device Shadow: classic and named shadows over
MQTT ($aws/things/THING/shadow[/name/SHADOW]/update|get|delete and their
/accepted, /rejected, update/delta, update/documents), the document
semantics (merge, delta, metadata, versions, optimistic locking), the
errors on /rejected, durability of what was accepted, and sedgectl shadow.
"""

import json
import time

import pytest

import mqtt_raw as raw
from groups_helpers import ShadowDevice, deploy_ok, group_doc, shadow_topic

VERSIONS = [4, 5]


def leaf_timestamps(meta):
    """Every {"timestamp": T} leaf of a metadata tree, as (path, T)."""
    out = []

    def walk(node, path):
        if isinstance(node, dict) and set(node) == {"timestamp"}:
            out.append((path, node["timestamp"]))
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))
    walk(meta, ())
    return out


def assert_now(ts):
    assert isinstance(ts, int) and abs(ts - time.time()) < 300, ts


def ctl_json(sedge, *args):
    r = sedge.ctl("shadow", *args)
    assert r.returncode == 0, "sedgectl shadow %s: %s" % (" ".join(map(str, args)), r.stderr)
    return json.loads(r.stdout)



@pytest.mark.parametrize("version", VERSIONS)
def test_update_then_get_returns_state_metadata_version_and_token(sedge, version):
    dev = ShadowDevice(sedge, "lamp", version=version)
    reply = dev.accepted("update", {"state": {"desired": {"color": "red"},
                                              "reported": {"color": "blue"}},
                                    "clientToken": "tok-1"})
    assert reply["clientToken"] == "tok-1"
    assert reply["state"] == {"desired": {"color": "red"}, "reported": {"color": "blue"}}
    assert reply["version"] == 1
    assert_now(reply["timestamp"])
    assert sorted(p for p, _ in leaf_timestamps(reply["metadata"])) == [
        ("desired", "color"), ("reported", "color")]
    got = dev.accepted("get", {"clientToken": "tok-2"})
    assert got["clientToken"] == "tok-2"
    assert got["state"] == {"desired": {"color": "red"}, "reported": {"color": "blue"},
                            "delta": {"color": "red"}}
    assert got["version"] == 1
    assert sorted(p for p, _ in leaf_timestamps(got["metadata"])) == [
        ("desired", "color"), ("reported", "color")]
    for _, ts in leaf_timestamps(got["metadata"]):
        assert_now(ts)


def test_merge_nested_objects_null_deletes_and_arrays_are_replaced(sedge):
    dev = ShadowDevice(sedge, "merge")
    dev.accepted("update", {"state": {"reported": {
        "a": 1, "b": {"x": 1, "y": {"deep": True}}, "list": [1, 2, 3], "gone": "soon"}}})
    dev.accepted("update", {"state": {"reported": {
        "b": {"y": {"more": 2}, "z": 3}, "list": [9], "gone": None, "c": "new"}}})
    got = dev.accepted("get")
    assert got["state"]["reported"] == {
        "a": 1, "b": {"x": 1, "y": {"deep": True, "more": 2}, "z": 3}, "list": [9], "c": "new"}
    assert "desired" not in got["state"] and "delta" not in got["state"]
    paths = [p for p, _ in leaf_timestamps(got["metadata"])]
    assert ("reported", "gone") not in paths
    assert ("reported", "b", "y", "deep") in paths and ("reported", "b", "z") in paths
    assert got["version"] == 2
    # null on a whole section deletes it
    dev.accepted("update", {"state": {"desired": {"k": 1}}})
    dev.accepted("update", {"state": {"reported": None}})
    got = dev.accepted("get")
    assert got["state"] == {"desired": {"k": 1}, "delta": {"k": 1}}
    assert "reported" not in got["metadata"]


def test_state_null_clears_the_document(sedge):
    dev = ShadowDevice(sedge, "clear")
    dev.accepted("update", {"state": {"desired": {"a": 1}, "reported": {"b": 2}}})
    reply = dev.accepted("update", {"state": None})
    assert reply["version"] == 2
    got = dev.accepted("get")
    assert got["version"] == 2
    assert not got.get("state") or got["state"] in ({}, {"desired": {}, "reported": {}}), got
    assert not leaf_timestamps(got.get("metadata", {})), got


@pytest.mark.parametrize("version", VERSIONS)
def test_version_increments_on_every_accepted_update(sedge, version):
    dev = ShadowDevice(sedge, "counter", version=version)
    versions = [dev.accepted("update", {"state": {"reported": {"n": i}}})["version"]
                for i in range(5)]
    assert versions == [1, 2, 3, 4, 5]
    dev.rejected("update", {"state": "not an object"})
    assert dev.accepted("get")["version"] == 5
    # an update that changes nothing is still an accepted update
    assert dev.accepted("update", {"state": {"reported": {"n": 4}}})["version"] == 6



def test_delta_has_the_desired_keys_that_differ_from_reported_recursively(sedge):
    dev = ShadowDevice(sedge, "thermo")
    dev.accepted("update", {"state": {"reported": {
        "mode": "heat", "temp": 20, "fan": {"speed": 1, "swing": False}, "only_reported": 1}}})
    reply = dev.accepted("update", {"state": {"desired": {
        "mode": "heat", "temp": 22, "fan": {"speed": 1, "swing": True}, "new": [1, 2]}},
        "clientToken": "delta-tok"})
    delta = dev.next_on("update/delta")
    assert delta["state"] == {"temp": 22, "fan": {"swing": True}, "new": [1, 2]}, delta
    assert delta["version"] == reply["version"] == 2
    assert_now(delta["timestamp"])
    assert set(delta["metadata"]) == {"temp", "fan", "new"}, delta["metadata"]
    assert [p for p, _ in leaf_timestamps(delta["metadata"]["fan"])] == [("swing",)]
    assert delta.get("clientToken") in (None, "delta-tok")
    got = dev.accepted("get")
    assert got["state"]["delta"] == delta["state"]


def test_delta_is_published_only_when_it_is_not_empty(sedge):
    dev = ShadowDevice(sedge, "quiet")
    dev.accepted("update", {"state": {"reported": {"on": True}}})         # v1: no desired
    dev.accepted("update", {"state": {"desired": {"on": True}}})          # v2: matches
    dev.accepted("update", {"state": {"reported": {"extra": 5}}})         # v3: still none
    dev.accepted("update", {"state": {"desired": {"on": False}}})         # v4: delta
    delta = dev.next_on("update/delta")
    assert (delta["version"], delta["state"]) == (4, {"on": False}), delta
    dev.accepted("update", {"state": {"reported": {"on": False}}})        # v5: resolved
    dev.accepted("update", {"state": {"desired": {"level": 3}}})          # v6: delta
    delta = dev.next_on("update/delta")
    assert (delta["version"], delta["state"]) == (6, {"level": 3}), delta
    assert dev.accepted("get")["state"]["delta"] == {"level": 3}


@pytest.mark.parametrize("version", VERSIONS)
def test_documents_carry_previous_and_current(sedge, version):
    dev = ShadowDevice(sedge, "docs", version=version)
    dev.accepted("update", {"state": {"desired": {"a": 1}}, "clientToken": "d1"})
    first = dev.next_on("update/documents")
    assert first["previous"] is None
    cur = first["current"]
    assert cur["state"] == {"desired": {"a": 1}} and cur["version"] == 1
    assert [p for p, _ in leaf_timestamps(cur["metadata"])] == [("desired", "a")]
    assert_now(first["timestamp"])
    assert first.get("clientToken") in (None, "d1")
    dev.accepted("update", {"state": {"reported": {"a": 1}, "desired": {"b": 2}}})
    second = dev.next_on("update/documents")
    assert second["previous"] == cur
    assert second["current"]["state"] == {"desired": {"a": 1, "b": 2}, "reported": {"a": 1}}
    assert second["current"]["version"] == 2



def test_update_with_the_current_version_is_accepted_and_a_stale_one_gets_409(sedge):
    dev = ShadowDevice(sedge, "locked")
    dev.accepted("update", {"state": {"reported": {"v": 1}}})
    ok = dev.accepted("update", {"state": {"reported": {"v": 2}}, "version": 1})
    assert ok["version"] == 2
    err = dev.rejected("update", {"state": {"reported": {"v": 3}}, "version": 1,
                                  "clientToken": "stale"})
    assert (err["code"], err["message"], err["clientToken"]) == (409, "Version conflict", "stale")
    assert_now(err["timestamp"])
    got = dev.accepted("get")
    assert (got["version"], got["state"]["reported"]) == (2, {"v": 2})


BAD_REQUESTS = {
    "invalid-json": (b'{"state": {"desired": ', 400),
    "not-an-object": (b'[1, 2]', 400),
    "state-string": ({"state": "on"}, 400),
    "state-array": ({"state": [1]}, 400),
    "desired-number": ({"state": {"desired": 5}}, 400),
    "too-deep": ({"state": {"desired": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {
        "h": 1}}}}}}}}}}, 400),
    "version-negative": ({"state": {"desired": {"a": 1}}, "version": -1}, 400),
    "version-string": ({"state": {"desired": {"a": 1}}, "version": "1"}, 400),
    "version-fraction": ({"state": {"desired": {"a": 1}}, "version": 1.5}, 400),
    "token-number": ({"state": {"desired": {"a": 1}}, "clientToken": 7}, 400),
    "token-too-long": ({"state": {"desired": {"a": 1}}, "clientToken": "t" * 65}, 400),
    "too-large": ({"state": {"desired": {"blob": "x" * 9000}}}, 413),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_update_is_rejected_with_its_code_and_changes_nothing(sedge, case):
    dev = ShadowDevice(sedge, "picky")
    dev.accepted("update", {"state": {"reported": {"keep": 1}}})
    payload, code = BAD_REQUESTS[case]
    # without a usable clientToken, the reply is the next one on the update topics
    plain_token = isinstance(payload, dict) and "clientToken" not in payload
    outcome, reply = dev.request("update", payload, token=plain_token)
    assert outcome == "rejected", reply
    assert reply["code"] == code, reply
    assert isinstance(reply["message"], str) and reply["message"], reply
    assert_now(reply["timestamp"])
    got = dev.accepted("get")
    assert (got["version"], got["state"]) == (1, {"reported": {"keep": 1}})


def test_client_token_is_echoed_in_rejections_and_at_the_limit_of_64(sedge):
    dev = ShadowDevice(sedge, "tokens")
    tok = "k" * 64
    assert dev.accepted("update", {"state": {"desired": {"a": 1}}, "clientToken": tok}
                        )["clientToken"] == tok
    err = dev.rejected("update", {"state": 3, "clientToken": "bad-state"})
    assert (err["code"], err["clientToken"]) == (400, "bad-state")
    deleted = dev.accepted("delete", {"clientToken": "del"})
    assert deleted["clientToken"] == "del"
    err = dev.rejected("get", {"clientToken": "after-delete"})
    assert (err["code"], err["clientToken"]) == (404, "after-delete")


def test_size_limit_counts_desired_and_reported_together(sedge):
    dev = ShadowDevice(sedge, "sized")
    dev.accepted("update", {"state": {"desired": {"d": "x" * 4000}}})
    dev.accepted("update", {"state": {"reported": {"r": "y" * 3000}}})
    err = dev.rejected("update", {"state": {"reported": {"r2": "z" * 2000}}})
    assert err["code"] == 413, err
    got = dev.accepted("get")
    assert got["version"] == 2 and "r2" not in got["state"]["reported"]


def test_configured_document_limit_raises_the_default(make_sedge):
    s = make_sedge(extra={"shadow": {"max_document_bytes": 20000}})
    dev = ShadowDevice(s, "roomy")
    dev.accepted("update", {"state": {"desired": {"blob": "x" * 15000}}})
    err = dev.rejected("update", {"state": {"reported": {"blob": "y" * 6000}}})
    assert err["code"] == 413, err


def test_document_limit_over_30720_is_refused_at_start(make_sedge):
    s = make_sedge(start=False, extra={"shadow": {"max_document_bytes": 30721}})
    with pytest.raises(RuntimeError) as e:
        s.start()
    assert "max_document_bytes" in str(e.value), e.value
    s.extra = {"shadow": {"max_document_bytes": 30720}}
    s.write_config()
    s.start()
    dev = ShadowDevice(s, "max")
    dev.accepted("update", {"state": {"desired": {"blob": "x" * 25000}}})



@pytest.mark.parametrize("version", VERSIONS)
def test_delete_then_get_is_404_with_the_thing_name(sedge, version):
    dev = ShadowDevice(sedge, "doomed", version=version)
    dev.accepted("update", {"state": {"reported": {"a": 1}}})
    dev.accepted("update", {"state": {"reported": {"a": 2}}})
    deleted = dev.accepted("delete")
    assert deleted["version"] == 2
    assert_now(deleted["timestamp"])
    err = dev.rejected("get", {"clientToken": "gone"})
    assert (err["code"], err["message"]) == (404, "No shadow exists with name: 'doomed'")
    err = dev.rejected("delete")
    assert err["code"] == 404


def test_shadow_recreated_after_delete_continues_its_version_numbers(sedge):
    dev = ShadowDevice(sedge, "phoenix")
    for i in range(3):
        dev.accepted("update", {"state": {"reported": {"i": i}}})
    dev.accepted("delete")
    reborn = dev.accepted("update", {"state": {"reported": {"back": True}}})
    assert reborn["version"] == 4, reborn
    got = dev.accepted("get")
    assert got["state"] == {"reported": {"back": True}} and got["version"] == 4


def test_version_continuity_after_delete_survives_a_restart(sedge):
    dev = ShadowDevice(sedge, "phoenix")
    for i in range(3):
        dev.accepted("update", {"state": {"reported": {"i": i}}})
    dev.accepted("delete")
    sedge.close_clients()
    sedge.restart()
    dev = ShadowDevice(sedge, "phoenix")
    assert dev.accepted("update", {"state": {"reported": {"again": 1}}})["version"] == 4


def test_get_of_a_shadow_that_never_existed_is_404(sedge):
    dev = ShadowDevice(sedge, "never")
    err = dev.rejected("get", {"clientToken": "nx"})
    assert (err["code"], err["message"], err["clientToken"]) == (
        404, "No shadow exists with name: 'never'", "nx")



@pytest.mark.parametrize("version", VERSIONS)
def test_named_shadows_are_separate_from_the_classic_one(sedge, version):
    classic = ShadowDevice(sedge, "robot", version=version)
    arm = ShadowDevice(sedge, "robot-arm", thing="robot", name="arm", version=version)
    classic.accepted("update", {"state": {"reported": {"classic": 1}}})
    reply = arm.accepted("update", {"state": {"desired": {"angle": 90}}})
    assert reply["version"] == 1
    delta = arm.next_on("update/delta")
    assert delta["state"] == {"angle": 90}
    assert arm.next_on("update/documents")["previous"] is None
    assert arm.accepted("get")["state"]["desired"] == {"angle": 90}
    assert classic.accepted("get")["state"] == {"reported": {"classic": 1}}
    ctl_json(sedge, "update", "robot", "--name", "arm", '{"state": {"reported": {"angle": 90}}}')
    got = arm.accepted("get")
    assert got["version"] == 2 and got["state"]["reported"] == {"angle": 90}
    assert ctl_json(sedge, "list", "robot") == ["arm"]
    arm.accepted("delete")
    err = arm.rejected("get")
    assert (err["code"], err["message"]) == (404, "No shadow exists with name: 'arm'")
    assert classic.accepted("get")["version"] == 1


def test_invalid_shadow_and_thing_names_get_no_shadow(sedge):
    dev = ShadowDevice(sedge, "namer")
    bad = [("namer", "bad.name"), ("namer", "n" * 65), ("t" * 129, None)]
    for thing, name in bad:
        dev.client.subscribe(shadow_topic(thing, "update/+", name), 1)
        dev.client.publish(shadow_topic(thing, "update", name),
                           json.dumps({"state": {"desired": {"a": 1}}}), qos=1)
    # the service answers in order: whatever it said to those came first
    dev.accepted("update", {"state": {"desired": {"marker": 1}}})
    leaked = [t for t, _ in dev.others if t.endswith("/accepted")]
    assert not leaked, leaked
    for thing, name in bad:
        args = ["get", thing] + (["--name", name] if name else [])
        r = sedge.ctl("shadow", *args)
        assert r.returncode == 1 and r.stderr.strip(), (args, r.stdout, r.stderr)
        args = ["update", thing] + (["--name", name] if name else []) + [
            '{"state": {"desired": {"a": 1}}}']
        r = sedge.ctl("shadow", *args)
        assert r.returncode == 1 and r.stderr.strip(), (args, r.stdout, r.stderr)
    assert ctl_json(sedge, "list", "namer") == []
    # the longest valid names work
    ctl_json(sedge, "update", "namer", "--name", "Ab0:_-" + "x" * 58,
             '{"state": {"desired": {"a": 1}}}')
    ctl_json(sedge, "update", "u" * 128, '{"state": {"desired": {"a": 1}}}')
    assert ctl_json(sedge, "list", "namer") == ["Ab0:_-" + "x" * 58]



@pytest.mark.parametrize("version", VERSIONS)
def test_accepted_update_survives_kill_9(sedge, version):
    dev = ShadowDevice(sedge, "durable", version=version)
    for i in range(3):
        reply = dev.accepted("update", {"state": {"reported": {"i": i}, "desired": {"x": i}}})
    named_reply = ctl_json(sedge, "update", "durable", "--name", "cfg",
                           '{"state": {"desired": {"mode": "eco"}}}')
    sedge.kill9()
    sedge.close_clients()
    sedge.start()
    got = ctl_json(sedge, "get", "durable")
    assert got["version"] == reply["version"] == 3
    assert got["state"]["reported"] == {"i": 2} and got["state"]["desired"] == {"x": 2}
    dev = ShadowDevice(sedge, "durable", version=version)
    assert dev.accepted("get")["version"] == 3
    got = ctl_json(sedge, "get", "durable", "--name", "cfg")
    assert got["version"] == named_reply["version"]
    assert got["state"]["desired"] == {"mode": "eco"}


@pytest.mark.parametrize("version", VERSIONS)
def test_device_reads_and_updates_its_shadow_after_a_restart(sedge, version):
    dev = ShadowDevice(sedge, "rebooted", version=version)
    dev.accepted("update", {"state": {"reported": {"up": 1}}})
    dev.accepted("update", {"state": {"reported": {"up": 2}}})
    sedge.close_clients()
    sedge.restart()
    dev = ShadowDevice(sedge, "rebooted", version=version)
    outcome, got = dev.request("get")  # the first request after the restart
    assert outcome == "accepted", got
    assert (got["version"], got["state"]) == (2, {"reported": {"up": 2}})
    assert dev.accepted("update", {"state": {"reported": {"up": 3}}})["version"] == 3


def test_accepted_delete_survives_kill_9(sedge):
    dev = ShadowDevice(sedge, "erased")
    dev.accepted("update", {"state": {"reported": {"a": 1}}})
    dev.accepted("delete")
    sedge.kill9()
    sedge.close_clients()
    sedge.start()
    r = sedge.ctl("shadow", "get", "erased")
    assert r.returncode == 1 and "404" in r.stderr, r



def test_sedgectl_shadow_update_get_list_delete(sedge, tmp_path):
    dev = ShadowDevice(sedge, "panel")
    doc = ctl_json(sedge, "update", "panel", '{"state": {"desired": {"brightness": 70}}}')
    assert doc["version"] == 1 and doc["state"] == {"desired": {"brightness": 70}}
    delta = dev.next_on("update/delta")  # a device hears about a change made by sedgectl
    assert delta["state"] == {"brightness": 70}
    f = tmp_path / "doc.json"
    f.write_text(json.dumps({"state": {"reported": {"brightness": 70}}}))
    assert ctl_json(sedge, "update", "panel", "@%s" % f)["version"] == 2
    got = ctl_json(sedge, "get", "panel")
    assert got["state"] == {"desired": {"brightness": 70}, "reported": {"brightness": 70}}
    assert ctl_json(sedge, "list", "panel") == []
    ctl_json(sedge, "update", "panel", "--name", "night", '{"state": {"desired": {"dim": 1}}}')
    ctl_json(sedge, "update", "panel", "--name", "day", '{"state": {"desired": {"dim": 0}}}')
    assert sorted(ctl_json(sedge, "list", "panel")) == ["day", "night"]
    assert dev.accepted("get")["version"] == 2  # what sedgectl wrote, devices read
    r = sedge.ctl("shadow", "delete", "panel", "--name", "night")
    assert r.returncode == 0, r.stderr
    assert ctl_json(sedge, "list", "panel") == ["day"]
    r = sedge.ctl("shadow", "delete", "panel")
    assert r.returncode == 0, r.stderr
    r = sedge.ctl("shadow", "get", "panel")
    assert r.returncode == 1
    assert "404 No shadow exists with name: 'panel'" in r.stderr, r.stderr
    assert not r.stdout.strip()


def test_sedgectl_shadow_errors_exit_1_with_code_and_message(sedge):
    ctl_json(sedge, "update", "cli", '{"state": {"reported": {"a": 1}}}')
    cases = [
        (["update", "cli", "{not json"], "400"),
        (["update", "cli", '{"state": 5}'], "400"),
        (["update", "cli", '{"state": {"reported": {"a": 2}}, "version": 7}'], "409"),
        (["update", "cli", json.dumps({"state": {"desired": {"b": "x" * 9000}}})], "413"),
        (["get", "cli", "--name", "missing"], "404"),
        (["delete", "nobody"], "404"),
    ]
    for args, code in cases:
        r = sedge.ctl("shadow", *args)
        assert r.returncode == 1, (args, r.stdout)
        assert code in r.stderr, (args, r.stderr)
    assert ctl_json(sedge, "get", "cli")["version"] == 1



@pytest.mark.parametrize("version", VERSIONS)
def test_without_a_group_anyone_may_use_any_shadow(sedge, version):
    other = ShadowDevice(sedge, "not-the-lamp", thing="lamp", version=version)
    assert other.accepted("update", {"state": {"desired": {"on": True}}})["version"] == 1
    assert ShadowDevice(sedge, "lamp").accepted("get")["state"]["desired"] == {"on": True}


@pytest.mark.parametrize("version", VERSIONS)
def test_with_a_group_a_thing_without_a_shadow_route_is_refused_and_gets_no_reply(sedge,
                                                                                   version):
    deploy_ok(sedge, group_doc("g", ["lamp", "switch"], [
        ("thing:lamp", "$aws/things/lamp/shadow/#", "shadow"),
        ("thing:switch", "switch/#", "thing:lamp"),
    ]))
    lamp = ShadowDevice(sedge, "lamp", version=version)
    lamp.accepted("update", {"state": {"reported": {"on": False}}})
    switch = sedge.raw(version=version)
    assert switch.connect("switch").reason == 0
    refused = raw.RC_NOT_AUTHORIZED if version == 5 else 0x80
    ack = switch.subscribe([("$aws/things/switch/shadow/+/+", 1),
                            ("$aws/things/lamp/shadow/+/+", 1)])
    assert ack.reasons == [refused, refused], ack
    for thing in ("switch", "lamp"):
        pid = switch.publish(shadow_topic(thing, "update"),
                             json.dumps({"state": {"desired": {"on": True}}}), qos=1,
                             wait=False)
        ack = switch.complete_publish(pid, 1)
        if version == 5:
            assert ack.reason == raw.RC_NOT_AUTHORIZED, ack
    switch.ping()  # 3.1.1: dropped, still connected
    got = lamp.accepted("get")
    assert got["version"] == 1 and "desired" not in got["state"], got
    # no reply went out for switch's update of lamp's shadow (lamp would see it)
    replies = [(t, d) for t, d in lamp.others
               if t.endswith(("/update/accepted", "/update/rejected", "/update/delta"))
               or (t.endswith("/update/documents") and d["current"]["version"] != 1)]
    assert not replies, replies
    r = sedge.ctl("shadow", "get", "switch")
    assert r.returncode == 1 and "404" in r.stderr, r


def test_with_any_thing_routed_to_shadows_each_thing_uses_only_its_own(sedge):
    """Issue 11 item 6: `thing:* -> $aws/things/+/shadow/# -> shadow` lets
    each thing use its own shadows, not another's (the publisher hears
    0x87 and the shadow is untouched); a route from a named thing may grant
    it another's."""
    deploy_ok(sedge, group_doc("g", ["lamp", "switch", "panel"], [
        ("thing:*", "$aws/things/+/shadow/#", "shadow"),
        ("thing:panel", "$aws/things/lamp/shadow/update", "shadow"),
    ]))
    lamp = ShadowDevice(sedge, "lamp")
    lamp.accepted("update", {"state": {"reported": {"on": False}}})
    switch = sedge.raw(version=5)
    assert switch.connect("switch").reason == 0
    for op, doc in (("update", {"state": {"desired": {"on": True}}}), ("delete", {})):
        ack = switch.publish(shadow_topic("lamp", op), json.dumps(doc), qos=1)
        assert ack.reason == raw.RC_NOT_AUTHORIZED, (op, ack)
        ack = switch.publish(shadow_topic("lamp", op, "cfg"), json.dumps(doc), qos=1)
        assert ack.reason == raw.RC_NOT_AUTHORIZED, (op, ack)
    got = lamp.accepted("get")
    assert got["version"] == 1 and got["state"] == {"reported": {"on": False}}, got
    # Its own shadow is fine.
    mine = switch.publish(shadow_topic("switch", "update"),
                          json.dumps({"state": {"reported": {"up": 1}}}), qos=1)
    assert mine.reason == 0, mine
    # panel is named by a route to lamp's update.
    panel = sedge.raw(version=5)
    assert panel.connect("panel").reason == 0
    ack = panel.publish(shadow_topic("lamp", "update"),
                        json.dumps({"state": {"desired": {"on": True}}}), qos=1)
    assert ack.reason == 0, ack
    ack = panel.publish(shadow_topic("lamp", "delete"), "{}", qos=1)
    assert ack.reason == raw.RC_NOT_AUTHORIZED, ack
    got = lamp.wait(lambda t, d: t.endswith("/update/accepted") and d["version"] == 2)
    assert got[1]["state"]["desired"] == {"on": True}, got
