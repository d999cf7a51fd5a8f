# Helpers for trafficagg's TAP tests: a real Kafka broker (kafka/broker.sh),
# the event producer (producer/event_generator.js) and an independent reader
# of a topic (kcat).  Every broker started here is stopped at exit, also when
# a test dies.
package TrafficAggTest;

use strict;
use warnings;
use Cwd qw(getcwd);
use Exporter 'import';
use MIME::Base64 qw(decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(start_broker create_topic add_partitions produce start_producer finish_producer
  produce_lines kafka_node
  read_out_file read_topic group_offsets repo_root load_out_file load_topic oracle_sql
  check_aggregates_against_oracle check_accounting workers_conf);

# bad kind (producer) -> rejection reason (extension)
our %reason_of = (
	not_json => 'not_json',
	not_object => 'not_object',
	missing_field => 'missing_field',
	wrong_type => 'wrong_type',
	bad_timestamp => 'bad_timestamp',
	oversized => 'too_large',
	invalid_utf8 => 'invalid_utf8',
	empty => 'empty');

# The default aggregates and their dimensions.
our @aggregates = (
	[ 'by_page', 'page', 'event_type' ],
	[ 'by_country', 'country' ],
	[ 'by_device', 'device' ],
	['total']);


my $root = getcwd();
my @brokers;

sub repo_root { return $root; }

sub _broker_env
{
	my ($b) = @_;
	return (
		KAFKA_PORT => $b->{port},
		KAFKA_CONTROLLER_PORT => $b->{cport},
		KAFKA_DATA => $b->{data},
		KAFKA_HEAP => '384m');
}

# Start a broker on free ports; returns { bootstrap, port, data, ... }.
sub start_broker
{
	my ($name) = @_;
	my $b = {
		name => $name,
		port => PostgreSQL::Test::Cluster::get_free_port(),
		cport => PostgreSQL::Test::Cluster::get_free_port(),
		data => "$PostgreSQL::Test::Utils::tmp_check/kafka_$name",
	};
	$b->{bootstrap} = "127.0.0.1:$b->{port}";
	push @brokers, $b;
	local %ENV = (%ENV, _broker_env($b));
	my $out = `$root/kafka/broker.sh start 2>&1`;
	die "broker $name did not start: $out" if $? != 0;
	note($out);
	return $b;
}

# Start a broker stopped with stop_broker again, on the same port and data.
sub restart_broker
{
	my ($b) = @_;
	local %ENV = (%ENV, _broker_env($b));
	my $out = `$root/kafka/broker.sh start 2>&1`;
	die "broker $b->{name} did not restart: $out" if $? != 0;
}

sub stop_broker
{
	my ($b) = @_;
	local %ENV = (%ENV, _broker_env($b));
	system("$root/kafka/broker.sh", 'stop');
}

sub create_topic
{
	my ($b, $topic, $partitions) = @_;
	local %ENV = (%ENV, _broker_env($b));
	system("$root/kafka/broker.sh", 'create-topic', $topic, $partitions) == 0
	  or die "could not create topic $topic";
}

# A consumer group's committed offsets: { "topic partition" => offset }.
sub group_offsets
{
	my ($b, $group) = @_;
	local %ENV = (%ENV, _broker_env($b));
	my %o;
	for (split /\n/, `"$root/kafka/broker.sh" group-offsets "$group"`)
	{
		my ($t, $p, $off) = split / /;
		$o{"$t $p"} = $off;
	}
	return \%o;
}

sub add_partitions
{
	my ($b, $topic, $total) = @_;
	local %ENV = (%ENV, _broker_env($b));
	system("$root/kafka/broker.sh", 'add-partitions', $topic, $total) == 0
	  or die "could not add partitions to $topic";
}

# postgresql.conf lines for the workers: trafficagg.workers =
# $TRAFFICAGG_TEST_WORKERS when set (CI runs the oracle, crash and spill
# tests with 1 and 2 workers), else nothing (the default).
sub workers_conf
{
	my $n = $ENV{TRAFFICAGG_TEST_WORKERS};
	return defined $n && $n ne '' ? "trafficagg.workers = $n\n" : '';
}

# A started cluster with trafficagg preloaded, consuming $topic of the broker
# as group $name, the extension created; $extra: more postgresql.conf lines
# (after workers_conf(), so a test may set trafficagg.workers itself).
sub kafka_node
{
	my ($name, $broker, $topic, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'trafficagg'
trafficagg.brokers = '$broker->{bootstrap}'
trafficagg.topic = '$topic'
trafficagg.group_id = '$name'
trafficagg.flush_interval = '200ms'
} . workers_conf() . ($extra // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION trafficagg CASCADE');
	return $node;
}

# The producer's command line: topic => ..., seed => ..., count => ...,
# out => FILE, rate => R ('max'), step => ms, late => F, bad => F,
# extra => [...].
sub _producer_command
{
	my ($b, %o) = @_;
	return (
		'node', "$root/producer/event_generator.js",
		'--brokers' => $b->{bootstrap},
		'--topic' => $o{topic},
		'--seed' => $o{seed},
		'--count' => $o{count},
		'--rate' => $o{rate} // 'max',
		'--start-time' => $o{start_time} // '2026-03-01T00:00:00Z',
		'--time-step' => $o{step} // 10,
		'--late-fraction' => $o{late} // 0,
		'--bad-fraction' => $o{bad} // 0,
		'--oversize-bytes' => $o{oversize} // 70000,
		'--out' => $o{out},
		'--quiet',
		@{ $o{extra} // [] });
}

# Run the producer to completion: produce($broker, topic => ..., seed => ...,
# count => ..., out => FILE, late => F, bad => F, extra => [...]).
sub produce
{
	my ($b, %o) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ _producer_command($b, %o) ], '>', \$stdout, '2>', \$stderr);
	die "producer failed: $stderr" unless $ok;
	note("producer: $stderr");
	return $stderr;
}

# The producer in the background (same options as produce(), rate => R for a
# steady stream); finish_producer() waits for it and dies if it failed.
sub start_producer
{
	my ($b, %o) = @_;
	my $h = { stdout => '', stderr => '' };
	$h->{run} = IPC::Run::start([ _producer_command($b, %o) ],
		'>', \$h->{stdout}, '2>', \$h->{stderr});
	return $h;
}

sub finish_producer
{
	my ($h) = @_;
	$h->{run}->finish or die "producer failed: $h->{stderr}";
	note("producer: $h->{stderr}");
}

# Write the given message values (one line each, no newline inside) to one
# partition with kcat, for messages the producer does not make.
sub produce_lines
{
	my ($b, $topic, $partition, @lines) = @_;
	my $in = join('', map { "$_\n" } @lines);
	my ($out, $err);
	IPC::Run::run([ 'kcat', '-b', $b->{bootstrap}, '-P', '-t', $topic, '-p', $partition ],
		'<', \$in, '>', \$out, '2>', \$err)
	  or die "kcat -P failed: $err";
}

# The producer's --out file as a list of hashes, values decoded to bytes.
sub read_out_file
{
	my ($file) = @_;
	my @msgs;
	open my $fh, '<', $file or die "$file: $!";
	require JSON::PP;
	my $json = JSON::PP->new;
	while (my $line = <$fh>)
	{
		my $m = $json->decode($line);
		$m->{value} =
		  defined $m->{value_b64} ? decode_base64($m->{value_b64}) : undef;
		push @msgs, $m;
	}
	close $fh;
	return \@msgs;
}

# Every message of a topic as kcat (librdkafka, independent of kafkajs) reads
# it: list of { partition, offset, key, value } (undef key/value for null).
sub read_topic
{
	my ($b, $topic) = @_;
	my ($raw, $err);
	IPC::Run::run(
		[
			'kcat', '-b', $b->{bootstrap}, '-C', '-t', $topic, '-e', '-q',
			'-f', '%p %o %K %S\n%k%s\n'
		],
		'>', \$raw, '2>', \$err) or die "kcat failed: $err";
	my @msgs;
	my $pos = 0;
	while ($pos < length($raw))
	{
		my $nl = index($raw, "\n", $pos);
		my ($p, $o, $klen, $vlen) = split / /, substr($raw, $pos, $nl - $pos);
		$pos = $nl + 1;
		my $key = $klen >= 0 ? substr($raw, $pos, $klen) : undef;
		$pos += $klen if $klen > 0;
		my $value = $vlen >= 0 ? substr($raw, $pos, $vlen) : undef;
		$pos += $vlen if $vlen > 0;
		$pos += 1;    # the newline after the payload
		push @msgs,
		  { partition => $p, offset => $o, key => $key, value => $value };
	}
	return \@msgs;
}

# Load an --out file into table sent(partition, "offset", kind, bad_kind, event jsonb,
# key).
sub load_out_file
{
	my ($node, $file, $table) = @_;
	$table //= 'sent';
	$node->safe_psql(
		'postgres', qq{
		CREATE TABLE ${table}_raw (line text);
		COPY ${table}_raw FROM '$file' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');
		CREATE TABLE $table AS
		  SELECT (l->>'partition')::int AS partition, (l->>'offset')::bigint AS "offset",
		         l->>'kind' AS kind, l->>'bad_kind' AS bad_kind, l->'event' AS event,
		         l->>'key' AS key
		    FROM (SELECT line::jsonb AS l FROM ${table}_raw) s;
		DROP TABLE ${table}_raw;
	});
}

# Load every message of a topic, as kcat reads it, into the table the oracle
# reads (as load_out_file does): messages that are JSON objects are kind
# 'event' (the oracle then leaves out those the extension dead-lettered),
# others 'bad'.  For topics written with produce_lines.
sub load_topic
{
	my ($node, $b, $topic, $table) = @_;
	$table //= 'sent';
	require JSON::PP;
	my $json = JSON::PP->new->canonical;
	my $file = "$PostgreSQL::Test::Utils::tmp_check/$topic.topic.ndjson";
	open my $fh, '>', $file or die "$file: $!";
	for my $m (@{ read_topic($b, $topic) })
	{
		my $ev = eval { $json->decode($m->{value} // '') };
		my $kind = ref($ev) eq 'HASH' ? 'event' : 'bad';
		print $fh $json->encode(
			{
				partition => $m->{partition} + 0,
				offset => $m->{offset} + 0,
				kind => $kind,
				event => $kind eq 'event' ? $ev : undef
			}) . "\n";
	}
	close $fh;
	load_out_file($node, $file, $table);    # the same fields as an --out file
}

# The oracle for one aggregate: the accepted events of the --out file (every
# good or late-kind event except those the extension reports late), grouped
# by (1-minute, tumbling) window and dimensions, with the metrics computed in
# plain SQL.  users is postgresql-hll's own hll_add_agg over the user ids,
# with the extension's default parameters, as text (hll has no sort order).
sub oracle_sql
{
	my (@dims) = @_;
	my $rejected = 'trafficagg.rejected_events';
	$rejected = ${ shift @dims } if @dims && ref $dims[0] eq 'SCALAR';
	my $dimcols = join('', map { ", event->>'$_' AS $_" } @dims);
	my $groupby = join('', map { ", $_" } @dims);
	return qq{
	  SELECT date_bin('1 minute', ts, 'epoch') AS window_start,
	         date_bin('1 minute', ts, 'epoch') + interval '1 minute' AS window_end
	         $dimcols,
	         count(*) AS events,
	         count(*) FILTER (WHERE (event->>'status_code')::int >= 500) AS errors,
	         count(*) FILTER (WHERE (event->>'status_code')::int BETWEEN 400 AND 499) AS client_errors,
	         count(event->>'response_time_ms') AS latency_count,
	         sum((event->>'response_time_ms')::numeric) AS latency_sum,
	         min((event->>'response_time_ms')::numeric) AS latency_min,
	         max((event->>'response_time_ms')::numeric) AS latency_max,
	         hll_add_agg(hll_hash_text(event->>'user_id'), 12, 5, -1, 1)::text AS users,
	         hll_cardinality(hll_add_agg(hll_hash_text(event->>'user_id'), 12, 5, -1, 1))::bigint
	           AS unique_users,
	         percentile_disc(0.5) WITHIN GROUP (ORDER BY (event->>'response_time_ms')::float8) AS p50,
	         percentile_disc(0.95) WITHIN GROUP (ORDER BY (event->>'response_time_ms')::float8) AS p95,
	         percentile_disc(0.99) WITHIN GROUP (ORDER BY (event->>'response_time_ms')::float8) AS p99
	    FROM (SELECT (s.event->>'timestamp')::timestamptz AS ts, s.event
	            FROM sent s
	           WHERE s.kind IN ('event', 'late')
	             AND NOT EXISTS (SELECT 1 FROM $rejected r
	                              WHERE r.partition = s.partition AND r."offset" = s."offset")) e
	   GROUP BY 1, 2 $groupby};
}

# Every default aggregate's table must equal its oracle, row for row: the
# exact metrics and the users sketch byte for byte.  Every percentile is
# within 1% of percentile_disc, or within tolerance => x: rows merged from a
# spill or a replay take their percentiles from the merged t-digests.
# schema => S: the tables are S.<aggregate>, the dead letters
# S.rejected_events (several servers' rows merged, t/019).
sub check_aggregates_against_oracle
{
	my ($node, $name, %opt) = @_;
	my $schema = $opt{schema} // 'trafficagg';
	my $rejected = "$schema.rejected_events";
	for my $agg (@aggregates)
	{
		my ($table, @dims) = @$agg;
		my @keys = ('window_start', 'window_end', @dims);
		my $cols = join(', ',
			@keys,
			qw(events errors client_errors latency_count latency_sum latency_min latency_max
			  users unique_users));
		my $tcols = $cols =~ s/\busers\b(?!_)/users::text/r;
		my $oracle = oracle_sql(\$rejected, @dims);
		my $diff = $node->safe_psql(
			'postgres', qq{
			SELECT (SELECT count(*) FROM (SELECT $cols FROM ($oracle) o EXCEPT ALL SELECT $tcols FROM $schema.$table) a)
			     + (SELECT count(*) FROM (SELECT $tcols FROM $schema.$table EXCEPT ALL SELECT $cols FROM ($oracle) o) b)});
		is($diff, '0', "$name: $schema.$table equals the oracle exactly (users byte for byte)");
		my $rows = $node->safe_psql('postgres', "SELECT count(*) FROM $schema.$table");
		cmp_ok($rows, '>', 0, "$name: $schema.$table has $rows rows");
		my $tol = $opt{tolerance} // 0.01;

		my $join = join(' AND ', map { "t.$_ IS NOT DISTINCT FROM o.$_" } @keys);
		my ($bad, $worst, $n) = split /\|/, $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FILTER (WHERE NOT ok), coalesce(max(err), 0), count(*)
			  FROM (SELECT (t.latency_p50 IS NULL) = (o.p50 IS NULL)
			               AND coalesce(abs(t.latency_p50 - o.p50) <= $tol * o.p50, true)
			               AND coalesce(abs(t.latency_p95 - o.p95) <= $tol * o.p95, true)
			               AND coalesce(abs(t.latency_p99 - o.p99) <= $tol * o.p99, true) AS ok,
			               greatest(abs(t.latency_p50 - o.p50) / nullif(o.p50, 0),
			                        abs(t.latency_p95 - o.p95) / nullif(o.p95, 0),
			                        abs(t.latency_p99 - o.p99) / nullif(o.p99, 0)) AS err
			          FROM $schema.$table t JOIN ($oracle) o ON $join) x});
		is($bad, '0',
			"$name: $schema.$table percentiles within " . (100 * $tol) . "% of percentile_disc ($n rows, worst "
			  . sprintf('%.3f%%', 100 * $worst) . ')');
	}
}

# Every message of the producer's record accounted for once: counted (the
# events of S.total), late or rejected (S.rejected_events); notes the
# figures (sent by kind; counted, late, rejected).  schema => S as above.
sub check_accounting
{
	my ($node, $name, %opt) = @_;
	my $schema = $opt{schema} // 'trafficagg';
	my ($sent, $good, $late_kind, $bad, $counted, $late, $rejected) = split /\|/, $node->safe_psql(
		'postgres', qq{
		SELECT (SELECT count(*) FROM sent),
		       (SELECT count(*) FROM sent WHERE kind = 'event'),
		       (SELECT count(*) FROM sent WHERE kind = 'late'),
		       (SELECT count(*) FROM sent WHERE kind = 'bad'),
		       (SELECT coalesce(sum(events), 0) FROM $schema.total),
		       (SELECT count(*) FROM $schema.rejected_events WHERE source = 'kafka' AND reason = 'late'),
		       (SELECT count(*) FROM $schema.rejected_events WHERE source = 'kafka' AND reason <> 'late')});
	note("$name: sent $sent ($good events, $late_kind late by the producer, $bad bad); "
		  . "counted $counted, late $late, rejected $rejected");
	is($counted + $late + $rejected, $sent, "$name: every message sent counted, late or rejected, once");
}

END
{
	my $rc = $?;
	stop_broker($_) for @brokers;
	$? = $rc;
}

1;
