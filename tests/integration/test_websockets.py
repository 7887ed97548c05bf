"""MQTT over WebSockets: listener types ws (loopback, the client id is the
identity) and wss (a client certificate, its CN the identity), path /mqtt,
subprotocol mqtt, with paho's websockets transport (3.1.1 and 5.0); frames
over the limit, wrong paths and subprotocols, a client that stops reading."""

import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import SEDGED, TIMEOUT, free_port, wait_for
from front_helpers import WsClient, deploy, make_front, metric_value, metrics_text


@pytest.fixture
def front(make_sedge):
    s = make_front(make_sedge, discovery=False, http_extra={"max_ws_frame_bytes": 65536},
                   limits={"slow_reader_timeout_s": 2, "max_output_bytes": 65536})
    for name in ("sensor-1", "lamp"):
        s.issue_cert(name)
    deploy(s, ["sensor-1", "lamp", "ws-a", "ws-b"])
    return s


@pytest.mark.parametrize("version", [4, 5])
def test_wss_and_ws_with_paho(front, version):
    sub = WsClient(front, "sub", version=version, tls_cert="lamp")
    sub.connect()
    sub.subscribe("w/#", qos=1)
    pub = WsClient(front, "pub", version=version, tls_cert="sensor-1")
    pub.connect()
    plain = WsClient(front, "ws-a", version=version)
    plain.connect()
    try:
        for i in range(50):
            pub.publish("w/%d" % i, b"p%d" % i + b"." * (i * 200), qos=1)
        big = os.urandom(60000)  # under the frame limit; paho sends one frame per packet
        pub.publish("w/big", big, qos=1)
        plain.publish("w/plain", b"from ws", qos=1)
        got = [sub.expect() for _ in range(52)]
        assert [m.topic for m in got[:50]] == ["w/%d" % i for i in range(50)]
        assert got[50].payload == big
        assert got[51].payload == b"from ws"
        # A plain TCP client on the same broker sees WebSocket messages too.
        tcp = front.client("ws-b", version=5)
        tcp.subscribe("w/#", qos=1)
        pub.publish("w/tcp", b"to tcp", qos=1)
        assert tcp.expect_message().payload == b"to tcp" if hasattr(tcp, "expect_message") \
            else tcp.messages.get(timeout=TIMEOUT).payload == b"to tcp"
    finally:
        for c in (sub, pub, plain):
            c.close()
    log = front.log()
    assert "as 'lamp'" in log and "as 'sensor-1'" in log


def test_identity_rules(front):
    # ws: the client id is the identity, so one not in the group is refused.
    c = WsClient(front, "stranger", version=5)
    assert c.connect(expect_rc=None) == 0x87
    c.close()
    # wss: the certificate's CN is the identity, whatever the client id.
    c = WsClient(front, "stranger", version=5, tls_cert="lamp")
    c.connect()
    c.close()
    # wss without a certificate: refused in the handshake.
    ctx = front.ssl_context()
    with socket.create_connection(("127.0.0.1", front.front_ports["wss"]), timeout=TIMEOUT) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                t.sendall(b"GET /mqtt HTTP/1.1\r\n\r\n")
                assert t.recv(100) == b""


def upgrade(port, path="/mqtt", protocol="mqtt"):
    """A hand-made WebSocket upgrade; returns the socket and the status line."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, key))
    if protocol:
        req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
    s.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head.split(b"\r\n", 1)[0]


def frame(payload, opcode=2):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_wrong_path_or_subprotocol_is_refused(front):
    port = front.front_ports["ws"]
    s, status = upgrade(port, path="/other")
    assert b"101" not in status, status
    s.close()
    s, status = upgrade(port, protocol="chat")
    assert b"101" not in status, status
    s.close()
    s, status = upgrade(port)
    assert b"101" in status, status
    s.close()


def test_frame_over_the_limit_closes_that_connection_only(front):
    bystander = WsClient(front, "ws-b", version=5)
    bystander.connect()
    s, status = upgrade(front.front_ports["ws"])
    assert b"101" in status
    connect = bytes.fromhex("101000044d5154540402003c0004") + b"ws-a"
    s.sendall(frame(connect))
    assert s.recv(100)  # the CONNACK's frame
    s.sendall(frame(b"\x30" + b"\xff" * 3 + b"\x7f" + b"x" * 70000))  # one 70 KB frame
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, socket.timeout):
        pass
    s.close()
    # A close frame with 1009 (message too big), or the socket closed.
    assert data == b"" or data[0] & 0x0f == 8, data[:10]
    if data:
        assert struct.unpack("!H", data[2:4])[0] == 1009
    assert metric_value(metrics_text(front), "sedge_http_bad_requests_total") >= 1
    bystander.subscribe("still/#")
    bystander.publish("still/here", b"yes", qos=1)
    assert bystander.expect("still/here").payload == b"yes"
    bystander.close()


def test_a_client_that_stops_reading_is_cut_and_others_flow(front):
    """A subscriber over ws that never reads: past max_output_bytes its QoS 0
    messages are dropped (counted), and once its socket is full for
    slow_reader_timeout_s it is disconnected; another ws subscriber (QoS 1)
    gets everything meanwhile."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", front.front_ports["ws"]))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: mqtt\r\n\r\n" % key).encode())
    assert b" 101 " in s.recv(1000)
    s.sendall(frame(bytes.fromhex("101000044d5154540402003c0004") + b"ws-a"))
    s.sendall(frame(bytes.fromhex("820a00010005") + b"big/#" + b"\x00"))  # SUBSCRIBE qos 0
    wait_for(lambda: front.status()["subscriptions"] == 1, what="the stuck reader subscribed")
    good = WsClient(front, "ws-b", version=5)
    good.connect()
    good.subscribe("big/#", qos=1)  # QoS 1: never dropped; the stuck one has QoS 0
    pub = front.client("sensor-1", version=5)
    sent = 0
    deadline = time.monotonic() + TIMEOUT * 2
    while time.monotonic() < deadline:
        for _ in range(50):
            pub.publish("big/x", b"z" * 16000, qos=1)
        sent += 50
        time.sleep(0.1)
        if front.status()["slow_readers"]:
            break
    st = front.status()
    assert st["slow_readers"] == 1, st
    assert st["messages_dropped"] > 0, st
    assert "'ws-a' disconnected: slow reader" in front.log()
    got = 0
    while True:
        try:
            good.messages.get(timeout=2)
            got += 1
        except Exception:
            break
    assert got == sent, (got, sent)
    s.close()
    good.close()


def test_configuration_errors(make_sedge):
    """What the config refuses, all at once with the key, or at start."""
    s = make_sedge(start=False)
    cfg = s.config()
    cfg["listeners"] += [{"type": "wss", "bind": "127.0.0.1:1"},
                         {"type": "ws", "bind": "127.0.0.1:2", "crl_file": "x.pem"}]
    cfg["discovery"] = {"bind": 7, "connectivity": [{"HostAddress": "10.0.0.1"}], "color": 1}
    cfg["http"] = {"admins": "me", "console": "yes", "max_ws_frame_bytes": 10}
    s.config_path.write_text(json.dumps(cfg))
    r = subprocess.run([str(SEDGED), "--config", str(s.config_path)], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 2
    for expected in ("listeners[1].ca_file: missing", "listeners[2].crl_file: only a tls or wss",
                     "discovery.bind: expected", "discovery.connectivity[0]: needs HostAddress",
                     "discovery.color: unknown key", "http.admins: expected an array",
                     "http.console: expected true or false",
                     "http.max_ws_frame_bytes: must be at least 1024"):
        assert expected in r.stderr, (expected, r.stderr)
    # A ws listener off loopback is refused at start, saying why.
    s2 = make_sedge(start=False)
    s2.extra = {}
    base = s2.config

    def config():
        c = base()
        c["listeners"].append({"type": "ws", "bind": "0.0.0.0:%d" % free_port()})
        return c
    s2.config = config
    s2.write_config()
    with pytest.raises(RuntimeError) as e:
        s2.start(timeout=10)
    assert "may only bind a loopback address" in str(e.value)
