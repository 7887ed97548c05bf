# bench/sections/scale.sh, sourced by bench/run.sh: many idle connections
# on the 2-core machine (issue 15, part 4). BENCH_SCALE_CONNECTIONS
# (50,000) connections, half plain TCP and half mutual TLS, opened at once
# by two bench/connbench processes (4 threads each) from 8 source
# addresses, 127.0.0.1 to 127.0.0.8, since one address has only about
# 28,000 ephemeral ports. Each connection is CONNECTed with a keep alive of
# 60 s and then left idle. Figures: the time until the last CONNACK, the
# broker's RSS, and its CPU per second over BENCH_SCALE_REST_S (10) seconds
# at rest (all threads, /proc/PID/task/*/schedstat) — all before the first
# keep-alive is due, so at rest means the broker's own timers only. It
# takes about a minute per broker; BENCH_SCALE_CONNECTIONS=0 leaves it out.

SCALE_N=${BENCH_SCALE_CONNECTIONS:-50000}
SCALE_REST=${BENCH_SCALE_REST_S:-10}

section_scale() {
    table_header "mosquitto"
    if [ "$SCALE_N" -le 0 ]; then
        say "scale: left out (BENCH_SCALE_CONNECTIONS=0)"
        for r in "time to accept" "RSS with the connections" "RSS per idle connection" "CPU at rest"; do
            row "$r (not measured: BENCH_SCALE_CONNECTIONS=0)" "-" "-" "-" "-" "-"
        done
        describe <<DESC
Not measured in this run (BENCH_SCALE_CONNECTIONS=0).
DESC
        return
    fi
    # One process holds one descriptor per connection: a hard limit below
    # SCALE_N + 1000 that cannot be raised (no CAP_SYS_RESOURCE) caps the
    # run, and the rows say at how many connections they were measured.
    # shellcheck disable=SC3045
    hard=$(ulimit -Hn)
    # shellcheck disable=SC3045
    if [ "$hard" != unlimited ] && [ $((SCALE_N + 1000)) -gt "$hard" ] && ! ulimit -n $((SCALE_N + 1000)) 2>/dev/null; then
        capped=$(((hard - 1000) / 1000 * 1000))
        info "Asked for $SCALE_N connections, measured $capped: the descriptor limit is $hard (hard) and this process may not raise it (no CAP_SYS_RESOURCE), and a broker holds one descriptor per connection. Per-connection figures scale linearly to $SCALE_N; the time to accept and the CPU at rest are for $capped."
        SCALE_N=$capped
    fi
    tcp_n=$((SCALE_N / 2))
    tls_n=$((SCALE_N - tcp_n))
    say "scale: $SCALE_N idle connections ($tcp_n TCP, $tls_n mTLS) per broker, then ${SCALE_REST} s at rest"
    SEDGED_LIMITS="\"max_connections\": $((SCALE_N + 1000)), \"max_inflight\": 32, \"max_queued_messages\": 100000"
    for kind in sedged mosquitto; do hold_run scale $kind "$tcp_n" "$tls_n" 8 "$SCALE_REST"; done
    SEDGED_LIMITS=""

    per_conn_kb() { # KIND
        if [ -s "$WORK/scale.$1.hold" ]; then
            awk -v n="$SCALE_N" '{ printf "%.2f", ($2 - $1) / n }' "$WORK/scale.$1.hold"
        else
            echo "FAILED: $(head -n 1 "$WORK/scale.$1.fail" 2>/dev/null)"
        fi
    }
    mbv() { v=$(hold_value scale "$1" "$2"); if num "$v"; then awk -v v="$v" 'BEGIN { printf "%.1f", v / 1024 }'; else echo "$v"; fi; }
    abs_row "time to accept $SCALE_N connections ($tcp_n TCP + $tls_n mTLS, opened 8 at a time) (s)" \
        "$(hold_value scale sedged 3)" "$(hold_value scale mosquitto 3)" 1 "" "" ""
    abs_row "RSS with $SCALE_N idle connections (MB)" "$(mbv sedged 2)" "$(mbv mosquitto 2)" 1 "" "" ""
    abs_row "RSS per idle connection, half TCP, half mTLS (KB)" "$(per_conn_kb sedged)" "$(per_conn_kb mosquitto)" 2 "" "" ""
    abs_row "broker CPU at rest with $SCALE_N connections, over ${SCALE_REST} s (ms of CPU per s)" \
        "$(hold_value scale sedged 4)" "$(hold_value scale mosquitto 4)" 2 "" "" ""
    abs_row "RSS after ${SCALE_REST} s at rest (MB)" "$(mbv sedged 5)" "$(mbv mosquitto 5)" 1 "" "" ""

    # shellcheck disable=SC3045
    info "sedged: \`max_connections\` $((SCALE_N + 1000)), otherwise the broker section's configuration; mosquitto: no connection limit (its default). Both inherit a descriptor limit of $(ulimit -n)."
    describe <<DESC
$SCALE_N connections per broker, $tcp_n over plain TCP and $tls_n over mutual TLS, opened
at once by two bench/connbench processes of 4 threads each (one connection
after another per thread: TCP connect, TLS handshake for the mTLS half, MQTT
CONNECT with keep alive 60 s, CONNACK) from source addresses 127.0.0.1 to
127.0.0.8. Time to accept: from the start until the last CONNACK of both. RSS:
a second after that; CPU at rest: the broker's CPU time over the next
${SCALE_REST} s, before any keep-alive is due; one run per broker, on a fresh broker.
The connecting clients share the 2 cores with the broker: the time to accept is
the pair's.
DESC
}
