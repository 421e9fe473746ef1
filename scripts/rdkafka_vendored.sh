#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A librdkafka newer than Debian 12's (2.0.2), for SCRAM logins to Kafka 4.x:
# librdkafka before 2.6.1 repeats the client nonce in the SCRAM
# client-final-message, which Kafka 4.x refuses ("invalid credentials";
# librdkafka PR 4895, fixed in 2.6.1).
#
#   scripts/rdkafka_vendored.sh DIR   prints SMPOST_RDKAFKA_DIR=DIR last
#
# Source: the Go module proxy's zip of github.com/confluentinc/
# confluent-kafka-go/v2 at $RDKAFKA_GO_VERSION (v2.6.1), which carries
# Confluent's static build of librdkafka for glibc x86_64 (OpenSSL, zstd, lz4,
# zlib and curl linked in; no Cyrus SASL, so no GSSAPI: SCRAM and PLAIN are
# librdkafka's own) in kafka/librdkafka_vendor/, and its headers. The zip's
# SHA-256 is pinned below: it is the zip `go mod download` verifies against
# sum.golang.org (go.sum h1:XFkytnGvk/ZcY2qU0ql4E4h+ftBaGqkLO7tlZ4kRbr4=).
# Downloaded once into ~/.cache/smpost (or $SMPOST_CACHE_DIR).
#
# DIR gets a shared library made from that archive, exporting only the
# rd_kafka_* API (its OpenSSL, curl and zstd stay private, so they cannot
# clash with the system's libssl that libmongoc and libcrypto bring in), with
# the soname of Debian's (librdkafka.so.1, the same ABI):
#   DIR/lib/librdkafka.so.1, DIR/lib/librdkafka.so
#   DIR/include/librdkafka/rdkafka.h, rdkafka_mock.h
#   DIR/lib/pkgconfig/rdkafka.pc
#   DIR/LICENSES.txt                 (librdkafka's and the bundled libraries')
# Build with it: cmake -DSMPOST_RDKAFKA_DIR=DIR (the binaries find it by their
# RUNPATH); or run binaries built against Debian's with
# LD_LIBRARY_PATH=DIR/lib. docs/operations.md, "Kafka: SASL_SSL and ACLs".
# Needs curl, python3, gcc, nm and sha256sum; x86_64 glibc only.
set -euo pipefail

die() { echo "rdkafka_vendored.sh: $*" >&2; exit 1; }

version="${RDKAFKA_GO_VERSION:-v2.6.1}"
# sha256 of the proxy's zip, per version
case "$version" in
  v2.6.1) sum=c3e55d4acfa409b39abce97f13ebe6ab035aea25d39d0ac22278077acd88aaab ;;
  *) sum="${RDKAFKA_GO_SHA256:-}"
     [ -n "$sum" ] || die "no pinned checksum for $version: set RDKAFKA_GO_SHA256" ;;
esac
module=github.com/confluentinc/confluent-kafka-go/v2
vendor="$module@$version/kafka/librdkafka_vendor"
proxy="${GOPROXY_URL:-https://proxy.golang.org}"

dir="${1:-}"
[ -n "$dir" ] || die "usage: scripts/rdkafka_vendored.sh DIR"
[ "$(uname -m)" = x86_64 ] || die "only x86_64 (glibc) is set up here; the module has arm64 too"
command -v gcc >/dev/null || die "gcc is not installed"

cache="${SMPOST_CACHE_DIR:-$HOME/.cache/smpost}"
zip="$cache/confluent-kafka-go-$version.zip"
mkdir -p "$cache"
# tests may make it in parallel: one at a time, until DIR is complete
exec 9>"$zip.lock"
flock 9
if [ ! -f "$zip" ] || ! echo "$sum  $zip" | sha256sum -c --quiet 2>/dev/null; then
  curl -fsSL --retry 3 -o "$zip.part" "$proxy/$module/@v/$version.zip" ||
    die "cannot fetch $module@$version from $proxy"
  echo "$sum  $zip.part" | sha256sum -c --quiet ||
    { rm -f "$zip.part"; die "checksum mismatch for $module@$version"; }
  mv "$zip.part" "$zip"
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# already made from this zip: nothing to do
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$sum" ]; then
  echo "SMPOST_RDKAFKA_DIR=$dir"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
files=(librdkafka_glibc_linux_amd64.a rdkafka.h rdkafka_mock.h LICENSES.txt)
python3 - "$zip" "$work" "$vendor" "${files[@]}" <<'PY' || die "cannot unpack $zip"
import sys, zipfile, os
zf, out, prefix, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(zf) as z:
    for n in names:
        with z.open(prefix + "/" + n) as src, open(os.path.join(out, n), "wb") as dst:
            dst.write(src.read())
PY
hex="$(sed -n 's/^#define RD_KAFKA_VERSION *0x\([0-9a-f]*\).*/\1/p' "$work/rdkafka.h")"
[ -n "$hex" ] || die "no RD_KAFKA_VERSION in the module's rdkafka.h"
rdv="$((16#${hex:0:2})).$((16#${hex:2:2})).$((16#${hex:4:2}))"

# Export the public API only (every rd_kafka_* the archive defines).
nm -g --defined-only "$work/librdkafka_glibc_linux_amd64.a" 2>/dev/null |
  awk '$2 ~ /^[TDBRW]$/ && $3 ~ /^rd_kafka_/ {print "  " $3 ";"}' | sort -u >"$work/api"
[ -s "$work/api" ] || die "no rd_kafka_ symbols in the archive"
{ echo "{ global:"; cat "$work/api"; echo "  local: *; };"; } >"$work/rdkafka.map"
rm -rf "$dir/lib" "$dir/include" "$dir/.complete"
mkdir -p "$dir/lib/pkgconfig" "$dir/include/librdkafka"
gcc -shared -o "$dir/lib/librdkafka.so.1" -Wl,-soname,librdkafka.so.1 \
    -Wl,--version-script="$work/rdkafka.map" -Wl,-Bsymbolic -Wl,-z,defs -Wl,-z,now \
    -Wl,--whole-archive "$work/librdkafka_glibc_linux_amd64.a" -Wl,--no-whole-archive \
    -lm -ldl -lpthread -lrt || die "cannot link librdkafka.so.1"
ln -sf librdkafka.so.1 "$dir/lib/librdkafka.so"
cp "$work/rdkafka.h" "$work/rdkafka_mock.h" "$dir/include/librdkafka/"
cp "$work/LICENSES.txt" "$dir/LICENSES.txt"
cat >"$dir/lib/pkgconfig/rdkafka.pc" <<PC
prefix=$dir
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: librdkafka
Description: The Apache Kafka C/C++ library ($module@$version, shared build of its static bundle)
Version: $rdv
Cflags: -I\${includedir}
Libs: -L\${libdir} -lrdkafka
PC
echo "$sum" >"$dir/.complete"
echo "rdkafka_vendored.sh: librdkafka $rdv in $dir/lib" >&2
echo "SMPOST_RDKAFKA_DIR=$dir"
