/* report/symfns.c: the function symbols of one module that contain a pc.
 * See symfns.h for the question and its answer's order.
 *
 * Reading the table in place gives exactly what dwfl_module_getsym_info
 * gives (elfutils 0.188, __libdwfl_getsym) for a module that is not
 * ET_REL, on a machine whose function addresses need no masking or
 * descriptor lookup (x86-64, AArch64): the name is the string table's data
 * at st_name (none past its end), and the address is st_value, plus the
 * symbol file's bias unless the symbol is SHN_UNDEF, SHN_ABS or SHN_COMMON
 * or lies in a section without SHF_ALLOC.  A symbol with an extended
 * section index, or in a section past the bitmap kept here, is read through
 * libdw.  That the table is libdw's own is checked once per module: the
 * same count, and three entries (first, middle, last) that libdw and the
 * array agree on, name pointer, fields, file and address included.
 */
#define _GNU_SOURCE
#include "symfns.h"

#include <limits.h>
#include <string.h>

#include "../core/meta.h"
#include "dw.h"

static struct ml_symfns_counts counts;

void ml_symfns_counts(struct ml_symfns_counts *out) { *out = counts; }

void ml_symfns_init(struct ml_symfns *f, Dwfl_Module *dm, uintptr_t base)
{
    memset(f, 0, sizeof *f);
    f->dm = dm;
    f->base = base;
}

static const char *symfns_dw(struct ml_symfns *f, int i, GElf_Sym *s, GElf_Addr *a, Elf **elf,
                             Dwarf_Addr *bias)
{
    counts.dw_reads++;
    return dwfl_module_getsym_info(f->dm, i, s, a, NULL, elf, bias);
}

/* Entry i of the table in place: 1 when its type and size make it a
 * function (its address in *a, its length in *len; its name is not
 * checked), 0 when not, -1 when only libdw can say (see the header). */
static inline int symfns_raw(const struct ml_symfns *f, size_t i, GElf_Addr *a, GElf_Word *len)
{
    const Elf64_Sym *s = &f->syms[i];
    unsigned type = ELF64_ST_TYPE(s->st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || !s->st_size || s->st_size > UINT32_MAX)
        return 0;
    unsigned sh = s->st_shndx;
    int biased;
    if (sh < 512) {
        biased = f->biased[sh];
    } else if (sh == SHN_XINDEX || (sh < SHN_LORESERVE && sh < f->shnum)) {
        return -1;
    } else {
        /* no such section (libdw then takes it for SHF_ALLOC), or a
         * reserved index: biased but for SHN_ABS and SHN_COMMON */
        biased = sh != SHN_ABS && sh != SHN_COMMON;
    }
    *a = s->st_value + (f->bias & -(uint64_t)biased);
    *len = (GElf_Word)s->st_size;
    return 1;
}

static inline int symfns_named(const struct ml_symfns *f, size_t i)
{
    uint32_t at = f->syms[i].st_name;
    return at < f->strsz && f->str[at];
}

/* Whether entry i is a function symbol (see the header), with its start
 * and length. */
static int symfns_entry(struct ml_symfns *f, size_t i, GElf_Addr *a, GElf_Word *len)
{
    if (f->syms) {
        int r = symfns_raw(f, i, a, len);
        if (r >= 0)
            return r && symfns_named(f, i);
    }
    GElf_Sym es;
    const char *nm = symfns_dw(f, (int)i, &es, a, NULL, NULL);
    *len = (GElf_Word)es.st_size;
    return nm && nm[0] && es.st_size && es.st_size <= UINT32_MAX &&
           (GELF_ST_TYPE(es.st_info) == STT_FUNC || GELF_ST_TYPE(es.st_info) == STT_GNU_IFUNC);
}

/* Entry i as libdw reads it agrees with the array in place. */
static int symfns_probe(struct ml_symfns *f, size_t i, Elf *elf)
{
    GElf_Sym es;
    GElf_Addr a;
    Elf *e = NULL;
    Dwarf_Addr bias = 0;
    const char *nm = symfns_dw(f, (int)i, &es, &a, &e, &bias);
    const Elf64_Sym *s = &f->syms[i];
    const char *mine = s->st_name < f->strsz ? f->str + s->st_name : NULL;
    if (!nm || nm != mine || e != elf || bias != f->bias || es.st_name != s->st_name ||
        es.st_info != s->st_info || es.st_shndx != s->st_shndx || es.st_value != s->st_value ||
        es.st_size != s->st_size)
        return 0;
    /* the address rule, whatever the type: symfns_raw's for a function */
    Elf64_Sym t = *s;
    t.st_info = ELF64_ST_INFO(ELF64_ST_BIND(s->st_info), STT_FUNC);
    t.st_size = 1;
    struct ml_symfns g = *f;
    g.syms = &t;
    GElf_Addr mine_a;
    GElf_Word len;
    int r = symfns_raw(&g, 0, &mine_a, &len);
    return r < 0 || mine_a == a;
}

/* Finds libdw's table in the file that holds it and keeps it in f when it
 * can be read in place (the header's conditions). */
static void symfns_open(struct ml_symfns *f)
{
    f->opened = 1;
    int n = dwfl_module_getsymtab(f->dm);
    if (n <= 1)
        return;
    GElf_Addr main_bias;
    Elf *main_elf = dwfl_module_getelf(f->dm, &main_bias);
    const Elf64_Ehdr *meh = main_elf ? elf64_getehdr(main_elf) : NULL;
    if (!meh || meh->e_type == ET_REL || (meh->e_machine != EM_X86_64 && meh->e_machine != EM_AARCH64))
        return;
    GElf_Sym es;
    GElf_Addr a;
    Elf *elf = NULL;
    Dwarf_Addr bias = 0;
    if (!symfns_dw(f, 1, &es, &a, &elf, &bias) || !elf || !elf64_getehdr(elf))
        return;
    /* the table libdw's load_symtab takes: the .symtab, else the .dynsym */
    Elf_Scn *scn = NULL, *tab = NULL;
    int have_symtab = 0;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        const Elf64_Shdr *sh = elf64_getshdr(scn);
        if (!sh || !sh->sh_entsize)
            continue;
        if (sh->sh_type == SHT_SYMTAB) {
            tab = scn;
            have_symtab = 1;
        } else if (sh->sh_type == SHT_DYNSYM && !have_symtab) {
            tab = scn;
        }
    }
    const Elf64_Shdr *sh = tab ? elf64_getshdr(tab) : NULL;
    if (!sh || sh->sh_entsize != sizeof(Elf64_Sym) || sh->sh_size / sh->sh_entsize != (size_t)n ||
        (sh->sh_flags & SHF_COMPRESSED))
        return;
    Elf_Data *d = elf_getdata(tab, NULL);
    Elf_Data *sd = elf_getdata(elf_getscn(elf, sh->sh_link), NULL);
    size_t shnum;
    if (!d || d->d_type != ELF_T_SYM || !d->d_buf || d->d_size < (size_t)n * sizeof(Elf64_Sym) || !sd ||
        !sd->d_buf || elf_getshdrnum(elf, &shnum) != 0)
        return;
    /* libdw asks the section of an index below SHN_LORESERVE other than
     * SHN_UNDEF, and takes one it cannot find for SHF_ALLOC */
    for (size_t k = 1; k < 512; k++) {
        const Elf64_Shdr *s = k < shnum ? elf64_getshdr(elf_getscn(elf, k)) : NULL;
        f->biased[k] = !s || (s->sh_flags & SHF_ALLOC);
    }
    f->syms = d->d_buf;
    f->nsyms = (size_t)n;
    f->str = sd->d_buf;
    f->strsz = sd->d_size;
    f->bias = bias;
    f->shnum = shnum;
    if (!symfns_probe(f, 1, elf) || !symfns_probe(f, (size_t)n / 2, elf) ||
        !symfns_probe(f, (size_t)n - 1, elf))
        f->syms = NULL;
}

/* (lo, index) of a before that of b. */
static int symfn_before(const struct ml_symfn *a, const struct ml_symfn *b)
{
    return a->lo < b->lo || (a->lo == b->lo && a->index < b->index);
}

/* One pass over the table in place for pc (offset off): the entries
 * containing it, then those that the index's window of ML_SYMFNS_MAX
 * would reach.  The window is judged from a histogram of the distances
 * below off (an upper bound on each entry's rank), with an exact second
 * pass only when that bound reaches the window.  UINT_MAX: more entries
 * contain off than the window holds (the index answers). */
static unsigned symfns_scan(struct ml_symfns *f, uint32_t off, uint32_t out[ML_SYMFNS_MAX])
{
    struct ml_symfn c[ML_SYMFNS_MAX];
    unsigned nc = 0;
    uint32_t hist[33] = {0};
    for (size_t i = 1; i < f->nsyms; i++) {
        GElf_Addr a;
        GElf_Word len;
        int r = symfns_raw(f, i, &a, &len);
        if (r < 0)
            r = symfns_entry(f, i, &a, &len);
        if (!r || a - f->base > off) /* below the base, it wraps above off */
            continue;
        uint32_t lo = (uint32_t)(a - f->base), d = off - lo;
        hist[d ? 32 - __builtin_clz(d) : 0]++; /* unnamed ones too: still a bound */
        if (d >= len || !symfns_named(f, i))
            continue;
        if (nc == ML_SYMFNS_MAX)
            return UINT_MAX;
        c[nc++] = (struct ml_symfn){lo, len, (uint32_t)i};
    }
    /* latest start first, a later index first among equal starts */
    for (unsigned i = 1; i < nc; i++) {
        struct ml_symfn v = c[i];
        unsigned j = i;
        for (; j > 0 && symfn_before(&c[j - 1], &v); j--)
            c[j] = c[j - 1];
        c[j] = v;
    }
    if (!nc)
        return 0;
    uint32_t d = off - c[nc - 1].lo, bound = 0;
    for (unsigned b = 0; b <= (d ? 32u - (unsigned)__builtin_clz(d) : 0u); b++)
        bound += hist[b];
    unsigned rank[ML_SYMFNS_MAX] = {0};
    if (bound > ML_SYMFNS_MAX) { /* bound counts the entry itself */
        for (size_t i = 1; i < f->nsyms; i++) {
            GElf_Addr a;
            GElf_Word len;
            if (!symfns_entry(f, i, &a, &len) || a < f->base || a - f->base > UINT32_MAX ||
                (uint32_t)(a - f->base) > off)
                continue;
            struct ml_symfn t = {(uint32_t)(a - f->base), len, (uint32_t)i};
            for (unsigned k = 0; k < nc; k++)
                rank[k] += symfn_before(&c[k], &t);
        }
    }
    unsigned k = 0;
    for (unsigned i = 0; i < nc; i++)
        if (rank[i] < ML_SYMFNS_MAX)
            out[k++] = c[i].index;
    return k;
}

/* The index: one pass over the table for the functions, then sorted by
 * start with an LSD radix sort (a pass per byte of the offsets; stable, so
 * equal starts keep table order).  A function more than 4 GiB above the
 * load bias is left out. */
static void symfns_build(struct ml_symfns *f)
{
    f->index_built = 1;
    counts.indexes++;
    int n = dwfl_module_getsymtab(f->dm);
    if (n <= 1)
        return;
    size_t cap = (size_t)n;
    if (f->syms) { /* counted first: the array is sized to the functions, not to every symbol */
        cap = 0;
        for (size_t i = 1; i < f->nsyms; i++) {
            GElf_Addr a;
            GElf_Word len;
            int r = symfns_raw(f, i, &a, &len);
            cap += r != 0;
        }
    }
    struct ml_symfn *v = cap ? ml_meta_alloc(cap * sizeof *v) : NULL;
    if (!v)
        return;
    uintptr_t top = 0;
    size_t got = 0;
    for (size_t i = 1; i < (size_t)n && got < cap; i++) {
        GElf_Addr a;
        GElf_Word len;
        if (!symfns_entry(f, i, &a, &len) || a < f->base || a - f->base > UINT32_MAX)
            continue;
        v[got++] = (struct ml_symfn){(uint32_t)(a - f->base), len, (uint32_t)i};
        top = a > top ? a : top;
    }
    struct ml_symfn *tmp = got ? ml_meta_alloc(got * sizeof *tmp) : NULL;
    if (!tmp) {
        ml_meta_free(v);
        return;
    }
    for (unsigned shift = 0; shift < 32 && (top - f->base) >> shift; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < got; i++)
            count[(v[i].lo >> shift & 255) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < got; i++)
            tmp[count[v[i].lo >> shift & 255]++] = v[i];
        struct ml_symfn *t = v;
        v = tmp;
        tmp = t;
    }
    ml_meta_free(tmp);
    f->fns = v;
    f->nfns = got;
}

/* Past the last function starting at or below off, then back over the
 * window for those that contain it (aliases share a range). */
static unsigned symfns_search(const struct ml_symfns *f, uint32_t off, uint32_t out[ML_SYMFNS_MAX])
{
    size_t lo = 0, hi = f->nfns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->fns[mid].lo <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    unsigned k = 0;
    for (size_t j = lo; j-- > 0 && lo - j <= ML_SYMFNS_MAX;)
        if (off - f->fns[j].lo < f->fns[j].len)
            out[k++] = f->fns[j].index;
    return k;
}

unsigned ml_symfns_at(struct ml_symfns *f, uintptr_t pc, uint32_t out[ML_SYMFNS_MAX])
{
    if (!f->dm)
        return 0;
    if (!f->opened)
        symfns_open(f);
    if (pc < f->base || pc - f->base > UINT32_MAX)
        return 0;
    uint32_t off = (uint32_t)(pc - f->base);
    if (!f->index_built && f->syms && f->scans < ML_SYMFNS_SCANS) {
        unsigned k = symfns_scan(f, off, out);
        if (k != UINT_MAX) {
            f->scans++;
            counts.scans++;
            return k;
        }
    }
    if (!f->index_built)
        symfns_build(f);
    return f->nfns ? symfns_search(f, off, out) : 0;
}

const char *ml_symfns_name(struct ml_symfns *f, uint32_t index)
{
    if (f->syms && index < f->nsyms)
        return f->syms[index].st_name < f->strsz ? f->str + f->syms[index].st_name : NULL;
    GElf_Sym es;
    GElf_Addr a;
    return f->dm ? symfns_dw(f, (int)index, &es, &a, NULL, NULL) : NULL;
}
