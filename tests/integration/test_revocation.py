"""Revoked certificates: by the group document ("revoked_certificates",
SHA-256 fingerprints or serial numbers) and by a TLS listener's CRL file
(reloaded on SIGHUP). Either is enforced at the handshake and cuts clients
already connected (issue 10 item 13: revocation was by thing name only).
"""

import datetime
import hashlib
import signal
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import mqtt_raw as raw
from conftest import TIMEOUT, issue_cert, wait_for
from groups_helpers import deploy, deploy_ok, group_doc


def fingerprint(pem_path):
    der = ssl.PEM_cert_to_DER_cert(pem_path.read_text())
    return hashlib.sha256(der).hexdigest()


def serial(pem_path):
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).serial_number


def refused_at_handshake(sedge, cert):
    """The TLS connection with `cert` is closed without a CONNACK."""
    try:
        c = sedge.raw(cert=cert)
        c.send(raw.connect(cert))
        got = c.wait_closed()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, raw.ConnectionClosed):
        return True
    return not [p for p in got if p.type == raw.CONNACK]


GROUP = group_doc("certs", ["lamp", "bob"], [("thing:bob", "c/#", "thing:lamp")])


@pytest.mark.parametrize("by", ["sha256", "serial"])
def test_a_certificate_revoked_by_the_group_is_cut_and_refused(tls_sedge, by):
    s = tls_sedge
    deploy_ok(s, GROUP)
    pem, _ = s.issue_cert("lamp")
    lamp = s.raw(cert="lamp")
    assert lamp.connect("lamp").reason == 0
    entry = ("sha256:" + fingerprint(pem)) if by == "sha256" else "serial:%x" % serial(pem)
    deploy_ok(s, dict(GROUP, revoked_certificates=[entry]))
    assert [p.reason for p in lamp.wait_closed() if p.type == raw.DISCONNECT] == [0x87]
    assert refused_at_handshake(s, "lamp")
    s.wait_log("certificate revoked; closing")
    # The thing itself is not revoked: a new certificate for it connects.
    issue_cert(s.certs, "lamp")
    again = s.raw(cert="lamp")
    assert again.connect("lamp").reason == 0
    bob = s.raw(cert="bob")
    assert bob.connect("bob").reason == 0


def test_a_serial_number_is_a_number_whatever_its_digit_count(tls_sedge):
    # "serial:abc" is 0x0abc: an odd count of hex digits (as Python's %x
    # prints a serial starting with a zero nibble) is not malformed.
    deploy_ok(tls_sedge, dict(GROUP, revoked_certificates=["serial:abc", "serial:0abc",
                                                           "serial:00:0a:bc"]))


def test_malformed_revoked_certificates_are_refused_at_deploy(tls_sedge):
    r = deploy(tls_sedge, dict(GROUP, revoked_certificates=["sha256:abc", "md5:00", 7,
                                                             "serial:zz"]))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    for i in range(4):
        assert "revoked_certificates[%d]" % i in out, out


def write_crl(sedge, revoked_serials, path):
    ca_key = serialization.load_pem_private_key((sedge.certs / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((sedge.certs / "ca.pem").read_bytes())
    now = datetime.datetime.utcnow()
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(now - datetime.timedelta(minutes=1))
         .next_update(now + datetime.timedelta(days=1)))
    for n in revoked_serials:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(n).revocation_date(now).build())
    crl = b.sign(ca_key, hashes.SHA256())
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def test_a_listeners_crl_is_enforced_and_reloaded_on_sighup(make_sedge):
    s = make_sedge(tls=True, start=False)
    lamp_pem, _ = s.issue_cert("lamp")
    old_pem, _ = s.issue_cert("old")
    crl = s.certs / "crl.pem"
    write_crl(s, [serial(old_pem)], crl)
    cfg = s.config()
    cfg["listeners"][1]["crl_file"] = "certs/crl.pem"
    s.config = lambda: cfg
    s.write_config()
    s.start()
    assert refused_at_handshake(s, "old")
    lamp = s.raw(cert="lamp")
    assert lamp.connect("lamp").reason == 0
    bob = s.raw(cert="bob")
    assert bob.connect("bob").reason == 0
    # Revoke lamp in a new CRL; SIGHUP reloads it and cuts lamp.
    write_crl(s, [serial(old_pem), serial(lamp_pem)], crl)
    mark = s.log_mark()
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("CRLs reloaded", since=mark)
    assert [p.reason for p in lamp.wait_closed() if p.type == raw.DISCONNECT] == [0x87]
    assert refused_at_handshake(s, "lamp")
    assert bob.ping().type == raw.PINGRESP
    # A broken CRL file keeps the previous CRLs.
    crl.write_text("not a CRL")
    mark = s.log_mark()
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("keeps its previous CRLs", since=mark)
    assert refused_at_handshake(s, "lamp")
    assert bob.ping().type == raw.PINGRESP


def start_with_crl(make_sedge, name):
    """A sedged whose tls listener has a CRL file (revoking nothing yet),
    and a certificate for `name`: (sedge, the CRL's path, its PEM)."""
    s = make_sedge(tls=True, start=False)
    pem, _ = s.issue_cert(name)
    crl = s.certs / "crl.pem"
    write_crl(s, [], crl)
    cfg = s.config()
    cfg["listeners"][1]["crl_file"] = "certs/crl.pem"
    s.config = lambda: cfg
    s.write_config()
    s.start()
    return s, crl, pem


_contexts = {}


def resumed_connect(sedge, cert, session=None, tls_max=None):
    """An MQTT CONNECT over TLS, resuming `session` when given (one client
    context per certificate, as a client caching its session keeps; at most
    TLS version `tls_max` when given); returns (CONNACK reason or None when
    refused, the TLS session, resumed?)."""
    import socket as socketlib
    key = (str(sedge.root), cert, tls_max)
    if key not in _contexts:
        _contexts[key] = sedge.ssl_context(cert)
        if tls_max:
            _contexts[key].maximum_version = tls_max
    ctx = _contexts[key]
    sock = socketlib.create_connection(("127.0.0.1", sedge.tls_port), timeout=TIMEOUT)
    try:
        tls = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
        tls.sendall(raw.connect(cert, version=4))
        data = tls.recv(4)
        reason = data[3] if len(data) == 4 else None
        return reason, tls.session, tls.session_reused
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
        return None, None, False
    finally:
        sock.close()


def test_a_client_resuming_its_tls_session_is_accepted(tls_sedge):
    # Was: refused with an internal_error alert ('session id context
    # uninitialized') whenever a client offered its cached session.
    reason, session, _ = resumed_connect(tls_sedge, "lamp")
    assert reason == 0 and session is not None
    reason, _, reused = resumed_connect(tls_sedge, "lamp", session)
    assert reason == 0 and reused, "the session was not resumed"


def test_a_tls12_client_resumes_its_session_by_id(tls_sedge):
    # Sessions are kept by sedged (stateful tickets in TLS 1.3): a TLS 1.2
    # client resumes by session id from the same cache.
    reason, session, _ = resumed_connect(tls_sedge, "lamp", tls_max=ssl.TLSVersion.TLSv1_2)
    assert reason == 0 and session is not None
    reason, _, reused = resumed_connect(tls_sedge, "lamp", session, tls_max=ssl.TLSVersion.TLSv1_2)
    assert reason == 0 and reused, "the TLS 1.2 session was not resumed"


def test_tls_sessions_are_resumed_and_revocation_still_holds(make_sedge):
    # A client that caches its TLS session reconnects with a short
    # handshake (was: refused, 'session id context uninitialized'); a
    # certificate revoked meanwhile, by the group or by the CRL, is refused
    # on a resumed session too.
    s, crl, lamp_pem = start_with_crl(make_sedge, "lamp")
    deploy_ok(s, GROUP)
    reason, session, _ = resumed_connect(s, "lamp")
    assert reason == 0 and session is not None
    reason, session2, reused = resumed_connect(s, "lamp", session)
    assert reason == 0 and reused, "the session was not resumed"
    # Revoked by the CRL: a resumed session is refused too.
    write_crl(s, [serial(lamp_pem)], crl)
    mark = s.log_mark()
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("CRLs reloaded", since=mark)
    reason, _, _ = resumed_connect(s, "lamp", session2 or session)
    assert reason is None
    # Bob, revoked by the group, resuming his session: refused as well.
    bob_reason, bob_session, _ = resumed_connect(s, "bob")
    assert bob_reason == 0
    bob_pem = s.certs / "bob.pem"
    deploy_ok(s, dict(GROUP, revoked_certificates=["sha256:" + fingerprint(bob_pem)]))
    reason, _, _ = resumed_connect(s, "bob", bob_session)
    assert reason is None
