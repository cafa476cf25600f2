/* tests/conformance/hz_glibc_apis.c: blocks that glibc allocates and the
 * program frees, or the reverse (HAZARDS §2).
 *
 * Every glibc call below allocates through the interposed malloc family;
 * the program then frees (or reallocates) the result, and glibc frees
 * blocks the program allocated.  A pointer crossing into the wrong
 * allocator crashes or corrupts; the checks on contents catch the rest.
 * Exits 0 on success, or prints the failing step. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wchar.h>

#define CHECK(cond)                                                                                                   \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            fprintf(stderr, "hz_glibc_apis:%d: %s failed\n", __LINE__, #cond);                                       \
            exit(1);                                                                                                  \
        }                                                                                                             \
    } while (0)

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void free_node(void *p) { free(p); }

static void strings(void)
{
    for (int i = 0; i < 200; i++) {
        char *d = strdup("a string to duplicate");
        CHECK(d && !strcmp(d, "a string to duplicate"));
        char *n = strndup("abcdefgh", 3);
        CHECK(n && !strcmp(n, "abc"));
        char *a = NULL;
        CHECK(asprintf(&a, "%d-%s-%0500d", i, d, 7) > 500);
        CHECK(a && atoi(a) == i);
        a = realloc(a, 5000); /* glibc's block, grown by the program */
        CHECK(a != NULL);
        free(a);
        free(n);
        free(d);
        wchar_t *w = wcsdup(L"wide");
        CHECK(w && !wcscmp(w, L"wide"));
        free(w);
    }
}

static void streams(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    CHECK(m != NULL);
    for (int i = 0; i < 2000; i++)
        fprintf(m, "line %d of the memstream\n", i);
    CHECK(fclose(m) == 0);
    CHECK(buf && len > 40000 && !strncmp(buf, "line 0 of", 9));

    /* getline reads those lines back into a buffer it reallocates */
    FILE *in = fmemopen(buf, len, "r");
    CHECK(in != NULL);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, in) > 0)
        n++;
    CHECK(n == 2000);
    fclose(in);
    free(line);
    free(buf);

    /* a buffer the program allocated, grown by getdelim */
    line = malloc(2);
    cap = 2;
    static char longline[] = "a rather long line that will not fit in two bytes\n";
    in = fmemopen(longline, strlen(longline), "r");
    CHECK(in && getdelim(&line, &cap, '\n', in) == (ssize_t)strlen(longline));
    CHECK(!strcmp(line, longline));
    fclose(in);
    free(line);

    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    CHECK(setvbuf(f, NULL, _IOFBF, 1 << 16) == 0);
    char tmp[512];
    while (fgets(tmp, sizeof tmp, f))
        ;
    fclose(f);
}

static void files(const char *dir)
{
    char *rp = realpath(dir, NULL);
    CHECK(rp && rp[0] == '/');
    free(rp);
    rp = realpath("/proc/self/exe", NULL);
    CHECK(rp != NULL);
    free(rp);
    char *cwd = getcwd(NULL, 0);
    CHECK(cwd != NULL);
    free(cwd);

    struct dirent **names = NULL;
    int n = scandir("/usr/lib", &names, NULL, alphasort);
    CHECK(n > 2);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);

    DIR *d = opendir("/etc");
    CHECK(d != NULL);
    while (readdir(d))
        ;
    closedir(d);

    char *cn = canonicalize_file_name("/proc/self/exe");
    CHECK(cn && cn[0] == '/');
    free(cn);
}

static void regexes(void)
{
    for (int i = 0; i < 50; i++) {
        regex_t re;
        CHECK(regcomp(&re, "^([a-z]+)-([0-9]{2,})(x|y)*$", REG_EXTENDED) == 0);
        regmatch_t m[4];
        CHECK(regexec(&re, "abc-1234xyx", 4, m, 0) == 0);
        CHECK(m[2].rm_so == 4 && m[2].rm_eo == 8);
        CHECK(regexec(&re, "ABC-1", 0, NULL, 0) == REG_NOMATCH);
        regfree(&re);
    }
    regex_t bad;
    int rc = regcomp(&bad, "a(b", REG_EXTENDED);
    CHECK(rc != 0);
    char msg[128];
    regerror(rc, &bad, msg, sizeof msg);
    regfree(&bad);
}

static void network(void)
{
    for (int i = 0; i < 50; i++) {
        struct addrinfo hints = {0}, *res = NULL;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        hints.ai_family = AF_UNSPEC;
        CHECK(getaddrinfo("127.0.0.1", "80", &hints, &res) == 0);
        CHECK(res && res->ai_family == AF_INET);
        freeaddrinfo(res);
        CHECK(getaddrinfo("::1", "443", &hints, &res) == 0);
        freeaddrinfo(res);
    }
    struct passwd *pw = getpwuid(0); /* NSS: dlopens libnss_files */
    CHECK(pw && !strcmp(pw->pw_name, "root"));
}

static void locales(void)
{
    for (int i = 0; i < 50; i++) {
        locale_t l = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        CHECK(l != (locale_t)0);
        locale_t d = duplocale(l);
        CHECK(d != (locale_t)0);
        freelocale(d);
        freelocale(l);
    }
    CHECK(setlocale(LC_ALL, "C.UTF-8") != NULL);
    char *saved = strdup(setlocale(LC_ALL, NULL));
    CHECK(saved != NULL);
    CHECK(setlocale(LC_ALL, "C") != NULL);
    CHECK(setlocale(LC_ALL, saved) != NULL);
    free(saved);
}

static void trees(void)
{
    void *root = NULL;
    for (int i = 0; i < 5000; i++) {
        int *k = malloc(sizeof *k);
        CHECK(k != NULL);
        *k = (i * 7919) % 5003;
        int **found = tsearch(k, &root, cmp_int);
        CHECK(found != NULL);
        if (*found != k)
            free(k); /* a duplicate key */
    }
    int probe = 7919 % 5003;
    CHECK(tfind(&probe, &root, cmp_int) != NULL);
    tdestroy(root, free_node);

    /* hsearch's table and qsort's temporary buffer */
    CHECK(hcreate(1000) != 0);
    hdestroy();
    enum { N = 200000 };
    int *v = malloc(N * sizeof *v);
    CHECK(v != NULL);
    for (int i = 0; i < N; i++)
        v[i] = (int)((i * 2654435761u) % 1000003u);
    qsort(v, N, sizeof *v, cmp_int);
    for (int i = 1; i < N; i++)
        CHECK(v[i - 1] <= v[i]);
    free(v);
}

static void *dlerror_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        CHECK(dlopen("libmallard-hazard-missing.so", RTLD_NOW) == NULL);
        const char *e = dlerror();
        CHECK(e && strstr(e, "libmallard-hazard-missing.so"));
        CHECK(dlsym(RTLD_DEFAULT, "mallard_hazard_no_symbol") == NULL);
        CHECK(dlerror() != NULL);
    }
    return NULL;
}

static void dlerrors(void)
{
    /* glibc keeps dlerror strings in malloc'd per-thread state and frees
     * them on the next call and at thread exit */
    dlerror_thread(NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, dlerror_thread, NULL) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
}

static void aligned_family(void)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < 100; i++) {
        void *a = pvalloc(100 + (size_t)i);
        void *b = valloc(5000 + (size_t)i);
        void *c = memalign(256, 300 + (size_t)i);
        void *d = aligned_alloc(64, 640);
        CHECK(a && b && c && d);
        CHECK(((uintptr_t)a % ps) == 0 && ((uintptr_t)b % ps) == 0);
        CHECK(((uintptr_t)c % 256) == 0 && ((uintptr_t)d % 64) == 0);
        CHECK(malloc_usable_size(a) >= ps);
        memset(a, 1, ps);
        memset(b, 2, 5000);
        memset(c, 3, 300);
        memset(d, 4, 640);
        /* aligned blocks can be reallocated and keep their bytes */
        char *g = realloc(c, 100000);
        CHECK(g && g[0] == 3 && g[299] == 3);
        free(g);
        free(d);
        free(b);
        free(a);
    }
}

int main(int argc, char **argv)
{
    strings();
    streams();
    files(argc > 1 ? argv[1] : "/tmp");
    regexes();
    network();
    locales();
    trees();
    dlerrors();
    aligned_family();
    puts("glibc apis ok");
    return 0;
}
