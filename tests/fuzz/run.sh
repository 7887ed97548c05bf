#!/bin/sh
# Run every fuzz target of a build for SECONDS each (default 30), starting
# from its seed corpus tests/fuzz/corpus/NAME and its NAME.dict if present.
# New inputs and crash files go under the build directory, never into the
# seeds. Exits non-zero on the first target that finds a failure.
#   usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]
set -eu
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]}
seconds=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
found=0
for bin in "$build"/tests/fuzz/fuzz_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    found=1
    target=$(basename "$bin")
    seeds="$here/corpus/${target#fuzz_}"
    work="$build/fuzz-work/$target"
    mkdir -p "$work/corpus" "$work/artifacts"
    set -- -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/"
    [ -f "$here/$target.dict" ] && set -- "$@" -dict="$here/$target.dict"
    [ -d "$seeds" ] && set -- "$@" "$work/corpus" "$seeds" || set -- "$@" "$work/corpus"
    echo "fuzz: $target for ${seconds}s"
    "$bin" "$@"
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz_* targets in $build/tests/fuzz" >&2; exit 1; }
