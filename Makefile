# Drover: thin wrapper over CMake presets so the README's two commands work on a
# fresh Debian 12 machine. `make demo` runs the main job; `make test` runs the
# whole suite (what .ci/run calls).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps dev release asan demo test unit soak bench fuzz format clean

all: dev

deps:
	@scripts/deps.sh

dev release asan: deps
	cmake --preset $@
	cmake --build --preset $@ -j $(JOBS)

# The main job: a local cluster, models pushed, inference on the bundled real
# data sets through the queue.
demo: release
	scripts/demo.sh build/release/bin

# Whole suite (unit + integration) under ASan + UBSan, leaks on. Its deps
# add docker-compose for the compose_config test (demo does without).
test: asan
	@scripts/deps.sh test
	ctest --preset asan -j $(JOBS)

unit: asan
	ctest --preset asan -j $(JOBS) -L unit

# The suite SOAK_RUNS times in a row (default 20) with a 2-core CPU load
# beside it: what a busy CI machine does to timing (scripts/soak.sh).
SOAK_RUNS ?= 20
soak: asan
	scripts/soak.sh $(SOAK_RUNS)

# Figures, never assertions: writes bench/results/*.json. The group bench
# compares a lone broker with an older build's when BENCH_BASELINE_BIN names
# that build's bin folder (README, "Broker group figures").
BENCH_BASELINE_BIN ?=
bench: release
	build/release/bin/dv-bench-ml --out bench/results/ml.json
	build/release/bin/dv-bench-queue --bin-dir build/release/bin --out bench/results/queue.json
	build/release/bin/dv-bench-serve --bin-dir build/release/bin --out bench/results/serve.json
	build/release/bin/dv-bench-sched --out bench/results/sched.json
	scripts/deps.sh bench && for m in "" --early-stopping; do DROVER_BIN=build/release/bin/drover /usr/bin/python3 bench/parity/parity.py $$m || exit 1; done
	/usr/bin/python3 bench/python/bench_python.py
	/usr/bin/python3 bench/fleet.py --bin-dir build/release/bin --out bench/results/fleet.json
	build/release/bin/dv-bench-group --bin-dir build/release/bin --out bench/results/group.json $(if $(BENCH_BASELINE_BIN),--baseline-bin-dir $(BENCH_BASELINE_BIN))

# libFuzzer on every decoder a peer or a file reaches (tests/fuzz), one
# target at a time on one core: FUZZ_SECONDS each (default 15), or
# FUZZ_RUNS=N executions each; writes bench/results/fuzz.json. Installs
# clang-14 and its runtime first (scripts/deps.sh fuzz); nothing else needs
# them.
fuzz:
	scripts/fuzz.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
