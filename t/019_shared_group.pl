# Servers sharing one consumer group (trafficagg.shared_group): three
# servers consume one topic, each a share of its partitions, and every flush
# commits its rows and the group's offsets together (PostgreSQL's two-phase
# commit with a Kafka transaction).  Mid-stream a second and a third server
# join, the second is killed with kill -9 and comes back, the third leaves
# cleanly.  The rows of all three, read as one server's through postgres_fdw
# (trafficagg.create_union: sums added, users unioned, latency digests
# merged), must equal the oracle exactly: nothing lost, nothing counted
# twice, whichever server counted it.  Then a flush left prepared by
# a crash is committed or rolled back as the ledger says: two made by hand,
# then real ones, a server crashing mid-stream right after a flush is
# prepared and right after its Kafka transaction commits; last, a server
# stalled past the session timeout, fenced when it runs again.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('shared');
my $topic = 'shared_group';
my $partitions = 6;
my $count = 30000;
create_topic($broker, $topic, $partitions);
# (the ledger must exist before a server starts: see the README)
create_topic($broker, 'trafficagg_ledger', 1);

# (lateness is each server's own: a partition taken over after a kill
# arrives as far behind as the takeover took, seconds of wall time and, at
# this producer's pace, minutes of event time)
# (restart_after_crash: the test framework turns it off; a server that
# can't keep what it counted restarts its processes, as after a crash)
my $conf = qq{trafficagg.shared_group = on
restart_after_crash = on
trafficagg.group_id = 'shared'
max_prepared_transactions = 4
trafficagg.allowed_lateness = '1h'
trafficagg.max_groups = 20000
trafficagg.kafka_options = 'session.timeout.ms=6000; heartbeat.interval.ms=500'
};

sub position
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(sum(position), 0) FROM trafficagg.status WHERE source = 'kafka' AND assigned");
}

sub assigned
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM trafficagg.status WHERE source = 'kafka' AND assigned");
}

my $a = kafka_node('shared_a', $broker, $topic, $conf);
ok($a->poll_query_until('postgres',
		"SELECT count(*) = $partitions FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
	'the first server owns every partition');

my $producer = start_producer(
	$broker,
	topic => $topic,
	seed => 'shared',
	count => $count,
	rate => 2000,
	step => 20,
	late => 0.02,
	bad => 0.01,
	out => "$tmp/shared.ndjson");

$a->poll_query_until('postgres',
	"SELECT coalesce(sum(position), 0) > 4000 FROM trafficagg.status WHERE source = 'kafka'")
  or die 'no progress';

# a second server joins mid-stream, then a third
my $b = kafka_node('shared_b', $broker, $topic, $conf);
ok($b->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
	'the second server, joining, is assigned partitions');
my $c = kafka_node('shared_c', $broker, $topic, $conf);
ok($c->poll_query_until('postgres',
		"SELECT coalesce(sum(position), 0) > 0 FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
	'the third server, joining, consumes');
ok($a->wait_for_log(qr/partition\(s\) of "shared_group" handed off/),
	'the first server handed partitions off');

# the second is killed mid-stream and comes back
$b->poll_query_until('postgres',
	"SELECT coalesce(sum(position), 0) > 0 FROM trafficagg.status WHERE source = 'kafka' AND assigned")
  or die 'the second server never consumed';
my @pids = ($b->{_pid}, split /\n/, $b->safe_psql('postgres', 'SELECT pid FROM pg_stat_activity'));
$b->kill9;
# (its children leave once they see the postmaster gone: until then the old
# shared memory is in use, and a start fails)
ok(poll_until(sub { !grep { kill 0, $_ } @pids }), 'the second server\'s processes are gone after kill -9');
$b->start;
ok($b->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
	'the second server, killed and started again, is assigned partitions again');

# the third leaves cleanly
$c->stop('fast');
ok(1, 'the third server left');

finish_producer($producer);
is(scalar(@{ read_topic($broker, $topic) }), $count,
	"the topic holds the $count messages the producer recorded, no more");

# the two left between them own every partition and have read it to its end
ok( poll_until(
		sub {
			assigned($a) + assigned($b) == $partitions
			  && position($a) + position($b) == $count;
		}),
	"the two servers left own all $partitions partitions and read all $count messages");
$_->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)') for ($a, $b);
# (a flush is prepared for the moment its Kafka transaction takes)
ok($_->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
	$_->name . ': no flush left prepared')
  for ($a, $b);

# the third server comes back (its rows are read below) ...
$c->start;
$c->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'");
# ... and takes partitions some other server read last: whoever owns a
# partition now must commit where the last owner stopped, not where it
# itself once stopped
ok( poll_until(
		sub { assigned($a) + assigned($b) + assigned($c) == $partitions }),
	'the third server, back, shares the partitions again');
my $committed;
ok( poll_until(
		sub {
			$committed = group_offsets($broker, 'shared');
			my $sum = 0;
			$sum += $_ for values %$committed;
			return keys(%$committed) == $partitions && $sum == $count;
		},
		20),
	"the group's committed offsets are the ends of the $partitions partitions after the last rebalance")
  or diag(explain($committed));
# every server's rows read as one server's, on the first, through
# postgres_fdw: trafficagg.create_union()
$a->safe_psql('postgres', 'CREATE EXTENSION postgres_fdw');
for my $node ($b, $c)
{
	my ($s, $host, $port) = ($node->name, $node->host, $node->port);
	$a->safe_psql('postgres',
		"CREATE SERVER $s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');"
		  . " CREATE USER MAPPING FOR CURRENT_USER SERVER $s");
}
$a->safe_psql('postgres', "SELECT trafficagg.create_union('merged', ARRAY['shared_b', 'shared_c'])");
load_out_file($a, "$tmp/shared.ndjson");
check_aggregates_against_oracle($a, 'three servers merged', schema => 'merged');
check_accounting($a, 'three servers merged', schema => 'merged');
is( $a->safe_psql(
		'postgres', q{
	SELECT count(*) FROM (SELECT partition, "offset" FROM merged.rejected_events
	                       WHERE source = 'kafka' GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no message dead-lettered twice, on any server');
is( $a->safe_psql(
		'postgres', q{
	SELECT count(*) FROM sent s
	 WHERE s.kind = 'bad' AND NOT EXISTS (SELECT 1 FROM merged.rejected_events r
	                     WHERE r.partition = s.partition AND r."offset" = s."offset")}),
	'0', 'every bad message is a dead letter on some server');
my %per = map { $_->name => $_->safe_psql('postgres', 'SELECT coalesce(sum(events), 0) FROM trafficagg.total') }
  ($a, $b, $c);
note('events counted per server: ' . join(', ', map { "$_ $per{$_}" } sort keys %per));
cmp_ok((grep { $per{$_} > 0 } keys %per), '==', 3, 'each of the three servers counted some events');

# A flush left prepared by a crash: committed if the ledger has its record,
# rolled back if not.  Two prepared transactions named as the worker names
# its flushes, a ledger record for the second only, and a restart.
my $txn_id = $a->safe_psql('postgres',
	"SELECT 'trafficagg-shared-' || system_identifier FROM pg_control_system()");
$a->safe_psql('postgres', 'CREATE TABLE in_doubt (n int)');
for my $n (1, 2)
{
	$a->safe_psql('postgres',
		"BEGIN; INSERT INTO in_doubt VALUES ($n); PREPARE TRANSACTION '$txn_id-$n'");
}
{
	my $in = "$txn_id|$txn_id-2\n";
	my ($out, $err);
	IPC::Run::run([ 'kcat', '-b', $broker->{bootstrap}, '-P', '-t', 'trafficagg_ledger', '-K', '|' ],
		'<', \$in, '>', \$out, '2>', \$err)
	  or die "kcat -P failed: $err";
}
my $log_offset = -s $a->logfile;
$a->restart;
ok($a->wait_for_log(qr/flush "\Q$txn_id\E-2", left prepared by a crash, committed/, $log_offset),
	'the flush the ledger records is committed');
ok($a->wait_for_log(qr/flush "\Q$txn_id\E-1", left prepared by a crash, rolled back/, $log_offset),
	'the flush the ledger does not record is rolled back');
is($a->safe_psql('postgres', 'SELECT string_agg(n::text, \',\') FROM in_doubt'), '2',
	'only the committed one left its row');
is( $a->safe_psql('postgres',
		"SELECT count(*) FROM pg_prepared_xacts WHERE gid IN ('$txn_id-1', '$txn_id-2')"),
	'0', 'neither is left in doubt');

$_->stop for ($a, $b, $c);

# Real flushes left prepared: a fourth server alone on a topic of its own
# crashes (trafficagg.debug_crash_at) right after a flush is prepared (its
# Kafka transaction never began: rolled back at the restart, and counted
# again from the group's offsets) and, later, right after the Kafka
# transaction committed (committed at the restart).  Its tables must equal
# the oracle.
create_topic($broker, 'shared_crash', 3);
my $d = kafka_node('shared_d', $broker, 'shared_crash', $conf . "trafficagg.group_id = 'crash'\n");
$producer = start_producer(
	$broker,
	topic => 'shared_crash',
	seed => 'crash',
	count => 12000,
	rate => 1500,
	step => 20,
	late => 0.02,
	bad => 0.01,
	out => "$tmp/crash.ndjson");
for my $round ([ 'prepared', 2000, 'rolled back' ], [ 'kafka_committed', 6000, 'committed' ])
{
	my ($where, $after, $decided) = @$round;
	$d->poll_query_until('postgres',
		"SELECT coalesce(sum(position), 0) > $after FROM trafficagg.status WHERE source = 'kafka'")
	  or die 'no progress';
	my $offset = -s $d->logfile;
	$d->safe_psql('postgres',
		"ALTER SYSTEM SET trafficagg.debug_crash_at = '$where'; SELECT pg_reload_conf()");
	ok($d->wait_for_log(qr/crashing with flush "[^"]+" \Q$where\E/, $offset),
		"crashed with a flush $where");
	ok($d->wait_for_log(qr/left prepared by a crash, \Q$decided\E/, $offset),
		"the flush left prepared $decided at the restart");
	ok( poll_until(
			sub {
				my ($rc) = $d->psql('postgres',
					'ALTER SYSTEM RESET trafficagg.debug_crash_at; SELECT pg_reload_conf()');
				return $rc == 0;
			}),
		'debug_crash_at reset');
}
finish_producer($producer);
ok( $d->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(position), 0) = 12000 FROM trafficagg.status WHERE source = 'kafka'"),
	'the fourth server read every message');
$d->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
load_out_file($d, "$tmp/crash.ndjson");
check_aggregates_against_oracle($d, 'two crashes mid-commit');
check_accounting($d, 'two crashes mid-commit');
is( $d->safe_psql(
		'postgres', q{
	SELECT count(*) FROM (SELECT partition, "offset" FROM trafficagg.rejected_events
	                       WHERE source = 'kafka' GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'two crashes mid-commit: no dead letter twice');
$d->stop;

# A server that stalls longer than the group's session timeout (SIGSTOP of
# its worker, librdkafka's threads with it) loses its partitions to the
# other; when it runs again, the flush it then makes is fenced out of the
# group (its generation is gone), and what it counted since its last commit
# is dropped by restarting its processes: the other server counts it from
# the group's offsets.  The two servers' rows merged equal the oracle.
create_topic($broker, 'shared_zombie', 4);
my $zconf = $conf . "trafficagg.group_id = 'zombie'\n";
my $e = kafka_node('shared_e', $broker, 'shared_zombie', $zconf);
my $f = kafka_node('shared_f', $broker, 'shared_zombie', $zconf);
$producer = start_producer(
	$broker,
	topic => 'shared_zombie',
	seed => 'zombie',
	count => 12000,
	rate => 1500,
	step => 20,
	late => 0.02,
	bad => 0.01,
	out => "$tmp/zombie.ndjson");
ok( poll_until(sub { assigned($e) > 0 && assigned($f) > 0 && position($e) > 0 }),
	'two servers share the partitions, the first consuming');
my $worker = $e->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'");
my $zoffset = -s $e->logfile;
kill 'STOP', $worker;
ok($f->poll_query_until('postgres',
		"SELECT count(*) = 4 FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
	'the stalled server\'s partitions go to the other');
kill 'CONT', $worker;
ok($e->wait_for_log(qr/no longer a member of consumer group "zombie"|dropping what this server counted/, $zoffset),
	'running again, the stalled server is fenced out of the group and drops what it had not committed');
ok($e->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM trafficagg.status WHERE source = 'kafka' AND assigned"),
	'it joins the group again after its restart');
finish_producer($producer);
ok(poll_until(sub { assigned($e) + assigned($f) == 4 && position($e) + position($f) == 12000 }),
	'the two servers read every message');
$_->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)') for ($e, $f);
$e->safe_psql('postgres', 'CREATE EXTENSION postgres_fdw');
{
	my ($host, $port) = ($f->host, $f->port);
	$e->safe_psql('postgres',
		"CREATE SERVER shared_f FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');"
		  . " CREATE USER MAPPING FOR CURRENT_USER SERVER shared_f");
}
$e->safe_psql('postgres', "SELECT trafficagg.create_union('merged', ARRAY['shared_f'])");
load_out_file($e, "$tmp/zombie.ndjson");
check_aggregates_against_oracle($e, 'a stalled server fenced', schema => 'merged');
check_accounting($e, 'a stalled server fenced', schema => 'merged');
$_->stop for ($e, $f);
done_testing();

# $check->() until true, at most $tries times (1800), 0.1 s apart
sub poll_until
{
	my ($check, $tries) = @_;
	for (1 .. ($tries // 1800))
	{
		return 1 if $check->();
		usleep(100_000);
	}
	return 0;
}
