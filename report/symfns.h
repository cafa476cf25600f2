/* report/symfns.h: the function symbols of one module that contain a pc.
 *
 * The built-in suppressions and the hiding of frames below main ask, per
 * frame, for the symbol-table names of the function the pc is in, aliases
 * included.  The answer is what a table of the module's function symbols
 * sorted by start would give: the entries starting at or below the pc,
 * latest start first (a later table index first among equal starts), at
 * most ML_SYMFNS_MAX of them looked at, those whose range holds the pc
 * kept.  A function symbol is one dwfl_module_getsym_info lists as
 * STT_FUNC or STT_GNU_IFUNC with a name and a size under 4 GiB, at an
 * address at most 4 GiB above the module's load bias.
 *
 * A short report asks that of a few pcs per module, and libc's table has
 * 3000 symbols (.dynsym) to 10000 (.symtab of libc6-dbg): the table is
 * read in place (libelf: the Elf64_Sym array libdw itself reads) and
 * scanned once per pc, with no copy and no allocation; only a module asked
 * about more than ML_SYMFNS_SCANS pcs gets the sorted index.  Where the
 * table cannot be read in place exactly as libdw reads it (an auxiliary
 * .gnu_debugdata table, no section headers, an ELF other than 64-bit
 * x86-64 or AArch64) every symbol goes through dwfl_module_getsym_info and
 * the index is built at once, as before.
 *
 * Caller holds symbolize.c's lock (libdw is not thread-safe).
 */
#ifndef ML_REPORT_SYMFNS_H
#define ML_REPORT_SYMFNS_H

#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdint.h>

#define ML_SYMFNS_MAX 64  /* entries looked at below a pc */
#define ML_SYMFNS_SCANS 8 /* pcs answered by a scan before the index is built */

/* A function of the index: its range, as offsets from the load bias, and
 * its index in the symbol table. */
struct ml_symfn {
    uint32_t lo, len, index;
};

struct ml_symfns {
    Dwfl_Module *dm; /* NULL: nothing to answer */
    uintptr_t base;  /* the module's load bias */
    int opened;      /* the table was looked at (ml_symfns_at) */
    /* the table read in place; syms NULL: through libdw only */
    const Elf64_Sym *syms;
    size_t nsyms;
    const char *str;
    size_t strsz;
    uint64_t bias;        /* what libdw adds to a value in an SHF_ALLOC section */
    size_t shnum;         /* sections of the symbol table's file */
    uint8_t biased[512];  /* per section index below 512: libdw adds bias */
    unsigned scans;       /* pcs answered by a scan */
    struct ml_symfn *fns; /* the index, by start; NULL: not built */
    size_t nfns;
    int index_built;
};

/* What the report did, for the tests: symbols read one at a time through
 * dwfl_module_getsym_info, pcs answered by a scan of the table in place,
 * indexes built.  Totals over every module since the process started. */
struct ml_symfns_counts {
    unsigned long dw_reads, scans, indexes;
};
void ml_symfns_counts(struct ml_symfns_counts *out);

/* Prepares f for the module dm loaded at base (dm may be NULL). */
void ml_symfns_init(struct ml_symfns *f, Dwfl_Module *dm, uintptr_t base);

/* The table indexes of the function symbols containing pc, in the order
 * described above, into out; returns how many (0 when none, or when out of
 * memory for the index). */
unsigned ml_symfns_at(struct ml_symfns *f, uintptr_t pc, uint32_t out[ML_SYMFNS_MAX]);

/* The symbol-table name of entry index (with its symbol version, as
 * libdw gives it); NULL when it has none. */
const char *ml_symfns_name(struct ml_symfns *f, uint32_t index);

#endif
