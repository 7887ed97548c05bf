#!/usr/bin/python3
"""echo: answers every invocation with its payload prefixed by "echo:"."""
import os
import sys

try:
    import sedge
except ImportError:  # run from the repository: use its sdk/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "..", "sdk", "python"))
    import sedge


def handle(topic, payload):
    return b"echo:" + payload


if __name__ == "__main__":
    try:
        sedge.run(handle)  # returns when the core stops the function
    except sedge.SedgeError as e:
        sys.exit("echo: %s" % e.message)
