#!/usr/bin/env bash
# tests/real/run_real.sh VARIANT CASE
#
# Runs one real Debian program (CASE) twice in a fresh temporary directory:
# once without mallard (the reference) and once with libmallard.so preloaded.
# The test passes when
#   - the reference run exits 0 (otherwise the test itself is broken),
#   - both runs print the same stdout, byte for byte, and exit the same way,
#   - the mallard run's stderr holds no "mallard:" line and no ld.so
#     "cannot be preloaded" warning (mallard failing to load, falling back
#     to glibc, or reporting a memory error must not pass unnoticed).
# Child processes inherit LD_PRELOAD, so for make, git, gcc and the bash
# pipeline every process of the run is under mallard.
#
# VARIANT is a backend (one `mallard --backends` lists), run bare: with
# MALLARD_BACKEND=VARIANT and the trace layer off (MALLARD_TRACE=0), or
# "trace": no MALLARD_* setting at all, which is what a plain LD_PRELOAD gets
# (the default backend with the trace layer on, reports on stderr); its
# stderr must also be the reference's, once report lines (==mallard==) are
# taken out, and the cases that merge or capture stderr (cmake, gitfsck,
# bashcap) compare it byte for byte as part of stdout.  The backends' runs
# write reports to files in the temporary directory (MALLARD_REPORT).
#
# Environment (tests/real/tests.cmake sets it):
#   ML_LIB          libmallard.so (required)
#   ML_CLI          the mallard command (the demo case runs through it)
#   ML_CXX_THREADS  the cxx_threads test program
#   ML_DEMO         the demo program (tests/programs/demo.c)
#
# Cases: python perl bash git make sort xz sqlite gcc cxx demo cmake gitfsck
# bashcap ruby node redis.  The page
# backend maps guard pages around every block, which makes each allocation a
# few system calls; its cases use smaller inputs (see sizes below).
set -euo pipefail

usage() {
    echo "usage: $0 BACKEND|trace CASE" >&2
    exit 2
}
[ $# -eq 2 ] || usage
backend=$1
case_name=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
    echo "FAIL real_${case_name}_${backend}: $*" >&2
    exit 1
}

[ -n "${ML_LIB:-}" ] || fail "ML_LIB is not set (the path of libmallard.so)"
[ -r "$ML_LIB" ] || fail "ML_LIB=$ML_LIB is not readable"
ML_LIB=$(readlink -f "$ML_LIB")

# Same locale, time zone and clean environment for both runs.
export LC_ALL=C TZ=UTC
unset LD_PRELOAD LANG LANGUAGE
for v in $(compgen -e); do
    case $v in MALLARD_*) unset "$v" ;; esac
done

T=$(mktemp -d "${TMPDIR:-/tmp}/mallard-real.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir "$T/in" "$T/home" "$T/reports"

# --- sizes -----------------------------------------------------------------
# Smaller for page: each of its blocks costs two or three system calls, at
# least two pages and two VMAs, and every fork copies those VMAs.  Python with
# PYTHONMALLOC=malloc holds more live blocks than vm.max_map_count allows
# guarded (about 32k), so page skips that run (PY_MALLOC_N=0): the backend
# would say, correctly, that it fell back to unguarded blocks.
# A Node worker starts an isolate with more small blocks than the page
# backend can guard under vm.max_map_count, so page runs no worker (as with
# PY_MALLOC_N) and the backend does not have to say it fell back.
# The trace variant writes a report at the exit of every process, forked
# subshells included, so its make and bash cases start fewer processes.
if [ "$backend" = page ]; then
    PY_N=4000 PY_MALLOC_N=0 PERL_N=8000 SORT_MB=50 XZ_MB=8 SQL_ROWS=4000 CXX_N=4000 MAKE_N=16 BASH_N=100 REDIS_N=2000 NODE_WORKERS=0
elif [ "$backend" = trace ]; then
    PY_N=20000 PY_MALLOC_N=5000 PERL_N=40000 SORT_MB=50 XZ_MB=8 SQL_ROWS=20000 CXX_N=20000 MAKE_N=16 BASH_N=200 REDIS_N=10000 NODE_WORKERS=4
else
    PY_N=20000 PY_MALLOC_N=10000 PERL_N=40000 SORT_MB=50 XZ_MB=8 SQL_ROWS=20000 CXX_N=20000 MAKE_N=40 BASH_N=1000 REDIS_N=20000 NODE_WORKERS=4
fi

PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)

# Deterministic text: "%08x %d word" lines from a 32-bit LCG (exact in awk's
# doubles: 69069 * 2^32 < 2^53).  $1 = megabytes, $2 = seed.
gen_lines() {
    awk -v bytes=$(($1 * 1048576)) -v x="$2" 'BEGIN {
        split("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima", w, " ")
        n = 0
        while (n < bytes) {
            x = (x * 69069 + 1) % 4294967296
            line = sprintf("%08x %d %s", x, x % 100000, w[1 + int(x / 65536) % 12])
            print line
            n += length(line) + 1
        }
    }'
}

# --- cases -----------------------------------------------------------------
# Each case_X runs in an empty current directory ($T/w, the same path for both
# runs) and writes what it wants compared to stdout.  It runs with set -e and
# pipefail, so a failing command ends it with that command's status.  prep_X,
# if present, makes inputs in $T/in once, without mallard.

case_python() {
    "$PYTHON" -B "$here/workload.py" "$PY_N"
    # Through malloc too: pymalloc serves small objects from its own arenas,
    # PYTHONMALLOC=malloc sends every object to the allocator under test.
    if [ "$PY_MALLOC_N" -gt 0 ]; then
        PYTHONMALLOC=malloc "$PYTHON" -B "$here/workload.py" "$PY_MALLOC_N"
    fi
}

case_perl() {
    perl "$here/workload.pl" "$PERL_N"
}

case_bash() {
    bash --norc --noprofile -c '
        set -euo pipefail
        n=$1
        seq 1 200000 | awk "{ print \$1 % 997, \$1 }" | sort -k1,1n -k2,2nr | uniq -c -w4 | sort -k1,1nr -k2,2n | sed -n "1,5p"
        declare -A seen
        words=()
        for i in $(seq 1 "$n"); do
            w=$(printf "%x" $((i * 7919 % 4099)))
            words+=("$w")
            seen[$w]=$(( ${seen[$w]:-0} + 1 ))
        done
        echo "words ${#words[@]} distinct ${#seen[@]}"
        joined=$(IFS=,; echo "${words[*]}")
        echo "joined ${#joined} ${joined:0:40}"
        upper=${joined^^}
        echo "upper ${upper: -20}"
        n=0
        while IFS= read -r line; do
            n=$((n + ${#line}))
        done < <(printf "%s\n" "${words[@]}" | tr a-f A-F | rev | sort -u)
        echo "chars $n"
        cat /etc/os-release /etc/os-release | grep -c "=" | xargs -I{} echo "os-release lines {}"
        md5sum < <(for w in "${words[@]}"; do echo "$w"; done | sort | uniq -c)
    ' bash "$BASH_N"
}

case_git() {
    export HOME="$T/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME="Ada Author" GIT_AUTHOR_EMAIL=ada@example.org
    export GIT_COMMITTER_NAME="Cy Committer" GIT_COMMITTER_EMAIL=cy@example.org
    export GIT_AUTHOR_DATE="2024-01-02T03:04:05+0000" GIT_COMMITTER_DATE="2024-01-02T03:04:05+0000"
    git -c init.defaultBranch=main init -q repo
    cd repo
    git config pack.threads 2
    git config gc.auto 0
    mkdir -p src doc
    for i in $(seq 1 120); do
        seq "$i" 3 $((i * 40)) > "src/file$i.txt"
    done
    printf '# demo\n\nA repository made by the mallard tests.\n' > doc/README.md
    git add .
    git commit -q -m "initial import"
    for i in $(seq 1 7 120); do
        echo "change $i" >> "src/file$i.txt"
    done
    git rm -q src/file3.txt
    git mv src/file5.txt doc/moved.txt
    GIT_AUTHOR_DATE="2024-01-03T00:00:00+0000" GIT_COMMITTER_DATE="2024-01-03T00:00:00+0000" \
        git commit -q -a -m "second: edit, remove, rename"
    git checkout -q -b topic
    echo "topic work" > doc/topic.txt
    git add doc/topic.txt
    GIT_AUTHOR_DATE="2024-01-04T00:00:00+0000" GIT_COMMITTER_DATE="2024-01-04T00:00:00+0000" \
        git commit -q -m "topic"
    git checkout -q main
    echo "main work" >> doc/README.md
    GIT_AUTHOR_DATE="2024-01-05T00:00:00+0000" GIT_COMMITTER_DATE="2024-01-05T00:00:00+0000" \
        git commit -q -a -m "main"
    GIT_AUTHOR_DATE="2024-01-06T00:00:00+0000" GIT_COMMITTER_DATE="2024-01-06T00:00:00+0000" \
        git merge -q --no-ff -m "merge topic" topic
    git log --graph --format='%H %T %P %an <%ae> %ad %cn %cd %s' --date=iso-strict
    git cat-file -p HEAD
    git cat-file -p 'HEAD^{tree}'
    git ls-tree -r HEAD | md5sum
    git diff --stat HEAD~3 HEAD
    git diff -M HEAD~3 HEAD | md5sum
    git grep -c 'change' HEAD -- src | sed -n '1,5p'
    git blame --porcelain doc/README.md | md5sum
    git repack -a -d -q
    git fsck --full --no-progress
    git cat-file --batch-all-objects --batch-check | sort
    git status --porcelain
}

case_make() {
    mkdir src
    for i in $(seq 1 "$MAKE_N"); do
        printf '#include "parts.h"\nint part%d(int x) { return x * %d + %d; }\n' "$i" "$i" $((i % 7)) > "src/part$i.c"
    done
    {
        for i in $(seq 1 "$MAKE_N"); do printf 'int part%d(int x);\n' "$i"; done
    } > src/parts.h
    {
        echo '#include <stdio.h>'
        echo '#include "parts.h"'
        echo 'int main(void) { long s = 0;'
        for i in $(seq 1 "$MAKE_N"); do printf '  s += part%d(%d);\n' "$i" "$i"; done
        echo '  printf("sum %ld\n", s); return 0; }'
    } > src/main.c
    cat > Makefile <<'EOF'
N := $(words $(wildcard src/part*.c))
SRCS := $(sort $(wildcard src/*.c))
OBJS := $(patsubst src/%.c,obj/%.o,$(SRCS))
TABLES := $(foreach i,$(shell seq 1 $(N)),tab/t$(i).txt)

all: prog summary.txt

obj tab:
	@mkdir -p $@

obj/%.o: src/%.c src/parts.h | obj
	@$(CC) -O1 -c $< -o $@

prog: $(OBJS)
	@$(CC) -o $@ $^

tab/t%.txt: | tab
	@seq $* $* 3000 | awk '{ s += $$1 * $$1 } END { print "$*", s }' > $@

summary.txt: $(TABLES)
	@cat $^ | sort -k1,1n > $@
	@echo "summary: $$(wc -l < $@) tables"

.PHONY: all clean
clean:
	@rm -rf obj tab prog summary.txt
EOF
    make -j2 -s --no-print-directory CC=gcc
    ./prog
    md5sum summary.txt
    make -j2 -q CC=gcc && echo "up to date"
    # An object older than its source, whatever the file system's clock
    # granularity: make must rebuild it.
    touch -d '2000-01-01 00:00:00' obj/part1.o
    make -j2 -q CC=gcc || echo "out of date after touch"
    make -j2 -s --no-print-directory CC=gcc
    make -s clean
    ls
}

prep_sort() {
    gen_lines "$SORT_MB" 7 > "$T/in/lines.txt"
}
case_sort() {
    sort --parallel=2 -T . "$T/in/lines.txt" -o sorted.txt
    md5sum < sorted.txt
    wc -l < sorted.txt
    # A small buffer forces temporary files and a multi-way merge.
    head -c 8000000 "$T/in/lines.txt" | sort --parallel=2 -S 1M -T . -k2,2n -k1,1 | md5sum
    head -c 8000000 "$T/in/lines.txt" | sort --parallel=2 -u -k3,3 | cut -d' ' -f3
}

prep_xz() {
    gen_lines "$XZ_MB" 11 > "$T/in/data.txt"
}
case_xz() {
    md5sum < "$T/in/data.txt"
    xz -T2 -1 --block-size=1MiB -c "$T/in/data.txt" > data.xz
    md5sum < data.xz
    xz -T2 -t data.xz
    xz -T2 -d -c data.xz | md5sum
    xz -l --robot data.xz
    # Single-stream mode (one block) and decompression from a pipe.
    head -c 1000000 "$T/in/data.txt" | xz -T1 -1 | xz -T2 -d | md5sum
}

prep_sqlite() {
    awk -v rows="$SQL_ROWS" 'BEGIN {
        print "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER, val REAL, note TEXT);"
        print "BEGIN;"
        x = 42
        for (i = 1; i <= rows; i++) {
            x = (x * 69069 + 1) % 4294967296
            printf "INSERT INTO t(name, grp, val, note) VALUES (%cn%07d%c, %d, %d.%02d, %s);\n", 39, x % 9999991, 39, x % 37, x % 1000, x % 100, (i % 5 ? "NULL" : sprintf("%cnote %d%c", 39, i, 39))
        }
        print "COMMIT;"
    }' > "$T/in/load.sql"
    cat > "$T/in/query.sql" <<'EOF'
CREATE INDEX t_grp ON t(grp, val);
SELECT count(*), count(note), sum(grp), printf('%.2f', total(val)), min(name), max(name) FROM t;
SELECT grp, count(*), printf('%.3f', avg(val)), max(val) FROM t GROUP BY grp ORDER BY grp LIMIT 8;
SELECT grp, name, val FROM (SELECT grp, name, val, row_number() OVER (PARTITION BY grp ORDER BY val DESC, id) AS r FROM t) WHERE r = 1 ORDER BY grp LIMIT 5;
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000)
  SELECT count(*), sum(t.val > 500) FROM c JOIN t ON t.id = c.n * 7;
SELECT substr(name, 1, 3) AS p, count(*) FROM t GROUP BY p ORDER BY count(*) DESC, p LIMIT 5;
SELECT group_concat(id, ',') FROM (SELECT id FROM t WHERE note IS NOT NULL ORDER BY val DESC, id LIMIT 12);
UPDATE t SET note = 'touched ' || id WHERE grp = 3;
DELETE FROM t WHERE grp = 4;
SELECT count(*), count(note) FROM t;
PRAGMA integrity_check;
EOF
}
case_sqlite() {
    sqlite3 -batch -bail db.sqlite < "$T/in/load.sql"
    sqlite3 -batch -bail db.sqlite < "$T/in/query.sql"
    sqlite3 -batch -bail db.sqlite "VACUUM; SELECT count(*) FROM t;"
}

case_gcc() {
    cp "$here/gcc_input.c" prog.c
    gcc -O2 -Wall -Wextra -c prog.c -o prog.o
    md5sum prog.o
    gcc -O2 prog.o -o prog
    ./prog
    gcc -O0 -g -o prog_debug prog.c
    ./prog_debug | md5sum
    gcc -E -P prog.c | md5sum
}

case_cxx() {
    [ -x "${ML_CXX_THREADS:-}" ] || { echo "ML_CXX_THREADS is not set" >&2; return 2; }
    "$ML_CXX_THREADS" "$CXX_N"
}

# The demo runs through the mallard command rather than a bare LD_PRELOAD, so
# the command's exec path and exit status are checked too.
case_demo() {
    [ -x "${ML_DEMO:-}" ] || { echo "ML_DEMO is not set" >&2; return 2; }
    if [ "$RUN" = mallard ]; then
        [ -x "${ML_CLI:-}" ] || { echo "ML_CLI is not set" >&2; return 2; }
        if [ "$backend" = trace ]; then
            "$ML_CLI" --lib="$ML_LIB" -- "$ML_DEMO"
        else
            "$ML_CLI" --lib="$ML_LIB" --backend="$backend" -- "$ML_DEMO"
        fi
    else
        "$ML_DEMO"
    fi
}

# --- cases that merge stderr into what they capture -------------------------
# Programs and scripts capture a child's stderr (CMake's execute_process,
# $(cmd 2>&1), `2>&1 | cat`): a line mallard adds there changes what they do.
# These cases write the merged streams to stdout, which is compared.

case_cmake() {
    mkdir -p proj/sub
    cat >proj/CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(mallardprobe C)
execute_process(COMMAND uname -m OUTPUT_VARIABLE arch ERROR_VARIABLE arch_err
                OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND sh -c "echo to-stderr >&2; echo to-stdout" OUTPUT_VARIABLE both
                ERROR_VARIABLE both OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT arch STREQUAL CMAKE_HOST_SYSTEM_PROCESSOR)
  message(FATAL_ERROR "captured '${arch}' (stderr '${arch_err}'), expected '${CMAKE_HOST_SYSTEM_PROCESSOR}'")
endif()
include(CheckIncludeFile)
include(CheckFunctionExists)
check_include_file(stdio.h HAVE_STDIO_H)
check_function_exists(malloc_usable_size HAVE_MALLOC_USABLE_SIZE)
configure_file(config.h.in config.h)
add_subdirectory(sub)
add_executable(probe main.c)
target_include_directories(probe PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
target_link_libraries(probe PRIVATE part)
message(STATUS "arch=${arch} both=[${both}] stdio=${HAVE_STDIO_H} mus=${HAVE_MALLOC_USABLE_SIZE}")
CMAKE
    printf '#cmakedefine HAVE_STDIO_H 1\n#cmakedefine HAVE_MALLOC_USABLE_SIZE 1\n' >proj/config.h.in
    printf 'add_library(part STATIC part.c)\n' >proj/sub/CMakeLists.txt
    printf 'int part(void) { return 7; }\n' >proj/sub/part.c
    printf '#include <stdio.h>\n#include "config.h"\nint part(void);\nint main(void) { printf("%%d\\n", part()); return 0; }\n' >proj/main.c
    cmake -S proj -B build -DCMAKE_BUILD_TYPE=Release 2>&1 | sed -e 's/ ([0-9.]*s)$//'
    cmake --build build 2>&1 | sed -n -e '/Built target/p'
    ./build/probe
    cat build/config.h
}

case_gitfsck() {
    export HOME="$T/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.org GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.org
    export GIT_AUTHOR_DATE="2024-01-02T03:04:05+0000" GIT_COMMITTER_DATE="2024-01-02T03:04:05+0000"
    git -c init.defaultBranch=main init -q r
    cd r
    for i in $(seq 1 30); do seq "$i" 40 >"f$i"; done
    git add . && git commit -q -m one
    echo dangling | git hash-object -w --stdin >/dev/null
    git fsck 2>&1 | cat
    git fsck --unreachable --no-progress 2>&1 | cat
    { git rev-parse --verify nosuchref 2>&1 || true; } | cat
    out=$(git status --porcelain=v2 --branch 2>&1)
    echo "captured: $out"
}

# Only programs that free what they allocate are captured here: a program
# that really leaks (sort leaks 16 bytes, valgrind agrees; perl -e does not
# free at exit) gets a report in the capture, as it would under LSan.
case_bashcap() {
    bash --norc --noprofile -c '
        a=$(sort --version 2>&1 | head -n 1)
        b=$(ls /nonexistent-mallard-path 2>&1 || true)
        c=$(printf "x\ny\n" | awk "{ print NR, \$0 }" 2>&1)
        d=$(bash -c "echo out; echo err >&2" 2>&1)
        e=$( { git --version; git no-such-command; } 2>&1 || true)
        f=$(sed -n 1p /nonexistent-mallard-file 2>&1 || true)
        printf "%s\n" "$a" "$b" "$c" "$d" "$e" "$f"
        cat /etc/passwd 2>&1 | md5sum
        xz -c /etc/os-release 2>&1 | xz -d 2>&1 | md5sum
    '
}

# --- interpreters with threads and fork, and a server ----------------------

case_ruby() {
    ruby -e '
        q = Queue.new
        res = Array.new(8, 0)
        ts = (0...8).map do |i|
          Thread.new(i) do |k|
            h = {}
            20000.times { |j| h["k#{j % 997}"] = (h["k#{j % 997}"] || 0) + j * k }
            q << [k, h.size]
            res[k] = h.values.sum
          end
        end
        ts.each(&:join)
        got = []
        got << q.pop until q.empty?
        puts got.sort.inspect, res.sum
        rd, wr = IO.pipe
        pids = (0...4).map do |i|
          fork do
            rd.close
            t = Thread.new { (1..50000).map { |x| x.to_s * 2 }.join.size }
            wr.puts "child #{i} #{t.value}"
            wr.flush
            exit!(0) if i == 3
          end
        end
        wr.close
        pids.each { |p| Process.wait(p); raise "child failed" unless $?.success? }
        puts rd.read.lines.sort
        GC.start
        puts ObjectSpace.count_objects.key?(:TOTAL)
        puts `echo sub-shell`.strip
    '
}

case_node() {
    cat >w.js <<'JS'
const { Worker, isMainThread, parentPort, workerData } = require("worker_threads");
const crypto = require("crypto");
const zlib = require("zlib");
if (isMainThread) {
  const n = Number(process.argv[2]), out = [];
  let left = n;
  const finish = () => {
    out.sort();
    console.log(out.join("\n"));
    const big = Buffer.alloc(1 << 20, "mallard");
    console.log(crypto.createHash("sha256").update(zlib.gzipSync(big)).digest("hex"));
  };
  for (let i = 0; i < n; i++) {
    const w = new Worker(__filename, { workerData: i });
    w.on("message", (m) => {
      out.push(m);
      if (--left === 0) finish();
    });
  }
  if (n === 0) finish();
} else {
  const m = new Map();
  for (let j = 0; j < 100000; j++) m.set("k" + (j % 4999), j * workerData);
  let s = 0;
  for (const v of m.values()) s += v;
  parentPort.postMessage(`worker ${workerData} size ${m.size} sum ${s}`);
}
JS
    node w.js "$NODE_WORKERS"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# redis-server (linked to jemalloc) on a loopback port, driven by
# redis-benchmark with a bounded request count; the benchmark's timings are
# dropped, the state it leaves is printed.
case_redis() {
    local port pid
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir . \
        --daemonize no --loglevel warning --logfile redis.log &
    pid=$!
    for _ in $(seq 1 100); do
        redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "$port" ping
    redis-benchmark -h 127.0.0.1 -p "$port" -q -n "$REDIS_N" -c 4 -P 4 -t set,get,incr,lpush,sadd,hset >/dev/null
    redis-cli -h 127.0.0.1 -p "$port" get counter:__rand_int__
    redis-cli -h 127.0.0.1 -p "$port" llen mylist
    redis-cli -h 127.0.0.1 -p "$port" dbsize
    redis-cli -h 127.0.0.1 -p "$port" eval "local n = 0 for i = 1, 1000 do n = redis.call('incr', 'x') end return n" 0
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait "$pid"
}

declare -F "case_$case_name" >/dev/null || fail "unknown case '$case_name'"

# --- the comparison --------------------------------------------------------
[ -x "${ML_CLI:-}" ] || fail "ML_CLI is not set (the path of the mallard command)"
[ "$backend" = trace ] || grep -qx -- "$backend" <<<"$("$ML_CLI" --backends)" || fail "unknown backend '$backend'"
ml_options=$("$ML_CLI" --markdown)
option_exists() {
    grep -qF "\`$1\`" <<<"$ml_options"
}

# What the mallard run gets besides LD_PRELOAD (the demo passes them through
# the mallard command instead).
ml_env=()
if [ "$backend" != trace ]; then
    ml_env+=(MALLARD_BACKEND="$backend")
    if option_exists MALLARD_TRACE; then
        ml_env+=(MALLARD_TRACE=0)
    fi
elif ! option_exists MALLARD_TRACE; then
    fail "the trace variant needs the trace layer (no MALLARD_TRACE in \`mallard --markdown\`)"
fi
# The trace variant is what a user who sets only LD_PRELOAD gets: reports go
# to stderr, and a clean process prints nothing there.  The backends' runs
# send anything to files.
if [ "$backend" != trace ] && option_exists MALLARD_REPORT; then
    ml_env+=(MALLARD_REPORT="$T/reports/report.%p")
fi

# Exercise the preload before anything else: ld.so must map the library.
maps=$(env LD_PRELOAD="$ML_LIB" "${ml_env[@]}" cat /proc/self/maps 2>"$T/maps.err") ||
    fail "cat /proc/self/maps failed under mallard: $(cat "$T/maps.err")"
grep -qF "$ML_LIB" <<<"$maps" || fail "libmallard.so is not mapped under LD_PRELOAD: $(cat "$T/maps.err")"
rm -f "$T"/reports/*
if [ "$backend" = trace ]; then
    # the trace layer is on: asked for, a clean process's summary line appears
    summary=$(env LD_PRELOAD="$ML_LIB" MALLARD_SUMMARY=all true 2>&1)
    grep -q '^==mallard== pid [0-9]* (true): no leaks' <<<"$summary" ||
        fail "the trace layer is not on under a bare LD_PRELOAD: '$summary'"
fi

if declare -F "prep_$case_name" >/dev/null; then
    "prep_$case_name"
fi

now() { date +%s.%N; }

# run_case ref|mallard: runs the case in a fresh $T/w; sets rc and secs.
run_case() {
    RUN=$1
    rm -rf "$T/w"
    mkdir "$T/w"
    local t0 t1
    t0=$(now)
    set +e
    (
        set -euo pipefail
        cd "$T/w"
        if [ "$RUN" = mallard ]; then
            if [ "$case_name" = demo ]; then
                for kv in "${ml_env[@]}"; do
                    # shellcheck disable=SC2163 # kv is NAME=value
                    [[ $kv == MALLARD_BACKEND=* ]] || export "$kv"
                done
            else
                export LD_PRELOAD="$ML_LIB" "${ml_env[@]}"
            fi
        fi
        "case_$case_name"
    ) </dev/null >"$T/$RUN.out" 2>"$T/$RUN.err"
    rc=$?
    set -e
    t1=$(now)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

run_case ref
ref_rc=$rc ref_secs=$secs
if [ "$ref_rc" -ne 0 ]; then
    echo "--- reference stderr (last 30 lines)" >&2
    tail -n 30 "$T/ref.err" >&2
    fail "the reference run without mallard exited $ref_rc: the test or its environment is broken"
fi
run_case mallard
ml_rc=$rc ml_secs=$secs
echo "real_${case_name}_${backend}: reference ${ref_secs}s, mallard ${ml_secs}s, $(wc -c <"$T/ref.out") bytes of stdout"
echo "mallard run environment: LD_PRELOAD=$ML_LIB ${ml_env[*]}"

problems=()
[ "$ml_rc" -eq "$ref_rc" ] || problems+=("exit status $ml_rc under mallard, $ref_rc without")
cmp -s "$T/ref.out" "$T/mallard.out" || problems+=("stdout differs")
grep -q 'mallard:' "$T/mallard.err" && problems+=("stderr has a 'mallard:' line")
grep -q 'cannot be preloaded' "$T/mallard.err" && problems+=("ld.so could not preload the library")
if [ "$backend" = trace ]; then
    # stderr as the user sees it: the program's own lines, unchanged and in
    # order; mallard may add only report lines (a real leak or error)
    grep -v '^==mallard==' "$T/mallard.err" >"$T/mallard.err.prog" || true
    cmp -s "$T/ref.err" "$T/mallard.err.prog" || problems+=("stderr differs (beyond report lines)")
fi

if [ ${#problems[@]} -ne 0 ]; then
    if ! cmp -s "$T/ref.out" "$T/mallard.out"; then
        echo "--- diff of stdout (reference, mallard), first 40 lines" >&2
        diff "$T/ref.out" "$T/mallard.out" | head -n 40 >&2 || true
    fi
    echo "--- mallard run stderr, last 30 lines" >&2
    tail -n 30 "$T/mallard.err" >&2
    fail "$(IFS=';'; echo "${problems[*]}")"
fi
echo "PASS real_${case_name}_${backend}"
