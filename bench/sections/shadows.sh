# bench/sections/shadows.sh, sourced by bench/run.sh: device shadows over
# MQTT, with no group deployed (the shadow service then answers anyone).
#
# Updates: things publish {"state":{"reported":{"n":i}},"clientToken":...}
# to $aws/things/NAME/shadow/update and count the replies on
# .../update/accepted|rejected (loadgen --mode shadow-update), each with a
# few requests outstanding; sedged publishes a reply only after the store
# commit, so the rate is of durable updates. After the run every thing's
# shadow version must equal the updates accepted for it in all.
# Gets: one thing publishes to $aws/things/NAME/shadow/get at a fixed rate
# and times each get/accepted (loadgen --mode shadow-get), on the same
# sedged after the updates. There is no reference: mosquitto has no shadows.

SHADOW_THINGS=8
SHADOW_INFLIGHT=16
SHADOW_GET_RATE=1000

# AFTER_RUN of an update run: versions against accepted updates, then the
# get latency run on the same daemon.
shadow_after() { # CONTEXT
    saved=$LINE
    accepted=$(($(kv unique) - $(kv rejected)))
    versions=0
    k=0
    while [ $k -lt $SHADOW_THINGS ]; do
        v=$(ctl shadow get "shadow-p$k" 2>/dev/null | jfield version)
        versions=$((versions + ${v:-0}))
        k=$((k + 1))
    done
    [ "$versions" != "$accepted" ] &&
        note "$1: the $SHADOW_THINGS shadows' versions add up to $versions, but $accepted updates were accepted; reproduce: loadgen --port PORT --mode shadow-update --publishers $SHADOW_THINGS --client-id-prefix shadow- --duration $SECS, then sedgectl shadow get shadow-p0 (version)."
    LINE=$(timeout -k 5 $((LAT_SECS * 3 + 60)) "$LOADGEN" --port "$BPORT" --timeout $((LAT_SECS * 2 + 40)) \
        --mode shadow-get --qos 1 --publishers 1 --client-id-prefix shadow- --rate $SHADOW_GET_RATE \
        --duration $((LAT_SECS + 1)) --warmup 1 2>>"$WORK/loadgen.log")
    printf 'sedged %s\n' "$LINE" >>"$WORK/raw.txt"
    if [ "$(kv status)" = ok ] && [ "$(kv lost)" = 0 ] && [ "$(kv rejected)" = 0 ]; then
        printf '%s\n' "$LINE" >>"$WORK/sget.sedged.lines"
        say "  shadow get at $SHADOW_GET_RATE/s: p50 $(kv p50_us) us, p99 $(kv p99_us) us"
    else
        reason="${LINE:+$(kv status): lost=$(kv lost) rejected=$(kv rejected) $(errmsg)}"
        echo "${reason:-loadgen gave no result}" >>"$WORK/sget.sedged.fail"
        note "$1, shadow get: FAILED: ${reason:-loadgen gave no result}; reproduce: loadgen --port PORT --mode shadow-get --client-id-prefix shadow- --rate $SHADOW_GET_RATE (after the updates)"
        say "  shadow get: FAILED: ${reason:-loadgen gave no result}"
    fi
    LINE=$saved
}

section_shadows() {
    say "shadows: $REPEAT x ${SECS} s of updates by $SHADOW_THINGS things, then gets at $SHADOW_GET_RATE/s for ${LAT_SECS} s"
    rep=0
    while [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        say "shadow updates, round $rep of $REPEAT"
        AFTER_RUN=shadow_after
        tp_run supd sedged --mode shadow-update --qos 1 --publishers $SHADOW_THINGS \
            --inflight $SHADOW_INFLIGHT --client-id-prefix shadow- --duration "$SECS"
        AFTER_RUN=""
    done
    # The update runs' latency percentiles, from their raw lines.
    grep '^sedged mode=shadow-update' "$WORK/raw.txt" | grep ' status=ok ' | cut -d' ' -f2- >"$WORK/supd.sedged.lines"

    table_header "reference"
    none="none"
    abs_row "durable shadow updates through MQTT, $SHADOW_THINGS things in parallel, $SHADOW_INFLIGHT outstanding each, QoS 1 (updates/s)" \
        "$(figure supd sedged 1)" "$none" 0 ">=" 20000 "/s"
    abs_row "update round trip under that load, p50 (us)" "$(line_value supd sedged p50_us)" "$none" 0 "" "" ""
    abs_row "update round trip under that load, p99 (us)" "$(line_value supd sedged p99_us)" "$none" 0 "" "" ""
    abs_row "sedged CPU per update (us)" "$(figure supd sedged 2)" "$none" 2 "" "" ""
    abs_row "shadow get latency p50 at $SHADOW_GET_RATE gets/s, publish to get/accepted (us)" "$(line_value sget sedged p50_us)" "$none" 1 "" "" ""
    abs_row "shadow get latency p99 at $SHADOW_GET_RATE gets/s (us)" "$(line_value sget sedged p99_us)" "$none" 1 "" "" ""

    describe <<DESC
bench/loadgen --mode shadow-update: $SHADOW_THINGS things (MQTT 3.1.1 clients \`shadow-p0\`..,
no group deployed) each publish \`{"state":{"reported":{"n":i}},"clientToken":...}\`
at QoS 1 to \`\$aws/things/NAME/shadow/update\` with at most $SHADOW_INFLIGHT updates awaiting
their reply, and count the replies on \`update/accepted\` and \`update/rejected\`
(QoS 1 subscriptions), matched to requests by clientToken; ${SECS} s per run, median
of $REPEAT runs, each on a fresh sedged with \`synchronous: full\`. sedged publishes a
reply only after the store commit. After each run the shadows' versions are
checked against the accepted updates. Gets: after the updates, one thing
publishes to \`\$aws/things/shadow-p0/shadow/get\` at $SHADOW_GET_RATE/s for ${LAT_SECS} s after 1 s
of warm-up and times each \`get/accepted\`; median of the runs' percentiles.
Reference: none — mosquitto has no shadows; the figures stand against the targets.
DESC
}
