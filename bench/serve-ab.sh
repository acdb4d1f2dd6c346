#!/bin/bash
# serve-ab.sh — two builds' serving figures taken at the same time.
#
#   bench/serve-ab.sh BIN_A BIN_B [PAIRS] [dv-bench-serve options...]
#
# BIN_A and BIN_B are bin folders of two builds (say a worktree of the base
# commit's build/release/bin and this one's). Each pair runs both builds'
# dv-bench-serve at once, each with its own broker, workers and producers
# (ipc:// in their own temporary folders), and prints the first two
# submit_many cells of each: requests/s, p99, and CPU per request of the
# broker, the workers and the producers. At the end, the means over the
# pairs and how many pairs B won.
#
# Why at once: on a shared or paravirtualised host the speed moves by a
# fifth within minutes, so builds run one after the other flip sign from
# pair to pair; run together, a slow spell hits both. Each gets about half
# the machine, so the figures are lower than a lone run's: compare A with
# B, never with another run. Default options: --only-many --in-flight 1024
# --seconds 3 (the 1-row cells at 1,024 in flight); PAIRS defaults to 5.
# AB_MSG=one compares the first two one-request-per-message cells instead
# (with --only-rows 256: the 256-row MLP cells, 1 and 8 producers).
# Stops by itself: each dv-bench-serve ends after its cells.
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
A=$1
B=$2
shift 2
PAIRS=5
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
    PAIRS=$1
    shift
fi
OPTS=("$@")
[ ${#OPTS[@]} -eq 0 ] && OPTS=(--only-many --in-flight 1024 --seconds 3)
for d in "$A" "$B"; do
    if [ ! -x "$d/dv-bench-serve" ] || [ ! -x "$d/drover-broker" ]; then
        echo "serve-ab.sh: $d has no dv-bench-serve and drover-broker" >&2
        exit 2
    fi
done

tmp=$(mktemp -d /tmp/dv-serve-ab-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The first two submit_many cells of a dv-bench-serve output, one line each:
# rows P in_flight req/s p99 cpu_broker cpu_workers cpu_producers.
cells() {
    awk -v msg="${AB_MSG:-many}" \
        '$4 == msg { print $1, $2, $3, $6, $8, $13, $14, $15; n++ }
         n == 2 { exit }' "$1"
}

for i in $(seq "$PAIRS"); do
    "$A/dv-bench-serve" --bin-dir "$A" --out /dev/null "${OPTS[@]}" \
        > "$tmp/a.out" 2>&1 &
    pa=$!
    "$B/dv-bench-serve" --bin-dir "$B" --out /dev/null "${OPTS[@]}" \
        > "$tmp/b.out" 2>&1 &
    pb=$!
    wait "$pa" || { echo "serve-ab.sh: A failed:"; tail -5 "$tmp/a.out"; exit 1; }
    wait "$pb" || { echo "serve-ab.sh: B failed:"; tail -5 "$tmp/b.out"; exit 1; }
    cells "$tmp/a.out" | sed "s/^/$i A /" >> "$tmp/all"
    cells "$tmp/b.out" | sed "s/^/$i B /" >> "$tmp/all"
done

awk '
{ key = $3 " " $4 " " $5; v[$2, key, "rate"] += $6; v[$2, key, "p99"] += $7;
  v[$2, key, "b"] += $8; v[$2, key, "w"] += $9; v[$2, key, "p"] += $10;
  n[$2, key]++; keys[key] = 1; rate[$1, $2, key] = $6 }
END {
  printf "%-14s %-5s %10s %9s %7s %7s %7s\n", "rows P infl", "build",
         "req/s", "p99 us", "cpu b", "cpu w", "cpu p";
  for (k in keys) {
    for (s = 0; s < 2; s++) {
      b = s ? "B" : "A"; c = n[b, k];
      printf "%-14s %-5s %10.0f %9.0f %7.2f %7.2f %7.2f\n", k, b,
             v[b, k, "rate"] / c, v[b, k, "p99"] / c, v[b, k, "b"] / c,
             v[b, k, "w"] / c, v[b, k, "p"] / c;
    }
    won = 0;
    for (i = 1; i <= n["A", k]; i++) won += rate[i, "B", k] > rate[i, "A", k];
    printf "%-14s B had the higher rate in %d of %d pairs\n", k, won, n["A", k];
  }
}' "$tmp/all"
