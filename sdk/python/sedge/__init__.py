"""Sedge function SDK for Python.

A function is a program the Sedge core starts; it calls ``sedge.run(handler)``
and ``handler(topic, payload)`` is called once per invocation. From inside
the handler (or before ``run``) it may publish, use device shadows, invoke
other functions, log and read its configuration. The protocol underneath is
docs/function-ipc.md: length-prefixed frames with a JSON header on the unix
socket named by ``SEDGE_SOCKET``.

Like the C SDK, this module is not thread-safe: call it from the thread that
runs ``run()``. Failures raise ``SedgeError`` (or a subclass naming the
kind); ``.code`` is a short word, ``.message`` the core's sentence.
"""

import json
import os
import socket
import struct
import sys
import traceback

__all__ = [
    "run", "publish", "shadow_get", "shadow_update", "shadow_delete", "invoke",
    "log", "log_debug", "log_info", "log_warn", "log_error", "config", "source", "secret",
    "SedgeError", "DeniedError", "NotFoundError", "ConflictError", "TooLargeError",
    "InvalidError", "TimedOutError", "QueueFullError", "ClosedError", "ProtocolError",
    "ConnectError",
]

SDK_VERSION = "python/0.1"
# A frame, length prefix included, is at most 16 MiB; we accept a length
# field up to 16 MiB so that either way of counting the limit is understood.
FRAME_MAX = 16 << 20
LEVELS = ("debug", "info", "warn", "error")


class SedgeError(Exception):
    """A failed SDK call. ``code``: a short word ("denied", "not_found",
    "conflict", "too_large", "invalid", "timeout", "full", "closed",
    "protocol", "malformed", "io", "failed"); ``message``: what went wrong;
    ``status``: a shadow reply's HTTP-like code; ``document``: a rejected
    shadow document (dict)."""

    code = "failed"

    def __init__(self, message, code=None, status=None, document=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.document = document

    def __str__(self):
        return self.message


class DeniedError(SedgeError):
    """No route allows it (or the core refused the function)."""
    code = "denied"


class NotFoundError(SedgeError):
    """No such shadow or function."""
    code = "not_found"


class ConflictError(SedgeError):
    """Shadow version conflict (409)."""
    code = "conflict"


class TooLargeError(SedgeError):
    """Over a limit: a shadow document, or a frame's 16 MiB."""
    code = "too_large"


class InvalidError(SedgeError, ValueError):
    """A bad argument, or a document the core rejected (400)."""
    code = "invalid"


class TimedOutError(SedgeError, TimeoutError):
    """The invoked function timed out."""
    code = "timeout"


class QueueFullError(SedgeError):
    """The target's queue is full."""
    code = "full"


class ClosedError(SedgeError):
    """The core closed the connection (it stops the function so)."""
    code = "closed"


class ProtocolError(SedgeError):
    """The core sent something unreadable or unexpected."""
    code = "protocol"


class ConnectError(SedgeError):
    """Cannot reach the core: not started by sedged?"""
    code = "io"


_BY_CODE = {
    c.code: c for c in (DeniedError, NotFoundError, ConflictError, TooLargeError,
                        InvalidError, TimedOutError, QueueFullError)
}
# Reply codes, and the sentences the core puts in "error" for its own
# failures, to the SDK's codes. A sentence must match whole, so that an
# invoked function's own message ("timed out reading the sensor") is not
# taken for the core's.
_WORDS = {
    "denied": "denied", "not_found": "not_found", "not found": "not_found",
    "no such function": "not_found", "timed out": "timeout", "timeout": "timeout",
    "queue full": "full", "full": "full", "too_large": "too_large", "too large": "too_large",
    "invalid": "invalid", "conflict": "conflict",
}
_STATUS = {400: "invalid", 403: "denied", 404: "not_found", 409: "conflict", 413: "too_large"}


def _reply_error(header, payload):
    """The SedgeError for a failed reply."""
    code = header.get("code")
    error = header.get("error") if isinstance(header.get("error"), str) else None
    status = None
    kind = None
    if isinstance(code, int) and not isinstance(code, bool):
        status = code
    elif isinstance(code, str) and code.isdigit():
        status = int(code)
    elif isinstance(code, str):
        kind = _WORDS.get(code.lower())
    if status is not None:
        kind = _STATUS.get(status)
    elif kind is None and error:  # no code, or "failed" / a word we do not know
        kind = _WORDS.get(error.lower())
    document = None
    if payload:
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            document = None
    message = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        message = document["message"]
    message = message or error or (code if isinstance(code, str) else None) or "the request failed"
    cls = _BY_CODE.get(kind, SedgeError)
    return cls(message, code=kind or "failed", status=status,
               document=document if isinstance(document, dict) else None)


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError("duplicate key %r" % key)
        seen[key] = value
    return seen


class _Connection:
    """The one connection to the core; once it ends, it stays ended."""

    def __init__(self):
        self.sock = None
        self.ended = None      # the SedgeError that ended it
        self.next_req = 1
        self.running = False
        self.source = ""       # the current invocation's source

    def connect(self):
        if self.ended is not None:
            raise type(self.ended)(self.ended.message, code=self.ended.code)
        if self.sock is not None:
            return
        env = {}
        for name in ("SEDGE_SOCKET", "SEDGE_FUNCTION", "SEDGE_TOKEN"):
            env[name] = os.environ.get(name, "")
            if not env[name]:
                raise ConnectError(
                    "%s is not set: a Sedge function must be started by sedged "
                    "(deploy it in a group, then sedgectl invoke)" % name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(env["SEDGE_SOCKET"])
        except OSError as e:
            sock.close()
            raise ConnectError("cannot connect to the core at %s: %s"
                               % (env["SEDGE_SOCKET"], e.strerror or e)) from None
        self.sock = sock
        try:
            self._write({"op": "hello", "function": env["SEDGE_FUNCTION"],
                         "token": env["SEDGE_TOKEN"], "sdk": SDK_VERSION}, b"")
            header, _ = self._read()
            if header["op"] == "error":
                raise ProtocolError("the core refused the hello: %s"
                                    % header.get("error", "no reason given"))
            if header["op"] != "hello":
                raise ProtocolError('the core answered the hello with op "%s"' % header["op"])
            if not isinstance(header.get("ok"), bool):
                raise ProtocolError('the core\'s hello reply has no boolean "ok"', code="malformed")
            if not header["ok"]:
                raise DeniedError("the core refused function %s: %s"
                                  % (env["SEDGE_FUNCTION"], header.get("error", "no reason given")))
        except SedgeError as e:
            self.fail(e)
            raise

    def fail(self, error):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.ended is None:
            self.ended = error

    def _recv_exact(self, n, started):
        chunks = []
        while n > 0:
            try:
                chunk = self.sock.recv(min(n, 1 << 20))
            except ConnectionResetError:
                chunk = b""
            except OSError as e:
                raise ConnectError("reading from the core's socket failed: %s" % e) from None
            if not chunk:
                raise ClosedError("the core closed the connection in the middle of a frame"
                                  if started or chunks else "the core closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read(self):
        (length,) = struct.unpack(">I", self._recv_exact(4, False))
        if length > FRAME_MAX:
            raise TooLargeError("the core sent a frame of %d bytes, over the 16 MiB limit" % length)
        if length < 4:
            raise ProtocolError("the core sent a frame of %d bytes, too short for a header "
                                "length" % length, code="malformed")
        body = self._recv_exact(length, True)
        (header_len,) = struct.unpack(">I", body[:4])
        if header_len > length - 4:
            raise ProtocolError("the core sent a header of %d bytes in a frame of %d bytes"
                                % (header_len, length), code="malformed")
        try:
            header = json.loads(body[4:4 + header_len].decode("utf-8"),
                                object_pairs_hook=_no_duplicates)
        except (ValueError, UnicodeDecodeError):
            header = None
        if not isinstance(header, dict):
            raise ProtocolError("the core sent a header that is not a JSON object",
                                code="malformed")
        if not isinstance(header.get("op"), str):
            raise ProtocolError('the core sent a header without a string "op"', code="malformed")
        return header, body[4 + header_len:]

    def _write(self, header, payload):
        try:
            head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidError("a name or topic is not valid UTF-8 text") from None
        if 8 + len(head) + len(payload) > FRAME_MAX:
            raise TooLargeError("a frame of %d payload bytes is over the socket's 16 MiB limit"
                                % len(payload))
        frame = struct.pack(">II", 4 + len(head) + len(payload), len(head)) + head
        try:
            if len(payload) < 65536:
                self.sock.sendall(frame + payload)  # one write for the usual small frame
            else:
                self.sock.sendall(frame)
                self.sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            raise ClosedError("the core closed the connection") from None
        except OSError as e:
            raise ConnectError("writing to the core's socket failed: %s" % e) from None

    def send(self, header, payload=b""):
        """Send one frame; errors other than a refused argument end the connection."""
        self.connect()
        try:
            self._write(header, payload)
        except (InvalidError, TooLargeError):
            raise
        except SedgeError as e:
            self.fail(e)
            raise

    def receive(self):
        self.connect()
        try:
            header, payload = self._read()
            if header["op"] == "error":
                raise ProtocolError("the core reported a protocol error: %s"
                                    % header.get("error", "no reason given"))
            return header, payload
        except SedgeError as e:
            self.fail(e)
            raise

    def request(self, header, payload=b""):
        """Send a request and wait for its reply; return the reply's payload."""
        req = self.next_req
        self.next_req += 1
        header = dict(header, req=req)
        self.send(header, payload)
        reply, data = self.receive()
        try:
            if reply["op"] != "reply":
                raise ProtocolError('the core sent op "%s" while this function waited for '
                                    "the reply to request %d" % (reply["op"], req))
            if reply.get("req") != req or isinstance(reply.get("req"), bool):
                raise ProtocolError("the core sent a reply that is not for request %d, "
                                    "the one outstanding" % req)
            if not isinstance(reply.get("ok"), bool):
                raise ProtocolError('the core sent a reply without a boolean "ok"',
                                    code="malformed")
        except SedgeError as e:
            self.fail(e)
            raise
        if not reply["ok"]:
            raise _reply_error(reply, data)
        return data


_conn = _Connection()


def _as_bytes(value, what):
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidError("%s must be bytes or str, not %s" % (what, type(value).__name__))


def _name(value, what):
    if not isinstance(value, str) or not value:
        raise InvalidError("%s must be a non-empty string" % what)
    return value


def _json_doc(data):
    if not data:
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("the core sent a document that is not JSON", code="malformed") from None
    return doc if doc is not None else {}


def _serve(handler, header, payload):
    """One invocation: call the handler and answer with its result."""
    if header["op"] != "invoke":
        error = ProtocolError('the core sent op "%s" where an invocation was expected'
                              % header["op"])
        _conn.fail(error)
        raise error
    id_ = header.get("id")
    if not isinstance(id_, int) or isinstance(id_, bool):
        error = ProtocolError("the core sent an invocation without an integer id", code="malformed")
        _conn.fail(error)
        raise error
    topic = header.get("topic") if isinstance(header.get("topic"), str) else ""
    _conn.source = header.get("source") if isinstance(header.get("source"), str) else ""
    try:
        result = handler(topic, payload)
        if result is not None and not isinstance(result, (bytes, bytearray, memoryview, str)):
            raise TypeError("the handler returned %s; return bytes, str or None"
                            % type(result).__name__)
        out = _as_bytes(result, "the result")
    except Exception as e:  # the invoker gets the failure, the function lives on
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        message = (str(e) or type(e).__name__).encode("utf-8", "replace").decode("utf-8")
        _conn.send({"op": "result", "id": id_, "ok": False, "error": message})
        return
    finally:
        _conn.source = ""
    try:
        _conn.send({"op": "result", "id": id_, "ok": True}, out)
    except TooLargeError:
        _conn.send({"op": "result", "id": id_, "ok": False,
                    "error": "the function's result is over the 16 MiB frame limit"})


def run(handler):
    """Serve invocations with ``handler(topic, payload) -> bytes | str | None``
    until the core stops the function (closes the socket); then return.
    Raises SedgeError when the core cannot be reached or breaks the protocol."""
    if _conn.running:
        raise SedgeError("run() is already running (called from a handler?)", code="busy")
    _conn.connect()
    _conn.running = True
    try:
        while True:
            header, payload = _conn.receive()
            _serve(handler, header, payload)
    except ClosedError:
        return
    finally:
        _conn.running = False


def source():
    """Who sent the current invocation ("thing:NAME", "cloud", "sedgectl"...)."""
    return _conn.source


def publish(topic, payload=b"", qos=0):
    """Publish as this function; raises DeniedError when no route allows it."""
    _name(topic, "topic")
    if qos not in (0, 1) or isinstance(qos, bool):
        raise InvalidError("qos must be 0 or 1, not %r" % (qos,))
    _conn.request({"op": "publish", "topic": topic, "qos": qos}, _as_bytes(payload, "payload"))


def _shadow(action, thing, name, document=b""):
    header = {"op": "shadow", "action": action, "thing": _name(thing, "thing")}
    if name:
        header["name"] = _name(name, "name")
    return _json_doc(_conn.request(header, document))


def shadow_get(thing, name=None):
    """The shadow's document (dict); NotFoundError when there is none."""
    return _shadow("get", thing, name)


def shadow_update(thing, document, name=None):
    """Apply an update (dict, or JSON as str/bytes); returns the accepted document."""
    if isinstance(document, dict):
        data = json.dumps(document).encode("utf-8")
    else:
        data = _as_bytes(document, "document")
    if not data:
        raise InvalidError("the update document is empty")
    return _shadow("update", thing, name, data)


def shadow_delete(thing, name=None):
    """Delete the shadow; returns the core's answer (dict)."""
    return _shadow("delete", thing, name)


def invoke(function, payload=b"", async_=False):
    """Invoke another function: its result (bytes), or None once queued (async_)."""
    data = _conn.request({"op": "invoke", "function": _name(function, "function"),
                          "async": bool(async_)}, _as_bytes(payload, "payload"))
    return None if async_ else data


def config():
    """The function's "config" object from the group document ({} when none)."""
    return _json_doc(_conn.request({"op": "config"}))


def secret(id_):
    """The value (str) of a secret resource of the group that this function
    lists in its resources ({"id": ID}); NotFoundError when it does not.
    Never in the environment or a file: only this call gives it."""
    return _conn.request({"op": "secret", "id": _name(id_, "id")}).decode("utf-8")


def log(level, message):
    """A line in the function's log (sedgectl logs NAME); nothing is awaited."""
    if level not in LEVELS:
        raise InvalidError("level must be one of %s, not %r" % (", ".join(LEVELS), level))
    data = _as_bytes(message, "message")[:FRAME_MAX - 256]
    _conn.send({"op": "log", "level": level}, data)


def log_debug(message):
    log("debug", message)


def log_info(message):
    log("info", message)


def log_warn(message):
    log("warn", message)


def log_error(message):
    log("error", message)
