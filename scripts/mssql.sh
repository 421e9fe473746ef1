#!/usr/bin/env bash
# The SQL Server stand-in for tests: Babelfish (a real TDS + T-SQL server),
# run by ../shared/mssql/babelfish.sh from the shared directory beside this
# checkout (or $SMPOST_SHARED_DIR).
#   scripts/mssql.sh start DIR PORT   unpacks and initialises DIR the first
#                                     time, starts the server on TDS port
#                                     PORT, waits until it accepts connections
#                                     and prints, as its last line,
#                                     SMPOST_TEST_MSSQL=host=127.0.0.1;port=PORT;...
#   scripts/mssql.sh stop DIR         stops it (nothing to do if not running)
# Starting a DIR that is already running restarts it, so start/start and
# stop/start both work. A DIR keeps the port it was first started with.
# Run as root (CI does): the server runs as 'nobody', so DIR must be
# reachable by that user (anything under /tmp is).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${SMPOST_SHARED_DIR:-$root/../shared}"
babelfish="$shared/mssql/babelfish.sh"

usage() { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
die() { echo "mssql: $*" >&2; exit 1; }

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || usage
[ -f "$babelfish" ] || die "$babelfish not found (../shared must sit beside the checkout, or set SMPOST_SHARED_DIR)"

running() {
  local pidfile="$dir/data/postmaster.pid"
  [ -f "$pidfile" ] && kill -0 "$(head -n 1 "$pidfile")" 2>/dev/null
}

# The TDS listener comes up with the postmaster; wait until it answers.
wait_for_port() {
  local port="$1" i
  for i in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "Babelfish started but nothing listens on 127.0.0.1:$port (see $dir/data/server.log)"
}

case "$cmd" in
start)
  port="${3:-}"
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || usage
  # babelfish.sh writes the port into the cluster's config at init only, and
  # would print the new one while listening on the old: refuse instead.
  conf="$dir/data/postgresql.conf"
  if [ -f "$conf" ]; then
    configured="$(sed -n 's/^babelfishpg_tds\.port = //p' "$conf" | tail -n 1)"
    [ -z "$configured" ] || [ "$configured" = "$port" ] ||
      die "$dir was initialised for port $configured; use that port or a fresh DIR"
  fi
  mkdir -p "$dir"
  chmod a+rx "$dir"
  if running; then
    bash "$babelfish" stop "$dir"
  fi
  out="$(bash "$babelfish" start "$dir" "$port")"
  line="$(printf '%s\n' "$out" | grep '^SMPOST_TEST_MSSQL=' | tail -n 1 || true)"
  [ -n "$line" ] || die "babelfish.sh printed no SMPOST_TEST_MSSQL line: $out"
  wait_for_port "$port"
  printf '%s\n' "$line"
  ;;
stop)
  bash "$babelfish" stop "$dir"
  ;;
*)
  usage
  ;;
esac
