// tests/fail/failxx.cc: operator new under MALLARD_FAIL: the Nth new (a
// loop of them) throws std::bad_alloc, the nothrow form returns NULL.
#include <cstdio>
#include <cstring>
#include <new>

int main(int argc, char **argv)
{
    bool nothrow = argc > 1 && !strcmp(argv[1], "nothrow");
    int fails = 0, first = -1;
    for (int i = 0; i < 400; i++) {
        int *p;
        if (nothrow) {
            p = new (std::nothrow) int[8];
            if (!p) {
                fails++;
                if (first < 0)
                    first = i;
                continue;
            }
        } else {
            try {
                p = new int[8];
            } catch (const std::bad_alloc &) {
                fails++;
                if (first < 0)
                    first = i;
                continue;
            }
        }
        p[0] = i;
        delete[] p;
    }
    printf("failures=%d first=%d\n", fails, first);
    return 0;
}
