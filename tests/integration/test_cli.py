"""sedgectl and sedged as commands: status, exit codes, config validation,
certificates."""

import json
import os
import subprocess

import pytest

from conftest import SEDGED, TIMEOUT, free_port, run_sedgectl

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


def test_status_against_a_stopped_daemon_exits_1(sedge):
    assert sedge.stop() == 0
    r = sedge.ctl("status", "--json")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip() and not r.stdout.strip()


def test_status_against_a_data_dir_without_daemon_exits_1(tmp_path):
    r = run_sedgectl("status", "--json", data_dir=tmp_path / "nothing-here")
    assert r.returncode == 1
    assert r.stderr.strip()


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
