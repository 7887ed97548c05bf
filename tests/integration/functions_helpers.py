#!/usr/bin/python3
"""Helpers for test_functions.py, and a misbehaving function.

This module imports only the standard library so that it can also run
inside a function sandbox: run as a program (``python3 functions_helpers.py``)
it is a function that speaks the function socket protocol
(docs/function-ipc.md) by hand, without the SDK, and breaks it on request:

    payload "garbage:KIND"   send the malformed frame KIND (see GARBAGE),
                             report on stderr what the core answered and
                             whether it closed the connection, then exit 0
    "garbage-stay:KIND"      the same, then stay alive instead of exiting
    "unread:N"               send N config requests without reading the
                             answers, report how the connection ended,
                             then stay alive
    any other payload        answer "fine:" + payload

With BAD_IPC_AT_START="idle:N" in its environment it first opens N more
connections to its socket that never say hello, with "big" one whose
first frame claims 16 MiB, reports what happened to them on stderr, and
only then says hello on a connection of its own.

The rest are helpers the tests use: group documents, deployments,
invocations, `sedgectl functions --json`, and the host processes that
belong to one sedged's functions (found by their SEDGE_SOCKET variable, so
that a process that escaped its parent is still found).
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time


BUILD_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")



def frame(header, payload=b""):
    """One frame: u32 length, u32 header length, JSON header, payload."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack(">II", 4 + len(head) + len(payload), len(head)) + head + payload


def read_frame(sock):
    """(header dict, payload), or None at EOF."""
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
    raw = exact(4)
    if raw is None:
        return None
    (length,) = struct.unpack(">I", raw)
    body = exact(length)
    if body is None:
        return None
    (hlen,) = struct.unpack(">I", body[:4])
    return json.loads(body[4:4 + hlen].decode()), body[4 + hlen:]


def read_until_eof(sock, timeout=5.0):
    """Frames until the peer closes (or resets, closing with what we sent
    unread): (frames, closed)."""
    sock.settimeout(timeout)
    frames = []
    try:
        while True:
            f = read_frame(sock)
            if f is None:
                return frames, True
            frames.append(f[0])
    except ConnectionResetError:
        return frames, True
    except (socket.timeout, OSError, ValueError):
        return frames, False


def send_ignoring_close(sock, data):
    """Send what the core may refuse to read: it closes a connection that is
    not a function's at once."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


# Malformed frames, each one a violation docs/function-ipc.md says gets
# {"op":"error"} and a closed connection.
GARBAGE = {
    "short": struct.pack(">I", 2) + b"xx",                         # length below 4
    "huge": struct.pack(">I", 0xFFFFFFF0) + b"\x00" * 32,           # over 16 MiB
    "over-16mib": struct.pack(">I", (16 << 20) + 1) + b"\x00" * 32,  # over memory_mb 16
    "header-overrun": struct.pack(">II", 8, 1000) + b"abcd",       # header_len > length
    "not-json": frame(b"{this is not json"),
    "not-object": frame(b"[1, 2, 3]"),
    "no-op": frame({"id": 1, "ok": True}),
    "op-not-string": frame({"op": 7}),
    "unknown-op": frame({"op": "frobnicate", "req": 1}),
    "result-without-id": frame({"op": "result", "ok": True}, b"x"),
    "request-without-req": frame({"op": "publish", "topic": "a/b", "qos": 0}, b"x"),
    "second-hello": frame({"op": "hello", "function": "x", "token": "0" * 32, "sdk": "t"}),
}


def _outcome(sock, timeout):
    """How a connection the core should close ended: its frames' errors, or
    "open" when it is still open after `timeout`."""
    frames, closed = read_until_eof(sock, timeout)
    errors = [f.get("error", "") for f in frames]
    return ("closed: " + "; ".join(errors)) if closed else "open"


def _silent_connections(how):
    """BAD_IPC_AT_START: connections that never say hello, before ours."""
    extra = []
    if how.startswith("idle:"):
        for _ in range(int(how.split(":", 1)[1])):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(os.environ["SEDGE_SOCKET"])
            extra.append(s)
    elif how == "big":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(os.environ["SEDGE_SOCKET"])
        send_ignoring_close(s, struct.pack(">I", 16 << 20) + b"\0" * 64)
        extra.append(s)
    for i, s in enumerate(extra):
        sys.stderr.write("bad-ipc: silent connection %d: %s\n" % (i, _outcome(s, 15.0)))
        s.close()
    sys.stderr.flush()


def _unread(sock, count):
    """Requests whose answers are never read, until the core gives up."""
    try:
        for i in range(count):
            sock.sendall(frame({"op": "config", "req": i + 1}))
        outcome = "still open after %d requests" % count
    except OSError as e:
        outcome = "closed by the core (%s)" % e.__class__.__name__
    sys.stderr.write("bad-ipc: unread: %s\n" % outcome)
    sys.stderr.flush()
    time.sleep(3600)


def bad_ipc_main():
    if os.environ.get("BAD_IPC_AT_START"):
        _silent_connections(os.environ["BAD_IPC_AT_START"])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["SEDGE_SOCKET"])
    sock.sendall(frame({"op": "hello", "function": os.environ["SEDGE_FUNCTION"],
                        "token": os.environ["SEDGE_TOKEN"], "sdk": "bad-ipc/0"}))
    hello = read_frame(sock)
    if not hello or not hello[0].get("ok"):
        sys.stderr.write("bad-ipc: hello refused: %r\n" % (hello,))
        return 1
    while True:
        got = read_frame(sock)
        if got is None:
            return 0
        header, payload = got
        if header.get("op") != "invoke":
            continue
        text = payload.decode("utf-8", "replace")
        if text.startswith("garbage:") or text.startswith("garbage-stay:"):
            stay = text.startswith("garbage-stay:")
            kind = text.split(":", 1)[1]
            sock.sendall(GARBAGE[kind])
            frames, closed = read_until_eof(sock)
            sys.stderr.write("bad-ipc: sent %s; core answered %s; %s\n"
                             % (kind, json.dumps(frames),
                                "connection closed" if closed else "connection still open"))
            sys.stderr.flush()
            if stay:  # ignore being closed: the core must end this process
                time.sleep(3600)
            return 0
        if text.startswith("unread:"):
            _unread(sock, int(text.split(":", 1)[1]))
        sock.sendall(frame({"op": "result", "id": header["id"], "ok": True},
                           b"fine:" + payload))





def public_dir(prefix="sedge-fn-"):
    """A fresh 0755 directory under /tmp (function users can traverse it)."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def install_program(src, directory, name=None, mode=0o755):
    """Copy a program into `directory` (made readable for any user)."""
    dst = os.path.join(directory, name or os.path.basename(src))
    shutil.copyfile(src, dst)
    os.chmod(dst, mode)
    return dst


def fn(name, exec_, **kw):
    """A function entry of a group document."""
    entry = {"name": name, "exec": list(exec_)}
    entry.update(kw)
    return entry


def group(functions=(), routes=(), things=("s1", "app"), name="fntest"):
    return {"group": name, "things": [{"name": t} for t in things],
            "routes": list(routes), "functions": list(functions)}


def route(source, filter_, target):
    return {"source": source, "filter": filter_, "target": target}






def invoke(sedge, name, payload=None):
    """sedgectl invoke: the CompletedProcess (stdout: the result)."""
    args = ["invoke", name] + ([payload] if payload is not None else [])
    return sedge.ctl(*args)


def invoke_ok(sedge, name, payload=None):
    r = invoke(sedge, name, payload)
    assert r.returncode == 0, "invoke %s %r failed (%d): %s" % (name, payload, r.returncode,
                                                              r.stderr)
    return r.stdout


def invoke_fails(sedge, name, payload=None):
    """The error sedgectl printed for a failed invocation."""
    r = invoke(sedge, name, payload)
    assert r.returncode == 1, "invoke %s %r: expected exit 1, got %d (stdout %r, stderr %r)" % (
        name, payload, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "a failed invocation printed no error"
    return r.stderr


def functions(sedge):
    """`sedgectl functions --json` as {name: entry}."""
    r = sedge.ctl("functions", "--json")
    assert r.returncode == 0, "sedgectl functions failed: %s" % r.stderr
    return {f["name"]: f for f in json.loads(r.stdout)["functions"]}


def function(sedge, name):
    fns = functions(sedge)
    assert name in fns, "function %s not in sedgectl functions: %s" % (name, sorted(fns))
    return fns[name]


def wait_function(sedge, name, predicate, timeout=10.0, what="function state"):
    last = {}

    def check():
        last["f"] = functions(sedge).get(name)
        return last["f"] is not None and predicate(last["f"])
    try:
        from conftest import wait_for  # not at the top: functions import this module too
        wait_for(check, timeout, 0.05, what)
    except AssertionError as e:
        raise AssertionError("%s; last: %r" % (e, last.get("f"))) from None
    return last["f"]


def live_instances(entry):
    return [i for i in entry["instances"] if i["state"] != "stopping"]




def _proc_strings(pid, name):
    """/proc/PID/NAME (environ, cmdline) as its NUL-separated strings."""
    try:
        with open("/proc/%s/%s" % (pid, name), "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _environ(pid):
    return _proc_strings(pid, "environ")


def _cmdline(pid):
    return _proc_strings(pid, "cmdline")


def proc_status(pid, key):
    """The first number of line KEY of /proc/PID/status (None if gone)."""
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _parent(pid):
    return proc_status(pid, "PPid") or 0


def write_public(path, text, directory_too=False):
    """A file any user may read (and its directory, made 0755 if asked)."""
    if directory_too:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.chmod(os.path.dirname(path), 0o755)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def _standby_pids(sedge):
    """Pids of the instances sedged keeps on standby (set up, not running
    the function), from sedgectl functions --json."""
    sedgectl = os.path.join(os.environ.get("SEDGE_BUILD", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")), "sedgectl")
    r = subprocess.run([sedgectl, "--data-dir", str(sedge.data_dir), "functions", "--json"],
                       capture_output=True, text=True)
    if r.returncode:
        return set()
    return {f["standby"] for f in json.loads(r.stdout)["functions"] if f.get("standby")}


def socket_path(sedge, name):
    """The function socket of function `name` of this sedged."""
    return os.path.join(os.path.realpath(str(sedge.data_dir)), "fn", name + ".sock")


def function_processes(sedge, name=None):
    """Host pids of processes started for this sedged's functions (all of
    an instance: sedge-sandbox, its init and the function), optionally of
    one function only: the function's processes carry its socket in their
    environment (SEDGE_SOCKET, inherited, so that a process that escaped
    its parent is still found), sedge-sandbox's have it in their command
    line. Instances on standby (prepared ahead, not running the function)
    are left out."""
    sockets = os.path.join(os.path.realpath(str(sedge.data_dir)), "fn") + "/"
    standby = _standby_pids(sedge)
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        env = _environ(pid)
        socks = [kv[len(b"SEDGE_SOCKET="):] for kv in env if kv.startswith(b"SEDGE_SOCKET=")]
        socks += [a for a in _cmdline(pid) if a.startswith(sockets.encode())]
        if not any(s.startswith(sockets.encode()) for s in socks):
            continue
        if name is not None and socket_path(sedge, name).encode() not in socks:
            continue
        ancestor, hops = int(pid), 0
        while ancestor > 1 and ancestor not in standby and hops < 8:
            ancestor, hops = _parent(ancestor), hops + 1
        if ancestor in standby:
            continue
        pids.append(int(pid))
    return sorted(pids)


def popen_sedgectl(sedgectl, sedge, *args):
    return subprocess.Popen([str(sedgectl), "--data-dir", str(sedge.data_dir)] +
                            [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def log_lines(sedge, since, needle):
    return [l for l in sedge.log_since(since).splitlines() if needle in l]


if __name__ == "__main__":
    sys.exit(bad_ipc_main())


def __getattr__(name):
    """deploy, deploy_ok and deployments are groups_helpers' (the tests' one
    copy), imported only when a test asks: sandboxed functions import this
    module too, without the test framework beside it."""
    if name in ("deploy", "deploy_ok", "deployments", "active_version", "wait_for"):
        import groups_helpers
        import conftest
        return getattr(groups_helpers, name, None) or getattr(conftest, name)
    raise AttributeError(name)


def assert_not_in_files(directory, value):
    """No file directly in `directory` (a data directory: the store, its
    WAL, keys, logs) holds `value` (str) — a secret never at rest in clear."""
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                assert value.encode() not in f.read(), "%s holds the secret" % name
