#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
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
# CI=true it is a failure, so CI never skips it silently. The start-up
# shared with the other browser tests is in lib.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/browser/lib.sh
source "$here/lib.sh"
browser_init "$1" "$2"
"$root/scripts/npm_ci.sh" "$root/docs/swagger-ui" || unavailable "npm could not install swagger-ui-dist"

start_devbroker
export SMPOST_SWAGGER=on
export SMPOST_SWAGGER_UI_DIR="$root/docs/swagger-ui/node_modules/swagger-ui-dist"

browser_spawn command-api "$build/command-api/command-api" --port 0 \
  --event-store "sqlite:$work/events.db"
# a short fetch wait keeps the projection lag in milliseconds on the local broker
browser_spawn query-api "$build/query-api/query-api" --port 0 \
  --read-model "sqlite:$work/readmodel.db" --kafka-config fetch.wait.max.ms=10
# tokens on: a development key pair made with openssl, no publishing
make_dev_key
SMPOST_AUTH=jwt browser_spawn command-api-auth "$build/command-api/command-api" --port 0 \
  --event-store "sqlite:$work/events-auth.db" --kafka-bootstrap none "${dev_auth_flags[@]}"
token="$(dev_token swagger-ui)"
cport="$(service_port command-api command-api)"
aport="$(service_port command-api-auth command-api)"
qport="$(service_port query-api query-api)"
wait_consumer "$qport"

export SMPOST_COMMAND_URL="http://127.0.0.1:$cport"
export SMPOST_QUERY_URL="http://127.0.0.1:$qport"
export SMPOST_AUTH_COMMAND_URL="http://127.0.0.1:$aport"
export SMPOST_TOKEN="$token"
export SMPOST_BROWSER_OUT="$out"
export SMPOST_CHROMIUM="$chromium"
status=0
node "$here/swagger_ui.test.js" || status=$?
((status == 0)) || show_logs command-api query-api command-api-auth
exit "$status"
