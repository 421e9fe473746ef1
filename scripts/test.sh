#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test with CTest.
#   scripts/test.sh            all tests in ./build
#   scripts/test.sh -L unit    extra arguments go to ctest
# The MongoDB adapter's tests start an in-memory MongoDB-wire server
# (jongodb, from npm) themselves; see tests/integration/with_jongodb.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SMPOST_BUILD_DIR:-$root/build}"
"$root/scripts/bootstrap.sh"
"$root/scripts/build.sh" "$build" ${SMPOST_CMAKE_ARGS:-}
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
