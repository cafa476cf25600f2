/* report/outfile.c: the report's destination and the files a user names
 * (outfile.h).  Runs at exit, with the trace guard set; no stdio. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../core/fmt.h"
#include "../core/meta.h"
#include "../core/os.h"
#include "../core/options.h"
#include "finish.h"
#include "outfile.h"
#include "path.h"
#include "report.h"

int ml_outfile_secure(const struct ml_options *o)
{
    if (!getauxval(AT_SECURE))
        return 0;
    static int said;
    if ((o->report[0] || o->suppressions[0]) && !__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        ml_say("secure-execution mode (setuid, setgid or capabilities): MALLARD_REPORT and "
               "MALLARD_SUPPRESSIONS are ignored, the report goes to stderr");
    return 1;
}

static int same_file(int fd, unsigned long dev, unsigned long ino)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

int ml_outfile_stderr(void)
{
    /* Programs such as sort and ls close fd 2 before they exit: the copy
     * taken at start-up still reaches the user's stderr.  Either number
     * may have been reused for a file of the program's own since. */
    if (!ml_tr.stderr_known)
        return -1;
    if (same_file(ml_tr.stderr_fd, ml_tr.stderr_dev, ml_tr.stderr_ino))
        return ml_tr.stderr_fd;
    if (same_file(2, ml_tr.stderr_dev, ml_tr.stderr_ino))
        return 2;
    return -1;
}

/* A reason naming errno, for what has no word of its own (strerror may
 * allocate for its locale). */
static const char *errno_reason(int err)
{
    static char buf[32];
    ml_fmt(buf, sizeof buf, "errno %d", err);
    return buf;
}

int ml_outfile_open(const char *path, int how, int *owned, const char **why)
{
    *owned = 0;
    if (!strcmp(path, "/dev/stderr") || !strcmp(path, "/dev/fd/2") || !strcmp(path, "/proc/self/fd/2"))
        return ml_outfile_stderr();
    int fd = open(path,
                  O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                      (how == ML_OUT_NEW ? O_EXCL : 0),
                  0600);
    if (fd < 0) {
        *why = errno == EEXIST   ? "it exists"
               : errno == ELOOP  ? "it is a symbolic link"
               : errno == ENXIO  ? "it is a FIFO with no reader"
               : errno == EISDIR ? "it is a directory"
                                 : errno_reason(errno);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *why = errno_reason(errno);
        close(fd);
        return -1;
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
        *owned = 1; /* /dev/null: the user asked for no report */
        return fd;
    }
    if (!S_ISREG(st.st_mode)) {
        /* the terminal or pipe stderr already is: fine, write there */
        close(fd);
        if (ml_tr.stderr_known && st.st_dev == ml_tr.stderr_dev && st.st_ino == ml_tr.stderr_ino)
            return ml_outfile_stderr();
        *why = S_ISFIFO(st.st_mode) ? "it is a FIFO" : "it is not a regular file";
        return -1;
    }
    if (st.st_uid != geteuid() || st.st_nlink != 1) {
        close(fd);
        *why = st.st_uid != geteuid() ? "it belongs to another user" : "it has more than one link";
        return -1;
    }
    /* O_NONBLOCK is only for the open itself */
    fcntl(fd, F_SETFL, O_APPEND);
    if (how == ML_OUT_REPLACE && ftruncate(fd, 0) != 0) {
        *why = errno_reason(errno);
        close(fd);
        return -1;
    }
    *owned = 1;
    return fd;
}

/* A value echoed in a message: its head and tail, so that the message
 * itself always fits in one line. */
static const char *shorten(const char *s, char *buf, size_t cap)
{
    size_t len = strlen(s);
    if (len < cap)
        return s;
    size_t keep = (cap - 4) / 2;
    memcpy(buf, s, keep);
    memcpy(buf + keep, "...", 3);
    memcpy(buf + keep + 3, s + len - (cap - 4 - keep), cap - 4 - keep);
    buf[cap - 1] = '\0';
    return buf;
}

int ml_outfile_report(const struct ml_options *o, int *owned)
{
    *owned = 0;
    if (!o->report[0] || ml_outfile_secure(o))
        return ml_outfile_stderr();
    char path[ML_PATH_MAX], shown[200];
    const char *why = "";
    int fd = -1;
    for (unsigned n = 1; n <= 100000; n++) {
        int flags = ml_report_path(o->report, (int)getpid(), ml_modules_exe(), n, path, sizeof path);
        if (flags < 0) {
            ml_say("MALLARD_REPORT=%s is too long once expanded (at most %d bytes); writing the report to "
                   "stderr",
                   shorten(o->report, shown, sizeof shown), ML_PATH_MAX - 1);
            return ml_outfile_stderr();
        }
        /* %n: a new file each time; %p: this process's own file, replaced
         * (a pid is reused); a fixed path: shared, appended */
        int how = (flags & ML_PATH_HAS_COUNTER) ? ML_OUT_NEW
                  : (flags & ML_PATH_HAS_PID)   ? ML_OUT_REPLACE
                                                : ML_OUT_APPEND;
        why = "";
        fd = ml_outfile_open(path, how, owned, &why);
        if (fd >= 0 || how != ML_OUT_NEW || errno != EEXIST)
            break;
    }
    if (fd < 0 && *why) {
        ml_say("MALLARD_REPORT: %s is refused (%s); writing the report to stderr",
               shorten(path, shown, sizeof shown), why);
        return ml_outfile_stderr();
    }
    return fd;
}

char *ml_outfile_read(const char *path, size_t *len, const char **why)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        *why = errno == ENXIO ? "it is a FIFO with no writer" : errno_reason(errno);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *why = errno_reason(errno);
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = S_ISDIR(st.st_mode)    ? "it is a directory"
               : S_ISFIFO(st.st_mode) ? "it is a FIFO"
                                      : "it is not a regular file";
        close(fd);
        return NULL;
    }
    size_t want = (size_t)st.st_size, n = 0;
    char *buf = ml_meta_alloc(want + 1);
    if (!buf) {
        *why = "not enough memory";
        close(fd);
        return NULL;
    }
    while (n < want) {
        ssize_t r = read(fd, buf + n, want - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* shrank while read: what was read counts */
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

void ml_outfile_lock(int fd)
{
    /* Other processes appending to the same file hold it only while they
     * write; never wait more than about two seconds for them. */
    for (int i = 0; i < 200; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 || (errno != EWOULDBLOCK && errno != EINTR))
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void ml_outfile_unlock(int fd) { flock(fd, LOCK_UN); }
