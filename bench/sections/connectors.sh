# bench/sections/connectors.sh, sourced by bench/run.sh: the connectors
# (issue 18), measured by bench/connectors.py against real peers on
# loopback: Modbus TCP round trips through sedged vs libmodbus called
# directly on the same pymodbus server; the HTTP sink's messages/s to
# Python's http.server, without and with batching; the serial connector's
# bytes/s each way on a socat pty pair vs the pair written and read directly;
# each connector's private dirty memory at rest, beside a program that only links libcurl (the floor
# under the http-sink). Each run starts its own sedged (the connectors are
# programs on its function runtime); BENCH_REPEAT runs, medians.

# conn_value KEY: the median of KEY over the runs, or FAILED.
conn_value() {
    if ls "$WORK"/connectors.kv.* >/dev/null 2>&1; then
        v=$(cat "$WORK"/connectors.kv.* | sed -n "s/^$1=//p" | median)
        [ -n "$v" ] && echo "$v" && return
    fi
    echo "FAILED: $(head -n 1 "$WORK/connectors.fail" 2>/dev/null || echo "not measured")"
}

section_connectors() {
    say "connectors: Modbus TCP, the HTTP sink, serial, memory at rest (bench/connectors.py)"
    MODBUS_N=${BENCH_MODBUS_N:-500}
    SINK_N=${BENCH_SINK_N:-2000}
    SERIAL_BYTES=${BENCH_SERIAL_BYTES:-1024000}
    SERIAL_RUNS=${BENCH_SERIAL_RUNS:-3}
    rep=0
    while [ $rep -lt "$REPEAT" ]; do
        rep=$((rep + 1))
        out=$WORK/connectors.kv.$rep
        if BENCH_MODBUS_N=$MODBUS_N BENCH_SINK_N=$SINK_N BENCH_SERIAL_BYTES=$SERIAL_BYTES \
            BENCH_SERIAL_RUNS=$SERIAL_RUNS timeout 600 "$PYTHON" "$ROOT/bench/connectors.py" \
            "$BUILD" --kv >"$out" 2>"$WORK/connectors.err.$rep" && [ -s "$out" ]; then
            say "  run $rep of $REPEAT: modbus $(sed -n 's/^modbus_rate=//p' "$out") req/s, sink $(sed -n 's/^sink1_rate=//p' "$out") / $(sed -n 's/^sink100_rate=//p' "$out") msg/s, serial $(sed -n 's/^serial_write_rate=//p' "$out") / $(sed -n 's/^serial_read_rate=//p' "$out") bytes/s"
        else
            rm -f "$out"
            echo "run $rep: bench/connectors.py failed: $(tail -n 1 "$WORK/connectors.err.$rep")" >>"$WORK/connectors.fail"
            note "connectors, run $rep: bench/connectors.py failed: $(tail -n 1 "$WORK/connectors.err.$rep"); reproduce: python3 bench/connectors.py BUILD"
        fi
    done

    table_header "reference"
    row "Modbus TCP read-holding-registers round trips through sedged, one at a time (req/s); reference: libmodbus called directly" \
        "$(fmt "$(conn_value modbus_rate)" 0)" "$(fmt "$(conn_value modbus_direct_rate)" 0)" \
        "$(ratio "$(conn_value modbus_rate)" "$(conn_value modbus_direct_rate)")" "-" "-"
    S1=$(conn_value sink1_rate)
    abs_row "HTTP sink, $SINK_N messages to a local HTTP server, batch_max 1 (msg/s)" "$S1" "-" 0 "" "" ""
    row "HTTP sink, the same, batch_max 100 (msg/s); reference: batch_max 1" \
        "$(fmt "$(conn_value sink100_rate)" 0)" "$(fmt "$S1" 0)" "$(ratio "$(conn_value sink100_rate)" "$S1")" "-" "-"
    row "serial connector, MQTT -> serial line (bytes/s); reference: the same bytes written and read directly on a pty pair by one Python process" \
        "$(fmt "$(conn_value serial_write_rate)" 0)" "$(fmt "$(conn_value serial_write_direct_rate)" 0)" \
        "$(ratio "$(conn_value serial_write_rate)" "$(conn_value serial_write_direct_rate)")" "-" "-"
    row "serial connector, serial line -> MQTT (bytes/s); reference: the same, the other way on the pty pair" \
        "$(fmt "$(conn_value serial_read_rate)" 0)" "$(fmt "$(conn_value serial_read_direct_rate)" 0)" \
        "$(ratio "$(conn_value serial_read_rate)" "$(conn_value serial_read_direct_rate)")" "-" "-"
    abs_row "modbus connector, private dirty memory at rest (KB)" "$(conn_value modbus_rest_dirty_kb)" "-" 0 "<=" 1024 "KB"
    abs_row "http-sink connector, private dirty memory at rest (KB); reference: a program that only links libcurl and starts it" \
        "$(conn_value sink_rest_dirty_kb)" "$(conn_value curl_floor_dirty_kb)" 0 "<=" 1024 "KB"
    abs_row "serial connector, private dirty memory at rest (KB)" "$(conn_value serial_rest_dirty_kb)" "-" 0 "<=" 1024 "KB"
    abs_row "metrics connector, private dirty memory at rest (KB)" "$(conn_value metrics_rest_dirty_kb)" "-" 0 "<=" 1024 "KB"
    abs_row "modbus connector, private dirty memory after the round trips (KB)" "$(conn_value modbus_used_dirty_kb)" "-" 0 "" "" ""
    abs_row "http-sink connector, private dirty memory after $SINK_N messages (KB)" "$(conn_value sink_used_dirty_kb)" "-" 0 "" "" ""

    info "What the http-sink's memory is: bench/curl_floor, a program that only links Debian's libcurl4 (which loads 32 shared libraries: OpenSSL, GnuTLS through librtmp, Kerberos, LDAP, SASL, SSH, HTTP/2, IDN, PSL, brotli, zstd) and calls nothing, has $(conn_value curl_linked_dirty_kb) KB of private dirty memory (a program of plain libc: about 110 KB): the dynamic loader's relocations and the libraries' data, per process. curl_global_init and a multi and an easy handle, as the connector at start, bring it to $(conn_value curl_floor_dirty_kb) KB. The connector at rest has $(conn_value sink_rest_dirty_kb) KB: its own code and queue cost next to nothing above libcurl's floor, which is over the 1 MB target by itself (the GnuTLS and NSS flavours of libcurl, measured the same way: about 1200 and 1330 KB)."
    info "Private_Clean (not in the rows) counts the file pages only this process maps, so it depends on what else runs: the connector's libcurl pages are private clean while no other program maps libcurl (http-sink at rest: $(conn_value sink_rest_clean_kb) KB in these runs); the kernel can drop them and any other libcurl user would share them."
    info "A pseudo-terminal has no baud rate: the serial rows measure what the broker, the routes, the function socket, the connector and JSON add to a line that is as fast as the kernel copies, not a UART (at 115200 baud a line carries about 11,520 bytes/s)."
    info "Not measured here: the GPIO connector (it needs gpio-sim); its test (tests/integration/test_connector_gpio.py) runs it."
    describe <<DESC
bench/connectors.py, $REPEAT runs, medians; each run starts its own sedged
and deploys a group with the connector under test. Modbus: a paho client
publishes Greengrass's ReadHoldingRegistersRequest (3 registers) on
modbus/adapter/request and waits for the response, $MODBUS_N times after 20 of
warm-up, against a pymodbus TCP server; the reference is bench/modbus_direct,
libmodbus calling the same server directly, so the ratio is what the broker,
the routes, the function socket and the connector add. HTTP sink: a paho
client publishes $SINK_N QoS 1 messages routed to the sink, which POSTs them
to Python's http.server (which bounds both rates); the rate runs from the
first publish to the last message counted at the server. Serial: a socat
pty pair, the connector on one end (termios, polling read every 1 ms of up
to 63994 bytes, type ascii), this process on the other; $SERIAL_BYTES bytes
of printable ASCII each way, $SERIAL_RUNS times, the median: MQTT -> serial
line publishes them as Greengrass's write requests of 128000 bytes (the
connector's largest write) at QoS 1 and counts them at the far end; serial
line -> MQTT writes them at the far end and counts them in the polled
read_response messages at a paho subscriber; each timed from the first
publish or write to the last byte counted, the bytes compared. The
reference writes and reads the same bytes, in the same 128000-byte writes,
on another socat pty pair in one Python process: what the pty and socat
allow, so the ratio is the connector's overhead. Memory:
Private_Dirty of the connector's own process (below sedge-sandbox) from
/proc/PID/smaps_rollup, a second after its instance started, and after
its traffic.
DESC
}
