# trafficagg.start_offset: where a partition without a stored offset starts.
# As a time, the offsets are looked up when the consumer starts (not inside
# librdkafka's rebalance callback): each partition starts at its first
# message sent at or after that time.  Also "latest" and a time before
# everything.  Counted against the messages as kcat sent them.
use strict;
use warnings;
use lib 't';
use POSIX qw(strftime);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TrafficAggTest;

my $broker = start_broker('start');
create_topic($broker, 'start', 2);

sub lines
{
	my ($n, $page) = @_;
	return map {
		sprintf('{"timestamp": "2026-04-01T00:%02d:%02dZ", "event_type": "view", "page": "%s"}',
			int($_ / 60) % 60, $_ % 60, $page)
	} 1 .. $n;
}

sub consumed
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(partition || ':' || consumed, ' ' ORDER BY partition) FROM trafficagg.status WHERE source = 'kafka'"
	);
}

# before: 100 and 100 messages; then, a second later, 50 and 70
produce_lines($broker, 'start', 0, lines(100, '/before'));
produce_lines($broker, 'start', 1, lines(100, '/before'));
usleep(1_500_000);
my $t = time;
my $from = strftime('%Y-%m-%dT%H:%M:%S', gmtime(int($t))) . sprintf('.%03dZ', ($t - int($t)) * 1000);
usleep(1_500_000);
produce_lines($broker, 'start', 0, lines(50, '/after'));
produce_lines($broker, 'start', 1, lines(70, '/after'));

my $by_time = kafka_node('by_time', $broker, 'start', "trafficagg.start_offset = '$from'\n");
ok( $by_time->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(position), 0) = 320 FROM trafficagg.status WHERE source = 'kafka'"),
	"start_offset $from: the partitions are read to their ends");
is(consumed($by_time), '0:50 1:70', '... from the first message sent at or after that time');
$by_time->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
is( $by_time->safe_psql(
		'postgres', "SELECT string_agg(page || '=' || events, ' ' ORDER BY page) FROM (SELECT page, sum(events) AS events FROM trafficagg.by_page GROUP BY 1) x"),
	'/after=120',
	'... and only those are in the tables');
ok(!$by_time->log_contains('could not look up the offsets'), 'the offsets were looked up when the consumer started');
$by_time->stop;

my $early = kafka_node('early', $broker, 'start', "trafficagg.start_offset = '2000-01-01T00:00:00Z'\n");
ok( $early->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(position), 0) = 320 FROM trafficagg.status WHERE source = 'kafka'"),
	'a time before every message: read to the end');
is(consumed($early), '0:150 1:170', '... from the beginning');
$early->stop;

my $latest = kafka_node('latest', $broker, 'start', "trafficagg.start_offset = 'latest'\n");
ok( $latest->poll_query_until(
		'postgres', "SELECT count(*) = 2 FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
	'latest: assigned');
# send until the worker reads something (it starts at the end once its
# fetcher has asked where the end is: when exactly is librdkafka's business)
my $read = 0;
for (my $i = 0; $i < 60 && !$read; $i++)
{
	produce_lines($broker, 'start', 0, lines(1, '/latest'));
	usleep(500_000);
	$read = $latest->safe_psql('postgres',
		"SELECT consumed > 0 FROM trafficagg.status WHERE source = 'kafka' AND partition = 0") eq 't';
}
ok($read, 'latest: messages sent after the start are read');
# (those sent before the fetcher found the end may be skipped too)
my $skipped = $latest->safe_psql('postgres',
	"SELECT position - consumed FROM trafficagg.status WHERE source = 'kafka' AND partition = 0");
cmp_ok($skipped, '>=', 150, "... and none of the 150 sent before it ($skipped skipped)");
$latest->stop;

done_testing();
