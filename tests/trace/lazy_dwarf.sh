#!/bin/sh
# tests/trace/lazy_dwarf.sh LIB COUNTER PROG: the report opens an object's
# DWARF only for a frame it prints.  PROG's library has compressed DWARF;
# COUNTER logs each elf_compress call libdw makes (one per section it
# inflates).  Opening a debug file's DWARF inflates every compressed
# section in it, which with libc6-dbg installed was most of a short
# program's traced run.
#  1. A reachable block made in the library, a leak made in main: the
#     library's DWARF stays closed (the built-in suppressions need its
#     symbol table only), and the leak still reads main (lazy_dwarf.c:N).
#  2. A leak made in the library: its frame is printed with file:line,
#     so its DWARF is opened (the counter does see it: case 1 can fail).
#  3. A user suppression file: its patterns see the inline chain and the
#     file, so the library's DWARF is opened for the reachable block.
lib=$1 counter=$2 prog=$3
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
run() { # LOG [ENV...] -- ARGS: the report on stdout
    log=$1
    shift
    env LD_PRELOAD="$lib:$counter" ML_ELF_COMPRESS_LOG="$log" MALLARD_TRACE=1 "$@" 2>&1 >/dev/null
}
count() { if [ -f "$1" ]; then grep -c elf_compress "$1"; else echo 0; fi; }
fail() { echo "FAIL: $1"; printf '%s\n' "$2"; exit 1; }

out=$(run "$dir/1" "$prog")
echo "$out" | grep -q 'definitely lost: 24 bytes in 1 block' || fail "case 1: no 24-byte leak" "$out"
echo "$out" | grep -q '#0 main lazy_dwarf\.c:[0-9]' || fail "case 1: frame 0 is not main with its line" "$out"
[ "$(count "$dir/1")" -eq 0 ] || fail "case 1: $(count "$dir/1") compressed sections inflated for a report that prints none of the library's frames" "$out"

out=$(run "$dir/2" "$prog" lose)
echo "$out" | grep -q 'definitely lost: 64 bytes in 2 blocks' || fail "case 2: not 64 bytes in 2 blocks" "$out"
echo "$out" | grep -q '#0 lazy_lose lazy_dwarf_lib\.c:[0-9]' || fail "case 2: the library's frame has no line" "$out"
[ "$(count "$dir/2")" -gt 0 ] || fail "case 2: the counter saw no inflation (is the library's DWARF compressed?)" "$out"

printf 'leak:no_such_function_anywhere\n' >"$dir/supp"
out=$(run "$dir/3" MALLARD_SUPPRESSIONS="$dir/supp" "$prog")
echo "$out" | grep -q 'definitely lost: 24 bytes in 1 block' || fail "case 3: no 24-byte leak" "$out"
[ "$(count "$dir/3")" -gt 0 ] || fail "case 3: a user pattern did not see the library's DWARF" "$out"
echo "lazy dwarf ok"
