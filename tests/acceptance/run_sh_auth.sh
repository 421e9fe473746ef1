#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/run.sh with SMPOST_AUTH=jwt and no SMPOST_JWKS_FILE: it makes a
# development key pair under its data directory and prints the command that
# mints a token for it (SMPOST_TOKEN_COMMAND=...). That command, run as
# printed, gives a token with which NewPost is 201; without one it is 401.
# Started a second time, run.sh reuses the key: the first run's token still
# works and the JWKS file is unchanged.
#   run_sh_auth.sh ROOT BUILD_DIR
set -euo pipefail
root="$1"
build="$2"
# shellcheck source=run_sh_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_sh_lib.sh"
fail() { echo "FAILED: $*" >&2; echo "--- run.sh stdout:" >&2; cat "$work/run.out" >&2
         echo "--- run.sh stderr:" >&2; grep -v kafka_log "$work/run.err" | tail -40 >&2; exit 1; }

cport=$(free_port)
qport=$(free_port)
export SMPOST_DATA_DIR="$work/data" SMPOST_COMMAND_PORT="$cport" SMPOST_QUERY_PORT="$qport"
export SMPOST_BUILD_DIR="$build" SMPOST_RUN_NO_BUILD=1 SMPOST_AUTH=jwt
unset SMPOST_JWKS_FILE SMPOST_JWT_ISSUER SMPOST_JWT_AUDIENCE

start() {
  setsid "$root/scripts/run.sh" >"$work/run.out" 2>"$work/run.err" &
  pid=$!
  for port in "$cport" "$qport"; do
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  done
  for _ in $(seq 50); do grep -q '^SMPOST_TOKEN_COMMAND=' "$work/run.out" && break; sleep 0.1; done
}
stop() {
  kill -INT -- "-$pid"
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  wait "$pid" || true
  pid=""
}
# NewPost with the given extra curl arguments; prints the status
new_post() {
  curl -s -o "$work/body" -w '%{http_code}' -X POST "http://127.0.0.1:$cport/api/v1/NewPost" \
       -H 'Content-Type: application/json' -d '{"message":"hello"}' "$@"
}

start
mint="$(sed -n 's/^SMPOST_TOKEN_COMMAND=//p' "$work/run.out")"
[ -n "$mint" ] || fail "run.sh printed no SMPOST_TOKEN_COMMAND line"
echo "# printed: $mint"
[ -s "$work/data/dev-auth/dev-key.pem" ] && [ -s "$work/data/dev-auth/jwks.json" ] ||
  fail "no key pair in the data directory"
[ "$(stat -c %a "$work/data/dev-auth/dev-key.pem")" = 600 ] || fail "the private key is not 0600"
token="$(eval "$mint")" || fail "the printed command failed"
[ "$(new_post)" = 401 ] || fail "NewPost without a token: $(cat "$work/body")"
[ "$(new_post -H "Authorization: Bearer $token")" = 201 ] ||
  fail "NewPost with the minted token: $(cat "$work/body")"
grep -q '"message":"Post created successfully!"\|"id":"' "$work/body" || fail "201 without an id"
jwks_before="$(cat "$work/data/dev-auth/jwks.json")"
stop

start
[ "$(cat "$work/data/dev-auth/jwks.json")" = "$jwks_before" ] || fail "the second run made a new key"
[ "$(new_post -H "Authorization: Bearer $token")" = 201 ] ||
  fail "the first run's token on the second run: $(cat "$work/body")"
stop
passed=1
echo "run.sh development key: OK"
