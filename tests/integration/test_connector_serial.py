"""The serial connector over a socat pty pair, with a python3-serial peer on
the other end: Greengrass's Serial Stream topics, ascii and hex (base64),
read on demand and polling read, bad requests, a port that disappears."""
import base64
import json
import time

import pytest
import serial

from conftest import TIMEOUT, wait_for
from connectors_helpers import PtyPair, connector_group, connector_pid
from groups_helpers import deploy_ok

THING = "edge-core"


@pytest.fixture
def line(make_sedge):
    pty = PtyPair("sedge-ser")
    yield pty
    pty.stop()


def start(make_sedge, pty, **params):
    sedge = make_sedge()
    p = {"serial_port": pty.a, "baud_rate": 115200, "timeout_ms": 300}
    p.update(params)
    port = pty.a[1:]
    deploy_ok(sedge, connector_group(
        [{"name": "port1", "type": "serial", "parameters": p,
          "resources": [{"type": "device", "path": pty.a, "access": "rw"}]}],
        [("thing:t2", "serial/+/read/#", "connector:port1"),
         ("thing:t2", "serial/+/write/#", "connector:port1"),
         ("connector:port1", "serial/#", "thing:t1")]))
    reader = sedge.client("t1")
    reader.subscribe("serial/#", qos=1)
    sender = sedge.client("t2")
    peer = serial.Serial(pty.b, 115200, timeout=TIMEOUT)
    return sedge, reader, sender, peer, port


def topic(kind, port):
    return "serial/%s/%s/%s" % (THING, kind, port)


def test_writes_ascii_and_hex_and_reports_status(make_sedge, line):
    sedge, reader, sender, peer, port = start(make_sedge, line)
    sender.publish(topic("write", port), json.dumps({"data": "hello", "type": "ascii",
                                                     "id": "w1"}), qos=1)
    assert peer.read(5) == b"hello"
    m = reader.get()
    assert m.topic == topic("status", port)
    assert json.loads(m.payload) == {"response": {"status": "success"}, "id": "w1"}
    raw = bytes(range(256))
    sender.publish(topic("write", port), json.dumps({"data": base64.b64encode(raw).decode(),
                                                     "type": "HEX", "id": "w2"}), qos=1)
    assert peer.read(256) == raw
    assert json.loads(reader.get().payload) == {"response": {"status": "success"}, "id": "w2"}


def test_reads_on_demand_ascii_and_hex(make_sedge, line):
    sedge, reader, sender, peer, port = start(make_sedge, line)
    peer.write(b"ABCDEF\x00\xff")
    peer.flush()
    sender.publish(topic("read", port), json.dumps({"readLength": "3", "type": "ascii",
                                                    "id": "r1"}), qos=1)
    got = reader.get_many(2)
    assert got[0].topic == topic("read_response", port)
    assert json.loads(got[0].payload) == {"data": "ABC", "id": "r1"}
    assert json.loads(got[1].payload) == {"response": {"status": "success"}, "id": "r1"}
    sender.publish(topic("read", port), json.dumps({"readLength": 5, "type": "hex", "id": "r2"}),
                   qos=1)
    got = reader.get_many(2)
    assert base64.b64decode(json.loads(got[0].payload)["data"]) == b"DEF\x00\xff"
    # Nothing more to read: what came (nothing) and why it is short.
    sender.publish(topic("read", port), json.dumps({"readLength": "4", "type": "ascii",
                                                    "id": "r3"}), qos=1)
    got = reader.get_many(2)
    assert json.loads(got[0].payload) == {"data": "", "id": "r3"}
    status = json.loads(got[1].payload)
    assert status["response"]["status"] == "fail" and "read 0 of 4" in \
        status["response"]["error_message"], status


def test_polling_read_publishes_what_arrives(make_sedge, line):
    sedge, reader, sender, peer, port = start(make_sedge, line, polling_read=True,
                                              polling_read_length=64, polling_interval_ms=50,
                                              polling_read_type="ascii")
    peer.write(b"temp=21.5\n")
    peer.flush()
    m = reader.get()
    assert m.topic == topic("read_response", port)
    assert json.loads(m.payload) == {"data": "temp=21.5\n"}


@pytest.mark.parametrize("body, message", [
    (b"nope", "Invalid request"),
    (json.dumps({"data": "!!!", "type": "hex", "id": "b"}), "base64"),
    (json.dumps({"data": "abc", "type": "ebcdic", "id": "b"}), "ascii or hex"),
    (json.dumps({"data": "x" * 128001, "type": "ascii", "id": "b"}), "128000"),
    (json.dumps({"type": "ascii", "id": "b"}), "Missing data"),
])
def test_bad_write_requests_get_a_failed_status(make_sedge, line, body, message):
    sedge, reader, sender, peer, port = start(make_sedge, line)
    pid = connector_pid(sedge, "port1")
    sender.publish(topic("write", port), body, qos=1)
    status = json.loads(reader.get().payload)
    assert status["response"]["status"] == "fail", status
    assert message in status["response"]["error_message"], status
    assert connector_pid(sedge, "port1") == pid


def test_bad_read_lengths_are_refused(make_sedge, line):
    sedge, reader, sender, peer, port = start(make_sedge, line)
    for n in ("0", "63995", "-1", "1e3", ""):
        sender.publish(topic("read", port), json.dumps({"readLength": n, "type": "ascii",
                                                        "id": "b"}), qos=1)
        status = json.loads(reader.get().payload)
        assert "readLength" in status["response"]["error_message"], (n, status)


def test_a_port_that_disappears_fails_then_works_when_it_returns(make_sedge, line):
    sedge, reader, sender, peer, port = start(make_sedge, line)
    write = lambda i: sender.publish(  # noqa: E731
        topic("write", port), json.dumps({"data": "x%d" % i, "type": "ascii", "id": str(i)}),
        qos=1)
    write(1)
    assert json.loads(reader.get().payload)["response"]["status"] == "success"
    peer.close()
    line.stop()
    write(2)
    status = json.loads(reader.get().payload)
    assert status["response"]["status"] == "fail", status
    assert connector_pid(sedge, "port1")  # still running
    line.start()
    # A pseudo-terminal made anew is another device (a real port's node
    # keeps its numbers and is opened again in place): a deployment that
    # changes the connector restarts it with the new one.
    deploy_ok(sedge, connector_group(
        [{"name": "port1", "type": "serial",
          "parameters": {"serial_port": line.a, "baud_rate": 115200, "timeout_ms": 301},
          "resources": [{"type": "device", "path": line.a, "access": "rw"}]}],
        [("thing:t2", "serial/+/write/#", "connector:port1"),
         ("connector:port1", "serial/#", "thing:t1")]))
    peer = serial.Serial(line.b, 115200, timeout=TIMEOUT)
    write(3)
    assert peer.read(2) == b"x3"
    status = json.loads(reader.get().payload)
    assert status == {"response": {"status": "success"}, "id": "3"}, status
