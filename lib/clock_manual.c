/* The manual clock (libwebhook-test): time moves only when the test moves it. */
#include "internal.h"
#include <webhook/test.h>

#include <stdlib.h>
#include <stdint.h>

/* libwebhook-test.a uses only the public API of libwebhook (so it links
 * with libwebhook.so, whose wh__ internals are hidden): its own allocator. */
static void *td_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

/* ---- manual clock ---------------------------------------------------------- */
struct wh_manual_clock {
    wh_clock vt;
    int64_t now;
    int64_t wall_offset; /* wall = now + wall_offset */
};

static int64_t man_now(void *user) { return ((wh_manual_clock *)user)->now; }
static int64_t man_wall(void *user)
{
    const wh_manual_clock *c = user;
    return c->now + c->wall_offset;
}

wh_manual_clock *wh_manual_clock_new(int64_t now_ms, int64_t wall_ms)
{
    wh_manual_clock *c = td_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->vt.version = WH_CLOCK_VERSION;
    c->vt.user = c;
    c->vt.now_ms = man_now;
    c->vt.wall_ms = man_wall;
    c->now = now_ms;
    c->wall_offset = wall_ms - now_ms;
    return c;
}

void wh_manual_clock_free(wh_manual_clock *c) { free(c); }

const wh_clock *wh_manual_clock_vtable(wh_manual_clock *c)
{
    return c ? &c->vt : NULL;
}

int64_t wh_manual_clock_now(const wh_manual_clock *c) { return c ? c->now : 0; }

void wh_manual_clock_advance(wh_manual_clock *c, int64_t ms)
{
    if (c && ms > 0) c->now += ms;
}

void wh_manual_clock_set(wh_manual_clock *c, int64_t now_ms)
{
    if (c && now_ms > c->now) c->now = now_ms;
}
