#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The SQL Server read model over TLS (SMPOST_MSSQL_TLS_CA, rm_mssql.c's
# private freetds.conf), on a SQL Server stand-in that requires encryption:
# scripts/mssql.sh start DIR PORT --tls (Babelfish behind
# scripts/tds_tls_front.py, with a test CA and a certificate for localhost
# and 127.0.0.1). One such server serves every case:
#   - the read model opens, applies an event and reads it back over TLS
#     (tests/integration/rm_roundtrip), and the event's text (a marker) is
#     nowhere in what the process writes to or reads from its sockets
#     (strace); the same run on the plain port shows the marker, so the
#     check can see plain text; the read model suite (integration_rm_mssql's
#     cases) passes over TLS;
#   - query-api with SMPOST_MSSQL_TLS_CA starts and answers; its
#     freetds.conf (TMPDIR/smpost-freetds-*/, 0700 and 0600) requires
#     encryption with that CA and hostname checks, holds no password, and
#     is gone after a stop;
#   - query-api refuses to start, with one error line naming
#     SMPOST_MSSQL_TLS_CA and no password, for: a CA that did not sign the
#     server's certificate, a host name the certificate does not carry
#     (127.1 reaches 127.0.0.1 but is not in it), a server that does not
#     encrypt (Babelfish's own port) and a CA file that does not exist.
# The server costs a Babelfish of its own (a few seconds, ~100 MB), so the
# test runs where the SQL Server tests run: with SMPOST_TEST_MSSQL set (CI),
# and skips (exit 77) without it, except in CI (CI=true).
#   mssql_tls.sh ROOT BUILD_DIR
set -euo pipefail
root="$1"
build="$2"
if [ -z "${SMPOST_TEST_MSSQL:-}" ]; then
  [ "${CI:-}" = true ] && { echo "FAILED: SMPOST_TEST_MSSQL is not set (CI)" >&2; exit 1; }
  echo "SKIPPED: SMPOST_TEST_MSSQL not set"
  exit 77
fi
command -v strace >/dev/null || { echo "FAILED: strace is missing (apt-get install strace)" >&2; exit 1; }
work="$(mktemp -d /tmp/smpost-mssqltls-XXXXXX)"
chmod 755 "$work"
mkdir "$work/tmp"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  "$root/scripts/mssql.sh" stop "$work/server" >/dev/null 2>&1 || true
  if [ "${passed:-0}" = 1 ]; then rm -rf "$work"; else echo "# logs kept in $work"; fi
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port="$(free_port)"
"$root/scripts/mssql.sh" start "$work/server" "$port" --tls >"$work/server.out" ||
  fail "the TLS server did not start: $(cat "$work/server.out")"
ca="$(sed -n 's/^SMPOST_MSSQL_TLS_CA=//p' "$work/server.out")"
conn="$(sed -n 's/^SMPOST_TEST_MSSQL=//p' "$work/server.out")"
[ -f "$ca" ] && [ -n "$conn" ] || fail "scripts/mssql.sh --tls printed no CA or connection: $(cat "$work/server.out")"
kv() { printf '%s' "$conn" | tr ';' '\n' | sed -n "s/^$1=//p"; }
user="$(kv user)"; password="$(kv password)"; db="$(kv database)"
plain_port="$(cat "$work/server/tls/backend_port")"
mssql() { echo "mssql:host=$1;port=$2;user=$user;password=$password;database=$db"; }

# ---- 1. open, apply, query over TLS; the marker is not on the wire -------
marker="TlsMarker$(openssl rand -hex 6)"
hex() { # the marker as strace -xx prints it: UTF-8, or UTF-16LE (nvarchar)
  python3 -c 'import sys; print("".join("\\x%02x" % b for b in sys.argv[1].encode(sys.argv[2])))' "$marker" "$1"
}
utf8="$(hex utf-8)"; utf16="$(hex utf-16-le)"
traced() { # traced NAME URL: rm_roundtrip under strace, its socket I/O in NAME.strace
  # LeakSanitizer cannot run under ptrace (the ASan build would abort); the
  # later detect_leaks wins over CI's
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  strace -f -qq -yy -xx -s 1000000 -o "$work/$1.strace" \
    -e trace=read,write,recvfrom,sendto,recvmsg,sendmsg,readv,writev \
    "$build/tests/rm_roundtrip" "$2" "$marker" >"$work/$1.out" 2>&1
}
# only the TCP sockets' I/O (-yy names each fd): the ASan runtime reads
# /proc/self/cmdline, which holds the marker too. Not grep -q: it would
# stop reading at the first match, the first grep would die of SIGPIPE, and
# pipefail would call a found marker a missing one (CI saw it).
on_wire() { grep -F '<TCP:' "$work/$1.strace" | grep -F -e "$utf8" -e "$utf16" >/dev/null; }

traced tls "$(mssql 127.0.0.1 "$port");ca=$ca" || fail "round trip over TLS: $(cat "$work/tls.out")"
grep -q '^ok ' "$work/tls.out" || fail "round trip over TLS: $(cat "$work/tls.out")"
echo "ok   the read model opens, applies and queries over TLS (CA and host verified)"
SMPOST_TEST_RM_URL=mssql SMPOST_TEST_MSSQL="$conn;ca=$ca" "$build/tests/integration_rm_sqlite" \
  >"$work/rm_suite.out" 2>&1 || fail "the read model suite over TLS: $(tail -20 "$work/rm_suite.out")"
echo "ok   the read model suite (integration_rm_mssql's cases) passes over TLS"
traced plain "$(mssql 127.0.0.1 "$plain_port")" || fail "round trip on the plain port: $(cat "$work/plain.out")"
on_wire plain || fail "the marker is not in the plain session's socket I/O: the check cannot see plain text"
on_wire tls && fail "the marker travelled in plain text over the TLS session"
echo "ok   the event's text is on the wire in a plain session and not in the TLS one"

# ---- 2. query-api with SMPOST_MSSQL_TLS_CA; its freetds.conf ---------------
# start_api NAME HOST PORT CA: query-api on the read model; 0 once /health
# is 200, 1 if it exited first (its exit code in $api_rc)
start_api() {
  local name="$1"
  api_port="$(free_port)"
  TMPDIR="$work/tmp" SMPOST_MSSQL_TLS_CA="$4" SMPOST_READ_MODEL="$(mssql "$2" "$3")" \
    "$build/query-api/query-api" --port "$api_port" --kafka-bootstrap none --log-level info \
    >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      api_rc=0; wait "$pid" || api_rc=$?; pid=""; return 1
    fi
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/health")" = 200 ] && return 0
    sleep 0.1
  done
  fail "query-api ($name) neither became healthy nor exited"
}
stop_api() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }

start_api verified 127.0.0.1 "$port" "$ca" || fail "query-api with the right CA did not start: $(tail -3 "$work/verified.log")"
grep -q 'event=read_model_open .*tls=verified' "$work/verified.log" || fail "no read_model_open tls=verified line"
confs=("$work"/tmp/smpost-freetds-*/freetds.conf)
[ "${#confs[@]}" = 1 ] && [ -f "${confs[0]}" ] || fail "no single freetds.conf under TMPDIR: ${confs[*]}"
conf="${confs[0]}"
[ "$(stat -c %a "$conf")" = 600 ] || fail "freetds.conf has mode $(stat -c %a "$conf")"
[ "$(stat -c %a "$(dirname "$conf")")" = 700 ] || fail "its directory has mode $(stat -c %a "$(dirname "$conf")")"
for want in "encryption = require" "ca file = $ca" "check certificate hostname = yes" "host = 127.0.0.1" "port = $port"; do
  grep -qxF "	$want" "$conf" || fail "freetds.conf lacks '$want': $(cat "$conf")"
done
grep -qF "$password" "$conf" && fail "freetds.conf holds the password: $(cat "$conf")"
grep -qiE '^\s*(user|password)' "$conf" && fail "freetds.conf holds a login: $(cat "$conf")"
code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/api/v1/PostLookup")"
case "$code" in 200|204) ;; *) fail "PostLookup over TLS: $code" ;; esac
stop_api
[ ! -e "$(dirname "$conf")" ] || fail "the freetds.conf directory is left after a stop"
echo "ok   query-api with SMPOST_MSSQL_TLS_CA answers; its freetds.conf (0600, no login) requires TLS, the CA and the host, and goes at stop"

# ---- 3. refused starts --------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=some other CA" \
  -keyout "$work/other.key" -out "$work/other-ca.pem" 2>/dev/null
refused() { # refused NAME HOST PORT CA WHAT
  if start_api "$1" "$2" "$3" "$4"; then fail "query-api started with $5"; fi
  [ "$api_rc" != 0 ] || fail "query-api exited 0 with $5"
  local errors
  errors="$(grep -c 'level=error' "$work/$1.log" || true)"
  [ "$errors" = 1 ] || fail "$errors error lines with $5: $(cat "$work/$1.log")"
  grep 'level=error' "$work/$1.log" | grep -q 'SMPOST_MSSQL_TLS_CA' || fail "the error line does not name SMPOST_MSSQL_TLS_CA: $(cat "$work/$1.log")"
  grep -qF "$password" "$work/$1.log" && fail "the password is in the log with $5"
  echo "ok   refused: $5 ($(grep -o 'error="[^"]\{0,90\}' "$work/$1.log" | head -1)...)"
}
refused wrongca 127.0.0.1 "$port" "$work/other-ca.pem" "a CA that did not sign the certificate"
refused hostname 127.1 "$port" "$ca" "a host name the certificate does not carry (127.1)"
refused notls 127.0.0.1 "$plain_port" "$ca" "a server that does not encrypt"
refused noca 127.0.0.1 "$port" "$work/missing-ca.pem" "a CA file that does not exist"
[ -z "$(ls -A "$work/tmp")" ] || fail "refused starts left files in TMPDIR: $(ls "$work/tmp")"
passed=1
echo "PASS mssql_tls"
