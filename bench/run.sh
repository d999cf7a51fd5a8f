#!/usr/bin/env bash
# trafficagg benchmark harness: one command, one run, all baselines measured
# side by side on the same messages (machines here are noisy: only ratios
# within one run mean something).
#
#   bench/run.sh [--events N] [--partitions P] [--smoke]
#
#   (a) consume ceiling   plain librdkafka consumer, reads everything, does nothing
#   (a+b) read and parse  the same consumer with extension/event.c linked in:
#                         every message parsed and validated, nothing aggregated
#                         (the floor of the worker's CPU per event)
#   (b) parse cost        extension/event.c alone over the same payloads, one core;
#                         and over --schema nested events under the nested mapping
#   (c) trafficagg        worker start -> every event in the final tables, with
#                         trafficagg.workers = 1 and = 2 side by side
#   (d) naive             kcat | COPY into a jsonb table, then GROUP BY
#   (e) freshness         steady load with wall-clock times: probe -> live view,
#                         watermark passing a window end -> its final row
#   (f) memory            shared memory per group slot, and what the sketches
#                         of a group take at low and high cardinality
#   (g) instructions      the worker under callgrind, instructions per event:
#                         (Ir over 3N events - Ir over N events) / 2N, so that
#                         its start and idle time cancel (not in --smoke)
#
# Results: a table on stdout and JSON in bench/results/.  --smoke runs a tiny
# N so CI keeps the harness working; its timings mean nothing.
set -euo pipefail

events=2000000
partitions=8
smoke=0
while [ $# -gt 0 ]; do
    case "$1" in
        --events) events=$2; shift 2 ;;
        --partitions) partitions=$2; shift 2 ;;
        --smoke) smoke=1; events=20000; partitions=2; shift ;;
        *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh
build_and_install
make -s -C bench

work=${BENCH_WORK_DIR:-/tmp/trafficagg-bench}
rm -rf "$work"
mkdir -p "$work" bench/results
export KAFKA_PORT=${BENCH_KAFKA_PORT:-29192}
export KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
export KAFKA_DATA=$work/kafka
export KAFKA_HEAP=${BENCH_KAFKA_HEAP:-1g}
pgport=${BENCH_PGPORT:-29194}
brokers=127.0.0.1:$KAFKA_PORT
topic=bench_events
pgbin=$(pg_config --bindir)

ordinary_user "${TRAFFICAGG_TEST_USER:-tatest}" "$work"
as_pg=("${as_user[@]}")
psql_() { "${as_pg[@]}" "$pgbin/psql" -X -q -At -h "$work" -p "$pgport" -d postgres "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

cleanup() {
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -m immediate stop >/dev/null 2>&1 || true
    kafka/broker.sh stop || true
}
trap cleanup EXIT

echo "== broker, topic ($partitions partitions), preloading $events events" >&2
kafka/broker.sh start >&2
kafka/broker.sh create-topic "$topic" "$partitions"
t0=$(now)
node producer/event_generator.js --brokers "$brokers" --topic "$topic" --seed bench \
    --count "$events" --rate max --start-time 2026-01-01T00:00:00Z --time-step 1 --quiet >&2
produce_s=$(elapsed "$t0" "$(now)")

# a number of a one-line JSON object: field NAME JSON
field() { sed "s/.*\"$1\": \([-0-9.]*\).*/\1/" <<<"$2"; }

echo "== (a) consume ceiling" >&2
a_json=$(bench/consume_ceiling "$brokers" "$topic" "$events")
a_rate=$(sed 's/.*"messages_per_s": \([0-9.]*\).*/\1/' <<<"$a_json")
bytes=$(sed 's/.*"bytes": \([0-9]*\).*/\1/' <<<"$a_json")
a_cpu_us=$(calc "$(field cpu_s "$a_json") * 1000000 / $events")

echo "== (a+b) read and parse, nothing aggregated" >&2
ab_json=$(bench/consume_parse "$brokers" "$topic" "$events")
[ "$(field accepted "$ab_json")" = "$events" ] ||
    { echo "bench: (a+b) accepted $(field accepted "$ab_json") of $events events" >&2; exit 1; }
ab_cpu_us=$(calc "$(field cpu_s "$ab_json") * 1000000 / $events")

echo "== (b) parse cost" >&2
kcat -b "$brokers" -C -t "$topic" -e -q -f '%s\n' > "$work/payloads.ndjson"
b_json=$(bench/parse_bench "$work/payloads.ndjson" $([ $smoke = 1 ] && echo 3 || echo 2))
b_rate=$(sed 's/.*"messages_per_s": \([0-9.]*\).*/\1/' <<<"$b_json")
# the same under the nested example's mapping (README, "Field mapping"), over
# the producer's --schema nested events of the same seed
nested_n=$(( events < 100000 ? events : 100000 ))
kafka/broker.sh create-topic "$topic-nested" 1
node producer/event_generator.js --brokers "$brokers" --topic "$topic-nested" --seed bench \
    --count "$nested_n" --rate max --start-time 2026-01-01T00:00:00Z --time-step 1 --schema nested --quiet >&2
kcat -b "$brokers" -C -t "$topic-nested" -e -q -f '%s\n' > "$work/nested.ndjson"
b_nested_json=$(bench/parse_bench "$work/nested.ndjson" $([ $smoke = 1 ] && echo 3 || echo 2) nested)

# (c) one catch-up of the whole topic by a fresh server with $1 workers, in
# data directory $2; sets c_s, c_rate, c_cpu_per_m, shmem, peak_groups and
# leaves the server running
catchup() {
    local nworkers=$1 data=$2
    "${as_pg[@]}" "$pgbin/initdb" -D "$data" -A trust -U postgres >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = ''
port = $pgport
unix_socket_directories = '$work'
shared_preload_libraries = 'trafficagg'
trafficagg.database = 'postgres'
trafficagg.topic = '$topic'
trafficagg.group_id = 'bench-$$-$nworkers'
trafficagg.workers = $nworkers
trafficagg.max_groups = 200000
shared_buffers = '256MB'
${BENCH_EXTRA_CONF:-}
CONF
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -l "$work/postgresql.log" -w start >/dev/null
    psql_ -U postgres -c "CREATE EXTENSION trafficagg CASCADE" 2>/dev/null
    shmem=$(psql_ -U postgres -c "SELECT max(shmem_bytes) FROM trafficagg.status")
    workers=$(psql_ -U postgres -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'")
    local ticks cpu0 cpu1 t0 done_n groups
    ticks=$(getconf CLK_TCK)
    cpu0=$(cpu)
    t0=$(now)
    psql_ -U postgres -c "ALTER SYSTEM SET trafficagg.brokers = '$brokers'" -c "SELECT pg_reload_conf()" >/dev/null
    peak_groups=0
    while :; do
        read -r done_n groups <<<"$(psql_ -U postgres -F ' ' -c "SELECT coalesce(sum(position), 0), max(groups_used) FROM trafficagg.status WHERE source = 'kafka'")"
        [ "${groups:-0}" -gt "$peak_groups" ] && peak_groups=$groups
        [ "$done_n" -ge "$events" ] && break
        sleep 0.05
    done
    psql_ -U postgres -c "SELECT trafficagg.flush(close_all => true)" >/dev/null
    c_s=$(elapsed "$t0" "$(now)")
    cpu1=$(cpu)
    c_rate=$(calc "$events / $c_s")
    c_cpu_per_m=$(calc "($cpu1 - $cpu0) / $ticks / ($events / 1000000)")
}
# the workers' CPU time (user + system, librdkafka's threads included), in ticks
cpu() { for p in $workers; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }

echo "== (c) trafficagg catch-up, 2 workers" >&2
catchup 2 "$work/pgdata2"
c2_s=$c_s c2_rate=$c_rate c2_cpu_per_m=$c_cpu_per_m c2_peak_groups=$peak_groups
c2_events=$(psql_ -U postgres -c "SELECT sum(events) FROM trafficagg.total")
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata2" -m fast stop >/dev/null

echo "== (c) trafficagg catch-up, 1 worker" >&2
catchup 1 "$work/pgdata"
rows=$(psql_ -U postgres -c "SELECT (SELECT count(*) FROM trafficagg.by_page) + (SELECT count(*) FROM trafficagg.by_country) + (SELECT count(*) FROM trafficagg.by_device) + (SELECT count(*) FROM trafficagg.total)")
c_events=$(psql_ -U postgres -c "SELECT sum(events) FROM trafficagg.total")
agg_bytes=$(psql_ -U postgres -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'trafficagg' AND c.relkind = 'r' AND c.relname IN ('by_page', 'by_country', 'by_device', 'total')")

echo "== (d) naive: kcat | COPY jsonb, then GROUP BY" >&2
psql_ -U postgres -c "CREATE TABLE raw_events (j jsonb)"
t0=$(now)
kcat -b "$brokers" -C -t "$topic" -e -q -f '%s\n' |
    psql_ -U postgres -c "COPY raw_events FROM STDIN WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
psql_ -U postgres -c "
  CREATE TABLE naive_by_page AS
  SELECT date_bin('1 minute', (j->>'timestamp')::timestamptz, 'epoch') AS window_start,
         j->>'page' AS page, j->>'event_type' AS event_type, count(*) AS events,
         count(*) FILTER (WHERE (j->>'status_code')::int >= 500) AS errors,
         count(*) FILTER (WHERE (j->>'status_code')::int BETWEEN 400 AND 499) AS client_errors,
         count(j->>'response_time_ms') AS latency_count,
         sum((j->>'response_time_ms')::numeric) AS latency_sum,
         min((j->>'response_time_ms')::numeric) AS latency_min,
         max((j->>'response_time_ms')::numeric) AS latency_max
    FROM raw_events GROUP BY 1, 2, 3"
d_s=$(elapsed "$t0" "$(now)")
d_rate=$(calc "$events / $d_s")
d_bytes=$(psql_ -U postgres -c "SELECT pg_total_relation_size('raw_events')")
same=$(psql_ -U postgres -c "
  SELECT count(*) = 0 FROM (
    (SELECT window_start, page, event_type, events, errors, client_errors, latency_count, latency_sum FROM naive_by_page
     EXCEPT ALL SELECT window_start, page, event_type, events, errors, client_errors, latency_count, latency_sum FROM trafficagg.by_page)
    UNION ALL
    (SELECT window_start, page, event_type, events, errors, client_errors, latency_count, latency_sum FROM trafficagg.by_page
     EXCEPT ALL SELECT window_start, page, event_type, events, errors, client_errors, latency_count, latency_sum FROM naive_by_page)) d")

echo "== (e) freshness under a steady load, 2 workers" >&2
fresh_rate=$([ $smoke = 1 ] && echo 2000 || echo 50000)
fresh_s=$([ $smoke = 1 ] && echo 8 || echo 60)
kafka/broker.sh create-topic bench_fresh "$partitions"
psql_ -U postgres -c "ALTER SYSTEM SET trafficagg.\"window\" = '5s'" \
    -c "ALTER SYSTEM SET trafficagg.allowed_lateness = '1s'" \
    -c "ALTER SYSTEM SET trafficagg.topic = 'bench_fresh'" \
    -c "ALTER SYSTEM SET trafficagg.group_id = 'fresh-$$'" \
    -c "ALTER SYSTEM SET trafficagg.workers = 2"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -l "$work/postgresql.log" -w restart >/dev/null
node producer/event_generator.js --brokers "$brokers" --topic bench_fresh --seed fresh \
    --rate "$fresh_rate" --duration $((fresh_s + 6)) --quiet 2> "$work/fresh-producer.log" &
load_pid=$!
sleep 4
e_json=$("${as_pg[@]}" bench/freshness "$brokers" bench_fresh \
    "host=$work port=$pgport dbname=postgres user=postgres" "$fresh_s")
wait "$load_pid"
# the rate the producer kept up (on 2 cores it competes with the broker and the server)
fresh_sent=$(sed -n 's/.*done: \([0-9]*\) messages.* in \([0-9.]*\) s.*/\1 \2/p' "$work/fresh-producer.log")
fresh_achieved=$(calc "${fresh_sent% *} / ${fresh_sent#* }")

echo "== (f) shared memory per group, sketches included (SQL ingest, no Kafka)" >&2
# default max_groups (100000), max_values and sketch settings; low
# cardinality: each event its own by_page group (24,000 pages x 4 event
# types, one user and one latency each), plus the few of the other aggregates
psql_ -U postgres -c "ALTER SYSTEM SET trafficagg.brokers = ''" -c "ALTER SYSTEM RESET trafficagg.workers" \
    -c "ALTER SYSTEM SET trafficagg.max_groups = 100000" -c "ALTER SYSTEM RESET trafficagg.\"window\""
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -l "$work/postgresql.log" -w restart >/dev/null
low_n=$([ $smoke = 1 ] && echo 2000 || echo 95000)
high_pages=$([ $smoke = 1 ] && echo 5 || echo 50)
high_users=$([ $smoke = 1 ] && echo 2000 || echo 5000)
ingest_at() {  # ingest_at TIMESTAMP FROM-CLAUSE (giving p, et and u)
    psql_ -U postgres -c "SELECT sum(events) FROM trafficagg.ingest(ARRAY(SELECT json_build_object(
        'timestamp', '$1', 'event_type', et, 'page', '/p' || p, 'user_id', 'u' || u,
        'response_time_ms', round((exp(3 + random() * 3))::numeric, 3))::text FROM $2))" >/dev/null
}
memory_sql="SELECT shmem_bytes, groups_capacity, groups_used, sketch_bytes, sketch_capacity
              FROM trafficagg.status WHERE source = 'sql'"
ingest_at 2026-01-01T00:00:30Z "generate_series(1, $low_n) g,
    LATERAL (SELECT g % 24000 AS p, 'type' || g / 24000 AS et, g AS u) x"
read -r shmem_f capacity low_groups low_sketch sketch_cap <<<"$(psql_ -U postgres -F ' ' -c "$memory_sql")"
psql_ -U postgres -c "SELECT trafficagg.flush(close_all => true)" >/dev/null
ingest_at 2026-01-01T00:10:30Z "generate_series(1, $high_pages) p, generate_series(1, $high_users) u,
    LATERAL (SELECT 'page_view' AS et) x"
read -r _ _ high_groups high_sketch _ <<<"$(psql_ -U postgres -F ' ' -c "$memory_sql")"
high_forms=$(psql_ -U postgres -c "SELECT string_agg(DISTINCT hll_type(users)::text, ',') FROM trafficagg.by_page_live")
# an ingest that aggregated nothing (a rejected time, say) must not pass for a measure
if [ "${low_groups:-0}" -le 0 ] || [ "${high_groups:-0}" -le 0 ]; then
    echo "bench/run.sh: (f) found no groups in memory after its ingest (low $low_groups, high $high_groups)" >&2
    exit 1
fi
f_group_slot=$(calc "($shmem_f - $sketch_cap * 1.25 - 4194304) / $capacity")
f_low=$(calc "$low_sketch / $low_groups")
f_high=$(calc "$high_sketch / $high_groups")

# (g) the worker's instructions per event under callgrind: a server with one
# worker reads a topic of N and then one of 3N of the producer's events (same
# seed and shape as above), each from start to every event flushed; the
# difference over 2N events leaves out the server's start and the idle loop.
# Instruction counts don't depend on the machine's load, timings do.
g_ir=null
g_n=$([ $smoke = 1 ] && echo 0 || echo 20000)
cg_run() {  # cg_run TOPIC COUNT: prints the worker's instructions
    local data=$work/pgcg pid f
    rm -rf "$data"
    "${as_pg[@]}" "$pgbin/initdb" -D "$data" -A trust -U postgres >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = ''
port = $pgport
unix_socket_directories = '$work'
shared_preload_libraries = 'trafficagg'
trafficagg.database = 'postgres'
trafficagg.brokers = '$brokers'
trafficagg.topic = '$1'
trafficagg.group_id = 'cg-$$-$1'
trafficagg.max_groups = 200000
shared_buffers = '128MB'
CONF
    "${as_pg[@]}" valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
        "$pgbin/postgres" -D "$data" > "$work/callgrind.log" 2>&1 &
    for _ in $(seq 1 300); do psql_ -U postgres -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
    psql_ -U postgres -c "CREATE EXTENSION trafficagg CASCADE" 2>/dev/null ||
        { echo "bench: (g) the server under callgrind did not start: $work/callgrind.log" >&2; exit 1; }
    pid=$(psql_ -U postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'")
    local waited=0
    until [ "$(psql_ -U postgres -c "SELECT coalesce(sum(position), 0) FROM trafficagg.status WHERE source = 'kafka'")" -ge "$2" ]; do
        sleep 0.5
        waited=$((waited + 1))
        [ $waited -lt 1200 ] || { echo "bench: (g) the worker under callgrind did not read $1 in 10 minutes" >&2; exit 1; }
    done
    psql_ -U postgres -c "SELECT trafficagg.flush(close_all => true)" >/dev/null
    [ "$(psql_ -U postgres -c "SELECT sum(events) FROM trafficagg.total")" = "$2" ] ||
        { echo "bench: (g) counted a wrong number of events" >&2; exit 1; }
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    f="$work/cg.$pid"
    # "totals:", not "summary:": in a process forked from one under callgrind
    # (every backend) "summary:" is far below what its functions add up to
    # (148M against 1.75G in one run); "totals:" is their sum
    sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1
}
if [ "$g_n" -gt 0 ]; then
    echo "== (g) the worker's instructions per event (callgrind)" >&2
    # (its own server on the same port)
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pgdata" -m fast -w stop >/dev/null
    for k in 1 3; do
        kafka/broker.sh create-topic "bench_cg$k" "$partitions"
        node producer/event_generator.js --brokers "$brokers" --topic "bench_cg$k" --seed bench \
            --count $((k * g_n)) --rate max --start-time 2026-01-01T00:00:00Z --time-step 1 --quiet >&2
    done
    ir1=$(cg_run bench_cg1 "$g_n")
    ir3=$(cg_run bench_cg3 $((3 * g_n)))
    g_ir=$(( (ir3 - ir1) / (2 * g_n) ))
fi

ca=$(calc "$c_rate / $a_rate")
ca2=$(calc "$c2_rate / $a_rate")
cd2=$(calc "$c2_rate / $d_rate")
cd_=$(calc "$c_rate / $d_rate")
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/$([ $smoke = 1 ] && echo smoke || echo run)-$stamp.json
cat > "$out" <<JSON
{
  "when": "$stamp", "smoke": $([ $smoke = 1 ] && echo true || echo false),
  "events": $events, "partitions": $partitions, "payload_bytes": $bytes,
  "cpus": $(nproc), "produce_s": $(printf %.2f "$produce_s"),
  "a_consume_ceiling": $a_json,
  "ab_consume_and_parse": $ab_json,
  "a_cpu_us_per_event": $(printf %.3f "$a_cpu_us"), "ab_cpu_us_per_event": $(printf %.3f "$ab_cpu_us"),
  "b_parse": $b_json,
  "b_parse_nested": $b_nested_json,
  "c_trafficagg_2_workers": {"seconds": $(printf %.3f "$c2_s"), "events_per_s": $(printf %.0f "$c2_rate"),
                   "workers_cpu_s_per_million": $(printf %.3f "$c2_cpu_per_m"),
                   "peak_groups": $c2_peak_groups, "events_in_total": $c2_events},
  "c_trafficagg": {"seconds": $(printf %.3f "$c_s"), "events_per_s": $(printf %.0f "$c_rate"),
                   "worker_cpu_s_per_million": $(printf %.3f "$c_cpu_per_m"),
                   "shmem_bytes": $shmem, "peak_groups": $peak_groups, "rows_written": $rows,
                   "events_in_total": $c_events, "table_bytes": $agg_bytes},
  "d_naive": {"seconds": $(printf %.3f "$d_s"), "events_per_s": $(printf %.0f "$d_rate"),
              "bytes_stored": $d_bytes, "by_page_equal_to_trafficagg": $([ "$same" = t ] && echo true || echo false)},
  "e_freshness": $(sed 's/}$/, "load_events_per_s": '"$fresh_rate"', "producer_achieved_events_per_s": '"$(printf %.0f "$fresh_achieved")"', "workers": 2, "window": "5s", "allowed_lateness": "1s"}/' <<<"$e_json"),
  "f_memory": {"shmem_bytes": $shmem_f, "max_groups": $capacity, "sketch_memory_bytes": $sketch_cap,
               "fixed_bytes_per_group_slot": $(printf %.0f "$f_group_slot"),
               "low_cardinality": {"groups": $low_groups, "sketch_bytes": $low_sketch, "sketch_bytes_per_group": $(printf %.1f "$f_low")},
               "high_cardinality": {"groups": $high_groups, "users_per_group": $high_users, "events_per_group": $high_users,
                                    "hll_forms": "$high_forms", "sketch_bytes": $high_sketch, "sketch_bytes_per_group": $(printf %.0f "$f_high")}},
  "g_worker_instructions_per_event": $g_ir,
  "ratio_c_over_a": $(printf %.3f "$ca"), "ratio_c_over_d": $(printf %.2f "$cd_"),
  "ratio_c2_over_a": $(printf %.3f "$ca2"), "ratio_c2_over_d": $(printf %.2f "$cd2")
}
JSON

printf '\n%-34s %14s %s\n' "measure ($events events, $partitions partitions)" "events/s" "notes"
printf '%-34s %14.0f %s\n' "(a) consume ceiling (librdkafka)" "$a_rate" "$(printf '%.0f MB payload' "$(calc "$bytes / 1000000")")"
printf '%-34s %14.0f %s\n' "(a+b) read and parse, no aggregates" "$(field messages_per_s "$ab_json")" "$(printf '%.2f CPU-us per event (a: %.2f): the floor of the worker'"'"'s' "$ab_cpu_us" "$a_cpu_us")"
printf '%-34s %14.0f %s\n' "(b) parse/validate, one core" "$b_rate" "$(sed 's/.*"ns_per_message": \([0-9]*\).*/\1/' <<<"$b_json") ns/event"
printf '%-34s %14.0f %s\n' "(b) the same, nested mapping" "$(sed 's/.*"messages_per_s": \([0-9.]*\).*/\1/' <<<"$b_nested_json")" "$(sed 's/.*"ns_per_message": \([0-9]*\).*/\1/' <<<"$b_nested_json") ns/event"
printf '%-34s %14.0f %s\n' "(c) trafficagg catch-up, 1 worker" "$c_rate" "$(printf '%.2f worker CPU s per 1M events, %s rows, peak %s groups, shmem %s MB' "$c_cpu_per_m" "$rows" "$peak_groups" "$((shmem / 1048576))")"
printf '%-34s %14.0f %s\n' "(c) the same, 2 workers" "$c2_rate" "$(printf '%.2f workers CPU s per 1M events' "$c2_cpu_per_m")"
printf '%-34s %14.0f %s\n' "(d) naive kcat|COPY jsonb+GROUP BY" "$d_rate" "$(printf '%s MB stored vs %s MB of aggregates; same by_page: %s' "$((d_bytes / 1048576))" "$((agg_bytes / 1048576))" "$same")"
printf '%-34s %14s %s\n' "(e) freshness at $(printf %.0f "$fresh_achieved") events/s" "" "$(printf 'live view p50 %s ms, p99 %s ms (%s probes); final row p50 %s ms, p99 %s ms after the watermark (%s windows)' "$(field live_p50_ms "$e_json")" "$(field live_p99_ms "$e_json")" "$(field live_probes "$e_json")" "$(field final_p50_ms "$e_json")" "$(field final_p99_ms "$e_json")" "$(field final_windows "$e_json")")"
printf '%-34s %14s %s\n' "(f) shared memory" "" "$(printf '%s MB reserved (max_groups %s, sketch_memory %s MB): %.0f B per group slot; sketches %.0f B per group with 1 user and 1 latency, %.0f B with %s users and latencies (hll forms %s)' "$((shmem_f / 1048576))" "$capacity" "$((sketch_cap / 1048576))" "$f_group_slot" "$f_low" "$f_high" "$high_users" "$high_forms")"
[ "$g_ir" = null ] || printf '%-34s %14s %s\n' "(g) worker instructions per event" "" "$g_ir (callgrind, (Ir over $((3 * g_n)) - Ir over $g_n events) / $((2 * g_n)))"
printf '\n1 worker: c/a = %.2f, c/d = %.1f;  2 workers: c/a = %.2f (goal >= 0.35), c/d = %.1f (goal >= 5)\nresults: %s\n' "$ca" "$cd_" "$ca2" "$cd2" "$out"
[ "$same" = t ] || { echo "bench: trafficagg and the naive baseline disagree" >&2; exit 1; }
[ "$c_events" = "$events" ] || { echo "bench: trafficagg counted $c_events of $events events" >&2; exit 1; }
[ "$c2_events" = "$events" ] || { echo "bench: trafficagg with 2 workers counted $c2_events of $events events" >&2; exit 1; }
