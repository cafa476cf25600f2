#!/bin/sh
# tests/hostile/files.sh: the files a user names to mallard (issue 8: report
# and suppressions files, secure-execution mode, long values).
#
#   files.sh LIB HOSTILE CASE
#
# Every run has a watchdog: a hang is a failure.  HOSTILE is
# tests/hostile/hostile.c: it writes "hostile: MODE ok" to stdout (buffered)
# and leaks one 100-byte block.
set -u
lib=$1 prog=$2 case=$3
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL [$case]: $*" >&2
    for f in out err; do
        [ -s "$tmp/$f" ] && { echo "--- $f:" >&2; head -c 3000 "$tmp/$f" >&2; echo >&2; }
    done
    exit 1
}
# run MODE VAR=VALUE...: the program under the preload, watchdog 60 s
run() {
    mode=$1
    shift
    timeout -k 5 60 env LD_PRELOAD="$lib" MALLARD_SUMMARY=all MALLARD_SHOW=all "$@" "$prog" "$mode" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "hung (killed by the watchdog)"
    [ $rc -eq 0 ] || fail "exit status $rc"
    [ "$(cat "$tmp/out")" = "hostile: $mode ok" ] || fail "stdout changed"
}
leak_in() { grep -q "definitely lost: 100 bytes in 1 block" "$1"; }
said() { grep -q "^mallard: .*$1" "$tmp/err" || fail "stderr does not say: $1"; }
mode_of() { stat -c %a "$1"; }

case $case in
symlink) # F3: a symlink planted at the report path is not followed
    echo precious >"$tmp/victim"
    ln -s "$tmp/victim" "$tmp/report"
    run plain MALLARD_REPORT="$tmp/report"
    [ "$(cat "$tmp/victim")" = precious ] || fail "the symlink's target was written"
    said "symbolic link"
    leak_in "$tmp/err" || fail "the report did not go to stderr instead"
    ;;
mode0600) # F3: created 0600, appended by several processes, never truncated
    run plain MALLARD_REPORT="$tmp/r.txt"
    [ "$(mode_of "$tmp/r.txt")" = 600 ] || fail "report file mode $(mode_of "$tmp/r.txt"), expected 600"
    run plain MALLARD_REPORT="$tmp/r.txt"
    [ "$(grep -c 'definitely lost: 100 bytes' "$tmp/r.txt")" = 2 ] || fail "second report did not append"
    # four processes at once, one file: four whole reports
    for i in 1 2 3 4; do
        timeout 60 env LD_PRELOAD="$lib" MALLARD_REPORT="$tmp/many.txt" "$prog" plain >/dev/null 2>&1 &
    done
    wait
    [ "$(grep -c 'definitely lost: 100 bytes' "$tmp/many.txt")" = 4 ] || fail "4 processes, not 4 reports"
    [ "$(grep -c 'LEAK SUMMARY' "$tmp/many.txt")" = 4 ] || fail "reports interleaved"
    ;;
otheruser) # F3: an existing file of another user is never written
    [ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
    echo theirs >"$tmp/theirs"
    chown 65534:65534 "$tmp/theirs"
    chmod 666 "$tmp/theirs"
    run plain MALLARD_REPORT="$tmp/theirs"
    [ "$(cat "$tmp/theirs")" = theirs ] || fail "another user's file was written"
    said "another user"
    ;;
fiforeport) # F4: a FIFO with no reader as the report
    mkfifo "$tmp/fifo"
    run plain MALLARD_REPORT="$tmp/fifo"
    said "FIFO"
    leak_in "$tmp/err" || fail "the report did not go to stderr instead"
    ;;
fifosupp) # F4: a FIFO with no writer as the suppressions file
    mkfifo "$tmp/fifo"
    run plain MALLARD_SUPPRESSIONS="$tmp/fifo"
    said "FIFO"
    leak_in "$tmp/err" || fail "no report"
    ;;
dirsupp) # F4: a directory as the suppressions file
    run plain MALLARD_SUPPRESSIONS="$tmp"
    said "directory"
    ;;
ttystderr) # F4: the terminal or pipe stderr already is, by name
    run plain MALLARD_REPORT=/dev/stderr
    leak_in "$tmp/err" || fail "no report on /dev/stderr"
    grep -q "^mallard:" "$tmp/err" && fail "a warning for /dev/stderr"
    ;;
devnull) # /dev/null is a fine place for a report nobody wants
    run plain MALLARD_REPORT=/dev/null
    [ -s "$tmp/err" ] && fail "stderr is not empty"
    ;;
glob) # F7: a pattern that is exponential for a backtracking glob
    printf 'leak:*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n' >"$tmp/supp"
    run longname MALLARD_SUPPRESSIONS="$tmp/supp"
    leak_in "$tmp/err" || fail "the leak is not reported"
    printf 'leak:*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a\n' >"$tmp/supp"
    run longname MALLARD_SUPPRESSIONS="$tmp/supp"
    leak_in "$tmp/err" && fail "the leak is not suppressed"
    grep -q "suppressed: 100 bytes" "$tmp/err" || fail "not counted as suppressed"
    ;;
dollar) # F7: '$' anchors the end; '*' before it allows anything
    printf 'leak:other*$\n' >"$tmp/supp"
    run other MALLARD_SUPPRESSIONS="$tmp/supp"
    grep -q "suppressed: 100 bytes" "$tmp/err" || fail "other*\$ does not match other_leaker"
    printf 'leak:^other_leak$\n' >"$tmp/supp"
    run other MALLARD_SUPPRESSIONS="$tmp/supp"
    leak_in "$tmp/err" || fail "^other_leak\$ matches other_leaker"
    # LSan's TemplateMatch: a bare '$' (or '^$') would match the empty name
    # only, so it suppresses nothing; '*$' matches every name
    printf 'leak:$\n' >"$tmp/supp"
    run other MALLARD_SUPPRESSIONS="$tmp/supp"
    leak_in "$tmp/err" || fail "a bare \$ suppresses the leak (LSan's matches nothing)"
    grep -q "suppressed: 0 bytes" "$tmp/err" || fail "a bare \$ suppresses something"
    printf 'leak:^$\n' >"$tmp/supp"
    run other MALLARD_SUPPRESSIONS="$tmp/supp"
    leak_in "$tmp/err" || fail "^\$ suppresses the leak (LSan's matches nothing)"
    printf 'leak:*$\n' >"$tmp/supp"
    run other MALLARD_SUPPRESSIONS="$tmp/supp"
    grep -q "suppressed: 100 bytes" "$tmp/err" || fail "*\$ does not match every name"
    printf 'leak:leaker$\n' >"$tmp/supp"
    run other MALLARD_SUPPRESSIONS="$tmp/supp"
    grep -q "suppressed: 100 bytes" "$tmp/err" || fail "leaker\$ does not match other_leaker"
    printf 'leak:other$\n' >"$tmp/supp"
    run other MALLARD_SUPPRESSIONS="$tmp/supp"
    leak_in "$tmp/err" || fail "other\$ matches other_leaker"
    ;;
bigsupp) # F7: a suppressions file over 1 MiB is read whole
    awk 'BEGIN { for (i = 0; i < 40000; i++) printf "# padding line %d ........................\n", i }' \
        >"$tmp/supp"
    echo "leak:leak_one" >>"$tmp/supp"
    [ "$(wc -c <"$tmp/supp")" -gt 1048576 ] || fail "test file under 1 MiB"
    run plain MALLARD_SUPPRESSIONS="$tmp/supp"
    grep -q "suppressed: 100 bytes" "$tmp/err" || fail "the last line of a 1.8 MiB file was not read"
    ;;
badlines) # F7: 100k bad lines, one stderr line with the count
    awk 'BEGIN { for (i = 0; i < 100000; i++) print "bogus line " i }' >"$tmp/supp"
    run plain MALLARD_SUPPRESSIONS="$tmp/supp"
    [ "$(grep -c '^mallard:' "$tmp/err")" = 1 ] || fail "$(grep -c '^mallard:' "$tmp/err") mallard lines, expected 1"
    said "100000 lines"
    ;;
longreport) # F8: a MALLARD_REPORT of 4073-4095 characters lands where it says
    d=$tmp
    while [ ${#d} -lt 3850 ]; do d=$d/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd; done
    mkdir -p "$d"
    f=$d/
    while [ ${#f} -lt 4085 ]; do f=${f}r; done
    run plain MALLARD_REPORT="$f"
    [ -f "$f" ] && leak_in "$f" || fail "the report is not in the ${#f}-character path"
    [ "$(find "$tmp" -type f | wc -l)" = 3 ] || fail "other files written: $(find "$tmp" -type f)"
    ;;
longexpand) # F8: %p expanded past the limit is refused, saying so
    f=$tmp/
    while [ ${#f} -lt 4090 ]; do f=${f}%p; done
    run plain MALLARD_REPORT="$f"
    said "too long"
    leak_in "$tmp/err" || fail "the report did not go to stderr instead"
    ;;
longvalue) # F8: a long bad value is shortened in the warning, the warning is whole
    v=$(awk 'BEGIN { while (n++ < 3000) printf "x" }')
    run plain MALLARD_FORMAT="$v"
    grep -q "^mallard: MALLARD_FORMAT=x*\.\.\.x* is not valid; accepted: text|json; using the default text\$" \
        "$tmp/err" || fail "the warning for a 3000-byte value is not whole"
    v=$(awk 'BEGIN { while (n++ < 5000) printf "y" }')
    run plain MALLARD_REPORT="$tmp/$v"
    said "MALLARD_REPORT=.* is not valid (too long); accepted: PATH"
    leak_in "$tmp/err" || fail "the report did not go to stderr"
    ;;
setuid) # F2: setuid-root program, mallard in /etc/ld.so.preload, run by nobody
    [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v setpriv >/dev/null ||
        { echo "needs root, unshare and setpriv"; exit 77; }
    chmod 755 "$tmp"
    cp "$lib" "$tmp/libmallard.so"
    cp "$prog" "$tmp/suid"
    chmod 4755 "$tmp/suid"
    echo precious >"$tmp/victim"
    chmod 644 "$tmp/victim"
    echo "leak:SECRETLINE" >"$tmp/secret"
    echo "SECRET_NOT_A_SUPPRESSION" >>"$tmp/secret"
    chmod 600 "$tmp/secret"
    cp -a /etc "$tmp/etc"
    echo "$tmp/libmallard.so" >"$tmp/etc/ld.so.preload"
    # shellcheck disable=SC2016
    timeout -k 5 60 unshare -m sh -c 'mount --bind "$1/etc" /etc &&
        exec setpriv --reuid=65534 --regid=65534 --clear-groups env MALLARD_REPORT="$1/victim" \
            MALLARD_SUPPRESSIONS="$1/secret" "$1/suid" plain' sh "$tmp" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "hung"
    [ $rc -eq 0 ] || fail "exit status $rc"
    [ "$(cat "$tmp/out")" = "hostile: plain ok" ] || fail "stdout changed"
    [ "$(cat "$tmp/victim")" = precious ] || fail "the setuid program wrote the user's MALLARD_REPORT as root"
    grep -q SECRET "$tmp/err" && fail "a root-only file was echoed to the user"
    said "secure-execution mode"
    leak_in "$tmp/err" || fail "the report did not go to stderr"
    # and the same with a new file: it must not be created
    timeout -k 5 60 unshare -m sh -c 'mount --bind "$1/etc" /etc &&
        exec setpriv --reuid=65534 --regid=65534 --clear-groups env MALLARD_REPORT=/newfile-by-suid \
            "$1/suid" plain' sh "$tmp" >"$tmp/out" 2>"$tmp/err"
    [ ! -e /newfile-by-suid ] || { rm -f /newfile-by-suid; fail "the setuid program created a file as root"; }
    ;;
*)
    echo "unknown case $case" >&2
    exit 2
    ;;
esac
echo "ok: $case"
