"""An HTTP server for the http-sink tests (Python's http.server): it
records every POST (path, headers, body) and answers what it is told.

  POST anything     recorded; answered with the current status (default 200)
                    after the current delay (default 0)
  GET /received     the POSTs so far: [{"path", "headers", "body_b64"}]
  GET /control?status=503&delay=0.5   change the answers
  usage: http_server.py PORT
Prints "ready" once it listens.
"""
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Lock()
received = []
state = {"status": 200, "delay": 0.0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/received":
            with lock:
                body = json.dumps(received).encode()
            return self.reply(200, body)
        if url.path == "/control":
            q = parse_qs(url.query)
            with lock:
                if "status" in q:
                    state["status"] = int(q["status"][0])
                if "delay" in q:
                    state["delay"] = float(q["delay"][0])
            return self.reply(200)
        self.reply(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with lock:
            status, delay = state["status"], state["delay"]
        if delay:
            time.sleep(delay)
        if 200 <= status < 300:
            with lock:
                received.append({"path": self.path, "headers": dict(self.headers.items()),
                                 "body_b64": base64.b64encode(body).decode()})
        self.reply(status)


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
