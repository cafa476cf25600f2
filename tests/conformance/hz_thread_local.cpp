// tests/conformance/hz_thread_local.cpp: C++ thread_local objects whose
// destructors allocate and free at thread exit, over 1000 short threads,
// plus a pthread_key destructor doing the same (HAZARDS §5).
#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

static std::atomic<int> destroyed{0}, bad{0};
static pthread_key_t key;

struct Holder {
    std::vector<std::string> items;
    ~Holder()
    {
        // allocates again while the thread is going away
        std::string last = "destroyed after " + std::to_string(items.size()) + " items";
        if (items.size() != 10 || items[9] != std::string(200, 'q'))
            bad++;
        items.clear();
        items.shrink_to_fit();
        std::vector<int> scratch(1000, 7);
        if (scratch[999] != 7 || last.empty())
            bad++;
        destroyed++;
    }
};

static thread_local Holder holder;

static void key_dtor(void *p)
{
    std::free(p);
    void *q = std::malloc(300);
    if (!q)
        bad++;
    std::free(q);
}

int main()
{
    if (pthread_key_create(&key, key_dtor) != 0)
        return 2;
    for (int round = 0; round < 250; round++) {
        std::vector<std::thread> ts;
        for (int i = 0; i < 4; i++)
            ts.emplace_back([] {
                for (int k = 0; k < 10; k++)
                    holder.items.push_back(std::string(200, 'q'));
                pthread_setspecific(key, std::malloc(64));
            });
        for (auto &t : ts)
            t.join();
    }
    if (destroyed != 1000 || bad != 0) {
        std::fprintf(stderr, "hz_thread_local: %d destructors ran, %d bad\n", destroyed.load(), bad.load());
        return 1;
    }
    std::puts("thread_local ok");
    return 0;
}
