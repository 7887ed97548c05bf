"""A function's code as an artifact: "code": {"url", "sha256"} — an archive
fetched (file:// and https://), verified, unpacked into the content-addressed
cache before the deployment switches, bound read-only as the function's code
directory in its sandbox, and pruned once no deployed group uses it. An
artifact that cannot be fetched or verified fails the deployment and
leaves the running group as it was."""

import hashlib
import io
import os
import tarfile

import pytest

import functions_helpers as fh
from functions_fixtures import BEHAVE, fsedge, public_tmp  # noqa: F401 (fixtures)
from groups_helpers import active_version, deploy, deploy_ok
from test_ota_download import FileServer
from conftest import make_ca


def code_archive(directory, name, extra=b""):
    """bin/behave (the C example) and a data file, as a tar.gz."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        t.add(BEHAVE, arcname="bin/behave")
        data = b"v1\n" + extra
        info = tarfile.TarInfo("share/version.txt")
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(out.getvalue())
    os.chmod(path, 0o644)
    return path, hashlib.sha256(out.getvalue()).hexdigest()


def code_fn(url, sha, name="coded", **kw):
    return fh.fn(name, ["bin/behave"], encoding="binary", code={"url": url, "sha256": sha}, **kw)


def cache(sedge):
    d = os.path.join(str(sedge.data_dir), "models")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_function_code_from_an_archive_runs_read_only_from_the_cache(fsedge, public_tmp):
    path, sha = code_archive(public_tmp, "code.tar.gz")
    deploy_ok(fsedge, fh.group([code_fn("file://" + path, sha)]))
    unpacked = os.path.join(os.path.realpath(str(fsedge.data_dir)), "models", sha)
    assert fh.invoke_ok(fsedge, "coded", "read:%s/share/version.txt" % unpacked) == "v1\n"
    assert fh.invoke_ok(fsedge, "coded",
                        "write:%s/share/version.txt" % unpacked).startswith("error:")
    # The rest of the data directory (the store, the keys) stays out of the
    # sandbox: only the path down to the code is there.
    seen = fh.invoke_ok(fsedge, "coded", "ls:%s" % os.path.realpath(str(fsedge.data_dir)))
    assert "sedge.db" not in seen and ".pem" not in seen and "admin.sock" not in seen, seen
    assert fh.invoke_ok(fsedge, "coded", "ls:%s/models" % os.path.realpath(
        str(fsedge.data_dir))) == sha
    assert fh.function(fsedge, "coded")["isolation"]["code"] == unpacked
    assert cache(fsedge) == [sha]
    # A new version of the code: a new deployment; the old archive is pruned.
    path2, sha2 = code_archive(public_tmp, "code2.tar.gz", extra=b"v2\n")
    deploy_ok(fsedge, fh.group([code_fn(path2, sha2)]))
    assert cache(fsedge) == [sha2]


def test_a_wrong_hash_fails_the_deployment_and_leaves_the_old_group_running(
        fsedge, public_tmp):
    path, sha = code_archive(public_tmp, "code.tar.gz")
    deploy_ok(fsedge, fh.group([code_fn(path, sha)]))
    v = active_version(fsedge)
    bad, bad_sha = code_archive(public_tmp, "bad.tar.gz", extra=b"evil\n")
    wanted = hashlib.sha256(b"the archive that was meant").hexdigest()
    r = deploy(fsedge, fh.group([code_fn(bad, wanted, name="other")]))
    assert r.returncode != 0
    assert "functions[0].code (function other)" in r.stderr and bad_sha[:16] in r.stderr, r.stderr
    assert active_version(fsedge) == v
    unpacked = os.path.join(os.path.realpath(str(fsedge.data_dir)), "models", sha)
    assert fh.invoke_ok(fsedge, "coded", "read:%s/share/version.txt" % unpacked) == "v1\n"
    assert cache(fsedge) == [sha]
    r = deploy(fsedge, fh.group([code_fn("file:///nonexistent/code.tar.gz", wanted, name="x")]))
    assert r.returncode != 0 and active_version(fsedge) == v


def test_function_code_over_https(fsedge, public_tmp, tmp_path):
    certs = make_ca(tmp_path / "web", core_name="localhost", sans=["localhost"])
    www = tmp_path / "www"
    www.mkdir()
    server = FileServer(www, certs)
    try:
        path, sha = code_archive(str(www), "code.tar.gz")
        # The server's CA is not the system's: refused, nothing changes.
        r = deploy(fsedge, fh.group([code_fn(server.url("code.tar.gz"), sha)]))
        assert r.returncode != 0 and "certificate" in r.stderr.lower(), r.stderr
        assert cache(fsedge) == []
    finally:
        server.close()


@pytest.mark.parametrize("code,why", [
    ({"url": "ftp://x/y.tgz", "sha256": "0" * 64}, "is not an absolute path"),
    ({"url": "https://x/y.tgz", "sha256": "abc"}, "64 hex digits"),
    ({"url": "https://x/y.tgz"}, "sha256"),
    ({"path": "/opt/fn", "url": "https://x/y.tgz", "sha256": "0" * 64}, "not both"),
])
def test_bad_code_artifacts_are_refused_with_the_key_named(fsedge, code, why):
    r = deploy(fsedge, fh.group([fh.fn("f", ["bin/f"], code=code)]))
    assert r.returncode != 0 and "functions[0].code" in r.stderr and why in r.stderr, r.stderr


def test_a_signed_code_archive_is_checked_against_the_trusted_keys(make_sedge, public_tmp):
    import base64
    from cryptography.hazmat.primitives import serialization
    from ota_helpers import make_key
    priv, pub = make_key(os.path.join(public_tmp, "keys"))
    other, _ = make_key(os.path.join(public_tmp, "other"))
    s = make_sedge(name=os.path.join(public_tmp, "signed"),
                   extra={"ota": {"trusted_keys": [str(pub)]}})
    path, sha = code_archive(public_tmp, "code.tar.gz")

    def signed(key):
        k = serialization.load_pem_private_key(open(key, "rb").read(), None)
        return dict(code_fn(path, sha), code={"url": path, "sha256": sha,
                                              "signature": base64.b64encode(
                                                  k.sign(sha.encode())).decode()})
    r = deploy(s, fh.group([signed(other)]))
    assert r.returncode != 0
    assert "functions[0].code.signature: not signed by a key in ota.trusted_keys" in r.stderr
    assert cache(s) == []  # refused before anything was fetched
    deploy_ok(s, fh.group([signed(priv)]))
    unpacked = os.path.join(os.path.realpath(str(s.data_dir)), "models", sha)
    assert fh.invoke_ok(s, "coded", "read:%s/share/version.txt" % unpacked) == "v1\n"


def test_a_signed_code_archive_needs_trusted_keys(fsedge, public_tmp):
    path, sha = code_archive(public_tmp, "code.tar.gz")
    entry = dict(code_fn(path, sha), code={"url": path, "sha256": sha, "signature": "A" * 88})
    r = deploy(fsedge, fh.group([entry]))
    assert r.returncode != 0 and "no ota.trusted_keys to check it with" in r.stderr, r.stderr
