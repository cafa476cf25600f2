/* tests/report/test_report.c: modules.c, symbolize.c and the writers, linked
 * directly (no preload), against real objects: this program (built with
 * -g), libc, a -g library dlclose'd before symbolization, and a stripped
 * library with no debug info.
 *
 * ml_stack_frames is defined here as a test double: stack id i returns the
 * frames the test put in test_stacks[i], so the writers can be fed chosen
 * return addresses without the depot.
 */
#define _GNU_SOURCE
#include "../../report/report.h"

#include <check.h>
#include <dlfcn.h>
#include <elf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ML_DW_NO_MACROS /* ml_dw's members by their names */
#include "../../report/dw.h"

/* ---- the stack depot double ------------------------------------------ */

#define TEST_STACKS 8
static uintptr_t test_stacks[TEST_STACKS][ML_DEPTH_MAX];
static unsigned test_depth[TEST_STACKS];

const uintptr_t *ml_stack_frames(ml_stack_id id, unsigned *n)
{
    if (id == 0 || id >= TEST_STACKS) {
        *n = 0;
        return NULL;
    }
    *n = test_depth[id];
    return test_stacks[id];
}

static void set_stack(ml_stack_id id, const uintptr_t *frames, unsigned n)
{
    memcpy(test_stacks[id], frames, n * sizeof *frames);
    test_depth[id] = n;
}

/* ---- known code addresses -------------------------------------------- */

static __attribute__((noinline)) uintptr_t return_address(void)
{
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return ra;
}

/* A return address inside leak_site, on the line stored in *line, as the
 * unwinder would capture it for a malloc called there. */
static __attribute__((noinline)) uintptr_t leak_site(int *line)
{
    *line = __LINE__ + 1;
    uintptr_t ra = return_address();
    __asm__ volatile("" ::: "memory");
    return ra;
}

static inline __attribute__((always_inline)) uintptr_t inlined_site(int *line)
{
    *line = __LINE__ + 1;
    uintptr_t ra = return_address();
    __asm__ volatile("" ::: "memory");
    return ra;
}

static __attribute__((noinline)) uintptr_t inline_host(int *line)
{
    uintptr_t ra = inlined_site(line);
    __asm__ volatile("" ::: "memory");
    return ra;
}

static const char *exe_path(void)
{
    static char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    return buf;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* libc's own qsort: through libc's handle, not RTLD_DEFAULT, which under
 * ASan finds the interceptor. */
static void *libc_qsort(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    ck_assert_ptr_nonnull(libc);
    void *qs = dlsym(libc, "qsort");
    ck_assert_ptr_nonnull(qs);
    dlclose(libc);
    return qs;
}

/* The load bias of the object holding addr, as the loader says. */
static uintptr_t loader_bias(const void *addr)
{
    Dl_info info;
    struct link_map *lm = NULL;
    ck_assert(dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP));
    ck_assert_ptr_nonnull(lm);
    return lm->l_addr;
}

/* The GNU build-id of a file, read from its section headers with libelf:
 * independent of modules.c, which reads the mapped program headers. */
static int file_build_id(const char *path, unsigned char *out, size_t cap)
{
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    ck_assert_ptr_nonnull(elf);
    int len = 0;
    for (Elf_Scn *scn = NULL; !len && (scn = elf_nextscn(elf, scn));) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        GElf_Nhdr nh;
        size_t off = 0, name_off, desc_off;
        while (d && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                !memcmp((char *)d->d_buf + name_off, "GNU", 4) && nh.n_descsz <= cap) {
                memcpy(out, (char *)d->d_buf + desc_off, nh.n_descsz);
                len = (int)nh.n_descsz;
                break;
            }
        }
    }
    elf_end(elf);
    close(fd);
    return len;
}

/* ---- modules ---------------------------------------------------------- */

START_TEST(modules_main_program)
{
    ml_modules_refresh();
    const struct ml_module *m = ml_modules_find((uintptr_t)&leak_site);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->path, exe_path());
    ck_assert_int_eq(m->unloaded, 0);
    ck_assert_uint_eq(m->base, loader_bias((void *)&leak_site));
    ck_assert(m->lo <= (uintptr_t)&leak_site && (uintptr_t)&leak_site < m->hi);

    unsigned char id[64];
    int len = file_build_id(exe_path(), id, sizeof id);
    ck_assert_int_gt(len, 0);
    ck_assert_uint_eq(m->build_id_len, (unsigned)len);
    ck_assert(!memcmp(m->build_id, id, (size_t)len));

    /* Nothing changed: the same record, not a copy. */
    ml_modules_refresh();
    ck_assert_ptr_eq(ml_modules_find((uintptr_t)&leak_site + 1), m);
}
END_TEST

START_TEST(modules_libc_and_misses)
{
    ml_modules_refresh();
    void *qs = libc_qsort();
    ck_assert_ptr_nonnull(qs);
    const struct ml_module *m = ml_modules_find((uintptr_t)qs);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(base_name(m->path), "libc.so.6");
    ck_assert_uint_eq(m->base, loader_bias(qs));
    unsigned char id[64];
    int len = file_build_id(m->path, id, sizeof id);
    ck_assert_int_gt(len, 0);
    ck_assert_uint_eq(m->build_id_len, (unsigned)len);
    ck_assert(!memcmp(m->build_id, id, (size_t)len));

    int on_stack = 0;
    void *on_heap = malloc(16);
    ck_assert_ptr_null(ml_modules_find(0));
    ck_assert_ptr_null(ml_modules_find((uintptr_t)&on_stack));
    ck_assert_ptr_null(ml_modules_find((uintptr_t)on_heap));
    free(on_heap);
}
END_TEST

START_TEST(modules_dlclose_keeps_record)
{
    ml_modules_refresh();
    void *h = dlopen(ML_DSO_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen: %s", dlerror());
    void *fn = dlsym(h, "report_dso_site");
    ck_assert_ptr_nonnull(fn);
    ck_assert_ptr_null(ml_modules_find((uintptr_t)fn)); /* not refreshed yet */
    ml_modules_refresh();
    const struct ml_module *m = ml_modules_find((uintptr_t)fn);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->path, ML_DSO_PATH);
    ck_assert_int_eq(m->unloaded, 0);
    ck_assert_uint_eq(m->base, loader_bias(fn));
    ck_assert_uint_eq(m->build_id_len, 20);

    ck_assert_int_eq(dlclose(h), 0);
    ck_assert_ptr_null(dlopen(ML_DSO_PATH, RTLD_NOW | RTLD_NOLOAD)); /* really gone */
    ml_modules_refresh();
    ck_assert_ptr_eq(ml_modules_find((uintptr_t)fn), m);
    ck_assert_int_eq(m->unloaded, 1);

    /* Loaded again: whatever address it gets, the record found is loaded. */
    h = dlopen(ML_DSO_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(h);
    void *fn2 = dlsym(h, "report_dso_site");
    ml_modules_refresh();
    const struct ml_module *m2 = ml_modules_find((uintptr_t)fn2);
    ck_assert_ptr_nonnull(m2);
    ck_assert_int_eq(m2->unloaded, 0);
    ck_assert_str_eq(m2->path, ML_DSO_PATH);
    if (fn2 == fn)
        ck_assert_ptr_eq(m2, m); /* revived, not duplicated */
    dlclose(h);
}
END_TEST

static volatile int finders_stop;

static void *finder(void *arg)
{
    const char *exe = arg;
    long n = 0;
    while (!__atomic_load_n(&finders_stop, __ATOMIC_RELAXED)) {
        const struct ml_module *m = ml_modules_find((uintptr_t)&leak_site);
        if (!m || strcmp(m->path, exe) || m->unloaded)
            return (void *)-1;
        n++;
    }
    return (void *)n;
}

START_TEST(modules_find_during_refresh)
{
    ml_modules_refresh();
    const char *exe = exe_path();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, finder, (void *)exe), 0);
    for (int i = 0; i < 200; i++) {
        void *h = dlopen(ML_DSO_PATH, RTLD_NOW | RTLD_LOCAL);
        ck_assert_ptr_nonnull(h);
        ml_modules_refresh();
        void *fn = dlsym(h, "report_dso_site");
        const struct ml_module *m = ml_modules_find((uintptr_t)fn);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(m->unloaded, 0);
        dlclose(h);
        ml_modules_refresh();
    }
    __atomic_store_n(&finders_stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        ck_assert_ptr_ne(res, (void *)-1);
    }
}
END_TEST

/* ---- symbolize -------------------------------------------------------- */

START_TEST(symbolize_own_function)
{
    ml_modules_refresh();
    int line = 0;
    uintptr_t ra = leak_site(&line);
    struct ml_frame f;
    ml_symbolize(ra, &f);
    ck_assert_uint_eq(f.addr, ra);
    ck_assert_str_eq(f.function, "leak_site");
    ck_assert_ptr_nonnull(f.file);
    ck_assert_str_eq(base_name(f.file), "test_report.c");
    ck_assert_str_eq(f.file, __FILE__); /* the full path, as the compiler was given it */
    ck_assert_int_eq(f.line, line);
    ck_assert_str_eq(f.object, exe_path());
    ck_assert_uint_eq(f.offset, ra - loader_bias((void *)ra));

    /* cached: the very same strings come back */
    struct ml_frame g;
    ml_symbolize(ra, &g);
    ck_assert_ptr_eq(g.function, f.function);
    ck_assert_ptr_eq(g.file, f.file);
    ck_assert_int_eq(g.line, f.line);
}
END_TEST

START_TEST(symbolize_inlined_function)
{
    ml_modules_refresh();
    int line = 0;
    uintptr_t ra = inline_host(&line);
    struct ml_frame f;
    ml_symbolize(ra, &f);
    /* The name matches the line: the inlined function, not its host. */
    ck_assert_str_eq(f.function, "inlined_site");
    ck_assert_str_eq(base_name(f.file), "test_report.c");
    ck_assert_int_eq(f.line, line);
}
END_TEST

START_TEST(symbolize_libc)
{
    ml_modules_refresh();
    void *qs = libc_qsort();
    const struct ml_module *m = ml_modules_find((uintptr_t)qs);
    ck_assert_ptr_nonnull(m);
    /* libc's debug info is found by build-id when libc6-dbg is installed. */
    char dbg[256];
    int n = snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%02x/", m->build_id[0]);
    for (unsigned i = 1; i < m->build_id_len; i++)
        n += snprintf(dbg + n, sizeof dbg - (size_t)n, "%02x", m->build_id[i]);
    snprintf(dbg + n, sizeof dbg - (size_t)n, ".debug");
    struct stat st;
    int have_debug = stat(dbg, &st) == 0;

    struct ml_frame f;
    ml_symbolize((uintptr_t)qs + 1, &f);
    ck_assert_str_eq(f.function, "qsort");
    ck_assert_str_eq(f.object, m->path);
    ck_assert_uint_eq(f.offset, (uintptr_t)qs + 1 - m->base);
    if (have_debug) {
        ck_assert_ptr_nonnull(f.file);
        ck_assert_int_gt(f.line, 0);
    } else {
        ck_assert_ptr_null(f.file);
        ck_assert_int_eq(f.line, 0);
    }
}
END_TEST

START_TEST(symbolize_after_dlclose)
{
    void *h = dlopen(ML_DSO_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(h);
    uintptr_t (*site)(int *) = (uintptr_t(*)(int *))dlsym(h, "report_dso_site");
    ck_assert_ptr_nonnull(site);
    int line = 0;
    uintptr_t ra = site(&line);
    uintptr_t bias = loader_bias((void *)ra);
    ml_modules_refresh(); /* what the trace layer does on capture */
    ck_assert_int_eq(dlclose(h), 0);
    ck_assert_ptr_null(dlopen(ML_DSO_PATH, RTLD_NOW | RTLD_NOLOAD));
    ml_modules_refresh();

    struct ml_frame f;
    ml_symbolize(ra, &f);
    ck_assert_str_eq(f.function, "report_dso_site");
    ck_assert_ptr_nonnull(f.file);
    ck_assert_str_eq(base_name(f.file), "report_dso.c");
    ck_assert_int_eq(f.line, line);
    ck_assert_str_eq(f.object, ML_DSO_PATH);
    ck_assert_uint_eq(f.offset, ra - bias);
}
END_TEST

START_TEST(symbolize_without_debug_info)
{
    void *h = dlopen(ML_NODEBUG_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(h);
    uintptr_t (*exported)(void) = (uintptr_t(*)(void))dlsym(h, "report_nodebug_exported");
    uintptr_t (*hidden)(void) = (uintptr_t(*)(void))dlsym(h, "report_nodebug_hidden_site");
    ck_assert_ptr_nonnull(exported);
    ck_assert_ptr_nonnull(hidden);
    uintptr_t ra_exported = exported(), ra_hidden = hidden();
    uintptr_t bias = loader_bias((void *)ra_exported);
    ml_modules_refresh();

    struct ml_frame f;
    ml_symbolize(ra_exported, &f); /* .dynsym only */
    ck_assert_str_eq(f.function, "report_nodebug_exported");
    ck_assert_ptr_null(f.file);
    ck_assert_int_eq(f.line, 0);
    ck_assert_str_eq(f.object, ML_NODEBUG_PATH);
    ck_assert_uint_eq(f.offset, ra_exported - bias);

    ml_symbolize(ra_hidden, &f); /* no symbol covers a stripped static function */
    ck_assert_ptr_null(f.function);
    ck_assert_ptr_null(f.file);
    ck_assert_str_eq(f.object, ML_NODEBUG_PATH);
    ck_assert_uint_eq(f.offset, ra_hidden - bias);
    dlclose(h);
}
END_TEST

START_TEST(symbolize_debuglink)
{
    void *h = dlopen(ML_SPLIT_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(h);
    uintptr_t (*site)(int *) = (uintptr_t(*)(int *))dlsym(h, "report_dso_site");
    int line = 0;
    uintptr_t ra = site(&line);
    ml_modules_refresh();
    struct ml_frame f;
    ml_symbolize(ra, &f);
    ck_assert_str_eq(f.function, "report_dso_site");
    ck_assert_ptr_nonnull(f.file);
    ck_assert_str_eq(base_name(f.file), "report_dso.c");
    ck_assert_int_eq(f.line, line);
    ck_assert_str_eq(f.object, ML_SPLIT_PATH);
    dlclose(h);
}
END_TEST

/* With DEBUGINFOD_URLS set, a module without local debug info must not
 * send libdw to the network (libdebuginfod and libcurl stay unloaded). */
START_TEST(symbolize_never_asks_debuginfod)
{
    setenv("DEBUGINFOD_URLS", "http://127.0.0.1:9", 1);
    setenv("DEBUGINFOD_TIMEOUT", "1", 1);
    void *h = dlopen(ML_NODEBUG_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(h);
    uintptr_t ra = ((uintptr_t(*)(void))dlsym(h, "report_nodebug_exported"))();
    int line;
    uintptr_t own = leak_site(&line);
    ml_modules_refresh();
    struct ml_frame f;
    ml_symbolize(ra, &f);
    ck_assert_str_eq(f.function, "report_nodebug_exported");
    ck_assert_ptr_null(f.file);
    ml_symbolize(own, &f);
    ck_assert_int_eq(f.line, line);
    ck_assert_ptr_null(dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_NOLOAD));
    dlclose(h);
}
END_TEST

START_TEST(symbolize_unknown_address)
{
    ml_modules_refresh();
    struct ml_frame f;
    ml_symbolize(0x1234, &f);
    ck_assert_uint_eq(f.addr, 0x1234);
    ck_assert_ptr_null(f.function);
    ck_assert_ptr_null(f.file);
    ck_assert_ptr_null(f.object);
    ck_assert_int_eq(f.line, 0);
}
END_TEST

/* ---- writers ---------------------------------------------------------- */

/* The whole of a file, NUL-terminated, malloc'd. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static int validate(const char *path)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", ML_PYTHON, ML_VALIDATE, ML_SCHEMA, path);
    int st = system(cmd);
    ck_assert_int_ne(st, -1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *write_report(int json, const struct ml_report *r, char *path)
{
    strcpy(path, "/tmp/mallard-report-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    int rc = json ? ml_write_json(fd, r) : ml_write_text(fd, r);
    ck_assert_int_eq(rc, 0);
    close(fd);
    return slurp(path);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A report that touches every part of the model.  Stack 1: this program
 * (with line), libc, nowhere.  Stack 2: the stripped library (symbol only,
 * then nothing), stack 3: this program only. */
struct fixture {
    struct ml_report r;
    struct ml_leak_group groups[3];
    struct ml_error errors[2];
    struct ml_tag_stats tags[2];
    int line;
    uintptr_t ra, ra_exported, ra_hidden, qsort_addr;
    void *nodebug;
};
static const char *const fixture_argv[] = {"prog", "--flag", NULL};

static void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->nodebug = dlopen(ML_NODEBUG_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(fx->nodebug);
    fx->ra_exported = ((uintptr_t(*)(void))dlsym(fx->nodebug, "report_nodebug_exported"))();
    fx->ra_hidden = ((uintptr_t(*)(void))dlsym(fx->nodebug, "report_nodebug_hidden_site"))();
    fx->ra = leak_site(&fx->line);
    fx->qsort_addr = (uintptr_t)libc_qsort() + 1;
    ml_modules_refresh();
    uintptr_t s1[] = {fx->ra, fx->qsort_addr, 0x1234};
    uintptr_t s2[] = {fx->ra_exported, fx->ra_hidden};
    uintptr_t s3[] = {fx->ra};
    set_stack(1, s1, 3);
    set_stack(2, s2, 2);
    set_stack(3, s3, 1);

    struct ml_report *r = &fx->r;
    r->pid = 4242;
    r->ppid = 1;
    r->exe = "/usr/bin/prog";
    r->argv = fixture_argv;
    r->backend = "freelist";
    r->exit_how = ML_EXIT_SIGNAL;
    r->exit_status = 11;
    r->definite = (struct ml_count){100, 1};
    r->indirect = (struct ml_count){900, 9};
    r->reachable = (struct ml_count){64, 1};
    r->suppressed = (struct ml_count){7, 2};
    r->nerrors = 2;
    fx->groups[0] = (struct ml_leak_group){.kind = ML_KIND_INDIRECT, .bytes = 900, .blocks = 9, .tag = NULL, .stack = 2};
    fx->groups[1] = (struct ml_leak_group){.kind = ML_KIND_DEFINITE, .bytes = 100, .blocks = 1, .tag = "parser", .stack = 1};
    fx->groups[2] = (struct ml_leak_group){.kind = ML_KIND_REACHABLE, .bytes = 64, .blocks = 1, .tag = NULL, .stack = 3};
    r->groups = fx->groups;
    r->ngroups = 3;
    fx->errors[0] = (struct ml_error){.kind = ML_ERR_DOUBLE_FREE, .address = 0xdeadbeef0, .bytes = 100, .stack = 3, .alloc_stack = 1, .free_stack = 2};
    fx->errors[1] = (struct ml_error){.kind = ML_ERR_INVALID_FREE, .address = 0x7ffc1000, .stack = 3};
    r->errors = fx->errors;
    r->nerrors_listed = 2;
    fx->tags[0] = (struct ml_tag_stats){.tag = "parser", .allocs = 10, .current_bytes = 0, .peak_bytes = 4096,
                                        .frees = 10, .bytes_allocated = 8000};
    fx->tags[1] = (struct ml_tag_stats){.tag = "net", .current_bytes = 100, .by_stack = 1, .blocks = 2};
    r->tags = fx->tags;
    r->ntags = 2;
    r->allocs = 1000;
    r->frees = 999;
    r->bytes_allocated = 123456;
    r->peak_bytes = 4096;
    r->current_bytes = 100;
}

START_TEST(json_report_validates)
{
    struct fixture fx;
    fixture_init(&fx);
    char path[64];
    fx.r.show_reachable = 1; /* MALLARD_SHOW=all: the reachable group is listed too */
    char *s = write_report(1, &fx.r, path);
    ck_assert_int_eq(validate(path), 0);

    ck_assert_ptr_nonnull(strstr(s, "\"mallard\": 1,"));
    ck_assert_ptr_nonnull(strstr(s, "\"pid\": 4242, \"ppid\": 1, \"exe\": \"/usr/bin/prog\", "
                                    "\"argv\": [\"prog\", \"--flag\"]"));
    ck_assert_ptr_nonnull(strstr(s, "\"backend\": \"freelist\""));
    ck_assert_ptr_nonnull(strstr(s, "\"exit\": {\"how\": \"signal\", \"status\": 11}"));
    ck_assert_ptr_nonnull(strstr(s, "\"definite\": {\"bytes\": 100, \"blocks\": 1}"));
    ck_assert_ptr_nonnull(strstr(s, "\"indirect\": {\"bytes\": 900, \"blocks\": 9}"));
    ck_assert_ptr_nonnull(strstr(s, "\"reachable\": {\"bytes\": 64, \"blocks\": 1}"));
    ck_assert_ptr_nonnull(strstr(s, "\"suppressed\": {\"bytes\": 7, \"blocks\": 2}"));
    ck_assert_ptr_nonnull(strstr(s, "\"errors\": 2\n"));

    /* frame with debug info: basename in "file", full path in "path" */
    char want[8192];
    snprintf(want, sizeof want,
             "{\"addr\": \"0x%lx\", \"function\": \"leak_site\", \"file\": \"test_report.c\", \"line\": %d, "
             "\"object\": \"%s\", \"path\": \"%s\", \"offset\": \"0x%lx\", \"mangled\": null, \"inlined\": false}",
             (unsigned long)fx.ra, fx.line, exe_path(), __FILE__,
             (unsigned long)(fx.ra - loader_bias((void *)fx.ra)));
    ck_assert_msg(strstr(s, want), "missing %s", want);
    /* symbol only, then nothing but the object, then nothing at all */
    snprintf(want, sizeof want,
             "{\"addr\": \"0x%lx\", \"function\": \"report_nodebug_exported\", \"file\": null, \"line\": null, "
             "\"object\": \"%s\", \"path\": null, \"offset\": \"0x%lx\", \"mangled\": null, \"inlined\": false}",
             (unsigned long)fx.ra_exported, ML_NODEBUG_PATH,
             (unsigned long)(fx.ra_exported - loader_bias((void *)fx.ra_exported)));
    ck_assert_msg(strstr(s, want), "missing %s", want);
    snprintf(want, sizeof want, "{\"addr\": \"0x%lx\", \"function\": null, \"file\": null, \"line\": null, \"object\": \"%s\"",
             (unsigned long)fx.ra_hidden, ML_NODEBUG_PATH);
    ck_assert_msg(strstr(s, want), "missing %s", want);
    ck_assert_ptr_nonnull(strstr(s, "{\"addr\": \"0x1234\", \"function\": null, \"file\": null, \"line\": null, "
                                    "\"object\": null, \"path\": null, \"offset\": \"0x1234\", \"mangled\": null, "
                                    "\"inlined\": false}"));

    /* groups in the model's order, each kind listed, reachable included */
    const char *g0 = strstr(s, "{\"kind\": \"indirect\", \"bytes\": 900, \"blocks\": 9, \"tag\": null,");
    const char *g1 = strstr(s, "{\"kind\": \"definite\", \"bytes\": 100, \"blocks\": 1, \"tag\": \"parser\",");
    const char *g2 = strstr(s, "{\"kind\": \"reachable\", \"bytes\": 64, \"blocks\": 1, \"tag\": null,");
    ck_assert(g0 && g1 && g2 && g0 < g1 && g1 < g2);

    /* errors: the three stacks, empty arrays for id 0 */
    ck_assert_ptr_nonnull(strstr(s, "{\"kind\": \"double-free\", \"address\": \"0xdeadbeef0\", \"bytes\": 100,"));
    ck_assert_ptr_nonnull(strstr(s, "{\"kind\": \"invalid-free\", \"address\": \"0x7ffc1000\", \"bytes\": 0,"));
    ck_assert_ptr_nonnull(strstr(s, "\"alloc_stack\": [],\n     \"free_stack\": [],\n     \"thread\": "));
    ck_assert_uint_eq(count(s, "\"function\": \"leak_site\""), 1 + 1 + 2 + 1); /* groups 1,3; errors */

    ck_assert_ptr_nonnull(strstr(s, "{\"tag\": \"parser\", \"allocs\": 10, \"current_bytes\": 0, \"peak_bytes\": 4096, "
                                    "\"frees\": 10, \"bytes_allocated\": 8000, \"by_stack\": false}"));
    ck_assert_ptr_nonnull(strstr(s, "{\"tag\": \"net\", \"allocs\": null, \"current_bytes\": 100, \"peak_bytes\": null, "
                                    "\"frees\": null, \"bytes_allocated\": null, \"by_stack\": true, \"blocks\": 2}"));
    ck_assert_ptr_nonnull(strstr(s, "\"stats\": {\"allocs\": 1000, \"frees\": 999, \"bytes_allocated\": 123456, "
                                    "\"peak_bytes\": 4096, \"current_bytes\": 100}"));
    free(s);
    unlink(path);
    dlclose(fx.nodebug);
}
END_TEST

START_TEST(json_empty_report_validates)
{
    struct ml_report r;
    memset(&r, 0, sizeof r);
    r.backend = "system";
    r.exit_how = ML_EXIT__EXIT;
    char path[64];
    char *s = write_report(1, &r, path);
    ck_assert_int_eq(validate(path), 0);
    ck_assert_ptr_nonnull(strstr(s, "\"exe\": \"\", \"argv\": []"));
    ck_assert_ptr_nonnull(strstr(s, "\"exit\": {\"how\": \"_exit\", \"status\": 0}"));
    ck_assert_ptr_nonnull(strstr(s, "\"leaks\": [],\n  \"errors\": [],\n  \"tags\": [],"));
    free(s);
    unlink(path);
}
END_TEST

START_TEST(json_escaping)
{
    static const char *const argv[] = {"q\"uote", "back\\slash", "nl\n tab\t cr\r", "\x01\x1f\x7f", "caf\xc3\xa9", NULL};
    struct ml_report r;
    memset(&r, 0, sizeof r);
    r.argv = argv;
    r.exe = "/tmp/we\"ird\\name";
    r.backend = "freelist";
    struct ml_leak_group g = {.kind = ML_KIND_DEFINITE, .bytes = 1, .blocks = 1, .tag = "t\"a\\g\n", .stack = 0};
    r.groups = &g;
    r.ngroups = 1;
    char path[64];
    char *s = write_report(1, &r, path);
    ck_assert_int_eq(validate(path), 0);
    ck_assert_ptr_nonnull(strstr(s, "\"exe\": \"/tmp/we\\\"ird\\\\name\""));
    ck_assert_ptr_nonnull(strstr(s, "[\"q\\\"uote\", \"back\\\\slash\", \"nl\\u000a tab\\u0009 cr\\u000d\", "
                                    "\"\\u0001\\u001f\x7f\", \"caf\xc3\xa9\"]"));
    ck_assert_ptr_nonnull(strstr(s, "\"tag\": \"t\\\"a\\\\g\\u000a\""));
    ck_assert_ptr_nonnull(strstr(s, "\"stack\": []"));

    /* and a parser gets the original strings back */
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "'%s' -c 'import json,sys; d=json.load(open(sys.argv[1], encoding=\"utf-8\")); "
             "sys.exit(0 if d[\"argv\"]==[\"q\\\"uote\",\"back\\\\slash\",\"nl\\n tab\\t cr\\r\",\"\\x01\\x1f\\x7f\",\"caf\\u00e9\"] "
             "and d[\"exe\"]==\"/tmp/we\\\"ird\\\\name\" and d[\"leaks\"][0][\"tag\"]==\"t\\\"a\\\\g\\n\" else 1)' '%s'",
             ML_PYTHON, path);
    int st = system(cmd);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(s);
    unlink(path);
}
END_TEST

START_TEST(json_large_report)
{
    /* More than the writer's buffer many times over, and strings longer
     * than the buffer itself. */
    static struct ml_leak_group groups[100];
    static char longarg[20000];
    memset(longarg, 'x', sizeof longarg - 1);
    longarg[5000] = '"';
    const char *argv[] = {"prog", longarg, NULL};
    int line;
    uintptr_t ra = leak_site(&line);
    ml_modules_refresh();
    uintptr_t frames[8];
    for (int i = 0; i < 8; i++)
        frames[i] = ra;
    set_stack(1, frames, 8);
    for (int i = 0; i < 100; i++)
        groups[i] = (struct ml_leak_group){.kind = ML_KIND_DEFINITE, .bytes = (uint64_t)(100 - i) * 16, .blocks = 1, .tag = NULL, .stack = 1};
    struct ml_report r;
    memset(&r, 0, sizeof r);
    r.argv = argv;
    r.backend = "freelist";
    r.groups = groups;
    r.ngroups = 100;
    char path[64];
    char *s = write_report(1, &r, path);
    ck_assert_uint_gt(strlen(s), 30u * 4096); /* the buffer flushed many times */
    ck_assert_int_eq(validate(path), 0);
    ck_assert_uint_eq(count(s, "\"function\": \"leak_site\""), 100u * 8);
    ck_assert_uint_eq(count(s, "{\"kind\": \"definite\""), 100);
    free(s);
    unlink(path);
}
END_TEST

/* The schema is not a rubber stamp: reports that break the contract fail. */
START_TEST(schema_rejects_broken_reports)
{
    static const char good[] =
        "{\"mallard\": 1, \"pid\": 1, \"ppid\": 0, \"exe\": \"/p\", \"argv\": [\"p\"], \"backend\": \"freelist\","
        " \"exit\": {\"how\": \"exit\", \"status\": 0},"
        " \"summary\": {\"definite\": {\"bytes\": 1, \"blocks\": 1}, \"indirect\": {\"bytes\": 0, \"blocks\": 0},"
        " \"reachable\": {\"bytes\": 0, \"blocks\": 0}, \"suppressed\": {\"bytes\": 0, \"blocks\": 0}, \"errors\": 0},"
        " \"leaks\": [{\"kind\": \"definite\", \"bytes\": 1, \"blocks\": 1, \"tag\": null, \"stack\":"
        " [{\"addr\": \"0x10\", \"function\": \"f\", \"file\": \"f.c\", \"line\": 3, \"object\": \"/p\"}]}],"
        " \"errors\": [], \"tags\": [], \"stats\": {\"allocs\": 1, \"frees\": 0, \"bytes_allocated\": 1,"
        " \"peak_bytes\": 1, \"current_bytes\": 1}}";
    static const struct {
        const char *from, *to;
    } breaks[] = {
        {"\"mallard\": 1", "\"mallard\": 2"},
        {"\"how\": \"exit\"", "\"how\": \"abort\""},
        {"\"addr\": \"0x10\"", "\"addr\": 16"},
        {"\"file\": \"f.c\", \"line\": 3", "\"file\": null, \"line\": 3"},
        {"\"tag\": null, ", ""},
        {"\"kind\": \"definite\", \"bytes\": 1", "\"kind\": \"lost\", \"bytes\": 1"},
        {"\"errors\": 0}", "\"errors\": -1}"},
        {"\"errors\": [],", ""},
    };
    char path[64];
    strcpy(path, "/tmp/mallard-schema-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, good, sizeof good - 1), (ssize_t)sizeof good - 1);
    close(fd);
    ck_assert_int_eq(validate(path), 0);
    for (size_t i = 0; i < sizeof breaks / sizeof *breaks; i++) {
        char bad[sizeof good + 64];
        const char *at = strstr(good, breaks[i].from);
        ck_assert_ptr_nonnull(at);
        snprintf(bad, sizeof bad, "%.*s%s%s", (int)(at - good), good, breaks[i].to, at + strlen(breaks[i].from));
        FILE *fp = fopen(path, "w");
        fputs(bad, fp);
        fclose(fp);
        ck_assert_msg(validate(path) == 1, "schema accepted: %s -> %s", breaks[i].from, breaks[i].to);
    }
    unlink(path);
}
END_TEST

START_TEST(text_report_format)
{
    struct fixture fx;
    fixture_init(&fx);
    char path[64];
    char *s = write_report(0, &fx.r, path);

    /* every line carries the prefix */
    for (const char *l = s; *l; l = strchr(l, '\n') + 1) {
        ck_assert_msg(!strncmp(l, "==mallard== ", 12), "unprefixed line: %.60s", l);
        ck_assert_ptr_nonnull(strchr(l, '\n'));
    }
    char want[8192];
    snprintf(want, sizeof want, "\n==mallard==     #0 leak_site test_report.c:%d (%s)\n", fx.line, exe_path());
    ck_assert_msg(strstr(s, want), "missing %s", want);
    snprintf(want, sizeof want, "\n==mallard==     #0 report_nodebug_exported (%s+0x%lx)\n", ML_NODEBUG_PATH,
             (unsigned long)(fx.ra_exported - loader_bias((void *)fx.ra_exported)));
    ck_assert_msg(strstr(s, want), "missing %s", want);
    snprintf(want, sizeof want, "\n==mallard==     #1 0x%lx (%s+0x%lx)\n", (unsigned long)fx.ra_hidden,
             ML_NODEBUG_PATH, (unsigned long)(fx.ra_hidden - loader_bias((void *)fx.ra_hidden)));
    ck_assert_msg(strstr(s, want), "missing %s", want);
    ck_assert_ptr_nonnull(strstr(s, "\n==mallard==     #2 0x1234 (unknown)\n"));
    ck_assert_ptr_nonnull(strstr(s, "\n==mallard==     #1 qsort "));

    /* summary */
    ck_assert_ptr_nonnull(strstr(s, "pid 4242"));
    ck_assert_ptr_nonnull(strstr(s, "prog --flag"));
    ck_assert_ptr_nonnull(strstr(s, "backend freelist"));
    ck_assert_ptr_nonnull(strstr(s, "signal 11 (SIGSEGV)"));
    ck_assert_ptr_nonnull(strstr(s, "definitely lost: 100 bytes in 1 block\n"));
    ck_assert_ptr_nonnull(strstr(s, "indirectly lost: 900 bytes in 9 blocks\n"));
    ck_assert_ptr_nonnull(strstr(s, "still reachable: 64 bytes in 1 block\n"));
    ck_assert_ptr_nonnull(strstr(s, "suppressed: 7 bytes in 2 blocks\n"));
    ck_assert_ptr_nonnull(strstr(s, "errors: 2\n"));

    /* groups in order; reachable counted, not listed */
    const char *g0 = strstr(s, "==mallard== [1] indirect leak of 900 bytes in 9 blocks\n");
    const char *g1 = strstr(s, "==mallard== [2] definite leak of 100 bytes in 1 block [tag parser]\n");
    ck_assert(g0 && g1 && g0 < g1);
    ck_assert_ptr_null(strstr(s, "3 still reachable"));

    /* errors with their stacks, in order */
    char addr[64];
    snprintf(addr, sizeof addr, "==mallard== double free of 0xdeadbeef0 (100 bytes)\n");
    const char *e0 = strstr(s, addr);
    const char *ff = strstr(s, "==mallard==   first freed by:\n==mallard==     #0 report_nodebug_exported");
    const char *ab = strstr(s, "==mallard==   allocated by:\n==mallard==     #0 leak_site");
    const char *e1 = strstr(s, "==mallard== invalid free of 0x7ffc1000\n==mallard==     #0 leak_site");
    ck_assert(e0 && ff && ab && e1 && e0 < ff && ff < ab && ab < e1);
    ck_assert_ptr_nonnull(strstr(s, "0 leak_site test_report.c"));

    /* tag table and stats */
    ck_assert_ptr_nonnull(
        strstr(s, "==mallard== parser                         10          10            8000               0            4096\n"));
    ck_assert_ptr_nonnull(strstr(s, "==mallard== net                             -           -          "
                                    "     -             100               -  (tagged by stack: 2 live blocks)\n"));
    ck_assert_ptr_nonnull(strstr(s, "==mallard== stats: 1000 allocs, 999 frees, 123456 bytes allocated"));
    free(s);
    unlink(path);

    fx.r.show_reachable = 1;
    s = write_report(0, &fx.r, path);
    snprintf(want, sizeof want, "==mallard== [3] still reachable: 64 bytes in 1 block\n==mallard==     #0 leak_site test_report.c:%d",
             fx.line);
    ck_assert_msg(strstr(s, want), "missing %s", want);
    free(s);
    unlink(path);
    dlclose(fx.nodebug);
}
END_TEST

START_TEST(write_error_is_returned)
{
    struct ml_report r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(ml_write_text(-1, &r), EBADF);
    ck_assert_int_eq(ml_write_json(-1, &r), EBADF);
}
END_TEST

/* ---- the symbol-table questions (ml_symbolize_symtab_which) ----------- */

/* libdw's dwfl_module_getsym_info as symbolize.c calls it (through the
 * ml_dw table), counted. */
static __typeof__(dwfl_module_getsym_info) *real_getsym_info;
static unsigned long getsym_calls;

static const char *counting_getsym_info(Dwfl_Module *m, int i, GElf_Sym *s, GElf_Addr *a, GElf_Word *shndx,
                                        Elf **elf, Dwarf_Addr *bias)
{
    getsym_calls++;
    return real_getsym_info(m, i, s, a, shndx, elf, bias);
}

static void count_getsym_info(void)
{
    ck_assert_int_eq(ml_dw_load(), 0);
    real_getsym_info = ml_dw.dwfl_module_getsym_info;
    ml_dw.dwfl_module_getsym_info = counting_getsym_info;
}

static int want_qsort(const char *name, const char *demangled)
{
    (void)demangled;
    return !strcmp(name, "qsort");
}

static int want_setlocale(const char *name, const char *demangled)
{
    (void)demangled;
    return !strcmp(name, "setlocale");
}

static void *libc_fn(const char *name)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    ck_assert_ptr_nonnull(libc);
    void *fn = dlsym(libc, name);
    ck_assert_ptr_nonnull(fn);
    dlclose(libc);
    return fn;
}

/* A few frames in libc (a short report's: its leaks' below-main frames,
 * a built-in pattern's function) must not read libc's whole symbol table
 * through libdw, one dwfl_module_getsym_info call per symbol: 3000
 * symbols (.dynsym) to 10000 (libc6-dbg's .symtab), most of a short
 * process's exit report. */
START_TEST(symtab_which_reads_few_symbols)
{
    ml_modules_refresh();
    count_getsym_info();
    uintptr_t qs = (uintptr_t)libc_fn("qsort"), sl = (uintptr_t)libc_fn("setlocale");
    uintptr_t ra = (uintptr_t)__builtin_return_address(0); /* in Check's runner, this program */
    ck_assert_int_eq(ml_symbolize_symtab_which(qs + 1, want_qsort), 1);
    ck_assert_int_eq(ml_symbolize_symtab_which(sl + 1, want_qsort), 0);
    ck_assert_int_eq(ml_symbolize_symtab_which(sl + 1, want_setlocale), 1);
    ck_assert_int_eq(ml_symbolize_symtab_which(ra, want_setlocale), 0);
    ck_assert_uint_lt(getsym_calls, 64);
    ml_dw.dwfl_module_getsym_info = real_getsym_info;
}
END_TEST

/* The reference: every function symbol libdw lists, sorted by (start,
 * table index), and for a pc the names of those containing it among the
 * 64 entries starting at or below it, latest first (symfns.h). */
struct ref_fn {
    uint32_t lo, len;
    int index;
};

static int ref_cmp(const void *a, const void *b)
{
    const struct ref_fn *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

struct ref_table {
    Dwfl *dwfl;
    Dwfl_Module *dm;
    uintptr_t base;
    struct ref_fn *fns;
    size_t n;
};

static void ref_open(struct ref_table *t, const struct ml_module *m)
{
    static const Dwfl_Callbacks cb = {.find_elf = dwfl_build_id_find_elf,
                                      .find_debuginfo = dwfl_build_id_find_debuginfo,
                                      .section_address = dwfl_offline_section_address};
    t->dwfl = dwfl_begin(&cb);
    ck_assert_ptr_nonnull(t->dwfl);
    dwfl_report_begin(t->dwfl);
    t->dm = dwfl_report_elf(t->dwfl, "ref", m->path, -1, m->base, false);
    dwfl_report_end(t->dwfl, NULL, NULL);
    ck_assert_ptr_nonnull(t->dm);
    t->base = m->base;
    int n = dwfl_module_getsymtab(t->dm);
    ck_assert_int_gt(n, 1);
    t->fns = calloc((size_t)n, sizeof *t->fns);
    t->n = 0;
    for (int i = 1; i < n; i++) {
        GElf_Sym s;
        GElf_Addr a;
        const char *nm = dwfl_module_getsym_info(t->dm, i, &s, &a, NULL, NULL, NULL);
        int type = GELF_ST_TYPE(s.st_info);
        if (!nm || !nm[0] || !s.st_size || s.st_size > UINT32_MAX || (type != STT_FUNC && type != STT_GNU_IFUNC) ||
            a < t->base || a - t->base > UINT32_MAX)
            continue;
        t->fns[t->n++] = (struct ref_fn){(uint32_t)(a - t->base), (uint32_t)s.st_size, i};
    }
    qsort(t->fns, t->n, sizeof *t->fns, ref_cmp);
}

#define REF_NAMES 64
struct ref_names {
    unsigned n;
    char name[REF_NAMES][256];
};

static void ref_add(struct ref_names *r, const char *nm)
{
    size_t len = strcspn(nm, "@");
    if (!len)
        len = strlen(nm);
    len = len < 255 ? len : 255;
    if (r->n < REF_NAMES) {
        memcpy(r->name[r->n], nm, len);
        r->name[r->n++][len] = '\0';
    }
}

static void ref_at(const struct ref_table *t, uintptr_t pc, struct ref_names *out)
{
    out->n = 0;
    uint32_t off = (uint32_t)(pc - t->base);
    size_t p = 0;
    while (p < t->n && t->fns[p].lo <= off)
        p++;
    for (size_t j = p; j-- > 0 && p - j <= 64;) {
        if (off - t->fns[j].lo >= t->fns[j].len)
            continue;
        GElf_Sym s;
        GElf_Addr a;
        ref_add(out, dwfl_module_getsym_info(t->dm, t->fns[j].index, &s, &a, NULL, NULL, NULL));
    }
}

/* What ml_symbolize_symtab_which hands its want, all of it (the want
 * answers 0 to see every name). */
static struct ref_names seen;
static int want_record(const char *name, const char *demangled)
{
    (void)demangled;
    ref_add(&seen, name);
    return 0;
}

/* The pcs of an object's check: in, in the middle of and at the end of
 * functions spread over the table, and those of a few named ones. */
#define CHECK_PCS 48
static size_t pc_add(uintptr_t *pcs, size_t k, uintptr_t pc)
{
    for (size_t i = 0; i < k; i++)
        if (pcs[i] == pc)
            return k; /* each pc once: a second ask is the cache's */
    pcs[k] = pc;
    return k + 1;
}

static size_t check_pcs(const struct ref_table *t, uintptr_t *pcs)
{
    size_t k = 0, step = t->n / (CHECK_PCS / 3) + 1;
    for (size_t i = 0; i < t->n && k + 3 <= CHECK_PCS; i += step) {
        k = pc_add(pcs, k, t->base + t->fns[i].lo);
        k = pc_add(pcs, k, t->base + t->fns[i].lo + t->fns[i].len / 2);
        k = pc_add(pcs, k, t->base + t->fns[i].lo + t->fns[i].len);
    }
    return k;
}

/* pcs[from, to) asked in this process; the number that differ from the
 * reference. */
static int check_range(const struct ref_table *t, const uintptr_t *pcs, size_t from, size_t to)
{
    int bad = 0;
    for (size_t i = from; i < to; i++) {
        struct ref_names want;
        ref_at(t, pcs[i], &want);
        seen.n = 0;
        ck_assert_int_eq(ml_symbolize_symtab_which(pcs[i] + 1, want_record), 0);
        int same = seen.n == want.n;
        for (unsigned j = 0; same && j < want.n; j++)
            same = !strcmp(seen.name[j], want.name[j]);
        if (!same) {
            const struct ml_module *m = ml_modules_find(pcs[i]);
            fprintf(stderr, "pc %#lx (%s+%#lx): %u names, %u expected (first: %s / %s)\n", (unsigned long)pcs[i],
                    m ? m->path : "?", m ? (unsigned long)(pcs[i] - m->base) : 0ul, seen.n, want.n,
                    seen.n ? seen.name[0] : "-", want.n ? want.name[0] : "-");
            bad++;
        }
    }
    return bad;
}

/* Every answer equals the reference, whether it comes from a scan of the
 * table in place (the first pcs a process asks about in a module: each
 * child asks ML_SYMFNS_SCANS of them) or from the index (the parent asks
 * them all).  For libc (its .symtab with libc6-dbg, else its .dynsym) and
 * for a library that has only a .dynsym. */
static void check_object(const struct ml_module *m)
{
    struct ref_table t;
    ref_open(&t, m);
    uintptr_t pcs[CHECK_PCS];
    size_t n = check_pcs(&t, pcs);
    ck_assert_uint_ge(n, 3);
    for (size_t from = 0; from < n; from += 8) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(check_range(&t, pcs, from, from + 8 < n ? from + 8 : n) ? 1 : 0);
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pcs %zu.. differ in a fresh process", from);
    }
    ck_assert_int_eq(check_range(&t, pcs, 0, n), 0);
    free(t.fns);
    dwfl_end(t.dwfl);
}

START_TEST(symtab_which_matches_reference)
{
    ml_modules_refresh();
    const struct ml_module *libc = ml_modules_find((uintptr_t)libc_fn("qsort"));
    ck_assert_ptr_nonnull(libc);
    check_object(libc);
    void *h = dlopen(ML_NODEBUG_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(h);
    void *fn = dlsym(h, "report_nodebug_exported");
    ck_assert_ptr_nonnull(fn);
    ml_modules_refresh();
    const struct ml_module *nodebug = ml_modules_find((uintptr_t)fn);
    ck_assert_ptr_nonnull(nodebug);
    check_object(nodebug);
    dlclose(h);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *m = tcase_create("modules");
    tcase_add_test(m, modules_main_program);
    tcase_add_test(m, modules_libc_and_misses);
    tcase_add_test(m, modules_dlclose_keeps_record);
    tcase_add_test(m, modules_find_during_refresh);
    tcase_set_timeout(m, 60);
    suite_add_tcase(s, m);
    TCase *y = tcase_create("symbolize");
    tcase_add_test(y, symbolize_own_function);
    tcase_add_test(y, symbolize_inlined_function);
    tcase_add_test(y, symbolize_libc);
    tcase_add_test(y, symbolize_after_dlclose);
    tcase_add_test(y, symbolize_without_debug_info);
    tcase_add_test(y, symbolize_debuglink);
    tcase_add_test(y, symbolize_never_asks_debuginfod);
    tcase_add_test(y, symbolize_unknown_address);
    tcase_add_test(y, symtab_which_reads_few_symbols);
    tcase_add_test(y, symtab_which_matches_reference);
    tcase_set_timeout(y, 60);
    suite_add_tcase(s, y);
    TCase *w = tcase_create("write");
    tcase_add_test(w, json_report_validates);
    tcase_add_test(w, json_empty_report_validates);
    tcase_add_test(w, json_escaping);
    tcase_add_test(w, json_large_report);
    tcase_add_test(w, schema_rejects_broken_reports);
    tcase_add_test(w, text_report_format);
    tcase_add_test(w, write_error_is_returned);
    tcase_set_timeout(w, 120);
    suite_add_tcase(s, w);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(report_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
