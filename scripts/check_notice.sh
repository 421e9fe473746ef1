#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/check_notice.sh — NOTICE lists every library the binaries link.
#
#   scripts/check_notice.sh BINARY...
#
# Reads each binary's direct dependencies (DT_NEEDED, `readelf -d`) and fails,
# naming them, for any soname that NOTICE's third-party table does not list
# (the C library, the dynamic loader and the sanitizers' runtimes aside). Run by CTest (release_notice)
# on command-api, query-api, smpost-devbroker and smpost-token.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
notice="$root/NOTICE"
[ -r "$notice" ] || { echo "check_notice: $notice is missing" >&2; exit 1; }
missing=0
for bin in "$@"; do
  [ -x "$bin" ] || { echo "check_notice: $bin is not an executable" >&2; exit 1; }
  while read -r so; do
    case "$so" in
      libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) continue ;;
      # the sanitizer build's runtimes (-DSMPOST_SANITIZE=ON): a test build, never shipped
      libasan.so.* | libubsan.so.* | liblsan.so.* | libtsan.so.*) continue ;;
    esac
    if ! grep -qF "($so)" "$notice"; then
      echo "check_notice: $(basename "$bin") links $so, which NOTICE does not list" >&2
      missing=1
    fi
  done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done
[ "$missing" = 0 ] && echo "check_notice: NOTICE lists every library of $# binaries"
exit "$missing"
