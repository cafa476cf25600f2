#!/usr/bin/env python3
"""tests/cli/test_cli.py CASE --cli build/mallard --bin build/tests/programs [--src DIR]

The mallard command as a user meets it: options, exit statuses, the
library check, untraceable programs, process trees (--children, -q, -v),
report paths (%p %e %n and a shared fixed path).  Each case raises on the
first wrong thing; every child runs under a timeout."""
import argparse
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

A = None
TMP = None


def run(args, env=None, cwd=None, timeout=60):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("MALLARD_") or k == "LD_PRELOAD":
            del e[k]
    if env:
        e.update(env)
    return subprocess.run(args, env=e, cwd=cwd or TMP, capture_output=True, text=True, timeout=timeout)


def check(cond, what, p=None):
    if not cond:
        extra = ""
        if p is not None:
            extra = "\n--- rc %s\n--- stdout\n%s--- stderr\n%s" % (p.returncode, p.stdout, p.stderr)
        raise SystemExit("FAIL: " + what + extra)


def fixture(name):
    return os.path.join(A.bin, name)


def script(name, body):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def summary_lines(text):
    return [l for l in text.splitlines() if l.startswith("==mallard== pid ")]


# ---- 1. the command ------------------------------------------------------


def case_version():
    p = run([A.cli, "--version"])
    check(p.returncode == 0 and re.fullmatch(r"mallard \d+\.\d+\.\d+\n", p.stdout), "--version", p)


def case_help():
    p = run([A.cli, "--help"])
    check(p.returncode == 0, "--help exits 0", p)
    for want in ["--backend=NAME", "-b,", "-o,", "-q,", "--quiet", "--verbose", "--children=",
                 "--list-backends", "--version", "example:", "mallard --backend=page", "exit status"]:
        check(want in p.stdout, "--help mentions %r" % want, p)
    check(run([A.cli, "-h"]).stdout == p.stdout, "-h is --help")
    check(max(len(l) for l in p.stdout.splitlines()) <= 80, "--help fits 80 columns", p)


def case_list_backends():
    p = run([A.cli, "--list-backends"])
    check(p.returncode == 0, "--list-backends exits 0", p)
    names = [l.split()[0] for l in p.stdout.splitlines()]
    check(names == ["freelist", "bump", "arena", "page", "system"], "every backend, in order: %s" % names, p)
    for l in p.stdout.splitlines():
        check(len(l.split(None, 1)) == 2 and "(no description)" not in l, "a use-it-when line: " + l)


def case_usage_errors():
    marker = os.path.join(TMP, "ran")
    prog = ["sh", "-c", "touch " + marker]
    for bad in (["--bogus"], ["--backend=foo"], ["--backend", "foo"], ["-b", "foo"], ["--exitcode=300"],
                ["--format=xml"], ["--depth=0"], ["-x"], ["--backend"]):
        p = run([A.cli] + bad + (["--"] + prog if bad != ["--backend"] else []))
        check(p.returncode == 2, "%s is a usage error (exit 2)" % bad, p)
        check("mallard --help" in p.stderr, "%s: the error points at --help" % bad, p)
        check(not os.path.exists(marker), "%s: the program did not start" % bad, p)
    p = run([A.cli])
    check(p.returncode == 2 and "usage:" in p.stderr, "no program is a usage error", p)


def case_value_forms():
    # --name=value, --name value, -b value, -bvalue all reach the program
    for form in (["--backend=page"], ["--backend", "page"], ["-b", "page"], ["-bpage"],
                 ["--page_guard", "before", "-b", "page"]):
        p = run([A.cli, "-q"] + form + ["--", "sh", "-c", "echo $MALLARD_BACKEND"])
        check(p.returncode == 0 and p.stdout == "page\n", "%s sets MALLARD_BACKEND" % form, p)
    p = run([A.cli, "-q", "-o", "r.txt", "-f", "json", "sh", "-c", "echo $MALLARD_REPORT $MALLARD_FORMAT"])
    check(p.stdout == "r.txt json\n", "-o and -f; the program without --", p)
    # an option after the program is the program's
    p = run([A.cli, "-q", "sh", "-c", "echo $0 $1", "--bogus", "-b"])
    check(p.returncode == 0 and p.stdout == "--bogus -b\n", "options after the program are its own", p)


def case_library_missing():
    marker = os.path.join(TMP, "ran")
    p = run([A.cli, "--lib=/nonexistent/libmallard.so", "--", "touch", marker])
    check(p.returncode == 125, "a missing library is an error (125)", p)
    check("No such file or directory" in p.stderr, "strerror text", p)
    check(not os.path.exists(marker), "the program did not run untraced", p)
    # a copied command with no library next to it, and a non-ELF library
    d = os.path.join(TMP, "copy")
    os.mkdir(d)
    shutil.copy(A.cli, d)
    notlib = os.path.join(TMP, "notlib.so")
    with open(notlib, "w") as f:
        f.write("not a library\n")
    p = run([A.cli, "--lib", notlib, "true"])
    check(p.returncode == 125 and "not a shared library" in p.stderr, "a non-ELF library", p)
    p = run([os.path.join(d, "mallard"), "--", "touch", marker])
    if p.returncode != 125:  # an installed libmallard.so in the configured libdir is a fine answer too
        check(p.returncode == 0 and os.path.exists(marker), "a copied command: error or an installed library",
              p)


def case_not_found():
    p = run([A.cli, "--", "no-such-program-xyz"])
    check(p.returncode == 127 and "No such file or directory" in p.stderr, "not found: 127 + strerror", p)
    f = os.path.join(TMP, "noexec")
    open(f, "w").close()
    p = run([A.cli, "--", f])
    check(p.returncode == 126 and "Permission denied" in p.stderr, "not executable: 126 + strerror", p)


def case_untraceable():
    static = os.path.join(TMP, "static_prog")
    src = os.path.join(TMP, "s.c")
    with open(src, "w") as f:
        f.write('#include <stdio.h>\nint main(void){puts("static ran");return 7;}\n')
    subprocess.run(["cc", "-static", "-o", static, src], check=True, timeout=120)
    p = run([A.cli, "--", static])
    check(p.returncode == 7 and p.stdout == "static ran\n", "a static program still runs", p)
    lines = p.stderr.splitlines()
    check(len(lines) == 1 and "cannot be traced" in lines[0] and "statically linked" in lines[0],
          "one line saying a static program cannot be traced", p)
    # a set-user-ID program owned by someone else: the loader drops LD_PRELOAD
    suid = os.path.join(TMP, "suid_true")
    shutil.copy("/bin/true", suid)
    try:
        if os.geteuid() == 0:
            os.chown(suid, 65534, -1)
            os.chmod(suid, 0o4755)
            mode = "set-user-ID"
        else:
            gid = next(g for g in os.getgroups() if g != os.getegid())
            os.chown(suid, -1, gid)
            os.chmod(suid, 0o2755)
            mode = "set-group-ID"
    except (StopIteration, PermissionError) as e:
        raise SystemExit("FAIL: cannot make a set-ID program here (%s)" % e)
    os.chmod(TMP, 0o755)
    p = run([A.cli, "--", suid])
    lines = p.stderr.splitlines()
    check(p.returncode == 0 and len(lines) == 1 and "cannot be traced" in lines[0] and mode in lines[0],
          "one line for a %s program, and it runs" % mode, p)


# ---- 2. process trees ----------------------------------------------------


THREE = "ls / >/dev/null\ncat /dev/null\nenv true\n"


def case_children_no():
    s = script("three.sh", THREE)
    p = run([A.cli, "-v", "--children=no", "--", s])
    lines = summary_lines(p.stderr)
    check(p.returncode == 0 and len(lines) == 1 and p.stderr.count("==mallard==") == 1,
          "--children=no: one report for the script's shell only", p)
    p = run([A.cli, "-v", "--", s])
    names = [re.search(r"\((.*?)\)", l).group(1) for l in summary_lines(p.stderr)]
    check(sorted(os.path.basename(n) for n in names) == ["cat", "env", "ls", "sh", "true"],
          "--children=yes (default): every process reports: %s" % names, p)
    # the untraced descendants run without the preload at all
    env_script = script("env.sh", "env | grep '^LD_PRELOAD=' || echo none\n"
                        "sh -c \"env | grep '^LD_PRELOAD=' || echo none\"\n")
    p = run([A.cli, "-q", "--children=no", "--", env_script], env={"LD_PRELOAD": "/lib/nothing-else.so"})
    check(p.stdout == "LD_PRELOAD=/lib/nothing-else.so\n" * 2,
          "descendants' LD_PRELOAD keeps other entries, not mallard", p)
    p = run([A.cli, "-q", "--children=no", "--", env_script])
    check(p.stdout == "none\nnone\n", "descendants' LD_PRELOAD is gone", p)
    # reached through system() (posix_spawn, no exec hook): the child is untraced and its children clean
    p = run([A.cli, "-v", "--children=no", "--", "python3", "-c",
             "import os; os.system(\"env | grep -c libmallard; sh -c 'env | grep -c libmallard'\")"])
    pids = set(re.findall(r"==mallard== (?:mallard report for )?pid (\d+)", p.stderr))
    check(len(pids) == 1 and p.stdout == "0\n0\n", "system(): only the top process reports, no preload below", p)


def case_children_patterns():
    s = script("three.sh", THREE)
    p = run([A.cli, "-v", "--children=cat,*/true", "--", s])
    names = sorted(os.path.basename(re.search(r"\((.*?)\)", l).group(1)) for l in summary_lines(p.stderr))
    check(names == ["cat", "sh", "true"], "patterns trace the top and the matching programs: %s" % names, p)
    # a shim followed to the program that matters: a leak three execs deep is found
    shim = script("shim.sh", 'x=$(basename "$0"); y=$(readlink -f "$0"); exec env %s\n' % fixture("simple_leak"))
    p = run([A.cli, "--children=simple_leak", "--", "sh", "-c", shim + "; true"])
    check("definite" in p.stderr and "leak_one" in p.stderr, "the leak behind the shim is reported", p)
    check(p.stderr.count("==mallard== pid") <= 1 and "basename" not in p.stderr and "readlink" not in p.stderr,
          "the shim's helpers are silent", p)


def case_quiet_verbose():
    p = run([A.cli, "--", "true"])
    check(len(summary_lines(p.stderr)) == 1 and p.stderr.count("\n") == 1, "default: one line for the top", p)
    p = run([A.cli, "-q", "--", "true"])
    check(p.returncode == 0 and p.stderr == "", "-q: nothing for a clean process", p)
    p = run([A.cli, "--quiet", "--", fixture("simple_leak")])
    check("leak_one" in p.stderr and "definite" in p.stderr, "-q still reports a leak", p)
    s = script("three.sh", THREE)
    p = run([A.cli, "--", s])
    check(len(summary_lines(p.stderr)) == 1, "default on a tree: one line (the top)", p)
    p = run([A.cli, "--verbose", "--", s])
    check(len(summary_lines(p.stderr)) == 5, "-v: a line per process", p)


# ---- report paths --------------------------------------------------------


def case_report_path():
    leak = fixture("simple_leak")
    p = run([A.cli, "-o", "r.%e.%p.txt", "--", leak])
    files = glob.glob(os.path.join(TMP, "r.simple_leak.*.txt"))
    check(p.returncode == 0 and len(files) == 1 and re.fullmatch(r"r\.simple_leak\.\d+\.txt",
                                                                  os.path.basename(files[0])), "%e and %p", p)
    for i in range(3):
        p = run([A.cli, "-o", "n.%n.txt", "--", leak])
        check(p.returncode == 0, "%n run", p)
    got = sorted(os.path.basename(f) for f in glob.glob(os.path.join(TMP, "n.*.txt")))
    check(got == ["n.1.txt", "n.2.txt", "n.3.txt"], "%%n counts up: %s" % got)
    check(all("leak_one" in open(os.path.join(TMP, f)).read() for f in got), "each %n file holds a report")


def case_report_fixed_path():
    # two leaking processes (fork_leak: parent and child) and a second run: all reports survive, whole
    for fmt in ("text", "json"):
        path = os.path.join(TMP, "fixed." + fmt)
        for _ in range(2):
            p = run([A.cli, "-f", fmt, "-o", path, "--", fixture("fork_leak")])
            check(p.returncode == 0, "fork_leak ran", p)
        text = open(path).read()
        if fmt == "text":
            check(text.count("definitely lost: 222 bytes") == 2 and text.count("definitely lost: 111 bytes") == 2,
                  "text: four reports in the fixed file:\n" + text)
        else:
            import json
            dec, docs, i = json.JSONDecoder(), [], 0
            while i < len(text):
                while i < len(text) and text[i].isspace():
                    i += 1
                if i == len(text):
                    break
                d, i = dec.raw_decode(text, i)
                docs.append(d)
            check(len(docs) == 4, "json: four whole documents in the fixed file (%d)" % len(docs))


# ---- 4. mallard report ---------------------------------------------------

LEAKY_C = r"""
#include <stdlib.h>
#include <string.h>
#include "scrub.h"
static void *volatile sink;
__attribute__((noinline)) static void leak_f(void) { sink = malloc(100); memset(sink, 1, 100); sink = 0; }
__attribute__((noinline)) static void leak_g(void) { sink = malloc(40); memset(sink, 2, 40); sink = 0; }
int main(int argc, char **argv)
{
    int f = argc > 1 ? atoi(argv[1]) : 0, g = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 0; i < f; i++) leak_f();
    for (int i = 0; i < g; i++) leak_g();
    scrub_stack();
    return 0;
}
"""


def leaky():
    exe = os.path.join(TMP, "leaky")
    if not os.path.exists(exe):
        src = exe + ".c"
        with open(src, "w") as f:
            f.write(LEAKY_C)
        subprocess.run(["cc", "-g", "-O0", "-fno-omit-frame-pointer", "-I", os.path.join(A.src, "tests/programs"),
                        "-o", exe, src], check=True, timeout=120)
    return exe


def json_run(out, args, extra=()):
    p = run([A.cli, "-q", "-f", "json", "-o", out] + list(extra) + ["--"] + args)
    check(p.returncode == 0, "json run of %s" % args, p)
    return p


def report(args):
    return run([A.cli, "report"] + args)


def case_report_render():
    out = os.path.join(TMP, "tree.json")
    json_run(out, ["sh", "-c", "%s; %s; %s" % (fixture("fork_leak"), fixture("list_leak"), fixture("fork_leak"))])
    p = report([out])
    check(p.returncode == 0, "report renders", p)
    first = p.stdout.splitlines()[0]
    check(first.startswith("mallard report: 6 processes of 3 programs, 5 with leaks or errors; "
                           "definitely lost 714 bytes in 5 blocks, indirectly lost 432 bytes in 9 blocks"),
          "one summary line for the tree", p)
    check(re.search(r"fork_leak: 4 processes", p.stdout) and
          "definite leak of 444 bytes in 2 blocks (in 2 processes)" in p.stdout and
          "definite leak of 222 bytes in 2 blocks (in 2 processes)" in p.stdout,
          "groups merged by stack across the processes of one program", p)
    check("#0 push list_leak.c:" in p.stdout and "indirect leak of 432 bytes in 9 blocks" in p.stdout,
          "stacks rendered", p)
    check(not re.search(r"#\d+ (__libc_start_call_main|__libc_start_main|_start)\b", p.stdout),
          "libc's start-up frames left out, as the text report leaves them out", p)
    # many files: the same as one file holding them all
    parts = []
    for i, prog in enumerate(("simple_leak", "list_leak")):
        parts.append(os.path.join(TMP, "part%d.json" % i))
        json_run(parts[-1], [fixture(prog)])
    p = report(parts)
    check(p.stdout.startswith("mallard report: 2 processes of 2 programs, 2 with leaks or errors; "
                              "definitely lost 148 bytes in 2 blocks"), "many files merged", p)
    p = report([os.path.join(TMP, "nothing.json")])
    check(p.returncode == 2 and "No such file or directory" in p.stderr, "a missing file: 2 + strerror", p)
    bad = os.path.join(TMP, "bad.json")
    with open(bad, "w") as f:
        f.write("{not json")
    check(report([bad]).returncode == 2, "not JSON: exit 2")


def case_report_diff():
    exe = leaky()
    files = {}
    for name, counts in (("base", "1 2"), ("grew", "3 2"), ("fixed", "1 0"), ("same", "1 2"), ("newg", "0 2")):
        files[name] = os.path.join(TMP, name + ".json")
        json_run(files[name], [exe] + counts.split())
    p = report(["--diff", files["base"], files["grew"]])
    check(p.returncode == 1 and p.stdout.startswith("mallard report --diff: 0 appeared, 1 grew, 0 shrank, 0 gone")
          and re.search(r"grew +leaky definite leak, 100 -> 300 bytes, 1 -> 3 blocks\n +#0 leak_f", p.stdout),
          "grew: exit 1", p)
    p = report(["--diff", files["base"], files["fixed"]])
    check(p.returncode == 0 and p.stdout.startswith("mallard report --diff: 0 appeared, 0 grew, 0 shrank, 1 gone")
          and re.search(r"gone +leaky definite leak, was 80 bytes in 2 blocks\n +#0 leak_g", p.stdout),
          "the fix worked: gone, exit 0", p)
    p = report(["--diff", files["base"], files["same"]])
    check(p.returncode == 0 and p.stdout == "mallard report --diff: 0 appeared, 0 grew, 0 shrank, 0 gone\n",
          "no change", p)
    p = report(["--diff", files["newg"], files["base"]])
    check(p.returncode == 1 and "1 appeared" in p.stdout and re.search(r"appeared leaky definite leak", p.stdout),
          "appeared: exit 1", p)
    p = report(["--diff", files["grew"], files["base"]])
    check(p.returncode == 0 and "1 shrank" in p.stdout, "shrank: exit 0", p)
    check(report(["--diff", files["base"]]).returncode == 2, "--diff needs two files")


def case_report_gen_suppressions():
    exe = leaky()
    progs = [[exe, "2", "3"], [fixture("list_leak")], [fixture("fork_leak")], [fixture("simple_leak")],
             [fixture("cxx_new")], [fixture("threads_leak")]]
    out = os.path.join(TMP, "all.json")
    for args in progs:
        json_run(out, args)
    docs = report([out])
    check("definite leak" in docs.stdout and "indirect leak" in docs.stdout, "the fixtures leak", docs)
    p = report(["--gen-suppressions", out])
    check(p.returncode == 0, "gen-suppressions runs", p)
    lines = [l for l in p.stdout.splitlines() if l and not l.startswith("#")]
    check(lines and all(l.startswith("leak:") for l in lines), "only leak: lines and comments", p)
    check(len(lines) == len(set(lines)), "no duplicate lines", p)
    supp = os.path.join(TMP, "gen.supp")
    with open(supp, "w") as f:
        f.write(p.stdout)
    again = os.path.join(TMP, "again.json")
    for args in progs:
        json_run(again, args, ["-s", supp])
    r = report([again])
    check(re.search(r"definitely lost 0 bytes in 0 blocks, indirectly lost 0 bytes in 0 blocks", r.stdout.splitlines()[0]),
          "round trip: the generated file suppresses every group", r)


# ---- 3. JSON that scales --------------------------------------------------


def json_docs(path):
    import json
    text, dec, docs, i = open(path).read(), __import__("json").JSONDecoder(), [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i < len(text):
            d, i = dec.raw_decode(text, i)
            docs.append(d)
    return docs


def case_json_show():
    for show, listed in (("leaks", False), ("all", True)):
        out = os.path.join(TMP, "g.%s.json" % show)
        p = run([A.cli, "-f", "json", "--show", show, "-o", out, "--", fixture("global_reach")])
        check(p.returncode == 0, "global_reach ran", p)
        (d,) = json_docs(out)
        kinds = [g["kind"] for g in d["leaks"]]
        check(d["reachable_listed"] is listed and d["reachable_groups"] >= 1,
              "--show=%s: reachable_listed %s, reachable_groups counted" % (show, listed))
        check(("reachable" in kinds) == listed, "--show=%s: reachable groups listed only with all: %s" % (show, kinds))
        check(d["summary"]["reachable"]["blocks"] >= 1, "reachable blocks still counted")


def case_json_scales():
    exe = os.path.join(TMP, "many_blocks")
    subprocess.run(["cc", "-g", "-O1", "-fno-omit-frame-pointer", "-o", exe,
                    os.path.join(A.src, "tests/cli/many_blocks.c")], check=True, timeout=120)
    for fmt in ("json", "text"):
        out = os.path.join(TMP, "many." + fmt)
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("MALLARD_") or k == "LD_PRELOAD":
                del e[k]
        import time
        t0 = time.monotonic()
        child = subprocess.Popen([A.cli, "-f", fmt, "-o", out, "--", exe, "200000", "1000", "leak"],
                                 env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            so, se = child.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
            raise SystemExit("FAIL: the 200k-block run hung")
        wall = time.monotonic() - t0
        # the child's CPU: resource.getrusage(RUSAGE_CHILDREN) grows by it
        import resource
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = ru.ru_utime + ru.ru_stime - case_json_scales.before
        case_json_scales.before = ru.ru_utime + ru.ru_stime
        at_main_end = float(so)
        report_cpu = total - at_main_end
        size = os.path.getsize(out)
        print("%s: 200000 blocks, 1000 stacks: report CPU %.3f s (process %.3f s, wall %.3f s), %d bytes"
              % (fmt, report_cpu, total, wall, size))
        check(child.returncode == 0, "the run succeeded: %s" % se.decode(errors="replace")[-2000:])
        check(report_cpu < 1.0, "%s: the report of a 200k-block process takes %.3f s of CPU (under 1 s)"
              % (fmt, report_cpu))
        if fmt == "json":
            (d,) = json_docs(out)
            check(d["summary"]["definite"]["blocks"] + d["summary"]["indirect"]["blocks"] >= 90000,
                  "the dropped half is reported: %s" % d["summary"])
            check(not any(g["kind"] == "reachable" for g in d["leaks"]) and d["reachable_groups"] > 0,
                  "reachable groups counted, not listed")
            check(size < 2000000, "json stays small without the reachable stacks: %d bytes" % size)


case_json_scales.before = 0.0


# ---- 5. reports on termination and on demand ------------------------------


def build(name, extra=()):
    exe = os.path.join(TMP, name)
    if not os.path.exists(exe):
        subprocess.run(["cc", "-g", "-O0", "-fno-omit-frame-pointer", "-I", os.path.join(A.src, "tests/programs"),
                        "-I", os.path.join(A.src, "preload"), "-o", exe,
                        os.path.join(A.src, "tests/cli", name + ".c")] + list(extra), check=True, timeout=120)
    return exe


def start(args, env=None):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("MALLARD_") or k == "LD_PRELOAD":
            del e[k]
    e.update(env or {})
    p = subprocess.Popen(args, env=e, cwd=TMP, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if line != "ready\n":
        p.kill()
        raise SystemExit("FAIL: %s did not start: %r" % (args, line))
    return p


def case_term_signals():
    import signal
    exe = build("signals")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        for mode in ("", "churn"):
            p = start([A.cli, "--", exe] + ([mode] if mode else []))
            p.send_signal(sig)
            out, err = p.communicate(timeout=60)
            check(p.returncode == -sig, "%s: still killed by the signal (status %s)" % (sig.name, p.returncode))
            check("definitely lost: 123 bytes in 1 block" in err and "signal %d (%s)" % (sig, sig.name) in err,
                  "%s %s: the report is written:\n%s" % (sig.name, mode, err[-3000:]))
    # a handler the program installed is left alone, and still runs
    p = start([A.cli, "--", exe, "handler"])
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    check(p.returncode == 0 and out == "got 1\n" and "program ended by exit(0)" in err,
          "the program's own SIGTERM handler ran: rc %s out %r" % (p.returncode, out))
    # a program asking for a disposition sees SIG_DFL: Python still raises KeyboardInterrupt
    code = ("import os, signal, time\nprint(signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))\n"
            "try:\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(5)\nexcept KeyboardInterrupt:\n"
            "    print('KeyboardInterrupt')\n")
    native = run(["python3", "-c", code])
    traced = run([A.cli, "-q", "--", "python3", "-c", code])
    check(traced.stdout == native.stdout and traced.returncode == native.returncode,
          "python under mallard behaves as without: %r vs %r" % (traced.stdout, native.stdout), traced)
    # ignored signals stay ignored (nohup)
    p = run([A.cli, "-q", "--", "sh", "-c", "trap '' TERM; kill -TERM $$; echo alive"])
    check(p.stdout == "alive\n", "an ignored SIGTERM stays ignored", p)


def case_report_signal():
    import signal
    import time
    exe = build("signals")
    out = os.path.join(TMP, "live.%n.json")
    p = start([A.cli, "-f", "json", "-o", out, "--report-signal=SIGUSR2", "--", exe, "handler"])
    for i in range(2):
        p.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 30
        want = os.path.join(TMP, "live.%d.json" % (i + 1))
        while time.monotonic() < deadline and not (os.path.exists(want) and open(want).read().rstrip().endswith("}")):
            time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    o, err = p.communicate(timeout=60)
    check(p.returncode == 0 and o == "got 1\n", "the process went on after the live reports: %s %r %s"
          % (p.returncode, o, err))
    docs = [json_docs(os.path.join(TMP, "live.%d.json" % i)) for i in (1, 2, 3)]
    hows = [d[0]["exit"]["how"] for d in docs]
    check(hows == ["live", "live", "exit"], "two live reports, then the exit report: %s" % hows)
    for d in docs:
        check(d[0]["summary"]["definite"] == {"bytes": 123, "blocks": 1}, "each report has the leak: %s"
              % d[0]["summary"])
    check(run([A.cli, "--report-signal=SIGKILL", "true"]).returncode == 2, "a bad report signal is a usage error")
    # off by default: SIGUSR2 keeps its default action
    p = start([A.cli, "-q", "--", exe])
    p.send_signal(signal.SIGUSR2)
    o, err = p.communicate(timeout=60)
    check(p.returncode == -signal.SIGUSR2, "without the option SIGUSR2 kills as before (%s)" % p.returncode)


def case_lsan_interface():
    exe = build("lsan_api")
    p = run([exe])
    check(p.returncode == 0 and p.stdout == "no mallard\n" and p.stderr == "",
          "mallard.h: builds without mallard and runs: every function NULL", p)
    out = os.path.join(TMP, "lsan.json")
    p = run([A.cli, "-f", "json", "-o", out, "--", exe])
    check(p.returncode == 0 and p.stdout == "recoverable 1\nreport_now 1\nafter check\n", "the calls returned", p)
    docs = json_docs(out)
    check(len(docs) == 3 and [d["exit"]["how"] for d in docs] == ["live"] * 3,
          "recoverable, report_now, do_leak_check: three reports and no exit report: %s"
          % [d["exit"]["how"] for d in docs])
    for d in docs:
        check(d["summary"]["definite"] == {"bytes": 555, "blocks": 2},
              "A and D leak, B (disabled) and C (ignored) do not: %s" % d["summary"])
        check(d["summary"]["suppressed"]["bytes"] >= 555, "B and C count as suppressed: %s" % d["summary"])
        fns = sorted(g["stack"][0]["function"] for g in d["leaks"] if g["kind"] == "definite")
        check(fns == ["leak_a", "leak_d"], "the leak groups: %s" % fns)
    p = run([A.cli, "-f", "json", "-o", out + "2", "--exitcode=9", "--", exe])
    check(p.returncode == 9 and "after check" not in p.stdout, "__lsan_do_leak_check exits with the exitcode", p)


# ---- 6. suppressions a user can trust ------------------------------------


def case_suppression_counts():
    supp = os.path.join(TMP, "u.supp")
    with open(supp, "w") as f:
        f.write("# a real LSan file\nleak:leak_one\nleak:never_matches_xyz\n"
                "interceptor_via_fun:some_interceptor\ncalled_from_lib:libfoo.so\nleak:push\n")
    p = run([A.cli, "-s", supp, "--", fixture("simple_leak")])
    check(p.returncode == 0 and "definitely lost: 0 bytes" in p.stderr, "the leak is suppressed", p)
    check("not a suppression" not in p.stderr and "mallard:" not in p.stderr,
          "interceptor_via_fun: and called_from_lib: are skipped without a word", p)
    check(re.search(r"Suppressions used:\n==mallard==   count      bytes template\n==mallard== +1 +100 leak_one\n",
                    p.stderr), "LSan's Suppressions used: table", p)
    check(re.search(r"Suppressions not used:\n==mallard==   leak:never_matches_xyz\n==mallard==   leak:push\n",
                    p.stderr), "unused patterns listed, in file order", p)
    out = os.path.join(TMP, "s.json")
    p = run([A.cli, "-s", supp, "-f", "json", "-o", out, "--", fixture("list_leak")])
    (d,) = json_docs(out)
    check(d["suppressions"] == [{"pattern": "leak_one", "blocks": 0, "bytes": 0},
                                {"pattern": "never_matches_xyz", "blocks": 0, "bytes": 0},
                                {"pattern": "push", "blocks": 10, "bytes": 480}],
          "JSON: each pattern with its use: %s" % d.get("suppressions"))


# ---- 9. nested tags --------------------------------------------------------


def case_tags_nested():
    exe = build("tags_nested")
    p = run([exe])
    check(p.stdout == "no mallard\n" and p.returncode == 0, "runs without mallard", p)
    out = os.path.join(TMP, "tags.json")
    p = run([A.cli, "-f", "json", "-o", out, "--", exe])
    (d,) = json_docs(out)
    got = sorted((g["bytes"], g["tag"]) for g in d["leaks"] if g["kind"] == "definite")
    check(got == [(11, "outer"), (22, "inner"), (33, "outer"), (44, None), (55, None)],
          "push/pop nest: %s" % got)


def stats_of(text, json_out):
    """The MALLARD_STATS summary of one run: a dict of its counts."""
    if json_out:
        docs = [json.loads(l) for l in text.splitlines() if l.startswith('{"mallard_stats"')]
        check(len(docs) == 1, "one JSON stats document: %r" % text)
        return docs[0]["mallard_stats"]
    m = re.search(r"==mallard== stats \(pid \d+, tracer off, backend (\w+), usable bytes\): allocs (\d+), "
                  r"frees (\d+), bytes allocated (\d+), current bytes (\d+), peak bytes (\d+) ", text)
    check(m, "a stats line: %r" % text)
    check("per tag needs the tracer" in text, "says per tag needs the tracer: %r" % text)
    k = ["backend", "allocs", "frees", "bytes_allocated", "current_bytes", "peak_bytes"]
    return dict(zip(k, [m.group(1)] + [int(x) for x in m.groups()[1:]]))


def case_stats_tracer_off():
    # MALLARD_STATS=1 with MALLARD_TRACE=0, under every backend: the counts of a
    # run that makes 10 allocations and 4 frees, less those of a run that makes
    # none (what libc and the thread start allocate themselves), on the main
    # thread and on a thread that has ended by exit.
    exe = build("stats_counts", ["-pthread"])
    backends = [l.split()[0] for l in run([A.cli, "--list-backends"]).stdout.splitlines()]
    check(len(backends) >= 5, "backends listed: %s" % backends)
    for b in backends:
        for thread in ([], ["t"]):
            for fmt in ("text", "json"):
                got = []
                for n, m in ((0, 0), (10, 4)):
                    p = run([A.cli, "--trace=0", "--stats=1", "-b", b, "-f", fmt, "--", exe, str(n), str(m)] + thread)
                    check(p.returncode == 0 and p.stdout == "ok\n", "runs under %s" % b, p)
                    got.append(stats_of(p.stderr, fmt == "json"))
                base, run10 = got
                what = "%s %s%s: %s vs %s" % (b, fmt, " thread" if thread else "", run10, base)
                check(run10["backend"] == b, "names the backend: " + what)
                check(run10["allocs"] - base["allocs"] == 10, "10 more allocations: " + what)
                check(run10["frees"] - base["frees"] == 4, "4 more frees: " + what)
                d_bytes = run10["bytes_allocated"] - base["bytes_allocated"]
                d_cur = run10["current_bytes"] - base["current_bytes"]
                check(1000 <= d_bytes <= 10 * 4096 * 2, "bytes allocated of 10 x 100: " + what)
                check(d_cur >= 600 and d_cur * 10 == d_bytes * 6, "current bytes: 6 of the 10 blocks: " + what)
                check(run10["peak_bytes"] >= run10["current_bytes"] and run10["peak_bytes"] - base["peak_bytes"] >= 1000,
                      "peak bytes: " + what)
                if fmt == "json":
                    d = run10
                    check(d["tracer"] is False and d["tags"] is None and "tracer" in d["tags_note"]
                          and isinstance(d["peak_exact"], bool) and d["peak_exact"] == (not thread),
                          "JSON fields: " + what)
    # unset: no summary, and the library still runs the program
    p = run([A.cli, "--trace=0", "--", exe, "10", "4"])
    check(p.returncode == 0 and "stats" not in p.stderr, "no summary without MALLARD_STATS", p)


def case_tags_patterns():
    # MALLARD_TAGS on a program that never calls mallard_tag: the leaks of
    # parse_* are tagged "parser" at report time from their stacks; the tag
    # table gives the live blocks only (by_stack); a pattern that matches no
    # frame gives no block.
    exe = build("tags_patterns", ["-rdynamic"])
    out = os.path.join(TMP, "tags.json")
    env = {"MALLARD_TAGS": "parse_*=parser,nosuchfunction*=none"}
    p = run([A.cli, "-f", "json", "-o", out, "--", exe], env=env)
    check(p.returncode == 0 and p.stdout == "done\n", "runs", p)
    (d,) = json_docs(out)
    got = {}
    for g in d["leaks"]:
        if g["kind"] == "definite":
            b = got.setdefault(g["tag"], [0, 0])
            b[0] += g["bytes"]
            b[1] += g["blocks"]
    check(got == {None: [50, 1], "parser": [300, 3]}, "parse_* leaks tagged: %s" % got)
    tags = {t["tag"]: t for t in d["tags"]}
    check(tags.get("parser", {}).get("by_stack") is True and tags["parser"]["blocks"] == 3
          and tags["parser"]["current_bytes"] == 300 and tags["parser"]["allocs"] is None,
          "the parser tag: the live blocks only: %s" % d["tags"])
    check(tags.get("none", {}).get("blocks") == 0, "an unmatched pattern tags nothing: %s" % d["tags"])
    p = run([A.cli, "--", exe], env=env)
    check(len(re.findall(r"definite leak of 100 bytes in 1 block \[tag parser\]", p.stderr)) == 3
          and re.search(r"==mallard== parser +- +- +- +300 +-  \(tagged by stack: 3 live blocks\)", p.stderr),
          "text: group tag and table row", p)
    p = run([A.cli, "--", exe])
    check("[tag parser]" not in p.stderr and "definite leak of 100 bytes" in p.stderr, "untagged without MALLARD_TAGS", p)


def case_stats_tracer_on():
    # MALLARD_STATS=1 with the tracer: a clean process writes its whole
    # report (the stats line), and each mallard_tag tag has its allocations,
    # frees, bytes allocated, current and peak bytes.
    true = shutil.which("true")
    p = run([A.cli, "--", true])
    check(p.returncode == 0 and "stats:" not in p.stderr, "a clean process: no stats line by default", p)
    p = run([A.cli, "--stats=1", "--", true])
    check(p.returncode == 0 and re.search(r"stats: \d+ allocs, \d+ frees, \d+ bytes allocated", p.stderr),
          "--stats=1: the stats line", p)
    exe = build("tags_nested")
    out = os.path.join(TMP, "tags.json")
    p = run([A.cli, "-f", "json", "-o", out, "--stats=1", "--", exe])
    (d,) = json_docs(out)
    tags = {t["tag"]: t for t in d["tags"]}
    check(tags["outer"]["allocs"] == 2 and tags["outer"]["bytes_allocated"] == 44 and tags["outer"]["frees"] == 0
          and tags["outer"]["current_bytes"] == 44 and tags["outer"]["peak_bytes"] == 44
          and tags["inner"]["bytes_allocated"] == 22 and tags["inner"]["by_stack"] is False,
          "per tag: allocs, frees, bytes allocated, current, peak: %s" % d["tags"])
    for k in ("allocs", "frees", "bytes_allocated", "current_bytes", "peak_bytes"):
        check(isinstance(d["stats"][k], int), "stats.%s" % k)


def case_strerror_text():
    # the library's own messages give the error's text, not "errno N"
    p = run([A.cli, "-o", os.path.join(TMP, "no-such-dir", "r.txt"), "--", fixture("simple_leak")])
    check("No such file or directory" in p.stderr and not re.search(r"errno \d", p.stderr),
          "an unopenable report path: strerror text", p)
    check("definitely lost: 100 bytes" in p.stderr, "the report still reaches stderr", p)
    p = run([A.cli, "-s", os.path.join(TMP, "no-such.supp"), "--", fixture("simple_leak")])
    check(not re.search(r"errno \d", p.stderr) and "No such file or directory" in p.stderr,
          "an unreadable suppressions file: strerror text", p)


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}


def main():
    global A, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--cli", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", default=None)
    A = ap.parse_args()
    A.cli = os.path.abspath(A.cli)
    A.bin = os.path.abspath(A.bin)
    TMP = tempfile.mkdtemp(prefix="mallard-cli-")
    try:
        CASES[A.case]()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("ok:", A.case)


if __name__ == "__main__":
    main()
