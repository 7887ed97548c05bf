"""Over-the-air updates of a running core with `sedgectl update FILE`:
bundles built here from this build — N+1 healthy, N+2 crashing at start,
N+3 never healthy — and the refusals. A healthy release commits in the
same PID (re-exec); a broken one is rolled back by itself within the
health window and marked bad; kill -9 during the install or the health
window leaves exactly one core, on one release, and a truthful
`update --status`. Acknowledged messages survive the switch."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from conftest import BUILD, SLOW, TIMEOUT, Sedge, wait_for
from ota_helpers import create_bundle, make_key, release_tree

HEALTH_S = 4 * SLOW
CRASH = "#!/bin/sh\nkill -SEGV $$\n"
HANG = "#!/bin/sh\nexec sleep 600\n"
# Starts the real sedged (kept beside it) after a pause: a health window
# long enough to kill the core inside it.
SLOW_START = '#!/bin/sh\nsleep 2\nexec "$(dirname "$0")/sedged.real" "$@"\n'


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def cores(config_path):
    """PIDs of processes whose command line names this config (the core,
    and a guard while a health window is open)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(config_path).encode() in cmd and int(d.name) != os.getpid():
            st = (d / "stat").read_text()
            if st.split(") ")[1][0] != "Z":
                pids.append(int(d.name))
    return pids


class OtaSedge(Sedge):
    """A Sedge with an "ota" section; the core may change PID (a rollback
    by the guard starts the previous release in a new process)."""

    def __init__(self, root, pub):
        super().__init__(root, extra={"ota": {"trusted_keys": [str(pub)],
                                              "health_timeout_s": HEALTH_S}})

    def update(self, *args):
        return self.ctl("update", *args)

    def update_status(self):
        r = self.ctl("update", "--status", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def status_when_up(self):
        """update --status once a core answers (None before)."""
        r = self.ctl("update", "--status", "--json")
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_one_core(self):
        return wait_for(lambda: len(cores(self.config_path)) == 1 and cores(self.config_path),
                        TIMEOUT + HEALTH_S, what="exactly one core process")[0]

    def shutdown(self):
        for pid in cores(self.config_path):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        wait_for(lambda: not cores(self.config_path), 30, what="the cores to stop")
        if self.proc:
            self.proc.poll()
        self.expected_exit = True


@pytest.fixture
def keys(tmp_path):
    return make_key(tmp_path / "keys")


@pytest.fixture
def core(tmp_path, keys):
    s = OtaSedge(tmp_path / "core", keys[1])
    s.start()
    yield s
    s.shutdown()
    log = s.log()
    for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert mark not in log, log[-4000:]


def bundle(tmp_path, keys, version, sedged=None, *extra, name=None):
    tree = release_tree(tmp_path / ("tree-" + (name or version)), sedged)
    if sedged == SLOW_START:
        shutil.copy2(BUILD / "sedged", tree / "bin" / "sedged.real")
    return create_bundle(tree, version, keys[0], tmp_path / ((name or version) + ".sedge"),
                         *extra)


def test_a_healthy_release_commits_in_the_same_process_and_keeps_acknowledged_messages(
        tmp_path, keys, core):
    pid = core.pid
    sub = core.client("keeper", version=4, clean=False)
    sub.subscribe("keep/#", qos=1)
    sub.disconnect()
    pub = core.client("pub", version=4)
    for i in range(5):
        pub.publish("keep/%d" % i, b"m%d" % i, qos=1)
    pub.publish("keep/retained", b"r", qos=1, retain=True)
    pub.disconnect()

    b = bundle(tmp_path, keys, "0.2.0")
    r = core.update(b)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "committed: version 0.2.0 runs" in r.stdout
    st = core.update_status()
    assert st["phase"] == "committed" and st["version"] == "0.2.0"
    assert st["running_version"] == "0.2.0" and st["running_slot"] == "a"
    assert st["previous_version"] == "0.1.0"
    # Re-exec: systemd's main PID stays.
    assert core.status()["pid"] == pid and core.running()
    assert core.wait_one_core() == pid
    root = Path(st["root"])
    assert os.readlink(root / "current") == "slots/a"

    sub = core.client("keeper", version=4, clean=False)
    got = sub.get_many(6)
    assert sorted(m.payload for m in got) == sorted([b"m%d" % i for i in range(5)] + [b"r"])
    sub.disconnect()
    late = core.client("late", version=4)
    late.subscribe("keep/retained", qos=1)
    assert late.get().payload == b"r"
    late.disconnect()

    # The next update goes to the other slot; --rollback comes back.
    r = core.update(bundle(tmp_path, keys, "0.3.0"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert core.update_status()["running_slot"] == "b"
    r = core.update("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    st = core.update_status()
    assert st["phase"] == "rolled-back" and st["running_version"] == "0.2.0"
    assert st["running_slot"] == "a" and os.readlink(root / "current") == "slots/a"
    assert core.status()["pid"] == pid
    # The store came back with the rollback too.
    again = core.client("again", version=4)
    again.subscribe("keep/retained", qos=1)
    assert again.get().payload == b"r"
    again.disconnect()


def test_a_release_that_crashes_at_start_is_rolled_back_and_marked_bad(tmp_path, keys, core):
    b = bundle(tmp_path, keys, "0.2.0", CRASH)
    started = time.monotonic()
    r = core.update(b)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "rolled-back" in r.stderr and "stopped during its health window" in r.stderr
    assert time.monotonic() - started < HEALTH_S + 20 * SLOW
    pid = core.wait_one_core()
    st = core.update_status()
    assert st["phase"] == "rolled-back" and st["running_version"] == "0.1.0"
    assert st["running_slot"] == "" and st["current_slot"] == ""
    assert "0.2.0" in st["bad_versions"]
    assert core.status()["pid"] == pid
    # Never retried by itself; refused when offered again.
    r = core.update(b)
    assert r.returncode == 1 and "marked bad" in r.stderr


def test_a_release_that_never_becomes_healthy_is_rolled_back_within_the_window(
        tmp_path, keys, core):
    b = bundle(tmp_path, keys, "0.2.0", HANG)
    started = time.monotonic()
    r = core.update(b)
    took = time.monotonic() - started
    assert r.returncode == 1, r.stdout + r.stderr
    assert "did not become healthy within %d s" % HEALTH_S in r.stderr
    assert HEALTH_S - 1 <= took < HEALTH_S + 20 * SLOW
    core.wait_one_core()
    st = core.update_status()
    assert st["phase"] == "rolled-back" and st["running_version"] == "0.1.0"
    assert "0.2.0" in st["bad_versions"]
    core.client("after", version=4).disconnect()


@pytest.mark.parametrize("case,reason", [
    ("downgrade", "a downgrade"),
    ("same", "a downgrade"),
    ("arch", "wrong architecture"),
    ("key", "unknown key"),
    ("tampered", "tampered bundle"),
    ("min_version", "updates only from 0.1.5 or later"),
    ("schema", "store schema 9"),
    ("hostile", "hostile archive"),
])
def test_refusals_change_nothing_and_say_why(tmp_path, keys, core, case, reason):
    pid = core.pid
    if case == "key":
        other = make_key(tmp_path / "other")
        b = bundle(tmp_path, other, "0.2.0")
    elif case == "downgrade":
        b = bundle(tmp_path, keys, "0.0.9")
    elif case == "same":
        b = bundle(tmp_path, keys, "0.1.0")
    elif case == "arch":
        b = bundle(tmp_path, keys, "0.2.0", None, "--arch", "riscv128")
    elif case == "min_version":
        b = bundle(tmp_path, keys, "0.2.0", None, "--min-version", "0.1.5")
    elif case == "schema":
        b = bundle(tmp_path, keys, "0.2.0", None, "--store-schema", "9")
    elif case == "hostile":
        # Signed by a trusted key, listed files right, and one entry more
        # that climbs out of the slot.
        from ota_helpers import file_entry, hand_bundle
        sedged = b"#!/bin/sh\nexit 0\n"
        b = hand_bundle(tmp_path / "hostile.sedge", keys[0], {"bin/sedged": sedged},
                        [file_entry("bin/sedged", sedged), file_entry("../../../evil", b"x")])
    else:
        b = bundle(tmp_path, keys, "0.2.0")
        data = bytearray(b.read_bytes())
        data[-2000] ^= 0x55
        b.write_bytes(bytes(data))
    r = core.update(b)
    assert r.returncode == 1
    assert reason in r.stderr, r.stderr
    st = core.update_status()
    assert st["phase"] == "failed" and reason in st["reason"]
    assert st["current_slot"] == "" and st["running_version"] == "0.1.0"
    assert core.status()["pid"] == pid and core.running()
    assert not list((Path(st["root"]) / "slots").glob("*"))
    assert not list(Path(st["root"]).parent.parent.glob("**/evil"))


def test_a_downgrade_goes_through_when_allowed(tmp_path, keys, core):
    r = core.update(bundle(tmp_path, keys, "0.0.9"), "--allow-downgrade")
    assert r.returncode == 0, r.stdout + r.stderr
    assert core.update_status()["running_version"] == "0.0.9"


def test_kill_9_during_the_install_leaves_the_old_release_and_says_so(tmp_path, keys, core):
    tree = release_tree(tmp_path / "tree-big")
    (tree / "share").mkdir()
    (tree / "share" / "blob").write_bytes(os.urandom(96 << 20))
    b = create_bundle(tree, "0.2.0", keys[0], tmp_path / "big.sedge")
    r = core.update(b, "--no-wait")
    # Caught in the act or not, the answer must be truthful.
    wait_for(lambda: core.update_status()["phase"] == "installing", TIMEOUT, interval=0.005,
             what="the install to start")
    core.kill9()
    assert not cores(core.config_path)
    core.start()
    st = core.update_status()
    assert st["phase"] == "failed" and "interrupted" in st["reason"], st
    assert st["current_slot"] == "" and st["running_version"] == "0.1.0"
    root = Path(st["root"])
    assert not list((root / "slots").glob(".*.new"))
    assert r.returncode in (0, 1)
    # And the next update works.
    r = core.update(bundle(tmp_path, keys, "0.2.1"))
    assert r.returncode == 0, r.stdout + r.stderr


def in_window(core, processes=2):
    """The health window is open and its guard runs beside the core."""
    state_file = core.data_dir / "ota" / "state.json"

    def check():
        try:
            phase = json.loads(state_file.read_text())["phase"]
        except (OSError, ValueError):
            return False
        return phase == "health-check" and len(cores(core.config_path)) == processes
    wait_for(check, TIMEOUT, interval=0.01, what="the health window with its guard")


def test_kill_9_during_the_health_window_comes_back_on_exactly_one_release(
        tmp_path, keys, core):
    b = bundle(tmp_path, keys, "0.2.0", SLOW_START)
    r = core.update(b, "--no-wait")
    assert r.returncode == 0, r.stdout + r.stderr
    # The new release sleeps 2 s before it starts: its window is open
    # (read from the state file: no core answers meanwhile).
    in_window(core)
    os.kill(core.pid, signal.SIGKILL)
    pid = core.wait_one_core()
    assert pid != core.pid
    st = wait_for(lambda: core.status_when_up(), TIMEOUT, what="the core to answer")
    assert st["phase"] == "rolled-back", st
    assert "stopped during its health window" in st["reason"]
    assert st["running_version"] == "0.1.0" and st["current_slot"] == ""


def power_cut(core):
    """Everything dies at once: the core and its guard, with SIGKILL."""
    while cores(core.config_path):
        for pid in cores(core.config_path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def launch(core, env=None):
    """Start sedged as a supervisor would (no wait for it to be ready)."""
    import subprocess
    from conftest import SEDGED
    with open(core.log_path, "ab") as log:
        return subprocess.Popen([str(SEDGED), "--config", str(core.config_path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=str(core.root), env=dict(os.environ, **(env or {})))


def test_power_loss_in_the_health_window_counts_tries_then_rolls_back(tmp_path, keys, core):
    b = bundle(tmp_path, keys, "0.2.0", SLOW_START)
    r = core.update(b, "--no-wait")
    assert r.returncode == 0, r.stdout + r.stderr
    state_file = core.data_dir / "ota" / "state.json"
    # Each time: the window opens, then everything dies at once (the core
    # and its guard, as in a power cut), and the core is started again.
    tries = []
    for attempt in range(3):
        in_window(core)
        tries.append(json.loads(state_file.read_text())["tries_left"])
        power_cut(core)
        core.proc = launch(core)
    assert tries == [2, 1, 0]
    # Out of tries: rolled back at boot, before the new release runs again.
    core.wait_one_core()
    st = wait_for(lambda: core.status_when_up(), TIMEOUT, what="the core to answer")
    assert st["phase"] == "rolled-back" and "no tries left" in st["reason"], st
    assert st["running_version"] == "0.1.0" and "0.2.0" in st["bad_versions"]
    assert "sedged.real" not in " ".join(open("/proc/%d/cmdline" % core.proc.pid).read()
                                         .split("\0"))


def test_messages_acknowledged_during_the_update_are_all_delivered_after_it(
        tmp_path, keys, core):
    import threading
    import paho.mqtt.client as paho
    sub = core.client("late-reader", version=4, clean=False)
    sub.subscribe("during/#", qos=1)
    sub.disconnect()
    acked, stop = [], threading.Event()

    def publisher():
        # A plain paho client that reconnects by itself, as devices do; a
        # message counts once its PUBACK came back.
        i = 0
        while not stop.is_set() or i < 20:
            c = paho.Client(client_id="writer", clean_session=True,
                            protocol=paho.MQTTv311)
            try:
                c.connect("127.0.0.1", core.port, 5)
                c.loop_start()
                while not stop.is_set() or i < 20:
                    info = c.publish("during/%d" % i, b"%d" % i, qos=1)
                    info.wait_for_publish(2)
                    if not info.is_published():
                        break
                    acked.append(i)
                    i += 1
                    time.sleep(0.01)
            except (OSError, RuntimeError, ValueError):
                time.sleep(0.05)
            finally:
                c.loop_stop()
                c.disconnect()
            if stop.is_set() and i >= 20:
                return

    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    wait_for(lambda: len(acked) >= 10, TIMEOUT, what="messages before the update")
    r = core.update(bundle(tmp_path, keys, "0.2.0"))
    assert r.returncode == 0, r.stdout + r.stderr
    before = len(acked)
    wait_for(lambda: len(acked) >= before + 10, TIMEOUT, what="messages after the update")
    stop.set()
    t.join(TIMEOUT)
    sub = core.client("late-reader", version=4, clean=False)
    want = set(acked)
    got = set()
    while not want <= got:
        got.add(int(sub.get().payload))
    sub.disconnect()


def test_a_restarted_installed_core_hands_over_to_the_committed_release(tmp_path, keys, core):
    r = core.update(bundle(tmp_path, keys, "0.2.0"))
    assert r.returncode == 0, r.stdout + r.stderr
    # systemd (or a user) starts the installed binary again: it hands over.
    assert core.stop() == 0
    core.start()
    st = core.update_status()
    assert st["running_version"] == "0.2.0" and st["running_slot"] == "a"
    assert "handing over to release 0.2.0" in core.log()
    # An installed binary newer than the updated release wins (a package
    # upgrade after an update): here the release is older, 0.0.9.
    r = core.update(bundle(tmp_path, keys, "0.0.9"), "--allow-downgrade")
    assert r.returncode == 0, r.stdout + r.stderr
    assert core.stop() == 0
    core.start()
    st = core.update_status()
    assert st["running_version"] == "0.1.0" and st["running_slot"] == ""
    assert "is newer than the updated release 0.0.9" in core.log()


@pytest.mark.parametrize("current,expect", [
    (None, "the trial was cut short before the new release ran"),
    ("slots/a", None),
])
def test_kill_9_between_the_state_and_the_switch_is_reconciled_at_start(
        tmp_path, keys, core, current, expect):
    """The trial is recorded, then `current` switched: a core killed between
    the two (state says health-check, `current` still the old release)
    finishes the rollback at its next start; killed after both, it counts a
    try and runs the trial."""
    r = core.update(bundle(tmp_path, keys, "0.2.0", SLOW_START), "--no-wait")
    assert r.returncode == 0, r.stdout + r.stderr
    in_window(core)
    power_cut(core)
    root = core.data_dir / "ota"
    if current is None:
        os.unlink(root / "current")  # as if killed before the switch
    core.proc = launch(core)
    st = wait_for(lambda: core.status_when_up(), TIMEOUT + HEALTH_S, what="the core to answer")
    if expect:
        assert st["phase"] == "rolled-back" and expect in st["reason"], st
        assert st["running_version"] == "0.1.0" and st["current_slot"] == ""
        assert "0.2.0" not in st["bad_versions"]  # it never ran: not its fault
    else:
        st = wait_for(lambda: (lambda s: s["phase"] == "committed" and s)(core.update_status()),
                      TIMEOUT + HEALTH_S, what="the trial to commit")
        assert st["running_version"] == "0.2.0" and st["tries_left"] == 1
    core.wait_one_core()


def test_without_an_ota_section_updates_are_refused_with_the_reason(tmp_path, keys, sedge):
    for args in (["--status"], ["--rollback"], [str(bundle(tmp_path, keys, "0.2.0"))]):
        r = sedge.ctl("update", *args)
        assert r.returncode == 1 and "updates are off" in r.stderr, (args, r.stderr)


def test_long_lived_functions_run_again_before_the_commit(tmp_path, keys):
    import functions_helpers as fh
    from functions_fixtures import BEHAVE, EXAMPLES
    from groups_helpers import deploy_ok
    public = fh.public_dir("sedge-ota-")
    s = OtaSedge(Path(public) / "core", keys[1])
    try:
        s.start()
        deploy_ok(s, fh.group([fh.fn("keeper", [BEHAVE], encoding="binary", code=EXAMPLES,
                                     lifecycle="long-lived")]))
        before = fh.function(s, "keeper")["instances"][0]["pid"]
        r = s.update(bundle(tmp_path, keys, "0.2.0"))
        assert r.returncode == 0, r.stdout + r.stderr
        f = fh.function(s, "keeper")
        assert f["state"] == "running" and f["instances"][0]["pid"] != before
        assert fh.invoke_ok(s, "keeper", "whoami")
        after = s.log().split("switching to version 0.2.0")[1]
        connected = after.index("function keeper: instance pid")
        assert connected < after.index("is healthy: committed"), after
    finally:
        s.shutdown()
        shutil.rmtree(public, ignore_errors=True)


def test_an_installed_tree_is_a_release(tmp_path, keys, core):
    """The release tree users make: `cmake --install` into a prefix (sbin/,
    libexec/sedge/, lib/), bundled as it is."""
    from conftest import BUILD
    import subprocess
    tree = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(tree)], check=True,
                   capture_output=True)
    b = create_bundle(tree, "0.2.0", keys[0], tmp_path / "installed.sedge")
    r = core.update(b)
    assert r.returncode == 0, r.stdout + r.stderr
    st = core.update_status()
    assert st["running_version"] == "0.2.0" and st["running_slot"] == "a"
    exe = os.readlink("/proc/%d/exe" % core.status()["pid"])
    assert exe.endswith("/slots/a/sbin/sedged"), exe


def test_bundle_verify_without_a_key_uses_the_keys_sedged_trusts(tmp_path, keys, core):
    b = bundle(tmp_path, keys, "0.2.0")
    r = core.ctl("bundle", "verify", b)
    assert r.returncode == 0 and "good: version 0.2.0" in r.stdout, r.stderr
    other = make_key(tmp_path / "other")
    r = core.ctl("bundle", "verify", bundle(tmp_path, other, "0.2.1"))
    assert r.returncode == 1 and "unknown key" in r.stderr


def test_under_systemd_the_guard_rolls_back_and_leaves_the_restart_to_it(tmp_path, keys, core):
    """With INVOCATION_ID set (systemd runs the core, Restart=on-failure),
    the guard puts `current` back and exits; the unit's restart starts the
    installed binary, which runs the previous release."""
    assert core.stop() == 0
    core.proc = launch(core, env={"INVOCATION_ID": "0123456789abcdef"})
    wait_for(lambda: (core.data_dir / "admin.sock").exists() and
             core.ctl("status").returncode == 0, TIMEOUT, what="the core")
    r = core.update(bundle(tmp_path, keys, "0.2.0", CRASH), "--no-wait")
    assert r.returncode == 0, r.stderr
    state_file = core.data_dir / "ota" / "state.json"
    wait_for(lambda: json.loads(state_file.read_text())["phase"] == "rolled-back", TIMEOUT,
             what="the guard's rollback")
    wait_for(lambda: not cores(core.config_path), TIMEOUT, what="no core (systemd restarts it)")
    assert core.proc.wait(TIMEOUT) != 0  # the unit sees a failure: Restart=on-failure acts
    core.proc = launch(core, env={"INVOCATION_ID": "0123456789abcdef"})
    st = wait_for(lambda: core.status_when_up(), TIMEOUT, what="the restarted core")
    assert st["phase"] == "rolled-back" and st["running_version"] == "0.1.0", st
    assert "stopped during its health window" in st["reason"]
