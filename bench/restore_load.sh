#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/restore_load.sh — RestoreReadDb under load, as an operator meets it:
# a store of SMPOST_BENCH_RESTORE_LIKES likes over SMPOST_BENCH_RESTORE_POSTS
# posts (defaults: 36,000 over 24, the issue-17 trial), projected into the
# read model; then RestoreReadDb while LIKE_CONNS connections keep liking the
# same posts. It reports how long the query side took to apply the replay
# (its duplicate counter rising by the events republished) and to show
# every like acknowledged up to the end of the load (each post's likes in
# byId equal to the 2xx count the load generator saw for it).
#
#   bench/restore_load.sh [BUILD_DIR]
#   SMPOST_BENCH_READ_MODEL  --read-model of query-api [sqlite:<tmp>/rm.db];
#                            e.g. mssql:host=127.0.0.1;port=14330;... (Babelfish:
#                            scripts/mssql.sh start DIR PORT)
# Prints, last: RESTORE read_model=.. events=.. replay_ms=.. converge_ms=..
#   after_load_ms=.. likes_during=.. (converge_ms: from the restore request
#   until byId shows, for every post, as many likes as the event store
#   holds; after_load_ms: the same from the end of the like load; it fails
#   after 600 s rather than print a figure)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build-bench}" && pwd)"
posts="${SMPOST_BENCH_RESTORE_POSTS:-24}"
likes="${SMPOST_BENCH_RESTORE_LIKES:-36000}"
conns="${SMPOST_BENCH_RESTORE_CONNS:-8}"
load_s="${SMPOST_BENCH_RESTORE_LOAD_SECONDS:-10}"
work="$(mktemp -d /tmp/smpost-restore-XXXXXX)"
rm_url="${SMPOST_BENCH_READ_MODEL:-sqlite:$work/rm.db}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "restore_load: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
metric() { curl -s "$query_url/metrics" | awk -v k="$1" '$1 == k { printf "%d", $2 }'; }

"$build/tools/smpost-devbroker" >"$work/broker.out" 2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^SMPOST_KAFKA_BOOTSTRAP=' "$work/broker.out" && break; sleep 0.1; done
bootstrap="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
[ -n "$bootstrap" ] || die "the local broker did not start"
cport=$(free_port)
qport=$(free_port)
KAFKA_BOOTSTRAP_SERVERS="$bootstrap" "$build/command-api/command-api" --port "$cport" \
  --event-store "sqlite:$work/events.db" 2>"$work/command-api.log" &
pids+=($!)
KAFKA_BOOTSTRAP_SERVERS="$bootstrap" "$build/query-api/query-api" --port "$qport" \
  --read-model "$rm_url" --kafka-config fetch.wait.max.ms=10 2>"$work/query-api.log" &
pids+=($!)
cmd_url="http://127.0.0.1:$cport"
query_url="http://127.0.0.1:$qport"
for _ in $(seq 300); do
  curl -sf -o /dev/null "$cmd_url/health" && curl -sf -o /dev/null "$query_url/health" && break
  sleep 0.1
done
curl -sf -o /dev/null "$query_url/health" || die "the services did not start ($work)"

lg="$build/bench/loadgen"
"$lg" -c 8 -n "$posts" --rr --authors "$posts" --author-prefix "r$$-" \
  --ids-out "$work/ids.txt" "$cmd_url" newpost >/dev/null
"$lg" -c 16 -n "$likes" --rr --ids "$work/ids.txt" "$cmd_url" like >/dev/null

# shows_all: every post's likes in byId equal its count in $work/expected
shows_all() {
  local id want got
  while read -r id want; do
    got="$(curl -s "$query_url/api/v1/PostLookup/byId/$id" |
           sed -n 's/.*"likes":\([0-9]*\).*/\1/p' | head -n 1)"
    [ "${got:-x}" = "$want" ] || return 1
  done <"$work/expected"
}
# the like counts so far, per post, from the event store itself
expected_now() {
  python3 - "$work/events.db" >"$work/expected" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for pid, n in db.execute("SELECT aggregate_id, SUM(type = 'PostLikedEvent') FROM events GROUP BY aggregate_id"):
    print(pid, n)
PY
}
expected_now
t0=$(now_ms)
until shows_all; do
  [ $(( $(now_ms) - t0 )) -lt 300000 ] || die "the initial projection did not finish in 300 s"
  sleep 0.5
done
echo "restore_load: $posts posts, $likes likes projected into ${rm_url%%:*} in $(( $(now_ms) - t0 )) ms" >&2

dups0="$(metric smpost_events_duplicate_total)"
"$lg" -c "$conns" -d "$load_s" -w 0 --ids "$work/ids.txt" "$cmd_url" like >"$work/lg-load.out" &
load_pid=$!
sleep 1
t_restore=$(now_ms)
events="$(curl -s -X POST "$cmd_url/api/v1/RestoreReadDb" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')"
[ -n "$events" ] || die "RestoreReadDb failed"
replay_ms=""
while [ -z "$replay_ms" ]; do
  [ "$(metric smpost_events_duplicate_total)" -ge $((dups0 + events)) ] && replay_ms=$(( $(now_ms) - t_restore ))
  [ $(( $(now_ms) - t_restore )) -lt 600000 ] || die "the replay was not applied in 600 s"
  sleep 0.1
done
wait "$load_pid" || die "the like load failed: $(cat "$work/lg-load.out")"
t_load_end=$(now_ms)
during="$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' "$work/lg-load.out")"
expected_now
until shows_all; do
  [ $(( $(now_ms) - t_restore )) -lt 600000 ] || die "the query side did not converge in 600 s"
  sleep 0.1
done
t_end=$(now_ms)
echo "RESTORE read_model=${rm_url%%:*} events=$events replay_ms=$replay_ms" \
  "converge_ms=$((t_end - t_restore)) after_load_ms=$((t_end - t_load_end)) likes_during=$during"
