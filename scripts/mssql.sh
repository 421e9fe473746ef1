#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The SQL Server stand-in for tests: Babelfish (a real TDS + T-SQL server),
# run by ../shared/mssql/babelfish.sh from the shared directory beside this
# checkout (or $SMPOST_SHARED_DIR).
#   scripts/mssql.sh start DIR PORT   unpacks and initialises DIR the first
#                                     time, starts the server on TDS port
#                                     PORT, waits until it accepts connections
#                                     and prints, as its last line,
#                                     SMPOST_TEST_MSSQL=host=127.0.0.1;port=PORT;...
#   scripts/mssql.sh start DIR PORT --tls
#                                     the same, with TDS encryption required on
#                                     PORT: the first time it generates
#                                     DIR/tls/ca.pem (a test CA) and a server
#                                     certificate signed by it (SAN
#                                     DNS:localhost, IP:127.0.0.1). The Babelfish
#                                     build has no OpenSSL ("SSL is not
#                                     supported by this build"), so Babelfish
#                                     listens on a loopback port of its own
#                                     (DIR/tls/backend_port) and
#                                     scripts/tds_tls_front.py serves PORT,
#                                     encrypting as SQL Server with forced
#                                     encryption does. Prints
#                                     SMPOST_MSSQL_TLS_CA=DIR/tls/ca.pem before
#                                     the SMPOST_TEST_MSSQL line.
#   scripts/mssql.sh stop DIR         stops it (nothing to do if not running)
# Starting a DIR that is already running restarts it, so start/start and
# stop/start both work. A DIR keeps the port it was first started with.
# Run as root (CI does): the server runs as 'nobody', so DIR must be
# reachable by that user (anything under /tmp is).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${SMPOST_SHARED_DIR:-$root/../shared}"
babelfish="$shared/mssql/babelfish.sh"

usage() { echo "usage: $0 start DIR PORT [--tls] | stop DIR" >&2; exit 2; }
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

# DIR/tls: a test CA and a server certificate for localhost and 127.0.0.1
# (once), and the loopback port Babelfish itself listens on.
make_tls() {
  local tls="$dir/tls"
  mkdir -p "$tls"
  if [ ! -f "$tls/server.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=smpost test SQL Server CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tls/ext.cnf"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 3650 -extfile "$tls/ext.cnf" -out "$tls/server.pem" 2>/dev/null
    chmod 600 "$tls/server.key" "$tls/ca.key"
    chmod a+r "$tls/ca.pem"
  fi
  if [ ! -f "$tls/backend_port" ]; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' \
      >"$tls/backend_port"
  fi
}

stop_front() {
  local pidfile="$dir/tls/front.pid"
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "$cmd" in
start)
  port="${3:-}"
  tls="${4:-}"
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || usage
  [ -z "$tls" ] || [ "$tls" = --tls ] || usage
  front_port=""
  if [ -n "$tls" ]; then
    mkdir -p "$dir"
    make_tls
    front_port="$port"
    port="$(cat "$dir/tls/backend_port")"
  fi
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
  [ ! -d "$dir/tls" ] || stop_front
  out="$(bash "$babelfish" start "$dir" "$port")"
  line="$(printf '%s\n' "$out" | grep '^SMPOST_TEST_MSSQL=' | tail -n 1 || true)"
  [ -n "$line" ] || die "babelfish.sh printed no SMPOST_TEST_MSSQL line: $out"
  wait_for_port "$port"
  if [ -n "$front_port" ]; then
    python3 "$root/scripts/tds_tls_front.py" "$front_port" "$port" "$dir/tls/server.pem" \
      "$dir/tls/server.key" >"$dir/tls/front.log" 2>&1 &
    echo $! >"$dir/tls/front.pid"
    wait_for_port "$front_port"
    line="${line/port=$port;/port=$front_port;}"
    printf 'SMPOST_MSSQL_TLS_CA=%s\n' "$dir/tls/ca.pem"
  fi
  printf '%s\n' "$line"
  ;;
stop)
  [ ! -d "$dir/tls" ] || stop_front
  bash "$babelfish" stop "$dir"
  ;;
*)
  usage
  ;;
esac
