# SPDX-License-Identifier: Apache-2.0
# lib.sh — start-up shared by the browser tests (run.sh: Swagger UI;
# cors.sh: a page on another origin). Sourced, not run:
#
#   source "$here/lib.sh"; browser_init BUILD_DIR OUT_DIR
#
# browser_init checks for Chromium, node and puppeteer-core (outside CI a
# missing one is "SKIPPED: <why>" and exit 77, CTest's skip code; under
# CI=true a failure), empties OUT_DIR and makes a work directory. Every
# process started with browser_spawn is stopped at exit, last first (the
# services before the broker, so a relay can flush), and the *.log files of
# the work directory are copied to OUT_DIR.
#
# Sets: root build out work chromium; pids (array).

unavailable() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "browser test: $* (CI=true, so this is a failure, not a skip)" >&2
    exit 1
  fi
  echo "SKIPPED: $*"
  exit 77
}

browser_init() {
  root="$(cd "$here/../.." && pwd)"
  build="$(cd "$1" && pwd)"
  out="$2"
  chromium="${SMPOST_CHROMIUM:-$(command -v chromium || true)}"
  [[ -n "$chromium" && -x "$chromium" ]] ||
    unavailable "Debian's chromium is not installed (scripts/bootstrap.sh installs it)"
  command -v node >/dev/null 2>&1 || unavailable "node is not installed"
  "$root/scripts/npm_ci.sh" "$here" || unavailable "npm could not install puppeteer-core"
  rm -rf -- "$out"
  mkdir -p -- "$out"
  work="$(mktemp -d "${TMPDIR:-/tmp}/smpost-browser.XXXXXX")"
  pids=()
  trap browser_cleanup EXIT
}

browser_cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  cp "$work"/*.log "$out"/ 2>/dev/null || true
  rm -rf -- "$work"
}

# browser_spawn NAME CMD ARGS...: runs CMD in the background, stdout to
# $work/NAME.out, stderr to $work/NAME.log; stopped at exit.
browser_spawn() {
  local name="$1"
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
}

# Waits for "KEY=value" / "key=value" in a log file; prints the value.
wait_for() {
  local file="$1" pattern="$2" value=""
  for _ in $(seq 150); do
    value="$(sed -n "s/.*$pattern\([0-9A-Za-z.:]*\).*/\1/p" "$file" | head -n 1)"
    [[ -n "$value" ]] && { echo "$value"; return 0; }
    sleep 0.1
  done
  echo "browser test: no '$pattern' in $file within 15 s:" >&2
  tail -n 20 "$file" >&2
  return 1
}

# The port a service started with browser_spawn NAME listens on.
service_port() {
  wait_for "$work/$1.log" "event=listening service=$2 .* port="
}

# Starts smpost-devbroker; exports KAFKA_BOOTSTRAP_SERVERS.
start_devbroker() {
  browser_spawn devbroker "$build/tools/smpost-devbroker"
  KAFKA_BOOTSTRAP_SERVERS="$(wait_for "$work/devbroker.out" 'SMPOST_KAFKA_BOOTSTRAP=')"
  export KAFKA_BOOTSTRAP_SERVERS
}

# A development key pair in $work/auth (compose/auth/dev-key.sh) and the
# flags a command-api needs to take tokens signed with it.
dev_auth_flags=()
make_dev_key() {
  "$root/compose/auth/dev-key.sh" "$work/auth" >/dev/null
  dev_auth_flags=(--jwks-file "$work/auth/jwks/jwks.json" --jwt-issuer smpost-dev
                  --jwt-audience smpost)
}

# dev_token NAME: a token for user NAME, signed with make_dev_key's key.
dev_token() {
  "$build/tools/smpost-token" --key "$work/auth/dev-key.pem" --iss smpost-dev --aud smpost \
    --sub "$1" --name "$1"
}

# Waits until query-api on port $1 has joined the consumer group (the first
# join takes a few seconds on the local broker).
wait_consumer() {
  for _ in $(seq 150); do
    curl -s "http://127.0.0.1:$1/health" | grep -q '"assignedPartitions":6' && return 0
    sleep 0.1
  done
}

# Prints the last lines of each named log (after a failure).
show_logs() {
  for log in "$@"; do
    echo "---- last lines of $log.log" >&2
    tail -n 15 "$work/$log.log" >&2
  done
}
