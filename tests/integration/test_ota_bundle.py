"""Update bundles: `sedgectl bundle create` and `bundle verify`, and every
way a bundle can be refused before anything is installed — unknown key,
bad signature, tampered payload or file, and hostile archives (traversal,
absolute paths, links leaving the tree, devices, hard links, oversized
entries, a decompression bomb, entries the manifest does not list)."""

import json
import tarfile

import pytest

from conftest import run_sedgectl
from ota_helpers import (create_bundle, file_entry, hand_bundle, make_key, manifest_for,
                         release_tree, tar_bytes, write_bundle)

SEDGED = b"#!/bin/sh\nexit 0\n"


@pytest.fixture
def keys(tmp_path):
    return make_key(tmp_path / "keys")


def verify(bundle, pub):
    return run_sedgectl("bundle", "verify", bundle, "--key", pub)


def test_bundle_from_a_release_tree_verifies_and_is_a_plain_tar(tmp_path, keys):
    priv, pub = keys
    tree = release_tree(tmp_path / "tree")
    (tree / "lib" / "libsedge.so.0").symlink_to("libsedge.so")
    bundle = create_bundle(tree, "0.2.0", priv, tmp_path / "b.sedge")
    with tarfile.open(bundle) as t:
        assert t.getnames() == ["manifest.json", "manifest.sig", "release.tar.gz"]
        manifest = json.load(t.extractfile("manifest.json"))
    paths = {f["path"]: f for f in manifest["files"]}
    assert paths["bin/sedged"]["mode"] == 0o755
    assert paths["lib/libsedge.so.0"] == {"path": "lib/libsedge.so.0", "link": "libsedge.so"}
    r = run_sedgectl("--json", "bundle", "verify", bundle, "--key", pub)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["version"] == "0.2.0" and out["files"] == 5


def test_bundle_create_refuses_a_tree_without_sedged_or_with_a_link_out(tmp_path, keys):
    priv, _ = keys
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("no sedged here\n")
    r = run_sedgectl("bundle", "create", tmp_path / "empty", "--version", "1.0", "--key", priv,
                     "--out", tmp_path / "b")
    assert r.returncode == 1 and "bin/sedged" in r.stderr
    tree = release_tree(tmp_path / "tree")
    (tree / "lib" / "out").symlink_to("../../etc/passwd")
    r = run_sedgectl("bundle", "create", tree, "--version", "1.0", "--key", priv,
                     "--out", tmp_path / "b")
    assert r.returncode == 1 and "leaves the tree" in r.stderr
    assert not (tmp_path / "b").exists()


def test_unknown_key_is_refused(tmp_path, keys):
    priv, _ = keys
    _, other_pub = make_key(tmp_path / "other")
    bundle = hand_bundle(tmp_path / "b", priv, {"bin/sedged": SEDGED})
    r = verify(bundle, other_pub)
    assert r.returncode == 1 and "unknown key" in r.stderr


def test_bad_signature_is_refused(tmp_path, keys):
    priv, pub = keys
    payload = tar_bytes([file_entry("bin/sedged", SEDGED)])
    manifest = manifest_for({"bin/sedged": SEDGED}, payload, priv)
    text = json.dumps(manifest).encode()
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(priv.read_bytes(), None)
    sig = key.sign(text)
    # The same manifest with the version raised: the signature no longer fits.
    forged = text.replace(b'"0.2.0"', b'"9.9.9"')
    write_bundle(tmp_path / "b", forged, payload, priv, signature=sig)
    r = verify(tmp_path / "b", pub)
    assert r.returncode == 1 and "bad signature" in r.stderr
    write_bundle(tmp_path / "short", text, payload, priv, signature=sig[:63])
    r = verify(tmp_path / "short", pub)
    assert r.returncode == 1 and "bad signature" in r.stderr


def test_tampered_payload_is_refused(tmp_path, keys):
    priv, pub = keys
    payload = tar_bytes([file_entry("bin/sedged", SEDGED)])
    manifest = manifest_for({"bin/sedged": SEDGED}, payload, priv)
    bad = bytearray(payload)
    bad[len(bad) // 2] ^= 0xFF
    write_bundle(tmp_path / "b", manifest, bytes(bad), priv)
    r = verify(tmp_path / "b", pub)
    assert r.returncode == 1 and "tampered bundle" in r.stderr


def test_a_file_whose_hash_differs_from_the_manifest_is_refused(tmp_path, keys):
    priv, pub = keys
    # Signed manifest and payload hash agree; the file inside does not.
    entries = [file_entry("bin/sedged", b"#!/bin/sh\nexit 1\n")]
    bundle = hand_bundle(tmp_path / "b", priv, {"bin/sedged": SEDGED}, entries)
    r = verify(bundle, pub)
    assert r.returncode == 1
    assert "bin/sedged does not have the manifest's SHA-256" in r.stderr


def test_a_listed_file_missing_from_the_payload_is_refused(tmp_path, keys):
    priv, pub = keys
    files = {"bin/sedged": SEDGED, "lib/x": b"x"}
    bundle = hand_bundle(tmp_path / "b", priv, files, [file_entry("bin/sedged", SEDGED)])
    r = verify(bundle, pub)
    assert r.returncode == 1 and "lib/x is in the manifest but not in the bundle" in r.stderr


def hostile(tmp_path, priv, extra):
    """bin/sedged as listed, plus the hostile `extra` entry."""
    return hand_bundle(tmp_path / "h", priv, {"bin/sedged": SEDGED},
                       [file_entry("bin/sedged", SEDGED), extra])


@pytest.mark.parametrize("name", ["../evil", "bin/../../evil", "/etc/evil", "bin//x", "./../x"])
def test_hostile_paths_are_refused(tmp_path, keys, name):
    priv, pub = keys
    r = verify(hostile(tmp_path, priv, file_entry(name, b"x")), pub)
    assert r.returncode == 1 and "hostile archive" in r.stderr, r.stderr


def test_a_link_leaving_the_tree_is_refused_even_when_listed(tmp_path, keys):
    priv, pub = keys
    link = tarfile.TarInfo("lib/escape")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../etc"
    # Listed in the manifest: the manifest itself is refused.
    files = {"bin/sedged": SEDGED, "lib/escape": ("link", "../../etc")}
    bundle = hand_bundle(tmp_path / "a", priv, files, [file_entry("bin/sedged", SEDGED),
                                                       (link, None)])
    r = verify(bundle, pub)
    assert r.returncode == 1 and "leaves the tree" in r.stderr
    # Not listed: the entry is refused.
    r = verify(hostile(tmp_path, priv, (link, None)), pub)
    assert r.returncode == 1 and "hostile archive" in r.stderr
    # Listed as an inside link, but the archive's link points out.
    files = {"bin/sedged": SEDGED, "lib/escape": ("link", "../bin/sedged")}
    bundle = hand_bundle(tmp_path / "c", priv, files, [file_entry("bin/sedged", SEDGED),
                                                       (link, None)])
    r = verify(bundle, pub)
    assert r.returncode == 1 and "leaves the tree or differs" in r.stderr


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_nodes_are_refused(tmp_path, keys, kind):
    priv, pub = keys
    dev = tarfile.TarInfo("bin/null")
    dev.type = kind
    dev.devmajor, dev.devminor = 1, 3
    r = verify(hostile(tmp_path, priv, (dev, None)), pub)
    assert r.returncode == 1 and "device, fifo or socket" in r.stderr


def test_hard_links_are_refused(tmp_path, keys):
    priv, pub = keys
    hard = tarfile.TarInfo("bin/sedged2")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "/etc/shadow"
    r = verify(hostile(tmp_path, priv, (hard, None)), pub)
    assert r.returncode == 1 and "hostile archive" in r.stderr


def test_an_entry_larger_than_listed_is_refused(tmp_path, keys):
    priv, pub = keys
    big = file_entry("bin/sedged", SEDGED + b"\0" * 4096)
    bundle = hand_bundle(tmp_path / "b", priv, {"bin/sedged": SEDGED}, [big])
    r = verify(bundle, pub)
    assert r.returncode == 1 and "bytes, the manifest says" in r.stderr


def test_a_decompression_bomb_stops_at_the_listed_size(tmp_path, keys):
    priv, pub = keys
    # 64 MB of zeros (about 64 KB gzip'd) under a name listed with 17 bytes
    # and a header that lies about its size is never written out in full.
    info = tarfile.TarInfo("bin/sedged")
    info.size = 64 << 20
    info.mode = 0o755
    import gzip
    import io
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        t.addfile(info, io.BytesIO(b"\0" * info.size))
    payload = gzip.compress(raw.getvalue())
    assert len(payload) < 1 << 20
    manifest = manifest_for({"bin/sedged": SEDGED}, payload, priv)
    r = verify(write_bundle(tmp_path / "b", manifest, payload, priv), pub)
    assert r.returncode == 1 and "the manifest says 17" in r.stderr


def test_entries_the_manifest_does_not_list_are_refused(tmp_path, keys):
    priv, pub = keys
    r = verify(hostile(tmp_path, priv, file_entry("bin/extra", b"x")), pub)
    assert r.returncode == 1 and "bin/extra is not in the manifest" in r.stderr
    r = verify(hostile(tmp_path, priv, file_entry("bin/sedged", SEDGED)), pub)
    assert r.returncode == 1 and "appears twice" in r.stderr


def test_a_bundle_that_is_not_a_bundle_is_refused(tmp_path, keys):
    _, pub = keys
    (tmp_path / "junk").write_bytes(b"\x7fELF" + b"\0" * 2000)
    r = verify(tmp_path / "junk", pub)
    assert r.returncode == 1 and "bundle" in r.stderr
    with tarfile.open(tmp_path / "t", "w") as t:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2 << 20
        import io
        t.addfile(info, io.BytesIO(b" " * info.size))
    r = verify(tmp_path / "t", pub)
    assert r.returncode == 1 and "larger than" in r.stderr
