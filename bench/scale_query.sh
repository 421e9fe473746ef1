#!/usr/bin/env bash
# bench/scale_query.sh — query throughput (GET byId) of one query-api versus
# two query-api instances sharing one read model, on this machine.
#
#   bench/scale_query.sh [BUILD_DIR]
#
# On the embedded default (local broker, SQLite event store and read model)
# it starts devbroker + command-api + query-api A on free loopback ports
# with a temporary data directory, creates SMPOST_BENCH_POSTS posts and
# waits until A shows every one of them, then measures, closed loop with
# bench/loadgen (the load generator of bench/run.sh, called, not changed):
#   1 instance   CONNS connections on A
#   2 instances  query-api B started on the same read model file, in the
#                same consumer group; once the two share the partitions and
#                nothing is left to project, CONNS/2 connections on A and
#                CONNS/2 on B at the same time (two loadgen processes); the
#                figure is the sum of both
# and prints one row per case, then
#   RESULT byid_rps_1=.. byid_rps_2=.. ratio=.. conns=.. cpus=..
# The same total number of connections in both cases, so the comparison is
# of instances, not of offered load. Everything (the instances, the load
# generators, the broker) shares this machine's CPUs and the one SQLite
# file: on a small machine a second instance mostly adds contention.
#
# Environment (defaults in brackets):
#   SMPOST_BENCH_SECONDS [10]   measured seconds per case
#   SMPOST_BENCH_WARMUP [2]     warm-up seconds before each case
#   SMPOST_BENCH_CONNS [16]     connections in all (even)
#   SMPOST_BENCH_POSTS [1000]   posts looked up (at random)
#   SMPOST_BENCH_KEEP=1         keep the temporary directory (logs, data)
# BUILD_DIR defaults to $SMPOST_BENCH_BUILD_DIR or ./build-bench (as
# bench/run.sh); when it does not exist yet it is configured Release without
# tests (scripts/bootstrap.sh installs the dependencies first). Only the
# programs needed are built. Exits non-zero only when the run breaks (start-
# up, an error answer, a figure that is not a number).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "${1:-}" in
  -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
build="${1:-${SMPOST_BENCH_BUILD_DIR:-$root/build-bench}}"
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
secs="${SMPOST_BENCH_SECONDS:-10}"
warm="${SMPOST_BENCH_WARMUP:-2}"
conns="${SMPOST_BENCH_CONNS:-16}"
posts="${SMPOST_BENCH_POSTS:-1000}"
[ $((conns % 2)) = 0 ] && [ "$conns" -ge 2 ] || { echo "scale_query: SMPOST_BENCH_CONNS must be even" >&2; exit 2; }

work="$(mktemp -d /tmp/smpost-scale-query-XXXXXX)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${SMPOST_BENCH_KEEP:-0}" = 1 ]; then echo "scale_query: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "scale_query: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
json_num() { sed -n "s/.*\"$1\":\(-\{0,1\}[0-9][0-9]*\).*/\1/p" | head -n 1; }
wait_http() { # wait_http URL SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

# ---- build -------------------------------------------------------------
if [ ! -f "$build/CMakeCache.txt" ]; then
  "$root/scripts/bootstrap.sh" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; die "scripts/bootstrap.sh failed"; }
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSMPOST_BUILD_TESTS=OFF \
    >>"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "cmake configure failed"; }
fi
cmake --build "$build" -j"$(nproc)" --target loadgen command-api query-api smpost-devbroker \
  >>"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; die "build failed"; }
lg="$build/bench/loadgen"
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"

# ---- the stack -----------------------------------------------------------
export SMPOST_LOG_LEVEL="${SMPOST_LOG_LEVEL:-warn}"
"$build/tools/smpost-devbroker" >"$work/broker.out" 2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^SMPOST_KAFKA_BOOTSTRAP=' "$work/broker.out" && break; sleep 0.1; done
bootstrap="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
[ -n "$bootstrap" ] || die "the local broker did not start ($work/broker.log)"
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
cport=$(free_port)
"$build/command-api/command-api" --port "$cport" --event-store "sqlite:$work/events.db" \
  2>"$work/command-api.log" &
pids+=($!)
cmd_url="http://127.0.0.1:$cport"
start_query() { # start_query NAME: a query-api on the shared read model; sets url_NAME
  local port
  port=$(free_port)
  # the local broker holds each fetch for the full wait: keep it short (as bench/run.sh)
  # (a long minVersion wait: the visibility check after seeding waits for
  # the projection; the measured byId requests carry no minVersion)
  "$build/query-api/query-api" --port "$port" --read-model "sqlite:$work/readmodel.db" \
    --kafka-config fetch.wait.max.ms=10 --min-version-wait-ms 30000 2>"$work/query-api-$1.log" &
  pids+=($!)
  printf -v "url_$1" '%s' "http://127.0.0.1:$port"
  wait_http "http://127.0.0.1:$port/health" 30 || die "query-api $1 did not start ($work/query-api-$1.log)"
}
wait_http "$cmd_url/health" 30 || die "command-api did not start ($work/command-api.log)"
start_query a

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "smpost scale_query: $(nproc) CPU ($cpu), Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build $build_type ($build); byId on $posts posts; $conns connections in all;" \
     "${secs} s per case after ${warm} s warm-up"

# run_lg NAME ARGS...: loadgen's result line into $work/NAME.out; dies on failure
run_lg() {
  local name="$1"
  shift
  "$lg" --name "$name" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    die "loadgen $name failed: $(tail -n 1 "$work/$name.err")"
}

run_lg seed -c "$conns" -n "$posts" --rr --authors 100 --author-prefix "sq$$-" \
  --ids-out "$work/ids.txt" "$cmd_url" newpost
[ "$(wc -l <"$work/ids.txt")" -eq "$posts" ] || die "seeding made $(wc -l <"$work/ids.txt") posts"
# every post visible on A (minVersion waits for the projection)
run_lg visible -c "$conns" -n "$posts" --rr --ids "$work/ids.txt" --min-version 0 --expect 200 \
  "$url_a" byid

byid() { # byid NAME URL CONNS: closed loop of byId at random over the posts
  run_lg "$1" -c "$3" -d "$secs" -w "$warm" --ids "$work/ids.txt" --expect 200 "$2" byid
}

# ---- 1 instance ----------------------------------------------------------
byid one "$url_a" "$conns"
one="$(head -n 1 "$work/one.out")"

# ---- 2 instances ---------------------------------------------------------
start_query b
# both in the group with partitions, and nothing left to project
for i in $(seq 600); do
  ha="$(curl -s "$url_a/health")"
  hb="$(curl -s "$url_b/health")"
  pa="$(json_num assignedPartitions <<<"$ha")"
  pb="$(json_num assignedPartitions <<<"$hb")"
  la="$(json_num lag <<<"$ha")"
  lb="$(json_num lag <<<"$hb")"
  [ "${pa:-0}" -gt 0 ] && [ "${pb:-0}" -gt 0 ] && [ "${la:-1}" = 0 ] && [ "${lb:-1}" = 0 ] && break
  sleep 0.1
done
[ "${pa:-0}" -gt 0 ] && [ "${pb:-0}" -gt 0 ] ||
  die "the two query-apis do not share the partitions (${pa:-?} + ${pb:-?})"
half=$((conns / 2))
byid two-a "$url_a" "$half" &
lga=$!
byid two-b "$url_b" "$half" &
lgb=$!
wait "$lga" || die "loadgen on A failed"
wait "$lgb" || die "loadgen on B failed"
two_a="$(head -n 1 "$work/two-a.out")"
two_b="$(head -n 1 "$work/two-b.out")"

# ---- report --------------------------------------------------------------
num() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "not a number: '$1' ($2)"; echo "$1"; }
r1="$(num "$(kv "$one" rps)" one)"
ra="$(num "$(kv "$two_a" rps)" two-a)"
rb="$(num "$(kv "$two_b" rps)" two-b)"
r2="$(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.1f", a + b }')"
ratio="$(awk -v a="$r1" -v b="$r2" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')"
printf '%-26s %10s %9s %9s\n' "case" "byId/s" "p50 ms" "p99 ms"
printf '%-26s %10s %9s %9s\n' "1 query-api" "$r1" "$(kv "$one" p50_ms)" "$(kv "$one" p99_ms)"
printf '%-26s %10s %9s %9s\n' "2 query-apis: A" "$ra" "$(kv "$two_a" p50_ms)" "$(kv "$two_a" p99_ms)"
printf '%-26s %10s %9s %9s\n' "2 query-apis: B" "$rb" "$(kv "$two_b" p50_ms)" "$(kv "$two_b" p99_ms)"
printf '%-26s %10s\n' "2 query-apis: together" "$r2"
echo "RESULT byid_rps_1=$r1 byid_rps_2=$r2 ratio=$ratio conns=$conns cpus=$(nproc) build=$build_type"
