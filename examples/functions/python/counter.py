#!/usr/bin/python3
"""counter: a long-lived function keeping state across invocations.

Each invocation returns the count so far ("1", "2", ...) and publishes
{"count": N} on counter/value.
"""
import json
import os
import sys

try:
    import sedge
except ImportError:  # run from the repository: use its sdk/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "..", "sdk", "python"))
    import sedge

count = 0


def handle(topic, payload):
    global count
    count += 1
    try:
        sedge.publish("counter/value", json.dumps({"count": count}))
    except sedge.SedgeError as e:
        sedge.log_warn("counter: publish failed: %s" % e.message)
    return str(count)


if __name__ == "__main__":
    try:
        sedge.run(handle)
    except sedge.SedgeError as e:
        sys.exit("counter: %s" % e.message)
