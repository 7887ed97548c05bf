#!/bin/sh
# Run docs/tutorial.md's commands (SCRIPT: its sh blocks, in order) as a
# user with sudo, in a private mount and network namespace whose /usr,
# /etc, /var and /opt are overlays with their changes in a tmpfs (the
# machine itself is untouched), with the packages of DEB_DIR in the user's
# home. systemd is not PID 1 here: `systemctl` and `journalctl` are stood
# in for by scripts that start sedged as sedge.service says (its user,
# exactly its capabilities, its ExecStart) and show its log.
#   usage: unshare --mount --net tests/package/tutorial_run.sh DEB_DIR SCRIPT WORK_DIR
set -eu
debs=$(cd "$1" && pwd)
script=$2
work=$3

mount -t tmpfs sedge-tutorial "$work"
chmod 755 "$work"
for d in usr etc var opt; do
    mkdir -p "$work/$d.up" "$work/$d.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/$d.up,workdir=$work/$d.work" "/$d"
done
ip link set lo up

# The user, with sudo.
home=$work/home/cook
useradd --create-home --home-dir "$home" --shell /bin/sh cook
echo "cook ALL=(ALL:ALL) NOPASSWD: ALL" >/etc/sudoers.d/cook
# apt asks before it installs; nobody is at this terminal to answer.
echo 'APT::Get::Assume-Yes "true";' >/etc/apt/apt.conf.d/90sedge-tutorial
chmod 440 /etc/sudoers.d/cook
cp "$debs"/sedge_*_amd64.deb "$debs"/python3-sedge_*_all.deb "$home/"
cp "$script" "$home/tutorial.sh"
chown -R cook:cook "$home"

# systemctl and journalctl for sedge.service, without systemd.
state=$work/service
mkdir -p "$state"
cat >/usr/local/sbin/systemctl <<EOF
#!/bin/sh
# Stands in for systemctl where systemd is not PID 1 (tests/package/tutorial_run.sh).
unit=/lib/systemd/system/sedge.service
log=$state/sedge.log
pidfile=$state/sedge.pid
value() { sed -n "s/^\$1=//p" "\$unit"; }
running() { [ -f "\$pidfile" ] && kill -0 "\$(cat "\$pidfile")" 2>/dev/null; }
start() {
    running && return 0
    caps=\$(value AmbientCapabilities | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
    user=\$(value User)
    mark=\$(cat "\$log" 2>/dev/null | wc -l)
    setpriv --reuid="\$user" --regid="\$user" --init-groups --no-new-privs \\
        --inh-caps="\$caps" --ambient-caps="\$caps" --bounding-set=-all,"\$caps" \\
        \$(value ExecStart) >>"\$log" 2>&1 </dev/null &
    echo \$! >"\$pidfile"
    i=0
    until tail -n +\$((mark + 1)) "\$log" | grep -q " ready "; do
        i=\$((i + 1))
        if [ \$i -gt 300 ] || ! running; then
            echo "sedge.service failed to start:" >&2
            tail -n +\$((mark + 1)) "\$log" >&2
            exit 1
        fi
        sleep 0.1
    done
}
stop() {
    running || return 0
    pid=\$(cat "\$pidfile")
    kill -TERM "\$pid"
    while kill -0 "\$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "\$pidfile"
}
verb=\$1; shift
[ "\${1:-}" = --now ] && { now=1; shift; } || now=""
case "\$verb:\$1" in
enable:sedge) [ -n "\$now" ] && start ;;
disable:sedge) [ -n "\$now" ] && stop ;;
start:sedge) start ;;
stop:sedge) stop ;;
restart:sedge) stop; start ;;
reload:sedge) kill -HUP "\$(cat "\$pidfile")" ;;
*:mosquitto) ;;  # no mosquitto service runs here
*) echo "systemctl stand-in: \$verb \$1 not supported" >&2; exit 1 ;;
esac
EOF
cat >/usr/local/bin/journalctl <<EOF
#!/bin/sh
# Stands in for journalctl -u sedge [-p warning] (tests/package/tutorial_run.sh).
case "\$*" in
*"-p warning"* | *"-p warn"*) grep -E " [EW] " "$state/sedge.log" ;;
*) cat "$state/sedge.log" ;;
esac
EOF
chmod 755 /usr/local/sbin/systemctl /usr/local/bin/journalctl
chmod 755 "$state"

cd "$home"
status=0
setpriv --reuid=cook --regid=cook --init-groups \
    env -i HOME="$home" USER=cook LOGNAME=cook SHELL=/bin/sh \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
    sh -eu "$home/tutorial.sh" || status=$?
# Leave nothing running in the namespace's files.
/usr/local/sbin/systemctl stop sedge || true
[ -f "$home/cloud/mosquitto.pid" ] && kill "$(cat "$home/cloud/mosquitto.pid")" 2>/dev/null || true
if [ "$status" != 0 ]; then
    echo "--- the tutorial failed ($status); sedged's log:"
    tail -30 "$state/sedge.log" 2>/dev/null || true
    [ -f "$home/cloud/mosquitto.log" ] && { echo "--- mosquitto's:"; tail -10 "$home/cloud/mosquitto.log"; }
    exit 1
fi
echo "tutorial ok"
