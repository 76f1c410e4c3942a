# SPDX-License-Identifier: MIT
# The commands users type; CMake does the building.
#   make            build (build/)
#   make test       every test: normal build, ASan+UBSan, TSan (threaded parts),
#                   valgrind, aarch64 under qemu, libFuzzer on the HTTP parser and client
#   make demo       the tour of the guide's practices
#   make bench      weft beside its peers, table with ratios
#   make install    PREFIX=/usr/local by default
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
# Warnings are errors in CI (CI=true), plain warnings elsewhere.
WERROR ?= $(if $(CI),ON,OFF)
CMAKE_COMMON = -DWEFT_WERROR=$(WERROR)
# The tests need cmocka: `make` and `make demo` build them when it is there
# (AUTO), `make test` installs it and requires them (ON).
TESTS ?= AUTO

.PHONY: all build test demo bench install clean deps-test \
        test-normal test-asan test-tsan test-valgrind test-aarch64 test-fuzz

all: build

build:
	@tools/deps build
	cmake -S . -B build $(CMAKE_COMMON) -DWEFT_TESTS=$(TESTS) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build build -j$(JOBS)

deps-test:
	@tools/deps build test

# (a target's variable reaches its prerequisites: build, here)
test test-normal test-valgrind: TESTS = ON

test: deps-test test-normal test-asan test-tsan test-valgrind test-aarch64 test-fuzz
	@echo "make test: all suites passed"

test-normal: deps-test build
	cd build && ctest --output-on-failure -j$(JOBS)

test-asan: deps-test
	cmake -S . -B build-asan $(CMAKE_COMMON) -DWEFT_TESTS=ON -DWEFT_SANITIZE=address,undefined \
	      -DWEFT_BENCH=OFF >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS)

# ThreadSanitizer for the code that talks across threads: posted calls, the
# watchdog, the thread pool (and the primitives and groups they wake).
test-tsan: deps-test
	cmake -S . -B build-tsan $(CMAKE_COMMON) -DWEFT_TESTS=ON -DWEFT_SANITIZE=thread \
	      -DWEFT_BENCH=OFF -DWEFT_EXAMPLES=OFF >/dev/null
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1" ctest --output-on-failure \
	      -R '^(core_(post|debug|task|signal|group|group_next)|sync_.*|exec_thread_pool|net_tcp)$$'

# The process pool's workers are forks: under valgrind each would be
# instrumented too, and its tests crash workers on purpose.  Skipped, said.
test-valgrind: deps-test build
	@for t in build/tests/core_* build/tests/sync_* build/tests/exec_* build/tests/net_* \
	          build/tests/http_parser; do \
	  [ -x "$$t" ] || continue; \
	  case "$$t" in *exec_process_pool) \
	    echo "valgrind: skipping $$t (forked workers that crash on purpose)"; continue;; esac; \
	  echo "valgrind $$t"; \
	  WEFT_SLOW_MS=0 valgrind -q --error-exitcode=1 --leak-check=full \
	    --suppressions=tests/valgrind.supp \
	    --errors-for-leak-kinds=definite "$$t" >/dev/null; rc=$$?; \
	  [ $$rc -eq 77 ] && echo "valgrind: $$t skipped every case"; \
	  [ $$rc -eq 0 ] || [ $$rc -eq 77 ] || exit 1; \
	done

# The aarch64 switch, cross-built and run under qemu-user.  Skipped (said
# loudly) only when the cross packages cannot be installed.  core_fork is
# left out: qemu-user aborts a forked child of a threaded program when the
# child starts threads (its own assertion, cpu == current_cpu).
test-aarch64:
	@if tools/deps cross; then \
	  cmake -S . -B build-aarch64 $(CMAKE_COMMON) -DWEFT_TESTS=ON \
	        -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	        -DWEFT_BENCH=OFF -DWEFT_EXAMPLES=OFF >/dev/null && \
	  cmake --build build-aarch64 -j$(JOBS) && \
	  cd build-aarch64 && ctest --output-on-failure -j$(JOBS) -R '^(core|sync|exec|net)_|^http_parser$$' \
	        -E '^core_(gdb|fork)$$'; \
	else \
	  echo "SKIPPED: aarch64 tests (cannot install the cross toolchain and qemu-user)"; \
	fi

# libFuzzer on the HTTP/1.1 parser for FUZZ_SECONDS, then on the whole
# HTTP client (fuzzed answers over loopback) for FUZZ_CLIENT_SECONDS; fails
# on any crash, leak, sanitizer report or broken invariant.
FUZZ_SECONDS ?= 60
FUZZ_CLIENT_SECONDS ?= 60
test-fuzz:
	@tools/deps fuzz
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_CLIENT_SECONDS)

demo: build
	./build/examples/demo
	@echo
	@echo "4. reuse connections: a session per request vs one shared session"
	./build/examples/conn_pool

bench:
	bench/run

install: build
	cmake --install build --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-tsan build-aarch64 build-bench build-fuzz
