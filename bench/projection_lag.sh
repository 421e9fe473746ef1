#!/usr/bin/env bash
# Projection lag on the embedded default: for N sequential likes, the time
# from the command's 2xx to the query side having applied it, measured as
# the duration of `byId?minVersion=V` issued right after each command (it
# returns as soon as version V is projected). Prints p50/p99/max in ms.
#   bench/projection_lag.sh [BUILD_DIR] [N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
n="${2:-200}"
[ -x "$build/query-api/query-api" ] || "$root/scripts/build.sh" "$build"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

export SMPOST_LOG_LEVEL=warn
"$build/tools/smpost-devbroker" >"$work/broker.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q BOOTSTRAP "$work/broker.out" && break; sleep 0.1; done
export KAFKA_BOOTSTRAP_SERVERS="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
cport=$(free_port); qport=$(free_port)
"$build/command-api/command-api" --port "$cport" --event-store "sqlite:$work/e.db" 2>/dev/null &
pids+=($!)
"$build/query-api/query-api" --port "$qport" --read-model "sqlite:$work/r.db" \
  --kafka-config fetch.wait.max.ms=10 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$qport/health" >/dev/null && break; sleep 0.1; done

id=$(curl -s -X POST "http://127.0.0.1:$cport/api/v1/NewPost" -H 'Content-Type: application/json' \
       -d '{"author":"bench","message":"lag"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
# the first query waits out the consumer group's first join (~3 s)
curl -s -o /dev/null "http://127.0.0.1:$qport/api/v1/PostLookup/byId/$id?minVersion=0"
for _ in $(seq "$n"); do
  v=$(curl -s -X PUT "http://127.0.0.1:$cport/api/v1/LikePost/$id" | sed 's/.*"version":\([0-9]*\).*/\1/')
  curl -s -o /dev/null -w '%{time_total}\n' \
       "http://127.0.0.1:$qport/api/v1/PostLookup/byId/$id?minVersion=$v"
done | sort -n | awk '{ a[NR] = $1 * 1000 } END {
  printf "projection_lag samples=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
         NR, a[int(NR * 0.5 + 0.5)], a[int(NR * 0.99 + 0.5)], a[NR] }'
