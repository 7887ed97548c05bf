"""Privilege and isolation of functions (issue 11, items 1-4): what a group
document may and may not make the sandbox do, and what a function inside
it can reach — only its code directory, the system directories and its
declared resources; devices as declared (ro means read only); no
capabilities, no_new_privs, and a seccomp filter refusing the system calls
a function never needs, each checked by a probe function
(tests/functions/probe.c) that tries it.

Everything here needs sedged to run as root (sandboxes, run_as, cgroups).
"""

import json
import os
import shutil
import socket
import subprocess

import pytest

import functions_helpers as fh
from conftest import SANITIZER_MARKS, Sedge
from functions_fixtures import (BEHAVE, EXAMPLES, PROBE, PROBES, behave, fsedge,  # noqa: F401
                                public_tmp)
from functions_helpers import (deploy, deploy_ok, fn, function, function_processes, group,
                               invoke_ok, route)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes need sedged to run as root")

def probe(name="probe", **kw):
    entry = dict(encoding="binary", code=PROBES)
    entry.update(kw)
    return fn(name, [PROBE], **entry)


@pytest.fixture
def root_sedge(public_tmp, make_sedge):
    """A sedged whose functions may run as root."""
    return make_sedge(name=os.path.join(public_tmp, "sedge"),
                      extra={"functions": {"allow_root": True}})


def refused(sedge, doc):
    """Deploy `doc`, expect a refusal: the error sedgectl printed."""
    r = deploy(sedge, doc)
    assert r.returncode == 1, "deploy should have failed: %r %r" % (r.stdout, r.stderr)
    return r.stderr


def uid_of(pid):
    return fh.proc_status(pid, "Uid")


def environ_of(pid):
    return b"\0".join(fh._environ(pid)).rstrip(b"\0")


def sandbox_processes(sedge):
    """Every process of this sedged's sandboxes, standby ones included."""
    sockets = os.path.join(os.path.realpath(str(sedge.data_dir)), "fn").encode()
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and any(a.startswith(sockets) for a in fh._cmdline(pid)):
            pids.append(int(pid))
    return pids



def test_loader_variables_in_env_are_refused_at_deploy(fsedge):
    """A function's env with LD_PRELOAD (or another variable the loader or
    libc acts on) fails the deployment, naming the JSON path; nothing runs."""
    deploy_ok(fsedge, group([behave("ok")]))
    for var in ("LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH", "GLIBC_TUNABLES"):
        err = refused(fsedge, group([behave("ok"), behave("evil", env={var: "/tmp/evil"})]))
        assert "functions[1].env.%s: refused" % var in err, err
    assert "evil" not in fh.functions(fsedge)
    assert invoke_ok(fsedge, "ok", "whoami") == "65534:65534"


def test_no_document_value_reaches_the_privileged_sandbox(fsedge):
    """The document's env reaches the function (after the drop) and never a
    process of the sandbox that still runs as root: those run with an empty
    environment (the function's comes on the sandbox's stdin and is read
    only after setuid). Checked on running, standby and isolation none
    instances."""
    marker = "doc-value-%d" % os.getpid()
    deploy_ok(fsedge, group([
        behave("kept", lifecycle="long-lived", env={"MARKER": marker}),
        behave("spare", env={"MARKER": marker}),
        behave("plain", isolation="none", lifecycle="long-lived", env={"MARKER": marker})]))
    assert invoke_ok(fsedge, "kept", "env:MARKER") == marker
    assert invoke_ok(fsedge, "plain", "env:MARKER") == marker
    fh.wait_function(fsedge, "spare", lambda f: f["standby"], what="a standby instance")
    privileged = [p for p in sandbox_processes(fsedge) if uid_of(p) == 0]
    assert privileged, "no sandbox process running as root was found"
    for pid in privileged:
        env = environ_of(pid)
        assert marker.encode() not in env, "pid %d (root) holds the document's value" % pid
        assert env == b"", "pid %d (root) has an environment: %r" % (pid, env[:200])
    # The function itself runs as nobody and has it.
    func = [p for p in function_processes(fsedge, "kept") if marker.encode() in environ_of(p)]
    assert func and all(uid_of(p) == 65534 for p in func), func



def test_exec_arguments_are_data_not_access(fsedge, public_tmp):
    """An absolute path among the arguments shows nothing: its directory is
    not bound (it was, read-only, before)."""
    secret_dir = os.path.join(public_tmp, "elsewhere")
    secret = fh.write_public(os.path.join(secret_dir, "secret.txt"), "not for the function",
                             directory_too=True)
    deploy_ok(fsedge, group([fn("behave", [BEHAVE, secret], encoding="binary", code=EXAMPLES)]))
    out = invoke_ok(fsedge, "behave", "read:" + secret)
    assert out.startswith("error:"), "the function read %s: %r" % (secret, out)
    assert invoke_ok(fsedge, "behave", "ls:" + secret_dir).startswith("error:")


def test_program_outside_its_code_directory_is_refused(fsedge, public_tmp):
    """A sandboxed program must be in its code directory or a system
    directory; the error says what to declare."""
    err = refused(fsedge, group([fn("behave", [BEHAVE], encoding="binary")]))
    assert "functions[0].exec[0]" in err and '"code": "%s"' % EXAMPLES in err, err
    # Declared elsewhere: still refused.
    other = os.path.join(public_tmp, "code")
    os.mkdir(other)
    err = refused(fsedge, group([fn("behave", [BEHAVE], encoding="binary", code=other)]))
    assert "functions[0].exec[0]" in err, err


def test_code_directory_is_shown_read_only_and_is_the_working_directory(fsedge):
    deploy_ok(fsedge, group([behave()]))
    assert invoke_ok(fsedge, "behave", "ls:.") == "\n".join(sorted(os.listdir(EXAMPLES)))
    assert invoke_ok(fsedge, "behave", "write:%s/new" % EXAMPLES) == \
        "error: Read-only file system"
    # Its neighbours are not there.
    parent = os.path.dirname(EXAMPLES)
    assert invoke_ok(fsedge, "behave", "ls:" + parent) == os.path.basename(EXAMPLES)
    f = function(fsedge, "behave")
    assert f["isolation"]["code"] == EXAMPLES


def test_code_directory_in_the_data_directory_is_refused(fsedge):
    inside = os.path.join(os.path.realpath(str(fsedge.data_dir)), "fncode")
    os.makedirs(inside, exist_ok=True)
    shutil.copy(BEHAVE, inside)
    err = refused(fsedge, group([fn("behave", [os.path.join(inside, "behave")], code=inside)]))
    assert "functions[0].code" in err and "data directory" in err, err



def test_device_access_ro_is_enforced(root_sedge):
    """A read-only bind does not stop writes to a device node; the devices
    cgroup does: declared ro, a device opens for reading only; rw opens for
    writing; undeclared, not at all — even for a function running as root,
    and without a sandbox."""
    # A device whose opening does nothing (its work is in ioctls that need
    # capabilities), root's alone (0600): only the devices cgroup stands
    # between a root function and a write.
    dev = next((d for d in ("/dev/loop-control", "/dev/fuse", "/dev/net/tun")
                if os.path.exists(d)), None)
    if not dev:
        pytest.skip("no harmless device to open here")
    deploy_ok(root_sedge, group([
        probe("ro", run_as="0:0", resources=[{"type": "device", "path": dev, "access": "ro"}]),
        probe("rw", run_as="0:0", resources=[{"type": "device", "path": dev, "access": "rw"}]),
        probe("none", isolation="none")]))
    assert invoke_ok(root_sedge, "ro", "open:%s:r" % dev) == "ok"
    assert invoke_ok(root_sedge, "ro", "open:%s:w" % dev) == "EPERM"
    assert invoke_ok(root_sedge, "ro", "open:%s:rw" % dev) == "EPERM"
    assert invoke_ok(root_sedge, "rw", "open:%s:w" % dev) == "ok"
    # Without a sandbox (as nobody: the host's /dev, and a device anyone
    # may open by its mode) the allow-list still holds.
    if os.path.exists("/dev/ptmx"):
        assert invoke_ok(root_sedge, "none", "open:/dev/ptmx:rw") == "EPERM"
    assert invoke_ok(root_sedge, "none", "open:/dev/null:w") == "ok"
    # No new device nodes either.
    assert invoke_ok(root_sedge, "rw", "mknod:/tmp/null2") == "EPERM"
    f = function(root_sedge, "ro")
    devices = f["isolation"]["devices"]
    assert devices["enforced_by"] in ("cgroup v1 devices", "cgroup v2 device program"), devices
    assert {"path": dev, "access": "ro"} in devices["allowed"], devices


def test_device_resource_must_be_a_device_node(fsedge):
    err = refused(fsedge, group([behave(resources=[{"type": "device", "path": "/dev/"}])]))
    assert "functions[0].resources[0].path" in err and "directory" in err, err
    err = refused(fsedge, group([behave(resources=[{"type": "device", "path": "/dev/shm"}])]))
    assert "functions[0].resources[0].path: /dev/shm is not a device node" in err, err


def test_volume_in_or_around_the_data_directory_is_refused(fsedge, public_tmp):
    data = os.path.realpath(str(fsedge.data_dir))
    link = os.path.join(public_tmp, "link-to-data")
    os.symlink(data, link)
    for source in (data, os.path.join(data, "fn"), os.path.dirname(data), link):
        err = refused(fsedge, group([behave(resources=[
            {"type": "volume", "source": source, "dest": "/data", "access": "ro"}])]))
        assert "functions[0].resources[0].source" in err and "data directory" in err, \
            (source, err)


def test_each_function_has_its_own_empty_network(fsedge):
    """Without "network": true a sandboxed function gets an empty network
    namespace, made once for the function and shared by its instances (a
    network namespace is the dearest part of a sandbox to make), never by
    another function, nor the host's; the same for its IPC namespace."""
    deploy_ok(fsedge, group([probe("a", idle_timeout_s=1, standby=False),
                             probe("b"), probe("host", network=True)]))
    net = "readlink:/proc/self/ns/net"
    first = invoke_ok(fsedge, "a", net)
    assert first.startswith("net:["), first
    pid = function(fsedge, "a")["instances"][0]["pid"]
    fh.wait_function(fsedge, "a", lambda f: not f["instances"], timeout=10,
                     what="the idle instance to be reaped")
    assert invoke_ok(fsedge, "a", net) == first
    assert function(fsedge, "a")["instances"][0]["pid"] != pid
    assert invoke_ok(fsedge, "b", net) != first
    assert invoke_ok(fsedge, "host", net) == os.readlink("/proc/self/ns/net")
    assert first != os.readlink("/proc/self/ns/net")
    iso = function(fsedge, "a")["isolation"]
    assert iso["network"] == "none: an empty namespace of its own", iso
    assert iso["shared_by_its_instances"] == ["network", "ipc"], iso
    assert function(fsedge, "host")["isolation"]["shared_by_its_instances"] == ["ipc"]
    # The IPC namespace too: shared by a function's instances only.
    ipc = "readlink:/proc/self/ns/ipc"
    assert invoke_ok(fsedge, "a", ipc) != invoke_ok(fsedge, "b", ipc)
    assert invoke_ok(fsedge, "a", ipc) != os.readlink("/proc/self/ns/ipc")



def test_c_function_linked_with_libsedge_so_loads_in_the_sandbox(fsedge):
    """build/examples/echo-shared needs libsedge.so.0 from build/ (its
    RUNPATH): sedged shows it that one file, and only to functions that
    need it (behave, linked statically, sees nothing of build/ but its code
    directory)."""
    deploy_ok(fsedge, group([fn("echo", [os.path.join(EXAMPLES, "echo-shared")],
                                code=EXAMPLES), behave()]))
    assert invoke_ok(fsedge, "echo", '"shared"') == 'echo:"shared"'
    build = os.path.dirname(EXAMPLES)
    assert invoke_ok(fsedge, "behave", "ls:" + build) == os.path.basename(EXAMPLES)


def test_c_function_that_cannot_find_libsedge_is_told_what_to_do(fsedge, public_tmp):
    """Linked against build/libsedge.so without a run path, the program
    could not load it anywhere: the deployment says how to fix that."""
    code = os.path.join(public_tmp, "code")
    os.mkdir(code)
    os.chmod(code, 0o755)
    src = os.path.join(os.path.dirname(EXAMPLES), "..", "examples", "functions", "c", "echo.c")
    build = os.path.dirname(EXAMPLES)
    prog = os.path.join(code, "echo")
    r = subprocess.run(["cc", "-o", prog, os.path.realpath(src),
                        "-I", os.path.join(os.path.dirname(build), "sdk", "c", "include"),
                        "-L", build, "-lsedge"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    err = refused(fsedge, group([fn("echo", [prog], code=code)]))
    assert "needs libsedge.so.0, which it cannot find: link it with -Wl,-rpath,%s" % build in err
    assert "libsedge.a" in err, err


def test_library_outside_what_the_sandbox_shows_is_refused(fsedge, public_tmp):
    """A library found through a run path outside the code directory would
    be missing inside the sandbox: refused at deploy, saying where it is."""
    libdir = os.path.join(public_tmp, "libs")
    code = os.path.join(public_tmp, "code")
    for d in (libdir, code):
        os.mkdir(d)
        os.chmod(d, 0o755)
    lib = os.path.join(libdir, "libghost.so.1")
    for source, out, flags in (
            ("int ghost(void) { return 0; }\n", lib,
             ["-shared", "-fPIC", "-Wl,-soname,libghost.so.1"]),
            ("int ghost(void);\nint main(void) { return ghost(); }\n",
             os.path.join(code, "prog"), [lib, "-Wl,-rpath," + libdir])):
        with open(out + ".c", "w") as f:
            f.write(source)
        r = subprocess.run(["cc", "-o", out, out + ".c"] + flags, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    err = refused(fsedge, group([fn("ghost", [os.path.join(code, "prog")], code=code)]))
    assert "needs libghost.so.1, found at %s, which the sandbox does not show" % lib in err, err



# Each rule of the seccomp filter, with the answer a confined function gets:
# as root (allowed by the core's config) so that missing capabilities alone
# would not explain an EPERM for the calls that need them, as nobody, and as
# nobody without a sandbox (the filter holds there too).
SYSCALL_RULES = [
    ("mount", "EPERM"), ("umount2", "EPERM"), ("pivot_root", "EPERM"), ("open_tree", "EPERM"),
    ("fsopen", "EPERM"), ("ptrace", "EPERM"), ("process_vm_readv", "EPERM"), ("kcmp", "EPERM"),
    ("kexec_load", "EPERM"), ("init_module", "EPERM"), ("finit_module", "EPERM"),
    ("delete_module", "EPERM"), ("bpf", "EPERM"), ("perf_event_open", "EPERM"),
    ("userfaultfd", "EPERM"), ("keyctl", "EPERM"), ("add_key", "EPERM"),
    ("request_key", "EPERM"), ("setns", "EPERM"), ("swapon", "EPERM"), ("swapoff", "EPERM"),
    ("reboot", "EPERM"), ("unshare_newuser", "EPERM"), ("clone_newuser", "EPERM"),
    ("clone3", "ENOSYS"),
]


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """One sedged for the rules: a root probe, sandboxed and not, and one
    running as nobody."""
    top = fh.public_dir()
    s = Sedge(os.path.join(top, "sedge"), extra={"functions": {"allow_root": True}})
    s.start()
    try:
        deploy_ok(s, group([probe("root", run_as="0:0"),
                            probe("nobody-none", isolation="none"),
                            probe("nobody")]))
        yield s
    finally:
        rc = s.stop()
        log = s.log()
        shutil.rmtree(top, ignore_errors=True)
        assert rc == 0, "sedged exited with %s" % rc
        assert not any(m in log for m in SANITIZER_MARKS), log[-4000:]


def test_a_root_function_cannot_change_kernel_settings(probes, root_sedge):
    """Without capabilities root still owns /proc/sys, /proc/irq, sysrq...:
    in a root function's sandbox they are read-only; and a root function
    without a sandbox (the host's /proc) is refused at deploy."""
    for path in ("/proc/sys/vm/drop_caches", "/proc/sys/kernel/panic",
                 "/proc/irq/default_smp_affinity"):
        if os.path.exists(path):
            assert invoke_ok(probes, "root", "open:%s:w" % path) == "EROFS", path
    assert invoke_ok(probes, "root", "open:/proc/self/status:r") == "ok"
    err = refused(root_sedge, group([probe("rootnone", run_as="0:0", isolation="none")]))
    assert "functions[0].isolation" in err and "needs the sandbox" in err, err


@pytest.mark.parametrize("call,expected", SYSCALL_RULES, ids=[c for c, _ in SYSCALL_RULES])
def test_seccomp_refuses(probes, call, expected):
    for name in ("root", "nobody-none", "nobody"):
        got = invoke_ok(probes, name, "syscall:" + call)
        assert got == expected, "%s in function %s: %s, expected %s" % (call, name, got,
                                                                        expected)


def test_process_is_confined_and_sedgectl_shows_it(probes):
    """no_new_privs, an empty bounding set, no capabilities and a seccomp
    filter, as the kernel reports them, for root and nobody functions;
    sedgectl functions shows the isolation in force and what was observed."""
    for name in ("root", "nobody-none", "nobody"):
        assert invoke_ok(probes, name, "open:/dev/null:r") == "ok"  # an instance connected
        iso = fh.functions(probes)[name]["isolation"]
        assert iso["no_new_privs"] is True and "EPERM" in iso["seccomp"], iso
        observed = iso["observed"]
        assert observed == {"no_new_privs": True, "seccomp": True, "no_capabilities": True,
                            "empty_bounding_set": True}, (name, observed)
    iso = fh.functions(probes)["root"]["isolation"]
    assert iso["mode"] == "sandbox"
    assert set(iso["namespaces"]) == {"mount", "pid", "ipc", "uts", "network"}, iso
    assert fh.functions(probes)["nobody-none"]["isolation"]["namespaces"] == []
    text = probes.ctl("functions")
    assert text.returncode == 0
    assert "no_new_privs" in text.stdout and "seccomp" in text.stdout, text.stdout
    assert "namespaces mount pid ipc uts network" in text.stdout, text.stdout
