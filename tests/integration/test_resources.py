"""The group's resources (issue 17, part 1): devices and volumes by id with
their owner group, in both isolation modes; models fetched by URL, checked
against their SHA-256, unpacked read-only and shown at their destination;
and what a hostile document or archive gets: a refusal that says why, with
nothing unpacked and nothing else changed.

Everything here needs sedged to run as root (run_as, sandboxes, device
nodes made in /dev for the test).
"""

import hashlib
import http.server
import io
import os
import stat
import subprocess
import tarfile
import threading
import time
import uuid
import zipfile

import pytest

import functions_helpers as fh
from functions_fixtures import (EXAMPLES, PROBE, PROBES, behave, fsedge,  # noqa: F401
                                public_tmp)
from conftest import SEDGECTL
from functions_helpers import deploy, deploy_ok, fn, group, invoke_ok
from groups_helpers import write_doc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs sedged to run as root")

USER = "1000:1000"
TEST_GID = 47017  # a group no user of this machine is in


def probe(name, **kw):
    entry = dict(encoding="binary", code=PROBES, run_as=USER)
    entry.update(kw)
    return fn(name, [PROBE], **entry)


def refused(sedge, doc):
    r = deploy(sedge, doc)
    assert r.returncode == 1, "deploy should have failed: %r %r" % (r.stdout, r.stderr)
    return r.stderr


@pytest.fixture
def device_node():
    """Device nodes made under /dev for one test: make(major, minor, mode,
    gid) -> path; removed at the end."""
    made = []

    def make(major, minor, mode, gid=0):
        path = "/dev/sedge-test-%s" % uuid.uuid4().hex[:8]
        os.mknod(path, stat.S_IFCHR | mode, os.makedev(major, minor))
        os.chown(path, 0, gid)
        os.chmod(path, mode)
        made.append(path)
        return path
    yield make
    for p in made:
        os.unlink(p)


def with_resources(doc, resources):
    doc["resources"] = resources
    return doc


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_owner_group_auto_lets_a_user_function_open_a_group_device(fsedge, device_node, isolation):
    """A root:GROUP 0660 device (a serial port's dialout) opens for a uid-1000
    function only with owner {group: auto}, which makes the device's group
    one of the function's; without it the function has no groups at all."""
    dev = device_node(1, 3, 0o660, TEST_GID)  # /dev/null's numbers: opening it is harmless
    doc = with_resources(group([
        probe("owned", isolation=isolation, resources=[{"id": "port", "access": "rw"}]),
        probe("unowned", isolation=isolation, resources=[{"id": "bare", "access": "rw"}])]),
        [{"id": "port", "type": "device", "path": dev, "owner": {"group": "auto"}},
         {"id": "bare", "type": "device", "path": dev}])
    deploy_ok(fsedge, doc)
    assert invoke_ok(fsedge, "owned", "open:%s:rw" % dev) == "ok"
    assert invoke_ok(fsedge, "unowned", "open:%s:rw" % dev) == "EACCES"
    assert fh.function(fsedge, "owned")["groups"] == [TEST_GID]
    assert fh.function(fsedge, "unowned")["groups"] == []


def test_named_owner_group_and_the_root_group_refused(fsedge, device_node):
    dev = device_node(1, 3, 0o660, TEST_GID)
    doc = with_resources(group([probe("f", resources=[{"id": "port", "access": "rw"}])]),
                         [{"id": "port", "type": "device", "path": dev,
                           "owner": {"group": TEST_GID}}])
    deploy_ok(fsedge, doc)
    assert invoke_ok(fsedge, "f", "open:%s:rw" % dev) == "ok"
    root_dev = device_node(1, 3, 0o660, 0)
    doc["resources"] = [{"id": "port", "type": "device", "path": root_dev,
                         "owner": {"group": "auto"}}]
    err = refused(fsedge, doc)
    assert "functions[0].resources[0] (port).owner.group: the group is root's (0)" in err, err
    doc["resources"][0]["owner"] = {"group": "no-such-group-here"}
    err = refused(fsedge, doc)
    assert "no group \"no-such-group-here\" on this machine" in err, err


def test_a_device_not_declared_cannot_be_opened_even_when_its_mode_allows(fsedge, device_node):
    """The function lists one device; another node on the host, mode 0666,
    stays shut: without a sandbox the devices cgroup refuses it, in one it
    is not even there."""
    mine = device_node(1, 3, 0o666)
    other = device_node(10, 229, 0o666)  # the fuse device: opening it changes nothing
    res = [{"id": "mine", "type": "device", "path": mine}]
    deploy_ok(fsedge, with_resources(group([
        probe("none", isolation="none", resources=[{"id": "mine", "access": "rw"}]),
        probe("boxed", resources=[{"id": "mine", "access": "rw"}])]), res))
    assert invoke_ok(fsedge, "none", "open:%s:rw" % mine) == "ok"
    assert invoke_ok(fsedge, "none", "open:%s:rw" % other) == "EPERM"
    assert invoke_ok(fsedge, "boxed", "open:%s:rw" % other) == "ENOENT"


def test_volume_by_id_in_a_sandbox_and_refused_without_one(fsedge, public_tmp):
    vol = os.path.join(public_tmp, "vol")
    fh.write_public(os.path.join(vol, "data.txt"), "from the volume", directory_too=True)
    res = [{"id": "data", "type": "volume", "source": vol, "dest": "/data"}]
    deploy_ok(fsedge, with_resources(group([
        behave("boxed", run_as=USER, resources=[{"id": "data", "access": "ro"}])]), res))
    assert invoke_ok(fsedge, "boxed", "read:/data/data.txt") == "from the volume"
    assert invoke_ok(fsedge, "boxed", "write:/data/new").startswith("error:")
    assert invoke_ok(fsedge, "boxed", "env:SEDGE_RESOURCE_DATA") == "/data"
    # Without a sandbox nothing can be bound: refused, saying so.
    err = refused(fsedge, with_resources(group([
        behave("open", run_as=USER, isolation="none",
               resources=[{"id": "data", "access": "ro"}])]), res))
    assert ("functions[0].resources[0] (data).dest: function open has isolation none, which "
            "cannot show %s at /data" % vol) in err, err
    res[0]["dest"] = vol
    err = refused(fsedge, with_resources(group([
        behave("open", run_as=USER, isolation="none",
               resources=[{"id": "data", "access": "ro"}])]), res))
    assert "cannot make %s read-only" % vol in err, err
    # The same path, rw: the host's own permissions are all there is.
    deploy_ok(fsedge, with_resources(group([
        behave("open", run_as=USER, isolation="none",
               resources=[{"id": "data", "access": "rw"}])]), res))
    assert invoke_ok(fsedge, "open", "read:%s/data.txt" % vol) == "from the volume"


def test_greengrass_volume_rules_are_refused_at_deploy(fsedge):
    doc = with_resources(group([behave("f", resources=[{"id": "v", "access": "rw"}])]),
                         [{"id": "v", "type": "volume", "source": "/var/lib", "dest": "/v"}])
    err = refused(fsedge, doc)
    assert "resources[0].source: \"/var/lib\" may not be a volume" in err, err


# Models ------------------------------------------------------------------

def tar_gz(entries):
    """A tar.gz in memory from (name, bytes | ('symlink', target) |
    ('hardlink', target) | 'dir')."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, what in entries:
            info = tarfile.TarInfo(name)
            if what == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            elif isinstance(what, tuple):
                info.type = tarfile.SYMTYPE if what[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = what[1]
                t.addfile(info)
            else:
                info.size = len(what)
                info.mode = 0o644
                t.addfile(info, io.BytesIO(what))
    return out.getvalue()


def write_archive(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    return path, hashlib.sha256(data).hexdigest()


def model_doc(url, sha, dest="/models/food", **kw):
    entry = dict(run_as=USER, resources=[{"id": "food-model"}])
    entry.update(kw)
    return with_resources(group([behave("reader", **entry)]),
                          [{"id": "food-model", "type": "model", "url": url, "sha256": sha,
                            "dest": dest}])


def cache_entries(sedge):
    d = os.path.join(str(sedge.data_dir), "models")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_model_is_unpacked_read_only_and_shown_at_its_destination(fsedge, public_tmp):
    path, sha = write_archive(public_tmp, "food.tar.gz", tar_gz([
        ("labels.txt", b"burger\nsalad\nother\n"), ("net", "dir"), ("net/model.bin", b"\x01" * 64),
        ("current", ("symlink", "net/model.bin"))]))
    deploy_ok(fsedge, model_doc("file://" + path, sha))
    assert invoke_ok(fsedge, "reader", "read:/models/food/labels.txt") == "burger\nsalad\nother\n"
    assert invoke_ok(fsedge, "reader", "ls:/models/food") == "current\nlabels.txt\nnet"
    assert invoke_ok(fsedge, "reader", "env:SEDGE_RESOURCE_FOOD_MODEL") == "/models/food"
    assert invoke_ok(fsedge, "reader", "write:/models/food/labels.txt").startswith("error:")
    assert cache_entries(fsedge) == [sha]
    shown = fh.function(fsedge, "reader")["resources"]
    assert shown == [{"id": "food-model", "type": "model", "access": "ro",
                      "path": "/models/food", "sha256": sha}], shown
    unpacked = os.path.join(str(fsedge.data_dir), "models", sha)
    assert stat.S_IMODE(os.stat(os.path.join(unpacked, "labels.txt")).st_mode) == 0o444
    assert stat.S_IMODE(os.stat(os.path.join(unpacked, "net")).st_mode) == 0o555
    # Changing the local file afterwards changes nothing that was verified.
    with open(path, "ab") as f:
        f.write(b"tampered")
    assert invoke_ok(fsedge, "reader", "read:/models/food/labels.txt") == "burger\nsalad\nother\n"
    # A new version is a new deployment; the old one goes once it is in.
    path2, sha2 = write_archive(public_tmp, "food2.tar.gz", tar_gz([("labels.txt", b"v2\n")]))
    deploy_ok(fsedge, model_doc(path2, sha2))
    assert invoke_ok(fsedge, "reader", "read:/models/food/labels.txt") == "v2\n"
    assert cache_entries(fsedge) == [sha2]
    # A version that fails changes nothing: the running one stays.
    path3, _ = write_archive(public_tmp, "food3.tar.gz", tar_gz([("labels.txt", b"v3\n")]))
    refused(fsedge, model_doc(path3, sha))
    assert invoke_ok(fsedge, "reader", "read:/models/food/labels.txt") == "v2\n"
    assert cache_entries(fsedge) == [sha2]


def test_model_without_a_sandbox_is_found_through_its_variable(fsedge, public_tmp):
    path, sha = write_archive(public_tmp, "m.zip", zip_bytes([("model.onnx", b"onnx")]))
    deploy_ok(fsedge, model_doc(path, sha, isolation="none"))
    where = invoke_ok(fsedge, "reader", "env:SEDGE_RESOURCE_FOOD_MODEL")
    assert where == os.path.join(os.path.realpath(str(fsedge.data_dir)), "models", sha), where
    assert invoke_ok(fsedge, "reader", "read:%s/model.onnx" % where) == "onnx"


def zip_bytes(entries):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries:
            z.writestr(name, data)
    return out.getvalue()


def test_model_over_http_and_a_server_that_fails(fsedge, public_tmp):
    data = tar_gz([("model.onnx", b"weights")])
    sha = hashlib.sha256(data).hexdigest()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/m.tar.gz":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_error(404)

        def log_message(self, *a):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = "http://127.0.0.1:%d" % server.server_address[1]
        err = refused(fsedge, model_doc(base + "/missing.tar.gz", sha))
        assert "resources[0] (model food-model): cannot download" in err and "404" in err, err
        deploy_ok(fsedge, model_doc(base + "/m.tar.gz", sha))
        assert invoke_ok(fsedge, "reader", "read:/models/food/model.onnx") == "weights"
    finally:
        server.shutdown()


def test_sha256_mismatch_is_refused_and_nothing_is_unpacked(fsedge, public_tmp):
    path, sha = write_archive(public_tmp, "m.tar.gz", tar_gz([("model.onnx", b"x")]))
    wrong = hashlib.sha256(b"something else").hexdigest()
    err = refused(fsedge, model_doc(path, wrong))
    assert "the archive's SHA-256 is %s, not the %s the document gives" % (sha, wrong) in err, err
    assert cache_entries(fsedge) == []
    assert fh.functions(fsedge) == {}


@pytest.mark.parametrize("entries,why", [
    ([("../evil", b"x")], "an absolute path or \"..\""),
    ([("a/../../evil", b"x")], "an absolute path or \"..\""),
    ([("/etc/evil", b"x")], "an absolute path or \"..\""),
    ([("passwd", ("symlink", "/etc/passwd"))], "leaves the archive's tree"),
    ([("up", ("symlink", "../../.."))], "leaves the archive's tree"),
    ([("d", "dir"), ("d/up", ("symlink", "../.."))], "leaves the archive's tree"),
    ([("inside", ("symlink", ".")), ("inside/x", b"x")], "may not go through a link"),
    ([("a", b"x"), ("b", ("hardlink", "a"))], "hard links are not allowed"),
    ([("a", b"x"), ("a", b"y")], "it is in the archive twice"),
])
def test_hostile_model_archives_are_refused(fsedge, public_tmp, entries, why):
    path, sha = write_archive(public_tmp, "evil.tar.gz", tar_gz(entries))
    err = refused(fsedge, model_doc(path, sha))
    assert "resources[0] (model food-model): archive entry" in err and why in err, err
    assert cache_entries(fsedge) == []
    assert not os.path.exists(os.path.join(public_tmp, "evil"))


def test_model_that_is_not_an_archive_or_is_truncated(fsedge, public_tmp):
    path, sha = write_archive(public_tmp, "m.onnx", b"\x08\x07not an archive at all")
    err = refused(fsedge, model_doc(path, sha))
    assert "not a valid archive" in err or "not a tar" in err, err
    whole = tar_gz([("model.onnx", os.urandom(200000))])
    path, sha = write_archive(public_tmp, "cut.tar.gz", whole[:len(whole) // 2])
    err = refused(fsedge, model_doc(path, sha))
    assert "resources[0] (model food-model):" in err, err
    assert cache_entries(fsedge) == []


# Secrets -----------------------------------------------------------------

PY_SECRET = '''#!/usr/bin/python3
import sedge


def handle(topic, payload):
    try:
        return sedge.secret(payload.decode()).encode()
    except sedge.SedgeError as e:
        return ("error: %s: %s" % (e.code, e.message)).encode()


sedge.run(handle)
'''


def secret_doc(value, public_tmp):
    code = os.path.join(public_tmp, "py")
    os.makedirs(code, exist_ok=True)
    os.chmod(code, 0o755)
    fh.write_public(os.path.join(code, "secret_fn.py"), PY_SECRET)
    return with_resources(group([
        behave("holder", run_as=USER, lifecycle="long-lived", resources=[{"id": "api-key"}]),
        behave("other", run_as=USER),
        fn("py", ["/usr/bin/python3", os.path.join(code, "secret_fn.py")], code=code,
           encoding="binary", run_as=USER, resources=[{"id": "api-key"}])]),
        [{"id": "api-key", "type": "secret", "value": value}])


def test_secret_reaches_only_the_functions_that_list_it_and_never_rests_in_clear(fsedge,
                                                                                 public_tmp):
    value = "s3cr3t-" + uuid.uuid4().hex
    deploy_ok(fsedge, secret_doc(value, public_tmp))
    assert invoke_ok(fsedge, "holder", "secret:api-key") == value
    assert invoke_ok(fsedge, "py", "api-key") == value
    err = invoke_ok(fsedge, "other", "secret:api-key")
    assert err.startswith("error: not_found:") and "does not list a secret" in err, err
    # Not in any process's environment or command line, nor in what sedged
    # says or keeps: logs, status, deployments, the store's files.
    for pid in fh.function_processes(fsedge):
        for part in (fh._environ(pid), fh._cmdline(pid)):
            assert value.encode() not in b"\0".join(part), pid
    for args in (("status", "--json"), ("deployments", "--json"), ("functions", "--json")):
        out = fsedge.ctl(*args)
        assert value not in out.stdout + out.stderr, args
    assert value not in fsedge.log()
    fh.assert_not_in_files(str(fsedge.data_dir), value)
    # After a restart, the sealed value is read back from the store.
    fsedge.restart()
    assert invoke_ok(fsedge, "holder", "secret:api-key") == value
    # Rotated by redeploying.
    deploy_ok(fsedge, secret_doc(value + "-2", public_tmp))
    assert invoke_ok(fsedge, "holder", "secret:api-key") == value + "-2"
    # A rollback brings the earlier value back, from its sealed copy.
    r = fsedge.ctl("rollback")
    assert r.returncode == 0, r.stderr
    assert invoke_ok(fsedge, "holder", "secret:api-key") == value


def test_the_sealing_key_is_made_when_a_secret_first_needs_it_and_kept(fsedge, public_tmp):
    """A core with no TLS listener seals with a random key in
    DATA/secrets.key. A core without secrets never makes one (nor pays for
    it at start); the first secret makes it, 0600, and the same key opens
    the secret after a restart."""
    key = fsedge.data_dir / "secrets.key"
    assert not fsedge.tls_port
    deploy_ok(fsedge, group([behave("holder", run_as=USER)]))
    assert not key.exists()
    fsedge.restart()
    assert not key.exists()
    value = "s3cr3t-" + uuid.uuid4().hex
    deploy_ok(fsedge, secret_doc(value, public_tmp))
    assert key.stat().st_size == 32
    assert key.stat().st_mode & 0o777 == 0o600
    made = key.read_bytes()
    fsedge.restart()
    assert invoke_ok(fsedge, "holder", "secret:api-key") == value
    assert key.read_bytes() == made


def test_kill_9_while_a_model_downloads_leaves_no_half_model(fsedge, public_tmp):
    """sedged killed while a model is coming in: the cache holds only a
    partial download (never a model directory); after the restart the
    deployment is made again, the model arrives whole and the leftovers go."""
    data = tar_gz([("model.onnx", os.urandom(300000))])
    sha = hashlib.sha256(data).hexdigest()
    stall = threading.Event()
    started = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if stall.is_set():
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                started.set()
                time.sleep(20)  # never finishes while sedged lives
                return
            self.wfile.write(data)

        def log_message(self, *a):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/m.tar.gz" % server.server_address[1]
        stall.set()
        r = subprocess.Popen([str(SEDGECTL), "--data-dir", str(fsedge.data_dir), "deploy",
                              str(write_doc(fsedge, model_doc(url, sha)))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert started.wait(10), "sedged never asked for the model"
        time.sleep(0.3)
        fsedge.kill9()
        r.wait(10)
        entries = cache_entries(fsedge)
        assert entries and all(e.startswith(".part-") for e in entries), entries
        stall.clear()
        fsedge.start()
        deploy_ok(fsedge, model_doc(url, sha))
        assert cache_entries(fsedge) == [sha]
        assert invoke_ok(fsedge, "reader", "ls:/models/food") == "model.onnx"
    finally:
        server.shutdown()
