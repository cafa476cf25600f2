/* tests/unit/unit_owner.c: the owner map while mappings come and go,
 * called directly (no preload).
 *
 * The leak scan reads any granule the owner map gives to no one as the
 * program's own memory.  A mapping mallard gives back must therefore never
 * read as no one's while its pages are still there: ml_os_unmap_user used
 * to clear the owner first and munmap after, and a scan on another thread
 * that came in between could read, say, a block table's old slots as roots
 * (every block they name would look reachable).  And a granule cleared after its munmap
 * must not be one that another mapping has claimed since.
 *
 *   - gone_then_none: while one thread maps, marks and gives back mappings
 *     (ml_os_unmap_user, and the tail of a shrinking ml_os_remap_user),
 *     another reads the owner of each one and, whenever it reads no owner,
 *     loads the mapping's marker (under a SIGSEGV handler: the load faults
 *     once the pages are gone): it must never succeed for the same round.
 *   - clear_gone_keeps_others: ml_os_clear_gone sets only granules still
 *     marked GONE back to no owner; a granule another mapping claimed in
 *     between keeps its owner.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/os.h"
#include "../../core/owner.h"

#define ROUNDS 20000
#define MAP_BYTES (4 * ML_OS_GRANULE)

static int failed;

static void fail(const char *what)
{
    printf("FAIL: %s\n", what);
    failed = 1;
}

/* round r's mapping: published as (round, base), seqlock style */
static uint64_t pub_round;
static uintptr_t pub_base;
static int done;
static unsigned long seen_none, seen_readable;

/* A direct load (a system call that copies, process_vm_readv, came too
 * late to see the window): a fault on an unmapped address jumps back. */
static __thread sigjmp_buf read_jb;
static __thread volatile int reading;

static void on_fault(int sig)
{
    if (reading)
        siglongjmp(read_jb, 1);
    signal(sig, SIG_DFL);
}

static int read_word(uintptr_t a, uint64_t *out)
{
    if (sigsetjmp(read_jb, 1)) {
        reading = 0;
        return 0;
    }
    reading = 1;
    *out = *(volatile uint64_t *)a;
    reading = 0;
    return 1;
}

static void *watcher(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        uint64_t r1 = __atomic_load_n(&pub_round, __ATOMIC_ACQUIRE);
        uintptr_t base = __atomic_load_n(&pub_base, __ATOMIC_ACQUIRE);
        if (!base)
            continue;
        /* the last granule: the one a shrink gives back too */
        uintptr_t a = base + MAP_BYTES - ML_OS_GRANULE;
        if (ml_os_owner((void *)a) != ML_OWNER_NONE)
            continue;
        seen_none++;
        uint64_t w;
        int ok = read_word(a, &w);
        uint64_t r2 = __atomic_load_n(&pub_round, __ATOMIC_ACQUIRE);
        if (ok && w == r1 && r1 == r2) {
            seen_readable++;
        }
    }
    return NULL;
}

static void gone_then_none(void)
{
    signal(SIGSEGV, on_fault);
    signal(SIGBUS, on_fault);
    pthread_t th;
    pthread_create(&th, NULL, watcher, NULL);
    for (uint64_t r = 1; r <= ROUNDS; r++) {
        char *p = ml_os_map_user(MAP_BYTES, 0, ML_OWNER_META, 0);
        if (!p) {
            fail("ml_os_map_user failed");
            break;
        }
        for (size_t g = 0; g < MAP_BYTES; g += ML_OS_GRANULE)
            memcpy(p + g, &r, sizeof r);
        __atomic_store_n(&pub_round, r, __ATOMIC_RELEASE);
        __atomic_store_n(&pub_base, (uintptr_t)p, __ATOMIC_RELEASE);
        if (r & 1) {
            ml_os_unmap_user(p, MAP_BYTES);
        } else {
            /* the tail leaves through a shrink, the rest through an unmap */
            char *q = ml_os_remap_user(p, MAP_BYTES, MAP_BYTES - ML_OS_GRANULE, ML_OWNER_META);
            if (!q) {
                fail("ml_os_remap_user failed");
                break;
            }
            if (ml_os_owner(q) != ML_OWNER_META)
                fail("a shrunk mapping lost its owner");
            ml_os_unmap_user(q, MAP_BYTES - ML_OS_GRANULE);
        }
        __atomic_store_n(&pub_base, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&pub_round, r + ROUNDS, __ATOMIC_RELEASE); /* no round's marker */
        if (ml_os_owner(p) != ML_OWNER_NONE)
            fail("a mapping given back still has an owner");
    }
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    printf("gone_then_none: %d rounds; no owner seen %lu times, of which readable with its marker %lu\n",
           ROUNDS, seen_none, seen_readable);
    if (seen_readable)
        fail("a mapping read as no one's while its pages were still there");
}

static void clear_gone_keeps_others(void)
{
    char *p = ml_os_map_user(2 * ML_OS_GRANULE, 0, ML_OWNER_FREELIST, 0);
    if (!p) {
        fail("ml_os_map_user failed");
        return;
    }
    ml_os_set_owner(p, 2 * ML_OS_GRANULE, ML_OWNER_GONE);
    /* another mapping claims the second granule before the first is cleared */
    ml_os_set_owner(p + ML_OS_GRANULE, ML_OS_GRANULE, ML_OWNER_META);
    ml_os_clear_gone(p, 2 * ML_OS_GRANULE);
    if (ml_os_owner(p) != ML_OWNER_NONE)
        fail("clear_gone left a GONE granule owned");
    if (ml_os_owner(p + ML_OS_GRANULE) != ML_OWNER_META)
        fail("clear_gone cleared a granule another mapping had claimed");
    ml_os_set_owner(p, 2 * ML_OS_GRANULE, ML_OWNER_FREELIST);
    ml_os_unmap_user(p, 2 * ML_OS_GRANULE);
    if (ml_os_owner(p) != ML_OWNER_NONE || ml_os_owner(p + ML_OS_GRANULE) != ML_OWNER_NONE)
        fail("ml_os_unmap_user left an owner behind");
}

int main(void)
{
    clear_gone_keeps_others();
    gone_then_none();
    if (!failed)
        printf("owner ok\n");
    return failed;
}
