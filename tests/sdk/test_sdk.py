"""The SDKs speak docs/function-ipc.md: C (libsedge, through the example
functions) and Python (sdk/python/sedge), each driven by a fake core.

Binaries come from $SEDGE_BUILD (default: the repository's build/):
examples/echo, examples/counter, examples/behave and libsedge.so.
"""
import ctypes
import json
import os
import shutil
import struct
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fake_core import FRAME_MAX, REPO, FakeCore, frame  # noqa: E402

BUILD = os.environ.get("SEDGE_BUILD", os.path.join(REPO, "build"))
PYTHON = sys.executable
PROGRAMS = {
    ("c", "echo"): [os.path.join(BUILD, "examples", "echo")],
    ("c", "counter"): [os.path.join(BUILD, "examples", "counter")],
    ("c", "behave"): [os.path.join(BUILD, "examples", "behave")],
    ("python", "echo"): [PYTHON, os.path.join(REPO, "examples", "functions", "python", "echo.py")],
    ("python", "counter"): [PYTHON, os.path.join(REPO, "examples", "functions", "python",
                                                  "counter.py")],
    ("python", "behave"): [PYTHON, os.path.join(HERE, "behave.py")],
}
LANGS = ["c", "python"]


def program(lang, name):
    argv = PROGRAMS[(lang, name)]
    if not os.path.exists(argv[-1]):
        pytest.fail("%s is missing: build first (cmake --build), or set SEDGE_BUILD" % argv[-1])
    return argv


@pytest.fixture
def core():
    # Unix socket paths are short (108 bytes): not under pytest's tmp_path.
    d = tempfile.mkdtemp(prefix="sdk-", dir="/tmp")
    c = FakeCore(d)
    yield c
    c.stop()
    err = c.stderr() if c.proc else ""
    shutil.rmtree(d, ignore_errors=True)
    # A build with -DSEDGE_SANITIZE=ON reports memory errors and leaks here.
    assert "Sanitizer" not in err and "runtime error" not in err, err


def run_fn(core, lang, name, env=None):
    """Start a function and complete its hello."""
    core.start(program(lang, name), env)
    core.handshake()
    return core


def assert_clean_failure(core, *phrases):
    """The function closed its socket and exited 1 (not by a signal), saying why."""
    assert core.closed_by_function(), "the function kept the connection open"
    status = core.wait()
    err = core.stderr()
    assert status == 1, "exit status %s: %s" % (status, err)
    assert "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in err, "%r not in %r" % (phrase, err)


# ---- handshake ----

@pytest.mark.parametrize("lang", LANGS)
def test_hello_carries_function_name_token_and_sdk(core, lang):
    run_fn(core, lang, "echo")
    assert core.hello["function"] == "fn"
    assert core.hello["token"] == "c0ffee42"
    assert core.hello["sdk"] == {"c": "c/0.1", "python": "python/0.1"}[lang]
    assert core.call(b"x") == b"echo:x"


@pytest.mark.parametrize("lang", LANGS)
def test_refused_hello_ends_the_function_with_the_core_reason(core, lang):
    core.start(program(lang, "echo"), {"SEDGE_TOKEN": "stolen"})
    hello = core.handshake()  # the fake core refuses a token that is not its own
    assert hello["token"] == "stolen"
    assert core.wait() == 1
    assert "bad token" in core.stderr()


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("missing", ["SEDGE_SOCKET", "SEDGE_FUNCTION", "SEDGE_TOKEN"])
def test_missing_environment_says_which_variable(core, lang, missing):
    core.start(program(lang, "echo"), {missing: None}, connect=False)
    assert core.wait() == 1
    assert missing + " is not set" in core.stderr()


@pytest.mark.parametrize("lang", LANGS)
def test_unreachable_socket_fails_with_a_clear_message(core, lang):
    core.start(program(lang, "echo"), {"SEDGE_SOCKET": "/nonexistent/sedge.sock"},
               connect=False)
    assert core.wait() == 1
    assert "cannot connect to the core at /nonexistent/sedge.sock" in core.stderr()


# ---- invocations ----

@pytest.mark.parametrize("lang", LANGS)
def test_each_invocation_gets_a_result_with_its_id(core, lang):
    run_fn(core, lang, "echo")
    cases = [(7, b"hello"), (8, b""), (2**53, b"\x00\xff\x01binary\x00"), (-1, "é".encode())]
    for id_, payload in cases:
        header, data = core.invoke(payload, topic="sensors/temp", source="thing:s1", id_=id_)
        assert header == {"op": "result", "id": id_, "ok": True}
        assert data == b"echo:" + payload


@pytest.mark.parametrize("lang", LANGS)
def test_large_payload_round_trips(core, lang):
    run_fn(core, lang, "echo")
    payload = os.urandom(5 << 20)
    assert core.call(payload) == b"echo:" + payload


@pytest.mark.parametrize("lang", LANGS)
def test_result_exactly_at_the_frame_limit_is_sent(core, lang):
    run_fn(core, lang, "echo")
    result_header = len(b'{"op":"result","id":1,"ok":true}')
    payload = b"a" * (FRAME_MAX - 8 - result_header - len(b"echo:"))
    core.send_raw(frame(b'{"op":"invoke","id":1}', payload))  # a compact header: it fits
    header, data = core.serve_until_result()
    assert header["ok"] is True
    assert len(data) == FRAME_MAX - 8 - result_header


@pytest.mark.parametrize("lang", LANGS)
def test_result_over_the_frame_limit_becomes_an_error_result(core, lang):
    run_fn(core, lang, "echo")
    invoke_header = b'{"op":"invoke","id":1}'
    payload = b"a" * (FRAME_MAX - 8 - len(invoke_header))  # the largest invocation
    core.send_raw(frame(invoke_header, payload))
    header, data = core.serve_until_result()
    assert header["ok"] is False and "16 MiB" in header["error"]
    assert data == b""
    assert core.call(b"still alive") == b"echo:still alive"


@pytest.mark.parametrize("lang", LANGS)
def test_failed_handler_becomes_an_error_result_and_the_function_lives_on(core, lang):
    run_fn(core, lang, "behave")
    header, data = core.invoke(b"fail:the sensor is unplugged")
    assert header == {"op": "result", "id": header["id"], "ok": False,
                      "error": "the sensor is unplugged"}
    assert data == b""
    assert core.call(b"plain") == b"plain"


@pytest.mark.parametrize("lang", LANGS)
def test_source_and_topic_reach_the_handler(core, lang):
    run_fn(core, lang, "behave")
    assert core.call(b"source", source="thing:sensor-1") == b"thing:sensor-1"
    assert core.call(b"topic", topic="sensors/temp") == b"sensors/temp"
    assert core.call(b"topic") == b""


TRICKY_TOPIC = 'a"b\\c\x01\x1f\n\t/é€/😀'


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("ascii_escapes", [True, False])
def test_escaped_topics_are_decoded(core, lang, ascii_escapes):
    run_fn(core, lang, "behave")
    got = core.call(b"topic", topic=TRICKY_TOPIC, ensure_ascii=ascii_escapes)
    assert got.decode("utf-8") == TRICKY_TOPIC


@pytest.mark.parametrize("lang", LANGS)
def test_unknown_header_fields_are_ignored(core, lang):
    run_fn(core, lang, "echo")
    extra = {"nested": {"a": [1, {"b": None}], "c": "}"}, "f": -1.5e3, "big": 2**70,
             "flag": False, "nothing": None, "list": []}
    assert core.call(b"x", extra=extra) == b"echo:x"


# ---- python handler specifics ----

def test_python_handler_exception_becomes_error_with_its_message(core):
    run_fn(core, "python", "behave")
    header, _ = core.invoke(b"raise:no calibration data")
    assert header["ok"] is False and header["error"] == "no calibration data"
    assert "RuntimeError" in core.stderr()  # the traceback is in the function's log
    assert core.call(b"plain") == b"plain"


def test_python_handler_may_return_str_none_but_not_other_types(core):
    run_fn(core, "python", "behave")
    assert core.call(b"return-str:caf\xc3\xa9") == "café".encode()
    assert core.call(b"return-none") == b""
    header, _ = core.invoke(b"return-int")
    assert header["ok"] is False and "int" in header["error"]


# ---- requests ----

@pytest.mark.parametrize("lang", LANGS)
def test_publish_request_carries_topic_qos_and_payload(core, lang):
    run_fn(core, lang, "behave")
    assert core.call(b"publish:kitchen/lamp") == b"ok"
    (header, payload), = core.requests
    assert header == {"op": "publish", "req": header["req"], "topic": "kitchen/lamp", "qos": 0}
    assert isinstance(header["req"], int)
    assert payload == b"hi"


@pytest.mark.parametrize("lang", LANGS)
def test_publish_escapes_the_topic(core, lang):
    run_fn(core, lang, "behave")
    assert core.call(("publish:" + TRICKY_TOPIC).encode()) == b"ok"
    assert core.requests[0][0]["topic"] == TRICKY_TOPIC


def test_c_publish_refuses_a_topic_that_is_not_utf8_without_sending_it(core):
    run_fn(core, "c", "behave")
    assert core.call(b"publish:bad\xff").startswith(b"error: invalid: ")
    assert core.requests == []
    assert core.call(b"publish:good") == b"ok"


@pytest.mark.parametrize("lang", LANGS)
def test_publish_denied(core, lang):
    run_fn(core, lang, "behave")
    core.replies["publish"] = ({"ok": False, "code": "denied",
                                "error": "no route from function:fn allows x"}, b"")
    assert core.call(b"publish:x") == b"error: denied: no route from function:fn allows x"


@pytest.mark.parametrize("lang", LANGS)
def test_requests_have_distinct_numbers_and_refusals_are_counted(core, lang):
    run_fn(core, lang, "behave")
    seen = []

    def reply(header, payload):
        seen.append(header["req"])
        if len(seen) == 2:
            return {"ok": False, "code": "denied", "error": "no"}, b""
        return {"ok": True}, b""
    core.replies["publish"] = reply
    assert core.call(b"flood:3:t") == b"1"
    assert core.call(b"flood:2:t") == b"0"
    assert len(seen) == 5 and len(set(seen)) == 5
    assert [p for _, p in core.requests] == [b"0", b"1", b"2", b"0", b"1"]
    assert [h["topic"] for h, _ in core.requests] == ["t"] * 5


@pytest.mark.parametrize("lang", LANGS)
def test_calls_before_run_connect_first(core, lang):
    run_fn(core, lang, "behave", {"BEHAVE_AT_START": "publish:boot"})
    header, payload = core.recv()
    assert header["op"] == "publish" and header["topic"] == "boot" and payload == b"hi"
    core.answer(header, payload)
    assert core.call(b"again") == b"again"
    assert [h["op"] for h, _ in core.frames] == ["hello", "publish", "result"]


@pytest.mark.parametrize("lang", LANGS)
def test_log_before_run_is_sent_without_waiting(core, lang):
    run_fn(core, lang, "behave", {"BEHAVE_AT_START": "log:info:booting"})
    header, payload = core.recv()
    assert header == {"op": "log", "level": "info"} and payload == b"booting"
    assert core.call(b"x") == b"x"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("level", ["debug", "info", "warn", "error"])
def test_log_frames_carry_level_and_text(core, lang, level):
    run_fn(core, lang, "behave")
    assert core.call(("log:%s:disk 93%% full" % level).encode()) == b"logged"
    assert core.logs == [(level, "disk 93% full")]
    assert core.requests == []


@pytest.mark.parametrize("lang", LANGS)
def test_shadow_get_request_and_accepted_document(core, lang):
    run_fn(core, lang, "behave")
    doc = {"state": {"reported": {"on": True}}, "version": 1}
    assert json.loads(core.call(b"shadow-get:lamp")) == doc
    (header, payload), = core.requests
    assert header == {"op": "shadow", "req": header["req"], "action": "get", "thing": "lamp"}
    assert payload == b""


@pytest.mark.parametrize("lang", LANGS)
def test_shadow_update_and_delete_of_a_named_shadow(core, lang):
    run_fn(core, lang, "behave")
    update = b'{"state":{"desired":{"on":false}}}'
    assert json.loads(core.call(b"shadow-update:lamp/settings:" + update)) == json.loads(update)
    core.replies["shadow"] = ({"ok": True}, b'{"version":3}')
    assert json.loads(core.call(b"shadow-delete:lamp/settings")) == {"version": 3}
    (h1, p1), (h2, p2) = core.requests
    assert (h1["action"], h1["thing"], h1["name"], p1) == ("update", "lamp", "settings", update)
    assert (h2["action"], h2["thing"], h2["name"], p2) == ("delete", "lamp", "settings", b"")


SHADOW_CODES = [(400, "invalid"), (403, "denied"), (404, "not_found"), (409, "conflict"),
                (413, "too_large"), (500, "failed"), ("404", "not_found"), ("denied", "denied")]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("code,word", SHADOW_CODES)
def test_shadow_rejections_map_to_errors_with_the_document_message(core, lang, code, word):
    run_fn(core, lang, "behave")
    rejected = json.dumps({"code": code, "message": "message for %s" % code}).encode()
    core.replies["shadow"] = ({"ok": False, "code": code, "error": "rejected"}, rejected)
    got = core.call(b"shadow-get:lamp").decode()
    assert got == "error: %s: message for %s" % (word, code)


@pytest.mark.parametrize("lang", LANGS)
def test_shadow_rejection_without_a_document_uses_the_error_sentence(core, lang):
    run_fn(core, lang, "behave")
    core.replies["shadow"] = ({"ok": False, "code": 404, "error": "no shadow for lamp"}, b"")
    assert core.call(b"shadow-get:lamp") == b"error: not_found: no shadow for lamp"


@pytest.mark.parametrize("lang", LANGS)
def test_invoke_request_and_result(core, lang):
    run_fn(core, lang, "behave")
    core.replies["invoke"] = lambda h, p: ({"ok": True}, b"result of " + p)
    assert core.call(b"invoke:alarm:21.5") == b"result of 21.5"
    (header, payload), = core.requests
    assert header == {"op": "invoke", "req": header["req"], "function": "alarm", "async": False}
    assert payload == b"21.5"


@pytest.mark.parametrize("lang", LANGS)
def test_async_invoke_is_only_queued(core, lang):
    run_fn(core, lang, "behave")
    assert core.call(b"invoke-async:alarm:x") == b"queued"
    (header, payload), = core.requests
    assert header["async"] is True and header["function"] == "alarm" and payload == b"x"


INVOKE_ERRORS = [
    # what sedged sends (src/functions/ipc.c): code "failed" + the core's sentence
    ({"code": "failed", "error": "timed out"}, "timeout"),
    ({"code": "failed", "error": "out of memory"}, "failed"),
    ({"code": "queue full", "error": "queue full"}, "full"),
    ({"code": "failed", "error": "no such function"}, "not_found"),
    # the invoked function's own message is not read as the core's
    ({"code": "failed", "error": "timed out reading the sensor"}, "failed"),
    # short code words, or a sentence alone
    ({"code": "timeout", "error": "alarm did not answer in 3 s"}, "timeout"),
    ({"code": "denied", "error": "no route to function:alarm"}, "denied"),
    ({"code": "not_found", "error": "no function alarm"}, "not_found"),
    ({"code": "full", "error": "alarm has 1000 queued"}, "full"),
    ({"error": "timed out"}, "timeout"),
    ({"error": "Queue Full"}, "full"),
    ({"error": "denied"}, "denied"),
    ({"error": "sensor unplugged"}, "failed"),
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("fields,word", INVOKE_ERRORS)
def test_invoke_failures_map_to_errors(core, lang, fields, word):
    run_fn(core, lang, "behave")
    core.replies["invoke"] = (dict({"ok": False}, **fields), b"")
    assert core.call(b"invoke:alarm:x").decode() == "error: %s: %s" % (word, fields["error"])


@pytest.mark.parametrize("lang", LANGS)
def test_config_is_the_reply_payload(core, lang):
    run_fn(core, lang, "behave")
    core.replies["config"] = ({"ok": True}, b'{"threshold": 3, "unit": "C"}')
    assert json.loads(core.call(b"config")) == {"threshold": 3, "unit": "C"}
    assert core.requests[0][0] == {"op": "config", "req": core.requests[0][0]["req"]}
    core.replies["config"] = ({"ok": True}, b"")
    assert json.loads(core.call(b"config")) == {}


# ---- counter and echo examples ----

@pytest.mark.parametrize("lang", LANGS)
def test_counter_counts_across_invocations_and_publishes(core, lang):
    run_fn(core, lang, "counter")
    assert [core.call(b"") for _ in range(3)] == [b"1", b"2", b"3"]
    published = [(h["topic"], h["qos"], json.loads(p)) for h, p in core.requests]
    assert published == [("counter/value", 0, {"count": n}) for n in (1, 2, 3)]


@pytest.mark.parametrize("lang", LANGS)
def test_counter_keeps_counting_when_publish_is_denied(core, lang):
    run_fn(core, lang, "counter")
    core.replies["publish"] = ({"ok": False, "code": "denied", "error": "no route here"}, b"")
    assert core.call(b"") == b"1"
    assert core.call(b"") == b"2"
    assert [level for level, _ in core.logs] == ["warn", "warn"]
    assert "no route here" in core.logs[0][1]


# ---- the core misbehaving ----

def raw_header(text):
    return frame(text if isinstance(text, bytes) else text.encode())


MALFORMED = {
    "header_not_json": raw_header(b"{nope"),
    "header_is_an_array": raw_header(b'["op","invoke"]'),
    "header_empty": raw_header(b""),
    "no_op": frame({"id": 1}),
    "op_not_a_string": frame({"op": 7, "id": 1}),
    "invoke_without_id": frame({"op": "invoke", "topic": ""}),
    "id_not_an_integer": frame({"op": "invoke", "id": "7"}),
    "header_longer_than_frame": struct.pack(">II", 10, 100) + b"{}xxxx",
    "frame_too_short_for_header_length": struct.pack(">I", 2) + b"ab",
    "frame_over_16_mib": struct.pack(">II", FRAME_MAX + 1, 2) + b"{}",
    "header_not_utf8": raw_header(b'{"op":"invoke","id":1,"topic":"\xff"}'),
    "duplicate_key": raw_header(b'{"op":"invoke","id":1,"id":2}'),
    "trailing_garbage": raw_header(b'{"op":"invoke","id":1} x'),
    "unterminated_string": raw_header(b'{"op":"invoke","id":1,"topic":"abc}'),
    "reply_while_idle": frame({"op": "reply", "req": 1, "ok": True}),
    "unknown_op": frame({"op": "dance"}),
}
# JSON that Python accepts but C cannot hand to a handler as a C string.
MALFORMED_FOR_C = {
    "nul_escape_in_topic": raw_header(b'{"op":"invoke","id":1,"topic":"a\\u0000b"}'),
    "lone_surrogate": raw_header(b'{"op":"invoke","id":1,"topic":"\\ud800"}'),
    "high_surrogate_then_not_low": raw_header(b'{"op":"invoke","id":1,"topic":"\\ud83d\\u0041"}'),
    "lone_low_surrogate": raw_header(b'{"op":"invoke","id":1,"topic":"\\ude00"}'),
    "overlong_utf8": raw_header(b'{"op":"invoke","id":1,"topic":"\xc0\xaf"}'),
    "nesting_too_deep": raw_header(b'{"op":"invoke","id":1,"x":' + b"[" * 100 + b"]" * 100 + b"}"),
}
MALFORMED_CASES = ([(lang, name) for lang in LANGS for name in MALFORMED] +
                   [("c", name) for name in MALFORMED_FOR_C])


@pytest.mark.parametrize("lang,name", MALFORMED_CASES)
def test_malformed_frame_from_the_core_ends_the_function_cleanly(core, lang, name):
    run_fn(core, lang, "echo")
    assert core.call(b"ok") == b"echo:ok"
    core.send_raw(MALFORMED.get(name) or MALFORMED_FOR_C[name])
    assert_clean_failure(core, "the core sent")


FUZZ_SEED_HEADER = (b'{"op":"invoke","id":5,"topic":"a\\u00e9\\ud83d\\ude00b\\n",'
                    b'"source":"thing:x","n":[1,{"a":-0.5e3,"b":"\\""}],"big":123456789012345678901,'
                    b'"t":true,"f":null}')


def test_c_header_reader_survives_mutated_headers(core):
    """A poor man's fuzzer: mutated headers end the function cleanly or are
    served; never a crash (run it on a SEDGE_SANITIZE build too)."""
    import random
    rng = random.Random(20240601)
    core.listener.settimeout(10)
    served = refused = 0
    for i in range(150):
        data = bytearray(FUZZ_SEED_HEADER)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            action = rng.randrange(3)
            if action == 0:
                data[pos] = rng.choice(b'{}[]",:\\u0123456789eE+-.tfn \x00\x7f\xc3\xff')
            elif action == 1:
                del data[pos]
            else:
                data.insert(pos, rng.randrange(256))
        if i:
            core.stop_function()
        core.start(program("c", "echo"))
        core.handshake()
        core.send_raw(frame(bytes(data), b"p"))
        try:
            header, payload = core.recv()
            assert header == {"op": "result", "id": header["id"], "ok": True}, header
            assert payload == b"echo:p"
            served += 1
        except EOFError:
            status = core.wait()
            assert status == 1, "exit %s on header %r: %s" % (status, bytes(data), core.stderr())
            refused += 1
    assert served > 0 and refused > 0


UNEXPECTED_REPLIES = {
    "invoke_instead_of_reply": lambda req: frame({"op": "invoke", "id": 9, "topic": ""}),
    "reply_to_another_request": lambda req: frame({"op": "reply", "req": req + 1, "ok": True}),
    "reply_without_ok": lambda req: frame({"op": "reply", "req": req}),
    "malformed_reply": lambda req: raw_header(b'{"op":"reply",'),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(UNEXPECTED_REPLIES))
def test_unexpected_frame_instead_of_a_reply_ends_the_function_cleanly(core, lang, name):
    run_fn(core, lang, "behave")
    core.send({"op": "invoke", "id": 1, "topic": "", "source": "sedgectl"}, b"publish:t")
    header, _ = core.recv()
    assert header["op"] == "publish"
    core.send_raw(UNEXPECTED_REPLIES[name](header["req"]))
    assert_clean_failure(core, "the core sent")
    assert [h["op"] for h, _ in core.frames] == ["hello", "publish"]  # no result after that


@pytest.mark.parametrize("lang", LANGS)
def test_error_frame_from_the_core_ends_the_function_with_its_message(core, lang):
    run_fn(core, lang, "behave")
    core.send({"op": "invoke", "id": 1, "topic": ""}, b"publish:t")
    core.recv()
    core.send({"op": "error", "error": "header too large"})
    assert_clean_failure(core, "header too large")


@pytest.mark.parametrize("lang", LANGS)
def test_core_closing_the_socket_stops_an_idle_function(core, lang):
    run_fn(core, lang, "echo")
    assert core.call(b"x") == b"echo:x"
    core.conn.close()
    core.conn = None
    assert core.wait() == 0, core.stderr()


@pytest.mark.parametrize("lang", LANGS)
def test_core_closing_during_a_request_stops_the_function(core, lang):
    run_fn(core, lang, "behave")
    core.send({"op": "invoke", "id": 1, "topic": ""}, b"publish:t")
    core.recv()
    core.conn.close()
    core.conn = None
    assert core.wait() == 0, core.stderr()


@pytest.mark.parametrize("lang", LANGS)
def test_core_closing_in_the_middle_of_a_frame_stops_the_function(core, lang):
    run_fn(core, lang, "echo")
    core.send_raw(frame({"op": "invoke", "id": 1, "topic": ""}, b"0123456789")[:-4])
    core.conn.close()
    core.conn = None
    assert core.wait() == 0, core.stderr()


# ---- the libraries themselves ----

def test_shared_library_exports_only_the_api_and_fails_without_sedged(monkeypatch):
    path = os.path.join(BUILD, "libsedge.so")
    assert os.path.exists(path), "%s is missing: build first" % path
    lib = ctypes.CDLL(path)
    lib.sedge_strerror.restype = ctypes.c_char_p
    lib.sedge_last_error.restype = ctypes.c_char_p
    lib.sedge_publish.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    assert lib.sedge_strerror(16) == b"the core closed the connection"  # SEDGE_ERR_CLOSED
    for internal in ("sdk_frame_read", "sdk_header_parse", "sdk_connect"):
        assert not hasattr(lib, internal), internal + " leaks out of libsedge.so"
    monkeypatch.delenv("SEDGE_SOCKET", raising=False)
    handler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_void_p)(lambda ev, res, ctx: 0)
    assert lib.sedge_run(handler, None) == 10  # SEDGE_ERR_IO
    assert b"SEDGE_SOCKET is not set" in lib.sedge_last_error()
    assert lib.sedge_publish(b"", b"x", 1, 0) == 2  # SEDGE_ERR_INVALID
    assert lib.sedge_publish(b"t", b"x", 1, 2) == 2
    assert b"qos" in lib.sedge_last_error()


def test_python_errors_are_typed_and_checked_before_connecting(monkeypatch):
    sys.path.insert(0, os.path.join(REPO, "sdk", "python"))
    import sedge
    monkeypatch.delenv("SEDGE_SOCKET", raising=False)
    with pytest.raises(sedge.InvalidError) as e:
        sedge.publish("", b"x")
    assert isinstance(e.value, ValueError) and e.value.code == "invalid"
    with pytest.raises(sedge.InvalidError):
        sedge.publish("t", b"x", qos=2)
    with pytest.raises(sedge.InvalidError):
        sedge.log("loud", "x")
    with pytest.raises(sedge.ConnectError) as e:
        sedge.config()
    assert e.value.code == "io" and "SEDGE_SOCKET is not set" in e.value.message
    assert issubclass(sedge.TimedOutError, TimeoutError)
    for cls, code in [(sedge.DeniedError, "denied"), (sedge.NotFoundError, "not_found"),
                      (sedge.ConflictError, "conflict"), (sedge.TooLargeError, "too_large"),
                      (sedge.QueueFullError, "full"), (sedge.ClosedError, "closed")]:
        assert issubclass(cls, sedge.SedgeError) and cls("m").code == code


# ---- behave, the daemon tests' helper ----

def test_behave_helper_commands(core):
    run_fn(core, "c", "behave", {"BEHAVE_VAR": "v1"})
    d = tempfile.mkdtemp(prefix="behave-", dir="/tmp")
    try:
        with open(os.path.join(d, "b.txt"), "w") as f:
            f.write("contents\n")
        os.mkdir(os.path.join(d, "a-dir"))
        assert core.call(b"sleep:50") == b"slept"
        assert core.call(b"alloc:8") == b"allocated"
        assert core.call(("read:%s/b.txt" % d).encode()) == b"contents\n"
        assert core.call(("read:%s/none" % d).encode()) == b"error: No such file or directory"
        assert core.call(("write:%s/w.txt" % d).encode()) == b"written"
        with open(os.path.join(d, "w.txt")) as f:
            assert f.read() == "x"
        assert core.call(b"write:/nonexistent/w.txt") == b"error: No such file or directory"
        assert core.call(("ls:%s" % d).encode()) == b"a-dir\nb.txt\nw.txt"
        assert core.call(b"ls:/nonexistent") == b"error: No such file or directory"
        assert core.call(b"env:BEHAVE_VAR") == b"v1"
        assert core.call(b"env:BEHAVE_UNSET") == b""
        assert core.call(b"whoami") == ("%d:%d" % (os.getuid(), os.getgid())).encode()
        assert core.call(b"anything else") == b"anything else"
    finally:
        shutil.rmtree(d, ignore_errors=True)
    core.send({"op": "invoke", "id": 99, "topic": ""}, b"exit")
    assert core.wait() == 3


def test_behave_crash_aborts(core):
    run_fn(core, "c", "behave")
    core.send({"op": "invoke", "id": 1, "topic": ""}, b"crash")
    assert core.wait() == -6  # SIGABRT


@pytest.mark.parametrize("name", ["echo", "counter"])
def test_python_examples_find_the_sdk_without_pythonpath(core, name):
    run_fn(core, "python", name, {"PYTHONPATH": None})
    assert core.call(b"1") in (b"echo:1", b"1")
