#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Ctrl-C on scripts/run.sh, as a terminal sends it: SIGINT to the whole
# foreground process group (the script and everything it started). The
# services must stop while the local broker is still there, the broker
# last: query-api commits its offsets and leaves its group
# (consumer_closed ... left_group=1 broker=up) and command-api's relay stops
# (relay_stopped) before smpost-devbroker logs devbroker_stopping, and the
# whole stop takes seconds, not the ~10 s query-api spent waiting for a
# broker that was already gone.
#   run_sh_stop.sh ROOT BUILD_DIR
set -euo pipefail
root="$1"
build="$2"
# shellcheck source=run_sh_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_sh_lib.sh"
fail() { echo "FAILED: $*" >&2; echo "--- run.sh stderr:" >&2; grep -v kafka_log "$work/run.err" | tail -40 >&2; exit 1; }
ms() { date +%s%3N; }

cport=$(free_port)
qport=$(free_port)
export SMPOST_DATA_DIR="$work/data" SMPOST_COMMAND_PORT="$cport" SMPOST_QUERY_PORT="$qport"
export SMPOST_BUILD_DIR="$build" SMPOST_RUN_NO_BUILD=1
# its own session and process group, like a job in a terminal
setsid "$root/scripts/run.sh" >"$work/run.out" 2>"$work/run.err" &
pid=$!

for port in "$cport" "$qport"; do
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
# something to commit: a post, projected
id="$(curl -sf -X POST "http://127.0.0.1:$cport/api/v1/NewPost" -H 'Content-Type: application/json' \
        -d '{"author":"alice","message":"hello"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')"
[[ "$id" =~ ^[0-9a-f-]{36}$ ]] || fail "NewPost did not answer an id: $id"
for _ in $(seq 600); do
  curl -s "http://127.0.0.1:$qport/api/v1/PostLookup/byId/$id" | grep -q '"author":"alice"' && break
  sleep 0.1
done
curl -s "http://127.0.0.1:$qport/api/v1/PostLookup/byId/$id" | grep -q '"author":"alice"' ||
  fail "query-api did not project the post"

t0=$(ms)
kill -INT -- "-$pid" # Ctrl-C
for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "run.sh still running 60 s after Ctrl-C"
took=$(($(ms) - t0))
wait "$pid" || true

line_of() { grep -n "event=$1" "$work/run.err" | head -n 1 | cut -d: -f1; }
closed=$(line_of consumer_closed)
relay=$(line_of relay_stopped)
broker=$(line_of devbroker_stopping)
echo "# run.sh stopped ${took} ms after Ctrl-C"
grep -E 'event=(consumer_closed|relay_stopped|devbroker_stopping)' "$work/run.err" | sed 's/^/# /'
[ -n "$closed" ] && [ -n "$relay" ] && [ -n "$broker" ] || fail "a stop line is missing"
grep 'event=consumer_closed' "$work/run.err" | grep 'broker=up' | grep -q 'left_group=1' ||
  fail "query-api did not commit and leave its group with the broker there"
[ "$closed" -lt "$broker" ] || fail "the broker stopped before query-api closed its consumer"
[ "$relay" -lt "$broker" ] || fail "the broker stopped before command-api's relay stopped"
echo "run.sh stop order: OK"

# Ctrl-C twice, the second while the services stop: nothing run.sh started
# is left running (the broker, in its own session, was: the second Ctrl-C
# killed the script in the middle of its stop).
setsid "$root/scripts/run.sh" >"$work/run2.out" 2>"$work/run2.err" &
pid=$!
for port in "$cport" "$qport"; do
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
broker_pid="$(pgrep -P "$pid" -f smpost-devbroker)" || fail "no broker of the second run"
# query-api held (SIGSTOP) while the first Ctrl-C's stop waits on it, so
# that the second Ctrl-C comes during the stop every time; then let go
query_pid="$(pgrep -P "$pid" -f query-api)" || fail "no query-api of the second run"
kill -STOP "$query_pid"
kill -INT -- "-$pid"
sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "run.sh did not wait for the held query-api"
kill -INT "$pid"
sleep 0.5
kill -CONT "$query_pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "run.sh still running 10 s after its services were let go"
wait "$pid" || true
for _ in $(seq 50); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$broker_pid" 2>/dev/null && fail "the broker (pid $broker_pid) outlived run.sh after two Ctrl-C"
passed=1
echo "run.sh twice Ctrl-C: nothing left running"
