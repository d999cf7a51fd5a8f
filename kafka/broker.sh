#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1, for tests,
# benchmarks and the demo. No Docker: the jars come from Maven Central (kafka/pom.xml).
#
#   kafka/broker.sh fetch                       download the jars into kafka/.libs (cached)
#   kafka/broker.sh start                       format (first time) and start; waits until ready
#   kafka/broker.sh create-topic NAME [PARTS]   create a topic (idempotent)
#   kafka/broker.sh add-partitions NAME TOTAL   grow a topic to TOTAL partitions
#   kafka/broker.sh group-offsets GROUP         a consumer group's committed offsets:
#                                               "topic partition offset" lines
#   kafka/broker.sh status | stop
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), KAFKA_DATA (kafka/.data),
# KAFKA_HEAP (512m), KAFKA_START_TIMEOUT (90 s), KAFKA_REBALANCE_DELAY_MS (100: the broker's
# group.initial.rebalance.delay.ms, 3 s by Kafka's default: how long a new group waits for more
# members before its first assignment; the workers of one server start within milliseconds,
# and a member joining just after the first generation formed costs everyone librdkafka's
# rejoin interval, 1-2 s). The broker's log is $KAFKA_DATA/broker.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
libs="$here/.libs"
port=${KAFKA_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
data=${KAFKA_DATA:-$here/.data}
heap=${KAFKA_HEAP:-512m}
rebalance_delay=${KAFKA_REBALANCE_DELAY_MS:-100}
pidfile="$data/broker.pid"
log="$data/broker.log"

die() { echo "broker.sh: $*" >&2; exit 1; }

java_cp() { java -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$libs/*" "$@"; }

fetch() {
    if [ -f "$libs/.complete" ] && [ "$libs/.complete" -nt "$here/pom.xml" ]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (install maven)"
    rm -rf "$libs"
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$libs" -DincludeScope=runtime >&2
    touch "$libs/.complete"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

ready() { kcat -b "127.0.0.1:$port" -L -m 3 >/dev/null 2>&1; }

start() {
    fetch
    mkdir -p "$data"
    if running; then
        echo "broker already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"
        return 0
    fi
    cat > "$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=$rebalance_delay
log.retention.hours=-1
message.max.bytes=4194304
PROPS
    if [ ! -f "$data/logs/meta.properties" ]; then
        local id
        id=$(java_cp kafka.tools.StorageTool random-uuid)
        java_cp kafka.tools.StorageTool format -t "$id" -c "$data/server.properties" \
            >>"$log" 2>&1 || die "formatting the data directory failed; see $log"
    fi
    # setsid: the broker gets its own session, so a test harness killing its process group
    # doesn't leave it half-dead, and stop() can signal the whole group.
    setsid java -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC \
        -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
        -Dorg.slf4j.simpleLogger.showDateTime=true \
        -Dorg.slf4j.simpleLogger.log.kafka.server=warn \
        -Dorg.slf4j.simpleLogger.log.org.apache.kafka=warn \
        -Dorg.slf4j.simpleLogger.log.kafka.coordinator=warn \
        -cp "$libs/*" kafka.Kafka "$data/server.properties" >>"$log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
    until ready; do
        running || { tail -n 30 "$log" >&2; die "broker exited during start-up; see $log"; }
        [ $SECONDS -lt $deadline ] || { stop; die "broker not ready after ${KAFKA_START_TIMEOUT:-90} s; see $log"; }
        sleep 0.5
    done
    echo "broker ready on 127.0.0.1:$port (pid $(cat "$pidfile"), log $log)"
}

stop() {
    running || { rm -f "$pidfile"; return 0; }
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

create_topic() {
    local topic=${1:?topic name} parts=${2:-1}
    java_cp org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" \
        --create --if-not-exists --topic "$topic" --partitions "$parts" --replication-factor 1 \
        >/dev/null
    # wait until the metadata shows every partition with a leader
    local deadline=$((SECONDS + 30))
    until [ "$(kcat -b "127.0.0.1:$port" -L -t "$topic" 2>/dev/null | grep -c 'partition .*leader 1')" -ge "$parts" ]; do
        [ $SECONDS -lt $deadline ] || die "topic $topic has no leaders after 30 s"
        sleep 0.2
    done
}

add_partitions() {
    local topic=${1:?topic name} parts=${2:?new partition count}
    java_cp org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" \
        --alter --topic "$topic" --partitions "$parts" >/dev/null
    local deadline=$((SECONDS + 30))
    until [ "$(kcat -b "127.0.0.1:$port" -L -t "$topic" 2>/dev/null | grep -c 'partition .*leader 1')" -ge "$parts" ]; do
        [ $SECONDS -lt $deadline ] || die "topic $topic has no $parts partitions after 30 s"
        sleep 0.2
    done
}

group_offsets() {
    local group=${1:?group id}
    java_cp org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "127.0.0.1:$port" --describe --group "$group" 2>/dev/null |
        awk 'NR > 1 && $4 ~ /^[0-9]+$/ { print $2, $3, $4 }'
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    status) if running; then echo "running (pid $(cat "$pidfile"))"; else echo "stopped"; exit 3; fi ;;
    create-topic) shift; create_topic "$@" ;;
    add-partitions) shift; add_partitions "$@" ;;
    group-offsets) shift; group_offsets "$@" ;;
    *) echo "usage: $0 fetch|start|stop|status|create-topic NAME [PARTITIONS]|add-partitions NAME TOTAL|group-offsets GROUP" >&2; exit 2 ;;
esac
