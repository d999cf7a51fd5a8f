# Shared memory full (spills) and crash recovery, with the real broker and
# the oracle: the final tables must still equal the producer's --out file
# aggregated in SQL, with nothing lost or counted twice.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('limits');

sub new_node
{
	my ($name, $topic, $extra) = @_;
	return kafka_node(
		$name, $broker, $topic, qq{
# a crashed member must leave the group quickly for the restarted worker
trafficagg.kafka_options = 'session.timeout.ms=6000; heartbeat.interval.ms=1000'
$extra
});
}

# the stream is fully processed: every partition's position, in memory (so
# any replay after a restart is over) and stored, is at the end
sub wait_until_stored
{
	my ($node, $count) = @_;
	return $node->poll_query_until(
		'postgres', qq{
		SELECT (SELECT coalesce(sum(position), 0) FROM trafficagg.status WHERE source = 'kafka') = $count
		   AND (SELECT coalesce(sum(position), 0) FROM trafficagg.kafka_offsets) = $count});
}

sub check_dead_letters_once
{
	my ($node, $name) = @_;
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM (SELECT partition, "offset" FROM trafficagg.rejected_events
		                       WHERE source = 'kafka' GROUP BY 1, 2 HAVING count(*) > 1) d}),
		'0',
		"$name: no dead letter is written twice");
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM sent s
		 WHERE s.kind = 'bad' AND NOT EXISTS (SELECT 1 FROM trafficagg.rejected_events r
		                     WHERE r.partition = s.partition AND r."offset" = s."offset")}),
		'0',
		"$name: every bad message is a dead letter");
}

# --- spills: far more groups than trafficagg.max_groups --------------------
{
	my $name = 'spill';
	create_topic($broker, 'limits_spill', 2);
	produce(
		$broker,
		topic => 'limits_spill',
		seed => 'spill',
		count => 6000,
		step => 40,
		bad => 0.01,
		extra => [ '--pages', '3000' ],
		out => "$tmp/spill.ndjson");
	my $node = new_node($name, 'limits_spill', 'trafficagg.max_groups = 200');
	ok(wait_until_stored($node, 6000), "$name: all messages processed");
	$node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
	cmp_ok($node->safe_psql('postgres', "SELECT max(spills) FROM trafficagg.status"),
		'>', 0, "$name: shared memory filled up and the oldest windows were spilled");
	ok($node->log_contains('trafficagg shared memory is full \(trafficagg.max_groups\)'),
		"$name: a WARNING names the setting to raise");
	load_out_file($node, "$tmp/spill.ndjson");
	check_aggregates_against_oracle($node, $name);
	check_dead_letters_once($node, $name);
	$node->stop;
}

# --- crashes: immediate shutdowns while the stream is being consumed ---------
# (and the same with spills going on: replay must skip what a spill wrote)
sub run_crashes
{
	my ($name, $extra, @producer_extra) = @_;
	my $count = 30000;
	create_topic($broker, "limits_$name", 3);
	my $node = new_node($name, "limits_$name", $extra);
	my $producer = IPC::Run::start(
		[
			'node', repo_root() . '/producer/event_generator.js',
			'--brokers' => $broker->{bootstrap},
			'--topic' => "limits_$name",
			'--seed' => $name,
			'--count' => $count,
			'--rate' => 6000,
			'--start-time' => '2026-03-01T00:00:00Z',
			'--time-step' => 20,
			'--late-fraction' => 0.02,
			'--bad-fraction' => 0.01,
			'--oversize-bytes' => 70000,
			'--out' => "$tmp/$name.ndjson",
			'--quiet', @producer_extra
		],
		'>', \my $pout, '2>', \my $perr);

	for my $round (1 .. 2)
	{
		# let some windows be flushed, then crash
		$node->poll_query_until('postgres',
			"SELECT coalesce(sum(position), 0) > $round * 6000 FROM trafficagg.kafka_offsets")
		  or die "no progress before crash $round";
		$node->stop('immediate');
		$node->start;
		pass("$name: crash $round and restart");
	}
	# and once more while the restarted worker is still replaying: a flush
	# then must not write windows the replay has not rebuilt whole
	$node->poll_query_until('postgres',
		"SELECT bool_or(assigned) FROM trafficagg.status WHERE source = 'kafka'")
	  or die "partitions not assigned after restart";
	usleep(150_000);
	$node->stop('immediate');
	$node->start;
	pass("$name: crash 3, during the replay, and restart");
	$producer->finish or die "producer failed: $perr";
	ok(wait_until_stored($node, $count), "$name: all messages processed after the crashes");
	$node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
	load_out_file($node, "$tmp/$name.ndjson");
	check_aggregates_against_oracle($node, $name);
	check_dead_letters_once($node, $name);
	$node->stop;
	return $node;
}

run_crashes('crash', '');
my $spilling = run_crashes('crash_spill', 'trafficagg.max_groups = 300', '--pages', '3000');
ok($spilling->log_contains('trafficagg shared memory is full'),
	'crash_spill: windows were spilled during the run');

done_testing();
