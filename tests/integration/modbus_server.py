"""A Modbus server for the connector tests: pymodbus (Debian's
python3-pymodbus), over TCP on loopback or RTU on a serial device (one end
of a socat pty pair), unit 1 with known values:

  coils 0..99:              address % 3 == 0
  discrete inputs 0..99:    address % 2 == 0
  holding registers 0..199: 100 + address
  input registers 0..99:    1000 + address

Any other unit id goes unanswered (a device not on the line). Reads
outside those ranges answer exception 2 (illegal data address).

  usage: modbus_server.py tcp PORT | rtu DEVICE [BAUD]
Prints "ready" once it serves.
"""
import asyncio
import logging
import sys

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer


def context():
    # pymodbus's blocks are addressed from 1 when zero_mode is off; with
    # zero_mode=True request address N is block index N.
    slave = ModbusSlaveContext(
        co=ModbusSequentialDataBlock(0, [a % 3 == 0 for a in range(100)]),
        di=ModbusSequentialDataBlock(0, [a % 2 == 0 for a in range(100)]),
        hr=ModbusSequentialDataBlock(0, [100 + a for a in range(200)]),
        ir=ModbusSequentialDataBlock(0, [1000 + a for a in range(100)]),
        zero_mode=True)
    return ModbusServerContext(slaves={1: slave}, single=False)


async def main():
    logging.basicConfig(level=logging.CRITICAL)
    kind, where = sys.argv[1], sys.argv[2]
    if kind == "tcp":
        server = ModbusTcpServer(context(), ModbusSocketFramer, None, ("127.0.0.1", int(where)),
                                 ignore_missing_slaves=True)
        serving = asyncio.create_task(server.serve_forever())
        while True:  # "ready" only once it accepts connections
            try:
                _, w = await asyncio.open_connection("127.0.0.1", int(where))
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        print("ready", flush=True)
        await serving
    else:
        baud = int(sys.argv[3]) if len(sys.argv) > 3 else 9600
        server = ModbusSerialServer(context(), ModbusRtuFramer, port=where, baudrate=baud,
                                    ignore_missing_slaves=True)
        await server.start()
        print("ready", flush=True)
        while True:
            await asyncio.sleep(3600)


asyncio.run(main())
