"""A fake Sedge core for the SDK tests: the function side of
docs/function-ipc.md without sedged.

It listens on a unix socket, starts a function with the environment sedged
would give it, checks the hello and its token, sends invocations, answers
the function's requests with canned replies, and records every frame it got
so that tests can look at what the SDK sent.
"""
import json
import os
import socket
import struct
import subprocess
import time

FRAME_MAX = 16 << 20
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def frame(header, payload=b"", ensure_ascii=False):
    """A frame's bytes; `header` is a dict or already-encoded bytes."""
    if isinstance(header, dict):
        header = json.dumps(header, ensure_ascii=ensure_ascii).encode("utf-8")
    return struct.pack(">II", 4 + len(header) + len(payload), len(header)) + header + payload


def default_reply(header, payload):
    """What a well-disposed core answers: (reply fields, payload)."""
    op = header["op"]
    if op == "shadow":
        if header.get("action") == "update":
            return {"ok": True}, payload
        return {"ok": True}, b'{"state":{"reported":{"on":true}},"version":1}'
    if op == "config":
        return {"ok": True}, b"{}"
    return {"ok": True}, b""


class FakeCore:
    def __init__(self, tmpdir, function="fn", token="c0ffee42"):
        self.dir = str(tmpdir)
        self.path = os.path.join(self.dir, "core.sock")
        self.function = function
        self.token = token
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(4)
        self.listener.settimeout(10)
        self.conn = None
        self.proc = None
        self.frames = []     # every (header, payload) received, in order
        self.logs = []       # (level, text) of log frames
        self.requests = []   # (header, payload) of requests, in order
        # op -> callable(header, payload) -> (fields, payload): the canned replies
        self.replies = {}
        self.next_id = 1
        self.stderr_path = os.path.join(self.dir, "stderr.txt")

    # -- the function's process --

    def start(self, argv, env=None, connect=True):
        full_env = dict(os.environ)
        for name in ("SEDGE_SOCKET", "SEDGE_FUNCTION", "SEDGE_TOKEN", "SEDGE_ENCODING"):
            full_env.pop(name, None)
        full_env.update({
            "SEDGE_SOCKET": self.path,
            "SEDGE_FUNCTION": self.function,
            "SEDGE_TOKEN": self.token,
            "SEDGE_ENCODING": "binary",
            "PYTHONPATH": os.path.join(REPO, "sdk", "python"),
        })
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr)
        if connect:
            self.accept()
        return self

    def accept(self, timeout=10):
        deadline = time.monotonic() + timeout
        self.listener.settimeout(0.1)
        while True:
            try:
                self.conn, _ = self.listener.accept()
                break
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise AssertionError("the function exited (%s) before connecting: %s"
                                         % (self.proc.returncode, self.stderr()))
                if time.monotonic() > deadline:
                    raise AssertionError("the function did not connect")
        self.conn.settimeout(10)

    def wait(self, timeout=10):
        """The function's exit status (negative: killed by that signal)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the function did not exit: %s" % self.stderr()) from None

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop_function(self):
        """Stop the function (as stop()) but keep listening for another."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._stderr.close()
            assert "Sanitizer" not in self.stderr(), self.stderr()

    def stop(self):
        """Stop the function as sedged does: close the socket; kill if it lingers."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._stderr.close()
        self.listener.close()

    # -- frames --

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise EOFError("the function closed the connection")
            data += chunk
        return data

    def recv(self):
        """The next frame from the function, checked against the protocol."""
        (length,) = struct.unpack(">I", self._recv_exact(4))
        assert 4 <= length and 4 + length <= FRAME_MAX, "bad frame length %d" % length
        body = self._recv_exact(length)
        (header_len,) = struct.unpack(">I", body[:4])
        assert header_len <= length - 4
        header = json.loads(body[4:4 + header_len].decode("utf-8"))
        assert isinstance(header, dict) and isinstance(header.get("op"), str), header
        payload = body[4 + header_len:]
        self.frames.append((header, payload))
        return header, payload

    def send(self, header, payload=b"", ensure_ascii=False):
        self.conn.sendall(frame(header, payload, ensure_ascii))

    def send_raw(self, data):
        self.conn.sendall(data)

    def closed_by_function(self, timeout=10):
        """True when the function closed its end (EOF) within the timeout."""
        self.conn.settimeout(timeout)
        try:
            while True:
                if not self.conn.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    # -- the protocol --

    def handshake(self, ok=True, error="bad token"):
        header, payload = self.recv()
        assert header["op"] == "hello", header
        self.hello = header
        if ok and header.get("token") == self.token and header.get("function") == self.function:
            self.send({"op": "hello", "ok": True})
            return header
        self.send({"op": "hello", "ok": False, "error": error})
        self.conn.close()
        self.conn = None
        return header

    def answer(self, header, payload):
        """Reply to one request from the function."""
        self.requests.append((header, payload))
        canned = self.replies.get(header["op"], default_reply)
        fields, data = canned(header, payload) if callable(canned) else canned
        self.send(dict({"op": "reply", "req": header["req"]}, **fields), data)

    def invoke(self, payload=b"", topic="", source="sedgectl", id_=None, extra=None,
               ensure_ascii=False):
        """Send an invocation and serve the function's requests until its
        result: returns the result's (header, payload)."""
        if id_ is None:
            id_ = self.next_id
            self.next_id += 1
        header = {"op": "invoke", "id": id_, "topic": topic, "source": source}
        header.update(extra or {})
        self.send(header, payload, ensure_ascii)
        return self.serve_until_result()

    def serve_until_result(self):
        while True:
            header, payload = self.recv()
            op = header["op"]
            if op == "result":
                return header, payload
            if op == "log":
                assert "req" not in header, "a log frame expects no reply"
                self.logs.append((header.get("level"), payload.decode("utf-8", "replace")))
                continue
            assert op in ("publish", "shadow", "invoke", "config"), "unexpected op %r" % op
            assert isinstance(header.get("req"), int), header
            self.answer(header, payload)

    def call(self, payload, **kw):
        """Invoke and return the result payload, asserting success."""
        header, data = self.invoke(payload, **kw)
        assert header["ok"] is True, header
        return data
