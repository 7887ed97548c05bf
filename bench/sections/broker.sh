# bench/sections/broker.sh, sourced by bench/run.sh: the MQTT broker side
# by side with mosquitto — throughput by QoS and shape, latency at a fixed
# rate, CPU per message, memory with idle connections, start to ready.

section_broker() {
    say "broker: sedged ($SEDGED) against mosquitto ($MOSQUITTO)"
    say "throughput: $REPEAT x ${SECS} s per broker and case, alternating; latency $LAT_REPEAT x ${LAT_SECS} s; $IDLE_N idle connections; $STARTS starts"

    TP="--mqtt 3 --payload 64 --duration $SECS"
    rep=0
    while [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        say "throughput, round $rep of $REPEAT"
        for kind in sedged mosquitto; do
            # shellcheck disable=SC2086
            tp_run q0 $kind --mode fan-in --publishers 4 --qos 0 $TP
        done
        for kind in sedged mosquitto; do
            # shellcheck disable=SC2086
            tp_run q1 $kind --mode fan-in --publishers 4 --qos 1 $TP
        done
        for kind in sedged mosquitto; do
            # shellcheck disable=SC2086
            tp_run q2 $kind --mode fan-in --publishers 4 --qos 2 $TP
        done
        for kind in sedged mosquitto; do
            # shellcheck disable=SC2086
            tp_run fanout $kind --mode fan-out --subscribers 8 --qos 0 $TP
        done
        for kind in sedged mosquitto; do
            # shellcheck disable=SC2086
            tp_run durable $kind --mode fan-in --publishers 4 --qos 1 --persistent $TP
        done
    done

    say "latency at 10000 msg/s"
    rep=0
    while [ $rep -lt "$LAT_REPEAT" ]; do
        rep=$((rep + 1))
        for q in 0 1; do
            for kind in sedged mosquitto; do
                single_run lat$q $kind --mode latency --qos $q --rate 10000 --duration $((LAT_SECS + 1)) --warmup 1
            done
        done
    done

    say "memory with $IDLE_N idle connections"
    for kind in sedged mosquitto; do idle_run $kind; done

    libfloor_run

    say "start to ready, $STARTS starts each"
    READY_S=$(startup_runs sedged)
    READY_M=$(startup_runs mosquitto)

    table_header "mosquitto"
    rel_row "QoS 0 fan-in throughput, 4 pub -> 1 sub (msg/s)" q0 1 0 ">=" 1.5
    rel_row "QoS 1 fan-in throughput, 4 -> 1 (msg/s)" q1 1 0 ">=" 1.5
    rel_row "QoS 2 fan-in throughput, 4 -> 1 (msg/s)" q2 1 0 "" ""
    rel_row "QoS 0 fan-out throughput, 1 -> 8 (deliveries/s)" fanout 1 0 "" ""
    rel_row "durable QoS 1, 4 -> 1 persistent session: sedged commit-before-ack vs mosquitto in memory (msg/s)" durable 1 0 ">=" 1.0
    for q in 0 1; do
        for p in p50 p99 p999; do
            s=$(line_value lat$q sedged ${p}_us)
            m=$(line_value lat$q mosquitto ${p}_us)
            label="QoS $q latency $(echo $p | sed 's/p999/p99.9/') at 10k msg/s, 1 -> 1 (us)"
            if [ $p = p99 ]; then abs_row "$label" "$s" "$m" 1 "<=" 1000 us; else abs_row "$label" "$s" "$m" 1 "" "" ""; fi
        done
    done
    rel_row "broker CPU per delivered message, QoS 0 fan-in (us)" q0 2 3 "<=" 0.4
    rel_row "broker CPU per delivered message, QoS 1 fan-in (us)" q1 2 3 "<=" 0.4
    RS0=$(mb "$WORK/rss0.sedged" "$WORK/idle.sedged.fail")
    RM0=$(mb "$WORK/rss0.mosquitto" "$WORK/idle.mosquitto.fail")
    RS1=$(mb "$WORK/rss1.sedged" "$WORK/idle.sedged.fail")
    RM1=$(mb "$WORK/rss1.mosquitto" "$WORK/idle.mosquitto.fail")
    abs_row "idle RSS after start (MB)" "$RS0" "$RM0" 2 "<=" 4 MB
    abs_row "idle RSS of a process that only loads sedged's libraries (MB)" "$(mb "$WORK/rss0.libfloor" /dev/null)" "-" 2 "" "" ""
    abs_row "idle RSS after start, anonymous memory only (MB)" "$(mb "$WORK/anon0.sedged" "$WORK/idle.sedged.fail")" "$(mb "$WORK/anon0.mosquitto" "$WORK/idle.mosquitto.fail")" 2 "" "" ""
    abs_row "RSS with $IDLE_N idle connections (MB)" "$RS1" "$RM1" 1 "" "" ""
    abs_row "RSS per idle connection (KB)" "$(per_conn sedged)" "$(per_conn mosquitto)" 2 "<=" 0.7 KB
    abs_row "start to ready, mean of $STARTS (ms)" "$READY_S" "$READY_M" 1 "<=" 20 ms

    describe <<DESC
Load: bench/loadgen (libmosquitto), MQTT 3.1.1, 64-byte payloads, both brokers on
127.0.0.1 with max inflight 32 and 100000 queued messages; sedged with
\`synchronous: full\`, mosquitto with \`persistence false\` and \`set_tcp_nodelay true\`.
Throughput: median of $REPEAT runs of ${SECS} s per case, each on a fresh broker, counted
at the subscriber from its first message to its last. Broker CPU: utime+stime
from /proc over the run, divided by the messages delivered. Latency: the
median of $LAT_REPEAT runs of ${LAT_SECS} s after a second of warm-up, each percentile
apart, send to receive in one process (CLOCK_MONOTONIC). Load generator
and broker share the machine's CPUs.
Publishers stay at most 10000 messages ahead of the slowest subscriber, so
the broker's queue for it is up to that deep; mosquitto's QoS 2 rate falls
with that depth (it was about 2.5 times higher with \`loadgen --window 1000\`
when this harness was written, sedged's unchanged).
Idle RSS counts the shared libraries' pages the process has touched, most
of them clean file pages the kernel can drop and re-read; bench/libfloor
links the same libraries as sedged and only waits, so its RSS is what the
dynamic loader's mapping and relocating of them costs (libcrypto's
relocations alone are about 400 KB of anonymous memory).
DESC
}

mb() { if [ -s "$1" ]; then awk '{ printf "%.2f", $1 / 1024 }' "$1"; else echo "FAILED: $(head -n 1 "${2:-/dev/null}" 2>/dev/null)"; fi; }

per_conn() { # KIND
    if [ -s "$WORK/rss0.$1" ] && [ -s "$WORK/rss1.$1" ]; then
        awk -v a="$(cat "$WORK/rss0.$1")" -v b="$(cat "$WORK/rss1.$1")" -v n="$IDLE_N" 'BEGIN { printf "%.3f", (b - a) / n }'
    else
        echo "FAILED: $(head -n 1 "$WORK/idle.$1.fail" 2>/dev/null)"
    fi
}
# The floor under sedged's idle RSS: bench/libfloor maps and relocates the
# same shared libraries, then waits.
libfloor_run() {
    "$LIBFLOOR" &
    pid=$!
    sleep 0.3
    rss_kb "$pid" >"$WORK/rss0.libfloor"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

# Idle memory: RSS after start, then with IDLE_N idle connections.
idle_run() { # KIND
    kind=$1
    ctx="idle connections, $kind"
    if ! start_broker "$kind"; then
        echo "$BFAIL" >"$WORK/idle.$kind.fail"
        [ "$kind" = sedged ] && note "$ctx: $BFAIL"
        return
    fi
    sleep 0.3
    rss_kb "$BPID" >"$WORK/rss0.$kind"
    rss_kb "$BPID" RssAnon >"$WORK/anon0.$kind"
    out=$WORK/idle.$kind.out
    timeout -k 5 150 "$LOADGEN" --mode idle --port "$BPORT" --connections "$IDLE_N" --hold 0 \
        --timeout 90 >"$out" 2>>"$WORK/loadgen.log" &
    LGPID=$!
    i=0
    while ! grep -q '^event=connected' "$out" && alive "$LGPID" && [ $i -lt 1000 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    reason=""
    if grep -q '^event=connected' "$out"; then
        sleep 1 # let the broker settle after the last CONNACK
        if alive "$BPID"; then
            rss_kb "$BPID" >"$WORK/rss1.$kind"
            if [ "$kind" = sedged ]; then
                conns=$(timeout 5 "$SEDGECTL" --data-dir "$BDIR/data" status --json 2>/dev/null |
                    sed -n 's/.*"connections": *\([0-9]*\).*/\1/p')
                [ "$conns" != "$IDLE_N" ] && note "$ctx: loadgen holds $IDLE_N connections but sedgectl status says connections=${conns:-?}."
            fi
        fi
    fi
    kill -TERM "$LGPID" 2>/dev/null
    wait "$LGPID"
    LGPID=""
    LINE=$(grep '^mode=idle' "$out")
    printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
    [ -z "$LINE" ] && reason="loadgen gave no result (timed out or crashed)"
    [ -n "$LINE" ] && [ "$(kv status)" != ok ] && reason="$(kv status): $(kv connected) of $IDLE_N connected, $(kv lost) lost; $(errmsg)"
    alive "$BPID" || reason="$kind died while holding idle connections${reason:+ ($reason)}"
    stop_broker "$ctx"
    if [ -n "$reason" ]; then
        rm -f "$WORK/rss1.$kind"
        echo "$reason" >"$WORK/idle.$kind.fail"
        if [ "$kind" = sedged ]; then note "$ctx: FAILED: $reason; reproduce: loadgen --mode idle --port PORT --connections $IDLE_N --hold 10"; else info "$ctx: FAILED: $reason"; fi
        say "  idle on $kind: FAILED: $reason"
        return
    fi
    say "  idle on $kind: $(cat "$WORK/rss0.$kind") kB at start, $(cat "$WORK/rss1.$kind") kB with $IDLE_N connections (connected in $(kv connect_s) s)"
}

# Start-to-ready: exec to the port accepting connections, fresh data each time.
startup_runs() { # KIND
    kind=$1
    : >"$WORK/ready.$kind"
    n=0
    while [ $n -lt "$STARTS" ]; do
        n=$((n + 1))
        NSTART=$((NSTART + 1))
        dir=$WORK/$kind.$NSTART
        mkdir -p "$dir"
        port=$("$LOADGEN" --mode free-port)
        if [ "$kind" = sedged ]; then write_sedged_config "$dir" "$port"; else write_mosquitto_config "$dir" "$port"; fi
        # shellcheck disable=SC2046
        LINE=$(timeout -k 5 30 "$LOADGEN" --mode startup --port "$port" --timeout 10 -- \
            $(broker_command "$kind" "$dir") 2>"$dir/log")
        printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
        if [ "$(kv status)" = ok ]; then
            kv ready_ms >>"$WORK/ready.$kind"
        else
            echo "${LINE:+$(errmsg)}${LINE:-loadgen gave no result}" >>"$WORK/startup.$kind.fail"
            [ "$kind" = sedged ] && note "start $n: sedged: $(errmsg)"
        fi
        code=$(kv exit_code)
        [ -n "$code" ] && [ "$code" != 0 ] && echo "$code" >>"$WORK/stopcodes.$kind"
        [ -s "$dir/log" ] && head -n 1 "$dir/log" | cut -d' ' -f2- >>"$WORK/startlogs.$kind"
    done
    if [ "$kind" = sedged ] && [ -s "$WORK/stopcodes.$kind" ]; then
        codes=$(sort "$WORK/stopcodes.$kind" | uniq -c | awk '{ printf "%s%s (%s times)", (NR > 1 ? ", " : ""), $2, $1 }')
        note "start to ready: sent SIGTERM as soon as its port accepted, sedged exited with status $codes in $(wc -l <"$WORK/stopcodes.$kind") of $STARTS starts (0 expected; 143 = killed by SIGTERM itself, i.e. the port accepts connections before sedged's SIGTERM handler is installed); reproduce: for i in 1 2 3 4 5; do loadgen --mode startup --port P -- sedged --config FILE; done (exit_code=143 in some lines)."
    fi
    if [ "$kind" = sedged ] && [ -s "$WORK/startlogs.$kind" ]; then
        note "start to ready: sedged logged on $(wc -l <"$WORK/startlogs.$kind") of $STARTS short runs (start, one TCP probe connection opened and closed, SIGTERM): $(sort -u "$WORK/startlogs.$kind" | head -n 1)"
    fi
    if [ -s "$WORK/ready.$kind" ]; then
        awk '{ s += $1 } END { printf "%.1f", s / NR }' "$WORK/ready.$kind"
    else
        echo "FAILED: $(head -n 1 "$WORK/startup.$kind.fail" 2>/dev/null)"
    fi
}

