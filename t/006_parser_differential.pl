# The fast event scanner against jansson, the reference parser: a
# differential fuzzer (test/parse_diff.c) mutates valid events and every kind
# of bad message, and both paths must agree on the outcome, the detail and
# every extracted field.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Utils;
use Test::More;
use TrafficAggTest;

my $root = repo_root();
my ($stdout, $stderr);
ok(IPC::Run::run([ 'make', '-s', '-C', "$root/test", 'parse_diff' ], '>', \$stdout, '2>', \$stderr),
	'the differential fuzzer builds')
  or diag($stderr);
for my $seed (1, 2, 3)
{
	my $ok = IPC::Run::run([ "$root/test/parse_diff", '400000', $seed ], '>', \$stdout, '2>', \$stderr);
	ok($ok, "seed $seed: fast path and jansson agree on every input") or diag($stdout);
	like($stdout, qr/400000 inputs, [1-9]\d* accepted, 0 differences/, "seed $seed: $stdout");
}
done_testing();
