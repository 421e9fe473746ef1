#!/usr/bin/env bash
# Publish rate of the outbox relay against the local broker (librdkafka mock
# cluster), on the SQLite event store. Prints one line per scenario.
#   bench/relay_rate.sh [BUILD_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
[ -x "$build/bench/relay_rate" ] || "$root/scripts/build.sh" "$build"
work="$(mktemp -d)"
trap 'kill "$broker" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$build/tools/smpost-devbroker" --log-level warn >"$work/broker.out" &
broker=$!
for _ in $(seq 100); do grep -q BOOTSTRAP "$work/broker.out" && break; sleep 0.1; done
bootstrap="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
export SMPOST_LOG_LEVEL=warn
# many posts, a few events each: heads of up to 500 posts per round
"$build/bench/relay_rate" "$bootstrap" "sqlite:$work/a.db" 2000 10 2>/dev/null
# one hot post: strictly one confirmed event per broker round trip
"$build/bench/relay_rate" "$bootstrap" "sqlite:$work/b.db" 1 2000 2>/dev/null
