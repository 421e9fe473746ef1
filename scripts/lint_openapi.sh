#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lints the OpenAPI documents with Redocly CLI (npm, pinned below; its
# built-in "recommended" rules): docs/openapi.yaml and the two documents the
# binaries of BUILD_DIR embed and serve at /openapi.json (generated from it by
# cmake/openapi_split.py). Exits non-zero on any error; warnings are printed.
#   scripts/lint_openapi.sh [BUILD_DIR]      BUILD_DIR defaults to ./build
# CI (.ci/run) runs it after the build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
# 1.x: 2.x needs Node >= 20.19, and Debian 12's nodejs is 18.
readonly REDOCLY="@redocly/cli@1.34.20"
docs=("$root/docs/openapi.yaml"
      "$build/command-api/openapi.command-api.json"
      "$build/query-api/openapi.query-api.json")
for f in "${docs[@]}"; do
  [ -f "$f" ] || { echo "lint_openapi: $f is missing (build first: scripts/build.sh)" >&2; exit 1; }
done
# No usage data and no update check: CI reaches only the package registries.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
cd "$root"
npx --yes "$REDOCLY" lint "${docs[@]}"
