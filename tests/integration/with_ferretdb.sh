#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# with_ferretdb.sh — run one command against a throwaway FerretDB.
#
#   tests/integration/with_ferretdb.sh COMMAND [ARGS...]
#
# The second MongoDB-wire stand-in beside jongodb (with_jongodb.sh): FerretDB
# 1.x on its embedded SQLite backend, built from the Go module proxy and
# started by scripts/mongo.sh in a temporary directory on a free port.
# Exports SMPOST_TEST_MONGO_URL (and SMPOST_TEST_MONGO_LACKS, what FerretDB
# lacks that the contract test checks), runs the command, stops the server and
# removes its files whatever happens (kept, and named, if the command fails,
# so its log can be read). Exits with the command's status.
#
# A machine without Go (or without network for the first build) should not
# fail the whole suite, so outside CI that prints "SKIPPED: ..." and exits
# 77, CTest's SKIP_RETURN_CODE. Under CI=true the same condition is a
# failure (exit 1), as in with_jongodb.sh: CI must never silently skip the
# MongoDB tests. scripts/bootstrap.sh installs Go where it is missing.
#
# Environment:
#   SMPOST_CACHE_DIR  where the FerretDB binary is cached (scripts/mongo.sh)
#   CI                "true" turns "unavailable" into a failure
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mongo_sh="$here/../../scripts/mongo.sh"
workdir=""
keep=""

die() {
    echo "with_ferretdb: $*" >&2
    exit 1
}

unavailable() {
    if [[ "${CI:-}" == "true" ]]; then
        die "FerretDB unavailable: $* (CI=true, so this is a failure, not a skip)"
    fi
    echo "SKIPPED: FerretDB unavailable: $*"
    exit 77
}

# Runs from the EXIT trap, which shellcheck cannot see.
# shellcheck disable=SC2317
cleanup() {
    [[ -n "$workdir" ]] || return 0
    "$mongo_sh" stop "$workdir" >/dev/null 2>&1 || true
    if [[ -n "$keep" ]]; then
        echo "with_ferretdb: kept $workdir (FerretDB's log: $workdir/ferretdb.log)" >&2
    else
        rm -rf -- "$workdir"
    fi
}

main() {
    (($# > 0)) || die "usage: $0 COMMAND [ARGS...]"
    trap cleanup EXIT
    # Make an interrupted run still stop the server (the EXIT trap runs).
    trap 'exit 130' INT
    trap 'exit 143' TERM
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/with_ferretdb.XXXXXX")"
    local out status=0
    out="$("$mongo_sh" start "$workdir")" || status=$?
    case "$status" in
        0) ;;
        69) unavailable "scripts/mongo.sh could not build it (see above)" ;;
        *) keep=1; die "scripts/mongo.sh start failed (exit $status)" ;;
    esac
    local line
    line="$(tail -n 1 <<<"$out")"
    [[ "$line" == SMPOST_EVENT_STORE=mongodb://* ]] || die "unexpected output from mongo.sh: $line"
    export SMPOST_TEST_MONGO_URL="${line#SMPOST_EVENT_STORE=}"
    # FerretDB 1.x has no multi-document transactions (the contract test
    # then expects multi-event appends to be refused whole), and runs a
    # single-document update as a read and then a write, without isolation
    # (the lease takeover race cannot hold: skipped). docs/operations.md,
    # "MongoDB stand-ins".
    export SMPOST_TEST_MONGO_LACKS="transactions,atomic-updates"
    echo "with_ferretdb: SMPOST_TEST_MONGO_URL=$SMPOST_TEST_MONGO_URL" >&2
    "$@" || status=$?
    [[ "$status" == 0 || "$status" == 77 ]] || keep=1
    exit "$status"
}

main "$@"
