#!/bin/sh
# Install the amd64 packages into this machine's file system as seen from a
# private mount and network namespace (overlays on /usr, /etc and /var with
# their changes in a tmpfs; a network of its own, so the packaged ports
# 1883 and 8883 are free), then do what a user does: start sedged as the
# unit says (the sedge user, exactly the unit's capabilities, the packaged
# config), run the README's tour against it with sedgectl finding the data
# directory by itself, a sandboxed Python function on python3-sedge, a C
# function built with pkg-config against libsedge-dev, remove (the data
# stays) and purge (it goes). Nothing outlives the namespace.
#   usage: unshare --mount --net tests/package/deb_tour.sh DEB_DIR [WORK_DIR]
# Every step prints "ok: ..." or stops with "FAILED: ..." and exit 1.
set -eu
debs=$(cd "${1:?usage: deb_tour.sh DEB_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

fail() { echo "FAILED: $*"; [ -f "$work/sedged.log" ] && tail -20 "$work/sedged.log"; exit 1; }
ok() { echo "ok: $*"; }

# -- the namespace's own root: every write lands in a tmpfs
work=${2:-$(mktemp -d /tmp/sedge-deb-tour.XXXXXX)}
mount -t tmpfs sedge-deb-tour "$work"
for d in usr etc var; do
    mkdir -p "$work/$d.up" "$work/$d.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/$d.up,workdir=$work/$d.work" "/$d"
done
ip link set lo up
chmod 755 "$work"

# -- install
dpkg -i "$debs"/sedge_*_amd64.deb "$debs"/libsedge0_*_amd64.deb \
    "$debs"/libsedge-dev_*_amd64.deb "$debs"/python3-sedge_*_all.deb >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log"; fail "dpkg -i"; }
ok "dpkg -i sedge libsedge0 libsedge-dev python3-sedge"
getent passwd sedge >/dev/null || fail "no sedge user"
[ "$(stat -c '%U %a' /var/lib/sedge)" = "sedge 711" ] || fail "/var/lib/sedge: $(stat -c '%U %a' /var/lib/sedge)"
[ -f /var/lib/sedge/ca.pem ] && [ "$(stat -c %U /var/lib/sedge/core.key)" = sedge ] ||
    fail "no demo CA of the sedge user in /var/lib/sedge"
dpkg-query -W -f='${Conffiles}\n' sedge | grep -q /etc/sedge/sedge.json || fail "sedge.json is not a conffile"
ok "sedge user, /var/lib/sedge (0711) with its demo CA, /etc/sedge/sedge.json a conffile"
systemd-analyze verify /lib/systemd/system/sedge.service >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; fail "systemd-analyze verify"; }
ok "systemd-analyze verify sedge.service (man pages included)"
[ "$(/usr/bin/python3 -c 'import sedge; print(sedge.__file__)')" = /usr/lib/python3/dist-packages/sedge/__init__.py ] ||
    fail "python3 does not find python3-sedge"
ok "Debian's python3 imports sedge from python3-sedge"

# -- start sedged as the unit would (systemd is not PID 1 here)
unit=/lib/systemd/system/sedge.service
value() { sed -n "s/^$1=//p" "$unit"; }
caps=$(value AmbientCapabilities | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
[ "$(value CapabilityBoundingSet)" = "$(value AmbientCapabilities)" ] || fail "bounding set differs"
user=$(value User)
exec_start=$(value ExecStart)
: >"$work/sedged.log"
start_sedged() {
    mark=$(wc -l <"$work/sedged.log")
    # shellcheck disable=SC2086
    setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
        --inh-caps="$caps" --ambient-caps="$caps" --bounding-set=-all,"$caps" \
        $exec_start >>"$work/sedged.log" 2>&1 &
    pid=$!
    i=0
    until tail -n +$((mark + 1)) "$work/sedged.log" | grep -q " ready " && [ -S /var/lib/sedge/admin.sock ]; do
        i=$((i + 1))
        [ $i -lt 300 ] && kill -0 $pid 2>/dev/null || fail "sedged did not start"
        sleep 0.1
    done
}
start_sedged
[ "$(stat -c %U /proc/$pid)" = sedge ] || fail "sedged does not run as sedge"
ok "sedged runs as $user with $caps, from $exec_start"

cd /   # no ./sedge-data here: sedgectl must find /var/lib/sedge itself
sedgectl status | grep -q "sedged 0.1.0 (pid $pid" || fail "sedgectl status without --data-dir"
ok "sedgectl status finds the installed data directory"

# -- the README's tour
mosquitto_sub -h 127.0.0.1 -p 1883 -t 'demo/#' -v -C 1 -W 10 >"$work/sub1" &
sub=$!
sleep 0.5
mosquitto_pub -h 127.0.0.1 -p 1883 -t demo/hello -m hi
wait $sub && grep -qx "demo/hello hi" "$work/sub1" || fail "plain MQTT on loopback"
ok "plain MQTT on 127.0.0.1:1883"
sedgectl cert issue sensor-1 --dir /var/lib/sedge >/dev/null || fail "cert issue"
tls="--cafile /var/lib/sedge/ca.pem --cert /var/lib/sedge/sensor-1.pem --key /var/lib/sedge/sensor-1.key"
# shellcheck disable=SC2086
mosquitto_sub -h localhost -p 8883 $tls -t 'demo/#' -v -C 1 -W 10 >"$work/sub2" &
sub=$!
sleep 0.5
# shellcheck disable=SC2086
mosquitto_pub -h localhost -p 8883 $tls -t demo/hello -m 'over TLS' -q 1
wait $sub && grep -qx "demo/hello over TLS" "$work/sub2" || fail "mutual TLS"
ok "mutual TLS on 8883 with a certificate from sedgectl cert issue"
sedgectl things --json >/dev/null || fail "sedgectl things"
mosquitto_sub -h 127.0.0.1 -p 1883 -i reader -c -q 1 -t 'plant/#' -E
mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t plant/line1 -m 'queued while away'
kill -9 $pid
wait $pid 2>/dev/null || true
start_sedged
mosquitto_sub -h 127.0.0.1 -p 1883 -i reader -c -q 1 -t 'plant/#' -v -C 1 -W 10 >"$work/sub3" ||
    fail "no message after kill -9"
grep -qx "plant/line1 queued while away" "$work/sub3" || fail "persistent session after kill -9"
ok "a QoS 1 message for a persistent session survives kill -9"

# -- functions on the packaged SDKs, sandboxed by the sedge user's capabilities
fn=$work/fn
mkdir -p "$fn"
cat >"$fn/where.py" <<'PY'
import sedge
sedge.run(lambda topic, payload: sedge.__file__.encode())
PY
cc "$repo/examples/functions/c/echo.c" -o "$fn/echo" $(pkg-config --cflags --libs sedge) ||
    fail "building a C function with pkg-config sedge"
chmod -R a+rX "$fn"
cat >"$work/group.json" <<EOF
{ "group": "tour", "things": [ { "name": "sensor-1" } ],
  "functions": [
    { "name": "where", "exec": ["/usr/bin/python3", "$fn/where.py"], "code": "$fn" },
    { "name": "echo", "exec": ["$fn/echo"], "code": "$fn" } ] }
EOF
sedgectl deploy "$work/group.json" >/dev/null || fail "deploy"
[ "$(sedgectl invoke where)" = /usr/lib/python3/dist-packages/sedge/__init__.py ] ||
    fail "the Python function does not run on python3-sedge"
[ "$(sedgectl invoke echo '"hi"')" = 'echo:"hi"' ] || fail "the C function on libsedge0"
sedgectl functions --json | /usr/bin/python3 -c '
import json, sys
for f in json.load(sys.stdin)["functions"]:
    iso = f["isolation"]
    assert iso["mode"] == "sandbox", iso
    seen = iso.get("observed") or {}
    assert all(seen.get(k) for k in ("no_capabilities", "empty_bounding_set", "no_new_privs",
                                     "seccomp")), seen
    assert f["limits"]["run_as"] == "65534:65534", f["limits"]
' || fail "functions are not sandboxed as nobody"
ok "a Python function (python3-sedge) and a C function (libsedge-dev, libsedge0) run sandboxed as nobody"

# -- SIGHUP and stop, as systemctl reload / stop do
kill -HUP $pid
sleep 0.5
grep -q "SIGHUP: reloading /etc/sedge/sedge.json" "$work/sedged.log" || fail "reload"
kill -TERM $pid
wait $pid || fail "sedged exited with $? on SIGTERM"
ok "SIGHUP reloads, SIGTERM stops with exit 0"

# -- remove keeps the data, purge deletes it
dpkg -r sedge >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
[ -f /var/lib/sedge/store.db ] || [ -f /var/lib/sedge/ca.pem ] || fail "remove deleted /var/lib/sedge"
[ ! -e /usr/sbin/sedged ] && [ -f /etc/sedge/sedge.json ] || fail "remove: programs left or conffile gone"
ok "dpkg -r sedge keeps /var/lib/sedge and the conffile"
dpkg -P sedge >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -P"; }
[ ! -e /var/lib/sedge ] && [ ! -e /etc/sedge/sedge.json ] || fail "purge left /var/lib/sedge or the conffile"
ok "dpkg -P sedge deletes /var/lib/sedge and the conffile"
echo "all ok"
