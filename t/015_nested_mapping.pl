# Users' own events: the README's nested example, mapped with SQL alone on a
# running server, streamed through Kafka and compared with an oracle computed
# in plain SQL from what the producer sent (--schema nested).  One event
# from a clock in 2099 is rejected and moves no window; one page in eight is
# a 301-byte URL, one in fifty 3,000 bytes.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('nested');
my $topic = 'nested_events';
my $count = 20000;
my $out = "$tmp/nested.ndjson";

create_topic($broker, $topic, 3);
# the worker starts without brokers: the mapping is set up first
my $node = kafka_node('nested', $broker, $topic,
	"trafficagg.brokers = ''\ntrafficagg.max_groups = 20000\n");

# the mapping, as the README shows it: the fields keep their names (the
# default aggregates group by page, event_type, country, device), their
# paths, formats and units change; one more aggregate
$node->safe_psql(
	'postgres', q{
	UPDATE trafficagg.fields SET path = 'ts', time_format = 'epoch_ms' WHERE name = 'timestamp';
	UPDATE trafficagg.fields SET path = 'type' WHERE name = 'event_type';
	UPDATE trafficagg.fields SET path = 'request.url' WHERE name = 'page';
	UPDATE trafficagg.fields SET path = 'geo.country' WHERE name = 'country';
	UPDATE trafficagg.fields SET path = 'visitor' WHERE name = 'user_id';
	UPDATE trafficagg.fields SET path = 'session' WHERE name = 'session_id';
	UPDATE trafficagg.fields SET path = 'request.referrer' WHERE name = 'referrer';
	UPDATE trafficagg.fields SET path = 'request.status' WHERE name = 'status_code';
	UPDATE trafficagg.fields SET path = 'request.duration_us', latency_unit = 'us'
	 WHERE name = 'response_time_ms';
	INSERT INTO trafficagg.fields (name, source, type) VALUES ('account', 'key', 'text');
	INSERT INTO trafficagg.aggregates VALUES ('by_url_country', '{page,country}');
	INSERT INTO trafficagg.aggregates VALUES ('by_account', '{account}');
	-- the sum of order.total per url and country, and purchases only
	INSERT INTO trafficagg.fields (name, path, type) VALUES ('order_total', 'order.total', 'number');
	INSERT INTO trafficagg.aggregates (name, dimensions, metrics)
	  VALUES ('revenue', '{page,country}', '{order_total}');
	INSERT INTO trafficagg.aggregates (name, dimensions, metrics, filter)
	  VALUES ('purchases', '{country}', '{order_total}', '{"event_type": "purchase"}');
	-- unique sessions rather than visitors
	INSERT INTO trafficagg.aggregates (name, dimensions, users_field)
	  VALUES ('sessions_by_country', '{country}', 'session_id');
});
$node->safe_psql('postgres',
	"ALTER SYSTEM SET trafficagg.brokers = '$broker->{bootstrap}'; SELECT pg_reload_conf();");

produce(
	$broker,
	topic => $topic,
	seed => 'nested',
	count => $count,
	step => 20,
	late => 0.02,
	bad => 0.01,
	out => $out,
	extra => [ '--schema', 'nested', '--users', '800', '--pages', '300', '--long-pages', '0.125:301,0.02:3000' ]);
# a device whose clock says 2099: more than trafficagg.max_future ahead of
# the message's Kafka timestamp
produce_lines($broker, $topic, 0,
	'{"ts": 4070908800000, "type": "page_view", "request": {"url": "/from-2099"}, "visitor": "v"}');

ok( $node->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(consumed), 0) = $count + 1 FROM trafficagg.status WHERE source = 'kafka'"),
	"the worker consumed all $count messages and the one from 2099");
is($node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true) >= 0'),
	't', 'final flush');

load_out_file($node, $out);

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM trafficagg.rejected_events WHERE reason = 'future_timestamp'}),
	'1', 'the event from 2099 is dead-lettered as future_timestamp');
cmp_ok(
	$node->safe_psql('postgres',
		q{SELECT max(max_event_time) FROM trafficagg.status WHERE source = 'kafka'}),
	'lt', '2027', 'and it moved no event time (nor the watermark)');

# every bad message is a dead letter with its reason
my $case = join(' ',
	map { "WHEN '$_' THEN '$TrafficAggTest::reason_of{$_}'" } sort keys %TrafficAggTest::reason_of);
is( $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FROM sent s
	  FULL JOIN (SELECT * FROM trafficagg.rejected_events
	              WHERE reason NOT IN ('late', 'future_timestamp')) r USING (partition, "offset")
	 WHERE s.kind IS DISTINCT FROM 'bad' AND r.reason IS NOT NULL
	    OR s.kind = 'bad' AND r.reason IS DISTINCT FROM (CASE s.bad_kind $case END)}),
	'0', 'every bad message is in rejected_events with its reason, and nothing else is');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM sent WHERE kind = 'bad'}),
	'>', 0, 'the stream had bad messages');

# the oracle: the accepted events of the --out file, through the nested paths
my %dim = (
	page => q{event->'request'->>'url'},
	event_type => q{event->>'type'},
	country => q{event->'geo'->>'country'},
	device => q{event->>'device'},
	account => q{key});
sub oracle
{
	my ($where, $users, @dims) = @_;
	my $cols = join('', map { ", $dim{$_} AS $_" } @dims);
	my $by = join('', map { ", $_" } @dims);
	my $us = q{(event->'request'->>'duration_us')};
	return qq{
	  SELECT date_bin('1 minute', ts, 'epoch') AS window_start,
	         date_bin('1 minute', ts, 'epoch') + interval '1 minute' AS window_end $cols,
	         count(*) AS events,
	         count(*) FILTER (WHERE (event->'request'->>'status')::int >= 500) AS errors,
	         count(*) FILTER (WHERE (event->'request'->>'status')::int BETWEEN 400 AND 499) AS client_errors,
	         count($us) AS latency_count,
	         sum(${us}::numeric) / 1000 AS latency_sum,
	         min(${us}::numeric) / 1000 AS latency_min,
	         max(${us}::numeric) / 1000 AS latency_max,
	         hll_add_agg(hll_hash_text(event->>'$users'), 12, 5, -1, 1)::text AS users,
	         hll_cardinality(hll_add_agg(hll_hash_text(event->>'$users'), 12, 5, -1, 1))::bigint
	           AS unique_users,
	         percentile_disc(0.5) WITHIN GROUP (ORDER BY ${us}::float8 / 1000) AS p50,
	         percentile_disc(0.99) WITHIN GROUP (ORDER BY ${us}::float8 / 1000) AS p99,
	         count(event->'order'->>'total') AS order_total_count,
	         sum((event->'order'->>'total')::numeric) AS order_total_sum,
	         min((event->'order'->>'total')::numeric) AS order_total_min,
	         max((event->'order'->>'total')::numeric) AS order_total_max
	    FROM (SELECT to_timestamp((s.event->>'ts')::bigint / 1000.0) AS ts, s.event, s.key
	            FROM sent s
	           WHERE s.kind IN ('event', 'late')
	             AND NOT EXISTS (SELECT 1 FROM trafficagg.rejected_events r
	                              WHERE r.partition = s.partition AND r."offset" = s."offset")) e
	   $where
	   GROUP BY 1, 2 $by};
}

my $purchase = q{WHERE event->>'type' = 'purchase'};
my @metric = qw(order_total_count order_total_sum order_total_min order_total_max);
for my $agg ([ '', 'by_page', 'page', 'event_type' ], [ '', 'by_country', 'country' ],
	[ '', 'by_device', 'device' ], [ '', 'by_url_country', 'page', 'country' ],
	[ '', 'by_account', 'account' ], [ '', 'total' ],
	[ 'm', 'revenue', 'page', 'country' ], [ "m $purchase", 'purchases', 'country' ],
	[ 's', 'sessions_by_country', 'country' ])
{
	my ($kind, $table, @dims) = @$agg;
	my ($m, $where) = $kind =~ /^(m?)s?\s*(.*)$/;
	my $users = $kind =~ /^s/ ? 'session' : 'visitor';
	my @keys = ('window_start', 'window_end', @dims);
	my $cols = join(', ', @keys,
		qw(events errors client_errors latency_count latency_sum latency_min latency_max users unique_users),
		$m ? @metric : ());
	my $tcols = $cols =~ s/\busers\b(?!_)/users::text/r;
	my $o = oracle($where, $users, @dims);
	is( $node->safe_psql(
			'postgres', qq{
		SELECT (SELECT count(*) FROM (SELECT $cols FROM ($o) o EXCEPT ALL SELECT $tcols FROM trafficagg.$table) a)
		     + (SELECT count(*) FROM (SELECT $tcols FROM trafficagg.$table EXCEPT ALL SELECT $cols FROM ($o) o) b)}
		),
		'0', "trafficagg.$table equals the oracle exactly (users byte for byte)");
	cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM trafficagg.$table"),
		'>', 0, "trafficagg.$table has rows");
	cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM trafficagg.$table WHERE order_total_count > 0"),
		'>', 0, "trafficagg.$table has rows with an order total") if $m;
	my $join = join(' AND ', map { "t.$_ IS NOT DISTINCT FROM o.$_" } @keys);
	is( $node->safe_psql(
			'postgres', qq{
		SELECT count(*) FROM trafficagg.$table t JOIN ($o) o ON $join
		 WHERE NOT ((t.latency_p50 IS NULL) = (o.p50 IS NULL)
		            AND coalesce(abs(t.latency_p50 - o.p50) <= 0.01 * o.p50, true)
		            AND coalesce(abs(t.latency_p99 - o.p99) <= 0.01 * o.p99, true))}),
		'0', "trafficagg.$table: latency percentiles (in ms) within 1% of percentile_disc");
}

done_testing();
