"""The Modbus connector against pymodbus servers nobody here wrote: Modbus
TCP on loopback and Modbus RTU over a socat pty pair, driven with
Greengrass's request JSON from paho, responses compared field by field;
exceptions, malformed requests, a device that stops answering, polling."""
import json

import pytest

from conftest import TIMEOUT, free_port, wait_for
from connectors_helpers import (PtyPair, connector_group, connector_pid, modbus_server,
                                status_of, wait_connector)
from groups_helpers import deploy, deploy_ok

REQUEST = "modbus/adapter/request"
RESPONSE = "modbus/adapter/response"
ROUTES = [("thing:t2", REQUEST, "connector:plc"), ("connector:plc", "modbus/adapter/#", "thing:t1")]


def plc(params, **kw):
    entry = {"name": "plc", "type": "modbus", "parameters": params}
    entry.update(kw)
    return entry


@pytest.fixture
def tcp_server():
    port = free_port()
    server = modbus_server("tcp", port)
    yield server, port
    server.stop()


@pytest.fixture
def tcp_plc(make_sedge, tcp_server):
    server, port = tcp_server
    sedge = make_sedge()
    deploy_ok(sedge, connector_group(
        [plc({"transport": "tcp", "host": "127.0.0.1", "port": port, "timeout_ms": 300})], ROUTES))
    reader = sedge.client("t1")
    reader.subscribe("modbus/adapter/#", qos=1)
    sender = sedge.client("t2")
    return sedge, server, port, reader, sender


def ask(reader, sender, request, id_="r"):
    body = {"request": request, "id": id_} if not isinstance(request, (bytes, str)) else request
    sender.publish(REQUEST, body if isinstance(body, (bytes, str)) else json.dumps(body), qos=1)
    m = reader.get()
    assert m.topic == RESPONSE, m.topic
    return json.loads(m.payload)


def ok(response, operation, payload, device=1, id_="r"):
    assert response == {"response": {"status": "success", "device": device,
                                     "operation": operation, "payload": payload},
                        "id": id_}, response


def pymodbus_client(port):
    from pymodbus.client import ModbusTcpClient
    c = ModbusTcpClient("127.0.0.1", port=port)
    assert c.connect()
    return c


def test_every_operation_over_tcp_answers_as_greengrass(tcp_plc):
    sedge, server, port, reader, sender = tcp_plc
    peer = pymodbus_client(port)
    r = lambda req: ask(reader, sender, dict(req, device=1))  # noqa: E731
    ok(r({"operation": "ReadCoilsRequest", "address": 0, "count": 4}), "ReadCoilsRequest",
       {"function_code": 1, "bits": [1, 0, 0, 1]})
    ok(r({"operation": "ReadDiscreteInputsRequest", "address": 1, "count": 3}),
       "ReadDiscreteInputsRequest", {"function_code": 2, "bits": [0, 1, 0]})
    ok(r({"operation": "ReadHoldingRegistersRequest", "address": 1, "count": 2}),
       "ReadHoldingRegistersRequest", {"function_code": 3, "registers": [101, 102]})
    ok(r({"operation": "ReadInputRegistersRequest", "address": 5, "count": 1}),
       "ReadInputRegistersRequest", {"function_code": 4, "registers": [1005]})
    ok(r({"operation": "WriteSingleCoilRequest", "address": 1, "value": 1}),
       "WriteSingleCoilRequest", {"function_code": 5, "address": 1, "value": True})
    assert peer.read_coils(1, 1, slave=1).bits[0] is True
    ok(r({"operation": "WriteSingleRegisterRequest", "address": 10, "value": 4242}),
       "WriteSingleRegisterRequest", {"function_code": 6, "address": 10, "value": 4242})
    assert peer.read_holding_registers(10, 1, slave=1).registers == [4242]
    ok(r({"operation": "WriteMultipleCoilsRequest", "address": 20, "values": [1, 0, 0, 1]}),
       "WriteMultipleCoilsRequest", {"function_code": 15, "address": 20, "count": 4})
    assert peer.read_coils(20, 4, slave=1).bits[:4] == [True, False, False, True]
    ok(r({"operation": "WriteMultipleRegistersRequest", "address": 30, "values": [20, 30, 10]}),
       "WriteMultipleRegistersRequest", {"function_code": 16, "address": 30, "count": 3})
    assert peer.read_holding_registers(30, 3, slave=1).registers == [20, 30, 10]
    ok(r({"operation": "MaskWriteRegisterRequest", "address": 40, "and_mask": 0xF0,
          "or_mask": 0x01}),
       "MaskWriteRegisterRequest",
       {"function_code": 22, "address": 40, "and_mask": 0xF0, "or_mask": 0x01})
    # (140 AND 0xF0) OR (0x01 AND NOT 0xF0)
    assert peer.read_holding_registers(40, 1, slave=1).registers == [(140 & 0xF0) | 0x01]
    ok(r({"operation": "ReadWriteMultipleRegistersRequest", "read_address": 50, "read_count": 2,
          "write_address": 52, "write_registers": [7, 8]}),
       "ReadWriteMultipleRegistersRequest", {"function_code": 23, "registers": [150, 151]})
    assert peer.read_holding_registers(52, 2, slave=1).registers == [7, 8]
    # The operation as a function code, as Greengrass also takes it.
    ok(r({"operation": "0x03", "address": 0, "count": 1}), "ReadHoldingRegistersRequest",
       {"function_code": 3, "registers": [100]})
    ok(r({"operation": 4, "address": 0, "count": 1}), "ReadInputRegistersRequest",
       {"function_code": 4, "registers": [1000]})
    peer.close()


def test_an_exception_answer_is_a_greengrass_exception_response(tcp_plc):
    sedge, server, port, reader, sender = tcp_plc
    resp = ask(reader, sender, {"operation": "ReadCoilsRequest", "device": 1, "address": 99,
                                "count": 5}, "x")
    assert resp["id"] == "x"
    r = resp["response"]
    assert r["status"] == "fail" and r["error"] == "Exception", r
    assert r["payload"] == {"function_code": 129, "exception_code": 2}, r
    assert r["device"] == 1 and r["operation"] == "ReadCoilsRequest" and r["error_message"]
    wait_connector(sedge, "plc", lambda f: f["errors"] >= 1, what="the failure counted")


@pytest.mark.parametrize("request_, message", [
    ({"operation": "FlyRequest", "device": 1}, "Invalid operation"),
    ({"operation": "ReadCoilsRequest", "device": 1, "address": 0, "count": 0}, "count"),
    ({"operation": "ReadHoldingRegistersRequest", "device": 1, "address": 0, "count": 126},
     "count"),
    ({"operation": "ReadCoilsRequest", "device": 1, "address": 70000, "count": 1}, "address"),
    ({"operation": "ReadCoilsRequest", "device": 1, "address": 65535, "count": 2}, "past 65535"),
    ({"operation": "ReadCoilsRequest", "device": 300, "address": 0, "count": 1}, "device"),
    ({"operation": "ReadCoilsRequest", "device": 1, "address": "1", "count": 1},
     "Expected int, got string"),
    ({"operation": "WriteSingleCoilRequest", "device": 1, "address": 0, "value": 2}, "value"),
    ({"operation": "WriteMultipleRegistersRequest", "device": 1, "address": 0,
      "values": list(range(124))}, "values"),
    ({"operation": "WriteMultipleCoilsRequest", "device": 1, "address": 0, "values": []},
     "values"),
])
def test_a_malformed_request_gets_no_response_and_why(tcp_plc, request_, message):
    sedge, server, port, reader, sender = tcp_plc
    pid = connector_pid(sedge, "plc")
    r = ask(reader, sender, request_)["response"]
    assert r["status"] == "fail" and r["error"] == "No Response", r
    assert message in r["error_message"] and r["payload"] == {"error": r["error_message"]}, r
    assert connector_pid(sedge, "plc") == pid


def test_unreadable_requests_are_answered_and_the_connector_keeps_serving(tcp_plc):
    sedge, server, port, reader, sender = tcp_plc
    pid = connector_pid(sedge, "plc")
    for body in (b"not json", b"[1,2]", b"\xff\xfe", json.dumps({"request": {}}).encode(),
                 json.dumps({"request": {"operation": "ReadCoilsRequest", "device": 1,
                                         "address": 0, "count": 1}}).encode(),
                 b"{" * 100000, json.dumps({"id": "big", "pad": "x" * 70000}).encode()):
        r = ask(reader, sender, body)
        assert r["response"]["status"] == "fail", r
        assert r["response"]["error"] == "No Response", r
    big = ask(reader, sender, json.dumps({"id": "big", "pad": "x" * 70000}))
    assert "over the limit" in big["response"]["error_message"]
    ok(ask(reader, sender, {"operation": "ReadCoilsRequest", "device": 1, "address": 0,
                            "count": 1}), "ReadCoilsRequest", {"function_code": 1, "bits": [1]})
    assert connector_pid(sedge, "plc") == pid


def test_a_device_that_stops_answering_times_out_and_is_found_again(tcp_plc):
    sedge, server, port, reader, sender = tcp_plc
    read = {"operation": "ReadHoldingRegistersRequest", "device": 1, "address": 0, "count": 1}
    ok(ask(reader, sender, read), "ReadHoldingRegistersRequest",
       {"function_code": 3, "registers": [100]})
    server.pause()
    r = ask(reader, sender, read)["response"]
    assert r["status"] == "fail" and r["error"] == "No Response", r
    assert "No Response received from the remote unit" in r["error_message"], r
    # A unit nobody answers for is the same.
    server.resume()
    r = ask(reader, sender, dict(read, device=9))["response"]
    assert r["error"] == "No Response", r
    ok(ask(reader, sender, read), "ReadHoldingRegistersRequest",
       {"function_code": 3, "registers": [100]})


def test_a_server_that_restarts_is_connected_again(tcp_plc):
    sedge, server, port, reader, sender = tcp_plc
    read = {"operation": "ReadInputRegistersRequest", "device": 1, "address": 0, "count": 1}
    ok(ask(reader, sender, read), "ReadInputRegistersRequest",
       {"function_code": 4, "registers": [1000]})
    server.stop()
    r = ask(reader, sender, read)["response"]
    assert r["error"] == "No Response", r
    again = modbus_server("tcp", port)
    try:
        ok(ask(reader, sender, read), "ReadInputRegistersRequest",
           {"function_code": 4, "registers": [1000]})
    finally:
        again.stop()


def test_a_connector_killed_is_restarted_like_a_function(tcp_plc):
    import os
    import signal
    sedge, server, port, reader, sender = tcp_plc
    pid = connector_pid(sedge, "plc")
    os.kill(pid, signal.SIGKILL)
    wait_connector(sedge, "plc", lambda f: f["instances"] and f["instances"][0].get("pid")
                   not in (None, pid) and f["instances"][0]["state"] != "starting",
                   what="a new instance")
    ok(ask(reader, sender, {"operation": "ReadCoilsRequest", "device": 1, "address": 0,
                            "count": 1}), "ReadCoilsRequest", {"function_code": 1, "bits": [1]})
    assert status_of(sedge, "plc")["crashes"] >= 1


def test_polling_publishes_the_register_map_then_changes_only(make_sedge, tcp_server):
    server, port = tcp_server
    sedge = make_sedge()
    reader = None
    deploy_ok(sedge, connector_group(
        [plc({"transport": "tcp", "host": "127.0.0.1", "port": port, "timeout_ms": 300,
              "poll": {"interval_ms": 50, "device": 1, "topic": "plant/registers",
                       "registers": [{"name": "level", "table": "holding_registers",
                                      "address": 60, "count": 2},
                                     {"name": "pump", "table": "coils", "address": 3,
                                      "count": 1}]}})],
        ROUTES + [("connector:plc", "plant/#", "thing:t1")]))
    reader = sedge.client("t1")
    reader.subscribe("plant/#", qos=1)
    peer = pymodbus_client(port)
    peer.write_register(61, 5, slave=1)
    seen = []
    def changed():
        m = reader.get()
        doc = json.loads(m.payload)
        seen.append(doc)
        return any(c["name"] == "level" and c["values"] == [160, 5] for c in doc["changes"])
    wait_for(changed, what="the change of register 61")
    # Nothing more while nothing changes, then one message for one change.
    with pytest.raises(AssertionError):
        reader.get(timeout=0.5)
    peer.write_coil(3, False, slave=1)
    doc = json.loads(reader.get().payload)
    assert doc == {"device": 1, "changes": [{"name": "pump", "table": "coils", "address": 3,
                                             "values": [0]}]}, doc
    peer.close()


def test_rtu_over_a_serial_line(make_sedge):
    pty = PtyPair("sedge-rtu")
    server = modbus_server("rtu", pty.b, 19200)
    try:
        sedge = make_sedge()
        deploy_ok(sedge, connector_group(
            [plc({"transport": "rtu", "serial_port": pty.a, "baud_rate": 19200, "parity": "N",
                  "timeout_ms": 500},
                 resources=[{"type": "device", "path": pty.a, "access": "rw"}])], ROUTES))
        reader = sedge.client("t1")
        reader.subscribe("modbus/adapter/#", qos=1)
        sender = sedge.client("t2")
        ok(ask(reader, sender, {"operation": "ReadHoldingRegistersRequest", "device": 1,
                                "address": 3, "count": 3}),
           "ReadHoldingRegistersRequest", {"function_code": 3, "registers": [103, 104, 105]})
        ok(ask(reader, sender, {"operation": "WriteMultipleCoilsRequest", "device": 1,
                                "address": 10, "values": [1, 1]}),
           "WriteMultipleCoilsRequest", {"function_code": 15, "address": 10, "count": 2})
        ok(ask(reader, sender, {"operation": "ReadCoilsRequest", "device": 1, "address": 8,
                                "count": 4}),
           "ReadCoilsRequest", {"function_code": 1, "bits": [0, 1, 1, 1]})
        r = ask(reader, sender, {"operation": "ReadCoilsRequest", "device": 1, "address": 500,
                                 "count": 1})["response"]
        assert r["error"] == "Exception" and r["payload"]["exception_code"] == 2, r
        server.pause()
        r = ask(reader, sender, {"operation": "ReadCoilsRequest", "device": 1, "address": 0,
                                 "count": 1})["response"]
        assert r["error"] == "No Response", r
        server.resume()
        ok(ask(reader, sender, {"operation": "ReadInputRegistersRequest", "device": 1,
                                "address": 0, "count": 2}),
           "ReadInputRegistersRequest", {"function_code": 4, "registers": [1000, 1001]})
    finally:
        server.stop()
        pty.stop()


def test_the_group_refuses_wrong_parameters_naming_them(make_sedge):
    sedge = make_sedge()
    r = deploy(sedge, connector_group(
        [plc({"transport": "udp", "port": 70000, "colour": "red"}),
         {"name": "rtu", "type": "modbus", "parameters": {"transport": "rtu"}},
         {"name": "x", "type": "teleporter"}], ROUTES))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    for text in ('connectors[0].parameters.transport: "udp" is not one of tcp, rtu',
                 "connectors[0].parameters.port: expected an integer from 1 to 65535",
                 "connectors[0].parameters.colour: unknown parameter",
                 "connectors[1].parameters.serial_port: missing",
                 'connectors[2].type: unknown connector type "teleporter"'):
        assert text in out, out
