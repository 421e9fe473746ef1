#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A MongoDB-wire server on this machine, for tests, benchmarks and local runs
# (no Docker, no MongoDB package): FerretDB 1.x, built from the Go module
# proxy, with its embedded SQLite backend (files, so data survives a restart).
#
#   scripts/mongo.sh start DIR [PORT] [--secure [--mtls]]
#                                       prints SMPOST_EVENT_STORE=mongodb://127.0.0.1:PORT/socialMedia last
#   scripts/mongo.sh stop DIR
#   scripts/mongo.sh build              builds (once) and prints the binary's path
#
# --secure: TLS and authentication, as the compose stack's mongod runs them.
# Makes (once per DIR, kept across stop/start) a CA, a server certificate
# for IP 127.0.0.1 only (not "localhost": tests use that to check the
# driver's host name check) and a client certificate, in DIR/tls (openssl),
# and a random password for user "smpost" of database socialMedia in
# DIR/password (mode 600). FerretDB then listens on TLS only (no plaintext
# port) and runs with --test-enable-new-auth: SCRAM-SHA-256/SCRAM-SHA-1
# logins against users it stores itself, every command but hello, ping and
# buildInfo refused without one; the user is made by --setup-username (the
# password goes in by the environment, not on the command line). FerretDB
# 1.x has no roles: any user may do anything (least privilege is tested on
# real MongoDB only; docs/operations.md, "MongoDB: TLS and authentication").
# The URI printed has the password and tlsCAFile=DIR/tls/ca.pem.
# --mtls also makes FerretDB require a client certificate signed by the CA
# (--listen-tls-ca-file), and the URI names DIR/tls/client.pem as
# tlsCertificateKeyFile.
#
# build: `go install ...@v1.24.2` would give a binary that panics at start
# (its build/version/version.txt is generated from git and is empty in the
# module), so the module's source is copied out of the module cache, given a
# version.txt, and built there. The binary is cached per version in
# ${SMPOST_CACHE_DIR:-~/.cache/smpost}/ferretdb-v1.24.2/ferretdb: the first
# build on a machine takes about a minute (module downloads), a rebuild with
# warm Go caches a few seconds, every later start none.
# start: runs it on 127.0.0.1:PORT (default: a port the kernel picks, read
# back from FerretDB's log, so no race for a free port) with its SQLite files
# in DIR/data and its state in DIR (both kept across stop/start), log in
# DIR/ferretdb.log (level $SMPOST_FERRETDB_LOG_LEVEL, default info; debug
# logs every request and reply), no telemetry, no debug HTTP listener; waits
# until it answers a ping (an OP_MSG sent by python3) and prints the URI.
# Fails (non-zero, the log's tail on stderr) if it does not answer in 30 s.
# stop: SIGTERM, SIGKILL after 10 s.
#
# Exit status 69 (EX_UNAVAILABLE) means "cannot have FerretDB here": no Go
# toolchain (1.21 or newer; scripts/bootstrap.sh installs one), or the
# module proxy unreachable on a first build. Test wrappers turn it into a
# skip outside CI (tests/integration/with_ferretdb.sh).
#
# What FerretDB lacks compared with MongoDB, and what that means for the
# event store: docs/operations.md, "MongoDB stand-ins".
set -euo pipefail

readonly FERRETDB_VERSION="v1.24.2"
readonly FERRETDB_MODULE="github.com/FerretDB/FerretDB"
readonly START_TIMEOUT_S=30
readonly STOP_TIMEOUT_S=10
readonly EX_UNAVAILABLE=69

die() { echo "mongo.sh: $*" >&2; exit 1; }
unavailable() { echo "mongo.sh: $*" >&2; exit "$EX_UNAVAILABLE"; }

cache_dir() { echo "${SMPOST_CACHE_DIR:-${HOME:-/tmp}/.cache/smpost}/ferretdb-$FERRETDB_VERSION"; }

# A go command that can build FerretDB: 1.21 or newer, which fetches the
# toolchain FerretDB's go.mod asks for (go1.24) from the module proxy by
# itself when it is older than that. CTest and CI may run with a PATH that
# lacks Go's usual directory, so that is tried too (/usr/local/go, or
# $SMPOST_GO_ROOT: where scripts/bootstrap.sh installs Go); $SMPOST_GO
# names a go command to use before any other.
find_go() {
  local g v minor
  for g in "${SMPOST_GO:-}" "$(command -v go 2>/dev/null || true)" \
           "${SMPOST_GO_ROOT:-/usr/local/go}/bin/go"; do
    [ -n "$g" ] && [ -x "$g" ] || continue
    v="$("$g" env GOVERSION 2>/dev/null)" || continue
    minor="$(sed -n 's/^go1\.\([0-9]*\).*/\1/p' <<<"$v")"
    [ -n "$minor" ] && ((minor >= 21)) && { echo "$g"; return 0; }
  done
  return 1
}

build() {
  local cache bin go src lock
  cache="$(cache_dir)"
  bin="$cache/ferretdb"
  if [ -x "$bin" ] && [ -f "$cache/.complete" ]; then
    echo "$bin"
    return 0
  fi
  go="$(find_go)" || unavailable "no Go toolchain 1.21+ (PATH, /usr/local/go/bin; run scripts/bootstrap.sh)"
  mkdir -p "$cache" || die "cannot create $cache"
  # Parallel test jobs share the cache: one builds, the others wait for it.
  lock="$cache/.build.lock"
  exec 8>"$lock"
  flock 8
  if [ ! -x "$bin" ] || [ ! -f "$cache/.complete" ]; then
    local t0=$SECONDS dir
    echo "mongo.sh: building FerretDB $FERRETDB_VERSION with $("$go" env GOVERSION) into $cache" >&2
    # auto: a Go older than go.mod's wants fetches the right toolchain from
    # the module proxy, whatever `go env -w GOTOOLCHAIN` says on this machine.
    export GOTOOLCHAIN=auto GOFLAGS=-buildvcs=false CGO_ENABLED=0
    dir="$(cd "$cache" && "$go" mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
           sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" ||
      unavailable "cannot download $FERRETDB_MODULE@$FERRETDB_VERSION from the Go module proxy"
    [ -n "$dir" ] && [ -d "$dir" ] || unavailable "go mod download gave no source directory"
    src="$cache/src"
    rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
    # what `bin/task gen-version` would write from git; the binary refuses
    # to start without a version beginning with v
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
    (cd "$src" && "$go" build -trimpath -o "$bin.tmp" ./cmd/ferretdb) >&2 ||
      unavailable "go build of FerretDB $FERRETDB_VERSION failed (see above)"
    mv "$bin.tmp" "$bin"
    rm -rf "$src"
    touch "$cache/.complete"
    echo "mongo.sh: built FerretDB in $((SECONDS - t0)) s" >&2
  fi
  exec 8>&-
  echo "$bin"
}

# Sends { ping: 1, $db: "admin" } as an OP_MSG and exits 0 if the reply says
# ok: 1. No driver or shell needed, only python3. With a CA file (and a
# client certificate), over TLS, checking the server's certificate.
ping_server() {
  python3 - "$@" <<'PY'
import socket, ssl, struct, sys
port = int(sys.argv[1])
ca = sys.argv[2] if len(sys.argv) > 2 else ""
client = sys.argv[3] if len(sys.argv) > 3 else ""
def cstr(s): return s.encode() + b"\0"
body = (b"\x10" + cstr("ping") + struct.pack("<i", 1) +
        b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin"))
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
        if client: ctx.load_cert_chain(client)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg)
    head = b""
    while len(head) < 16:
        chunk = s.recv(16 - len(head))
        if not chunk: sys.exit(1)
        head += chunk
    length = struct.unpack("<i", head[:4])[0]
    rest = b""
    while len(rest) < length - 16:
        chunk = s.recv(length - 16 - len(rest))
        if not chunk: sys.exit(1)
        rest += chunk
except (OSError, ssl.SSLError):
    sys.exit(1)
reply = rest[5:]  # flagBits, section kind 0
i = 4
while i < len(reply) - 1:  # walk the reply's elements for ok
    kind = reply[i]; j = reply.index(b"\0", i + 1); name = reply[i + 1:j]; i = j + 1
    if kind == 0x01:
        if name == b"ok": sys.exit(0 if struct.unpack("<d", reply[i:i + 8])[0] == 1.0 else 1)
        i += 8
    elif kind in (0x10,): i += 4
    elif kind in (0x12, 0x09, 0x11): i += 8
    elif kind == 0x08: i += 1
    elif kind == 0x02: i += 4 + struct.unpack("<i", reply[i:i + 4])[0]
    elif kind in (0x03, 0x04): i += struct.unpack("<i", reply[i:i + 4])[0]
    else: sys.exit(1)
sys.exit(1)
PY
}

now_ms() { date +%s%3N; }

# --secure's files in DIR/tls and DIR/password, made once (see the header).
make_secure_files() {
  local dir="$1" t="$1/tls"
  command -v openssl >/dev/null || die "--secure needs openssl"
  if [ ! -f "$t/.complete" ]; then
    rm -rf "$t" && mkdir -m 700 "$t"
    (umask 077 && cd "$t" &&
     openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
             -subj "/CN=smpost FerretDB test CA" &&
     openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" &&
     printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
     openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
             -extfile server.ext -out server.pem &&
     openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=smpost" &&
     printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
     openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
             -extfile client.ext -out client.crt &&
     cat client.crt client.key >client.pem && rm -f ./*.csr ./*.ext client.crt) >/dev/null 2>&1 ||
      die "openssl could not make the certificates in $t"
    touch "$t/.complete"
  fi
  if [ ! -s "$dir/password" ]; then
    (umask 077 && openssl rand -hex 16 >"$dir/password") || die "cannot write $dir/password"
  fi
}

start() {
  local dir="" port="" secure="" mtls="" a
  for a in "$@"; do
    case "$a" in
      --secure) secure=1 ;;
      --mtls) secure=1; mtls=1 ;;
      -*) die "unknown option $a" ;;
      *) if [ -z "$dir" ]; then dir="$a"; elif [ -z "$port" ]; then port="$a";
         else die "usage: mongo.sh start DIR [PORT] [--secure [--mtls]]"; fi ;;
    esac
  done
  [ -n "$dir" ] || die "usage: mongo.sh start DIR [PORT] [--secure [--mtls]]"
  mkdir -p "$dir/data"
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/ferretdb.pid" ] && kill -0 "$(cat "$dir/ferretdb.pid")" 2>/dev/null &&
    die "FerretDB already runs from $dir (pid $(cat "$dir/ferretdb.pid"))"
  local bin log="$dir/ferretdb.log" t0 listen kind=TCP ping_args=()
  listen=(--listen-addr="127.0.0.1:${port:-0}")
  if [ -n "$secure" ]; then
    make_secure_files "$dir"
    kind=TLS
    listen=(--listen-addr= --listen-tls="127.0.0.1:${port:-0}"
            --listen-tls-cert-file="$dir/tls/server.pem" --listen-tls-key-file="$dir/tls/server.key"
            --test-enable-new-auth --setup-database=socialMedia --setup-username=smpost)
    ping_args=("$dir/tls/ca.pem")
    if [ -n "$mtls" ]; then
      listen+=(--listen-tls-ca-file="$dir/tls/ca.pem")
      ping_args+=("$dir/tls/client.pem")
    fi
  fi
  bin="$(build)"
  t0="$(now_ms)"
  : >"$log"
  FERRETDB_SETUP_PASSWORD="$([ -z "$secure" ] || cat "$dir/password")" \
  nohup "$bin" --handler=sqlite --sqlite-url="file:$dir/data/" --state-dir="$dir" \
        "${listen[@]}" --debug-addr=- --telemetry=disable \
        --log-level="${SMPOST_FERRETDB_LOG_LEVEL:-info}" >"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/ferretdb.pid"
  # "Listening on TCP 127.0.0.1:PORT..." (or TLS) names the port the kernel gave
  until [ -n "$port" ] && [ "$port" != 0 ] && ping_server "$port" "${ping_args[@]}"; do
    if [ -z "$port" ] || [ "$port" = 0 ]; then
      port="$(sed -n "s/.*Listening on $kind 127\.0\.0\.1:\([0-9][0-9]*\)\.\.\..*/\1/p" "$log" | head -n 1)"
    fi
    if ! kill -0 "$pid" 2>/dev/null || (($(now_ms) - t0 > START_TIMEOUT_S * 1000)); then
      tail -n 30 "$log" >&2 || true
      stop "$dir" >/dev/null 2>&1 || true
      die "FerretDB did not answer a ping within ${START_TIMEOUT_S} s (see $log)"
    fi
    sleep 0.05
  done
  # a PORT given by the caller may belong to another server that answered
  kill -0 "$pid" 2>/dev/null || { tail -n 5 "$log" >&2; die "FerretDB exited (port $port taken?)"; }
  echo "$port" >"$dir/port"
  echo "mongo.sh: FerretDB $FERRETDB_VERSION up in $(($(now_ms) - t0)) ms (pid $pid, port $port, log $log)" >&2
  if [ -z "$secure" ]; then
    echo "SMPOST_EVENT_STORE=mongodb://127.0.0.1:$port/socialMedia"
  elif [ -z "$mtls" ]; then
    echo "SMPOST_EVENT_STORE=mongodb://smpost:$(cat "$dir/password")@127.0.0.1:$port/socialMedia?tls=true&tlsCAFile=$dir/tls/ca.pem"
  else
    echo "SMPOST_EVENT_STORE=mongodb://smpost:$(cat "$dir/password")@127.0.0.1:$port/socialMedia?tls=true&tlsCAFile=$dir/tls/ca.pem&tlsCertificateKeyFile=$dir/tls/client.pem"
  fi
}

stop() {
  local dir="$1"
  [ -n "$dir" ] || die "usage: mongo.sh stop DIR"
  [ -f "$dir/ferretdb.pid" ] || { echo "mongo.sh: nothing runs from $dir" >&2; return 0; }
  local pid ticks=0
  pid="$(cat "$dir/ferretdb.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((ticks < STOP_TIMEOUT_S * 10)); do
      sleep 0.1
      ticks=$((ticks + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/ferretdb.pid"
  echo "mongo.sh: stopped" >&2
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "${1:-}" ;;
  build) build ;;
  *) echo "usage: scripts/mongo.sh start DIR [PORT] [--secure [--mtls]] | stop DIR | build" >&2; exit 2 ;;
esac
