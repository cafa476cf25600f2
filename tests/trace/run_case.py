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
import re
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
    ap.add_argument("--backend", default=None)
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

    # "case@backend": the same case and checks under another backend
    backend = a.backend
    if "@" in case:
        case, backend = case.split("@", 1)
    if backend:
        env["MALLARD_BACKEND"] = backend
    if case in ("end_pointer", "malloc_zero", "anon_merge"):
        env["MALLARD_SHOW"] = "all"  # their reachable groups are checked too
    prog = os.path.join(a.bin, case)
    cmd = [prog]
    compare_native = True
    text_report = None
    if case == "dead_frame_exit":
        cmd = [os.path.join(a.bin, "dead_frame"), "_exit"]
    if case.startswith("thread_deadstack_"):
        cmd = [os.path.join(a.bin, "thread_deadstack"), case[len("thread_deadstack_"):]]
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
    elif case in ("registry_supp_name", "registry_supp_file", "registry_supp_mangled"):
        cmd = [os.path.join(a.bin, "registry")]
        supp = os.path.join(tmp, "supp.txt")
        pattern = {"registry_supp_name": "app::Registry::add", "registry_supp_file": "registry.cc",
                   "registry_supp_mangled": "_ZN3app8Registry3addEl"}[case]
        with open(supp, "w") as f:
            f.write("# an LSan suppression file, unchanged\nleak:%s\n" % pattern)
        env["MALLARD_SUPPRESSIONS"] = supp
    elif case in ("interior_free",):
        compare_native = False  # glibc aborts on free(p + 16)
    elif case.startswith("page_fault_"):
        cmd = [os.path.join(a.bin, "page_fault"), case[len("page_fault_"):].replace("_", "-")]
        env["MALLARD_BACKEND"] = "page"
        if case == "page_fault_overflow":
            env["MALLARD_PAGE_ALIGN"] = "1"
        if case == "page_fault_underflow":
            env["MALLARD_PAGE_GUARD"] = "before"
        compare_native = False
    elif case == "clean_git":
        cmd = ["git", "--version"]
    elif case == "clean_bash":
        cmd = ["bash", "-c", "true"]

    if case == "fatal_signal":
        # the program dies of SIGSEGV after leaking: the report is written
        # from the signal handler, then the signal kills it as before
        env["ML_FIXTURE_SEGV"] = "1"
    traced = run(cmd, env, cwd=tmp)
    if case in ("inline_leak", "registry", "cxx_mismatch", "interior_free") or case.startswith("page_fault_"):
        # the same run's text report, for what only text shows or hides
        tenv = dict(env, MALLARD_FORMAT="text", MALLARD_REPORT=os.path.join(tmp, "text.%p.txt"))
        run(cmd, tenv, cwd=tmp)
        texts = glob.glob(os.path.join(tmp, "text.*.txt"))
        text_report = open(texts[0]).read() if texts else ""
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
    check(b"mallard:" not in traced.stderr or case in ("double_free", "bad_free", "abort_on_error", "interior_free",
                                                       "cxx_mismatch") or case.startswith("page_fault_"),
          "unexpected mallard: line on stderr")

    if case in ("interior_free", "cxx_mismatch") or case.startswith("page_fault_"):
        pass  # these report errors on stderr by design
    reports = load_reports(os.path.join(tmp, "report.*.json"))
    if case not in ("fork_leak", "stats_threads"):
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
        check(rep["mallard"] == 1 and rep["backend"] == (backend or "freelist"), "header fields wrong")
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
    elif case == "stats_threads":
        stats_threads(reports, L)
    elif case == "dl_leak":
        expect_summary(rep, "definite", 333, 1)
        g = expect_group(rep, "definite", 333, 1,
                         [(0, "lib_leak", "dl_leak_lib.c", L("dl_leak_lib.c", "LIBLEAK"))])
        if g:
            check("dl_leak_lib" in (g["stack"][0].get("object") or ""), "frame 0 object %s" % g["stack"][0])
    elif case == "cxx_new":
        expect_summary(rep, "definite", 24 + 200, 2)
        # mallard's own operator new and new[]: frame 0 is their caller, demangled
        g = expect_group(rep, "definite", 24, 1, [(0, "leak_new()", "cxx_new.cpp", L("cxx_new.cpp", "NEW"))])
        if g:
            check(g["stack"][0]["function"] == "leak_new()" and g["stack"][0]["mangled"] == "_ZL8leak_newv",
                  "frame 0 %s" % g["stack"][0])
        expect_group(rep, "definite", 200, 1,
                     [(0, "leak_new_array()", "cxx_new.cpp", L("cxx_new.cpp", "NEWARR"))])
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
    elif case == "registry":
        expect_summary(rep, "definite", 56, 2)
        g = expect_group(rep, "definite", 48, 1,
                         [(0, "app::Registry::add(int)", "registry.cc", L("registry.cc", "ADDINT")),
                          (1, "main", "registry.cc", None)])
        if g:
            check(g["stack"][0]["function"] == "app::Registry::add(int)", "frame 0 %s" % g["stack"][0])
            check(g["stack"][0]["mangled"] == "_ZN3app8Registry3addEi", "mangled %s" % g["stack"][0])
            check(g["stack"][1]["function"] == "main" and g["stack"][1]["mangled"] is None, "frame 1 %s" % g["stack"][1])
        g = expect_group(rep, "definite", 8, 1,
                         [(0, "app::Registry::add(long)", "registry.cc", L("registry.cc", "ADDLONG"))])
        if g:
            check(g["stack"][0]["mangled"] == "_ZN3app8Registry3addEl", "mangled %s" % g["stack"][0])
        check("#0 app::Registry::add(int) registry.cc:%d" % L("registry.cc", "ADDINT") in text_report,
              "text report lacks the demangled frame 0:\n" + text_report[-2000:])
        check("_ZN3app" not in text_report, "text report shows a mangled name")
    elif case == "registry_supp_name" or case == "registry_supp_file":
        expect_summary(rep, "definite", 0, 0)
        expect_summary(rep, "suppressed", 56, 2)
    elif case == "registry_supp_mangled":
        expect_summary(rep, "definite", 48, 1)
        expect_summary(rep, "suppressed", 8, 1)
    elif case == "cxx_mismatch":
        check(traced.stdout == b"mismatched\n", "stdout %r" % traced.stdout)
        check(rep["summary"]["errors"] == 3, "errors = %s" % rep["summary"]["errors"])
        expect_summary(rep, "definite", 0, 0)
        F = "cxx_mismatch.cpp"
        for fn, ln, afn, aln, alloc_by, freed_by, thread in (
                ("free_pair(Pair*)", "FREEPAIR", "make_pair()", "NEWPAIR", "new", "free", None),
                ("delete_array(int*)", "DELARR", "make_array()", "NEWARR", "new[]", "delete", None),
                ("delete_buffer(char*)", "DELBUF", "make_buffer()", "MALLOCBUF", "malloc", "delete[]", "mm-worker")):
            e = expect_error(rep, "mismatched-free", stack=(fn, F, L(F, ln)), alloc_stack=(afn, F, L(F, aln)))
            if not e:
                continue
            check(e["stack"][0]["function"] == fn, "frame 0 %s" % e["stack"][0]["function"])
            check(e["block"] and e["block"]["allocated_by"] == alloc_by and e["freed_by"] == freed_by,
                  "%s: block %s freed_by %s" % (fn, e["block"], e["freed_by"]))
            check(e["block"]["offset"] == 0 and e["bytes"] == {"new": 16, "new[]": 40, "malloc": 40}[alloc_by],
                  "%s: bytes %s block %s" % (fn, e["bytes"], e["block"]))
            check(e["thread"]["tid"] > 0, "%s: tid %s" % (fn, e["thread"]))
            if thread:
                check(e["thread"]["name"] == thread and e["thread"]["tid"] != rep["pid"],
                      "%s: thread %s" % (fn, e["thread"]))
                check(re.search(r"freed by delete\[\] in thread \d+ \(%s\)" % thread, text_report) is not None,
                      "text report does not name the thread")
            else:
                check(e["thread"]["tid"] == rep["pid"], "%s: thread %s, main is %d" % (fn, e["thread"], rep["pid"]))
        check("allocated by new[], freed by delete" in text_report, "text lacks the mismatch:\n" + text_report[-3000:])
    elif case == "interior_free":
        check(traced.stdout == b"realloc refused\n", "stdout %r" % traced.stdout)
        check(rep["summary"]["errors"] == 2, "errors = %s" % rep["summary"]["errors"])
        F = "interior_free.c"
        for kind, fn, ln in (("invalid-free", "free_inside", "FREEIN"), ("invalid-realloc", "realloc_inside", "REALLOCIN")):
            e = expect_error(rep, kind, stack=(fn, F, L(F, ln)), alloc_stack=("make", F, L(F, "CALLOC")))
            if e:
                b = e["block"]
                check(b is not None and b["bytes"] == 96 and b["offset"] == 16 and b["allocated_by"] == "malloc",
                      "%s: block %s" % (kind, b))
                check(e["bytes"] == 96 and int(e["address"], 16) == int(b["address"], 16) + 16,
                      "%s: address %s bytes %s" % (kind, e["address"], e["bytes"]))
                check(e["free_stack"] == [], "%s: the block was live, yet a free stack %s" % (kind, e["free_stack"]))
        check(text_report.count("is 16 bytes inside a 96-byte block allocated at:") == 2,
              "text lacks the block context:\n" + text_report[-3000:])
    elif case == "inline_leak":
        F = "inline_leak.c"
        expect_summary(rep, "definite", 136, 2)
        g = expect_group(rep, "definite", 16, 1, [(0, "dup_word", F, L(F, "DUPMALLOC")), (1, "outer", F, L(F, "DUPCALL")),
                                                  (2, "main", F, L(F, "OUTER"))])
        if g:
            st = g["stack"]
            check(st[0]["inlined"] and not st[1]["inlined"] and st[0]["addr"] == st[1]["addr"],
                  "inline chain flags %s" % [(f["function"], f["inlined"]) for f in st])
        g = expect_group(rep, "definite", 120, 1, [(1, "getline", "stdio.h", None), (2, "read_first", F, L(F, "GETLINE")),
                                                   (3, "main", F, L(F, "READFIRST"))])
        if g:
            st = g["stack"]
            check(st[1]["inlined"] and st[2]["inlined"] and not st[3]["inlined"],
                  "inline chain flags %s" % [(f["function"], f["inlined"]) for f in st])
            check(any(f["function"] == "__libc_start_call_main" for f in st), "JSON keeps the start-up frames")
        check("#1 getline stdio.h:" in text_report and "#2 read_first inline_leak.c:%d" % L(F, "GETLINE") in text_report
              and "#3 main inline_leak.c:%d" % L(F, "READFIRST") in text_report,
              "text lacks the inline chain:\n" + text_report[-3000:])
        check("__libc_start_call_main" not in text_report and "_start " not in text_report,
              "text shows libc start-up frames")
    elif case == "page_fault_overflow" or case == "page_fault_underflow" or case == "page_fault_after_free":
        F = "page_fault.c"
        check(traced.returncode == -11, "expected death by SIGSEGV, got %d" % traced.returncode)
        check(rep["exit"] == {"how": "signal", "status": 11}, "exit is %s" % rep["exit"])
        check(rep["summary"]["errors"] == 1, "errors = %s" % rep["summary"]["errors"])
        kind, fn, ln, access, offset = {
            "page_fault_overflow": ("overflow", "write_past", "WRITEPAST", "write", 13),
            "page_fault_underflow": ("overflow", "read_before", "READBEFORE", "read", -1),
            "page_fault_after_free": ("use-after-free", "read_freed", "READFREED", "read", 3)}[case]
        stacks = {"stack": (fn, F, L(F, ln)), "alloc_stack": ("make", F, L(F, "MAKE13"))}
        if case == "page_fault_after_free":
            stacks["free_stack"] = ("release", F, L(F, "RELEASE"))
        e = expect_error(rep, kind, **stacks)
        if e:
            check(e["access"] == access, "access %s" % e["access"])
            check(e["block"] and e["block"]["bytes"] == 13 and e["block"]["offset"] == offset,
                  "block %s" % e["block"])
            check(int(e["address"], 16) == int(e["block"]["address"], 16) + offset, "address %s" % e["address"])
            if case != "page_fault_after_free":
                check(e["free_stack"] == [], "free stack of a live block")
        want = {"page_fault_overflow": "is 0 bytes after a 13-byte block allocated at:",
                "page_fault_underflow": "is 1 byte before a 13-byte block allocated at:",
                "page_fault_after_free": "is 3 bytes inside a 13-byte block allocated at:"}[case]
        check(("invalid %s at " % access) in text_report and want in text_report,
              "text lacks the access:\n" + text_report[-3000:])
    elif case == "page_fault_slack":
        F = "page_fault.c"
        check(traced.stdout == b"freed\n" and traced.returncode == 0, "the program did not go on")
        check(rep["summary"]["errors"] == 1, "errors = %s" % rep["summary"]["errors"])
        e = expect_error(rep, "overflow", stack=("release", F, L(F, "RELEASE")), alloc_stack=("make", F, L(F, "MAKE13")))
        if e:
            check(e["block"] and e["block"]["bytes"] == 13 and e["access"] is None, "block %s" % e["block"])
        check("were overwritten, found when it was freed" in text_report, "text:\n" + text_report[-3000:])
    elif case == "cxx_bad_alloc":
        check(b"with a handler: bad_alloc after 2 handler calls" in traced.stdout, "stdout %r" % traced.stdout)
        check(rep["summary"]["errors"] == 0, "errors in %s" % json.dumps(rep["errors"])[:2000])
        expect_summary(rep, "definite", 0, 0)
    elif case in EXACT_CASES:
        EXACT_CASES[case](rep, L, traced, backend or "freelist")
    elif case in ("clean_git", "clean_bash"):
        expect_summary(rep, "definite", 0, 0)
        check(rep["summary"]["errors"] == 0, "errors in a clean program")
    else:
        raise SystemExit("unknown case " + case)
    return finish()


def user_frame(stack):
    """Index of the first frame that is not operator new (libstdc++'s, until
    mallard exports its own): the program's call site."""
    for i, f in enumerate(stack):
        fn = f.get("function") or ""
        if not (fn.startswith("operator new") or fn.startswith("_Zn")):
            return i
    return len(stack)


def expect_sum(rep, kind, bytes_, blocks, function, filename, line):
    """The groups of kind whose frame 0 is function at filename:line (a
    loop the compiler unrolled calls from several return addresses, so
    several groups, as several loss records under valgrind) add up to
    bytes in blocks; returns them."""
    gs = [g for g in rep["leaks"] if g["kind"] == kind and g["stack"] and
          frame_matches(g["stack"][0], function, filename, line)]
    got = (sum(g["bytes"] for g in gs), sum(g["blocks"] for g in gs))
    check(got == (bytes_, blocks), "%s groups at %s %s:%s hold %d bytes in %d blocks, expected %d in %d" %
          ((kind, function, filename, line) + got + (bytes_, blocks)))
    return gs


def expect_rollup(g, ibytes, iblocks):
    if g is None:
        return
    check(g.get("indirect_bytes") == ibytes and g.get("indirect_blocks") == iblocks,
          "definite group %d bytes: owns indirect %s bytes in %s blocks, expected %d in %d" %
          (g["bytes"], g.get("indirect_bytes"), g.get("indirect_blocks"), ibytes, iblocks))


def expect_owners(rep, g, owner):
    if g is None or owner is None:
        return
    check(g.get("owners") == [rep["leaks"].index(owner)],
          "indirect group %d bytes: owners %s, expected [%d]" % (g["bytes"], g.get("owners"),
                                                                 rep["leaks"].index(owner)))


# Issue 12's fixtures: every figure below is valgrind memcheck's for the
# same program (valgrind --leak-check=full --run-libc-freeres=no), bytes,
# blocks, frame 0 and the "N (D direct, I indirect)" roll-up.
def case_end_pointer(rep, L, traced, backend):
    # kept buffers keep their start and one-past-the-end pointers; the leaks
    # next to them are lost (valgrind: 128 bytes in 2 blocks)
    expect_summary(rep, "definite", 128, 2)
    expect_summary(rep, "indirect", 0, 0)
    for g in expect_sum(rep, "definite", 128, 2, "leak", "end_pointer.c", L("end_pointer.c", "LEAK")):
        expect_rollup(g, 0, 0)
    expect_sum(rep, "reachable", 192, 3, "keep", "end_pointer.c", L("end_pointer.c", "KEEP"))


def case_last_block(rep, L, traced, backend):
    # the backend's pointer to its last block is mallard's own thread-local
    # state, not a root (valgrind: 5000 in 1 and 64 in 1 definitely lost)
    src = "last_block.c"
    expect_summary(rep, "definite", 5064, 2)
    expect_summary(rep, "indirect", 0, 0)
    expect_sum(rep, "definite", 5000, 1, "grow_and_drop", src, L(src, "GROWN"))
    expect_sum(rep, "definite", 64, 1, "last_one", src, L(src, "LAST"))


def case_reused_blocks(rep, L, traced, backend):
    # blocks back from the free lists: no link word may chain them
    expect_summary(rep, "definite", 1120, 20)
    expect_summary(rep, "indirect", 0, 0)
    g = expect_group(rep, "definite", 480, 10,
                     [(0, "leak_plain", "reused_blocks.c", L("reused_blocks.c", "PLAIN"))])
    expect_rollup(g, 0, 0)
    g = expect_group(rep, "definite", 640, 10,
                     [(0, "leak_aligned", "reused_blocks.c", L("reused_blocks.c", "ALIGNED"))])
    expect_rollup(g, 0, 0)


def case_stale_blocks(rep, L, traced, backend):
    # the only pointers to the children lie in memory that new blocks got
    # back and did not write there (malloc, aligned_alloc, realloc's new
    # bytes): memcheck ignores such bytes; valgrind: 24000, 32000 and 40000
    # bytes in 1000 blocks each definitely lost
    src = "stale_blocks.c"
    expect_summary(rep, "definite", 1000 * (24 + 32 + 40), 3000)
    expect_summary(rep, "indirect", 0, 0)
    expect_sum(rep, "definite", 1000 * 24, 1000, "child_plain", src, L(src, "PLAIN"))
    expect_sum(rep, "definite", 1000 * 32, 1000, "child_aligned", src, L(src, "ALIGNED"))
    expect_sum(rep, "definite", 1000 * 40, 1000, "child_grown", src, L(src, "GROWN"))


def case_thread_exit_leak(rep, L, traced, backend):
    # five workers, one at a time, each leaving its blocks only in its own
    # dead frames (valgrind: 385 bytes in 5 blocks and 200 in 5 definitely
    # lost); under every backend, the system one too, the ended threads'
    # stacks are no roots
    src = "thread_exit_leak.c"
    expect_summary(rep, "definite", 5 * (77 + 40), 10)
    expect_summary(rep, "indirect", 0, 0)
    expect_sum(rep, "definite", 5 * 77, 5, "lose", src, L(src, "ZEROED"))
    expect_sum(rep, "definite", 5 * 40, 5, "lose", src, L(src, "PLAIN"))


def case_heap_stack(rep, L, traced, backend):
    # threads on stacks from malloc: their dead frames are never read, not
    # even through the block that holds them (valgrind: the two roots and
    # the dropped stack definitely lost, 196848 bytes in 3 blocks, the 8
    # children indirectly)
    src = "heap_stack.c"
    expect_summary(rep, "definite", (192 << 10) + 2 * 120, 3)
    g = expect_group(rep, "definite", 2 * 120, 2, [(0, "lose_tree", "lose_tree.h", L("lose_tree.h", "ROOT"))])
    expect_rollup(g, 8 * 120, 8)
    expect_sum(rep, "definite", 192 << 10, 1, "main", src, L(src, "DROPPED"))


def case_altstack_leak(rep, L, traced, backend):
    # handlers on signal stacks (a mapping, and a block kept reachable):
    # their dead frames are never read (valgrind: 240 bytes in 2 blocks
    # definitely lost, 960 in 8 indirectly)
    expect_summary(rep, "definite", 2 * 120, 2)
    expect_summary(rep, "indirect", 8 * 120, 8)
    # one group per handler: the frames below them differ
    for g in expect_sum(rep, "definite", 2 * 120, 2, "lose_tree", "lose_tree.h", L("lose_tree.h", "ROOT")):
        expect_rollup(g, g["blocks"] * 4 * 120, g["blocks"] * 4)


def case_malloc_zero(rep, L, traced, backend):
    # valgrind: "0 bytes in 1 blocks are definitely lost"
    expect_summary(rep, "definite", 0, 1)
    expect_group(rep, "definite", 0, 1, [(0, "leak_zero", "malloc_zero.c", L("malloc_zero.c", "ZERO"))])
    expect_group(rep, "reachable", 0, 1, [(0, "main", "malloc_zero.c", L("malloc_zero.c", "KEPTZERO"))])


def case_dead_frame(rep, L, traced, backend, how="exit"):
    # the only copies are in hold()'s frame, dead once it returned
    expect_summary(rep, "definite", 40, 1)
    expect_summary(rep, "indirect", 0, 0)
    expect_group(rep, "definite", 40, 1, [(0, "hold", "dead_frame.c", L("dead_frame.c", "DEAD"))])
    check(rep["exit"]["how"] == how, "exit is %s" % rep["exit"])


def case_dead_frame_exit(rep, L, traced, backend):
    case_dead_frame(rep, L, traced, backend, how="_exit")


def case_thread_deadstack(rep, L, traced, backend, mode):
    # the worker's only copies are in its returned hold() frame, below its
    # stack pointer; for reg, its r15 holds the block; churn leaks nothing
    if mode in ("reg", "churn"):
        expect_summary(rep, "definite", 0, 0)
    else:
        expect_summary(rep, "definite", 40, 1)
        expect_group(rep, "definite", 40, 1, [(0, "hold", "thread_deadstack.c", L("thread_deadstack.c", "DEADT"))])
    expect_summary(rep, "indirect", 0, 0)
    want = {"live": b"read 1\n", "write": b"wrote 1048576\n"}.get(mode, b"") + mode.encode() + b" done\n"
    check(traced.stdout == want, "stdout %r, expected %r" % (traced.stdout, want))


for _m in ("futex", "read", "sleep", "spin", "reg", "live", "write", "churn"):
    globals()["case_thread_deadstack_" + _m] = (
        lambda m: lambda rep, L, traced, backend: case_thread_deadstack(rep, L, traced, backend, m))(_m)


def case_cycle_owner(rep, L, traced, backend):
    # valgrind: 224 (64 direct, 160 indirect), 120 (48 direct, 72 indirect),
    # 64 (32 direct, 32 indirect); 144 bytes in 3 blocks definite, 264 in 8
    # indirect
    src = "cycle_owner.c"
    expect_summary(rep, "definite", 144, 3)
    expect_summary(rep, "indirect", 264, 8)
    reg = expect_group(rep, "definite", 64, 1, [(0, "registry_drop", src, L(src, "REGISTRY"))])
    expect_rollup(reg, 160, 4)
    for g in expect_sum(rep, "indirect", 160, 4, "make_node", src, L(src, "NODE")):
        expect_owners(rep, g, reg)
    arr = expect_group(rep, "definite", 48, 1, [(0, "array_drop", src, L(src, "ARRAY"))])
    expect_rollup(arr, 72, 3)
    for g in expect_sum(rep, "indirect", 72, 3, "child_new", src, L(src, "CHILD")):
        expect_owners(rep, g, arr)
    # the pure cycle: the first allocated is definite
    a = expect_group(rep, "definite", 32, 1, [(0, "pair_new", src, L(src, "PAIR")),
                                              (1, "cycle_drop", src, L(src, "PAIRA"))])
    expect_rollup(a, 32, 1)
    b = expect_group(rep, "indirect", 32, 1, [(0, "pair_new", src, L(src, "PAIR")),
                                              (1, "cycle_drop", src, L(src, "PAIRB"))])
    expect_owners(rep, b, a)
    totals = [g["bytes"] + g.get("indirect_bytes", 0) for g in rep["leaks"]]
    check(totals == sorted(totals, reverse=True), "leaks not sorted by total bytes: %s" % totals)


def case_anon_merge(rep, L, traced, backend):
    # the block's only pointer is in the program's own mmap, merged by the
    # kernel with the allocator's mapping where it could be
    expect_summary(rep, "definite", 0, 0)
    expect_summary(rep, "indirect", 0, 0)
    expect_group(rep, "reachable", 200, 1, [(0, "fill", "anon_merge.c", L("anon_merge.c", "ANONKEPT"))])
    if backend != "page":  # page blocks sit in PROT_NONE reservations: nothing to merge with
        check(b"merged" in traced.stderr, "the fixture's mapping was not merged with the allocator's")


def case_cxx_registry(rep, L, traced, backend):
    # valgrind: 444 (144 direct, 300 indirect) bytes in 3 blocks
    expect_summary(rep, "definite", 144, 3)
    expect_summary(rep, "indirect", 300, 6)
    for g in rep["leaks"]:
        if g["kind"] == "definite" and g["bytes"] == 144 and g["blocks"] == 3:
            i = user_frame(g["stack"])
            check(i < len(g["stack"]) and frame_matches(g["stack"][i], "make", "cxx_registry.cpp",
                                                         L("cxx_registry.cpp", "REGNEW")),
                  "definite group's call site is %s" % g["stack"][:3])
            expect_rollup(g, 300, 6)
            break
    else:
        fail("no definite group of 144 bytes in 3 blocks: %s" % json.dumps(rep["leaks"])[:2000])


def stats_threads(reports, L):
    """Each thread's counts and unflushed share of the live bytes (issue 10)
    reach the report: from workers that exited, and in a child forked from a
    thread while another thread held a share."""
    if not check(len(reports) == 2, "expected two reports (parent and child), found %d" % len(reports)):
        return
    by_pid = {r["pid"]: r for r in reports}
    parent = [r for r in reports if r["ppid"] not in by_pid]
    child = [r for r in reports if r["ppid"] in by_pid]
    if not check(len(parent) == 1 and len(child) == 1, "cannot tell parent from child"):
        return
    p, c = parent[0], child[0]
    s = p["summary"]
    live_bytes = sum(s[k]["bytes"] for k in ("definite", "indirect", "reachable", "suppressed"))
    live_blocks = sum(s[k]["blocks"] for k in ("definite", "indirect", "reachable", "suppressed"))
    ps, cs = p["stats"], c["stats"]
    check(ps["current_bytes"] == live_bytes, "parent: current_bytes %d, its live blocks hold %d" %
          (ps["current_bytes"], live_bytes))
    check(ps["allocs"] - ps["frees"] == live_blocks, "parent: allocs %d - frees %d, %d blocks live" %
          (ps["allocs"], ps["frees"], live_blocks))
    # the child: all the parent ended with, the holder's 5000 + 7000 it had
    # not freed at the fork, and its own 333
    check(cs["current_bytes"] == ps["current_bytes"] + 12000 + 333,
          "child: current_bytes %d, expected the parent's %d + 12000 + 333" %
          (cs["current_bytes"], ps["current_bytes"]))
    check(cs["allocs"] - cs["frees"] == ps["allocs"] - ps["frees"] + 3,
          "child: allocs %d - frees %d, expected the parent's %d live + 3" %
          (cs["allocs"], cs["frees"], ps["allocs"] - ps["frees"]))
    # the leaks, as valgrind finds the parent's (4,006 bytes in 4 blocks
    # definitely lost); the child's report counts only what the child
    # allocated: its 333, from a thread glibc created, now the child's only
    # one (its frames and the parent's dead threads' cached stacks are no
    # roots)
    expect_summary(p, "definite", 1000 + 1001 + 1002 + 1003, 4)
    expect_summary(c, "definite", 333, 1)
    for r, who in ((p, "parent"), (c, "child")):
        check(r["stats"]["peak_bytes"] >= 4 * (8 << 20), "%s: peak_bytes %d, below the 32 MiB the workers held at once" %
              (who, r["stats"]["peak_bytes"]))


EXACT_CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}


def finish():
    if FAILURES:
        print("%d failed" % len(FAILURES))
        sys.exit(1)
    print("ok")
    sys.exit(0)


if __name__ == "__main__":
    main()
