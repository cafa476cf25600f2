// Mismatched deallocations, as valgrind reports them: free() of a new
// block, delete of a new[] block, delete[] of a malloc block; the last one
// in a thread named "mm-worker".  Each block is still released.  -O1 -g.
#include <cstdio>
#include <cstdlib>
#include <pthread.h>

struct Pair {
    long a, b;
};

__attribute__((noinline)) static Pair *make_pair() { return new Pair{1, 2}; /* @NEWPAIR */ }
__attribute__((noinline)) static void free_pair(Pair *p) { std::free(p); /* @FREEPAIR */ }
__attribute__((noinline)) static int *make_array() { return new int[10]; /* @NEWARR */ }
__attribute__((noinline)) static void delete_array(int *p) { delete p; /* @DELARR */ }
__attribute__((noinline)) static char *make_buffer() { return static_cast<char *>(std::malloc(40)); /* @MALLOCBUF */ }
__attribute__((noinline)) static void delete_buffer(char *p) { delete[] p; /* @DELBUF */ }

static void *worker(void *)
{
    pthread_setname_np(pthread_self(), "mm-worker");
    delete_buffer(make_buffer());
    return nullptr;
}

int main()
{
    free_pair(make_pair());
    delete_array(make_array());
    pthread_t t;
    pthread_create(&t, nullptr, worker, nullptr);
    pthread_join(t, nullptr);
    // matched pairs are no error
    delete make_pair();
    delete[] make_array();
    std::free(make_buffer());
    std::puts("mismatched");
    return 0;
}
