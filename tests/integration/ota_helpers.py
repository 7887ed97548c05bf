"""Update bundles for the OTA tests, made two ways: with `sedgectl bundle
create` from a release tree built from this build (what users do), and by
hand here (manifest, Ed25519 signature with python3-cryptography, payload
tar written entry by entry) for the hostile ones nobody's tool would make.
"""

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from conftest import BUILD, run_sedgectl


def make_key(directory, name="release"):
    """An Ed25519 key pair made with openssl: (private PEM, public PEM)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    priv, pub = directory / (name + ".key"), directory / (name + ".pub.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(priv)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True)
    return priv, pub


def key_id(priv_path):
    key = serialization.load_pem_private_key(Path(priv_path).read_bytes(), None)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def release_tree(directory, sedged=None):
    """A release tree of this build: bin/sedged (or the script `sedged`),
    bin/sedgectl, bin/sedge-sandbox, lib/libsedge.so."""
    directory = Path(directory)
    (directory / "bin").mkdir(parents=True, exist_ok=True)
    (directory / "lib").mkdir(parents=True, exist_ok=True)
    if sedged is None:
        shutil.copy2(BUILD / "sedged", directory / "bin" / "sedged")
    else:
        (directory / "bin" / "sedged").write_text(sedged)
        os.chmod(directory / "bin" / "sedged", 0o755)
    for name in ("sedgectl", "sedge-sandbox"):
        shutil.copy2(BUILD / name, directory / "bin" / name)
    shutil.copy2(BUILD / "libsedge.so", directory / "lib" / "libsedge.so")
    return directory


def create_bundle(tree, version, key, out, *extra):
    r = run_sedgectl("bundle", "create", tree, "--version", version, "--key", key, "--out", out,
                     *extra)
    assert r.returncode == 0, r.stderr
    return Path(out)


def tar_bytes(entries, gz=True):
    """A tar of `entries`: (TarInfo, data or None) pairs, gzip'd."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue()) if gz else raw.getvalue()


def file_entry(path, data, mode=0o755):
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    return info, data


def manifest_for(files, payload, priv, version="0.2.0", **over):
    """The manifest of `files` ({path: bytes} or {path: ("link", target)})."""
    listed = []
    for path, data in files.items():
        if isinstance(data, tuple):
            listed.append({"path": path, "link": data[1]})
        else:
            listed.append({"path": path, "size": len(data), "mode": 493,
                           "sha256": hashlib.sha256(data).hexdigest()})
    m = {"format": 1, "product": "sedge", "version": version, "min_version": "0",
         "architecture": platform.machine(), "store_schema": 2, "key_id": key_id(priv),
         "payload": {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()},
         "files": listed}
    m.update(over)
    return m


def write_bundle(out, manifest, payload, priv, signature=None):
    """manifest.json + manifest.sig + release.tar.gz, as sedgectl does."""
    text = json.dumps(manifest, indent=1).encode() if isinstance(manifest, dict) else manifest
    key = serialization.load_pem_private_key(Path(priv).read_bytes(), None)
    sig = signature if signature is not None else key.sign(text)
    members = [("manifest.json", text), ("manifest.sig", sig), ("release.tar.gz", payload)]
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return Path(out)


def hand_bundle(out, priv, files, entries=None, version="0.2.0", **over):
    """A bundle whose manifest lists `files` and whose payload holds
    `entries` (default: exactly those files)."""
    if entries is None:
        entries = [file_entry(p, d) for p, d in files.items()]
    payload = tar_bytes(entries)
    return write_bundle(out, manifest_for(files, payload, priv, version, **over), payload, priv)
