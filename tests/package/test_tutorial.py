"""docs/tutorial.md cannot rot: every ```sh block of it is run, in order,
as one script (set -e: a command that fails fails the test) by a user with
sudo, on the packages `make deb` built, in a namespace of its own
(tutorial_run.sh). Commands that wait for messages carry mosquitto's -C and
-W, so a message that does not come fails the run instead of hanging it."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial.md"
DEBS = REPO / "build-deb" / "amd64"


def blocks():
    return re.findall(r"^```sh\n(.*?)^```$", TUTORIAL.read_text(), re.S | re.M)


def test_the_tutorial_has_the_steps_it_promises():
    text = "\n".join(blocks())
    for needle in ("apt install ./sedge_", "systemctl enable --now sedge", "sedgectl cert issue $thing",
                   "sedgectl deploy kitchen.json", "alarm.py", "shadow/update/delta",
                   "mosquitto -c mosquitto.conf", "listener 8884", "sedgectl spool",
                   "kill \"$(cat ~/cloud/mosquitto.pid)\""):
        assert needle in text, needle
    assert "pkill" not in text and "killall" not in text
    assert len(blocks()) >= 12


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace and its overlays take root")
def test_every_command_of_the_tutorial_runs():
    if not list(DEBS.glob("sedge_*_amd64.deb")):
        pytest.fail("no packages in %s: make deb first (make test-package does)" % DEBS)
    work = tempfile.mkdtemp(prefix="sedge-tutorial.")
    script = Path(work + ".sh")
    parts = []
    for i, block in enumerate(blocks()):
        parts.append("echo '=== tutorial block %d'\n%s" % (i + 1, block))
    script.write_text("\n".join(parts))
    try:
        r = subprocess.run(["unshare", "--mount", "--net", "sh",
                            str(REPO / "tests" / "package" / "tutorial_run.sh"), str(DEBS),
                            str(script), work], capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        script.unlink()
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "tutorial ok" in r.stdout, out[-6000:]
