"""The HTTP sink against Python's http.server: payloads POSTed unchanged,
batches that keep each payload intact, a server that goes down and comes
back (every message once, in order), a slow server that holds publishers
back, a server that refuses, huge payloads."""
import base64
import email
import json
import time
import urllib.request

import pytest

import mqtt_raw
from conftest import TIMEOUT, free_port, wait_for
from connectors_helpers import connector_group, connector_pid, http_server, status_of
from groups_helpers import deploy_ok

ROUTES = [("thing:t2", "data/#", "connector:hook")]


@pytest.fixture
def server():
    port = free_port()
    s = http_server(port)
    s.port = port
    yield s
    s.stop()


def control(server, **q):
    url = "http://127.0.0.1:%d/control?%s" % (server.port,
                                              "&".join("%s=%s" % kv for kv in q.items()))
    urllib.request.urlopen(url, timeout=TIMEOUT).read()


def received(server):
    with urllib.request.urlopen("http://127.0.0.1:%d/received" % server.port,
                                timeout=TIMEOUT) as r:
        out = json.loads(r.read())
    for p in out:
        p["body"] = base64.b64decode(p.pop("body_b64"))
    return out


def sink(make_sedge, server, routes=ROUTES, max_queue=None, **params):
    p = {"url": "http://127.0.0.1:%d/ingest" % server.port}
    p.update(params)
    entry = {"name": "hook", "type": "http-sink", "parameters": p}
    if max_queue:
        entry["max_queue"] = max_queue
    sedge = make_sedge()
    deploy_ok(sedge, connector_group([entry], routes))
    return sedge, sedge.client("t2")


def parts(post):
    """The payloads of a multipart/mixed body, byte for byte, with topics."""
    raw = b"Content-Type: " + post["headers"]["Content-Type"].encode() + b"\r\n\r\n" + post["body"]
    msg = email.message_from_bytes(raw)
    return [(p["X-Sedge-Topic"], p.get_payload(decode=False).encode("latin-1")
             if isinstance(p.get_payload(), str) else p.get_payload())
            for p in msg.get_payload()]


def test_each_payload_is_posted_unchanged(make_sedge, server):
    sedge, sender = sink(make_sedge, server, content_type="application/json")
    payloads = [b'{"t": 21.5}', b"\x00\x01binary\xff", b"", "héllo".encode()]
    for i, p in enumerate(payloads):
        sender.publish("data/s%d" % i, p, qos=1)
    posts = wait_for(lambda: (lambda r: r if len(r) == 4 else None)(received(server)),
                     what="4 POSTs")
    assert [p["body"] for p in posts] == payloads
    assert [p["headers"]["X-Sedge-Topic"] for p in posts] == ["data/s%d" % i for i in range(4)]
    assert all(p["path"] == "/ingest" for p in posts)
    assert posts[0]["headers"]["Content-Type"] == "application/json"


def test_batches_keep_each_payload_intact(make_sedge, server):
    sedge, sender = sink(make_sedge, server, batch_max=10, batch_ms=300)
    payloads = [b"a\r\n--b\r\n", b"\x00" * 3, b'{"x": 1}', b"\r\n\r\n", b"last"]
    for p in payloads:
        sender.publish("data/x", p, qos=1)
    posts = wait_for(lambda: received(server) or None, what="a POST")
    got = [payload for post in posts for _, payload in parts(post)]
    assert got == payloads
    assert posts[0]["headers"]["X-Sedge-Count"] == "5"


def test_json_array_batches_splice_json_payloads(make_sedge, server):
    sedge, sender = sink(make_sedge, server, batch_max=3, batch_ms=5000,
                         batch_format="json-array")
    docs = [b'{"a": 1}', b"[1, 2]", b'"s"']
    for d in docs:
        sender.publish("data/x", d, qos=1)
    post = wait_for(lambda: received(server) or None, what="a POST")[0]
    assert post["body"] == b"[" + b",".join(docs) + b"]"
    assert json.loads(post["body"]) == [{"a": 1}, [1, 2], "s"]


def test_a_server_down_and_back_gets_every_message_once_in_order(make_sedge, server):
    sedge, sender = sink(make_sedge, server, retry_initial_ms=50, retry_max_ms=200,
                         batch_max=4)
    control(server, status=503)
    for i in range(20):
        sender.publish("data/x", b"m%d" % i, qos=1)
    wait_for(lambda: status_of(sedge, "hook") and sedge.log_since(0).count("503") >= 0 and
             "again in" in open(sedge.data_dir / "logs" / "connector:hook.log").read(),
             what="a retry")
    control(server, status=200)
    want = [b"m%d" % i for i in range(20)]
    def all_in():
        got = []
        for post in received(server):
            got += [post["body"]] if post["headers"].get("X-Sedge-Count") == "1" else \
                [p for _, p in parts(post)]
        return got if len(got) >= 20 else None
    assert wait_for(all_in, what="20 messages") == want


def test_a_refusing_server_drops_and_counts(make_sedge, server):
    sedge, sender = sink(make_sedge, server)
    control(server, status=400)
    sender.publish("data/x", b"bad", qos=1)
    wait_for(lambda: "refused 1 message with HTTP 400" in
             open(sedge.data_dir / "logs" / "connector:hook.log").read(), what="the refusal")
    control(server, status=200)
    sender.publish("data/x", b"good", qos=1)
    posts = wait_for(lambda: received(server) or None, what="a POST")
    assert [p["body"] for p in posts] == [b"good"]


def test_a_slow_server_queues_and_a_full_queue_refuses_publishers_with_0x97(make_sedge,
                                                                          server):
    p = {"url": "http://127.0.0.1:%d/ingest" % server.port, "max_queue": 2,
         "timeout_ms": 20000}
    sedge = make_sedge()
    deploy_ok(sedge, connector_group([{"name": "hook", "type": "http-sink", "parameters": p,
                                       "max_queue": 2}], ROUTES))
    control(server, delay=2)
    raw = sedge.raw(version=5)
    raw.connect("t2")
    reasons = [raw.publish("data/x", b"m%d" % i, qos=1).reason for i in range(10)]
    # The sink holds 2, the invocation it serves waits for room, the core
    # queues what its max_queue allows: the rest are refused, and the
    # publisher hears it.
    assert 0x97 in reasons and reasons[:3] == [0, 0, 0], reasons
    assert status_of(sedge, "hook")["refused"] >= 1
    control(server, delay=0)
    accepted = [i for i, r in enumerate(reasons) if r == 0]
    got = wait_for(lambda: (lambda r: r if len(r) >= len(accepted) else None)(received(server)),
                   timeout=TIMEOUT * 3, what="the accepted messages")
    assert [p["body"] for p in got] == [b"m%d" % i for i in accepted]


def test_a_huge_payload_arrives_whole(make_sedge, server):
    sedge, sender = sink(make_sedge, server)
    big = bytes(range(256)) * 4096  # 1 MiB
    sender.publish("data/big", big, qos=1)
    post = wait_for(lambda: received(server) or None, timeout=TIMEOUT * 2, what="a POST")[0]
    assert post["body"] == big
    assert connector_pid(sedge, "hook")
