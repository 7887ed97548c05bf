# bench/sections/functions.sh, sourced by bench/run.sh: local functions —
# warm invocation round trips, cold starts, invocations per second — each
# beside the cost of starting the same program with fork+exec.
#
# How invocations are timed: bench/invoke_bench holds connections to the
# admin socket (DATA_DIR/admin.sock) and sends {"cmd":"invoke",...} lines,
# as `sedgectl invoke` does but without starting a process each time; so a
# round trip is the core's whole path (admin socket, JSON and base64 both
# ways, the function's queue, an instance, the function socket both ways)
# plus the echo function's own work. The other way in — a thing's message
# routed to the function — is asynchronous (the result goes nowhere), and
# timing it needs a function that publishes, which the example echo does
# not, so the admin socket it is.
#
# The baseline, fork+exec+wait of the same program (bench/invoke_bench
# --mode spawn) with only PATH in its environment: a Sedge function finds
# no SEDGE_SOCKET and exits at once, so it is the price of one process per
# invocation without any work — what a runtime that forks per event pays
# at least.
#
# Cold starts come two ways. "With a standby" is what an on-demand
# function's first invocation normally costs: the core keeps one instance
# prepared (forked, in its cgroup, sandbox built) and only tells it to
# exec. A "true cold start" ("standby": false) has none: the invocation
# pays the cgroup, the fork, the whole sandbox, the exec and the
# function's connection. The sandbox's own part is timed apart, without
# sedged: fork+exec+wait of sedge-sandbox running the same program (which
# exits at once), confined only, then with namespaces and its own root,
# beside the plain fork+exec+wait — so those figures include tearing the
# sandbox down, which a cold start does not wait for.

FN_SECS=${BENCH_FN_SECONDS:-1.5}
FN_COLD=${BENCH_FN_COLD:-10}
FN_CLIENTS=4
FN_LAT_REPEAT=5
SANDBOX=$BUILD/sedge-sandbox
CODE_C=$(dirname "$ECHO_C")
CODE_PY=$(dirname "$ECHO_PY")
COLD_FUNCTIONS="bench-cold bench-cold-none bench-cold-py bench-true-cold bench-true-cold-none bench-true-cold-py"

fn_group() {
    c="\"encoding\": \"binary\""
    cc="\"exec\": [\"$ECHO_C\"], \"code\": \"$CODE_C\", $c"
    py="\"exec\": [\"$PYTHON\", \"$ECHO_PY\"], \"code\": \"$CODE_PY\", $c"
    cold="\"max_instances\": 1, \"idle_timeout_s\": 1"
    cat <<EOF
{"group": "benchfn", "things": [], "routes": [], "functions": [
 {"name": "bench-echo", $cc, "max_instances": $FN_CLIENTS},
 {"name": "bench-echo-none", $cc, "max_instances": $FN_CLIENTS, "isolation": "none"},
 {"name": "bench-echo-py", $py, "max_instances": $FN_CLIENTS},
 {"name": "bench-cold", $cc, $cold},
 {"name": "bench-cold-none", $cc, $cold, "isolation": "none"},
 {"name": "bench-cold-py", $py, $cold},
 {"name": "bench-true-cold", $cc, $cold, "standby": false},
 {"name": "bench-true-cold-none", $cc, $cold, "standby": false, "isolation": "none"},
 {"name": "bench-true-cold-py", $py, $cold, "standby": false}
]}
EOF
}

# ib NAME ARGS...: one invoke_bench run; its line goes to $WORK/NAME.lines,
# a failure to NAME.fail (and to the notes when sedged was invoked).
ib() {
    ibname=$1
    shift
    LINE=$(timeout -k 5 60 "$INVOKE_BENCH" --timeout 50 "$@" 2>>"$WORK/invoke_bench.log")
    printf '%s %s\n' "$ibname" "$LINE" >>"$WORK/raw.txt"
    if [ -n "$LINE" ] && [ "$(kv status)" = ok ]; then
        printf '%s\n' "$LINE" >>"$WORK/$ibname.lines"
        return 0
    fi
    reason="${LINE:+$(kv status): $(kv errors) errors, e.g. $(errmsg)}"
    reason=${reason:-invoke_bench gave no result (timed out or crashed)}
    echo "$reason" >>"$WORK/$ibname.fail"
    case " $* " in
    *" --mode spawn "*) info "$ibname: FAILED: $reason" ;;
    *) note "$ibname: FAILED: $reason; reproduce: invoke_bench $*" ;;
    esac
    say "  $ibname: FAILED: $reason"
    return 1
}

# Instances per function, "name count" lines, from sedgectl functions --json.
fn_instances() {
    ctl functions --json 2>/dev/null | awk '
        /"instances": \[\]/ { n = 0; next }
        /"instances": \[/ { inside = 1; n = 0; next }
        inside && /^ *\]/ { inside = 0 }
        inside && /"pid"/ { n++ }
        /"name":/ { v = $2; gsub(/[",]/, "", v); print v, n }'
}

# lv NAME KEY: the median of KEY over the runs' lines, or FAILED.
lv() {
    if [ -s "$WORK/$1.lines" ]; then
        tr ' ' '\n' <"$WORK/$1.lines" | sed -n "s/^$2=//p" | median
    else
        echo "FAILED: $(head -n 1 "$WORK/$1.fail" 2>/dev/null)"
    fi
}

# cold_ms NAME: the median cold start in ms.
cold_ms() {
    if [ -s "$WORK/$1.us" ]; then
        median <"$WORK/$1.us" | awk '{ printf "%.3f", $1 / 1000 }'
    else
        echo "FAILED: $(head -n 1 "$WORK/$1.fail" 2>/dev/null)"
    fi
}

ms() { if num "$1"; then awk -v v="$1" 'BEGIN { printf "%.3f", v / 1000 }'; else echo "$1"; fi; }

last_value() { tail -n 1 "$WORK/$1.lines" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }

cold_all_reaped() {
    [ -z "$(fn_instances | awk '$1 ~ /^bench-(true-)?cold/ && $2 != 0')" ]
}

# The sandbox alone, as sedged runs it for bench-true-cold (as nobody; the
# cgroups aside), fork+exec+wait like the reference: confined only, and
# confined in its namespaces and root. Needs root, as the sandbox does.
sandbox_spawns() {
    if [ "$(id -u)" != 0 ]; then
        info "The sandbox's own cost is not measured: it needs root."
        return
    fi
    root=$WORK/sandbox-root
    sb="$SANDBOX --uid 65534 --gid 65534"
    ib spawn_sandbox_confined --mode spawn --env-on-stdin --count 300 --warmup 20 -- $sb -- "$ECHO_C"
    ib spawn_sandbox_isolated --mode spawn --env-on-stdin --count 300 --warmup 20 -- \
        $sb --isolate --root "$root" --code "$CODE_C" -- "$ECHO_C"
    ib spawn_sandbox_isolated_net --mode spawn --env-on-stdin --count 300 --warmup 20 -- \
        $sb --isolate --network --root "$root" --code "$CODE_C" -- "$ECHO_C"
}

section_functions() {
    say "functions: warm latency and rate of C (sandbox, none) and Python echo, $FN_COLD cold starts, vs fork+exec"
    fn_group >"$WORK/fn-group.json"
    GROUP_DOC=$WORK/fn-group.json
    start_broker sedged
    started=$?
    GROUP_DOC=""
    if [ $started != 0 ]; then
        for n in warm_c warm_none warm_py rate_c rate_none rate_py; do echo "$BFAIL" >>"$WORK/$n.fail"; done
        note "functions: $BFAIL"
    else
        sock=$BDIR/data/admin.sock
        say "cold starts (idle_timeout_s 1, then the instance is reaped)"
        k=0
        while [ $k -lt "$FN_COLD" ]; do
            k=$((k + 1))
            if ! poll 10 cold_all_reaped; then
                note "functions: the on-demand instances of bench-cold* were not reaped 10 s after their idle_timeout_s of 1 s: $(fn_instances | tr '\n' ' ')"
                break
            fi
            for f in $COLD_FUNCTIONS; do
                ib "$f" --socket "$sock" --function "$f" --count 1 && kv p50_us >>"$WORK/$f.us"
            done
            say "  cold $k (us), with a standby / true: C sandbox $(tail -n 1 "$WORK/bench-cold.us" 2>/dev/null) / $(tail -n 1 "$WORK/bench-true-cold.us" 2>/dev/null), C none $(tail -n 1 "$WORK/bench-cold-none.us" 2>/dev/null) / $(tail -n 1 "$WORK/bench-true-cold-none.us" 2>/dev/null), Python $(tail -n 1 "$WORK/bench-cold-py.us" 2>/dev/null) / $(tail -n 1 "$WORK/bench-true-cold-py.us" 2>/dev/null)"
        done

        say "warm: $FN_LAT_REPEAT rounds of latency (5000 invocations after 200), $REPEAT of rate ($FN_CLIENTS clients, ${FN_SECS} s), and fork+exec of the same programs"
        for f in bench-echo bench-echo-none bench-echo-py; do
            ib warmup --socket "$sock" --function "$f" --clients $FN_CLIENTS --count 20 >/dev/null
        done
        rep=0
        while [ $rep -lt "$FN_LAT_REPEAT" ]; do
            rep=$((rep + 1))
            ib warm_c --socket "$sock" --function bench-echo --count 5000 --warmup 200
            ib warm_none --socket "$sock" --function bench-echo-none --count 5000 --warmup 200
            ib warm_py --socket "$sock" --function bench-echo-py --count 5000 --warmup 200
            ib spawn_c --mode spawn --count 300 --warmup 20 -- "$ECHO_C"
            ib spawn_py --mode spawn --count 30 --warmup 3 -- "$PYTHON" "$ECHO_PY"
            ib spawn_true --mode spawn --count 300 --warmup 20 -- /bin/true
            sandbox_spawns
            say "  latency round $rep: warm p50/p99 (us): C $(last_value warm_c p50_us)/$(last_value warm_c p99_us), C none $(last_value warm_none p50_us)/$(last_value warm_none p99_us), Python $(last_value warm_py p50_us)/$(last_value warm_py p99_us), fork+exec C $(last_value spawn_c p50_us)/$(last_value spawn_c p99_us)"
        done
        rep=0
        while [ $rep -lt "$REPEAT" ]; do
            rep=$((rep + 1))
            ib rate_c --socket "$sock" --function bench-echo --clients $FN_CLIENTS --duration "$FN_SECS"
            ib rate_none --socket "$sock" --function bench-echo-none --clients $FN_CLIENTS --duration "$FN_SECS"
            ib rate_py --socket "$sock" --function bench-echo-py --clients $FN_CLIENTS --duration "$FN_SECS"
            ib spawnrate_c --mode spawn --clients $FN_CLIENTS --duration "$FN_SECS" -- "$ECHO_C"
            ib spawnrate_py --mode spawn --clients $FN_CLIENTS --duration "$FN_SECS" -- "$PYTHON" "$ECHO_PY"
            say "  rate round $rep: invocations/s C $(last_value rate_c rate), C none $(last_value rate_none rate), Python $(last_value rate_py rate); fork+exec/s C $(last_value spawnrate_c rate), Python $(last_value spawnrate_py rate)"
        done

        # What the runtime counted: nothing should have failed.
        st=$(ctl functions --json 2>&1)
        for key in errors timeouts crashes oom_kills refused; do
            bad=$(printf '%s\n' "$st" | awk -v k="\"$key\":" '$1 == k && $2 + 0 > 0 { n += $2 } END { print n + 0 }')
            [ "$bad" != 0 ] && note "functions: sedgectl functions reports $key=$bad over the run (bench-* functions; 0 expected)."
        done
        sedged_counters "functions"
        stop_broker "functions"
    fi

    table_header "fork+exec"
    SPAWN_C50=$(lv spawn_c p50_us)
    SPAWN_C99=$(lv spawn_c p99_us)
    SPAWN_P50=$(lv spawn_py p50_us)
    SPAWN_P99=$(lv spawn_py p99_us)
    abs_row "C echo, warm invocation round trip p50 (us), sandbox (default isolation)" "$(lv warm_c p50_us)" "$SPAWN_C50" 1 "<=" 50 us
    abs_row "C echo, warm invocation round trip p99 (us), sandbox" "$(lv warm_c p99_us)" "$SPAWN_C99" 1 "<=" 500 us
    abs_row "C echo, warm invocation round trip p50 (us), \`isolation: none\`" "$(lv warm_none p50_us)" "$SPAWN_C50" 1 "<=" 50 us
    abs_row "C echo, warm invocation round trip p99 (us), \`isolation: none\`" "$(lv warm_none p99_us)" "$SPAWN_C99" 1 "<=" 500 us
    abs_row "Python echo, warm invocation round trip p50 (us), sandbox" "$(lv warm_py p50_us)" "$SPAWN_P50" 1 "" "" ""
    abs_row "Python echo, warm invocation round trip p99 (us), sandbox" "$(lv warm_py p99_us)" "$SPAWN_P99" 1 "" "" ""
    abs_row "C echo, first invocation with a standby instance (prepared: forked, in its cgroup, sandbox built), median of $FN_COLD (ms), sandbox" "$(cold_ms bench-cold)" "$(ms "$SPAWN_C50")" 2 "<=" 3 ms
    abs_row "C echo, first invocation with a standby instance, median of $FN_COLD (ms), \`isolation: none\`" "$(cold_ms bench-cold-none)" "$(ms "$SPAWN_C50")" 2 "<=" 3 ms
    abs_row "C echo, true cold start (no standby: cgroup, fork, sandbox, exec, connect), median of $FN_COLD (ms), sandbox" "$(cold_ms bench-true-cold)" "$(ms "$SPAWN_C50")" 2 "<=" 5 ms
    abs_row "C echo, true cold start, median of $FN_COLD (ms), \`isolation: none\`" "$(cold_ms bench-true-cold-none)" "$(ms "$SPAWN_C50")" 2 "" "" ""
    abs_row "Python echo, first invocation with a standby instance, median of $FN_COLD (ms), sandbox" "$(cold_ms bench-cold-py)" "$(ms "$SPAWN_P50")" 1 "" "" ""
    abs_row "Python echo, true cold start, median of $FN_COLD (ms), sandbox" "$(cold_ms bench-true-cold-py)" "$(ms "$SPAWN_P50")" 1 "" "" ""
    abs_row "The sandbox alone, confined only (user, no_new_privs, capabilities, seccomp): fork+exec+wait p50 (ms)" "$(ms "$(lv spawn_sandbox_confined p50_us)")" "$(ms "$SPAWN_C50")" 2 "" "" ""
    abs_row "The sandbox alone, confined in its namespaces and root: fork+exec+wait p50 (ms)" "$(ms "$(lv spawn_sandbox_isolated p50_us)")" "$(ms "$SPAWN_C50")" 2 "" "" ""
    abs_row "The sandbox alone, the same keeping the host's network (no network namespace): p50 (ms)" "$(ms "$(lv spawn_sandbox_isolated_net p50_us)")" "$(ms "$SPAWN_C50")" 2 "" "" ""
    abs_row "C echo, invocations/s, $FN_CLIENTS concurrent clients, up to $FN_CLIENTS instances, sandbox; reference: fork+exec+wait/s, $FN_CLIENTS in parallel" "$(lv rate_c rate)" "$(lv spawnrate_c rate)" 0 "" "" ""
    abs_row "C echo, invocations/s, $FN_CLIENTS clients, \`isolation: none\`" "$(lv rate_none rate)" "$(lv spawnrate_c rate)" 0 "" "" ""
    abs_row "Python echo, invocations/s, $FN_CLIENTS clients, sandbox" "$(lv rate_py rate)" "$(lv spawnrate_py rate)" 0 "" "" ""

    [ -s "$WORK/warm_c.lines" ] && info "Warm round trips per run, p50 in us — C: $(tr ' ' '\n' <"$WORK/warm_c.lines" | sed -n 's/^p50_us=//p' | tr '\n' ' ')- C none: $(tr ' ' '\n' <"$WORK/warm_none.lines" 2>/dev/null | sed -n 's/^p50_us=//p' | tr '\n' ' ')- Python: $(tr ' ' '\n' <"$WORK/warm_py.lines" 2>/dev/null | sed -n 's/^p50_us=//p' | tr '\n' ' '). On this 2-CPU machine shared with other work a run's p50 is either about 20 us or 50-90 us, whatever the isolation (three processes hand each invocation on: client, sedged, function; it depends on where the scheduler puts them), hence the median of several runs."
    [ -s "$WORK/spawn_true.lines" ] && info "fork+exec+wait of /bin/true, for scale: p50 $(lv spawn_true p50_us) us, p99 $(lv spawn_true p99_us) us."
    for f in $COLD_FUNCTIONS; do
        [ -s "$WORK/$f.us" ] && info "cold starts of $f, in us, in order (the first right after the deployment): $(tr '\n' ' ' <"$WORK/$f.us")"
    done

    describe <<DESC
Invocations: bench/invoke_bench connects to \`DATA_DIR/admin.sock\` before timing
and sends \`{"cmd":"invoke","function":F,"payload_b64":...}\` lines (64-byte payload),
one at a time per connection, and reads the one-line JSON reply, which must be
\`echo:\` + the payload — \`sedgectl invoke\` without the process start. So the figures
include the admin socket's JSON and base64 work on both sides, as well as the
core's queue, an instance and the function socket both ways. Functions: the
example \`build/examples/echo\` (C SDK) and \`examples/functions/python/echo.py\` run
as \`["$PYTHON", "…/echo.py"]\`, \`"encoding": "binary"\`, on-demand, up to $FN_CLIENTS
instances; sandboxed (the default) or \`"isolation": "none"\`; sedged runs as
$(id -un). Warm: 5000 invocations after 200, median of $FN_LAT_REPEAT runs' percentiles.
Cold: functions with \`"idle_timeout_s": 1\` and one instance, invoked right after
the deployment and then each time their instance has been reaped ($FN_COLD
starts): with a standby (the default: an instance prepared ahead, forked, in
its cgroup, its sandbox built, waiting to exec) and true cold starts
(\`"standby": false\`: the invocation pays the cgroup, the fork, the sandbox,
the exec and the function's connection). The sandbox alone: bench/invoke_bench
--mode spawn --env-on-stdin of sedge-sandbox as nobody running the echo (which
exits at once, finding no SEDGE_SOCKET): confined only, then also in its own
namespaces and root, and keeping the host's network; fork+exec+wait, so
the teardown is in these figures, not in a cold start; and run this way the
sandbox makes its own network and IPC namespaces, which sedged makes once
per function and shares among its instances. Rate: $FN_CLIENTS connections invoking back to back for ${FN_SECS} s, median of $REPEAT.
Reference: fork+exec+waitpid of the same program with only PATH in its
environment (it finds no SEDGE_SOCKET and exits at once), 300 (C) or 30 (Python)
times after a few untimed, or $FN_CLIENTS in parallel for ${FN_SECS} s — the cost of a
process per invocation, which on-demand instances reused while warm avoid.
DESC
}
