#!/usr/bin/env bash
# The main job, for now: train, evaluate and predict with the model library on
# the bundled real data sets (data/), through the `drover local` CLI, and print
# each test-set figure beside the scikit-learn/PyTorch reference (data/README.md).
# When the broker lands, this runs the same through a local cluster.
set -euo pipefail
DROVER=${1:-build/release/bin/drover}
cd "$(dirname "$0")/.."
out=build/demo
mkdir -p "$out"

metric() { # metric KEY JSON -> value
  sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" <<<"$2"
}

rows=()
run() { # run NAME ALGO METRIC REFERENCE [train options...]
  local name=$1 algo=$2 key=$3 ref=$4; shift 4
  local model="$out/$name-$algo.drvm"
  echo "== $name: $algo ($*)"
  "$DROVER" local train --algo "$algo" --data "data/${name}_train.csv" --out "$model" "$@"
  local json
  json=$("$DROVER" local eval --model "$model" --data "data/${name}_test.csv" --json)
  local value
  value=$(metric "$key" "$json")
  rows+=("$(printf '%-9s %-8s %-9s %8.4f %10s' "$name" "$algo" "$key" "$value" "$ref")")
}

run diabetes ols      r2       0.332
run diabetes ridge    r2       0.331
run diabetes gd       r2       0.332
run iris     softmax  accuracy 0.967
run digits   mlp      accuracy 0.975 --hidden 128

echo
echo "== predictions: first test rows of iris (class, label, probabilities)"
"$DROVER" local predict --model "$out/iris-softmax.drvm" --data data/iris_test.csv | head -n 6
echo
echo "== the digits model"
"$DROVER" local inspect "$out/digits-mlp.drvm"
echo
echo "Test-set figures (reference: scikit-learn 1.2.1 / PyTorch 1.13.1, data/README.md)"
printf '%-9s %-8s %-9s %8s %10s\n' "data" "algo" "metric" "drover" "reference"
printf '%s\n' "${rows[@]}"
