#!/usr/bin/env python3
"""tests/procstart: the tracer's per-process work (issue 10).

exit_regs MODE (exit, return, _exit): mallard's definite and indirect
figures and each definite group's frame 0 equal valgrind memcheck's
(--leak-check=full --run-libc-freeres=no), the block whose only pointer is
in callee-saved registers at the exit call is reachable, and libunwind is
never loaded: the own unwinder walks every stack and finds the exit frame
(ld.so's LD_DEBUG=files log names every object it loads).

nofde: a program without unwind tables: libunwind is loaded on demand and
the leak's stack is inner, outer, main."""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def mallard_run(lib, cmd, tmp):
    env = dict(os.environ, LD_PRELOAD=lib, MALLARD_FORMAT="json", LD_DEBUG="files",
               LD_DEBUG_OUTPUT=os.path.join(tmp, "ld"))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    err = r.stderr
    if "{" not in err:
        fail("no JSON report: %r" % err[-2000:])
    rep = json.loads(err[err.index("{"):])
    loaded = ""
    for f in glob.glob(os.path.join(tmp, "ld.*")):
        loaded += open(f, errors="replace").read()
    return r, rep, loaded


def frame0(stack):
    for f in stack:
        if f.get("function") and "mallard" not in (f.get("object") or ""):
            return f["function"]
    return None


def valgrind(cmd):
    out = subprocess.run(["valgrind", "--leak-check=full", "--run-libc-freeres=no",
                          "--show-leak-kinds=definite,indirect"] + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300).stderr.decode(errors="replace")
    if "LEAK SUMMARY" not in out:
        fail("valgrind gave no leak summary:\n" + out[-2000:])

    def grab(what):
        m = re.search(what + r" lost: ([\d,]+) bytes in ([\d,]+) blocks", out)
        return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else (0, 0)

    frames = sorted(m.group(1) for m in re.finditer(
        r"are definitely lost in loss record[^\n]*\n[^\n]*at 0x[0-9A-F]+: \w+ \([^\n]*\n[^\n]*by 0x[0-9A-F]+: (\w+)", out))
    return grab("definitely"), grab("indirectly"), frames


def main():
    case, lib, binary = sys.argv[1], sys.argv[2], sys.argv[3]
    with tempfile.TemporaryDirectory() as tmp:
        if case == "nofde":
            r, rep, loaded = mallard_run(lib, [binary], tmp)
            if r.returncode != 0 or r.stdout != "nofde ok\n":
                fail("the program changed: rc %d, stdout %r" % (r.returncode, r.stdout))
            if "libunwind.so.8" not in loaded:
                fail("libunwind was not loaded for stacks the own unwinder cannot walk")
            d = rep["summary"]["definite"]
            if (d["bytes"], d["blocks"]) != (24, 1):
                fail("definite %r, expected 24 bytes in 1 block" % d)
            leak = [g for g in rep["leaks"] if g["kind"] == "definite"][0]
            names = [f["function"] for f in leak["stack"] if "mallard" not in (f.get("object") or "")][:3]
            if names != ["inner", "outer", "main"]:
                fail("stack %r, expected inner, outer, main" % names)
            print("nofde ok: libunwind loaded on demand, stack", names)
            return
        mode = case
        cmd = [binary, mode]
        r, rep, loaded = mallard_run(lib, cmd, tmp)
        if r.returncode != 0 or r.stdout != "exit_regs %s ok\n" % mode:
            fail("the program changed: rc %d, stdout %r" % (r.returncode, r.stdout))
        if "libunwind" in loaded:
            fail("libunwind was loaded, though the own unwinder walks every stack here:\n" +
                 "\n".join(l for l in loaded.splitlines() if "libunwind" in l))
        vd, vi, vframes = valgrind(cmd)
        s = rep["summary"]
        md = (s["definite"]["bytes"], s["definite"]["blocks"])
        mi = (s["indirect"]["bytes"], s["indirect"]["blocks"])
        if (md, mi) != (vd, vi):
            fail("mallard definite %r indirect %r, valgrind %r %r" % (md, mi, vd, vi))
        mframes = sorted(frame0(g["stack"]) for g in rep["leaks"] if g["kind"] == "definite"
                         for _ in range(g["blocks"]))
        if mframes != vframes or not mframes:
            fail("frame 0 of the definite blocks: mallard %r, valgrind %r" % (mframes, vframes))
        print("%s ok: definite %r indirect %r as valgrind, frames %r, libunwind not loaded" % (mode, md, mi, mframes))


main()
