# bench/sections/groups.sh, sourced by bench/run.sh: what a deployed group
# costs. Routed throughput: the broker section's QoS 0 fan-in, but the four
# publishers and the subscriber are things of a group of 100 with 1,000
# routes (4 carry the load, the rest match nothing it sends, many sharing
# its first topic level or its publishers), beside the same sedged with no
# group (the open broker), alternating, median of the runs. Deploy time:
# `sedgectl deploy` of a 1,000-thing, 1,000-route group, process start to
# exit, as a script sees it.

# group_doc THINGS ROUTES PREFIX: the benchmark group, JSON on stdout. Things
# PREFIXp0..p3 publish (loadgen --client-id-prefix PREFIX), PREFIXs0
# subscribes; bench/# from each publisher to it; the other routes join
# other things on filters that the load never matches.
group_doc() {
    awk -v nt="$1" -v nr="$2" -v pfx="$3" 'BEGIN {
        printf "{\"group\":\"bench\",\"things\":["
        for (i = 0; i < nt; i++) {
            thing[i] = i < 4 ? pfx "p" i : i == 4 ? pfx "s0" : pfx "t" i
            printf "%s{\"name\":\"%s\"}", (i ? "," : ""), thing[i]
        }
        printf "],\"routes\":["
        for (i = 0; i < 4 && i < nr; i++)
            printf "%s{\"source\":\"thing:%s\",\"filter\":\"bench/#\",\"target\":\"thing:%s\"}", (i ? "," : ""), thing[i], thing[4]
        for (i = 4; i < nr; i++) {
            k = i % 3
            f = k == 0 ? "bench/other" i "/#" : k == 1 ? "site/" i "/+/temperature" : "cmd/" i "/#"
            printf ",{\"source\":\"thing:%s\",\"filter\":\"%s\",\"target\":\"thing:%s\"}", thing[i % nt], f, thing[(i * 7 + 1) % nt]
        }
        printf "]}\n"
    }'
}

# Wall time of one command in ms, or FAILED.
wall_ms() { # OUTFILE COMMAND...
    out=$1
    shift
    t0=$(date +%s%N)
    if "$@" >"$out" 2>&1; then
        t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }'
    else
        echo "FAILED: $(head -n 1 "$out")"
    fi
}

# AFTER_RUN of a group run: the group is active and its four bench/#
# routes counted every message the publishers sent (sedgectl status --json).
group_route_check() { # CONTEXT
    st=$(ctl status --json 2>&1) || { note "$1: sedgectl status failed: $(printf '%s' "$st" | head -n 1)"; return; }
    if ! printf '%s\n' "$st" | sed -n '/"group": {/,/}/p' | grep -q '"name": *"bench"'; then
        note "$1: the group is not active after the run (sedgectl status --json has no group named bench)"
        return
    fi
    routed=$(printf '%s\n' "$st" | awk '/"messages":/ { m = $2 + 0 } /"route":.*-> bench\/# ->/ { s += m } END { print s + 0 }')
    [ "$routed" != "$(kv sent)" ] && note "$1: the bench/# routes counted $routed messages, the publishers sent $(kv sent)."
}

section_groups() {
    say "groups: routed QoS 0 fan-in, 100 things and 1,000 routes vs the open broker; deploy time of a 1,000-thing group"
    group_doc 100 1000 grp- >"$WORK/group-100x1000.json"
    group_doc 1000 1000 dep- >"$WORK/group-1000-a.json"
    # The same group with one route changed: each deployment is a new version.
    group_doc 1000 1000 dep- | sed 's|"filter":"cmd/5/#"|"filter":"cmd/5b/#"|' >"$WORK/group-1000-b.json"

    TP="--mqtt 3 --payload 64 --duration $SECS --client-id-prefix grp-"
    rep=0
    while [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        say "routed throughput, round $rep of $REPEAT"
        # shellcheck disable=SC2086
        tp_run gq0_open sedged --mode fan-in --publishers 4 --qos 0 $TP
        GROUP_DOC=$WORK/group-100x1000.json
        AFTER_RUN=group_route_check
        # shellcheck disable=SC2086
        tp_run gq0_group sedged --mode fan-in --publishers 4 --qos 0 $TP
        GROUP_DOC=""
        AFTER_RUN=""
    done

    say "deploy time, 5 deployments of a 1,000-thing group"
    : >"$WORK/deploy_ms"
    : >"$WORK/status_ms"
    if start_broker sedged; then
        n=0
        while [ $n -lt 5 ]; do
            doc=$WORK/group-1000-a.json
            [ $((n % 2)) = 1 ] && doc=$WORK/group-1000-b.json
            ms=$(wall_ms "$WORK/deploy.out" timeout 30 "$SEDGECTL" --data-dir "$BDIR/data" deploy "$doc")
            if num "$ms"; then
                echo "$ms" >>"$WORK/deploy_ms"
            else
                echo "$ms" >>"$WORK/deploy.fail"
                note "deploy $((n + 1)) of a 1,000-thing group: $ms; reproduce: sedgectl --data-dir D deploy FILE (FILE: bench/sections/groups.sh group_doc 1000 1000 dep-)"
            fi
            ms=$(wall_ms "$WORK/status.out" timeout 10 "$SEDGECTL" --data-dir "$BDIR/data" status)
            num "$ms" && echo "$ms" >>"$WORK/status_ms"
            n=$((n + 1))
        done
        v=$(ctl deployments --json 2>/dev/null | grep -c '"version"')
        [ "$v" != 5 ] && note "deploy time: 5 deployments made, sedgectl deployments lists ${v:-?} versions."
        stop_broker "deploy time"
    else
        echo "$BFAIL" >>"$WORK/deploy.fail"
        note "deploy time: $BFAIL"
    fi
    DEPLOY=$(median <"$WORK/deploy_ms")
    [ -n "$DEPLOY" ] || DEPLOY="FAILED: $(head -n 1 "$WORK/deploy.fail" 2>/dev/null)"
    STATUS=$(median <"$WORK/status_ms")
    [ -s "$WORK/deploy_ms" ] && say "  deploy: $(tr '\n' ' ' <"$WORK/deploy_ms")ms; status: $(tr '\n' ' ' <"$WORK/status_ms")ms"

    table_header "reference"
    ratio_row "QoS 0 fan-in throughput, 4 things -> 1 thing, in a group of 100 things and 1,000 routes (msg/s); reference: the same without a group (open broker)" \
        "$(figure gq0_group sedged 1)" "$(figure gq0_open sedged 1)" 0 ">=" 0.9
    abs_row "sedged CPU per delivered message, in the group (us); reference: open broker" \
        "$(figure gq0_group sedged 2)" "$(figure gq0_open sedged 2)" 3 "" "" ""
    abs_row "\`sedgectl deploy\` of a 1,000-thing, 1,000-route group, wall time, median of 5 (ms); reference: \`sedgectl status\` (process start + one request)" \
        "$DEPLOY" "${STATUS:-FAILED}" 1 "<=" 100 ms
    info "Deploy time: the first deployment goes to a daemon without a group, the next four alternate two documents that differ in one route, so each is a new version; the daemon has no connected things. Each figure is the wall time of the sedgectl process (fork, exec, connect to admin.sock, send the 1,000-thing document, wait for the answer)."

    describe <<DESC
Throughput: bench/loadgen as in the broker section (QoS 0, 4 publishers -> 1
subscriber, 64-byte payloads, ${SECS} s), median of $REPEAT runs per case, each on a fresh
sedged, alternating. In the group case the clients' ids are things of a
deployed group (\`grp-p0\`..\`grp-p3\`, \`grp-s0\`, and 95 more things), 4 routes
\`thing:grp-pN -> bench/# -> thing:grp-s0\` carry the load and 996 others
(\`bench/otherN/#\`, \`site/N/+/temperature\`, \`cmd/N/#\`, a third of them from the
publishers) match nothing it sends. The reference is the same sedged without a
group: the open broker, where any client may publish and subscribe.
DESC
}
