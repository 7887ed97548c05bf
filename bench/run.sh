#!/bin/sh
# bench/run.sh BUILD_DIR: Sedge's benchmarks, side by side with mosquitto.
#
# Every measurement starts a fresh broker — sedged on a fresh data directory,
# mosquitto in memory — on a port that is free at that moment (other
# programs on the machine may hold fixed ones), drives it with bench/loadgen
# (a libmosquitto client, the same for both brokers) and stops it. The
# throughput runs are repeated, alternating the brokers, and the median
# taken, because a shared machine is noisy. The table goes to stdout and to
# bench/results/latest.md; after it comes what looked wrong in sedged —
# failed or lossy runs, unclean stops, its log's warnings and errors — with
# the command that reproduces each.
#
# Environment: BENCH_SECONDS (3) per throughput run, BENCH_REPEAT (3),
# BENCH_LATENCY_SECONDS (5) per latency run (after 1 s of warm-up),
# BENCH_LATENCY_REPEAT (3), BENCH_IDLE_CONNECTIONS (10000), BENCH_STARTS
# (10), MOSQUITTO (/usr/sbin/mosquitto), BENCH_KEEP=1 keeps the work
# directory (configurations, logs, raw loadgen lines).
set -u

if [ $# -lt 1 ]; then
    echo "usage: sh bench/run.sh BUILD_DIR" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "run.sh: no build directory '$1' (run make build)" >&2; exit 2; }
SEDGED=$BUILD/sedged
SEDGECTL=$BUILD/sedgectl
LOADGEN=$BUILD/bench/loadgen
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
SECS=${BENCH_SECONDS:-3}
REPEAT=${BENCH_REPEAT:-3}
LAT_SECS=${BENCH_LATENCY_SECONDS:-5}
LAT_REPEAT=${BENCH_LATENCY_REPEAT:-3}
IDLE_N=${BENCH_IDLE_CONNECTIONS:-10000}
STARTS=${BENCH_STARTS:-10}
RESULTS=$ROOT/bench/results/latest.md

[ -x "$LOADGEN" ] || cmake --build "$BUILD" --target loadgen >/dev/null 2>&1
for f in "$SEDGED" "$SEDGECTL" "$LOADGEN" "$MOSQUITTO"; do
    if [ ! -x "$f" ]; then
        echo "run.sh: $f is missing (make build; apt-get install mosquitto libmosquitto-dev)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sedge-bench.XXXXXX") || exit 1
BPID=""
BKIND=""
LGPID=""

cleanup() {
    [ -n "$LGPID" ] && kill -TERM "$LGPID" 2>/dev/null
    [ -n "$BPID" ] && kill -KILL "$BPID" 2>/dev/null
    [ -n "$LGPID" ] && wait "$LGPID" 2>/dev/null
    [ -n "$BPID" ] && wait "$BPID" 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "run.sh: work directory kept in $WORK" >&2
    elif [ -s "$WORK/notes" ]; then
        # What sedged did wrong is worth a look; its databases are not.
        rm -rf "$WORK"/sedged.*/data
        echo "run.sh: configurations and logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each broker holds one descriptor per connection. (-n is not POSIX, but
# every sh this runs under has it.)
# shellcheck disable=SC3045
ulimit -n "$(ulimit -Hn)" 2>/dev/null

note() { printf '%s\n' "$*" >>"$WORK/notes"; }  # sedged misbehaved: a bug to fix
info() { printf '%s\n' "$*" >>"$WORK/info"; }   # worth knowing when reading the figures
say() { printf '%s\n' "$*" >&2; }

# A child of this shell is alive until it exits; then it is a zombie until waited for.
alive() {
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }
rss_kb() { awk -v k="${2:-VmRSS}:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
TICK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# Fields of the loadgen line in $LINE.
kv() { printf '%s\n' "$LINE" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
errmsg() { printf '%s\n' "$LINE" | sed -n 's/.* error="\(.*\)".*/\1/p'; }

write_sedged_config() { # DIR PORT
    cat >"$1/sedge.json" <<EOF
{
  "data_dir": "data",
  "listeners": [{"type": "tcp", "bind": "127.0.0.1:$2"}],
  "limits": {"max_connections": 20000, "max_inflight": 32, "max_queued_messages": 100000},
  "store": {"synchronous": "full"},
  "log_level": "warn"
}
EOF
}

# mosquitto's defaults leave Nagle on and log every connection; sedged does
# neither, so both are turned off here to compare like with like.
write_mosquitto_config() { # DIR PORT
    cat >"$1/mosquitto.conf" <<EOF
listener $2 127.0.0.1
allow_anonymous true
max_inflight_messages 32
max_queued_messages 100000
persistence false
set_tcp_nodelay true
log_type error
log_type warning
connection_messages false
EOF
}

broker_command() { # KIND DIR: the broker's argv, in "$@" of the caller via set --
    if [ "$1" = sedged ]; then
        echo "$SEDGED --config $2/sedge.json"
    else
        echo "$MOSQUITTO -c $2/mosquitto.conf"
    fi
}

NSTART=0
# start_broker KIND: sets BPID, BPORT, BDIR; on failure returns 1 with BFAIL.
start_broker() {
    BKIND=$1
    NSTART=$((NSTART + 1))
    BDIR=$WORK/$BKIND.$NSTART
    mkdir -p "$BDIR"
    BPORT=$("$LOADGEN" --mode free-port) || { BFAIL="no free port"; return 1; }
    if [ "$BKIND" = sedged ]; then
        write_sedged_config "$BDIR" "$BPORT"
        "$SEDGED" --config "$BDIR/sedge.json" >"$BDIR/log" 2>&1 &
    else
        write_mosquitto_config "$BDIR" "$BPORT"
        "$MOSQUITTO" -c "$BDIR/mosquitto.conf" >"$BDIR/log" 2>&1 &
    fi
    BPID=$!
    i=0
    while ! "$LOADGEN" --mode wait-port --port "$BPORT" --timeout 0.1 >/dev/null; do
        i=$((i + 1))
        if ! alive "$BPID" || [ $i -ge 100 ]; then
            if alive "$BPID"; then
                BFAIL="$BKIND did not accept connections on port $BPORT within 10 s"
            else
                BFAIL="$BKIND exited at start: $(head -n 3 "$BDIR/log" | tr '\n' ' ')"
            fi
            stop_broker "start"
            return 1
        fi
    done
    return 0
}

# stop_broker CONTEXT: SIGTERM, 10 s to exit cleanly, then SIGKILL; notes
# what sedged did wrong, including what its log says.
stop_broker() {
    [ -n "$BPID" ] || return 0
    if alive "$BPID"; then
        kill -TERM "$BPID" 2>/dev/null
        i=0
        while alive "$BPID" && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if alive "$BPID"; then
            kill -KILL "$BPID" 2>/dev/null
            [ "$BKIND" = sedged ] && note "$1: sedged did not stop within 10 s of SIGTERM (killed)."
        fi
        wait "$BPID"
        code=$?
        if [ $code -ne 0 ] && [ "$BKIND" = sedged ]; then
            note "$1: sedged exited with status $code on SIGTERM (0 expected)."
        fi
    else
        wait "$BPID"
        code=$?
        if [ "$BKIND" = sedged ]; then
            note "$1: sedged died during the run (exit status $code$([ $code -gt 128 ] && echo ", signal $((code - 128))"))."
        else
            info "$1: mosquitto died during the run (exit status $code)."
        fi
    fi
    if [ "$BKIND" = sedged ] && [ -s "$BDIR/log" ]; then
        n=$(wc -l <"$BDIR/log")
        note "$1: sedged logged $n line(s) at warn/error level, e.g.:"
        cut -d' ' -f2- "$BDIR/log" | sort | uniq -c | sort -rn | head -n 5 |
            while read -r count text; do note "      ${count}x $text"; done
    fi
    BPID=""
}

# sedged's own view of the run, while it still runs.
sedged_counters() { # CONTEXT
    st=$(timeout 5 "$SEDGECTL" --data-dir "$BDIR/data" status --json 2>&1) || {
        note "$1: sedgectl status failed: $(printf '%s' "$st" | head -n 1)"
        return
    }
    for k in messages_dropped protocol_errors store_failures; do
        v=$(printf '%s\n' "$st" | sed -n "s/.*\"$k\": *\([0-9]*\).*/\1/p")
        [ -n "$v" ] && [ "$v" != 0 ] && note "$1: sedgectl status reports $k=$v."
    done
}

RUNS=0
# tp_run NAME KIND LOADGEN_ARGS...: one throughput run on a fresh broker;
# appends "rate cpu_us_per_msg" to $WORK/NAME.KIND, or a reason to .fail.
tp_run() {
    name=$1
    kind=$2
    shift 2
    RUNS=$((RUNS + 1))
    ctx="$name, $kind, run $RUNS"
    if ! start_broker "$kind"; then
        echo "$BFAIL" >>"$WORK/$name.$kind.fail"
        [ "$kind" = sedged ] && note "$ctx: $BFAIL"
        return
    fi
    c0=$(cpu_ticks "$BPID")
    LINE=$(timeout -k 5 $((SECS * 5 + 60)) "$LOADGEN" --port "$BPORT" --timeout $((SECS * 4 + 40)) "$@" 2>>"$WORK/loadgen.log")
    c1=$(cpu_ticks "$BPID")
    printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
    [ "$kind" = sedged ] && alive "$BPID" && sedged_counters "$ctx"
    died=0
    alive "$BPID" || died=1
    stop_broker "$ctx"
    status=$(kv status)
    reason=""
    if [ -z "$LINE" ]; then
        reason="loadgen gave no result (timed out or crashed)"
    elif [ "$status" != ok ]; then
        reason="$status: $(errmsg)"
    fi
    [ $died = 1 ] && reason="$kind died during the run${reason:+ ($reason)}"
    repro="reproduce: loadgen --port PORT $* (against a broker configured as in bench/run.sh)"
    if [ -n "$reason" ]; then
        echo "$reason" >>"$WORK/$name.$kind.fail"
        if [ "$kind" = sedged ]; then note "$ctx: FAILED: $reason; $repro"; else info "$ctx: FAILED: $reason"; fi
        say "  $name on $kind: FAILED: $reason"
        return
    fi
    rate=$(kv rate)
    received=$(kv received)
    cpu=$(awk -v a="$c0" -v b="$c1" -v t="$TICK" -v n="$received" \
        'BEGIN { if (a == "" || b == "" || n == 0) print "-"; else printf "%.3f", (b - a) * 1e6 / t / n }')
    echo "$rate $cpu" >>"$WORK/$name.$kind"
    say "  $name on $kind: $rate msg/s, broker CPU $cpu us/msg, loadgen threads $(kv lg_threads_pct)%"
    for k in lost dup reordered malformed refused; do
        v=$(kv $k)
        if [ -n "$v" ] && [ "$v" != 0 ]; then
            if [ "$kind" = sedged ]; then
                note "$ctx: $k=$v of $(kv expected) expected messages (QoS $(kv qos)); $repro"
            else
                info "$ctx: mosquitto: $k=$v of $(kv expected) expected messages"
                [ "$k" = lost ] && [ "$(kv qos)" != 0 ] && info "mosquitto's QoS 1/2 losses: it acknowledged the messages and then kept them queued for the subscriber without ever sending them once the publishers stopped (mosquitto_sub as a second subscriber misses them too, so the load generator is not the cause); 2.0.13 has inflight-quota fixes (eclipse/mosquitto#2362). Its rate, counted while messages flowed, is not affected."
            fi
        fi
    done
    busiest=$(kv lg_threads_pct | tr ',' '\n' | sort -n | tail -n 1)
    if [ -n "$busiest" ] && [ "$busiest" -ge 90 ]; then
        info "$name on $kind: a loadgen thread was 90% busy or more in a run: the figure is partly the load generator's limit (libmosquitto reads a packet in three system calls), so a ratio to the other broker understates the faster one."
    fi
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# figure NAME KIND COLUMN: the median of the successful runs, or FAILED.
figure() {
    f=$WORK/$1.$2
    if [ -s "$f" ]; then
        awk -v c="$3" '$c != "-" { print $c }' "$f" | median
        if [ -s "$f.fail" ] && [ "$2" = sedged ]; then
            note "$1: $(wc -l <"$f.fail") of $((REPEAT)) sedged runs failed; the figure is the median of the others."
        fi
    elif [ -s "$f.fail" ]; then
        echo "FAILED: $(head -n 1 "$f.fail")"
    else
        echo "FAILED: not measured"
    fi
}

# single_run NAME KIND LOADGEN_ARGS...: one run whose whole line is added to $WORK/NAME.KIND.lines.
single_run() {
    name=$1
    kind=$2
    shift 2
    ctx="$name, $kind"
    if ! start_broker "$kind"; then
        echo "$BFAIL" >>"$WORK/$name.$kind.fail"
        [ "$kind" = sedged ] && note "$ctx: $BFAIL"
        return
    fi
    LINE=$(timeout -k 5 $((LAT_SECS * 3 + 60)) "$LOADGEN" --port "$BPORT" --timeout $((LAT_SECS * 2 + 40)) "$@" 2>>"$WORK/loadgen.log")
    printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
    [ "$kind" = sedged ] && alive "$BPID" && sedged_counters "$ctx"
    died=0
    alive "$BPID" || died=1
    stop_broker "$ctx"
    status=$(kv status)
    reason=""
    [ -z "$LINE" ] && reason="loadgen gave no result (timed out or crashed)"
    [ -n "$LINE" ] && [ "$status" != ok ] && reason="$status: $(errmsg)"
    [ $died = 1 ] && reason="$kind died during the run${reason:+ ($reason)}"
    if [ -n "$reason" ]; then
        echo "$reason" >>"$WORK/$name.$kind.fail"
        if [ "$kind" = sedged ]; then note "$ctx: FAILED: $reason; reproduce: loadgen --port PORT $*"; else info "$ctx: FAILED: $reason"; fi
        say "  $name on $kind: FAILED: $reason"
        return
    fi
    printf '%s\n' "$LINE" >>"$WORK/$name.$kind.lines"
    say "  $name on $kind: p50 $(kv p50_us) us, p99 $(kv p99_us) us, p99.9 $(kv p999_us) us"
    for k in lost dup reordered malformed; do
        v=$(kv $k)
        if [ -n "$v" ] && [ "$v" != 0 ]; then
            if [ "$kind" = sedged ]; then note "$ctx: $k=$v of $(kv expected) messages; reproduce: loadgen --port PORT $*"; else info "$ctx: mosquitto: $k=$v"; fi
        fi
    done
}

# line_value NAME KIND KEY: the median of a field over the runs' lines, or FAILED.
line_value() {
    f=$WORK/$1.$2
    if [ -s "$f.lines" ]; then
        tr ' ' '\n' <"$f.lines" | sed -n "s/^$3=//p" | median
    elif [ -s "$f.fail" ]; then
        echo "FAILED: $(head -n 1 "$f.fail")"
    else
        echo "FAILED: not measured"
    fi
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

# ---- the measurements ----

T0=$(date +%s)
say "benchmarks: sedged ($SEDGED) against mosquitto ($MOSQUITTO); work directory $WORK"
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

say "start to ready, $STARTS starts each"
READY_S=$(startup_runs sedged)
READY_M=$(startup_runs mosquitto)

# ---- the table ----

num() { case "$1" in '' | FAILED* | -) return 1 ;; *) return 0 ;; esac; }

# ratio A B: A/B as "1.23x".
ratio() {
    if num "$1" && num "$2"; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
    else
        echo "-"
    fi
}

# met OP LIMIT VALUE: yes/no for VALUE OP LIMIT.
met() {
    if num "$3"; then
        awk -v op="$1" -v l="$2" -v v="$3" \
            'BEGIN { ok = op == ">=" ? v + 0 >= l + 0 : v + 0 <= l + 0; print ok ? "yes" : "**no**" }'
    else
        echo "**no**"
    fi
}

fmt() { # NUMBER [DECIMALS]
    if num "$1"; then awk -v v="$1" -v d="${2:-0}" 'BEGIN { printf "%.*f", d, v }'; else printf '%s' "$1"; fi
}

TABLE=$WORK/table.md
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@" >>"$TABLE"; }

# A relative row: LABEL NAME COLUMN DECIMALS OP LIMIT
rel_row() {
    s=$(figure "$2" sedged "$3")
    m=$(figure "$2" mosquitto "$3")
    r=$(ratio "$s" "$m")
    if [ -n "$5" ]; then
        row "$1" "$(fmt "$s" "$4")" "$(fmt "$m" "$4")" "$r" "$5 ${6}x mosquitto" "$(met "$5" "$6" "$(printf '%s' "$r" | tr -d x)")"
    else
        row "$1" "$(fmt "$s" "$4")" "$(fmt "$m" "$4")" "$r" "-" "-"
    fi
}

# An absolute row: LABEL SEDGED MOSQUITTO DECIMALS OP LIMIT UNIT
abs_row() {
    if [ -n "$5" ]; then
        row "$1" "$(fmt "$2" "$4")" "$(fmt "$3" "$4")" "$(ratio "$2" "$3")" "$5 $6 $7" "$(met "$5" "$6" "$2")"
    else
        row "$1" "$(fmt "$2" "$4")" "$(fmt "$3" "$4")" "$(ratio "$2" "$3")" "-" "-"
    fi
}

: >"$TABLE"
row "metric" "sedged" "mosquitto" "sedged/mosquitto" "target" "met"
row "---" "---:" "---:" "---:" "---" "---"
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
mb() { if [ -s "$1" ]; then awk '{ printf "%.2f", $1 / 1024 }' "$1"; else echo "FAILED: $(head -n 1 "${2:-/dev/null}" 2>/dev/null)"; fi; }
RS0=$(mb "$WORK/rss0.sedged" "$WORK/idle.sedged.fail")
RM0=$(mb "$WORK/rss0.mosquitto" "$WORK/idle.mosquitto.fail")
RS1=$(mb "$WORK/rss1.sedged" "$WORK/idle.sedged.fail")
RM1=$(mb "$WORK/rss1.mosquitto" "$WORK/idle.mosquitto.fail")
per_conn() { # KIND
    if [ -s "$WORK/rss0.$1" ] && [ -s "$WORK/rss1.$1" ]; then
        awk -v a="$(cat "$WORK/rss0.$1")" -v b="$(cat "$WORK/rss1.$1")" -v n="$IDLE_N" 'BEGIN { printf "%.3f", (b - a) / n }'
    else
        echo "FAILED: $(head -n 1 "$WORK/idle.$1.fail" 2>/dev/null)"
    fi
}
abs_row "idle RSS after start (MB)" "$RS0" "$RM0" 2 "<=" 4 MB
abs_row "idle RSS after start, anonymous memory only (MB)" "$(mb "$WORK/anon0.sedged" "$WORK/idle.sedged.fail")" "$(mb "$WORK/anon0.mosquitto" "$WORK/idle.mosquitto.fail")" 2 "" "" ""
abs_row "RSS with $IDLE_N idle connections (MB)" "$RS1" "$RM1" 1 "" "" ""
abs_row "RSS per idle connection (KB)" "$(per_conn sedged)" "$(per_conn mosquitto)" 2 "<=" 0.7 KB
abs_row "start to ready, mean of $STARTS (ms)" "$READY_S" "$READY_M" 1 "<=" 20 ms

ELAPSED=$(($(date +%s) - T0))
CPU_MODEL=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] && COMMIT="$COMMIT (src/ modified)"

{
    echo "# Sedge benchmarks"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), sedged $COMMIT vs $("$MOSQUITTO" -h 2>/dev/null | head -n 1),"
    echo "$(nproc) CPU ($CPU_MODEL), Linux $(uname -r); \`make bench\` took ${ELAPSED} s."
    echo
    echo "Load: bench/loadgen (libmosquitto), MQTT 3.1.1, 64-byte payloads, both brokers on"
    echo "127.0.0.1 with max inflight 32 and 100000 queued messages; sedged with"
    echo "\`synchronous: full\`, mosquitto with \`persistence false\` and \`set_tcp_nodelay true\`."
    echo "Throughput: median of $REPEAT runs of ${SECS} s per case, each on a fresh broker, counted"
    echo "at the subscriber from its first message to its last. Broker CPU: utime+stime"
    echo "from /proc over the run, divided by the messages delivered. Latency: the"
    echo "median of $LAT_REPEAT runs of ${LAT_SECS} s after a second of warm-up, each percentile"
    echo "apart, send to receive in one process (CLOCK_MONOTONIC). Load generator"
    echo "and broker share the machine's CPUs."
    echo "Publishers stay at most 10000 messages ahead of the slowest subscriber, so"
    echo "the broker's queue for it is up to that deep; mosquitto's QoS 2 rate falls"
    echo "with that depth (it was about 2.5 times higher with \`loadgen --window 1000\`"
    echo "when this harness was written, sedged's unchanged)."
    echo
    cat "$TABLE"
    echo
    if [ -s "$WORK/notes" ]; then
        echo "## What looked wrong in sedged"
        echo
        sed 's/^/- /; s/^-       /      /' "$WORK/notes"
        echo
    else
        echo "Nothing looked wrong in sedged: no failed, lossy or duplicated runs, clean stops, an empty log."
        echo
    fi
    if [ -s "$WORK/info" ]; then
        echo "## Notes"
        echo
        sort -u "$WORK/info" | sed 's/^/- /'
        echo
    fi
} >"$WORK/report.md"

mkdir -p "$ROOT/bench/results"
cp "$WORK/report.md" "$RESULTS"
cat "$WORK/report.md"
echo "(written to ${RESULTS#"$ROOT"/})"
