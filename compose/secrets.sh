#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compose/secrets.sh [DIR] — every secret of the compose stack, generated
# with openssl into DIR (default compose/secrets/, git-ignored), one file
# per Compose secret (docker-compose.yml, top-level `secrets:`). The
# services read them as files under /run/secrets/ (the *_FILE settings),
# never from the environment, so no password shows in `docker inspect`.
#
#   passwords (random: 32 hex digits, plus "-Aa1" for SQL Server's policy):
#     mssql_sa_password          SQL Server sa: the health check and mssql-init only
#     mssql_migrate_password     login smpost_migrate: owns the schema (mssql-init runs
#                                sql/read_model.mssql.sql as it)
#     mssql_smpost_password      login smpost: query-api's runtime login (DML only)
#     mongo_root_password        MongoDB root (admin database): health check, init
#     mongo_smpost_password      MongoDB user smpost: readWrite on socialMedia only
#     kafka_admin_password       Kafka super user admin: the broker itself, kafka-init
#     kafka_command_password     Kafka user smpost-command (command-api)
#     kafka_query_password       Kafka user smpost-query (query-api)
#     grafana_admin_password     Grafana's user admin (service grafana)
#   keys and certificates:
#     mongo_keyfile              the replica set's internal authentication key
#     kafka_ca.crt               the CA that signed the broker's certificate
#     kafka_broker.pem           the broker's PKCS#8 key + certificate (DNS:kafka)
#   what the services are given (the passwords above, assembled):
#     command_event_store        SMPOST_EVENT_STORE_FILE of command-api (mongodb:// URI)
#     command_kafka.conf         SMPOST_KAFKA_CONFIG_FILE of command-api (librdkafka key=value)
#     query_read_model           SMPOST_READ_MODEL_FILE of query-api (mssql:... string)
#     query_kafka.conf           SMPOST_KAFKA_CONFIG_FILE of query-api
#     prometheus_command_token   Prometheus's token (role admin) for command-api's /metrics,
#                                signed with compose/auth/dev-key.sh's key (see below)
#
# It never replaces a password, key or certificate that exists (delete one
# to make it anew, then run it again; a
# changed password reaches SQL Server and Kafka's service users on the next
# `up`, through mssql-init and kafka-init, but MongoDB's users and Kafka's
# admin are created once, with the volumes). The directory is 0700 for the
# host; the files are 0644 because each is bind-mounted into a container
# whose process runs under its own uid (Compose without Swarm keeps the
# host's owner and mode), and a bind-mounted file is reached without
# passing through the 0700 directory.
set -euo pipefail
dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets}"
command -v openssl >/dev/null || { echo "secrets.sh: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"
made=()

# put NAME: writes stdin to DIR/NAME unless it exists
put() {
  local f="$dir/$1"
  if [ -e "$f" ]; then cat >/dev/null; return 0; fi
  (umask 077 && cat >"$f.tmp")
  chmod 644 "$f.tmp"
  mv "$f.tmp" "$f"
  made+=("$1")
}
# 128 random bits in hex, plus upper case and a symbol for SQL Server's policy
password() { printf '%s-Aa1\n' "$(openssl rand -hex 16)"; }
read1() { tr -d '\n' <"$dir/$1"; }

for p in mssql_sa_password mssql_migrate_password mssql_smpost_password mongo_root_password \
         mongo_smpost_password kafka_admin_password kafka_command_password kafka_query_password \
         grafana_admin_password; do
  put "$p" < <(password)
done
# mongod: 6 to 1024 base64 characters
put mongo_keyfile < <(openssl rand -base64 756)

if [ ! -e "$dir/kafka_ca.crt" ] || [ ! -e "$dir/kafka_broker.pem" ]; then
  t="$(mktemp -d)"
  trap 'rm -rf "$t"' EXIT
  (
    cd "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 825 \
            -subj "/CN=smpost compose Kafka CA" 2>/dev/null
    # PKCS#8 (BEGIN PRIVATE KEY), what Kafka's PEM keystore reads
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out broker.key 2>/dev/null
    openssl req -new -key broker.key -subj "/CN=smpost-kafka-broker" -out broker.csr 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:kafka,DNS:localhost" \
           "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
            -extfile broker.ext -out broker.crt 2>/dev/null
  )
  rm -f "$dir/kafka_ca.crt" "$dir/kafka_broker.pem"
  put kafka_ca.crt <"$t/ca.crt"
  put kafka_broker.pem < <(cat "$t/broker.key" "$t/broker.crt")
  # The CA's key is thrown away: nothing else is ever signed with it.
fi

# Assembled from the password files on every run, so they always match them.
rm -f "$dir/command_event_store" "$dir/query_read_model" "$dir/command_kafka.conf" "$dir/query_kafka.conf"
put command_event_store < <(printf 'mongodb://smpost:%s@mongo:27017/socialMedia?replicaSet=rs0&authSource=socialMedia\n' \
  "$(read1 mongo_smpost_password)")
put query_read_model < <(printf 'mssql:host=mssql;port=1433;user=smpost;password=%s;database=smpost\n' \
  "$(read1 mssql_smpost_password)")
# PLAIN inside TLS: the APIs' librdkafka (Debian 12: 2.0.2) cannot log in
# to Kafka 4.x with SCRAM (compose/kafka/server.properties says why);
# KAFKA_CLIENT_MECHANISM=SCRAM-SHA-512 for a librdkafka >= 2.6.1.
mech="${KAFKA_CLIENT_MECHANISM:-PLAIN}"
case "$mech" in PLAIN | SCRAM-SHA-512) ;; *) echo "secrets.sh: KAFKA_CLIENT_MECHANISM must be PLAIN or SCRAM-SHA-512" >&2; exit 1 ;; esac
for svc in command query; do
  put "${svc}_kafka.conf" <<EOT
security.protocol=SASL_SSL
sasl.mechanisms=$mech
sasl.username=smpost-$svc
sasl.password=$(read1 "kafka_${svc}_password")
ssl.ca.location=/run/secrets/kafka_ca.crt
ssl.endpoint.identification.algorithm=https
EOT
done

# Prometheus's bearer token for command-api's /metrics (role admin, valid a
# year), signed with the development key of compose/auth/dev-key.sh when it
# exists. Without that key a placeholder (a line starting with '#') is
# written, so the stack still starts (command-api's scrape then answers 401:
# alert SmpostServiceDown); run this again after dev-key.sh to replace it. A
# token that is not a placeholder is kept: delete it to mint a new one, or
# write a token of your identity provider there (role admin, the issuer and
# audience command-api expects).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="${SMPOST_DEV_KEY:-$here/auth/dev-key.pem}"
jwks="$(dirname "$key")/jwks/jwks.json"
tok="$dir/prometheus_command_token"
if [ ! -e "$tok" ] || [ "$(head -c 1 "$tok")" = "#" ]; then
  rm -f "$tok"
  if [ -r "$key" ] && [ -r "$jwks" ]; then
    b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    kid="$(sed -n 's/.*"kid": *"\([^"]*\)".*/\1/p' "$jwks")"
    now="$(date +%s)"
    head_b64="$(printf '{"alg":"EdDSA","typ":"JWT","kid":"%s"}' "$kid" | b64url)"
    body_b64="$(printf '{"iss":"%s","aud":"%s","sub":"prometheus","preferred_username":"prometheus","roles":["admin"],"iat":%s,"exp":%s}' \
      "${SMPOST_JWT_ISSUER:-smpost-dev}" "${SMPOST_JWT_AUDIENCE:-smpost}" "$now" "$((now + 365 * 86400))" | b64url)"
    # Ed25519 signs the message itself (-rawin), which openssl reads from a file
    signing_input="$(mktemp)"
    printf '%s.%s' "$head_b64" "$body_b64" >"$signing_input"
    sig="$(openssl pkeyutl -sign -rawin -inkey "$key" -in "$signing_input" | b64url)"
    rm -f "$signing_input"
    put prometheus_command_token < <(printf '%s.%s.%s\n' "$head_b64" "$body_b64" "$sig")
  else
    put prometheus_command_token <<EOT
# placeholder: no development key ($key) yet; run compose/auth/dev-key.sh, then compose/secrets.sh
EOT
  fi
fi

if [ "${#made[@]}" -gt 0 ]; then
  echo "secrets.sh: wrote ${made[*]} in $dir"
else
  echo "secrets.sh: every secret exists in $dir; kept"
fi
