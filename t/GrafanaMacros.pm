# What Grafana does to a PostgreSQL panel query before the database sees it,
# in Perl, for t/014_grafana_dashboard.pl: the dashboard's time range
# ("now-30m" .. "now"), the minimum interval, the template variables, and the
# macros of the PostgreSQL data source.  Written from Grafana's source, which is
# the authority here (the macro table of Grafana's PostgreSQL documentation
# shows MySQL-style examples such as FROM_UNIXTIME(...), which the PostgreSQL
# data source never produces):
#
#   frontend (public/app/features/query, packages/grafana-sql SqlDatasource):
#     the time range from the dashboard's time.from/time.to (date math), the
#     interval (rangeutil.calculateInterval: (to - from) / max data points,
#     raised to the lower limit, which for SQL data sources is the data
#     source's jsonData.timeInterval or '1m'), then templateSrv.replace with
#     the data source's interpolateVariable: a single value with each ' doubled,
#     a multi-value or "include All" variable as 'a','b' (each quoted).
#   backend, pkg/tsdb/grafana-postgresql-datasource/sqleng/sql_engine.go
#     Interpolate, plain text replacement, in this order:
#       $__interval_ms       -> interval in integer milliseconds
#       $__interval          -> gtime.FormatInterval: the largest unit that fits,
#                               truncated: 1y, 2d, 3h, 1m, 30s, 500ms
#       $__unixEpochFrom()   -> from, integer Unix seconds
#       $__unixEpochTo()     -> to, integer Unix seconds
#   backend, pkg/tsdb/grafana-postgresql-datasource/macros.go: every match of
#     \$(\w+)\(([^)]*)\) (arguments split at ',' and trimmed of spaces):
#       $__time(c)           -> c AS "time"
#       $__timeEpoch(c)      -> extract(epoch from c) as "time"
#       $__timeFilter(c)     -> c BETWEEN '<from>' AND '<to>'
#       $__timeFrom()        -> '<from>'
#       $__timeTo()          -> '<to>'
#                               (<from>, <to>: UTC, RFC 3339 with the fraction of
#                               the second cut of trailing zeros, Go's
#                               time.RFC3339Nano: 2018-04-12T18:00:00Z,
#                               1960-02-01T07:00:00.5Z)
#       $__timeGroup(c,'5m'[,fill])
#                            -> floor(extract(epoch from c)/300)*300
#                               (seconds printed as Go's %v of a float64;
#                               with jsonData.timescaledb: time_bucket('300.000s',c));
#                               followed directly by ',' it is read as
#                               $__timeGroupAlias (compatibility with Grafana < 5.3)
#       $__timeGroupAlias(c,'5m'[,fill])
#                            -> the same plus AS "time"
#       $__unixEpochFilter(c)      -> c >= <from s> AND c <= <to s>
#       $__unixEpochNanoFilter(c)  -> c >= <from ns> AND c <= <to ns>
#       $__unixEpochNanoFrom(), $__unixEpochNanoTo() -> <from ns>, <to ns>
#       $__unixEpochGroup(c,'5m'[,fill])      -> floor((c)/300)*300
#       $__unixEpochGroupAlias(c,'5m'[,fill]) -> the same plus AS "time"
#       anything else        -> an error ("unknown macro")
#     The interval argument is gtime.ParseInterval: Go's time.ParseDuration
#     (300ms, 1.5h, 2h45m) or N followed by d, w, M or y.  The fill argument
#     changes only what Grafana does with the result (it adds the missing
#     points), not the SQL; expand() reports it.
#
# Grafana 12.x strips SQL comments before expanding macros; Grafana 11, which
# docker/docker-compose.yml runs, does not.  The two agree on a query whose
# comments hold no macro: comments_with_macros() finds those that do.
package GrafanaMacros;

use strict;
use warnings;
use Carp qw(croak);
use Exporter 'import';
use POSIX qw(floor);

our @EXPORT_OK = qw(time_range query_interval_ms expand rfc3339nano
  format_interval comments_with_macros);

my %unit_ms = (
	ms => 1,
	s => 1000,
	m => 60_000,
	h => 3_600_000,
	d => 86_400_000,
	w => 7 * 86_400_000);

# A dashboard time ("now", "now-30m", "now+1h") at $now_ms: epoch ms.  Only
# this much of Grafana's date math: relative times without rounding ("/d"),
# and no absolute times, which this dashboard does not use.
sub _date_math
{
	my ($expr, $now_ms) = @_;
	return $now_ms if $expr eq 'now';
	my ($sign, $n, $unit) = $expr =~ /^now([-+])(\d+)(s|m|h|d|w)$/
	  or croak "time '$expr': only now and now±N(s|m|h|d|w) are supported here";
	return $now_ms + ($sign eq '-' ? -1 : 1) * $n * $unit_ms{$unit};
}

# The dashboard's time range at $now_ms: (from_ms, to_ms).
sub time_range
{
	my ($dashboard, $now_ms) = @_;
	my $t = $dashboard->{time} or croak 'the dashboard has no time range';
	return (_date_math($t->{from}, $now_ms), _date_math($t->{to}, $now_ms));
}

# Go's time.ParseDuration for what a dashboard writes (1m, 1.5h, 2h45m, 250ms),
# in milliseconds; with gtime.ParseInterval's N[dwMy] (M and y: calendar
# months and years from now in UTC, which vary; not supported here).
sub _parse_interval_ms
{
	my ($text) = @_;
	if ($text =~ /^(\d+)([dw])$/)
	{
		return $1 * $unit_ms{$2};
	}
	croak "interval '$text': months and years are not supported here" if $text =~ /^\d+[My]$/;
	my $ms = 0;
	my $rest = $text;
	while ($rest =~ s/^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)//)
	{
		my ($n, $u) = ($1, $2);
		$ms += $u eq 'ns' ? $n / 1e6 : $u =~ /^(us|µs)$/ ? $n / 1e3 : $n * $unit_ms{$u};
	}
	croak "interval '$text' is not a Go duration" if $rest ne '' || $text eq '';
	return $ms;
}

# The interval Grafana gives a panel's query ($__interval): (to - from) / max
# data points, raised to the lower limit (the panel's "interval", else the
# data source's jsonData.timeInterval, else '1m' for SQL data sources).  Max
# data points is the panel's width in pixels unless the panel sets it: this
# returns the lower limit when it wins for any panel at least
# $min_points wide, and dies otherwise (Grafana would then round the
# quotient with its own table, which is not reproduced here).
sub query_interval_ms
{
	my ($from_ms, $to_ms, %o) = @_;
	my $low = _parse_interval_ms($o{panel_interval} // $o{ds_time_interval} // '1m');
	my $points = $o{max_data_points} // $o{min_points} // 300;
	croak "the range / $points points exceeds the minimum interval $low ms: not reproduced here"
	  if ($to_ms - $from_ms) / $points > $low;
	return $low;
}

# gtime.FormatInterval
sub format_interval
{
	my ($ms) = @_;
	my $year = 365 * $unit_ms{d};
	return int($ms / $year) . 'y' if $ms >= $year;
	for my $u (qw(d h m s ms))
	{
		return int($ms / $unit_ms{$u}) . $u if $ms >= $unit_ms{$u};
	}
	return '1ms';
}

# Go's time.RFC3339Nano of an epoch-ms instant, in UTC.
sub rfc3339nano
{
	my ($ms) = @_;
	my $s = floor($ms / 1000);
	my $frac = $ms - $s * 1000;
	my @t = gmtime($s);
	my $text = sprintf('%04d-%02d-%02dT%02d:%02d:%02d', $t[5] + 1900, $t[4] + 1, @t[ 3, 2, 1, 0 ]);
	$text .= ('.' . sprintf('%03d', $frac)) =~ s/0+$//r if $frac;
	return $text . 'Z';
}

# Go's %v of a float64 number of seconds, for the values a dashboard uses
# (integers print without a fraction, 0.02 as 0.02).
sub _go_float
{
	my ($x) = @_;
	return sprintf('%d', $x) if $x == int($x) && abs($x) < 1e21;
	return 0 + sprintf('%.15g', $x);
}

# The variables of a dashboard (templating.list) with their current values, as
# expand() takes them: name => { value => text or [texts], multi => bool }.
sub dashboard_variables
{
	my ($dashboard) = @_;
	my %vars;
	for my $v (@{ $dashboard->{templating}{list} // [] })
	{
		my $cur = $v->{current} // {};
		croak "template variable $v->{name} has no current value" unless exists $cur->{value};
		$vars{ $v->{name} } = {
			value => $cur->{value},
			multi => ($v->{multi} || $v->{includeAll}) ? 1 : 0
		};
	}
	return \%vars;
}

sub _quote_literal { my ($s) = @_; return "'" . ($s =~ s/'/''/gr) . "'"; }

# The frontend's templateSrv.replace with the SQL data sources'
# interpolateVariable, for $name, ${name} and [[name]] (formats such as
# ${name:csv} are not supported here).  Unknown names stay as they are, as
# in Grafana (so the macros reach the backend).
sub _replace_variables
{
	my ($sql, $vars) = @_;
	my $value = sub {
		my ($name, $whole) = @_;
		my $v = $vars->{$name} or return $whole;
		my $val = $v->{value};
		return join(',', map { _quote_literal($_) } @$val) if ref $val eq 'ARRAY';
		return $v->{multi} ? _quote_literal($val) : ($val =~ s/'/''/gr);
	};
	croak "variable format '$1' is not supported here" if $sql =~ /\$\{\w+:([^}]*)\}/;
	$sql =~ s/\$\{(\w+)\}/$value->($1, $&)/ge;
	$sql =~ s/\[\[(\w+)\]\]/$value->($1, $&)/ge;
	$sql =~ s/\$(\w+)/$value->($1, $&)/ge;
	return $sql;
}

# The SQL Grafana sends for $sql: expand($sql, from_ms => , to_ms => ,
# interval_ms => , vars => dashboard_variables(...), timescaledb => bool).
# Returns the text, and in list context also the fill modes asked for.
sub expand
{
	my ($sql, %c) = @_;
	my ($from, $to) = @c{qw(from_ms to_ms)};
	croak 'expand needs from_ms and to_ms' unless defined $from && defined $to;
	my @fills;

	# frontend: template variables
	$sql = _replace_variables($sql, $c{vars} // {});

	# backend, sqleng Interpolate
	if ($sql =~ /\$__interval/)
	{
		croak 'the query uses $__interval: give interval_ms' unless defined $c{interval_ms};
		$sql =~ s/\$__interval_ms/sprintf('%d', $c{interval_ms})/ge;
		$sql =~ s/\$__interval/format_interval($c{interval_ms})/ge;
	}
	my ($from_s, $to_s) = (floor($from / 1000), floor($to / 1000));
	$sql =~ s/\$__unixEpochFrom\(\)/$from_s/g;
	$sql =~ s/\$__unixEpochTo\(\)/$to_s/g;

	# backend, the PostgreSQL macro engine
	my $original = $sql;
	my $group = sub {
		my ($name, @args) = @_;
		croak "macro $name needs time column and interval and optional fill value" if @args < 2;
		my $sec = _parse_interval_ms($args[1] =~ s/^'+|'+$//gr) / 1000;
		push @fills, $args[2] if @args >= 3;
		return $sec;
	};
	my $eval;
	$eval = sub {
		my ($name, @args) = @_;
		my $col = $args[0];
		my $need_col = sub { croak "missing time column argument for macro $name" if ($col // '') eq '' };
		if ($name eq '__time') { $need_col->(); return qq{$col AS "time"}; }
		if ($name eq '__timeEpoch') { $need_col->(); return qq{extract(epoch from $col) as "time"}; }
		if ($name eq '__timeFilter')
		{
			$need_col->();
			return "$col BETWEEN '" . rfc3339nano($from) . "' AND '" . rfc3339nano($to) . "'";
		}
		return "'" . rfc3339nano($from) . "'" if $name eq '__timeFrom';
		return "'" . rfc3339nano($to) . "'" if $name eq '__timeTo';
		if ($name eq '__timeGroup')
		{
			my $sec = $group->($name, @args);
			return sprintf("time_bucket('%.3fs',%s)", $sec, $col) if $c{timescaledb};
			my $g = _go_float($sec);
			return "floor(extract(epoch from $col)/$g)*$g";
		}
		return $eval->('__timeGroup', @args) . ' AS "time"' if $name eq '__timeGroupAlias';
		if ($name eq '__unixEpochFilter')
		{
			$need_col->();
			return "$col >= $from_s AND $col <= $to_s";
		}
		if ($name eq '__unixEpochNanoFilter')
		{
			$need_col->();
			return "$col >= " . ($from * 1_000_000) . " AND $col <= " . ($to * 1_000_000);
		}
		return $from * 1_000_000 if $name eq '__unixEpochNanoFrom';
		return $to * 1_000_000 if $name eq '__unixEpochNanoTo';
		if ($name eq '__unixEpochGroup')
		{
			my $g = _go_float($group->($name, @args));
			return "floor(($col)/$g)*$g";
		}
		return $eval->('__unixEpochGroup', @args) . ' AS "time"' if $name eq '__unixEpochGroupAlias';
		croak qq{unknown macro "$name"};
	};
	$sql =~ s{\$(\w+)\(([^)]*)\)}{
		my ($whole, $name, $args) = ($&, $1, $2);
		# before Grafana 5.3 $__timeGroup added AS "time"; a ',' right after
		# the first occurrence of this text still means that
		if ($name eq '__timeGroup')
		{
			my $i = index($original, $whole);
			$name = '__timeGroupAlias'
			  if $i >= 0 && substr($original, $i + length($whole), 1) eq ',';
		}
		$eval->($name, map { s/^ +| +$//gr } split /,/, $args, -1);
	}ge;
	return wantarray ? ($sql, \@fills) : $sql;
}

# The comments of $sql (-- to the end of the line, /* */) that contain a macro
# or variable reference ($name): Grafana 11 expands those, 12 drops them.
# Quoted strings and identifiers are skipped.
sub comments_with_macros
{
	my ($sql) = @_;
	my @found;
	while ($sql =~ /\G(?:'(?:[^']|'')*'|"(?:[^"]|"")*"|(--[^\n]*)|(\/\*.*?\*\/)|.)/gs)
	{
		my $c = $1 // $2;
		push @found, $c if defined $c && $c =~ /\$\w/;
	}
	return @found;
}

1;
