#!/bin/sh
# Install the Debian packages Sedge needs, only those that are missing
# (idempotent; quiet when nothing is to do).
#   usage: scripts/deps.sh [--list] [run|test|cross|systemd]   (--list: print, install nothing)
#   run    what building and running need (make run): compilers, the
#          libraries sedged, sedgectl, the sandbox and the connectors link
#          (libcurl for the http-sink connector), python3 for Python
#          functions, the mosquitto clients of the README's tour
#   test   run's, and what the tests, the fuzzers, the linters, the
#          benchmarks and the Debian packages need (make test)
#   cross  test's, and the arm64/armhf cross toolchains, their multiarch
#          -dev libraries and qemu-user-static (make deb ARCH=..., make test-cross)
#   systemd  test's, and debootstrap and systemd-nspawn: a Debian 12 root
#          booted with systemd as PID 1 (make test-systemd)
set -eu
list=""
[ "${1:-}" = --list ] && { list=1; shift; }
set_name=${1:-run}

run_packages="build-essential cmake pkg-config
  libuv1-dev libssl-dev libsqlite3-dev libjansson-dev libseccomp-dev libcurl4-openssl-dev
  libmodbus-dev libserialport-dev libgpiod-dev
  libwebsockets-dev libwebsockets-evlib-uv libarchive-dev
  libopencv-dnn-dev libopencv-videoio-dev libopencv-imgcodecs-dev libopencv-imgproc-dev
  libopencv-core-dev
  python3 mosquitto-clients"

test_packages="clang llvm clang-format clang-tidy
  libcmocka-dev libmosquitto-dev mosquitto
  python3-pytest python3-paho-mqtt python3-cryptography openssl sqlite3
  python3-pymodbus python3-serial-asyncio python3-serial socat
  debhelper dpkg-dev fakeroot lintian pandoc systemd sudo
  prometheus python3-prometheus-client python3-awscrt curl chromium
  python3-numpy python3-opencv python3-onnx dataset-fashion-mnist"

# The -dev libraries the cross builds link, for each foreign architecture.
# Not OpenCV's: its arm -dev packages cannot be installed beside the amd64
# ones (apt would remove those), so the cross builds leave the
# image-classification connector out (scripts/deb.sh).
# Nor libwebsockets-dev, whose lws_config.h differs between architectures:
# its runtime library installs beside, and scripts/deb.sh puts the -dev
# files of ARCH in a sysroot of their own.
cross_libs="libuv1-dev libssl-dev libsqlite3-dev libjansson-dev libseccomp-dev
  libcurl4-openssl-dev libmodbus-dev libserialport-dev libgpiod-dev
  libwebsockets17 libwebsockets-evlib-uv libcap-dev libarchive-dev"
cross_packages="crossbuild-essential-arm64 crossbuild-essential-armhf qemu-user-static
  pkgconf:arm64 pkgconf:armhf"
for arch in arm64 armhf; do
    for lib in $cross_libs; do
        cross_packages="$cross_packages $lib:$arch"
    done
done

# A Debian 12 root (debootstrap) booted by systemd-nspawn (systemd-container).
systemd_packages="debootstrap systemd-container"

case "$set_name" in
run) packages=$run_packages ;;
test) packages="$run_packages $test_packages" ;;
cross) packages="$run_packages $test_packages $cross_packages" ;;
systemd) packages="$run_packages $test_packages $systemd_packages" ;;
*) echo "usage: scripts/deps.sh [run|test|cross|systemd]" >&2; exit 2 ;;
esac

if [ -n "$list" ]; then
    echo $packages
    exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

# The cross set needs the foreign architectures known to dpkg first.
added_arch=""
if [ "$set_name" = cross ]; then
    for arch in arm64 armhf; do
        dpkg --print-foreign-architectures | grep -qx "$arch" ||
            { $sudo dpkg --add-architecture "$arch"; added_arch=1; }
    done
fi

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
# The browser tests' one npm package (playwright-core, pinned in
# tests/browser/package-lock.json), when Node.js is there: Node runs only in
# those tests, never in sedged.
browser="$(dirname "$0")/../tests/browser"
if [ ! -d "$browser/node_modules/playwright-core" ] && command -v npm >/dev/null 2>&1; then
    (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
        echo "deps.sh: npm ci in tests/browser failed; the browser test will try again" >&2
fi

[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
[ -n "$added_arch" ] && $sudo apt-get update -q
# The package lists may be stale on a fresh machine; refresh once on failure.
$sudo apt-get install -y -q --no-install-recommends $missing ||
    { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends $missing; }

# Debian starts prometheus too when it installs it (on :9090); Sedge uses
# only its promtool, in the tests.
case "$missing" in
*" prometheus"*)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now prometheus.service prometheus-node-exporter.service \
            >/dev/null 2>&1 || true
    fi
    ;;
esac

# Debian starts a mosquitto service on 127.0.0.1:1883 when it installs the
# package; Sedge uses mosquitto only as a test and benchmark reference and
# needs that port, so the service is stopped and disabled.
case "$missing" in
*" mosquitto "* | *" mosquitto")
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
    fi
    ;;
esac
