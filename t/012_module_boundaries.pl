# The code's structure, checked like behaviour: no two source files call
# each other in a cycle (a reader follows one event through the files in
# one direction), and state private to a module is touched by it alone.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = 'extension';
opendir(my $dh, $dir) or die "$dir: $!";
my @files = sort grep { /\.c$/ } readdir($dh);
closedir($dh);

my (%text, %defined_in);
for my $f (@files)
{
	open my $fh, '<', "$dir/$f" or die "$dir/$f: $!";
	local $/;
	my $s = <$fh>;
	close $fh;
	$s =~ s{/\*.*?\*/}{}gs;        # comments
	$s =~ s{"(?:\\.|[^"\\])*"}{""}g;    # string literals
	$text{$f} = $s;
	# a function definition: its name at the start of a line, the opening
	# brace on a line of its own after the parameters; not static
	while ($s =~ /^([a-z_][a-z0-9_]*)\(([^;{]*?)\)\n\{/mg)
	{
		my $name = $1;
		my $before = substr($s, 0, $-[0]);
		my ($prev) = $before =~ /([^\n]*)\n$/;
		next if defined $prev && $prev =~ /\bstatic\b/;
		$defined_in{$name} = $f;
	}
}
cmp_ok(scalar(keys %defined_in), '>', 100, 'the extern functions of ' . scalar(@files) . ' files were found');

my %calls;
for my $f (@files)
{
	for my $name (keys %defined_in)
	{
		my $g = $defined_in{$name};
		next if $g eq $f;
		$calls{$f}{$g} = $name if $text{$f} =~ /\b\Q$name\E\s*\(/;
	}
}

# every file reachable from each file; a file that reaches itself is in a cycle
my @cycles;
for my $f (@files)
{
	my %seen;
	my @todo = keys %{ $calls{$f} // {} };
	while (my $g = shift @todo)
	{
		next if $seen{$g}++;
		push @todo, keys %{ $calls{$g} // {} };
	}
	push @cycles, $f if $seen{$f};
}
is(join(', ', @cycles), '', 'no file calls back into a file that calls it (no call cycles)');

# state private to one module: its shared struct's pointer is named nowhere else
my %private = (
	'wm->' => 'window.c',
	'times->' => 'window.c',
	'table->' => 'source.c',
	'rec->' => 'recovery.c',
	'cat->' => 'catalog.c',
	'store_shared->' => 'store.c',
	'requests->' => 'request.c',
	'ring->' => 'deadletter.c',
	'status->' => 'status.c',
	'area_header' => 'sketch_area.c',
	'value_header' => 'value_area.c',
	'group_table' => 'store.c',
	'value_table' => 'store.c');
for my $token (sort keys %private)
{
	my @users = grep { $text{$_} =~ /(?<![A-Za-z0-9_])\Q$token\E/ } @files;
	is(join(', ', @users), $private{$token}, "$token is used only in $private{$token}");
}

# no header exposes shared memory: in the headers, every extern declaration
# is a function, except the settings in trafficagg.h (ta_*, of plain types)
opendir($dh, $dir) or die "$dir: $!";
my @headers = sort grep { /\.h$/ } readdir($dh);
closedir($dh);
my %htext;
for my $h (@headers)
{
	open my $fh, '<', "$dir/$h" or die "$dir/$h: $!";
	local $/;
	my $s = <$fh>;
	close $fh;
	$s =~ s{/\*.*?\*/}{}gs;
	$htext{$h} = $s;
	my @vars;
	for my $stmt (split /;/, $s)
	{
		next unless $stmt =~ /(\bextern\b.*)$/s;
		$stmt = $1;
		next if $stmt =~ /\(/;
		next if $h eq 'trafficagg.h' && $stmt =~ /^extern\s+(?:PGDLLIMPORT\s+)?(?:int|bool|char\s*\*)\s*ta_\w+\s*$/;
		push @vars, $stmt;
	}
	is(join(' | ', @vars), '', "$h declares no extern variable (only functions)");
}

# each module's shared struct (what ShmemInitStruct gives it) is named in its
# own file only: no other file can reach its fields
my $nshared = 0;
for my $f (@files)
{
	while ($text{$f} =~ /^static\s+(\w+)\s*\*\s*(\w+)\s*=\s*NULL;/mg)
	{
		my ($type, $var) = ($1, $2);
		next unless $text{$f} =~ /\b\Q$var\E\s*=\s*(?:\([^)]*\)\s*)?ShmemInitStruct\(/;
		$nshared++;
		my @users = grep { $_ ne $f && $text{$_} =~ /\b\Q$type\E\b/ } @files;
		push @users, grep { $htext{$_} =~ /\b\Q$type\E\b/ } @headers;
		is(join(', ', @users), '', "$type (${f}'s shared memory) is named in no other file");
	}
}
cmp_ok($nshared, '>=', 9, "the shared structs of $nshared modules were found");

# the worker loop reads as steps: no shared struct in it
unlike($text{'worker.c'}, qr/(?<![A-Za-z0-9_])(?:ta_shared|store_shared|rec|table|times|cat|wm)->/,
	'worker.c touches no shared field directly');

done_testing();
