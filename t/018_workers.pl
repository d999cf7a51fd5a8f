# Several workers (trafficagg.workers = N): N consumers share a topic's
# partitions, each message served by one of them, and one more process, the
# writer, leads (requests, every flush) and consumes nothing; exactly once while partitions move between
# them and when one dies.  A steady producer records what it sent; mid-stream
# one worker is terminated (its partitions move to the others, which start
# at the positions in shared memory) or killed with kill -9 (the server
# restarts every process and resumes from the stored offsets).  The tables
# must equal the oracle exactly, and every message must be counted once.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('workers');
my $count = 20000;

sub worker_pids
{
	my ($node) = @_;
	return split /\n/, $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'trafficagg worker' ORDER BY application_name");
}

sub round
{
	my ($name, $workers, $partitions, $disturb, $extra) = @_;
	my $topic = "workers_$name";
	create_topic($broker, $topic, $partitions);

	my $producer = start_producer(
		$broker,
		topic => $topic,
		seed => $name,
		count => $count,
		rate => 4000,
		step => 20,
		late => 0.02,
		bad => 0.01,
		out => "$tmp/$name.ndjson");

	my $node = kafka_node(
		$name, $broker, $topic, qq{trafficagg.workers = $workers
trafficagg.max_groups = 20000
trafficagg.kafka_options = 'session.timeout.ms=6000; heartbeat.interval.ms=1000'
} . ($extra // ''));
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = $workers + 1 FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"),
		"$name: $workers workers and the writer run");

	# every worker with partitions took some: the log says who was assigned what
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = $partitions FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
		"$name: all $partitions partitions assigned");
	$disturb->($node);

	finish_producer($producer);
	is(scalar(@{ read_topic($broker, $topic) }), $count,
		"$name: the topic holds the $count messages the producer recorded, no more");
	# (the counters start again with the server; the positions do not)
	ok( $node->poll_query_until(
			'postgres',
			"SELECT coalesce(sum(position), 0) = $count FROM trafficagg.status WHERE source = 'kafka'"),
		"$name: all $count messages consumed");
	$node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
	load_out_file($node, "$tmp/$name.ndjson");

	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM trafficagg.kafka_offsets o
		  FULL JOIN (SELECT partition, count(*) AS n FROM sent GROUP BY 1) s USING (partition)
		 WHERE o.position IS DISTINCT FROM s.n}),
		'0',
		"$name: per partition, the stored position is the number of messages sent");
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM trafficagg.status st
		  FULL JOIN (SELECT partition, count(*) AS n FROM sent GROUP BY 1) s USING (partition)
		 WHERE st.source IS DISTINCT FROM 'sql'
		   AND (st.consumed IS DISTINCT FROM s.n
		        OR st.consumed <> st.accepted + st.late + st.rejected)}),
		'0',
		"$name: per partition, consumed = accepted + late + rejected = messages sent")
	  unless $name eq 'killed';
	check_aggregates_against_oracle($node, $name);
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM (SELECT partition, "offset" FROM trafficagg.rejected_events
		                       WHERE source = 'kafka' GROUP BY 1, 2 HAVING count(*) > 1) d}),
		'0', "$name: no dead letter twice");
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM sent s
		 WHERE s.kind = 'bad' AND NOT EXISTS (SELECT 1 FROM trafficagg.rejected_events r
		                     WHERE r.partition = s.partition AND r."offset" = s."offset")}),
		'0', "$name: every bad message is a dead letter");
	return $node;
}

# Two workers and the writer.  Mid-stream the second worker is
# terminated: it leaves the group, and its partitions move to the first,
# which starts them at the positions in shared memory; five seconds later the
# postmaster starts it again, and partitions move back.
my $moved = round(
	'moved', 2, 6,
	sub {
		my ($node) = @_;
		my ($leader, @pids) = map {
			$node->safe_psql('postgres',
				"SELECT pid FROM pg_stat_activity WHERE application_name = '$_'")
		} ('trafficagg writer', 'trafficagg worker 1', 'trafficagg worker 2');
		# (the first to join may hold all six until the second's join is through)
		$node->wait_for_log(qr/\[$_\][^\n]*LOG:  trafficagg: assigned [1-5] partition/, 0) for @pids;
		pass('moved: both consuming workers were assigned a share of the partitions');
		my $log = slurp_file($node->logfile);
		like($log, qr/\[$leader\][^\n]*LOG:  trafficagg writer started [^\n]*of 2 workers, consumes nothing/,
			'moved: the writer says it consumes nothing');
		like($log, qr/\[$pids[1]\][^\n]*LOG:  trafficagg worker 2 of 2 started/,
			'moved: the second worker says which it is');
		$node->poll_query_until('postgres',
			"SELECT coalesce(sum(consumed), 0) > 4000 FROM trafficagg.status WHERE source = 'kafka'")
		  or die 'no progress';
		$node->safe_psql('postgres', "SELECT pg_terminate_backend($pids[1])");
		ok( $node->poll_query_until(
				'postgres',
				"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"),
			'moved: the second worker left');
		my $from = length($log);
		$from = $node->wait_for_log(qr/\[$pids[0]\][^\n]*LOG:  trafficagg: assigned 6 partition/, $from);
		pass('moved: the first worker took all six');
		ok( $node->poll_query_until(
				'postgres',
				"SELECT count(*) = 3 FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"),
			'moved: the second worker was started again');
		$node->wait_for_log(qr/\[$pids[0]\][^\n]*LOG:  trafficagg: assigned [1-5] partition/, $from);
		pass('moved: and the first worker gave some back');
		unlike(slurp_file($node->logfile), qr/\[$leader\][^\n]*LOG:  trafficagg: assigned/,
			'moved: the writer was never assigned a partition');
		ok( $node->poll_query_until(
				'postgres',
				"SELECT count(*) = 6 FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
			'moved: all partitions assigned again');
	});
$moved->stop;

# Two workers and the writer; mid-stream a worker is killed with kill -9:
# the server restarts every process and resumes from the stored offsets.
my $killed = round(
	'killed', 2, 6,
	sub {
		my ($node) = @_;
		my @pids = worker_pids($node);
		$node->poll_query_until('postgres',
			"SELECT coalesce(sum(position), 0) > 5000 FROM trafficagg.kafka_offsets")
		  or die 'no progress';
		kill 'KILL', $pids[1];
		ok( $node->poll_query_until(
				'postgres',
				"SELECT count(*) = 3 FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"
				  . " AND NOT pid = ANY ('{" . join(',', @pids) . "}')"),
			'killed: the server restarted the workers and the writer');
	},
	"restart_after_crash = on\n");
like(slurp_file($killed->logfile), qr/terminated by signal 9/, 'killed: the server saw the kill');
$killed->stop;

# More workers than partitions: the extra one waits with none.
my $idle = round('idle', 3, 2, sub { usleep(500_000) });
$idle->stop;

# The writer consumes nothing, yet after a restart its flushes must hold back
# while partitions replay, before any is assigned: with the brokers down, a
# rewind of the watermark is refused (it would let replayed messages count
# again in windows already written).
TrafficAggTest::stop_broker($broker);
$idle->start;
ok( $idle->poll_query_until(
		'postgres', "SELECT count(*) = 4 FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"),
	'gate: restarted with the brokers down');
my ($ret, $stdout, $stderr) =
  $idle->psql('postgres', "SELECT trafficagg.rewind_watermark('2026-01-01')");
isnt($ret, 0, 'gate: rewind_watermark() fails while partitions wait to replay');
like($stderr, qr/cannot rewind the watermark while partitions replay/, 'gate: and says why');
$idle->stop;

done_testing();
