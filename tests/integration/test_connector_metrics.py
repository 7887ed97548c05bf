"""The metrics connector: every interval_ms on its topic, the machine's
CPU use in percent and memory in bytes, cross-checked against /proc."""
import json
import os

from connectors_helpers import connector_group
from groups_helpers import deploy_ok


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(key)


def test_metrics_arrive_every_interval_and_match_proc(make_sedge):
    sedge = make_sedge()
    deploy_ok(sedge, connector_group(
        [{"name": "sys", "type": "metrics",
          "parameters": {"interval_ms": 200, "topic": "edge/metrics", "filesystems": ["/usr"]}}],
        [("connector:sys", "edge/metrics", "thing:t1")]))
    reader = sedge.client("t1")
    reader.subscribe("edge/metrics", qos=1)
    docs = [json.loads(m.payload) for m in reader.get_many(3)]
    stamps = [d["timestamp"] for d in docs]
    assert all(100 <= b - a <= 1000 for a, b in zip(stamps, stamps[1:])), stamps
    d = docs[-1]
    assert d["thing"] == "edge-core" and d["interval_ms"] == 200
    assert 0 <= d["cpu"]["percent"] <= 100, d["cpu"]
    with open("/proc/stat") as f:
        cpus = sum(1 for line in f if line.startswith("cpu") and line[3].isdigit())
    assert d["cpu"]["count"] == cpus
    assert d["memory"]["total_bytes"] == meminfo("MemTotal")
    avail = meminfo("MemAvailable")
    assert abs(d["memory"]["available_bytes"] - avail) < max(avail // 10, 64 << 20), d["memory"]
    assert 0 < d["memory"]["available_bytes"] <= d["memory"]["total_bytes"]
    with open("/proc/loadavg") as f:
        assert len(d["load"]) == 3 and all(x >= 0 for x in d["load"])
    st = os.statvfs("/usr")
    fs = d["filesystems"]
    assert fs and fs[0]["path"] == "/usr" and fs[0]["total_bytes"] == st.f_blocks * st.f_frsize
    with open("/proc/net/dev") as f:
        names = {line.split(":")[0].strip() for line in f if ":" in line} - {"lo"}
    assert {n["interface"] for n in d["network"]} == names
    assert isinstance(d["temperatures"], list)


def test_a_busy_machine_shows_in_the_cpu_percent(make_sedge):
    sedge = make_sedge()
    deploy_ok(sedge, connector_group(
        [{"name": "sys", "type": "metrics", "parameters": {"interval_ms": 300,
                                                            "topic": "edge/metrics"}}],
        [("connector:sys", "edge/metrics", "thing:t1")]))
    reader = sedge.client("t1")
    reader.subscribe("edge/metrics", qos=1)
    pid = os.fork()
    if pid == 0:
        while True:
            pass
    try:
        reader.get_many(1)
        busy = [json.loads(m.payload)["cpu"]["percent"] for m in reader.get_many(2)]
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    # One of two cores spinning: about 50 % of the machine, whatever else runs.
    assert max(busy) >= 30, busy
