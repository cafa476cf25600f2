# bench/big_hash.pl: perl building a big hash, for bench/run.
#
# Run by the unmodified /usr/bin/perl under every contender: a hash of N
# keys whose values are strings and array refs, half of it deleted and
# refilled, then walked.  Keys come from a fixed linear congruential
# generator and the result is an order-independent sum, so the output line
# is the same under every allocator.
#
# Usage: perl big_hash.pl N
use strict;
use warnings;

my $n = shift or die "usage: perl big_hash.pl N\n";
my $seed = 42;
sub next_rand { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }

my %h;
for my $i (1 .. $n) {
    my $k = "key" . next_rand();
    $h{$k} = [$i, "v" x ($i % 40 + 1), { n => $i }];
}
my $deleted = 0;
for my $k (keys %h) {
    if (length($k) % 2) { delete $h{$k}; $deleted++; }
}
for my $i (1 .. $n / 2) {
    $h{"new" . next_rand()} = "s" x ($i % 100 + 1);
}
my $sum = 0;
while (my ($k, $v) = each %h) {
    $sum += ref $v ? $v->[0] + length($v->[1]) : length($v);
}
printf "bench=perl ops=%d checksum=%016x live=%d deleted=%d\n", $n, $sum, scalar(keys %h), $deleted;
