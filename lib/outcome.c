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
 * call to call.
 *
 * The pull API (outcome_queue = 1): instead of calling on_outcome, each
 * outcome is copied with its strings (event, endpoint id and URL, message)
 * into one allocation on e->pulled, and the queue is told at once, so an
 * outcome the host has not pulled yet holds no claimed job; the endpoint
 * may even be removed meanwhile.  wh_outcome_next hands them out oldest
 * first and frees the previous one.
 *
 * Calls scheduler.c, the queue's vtable and the host's callbacks. */
#include "engine.h"
#include "opevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pulled {
    wh__link link;
    wh_outcome o;
    char text[];
} pulled;

static char *put(char **p, const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s);
    char *at = *p;
    memcpy(at, s, n + 1);
    *p += n + 1;
    return at;
}

static size_t len0(const char *s) { return s ? strlen(s) + 1 : 0; }

/* Keep a copy of o for wh_outcome_next; 0, or -1 when out of memory. */
static int keep(wh_engine *e, const wh_outcome *o)
{
    size_t n = len0(o->endpoint_id) + len0(o->url) + len0(o->ev.id) + len0(o->ev.type) +
               len0(o->ev.channel) + len0(o->error_msg) + o->ev.data_len + 1;
    pulled *p = malloc(sizeof *p + n);
    if (!p) return -1;
    p->o = *o;
    char *t = p->text;
    p->o.endpoint_id = put(&t, o->endpoint_id);
    p->o.url = put(&t, o->url);
    p->o.ev.id = put(&t, o->ev.id);
    p->o.ev.type = put(&t, o->ev.type);
    p->o.ev.channel = put(&t, o->ev.channel);
    p->o.error_msg = put(&t, o->error_msg);
    memcpy(t, o->ev.data, o->ev.data_len);
    t[o->ev.data_len] = '\0';
    p->o.ev.data = t;
    wh__list_push_back(&e->pulled, &p->link);
    return 0;
}

int wh__outcome_pull(wh_engine *e, wh_outcome *out)
{
    free(e->pull_last);
    e->pull_last = NULL;
    wh__link *l = wh__list_pop_front(&e->pulled);
    if (!l) return 0;
    pulled *p = WH__CONTAINER_OF(l, pulled, link);
    *out = p->o;
    e->pull_last = p;
    return 1;
}

void wh__outcome_pull_free(wh_engine *e)
{
    free(e->pull_last);
    e->pull_last = NULL;
    wh__link *l;
    while ((l = wh__list_pop_front(&e->pulled))) free(WH__CONTAINER_OF(l, pulled, link));
}

/* A new report at the end of the queue, or NULL (out of memory). */
static wh__report *report_new(wh_engine *e)
{
    if (wh__array_reserve(&e->reports, &e->rep_cap, e->rep_n + 1, sizeof *e->reports, 64) !=
        WH_OK)
        return NULL;
    return &e->reports[e->rep_n++];
}

/* Out of memory for a report: tell the queue now; the host does not hear
 * of this one (logged). */
static void act_now(wh_engine *e, wh_ep *ep, wh_job *job, int act, int64_t due)
{
    if (act == WH__ACT_ACK) {
        e->queue->ack(e->queue->user, job);
    } else if (act == WH__ACT_RETRY) {
        e->queue->retry(e->queue->user, job, due);
        wh__sched_sooner(e, ep, wh__sched_next_wake(e, ep));
    }
}

/* The parts of report r that do not depend on the job. */
static void report_fill(wh_engine *e, wh__report *r, wh_ep *ep, wh_outcome_kind kind, int act,
                        int64_t due, const wh_outcome *tmpl, const char *msg)
{
    r->is_health = 0;
    r->act = act;
    r->due = due;
    r->ep = ep;
    r->batch_n = 0;
    if (tmpl) r->o = *tmpl;
    else memset(&r->o, 0, sizeof r->o);
    r->o.kind = kind;
    r->o.endpoint = ep->handle;
    r->o.endpoint_id = ep->conf.id;
    r->o.url = wh__url_redacted(ep->conf.url);
    /* (as snprintf "%s" would, without its cost per outcome) */
    size_t ml = msg ? strnlen(msg, sizeof r->msg - 1) : 0;
    memcpy(r->msg, msg ? msg : "", ml);
    r->msg[ml] = '\0';
    /* the answer's strings live until the transport call returns: copy */
    size_t bl = r->o.response_body ? r->o.response_body_len : 0;
    if (bl > sizeof r->resp_body) bl = sizeof r->resp_body;
    if (bl) memcpy(r->resp_body, r->o.response_body, bl);
    r->o.response_body_len = bl;
    r->has_retry_after = r->o.retry_after != NULL;
    if (r->has_retry_after)
        snprintf(r->retry_after, sizeof r->retry_after, "%s", r->o.retry_after);
    r->has_control = r->o.delivery_control != NULL;
    if (r->has_control)
        snprintf(r->control, sizeof r->control, "%s", r->o.delivery_control);
    (void)e;
}

void wh__outcome_add(wh_engine *e, wh_ep *ep, wh_outcome_kind kind, const wh_job *job,
                     int act, int64_t due, const wh_outcome *tmpl, const char *msg,
                     int64_t wall)
{
    wh__report *r = report_new(e);
    if (!r) {
        wh_job j = *job;
        wh__log(e, WH_LOG_ERROR, "out of memory reporting an outcome of endpoint %s",
                ep->conf.id);
        act_now(e, ep, &j, act, due);
        return;
    }
    report_fill(e, r, ep, kind, act, due, tmpl, msg);
    r->job = *job;
    r->o.ev = job->ev;
    /* in the queue's memory until the job is acked or retried, after the
     * host saw the outcome */
    r->o.event_headers = e->queue->version >= 4 && e->queue->enqueue_with_headers &&
                                 job->headers && job->headers_len
                             ? job->headers
                             : NULL;
    /* metrics: what the host will be told */
    wh__metrics_record(ep->metrics, &r->o, kind == WH_DELIVERED ? wall : 0);
}

void wh__outcome_add_jobs(wh_engine *e, wh_ep *ep, wh_outcome_kind kind, const wh_job *jobs,
                          size_t n, int act, int64_t due, const wh_outcome *tmpl,
                          const char *msg, int64_t wall, const char *batch_id)
{
    wh__report *r = NULL;
    if (n && e->on_batch_outcome && ep->conf.mode == WH_MODE_BATCH &&
        wh__array_reserve(&e->bjobs, &e->bjobs_cap, e->bjobs_n + n, sizeof *e->bjobs, 64) ==
            WH_OK)
        r = report_new(e);
    if (!r) { /* one outcome per job (also when out of memory for a batch) */
        for (size_t i = 0; i < n; i++)
            wh__outcome_add(e, ep, kind, &jobs[i], act, due, tmpl, msg, wall);
        return;
    }
    report_fill(e, r, ep, kind, act, due, tmpl, msg);
    r->batch_n = n;
    r->batch_off = e->bjobs_n;
    snprintf(r->batch_id, sizeof r->batch_id, "%s", batch_id ? batch_id : "");
    memcpy(e->bjobs + e->bjobs_n, jobs, n * sizeof *jobs);
    e->bjobs_n += n;
    r->job = jobs[0];
    r->o.ev = jobs[0].ev;
    r->o.event_headers = NULL; /* a batch carries none */
    /* metrics: per event, as if reported one by one */
    wh_outcome o = r->o;
    for (size_t i = 0; i < n; i++) {
        o.ev = jobs[i].ev;
        wh__metrics_record(ep->metrics, &o, kind == WH_DELIVERED ? wall : 0);
    }
}

static void op_event(wh_engine *e, const wh__report *r);

/* Hand batch report r (index i) to on_batch_outcome, then tell the queue
 * about each of its jobs. */
static void deliver_batch(wh_engine *e, size_t i)
{
    wh__report *r = &e->reports[i];
    size_t n = r->batch_n;
    if (e->op_endpoint) {
        /* operational events per event, as with one outcome per event */
        for (size_t k = 0; k < n; k++) {
            r = &e->reports[i];
            r->o.ev = e->bjobs[r->batch_off + k].ev;
            op_event(e, r);
        }
        r = &e->reports[i];
    }
    if (wh__array_reserve(&e->bviews, &e->bviews_cap, n, sizeof *e->bviews, 64) == WH_OK) {
        for (size_t k = 0; k < n; k++) e->bviews[k] = e->bjobs[r->batch_off + k].ev;
        wh_batch_outcome b;
        memset(&b, 0, sizeof b);
        b.kind = r->o.kind;
        b.endpoint = r->o.endpoint;
        b.endpoint_id = r->o.endpoint_id;
        b.url = r->o.url;
        b.batch_id = r->batch_id[0] ? r->batch_id : NULL;
        b.events = e->bviews;
        b.n_events = n;
        b.attempt = r->o.attempt;
        b.http_status = r->o.http_status;
        b.error = r->o.error;
        b.error_msg = r->o.error_msg;
        b.retry_in_ms = r->o.retry_in_ms;
        b.latency_ms = r->o.latency_ms;
        b.response_body = r->o.response_body;
        b.response_body_len = r->o.response_body_len;
        b.retry_after = r->o.retry_after;
        b.delivery_control = r->o.delivery_control;
        e->delivered_outcomes += n;
        e->in_callback++;
        e->on_batch_outcome(e->batch_outcome_user, &b);
        e->in_callback--;
        r = &e->reports[i];
    } else {
        wh__log(e, WH_LOG_ERROR, "out of memory reporting a batch of %zu outcome(s) of "
                "endpoint %s", n, r->ep->conf.id);
    }
    for (size_t k = 0; k < n; k++)
        act_now(e, r->ep, &e->bjobs[r->batch_off + k], r->act, r->due);
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
    r->batch_n = 0;
    r->act = WH__ACT_NONE;
    r->ep = (wh_ep *)ep;
    r->h = *h;
    snprintf(r->msg, sizeof r->msg, "%s", h->reason ? h->reason : "");
}

/* operational_endpoint: the event for report r (if any) to that endpoint,
 * enqueued like an emitted event routed to it alone.  Never about the
 * operational endpoint itself (no loop). */
static void op_event(wh_engine *e, const wh__report *r)
{
    int h = wh__endpoint_find(e, e->op_endpoint);
    if (h <= 0 || (size_t)h > e->n_slots || !e->eps[h - 1] || e->eps[h - 1] == r->ep) return;
    wh_ep *op = e->eps[h - 1];
    int64_t now = e->clock.now_ms(e->clock.user), wall = wh__wall_at(e, now);
    const char *type = NULL;
    char *json = r->is_health ? wh__opevent_health(&r->h, wall, &type)
                              : wh__opevent_outcome(&r->o, wall, &type);
    if (!json) return;
    char id[37];
    wh__uuid7(&e->rng, wall, id);
    wh_event_view ev = {id, type, NULL, json, strlen(json), wall};
    const char *ids[1] = {op->conf.id};
    int rc = e->queue->enqueue(e->queue->user, &ev, &op->slot, ids, 1, now);
    free(json);
    if (rc != WH_OK) {
        wh__log(e, WH_LOG_WARN, "operational event %s not queued: %s", type, wh_strerror(rc));
        return;
    }
    e->st.enqueued++;
    wh__sched_sooner(e, op, wh__work_enqueued(e, op, ev.data_len, now));
}

void wh__outcomes_deliver_all(wh_engine *e)
{
    /* a callback cannot add reports (the calls that make them return
     * WH_E_RECURSIVE from a callback), so the array stays put; index it
     * anyway */
    while (e->rep_head < e->rep_n) {
        size_t i = e->rep_head++;
        wh__report *r = &e->reports[i];
        if (r->is_health) {
            r->h.reason = r->msg;
            if (e->op_endpoint) op_event(e, r);
            r = &e->reports[i];
            if (e->on_health) {
                e->in_callback++;
                e->on_health(e->health_user, &r->h);
                e->in_callback--;
            }
            continue;
        }
        r->o.error_msg = r->msg;
        r->o.response_body = r->o.response_body_len ? r->resp_body : NULL;
        r->o.retry_after = r->has_retry_after ? r->retry_after : NULL;
        r->o.delivery_control = r->has_control ? r->control : NULL;
        if (r->batch_n) {
            deliver_batch(e, i);
            continue;
        }
        if (e->op_endpoint) op_event(e, r);
        r = &e->reports[i];
        e->delivered_outcomes++;
        if (e->outcome_queue) {
            if (keep(e, &r->o) != 0)
                wh__log(e, WH_LOG_ERROR, "out of memory keeping an outcome of endpoint %s",
                        r->ep->conf.id);
        } else if (e->on_outcome) {
            e->in_callback++;
            e->on_outcome(e->outcome_user, &r->o);
            e->in_callback--;
            r = &e->reports[i];
        }
        act_now(e, r->ep, &r->job, r->act, r->due);
    }
    e->rep_head = e->rep_n = 0;
    e->bjobs_n = 0;
}
