# Foundation: a real Kafka broker, the producer with a seed, checked
# independently with kcat; a cluster with the library preloaded.
use strict;
use warnings;
use lib 't';
use File::Compare;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;

# --- the broker and the producer ------------------------------------------
my $broker = start_broker('foundation');
create_topic($broker, 'found_a', 3);
create_topic($broker, 'found_b', 3);

my %run = (
	seed => 'foundation-7',
	count => 3000,
	late => 0.02,
	bad => 0.05,
	start_time => '2026-02-01T00:00:00Z');
produce($broker, %run, topic => 'found_a', out => "$tmp/a.ndjson");
produce($broker, %run, topic => 'found_b', out => "$tmp/b.ndjson");
is(compare("$tmp/a.ndjson", "$tmp/b.ndjson"),
	0, 'the same --seed writes an identical --out file');

my $sent = read_out_file("$tmp/a.ndjson");
is(scalar(@$sent), $run{count}, '--out lists every message');
my %kinds;
$kinds{ $_->{kind} }++ for @$sent;
ok($kinds{late} && $kinds{bad} && $kinds{event}, 'late, bad and good messages were produced');
my %bad;
$bad{ $_->{bad_kind} }++ for grep { $_->{kind} eq 'bad' } @$sent;
is_deeply(
	[ sort keys %bad ],
	[
		qw(bad_timestamp empty invalid_utf8 missing_field not_json not_object oversized wrong_type)
	],
	'every kind of bad message was produced');

# what the broker holds, read by kcat, equals what the producer recorded
my $got = read_topic($broker, 'found_a');
is(scalar(@$got), $run{count}, 'kcat reads exactly as many messages as were sent');
my %at = map { ("$_->{partition}/$_->{offset}" => $_) } @$got;
my $mismatch = 0;
for my $m (@$sent)
{
	my $k = $at{"$m->{partition}/$m->{offset}"};
	my $same =
	     $k
	  && (defined $k->{value} == defined $m->{value})
	  && (!defined $k->{value} || $k->{value} eq $m->{value})
	  && (defined $k->{key} == defined $m->{key})
	  && (!defined $k->{key} || $k->{key} eq $m->{key});
	$mismatch++ unless $same;
}
is($mismatch, 0, 'every (partition, offset) holds the recorded key and value');
my %per_partition;
$per_partition{ $_->{partition} }++ for @$sent;
is(scalar(keys %per_partition), 3, 'messages went to all 3 partitions');

# --- PostgreSQL with the library ------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('preloaded');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'trafficagg'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION trafficagg CASCADE');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'"
	),
	'hll,tdigest,trafficagg',
	'CREATE EXTENSION trafficagg CASCADE brings hll and tdigest');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"),
	'the worker runs');
is($node->safe_psql('postgres', "SELECT broker_state FROM trafficagg.status"),
	'not configured', 'without trafficagg.brokers the worker does not use Kafka');
$node->stop;

my $plain = PostgreSQL::Test::Cluster->new('not_preloaded');
$plain->init;
$plain->start;
my ($rc, $out, $err) =
  $plain->psql('postgres', 'CREATE EXTENSION trafficagg CASCADE');
isnt($rc, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like($err, qr/must be loaded via shared_preload_libraries/, '... with a clear error');
like($err, qr/HINT:  Add trafficagg to shared_preload_libraries/, '... and a hint');
$plain->stop;

done_testing();
