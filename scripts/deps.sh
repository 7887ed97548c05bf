#!/bin/sh
# Install the Debian packages Sedge needs to build, test and benchmark,
# only those that are missing (idempotent; quiet when nothing is to do).
set -eu

packages="build-essential cmake pkg-config clang llvm clang-format
  libuv1-dev libssl-dev libsqlite3-dev libjansson-dev libcurl4-openssl-dev libarchive-dev
  libcmocka-dev libmosquitto-dev libseccomp-dev mosquitto mosquitto-clients
  clang-tidy python3 python3-pytest python3-paho-mqtt python3-cryptography openssl sqlite3
  libmodbus-dev libserialport-dev libgpiod-dev
  python3-pymodbus python3-serial-asyncio python3-serial socat
  libwebsockets-dev libwebsockets-evlib-uv prometheus python3-prometheus-client
  python3-awscrt curl chromium
  libarchive-dev libopencv-dnn-dev libopencv-imgcodecs-dev libopencv-imgproc-dev
  libopencv-core-dev python3-numpy python3-opencv python3-onnx dataset-fashion-mnist"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
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
*" mosquitto"*)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
    fi
    ;;
esac
