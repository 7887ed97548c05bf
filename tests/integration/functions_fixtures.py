"""Fixtures and function entries shared by the function tests
(test_functions.py, test_function_sandbox.py, test_function_socket.py).

Kept apart from functions_helpers.py, which must import only the standard
library because it also runs inside sandboxes as a misbehaving function.
"""

import os
import shutil

import pytest

import functions_helpers as fh
from conftest import BUILD

EXAMPLES = str(BUILD / "examples")  # the C examples: their code directory
BEHAVE = os.path.join(EXAMPLES, "behave")
PROBES = str(BUILD / "test-functions")
PROBE = os.path.join(PROBES, "probe")
HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions_helpers.py")
PYTHON = "/usr/bin/python3"


@pytest.fixture
def public_tmp():
    """A 0755 directory (function users can traverse it), removed at the end
    (after the sedged made in it has stopped)."""
    d = fh.public_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fsedge(public_tmp, make_sedge):
    """A running sedged whose directory function users can traverse, so that
    only the sandbox hides the data directory from its functions. (make_sedge
    puts it at tmp_path / name; an absolute name replaces tmp_path, which is
    0700.)"""
    return make_sedge(name=os.path.join(public_tmp, "sedge"))


def behave(name="behave", **kw):
    """The behave example: its payload is a command ("sleep:500"), not JSON."""
    entry = dict(encoding="binary", code=EXAMPLES)
    entry.update(kw)
    return fh.fn(name, [BEHAVE], **entry)


def bad_ipc(directory, name="bad", **kw):
    """functions_helpers.py as a function, installed under `directory`/bin
    (its code directory)."""
    bindir = os.path.join(directory, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    prog = fh.install_program(HELPERS, bindir, "bad_ipc.py")
    entry = dict(code=bindir, encoding="binary")
    entry.update(kw)
    return fh.fn(name, [PYTHON, prog], **entry)
