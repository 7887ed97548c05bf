"""bench/ota_bench.py BUILD WORK: the over-the-air update, measured.

A core (BUILD/sedged, the installed "base") with an uplink to a local
mosquitto over mutual TLS (the cloud) and an "ota" section; a bundle of
this build's installed tree (cmake --install --prefix, then sedgectl
bundle create) served over HTTPS on loopback; an AWS
IoT Jobs stand-in on the cloud broker sends one `sedge.update` job. While
it runs, a probe opens an MQTT connection (CONNECT, CONNACK) every 2 ms.

Prints key=value lines:
  bundle_mb          the bundle's size
  job_to_commit_s    notify-next sent -> SUCCEEDED received
  gap_update_ms      the longest time no CONNECT was accepted during the update
  gap_restart_ms     the same for a plain restart (SIGTERM, start): the reference
  dirty_ota_mb       private dirty memory at rest after the update, ota configured
  dirty_plain_mb     the same core without an "ota" section
  disk_ota_mb        disk used under the OTA root after the update (two slots)
or error=... when something failed.
"""

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as paho

BUILD = Path(sys.argv[1]).resolve()
WORK = Path(sys.argv[2]).resolve()
SEDGED, SEDGECTL = BUILD / "sedged", BUILD / "sedgectl"
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
CORE = "edge-core"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ctl(*args, data=None):
    cmd = [str(SEDGECTL)] + (["--data-dir", str(data)] if data else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def ca(directory, *names):
    r = ctl("ca", "init", "--dir", directory, "--core-name", "localhost", "--san", "localhost")
    assert r.returncode == 0, r.stderr
    for n in names:
        r = ctl("cert", "issue", n, "--dir", directory)
        assert r.returncode == 0, r.stderr
    return Path(directory)


def serve(directory, certs):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            data = (directory / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(certs / "core.pem"), str(certs / "core.key"))
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class Jobs:
    """AWS IoT Jobs' MQTT topics for one thing and one job."""

    def __init__(self, port, certs):
        self.execution = None
        self.updates = []  # (monotonic time, status, details)
        self.c = paho.Client(client_id="aws-jobs", protocol=paho.MQTTv311)
        self.c.tls_set(str(certs / "ca.pem"), str(certs / "aws-jobs.pem"),
                       str(certs / "aws-jobs.key"))
        self.c.on_message = self.on_message
        self.c.connect("localhost", port)
        self.c.subscribe("$aws/things/+/jobs/#", 1)
        self.c.loop_start()

    def send(self, topic, body):
        self.c.publish("$aws/things/%s/jobs/%s" % (CORE, topic), json.dumps(body), qos=1)

    def on_message(self, c, u, m):
        rest = m.topic.split("/")[4:]
        try:
            req = json.loads(m.payload or b"{}")
        except ValueError:
            req = {}
        token = req.get("clientToken")
        if rest == ["$next", "get"]:
            body = {"execution": self.execution} if self.execution else {}
        elif len(rest) == 2 and rest[1] == "update":
            self.updates.append((time.monotonic(), req.get("status"), req.get("statusDetails")))
            if self.execution and req.get("status") in ("SUCCEEDED", "FAILED"):
                self.execution["status"] = req["status"]
            body = {}
            rest = [rest[0], "update", "accepted"]
        else:
            return
        body["clientToken"] = token
        self.send("/".join(rest) + ("/accepted" if rest[-1] == "get" else ""), body)

    def add(self, job, doc):
        self.execution = {"jobId": job, "thingName": CORE, "status": "QUEUED", "versionNumber": 1,
                          "executionNumber": 1, "jobDocument": doc}
        self.send("notify-next", {"timestamp": int(time.time()), "execution": self.execution})


class Probe:
    """CONNECT/CONNACK every 2 ms; `ok` holds the times of the accepted ones."""

    def __init__(self, port):
        self.port, self.ok, self.stop = port, [], threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            cid = b"probe-%d" % n
            var = b"\x00\x04MQTT\x04\x02\x00\x3c"
            payload = len(cid).to_bytes(2, "big") + cid
            pkt = bytes([0x10, len(var) + len(payload)]) + var + payload
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(pkt)
                    if s.recv(4)[:1] == b"\x20":
                        self.ok.append(time.monotonic())
                    s.sendall(b"\xe0\x00")
            except OSError:
                pass
            time.sleep(0.002)

    def gap_ms(self, t0, t1):
        times = [t for t in self.ok if t0 <= t <= t1]
        if len(times) < 2:
            return None
        return max(b - a for a, b in zip(times, times[1:])) * 1000


def smaps_dirty_mb(pid):
    for line in open("/proc/%d/smaps_rollup" % pid):
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) / 1024
    return None


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    web = ca(WORK / "web")
    cloud = ca(WORK / "cloud", CORE, "aws-jobs")
    keys = WORK / "keys"
    keys.mkdir(exist_ok=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(keys / "r.key")],
                   check=True)
    subprocess.run(["openssl", "pkey", "-in", str(keys / "r.key"), "-pubout", "-out",
                    str(keys / "r.pub")], check=True)
    # Today's release: this build installed into a prefix of its own.
    tree = WORK / "tree"
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(tree)], check=True,
                   stdout=subprocess.DEVNULL)
    www = WORK / "www"
    www.mkdir(exist_ok=True)
    bundle = www / "sedge-0.2.0.sedge"
    r = ctl("bundle", "create", tree, "--version", "0.2.0", "--key", keys / "r.key", "--out",
            bundle)
    assert r.returncode == 0, r.stderr
    with tarfile.open(bundle) as t:
        sig = t.extractfile("manifest.sig").read()
    httpd = serve(www, web)

    cport = free_port()
    (WORK / "cloud.conf").write_text(
        "listener %d 127.0.0.1\ncafile %s/ca.pem\ncertfile %s/core.pem\nkeyfile %s/core.key\n"
        "require_certificate true\nuse_identity_as_username true\npersistence false\n%s"
        "log_type error\n" % (cport, cloud, cloud, cloud, "user root\n" if os.getuid() == 0
                              else ""))
    mosq = subprocess.Popen([MOSQUITTO, "-c", str(WORK / "cloud.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        wait(lambda: socket.socket().connect_ex(("127.0.0.1", cport)) == 0, 10, "the cloud")
        jobs = Jobs(cport, cloud)
        port = free_port()
        base = {"data_dir": "data", "listeners": [{"type": "tcp", "bind": "127.0.0.1:%d" % port}],
                "log_level": "warn", "core": {"thing_name": CORE},
                "cloud": {"endpoint": "localhost:%d" % cport, "ca_file": str(cloud / "ca.pem"),
                          "cert_file": str(cloud / (CORE + ".pem")),
                          "key_file": str(cloud / (CORE + ".key"))}}
        core = WORK / "core"
        core.mkdir(exist_ok=True)
        cfg = dict(base, ota={"trusted_keys": [str(keys / "r.pub")],
                              "ca_file": str(web / "ca.pem"), "health_timeout_s": 60})
        (core / "sedge.json").write_text(json.dumps(cfg))
        log = open(WORK / "sedged.log", "ab")

        def start(directory):
            p = subprocess.Popen([str(SEDGED), "--config", str(directory / "sedge.json")],
                                 stdout=log, stderr=log, cwd=str(directory))
            procs.append(p)
            wait(lambda: ctl("spool", "--json", data=directory / "data").stdout.find(
                '"connected"') >= 0, 30, "the uplink")
            return p

        p = start(core)
        probe = Probe(port)
        wait(lambda: len(probe.ok) > 10, 10, "the probe")
        doc = {"operation": "sedge.update", "url": "https://localhost:%d/%s" % (
            httpd.server_address[1], bundle.name),
            "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(),
            "signature": __import__("base64").b64encode(sig).decode()}
        t0 = time.monotonic()
        jobs.add("bench-update", doc)
        done = wait(lambda: next((u for u in jobs.updates if u[1] in ("SUCCEEDED", "FAILED")),
                                 None), 120, "the job's outcome")
        if done[1] != "SUCCEEDED":
            raise RuntimeError("the update failed: %s" % done[2])
        t1 = done[0]
        time.sleep(0.3)
        gap_update = probe.gap_ms(t0, time.monotonic())
        time.sleep(2)
        dirty_ota = smaps_dirty_mb(p.pid)
        disk = int(subprocess.run(["du", "-sk", str(core / "data" / "ota")], capture_output=True,
                                  text=True).stdout.split()[0]) / 1024
        # The reference: a plain restart of the same core.
        r0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        p = start(core)
        time.sleep(0.3)
        gap_restart = probe.gap_ms(r0, time.monotonic())
        probe.stop.set()
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        plain = WORK / "plain"
        plain.mkdir(exist_ok=True)
        (plain / "sedge.json").write_text(json.dumps(base))
        q = start(plain)
        time.sleep(2)
        dirty_plain = smaps_dirty_mb(q.pid)
        q.send_signal(signal.SIGTERM)
        q.wait(30)
        print("bundle_mb=%.2f" % (bundle.stat().st_size / 1e6))
        print("job_to_commit_s=%.2f" % (t1 - t0))
        print("gap_update_ms=%.0f" % gap_update)
        print("gap_restart_ms=%.0f" % gap_restart)
        print("dirty_ota_mb=%.2f" % dirty_ota)
        print("dirty_plain_mb=%.2f" % dirty_plain)
        print("disk_ota_mb=%.2f" % disk)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        mosq.terminate()
        mosq.wait()
        httpd.shutdown()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line for the section's table
        print("error=%s" % str(e).replace("\n", " ")[:300])
        sys.exit(1)
