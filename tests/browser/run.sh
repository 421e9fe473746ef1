#!/usr/bin/env bash
# Swagger UI in a real browser, against the embedded default:
# smpost-devbroker + command-api + query-api (SQLite in a temporary
# directory, HTTP on free loopback ports), and a second command-api with
# SMPOST_AUTH=jwt (a key made with openssl by compose/auth/dev-key.sh, a
# token minted with smpost-token), then swagger_ui.test.js drives
# Debian's headless Chromium with puppeteer-core through both Swagger pages.
#
#   tests/browser/run.sh BUILD_DIR OUT_DIR
#
# OUT_DIR is emptied and receives one screenshot per step, the page's
# console log and the services' logs. CTest runs this (label acceptance).
#
# Chromium comes from apt (scripts/bootstrap.sh installs it), puppeteer-core
# and swagger-ui-dist from npm (scripts/npm_ci.sh, pinned by the lock files
# in tests/browser and docs/swagger-ui). When one cannot be had, outside CI
# this prints "SKIPPED: <why>" and exits 77 (CTest's skip code); under
# CI=true it is a failure, so CI never skips it silently.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "$1" && pwd)"
out="$2"

unavailable() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "browser test: $* (CI=true, so this is a failure, not a skip)" >&2
    exit 1
  fi
  echo "SKIPPED: $*"
  exit 77
}

chromium="${SMPOST_CHROMIUM:-$(command -v chromium || true)}"
[[ -n "$chromium" && -x "$chromium" ]] ||
  unavailable "Debian's chromium is not installed (scripts/bootstrap.sh installs it)"
command -v node >/dev/null 2>&1 || unavailable "node is not installed"
"$root/scripts/npm_ci.sh" "$here" || unavailable "npm could not install puppeteer-core"
"$root/scripts/npm_ci.sh" "$root/docs/swagger-ui" || unavailable "npm could not install swagger-ui-dist"

rm -rf -- "$out"
mkdir -p -- "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/smpost-browser.XXXXXX")"
pids=()
cleanup() {
  # services first, so the relay can flush before the broker goes
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  cp "$work"/*.log "$out"/ 2>/dev/null || true
  rm -rf -- "$work"
}
trap cleanup EXIT

# Waits for "KEY=value" / "key=value" in a log file; prints the value.
wait_for() {
  local file="$1" pattern="$2" value=""
  for _ in $(seq 150); do
    value="$(sed -n "s/.*$pattern\([0-9A-Za-z.:]*\).*/\1/p" "$file" | head -n 1)"
    [[ -n "$value" ]] && { echo "$value"; return 0; }
    sleep 0.1
  done
  echo "browser test: no '$pattern' in $file within 15 s:" >&2
  tail -n 20 "$file" >&2
  return 1
}

"$build/tools/smpost-devbroker" >"$work/devbroker.out" 2>"$work/devbroker.log" &
pids+=($!)
bootstrap="$(wait_for "$work/devbroker.out" 'SMPOST_KAFKA_BOOTSTRAP=')"
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
export SMPOST_SWAGGER=on
export SMPOST_SWAGGER_UI_DIR="$root/docs/swagger-ui/node_modules/swagger-ui-dist"

"$build/command-api/command-api" --port 0 --event-store "sqlite:$work/events.db" \
  2>"$work/command-api.log" &
pids+=($!)
# a short fetch wait keeps the projection lag in milliseconds on the local broker
"$build/query-api/query-api" --port 0 --read-model "sqlite:$work/readmodel.db" \
  --kafka-config fetch.wait.max.ms=10 2>"$work/query-api.log" &
pids+=($!)
# tokens on: a development key pair made with openssl, no publishing
"$root/compose/auth/dev-key.sh" "$work/auth" >/dev/null
SMPOST_AUTH=jwt "$build/command-api/command-api" --port 0 --event-store "sqlite:$work/events-auth.db" \
  --kafka-bootstrap none --jwks-file "$work/auth/jwks/jwks.json" --jwt-issuer smpost-dev \
  --jwt-audience smpost 2>"$work/command-api-auth.log" &
pids+=($!)
token="$("$build/tools/smpost-token" --key "$work/auth/dev-key.pem" --iss smpost-dev \
           --aud smpost --sub swagger-ui --name swagger-ui)"
cport="$(wait_for "$work/command-api.log" 'event=listening service=command-api .* port=')"
aport="$(wait_for "$work/command-api-auth.log" 'event=listening service=command-api .* port=')"
qport="$(wait_for "$work/query-api.log" 'event=listening service=query-api .* port=')"
# The consumer's first group join takes a few seconds on the local broker.
for _ in $(seq 150); do
  curl -s "http://127.0.0.1:$qport/health" | grep -q '"assignedPartitions":6' && break
  sleep 0.1
done

export SMPOST_COMMAND_URL="http://127.0.0.1:$cport"
export SMPOST_QUERY_URL="http://127.0.0.1:$qport"
export SMPOST_AUTH_COMMAND_URL="http://127.0.0.1:$aport"
export SMPOST_TOKEN="$token"
export SMPOST_BROWSER_OUT="$out"
export SMPOST_CHROMIUM="$chromium"
status=0
node "$here/swagger_ui.test.js" || status=$?
if ((status != 0)); then
  for log in command-api query-api command-api-auth; do
    echo "---- last lines of $log.log" >&2
    tail -n 15 "$work/$log.log" >&2
  done
fi
exit "$status"
