#!/usr/bin/python3
"""Write the seed corpus of fuzz_broker: scripts of chunks, each
[client][length][bytes], for three clients talking to one broker.

The packets come from tests/integration/mqtt_raw.py (built from the
specifications, not with the codec under test). Standard library only.

    tests/fuzz/make_broker_corpus.py [OUTDIR]   (default: corpus/broker beside this file)
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "integration"))
import mqtt_raw as raw  # noqa: E402

CLOSE = 0xFF


def chunks(*steps):
    """steps: (client, bytes) or (client, None) to close; bytes longer than
    254 are split across chunks, as a socket may deliver them."""
    out = bytearray()
    for client, data in steps:
        if data is None:
            out += bytes([client, CLOSE])
            continue
        for i in range(0, max(len(data), 1), 254):
            part = data[i:i + 254]
            out += bytes([client, len(part)]) + part
    return bytes(out)


def seeds():
    persist = {"session_expiry": 60}
    yield "qos_all_v5", chunks(
        (0, raw.connect("a", clean=False, props=persist)),
        (0, raw.subscribe(1, [("t/#", raw.sub_options(qos=2)), ("$share/g/t/+", 1)])),
        (1, raw.connect("b")),
        (1, raw.publish("t/x", b"0", qos=0) + raw.publish("t/x", b"1", qos=1, packet_id=1)
         + raw.publish("t/x", b"2", qos=2, packet_id=2)),
        (1, raw.ack(raw.PUBREL, 2)),
        (0, raw.ack(raw.PUBACK, 1) + raw.ack(raw.PUBREC, 2)),
        (0, raw.ack(raw.PUBCOMP, 2)),
        (1, raw.publish("t/r", b"retained", qos=1, retain=True, packet_id=3)),
        (2, raw.connect("c", version=4)),
        (2, raw.subscribe(1, [("t/+", 1)], version=4)),
        (0, raw.unsubscribe(3, ["t/#"])),
        (0, raw.disconnect(props={"session_expiry": 0})),
    )
    yield "one_write", chunks(
        (0, raw.connect("x", version=4) + raw.disconnect(version=4)),
        (1, raw.connect("y") + raw.subscribe(1, [("a/#", 1)]) + raw.publish("a/b", b"z", qos=1,
                                                                            packet_id=4)
         + raw.disconnect()),
    )
    will = {"topic": "will/t", "payload": b"gone", "qos": 1, "props": {"will_delay": 0}}
    yield "takeover_and_will", chunks(
        (0, raw.connect("same", clean=False, props=persist, will=will)),
        (1, raw.connect("w")),
        (1, raw.subscribe(1, [("will/#", 1)])),
        (2, raw.connect("same", clean=True)),
        (0, None),
        (2, raw.publish("will/t", b"x", qos=2, packet_id=9, dup=True)),
    )
    yield "aliases_v5", chunks(
        (0, raw.connect("al", props={"topic_alias_maximum": 4})),
        (0, raw.subscribe(1, [("al/#", 0)])),
        (1, raw.connect("ap")),
        (1, raw.publish("al/1", b"a", props={"topic_alias": 1})
         + raw.publish("", b"b", props={"topic_alias": 1})),
    )


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "broker")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
