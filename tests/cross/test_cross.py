"""The cross-built packages (make deb ARCH=arm64|armhf) on amd64, under
qemu-user-static: the packaged sedged starts on its packaged layout,
answers sedgectl (cross-built too), carries QoS 1 through a persistent
session to mosquitto's clients across a disconnection, and stops cleanly.
The binaries' sizes and sedged's idle RSS under qemu (qemu's own memory
included: indicative only) go to build-deb/cross-figures.txt.

`make test-cross` builds the packages and runs this; it is not part of
`make test` (it needs `make deps-cross`: the cross toolchains and qemu).
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QEMU = {"arm64": "qemu-aarch64-static", "armhf": "qemu-arm-static"}
FIGURES = REPO / "build-deb" / "cross-figures.txt"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def mosquitto(*args, timeout=30):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def figures():
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text("")
    yield
    print("\n" + FIGURES.read_text())


@pytest.mark.parametrize("arch", ["arm64", "armhf"])
def test_cross_built_sedged_and_sedgectl_under_qemu(arch, tmp_path):
    debs = list((REPO / "build-deb" / arch).glob("sedge_*_%s.deb" % arch))
    assert debs, "no sedge package for %s: make deb ARCH=%s" % (arch, arch)
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    qemu = QEMU[arch]
    sedged, sedgectl = root / "usr/sbin/sedged", root / "usr/bin/sedgectl"
    sandbox = root / "usr/libexec/sedge/sedge-sandbox"
    machine = {"arm64": "aarch64", "armhf": "ARM,"}[arch]
    assert machine in subprocess.run(["file", "-L", str(sedged)], capture_output=True,
                                     text=True).stdout
    # The sandbox's seccomp filter is the target's (its AUDIT_ARCH_* in the
    # program's first check), not the build machine's.
    audit_arch = {"arm64": 0xC00000B7, "armhf": 0x40000028}[arch]
    blob = sandbox.read_bytes()
    assert audit_arch.to_bytes(4, "little") in blob
    port = free_port()
    cfg = tmp_path / "sedge.json"
    cfg.write_text(json.dumps({"data_dir": "data", "listeners": [
        {"type": "tcp", "bind": "127.0.0.1:%d" % port}]}))
    log = tmp_path / "sedged.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([qemu, str(sedged), "--config", str(cfg)], stdout=out,
                                stderr=out, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        ready_ms = (time.monotonic() - started) * 1000
        time.sleep(1.0)
        idle_rss = rss_kb(proc.pid)

        def ctl(*args):
            return subprocess.run([qemu, str(sedgectl), "--data-dir", str(tmp_path / "data")]
                                  + list(args), capture_output=True, text=True, timeout=60)
        r = ctl("status", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["version"] == "0.1.0"
        assert ctl("--version").stdout == "sedgectl 0.1.0\n"

        p = str(port)
        r = mosquitto("mosquitto_sub", "-h", "127.0.0.1", "-p", p, "-i", "reader", "-c", "-q",
                      "1", "-t", "plant/#", "-E")
        assert r.returncode == 0, r.stderr
        for i in range(3):
            r = mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", p, "-q", "1", "-t",
                          "plant/line%d" % i, "-m", "queued %d" % i)
            assert r.returncode == 0, r.stderr
        r = mosquitto("mosquitto_sub", "-h", "127.0.0.1", "-p", p, "-i", "reader", "-c", "-q",
                      "1", "-t", "plant/#", "-v", "-C", "3", "-W", "30")
        assert r.stdout.splitlines() == ["plant/line%d queued %d" % (i, i) for i in range(3)], \
            r.stdout + r.stderr
        r = ctl("things", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["things"] == [], r.stdout

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
        assert "stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sizes = {p.name: p.stat().st_size for p in (sedged, sedgectl, sandbox)}
    with open(FIGURES, "a") as f:
        f.write("%s: sedged %d bytes, sedgectl %d, sedge-sandbox %d (static); idle RSS under "
                "%s %.1f MB (qemu included); start to ready %.0f ms under qemu\n"
                % (arch, sizes["sedged"], sizes["sedgectl"], sizes["sedge-sandbox"], qemu,
                   idle_rss / 1024, ready_ms))
