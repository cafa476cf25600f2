#!/usr/bin/env python3
"""tests/trace/livemem.py: the tracer's bytes per live block, beside the depot.

Runs bench_livemem N (bench/livemem.c) under the preload with the tracer off and on and divides the
difference in VmRSS by N.  With --max B, fails when any figure is above B
bytes (issue 10: at most 48 bytes per live block).  The figure does not
depend on the machine's load: RSS, not time.

Usage: livemem.py --lib libmallard.so --bin bench_livemem [--max 48] N...
"""
import argparse
import os
import re
import subprocess
import sys


def rss_kb(lib, binary, n, trace):
    env = dict(os.environ, LD_PRELOAD=lib, MALLARD_TRACE=trace)
    for k in list(env):
        if k.startswith("MALLARD_") and k != "MALLARD_TRACE":
            del env[k]
    out = subprocess.run([binary, str(n)], env=env, capture_output=True, text=True, timeout=120)
    m = re.search(r"rss_kb=(\d+)", out.stdout)
    if out.returncode != 0 or not m:
        sys.exit("livemem %d (MALLARD_TRACE=%s) failed: rc %d, stdout %r, stderr %r"
                 % (n, trace, out.returncode, out.stdout, out.stderr[-2000:]))
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--max", type=float, default=None)
    ap.add_argument("n", type=int, nargs="+")
    a = ap.parse_args()
    bad = 0
    for n in a.n:
        off = rss_kb(a.lib, a.bin, n, "0")
        on = rss_kb(a.lib, a.bin, n, "1")
        per = (on - off) * 1024.0 / n
        ok = a.max is None or per <= a.max
        bad += not ok
        print("%d blocks: VmRSS %d KiB untraced, %d KiB traced: %.1f bytes per live block%s"
              % (n, off, on, per, "" if ok else " (over %g)" % a.max))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
