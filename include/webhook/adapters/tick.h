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
 * follows ready sockets, not requests in flight) with wh_poll_budget():
 * rounds that stop starting requests once budget_us (microseconds,
 * CLOCK_MONOTONIC, from the tick's start) is spent, repeated while they
 * report outcomes and budget is left.  What a tick leaves stays queued,
 * in order, for the next one.  A round overruns the budget by at most 4
 * requests' work plus the I/O that was ready (see wh_poll_budget).
 * Returns the outcomes reported, or a negative status (what
 * wh_poll_budget returned).  Runs on the engine's thread.
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
        int64_t left = budget_us - (wh_tick_now_us_() - start);
        int n = wh_poll_budget(e, left > 0 ? left : 0);
        if (n < 0) return n;
        total += n;
        if (n == 0 || !wh_work_due(e) || wh_tick_now_us_() - start >= budget_us) break;
    }
    return total;
}

#endif /* WEBHOOK_ADAPTERS_TICK_H */
