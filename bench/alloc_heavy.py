"""bench/alloc_heavy.py: an allocation-heavy Python program for bench/run.

Run by the unmodified /usr/bin/python3 under every contender.  It does what
allocation-bound Python code does: a dict of small records replaced in
place, tuple trees built and dropped, strings formatted and joined, lists of
lists.  Everything is derived from a fixed-seed generator and summed without
hash(), so the output line is the same under every allocator.

Usage: python3 alloc_heavy.py N
"""
import random
import sys


def build(depth):
    if depth == 0:
        return None
    return (build(depth - 1), build(depth - 1), depth)


def main():
    n = int(sys.argv[1])
    rng = random.Random(12345)
    total = 0

    table = {}
    for i in range(n):
        key = "key%d" % rng.randrange(n // 4 + 1)
        rec = {"id": i, "name": "x" * rng.randrange(1, 64), "tags": [i, i + 1, str(i)]}
        old = table.get(key)
        if old is not None:
            total += old["id"] % 1000003 + len(old["name"])
        table[key] = rec

    for _ in range(n // 4000 + 1):
        total += build(10)[2]

    parts = [str(i * 7) for i in range(n)]
    total += len(",".join(parts))
    del parts

    rows = [list(range(i % 50)) for i in range(n // 4)]
    total += sum(len(r) for r in rows)
    del rows

    words = sorted("w%07d" % rng.randrange(10 * n) for _ in range(n // 2))
    total += len(set(words))

    print("bench=python ops=%d checksum=%016x live=%d" % (n, total & (2**64 - 1), len(table)))


main()
