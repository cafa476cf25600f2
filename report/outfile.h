/* report/outfile.h: where the report goes, and how files named by the user
 * are opened (the report and the suppressions file).
 *
 * Security model: mallard runs inside every process, setuid ones included
 * when it is installed through /etc/ld.so.preload.  So it opens nothing a
 * user names while the process runs in secure-execution mode (AT_SECURE:
 * setuid, setgid, file capabilities), never follows a symlink at a report
 * path, never truncates, and never writes into a file another user owns,
 * a FIFO, a device or a directory.  Every refusal says so on stderr.
 */
#ifndef ML_REPORT_OUTFILE_H
#define ML_REPORT_OUTFILE_H

#include <stddef.h>

struct ml_options;

/* Secure-execution mode (getauxval(AT_SECURE)): path options are ignored.
 * Says so on stderr once, the first time it is asked while a path option
 * is set. */
int ml_outfile_secure(const struct ml_options *o);

/* The program's stderr as it was at start-up: mallard's copy of it, or fd
 * 2, whichever is still that same file (dev and inode); -1 when neither is
 * (the program closed it and reused the numbers for its own files). */
int ml_outfile_stderr(void);

/* How ml_outfile_open treats an existing file. */
enum ml_out_how {
    ML_OUT_APPEND,  /* a path shared by several processes: append */
    ML_OUT_REPLACE, /* this process's own file (%p): emptied first */
    ML_OUT_NEW,     /* must not exist yet (%n): O_EXCL, errno EEXIST if it does */
};

/* Opens path for a report: never follows a final symlink (O_NOFOLLOW),
 * never blocks (O_NONBLOCK: a FIFO with no reader fails at once), creates it
 * mode 0600, and accepts an existing file only if it is a regular file with
 * one link owned by the effective user (checked on the open fd, before any
 * truncation), or /dev/null.  "/dev/stderr" and a path that opens the file
 * stderr already is give stderr.  Returns an fd (*owned 1: the caller closes
 * it) or -1 with *why set to a short reason ("" when stderr itself is gone). */
int ml_outfile_open(const char *path, int how, int *owned, const char **why);

/* The fd the report goes to (*owned 1: close it after): MALLARD_REPORT
 * expanded (report/path.h: %p, %e, %n), or stderr when it is empty, refused or cannot be
 * opened (saying why).  -1: nowhere (see ml_outfile_stderr). */
int ml_outfile_report(const struct ml_options *o, int *owned);

/* Reads a whole regular file (opened non-blocking, so a FIFO cannot stall
 * the exit) into a meta-heap buffer with a NUL after the data.  NULL with
 * *why set when path is not a regular file or cannot be read. */
char *ml_outfile_read(const char *path, size_t *len, const char **why);

/* Writes buf to a report fd under an advisory lock (flock), so that reports
 * of several processes appended to one file do not interleave; the lock is
 * tried for a bounded time only, never waited on forever. */
int ml_outfile_write(int fd, const char *buf, size_t len);
void ml_outfile_lock(int fd);
void ml_outfile_unlock(int fd);

#endif
