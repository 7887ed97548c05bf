# bench/sections/mtls.sh, sourced by bench/run.sh: mutual TLS, the way
# things connect (issue 15, part 2). Both brokers get a TLS listener with
# the same CA and certificates (sedgectl ca init / cert issue): sedged's
# `tls` listener, mosquitto's with `require_certificate true`. Neither is
# told which ciphers to use, so both take OpenSSL's defaults; the rows say
# what was negotiated, which is the same for both or the row says so.
#   - fan-in throughput over mTLS, QoS 0 and 1 (bench/loadgen);
#   - connections per second with a client certificate: TCP connect, full
#     TLS handshake, CONNECT, CONNACK, DISCONNECT (bench/connbench);
#     and the same offering the previous connection's TLS 1.3 ticket;
#   - memory per idle mTLS connection, BENCH_IDLE_CONNECTIONS (10,000) of
#     them, and per idle TCP connection opened the same way.

# hs_run NAME KIND [--resume]: one connbench --mode rate run on a fresh
# broker; "rate reused_pct broker_cpu_us_per_connection" to NAME.KIND, the
# negotiated protocol/cipher/group to NAME.KIND.tls, or a reason to .fail.
hs_run() {
    name=$1
    kind=$2
    shift 2
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
    c0=$(cpu_ns "$BPID")
    # shellcheck disable=SC2046
    LINE=$(timeout -k 5 $((SECS * 3 + 60)) "$CONNBENCH" --mode rate --port "$BTLSPORT" $(tls_client_args) \
        --threads 4 --duration "$SECS" "$@" 2>>"$WORK/loadgen.log")
    c1=$(cpu_ns "$BPID")
    printf '%s %s\n' "$kind" "$LINE" >>"$WORK/raw.txt"
    died=0
    alive "$BPID" || died=1
    stop_broker "$ctx"
    reason=""
    [ -z "$LINE" ] && reason="connbench gave no result (timed out or crashed)"
    [ -n "$LINE" ] && [ "$(kv status)" != ok ] && reason="$(kv status) after $(kv connections) connections: $(errmsg)"
    [ $died = 1 ] && reason="$kind died during the run${reason:+ ($reason)}"
    if [ -n "$reason" ]; then
        echo "$reason" >>"$WORK/$name.$kind.fail"
        if [ "$kind" = sedged ]; then note "$ctx: FAILED: $reason; reproduce: connbench --mode rate --port TLSPORT --cafile ca.pem --cert C --key K $*"; else info "$ctx: FAILED: $reason"; fi
        say "  $name on $kind: FAILED: $reason"
        return
    fi
    n=$(kv connections)
    awk -v r="$(kv rate)" -v u="$(kv reused)" -v n="$n" -v a="$c0" -v b="$c1" \
        'BEGIN { printf "%s %.1f %.1f\n", r, (n > 0 ? 100 * u / n : 0), (n > 0 ? (b - a) / 1e3 / n : 0) }' >>"$WORK/$name.$kind"
    echo "$(kv protocol) $(kv cipher) $(kv group)" >>"$WORK/$name.$kind.tls"
    say "  $name on $kind: $(kv rate) connections/s, $(kv reused) of $n resumed, $(kv protocol) $(kv cipher) $(kv group)"
}

section_mtls() {
    say "mtls: sedged and mosquitto with mutual TLS listeners, same CA and certificates"
    if ! bench_pki; then
        for n in tq0 tq1 hs_full hs_resume mtls_idle tcp_idle; do
            for kind in sedged mosquitto; do echo "$BFAIL" >"$WORK/$n.$kind.fail"; done
        done
        note "mtls: $BFAIL"
    fi
    TP="--mqtt 3 --payload 64 --duration $SECS"
    rep=0
    while [ -s "$BPKI/bench-client.key" ] && [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        say "mtls, round $rep of $REPEAT"
        BENCH_TLS=1
        LG_TLS=1
        for q in 0 1; do
            for kind in sedged mosquitto; do
                # shellcheck disable=SC2086
                tp_run tq$q $kind --mode fan-in --publishers 4 --qos $q $TP
            done
        done
        BENCH_TLS=0
        LG_TLS=0
        for kind in sedged mosquitto; do hs_run hs_full $kind; done
        for kind in sedged mosquitto; do hs_run hs_resume $kind --resume; done
    done
    if [ -s "$BPKI/bench-client.key" ]; then
        say "mtls: memory with $IDLE_N idle mTLS connections, then $IDLE_N idle TCP connections"
        for kind in sedged mosquitto; do hold_run mtls_idle $kind 0 "$IDLE_N" 1 0; done
        for kind in sedged mosquitto; do hold_run tcp_idle $kind "$IDLE_N" 0 1 0; done
    fi

    table_header "mosquitto"
    rel_row "QoS 0 fan-in throughput over mTLS, 4 pub -> 1 sub (msg/s)" tq0 1 0 ">=" 1.5
    rel_row "QoS 1 fan-in throughput over mTLS, 4 -> 1 (msg/s)" tq1 1 0 ">=" 1.5
    rel_row "broker CPU per delivered message, QoS 0 over mTLS (us)" tq0 2 3 "" ""
    rel_row "broker CPU per delivered message, QoS 1 over mTLS (us)" tq1 2 3 "" ""
    rel_row "new mTLS connections, full handshake with a client certificate + CONNECT/CONNACK (connections/s)" hs_full 1 0 ">=" 1.2
    rel_row "broker CPU per full mTLS connection (us)" hs_full 3 0 "" ""
    FS=$(figure hs_full sedged 1)
    RS=$(figure hs_resume sedged 1)
    RM=$(figure hs_resume mosquitto 1)
    PS=$(figure hs_resume sedged 2)
    PM=$(figure hs_resume mosquitto 2)
    if ! num "$PS" || [ "$(awk -v p="$PS" 'BEGIN { print (p < 1) }')" = 1 ]; then
        # Not resumed: what sedged did with the ticket is in the cell.
        num "$PS" && RS="not supported (0 % resumed; $(fmt "$RS" 0) connections/s)"
        case "$RS" in FAILED:*) RS="not supported ($RS)" ;; esac
    fi
    row "new mTLS connections resuming a TLS 1.3 session (ticket) (connections/s)" "$(fmt "$RS" 0)" "$(fmt "$RM" 0)" "$(ratio "$RS" "$RM")" \
        ">= 3x sedged's full rate ($(fmt "$FS" 0))" "$(if num "$RS" && num "$FS"; then met ">=" "$(awk -v f="$FS" 'BEGIN { print 3 * f }')" "$RS"; else echo "**no**"; fi)"
    abs_row "connections offering a ticket that were resumed (%)" "$PS" "$PM" 1 ">=" 99 "%"
    abs_row "resumed / full connection rate, each broker (x)" "$(ratio "$RS" "$FS" | tr -d x)" "$(ratio "$RM" "$(figure hs_full mosquitto 1)" | tr -d x)" 2 "" "" ""
    rel_row "broker CPU per resumed mTLS connection (us)" hs_resume 3 0 "" ""
    MS=$(hold_per_conn mtls_idle sedged "$IDLE_N")
    MM=$(hold_per_conn mtls_idle mosquitto "$IDLE_N")
    r=$(ratio "$MS" "$MM")
    row "RSS per idle mTLS connection, $IDLE_N connections (KB)" "$(fmt "$MS" 2)" "$(fmt "$MM" 2)" "$r" "<= 0.5x mosquitto" "$(met "<=" 0.5 "$(printf '%s' "$r" | tr -d x)")"
    abs_row "RSS with $IDLE_N idle mTLS connections (MB)" "$(hold_value mtls_idle sedged 2 | awk '{ printf "%.1f", $1 / 1024 }')" \
        "$(hold_value mtls_idle mosquitto 2 | awk '{ printf "%.1f", $1 / 1024 }')" 1 "" "" ""
    abs_row "time to open $IDLE_N mTLS connections, 4 at a time (s)" "$(hold_value mtls_idle sedged 3)" "$(hold_value mtls_idle mosquitto 3)" 2 "" "" ""
    abs_row "RSS per idle TCP connection, the same client, $IDLE_N connections (KB)" "$(hold_per_conn tcp_idle sedged "$IDLE_N")" "$(hold_per_conn tcp_idle mosquitto "$IDLE_N")" 2 "" "" ""

    # What OpenSSL itself holds per idle connection, and what releasing
    # each part would save (bench/tls_conn_mem counts its allocations).
    if [ -x "$TLS_CONN_MEM" ] && [ -s "$BPKI/bench-client.key" ]; then
        "$TLS_CONN_MEM" "$BPKI/ca.pem" "$BPKI/core.pem" "$BPKI/core.key" "$BPKI/bench-client.pem" \
            "$BPKI/bench-client.key" 200 >"$WORK/tls_conn_mem.out" 2>&1 &&
            info "OpenSSL's own memory per idle server-side mTLS connection (bench/tls_conn_mem, bytes requested from malloc, which adds about 16 bytes to each allocation): $(sed 's/ \{2,\}/ /g; s/ per idle connection//' "$WORK/tls_conn_mem.out" | paste -sd ';' | sed 's/;/; /g')."
    fi
    for kind in sedged mosquitto; do
        [ -s "$WORK/hs_full.$kind.tls" ] && info "negotiated with $kind: $(sort "$WORK/hs_full.$kind.tls" | uniq -c | awk '{ printf "%s%s %s %s (%s runs)", (NR > 1 ? ", " : ""), $2, $3, $4, $1 }')"
    done
    if [ -s "$WORK/hs_full.sedged.tls" ] && [ -s "$WORK/hs_full.mosquitto.tls" ] &&
        [ "$(sort -u "$WORK/hs_full.sedged.tls")" != "$(sort -u "$WORK/hs_full.mosquitto.tls")" ]; then
        note "mtls: sedged and mosquitto negotiated different TLS parameters (see the notes): the handshake rows do not compare like with like."
    fi
    info "Certificates: ECDSA P-256, from \`sedgectl ca init\` and \`cert issue\` (CA -> core certificate, CA -> client certificate CN=bench-client); every client presents the same one. mosquitto: \`listener PORT 127.0.0.1\`, \`cafile\`, \`certfile\`, \`keyfile\`, \`require_certificate true\`, no cipher options; sedged: a \`tls\` listener with \`ca_file\`, \`cert_file\`, \`key_file\`."
    info "sedged's TLS listener (src/broker/tls_tune.c, tls_verify.c) builds its own certificate chain once, issues one stateful TLS 1.3 ticket per handshake (a session id into a cache of 256 sessions) and remembers the client certificates it verified, by SHA-256 fingerprint. Every connbench client presents the same certificate, so from the second connection on sedged answers the chain verification from that cache: by callgrind, a full handshake costs sedged 6.5 M instructions with it and 8.4 M without (a thing whose certificate it has not seen yet), 11.7 M before these changes; mosquitto verifies every handshake and issues two stateless tickets."
    info "The handshake client (bench/connbench) has 4 threads, each connecting one connection after another; it shares the machine's 2 cores with the broker and spends about as much CPU per handshake as the broker does, so the rates are the pair's, and the broker CPU per connection rows are the broker's own cost (all its threads, from /proc/PID/task/*/schedstat)."
    describe <<DESC
Throughput: bench/loadgen as in the broker section (4 publishers, 1 subscriber,
64-byte payloads, a window of 10,000), every client over mutual TLS (one
libmosquitto SSL context per client, TLS 1.3). Connections: bench/connbench,
4 threads for ${SECS} s, each connection a TCP connect, the TLS handshake with
the client certificate, MQTT CONNECT, CONNACK (so the broker's verification of
the certificate is counted), DISCONNECT and close; resumed: each thread offers
the session ticket of its previous connection. Idle memory: $IDLE_N connections
held by connbench, each CONNECTed (keep alive 60 s), RSS a second after the
last CONNACK minus RSS before the first, per connection; the client keeps no
TLS state of its own, the broker all of its. Medians of $REPEAT runs, each on a
fresh broker, the brokers alternating; the idle rows are one run each.
DESC
}
