# bench/sections/http.sh, sourced by bench/run.sh: the HTTP front (issue
# 13). Discovery requests per second over mutual TLS with keep-alive,
# beside libwebsockets answering a fixed body of the same size with the
# same TLS setup (bench/lws_static: the library's own cost, so the ratio is
# sedged's overhead); new TLS handshakes per second, the same two; MQTT
# over WebSockets (QoS 0, 1 -> 1, 64-byte payloads, bench/httpbench, a
# client on plain sockets) against mosquitto's websockets listener; and the
# idle RSS the front adds (a discovery site, the console and /metrics, a
# ws listener) to an otherwise identical sedged.
#
# Debian 12's mosquitto 2.0.11 does not start a websockets listener with
# Debian's libwebsockets 4.1.6, with or without `socket_domain ipv4` ("Unable
# to start any listening sockets": that lws is built without
# LWS_WITH_EXTERNAL_POLL, which mosquitto 2.0 needs to poll lws's sockets in
# its own loop).
# When it does not start, the reference is mosquitto's plain MQTT listener
# driven by the same client over TCP — mosquitto without the WebSocket
# framing's cost, so a stricter reference than its websockets listener.

HTTPBENCH=$BUILD/bench/httpbench
LWS_STATIC=$BUILD/bench/lws_static

http_group() {
    cat <<EOF
{"group": "bench-http", "things": [{"name": "bench-client"}, {"name": "bench-sub"},
 {"name": "bench-pub"}],
 "routes": [{"source": "thing:*", "filter": "#", "target": "thing:*"}]}
EOF
}

# http_start WITH_FRONT: sedged with (1) or without (0) the front; sets
# DPORT, WPORT, HPORT.
http_start() {
    DPORT=$("$LOADGEN" --mode free-port) && WPORT=$("$LOADGEN" --mode free-port) &&
        HPORT=$("$LOADGEN" --mode free-port) || { BFAIL="no free port"; return 1; }
    if [ "$1" = 1 ]; then
        SEDGED_EXTRA_LISTENERS="{\"type\": \"ws\", \"bind\": \"127.0.0.1:$WPORT\"}"
        SEDGED_EXTRA="\"http\": {\"bind\": \"127.0.0.1:$HPORT\"},
  \"discovery\": {\"bind\": \"127.0.0.1:$DPORT\", \"ca_file\": \"$BPKI/ca.pem\",
    \"cert_file\": \"$BPKI/core.pem\", \"key_file\": \"$BPKI/core.key\",
    \"connectivity\": [{\"HostAddress\": \"127.0.0.1\", \"PortNumber\": 8883}]}"
    fi
    http_group >"$WORK/http-group.json"
    GROUP_DOC=$WORK/http-group.json
    BENCH_TLS=1 # a tls listener in both: what a core has anyway
    start_broker sedged
    ok=$?
    BENCH_TLS=0
    SEDGED_EXTRA=""
    SEDGED_EXTRA_LISTENERS=""
    GROUP_DOC=""
    [ $ok = 0 ] && [ "$1" = 1 ] && ! "$LOADGEN" --mode wait-port --port "$DPORT" --timeout 10 >/dev/null &&
        { BFAIL="the discovery port did not open"; stop_broker "http"; return 1; }
    return $ok
}

# One httpbench run into $WORK/http.NAME.KIND (the rate).
http_run() { # NAME KIND ARGS...
    name=$1 kind=$2
    shift 2
    LINE=$("$HTTPBENCH" "$@" 2>&1)
    rate=$(kv rate)
    errors=$(kv errors)
    bad=0 # messages lost, repeated or reordered, or malformed (ws-mqtt)
    for k in lost reordered malformed; do
        v=$(kv $k)
        num "$v" && bad=$((bad + v))
    done
    if num "$rate" && [ "${errors:-0}" -lt 100 ] 2>/dev/null && [ "${bad:-0}" = 0 ]; then
        echo "$rate" >>"$WORK/http.$name.$kind"
    else
        note "http, $name, $kind: $LINE"
    fi
}

http_median() { [ -s "$WORK/http.$1.$2" ] && median <"$WORK/http.$1.$2" || echo "FAILED"; }

section_http() {
    say "http: discovery and handshakes vs lws_static, MQTT over WebSockets vs mosquitto, idle RSS"
    [ -x "$HTTPBENCH" ] && [ -x "$LWS_STATIC" ] ||
        cmake --build "$BUILD" --target httpbench lws_static >/dev/null 2>&1
    bench_pki || { note "http: $BFAIL"; return; }
    TLSARGS="--ca $BPKI/ca.pem --cert $BPKI/bench-client.pem --key $BPKI/bench-client.key"
    DPATH=/greengrass/discover/thing/bench-client
    rep=0
    while [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        say "http, round $rep of $REPEAT"
        if http_start 1; then
            # The reference answers with a body as long as discovery's.
            size=$(curl -s --cacert "$BPKI/ca.pem" --cert "$BPKI/bench-client.pem" \
                --key "$BPKI/bench-client.key" "https://127.0.0.1:$DPORT$DPATH" | wc -c)
            # shellcheck disable=SC2086
            http_run get sedged --mode get --port "$DPORT" --path "$DPATH" $TLSARGS \
                --connections 4 --duration "$SECS"
            # shellcheck disable=SC2086
            http_run handshake sedged --mode handshake --port "$DPORT" --path "$DPATH" $TLSARGS \
                --connections 4 --duration "$SECS"
            http_run ws sedged --mode ws-mqtt --port "$WPORT" --duration "$SECS" --payload 64
            http_run tcp sedged --mode ws-mqtt --transport tcp --port "$BPORT" --duration "$SECS" \
                --payload 64
            stop_broker "http, sedged"
        else
            note "http: sedged did not start: $BFAIL"
            size=1500
        fi
        # A port free a moment ago may be taken by now (the machine is
        # shared): up to three tries.
        tries=0
        while [ $tries -lt 3 ]; do
            tries=$((tries + 1))
            LPORT=$("$LOADGEN" --mode free-port)
            "$LWS_STATIC" --port "$LPORT" --ca "$BPKI/ca.pem" --cert "$BPKI/core.pem" \
                --key "$BPKI/core.key" --size "${size:-1500}" >"$WORK/lws_static.log" 2>&1 &
            LSPID=$!
            BGPIDS="$BGPIDS $LSPID"
            "$LOADGEN" --mode wait-port --port "$LPORT" --timeout 10 >/dev/null && alive "$LSPID" &&
                break
            kill -TERM "$LSPID" 2>/dev/null
            wait "$LSPID" 2>/dev/null
        done
        if alive "$LSPID"; then
            # shellcheck disable=SC2086
            http_run get lws --mode get --port "$LPORT" --path /x $TLSARGS --connections 4 \
                --duration "$SECS"
            # shellcheck disable=SC2086
            http_run handshake lws --mode handshake --port "$LPORT" --path /x $TLSARGS \
                --connections 4 --duration "$SECS"
        else
            note "http: lws_static did not start: $(head -n 2 "$WORK/lws_static.log")"
        fi
        kill -TERM "$LSPID" 2>/dev/null
        wait "$LSPID" 2>/dev/null
        # mosquitto's websockets listener, or its TCP one when that will not start.
        MDIR=$WORK/mosquitto-ws.$rep
        mkdir -p "$MDIR"
        MPORT=$("$LOADGEN" --mode free-port)
        cat >"$MDIR/mosquitto.conf" <<EOF
listener $MPORT 127.0.0.1
protocol websockets
socket_domain ipv4
allow_anonymous true
max_queued_messages 100000
persistence false
set_tcp_nodelay true
log_type error
$([ "$(id -u)" = 0 ] && echo "user root")
EOF
        "$MOSQUITTO" -c "$MDIR/mosquitto.conf" >"$MDIR/log" 2>&1 &
        MPID=$!
        BGPIDS="$BGPIDS $MPID"
        MREF=ws
        # (It opens the port before it gives up: alive a moment later?)
        "$LOADGEN" --mode wait-port --port "$MPORT" --timeout 3 >/dev/null
        sleep 0.5
        if ! alive "$MPID"; then
            info "mosquitto's websockets listener did not start ($(grep -v 'should not be run as root' "$MDIR/log" | grep -i error | head -n 1 | cut -d' ' -f2-)); the reference is its plain MQTT listener with the same client over TCP."
            kill -TERM "$MPID" 2>/dev/null
            wait "$MPID" 2>/dev/null
            sed -i '/^protocol websockets$/d; /^socket_domain ipv4$/d' "$MDIR/mosquitto.conf"
            "$MOSQUITTO" -c "$MDIR/mosquitto.conf" >"$MDIR/log" 2>&1 &
            MPID=$!
            BGPIDS="$BGPIDS $MPID"
            MREF=tcp
            "$LOADGEN" --mode wait-port --port "$MPORT" --timeout 10 >/dev/null ||
                note "http: mosquitto did not start: $(head -n 2 "$MDIR/log")"
        fi
        http_run ws mosquitto --mode ws-mqtt --transport "$MREF" --port "$MPORT" --duration "$SECS" \
            --payload 64
        kill -TERM "$MPID" 2>/dev/null
        wait "$MPID" 2>/dev/null
    done

    say "http: idle RSS with and without the front"
    for front in 0 1; do
        if http_start $front; then
            sleep 1
            rss_kb "$BPID" >>"$WORK/http.rss.$front"
            stop_broker "http, idle"
        else
            note "http: sedged did not start: $BFAIL"
        fi
    done
    RSS0=$(cat "$WORK/http.rss.0" 2>/dev/null)
    RSS1=$(cat "$WORK/http.rss.1" 2>/dev/null)
    ADDED=FAILED
    num "$RSS0" && num "$RSS1" && ADDED=$(awk -v a="$RSS1" -v b="$RSS0" 'BEGIN { printf "%.2f", (a - b) / 1024 }')

    desc() { printf '%s\n' "$*" >>"$WORK/desc.$SECTION"; }
    desc "bench/httpbench (plain sockets and OpenSSL) drives both sides; discovery is GET $DPATH with the thing's certificate, 4 keep-alive connections; handshakes open a connection (full TLS 1.3 handshake, ECDSA P-256, client certificate) per request; MQTT over WebSockets is one publisher and one subscriber, QoS 0, 64-byte payloads, at most 2,000 messages in flight, the publisher writing 64 PUBLISH packets at a time (one WebSocket frame); the subscriber parses every PUBLISH and checks its topic, its payload and the sequence number in it (a run with one lost, repeated, reordered or malformed message is not counted, and is listed below); mosquitto is driven by the same client, through its $MREF listener. The ratio is large because mosquitto writes each packet to its subscriber with a system call of its own, where sedged writes what a loop turn produced for a connection at once. Idle RSS: sedged 1 s after start with a tcp and a tls listener and a deployed group, with and without the front (a discovery site, the console and /metrics on loopback, a ws listener)."
    table_header "reference"
    G_S=$(http_median get sedged)
    G_L=$(http_median get lws)
    H_S=$(http_median handshake sedged)
    H_L=$(http_median handshake lws)
    W_S=$(http_median ws sedged)
    W_M=$(http_median ws mosquitto)
    T_S=$(http_median tcp sedged)
    row "discovery over mTLS keep-alive, 4 connections (req/s); reference: lws answering a fixed body" "$(fmt "$G_S")" "$(fmt "$G_L") lws_static" "$(ratio "$G_S" "$G_L")" "-" "-"
    row "new TLS handshakes with a client certificate, discovery (handshakes/s); reference: lws" "$(fmt "$H_S")" "$(fmt "$H_L") lws_static" "$(ratio "$H_S" "$H_L")" "-" "-"
    r=$(ratio "$W_S" "$W_M")
    row "MQTT over WebSockets, QoS 0, 1 -> 1, 64 B (msg/s)" "$(fmt "$W_S")" "$(fmt "$W_M") mosquitto ($MREF)" "$r" ">= 1.5x mosquitto" "$(met ">=" 1.5 "$(printf '%s' "$r" | tr -d x)")"
    row "MQTT over WebSockets vs sedged's own TCP listener, same client (msg/s); reference: TCP" "$(fmt "$W_S")" "$(fmt "$T_S") sedged (tcp)" "$(ratio "$W_S" "$T_S")" "-" "-"
    row "idle RSS added by the HTTP front (MB)" "$ADDED" "$(fmt "$(awk -v a="${RSS0:-0}" 'BEGIN { print a / 1024 }')" 2) without it" "-" "<= 1 MB" "$(met "<=" 1 "$ADDED")"
}
