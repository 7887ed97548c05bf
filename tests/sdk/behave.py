#!/usr/bin/python3
"""behave: the Python twin of examples/functions/c/behave.c for the SDK
tests — the payload picks what the function does, and SDK errors come back
as "error: CODE: MESSAGE" so that both SDKs can be checked the same way.
Python-only commands: "raise:MSG" (the handler raises), "return-int",
"return-str:TEXT", "return-none"."""
import os
import sys

try:
    import sedge
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "sdk", "python"))
    import sedge


def _err(e):
    return "error: %s: %s" % (e.code, e.message)


def command(text, topic=""):
    cmd, _, arg = text.partition(":")
    try:
        if cmd == "publish":
            sedge.publish(arg, b"hi")
            return "ok"
        if cmd == "flood":
            n, _, topic_ = arg.partition(":")
            refused = 0
            for i in range(int(n)):
                try:
                    sedge.publish(topic_, str(i))
                except sedge.SedgeError:
                    refused += 1
            return str(refused)
        if cmd == "shadow-get":
            return _doc(sedge.shadow_get(*_thing(arg)))
        if cmd == "shadow-update":
            thing, _, doc = arg.partition(":")
            thing, name = _thing(thing)
            return _doc(sedge.shadow_update(thing, doc, name))
        if cmd == "shadow-delete":
            return _doc(sedge.shadow_delete(*_thing(arg)))
        if cmd == "invoke":
            fn, _, payload = arg.partition(":")
            return sedge.invoke(fn, payload)
        if cmd == "invoke-async":
            fn, _, payload = arg.partition(":")
            assert sedge.invoke(fn, payload, async_=True) is None
            return "queued"
        if cmd == "config":
            return _doc(sedge.config())
        if cmd == "log":
            level, _, message = arg.partition(":")
            sedge.log(level, message)
            return "logged"
        if cmd in ("fail", "raise"):
            raise RuntimeError(arg)
        if cmd == "topic":
            return topic
        if cmd == "source":
            return sedge.source()
        if cmd == "return-int":
            return 42
        if cmd == "return-str":
            return arg
        if cmd == "return-none":
            return None
    except sedge.SedgeError as e:
        return _err(e)
    return None


def _thing(arg):
    """THING or THING/NAME (a named shadow) -> (thing, name)."""
    thing, _, name = arg.partition("/")
    return thing, name or None


def _doc(doc):
    import json
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


KNOWN = ("publish", "flood", "shadow-get", "shadow-update", "shadow-delete", "invoke",
         "invoke-async", "config", "log", "fail", "raise", "topic", "source", "return-int",
         "return-str", "return-none")


def handle(topic, payload):
    text = payload.decode("utf-8", "replace")
    if text.partition(":")[0] not in KNOWN:
        return payload
    return command(text, topic)


if __name__ == "__main__":
    at_start = os.environ.get("BEHAVE_AT_START")
    if at_start:
        print("behave: at start: %s" % command(at_start), file=sys.stderr)
    try:
        sedge.run(handle)
    except sedge.SedgeError as e:
        sys.exit("behave: %s" % e.message)
