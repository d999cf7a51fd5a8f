# The broker goes away and comes back: the worker retries forever, logs the
# outage once (not once per retry), and resumes where it was; SIGTERM stops
# it promptly; a partition added to the topic is picked up.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('outage');
create_topic($broker, 'outage', 2);

my $node = kafka_node('outage', $broker, 'outage');

sub consumed
{
	my ($n) = @_;
	return $node->poll_query_until('postgres',
		"SELECT coalesce(sum(consumed), 0) = $n FROM trafficagg.status WHERE source = 'kafka'");
}

produce($broker, topic => 'outage', seed => 'o1', count => 2000, out => "$tmp/o1.ndjson");
ok(consumed(2000), 'consumed the first 2000 messages');

TrafficAggTest::stop_broker($broker);
ok( $node->poll_query_until(
		'postgres', "SELECT bool_and(broker_state = 'down') FROM trafficagg.status"),
	'status shows the brokers down');
my $log_offset = -s $node->logfile;
sleep 8;    # librdkafka retries many times meanwhile
my $log = slurp_file($node->logfile, $log_offset);
my $lines = () = $log =~ /trafficagg:/g;
cmp_ok($lines, '<=', 1, "no log line per retry while the broker is down ($lines lines in 8 s)");

TrafficAggTest::restart_broker($broker);
produce($broker, topic => 'outage', seed => 'o2', count => 2000, out => "$tmp/o2.ndjson",
	start_time => '2026-03-01T01:00:00Z');
ok(consumed(4000), 'after the broker came back, the next 2000 messages were consumed');
is($node->safe_psql('postgres', "SELECT max(broker_state) FROM trafficagg.status"),
	'up', 'status shows the brokers up again');
ok($node->log_contains('Kafka brokers .*: down'), 'the outage was logged');

# the topic grows: the new partition is picked up without a restart
add_partitions($broker, 'outage', 3);
produce($broker, topic => 'outage', seed => 'o3', count => 3000, out => "$tmp/o3.ndjson",
	start_time => '2026-03-01T02:00:00Z');
ok(consumed(7000), 'messages in a partition added to the topic were consumed too');
is($node->safe_psql('postgres', "SELECT count(*) FROM trafficagg.status WHERE source = 'kafka'"),
	'3', 'status shows the new partition');

my $t0 = time();
$node->stop('fast');
my $elapsed = time() - $t0;
note(sprintf('fast shutdown took %.2f s', $elapsed));
ok($node->log_contains('trafficagg worker stopped'), 'the worker stopped cleanly on SIGTERM');

done_testing();
