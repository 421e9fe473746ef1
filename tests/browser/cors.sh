#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CORS in a real browser (cors.test.js): a page on its own origin calls
# command-api (SMPOST_AUTH=jwt, a token minted with smpost-token) and
# query-api with fetch(); both have SMPOST_CORS_ORIGINS set to that origin.
# The page (cors_page/) is served by python3's http.server on a free
# loopback port, and once more on another port: an origin not in the
# setting, which the browser must block. Events flow through
# smpost-devbroker, so the query sees the command's post.
#
#   tests/browser/cors.sh BUILD_DIR OUT_DIR
#
# OUT_DIR receives a screenshot per page, the pages' console log and the
# services' logs. CTest runs this (label acceptance); skips (77) only
# outside CI, as run.sh (lib.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/browser/lib.sh
source "$here/lib.sh"
browser_init "$1" "$2"
command -v python3 >/dev/null 2>&1 || unavailable "python3 is not installed (the page's server)"

# the page's two origins: python3 prints the port it bound
for name in page other-page; do
  browser_spawn "$name" python3 -u -m http.server --bind 127.0.0.1 --directory "$here/cors_page" 0
done
page_port="$(wait_for "$work/page.out" 'Serving HTTP on 127.0.0.1 port ')"
other_port="$(wait_for "$work/other-page.out" 'Serving HTTP on 127.0.0.1 port ')"
export SMPOST_CORS_ORIGINS="http://127.0.0.1:$page_port"

start_devbroker
export SMPOST_SWAGGER=off
make_dev_key
SMPOST_AUTH=jwt browser_spawn command-api "$build/command-api/command-api" --port 0 \
  --event-store "sqlite:$work/events.db" "${dev_auth_flags[@]}"
browser_spawn query-api "$build/query-api/query-api" --port 0 \
  --read-model "sqlite:$work/readmodel.db" --kafka-config fetch.wait.max.ms=10
cport="$(service_port command-api command-api)"
qport="$(service_port query-api query-api)"
wait_consumer "$qport"

export SMPOST_COMMAND_URL="http://127.0.0.1:$cport"
export SMPOST_QUERY_URL="http://127.0.0.1:$qport"
export SMPOST_PAGE_URL="http://127.0.0.1:$page_port/index.html"
export SMPOST_OTHER_PAGE_URL="http://127.0.0.1:$other_port/index.html"
export SMPOST_TOKEN="$(dev_token cors-page)"
export SMPOST_BROWSER_OUT="$out"
export SMPOST_CHROMIUM="$chromium"
status=0
node "$here/cors.test.js" || status=$?
((status == 0)) || show_logs command-api query-api page other-page
exit "$status"
