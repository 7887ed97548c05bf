# bench/sections/ota.sh, sourced by bench/run.sh: over-the-air updates
# (issue 16). bench/ota_bench.py runs one AWS IoT Job (`sedge.update`) on
# a local mosquitto standing in for the cloud against a core started from
# this build, the bundle (this build's release tree) served over HTTPS on
# loopback, while a probe opens an MQTT connection every 2 ms: the time
# from the job's notification to its SUCCEEDED, and the longest time no
# connection was accepted (the service gap), beside the gap of a plain
# restart of the same core. Then the updater at rest: the core's private
# dirty memory with and without an "ota" section, and the disk the two
# release slots take.

ota_value() { # KEY
    v=$(sed -n "s/^$1=//p" "$WORK/ota.out" 2>/dev/null | head -n 1)
    if [ -n "$v" ]; then echo "$v"; else echo "FAILED: $(sed -n 's/^error=//p' "$WORK/ota.out" | head -n 1)"; fi
}

section_ota() {
    say "ota: a sedge.update job from the cloud, job to committed and the service gap"
    "$PYTHON" "$ROOT/bench/ota_bench.py" "$BUILD" "$WORK/ota" >"$WORK/ota.out" 2>>"$WORK/ota.err" ||
        note "ota: the run failed: $(sed -n 's/^error=//p' "$WORK/ota.out" | head -n 1) (reproduce: $PYTHON bench/ota_bench.py $BUILD /tmp/ota-bench)"
    grep -E ' [EW] ' "$WORK/ota/sedged.log" 2>/dev/null | head -n 5 | while read -r line; do note "ota: sedged said: $line"; done
    say "  $(tr '\n' ' ' <"$WORK/ota.out")"
    table_header "reference"
    abs_row "job received to committed, $(ota_value bundle_mb) MB bundle over HTTPS on loopback (s)" "$(ota_value job_to_commit_s)" "-" 2 "<=" 10 s
    abs_row "service gap during the update: longest time no MQTT CONNECT was accepted (ms)" "$(ota_value gap_update_ms)" "-" 0 "<=" 1000 ms
    abs_row "service gap of a plain restart of the same core, for comparison (ms)" "$(ota_value gap_restart_ms)" "-" 0 "" "" ""
    abs_row "private dirty memory at rest, with the updater (MB)" "$(ota_value dirty_ota_mb)" "-" 2 "" "" ""
    abs_row "private dirty memory at rest, without an ota section (MB)" "$(ota_value dirty_plain_mb)" "-" 2 "" "" ""
    abs_row "disk under the OTA root after one update: the new release's slot (MB)" "$(ota_value disk_ota_mb)" "-" 2 "" "" ""
    info "No other runtime is measured beside it (Greengrass's nucleus updates are not reproducible here); the plain restart row is what stopping and starting the same core costs: the gap an update adds beyond it is its own fsyncs (state, switch), the guard's fork and the exec."
    describe <<DESC
One run: a core (the installed binary, outside the slots) with a TCP listener,
an uplink over mutual TLS to a local mosquitto (the cloud) and an "ota"
section; one \`sedge.update\` job (notify-next) for a bundle of this build served
over HTTPS on loopback; SUCCEEDED comes from the new release once it is healthy
(store open, listeners up, cloud link back). A probe opens an MQTT connection
(CONNECT, CONNACK) every 2 ms throughout; the gap is the longest time between
two accepted ones. Memory: Private_Dirty from /proc/PID/smaps_rollup 2 s after
the update, and of the same core started without an "ota" section.
DESC
}
