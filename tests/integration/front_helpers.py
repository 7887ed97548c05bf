"""Helpers for the HTTP front's tests: a sedged with discovery, /metrics,
the console and MQTT over WebSockets on free loopback ports, and clients
for them that nobody here wrote (curl, Python's ssl and http.client,
awscrt, paho's websockets transport)."""

import http.client
import json
import queue
import re
import socket
import ssl
import subprocess
import threading
import time

import paho.mqtt.client as paho

from conftest import TIMEOUT, free_port, make_ca, wait_for

# The name the AWS device SDKs' discovery clients connect to and send as
# Host (greengrass-ats.iot.REGION.amazonaws.com); the core's certificate
# covers it so that they verify the core as they would the cloud.
GG_HOST = "greengrass-ats.iot.eu-west-1.amazonaws.com"


def make_front(make_sedge, discovery=True, ws=True, http=True, console=True, extra=None,
               limits=None, start=True, http_extra=None, name=None):
    """A sedged with tcp + tls listeners and the HTTP front's sites."""
    ports = {"http": free_port(), "discovery": free_port(), "ws": free_port(),
             "wss": free_port()}
    s = make_sedge(tls=False, start=False, limits=limits, name=name)
    s.certs.mkdir(parents=True, exist_ok=True)
    make_ca(s.certs, sans=["127.0.0.1", GG_HOST])
    s.tls_port = free_port()
    s.front_ports = ports
    cfg = dict(extra or {})
    if http:
        cfg["http"] = {"bind": "127.0.0.1:%d" % ports["http"], "console": console}
        cfg["http"].update(http_extra or {})
    if discovery:
        cfg["discovery"] = dict(cfg.get("discovery", {}),
                                bind="127.0.0.1:%d" % ports["discovery"])
    s.extra = cfg
    base_config = s.config

    def config():
        c = base_config()  # tcp, and tls since tls_port is set
        if ws:
            c["listeners"].append({"type": "ws", "bind": "127.0.0.1:%d" % ports["ws"]})
            c["listeners"].append({"type": "wss", "bind": "127.0.0.1:%d" % ports["wss"],
                                   "ca_file": "certs/ca.pem", "cert_file": "certs/core.pem",
                                   "key_file": "certs/core.key"})
        return c
    s.config = config
    # Sedge.start writes the config again, with fresh tcp/tls ports, when a
    # port was taken meanwhile (a shared machine): fresh ports for the
    # front's sites too then. A rewrite while sedged runs (a test changing
    # the config for SIGHUP) keeps them.
    first_write = s.write_config
    writes = []

    def write_config():
        if writes and not s.running():
            for k in ports:
                ports[k] = free_port()
            if http:
                cfg["http"]["bind"] = "127.0.0.1:%d" % ports["http"]
            if discovery:
                cfg["discovery"]["bind"] = "127.0.0.1:%d" % ports["discovery"]
        writes.append(1)
        first_write()
    s.write_config = write_config
    s.write_config()
    if start:
        s.start()
    return s


def deploy(s, things, routes=None, extra=None):
    doc = {"group": "front", "things": [{"name": t} for t in things],
           "routes": routes if routes is not None else
           [{"source": "thing:*", "filter": "#", "target": "thing:*"}]}
    doc.update(extra or {})
    path = s.root / "group.json"
    path.write_text(json.dumps(doc))
    r = s.ctl("deploy", str(path))
    assert r.returncode == 0, r.stderr + r.stdout
    return doc


def mtls_context(s, cert_name, server_hostname_check=True):
    ctx = s.ssl_context(cert_name)
    ctx.check_hostname = server_hostname_check
    return ctx


def https_get(s, port, path, cert=None, method="GET", headers=None, alpn=None, body=None):
    """One request with http.client over TLS, to 127.0.0.1 (which the core's
    certificate covers); returns (status, headers, body, selected ALPN)."""
    ctx = s.ssl_context(cert) if cert else s.ssl_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        selected = conn.sock.selected_alpn_protocol()
        r = conn.getresponse()
        data = r.read()
        return r.status, dict(r.getheaders()), data, selected
    finally:
        conn.close()


def http_get(s, path, method="GET", headers=None, body=None, port=None):
    conn = http.client.HTTPConnection("127.0.0.1", port or s.front_ports["http"],
                                      timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=TIMEOUT * 2)
    return r


class WsClient:
    """paho's websockets transport, its loop in a thread; messages in a queue."""

    def __init__(self, s, client_id, version=5, tls_cert=None, path="/mqtt", port=None,
                 userdata=None):
        self.version = version
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        v5 = version == 5
        self.c = paho.Client(client_id=client_id, transport="websockets",
                             protocol=paho.MQTTv5 if v5 else paho.MQTTv311)
        self.c.ws_set_options(path=path)
        if tls_cert:
            self.c.tls_set_context(s.ssl_context(tls_cert))
        self.port = port or (s.front_ports["wss"] if tls_cert else s.front_ports["ws"])
        self.host = "localhost" if tls_cert else "127.0.0.1"
        self.c.on_message = lambda _c, _u, m: self.messages.put(m)
        if v5:
            self.c.on_connect = lambda _c, _u, f, rc, p: self.connacks.put(rc.value)
            self.c.on_disconnect = lambda _c, _u, rc, p=None: self.disconnects.put(rc)
        else:
            self.c.on_connect = lambda _c, _u, f, rc: self.connacks.put(rc)
            self.c.on_disconnect = lambda _c, _u, rc: self.disconnects.put(rc)
        self.subacked = threading.Event()
        self.c.on_subscribe = lambda *a: self.subacked.set()

    def connect(self, expect_rc=0):
        self.c.connect(self.host, self.port, 60)
        self.c.loop_start()
        rc = self.connacks.get(timeout=TIMEOUT)
        if expect_rc is not None:
            assert rc == expect_rc, "CONNACK %r" % rc
        return rc

    def subscribe(self, topic, qos=1):
        self.subacked.clear()
        self.c.subscribe(topic, qos)
        assert self.subacked.wait(TIMEOUT), "no SUBACK"

    def publish(self, topic, payload, qos=1):
        info = self.c.publish(topic, payload, qos)
        if qos:
            info.wait_for_publish(TIMEOUT)
        return info

    def expect(self, topic=None, timeout=TIMEOUT):
        m = self.messages.get(timeout=timeout)
        if topic is not None:
            assert m.topic == topic, m.topic
        return m

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def metrics_text(s):
    status, headers, body = http_get(s, "/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return body.decode()


def metric_value(text, name, labels=None):
    from prometheus_client.parser import text_string_to_metric_families
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == name and (labels is None or all(
                    sample.labels.get(k) == v for k, v in labels.items())):
                return sample.value
    return None


def console_login(s):
    """`sedgectl console`, then the URL in a cookie-keeping opener: the
    session cookie and the CSRF token."""
    r = s.ctl("console")
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip()
    m = re.match(r"http://127\.0\.0\.1:(\d+)(/login\?token=[0-9a-f]{64})$", url)
    assert m, url
    status, headers, _ = http_get(s, m.group(2))
    assert status == 303, status
    cookie = headers["Set-Cookie"].split(";")[0]
    status, _, body = http_get(s, "/api/session", headers={"Cookie": cookie})
    assert status == 200, body
    return url, cookie, json.loads(body)["csrf"]


def raw_socket(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return sock


def wait_metric(s, name, predicate, labels=None, what=None):
    return wait_for(lambda: predicate(metric_value(metrics_text(s), name, labels) or 0),
                    what=what or name)
