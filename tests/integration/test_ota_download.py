"""`sedgectl update URL`: bundles downloaded by sedged with libcurl over
HTTPS from a local server (Python's http.server behind ssl, with a
certificate from `sedgectl ca init`): verified against ota.ca_file, resumed
with a Range request after a cut or after kill -9 of the core, refused
when the hash, the certificate or the size is wrong."""

import hashlib
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import TIMEOUT, make_ca, wait_for
from ota_helpers import create_bundle, make_key, release_tree
from test_ota_update import OtaSedge, cores


class FileServer:
    """Serves files over HTTPS with Range support. `cut_after`: the next
    response stops (the connection closes) after that many bytes;
    `chunk_delay`: seconds between 16 KB chunks. Records each request's
    Range header."""

    def __init__(self, directory, certs):
        self.directory = Path(directory)
        self.cut_after = None
        self.chunk_delay = 0.0
        self.ranges = []
        self.served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = server.directory / self.path.lstrip("/")
                if not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                start = 0
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                limit, server.cut_after = server.cut_after, None
                sent = 0
                while sent < len(body):
                    chunk = body[sent:sent + 16384]
                    if limit is not None and sent + len(chunk) > limit:
                        chunk = chunk[:limit - sent]
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:
                        return
                    sent += len(chunk)
                    server.served += len(chunk)
                    if limit is not None and sent >= limit:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if server.chunk_delay:
                        time.sleep(server.chunk_delay)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(certs / "core.pem"), str(certs / "core.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return "https://localhost:%d/%s" % (self.port, name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def keys(tmp_path):
    return make_key(tmp_path / "keys")


@pytest.fixture
def certs(tmp_path):
    return make_ca(tmp_path / "web", core_name="localhost", sans=["localhost"])


@pytest.fixture
def server(tmp_path, certs):
    (tmp_path / "www").mkdir()
    s = FileServer(tmp_path / "www", certs)
    yield s
    s.close()


def make_core(tmp_path, keys, certs, **ota):
    s = OtaSedge(tmp_path / "core", keys[1])
    s.extra["ota"].update({"ca_file": str(certs / "ca.pem")}, **ota)
    s.write_config()
    s.start()
    return s


@pytest.fixture
def core(tmp_path, keys, certs):
    s = make_core(tmp_path, keys, certs)
    yield s
    s.shutdown()


def publish(tmp_path, server, keys, version, blob=0):
    tree = release_tree(tmp_path / ("tree-" + version))
    if blob:
        (tree / "share").mkdir()
        (tree / "share" / "blob").write_bytes(os.urandom(blob))
    b = create_bundle(tree, version, keys[0], server.directory / (version + ".sedge"))
    return b, hashlib.sha256(b.read_bytes()).hexdigest()


def test_an_update_from_an_https_url_commits(tmp_path, keys, server, core):
    b, sha = publish(tmp_path, server, keys, "0.2.0")
    r = core.update(server.url(b.name), "--sha256", sha)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "committed: version 0.2.0 runs" in r.stdout
    st = core.update_status()
    assert st["running_version"] == "0.2.0" and st["source"] == server.url(b.name)
    assert server.ranges == [None]
    assert not list((Path(st["root"]) / "downloads").iterdir())


def test_a_cut_download_is_resumed_with_a_range_request(tmp_path, keys, server, core):
    b, sha = publish(tmp_path, server, keys, "0.2.0")
    size = b.stat().st_size
    server.cut_after = 300000
    r = core.update(server.url(b.name), "--sha256", sha)
    assert r.returncode == 0, r.stdout + r.stderr
    assert server.ranges[0] is None and server.ranges[1] == "bytes=300000-"
    assert server.served == size  # nothing fetched twice


def test_kill_9_during_the_download_resumes_after_the_restart(tmp_path, keys, server, core):
    b, sha = publish(tmp_path, server, keys, "0.2.0", blob=4 << 20)
    server.chunk_delay = 0.02  # about 0.8 MB/s: the download takes a while
    r = core.update(server.url(b.name), "--sha256", sha, "--no-wait")
    assert r.returncode == 0, r.stderr
    got = wait_for(lambda: (lambda s: s["phase"] == "downloading" and s["bytes_done"] > 200000
                            and s)(core.update_status()), TIMEOUT, interval=0.05,
                   what="the download to be under way")
    assert 0 < got["bytes_total"] and got["bytes_done"] < got["bytes_total"]
    core.kill9()
    assert not cores(core.config_path)
    part = list((core.data_dir / "ota" / "downloads").glob("*.part"))
    assert len(part) == 1 and part[0].stat().st_size > 0
    kept = part[0].stat().st_size
    server.chunk_delay = 0
    core.start()
    st = core.update_status()
    assert st["phase"] == "failed" and "interrupted" in st["reason"]
    assert "downloading" in st["reason"] and st["running_version"] == "0.1.0"
    r = core.update(server.url(b.name), "--sha256", sha)
    assert r.returncode == 0, r.stdout + r.stderr
    assert server.ranges[-1] == "bytes=%d-" % kept
    assert core.update_status()["running_version"] == "0.2.0"


def test_a_wrong_hash_an_unknown_server_and_a_missing_file_are_refused(
        tmp_path, keys, server, core):
    b, sha = publish(tmp_path, server, keys, "0.2.0")
    r = core.update(server.url(b.name), "--sha256", "0" * 64)
    assert r.returncode == 1 and "does not have the SHA-256" in r.stderr
    r = core.update(server.url("nothing.sedge"))
    assert r.returncode == 1 and "HTTP 404" in r.stderr
    st = core.update_status()
    assert st["phase"] == "failed" and st["running_version"] == "0.1.0"
    assert not list((Path(st["root"]) / "downloads").iterdir())


def test_a_server_certificate_not_from_the_configured_ca_is_refused(
        tmp_path, keys, server):
    other = make_ca(tmp_path / "other", core_name="localhost", sans=["localhost"])
    s = make_core(tmp_path, keys, other)
    try:
        b, sha = publish(tmp_path, server, keys, "0.2.0")
        r = s.update(server.url(b.name), "--sha256", sha)
        assert r.returncode == 1 and "certificate" in r.stderr.lower(), r.stderr
        assert s.update_status()["running_version"] == "0.1.0"
    finally:
        s.shutdown()


def test_a_bundle_over_the_size_limit_is_refused(tmp_path, keys, certs, server):
    s = make_core(tmp_path, keys, certs, max_bundle_bytes=1 << 20)
    try:
        b, sha = publish(tmp_path, server, keys, "0.2.0", blob=2 << 20)
        r = s.update(server.url(b.name), "--sha256", sha)
        assert r.returncode == 1 and "larger than the limit" in r.stderr, r.stderr
        assert not list((s.data_dir / "ota" / "downloads").iterdir())
    finally:
        s.shutdown()


def test_the_rate_limit_holds_and_a_stop_cuts_the_download_short(tmp_path, keys, certs, server):
    rate = 256 * 1024
    s = make_core(tmp_path, keys, certs, max_rate_bytes_s=rate)
    try:
        b, sha = publish(tmp_path, server, keys, "0.2.0", blob=8 << 20)
        r = s.update(server.url(b.name), "--sha256", sha, "--no-wait")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: s.update_status()["bytes_done"] > 0, TIMEOUT, what="the download")
        t0, d0 = time.monotonic(), s.update_status()["bytes_done"]
        time.sleep(2)
        d1, t1 = s.update_status()["bytes_done"], time.monotonic()
        # Never more than twice the limit over two seconds (curl averages).
        assert 0 < d1 - d0 <= 2 * rate * (t1 - t0), (d0, d1)
        assert s.update_status()["phase"] == "downloading"
    finally:
        started = time.monotonic()
        s.shutdown()  # SIGTERM mid-download: the download stops, the core exits
        assert time.monotonic() - started < 15
    part = list((s.data_dir / "ota" / "downloads").glob("*.part"))
    assert len(part) == 1 and 0 < part[0].stat().st_size < b.stat().st_size
