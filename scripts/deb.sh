#!/bin/sh
# make deb [ARCH=amd64|arm64|armhf]: the Debian packages (debian/), built
# with dpkg-buildpackage from a copy of the tree in build-deb/ARCH/, so that
# nothing is written beside the repository; the .debs land in
# build-deb/ARCH/, and lintian checks them (its report: lintian.txt).
#   usage: scripts/deb.sh [ARCH]
set -eu
cd "$(dirname "$0")/.."
host=$(dpkg --print-architecture)
arch=${1:-$host}
out=build-deb/$arch
version=$(dpkg-parsechangelog -S Version)
src=$out/sedge-$version
rm -rf "$out"
mkdir -p "$src"
# The tree as git sees it, uncommitted changes included, without builds.
git ls-files -z --cached --others --exclude-standard |
    grep -zv '^build' | xargs -0 cp --parents -t "$src"
cd "$src"
if [ "$arch" = "$host" ]; then
    dpkg-buildpackage -us -uc -b -j"$(nproc)"
else
    # Cross: the build tools of the build machine, the libraries of ARCH.
    CONFIG_SITE=/etc/dpkg-cross/cross-config.$arch \
        dpkg-buildpackage -us -uc -b -a"$arch" -Pcross,nocheck -j"$(nproc)"
fi
cd ..
ls -1 ./*.deb
lintian --profile debian --info --display-info ./*.changes > lintian.txt 2>&1 || true
echo "lintian: $(grep -c '^[EW]:' lintian.txt || true) errors and warnings (build-deb/$arch/lintian.txt)"
