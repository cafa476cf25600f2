#!/usr/bin/env bash
# scripts/demo.sh: installs the dependencies, builds mallard in build/ and runs
# the bundled demo program (tests/programs/demo.c) under it:
#
#   build/mallard -- build/tests/demo
#
# The demo prints a word count on stdout and leaks three things on purpose: a
# string dropped by its caller, a 10-node list whose head is dropped, and a
# block a global still points to.  mallard's report goes to stderr.
# Arguments are passed to mallard before the "--", e.g.
#   scripts/demo.sh --backend=page      scripts/demo.sh --format=json
# ML_BUILD_DIR picks another build directory (default: build).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ML_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac

"$root/scripts/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target mallard mallard_cli mallard_demo >/dev/null

echo "\$ ${build#"$root"/}/mallard${*:+ $*} -- ${build#"$root"/}/tests/demo" >&2
exec "$build/mallard" "$@" -- "$build/tests/demo"
