/* tests/unit/unit_classes.c: the freelist backend's size classes, checked
 * once here instead of at every process start: each size from 1 byte to
 * the largest small class maps to the smallest class that holds it. */
#include <stdio.h>

#include "../../core/freelist.h"

int main(void)
{
    int rc = ml_fl_classes_check();
    if (rc != 0) {
        printf("FAIL: the class arithmetic and the class table disagree\n");
        return 1;
    }
    printf("size classes ok\n");
    return 0;
}
