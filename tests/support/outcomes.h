/* Outcome recording for engine tests over real sockets (header only): an
 * outcome callback that keeps a copy of each outcome, and a loop that polls
 * the engine until enough final outcomes arrived or a real-time bound
 * passed. */
#ifndef TH_OUTCOMES_H
#define TH_OUTCOMES_H

#include "harness.h"
#include <webhook/webhook.h>

#include <stdio.h>
#include <string.h>

#define OC_MAX 512

typedef struct oc_rec {
    wh_outcome_kind kind;
    int endpoint;
    int error;
    int http_status;
    uint32_t attempt;
    int64_t latency_ms;
    char id[160];
    char msg[512];
} oc_rec;

typedef struct oc_log {
    oc_rec recs[OC_MAX];
    int n;
    int finals;                  /* DELIVERED + DEAD */
} oc_log;

static inline void oc_on_outcome(void *user, const wh_outcome *o)
{
    oc_log *l = user;
    if (l->n >= OC_MAX) return;
    oc_rec *r = &l->recs[l->n++];
    r->kind = o->kind;
    r->endpoint = o->endpoint;
    r->error = o->error;
    r->http_status = o->http_status;
    r->attempt = o->attempt;
    r->latency_ms = o->latency_ms;
    snprintf(r->id, sizeof r->id, "%s", o->ev.id ? o->ev.id : "");
    snprintf(r->msg, sizeof r->msg, "%s", o->error_msg ? o->error_msg : "");
    if (o->kind != WH_RETRY) l->finals++;
}

/* Poll until `finals` final outcomes, or fail after limit_ms. */
static inline void oc_run(wh_engine *e, oc_log *l, int finals, int limit_ms)
{
    int64_t t0 = th_now_ms();
    while (l->finals < finals) {
        if (th_now_ms() - t0 > limit_ms)
            th_fail(__FILE__, __LINE__, "only %d of %d final outcomes after %d ms", l->finals,
                    finals, limit_ms);
        wh_poll(e, 20);
    }
}

/* The final outcome of endpoint ep (the last one), or NULL. */
static inline const oc_rec *oc_final(const oc_log *l, int ep)
{
    for (int i = l->n - 1; i >= 0; i--)
        if (l->recs[i].endpoint == ep && l->recs[i].kind != WH_RETRY) return &l->recs[i];
    return NULL;
}

/* An endpoint with fast retries for tests: url, max_attempts, timeout. */
static inline int oc_add(wh_engine *e, const char *url, uint32_t max_attempts,
                         uint32_t timeout_ms)
{
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.url = url;
    o.max_attempts = max_attempts;
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = timeout_ms;
    o.retry_initial_ms = 50;
    o.retry_max_ms = 200;
    int h = wh_endpoint_add(e, &o);
    if (h <= 0) th_fail(__FILE__, __LINE__, "wh_endpoint_add(%s): %s", url, wh_last_error(e));
    return h;
}

#endif
