#!/usr/bin/env bash
# `make fuzz`: build the libFuzzer targets of tests/fuzz (preset fuzz:
# clang-14, -fsanitize=fuzzer,address,undefined) and run each in turn, on
# one core, for FUZZ_SECONDS seconds (default 15: about three minutes for
# all) or, with FUZZ_RUNS=N, until N executions (FUZZ_SECONDS then bounds
# each run too, if set). Prints executions, execs/s and coverage per target
# and writes them to bench/results/fuzz.json. Figures, not a gate: the run
# fails (exit 1) only when a target finds something, and the input is kept
# under build/fuzz/artifacts/<target>/ (fix the decoder, then add the input
# to tests/fuzz/corpus/<target>/ so `make test` replays it for good).
#
#   FUZZ_TARGETS="msg csv"   only these targets (default: all)
#   FUZZ_OUT=path            the JSON (default bench/results/fuzz.json)
#
# The fuzzer's own corpus grows under build/fuzz/corpus/<target>/ (kept
# between runs); the committed seeds in tests/fuzz/corpus/ are read only.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL="msg tensor modelfile ckpt csv keys rec_job rec_attempts rec_result rec_dead rec_key rec_cursor"
TARGETS=${FUZZ_TARGETS:-$ALL}
RUNS=${FUZZ_RUNS:-0}
if [ "$RUNS" -gt 0 ]; then
  SECONDS_EACH=${FUZZ_SECONDS:-0}
else
  SECONDS_EACH=${FUZZ_SECONDS:-15}
fi
OUT=${FUZZ_OUT:-bench/results/fuzz.json}

# What the targets are built from (the tree may change while they run).
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT-dirty"

scripts/deps.sh fuzz
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${JOBS:-2}"

# One BLAS thread (fuzz_modelfile, fuzz_ckpt predict and train), halt on the
# first UB report, and libFuzzer's own leak check after every input.
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# fuzz_keys writes each input to a key file and loads it: on a disk-backed
# /tmp that ran at ~2k inputs/s. A tmpfs (/dev/shm) where there is one,
# unless TMPDIR says otherwise.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi

# The number after the last "key" in a libFuzzer log ("cov:", "ft:").
last() { grep -o "$2 [0-9]*" "$1" | tail -1 | awk '{print $2}'; }

entries=()
failed=0
printf '%-13s %12s %9s %7s %7s %8s %7s\n' target execs execs/s cov ft corpus crashes
for t in $TARGETS; do
  bin=build/fuzz/bin/fuzz_$t
  work=build/fuzz/corpus/$t
  art=build/fuzz/artifacts/$t
  log=build/fuzz/fuzz_$t.log
  mkdir -p "$work" "$art"
  args=(-print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$art/" -close_fd_mask=1)
  [ "$RUNS" -gt 0 ] && args+=(-runs="$RUNS")
  [ "$SECONDS_EACH" -gt 0 ] && args+=(-max_total_time="$SECONDS_EACH")
  dict=tests/fuzz/$t.dict
  case $t in msg | tensor) dict=tests/fuzz/proto.dict ;; esac
  [ -f "$dict" ] && args+=(-dict="$dict")
  start=$(date +%s)
  rc=0
  "$bin" "${args[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  secs=$(( $(date +%s) - start ))
  execs=$(grep 'stat::number_of_executed_units:' "$log" | awk '{print $2}')
  rate=$(grep 'stat::average_exec_per_sec:' "$log" | awk '{print $2}')
  cov=$(last "$log" "cov:"); ft=$(last "$log" "ft:")
  corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  crashes=$(find "$art" -type f | wc -l)
  reports=$(grep -c -E '^(==[0-9]+==ERROR|SUMMARY: UndefinedBehaviorSanitizer|.*runtime error:)' "$log" || true)
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "fuzz_$t: exit $rc, $crashes input(s) in $art/ (log: $log)" >&2
  fi
  printf '%-13s %12s %9s %7s %7s %8s %7s\n' "$t" "${execs:-0}" "${rate:-0}" \
    "${cov:-0}" "${ft:-0}" "${corp:-0}" "$crashes"
  entries+=("$(printf '    "%s": {"executions": %s, "execs_per_s": %s, "coverage_edges": %s, "features": %s, "corpus": %s, "crashes": %s, "sanitizer_reports": %s, "seconds": %s, "exit": %s}' \
    "$t" "${execs:-0}" "${rate:-0}" "${cov:-0}" "${ft:-0}" "${corp:-0}" \
    "$crashes" "$reports" "$secs" "$rc")")
done

mkdir -p "$(dirname "$OUT")"
{
  echo "{"
  printf '  "what": "make fuzz: libFuzzer (clang-14, -fsanitize=fuzzer,address,undefined), one core, targets one at a time",\n'
  printf '  "date": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "commit": "%s",\n' "$COMMIT"
  printf '  "host": "%s, %s cores",\n' "$(uname -m)" "$(nproc)"
  printf '  "fuzz_seconds": %s,\n  "fuzz_runs": %s,\n' "$SECONDS_EACH" "$RUNS"
  echo '  "targets": {'
  for i in "${!entries[@]}"; do
    sep=,; [ "$i" -eq $(( ${#entries[@]} - 1 )) ] && sep=
    echo "${entries[$i]}$sep"
  done
  echo "  }"
  echo "}"
} >"$OUT"
echo "fuzz: wrote $OUT"
exit $failed
