#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the npm packages pinned by DIR/package-lock.json into
# DIR/node_modules, exactly (npm ci), unless that very lock file is already
# installed there. Idempotent, and safe when two runs race (flock).
#   scripts/npm_ci.sh DIR
# Used by scripts/bootstrap.sh (docs/swagger-ui: Swagger UI's files) and by
# tests/browser/run.sh (tests/browser: puppeteer-core).
# Install scripts are not run: these packages need none, and the one they
# would run (@scarf/scarf, under swagger-ui-dist) only sends usage analytics.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir="$(cd "$1" && pwd)"
lock="$dir/package-lock.json"
marker="$dir/node_modules/.smpost-installed"
[ -f "$lock" ] || { echo "npm_ci: $lock is missing" >&2; exit 1; }
want="$(sha256sum "$lock" | cut -d' ' -f1)"
installed() { [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; }
installed && exit 0

command -v npm >/dev/null 2>&1 || {
  echo "npm_ci: npm is not installed (scripts/bootstrap.sh installs it)" >&2
  exit 1
}
exec 9<"$lock"
flock 9
if ! installed; then
  echo "npm_ci: installing $(realpath --relative-to="$PWD" "$dir")/package-lock.json" >&2
  npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$marker"
fi
