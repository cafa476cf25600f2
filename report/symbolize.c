/* report/symbolize.c: return addresses to function, file:line and object,
 * with elfutils libdwfl, at report time.
 *
 * One Dwfl, offline style: every object is reported from its path on disk
 * at the load bias modules.c recorded, so an object dlclose'd before exit
 * resolves like a loaded one.  Objects are reported lazily, on the first
 * frame that lands in them (dwfl_report_begin_add), so a report touching
 * three libraries opens three files, not the whole link map.  Which module
 * an address belongs to is decided by ml_modules_find, not by Dwfl's own
 * address lookup: that keeps "a loaded object wins over an unloaded one at
 * the same address" in one place, and lets two such objects coexist in the
 * Dwfl without confusing it.
 *
 * Per address, the lookup uses addr - 1: a return address points after the
 * call, and may already belong to the next line or even the next function.
 * Each address expands into its inline chain (ml_symbolize_chain): the
 * innermost DWARF function at the pc, then each function it was inlined
 * into at the line of the call.  Names follow valgrind: an out-of-line
 * function by its demangled linkage name (app::Registry::add(int)), else
 * the .symtab/.dynsym symbol (glibc's public alias: strdup, not __strdup);
 * an inlined C++ function by its DW_AT_name (push_back), keeping the
 * linkage name in mangled.  A file whose build-id no longer matches the one
 * recorded at load time is not trusted for anything but object+offset.
 *
 * Debug files come from the local disk only (see sym_find_debuginfo): never
 * from debuginfod servers, even with DEBUGINFOD_URLS set.
 *
 * Results are cached by address (open addressing, meta heap): a frame
 * shared by many stacks is resolved once.  Strings point into libdw's data
 * (the Dwfl is never freed) or the meta heap, so they live until exit.
 *
 * Which objects exist is modules.c's business: this file never calls
 * ml_modules_refresh, because that takes glibc's loader lock and the report
 * path may hold mallard locks.  The trace layer refreshes when it records a
 * stack in an object it does not know, and once more before the report,
 * with no mallard lock held.
 *
 * libdw calls malloc; while mallard symbolizes, the trace layer's
 * recursion guard sends those to the meta heap.  Not async-signal-safe:
 * only the report path may call this, never a hot path.
 */
#define _GNU_SOURCE
#include "report.h"

#include "../core/lock.h"
#include "../core/meta.h"
#include "../core/os.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dw.h"
#include "symfns.h"

#define SYM_CANDS 6 /* glibc's __libc_start_main has 5 */

struct sym_entry {
    uintptr_t addr; /* 0: empty slot */
    unsigned n;
    struct ml_frame *chain; /* meta heap: n frames, innermost first; NULL: not resolved yet */
    /* ml_symbolize_symtab_which's answers, for up to two wants */
    int (*want[2])(const char *, const char *);
    int which[2];
    /* the function symbols containing addr - 1 (ml_symfns_at), shared by
     * the wants: 0 not looked up yet, 1 cand[0..ncand) holds them, 2 more
     * than SYM_CANDS (looked up again per want) */
    uint8_t cands_state, ncand;
    uint32_t cand[SYM_CANDS];
};

struct sym_mod {
    const struct ml_module *m;
    Dwfl_Module *dm;      /* NULL: could not be opened or does not match */
    struct ml_symfns fns; /* its function symbols (ml_symbolize_symtab_which) */
};

/* Whether the file open on fd carries the module's build-id (a debuglink
 * names a file, and a stale one would give wrong lines). */
static int sym_debug_matches(Dwfl_Module *mod, int fd)
{
    const unsigned char *want;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(mod, &want, &vaddr);
    if (n <= 0)
        return 1; /* nothing to compare against */
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    const void *got = NULL;
    ssize_t m = elf ? dwelf_elf_gnu_build_id(elf, &got) : -1;
    int same = m == n && !memcmp(got, want, (size_t)n);
    elf_end(elf);
    return same;
}

/* dwfl_standard_find_debuginfo without its last resort: when the local
 * search fails it asks the debuginfod servers in DEBUGINFOD_URLS, which
 * would dlopen libcurl and wait on the network inside the allocator at
 * exit.  So: the build-id tree (/usr/lib/debug/.build-id, what Debian's
 * -dbg and -dbgsym packages install), then the .gnu_debuglink places gdb
 * looks in, each checked by build-id. */
static int sym_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                              const char *file_name, const char *debuglink, GElf_Word crc,
                              char **debuginfo_file_name)
{
    int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink, crc,
                                          debuginfo_file_name);
    if (fd >= 0 || !debuglink || !debuglink[0] || !file_name || file_name[0] != '/')
        return fd;
    const char *slash = strrchr(file_name, '/');
    size_t dl = (size_t)(slash - file_name); /* the directory, without its trailing slash */
    static const char *const shapes[][2] = {{"", "/"}, {"", "/.debug/"}, {"/usr/lib/debug", "/"}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        size_t pl = strlen(shapes[i][0]), ml = strlen(shapes[i][1]), ll = strlen(debuglink);
        char *path = malloc(pl + dl + ml + ll + 1); /* libdwfl frees it */
        if (!path)
            return -1;
        memcpy(path, shapes[i][0], pl);
        memcpy(path + pl, file_name, dl);
        memcpy(path + pl + dl, shapes[i][1], ml);
        memcpy(path + pl + dl + ml, debuglink, ll + 1);
        fd = strcmp(path, file_name) ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0 && sym_debug_matches(mod, fd)) {
            *debuginfo_file_name = path;
            return fd;
        }
        if (fd >= 0)
            close(fd);
        free(path);
    }
    return -1;
}

/* Filled once libdw is loaded (dw.h): its functions are not constants. */
static Dwfl_Callbacks sym_callbacks;

static struct {
    ml_mutex lock; /* libdw is not thread-safe, and neither is the cache */
    Dwfl *dwfl;
    int failed; /* dwfl_begin failed once: do not retry per frame */
    struct sym_entry *cache;
    size_t cache_cap, cache_n;
    struct sym_mod *mods;
    size_t nmods, mods_cap;
} sym = {.lock = ML_MUTEX_INIT};

static size_t sym_hash(uintptr_t a)
{
    uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 29));
}

static struct sym_entry *sym_cache_slot(uintptr_t addr)
{
    size_t mask = sym.cache_cap - 1;
    for (size_t i = sym_hash(addr) & mask;; i = (i + 1) & mask)
        if (sym.cache[i].addr == addr || sym.cache[i].addr == 0)
            return &sym.cache[i];
}

/* Keeps the load factor under 1/2.  Returns 0, or -1 when out of memory
 * (the caller then simply does not cache). */
static int sym_cache_reserve(void)
{
    if (sym.cache && (sym.cache_n + 1) * 2 <= sym.cache_cap)
        return 0;
    /* small at first: a short report resolves a few dozen addresses, and
     * each one lands on its own page of a large table */
    size_t cap = sym.cache_cap ? sym.cache_cap * 2 : 64;
    struct sym_entry *old = sym.cache;
    size_t old_cap = sym.cache_cap;
    struct sym_entry *fresh = ml_meta_alloc(cap * sizeof *fresh);
    if (!fresh)
        return -1;
    sym.cache = fresh;
    sym.cache_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].addr)
            *sym_cache_slot(old[i].addr) = old[i];
    ml_meta_free(old);
    return 0;
}

static int sym_build_id_matches(Dwfl_Module *dm, const struct ml_module *m)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(dm, &bits, &vaddr);
    if (m->build_id_len == 0)
        return 1; /* nothing recorded: trust the path */
    return len == (int)m->build_id_len && !memcmp(bits, m->build_id, m->build_id_len);
}

/* m's entry, with its Dwfl_Module reported on first use; NULL when out
 * of memory. */
static struct sym_mod *sym_mod_of(const struct ml_module *m)
{
    for (size_t i = 0; i < sym.nmods; i++)
        if (sym.mods[i].m == m)
            return &sym.mods[i];
    if (sym.nmods == sym.mods_cap) {
        size_t cap = sym.mods_cap ? sym.mods_cap * 2 : 32;
        struct sym_mod *mods = ml_meta_realloc(sym.mods, cap * sizeof *mods);
        if (!mods)
            return NULL;
        sym.mods = mods;
        sym.mods_cap = cap;
    }
    Dwfl_Module *dm = NULL;
    if (m->path && m->path[0] == '/') {
        /* Each object gets its own name (its address), so that an unloaded
         * object and a loaded one with the same path never collide. */
        char name[32];
        char *p = name + sizeof name;
        *--p = '\0';
        uintptr_t v = (uintptr_t)m;
        do
            *--p = "0123456789abcdef"[v & 15];
        while (v >>= 4);
        dwfl_report_begin_add(sym.dwfl);
        dm = dwfl_report_elf(sym.dwfl, p, m->path, -1, m->base, false);
        dwfl_report_end(sym.dwfl, NULL, NULL);
        if (dm && !sym_build_id_matches(dm, m))
            dm = NULL;
    }
    sym.mods[sym.nmods] = (struct sym_mod){.m = m, .dm = dm};
    ml_symfns_init(&sym.mods[sym.nmods].fns, dm, m->base);
    return &sym.mods[sym.nmods++];
}

/* The Dwfl_Module for m, reporting it on first use. */
static Dwfl_Module *sym_module(const struct ml_module *m)
{
    struct sym_mod *sm = sym_mod_of(m);
    return sm ? sm->dm : NULL;
}

static int sym_is_cxx(Dwarf_Die *cu)
{
    switch (dwarf_srclang(cu)) {
    case DW_LANG_C_plus_plus:
    case DW_LANG_C_plus_plus_03:
    case DW_LANG_C_plus_plus_11:
    case DW_LANG_C_plus_plus_14:
        return 1;
    default:
        return 0;
    }
}

/* libstdc++'s __cxa_demangle, found on demand as libdw is, so that
 * libmallard.so needs nothing but libc: the program's own copy when it has
 * one (a C++ program always does), else libstdc++.so.6 loaded RTLD_LOCAL,
 * and only once a mangled name turns up.  It mallocs its result; callers
 * hold the trace layer's recursion guard, so that memory is the meta
 * heap's, and it lives until exit with the cache that points to it. */
static char *(*sym_demangler)(const char *, char *, size_t *, int *);
static int sym_demangler_tried;

static const char *sym_demangle(const char *name)
{
    if (!name || name[0] != '_' || name[1] != 'Z')
        return NULL;
    if (!sym_demangler_tried) {
        sym_demangler_tried = 1;
        void *f = dlsym(RTLD_DEFAULT, "__cxa_demangle");
        if (!f) {
            void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
            f = h ? dlsym(h, "__cxa_demangle") : NULL;
        }
        *(void **)&sym_demangler = f;
    }
    if (!sym_demangler)
        return NULL;
    int status = -1;
    char *d = sym_demangler(name, NULL, NULL, &status);
    return status == 0 ? d : NULL;
}

/* The length of a symbol-table name without its symbol version: glibc's
 * .symtab has __libc_start_main@@GLIBC_2.34; the name is what precedes it. */
static size_t sym_unversioned_len(const char *name)
{
    size_t len = strcspn(name, "@");
    return len ? len : strlen(name);
}

/* A symbol or linkage name as the report shows it: demangled, with the
 * mangled one kept aside. */
static void sym_set_name(struct ml_frame *f, const char *name)
{
    size_t len = sym_unversioned_len(name);
    if (name[len]) {
        char *copy = ml_meta_alloc(len + 1);
        if (copy) {
            memcpy(copy, name, len);
            copy[len] = '\0';
            name = copy;
        }
    }
    const char *d = sym_demangle(name);
    f->function = d ? d : name;
    f->mangled = d ? name : NULL;
}

/* The name of a subprogram or inlined subroutine DIE.  C++: the linkage
 * name, demangled (overloads stay apart: app::Registry::add(int)).  C: the
 * source name; a C linkage name only appears for asm labels, such as
 * glibc's internal __GI_ aliases, which nobody wants to read.  0: the DIE
 * is anonymous. */
static int sym_die_name(Dwarf_Die *die, int cxx, struct ml_frame *f)
{
    Dwarf_Attribute attr;
    const char *name = NULL;
    if (cxx && (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
                dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr)))
        name = dwarf_formstring(&attr);
    if (name) {
        sym_set_name(f, name);
        return 1;
    }
    name = dwarf_diename(die);
    f->function = name;
    f->mangled = NULL;
    return name != NULL;
}

/* An inlined C++ function as valgrind prints it: its DW_AT_name
 * ("push_back", "_M_create_node<...>"), not the qualified, demangled
 * linkage name, so that frame 0 reads the same in both tools; the linkage
 * name stays in mangled (JSON, suppressions).  0: no DW_AT_name. */
static int sym_inlined_name(Dwarf_Die *die, struct ml_frame *f)
{
    const char *name = dwarf_diename(die);
    if (!name)
        return 0;
    Dwarf_Attribute attr;
    const char *linkage = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        linkage = dwarf_formstring(&attr);
    f->function = name;
    f->mangled = linkage && strcmp(linkage, name) ? linkage : NULL;
    return 1;
}

static int sym_is_function(Dwarf_Die *die)
{
    int tag = dwarf_tag(die);
    return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine;
}

/* Fills out[0..] with the inline chain at pc (see ml_symbolize_chain);
 * out[0] already holds the address, object and the line table's
 * file:line.  Returns the frames filled, 0 when DWARF has no function. */
static unsigned sym_dwarf_chain(Dwarf_Die *cu, Dwarf_Addr bias, Dwarf_Addr pc, struct ml_frame *out,
                                unsigned cap)
{
    int cxx = sym_is_cxx(cu);
    Dwarf_Die *scopes = NULL;
    int n = dwarf_getscopes(cu, pc - bias, &scopes);
    int inner = -1;
    for (int i = 0; i < n && inner < 0; i++)
        if (sym_is_function(&scopes[i]))
            inner = i;
    /* dwarf_getscopes continues past an inlined instance with the scopes
     * of its abstract definition; the concrete parents of the innermost
     * function are what dwarf_getscopes_die gives. */
    Dwarf_Die *chain = NULL;
    int m = inner >= 0 ? dwarf_getscopes_die(&scopes[inner], &chain) : -1;
    free(scopes); /* libdw's malloc; see the header comment */
    if (m <= 0) {
        free(chain);
        return 0;
    }
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    int have_files = -1;
    unsigned k = 0;
    struct ml_frame base = out[0];
    base.function = base.mangled = NULL;
    base.file = NULL;
    base.line = 0;
    base.inlined = 0;
    /* out[k]'s file:line is set before its name: the line table's for
     * out[0], the call site of the inlined instance inside it for the rest */
    for (int i = 0; i < m && k < cap; i++) {
        Dwarf_Die *d = &chain[i];
        if (!sym_is_function(d))
            continue;
        int tag = dwarf_tag(d);
        struct ml_frame *f = &out[k];
        if (tag == DW_TAG_inlined_subroutine && cxx && sym_inlined_name(d, f)) {
            /* named as valgrind names inlined C++ code (see sym_inlined_name) */
        } else if (!sym_die_name(d, cxx, f) && k == 0 && tag == DW_TAG_subprogram) {
            free(chain);
            return 0; /* anonymous: let the symbol table answer */
        }
        k++;
        if (tag == DW_TAG_subprogram || k == cap)
            break;
        f->inlined = 1;
        struct ml_frame *next = &out[k];
        *next = base;
        Dwarf_Attribute attr;
        Dwarf_Word file = 0, line = 0;
        if (dwarf_formudata(dwarf_attr_integrate(d, DW_AT_call_file, &attr), &file) == 0) {
            if (have_files < 0)
                have_files = dwarf_getsrcfiles(cu, &files, &nfiles) == 0;
            if (have_files > 0 && file < nfiles)
                next->file = dwarf_filesrc(files, file, NULL, NULL);
        }
        if (next->file && dwarf_formudata(dwarf_attr_integrate(d, DW_AT_call_line, &attr), &line) == 0)
            next->line = (int)line;
    }
    free(chain);
    return k;
}

static unsigned sym_underscores(const char *s)
{
    unsigned n = 0;
    while (s[n] == '_')
        n++;
    return n;
}

/* glibc's DWARF names the implementation (__strdup, __getdelim); the
 * public alias at the same address is what programs call and what
 * valgrind prints (it prefers the alias with the fewest leading
 * underscores).  Only for names that start with '_': a linear pass over
 * the module's symbols, once per address thanks to the cache. */
static const char *sym_public_alias(Dwfl_Module *dm, Dwarf_Addr pc, const char *name)
{
    GElf_Off off;
    GElf_Sym s;
    if (!name || name[0] != '_' || !dwfl_module_addrinfo(dm, pc, &off, &s, NULL, NULL, NULL))
        return name;
    GElf_Addr start = pc - off;
    const char *best = name;
    unsigned best_u = sym_underscores(name);
    int n = dwfl_module_getsymtab(dm);
    for (int i = 1; i < n && best_u; i++) {
        GElf_Sym es;
        GElf_Addr a;
        const char *nm = dwfl_module_getsym_info(dm, i, &es, &a, NULL, NULL, NULL);
        if (!nm || a != start || GELF_ST_TYPE(es.st_info) != STT_FUNC ||
            GELF_ST_BIND(es.st_info) == STB_LOCAL || strchr(nm, '@'))
            continue;
        unsigned u = sym_underscores(nm);
        if (u < best_u) {
            best = nm;
            best_u = u;
        }
    }
    return best;
}

static unsigned sym_resolve(uintptr_t addr, struct ml_frame *out, unsigned cap)
{
    memset(out, 0, sizeof *out);
    out->addr = addr;
    out->offset = addr;
    uintptr_t pc = addr ? addr - 1 : 0;
    const struct ml_module *m = ml_modules_find(pc);
    if (!m)
        return 1;
    out->object = m->path;
    out->offset = addr - m->base;
    Dwfl_Module *dm = sym.dwfl ? sym_module(m) : NULL;
    if (!dm)
        return 1;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(dm, pc, &bias);
    Dwfl_Line *line = dwfl_module_getsrc(dm, pc);
    if (line) {
        int lineno = 0;
        const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        if (file && file[0]) {
            out->file = file; /* libdw already joined it with its directory */
            out->line = lineno;
        }
    }
    unsigned n = cu ? sym_dwarf_chain(cu, bias, pc, out, cap) : 0;
    if (n) {
        /* The physical function may lack a DWARF name, or (a C++ static
         * function) its linkage name: the symbol table has it, as valgrind
         * shows it (make_pair(), not make_pair). */
        struct ml_frame *last = &out[n - 1];
        if (!last->function || (!last->mangled && !last->inlined)) {
            GElf_Off off;
            GElf_Sym s;
            const char *name = dwfl_module_addrinfo(dm, pc, &off, &s, NULL, NULL, NULL);
            if (name && name[0] && (!last->function || (name[0] == '_' && name[1] == 'Z')))
                sym_set_name(last, name);
        }
        if (!last->mangled && !last->inlined)
            last->function = sym_public_alias(dm, pc, last->function);
        return n;
    }
    out->function = NULL;
    out->mangled = NULL;
    out->inlined = 0;
    GElf_Off off;
    GElf_Sym s;
    const char *name = dwfl_module_addrinfo(dm, pc, &off, &s, NULL, NULL, NULL);
    if (name && name[0])
        sym_set_name(out, name);
    if (out->function && !out->mangled)
        out->function = sym_public_alias(dm, pc, out->function);
    return 1;
}

/* Set while this thread is inside libdw: a fatal signal raised there whose
 * handler writes the report must not wait for the lock it already holds. */
static ML_TLS int sym_inside;

/* Takes sym.lock and opens the Dwfl on first use; returns 0, or -1 when
 * this thread is already inside libdw (a fatal signal raised there): then
 * only the object and offset may be given, and nothing is locked. */
static int sym_enter(void)
{
    if (sym_inside)
        return -1;
    ml_mutex_lock(&sym.lock);
    sym_inside = 1;
    if (!sym.dwfl && !sym.failed) {
        if (ml_dw_load() == 0) {
            sym_callbacks.find_elf = dwfl_build_id_find_elf;
            sym_callbacks.find_debuginfo = sym_find_debuginfo;
            sym_callbacks.section_address = dwfl_offline_section_address;
            sym.dwfl = dwfl_begin(&sym_callbacks);
        }
        sym.failed = !sym.dwfl;
    }
    return 0;
}

static void sym_leave(void)
{
    sym_inside = 0;
    ml_mutex_unlock(&sym.lock);
}

static void sym_object_only(uintptr_t addr, struct ml_frame *out)
{
    memset(out, 0, sizeof *out);
    out->addr = addr;
    out->offset = addr;
    const struct ml_module *m = ml_modules_find(addr ? addr - 1 : 0);
    if (m) {
        out->object = m->path;
        out->offset = addr - m->base;
    }
}

/* addr's cache entry, made if need be; NULL when the cache is out of
 * memory (the caller resolves without caching). */
static struct sym_entry *sym_entry_for(uintptr_t addr)
{
    if (!addr || sym_cache_reserve() != 0)
        return NULL;
    struct sym_entry *e = sym_cache_slot(addr);
    if (e->addr != addr) {
        *e = (struct sym_entry){.addr = addr};
        sym.cache_n++;
    }
    return e;
}

unsigned ml_symbolize_chain(uintptr_t addr, struct ml_frame *out, unsigned cap)
{
    if (!cap)
        return 0;
    if (sym_enter() != 0) {
        sym_object_only(addr, out);
        return 1;
    }
    struct sym_entry *e = sym_entry_for(addr);
    struct ml_frame tmp[ML_INLINE_MAX];
    const struct ml_frame *chain = e ? e->chain : NULL;
    unsigned n = e ? e->n : 0;
    if (!chain) {
        n = sym_resolve(addr, tmp, ML_INLINE_MAX);
        chain = tmp;
        struct ml_frame *keep = e ? ml_meta_alloc(n * sizeof *keep) : NULL;
        if (keep) {
            memcpy(keep, tmp, n * sizeof *keep);
            e->n = n;
            e->chain = keep;
        }
    }
    n = n < cap ? n : cap;
    memcpy(out, chain, n * sizeof *out);
    if (n && out[n - 1].inlined && n == cap)
        out[n - 1].inlined = 0; /* cut short: the last frame shown stands alone */
    sym_leave();
    return n;
}

/* The first nonzero answer of want for a function symbol of sm containing
 * pc, the symbols looked up once per address (e, when cached). */
static int sym_fns_which(struct sym_mod *sm, uintptr_t pc, int (*want)(const char *, const char *),
                         struct sym_entry *e)
{
    uint32_t idx[ML_SYMFNS_MAX];
    const uint32_t *cand = idx;
    unsigned n;
    if (e && e->cands_state == 1) {
        cand = e->cand;
        n = e->ncand;
    } else {
        n = ml_symfns_at(&sm->fns, pc, idx);
        if (e) {
            e->cands_state = n <= SYM_CANDS ? 1 : 2;
            e->ncand = (uint8_t)(n <= SYM_CANDS ? n : 0);
            memcpy(e->cand, idx, (n <= SYM_CANDS ? n : 0) * sizeof *idx);
        }
    }
    for (unsigned j = 0; j < n; j++) {
        const char *nm = ml_symfns_name(&sm->fns, cand[j]);
        if (!nm)
            continue;
        char name[256];
        size_t len = sym_unversioned_len(nm);
        len = len < sizeof name ? len : sizeof name - 1;
        memcpy(name, nm, len);
        name[len] = '\0';
        const char *d = sym_demangle(name);
        int which = want(name, d);
        free((void *)d); /* the meta heap's: the caller holds the trace guard */
        if (which)
            return which;
    }
    return 0;
}

int ml_symbolize_symtab_which(uintptr_t addr, int (*want)(const char *name, const char *demangled))
{
    if (!addr || sym_enter() != 0)
        return 0;
    struct sym_entry *e = sym_entry_for(addr);
    int slot = -1;
    for (int k = 0; e && k < 2 && slot < 0; k++)
        if (e->want[k] == want || !e->want[k])
            slot = k;
    int which;
    if (slot >= 0 && e->want[slot] == want) {
        which = e->which[slot];
    } else {
        uintptr_t pc = addr - 1;
        const struct ml_module *m = ml_modules_find(pc);
        struct sym_mod *sm = m && sym.dwfl ? sym_mod_of(m) : NULL;
        which = sm && sm->dm ? sym_fns_which(sm, pc, want, e) : 0;
        if (slot >= 0) {
            e->want[slot] = want;
            e->which[slot] = which;
        }
    }
    sym_leave();
    return which;
}

void ml_symbolize(uintptr_t addr, struct ml_frame *out) { ml_symbolize_chain(addr, out, 1); }

/* Weak: the report unit tests link symbolize.c without stack.c, and then
 * no frame is mallard's own. */
extern __typeof__(ml_stack_is_own) ml_stack_is_own __attribute__((weak));

static const char *const below_main[] = {"__libc_start_call_main", "__libc_start_main_impl",
                                         "__libc_start_main", "_start"};

/* 1 when a symbol-table name is below main. */
static int sym_below_main_name(const char *name, const char *demangled)
{
    (void)demangled;
    for (size_t i = 0; i < sizeof below_main / sizeof *below_main; i++)
        if (!strcmp(name, below_main[i]))
            return 1;
    return 0;
}

int ml_frame_addr_shown(uintptr_t addr)
{
    if (ml_stack_is_own && ml_stack_is_own(addr))
        return 0;
    return !ml_symbolize_symtab_which(addr, sym_below_main_name);
}

int ml_frame_shown(const struct ml_frame *f)
{
    if (ml_stack_is_own && ml_stack_is_own(f->addr))
        return 0;
    if (!f->function)
        return 1;
    for (size_t i = 0; i < sizeof below_main / sizeof *below_main; i++)
        if (!strcmp(f->function, below_main[i]))
            return 0;
    return 1;
}
