# Failover: a streaming standby (pg_basebackup -R, asynchronous) promoted
# after kill -9 of the primary's postmaster mid-stream.  The worker starts on
# the promoted server and resumes from the offsets that replicated with the
# rows; what the primary flushed after the standby's last replay is lost with
# it and is consumed again from Kafka.  The promoted server's tables must
# equal the oracle exactly, whenever the primary dies: after some flushes,
# right after a flush commits, and while partitions are first assigned.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('failover');
my $count = 16000;

sub stored
{
	my ($node) = @_;
	return $node->poll_query_until(
		'postgres', qq{
		SELECT (SELECT coalesce(sum(position), 0) FROM trafficagg.status WHERE source = 'kafka') = $count
		   AND (SELECT coalesce(sum(position), 0) FROM trafficagg.kafka_offsets) = $count});
}

sub round
{
	my ($name, $kill_when) = @_;
	my $topic = "failover_$name";
	create_topic($broker, $topic, 3);

	my $primary = PostgreSQL::Test::Cluster->new("primary_$name");
	$primary->init(allows_streaming => 1);
	$primary->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'trafficagg'
trafficagg.brokers = '$broker->{bootstrap}'
trafficagg.topic = '$topic'
trafficagg.group_id = 'failover_$name'
trafficagg.flush_interval = '200ms'
trafficagg.kafka_options = 'session.timeout.ms=6000; heartbeat.interval.ms=1000'
} . workers_conf());
	$primary->start;
	$primary->safe_psql('postgres', 'CREATE EXTENSION trafficagg CASCADE');
	$primary->backup('base');
	my $standby = PostgreSQL::Test::Cluster->new("standby_$name");
	$standby->init_from_backup($primary, 'base', has_streaming => 1);
	$standby->start;

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

	$kill_when->($primary);
	$primary->kill9;
	my $lost = $standby->safe_psql('postgres',
		'SELECT coalesce(sum(position), 0) FROM trafficagg.kafka_offsets');
	note("$name: the standby had replayed offsets up to $lost messages when the primary died");
	$standby->promote;
	is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', "$name: promoted");

	finish_producer($producer);
	# the oracle is the producer's record: the topic must hold exactly it
	# (a producer retry writing a message twice would be counted twice, rightly)
	is(scalar(@{ read_topic($broker, $topic) }), $count,
		"$name: the topic holds the $count messages the producer recorded, no more");
	ok(stored($standby), "$name: the promoted server consumed all $count messages");
	$standby->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
	load_out_file($standby, "$tmp/$name.ndjson");
	check_aggregates_against_oracle($standby, $name);
	check_accounting($standby, $name);
	is( $standby->safe_psql(
			'postgres', q{
		SELECT count(*) FROM (SELECT partition, "offset" FROM trafficagg.rejected_events
		                       WHERE source = 'kafka' GROUP BY 1, 2 HAVING count(*) > 1) d}),
		'0', "$name: no dead letter twice");
	is( $standby->safe_psql(
			'postgres', q{
		SELECT count(*) FROM sent s
		 WHERE s.kind = 'bad' AND NOT EXISTS (SELECT 1 FROM trafficagg.rejected_events r
		                     WHERE r.partition = s.partition AND r."offset" = s."offset")}),
		'0', "$name: every bad message is a dead letter");
	$standby->stop;
}

# after some flushes
round(
	'flushed',
	sub {
		my ($p) = @_;
		$p->poll_query_until('postgres',
			"SELECT coalesce(sum(position), 0) > 5000 FROM trafficagg.kafka_offsets")
		  or die 'no progress';
	});

# right after a flush commits (the standby may not have it yet)
round(
	'after_commit',
	sub {
		my ($p) = @_;
		$p->poll_query_until('postgres',
			"SELECT coalesce(sum(position), 0) > 3000 FROM trafficagg.kafka_offsets")
		  or die 'no progress';
		my $n = $p->safe_psql('postgres', 'SELECT max(flushes) FROM trafficagg.status');
		$p->poll_query_until('postgres', "SELECT max(flushes) > $n FROM trafficagg.status")
		  or die 'no flush';
	});

# early: partitions just assigned, little or nothing stored
round(
	'early',
	sub {
		my ($p) = @_;
		$p->poll_query_until('postgres',
			"SELECT bool_or(assigned) FROM trafficagg.status WHERE source = 'kafka'")
		  or die 'never assigned';
		usleep(300_000);
	});

done_testing();
