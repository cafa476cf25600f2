#!/bin/sh
# fused.sh LIB PROGRAM BACKEND: runs PROGRAM (fused.c) preloaded, tracer off.
# Passes when it exits 0, prints "fused: ok", and its stderr holds exactly
# one "not a live block" line (the first bad free, reported once) and
# nothing else; then checks MALLARD_ARENA_LIMIT through the same path.
lib=$1 prog=$2 backend=$3
err=$(mktemp) || exit 1
trap 'rm -f "$err"' EXIT
out=$(LD_PRELOAD=$lib MALLARD_BACKEND=$backend MALLARD_TRACE=0 timeout 120 "$prog" 2>"$err")
rc=$?
cat "$err" >&2
[ $rc -eq 0 ] || { echo "FAIL: exit status $rc"; exit 1; }
[ "$out" = "fused: ok" ] || { echo "FAIL: stdout '$out'"; exit 1; }
n=$(grep -c "$backend: free of .*, which is not a live block; ignored (reported once)" "$err")
[ "$n" -eq 1 ] || { echo "FAIL: $n bad-free lines, expected 1"; exit 1; }
[ "$(wc -l <"$err")" -eq 1 ] || { echo "FAIL: other stderr lines"; exit 1; }
if [ "$backend" = arena ]; then
  LD_PRELOAD=$lib MALLARD_BACKEND=arena MALLARD_TRACE=0 MALLARD_ARENA_LIMIT=1M timeout 120 "$prog" limit ||
    { echo "FAIL: the arena budget"; exit 1; }
fi
echo PASS
