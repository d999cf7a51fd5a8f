# The whole data path against an independent oracle: the producer (with a
# seed, late and bad messages) -> Kafka -> the worker -> tables.  The
# producer's --out file is loaded into a plain table and aggregated with SQL
# (GROUP BY date_bin); every aggregate's rows must equal it exactly.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('oracle');

sub run_case
{
	my ($seed, $partitions, $count) = @_;
	my $name = "s${seed}_p$partitions";
	my $topic = "oracle_$name";
	my $out = "$tmp/$name.ndjson";

	create_topic($broker, $topic, $partitions);
	produce(
		$broker,
		topic => $topic,
		seed => $seed,
		count => $count,
		step => 50,
		late => 0.03,
		bad => 0.02,
		out => $out);

	my $node = kafka_node("oracle_$name", $broker, $topic, "trafficagg.max_groups = 20000\n");

	# wait until every message is accounted for
	ok( $node->poll_query_until(
			'postgres',
			"SELECT coalesce(sum(consumed), 0) = $count FROM trafficagg.status WHERE source = 'kafka'"
		),
		"$name: the worker consumed all $count messages");
	is($node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true) >= 0'),
		't', "$name: final flush through the worker");

	load_out_file($node, $out);

	# per partition: consumed = accepted + late + rejected = what was sent
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM trafficagg.status st
		  FULL JOIN (SELECT partition, count(*) AS n FROM sent GROUP BY 1) s USING (partition)
		 WHERE st.source IS DISTINCT FROM 'sql'
		   AND (st.consumed IS DISTINCT FROM s.n
		        OR st.consumed <> st.accepted + st.late + st.rejected)}),
		'0',
		"$name: per partition, consumed = accepted + late + rejected = messages sent");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM trafficagg.status WHERE source = 'kafka'"),
		$partitions,
		"$name: one status row per partition");

	# every bad message is a dead letter with the right reason; nothing else is
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
		"$name: every bad message is in rejected_events with its reason, and nothing else is");

	# late: only late-kind events may be late (on-time events never are)
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM trafficagg.rejected_events r JOIN sent s USING (partition, "offset")
		 WHERE r.reason = 'late' AND s.kind <> 'late'}),
		'0',
		"$name: no on-time event was declared late");
	my $late = $node->safe_psql('postgres',
		"SELECT count(*) FROM trafficagg.rejected_events WHERE reason = 'late'");
	my $late_sent =
	  $node->safe_psql('postgres', "SELECT count(*) FROM sent WHERE kind = 'late'");
	cmp_ok($late, '>', 0, "$name: late events were detected ($late of $late_sent)");
	is( $node->safe_psql(
			'postgres',
			"SELECT sum(late) FROM trafficagg.status WHERE source = 'kafka'"),
		$late,
		"$name: the late count in status equals the late dead letters");

	# the aggregates, exactly
	check_aggregates_against_oracle($node, $name);
	is( $node->safe_psql(
			'postgres', q{SELECT sum(events) FROM trafficagg.total}),
		$node->safe_psql(
			'postgres', "SELECT sum(accepted) FROM trafficagg.status WHERE source = 'kafka'"),
		"$name: total events = accepted messages");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM trafficagg.total_live'),
		'0', "$name: nothing left in memory after the final flush");
	is( $node->safe_psql(
			'postgres',
			"SELECT bool_and(resume_offset = position) FROM trafficagg.kafka_offsets"),
		't',
		"$name: with every window flushed, each partition resumes at its position");
	$node->stop;
}

run_case('11', 1, 20000);
run_case('22', 4, 20000);
run_case('33', 3, 8000);

done_testing();
