"""The amd64 packages under a real systemd (make test-systemd; not in make
test: it downloads a Debian 12 root). A minbase bookworm root made by
debootstrap (cached in build-deb/systemd-root; a copy of it per run), the
packages installed into it with apt as a user does (`apt-get install
./sedge_*.deb ...`), sedge.service enabled (`systemctl enable`: the
package enables nothing), and sedge-boot-test.service, a oneshot After=
and Wants=sedge.service that runs systemd_boot_tour.sh (see its header)
and powers off. systemd-nspawn boots it with systemd as PID 1
(`--keep-unit`: this machine's PID 1 need not be systemd; `--register=no`:
no machined) and the test reads the tour's PASS/FAIL lines. Skipped, saying why, when not root, when debootstrap or
systemd-nspawn is missing (make deps-systemd installs them) or when the
Debian mirror cannot be reached."""

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                      check=True).stdout.strip()
DEBS = REPO / "build-deb" / ARCH
BASE = REPO / "build-deb" / "systemd-root"        # the cached debootstrap
APT_CACHE = REPO / "build-deb" / "systemd-apt-cache"  # the packages' dependencies, kept
ROOT = REPO / "build-deb" / "systemd-boot"        # this run's copy
MIRROR = os.environ.get("SEDGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
INCLUDE = "systemd,systemd-sysv,dbus,mosquitto-clients,python3,ca-certificates"
BOOT_TIMEOUT = int(os.environ.get("SEDGE_BOOT_TIMEOUT", "300"))

TEST_UNIT = """[Unit]
Description=Sedge under systemd: the tour (tests/package/systemd_boot_tour.sh)
After=sedge.service
# Wants=, not Requires=: the tour restarts and stops sedge.service, which
# would stop a unit that Requires= it, the tour with it.
Wants=sedge.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/sh /usr/local/lib/sedge-boot-test/tour.sh /var/lib/sedge-boot-test/results
StandardOutput=journal+console
TimeoutStartSec=240

[Install]
WantedBy=multi-user.target
"""


def skip_reason():
    if ARCH != "amd64":
        return "the systemd boot test runs the amd64 packages (this is %s)" % ARCH
    if os.geteuid() != 0:
        return "debootstrap, chroot and systemd-nspawn take root"
    for tool in ("debootstrap", "systemd-nspawn"):
        if not shutil.which(tool):
            return "%s is not installed (make deps-systemd: scripts/deps.sh systemd)" % tool
    if not BASE.is_dir():
        try:
            urllib.request.urlopen("%s/dists/bookworm/Release" % MIRROR, timeout=15).read(1)
        except OSError as e:
            return "the Debian mirror %s cannot be reached (%s)" % (MIRROR, e)
    return None


def run(cmd, timeout=900, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, "%s: exit %d\n%s\n%s" % (" ".join(map(str, cmd)), r.returncode,
                                                      r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


@pytest.fixture(scope="module")
def booted_root():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    debs = [next(DEBS.glob("%s_*.deb" % p), None) for p in ("sedge", "libsedge0", "python3-sedge")]
    if None in debs:
        pytest.fail("no packages in %s: make deb first (make test-systemd does)" % DEBS)
    if not BASE.is_dir():
        tmp = BASE.with_name(BASE.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "--include=" + INCLUDE, "bookworm", str(tmp),
             MIRROR], timeout=1800)
        tmp.rename(BASE)
    shutil.rmtree(ROOT, ignore_errors=True)
    run(["cp", "-a", "--reflink=auto", str(BASE), str(ROOT)])
    # apt inside the root: the host's resolver, the dependencies kept between runs.
    shutil.copy("/etc/resolv.conf", ROOT / "etc" / "resolv.conf")
    APT_CACHE.mkdir(exist_ok=True)
    archives = ROOT / "var" / "cache" / "apt" / "archives"
    for deb in debs:
        shutil.copy(deb, ROOT / "tmp")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["chroot", str(ROOT), "apt-get", "update", "-q"], env=env)
    install = ("cd /tmp && apt-get install -y -q --no-install-recommends " +
               " ".join("./" + d.name for d in debs))
    # The dependencies (OpenCV's runtime is most of them) from the kept
    # copies or this machine's own apt cache when there; apt checks their
    # hashes and downloads the rest.
    for line in run(["chroot", str(ROOT), "sh", "-c", install + " --print-uris -qq"],
                    env=env).splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].endswith(".deb"):
            for cache in (APT_CACHE, Path("/var/cache/apt/archives")):
                if (cache / fields[1]).is_file():
                    shutil.copy(cache / fields[1], archives)
                    break
    run(["chroot", str(ROOT), "sh", "-c", install], env=env)
    for deb in archives.glob("*.deb"):
        shutil.copy(deb, APT_CACHE)
    lib = ROOT / "usr" / "local" / "lib" / "sedge-boot-test"
    lib.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "tests" / "package" / "systemd_boot_tour.sh", lib / "tour.sh")
    (ROOT / "etc" / "systemd" / "system" / "sedge-boot-test.service").write_text(TEST_UNIT)
    # As the user does (the package installs the unit, enables nothing).
    run(["chroot", str(ROOT), "systemctl", "enable", "sedge.service", "sedge-boot-test.service"])
    # No login prompt on the console: nothing waits for it.
    run(["chroot", str(ROOT), "systemctl", "mask", "console-getty.service"])
    started = time.monotonic()
    boot = subprocess.Popen(["systemd-nspawn", "-D", str(ROOT), "--boot", "--register=no",
                             "--keep-unit", "--private-network", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = boot.communicate(timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        boot.terminate()  # nspawn powers the container off on SIGTERM
        try:
            out, err = boot.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            boot.kill()
            out, err = boot.communicate()
    boot = subprocess.CompletedProcess(boot.args, boot.returncode, out, err)
    took = time.monotonic() - started
    results = ROOT / "var" / "lib" / "sedge-boot-test" / "results"
    return {"boot": boot, "took": took,
            "results": results.read_text() if results.exists() else "",
            "journal": ROOT / "var" / "lib" / "sedge-boot-test" / "sedge.journal"}


def test_the_tour_passes_under_systemd_as_pid_1(booted_root):
    boot, lines = booted_root["boot"], booted_root["results"].splitlines()
    print("\nsystemd-nspawn --boot: exit %d after %.0f s" % (boot.returncode, booted_root["took"]))
    for line in lines:
        print(line)
    assert lines and lines[-1] == "DONE", "the tour did not finish (nspawn exit %d)\n%s\n%s" % (
        boot.returncode, boot.stdout[-4000:], boot.stderr[-4000:])
    failed = [l for l in lines if not l.startswith("PASS ") and l != "DONE"]
    journal = booted_root["journal"]
    assert not failed, "\n".join(failed) + "\n\nsedge's journal:\n" + (
        journal.read_text()[-4000:] if journal.exists() else "(none)")
    assert len(lines) >= 15
