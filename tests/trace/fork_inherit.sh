#!/bin/sh
# tests/trace/fork_inherit.sh LIB PROG BACKEND: three processes (parent,
# child, grandchild), three reports, each with only its own leak.
set -u
lib=$1 prog=$2 backend=$3
d=$(mktemp -d "${TMPDIR:-/tmp}/mallard-fork-inherit.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT
out=$(env LD_PRELOAD="$lib" MALLARD_BACKEND="$backend" MALLARD_TRACE=1 MALLARD_REPORT="$d/report.%p" \
    timeout 60 "$prog") || { echo "FAIL: exit status $?"; exit 1; }
[ "$out" = done ] || { echo "FAIL: stdout '$out'"; exit 1; }
n=$(ls "$d" | wc -l)
[ "$n" -eq 3 ] || { echo "FAIL: $n reports"; ls "$d"; exit 1; }
status=0
for want in 111 222 333; do
    f=$(grep -l "definitely lost: $want bytes in 1 block" "$d"/report.* | head -n 1)
    if [ -z "$f" ]; then
        echo "FAIL: no report with only the $want-byte leak definite"
        grep -h "definitely lost" "$d"/report.*
        status=1
    fi
done
[ $status -eq 0 ] && echo "fork_inherit ok"
exit $status
