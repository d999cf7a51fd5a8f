#!/usr/bin/env bash
# trafficagg soak: a steady load for a while, memory sampled, to see that
# nothing grows per message or per flush.
#
#   bench/soak.sh [--minutes M] [--rate R] [--workers W] [--partitions P]
#
# A broker and a server of their own (on 127.0.0.1 and a Unix socket), the
# producer at R events/s for M minutes (10, 20000, 2, 8 by default) with
# 10-second windows and 1 s of lateness, so that windows close and flush
# every few seconds.  Every 30 s: the workers' private resident memory
# (RssAnon, summed; their VmRSS also counts every page of shared memory and
# shared_buffers they have touched, which grows as the tables are written
# until it is all touched, so it is shown apart, as RssShmem), and from trafficagg.status
# shmem_bytes, sketch_bytes, groups_used, values_used, dictionary_bytes,
# flushes and messages consumed.  Prints the samples and the growth between
# the first sample after warm-up and the last, per million messages, and
# writes them to bench/results/soak-*.json.  Timings are not its point.
set -euo pipefail

minutes=10
rate=20000
nworkers=2
partitions=8
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --workers) nworkers=$2; shift 2 ;;
        --partitions) partitions=$2; shift 2 ;;
        *) echo "bench/soak.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh
build_and_install

work=${SOAK_WORK_DIR:-/tmp/trafficagg-soak}
rm -rf "$work"
mkdir -p "$work" bench/results
export KAFKA_PORT=${SOAK_KAFKA_PORT:-29392}
export KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
export KAFKA_DATA=$work/kafka
export KAFKA_HEAP=${SOAK_KAFKA_HEAP:-1g}
pgport=${SOAK_PGPORT:-29394}
brokers=127.0.0.1:$KAFKA_PORT
pgbin=$(pg_config --bindir)

ordinary_user "${TRAFFICAGG_TEST_USER:-tatest}" "$work"
as_pg=("${as_user[@]}")
psql_() { "${as_pg[@]}" "$pgbin/psql" -X -q -At -h "$work" -p "$pgport" -U postgres -d postgres "$@"; }

cleanup() {
    [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null || true
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
    kafka/broker.sh stop || true
}
trap cleanup EXIT

kafka/broker.sh start >&2
kafka/broker.sh create-topic soak "$partitions"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pgdata" -A trust -U postgres >/dev/null
cat >> "$work/pgdata/postgresql.conf" <<CONF
listen_addresses = ''
port = $pgport
unix_socket_directories = '$work'
shared_preload_libraries = 'trafficagg'
trafficagg.database = 'postgres'
trafficagg.brokers = '$brokers'
trafficagg.topic = 'soak'
trafficagg.group_id = 'soak-$$'
trafficagg.workers = $nworkers
trafficagg.window = '10s'
trafficagg.allowed_lateness = '1s'
shared_buffers = '256MB'
CONF
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -l "$work/postgresql.log" -w start >/dev/null
psql_ -c "CREATE EXTENSION trafficagg CASCADE" 2>/dev/null

node producer/event_generator.js --brokers "$brokers" --topic soak --seed soak \
    --rate "$rate" --duration $((minutes * 60 + 30)) --quiet 2> "$work/producer.log" &
load_pid=$!

samples=$work/samples.tsv
printf 'second\tworker_anon_kb\tworker_shmem_kb\tshmem_bytes\tsketch_bytes\tgroups_used\tvalues_used\tdictionary_bytes\tflushes\tconsumed\n' > "$samples"
rss() { for p in $(psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"); do
            awk -v f="$1" '$1 == f {print $2}' "/proc/$p/status"; done | awk '{s += $1} END {print s + 0}'; }
start=$SECONDS
while [ $((SECONDS - start)) -le $((minutes * 60)) ]; do
    sleep 30
    st=$(psql_ -F $'\t' -c "SELECT max(shmem_bytes), max(sketch_bytes), max(groups_used), max(values_used),
                                   max(dictionary_bytes), max(flushes), sum(consumed)
                              FROM trafficagg.status")
    printf '%s\t%s\t%s\t%s\n' $((SECONDS - start)) "$(rss RssAnon:)" "$(rss RssShmem:)" "$st" | tee -a "$samples" >&2
done
wait "$load_pid" || true
load_pid=

# growth from the first sample after warm-up (the second: shared pages are
# touched as groups first fill) to the last, per million messages
growth=$(awk -F '\t' 'NR == 3 {r = $2; s = $5; c = $10; d = $8} END {
           m = ($10 - c) / 1e6; if (m <= 0) m = 1;
           printf "{\"messages\": %d, \"worker_anon_kb_per_million\": %.1f, \"sketch_bytes_per_million\": %.0f, \"dictionary_bytes_per_million\": %.0f}",
                  $10 - c, ($2 - r) / m, ($5 - s) / m, ($8 - d) / m }' "$samples")
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/soak-$stamp.json
{
    printf '{"when": "%s", "minutes": %s, "rate": %s, "workers": %s, "partitions": %s,\n' \
        "$stamp" "$minutes" "$rate" "$nworkers" "$partitions"
    printf ' "producer": "%s",\n' "$(tail -1 "$work/producer.log" | sed 's/"/\\"/g')"
    printf ' "growth_after_warmup": %s,\n "samples": [\n' "$growth"
    awk -F '\t' 'NR > 1 {printf "%s  {\"second\": %s, \"worker_anon_kb\": %s, \"worker_shmem_kb\": %s, \"shmem_bytes\": %s, \"sketch_bytes\": %s, \"groups_used\": %s, \"values_used\": %s, \"dictionary_bytes\": %s, \"flushes\": %s, \"consumed\": %s}",
                  (NR > 2 ? ",\n" : ""), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10} END {print ""}' "$samples"
    printf ' ]}\n'
} > "$out"
column -t -s $'\t' "$samples"
echo "growth after warm-up: $growth"
echo "results: $out"
