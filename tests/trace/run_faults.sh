#!/bin/sh
# tests/trace/run_faults.sh LIB BIN MAX: the page faults the tracer adds to
# run_faults.c's allocation phase (64 sites on 64 pages of code, 256 live
# blocks): the median of 5 traced runs less the median of 5 untraced ones
# must be at most MAX.  A count, not a time: the same on a loaded machine.
lib=$1 bin=$2 max=$3
median() { # TRACE: the median of 5 runs' faults
    for i in 1 2 3 4 5; do
        MALLARD_TRACE=$1 LD_PRELOAD=$lib timeout 60 "$bin" 2>/dev/null | sed -n 's/^faults=//p'
    done | sort -n | sed -n 3p
}
off=$(median 0) on=$(median 1)
case "$off$on" in '' | *[!0-9]*) echo "run_faults: no figures (untraced '$off', traced '$on')"; exit 1 ;; esac
added=$((on - off))
echo "run_faults: $off faults untraced, $on traced: the tracer adds $added (at most $max)"
[ "$added" -le "$max" ] && echo "run faults ok"
