/* The system clock (the default).  The manual clock is in clock_manual.c. */
#include "internal.h"

#include <stdlib.h>
#include <time.h>

static int64_t sys_now(void *user)
{
    (void)user;
    return wh__mono_ns() / 1000000;
}

static int64_t sys_wall(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const wh_clock system_clock = {WH_CLOCK_VERSION, NULL, sys_now, sys_wall};

const wh_clock *wh_clock_system(void) { return &system_clock; }
