/* report/report.h: the trace layer's data model, shared by capture, the
 * block table, the reachability scan, symbolization and the writers.
 *
 * Data flows one way: the hot path records (stack id, size, tag) per block;
 * at exit the blocks are classified (reach.c), grouped by (kind, stack,
 * tag) into a struct ml_report, symbolized (symbolize.c) and written as text
 * or JSON (write_text.c, write_json.c over wbuf.c).  Everything here lives in the meta heap.
 */
#ifndef ML_REPORT_REPORT_H
#define ML_REPORT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h" /* enum ml_exit_how, enum ml_alloc_kind */

/* ---- stacks (stack.c) ------------------------------------------------- */

#define ML_DEPTH_MAX 256
typedef uint32_t ml_stack_id; /* 0: no stack */

/* Once, at start-up: depth frames at most per stack; eager: load libunwind
 * now (otherwise it is loaded when a stack first needs it). */
int ml_stack_init(int depth, int eager);
/* libunwind's dlopen handle, loading it if it is not yet (NULL when it
 * cannot be); whether it is loaded. */
void *ml_stack_libunwind(void);
int ml_stack_libunwind_loaded(void);
/* Captures the caller's stack, minus mallard's own frames, and interns it.
 * Frame 0 is the function that called the malloc-family function. */
ml_stack_id ml_stack_capture(void);
/* Whether addr is in libmallard.so's own code. */
int ml_stack_is_own(uintptr_t addr);
/* The caching unwinder (unwind.c): ml_unwind_init once at start-up (0, or
 * -1 when glibc lacks _dl_find_object); ml_unwind fills out[] with up to max
 * return addresses as unw_backtrace would, out[0] its caller's, and returns
 * how many, or -1 when a frame is not simple and libunwind must do it. */
int ml_unwind_init(void);
int ml_unwind(void **out, int max);
/* ml_unwind_skip: ml_unwind(out, keep + 8) less its leading frames whose
 * return address is in [lo, hi) of ml_unwind_set_own (called once, before
 * any use), at most keep of the rest; 0 when those frames are all own.
 * memo (or NULL): the caller's per-thread record of its recent walks (see
 * unwind.c), memo->sets sets of ML_MEMO_WAYS ways, the set chosen by
 * where the walk leaves the own frames and its first step; ML_UNWIND_SAME when the walk would
 * read exactly what the one recorded in memo->way[memo->last] read, so its
 * frames are that walk's (out is not filled); ML_UNWIND_ABOVE when the
 * walk reached a frame of a recorded one (an anchor) and would read what
 * that one read from there on: its memo->above.n frames are out[0..at)
 * and those of memo->way[above.above]'s walk from its frame above.from on
 * (the caller has them by the way's id), and memo->way[memo->last]
 * records the walk, with id 0 for the caller to set; otherwise that way
 * records this walk, with id 0 for the caller to set.  The memory is
 * zero-filled before first use but for sets (a memo with every way's n 0
 * is empty). */
#define ML_MEMO_SETS_MIN 4
#define ML_MEMO_SETS_MAX 32
#define ML_MEMO_WAYS 8
#define ML_MEMO_CHECKS 48
#define ML_MEMO_OWN 16
#define ML_MEMO_ANCHORS 128
#define ML_MEMO_ANCHOR_FRAMES 4
#define ML_UNWIND_SAME (-2)
#define ML_UNWIND_ABOVE (-3)
struct ml_unwind_memo_way {
    uintptr_t s_ra, s_sp, s_rbp; /* where the walk began (the capture's caller) */
    int keep, s_checks;          /* its keep; the own frames' words (0: not known) */
    uint32_t s_urbp; /* where the program's first rbp was read: s_sp + s_urbp - 1 (0: it is s_rbp) */
    uint32_t s_off[ML_MEMO_OWN]; /* they read s_val[k] at s_sp + s_off[k] */
    uintptr_t s_val[ML_MEMO_OWN];
    uintptr_t ra, sp, rbp;        /* where the walk left the own frames */
    uintptr_t ra1;                /* the return address its first step read */
    uint64_t stamp;               /* the memo's count of records when this one was begun */
    int n, lim;                   /* its result (0: none recorded) and the frames it could keep */
    int checks, rbp_used;         /* its checks; whether a CFA came from the rbp it began with */
    uint32_t id;                  /* the caller's: the stack id of those frames */
    uint32_t off[ML_MEMO_CHECKS]; /* the walk read val[k] at sp + off[k] */
    uintptr_t val[ML_MEMO_CHECKS];
};
struct ml_unwind_memo {
    unsigned last; /* the way (index into way[]) that answered or recorded last */
    unsigned sets; /* a power of 2, ML_MEMO_SETS_MIN..ML_MEMO_SETS_MAX */
    /* an ML_UNWIND_ABOVE answer: n frames, out[0..at) the walk's own, the
     * rest those of way[above]'s walk from its frame from on */
    struct {
        unsigned above, at, from, n;
    } above;
    uint64_t stamps;            /* records begun */
    unsigned long hits, misses; /* walks a way answered, and walks recorded (or not) anew (those an
                                   anchor answered among them) */
    unsigned long grow_at, seen_hits,
        seen_misses;                  /* the caller's: when to look at growing, and the last look's counts */
    uint8_t mru[ML_MEMO_SETS_MAX];    /* per set, its way used last */
    uint8_t victim[ML_MEMO_SETS_MAX]; /* per set, the next way to record into */
    uint8_t succ[ML_MEMO_SETS_MAX * ML_MEMO_WAYS]; /* per way, the way that answered after it last */
    /* frames 1..ML_MEMO_ANCHOR_FRAMES of recorded walks, by return address
     * and sp (unwind.c) */
    struct ml_unwind_memo_anchor {
        uintptr_t ra, sp, rbp; /* the frame's return address, sp (the CFA below it) and rbp */
        uint64_t stamp;        /* its way's when it was made */
        uint16_t way;
        uint8_t k;   /* its number in the way's walk */
        uint8_t c;   /* the way's first check of the steps from it */
        int8_t skip; /* one of those to leave out (-1: none): an rbp read below it */
        uint8_t dep; /* those steps use its rbp */
    } anchor[ML_MEMO_ANCHORS];
    struct ml_unwind_memo_way way[]; /* sets * ML_MEMO_WAYS */
};
#define ML_MEMO_BYTES(sets)                                                                                  \
    (sizeof(struct ml_unwind_memo) + (size_t)(sets)*ML_MEMO_WAYS * sizeof(struct ml_unwind_memo_way))
/* At thread exit (the trace layer's): the capture's per-thread memory goes. */
void ml_stack_thread_exit(void);
void ml_unwind_set_own(uintptr_t lo, uintptr_t hi);
/* Slots of the recipe table's generation in use (256 to 65536; a quarter
 * full to half full, or fuller where return addresses crowd), for tests. */
size_t ml_unwind_cache_slots(void);
/* In a fork child (the other threads are gone): a move of the recipe
 * table one of them had begun is undone. */
void ml_unwind_fork_child(void);
int ml_unwind_skip(void **out, int keep, struct ml_unwind_memo *memo);
/* A frame's registers, for the exit report's frame (unwind.c): ip is a
 * return address (looked up at ip - 1).  ml_unwind_here fills r as the
 * caller sees them once the call returns; ml_unwind_step_regs steps r to
 * its caller's frame by the CFI of ip - 1, with *func the start of the
 * function r was in: 1, 0 for the outermost frame, -1 when a rule is not
 * simple (libunwind can). */
struct ml_unwind_regs {
    uintptr_t ip, sp, rbp, rbx, r12, r13, r14, r15;
};
void ml_unwind_here(struct ml_unwind_regs *r);
int ml_unwind_step_regs(struct ml_unwind_regs *r, uintptr_t *func);
/* Captures the stack of a fault: pc is where it happened (frame 0, stored
 * as pc + 1 like a return address), and the frames above the signal
 * frame follow.  Called from a fatal-signal handler. */
ml_stack_id ml_stack_capture_fault(uintptr_t pc);
/* The frames (return addresses; frame 0 is the call site) of an id. */
const uintptr_t *ml_stack_frames(ml_stack_id id, unsigned *n);
/* The depot's shard locks under the fork protocol of ml_lock_atfork. */
void ml_stack_atfork(int phase);

/* ---- loaded objects (modules.c) --------------------------------------- */

struct ml_module {
    uintptr_t base;   /* load bias (l_addr) */
    uintptr_t lo, hi; /* extent of its executable PT_LOAD segments */
    const char *path; /* absolute path, or the main program's /proc/self/exe target */
    uint8_t build_id[40];
    unsigned build_id_len;
    int unloaded; /* dlclose'd since it was seen */
};

/* Re-reads the loaded objects (dl_iterate_phdr); objects that went away are
 * kept, marked unloaded, so their frames still symbolize at exit.  Cheap
 * when nothing changed.  Call it when a new stack holds an address that no
 * known module covers. */
void ml_modules_refresh(void);
/* The main program's path (/proc/self/exe), read once; "" if unknown. */
const char *ml_modules_exe(void);

/* The module whose executable range holds addr, or NULL.  Prefers a loaded
 * module over an unloaded one at the same address. */
const struct ml_module *ml_modules_find(uintptr_t addr);

/* ---- symbolization (symbolize.c) -------------------------------------- */

struct ml_frame {
    uintptr_t addr;       /* return address as captured */
    const char *function; /* NULL when no symbol is known; C++ names demangled */
    const char *mangled;  /* the linkage name when function was demangled from it, else NULL */
    const char *file;   /* NULL without debug info; the full source path as DWARF gives it (writers print the
                           basename) */
    int line;           /* 0 when unknown */
    const char *object; /* path of the module, NULL when none */
    uintptr_t offset;   /* addr - module base */
    int inlined;        /* 1: a call inlined into the next frame, which has the same addr */
};

/* Resolves one frame with elfutils libdw (function, file:line) and the
 * .symtab/.dynsym as a fallback; results are cached and live until exit.
 * out is the innermost frame of the address's inline chain. */
void ml_symbolize(uintptr_t addr, struct ml_frame *out);

#define ML_INLINE_MAX 16
/* The inline chain of addr, innermost first, as valgrind and LSan show it:
 * out[0] is the code at addr (perhaps inlined), each next frame the
 * function it was inlined into, at the line of that call; the last frame
 * is the out-of-line function.  Returns the count, 1..cap (cap >= 1). */
unsigned ml_symbolize_chain(uintptr_t addr, struct ml_frame *out, unsigned cap);

/* What want says (a number, 0 for no) of the symbol-table names of the
 * function addr (a return address) lies in, under any of its aliases: the
 * first nonzero answer.  want sees each name without its @VERSION, and its
 * demangled form for a C++ linkage name (else NULL).  The first few
 * questions about an object scan its symbol table in place, later ones a
 * sorted index (symfns.h); answers are cached per address (for two wants:
 * the built-in suppressions and the below-main cut).  Never opens DWARF. */
int ml_symbolize_symtab_which(uintptr_t addr, int (*want)(const char *name, const char *demangled));

/* Whether a frame belongs in the text report: mallard's own frames and
 * libc's start-up frames (below main) are left to the JSON report. */
int ml_frame_shown(const struct ml_frame *f);

/* The same question before symbolizing: whether the function addr lies in
 * is mallard's own or below main, by the symbol table alone, so that
 * libc's DWARF stays closed when only its start-up frames are in a stack. */
int ml_frame_addr_shown(uintptr_t addr);

/* ---- threads (threads.c) -------------------------------------------- */

/* Records the calling thread: its pthread_self (the thread pointer), the
 * extent of its stack mapping (which, for threads glibc created, also holds
 * the static TLS and the thread descriptor).  Called by the trace layer on
 * a thread's first traced allocation; allocations made inside it go to the
 * meta heap (the trace layer's recursion guard is set). */
void ml_threads_attach(void);
/* The calling thread is exiting: its stack stops being a root. */
void ml_threads_detach(void);
/* Forget every thread but the caller (in a fork child). */
void ml_threads_after_fork(void);
/* The calling thread, attached, has installed [lo, hi) as its signal stack
 * (0, 0: none). */
void ml_threads_altstack(uintptr_t lo, uintptr_t hi);

/* The registry as reach.c reads it. */
struct ml_thread_root {
    uintptr_t tp;     /* pthread_self(): the thread pointer */
    uintptr_t lo, hi; /* stack block [lo, hi); for the main thread an anchor inside [stack] */
    int is_main;      /* the process's initial thread: reach.c resolves its [stack] mapping */
    int anchored;     /* lo is a page inside the stack: the stack is the mapping holding it, up to hi */
    int gone;         /* detached: its stack is no longer a root, its TLS still is */
    int tid;          /* the kernel's thread id, for freeze.c */
    uintptr_t alt_lo, alt_hi; /* its signal stack (sigaltstack), 0 when none */
};
/* Copies min(n, cap) entries to out and returns n. */
size_t ml_threads_list(struct ml_thread_root *out, size_t cap);

/* ---- the other threads held still for the scan (freeze.c) -------------- */

/* Holds the attached threads other than the caller still while the report
 * takes its snapshot of the live blocks and the leak scan reads their
 * stacks, and learns where each one's live stack starts.  ml_freeze_end
 * lets them go; both run on the reporting thread, with the trace layer's
 * guard set; a begin inside another is a no-op (so is its end). */
void ml_freeze_begin(void);
void ml_freeze_end(void);

#define ML_FREEZE_NREGS 15
enum ml_freeze_how {
    ML_FREEZE_UNKNOWN, /* nothing known: its whole stack block is read */
    ML_FREEZE_SP,      /* blocked in a system call: its stack pointer, no registers */
    ML_FREEZE_REGS,    /* held in mallard's handler: stack pointer and registers */
};
/* What the freeze knows of the thread whose thread pointer is tp: its
 * stack pointer and, for ML_FREEZE_REGS, its general registers. */
enum ml_freeze_how ml_freeze_thread(uintptr_t tp, uintptr_t *sp, uintptr_t regs[ML_FREEZE_NREGS]);
/* Between begin and end: whether every other attached thread is held and
 * still is (so none can have freed a block since begin), or there is none. */
int ml_freeze_all_held(void);
/* fn(arg) between a begin and an end, from inside a dl_iterate_phdr
 * callback: the scan takes the loader's lock that guards the list of
 * objects (it is recursive), and holding it while the threads are stopped
 * means none of them is stopped holding it.  Everything that takes the
 * loader's other lock (dlsym, dlopen) must run before or after. */
void ml_freeze_run(void (*fn)(void *), void *arg);

/* ---- reachability (reach.c) ------------------------------------------- */

struct ml_range {
    uintptr_t lo, hi; /* [lo, hi) */
};

struct ml_live {
    uintptr_t addr;
    uint64_t size; /* requested size; a pointer into [addr, addr+max(size,1)) keeps it alive */
    ml_stack_id stack;
    uint32_t seq;   /* allocation order (0: unknown) */
    uint32_t owner; /* out, INDIRECT blocks: index of the DEFINITE block that owns it */
    uint16_t tag;
    uint8_t kind;  /* out: enum ml_kind */
    uint8_t flags; /* scratch for reach.c */
};

/* The exiting thread as it was where it called exit, _exit or exec: its
 * stack is scanned from sp up and these registers are roots, instead of
 * the scanning thread's own registers and frames (mallard's, and below
 * them whatever returned functions left).  See ml_exit_frame_find. */
struct ml_exit_frame {
    uintptr_t sp;
    uintptr_t regs[6]; /* rbx, rbp, r12..r15 at the call */
};

/* Fills *out with the frame that called exit (libc's, found by unwinding
 * through it), _exit or an exec function (mallard's wrappers: the first
 * frame outside libmallard.so).  0, or -1 when no such frame is found. */
int ml_exit_frame_find(int how, struct ml_exit_frame *out);

/* Classifies n live blocks, sorted by addr, by a conservative scan done in
 * process.  Roots: the writable PT_LOAD segments of every loaded object
 * minus the skip ranges (mallard's own tables); the stack mapping of every
 * attached thread; the mapping that holds each thread's thread pointer
 * (TLS); the calling thread's registers and its stack from the current
 * stack pointer up (from exit->sp, with exit->regs, when exit is given);
 * and, as valgrind does, all other private anonymous writable memory,
 * judged 64 KiB granule by granule, that neither mallard's allocator owns
 * (the owner map) nor holds a live block (programs that manage their own
 * memory, such as Python's arenas).  A word points into a block when it
 * lies in [addr, addr + max(size, 1)): the start or any interior byte, as
 * valgrind counts start and interior pointers; one past the end is not in
 * the block, and the trace layer keeps the next block from starting there.
 * A block reachable from a root is REACHABLE.  Of the rest, a block that
 * no other unreached block points to is DEFINITE; in a structure with no
 * such block (a pure cycle) the first allocated is; every other unreached
 * block is INDIRECT and owner names the DEFINITE block it was found from.
 * Allocates its work space from the meta heap. */
void ml_reach_classify(struct ml_live *blocks, size_t n, const struct ml_range *skip, size_t nskip,
                       const struct ml_exit_frame *exit);
/* The same for a report that counts only some of the blocks (a fork
 * child's: the parent's report covers what it inherited): theirs[i]
 * nonzero marks block i as not counted, NULL none.  Every counted block
 * gets its kind (and owner) exactly as ml_reach_classify would give it;
 * once all counted ones are found reachable the scan stops, and the kind
 * of an uncounted one may then be left REACHABLE.  When at most 16 are
 * counted and exit is given, a first pass looks for a word pointing into
 * each among the loaded objects' writable segments, exit's registers and
 * the main thread's stack above exit->sp: where it finds all of them, the
 * maps are not read and nothing is scanned. */
void ml_reach_classify_own(struct ml_live *blocks, size_t n, const struct ml_range *skip, size_t nskip,
                           const struct ml_exit_frame *exit, const uint8_t *theirs);

/* ---- the report model (built by trace.c, written by write_*.c) ------- */

enum ml_kind { ML_KIND_DEFINITE, ML_KIND_INDIRECT, ML_KIND_REACHABLE };
enum ml_error_kind {
    ML_ERR_DOUBLE_FREE,
    ML_ERR_INVALID_FREE,
    ML_ERR_INVALID_REALLOC,
    ML_ERR_OVERFLOW,
    ML_ERR_USE_AFTER_FREE,
    ML_ERR_MISMATCH, /* free of new, delete of new[], delete[] of malloc... */
};
/* What a fault did (ML_ERR_OVERFLOW / ML_ERR_USE_AFTER_FREE from a signal). */
enum ml_access { ML_ACCESS_NONE, ML_ACCESS_READ, ML_ACCESS_WRITE };

struct ml_count {
    uint64_t bytes, blocks;
};

struct ml_leak_group {
    enum ml_kind kind;
    uint64_t bytes, blocks;
    const char *tag; /* NULL: untagged */
    ml_stack_id stack;
    /* DEFINITE groups: the indirect blocks their blocks own (valgrind's
     * "444 (144 direct, 300 indirect) bytes in 3 blocks") */
    uint64_t indirect_bytes, indirect_blocks;
    /* INDIRECT groups: indexes of the DEFINITE groups that own its blocks,
     * ascending, counted among the groups a report lists (reachable ones
     * only when show_reachable) */
    const uint32_t *owners;
    uint32_t nowners;
};

struct ml_error {
    enum ml_error_kind kind;
    uintptr_t address;
    uint64_t bytes;                             /* size of the block concerned, 0 when unknown */
    ml_stack_id stack, alloc_stack, free_stack; /* 0 when unknown */
    uintptr_t block;                            /* start of the block address is in or next to; 0: none */
    int64_t offset;                /* address - block: past the end when >= bytes, before when < 0 */
    uint8_t alloc_kind, free_kind; /* enum ml_alloc_kind (ML_ERR_MISMATCH) */
    uint8_t access;                /* enum ml_access (a fault) */
    int tid;                       /* the thread that made the error */
    char thread[16];               /* its name (comm), "" when unknown */
};

struct ml_supp_use {
    const char *pattern; /* as written after "leak:" */
    uint64_t blocks, bytes;
};

struct ml_tag_stats {
    const char *tag;
    uint64_t allocs, current_bytes, peak_bytes;
    uint64_t frees, bytes_allocated;
    /* by_stack: the tag was given at report time from the blocks' stacks
     * (MALLARD_TAGS): only the live blocks are known, so allocs, frees,
     * bytes_allocated and peak_bytes are unknown (text "-", JSON null) and
     * current_bytes is the live blocks' bytes; blocks counts them. */
    int by_stack;
    uint64_t blocks;
};

struct ml_report {
    int pid, ppid;
    const char *exe;
    const char *const *argv; /* NULL-terminated */
    const char *backend;
    enum ml_exit_how exit_how;
    int exit_status; /* exit code, or the signal number for ML_EXIT_SIGNAL */
    struct ml_count definite, indirect, reachable, suppressed;
    uint64_t nerrors;
    struct ml_leak_group *groups; /* sorted by bytes + indirect_bytes, descending */
    size_t ngroups;
    struct ml_error *errors;
    size_t nerrors_listed;
    struct ml_tag_stats *tags;
    size_t ntags;
    uint64_t allocs, frees, bytes_allocated, peak_bytes, current_bytes;
    int show_reachable;              /* text and JSON: list reachable groups too (MALLARD_SHOW=all) */
    const struct ml_supp_use *supps; /* the MALLARD_SUPPRESSIONS patterns and their use */
    size_t nsupps;
    uint64_t injected;        /* allocations failed on purpose (MALLARD_FAIL, _FAIL_RATE, _LIMIT) */
    ml_stack_id inject_stack; /* the first one's stack; 0: none */
    /* A partial report (report/pressure.h).  stopped_why: what tracer
     * metadata ran short when tracing stopped, NULL when it never did;
     * allocs then counts the allocations traced before it, untraced_allocs
     * those made after.  short_of: what the report itself had no memory
     * for (nshort of them). */
    const char *stopped_why;
    uint64_t untraced_allocs;
    const char *const *short_of;
    size_t nshort;
};

/* Writes the report to fd through a fixed buffer over write(2).  Returns 0
 * or an errno value. */
int ml_write_text(int fd, const struct ml_report *r);
int ml_write_json(int fd, const struct ml_report *r);

#endif
