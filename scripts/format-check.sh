#!/usr/bin/env bash
# scripts/format-check.sh [--fix]: checks that every C source and header in
# core/, report/ and preload/ is formatted by the checked-in .clang-format
# (clang-format 14, Debian's clang-format package); --fix rewrites them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files 'core/*.[ch]' 'preload/*.[ch]' 'report/*.[ch]')
if [ "${1:-}" = --fix ]; then
    clang-format -i "${files[@]}"
    exit 0
fi
bad=0
for f in "${files[@]}"; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format-check: $f differs from .clang-format (scripts/format-check.sh --fix)"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "format-check: ${#files[@]} files formatted"
exit $bad
