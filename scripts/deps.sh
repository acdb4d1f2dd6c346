#!/usr/bin/env bash
# Install the Debian 12 packages Drover builds against, and only those missing.
# Works as root or through sudo; says what it installs and why. Idempotent: a
# machine that has everything gets no apt-get call at all.
#
#   scripts/deps.sh         what `make dev/asan/release/test/demo` need
#   scripts/deps.sh test    and what `make test` needs besides: docker-compose
#                           (the compose_config test) and Debian's Python
#                           packages the Python client and its tests use
#   scripts/deps.sh bench   and what `make bench` needs besides: Debian's
#                           scikit-learn and PyTorch (bench/parity compares
#                           Drover's models with theirs)
#   scripts/deps.sh fuzz    and what `make fuzz` needs besides (clang and its
#                           libFuzzer runtime; the rest of the build never
#                           needs clang)
set -euo pipefail

# package            why Drover needs it
PKGS=(
  "pkg-config        finds the libraries below for CMake"
  "libzmq3-dev       ZeroMQ sockets between producers, broker and workers"
  "libczmq-dev       czmq: CURVE certificates, ZAP authentication"
  "libsodium-dev     libsodium (libzmq's own crypto): Ed25519 model file signatures"
  "libmsgpack-dev    msgpack-c: wire format and .drvm model files"
  "libopenblas-dev   OpenBLAS: sgemm and the rest of BLAS for every model"
  "liblapacke-dev    LAPACKE: least squares (QR) and Cholesky for OLS/ridge"
  "libuv1-dev        libuv: the event loop in the broker and workers"
  "liblmdb-dev       LMDB: the broker's embedded durable store"
  "libmicrohttpd-dev libmicrohttpd: the broker's HTTP endpoint (metrics, status page)"
  "libraft-dev       canonical/raft: replicated broker groups (drover up --replicas)"
  "liblz4-dev        LZ4, which libraft's static library links"
)
if [ "${1:-}" = test ]; then
  PKGS+=(
    "docker-compose    compose_config validates compose.yaml (needs no daemon)"
    "python3-zmq       the Python client's sockets (clients/python)"
    "python3-msgpack   the Python client's wire format"
    "python3-numpy     the Python client's tensors"
    "python3-pytest    runs clients/python/tests"
    "python3-sklearn   the exporter tests train scikit-learn models to serve"
    "python3-prometheus-client  parses the broker's /metrics in tests/ops"
    "chromium          renders the broker's status page headless in tests/ops"
  )
fi
if [ "${1:-}" = bench ]; then
  PKGS+=(
    "python3-numpy     bench/parity writes and reads its data sets"
    "python3-zmq       bench/python: the Python client's sockets"
    "python3-msgpack   bench/python: the Python client's wire format"
    "python3-sklearn   bench/parity: make_classification and MLPClassifier/Regressor"
    "python3-torch     bench/parity: the same network in PyTorch"
  )
fi
if [ "${1:-}" = fuzz ]; then
  PKGS+=(
    "clang-14          compiles the libFuzzer targets of tests/fuzz (preset fuzz)"
    "libclang-rt-14-dev  libFuzzer, ASan and UBSan runtimes for clang-14"
  )
fi

missing=()
for line in "${PKGS[@]}"; do
  pkg=${line%% *}
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
    echo "deps: will install $pkg — ${line#"$pkg"}" | tr -s ' '
  fi
done
[ ${#missing[@]} -eq 0 ] && { echo "deps: all Debian packages present"; exit 0; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "deps: missing ${missing[*]} and not root (no sudo): install them and retry" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
