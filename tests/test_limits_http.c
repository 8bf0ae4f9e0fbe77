/* Limits, isolation and health over real HTTP on 127.0.0.1 (libcurl
 * transport, libmicrohttpd receivers).  Timing checks are tolerant: the
 * machine is shared. */
#include "harness.h"
#include "http_receiver.h"
#include <webhook/webhook.h>

#include <stdlib.h>
#include <string.h>

typedef struct app {
    wh_engine *e;
    int delivered[4], failed[4], dead;  /* by endpoint handle */
    int64_t b_done_ms;                  /* when endpoint 2 had all of N */
    int64_t a_first_fail_ms;            /* endpoint 1's first failed attempt */
    int a_first_error;
    int n_expected;
    int64_t paused_ms, resumed_ms;
} app;

static void on_outcome(void *user, const wh_outcome *o)
{
    app *a = user;
    int ep = o->endpoint < 4 ? o->endpoint : 0;
    if (o->kind == WH_DELIVERED) {
        a->delivered[ep]++;
        if (ep == 2 && a->delivered[2] == a->n_expected) a->b_done_ms = th_now_ms();
    } else {
        a->failed[ep]++;
        if (o->kind == WH_DEAD) a->dead++;
        if (ep == 1 && !a->a_first_fail_ms) {
            a->a_first_fail_ms = th_now_ms();
            a->a_first_error = o->error;
        }
    }
}

static void on_health(void *user, const wh_health *h)
{
    app *a = user;
    if (h->state == WH_EP_PAUSED && !a->paused_ms) a->paused_ms = th_now_ms();
    if (h->state == WH_EP_ACTIVE) a->resumed_ms = th_now_ms();
}

static void app_init(app *a)
{
    memset(a, 0, sizeof *a);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.on_outcome = on_outcome;
    o.outcome_user = a;
    o.on_health = on_health;
    o.health_user = a;
    int err = 0;
    a->e = wh_engine_new(&o, &err);
    CHECK_EQ(err, WH_OK);
}

static int add(app *a, wh_endpoint_options *ep)
{
    int h = wh_endpoint_add(a->e, ep);
    if (h <= 0) th_fail(__FILE__, __LINE__, "endpoint_add: %s", wh_last_error(a->e));
    return h;
}

/* A never answers, B answers at once: every event reaches B before A's
 * first attempt has even timed out. */
static void test_hanging_endpoint_never_delays_another(void)
{
    enum { N = 300 };
    th_recv_opts hang = {.hang = 1};
    th_recv *ra = th_recv_start(&hang);
    th_recv *rb = th_recv_start(NULL);
    CHECK(ra && rb);
    app a;
    app_init(&a);
    a.n_expected = N;
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(ra);
    ep.timeout_ms = 2000;
    CHECK_EQ(add(&a, &ep), 1);
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(rb);
    CHECK_EQ(add(&a, &ep), 2);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < N; i++) CHECK_EQ(wh_emit(a.e, "t", NULL, "{}", 2, NULL), 2);
    while (!a.a_first_fail_ms && th_now_ms() - t0 < 15000) wh_poll(a.e, 20);
    CHECK(a.a_first_fail_ms > 0);
    CHECK_EQ(a.a_first_error, WH_E_TIMEOUT);
    CHECK_INT(a.a_first_fail_ms - t0, >=, 1900);
    CHECK_EQ(a.delivered[2], N);
    CHECK(a.b_done_ms > 0);
    CHECK_INT(a.b_done_ms, <, a.a_first_fail_ms);
    CHECK_EQ(th_recv_count(rb), N);
    /* A had its 30 allowed requests open, no more */
    CHECK_INT(th_recv_max_concurrent(ra), <=, 30);
    wh_engine_free(a.e);
    th_recv_stop(ra);
    th_recv_stop(rb);
}

/* A receiver counting concurrent requests never sees more than
 * max_in_flight (1 for an ordered endpoint). */
static void test_max_in_flight_and_ordered_over_http(void)
{
    enum { N = 60 };
    th_recv_opts slow = {.delay_ms = 50};
    th_recv *r = th_recv_start(&slow);
    th_recv *ro = th_recv_start(&slow);
    CHECK(r && ro);
    app a;
    app_init(&a);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    ep.max_in_flight = 5;
    add(&a, &ep);
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(ro);
    ep.ordered = 1;
    ep.max_in_flight = 30; /* ordered wins: one at a time */
    add(&a, &ep);
    for (int i = 0; i < N; i++) {
        char body[32];
        int len = snprintf(body, sizeof body, "{\"seq\":%d}", i);
        CHECK_EQ(wh_emit(a.e, "t", NULL, body, (size_t)len, NULL), 2);
    }
    CHECK_EQ(wh_flush(a.e, 30000), WH_OK);
    CHECK_EQ(a.delivered[1], N);
    CHECK_EQ(a.delivered[2], N);
    CHECK_INT(th_recv_max_concurrent(r), <=, 5);
    CHECK_INT(th_recv_max_concurrent(r), >=, 2); /* it did run in parallel */
    CHECK_EQ(th_recv_max_concurrent(ro), 1);
    for (int i = 0; i < N; i++) { /* and in order */
        th_recv_req q;
        CHECK_EQ(th_recv_get(ro, (size_t)i, &q), 0);
        char want[32];
        snprintf(want, sizeof want, "{\"seq\":%d}", i);
        CHECK_STR(q.body, want);
    }
    wh_engine_free(a.e);
    th_recv_stop(r);
    th_recv_stop(ro);
}

/* 50 requests per second, burst 1, over about 3 s: the receiver's measured
 * rate is within 10 %, and no 1-second window holds more than 51. */
static void test_rate_limit_holds_over_http(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    app a;
    app_init(&a);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    ep.rate_limit = 50;
    ep.rate_burst = 1;
    add(&a, &ep);
    for (int i = 0; i < 400; i++) CHECK_EQ(wh_emit(a.e, "t", NULL, "{}", 2, NULL), 1);
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 3200) wh_poll(a.e, 20);
    size_t n = th_recv_count(r);
    CHECK_INT(n, >=, 100);
    th_recv_req *q = calloc(n, sizeof *q);
    CHECK(q);
    for (size_t i = 0; i < n; i++) CHECK_EQ(th_recv_get(r, i, &q[i]), 0);
    double span = (double)(q[n - 1].at_ms - q[0].at_ms);
    double rate = (double)(n - 1) * 1000.0 / span;
    if (rate < 45.0 || rate > 55.0)
        th_fail(__FILE__, __LINE__, "measured %.1f requests/s over %.0f ms, want 50 +- 10%%",
                rate, span);
    for (size_t i = 0; i < n; i++) { /* sliding 1-second windows */
        size_t j = i;
        while (j < n && q[j].at_ms - q[i].at_ms < 1000) j++;
        CHECK_INT(j - i, <=, 51);
    }
    free(q);
    wh_engine_free(a.e); /* the rest is cancelled */
    th_recv_stop(r);
}

/* Circuit breaker: after 3 failures nothing reaches the receiver until the
 * 1 s cool-down ends, then exactly one probe; its success resumes the
 * flow and every event is delivered. */
static void test_circuit_breaker_over_http(void)
{
    enum { N = 5 };
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    th_recv_set(r, 500, 0, 0);
    app a;
    app_init(&a);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    ep.max_attempts = 50;
    ep.retry_initial_ms = 100;
    ep.retry_max_ms = 200;
    ep.breaker_failures = 3;
    ep.breaker_cooldown_ms = 1000;
    add(&a, &ep);
    for (int i = 0; i < N; i++) CHECK_EQ(wh_emit(a.e, "t", NULL, "{}", 2, NULL), 1);
    int64_t t0 = th_now_ms();
    int healed = 0;
    while (a.delivered[1] < N && th_now_ms() - t0 < 20000) {
        wh_poll(a.e, 20);
        if (!healed && a.paused_ms && a.failed[1] >= N) {
            /* every first attempt failed and the breaker is open: the
             * receiver recovers, answering slowly enough to see the probe
             * alone */
            CHECK_EQ(th_recv_count(r), N);
            th_recv_set(r, 200, 0, 300);
            healed = 1;
        }
    }
    CHECK(healed);
    CHECK_EQ(a.delivered[1], N);
    CHECK_EQ(a.dead, 0);
    CHECK(a.paused_ms > 0 && a.resumed_ms > a.paused_ms);
    size_t n = th_recv_count(r);
    CHECK_EQ(n, 2 * N); /* N failed (all in flight at once), N delivered */
    th_recv_req q[2 * N];
    for (size_t i = 0; i < n; i++) CHECK_EQ(th_recv_get(r, i, &q[i]), 0);
    for (size_t i = 0; i < N; i++) CHECK_EQ(q[i].answered, 500);
    /* the probe: not before the cool-down, alone for its 300 ms */
    CHECK_INT(q[N].at_ms, >=, a.paused_ms + 990);
    for (size_t i = N + 1; i < n; i++) CHECK_INT(q[i].at_ms, >=, q[N].at_ms + 250);
    wh_engine_free(a.e);
    th_recv_stop(r);
}

/* Retry-After from a real 429 (libcurl reads the header). */
static void test_retry_after_over_http(void)
{
    th_recv_opts ro = {.fail_first = 1, .fail_status = 429, .retry_after = "1"};
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    app a;
    app_init(&a);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    ep.retry_initial_ms = 50;
    add(&a, &ep);
    CHECK_EQ(wh_emit(a.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_flush(a.e, 10000), WH_OK);
    CHECK_EQ(a.delivered[1], 1);
    CHECK_EQ(th_recv_count(r), 2);
    th_recv_req q0, q1;
    th_recv_get(r, 0, &q0);
    th_recv_get(r, 1, &q1);
    CHECK_EQ(q0.answered, 429);
    CHECK_INT(q1.at_ms - q0.at_ms, >=, 990);
    CHECK_INT(q1.at_ms - q0.at_ms, <, 3000);
    wh_engine_free(a.e);
    th_recv_stop(r);
}

TH_MAIN(TH_CASE(test_hanging_endpoint_never_delays_another),
        TH_CASE(test_max_in_flight_and_ordered_over_http),
        TH_CASE(test_rate_limit_holds_over_http),
        TH_CASE(test_circuit_breaker_over_http),
        TH_CASE(test_retry_after_over_http))
