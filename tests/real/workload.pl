#!/usr/bin/perl
# Allocation workload for the real-program preload tests (tests/real).
#
# Hashes of arrays, regex captures and substitutions, sorting with custom
# comparators, string building, sprintf, join/split and pack/unpack.  The
# output is deterministic: hash order never reaches stdout (keys are sorted),
# so the run under mallard must print exactly what the run without it prints.
#
# usage: perl workload.pl [n]     (n, the work size, defaults to 40000)
use strict;
use warnings;

my $n = @ARGV ? $ARGV[0] : 40000;

my $x = 12345;
sub rnd {
    $x = ($x * 1103515245 + 12345) % 2147483648;
    return $x;
}

sub word {
    my $r = rnd();
    my $len = 3 + $r % 8;
    my $w = '';
    $w .= chr(97 + (($r >> (3 * $_)) % 26)) for 0 .. $len - 1;
    return $w;
}

# A hash of arrays that grows, then loses its singletons.
my %h;
for my $i (1 .. $n) {
    push @{ $h{ word() } }, $i;
}
my $keys = scalar keys %h;
delete $h{$_} for grep { @{ $h{$_} } == 1 } keys %h;
my %lens;
$lens{ scalar @{ $h{$_} } }++ for keys %h;
printf "hash: %d keys, %d repeated; by count: %s\n", $keys, scalar(keys %h),
  join(' ', map { "$_=$lens{$_}" } (sort { $a <=> $b } keys %lens)[0 .. 3]);

# Regex captures over generated log lines.
my @lines;
for my $i (1 .. $n / 2) {
    push @lines, sprintf("%05d host-%s.%s GET /%s/%s?id=%d %d",
                         $i, word(), word(), word(), word(), rnd() % 10000, 200 + 100 * ((rnd() >> 16) % 4));
}
my (%status, %top);
for (@lines) {
    if (m{^(\d+) host-(\w+)\.(\w+) GET /(\w+)/(\w+)\?id=(\d+) (\d{3})$}) {
        $status{$7}++;
        $top{ substr($4, 0, 1) } += $6;
    }
}
print "status: ", join(' ', map { "$_=$status{$_}" } sort keys %status), "\n";
print "top: ", join(' ', map { "$_=$top{$_}" } (sort { $top{$b} <=> $top{$a} || $a cmp $b } keys %top)[0 .. 4]), "\n";

# Substitutions that grow and shrink strings.
my $text = join("\n", @lines[0 .. 999]);
(my $t2 = $text) =~ s/host-(\w+)/HOST<$1$1>/g;
$t2 =~ s/GET/G/g;
$t2 =~ tr/a-z/A-Z/;
printf "subst: %d -> %d bytes, %d lines with QQ\n", length $text, length $t2, scalar(grep { /QQ/ } split /\n/, $t2);

# Sorting: numeric, string, multi-key (Schwartzian transform).
my @nums = map { rnd() % 100000 } 1 .. $n;
my @sorted = sort { $a <=> $b } @nums;
my @words = map { word() } 1 .. $n / 2;
my @by = map { $_->[1] } sort { $a->[0] <=> $b->[0] or $a->[1] cmp $b->[1] } map { [ length, $_ ] } @words;
printf "sort: min %d max %d median %d; first %s last %s\n", $sorted[0], $sorted[-1], $sorted[ $#sorted / 2 ], $by[0], $by[-1];

# pack/unpack and a nested structure walked recursively.
my $packed = pack('N*', @sorted[0 .. 9999]);
my $sum = 0;
$sum += $_ for unpack('N*', $packed);
my $tree = {};
for my $w (@words[0 .. 4999]) {
    my $node = $tree;
    $node = $node->{$_} //= {} for split //, substr($w, 0, 4);
    $node->{'$'}++;
}
sub count_nodes {
    my ($t) = @_;
    my $c = 1;
    $c += ref $t->{$_} ? count_nodes($t->{$_}) : 0 for keys %$t;
    return $c;
}
printf "pack: %d bytes, sum %d; trie: %d nodes\n", length $packed, $sum, count_nodes($tree);
