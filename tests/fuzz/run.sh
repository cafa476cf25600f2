#!/bin/sh
# tests/fuzz/run.sh: builds the libFuzzer targets with clang 14 (build-fuzz/,
# -DMALLARD_FUZZ=ON, ASan+UBSan) and runs each for a bounded time from the
# corpus in tests/fuzz/corpus (read only: new inputs go to a temporary
# directory).  Any crash, sanitizer report or mismatch fails.
#
#   FUZZ_SECONDS      seconds for fuzz_supp and fuzz_options (default 60)
#   FUZZ_API_SECONDS  seconds per backend x tracing for fuzz_api (default 12,
#                     so 5 backends x on/off = 2 minutes)
#   ML_FUZZ_BUILD     build directory (default build-fuzz)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${ML_FUZZ_BUILD:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-60}
api_secs=${FUZZ_API_SECONDS:-12}
cc=$(command -v clang-14 || command -v clang) || { echo "run.sh: clang 14 is not installed (scripts/deps.sh)" >&2; exit 1; }
cxx=$(command -v clang++-14 || command -v clang++)
CC=$cc CXX=$cxx cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMALLARD_FUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_api fuzz_options fuzz_supp >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
total=0
# one TARGET SECONDS [VAR=VALUE...]: a bounded run; prints its executions
one() {
    target=$1 t=$2
    shift 2
    mkdir -p "$tmp/new-$target"
    log=$tmp/log
    if ! (cd "$tmp" && env "$@" "$build/tests/$target" -max_total_time="$t" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 "$tmp/new-$target" "$root/tests/fuzz/corpus/$target") >"$log" 2>&1; then
        echo "FAIL: $target $* (log tail below; the input is in the log)" >&2
        tail -n 40 "$log" >&2
        status=1
    fi
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    total=$((total + ${n:-0}))
    echo "$target $*: ${n:-?} executions in $t s$(sed -n 's/^fuzz_api: /, /p' "$log")"
}
one fuzz_supp "$secs"
one fuzz_options "$secs"
for b in freelist bump arena page system; do
    for tr in 0 1; do
        one fuzz_api "$api_secs" MALLARD_BACKEND=$b MALLARD_TRACE=$tr
    done
done
echo "fuzz: $total executions in all, status $status"
exit $status
