"""bench/connectors.py BUILD_DIR: the connectors' figures (issue 18).

  modbus     read-holding-registers round trips through sedged (a paho
             client publishes GG's request, waits for the response; one at
             a time) vs libmodbus called directly (bench/modbus_direct) on
             the same pymodbus server
  http-sink  messages/s from a publisher to a local HTTP server
             (Python's http.server) through the sink, batch_max 1 and 100
  memory     each connector's private dirty memory (Private_Dirty of
             smaps_rollup) at rest, a second after it started, and after
             its traffic; beside the http-sink's, the floor under it:
             bench/curl_floor, a program that only links libcurl and starts
             it. Private_Clean is printed too but is no measure of a
             process: file pages count as private clean while no other
             process maps them, so it moves with what else runs.

Prints a markdown table, or with --kv one key=value line per figure (for
bench/sections/connectors.sh). Environment: BENCH_MODBUS_N (500),
BENCH_SINK_N (2000).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build"))
os.environ["SEDGE_BUILD"] = BUILD
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import conftest  # noqa: E402
from connectors_helpers import connector_group, http_server, modbus_server, status_of  # noqa: E402
from groups_helpers import deploy_ok  # noqa: E402

MODBUS_N = int(os.environ.get("BENCH_MODBUS_N", "500"))
SINK_N = int(os.environ.get("BENCH_SINK_N", "2000"))
rows = []
figures = {}


def leaf(pid):
    """The connector itself: the instance's pid is sedge-sandbox's, whose
    child (in the new PID namespace) runs the program."""
    while True:
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            return pid
        if not kids:
            return pid
        pid = int(kids[0])


def private_kb(pid):
    """(Private_Dirty, Private_Clean) of the connector's process, in KB."""
    pid = leaf(pid)
    dirty = clean = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                dirty = int(line.split()[1])
            elif line.startswith("Private_Clean:"):
                clean = int(line.split()[1])
    return dirty, clean


def at_rest(sedge, name):
    """The connector's private memory a second after its instance started."""
    conftest.wait_for(lambda: (status_of(sedge, name) or {}).get("instances"),
                      what="connector %s running" % name)
    time.sleep(1.0)
    return private_kb(status_of(sedge, name)["instances"][0]["pid"])


def modbus(root):
    port = conftest.free_port()
    server = modbus_server("tcp", port)
    try:
        direct = subprocess.run([os.path.join(BUILD, "bench", "modbus_direct"), str(port),
                                 str(MODBUS_N)], capture_output=True, text=True, check=True)
        ref = float(direct.stdout.split()[-1])
        sedge = conftest.Sedge(os.path.join(root, "modbus")).start()
        deploy_ok(sedge, connector_group(
            [{"name": "plc", "type": "modbus",
              "parameters": {"transport": "tcp", "host": "127.0.0.1", "port": port}}],
            [("thing:t2", "modbus/adapter/request", "connector:plc"),
             ("connector:plc", "modbus/adapter/#", "thing:t2")]))
        figures["modbus_rest"] = at_rest(sedge, "plc")
        c = sedge.client("t2")
        c.subscribe("modbus/adapter/response", qos=0)
        req = json.dumps({"request": {"operation": "ReadHoldingRegistersRequest", "device": 1,
                                      "address": 0, "count": 3}, "id": "b"})
        for _ in range(20):
            c.publish("modbus/adapter/request", req, qos=0)
            c.get()
        t = time.monotonic()
        for _ in range(MODBUS_N):
            c.publish("modbus/adapter/request", req, qos=0)
            c.get()
        rate = MODBUS_N / (time.monotonic() - t)
        figures["modbus_rate"] = rate
        figures["modbus_direct_rate"] = ref
        figures["modbus_used"] = private_kb(status_of(sedge, "plc")["instances"][0]["pid"])
        sedge.close_clients()
        sedge.stop()
    finally:
        server.stop()


def sink(root, batch):
    port = conftest.free_port()
    server = http_server(port)
    try:
        sedge = conftest.Sedge(os.path.join(root, "sink%d" % batch)).start()
        deploy_ok(sedge, connector_group(
            [{"name": "hook", "type": "http-sink",
              "parameters": {"url": "http://127.0.0.1:%d/x" % port, "batch_max": batch,
                             "batch_ms": 20, "max_queue": 100000}, "max_queue": 100000}],
            [("thing:t2", "data/#", "connector:hook")]))
        rest = at_rest(sedge, "hook")
        c = sedge.client("t2")
        t = time.monotonic()
        for i in range(SINK_N):
            c.publish("data/x", b'{"n": %d}' % i, qos=1, wait=(i % 100 == 99))
        import urllib.request

        def count():
            with urllib.request.urlopen("http://127.0.0.1:%d/received" % port) as r:
                posts = json.loads(r.read())
            return sum(int(p["headers"].get("X-Sedge-Count", "1")) for p in posts)
        conftest.wait_for(lambda: count() >= SINK_N, timeout=300, interval=0.2,
                          what="every message posted")
        rate = SINK_N / (time.monotonic() - t)
        used = private_kb(status_of(sedge, "hook")["instances"][0]["pid"])
        sedge.close_clients()
        sedge.stop()
        return rate, rest, used
    finally:
        server.stop()


def idle(root):
    sedge = conftest.Sedge(os.path.join(root, "idle")).start()
    deploy_ok(sedge, connector_group(
        [{"name": "sys", "type": "metrics", "parameters": {"interval_ms": 10000}}], []))
    figures["metrics_rest"] = at_rest(sedge, "sys")
    sedge.stop()


def curl_floor(*args):
    out = subprocess.run([os.path.join(BUILD, "bench", "curl_floor")] + list(args),
                         capture_output=True, text=True, check=True).stdout.split()
    kv = dict(f.split("=", 1) for f in out)
    return int(kv["private_dirty_kb"]), int(kv["private_clean_kb"])


def main():
    root = tempfile.mkdtemp(prefix="bench-conn-")
    modbus(root)
    one, figures["sink_rest"], figures["sink_used"] = sink(root, 1)
    hundred, _, _ = sink(root, 100)
    figures["sink1_rate"], figures["sink100_rate"] = one, hundred
    idle(root)
    figures["curl_floor"] = curl_floor()
    figures["curl_linked"] = curl_floor("linked")
    if "--kv" in sys.argv[2:]:
        for k, v in figures.items():
            if isinstance(v, tuple):
                print("%s_dirty_kb=%d" % (k, v[0]))
                print("%s_clean_kb=%d" % (k, v[1]))
            else:
                print("%s=%.1f" % (k, v))
        return
    f = figures
    rows.append(("Modbus TCP request round trips through sedged, one at a time (req/s)",
                 "%.0f" % f["modbus_rate"], "%.0f libmodbus direct" % f["modbus_direct_rate"],
                 "%.2fx" % (f["modbus_rate"] / f["modbus_direct_rate"])))
    rows.append(("HTTP sink, %d messages, batch_max 1 (msg/s)" % SINK_N, "%.0f" % one, "-", "-"))
    rows.append(("HTTP sink, %d messages, batch_max 100 (msg/s)" % SINK_N, "%.0f" % hundred,
                 "%.0f batch_max 1" % one, "%.2fx" % (hundred / one)))
    for name, key in (("modbus", "modbus_rest"), ("http-sink", "sink_rest"),
                      ("metrics", "metrics_rest")):
        kb = f[key][0]
        rows.append(("%s connector, private dirty memory at rest (KB)" % name, str(kb),
                     "1024 target", "%.2fx" % (kb / 1024)))
    rows.append(("a program that only links libcurl and starts it, private dirty (KB)",
                 str(f["curl_floor"][0]), "-", "-"))
    print("| | sedged | reference | ratio |\n| --- | ---: | ---: | ---: |")
    for r in rows:
        print("| %s |" % " | ".join(r))


main()
