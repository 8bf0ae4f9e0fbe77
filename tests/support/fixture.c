#include "fixture.h"

#include <stdio.h>
#include <string.h>

static void record_outcome(void *user, const wh_outcome *o)
{
    tf *f = user;
    tf_outcome r;
    memset(&r, 0, sizeof r);
    r.kind = o->kind;
    r.endpoint = o->endpoint;
    r.attempt = o->attempt;
    r.http_status = o->http_status;
    r.error = o->error;
    r.retry_in_ms = o->retry_in_ms;
    r.at = wh_manual_clock_now(f->clock);
    snprintf(r.endpoint_id, sizeof r.endpoint_id, "%s", o->endpoint_id ? o->endpoint_id : "");
    snprintf(r.id, sizeof r.id, "%s", o->ev.id ? o->ev.id : "");
    snprintf(r.data, sizeof r.data, "%.*s", (int)o->ev.data_len, o->ev.data ? o->ev.data : "");
    if (f->n_out < TF_MAX_OUT) f->out[f->n_out] = r;
    f->n_out++;
    f->latest = r;
    if (o->kind >= WH_DELIVERED && o->kind <= WH_DEAD) f->last[o->kind] = r;
    if (o->kind == WH_DELIVERED) f->delivered++;
    if (o->kind == WH_RETRY) f->retried++;
    if (o->kind == WH_DEAD) f->dead++;
    if (f->outcome_hook) f->outcome_hook(f, o);
}

static void record_health(void *user, const wh_health *h)
{
    tf *f = user;
    CHECK(h->reason != NULL);
    if (f->n_health < TF_MAX_HEALTH) {
        tf_health *r = &f->health[f->n_health];
        r->endpoint = h->endpoint;
        r->state = h->state;
        r->previous = h->previous;
        r->http_status = h->http_status;
        r->failures = h->consecutive_failures;
        r->resume_at = h->resume_at_ms;
        r->at = wh_manual_clock_now(f->clock);
        snprintf(r->reason, sizeof r->reason, "%s", h->reason);
    }
    f->n_health++;
    if (f->health_hook) f->health_hook(f, h);
}

void tf_options(tf *f, wh_engine_options *o, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->clock = wh_manual_clock_new(TF_T0, TF_WALL0);
    CHECK(f->clock);
    CHECK_EQ(wh_transport_scripted_new(NULL, f->clock, &f->t), WH_OK);
    wh_engine_options_init(o);
    o->clock = wh_manual_clock_vtable(f->clock);
    o->transport = f->t;
    o->transport_owned = 0;
    o->on_outcome = record_outcome;
    o->outcome_user = f;
    o->on_health = record_health;
    o->health_user = f;
    o->seed = seed;
}

void tf_start(tf *f, const wh_engine_options *o)
{
    int err = -99;
    f->e = wh_engine_new(o, &err);
    if (!f->e) th_fail(__FILE__, __LINE__, "wh_engine_new: %s", wh_status_name(err));
    CHECK_EQ(err, WH_OK);
}

void tf_init(tf *f, uint64_t seed)
{
    wh_engine_options o;
    tf_options(f, &o, seed);
    tf_start(f, &o);
}

void tf_done(tf *f)
{
    wh_engine_free(f->e);
    f->e = NULL;
    wh_transport_free(f->t);
    f->t = NULL;
    wh_manual_clock_free(f->clock);
    f->clock = NULL;
}

int tf_add(tf *f, const wh_endpoint_options *ep)
{
    int h = wh_endpoint_add(f->e, ep);
    if (h <= 0)
        th_fail(__FILE__, __LINE__, "wh_endpoint_add: %s: %s", wh_status_name(h),
                wh_last_error(f->e));
    return h;
}

int tf_add_url(tf *f, const char *url)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    return tf_add(f, &ep);
}

void tf_run_to_idle(tf *f, int64_t limit_ms)
{
    int64_t end = wh_manual_clock_now(f->clock) + limit_ms;
    for (;;) {
        wh_poll(f->e, 0);
        int64_t t = wh_timeout_ms(f->e);
        if (t < 0) return;
        CHECK_INT(wh_manual_clock_now(f->clock) + t, <=, end);
        wh_manual_clock_advance(f->clock, t);
    }
}

void tf_run_until(tf *f, int64_t until)
{
    for (;;) {
        wh_poll(f->e, 0);
        int64_t now = wh_manual_clock_now(f->clock);
        int64_t t = wh_timeout_ms(f->e);
        if (t < 0 || now + t > until) {
            if (until > now) wh_manual_clock_advance(f->clock, until - now);
            wh_poll(f->e, 0);
            return;
        }
        wh_manual_clock_advance(f->clock, t);
    }
}

const tf_outcome *tf_last(const tf *f)
{
    CHECK(f->n_out > 0);
    return &f->latest;
}

wh_scripted_request tf_req(const tf *f, size_t i)
{
    wh_scripted_request r;
    CHECK_EQ(wh_scripted_get(f->t, i, &r), WH_OK);
    return r;
}
