#!/usr/bin/env bash
# A real Apache Kafka broker on this machine, for tests, benchmarks and local
# runs (no Docker): the broker's jars from Maven Central, one KRaft node that
# is its own controller, on loopback.
#
#   scripts/kafka.sh start DIR [PORT]   prints KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT last
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
# Needs Java 17+ and Maven (scripts/bootstrap.sh installs them if missing)
# and kcat (the readiness check).
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
  local dir="$1" port="${2:-}"
  [ -n "$dir" ] || die "usage: kafka.sh start DIR [PORT]"
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
  rm -rf "$dir/data"
  # Settings for one node on loopback, as the compose stack's kafka service
  # has them: a single node cannot replicate internal topics; the group
  # coordinator's initial rebalance delay (3 s by default) would hold every
  # first join of a consumer group; topics are created below with chosen
  # partition counts, never by a client's first metadata request.
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
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
       -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; die "storage format failed"; }
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  local t0=$SECONDS
  launch "$dir" "$libs"
  java "${java_opts[@]}" -cp "$cp" org.apache.kafka.tools.TopicCommand \
       --bootstrap-server "127.0.0.1:$port" --create --if-not-exists --topic "$topic" \
       --partitions "$partitions" --replication-factor 1 >>"$dir/topics.log" 2>&1 &&
  java "${java_opts[@]}" -cp "$cp" org.apache.kafka.tools.TopicCommand \
       --bootstrap-server "127.0.0.1:$port" --create --if-not-exists --topic "$topic.DLQ" \
       --partitions 1 --replication-factor 1 >>"$dir/topics.log" 2>&1 ||
    { cat "$dir/topics.log" >&2; stop "$dir" >/dev/null 2>&1 || true; die "cannot create the topics"; }
  echo "kafka.sh: broker up in $((SECONDS - t0)) s (pid $(cat "$dir/kafka.pid"), log $dir/kafka.log)" >&2
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
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
  until kcat -b "$addr" -L -m 2 >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null || ((SECONDS - t0 > 60)); then
      tail -n 30 "$dir/kafka.out" "$dir/kafka.log" >&2 2>/dev/null || true
      stop "$dir" >/dev/null 2>&1 || true
      die "the broker did not answer on $addr within 60 s (see $dir/kafka.log)"
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
  java "${java_opts[@]}" -cp "$(jars)/*" kafka.admin.ConfigCommand \
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
  local cmd=(java "${java_opts[@]}" -cp "$(jars)/*" org.apache.kafka.tools.TopicCommand
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
  start) shift; start "${1:-}" "${2:-}" ;;
  stop) shift; stop "${1:-}" ;;
  restart) shift; restart "${1:-}" ;;
  config) shift; config "${1:-}" "${2:-}" "${3:-}" ;;
  topic) shift; topic "${1:-}" "${2:-}" "${3:-}" "${4:-}" ;;
  fetch) jars >/dev/null ;;
  *) echo "usage: scripts/kafka.sh start DIR [PORT] | stop DIR | restart DIR | config DIR TOPIC K=V | topic DIR create|delete T [P] | fetch" >&2
     exit 2 ;;
esac
