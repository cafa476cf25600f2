// operator new out of memory behaves as libstdc++'s does under mallard:
// the throwing forms run the new-handler and throw std::bad_alloc, the
// nothrow forms return nullptr, a new-handler is called until it gives up,
// and allocation works again afterwards.  The output must be the same with
// and without mallard, under every backend.  -O1 -g.
#include <cstdio>
#include <cstdlib>
#include <new>

static const std::size_t huge = std::size_t(1) << 62;
static int handler_calls;
static char *reserve;

static void release_reserve()
{
    handler_calls++;
    if (reserve) {
        delete[] reserve;
        reserve = nullptr;
    } else {
        std::set_new_handler(nullptr); // nothing left: let it throw
    }
}

int main()
{
    try {
        char *volatile p = new char[huge];
        std::printf("new[] returned %p\n", (void *)p);
    } catch (const std::bad_alloc &) {
        std::puts("new[]: bad_alloc");
    }
    try {
        long *volatile p = new long[huge / 8 - 1];
        std::printf("new returned %p\n", (void *)p);
    } catch (const std::bad_alloc &) {
        std::puts("new: bad_alloc");
    }
    char *q = new (std::nothrow) char[huge];
    std::printf("nothrow new[]: %s\n", q ? "a block" : "nullptr");
    void *a = ::operator new(huge, std::align_val_t(64), std::nothrow);
    std::printf("nothrow aligned new: %s\n", a ? "a block" : "nullptr");
    try {
        void *volatile b = ::operator new(huge, std::align_val_t(4096));
        std::printf("aligned new returned %p\n", b);
    } catch (const std::bad_alloc &) {
        std::puts("aligned new: bad_alloc");
    }
    reserve = new char[4096];
    std::set_new_handler(release_reserve);
    try {
        char *volatile p = new char[huge];
        std::printf("with a handler: %p\n", (void *)p);
    } catch (const std::bad_alloc &) {
        std::printf("with a handler: bad_alloc after %d handler calls\n", handler_calls);
    }
    std::set_new_handler(nullptr);
    int *ok = new int(7);
    int *arr = new (std::nothrow) int[4]();
    void *al = ::operator new(100, std::align_val_t(256));
    std::printf("then: %d %d %d\n", *ok, arr[3], (int)((unsigned long)al % 256));
    ::operator delete(al, std::align_val_t(256));
    delete[] arr;
    delete ok;
    return 0;
}
