"""The cloud uplink: routes to `cloud`, the durable spool, and the way back.

The cloud is a real mosquitto on loopback with mTLS (cloud.py); an
observer client on it records what the core published, in order. Messages
are numbered per topic, so a test can tell a loss (a number never seen) from
a duplicate (QoS 1 allows those; they are counted and reported) and from a
reordering (a number seen for the first time after a later one).
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import mqtt_raw
from groups_helpers import active_version

pytest.register_assert_rewrite("cloud")
from cloud import (cloud_sedge, deploy, deploy_ok, deployments, numbered,  # noqa: E402
                   publish_many, sensor_group, sequence_report, spool, wait_spool)
from conftest import SEDGECTL, SEDGED, SLOW, TIMEOUT, make_ca, wait_for  # noqa: E402

pytest_plugins = ("cloud",)  # the make_cloud and cloud fixtures

DOCUMENTED_KEYS = {"state", "endpoint", "client_id", "queued", "bytes", "oldest_age_s", "sent",
                   "appended", "dropped", "received", "reconnects", "inflight", "refused",
                   "dead_letters", "throttled", "pace", "backoff", "limits"}
DRAIN_TIMEOUT = 120 * SLOW


def thing(sedge, name="s1", version=5):
    c = sedge.raw(version=version)
    ack = c.connect(name)
    assert ack.reason == 0, ack
    return c


def observer(cloud, filters=("sensors/#",)):
    return cloud.client("observer", filters=list(filters))


def check_arrived(obs, expected, record=None, timeout=DRAIN_TIMEOUT):
    """Wait until every expected message reached the observer; assert the
    order per topic; returns the number of duplicates."""
    total = sum(expected.values())

    def distinct():
        return len({(t, p.split(b" ", 1)[0]) for t, p, _ in obs.snapshot()})
    try:
        wait_for(lambda: distinct() >= total, timeout, interval=0.1,
                 what="%d distinct messages at the cloud" % total)
    except AssertionError:
        problems, dups = sequence_report(obs.snapshot(), expected)
        raise AssertionError("not everything arrived: %s (duplicates: %d)" % (problems, dups))
    problems, dups = sequence_report(obs.snapshot(), expected)
    assert not problems, problems
    if record:
        record("duplicates", dups)
    print("duplicates at the cloud: %d of %d" % (dups, total))
    return dups


def wait_connected(sedge, timeout=TIMEOUT):
    return wait_spool(sedge, lambda s: s["state"] == "connected", timeout,
                      what="the uplink to be connected")


def wait_disconnected(sedge, timeout=TIMEOUT):
    return wait_spool(sedge, lambda s: s["state"] != "connected", timeout,
                      what="the uplink to notice the cloud is gone")



@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_routed_qos1_messages_reach_the_cloud_in_order_per_topic(make_sedge, cloud, protocol,
                                                                 record_property):
    obs = observer(cloud)
    s = cloud_sedge(make_sedge, cloud, protocol=protocol)
    deploy_ok(s, sensor_group())
    wait_connected(s)
    c = thing(s)
    topics = ["sensors/a", "sensors/b", "sensors/c/d"]
    reasons = publish_many(c, numbered(topics, 200))
    assert set(reasons) == {0}
    check_arrived(obs, {t: 200 for t in topics}, record_property)
    st = wait_spool(s, lambda st: st["queued"] == 0 and st["inflight"] == 0,
                    what="the spool to empty")
    assert st["appended"] == 600
    assert st["sent"] == 600
    assert st["dropped"] == 0
    assert st["bytes"] == 0
    assert st["endpoint"] == cloud.endpoint
    assert st["client_id"] == "edge-core"
    # The cloud saw the core's own certificate identity.
    assert "edge-core" in cloud.log()


def test_messages_without_a_cloud_route_do_not_reach_the_cloud(make_sedge, cloud):
    obs = observer(cloud, filters=("#",))
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group(things=("s1", "s2"), extra_routes=[
        {"source": "thing:s2", "filter": "local/#", "target": "thing:s1"}]))
    wait_connected(s)
    s2 = thing(s, "s2")
    assert s2.publish("local/x", b"not for the cloud", qos=1).reason == 0
    s1 = thing(s, "s1")
    assert s1.publish("sensors/x", b"0", qos=1).reason == 0
    obs.wait_count(1, lambda m: m[0] == "sensors/x")
    assert [m[0] for m in obs.snapshot() if not m[0].startswith("$")] == ["sensors/x"]
    assert spool(s)["appended"] == 1


def test_spool_json_has_every_documented_key_and_text_output(make_sedge, cloud):
    s = cloud_sedge(make_sedge, cloud)
    st = wait_connected(s)
    missing = DOCUMENTED_KEYS - set(st)
    assert not missing, "sedgectl spool --json lacks %s: %r" % (sorted(missing), st)
    for k in ("queued", "bytes", "oldest_age_s", "sent", "appended", "dropped", "received",
              "reconnects", "inflight"):
        assert isinstance(st[k], int) and st[k] >= 0, (k, st)
    assert st["limits"]["profile"] == "mqtt" and st["pace"]["limit_per_s"] == 0, st
    assert set(st["backoff"]) >= {"failures", "last_delay_ms", "next_attempt_in_ms"}, st
    r = s.ctl("spool")
    assert r.returncode == 0, r.stderr
    assert "connected" in r.stdout and cloud.endpoint in r.stdout, r.stdout
    for word in ("dead letters", "refused", "throttled", "pace", "backoff", "limits"):
        assert word in r.stdout, r.stdout


def test_spool_without_a_cloud_section_fails_clearly(sedge):
    r = sedge.ctl("spool", "--json")
    assert r.returncode != 0
    assert "cloud" in (r.stderr + r.stdout)


def test_client_id_defaults_to_the_core_thing_name_and_can_be_set(make_sedge, make_cloud):
    cloud = make_cloud()
    s = cloud_sedge(make_sedge, cloud, thing_name="gw-7", name="a")
    st = wait_connected(s)
    assert st["client_id"] == "gw-7"
    cloud2 = make_cloud()
    s2 = cloud_sedge(make_sedge, cloud2, thing_name="gw-8", client_id="custom-id", name="b")
    st2 = wait_connected(s2)
    assert st2["client_id"] == "custom-id"
    wait_for(lambda: "custom-id" in cloud2.log(), what="the cloud to log client custom-id")



def test_cloud_unreachable_at_start_spools_then_drains_when_it_comes_up(make_sedge, cloud,
                                                                       record_property):
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group())
    c = thing(s)
    topics = ["sensors/a", "sensors/b"]
    assert set(publish_many(c, numbered(topics, 250, size=100))) == {0}
    st = wait_spool(s, lambda st: st.get("last_error"), what="a last_error")
    assert st["state"] != "connected"
    assert st["queued"] == 500
    assert st["bytes"] >= 500 * 100
    assert st["appended"] == 500
    assert st["sent"] == 0
    assert "connect" in st["last_error"], st
    assert obs.count() == 0
    cloud.start()
    check_arrived(obs, {t: 250 for t in topics}, record_property)
    st = wait_spool(s, lambda st: st["queued"] == 0, what="the spool to empty")
    assert st["state"] == "connected"
    assert st["sent"] == 500
    assert "last_error" not in st or not st["last_error"], st


def test_spool_reports_the_age_of_its_oldest_message(make_sedge, cloud):
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group())
    assert thing(s).publish("sensors/a", b"0", qos=1).reason == 0
    st = wait_spool(s, lambda st: st["oldest_age_s"] >= 2, timeout=TIMEOUT,
                    what="the oldest message to age")
    assert st["queued"] == 1


def test_acknowledged_message_survives_kill_9_while_the_cloud_is_down(make_sedge, cloud):
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group())
    c = thing(s)
    for i in range(20):
        assert c.publish("sensors/a", b"%d" % i, qos=1).reason == 0
    s.kill9()
    s.start()
    st = spool(s)
    assert st["queued"] == 20, st
    cloud.start()
    check_arrived(obs, {"sensors/a": 20})


def test_spool_keeps_order_across_a_clean_restart(make_sedge, cloud, record_property):
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group())
    assert set(publish_many(thing(s), numbered(["sensors/a", "sensors/b"], 300))) == {0}
    mark = s.log_mark()
    s.restart()
    s.wait_log(r"600 messages .* waiting for the cloud", since=mark)
    assert set(publish_many(thing(s), [("sensors/a", b"%d" % i) for i in range(300, 400)])) == {0}
    cloud.start()
    check_arrived(obs, {"sensors/a": 400, "sensors/b": 300}, record_property)


def test_memory_spool_delivers_what_was_queued_while_disconnected(make_sedge, cloud):
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, spool={"storage": "memory"})
    deploy_ok(s, sensor_group())
    assert set(publish_many(thing(s), numbered(["sensors/m"], 300))) == {0}
    assert spool(s)["queued"] == 300
    cloud.start()
    check_arrived(obs, {"sensors/m": 300})



def test_qos0_route_bypasses_the_spool_and_drops_while_disconnected(make_sedge, cloud):
    obs = observer(cloud)
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group(qos=0))
    wait_connected(s)
    c = thing(s)
    assert c.publish("sensors/q0", b"connected", qos=1).reason == 0
    obs.wait_count(1, lambda m: m[1] == b"connected")
    st = spool(s)
    assert st["appended"] == 0 and st["queued"] == 0, st

    cloud.stop()
    wait_disconnected(s)
    for i in range(5):
        assert c.publish("sensors/q0", b"offline %d" % i, qos=1).reason == 0
    st = spool(s)
    assert st["dropped"] == 5, st
    assert st["queued"] == 0 and st["appended"] == 0, st

    cloud.start()
    obs.wait_connected()
    wait_connected(s)
    assert c.publish("sensors/q0", b"after", qos=1).reason == 0
    obs.wait_count(1, lambda m: m[1] == b"after")
    payloads = [m[1] for m in obs.snapshot()]
    assert payloads == [b"connected", b"after"], payloads



@pytest.mark.parametrize("version", [4, 5])
def test_reject_new_refuses_when_full_and_counts(make_sedge, cloud, version):
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, spool={"max_bytes": 1024, "when_full": "reject_new"})
    deploy_ok(s, sensor_group())
    c = thing(s, version=version)
    # topic (9 bytes) + payload (91 bytes): ten fit in 1024 bytes.
    msgs = numbered(["sensors/a"], 14, size=91)
    if version == 5:
        reasons = [c.publish(t, p, qos=1).reason for t, p in msgs]
        assert reasons == [0] * 10 + [0x97] * 4, ["0x%02x" % r for r in reasons]
        c.ping()  # the connection stays up
        refused = 4
    else:
        # 3.1.1 has no negative PUBACK: what the spool cannot keep is not
        # acknowledged; the publisher is disconnected and resends later.
        assert [c.publish(t, p, qos=1).reason for t, p in msgs[:10]] == [0] * 10
        c.send(mqtt_raw.publish(msgs[10][0], msgs[10][1], qos=1, packet_id=999, version=4))
        assert not [p for p in c.wait_closed() if p.type == mqtt_raw.PUBACK]
        c = thing(s, version=version)
        refused = 1
    st = spool(s)
    assert st["queued"] == 10, st
    assert st["dropped"] == refused, st
    assert st["bytes"] <= 1024, st
    cloud.start()
    wait_spool(s, lambda st: st["sent"] == 10 and st["queued"] == 0, timeout=DRAIN_TIMEOUT)
    assert c.publish("sensors/a", b"14 end", qos=1).reason == 0
    obs.wait_count(1, lambda m: m[1] == b"14 end")
    got = [int(m[1].split(b" ")[0]) for m in obs.snapshot()]
    assert sorted(set(got)) == list(range(10)) + [14], got


def test_drop_oldest_keeps_the_newest_and_counts(make_sedge, cloud):
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, spool={"max_bytes": 1024, "when_full": "drop_oldest"})
    deploy_ok(s, sensor_group())
    mark = s.log_mark()
    c = thing(s)
    reasons = [c.publish(t, p, qos=1).reason for t, p in numbered(["sensors/a"], 25, size=91)]
    assert reasons == [0] * 25
    st = spool(s)
    assert st["queued"] == 10, st
    assert st["dropped"] == 15, st
    s.wait_log(r"spool full", since=mark)
    cloud.start()
    wait_spool(s, lambda st: st["queued"] == 0, timeout=DRAIN_TIMEOUT)
    assert c.publish("sensors/a", b"25 end", qos=1).reason == 0
    obs.wait_count(1, lambda m: m[1] == b"25 end")
    got = [int(m[1].split(b" ")[0]) for m in obs.snapshot()]
    firsts = list(dict.fromkeys(got))
    assert firsts == list(range(15, 26)), got


def test_drop_oldest_while_the_cloud_is_slow_keeps_order_and_drains(make_sedge, cloud):
    """Evictions of messages that are in flight to a slow cloud."""
    obs = observer(cloud)
    link = cloud.slow_link(rate=20000)
    s = cloud_sedge(make_sedge, cloud, endpoint=link.endpoint, max_inflight=20,
                    spool={"max_bytes": 4096, "when_full": "drop_oldest"})
    deploy_ok(s, sensor_group())
    wait_connected(s)
    c = thing(s)
    assert set(publish_many(c, numbered(["sensors/a"], 400, size=91))) == {0}
    st = wait_spool(s, lambda st: st["queued"] == 0 and st["inflight"] == 0,
                    timeout=DRAIN_TIMEOUT, what="the spool to drain")
    assert st["appended"] == 400, st
    assert st["sent"] + st["dropped"] == 400, st
    assert st["dropped"] > 0, st
    obs.wait_count(1, lambda m: m[1].startswith(b"399 "), what="the newest message")
    firsts = list(dict.fromkeys(int(m[1].split(b" ")[0]) for m in obs.snapshot()))
    assert firsts == sorted(firsts), "out of order: %r" % firsts
    assert len(firsts) >= st["sent"], (len(firsts), st)
    assert s.running()


def test_large_messages_arrive_intact_and_in_order(make_sedge, cloud):
    """To a broker that takes them (mosquitto without the AWS gate)."""
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, endpoint=cloud.direct_endpoint)
    deploy_ok(s, sensor_group())
    c = thing(s)
    sizes = [10, 1024, 1 << 20, 3 << 20, 5 << 20, 100, 6 << 20, 20]
    for i, size in enumerate(sizes):
        payload = (b"%d " % i + bytes(range(256)) * (size // 256 + 1))[:max(size, 4)]
        assert c.publish("sensors/big", payload, qos=1).reason == 0
    assert spool(s)["queued"] == len(sizes)
    s.restart()  # some of them come back from disk only
    cloud.start()
    got = obs.wait_count(len(sizes), timeout=DRAIN_TIMEOUT)
    firsts = {}
    for _, p, _ in got:
        firsts.setdefault(int(p.split(b" ")[0]), p)
    assert list(firsts) == list(range(len(sizes)))
    for i, size in enumerate(sizes):
        want = (b"%d " % i + bytes(range(256)) * (size // 256 + 1))[:max(size, 4)]
        assert firsts[i] == want, "message %d (%d bytes) arrived with %d bytes" % (
            i, size, len(firsts[i]))


def test_message_the_cloud_refuses_is_counted_and_does_not_block_the_queue(make_sedge,
                                                                          make_cloud):
    acl = ("user edge-core\ntopic write sensors/ok/#\ntopic readwrite $aws/#\n"
           "topic read commands/#\n\nuser observer\ntopic read #\n")
    cloud = make_cloud(acl=acl)
    obs = observer(cloud)
    s = cloud_sedge(make_sedge, cloud, protocol="5")
    deploy_ok(s, sensor_group())
    wait_connected(s)
    mark = s.log_mark()
    c = thing(s)
    for t, p in [("sensors/ok/a", b"0"), ("sensors/denied", b"1"), ("sensors/ok/a", b"2")]:
        assert c.publish(t, p, qos=1).reason == 0
    obs.wait_count(2)
    st = wait_spool(s, lambda st: st["queued"] == 0, what="the spool to drain")
    assert [m[1] for m in obs.snapshot()] == [b"0", b"2"]
    # MQTT 5 told the core (mosquitto answers PUBACK 0x87): the loss is
    # counted and logged, not reported as sent.
    logged = [l for l in s.log_since(mark).splitlines()
              if re.search(r"sensors/denied|0x87|not authori[sz]ed", l)]
    assert st["dropped"] == 1 and st["sent"] == 2 and logged, (
        "the cloud refused sensors/denied with PUBACK 0x87; sedgectl spool says sent %d, "
        "dropped %d; log lines about it: %r" % (st["sent"], st["dropped"], logged))



def test_untrusted_cloud_certificate_is_logged_clearly_and_retried(make_sedge, make_cloud,
                                                                   tmp_path):
    cloud = make_cloud(start=False)
    other = make_ca(tmp_path / "other-ca", core_name="cloud-broker")
    cloud.present_certificate_of(other)
    cloud.start()
    s = cloud_sedge(make_sedge, cloud)
    line = s.wait_log(r"(?i)server certificate")
    assert cloud.endpoint in line, line
    assert "unable to get local issuer certificate" in line or "verify" in line.lower(), line
    # It keeps trying, backing off up to reconnect_max_ms (1 s here).
    def failures():
        found = [l for l in s.log().splitlines() if "server certificate" in l]
        return found if len(found) >= 5 else None
    lines = wait_for(failures, TIMEOUT * 2, what="five failed attempts")
    delays = [float(re.search(r"reconnecting in ([0-9.]+) s", l).group(1)) for l in lines]
    assert all(0 < d <= 1.0 for d in delays), delays
    assert max(delays[2:]) > delays[0], "no backoff: %r" % delays
    st = spool(s)
    assert st["state"] != "connected", st
    assert "server certificate" in st.get("last_error", ""), st
    # The cloud gets its proper certificate: the core connects by itself.
    cloud.stop()
    cloud.present_certificate_of(cloud.certs)
    cloud.start()
    st = wait_connected(s, timeout=TIMEOUT * 2)
    assert not st.get("last_error"), st


def test_cloud_refusing_the_core_certificate_is_reported(make_sedge, make_cloud, tmp_path):
    cloud = make_cloud()
    other = make_ca(tmp_path / "other-ca")
    r = subprocess.run([str(SEDGECTL), "cert", "issue", "edge-core",
                        "--dir", str(other)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = cloud_sedge(make_sedge, cloud, cert_file=str(other / "edge-core.pem"),
                    key_file=str(other / "edge-core.key"))
    st = wait_spool(s, lambda st: st.get("last_error"), what="a last_error")
    assert st["state"] != "connected", st
    assert cloud.endpoint in st["last_error"] or "cloud" in st["last_error"], st



def spool_while_down(make_sedge, cloud, topics, count, size=0, **cloud_kw):
    """An observer, the cloud stopped, a sedged that spooled `count`
    messages on each topic."""
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, **cloud_kw)
    deploy_ok(s, sensor_group())
    c = thing(s)
    assert set(publish_many(c, numbered(topics, count, size), window=32)) == {0}
    c.disconnect()
    assert spool(s)["queued"] == len(topics) * count
    return obs, s


def test_cloud_closing_the_connection_mid_drain_loses_nothing(make_sedge, cloud,
                                                              record_property):
    topics = ["sensors/a", "sensors/b"]
    link = cloud.slow_link(rate=200000)
    obs, s = spool_while_down(make_sedge, cloud, topics, 1500, size=200, endpoint=link.endpoint,
                              max_inflight=7)
    cloud.start()
    samples = []
    wait_spool(s, lambda st: samples.append(st["inflight"]) or st["sent"] >= 500,
               timeout=DRAIN_TIMEOUT, what="the drain to be under way")
    assert max(samples) <= 7, "more than max_inflight (7) unacknowledged: %r" % samples
    cloud.stop()
    st = wait_disconnected(s)
    assert st["queued"] > 0, "the drain finished before the cloud was stopped: %r" % st
    cloud.start()
    check_arrived(obs, {t: 1500 for t in topics}, record_property)
    st = wait_spool(s, lambda st: st["queued"] == 0, timeout=DRAIN_TIMEOUT)
    assert st["reconnects"] >= 1, st


def test_10000_messages_survive_kill_9_half_way_through_draining(make_sedge, cloud,
                                                                 record_property):
    topics = ["sensors/a", "sensors/b", "sensors/c", "sensors/d"]
    # The core reaches the cloud through a slow link, so the drain lasts
    # a few seconds and can be interrupted half-way.
    link = cloud.slow_link(rate=150000)
    obs, s = spool_while_down(make_sedge, cloud, topics, 2500, size=60, endpoint=link.endpoint)
    cloud.start()
    st = wait_spool(s, lambda st: st["sent"] >= 4000, timeout=DRAIN_TIMEOUT,
                    what="half of the spool to drain")
    s.kill9()
    assert st["queued"] > 0, "the drain finished before the kill: %r" % st
    mark = s.log_mark()
    s.start()
    line = s.wait_log(r"messages .* waiting for the cloud from before the restart", since=mark)
    left = int(line.split("I spool: ")[-1].split()[0])
    assert 0 < left < 10000, line
    # New messages join the queue behind the ones from before the kill.
    c = thing(s)
    more = [(t, b"%d" % i) for i in range(2500, 2700) for t in topics]
    assert set(publish_many(c, more, window=32)) == {0}
    dups = check_arrived(obs, {t: 2700 for t in topics}, record_property)
    st = wait_spool(s, lambda st: st["queued"] == 0, timeout=DRAIN_TIMEOUT)
    assert st["dropped"] == 0, st
    print("kill -9 with %d messages left: %d duplicates at the cloud" % (left, dups))


def test_cloud_restarted_every_2_s_under_load_loses_nothing(make_sedge, cloud, record_property):
    obs = observer(cloud)
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group())
    wait_connected(s)
    c = thing(s)
    topics = ["sensors/a", "sensors/b"]
    stop = threading.Event()
    restarts = []
    errors = []

    def flap():
        try:
            while not stop.wait(2.0):
                cloud.stop()
                cloud.start()
                restarts.append(time.monotonic())
        except Exception as e:  # the test reports it
            errors.append(e)

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    sent = 0
    try:
        # About 12 s of steady load: 5 restarts of the cloud under it.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline or len(restarts) < 5:
            batch = [(t, b"%d" % n) for n in range(sent, sent + 25) for t in topics]
            assert set(publish_many(c, batch)) == {0}
            sent += 25
            time.sleep(0.05)
    finally:
        stop.set()
        flapper.join(TIMEOUT)
    assert not errors, errors
    if not cloud.running():
        cloud.start()
    assert len(restarts) >= 5
    check_arrived(obs, {t: sent for t in topics}, record_property)
    st = wait_spool(s, lambda st: st["queued"] == 0, timeout=DRAIN_TIMEOUT)
    assert st["reconnects"] >= 3, st  # the restarts did cut the link
    assert st["dropped"] == 0, st
    print("%d messages on %d topics through %d cloud restarts" % (sent, len(topics),
                                                               len(restarts)))


def test_keepalive_notices_a_cloud_that_stopped_answering(make_sedge, cloud, record_property):
    obs = observer(cloud)
    s = cloud_sedge(make_sedge, cloud, keepalive_s=2)
    deploy_ok(s, sensor_group())
    wait_connected(s)
    c = thing(s)
    cloud.proc.send_signal(signal.SIGSTOP)
    try:
        assert set(publish_many(c, numbered(["sensors/frozen"], 50))) == {0}
        st = wait_disconnected(s, timeout=TIMEOUT * 2)
        assert "no answer" in st.get("last_error", ""), st
    finally:
        cloud.proc.send_signal(signal.SIGCONT)
    check_arrived(obs, {"sensors/frozen": 50}, record_property)
    wait_spool(s, lambda st: st["state"] == "connected" and st["queued"] == 0,
               timeout=TIMEOUT * 3)


def test_cloud_that_accepts_but_never_answers_is_given_up_and_retried(make_sedge, cloud):
    """A cloud endpoint that accepts TCP connections and then says nothing
    (a hung broker, a black-holing middlebox): the core must not wait on
    one connection for ever."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(hole.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    try:
        s = cloud_sedge(make_sedge, cloud, endpoint="localhost:%d" % hole.getsockname()[1],
                        keepalive_s=2)
        wait_for(lambda: accepted, TIMEOUT, what="a first connection")
        assert spool(s)["state"] != "connected"
        try:
            wait_for(lambda: len(accepted) >= 2, TIMEOUT * 3,
                     what="a second attempt after a silent one (keepalive 2 s)")
        except AssertionError as e:
            raise AssertionError("%s; spool: %r" % (e, spool(s))) from None
        assert spool(s).get("last_error"), spool(s)
    finally:
        hole.close()
        for a in accepted:
            a.close()



def test_cloud_route_delivers_locally_and_resubscribes_after_reconnect(make_sedge, cloud):
    s = cloud_sedge(make_sedge, cloud)
    deploy_ok(s, {"group": "down", "things": [{"name": "lamp"}], "routes": [
        {"source": "cloud", "filter": "commands/#", "target": "thing:lamp"}]})
    wait_connected(s)
    lamp = s.client("lamp")
    lamp.subscribe("#", qos=1)
    app = cloud.client("cloud-app")

    def deliver(topic, payload):
        """Publish from the cloud until the lamp gets it (the core's
        SUBSCRIBE may still be on its way)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            app.publish(topic, payload, qos=1)
            try:
                m = lamp.get(timeout=0.5)
                while m.payload != payload:
                    m = lamp.get(timeout=0.5)
                return m
            except AssertionError:
                if time.monotonic() > deadline:
                    raise AssertionError("the lamp never got %r from the cloud" % payload)

    m = deliver("commands/lamp/on", b"first")
    assert m.topic == "commands/lamp/on"
    # Not routed from the cloud: not subscribed, not delivered.
    app.publish("other/x", b"not routed", qos=1)
    received = spool(s)["received"]
    assert received >= 1
    # The cloud forgets every session: the core must subscribe again.
    cloud.restart(forget_sessions=True)
    app.wait_connected()
    wait_spool(s, lambda st: st["state"] == "connected" and st["reconnects"] >= 1)
    deliver("commands/lamp/off", b"second")
    while True:  # anything left is a resend of the same commands
        try:
            m = lamp.get(timeout=0.2)
        except AssertionError:
            break
        assert m.topic.startswith("commands/"), (m.topic, m.payload)


def test_redeployed_cloud_routes_take_effect_without_a_reconnect(make_sedge, cloud):
    s = cloud_sedge(make_sedge, cloud)
    routes = [{"source": "cloud", "filter": "commands/#", "target": "thing:lamp"},
              {"source": "cloud", "filter": "barrier/#", "target": "thing:lamp"}]
    deploy_ok(s, {"group": "down", "things": [{"name": "lamp"}], "routes": routes})
    wait_connected(s)
    lamp = s.client("lamp")
    lamp.subscribe("#", qos=1)
    app = cloud.client("cloud-app")
    n = [0]

    def barrier():
        """Everything the cloud sent the core before this has been handled."""
        n[0] += 1
        mark = b"barrier %d" % n[0]
        got = []
        deadline = time.monotonic() + TIMEOUT
        while True:
            app.publish("barrier/x", mark, qos=1)
            try:
                while True:
                    m = lamp.get(timeout=0.5)
                    if m.payload == mark:
                        return [x for x in got if not x.topic.startswith("barrier/")]
                    got.append(m)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    barrier()
    app.publish("commands/lamp", b"on", qos=1)
    assert [m.payload for m in barrier()] == [b"on"]
    # commands/# is no longer routed, orders/# is.
    deploy_ok(s, {"group": "down", "things": [{"name": "lamp"}], "routes": [
        {"source": "cloud", "filter": "orders/#", "target": "thing:lamp"}, routes[1]]})
    barrier()
    reconnects = spool(s)["reconnects"]
    app.publish("commands/lamp", b"off", qos=1)
    app.publish("orders/lamp", b"order", qos=1)
    got = barrier()
    assert [(m.topic, m.payload) for m in got] == [("orders/lamp", b"order")], [
        (m.topic, m.payload) for m in got]
    assert spool(s)["reconnects"] == reconnects



@pytest.fixture
def small_fs(tmp_path):
    """A 3 MB tmpfs; needs root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def sedge_on_small_fs(make_sedge, cloud, small_fs):
    """The cloud stopped (an observer's session waiting in it) and a
    sedged whose data directory is on the small filesystem, which a thing
    s1 fills with 4 KB messages routed to the cloud. The message whose
    commit fails first is kept and retried by the store: its PUBACK waits
    (pending); while the store cannot commit, new ones are refused.
    Returns (observer, sedged, numbers acknowledged, [(number, reason)]
    refused, numbers pending)."""
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, extra={"data_dir": str(small_fs / "data")})
    deploy_ok(s, sensor_group(things=("s1", "s2"), extra_routes=[
        {"source": "thing:s2", "filter": "sensors/#", "target": "cloud"}]))
    c = thing(s)
    accepted, refused, pending = [], [], []
    for i in range(1500):  # 6 MB: more than the filesystem holds
        c.send(mqtt_raw.publish("sensors/a", b"%d " % i + b"x" * 4000, qos=1, packet_id=i + 1))
        try:
            r = c._recv_matching(lambda p: p.type == mqtt_raw.PUBACK and p.packet_id == i + 1,
                                 timeout=2.0).reason
        except TimeoutError:
            # Its commit failed: the store retries it, and the PUBACK (and
            # any after it on this connection, acknowledgements being in
            # order) waits until it commits.
            pending.append(i)
            break
        if r == 0:
            accepted.append(i)
        else:
            refused.append((i, r))
    assert pending, "3 MB took %d messages of 4 KB" % len(accepted)
    # Meanwhile new messages are refused at once.
    c2 = thing(s, "s2")
    for i in range(pending[0] + 1, pending[0] + 21):
        refused.append((i, c2.publish("sensors/a", b"%d " % i + b"x" * 4000, qos=1).reason))
    assert accepted, refused
    assert all(r >= 0x80 for _, r in refused), refused
    assert s.running(), "sedged died when the disk filled"
    assert s.status()["store_failures"] >= 1
    c2.ping()
    c2.close()
    c.close()
    return obs, s, accepted, refused, pending


def test_full_disk_refuses_spooling_and_counts_the_refusals(make_sedge, cloud, small_fs):
    obs, s, accepted, refused, pending = sedge_on_small_fs(make_sedge, cloud, small_fs)
    st = spool(s)
    status = s.status()
    print("disk full after %d messages; spool %r; store failures %d"
          % (len(accepted), st, status["store_failures"]))
    # What the spool holds is what it stored and what waits for the store's
    # retry; the refusals are counted.
    assert st["queued"] == len(accepted) + len(pending), st
    assert status["messages_dropped"] >= len(refused), (
        "after %d stored and %d refused (PUBACK %s) messages, sedgectl spool says queued %d, "
        "appended %d, dropped %d (store failures %d)" % (
            len(accepted), len(refused), sorted({"0x%02x" % r for _, r in refused}),
            st["queued"], st["appended"], st["dropped"], status["store_failures"]))


def test_full_disk_keeps_the_store_intact_and_the_core_restarts(make_sedge, cloud, small_fs):
    import sqlite3
    obs, s, accepted, refused, pending = sedge_on_small_fs(make_sedge, cloud, small_fs)
    # kill -9 and restart on the same, still full, filesystem.
    s.kill9()
    s.start()
    st = spool(s)
    assert st["queued"] >= len(accepted), st
    s.stop()
    dbs = [p for p in s.data_dir.iterdir() if p.suffix in (".db", ".sqlite", ".sqlite3")]
    assert dbs, list(s.data_dir.iterdir())
    for db in dbs:
        check = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        try:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok", db
        finally:
            check.close()
    # With room again, everything acknowledged reaches the cloud, in order
    # (refused messages may or may not).
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    s.start()
    cloud.start()

    def numbers():
        return [int(m[1].split(b" ")[0]) for m in obs.snapshot()]
    wait_for(lambda: set(numbers()) >= set(accepted), DRAIN_TIMEOUT, interval=0.2,
             what="every acknowledged message at the cloud")
    firsts = list(dict.fromkeys(numbers()))
    assert firsts == sorted(firsts), "out of order: %r" % firsts[:50]


# The cloud fixture's gate (cloud.AwsGate) refuses what AWS IoT Core
# refuses: more than 8 filters a SUBSCRIBE, topics over 256 bytes or 7
# slashes, payloads over 128 KB; and, when a test sets them, publish rates
# and a policy of denied topics.

def aws_sedge(make_sedge, cloud, limits=None, **kw):
    """A sedged that knows it talks to AWS IoT Core (profile aws-iot); the
    drain unpaced unless `limits` says otherwise, so tests stay fast."""
    lim = {"publishes_per_s": 0, "bytes_per_s": 0}
    lim.update(limits or {})
    return cloud_sedge(make_sedge, cloud, profile="aws-iot", limits=lim, **kw)


def test_cloud_subscriptions_go_at_most_8_filters_a_subscribe(make_sedge, cloud):
    """10 cloud routes and 3 synced shadows: 13 filters, and AWS IoT Core
    disconnects a client that sends more than 8 in one SUBSCRIBE."""
    s = cloud_sedge(make_sedge, cloud)
    routes = [{"source": "cloud", "filter": "commands/%d/#" % i, "target": "thing:lamp"}
              for i in range(10)]
    deploy_ok(s, {"group": "many", "things": [{"name": "lamp"}], "routes": routes,
                  "shadows": {"sync": [{"thing": "lamp", "names": ["a", "b"]}]}})
    wait_connected(s)
    want = {"commands/%d/#" % i for i in range(10)}
    wait_for(lambda: want <= set(cloud.gate.subscribed()), what="every route's filter subscribed")
    lamp = s.client("lamp")
    lamp.subscribe("commands/#", qos=1)
    app = cloud.client("cloud-app")
    deadline = time.monotonic() + TIMEOUT
    while True:  # the SUBSCRIBE for commands/9/# may still be on its way to mosquitto
        app.publish("commands/9/x", b"to the last filter", qos=1)
        try:
            assert lamp.get(timeout=0.5).payload == b"to the last filter"
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    sizes = [len(p) for p in cloud.gate.subscribes]
    assert max(sizes) <= 8, "SUBSCRIBE packets with %r filters" % sizes
    assert not cloud.gate.events_of("disconnect"), cloud.gate.events_of("disconnect")
    st = spool(s)
    assert st["reconnects"] == 0 and st["state"] == "connected", st


def test_routes_the_cloud_would_refuse_are_refused_at_deploy(make_sedge, cloud):
    s = aws_sedge(make_sedge, cloud)
    long_filter = "sensors/" + "x" * 260
    doc = sensor_group(extra_routes=[
        {"source": "thing:s1", "filter": "a/b/c/d/e/f/g/h/i", "target": "cloud"},
        {"source": "thing:s1", "filter": long_filter, "target": "cloud"},
        {"source": "cloud", "filter": "in/1/2/3/4/5/6/7/8", "target": "thing:s1"},
        # These fit: a/#'s shortest match is "a/b/c/d/e/f/g" (6 slashes),
        # and a Basic Ingest prefix's 3 slashes are not counted.
        {"source": "thing:s1", "filter": "a/b/c/d/e/f/g/#", "target": "cloud"},
        {"source": "thing:s1", "filter": "$aws/rules/r1/a/b/c/d/e/f/g", "target": "cloud"}])
    r = deploy(s, doc)
    assert r.returncode != 0, r.stdout
    out = r.stdout + r.stderr
    for line in ("routes[1].filter", "8 slashes", "routes[2].filter", "bytes",
                 "routes[3].filter"):
        assert line in out, out
    assert "routes[4]" not in out and "routes[5]" not in out, out
    assert active_version(s) == 0, deployments(s)
    doc["routes"] = doc["routes"][:1] + doc["routes"][4:]
    deploy_ok(s, doc)


@pytest.mark.parametrize("version", [4, 5])
def test_message_beyond_the_clouds_limits_is_refused_when_routed(make_sedge, cloud, version):
    obs = observer(cloud)
    s = aws_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group())
    wait_connected(s)
    mark = s.log_mark()
    c = thing(s, version=version)
    refused = [c.publish("sensors/a/b/c/d/e/f/g/h", b"8 slashes", qos=1).reason,
               c.publish("sensors/" + "t" * 250, b"long topic", qos=1).reason,
               c.publish("sensors/big", b"0" * (128 * 1024 + 1), qos=1).reason]
    assert c.publish("sensors/ok", b"after", qos=1).reason == 0
    obs.wait_count(1, lambda m: m[1] == b"after")
    # Never deliverable, so a 3.1.1 publisher is not made to resend it (it
    # is acknowledged and dropped); a v5 one is told.
    assert refused == ([0x99] * 3 if version == 5 else [0] * 3), refused
    st = wait_spool(s, lambda st: st["queued"] == 0, what="the spool to empty")
    assert st["refused"] == {"total": 3, "topic": 2, "payload": 1}, st
    assert st["appended"] == 1 and st["sent"] == 1, st
    assert st["reconnects"] == 0, st
    assert [m[1] for m in obs.snapshot()] == [b"after"]
    assert not cloud.gate.events_of("disconnect"), cloud.gate.events_of("disconnect")
    log = s.log_since(mark)
    assert "slashes" in log and "payload of 131073 bytes" in log, log


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_message_the_cloud_refuses_never_blocks_the_queue(make_sedge, make_cloud, protocol):
    """AWS IoT Core disconnects an MQTT 3.1.1 client that publishes where
    its policy denies it (an MQTT 5 one gets PUBACK 0x87). The core does not
    know the policy: the message it cannot deliver must end in the dead
    letters, counted and logged, and everything behind it flow."""
    cloud = make_cloud(aws={"deny_topics": ["sensors/denied"]})
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, protocol=protocol, limits={"dead_letter_after": 3})
    deploy_ok(s, sensor_group())
    c = thing(s)
    msgs = numbered(["sensors/a"], 10) + [("sensors/denied", b"x")] + [
        ("sensors/a", b"%d" % i) for i in range(10, 20)]
    assert set(publish_many(c, msgs)) == {0}
    cloud.start()
    check_arrived(obs, {"sensors/a": 20})
    st = wait_spool(s, lambda st: st["queued"] == 0 and st["dead_letters"]["total"] == 1,
                    what="the denied message in the dead letters")
    dead = st["dead_letters"]["recent"]
    assert [d["topic"] for d in dead] == ["sensors/denied"], dead
    assert st["sent"] == 20 and st["dropped"] == 1, st
    if protocol == "3.1.1":
        # Cut each time it went alone; never more than dead_letter_after.
        cuts = cloud.gate.events_of("disconnect")
        assert 1 <= len(cuts) <= 1 + 3, cuts
        assert "closed the connection" in dead[0]["reason"], dead
    else:
        assert "0x87" in dead[0]["reason"], dead
    assert s.wait_log(r"dead letters")
    s.stop()
    import sqlite3
    db = sqlite3.connect(str(s.data_dir / "sedge.db"))
    try:
        rows = db.execute("SELECT topic, payload FROM dead_letter").fetchall()
        left = db.execute("SELECT COUNT(*) FROM spool").fetchone()[0]
    finally:
        db.close()
    assert rows == [("sensors/denied", b"x")] and left == 0, (rows, left)


def test_spooled_message_beyond_new_limits_goes_to_the_dead_letters(make_sedge, cloud):
    """Spooled for a broker without limits, drained to AWS IoT Core after a
    restart with its limits: the big one is set aside, not sent."""
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, profile="mqtt")
    deploy_ok(s, sensor_group())
    c = thing(s)
    for p in (b"0", b"1 " + b"x" * (200 * 1024), b"2"):
        assert c.publish("sensors/a", p, qos=1).reason == 0
    s.stop()
    s.extra["cloud"]["profile"] = "aws-iot"
    s.write_config()
    s.start()
    cloud.start()
    obs.wait_count(2)
    got = [m[1] for m in obs.snapshot()]
    assert got[:2] == [b"0", b"2"], got
    st = wait_spool(s, lambda st: st["dead_letters"]["total"] == 1)
    assert "payload" in st["dead_letters"]["recent"][0]["reason"], st
    assert not cloud.gate.events_of("disconnect")


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_drain_paces_itself_to_the_publish_rate_and_is_never_throttled(make_sedge, make_cloud,
                                                                     protocol):
    cloud = make_cloud(aws={"publishes_per_s": 50})
    obs = observer(cloud)
    cloud.stop()
    s = aws_sedge(make_sedge, cloud, protocol=protocol, limits={"publishes_per_s": 40})
    deploy_ok(s, sensor_group())
    assert set(publish_many(thing(s), numbered(["sensors/a", "sensors/b"], 60))) == {0}
    cloud.start()
    check_arrived(obs, {"sensors/a": 60, "sensors/b": 60})
    st = wait_spool(s, lambda st: st["queued"] == 0)
    assert cloud.gate.events_of("throttled") == [], "the cloud throttled %d publishes" % len(
        cloud.gate.events_of("throttled"))
    assert st["throttled"]["total"] == 0 and st["reconnects"] == 0, st
    assert st["pace"]["limit_per_s"] == 40, st


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_throttling_storm_backs_off_and_loses_nothing(make_sedge, make_cloud, protocol):
    """The core does not know the cloud's rate (a plain broker's profile)
    and the cloud throttles: MQTT 5 with PUBACK 0x97, MQTT 3.1.1 by not
    answering. The drain must slow down and deliver everything."""
    cloud = make_cloud(aws={"publishes_per_s": 25})
    obs = observer(cloud)
    cloud.stop()
    s = cloud_sedge(make_sedge, cloud, protocol=protocol, reconnect_min_ms=100,
                    reconnect_max_ms=500, limits={"ack_timeout_ms": 700})
    deploy_ok(s, sensor_group())
    assert set(publish_many(thing(s), numbered(["sensors/a"], 100))) == {0}
    cloud.start()
    want = {str(i).encode() for i in range(100)}
    wait_for(lambda: want <= {m[1] for m in obs.snapshot()}, DRAIN_TIMEOUT, interval=0.2,
             what="all 100 messages at the cloud")
    st = wait_spool(s, lambda st: st["queued"] == 0)
    assert cloud.gate.events_of("throttled"), "the cloud never throttled: the test is void"
    assert st["throttled"]["total"] >= 1, st
    assert st["dead_letters"]["total"] == 0 and st["dropped"] == 0, st
    if protocol == "5":
        assert st["throttled"]["puback_0x97"] >= 1, st
    else:
        assert st["throttled"]["ack_timeouts"] >= 1, st


def test_reconnect_after_a_link_that_was_up_drops_waits_with_jitter(make_sedge, cloud):
    """A fleet of cores must not reconnect the moment the cloud is back:
    the first attempt after a lost link waits between reconnect_min_ms and
    twice that, at random; links that do not stay up (30 s) make the
    delays grow, up to reconnect_max_ms."""
    s = cloud_sedge(make_sedge, cloud, reconnect_min_ms=300, reconnect_max_ms=2000)
    first_delays = []
    failures = wait_connected(s).get("backoff", {}).get("failures", 0)  # 0 unless it failed
    for _ in range(4):
        wait_connected(s)
        mark = s.log_mark()
        cloud.restart()
        line = s.wait_log(r"reconnecting in [0-9.]+ s", since=mark)
        first_delays.append(float(re.search(r"reconnecting in ([0-9.]+) s", line).group(1)))
    assert 0.3 <= first_delays[0] <= 0.3 * 2 ** (failures + 1), (failures, first_delays)
    assert all(0.3 <= d <= 2.0 for d in first_delays), first_delays
    assert len(set(first_delays)) > 1, "no jitter: %r" % first_delays
    st = wait_connected(s)
    assert st["backoff"]["min_ms"] == 300 and st["backoff"]["max_ms"] == 2000, st



def test_retained_message_routed_to_the_cloud_is_retained_there(make_sedge, cloud):
    s = aws_sedge(make_sedge, cloud)
    deploy_ok(s, sensor_group(extra_routes=[
        {"source": "thing:s1", "filter": "status/#", "target": "cloud", "qos": 0}]))
    wait_connected(s)
    c = thing(s)
    assert c.publish("sensors/state", b"on", qos=1, retain=True).reason == 0
    assert c.publish("sensors/plain", b"not retained", qos=1).reason == 0
    c.publish("status/s1", b"online", qos=0, retain=True)
    wait_for(lambda: ("status/s1", b"online", True) in cloud.gate.snapshot(),
             what="the QoS 0 retained message through the gate")
    # Through the spool while the cloud is away, too.
    cloud.stop()
    wait_disconnected(s)
    assert c.publish("sensors/later", b"kept", qos=1, retain=True).reason == 0
    cloud.start()
    wait_spool(s, lambda st: st["queued"] == 0 and st["state"] == "connected")
    late = cloud.client("late-subscriber", filters=["sensors/#", "status/#"], clean=True)
    got = late.wait_count(3, what="retained messages")
    retained = {(t, p) for t, p, r in late.retained if r}
    assert retained == {("sensors/state", b"on"), ("sensors/later", b"kept"),
                        ("status/s1", b"online")}, late.retained
    assert ("sensors/plain", b"not retained") not in {(t, p) for t, p, _ in got}


def test_cloud_profile_and_limits_are_validated(make_sedge, cloud):
    """(Which endpoints are AWS's is a unit test: test_uplink_limits.)"""
    s = cloud_sedge(make_sedge, cloud, start=False, profile="azure",
                    limits={"publishes_per_s": -1, "nonsense": 1,
                            "max_filters_per_subscribe": 0})
    r = subprocess.run([str(SEDGED), "--config", str(s.config_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2, r
    for key in ("cloud.profile", "cloud.limits.publishes_per_s", "cloud.limits.nonsense",
                "cloud.limits.max_filters_per_subscribe"):
        assert key in r.stderr, r.stderr
    s2 = aws_sedge(make_sedge, cloud, name="aws", limits={"publishes_per_s": 7})
    st = wait_connected(s2)
    assert st["limits"]["profile"] == "aws-iot", st
    assert st["limits"]["publishes_per_s"] == 7 and st["limits"]["max_topic_slashes"] == 7, st
    assert st["limits"]["max_payload_bytes"] == 131072, st
