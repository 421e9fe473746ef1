#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compose/auth/dev-key.sh makes, with openssl alone, a key whose JWKS
# command-api accepts and whose tokens smpost-token signs with the right kid:
# the compose stack's development setup, checked without Docker. The mint
# command it prints (build/ replaced by this build directory) gives a token
# with which NewPost is 201 (401 without); run again, it keeps the key.
# compose/secrets.sh's Prometheus token, signed with it, opens /metrics.
#   compose_dev_key.sh ROOT BUILD_DIR
set -euo pipefail
root="$1"
build="$2"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ "${passed:-0}" = 1 ]; then rm -rf "$work"; else echo "# logs kept in $work"; fi
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; tail -20 "$work/command-api.log" >&2 || true; exit 1; }
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

"$root/compose/auth/dev-key.sh" "$work/auth" >"$work/out"
[ "$(stat -c %a "$work/auth/dev-key.pem")" = 600 ] || fail "the private key is not 0600"
[ "$(stat -c %a "$work/auth/jwks/jwks.json")" = 644 ] || fail "the JWKS is not world-readable"
jwks_before="$(cat "$work/auth/jwks/jwks.json")"
"$root/compose/auth/dev-key.sh" "$work/auth" >/dev/null 2>&1
[ "$(cat "$work/auth/jwks/jwks.json")" = "$jwks_before" ] || fail "a second run replaced the key"
mint="$(sed -n 's|^  build/tools/smpost-token |'"$build"'/tools/smpost-token |p' "$work/out")"
[ -n "$mint" ] || fail "dev-key.sh printed no smpost-token command: $(cat "$work/out")"

"$build/command-api/command-api" --port "$port" --event-store "sqlite:$work/events.db" \
  --kafka-bootstrap none --auth jwt --jwks-file "$work/auth/jwks/jwks.json" \
  --jwt-issuer smpost-dev --jwt-audience smpost --log-level warn 2>"$work/command-api.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
token="$(eval "$mint")" || fail "the printed command failed: $mint"
post() {
  curl -s -o "$work/body" -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/v1/NewPost" \
       -H 'Content-Type: application/json' -d '{"message":"hello"}' "$@"
}
[ "$(post)" = 401 ] || fail "NewPost without a token: $(cat "$work/body")"
[ "$(post -H "Authorization: Bearer $token")" = 201 ] || fail "NewPost with the token: $(cat "$work/body")"

# compose/secrets.sh mints Prometheus's scrape token with this key: role
# admin, so command-api's /metrics answers it (and not alice's token).
SMPOST_DEV_KEY="$work/auth/dev-key.pem" "$root/compose/secrets.sh" "$work/secrets" >/dev/null
scrape="$(cat "$work/secrets/prometheus_command_token")"
metrics() { curl -s -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$port/metrics" "$@"; }
[ "$(metrics -H "Authorization: Bearer $scrape")" = 200 ] ||
  fail "/metrics with secrets.sh's prometheus_command_token: $(cat "$work/body")"
[ "$(metrics -H "Authorization: Bearer $token")" = 403 ] || fail "/metrics with a token without role admin"
passed=1
echo "compose dev key: OK"
