# A hot standby consumes nothing and writes nothing: its worker says once
# that it waits for promotion; trafficagg.ingest() and the other writing
# functions fail with a clear error there (ingest() used to answer
# "accepted" and the event appeared after promotion), while the tables, the
# views and status can be read.  After promotion they work.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $ev = q{'{"timestamp": "2026-05-01T00:00:10Z", "event_type": "view", "page": "/p"}'};

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'trafficagg'");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION trafficagg CASCADE');
$primary->safe_psql('postgres', "SELECT trafficagg.ingest(${ev}::text)");
$primary->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
ok($standby->wait_for_log(qr/trafficagg: this server is a standby: the worker consumes nothing and waits for promotion/),
	'the standby\'s worker says once that it waits for promotion');

for my $call (
	"trafficagg.ingest(${ev}::text)", "trafficagg.ingest(${ev}::jsonb)",
	"trafficagg.ingest(${ev}::text::bytea)", "trafficagg.ingest(ARRAY[$ev])",
	'trafficagg.flush()', "trafficagg.rewind_watermark('2026-01-01')")
{
	my ($rc, $out, $err) = $standby->psql('postgres', "SELECT * FROM $call");
	isnt($rc, 0, "$call fails on the standby");
	like($err, qr/ERROR:  cannot call trafficagg\.\w+\(\) during recovery/, '... saying why');
}
my ($rc, $out, $err) = $standby->psql('postgres', "SELECT trafficagg.ingest(${ev}::text)");
like($err, qr/HINT:  Call it on the primary/, 'the error has a hint');

is($standby->safe_psql('postgres', 'SELECT events FROM trafficagg.by_page'),
	'1', 'the table is readable on the standby');
is($standby->safe_psql('postgres', 'SELECT events FROM trafficagg.by_page_realtime'),
	'1', 'so is the real-time view (no live data on a standby)');
is($standby->safe_psql('postgres', "SELECT count(*) > 0 FROM trafficagg.status"),
	't', 'and status');
is( $standby->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'trafficagg worker'"),
	'1',
	'one worker waits on the standby');

my $log_offset = -s $standby->logfile;
$standby->promote;
ok($standby->wait_for_log(qr/trafficagg: the server was promoted: the worker starts/, $log_offset),
	'after promotion the worker starts');
ok($standby->wait_for_log(qr/trafficagg worker started in database/, $log_offset),
	'and runs as on a primary');
is($standby->safe_psql('postgres', "SELECT trafficagg.ingest(${ev}::text)"),
	'accepted', 'and ingest() works');
$standby->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
is($standby->safe_psql('postgres', 'SELECT events FROM trafficagg.by_page'),
	'2', 'the event written on the promoted server merges into the replicated row');

$standby->stop;
$primary->stop;
done_testing();
