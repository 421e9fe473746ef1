#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs README.md's curl walkthrough verbatim against the embedded default
# (smpost-devbroker + command-api + query-api on SQLite), only moving the
# documented ports 5001/5002 to free ones so tests can run in parallel.
# Fails unless the walkthrough creates a post and query-api shows it, with
# its like and comment, by id and by author.
#   readme_walkthrough.sh README BUILD_DIR
# SMPOST_TEST_BROKER=realkafka: on a real Kafka broker started through
# $SMPOST_TEST_KAFKA (scripts/kafka.sh) instead of smpost-devbroker.
# SMPOST_WALKTHROUGH_PORTS="CPORT QPORT": against services already running
# there (tests/acceptance/servers_walkthrough.sh); starts nothing.
# SMPOST_WALKTHROUGH_BIN_DIR=DIR: runs smpost-devbroker, command-api and
# query-api from DIR (an installed bin directory: tests/acceptance/
# package_deb.sh) instead of BUILD_DIR's build tree.
set -euo pipefail
readme="$1"
build="$2"
if [ -n "${SMPOST_WALKTHROUGH_BIN_DIR:-}" ]; then
  devbroker_bin="$SMPOST_WALKTHROUGH_BIN_DIR/smpost-devbroker"
  command_bin="$SMPOST_WALKTHROUGH_BIN_DIR/command-api"
  query_bin="$SMPOST_WALKTHROUGH_BIN_DIR/query-api"
else
  devbroker_bin="$build/tools/smpost-devbroker"
  command_bin="$build/command-api/command-api"
  query_bin="$build/query-api/query-api"
fi
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# the first fenced block after "Try it" in README.md
awk '/^Try it/ { want = 1 } want && /^```sh/ { inblock = 1; next }
     inblock && /^```/ { exit } inblock { print }' "$readme" >"$work/walkthrough.sh"
[ -s "$work/walkthrough.sh" ] || { echo "no walkthrough found in $readme" >&2; exit 1; }

if [ -n "${SMPOST_WALKTHROUGH_PORTS:-}" ]; then
  read -r cport qport <<<"$SMPOST_WALKTHROUGH_PORTS"
else
  cport=$(free_port)
  qport=$(free_port)
fi
sed -i "s/127\.0\.0\.1:5001/127.0.0.1:$cport/g; s/127\.0\.0\.1:5002/127.0.0.1:$qport/g" \
    "$work/walkthrough.sh"

export SMPOST_LOG_LEVEL=warn
start_services() {
  local query_extra=()
  if [ "${SMPOST_TEST_BROKER:-}" = realkafka ]; then
    if [ -z "${SMPOST_TEST_KAFKA:-}" ]; then
      echo "SKIPPED: needs a real Kafka broker: set SMPOST_TEST_KAFKA to scripts/kafka.sh (.ci/run does)"
      [ "${CI:-}" = true ] && { echo "FAILED: CI must run it" >&2; exit 1; }
      exit 77
    fi
    trap 'cleanup; "$SMPOST_TEST_KAFKA" stop "$work/kafka" >/dev/null 2>&1 || true' EXIT
    KAFKA_BOOTSTRAP_SERVERS="$("$SMPOST_TEST_KAFKA" start "$work/kafka" | sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p')"
    export KAFKA_BOOTSTRAP_SERVERS
  else
    "$devbroker_bin" >"$work/broker.out" 2>"$work/broker.log" &
    pids+=($!)
    for _ in $(seq 100); do grep -q BOOTSTRAP "$work/broker.out" && break; sleep 0.1; done
    export KAFKA_BOOTSTRAP_SERVERS="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
    # the local broker holds fetches for the whole wait (scripts/run.sh)
    query_extra=(--kafka-config fetch.wait.max.ms=10)
  fi
  "$command_bin" --port "$cport" --event-store "sqlite:$work/events.db" \
    2>"$work/command-api.log" &
  pids+=($!)
  "$query_bin" --port "$qport" --read-model "sqlite:$work/readmodel.db" \
    "${query_extra[@]}" 2>"$work/query-api.log" &
  pids+=($!)
}
[ -n "${SMPOST_WALKTHROUGH_PORTS:-}" ] || start_services
for port in "$cport" "$qport"; do
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
# The consumer's first group join takes a few seconds on the local broker;
# the walkthrough's minVersion wait is 2 s, as documented.
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$qport/health" | grep -q '"assignedPartitions":6' && break
  sleep 0.1
done

out="$(bash -euo pipefail "$work/walkthrough.sh")"
echo "$out"
id="$(echo "$out" | head -n 1)"
check() {
  if ! grep -qF -- "$1" <<<"$out"; then
    echo "FAILED: the walkthrough's output lacks: $1" >&2
    exit 1
  fi
}
[[ "$id" =~ ^[0-9a-f-]{36}$ ]] || { echo "FAILED: first line is not a post id: $id" >&2; exit 1; }
check '"message":"Like post request completed successfully!","version":1'
check '"message":"Add comment request completed successfully!"'
check "{\"posts\":[{\"id\":\"$id\",\"author\":\"alice\",\"authorId\":null,\"message\":\"hello, world\""
check '"username":"bob","userId":null,"comment":"nice"' # no owner ids with auth off
check '"likes":1,"version":2,"comments":[{'
check '"message":"Successfully returned 1 post"'
check '"message":"Successfully returned 1 post","nextCursor":null}' # byAuthor: a list, one page
check '"type":"PostCreatedEvent"'
check '"type":"CommentAddedEvent"'
check '"nextFromVersion":null'
check '"likes":1,"active":true,"version":1,"comments":[]},"version":1}'
check '"service":"query-api"'
check 'smpost_events_published_total'
echo "README walkthrough: OK"
