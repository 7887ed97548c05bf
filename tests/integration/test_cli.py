"""sedgectl and sedged as commands: status, exit codes, config validation,
certificates."""

import json
import os
import subprocess
import time

import pytest

from conftest import SEDGED, TIMEOUT, free_port, run_sedgectl
import functions_helpers as fh
from functions_fixtures import behave, fsedge, public_tmp  # noqa: F401 (fixtures)
from groups_helpers import deploy_ok

STATUS_KEYS = {"connections", "connections_total", "connections_refused", "sessions",
               "sessions_persistent", "subscriptions", "retained", "messages_in",
               "messages_out", "messages_dropped", "messages_queued", "bytes_in", "bytes_out",
               "protocol_errors", "store_bytes", "store_commits", "store_failures", "uptime_s",
               "pid", "version", "thing_name"}


def run_sedged(config_path, timeout=TIMEOUT * 3):
    """sedged on a config it should refuse: returns the finished process."""
    return subprocess.run([str(SEDGED), "--config", str(config_path)], capture_output=True,
                          text=True, timeout=timeout, cwd=os.path.dirname(str(config_path)))


def line_of(text, needle):
    return text[:text.index(needle)].count("\n") + 1


def test_status_json_has_every_documented_key(sedge):
    s = sedge.status()
    assert STATUS_KEYS <= set(s), STATUS_KEYS - set(s)
    assert s["pid"] == sedge.pid
    assert s["version"] == "0.1.0"
    assert s["thing_name"] == "edge-core"
    assert s["connections"] == 0
    assert all(isinstance(s[k], int) for k in STATUS_KEYS - {"version", "thing_name"})


def test_status_shows_the_configured_thing_name(make_sedge):
    s = make_sedge(extra={"core": {"thing_name": "kitchen-core"}})
    assert s.status()["thing_name"] == "kitchen-core"


def test_status_counters_move_with_traffic(sedge):
    before = sedge.status()
    sub = sedge.client("counter-sub", clean=False, session_expiry=300)
    sub.subscribe("cnt/#", 1)
    pub = sedge.client("counter-pub", version=4)
    for i in range(5):
        pub.publish("cnt/x", b"payload", qos=1)
    sub.get_many(5)
    after = sedge.wait_status(lambda s: s["messages_out"] >= before["messages_out"] + 5,
                              what="messages_out + 5")
    assert after["messages_in"] >= before["messages_in"] + 5
    assert after["connections"] == before["connections"] + 2
    assert after["connections_total"] >= before["connections_total"] + 2
    assert after["sessions"] >= before["sessions"] + 2
    assert after["sessions_persistent"] >= before["sessions_persistent"] + 1
    assert after["subscriptions"] >= before["subscriptions"] + 1
    assert after["bytes_in"] > before["bytes_in"] and after["bytes_out"] > before["bytes_out"]
    assert after["store_commits"] > before["store_commits"]
    pub.disconnect()
    sedge.wait_status(lambda s: s["connections"] == before["connections"] + 1,
                      what="connections - 1")


def test_status_without_json_is_human_readable(sedge):
    r = sedge.ctl("status")
    assert r.returncode == 0, r.stderr
    assert "connections" in r.stdout.lower()
    with pytest.raises(ValueError):
        json.loads(r.stdout)


def test_status_against_a_stopped_daemon_exits_3_with_a_json_error(sedge):
    assert sedge.stop() == 0
    r = sedge.ctl("status", "--json")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "cannot reach sedged" in r.stderr
    err = json.loads(r.stdout)
    assert err["ok"] is False and err["exit"] == 3 and "cannot reach sedged" in err["error"]
    r = sedge.ctl("status")
    assert r.returncode == 3 and not r.stdout.strip()


def test_status_against_a_data_dir_without_daemon_exits_3(tmp_path):
    r = run_sedgectl("status", data_dir=tmp_path / "nothing-here")
    assert r.returncode == 3
    assert "nothing-here/admin.sock" in r.stderr


def test_sigterm_stops_sedged_with_exit_0(sedge):
    mark = sedge.log_mark()
    assert sedge.stop() == 0
    assert "stopped" in sedge.log_since(mark)


def test_invalid_config_exits_2_naming_every_bad_key_with_its_line(make_sedge):
    s = make_sedge(start=False, limits={"max_inflgiht": 5, "max_inflight": 0},
                   extra={"log_level": "loud", "colour": "blue"})
    text = s.config_path.read_text()
    r = run_sedged(s.config_path)
    assert r.returncode == 2, r.stderr
    path = str(s.config_path)
    for key, needle in (("limits.max_inflgiht", '"max_inflgiht"'),
                        ("limits.max_inflight", '"max_inflight"'),
                        ("log_level", '"log_level"'),
                        ("colour", '"colour"')):
        where = "%s:%d: %s:" % (path, line_of(text, needle), key)
        assert where in r.stderr, "%r not in:\n%s" % (where, r.stderr)


def test_config_that_is_not_json_exits_2_naming_the_file(tmp_path):
    cfg = tmp_path / "broken.json"
    cfg.write_text('{"data_dir": "data",\n "listeners": [\n')
    r = run_sedged(cfg)
    assert r.returncode == 2
    assert str(cfg) in r.stderr


def test_missing_config_file_exits_2(tmp_path):
    r = run_sedged(tmp_path / "absent.json")
    assert r.returncode == 2
    assert "absent.json" in r.stderr


def test_tcp_listener_on_all_interfaces_is_refused(tmp_path):
    cfg = tmp_path / "open.json"
    cfg.write_text(json.dumps({"data_dir": "data", "listeners": [
        {"type": "tcp", "bind": "0.0.0.0:%d" % free_port()}]}))
    r = run_sedged(cfg)
    assert r.returncode != 0
    assert "0.0.0.0" in r.stderr and "loopback" in r.stderr.lower(), r.stderr


def test_second_sedged_on_the_same_data_dir_is_refused(sedge, tmp_path):
    cfg = json.loads(sedge.config_path.read_text())
    cfg["data_dir"] = str(sedge.data_dir)
    cfg["listeners"] = [{"type": "tcp", "bind": "127.0.0.1:%d" % free_port()}]
    path = tmp_path / "second.json"
    path.write_text(json.dumps(cfg))
    r = run_sedged(path)
    assert r.returncode != 0
    assert "another sedged" in r.stderr, r.stderr
    assert sedge.status()["pid"] == sedge.pid
    sedge.client("still-served").publish("x", b"y", qos=1)


def test_sedged_version_and_help(tmp_path):
    r = subprocess.run([str(SEDGED), "--version"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.strip() == "sedged 0.1.0"
    r = subprocess.run([str(SEDGED), "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and "--config" in r.stdout
    r = subprocess.run([str(SEDGED), "--bogus"], capture_output=True, text=True,
                       timeout=TIMEOUT, cwd=tmp_path)
    assert r.returncode == 2


def test_sedgectl_help_and_unknown_command(tmp_path):
    r = run_sedgectl("--help")
    assert r.returncode == 0 and "status" in r.stdout
    r = run_sedgectl("status", "--help")
    assert r.returncode == 0
    r = run_sedgectl("frobnicate", data_dir=tmp_path)
    assert r.returncode != 0 and r.stderr.strip()


def openssl(*args):
    r = subprocess.run(["openssl"] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_ca_init_and_cert_issue_make_a_verifiable_chain(tmp_path):
    d = tmp_path / "pki"
    r = run_sedgectl("ca", "init", "--dir", d, "--core-name", "gateway-1", "--san", "gw.local")
    assert r.returncode == 0, r.stderr
    for name in ("ca.pem", "ca.key", "core.pem", "core.key"):
        assert (d / name).exists(), name
    r = run_sedgectl("cert", "issue", "sensor-1", "--dir", d)
    assert r.returncode == 0, r.stderr
    assert (d / "sensor-1.pem").exists() and (d / "sensor-1.key").exists()
    for pem in ("core.pem", "sensor-1.pem"):
        assert "OK" in openssl("verify", "-CAfile", d / "ca.pem", d / pem)
    assert "CN = sensor-1" in openssl("x509", "-in", d / "sensor-1.pem", "-noout", "-subject")
    assert "gateway-1" in openssl("x509", "-in", d / "core.pem", "-noout", "-subject")
    san = openssl("x509", "-in", d / "core.pem", "-noout", "-ext", "subjectAltName")
    for want in ("DNS:localhost", "IP Address:127.0.0.1", "DNS:gw.local"):
        assert want in san, san
    key_mode = os.stat(d / "sensor-1.key").st_mode & 0o777
    assert key_mode & 0o077 == 0, "private key readable by others: %o" % key_mode


def test_ca_init_does_not_overwrite_an_existing_ca(tmp_path):
    d = tmp_path / "pki"
    assert run_sedgectl("ca", "init", "--dir", d).returncode == 0
    before = (d / "ca.pem").read_bytes()
    r = run_sedgectl("ca", "init", "--dir", d)
    assert r.returncode != 0 and r.stderr.strip()
    assert (d / "ca.pem").read_bytes() == before


# -- the command line itself: getopt_long, --help, --json, exit codes

COMMANDS = [("ca",), ("ca", "init"), ("cert",), ("cert", "issue"), ("status",), ("things",),
            ("deploy",), ("deployments",), ("rollback",), ("shadow",), ("shadow", "get"),
            ("spool",), ("functions",), ("invoke",), ("logs",)]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w))
def test_every_command_and_subcommand_has_help(words, tmp_path):
    for flag in ("--help", "-h"):
        r = run_sedgectl(*words, flag, data_dir=tmp_path)
        assert r.returncode == 0, (words, r.stderr)
        assert r.stdout.startswith("usage: sedgectl %s" % words[0]), r.stdout
        assert "--json" in r.stdout and not r.stderr


def test_version_on_sedged_and_sedgectl():
    r = run_sedgectl("--version")
    assert (r.returncode, r.stdout) == (0, "sedgectl 0.1.0\n")
    r = subprocess.run([str(SEDGED), "--version"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert (r.returncode, r.stdout) == (0, "sedged 0.1.0\n")


@pytest.mark.parametrize("args, named", [
    (("status", "--bogus"), "'--bogus'"),
    (("--bogus", "status"), "'--bogus'"),
    (("logs", "f", "-x"), "'-x'"),
    (("ca", "init", "--dir", "d", "--colour=red"), "'--colour=red'"),
])
def test_unknown_options_are_named_and_exit_2(args, named, tmp_path):
    r = run_sedgectl(*args, data_dir=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "unknown option %s" % named in r.stderr and "usage:" in r.stderr
    r = run_sedgectl("--json", *args, data_dir=tmp_path)
    err = json.loads(r.stdout)
    assert (err["ok"], err["exit"]) == (False, 2) and named in err["error"]


@pytest.mark.parametrize("args, what", [
    (("logs", "f", "--lines", "abc"), "--lines: 'abc' is not a number"),
    (("logs", "f", "--lines=0"), "--lines: '0' is not a number from 1"),
    (("logs", "f", "--lines", "10x"), "'10x'"),
    (("invoke", "f", "--timeout", "-1"), "--timeout: '-1'"),
    (("invoke", "f", "--timeout=99999999999999999999"), "--timeout"),
    (("rollback", "two"), "VERSION: 'two'"),
    (("logs", "f", "--lines"), "--lines needs a value"),
    (("shadow", "fetch", "t"), "unknown subcommand 'fetch'"),
    (("ca", "renew"), "unknown subcommand 'renew'"),
    (("status", "extra"), "unexpected argument 'extra'"),
    (("frobnicate",), "unknown command 'frobnicate'"),
    ((), "which command"),
])
def test_bad_values_and_arguments_exit_2_before_reaching_sedged(args, what, tmp_path):
    """No sedged runs: a usage error is reported as one (2), not as
    'cannot reach sedged' (3)."""
    r = run_sedgectl(*args, data_dir=tmp_path)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert what in r.stderr, r.stderr


def test_option_values_with_equals_and_options_after_arguments(tmp_path):
    d = tmp_path / "pki"
    r = run_sedgectl("ca", "init", "--dir=%s" % d, "--core-name=gw", "--san=gw.local", "--json")
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)["files"]
    assert files == [str(d / f) for f in ("ca.pem", "ca.key", "core.pem", "core.key")]
    r = run_sedgectl("cert", "issue", "--dir=%s" % d, "lamp")
    assert r.returncode == 0, r.stderr
    r = run_sedgectl("cert", "issue", "s1", "--dir", d)
    assert r.returncode == 0 and (d / "s1.pem").exists(), r.stderr


def test_exit_codes_0_ok_1_failed_2_usage_3_unreachable(sedge, tmp_path):
    assert sedge.ctl("status").returncode == 0
    r = sedge.ctl("rollback")  # nothing to roll back to
    assert r.returncode == 1 and r.stderr.strip()
    r = sedge.ctl("--json", "rollback")
    assert json.loads(r.stdout)["exit"] == 1
    assert sedge.ctl("status", "--lines", "3").returncode == 2
    assert run_sedgectl("status", data_dir=tmp_path).returncode == 3


def test_things_lists_connected_things_with_identity_address_since_and_session(make_sedge):
    s = make_sedge(tls=True)
    before = int(time.time())
    s.client("plain-1", version=4)
    s.client("keeper", clean=False, session_expiry=600)
    s.raw(cert="sensor-9").connect("sensor-9-client")
    r = s.ctl("things", "--json")
    assert r.returncode == 0, r.stderr
    things = {t["identity"]: t for t in json.loads(r.stdout)["things"]}
    assert set(things) == {"plain-1", "keeper", "sensor-9"}
    assert things["plain-1"]["protocol"] == "3.1.1"
    assert things["plain-1"]["session"] == {"persistent": False, "expiry_s": 0}
    assert things["keeper"]["session"] == {"persistent": True, "expiry_s": 600}
    assert things["sensor-9"]["client_id"] == "sensor-9-client"
    assert things["sensor-9"]["listener"] == "127.0.0.1:%d" % s.tls_port
    for t in things.values():
        assert t["address"].startswith("127.0.0.1:")
        assert before - 1 <= t["since"] <= int(time.time()) + 1
    human = s.ctl("things")
    assert human.returncode == 0
    assert "sensor-9" in human.stdout and "persistent (expiry 600 s)" in human.stdout


def test_invoke_timeout_gives_up_waiting_with_exit_1(fsedge):
    """--timeout bounds how long sedgectl waits; the function's own
    timeout_s (here longer) still governs the invocation in sedged."""
    iso = {} if os.geteuid() == 0 else {"isolation": "none"}
    deploy_ok(fsedge, fh.group([behave(timeout_s=10, **iso)]))
    start = time.monotonic()
    r = fsedge.ctl("invoke", "behave", "sleep:4000", "--timeout", "1")
    took = time.monotonic() - start
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no answer within 1000 ms" in r.stderr
    assert 0.9 <= took < 3.5, took
    r = fsedge.ctl("invoke", "--timeout=5", "behave", "sleep:10")
    assert (r.returncode, r.stdout) == (0, "slept"), r.stderr
    r = fsedge.ctl("--json", "invoke", "behave", "--", "-5")
    assert r.returncode == 0 and json.loads(r.stdout)["result"] == "-5", r.stdout


# -- config errors: the right line, addresses and certificates at load

def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_second_listeners_bad_type_is_reported_at_its_own_line(tmp_path):
    cfg = write_lines(tmp_path / "sedge.json", [
        '{ "data_dir": "data",',                                   # 1
        '  "listeners": [',                                          # 2
        '    { "type": "tcp", "bind": "127.0.0.1:%d" },' % free_port(),  # 3
        '    {',                                                     # 4
        '      "type": "tpc",',                                      # 5
        '      "bind": "127.0.0.1:%d"' % free_port(),               # 6
        '    },',                                                    # 7
        '    { "bind": "127.0.0.1:1" }',                             # 8
        '  ] }'])
    r = run_sedged(cfg)
    assert r.returncode == 2
    assert "%s:5: listeners[1].type: 'tpc' is not tcp, tls, unix, ws or wss" % cfg in r.stderr, r.stderr
    # A missing key is reported at its object's line.
    assert "%s:8: listeners[2].type: missing" % cfg in r.stderr, r.stderr


@pytest.mark.parametrize("listener, what", [
    ({"type": "tcp", "bind": "localhost:1885"}, "'localhost:1885' is not ADDRESS:PORT"),
    ({"type": "tcp", "bind": "127.0.0.1:99999"}, "'127.0.0.1:99999' is not ADDRESS:PORT"),
    ({"type": "tcp", "bind": "127.0.0.1"}, "is not ADDRESS:PORT"),
    ({"type": "tcp", "bind": "0.0.0.0:1883"}, "may only bind a loopback address"),
    ({"type": "tcp", "bind": "[::]:1883"}, "may only bind a loopback address"),
    ({"type": "unix", "bind": "s" * 120}, "is longer than 107 bytes"),
])
def test_bad_listener_addresses_are_refused_at_load_before_anything_is_created(
        tmp_path, listener, what):
    cfg = write_lines(tmp_path / "sedge.json", [
        '{ "data_dir": "data",',
        '  "listeners": [ { "type": "tcp", "bind": "127.0.0.1:%d" },' % free_port(),
        '                 %s ] }' % json.dumps(listener)])
    r = run_sedged(cfg)
    assert r.returncode == 2, r.stderr
    assert "%s:3: listeners[1].bind: " % cfg in r.stderr and what in r.stderr, r.stderr
    assert not (tmp_path / "data").exists(), "the data directory was created"


def test_missing_certificate_names_the_ca_init_to_run(tmp_path):
    port = free_port()
    cfg = write_lines(tmp_path / "sedge.json", [
        '{ "data_dir": "data",',
        '  "listeners": [ { "type": "tls", "bind": "127.0.0.1:%d",' % port,
        '                   "ca_file": "pki/ca.pem",',
        '                   "cert_file": "pki/core.pem",',
        '                   "key_file": "pki/core.key" } ] }'])
    r = run_sedged(cfg)
    assert r.returncode == 2
    pki = tmp_path / "pki"
    for line, key, name in ((3, "ca_file", "ca.pem"), (4, "cert_file", "core.pem"),
                            (5, "key_file", "core.key")):
        want = ("%s:%d: listeners[0].%s: %s/%s does not exist: create the group CA and the "
                "core's certificate with `sedgectl ca init --dir %s`" % (cfg, line, key, pki,
                                                                          name, pki))
        assert want in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()
    # Once the command it names has run, sedged starts.
    assert run_sedgectl("ca", "init", "--dir", pki).returncode == 0
    p = subprocess.Popen([str(SEDGED), "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stderr:
            if "ready" in line or "stopped" in line:
                break
        assert "ready" in line, line
    finally:
        p.terminate()
        assert p.wait(timeout=TIMEOUT) == 0


def test_a_refused_deployment_reports_every_problem_however_many(sedge, tmp_path):
    doc = {"group": "g"}
    doc.update({"unknown_key_%03d" % i: i for i in range(150)})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    r = sedge.ctl("deploy", path)
    assert r.returncode == 1
    assert all("unknown_key_%03d: unknown key" % i in r.stderr for i in range(150)), r.stderr[-300:]
