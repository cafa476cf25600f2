#!/bin/sh
# tests/page/expect_signal.sh: runs a fixture and judges how it ended.
# usage: expect_signal.sh SEGV|OK COMMAND [ARG...]
#   SEGV  the command must die of SIGSEGV and print nothing on stdout.
#   OK    it must exit 0 and print exactly one line, "survived".
# With EXPECT_STDERR set, stderr must also match that extended regex.
# Whatever the command wrote on stderr is shown, so a failure explains itself.
expect=$1
shift
ulimit -c 0
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
"$@" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/err" >&2
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
case $expect in
SEGV)
    # A shell reports death by signal N as 128+N.
    [ "$rc" -gt 128 ] || fail "exit status $rc, expected death by SIGSEGV"
    sig=$(kill -l $((rc - 128)))
    [ "$sig" = SEGV ] || fail "died of SIG$sig, expected SIGSEGV"
    [ -s "$tmp/out" ] && fail "stdout not empty: $(cat "$tmp/out")"
    ;;
OK)
    [ "$rc" -eq 0 ] || fail "exit status $rc, expected 0"
    printf 'survived\n' | cmp -s - "$tmp/out" || fail "stdout is '$(cat "$tmp/out")', expected one line 'survived'"
    ;;
*)
    fail "unknown expectation '$expect'"
    ;;
esac
if [ -n "$EXPECT_STDERR" ]; then
    grep -Eq -- "$EXPECT_STDERR" "$tmp/err" || fail "stderr does not match /$EXPECT_STDERR/"
fi
echo "ok: $expect ($rc)"
