"""A TLS listener remembers the client certificates it verified (by SHA-256
fingerprint, src/broker/tls_verify.c) so that a thing reconnecting is not
verified from scratch. What it remembers must never let through what a full
verification would refuse: a certificate revoked since (by the CRL or by the
group), another certificate claiming the same name, one that expired since.
Each test first connects with the good certificate twice, so that the second
handshake was answered from the cache.
"""

import datetime
import signal
import ssl
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import mqtt_raw as raw
from conftest import client_ssl_context
from groups_helpers import deploy_ok, group_doc
from test_revocation import fingerprint, resumed_connect, serial, start_with_crl, write_crl

GROUP = group_doc("certs", ["lamp", "bob"], [("thing:bob", "c/#", "thing:lamp")])


def connects(sedge, ctx, name):
    """A full handshake (a fresh context: no session to resume) and CONNECT
    with `ctx`; True if CONNACK accepted it."""
    try:
        c = raw.RawClient(sedge.tls_port, version=5, ssl_context=ctx)
        sedge.clients.append(c)
        return c.connect(name).reason == 0
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, raw.ConnectionClosed, OSError):
        return False


def fresh_context(sedge, name):
    if not (sedge.certs / (name + ".pem")).exists():
        sedge.issue_cert(name)
    return client_ssl_context(sedge.certs / "ca.pem", sedge.certs / (name + ".pem"),
                              sedge.certs / (name + ".key"))


def make_cert(sedge, name, not_after, signing_key=None, issuer=None, serial_number=None,
              chain=()):
    """A certificate CN=name in certs/NAME.pem (followed by the PEMs of
    `chain`) and .key, signed by the group CA unless `signing_key` (and
    `issuer`, the issuer name it claims) are given. Returns (cert, key)."""
    ca_key = serialization.load_pem_private_key((sedge.certs / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((sedge.certs / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(issuer or ca.subject)
         .public_key(key.public_key())
         .serial_number(serial_number or x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=1))
         .not_valid_after(not_after))
    b = b.add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    cert = b.sign(signing_key or ca_key, hashes.SHA256())
    pem = sedge.certs / (name + ".pem")
    pem.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert,) + chain))
    (sedge.certs / (name + ".key")).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert, key


def test_a_certificate_revoked_by_the_crl_after_it_was_verified_is_refused(make_sedge):
    s, crl, lamp_pem = start_with_crl(make_sedge, "lamp")
    assert connects(s, fresh_context(s, "lamp"), "lamp")
    assert connects(s, fresh_context(s, "lamp"), "lamp")
    write_crl(s, [serial(lamp_pem)], crl)
    mark = s.log_mark()
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("CRLs reloaded", since=mark)
    assert not connects(s, fresh_context(s, "lamp"), "lamp")
    assert connects(s, fresh_context(s, "bob"), "bob")


def test_a_certificate_revoked_by_the_group_after_it_was_verified_is_refused(tls_sedge):
    s = tls_sedge
    deploy_ok(s, GROUP)
    lamp_pem, _ = s.issue_cert("lamp")
    assert connects(s, fresh_context(s, "lamp"), "lamp")
    assert connects(s, fresh_context(s, "lamp"), "lamp")
    deploy_ok(s, dict(GROUP, revoked_certificates=["sha256:" + fingerprint(lamp_pem)]))
    assert not connects(s, fresh_context(s, "lamp"), "lamp")
    assert connects(s, fresh_context(s, "bob"), "bob")


def test_a_forged_certificate_with_the_same_name_issuer_and_serial_is_refused(tls_sedge):
    # Everything a lookup by name could key on is the real certificate's;
    # only the signature (and so the fingerprint) differs.
    s = tls_sedge
    real_pem, _ = s.issue_cert("lamp")
    assert connects(s, fresh_context(s, "lamp"), "lamp")
    assert connects(s, fresh_context(s, "lamp"), "lamp")
    real = x509.load_pem_x509_certificate(real_pem.read_bytes())
    forger = ec.generate_private_key(ec.SECP256R1())
    make_cert(s, "lamp", real.not_valid_after, signing_key=forger, issuer=real.issuer,
              serial_number=real.serial_number)
    mark = s.log_mark()
    assert not connects(s, fresh_context(s, "lamp"), "lamp")
    line = s.wait_log("TLS handshake", since=mark)
    assert "certificate" in line, line


def test_a_certificate_that_expired_after_it_was_verified_is_refused(tls_sedge):
    s = tls_sedge
    not_after = datetime.datetime.utcnow().replace(microsecond=0) + datetime.timedelta(seconds=4)
    make_cert(s, "brief", not_after)
    assert connects(s, fresh_context(s, "brief"), "brief")
    assert connects(s, fresh_context(s, "brief"), "brief")
    while datetime.datetime.utcnow() <= not_after + datetime.timedelta(seconds=1):
        time.sleep(0.2)
    mark = s.log_mark()
    assert not connects(s, fresh_context(s, "brief"), "brief")
    line = s.wait_log("TLS handshake", since=mark)
    assert "expired" in line, line


def test_a_client_sending_the_ca_after_its_certificate_connects_and_resumes(tls_sedge):
    # The listener drops the copy of its own CA that such a client sends
    # (src/broker/tls_verify.c); the client's certificate and its session
    # must stay whole, the verification cached or not.
    s = tls_sedge
    year = datetime.datetime.utcnow() + datetime.timedelta(days=365)
    ca = x509.load_pem_x509_certificate((s.certs / "ca.pem").read_bytes())
    make_cert(s, "chained", year, chain=(ca,))
    for _ in range(3):
        assert connects(s, fresh_context(s, "chained"), "chained")
    reason, session, _ = resumed_connect(s, "chained")
    assert reason == 0 and session is not None
    reason, _, reused = resumed_connect(s, "chained", session)
    assert reason == 0 and reused
