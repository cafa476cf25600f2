#!/usr/bin/env bash
# tests/safe/run_safe.sh CASE BACKEND TRACE
#
# Runs one of the issue-7 programs (built in $ML_SAFE_BIN) under
# LD_PRELOAD=$ML_LIB with MALLARD_BACKEND=BACKEND and MALLARD_TRACE=TRACE,
# each run under a watchdog `timeout` (a hang is exit status 124: FAIL).
#   getattr        threads that call pthread_getattr_np on themselves first
#                  thing: same stdout and status as without mallard
#   fork_deadlock  glibc's tst-malloc-fork-deadlock pattern, 4 runs of 1 s
#   sig_malloc     a signal handler that allocates, 6 runs of 1 s
#   exit_race      two threads in exit() at once, 20 runs with the report
#                  in a file and 20 with it on stderr: one whole report each;
#                  then 3 of each with mallard's exit handler started 300 ms
#                  late (slow_on_exit.so), the window another exit() races
#   exit_dlclose   exit_race with dlclose_spy.so preloaded: nothing is
#                  dlclosed once exit() began
#   exit_order     unflushed stdout and a leak: in the merged 2>&1 stream
#                  (a pipe, and a file) the report follows all the output
#   quiet          a clean program: a bare preload adds nothing to stderr;
#                  the mallard command adds one line, for its own process
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 CASE BACKEND TRACE" >&2; exit 2; }
case_name=$1 backend=$2 trace=$3
name="safe_${case_name}_${backend}_${trace}"
exec 3>&2 # fail() may run where stderr is redirected to a file
fail() {
    echo "FAIL $name: $*" >&3
    exit 1
}
[ -r "${ML_LIB:-}" ] || fail "ML_LIB is not set"
[ -d "${ML_SAFE_BIN:-}" ] || fail "ML_SAFE_BIN is not set"
unset LD_PRELOAD
for v in $(compgen -e); do
    case $v in MALLARD_* | _MALLARD_*) unset "$v" ;; esac
done
export LC_ALL=C
B=$ML_SAFE_BIN
T=$(mktemp -d "${TMPDIR:-/tmp}/mallard-safe.XXXXXX")
trap 'rm -rf "$T"' EXIT
ml=(env LD_PRELOAD="$ML_LIB" MALLARD_BACKEND="$backend" MALLARD_TRACE="$trace")

# runs "$@" under the watchdog; sets rc
watch() {
    set +e
    timeout -k 5 "$WATCH" "$@"
    rc=$?
    set -e
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "hung (killed after ${WATCH}s): $*"
}

case $case_name in
getattr)
    WATCH=60
    watch "$B/getattr_thread" 40 >"$T/ref.out"
    ref_rc=$rc
    watch "${ml[@]}" "$B/getattr_thread" 40 >"$T/ml.out" 2>"$T/ml.err"
    [ "$rc" -eq "$ref_rc" ] || fail "exit status $rc, $ref_rc without mallard"
    cmp -s "$T/ref.out" "$T/ml.out" || fail "stdout differs: $(cat "$T/ml.out") vs $(cat "$T/ref.out")"
    ;;
fork_deadlock)
    WATCH=60
    for i in 1 2 3 4; do
        watch "${ml[@]}" "$B/fork_deadlock" 1000 >"$T/ml.out"
        [ "$rc" -eq 0 ] || fail "run $i exited $rc"
        [ "$(cat "$T/ml.out")" = "forks ok" ] || fail "run $i printed: $(cat "$T/ml.out")"
    done
    ;;
sig_malloc)
    WATCH=30
    for i in 1 2 3 4 5 6; do
        watch "${ml[@]}" "$B/sig_malloc" 1000 >"$T/ml.out" 2>"$T/ml.err"
        [ "$rc" -eq 0 ] || fail "run $i exited $rc: $(tail -n 5 "$T/ml.err")"
        [ "$(cat "$T/ml.out")" = "signals ok" ] || fail "run $i printed: $(cat "$T/ml.out")"
    done
    ;;
exit_race)
    WATCH=60
    for i in $(seq 1 20); do
        rm -f "$T"/report.*
        watch "${ml[@]}" MALLARD_REPORT="$T/report.%p" "$B/exit_race" 2>"$T/ml.err"
        [ "$rc" -eq 0 ] || fail "run $i (report to a file) exited $rc"
        n=$(find "$T" -name 'report.*' | wc -l)
        [ "$n" -eq 1 ] || fail "run $i: $n report files"
        f=$(find "$T" -name 'report.*')
        grep -q 'definitely lost: 4242 bytes in 1 block' "$f" || fail "run $i: report file without the leak: $(head -c 300 "$f")"
        tail -n 1 "$f" | grep -q '^==mallard== stats: ' || fail "run $i: report file cut short: $(tail -n 2 "$f")"
        [ "$(grep -c 'LEAK SUMMARY' "$f")" -eq 1 ] || fail "run $i: more than one report in the file"
    done
    for i in $(seq 1 20); do
        watch "${ml[@]}" "$B/exit_race" 2>"$T/ml.err"
        [ "$rc" -eq 0 ] || fail "run $i (report to stderr) exited $rc"
        [ "$(grep -c 'LEAK SUMMARY' "$T/ml.err")" -eq 1 ] || fail "run $i: $(grep -c 'LEAK SUMMARY' "$T/ml.err") reports on stderr"
        grep -q 'definitely lost: 4242 bytes in 1 block' "$T/ml.err" || fail "run $i: no leak on stderr"
        tail -n 1 "$T/ml.err" | grep -q '^==mallard== stats: ' || fail "run $i: report on stderr cut short"
    done
    # the window between one thread taking mallard's exit handler off
    # glibc's list and running it, widened to 300 ms (slow_on_exit.so): the
    # other threads in exit() must not end the process before the report
    [ -r "$B/slow_on_exit.so" ] || fail "$B/slow_on_exit.so is missing"
    slow=(env LD_PRELOAD="$B/slow_on_exit.so:$ML_LIB" MALLARD_BACKEND="$backend" MALLARD_TRACE="$trace")
    for i in $(seq 1 3); do
        rm -f "$T"/report.*
        watch "${slow[@]}" MALLARD_REPORT="$T/report.%p" "$B/exit_race" 2>"$T/ml.err"
        [ "$rc" -eq 0 ] || fail "slow handler run $i exited $rc"
        n=$(find "$T" -name 'report.*' | wc -l)
        [ "$n" -eq 1 ] || fail "slow handler run $i: $n report files"
        f=$(find "$T" -name 'report.*')
        grep -q 'definitely lost: 4242 bytes in 1 block' "$f" || fail "slow handler run $i: report file without the leak"
        tail -n 1 "$f" | grep -q '^==mallard== stats: ' || fail "slow handler run $i: report file cut short"
        watch "${slow[@]}" "$B/exit_race" 2>"$T/ml.err"
        [ "$rc" -eq 0 ] || fail "slow handler run $i (stderr) exited $rc"
        [ "$(grep -c 'LEAK SUMMARY' "$T/ml.err")" -eq 1 ] || fail "slow handler run $i: $(grep -c 'LEAK SUMMARY' "$T/ml.err") reports on stderr"
    done
    ;;
exit_dlclose)
    WATCH=60
    # nothing is dlclosed once exit() began (dlclose_spy.so): another
    # thread's _dl_fini takes its opencount bumps back without the loader
    # lock, so a dlopen/dlclose pair in the report can unmap a live object
    [ -r "$B/dlclose_spy.so" ] || fail "$B/dlclose_spy.so is missing"
    spy=(env LD_PRELOAD="$B/dlclose_spy.so:$ML_LIB" MALLARD_BACKEND="$backend" MALLARD_TRACE="$trace")
    for i in 1 2 3; do
        watch "${spy[@]}" "$B/exit_race" 2>"$T/ml.err"
        [ "$rc" -eq 0 ] || fail "run $i exited $rc"
        grep -q 'definitely lost: 4242 bytes in 1 block' "$T/ml.err" || fail "run $i: no leak report: $(head -c 600 "$T/ml.err")"
        ! grep -q 'dlclose_spy:' "$T/ml.err" || fail "run $i: $(grep 'dlclose_spy:' "$T/ml.err" | head -n 1)"
    done
    ;;
exit_order)
    WATCH=60
    # merged into a pipe, then into a file: stdout is fully buffered, so
    # glibc flushes the program's last words only at exit
    watch sh -c '"$0" 2>&1 | cat' "$B/exit_order" >"$T/ref.pipe"
    watch "${ml[@]}" sh -c '"$0" 2>&1 | cat' "$B/exit_order" >"$T/ml.pipe"
    watch sh -c '"$0" >"$1" 2>&1' "$B/exit_order" "$T/ref.file"
    watch "${ml[@]}" sh -c '"$0" >"$1" 2>&1' "$B/exit_order" "$T/ml.file"
    for how in pipe file; do
        grep -q 'definitely lost: 4321 bytes in 1 block' "$T/ml.$how" || fail "$how: no leak reported: $(cat "$T/ml.$how")"
        grep -v '^==mallard==' "$T/ml.$how" >"$T/ml.$how.prog" || true
        cmp -s "$T/ref.$how" "$T/ml.$how.prog" || fail "$how: the program's output changed: $(cat "$T/ml.$how")"
        # every report line after every program line
        first=$(grep -n '^==mallard==' "$T/ml.$how" | head -n 1 | cut -d: -f1)
        last=$(grep -vn '^==mallard==' "$T/ml.$how" | tail -n 1 | cut -d: -f1)
        [ "$first" -gt "$last" ] || fail "$how: the report (line $first) comes before the program's output (line $last):
$(head -n 8 "$T/ml.$how")"
    done
    ;;
quiet)
    WATCH=60
    watch "$B/clean" >"$T/ref.out" 2>"$T/ref.err"
    watch "${ml[@]}" "$B/clean" >"$T/ml.out" 2>"$T/ml.err"
    cmp -s "$T/ref.out" "$T/ml.out" || fail "stdout differs"
    cmp -s "$T/ref.err" "$T/ml.err" || fail "a clean process wrote to stderr under a bare preload: $(cat "$T/ml.err")"
    watch "${ml[@]}" sh -c '"$0" 2>&1 | cat' "$B/clean" >"$T/ml.merged"
    watch sh -c '"$0" 2>&1 | cat' "$B/clean" >"$T/ref.merged"
    cmp -s "$T/ref.merged" "$T/ml.merged" || fail "merged output differs: $(cat "$T/ml.merged")"
    # the mallard command: one line, for the process it started only
    [ -x "${ML_CLI:-}" ] || fail "ML_CLI is not set"
    watch env MALLARD_BACKEND="$backend" "$ML_CLI" --lib="$ML_LIB" -- sh -c '"$0"; "$0"' "$B/clean" >/dev/null 2>"$T/cli.err"
    [ "$rc" -eq 0 ] || fail "the mallard command exited $rc"
    n=$(grep -c '^==mallard== ' "$T/cli.err" || true)
    [ "$n" -eq 1 ] || fail "the mallard command printed $n mallard lines (one expected): $(cat "$T/cli.err")"
    grep -q '^==mallard== pid [0-9]* (sh): no leaks, no errors' "$T/cli.err" || fail "no summary line for the top process: $(cat "$T/cli.err")"
    ;;
*) fail "unknown case" ;;
esac
echo "PASS $name"
