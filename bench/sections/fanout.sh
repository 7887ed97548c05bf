# bench/sections/fanout.sh, sourced by bench/run.sh: fan-out to many
# subscribers and big payloads (issue 15, part 3), sedged beside mosquitto
# with the broker section's limits.
#   - 1 publisher -> BENCH_FANOUT_SUBSCRIBERS (1,000) subscribers of one
#     topic, QoS 0 and QoS 1, 64-byte payloads: deliveries per second;
#   - 1 publisher -> 4 subscribers, 64 KB and 1 MB payloads, QoS 0: bytes
#     delivered per second.

FANOUT_SUBS=${BENCH_FANOUT_SUBSCRIBERS:-1000}

# MB/s delivered of a payload size: msg/s * bytes.
mb_per_s() { # NAME KIND BYTES
    v=$(figure "$1" "$2" 1)
    if num "$v"; then awk -v r="$v" -v b="$3" 'BEGIN { printf "%.1f", r * b / 1048576 }'; else echo "$v"; fi
}

section_fanout() {
    say "fanout: 1 -> $FANOUT_SUBS subscribers (QoS 0, 1); 64 KB and 1 MB payloads to 4 subscribers; $REPEAT x ${SECS} s"
    # loadgen: 2 threads for the subscribers, 2 for the publisher; the
    # publisher stays at most 100 messages ahead of the slowest of the
    # 1,000 (100,000 deliveries), 4 MB or 8 MB of payload ahead for the
    # big ones.
    FAN="--mode fan-out --subscribers $FANOUT_SUBS --threads 4 --window 100 --mqtt 3 --payload 64 --duration $SECS"
    rep=0
    while [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        say "fanout, round $rep of $REPEAT"
        for q in 0 1; do
            for kind in sedged mosquitto; do
                # shellcheck disable=SC2086
                tp_run fan$q $kind $FAN --qos $q
            done
        done
        for kind in sedged mosquitto; do
            tp_run big64k $kind --mode fan-out --subscribers 4 --qos 0 --payload 65536 --window 64 --duration "$SECS"
        done
        for kind in sedged mosquitto; do
            tp_run big1m $kind --mode fan-out --subscribers 4 --qos 0 --payload 1048576 --window 8 --duration "$SECS"
        done
    done

    table_header "mosquitto"
    rel_row "QoS 0 fan-out, 1 -> $FANOUT_SUBS subscribers (deliveries/s)" fan0 1 0 ">=" 1.5
    rel_row "QoS 1 fan-out, 1 -> $FANOUT_SUBS subscribers (deliveries/s)" fan1 1 0 ">=" 1.5
    rel_row "broker CPU per delivery, QoS 0, 1 -> $FANOUT_SUBS (us)" fan0 2 3 "" ""
    rel_row "broker CPU per delivery, QoS 1, 1 -> $FANOUT_SUBS (us)" fan1 2 3 "" ""
    abs_row "broker peak RSS, QoS 0, 1 -> $FANOUT_SUBS (MB)" "$(peak_mb fan0 sedged)" "$(peak_mb fan0 mosquitto)" 1 "" "" ""
    S=$(mb_per_s big64k sedged 65536)
    M=$(mb_per_s big64k mosquitto 65536)
    ratio_row "64 KB payloads, QoS 0, 1 -> 4 subscribers (MB/s delivered)" "$S" "$M" 0 ">=" 1.2
    S=$(mb_per_s big1m sedged 1048576)
    M=$(mb_per_s big1m mosquitto 1048576)
    ratio_row "1 MB payloads, QoS 0, 1 -> 4 subscribers (MB/s delivered)" "$S" "$M" 0 ">=" 1.2
    rel_row "broker CPU per 1 MB delivery (us)" big1m 2 0 "" ""
    abs_row "broker peak RSS, 1 MB payloads, 1 -> 4 (MB)" "$(peak_mb big1m sedged)" "$(peak_mb big1m mosquitto)" 1 "" "" ""

    info "The load generator is a real limit in the 1 -> $FANOUT_SUBS rows: its two subscriber threads read every delivery through libmosquitto (three system calls a packet) on the same 2 cores as the broker; when a row's note says a loadgen thread was 90% busy, the faster broker is understated."
    describe <<DESC
bench/loadgen with the broker section's limits (max inflight 32, 100,000
queued messages). Fan-out: one publisher, $FANOUT_SUBS subscribers of its topic, 64-byte
payloads, at most 100 messages ahead of the slowest subscriber; deliveries per
second counted at the subscribers, first message to last. Payloads: one
publisher, 4 subscribers, QoS 0, 64 KB (at most 64 messages ahead) and 1 MB (at
most 8 ahead); MB/s is deliveries/s times the payload. Peak RSS: the broker's
VmHWM after the run. Median of $REPEAT runs of ${SECS} s, each on a fresh broker, the
brokers alternating.
DESC
}
