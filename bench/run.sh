#!/bin/sh
# bench/run.sh BUILD_DIR [SECTION...]: Sedge's benchmarks, each beside a
# reference measured in the same run — mosquitto for the broker, the spool
# and its bridge; sedged without a group for routing; fork+exec for
# functions; none for shadows, which mosquitto does not have.
#
# Sections (all by default, in this order; each can run alone):
#   broker     throughput, latency, CPU, memory, start-up vs mosquitto
#   groups     routed throughput with 100 things and 1,000 routes vs the
#              open broker; deploy time of a 1,000-thing group
#   shadows    durable shadow updates per second and get latency over MQTT
#   spool      store-and-forward to a TLS cloud (mosquitto): publish rate
#              with the cloud up and down, drain after an outage, vs a
#              mosquitto bridge
#   functions  warm and cold invocation latency and invocations per second
#              (C sandboxed and not, Python) vs fork+exec of the same program
#   burst      the unpaced QoS 0 burst (4 -> 1, no window): what arrives, at
#              what rate, and the brokers' peak RSS (issue 15, part 1)
#   mtls       mutual TLS: fan-in throughput, handshakes per second (full and
#              resumed), memory per idle mTLS connection (part 2)
#   fanout     1 -> 1,000 subscribers; 64 KB and 1 MB payloads (part 3)
#   scale      50,000 idle connections, TCP and mTLS: RSS, CPU at rest, time
#              to accept them all (part 4)
#   rest       private dirty memory of an idle sedged with every service
#              configured (part 5)
#   http       the HTTP front: discovery requests/s and TLS handshakes/s vs
#              libwebsockets answering a fixed body, MQTT over WebSockets vs
#              mosquitto, the idle RSS the front adds (issue 13)
#   connectors Modbus TCP round trips through sedged vs libmodbus direct,
#              the HTTP sink's messages/s, the serial connector's bytes/s
#              each way vs a pty pair direct, each connector's private
#              dirty memory at rest (issue 18; bench/connectors.py)
#   ml         image classification: the connector through sedged vs OpenCV
#              DNN called directly, per-image latency, images/s, memory
#   ota        an over-the-air update from a cloud job: job to committed,
#              the service gap vs a plain restart, the updater at rest
# The sections live in bench/sections/NAME.sh.
#
# Every measurement starts a fresh broker — sedged on a fresh data directory,
# mosquitto in memory — on a port that is free at that moment (other
# programs on the machine may hold fixed ones), drives it with bench/loadgen
# (a libmosquitto client, the same for both brokers) and stops it. The
# throughput runs are repeated, alternating the brokers, and the median
# taken, because a shared machine is noisy. Each section's table goes to
# stdout and to bench/results/latest.md; after it comes what looked wrong in
# sedged — failed or lossy runs, unclean stops, its log's warnings and
# errors — with the command that reproduces each. A run of some sections
# replaces only theirs in latest.md; each section says when it was measured.
# At the top of latest.md, one table holds every row of every section with
# its reference, ratio and target, and the list of rows where sedged loses
# (bench/summary.awk); it says whether all rows come from one commit. A full
# run (no SECTION given: `make bench`) also copies the rows with a target
# and the losses into README.md, between its "bench: summary" markers, so
# README's figures are this file's, at one commit.
#
# Environment: BENCH_SECONDS (3) per throughput run, BENCH_REPEAT (3),
# BENCH_LATENCY_SECONDS (5) per latency run (after 1 s of warm-up),
# BENCH_LATENCY_REPEAT (3), BENCH_IDLE_CONNECTIONS (10000), BENCH_STARTS
# (10), BENCH_SPOOL_MESSAGES (100000), BENCH_SPOOL_REPEAT (3),
# BENCH_FN_SECONDS (1.5) per invocation-rate run, BENCH_FN_COLD (5) cold
# starts, BENCH_BURST_MESSAGES (200000), BENCH_FANOUT_SUBSCRIBERS (1000),
# BENCH_ML_IMAGES (200), BENCH_ML_REPEAT (3), BENCH_ML_THREADS (1), BENCH_ML_GAP_US (1000),
# BENCH_SCALE_CONNECTIONS (50000, capped by the descriptor limit; 0 leaves
# the scale section out), BENCH_SCALE_REST_S (10), MOSQUITTO (/usr/sbin/mosquitto), BENCH_KEEP=1 keeps the work
# directory (configurations, logs, raw loadgen lines).
set -u

ALL_SECTIONS="broker burst mtls fanout scale rest groups shadows spool functions http connectors ml ota"
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    echo "usage: sh bench/run.sh BUILD_DIR [SECTION...]   (sections: $ALL_SECTIONS; default all)" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "run.sh: no build directory '$1' (run make build)" >&2; exit 2; }
shift
# The sections asked for, in the canonical order, each once.
[ $# -gt 0 ] || set -- $ALL_SECTIONS
for s in "$@"; do
    case " $ALL_SECTIONS " in
    *" $s "*) ;;
    *) echo "run.sh: no section '$s' (sections: $ALL_SECTIONS)" >&2; exit 2 ;;
    esac
done
SECTIONS=""
for s in $ALL_SECTIONS; do
    case " $* " in *" $s "*) SECTIONS="$SECTIONS $s" ;; esac
done
SECTIONS=${SECTIONS# }
SEDGED=$BUILD/sedged
SEDGECTL=$BUILD/sedgectl
LOADGEN=$BUILD/bench/loadgen
INVOKE_BENCH=$BUILD/bench/invoke_bench
LIBFLOOR=$BUILD/bench/libfloor
CONNBENCH=$BUILD/bench/connbench
TLS_CONN_MEM=$BUILD/bench/tls_conn_mem
ECHO_C=$BUILD/examples/echo
ECHO_PY=$ROOT/examples/functions/python/echo.py
PYTHON=${PYTHON:-/usr/bin/python3}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
SECS=${BENCH_SECONDS:-3}
REPEAT=${BENCH_REPEAT:-3}
LAT_SECS=${BENCH_LATENCY_SECONDS:-5}
LAT_REPEAT=${BENCH_LATENCY_REPEAT:-3}
IDLE_N=${BENCH_IDLE_CONNECTIONS:-10000}
STARTS=${BENCH_STARTS:-10}
RESULTS=$ROOT/bench/results/latest.md

[ -x "$LOADGEN" ] && [ -x "$INVOKE_BENCH" ] && [ -x "$LIBFLOOR" ] && [ -x "$CONNBENCH" ] && [ -x "$TLS_CONN_MEM" ] ||
    cmake --build "$BUILD" --target loadgen invoke_bench libfloor connbench tls_conn_mem >/dev/null 2>&1
[ -x "$BUILD/bench/curl_floor" ] || cmake --build "$BUILD" --target curl_floor modbus_direct >/dev/null 2>&1
for f in "$SEDGED" "$SEDGECTL" "$LOADGEN" "$INVOKE_BENCH" "$LIBFLOOR" "$CONNBENCH" "$MOSQUITTO"; do
    if [ ! -x "$f" ]; then
        echo "run.sh: $f is missing (make build; apt-get install mosquitto libmosquitto-dev)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sedge-bench.XXXXXX") || exit 1
# Traversable (not listable): functions run as nobody without a sandbox
# reach the function socket in a data directory below.
chmod 0711 "$WORK"
BPID=""
BKIND=""
LGPID=""
CPID=""   # the spool section's cloud broker
BGPIDS="" # other background helpers (counters)

cleanup() {
    for p in $LGPID $BGPIDS; do kill -TERM "$p" 2>/dev/null; done
    [ -n "$BPID" ] && kill -KILL "$BPID" 2>/dev/null
    [ -n "$CPID" ] && kill -KILL "$CPID" 2>/dev/null
    for p in $LGPID $BGPIDS $BPID $CPID; do wait "$p" 2>/dev/null; done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "run.sh: work directory kept in $WORK" >&2
    elif [ -n "$(find "$WORK" -maxdepth 1 -name 'notes.*' -size +0 2>/dev/null)" ]; then
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

SECTION=broker
note() { printf '%s\n' "$*" >>"$WORK/notes.$SECTION"; }  # sedged misbehaved: a bug to fix
info() { printf '%s\n' "$*" >>"$WORK/info.$SECTION"; }   # worth knowing when reading the figures
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

# BTLSPORT set (start_broker with BENCH_TLS=1): a mutual TLS listener too,
# with the certificates of bench_pki. SEDGED_LIMITS replaces the limits.
write_sedged_config() { # DIR PORT
    tls_listener=""
    [ -n "${BTLSPORT:-}" ] && tls_listener=",
    {\"type\": \"tls\", \"bind\": \"127.0.0.1:$BTLSPORT\", \"ca_file\": \"$BPKI/ca.pem\",
     \"cert_file\": \"$BPKI/core.pem\", \"key_file\": \"$BPKI/core.key\"}"
    limits=${SEDGED_LIMITS:-'"max_connections": 20000, "max_inflight": 32, "max_queued_messages": 100000'}
    cat >"$1/sedge.json" <<EOF
{
  "data_dir": "data",
  "listeners": [{"type": "tcp", "bind": "127.0.0.1:$2"}$tls_listener${SEDGED_EXTRA_LISTENERS:+,
    $SEDGED_EXTRA_LISTENERS}],
  "limits": {$limits},
  "store": {"synchronous": "full"},
  "log_level": "warn"${SEDGED_EXTRA:+,
  $SEDGED_EXTRA}
}
EOF
}

# mosquitto's defaults leave Nagle on and log every connection; sedged does
# neither, so both are turned off here to compare like with like.
write_mosquitto_config() { # DIR PORT
    cat >"$1/mosquitto.conf" <<EOF
listener $2 127.0.0.1
allow_anonymous true
max_inflight_messages ${MOSQ_INFLIGHT:-32}
max_queued_messages ${MOSQ_QUEUED:-100000}
persistence false
set_tcp_nodelay true
log_type error
log_type warning
connection_messages false
${MOSQ_EXTRA:-}
EOF
    # The same certificates as sedged's tls listener; mosquitto's defaults
    # for the rest (TLS 1.2 and 1.3, OpenSSL's cipher lists, which are
    # sedged's too: the rows say what was negotiated).
    [ -n "${BTLSPORT:-}" ] && cat >>"$1/mosquitto.conf" <<EOF
listener $BTLSPORT 127.0.0.1
cafile $BPKI/ca.pem
certfile $BPKI/core.pem
keyfile $BPKI/core.key
require_certificate true
$([ "$(id -u)" = 0 ] && echo "user root")
EOF
    return 0
}

# bench_pki: a CA, the core's certificate and one client's (CN
# bench-client), made once per run with sedgectl; BPKI is their directory.
# Every mTLS client of the benchmarks uses bench-client. 1 with BFAIL.
bench_pki() {
    BPKI=$WORK/bench-pki
    [ -s "$BPKI/bench-client.key" ] && return 0
    mkdir -p "$BPKI"
    if ! out=$(timeout 30 "$SEDGECTL" ca init --dir "$BPKI" --core-name bench-core --san localhost --san 127.0.0.1 2>&1) ||
        ! out=$(timeout 30 "$SEDGECTL" cert issue bench-client --dir "$BPKI" 2>&1); then
        BFAIL="sedgectl ca init / cert issue failed: $(printf '%s' "$out" | head -n 1)"
        return 1
    fi
}
tls_client_args() { echo "--cafile $BPKI/ca.pem --cert $BPKI/bench-client.pem --key $BPKI/bench-client.key"; }

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
    BTLSPORT=""
    if [ "${BENCH_TLS:-0}" = 1 ]; then
        bench_pki || return 1
        BTLSPORT=$BPORT
        while [ "$BTLSPORT" = "$BPORT" ]; do
            BTLSPORT=$("$LOADGEN" --mode free-port) || { BFAIL="no free port"; return 1; }
        done
    fi
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
    if [ -n "$BTLSPORT" ] && ! "$LOADGEN" --mode wait-port --port "$BTLSPORT" --timeout 10 >/dev/null; then
        BFAIL="$BKIND did not accept connections on its TLS port $BTLSPORT within 10 s"
        stop_broker "start"
        return 1
    fi
    if [ "$BKIND" = sedged ] && [ -n "${GROUP_DOC:-}" ]; then
        out=$(timeout 30 "$SEDGECTL" --data-dir "$BDIR/data" deploy "$GROUP_DOC" 2>&1) || {
            BFAIL="sedgectl deploy $(basename "$GROUP_DOC") failed: $(printf '%s' "$out" | head -n 2 | tr '\n' ' ')"
            stop_broker "start"
            return 1
        }
    fi
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
    # EXPECTED_LOG: what a section provokes on purpose (the cloud down).
    if [ "$BKIND" = sedged ] && [ -s "$BDIR/log" ]; then
        grep -Ev "${EXPECTED_LOG:-^\$}" "$BDIR/log" >"$BDIR/log.unexpected"
        if [ -s "$BDIR/log.unexpected" ]; then
            n=$(wc -l <"$BDIR/log.unexpected")
            note "$1: sedged logged $n line(s) at warn/error level, e.g.:"
            cut -d' ' -f2- "$BDIR/log.unexpected" | sed 's/pid [0-9]*/pid N/g' | sort | uniq -c | sort -rn | head -n 5 |
                while read -r count text; do note "      ${count}x $text"; done
        fi
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
# appends "rate cpu_us_per_msg" to $WORK/NAME.KIND, or a reason to .fail;
# "unique expected sent" to NAME.KIND.delivered and the broker's peak RSS
# (VmHWM, kB) to NAME.KIND.hwm. LG_TLS=1 (with BENCH_TLS=1): loadgen
# connects to the mTLS listener.
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
    lgport=$BPORT
    lgtls=""
    if [ "${LG_TLS:-0}" = 1 ]; then
        lgport=$BTLSPORT
        lgtls=$(tls_client_args)
    fi
    c0=$(cpu_ticks "$BPID")
    # shellcheck disable=SC2086
    LINE=$(timeout -k 5 $((SECS * 5 + 60)) "$LOADGEN" --port "$lgport" $lgtls --timeout $((SECS * 4 + 40)) "$@" 2>>"$WORK/loadgen.log")
    c1=$(cpu_ticks "$BPID")
    hwm=$(rss_kb "$BPID" VmHWM)
    printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
    [ "$kind" = sedged ] && alive "$BPID" && sedged_counters "$ctx"
    # AFTER_RUN: a section's own check of the broker, while it runs.
    [ -n "${AFTER_RUN:-}" ] && [ -n "$LINE" ] && alive "$BPID" && "$AFTER_RUN" "$ctx"
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
    echo "$(kv unique) $(kv expected) $(kv sent)" >>"$WORK/$name.$kind.delivered"
    [ -n "$hwm" ] && echo "$hwm" >>"$WORK/$name.$kind.hwm"
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


# ---- shared by the sections ----

# poll SECONDS COMMAND...: run COMMAND every 50 ms until it succeeds; 1 on timeout.
poll() {
    poll_end=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -ge "$poll_end" ] && return 1
        sleep 0.05
    done
}

now_ms() { awk -v t="$(date +%s%N)" 'BEGIN { printf "%.3f", t / 1e6 }'; }

# ctl ARGS...: sedgectl against the running sedged, never hanging.
ctl() { timeout 10 "$SEDGECTL" --data-dir "$BDIR/data" "$@"; }

# jfield KEY: a number or string field of the (pretty-printed) JSON on stdin.
jfield() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -n 1; }

# A fresh run id for loadgen --run-id: 8 hex digits.
new_run_id() { od -An -N4 -tx4 /dev/urandom | tr -d ' \n'; }

# The section's description paragraph, from stdin.
describe() { cat >"$WORK/desc.$SECTION"; }

# Median over the runs of NAME.KIND.delivered of 100 * unique / expected.
delivered_pct() { # NAME KIND
    f=$WORK/$1.$2.delivered
    if [ -s "$f" ]; then
        awk '$2 > 0 { printf "%.3f\n", 100 * $1 / $2 }' "$f" | median
    else
        figure "$1" "$2" 1 # FAILED: the reason
    fi
}

# Median of NAME.KIND.hwm, in MB.
peak_mb() { # NAME KIND
    f=$WORK/$1.$2.hwm
    if [ -s "$f" ]; then
        median <"$f" | awk '{ printf "%.2f", $1 / 1024 }'
    else
        figure "$1" "$2" 1
    fi
}

# CPU time of all the process's threads, in nanoseconds (schedstat is
# exact where /proc/PID/stat counts ticks of 10 ms).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

# hold_run NAME KIND TCP_N TLS_N SOURCES REST_S: a fresh broker (with its
# mTLS listener) holding TCP_N idle TCP and TLS_N idle mTLS connections,
# opened at once by two bench/connbench processes from SOURCES source
# addresses. Writes "rss0_kb rss1_kb connect_s rest_cpu_ms_per_s rss2_kb"
# to $WORK/NAME.KIND.hold: RSS after start, a second after the last
# CONNACK, the time until every connection had its CONNACK, the broker's
# CPU per second of the REST_S seconds after that (- when 0) and the RSS
# after them; or a reason to NAME.KIND.fail.
hold_run() {
    name=$1
    kind=$2
    ctx="$name, $kind"
    BENCH_TLS=1
    start_broker "$kind"
    ok=$?
    BENCH_TLS=0
    if [ $ok != 0 ]; then
        echo "$BFAIL" >>"$WORK/$name.$kind.fail"
        [ "$kind" = sedged ] && note "$ctx: $BFAIL"
        return
    fi
    sleep 0.3
    r0=$(rss_kb "$BPID")
    pids=""
    outs=""
    if [ "$3" -gt 0 ]; then
        timeout -k 5 900 "$CONNBENCH" --mode hold --port "$BPORT" --connections "$3" --sources "$5" \
            --timeout 600 --label tcp >"$WORK/$name.$kind.tcp.out" 2>>"$WORK/loadgen.log" &
        pids="$pids $!"
        outs="$outs $WORK/$name.$kind.tcp.out"
    fi
    if [ "$4" -gt 0 ]; then
        # shellcheck disable=SC2046
        timeout -k 5 900 "$CONNBENCH" --mode hold --port "$BTLSPORT" $(tls_client_args) --connections "$4" \
            --sources "$5" --timeout 600 --label mtls >"$WORK/$name.$kind.tls.out" 2>>"$WORK/loadgen.log" &
        pids="$pids $!"
        outs="$outs $WORK/$name.$kind.tls.out"
    fi
    BGPIDS=$pids
    # Until every connbench has all its connections, or has given up.
    while :; do
        waiting=0
        for o in $outs; do grep -qs '^event=connected' "$o" || waiting=1; done
        [ $waiting = 0 ] && break
        running=0
        for p in $pids; do alive "$p" && running=1; done
        [ $running = 0 ] && break
        sleep 0.2
    done
    r1=""
    rest="-"
    r2=""
    if [ $waiting = 0 ] && alive "$BPID"; then
        sleep 1
        r1=$(rss_kb "$BPID")
        if [ "$6" -gt 0 ]; then
            c0=$(cpu_ns "$BPID")
            t0=$(date +%s%N)
            sleep "$6"
            c1=$(cpu_ns "$BPID")
            t1=$(date +%s%N)
            rest=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 / ((t1 - t0) / 1e9) }')
            r2=$(rss_kb "$BPID")
        fi
        if [ "$kind" = sedged ]; then
            conns=$(timeout 5 "$SEDGECTL" --data-dir "$BDIR/data" status --json 2>/dev/null |
                sed -n 's/.*"connections": *\([0-9]*\).*/\1/p')
            [ "$conns" != $(($3 + $4)) ] && note "$ctx: connbench holds $(($3 + $4)) connections but sedgectl status says connections=${conns:-?}."
        fi
    fi
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    BGPIDS=""
    reason=""
    cs=0
    for o in $outs; do
        LINE=$(grep '^mode=hold' "$o")
        printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
        if [ -z "$LINE" ]; then
            reason="${reason:+$reason; }connbench ($(basename "$o" .out | sed 's/.*\.//')) gave no result"
        elif [ "$(kv status)" != ok ]; then
            reason="${reason:+$reason; }$(kv label): $(kv status), $(kv connected) of $(kv connections) connected, $(kv lost) closed by the broker; $(errmsg)"
        else
            cs=$(awk -v a="$cs" -v b="$(kv connect_s)" 'BEGIN { print (b > a) ? b : a }')
        fi
    done
    alive "$BPID" || reason="$kind died while holding idle connections${reason:+ ($reason)}"
    stop_broker "$ctx"
    if [ -n "$reason" ] || [ -z "$r1" ]; then
        reason=${reason:-"the connections were not all up"}
        echo "$reason" >>"$WORK/$name.$kind.fail"
        if [ "$kind" = sedged ]; then note "$ctx: FAILED: $reason; reproduce: connbench --mode hold --connections N [--cafile/--cert/--key]"; else info "$ctx: FAILED: $reason"; fi
        say "  $name on $kind: FAILED: $reason"
        return
    fi
    echo "$r0 $r1 $cs $rest ${r2:-$r1}" >"$WORK/$name.$kind.hold"
    say "  $name on $kind: RSS $r0 kB at start, $r1 kB with $(($3 + $4)) connections (all up in $cs s)${r2:+, CPU at rest $rest ms/s, RSS $r2 kB after}"
}

# hold_value NAME KIND FIELD: a field of NAME.KIND.hold (1 rss0, 2 rss1,
# 3 connect_s, 4 rest CPU, 5 rss2), or FAILED.
hold_value() {
    if [ -s "$WORK/$1.$2.hold" ]; then
        awk -v f="$3" '{ print $f }' "$WORK/$1.$2.hold"
    else
        echo "FAILED: $(head -n 1 "$WORK/$1.$2.fail" 2>/dev/null)"
    fi
}

# Per-connection KB of a hold run: (rss1 - rss0) / N.
hold_per_conn() { # NAME KIND N
    if [ -s "$WORK/$1.$2.hold" ]; then
        awk -v n="$3" '{ printf "%.2f", ($2 - $1) / n }' "$WORK/$1.$2.hold"
    else
        echo "FAILED: $(head -n 1 "$WORK/$1.$2.fail" 2>/dev/null)"
    fi
}

# ---- the table ----

# A number, not FAILED..., "-" or "none".
num() { case "$1" in '' | - | *[!0-9.eE+-]*) return 1 ;; *) return 0 ;; esac; }

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

row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@" >>"$WORK/table.$SECTION"; }

# table_header REFERENCE: the section's table starts; REFERENCE names the
# third column (what sedged is compared with).
table_header() {
    REFNAME=$1
    : >"$WORK/table.$SECTION"
    row "metric" "sedged" "$1" "sedged/$1" "target" "met"
    row "---" "---:" "---:" "---:" "---" "---"
}

# A relative row from tp_run figures: LABEL NAME COLUMN DECIMALS OP LIMIT
rel_row() {
    s=$(figure "$2" sedged "$3")
    m=$(figure "$2" mosquitto "$3")
    r=$(ratio "$s" "$m")
    if [ -n "$5" ]; then
        row "$1" "$(fmt "$s" "$4")" "$(fmt "$m" "$4")" "$r" "$5 ${6}x $REFNAME" "$(met "$5" "$6" "$(printf '%s' "$r" | tr -d x)")"
    else
        row "$1" "$(fmt "$s" "$4")" "$(fmt "$m" "$4")" "$r" "-" "-"
    fi
}

# A row whose target is a ratio: LABEL SEDGED REFERENCE DECIMALS OP LIMIT
ratio_row() {
    r=$(ratio "$2" "$3")
    row "$1" "$(fmt "$2" "$4")" "$(fmt "$3" "$4")" "$r" "$5 ${6}x" "$(met "$5" "$6" "$(printf '%s' "$r" | tr -d x)")"
}

# An absolute row: LABEL SEDGED REFERENCE DECIMALS OP LIMIT UNIT
abs_row() {
    if [ -n "$5" ]; then
        row "$1" "$(fmt "$2" "$4")" "$(fmt "$3" "$4")" "$(ratio "$2" "$3")" "$5 $6 $7" "$(met "$5" "$6" "$2")"
    else
        row "$1" "$(fmt "$2" "$4")" "$(fmt "$3" "$4")" "$(ratio "$2" "$3")" "-" "-"
    fi
}

# ---- the run ----

for s in $SECTIONS; do
    # shellcheck source=/dev/null
    . "$ROOT/bench/sections/$s.sh"
done

T0=$(date +%s)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] && COMMIT="$COMMIT (src/ modified)"
say "benchmarks ($SECTIONS); work directory $WORK"
for SECTION in $SECTIONS; do
    ts=$(date +%s)
    # Other work on the machine shows in the figures: its load, for the record.
    cut -d' ' -f1 /proc/loadavg >"$WORK/load.$SECTION"
    "section_$SECTION"
    echo $(($(date +%s) - ts)) >"$WORK/took.$SECTION"
    cut -d' ' -f1 /proc/loadavg >>"$WORK/load.$SECTION"
done
ELAPSED=$(($(date +%s) - T0))

title() {
    case "$1" in
    broker) echo "Broker: sedged vs mosquitto" ;;
    groups) echo "Groups: routing through a deployed group" ;;
    shadows) echo "Shadows: durable device shadows over MQTT" ;;
    spool) echo "Spool: store-and-forward to the cloud vs a mosquitto bridge" ;;
    functions) echo "Functions: invocations through the core vs fork+exec" ;;
    burst) echo "Burst: the unpaced QoS 0 burst, delivered in bounded memory" ;;
    mtls) echo "Mutual TLS: throughput, handshakes and memory per connection" ;;
    fanout) echo "Fan-out and payload sizes" ;;
    scale) echo "Scale: idle connections on one small machine" ;;
    rest) echo "Memory at rest: private dirty memory with every service" ;;
    http) echo "HTTP front: discovery, handshakes, MQTT over WebSockets, memory" ;;
    connectors) echo "Connectors: Modbus, the HTTP sink, memory at rest" ;;
    ml) echo "Image classification: the connector through sedged vs OpenCV DNN directly" ;;
    ota) echo "Over-the-air updates: a cloud job to committed, the service gap" ;;
    esac
}

# One section's block of the report, between markers that a later run of
# some sections uses to replace only theirs.
section_block() { # NAME
    echo "<!-- section: $1 -->"
    echo "## $(title "$1")"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'), sedged $COMMIT, in $(cat "$WORK/took.$1") s; load average $(head -n 1 "$WORK/load.$1") at the start, $(tail -n 1 "$WORK/load.$1") at the end."
    echo
    [ -s "$WORK/desc.$1" ] && cat "$WORK/desc.$1" && echo
    cat "$WORK/table.$1"
    echo
    if [ -s "$WORK/notes.$1" ]; then
        echo "### What looked wrong in sedged"
        echo
        sed 's/^/- /; s/^-       /      /' "$WORK/notes.$1"
        echo
    else
        echo "Nothing looked wrong in sedged: no failed, lossy or duplicated runs, clean stops, an empty log."
        echo
    fi
    if [ -s "$WORK/info.$1" ]; then
        echo "### Notes"
        echo
        sort -u "$WORK/info.$1" | sed 's/^/- /'
        echo
    fi
    echo "<!-- end: $1 -->"
}

CPU_MODEL=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
OLD=$RESULTS
[ -f "$OLD" ] || OLD=/dev/null
for s in $ALL_SECTIONS; do
    case " $SECTIONS " in
    *" $s "*) section_block "$s" ;;
    *) awk -v s="$s" '$0 == "<!-- section: " s " -->" { on = 1 } on { print } $0 == "<!-- end: " s " -->" { on = 0 }' "$OLD" ;;
    esac
    echo
done >"$WORK/sections.md"
{
    echo "# Sedge benchmarks"
    echo
    echo "$(nproc) CPU ($CPU_MODEL), Linux $(uname -r), $("$MOSQUITTO" -h 2>/dev/null | head -n 1)."
    if [ "$SECTIONS" = "$ALL_SECTIONS" ]; then
        echo "Last full run (\`make bench\`, all sections): $(date -u '+%Y-%m-%d %H:%M UTC'), sedged $COMMIT, ${ELAPSED} s."
    else
        grep '^Last full run' "$OLD" || echo "Last full run: none yet; only some sections were run."
        echo "Sections can be run alone (\`sh bench/run.sh build SECTION...\`); each says when it was measured."
    fi
    echo
    # One table of every row, and where sedged loses (bench/summary.awk).
    awk -v mode=latest -f "$ROOT/bench/summary.awk" "$WORK/sections.md"
    cat "$WORK/sections.md"
} >"$WORK/report.md"

mkdir -p "$ROOT/bench/results"
cat -s "$WORK/report.md" >"$RESULTS"

# README's figures are a copy of this report's, made only by a full run so
# that they come from one commit: the rows with a target and every loss,
# between README's bench markers.
README=$ROOT/README.md
if [ "$SECTIONS" = "$ALL_SECTIONS" ] && grep -q '^<!-- bench: summary -->$' "$README"; then
    awk -v mode=readme -f "$ROOT/bench/summary.awk" "$WORK/sections.md" >"$WORK/readme-summary.md"
    awk -v f="$WORK/readme-summary.md" '
        $0 == "<!-- end: bench: summary -->" { while ((getline l < f) > 0) print l; on = 0 }
        !on { print }
        $0 == "<!-- bench: summary -->" { on = 1; print "" }' "$README" >"$WORK/README.md" &&
        cat "$WORK/README.md" >"$README"
    echo "(README.md's figures copied from the report)"
fi
for s in $SECTIONS; do section_block "$s" | grep -v '^<!--'; done
echo "(written to ${RESULTS#"$ROOT"/}; this run took ${ELAPSED} s)"
