#!/usr/bin/env python3
"""Runs one fixture under valgrind memcheck and under mallard and compares
what a user reads: each definite and indirect leak record (bytes, blocks) and each bad
free (valgrind's Mismatched free() / delete / delete [] and Invalid free())
must appear in mallard's JSON report with the same frame 0, demangled
function, file and line, and for errors the same frame 0 of the allocation
stack.  valgrind's frame 0 is its first frame outside its own preload
(vgpreload_*.so: its malloc and operator new replacements); mallard's is
the caller of the allocation function already.

valgrind runs with --run-libc-freeres=no, since mallard does not run
libc's freeres either.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

CASES = {
    "registry": [],
    "cxx_mismatch": [],
    "interior_free": [],
    "inline_leak": [],
    "cxx_owners": [],
}
LEAK_KINDS = {"Leak_DefinitelyLost": "definite", "Leak_IndirectlyLost": "indirect"}

# valgrind's error kinds and mallard's
ERROR_KINDS = {"MismatchedFree": ("mismatched-free",), "InvalidFree": ("invalid-free", "invalid-realloc")}


def vg_frame0(stack):
    for fr in stack.findall("frame"):
        obj = fr.findtext("obj") or ""
        if "vgpreload" in os.path.basename(obj):
            continue
        line = fr.findtext("line")
        return (fr.findtext("fn"), fr.findtext("file"), int(line) if line else None)
    return None


def ml_frame0(stack):
    if not stack:
        return None
    f = stack[0]
    return (f["function"], f["file"], f["line"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("--lib", required=True)
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        print("FAIL: valgrind is not installed")
        sys.exit(1)
    cmd = [os.path.join(a.bin, a.case)] + CASES[a.case]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLARD_") and k != "LD_PRELOAD"}
    env["LC_ALL"] = "C"
    tmp = tempfile.mkdtemp(prefix="mallard-vgf-")
    xml = os.path.join(tmp, "vg.xml")
    subprocess.run(["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect", "--run-libc-freeres=no", "--xml=yes", "--xml-file=" + xml,
                    "--error-exitcode=0"] + cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=600)
    root = ET.parse(xml).getroot()
    menv = dict(env, LD_PRELOAD=a.lib, MALLARD_FORMAT="json", MALLARD_REPORT=os.path.join(tmp, "r.%p.json"))
    subprocess.run(cmd, env=menv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    reports = [f for f in os.listdir(tmp) if f.startswith("r.")]
    if len(reports) != 1:
        print("FAIL: expected one mallard report, found %s" % reports)
        sys.exit(1)
    with open(os.path.join(tmp, reports[0])) as f:
        rep = json.load(f)

    failures = 0
    compared = 0
    for err in root.findall("error"):
        kind = err.findtext("kind")
        stacks = err.findall("stack")
        if kind in LEAK_KINDS:
            xw = err.find("xwhat")
            nbytes = int(xw.findtext("leakedbytes"))
            nblocks = int(xw.findtext("leakedblocks"))
            want = vg_frame0(stacks[0])
            mkind = LEAK_KINDS[kind]
            # valgrind's bytes of a definite record include what it owns
            # ("444 (168 direct, 276 indirect)"); mallard's JSON keeps the
            # owned bytes in indirect_bytes
            hit = [g for g in rep["leaks"] if g["kind"] == mkind and g["bytes"] + g.get("indirect_bytes", 0) == nbytes
                   and g["blocks"] == nblocks and ml_frame0(g["stack"]) == want]
            compared += 1
            if not hit:
                failures += 1
                print("FAIL: valgrind: %d bytes in %d blocks %s at %s; mallard's groups: %s" %
                      (nbytes, nblocks, mkind, want, [(g["kind"], g["bytes"], g["blocks"], ml_frame0(g["stack"]))
                                                      for g in rep["leaks"]]))
            else:
                print("same: %d bytes in %d blocks %s at %s" % (nbytes, nblocks, mkind, want))
        elif kind in ERROR_KINDS:
            want = vg_frame0(stacks[0])
            want_alloc = vg_frame0(stacks[1]) if len(stacks) > 1 else None
            hit = [e for e in rep["errors"] if e["kind"] in ERROR_KINDS[kind] and ml_frame0(e["stack"]) == want and
                   ml_frame0(e["alloc_stack"]) == want_alloc]
            compared += 1
            if not hit:
                failures += 1
                print("FAIL: valgrind: %s at %s, allocated at %s; mallard's errors: %s" %
                      (kind, want, want_alloc, [(e["kind"], ml_frame0(e["stack"]), ml_frame0(e["alloc_stack"]))
                                                for e in rep["errors"]]))
            else:
                print("same: %s at %s, allocated at %s" % (kind, want, want_alloc))
    ndef = sum(1 for e in root.findall("error") if e.findtext("kind") in LEAK_KINDS)
    nerr = sum(1 for e in root.findall("error") if e.findtext("kind") in ERROR_KINDS)
    mdef = sum(1 for g in rep["leaks"] if g["kind"] in ("definite", "indirect"))
    merr = sum(1 for e in rep["errors"] if e["kind"] in sum(ERROR_KINDS.values(), ()))
    if (ndef, nerr) != (mdef, merr):
        failures += 1
        print("FAIL: valgrind has %d definite and indirect records and %d bad frees, mallard %d and %d" % (ndef, nerr, mdef, merr))
    if not compared:
        failures += 1
        print("FAIL: valgrind reported nothing to compare")
    if failures:
        print("%d failed" % failures)
        sys.exit(1)
    print("%d compared, all the same" % compared)


if __name__ == "__main__":
    main()
