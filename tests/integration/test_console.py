"""The web console: its login (a one-time token that becomes a session
cookie), CSRF protection, the API over the admin commands, the live topic
viewer's WebSocket — and the whole page in headless Chromium
(tests/browser/console.mjs with playwright-core), taking its turns with
the things this test plays."""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, REPO, TIMEOUT, wait_for
from front_helpers import console_login, deploy, http_get, make_front, metric_value, metrics_text
from functions_fixtures import public_tmp  # noqa: F401 (a fixture)

ECHO = str(BUILD / "examples" / "echo")
BROWSER = REPO / "tests" / "browser"


ROUTES = [{"source": "thing:*", "filter": "#", "target": "thing:*"},
          {"source": "thing:*", "filter": "$aws/things/+/shadow/#", "target": "shadow"}]
ECHO_FN = {"name": "echo", "exec": [ECHO], "code": str(BUILD / "examples"), "isolation": "none"}


def group_with_echo(s, things=("lamp", "sensor-1")):
    return deploy(s, list(things), routes=ROUTES, extra={"functions": [ECHO_FN]})


@pytest.fixture
def front(make_sedge, public_tmp):  # noqa: F811
    s = make_front(make_sedge, discovery=False, name=os.path.join(public_tmp, "sedge"))
    group_with_echo(s)
    return s


def api(s, path, cookie, body=None, csrf=None, headers=None):
    h = {"Cookie": cookie}
    if csrf:
        h["X-CSRF-Token"] = csrf
    h.update(headers or {})
    status, _, data = http_get(s, "/api/" + path, method="POST" if body is not None else "GET",
                               headers=h, body=json.dumps(body) if body is not None else None)
    return status, json.loads(data) if data else None


def test_a_login_url_not_used_within_its_lifetime_is_refused(make_sedge, public_tmp):  # noqa: F811
    s = make_front(make_sedge, discovery=False, ws=False, http_extra={"login_ttl_s": 1},
                   name=os.path.join(public_tmp, "sedge"))
    r = s.ctl("--json", "console")
    assert r.returncode == 0 and json.loads(r.stdout)["expires_in_s"] == 1, r.stdout
    path = json.loads(r.stdout)["url"]
    path = path[path.index("/login"):]
    time.sleep(2.2)
    status, headers, body = http_get(s, path)
    assert status == 401 and b"already used or expired" in body
    assert "Set-Cookie" not in headers
    assert metric_value(metrics_text(s), "sedge_console_logins_total", {"result": "refused"}) == 1
    # A fresh one, used in time, logs in.
    console_login(s)


def test_login_token_is_one_time_and_csrf_is_required(front):
    url, cookie, csrf = console_login(front)
    token_path = url[url.index("/login"):]
    status, _, body = http_get(front, token_path)
    assert status == 401 and b"already used or expired" in body
    status, _, body = http_get(front, "/login?token=" + "0" * 64)
    assert status == 401
    status, doc = api(front, "status", "sedge_session=" + "f" * 64)
    assert status == 401
    status, doc = api(front, "status", cookie)
    assert status == 200 and doc["connections"] == 0
    # A change without, or with a wrong, CSRF token.
    change = {"thing": "lamp", "desired": {"on": True}}
    assert api(front, "shadow", cookie, change)[0] == 403
    assert api(front, "shadow", cookie, change, csrf="x" * 64)[0] == 403
    status, doc = api(front, "shadow", cookie, change, csrf=csrf)
    assert status == 200 and doc["document"]["state"]["desired"] == {"on": True}
    text = metrics_text(front)
    assert metric_value(text, "sedge_console_csrf_refused_total") == 2
    assert metric_value(text, "sedge_console_logins_total", {"result": "refused"}) == 2
    assert metric_value(text, "sedge_console_logins_total", {"result": "ok"}) == 1


def test_api_goes_through_the_admin_commands(front):
    _, cookie, csrf = console_login(front)
    # The same checks and errors as sedgectl.
    status, doc = api(front, "shadow", cookie, {"thing": "bad name!", "desired": {}}, csrf=csrf)
    assert status == 400 and "invalid thing name" in doc["error"]
    status, doc = api(front, "invoke", cookie, {"function": "nope", "payload": 1}, csrf=csrf)
    assert status == 400 and "no function named nope" in doc["error"]
    status, doc = api(front, "invoke", cookie, {"function": "echo", "payload": "hi"}, csrf=csrf)
    assert status == 200 and doc["result"] == 'echo:"hi"', doc
    status, doc = api(front, "deploy", cookie, {"document": "{not json"}, csrf=csrf)
    assert status == 400 and doc["error"]
    status, doc = api(front, "rollback", cookie, {"version": "x"}, csrf=csrf)
    assert status == 400 and doc["error"] == "version must be a positive integer"
    # Hostile bodies.
    for body in (b"[1,2]", b"{\"a\":1,\"a\":2}", b"\xff\xfe", b"{" * 5000):
        status, _, data = http_get(front, "/api/shadow", method="POST", body=body,
                                   headers={"Cookie": cookie, "X-CSRF-Token": csrf})
        assert status == 400, (body[:10], status, data)
    # Reads.
    for path in ("status", "things", "group", "functions", "deployments"):
        status, doc = api(front, path, cookie)
        assert status == 200, (path, doc)
    status, doc = api(front, "spool", cookie)
    assert status == 400 and "no cloud" in doc["error"]
    status, doc = api(front, "logs?function=echo", cookie)
    assert status == 200 and "tail" in doc


def ws_upgrade(s, path, headers):
    sock = socket.create_connection(("127.0.0.1", s.front_ports["http"]), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: sedge-console\r\n" % (path, s.front_ports["http"], key))
    for k, v in headers.items():
        req += "%s: %s\r\n" % (k, v)
    sock.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


def test_topic_viewer_websocket_wants_the_session_and_the_same_origin(front):
    _, cookie, _ = console_login(front)
    origin = "http://127.0.0.1:%d" % front.front_ports["http"]
    sock, head = ws_upgrade(front, "/console/ws", {"Cookie": cookie, "Origin": "http://evil.example"})
    assert b" 101 " not in head.split(b"\r\n")[0]
    sock.close()
    sock, head = ws_upgrade(front, "/console/ws", {"Origin": origin})
    assert b" 101 " not in head.split(b"\r\n")[0]
    sock.close()
    sock, head = ws_upgrade(front, "/console/ws", {"Cookie": cookie, "Origin": origin})
    assert b" 101 " in head.split(b"\r\n")[0], head
    mask = os.urandom(4)
    msg = json.dumps({"subscribe": "view/#"}).encode()
    sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(msg)) + mask +
                 bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
    pub = front.client("lamp", version=5)
    time.sleep(0.3)
    pub.publish("view/x", b"seen by the console", qos=1)
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while b"seen by the console" not in data and time.monotonic() < deadline:
        data += sock.recv(65536)
    assert b'"topic":"view/x"' in data and b'"source":"thing:lamp"' in data
    sock.close()


def browser_ready():
    if not shutil.which("node") or not Path("/usr/bin/chromium").exists():
        return "node or /usr/bin/chromium missing (make deps)"
    if not (BROWSER / "node_modules" / "playwright-core").exists():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return "npm ci in tests/browser failed: " + r.stderr[-500:]
    return None


def test_console_in_headless_chromium(front, tmp_path):
    problem = browser_ready()
    assert problem is None, problem
    url = front.ctl("console").stdout.strip()
    # A second version, so that there is one to roll back to.
    group_with_echo(front, things=("lamp", "sensor-1", "extra"))
    shots = tmp_path / "shots"
    shots.mkdir()
    env = dict(os.environ, SEDGE_LOGIN_URL=url, SEDGE_SHOTS=str(shots))
    node = subprocess.Popen(["node", str(BROWSER / "console.mjs")], cwd=BROWSER, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1)

    def expect_step(name):
        line = node.stdout.readline().strip()
        if line != "step " + name:
            node.kill()
            raise AssertionError("browser: expected step %s, got %r; stderr:\n%s"
                                 % (name, line, node.stderr.read()[-3000:]))

    def go(name):
        node.stdin.write("go %s\n" % name)
        node.stdin.flush()

    lamp = None
    try:
        expect_step("logged-in")
        lamp = front.client("lamp", version=5)
        lamp.subscribe("$aws/things/lamp/shadow/update/delta", qos=1)
        go("thing-connected")
        expect_step("saw-thing")
        expect_step("watching")
        lamp.publish("demo/live", b"hello-browser", qos=1)
        go("published")
        expect_step("saw-message")
        expect_step("shadow-saved")
        delta = lamp.messages.get(timeout=TIMEOUT)
        assert delta.topic == "$aws/things/lamp/shadow/update/delta"
        assert json.loads(delta.payload)["state"] == {"on": True, "level": 7}
        go("delta-seen")
        expect_step("invoked")
        expect_step("rolled-back")
        expect_step("done")
        assert node.wait(timeout=TIMEOUT) == 0, node.stderr.read()[-3000:]
    finally:
        if node.poll() is None:
            node.kill()
    assert front.status()["group"]["version"] == 1
    assert len(list(shots.glob("*.png"))) >= 6
    keep = os.environ.get("SEDGE_KEEP_SHOTS")
    if keep:  # e.g. docs/: the screenshots of this run
        for p in shots.glob("*.png"):
            shutil.copy(p, keep)
