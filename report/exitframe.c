/* report/exitframe.c: where the exiting thread called exit, _exit or exec.
 *
 * The exit report runs deep below that call: under exit() in an on_exit
 * handler that libc's __run_exit_handlers calls, under _exit and the exec
 * family in mallard's wrappers.  The stack between holds mallard's frames,
 * libc's, and under them whatever the program's returned functions left
 * (main's frame, once main has returned), none of it live.  valgrind sees
 * none of it: it scans only defined words, and a returned frame is
 * undefined again.  So the scan starts at the caller's stack pointer and
 * takes the callee-saved registers as they were at the call, both found by
 * unwinding with libunwind (already loaded by stack.c, looked up here with
 * RTLD_NOLOAD; its local-only entry points are used directly).
 *
 * exit: the frame whose function is libc's exit; its caller is the frame
 * wanted.  _exit, exec: the first frame outside libmallard.so's text.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <ucontext.h>

#include "report.h"

/* libunwind's x86_64 register numbers and the sizes of its opaque types
 * (unw_cursor_t is 127 words; unw_proc_info_t a dozen), with room. */
enum {
    UNW_RBX = 3,
    UNW_RBP = 6,
    UNW_RSP = 7,
    UNW_R12 = 12,
    UNW_R13 = 13,
    UNW_R14 = 14,
    UNW_R15 = 15,
    UNW_RIP = 16
};
struct unw_cursor {
    uint64_t opaque[256];
};
struct unw_proc_info {
    uint64_t start_ip, end_ip;
    uint64_t rest[30];
};

struct unw_api {
    int (*getcontext)(ucontext_t *);
    int (*init_local)(struct unw_cursor *, ucontext_t *);
    int (*step)(struct unw_cursor *);
    int (*get_reg)(struct unw_cursor *, int, uint64_t *);
    int (*get_proc_info)(struct unw_cursor *, struct unw_proc_info *);
};

static int load_api(struct unw_api *u)
{
    /* Never dlclose'd: at exit another thread's _dl_fini may be taking back
     * the opencount bump it gave every object, without the loader lock,
     * and a dlclose racing that can unmap libunwind under this very call
     * (tests/safe exit_dlclose).  RTLD_NODELETE pins it for the rest. */
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD | RTLD_NODELETE);
    if (!h)
        return -1;
    *(void **)&u->getcontext = dlsym(h, "_Ux86_64_getcontext");
    *(void **)&u->init_local = dlsym(h, "_ULx86_64_init_local");
    *(void **)&u->step = dlsym(h, "_ULx86_64_step");
    *(void **)&u->get_reg = dlsym(h, "_ULx86_64_get_reg");
    *(void **)&u->get_proc_info = dlsym(h, "_ULx86_64_get_proc_info");
    return u->getcontext && u->init_local && u->step && u->get_reg && u->get_proc_info ? 0 : -1;
}

int ml_exit_frame_find(int how, struct ml_exit_frame *out)
{
    struct unw_api u;
    if (load_api(&u) != 0)
        return -1;
    /* libc's exit, not a PLT slot: the definition past libmallard.so */
    uintptr_t libc_exit = (uintptr_t)dlsym(RTLD_NEXT, "exit");

    static ucontext_t uc; /* big; mallard's own .bss is no root */
    static struct unw_cursor c;
    if (u.getcontext(&uc) != 0 || u.init_local(&c, &uc) < 0)
        return -1;
    int found = 0;
    for (int depth = 0; depth < 64 && !found; depth++) {
        uint64_t ip = 0;
        if (u.get_reg(&c, UNW_RIP, &ip) < 0)
            return -1;
        if (how == ML_EXIT_EXIT) {
            struct unw_proc_info pi;
            memset(&pi, 0, sizeof pi);
            if (u.get_proc_info(&c, &pi) == 0 && pi.start_ip == libc_exit && libc_exit)
                found = 1; /* this is exit's frame: its caller is next */
        } else if (depth > 0 && !ml_stack_is_own((uintptr_t)ip + 1)) {
            found = 2; /* the first frame outside mallard: this one */
            break;
        }
        if (u.step(&c) <= 0)
            return -1;
    }
    if (!found)
        return -1;
    static const int regs[6] = {UNW_RBX, UNW_RBP, UNW_R12, UNW_R13, UNW_R14, UNW_R15};
    uint64_t v;
    if (u.get_reg(&c, UNW_RSP, &v) < 0)
        return -1;
    out->sp = (uintptr_t)v;
    for (int i = 0; i < 6; i++)
        out->regs[i] = u.get_reg(&c, regs[i], &v) < 0 ? 0 : (uintptr_t)v;
    return 0;
}
