#!/usr/bin/env bash
# The kafka service of docker-compose.yml: a single-node Apache Kafka broker (KRaft, combined
# broker+controller) from the jars in kafka/.libs, reachable by the other containers.
#
# kafka/broker.sh runs the same broker for tests and scripts/run.sh, but binds and advertises
# 127.0.0.1 only; here the client listener binds KAFKA_LISTEN_HOST and is advertised as
# KAFKA_ADVERTISED_HOST, so that clients in other containers reach it as kafka:9092.
# Once the broker is up, the topic KAFKA_TOPIC is created with KAFKA_TOPIC_PARTITIONS
# partitions (if it does not exist yet); then the script waits for the broker and passes
# SIGTERM/SIGINT on to it.
#
# Environment (defaults for the container):
#   KAFKA_PORT 9092, KAFKA_CONTROLLER_PORT KAFKA_PORT+1, KAFKA_LISTEN_HOST 0.0.0.0,
#   KAFKA_ADVERTISED_HOST kafka, KAFKA_DATA /var/lib/kafka, KAFKA_HEAP 512m,
#   KAFKA_TOPIC web_events, KAFKA_TOPIC_PARTITIONS 4, KAFKA_RETENTION_HOURS 24,
#   KAFKA_START_TIMEOUT 120 (seconds), KAFKA_USER kafka (used only when started as root).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
libs=${KAFKA_LIBS:-$root/kafka/.libs}
port=${KAFKA_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
listen_host=${KAFKA_LISTEN_HOST:-0.0.0.0}
advertised_host=${KAFKA_ADVERTISED_HOST:-kafka}
data=${KAFKA_DATA:-/var/lib/kafka}
heap=${KAFKA_HEAP:-512m}
topic=${KAFKA_TOPIC:-web_events}
partitions=${KAFKA_TOPIC_PARTITIONS:-4}
retention_hours=${KAFKA_RETENTION_HOURS:-24}
start_timeout=${KAFKA_START_TIMEOUT:-120}

log() { echo "kafka-entrypoint: $*" >&2; }
die() { log "$*"; exit 1; }

# Started as root (the container): own the data directory, then run as an ordinary user.
if [ "$(id -u)" -eq 0 ]; then
    user=${KAFKA_USER:-kafka}
    id "$user" >/dev/null 2>&1 || useradd --system --home-dir "$data" --shell /usr/sbin/nologin "$user"
    mkdir -p "$data"
    chown -R "$user:" "$data"
    exec setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups env HOME="$data" bash "$0" "$@"
fi

[ -f "$libs/.complete" ] || die "no Kafka jars in $libs (run kafka/broker.sh fetch or scripts/install-deps.sh)"
command -v kcat >/dev/null || die "kcat not found (scripts/install-deps.sh installs it)"
mkdir -p "$data"

cat > "$data/server.properties" <<PROPS
# written by docker/kafka-entrypoint.sh at every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://$listen_host:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://$advertised_host:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
num.partitions=$partitions
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=$retention_hours
message.max.bytes=4194304
PROPS

java_cp() {
    java -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Xmx256m -XX:+UseSerialGC \
        -XX:TieredStopAtLevel=1 -cp "$libs/*" "$@"
}

if [ ! -f "$data/logs/meta.properties" ]; then
    cluster_id=$(java_cp kafka.tools.StorageTool random-uuid)
    log "formatting $data/logs (cluster id $cluster_id)"
    java_cp kafka.tools.StorageTool format -t "$cluster_id" -c "$data/server.properties" >&2 \
        || die "formatting the data directory failed"
fi

java -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.log.kafka.server=warn \
    -Dorg.slf4j.simpleLogger.log.org.apache.kafka=warn \
    -Dorg.slf4j.simpleLogger.log.kafka.coordinator=warn \
    -cp "$libs/*" kafka.Kafka "$data/server.properties" < /dev/null &
broker=$!

stop_broker() {
    log "stopping the broker (pid $broker)"
    kill -TERM "$broker" 2>/dev/null || true
}
trap stop_broker TERM INT

# readiness: the broker answers a metadata request on the local client listener
local_addr=127.0.0.1
[ "$listen_host" = "0.0.0.0" ] || local_addr=$listen_host
deadline=$((SECONDS + start_timeout))
until kcat -b "$local_addr:$port" -L -m 3 >/dev/null 2>&1; do
    kill -0 "$broker" 2>/dev/null || { wait "$broker" || true; die "the broker exited during start-up"; }
    [ $SECONDS -lt $deadline ] || { stop_broker; wait "$broker" || true; die "broker not ready after $start_timeout s"; }
    sleep 0.5
done
log "broker ready on $listen_host:$port, advertised as $advertised_host:$port"

if [ -n "$topic" ]; then
    # --if-not-exists: an existing topic keeps its partitions
    java_cp org.apache.kafka.tools.TopicCommand --bootstrap-server "$local_addr:$port" \
        --create --if-not-exists --topic "$topic" --partitions "$partitions" \
        --replication-factor 1 >/dev/null \
        || { stop_broker; wait "$broker" || true; die "creating topic $topic failed"; }
    # ready when every partition of the topic has a leader
    deadline=$((SECONDS + 30))
    while :; do
        meta=$(kcat -b "$local_addr:$port" -L -t "$topic" 2>/dev/null || true)
        total=$(sed -n "s/.*topic \"$topic\" with \([0-9]*\) partitions.*/\1/p" <<<"$meta" | head -1)
        leaders=$(grep -c 'partition .*leader 1' <<<"$meta" || true)
        [ "${total:-0}" -gt 0 ] && [ "$leaders" -eq "$total" ] && break
        [ $SECONDS -lt $deadline ] || { stop_broker; wait "$broker" || true; die "topic $topic has no leaders after 30 s"; }
        sleep 0.2
    done
    [ "$total" -ge "$partitions" ] || log "note: topic $topic already existed with $total partitions"
    log "topic $topic ready ($total partitions)"
fi

# wait for the broker; a signal interrupts wait, the trap forwards it, then wait again
status=0
while kill -0 "$broker" 2>/dev/null; do
    wait "$broker" && status=0 || status=$?
done
log "broker exited (status $status)"
exit "$status"
