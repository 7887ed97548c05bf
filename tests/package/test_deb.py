"""The Debian packages (make deb): lintian has nothing to say but what
debian/*.lintian-overrides justifies, and deb_tour.sh installs them into
a private mount and network namespace and does what a user does (see its
header): start sedged as the unit says, the README's tour, functions on
the packaged SDKs, remove and purge."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                      check=True).stdout.strip()
DEBS = REPO / "build-deb" / ARCH


@pytest.fixture(scope="module")
def debs():
    if not list(DEBS.glob("sedge_*_%s.deb" % ARCH)):
        pytest.fail("no packages in %s: make deb first (make test-package does)" % DEBS)
    return DEBS


def test_lintian_is_clean_but_for_the_justified_overrides(debs):
    report = (debs / "lintian.txt").read_text()
    problems = [l for l in report.splitlines() if l[:2] in ("E:", "W:")]
    assert not problems, "\n".join(problems)
    for overrides in (REPO / "debian").glob("*.lintian-overrides"):
        previous = ""
        for line in overrides.read_text().splitlines():
            if line and not line.startswith("#"):
                assert previous.startswith("#"), "%s: no reason given for %s" % (overrides, line)
            previous = line


def test_packages_hold_what_the_reference_says(debs):
    def files(pkg):
        deb = next(debs.glob("%s_*.deb" % pkg))
        out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
        return {l.split()[5].lstrip(".") for l in out.splitlines()}
    sedge = files("sedge")
    for f in ("/usr/sbin/sedged", "/usr/bin/sedgectl", "/usr/libexec/sedge/sedge-sandbox",
              "/usr/libexec/sedge/connectors/modbus", "/etc/sedge/sedge.json",
              "/lib/systemd/system/sedge.service", "/usr/share/man/man8/sedged.8.gz",
              "/usr/share/man/man1/sedgectl.1.gz", "/usr/share/man/man5/sedge.json.5.gz"):
        assert f in sedge, f
    assert any(f.endswith("/libsedge.so.0") for f in files("libsedge0"))
    dev = files("libsedge-dev")
    assert "/usr/include/sedge.h" in dev and any(f.endswith("/sedge.pc") for f in dev)
    assert "/usr/lib/python3/dist-packages/sedge/__init__.py" in files("python3-sedge")


@pytest.mark.skipif(os.geteuid() != 0, reason="installing into a namespace takes root")
def test_install_tour_remove_and_purge_in_a_namespace(debs):
    def installed():
        return subprocess.run(["dpkg-query", "-W", "-f=${Status}", "sedge"], capture_output=True,
                              text=True).stdout
    before = installed()
    # Under /tmp, 0755: the functions' user (nobody) reaches their files in it.
    work = tempfile.mkdtemp(prefix="sedge-deb-tour.")
    os.chmod(work, 0o755)
    try:
        r = subprocess.run(["unshare", "--mount", "--net", "sh",
                            str(REPO / "tests" / "package" / "deb_tour.sh"), str(debs), work],
                           capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert r.returncode == 0 and r.stdout.strip().endswith("all ok"), r.stdout + r.stderr
    for line in r.stdout.splitlines():
        print(line)
    # The machine itself is untouched.
    assert installed() == before
