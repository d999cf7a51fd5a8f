# A role without privileges on trafficagg, in a database where everyone may
# create objects in public (the default before PostgreSQL 15, kept by
# pg_upgrade), tries what a hostile pass found: objects planted in public for
# the worker's and the trigger's SQL (CVE-2018-1058's pattern), and holding
# the lock that used to serialise flushes.  None of it may run as the
# worker or the administrator, or stop the pipeline; the tables still equal
# the oracle.  Also: a secret in trafficagg.kafka_options never shows.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $broker = start_broker('hostile');
create_topic($broker, 'hostile', 2);

my $node = kafka_node('hostile', $broker, 'hostile');

# --- mallory plants objects in public ---------------------------------------
$node->safe_psql(
	'postgres', q{
	GRANT CREATE ON SCHEMA public TO PUBLIC;
	CREATE ROLE mallory LOGIN;
});
$node->safe_psql(
	'postgres', q{
	SET ROLE mallory;
	CREATE TABLE public.pwned (what text, by_role name DEFAULT current_user);
	GRANT INSERT ON public.pwned TO PUBLIC;
	-- runs as whoever calls it: records the call, and tries to become superuser
	CREATE FUNCTION public.escalate(what text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	    INSERT INTO public.pwned (what) VALUES (what);
	    BEGIN
	        EXECUTE 'ALTER ROLE mallory SUPERUSER';
	    EXCEPTION WHEN OTHERS THEN NULL;
	    END;
	END $$;
	GRANT EXECUTE ON FUNCTION public.escalate(text) TO PUBLIC;
	-- the worker's offsets used "$5 * interval '1 millisecond'" with $5 a bigint
	CREATE FUNCTION public.times(bigint, interval) RETURNS interval LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM public.escalate('*(bigint, interval)'); RETURN $1::float8 * $2; END $$;
	CREATE OPERATOR public.* (LEFTARG = bigint, RIGHTARG = interval, FUNCTION = public.times);
	-- better matches than pg_catalog's for calls in plpgsql functions
	CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM public.escalate('format(text, text)'); RETURN pg_catalog.format($1, $2); END $$;
	CREATE FUNCTION public.cardinality(text[]) RETURNS integer LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM public.escalate('cardinality(text[])'); RETURN pg_catalog.cardinality($1); END $$;
	CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS
	  $$ BEGIN PERFORM public.escalate('unnest(text[])'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
});

# --- mallory holds the old flush lock and a lock on kafka_offsets ------------
my $mallory = $node->background_psql('postgres', extra_params => [ '-U', 'mallory' ]);
$mallory->query_safe('SELECT pg_advisory_lock(1953653094, 6383463)');
$mallory->query_safe('BEGIN');
$mallory->query_safe('LOCK TABLE trafficagg.kafka_offsets IN ACCESS SHARE MODE');
$mallory->query_safe('SELECT count(*) FROM trafficagg.by_page');
# the strongest lock a role without ownership can take on the extension object
$mallory->query_safe(q{SELECT pg_get_object_address('extension', '{trafficagg}', '{}')});

# --- a stream while all that is in place ------------------------------------
my $count = 20000;
produce(
	$broker,
	topic => 'hostile',
	seed => 'hostile-1',
	count => $count,
	late => 0.01,
	bad => 0.01,
	out => "$tmp/hostile.ndjson");
ok( $node->poll_query_until(
		'postgres', qq{
		SELECT (SELECT coalesce(sum(position), 0) FROM trafficagg.status WHERE source = 'kafka') = $count
		   AND (SELECT coalesce(sum(position), 0) FROM trafficagg.kafka_offsets) = $count}),
	'every message consumed and its offset stored while mallory holds her locks');
is( $node->safe_psql(
		'postgres', q{SELECT sum(lag), sum(end_offset) FROM trafficagg.status WHERE source = 'kafka'}),
	"0|$count",
	'status.lag is 0 and end_offset is the broker\'s end offset');

# the administrator adds an aggregate and flushes, with the default search_path
$node->safe_psql(
	'postgres', q{
	INSERT INTO trafficagg.aggregates VALUES ('by_referrer', '{referrer}');
	SELECT pg_reload_conf();
});
$node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true)');
$mallory->query_safe('COMMIT');
$mallory->quit;

# a restart reads the stored offsets back (the worker's other SQL)
$node->restart;
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 2 FROM trafficagg.status WHERE source = 'kafka' AND assigned}),
	'after a restart the worker reads its offsets and is assigned again');
$node->safe_psql('postgres', 'SELECT trafficagg.flush()');

is($node->safe_psql('postgres', 'SELECT count(*) FROM public.pwned'),
	'0', 'none of the planted functions or operators ever ran');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f', 'mallory is not a superuser');
is( $node->safe_psql(
		'postgres', q{SELECT setting FROM pg_settings WHERE name = 'search_path'}),
	'"$user", public',
	'(the database kept the default search_path, public included)');

load_out_file($node, "$tmp/hostile.ndjson");
check_aggregates_against_oracle($node, 'hostile');

# --- a secret in kafka_options ----------------------------------------------
# A password containing ";" written in double quotes is one value ...
$node->append_conf('postgresql.conf',
	q{trafficagg.kafka_options = 'sasl.password="Secr3t;Pa55=w0rd"; session.timeout.ms=6000'});
my $offset = -s $node->logfile;
$node->reload;
ok($node->wait_for_log(qr/trafficagg: consuming "hostile"/, $offset),
	'a quoted value with ";" is accepted: the consumer is rebuilt with it');
is($node->safe_psql('postgres', q{SELECT broker_state <> 'error' FROM trafficagg.status LIMIT 1}),
	't', '... and the consumer runs');
# ... unquoted, its tail is a bad entry that is reported without being shown
$node->append_conf('postgresql.conf', q{trafficagg.kafka_options = 'sasl.password=Secr3t;Pa55=w0rd'});
$node->reload;
ok( $node->poll_query_until(
		'postgres', q{SELECT last_error LIKE 'entry 2 of trafficagg.kafka_options%' FROM trafficagg.status LIMIT 1}),
	'an unquoted secret with ";" is an error naming the entry');
my $status = $node->safe_psql('postgres', q{SELECT last_error FROM trafficagg.status LIMIT 1});
unlike($status, qr/Pa55|w0rd|Secr3t/, "status.last_error shows no part of the secret: $status");
# (PostgreSQL itself logs a reloaded setting's new value: hence the secrets file)
my @ours = grep { !/parameter "trafficagg.kafka_options" changed to/ } split /\n/,
  slurp_file($node->logfile);
is(scalar(grep { /Pa55|w0rd|Secr3t/ } @ours), 0, 'no line trafficagg logs shows any part of the secret');

# Secrets in trafficagg.kafka_secrets_file never reach postgresql.conf or the log
my $secrets = $node->data_dir . '/kafka_secrets';
PostgreSQL::Test::Utils::append_to_file($secrets,
	qq{# the broker's credentials\nsasl.password = "F1le;Secr=et"\nsasl.username=trafficagg\n});
chmod 0600, $secrets;
$node->append_conf('postgresql.conf', qq{trafficagg.kafka_options = 'session.timeout.ms=6000'
trafficagg.kafka_secrets_file = '$secrets'});
$offset = -s $node->logfile;
$node->reload;
ok($node->wait_for_log(qr/trafficagg: consuming "hostile"/, $offset),
	'the consumer runs with the secrets file');
open my $fh, '>', $secrets or die;
print $fh "sasl.password=F1le;Secr=et\n";
close $fh;
utime(undef, time + 5, $secrets);    # a new modification time: the consumer is rebuilt
$node->reload;
ok( $node->poll_query_until(
		'postgres', q{SELECT last_error LIKE 'entry 2 of trafficagg.kafka_secrets_file is not a valid Kafka setting%'
		                FROM trafficagg.status LIMIT 1}),
	'an unquoted ";" in the secrets file is an error naming the entry');
unlike(slurp_file($node->logfile), qr/F1le|Secr=et/, 'the server log shows no part of the file\'s secret');
unlike($node->safe_psql('postgres', q{SELECT last_error FROM trafficagg.status LIMIT 1}),
	qr/F1le|Secr=et/, '... nor does status');
$node->stop;

done_testing();
