#!/bin/sh
# tests/conformance/preload_cmp.sh: run a command without and with the
# preload and require the same stdout and exit status (HAZARDS §1, §14-16).
#
#   preload_cmp.sh [-f SED_SCRIPT]... [-x LIB] PRELOAD_LIST -- COMMAND [ARG...]
#
# PRELOAD_LIST is the LD_PRELOAD value; it must contain libmallard.so.  The
# preloaded run's stderr is passed through (so ctest's FAIL_REGULAR_EXPRESSION
# sees it) and any "mallard:" line or ld.so "cannot be preloaded" warning
# fails the test: ld.so fails open, so that warning means nothing was tested.
# Each SED_SCRIPT (one command; repeat -f for more) filters both stdouts
# before the comparison, for output that differs by design (addresses under
# ASLR).  -x LIB is for ldd, which lists every object loaded, so also the
# preload and its own dependencies: lines of the preloaded run whose first
# word names LIB or one of its dependencies, and that the reference run does
# not have, are dropped; everything else must match.
# Exit: 0 same; 1 different output or status; 2 usage; 3 preload warning;
# 4 mallard not loaded.
set -u
filter=
extra_of=
while [ "${1:-}" = -f ] || [ "${1:-}" = -x ]; do
    if [ "$1" = -f ]; then
        filter="$filter
$2"
    else
        extra_of=$2
    fi
    shift 2
done
[ $# -ge 3 ] && [ "$2" = -- ] || { echo "usage: $0 [-f SED]... [-x LIB] PRELOAD -- CMD..." >&2; exit 2; }
pre=$1
shift 2

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# The preload really loads: the maps of a preloaded process name it.
LD_PRELOAD=$pre /bin/cat /proc/self/maps >"$tmp/maps" 2>"$tmp/maps.err"
cat "$tmp/maps.err" >&2
if grep -q 'cannot be preloaded' "$tmp/maps.err"; then
    echo "preload_cmp: ld.so refused a preload library" >&2
    exit 3
fi
if ! grep -q 'libmallard\.so' "$tmp/maps"; then
    echo "preload_cmp: libmallard.so is not in a preloaded process's maps" >&2
    exit 4
fi

env -u LD_PRELOAD "$@" >"$tmp/ref.out" 2>"$tmp/ref.err"
ref_rc=$?
# through env, so that a name like "true" is executed, never a shell builtin
env LD_PRELOAD="$pre" "$@" >"$tmp/pre.out" 2>"$tmp/pre.err"
pre_rc=$?
cat "$tmp/pre.err" >&2

if grep -q 'cannot be preloaded' "$tmp/pre.err"; then
    echo "preload_cmp: ld.so refused a preload library" >&2
    exit 3
fi
if grep -q 'mallard:' "$tmp/pre.err"; then
    echo "preload_cmp: mallard printed a warning" >&2
    exit 1
fi
if [ -n "$filter" ]; then
    sed -e "$filter" "$tmp/ref.out" >"$tmp/ref.f" && sed -e "$filter" "$tmp/pre.out" >"$tmp/pre.f" || exit 2
else
    cp "$tmp/ref.out" "$tmp/ref.f" && cp "$tmp/pre.out" "$tmp/pre.f"
fi
if [ -n "$extra_of" ]; then
    { echo "$extra_of"; env -u LD_PRELOAD ldd "$extra_of" | awk '{ print $1 }'; } >"$tmp/deps" || exit 2
    awk 'FILENAME == ARGV[1] { dep[$1] = 1; n = split($1, part, "/"); dep[part[n]] = 1; next }
         FILENAME == ARGV[2] { ref[$0] = 1; next }
         { n = split($1, part, "/") }
         !($0 in ref) && (($1 in dep) || (part[n] in dep)) { next }
         { print }' "$tmp/deps" "$tmp/ref.f" "$tmp/pre.f" >"$tmp/pre.x" && mv "$tmp/pre.x" "$tmp/pre.f" || exit 2
fi
status=0
if [ "$ref_rc" != "$pre_rc" ]; then
    echo "preload_cmp: exit status $pre_rc under the preload, $ref_rc without" >&2
    status=1
fi
if ! cmp -s "$tmp/ref.f" "$tmp/pre.f"; then
    echo "preload_cmp: stdout differs (- without, + with the preload):" >&2
    diff -u "$tmp/ref.f" "$tmp/pre.f" | head -40 >&2
    status=1
fi
[ $status -eq 0 ] && echo "preload_cmp: same stdout and status ($ref_rc): $*"
exit $status
