# Sedge: the two commands of README.md, and the rest.
#   make        build (build/sedged, build/sedgectl)
#   make run    install what is missing, build, start sedged on the embedded default
#   make test   install, build, run every test (unit, integration, sanitizers, fuzz)
#   make bench  the side-by-side benchmarks against mosquitto
#   make soak   kill -9 cycles under QoS 1/2 load (SOAK_CYCLES, default 50)
#   make install [PREFIX=/usr/local] [DESTDIR=]   install everything (docs/reference.md)

BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30
PYTEST = /usr/bin/python3 -m pytest

.PHONY: all build deps deps-test deps-cross deps-systemd run test test-package deb test-cross test-systemd unit integration asan fuzz bench soak coverage format clean install

all: build

# What building and running need; the tests' and the packages' on top
# (deps-test), the cross builds' too (deps-cross).
deps:
	@sh scripts/deps.sh run

deps-test:
	@sh scripts/deps.sh test

deps-cross:
	@sh scripts/deps.sh cross

deps-systemd:
	@sh scripts/deps.sh systemd

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The Debian packages (debian/, scripts/deb.sh): build-deb/ARCH/*.deb.
ARCH ?= $(shell dpkg --print-architecture)
deb:
	sh scripts/deb.sh $(ARCH)

# The arm64 and armhf packages, cross-built, and their smoke test under
# qemu-user-static (tests/cross; not in make test: it needs deps-cross).
test-cross: deps-cross
	$(MAKE) deb ARCH=arm64
	$(MAKE) deb ARCH=armhf
	$(PYTEST) -q -s -p no:cacheprovider tests/cross

# The amd64 packages under a real systemd as PID 1: a Debian 12 root
# (debootstrap, cached in build-deb/systemd-root), apt install of the .debs,
# booted with systemd-nspawn, the tour run by a unit after sedge.service
# (tests/package/test_systemd_boot.py; not in make test: it downloads the root).
test-systemd: deps-systemd deb
	$(PYTEST) -q -s -p no:cacheprovider tests/package/test_systemd_boot.py

PREFIX ?= /usr/local
install: build
	@cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

run: deps build
	./$(BUILD)/sedged

unit: build
	sh scripts/check_layers.sh
	sh scripts/tidy.sh $(BUILD)
	cd $(BUILD) && ctest --output-on-failure

integration: build
	SEDGE_BUILD=$(CURDIR)/$(BUILD) $(PYTEST) -q -p no:cacheprovider tests/sdk tests/integration

# The install, the Debian packages (installed into a namespace: the README
# tour, docs/tutorial.md), docs/reference.md against the parsers, the
# dependency sets (tests/package).
test-package: build deb
	SEDGE_BUILD=$(CURDIR)/$(BUILD) $(PYTEST) -q -p no:cacheprovider \
	    --ignore=tests/package/test_systemd_boot.py tests/package

asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSEDGE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure
	SEDGE_BUILD=$(CURDIR)/$(ASAN_BUILD) SEDGE_SANITIZED=1 $(PYTEST) -q -p no:cacheprovider tests/integration

fuzz:
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEDGE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test: deps-test build unit integration test-package asan fuzz

bench: deps-test build
	sh bench/run.sh $(BUILD)

# Branch coverage of the modules by the unit and integration tests, per
# module (gcovr); the programs' own mains and the sandbox are left out.
COV_BUILD ?= build-cov
coverage: deps-test
	@dpkg -s gcovr >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcovr >/dev/null
	@cmake -S . -B $(COV_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSEDGE_COVERAGE=ON >/dev/null
	@cmake --build $(COV_BUILD) -j $(JOBS)
	find $(COV_BUILD) -name '*.gcda' -delete
	cd $(COV_BUILD) && ctest --output-on-failure
	-SEDGE_BUILD=$(CURDIR)/$(COV_BUILD) $(PYTEST) -q -p no:cacheprovider tests/integration
	/usr/bin/python3 scripts/coverage_summary.py $(COV_BUILD)

SOAK_CYCLES ?= 50
soak: deps-test build
	/usr/bin/python3 tests/soak/soak.py --build $(BUILD) --cycles $(SOAK_CYCLES)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-deb
