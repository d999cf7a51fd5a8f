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
	'group_table' => 'store.c',
	'value_table' => 'store.c');
for my $token (sort keys %private)
{
	my @users = grep { $text{$_} =~ /(?<![A-Za-z0-9_])\Q$token\E/ } @files;
	is(join(', ', @users), $private{$token}, "$token is used only in $private{$token}");
}

# no header exposes shared memory: no extern pointer to a struct, and the
# per-source state has no public struct (each module keeps its own part)
opendir($dh, $dir) or die "$dir: $!";
my @headers = sort grep { /\.h$/ } readdir($dh);
closedir($dh);
for my $h (@headers)
{
	open my $fh, '<', "$dir/$h" or die "$dir/$h: $!";
	local $/;
	my $s = <$fh>;
	close $fh;
	$s =~ s{/\*.*?\*/}{}gs;
	unlike($s, qr/^extern\s+(?:struct\s+)?[A-Z]\w*\s*\*\s*\w+\s*;/m, "$h declares no extern pointer to shared state");
	unlike($s, qr/\bTaSource\b|\bTaShared\b/, "$h has no public source or shared-state struct");
}

# the worker loop reads as steps: no shared struct in it
unlike($text{'worker.c'}, qr/(?<![A-Za-z0-9_])(?:ta_shared|store_shared|rec|table|times|cat|wm)->/,
	'worker.c touches no shared field directly');

done_testing();
