#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Debian package smpost_<version>_<arch>.deb (cmake/packaging.cmake)
# in its own build directory and prints its path as the last line.
#   scripts/package.sh [BUILD_DIR]        (default ./build-deb)
# Configured for /usr (what the binaries and units then name), Release, no
# tests, with Debian's hardening flags (dpkg-buildflags: fortify, stack
# protector, relro, bindnow, PIE) as a Debian package build would use them.
# Needs dpkg-dev (dpkg-shlibdeps computes the dependencies) and Swagger UI's
# files (scripts/npm_ci.sh docs/swagger-ui, run here if they are missing).
# Incremental when BUILD_DIR exists.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-deb}"
for tool in dpkg-buildflags dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool is missing (apt install dpkg-dev)" >&2; exit 1; }
done
# Swagger UI's files are part of the package (cmake/install.cmake)
[ -f "$root/docs/swagger-ui/node_modules/swagger-ui-dist/index.html" ] ||
  "$root/scripts/npm_ci.sh" "$root/docs/swagger-ui" >&2
# Debian's build flags, without -ffile-prefix-map's reproducibility path
# (it names the current directory, which is not a source tree here).
export DEB_BUILD_MAINT_OPTIONS="hardening=+all"
flags() { dpkg-buildflags --get "$1" | sed 's/-ffile-prefix-map=[^ ]*//g'; }
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DSMPOST_BUILD_TESTS=OFF \
  -DCMAKE_C_FLAGS="$(flags CFLAGS) $(flags CPPFLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$(flags LDFLAGS)" \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null
cmake --build "$build" -j"${SMPOST_BUILD_JOBS:-$(nproc)}" >"$build/build.log" 2>&1 ||
  { tail -n 40 "$build/build.log" >&2; exit 1; }
(cd "$build" && cpack -G DEB >"$build/cpack.log" 2>&1) || { cat "$build/cpack.log" >&2; exit 1; }
deb="$(ls -t "$build"/smpost_*.deb | head -n 1)"
[ -s "$deb" ] || { echo "package.sh: cpack made no .deb in $build" >&2; exit 1; }
echo "$deb"
