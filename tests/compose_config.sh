#!/bin/sh
# compose.yaml and the Dockerfile are accepted by docker-compose, and the
# services the README names exist. `docker-compose config` parses and
# validates the file without a daemon: a syntax error or an unknown option
# fails this test. `make test` installs docker-compose (scripts/deps.sh
# test); where it is absent the test is skipped (exit 77). Run by CTest from
# the repository root.
set -eu
cd "$(dirname "$0")/.."
if command -v docker-compose >/dev/null 2>&1; then
  dc="docker-compose"
elif docker compose version >/dev/null 2>&1; then
  dc="docker compose"
else
  echo "docker-compose not installed: skipped"
  exit 77
fi
$dc -f compose.yaml config -q
services=$($dc -f compose.yaml --profile dev config --services)
for s in broker worker demo test; do
  echo "$services" | grep -qx "$s" || { echo "compose.yaml lacks service $s"; exit 1; }
done
# The broker group profile: three members and their worker.
$dc -f compose.yaml --profile group config -q
group=$($dc -f compose.yaml --profile group config --services)
for s in broker-1 broker-2 broker-3 group-worker; do
  echo "$group" | grep -qx "$s" || { echo "compose.yaml's group profile lacks $s"; exit 1; }
done
grep -q '^FROM debian:12' Dockerfile || { echo "Dockerfile must build on debian:12"; exit 1; }
echo "compose.yaml ok: $(echo $group | tr '\n' ' ')"
