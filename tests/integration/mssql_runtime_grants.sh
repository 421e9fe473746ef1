#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The compose stack's SQL Server logins (compose/mssql-init.sql,
# compose/mssql-grants.sql), on the SQL Server stand-in (Babelfish,
# SMPOST_TEST_MSSQL): query-api runs under a login that has only the grants
# of compose/mssql-grants.sql, once the schema was applied by another login
# (the migration step):
#   - the schema is applied by the admin login of SMPOST_TEST_MSSQL (a
#     query-api started with it, then stopped);
#   - login A gets exactly the GRANT lines of compose/mssql-grants.sql:
#     query-api starts with it (its schema batch at start runs no DDL),
#     /health is 200 and a query answers (200, or 204 when empty); A
#     cannot CREATE TABLE;
#   - login B, with no grants, cannot start query-api (exit non-zero), so
#     the grants are what makes A work.
# Without SMPOST_TEST_MSSQL it skips (exit 77), except in CI (CI=true).
#   mssql_runtime_grants.sh ROOT BUILD_DIR
set -euo pipefail
root="$1"
build="$2"
if [ -z "${SMPOST_TEST_MSSQL:-}" ]; then
  [ "${CI:-}" = true ] && { echo "FAILED: SMPOST_TEST_MSSQL is not set (CI)" >&2; exit 1; }
  echo "SKIPPED: SMPOST_TEST_MSSQL not set"
  exit 77
fi
command -v tsql >/dev/null || { echo "FAILED: tsql (freetds-bin) is missing" >&2; exit 1; }
kv() { printf '%s' "$SMPOST_TEST_MSSQL" | tr ';' '\n' | sed -n "s/^$1=//p"; }
host="$(kv host)"; port="$(kv port)"; admin="$(kv user)"; admin_pw="$(kv password)"; db="$(kv database)"
work="$(mktemp -d)"
suffix="$(openssl rand -hex 4)"
login_a="smpost_rt_$suffix"; login_b="smpost_nogrant_$suffix"
pw_a="$(openssl rand -hex 12)-Aa1"; pw_b="$(openssl rand -hex 12)-Aa1"
pid=""
# sql USER PASSWORD STATEMENT...: one batch per statement (tsql reads lines)
sql() {
  local u="$1" p="$2"; shift 2
  printf '%s\ngo\n' "$@" | tsql -H "$host" -p "$port" -U "$u" -P "$p" -D "$db" 2>&1
}
stop_api() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
cleanup() {
  stop_api
  sql "$admin" "$admin_pw" "DROP USER $login_a" "DROP USER $login_b" \
      "DROP LOGIN $login_a" "DROP LOGIN $login_b" >/dev/null 2>&1 || true
  if [ "${passed:-0}" = 1 ]; then rm -rf "$work"; else echo "# logs kept in $work"; fi
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; tail -5 "$work"/*.log >&2 2>/dev/null || true; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_api NAME USER PASSWORD: query-api on the read model as USER; 0 once
# /health is 200, 1 if it exited first
start_api() {
  local name="$1" u="$2" p="$3"
  api_port="$(free_port)"
  "$build/query-api/query-api" --port "$api_port" --kafka-bootstrap none --log-level info \
    --read-model "mssql:host=$host;port=$port;user=$u;password=$p;database=$db" \
    >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; pid=""; return 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/health")" = 200 ] && return 0
    sleep 0.1
  done
  fail "query-api as $u neither became healthy nor exited"
}

# 1. the migration step: the schema, as the admin login
start_api admin "$admin" "$admin_pw" || fail "query-api as the admin login did not start"
stop_api

# 2. login A with exactly compose/mssql-grants.sql's grants
sql "$admin" "$admin_pw" "CREATE LOGIN $login_a WITH PASSWORD = '$pw_a'" "CREATE USER $login_a FOR LOGIN $login_a" \
    "CREATE LOGIN $login_b WITH PASSWORD = '$pw_b'" "CREATE USER $login_b FOR LOGIN $login_b" >"$work/logins.out"
mapfile -t grants < <(grep -E '^GRANT ' "$root/compose/mssql-grants.sql" | sed "s/\[smpost\]/[$login_a]/")
[ "${#grants[@]}" -ge 3 ] || fail "compose/mssql-grants.sql has ${#grants[@]} GRANT lines"
sql "$admin" "$admin_pw" "${grants[@]}" >"$work/grants.out"
if grep -q '^Msg' "$work/grants.out"; then cat "$work/grants.out" >&2; fail "the grants failed"; fi

start_api runtime "$login_a" "$pw_a" || fail "query-api did not start as $login_a (the grants of compose/mssql-grants.sql)"
code="$(curl -s -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$api_port/api/v1/PostLookup")"
case "$code" in 200|204) ;; *) false ;; esac || fail "PostLookup as $login_a: $code $(cat "$work/body")"
stop_api
echo "ok   query-api starts and answers as a login with only compose/mssql-grants.sql's rights"

sql "$login_a" "$pw_a" "CREATE TABLE dbo.Evil_$suffix (x int)" >"$work/ddl.out"
grep -qi 'permission denied' "$work/ddl.out" || fail "$login_a could create a table: $(cat "$work/ddl.out")"
echo "ok   that login cannot CREATE TABLE"

if start_api nogrant "$login_b" "$pw_b"; then
  fail "query-api started as $login_b, which has no grants"
fi
echo "ok   without the grants query-api does not start ($(grep -o 'event=[a-z_]*' "$work/nogrant.log" | tail -1))"
passed=1
echo "PASS mssql_runtime_grants"
