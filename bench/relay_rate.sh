#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Publish rate of the outbox relay against the local broker (librdkafka mock
# cluster), on the SQLite event store. Prints one line per scenario.
#   bench/relay_rate.sh [--kafka devbroker|real] [BUILD_DIR]
# --kafka real: against a real Apache Kafka broker that scripts/kafka.sh
# starts in the temporary directory (and stops on exit) instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kafka=devbroker
build=""
while (($# > 0)); do
  case "$1" in
    --kafka) kafka="${2:-}"; shift ;;
    --kafka=*) kafka="${1#*=}" ;;
    -*) echo "relay_rate.sh: unknown option $1" >&2; exit 2 ;;
    *) build="$1" ;;
  esac
  shift
done
case "$kafka" in
  devbroker | real) ;;
  *) echo "relay_rate.sh: --kafka is devbroker (the default) or real, not '$kafka'" >&2; exit 2 ;;
esac
build="${build:-$root/build}"
[ -x "$build/bench/relay_rate" ] || "$root/scripts/build.sh" "$build"
work="$(mktemp -d)"
broker=""
kafka_up=0
cleanup() {
  [ -z "$broker" ] || kill "$broker" 2>/dev/null || true
  wait 2>/dev/null || true
  [ "$kafka_up" = 0 ] || "$root/scripts/kafka.sh" stop "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$kafka" = real ]; then
  kafka_up=1
  line="$("$root/scripts/kafka.sh" start "$work/kafka" 2>"$work/kafka-start.log" | tail -n 1)" ||
    { cat "$work/kafka-start.log" >&2; echo "relay_rate.sh: scripts/kafka.sh failed" >&2; exit 1; }
  bootstrap="${line#KAFKA_BOOTSTRAP_SERVERS=}"
else
  "$build/tools/smpost-devbroker" --log-level warn >"$work/broker.out" &
  broker=$!
  for _ in $(seq 100); do grep -q BOOTSTRAP "$work/broker.out" && break; sleep 0.1; done
  bootstrap="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$work/broker.out")"
fi
export SMPOST_LOG_LEVEL=warn
# many posts, a few events each: heads of up to 500 posts per round
"$build/bench/relay_rate" "$bootstrap" "sqlite:$work/a.db" 2000 10 2>/dev/null
# one hot post: strictly one confirmed event per broker round trip
"$build/bench/relay_rate" "$bootstrap" "sqlite:$work/b.db" 1 2000 2>/dev/null
