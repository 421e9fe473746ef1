#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer harnesses with clang (AddressSanitizer, UndefinedBehavior-
# Sanitizer, LeakSanitizer) and runs each for a bounded time, starting from its
# seed corpus (which includes every input that once found a bug). Fails if any
# harness reports a crash, a leak, a sanitizer error, a broken property
# (FUZZ_CHECK) or a slow input.
#
#   tests/fuzz/run.sh                    all harnesses, 60 s in total
#   SMPOST_FUZZ_SECONDS=600 tests/fuzz/run.sh
#   tests/fuzz/run.sh fuzz_query_params  only the harnesses named
#
# Installs clang and libFuzzer (Debian 12: clang, libclang-rt-14-dev, which
# holds libclang_rt.fuzzer; llvm for llvm-symbolizer) when missing. New
# corpus entries and crash inputs go to a temporary directory, printed on
# failure: a crash input belongs in corpus/<harness>/ with a regression test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${SMPOST_FUZZ_BUILD_DIR:-$root/build-fuzz}"
total="${SMPOST_FUZZ_SECONDS:-60}"

packages=(clang libclang-rt-14-dev llvm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "fuzz: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
  harnesses=(fuzz_event_decode fuzz_command_body fuzz_command_route fuzz_query_params fuzz_jwt)
fi

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSMPOST_FUZZ=ON -DSMPOST_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${harnesses[@]}"

per=$(( total / ${#harnesses[@]} ))
((per >= 1)) || per=1
work="$(mktemp -d /tmp/smpost-fuzz-XXXXXX)"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
passed=0
failed=0
summary=()
for h in "${harnesses[@]}"; do
  mkdir -p "$work/$h/new"
  log="$work/$h/log"
  rc=0
  # -timeout: an input that takes over 10 s is a failure (a hang);
  # the outer timeout only guards against libFuzzer itself not stopping.
  timeout $((per + 120)) "$build/tests/fuzz/$h" \
    -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 \
    -print_final_stats=1 -dict="$here/$h.dict" -artifact_prefix="$work/$h/" \
    "$work/$h/new" "$here/corpus/$h" >"$log" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  line="$h: ${per} s, ${runs:-?} runs (${speed:-?}/s), seeds $(ls "$here/corpus/$h" | wc -l)"
  if ((rc == 0)); then
    passed=$((passed + 1))
    summary+=("ok    $line")
  else
    failed=$((failed + 1))
    summary+=("FAIL  $line, exit $rc")
    echo "---- $h failed (exit $rc); last lines of $log:" >&2
    tail -n 60 "$log" >&2
    ls "$work/$h"/crash-* "$work/$h"/leak-* "$work/$h"/timeout-* "$work/$h"/oom-* 2>/dev/null >&2 || true
  fi
done
printf '%s\n' "${summary[@]}"
echo "fuzzing: $passed passed, $failed failed"
if ((failed)); then
  echo "fuzz: inputs and logs kept in $work" >&2
  exit 1
fi
rm -rf "$work"
