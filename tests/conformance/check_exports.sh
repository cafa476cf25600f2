#!/bin/sh
# tests/conformance/check_exports.sh LIB: the library exports the whole
# malloc family and nothing but it, mallard_*, __libc_* and the calls that
# end a process image (_exit, _Exit, quick_exit and the exec family, interposed
# for the exit report by preload/hooks.c; sigaltstack, to keep the fatal-signal
# report off a too-small signal stack) (HAZARDS §2, §10).
set -u
lib=$1
syms=$(nm -D --defined-only "$lib" | awk 'NF == 3 { print $2, $3 }') || exit 1
[ -n "$syms" ] || { echo "check_exports: no dynamic symbols in $lib" >&2; exit 1; }
status=0
for f in malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc \
    malloc_usable_size cfree; do
    if ! printf '%s\n' "$syms" | grep -qx "[TW] $f"; then
        echo "check_exports: $f is not exported as a function" >&2
        status=1
    fi
done
extra=$(printf '%s\n' "$syms" | awk '{ print $2 }' | grep -Ev '^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|cfree|mallard_.*|__libc_.*|_exit|_Exit|quick_exit|sigaltstack|execve|execv|execvp|execvpe|fexecve|execl|execlp|execle|dlopen|mallinfo|mallinfo2|malloc_trim|mallopt|malloc_stats|malloc_info)$')
if [ -n "$extra" ]; then
    echo "check_exports: unexpected exports:" $extra >&2
    status=1
fi
[ $status -eq 0 ] && echo "check_exports: $(printf '%s\n' "$syms" | wc -l) exports, all expected"
exit $status
