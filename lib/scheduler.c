/* Scheduling: when each endpoint next has work.  The engine keeps its
 * endpoints in one heap by wake time (wh_ep_sched.wake); an endpoint leaves
 * it when it has nothing to do or no room to do it (every in-flight slot
 * taken: a completion puts it back).  The policy's gates (health state,
 * rate limit) can only make a wake time later.
 * Calls policy.c, ds.c and the queue's next_due. */
#include "engine.h"

void wh__sched_init(wh_ep_sched *s)
{
    s->wake = (wh__heap_node)WH__HEAP_NODE_INIT;
    s->pass = 0;
    s->again = NULL;
}

int wh__sched_reserve(wh_engine *e, size_t n)
{
    return wh__heap_reserve(&e->wake, n);
}

void wh__sched_cancel(wh_engine *e, wh_ep *ep)
{
    if (ep->sched.wake.idx == SIZE_MAX) return;
    wh__heap_remove(&e->wake, &ep->sched.wake);
    ep->sched.wake.key = INT64_MAX;
}

void wh__sched_at(wh_engine *e, wh_ep *ep, int64_t when)
{
    uint32_t lim = wh__policy_in_flight_limit(&ep->pol, &ep->health);
    when = wh__policy_gate(&ep->pol, &ep->health, &ep->work.rate, when);
    if (when == INT64_MAX || ep->work.in_flight >= lim) {
        wh__sched_cancel(e, ep);
        return;
    }
    /* wh__sched_reserve() at endpoint add makes room for every endpoint, so
     * a push always fits */
    if (ep->sched.wake.idx == SIZE_MAX) wh__heap_push(&e->wake, &ep->sched.wake, when);
    else wh__heap_update(&e->wake, &ep->sched.wake, when);
}

void wh__sched_sooner(wh_engine *e, wh_ep *ep, int64_t when)
{
    if (ep->sched.wake.idx == SIZE_MAX || ep->sched.wake.key > when)
        wh__sched_at(e, ep, when);
}

static int64_t held_min_due(const wh_ep *ep)
{
    int64_t t = INT64_MAX;
    for (const wh__link *l = ep->work.held.head; l; l = l->next) {
        const wh_delivery *d = WH__CONTAINER_OF(l, wh_delivery, link);
        if (d->due < t) t = d->due;
    }
    return t;
}

int64_t wh__sched_next_wake(wh_engine *e, wh_ep *ep)
{
    int64_t t = held_min_due(ep);
    if (ep->pol.ordered && ep->work.held.head) return t; /* the failing head blocks */
    int64_t q = e->queue->next_due(e->queue->user, ep->slot);
    if (q != INT64_MAX) {
        if (ep->conf.mode == WH_MODE_BATCH && !e->flushing &&
            ep->work.fresh < ep->conf.batch_max_events &&
            ep->work.fresh_bytes < ep->conf.batch_max_bytes)
            q += ep->conf.batch_linger_ms;
        if (q < t) t = q;
    }
    return t;
}

void wh__sched_update(wh_engine *e, wh_ep *ep)
{
    wh__sched_at(e, ep, wh__sched_next_wake(e, ep));
}

wh_ep *wh__sched_pop_due(wh_engine *e, int64_t now)
{
    wh__heap_node *top = wh__heap_top(&e->wake);
    if (!top || top->key > now) return NULL;
    wh__heap_remove(&e->wake, top);
    top->key = INT64_MAX;
    return WH__CONTAINER_OF(top, wh_ep, sched.wake);
}

