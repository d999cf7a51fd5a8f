# Dimension values of any length, through Kafka, against the oracle: one
# page in eight is a 301-byte URL and one in fifty 3,000 bytes (unique query
# strings that hardly compress: too long for a btree entry, so the tables are
# unique on dimension_key()).  Every event is accepted, each long URL is one
# value stored whole, and with a dictionary budget far too small for the
# stream the worker spills windows early and the result is still exact.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('long');
my $count = 20000;

sub run_case
{
	my ($name, $extra) = @_;
	my $topic = "long_$name";
	my $out = "$tmp/$name.ndjson";

	create_topic($broker, $topic, 3);
	produce(
		$broker,
		topic => $topic,
		seed => 'long',
		count => $count,
		step => 50,
		late => 0.03,
		bad => 0.02,
		extra => [ '--long-pages', '0.125:301,0.02:3000' ],
		out => $out);
	my $node = kafka_node($name, $broker, $topic, "trafficagg.max_groups = 20000\n$extra");

	ok( $node->poll_query_until(
			'postgres',
			"SELECT coalesce(sum(consumed), 0) = $count FROM trafficagg.status WHERE source = 'kafka'"
		),
		"$name: the worker consumed all $count messages");
	is($node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true) >= 0'),
		't', "$name: final flush through the worker");
	load_out_file($node, $out);

	# nothing but the bad messages and the late events is dead-lettered
	my $case = join(' ',
		map { "WHEN '$_' THEN '$TrafficAggTest::reason_of{$_}'" }
		  sort keys %TrafficAggTest::reason_of);
	is( $node->safe_psql(
			'postgres', qq{
		SELECT count(*) FROM sent s
		  FULL JOIN (SELECT * FROM trafficagg.rejected_events WHERE reason <> 'late') r
		         USING (partition, "offset")
		 WHERE s.kind IS DISTINCT FROM 'bad' AND r.reason IS NOT NULL
		    OR s.kind = 'bad' AND r.reason IS DISTINCT FROM (CASE s.bad_kind $case END)}),
		'0',
		"$name: every bad message is in rejected_events with its reason, and no event is");
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM trafficagg.rejected_events r JOIN sent s USING (partition, "offset")
		 WHERE r.reason = 'late' AND s.kind <> 'late'}),
		'0',
		"$name: no on-time event was declared late");
	is( $node->safe_psql(
			'postgres',
			"SELECT sum((rejected_by_reason->>'value_too_long')::int) FROM trafficagg.status"),
		'0', "$name: no value_too_long");

	# the long pages were sent, and are whole in the table, each its own row
	my $sent_long = $node->safe_psql(
		'postgres', q{
		SELECT count(*) FILTER (WHERE octet_length(event->>'page') = 301) || ' '
		    || count(*) FILTER (WHERE octet_length(event->>'page') = 3000)
		  FROM sent WHERE kind = 'event'});
	my ($n301, $n3000) = split / /, $sent_long;
	cmp_ok($n301, '>', $count / 10, "$name: $n301 events with a 301-byte page were sent");
	cmp_ok($n3000, '>', $count / 100, "$name: $n3000 events with a 3,000-byte page were sent");
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM (SELECT event->>'page' AS page, count(*) AS n FROM sent
		                       WHERE kind IN ('event', 'late') AND octet_length(event->>'page') = 3000
		                         AND NOT EXISTS (SELECT 1 FROM trafficagg.rejected_events r
		                                          WHERE r.partition = sent.partition
		                                            AND r."offset" = sent."offset")
		                       GROUP BY 1) o
		  FULL JOIN (SELECT page, sum(events) AS n FROM trafficagg.by_page
		              WHERE octet_length(page) = 3000 GROUP BY 1) t USING (page)
		 WHERE o.n IS DISTINCT FROM t.n}),
		'0',
		"$name: every 3,000-byte page is in trafficagg.by_page whole, with its events");
	check_aggregates_against_oracle($node, $name, tolerance => 0.01);

	# with the groups flushed, the dictionary is empty again: bytes freed
	is( $node->safe_psql(
			'postgres',
			"SELECT values_used || ' ' || dictionary_bytes FROM trafficagg.status LIMIT 1"),
		'0 0',
		"$name: after the final flush the dictionary holds no value and no byte");
	return $node;
}

my $roomy = run_case('long', '');
is($roomy->safe_psql('postgres', 'SELECT max(spills) FROM trafficagg.status'),
	'0', 'long: with the default dictionary_memory nothing was spilled');
$roomy->stop;

# 128kB: about one window's long URLs; max_event_bytes (64kB) fits
my $tight = run_case('long_spill', "trafficagg.dictionary_memory = '128kB'\n");
cmp_ok($tight->safe_psql('postgres', 'SELECT max(spills) FROM trafficagg.status'),
	'>', 0, 'long_spill: the dictionary filled up and the oldest windows were spilled');
ok( $tight->log_contains(
		'trafficagg shared memory is full \(trafficagg.dictionary_memory\)'),
	'long_spill: a WARNING names trafficagg.dictionary_memory');
is( $tight->safe_psql(
		'postgres', 'SELECT dictionary_capacity FROM trafficagg.status LIMIT 1'),
	'131072', 'long_spill: status reports the budget');
$tight->stop;

done_testing();
