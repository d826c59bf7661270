# lowbit developer entry points. CI runs `make test` (see .ci/run).
#
#   make setup   install the Debian packages the build needs (scripts/setup.sh)
#   make build   configure (once) and build the native tree in $(BUILD_DIR)
#   make test    builds every tree, then the native tests and the aarch64 and armv7 suites under qemu-user
#   make targets the aarch64 and armv7 device builds (runtime libraries, lowbit-run) that
#                `lowbit convert --targets` packages
#   make bench   kernel and network benchmarks vs oneDNN: bench-results/kernels.json + kernels.png
#   make demo    the main job end to end on Fashion-MNIST: demo-output/report.md + summary.json
#   make clean   remove every build tree

SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c

BUILD_DIR  ?= build
CMAKE      ?= cmake
CTEST      ?= ctest
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
EXTRA_CMAKE_ARGS ?=
CTEST_ARGS := --output-on-failure --no-tests=error --timeout 1800

# Cross targets: name -> toolchain file and the qemu binary that runs the tests.
CROSS_ARCHS          := aarch64 armv7
TOOLCHAIN_aarch64    := $(CURDIR)/cmake/toolchains/aarch64-linux-gnu.cmake
TOOLCHAIN_armv7      := $(CURDIR)/cmake/toolchains/armv7-linux-gnueabihf.cmake
QEMU_aarch64         := qemu-aarch64
QEMU_armv7           := qemu-arm
CROSS_BUILD_TARGETS  := $(addprefix build-,$(CROSS_ARCHS))
CROSS_TEST_TARGETS   := $(addprefix test-,$(CROSS_ARCHS))

NATIVE_ARCH := $(shell uname -m)

.PHONY: all setup build targets test test-native $(CROSS_BUILD_TARGETS) $(CROSS_TEST_TARGETS) bench demo clean
# Keep the suites in order (and their output readable) even under `make -j`.
.NOTPARALLEL:

all: build

setup:
	bash scripts/setup.sh </dev/null

build: setup
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  echo "== configure: $(BUILD_DIR) (native $(NATIVE_ARCH)) =="; \
	  $(CMAKE) -S . -B $(BUILD_DIR) -G Ninja $(EXTRA_CMAKE_ARGS); \
	fi
	$(CMAKE) --build $(BUILD_DIR) --parallel $(JOBS)

# The device trees are built before any suite runs: native tests package their files
# (lowbit convert --targets) and run them under qemu.
test: build targets test-native $(CROSS_TEST_TARGETS)

test-native: build
	@echo "== tests: native $(NATIVE_ARCH) =="
	$(CTEST) --test-dir $(BUILD_DIR) $(CTEST_ARGS)

targets: $(CROSS_BUILD_TARGETS)

# build-aarch64, build-armv7: cross-build the runtime, its tests and lowbit-run into $(BUILD_DIR)/<arch>.
$(CROSS_BUILD_TARGETS): build-%: setup
	@if [ ! -f $(BUILD_DIR)/$*/build.ninja ]; then \
	  echo "== configure: $(BUILD_DIR)/$* (cross $*) =="; \
	  $(CMAKE) -S . -B $(BUILD_DIR)/$* -G Ninja \
	    -DCMAKE_TOOLCHAIN_FILE=$(TOOLCHAIN_$*) -DLOWBIT_BUILD_TOOLS=ON $(EXTRA_CMAKE_ARGS); \
	fi
	$(CMAKE) --build $(BUILD_DIR)/$* --parallel $(JOBS)

# test-aarch64, test-armv7: ctest in $(BUILD_DIR)/<arch> (ctest prepends the toolchain's
# CMAKE_CROSSCOMPILING_EMULATOR, i.e. qemu).
$(CROSS_TEST_TARGETS): test-%: build-%
	@echo "== tests: $* under $(QEMU_$*) =="
	$(CTEST) --test-dir $(BUILD_DIR)/$* $(CTEST_ARGS)

# Debian's python3 (it has python3-matplotlib), not whichever python3 is first on PATH.
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
BENCH_OUT ?= bench-results

bench: build
	$(BUILD_DIR)/bin/lowbit-bench --out $(BENCH_OUT)
	$(PYTHON) bench/plot.py $(BENCH_OUT)/kernels.json $(BENCH_OUT)/kernels.png

demo: build
	BUILD_DIR=$(BUILD_DIR) PYTHON=$(PYTHON) bash scripts/demo.sh

clean:
	rm -rf $(BUILD_DIR)
