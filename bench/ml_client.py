#!/usr/bin/python3
"""The image-classification benchmark's client: images sent to the
connector through sedged (paho, QoS 0, one at a time, each waiting for its
result), timed from the publish to the result's arrival; the connector's
own "latency_ms" (decode + preprocess + forward, inside the connector) is
collected beside it.

    ml_client.py PORT TRIGGER RESULT COUNT WARMUP IMAGE...

prints: images=N e2e_p50_us=.. e2e_p99_us=.. infer_p50_us=.. infer_p99_us=..
rate=.. (images/s, one after the other)
"""

import json
import queue
import sys
import time

import paho.mqtt.client as mqtt


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


def main():
    port, trigger, result = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    count, warmup = int(sys.argv[4]), int(sys.argv[5])
    images = [open(p, "rb").read() for p in sys.argv[6:]]
    got = queue.Queue()
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-camera")
    except AttributeError:
        c = mqtt.Client(client_id="bench-camera")
    c.on_message = lambda cl, ud, m: got.put((time.perf_counter(), m.payload))
    c.connect("127.0.0.1", port)
    c.subscribe(result, qos=0)
    c.loop_start()
    time.sleep(0.3)
    e2e, infer = [], []
    start = None
    for i in range(warmup + count):
        if i == warmup:
            start = time.perf_counter()
        t0 = time.perf_counter()
        c.publish(trigger, images[i % len(images)], qos=0)
        t1, payload = got.get(timeout=30)
        doc = json.loads(payload)
        if doc.get("error"):
            sys.exit("ml_client: error result: %s" % doc["error"])
        if i >= warmup:
            e2e.append((t1 - t0) * 1e6)
            infer.append(doc["latency_ms"] * 1000)
    secs = time.perf_counter() - start
    c.loop_stop()
    print("images=%d e2e_p50_us=%.1f e2e_p99_us=%.1f infer_p50_us=%.1f infer_p99_us=%.1f "
          "rate=%.1f" % (count, pct(e2e, 50), pct(e2e, 99), pct(infer, 50), pct(infer, 99),
                         count / secs))


if __name__ == "__main__":
    main()
