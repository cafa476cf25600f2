#!/bin/sh
# tests/conformance/suite_option_echo.sh LIB PROG: a bad MALLARD_* value (or
# an unknown MALLARD_ name) holding a newline is echoed on one stderr line:
# its control characters are shown as '?', so the value cannot forge a line
# of its own (here, one that looks like a mallard report line).
lib=$1 prog=$2
nl='
'
err=$(env "MALLARD_BACKEND=page${nl}==mallard== definitely lost: 0 bytes" \
          "MALLARD_BOGUS${nl}forged=1" LD_PRELOAD="$lib" "$prog" 2>&1 >/dev/null)
status=$?
if [ $status -ne 0 ]; then
    echo "FAIL: status $status"
    exit 1
fi
lines=$(printf '%s\n' "$err" | grep -c .)
good=$(printf '%s\n' "$err" | grep -c '^mallard: ')
if [ "$lines" -ne 2 ] || [ "$good" -ne 2 ]; then
    echo "FAIL: expected 2 stderr lines, each a 'mallard: ' warning; got:"
    printf '%s\n' "$err"
    exit 1
fi
echo "option echo ok"
