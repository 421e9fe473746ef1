#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compose/secrets.sh (openssl only) makes every secret docker-compose.yml
# declares, consistent with each other: the assembled connection strings and
# Kafka client files carry the passwords of their own files, the broker's
# certificate is signed by the CA and names kafka, the keyFile suits mongod;
# a second run keeps every password, and a deleted password is made anew
# with the assembled files following it.
#   compose_secrets.sh ROOT
set -euo pipefail
root="$1"
work="$(mktemp -d)"
trap 'if [ "${passed:-0}" = 1 ]; then rm -rf "$work"; else echo "# kept $work"; fi' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
d="$work/secrets"
"$root/compose/secrets.sh" "$d" >/dev/null

declared="$(python3 - "$root/compose/docker-compose.yml" <<'PY'
import os, sys, yaml
for n, s in sorted((yaml.safe_load(open(sys.argv[1])).get("secrets") or {}).items()):
    print(os.path.basename(s["file"]))
PY
)"
for f in $declared; do
  [ -s "$d/$f" ] || fail "secrets.sh did not make $f, which docker-compose.yml declares"
  [ "$(stat -c %a "$d/$f")" = 644 ] || fail "$f is not 0644"
done
[ "$(stat -c %a "$d")" = 700 ] || fail "the secrets directory is not 0700"
echo "ok   every declared secret made ($(echo $declared | wc -w) files)"

pw() { tr -d '\n' <"$d/$1"; }
pws="$(for f in "$d"/*_password; do pw "$(basename "$f")"; echo; done)"
[ "$(echo "$pws" | sort -u | wc -l)" = "$(echo "$pws" | wc -l)" ] || fail "two passwords are equal"
echo "$pws" | grep -qvE '^[0-9a-f]{32}-Aa1$' && fail "a password is not 128 random bits + -Aa1"
grep -qF "mongodb://smpost:$(pw mongo_smpost_password)@mongo:27017/socialMedia?replicaSet=rs0&authSource=socialMedia" \
  "$d/command_event_store" || fail "command_event_store: $(sed 's/:[^@]*@/:***@/' "$d/command_event_store")"
grep -qF "user=smpost;password=$(pw mssql_smpost_password);database=smpost" "$d/query_read_model" ||
  fail "query_read_model does not hold mssql_smpost_password"
for s in command query; do
  grep -qx "sasl.username=smpost-$s" "$d/${s}_kafka.conf" &&
  grep -qx "sasl.password=$(pw kafka_${s}_password)" "$d/${s}_kafka.conf" &&
  grep -qx "security.protocol=SASL_SSL" "$d/${s}_kafka.conf" &&
  grep -qx "ssl.ca.location=/run/secrets/kafka_ca.crt" "$d/${s}_kafka.conf" || fail "${s}_kafka.conf"
  grep -vqE '^[a-z.]+=' "$d/${s}_kafka.conf" && fail "${s}_kafka.conf has a line that is not key=value"
done
echo "ok   the assembled files carry their passwords"

openssl verify -CAfile "$d/kafka_ca.crt" "$d/kafka_broker.pem" >/dev/null || fail "the broker certificate does not verify"
openssl x509 -in "$d/kafka_broker.pem" -noout -ext subjectAltName | grep -q 'DNS:kafka' || fail "no DNS:kafka"
grep -q 'BEGIN PRIVATE KEY' "$d/kafka_broker.pem" || fail "the broker key is not PKCS#8 (Kafka's PEM keystore)"
n="$(tr -d '\n' <"$d/mongo_keyfile" | wc -c)"
[ "$n" -ge 6 ] && [ "$n" -le 1024 ] || fail "mongo_keyfile has $n characters (mongod: 6 to 1024)"
echo "ok   broker certificate (CA, DNS:kafka, PKCS#8) and keyFile"

before="$(pw mssql_smpost_password)"; ca="$(cat "$d/kafka_ca.crt")"
"$root/compose/secrets.sh" "$d" >/dev/null
[ "$(pw mssql_smpost_password)" = "$before" ] && [ "$(cat "$d/kafka_ca.crt")" = "$ca" ] || fail "a second run replaced a secret"
rm "$d/mssql_smpost_password"
"$root/compose/secrets.sh" "$d" >/dev/null
[ "$(pw mssql_smpost_password)" != "$before" ] || fail "a deleted password came back the same"
grep -qF "password=$(pw mssql_smpost_password);" "$d/query_read_model" || fail "query_read_model kept the old password"
echo "ok   a second run keeps secrets; a deleted password is renewed and followed"
passed=1
echo "PASS compose_secrets"
