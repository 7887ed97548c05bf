"""`cmake --install` (what `make install` and the Debian package run): every
file lands in place, and the installed sedged finds its companions —
sedge-sandbox, the connectors, the C SDK and the Python SDK — from its own
location, with no variables and nothing of the build folder.

The install goes into DESTDIR (a fresh directory), so the build's prefix,
whatever it is, is never written on this machine; sedged then runs from
DESTDIR/PREFIX, a prefix moved as a whole.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import conftest
import functions_helpers as fh
from conftest import BUILD, REPO
from functions_fixtures import public_tmp  # noqa: F401 (a fixture)
from functions_helpers import fn, group, invoke_ok, route
from groups_helpers import deploy_ok

ROOT = os.geteuid() == 0
ISOLATION = {} if ROOT else {"isolation": "none"}


def cache_value(name):
    text = (BUILD / "CMakeCache.txt").read_text()
    m = re.search(r"^%s:[A-Z]+=(.*)$" % name, text, re.M)
    assert m, "%s not in CMakeCache.txt" % name
    return m.group(1)


@pytest.fixture(scope="module")
def installed():
    """(prefix directory under DESTDIR, layout) of one install."""
    destdir = fh.public_dir("sedge-install-")
    r = subprocess.run(["cmake", "--install", str(BUILD)], capture_output=True, text=True,
                       env=dict(os.environ, DESTDIR=destdir), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    prefix = cache_value("CMAKE_INSTALL_PREFIX")
    layout = {k: cache_value(v) for k, v in (
        ("lib", "CMAKE_INSTALL_LIBDIR"), ("python", "SEDGE_INSTALL_PYTHONDIR"),
        ("unit", "SEDGE_SYSTEMD_UNITDIR"))}
    for path in Path(destdir).rglob("*"):  # what a function's user reads
        if path.is_dir():
            path.chmod(0o755)
    yield Path(destdir + prefix), Path(destdir), prefix, layout
    shutil.rmtree(destdir, ignore_errors=True)


def test_install_puts_every_file_in_place(installed):
    top, destdir, prefix, layout = installed
    conf = Path("/etc/sedge") if prefix == "/usr" else Path(prefix) / "etc" / "sedge"
    unit = Path(layout["unit"]) if layout["unit"].startswith("/") else \
        Path(prefix) / layout["unit"]
    expected = [top / "sbin/sedged", top / "bin/sedgectl",
                top / "libexec/sedge/sedge-sandbox",
                top / layout["lib"] / "libsedge.so.0", top / layout["lib"] / "libsedge.so",
                top / layout["lib"] / "libsedge.a", top / "include/sedge.h",
                top / layout["lib"] / "pkgconfig/sedge.pc",
                top / layout["python"] / "sedge/__init__.py",
                destdir / conf.relative_to("/") / "sedge.json",
                destdir / unit.relative_to("/") / "sedge.service"]
    expected += [top / "libexec/sedge/connectors" / c
                 for c in ("modbus", "serial", "gpio", "metrics", "http-sink")]
    missing = [str(p) for p in expected if not p.exists()]
    assert not missing, "not installed: %s" % missing
    for program in ("sbin/sedged", "bin/sedgectl", "libexec/sedge/sedge-sandbox"):
        assert os.access(top / program, os.X_OK)
    # The default config is one sedged accepts, its data in PREFIX's var/lib/sedge.
    cfg = json.loads((destdir / conf.relative_to("/") / "sedge.json").read_text())
    assert cfg["data_dir"] == ("/var/lib/sedge" if prefix == "/usr"
                               else prefix + "/var/lib/sedge")
    service = (destdir / unit.relative_to("/") / "sedge.service").read_text()
    assert "ExecStart=%s/sbin/sedged --config %s/sedge.json" % (prefix, conf) in service
    assert not list(destdir.rglob("__pycache__"))


def test_pkg_config_builds_a_function_against_the_installed_sdk(installed, tmp_path):
    top = installed[0]
    layout = installed[3]
    env = dict(os.environ, PKG_CONFIG_PATH=str(top / layout["lib"] / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sedge"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    flags = [f[:2] + os.path.normpath(f[2:]) if f[:2] in ("-I", "-L") else f for f in flags]
    assert "-I%s/include" % top in flags and "-L%s/%s" % (top, layout["lib"]) in flags
    out = tmp_path / "echo"
    subprocess.run(["cc", str(REPO / "examples/functions/c/echo.c"), "-o", str(out)] + flags,
                   check=True, capture_output=True)
    ldd = subprocess.run(["ldd", str(out)], capture_output=True, text=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=str(top / layout["lib"]))).stdout
    assert "%s/%s/libsedge.so.0" % (top, layout["lib"]) in ldd


PY_WHERE = """#!/usr/bin/python3
import sedge
sedge.run(lambda topic, payload: sedge.__file__.encode())
"""


def test_installed_sedged_finds_sandbox_connectors_and_python_sdk(installed, make_sedge,
                                                                   monkeypatch, public_tmp):
    """The installed sedged, with nothing in its environment pointing
    anywhere, runs a Python function (in its sandbox when root) on the
    installed Python SDK and a connector from the installed libexec."""
    top, _, _, layout = installed
    for var in ("SEDGE_SANDBOX", "SEDGE_CONNECTORS", "SEDGE_PYTHON_SDK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(conftest, "SEDGED", top / "sbin/sedged")
    monkeypatch.setattr(conftest, "SEDGECTL", top / "bin/sedgectl")
    code = fh.public_dir("sedge-install-code-")
    try:
        fh.write_public(os.path.join(code, "where.py"), PY_WHERE)
        s = make_sedge(name=os.path.join(public_tmp, "sedge"))
        doc = group([fn("where", ["/usr/bin/python3", os.path.join(code, "where.py")],
                        code=code, **ISOLATION)],
                    [route("connector:sys", "edge/metrics", "thing:app")])
        doc["connectors"] = [{"name": "sys", "type": "metrics",
                              "parameters": {"interval_ms": 200, "topic": "edge/metrics"}}]
        deploy_ok(s, doc)
        where = invoke_ok(s, "where")
        assert where == str(top / layout["python"] / "sedge/__init__.py")
        app = s.client("app")
        app.subscribe("edge/metrics", qos=0)
        m = app.get()
        assert "timestamp" in json.loads(m.payload)
        # sedgectl finds the data directory from the config file it is given.
        r = subprocess.run([str(top / "bin/sedgectl"), "--config", str(s.config_path),
                            "status", "--json"], capture_output=True, text=True, timeout=30,
                           cwd=code)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["pid"] == s.pid
        if ROOT:
            assert "no sandbox" not in s.log()
    finally:
        shutil.rmtree(code, ignore_errors=True)
