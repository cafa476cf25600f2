#!/bin/sh
# tests/fail/run.sh: fault injection (MALLARD_FAIL, MALLARD_FAIL_RATE with
# MALLARD_SEED, MALLARD_LIMIT) against the preload.
#
#   run.sh LIB FAIL FAILXX CASE
#
# MALLARD_BACKEND and MALLARD_TRACE come from the environment.  Every run
# has a watchdog: a hang is a failure.
set -u
lib=$1 prog=$2 progxx=$3 case=$4
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL [$case, backend ${MALLARD_BACKEND:-default}, trace ${MALLARD_TRACE:-1}]: $*" >&2
    for f in out err; do
        [ -s "$tmp/$f" ] && { echo "--- $f:" >&2; head -c 4000 "$tmp/$f" >&2; }
    done
    exit 1
}
# run OUTNAME PROGRAM ARGS... (environment assignments before: via env)
run() {
    out=$1
    shift
    timeout -k 5 60 env LD_PRELOAD="$lib" "$@" >"$tmp/$out" 2>"$tmp/err"
    rc=$?
    [ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "hung (killed by the watchdog)"
    [ $rc -eq 0 ] || fail "exit status $rc (1: a failure left errno other than ENOMEM)"
    cp "$tmp/$out" "$tmp/out"
}
case $case in
nth)
    # the Nth call fails, and only it: index N-1 of the program's calls
    # (mallard's own start-up requests do not count)
    for n in 1 2 57 300; do
        run nth MALLARD_FAIL=$n "$prog" count 400
        [ "$(tr '\n' ' ' <"$tmp/nth")" = "failures=1 $((n - 1)) " ] ||
            fail "MALLARD_FAIL=$n: expected exactly call $((n - 1)) to fail"
    done
    run none MALLARD_FAIL=0 "$prog" count 400
    [ "$(head -1 "$tmp/none")" = "failures=0" ] || fail "MALLARD_FAIL=0 failed something"
    ;;
rate)
    run a MALLARD_FAIL_RATE=0.1 MALLARD_SEED=7 "$prog" count 3000
    run b MALLARD_FAIL_RATE=0.1 MALLARD_SEED=7 "$prog" count 3000
    run c MALLARD_FAIL_RATE=0.1 MALLARD_SEED=8 "$prog" count 3000
    cmp -s "$tmp/a" "$tmp/b" || fail "the same seed failed different calls"
    cmp -s "$tmp/a" "$tmp/c" && fail "seeds 7 and 8 failed the same calls"
    k=$(head -1 "$tmp/a" | sed 's/failures=//')
    [ "$k" -ge 150 ] && [ "$k" -le 450 ] || fail "rate 0.1 of 3000 calls failed $k (expected about 300)"
    run d MALLARD_FAIL_RATE=1 "$prog" count 100
    [ "$(head -1 "$tmp/d")" = "failures=100" ] || fail "rate 1 did not fail every call"
    run e MALLARD_FAIL_RATE=0.0 "$prog" count 100
    [ "$(head -1 "$tmp/e")" = "failures=0" ] || fail "rate 0 failed something"
    ;;
limit)
    run lim MALLARD_LIMIT=1M "$prog" limit
    [ "$(cat "$tmp/lim")" = "limit ok" ] || fail "MALLARD_LIMIT=1M"
    # threads racing for the last bytes of the budget never get more than
    # it together (the check and the count are one atomic step)
    run race MALLARD_LIMIT=1000000 "$prog" limitrace 1000000
    [ "$(cat "$tmp/race")" = "limitrace ok" ] || fail "MALLARD_LIMIT=1000000 (ballast, then 72 KB of room) with 8 threads"
    ;;
cxx)
    # new: the Nth throws std::bad_alloc; nothrow new returns NULL
    for mode in throw nothrow; do
        run x MALLARD_FAIL=50 "$progxx" $mode
        [ "$(cat "$tmp/x")" = "failures=1 first=49" ] || fail "operator new ($mode) under MALLARD_FAIL=50"
    done
    ;;
report)
    # the report counts the injected failures and names the first one's stack
    run t MALLARD_FAIL=100 MALLARD_FAIL_RATE=0.01 MALLARD_SEED=3 "$prog" count 1000
    k=$(head -1 "$tmp/t" | sed 's/failures=//')
    [ "$k" -ge 2 ] || fail "expected at least 2 failures"
    grep -q "^==mallard==  injected failures: $k, the first at:\$" "$tmp/err" ||
        fail "no 'injected failures: $k' line in the text report"
    grep -A1 "injected failures:" "$tmp/err" | grep -q '#0 alloc_here ' || fail "frame 0 of the first failure is not alloc_here"
    run j MALLARD_FAIL=100 MALLARD_FAIL_RATE=0.01 MALLARD_SEED=3 MALLARD_FORMAT=json "$prog" count 1000
    cmp -s "$tmp/t" "$tmp/j" || fail "text and JSON runs failed different calls"
    python3 - "$tmp/err" "$k" <<'PY' || fail "JSON report"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["injected_failures"] == int(sys.argv[2]), d["injected_failures"]
assert d["first_injected_failure"][0]["function"] == "alloc_here", d["first_injected_failure"][0]
PY
    # nothing set: no field counts anything
    run n MALLARD_FORMAT=json MALLARD_SHOW=all "$prog" count 100
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['injected_failures']==0 and d['first_injected_failure']==[]" \
        "$tmp/err" || fail "JSON report without injection"
    ;;
*)
    fail "unknown case"
    ;;
esac
exit 0
