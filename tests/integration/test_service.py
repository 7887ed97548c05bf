"""sedged as a systemd service: the unit passes `systemd-analyze verify`,
sedged speaks sd_notify (READY, RELOADING, STOPPING, the watchdog's pings
from its loop), writes journald's <N> priorities when stderr is the
journal, and SIGHUP reloads what can change without a restart — and says
what it reloaded, what takes a restart and why it refused.

systemd is not PID 1 here: its notification socket is a datagram socket
of the test's, and the journal's stream is the log file itself (systemd
names the stream it connected in JOURNAL_STREAM=DEV:INODE).
"""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BUILD, TIMEOUT, free_port, issue_cert, make_ca, wait_for

UNIT = BUILD / "dist" / "sedge.service"


def test_unit_passes_systemd_analyze_verify(tmp_path):
    """The unit as installed, with ExecStart pointing at this build's
    sedged so that verify can check the program."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    exec_start = [l for l in text.splitlines() if l.startswith("ExecStart=")]
    assert len(exec_start) == 1
    program = exec_start[0].split("=", 1)[1].split()[0]
    unit = tmp_path / "sedge.service"
    unit.write_text(text.replace(program, str(BUILD / "sedged")))
    man = BUILD / "man"
    args = ["systemd-analyze", "verify"]
    if not (man / "man8" / "sedged.8").exists():
        args.append("--man=no")
    r = subprocess.run(args + [str(unit)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MANPATH=str(man) + ":"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sedge.service" not in r.stderr, r.stderr
    for setting in ("Type=notify", "WatchdogSec=",
                    "ExecReload=/bin/sh -c 'kill -HUP \"$MAINPID\"'", "Restart=on-failure",
                    "StartLimitBurst=", "ProtectSystem=strict", "NoNewPrivileges=yes",
                    "User=sedge", "StateDirectory=sedge"):
        assert setting in text, setting
    # Exactly the capabilities the sandbox uses (src/functions/privilege.c).
    caps = "CAP_SYS_ADMIN CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_CHOWN CAP_MKNOD CAP_KILL"
    assert "AmbientCapabilities=%s\n" % caps in text
    assert "CapabilityBoundingSet=%s\n" % caps in text


class Notifications:
    """A NOTIFY_SOCKET: the datagrams sedged sends, in order."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.got = []

    def drain(self):
        while True:
            try:
                self.got.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.got

    def wait(self, state, count=1, timeout=TIMEOUT):
        return wait_for(lambda: self.drain().count(state) >= count, timeout,
                        what="%d x %s (got %s)" % (count, state, self.got[-5:]))

    def close(self):
        self.sock.close()


@pytest.fixture
def notifications(tmp_path, monkeypatch):
    n = Notifications(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", n.path)
    yield n
    n.close()


def test_notify_ready_watchdog_reloading_and_stopping(make_sedge, notifications, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 100 ms
    s = make_sedge()
    notifications.wait("READY=1")
    start = time.monotonic()
    notifications.wait("WATCHDOG=1", count=5)
    assert time.monotonic() - start < 2.0
    s.proc.send_signal(signal.SIGHUP)
    notifications.wait("RELOADING=1")
    notifications.wait("READY=1", count=2)
    got = notifications.drain()
    assert got.index("RELOADING=1") < len(got) - 1 - got[::-1].index("READY=1")
    assert s.stop() == 0
    notifications.wait("STOPPING=1")


def test_watchdog_of_another_pid_is_not_pinged(make_sedge, notifications, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    make_sedge()
    notifications.wait("READY=1")
    time.sleep(0.5)
    assert "WATCHDOG=1" not in notifications.drain()


def sighup(s, *patterns):
    """SIGHUP, then wait for each log line of `patterns`; the mark before."""
    mark = s.log_mark()
    s.proc.send_signal(signal.SIGHUP)
    for p in patterns:
        s.wait_log(p, since=mark)
    return mark


def journal_sedge(make_sedge, monkeypatch, matching):
    """A sedged whose stderr (the log file) is, or is not, the stream
    JOURNAL_STREAM names."""
    s = make_sedge(start=False)
    s.log_path.touch()
    st = os.stat(s.log_path)
    ino = st.st_ino if matching else st.st_ino + 1
    monkeypatch.setenv("JOURNAL_STREAM", "%d:%d" % (st.st_dev, ino))
    return s.start()


def test_log_lines_carry_journal_priorities_when_stderr_is_the_journal(make_sedge,
                                                                        monkeypatch):
    s = journal_sedge(make_sedge, monkeypatch, True)
    s.extra = {"data_dir": "elsewhere"}
    s.write_config()
    sighup(s, "it takes a restart")
    lines = s.log().splitlines()
    assert any(l.startswith("<6>core: sedged 0.1.0 ready") for l in lines), lines[:5]
    assert any(l.startswith("<4>core: SIGHUP: data_dir changed") for l in lines)
    assert all(l[:3] in ("<3>", "<4>", "<6>", "<7>") for l in lines), lines


def test_log_lines_keep_their_format_when_stderr_is_not_the_journal(make_sedge, monkeypatch):
    s = journal_sedge(make_sedge, monkeypatch, False)
    first = s.log().splitlines()[0]
    assert not first.startswith("<")
    assert first[:4].isdigit() and " I " in first


def test_sighup_reloads_the_log_level_and_the_limits(make_sedge):
    s = make_sedge()
    first = s.client("first")
    s.log_level = "debug"
    s.limits["max_connections"] = 1
    s.write_config()
    mark = sighup(s, "SIGHUP: log level debug \\(was info\\)", "SIGHUP: limits reloaded")
    # The new limit is in force: a second connection is refused, the
    # first one stays.
    with pytest.raises(Exception):
        s.raw().connect("second")
    s.wait_log("max_connections \\(1\\) reached", since=mark)
    first.publish("still/here", b"x", qos=1)
    first.disconnect()
    s.wait_log(" D broker: client 'first' disconnected", since=mark)  # debug lines now
    # Back to the old config: both apply again.
    s.log_level = "info"
    s.limits["max_connections"] = 10000
    s.write_config()
    sighup(s, "SIGHUP: log level info \\(was debug\\)")
    s.client("third")


def test_sighup_with_an_invalid_config_reloads_nothing_and_says_why(make_sedge):
    s = make_sedge()
    s.config_path.write_text(json.dumps(dict(s.config(), log_level="loud")))
    sighup(s, "is not valid, nothing reloaded",
           "log_level: 'loud' is not error, warn, info or debug")
    s.config_path.write_text("{ not json")
    sighup(s, "is not valid, nothing reloaded")
    assert s.running()
    assert s.status()["pid"] == s.pid
    s.client("still-served")


def test_sighup_says_what_takes_a_restart_and_keeps_serving_the_old(make_sedge):
    s = make_sedge()
    old_port = s.port
    s.port = old_port + 1 if old_port < 65535 else old_port - 1
    s.extra = {"store": {"synchronous": "normal"}}
    s.write_config()
    sighup(s, "listeners \\(addresses, types or file names\\) changed: not reloaded, it "
           "takes a restart", "store changed: not reloaded")
    s.port = old_port
    s.client("on-the-old-port")


CONNECT_311 = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0])


def tls_probe(s, ca_file, cert, key):
    """An MQTT CONNECT over TLS: the server certificate's subject CN once
    the CONNACK came (a refused client certificate raises ssl.SSLError or
    gets no CONNACK)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(cert), str(key))
    with socket.create_connection(("127.0.0.1", s.tls_port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw) as tls:
            cn = dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
            tls.sendall(CONNECT_311)
            if tls.recv(4)[:1] != b"\x20":
                raise ssl.SSLError("no CONNACK")
            return cn


def test_sighup_reloads_the_tls_certificate_key_and_ca(make_sedge, tmp_path):
    s = make_sedge(tls=True)
    s.issue_cert("old-thing")
    assert tls_probe(s, s.certs / "ca.pem", s.certs / "old-thing.pem",
                     s.certs / "old-thing.key") == "edge-core"
    kept = s.raw(cert="old-thing")
    kept.connect("kept")
    # A new CA and core certificate at the same paths.
    fresh = make_ca(tmp_path / "fresh", core_name="renewed-core", sans=["localhost"])
    issue_cert(fresh, "new-thing")
    for name in ("ca.pem", "ca.key", "core.pem", "core.key"):
        shutil.copy(fresh / name, s.certs / name)
    sighup(s, "1 TLS listener\\(s\\) reloaded")
    assert tls_probe(s, fresh / "ca.pem", fresh / "new-thing.pem",
                     fresh / "new-thing.key") == "renewed-core"
    with pytest.raises(ssl.SSLError):  # the old CA's clients are not trusted any more
        tls_probe(s, tmp_path / "fresh" / "ca.pem", s.certs / "old-thing.pem",
                  s.certs / "old-thing.key")
    kept.ping()  # a connection made before keeps going
    # A key that does not load: the listener keeps what it had.
    (s.certs / "core.key").write_text("not a key\n")
    sighup(s, "keeps its previous CRLs, certificate, key and CA")
    assert tls_probe(s, fresh / "ca.pem", fresh / "new-thing.pem",
                     fresh / "new-thing.key") == "renewed-core"


def test_config_errors_carry_the_error_priority_in_the_journal(tmp_path):
    cfg = tmp_path / "sedge.json"
    cfg.write_text('{"data_dir": "d",\n "listeners": [{"type": "tcp", "bind": "0.0.0.0:1"}],\n'
                   ' "colour": 1}\n')
    err = tmp_path / "stderr"
    with open(err, "wb") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        r = subprocess.run([str(BUILD / "sedged"), "--config", str(cfg)], stderr=f,
                           env=env, timeout=30)
    assert r.returncode == 2
    lines = err.read_text().splitlines()
    assert len(lines) == 3, lines
    assert all(l.startswith("<3>") for l in lines), lines
    assert "invalid configuration" in lines[0]
    assert any("listeners[0].bind" in l for l in lines)
    assert any("colour: unknown key" in l for l in lines)


def test_sighup_reloads_what_discovery_answers_and_names_the_front_as_a_restart(make_sedge):
    """Discovery's connectivity (read at each request) is reloaded; the
    HTTP front's addresses take a restart, and say so."""
    from front_helpers import deploy, https_get, make_front
    conn = {"Id": "lan", "HostAddress": "10.9.8.7", "PortNumber": 8883}
    s = make_front(make_sedge, start=False, extra={"discovery": {"connectivity": [conn]}})
    s.start()
    s.issue_cert("lamp")
    deploy(s, ["lamp"])
    path = "/greengrass/discover/thing/lamp"

    def answer():
        status, _, body, _ = https_get(s, s.front_ports["discovery"], path, cert="lamp")
        assert status == 200
        return json.loads(body)["GGGroups"][0]["Cores"][0]["Connectivity"]
    assert [c["HostAddress"] for c in answer()] == ["10.9.8.7"]
    moved = dict(conn, HostAddress="10.9.8.8", Id="moved")
    s.extra["discovery"]["connectivity"] = [moved, dict(conn, Id="old")]
    s.extra["http"]["bind"] = "127.0.0.1:%d" % free_port()
    s.write_config()
    sighup(s, "SIGHUP: discovery answers with 2 connectivity entries",
           "http changed: not reloaded, it takes a restart")
    assert [(c["Id"], c["HostAddress"]) for c in answer()] == [("moved", "10.9.8.8"),
                                                                ("old", "10.9.8.7")]
