#!/bin/sh
# tests/soak/soak.sh LIB SOAK SOAK_LIB [SECONDS]: the soak program under the
# preload (MALLARD_BACKEND from the environment) with a watchdog: if it has
# not ended SECONDS + 60 s later, every thread's backtrace is printed (gdb
# -batch when installed, else /proc/PID/task/*/stack) and the test fails.
set -u
lib=$1 prog=$2 dso=$3 secs=${4:-${SOAK_SECONDS:-20}}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
LD_PRELOAD=$lib "$prog" "$dso" "$secs" >"$out" 2>&1 &
pid=$!
limit=$((secs + 60))
waited=0
while kill -0 "$pid" 2>/dev/null && [ $waited -lt $limit ]; do
    sleep 1
    waited=$((waited + 1))
done
if kill -0 "$pid" 2>/dev/null; then
    echo "soak: HUNG after ${waited} s (backend ${MALLARD_BACKEND:-default}); threads:" >&2
    if command -v gdb >/dev/null; then
        gdb -batch -p "$pid" -ex "thread apply all bt" 2>&1 | grep -v '^\[' >&2
    else
        for t in /proc/"$pid"/task/*; do echo "$t:"; cat "$t/stack"; done >&2
    fi
    kill -9 "$pid"
    cat "$out" >&2
    exit 1
fi
wait "$pid"
rc=$?
cat "$out"
[ $rc -eq 0 ] || { echo "soak: exit status $rc" >&2; exit 1; }
grep -q "^soak: .* malloc-family operations" "$out" || exit 1
