/*
 * libwebhook in a fixed-tick loop (a game server's frame), header-only.
 *
 *     for (;;) {                          // 60 Hz
 *         simulate();                     // may wh_emit()
 *         wh_tick(e, 500);                // at most ~0.5 ms for webhooks
 *         sleep_until_next_frame();
 *     }
 *
 * wh_tick returns at once, without a system call, when nothing is in
 * flight or due (wh_work_due).  Otherwise it drives the engine through
 * wh_fd()'s epoll set (set up on the first tick that has work; cost
 * follows ready sockets, not requests in flight): one wh_poll(e, 0), and
 * more while they keep reporting outcomes and budget_us (microseconds,
 * CLOCK_MONOTONIC) is not spent.  A single wh_poll can take longer than a
 * tiny budget: the budget bounds the repeats, not one call.  Returns the
 * outcomes reported, or a negative status (what wh_poll returned).  Runs on the engine's thread.
 */
#ifndef WEBHOOK_ADAPTERS_TICK_H
#define WEBHOOK_ADAPTERS_TICK_H

#include <time.h>
#include <webhook/webhook.h>

static inline int64_t wh_tick_now_us_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int wh_tick(wh_engine *e, int64_t budget_us)
{
    if (!wh_work_due(e)) return 0;
    /* the epoll set once it can be made (not with a loop attached, nor
     * while requests started by an earlier wh_poll are in flight) */
    (void)wh_fd(e);
    int64_t start = wh_tick_now_us_();
    int total = 0;
    for (;;) {
        int n = wh_poll(e, 0);
        if (n < 0) return n;
        total += n;
        if (n == 0 || !wh_work_due(e) || wh_tick_now_us_() - start >= budget_us) break;
    }
    return total;
}

#endif /* WEBHOOK_ADAPTERS_TICK_H */
