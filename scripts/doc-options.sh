#!/usr/bin/env bash
# scripts/doc-options.sh check|update readme|man|all MALLARD
#
# README.md and man/mallard.1 each carry the MALLARD_* option table that the
# mallard command prints from core/options.c, between two marker lines:
#   README.md      <!-- options:begin -->  ...  <!-- options:end -->
#                  (the output of `mallard --markdown`)
#   man/mallard.1  .\" options:begin  ...  .\" options:end
#                  (the output of `mallard --man`)
# check man also runs groff with warnings on over man/mallard.1 and
# man/mallard.3 (they must print none), and checks that mallard.3 has a
# synopsis line for every function preload/mallard.h declares.
# check:  exit 1 and show a diff when a file's table differs from the command's.
#         For the man page, also run groff with warnings on: it must print none.
# update: rewrite the part between the markers with the command's output.
# MALLARD is the built command, e.g. build/mallard.
set -euo pipefail

usage() {
    echo "usage: $0 check|update readme|man|all path/to/mallard" >&2
    exit 2
}
[ $# -eq 3 ] || usage
mode=$1 which=$2 cli=$3
case $mode in check | update) ;; *) usage ;; esac
case $which in readme | man | all) ;; *) usage ;; esac
[ -x "$cli" ] || { echo "$0: $cli is not an executable" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# between FILE BEGIN END: prints the lines strictly between the marker lines;
# fails unless each marker occurs exactly once, begin before end.
between() {
    # ENVIRON, not -v: awk would read the backslash in .\" as an escape.
    B=$2 E=$3 awk '
        BEGIN { b = ENVIRON["B"]; e = ENVIRON["E"] }
        $0 == b { nb++; inside = 1; next }
        $0 == e { ne++; inside = 0; next }
        inside { print }
        END { if (nb != 1 || ne != 1) exit 3 }' "$1"
}

# one FILE BEGIN END FLAG LABEL
one() {
    local file=$1 begin=$2 end=$3 flag=$4 label=$5
    [ -f "$file" ] || { echo "$label: $file is missing" >&2; return 1; }
    "$cli" "$flag" >"$tmp/want"
    if ! between "$file" "$begin" "$end" >"$tmp/have"; then
        echo "$label: $file must hold the lines '$begin' and '$end' once each, in that order" >&2
        return 1
    fi
    if [ "$mode" = check ]; then
        if ! cmp -s "$tmp/want" "$tmp/have"; then
            echo "$label: the option table in $file differs from \`mallard $flag\`:" >&2
            diff -u --label "$file" --label "mallard $flag" "$tmp/have" "$tmp/want" >&2 || true
            echo "$label: run scripts/doc-options.sh update all $cli" >&2
            return 1
        fi
        echo "$label: $file matches \`mallard $flag\` ($(wc -l <"$tmp/want") lines)"
    else
        B=$begin E=$end TABLE=$tmp/want awk '
            BEGIN { b = ENVIRON["B"]; e = ENVIRON["E"]; table = ENVIRON["TABLE"] }
            $0 == b { print; while ((getline line < table) > 0) print line; skip = 1; next }
            $0 == e { skip = 0 }
            !skip { print }' "$file" >"$tmp/new"
        if cmp -s "$tmp/new" "$file"; then
            echo "$label: $file already up to date"
        else
            cat "$tmp/new" >"$file"
            echo "$label: updated $file"
        fi
    fi
}

status=0
if [ "$which" = readme ] || [ "$which" = all ]; then
    one "$root/README.md" '<!-- options:begin -->' '<!-- options:end -->' --markdown README || status=1
fi
if [ "$which" = man ] || [ "$which" = all ]; then
    one "$root/man/mallard.1" '.\" options:begin' '.\" options:end' --man man || status=1
    if [ "$mode" = check ]; then
        command -v groff >/dev/null || { echo "man: groff is not installed (scripts/deps.sh installs groff-base)" >&2; exit 1; }
        for page in mallard.1 mallard.3; do
            if ! groff -man -ww -z -Tutf8 "$root/man/$page" 2>"$tmp/groff" || [ -s "$tmp/groff" ]; then
                echo "man: groff warns about man/$page:" >&2
                cat "$tmp/groff" >&2
                status=1
            else
                echo "man: groff -man -ww prints no warning for man/$page"
            fi
        done
        # mallard(3) documents every function preload/mallard.h declares
        sed -n 's/^MALLARD_API [^(]*[ *]\([A-Za-z_][A-Za-z_0-9]*\)(.*/\1/p' "$root/preload/mallard.h" >"$tmp/api"
        [ -s "$tmp/api" ] || { echo "man: no MALLARD_API function found in preload/mallard.h" >&2; status=1; }
        while read -r fn; do
            if ! FN=$fn awk '/^\.SH / { syn = ($2 == "SYNOPSIS") } syn && index($0, ENVIRON["FN"] "(") { found = 1 }
                    END { exit !found }' "$root/man/mallard.3"; then
                echo "man: man/mallard.3 has no synopsis line for $fn (declared in preload/mallard.h)" >&2
                status=1
            fi
        done <"$tmp/api"
        [ $status -eq 0 ] && echo "man: man/mallard.3 covers the $(wc -l <"$tmp/api") functions of mallard.h"
    fi
fi
exit $status
