"""scripts/deps.sh: `make run` installs what building and running need and
nothing of the tests' (no clang, llvm, cmocka), every library the build
requires comes from a package of the run set, and a second run installs
nothing (idempotent)."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPS = REPO / "scripts" / "deps.sh"


def packages(set_name):
    r = subprocess.run(["sh", str(DEPS), "--list", set_name], capture_output=True, text=True,
                       check=True)
    return set(r.stdout.split())


def required_pkgconfig_modules():
    """Every pkg_check_modules(... REQUIRED ...) of the build, outside the
    tests' own CMakeLists."""
    mods = set()
    for cm in REPO.rglob("CMakeLists.txt"):
        rel = cm.relative_to(REPO).as_posix()
        if rel.startswith(("build", "tests/", "bench/", "debian/")):
            continue
        for m in re.finditer(r"pkg_check_modules\((\w+)\s+REQUIRED\s+IMPORTED_TARGET\s+([\w.-]+)\)",
                             cm.read_text()):
            mods.add(m.group(2))
    return mods


def package_of_module(module):
    pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", module], capture_output=True,
                           text=True, check=True).stdout.strip()
    owner = subprocess.run(["dpkg", "-S", "%s/%s.pc" % (pcdir, module)], capture_output=True,
                           text=True, check=True).stdout.split(":")[0]
    return owner


def test_run_set_has_no_test_tooling():
    run = packages("run")
    for tool in ("clang", "llvm", "clang-format", "clang-tidy", "libcmocka-dev", "lintian",
                 "pandoc", "python3-pytest"):
        assert tool not in run, tool
    assert packages("run") < packages("test") < packages("cross")


def test_every_library_the_build_requires_is_in_the_run_set():
    run = packages("run")
    mods = required_pkgconfig_modules()
    assert {"libuv", "jansson", "sqlite3", "libseccomp", "libcurl"} <= mods, mods
    missing = {m: package_of_module(m) for m in mods if package_of_module(m) not in run}
    assert not missing, "required by the build, not installed by make run: %s" % missing


def test_deps_is_quiet_and_installs_nothing_when_everything_is_there():
    for set_name in ("run", "test"):
        r = subprocess.run(["sh", str(DEPS), set_name], capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        assert (r.stdout, r.stderr) == ("", ""), (set_name, r.stdout, r.stderr)


def test_unknown_set_is_a_usage_error():
    r = subprocess.run(["sh", str(DEPS), "everything"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
