"""The function ("lambda") runtime: functions deployed in a group, invoked
through routes from things and with `sedgectl invoke`, their lifecycles,
limits, sandbox and failures.

Functions are the examples under examples/functions (the C ones built into
build/examples: echo, counter and behave, whose payload chooses what it
does; the Python echo.py and counter.py) and a hand-written misbehaving
function in functions_helpers.py. Each test deploys a group to its own
sedged and checks what a user sees: the invoker's result or error,
`sedgectl functions --json`, sedged's log, `sedgectl logs`, and the MQTT
messages functions publish. After a failure the test checks that the core
and the other functions still serve.

sedged runs as the user running pytest. Sandboxes, run_as and cgroup
limits need root; those tests skip otherwise, and the rest run their
functions with isolation "none".
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import functions_fixtures
import functions_helpers as fh
import mqtt_raw
from conftest import BUILD, REPO, SEDGECTL, SLOW, TIMEOUT
from functions_fixtures import PYTHON, bad_ipc, fsedge, public_tmp  # noqa: F401
from functions_helpers import (deploy, deploy_ok, fn, function, function_processes, group,
                               invoke, invoke_fails, invoke_ok, live_instances, route,
                               wait_function, wait_for)

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="sandboxes, run_as and cgroup limits need "
                                                 "sedged to run as root")

EXAMPLES = BUILD / "examples"
BEHAVE = str(EXAMPLES / "behave")
ECHO = str(EXAMPLES / "echo")
COUNTER = str(EXAMPLES / "counter")
PY_EXAMPLES = REPO / "examples" / "functions" / "python"

# Without root there is no sandbox: functions run as sedged's user.
ISOLATION = {} if ROOT else {"isolation": "none"}
# The directories with the functions' own files: the one place besides the
# system directories and declared resources that a sandbox shows.
CODE_C = str(EXAMPLES)
CODE_PY = str(PY_EXAMPLES)


def behave(name="behave", **kw):
    """behave takes commands ("sleep:500"), not JSON: binary encoding."""
    return functions_fixtures.behave(name, **dict(ISOLATION, **kw))


def counter(**kw):
    """The C counter example, long-lived."""
    return fn("counter", [COUNTER], **dict(ISOLATION, code=CODE_C, lifecycle="long-lived", **kw))


def echo(name="echo", **kw):
    return fn(name, [ECHO], **dict(ISOLATION, code=CODE_C, **kw))


def check_still_serving(sedge, bystander="echo"):
    """The core answers and another function still works."""
    assert sedge.running(), "sedged died"
    assert sedge.status()["pid"] == sedge.pid
    assert invoke_ok(sedge, bystander, '"still here"') == 'echo:"still here"'


@pytest.fixture(scope="module", autouse=True)
def built_examples():
    missing = [p for p in (BEHAVE, ECHO, COUNTER, str(BUILD / "sedge-sandbox")) if
               not os.path.exists(p)]
    assert not missing, "not built (cmake --build build): %s" % missing



@pytest.mark.parametrize("lang", ["c", "python"])
def test_counter_example_through_routes_and_invoke(fsedge, lang):
    """A thing's message routed to the counter function makes it publish
    {"count": N}, which a subscribing thing receives; sedgectl invoke gets
    the next count as its result."""
    exec_ = [COUNTER] if lang == "c" else [PYTHON, str(PY_EXAMPLES / "counter.py")]
    code = CODE_C if lang == "c" else CODE_PY
    deploy_ok(fsedge, group(
        [fn("counter", exec_, lifecycle="long-lived", code=code, **ISOLATION), echo()],
        [route("thing:s1", "sensors/#", "function:counter"),
         route("function:counter", "counter/#", "thing:app")]))
    app = fsedge.client("app")
    app.subscribe("counter/#", qos=1)
    s1 = fsedge.client("s1")
    s1.publish("sensors/temp", b'{"t": 21.5}', qos=1)
    m = app.get()
    assert m.topic == "counter/value"
    assert json.loads(m.payload) == {"count": 1}

    assert invoke_ok(fsedge, "counter", '{"x": 1}') == "2"
    m = app.get()
    assert json.loads(m.payload) == {"count": 2}

    f = wait_function(fsedge, "counter", lambda f: f["invocations"] == 2)
    assert f["lifecycle"] == "long-lived"
    assert f["errors"] == 0 and f["publish_refused"] == 0
    assert len(f["instances"]) == 1 and f["instances"][0]["invocations"] == 2


@pytest.mark.parametrize("lang", ["c", "python"])
def test_echo_example_via_sedgectl_invoke(fsedge, lang):
    exec_ = [ECHO] if lang == "c" else [PYTHON, str(PY_EXAMPLES / "echo.py")]
    code = CODE_C if lang == "c" else CODE_PY
    deploy_ok(fsedge, group([fn("echo", exec_, code=code, **ISOLATION)]))
    assert invoke_ok(fsedge, "echo", '{"hello": "world"}') == 'echo:{"hello": "world"}'
    assert invoke_ok(fsedge, "echo", '"again"') == 'echo:"again"'
    # An empty payload is a valid (empty) event.
    assert invoke_ok(fsedge, "echo") == "echo:"
    f = function(fsedge, "echo")
    assert f["invocations"] == 3 and f["errors"] == 0


def test_invoke_payload_from_a_file_and_from_stdin(fsedge):
    """sedgectl invoke NAME [PAYLOAD|@FILE|-]"""
    deploy_ok(fsedge, group([echo()]))
    path = fsedge.root / "event.json"
    path.write_text('{"from": "file"}')
    assert invoke_ok(fsedge, "echo", "@%s" % path) == 'echo:{"from": "file"}'
    r = subprocess.run([str(SEDGECTL), "--data-dir", str(fsedge.data_dir), "invoke", "echo", "-"],
                       input='{"from": "stdin"}', capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, 'echo:{"from": "stdin"}'), \
        "invoke echo - (stdin): exit %d, stderr %r" % (r.returncode, r.stderr)


def test_large_payload_round_trip(fsedge):
    deploy_ok(fsedge, group([echo()]))
    payload = json.dumps("x" * (1 << 20) + "end")
    path = fsedge.root / "big.json"
    path.write_text(payload)
    out = invoke_ok(fsedge, "echo", "@%s" % path)
    assert len(out) == len(payload) + 5 and out == "echo:" + payload


def test_routed_message_makes_the_c_function_publish_to_a_subscriber(fsedge):
    """paho publish from thing s1 -> behave "publish:out/result" -> app."""
    deploy_ok(fsedge, group(
        [behave()],
        [route("thing:s1", "cmd/#", "function:behave"),
         route("function:behave", "out/#", "thing:app")]))
    app = fsedge.client("app")
    app.subscribe("out/#", qos=1)
    s1 = fsedge.client("s1")
    s1.publish("cmd/go", b"publish:out/result", qos=1)
    m = app.get()
    assert (m.topic, m.payload) == ("out/result", b"hi")
    # A topic outside the thing's route does not reach the function.
    s1.publish("other/go", b"publish:out/other", qos=1)
    s1.publish("cmd/go", b"publish:out/second", qos=1)
    m = app.get()
    assert m.topic == "out/second", "a message outside the route reached the function"
    f = wait_function(fsedge, "behave", lambda f: f["invocations"] == 2)
    assert f["errors"] == 0



def test_on_demand_concurrency_is_capped_at_max_instances(fsedge):
    deploy_ok(fsedge, group([behave(max_instances=3, timeout_s=10)]))
    started = time.monotonic()
    procs = [fh.popen_sedgectl(SEDGECTL, fsedge, "invoke", "behave", "sleep:500")
             for _ in range(6)]
    peak, peak_queue, seen_pids = 0, 0, set()
    while any(p.poll() is None for p in procs):
        f = function(fsedge, "behave")
        live = live_instances(f)
        peak = max(peak, len(live))
        peak_queue = max(peak_queue, f["queue"])
        seen_pids.update(i["pid"] for i in f["instances"])
        time.sleep(0.03)
    elapsed = time.monotonic() - started
    results = [(p.returncode, p.stdout.read(), p.stderr.read()) for p in procs]
    assert results == [(0, "slept", "")] * 6, results
    assert peak <= 3, "%d instances ran at once (max_instances 3)" % peak
    f = function(fsedge, "behave")
    assert f["invocations"] == 6 and f["errors"] == 0 and f["refused"] == 0
    # Timing-independent: six invocations were shared by exactly three
    # instances, which stay warm after their work.
    assert len(f["instances"]) == 3, f["instances"]
    assert sum(i["invocations"] for i in f["instances"]) == 6, f["instances"]
    assert seen_pids <= {i["pid"] for i in f["instances"]}, (seen_pids, f["instances"])
    # Six 0.5 s sleeps on at most three instances take two rounds.
    assert elapsed >= 0.95, "six sleep:500 on 3 instances took only %.2f s" % elapsed


def test_long_lived_counter_keeps_state_and_restarts_after_kill9(fsedge):
    deploy_ok(fsedge, group([counter(),
                             echo()]))
    f = function(fsedge, "counter")
    assert f["lifecycle"] == "long-lived" and len(f["instances"]) == 1, f
    assert [invoke_ok(fsedge, "counter", "{}") for _ in range(3)] == ["1", "2", "3"]
    # Concurrent invocations of its one instance are queued, each counted once.
    procs = [fh.popen_sedgectl(SEDGECTL, fsedge, "invoke", "counter", "{}") for _ in range(5)]
    outs = sorted(int(p.communicate(timeout=TIMEOUT)[0] or 0) for p in procs)
    assert outs == [4, 5, 6, 7, 8], outs
    f = function(fsedge, "counter")
    pid = f["instances"][0]["pid"]
    old = set(function_processes(fsedge, "counter"))
    assert pid in old

    mark = fsedge.log_mark()
    os.kill(pid, signal.SIGKILL)
    fsedge.wait_log(r"function counter \(pid %d\): crashed \(signal 9\)" % pid, since=mark)
    f = wait_function(fsedge, "counter",
                      lambda f: any(i["pid"] != pid and i["state"] == "idle"
                                    for i in f["instances"]),
                      timeout=TIMEOUT, what="a new counter instance")
    assert f["crashes"] == 1, f
    assert f["state"] == "running", f
    # The old instance's processes (sandbox, init, function) are all gone.
    wait_for(lambda: not (old & set(function_processes(fsedge, "counter"))),
               what="the killed instance's processes to end")
    assert invoke_ok(fsedge, "counter", "{}") == "1", "the restarted counter kept state?"
    assert invoke_ok(fsedge, "counter", "{}") == "2"
    assert function(fsedge, "counter")["crashes"] == 1
    check_still_serving(fsedge)


def test_idle_on_demand_instances_are_reaped(fsedge):
    deploy_ok(fsedge, group([behave(idle_timeout_s=1)]))
    assert invoke_ok(fsedge, "behave", "whoami")
    assert len(function(fsedge, "behave")["instances"]) == 1
    assert function_processes(fsedge, "behave")
    wait_function(fsedge, "behave", lambda f: f["instances"] == [], timeout=TIMEOUT,
                  what="the idle instance to be reaped")
    wait_for(lambda: not function_processes(fsedge, "behave"),
               what="the idle instance's processes to end")
    f = function(fsedge, "behave")
    assert f["crashes"] == 0 and f["errors"] == 0, f
    assert invoke_ok(fsedge, "behave", "sleep:1") == "slept"


def test_on_demand_function_keeps_an_instance_on_standby_and_starts_it(fsedge):
    """An on-demand function has one instance prepared ahead (cgroup joined,
    sandbox built, waiting to exec): the next start uses it, and a new
    spare is prepared. A long-lived function has none."""
    deploy_ok(fsedge, group([behave(), counter()]))
    spare = wait_function(fsedge, "behave", lambda f: f["standby"], timeout=TIMEOUT,
                          what="a standby instance")["standby"]
    assert function(fsedge, "behave")["instances"] == []
    assert function(fsedge, "counter")["standby"] is None
    assert invoke_ok(fsedge, "behave", "whoami") == "65534:65534"
    f = function(fsedge, "behave")
    assert [i["pid"] for i in f["instances"]] == [spare], f
    wait_function(fsedge, "behave", lambda f: f["standby"] not in (None, spare),
                  timeout=TIMEOUT, what="a new standby instance")


def test_redeploy_keeps_unchanged_functions_and_stops_removed_ones(fsedge):
    kept = counter()
    deploy_ok(fsedge, group([kept, behave(lifecycle="long-lived")]))
    assert invoke_ok(fsedge, "counter", "{}") == "1"
    pid = function(fsedge, "counter")["instances"][0]["pid"]
    behave_pids = function_processes(fsedge, "behave")
    assert behave_pids
    deploy_ok(fsedge, group([kept, echo()]))
    fns = fh.functions(fsedge)
    assert set(fns) == {"counter", "echo"}, sorted(fns)
    assert [i["pid"] for i in fns["counter"]["instances"]] == [pid], \
        "an unchanged long-lived function was restarted by a deployment"
    assert invoke_ok(fsedge, "counter", "{}") == "2"
    wait_for(lambda: not function_processes(fsedge, "behave"),
               what="the removed function's processes to end")
    # A changed function is replaced.
    deploy_ok(fsedge, group([dict(kept, timeout_s=5), echo()]))
    f = function(fsedge, "counter")
    assert f["limits"]["timeout_s"] == 5
    assert invoke_ok(fsedge, "counter", "{}") == "1"


def test_stopping_sedged_stops_its_functions_and_a_restart_brings_them_back(fsedge):
    deploy_ok(fsedge, group([counter(),
                             behave()]))
    assert invoke_ok(fsedge, "counter", "{}") == "1"
    assert invoke_ok(fsedge, "behave", "whoami")
    assert len(function_processes(fsedge)) >= 4
    assert fsedge.stop() == 0
    wait_for(lambda: not function_processes(fsedge), timeout=5,
               what="no function process left after sedged stopped")
    fsedge.start()
    f = wait_function(fsedge, "counter", lambda f: any(i["state"] == "idle"
                                                       for i in f["instances"]),
                      what="the long-lived function to start with the core")
    assert invoke_ok(fsedge, "counter", "{}") == "1"
    assert invoke_ok(fsedge, "behave", "sleep:1") == "slept"


@needs_root
def test_two_cores_with_the_same_function_names_do_not_touch_each_other(public_tmp, make_sedge):
    """Two sedged on one machine (two data directories) may deploy
    functions of the same name: stopping one, or its limits, must not reach
    the other's instances (cgroups, processes)."""
    a = make_sedge(name=os.path.join(public_tmp, "a"))
    b = make_sedge(name=os.path.join(public_tmp, "b"))
    deploy_ok(a, group([counter(), behave(memory_mb=32)]))
    deploy_ok(b, group([counter(), behave(memory_mb=200)]))
    assert invoke_ok(a, "counter", "{}") == "1"
    assert invoke_ok(b, "counter", "{}") == "1"
    problems = []
    # b's behave has 200 MB; a's (same name) has 32 MB.
    assert invoke_ok(a, "behave", "whoami")
    r = invoke(b, "behave", "alloc:64")
    if (r.returncode, r.stdout) != (0, "allocated"):
        problems.append("b's behave (memory_mb 200) failed alloc:64 with %r: it got a's "
                        "32 MB limit" % r.stderr.strip())
    assert invoke_ok(b, "behave", "whoami")  # a new instance if the last one was killed
    b_pid = function(b, "counter")["instances"][0]["pid"]
    b_procs = set(function_processes(b, "counter"))
    assert a.stop() == 0
    time.sleep(0.5)
    alive = b_procs & set(function_processes(b, "counter"))
    f = function(b, "counter")
    if alive != b_procs or [i["pid"] for i in f["instances"]] != [b_pid] or f["crashes"]:
        problems.append("stopping core a killed core b's counter (b's counter now: state %r, "
                        "crashes %d)" % (f["state"], f["crashes"]))
    r = invoke(b, "counter", "{}")
    if r.stdout != "2":
        problems.append("b's counter answered %r after a stopped, expected '2' (state kept)"
                        % (r.stdout or r.stderr.strip()))
    assert not problems, "; ".join(problems)


def test_function_invokes_another_and_reads_its_config(fsedge):
    deploy_ok(fsedge, group([behave(config={"threshold": 7, "unit": "C"}),
                             behave("slow", timeout_s=1), echo()],
                            [route("function:behave", "#", "function:echo"),
                             route("function:behave", "#", "function:slow"),
                             route("function:slow", "#", "function:behave")]))
    assert json.loads(invoke_ok(fsedge, "behave", "config")) == {"threshold": 7, "unit": "C"}
    assert json.loads(invoke_ok(fsedge, "slow", "config")) == {}
    assert invoke_ok(fsedge, "behave", 'invoke:echo:"hi"') == 'echo:"hi"'
    out = invoke_ok(fsedge, "behave", "invoke:nosuch:x")
    assert out.startswith("error: not_found:"), out
    out = invoke_ok(fsedge, "behave", "invoke:echo:not json")
    assert out.startswith("error: invalid:"), out
    out = invoke_ok(fsedge, "behave", "invoke:slow:sleep:5000")
    assert out.startswith("error: timeout:") and "timed out" in out, out
    assert invoke_ok(fsedge, "behave", "invoke-async:echo:[1]") == "queued"
    wait_function(fsedge, "echo", lambda f: f["invocations"] == 2)
    assert invoke_ok(fsedge, "behave", "source") == "sedgectl"
    assert invoke_ok(fsedge, "slow", "invoke:behave:source") == "function:slow"


def test_function_invokes_another_only_through_a_route(fsedge):
    """Issue 11 item 7: function-to-function invocations need a route
    function:A -> function:B, like every other flow; the route's direction
    counts, and an asynchronous invoke is refused the same way."""
    deploy_ok(fsedge, group([behave(), behave("other"), echo()],
                            [route("function:behave", "#", "function:echo")]))
    assert invoke_ok(fsedge, "behave", 'invoke:echo:"hi"') == 'echo:"hi"'
    out = invoke_ok(fsedge, "other", 'invoke:echo:"hi"')
    assert out == "error: denied: no route from function:other to function:echo", out
    out = invoke_ok(fsedge, "other", 'invoke-async:echo:"hi"')
    assert out.startswith("error: denied:"), out
    out = invoke_ok(fsedge, "behave", "invoke:other:whoami")
    assert out.startswith("error: denied:"), out
    f = function(fsedge, "echo")
    assert f["invocations"] == 1, f
    assert function(fsedge, "other")["invocations"] == 2  # its own two, none from behave


def test_timeout_kills_the_instance_and_the_next_invocation_works(fsedge):
    deploy_ok(fsedge, group([behave(timeout_s=1), echo()]))
    assert invoke_ok(fsedge, "behave", "whoami")
    pids = set(function_processes(fsedge, "behave"))
    assert pids
    mark = fsedge.log_mark()
    started = time.monotonic()
    err = invoke_fails(fsedge, "behave", "sleep:30000")
    took = time.monotonic() - started
    assert "timed out" in err
    assert 0.9 <= took < 5 * SLOW, "the timeout fired after %.1f s (timeout_s 1)" % took
    fsedge.wait_log(r"function behave \(pid \d+\): invocation timed out after 1\.0 s", since=mark)
    f = function(fsedge, "behave")
    assert f["timeouts"] == 1 and f["errors"] == 1 and f["crashes"] == 0, f
    # The hung instance was killed: none of its processes remain.
    wait_for(lambda: not (pids & set(function_processes(fsedge, "behave"))),
               what="the timed-out instance to be killed")
    assert invoke_ok(fsedge, "behave", "sleep:10") == "slept"
    assert function(fsedge, "behave")["timeouts"] == 1
    check_still_serving(fsedge)


@needs_root
def test_memory_limit_kills_with_out_of_memory(fsedge):
    deploy_ok(fsedge, group([behave(memory_mb=32), echo()]))
    f = function(fsedge, "behave")
    assert f["limits"]["memory_mb"] == 32
    assert f["limits"]["enforced_by"] in ("cgroup v1", "cgroup v2"), f["limits"]
    assert invoke_ok(fsedge, "behave", "alloc:4") == "allocated"
    mark = fsedge.log_mark()
    err = invoke_fails(fsedge, "behave", "alloc:200")
    assert "out of memory" in err
    fsedge.wait_log(r"function behave \(pid \d+\): out of memory", since=mark)
    f = function(fsedge, "behave")
    assert f["oom_kills"] == 1 and f["crashes"] == 0, f
    assert "out of memory" in f["state"], f
    assert invoke_ok(fsedge, "behave", "alloc:4") == "allocated"
    check_still_serving(fsedge)


def test_queue_full_refuses_and_counts(fsedge):
    deploy_ok(fsedge, group([behave(max_instances=1, max_queue=1, timeout_s=10), echo()],
                            [route("thing:s1", "cmd/#", "function:behave")]))
    running = fh.popen_sedgectl(SEDGECTL, fsedge, "invoke", "behave", "sleep:2500")
    wait_function(fsedge, "behave",
                  lambda f: any(i["state"] == "busy" for i in f["instances"]),
                  what="the slow invocation to run")
    queued = fh.popen_sedgectl(SEDGECTL, fsedge, "invoke", "behave", "sleep:10")
    wait_function(fsedge, "behave", lambda f: f["queue"] == 1, what="one queued invocation")
    mark = fsedge.log_mark()
    err = invoke_fails(fsedge, "behave", "sleep:10")
    assert "queue full" in err
    # A routed message is refused too; an MQTT 5 QoS 1 publisher hears 0x97.
    raw = fsedge.raw(version=5)
    raw.connect("s1")
    ack = raw.publish("cmd/x", b"sleep:10", qos=1)
    assert ack.type == mqtt_raw.PUBACK and ack.reason == 0x97, ack
    f = function(fsedge, "behave")
    assert f["refused"] == 2 and f["queue"] == 1, f
    fsedge.wait_log(r"function behave: queue full", since=mark)
    assert running.wait(TIMEOUT) == 0 and running.stdout.read() == "slept"
    assert queued.wait(TIMEOUT) == 0 and queued.stdout.read() == "slept"
    f = function(fsedge, "behave")
    assert f["queue"] == 0 and f["refused"] == 2 and len(f["instances"]) <= 1, f
    assert invoke_ok(fsedge, "behave", "sleep:1") == "slept"
    check_still_serving(fsedge)



def ls(sedge, path, name="behave"):
    out = invoke_ok(sedge, name, "ls:" + path)
    return out.split("\n") if out else []


@needs_root
def test_sandbox_shows_only_its_volume_and_runs_as_nobody(fsedge, public_tmp):
    vol = os.path.join(public_tmp, "volume")
    fh.write_public(os.path.join(vol, "data.txt"), "from the volume", directory_too=True)
    secret_dir = os.path.join(public_tmp, "secret")
    secret = fh.write_public(os.path.join(secret_dir, "secret.txt"), "host secret",
                             directory_too=True)
    data_dir = os.path.realpath(str(fsedge.data_dir))
    key = os.path.join(data_dir, "ca.key")
    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY----- not really\n")
    os.chmod(key, 0o644)  # only the sandbox keeps it from the function

    deploy_ok(fsedge, group([behave(resources=[
        {"type": "volume", "source": vol, "dest": "/data", "access": "ro"}])]))
    f = function(fsedge, "behave")
    assert f["limits"]["isolation"] == "sandbox" and f["limits"]["run_as"] == "65534:65534"
    assert invoke_ok(fsedge, "behave", "whoami") == "65534:65534"

    assert invoke_ok(fsedge, "behave", "read:/data/data.txt") == "from the volume"
    assert invoke_ok(fsedge, "behave", "write:/data/new.txt") == "error: Read-only file system"
    assert invoke_ok(fsedge, "behave", "write:/data/data.txt") == "error: Read-only file system"
    assert open(os.path.join(vol, "data.txt")).read() == "from the volume"
    assert not os.path.exists(os.path.join(vol, "new.txt"))

    # The root holds the system directories and the paths it was given
    # (/data, and the top of the program's own directory), nothing else.
    top = set(ls(fsedge, "/"))
    program_top = BEHAVE.split("/")[1]
    allowed = {"bin", "dev", "etc", "proc", "sbin", "tmp", "usr", "data", program_top}
    extra = {e for e in top - allowed if not e.startswith("lib")}
    assert not extra, "the sandbox shows host paths it was not given: %s" % sorted(extra)
    assert {"data", "proc", "tmp", "usr", "etc", "dev"} <= top, top
    # The program's directory is there, but not its neighbours.
    assert ls(fsedge, os.path.dirname(BEHAVE)) == sorted(os.listdir(os.path.dirname(BEHAVE)))
    parent = os.path.dirname(os.path.dirname(BEHAVE))
    assert ls(fsedge, parent) == [os.path.basename(os.path.dirname(BEHAVE))]
    # Host files it was not given are not there, readable or not.
    assert invoke_ok(fsedge, "behave", "read:" + secret).startswith("error:")
    assert invoke_ok(fsedge, "behave", "read:" + key).startswith("error:"), \
        "a function read the data directory's key"
    assert invoke_ok(fsedge, "behave", "read:%s/sedge.db" % data_dir).startswith("error:")
    inside = invoke_ok(fsedge, "behave", "ls:" + data_dir)
    assert "ca.key" not in inside and "sedge.db" not in inside, inside
    # Its /tmp is its own, writable, and not the host's.
    scratch = "/tmp/sedge-fn-scratch-%d" % os.getpid()
    assert invoke_ok(fsedge, "behave", "write:" + scratch) == "written"
    assert invoke_ok(fsedge, "behave", "read:" + scratch) == "x"
    assert not os.path.exists(scratch), "the function wrote into the host's /tmp"
    assert "secret" not in invoke_ok(fsedge, "behave", "ls:" + public_tmp)
    # A minimal /dev.
    devs = set(ls(fsedge, "/dev"))
    assert {"null", "zero", "urandom"} <= devs
    assert not devs & {"mem", "kmem", "kmsg", "sda", "port"}, devs
    # The host's process list is not visible: the function's PID namespace.
    procs = [e for e in ls(fsedge, "/proc") if e.isdigit()]
    assert str(fsedge.pid) not in procs and len(procs) < 10, procs


def interfaces(proc_net_dev):
    return sorted(l.split(":")[0].strip() for l in proc_net_dev.splitlines() if ":" in l)


@needs_root
def test_sandbox_shows_a_device_only_when_declared(fsedge):
    device = next((d for d in ("/dev/loop-control", "/dev/ttyS0", "/dev/vcs", "/dev/tty")
                   if os.path.exists(d)), None)
    assert device
    name = os.path.basename(device)
    deploy_ok(fsedge, group([
        behave("plain"),
        behave("given", resources=[{"type": "device", "path": device, "access": "rw"}])]))
    plain_devs = set(ls(fsedge, "/dev", "plain"))
    assert name not in plain_devs, plain_devs
    given = invoke(fsedge, "given", "ls:/dev")
    assert given.returncode == 0, "a function with device %s: %s" % (device, given.stderr.strip())
    given_devs = set(given.stdout.split("\n"))
    assert name in given_devs, given_devs
    assert not (plain_devs | given_devs) & {"vda", "sda", "kmsg", "mem", "kvm"}


@needs_root
def test_sandbox_sysfs_and_network_only_when_declared(fsedge):
    deploy_ok(fsedge, group([behave("plain"), behave("given", sysfs=True, network=True)]))
    assert "sys" not in ls(fsedge, "/", "plain")
    assert "kernel" in ls(fsedge, "/sys", "given")
    assert invoke_ok(fsedge, "given", "write:/sys/kernel/x").startswith("error:")
    assert interfaces(invoke_ok(fsedge, "plain", "read:/proc/net/dev")) in ([], ["lo"])
    host = interfaces(open("/proc/net/dev").read())
    assert interfaces(invoke_ok(fsedge, "given", "read:/proc/net/dev")) == host


@needs_root
def test_run_as_a_given_user(fsedge):
    deploy_ok(fsedge, group([behave(run_as="1234:2345")]))
    assert invoke_ok(fsedge, "behave", "whoami") == "1234:2345"
    assert function(fsedge, "behave")["limits"]["run_as"] == "1234:2345"


@needs_root
def test_run_as_root_is_refused_without_allow_root(fsedge):
    deploy_ok(fsedge, group([echo()]))
    r = deploy(fsedge, group([echo(), behave(run_as="0:0")]))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "behave" in r.stderr and "allow_root" in r.stderr, r.stderr
    d = fh.deployments(fsedge)
    failed = [x for x in d if x["status"] == "failed"]
    assert failed and "allow_root" in failed[-1]["reason"], d
    assert "behave" not in fh.functions(fsedge)
    check_still_serving(fsedge)


@needs_root
def test_run_as_root_with_allow_root(public_tmp, make_sedge):
    s = make_sedge(name=os.path.join(public_tmp, "sedge"),
                   extra={"functions": {"allow_root": True}})
    deploy_ok(s, group([behave(run_as="0:0")]))
    assert invoke_ok(s, "behave", "whoami") == "0:0"



def test_publish_outside_routes_is_refused_and_counted(fsedge):
    deploy_ok(fsedge, group(
        [behave(), echo(), counter()],
        [route("function:behave", "out/#", "thing:app")]))
    app = fsedge.client("app")
    app.subscribe("#", qos=0)
    out = invoke_ok(fsedge, "behave", "publish:not/routed")
    assert out.startswith("error: denied:"), out
    assert "not/routed" in out, out
    assert function(fsedge, "behave")["publish_refused"] == 1
    assert invoke_ok(fsedge, "behave", "flood:100:not/routed") == "100"
    f = function(fsedge, "behave")
    assert f["publish_refused"] == 101, f
    # The refused invocations themselves succeeded; nothing leaked out.
    assert f["errors"] == 0
    # The core, this function's routed publishes and the others still work.
    assert invoke_ok(fsedge, "behave", "publish:out/ok") == "ok"
    m = app.get()
    assert (m.topic, m.payload) == ("out/ok", b"hi"), "an unrouted publish was delivered"
    assert invoke_ok(fsedge, "counter", "{}") == "1"
    check_still_serving(fsedge)


def test_shadow_calls_through_a_route_and_403_without(fsedge):
    deploy_ok(fsedge, group(
        [behave(), behave("other")],
        [route("function:behave", "$aws/things/lamp/shadow/#", "shadow")]))
    out = invoke_ok(fsedge, "behave", 'shadow-update:lamp:{"state":{"reported":{"on":true}}}')
    doc = json.loads(out)
    assert doc["state"] == {"reported": {"on": True}} and doc["version"] == 1, doc
    doc = json.loads(invoke_ok(fsedge, "behave", "shadow-get:lamp"))
    assert doc["state"]["reported"] == {"on": True} and doc["version"] == 1, doc
    # The same shadow through sedgectl.
    r = fsedge.ctl("shadow", "get", "lamp")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"]["reported"] == {"on": True}
    # Outside the route: another thing's shadow, and another function.
    out = invoke_ok(fsedge, "behave", "shadow-get:kitchen")
    assert out.startswith("error: denied:") and "Forbidden" in out, out
    out = invoke_ok(fsedge, "other", 'shadow-update:lamp:{"state":{"reported":{"on":false}}}')
    assert out.startswith("error: denied:"), out
    out = invoke_ok(fsedge, "other", "shadow-get:lamp")
    assert out.startswith("error: denied:"), out
    doc = json.loads(invoke_ok(fsedge, "behave", "shadow-get:lamp"))
    assert doc["state"]["reported"] == {"on": True} and doc["version"] == 1, \
        "a function without a route changed the shadow"
    # Delete, then get: 404 (not_found).
    invoke_ok(fsedge, "behave", "shadow-delete:lamp")
    out = invoke_ok(fsedge, "behave", "shadow-get:lamp")
    assert out.startswith("error: not_found:"), out



def test_crash_is_reported_counted_and_the_function_recovers(fsedge):
    deploy_ok(fsedge, group([behave(), echo()]))
    mark = fsedge.log_mark()
    err = invoke_fails(fsedge, "behave", "crash")
    assert "crashed (signal 6)" in err, err
    time.sleep(0.2)  # let the exit be handled
    f = function(fsedge, "behave")
    problems = []
    if (f["crashes"], f["errors"], f["oom_kills"]) != (1, 1, 0):
        problems.append("crashes/errors/oom_kills %s, expected (1, 1, 0)"
                        % ((f["crashes"], f["errors"], f["oom_kills"]),))
    if "crashed (signal 6)" not in f["state"]:
        problems.append("state %r does not say it crashed" % f["state"])
    if not re.search(r"function behave \(pid \d+\): crashed \(signal 6\)",
                     fsedge.log_since(mark)):
        problems.append("no log line 'function behave (pid N): crashed (signal 6)'")
    assert not problems, "; ".join(problems) + "\nlog:\n" + fsedge.log_since(mark)
    err = invoke_fails(fsedge, "behave", "exit")
    assert "exited with status 3" in err, err
    assert invoke_ok(fsedge, "behave", "whoami")
    check_still_serving(fsedge)


def test_long_lived_function_that_crashes_is_counted_and_restarted(fsedge):
    deploy_ok(fsedge, group([behave("keeper", lifecycle="long-lived"), echo()]))
    pid = function(fsedge, "keeper")["instances"][0]["pid"]
    mark = fsedge.log_mark()
    err = invoke_fails(fsedge, "keeper", "crash")
    assert "crashed (signal 6)" in err, err
    f = wait_function(fsedge, "keeper",
                      lambda f: any(i["pid"] != pid and i["state"] == "idle"
                                    for i in f["instances"]),
                      timeout=TIMEOUT, what="the long-lived function to be restarted")
    assert invoke_ok(fsedge, "keeper", "whoami")
    problems = []
    if f["crashes"] != 1:
        problems.append("crashes %d, expected 1" % f["crashes"])
    if not re.search(r"function keeper \(pid %d\): crashed \(signal 6\)" % pid,
                     fsedge.log_since(mark)):
        problems.append("no log line 'function keeper (pid %d): crashed (signal 6)'" % pid)
    assert not problems, "; ".join(problems) + "\nlog:\n" + fsedge.log_since(mark)
    check_still_serving(fsedge)


def test_function_failure_message_reaches_the_invoker(fsedge):
    deploy_ok(fsedge, group([behave(), echo()]))
    err = invoke_fails(fsedge, "behave", "fail:the sensor is unplugged")
    assert "the sensor is unplugged" in err, err
    f = function(fsedge, "behave")
    assert f["errors"] == 1 and f["crashes"] == 0, f
    assert invoke_ok(fsedge, "behave", "plain") == "plain"


def test_function_hanging_at_start_fails_its_invocation(fsedge):
    """An instance that never connects to the function socket is killed
    after the start timeout (10 s); what waited for it fails with the
    reason."""
    deploy_ok(fsedge, group([behave(env={"BEHAVE_AT_START": "sleep:60000"}), echo()]))
    mark = fsedge.log_mark()
    started = time.monotonic()
    err = invoke_fails(fsedge, "behave", "whoami")
    assert time.monotonic() - started < 20 * SLOW
    wait_for(lambda: not function_processes(fsedge, "behave"),
               what="the hung instance to be killed")
    f = function(fsedge, "behave")
    log = fsedge.log_since(mark)
    problems = []
    if not ("failed to start" in err and "did not connect" in err):
        problems.append("the invoker got %r, expected 'failed to start' and why (it did not "
                        "connect to the function socket within 10 s)" % err.strip())
    if not ("failed to start" in f["state"] and "did not connect" in f["state"]):
        problems.append("sedgectl functions state %r does not say why" % f["state"])
    if not re.search(r"function behave \(pid \d+\):.*did not connect", log):
        problems.append("no log line saying it did not connect")
    if f["errors"] < 1:
        problems.append("errors %d" % f["errors"])
    assert not problems, "; ".join(problems) + "\nlog:\n" + log
    check_still_serving(fsedge)


@pytest.mark.parametrize("kind", sorted(fh.GARBAGE))
def test_malformed_ipc_closes_the_connection(fsedge, public_tmp, kind):
    deploy_ok(fsedge, group([bad_ipc(public_tmp, **ISOLATION), echo()]))
    assert invoke_ok(fsedge, "bad", "hello") == "fine:hello"
    mark = fsedge.log_mark()
    invoke_fails(fsedge, "bad", "garbage:" + kind)
    line = fsedge.wait_log(r"function socket: bad: .*closing the connection", since=mark)
    assert "error" in line.lower() or "W " in line, line
    f = function(fsedge, "bad")
    assert f["errors"] >= 1, f
    # The function saw the error frame and then the end of the connection.
    logs = fsedge.ctl("logs", "bad")
    assert logs.returncode == 0, logs.stderr
    m = re.search(r"bad-ipc: sent %s; core answered (.*); (connection \w+ ?\w*)$" % re.escape(kind),
                  logs.stdout, re.M)
    assert m, logs.stdout
    frames = json.loads(m.group(1))
    assert frames and frames[-1]["op"] == "error" and frames[-1]["error"], frames
    assert m.group(2) == "connection closed", m.group(2)
    # The core keeps serving: this function (a new instance) and others.
    assert invoke_ok(fsedge, "bad", "again") == "fine:again"
    check_still_serving(fsedge)


def test_function_that_stays_after_its_connection_was_closed_is_killed(fsedge, public_tmp):
    deploy_ok(fsedge, group([bad_ipc(public_tmp, **ISOLATION), echo()]))
    assert invoke_ok(fsedge, "bad", "hello") == "fine:hello"
    pids = set(function_processes(fsedge, "bad"))
    mark = fsedge.log_mark()
    started = time.monotonic()
    invoke_fails(fsedge, "bad", "garbage-stay:not-json")
    assert time.monotonic() - started < 8 * SLOW
    fsedge.wait_log(r"function socket: bad: .*closing the connection", since=mark)
    wait_for(lambda: not (pids & set(function_processes(fsedge, "bad"))), timeout=8 * SLOW,
               what="the process that kept running to be killed")
    assert invoke_ok(fsedge, "bad", "again") == "fine:again"
    check_still_serving(fsedge)


def _connect_function_socket(sedge, name="echo"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(fh.socket_path(sedge, name))
    return s


def test_garbage_and_forged_hello_from_outside_are_refused(fsedge):
    deploy_ok(fsedge, group([echo()]))
    assert invoke_ok(fsedge, "echo", '"x"') == 'echo:"x"'
    pid = function(fsedge, "echo")["instances"][0]["pid"]
    # Garbage before any hello: a process that is not the function's is
    # refused before anything it sends is read.
    mark = fsedge.log_mark()
    s = _connect_function_socket(fsedge)
    fh.send_ignoring_close(s, b"\xff" * 64)
    frames, closed = fh.read_until_eof(s)
    s.close()
    assert closed and frames and frames[-1]["op"] == "error", frames
    fsedge.wait_log(r"function socket of echo: connection from pid %d .*refused: not a process "
                    r"of an instance" % os.getpid(), since=mark)
    # A frame that is not hello first.
    s = _connect_function_socket(fsedge)
    fh.send_ignoring_close(s, fh.frame({"op": "publish", "req": 1, "topic": "a", "qos": 0}, b"x"))
    frames, closed = fh.read_until_eof(s)
    s.close()
    assert closed and frames[-1]["op"] == "error", frames
    # A hello with a made-up credential, and with the real one of a running
    # instance from a process that is not the function's.
    token = None
    for p in function_processes(fsedge, "echo"):
        for kv in fh._environ(p):
            if kv.startswith(b"SEDGE_TOKEN="):
                token = kv.split(b"=", 1)[1].decode()
    assert token
    for tok in ("0" * 32, token):
        s = _connect_function_socket(fsedge)
        fh.send_ignoring_close(s, fh.frame({"op": "hello", "function": "echo", "token": tok,
                                            "sdk": "t"}))
        frames, closed = fh.read_until_eof(s)
        s.close()
        assert closed, "a forged hello kept its connection"
        hellos = [f for f in frames if f["op"] == "hello"]
        assert not any(f.get("ok") for f in hellos), frames
    # The real instance is untouched and still serves.
    assert invoke_ok(fsedge, "echo", '"y"') == 'echo:"y"'
    assert [i["pid"] for i in function(fsedge, "echo")["instances"]] == [pid]
    check_still_serving(fsedge)


def test_missing_executable_fails_the_deployment(fsedge):
    deploy_ok(fsedge, group([echo()]))
    mark = fsedge.log_mark()
    r = deploy(fsedge, group([echo(), fn("ghost", ["/nonexistent/ghost"], **ISOLATION)]))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "ghost" in r.stderr and "/nonexistent/ghost" in r.stderr, r.stderr
    fsedge.wait_log(r"W deploy: .*function ghost: cannot run /nonexistent/ghost", since=mark)
    d = fh.deployments(fsedge)
    last = max(d, key=lambda x: x["version"])
    assert last["status"] == "failed" and "ghost" in last["reason"], d
    assert fh.active_version(fsedge) == 1, d
    assert "ghost" not in fh.functions(fsedge)
    check_still_serving(fsedge)


def compile_c(source, out, *flags):
    """Build a small C program or library with the system compiler."""
    src = out + ".c"
    with open(src, "w") as f:
        f.write(source)
    r = subprocess.run(["cc", "-o", out, src] + list(flags), capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    os.chmod(out, 0o755)
    return out


def ghost_program(directory):
    """A program needing libghost.so.1, which lies beside it ($ORIGIN)."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    lib = compile_c("int ghost(void) { return 0; }\n", os.path.join(directory, "libghost.so.1"),
                    "-shared", "-fPIC", "-Wl,-soname,libghost.so.1")
    prog = compile_c("int ghost(void);\nint main(void) { return ghost(); }\n",
                     os.path.join(directory, "needs-ghost"), lib, "-Wl,-rpath,$ORIGIN")
    return prog, lib


def test_missing_sandbox_program_fails_the_deployment(public_tmp, make_sedge, monkeypatch):
    """Issue 11 item 8: without sedge-sandbox no function can start: the
    deployment says so (it hung its invocations before)."""
    missing = os.path.join(public_tmp, "no-such-sedge-sandbox")
    monkeypatch.setenv("SEDGE_SANDBOX", missing)
    s = make_sedge(name=os.path.join(public_tmp, "sedge"))
    r = deploy(s, group([echo()]))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "cannot run the function sandbox %s" % missing in r.stderr, r.stderr
    assert fh.functions(s) == {}


def test_sandbox_gone_after_deploy_fails_invocations_at_once(public_tmp, make_sedge,
                                                              monkeypatch):
    """Issue 11 item 8: a function that cannot be started fails what waits
    for it, with the reason, instead of keeping sedgectl invoke waiting."""
    bindir = os.path.join(public_tmp, "sandbox-bin")
    os.mkdir(bindir)
    sandbox = fh.install_program(str(BUILD / "sedge-sandbox"), bindir)
    monkeypatch.setenv("SEDGE_SANDBOX", sandbox)
    s = make_sedge(name=os.path.join(public_tmp, "sedge"))
    deploy_ok(s, group([echo(standby=False)]))
    os.unlink(sandbox)
    err = invoke_fails(s, "echo", '"x"')
    assert "failed to start: cannot run the sandbox %s" % sandbox in err, err
    f = function(s, "echo")
    assert "failed to start" in f["state"] and f["errors"] == 1, f
    err = invoke_fails(s, "echo", '"y"')
    assert "cannot run the sandbox" in err, err


def test_program_removed_after_deploy_fails_its_invocation(fsedge, public_tmp):
    code = os.path.join(public_tmp, "code")
    os.mkdir(code)
    os.chmod(code, 0o755)
    prog = fh.install_program(BEHAVE, code)
    deploy_ok(fsedge, group([fn("gone", [prog], code=code, encoding="binary", standby=False,
                                **ISOLATION), echo()]))
    os.unlink(prog)
    err = invoke_fails(fsedge, "gone", "whoami")
    assert "failed to start" in err and "cannot run %s" % prog in err, err
    check_still_serving(fsedge)


def test_missing_shared_library_fails_the_deployment_or_the_invocation(fsedge, public_tmp):
    """Issue 11 item 8: a library the program needs and the loader would not
    find fails the deployment, naming it; one that goes missing later fails
    the invocation with the loader's words."""
    code = os.path.join(public_tmp, "code")
    prog, lib = ghost_program(code)
    os.unlink(lib)
    r = deploy(fsedge, group([fn("ghost", [prog], code=code, **ISOLATION)]))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "functions[0].exec[0]: function ghost cannot start: %s needs the shared library " \
           "libghost.so.1, which is not installed" % prog in r.stderr, r.stderr
    prog, lib = ghost_program(code)
    deploy_ok(fsedge, group([fn("ghost", [prog], code=code, standby=False, **ISOLATION)]))
    os.unlink(lib)
    err = invoke_fails(fsedge, "ghost", "{}")
    assert "failed to start" in err and "libghost.so.1" in err, err


def test_long_lived_function_exiting_at_once_fails_and_rolls_back(fsedge):
    deploy_ok(fsedge, group([echo()]))
    assert invoke_ok(fsedge, "echo", '"v1"') == 'echo:"v1"'
    mark = fsedge.log_mark()
    r = deploy(fsedge, group([echo(), behave("quitter", lifecycle="long-lived",
                                             env={"BEHAVE_AT_START": "exit"})]))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "quitter" in r.stderr and "exited with status 3" in r.stderr, r.stderr
    fsedge.wait_log(r"function quitter \(pid \d+\): exited with status 3", since=mark)
    d = fh.deployments(fsedge)
    last = max(d, key=lambda x: x["version"])
    assert last["status"] == "failed" and "quitter" in last["reason"], d
    assert fh.active_version(fsedge) == 1, d
    fns = fh.functions(fsedge)
    assert "quitter" not in fns, fns
    # It is not restarted behind the deployment's back.
    time.sleep(1.5)
    assert not function_processes(fsedge, "quitter")
    check_still_serving(fsedge)


def test_json_encoding_refuses_non_json_payloads(fsedge):
    """A json function's non-JSON payload is refused: sedgectl says so; a
    routed one makes an MQTT 5 publisher hear 0x99 (payload format invalid,
    not 0x97: nothing was full); each is counted and the log says whose
    payload was refused, once per 10 s at most (issue 11 item 10)."""
    deploy_ok(fsedge, group([echo()], [route("thing:s1", "sensors/#", "function:echo")]))
    mark = fsedge.log_mark()
    raw = fsedge.raw(version=5)
    raw.connect("s1")
    ack = raw.publish("sensors/t", b"\x00\x01binary", qos=1)
    assert ack.reason == 0x99, ack
    fsedge.wait_log(r"W functions: function echo: payload from thing:s1 refused: not JSON",
                    since=mark)
    ack = raw.publish("sensors/t", b"[1, 2, 3]", qos=1)
    assert ack.reason == 0, ack
    err = invoke_fails(fsedge, "echo", "not json {")
    assert "not JSON" in err, err
    assert invoke_ok(fsedge, "echo", '{"a": [1, 2]}') == 'echo:{"a": [1, 2]}'
    f = wait_function(fsedge, "echo", lambda f: f["invocations"] == 2)
    assert f["invalid"] == 2 and f["errors"] == 2 and f["refused"] == 0, f
    for _ in range(20):
        raw.publish("sensors/t", b"not json", qos=0)
    wait_function(fsedge, "echo", lambda f: f["invalid"] == 22)
    assert len(fh.log_lines(fsedge, mark, "refused: not JSON")) == 1, fsedge.log_since(mark)


def test_logs_show_the_function_stderr_and_sdk_log_lines(fsedge):
    deploy_ok(fsedge, group([behave(env={"BEHAVE_AT_START": "env:MARKER", "MARKER": "m-42"})]))
    assert invoke_ok(fsedge, "behave", "log:warn:sdk line 17") == "logged"
    def has_both():
        r = fsedge.ctl("logs", "behave")
        return r.returncode == 0 and "behave: at start: m-42" in r.stdout and \
            "sdk line 17" in r.stdout and r.stdout
    out = wait_for(has_both, what="both lines in sedgectl logs behave")
    start_line = [l for l in out.splitlines() if "behave: at start: m-42" in l][0]
    assert "stderr" in start_line, start_line
    sdk_line = [l for l in out.splitlines() if "sdk line 17" in l][0]
    assert "warn" in sdk_line, sdk_line
    r = fsedge.ctl("logs", "behave", "--lines", "1")
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 1, r.stdout
    r = fsedge.ctl("logs", "nosuchfunction")
    assert r.returncode == 1 and r.stderr.strip()


def test_functions_json_reports_limits_and_settings(fsedge):
    deploy_ok(fsedge, group([behave(timeout_s=2.5, memory_mb=48, max_instances=4, max_queue=7,
                                    max_processes=16),
                             counter()]))
    fns = fh.functions(fsedge)
    b = fns["behave"]
    keys = {"name", "lifecycle", "state", "instances", "queue", "invocations", "errors",
            "timeouts", "oom_kills", "crashes", "refused", "publish_refused", "limits"}
    assert keys <= set(b), keys - set(b)
    assert b["lifecycle"] == "on-demand" and b["instances"] == [] and b["queue"] == 0
    lim = b["limits"]
    assert (lim["memory_mb"], lim["max_processes"], lim["timeout_s"], lim["max_instances"],
            lim["max_queue"]) == (48, 16, 2.5, 4, 7), lim
    expected_enforcer = ("cgroup v1", "cgroup v2") if ROOT else ("cgroup v1", "cgroup v2",
                                                                  "rlimits")
    assert lim["enforced_by"] in expected_enforcer, lim
    assert lim["isolation"] == ("sandbox" if ROOT else "none")
    c = fns["counter"]
    assert c["lifecycle"] == "long-lived" and c["limits"]["max_instances"] == 1
    assert len(c["instances"]) == 1 and c["instances"][0]["state"] == "idle", c
    r = fsedge.ctl("functions")
    assert r.returncode == 0 and "behave" in r.stdout and "counter" in r.stdout
    r = invoke(fsedge, "nosuchfunction", "{}")
    assert r.returncode == 1 and "nosuchfunction" in r.stderr, r.stderr
