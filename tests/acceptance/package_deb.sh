#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package, as a user gets it (cmake/packaging.cmake, built by
# scripts/package.sh in BUILD_DIR/deb):
#  - lintian finds no error (warnings are listed; lintian missing: skipped
#    outside CI, a failure under CI=true);
#  - its control data: Depends names the runtime library packages of what
#    the binaries link (dpkg-shlibdeps), no -dev package, and apt could
#    install them (apt-get install -s); /etc/smpost/*.env
#    are conffiles, and so is every file under /etc; maintainer and section
#    set; the copyright file is machine-readable, changelog.gz there;
#  - unpacked into an empty root (dpkg -x): the four binaries print
#    VERSION; Swagger UI holds what index.html loads and no source maps;
#    each example env file lists every setting of its binary's --help; the
#    systemd units pass `systemd-analyze verify` (their ExecStart moved into
#    the root, the only change) and name files the package ships;
#  - the installed binaries run README.md's walkthrough on the embedded
#    default (tests/acceptance/readme_walkthrough.sh with
#    SMPOST_WALKTHROUGH_BIN_DIR), with no Swagger UI flag;
#  - without flags an installed query-api looks for Swagger UI in
#    /usr/share/smpost/swagger-ui (the packaged path, not the unpacked
#    root, which only SMPOST_SWAGGER_UI_DIR can point at), and pointed at
#    the unpacked copy it serves /swagger/ and every file index.html loads.
#   package_deb.sh SOURCE_DIR BUILD_DIR VERSION
set -euo pipefail
src="$1"
build="$2"
version="$3"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
skip_or_fail() { # a tool CI installs (.ci/run) but a developer may lack
  if [ "${CI:-}" = true ]; then fail "$1 is missing (CI installs it: .ci/run)"; fi
  echo "SKIPPED part: $1 is missing (apt install $2)"
}
unset SMPOST_SWAGGER_UI_DIR
t0=$(date +%s)

deb="$(SMPOST_BUILD_JOBS="${SMPOST_BUILD_JOBS:-2}" "$src/scripts/package.sh" "$build/deb" 2>"$work/package.err" |
       tail -n 1)" || { cat "$work/package.err" >&2; fail "scripts/package.sh failed"; }
arch="$(dpkg --print-architecture)"
[ "$(basename "$deb")" = "smpost_${version}_${arch}.deb" ] || fail "package name: $(basename "$deb")"
echo "package: $deb ($(( $(date +%s) - t0 )) s)"

# --- lintian ------------------------------------------------------------------
if command -v lintian >/dev/null; then
  # as root lintian says it should not be; that line is not a finding
  if ! lintian --fail-on error "$deb" >"$work/lintian.out" 2>&1; then
    cat "$work/lintian.out" >&2
    fail "lintian reports errors"
  fi
  grep -v 'root privileges' "$work/lintian.out" | sed 's/^/lintian: /' || true
  echo "lintian: no errors"
else
  skip_or_fail lintian lintian
fi

# --- control data ---------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
depends="$(field Depends)"
echo "Depends: $depends"
# one package per library of NOTICE's list (scripts/check_notice.sh keeps
# that list equal to what the binaries link)
for p in libc6 librdkafka1 libmongoc-1.0-0 libbson-1.0-0 libsybdb5 libcivetweb1 libjansson4 \
         libsqlite3-0 libssl3 libcjose0 zlib1g; do
  grep -qE "(^|, )$p( |,|$)" <<<"$depends" || fail "Depends lacks $p: $depends"
done
! grep -qE -- '-dev( |,|$)|cmocka' <<<"$depends" || fail "Depends names a build-only package: $depends"
# apt can satisfy them here (a simulation: nothing is installed)
if command -v apt-get >/dev/null; then
  apt-get install -s -q "$deb" >"$work/apt.out" 2>&1 && grep -q '^Inst smpost ' "$work/apt.out" ||
    { cat "$work/apt.out" >&2; fail "apt-get install -s: the dependencies cannot be installed"; }
fi
[ "$(field Package)" = smpost ] && [ "$(field Version)" = "$version" ] || fail "Package/Version"
[ -n "$(field Maintainer)" ] && [ -n "$(field Section)" ] || fail "Maintainer or Section missing"
dpkg-deb -e "$deb" "$work/control"
root="$work/root"
mkdir "$root"
dpkg-deb -x "$deb" "$root"
sort "$work/control/conffiles" >"$work/conffiles"
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$work/etc_files"
[ -s "$work/etc_files" ] || fail "the package ships nothing under /etc"
diff -u "$work/etc_files" "$work/conffiles" >&2 || fail "the files under /etc and the conffiles differ"
for f in /etc/smpost/command-api.env /etc/smpost/query-api.env; do
  grep -qx "$f" "$work/conffiles" || fail "$f is not a conffile"
done
doc="$root/usr/share/doc/smpost"
head -n 1 "$doc/copyright" | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
  fail "copyright is not machine-readable"
grep -q '^License: Apache-2.0' "$doc/copyright" || fail "copyright names no license"
gzip -dc "$doc/changelog.gz" | head -n 1 | grep -q "^smpost ($version) " || fail "changelog.gz"

# --- the unpacked files -----------------------------------------------------------
bin="$root/usr/bin"
for b in command-api query-api smpost-devbroker smpost-token; do
  [ -x "$bin/$b" ] || fail "usr/bin/$b is missing"
  out="$("$bin/$b" --version)"
  grep -q "^$b $version " <<<"$out" || fail "$b --version: $out"
  [ -s "$root/usr/share/man/man1/$b.1.gz" ] || fail "no manual page for $b"
done
echo "--version: $version on all four"
ui="$root/usr/share/smpost/swagger-ui"
# what index.html loads, but the initializer (generated by the binaries)
assets="$(grep -oE '(href|src)="[^"]+"' "$ui/index.html" | sed -E 's/^[a-z]+="(\.\/)?//; s/"$//' |
          grep -v '^swagger-initializer.js$')"
[ -n "$assets" ] || fail "index.html loads nothing?"
for a in $assets; do [ -f "$ui/$a" ] || fail "Swagger UI: index.html loads $a, not installed"; done
[ -z "$(find "$ui" -name '*.map' -o -name 'package.json' -o -name '*es-bundle*')" ] ||
  fail "Swagger UI: source maps or npm files installed"
ls "$root/usr/share/smpost/sql/"*.sql >/dev/null || fail "no SQL schemas in usr/share/smpost/sql"
for svc in command-api query-api; do
  settings="$("$bin/$svc" --help | sed -n 's/^ *env \([A-Z_0-9]*\),.*/\1/p')"
  [ -n "$settings" ] || fail "$svc --help lists no setting"
  for s in $settings; do
    grep -qE "^#?$s=" "$root/etc/smpost/$svc.env" || fail "etc/smpost/$svc.env lacks $s"
  done
done
# the SQLite files in the units' StateDirectory (the only writable place)
grep -qx 'SMPOST_EVENT_STORE=sqlite:/var/lib/smpost/events.db' "$root/etc/smpost/command-api.env" &&
  grep -qx 'SMPOST_READ_MODEL=sqlite:/var/lib/smpost/readmodel.db' "$root/etc/smpost/query-api.env" ||
  fail "the example settings' SQLite files are not in /var/lib/smpost"
echo "example settings: complete"

# --- systemd units --------------------------------------------------------------
units="$root/lib/systemd/system"
for u in smpost-command-api.service smpost-command-api@.service smpost-query-api.service \
         smpost-query-api@.service; do
  [ -f "$units/$u" ] || fail "unit $u is missing"
  exe="$(sed -n 's/^ExecStart=//p' "$units/$u")"
  [ -x "$root$exe" ] || fail "$u: ExecStart=$exe is not in the package"
  for f in $(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$units/$u" | grep -v '%i'); do
    [ -f "$root$f" ] || fail "$u: EnvironmentFile=$f is not in the package"
  done
  for want in 'DynamicUser=yes' 'StateDirectory=smpost' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
              'CapabilityBoundingSet=' 'Restart=on-failure' 'MemoryDenyWriteExecute=yes'; do
    grep -qx "$want" "$units/$u" || fail "$u lacks $want"
  done
  # a stop may take 29 s (docs/operations.md, "Stopping (SIGTERM)")
  stop="$(sed -n 's/^TimeoutStopSec=//p' "$units/$u")"
  [ "${stop:-0}" -ge 30 ] || fail "$u: TimeoutStopSec=$stop is shorter than the drain"
done
if command -v systemd-analyze >/dev/null; then
  # verify needs ExecStart's binary at its path: the unpacked one
  mkdir "$work/units"
  for u in "$units"/*.service; do
    sed "s|^ExecStart=/|ExecStart=$root/|" "$u" >"$work/units/$(basename "$u")"
  done
  (cd "$work/units" &&
   systemd-analyze verify ./smpost-command-api.service ./smpost-query-api.service \
     ./smpost-command-api@a.service ./smpost-query-api@a.service) >"$work/verify.out" 2>&1 ||
    { cat "$work/verify.out" >&2; fail "systemd-analyze verify"; }
  # it only warns about a bad value: any output is a finding
  [ ! -s "$work/verify.out" ] || { cat "$work/verify.out" >&2; fail "systemd-analyze verify warns"; }
  echo "systemd-analyze verify: clean"
else
  skip_or_fail systemd-analyze systemd
fi

# --- the installed binaries at work -------------------------------------------------
SMPOST_WALKTHROUGH_BIN_DIR="$bin" "$src/tests/acceptance/readme_walkthrough.sh" "$src/README.md" "$build" \
  >"$work/walkthrough.out" 2>&1 || { cat "$work/walkthrough.out" >&2; fail "README walkthrough on the package"; }
tail -n 1 "$work/walkthrough.out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Starts the installed query-api in $work/run (no checkout below it), no
# broker; extra environment in "$@". Leaves its port in $qport.
start_query() {
  qport=$(free_port)
  mkdir -p "$work/run"
  (cd "$work/run" && exec env "$@" KAFKA_BOOTSTRAP_SERVERS=none SMPOST_PORT="$qport" \
     SMPOST_READ_MODEL="sqlite:$work/run/rm.db" "$bin/query-api" 2>>"$work/run/query.log") &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$qport/health" >/dev/null && return 0; sleep 0.1; done
  cat "$work/run/query.log" >&2
  fail "the installed query-api did not start"
}
start_query
# the directory it looked in: api_docs' dir=, or what swagger_ui_missing
# says is missing (not its install hint, which names the path too)
grep -E 'event=(swagger_ui_missing|api_docs)' "$work/run/query.log" | sed 's/Run scripts.bootstrap.sh.*//' |
  grep -qE "(dir=|')/usr/share/smpost/swagger-ui" ||
  { cat "$work/run/query.log" >&2; fail "no flag: query-api does not look in /usr/share/smpost/swagger-ui"; }
kill "${pids[-1]}"
start_query SMPOST_SWAGGER_UI_DIR="$ui"
for a in "" $assets swagger-initializer.js; do
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$qport/swagger/$a")"
  [ "$code" = 200 ] || fail "GET /swagger/$a from the unpacked Swagger UI: $code"
done
curl -s "http://127.0.0.1:$qport/health" | grep -q "\"version\":\"$version\"" || fail "/health version"
echo "Swagger UI: the packaged path is /usr/share/smpost/swagger-ui; the unpacked copy serves /swagger/"
echo "package_deb: OK ($(( $(date +%s) - t0 )) s)"
