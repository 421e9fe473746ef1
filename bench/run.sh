#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh — smpost's benchmark: one run, one table, one RESULT line.
#
#   bench/run.sh [--smoke] [--kafka devbroker|real] [--event-store mongodb] [BUILD_DIR]
#
# On the embedded default (SQLite event store and read model, the local
# broker) it builds what it needs, starts devbroker + command-api +
# query-api on free loopback ports with a temporary data directory, and
# measures, in this order:
#   ceiling      requests/s of the services' own HTTP edge with a no-op
#                route (bench/ceiling), same civetweb settings
#   new post     POST /api/v1/NewPost, closed loop: requests/s, p50/p99
#   like         PUT /api/v1/LikePost/{id} on SMPOST_BENCH_POSTS posts
#   like, one post   the same with every connection on one post (a hot
#                post: hot_like_rps), then the time until the query side
#                shows all of them (hot_drain_ms)
#   by id        GET byId/{id} on those posts (after the projection caught up)
#   by author    GET byAuthor/{author}: SMPOST_BENCH_AUTHORS authors, each
#                with POSTS/AUTHORS posts
#   by author, gzip  the same with Accept-Encoding: gzip (compressed answers;
#                the table's last lines give both phases' bytes an answer)
#   idle keep-alive  SMPOST_BENCH_IDLE_CONNS connections to command-api, each
#                answered once and left open and idle (as a client pool or
#                a proxy leaves them), then SMPOST_BENCH_IDLE_SAMPLES
#                GET /health, one at a time, each on a fresh connection:
#                p50/p99 from connect to the whole answer (bench/idle_keepalive)
#   lag          open loop at SMPOST_BENCH_LAG_RATE commands/s (new posts and
#                likes in turn); after every 5th 2xx, byId?minVersion=V on
#                the query side: the time until it answers (projection lag +
#                one loopback round trip; see bench/lg_loop.h)
#   new post (auth)  command-api restarted on the same store and broker with
#                SMPOST_AUTH=jwt (a key made here by smpost-token --gen-key),
#                then new post as above with one token per connection
#                (loadgen --tokens, a user each); reported as newpost_auth_rps
#                and checked against newpost_rps: at least 0.8 x (issue 16).
#                Skipped against external services (SMPOST_BENCH_*_URL).
#   catch-up     a second query-api on a fresh read model in a consumer group
#                of its own reads the whole topic from offset 0, at least
#                SMPOST_BENCH_CATCHUP_EVENTS events (topped up with new posts
#                if the phases before wrote fewer): events applied per second
#                from its first applied event to its last (catchup_eps;
#                issue 17: >= 3 x newpost_rps). Skipped against external
#                services.
#   like cost    a fresh command-api (no Kafka) on a store seeded directly
#                (bench/seed_store) with one post of ~10 events and one of
#                SMPOST_BENCH_COST_EVENTS: median time of one like on each,
#                one connection, after one warm-up like per post; then the
#                same with the aggregate cache off, and with snapshots off
#                too (for information: what the cache and snapshots buy)
# With --kafka real the broker is a real Apache Kafka broker instead of
# smpost-devbroker: scripts/kafka.sh starts one (KRaft, one node, on
# loopback, its data in the temporary directory; KAFKA_PARTITIONS [6]
# partitions) and stops it on exit, and query-api runs without the local
# run's fetch.wait.max.ms=10 (a real broker answers a fetch as soon as data
# arrives; librdkafka's mock cluster holds it for the whole wait, hence the
# setting there). Everything else is the same, so the two runs compare.
# The first run downloads the broker's jars through Maven (see
# scripts/kafka.sh).
# With --event-store mongodb it then measures the command side again on the
# MongoDB adapter, beside SQLite's: a command-api without Kafka (no relay,
# so no projection to wait for) on $SMPOST_BENCH_MONGO_URL (a MongoDB such
# as the compose stack's; the run uses databases of its own there) or else
# on FerretDB 1.x on its SQLite backend, which scripts/mongo.sh builds and
# starts in the temporary directory:
#   mongo like, mongo new post   as like and new post above, likes first
#   mongo like cost              as like cost above, the long stream
#                                SMPOST_BENCH_MONGO_COST_EVENTS [2000] long
#                                (seed_store --batch SMPOST_BENCH_SEED_BATCH
#                                [1]: FerretDB has no transactions)
# On FerretDB these are FerretDB's figures, not MongoDB's: it reads the
# whole collection for every query not by _id alone, so they fall as the
# store grows (docs/operations.md, "MongoDB stand-ins").
# Plots: bench/plot.sh (gnuplot) draws the latency distribution of every
# measured phase (latency.png) and the projection lag over time of the lag
# and sustained phases (lag.png) into SMPOST_BENCH_PLOTS [BUILD_DIR/bench-plots],
# beside the data they come from.
# After each write phase it waits for the projection to catch up (and
# reports that backlog and how fast it was applied), so no phase shares the
# CPUs with the previous one's tail. It prints a table (each figure also as
# a ratio of the ceiling, with the issue's targets), how much CPU other
# processes took meanwhile, and, last, a machine-readable line:
#   RESULT ceiling_rps=.. newpost_rps=.. like_rps=.. byid_rps=.. byauthor_rps=..
#          byauthor_gzip_rps=.. byauthor_bytes=.. byauthor_gzip_bytes=..
#          lag_p50_ms=.. lag_p99_ms=.. like_cost_ratio_100k_vs_10=..
#          idle_p50_ms=.. idle_p99_ms=.. first_visible_ms=..
#          [mongo_newpost_rps=.. mongo_like_rps=.. mongo_like_cost_ratio=..]
#          kafka=devbroker|real|external newpost_auth_rps=..|skipped
#          catchup_eps=..|skipped hot_like_rps=.. hot_drain_ms=..
#          sustained_lag_p99_ms=.. rss_command_mb=..|skipped rss_query_mb=..|skipped
# (first_visible_ms: from both services answering /health to the first post
# shown by the query side, i.e. mostly the consumer's first group join;
# kafka=external when SMPOST_BENCH_*_URL name the services.)
#
# A missed target is reported, not a failure: performance figures are
# measurements. The script exits non-zero only when it breaks: a build or
# start-up failure, any error answer or connection failure during a phase,
# a stale minVersion answer, a figure that is not a number.
#
# Environment (defaults in brackets; --smoke shrinks them to a few seconds):
#   SMPOST_BENCH_SECONDS [10]      measured seconds per phase
#   SMPOST_BENCH_WARMUP [2]        warm-up seconds before each phase
#   SMPOST_BENCH_CONNS [16]        connections per closed-loop phase
#   SMPOST_BENCH_POSTS [1000]      posts the like/byId/byAuthor phases use
#   SMPOST_BENCH_AUTHORS [100]     their authors
#   SMPOST_BENCH_LAG_RATE [500]    offered commands/s in the lag phase
#   SMPOST_BENCH_COST_EVENTS [100000]  length of the long stream
#   SMPOST_BENCH_CATCHUP_EVENTS [100000]  backlog the catch-up phase applies
#   SMPOST_BENCH_CATCHUP_LIMIT [60] seconds it may take (the rate so far is reported)
#   SMPOST_BENCH_COST_SAMPLES [21] timed likes per post in the cost phase
#   SMPOST_BENCH_IDLE_CONNS [256]  idle connections in the idle keep-alive phase
#   SMPOST_BENCH_IDLE_SAMPLES [200] timed requests on fresh connections there
#   SMPOST_BENCH_COMMAND_URL, SMPOST_BENCH_QUERY_URL
#       target running services (e.g. the compose stack,
#       http://127.0.0.1:5001 and http://127.0.0.1:5002) instead of starting
#       them: nothing is started but bench/ceiling (locally); the services
#       should be otherwise idle (the run waits for the projection to settle
#       between phases); the long stream is then written through HTTP likes,
#       so its default length is 2000 events, and the cost variants are skipped
#   SMPOST_BENCH_PERF=DIR          record `perf record -g` of command-api
#       during the like phase and of query-api during the byId phase
#       into DIR (local mode)
#   SMPOST_BENCH_KEEP=1            keep the temporary directory (logs, data)
#   SMPOST_LOG_LEVEL etc.          passed to the services as usual
# BUILD_DIR defaults to $SMPOST_BENCH_BUILD_DIR or ./build-bench; when it
# does not exist yet, scripts/bootstrap.sh installs the dependencies and it
# is configured like the Docker image (Release, no tests). Only the programs
# the run needs are built.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

smoke=0
build=""
store=sqlite
kafka=devbroker
while (($# > 0)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --event-store) store="${2:-}"; shift ;;
    --event-store=*) store="${1#*=}" ;;
    --kafka) kafka="${2:-}"; shift ;;
    --kafka=*) kafka="${1#*=}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1" ;;
  esac
  shift
done
case "$store" in
  sqlite | mongodb) ;;
  *) echo "bench/run.sh: --event-store is sqlite (the default) or mongodb, not '$store'" >&2; exit 2 ;;
esac
case "$kafka" in
  devbroker | real) ;;
  *) echo "bench/run.sh: --kafka is devbroker (the default) or real, not '$kafka'" >&2; exit 2 ;;
esac
build="${build:-${SMPOST_BENCH_BUILD_DIR:-$root/build-bench}}"
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac

if [ "$smoke" = 1 ]; then
  d_secs=1 d_warm=0.5 d_conns=4 d_posts=40 d_authors=8 d_rate=50 d_cost=200 d_samples=5 d_mcost=200
  d_idle_samples=20 d_catchup=5000 d_catchup_limit=20
else
  d_secs=10 d_warm=2 d_conns=16 d_posts=1000 d_authors=100 d_rate=500 d_cost=100000 d_samples=21
  d_mcost=2000 d_idle_samples=200 d_catchup=100000 d_catchup_limit=60
fi
cmd_url="${SMPOST_BENCH_COMMAND_URL:-}"
query_url="${SMPOST_BENCH_QUERY_URL:-}"
external=0
if [ -n "$cmd_url$query_url" ]; then
  [ -n "$cmd_url" ] && [ -n "$query_url" ] ||
    { echo "bench/run.sh: set both SMPOST_BENCH_COMMAND_URL and SMPOST_BENCH_QUERY_URL" >&2; exit 2; }
  external=1
  [ "$smoke" = 1 ] || d_cost=2000
  if [ "$store" = mongodb ]; then
    echo "bench/run.sh: --event-store mongodb starts a command-api of its own; it does not" \
         "combine with SMPOST_BENCH_COMMAND_URL" >&2
    exit 2
  fi
  if [ "$kafka" = real ]; then
    echo "bench/run.sh: --kafka real starts a broker for services of its own; it does not" \
         "combine with SMPOST_BENCH_COMMAND_URL" >&2
    exit 2
  fi
fi
secs="${SMPOST_BENCH_SECONDS:-$d_secs}"
warm="${SMPOST_BENCH_WARMUP:-$d_warm}"
conns="${SMPOST_BENCH_CONNS:-$d_conns}"
posts="${SMPOST_BENCH_POSTS:-$d_posts}"
authors="${SMPOST_BENCH_AUTHORS:-$d_authors}"
lag_rate="${SMPOST_BENCH_LAG_RATE:-$d_rate}"
cost_events="${SMPOST_BENCH_COST_EVENTS:-$d_cost}"
catchup_events="${SMPOST_BENCH_CATCHUP_EVENTS:-$d_catchup}"
catchup_limit="${SMPOST_BENCH_CATCHUP_LIMIT:-$d_catchup_limit}"
cost_samples="${SMPOST_BENCH_COST_SAMPLES:-$d_samples}"
idle_conns="${SMPOST_BENCH_IDLE_CONNS:-256}"
idle_samples="${SMPOST_BENCH_IDLE_SAMPLES:-$d_idle_samples}"
mongo_cost_events="${SMPOST_BENCH_MONGO_COST_EVENTS:-$d_mcost}"
perf_dir="${SMPOST_BENCH_PERF:-}"

started=$(date +%s)
# busy_jiffies: CPU time used by the whole machine so far (/proc/stat, in USER_HZ)
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; } # user nice system irq softirq
busy0=$(busy_jiffies)
work="$(mktemp -d /tmp/smpost-bench-XXXXXX)"
pids=()
failures=()
stop_pid() { # stop_pid PID [SIGNAL]: signal (TERM), wait for it, forget it
  local p kept=()
  kill -"${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  pids=("${kept[@]}")
}
running() { # running PID: alive and not a zombie waiting to be reaped
  local state
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)"
  [ -n "$state" ] && [ "$state" != Z ]
}
stop_all() { # every process started, the broker last (so the services' Kafka clients can close)
  local p i alive
  for p in "${pids[@]}"; do [ "$p" = "${broker_pid:-}" ] || kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 50; i++)); do # up to 5 s, then KILL: the data is thrown away anyway
    alive=0
    for p in "${pids[@]}"; do
      if [ "$p" != "${broker_pid:-}" ] && running "$p"; then alive=1; fi
    done
    [ "$alive" = 1 ] || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do [ "$p" = "${broker_pid:-}" ] || kill -KILL "$p" 2>/dev/null || true; done
  [ -z "${broker_pid:-}" ] || kill -TERM "$broker_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  broker_pid=""
  stop_kafka
}
# kafka_cpu: CPU seconds the real broker's JVM has used. It is nobody's child
# here (kafka.sh starts it in the background and exits), so `times` below
# would not count it as this run's.
kafka_cpu() {
  local pid
  pid="$(cat "$kafka_dir/kafka.pid" 2>/dev/null)" || return 0
  sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null |
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($12 + $13) / hz }' # utime + stime
}
kafka_cpu_s=0
stop_kafka() { # the real broker (--kafka real), if one runs: a clean stop, KILL after 20 s
  [ "${kafka_up:-0}" = 1 ] || return 0
  kafka_up=0
  kafka_cpu_s="$(kafka_cpu)" || kafka_cpu_s=0
  kafka_cpu_s="${kafka_cpu_s:-0}"
  "$root/scripts/kafka.sh" stop "$kafka_dir" >>"$work/kafka-start.log" 2>&1 || true
}
cleanup() {
  stop_all
  [ -z "${mongo_dir:-}" ] || "$root/scripts/mongo.sh" stop "$mongo_dir" >/dev/null 2>&1 || true
  if [ "${SMPOST_BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }
note_failure() { failures+=("$1"); echo "bench: FAILED $1" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# kv LINE KEY: the value of KEY=... in a key=value line
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
# json_num KEY: the first numeric value of "KEY" in the JSON on stdin
json_num() { sed -n "s/.*\"$1\":\(-\{0,1\}[0-9][0-9]*\).*/\1/p" | head -n 1; }
num() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
wait_http() { # wait_http URL SECONDS: until URL answers 200
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

# ---- build -------------------------------------------------------------
targets=(loadgen ceiling idle_keepalive)
[ "$external" = 1 ] || targets+=(command-api query-api smpost-devbroker seed_store smpost-token)
if [ ! -f "$build/CMakeCache.txt" ]; then # a first build: as scripts/run.sh does
  "$root/scripts/bootstrap.sh" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; die "scripts/bootstrap.sh failed"; }
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSMPOST_BUILD_TESTS=OFF \
    >>"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; die "cmake configure failed"; }
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >>"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; die "build failed (log above)"; }
lg="$build/bench/loadgen"
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "smpost bench: $(nproc) CPU ($cpu), Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build $build_type ($build); ${secs} s per phase after ${warm} s warm-up;" \
     "$conns connections; $posts posts by $authors authors"

# run_lg NAME ARGS...: runs loadgen; its result line goes to $line (and its
# whole output to $work/lg-NAME.out, its latency distribution to
# $work/pct-NAME.txt); a failure is noted, not fatal
run_lg() {
  local name="$1"
  shift
  "$lg" --name "$name" --pct-out "$work/pct-$name.txt" "$@" >"$work/lg-$name.out" \
    2>"$work/lg-$name.err" ||
    note_failure "$name: $(tail -n 1 "$work/lg-$name.err")"
  line="$(head -n 1 "$work/lg-$name.out")"
}

# ---- (a) the ceiling ---------------------------------------------------
port=$(free_port)
"$build/bench/ceiling" --port "$port" 2>"$work/ceiling.log" &
ceiling_pid=$!
pids+=("$ceiling_pid")
wait_http "http://127.0.0.1:$port/" 10 || die "bench/ceiling did not start ($work/ceiling.log)"
run_lg ceiling -c "$conns" -d "$secs" -w "$warm" "http://127.0.0.1:$port" get
r_ceiling="$line"
stop_pid "$ceiling_pid" KILL # holds no data; TERM would wait out civetweb's 2 s poll

# ---- the stack -----------------------------------------------------------
kafka_dir="$work/kafka"
query_kafka=() # query-api's extra Kafka settings
start_broker() { # sets bootstrap and broker_what
  local i line
  if [ "$kafka" = real ]; then
    kafka_up=1 # from here on, stop it whatever happens
    line="$("$root/scripts/kafka.sh" start "$kafka_dir" 2>"$work/kafka-start.log" | tail -n 1)" ||
      { cat "$work/kafka-start.log" >&2; die "scripts/kafka.sh could not start the broker"; }
    bootstrap="${line#KAFKA_BOOTSTRAP_SERVERS=}"
    [ -n "$bootstrap" ] && [ "$bootstrap" != "$line" ] ||
      { cat "$work/kafka-start.log" >&2; die "scripts/kafka.sh printed no KAFKA_BOOTSTRAP_SERVERS"; }
    broker_what="real Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' \
      "$root/scripts/kafka/pom.xml") ($(sed -n 's/^kafka.sh: broker up in \([0-9]*\) s.*/up in \1 s/p' \
      "$work/kafka-start.log"), ${KAFKA_PARTITIONS:-6} partitions)"
    broker_what+=", query-api with its default fetch.wait.max.ms (100 ms, common/bus.c)"
    query_kafka=()
    return 0
  fi
  "$build/tools/smpost-devbroker" >"$work/broker.out" 2>"$work/broker.log" &
  broker_pid=$!
  pids+=("$broker_pid")
  for i in $(seq 100); do grep -q '^SMPOST_KAFKA_BOOTSTRAP=' "$work/broker.out" && break; sleep 0.1; done
  bootstrap="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
  [ -n "$bootstrap" ] || die "the local broker did not start ($work/broker.log)"
  broker_what="smpost-devbroker (librdkafka's mock cluster), query-api with fetch.wait.max.ms=10"
  # the local broker holds each fetch for the full wait: keep it short (as scripts/run.sh)
  query_kafka=(--kafka-config fetch.wait.max.ms=10)
}
start_stack() {
  start_broker
  local cport qport
  cport=$(free_port)
  qport=$(free_port)
  KAFKA_BOOTSTRAP_SERVERS="$bootstrap" "$build/command-api/command-api" --port "$cport" \
    --event-store "sqlite:$work/events.db" 2>"$work/command-api.log" &
  command_pid=$!
  pids+=("$command_pid")
  KAFKA_BOOTSTRAP_SERVERS="$bootstrap" "$build/query-api/query-api" --port "$qport" \
    --read-model "sqlite:$work/readmodel.db" ${query_kafka[@]+"${query_kafka[@]}"} \
    2>"$work/query-api.log" &
  query_pid=$!
  pids+=("$query_pid")
  cmd_url="http://127.0.0.1:$cport"
  query_url="http://127.0.0.1:$qport"
  wait_http "$cmd_url/health" 30 || die "command-api did not become healthy ($work/command-api.log)"
  wait_http "$query_url/health" 30 || die "query-api did not become healthy ($work/query-api.log)"
}

# wait_drained NAME: waits until the outbox is empty and the projection has
# applied everything; sets NAME_backlog to the events it applied meanwhile
# and NAME_rate to the rate (its catch-up rate with nothing else running;
# the 0.6 s spent confirming the end is included). Against external services
# this needs them to be otherwise idle.
wait_drained() {
  local i u q l a a0 a1 t0 t1 prev="" seen=0
  a0="$(curl -s "$query_url/health" | json_num applied)"
  t0="$(date +%s.%N)"
  # Drained: outbox empty, consumer lag 0 and the applied count unchanged,
  # three readings in a row 0.2 s apart (the lag comes from watermarks the
  # consumer learns with each fetch, so one reading of 0 may be stale).
  for ((i = 0; i < 600 && seen < 3; i++)); do
    u="$(curl -s "$cmd_url/health" | json_num unpublished)"
    q="$(curl -s "$query_url/health")"
    l="$(json_num lag <<<"$q")"
    a="$(json_num applied <<<"$q")"
    if [ "$u" = 0 ] && [ "$l" = 0 ] && [ "$a" = "$prev" ]; then seen=$((seen + 1)); else seen=0; fi
    prev="$a"
    sleep 0.2
  done
  a1="$(curl -s "$query_url/health" | json_num applied)"
  t1="$(date +%s.%N)"
  [ "$u" = 0 ] && [ "$l" = 0 ] ||
    note_failure "drain: outbox ${u:-?} unpublished, consumer lag ${l:-?} after 120 s"
  printf -v "$1_backlog" '%s' "$((${a1:-0} - ${a0:-0}))"
  printf -v "$1_rate" '%s' "$(awk -v n="$((${a1:-0} - ${a0:-0}))" -v a="$t0" -v b="$t1" \
    'BEGIN { printf "%.0f", (n > 0 && b > a ? n / (b - a) : 0) }')"
}

if [ "$external" = 0 ]; then
  start_stack
  echo "broker: $broker_what"
else
  wait_http "$cmd_url/health" 10 || die "no healthy command API at $cmd_url"
  wait_http "$query_url/health" 10 || die "no healthy query API at $query_url"
  kafka=external
fi
run_id="b$(date +%s)$$"

# The consumer joins its group in the first seconds: wait until one post
# is seen end to end before measuring anything.
new_post() { # new_post AUTHOR: creates a post, prints its id (or fails)
  local id
  id="$(curl -s -X POST "$cmd_url/api/v1/NewPost" -H 'Content-Type: application/json' \
        -d "{\"author\":\"$1\",\"message\":\"bench\"}" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
  [ -n "$id" ] || die "NewPost failed on $cmd_url"
  echo "$id"
}
t_up="$(date +%s%N)"
first="$(new_post "$run_id-warm")"
seen=0
for i in $(seq 30); do # each try waits up to SMPOST_MIN_VERSION_WAIT_MS (2 s)
  headers="$(curl -s -D - -o /dev/null "$query_url/api/v1/PostLookup/byId/$first?minVersion=0")"
  if grep -q '^HTTP/1.1 200' <<<"$headers" && ! grep -qi '^X-Read-Model-Stale' <<<"$headers"; then
    seen=1
    break
  fi
  sleep 0.1
done
[ "$seen" = 1 ] || die "the query side did not show a new post within a minute"
first_visible_ms=$((($(date +%s%N) - t_up) / 1000000))

# The posts of the like/byId/byAuthor phases (POSTS/AUTHORS each), projected
# before use.
run_lg seed-posts -c "$conns" -n "$posts" --rr --authors "$authors" \
  --author-prefix "$run_id-a" --ids-out "$work/ids.txt" "$cmd_url" newpost
[ "$(wc -l <"$work/ids.txt")" -eq "$posts" ] || die "seeding made $(wc -l <"$work/ids.txt") posts, not $posts"
wait_drained drain_seed
run_lg seed-visible -c "$conns" -n "$posts" --rr --ids "$work/ids.txt" --min-version 0 \
  --expect 200 "$query_url" byid

perf_start() { # perf_start NAME PID
  [ -n "$perf_dir" ] && [ "$external" = 0 ] || return 0
  mkdir -p "$perf_dir"
  perf record -g -o "$perf_dir/$1.data" -p "$2" -- sleep "$secs" >/dev/null 2>&1 &
  perf_pid=$!
}
perf_wait() { [ -z "${perf_pid:-}" ] || wait "$perf_pid" 2>/dev/null || true; perf_pid=""; }

# ---- (b) commands ----------------------------------------------------------
run_lg newpost -c "$conns" -d "$secs" -w "$warm" --authors 1000 \
  --author-prefix "$run_id-n" "$cmd_url" newpost
r_newpost="$line"
wait_drained drain_newpost
[ "$external" = 1 ] || perf_start command-like "$command_pid"
run_lg like -c "$conns" -d "$secs" -w "$warm" --ids "$work/ids.txt" "$cmd_url" like
r_like="$line"
perf_wait
wait_drained drain_like

# ---- hot post: every connection likes ONE post ------------------------------------
# hot_phase: like as above, all $conns connections on the first seeded post
# (their commands queue on one post and go to the store in batches,
# docs/architecture.md); sets r_hot. Then hot_drain_ms: from the end of the
# phase until the query side shows the post at the version the command side
# has stored (so every acknowledged like; minVersion polls, each answered as
# soon as the projection reaches it); then the rest of the backlog drains.
hot_phase() {
  local id v t_end i headers
  id="$(head -n 1 "$work/ids.txt")"
  echo "$id" >"$work/hot-id.txt"
  run_lg hot -c "$conns" -d "$secs" -w "$warm" --ids "$work/hot-id.txt" "$cmd_url" like
  r_hot="$line"
  t_end="$(date +%s%N)"
  v="$(curl -s "$cmd_url/api/v1/PostAt/$id?at=9999-12-31T00:00:00Z" | json_num version)" # the latest
  hot_drain_ms=x
  [ -n "$v" ] || { note_failure "hot: PostAt/$id gave no version"; return 0; }
  for ((i = 0; i < 300; i++)); do # each try waits up to SMPOST_MIN_VERSION_WAIT_MS (2 s)
    headers="$(curl -s -D - -o /dev/null "$query_url/api/v1/PostLookup/byId/$id?minVersion=$v")"
    if grep -q '^HTTP/1.1 200' <<<"$headers" && ! grep -qi '^X-Read-Model-Stale' <<<"$headers"; then
      hot_drain_ms=$((($(date +%s%N) - t_end) / 1000000))
      break
    fi
  done
  [ "$hot_drain_ms" != x ] || note_failure "hot: the query side did not reach version $v of $id"
  hot_version="$v"
  wait_drained drain_hot
}
hot_phase

# ---- (c) queries -------------------------------------------------------------
[ "$external" = 1 ] || perf_start query-byid "$query_pid"
run_lg byid -c "$conns" -d "$secs" -w "$warm" --ids "$work/ids.txt" --expect 200 \
  "$query_url" byid
r_byid="$line"
perf_wait
run_lg byauthor -c "$conns" -d "$secs" -w "$warm" --authors "$authors" \
  --author-prefix "$run_id-a" --expect 200 "$query_url" byauthor
r_byauthor="$line"
run_lg byauthor_gzip -c "$conns" -d "$secs" -w "$warm" --authors "$authors" \
  --author-prefix "$run_id-a" --expect 200 --header "Accept-Encoding: gzip" "$query_url" byauthor
r_byauthor_gzip="$line"

# ---- idle keep-alive connections ---------------------------------------------
# New requests while many connections sit idle: each idle one holds a
# civetweb worker (docs/operations.md, "HTTP connections").
"$build/bench/idle_keepalive" --name idle -i "$idle_conns" -n "$idle_samples" "$cmd_url" \
  >"$work/idle.out" 2>"$work/idle.err" ||
  note_failure "idle keep-alive: $(cat "$work/idle.out" "$work/idle.err" | tail -n 1)"
r_idle="$(head -n 1 "$work/idle.out")"

# ---- (d) projection lag at a fixed offered load ------------------------------
run_lg lag -r "$lag_rate" -d "$secs" -w 1 -c 16 --query-conns 24 --lag-every 5 \
  --ids "$work/ids.txt" --authors 1000 --author-prefix "$run_id-l" \
  --lag-series "$work/lagseries-lag.txt" --lag "$query_url" "$cmd_url" newpost,like
r_lag="$line"

# ---- sustained lag: open loop at half the run's new-post rate -----------------
# The lag phase's load and probes (new posts and likes in turn, a probe after
# every 5th 2xx), offered at newpost_rps / 2 for SMPOST_BENCH_SUSTAINED_SECONDS
# (30 s; smoke 3 s): whether the projection keeps up with a load the command
# side sustains easily. Reported as sustained_lag_p99_ms (target < 100).
sustained_phase() {
  local rate
  rate="$(awk -v r="$(kv "$r_newpost" rps)" 'BEGIN { r = int(r / 2); print (r > 0 ? r : 1) }')"
  sustained_rate="$rate"
  run_lg sustained -r "$rate" -d "$sustained_secs" -w 1 -c 16 --query-conns 24 --lag-every 5 \
    --ids "$work/ids.txt" --authors 1000 --author-prefix "$run_id-s" \
    --lag-series "$work/lagseries-sustained.txt" --lag "$query_url" "$cmd_url" newpost,like
  r_sustained="$line"
}
sustained_secs="${SMPOST_BENCH_SUSTAINED_SECONDS:-$([ "$smoke" = 1 ] && echo 3 || echo 30)}"
sustained_phase

# ---- peak resident memory ------------------------------------------------------
# VmHWM (the kernel's high-water mark of the resident set) of each service
# process, in MB, read before a process is stopped and at the end; the
# largest reading per service is rss_command_mb / rss_query_mb (targets:
# 200 and 100 MB). Only for services this run started.
rss_command_mb=skipped
rss_query_mb=skipped
rss_sample() { # rss_sample PID VAR: VAR = max(VAR, VmHWM of PID in MB)
  local kb
  kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" || return 0
  [ -n "$kb" ] || return 0
  local mb=$(((kb + 1023) / 1024))
  if ! num "${!2}" || [ "$mb" -gt "${!2}" ]; then printf -v "$2" '%s' "$mb"; fi
}
if [ "$external" = 0 ]; then # both services have seen every load phase by now
  rss_sample "$command_pid" rss_command_mb
  rss_sample "$query_pid" rss_query_mb
fi

# ---- new posts with bearer tokens (SMPOST_AUTH=jwt) ---------------------------
# command-api restarted on the same event store and broker, tokens required;
# one token per connection, each a user of its own. The verifier checks a
# token's signature once and then finds it in its cache (until exp), so
# this is the steady cost of auth on the request path: header parsing, the
# cache lookup, the identity bound to the command (bench/auth_verify times
# the signature checks themselves).
if [ "$external" = 0 ]; then
  mkdir -m 700 "$work/auth"
  "$build/tools/smpost-token" --gen-key "$work/auth" >/dev/null 2>"$work/auth.log" ||
    die "smpost-token --gen-key failed: $(cat "$work/auth.log")"
  : >"$work/tokens.txt"
  for ((i = 0; i < conns; i++)); do
    "$build/tools/smpost-token" --key "$work/auth/dev-key.pem" --sub "$run_id-u$i" \
      --name "$run_id-u$i" --ttl 3600 >>"$work/tokens.txt" 2>>"$work/auth.log" ||
      die "smpost-token failed: $(cat "$work/auth.log")"
  done
  rss_sample "$command_pid" rss_command_mb
  stop_pid "$command_pid" # TERM: the relay flushes and lets its lease go
  cport=$(free_port)
  KAFKA_BOOTSTRAP_SERVERS="$bootstrap" SMPOST_AUTH=jwt SMPOST_JWKS_FILE="$work/auth/jwks.json" \
    SMPOST_JWT_ISSUER=smpost-dev SMPOST_JWT_AUDIENCE=smpost "$build/command-api/command-api" \
    --port "$cport" --event-store "sqlite:$work/events.db" 2>"$work/command-api-auth.log" &
  command_pid=$!
  pids+=("$command_pid")
  cmd_url="http://127.0.0.1:$cport"
  wait_http "$cmd_url/health" 30 || die "command-api with auth did not become healthy ($work/command-api-auth.log)"
  run_lg newpost-auth -c "$conns" -d "$secs" -w "$warm" --tokens "$work/tokens.txt" \
    "$cmd_url" newpost
  r_newpost_auth="$line"
  wait_drained drain_auth
fi

# ---- catch-up: a backlog applied by a fresh query-api --------------------------
# phase_catchup: sets catchup_eps, catchup_n and catchup_ms. The topic holds
# every event of the run so far (the main query-api applied them all:
# wait_drained); new posts top it up to catchup_events. A second query-api
# with an empty read model and a group of its own then starts at offset 0
# with the whole topic as its backlog; the clock runs from its first applied
# event (so the group join is not counted) until its lag is 0 and its count
# stops moving, its /health read every 50 ms. Counted: applied events and
# gaps. smpost-devbroker (librdkafka's mock cluster) prunes a partition's
# oldest messages once it holds more than a few MB, so the fresh consumer
# starts at the log's start, not at the run's first event: posts whose
# first events were pruned show their later ones as gaps.
phase_catchup() {
  local have qport url a t t_first="" t_last="" i n=0 n0=0 target
  have="$(curl -s "$query_url/health" | json_num applied)"
  if [ "${have:-0}" -lt "$catchup_events" ]; then
    run_lg catchup-fill -c "$conns" -n $((catchup_events - ${have:-0})) --authors 1000 \
      --author-prefix "$run_id-k" "$cmd_url" newpost
    wait_drained drain_catchup_fill
    have="$(curl -s "$query_url/health" | json_num applied)"
  fi
  target="${have:-0}"
  qport=$(free_port)
  KAFKA_BOOTSTRAP_SERVERS="$bootstrap" "$build/query-api/query-api" --port "$qport" \
    --read-model "sqlite:$work/readmodel-catchup.db" --kafka-group "smpost-bench-catchup-$run_id" \
    ${query_kafka[@]+"${query_kafka[@]}"} 2>"$work/query-api-catchup.log" &
  catchup_pid=$!
  pids+=("$catchup_pid")
  url="http://127.0.0.1:$qport"
  wait_http "$url/health" 30 || die "query-api (catch-up) did not become healthy ($work/query-api-catchup.log)"
  # At most catchup_limit s after the first applied event: a slow catch-up
  # is a finding (the rate so far is reported), not a reason to wait on.
  local limit_ns=$((catchup_limit * 1000000000))
  catchup_done=yes
  local h l g prev=-1
  for ((i = 0; ; i++)); do
    h="$(curl -s "$url/health")"
    t="$(date +%s%N)"
    a="$(json_num applied <<<"$h")" g="$(json_num gaps <<<"$h")" l="$(json_num lag <<<"$h")"
    a=$((${a:-0} + ${g:-0})) # handled: a gap costs a version read, as a duplicate does
    echo "$t $a ${l:-x}" >>"$work/catchup-trace.txt"
    if [ "$a" -gt 0 ] && [ -z "$t_first" ]; then t_first="$t" n0="$a"; fi
    if [ "$a" != "$prev" ] && [ "$a" -gt 0 ]; then t_last="$t" n="$a"; fi
    # done: nothing left to read and nothing more applied since the last reading
    if [ -n "$t_first" ] && [ "${l:-1}" = 0 ] && [ "$a" = "$prev" ]; then break; fi
    prev="$a"
    if [ -n "$t_first" ] && [ $((t - t_first)) -ge "$limit_ns" ]; then catchup_done=no; break; fi
    [ -n "$t_first" ] || [ "$i" -lt 1200 ] || break # nothing applied in a minute
    sleep 0.05
  done
  catchup_gaps="${g:-0}"
  stop_pid "$catchup_pid" KILL # a throwaway read model
  if [ -z "$t_first" ] || [ "$t_last" = "$t_first" ]; then
    note_failure "catch-up: ${a:-0} of $target events applied"
    catchup_eps=x catchup_n="${a:-0}" catchup_ms=x
    return 0
  fi
  # events applied between the two readings, over the time between them
  catchup_n=$((n - n0))
  catchup_ms=$(((t_last - t_first) / 1000000))
  catchup_eps="$(awk -v n="$catchup_n" -v ms="$catchup_ms" 'BEGIN { printf "%.0f", n * 1000 / ms }')"
  catchup_target="$target"
}
catchup_eps=skipped
[ "$external" = 1 ] || phase_catchup

# ---- like cost against stream length -----------------------------------------
target_p50() { sed -n "s/^loadgen_target name=$1 .*id=$2 .*p50_ms=\([^ ]*\).*/\1/p" "$work/lg-$1.out"; }
# cost_likes NAME: the first like on each post (after a start), then
# SAMPLES timed likes on each in turn; sets NAME_short, NAME_long (medians)
# and NAME_first (the first likes)
cost_likes() {
  local short long
  short="$(sed -n 1p "$work/cost-ids.txt")"
  long="$(sed -n 2p "$work/cost-ids.txt")"
  run_lg "$1-first" -c 1 -n 2 --rr --by-target --ids "$work/cost-ids.txt" "$cost_url" like
  run_lg "$1" -c 1 -n $((2 * cost_samples)) --rr --by-target --ids "$work/cost-ids.txt" \
    "$cost_url" like
  printf -v "$1_short" '%s' "$(target_p50 "$1" "$short")"
  printf -v "$1_long" '%s' "$(target_p50 "$1" "$long")"
  printf -v "$1_first" '%s / %s' "$(target_p50 "$1-first" "$short")" "$(target_p50 "$1-first" "$long")"
}
# cost_server NAME ARGS...: a command-api without Kafka on the seeded store
# ($cost_store)
cost_store="sqlite:$work/cost.db"
cost_server() {
  local name="$1" port
  shift
  port=$(free_port)
  "$build/command-api/command-api" --port "$port" --event-store "$cost_store" \
    --kafka-bootstrap none "$@" 2>"$work/command-api-$name.log" &
  cost_pid=$!
  pids+=("$cost_pid")
  cost_url="http://127.0.0.1:$port"
  wait_http "$cost_url/health" 30 || die "command-api ($name) did not start ($work/command-api-$name.log)"
}
variants=""
if [ "$external" = 0 ]; then
  stop_all
  [ "$kafka" != real ] || broker_pid_note="; the broker's JVM used $kafka_cpu_s CPU seconds (counted as this run's) until it was stopped before the like cost phase"
  "$build/bench/seed_store" "$cost_store" 10 "$cost_events" >"$work/cost-ids.txt" \
    2>"$work/seed.log" || die "seed_store failed: $(cat "$work/seed.log")"
  cost_server cost
  cost_likes cost
  stop_pid "$cost_pid" KILL # a throwaway store; TERM would wait out civetweb's 2 s poll
  # the same store without the aggregate cache (snapshot + tail on every
  # like), then without snapshots either (every like folds the whole stream)
  cost_server nocache --aggregate-cache-mb 0
  cost_likes nocache
  stop_pid "$cost_pid" KILL
  cost_server full --aggregate-cache-mb 0 --snapshot-every 0
  cost_likes full
  stop_pid "$cost_pid" KILL
  variants="nocache full"
else
  # no direct store access: write the long stream through HTTP
  cost_url="$cmd_url"
  : >"$work/cost-ids.txt"
  for n in 10 "$cost_events"; do
    id="$(new_post "$run_id-c")"
    echo "$id" >"$work/one-id.txt"
    [ "$n" -le 1 ] || run_lg cost-fill -c "$conns" -n $((n - 1)) --ids "$work/one-id.txt" \
      "$cost_url" like
    echo "$id" >>"$work/cost-ids.txt"
  done
  cost_likes cost
fi

# ---- the command side on the MongoDB adapter (--event-store mongodb) -------------
# mongo_db URL DB: URL with its database replaced by DB (its options kept)
mongo_db() { sed -E "s#^(mongodb://[^/?]+)(/[^?]*)?(\?.*)?\$#\1/$2\3#" <<<"$1"; }
if [ "$store" = mongodb ]; then
  stop_all
  mongo_url="${SMPOST_BENCH_MONGO_URL:-}"
  if [ -n "$mongo_url" ]; then
    mongo_what="MongoDB at $mongo_url"
  else
    mongo_dir="$work/mongo"
    line="$("$root/scripts/mongo.sh" start "$mongo_dir" 2>"$work/mongo-start.log" | tail -n 1)" ||
      { cat "$work/mongo-start.log" >&2; die "scripts/mongo.sh could not start FerretDB"; }
    mongo_url="${line#SMPOST_EVENT_STORE=}"
    mongo_what="FerretDB $(sed -n 's/^mongo.sh: FerretDB \(v[^ ]*\) up in \([0-9]*\) ms.*/\1 on SQLite (up in \2 ms)/p' \
      "$work/mongo-start.log")"
  fi
  mongo_db_name="smpost_bench_${run_id}"
  port=$(free_port)
  "$build/command-api/command-api" --port "$port" --kafka-bootstrap none \
    --event-store "$(mongo_db "$mongo_url" "$mongo_db_name")" 2>"$work/command-api-mongo.log" &
  mongo_pid=$!
  pids+=("$mongo_pid")
  mongo_cmd="http://127.0.0.1:$port"
  wait_http "$mongo_cmd/health" 30 || die "command-api on $mongo_what did not start ($work/command-api-mongo.log)"
  run_lg mongo-seed-posts -c "$conns" -n "$posts" --rr --authors "$authors" \
    --author-prefix "$run_id-ma" --ids-out "$work/mongo-ids.txt" "$mongo_cmd" newpost
  # likes first: on FerretDB every like reads the whole collection, so it
  # runs on the seeded posts alone rather than after thousands of new ones
  run_lg mongo-like -c "$conns" -d "$secs" -w "$warm" --ids "$work/mongo-ids.txt" "$mongo_cmd" like
  r_mlike="$line"
  run_lg mongo-newpost -c "$conns" -d "$secs" -w "$warm" --authors 1000 \
    --author-prefix "$run_id-mn" "$mongo_cmd" newpost
  r_mnewpost="$line"
  stop_pid "$mongo_pid" KILL
  cost_store="$(mongo_db "$mongo_url" "${mongo_db_name}_cost")"
  "$build/bench/seed_store" --batch "${SMPOST_BENCH_SEED_BATCH:-1}" "$cost_store" 10 \
    "$mongo_cost_events" >"$work/cost-ids.txt" 2>"$work/seed-mongo.log" ||
    die "seed_store on $mongo_what failed: $(tail -n 1 "$work/seed-mongo.log")"
  cost_server mcost
  cost_likes mcost
  stop_pid "$cost_pid" KILL
fi

# ---- the table -------------------------------------------------------------------
calc() { # calc AWK_EXPR A B: a number, or x when A or B is not one
  num "$2" && num "$3" && awk -v a="$2" -v b="$3" "BEGIN { $1 }" || echo x
}
ceiling="$(kv "$r_ceiling" rps)"
pct() { calc 'printf "%.1f%%", (b > 0 ? 100 * a / b : 0)' "$1" "$ceiling"; }
# verdict VALUE OP LIMIT (OP: >=, <=, <): met / MISSED; a missed target is a finding, not a failure
verdict() {
  num "$1" || { echo n/a; return; }
  awk -v a="$1" -v b="$3" -v op="$2" \
    'BEGIN { ok = op == ">=" ? a >= b : op == "<=" ? a <= b : a < b; print (ok ? "met" : "MISSED") }'
}
fmt='%-16s %10s %9s %9s %9s  %-9s %s\n'
row() { # row NAME RESULT [MIN_RATIO]
  local rps target="" v=""
  rps="$(kv "$2" rps)"
  if [ -n "${3:-}" ]; then
    target=">= $(calc 'printf "%.0f%%", 100 * a' "$3" 0)"
    v="$(verdict "$(calc 'printf "%.4f", (b > 0 ? a / b : 0)' "$rps" "$ceiling")" ">=" "$3")"
  fi
  printf "$fmt" "$1" "$rps" "$(kv "$2" p50_ms)" "$(kv "$2" p99_ms)" "$(pct "$rps")" "$target" "$v"
}
lag_p50="$(kv "$r_lag" lag_p50_ms)"
lag_p99="$(kv "$r_lag" lag_p99_ms)"
cost_ratio="$(calc 'printf "%.2f", (b > 0 ? a / b : 0)' "$cost_long" "$cost_short")"
echo
printf "$fmt" phase "req/s" "p50 ms" "p99 ms" "% ceiling" target verdict
row "ceiling" "$r_ceiling"
row "new post" "$r_newpost" 0.30
[ "$external" = 1 ] || row "new post (auth)" "$r_newpost_auth"
row "like" "$r_like" 0.30
row "like, one post" "$r_hot"
row "query by id" "$r_byid" 0.60
row "query by author" "$r_byauthor"
row "query by author, gzip" "$r_byauthor_gzip"
printf "$fmt" "projection lag" "@$lag_rate" "$lag_p50" "$lag_p99" "$(pct "$lag_rate")" "p99 < 50" \
  "$(verdict "$lag_p99" "<" 50)"
printf "$fmt" "like cost" "10/${cost_events}" "$cost_short" "$cost_long" "${cost_ratio}x" "<= 1.5x" \
  "$(verdict "$cost_ratio" "<=" 1.5)"
idle_p50="$(kv "$r_idle" p50_ms)"
idle_p99="$(kv "$r_idle" p99_ms)"
printf "$fmt" "idle keep-alive" "$idle_conns idle" "$idle_p50" "$idle_p99" "" "p99 < 100" \
  "$(verdict "$idle_p99" "<" 100)"
if [ "$store" = mongodb ]; then
  mcost_ratio="$(calc 'printf "%.2f", (b > 0 ? a / b : 0)' "$mcost_long" "$mcost_short")"
  row "mongo new post" "$r_mnewpost"
  row "mongo like" "$r_mlike"
  printf "$fmt" "mongo like cost" "10/${mongo_cost_events}" "$mcost_short" "$mcost_long" \
    "${mcost_ratio}x" "" ""
fi
echo
echo "closed loops with $conns connections; by author: $((posts / authors)) posts an author." \
     "Lag: offered $lag_rate commands/s (new posts and likes in turn), $(kv "$r_lag" lag_samples)" \
     "probes, max $(kv "$r_lag" lag_max_ms) ms; the commands' p99 $(kv "$r_lag" p99_ms) ms," \
     "$(kv "$r_lag" queued) waited for a connection; % ceiling = offered rate."
echo "by author answers: $(kv "$r_byauthor" body_bytes_avg) bytes as JSON," \
     "$(kv "$r_byauthor_gzip" body_bytes_avg) bytes gzip-compressed (Accept-Encoding: gzip)."
catch_up() { # catch_up BACKLOG RATE
  if [ "$1" -lt 200 ]; then echo "kept up (backlog $1)"; else echo "$1 events at $2 events/s"; fi
}
echo "Projection backlog after each write phase, applied with nothing else running:" \
     "new posts $(catch_up "$drain_newpost_backlog" "$drain_newpost_rate")," \
     "likes $(catch_up "$drain_like_backlog" "$drain_like_rate")."
echo "Idle keep-alive: $idle_conns connections to command-api answered once each and left idle" \
     "($(kv "$r_idle" held) still open at the end), then $idle_samples GET /health one at a" \
     "time, each on a fresh connection: connect to the whole answer, max $(kv "$r_idle" max_ms) ms."
if [ "$external" = 0 ]; then
  auth_ratio="$(calc 'printf "%.2f", (b > 0 ? a / b : 0)' "$(kv "$r_newpost_auth" rps)" \
    "$(kv "$r_newpost" rps)")"
  echo "New post with auth: $(kv "$r_newpost_auth" rps) req/s with SMPOST_AUTH=jwt and one token" \
       "per connection ($conns users), ${auth_ratio} x new post without: target >= 0.8 x," \
       "$(verdict "$auth_ratio" ">=" 0.8)."
fi
if [ "$catchup_eps" != skipped ]; then
  catchup_ratio="$(calc 'printf "%.2f", (b > 0 ? a / b : 0)' "$catchup_eps" "$(kv "$r_newpost" rps)")"
  echo "Catch-up: a fresh query-api, on a backlog of ${catchup_target:-?} events, applied" \
       "$catchup_n events ($catchup_gaps of them gaps: pruned by the broker) in $catchup_ms ms after its first ($([ "$catchup_done" = yes ] &&
       echo all of them || echo "stopped at the ${catchup_limit} s limit")): $catchup_eps events/s," \
       "${catchup_ratio} x new post:" \
       "target >= 3 x, $(verdict "$catchup_ratio" ">=" 3)."
fi
hot_ratio="$(calc 'printf "%.2f", (b > 0 ? a / b : 0)' "$(kv "$r_hot" rps)" "$(kv "$r_like" rps)")"
echo "Like, one post: $conns connections on one post, ${hot_ratio} x like (on $posts posts):" \
     "target >= 0.5 x, $(verdict "$hot_ratio" ">=" 0.5); the query side showed its last" \
     "version (${hot_version:-?}) ${hot_drain_ms} ms after the phase ended: target < 1000," \
     "$(verdict "$hot_drain_ms" "<" 1000)."
echo "Like cost: median of $cost_samples likes on one connection, p50 column on a post of ~10" \
     "events, p99 column on one of ~$cost_events; the first like after a start: $cost_first ms."
if [ "$store" = mongodb ]; then
  ok_of() { local v; v="$(kv "$1" ok)"; echo "${v:-0}"; }
  echo "mongo rows: the MongoDB adapter on $mongo_what, a command-api without Kafka (no relay);" \
       "likes first, on the $posts seeded posts, $((posts + $(ok_of "$r_mlike"))) events after" \
       "them, then new posts, $((posts + $(ok_of "$r_mlike") + $(ok_of "$r_mnewpost"))) events" \
       "after those (warm-ups not counted); like cost on a post of ~10 and one of" \
       "~$mongo_cost_events events in a database of their own, the first like $mcost_first ms."
fi
for v in $variants; do
  vs="${v}_short" vl="${v}_long" vf="${v}_first"
  case "$v" in
    nocache) what="aggregate cache off (snapshot + tail)" ;;
    *) what="cache and snapshots off (the whole stream)" ;;
  esac
  echo "  $what: ${!vs} / ${!vl} ms, ratio $(calc 'printf "%.2f", (b > 0 ? a / b : 0)' \
    "${!vl}" "${!vs}")x; the first like ${!vf} ms"
done
# What else ran: the machine's busy time minus this script's and its
# (already reaped) children's, as a share of all CPUs over the run.
elapsed=$(($(date +%s) - started))
times >"$work/times" # a builtin in this shell: not in a pipe, whose subshell has no children
ours="$(awk -v k="$kafka_cpu_s" '{ for (i = 1; i <= NF; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } }
             END { print s + k }' "$work/times")" # the real broker's JVM is ours too
others="$(awk -v b="$(($(busy_jiffies) - busy0))" -v o="$ours" -v hz="$(getconf CLK_TCK)" \
  -v e="$elapsed" -v n="$(nproc)" 'BEGIN { x = (b / hz - o) / (e * n); printf "%.0f%%", (x > 0 ? 100 * x : 0) }')"
echo "Broker: ${broker_what:-that of the services named}; the first post was shown by the query side" \
     "$first_visible_ms ms after both services answered /health (the consumer's first group" \
     "join, mostly)${broker_pid_note:-}."
echo "elapsed $elapsed s; other processes used about $others of the CPUs meanwhile" \
     "(the load average counts this run too)${failures[0]:+; FAILURES: ${failures[*]}}"

if [ "$external" = 0 ]; then
  running "$command_pid" && rss_sample "$command_pid" rss_command_mb
  running "$query_pid" && rss_sample "$query_pid" rss_query_mb
fi
sustained_p99="$(kv "$r_sustained" lag_p99_ms)"
printf "$fmt" "sustained lag" "@${sustained_rate}" "$(kv "$r_sustained" lag_p50_ms)" \
  "${sustained_p99:-x}" "$(pct "$sustained_rate")" "p99 < 100" \
  "$(verdict "${sustained_p99:-x}" "<" 100)"
echo "Sustained: open loop at newpost_rps / 2 = $sustained_rate commands/s for $sustained_secs s," \
     "$(kv "$r_sustained" lag_samples) probes. Peak RSS (VmHWM): command-api" \
     "$rss_command_mb MB (target 200), query-api $rss_query_mb MB (target 100)."

rps_int() { num "$1" && printf '%.0f' "$1" || echo x; }
result="RESULT ceiling_rps=$(rps_int "$ceiling") newpost_rps=$(rps_int "$(kv "$r_newpost" rps)")"
result+=" like_rps=$(rps_int "$(kv "$r_like" rps)") byid_rps=$(rps_int "$(kv "$r_byid" rps)")"
result+=" byauthor_rps=$(rps_int "$(kv "$r_byauthor" rps)")"
result+=" byauthor_gzip_rps=$(rps_int "$(kv "$r_byauthor_gzip" rps)")"
result+=" byauthor_bytes=$(kv "$r_byauthor" body_bytes_avg)"
result+=" byauthor_gzip_bytes=$(kv "$r_byauthor_gzip" body_bytes_avg) lag_p50_ms=${lag_p50:-x}"
result+=" lag_p99_ms=${lag_p99:-x} like_cost_ratio_100k_vs_10=${cost_ratio}"
result+=" idle_p50_ms=${idle_p50:-x} idle_p99_ms=${idle_p99:-x} first_visible_ms=$first_visible_ms"
if [ "$store" = mongodb ]; then
  result+=" mongo_newpost_rps=$(rps_int "$(kv "$r_mnewpost" rps)")"
  result+=" mongo_like_rps=$(rps_int "$(kv "$r_mlike" rps)") mongo_like_cost_ratio=${mcost_ratio}"
fi
# every figure must be a number, else the benchmark is broken
for pair in ${result#RESULT }; do
  num "${pair#*=}" || note_failure "figure ${pair%%=*} is not a number (${pair#*=})"
done
# appended after the fields that came before it, so their order stays
auth_rps=skipped
if [ "$external" = 0 ]; then
  auth_rps="$(rps_int "$(kv "$r_newpost_auth" rps)")"
  num "$auth_rps" || note_failure "figure newpost_auth_rps is not a number ($auth_rps)"
fi
[ "$catchup_eps" = skipped ] || num "$catchup_eps" ||
  note_failure "figure catchup_eps is not a number ($catchup_eps)"
# issue 17's fields, after newpost_auth_rps, in the issue's order (each a
# number, or "skipped" where the run did not start the service)
hot_fields="hot_like_rps=$(rps_int "$(kv "$r_hot" rps)") hot_drain_ms=$hot_drain_ms"
for pair in $hot_fields; do
  num "${pair#*=}" || note_failure "figure ${pair%%=*} is not a number (${pair#*=})"
done
num "${sustained_p99:-x}" || note_failure "figure sustained_lag_p99_ms is not a number (${sustained_p99:-x})"
if [ "$external" = 0 ]; then
  num "$rss_command_mb" || note_failure "figure rss_command_mb is not a number ($rss_command_mb)"
  num "$rss_query_mb" || note_failure "figure rss_query_mb is not a number ($rss_query_mb)"
fi
# plots of this run (bench/plot.sh): the measured phases' latency
# distributions and the lag series, kept with their data in
# SMPOST_BENCH_PLOTS (default BUILD_DIR/bench-plots, emptied first)
plots="${SMPOST_BENCH_PLOTS:-$build/bench-plots}"
rm -rf -- "$plots" && mkdir -p -- "$plots"
for phase in ceiling newpost newpost-auth like hot byid byauthor byauthor_gzip; do
  [ ! -s "$work/pct-$phase.txt" ] || cp "$work/pct-$phase.txt" "$plots/"
done
cp "$work"/lagseries-*.txt "$plots/" 2>/dev/null || true
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
"$root/bench/plot.sh" "$plots" "$commit, $(date -u +%Y-%m-%d), kafka=$kafka" ||
  note_failure "bench/plot.sh failed"
echo "$result kafka=$kafka newpost_auth_rps=$auth_rps catchup_eps=$catchup_eps $hot_fields" \
  "sustained_lag_p99_ms=${sustained_p99:-x} rss_command_mb=$rss_command_mb rss_query_mb=$rss_query_mb"
[ "${#failures[@]}" -eq 0 ]
