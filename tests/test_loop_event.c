/* The libevent adapter (<webhook/adapters/libevent.h>): on the manual
 * clock with the scripted transport, and over real HTTP to an in-process
 * receiver on 127.0.0.1. */
#include "fixture.h"
#include "http_receiver.h"
#include <webhook/adapters/libevent.h>

#include <stdlib.h>
#include <string.h>

typedef struct st {
    struct event_base *base;
    long want, delivered, other;
} st;

static void on_outcome(void *user, const wh_outcome *o)
{
    st *s = user;
    if (o->kind == WH_DELIVERED) s->delivered++;
    else s->other++;
    if (s->delivered + s->other >= s->want) event_base_loopexit(s->base, NULL);
}

static void event_manual_clock(void)
{
    tf f;
    wh_engine_options o;
    tf_options(&f, &o, 1);
    st s;
    memset(&s, 0, sizeof s);
    s.base = event_base_new();
    CHECK(s.base);
    s.want = 5;
    tf_start(&f, &o);
    tf_add_url(&f, TF_URL);
    f.user = &s;
    CHECK_EQ(wh_libevent_attach(f.e, s.base), WH_OK);
    CHECK_EQ(wh_libevent_attach(f.e, s.base), WH_E_EXISTS);
    for (int i = 0; i < 5; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    /* the fixture records; stop once five are in */
    for (int k = 0; k < 100 && f.delivered < 5; k++) event_base_loop(s.base, EVLOOP_ONCE);
    CHECK_EQ(f.delivered, 5);
    for (int i = 0; i < 5; i++) CHECK_EQ(f.out[i].at, TF_T0);
    /* idle: only the wakeup event is pending, no timer */
    CHECK_EQ(event_base_get_num_events(s.base, EVENT_BASE_COUNT_ADDED), 1);
    wh_libevent_detach(f.e);
    CHECK(wh_loop_attached(f.e) == NULL);
    CHECK_EQ(event_base_get_num_events(s.base, EVENT_BASE_COUNT_ADDED), 0);
    tf_done(&f);
    event_base_free(s.base);
}

static void event_http(void)
{
    th_recv *rv = th_recv_start(NULL);
    CHECK(rv);
    st s;
    memset(&s, 0, sizeof s);
    s.base = event_base_new();
    CHECK(s.base);
    s.want = 1000;
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.on_outcome = on_outcome;
    o.outcome_user = &s;
    int err;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(rv);
    ep.max_in_flight = 32;
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    CHECK_EQ(wh_libevent_attach(e, s.base), WH_OK);
    for (int i = 0; i < 1000; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    event_base_dispatch(s.base);
    CHECK_EQ(s.delivered, 1000);
    CHECK_EQ(s.other, 0);
    CHECK_EQ(th_recv_count(rv), 1000);
    wh_libevent_detach(e);
    wh_engine_free(e);
    event_base_free(s.base);
    th_recv_stop(rv);
}

TH_MAIN(TH_CASE(event_manual_clock), TH_CASE(event_http))
