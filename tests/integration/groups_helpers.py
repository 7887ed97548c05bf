"""Helpers for the group and shadow tests: group documents, deployments
through sedgectl, and a shadow requester that waits for its reply.

Everything here builds on conftest (Sedge, PahoClient); nothing sleeps.
"""

import json
import queue
import time

from conftest import TIMEOUT

_written = [0]


def group_doc(name, things, routes, **sections):
    """A group document: `things` are names, `routes` (source, filter,
    target) triples or dicts."""
    doc = {"group": name, "things": [{"name": t} for t in things],
           "routes": [r if isinstance(r, dict) else
                      {"source": r[0], "filter": r[1], "target": r[2]} for r in routes]}
    doc.update(sections)
    return doc


def write_doc(sedge, doc, name=None):
    """Write `doc` (a dict, or str/bytes written as they are) beside the
    config; returns the path."""
    _written[0] += 1
    path = sedge.root / (name or "group-%d.json" % _written[0])
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    elif isinstance(doc, str):
        path.write_text(doc)
    else:
        path.write_text(json.dumps(doc, indent=1))
    return path


def deploy(sedge, doc):
    """`sedgectl deploy` of `doc`; returns the finished process."""
    return sedge.ctl("deploy", write_doc(sedge, doc))


def deploy_ok(sedge, doc):
    """Deploy and assert success; returns the new active version number."""
    r = deploy(sedge, doc)
    assert r.returncode == 0, "deploy failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr)
    return active_group(sedge)["version"]


def deployments(sedge):
    r = sedge.ctl("deployments", "--json")
    assert r.returncode == 0, "sedgectl deployments failed: %s" % r.stderr
    out = json.loads(r.stdout)
    return out["deployments"] if isinstance(out, dict) else out


def active_version(sedge):
    """The active deployment's version (0 when none)."""
    r = sedge.ctl("deployments", "--json")
    assert r.returncode == 0, "sedgectl deployments failed: %s" % r.stderr
    out = json.loads(r.stdout)
    return out.get("active", 0) if isinstance(out, dict) else 0


def by_version(sedge):
    return {d["version"]: d for d in deployments(sedge)}


def active_group(sedge):
    """status --json's "group" (None when no group is deployed)."""
    return sedge.status().get("group")


def route_counters(sedge):
    return {r["route"]: r["messages"] for r in sedge.status().get("routes", [])}


def shadow_topic(thing, op, name=None):
    base = "$aws/things/%s/shadow" % thing
    if name is not None:
        base += "/name/%s" % name
    return base + "/" + op


class ShadowDevice:
    """A paho client talking to the shadow service: it subscribes to the
    shadow's reply topics and `request()` returns the reply to one request,
    matched by clientToken."""

    def __init__(self, sedge, client_id, thing=None, version=5, name=None, cert=None,
                 subscribe=True):
        self.thing = thing or client_id
        self.name = name
        self.client = sedge.client(client_id, version=version, cert=cert)
        self.others = []  # messages read while waiting for a particular one
        self.seq = 0
        if subscribe:
            acks = self.client.subscribe(self.topic("+/+"), 1)
            assert acks in ([0], [1]), "shadow reply subscription refused: %r" % acks

    def topic(self, op):
        return shadow_topic(self.thing, op, self.name)

    def token(self):
        self.seq += 1
        return "%s-%d-%d" % (self.client.client_id[:20], self.seq, int(time.monotonic() * 1000))

    def send(self, op, payload, qos=1):
        """Publish a request; `payload` is a dict (JSON-encoded) or bytes.
        Returns the PUBLISH info (with wait, the PUBACK seen)."""
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        return self.client.publish(self.topic(op), data, qos=qos)

    def wait(self, predicate, timeout=TIMEOUT, what="a shadow message"):
        """The first message (kept aside ones first) for which
        predicate(topic, json) holds; the rest are kept."""
        for i, (t, d) in enumerate(self.others):
            if predicate(t, d):
                return self.others.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.client.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("%s: no %s within %d s; saw %r" % (
                    self.client.client_id, what, timeout, self.others[-10:])) from None
            try:
                d = json.loads(m.payload)
            except ValueError:
                d = m.payload
            if predicate(m.topic, d):
                return m.topic, d
            self.others.append((m.topic, d))

    def request(self, op, payload=None, token=True, timeout=TIMEOUT):
        """Send `op` (update/get/delete) and return (outcome, reply) where
        outcome is "accepted" or "rejected". With token, a clientToken is
        added to dict payloads and the reply is matched by it."""
        if payload is None:
            payload = {}
        tok = None
        if token and isinstance(payload, dict):
            payload = dict(payload)
            tok = payload.setdefault("clientToken", self.token())
        self.send(op, payload)
        replies = (self.topic(op + "/accepted"), self.topic(op + "/rejected"))

        def mine(t, d):
            if t not in replies:
                return False
            return tok is None or (isinstance(d, dict) and d.get("clientToken") == tok)
        t, d = self.wait(mine, timeout, what="reply to %s" % op)
        return t.rsplit("/", 1)[1], d

    def accepted(self, op, payload=None):
        outcome, reply = self.request(op, payload)
        assert outcome == "accepted", "%s rejected: %r" % (op, reply)
        return reply

    def rejected(self, op, payload=None, token=True):
        outcome, reply = self.request(op, payload, token=token)
        assert outcome == "rejected", "%s accepted, expected a rejection: %r" % (op, reply)
        return reply

    def next_on(self, op, timeout=TIMEOUT):
        """The next message on this shadow's `op` topic (e.g. update/delta)."""
        topic = self.topic(op)
        return self.wait(lambda t, d: t == topic, timeout, what=op)[1]
