#!/usr/bin/env bash
# The main job through the queue: start a local cluster (`drover up`: a broker
# and 2 workers), train models on the bundled real data sets (data/) as jobs
# on the workers (registered in the broker's registry as they finish), run
# inference on the test splits as jobs, and print each test-set figure beside
# the scikit-learn/PyTorch reference (data/README.md).
set -euo pipefail
BIN=${1:-build/release/bin}
cd "$(dirname "$0")/.."
DROVER="$BIN/drover"
out=build/demo
rm -rf "$out/data"
mkdir -p "$out"
# ipc socket paths must be short (about 100 bytes): keep them in /tmp.
run_dir=$(mktemp -d /tmp/drover-demo.XXXXXX)
export DROVER_BROKER="ipc://$run_dir/client.sock"
# A fixed creation time: a model trained through the queue is then the very
# file `drover local train` writes (shown below for iris).
export SOURCE_DATE_EPOCH=1700000000

up_pid=
cleanup() {
  if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
    kill -TERM "$up_pid" 2>/dev/null || true
    wait "$up_pid" 2>/dev/null || true
  fi
  rm -rf "$run_dir"
}
trap cleanup EXIT

echo "== drover up: a broker and 2 workers (registry in $out/data)"
mkfifo "$run_dir/ready"
"$DROVER" up --workers 2 --data "$out/data" --endpoint "$DROVER_BROKER" \
  >"$run_dir/ready" 2>"$out/cluster.log" &
up_pid=$!
if ! read -r -t 60 word endpoint <"$run_dir/ready" || [ "$word" != READY ]; then
  echo "demo: the cluster did not start; its log:" >&2
  cat "$out/cluster.log" >&2
  exit 1
fi
echo "cluster ready at $endpoint"
"$DROVER" workers

metric() { # metric KEY JSON -> value
  sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" <<<"$2"
}

rows=()
run() { # run NAME ALGO METRIC REFERENCE [train options...]
  local name=$1 algo=$2 key=$3 ref=$4; shift 4
  echo
  echo "== $name: train $algo as a job on the stored data set (${*:-default options}), infer on the test split as jobs"
  "$DROVER" train --algo "$algo" --dataset "$name-train" --model "$name-$algo" "$@"
  local json
  json=$("$DROVER" infer --model "$name-$algo" --data "data/${name}_test.csv" --eval --json)
  local value
  value=$(metric "$key" "$json")
  rows+=("$(printf '%-9s %-8s %-9s %8.4f %10s' "$name" "$algo" "$key" "$value" "$ref")")
}

echo
echo "== data sets: the training splits, stored in the broker (validated, versioned)"
for name in diabetes iris digits; do
  "$DROVER" datasets push "data/${name}_train.csv" --name "$name-train"
done
"$DROVER" datasets push data/digits_test.csv --name digits-test
"$DROVER" datasets list

run diabetes ols      r2       0.332
run diabetes ridge    r2       0.331
run diabetes gd       r2       0.332
run iris     softmax  accuracy 0.967
run digits   mlp      accuracy 0.975 --hidden 128 --eval-dataset digits-test

echo
echo "== the registry"
"$DROVER" models list
echo
echo "== how digits-mlp came to be (its lineage: data, hyper-parameters, worker, eval set)"
"$DROVER" models show digits-mlp | sed -n '/^lineage/,$p'
echo
echo "== evaluate as a job on a stored data set: digits-mlp on the test split"
"$DROVER" evaluate --model digits-mlp --dataset digits-test
echo
echo "== rollout: alias iris-softmax@1 as prod; inference by iris-softmax@prod"
"$DROVER" models alias iris-softmax@1 prod
"$DROVER" infer --model iris-softmax@prod --data data/iris_test.csv | head -n 6
echo
echo "== the same model trained locally: the identical file, the identical predictions"
"$DROVER" local train --algo softmax --data data/iris_train.csv --out "$out/iris-softmax.drvm" >/dev/null
queue_sum=$("$DROVER" models show iris-softmax@1 --json | sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p')
local_sum=$(sha256sum "$out/iris-softmax.drvm" | cut -d' ' -f1)
echo "sha256 through the queue $queue_sum"
echo "sha256 trained locally   $local_sum"
[ "$queue_sum" = "$local_sum" ] || { echo "demo: the models differ" >&2; exit 1; }
"$DROVER" local predict --model "$out/iris-softmax.drvm" --data data/iris_test.csv | head -n 6
echo
echo "== 20,000 echo jobs through the broker (queue throughput)"
"$DROVER" submit --echo 100 --count 20000
echo
"$DROVER" workers
echo
echo "Test-set figures through the queue (reference: scikit-learn 1.2.1 / PyTorch 1.13.1, data/README.md)"
printf '%-9s %-8s %-9s %8s %10s\n' "data" "algo" "metric" "drover" "reference"
printf '%s\n' "${rows[@]}"
