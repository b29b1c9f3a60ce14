# octav -- thin wrapper around CMake. Every target installs what it needs
# (scripts/deps.sh), configures, builds and runs.
#   make            build (binary: build/octav)
#   make demo       run octav on the built-in example
#   make test       unit tests (ctest), then the ASan+UBSan build of them
#   make bench      benchmarks and peers, rewrites docs/BENCHMARKS.md data
#   make results    cost curves / clipping study, rewrites docs/RESULTS.md data
#   make install    install to PREFIX (default /usr/local)
BUILD   ?= build
ASAN    ?= build-asan
PREFIX  ?= /usr/local
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build deps demo demo-text test test-fast test-sanitize bench results install fixtures clean

all: build

deps:
	@scripts/deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

demo: build
	@scripts/demo.sh $(BUILD)/octav

demo-text: build
	@scripts/demo_text.sh $(BUILD)/octav

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-sanitize: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DOCTAV_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j $(JOBS) -- --no-print-directory
	@cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

test: test-fast test-sanitize

bench: build
	@scripts/deps.sh bench
	@scripts/bench.sh $(BUILD)

results: build
	@scripts/deps.sh results
	@experiments/run.sh $(BUILD)

install: build
	@cmake --install $(BUILD)

fixtures:
	@scripts/deps.sh fixtures
	for f in tests/fixtures/gen_*.py; do /usr/bin/python3 $$f || exit 1; done

clean:
	rm -rf $(BUILD) $(ASAN)
