#!/usr/bin/python3
"""Branch and line coverage per module, from a --coverage build's gcda
files (gcovr). Prints one row per module under src/ and the total; writes
the per-file details to BUILD/coverage/.

    scripts/coverage_summary.py BUILD
"""
import json
import os
import subprocess
import sys

build = sys.argv[1]
top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(build, "coverage")
os.makedirs(out, exist_ok=True)
summary = os.path.join(out, "summary.json")
subprocess.run(["gcovr", "-r", top, "--object-directory", build, "--filter", os.path.join(top, "src"),
                "--exclude-unreachable-branches", "--json-summary", summary,
                "--html-details", os.path.join(out, "index.html")], check=True,
               stdout=subprocess.DEVNULL)
with open(summary) as f:
    files = json.load(f)["files"]
modules = {}
for entry in files:
    parts = entry["filename"].split("/")
    if len(parts) < 3 or parts[0] != "src":
        continue
    m = modules.setdefault(parts[1], [0, 0, 0, 0])
    m[0] += entry["branch_covered"]
    m[1] += entry["branch_total"]
    m[2] += entry["line_covered"]
    m[3] += entry["line_total"]


def pct(a, b):
    return "%5.1f %%" % (100.0 * a / b) if b else "    -  "


print("%-10s %9s %15s %9s %15s" % ("module", "branches", "", "lines", ""))
total = [0, 0, 0, 0]
for name in sorted(modules):
    m = modules[name]
    total = [t + v for t, v in zip(total, m)]
    print("%-10s %9s %7d/%-7d %9s %7d/%-7d" % (name, pct(m[0], m[1]), m[0], m[1], pct(m[2], m[3]),
                                               m[2], m[3]))
print("%-10s %9s %7d/%-7d %9s %7d/%-7d" % ("all", pct(total[0], total[1]), total[0], total[1],
                                           pct(total[2], total[3]), total[2], total[3]))
print("details: %s" % os.path.join(out, "index.html"))
