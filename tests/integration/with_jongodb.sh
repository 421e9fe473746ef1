#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# with_jongodb.sh — run one command against a throwaway in-memory MongoDB.
#
#   tests/integration/with_jongodb.sh COMMAND [ARGS...]
#
# Installs jongodb (an in-memory server that speaks the MongoDB wire protocol,
# see ../../shared/INFRA.md "MongoDB: jongodb") into an npm cache directory on
# first use, starts it on a free port, exports SMPOST_TEST_MONGO_URL, runs the
# command and stops the server whatever happens. Exits with the command's
# status.
#
# A machine without npm (or without network for the first install) should not
# fail the whole suite, so outside CI a missing jongodb prints "SKIPPED: ..."
# and exits 77, CTest's SKIP_RETURN_CODE. Under CI=true the same condition is
# a failure (exit 1): CI must never silently skip the MongoDB tests.
#
# Environment:
#   SMPOST_NPM_CACHE  install directory (default ~/.cache/smpost/npm)
#   CI                "true" turns "unavailable" into a failure
set -euo pipefail

readonly PKG="@jongodb/memory-server-bin-linux-x64-gnu"
readonly VERSION="0.1.6"
readonly START_TIMEOUT_S=15
readonly STOP_TIMEOUT_S=10

prefix="${SMPOST_NPM_CACHE:-${HOME:-/tmp}/.cache/smpost/npm}"
bin="$prefix/node_modules/$PKG/bin/jongodb"
workdir=""
server_pid=""

die() {
    echo "with_jongodb: $*" >&2
    exit 1
}

unavailable() {
    if [[ "${CI:-}" == "true" ]]; then
        die "jongodb unavailable: $* (CI=true, so this is a failure, not a skip)"
    fi
    echo "SKIPPED: jongodb unavailable: $*"
    exit 77
}

# Runs from the EXIT trap, which shellcheck cannot see.
# shellcheck disable=SC2317
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        # jongodb takes about 2 s to stop; do not leave it behind if it hangs.
        local waited=0
        while kill -0 "$server_pid" 2>/dev/null && ((waited < STOP_TIMEOUT_S * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n "$workdir" ]]; then
        rm -rf -- "$workdir"
    fi
}

installed() {
    [[ -x "$bin" ]] && grep -q "\"version\": *\"$VERSION\"" \
        "$prefix/node_modules/$PKG/package.json" 2>/dev/null
}

install_jongodb() {
    installed && return 0
    [[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] ||
        unavailable "the $PKG binary needs Linux x86_64, this is $(uname -s)/$(uname -m)"
    command -v npm >/dev/null 2>&1 || unavailable "npm is not installed"
    mkdir -p -- "$prefix" || unavailable "cannot create $prefix"
    # Parallel test jobs share the cache: one installs, the others wait.
    local lock="$prefix/.install.lock"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$lock"
        flock 9
    fi
    if ! installed; then
        echo "with_jongodb: installing $PKG@$VERSION into $prefix" >&2
        npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
            "$PKG@$VERSION" >&2 || unavailable "npm install $PKG@$VERSION failed"
    fi
    if command -v flock >/dev/null 2>&1; then
        exec 9>&-
    fi
    installed || unavailable "npm install finished but $bin is missing"
}

# Starts the server and sets SMPOST_TEST_MONGO_URL from the one line it prints
# when ready ("JONGODB_URI=mongodb://127.0.0.1:PORT/test").
start_jongodb() {
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/with_jongodb.XXXXXX")"
    local log="$workdir/jongodb.log"
    # Create the log first: the background job opens it only when it runs,
    # and a sed on a missing file would end this script (set -e, pipefail).
    : >"$log"
    "$bin" --host=127.0.0.1 --port=0 >"$log" 2>&1 &
    server_pid=$!
    local uri="" ticks=0
    while ((ticks < START_TIMEOUT_S * 20)); do
        uri="$(sed -n 's/^JONGODB_URI=//p' "$log" | head -n 1)"
        [[ -n "$uri" ]] && break
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null || true
            server_pid=""
            unavailable "jongodb exited before it was ready: $(tail -n 5 "$log" | tr '\n' ' ')"
        fi
        sleep 0.05
        ticks=$((ticks + 1))
    done
    [[ -n "$uri" ]] ||
        die "jongodb printed no JONGODB_URI line within ${START_TIMEOUT_S}s; output: $(tail -n 5 "$log" | tr '\n' ' ')"
    export SMPOST_TEST_MONGO_URL="$uri"
}

main() {
    (($# > 0)) || die "usage: $0 COMMAND [ARGS...]"
    trap cleanup EXIT
    # Make an interrupted run still stop the server (the EXIT trap runs).
    trap 'exit 130' INT
    trap 'exit 143' TERM
    install_jongodb
    start_jongodb
    echo "with_jongodb: SMPOST_TEST_MONGO_URL=$SMPOST_TEST_MONGO_URL" >&2
    local status=0
    "$@" || status=$?
    exit "$status"
}

main "$@"
