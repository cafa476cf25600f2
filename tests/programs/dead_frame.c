/* A leak whose only copies are in a returned function's frame: at exit the
 * frame is dead (valgrind: 40 bytes in 1 block definitely lost).  No
 * scrub_stack here, on purpose: the report must not read below the frame
 * that called exit.  With an argument the program ends by _exit instead. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) static void hold(void)
{
    volatile char *copies[256];
    char *p = malloc(40); /* @DEAD */
    p[0] = 'd';
    for (int i = 0; i < 256; i++)
        copies[i] = p;
    printf("%c\n", copies[255][0]);
}

int main(int argc, char **argv)
{
    (void)argv;
    hold();
    fflush(stdout);
    if (argc > 1)
        _exit(0);
    return 0;
}
