# kill -9 of the postmaster alone: the worker must leave promptly (it waits
# inside librdkafka, not on its latch), so that the server can be started
# again (it used to stay, and "pg_ctl start" failed with "pre-existing shared
# memory block ... is still in use").  After the restart the worker replays
# from the stored offsets and the tables equal the oracle.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('pmdeath');
create_topic($broker, 'pmdeath', 2);
my $node = kafka_node(
	'pmdeath', $broker, 'pmdeath', q{
trafficagg.kafka_options = 'session.timeout.ms=6000; heartbeat.interval.ms=1000'
});

my $count = 12000;
produce(
	$broker,
	topic => 'pmdeath',
	seed => 'pmdeath-1',
	count => $count,
	late => 0.01,
	bad => 0.01,
	out => "$tmp/pmdeath.ndjson");
ok( $node->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(position), 0) = $count FROM trafficagg.status WHERE source = 'kafka'"),
	'the stream is consumed');
my $worker = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'");
ok($worker > 0, "the worker runs (pid $worker)");
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM trafficagg.by_page_live'),
	'>', 0, 'windows are open in shared memory');

# the postmaster alone, as an OOM killer or an operator's mistake would
$node->kill9;
my $waited = 0;
while (kill(0, $worker) && $waited < 100)
{
	usleep(100_000);
	$waited++;
}
ok(!kill(0, $worker), sprintf('the worker left within %.1f s of the postmaster\'s death', $waited / 10));

ok($node->start(fail_ok => 1), 'the server starts again');
ok( $node->poll_query_until(
		'postgres', qq{
		SELECT (SELECT coalesce(sum(position), 0) FROM trafficagg.status WHERE source = 'kafka') = $count
		   AND (SELECT coalesce(sum(position), 0) FROM trafficagg.kafka_offsets) = $count}),
	'after the restart the stream is replayed to its end');
$node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
load_out_file($node, "$tmp/pmdeath.ndjson");
check_aggregates_against_oracle($node, 'after the postmaster died');
$node->stop;
done_testing();
