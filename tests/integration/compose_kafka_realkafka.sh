#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The compose stack's Kafka security, run on the real broker (Apache Kafka
# from Maven Central, the jars of scripts/kafka.sh, the version the compose
# image runs): the `kafka` service's start command and the `kafka-init`
# command, taken from compose/docker-compose.yml and run with their paths,
# tools and host name pointed here; compose/kafka/server.properties; and the
# client files compose/secrets.sh writes for the APIs, used with kcat
# (librdkafka, as the APIs). Checks:
#   - the broker starts (TLS with the generated certificate, SASL on one
#     SASL_SSL listener, controller over mTLS) and kafka-init succeeds;
#   - smpost-command writes the event topic, and is refused the DLQ and
#     reading; smpost-query reads the topic in group SM_Consumer and writes
#     the DLQ, and is refused writing the topic and another group;
#   - a wrong password is refused.
# Needs SMPOST_TEST_KAFKA (scripts/kafka.sh, as the *realkafka* tests), java
# and kcat; without them it skips (exit 77), except in CI (CI=true).
#   compose_kafka_realkafka.sh ROOT
set -euo pipefail
root="$1"
skip() {
  [ "${CI:-}" = true ] && { echo "FAILED: $* (CI: not skipped)" >&2; exit 1; }
  echo "SKIPPED: $*"; exit 77
}
[ -n "${SMPOST_TEST_KAFKA:-}" ] || skip "SMPOST_TEST_KAFKA not set"
command -v java >/dev/null || skip "java is not installed"
command -v kcat >/dev/null || skip "kcat is not installed"
"$SMPOST_TEST_KAFKA" fetch >/dev/null || skip "cannot fetch the Kafka jars"
pom="$root/scripts/kafka/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
libs="${SMPOST_CACHE_DIR:-$HOME/.cache/smpost}/kafka-$version-$(sha256sum "$pom" | cut -c1-12)/libs"
[ -d "$libs" ] || { echo "FAILED: no Kafka jars in $libs (scripts/kafka.sh fetch)" >&2; exit 1; }
cp="$libs/*"

work="$(mktemp -d)"
bpid=""
cleanup() {
  if [ -n "$bpid" ]; then kill -TERM "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; fi
  if [ "${passed:-0}" = 1 ]; then rm -rf "$work"; else echo "# logs kept in $work"; fi
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; tail -20 "$work/broker.log" >&2 2>/dev/null || true; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"; ctl="$(free_port)"
sec="$work/secrets"
"$root/compose/secrets.sh" "$sec" >/dev/null
mkdir -p "$work/data" "$work/bin"

# the services' commands, as Compose runs them ($$ is a literal $)
script() {
  python3 - "$root/compose/docker-compose.yml" "$1" "$2" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(d["services"][sys.argv[2]]["command"][int(sys.argv[3])].replace("$$", "$"))
PY
}
# path replacements that must each match, or this runs something else
point() {
  local f="$1"; shift
  while [ "$#" -gt 0 ]; do
    grep -qF -- "$1" "$f" || fail "$(basename "$f"): '$1' not found (compose changed: update this test)"
    python3 - "$f" "$1" "$2" <<'PY'
import sys
p, a, b = sys.argv[1:]
s = open(p).read()
open(p, "w").write(s.replace(a, b))
PY
    shift 2
  done
}
jrun="java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp \"$cp\""
for t in kafka-topics:org.apache.kafka.tools.TopicCommand kafka-configs:kafka.admin.ConfigCommand \
         kafka-acls:org.apache.kafka.tools.AclCommand; do
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$jrun" "${t#*:}" >"$work/bin/${t%%:*}.sh"
  chmod +x "$work/bin/${t%%:*}.sh"
done

cp "$root/compose/kafka/server.properties" "$work/server.properties.in"
point "$work/server.properties.in" /run/secrets/ "$sec/" /var/lib/kafka/data "$work/data" \
  "SASL_SSL://:9092" "SASL_SSL://localhost:$port" "SASL_SSL://kafka:9092" "SASL_SSL://localhost:$port" \
  "localhost:9093" "localhost:$ctl"
script kafka 2 >"$work/start.sh"
point "$work/start.sh" /run/secrets/ "$sec/" /tmp/kafka "$work/run" \
  /etc/smpost/kafka/server.properties "$work/server.properties.in" /var/lib/kafka/data "$work/data" \
  /opt/kafka/bin/kafka-storage.sh "$jrun kafka.tools.StorageTool" \
  "exec /opt/kafka/bin/kafka-server-start.sh" "exec java -Xmx512m -XX:+UseSerialGC -cp \"$cp\" kafka.Kafka"
bash "$work/start.sh" >"$work/broker.log" 2>&1 &
bpid=$!

script kafka-init 0 >"$work/init.sh"
point "$work/init.sh" /run/secrets/ "$sec/" /tmp/admin.properties "$work/init-admin.properties" \
  "bin=/opt/kafka/bin" "bin=$work/bin" "kafka:9092" "localhost:$port"
up=""
for _ in $(seq 120); do
  kill -0 "$bpid" 2>/dev/null || fail "the broker exited"
  if [ -f "$work/run/admin.properties" ] &&
     "$work/bin/kafka-topics.sh" --bootstrap-server "localhost:$port" \
       --command-config "$work/run/admin.properties" --list >/dev/null 2>&1; then up=1; break; fi
  sleep 1
done
[ -n "$up" ] || fail "the broker did not answer the admin (the health check's login) in 120 s"
echo "ok   the broker starts from the compose start command and answers admin over SASL_SSL"
TOPIC=SocialMediaPostEvents GROUP=SM_Consumer PARTITIONS=6 bash "$work/init.sh" >"$work/init.log" 2>&1 ||
  { tail -20 "$work/init.log" >&2; fail "kafka-init's command failed"; }
echo "ok   kafka-init: topics, service users, ACLs"

for s in command query; do sed "s|/run/secrets/|$sec/|" "$sec/${s}_kafka.conf" >"$work/$s.conf"; done
b="localhost:$port"
produce() { echo "k1:$3" | timeout 60 kcat -F "$work/$1.conf" -b "$b" -P -t "$2" -K: >"$work/out" 2>&1; }
consume() { timeout 60 kcat -F "$work/$1.conf" -b "$b" -G "$2" SocialMediaPostEvents -c 1 -e \
              -X auto.offset.reset=earliest -f '%s\n' >"$work/out" 2>&1; }
produce command SocialMediaPostEvents hello || fail "smpost-command cannot write the topic: $(cat "$work/out")"
! produce command SocialMediaPostEvents.DLQ x || fail "smpost-command could write the DLQ"
grep -q 'authorization failed' "$work/out" || fail "smpost-command to the DLQ: $(cat "$work/out")"
! produce query SocialMediaPostEvents x || fail "smpost-query could write the event topic"
grep -q 'authorization failed' "$work/out" || fail "smpost-query to the topic: $(cat "$work/out")"
produce query SocialMediaPostEvents.DLQ dead || fail "smpost-query cannot write the DLQ: $(cat "$work/out")"
echo "ok   writes: smpost-command the topic only, smpost-query the DLQ only"
consume query SM_Consumer || true
grep -qx hello "$work/out" || fail "smpost-query cannot read in SM_Consumer: $(cat "$work/out")"
consume query Other || true
grep -q 'Group authorization failed' "$work/out" || fail "smpost-query in group Other: $(cat "$work/out")"
consume command SM_Consumer || true
grep -q 'authorization failed' "$work/out" || fail "smpost-command could read: $(cat "$work/out")"
echo "ok   reads: smpost-query in SM_Consumer only; smpost-command none"
sed 's/^sasl.password=.*/sasl.password=wrong-password/' "$work/command.conf" >"$work/bad.conf"
! (echo 'k:x' | timeout 60 kcat -F "$work/bad.conf" -b "$b" -P -t SocialMediaPostEvents -K: >"$work/out" 2>&1) ||
  fail "a wrong password could write"
grep -q 'Invalid username or password\|Authentication failed' "$work/out" || fail "wrong password: $(cat "$work/out")"
echo "ok   a wrong password is refused"
passed=1
echo "PASS compose_kafka_realkafka"
