"""The Greengrass discovery API served by the core: independent clients
(curl, Python's ssl/http.client, and a discovery client on awscrt — the
library under AWS's Python device SDK — making the SDK's request), the
status codes and bodies AWS gives, and what the handshake refuses."""

import json
import socket
import ssl
import subprocess
import time

import paho.mqtt.client as paho
import pytest

from conftest import TIMEOUT, make_ca, issue_cert, wait_for
from front_helpers import (GG_HOST, curl, deploy, https_get, make_front, metric_value,
                           metrics_text)

PATH = "/greengrass/discover/thing/%s"


@pytest.fixture
def front(make_sedge):
    s = make_front(make_sedge)
    for name in ("sensor-1", "lamp", "stranger"):
        s.issue_cert(name)
    deploy(s, ["sensor-1", "lamp"])
    return s


def curl_discover(s, thing, cert, *extra):
    return curl("--cacert", s.certs / "ca.pem", "--cert", s.certs / (cert + ".pem"),
                "--key", s.certs / (cert + ".key"), "-w", "\n%{http_code}", *extra,
                "https://127.0.0.1:%d%s" % (s.front_ports["discovery"], PATH % thing))


def test_curl_discovers_its_core(front):
    r = curl_discover(front, "sensor-1", "sensor-1")
    assert r.returncode == 0, r.stderr
    body, code = r.stdout.rsplit("\n", 1)
    assert code == "200"
    doc = json.loads(body)
    assert list(doc) == ["GGGroups"]
    (group,) = doc["GGGroups"]
    assert sorted(group) == ["CAs", "Cores", "GGGroupId"]
    assert group["GGGroupId"] == "front"
    (core,) = group["Cores"]
    assert core["thingArn"].endswith(":thing/edge-core")
    assert core["Connectivity"], core
    for c in core["Connectivity"]:
        assert sorted(c) == ["HostAddress", "Id", "Metadata", "PortNumber"]
        assert c["PortNumber"] == front.tls_port
        assert c["Id"].startswith("AUTOIP_%s_" % c["HostAddress"])
        assert c["HostAddress"] not in ("127.0.0.1", "::1")
    ca = (front.certs / "ca.pem").read_text()
    assert group["CAs"] == [ca]


def test_status_codes_and_bodies(front):
    port = front.front_ports["discovery"]
    status, _, body, _ = https_get(front, port, PATH % "sensor-1", cert="lamp")
    assert status == 403
    doc = json.loads(body)
    assert sorted(doc) == ["message", "traceId"] and doc["message"]
    status, _, body, _ = https_get(front, port, PATH % "stranger", cert="stranger")
    assert status == 404
    assert json.loads(body) == {"errorMessage": "The thing provided for discovery was not found"}
    status, headers, body, _ = https_get(front, port, PATH % "lamp", cert="lamp", method="POST",
                                         body=b"{}")
    assert status == 405
    assert headers.get("Allow") == "GET"
    for bad in ("bad%20name", "a/b", "", "x" * 129):
        status, _, body, _ = https_get(front, port, PATH % bad, cert="lamp")
        assert status == 400, (bad, status, body)
    status, _, _, _ = https_get(front, port, "/other", cert="lamp")
    assert status == 404
    text = metrics_text(front)
    assert metric_value(text, "sedge_discovery_requests_total", {"code": "403"}) == 1
    assert metric_value(text, "sedge_discovery_requests_total", {"code": "400"}) == 4


def test_alpn_and_any_host(front):
    """As the SDKs do on port 443: ALPN x-amzn-http-ca, Host the cloud's."""
    status, _, body, selected = https_get(
        front, front.front_ports["discovery"], PATH % "lamp", cert="lamp",
        alpn=["x-amzn-http-ca"], headers={"Host": GG_HOST})
    assert status == 200, body
    assert selected == "x-amzn-http-ca"
    assert json.loads(body)["GGGroups"][0]["GGGroupId"] == "front"


def test_handshake_refuses_no_foreign_or_revoked_certificates(front, tmp_path):
    port = front.front_ports["discovery"]
    # No certificate.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_get(front, port, PATH % "lamp")
    # A certificate from another CA.
    other = tmp_path / "other-ca"
    make_ca(other)
    issue_cert(other, "lamp")
    r = curl("--cacert", front.certs / "ca.pem", "--cert", other / "lamp.pem",
             "--key", other / "lamp.key", "https://127.0.0.1:%d%s" % (port, PATH % "lamp"))
    assert r.returncode != 0
    # A certificate the group revokes.
    pem = (front.certs / "lamp.pem").read_bytes()
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    import hashlib
    fp = hashlib.sha256(der).hexdigest()
    deploy(front, ["sensor-1", "lamp"], extra={"revoked_certificates": ["sha256:" + fp]})
    r = curl_discover(front, "lamp", "lamp")
    assert r.returncode != 0, r.stdout
    assert "certificate revoked" in front.log()
    assert metric_value(metrics_text(front), "sedge_http_tls_refused_total") >= 2
    # The others still work.
    assert curl_discover(front, "sensor-1", "sensor-1").stdout.endswith("200")


def sdk_discover(s, thing, cert):
    """The request of the AWS IoT Device SDK v2 for Python's DiscoveryClient
    (awsiot/greengrass_discovery.py), made with the same library (awscrt,
    Debian's python3-awscrt; the SDK itself is not packaged): mTLS from the
    thing's files, SNI greengrass-ats.iot.REGION.amazonaws.com, ALPN
    x-amzn-http-ca, GET /greengrass/discover/thing/NAME with that Host. The
    one difference: it dials 127.0.0.1 instead of resolving that name."""
    from awscrt import http as crt_http
    from awscrt import io as crt_io
    elg = crt_io.EventLoopGroup(1)
    resolver = crt_io.DefaultHostResolver(elg)
    bootstrap = crt_io.ClientBootstrap(elg, resolver)
    opts = crt_io.TlsContextOptions.create_client_with_mtls_from_path(
        str(s.certs / (cert + ".pem")), str(s.certs / (cert + ".key")))
    opts.override_default_trust_store_from_path(None, str(s.certs / "ca.pem"))
    tls = crt_io.ClientTlsContext(opts)
    conn_opts = tls.new_connection_options()
    conn_opts.set_server_name(GG_HOST)
    assert crt_io.is_alpn_available()
    conn_opts.set_alpn_list(["x-amzn-http-ca"])
    conn = crt_http.HttpClientConnection.new(
        host_name="127.0.0.1", port=s.front_ports["discovery"], bootstrap=bootstrap,
        socket_options=crt_io.SocketOptions(), tls_connection_options=conn_opts).result(TIMEOUT)
    body = bytearray()
    req = crt_http.HttpRequest("GET", PATH % thing, crt_http.HttpHeaders([("host", GG_HOST)]))
    stream = conn.request(req, on_body=lambda http_stream, chunk, **kw: body.extend(chunk))
    stream.activate()
    code = stream.completion_future.result(TIMEOUT)
    conn.close().result(TIMEOUT)
    return code, bytes(body)


def test_sdk_discovery_then_mqtt_with_the_returned_ca_host_and_port(front, tmp_path):
    code, body = sdk_discover(front, "sensor-1", "sensor-1")
    assert code == 200, body
    group = json.loads(body)["GGGroups"][0]
    # What the SDK's samples do next: write the CAs, try each connectivity
    # entry; here the loopback one the config below adds.
    ca_file = tmp_path / "group-ca.pem"
    ca_file.write_text("".join(group["CAs"]))
    conn = group["Cores"][0]["Connectivity"]
    assert all(c["PortNumber"] == front.tls_port for c in conn)
    received = []
    sub = paho.Client(client_id="lamp-sub", protocol=paho.MQTTv311)
    sub.tls_set(ca_certs=str(ca_file), certfile=str(front.certs / "lamp.pem"),
                keyfile=str(front.certs / "lamp.key"))
    sub.on_message = lambda _c, _u, m: received.append(m.payload)
    sub.connect("127.0.0.1", conn[0]["PortNumber"])
    sub.subscribe("found/#", 1)
    sub.loop_start()
    pub = paho.Client(client_id="sensor-pub", protocol=paho.MQTTv311)
    pub.tls_set(ca_certs=str(ca_file), certfile=str(front.certs / "sensor-1.pem"),
                keyfile=str(front.certs / "sensor-1.key"))
    pub.connect("127.0.0.1", conn[0]["PortNumber"])
    pub.loop_start()
    try:
        time.sleep(0.3)
        pub.publish("found/it", b"through sedged", 1).wait_for_publish(TIMEOUT)
        wait_for(lambda: received == [b"through sedged"], what="the message through sedged")
    finally:
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()


def test_configured_connectivity_and_san_warning(make_sedge):
    s = make_front(make_sedge, start=False, extra={"discovery": {
        "connectivity": [{"Id": "lan", "HostAddress": "10.9.8.7", "PortNumber": 8883,
                          "Metadata": "rack 2"},
                         {"HostAddress": "127.0.0.1", "PortNumber": 8883}]}})
    s.start()
    s.issue_cert("lamp")
    deploy(s, ["lamp"])
    status, _, body, _ = https_get(s, s.front_ports["discovery"], PATH % "lamp", cert="lamp")
    assert status == 200
    conn = json.loads(body)["GGGroups"][0]["Cores"][0]["Connectivity"]
    assert conn == [{"Id": "lan", "HostAddress": "10.9.8.7", "PortNumber": 8883,
                     "Metadata": "rack 2"},
                    {"Id": "127.0.0.1_1", "HostAddress": "127.0.0.1", "PortNumber": 8883,
                     "Metadata": ""}]
    log = s.log()
    assert "discovery advertises 10.9.8.7, which the core's certificate" in log
    assert "--san 10.9.8.7" in log
    assert "discovery advertises 127.0.0.1" not in log


def test_hostile_requests_keep_the_broker_serving(front):
    port = front.front_ports["discovery"]
    ctx = front.ssl_context("lamp")
    # A request head over 8 KB: refused (lws answers 403) and closed.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            t.sendall(b"GET " + PATH.encode() % b"lamp" + b" HTTP/1.1\r\nHost: x\r\nX-Big: " +
                      b"a" * 9000 + b"\r\n\r\n")
            reply = t.recv(4096)
            assert reply.startswith(b"HTTP/1.1 403") or reply == b""
    # Garbage instead of HTTP.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            t.sendall(b"\x00\x01\x02 nonsense\r\n\r\n")
            try:
                t.recv(4096)
            except (ssl.SSLError, ConnectionError):
                pass
    # A client that connects and says nothing is dropped after timeout_s.
    # The broker and discovery still answer.
    status, _, _, _ = https_get(front, port, PATH % "lamp", cert="lamp")
    assert status == 200
    c = paho.Client(client_id="lamp")
    c.connect("127.0.0.1", front.port)
    c.disconnect()


def test_connection_cap_and_idle_timeout(make_sedge):
    """http.max_connections: past it a connection is closed at accept and
    counted; http.timeout_s: a connection that says nothing is dropped."""
    s = make_front(make_sedge, ws=False, http_extra={"max_connections": 4, "timeout_s": 2})
    s.issue_cert("lamp")
    deploy(s, ["lamp"])
    port = s.front_ports["discovery"]
    idle = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(4)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    assert extra.recv(10) == b""  # closed at once
    extra.close()
    # The idle ones are dropped after timeout_s; then discovery answers again.
    for c in idle:
        c.settimeout(TIMEOUT)
        try:
            assert c.recv(10) == b""
        except ConnectionError:
            pass
        c.close()
    status, _, _, _ = https_get(s, port, PATH % "lamp", cert="lamp")
    assert status == 200
    text = metrics_text(s)
    assert metric_value(text, "sedge_http_connections_refused_total") >= 1


def test_both_cas_during_a_rotation(make_sedge, tmp_path):
    """The tls listener trusts two CAs (a rotation): discovery lists both,
    and a thing with a certificate from either discovers its core."""
    s = make_front(make_sedge, start=False)
    new = tmp_path / "new-ca"
    make_ca(new)
    issue_cert(new, "lamp")
    old_ca = (s.certs / "ca.pem").read_text()
    new_ca = (new / "ca.pem").read_text()
    (s.certs / "ca.pem").write_text(old_ca + new_ca)
    s.start()
    s.issue_cert("sensor-1")
    deploy(s, ["sensor-1", "lamp"])
    r = curl("--cacert", s.certs / "ca.pem", "--cert", new / "lamp.pem", "--key", new / "lamp.key",
             "https://127.0.0.1:%d%s" % (s.front_ports["discovery"], PATH % "lamp"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["GGGroups"][0]["CAs"] == [old_ca, new_ca]
    assert curl_discover(s, "sensor-1", "sensor-1").stdout.endswith("200")
