/* A leak and then _exit(0): the report is still written. */
#include <stdlib.h>
#include <unistd.h>
#include "scrub.h"

__attribute__((noinline)) static void leak(void) { ((char *)malloc(77))[0] = 1; /* @EXITLEAK */ }

int main(void)
{
    leak();
    scrub_stack();
    _exit(0);
}
