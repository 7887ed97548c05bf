"""The mTLS listener: certificates from `sedgectl ca init` / `cert issue`,
identity from the certificate's CN, and refusal of anyone else."""

import socket
import ssl

import pytest

import mqtt_raw as raw
from conftest import TIMEOUT, client_ssl_context, issue_cert, make_ca, mosquitto_pub, tls_args


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_clients_exchange_messages_over_mtls(tls_sedge, version):
    sub = tls_sedge.mosquitto_sub(*tls_args(tls_sedge, "alice"), "-V", version, "-i", "alice",
                                  "-t", "tls/#", "-q", "1", "-v", "-C", "2", "-W", "30")
    sub.wait_subscribed()
    for q in (0, 1):
        r = mosquitto_pub(*tls_args(tls_sedge, "bob"), "-V", version, "-i", "bob",
                          "-t", "tls/%d" % q, "-m", "secure %d" % q, "-q", q)
        assert r.returncode == 0, r.stderr
    rc, lines = sub.finish()
    assert rc == 0, lines
    assert sorted(l for l in lines if l.startswith("tls/")) == ["tls/0 secure 0",
                                                                "tls/1 secure 1"]


@pytest.mark.parametrize("version", [4, 5])
def test_paho_clients_over_mtls_exchange_messages_with_tcp_clients(tls_sedge, version):
    secure = tls_sedge.client("carol", version=version, cert="carol")
    secure.subscribe("mixed/#", 2)
    plain = tls_sedge.client("plain", version=version)
    plain.subscribe("mixed/#", 2)
    plain.publish("mixed/from-tcp", b"a", qos=2)
    secure.publish("mixed/from-tls", b"b", qos=1)
    for c in (secure, plain):
        got = sorted((m.topic, m.payload) for m in c.get_many(2))
        assert got == [("mixed/from-tcp", b"a"), ("mixed/from-tls", b"b")]


def test_two_connections_with_one_certificate_and_no_client_id_both_stay(tls_sedge):
    """mosquitto_sub and mosquitto_pub with the same certificate (the README
    tour) send empty client ids: each gets its own, neither takes the other
    over."""
    sub = tls_sedge.mosquitto_sub(*tls_args(tls_sedge, "frank"), "-t", "same/#", "-q", "1",
                                  "-v", "-C", "1", "-W", "30")
    sub.wait_subscribed()
    r = mosquitto_pub(*tls_args(tls_sedge, "frank"), "-t", "same/cert", "-m", "both", "-q", 1)
    assert r.returncode == 0, r.stderr
    rc, lines = sub.finish()
    assert rc == 0, lines
    assert "same/cert both" in lines, lines


def test_tls_client_is_identified_by_its_certificate_common_name(tls_sedge):
    mark = tls_sedge.log_mark()
    c = tls_sedge.raw(cert="dave")
    assert c.connect("some-device-id").reason == 0
    line = tls_sedge.wait_log(r"connected from", since=mark)
    assert "'dave'" in line, line


def test_client_id_held_by_another_identity_is_another_session(tls_sedge):
    # Client ids are namespaced by identity (test_identity.py): the other
    # identity gets a session of its own, and the first is not taken over.
    owner = tls_sedge.raw(cert="erin")
    assert owner.connect("sensor-7", clean=False, props={"session_expiry": 300}).reason == 0
    other = tls_sedge.raw(cert="mallory")
    ack = other.connect("sensor-7", clean=False, props={"session_expiry": 300})
    assert ack.reason == 0 and not ack.session_present, ack
    owner.ping()  # not taken over


def attempt_tls(sedge, ctx):
    """Open a TLS connection with `ctx` and try MQTT over it; return the
    local port. Asserts that no CONNACK ever comes back."""
    sock = socket.create_connection(("127.0.0.1", sedge.tls_port), timeout=TIMEOUT)
    port = sock.getsockname()[1]
    try:
        tls = ctx.wrap_socket(sock, server_hostname="localhost")
        tls.sendall(raw.connect("intruder", version=4))
        data = tls.recv(1024)
        assert data == b"", "the server answered an untrusted client: %r" % data
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        sock.close()
    return port


def test_certificate_from_another_ca_is_refused_at_the_handshake(tls_sedge, tmp_path):
    other = make_ca(tmp_path / "other-ca")
    pem, key = issue_cert(other, "alice")  # same name, wrong issuer
    bystander = tls_sedge.client("bystander", cert="bystander")
    bystander.subscribe("by/#", 1)
    mark = tls_sedge.log_mark()
    refused = tls_sedge.status()["connections_refused"]
    port = attempt_tls(tls_sedge, client_ssl_context(tls_sedge.certs / "ca.pem", pem, key))
    line = tls_sedge.wait_log(lambda l: "127.0.0.1:%d" % port in l, since=mark)
    assert "certificate" in line.lower(), line
    tls_sedge.wait_status(lambda s: s["connections_refused"] == refused + 1,
                          what="connections_refused + 1")
    r = mosquitto_pub("-h", "localhost", "-p", tls_sedge.tls_port, "--cafile",
                      tls_sedge.certs / "ca.pem", "--cert", pem, "--key", key,
                      "-t", "by/x", "-m", "intruder")
    assert r.returncode != 0
    bystander.client.publish("by/y", b"fine", 1)
    m = bystander.get()
    assert (m.topic, m.payload) == ("by/y", b"fine")


def test_client_without_a_certificate_is_refused(tls_sedge):
    mark = tls_sedge.log_mark()
    port = attempt_tls(tls_sedge, client_ssl_context(tls_sedge.certs / "ca.pem"))
    line = tls_sedge.wait_log(lambda l: "127.0.0.1:%d" % port in l, since=mark)
    assert "certificate" in line.lower(), line
    r = mosquitto_pub("-h", "localhost", "-p", tls_sedge.tls_port, "--cafile",
                      tls_sedge.certs / "ca.pem", "-t", "x", "-m", "no cert")
    assert r.returncode != 0
    tls_sedge.raw(cert="after").connect("after")  # the listener still works


def test_plain_mqtt_on_the_tls_port_is_refused(tls_sedge):
    c = raw.RawClient(tls_sedge.tls_port, timeout=TIMEOUT)
    tls_sedge.clients.append(c)
    c.send(raw.connect("plaintext", version=4))
    got = c.wait_closed()
    assert all(p.type != raw.CONNACK for p in got), got
