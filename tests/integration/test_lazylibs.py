"""libcurl and libarchive are mapped only when sedged needs them
(src/lazylib): an idle core, plain or with OTA configured, maps neither
(nor the dozens of libraries they pull in); a model fetched over HTTP
loads both in the running process and is unpacked as before; an update
downloaded over HTTPS is checked, unpacked and committed as before; a
missing library is named (the Debian package) in the command's error."""

import functools
import http.server
import os
import shutil
import subprocess
import threading

import pytest

from conftest import SEDGECTL
from functions_fixtures import fsedge, public_tmp  # noqa: F401
from functions_helpers import deploy_ok, invoke_ok
from test_ota_download import certs, core, keys, publish, server  # noqa: F401
from test_resources import model_doc, tar_gz, write_archive

LAZY = ("libcurl.so", "libarchive.so")


def lazy_maps(pid):
    """The lazily loaded libraries that process `pid` maps."""
    found = set()
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and os.path.basename(fields[5]).startswith(LAZY):
                found.add(os.path.basename(fields[5]).split(".so")[0])
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="needs sedged to run as root")
def test_idle_core_maps_neither_and_a_model_over_http_loads_both(fsedge, public_tmp):
    assert lazy_maps(fsedge.pid) == set()
    _, sha = write_archive(public_tmp, "m.tar.gz", tar_gz([("model.onnx", b"weights")]))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=public_tmp)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/m.tar.gz" % httpd.server_address[1]
        deploy_ok(fsedge, model_doc(url, sha))
        assert invoke_ok(fsedge, "reader", "read:/models/food/model.onnx") == "weights"
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert lazy_maps(fsedge.pid) == {"libcurl", "libarchive"}


def test_idle_core_with_ota_maps_neither_and_an_https_update_commits(tmp_path, keys, server,
                                                                     core):
    assert lazy_maps(core.pid) == set()
    b, sha = publish(tmp_path, server, keys, "0.2.0")
    r = core.update(server.url(b.name), "--sha256", sha)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "committed: version 0.2.0 runs" in r.stdout
    assert core.update_status()["running_version"] == "0.2.0"


def soname_path(soname):
    """Where the dynamic loader finds `soname` (ldconfig's cache)."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(soname + " "):
            return line.split("=>")[-1].strip()
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare (a private mount namespace)")
def test_a_missing_libarchive_is_named_in_the_error(tmp_path, keys):
    lib = soname_path("libarchive.so.13")
    assert lib
    bundle = tmp_path / "any.sedge"
    bundle.write_bytes(b"not read")
    # Hidden (an empty file in its place) in this command's namespace only.
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        'mount --bind /dev/null "$1" && exec "$2" bundle verify "$3" --key "$4"',
                        "sh", lib, str(SEDGECTL), str(bundle), str(keys[1])],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "libarchive13 is not installed: " in r.stderr, r.stderr
