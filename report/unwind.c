/* report/unwind.c: a caching x86_64 unwinder for the allocation hot path.
 *
 * Almost every frame of compiled x86_64 code unwinds by the same recipe:
 * CFA = rsp + k or rbp + k, the return address at CFA + r (r = -8), rbp
 * either untouched or saved at CFA + b.  ml_unwind computes that recipe
 * per return address once, from the object's .eh_frame (found through
 * _dl_find_object, which takes no lock), and keeps it in an insert-only,
 * lock-free table; a stack whose frames are all in the table is walked
 * with a few loads per frame and no lock, syscall or TLS access.
 *
 * Anything else answers "not simple" and the caller unwinds the whole
 * stack with libunwind instead: a frame without an FDE (libunwind guesses
 * from rbp there), a signal frame (CIE augmentation 'S'), a CFA or rbp/RA
 * rule that is an expression or another register, a return address of 0,
 * a 64-bit .eh_frame or a table encoding other than the usual.  So the
 * frames recorded are exactly libunwind's: the same tables, the same
 * stopping rule (an undefined return address, which _start and clone
 * have), the same lookup at return address - 1, and the same raw return
 * addresses stored (tests/unit/unwind_match.c compares the two).
 *
 * Validity: an entry for a pc in an object loaded before tracing started
 * stays right for the process's life (those objects are never unloaded).
 * A pc in an object loaded later could, after a dlclose, belong to another
 * object: such entries also store the object's .eh_frame_hdr address, and
 * each use of one asks _dl_find_object again and compares.
 *
 * ml_unwind_skip, the one the trace layer calls, also steps over
 * mallard's own leading frames without recording them (most of them by
 * the frame pointer, once their recipe has said that is what it does), and
 * keeps a memo of the caller's last walks: a walk that would read exactly
 * the words a recorded one read is that walk, and costs one comparison
 * per word (see "the memo" below; tests/unwind checks both against
 * libunwind).
 *
 * Re-entry: no lock, no allocation, no TLS (the memo is the caller's, per
 * thread); the table is filled with a compare-and-swap, so a signal
 * handler or another thread may run here at any moment, and fork needs no
 * gate around it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "../core/compiler.h"
#include "../core/os.h"
#include "report.h"

#define CACHE_PROBES 8

/* A recipe, packed into 64 bits; 0 = no entry yet. */
#define R_VALID 1ull
#define R_STOP 2ull    /* RA undefined: the outermost frame */
#define R_OTHER 4ull   /* not simple: libunwind's business */
#define R_CFA_RBP 8ull /* CFA = rbp + off, else rsp + off */
#define R_RBP_SAVED 16ull
#define R_LATE 32ull /* object loaded after start-up: validate each use */

struct recipe {
    unsigned stop, other, cfa_rbp, rbp_saved;
    int32_t cfa_off, ra_off, rbp_off;
};

/* ---- the recipe table ----------------------------------------------------
 *
 * An open-addressing table of (return address - 1, recipe), probed
 * linearly CACHE_PROBES slots from the home slot (slot_of).  It starts at
 * 256 slots, one page, and when half full moves to one four times larger,
 * up to 64k slots (1 MiB): a short program's few dozen return addresses
 * fill one page where the 1 MiB table it had took one page per 4 KiB of
 * code they lie in, two page faults each (a read maps the zero page, the
 * first insert copies it): traced tr 80 return addresses, about 60 faults.
 * The generations lie side by side in .bss, each page-aligned; the one in
 * use is cache_gen.  A move copies every filled entry of the old one into
 * the next (which nobody reads yet), publishes it, then gives the old
 * one's pages back to the kernel.  A reader still in the old one finds
 * zeros there (no entry: it asks recipe_slow, which reads the new one), and
 * an insert that lands there is lost (computed again when next needed):
 * the table is a cache.  One thread moves a generation (it claims it with
 * a compare-and-swap; the others go on with the old one meanwhile), and
 * nothing waits, so a signal handler can insert at any moment. */
struct slot {
    uintptr_t key;
    uint64_t val;
};
#define GENS 5
#define GEN0_SLOTS 256u
#define GEN_SLOTS(g) (GEN0_SLOTS << (2 * (g)))
#define CACHE_TOTAL (GEN_SLOTS(0) + GEN_SLOTS(1) + GEN_SLOTS(2) + GEN_SLOTS(3) + GEN_SLOTS(4))
#define GEN_OFF(g) ((GEN_SLOTS(g) - GEN0_SLOTS) / 3) /* 256 (4^g - 1) / 3 */
/* generations up to this one are written to before they are published, a
 * word per page (one write fault where a read then a write took two); the
 * larger ones are touched page by page as used */
#define GEN_PRETOUCH 2

static struct slot cache[CACHE_TOTAL] __attribute__((aligned(4096)));
static uintptr_t cache_hdr[CACHE_TOTAL] __attribute__((aligned(4096))); /* R_LATE entries: the
                                                                          object's .eh_frame_hdr */
struct gen {
    struct slot *slot;
    uintptr_t *hdr;
    size_t mask;   /* slots - 1 */
    unsigned fold; /* 4 + log2(slots): see slot_of */
};
static const struct gen gens[GENS] = {
    {cache + GEN_OFF(0), cache_hdr + GEN_OFF(0), GEN_SLOTS(0) - 1, 12},
    {cache + GEN_OFF(1), cache_hdr + GEN_OFF(1), GEN_SLOTS(1) - 1, 14},
    {cache + GEN_OFF(2), cache_hdr + GEN_OFF(2), GEN_SLOTS(2) - 1, 16},
    {cache + GEN_OFF(3), cache_hdr + GEN_OFF(3), GEN_SLOTS(3) - 1, 18},
    {cache + GEN_OFF(4), cache_hdr + GEN_OFF(4), GEN_SLOTS(4) - 1, 20},
};
static const struct gen *cache_gen = &gens[0];
static unsigned gen_used[GENS]; /* entries inserted into each, about */
static int gen_moving[GENS];    /* claimed: its move to the next has begun */

_Static_assert(GEN_OFF(GENS - 1) + GEN_SLOTS(GENS - 1) == CACHE_TOTAL, "generations side by side");
_Static_assert(GEN0_SLOTS * sizeof(struct slot) % 4096 == 0, "generations page-aligned");

static inline const struct gen *gen_now(void) { return __atomic_load_n(&cache_gen, __ATOMIC_ACQUIRE); }

static int (*find_object)(void *, struct dl_find_object *);

/* Objects present at start-up: [lo, hi) text ranges. */
#define EARLY_MAX 256
static struct {
    uintptr_t lo, hi;
} early[EARLY_MAX];
static unsigned nearly;

static int note_early(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    for (int i = 0; i < info->dlpi_phnum && nearly < EARLY_MAX; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            early[nearly].lo = info->dlpi_addr + ph->p_vaddr;
            early[nearly].hi = early[nearly].lo + ph->p_memsz;
            nearly++;
        }
    }
    return 0;
}

static int is_early(uintptr_t pc)
{
    for (unsigned i = 0; i < nearly; i++)
        if (pc >= early[i].lo && pc < early[i].hi)
            return 1;
    return 0;
}

int ml_unwind_init(void)
{
    find_object = (int (*)(void *, struct dl_find_object *))dlsym(RTLD_DEFAULT, "_dl_find_object");
    __atomic_store_n(&gens[0].slot[0].key, 0, __ATOMIC_RELAXED); /* its page: one fault, not two */
    dl_iterate_phdr(note_early, NULL);
    return find_object ? 0 : -1;
}

/* ---- reading .eh_frame ------------------------------------------------ */

static uint64_t uleb(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (*p < end) {
        uint8_t b = *(*p)++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    return v;
}

static int64_t sleb(const uint8_t **p, const uint8_t *end)
{
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0;
    while (*p < end) {
        b = *(*p)++;
        if (shift < 64)
            v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    if (shift < 64 && (b & 0x40))
        v |= -(int64_t)((uint64_t)1 << shift);
    return v;
}

/* A DW_EH_PE-encoded pointer at *p; -1 for an encoding not handled. */
static int read_enc(uint8_t enc, const uint8_t **p, const uint8_t *end, uintptr_t datarel, uintptr_t *out)
{
    if (enc == 0xff)
        return -1;
    const uint8_t *at = *p;
    uintptr_t v;
    switch (enc & 0x0f) {
    case 0x00:
        memcpy(&v, at, 8);
        *p += 8;
        break;
    case 0x01:
        v = (uintptr_t)uleb(p, end);
        break;
    case 0x02: {
        uint16_t x;
        memcpy(&x, at, 2);
        v = x;
        *p += 2;
        break;
    }
    case 0x03: {
        uint32_t x;
        memcpy(&x, at, 4);
        v = x;
        *p += 4;
        break;
    }
    case 0x04:
        memcpy(&v, at, 8);
        *p += 8;
        break;
    case 0x09:
        v = (uintptr_t)sleb(p, end);
        break;
    case 0x0a: {
        int16_t x;
        memcpy(&x, at, 2);
        v = (uintptr_t)(intptr_t)x;
        *p += 2;
        break;
    }
    case 0x0b: {
        int32_t x;
        memcpy(&x, at, 4);
        v = (uintptr_t)(intptr_t)x;
        *p += 4;
        break;
    }
    case 0x0c:
        memcpy(&v, at, 8);
        *p += 8;
        break;
    default:
        return -1;
    }
    switch (enc & 0x70) {
    case 0x00:
        break;
    case 0x10:
        v += (uintptr_t)at;
        break;
    case 0x30:
        v += datarel;
        break;
    default:
        return -1;
    }
    if (enc & 0x80)
        return -1;
    *out = v;
    return 0;
}

/* The rules this unwinder tracks: CFA, rbp (6) and the RA column, and for
 * ml_unwind_exit_frame the other callee-saved registers (rbx, r12..r15). */
#define CS_N 5
struct cfa_state {
    int cfa_reg; /* 6 or 7; anything else: other */
    int64_t cfa_off;
    int rbp_how, ra_how; /* 0 same/unspecified, 1 offset(n), 2 undefined, 3 not simple */
    int64_t rbp_off, ra_off;
    int cs_how[CS_N]; /* rbx, r12, r13, r14, r15: as rbp_how */
    int64_t cs_off[CS_N];
};

/* The index in cs_how of DWARF register reg; -1 for one not tracked there. */
static inline int cs_col(uint64_t reg) { return reg == 3 ? 0 : reg >= 12 && reg <= 15 ? (int)reg - 11 : -1; }

#define HOW_SAME 0
#define HOW_OFFSET 1
#define HOW_UNDEF 2
#define HOW_OTHER 3

/* Runs CFA instructions [p, end) for a pc at loc..; stops past target.
 * Returns 0, or -1 when something is not simple. */
static int run_cfa(const uint8_t *p, const uint8_t *end, uintptr_t *loc, uintptr_t target,
                   uint64_t code_align, int64_t data_align, uint64_t ra_reg, struct cfa_state *s,
                   const struct cfa_state *init, uint8_t fde_enc)
{
    struct cfa_state stack[8];
    int depth = 0;
    while (p < end) {
        uint8_t op = *p++;
        uint8_t hi = op & 0xc0, lo = op & 0x3f;
        uint64_t reg, adv;
        int64_t off;
        if (hi == 0x40) { /* advance_loc */
            adv = lo * code_align;
            goto advance;
        }
        if (hi == 0x80) { /* offset */
            reg = lo;
            off = (int64_t)uleb(&p, end) * data_align;
            goto set_offset;
        }
        if (hi == 0xc0) { /* restore */
            reg = lo;
            goto restore;
        }
        switch (op) {
        case 0x00: /* nop */
            continue;
        case 0x01: { /* set_loc */
            uintptr_t nl;
            if (read_enc(fde_enc, &p, end, 0, &nl) != 0)
                return -1;
            if (nl > target)
                return 0;
            *loc = nl;
            continue;
        }
        case 0x02:
            adv = *p++ * code_align;
            goto advance;
        case 0x03: {
            uint16_t x;
            memcpy(&x, p, 2);
            p += 2;
            adv = x * code_align;
            goto advance;
        }
        case 0x04: {
            uint32_t x;
            memcpy(&x, p, 4);
            p += 4;
            adv = x * code_align;
            goto advance;
        }
        case 0x05: /* offset_extended */
            reg = uleb(&p, end);
            off = (int64_t)uleb(&p, end) * data_align;
            goto set_offset;
        case 0x06: /* restore_extended */
            reg = uleb(&p, end);
            goto restore;
        case 0x07: /* undefined */
            reg = uleb(&p, end);
            if (reg == ra_reg)
                s->ra_how = HOW_UNDEF;
            else if (reg == 6)
                s->rbp_how = HOW_OTHER;
            else if (cs_col(reg) >= 0)
                s->cs_how[cs_col(reg)] = HOW_OTHER;
            continue;
        case 0x08: /* same_value */
            reg = uleb(&p, end);
            if (reg == ra_reg)
                s->ra_how = HOW_OTHER;
            else if (reg == 6)
                s->rbp_how = HOW_SAME;
            else if (cs_col(reg) >= 0)
                s->cs_how[cs_col(reg)] = HOW_SAME;
            continue;
        case 0x09: /* register */
            reg = uleb(&p, end);
            uleb(&p, end);
            if (reg == ra_reg)
                s->ra_how = HOW_OTHER;
            else if (reg == 6)
                s->rbp_how = HOW_OTHER;
            else if (cs_col(reg) >= 0)
                s->cs_how[cs_col(reg)] = HOW_OTHER;
            continue;
        case 0x0a: /* remember_state */
            if (depth == 8)
                return -1;
            stack[depth++] = *s;
            continue;
        case 0x0b: /* restore_state */
            if (depth == 0)
                return -1;
            *s = stack[--depth];
            continue;
        case 0x0c: /* def_cfa */
            s->cfa_reg = (int)uleb(&p, end);
            s->cfa_off = (int64_t)uleb(&p, end);
            continue;
        case 0x0d: /* def_cfa_register */
            s->cfa_reg = (int)uleb(&p, end);
            continue;
        case 0x0e: /* def_cfa_offset */
            s->cfa_off = (int64_t)uleb(&p, end);
            continue;
        case 0x0f: /* def_cfa_expression */
            return -1;
        case 0x10:   /* expression */
        case 0x16: { /* val_expression */
            reg = uleb(&p, end);
            uint64_t len = uleb(&p, end);
            if (reg == ra_reg || reg == 6 || len > (uint64_t)(end - p))
                return -1;
            if (cs_col(reg) >= 0)
                s->cs_how[cs_col(reg)] = HOW_OTHER;
            p += len;
            continue;
        }
        case 0x11: /* offset_extended_sf */
            reg = uleb(&p, end);
            off = sleb(&p, end) * data_align;
            goto set_offset;
        case 0x12: /* def_cfa_sf */
            s->cfa_reg = (int)uleb(&p, end);
            s->cfa_off = sleb(&p, end) * data_align;
            continue;
        case 0x13: /* def_cfa_offset_sf */
            s->cfa_off = sleb(&p, end) * data_align;
            continue;
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
            reg = uleb(&p, end);
            if (op == 0x14)
                uleb(&p, end);
            else
                sleb(&p, end);
            if (reg == ra_reg || reg == 6)
                return -1;
            if (cs_col(reg) >= 0)
                s->cs_how[cs_col(reg)] = HOW_OTHER;
            continue;
        case 0x2e: /* GNU_args_size */
            uleb(&p, end);
            continue;
        case 0x2f: /* GNU_negative_offset_extended */
            reg = uleb(&p, end);
            off = -(int64_t)uleb(&p, end) * data_align;
            goto set_offset;
        default:
            return -1;
        }
    advance:
        if (*loc + adv > target)
            return 0;
        *loc += adv;
        continue;
    set_offset:
        if (reg == ra_reg) {
            s->ra_how = HOW_OFFSET;
            s->ra_off = off;
        } else if (reg == 6) {
            s->rbp_how = HOW_OFFSET;
            s->rbp_off = off;
        } else if (cs_col(reg) >= 0) {
            s->cs_how[cs_col(reg)] = HOW_OFFSET;
            s->cs_off[cs_col(reg)] = off;
        }
        continue;
    restore:
        if (!init)
            return -1; /* restore inside the CIE's own instructions */
        if (reg == ra_reg) {
            s->ra_how = init->ra_how;
            s->ra_off = init->ra_off;
        } else if (reg == 6) {
            s->rbp_how = init->rbp_how;
            s->rbp_off = init->rbp_off;
        } else if (cs_col(reg) >= 0) {
            s->cs_how[cs_col(reg)] = init->cs_how[cs_col(reg)];
            s->cs_off[cs_col(reg)] = init->cs_off[cs_col(reg)];
        }
        continue;
    }
    return 0;
}

/* The rules at pc of the object whose .eh_frame_hdr is hdr, into *out, and
 * the start of the FDE's code into *fstart: 0, or R_VALID | R_OTHER when
 * something on the way is not simple. */
static uint64_t fde_state(uintptr_t pc, const uint8_t *hdr, struct cfa_state *out, uintptr_t *fstart)
{
    if (!hdr || hdr[0] != 1 || hdr[3] != 0x3b)
        return R_VALID | R_OTHER;
    const uint8_t *p = hdr + 4, *far = (const uint8_t *)UINTPTR_MAX;
    uintptr_t ehf, count;
    if (read_enc(hdr[1], &p, far, (uintptr_t)hdr, &ehf) != 0 ||
        read_enc(hdr[2], &p, far, (uintptr_t)hdr, &count) != 0 || count == 0)
        return R_VALID | R_OTHER;
    const int32_t *tab = (const int32_t *)p;
    uintptr_t base = (uintptr_t)hdr;
    /* the last entry whose initial location is <= pc */
    size_t lo = 0, hi = count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (base + (intptr_t)tab[2 * mid] <= pc)
            lo = mid;
        else
            hi = mid;
    }
    if (base + (intptr_t)tab[2 * lo] > pc)
        return R_VALID | R_OTHER;
    const uint8_t *fde = (const uint8_t *)(base + (intptr_t)tab[2 * lo + 1]);
    uint32_t flen, cie_off;
    memcpy(&flen, fde, 4);
    if (flen == 0 || flen == 0xffffffffu)
        return R_VALID | R_OTHER;
    const uint8_t *fend = fde + 4 + flen;
    memcpy(&cie_off, fde + 4, 4);
    const uint8_t *cie = fde + 4 - cie_off;
    uint32_t clen;
    memcpy(&clen, cie, 4);
    if (clen == 0 || clen == 0xffffffffu)
        return R_VALID | R_OTHER;
    const uint8_t *cend = cie + 4 + clen, *c = cie + 8;
    uint8_t version = *c++;
    const char *aug = (const char *)c;
    c += strlen(aug) + 1;
    if (aug[0] && aug[0] != 'z')
        return R_VALID | R_OTHER; /* "eh" and other ancient forms */
    uint64_t code_align = uleb(&c, cend);
    int64_t data_align = sleb(&c, cend);
    uint64_t ra_reg = version == 1 ? *c++ : uleb(&c, cend);
    uint8_t fde_enc = 0;
    if (aug[0] == 'z') {
        uint64_t alen = uleb(&c, cend);
        const uint8_t *aend = c + alen;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') {
                fde_enc = *c++;
            } else if (*a == 'L') {
                c++;
            } else if (*a == 'P') {
                uintptr_t ignored;
                uint8_t penc = *c++;
                if (read_enc(penc & 0x7f, &c, aend, 0, &ignored) != 0)
                    return R_VALID | R_OTHER;
            } else {
                return R_VALID | R_OTHER; /* 'S' (signal frame) and the rest */
            }
        }
        c = aend;
    }
    const uint8_t *f = fde + 8;
    uintptr_t start, range;
    if (read_enc(fde_enc, &f, fend, 0, &start) != 0 || read_enc(fde_enc & 0x0f, &f, fend, 0, &range) != 0)
        return R_VALID | R_OTHER;
    if (pc < start || pc - start >= range)
        return R_VALID | R_OTHER; /* no FDE covers pc */
    if (aug[0] == 'z') {
        uint64_t alen = uleb(&f, fend);
        f += alen;
    }
    struct cfa_state s = {.cfa_reg = 7, .cfa_off = 0, .rbp_how = HOW_SAME, .ra_how = HOW_SAME};
    uintptr_t loc = start;
    if (run_cfa(c, cend, &loc, pc, code_align, data_align, ra_reg, &s, NULL, fde_enc) != 0)
        return R_VALID | R_OTHER;
    struct cfa_state init = s;
    loc = start;
    if (run_cfa(f, fend, &loc, pc, code_align, data_align, ra_reg, &s, &init, fde_enc) != 0)
        return R_VALID | R_OTHER;
    *out = s;
    *fstart = start;
    return 0;
}

/* The recipe for code at pc, from the object whose .eh_frame_hdr is hdr. */
static uint64_t compute(uintptr_t pc, const uint8_t *hdr)
{
    struct cfa_state s;
    uintptr_t start;
    uint64_t bad = fde_state(pc, hdr, &s, &start);
    if (bad)
        return bad;
    if (s.ra_how == HOW_UNDEF)
        return R_VALID | R_STOP;
    if ((s.cfa_reg != 6 && s.cfa_reg != 7) || s.ra_how != HOW_OFFSET || s.rbp_how == HOW_OTHER ||
        s.rbp_how == HOW_UNDEF)
        return R_VALID | R_OTHER;
    if (s.cfa_off < 0 || s.cfa_off >= (1 << 23) || s.ra_off < -32768 || s.ra_off > 32767 ||
        s.rbp_off < -32768 || s.rbp_off > 32767)
        return R_VALID | R_OTHER;
    uint64_t v = R_VALID | (s.cfa_reg == 6 ? R_CFA_RBP : 0) | (s.rbp_how == HOW_OFFSET ? R_RBP_SAVED : 0);
    v |= (uint64_t)s.cfa_off << 8;
    v |= (uint64_t)(uint16_t)(int16_t)s.ra_off << 32;
    v |= (uint64_t)(uint16_t)(int16_t)(s.rbp_how == HOW_OFFSET ? s.rbp_off : 0) << 48;
    return v;
}

/* pc's home slot in generation t.  Nearby return addresses get nearby
 * slots (in the largest, a 4 KiB page of code maps into one aligned run of
 * 256 slots, one page of the table), so a large generation has the pages
 * its hot code needs resident, not all of its 1 MiB, and a walk meets few
 * pages of it.  A slot per 16 bytes of code rather than per 8 halves the
 * pages (traced ls: 471 -> 442 faults) for about as many instructions (two
 * return addresses in 16 bytes share a home slot, and the second is found
 * by the probe).  The bits above the generation's span of code (1 MiB in
 * the largest, 4 KiB in the smallest) are folded in by XOR, which moves a
 * run without breaking it up, and in the small generations gives return
 * addresses at one offset in different pages of code different home slots
 * (with the bits above 1 MiB folded in, 64 such in 64 pages shared one
 * home slot of the first). */
static inline size_t slot_of(uintptr_t pc, const struct gen *t)
{
    return (size_t)(((pc >> 4) ^ (pc >> t->fold)) & t->mask);
}

/* Moves generation g's entries into g + 1 and makes that the one in use:
 * see "the recipe table".  The caller inserted into g, which is half full
 * (or had no free slot on a probe path). */
__attribute__((noinline, cold)) static void gen_move(unsigned g)
{
    int free = 0;
    if (g + 1 >= GENS || __atomic_load_n(&gen_moving[g], __ATOMIC_RELAXED) ||
        !__atomic_compare_exchange_n(&gen_moving[g], &free, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED) ||
        gen_now() != &gens[g])
        return;
    const struct gen *o = &gens[g], *n = &gens[g + 1];
    if (g + 1 <= GEN_PRETOUCH)
        for (size_t i = 0; i <= n->mask; i += 4096 / sizeof(struct slot))
            __atomic_store_n(&n->slot[i].key, 0, __ATOMIC_RELAXED);
    unsigned moved = 0;
    for (size_t i = 0; i <= o->mask; i++) {
        uintptr_t key = __atomic_load_n(&o->slot[i].key, __ATOMIC_ACQUIRE);
        uint64_t v = key ? __atomic_load_n(&o->slot[i].val, __ATOMIC_ACQUIRE) : 0;
        if (!v)
            continue; /* empty, or being filled */
        size_t j = slot_of(key, n);
        for (unsigned k = 0; k < CACHE_PROBES; k++, j = (j + 1) & n->mask) {
            uintptr_t there = __atomic_load_n(&n->slot[j].key, __ATOMIC_RELAXED);
            if (there == key)
                break;
            if (there)
                continue;
            __atomic_store_n(&n->slot[j].key, key, __ATOMIC_RELAXED);
            if (v & R_LATE)
                __atomic_store_n(&n->hdr[j], __atomic_load_n(&o->hdr[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
            __atomic_store_n(&n->slot[j].val, v, __ATOMIC_RELAXED);
            moved++;
            break;
        }
    }
    __atomic_store_n(&gen_used[g + 1], moved, __ATOMIC_RELAXED);
    __atomic_store_n(&cache_gen, n, __ATOMIC_RELEASE);
    /* readers still in o read zeros from here on: no entry */
    ml_os_decommit(o->slot, (o->mask + 1) * sizeof(struct slot));
    ml_os_decommit(o->hdr, (o->mask + 1) * sizeof(uintptr_t));
}

size_t ml_unwind_cache_slots(void) { return gen_now()->mask + 1; }

void ml_unwind_fork_child(void)
{
    /* a move another thread had begun will not end: its half-filled
     * target is emptied, and the move can be made again */
    unsigned g = (unsigned)(gen_now() - gens);
    if (g + 1 < GENS && __atomic_load_n(&gen_moving[g], __ATOMIC_RELAXED)) {
        ml_os_decommit(gens[g + 1].slot, GEN_SLOTS(g + 1) * sizeof(struct slot));
        ml_os_decommit(gens[g + 1].hdr, GEN_SLOTS(g + 1) * sizeof(uintptr_t));
        __atomic_store_n(&gen_moving[g], 0, __ATOMIC_RELAXED);
    }
}

/* The recipe for pc (a return address - 1): the whole probe sequence, a
 * late entry's check, and on a miss the computation and the insert. */
__attribute__((noinline)) static uint64_t recipe_slow(uintptr_t pc)
{
    const struct gen *t = gen_now();
    size_t i = slot_of(pc, t);
    for (unsigned k = 0; k < CACHE_PROBES; k++, i = (i + 1) & t->mask) {
        uintptr_t key = __atomic_load_n(&t->slot[i].key, __ATOMIC_ACQUIRE);
        if (key == pc) {
            uint64_t v = __atomic_load_n(&t->slot[i].val, __ATOMIC_ACQUIRE);
            if (!v)
                break; /* being filled: compute it here */
            if (ML_UNLIKELY(v & R_LATE)) {
                struct dl_find_object fo;
                if (find_object((void *)pc, &fo) != 0 ||
                    (uintptr_t)fo.dlfo_eh_frame != __atomic_load_n(&t->hdr[i], __ATOMIC_ACQUIRE))
                    break; /* another object now: recompute, uncached */
            }
            if (__atomic_load_n(&t->slot[i].key, __ATOMIC_ACQUIRE) != pc)
                break; /* the slot went to another pc meanwhile (recipe_fast) */
            return v;
        }
        if (!key)
            break;
    }
    struct dl_find_object fo;
    if (find_object((void *)pc, &fo) != 0)
        return R_VALID | R_OTHER;
    uint64_t v = compute(pc, fo.dlfo_eh_frame);
    int late = !is_early(pc);
    if (late)
        v |= R_LATE;
    /* insert: claim an empty slot on pc's probe path */
    unsigned g = (unsigned)(t - gens);
    int full = 1;
    i = slot_of(pc, t);
    for (unsigned k = 0; k < CACHE_PROBES; k++, i = (i + 1) & t->mask) {
        uintptr_t key = __atomic_load_n(&t->slot[i].key, __ATOMIC_ACQUIRE);
        if (key == pc) {
            full = 0;
            break; /* another thread has it (or a stale late entry: leave it) */
        }
        if (key)
            continue;
        if (__atomic_compare_exchange_n(&t->slot[i].key, &key, pc, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            if (late)
                __atomic_store_n(&t->hdr[i], (uintptr_t)fo.dlfo_eh_frame, __ATOMIC_RELAXED);
            __atomic_store_n(&t->slot[i].val, v, __ATOMIC_RELEASE);
            full = __atomic_add_fetch(&gen_used[g], 1, __ATOMIC_RELAXED) * 2 > t->mask + 1;
            break;
        }
        if (key == pc) {
            full = 0;
            break;
        }
    }
    if (ML_UNLIKELY(full) && g + 1 < GENS)
        gen_move(g);
    return v;
}

/* The common case inline: pc's home slot in generation t holds its early
 * entry, not "other"; 0 sends the caller to recipe_slow. */
#define R_FAST_MASK (R_VALID | R_OTHER | R_LATE)
static inline uint64_t recipe_fast(const struct gen *t, uintptr_t pc)
{
    size_t i = slot_of(pc, t);
    if (ML_LIKELY(__atomic_load_n(&t->slot[i].key, __ATOMIC_ACQUIRE) == pc)) {
        uint64_t v = __atomic_load_n(&t->slot[i].val, __ATOMIC_ACQUIRE);
        /* still pc's: a generation given back reads as empty, and an insert
         * whose generation it still was may claim the slot for another pc
         * (see gen_move); a key goes pc -> 0 -> another, never back */
        if (ML_LIKELY((v & R_FAST_MASK) == R_VALID) &&
            ML_LIKELY(__atomic_load_n(&t->slot[i].key, __ATOMIC_ACQUIRE) == pc))
            return v;
    }
    return 0;
}

/* One frame by recipe v (neither a stop nor "other"): the caller's return
 * address; *rbp and *sp become the caller's, *ra_at is where the return
 * address was read, *rbp_at where rbp was (0: it was not). */
static inline __attribute__((always_inline)) uintptr_t step(uint64_t v, uintptr_t *rbp, uintptr_t *sp,
                                                            uintptr_t *ra_at, uintptr_t *rbp_at)
{
    uintptr_t cfa = ((v & R_CFA_RBP) ? *rbp : *sp) + ((v >> 8) & ((1u << 24) - 1));
    uintptr_t at = cfa + (int16_t)(uint16_t)(v >> 32);
    uintptr_t next = *(const uintptr_t *)at;
    *ra_at = at;
    *rbp_at = 0;
    if (v & R_RBP_SAVED) {
        *rbp_at = cfa + (int16_t)(uint16_t)(v >> 48);
        *rbp = *(const uintptr_t *)*rbp_at;
    }
    *sp = cfa;
    return next;
}

/* ---- the memo of a thread's recent walks -------------------------------
 *
 * A walk is a function of where it starts (return address, sp, rbp), of
 * the recipes of the return addresses it meets (fixed for objects present
 * at start-up) and of the words it reads from the stack.  So a walk that
 * starts where a recorded one started, and finds at each address the
 * recorded one read the same word, takes the same steps, ends the same way
 * and gives the same frames; its caller's stack id is then the recorded
 * one's.  A record keeps, per step, the address of the return address and
 * the word read there, and for an rbp read from the stack that a later
 * CFA was computed from, its address and value (an rbp no CFA depends on
 * changes no frame, and a program that keeps a variable in rbp changes it
 * all the time).  Addresses are kept as offsets from the start's sp (a
 * walk that reads below it, or 4 GiB above, is not recorded).  Walks
 * through an object loaded after start-up are not recorded (a dlclose
 * could change what a return address means).
 *
 * The record starts where the walk leaves mallard's own frames, which are
 * stepped every time (a few frame-pointer loads).  The program's return
 * address and sp there, and the return address the first step reads (so
 * that the callers of an allocating wrapper differ), pick one set of
 * ML_MEMO_WAYS ways: a program that allocates from a few dozen places
 * keeps the walk of each. */
struct recorder {
    struct ml_unwind_memo_way *w; /* NULL: not recording */
    uintptr_t base;               /* the start's sp: checks are offsets from it */
    uintptr_t rbp_at, rbp_val;    /* where the current rbp was read (0: it is the start's), and it */
    int rbp_done;                 /* its check is in */
    /* The anchors (see "the anchors" below): frames 1..ML_MEMO_ANCHOR_FRAMES
     * of the walk, numbered from the memo's start; memo NULL: none. */
    struct ml_unwind_memo *memo;
    int frame0;            /* the frame number of walk_in's out[0] */
    unsigned pending, dep; /* bit k: frame k's rest has met no rbp use or reload yet; a use first */
    struct rec_anchor {
        uintptr_t sp, rbp;
        int c, skip; /* the first check of frame k's rest; the one of an rbp read before it (-1: none) */
    } fr[ML_MEMO_ANCHOR_FRAMES + 1];
    const struct ml_unwind_memo_anchor *hit; /* the anchor whose way's frames end this walk */
    int hit_at, hit_checks;                  /* the frame it answered at; the checks to record (0: none) */
};

/* Appends one check (the word at at is val); 0 when the way is full or at
 * is out of an offset's reach. */
static inline int rec_check(struct ml_unwind_memo_way *w, uintptr_t base, uintptr_t at, uintptr_t val)
{
    uintptr_t off = at - base;
    if (w->checks == ML_MEMO_CHECKS || at < base || off > UINT32_MAX)
        return 0;
    w->off[w->checks] = (uint32_t)off;
    w->val[w->checks] = val;
    w->checks++;
    return 1;
}

/* One step: its CFA came from rbp or not; the return address ra read at
 * ra_at; rbp read at rbp_at (0: not read).  The checks stay in the order
 * the walk reads their words, so a replay reads no word the walk would
 * not have read. */
static inline __attribute__((always_inline)) void
rec_step(struct recorder *r, int cfa_from_rbp, uintptr_t ra_at, uintptr_t ra, uintptr_t rbp_at, uintptr_t rbp)
{
    struct ml_unwind_memo_way *w = r->w;
    if (!w)
        return;
    if (cfa_from_rbp && r->pending) {
        /* the frames whose rest this is the first use of rbp in: that rest
         * needs their rbp, whose check (if made now) comes from before them */
        int skip = !r->rbp_done && r->rbp_at ? w->checks : -1;
        for (unsigned p = r->pending; p; p &= p - 1)
            r->fr[__builtin_ctz(p)].skip = skip;
        r->dep |= r->pending;
        r->pending = 0;
    }
    if (cfa_from_rbp && !r->rbp_done) {
        if (!r->rbp_at)
            w->rbp_used = 1;
        else if (!rec_check(w, r->base, r->rbp_at, r->rbp_val))
            goto full;
        r->rbp_done = 1;
    }
    if (!rec_check(w, r->base, ra_at, ra))
        goto full;
    if (rbp_at) {
        r->pending = 0; /* their rest reads rbp anew before any use */
        r->rbp_at = rbp_at;
        r->rbp_val = rbp;
        r->rbp_done = 0;
    }
    return;
full:
    r->w = NULL;
}

/* ---- the anchors ------------------------------------------------------
 *
 * A walk the memo has not seen most often meets, a frame or a few above
 * where it starts, a frame a recorded walk went through: another call
 * site of the same function, in the same invocation (cc1: of 51,079
 * captures walked, 24,983 to 33,626 went on from their second frame as a
 * recent walk had, 6,572 to 10,671 from their third, 4,006 to 6,444 from
 * their fourth).  From there the walk is a function of that frame's
 * return address, sp and (when a CFA comes from it before it is read
 * anew) rbp, and of the words it reads, which the recorded walk's checks
 * from that frame's step on hold: with those words found again, its
 * frames are the recorded walk's from there.  Frames 1 to
 * ML_MEMO_ANCHOR_FRAMES of each walk recorded in full are anchors, by
 * return address and sp; an anchor is good while its way holds the walk it
 * was made for (its stamp) and has that walk's stack id.  The rbp check
 * those steps make of an rbp read below the frame (skip) is left out: the
 * frame's rbp is compared instead. */

static inline unsigned anchor_slot(uintptr_t ra, uintptr_t sp)
{
    uint64_t h = ((uint64_t)ra ^ ((uint64_t)sp << 13)) * 0x9E3779B97F4A7C15ull;
    return (unsigned)(h >> 57) & (ML_MEMO_ANCHORS - 1);
}

/* Whether frame f of this walk (ra, sp, rbp; need more frames kept at
 * most) is an anchor's whose way's walk would go on as this one: r->hit
 * and r->hit_at say which.  The words are compared as they are copied
 * into the way recording this walk, after its own checks and the room
 * for the check of the anchor's rbp that the steps from the anchor would
 * have made (above_record); r->hit_checks is how many that makes, 0 when
 * they are not to be recorded. */
static __attribute__((noinline)) int anchor_answers(struct recorder *r, int f, uintptr_t ra, uintptr_t sp,
                                                    uintptr_t rbp, int need)
{
    const struct ml_unwind_memo *m = r->memo;
    const struct ml_unwind_memo_anchor *a = &m->anchor[anchor_slot(ra, sp)];
    if (a->ra != ra || a->sp != sp || (a->dep && a->rbp != rbp) || a->way >= m->sets * ML_MEMO_WAYS)
        return 0;
    const struct ml_unwind_memo_way *restrict src = &m->way[a->way];
    if (src->stamp != a->stamp || !src->id || src->n <= a->k)
        return 0;
    if (src->n == src->lim && src->n - a->k < need)
        return 0; /* that walk stopped at its limit before this one would */
    struct ml_unwind_memo_way *restrict w = r->w;
    int k = w->checks + (a->dep && !r->rbp_done && r->rbp_at), end = src->checks, skip = a->skip;
    uintptr_t from = src->sp, base = r->base;
    uintptr_t far = 0; /* the largest moved offset, or above 4 GiB */
    for (int j = a->c; j < end; j++) {
        if (j == skip)
            continue;
        uintptr_t at = from + src->off[j], word = *(const uintptr_t *)at;
        if (word != src->val[j])
            return 0;
        if (k < ML_MEMO_CHECKS) {
            uintptr_t d = at - base; /* huge below base */
            far |= d;
            w->off[k] = (uint32_t)d;
            w->val[k] = word;
        }
        k++;
    }
    r->hit = a;
    r->hit_at = f;
    r->hit_checks = k <= ML_MEMO_CHECKS && far <= UINT32_MAX ? k : 0;
    return 1;
}

/* The walk from ra: out[0] = ra, then each caller's, at most max, with
 * generation g of the recipe table: a constant in each copy walk makes, so
 * the table's address, mask and fold are immediates, as the one table's
 * were (a generation held in registers cost cc1 28 M instructions in 770
 * M, spills in the loop).  A move during the walk leaves its rest to
 * recipe_slow, which reads the new generation. */
static inline __attribute__((always_inline)) int walk_in(const unsigned g, void **out, int max, uintptr_t rbp,
                                                         uintptr_t sp, uintptr_t ra, struct recorder *r)
{
    const struct gen *t = &gens[g];
    void **o = out, **end = out + max;
    *o++ = (void *)ra;
    while (o < end) {
        if (r->memo) {
            int f = r->frame0 + (int)(o - 1 - out);
            if (f >= 1 && f <= ML_MEMO_ANCHOR_FRAMES && r->w) {
                if (anchor_answers(r, f, ra, sp, rbp, r->frame0 + max - f))
                    return ML_UNWIND_ABOVE;
                r->fr[f] = (struct rec_anchor){sp, rbp, r->w->checks, -1};
                r->pending |= 1u << f;
            }
        }
        uint64_t v = recipe_fast(t, ra - 1);
        if (ML_UNLIKELY(!v)) {
            v = recipe_slow(ra - 1);
            if (v & R_OTHER)
                return -1;
            if (v & R_LATE)
                r->w = NULL;
        }
        if (v & R_STOP)
            break;
        uintptr_t ra_at, rbp_at;
        int from_rbp = (v & R_CFA_RBP) != 0;
        uintptr_t next = step(v, &rbp, &sp, &ra_at, &rbp_at);
        rec_step(r, from_rbp, ra_at, next, rbp_at, rbp);
        if (!next)
            return -1; /* libunwind decides what a zero return address means */
        ra = next;
        *o++ = (void *)ra;
    }
    return (int)(o - out);
}

static inline __attribute__((always_inline)) int walk(void **out, int max, uintptr_t rbp, uintptr_t sp,
                                                      uintptr_t ra, struct recorder *r)
{
    _Static_assert(GENS == 5, "a walk_in per generation");
    switch (gen_now() - gens) {
    case 0:
        return walk_in(0, out, max, rbp, sp, ra, r);
    case 1:
        return walk_in(1, out, max, rbp, sp, ra, r);
    case 2:
        return walk_in(2, out, max, rbp, sp, ra, r);
    case 3:
        return walk_in(3, out, max, rbp, sp, ra, r);
    default:
        return walk_in(4, out, max, rbp, sp, ra, r);
    }
}

/* Whether a walk from (ra, sp, rbp) whose first step read ra1, keeping at
 * most lim frames, would read what w's did. */
static inline int same_walk(const struct ml_unwind_memo_way *w, uintptr_t ra, uintptr_t sp, uintptr_t rbp,
                            uintptr_t ra1, int lim)
{
    if (w->ra1 != ra1 || w->ra != ra || w->sp != sp || w->n <= 0 || w->lim != lim ||
        (w->rbp_used && w->rbp != rbp))
        return 0;
    for (int k = 0; k < w->checks; k++)
        if (*(const uintptr_t *)(sp + w->off[k]) != w->val[k])
            return 0;
    return 1;
}

/* The set of a walk that leaves the own frames at (ra, sp) and steps to ra1. */
static inline unsigned memo_set(uintptr_t ra, uintptr_t sp, uintptr_t ra1)
{
    uint64_t h = ((uint64_t)ra ^ ((uint64_t)sp << 17) ^ ((uint64_t)ra1 << 7)) * 0x9E3779B97F4A7C15ull;
    return (unsigned)(h >> 58);
}

/* The walk: out[0] = ra (the caller's return address, as unw_backtrace's
 * first frame), then each caller's.  sp is the CFA of the frame that ra
 * returns into's callee, i.e. rsp after the return; rbp its rbp. */
__attribute__((used, visibility("hidden"))) int ml_unwind_from(void **out, int max, uintptr_t rbp,
                                                               uintptr_t sp, uintptr_t ra);

int ml_unwind_from(void **out, int max, uintptr_t rbp, uintptr_t sp, uintptr_t ra)
{
    if (!find_object || max <= 0)
        return -1;
    struct recorder none = {0};
    return walk(out, max, rbp, sp, ra, &none);
}

/* ---- whole frames: the exit report's ----------------------------------
 *
 * The exit scan starts at the frame that called exit (or _exit, an exec
 * function) and takes that frame's callee-saved registers as roots.  They
 * are found here with the same tables, rules and lookup as libunwind's
 * (report/exitframe.c used unw_step for it, and does still when this
 * answers -1): each step applies the CFA rule and the offset rules of the
 * return address, rbp, rbx and r12..r15; any other rule for one of them
 * (an expression, another register, a signal frame) is not simple. */

int ml_unwind_step_regs(struct ml_unwind_regs *r, uintptr_t *func)
{
    if (!find_object || r->ip == 0)
        return -1;
    uintptr_t pc = r->ip - 1;
    struct dl_find_object fo;
    if (find_object((void *)pc, &fo) != 0)
        return -1;
    struct cfa_state s;
    if (fde_state(pc, fo.dlfo_eh_frame, &s, func) != 0)
        return -1;
    if (s.ra_how == HOW_UNDEF)
        return 0;
    if ((s.cfa_reg != 6 && s.cfa_reg != 7) || s.ra_how != HOW_OFFSET || s.rbp_how > HOW_OFFSET)
        return -1;
    for (int i = 0; i < CS_N; i++)
        if (s.cs_how[i] > HOW_OFFSET)
            return -1;
    uintptr_t cfa = (s.cfa_reg == 6 ? r->rbp : r->sp) + (uintptr_t)s.cfa_off;
    uintptr_t *cs[CS_N] = {&r->rbx, &r->r12, &r->r13, &r->r14, &r->r15};
    uintptr_t ip = *(const uintptr_t *)(cfa + (uintptr_t)s.ra_off);
    if (s.rbp_how == HOW_OFFSET)
        r->rbp = *(const uintptr_t *)(cfa + (uintptr_t)s.rbp_off);
    for (int i = 0; i < CS_N; i++)
        if (s.cs_how[i] == HOW_OFFSET)
            *cs[i] = *(const uintptr_t *)(cfa + (uintptr_t)s.cs_off[i]);
    r->ip = ip;
    r->sp = cfa;
    return 1;
}

/* ml_unwind_here(r): the registers as the caller sees them after this call
 * returns (ip its return address, sp past it; the callee-saved ones as
 * they are, which this function does not touch). */
__asm__(".text\n"
        ".globl ml_unwind_here\n"
        ".hidden ml_unwind_here\n"
        ".type ml_unwind_here, @function\n"
        "ml_unwind_here:\n"
        ".cfi_startproc\n"
        "    movq (%rsp), %rax\n"
        "    movq %rax, 0(%rdi)\n"
        "    leaq 8(%rsp), %rax\n"
        "    movq %rax, 8(%rdi)\n"
        "    movq %rbp, 16(%rdi)\n"
        "    movq %rbx, 24(%rdi)\n"
        "    movq %r12, 32(%rdi)\n"
        "    movq %r13, 40(%rdi)\n"
        "    movq %r14, 48(%rdi)\n"
        "    movq %r15, 56(%rdi)\n"
        "    ret\n"
        ".cfi_endproc\n"
        ".size ml_unwind_here, .-ml_unwind_here\n");

/* ---- skipping the caller's own frames -----------------------------------
 *
 * ml_unwind_skip answers what ml_unwind would, less the leading frames
 * whose return address lies in [own_lo, own_lo + own_len) (libmallard.so's
 * text: the capture, the trace slot, the entry point), and without
 * recording them.  Most of mallard's frames are the standard frame-pointer
 * frame: CFA = rbp + 16, the return address at CFA - 8, rbp saved at CFA -
 * 16.  Whether a return address returns into such a frame is read from its
 * recipe, as always, the first time it is met; the answer "standard" is
 * kept as one bit per text byte, so from then on that frame is stepped with
 * the same three loads its recipe would make, without the recipe lookup.
 * Any other own frame is stepped by its recipe; a bit is only ever set,
 * from a recipe that says so, so the frames stay exactly the recipes'. */
#define R_STD_FP                                                                                             \
    (R_VALID | R_CFA_RBP | R_RBP_SAVED | (16ull << 8) | ((uint64_t)(uint16_t)(int16_t)-8 << 32) |            \
     ((uint64_t)(uint16_t)(int16_t)-16 << 48))
#define OWN_TEXT_MAX ((uintptr_t)2 << 20)

static uintptr_t own_lo, own_len;
static uintptr_t own_mapped; /* the part of the text own_ok covers */
static uint64_t own_ok[OWN_TEXT_MAX / 64];

void ml_unwind_set_own(uintptr_t lo, uintptr_t hi)
{
    own_lo = lo;
    own_len = hi > lo ? hi - lo : 0;
    own_mapped = own_len < OWN_TEXT_MAX ? own_len : OWN_TEXT_MAX;
}

__attribute__((used, visibility("hidden"))) int ml_unwind_skip_from(void **out, int keep,
                                                                    struct ml_unwind_memo *memo,
                                                                    uintptr_t rbp, uintptr_t sp,
                                                                    uintptr_t ra);

_Static_assert(ML_MEMO_SETS_MAX *ML_MEMO_WAYS <= 256, "memo->succ holds a way's index in a byte");

/* The own frames' words a walk depends on, as offsets from where it
 * began: each return address, and each rbp read from the stack that a
 * later step used (as a frame pointer or a CFA's base).  The last rbp read,
 * the program's at its first frame, is checked only when the program's
 * walk depends on it (urbp_at: where it was read, 0: it is the start's). */
struct own_record {
    int n; /* -1: too many, or out of an offset's reach */
    uint32_t off[ML_MEMO_OWN];
    uintptr_t val[ML_MEMO_OWN];
    uintptr_t rbp_at, rbp_val; /* the current rbp: where it was read (0: the start's), and it */
};

static inline void own_read(struct own_record *o, uintptr_t base, uintptr_t at, uintptr_t val)
{
    uintptr_t off = at - base;
    if (o->n < 0 || o->n == ML_MEMO_OWN || at < base || off > UINT32_MAX) {
        o->n = -1;
        return;
    }
    o->off[o->n] = (uint32_t)off;
    o->val[o->n] = val;
    o->n++;
}

/* The current rbp is used: the word it came from joins the checks. */
static inline void own_rbp_used(struct own_record *o, uintptr_t base)
{
    if (o->rbp_at) {
        own_read(o, base, o->rbp_at, o->rbp_val);
        o->rbp_at = 0;
    }
}

/* Whether a walk that begins at (ra, sp, rbp) with keep is w's: the way
 * that followed the last walk's the last time is tried first, before the
 * own frames are stepped, as a loop over a few call sites takes them in
 * the same order each time. */
static inline int same_start(const struct ml_unwind_memo_way *restrict w, uintptr_t ra, uintptr_t sp,
                             uintptr_t rbp, int keep)
{
    /* restrict, and the counts and bases in locals: the stack words read
     * may not alias the way, so it is not reloaded after each (the way's
     * address was computed again three times a hit; traced bench_churn
     * 100000: 97.8 M instructions, now 97.5 M; walked by pointer instead
     * of by index, 1.7 M more) */
    int s_checks = w->s_checks, checks = w->checks;
    if (((w->s_ra ^ ra) | (w->s_sp ^ sp) | (w->s_rbp ^ rbp)) || w->keep != keep || s_checks <= 0 || w->n <= 0)
        return 0;
    for (int k = 0; k < s_checks; k++)
        if (*(const uintptr_t *)(sp + w->s_off[k]) != w->s_val[k])
            return 0;
    uintptr_t usp = w->sp;
    for (int k = 0; k < checks; k++)
        if (*(const uintptr_t *)(usp + w->off[k]) != w->val[k])
            return 0;
    return 1;
}

/* w answers (or has just recorded) a walk that began at (ra, sp, rbp)
 * with keep, its own frames having read o: the next such walk is answered
 * at once.  When w's walk used the rbp its first frame began with and the
 * own frames read that from the stack, the word it came from is the own
 * frames' last check (w->s_urbp stays 0): same_start tested it apart, two
 * more loads and branches a hit. */
static inline void own_note(struct ml_unwind_memo_way *w, const struct own_record *o, uintptr_t ra,
                            uintptr_t sp, uintptr_t rbp, int keep)
{
    w->s_checks = 0;
    int n = o->n, urbp = w->rbp_used && o->rbp_at;
    if (n <= 0 || n + urbp > ML_MEMO_OWN || (urbp && (o->rbp_at < sp || o->rbp_at - sp > UINT32_MAX)))
        return;
    w->s_urbp = 0;
    w->s_ra = ra;
    w->s_sp = sp;
    w->s_rbp = rbp;
    w->keep = keep;
    memcpy(w->s_off, o->off, (size_t)n * sizeof *o->off);
    memcpy(w->s_val, o->val, (size_t)n * sizeof *o->val);
    if (urbp) {
        w->s_off[n] = (uint32_t)(o->rbp_at - sp);
        w->s_val[n] = w->rbp;
    }
    w->s_checks = n + urbp;
}

static int skip_walk(void **out, int keep, struct ml_unwind_memo *memo, uintptr_t rbp, uintptr_t sp,
                     uintptr_t ra);

int ml_unwind_skip_from(void **out, int keep, struct ml_unwind_memo *memo, uintptr_t rbp, uintptr_t sp,
                        uintptr_t ra)
{
    if (!find_object || keep <= 0)
        return -1;
    if (memo) {
        unsigned g = memo->succ[memo->last];
        if (ML_LIKELY(same_start(&memo->way[g], ra, sp, rbp, keep))) {
            memo->last = g;
            memo->hits++;
            return ML_UNWIND_SAME;
        }
    }
    return skip_walk(out, keep, memo, rbp, sp, ra);
}

/* The capture's two halves (stack.c), ml_unwind_skip_from split where a
 * hit returns: ml_unwind_memo_next is its first test alone, a function
 * that needs no buffer from its caller, and answers with the way's stack
 * id; when that is not this walk's (or its id is not known yet: nothing
 * is counted then) it tail-calls miss, which takes the registers to walk
 * from as ml_stack_capture does, from its caller's, and calls
 * ml_unwind_skip_walk, the rest: nothing is kept across the test for the
 * miss.  A capture whose walk the memo answered at once ran
 * ml_unwind_skip_from with its six saved registers inside a capture that
 * set up a 2 KiB frame for the walk's frames and saved five (traced
 * bench_churn 100000: 101.6 M instructions; split, 97.8 M; the miss a
 * tail call with the registers as arguments, 95.3 M; without them, 91.7
 * M, with the user rbp's check among the own frames'). */
typedef uint32_t ml_unwind_miss_fn(void);
__attribute__((used, visibility("hidden"))) uint32_t ml_unwind_memo_next(struct ml_unwind_memo *memo,
                                                                         int keep, uintptr_t rbp,
                                                                         uintptr_t sp, uintptr_t ra,
                                                                         ml_unwind_miss_fn *miss);
__attribute__((used, visibility("hidden"))) int ml_unwind_skip_walk(void **out, int keep,
                                                                    struct ml_unwind_memo *memo,
                                                                    uintptr_t rbp, uintptr_t sp,
                                                                    uintptr_t ra);

uint32_t ml_unwind_memo_next(struct ml_unwind_memo *memo, int keep, uintptr_t rbp, uintptr_t sp, uintptr_t ra,
                             ml_unwind_miss_fn *miss)
{
    const struct ml_unwind_memo_way *restrict w = &memo->way[memo->succ[memo->last]];
    uint32_t id = w->id;
    if (ML_LIKELY(id) && ML_LIKELY(same_start(w, ra, sp, rbp, keep))) {
        memo->last = memo->succ[memo->last];
        memo->hits++;
        return id;
    }
    return miss();
}

int ml_unwind_skip_walk(void **out, int keep, struct ml_unwind_memo *memo, uintptr_t rbp, uintptr_t sp,
                        uintptr_t ra)
{
    if (!find_object || keep <= 0)
        return -1;
    return skip_walk(out, keep, memo, rbp, sp, ra);
}

/* The anchors of the walk way wi has just recorded in full: its frames
 * 1..ML_MEMO_ANCHOR_FRAMES that were stepped from (r->fr), out its n
 * frames. */
static void anchors_make(struct ml_unwind_memo *m, const struct recorder *r, unsigned wi, void *const *out,
                         int n)
{
    const struct ml_unwind_memo_way *w = &m->way[wi];
    for (int k = 1; k <= ML_MEMO_ANCHOR_FRAMES && k < n; k++) {
        const struct rec_anchor *f = &r->fr[k];
        if (!f->sp)
            break; /* not stepped from: the walk ended there */
        int dep = (r->dep >> k) & 1;
        struct ml_unwind_memo_anchor *a = &m->anchor[anchor_slot((uintptr_t)out[k], f->sp)];
        *a = (struct ml_unwind_memo_anchor){.ra = (uintptr_t)out[k],
                                            .sp = f->sp,
                                            .rbp = f->rbp,
                                            .stamp = w->stamp,
                                            .way = (uint16_t)wi,
                                            .k = (uint8_t)k,
                                            .c = (uint8_t)f->c,
                                            .skip = (int8_t)(dep ? f->skip : -1),
                                            .dep = (uint8_t)dep};
    }
}

/* An anchor answered the walk w is recording (r->hit, at frame
 * r->hit_at; its words are in w already, anchor_answers): w records it,
 * and the caller gets the frames by memo->above. */
static int above_record(struct ml_unwind_memo *m, struct ml_unwind_memo_way *w, const struct recorder *r,
                        int lim, const struct own_record *own, uintptr_t ra0, uintptr_t sp0, uintptr_t rbp0,
                        int keep)
{
    const struct ml_unwind_memo_anchor *a = r->hit;
    const struct ml_unwind_memo_way *src = &m->way[a->way];
    int take = src->n - a->k, at = r->hit_at;
    if (take > lim - at)
        take = lim - at;
    m->above.above = a->way;
    m->above.at = (unsigned)at;
    m->above.from = a->k;
    m->above.n = (unsigned)(at + take);
    if (!r->hit_checks)
        return ML_UNWIND_ABOVE; /* not recorded */
    /* the anchor's rbp (the frame's, compared) as the steps from there
     * would have checked it, ahead of the anchor way's words */
    if (a->dep && !r->rbp_done) {
        if (!r->rbp_at) {
            w->rbp_used = 1;
        } else {
            uintptr_t d = r->rbp_at - r->base;
            if (r->rbp_at < r->base || d > UINT32_MAX)
                return ML_UNWIND_ABOVE;
            w->off[w->checks] = (uint32_t)d;
            w->val[w->checks] = r->rbp_val;
        }
    }
    w->checks = r->hit_checks;
    w->n = at + take;
    own_note(w, own, ra0, sp0, rbp0, keep);
    return ML_UNWIND_ABOVE;
}

/* The rest of ml_unwind_skip_from: the own frames stepped, then the memo's
 * set of the walk from there, then the walk, with generation g of the
 * recipe table.  A function of its own per generation (skip_walk_0 ...
 * skip_walk_4): the table's address, mask and fold are constants in it, as
 * the one table's were (one generation held in registers cost cc1 28 M
 * instructions in 770 M, spills in the loop). */
static inline __attribute__((always_inline)) int skip_walk_in(const unsigned g, void **out, int keep,
                                                              struct ml_unwind_memo *memo, uintptr_t rbp,
                                                              uintptr_t sp, uintptr_t ra)
{
    int max = keep + 8; /* ml_unwind's frames, own ones included */
    unsigned prev = memo ? memo->last : 0;
    uintptr_t ra0 = ra, sp0 = sp, rbp0 = rbp;
    struct own_record own = {0, {0}, {0}, 0, 0};
    int entries = 1; /* ra's, as ml_unwind would count it */
    uintptr_t off;
    while ((off = ra - own_lo) < own_len) {
        if (entries >= max)
            return 0; /* ml_unwind's max frames are all own */
        uintptr_t next;
        if (ML_LIKELY(off < own_mapped &&
                      ((__atomic_load_n(&own_ok[off / 64], __ATOMIC_RELAXED) >> (off % 64)) & 1))) {
            const uintptr_t *fp = (const uintptr_t *)rbp;
            if (memo) {
                own_rbp_used(&own, sp0);
                own_read(&own, sp0, rbp + 8, fp[1]);
                own.rbp_at = rbp;
                own.rbp_val = fp[0];
            }
            sp = rbp + 16;
            next = fp[1];
            rbp = fp[0];
        } else {
            uint64_t v = recipe_fast(&gens[g], ra - 1);
            if (!v)
                v = recipe_slow(ra - 1);
            if (v & (R_STOP | R_OTHER))
                return (v & R_OTHER) ? -1 : 0;
            if (v == R_STD_FP && off < own_mapped)
                __atomic_fetch_or(&own_ok[off / 64], (uint64_t)1 << (off % 64), __ATOMIC_RELAXED);
            uintptr_t ra_at, rbp_at;
            if (memo && (v & R_CFA_RBP))
                own_rbp_used(&own, sp0);
            next = step(v, &rbp, &sp, &ra_at, &rbp_at);
            if (memo) {
                own_read(&own, sp0, ra_at, next);
                if (rbp_at) {
                    own.rbp_at = rbp_at;
                    own.rbp_val = rbp;
                }
            }
        }
        if (!next)
            return -1;
        ra = next;
        entries++;
    }
    int lim = max - (entries - 1);
    if (lim > keep)
        lim = keep;
    if (!memo || lim < 2)
        return walk_in(g, out, lim, rbp, sp, ra, &(struct recorder){0});
    /* the first step, whose answer picks the set */
    uint64_t v = recipe_fast(&gens[g], ra - 1);
    int late = 0;
    if (ML_UNLIKELY(!v)) {
        v = recipe_slow(ra - 1);
        if (v & R_OTHER)
            return -1;
        late = (v & R_LATE) != 0;
    }
    out[0] = (void *)ra;
    if (v & R_STOP)
        return 1;
    uintptr_t usp = sp, urbp = rbp, ra_at, rbp_at;
    uintptr_t ra1 = step(v, &rbp, &sp, &ra_at, &rbp_at);
    if (!ra1)
        return -1; /* libunwind decides what a zero return address means */
    unsigned set = memo_set(ra, usp, ra1) & (memo->sets - 1), mru = memo->mru[set], i;
    struct ml_unwind_memo_way *w = &memo->way[set * ML_MEMO_WAYS];
    for (unsigned k = 0; k < ML_MEMO_WAYS; k++) {
        i = (mru + k) % ML_MEMO_WAYS;
        if (same_walk(&w[i], ra, usp, urbp, ra1, lim)) {
            memo->mru[set] = (uint8_t)i;
            memo->last = set * ML_MEMO_WAYS + i;
            memo->succ[prev] = (uint8_t)memo->last;
            own_note(&w[i], &own, ra0, sp0, rbp0, keep);
            memo->hits++;
            return ML_UNWIND_SAME;
        }
    }
    memo->misses++;
    i = memo->victim[set] % ML_MEMO_WAYS;
    if (i == mru)
        i = (i + 1) % ML_MEMO_WAYS;
    memo->victim[set] = (uint8_t)((i + 1) % ML_MEMO_WAYS);
    memo->mru[set] = (uint8_t)i;
    memo->last = set * ML_MEMO_WAYS + i;
    memo->succ[prev] = (uint8_t)memo->last;
    struct recorder r = {0};
    r.w = late ? NULL : &w[i];
    r.base = usp;
    r.memo = memo;
    r.frame0 = 1;
    w[i].n = 0;
    w[i].id = 0;
    w[i].stamp = ++memo->stamps; /* the anchors of the walk it held go */
    w[i].ra = ra;
    w[i].sp = usp;
    w[i].rbp = urbp;
    w[i].ra1 = ra1;
    w[i].lim = lim;
    w[i].rbp_used = 0;
    w[i].checks = 0;
    w[i].s_checks = 0;
    rec_step(&r, (v & R_CFA_RBP) != 0, ra_at, ra1, rbp_at, rbp);
    int n = walk_in(g, out + 1, lim - 1, rbp, sp, ra1, &r);
    if (n == ML_UNWIND_ABOVE)
        return above_record(memo, &w[i], &r, lim, &own, ra0, sp0, rbp0, keep);
    if (n < 0)
        return n;
    if (r.w) {
        w[i].n = n + 1;
        own_note(&w[i], &own, ra0, sp0, rbp0, keep); /* now that rbp_used is known */
        anchors_make(memo, &r, (unsigned)(&w[i] - memo->way), out, n + 1);
    }
    return n + 1;
}

#define SKIP_WALK(g)                                                                                         \
    __attribute__((noinline)) static int skip_walk_##g(void **out, int keep, struct ml_unwind_memo *memo,    \
                                                       uintptr_t rbp, uintptr_t sp, uintptr_t ra)            \
    {                                                                                                        \
        return skip_walk_in(g, out, keep, memo, rbp, sp, ra);                                                \
    }
SKIP_WALK(0)
SKIP_WALK(1)
SKIP_WALK(2)
SKIP_WALK(3)
SKIP_WALK(4)

static int skip_walk(void **out, int keep, struct ml_unwind_memo *memo, uintptr_t rbp, uintptr_t sp,
                     uintptr_t ra)
{
    _Static_assert(GENS == 5, "a skip_walk per generation");
    switch (gen_now() - gens) {
    case 0:
        return skip_walk_0(out, keep, memo, rbp, sp, ra);
    case 1:
        return skip_walk_1(out, keep, memo, rbp, sp, ra);
    case 2:
        return skip_walk_2(out, keep, memo, rbp, sp, ra);
    case 3:
        return skip_walk_3(out, keep, memo, rbp, sp, ra);
    default:
        return skip_walk_4(out, keep, memo, rbp, sp, ra);
    }
}

/* ml_unwind(out, max): the registers as the caller sees them after this
 * call returns, handed to ml_unwind_from. */
__asm__(".text\n"
        ".globl ml_unwind\n"
        ".hidden ml_unwind\n"
        ".type ml_unwind, @function\n"
        "ml_unwind:\n"
        ".cfi_startproc\n"
        "    movq %rbp, %rdx\n"
        "    leaq 8(%rsp), %rcx\n"
        "    movq (%rsp), %r8\n"
        "    jmp ml_unwind_from\n"
        ".cfi_endproc\n"
        ".size ml_unwind, .-ml_unwind\n");

/* ml_unwind_skip(out, keep, memo): the same for ml_unwind_skip_from. */
__asm__(".text\n"
        ".globl ml_unwind_skip\n"
        ".hidden ml_unwind_skip\n"
        ".type ml_unwind_skip, @function\n"
        "ml_unwind_skip:\n"
        ".cfi_startproc\n"
        "    movq %rbp, %rcx\n"
        "    leaq 8(%rsp), %r8\n"
        "    movq (%rsp), %r9\n"
        "    jmp ml_unwind_skip_from\n"
        ".cfi_endproc\n"
        ".size ml_unwind_skip, .-ml_unwind_skip\n");
