#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/scale_query.sh — query throughput (GET byId) of one query-api versus
# two query-api instances sharing one read model, on this machine, and how
# long the consumer group takes to hand partitions over between them.
#
#   bench/scale_query.sh [--smoke] [--kafka devbroker|real] [BUILD_DIR]
#
# On the embedded default (local broker, SQLite event store and read model)
# it starts devbroker + command-api + query-api A on free loopback ports
# with a temporary data directory (--kafka real: a real Apache Kafka broker
# from scripts/kafka.sh instead, and query-api without the local broker's
# fetch.wait.max.ms=10, as bench/run.sh --kafka real), creates SMPOST_BENCH_POSTS posts and
# waits until A shows every one of them, then measures, closed loop with
# bench/loadgen (the load generator of bench/run.sh, called, not changed):
#   1 instance   CONNS connections on A
#   2 instances  query-api B started on the same read model file, in the
#                same consumer group; once the two share the partitions and
#                nothing is left to project, CONNS/2 connections on A and
#                CONNS/2 on B at the same time (two loadgen processes); the
#                figure is the sum of both
# then the group's hand-overs, each timed from the event until the
# instances' /health (consumer.assignedPartitions, polled every 50 ms)
# show it done:
#   join         B started → A and B both hold partitions, all of them
#                between them (measured when B joins for the throughput
#                case, and again after B's restart below)
#   takeover (SIGTERM)  B stopped with SIGTERM (it leaves the group as it
#                closes) → A holds every partition
#   takeover (kill -9)  B restarted and joined, then killed with SIGKILL
#                (no goodbye: the group waits for its session timeout,
#                6 s) → A holds every partition (the query-api takeover of
#                tests/fault/test_scale_out.c, without its load)
# and prints one row per case, then
#   RESULT byid_rps_1=.. byid_rps_2=.. ratio=.. conns=.. cpus=.. build=..
#          join_ms=.. rejoin_ms=.. takeover_term_ms=.. takeover_kill_ms=..
#          kafka=devbroker|real
# The same total number of connections in both cases, so the comparison is
# of instances, not of offered load. Everything (the instances, the load
# generators, the broker) shares this machine's CPUs and the one SQLite
# file: on a small machine a second instance mostly adds contention.
#
# Environment (defaults in brackets; --smoke: 1 s cases, 0.5 s warm-up,
# 100 posts):
#   SMPOST_BENCH_SECONDS [10]   measured seconds per case
#   SMPOST_BENCH_WARMUP [2]     warm-up seconds before each case
#   SMPOST_BENCH_CONNS [16]     connections in all (even)
#   SMPOST_BENCH_POSTS [1000]   posts looked up (at random)
#   KAFKA_PARTITIONS [6]        the real broker's partitions (--kafka real)
#   SMPOST_BENCH_KEEP=1         keep the temporary directory (logs, data)
# BUILD_DIR defaults to $SMPOST_BENCH_BUILD_DIR or ./build-bench (as
# bench/run.sh); when it does not exist yet it is configured Release without
# tests (scripts/bootstrap.sh installs the dependencies first). Only the
# programs needed are built. Exits non-zero only when the run breaks (start-
# up, an error answer, a figure that is not a number).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

smoke=0
kafka=devbroker
build=""
while (($# > 0)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --kafka) kafka="${2:-}"; shift ;;
    --kafka=*) kafka="${1#*=}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "scale_query: unknown option $1" >&2; exit 2 ;;
    *) build="$1" ;;
  esac
  shift
done
case "$kafka" in
  devbroker | real) ;;
  *) echo "scale_query: --kafka is devbroker (the default) or real, not '$kafka'" >&2; exit 2 ;;
esac
build="${build:-${SMPOST_BENCH_BUILD_DIR:-$root/build-bench}}"
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
if [ "$smoke" = 1 ]; then d_secs=1 d_warm=0.5 d_posts=100; else d_secs=10 d_warm=2 d_posts=1000; fi
secs="${SMPOST_BENCH_SECONDS:-$d_secs}"
warm="${SMPOST_BENCH_WARMUP:-$d_warm}"
conns="${SMPOST_BENCH_CONNS:-16}"
posts="${SMPOST_BENCH_POSTS:-$d_posts}"
[ $((conns % 2)) = 0 ] && [ "$conns" -ge 2 ] || { echo "scale_query: SMPOST_BENCH_CONNS must be even" >&2; exit 2; }

work="$(mktemp -d /tmp/smpost-scale-query-XXXXXX)"
pids=()
broker_pid=""
kafka_up=0
cleanup() { # the services first, then the broker (so their Kafka clients can close)
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$broker_pid" ]; then kill -TERM "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  [ "$kafka_up" = 0 ] || "$root/scripts/kafka.sh" stop "$work/kafka" >>"$work/kafka-start.log" 2>&1 || true
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
if [ "$kafka" = real ]; then
  kafka_up=1 # from here on, stop it whatever happens
  line="$("$root/scripts/kafka.sh" start "$work/kafka" 2>"$work/kafka-start.log" | tail -n 1)" ||
    { cat "$work/kafka-start.log" >&2; die "scripts/kafka.sh could not start the broker"; }
  bootstrap="${line#KAFKA_BOOTSTRAP_SERVERS=}"
  [ -n "$bootstrap" ] && [ "$bootstrap" != "$line" ] ||
    { cat "$work/kafka-start.log" >&2; die "scripts/kafka.sh printed no KAFKA_BOOTSTRAP_SERVERS"; }
  broker_what="real Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' \
    "$root/scripts/kafka/pom.xml"), ${KAFKA_PARTITIONS:-6} partitions"
  query_kafka=() # a real broker answers a fetch as soon as data arrives
else
  "$build/tools/smpost-devbroker" >"$work/broker.out" 2>"$work/broker.log" &
  broker_pid=$!
  for _ in $(seq 100); do grep -q '^SMPOST_KAFKA_BOOTSTRAP=' "$work/broker.out" && break; sleep 0.1; done
  bootstrap="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
  [ -n "$bootstrap" ] || die "the local broker did not start ($work/broker.log)"
  broker_what="smpost-devbroker (librdkafka's mock cluster)"
  # the local broker holds each fetch for the full wait: keep it short (as bench/run.sh)
  query_kafka=(--kafka-config fetch.wait.max.ms=10)
fi
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
cport=$(free_port)
"$build/command-api/command-api" --port "$cport" --event-store "sqlite:$work/events.db" \
  2>"$work/command-api.log" &
pids+=($!)
cmd_url="http://127.0.0.1:$cport"
start_query() { # start_query NAME: a query-api on the shared read model; sets url_NAME, pid_NAME
  local port
  port=$(free_port)
  # (a long minVersion wait: the visibility check after seeding waits for
  # the projection; the measured byId requests carry no minVersion)
  "$build/query-api/query-api" --port "$port" --read-model "sqlite:$work/readmodel.db" \
    ${query_kafka[@]+"${query_kafka[@]}"} --min-version-wait-ms 30000 2>>"$work/query-api-$1.log" &
  pids+=($!)
  printf -v "pid_$1" '%s' "$!"
  printf -v "url_$1" '%s' "http://127.0.0.1:$port"
  wait_http "http://127.0.0.1:$port/health" 30 || die "query-api $1 did not start ($work/query-api-$1.log)"
}
wait_http "$cmd_url/health" 30 || die "command-api did not start ($work/command-api.log)"
start_query a

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "smpost scale_query: $(nproc) CPU ($cpu), Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build $build_type ($build); byId on $posts posts; $conns connections in all;" \
     "${secs} s per case after ${warm} s warm-up; broker: $broker_what"

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
now_ms() { echo $(($(date +%s%N) / 1000000)); }
assigned() { curl -s -m 5 "$1/health" | json_num assignedPartitions; } # assigned URL
failures=()
# wait_shared NAME T0: until A and B both hold partitions, all of them between
# them; sets NAME to the milliseconds since T0 (x after 60 s)
wait_shared() {
  local pa pb i
  for ((i = 0; i < 1200; i++)); do
    pa="$(assigned "$url_a")"
    pb="$(assigned "$url_b")"
    if [ "${pa:-0}" -gt 0 ] && [ "${pb:-0}" -gt 0 ] && [ $((pa + pb)) = "$partitions" ]; then
      printf -v "$1" '%s' "$(($(now_ms) - $2))"
      return 0
    fi
    sleep 0.05
  done
  printf -v "$1" x
  failures+=("$1: A and B hold ${pa:-?} + ${pb:-?} of $partitions partitions after 60 s")
}
# wait_all_on_a NAME T0: until A holds every partition; sets NAME as above
wait_all_on_a() {
  local pa i
  for ((i = 0; i < 1200; i++)); do
    pa="$(assigned "$url_a")"
    if [ "${pa:-0}" = "$partitions" ]; then
      printf -v "$1" '%s' "$(($(now_ms) - $2))"
      return 0
    fi
    sleep 0.05
  done
  printf -v "$1" x
  failures+=("$1: A holds ${pa:-?} of $partitions partitions after 60 s")
}
partitions="$(assigned "$url_a")" # A alone: all of them
[ "${partitions:-0}" -gt 0 ] || die "query-api A holds no partitions"
t0="$(now_ms)"
start_query b
wait_shared join_ms "$t0"
[ "$join_ms" != x ] || die "${failures[0]}"
# nothing left to project
for i in $(seq 600); do
  la="$(curl -s "$url_a/health" | json_num lag)"
  lb="$(curl -s "$url_b/health" | json_num lag)"
  [ "${la:-1}" = 0 ] && [ "${lb:-1}" = 0 ] && break
  sleep 0.1
done
half=$((conns / 2))
byid two-a "$url_a" "$half" &
lga=$!
byid two-b "$url_b" "$half" &
lgb=$!
wait "$lga" || die "loadgen on A failed"
wait "$lgb" || die "loadgen on B failed"
two_a="$(head -n 1 "$work/two-a.out")"
two_b="$(head -n 1 "$work/two-b.out")"

# ---- hand-overs ----------------------------------------------------------
# B stopped cleanly: it leaves the group as it closes
t0="$(now_ms)"
kill -TERM "$pid_b"
wait_all_on_a takeover_term_ms "$t0"
wait "$pid_b" 2>/dev/null || true
# B again, then killed: the group notices after its session timeout
t0="$(now_ms)"
start_query b
wait_shared rejoin_ms "$t0"
exec 3>&2 2>/dev/null # not bash's "Killed" notice
t0="$(now_ms)"
kill -KILL "$pid_b"
wait_all_on_a takeover_kill_ms "$t0"
wait "$pid_b" || true
exec 2>&3 3>&-

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
echo
printf '%-26s %10s  %s\n' "hand-over" "ms" "until"
printf '%-26s %10s  %s\n' "join: B started" "$join_ms" "A and B share the $partitions partitions"
printf '%-26s %10s  %s\n' "takeover: B SIGTERM" "$takeover_term_ms" "A holds all $partitions"
printf '%-26s %10s  %s\n' "rejoin: B restarted" "$rejoin_ms" "A and B share them again"
printf '%-26s %10s  %s\n' "takeover: B kill -9" "$takeover_kill_ms" "A holds all $partitions"
echo "RESULT byid_rps_1=$r1 byid_rps_2=$r2 ratio=$ratio conns=$conns cpus=$(nproc) build=$build_type" \
     "join_ms=$join_ms rejoin_ms=$rejoin_ms takeover_term_ms=$takeover_term_ms" \
     "takeover_kill_ms=$takeover_kill_ms kafka=$kafka"
[ "${#failures[@]}" -eq 0 ] || die "FAILED: ${failures[*]}"
