# lowbit developer entry points. CI runs `make test` (see .ci/run).
#
#   make setup   install the Debian packages the build needs (scripts/setup.sh)
#   make build   configure (once) and build the native tree in $(BUILD_DIR)
#   make test    native tests, then the aarch64 and armv7 suites under qemu-user
#   make bench   kernel and network benchmarks vs oneDNN: bench-results/kernels.json + kernels.png
#   make demo    end-to-end demo (not yet)
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
CROSS_TEST_TARGETS   := $(addprefix test-,$(CROSS_ARCHS))

NATIVE_ARCH := $(shell uname -m)

.PHONY: all setup build test test-native $(CROSS_TEST_TARGETS) bench demo clean
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

test: test-native $(CROSS_TEST_TARGETS)

test-native: build
	@echo "== runtime tests: native $(NATIVE_ARCH) =="
	$(CTEST) --test-dir $(BUILD_DIR) $(CTEST_ARGS)

# test-aarch64, test-armv7: cross-build into $(BUILD_DIR)/<arch>, run ctest there
# (ctest prepends the toolchain's CMAKE_CROSSCOMPILING_EMULATOR, i.e. qemu).
$(CROSS_TEST_TARGETS): test-%: setup
	@if [ ! -f $(BUILD_DIR)/$*/build.ninja ]; then \
	  echo "== configure: $(BUILD_DIR)/$* (cross $*) =="; \
	  $(CMAKE) -S . -B $(BUILD_DIR)/$* -G Ninja \
	    -DCMAKE_TOOLCHAIN_FILE=$(TOOLCHAIN_$*) -DLOWBIT_BUILD_TOOLS=OFF $(EXTRA_CMAKE_ARGS); \
	fi
	$(CMAKE) --build $(BUILD_DIR)/$* --parallel $(JOBS)
	@echo "== runtime tests: $* under $(QEMU_$*) =="
	$(CTEST) --test-dir $(BUILD_DIR)/$* $(CTEST_ARGS)

# Debian's python3 (it has python3-matplotlib), not whichever python3 is first on PATH.
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
BENCH_OUT ?= bench-results

bench: build
	$(BUILD_DIR)/bin/lowbit-bench --out $(BENCH_OUT)
	$(PYTHON) bench/plot.py $(BENCH_OUT)/kernels.json $(BENCH_OUT)/kernels.png

demo: build
	@echo "the demo arrives with the converter issue (#5)"

clean:
	rm -rf $(BUILD_DIR)
