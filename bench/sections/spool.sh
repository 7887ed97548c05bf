# bench/sections/spool.sh, sourced by bench/run.sh: store-and-forward to a
# cloud broker, sedged's uplink and disk spool beside a mosquitto bridge
# doing the same job.
#
# The cloud is mosquitto on loopback with mutual TLS (a CA and certificates
# from sedgectl ca init / cert issue) and persistence, so that a counting
# subscriber's persistent session survives the cloud's restart: whatever
# the edge sends after the restart reaches the counter, however the two
# race to reconnect. The edge is either sedged (a group routes thing
# spool-p0's data/# to the cloud; QoS 1, PUBACK after the spool commit) or
# mosquitto bridging data/# out at QoS 1 with cleansession false and no
# queue limit. One round, for each edge on fresh brokers:
#   1. 100 messages end to end: the link is up.
#   2. cloud up: N QoS 1 messages from one publisher; its acknowledged rate,
#      and all N must reach a counter at the cloud.
#   3. a persistent counter session subscribes to data/out/# and leaves;
#      the cloud stops (SIGTERM; it saves that session).
#   4. cloud down: N QoS 1 messages; the publisher's rate while the spool
#      (or the bridge's queue) fills.
#   5. the cloud starts again and the counter with it: the drain rate is N
#      over the time from the first to the last message at the counter
#      (the edge's reconnect delay is not in it); also from the cloud's port
#      accepting to the last message.
# Then once, sedged alone: the drain paced to AWS IoT Core's publish rate
# (cloud profile aws-iot: 100 publishes/s per connection), the same outage
# with BENCH_SPOOL_PACED (1000) messages; its rate against that limit.

SPOOL_N=${BENCH_SPOOL_MESSAGES:-100000}
SPOOL_PACED_N=${BENCH_SPOOL_PACED:-1000}
SPOOL_REPEAT=${BENCH_SPOOL_REPEAT:-3}
NCLOUD=0

write_cloud_config() { # DIR PORT
    cat >"$1/cloud.conf" <<EOF
listener $2 127.0.0.1
cafile $PKI/ca.pem
certfile $PKI/core.pem
keyfile $PKI/core.key
require_certificate true
use_identity_as_username true
$([ "$(id -u)" = 0 ] && echo "user root")
persistence true
persistence_location $1/db/
autosave_interval 3600
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 1000
set_tcp_nodelay true
log_type error
log_type warning
connection_messages false
EOF
}

# start_cloud: the cloud mosquitto of $CDIR on $CPORT; CPID. 1 with CFAIL.
start_cloud() {
    "$MOSQUITTO" -c "$CDIR/cloud.conf" >>"$CDIR/log" 2>&1 &
    CPID=$!
    j=0
    while ! "$LOADGEN" --mode wait-port --port "$CPORT" --timeout 0.1 >/dev/null; do
        j=$((j + 1))
        if ! alive "$CPID" || [ $j -ge 100 ]; then
            CFAIL="the cloud mosquitto did not start: $(grep -v 'should not be run as root' "$CDIR/log" | head -n 2 | tr '\n' ' ')"
            stop_cloud
            return 1
        fi
    done
}

stop_cloud() {
    [ -n "$CPID" ] || return 0
    kill -TERM "$CPID" 2>/dev/null
    j=0
    while alive "$CPID" && [ $j -lt 100 ]; do
        sleep 0.1
        j=$((j + 1))
    done
    alive "$CPID" && kill -KILL "$CPID" 2>/dev/null
    wait "$CPID" 2>/dev/null
    CPID=""
}

# counter_start OUT ARGS...: a loadgen counter at the cloud in the
# background (CNTPID), back once it has subscribed (1 if it has not in 10 s).
counter_start() {
    out=$1
    shift
    timeout -k 5 180 "$LOADGEN" --mode count --port "$CPORT" --qos 1 --cafile "$PKI/ca.pem" \
        --cert "$PKI/counter.pem" --key "$PKI/counter.key" "$@" >"$out" 2>>"$WORK/loadgen.log" &
    CNTPID=$!
    BGPIDS="$BGPIDS $CNTPID"
    poll 10 grep -q '^event=subscribed' "$out"
}

counter_wait() { # OUT: the counter's result line in LINE
    wait "$CNTPID" 2>/dev/null
    BGPIDS=$(echo "$BGPIDS" | sed "s/ $CNTPID\$//; s/ $CNTPID / /")
    LINE=$(grep '^mode=count' "$1")
}

# publish RUN TOPIC_PREFIX COUNT: one QoS 1 publisher (thing spool-p0) into the edge.
publish() {
    LINE=$(timeout -k 5 120 "$LOADGEN" --port "$BPORT" --mode fan-in --publishers 1 --subscribers 0 \
        --qos 1 --payload 64 --count "$3" --run-id "$1" --topic-prefix "$2" \
        --client-id-prefix spool- --timeout 100 --drain 10 2>>"$WORK/loadgen.log")
    printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
    [ -n "$LINE" ] && [ "$(kv status)" = ok ] && [ "$(kv acked)" = "$3" ]
}

spool_field() { ctl spool --json 2>/dev/null | jfield "$1"; }
spool_queued_is() { [ "$(spool_field queued)" = "$1" ]; }
spool_not_connected() { [ "$(spool_field state)" != connected ]; }

# spool_fail CONTEXT REASON: the round is lost; stop what runs.
spool_fail() {
    echo "$2" >>"$WORK/spool.$kind.fail"
    if [ "$kind" = sedged ]; then note "$1: FAILED: $2"; else info "$1: FAILED: $2"; fi
    say "  spool on $kind: FAILED: $2"
    for p in $BGPIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    BGPIDS=""
    stop_broker "$1"
    stop_cloud
}

spool_round() { # KIND
    kind=$1
    ctx="spool, $kind, round $rep"
    NCLOUD=$((NCLOUD + 1))
    CDIR=$WORK/cloud.$NCLOUD
    mkdir -p "$CDIR/db"
    CPORT=$("$LOADGEN" --mode free-port) || { spool_fail "$ctx" "no free port"; return; }
    write_cloud_config "$CDIR" "$CPORT"
    start_cloud || { spool_fail "$ctx" "$CFAIL"; return; }

    if [ "$kind" = sedged ]; then
        SEDGED_EXTRA="\"cloud\": {\"endpoint\": \"localhost:$CPORT\", \"ca_file\": \"$PKI/ca.pem\",
    \"cert_file\": \"$PKI/edge-core.pem\", \"key_file\": \"$PKI/edge-core.key\",
    \"max_inflight\": 100, \"reconnect_min_ms\": 100, \"reconnect_max_ms\": 1000,
    \"spool\": {\"storage\": \"disk\", \"max_bytes\": 268435456}}"
        GROUP_DOC=$WORK/spool-group.json
    else
        MOSQ_INFLIGHT=100
        MOSQ_QUEUED=0
        MOSQ_EXTRA="max_queued_bytes 0
$([ "$(id -u)" = 0 ] && echo "user root")

connection cloud
address localhost:$CPORT
topic data/# out 1
cleansession false
remote_clientid edge-bridge
bridge_protocol_version mqttv311
bridge_cafile $PKI/ca.pem
bridge_certfile $PKI/mosq-bridge.pem
bridge_keyfile $PKI/mosq-bridge.key
notifications false
restart_timeout 1"
    fi
    start_broker "$kind"
    started=$?
    SEDGED_EXTRA=""
    GROUP_DOC=""
    MOSQ_EXTRA=""
    MOSQ_INFLIGHT=""
    MOSQ_QUEUED=""
    if [ $started != 0 ]; then
        spool_fail "$ctx" "$BFAIL"
        return
    fi

    # 1. The link is up when 100 messages get through.
    r0=$(new_run_id)
    counter_start "$CDIR/probe.out" --filter 'data/up/#' --count 100 --run-id "$r0" \
        --client-id-prefix probe- --timeout 30 ||
        { spool_fail "$ctx" "the counter did not subscribe at the cloud: $(grep error= "$CDIR/probe.out")"; return; }
    publish "$r0" data/up 100 || { spool_fail "$ctx" "publishing to the edge: $(kv status) $(errmsg)"; return; }
    counter_wait "$CDIR/probe.out"
    [ "$(kv status)" = ok ] || { spool_fail "$ctx" "the link to the cloud did not come up in 30 s (100 messages: $(kv unique) arrived)"; return; }

    # 2. Cloud up.
    r1=$(new_run_id)
    counter_start "$CDIR/up.out" --filter 'data/up/#' --count "$SPOOL_N" --run-id "$r1" \
        --client-id-prefix up- --timeout 120 --drain 10 ||
        { spool_fail "$ctx" "the counter did not subscribe at the cloud"; return; }
    publish "$r1" data/up "$SPOOL_N" || { spool_fail "$ctx" "cloud up: publishing $SPOOL_N messages: $(kv status) $(errmsg)"; return; }
    up=$(kv pub_rate)
    counter_wait "$CDIR/up.out"
    if [ "$(kv status)" != ok ]; then
        reason="cloud up: $(kv unique) of $SPOOL_N messages reached the cloud ($(kv status) $(errmsg))"
        if [ "$kind" = sedged ]; then note "$ctx: $reason"; else info "$ctx: mosquitto: $reason"; fi
    fi
    if [ "$kind" = sedged ] && ! poll 30 spool_queued_is 0; then
        note "$ctx: cloud up: every message reached the cloud, but sedgectl spool still says queued=$(spool_field queued) after 30 s."
    fi

    # 3. The counter's persistent session, then the outage.
    LINE=$(timeout -k 5 30 "$LOADGEN" --mode count --port "$CPORT" --qos 1 --cafile "$PKI/ca.pem" \
        --cert "$PKI/counter.pem" --key "$PKI/counter.key" --filter 'data/out/#' --persistent \
        --register --client-id-prefix drain- --timeout 20 2>>"$WORK/loadgen.log" | grep '^mode=count')
    [ "$(kv status)" = ok ] || { spool_fail "$ctx" "cannot register the counter's session at the cloud: $(errmsg)"; return; }
    stop_cloud
    if [ "$kind" = sedged ]; then
        poll 5 spool_not_connected || note "$ctx: sedgectl spool still says connected 5 s after the cloud stopped."
    else
        sleep 0.3 # the bridge sees its connection closed
    fi

    # 4. Cloud down: the spool fills.
    r2=$(new_run_id)
    publish "$r2" data/out "$SPOOL_N" || { spool_fail "$ctx" "cloud down: publishing $SPOOL_N messages: $(kv status) $(errmsg)"; return; }
    down=$(kv pub_rate)
    if [ "$kind" = sedged ]; then
        q=$(spool_field queued)
        [ "$q" != "$SPOOL_N" ] && note "$ctx: after $SPOOL_N acknowledged messages with the cloud down, sedgectl spool says queued=$q."
    fi

    # 5. The cloud comes back, the counter with it.
    start_cloud_bg
    LINE=$(timeout -k 5 180 "$LOADGEN" --mode count --port "$CPORT" --qos 1 --cafile "$PKI/ca.pem" \
        --cert "$PKI/counter.pem" --key "$PKI/counter.key" --filter 'data/out/#' --persistent \
        --client-id-prefix drain- --count "$SPOOL_N" --run-id "$r2" --timeout 150 --drain 15 \
        2>>"$WORK/loadgen.log" | grep '^mode=count')
    printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
    if [ "$(kv status)" != ok ]; then
        spool_fail "$ctx" "drain: $(kv unique) of $SPOOL_N messages reached the cloud ($(kv status) $(errmsg))"
        return
    fi
    drain=$(kv rate)
    drain_s=$(awk -v ms="$(kv last_ms)" 'BEGIN { printf "%.3f", ms / 1000 }')
    first_s=$(awk -v ms="$(kv first_ms)" 'BEGIN { printf "%.3f", ms / 1000 }')
    [ "$(kv dup)" != 0 ] && info "$ctx: $kind: $(kv dup) duplicates of $SPOOL_N at the cloud after the outage (QoS 1 allows them)."
    if [ "$kind" = sedged ]; then
        poll 10 spool_queued_is 0 || note "$ctx: all $SPOOL_N messages reached the cloud, but sedgectl spool still says queued=$(spool_field queued) 10 s later."
        d=$(spool_field dropped)
        [ "${d:-0}" != 0 ] && note "$ctx: sedgectl spool says dropped=$d (the spool's max_bytes is 256 MB; 0 expected)."
        sedged_counters "$ctx"
    fi
    stop_broker "$ctx"
    stop_cloud
    echo "$up" >>"$WORK/spool_up.$kind"
    echo "$down" >>"$WORK/spool_down.$kind"
    echo "$drain" >>"$WORK/spool_drain.$kind"
    echo "$drain_s" >>"$WORK/spool_drain_s.$kind"
    echo "$first_s" >>"$WORK/spool_first_s.$kind"
    say "  spool on $kind: publish $up msg/s with the cloud up, $down msg/s down; drain $drain msg/s (first message ${first_s} s, last ${drain_s} s after the cloud's port accepted)"
}

# The cloud again after the outage, with its saved sessions; the counter
# waits for its port.
start_cloud_bg() {
    "$MOSQUITTO" -c "$CDIR/cloud.conf" >>"$CDIR/log" 2>&1 &
    CPID=$!
}

# The outage of spool_round with sedged in the aws-iot profile: the drain
# paces itself to 100 publishes/s; the counter at the cloud times it.
spool_paced() {
    kind=sedged
    ctx="spool, paced to AWS IoT Core's rate"
    NCLOUD=$((NCLOUD + 1))
    CDIR=$WORK/cloud.$NCLOUD
    mkdir -p "$CDIR/db"
    CPORT=$("$LOADGEN" --mode free-port) || { echo "no free port" >>"$WORK/spool_paced.sedged.fail"; return; }
    write_cloud_config "$CDIR" "$CPORT"
    start_cloud || { echo "$CFAIL" >>"$WORK/spool_paced.sedged.fail"; note "$ctx: $CFAIL"; return; }
    LINE=$(timeout -k 5 30 "$LOADGEN" --mode count --port "$CPORT" --qos 1 --cafile "$PKI/ca.pem" \
        --cert "$PKI/counter.pem" --key "$PKI/counter.key" --filter 'data/paced/#' --persistent \
        --register --client-id-prefix paced- --timeout 20 2>>"$WORK/loadgen.log" | grep '^mode=count')
    stop_cloud
    SEDGED_EXTRA="\"cloud\": {\"endpoint\": \"localhost:$CPORT\", \"ca_file\": \"$PKI/ca.pem\",
    \"cert_file\": \"$PKI/edge-core.pem\", \"key_file\": \"$PKI/edge-core.key\",
    \"profile\": \"aws-iot\", \"max_inflight\": 100, \"reconnect_min_ms\": 100,
    \"reconnect_max_ms\": 1000, \"spool\": {\"storage\": \"disk\", \"max_bytes\": 268435456}}"
    GROUP_DOC=$WORK/spool-group.json
    start_broker sedged
    started=$?
    SEDGED_EXTRA=""
    GROUP_DOC=""
    if [ $started != 0 ]; then
        echo "$BFAIL" >>"$WORK/spool_paced.sedged.fail"
        note "$ctx: $BFAIL"
        return
    fi
    r=$(new_run_id)
    if ! publish "$r" data/paced "$SPOOL_PACED_N"; then
        echo "publishing: $(kv status) $(errmsg)" >>"$WORK/spool_paced.sedged.fail"
        note "$ctx: FAILED publishing $SPOOL_PACED_N messages: $(kv status) $(errmsg)"
        stop_broker "$ctx"
        return
    fi
    start_cloud_bg
    LINE=$(timeout -k 5 180 "$LOADGEN" --mode count --port "$CPORT" --qos 1 --cafile "$PKI/ca.pem" \
        --cert "$PKI/counter.pem" --key "$PKI/counter.key" --filter 'data/paced/#' --persistent \
        --client-id-prefix paced- --count "$SPOOL_PACED_N" --run-id "$r" --timeout 150 --drain 5 \
        2>>"$WORK/loadgen.log" | grep '^mode=count')
    printf '%s %s\n' paced "$LINE" >>"$WORK/raw.txt"
    if [ "$(kv status)" = ok ]; then
        kv rate >"$WORK/spool_paced.sedged"
        say "  spool paced to 100/s: drain $(kv rate) msg/s"
    else
        echo "drain: $(kv unique) of $SPOOL_PACED_N messages reached the cloud" >>"$WORK/spool_paced.sedged.fail"
        note "$ctx: FAILED: $(kv unique) of $SPOOL_PACED_N messages reached the cloud ($(kv status) $(errmsg))"
    fi
    t=$(ctl spool --json 2>/dev/null | sed -n '/"throttled"/,/}/p' | jfield total)
    [ "${t:-0}" != 0 ] && note "$ctx: sedgectl spool counts $t throttles against a cloud that throttles nothing."
    stop_broker "$ctx"
    stop_cloud
}

# spool_value FILE: the median, or FAILED with the first reason.
spool_value() { # NAME KIND
    if [ -s "$WORK/$1.$2" ]; then
        median <"$WORK/$1.$2"
    elif [ -s "$WORK/$1.$2.fail" ]; then
        echo "FAILED: $(head -n 1 "$WORK/$1.$2.fail")"
    else
        echo "FAILED: $(head -n 1 "$WORK/spool.$2.fail" 2>/dev/null)"
    fi
}

section_spool() {
    say "spool: $SPOOL_REPEAT rounds per edge (sedged, mosquitto bridge), $SPOOL_N messages per phase, cloud = mosquitto with mTLS"
    PKI=$WORK/pki
    mkdir -p "$PKI"
    if ! out=$(timeout 30 "$SEDGECTL" ca init --dir "$PKI" --core-name cloud-broker --san localhost --san 127.0.0.1 2>&1) ||
        ! out=$(for c in edge-core mosq-bridge counter; do timeout 30 "$SEDGECTL" cert issue $c --dir "$PKI" || exit 1; done 2>&1); then
        echo "sedgectl ca init / cert issue failed: $(printf '%s' "$out" | head -n 1)" >"$WORK/spool.sedged.fail"
        cp "$WORK/spool.sedged.fail" "$WORK/spool.mosquitto.fail"
        note "spool: $(cat "$WORK/spool.sedged.fail")"
    else
        printf '%s\n' '{"group":"spool","things":[{"name":"spool-p0"}],"routes":[{"source":"thing:spool-p0","filter":"data/#","target":"cloud"}]}' >"$WORK/spool-group.json"
        # What the outage makes sedged say, on purpose.
        EXPECTED_LOG='W uplink: cloud [^ ]*: (the cloud closed the connection|cannot connect to [^ ]*: connection refused)'
        rep=0
        while [ $rep -lt "$SPOOL_REPEAT" ]; do
            rep=$((rep + 1))
            say "spool, round $rep of $SPOOL_REPEAT"
            for kind in sedged mosquitto; do spool_round $kind; done
        done
        say "spool, paced to AWS IoT Core's 100 publishes/s: $SPOOL_PACED_N messages"
        spool_paced
        EXPECTED_LOG=""
    fi

    table_header "mosquitto bridge"
    UP_S=$(spool_value spool_up sedged)
    UP_M=$(spool_value spool_up mosquitto)
    DOWN_S=$(spool_value spool_down sedged)
    DOWN_M=$(spool_value spool_down mosquitto)
    abs_row "drain after an outage of $SPOOL_N messages, first to last message at the cloud (msg/s)" \
        "$(spool_value spool_drain sedged)" "$(spool_value spool_drain mosquitto)" 0 ">=" 20000 "msg/s"
    abs_row "drain: the cloud's port accepting to the last message at the cloud (s)" \
        "$(spool_value spool_drain_s sedged)" "$(spool_value spool_drain_s mosquitto)" 2 "" "" ""
    abs_row "drain: the cloud's port accepting to the first message (s; the edge's reconnect delay)" \
        "$(spool_value spool_first_s sedged)" "$(spool_value spool_first_s mosquitto)" 2 "" "" ""
    abs_row "publish rate a thing sees, QoS 1, cloud up (msg/s)" "$UP_S" "$UP_M" 0 "" "" ""
    abs_row "publish rate a thing sees, QoS 1, cloud down: the spool filling (msg/s)" "$DOWN_S" "$DOWN_M" 0 "" "" ""
    pct() { if num "$1" && num "$2"; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print "-" }'; else echo "-"; fi; }
    abs_row "publish rate while the spool fills, relative to the cloud up (%)" \
        "$(pct "$DOWN_S" "$UP_S")" "$(pct "$DOWN_M" "$UP_M")" 0 ">=" 50 "%"
    # Against AWS IoT Core's limit, not the bridge (which has no pace).
    echo >>"$WORK/table.$SECTION"
    REFNAME="AWS IoT Core's limit"
    row "metric" "sedged" "$REFNAME" "sedged/limit" "target" "met"
    row "---" "---:" "---:" "---:" "---" "---"
    PACED=$(spool_value spool_paced sedged)
    if num "$PACED"; then
        inside=$(awk -v v="$PACED" 'BEGIN { print (v >= 90 && v <= 105) ? "yes" : "**no**" }')
    else
        inside="**no**"
    fi
    row "drain to a cloud with AWS IoT Core's limits (profile aws-iot), $SPOOL_PACED_N messages after an outage, first to last at the cloud (msg/s)" \
        "$(fmt "$PACED" 0)" 100 "$(ratio "$PACED" 100)" "0.9x to 1.05x the limit" "$inside"

    info "The mosquitto bridge (the reference): a second mosquitto as the edge broker, \`persistence false\`, \`max_queued_messages 0\` and \`max_queued_bytes 0\` (no limit, so it drops nothing while the cloud is away), \`max_inflight_messages 100\` (as sedged's cloud \`max_inflight\`), and \`connection cloud\` / \`address localhost:PORT\` / \`topic data/# out 1\` / \`cleansession false\` / \`bridge_protocol_version mqttv311\` / \`bridge_cafile\`, \`bridge_certfile\`, \`bridge_keyfile\` / \`notifications false\` / \`restart_timeout 1\`. It holds the queue in memory, sedged on disk: a mosquitto restart during the outage would lose it."
    info "sedged's uplink: \`\"cloud\": {\"endpoint\": \"localhost:PORT\", \"ca_file\", \"cert_file\", \"key_file\", \"max_inflight\": 100, \"reconnect_min_ms\": 100, \"reconnect_max_ms\": 1000, \"spool\": {\"storage\": \"disk\", \"max_bytes\": 268435456}}\` and \`synchronous: full\`; its warnings about the cloud being unreachable during the outage are expected and not reported as problems."
    info "The cloud: mosquitto with \`require_certificate true\`, \`use_identity_as_username true\`, \`persistence true\` (only so that the counter's persistent session outlives the restart; it writes at exit and every hour), \`max_queued_messages 0\`, \`max_inflight_messages 1000\`. The counter is bench/loadgen --mode count over mTLS, QoS 1."

    describe <<DESC
One publisher (thing \`spool-p0\`, bench/loadgen, QoS 1, 64-byte payloads, 32 in
flight) publishes $SPOOL_N messages into the edge with the cloud up, then
$SPOOL_N with the cloud stopped; then the cloud starts again and a counter
at the cloud (a persistent session made before the outage) times their
arrival. The publish rates are what the thing sees (PUBACKs per second; sedged
acknowledges after the spool commit). The drain rate is $SPOOL_N over the time from the
first to the last message at the counter, so the edge's reconnect delay is
not in it (it is in the row after). The cloud is mosquitto on loopback with
mutual TLS (certificates from \`sedgectl ca init\` / \`cert issue\`). Median of
$SPOOL_REPEAT rounds; each round starts a fresh cloud and a fresh edge, sedged then
the mosquitto bridge. Last, once: the same outage with $SPOOL_PACED_N messages and
sedged's cloud profile \`aws-iot\`, whose drain paces itself to AWS IoT Core's
100 publishes/s per connection; its rate is set against that limit (a burst of
a tenth of a second is allowed at the start, hence a little over 100).
DESC
}
