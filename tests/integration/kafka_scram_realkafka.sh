#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# integration_kafka_scram_realkafka: command-api, query-api and
# integration_kafka_secure built with librdkafka 2.6.1 (scripts/
# rdkafka_vendored.sh, -DSMPOST_RDKAFKA_DIR) log in to the real broker with
# SCRAM-SHA-512 (KAFKA_CLIENT_MECHANISM=SCRAM-SHA-512 for kafka.sh --secure):
# every case of test_kafka_secure.c, SCRAM instead of PLAIN: the relay
# publishes, query-api shows the post, the query user's write is refused, a
# wrong password is refused (the broker says SCRAM-SHA-512) and never logged.
#
#   kafka_scram_realkafka.sh SOURCE_DIR BINARY_DIR
#
# Debian's librdkafka (2.0.2) cannot: the normal build keeps it, and this
# test builds only its three targets again in BINARY_DIR/rdkafka-2.6.1
# (a few seconds; the library is cached in ~/.cache/smpost).
set -euo pipefail
src="$1" bin="$2"

if [ -z "${SMPOST_TEST_KAFKA:-}" ]; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: kafka_scram needs SMPOST_TEST_KAFKA (scripts/kafka.sh) and must run in CI" >&2
    exit 1
  fi
  echo "SKIPPED: kafka_scram needs a real broker: SMPOST_TEST_KAFKA=scripts/kafka.sh"
  exit 77
fi

vend="${SMPOST_CACHE_DIR:-$HOME/.cache/smpost}/rdkafka-v2.6.1"
"$src/scripts/rdkafka_vendored.sh" "$vend" >/dev/null

build="$bin/rdkafka-2.6.1"
log="$bin/rdkafka-2.6.1.log"
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSMPOST_BUILD_TESTS=ON \
             -DSMPOST_RDKAFKA_DIR="$vend" &&
       cmake --build "$build" -j"$(nproc)" --target command-api query-api integration_kafka_secure
     } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "FAIL: the build with librdkafka 2.6.1 failed (see $log)" >&2
  exit 1
fi

api="$build/command-api/command-api" query="$build/query-api/query-api"
test_bin="$build/tests/integration_kafka_secure"
# each binary loads the 2.6.1 library, not Debian's
for b in "$api" "$query" "$test_bin"; do
  got="$(ldd "$b" | awk '$1 == "librdkafka.so.1" {print $3}')"
  if [ "$got" != "$vend/lib/librdkafka.so.1" ]; then
    echo "FAIL: $b loads librdkafka.so.1 from '$got', not $vend/lib" >&2
    exit 1
  fi
done

export KAFKA_CLIENT_MECHANISM=SCRAM-SHA-512
export SMPOST_COMMAND_API_BIN="$api" SMPOST_QUERY_API_BIN="$query"
exec "$test_bin"
