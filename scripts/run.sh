#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Quick start: installs dependencies, builds, and runs smpost on the embedded
# default in the foreground until Ctrl-C:
#   smpost-devbroker  a local Kafka (librdkafka mock cluster, in memory)
#   command-api       http://127.0.0.1:5001, event store in SQLite
#   query-api         http://127.0.0.1:5002, read model in SQLite
# Data lives in $SMPOST_DATA_DIR (default: ./var in the checkout), so
# stopping and starting again keeps every post; the local broker keeps
# nothing, and the relay republishes the event store to each new one.
# SMPOST_BUILD_DIR (default ./build) is where it builds and finds the
# binaries; SMPOST_RUN_NO_BUILD=1 skips installing and building (a build
# directory kept up to date otherwise, as tests/acceptance/run_sh_stop.sh does).
#
# On real servers: SMPOST_EVENT_STORE, SMPOST_READ_MODEL and
# KAFKA_BOOTSTRAP_SERVERS, when set, are used as they are (and with a
# KAFKA_BOOTSTRAP_SERVERS no local broker is started); scripts/servers.sh
# starts a real Kafka, a MongoDB-wire server and a SQL Server stand-in and
# prints those three variables (README, "On real servers").
#
# Tokens: SMPOST_AUTH=jwt without SMPOST_JWKS_FILE makes a development key
# pair once, in $data/dev-auth (dev-key.pem, private, and jwks.json, its
# public half; reused on later runs), points both services at it (issuer
# smpost-dev, audience smpost unless SMPOST_JWT_ISSUER / _AUDIENCE say
# otherwise) and prints the smpost-token command that mints a token for it.
# A real provider's JWKS goes in SMPOST_JWKS_FILE instead
# (docs/operations.md, "Authentication").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SMPOST_BUILD_DIR:-$root/build}"
if [ "${SMPOST_RUN_NO_BUILD:-0}" != 1 ]; then
  "$root/scripts/bootstrap.sh"
  "$root/scripts/build.sh" "$build"
fi

data="${SMPOST_DATA_DIR:-$root/var}"
mkdir -p "$data"
export SMPOST_EVENT_STORE="${SMPOST_EVENT_STORE:-sqlite:$data/events.db}"
export SMPOST_READ_MODEL="${SMPOST_READ_MODEL:-sqlite:$data/readmodel.db}"
export KAFKA_TOPIC="${KAFKA_TOPIC:-SocialMediaPostEvents}"
# Swagger UI's files, installed by bootstrap.sh (the binaries' default is the
# same path relative to the working directory; this works from anywhere)
export SMPOST_SWAGGER_UI_DIR="${SMPOST_SWAGGER_UI_DIR:-$root/docs/swagger-ui/node_modules/swagger-ui-dist}"
command_port="${SMPOST_COMMAND_PORT:-5001}"
mint=""
if [ "${SMPOST_AUTH:-}" = jwt ] && [ -z "${SMPOST_JWKS_FILE:-}" ]; then
  keys="$data/dev-auth"
  if [ ! -s "$keys/dev-key.pem" ] || [ ! -s "$keys/jwks.json" ]; then
    # a half-made pair (an interrupted first run) is made again whole
    rm -rf "$keys"
    mkdir -m 700 "$keys"
    "$build/tools/smpost-token" --gen-key "$keys" --type ed25519 >/dev/null
  fi
  export SMPOST_JWKS_FILE="$keys/jwks.json"
  export SMPOST_JWT_ISSUER="${SMPOST_JWT_ISSUER:-smpost-dev}"
  export SMPOST_JWT_AUDIENCE="${SMPOST_JWT_AUDIENCE:-smpost}"
  mint="$(printf '%q ' "$build/tools/smpost-token" --key "$keys/dev-key.pem" \
            --iss "$SMPOST_JWT_ISSUER" --aud "$SMPOST_JWT_AUDIENCE")--sub alice --name alice"
fi
query_port="${SMPOST_QUERY_PORT:-5002}"

pids=()
stop_all() {
  # a second Ctrl-C (or a TERM) while stopping used to kill this script
  # mid-loop and leave the broker, in its own session, running. bash runs
  # the trap below once this one returns: after the orderly stop, anything
  # left is killed.
  trap stop_now INT TERM HUP
  trap - EXIT
  # services first (the last started first), each waited for, the broker
  # last: the relay flushes and query-api commits its offsets and leaves
  # its group while the broker is still there to answer
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
# Nothing accepted is lost by a kill: the event store has it, and the
# relay republishes to the next broker.
stop_now() {
  trap - INT TERM HUP EXIT
  kill -KILL "${pids[@]}" 2>/dev/null || true
  exit 130
}
trap stop_all INT TERM HUP EXIT

query_extra=()
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  bootstrap="$KAFKA_BOOTSTRAP_SERVERS"
else
  broker_out="$data/devbroker.out"
  : >"$broker_out"
  # Ctrl-C in a terminal sends SIGINT to the whole foreground process
  # group: the services may take it (they stop gracefully), but the broker
  # must not, or it is gone before they finish. In a session of its own it
  # only stops when stop_all tells it to.
  setsid "$build/tools/smpost-devbroker" >"$broker_out" &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q '^SMPOST_KAFKA_BOOTSTRAP=' "$broker_out" && break
    sleep 0.1
  done
  bootstrap="$(sed -n 's/^SMPOST_KAFKA_BOOTSTRAP=//p' "$broker_out")"
  [ -n "$bootstrap" ] || { echo "smpost: the local broker did not start" >&2; exit 1; }
  export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
  # The local broker holds each fetch for the consumer's full wait time, so
  # a short one keeps the projection lag in milliseconds (a real broker
  # answers a fetch as soon as data arrives).
  query_extra=(--kafka-config fetch.wait.max.ms=10)
fi

"$build/command-api/command-api" --port "$command_port" &
pids+=($!)
"$build/query-api/query-api" --port "$query_port" "${query_extra[@]}" &
pids+=($!)

echo "smpost: command-api http://127.0.0.1:$command_port, query-api http://127.0.0.1:$query_port," \
     "Kafka $bootstrap, event store ${SMPOST_EVENT_STORE%%:*}, read model ${SMPOST_READ_MODEL%%:*}," \
     "data in $data (Ctrl-C to stop)"
echo "smpost: Swagger UI http://127.0.0.1:$command_port/swagger/ and http://127.0.0.1:$query_port/swagger/"
if [ -n "$mint" ]; then
  echo "smpost: auth jwt with the development key in $keys (JWKS $SMPOST_JWKS_FILE)"
  echo "smpost: mint a token (add --roles moderator,admin for those roles; --ttl seconds, default 3600):"
  echo "SMPOST_TOKEN_COMMAND=$mint"
  echo "smpost: then: curl -H \"Authorization: Bearer \$($mint)\" ..."
fi
# Run until Ctrl-C or until any process exits.
wait -n "${pids[@]}" || true
