#!/usr/bin/env python3
"""Runs one trace fixture under libmallard.so and asserts its JSON report.

Each case names a program, what its report must say (summary counts, leak
groups with their frame-0 function and file:line, errors with their three
stacks, how the process ended) and whether its stdout and exit status must
match a run without mallard.  Source lines are found by their @MARKER
comments, so editing a fixture does not silently break its expectations.
Every report is validated against docs/report.schema.json.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print("FAIL: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def marker_line(src_dir, filename, marker):
    path = os.path.join(src_dir, "tests", "programs", filename)
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if "@" + marker + " " in line or line.rstrip().endswith("@" + marker + " */"):
                return i
    raise SystemExit("marker @%s not found in %s" % (marker, path))


def frame_matches(frame, function, filename, line):
    fn = frame.get("function") or ""
    if function not in fn:
        return False
    if filename is not None and frame.get("file") != filename:
        return False
    if line is not None and frame.get("line") != line:
        return False
    return True


def validate_schema(report, src):
    try:
        import jsonschema
    except ImportError:
        fail("python3-jsonschema is not installed; cannot validate the report")
        return
    with open(os.path.join(src, "docs", "report.schema.json")) as f:
        schema = json.load(f)
    try:
        jsonschema.validate(report, schema)
    except jsonschema.ValidationError as e:
        fail("report does not validate against the schema: %s" % e.message)


def run(cmd, env, cwd=None, timeout=120):
    return subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def load_reports(pattern):
    out = []
    for p in sorted(glob.glob(pattern)):
        with open(p) as f:
            text = f.read()
        try:
            out.append(json.loads(text))
        except json.JSONDecodeError as e:
            fail("%s is not valid JSON: %s" % (p, e))
    return out


def expect_summary(rep, kind, bytes_, blocks):
    got = rep["summary"][kind]
    check(got["bytes"] == bytes_ and got["blocks"] == blocks,
          "summary.%s is %s, expected bytes=%d blocks=%d" % (kind, got, bytes_, blocks))


def expect_group(rep, kind, bytes_, blocks, frames):
    """frames: list of (index, function, file, line) that must match."""
    for g in rep["leaks"]:
        if g["kind"] != kind or g["bytes"] != bytes_ or g["blocks"] != blocks:
            continue
        if all(i < len(g["stack"]) and frame_matches(g["stack"][i], fn, fl, ln) for i, fn, fl, ln in frames):
            return g
    fail("no %s group of %d bytes in %d blocks with frames %s; groups: %s" %
         (kind, bytes_, blocks, frames, json.dumps(rep["leaks"], indent=1)[:3000]))
    return None


def expect_error(rep, kind, **stacks):
    for e in rep["errors"]:
        if e["kind"] != kind:
            continue
        ok = True
        for key, (fn, fl, ln) in stacks.items():
            st = e.get(key) or []
            if not st or not frame_matches(st[0], fn, fl, ln):
                ok = False
        if ok:
            return e
    fail("no %s error with %s; errors: %s" % (kind, stacks, json.dumps(rep["errors"], indent=1)[:3000]))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("--lib", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    a = ap.parse_args()
    case, src = a.case, a.src
    L = lambda f, m: marker_line(src, f, m)
    tmp = tempfile.mkdtemp(prefix="mallard-trace-")
    base_env = dict(os.environ)
    for k in list(base_env):
        if k.startswith("MALLARD_") or k == "LD_PRELOAD":
            del base_env[k]
    base_env["LC_ALL"] = "C"
    env = dict(base_env, LD_PRELOAD=a.lib, MALLARD_FORMAT="json",
               MALLARD_REPORT=os.path.join(tmp, "report.%p.json"))

    prog = os.path.join(a.bin, case)
    cmd = [prog]
    compare_native = True
    if case == "dl_leak":
        cmd = [prog, os.path.join(a.bin, "libdl_leak_lib.so")]
        if not os.path.exists(cmd[1]):
            cmd[1] = os.path.join(a.bin, "dl_leak_lib.so")
    elif case in ("double_free", "bad_free"):
        compare_native = False  # glibc aborts on these; mallard reports and goes on
    elif case == "tag_leak":
        pass
    elif case in ("global_reach", "tls_reach"):
        env["MALLARD_SHOW"] = "all"  # JSON lists reachable groups only then
    elif case == "exitcode":
        cmd = [os.path.join(a.bin, "simple_leak")]
        env["MALLARD_EXITCODE"] = "23"
        compare_native = False
    elif case == "suppressions":
        cmd = [os.path.join(a.bin, "simple_leak")]
        supp = os.path.join(tmp, "supp.txt")
        with open(supp, "w") as f:
            f.write("# the known leak\nleak:leak_*\n")
        env["MALLARD_SUPPRESSIONS"] = supp
    elif case == "abort_on_error":
        cmd = [os.path.join(a.bin, "double_free")]
        env["MALLARD_ON_ERROR"] = "abort"
        compare_native = False
    elif case == "fatal_signal":
        cmd = [os.path.join(a.bin, "simple_leak")]
        compare_native = False
    elif case == "show_all":
        cmd = [os.path.join(a.bin, "global_reach")]
        env["MALLARD_FORMAT"] = "text"
        env["MALLARD_SHOW"] = "all"
    elif case == "clean_git":
        cmd = ["git", "--version"]
    elif case == "clean_bash":
        cmd = ["bash", "-c", "true"]

    if case == "fatal_signal":
        # the program dies of SIGSEGV after leaking: the report is written
        # from the signal handler, then the signal kills it as before
        env["ML_FIXTURE_SEGV"] = "1"
    traced = run(cmd, env, cwd=tmp)
    sys.stderr.write(traced.stderr.decode(errors="replace")[-4000:])
    if compare_native:
        native = run(cmd, base_env, cwd=tmp)
        check(traced.stdout == native.stdout, "stdout differs from the run without mallard: %r vs %r" %
              (traced.stdout[:200], native.stdout[:200]))
        check(traced.returncode == native.returncode,
              "exit status %d differs from %d without mallard" % (traced.returncode, native.returncode))
    if case == "show_all":
        text = open(glob.glob(os.path.join(tmp, "report.*.json"))[0]).read()
        check("still reachable: 64 bytes in 1 block" in text, "MALLARD_SHOW=all does not list the reachable group")
        check("#0 main global_reach.c:%d" % L("global_reach.c", "KEEP") in text, "reachable group's frame 0 missing")
        check(text.startswith("==mallard== "), "text report expected")
        return finish()
    check(b"mallard:" not in traced.stderr or case in ("double_free", "bad_free", "abort_on_error"),
          "unexpected mallard: line on stderr")

    reports = load_reports(os.path.join(tmp, "report.*.json"))
    if case != "fork_leak":
        if not check(len(reports) == 1, "expected one report, found %d" % len(reports)):
            return finish()
    for r in reports:
        validate_schema(r, src)
    rep = reports[0] if reports else None

    if case == "simple_leak":
        expect_summary(rep, "definite", 100, 1)
        expect_summary(rep, "indirect", 0, 0)
        expect_group(rep, "definite", 100, 1, [(0, "leak_one", "simple_leak.c", L("simple_leak.c", "LEAK"))])
        check(rep["exit"] == {"how": "exit", "status": 0}, "exit is %s" % rep["exit"])
        check(rep["mallard"] == 1 and rep["backend"] == "freelist", "header fields wrong")
    elif case == "list_leak":
        expect_summary(rep, "definite", 48, 1)
        expect_summary(rep, "indirect", 432, 9)
        ln = L("list_leak.c", "NODE")
        expect_group(rep, "definite", 48, 1, [(0, "push", "list_leak.c", ln)])
        expect_group(rep, "indirect", 432, 9, [(0, "push", "list_leak.c", ln)])
    elif case == "global_reach":
        expect_summary(rep, "definite", 0, 0)
        expect_group(rep, "reachable", 64, 1, [(0, "main", "global_reach.c", L("global_reach.c", "KEEP"))])
    elif case == "tls_reach":
        expect_summary(rep, "definite", 0, 0)
        expect_group(rep, "reachable", 48, 1, [(0, "worker", "tls_reach.c", L("tls_reach.c", "TLS"))])
    elif case == "xor_leak":
        expect_summary(rep, "definite", 72, 1)
        expect_group(rep, "definite", 72, 1, [(0, "hide", "xor_leak.c", L("xor_leak.c", "HIDE"))])
    elif case == "double_free":
        check(traced.stdout == b"still running\n", "program did not keep running")
        check(traced.returncode == 0, "exit status %d" % traced.returncode)
        check(rep["summary"]["errors"] == 1, "errors = %s" % rep["summary"]["errors"])
        e = expect_error(rep, "double-free",
                         stack=("second", "double_free.c", L("double_free.c", "FREE2")),
                         alloc_stack=("make", "double_free.c", L("double_free.c", "ALLOC")),
                         free_stack=("first", "double_free.c", L("double_free.c", "FREE1")))
        if e:
            check(e["bytes"] == 32, "double free bytes = %s" % e["bytes"])
    elif case == "bad_free":
        check(traced.stdout == b"realloc refused\n", "stdout %r" % traced.stdout)
        check(traced.returncode == 0, "exit status %d" % traced.returncode)
        check(rep["summary"]["errors"] == 3, "errors = %s" % rep["summary"]["errors"])
        expect_error(rep, "invalid-free", stack=("free_interior", "bad_free.c", L("bad_free.c", "INTERIOR")))
        expect_error(rep, "invalid-free", stack=("free_stack", "bad_free.c", L("bad_free.c", "STACK")))
        expect_error(rep, "invalid-realloc", stack=("realloc_freed", "bad_free.c", L("bad_free.c", "REALLOC")),
                     alloc_stack=("main", "bad_free.c", None), free_stack=("main", "bad_free.c", None))
        expect_summary(rep, "definite", 0, 0)
    elif case == "threads_leak":
        expect_summary(rep, "definite", 4600, 4)
        expect_group(rep, "definite", 4600, 4, [(0, "leaker", "threads_leak.c", L("threads_leak.c", "THREAD"))])
    elif case == "fork_leak":
        check(len(reports) == 2, "expected two reports (parent and child), found %d" % len(reports))
        by_pid = {r["pid"]: r for r in reports}
        parent = [r for r in reports if r["ppid"] not in by_pid]
        child = [r for r in reports if r["ppid"] in by_pid]
        if check(len(parent) == 1 and len(child) == 1, "cannot tell parent from child"):
            ln = L("fork_leak.c", "FORKLEAK")
            expect_summary(parent[0], "definite", 111, 1)
            expect_group(parent[0], "definite", 111, 1, [(0, "leak", "fork_leak.c", ln)])
            expect_summary(child[0], "definite", 222, 1)
            expect_group(child[0], "definite", 222, 1, [(0, "leak", "fork_leak.c", ln)])
    elif case == "dl_leak":
        expect_summary(rep, "definite", 333, 1)
        g = expect_group(rep, "definite", 333, 1,
                         [(0, "lib_leak", "dl_leak_lib.c", L("dl_leak_lib.c", "LIBLEAK"))])
        if g:
            check("dl_leak_lib" in (g["stack"][0].get("object") or ""), "frame 0 object %s" % g["stack"][0])
    elif case == "cxx_new":
        expect_summary(rep, "definite", 24 + 200, 2)
        # frame 0 is operator new / new[] (it calls malloc); frame 1 is the caller
        expect_group(rep, "definite", 24, 1, [(1, "leak_new", "cxx_new.cpp", L("cxx_new.cpp", "NEW"))])
        expect_group(rep, "definite", 200, 1,
                     [(1, "leak_new_array", "cxx_new.cpp", L("cxx_new.cpp", "NEWARR"))])
    elif case == "exit_leak":
        expect_summary(rep, "definite", 77, 1)
        expect_group(rep, "definite", 77, 1, [(0, "leak", "exit_leak.c", L("exit_leak.c", "EXITLEAK"))])
        check(rep["exit"] == {"how": "_exit", "status": 0}, "exit is %s" % rep["exit"])
    elif case == "big_leak":
        expect_summary(rep, "definite", 100 << 20, 1)
        expect_group(rep, "definite", 100 << 20, 1, [(0, "leak", "big_leak.c", L("big_leak.c", "BIG"))])
    elif case == "tag_leak":
        expect_summary(rep, "definite", 96, 2)
        g = expect_group(rep, "definite", 40, 1, [(0, "parse", "tag_leak.c", L("tag_leak.c", "PARSER"))])
        if g:
            check(g["tag"] == "parser", "tag of the parser leak is %r" % g["tag"])
        g = expect_group(rep, "definite", 56, 1, [(0, "parse", "tag_leak.c", L("tag_leak.c", "UNTAGGED"))])
        if g:
            check(g["tag"] is None, "untagged leak has tag %r" % g["tag"])
        tags = {t["tag"]: t for t in rep["tags"]}
        check(tags.get("parser", {}).get("allocs") == 1 and tags["parser"]["current_bytes"] == 40,
              "parser tag stats %s" % tags.get("parser"))
        check(tags.get("lexer", {}).get("allocs") == 1 and tags["lexer"]["current_bytes"] == 0 and
              tags["lexer"]["peak_bytes"] == 300, "lexer tag stats %s" % tags.get("lexer"))
    elif case == "exitcode":
        check(traced.returncode == 23, "exit status %d, expected MALLARD_EXITCODE=23" % traced.returncode)
        expect_summary(rep, "definite", 100, 1)
        check(rep["exit"]["status"] == 0, "exit.status records the program's own status")
    elif case == "suppressions":
        expect_summary(rep, "definite", 0, 0)
        check(rep["summary"]["suppressed"]["bytes"] >= 100, "suppressed %s" % rep["summary"]["suppressed"])
    elif case == "abort_on_error":
        check(traced.returncode == -6, "expected death by SIGABRT, got %d" % traced.returncode)
        check(rep["exit"] == {"how": "signal", "status": 6}, "exit is %s" % rep["exit"])
        check(rep["summary"]["errors"] == 1, "errors = %s" % rep["summary"]["errors"])
    elif case == "fatal_signal":
        check(traced.returncode == -11, "expected death by SIGSEGV, got %d" % traced.returncode)
        check(rep["exit"] == {"how": "signal", "status": 11}, "exit is %s" % rep["exit"])
        expect_summary(rep, "definite", 100, 1)
    elif case in ("clean_git", "clean_bash"):
        expect_summary(rep, "definite", 0, 0)
        check(rep["summary"]["errors"] == 0, "errors in a clean program")
    else:
        raise SystemExit("unknown case " + case)
    return finish()


def finish():
    if FAILURES:
        print("%d failed" % len(FAILURES))
        sys.exit(1)
    print("ok")
    sys.exit(0)


if __name__ == "__main__":
    main()
