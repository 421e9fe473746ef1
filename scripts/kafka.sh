#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real Apache Kafka broker on this machine, for tests, benchmarks and local
# runs (no Docker): the broker's jars from Maven Central, one KRaft node that
# is its own controller, on loopback.
#
#   scripts/kafka.sh start DIR [PORT]   prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT last
#   scripts/kafka.sh start DIR [PORT] --secure   the same broker behind SASL_SSL
#                                       (SCRAM-SHA-512), TLS and ACLs; see below
#   scripts/kafka.sh stop DIR
#   scripts/kafka.sh restart DIR        the stopped broker again: same data, same ports
#   scripts/kafka.sh config DIR TOPIC KEY=VALUE[,KEY=VALUE]   alters a topic's settings
#   scripts/kafka.sh topic DIR create|delete TOPIC [PARTITIONS]
#   scripts/kafka.sh fetch              only resolves the jars (CI warms its cache with it)
#
# start: resolves org.apache.kafka:kafka_2.13 and kafka-tools (scripts/kafka/
# pom.xml, the compose image's version) into a cache (~/.cache/smpost, or
# $SMPOST_CACHE_DIR; only the first run downloads), formats a fresh storage
# in DIR, starts the broker (heap capped at 512 MiB; log in DIR/kafka.log),
# waits until it answers metadata requests, creates the event topic
# ($KAFKA_TOPIC, default SocialMediaPostEvents, $KAFKA_PARTITIONS partitions,
# default 6) and its
# dead-letter topic (<topic>.DLQ, 1 partition). PORT defaults to a free one;
# the controller listens on another free port. Fails (non-zero, the log's
# tail on stderr) if the broker does not answer within 60 s.
# stop: SIGTERM (a clean shutdown), SIGKILL after 20 s. restart: what a
# broker back from maintenance is (the tests' "broker down, broker up").
#
# --secure: no plaintext listener. A CA and a broker certificate (SAN
# IP:127.0.0.1 and DNS:localhost) are generated in DIR/tls; clients reach a
# SASL_SSL listener with SCRAM-SHA-512; the KRaft controller listener is SSL
# with client certificates required (only the broker's own certificate gets
# in, as the super user smpost-kafka-broker). SCRAM users, created at format time with random passwords (hex, no
# commas): admin (the inter-broker user), smpost-command, smpost-query. The
# same users and passwords log in with SASL/PLAIN on that listener too, and
# the librdkafka files below use PLAIN: librdkafka before 2.6.1 (Debian 12
# has 2.0.2) sends a SCRAM client-final nonce that Kafka 4.x rejects
# (librdkafka PR 4895), so its SCRAM logins fail with "invalid credentials"
# while the Java tools' succeed. KAFKA_CLIENT_MECHANISM=SCRAM-SHA-512 writes
# SCRAM into the files for a newer librdkafka.
# StandardAuthorizer with no access unless an ACL grants it; super users:
# admin and the broker's certificate. ACLs (docs/operations.md, Security):
#   smpost-command  WRITE, DESCRIBE on the event topic (an idempotent producer
#                   needs nothing more since Kafka 3.0: KIP-679)
#   smpost-query    READ, DESCRIBE on the event topic; READ on the groups
#                   prefixed $KAFKA_GROUP (default SM_Consumer); WRITE,
#                   DESCRIBE on <topic>.DLQ
# A librdkafka config file (key=value lines) per user, DIR/<user>.conf, and
# the Java tools' DIR/admin.properties; start prints, before the bootstrap:
#   KAFKA_CA_FILE=DIR/tls/ca.pem
#   KAFKA_CONFIG_FILE_ADMIN=DIR/admin.conf
#   KAFKA_CONFIG_FILE_COMMAND=DIR/smpost-command.conf
#   KAFKA_CONFIG_FILE_QUERY=DIR/smpost-query.conf
#   KAFKA_MTLS_BOOTSTRAP_SERVERS=127.0.0.1:PORT2
#   KAFKA_MTLS_CONFIG_FILE_COMMAND=DIR/smpost-command-mtls.conf
#   KAFKA_MTLS_CONFIG_FILE_QUERY=DIR/smpost-query-mtls.conf
# The second listener (another free port) is mutual TLS, the alternative to
# passwords: client certificates signed by the CA, subject CN=<user>, which
# ssl.principal.mapping.rules turns into the same principals (User:<user>),
# so the same ACLs apply.
# restart, config and topic work on a secure DIR as on a plain one.
#
# Needs Java 17+ and Maven (scripts/bootstrap.sh installs them if missing)
# and kcat (the readiness check); --secure needs openssl too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$root/scripts/kafka/pom.xml"

die() { echo "kafka.sh: $*" >&2; exit 1; }
# The tools (format, topics, configs) run for a second: no optimising JIT.
java_opts=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)
broker_opts=(-Xmx512m -Xms128m -XX:+UseSerialGC -Djava.awt.headless=true)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The jars, resolved once per Kafka version.
jars() {
  local version cache
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
  [ -n "$version" ] || die "no kafka.version in $pom"
  # keyed by the pom's content: a changed pom resolves again
  cache="${SMPOST_CACHE_DIR:-$HOME/.cache/smpost}/kafka-$version-$(sha256sum "$pom" | cut -c1-12)"
  if [ ! -f "$cache/.complete" ]; then
    command -v mvn >/dev/null || die "maven is not installed (run scripts/bootstrap.sh)"
    mkdir -p "$(dirname "$cache")"
    # tests start brokers in parallel: one resolves, the others wait
    exec 9>"$cache.lock"
    flock 9
    if [ ! -f "$cache/.complete" ]; then
      rm -rf "$cache" && mkdir -p "$cache"
      mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
          -DoutputDirectory="$cache/libs" >&2 || die "cannot fetch Kafka $version from Maven Central"
      touch "$cache/.complete"
    fi
    exec 9>&-
  fi
  echo "$cache/libs"
}

start() {
  local dir="$1" port="${2:-}" secure="${3:-}"
  [ -n "$dir" ] || die "usage: kafka.sh start DIR [PORT] [--secure]"
  [ -z "$secure" ] || [ "$secure" = --secure ] || die "usage: kafka.sh start DIR [PORT] [--secure]"
  [ -z "$secure" ] || command -v openssl >/dev/null || die "openssl is not installed"
  command -v java >/dev/null || die "java is not installed (run scripts/bootstrap.sh)"
  command -v kcat >/dev/null || die "kcat is not installed (run scripts/bootstrap.sh)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null &&
    die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid"))"
  local libs ctl topic partitions
  libs="$(jars)"
  port="${port:-$(free_port)}"
  ctl="$(free_port)"
  topic="${KAFKA_TOPIC:-SocialMediaPostEvents}"
  partitions="${KAFKA_PARTITIONS:-6}"
  rm -rf "$dir/data" "$dir/tls" "$dir"/*.conf "$dir/admin.properties"
  # Settings for one node on loopback, as the compose stack's kafka service
  # has them: a single node cannot replicate internal topics; the group
  # coordinator's initial rebalance delay (3 s by default) would hold every
  # first join of a consumer group; topics are created below with chosen
  # partition counts, never by a client's first metadata request.
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
controller.listener.names=CONTROLLER
log.dirs=$dir/data
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  local scram=() mtls=""
  if [ -n "$secure" ]; then
    mtls="$(free_port)"
    secure_setup "$dir" "$port" "$ctl" "$mtls"
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=\"$(cat "$dir/tls/admin.password")\"]"
           --add-scram "SCRAM-SHA-512=[name=smpost-command,password=\"$(cat "$dir/tls/smpost-command.password")\"]"
           --add-scram "SCRAM-SHA-512=[name=smpost-query,password=\"$(cat "$dir/tls/smpost-query.password")\"]")
  else
    cat >>"$dir/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
PROPS
  fi
  cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/kafka.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
PROPS
  local cp="$libs/*"
  java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format \
       -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
       -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; die "storage format failed"; }
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  local t0=$SECONDS
  launch "$dir" "$libs"
  local admin=()
  [ -z "$secure" ] || admin=(--command-config "$dir/admin.properties")
  java "${java_opts[@]}" -cp "$cp" org.apache.kafka.tools.TopicCommand "${admin[@]}" \
       --bootstrap-server "127.0.0.1:$port" --create --if-not-exists --topic "$topic" \
       --partitions "$partitions" --replication-factor 1 >>"$dir/topics.log" 2>&1 &&
  java "${java_opts[@]}" -cp "$cp" org.apache.kafka.tools.TopicCommand "${admin[@]}" \
       --bootstrap-server "127.0.0.1:$port" --create --if-not-exists --topic "$topic.DLQ" \
       --partitions 1 --replication-factor 1 >>"$dir/topics.log" 2>&1 ||
    { cat "$dir/topics.log" >&2; stop "$dir" >/dev/null 2>&1 || true; die "cannot create the topics"; }
  if [ -n "$secure" ]; then
    secure_acls "$dir" "$port" "$cp" "$topic" ||
      { cat "$dir/acls.log" >&2; stop "$dir" >/dev/null 2>&1 || true; die "cannot create the ACLs"; }
  fi
  echo "kafka.sh: broker up in $((SECONDS - t0)) s (pid $(cat "$dir/kafka.pid"), log $dir/kafka.log)" >&2
  if [ -n "$secure" ]; then
    echo "KAFKA_CA_FILE=$dir/tls/ca.pem"
    echo "KAFKA_CONFIG_FILE_ADMIN=$dir/admin.conf"
    echo "KAFKA_CONFIG_FILE_COMMAND=$dir/smpost-command.conf"
    echo "KAFKA_CONFIG_FILE_QUERY=$dir/smpost-query.conf"
    echo "KAFKA_MTLS_BOOTSTRAP_SERVERS=127.0.0.1:$mtls"
    echo "KAFKA_MTLS_CONFIG_FILE_COMMAND=$dir/smpost-command-mtls.conf"
    echo "KAFKA_MTLS_CONFIG_FILE_QUERY=$dir/smpost-query-mtls.conf"
  fi
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
}

# --secure: the CA, the broker's key and certificate, the users' passwords
# (DIR/tls), the listeners and authorizer (appended to server.properties)
# and each user's client settings.
secure_setup() {
  local dir="$1" port="$2" ctl="$3" mtls="$4" t="$1/tls" u
  mkdir -p "$t" && chmod 700 "$t"
  (
    set -e
    cd "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
            -subj "/CN=smpost test CA" 2>/dev/null
    # PKCS#8 (BEGIN PRIVATE KEY), what Kafka's PEM keystore reads
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out broker.key 2>/dev/null
    openssl req -new -key broker.key -subj "/CN=smpost-kafka-broker" -out broker.csr 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
           "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile broker.ext -out broker.pem 2>/dev/null
    cat broker.key broker.pem >broker.keystore.pem
    for u in admin smpost-command smpost-query; do
      (umask 077; openssl rand -hex 16 >"$u.password")
    done
    # mutual TLS: a client certificate per service, subject CN=<user>
    printf '%s\n' "extendedKeyUsage=clientAuth" >client.ext
    for u in smpost-command smpost-query; do
      (umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$u.key" 2>/dev/null)
      openssl req -new -key "$u.key" -subj "/CN=$u" -out "$u.csr" 2>/dev/null
      openssl x509 -req -in "$u.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
              -extfile client.ext -out "$u.pem" 2>/dev/null
    done
  ) || die "cannot generate the certificates in $t"
  local admin_pw mech="${KAFKA_CLIENT_MECHANISM:-PLAIN}"
  admin_pw="$(cat "$t/admin.password")"
  cat >>"$dir/server.properties" <<PROPS
listeners=SASL_SSL://127.0.0.1:$port,MTLS://127.0.0.1:$mtls,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=SASL_SSL://127.0.0.1:$port,MTLS://127.0.0.1:$mtls
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,MTLS:SSL,CONTROLLER:SSL
listener.name.mtls.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw" user_smpost-command="$(cat "$t/smpost-command.password")" user_smpost-query="$(cat "$t/smpost-query.password")";
ssl.keystore.type=PEM
ssl.keystore.location=$t/broker.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$t/ca.pem
ssl.endpoint.identification.algorithm=https
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:smpost-kafka-broker
PROPS
  (umask 077
   cat >"$dir/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
ssl.truststore.type=PEM
ssl.truststore.location=$t/ca.pem
PROPS
   for u in admin smpost-command smpost-query; do
     cat >"$dir/$u.conf" <<PROPS
security.protocol=SASL_SSL
sasl.mechanisms=$mech
sasl.username=$u
sasl.password=$(cat "$t/$u.password")
ssl.ca.location=$t/ca.pem
ssl.endpoint.identification.algorithm=https
PROPS
   done
   for u in smpost-command smpost-query; do
     cat >"$dir/$u-mtls.conf" <<PROPS
security.protocol=SSL
ssl.ca.location=$t/ca.pem
ssl.certificate.location=$t/$u.pem
ssl.key.location=$t/$u.key
ssl.endpoint.identification.algorithm=https
PROPS
   done)
}

# --secure: each service's ACLs (the header above lists them).
secure_acls() {
  local dir="$1" port="$2" cp="$3" topic="$4" group="${KAFKA_GROUP:-SM_Consumer}"
  local acl=(java "${java_opts[@]}" -cp "$cp" org.apache.kafka.tools.AclCommand
             --bootstrap-server "127.0.0.1:$port" --command-config "$dir/admin.properties" --add)
  {
    "${acl[@]}" --allow-principal User:smpost-command --operation Write --operation Describe \
                --topic "$topic" &&
    "${acl[@]}" --allow-principal User:smpost-query --operation Read --operation Describe \
                --topic "$topic" &&
    "${acl[@]}" --allow-principal User:smpost-query --operation Read \
                --resource-pattern-type prefixed --group "$group" &&
    "${acl[@]}" --allow-principal User:smpost-query --operation Write --operation Describe \
                --topic "$topic.DLQ"
  } >"$dir/acls.log" 2>&1
}

# The Java tools' --command-config for a secure DIR (none for a plain one).
admin_args() {
  [ ! -f "$1/admin.properties" ] || echo "--command-config=$1/admin.properties"
}

# listens PID PORT: PID (or none, without ss) has a listening socket on PORT
listens() {
  command -v ss >/dev/null || return 0
  ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$1,"
}

# Starts the broker of an existing DIR and waits until it answers metadata
# requests (kafka.pid, kafka.out and kafka.log in DIR).
launch() {
  local dir="$1" libs="$2" addr
  addr="$(cat "$dir/bootstrap")"
  nohup java "${broker_opts[@]}" "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
        >>"$dir/kafka.out" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
  local t0=$SECONDS
  local kcat_conf=()
  # PLAIN whatever KAFKA_CLIENT_MECHANISM wrote: the check runs the system's
  # kcat, whose librdkafka may be older than 2.6.1
  [ ! -f "$dir/admin.conf" ] || kcat_conf=(-F "$dir/admin.conf" -X sasl.mechanisms=PLAIN)
  # ...and the answer must come from this broker: a port picked free can be
  # taken by another broker meanwhile (tests start several at once), whose
  # answer would pass the check while this one fails to bind
  until listens "$(cat "$dir/kafka.pid")" "${addr##*:}" &&
        kcat "${kcat_conf[@]}" -b "$addr" -L -m 2 >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null || ((SECONDS - t0 > 60)); then
      tail -n 30 "$dir/kafka.out" "$dir/kafka.log" >&2 2>/dev/null || true
      stop "$dir" >/dev/null 2>&1 || true
      die "the broker did not answer on $addr within 60 s, or exited (is the port taken? see $dir/kafka.log)"
    fi
    sleep 0.2
  done
}

restart() {
  local dir="$1"
  [ -n "$dir" ] && [ -f "$dir/server.properties" ] || die "usage: kafka.sh restart DIR (a DIR once started)"
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null &&
    die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid"))"
  local t0=$SECONDS
  launch "$dir" "$(jars)"
  echo "kafka.sh: broker back in $((SECONDS - t0)) s (pid $(cat "$dir/kafka.pid"))" >&2
  echo "KAFKA_BOOTSTRAP_SERVERS=$(cat "$dir/bootstrap")"
}

config() {
  local dir="$1" topic="$2" settings="$3"
  [ -n "$settings" ] && [ -f "$dir/bootstrap" ] || die "usage: kafka.sh config DIR TOPIC KEY=VALUE[,KEY=VALUE]"
  java "${java_opts[@]}" -cp "$(jars)/*" kafka.admin.ConfigCommand $(admin_args "$dir") \
       --bootstrap-server "$(cat "$dir/bootstrap")" --alter --entity-type topics \
       --entity-name "$topic" --add-config "$settings" >&2
}

stop() {
  local dir="$1"
  [ -n "$dir" ] || die "usage: kafka.sh stop DIR"
  [ -f "$dir/kafka.pid" ] || { echo "kafka.sh: nothing runs from $dir" >&2; return 0; }
  local pid
  pid="$(cat "$dir/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/kafka.pid"
  echo "kafka.sh: stopped" >&2
}

topic() {
  local dir="$1" what="$2" name="$3" partitions="${4:-1}"
  [ -n "$name" ] && [ -f "$dir/bootstrap" ] || die "usage: kafka.sh topic DIR create|delete TOPIC [PARTITIONS]"
  local cmd=(java "${java_opts[@]}" -cp "$(jars)/*" org.apache.kafka.tools.TopicCommand $(admin_args "$dir")
             --bootstrap-server "$(cat "$dir/bootstrap")" --topic "$name")
  case "$what" in
    delete) "${cmd[@]}" --delete --if-exists >&2 ;;
    # a topic just deleted may still be going: try again for a while
    create) for _ in $(seq 1 20); do
              "${cmd[@]}" --create --if-not-exists --partitions "$partitions" \
                --replication-factor 1 >&2 2>"$dir/topic.err" && return 0
              sleep 0.5
            done
            cat "$dir/topic.err" >&2; die "cannot create $name" ;;
    *) die "usage: kafka.sh topic DIR create|delete TOPIC [PARTITIONS]" ;;
  esac
}

case "${1:-}" in
  start) shift
         # start DIR --secure, start DIR PORT --secure or start DIR [PORT]
         if [ "${2:-}" = --secure ]; then start "${1:-}" "" --secure
         else start "${1:-}" "${2:-}" "${3:-}"; fi ;;
  stop) shift; stop "${1:-}" ;;
  restart) shift; restart "${1:-}" ;;
  config) shift; config "${1:-}" "${2:-}" "${3:-}" ;;
  topic) shift; topic "${1:-}" "${2:-}" "${3:-}" "${4:-}" ;;
  fetch) jars >/dev/null ;;
  *) echo "usage: scripts/kafka.sh start DIR [PORT] [--secure] | stop DIR | restart DIR | config DIR TOPIC K=V | topic DIR create|delete T [P] | fetch" >&2
     exit 2 ;;
esac
