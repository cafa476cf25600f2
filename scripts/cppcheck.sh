#!/bin/sh
# scripts/cppcheck.sh: static analysis of mallard's own code (core/, report/,
# preload/) with cppcheck (Debian package cppcheck), as CI runs it.  The
# configuration is this file and scripts/cppcheck.supp (each suppression
# there says why); any finding fails.
set -eu
cd "$(dirname "$0")/.."
command -v cppcheck >/dev/null || { echo "cppcheck.sh: cppcheck is not installed (scripts/deps.sh)" >&2; exit 1; }
cppcheck --version
exec cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
    --inline-suppr --suppressions-list=scripts/cppcheck.supp -D__x86_64__ -D__GNUC__ -D_GNU_SOURCE \
    core report preload
