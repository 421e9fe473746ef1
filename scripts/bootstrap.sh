#!/usr/bin/env bash
# Installs what smpost needs to build, run and test on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt's
# package lists are refreshed only when something is missing.
# Needs root for apt-get (uses sudo when not root).
# Then installs Swagger UI's files (npm package swagger-ui-dist, pinned by
# docs/swagger-ui/package-lock.json) into docs/swagger-ui/node_modules/,
# which both binaries serve at /swagger/ (scripts/npm_ci.sh, idempotent).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git curl ca-certificates
  libjansson-dev libcivetweb-dev libmongoc-dev libbson-dev libsqlite3-dev
  librdkafka-dev libcmocka-dev freetds-dev
  sqlite3 kcat valgrind python3
  python3-yaml
  chromium
  unicode-data
)
# python3-yaml: the build turns docs/openapi.yaml into each binary's
# embedded /openapi.json (cmake/openapi_split.py). chromium: the browser
# test of the Swagger UI pages (tests/browser). unicode-data: only the test
# that the committed case folding table matches Unicode's CaseFolding.txt
# (unit_casefold_table_current; the build does not need it).
# npm installs the MongoDB wire-protocol stand-in used by the tests; a
# machine that already has node + npm (e.g. from NodeSource) keeps them.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
# The real Kafka broker for tests (scripts/kafka.sh) runs from Maven
# Central's jars: Java 17+ and Maven, unless the machine has them already.
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "bootstrap: all packages present"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "bootstrap: run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

"$(dirname "${BASH_SOURCE[0]}")/npm_ci.sh" "$(dirname "${BASH_SOURCE[0]}")/../docs/swagger-ui"
