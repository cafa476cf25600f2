#!/bin/sh
# preload_compare.sh LIB BACKEND PROGRAM
# Runs PROGRAM (one of the names below) without mallard, then twice with
# LD_PRELOAD=LIB MALLARD_BACKEND=BACKEND: tracing off (the backend alone) and
# tracing at its default.  Fails when stdout or the exit status differ, or
# when a preloaded run's stderr has a "mallard:" line (a fallback or a bad
# free) or the loader's "cannot be preloaded" warning.  `preload_compare.sh --list` prints
# the program names.
programs="lsdoc python pythreads sort git gitrepo"
if [ "$1" = --list ]; then echo $programs; exit 0; fi
lib=$1 backend=$2 name=$3

# The program, as a function of its scratch directory $1.
run() {
  case $name in
  lsdoc) ls -lR /usr/share/doc | md5sum ;;
  python) python3 -c 'print(sum(len(str(i)) for i in range(10**6)))' ;;
  pythreads) python3 -c '
import threading
d = {}
def work(k):
    for i in range(100000):
        d[(k, i)] = str(i) * 3
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(len(d), sum(len(v) for v in d.values()))' ;;
  sort)
    awk 'BEGIN { srand(7); for (i = 0; i < 400000; i++) printf "%d %x\n", int(rand() * 1e9), i }' >"$1/in" &&
      sort --parallel=2 -S 8M "$1/in" | md5sum ;;
  git) git --version ;;
  gitrepo)
    cd "$1" && git init -q r && cd r && seq 1 5000 >f && git add f &&
      git -c user.name=t -c user.email=t@t commit -qm message && git log --format=%s &&
      git count-objects | cut -d' ' -f1 ;;
  *) echo "unknown program $name" >&2; return 99 ;;
  esac
}

top=$(mktemp -d) || exit 2
trap 'rm -rf "$top"' EXIT
mkdir "$top/ref"
(run "$top/ref") >"$top/ref.out" 2>"$top/ref.err"
ref_rc=$?
fail=0
for trace in 0 default; do
  mkdir "$top/$trace"
  (
    export MALLARD_BACKEND="$backend" LD_PRELOAD="$lib"
    if [ $trace = 0 ]; then export MALLARD_TRACE=0; fi
    run "$top/$trace"
  ) >"$top/$trace.out" 2>"$top/$trace.err"
  rc=$?
  what="$backend (MALLARD_TRACE=$trace)"
  if [ "$ref_rc" != "$rc" ]; then
    echo "exit status: $ref_rc without mallard, $rc under $what"; fail=1
  fi
  if ! cmp -s "$top/ref.out" "$top/$trace.out"; then
    echo "stdout differs under $what:"; diff "$top/ref.out" "$top/$trace.out" | head -20; fail=1
  fi
  if grep -q -e 'mallard:' -e 'cannot be preloaded' "$top/$trace.err"; then
    echo "stderr under $what:"; grep -e 'mallard:' -e 'cannot be preloaded' "$top/$trace.err" | head -5; fail=1
  fi
  echo "$name under $what: rc $rc (reference $ref_rc), stdout $(wc -c <"$top/$trace.out") bytes: $(head -c 100 "$top/$trace.out" | tr '\n' ' ')"
done
exit $fail
