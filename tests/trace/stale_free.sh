#!/bin/sh
# tests/trace/stale_free.sh LIB BIN BACKEND: the error lines of stale_free.c,
# in order, under one backend (addresses masked).
lib=$1 bin=$2 backend=$3
out=$(MALLARD_BACKEND=$backend MALLARD_TRACE=1 LD_PRELOAD=$lib timeout 60 "$bin" 2>&1 >/dev/null) || {
    echo "stale_free: exit status $?"; echo "$out"; exit 1; }
got=$(printf '%s\n' "$out" | grep -E '^mallard: |errors:' | sed 's/0x[0-9a-f]*/ADDR/g; s/ *==mallard== *//')
want="mallard: double free of ADDR (a 64-byte block) in main stale_free.c:63; the report has the stacks
mallard: invalid free of ADDR in main stale_free.c:64; the report has the stacks
mallard: invalid realloc of ADDR (a 64-byte block) in main stale_free.c:65; the report has the stacks
mallard: invalid realloc of ADDR in main stale_free.c:66; the report has the stacks
mallard: double free of ADDR (a 48-byte block) in main stale_free.c:80; the report has the stacks
mallard: double free of ADDR (a 40-byte block) in main stale_free.c:85; the report has the stacks
errors: 6"
if [ "$got" = "$want" ]; then
    echo "stale_free ok"
else
    echo "stale_free: got"; echo "$got"; echo "wanted"; echo "$want"; exit 1
fi
