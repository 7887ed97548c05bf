"""bench/connectors.py BUILD_DIR: the connectors' figures (issue 18).

  modbus     read-holding-registers round trips through sedged (a paho
             client publishes GG's request, waits for the response; one at
             a time) vs libmodbus called directly (bench/modbus_direct) on
             the same pymodbus server
  http-sink  messages/s from a publisher to a local HTTP server
             (Python's http.server) through the sink, batch_max 1 and 100
  serial     bytes/s through the serial connector on a socat pty pair:
             MQTT -> serial line (a paho client publishes GG's write
             requests of the connector's largest write, 128000 bytes, a
             reader on the far end counts the bytes) and serial line ->
             MQTT (a writer on the far end, the connector's polling read
             publishes, a paho subscriber counts the bytes); each timed
             from the first byte sent to the last counted, median of
             BENCH_SERIAL_RUNS; the reference is the same bytes written
             and read on another pty pair by one Python process (what the
             pty itself allows)
  memory     each connector's private dirty memory (Private_Dirty of
             smaps_rollup) at rest, a second after it started, and after
             its traffic; beside the http-sink's, the floor under it:
             bench/curl_floor, a program that only links libcurl and starts
             it. Private_Clean is printed too but is no measure of a
             process: file pages count as private clean while no other
             process maps them, so it moves with what else runs.

Prints a markdown table, or with --kv one key=value line per figure (for
bench/sections/connectors.sh). Environment: BENCH_MODBUS_N (500),
BENCH_SINK_N (2000), BENCH_SERIAL_BYTES (1024000: 8 writes of 128000),
BENCH_SERIAL_RUNS (3).
"""
import json
import os
import select
import statistics
import threading
import tty
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
from connectors_helpers import (PtyPair, connector_group, http_server, modbus_server,  # noqa: E402
                               status_of)
from groups_helpers import deploy_ok  # noqa: E402

MODBUS_N = int(os.environ.get("BENCH_MODBUS_N", "500"))
SINK_N = int(os.environ.get("BENCH_SINK_N", "2000"))
SERIAL_BYTES = int(os.environ.get("BENCH_SERIAL_BYTES", "1024000"))
SERIAL_RUNS = int(os.environ.get("BENCH_SERIAL_RUNS", "3"))
SERIAL_WRITE = 128000  # the connector's largest write (connectors/serial/request.h)
SERIAL_READ = 63994    # and its largest read, here per poll
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


def line_fd(path):
    """The pty at `path`, raw, non-blocking: the far end's side."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


def serial_data():
    """SERIAL_BYTES of printable ASCII (the connector's type ascii)."""
    unit = bytes(range(0x21, 0x7f))
    return (unit * (SERIAL_BYTES // len(unit) + 1))[:SERIAL_BYTES]


def line_direct(src, dst, data):
    """bytes/s of `data` written on pty `src` and read on `dst` by this
    process alone, in the connector's largest writes."""
    w, r = line_fd(src), line_fd(dst)
    try:
        view, sent, got = memoryview(data), 0, []
        n = 0
        t = time.monotonic()
        while n < len(data):
            readable, writable, _ = select.select([r], [w] if sent < len(data) else [], [], 10)
            if not readable and not writable:
                raise RuntimeError("pty pair stalled at %d of %d bytes" % (n, len(data)))
            if writable:
                try:
                    sent += os.write(w, view[sent:sent + SERIAL_WRITE])
                except BlockingIOError:
                    pass
            if readable:
                try:
                    got.append(os.read(r, 1 << 16))
                    n += len(got[-1])
                except BlockingIOError:
                    pass
        rate = len(data) / (time.monotonic() - t)
        assert b"".join(got) == data, "the pty pair changed the bytes"
        return rate
    finally:
        os.close(w)
        os.close(r)


def read_all(fd, n, out):
    """Read n bytes from fd into out["data"], the time of the last in out["t"]."""
    got, have = [], 0
    deadline = time.monotonic() + 300
    while have < n and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            try:
                got.append(os.read(fd, 1 << 16))
                have += len(got[-1])
            except BlockingIOError:
                pass
    out["t"] = time.monotonic()
    out["data"] = b"".join(got)


def write_all(fd, data):
    view, sent = memoryview(data), 0
    while sent < len(data):
        select.select([], [fd], [], 1)
        try:
            sent += os.write(fd, view[sent:sent + SERIAL_WRITE])
        except BlockingIOError:
            pass


def serial_conn(root):
    data = serial_data()
    ref = PtyPair("sedge-bench-ref%d" % os.getpid())
    try:
        direct_w = [line_direct(ref.a, ref.b, data) for _ in range(SERIAL_RUNS)]
        direct_r = [line_direct(ref.b, ref.a, data) for _ in range(SERIAL_RUNS)]
    finally:
        ref.stop()
    pty = PtyPair("sedge-bench-ser%d" % os.getpid())
    try:
        sedge = conftest.Sedge(os.path.join(root, "serial")).start()
        deploy_ok(sedge, connector_group(
            [{"name": "port1", "type": "serial",
              "parameters": {"serial_port": pty.a, "baud_rate": 115200, "timeout_ms": 10000,
                             "polling_read": True, "polling_read_length": SERIAL_READ,
                             "polling_interval_ms": 1, "polling_read_type": "ascii"},
              "resources": [{"type": "device", "path": pty.a, "access": "rw"}]}],
            [("thing:t2", "serial/+/write/#", "connector:port1"),
             ("connector:port1", "serial/#", "thing:t1")]))
        figures["serial_rest"] = at_rest(sedge, "port1")
        reader = sedge.client("t1")
        reader.subscribe("serial/#", qos=1)
        sender = sedge.client("t2")
        far = line_fd(pty.b)
        write_topic = "serial/t2/write/" + pty.a[1:]
        chunks = [json.dumps({"data": data[i:i + SERIAL_WRITE].decode(), "type": "ascii",
                              "id": "w%d" % i}) for i in range(0, len(data), SERIAL_WRITE)]
        writes, reads = [], []
        for _ in range(SERIAL_RUNS):
            out = {}
            th = threading.Thread(target=read_all, args=(far, len(data), out))
            th.start()
            t = time.monotonic()
            for c in chunks:
                sender.publish(write_topic, c, qos=1, wait=False)
            th.join()
            assert out["data"] == data, "%d of %d bytes at the far end" % (len(out["data"]),
                                                                          len(data))
            writes.append(len(data) / (out["t"] - t))
            for m in reader.get_many(len(chunks)):
                assert json.loads(m.payload)["response"]["status"] == "success", m.payload
        for _ in range(SERIAL_RUNS):
            th = threading.Thread(target=write_all, args=(far, data))
            got = []
            n = 0
            t = time.monotonic()
            th.start()
            while n < len(data):
                m = reader.get(timeout=60)
                if "/read_response/" in m.topic:
                    got.append(json.loads(m.payload)["data"])
                    n += len(got[-1])
            reads.append(len(data) / (time.monotonic() - t))
            th.join()
            assert "".join(got).encode() == data, "the bytes published are not those written"
        os.close(far)
        figures["serial_write_rate"] = statistics.median(writes)
        figures["serial_write_direct_rate"] = statistics.median(direct_w)
        figures["serial_read_rate"] = statistics.median(reads)
        figures["serial_read_direct_rate"] = statistics.median(direct_r)
        sedge.close_clients()
        sedge.stop()
    finally:
        pty.stop()


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
    serial_conn(root)
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
    for label, key in (("MQTT -> serial line", "serial_write"),
                       ("serial line -> MQTT", "serial_read")):
        rows.append(("serial connector, %s (bytes/s)" % label, "%.0f" % f[key + "_rate"],
                     "%.0f pty pair direct" % f[key + "_direct_rate"],
                     "%.2fx" % (f[key + "_rate"] / f[key + "_direct_rate"])))
    for name, key in (("modbus", "modbus_rest"), ("http-sink", "sink_rest"),
                      ("serial", "serial_rest"), ("metrics", "metrics_rest")):
        kb = f[key][0]
        rows.append(("%s connector, private dirty memory at rest (KB)" % name, str(kb),
                     "1024 target", "%.2fx" % (kb / 1024)))
    rows.append(("a program that only links libcurl and starts it, private dirty (KB)",
                 str(f["curl_floor"][0]), "-", "-"))
    print("| | sedged | reference | ratio |\n| --- | ---: | ---: | ---: |")
    for r in rows:
        print("| %s |" % " | ".join(r))


main()
