"""Allocation workload for the real-program preload tests (tests/real).

Builds dicts, lists, strings, sets and objects, churns them, and runs the
same kind of work in threads.  The output is deterministic: nothing printed
depends on hash seeds, addresses, timing or thread scheduling, so the run
under mallard must print exactly what the run without it prints.

usage: python3 workload.py [n]     (n, the work size, defaults to 20000)
"""

import collections
import hashlib
import json
import sys
import threading


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def words(seed, n):
    """n pseudo-random words from a small linear congruential generator."""
    x = seed
    out = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        length = 3 + x % 9
        out.append("".join(chr(97 + (x >> (3 * k)) % 26) for k in range(length)))
    return out


def dict_churn(seed, n):
    """A dict that grows, is rewritten and shrinks; returns a summary."""
    d = {}
    for i, w in enumerate(words(seed, n)):
        d.setdefault(w, []).append(i)
    for k in list(d):
        if len(d[k]) == 1:
            del d[k]
        else:
            d[k] = tuple(d[k])
    counts = collections.Counter(len(v) for v in d.values())
    return len(d), sorted(counts.items())[:5]


def string_churn(seed, n):
    """Concatenation, join, split, replace, formatting and bytes round trips."""
    parts = []
    for i, w in enumerate(words(seed, n)):
        parts.append("%s-%05d-%s" % (w.upper(), i, w[::-1]))
    text = "|".join(parts)
    text = text.replace("A", "aa").replace("|", "\n")
    lines = text.split("\n")
    lines.sort(key=lambda s: (len(s), s))
    blob = "\n".join(lines).encode("utf-8")
    return len(lines), len(blob), digest(blob.decode("utf-8"))


class Node:
    __slots__ = ("key", "left", "right")

    def __init__(self, key):
        self.key = key
        self.left = None
        self.right = None


def tree_churn(seed, n):
    """An unbalanced binary search tree of objects, walked and dropped."""
    root = None
    for w in words(seed, n):
        if root is None:
            root = Node(w)
            continue
        cur = root
        while True:
            if w < cur.key:
                if cur.left is None:
                    cur.left = Node(w)
                    break
                cur = cur.left
            elif w > cur.key:
                if cur.right is None:
                    cur.right = Node(w)
                    break
                cur = cur.right
            else:
                break
    out, stack, cur = [], [], root
    while stack or cur is not None:
        while cur is not None:
            stack.append(cur)
            cur = cur.left
        cur = stack.pop()
        out.append(cur.key)
        cur = cur.right
    return len(out), out[:3], out[-3:]


def list_churn(seed, n):
    """Lists of lists, slicing, sorting, comprehension and JSON."""
    rows = [[(seed * 31 + i * j) % 1000 for j in range(8)] for i in range(n)]
    rows.sort(key=lambda r: (r[3], r[5], r))
    flat = [v for r in rows for v in r if v % 3]
    enc = json.dumps({"rows": rows[: n // 10], "sum": sum(flat)}, sort_keys=True)
    back = json.loads(enc)
    return len(flat), back["sum"], digest(enc)


def worker(tid, n, results):
    # Each thread writes only its own slot, so the printed result does not
    # depend on the order in which the threads run.
    results[tid] = (
        dict_churn(1000 + tid, n),
        string_churn(2000 + tid, n // 2),
        tree_churn(3000 + tid, n // 2),
        list_churn(4000 + tid, n // 4),
    )


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    print("single-threaded")
    print(" dict  ", dict_churn(1, n))
    print(" string", string_churn(2, n))
    print(" tree  ", tree_churn(3, n))
    print(" list  ", list_churn(4, n // 2))

    nthreads = 4
    results = [None] * nthreads
    threads = [threading.Thread(target=worker, args=(t, n // 2, results)) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tid, r in enumerate(results):
        print("thread", tid)
        for name, value in zip(("dict  ", "string", "tree  ", "list  "), r):
            print(" " + name, value)

    # Many short-lived threads: per-thread allocator caches come and go.
    total = collections.Counter()
    lock = threading.Lock()

    def short(tid):
        c = collections.Counter(w[0] for w in words(tid, 500))
        with lock:
            total.update(c)

    for batch in range(4):
        ts = [threading.Thread(target=short, args=(batch * 16 + k,)) for k in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    print("short threads", sum(total.values()), sorted(total.items())[:4])
    return 0


if __name__ == "__main__":
    sys.exit(main())
