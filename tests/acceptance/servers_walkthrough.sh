#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The system on its three production servers at once, started the way the
# README says ("On real servers"): scripts/servers.sh (the real Kafka
# broker, FerretDB, Babelfish), its three variables exported, scripts/run.sh.
# Then README.md's walkthrough runs against those services, and the
# end-to-end scenario (tests/acceptance/test_end_to_end.c) runs again on the
# same three servers with services of its own.
#   servers_walkthrough.sh ROOT BUILD_DIR E2E_BINARY
# Needs what servers.sh needs (root, Java, Go, ../shared/mssql): with
# SMPOST_TEST_KAFKA unset it skips (77), except in CI, where it fails.
set -euo pipefail
root="$1"
build="$2"
e2e="$3"
if [ -z "${SMPOST_TEST_KAFKA:-}" ] || [ -z "${SMPOST_TEST_MSSQL:-}" ]; then
  echo "SKIPPED: needs the real servers: SMPOST_TEST_KAFKA and SMPOST_TEST_MSSQL (.ci/run sets both)"
  [ "${CI:-}" = true ] && { echo "FAILED: CI must run it" >&2; exit 1; }
  exit 77
fi
work="$(mktemp -d /tmp/smpost-servers-XXXXXX)"
chmod 755 "$work"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  "$root/scripts/servers.sh" stop "$work/servers" >/dev/null 2>&1 || true
  if [ "${passed:-0}" = 1 ] && [ -z "${SMPOST_TEST_KEEP:-}" ]; then rm -rf "$work"
  else echo "# logs kept in $work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
t0=$SECONDS

# exactly the README's commands
eval "$("$root/scripts/servers.sh" start "$work/servers")"
export KAFKA_BOOTSTRAP_SERVERS SMPOST_EVENT_STORE SMPOST_READ_MODEL
echo "# servers up in $((SECONDS - t0)) s: Kafka $KAFKA_BOOTSTRAP_SERVERS, event store ${SMPOST_EVENT_STORE%%\?*}"
[[ "$SMPOST_EVENT_STORE" == mongodb://* ]] || { echo "FAILED: SMPOST_EVENT_STORE=$SMPOST_EVENT_STORE" >&2; exit 1; }
[[ "$SMPOST_READ_MODEL" == mssql:* ]] || { echo "FAILED: SMPOST_READ_MODEL is not mssql" >&2; exit 1; }

cport=$(free_port)
qport=$(free_port)
SMPOST_DATA_DIR="$work/data" SMPOST_COMMAND_PORT="$cport" SMPOST_QUERY_PORT="$qport" \
  SMPOST_BUILD_DIR="$build" SMPOST_RUN_NO_BUILD=1 \
  setsid "$root/scripts/run.sh" >"$work/run.out" 2>"$work/run.err" &
pid=$!
for port in "$cport" "$qport"; do
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
grep -q "Kafka $KAFKA_BOOTSTRAP_SERVERS, event store mongodb, read model mssql" "$work/run.out" ||
  { echo "FAILED: run.sh did not start on the three servers:" >&2; cat "$work/run.out" >&2; exit 1; }
if grep -q devbroker "$work/run.err"; then
  echo "FAILED: run.sh started a local broker although KAFKA_BOOTSTRAP_SERVERS was set" >&2; exit 1
fi

SMPOST_WALKTHROUGH_PORTS="$cport $qport" \
  "$root/tests/acceptance/readme_walkthrough.sh" "$root/README.md" "$build" ||
  { echo "--- run.sh stderr:" >&2; tail -40 "$work/run.err" >&2; exit 1; }

# run.sh stops on SIGTERM, services first
kill -TERM -- "-$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { echo "FAILED: run.sh did not stop within 20 s" >&2; exit 1; }
pid=""

SMPOST_TEST_E2E_ON_SERVERS=1 "$e2e"
echo "# servers walkthrough and end-to-end: OK in $((SECONDS - t0)) s"
passed=1
