#!/usr/bin/env bash
# scripts/test.sh [ctest arguments...]
#
# Installs the dependencies (scripts/deps.sh), configures and builds mallard
# in build/ and runs every test with ctest; exits non-zero if any fails.
# Arguments go to ctest, e.g. `scripts/test.sh -R '^real_'`.
#
# Environment:
#   ML_BUILD_DIR   build directory (default: build, under the source tree)
#   ML_CMAKE_ARGS  extra cmake arguments, e.g. -DMALLARD_SANITIZE=undefined
#   ML_TEST_JOBS   parallel tests (default: 2)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ML_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
jobs=${ML_TEST_JOBS:-2}

"$root/scripts/deps.sh"

read -r -a extra <<<"${ML_CMAKE_ARGS:-}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$jobs" "$@"
