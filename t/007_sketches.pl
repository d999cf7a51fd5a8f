# Unique users and latency percentiles with the real broker: many users per
# window, so sketches take every form postgresql-hll has (explicit, sparse,
# full).  Every row's users must be byte-identical to the oracle's
# hll_add_agg over the producer's --out file, every percentile within 1% of
# percentile_disc, and the hour and day rollups of the minute rows equal to
# the same computed from the raw events.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('sketches');
my $name = 'sketches';
my $count = 40000;
my $out = "$tmp/$name.ndjson";

create_topic($broker, $name, 4);
# 14 minutes of event time across an hour boundary, 50,000 possible users
produce(
	$broker,
	topic => $name,
	seed => 'sketches-7',
	count => $count,
	step => 21,
	start_time => '2026-03-01T00:53:00Z',
	late => 0.01,
	bad => 0.01,
	extra => [ '--users', '50000' ],
	out => $out);

my $node = kafka_node($name, $broker, $name, "trafficagg.max_groups = 20000\n");
ok( $node->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(consumed), 0) = $count FROM trafficagg.status WHERE source = 'kafka'"),
	"the worker consumed all $count messages");

# live values of open windows, before the last flush: users as the oracle's
load_out_file($node, $out);
my $live_ok = $node->safe_psql(
	'postgres', q{
	SELECT count(*) FILTER (WHERE l.users::text = o.users), count(*)
	  FROM trafficagg.total_live l
	  JOIN (SELECT date_bin('1 minute', (event->>'timestamp')::timestamptz, 'epoch') AS window_start,
	               hll_add_agg(hll_hash_text(event->>'user_id'), 12, 5, -1, 1)::text AS users
	          FROM sent s WHERE kind IN ('event', 'late')
	           AND NOT EXISTS (SELECT 1 FROM trafficagg.rejected_events r
	                            WHERE r.partition = s.partition AND r."offset" = s."offset")
	         GROUP BY 1) o USING (window_start)});
my ($same, $open) = split /\|/, $live_ok;
cmp_ok($open, '>', 0, "open windows are live ($open)");
is($same, $open, 'the live view shows the open windows\' users, byte for byte');

is($node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true) >= 0'),
	't', 'final flush');

check_aggregates_against_oracle($node, $name);

# the sketches took every form
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(DISTINCT hll_type(users)::text, ',' ORDER BY hll_type(users)::text)
	  FROM (SELECT users FROM trafficagg.by_page UNION ALL SELECT users FROM trafficagg.by_country
	        UNION ALL SELECT users FROM trafficagg.total) u}),
	'2,3,4',
	'rows hold explicit (2), sparse (3) and full (4) users sketches');

# rollups from the minute rows equal their raw-event twins
my $raw = q{
	(SELECT (event->>'timestamp')::timestamptz AS ts, event->>'country' AS country,
	        event->>'user_id' AS user_id, (event->>'response_time_ms')::float8 AS v
	   FROM sent s WHERE kind IN ('event', 'late')
	    AND NOT EXISTS (SELECT 1 FROM trafficagg.rejected_events r
	                     WHERE r.partition = s.partition AND r."offset" = s."offset")) raw};
for my $unit ('hour', 'day')
{
	my $res = $node->safe_psql(
		'postgres', qq{
		WITH rollup AS (
		    SELECT date_trunc('$unit', window_start) AS t, country, sum(events) AS events,
		           hll_union_agg(users)::text AS users,
		           hll_cardinality(hll_union_agg(users))::bigint AS unique_users,
		           trafficagg.latency_percentile(trafficagg.latency_union(latency), 0.95) AS p95,
		           tdigest_percentile(latency, 0.95) AS p95_interpolated
		      FROM trafficagg.by_country GROUP BY 1, 2),
		twin AS (
		    SELECT date_trunc('$unit', ts) AS t, country, count(*) AS events,
		           hll_add_agg(hll_hash_text(user_id), 12, 5, -1, 1)::text AS users,
		           hll_cardinality(hll_add_agg(hll_hash_text(user_id), 12, 5, -1, 1))::bigint AS unique_users,
		           percentile_disc(0.95) WITHIN GROUP (ORDER BY v) AS p95
		      FROM $raw GROUP BY 1, 2)
		SELECT count(*),
		       count(*) FILTER (WHERE r.events = w.events AND r.users = w.users
		                          AND r.unique_users = w.unique_users),
		       count(*) FILTER (WHERE abs(r.p95 - w.p95) <= 0.01 * w.p95),
		       round(max(abs(r.p95 - w.p95) / w.p95)::numeric, 4),
		       count(*) FILTER (WHERE abs(r.p95_interpolated - w.p95) <= 0.05 * w.p95),
		       round(max(abs(r.p95_interpolated - w.p95) / w.p95)::numeric, 4)
		  FROM rollup r FULL JOIN twin w ON r.t = w.t AND r.country IS NOT DISTINCT FROM w.country});
	my ($n, $exact, $close, $worst, $iclose, $iworst) = split /\|/, $res;
	cmp_ok($n, '>', 1, "$unit rollup: $n (country, $unit) rows");
	is($exact, $n, "$unit rollup: events, users (byte for byte) and unique users equal the raw events'");
	is($close, $n,
		"$unit rollup: latency_percentile(latency_union(latency), 0.95) within 1% of percentile_disc (worst $worst)");
	is($iclose, $n,
		"$unit rollup: tdigest_percentile(latency, 0.95) within 5% of percentile_disc (worst $iworst)");
}

# the _hourly view is the same rollup over the real-time rows
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM trafficagg.total_hourly h
	  FULL JOIN (SELECT date_trunc('hour', window_start) AS t, sum(events) AS events,
	                    hll_union_agg(users)::text AS users
	               FROM trafficagg.total GROUP BY 1) r ON r.t = h.window_start
	 WHERE h.events IS DISTINCT FROM r.events OR h.users::text IS DISTINCT FROM r.users}),
	'0',
	'trafficagg.total_hourly equals the rollup of trafficagg.total');
is($node->safe_psql('postgres', 'SELECT count(*) FROM trafficagg.total_hourly'),
	'2', 'the events span two hours');

# memory: sketches are freed with their groups
is($node->safe_psql('postgres',
		"SELECT sketch_bytes FROM trafficagg.status WHERE source = 'sql'"),
	'0', 'no sketch memory in use once every window is written');

$node->stop;

# The same stream with a sketch area too small for a window: the oldest
# window is spilled (a WARNING names trafficagg.sketch_memory), rows merge,
# and every row still equals the oracle: users byte for byte (hll_union),
# percentiles within 1% (the digests merge without loss).
my $small = kafka_node("${name}_small", $broker, $name,
	"trafficagg.max_groups = 20000\ntrafficagg.sketch_memory = '128kB'\n");
ok( $small->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(consumed), 0) = $count FROM trafficagg.status WHERE source = 'kafka'"),
	"small sketch area: the worker consumed all $count messages");
$small->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
cmp_ok($small->safe_psql('postgres', 'SELECT max(spills) FROM trafficagg.status'),
	'>', 0, 'small sketch area: windows were spilled');
ok($small->log_contains('shared memory is full \(trafficagg.sketch_memory\)'),
	'small sketch area: the WARNING names trafficagg.sketch_memory');
load_out_file($small, $out);
check_aggregates_against_oracle($small, "${name}_small");
$small->stop;

done_testing();
