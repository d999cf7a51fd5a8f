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

our @EXPORT = qw(start_broker create_topic produce read_out_file read_topic
  repo_root load_out_file);

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

# Run the producer to completion: produce($broker, topic => ..., seed => ...,
# count => ..., out => FILE, late => F, bad => F, extra => [...]).
sub produce
{
	my ($b, %o) = @_;
	my @cmd = (
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
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr);
	die "producer failed: $stderr" unless $ok;
	note("producer: $stderr");
	return $stderr;
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

# Load an --out file into table sent(partition, "offset", kind, bad_kind, event jsonb).
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
		         l->>'kind' AS kind, l->>'bad_kind' AS bad_kind, l->'event' AS event
		    FROM (SELECT line::jsonb AS l FROM ${table}_raw) s;
		DROP TABLE ${table}_raw;
	});
}

END
{
	my $rc = $?;
	stop_broker($_) for @brokers;
	$? = $rc;
}

1;
