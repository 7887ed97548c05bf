"""The function sockets under attack (issue 11, item 5): one socket per
function, DATA_DIR/fn/NAME.sock, that only the function's user may open;
a peer that is not a process of one of its instances is refused before a
byte it sends is read; connections must say hello within 5 s, few may wait
for it, and frames before it are small; after it, frames and the bytes a
function leaves unread in the core are bounded by its memory_mb, so sedged's
memory stays bounded whatever a function or a local user does.

The misbehaving function is functions_helpers.py run as a program.
"""

import os
import re
import socket
import struct
import subprocess

import pytest

import functions_helpers as fh
from conftest import TIMEOUT
from functions_fixtures import PYTHON, bad_ipc, behave, fsedge, public_tmp  # noqa: F401
from functions_helpers import deploy_ok, function, group, invoke, invoke_ok

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="function users need root")

def rss_kb(pid):
    return fh.proc_status(pid, "VmRSS")


def log_of(sedge, name):
    r = sedge.ctl("logs", name)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_socket_is_the_function_users_alone(fsedge):
    """Not 0666: each function's socket belongs to its user, mode 0600, and
    another user cannot even connect."""
    deploy_ok(fsedge, group([behave("a"), behave("b", run_as="1234:2345")]))
    for name, owner in (("a", (65534, 65534)), ("b", (1234, 2345))):
        st = os.stat(fh.socket_path(fsedge, name))
        assert (st.st_uid, st.st_gid) == owner, (name, st)
        assert st.st_mode & 0o777 == 0o600, (name, oct(st.st_mode))
    probe = ("import socket, sys\n"
             "s = socket.socket(socket.AF_UNIX)\n"
             "try:\n"
             "    s.connect(sys.argv[1])\n"
             "except PermissionError:\n"
             "    print('refused')\n")
    r = subprocess.run([PYTHON, "-c", probe, fh.socket_path(fsedge, "a")], capture_output=True,
                       text=True, timeout=TIMEOUT, preexec_fn=lambda: (os.setgid(4321),
                                                                       os.setuid(4321)))
    assert r.stdout.strip() == "refused", (r.stdout, r.stderr)
    assert invoke_ok(fsedge, "a", "whoami") == "65534:65534"
    assert invoke_ok(fsedge, "b", "whoami") == "1234:2345"


def test_fifty_connections_that_never_say_hello_are_closed_and_rss_stays_bounded(fsedge):
    """50 connections from a process that is not the function's, each
    claiming a 16 MiB frame and sending 1 MiB of it: each gets one error
    frame and is closed without being read; sedged's memory does not grow
    with them (it buffered 16 MiB per connection before)."""
    deploy_ok(fsedge, group([behave()]))
    assert invoke_ok(fsedge, "behave", "whoami")
    before = rss_kb(fsedge.pid)
    mark = fsedge.log_mark()
    conns = []
    for _ in range(50):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(fh.socket_path(fsedge, "behave"))
        fh.send_ignoring_close(s, struct.pack(">I", 16 << 20) + b"\0" * (1 << 20))
        conns.append(s)
    for s in conns:
        frames, closed = fh.read_until_eof(s, TIMEOUT)
        s.close()
        assert closed, "a connection that never said hello stayed open"
        assert frames and "not a process of an instance" in frames[-1]["error"], frames
    after = rss_kb(fsedge.pid)
    assert after - before < 4096, "sedged grew from %d to %d KB" % (before, after)
    fsedge.wait_log(r"function socket of behave: connection from pid %d .*refused" % os.getpid(),
                    since=mark)
    assert invoke_ok(fsedge, "behave", "whoami") == "65534:65534"


def test_connections_of_a_starting_instance_must_say_hello_in_time(fsedge, public_tmp):
    """An instance's own processes may open a few connections before its
    hello — at most 4 wait at once, each closed if it says nothing for 5 s
    — and the instance still starts and serves."""
    deploy_ok(fsedge, group([bad_ipc(public_tmp, env={"BAD_IPC_AT_START": "idle:6"},
                                     lifecycle="long-lived")]))
    assert invoke_ok(fsedge, "bad", "x") == "fine:x"
    log = log_of(fsedge, "bad")
    outcomes = re.findall(r"silent connection \d+: (.*)$", log, re.M)
    assert len(outcomes) == 6, log
    assert outcomes.count("closed: no hello within 5 s") == 4, outcomes
    assert outcomes.count("closed: too many connections waiting for their hello") == 2, outcomes
    f = function(fsedge, "bad")
    assert f["state"] == "running", f


def test_a_large_frame_before_the_hello_is_refused(fsedge, public_tmp):
    deploy_ok(fsedge, group([bad_ipc(public_tmp, env={"BAD_IPC_AT_START": "big"},
                                     lifecycle="long-lived")]))
    assert invoke_ok(fsedge, "bad", "x") == "fine:x"
    log = log_of(fsedge, "bad")
    assert "silent connection 0: closed: frame of 16777216 bytes, over the limit of 4096 " \
           "before the hello" in log, log


def test_a_function_that_stops_reading_loses_its_connection(fsedge, public_tmp):
    """Requests whose answers a function never reads pile up in the core
    only up to its memory_mb: then the connection is closed, the instance
    ends, and sedged's memory stays bounded."""
    config = {"blob": "x" * 100000}
    deploy_ok(fsedge, group([bad_ipc(public_tmp, memory_mb=16, config=config), behave()]))
    assert invoke_ok(fsedge, "bad", "x") == "fine:x"
    before = rss_kb(fsedge.pid)
    mark = fsedge.log_mark()
    r = invoke(fsedge, "bad", "unread:1000")
    assert r.returncode == 1, (r.stdout, r.stderr)
    fsedge.wait_log(r"function socket: bad: \d+ bytes it has not read, over its limit of "
                    r"16842752", since=mark)
    fh.wait_for(lambda: "bad-ipc: unread: closed by the core" in log_of(fsedge, "bad"),
                  timeout=TIMEOUT, what="the function to see its connection closed")
    after = rss_kb(fsedge.pid)
    assert after - before < 40 * 1024, "sedged grew from %d to %d KB" % (before, after)
    assert invoke_ok(fsedge, "bad", "again") == "fine:again"
    assert invoke_ok(fsedge, "behave", "whoami") == "65534:65534"


def test_frames_after_the_hello_are_bounded_by_memory_mb(fsedge, public_tmp):
    """A function with memory_mb 16 may not send a frame over 16 MiB, even
    though the core's maximum is larger."""
    fsedge.stop()
    fsedge.extra = {"functions": {"max_frame_bytes": 64 << 20}}
    fsedge.write_config()
    fsedge.start()
    deploy_ok(fsedge, group([bad_ipc(public_tmp, memory_mb=16)]))
    mark = fsedge.log_mark()
    r = invoke(fsedge, "bad", "garbage:over-16mib")
    assert r.returncode == 1
    fsedge.wait_log(r"function socket: bad: frame of 16777217 bytes, over the limit of "
                    r"16777216", since=mark)
    assert invoke_ok(fsedge, "bad", "again") == "fine:again"
