# bench/sections/rest.sh, sourced by bench/run.sh: memory at rest,
# restated (issue 15, part 5). Idle RSS is mostly shared libraries' clean
# pages, which the kernel can drop and other processes share; what the
# process itself costs is its private dirty memory (Private_Dirty in
# /proc/PID/smaps_rollup). Measured on an idle sedged with every service
# on: a TCP and an mTLS listener, the HTTP front, the uplink connected to a cloud (a local
# mosquitto with mutual TLS), a deployed group with a thing, a shadow
# route, a route to the cloud and a function (the C echo example); then
# again after each has been used once (an mTLS client connects, a shadow
# update, an invocation). mosquitto with the same two listeners is the
# reference.

# smaps PID: "private_dirty_kb rss_kb pss_kb" of the process.
smaps() {
    awk '$1 == "Private_Dirty:" { d = $2 } $1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 }
         END { if (r != "") print d, r, p }' "/proc/$1/smaps_rollup" 2>/dev/null
}

rest_group() {
    cat <<EOF
{"group": "rest", "things": [{"name": "bench-client"}],
 "routes": [
  {"source": "thing:bench-client", "filter": "\$aws/things/bench-client/shadow/#", "target": "shadow"},
  {"source": "thing:bench-client", "filter": "data/#", "target": "cloud"},
  {"source": "thing:bench-client", "filter": "fn/#", "target": "function:rest-echo"}],
 "functions": [{"name": "rest-echo", "exec": ["$ECHO_C"], "code": "$(dirname "$ECHO_C")",
                "encoding": "binary", "max_instances": 1}]}
EOF
}

rest_run() { # KIND
    kind=$1
    ctx="rest, $kind"
    if [ "$kind" = sedged ]; then
        CDIR=$WORK/rest-cloud
        mkdir -p "$CDIR"
        CPORT=$("$LOADGEN" --mode free-port) || { echo "no free port" >"$WORK/rest.$kind.fail"; return; }
        cat >"$CDIR/cloud.conf" <<EOF
listener $CPORT 127.0.0.1
cafile $BPKI/ca.pem
certfile $BPKI/core.pem
keyfile $BPKI/core.key
require_certificate true
use_identity_as_username true
$([ "$(id -u)" = 0 ] && echo "user root")
persistence false
log_type error
log_type warning
connection_messages false
EOF
        "$MOSQUITTO" -c "$CDIR/cloud.conf" >>"$CDIR/log" 2>&1 &
        CPID=$!
        if ! "$LOADGEN" --mode wait-port --port "$CPORT" --timeout 10 >/dev/null; then
            echo "the cloud mosquitto did not start: $(grep -v 'should not be run as root' "$CDIR/log" | head -n 1)" >"$WORK/rest.$kind.fail"
            kill -TERM "$CPID" 2>/dev/null
            wait "$CPID" 2>/dev/null
            CPID=""
            return
        fi
        HPORT=$("$LOADGEN" --mode free-port) || { echo "no free port" >"$WORK/rest.$kind.fail"; return; }
        SEDGED_EXTRA="\"http\": {\"bind\": \"127.0.0.1:$HPORT\"},
  \"cloud\": {\"endpoint\": \"localhost:$CPORT\", \"ca_file\": \"$BPKI/ca.pem\",
    \"cert_file\": \"$BPKI/bench-client.pem\", \"key_file\": \"$BPKI/bench-client.key\"}"
        rest_group >"$WORK/rest-group.json"
        GROUP_DOC=$WORK/rest-group.json
    fi
    BENCH_TLS=1
    SEDGED_LIMITS='"max_connections": 20000'
    start_broker "$kind"
    ok=$?
    BENCH_TLS=0
    SEDGED_LIMITS=""
    SEDGED_EXTRA=""
    GROUP_DOC=""
    reason=""
    if [ $ok != 0 ]; then
        reason=$BFAIL
    elif [ "$kind" = sedged ]; then
        cloud_up() { ctl spool --json 2>/dev/null | grep -q '"state": *"connected"'; }
        poll 15 cloud_up || note "$ctx: the uplink did not connect to the cloud mosquitto within 15 s ($(ctl spool --json 2>&1 | jfield state))"
    fi
    if [ -z "$reason" ]; then
        sleep 2
        smaps "$BPID" >"$WORK/rest.$kind.idle"
        # Each service used once: an mTLS client connects and leaves, then
        # (sedged) a shadow update and an invocation.
        # shellcheck disable=SC2046
        "$CONNBENCH" --mode rate --port "$BTLSPORT" $(tls_client_args) --threads 1 --duration 0.2 >>"$WORK/raw.txt" 2>&1
        if [ "$kind" = sedged ]; then
            ctl shadow update bench-client '{"state": {"reported": {"t": 21.5}}}' >/dev/null 2>&1 ||
                note "$ctx: sedgectl shadow update failed"
            ctl invoke rest-echo hello >/dev/null 2>&1 || note "$ctx: sedgectl invoke rest-echo failed"
        fi
        sleep 2
        smaps "$BPID" >"$WORK/rest.$kind.used"
        alive "$BPID" || reason="$kind died at rest"
    fi
    [ -n "$BPID" ] && stop_broker "$ctx"
    if [ -n "$CPID" ]; then
        kill -TERM "$CPID" 2>/dev/null
        wait "$CPID" 2>/dev/null
        CPID=""
    fi
    if [ -n "$reason" ]; then
        echo "$reason" >"$WORK/rest.$kind.fail"
        [ "$kind" = sedged ] && note "$ctx: FAILED: $reason"
        say "  rest on $kind: FAILED: $reason"
        return
    fi
    say "  rest on $kind: private dirty, RSS, PSS (kB): $(cat "$WORK/rest.$kind.idle") idle, $(cat "$WORK/rest.$kind.used") after use"
}

# OpenSSL's share: bench/libfloor with the bench certificates makes a
# server and a client context and waits.
openssl_floor_run() {
    "$LIBFLOOR" "$BPKI/ca.pem" "$BPKI/core.pem" "$BPKI/core.key" 2>>"$WORK/raw.txt" &
    pid=$!
    sleep 0.5
    smaps "$pid" >"$WORK/rest.openssl.idle"
    [ -s "$WORK/rest.openssl.idle" ] || echo "bench/libfloor did not start" >"$WORK/rest.openssl.fail"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# rest_value KIND WHEN FIELD: MB, or FAILED.
rest_value() {
    if [ -s "$WORK/rest.$1.$2" ]; then
        awk -v f="$3" '{ printf "%.2f", $f / 1024 }' "$WORK/rest.$1.$2"
    else
        echo "FAILED: $(head -n 1 "$WORK/rest.$1.fail" 2>/dev/null)"
    fi
}

section_rest() {
    say "rest: private dirty memory at rest, sedged with every service vs mosquitto"
    if bench_pki; then
        for kind in sedged mosquitto; do rest_run $kind; done
        openssl_floor_run
    else
        echo "$BFAIL" >"$WORK/rest.openssl.fail"
        for kind in sedged mosquitto; do echo "$BFAIL" >"$WORK/rest.$kind.fail"; done
    fi
    table_header "mosquitto"
    abs_row "private dirty memory at rest, every service configured (MB)" "$(rest_value sedged idle 1)" "$(rest_value mosquitto idle 1)" 2 "<=" 1.0 MB
    abs_row "private dirty memory of OpenSSL alone: a server and a client context with the certificates (MB)" "$(rest_value openssl idle 1)" "-" 2 "" "" ""
    abs_row "RSS at rest, every service configured (MB)" "$(rest_value sedged idle 2)" "$(rest_value mosquitto idle 2)" 2 "" "" ""
    abs_row "PSS at rest, every service configured (MB)" "$(rest_value sedged idle 3)" "$(rest_value mosquitto idle 3)" 2 "" "" ""
    abs_row "private dirty memory after each service is used once (MB)" "$(rest_value sedged used 1)" "$(rest_value mosquitto used 1)" 2 "" "" ""
    abs_row "RSS after each service is used once (MB)" "$(rest_value sedged used 2)" "$(rest_value mosquitto used 2)" 2 "" "" ""

    info "sedged at rest: a tcp and a tls listener, the HTTP front (discovery, metrics, console) on plain HTTP, the uplink connected over mTLS to a local mosquitto (the cloud), the shadow service, the function runner with a deployed group (a thing, routes to the shadow service, the cloud and a function, the C echo example). mosquitto: a TCP listener and a TLS listener with \`require_certificate true\`, \`persistence false\`."
    describe <<DESC
Private_Dirty, Rss and Pss from /proc/PID/smaps_rollup, 2 s after the broker is
ready (sedged: and its group deployed and its uplink connected), then 2 s after
one mTLS client connected and left and (sedged) one shadow update and one
function invocation went through. One run per broker. The OpenSSL row is
bench/libfloor given the bench CA, certificate and key: a process that links
sedged's libraries, makes a TLS server context and a TLS client context with
them (what a TLS listener and the uplink need before any connection) and
waits; it is what OpenSSL 3 costs any program here, a floor under the target.
DESC
}
