/* tests/cli/stats_counts.c N M [t]: N mallocs of 100 bytes, then M frees, on a
 * second thread when a third argument is given; writes "ok" with write(2)
 * only, so stdio allocates nothing of its own. */
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>
static int n, m;
static void *work(void *a) { (void)a; void *v[1000]; for (int i = 0; i < n; i++) v[i] = malloc(100); for (int i = 0; i < m; i++) free(v[i]); return 0; }
int main(int c, char **v) { n = atoi(v[1]); m = atoi(v[2]); int th = c > 3; if (th) { pthread_t t; pthread_create(&t, 0, work, 0); pthread_join(t, 0);} else work(0); write(1, "ok\n", 3); return 0; }
