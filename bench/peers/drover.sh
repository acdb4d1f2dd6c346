# Drover as a system of the peer harness in ../shared/peers, so Drover's
# figures come from the same run, machine and workloads as the peers':
#   ../shared/peers/run-all.sh zmq-floor beanstalkd "$PWD/bench/peers/drover.sh"
# Needs `make release` first (binaries from build/release/bin, or DV_BIN).
# Sourced by run-all.sh; contract in ../shared/peers/systems/TEMPLATE.sh.
DV_BIN=${DV_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/release/bin}
DV_CLIENT_PORT=27011
DV_WORKER_PORT=27012
# Credits per worker: enough to keep each worker's pipe full (bench/queue.c).
DV_CONCURRENCY=${DV_CONCURRENCY:-64}

sys_version() { "$DV_BIN/drover" version; }
# durable: --data (jobs and results in LMDB, group commits, fsync on every
# commit; a submit is acknowledged only once stored).
sys_modes() { echo mem durable; }
sys_start() {
  port_free $DV_CLIENT_PORT && port_free $DV_WORKER_PORT || return 1
  local args=()
  rm -rf "$PEERS_TMP/drover-data"
  [ "$1" = durable ] && args=(--data "$PEERS_TMP/drover-data")
  start_bg SERVER_PIDS "$DV_BIN/drover-broker" \
    --client tcp://127.0.0.1:$DV_CLIENT_PORT --worker tcp://127.0.0.1:$DV_WORKER_PORT "${args[@]}"
  wait_port $DV_CLIENT_PORT
}
sys_stop() { stop_pids $SERVER_PIDS; }
sys_workers() {  # N WL: start N workers, return once each printed READY
  local i n=0
  rm -f "$PEERS_TMP"/drover-w*.out   # READY lines are counted below
  for i in $(seq "$1"); do
    start_bg WORKER_PIDS sh -c "exec '$DV_BIN/drover-worker' --broker tcp://127.0.0.1:$DV_WORKER_PORT \
      --concurrency $DV_CONCURRENCY --name w$i > '$PEERS_TMP/drover-w$i.out' 2>&1"
  done
  for i in $(seq 200); do
    n=$(cat "$PEERS_TMP"/drover-w*.out 2>/dev/null | grep -c '^READY')
    [ "$n" -ge "$1" ] && return 0
    sleep 0.05
  done
  echo "drover workers not ready ($n of $1)" >&2; return 1
}
sys_w1() { timeout 600 "$DV_BIN/dv-bench-queue" --producer w1 "$1" --endpoint tcp://127.0.0.1:$DV_CLIENT_PORT; }
sys_w2() { timeout 600 "$DV_BIN/dv-bench-queue" --producer w2 "$1" --endpoint tcp://127.0.0.1:$DV_CLIENT_PORT; }
