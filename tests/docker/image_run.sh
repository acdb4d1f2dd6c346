#!/usr/bin/env bash
# The Dockerfile builds and its image runs Drover (issue 17): build the image
# (Docker's layer cache makes a rebuild of an unchanged tree quick), check
# that every shared library the installed binaries need is in the runtime
# stage, then run a broker container and a worker container on the host
# network (127.0.0.1, free ports) and send echo jobs through them, from the
# host's `drover` (DROVER_BIN, the build's) and from `drover` inside the
# image. Where docker-compose is installed, `docker-compose build` must build
# compose.yaml's image too (from the same cache).
#
# Skipped (exit 77) where no Docker engine answers, where no debian:12 image
# is present or pullable, where the build cannot reach Debian's archive, or
# where building takes longer than DV_DOCKER_BUILD_S (default 1500 s: a cold
# build compiles Drover); a build that fails otherwise fails the test.
# Leaves the images drover:ctest and drover:ctest-build (the layer cache of
# the next run; `docker rmi drover:ctest drover:ctest-build` removes them)
# and removes the containers it started, by id.
# Run by CTest (tests/CMakeLists.txt) from any folder.
set -euo pipefail
cd "$(dirname "$0")/../.."

skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || skip "docker not installed"
docker info >/dev/null 2>&1 || skip "no Docker engine answers (docker info)"

image=drover:ctest
tmp=$(mktemp -d /tmp/dv-docker.XXXXXX)
containers=()
tags=()
cleanup() {
  local c t
  for c in "${containers[@]}"; do
    docker rm -f "$c" >/dev/null 2>&1 || true
  done
  for t in "${tags[@]}"; do
    docker rmi "$t" >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# The bases: debian:12 for the build stage; debian:12-slim for the runtime
# where the engine has it or can pull it, else debian:12 (an offline engine).
have_image() {
  docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1
}
have_image debian:12 || skip "no debian:12 image and none can be pulled"
runtime=debian:12-slim
have_image "$runtime" || runtime=debian:12

# The build, in two steps: the build stage (compilers, -dev packages, the
# compiled tree: 1.2 GB) is tagged drover:ctest-build, so that it is kept as
# the next run's cache rather than left behind as a dangling image on every
# change of the tree; then the image, whose build stage comes from that cache.
# What an earlier run tagged and this one replaced is removed (by id, only
# when no tag holds it any more). Host networking: engines without a bridge
# (dockerd --bridge=none) give builds no other, and it works on every other.
build_s=${DV_DOCKER_BUILD_S:-1500}
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
old_ids="$(image_id "$image-build") $(image_id "$image")"
dangling() { docker images -q --no-trunc -f dangling=true | sort; }
dangling >"$tmp/dangling.before"
echo "== docker build (runtime base $runtime, limit ${build_s} s)"
start=$(date +%s)
set +e
timeout "$build_s" docker build --network host --target build \
  -t "$image-build" . >"$tmp/build.log" 2>&1 &&
  timeout $((build_s - ($(date +%s) - start))) docker build --network host \
    --build-arg RUNTIME_IMAGE="$runtime" -t "$image" . >>"$tmp/build.log" 2>&1
rc=$?
set -e
echo "docker build: rc $rc after $(($(date +%s) - start)) s"
for old in $old_ids; do
  if [ -z "$(docker image inspect -f '{{join .RepoTags ""}}' "$old" 2>/dev/null)" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
done
# A build cut short leaves its last step behind, untagged: removed too (a
# dangling image that appeared during the build), once the engine has
# removed the step's container (up to 10 s after the cut).
if [ "$rc" -ne 0 ]; then
  dangling | comm -13 "$tmp/dangling.before" - | while read -r left; do
    for ((i = 0; i < 20; i++)); do
      docker rmi "$left" >/dev/null 2>&1 && break
      sleep 0.5
    done
  done
fi
if [ "$rc" -eq 124 ]; then
  tail -5 "$tmp/build.log"
  skip "the image did not build within ${build_s} s (DV_DOCKER_BUILD_S)"
fi
if [ "$rc" -ne 0 ]; then
  tail -40 "$tmp/build.log"
  if grep -Eq "Temporary failure resolving|Could not resolve|Failed to fetch|Network is unreachable" "$tmp/build.log"; then
    skip "the build cannot reach Debian's archive (apt-get)"
  fi
  fail "docker build failed"
fi

# Every library the binaries and libdrover.so load is in the runtime stage.
echo "== shared libraries in the image"
docker run --rm --network none --entrypoint sh "$image" -c \
  'find /opt/drover -type f \( -path "*/bin/*" -o -name "libdrover.so*" \) \
     -exec ldd {} +' >"$tmp/ldd.txt" 2>&1 || { cat "$tmp/ldd.txt"; fail "ldd failed in the image"; }
grep -q "libraft" "$tmp/ldd.txt" || { cat "$tmp/ldd.txt"; fail "ldd saw no drover-broker"; }
if grep -q "not found" "$tmp/ldd.txt"; then
  grep "not found" "$tmp/ldd.txt"
  fail "libraries missing from the runtime stage"
fi
docker run --rm --network none "$image" drover version

# Two free ports on 127.0.0.1 (the kernel picks them; released at once, so a
# race with another process is possible but harmless: the broker then fails
# to bind and the test says so).
read -r client_port worker_port < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
client=tcp://127.0.0.1:$client_port
worker_ep=tcp://127.0.0.1:$worker_port
name=dv-ctest-$$

logs() {
  local c
  for c in "${containers[@]}"; do
    echo "--- docker logs $c"
    docker logs "$c" 2>&1 | tail -30
  done
}
# wait_log CONTAINER TEXT SECONDS: until the container's log holds TEXT.
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    docker logs "$1" 2>&1 | grep -q "$2" && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || break
    sleep 0.1
  done
  logs
  fail "container $1 did not log '$2' within $3 s"
}

# The image's own CMD: the broker on 0.0.0.0 (--plain) with its registry in
# /var/lib/drover, which the drover user must be able to write. No network:
# 0.0.0.0 is then the container's own loopback only.
echo "== the image's CMD"
id=$(docker run -d --name "$name-cmd" --network none "$image")
containers+=("$id")
wait_log "$name-cmd" READY 60
docker exec "$name-cmd" sh -c 'test -d /var/lib/drover/store' ||
  { logs; fail "the broker made no store in /var/lib/drover"; }
docker stop -t 30 "$name-cmd" >/dev/null

echo "== broker and worker containers ($client, $worker_ep)"
# The image's CMD is the broker on 0.0.0.0 (--plain); here it listens on
# 127.0.0.1 only, where plain mode needs no flag. Durable (--data): a submit
# is answered once the store has it.
id=$(docker run -d --name "$name-broker" --network host "$image" \
  drover-broker --client "$client" --worker "$worker_ep" --data /var/lib/drover)
containers+=("$id")
id=$(docker run -d --name "$name-worker" --network host "$image" \
  drover-worker --broker "$worker_ep" --name "$name-worker" \
  --concurrency 2 --blas-threads 1)
containers+=("$id")
wait_log "$name-worker" READY 60

drover_host=${DROVER_BIN:-}
if [ -n "$drover_host" ]; then
  echo "== echo jobs from the host's drover ($drover_host)"
  out=$(timeout 120 "$drover_host" submit --broker "$client" --echo 64 \
    --count 20 --json) || { logs; fail "host submit failed"; }
  echo "$out"
  echo "$out" | grep -q '"done":20,"failed":0' || { logs; fail "host submit: $out"; }
fi

echo "== echo jobs from drover in the image"
ids=$(timeout 120 docker run --rm --network host "$image" \
  drover submit --broker "$client" --echo 16 --count 5 --no-wait) ||
  { logs; fail "submit in the image failed"; }
[ "$(echo "$ids" | wc -l)" -eq 5 ] || fail "expected 5 job ids, got: $ids"
for job in $ids; do
  r=$(timeout 60 docker run --rm --network host "$image" \
    drover jobs result "$job" --broker "$client" --wait-ms 30000 --json) ||
    { logs; fail "no result for job $job"; }
  echo "$r"
  case $r in
  *'"state":"done"'*'"worker":"'"$name-worker"'"'*'"payload_bytes":16}'*) ;;
  *) logs; fail "job $job: unexpected result $r" ;;
  esac
done

# SIGTERM drains the worker and stops the broker cleanly (exit 0).
docker stop -t 30 "$name-worker" "$name-broker" >/dev/null
for c in "$name-worker" "$name-broker"; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
  [ "$code" -eq 0 ] || { logs; fail "$c exited $code on SIGTERM"; }
done

# compose.yaml's build section (context, host network, RUNTIME_IMAGE) builds
# the same image; tagged apart (an override file) so drover:latest is left
# alone.
if command -v docker-compose >/dev/null 2>&1; then
  echo "== docker-compose build"
  cat >"$tmp/override.yaml" <<YAML
services:
  broker:
    image: $name-compose:latest
YAML
  tags+=("$name-compose:latest")
  DROVER_RUNTIME_IMAGE=$runtime timeout "$build_s" docker-compose \
    -p "$name" -f compose.yaml -f "$tmp/override.yaml" build broker \
    >"$tmp/compose.log" 2>&1 || { tail -30 "$tmp/compose.log"; fail "docker-compose build failed"; }
  docker image inspect "$name-compose:latest" >/dev/null ||
    fail "docker-compose build made no image"
else
  echo "docker-compose not installed: compose build not checked"
fi
echo "docker image ok"
