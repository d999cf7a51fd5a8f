# The Grafana side of the Docker setup, tested without Grafana (no Grafana
# server can be installed here) and without Docker (no engine):
#   - every panel query of docker/grafana/dashboards/trafficagg.json, with the
#     dashboard's time range, interval and variables and Grafana's PostgreSQL
#     macros expanded as Grafana does (t/GrafanaMacros.pm, itself checked
#     against the expectations of Grafana's own macro tests), runs as the
#     data source's user, over TCP with its password, against a database fed
#     through Kafka by the producer with the Docker setup's arguments; each
#     returns rows, the columns its panel type and field overrides need, and
#     the numbers of the aggregate tables, computed here with plain SQL (and
#     the producer's record of what it sent, for unique users and p95);
#   - the dashboard's structure: panel ids, data sources, queries, layout;
#   - the provisioning files, parsed as YAML, against the keys Grafana reads,
#     and against docker-compose.yml (host, port, database, password, paths);
#   - the read-only role, made by running docker/postgres-setup.sql as the
#     entrypoint does: it connects, reads the panels' views, and cannot call
#     ingest, flush or rewind_watermark, nor read rejected_events;
#   - docker-compose.yml against the Compose Specification's JSON schema
#     (dclint, from docker/check, installed by scripts/install-deps.sh), and
#     docker/Dockerfile installing its dependencies only through
#     scripts/install-deps.sh.
use strict;
use warnings;
use lib 't';
use JSON::PP;
use List::Util qw(max min sum);
use POSIX qw(floor);
use Time::HiRes ();
use YAML::XS ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;
use GrafanaMacros
  qw(time_range query_interval_ms expand rfc3339nano format_interval comments_with_macros);

my $root = repo_root();
my $tmp = $PostgreSQL::Test::Utils::tmp_check;

sub slurp
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

sub yaml_file
{
	my ($path) = @_;
	my $doc = eval { YAML::XS::Load(slurp($path)) };
	ok(defined $doc && ref $doc eq 'HASH', "$path is YAML (a mapping)") or diag($@);
	return $doc // {};
}

# keys of %$h not in @allowed
sub unknown_keys
{
	my ($h, @allowed) = @_;
	my %ok = map { $_ => 1 } @allowed;
	return sort grep { !$ok{$_} } keys %$h;
}

# ---------------------------------------------------------------------------
# 1. The macro expansion, against Grafana's own tests
#    (pkg/tsdb/grafana-postgresql-datasource/macros_test.go: a time range of
#    2018-04-12 18:00 to 18:05 UTC, and one of 1960-02-01 07:00:00.5 to
#    1980-02-03 08:00:00.5)
# ---------------------------------------------------------------------------
{
	my %r = (from_ms => 1523556000_000, to_ms => 1523556300_000);
	my @cases = (
		[ 'select $__time(time_column)', 'select time_column AS "time"' ],
		[ 'WHERE $__timeFilter(time_column)',
			q{WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'} ],
		[ 'select $__timeFrom()', q{select '2018-04-12T18:00:00Z'} ],
		[ 'select $__timeTo()', q{select '2018-04-12T18:05:00Z'} ],
		[ q{SELECT $__timeGroup(time_column,'5m'), value},
			q{SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value} ],
		[ q{SELECT $__timeGroup(time_column,'5m') as time, value},
			q{SELECT floor(extract(epoch from time_column)/300)*300 as time, value} ],
		[ q{SELECT $__timeGroup(time_column,'5m')}, q{SELECT floor(extract(epoch from time_column)/300)*300} ],
		[ q{SELECT $__timeGroupAlias(time_column,'5m')},
			q{SELECT floor(extract(epoch from time_column)/300)*300 AS "time"} ],
		[ q{$__timeGroup(time_column , '5m')}, q{floor(extract(epoch from time_column)/300)*300} ],
		[ 'select $__unixEpochFilter(time)', 'select time >= 1523556000 AND time <= 1523556300' ],
		[ 'select $__unixEpochNanoFilter(time)',
			'select time >= 1523556000000000000 AND time <= 1523556300000000000' ],
		[ 'select $__unixEpochNanoFrom()', 'select 1523556000000000000' ],
		[ q{SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')},
			q{SELECT floor((time_column+time_adjustment)/300)*300 AS "time"} ],
		[ 'select $__unixEpochFrom(), $__unixEpochTo()', 'select 1523556000, 1523556300' ],
	);
	is(expand($_->[0], %r), $_->[1], "macro: $_->[0]") for @cases;
	is(expand(q{GROUP BY $__timeGroup(time_column , '12d')}, %r, timescaledb => 1),
		q{GROUP BY time_bucket('1036800.000s',time_column)}, 'macro: $__timeGroup with TimescaleDB');
	is(expand(q{GROUP BY $__timeGroup(time_column , '20ms')}, %r, timescaledb => 1),
		q{GROUP BY time_bucket('0.020s',time_column)}, 'macro: $__timeGroup of 20ms with TimescaleDB');
	is(expand('WHERE $__timeFilter(t)', from_ms => -312915600_000 + 500, to_ms => 318412800_000 + 500),
		q{WHERE t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'},
		'macro: $__timeFilter keeps fractions of a second, trailing zeros cut, before 1970 too');
	is(expand('SELECT $__interval, $__interval_ms', %r, interval_ms => 600_000),
		'SELECT 10m, 600000', '$__interval and $__interval_ms');
	is(join(' ', map { format_interval($_) } 500, 30_000, 90_000, 7_200_000, 2 * 86_400_000),
		'500ms 30s 1m 2h 2d', 'gtime.FormatInterval truncates to the largest unit');
	my (undef, $fills) = expand(q{SELECT $__timeGroupAlias(t, '1m', previous)}, %r);
	is_deeply($fills, ['previous'], 'a fill mode is reported');
	ok(!eval { expand('SELECT $__nosuch(x)', %r); 1 } && $@ =~ /unknown macro/, 'an unknown macro is an error');
	is( expand(
			q{WHERE page = '$page' AND device IN ($device)},
			%r,
			vars => {
				page => { value => "/o'brien", multi => 0 },
				device => { value => [ 'mobile', 'tablet' ], multi => 1 }
			}),
		q{WHERE page = '/o''brien' AND device IN ('mobile','tablet')},
		'template variables: a single value with quotes doubled, a multi-value as quoted literals');
}

# ---------------------------------------------------------------------------
# 2. The files, statically
# ---------------------------------------------------------------------------
my $docker = "$root/docker";
my $compose = yaml_file("$docker/docker-compose.yml");
my $ds_file = yaml_file("$docker/grafana/provisioning/datasources/trafficagg.yaml");
my $dp_file = yaml_file("$docker/grafana/provisioning/dashboards/trafficagg.yaml");
my $setup_sql = slurp("$docker/postgres-setup.sql");
my $dash_path = "$docker/grafana/dashboards/trafficagg.json";
my $dash = eval { JSON::PP->new->decode(slurp($dash_path)) };
ok(ref $dash eq 'HASH', "$dash_path is a JSON object") or diag($@);

my $pg_service = $compose->{services}{postgres} // {};
my $pg_env = $pg_service->{environment} // {};
my $gf_service = $compose->{services}{grafana} // {};

# --- the data source provisioning file (pkg/services/provisioning/datasources:
#     the keys of configsV1 and upsertDataSourceFromConfigV1; jsonData: the
#     PostgreSQL data source's settings, sqleng.JsonData and postgresVersion)
is($ds_file->{apiVersion}, 1, 'data sources: apiVersion 1');
is_deeply([ unknown_keys($ds_file, qw(apiVersion datasources deleteDatasources prune)) ],
	[], 'data sources: only keys Grafana reads at the top');
is(scalar @{ $ds_file->{datasources} // [] }, 1, 'data sources: one');
my $ds = $ds_file->{datasources}[0] // {};
is_deeply(
	[
		unknown_keys(
			$ds, qw(orgId orgName version name type access url user database basicAuth
			  basicAuthUser withCredentials isDefault correlations jsonData secureJsonData editable uid))
	],
	[],
	'data source: only keys Grafana reads');
is($ds->{type}, 'grafana-postgresql-datasource', 'data source: the PostgreSQL plugin');
is($ds->{access}, 'proxy', 'data source: access proxy (the server queries the database)');
like($ds->{$_} // '', qr/\S/, "data source: $_ set") for qw(name uid url user);
ok($ds->{isDefault}, 'data source: the default one');
my $jd = $ds->{jsonData} // {};
is_deeply(
	[
		unknown_keys(
			$jd, qw(maxOpenConns maxIdleConns connMaxLifetime connectionTimeout timescaledb sslmode
			  tlsConfigurationMethod tlsSkipVerify sslRootCertFile sslCertFile sslKeyFile timezone
			  encrypt servername timeInterval database enableSecureSocksProxy secureSocksProxyUsername
			  allowCleartextPasswords authenticationType postgresVersion maxIdleConnsAuto))
	],
	[],
	'data source jsonData: only settings the PostgreSQL data source reads');
like($jd->{sslmode} // '', qr/^(disable|require|verify-ca|verify-full)$/, 'data source: a valid sslmode');
like($jd->{database} // '', qr/\S/, 'data source: jsonData.database set (what Grafana 10+ reads)');
is($ds->{database} // $jd->{database}, $jd->{database}, 'data source: the old top-level database agrees');
like($ds->{secureJsonData}{password} // '', qr/\S/, 'data source: a password in secureJsonData');
is(ref($jd->{$_} // 0), '', "data source jsonData.$_ is a scalar")
  for grep { defined $jd->{$_} } qw(maxOpenConns maxIdleConns connMaxLifetime postgresVersion);

# ... and what it names in docker-compose.yml and the setup SQL
my ($ds_host, $ds_port) = ($ds->{url} // '') =~ /^([^:\/]+):(\d+)$/;
is($ds_host, 'postgres', 'data source url: the postgres service');
is($ds_port, $pg_env->{PGPORT}, 'data source url: the port the postgres service listens on');
is($jd->{database}, $pg_env->{TRAFFICAGG_DATABASE}, 'data source: the database trafficagg consumes into');
is($ds->{secureJsonData}{password}, $pg_env->{GRAFANA_PASSWORD},
	'data source password = the password the postgres service gives the role');
like($setup_sql, qr/^CREATE ROLE \Q$ds->{user}\E;$/m, 'data source user: the role postgres-setup.sql creates');

# --- the dashboard provider (pkg/services/provisioning/dashboards: configV1)
is($dp_file->{apiVersion}, 1, 'dashboard providers: apiVersion 1');
my $dp = $dp_file->{providers}[0] // {};
is(scalar @{ $dp_file->{providers} // [] }, 1, 'dashboard providers: one');
is_deeply(
	[
		unknown_keys(
			$dp, qw(name orgId folder folderUid type disableDeletion editable updateIntervalSeconds
			  allowUiUpdates options))
	],
	[],
	'dashboard provider: only keys Grafana reads');
is($dp->{type}, 'file', 'dashboard provider: files');
my %gf_mounts = map { my ($src, $dst) = split /:/; ($dst => $src) } @{ $gf_service->{volumes} // [] };
is($gf_mounts{ $dp->{options}{path} // '' }, './grafana/dashboards',
	'dashboard provider path: where docker-compose.yml mounts docker/grafana/dashboards');
is($gf_mounts{'/etc/grafana/provisioning'}, './grafana/provisioning',
	'docker-compose.yml mounts the provisioning files where Grafana reads them');
is($gf_service->{environment}{GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH},
	"$dp->{options}{path}/trafficagg.json", 'the home dashboard is this dashboard');

# --- the dashboard
like($dash->{schemaVersion} // '', qr/^[1-9]\d*$/, 'dashboard: schemaVersion set');
like($dash->{$_} // '', qr/\S/, "dashboard: $_ set") for qw(uid title);
is(ref $dash->{panels}, 'ARRAY', 'dashboard: panels');
my @panels = @{ $dash->{panels} // [] };
cmp_ok(scalar @panels, '>', 0, 'dashboard: ' . scalar(@panels) . ' panels');
my %seen_id;
$seen_id{ $_->{id} // 'none' }++ for @panels;
is_deeply([ grep { $seen_id{$_} > 1 || $_ !~ /^[1-9]\d*$/ } sort keys %seen_id ],
	[], 'dashboard: panel ids are distinct positive integers');
for my $k (qw(title description))
{
	my %n;
	$n{ $_->{$k} // '' }++ for @panels;
	is_deeply([ grep { $n{$_} > 1 } sort keys %n ], [], "dashboard: every panel has its own $k");
}
my %ds_ref = (type => $ds->{type}, uid => $ds->{uid});
my @cells;
for my $p (@panels)
{
	my $what = "panel $p->{id} ($p->{title})";
	like($p->{title} // '', qr/\S/, "$what: a title");
	like($p->{type} // '', qr/^(timeseries|table|barchart|piechart|stat|gauge|bargauge)$/,
		"$what: a panel type tested here");
	is_deeply($p->{datasource}, \%ds_ref, "$what: the provisioned data source by type and uid");
	my @t = @{ $p->{targets} // [] };
	cmp_ok(scalar @t, '>', 0, "$what: has queries");
	my %refs;
	for my $t (@t)
	{
		$refs{ $t->{refId} // '' }++;
		is_deeply($t->{datasource} // \%ds_ref, \%ds_ref, "$what $t->{refId}: the provisioned data source");
		like($t->{rawSql} // '', qr/\S/, "$what $t->{refId}: rawSql");
		ok($t->{rawQuery} && ($t->{editorMode} // '') eq 'code', "$what $t->{refId}: code mode (rawSql is what runs)");
		like($t->{format} // '', qr/^(time_series|table)$/, "$what $t->{refId}: format time_series or table");
		is($t->{format}, $p->{type} eq 'timeseries' ? 'time_series' : 'table',
			"$what $t->{refId}: the format its panel type reads");
		is_deeply([ comments_with_macros($t->{rawSql} // '') ], [],
			"$what $t->{refId}: no macro in a comment (Grafana 11 expands those, 12 drops them)");
		unlike($t->{rawSql} // '', qr/\\/, "$what $t->{refId}: no backslash (this test sends it through psql)");
	}
	ok(!grep({ $_ eq '' || $refs{$_} > 1 } keys %refs), "$what: refIds distinct");
	my $g = $p->{gridPos} // {};
	ok( (grep { ($g->{$_} // '') =~ /^\d+$/ } qw(x y w h)) == 4
		  && $g->{w} > 0
		  && $g->{h} > 0
		  && $g->{x} + $g->{w} <= 24,
		"$what: gridPos inside the 24 columns");
	for my $q (@cells)
	{
		my $overlap =
			 $g->{x} < $q->[1]{x} + $q->[1]{w}
		  && $q->[1]{x} < $g->{x} + $g->{w}
		  && $g->{y} < $q->[1]{y} + $q->[1]{h}
		  && $q->[1]{y} < $g->{y} + $g->{h};
		ok(!$overlap, "$what does not overlap panel $q->[0]") if $overlap;
	}
	push @cells, [ $p->{id}, $g ];
}
my $vars = GrafanaMacros::dashboard_variables($dash);

# ---------------------------------------------------------------------------
# 3. docker-compose.yml against the Compose Specification's schema, and the image
# ---------------------------------------------------------------------------
my $check = "$docker/check";
my $dclint = "$check/node_modules/.bin/dclint";
ok(-x $dclint, 'dclint installed in docker/check (scripts/install-deps.sh)');
my $lint = sub {
	my ($file) = @_;
	my ($out, $err);
	IPC::Run::run([ $dclint, '-c', "$check/dclint.json", '--max-warnings', '0', '-f', 'json', $file ],
		'>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	my $res = eval { decode_json($out) } // [];
	return ($rc, [ map { @{ $_->{messages} } } @$res ], $err);
};
my ($rc, $msgs, $err) = $lint->("$docker/docker-compose.yml");
is($rc, 0, 'dclint: docker-compose.yml is valid Compose (schema, and the rules kept in docker/check/dclint.json)');
is_deeply([ map { "$_->{rule}: $_->{message}" } @$msgs ], [], 'dclint: no message') or diag($err);
{
	# the schema check really runs: a misspelt key is refused
	my $bad = "$tmp/compose-misspelt.yml";
	my $text = slurp("$docker/docker-compose.yml");
	ok($text =~ s/^    hostname: kafka$/    hostnme: kafka/m, 'a copy of docker-compose.yml with a misspelt key');
	open my $fh, '>', $bad or die $!;
	print $fh $text;
	close $fh;
	my ($brc, $bmsgs) = $lint->($bad);
	ok($brc != 0 && grep({ $_->{rule} eq 'invalid-schema' && $_->{message} =~ m{/services/kafka} } @$bmsgs),
		'dclint refuses it against the Compose schema');
}
{
	# The image is built by scripts/install-deps.sh, which is what CI runs: no
	# package manager of its own in the Dockerfile, and every directory whose
	# npm lock file install-deps.sh installs is copied in before it runs.
	my $df = slurp("$docker/Dockerfile");
	my @run = $df =~ /^RUN\s+((?:.*\\\n)*.*)$/mg;
	ok(grep({ /\bbash scripts\/install-deps\.sh\b/ } @run), 'Dockerfile runs scripts/install-deps.sh');
	is_deeply([ grep { /(?:^|[\s;&|(])(apt-get|apt|dpkg|npm|npx|pip3?|mvn|curl|wget|cpan)\s/ } @run ],
		[], 'Dockerfile installs nothing itself');
	my $deps = slurp("$root/scripts/install-deps.sh");
	my ($before) = $df =~ /\A(.*?)^RUN[^\n]*install-deps\.sh/ms;
	my @npm_dirs = $deps =~ /cd "\$root\/([\w\/.-]+)" && npm ci/g;
	cmp_ok(scalar @npm_dirs, '>=', 2, 'install-deps.sh installs npm packages in: ' . join(', ', @npm_dirs));
	for my $d (@npm_dirs)
	{
		like($before // '', qr/^COPY\s+\Q$d\E\/package\.json\s+\Q$d\E\/package-lock\.json\s+\Q$d\E\/$/m,
			"Dockerfile copies $d/package.json and package-lock.json before install-deps.sh");
	}
}

# ---------------------------------------------------------------------------
# 4. A database fed as the Docker setup feeds it
# ---------------------------------------------------------------------------
my $broker = start_broker('grafana');
my $topic = 'web_events_grafana';
create_topic($broker, $topic, 4);

# The producer's late and bad fractions and the allowed lateness of the
# Docker setup; synthetic event time over the 20 minutes before the minute
# before now, so that every window is closed and within the dashboard's
# default range (now-30m .. now) when the panels run.
my %prod_arg = @{ $compose->{services}{producer}{command} }[ 2 .. $#{ $compose->{services}{producer}{command} } ];
my $count = 12000;
my $step = 100;
my $end_ms = (floor(Time::HiRes::time() / 60) - 1) * 60_000;
my $out = "$tmp/grafana.ndjson";
my $node = kafka_node('grafana', $broker, $topic,
	"listen_addresses = '127.0.0.1'\ntrafficagg.allowed_lateness = '$pg_env->{TRAFFICAGG_ALLOWED_LATENESS}'\n");
produce(
	$broker,
	topic => $topic,
	seed => 'grafana',
	count => $count,
	start_time => $end_ms - $count * $step,
	step => $step,
	late => $prod_arg{'--late-fraction'},
	bad => $prod_arg{'--bad-fraction'},
	out => $out);
ok( $node->poll_query_until(
		'postgres',
		"SELECT coalesce(sum(consumed), 0) = $count FROM trafficagg.status WHERE source = 'kafka'"),
	"the worker consumed all $count messages");
is($node->safe_psql('postgres', 'SELECT trafficagg.flush(close_all => true) >= 0'), 't', 'final flush');
ok( $node->poll_query_until(
		'postgres', "SELECT bool_and(lag = 0) FROM trafficagg.status WHERE source = 'kafka'"),
	'every partition shows lag 0');
load_out_file($node, $out);
check_aggregates_against_oracle($node, 'grafana');

# --- the role, as the Docker setup makes it, and the data source's way in
my $run_setup = sub {
	my ($stdout, $stderr);
	my $ret = $node->psql(
		$jd->{database}, $setup_sql,
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => [ '-v', "grafana_password=$ds->{secureJsonData}{password}" ]);
	is($ret, 0, "docker/postgres-setup.sql runs ($_[0])") or diag($stderr);
};
$run_setup->('first start');
# what the setup of earlier versions granted, on a data directory they set up
$node->safe_psql($jd->{database}, "GRANT SELECT ON ALL TABLES IN SCHEMA trafficagg TO $ds->{user}");
$run_setup->('a restart, over the grants of the old setup');

# TCP with a password, as the Docker setup's pg_hba.conf (scram-sha-256) asks
{
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $old = slurp($hba);
	open my $fh, '>', $hba or die $!;
	print $fh "host all $ds->{user} 127.0.0.1/32 scram-sha-256\n$old";
	close $fh;
	$node->reload;
}
my $ds_connstr = sub {
	my ($password) = @_;
	return sprintf("host=127.0.0.1 port=%d dbname=%s user=%s password=%s sslmode=%s",
		$node->port, $jd->{database}, $ds->{user}, $password, $jd->{sslmode});
};
my $gf = $ds_connstr->($ds->{secureJsonData}{password});
$node->connect_ok($gf, 'the data source connects with its password');
$node->connect_fails($ds_connstr->('wrong'), 'not with another password',
	expected_stderr => qr/password authentication failed/);

# runs $sql as the data source's user: (ret, stdout, stderr)
sub as_grafana
{
	my ($sql, @extra) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql(
		$jd->{database}, $sql,
		connstr => $gf,
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => [@extra]);
	return ($ret, $stdout, $stderr);
}

is((as_grafana('SHOW default_transaction_read_only'))[1], 'on', 'the role: transactions read-only');
is( $node->safe_psql(
		'postgres', qq{
	SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls
	       OR EXISTS (SELECT FROM pg_auth_members WHERE member = r.oid)
	  FROM pg_roles r WHERE rolname = '$ds->{user}'}),
	'f',
	'the role: no attribute, no role membership');
# the privileges, not the read-only default, stop it: also with that turned off
for my $call (
	'trafficagg.flush()', 'trafficagg.flush(true)',
	q{trafficagg.ingest('{}'::text)}, q{trafficagg.ingest('{}'::jsonb)},
	q{trafficagg.ingest('\x7b7d'::bytea)}, q{trafficagg.ingest(ARRAY['{}'])},
	q{trafficagg.rewind_watermark(now())})
{
	my ($fn) = $call =~ /^trafficagg\.(\w+)/;
	my ($ret, undef, $stderr) =
	  as_grafana("SET default_transaction_read_only = off; SELECT $call");
	like($stderr, qr/permission denied for function $fn/, "the role cannot call $call");
}
{
	my ($ret, undef, $stderr) =
	  as_grafana('SET default_transaction_read_only = off; SELECT count(*) FROM trafficagg.rejected_events');
	like($stderr, qr/permission denied for table rejected_events/, 'the role cannot read rejected_events');
	(undef, undef, $stderr) = as_grafana(
		q{SET default_transaction_read_only = off; INSERT INTO trafficagg.aggregates (name, dimensions) VALUES ('x', '{page}')});
	like($stderr, qr/permission denied for table aggregates/, 'the role cannot add aggregates');
}
is( $node->safe_psql(
		'postgres', qq{
	SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1)
	  FROM pg_proc p
	 WHERE p.pronamespace = 'trafficagg'::regnamespace
	   AND p.proname IN ('ingest', 'flush', 'rewind_watermark', 'create_aggregate_objects')
	   AND has_function_privilege('$ds->{user}', p.oid, 'EXECUTE')}),
	'',
	'the role may execute none of the functions that change state');
is( $node->safe_psql(
		'postgres', qq{
	SELECT string_agg(c.relname, ', ' ORDER BY 1)
	  FROM pg_class c
	 WHERE c.relnamespace = 'trafficagg'::regnamespace
	   AND c.relname LIKE 'rejected_events%'
	   AND (has_table_privilege('$ds->{user}', c.oid, 'SELECT')
	        OR has_any_column_privilege('$ds->{user}', c.oid, 'SELECT'))}),
	'',
	'the role may read nothing of rejected_events');

# ---------------------------------------------------------------------------
# 5. The panels
# ---------------------------------------------------------------------------
my $now_ms = int(Time::HiRes::time() * 1000);
my ($from_ms, $to_ms) = time_range($dash, $now_ms);
my ($F, $T) = map { "'" . rfc3339nano($_) . "'::timestamptz" } $from_ms, $to_ms;
note("dashboard range $F .. $T");
my $win = q{current_setting('trafficagg.window')::interval};

# Per panel title: the expected result, in plain SQL over the aggregate tables
# (as the superuser) with the same time range, column for column; tol: a
# column compared within a relative tolerance (percentiles, which the
# extension keeps within 1% of percentile_disc, and are rounded to 0.1 here).
# Per-minute rates of closed one-minute windows are their counts.
my $accepted = qq{
	SELECT s.*, (s.event->>'timestamp')::timestamptz AS ts
	  FROM sent s
	 WHERE s.kind IN ('event', 'late')
	   AND NOT EXISTS (SELECT FROM trafficagg.rejected_events r
	                    WHERE r.partition = s.partition AND r."offset" = s."offset")};
my %expect = (
	'Events per minute' => {
		sql => qq{SELECT window_start, events * 60.0 / extract(epoch FROM window_end - window_start)
		            FROM trafficagg.total WHERE window_start BETWEEN $F AND $T ORDER BY 1},
	},
	'Errors and 4xx per minute' => {
		sql => qq{SELECT window_start, errors, client_errors
		            FROM trafficagg.total WHERE window_start BETWEEN $F AND $T ORDER BY 1},
	},
	'Average latency per minute' => {
		sql => qq{SELECT window_start, latency_sum / nullif(latency_count, 0)
		            FROM trafficagg.total WHERE window_start BETWEEN $F AND $T ORDER BY 1},
	},
	'Unique users per minute' => {
		sql => qq{SELECT window_start, unique_users
		            FROM trafficagg.total WHERE window_start BETWEEN $F AND $T ORDER BY 1},
	},
	'Latency percentiles per minute' => {
		sql => qq{SELECT window_start, latency_p50, latency_p95, latency_p99
		            FROM trafficagg.total WHERE window_start BETWEEN $F AND $T ORDER BY 1},
	},
	'Consumer status per partition' => {
		# counts from the producer's record and the dead letters; the
		# watermark and the broker state as the superuser sees them
		sql => qq{
		SELECT s.partition, 0, count(*),
		       count(*) FILTER (WHERE s.kind <> 'bad') - coalesce(max(r.late), 0),
		       coalesce(max(r.late), 0), count(*) FILTER (WHERE s.kind = 'bad'),
		       max(st.watermark), max(st.broker_state)
		  FROM sent s
		  LEFT JOIN (SELECT partition, count(*) FILTER (WHERE reason = 'late') AS late
		               FROM trafficagg.rejected_events GROUP BY 1) r USING (partition)
		  JOIN trafficagg.status st ON st.source = 'kafka' AND st.partition = s.partition
		 GROUP BY 1 ORDER BY 1},
	},
	'Top pages in the selected range' => {
		# unique users and p95 from the producer's record: postgresql-hll over
		# the user ids (the extension's parameters) and percentile_disc
		sql => qq{
		WITH t AS (
		  SELECT page, sum(events) AS events, sum(errors) AS errors, sum(client_errors) AS client_errors,
		         round(sum(latency_sum) / nullif(sum(latency_count), 0), 1) AS avg, max(latency_max) AS max
		    FROM trafficagg.by_page WHERE window_start BETWEEN $F AND $T GROUP BY page),
		o AS (
		  SELECT event->>'page' AS page,
		         hll_cardinality(hll_add_agg(hll_hash_text(event->>'user_id'), 12, 5, -1, 1))::bigint AS users,
		         percentile_disc(0.95) WITHIN GROUP (ORDER BY (event->>'response_time_ms')::float8) AS p95
		    FROM ($accepted) e
		   WHERE date_bin($win, ts, 'epoch') BETWEEN $F AND $T
		   GROUP BY 1)
		SELECT page, events, o.users, errors, client_errors, avg, o.p95, max
		  FROM t LEFT JOIN o USING (page)
		 ORDER BY events DESC, page LIMIT 20},
		tol => { 6 => [ 0.01, 0.05 ] },
	},
	'Events by country' => {
		sql => qq{SELECT coalesce(country, '(none)'), sum(events) FROM trafficagg.by_country
		           WHERE window_start BETWEEN $F AND $T GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15},
	},
	'Events by device' => {
		sql => qq{SELECT coalesce(device, '(none)'), sum(events) FROM trafficagg.by_device
		           WHERE window_start BETWEEN $F AND $T GROUP BY 1 ORDER BY 2 DESC, 1},
	},
);

my $sep = "\x1f";
my $null = "\x01";
my @rows_psql = ('-F', $sep, '-P', "null=$null");
sub parse_rows
{
	my ($text) = @_;
	return [ map { [ map { $_ eq $null ? undef : $_ } split /\Q$sep\E/, $_, -1 ] } grep { $_ ne '' } split /\n/, $text ];
}
my $numeric = qr/^(smallint|integer|bigint|numeric|real|double precision)$/;
my $is_num = qr/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

sub same_value
{
	my ($got, $want, $tol) = @_;
	return !defined $got && !defined $want if !defined $got || !defined $want;
	if ($got =~ $is_num && $want =~ $is_num)
	{
		my ($rel, $abs) = $tol ? @$tol : (1e-9, 0);
		return abs($got - $want) <= $rel * max(1, abs($want)) + $abs;
	}
	return $got eq $want;
}

my %tested;
my @summary;
for my $p (@panels)
{
	my $e = $expect{ $p->{title} };
	my $what = "panel $p->{id} \"$p->{title}\"";
	ok($e, "$what has an expectation in this test") or next;
	$tested{ $p->{title} } = 1;
	for my $t (@{ $p->{targets} })
	{
		my $interval_ms = query_interval_ms(
			$from_ms, $to_ms,
			panel_interval => $p->{interval},
			ds_time_interval => $jd->{timeInterval},
			max_data_points => $p->{maxDataPoints});
		my ($sql, $fills) = expand(
			$t->{rawSql},
			from_ms => $from_ms,
			to_ms => $to_ms,
			interval_ms => $interval_ms,
			vars => $vars,
			timescaledb => $jd->{timescaledb});
		note("$what $t->{refId}, as sent:\n$sql");
		unlike($sql, qr/\$__|\$\{|\[\[/, "$what: nothing left to expand");

		# the result's columns (psql \gdesc), then its rows, as the data source
		my ($ret, $desc, $derr) = as_grafana("$sql\n\\gdesc", @rows_psql);
		is($ret, 0, "$what: described") or diag($derr);
		my @cols = @{ parse_rows($desc) };
		my @names = map { $_->[0] } @cols;
		my %type = map { $_->[0] => $_->[1] } @cols;
		my ($ret2, $out, $qerr) = as_grafana("$sql\n\\g", @rows_psql);
		is($ret2, 0, "$what: runs as $ds->{user}") or diag($qerr);
		my $rows = parse_rows($out);
		cmp_ok(scalar @$rows, '>', 0, "$what: " . scalar(@$rows) . ' rows');
		push @summary, sprintf('%-34s %-10s %3d rows', $p->{title}, $p->{type}, scalar @$rows);

		if ($p->{type} eq 'timeseries')
		{
			# sqleng: a column named time; the others become float series
			# (string columns would become labels: none here)
			is($type{time}, 'timestamp with time zone', "$what: a time column");
			is_deeply([ grep { $_ ne 'time' && $type{$_} !~ $numeric } @names ],
				[], "$what: every other column numeric");
			ok(@names >= 2, "$what: at least one series");
			my $ti = (grep { $names[$_] eq 'time' } 0 .. $#names)[0] // 0;
			my @ts = map { $_->[$ti] } @$rows;
			is_deeply(\@ts, [ sort @ts ], "$what: sorted by time");
			ok(!@$fills, "$what: no fill mode (Grafana would add points)");
		}
		elsif ($p->{type} eq 'barchart')
		{
			my $x = $p->{options}{xField};
			ok(defined $x && ($type{$x} // '') eq 'text', "$what: the x field \"" . ($x // '') . '" is text');
			ok(grep({ $_ ne ($x // '') && $type{$_} =~ $numeric } @names), "$what: a numeric field");
		}
		elsif ($p->{type} eq 'piechart')
		{
			ok($p->{options}{reduceOptions}{values}, "$what: one slice per row");
			is(scalar(grep { $type{$_} eq 'text' } @names), 1, "$what: one text field names the slices");
			ok(grep({ $type{$_} =~ $numeric } @names), "$what: a numeric field");
		}

		# fields the panel refers to by name exist
		my @by_name = (
			(map { $_->{matcher}{options} } grep { ($_->{matcher}{id} // '') eq 'byName' }
				  @{ $p->{fieldConfig}{overrides} // [] }),
			(map { $_->{displayName} } @{ $p->{options}{sortBy} // [] }));
		my %have = map { $_ => 1 } @names;
		is_deeply([ grep { !$have{$_} } @by_name ], [], "$what: every field named in overrides/sortBy exists");

		# the numbers
		my $want = parse_rows($node->safe_psql('postgres', $e->{sql}, extra_params => [@rows_psql]));
		is(scalar @$rows, scalar @$want, "$what: as many rows as the aggregate tables give (" . scalar(@$want) . ')');
		is(scalar @names, scalar @{ $want->[0] // [] }, "$what: the expected columns");
		my @bad;
		for my $i (0 .. max($#$rows, $#$want))
		{
			for my $j (0 .. $#names)
			{
				my ($g, $w) = ($rows->[$i][$j], $want->[$i][$j]);
				push @bad, "row $i $names[$j]: " . ($g // 'NULL') . ' <> ' . ($w // 'NULL')
				  unless same_value($g, $w, $e->{tol}{$j});
			}
		}
		is_deeply(\@bad, [], "$what: the numbers agree with the aggregate tables")
		  or diag(join("\n", @bad[ 0 .. min(9, $#bad) ]));
	}
}
is_deeply([ grep { !$tested{$_} } sort keys %expect ], [], 'every expectation belongs to a panel');
diag("panels, range now-30m .. now:\n" . join("\n", @summary));

$node->stop;
done_testing();
