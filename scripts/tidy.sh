#!/bin/sh
# The naming STYLE.md promises (.clang-tidy), over every C file of the
# product (the core, the SDK, the connectors), with the compile commands
# of BUILD.
#   usage: scripts/tidy.sh BUILD
set -eu
build=${1:?usage: scripts/tidy.sh BUILD}
cd "$(dirname "$0")/.."
clang-tidy -p "$build" --quiet src/*/*.c sdk/c/src/*.c connectors/*/*.c 2>&1 |
    grep -vE '^[0-9]+ warnings? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' || true
clang-tidy -p "$build" --quiet src/*/*.c sdk/c/src/*.c connectors/*/*.c >/dev/null 2>&1
