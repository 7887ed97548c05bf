#!/usr/bin/python3
"""Write the seed corpus of fuzz_mqtt_decode: small valid packets of every
type, for MQTT 3.1.1 and 5.0, plus a few streams of several packets.

The packets are built here from the specifications, not with the codec under
test, so a seed is also a second opinion on the bytes. Standard library only.

    tests/fuzz/make_corpus.py [OUTDIR]   (default: corpus/mqtt_decode beside this file)
"""
import os
import struct
import sys


def vbi(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def s(text):
    """A UTF-8 string or binary data with its two-byte length."""
    data = text.encode() if isinstance(text, str) else text
    return u16(len(data)) + data


def packet(ptype, flags, body):
    return bytes([ptype << 4 | flags]) + vbi(len(body)) + body


def props(*items):
    """A property block: its length, then (identifier, encoded value) pairs."""
    block = b"".join(bytes([pid]) + value for pid, value in items)
    return vbi(len(block)) + block


def user(key, value):
    return (0x26, s(key) + s(value))


NO_PROPS = props()

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)


def connect(level, flags, keep_alive, client_id, cprops=None, will=None, user_name=None,
            password=None):
    body = s("MQTT") + bytes([level, flags]) + u16(keep_alive)
    if level == 5:
        body += cprops if cprops is not None else NO_PROPS
    body += s(client_id)
    if will:
        wprops, topic, payload = will
        if level == 5:
            body += wprops
        body += s(topic) + s(payload)
    if user_name is not None:
        body += s(user_name)
    if password is not None:
        body += s(password)
    return packet(CONNECT, 0, body)


def publish(level, qos, topic, payload, packet_id=None, pprops=None, dup=False, retain=False):
    body = s(topic)
    if qos:
        body += u16(packet_id)
    if level == 5:
        body += pprops if pprops is not None else NO_PROPS
    flags = (8 if dup else 0) | qos << 1 | (1 if retain else 0)
    return packet(PUBLISH, flags, body + payload)


def seeds():
    yield "connect_v311_minimal", connect(4, 0x02, 60, "c1")
    yield "connect_v311_full", connect(4, 0xEE, 10, "dev-1", will=(None, "dev/1/status", "gone"),
                                        user_name="user", password=b"\x00\xffpw")
    yield "connect_v5_minimal", connect(5, 0x02, 30, "")
    yield "connect_v5_full", connect(
        5, 0xF6, 10, "dev-5",
        cprops=props((0x11, u32(3600)), (0x21, u16(20)), (0x27, u32(65536)), (0x22, u16(8)),
                     (0x19, b"\x01"), (0x17, b"\x00"), (0x15, s("SCRAM")), (0x16, s(b"\x01\x02")),
                     user("region", "eu"), user("region", "us")),
        will=(props((0x18, u32(5)), (0x01, b"\x01"), (0x02, u32(120)), (0x03, s("text/plain")),
                    (0x08, s("dev/5/reply")), (0x09, s(b"\x00\x01")), user("k", "v")),
              "dev/5/status", "offline"),
        user_name="u", password=b"p")
    yield "connect_v31_refused", packet(CONNECT, 0, s("MQIsdp") + bytes([3, 0x02]) + u16(60)
                                        + s("old"))

    yield "connack_v311", packet(CONNACK, 0, b"\x00\x00")
    yield "connack_v311_refused", packet(CONNACK, 0, b"\x00\x05")
    yield "connack_v5", packet(CONNACK, 0, b"\x01\x00" + props(
        (0x11, u32(7200)), (0x21, u16(100)), (0x24, b"\x01"), (0x25, b"\x01"),
        (0x27, u32(1 << 20)), (0x12, s("auto-42")), (0x22, u16(16)), (0x1F, s("welcome")),
        (0x28, b"\x01"), (0x29, b"\x00"), (0x2A, b"\x01"), (0x13, u16(30)), (0x1A, s("resp/")),
        (0x1C, s("other:1883")), (0x15, s("PLAIN")), (0x16, s("xyz")), user("node", "edge")))

    yield "publish_v311_qos0", publish(4, 0, "sensors/t1", b"21.5")
    yield "publish_v311_qos1_retain", publish(4, 1, "a/b", b"hey", packet_id=10, retain=True)
    yield "publish_v311_qos2_dup", publish(4, 2, "$SYS/x", b"\x00\xff", packet_id=65535, dup=True)
    yield "publish_v5_qos0", publish(5, 0, "t", b"")
    yield "publish_v5_props", publish(5, 1, "a/b", b"hi", packet_id=10, pprops=props(
        (0x01, b"\x01"), (0x02, u32(60)), (0x23, u16(5)), (0x08, s("r/t")),
        (0x09, s(b"\xde\xad")), user("k", "v"), (0x0B, vbi(7)), (0x03, s("text")),
        (0x0B, vbi(128)), user("k", "v2")))
    yield "publish_v5_alias", publish(5, 0, "", b"p", pprops=props((0x23, u16(2))))

    for name, ptype, flags in (("puback", PUBACK, 0), ("pubrec", PUBREC, 0),
                               ("pubrel", PUBREL, 2), ("pubcomp", PUBCOMP, 0)):
        yield name + "_v311", packet(ptype, flags, u16(10))
    yield "puback_v5_reason", packet(PUBACK, 0, u16(11) + b"\x10")
    yield "pubrec_v5_props", packet(PUBREC, 0, u16(12) + b"\x80" + props(
        (0x1F, s("bad")), user("k", "v")))
    yield "pubrel_v5_reason", packet(PUBREL, 2, u16(13) + b"\x92" + NO_PROPS)
    yield "pubcomp_v5_props", packet(PUBCOMP, 0, u16(14) + b"\x00" + props(user("a", "b")))

    yield "subscribe_v311", packet(SUBSCRIBE, 2, u16(10) + s("a/b") + b"\x01" + s("c/d") + b"\x02")
    yield "subscribe_v5", packet(SUBSCRIBE, 2, u16(11) + props((0x0B, vbi(5)), user("k", "v"))
                                 + s("a/#") + b"\x2d" + s("+") + b"\x02"
                                 + s("$share/g/sport/+") + b"\x11")
    yield "unsubscribe_v311", packet(UNSUBSCRIBE, 2, u16(10) + s("a/b") + s("c/d"))
    yield "unsubscribe_v5", packet(UNSUBSCRIBE, 2, u16(12) + props(user("why", "done"))
                                   + s("sport/#"))
    yield "suback_v311", packet(SUBACK, 0, u16(10) + b"\x00\x02\x80")
    yield "suback_v5", packet(SUBACK, 0, u16(11) + props((0x1F, s("no"))) + b"\x00\x01\x02\x80\x87")
    yield "unsuback_v311", packet(UNSUBACK, 0, u16(10))
    yield "unsuback_v5", packet(UNSUBACK, 0, u16(12) + NO_PROPS + b"\x00\x11")

    yield "pingreq", packet(PINGREQ, 0, b"")
    yield "pingresp", packet(PINGRESP, 0, b"")
    yield "disconnect_empty", packet(DISCONNECT, 0, b"")
    yield "disconnect_v5_reason", packet(DISCONNECT, 0, b"\x04")
    yield "disconnect_v5_props", packet(DISCONNECT, 0, b"\x9c" + props(
        (0x11, u32(0)), (0x1C, s("x")), (0x1F, s("bye!"))))
    yield "auth_v5_empty", packet(AUTH, 0, b"")
    yield "auth_v5", packet(AUTH, 0, b"\x18" + props((0x15, s("SCRAM")), (0x16, s(b"\x01\x02"))))


def streams(single):
    yield "stream_v311_session", (single["connect_v311_full"] + single["subscribe_v311"]
                                  + single["publish_v311_qos1_retain"] + single["puback_v311"]
                                  + single["pingreq"] + single["disconnect_empty"])
    yield "stream_v5_session", (single["connect_v5_full"] + single["connack_v5"]
                                + single["publish_v5_props"] + single["pubrec_v5_props"]
                                + single["pubrel_v5_reason"] + single["pubcomp_v5_props"]
                                + single["disconnect_v5_props"])
    yield "stream_cut_short", single["publish_v5_props"] + single["suback_v5"][:5]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "mqtt_decode")
    os.makedirs(outdir, exist_ok=True)
    single = dict(seeds())
    everything = list(single.items()) + list(streams(single))
    for name, data in everything:
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(data)
    print(f"wrote {len(everything)} seeds to {outdir}")


if __name__ == "__main__":
    main()
