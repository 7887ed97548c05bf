# bench/sections/burst.sh, sourced by bench/run.sh: the unpaced QoS 0
# burst of issue 15, part 1. Four publishers send BENCH_BURST_MESSAGES
# (200,000) 64-byte messages in all to one subscriber as fast as their
# sockets take them (loadgen --window 0: nothing holds them back but the
# broker), and the subscriber counts what arrives. sedged runs with its
# default limits; mosquitto twice, with the limits equivalent to sedged's
# defaults (a queue of 1,000 messages and 4 MB per client), and with the
# 100,000-message queue of the broker section, which is what let it
# deliver everything when issue 15 was written.

BURST_N=${BENCH_BURST_MESSAGES:-200000}

section_burst() {
    say "burst: $BURST_N QoS 0 messages, 4 -> 1, unpaced, $REPEAT runs per broker"
    BURST="--mode fan-in --publishers 4 --qos 0 --mqtt 3 --payload 64 --count $BURST_N --window 0"
    rep=0
    while [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        say "burst, round $rep of $REPEAT"
        # sedged's defaults: max_queued_messages 1000, max_output_bytes 4 MB,
        # slow_reader_timeout_s 60; flow control pauses the publishers.
        SEDGED_LIMITS='"max_connections": 20000'
        # shellcheck disable=SC2086
        tp_run burst sedged $BURST
        SEDGED_LIMITS=""
        MOSQ_QUEUED=1000
        MOSQ_EXTRA="max_queued_bytes 4194304"
        # shellcheck disable=SC2086
        tp_run burst mosquitto $BURST
        MOSQ_QUEUED=""
        MOSQ_EXTRA=""
        # shellcheck disable=SC2086
        tp_run burstq mosquitto $BURST
    done

    table_header "mosquitto"
    DS=$(delivered_pct burst sedged)
    DM=$(delivered_pct burst mosquitto)
    DQ=$(delivered_pct burstq mosquitto)
    abs_row "burst of $BURST_N QoS 0, 4 -> 1 unpaced: delivered, sedged (defaults) vs mosquitto (1,000 messages / 4 MB per client) (%)" "$DS" "$DM" 1 ">=" 100 "%"
    rel_row "burst: delivered rate, vs mosquitto (1,000 / 4 MB) (msg/s)" burst 1 0 ">=" 1.5
    PS=$(peak_mb burst sedged)
    PM=$(peak_mb burst mosquitto)
    limit=$(num "$PM" && awk -v m="$PM" 'BEGIN { printf "%.2f", m + 4 }')
    if [ -n "$limit" ]; then
        abs_row "burst: broker peak RSS (VmHWM), vs mosquitto (1,000 / 4 MB) (MB)" "$PS" "$PM" 2 "<=" "$limit" "MB (mosquitto's + 4)"
    else
        abs_row "burst: broker peak RSS (VmHWM), vs mosquitto (1,000 / 4 MB) (MB)" "$PS" "$PM" 2 "<=" "mosquitto's + 4" "MB"
    fi
    abs_row "burst: delivered, vs mosquitto queueing up to 100,000 messages (%)" "$DS" "$DQ" 1 "" "" ""
    abs_row "burst: delivered rate, vs mosquitto queueing up to 100,000 (msg/s)" "$(figure burst sedged 1)" "$(figure burstq mosquitto 1)" 0 "" "" ""
    abs_row "burst: broker peak RSS, vs mosquitto queueing up to 100,000 (MB)" "$PS" "$(peak_mb burstq mosquitto)" 2 "" "" ""
    abs_row "burst: broker CPU per delivered message, vs mosquitto (1,000 / 4 MB) (us)" "$(figure burst sedged 2)" "$(figure burst mosquitto 2)" 3 "" "" ""

    info "sedged: its default limits (max_queued_messages 1000, max_output_bytes 4 MB, max_inflight 32, slow_reader_timeout_s 60); a subscriber behind pauses the connections publishing to it (src/broker/flow.c)."
    info "mosquitto (1,000 / 4 MB): \`max_queued_messages 1000\`, \`max_queued_bytes 4194304\`, \`max_inflight_messages 32\`, the limits equivalent to sedged's defaults; past them mosquitto drops QoS 0 for an online subscriber (it has no flow control). mosquitto (100,000): \`max_queued_messages 100000\`, the broker section's limit."
    describe <<DESC
Four publishers (bench/loadgen, MQTT 3.1.1, QoS 0, 64-byte payloads) send
$BURST_N messages in all to one subscriber as fast as their sockets take them:
\`loadgen --window 0\`, so nothing but the broker holds them back. Delivered is
what reached the subscriber of what was sent (lost messages are counted by
sequence number); the rate is counted at the subscriber, first message to last;
peak RSS is the broker's VmHWM after the run. Median of $REPEAT runs, each on a
fresh broker, the brokers alternating.
DESC
}
