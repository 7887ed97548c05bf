"""Helpers for the connector tests: group documents with connectors, the
real peers they talk to (a pymodbus server, socat pty pairs, Python's
http.server), all on loopback or pseudo-terminals, each a process of its
own that the test ends.

Everything waits with timeouts; nothing sleeps blindly.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import BUILD, TIMEOUT, free_port, wait_for
from groups_helpers import deploy_ok, group_doc

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
CONNECTORS = BUILD / "connectors"


def need(program):
    if not shutil.which(program):
        pytest.fail("%s is missing: make deps installs it (scripts/deps.sh)" % program)


def connector_group(connectors, routes, things=("t1", "t2")):
    """A group with things t1, t2 (t2 sends requests, t1 reads replies by
    default), `routes` as (source, filter, target) and `connectors`."""
    return group_doc("conn", list(things), list(routes), connectors=list(connectors))


def status_of(sedge, name):
    """`sedgectl functions --json`'s entry of connector NAME."""
    r = sedge.ctl("functions", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for f in out["functions"] if isinstance(out, dict) else out:
        if f["name"] == "connector:" + name:
            return f
    return None


def wait_connector(sedge, name, predicate=lambda f: True, what="the connector"):
    return wait_for(lambda: (lambda f: f if f and predicate(f) else None)(status_of(sedge, name)),
                    what=what)


def connector_pid(sedge, name):
    f = wait_connector(sedge, name, lambda f: f["instances"] and f["instances"][0].get("pid"),
                       what="connector %s running" % name)
    return f["instances"][0]["pid"]


class Peer:
    """A peer process that prints "ready" when it serves."""

    def __init__(self, argv, cwd=None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, cwd=cwd)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.proc.kill()
            raise AssertionError("%s did not start: %s%s" % (argv, line,
                                                             self.proc.stderr.read()))

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def modbus_server(kind, where, baud=None):
    argv = [PYTHON, os.path.join(HERE, "modbus_server.py"), kind, str(where)]
    if baud:
        argv.append(str(baud))
    return Peer(argv)


def http_server(port):
    return Peer([PYTHON, os.path.join(HERE, "http_server.py"), str(port)])


class PtyPair:
    """Two connected pseudo-terminals from socat, as /dev/NAME-a and
    /dev/NAME-b (device resources must be under /dev), readable and
    writable by the connector's user (nobody)."""

    def __init__(self, name):
        need("socat")
        self.a = "/dev/%s-a" % name
        self.b = "/dev/%s-b" % name
        self.proc = None
        self.start()

    def start(self):
        for link in (self.a, self.b):
            if os.path.lexists(link):
                os.unlink(link)
        self.proc = subprocess.Popen(
            ["socat", "pty,raw,echo=0,link=%s" % self.a, "pty,raw,echo=0,link=%s" % self.b],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.a) and os.path.exists(self.b), what="socat's ptys")
        for link in (self.a, self.b):
            os.chmod(os.path.realpath(link), 0o666)

    def stop(self):
        # A socat that did not exit within TIMEOUT of SIGTERM was seen in
        # CI (likely: its stderr was a pipe nobody read, and once full,
        # socat blocks writing to it). Its stderr now goes nowhere, and a
        # socat that still hangs is killed: the test peer, not the product.
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        self.proc = None
        for link in (self.a, self.b):
            if os.path.lexists(link):
                os.unlink(link)
