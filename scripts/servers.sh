#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The system's three production servers on this machine, for running smpost
# on real servers rather than the embedded default (no Docker):
#   Kafka       the real Apache Kafka broker (scripts/kafka.sh)
#   MongoDB     FerretDB, a MongoDB-wire server (scripts/mongo.sh)
#   SQL Server  Babelfish, a TDS + T-SQL server (scripts/mssql.sh, from
#               ../shared/mssql as CI uses it)
#
#   scripts/servers.sh start DIR   prints exactly three lines on stdout:
#                                    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:...
#                                    SMPOST_EVENT_STORE=mongodb://127.0.0.1:.../socialMedia
#                                    SMPOST_READ_MODEL='mssql:host=127.0.0.1;port=...;...'
#                                  (values in shell syntax: the third is quoted)
#   scripts/servers.sh stop DIR    stops all three
#
# Everything else goes to stderr, so the output can be evaluated:
#   eval "$(scripts/servers.sh start /tmp/s)"
#   export KAFKA_BOOTSTRAP_SERVERS SMPOST_EVENT_STORE SMPOST_READ_MODEL
#   scripts/run.sh
# Each server keeps its files under DIR (kafka/, mongo/, mssql/). Ports are
# free ones (Babelfish's is chosen here and kept by its DIR). If one server
# does not start, those already started are stopped again. Run as root, as
# scripts/mssql.sh requires (Babelfish runs as 'nobody' under DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "servers.sh: $*" >&2; exit 1; }

# The value of NAME=... in the last line of a script's output.
value_of() { sed -n "s/^$1=//p" | tail -n 1; }

start() {
  local dir="$1"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  chmod a+rx "$dir"
  local kafka mongo mssql port
  trap 'stop "$dir" >/dev/null 2>&1 || true' ERR
  kafka="$("$root/scripts/kafka.sh" start "$dir/kafka" | value_of KAFKA_BOOTSTRAP_SERVERS)"
  [ -n "$kafka" ] || die "Kafka did not start (see $dir/kafka)"
  mongo="$("$root/scripts/mongo.sh" start "$dir/mongo" | value_of SMPOST_EVENT_STORE)"
  [ -n "$mongo" ] || die "FerretDB did not start (see $dir/mongo)"
  if [ -f "$dir/mssql.port" ]; then
    port="$(cat "$dir/mssql.port")"
  else
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    echo "$port" >"$dir/mssql.port"
  fi
  mkdir -p "$dir/mssql" && chmod a+rx "$dir/mssql"
  mssql="$("$root/scripts/mssql.sh" start "$dir/mssql" "$port" | value_of SMPOST_TEST_MSSQL)"
  [ -n "$mssql" ] || die "Babelfish did not start (see $dir/mssql)"
  trap - ERR
  echo "KAFKA_BOOTSTRAP_SERVERS=$kafka"
  echo "SMPOST_EVENT_STORE=$mongo"
  # quoted: the connection string's ';' would end the assignment in an eval
  echo "SMPOST_READ_MODEL='mssql:$mssql'"
}

stop() {
  local dir="$1" rc=0
  "$root/scripts/mssql.sh" stop "$dir/mssql" >&2 2>&1 || rc=1
  "$root/scripts/mongo.sh" stop "$dir/mongo" >&2 2>&1 || rc=1
  "$root/scripts/kafka.sh" stop "$dir/kafka" >&2 2>&1 || rc=1
  return $rc
}

case "${1:-}" in
  start) [ -n "${2:-}" ] || die "usage: servers.sh start DIR"; start "$2" ;;
  stop) [ -n "${2:-}" ] || die "usage: servers.sh stop DIR"; stop "$2" ;;
  *) echo "usage: scripts/servers.sh start DIR | stop DIR" >&2; exit 2 ;;
esac
