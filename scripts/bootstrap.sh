#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what smpost needs to build, run and test on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt's
# package lists are refreshed only when something is missing.
# Needs root for apt-get (uses sudo when not root).
# Then installs Swagger UI's files (npm package swagger-ui-dist, pinned by
# docs/swagger-ui/package-lock.json) into docs/swagger-ui/node_modules/,
# which both binaries serve at /swagger/ (scripts/npm_ci.sh, idempotent),
# and Go into /usr/local/go if no Go 1.21+ is there or on PATH (see below).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git curl ca-certificates
  libjansson-dev zlib1g-dev libcivetweb-dev libmongoc-dev libbson-dev libsqlite3-dev
  librdkafka-dev libcmocka-dev freetds-dev libcjose-dev libssl-dev
  sqlite3 kcat openssl valgrind python3 gnuplot-nox
  python3-yaml
  chromium
  unicode-data
)
# python3-yaml: the build turns docs/openapi.yaml into each binary's
# embedded /openapi.json (cmake/openapi_split.py). chromium: the browser
# test of the Swagger UI pages (tests/browser). unicode-data: only the test
# that the committed case folding table matches Unicode's CaseFolding.txt
# (unit_casefold_table_current; the build does not need it). libcjose-dev
# and libssl-dev: the JWT verifier (common/auth_jwt.c). openssl: the
# certificates of scripts/kafka.sh start --secure.
# npm installs the MongoDB wire-protocol stand-in used by the tests; a
# machine that already has node + npm (e.g. from NodeSource) keeps them.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
# The real Kafka broker for tests (scripts/kafka.sh) runs from Maven
# Central's jars: Java 17+ and Maven, unless the machine has them already.
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "bootstrap: all packages present"
else
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
    echo "bootstrap: run as root or install sudo" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Prometheus and promtool (Debian's prometheus 2.42): the test of the alert
# rules and the Grafana dashboard (tests/acceptance/prometheus_alerts.sh
# starts its own on a free port). Installed with invoke-rc.d told not to
# start the package's own daemon (policy-rc.d), so none listens on :9090.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "bootstrap: installing prometheus (not started)"
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  [ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
fi

# Go 1.21 or newer builds FerretDB, the second MongoDB-wire stand-in of the
# tests (scripts/mongo.sh, tests/integration/with_ferretdb.sh). Debian 12
# packages Go 1.19 only, too old for FerretDB's go.mod, so where no usable Go
# is found (on PATH, or in /usr/local/go, where CI machines have it) the Go
# project's own toolchain module $GO_TOOLCHAIN is fetched from the Go module
# proxy by Debian's Go 1.19, unpacked in a temporary directory for that
# alone (not installed), and copied to $SMPOST_GO_ROOT (default
# /usr/local/go). The same module the go command fetches by itself when a
# go.mod asks for a newer toolchain; its executables come without their x
# bits, which the go command would set itself.
readonly GO_TOOLCHAIN="go1.24.3"
go_usable() {
  local g minor
  for g in "$(command -v go 2>/dev/null || true)" "${SMPOST_GO_ROOT:-/usr/local/go}/bin/go"; do
    [ -n "$g" ] && [ -x "$g" ] || continue
    minor="$("$g" env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
    [ -n "$minor" ] && [ "$minor" -ge 21 ] && return 0
  done
  return 1
}
install_go() {
  local dest="${SMPOST_GO_ROOT:-/usr/local/go}" tmp old arch dir
  if [ -e "$dest" ]; then # not ours to replace; the FerretDB tests will say so
    echo "bootstrap: WARNING: $dest holds a Go older than 1.21; remove it or set" \
         "SMPOST_GO_ROOT to install $GO_TOOLCHAIN elsewhere" >&2
    return 0
  fi
  tmp="$(mktemp -d /tmp/smpost-go-XXXXXX)"
  chmod 755 "$tmp" # apt-get download runs as _apt
  echo "bootstrap: installing Go ($GO_TOOLCHAIN from the Go module proxy) into $dest"
  $sudo apt-get update -qq
  (cd "$tmp" && apt-get download -qq golang-1.19-go golang-1.19-src >/dev/null) &&
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/old"; done
  old="$tmp/old/usr/lib/go-1.19"
  [ -x "$old/bin/go" ] || { echo "bootstrap: cannot unpack Debian's Go 1.19" >&2; exit 1; }
  export GOROOT="$old" GOPATH="$tmp/gopath" GOMODCACHE="$tmp/mod" GOCACHE="$tmp/cache" GOENV=off
  arch="$("$old/bin/go" env GOARCH)"
  dir="$("$old/bin/go" mod download -json "golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$arch" |
         sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' || true)"
  unset GOROOT GOPATH GOMODCACHE GOCACHE GOENV
  [ -n "$dir" ] && [ -x "$dir/bin" ] || { echo "bootstrap: cannot fetch $GO_TOOLCHAIN" >&2; exit 1; }
  $sudo cp -r "$dir" "$dest"
  $sudo chmod -R u+w,a+rX "$dest"
  $sudo chmod a+x "$dest"/bin/* "$dest"/pkg/tool/*/*
  chmod -R u+w "$tmp" && rm -rf "$tmp"
  "$dest/bin/go" version
}
go_usable || install_go

"$(dirname "${BASH_SOURCE[0]}")/npm_ci.sh" "$(dirname "${BASH_SOURCE[0]}")/../docs/swagger-ui"
