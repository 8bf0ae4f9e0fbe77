/* The engine's queue of reports: outcomes and health changes made during a
 * call (wh_poll, wh_flush, wh_endpoint_remove, wh_endpoint_enable,
 * wh_engine_free) wait here, in the order they happened, and are handed to
 * the host's callbacks when the call has finished its work on the engine
 * (the curl_multi_info_read idea).  So no host code runs while a
 * scheduling loop holds engine state, and a callback may call wh_emit().
 *
 * An outcome keeps its job claimed until the host has seen it: the event it
 * points to stays in the queue's memory, and only then is the queue told
 * (ack, or retry at the decided time, after which the endpoint is
 * rescheduled).  The reports live in one engine-owned array, reused from
 * call to call; a pull API (wh_outcome_next) can hand them out one by one
 * with their strings valid until the next call.
 *
 * Calls scheduler.c, the queue's vtable and the host's callbacks. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A new report at the end of the queue, or NULL (out of memory). */
static wh__report *report_new(wh_engine *e)
{
    if (e->rep_n == e->rep_cap) {
        size_t cap = e->rep_cap ? e->rep_cap * 2 : 64;
        wh__report *r = realloc(e->reports, cap * sizeof *r);
        if (!r) return NULL;
        e->reports = r;
        e->rep_cap = cap;
    }
    return &e->reports[e->rep_n++];
}

/* Out of memory for a report: tell the queue now; the host does not hear
 * of this one (logged). */
static void act_now(wh_engine *e, wh_job *job, int act, int64_t due)
{
    if (act == WH__ACT_ACK) e->queue->ack(e->queue->user, job);
    else if (act == WH__ACT_RETRY) e->queue->retry(e->queue->user, job, due);
}

void wh__outcome_add(wh_engine *e, wh_ep *ep, wh_outcome_kind kind, const wh_job *job,
                     int act, int64_t due, const wh_outcome *tmpl, const char *msg)
{
    wh__report *r = report_new(e);
    if (!r) {
        wh_job j = *job;
        wh__log(e, WH_LOG_ERROR, "out of memory reporting an outcome of endpoint %s",
                ep->conf.id);
        act_now(e, &j, act, due);
        return;
    }
    r->is_health = 0;
    r->act = act;
    r->due = due;
    r->ep = ep;
    r->job = *job;
    if (tmpl) r->o = *tmpl;
    else memset(&r->o, 0, sizeof r->o);
    r->o.kind = kind;
    r->o.endpoint = ep->handle;
    r->o.endpoint_id = ep->conf.id;
    r->o.url = ep->conf.url;
    r->o.ev = job->ev;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
}

void wh__health_report(wh_engine *e, const wh_ep *ep, const wh_health *h)
{
    wh__report *r = report_new(e);
    if (!r) {
        wh__log(e, WH_LOG_ERROR, "out of memory reporting a health change of endpoint %s",
                ep->conf.id);
        return;
    }
    r->is_health = 1;
    r->act = WH__ACT_NONE;
    r->ep = (wh_ep *)ep;
    r->h = *h;
    snprintf(r->msg, sizeof r->msg, "%s", h->reason ? h->reason : "");
}

void wh__outcomes_deliver(wh_engine *e)
{
    /* a callback cannot add reports (the calls that make them return
     * WH_E_RECURSIVE from a callback), so the array stays put; index it
     * anyway */
    while (e->rep_head < e->rep_n) {
        size_t i = e->rep_head++;
        wh__report *r = &e->reports[i];
        if (r->is_health) {
            r->h.reason = r->msg;
            if (e->on_health) {
                e->in_callback++;
                e->on_health(e->health_user, &r->h);
                e->in_callback--;
            }
            continue;
        }
        r->o.error_msg = r->msg;
        e->delivered_outcomes++;
        if (e->on_outcome) {
            e->in_callback++;
            e->on_outcome(e->outcome_user, &r->o);
            e->in_callback--;
            r = &e->reports[i];
        }
        if (r->act == WH__ACT_ACK) {
            e->queue->ack(e->queue->user, &r->job);
        } else if (r->act == WH__ACT_RETRY) {
            e->queue->retry(e->queue->user, &r->job, r->due);
            wh__sched_sooner(e, r->ep, wh__sched_next_wake(e, r->ep));
        }
    }
    e->rep_head = e->rep_n = 0;
}
