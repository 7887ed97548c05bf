"""Updates from the cloud: AWS IoT Jobs with a `sedge.update` document on a
real mosquitto standing in for AWS IoT (cloud.py's FakeJobs answers the
Jobs topics), the bundle served over HTTPS. One job sent to five cores
(own data directories and ports) updates all of them; refusals and
rollbacks are reported FAILED with their reason, by the release that runs
afterwards; a job with a schedule waits for it."""

import base64
import hashlib
import json
import tarfile
import threading
import time

import pytest

pytest.register_assert_rewrite("cloud")
from cloud import FakeJobs, cloud_config, wait_spool  # noqa: E402
from conftest import SLOW, TIMEOUT, make_ca, wait_for  # noqa: E402
from ota_helpers import create_bundle, make_key, release_tree  # noqa: E402
from test_ota_download import FileServer  # noqa: E402
from test_ota_update import CRASH, HEALTH_S, OtaSedge  # noqa: E402

pytest_plugins = ("cloud",)  # the make_cloud and cloud fixtures


@pytest.fixture
def keys(tmp_path):
    return make_key(tmp_path / "keys")


@pytest.fixture
def web(tmp_path):
    certs = make_ca(tmp_path / "web", core_name="localhost", sans=["localhost"])
    (tmp_path / "www").mkdir()
    s = FileServer(tmp_path / "www", certs)
    s.certs = certs
    yield s
    s.close()


@pytest.fixture
def made(tmp_path):
    cores = []
    yield cores
    for c in cores:
        c.shutdown()


def cloud_core(tmp_path, cloud, keys, web, made, name):
    s = OtaSedge(tmp_path / name, keys[1])
    s.extra["ota"]["ca_file"] = str(web.certs / "ca.pem")
    s.extra["cloud"] = cloud_config(cloud, core_name=name)
    s.extra["core"] = {"thing_name": name}
    s.write_config()
    made.append(s)
    s.start()
    return s


def publish(tmp_path, web, keys, version, sedged=None):
    tree = release_tree(tmp_path / ("tree-" + version), sedged)
    b = create_bundle(tree, version, keys[0], web.directory / (version + ".sedge"))
    with tarfile.open(b) as t:
        sig = t.extractfile("manifest.sig").read()
    return {"operation": "sedge.update", "url": web.url(b.name),
            "sha256": hashlib.sha256(b.read_bytes()).hexdigest(),
            "signature": base64.b64encode(sig).decode()}


def connected(core):
    wait_spool(core, lambda st: st["state"] == "connected")


def test_one_job_updates_five_cores_at_once(tmp_path, cloud, keys, web, made):
    jobs = FakeJobs(cloud)
    names = ["core-%d" % i for i in range(1, 6)]
    # Started side by side: five cores on one machine.
    threads = [threading.Thread(target=cloud_core, args=(tmp_path, cloud, keys, web, made, n))
               for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cores = {c.extra["core"]["thing_name"]: c for c in made}
    assert len(cores) == 5
    for c in cores.values():
        connected(c)
    wait_for(lambda: all((n, "$next") in jobs.gets for n in names), TIMEOUT,
             what="every core to ask for its next job")
    doc = publish(tmp_path, web, keys, "0.2.0")
    for n in names:
        jobs.add_job(n, "fleet-update-1", doc)
    for n in names:
        e = jobs.wait_status(n, "fleet-update-1", ("SUCCEEDED", "FAILED"),
                             timeout=TIMEOUT * 3 + HEALTH_S)
        assert e["status"] == "SUCCEEDED", (n, e, jobs.updates_for("fleet-update-1"))
        assert e["statusDetails"] == {"phase": "committed", "version": "0.2.0"}
    for n, c in cores.items():
        st = c.update_status()
        assert st["running_version"] == "0.2.0" and st["job"] == "fleet-update-1", st
        assert c.status()["pid"] == c.pid  # each updated in place
    phases = [u.get("statusDetails", {}).get("phase")
              for u in jobs.updates_for("fleet-update-1")]
    for p in ("downloading", "restarting", "committed"):
        assert p in phases, phases


def test_a_job_for_a_crashing_release_is_reported_failed_by_the_release_restored(
        tmp_path, cloud, keys, web, made):
    jobs = FakeJobs(cloud)
    c = cloud_core(tmp_path, cloud, keys, web, made, "gw")
    connected(c)
    jobs.add_job("gw", "bad-1", publish(tmp_path, web, keys, "0.2.0", CRASH))
    e = jobs.wait_status("gw", "bad-1", ("SUCCEEDED", "FAILED"), timeout=TIMEOUT * 3 + HEALTH_S)
    assert e["status"] == "FAILED"
    assert "stopped during its health window" in e["statusDetails"]["reason"], e
    assert c.update_status()["running_version"] == "0.1.0"


@pytest.mark.parametrize("change,reason", [
    ({"sha256": "0" * 64}, "does not have the SHA-256"),
    ({"signature": base64.b64encode(b"\1" * 64).decode()}, "bad signature"),
    ({"signature": "not base64!"}, "signature must be"),
    ({"url": None}, "needs \"url\" and \"sha256\""),
    ({"not_before": "tomorrow"}, "not_before must be"),
    ({"window": {"start": "25:00", "end": "01:00"}}, "window must be"),
])
def test_bad_update_jobs_fail_with_their_reason_and_change_nothing(
        tmp_path, cloud, keys, web, made, change, reason):
    jobs = FakeJobs(cloud)
    c = cloud_core(tmp_path, cloud, keys, web, made, "gw")
    connected(c)
    doc = publish(tmp_path, web, keys, "0.2.0")
    doc.update(change)
    doc = {k: v for k, v in doc.items() if v is not None}
    jobs.add_job("gw", "job-x", doc)
    e = jobs.wait_status("gw", "job-x", ("SUCCEEDED", "FAILED"), timeout=TIMEOUT * 2)
    assert e["status"] == "FAILED" and reason in e["statusDetails"]["reason"], e
    assert c.update_status()["running_version"] == "0.1.0"
    assert c.status()["pid"] == c.pid


def test_a_scheduled_job_waits_for_not_before(tmp_path, cloud, keys, web, made):
    jobs = FakeJobs(cloud)
    c = cloud_core(tmp_path, cloud, keys, web, made, "gw")
    connected(c)
    doc = publish(tmp_path, web, keys, "0.2.0")
    not_before = int(time.time()) + 3 * SLOW
    doc["not_before"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(not_before))
    jobs.add_job("gw", "later-1", doc)
    wait_for(lambda: any(u.get("statusDetails", {}).get("phase") == "scheduled"
                         for u in jobs.updates_for("later-1")), TIMEOUT, what="scheduled")
    assert web.ranges == []  # nothing fetched before its time
    e = jobs.wait_status("gw", "later-1", ("SUCCEEDED", "FAILED"), timeout=TIMEOUT * 3)
    assert e["status"] == "SUCCEEDED", e
    assert time.time() >= not_before
    first = jobs.updates_for("later-1")[0]
    assert first["statusDetails"]["not_before"] == doc["not_before"]


def test_a_job_outside_its_window_is_scheduled_for_the_window(tmp_path, cloud, keys, web, made):
    jobs = FakeJobs(cloud)
    c = cloud_core(tmp_path, cloud, keys, web, made, "gw")
    connected(c)
    doc = publish(tmp_path, web, keys, "0.2.0")
    now = time.gmtime()
    start = (now.tm_hour * 60 + now.tm_min + 120) % 1440
    doc["window"] = {"start": "%02d:%02d" % divmod(start, 60),
                     "end": "%02d:%02d" % divmod((start + 60) % 1440, 60)}
    jobs.add_job("gw", "night-1", doc)
    wait_for(lambda: jobs.updates_for("night-1"), TIMEOUT, what="a status")
    u = jobs.updates_for("night-1")[0]
    assert u["status"] == "IN_PROGRESS" and u["statusDetails"]["phase"] == "scheduled"
    assert u["statusDetails"]["not_before"].endswith("%s:00Z" % doc["window"]["start"])
    assert web.ranges == []
    assert json.dumps(c.update_status()["phase"]) == '"idle"'
