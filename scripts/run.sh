#!/usr/bin/env bash
# The main job: a Kafka broker, PostgreSQL with trafficagg consuming it, the
# event producer, and the live per-page metrics (trafficagg.by_page_realtime)
# refreshed on screen every few seconds.  Ctrl-C stops everything.
#
#   scripts/run.sh [--rate EVENTS_PER_S] [--duration SECONDS] [--refresh SECONDS]
#
# State (PostgreSQL data, broker data, logs) lives in $TRAFFICAGG_RUN_DIR
# (default .run/ in the checkout) and is kept between runs.  Ports:
# PostgreSQL $TRAFFICAGG_PGPORT (5433), Kafka $KAFKA_PORT (9092), 127.0.0.1 only.
# With --duration the script exits non-zero if no event reached the tables.
set -euo pipefail

rate=500
duration=0
refresh=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) rate=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --refresh) refresh=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh
build_and_install

state=${TRAFFICAGG_RUN_DIR:-$root/.run}
pgport=${TRAFFICAGG_PGPORT:-5433}
export KAFKA_PORT=${KAFKA_PORT:-9092}
export KAFKA_DATA=$state/kafka
pgbin=$(pg_config --bindir)
mkdir -p "$state"

ordinary_user "${TRAFFICAGG_RUN_USER:-trafficagg}" "$state"
as_pg=("${as_user[@]}")
psql_() { "${as_pg[@]}" "$pgbin/psql" -X -q -h "$state" -p "$pgport" -d postgres "$@"; }

producer_pid=
cleanup() {
    trap - EXIT INT TERM
    echo; echo "stopping..."
    [ -n "$producer_pid" ] && kill "$producer_pid" 2>/dev/null && wait "$producer_pid" 2>/dev/null
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$state/pgdata" -m fast stop >/dev/null 2>&1 || true
    kafka/broker.sh stop || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

kafka/broker.sh start
kafka/broker.sh create-topic web_events 4

if [ ! -f "$state/pgdata/PG_VERSION" ]; then
    "${as_pg[@]}" "$pgbin/initdb" -D "$state/pgdata" -A trust -U postgres >/dev/null
    cat >> "$state/pgdata/postgresql.conf" <<CONF
# trafficagg demo
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$state'
shared_preload_libraries = 'trafficagg'
trafficagg.brokers = '127.0.0.1:$KAFKA_PORT'
trafficagg.topic = 'web_events'
trafficagg.database = 'postgres'
trafficagg.allowed_lateness = '5s'
CONF
fi
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$state/pgdata" -l "$state/postgresql.log" -w start >/dev/null
psql_ -U postgres -c "CREATE EXTENSION IF NOT EXISTS trafficagg CASCADE"

node producer/event_generator.js --brokers "127.0.0.1:$KAFKA_PORT" --topic web_events \
    --rate "$rate" --late-fraction 0.01 --late-by 30000 --bad-fraction 0.005 --quiet \
    > "$state/producer.log" 2>&1 &
producer_pid=$!

start=$SECONDS
while :; do
    out=$(psql_ -U postgres -P pager=off <<'SQL'
\echo 'trafficagg: live traffic per page (trafficagg.by_page_realtime, last 3 minutes, top 15)'
SELECT to_char(window_start, 'HH24:MI') AS minute, page, event_type, events, errors,
       client_errors AS "4xx", round(latency_sum / nullif(latency_count, 0), 1) AS avg_ms,
       latency_max AS max_ms
  FROM trafficagg.by_page_realtime
 WHERE window_start >= date_trunc('minute', now()) - interval '2 minutes'
 ORDER BY window_start DESC, events DESC, page
 LIMIT 15;
SELECT to_char(now(), 'HH24:MI:SS') AS now, sum(consumed) AS consumed, sum(accepted) AS accepted,
       sum(late) AS late, sum(rejected) AS rejected, sum(lag) AS lag,
       to_char(max(watermark), 'HH24:MI:SS') AS watermark, max(open_windows) AS open_windows,
       max(broker_state) AS broker
  FROM trafficagg.status WHERE source = 'kafka';
SQL
)
    [ -t 1 ] && clear
    echo "$out"
    echo "(Ctrl-C to stop; logs in $state)"
    if [ "$duration" -gt 0 ] && [ $((SECONDS - start)) -ge "$duration" ]; then
        n=$(psql_ -U postgres -At -c "SELECT coalesce(sum(events), 0) FROM trafficagg.total_realtime")
        echo "events aggregated: $n"
        [ "$n" -gt 0 ] || { echo "run.sh: no event reached trafficagg" >&2; exit 1; }
        exit 0
    fi
    sleep "$refresh"
done
