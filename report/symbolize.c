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
 * The function name is the innermost DWARF subprogram or inlined
 * subroutine (so the name agrees with the file:line, even when the leaking
 * function was inlined into its caller), then the ELF .symtab/.dynsym
 * symbol, else NULL.  A file whose build-id no longer matches the one
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

struct sym_entry {
    uintptr_t addr; /* 0: empty slot */
    struct ml_frame f;
};

struct sym_mod {
    const struct ml_module *m;
    Dwfl_Module *dm; /* NULL: could not be opened or does not match */
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
    size_t cap = sym.cache_cap ? sym.cache_cap * 2 : 1024;
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

/* The Dwfl_Module for m, reporting it on first use. */
static Dwfl_Module *sym_module(const struct ml_module *m)
{
    for (size_t i = 0; i < sym.nmods; i++)
        if (sym.mods[i].m == m)
            return sym.mods[i].dm;
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
    sym.mods[sym.nmods].m = m;
    sym.mods[sym.nmods].dm = dm;
    sym.nmods++;
    return dm;
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

/* The innermost function (out-of-line or inlined) whose code holds pc;
 * cu is the compilation unit holding it, bias its address bias. */
static const char *sym_dwarf_function(Dwarf_Die *cu, Dwarf_Addr bias, Dwarf_Addr pc)
{
    /* C++: the mangled linkage name, as .symtab has it (no demangler in
     * here), so that overloads stay apart.  C: the source name; a C
     * linkage name only appears for asm labels, such as glibc's internal
     * __GI_ aliases, which nobody wants to read. */
    int cxx = sym_is_cxx(cu);
    Dwarf_Die *scopes = NULL;
    int n = dwarf_getscopes(cu, pc - bias, &scopes);
    const char *name = NULL;
    for (int i = 0; i < n && !name; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
            continue;
        Dwarf_Attribute attr;
        if (cxx && (dwarf_attr_integrate(&scopes[i], DW_AT_linkage_name, &attr) ||
                    dwarf_attr_integrate(&scopes[i], DW_AT_MIPS_linkage_name, &attr)))
            name = dwarf_formstring(&attr);
        if (!name)
            name = dwarf_diename(&scopes[i]);
        if (!name)
            break; /* anonymous: let the symbol table answer */
    }
    free(scopes); /* libdw's malloc; see the header comment */
    return name;
}

static void sym_resolve(uintptr_t addr, struct ml_frame *out)
{
    memset(out, 0, sizeof *out);
    out->addr = addr;
    out->offset = addr;
    uintptr_t pc = addr ? addr - 1 : 0;
    const struct ml_module *m = ml_modules_find(pc);
    if (!m)
        return;
    out->object = m->path;
    out->offset = addr - m->base;
    Dwfl_Module *dm = sym.dwfl ? sym_module(m) : NULL;
    if (!dm)
        return;
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
    if (cu)
        out->function = sym_dwarf_function(cu, bias, pc);
    if (!out->function) {
        GElf_Off off;
        GElf_Sym s;
        const char *name = dwfl_module_addrinfo(dm, pc, &off, &s, NULL, NULL, NULL);
        if (name && name[0])
            out->function = name;
    }
}

/* Set while this thread is inside libdw: a fatal signal raised there whose
 * handler writes the report must not wait for the lock it already holds. */
static ML_TLS int sym_inside;

void ml_symbolize(uintptr_t addr, struct ml_frame *out)
{
    if (sym_inside) {
        memset(out, 0, sizeof *out);
        out->addr = addr;
        out->offset = addr;
        const struct ml_module *m = ml_modules_find(addr ? addr - 1 : 0);
        if (m) {
            out->object = m->path;
            out->offset = addr - m->base;
        }
        return;
    }
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
    struct sym_entry *e = NULL;
    if (addr && sym_cache_reserve() == 0) {
        e = sym_cache_slot(addr);
        if (e->addr == addr) {
            *out = e->f;
            sym_inside = 0;
            ml_mutex_unlock(&sym.lock);
            return;
        }
    }
    sym_resolve(addr, out);
    if (e) {
        e->addr = addr;
        e->f = *out;
        sym.cache_n++;
    }
    sym_inside = 0;
    ml_mutex_unlock(&sym.lock);
}
