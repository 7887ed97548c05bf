"""docs/reference.md against the parsers: every key the configuration
parser (sedged --config) and the group document parser (sedgectl deploy)
accept is in the reference, and every key the reference lists is
accepted — found by asking the parsers themselves, not by reading them.

How: each section of the reference whose heading is a JSON path in
backquotes (### `listeners[]`, ### `connectors[].parameters`, `modbus`)
lists its keys in a table. For each section the test builds a document
with an object at that path holding candidate keys — every identifier-like
string literal of src/ (a key a parser accepts is spelled in its source),
and the section's own keys — and reads which of them the parser reports
as unknown. So a new key takes a row in its section; a new object takes a
section (a row whose type says "object", unless "free-form", needs one).
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SEDGE_BUILD", REPO / "build"))
REFERENCE = REPO / "docs" / "reference.md"
CHUNK = 15  # candidates per document: the parsers' error text stays short

HEADING = re.compile(r"^#{3,4} `([^`]+)`(?:, `([^`]+)`)?\s*$")


def sections():
    """[(document, path, type or None, {key: type cell})] from the reference."""
    out, document, current = [], None, None
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].lower()
            document = ("config" if "configuration" in title else
                        "group" if "group document" in title or "connectors" in title else None)
            current = None
            continue
        m = HEADING.match(line)
        if m and document:
            current = (document, m.group(1), m.group(2), {})
            out.append(current)
            continue
        if line.startswith("#"):
            current = None
        if current and line.startswith("| `"):
            cells = line.split("|")
            for key in re.findall(r"`([^`]+)`", cells[1]):
                current[3][key] = cells[2].strip()
    return out


def candidates():
    names = set()
    for src in (REPO / "src").rglob("*.c"):
        names.update(re.findall(r'"([a-z][a-z0-9_]{0,40})"', src.read_text(errors="replace")))
    return names


def build_probe(path, obj, type_):
    """A document with `obj` at `path`; the first array element on the way
    is a connector of `type_` when the section is one type's."""
    if path == "(top level)":
        return dict(obj)
    root = {}
    cur, typed = root, False
    segs = path.split(".")
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        name, is_array = seg[:-2] if seg.endswith("[]") else seg, seg.endswith("[]")
        child = obj if last else {}
        if is_array:
            if type_ and not typed:
                child.update({"name": "probe", "type": type_})
                typed = True
            cur[name] = [child]
        else:
            cur[name] = child
        cur = child
    return root


def shown_path(path):
    return "" if path == "(top level)" else path.replace("[]", "[0]") + "."


def unknown_keys(output, path, keys):
    prefix = shown_path(path)
    return {k for k in keys
            if re.search(r"(^|[\s:;])%s: unknown (key|parameter)" % re.escape(prefix + k), output,
                         re.M)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(tmp, doc):
    base = {"data_dir": "data",
            "listeners": [{"type": "tcp", "bind": "127.0.0.1:%d" % free_port()}]}
    base.update(doc)
    cfg = tmp / "probe.json"
    cfg.write_text(json.dumps(base, indent=1))
    r = subprocess.run([str(BUILD / "sedged"), "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30, cwd=tmp)
    assert r.returncode == 2, "a probe config was accepted: %s" % r.stderr
    return r.stderr


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    cfg = tmp / "sedge.json"
    cfg.write_text(json.dumps({"data_dir": "data", "listeners": [
        {"type": "tcp", "bind": "127.0.0.1:%d" % free_port()}]}))
    log = open(tmp / "sedged.log", "wb")
    p = subprocess.Popen([str(BUILD / "sedged"), "--config", str(cfg)], stdout=log, stderr=log,
                         cwd=tmp)
    deadline = time.monotonic() + 30
    while not (tmp / "data" / "admin.sock").exists():
        assert p.poll() is None and time.monotonic() < deadline, (tmp / "sedged.log").read_text()
        time.sleep(0.02)
    yield tmp
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    log.close()


def run_group(tmp, doc):
    base = {"group": "probe"}
    base.update(doc)
    path = tmp / "probe-group.json"
    path.write_text(json.dumps(base))
    r = subprocess.run([str(BUILD / "sedgectl"), "--data-dir", str(tmp / "data"), "deploy",
                        str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, "a probe group was accepted: %s" % r.stdout
    return r.stderr


SECTIONS = sections()


def test_the_reference_has_the_sections_of_both_documents():
    paths = {(d, p) for d, p, _, _ in SECTIONS}
    for want in [("config", "(top level)"), ("config", "listeners[]"), ("config", "limits"),
                 ("config", "cloud.spool"), ("group", "(top level)"), ("group", "functions[]"),
                 ("group", "connectors[]"), ("group", "connectors[].parameters")]:
        assert want in paths, want
    assert sum(len(keys) for _, _, _, keys in SECTIONS) > 150


def test_every_object_key_has_its_own_section():
    have = {(d, p) for d, p, _, _ in SECTIONS}
    missing = []
    for document, path, _, keys in SECTIONS:
        for key, type_cell in keys.items():
            if "object" in type_cell and "free-form" not in type_cell:
                child = ("" if path == "(top level)" else path + ".") + key
                child += "[]" if type_cell.startswith("array") else ""
                if (document, child) not in have:
                    missing.append("%s %s" % (document, child))
    assert not missing, "object keys without a section: %s" % missing


@pytest.mark.parametrize("section", SECTIONS,
                         ids=["%s %s%s" % (d, p, " " + t if t else "") for d, p, t, _ in SECTIONS])
def test_the_parser_accepts_exactly_the_keys_the_reference_lists(section, tmp_path, daemon):
    document, path, type_, documented = section
    pool = sorted(candidates() | set(documented))
    accepted = set()
    for i in range(0, len(pool), CHUNK):
        chunk = pool[i:i + CHUNK]
        probe = build_probe(path, {k: None for k in chunk}, type_)
        out = run_config(tmp_path, probe) if document == "config" else run_group(daemon, probe)
        # The probe's own scaffolding ("name", "type" of a typed section's
        # element) is not a candidate of that element's section here.
        accepted |= set(chunk) - unknown_keys(out, path, chunk)
    listed = set(documented)
    assert not accepted - listed, (
        "%s %s: the parser accepts keys docs/reference.md does not list: %s"
        % (document, path, sorted(accepted - listed)))
    assert not listed - accepted, (
        "%s %s: docs/reference.md lists keys the parser refuses: %s"
        % (document, path, sorted(listed - accepted)))
