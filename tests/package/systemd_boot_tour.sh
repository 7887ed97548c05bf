#!/bin/sh
# Run inside a Debian 12 root booted by systemd-nspawn, systemd as PID 1
# (tests/package/test_systemd_boot.py installs it there with the packages
# and sedge-boot-test.service, a oneshot After= and Wants=sedge.service):
# what a user does after `apt install ./sedge_*.deb` and
# `systemctl enable --now sedge`, each step one PASS or FAIL line in
# $RESULTS, then "DONE", then the machine powers off.
#   usage: systemd_boot_tour.sh [RESULTS]
RESULTS=${1:-/var/lib/sedge-boot-test/results}
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
work=$(mktemp -d /tmp/sedge-boot-test.XXXXXX)
chmod 755 "$work"

pass() { echo "PASS $*" >>"$RESULTS"; }
fail() { echo "FAIL $*" >>"$RESULTS"; }
# check NAME COMMAND...: PASS NAME when COMMAND succeeds, else FAIL NAME
# with the last lines of its output.
check() {
    name=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        pass "$name"
    else
        fail "$name: $(tail -5 "$work/out" | tr '\n' '|')"
    fi
}

# -- sedged is up: active (Type=notify: only after READY=1), admin socket
wait_active() {
    i=0
    until [ "$(systemctl is-active sedge)" = active ] && [ -S /var/lib/sedge/admin.sock ]; do
        i=$((i + 1))
        [ $i -lt 300 ] || { systemctl status sedge --no-pager; return 1; }
        sleep 0.1
    done
}
check "systemctl is-active sedge (Type=notify, READY=1) and /var/lib/sedge/admin.sock" wait_active
check "sedge.service is enabled" sh -c 'v=$(systemctl is-enabled sedge); echo "$v"; [ "$v" = enabled ]'
pid=$(systemctl show sedge -p MainPID --value)
check "sedged (MainPID $pid) runs as the sedge user" sh -c "[ \"\$(stat -c %U /proc/$pid)\" = sedge ]"
check "sedgectl status (finds /var/lib/sedge itself)" sh -c "cd / && sedgectl status | grep -q 'sedged .* (pid $pid'"

# -- MQTT through sedged on loopback, QoS 1
qos1() {
    mosquitto_sub -h 127.0.0.1 -p 1883 -q 1 -t 'demo/#' -v -C 1 -W 10 >"$work/sub" &
    sub=$!
    sleep 0.5
    mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t demo/hello -m 'hi from systemd' || return 1
    wait $sub && grep -qx "demo/hello hi from systemd" "$work/sub"
}
check "mosquitto_pub/sub QoS 1 through sedged on 127.0.0.1:1883" qos1
persistent() {
    mosquitto_sub -h 127.0.0.1 -p 1883 -i boot-reader -c -q 1 -t 'plant/#' -E || return 1
    mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t plant/line1 -m 'queued while away' || return 1
    systemctl restart sedge && wait_active || return 1
    mosquitto_sub -h 127.0.0.1 -p 1883 -i boot-reader -c -q 1 -t 'plant/#' -v -C 1 -W 10 |
        grep -qx "plant/line1 queued while away"
}
check "a QoS 1 message for a persistent session survives systemctl restart sedge" persistent
crash() {
    before=$(systemctl show sedge -p MainPID --value)
    n=$(systemctl show sedge -p NRestarts --value)
    kill -9 "$before"
    i=0
    until [ "$(systemctl show sedge -p NRestarts --value)" = $((n + 1)) ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || { systemctl status sedge --no-pager; return 1; }
        sleep 0.1
    done
    wait_active && [ "$(systemctl show sedge -p MainPID --value)" != "$before" ]
}
check "kill -9 sedged: Restart=on-failure starts it again (NRestarts +1, active)" crash

# -- systemctl reload: ExecReload sends SIGHUP, sedged logs what it reloaded
reload() {
    before=$(systemctl show sedge -p MainPID --value)
    since=$(date '+%Y-%m-%d %H:%M:%S')
    sleep 1
    systemctl reload sedge || return 1
    i=0
    until journalctl -u sedge --since "$since" -o cat | grep "SIGHUP: reloading /etc/sedge/sedge.json"; do
        i=$((i + 1))
        [ $i -lt 50 ] || return 1
        sleep 0.1
    done
    [ "$(systemctl is-active sedge)" = active ] &&
        [ "$(systemctl show sedge -p MainPID --value)" = "$before" ]
}
check "systemctl reload sedge: the journal has 'SIGHUP: reloading /etc/sedge/sedge.json', same MainPID, active" reload

# -- journald priorities: a warning (a first packet that is not CONNECT)
# shows under -p warning, the info lines do not
priorities() {
    python3 -c 'import socket, time
s = socket.create_connection(("127.0.0.1", 1883), timeout=5)
s.sendall(b"\x30\x05\x00\x01a\x00\x00")
time.sleep(0.5)
s.close()' || return 1
    i=0
    until journalctl -u sedge -p warning -o cat | grep "not CONNECT; closing"; do
        i=$((i + 1))
        [ $i -lt 50 ] || return 1
        sleep 0.1
    done
    journalctl -u sedge -o cat | grep -q " ready " || { echo "no ready line at all"; return 1; }
    ! journalctl -u sedge -p warning -o cat | grep " ready "
}
check "journalctl -p warning -u sedge shows the warning and not the info lines (<N> prefixes)" priorities

# -- watchdog
check "systemctl show sedge -p WatchdogUSec: 30s" sh -c \
    '[ "$(systemctl show sedge -p WatchdogUSec --value)" = 30s ]'
watchdog_pings() {
    # A ping missed for 30 s would have restarted it: after the restart above
    # and 35 s more the same sedged is still there, NRestarts unchanged.
    before=$(systemctl show sedge -p MainPID --value)
    n=$(systemctl show sedge -p NRestarts --value)
    sleep 35
    [ "$(systemctl show sedge -p MainPID --value)" = "$before" ] &&
        [ "$(systemctl show sedge -p NRestarts --value)" = "$n" ] &&
        [ "$(systemctl is-active sedge)" = active ]
}
check "the watchdog (WATCHDOG=1 pings) keeps sedged alive past WatchdogSec=30" watchdog_pings

# -- the unit's hardening, as systemd applied it
show() { systemctl show sedge -p "$1" --value; }
check "ProtectSystem=strict" sh -c '[ "$(systemctl show sedge -p ProtectSystem --value)" = strict ]'
check "NoNewPrivileges=yes" sh -c '[ "$(systemctl show sedge -p NoNewPrivileges --value)" = yes ]'
caps="cap_chown cap_kill cap_setgid cap_setuid cap_setpcap cap_sys_admin cap_mknod"
check "AmbientCapabilities=$caps" sh -c "[ \"\$(systemctl show sedge -p AmbientCapabilities --value)\" = '$caps' ]"
check "CapabilityBoundingSet=$caps" sh -c "[ \"\$(systemctl show sedge -p CapabilityBoundingSet --value)\" = '$caps' ]"
applied() {
    pid=$(systemctl show sedge -p MainPID --value)
    grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status || { echo "NoNewPrivs"; return 1; }
    # CapAmb: chown(0) kill(5) setgid(6) setuid(7) setpcap(8) mknod(27) sys_admin(21)
    grep -q '^CapAmb:[[:space:]]*00000000082001e1' /proc/$pid/status || { grep Cap /proc/$pid/status; return 1; }
    grep -q '^CapBnd:[[:space:]]*00000000082001e1' /proc/$pid/status || { grep Cap /proc/$pid/status; return 1; }
    # ProtectSystem=strict: /usr and /etc are read-only in sedged's mount namespace
    nsenter -t "$pid" -m sh -c 'touch /usr/sedge-probe 2>/dev/null && rm -f /usr/sedge-probe && exit 1
                                touch /etc/sedge-probe 2>/dev/null && rm -f /etc/sedge-probe && exit 1
                                exit 0' || { echo "/usr or /etc writable"; return 1; }
}
check "the kernel sees it: NoNewPrivs 1, CapAmb=CapBnd of those 7, /usr and /etc read-only for sedged" applied

# -- a sandboxed function, deployed and invoked
function_tour() {
    fn=/opt/sedge-boot-fn
    mkdir -p $fn
    cat >$fn/where.py <<'PY'
import sedge
sedge.run(lambda topic, payload: sedge.__file__.encode())
PY
    chmod -R a+rX $fn
    cat >"$work/group.json" <<EOF
{ "group": "boot", "things": [ { "name": "sensor-1" } ],
  "functions": [ { "name": "where", "exec": ["/usr/bin/python3", "$fn/where.py"], "code": "$fn" } ] }
EOF
    sedgectl deploy "$work/group.json" || return 1
    out=$(sedgectl invoke where) || return 1
    [ "$out" = /usr/lib/python3/dist-packages/sedge/__init__.py ] || { echo "invoke: $out"; return 1; }
    sedgectl functions --json | python3 -c '
import json, sys
for f in json.load(sys.stdin)["functions"]:
    iso = f["isolation"]
    assert iso["mode"] == "sandbox", iso
    seen = iso.get("observed") or {}
    assert all(seen.get(k) for k in ("no_capabilities", "empty_bounding_set", "no_new_privs",
                                     "seccomp")), seen
    assert f["limits"]["run_as"] == "65534:65534", f["limits"]
'
}
check "a Python function (python3-sedge) deployed and invoked, sandboxed as nobody under the unit" function_tour

check "systemctl stop sedge: inactive, exit status 0" sh -c \
    'systemctl stop sedge && [ "$(systemctl is-active sedge)" = inactive ] && [ "$(systemctl show sedge -p ExecMainStatus --value)" = 0 ]'
journalctl -u sedge --no-pager -o short-monotonic >"$(dirname "$RESULTS")/sedge.journal" 2>&1
echo DONE >>"$RESULTS"
sync
