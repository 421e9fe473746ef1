#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs dependencies, builds, and runs every test with CTest.
#   scripts/test.sh            all tests in ./build
#   scripts/test.sh -L unit    extra arguments go to ctest
# The MongoDB adapter's tests start their MongoDB-wire servers themselves:
# jongodb (in memory, from npm; tests/integration/with_jongodb.sh) and
# FerretDB (built with Go; tests/integration/with_ferretdb.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SMPOST_BUILD_DIR:-$root/build}"
"$root/scripts/bootstrap.sh"
"$root/scripts/build.sh" "$build" ${SMPOST_CMAKE_ARGS:-}
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
