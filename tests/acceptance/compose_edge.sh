#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compose/nginx.conf, the compose stack's edge, run for real: nginx with the
# shipped file (its paths, upstream names and ports pointed at this test's
# directory, a trivial Python upstream and free ports; the limits' numbers
# scaled down so that they are reached by a few requests) and a certificate
# from compose/tls/dev-cert.sh. Checks:
#   - nginx -t accepts it;
#   - both ports answer HTTPS with the development certificate, verified
#     against its CA under the name localhost; plain HTTP there is refused
#     (400), and no plain HTTP port serves the APIs;
#   - a body of 64 KiB passes, one byte more is 413 (the services' limit);
#   - past the request rate (limit_req) a client gets 429;
#   - past the connections in progress (limit_conn) a client gets 429.
# nginx comes from PATH or /usr/sbin, else Debian's package is fetched with
# `apt-get download` and unpacked into ~/.cache/smpost/nginx (nothing
# installed, no service started); without any, the test skips (exit 77),
# except in CI (CI=true), where it fails.
#   compose_edge.sh ROOT
set -euo pipefail
root="$1"
work="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ "${passed:-0}" = 1 ]; then rm -rf "$work"; else echo "# logs kept in $work"; fi
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*" >&2
  tail -20 "$work/nginx.err" >&2 2>/dev/null || true
  exit 1
}
skip() {
  if [ "${CI:-}" = true ]; then fail "$* (CI: not skipped)"; fi
  echo "SKIP: $*"
  exit 77
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx="$(command -v nginx || true)"
[ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || true
cache="${HOME:-/tmp}/.cache/smpost/nginx"
if [ -z "$nginx" ] && [ ! -x "$cache/root/usr/sbin/nginx" ] && command -v apt-get >/dev/null; then
  mkdir -p "$cache"
  (cd "$cache" && apt-get download -qq nginx >/dev/null 2>&1 && dpkg-deb -x nginx_*.deb root) || true
fi
[ -n "$nginx" ] || { [ -x "$cache/root/usr/sbin/nginx" ] && nginx="$cache/root/usr/sbin/nginx"; } || true
[ -n "$nginx" ] || skip "nginx is not installed (apt-get install nginx) and apt-get download nginx failed"
echo "# $("$nginx" -v 2>&1) ($nginx)"

up="$(free_port)"; cmd="$(free_port)"; qry="$(free_port)"; hc="$(free_port)"; graf="$(free_port)"
mkdir -p "$work/conf" "$work/run"
"$root/compose/tls/dev-cert.sh" "$work/conf/tls" >/dev/null

# The shipped file, with what differs here replaced; every replacement must
# match, or the test would run on something else than the shipped file.
conf="$work/conf/nginx.conf"
cp "$root/compose/nginx.conf" "$conf"
subst() {
  grep -qF -- "$1" "$conf" || fail "compose/nginx.conf no longer contains '$1'"
  python3 - "$conf" "$1" "$2" <<'PY'
import sys
p, a, b = sys.argv[1:]
s = open(p).read()
open(p, "w").write(s.replace(a, b))
PY
}
subst "/tmp/nginx" "$work/run/nginx"
subst "http://command-api:5001" "http://127.0.0.1:$up"
subst "http://query-api:5002" "http://127.0.0.1:$up"
subst "listen 5001 ssl;" "listen 127.0.0.1:$cmd ssl;"
subst "listen 5002 ssl;" "listen 127.0.0.1:$qry ssl;"
subst "http://grafana:3000" "http://127.0.0.1:$up"
subst "listen 3000 ssl;" "listen 127.0.0.1:$graf ssl;"
subst "listen 127.0.0.1:8080;" "listen 127.0.0.1:$hc;"
# scaled down: commands 1 a minute with a burst of 2 (3 at once, then 429);
# one request in progress per client
subst "zone=commands:10m rate=10r/s" "zone=commands:10m rate=1r/m"
subst "zone=commands burst=20 nodelay" "zone=commands burst=2 nodelay"
subst "limit_conn per_client 20;" "limit_conn per_client 1;"

# The upstream: answers 200 with what it got; /slow waits until the test
# creates $work/release (and says it has started by creating $work/slow).
cat >"$work/upstream.py" <<'PY'
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
work = sys.argv[2]
class H(BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path == "/slow":
            open(os.path.join(work, "slow"), "w").close()
            for _ in range(600):
                if os.path.exists(os.path.join(work, "release")):
                    break
                time.sleep(0.05)
        out = ("upstream %s %s body=%d proto=%s\n" % (self.command, self.path, len(body),
               self.headers.get("X-Forwarded-Proto"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/upstream.py" "$up" "$work" &
pids+=($!)

"$nginx" -t -q -e stderr -p "$work/run" -c "$conf" 2>"$work/nginx-t.err" ||
  { cat "$work/nginx-t.err" >&2; fail "nginx -t rejects compose/nginx.conf"; }
echo "ok   nginx -t accepts compose/nginx.conf"
"$nginx" -e "$work/nginx.err" -p "$work/run" -c "$conf" -g 'daemon off;' \
  >"$work/nginx.out" 2>>"$work/nginx.err" &
pids+=($!)
ready=""
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$hc/health" >/dev/null && curl -s -o /dev/null "http://127.0.0.1:$up/"; then
    ready=1; break
  fi
  sleep 0.1
done
[ -n "$ready" ] || fail "nginx or the upstream did not start"

tls() { curl -s --cacert "$work/conf/tls/ca.crt" -o "$work/body" -w '%{http_code}' "$@"; }
for port in "$cmd" "$qry"; do
  code="$(tls "https://localhost:$port/hello")" || fail "no TLS answer on $port"
  [ "$code" = 200 ] && grep -q '^upstream GET /hello body=0 proto=https$' "$work/body" ||
    fail "https://localhost:$port/hello: $code $(cat "$work/body")"
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/hello")" || true
  [ "$code" = 400 ] || fail "plain HTTP on the TLS port $port answered $code, not 400"
done
echo "ok   HTTPS on both ports (certificate verified as localhost); plain HTTP there is 400"
code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hc/hello")" || true
[ "$code" = 404 ] || fail "the health port serves more than /health ($code)"

head -c 65536 /dev/zero >"$work/64k"
head -c 65537 /dev/zero >"$work/64k+1"
code="$(tls -X POST --data-binary @"$work/64k" "https://localhost:$qry/body")"
[ "$code" = 200 ] && grep -q 'body=65536 ' "$work/body" || fail "a 64 KiB body: $code $(cat "$work/body")"
code="$(tls -X POST --data-binary @"$work/64k+1" "https://localhost:$qry/body")"
[ "$code" = 413 ] || fail "a body of 64 KiB + 1 byte: $code, not 413"
echo "ok   64 KiB bodies pass, 64 KiB + 1 is 413"

# 3 at once per client (1 + burst 2): the /hello above was the first
codes=""
for _ in 1 2 3 4; do codes="$codes $(tls "https://localhost:$cmd/rate")"; done
case "$codes" in
  " 200 200 429 429") ;;
  *) fail "commands past the rate: $codes (want 200 200 429 429)" ;;
esac
grep -q 'limiting requests' "$work/nginx.err" || fail "no 'limiting requests' line in nginx's log"
echo "ok   past the request rate: 429 ($codes)"

tls -o "$work/slow.body" "https://localhost:$qry/slow" >"$work/slow.code" &
slow=$!
for _ in $(seq 200); do [ -e "$work/slow" ] && break; sleep 0.05; done
[ -e "$work/slow" ] || fail "the slow request never reached the upstream"
code="$(tls "https://localhost:$qry/second")"
touch "$work/release"
wait "$slow" || true
[ "$code" = 429 ] || fail "a second request in progress from the same client: $code, not 429"
[ "$(cat "$work/slow.code")" = 200 ] || fail "the slow request: $(cat "$work/slow.code")"
grep -q 'limiting connections' "$work/nginx.err" || fail "no 'limiting connections' line in nginx's log"
echo "ok   past the connections in progress: 429, the first request still answered"
passed=1
echo "PASS compose_edge"
