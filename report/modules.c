/* report/modules.c: the loaded objects, remembered past dlclose.
 *
 * A stack recorded in a library that is dlclose'd before exit can only be
 * symbolized if its path, load bias and build-id were noted while it was
 * mapped.  So every refresh walks dl_iterate_phdr and merges what it sees
 * into a list that only grows: an object that went away is marked unloaded,
 * never forgotten, and one that comes back (same path, bias and extent) is
 * revived rather than duplicated, so a dlopen/dlclose loop stays bounded.
 *
 * Readers (ml_modules_find, from any thread, perhaps on the allocation
 * path) take no lock: they search an immutable snapshot published with a
 * release store.  The snapshot holds the loaded modules sorted by their
 * executable extent (they never overlap, so a binary search works) and the
 * unloaded ones, searched linearly and only when no loaded module matched.
 * A replaced snapshot is never freed, because a reader may still hold it;
 * snapshots are only made when the set of objects really changed.
 *
 * Writers need no lock of mallard's: every change happens inside a
 * dl_iterate_phdr callback, and glibc holds its loader lock
 * (dl_load_write_lock) around the whole iteration, so passes from
 * different threads are serialised by glibc itself.  The sweep that marks
 * vanished objects runs in the first callback of a second, one-step
 * iteration, under the same lock; generation numbers keep it from undoing
 * a pass that ran in between.  With no lock of its own, modules.c cannot
 * deadlock against the loader, nor be left locked in a fork child.
 *
 * All memory is the meta heap's: this runs inside the allocator.
 */
#define _GNU_SOURCE
#include "report.h"

#include "../core/meta.h"
#include "../core/os.h"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

struct mod {
    struct ml_module m; /* what callers see; never moves, never freed */
    unsigned gen;       /* the last pass that saw it */
};

struct snapshot {
    size_t nloaded, nunloaded;
    const struct mod **loaded; /* sorted by m.lo */
    const struct mod **unloaded;
};

static struct {
    struct mod **all; /* every module ever seen */
    size_t n, cap;
    unsigned gen;                  /* last pass number handed out */
    unsigned long long adds, subs; /* dlpi_adds/dlpi_subs at the last full pass */
    int scanned;                   /* a full pass has completed */
    const char *exe;               /* /proc/self/exe target, read once */
    struct snapshot *snap;         /* published with release, read with acquire */
} mods;

/* Set while this thread is inside ml_modules_refresh. */
static ML_TLS int mods_busy;

struct pass {
    unsigned gen;
    int first; /* the next callback is the first of the pass */
    int stop;  /* nothing changed since the last pass */
    int changed;
    int failed; /* out of meta memory: let the next refresh try again */
};

static char *mods_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ml_meta_alloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static const char *mods_exe_path(void)
{
    if (mods.exe)
        return mods.exe;
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return "";
    buf[n] = '\0';
    mods.exe = mods_strdup(buf);
    return mods.exe ? mods.exe : "";
}

const char *ml_modules_exe(void) { return mods_exe_path(); }

static size_t align_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

/* Reads NT_GNU_BUILD_ID from the mapped PT_NOTE segments: notes live in a
 * read-only PT_LOAD, so they are readable for as long as the object is. */
static void mods_build_id(const struct dl_phdr_info *info, struct ml_module *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        size_t align = ph->p_align == 8 ? 8 : 4;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name_off = sizeof *nh;
            size_t desc_off = name_off + align_up(nh->n_namesz, align);
            size_t next = desc_off + align_up(nh->n_descsz, align);
            if (next > (size_t)(end - p))
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(p + name_off, "GNU", 4) &&
                nh->n_descsz > 0 && nh->n_descsz <= sizeof m->build_id) {
                memcpy(m->build_id, p + desc_off, nh->n_descsz);
                m->build_id_len = nh->n_descsz;
                return;
            }
            p += next;
        }
    }
}

static void mods_extent(const struct dl_phdr_info *info, struct ml_module *m)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    m->lo = hi ? lo : 0;
    m->hi = hi;
}

static int mods_same(const struct ml_module *a, const struct ml_module *b)
{
    return a->base == b->base && a->lo == b->lo && a->hi == b->hi && !strcmp(a->path, b->path) &&
           a->build_id_len == b->build_id_len && !memcmp(a->build_id, b->build_id, a->build_id_len);
}

/* Runs under the loader lock, as everything that changes mods. */
static int mods_append(struct mod *e)
{
    if (mods.n == mods.cap) {
        size_t cap = mods.cap ? mods.cap * 2 : 32;
        struct mod **all = ml_meta_realloc(mods.all, cap * sizeof *all);
        if (!all)
            return -1;
        mods.all = all;
        mods.cap = cap;
    }
    mods.all[mods.n++] = e;
    return 0;
}

static int mods_callback(struct dl_phdr_info *info, size_t size, void *data)
{
    struct pass *ps = data;
    int first = ps->first;
    ps->first = 0;
    if (first) {
        int counted = size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs;
        if (counted && mods.scanned && info->dlpi_adds == mods.adds && info->dlpi_subs == mods.subs) {
            ps->stop = 1;
            return 1;
        }
        ps->gen = ++mods.gen;
        if (counted) {
            mods.adds = info->dlpi_adds;
            mods.subs = info->dlpi_subs;
        }
    }

    /* Build the candidate on the stack; the path is only copied if new. */
    struct ml_module cand;
    memset(&cand, 0, sizeof cand);
    cand.base = info->dlpi_addr;
    if (info->dlpi_name && info->dlpi_name[0])
        cand.path = info->dlpi_name;
    else if (first)
        cand.path = NULL; /* the main program, resolved under the lock */
    else
        return 0; /* an anonymous object we could never open again */
    mods_extent(info, &cand);
    mods_build_id(info, &cand);

    if (!cand.path)
        cand.path = mods_exe_path();
    struct mod *hit = NULL;
    for (size_t i = 0; i < mods.n && !hit; i++)
        if (mods_same(&mods.all[i]->m, &cand))
            hit = mods.all[i];
    if (hit) {
        if (__atomic_load_n(&hit->m.unloaded, __ATOMIC_RELAXED)) {
            __atomic_store_n(&hit->m.unloaded, 0, __ATOMIC_RELAXED);
            ps->changed = 1;
        }
        hit->gen = ps->gen;
    } else {
        struct mod *e = ml_meta_alloc(sizeof *e);
        char *path = mods_strdup(cand.path);
        if (e && path) {
            e->m = cand;
            e->m.path = path;
            e->gen = ps->gen;
        }
        if (e && path && mods_append(e) == 0) {
            ps->changed = 1;
        } else {
            ps->failed = 1;
            ml_meta_free(e);
            ml_meta_free(path);
        }
    }
    return 0;
}

static int mods_cmp_lo(const struct mod *a, const struct mod *b) { return a->m.lo < b->m.lo; }

/* Under the loader lock: builds and publishes a new snapshot. */
static void mods_publish(void)
{
    size_t nl = 0, nu = 0;
    for (size_t i = 0; i < mods.n; i++) {
        if (mods.all[i]->m.hi == 0)
            continue; /* nothing executable: no frame can land there */
        if (__atomic_load_n(&mods.all[i]->m.unloaded, __ATOMIC_RELAXED))
            nu++;
        else
            nl++;
    }
    struct snapshot *s = ml_meta_alloc(sizeof *s + (nl + nu) * sizeof(struct mod *));
    if (!s)
        return; /* keep the old one: stale beats none */
    s->loaded = (const struct mod **)(s + 1);
    s->unloaded = s->loaded + nl;
    for (size_t i = 0; i < mods.n; i++) {
        const struct mod *e = mods.all[i];
        if (e->m.hi == 0)
            continue;
        if (__atomic_load_n(&e->m.unloaded, __ATOMIC_RELAXED)) {
            s->unloaded[s->nunloaded++] = e;
            continue;
        }
        /* insertion sort: there are tens of objects, and this runs rarely */
        size_t j = s->nloaded++;
        while (j > 0 && mods_cmp_lo(e, s->loaded[j - 1])) {
            s->loaded[j] = s->loaded[j - 1];
            j--;
        }
        s->loaded[j] = e;
    }
    __atomic_store_n(&mods.snap, s, __ATOMIC_RELEASE);
}

/* The first callback of the second iteration: objects the pass did not
 * see are gone.  Returns 1 so the iteration stops there. */
static int mods_sweep(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    struct pass *ps = data;
    /* "<" rather than "!=": a pass that ran between our two iterations
     * has already stamped what it saw with a newer generation. */
    for (size_t i = 0; i < mods.n; i++) {
        struct mod *e = mods.all[i];
        if (e->gen < ps->gen && !__atomic_load_n(&e->m.unloaded, __ATOMIC_RELAXED)) {
            __atomic_store_n(&e->m.unloaded, 1, __ATOMIC_RELAXED);
            ps->changed = 1;
        }
    }
    mods.scanned = !ps->failed;
    if (ps->changed || !mods.snap)
        mods_publish();
    return 1;
}

void ml_modules_refresh(void)
{
    /* A refresh nested in this thread's own pass (a fatal signal arriving
     * in the callback) would find glibc's recursive lock open to it and
     * modify the list under the interrupted pass's feet. */
    if (mods_busy)
        return;
    mods_busy = 1;
    struct pass ps = {.first = 1};
    dl_iterate_phdr(mods_callback, &ps);
    if (!ps.stop && ps.gen)
        dl_iterate_phdr(mods_sweep, &ps);
    mods_busy = 0;
}

const struct ml_module *ml_modules_find(uintptr_t addr)
{
    const struct snapshot *s = __atomic_load_n(&mods.snap, __ATOMIC_ACQUIRE);
    if (!s)
        return NULL;
    size_t lo = 0, hi = s->nloaded;
    while (lo < hi) { /* first module whose lo is above addr */
        size_t mid = lo + (hi - lo) / 2;
        if (s->loaded[mid]->m.lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && addr < s->loaded[lo - 1]->m.hi)
        return &s->loaded[lo - 1]->m;
    /* Most recently seen first: of two unloaded objects at one address, the
     * later one is likelier to be what a recent stack saw. */
    for (size_t i = s->nunloaded; i-- > 0;) {
        const struct ml_module *m = &s->unloaded[i]->m;
        if (addr >= m->lo && addr < m->hi)
            return m;
    }
    return NULL;
}
