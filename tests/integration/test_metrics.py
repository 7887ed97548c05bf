"""GET /metrics: the Prometheus text format 0.0.4 of what `sedgectl
status`, `spool` and `functions` show, checked with promtool (Debian's
prometheus) and parsed with python3-prometheus-client."""

import os
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BUILD, wait_for
from functions_fixtures import public_tmp  # noqa: F401 (a fixture)
from front_helpers import deploy, http_get, make_front, metric_value, metrics_text, WsClient

ECHO = str(BUILD / "examples" / "echo")


def promtool(text):
    tool = shutil.which("promtool")
    assert tool, "promtool (Debian package prometheus) is missing: make deps"
    r = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture
def front(make_sedge, public_tmp):  # noqa: F811
    # In a directory function users can traverse: the echo function runs
    # as nobody and connects to the core's function socket.
    s = make_front(make_sedge, discovery=False, name=os.path.join(public_tmp, "sedge"))
    deploy(s, ["m1", "m2", "m3"], extra={"functions": [
        {"name": "echo", "exec": [ECHO], "code": str(BUILD / "examples"), "isolation": "none"}]},
        routes=[{"source": "thing:*", "filter": "#", "target": "thing:*"},
                {"source": "thing:m1", "filter": "fn/echo", "target": "function:echo"}])
    return s


def test_promtool_and_the_parser_accept_it(front):
    c = front.client("m1", version=5)
    c.subscribe("m/#", qos=1)
    text = metrics_text(front)
    rc, out = promtool(text)
    assert rc == 0, out
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in [("sedge_connections", "gauge"), ("sedge_messages_received", "counter"),
                       ("sedge_messages_dropped", "counter"),
                       ("sedge_store_commit_duration_seconds", "histogram"),
                       ("sedge_function_duration_seconds", "histogram"),
                       ("sedge_route_messages", "counter"),
                       ("process_resident_memory_bytes", "gauge"),
                       ("process_cpu_seconds", "counter")]:
        assert name in families, name
        assert families[name].type == kind, (name, families[name].type)
        assert families[name].documentation
    assert metric_value(text, "sedge_connections") == 1
    assert metric_value(text, "process_resident_memory_bytes") > 1e6


def test_values_follow_the_traffic(front):
    sub = front.client("m1", version=5)
    sub.subscribe("t/#", qos=1)
    pub = front.client("m2", version=5)
    before = metrics_text(front)
    for i in range(20):
        pub.publish("t/a", b"x" * 100, qos=1)
    wait_for(lambda: metric_value(metrics_text(front), "sedge_messages_sent_total") >=
             metric_value(before, "sedge_messages_sent_total") + 20, what="messages out")
    text = metrics_text(front)
    assert metric_value(text, "sedge_messages_received_total") >= \
        metric_value(before, "sedge_messages_received_total") + 20
    assert metric_value(text, "sedge_route_messages_total",
                        {"route": "thing:* -> # -> thing:*"}) >= 20
    # Durable sessions commit: the store's histogram counts the commits.
    assert metric_value(text, "sedge_store_commit_duration_seconds_count") >= 1
    # A function invocation lands in its counters and histogram.
    r = front.ctl("invoke", "echo", '"hi"')
    assert r.returncode == 0, r.stderr
    text = metrics_text(front)
    assert metric_value(text, "sedge_function_invocations_total", {"function": "echo"}) == 1
    assert metric_value(text, "sedge_function_duration_seconds_count", {"function": "echo"}) == 1
    assert metric_value(text, "sedge_function_duration_seconds_bucket",
                        {"function": "echo", "le": "+Inf"}) == 1
    # WebSocket clients count as connections too.
    ws = WsClient(front, "m3", version=4)
    ws.connect()
    try:
        wait_for(lambda: metric_value(metrics_text(front), "sedge_websocket_connections") == 1,
                 what="the WebSocket counted")
    finally:
        ws.close()


def test_only_get_and_loopback(front, make_sedge):
    status, headers, _ = http_get(front, "/metrics", method="POST", body=b"x")
    assert status == 405
    status, _, _ = http_get(front, "/metricsx")
    assert status in (404, 401)
    # A plain HTTP bind off loopback is refused at start.
    bad = make_sedge(start=False, extra={"http": {"bind": "0.0.0.0:18999"}})
    with pytest.raises(RuntimeError) as e:
        bad.start(timeout=10)
    assert "may only bind a loopback address" in str(e.value)
    bad.expected_exit = True
