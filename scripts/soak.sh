#!/usr/bin/env bash
# Soak: the whole suite RUNS times in a row (default 20; ctest stops a test at
# its first failure) under the asan preset, with a CPU load of LOAD busy loops
# (default 2: another 2-core load) running beside it, as a loaded CI machine
# would. Timing windows the suite still has show up here, not in CI.
#
#   scripts/soak.sh [RUNS]          make soak [SOAK_RUNS=N]
#   SOAK_LOAD=0 scripts/soak.sh 5   no load beside it
#   SOAK_ARGS='-R test_semantics'   pass more ctest arguments
#
# The loops are this script's own children, stopped by their PIDs on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
load=${SOAK_LOAD:-2}
pids=()
stop_load() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop_load EXIT
for ((i = 0; i < load; i++)); do
  (while :; do :; done) &
  pids+=("$!")
done
echo "soak: $runs runs, $load busy loops beside (pids ${pids[*]:-none})"
start=$(date +%s)
# shellcheck disable=SC2086
ctest --preset asan -j 2 --repeat "until-fail:$runs" --output-on-failure ${SOAK_ARGS:-}
echo "soak: passed $runs runs in $(($(date +%s) - start)) s"
