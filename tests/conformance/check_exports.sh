#!/bin/sh
# tests/conformance/check_exports.sh LIB: the library exports the whole
# malloc family and nothing but it, mallard_*, __libc_* and the calls that
# end a process image (_exit, _Exit, quick_exit and the exec family, interposed
# for the exit report by preload/hooks.c; sigaltstack, to keep the fatal-signal
# report off a too-small signal stack), the C++ operator new/delete family
# (preload/cxx.c), LSan's interface (preload/api.c) and sigaction/signal
# (preload/signals.c) (HAZARDS §2, §10).  It needs nothing but libc (and ld.so).
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
cxx="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t
    _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
    _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
    _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
    _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"
for f in $cxx; do
    if ! printf '%s\n' "$syms" | grep -qx "T $f"; then
        echo "check_exports: operator new/delete $f is not exported as a function" >&2
        status=1
    fi
done
# operator new must not pull in libstdc++ (nor symbolization libdw or libunwind);
# the sanitizer builds (-DMALLARD_SANITIZE) add their own runtime
needed=$(readelf -d "$lib" | awk '/\(NEEDED\)/ { print $NF }' | tr -d '[]' | grep -Evx 'libc\.so\.6|ld-linux-x86-64\.so\.2|lib(ubsan|tsan)\.so\.[0-9]+')
if [ -n "$needed" ]; then
    echo "check_exports: DT_NEEDED beyond libc and ld.so:" $needed >&2
    status=1
fi
# nothing from libgcc's CPU model constructor: it runs cpuid in every process
# at load, traced or not, and cpuid traps to the hypervisor on a VM (the leak
# scan asks ld.so's feature record instead)
if nm "$lib" 2>/dev/null | grep -q ' __cpu_indicator_init'; then
    echo "check_exports: links libgcc's __cpu_indicator_init constructor (use <sys/platform/x86.h>)" >&2
    status=1
fi
cxx_re=$(printf '%s' "$cxx" | tr -s ' \n' '|')
extra=$(printf '%s\n' "$syms" | awk '{ print $2 }' | grep -Ev '^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|cfree|mallard_.*|__libc_.*|_exit|_Exit|quick_exit|sigaltstack|execve|execv|execvp|execvpe|fexecve|execl|execlp|execle|dlopen|mallinfo|mallinfo2|malloc_trim|mallopt|malloc_stats|malloc_info|__lsan_do_leak_check|__lsan_do_recoverable_leak_check|__lsan_ignore_object|__lsan_disable|__lsan_enable|sigaction|signal|'"$cxx_re"')$')
if [ -n "$extra" ]; then
    echo "check_exports: unexpected exports:" $extra >&2
    status=1
fi
[ $status -eq 0 ] && echo "check_exports: $(printf '%s\n' "$syms" | wc -l) exports, all expected"
exit $status
