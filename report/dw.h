/* report/dw.h: elfutils, loaded on demand.
 *
 * libmallard.so has no DT_NEEDED on libdw: a preloaded library's
 * dependencies join every program's global symbol scope (and show up in
 * `ldd` run under the preload), and most processes never write a report
 * that needs symbols.  The first symbolization dlopen's libdw.so.1
 * RTLD_LOCAL and fills this table; the macros below make the rest of the
 * code read as if it called libdw directly.  Include after the elfutils
 * headers.
 */
#ifndef ML_REPORT_DW_H
#define ML_REPORT_DW_H

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <libelf.h>

#define ML_DW_FUNCS(X)                                                                                       \
    X(dwfl_begin)                                                                                            \
    X(dwfl_report_begin_add)                                                                                 \
    X(dwfl_report_end)                                                                                       \
    X(dwfl_report_elf)                                                                                       \
    X(dwfl_module_build_id)                                                                                  \
    X(dwfl_module_getsrc)                                                                                    \
    X(dwfl_module_addrinfo)                                                                                  \
    X(dwfl_module_getsymtab)                                                                                 \
    X(dwfl_module_getsym_info)                                                                               \
    X(dwfl_module_addrdie)                                                                                   \
    X(dwfl_lineinfo)                                                                                         \
    X(dwfl_offline_section_address)                                                                          \
    X(dwfl_build_id_find_elf)                                                                                \
    X(dwfl_build_id_find_debuginfo)                                                                          \
    X(dwfl_standard_find_debuginfo)                                                                          \
    X(dwarf_attr_integrate)                                                                                  \
    X(dwarf_tag)                                                                                             \
    X(dwarf_srclang)                                                                                         \
    X(dwarf_getscopes)                                                                                       \
    X(dwarf_getscopes_die)                                                                                   \
    X(dwarf_formudata)                                                                                       \
    X(dwarf_getsrcfiles)                                                                                     \
    X(dwarf_filesrc)                                                                                         \
    X(dwarf_formstring)                                                                                      \
    X(dwarf_diename)                                                                                         \
    X(dwelf_elf_gnu_build_id)                                                                                \
    X(elf_begin)                                                                                             \
    X(elf_end)                                                                                               \
    X(dwfl_module_getelf)                                                                                    \
    X(elf_nextscn)                                                                                           \
    X(elf_getscn)                                                                                            \
    X(elf_getdata)                                                                                           \
    X(elf_getshdrnum)                                                                                        \
    X(elf64_getehdr)                                                                                         \
    X(elf64_getshdr)

#define ML_DW_MEMBER(f) __typeof__(f) *f;
struct ml_dw {
    ML_DW_FUNCS(ML_DW_MEMBER)
};
#undef ML_DW_MEMBER

extern struct ml_dw ml_dw;

/* Loads libdw.so.1 once; 0 when every function was found.  Not thread-safe:
 * the caller serialises (symbolize.c holds its lock). */
int ml_dw_load(void);
/* Before the first ml_dw_load: never load libdw (the address space is
 * nearly used up; its mappings and its deep stack would not fit). */
void ml_dw_refuse(void);

#ifndef ML_DW_NO_MACROS
#define dwfl_begin ml_dw.dwfl_begin
#define dwfl_report_begin_add ml_dw.dwfl_report_begin_add
#define dwfl_report_end ml_dw.dwfl_report_end
#define dwfl_report_elf ml_dw.dwfl_report_elf
#define dwfl_module_build_id ml_dw.dwfl_module_build_id
#define dwfl_module_getsrc ml_dw.dwfl_module_getsrc
#define dwfl_module_addrinfo ml_dw.dwfl_module_addrinfo
#define dwfl_module_getsymtab ml_dw.dwfl_module_getsymtab
#define dwfl_module_getsym_info ml_dw.dwfl_module_getsym_info
#define dwfl_module_addrdie ml_dw.dwfl_module_addrdie
#define dwfl_lineinfo ml_dw.dwfl_lineinfo
#define dwfl_offline_section_address ml_dw.dwfl_offline_section_address
#define dwfl_build_id_find_elf ml_dw.dwfl_build_id_find_elf
#define dwfl_build_id_find_debuginfo ml_dw.dwfl_build_id_find_debuginfo
#define dwfl_standard_find_debuginfo ml_dw.dwfl_standard_find_debuginfo
#define dwarf_attr_integrate ml_dw.dwarf_attr_integrate
#define dwarf_tag ml_dw.dwarf_tag
#define dwarf_srclang ml_dw.dwarf_srclang
#define dwarf_getscopes ml_dw.dwarf_getscopes
#define dwarf_getscopes_die ml_dw.dwarf_getscopes_die
#define dwarf_formudata ml_dw.dwarf_formudata
#define dwarf_getsrcfiles ml_dw.dwarf_getsrcfiles
#define dwarf_filesrc ml_dw.dwarf_filesrc
#define dwarf_formstring ml_dw.dwarf_formstring
#define dwarf_diename ml_dw.dwarf_diename
#define dwelf_elf_gnu_build_id ml_dw.dwelf_elf_gnu_build_id
#define elf_begin ml_dw.elf_begin
#define elf_end ml_dw.elf_end
#define dwfl_module_getelf ml_dw.dwfl_module_getelf
#define elf_nextscn ml_dw.elf_nextscn
#define elf_getscn ml_dw.elf_getscn
#define elf_getdata ml_dw.elf_getdata
#define elf_getshdrnum ml_dw.elf_getshdrnum
#define elf64_getehdr ml_dw.elf64_getehdr
#define elf64_getshdr ml_dw.elf64_getshdr
#endif

#endif
