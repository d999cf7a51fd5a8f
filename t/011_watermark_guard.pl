# The watermark can't be moved by a few events with a wrong clock, through
# Kafka, across a restart: a replay of old data with three events minutes
# ahead of their neighbours makes no on-time event late (it used to make all
# that followed late, and the poisoned watermark was stored); an event in
# 2099 is rejected as future_timestamp.  Ten such events (the default
# trafficagg.watermark_events) do move it; trafficagg.rewind_watermark()
# repairs it, and the repair survives a crash.  The tables equal the
# oracle, built from the topic itself.
use strict;
use warnings;
use lib 't';
use POSIX qw(strftime);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $broker = start_broker('guard');
create_topic($broker, 'guard', 1);
my $node = kafka_node('guard', $broker, 'guard');

my $base = 1772323200;    # 2026-03-01T00:00:00Z, well in the past
my $sent = 0;

# events at base + from .. to seconds, every step seconds
sub events
{
	my ($from, $to, $step, $page) = @_;
	my @lines;
	for (my $t = $from; $t <= $to + 1e-9; $t += $step)
	{
		my $ms = int($t * 1000 + 0.5);
		my $ts = strftime('%Y-%m-%dT%H:%M:%S', gmtime($base + int($ms / 1000)))
		  . sprintf('.%03dZ', $ms % 1000);
		push @lines,
		  qq({"timestamp": "$ts", "event_type": "view", "page": "$page", "user_id": "u)
		  . (int($t) % 37)
		  . qq(", "response_time_ms": )
		  . (10 + int($t) % 90) . '}';
	}
	return @lines;
}

sub send_lines
{
	my (@lines) = @_;
	produce_lines($broker, 'guard', 0, @lines);
	$sent += @lines;
}

sub wait_consumed
{
	my ($what) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
			SELECT (SELECT coalesce(sum(position), 0) FROM trafficagg.status WHERE source = 'kafka') = $sent
			   AND (SELECT coalesce(sum(position), 0) FROM trafficagg.kafka_offsets) = $sent}),
		"$what: all $sent messages consumed and stored");
}

# late events, as dead letters (they outlive a restart; status counters don't)
sub late
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM trafficagg.rejected_events WHERE reason = 'late'");
}

sub check_oracle
{
	my ($name) = @_;
	$node->safe_psql('postgres', 'DROP TABLE IF EXISTS sent');
	load_topic($node, $broker, 'guard');
	check_aggregates_against_oracle($node, $name);
}

# --- a replay of old data with three events three minutes ahead -----------
send_lines(events(0, 60, 0.1, '/a'));
send_lines(events(240, 240, 1, '/outlier'), events(240, 240, 1, '/outlier'),
	events(240, 240, 1, '/outlier'));
send_lines(events(60.1, 120, 0.1, '/a'));
# and one from a device whose clock says 2099
send_lines(q({"timestamp": "2099-01-01T00:00:00Z", "event_type": "view", "page": "/2099"}));
send_lines(events(120.1, 150, 0.1, '/a'));
wait_consumed('outliers');
is(late(), '0', 'three events minutes ahead made no on-time event late');
is( $node->safe_psql(
		'postgres',
		"SELECT rejected_by_reason->>'future_timestamp' FROM trafficagg.status WHERE source = 'kafka'"),
	'1',
	'the event in 2099 is rejected as future_timestamp');
like(
	$node->safe_psql(
		'postgres', "SELECT detail FROM trafficagg.rejected_events WHERE reason = 'future_timestamp'"),
	qr/^event time 2099-01-01T00:00:00\.000Z is more than trafficagg\.max_future \(300000 ms\) ahead of the message timestamp /,
	'... with the message timestamp in its detail');
my $wm = $node->safe_psql('postgres',
	"SELECT watermark < '2026-03-01 00:03:00+00' FROM trafficagg.status WHERE source = 'kafka'");
is($wm, 't', 'the watermark stays with the stream, not with the outliers');

# the watermark stored with the rows is not poisoned either
$node->restart;
send_lines(events(150.1, 170, 0.1, '/a'));
wait_consumed('after a restart');
is(late(), '0', 'after a restart no on-time event is late');
is($node->safe_psql('postgres', "SELECT max(flushed_watermark) < '2026-03-01 00:03:00+00' FROM trafficagg.kafka_offsets"),
	't', 'the stored watermark is not poisoned');

# --- ten outliers do move it; rewind_watermark() repairs it -----------------
send_lines(map { events(3600, 3600, 1, '/ahead') } 1 .. 10);
ok( $node->poll_query_until(
		'postgres', qq{SELECT watermark >= to_timestamp($base + 3590) FROM trafficagg.status WHERE source = 'kafka'}),
	'ten events an hour ahead (watermark_events) move the watermark');
send_lines(events(170.1, 180, 0.1, '/a'));    # now late: 100 events
wait_consumed('ten outliers');
is(late(), '100', '... and the on-time events that follow are late');
is( $node->safe_psql(
		'postgres',
		"SELECT extract(epoch FROM trafficagg.rewind_watermark('2026-03-01 00:02:55+00'))::bigint"),
	$base + 175,
	'rewind_watermark() moves it back');
send_lines(events(180.1, 200, 0.1, '/a'));
wait_consumed('after the rewind');
is(late(), '100', 'events after the rewind are on time again');
# a crash while windows the rewind reopened hold events not yet written
$node->stop('immediate');
$node->start;
send_lines(events(200.1, 210, 0.1, '/a'));
wait_consumed('after the rewind and a crash');
is(late(), '100', 'the rewound watermark survived the crash and the replay');
$node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
check_oracle('after the rewind');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM trafficagg.rejected_events WHERE reason = 'late'"),
	'100',
	'the late events are dead letters, once each');

$node->stop;
done_testing();
