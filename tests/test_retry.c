/* Retry policy, limits and endpoint health on the manual clock and the
 * scripted transport: every preset's exact attempt times and counts, the
 * knobs one by one, Retry-After, rate limit, ordering, 410, circuit breaker,
 * auto-disable, and the JSON form. */
#include "fixture.h"
#include <webhook/webhook.h>
#include <webhook/test.h>

#include <stdlib.h>
#include <string.h>

#define WALL0 1700000000000LL
#define T0 1000 /* manual clock start */
#define URL "http://127.0.0.1:9/hook"

/* the shared fixture (tests/support/fixture.h): manual clock at T0,
 * scripted transport, every outcome in f->out and health change in
 * f->health */
typedef tf fx;
typedef tf_outcome rec_outcome;

/* health callbacks follow the outcome callback's rules */
static void health_not_recursive(tf *f, const wh_health *h)
{
    CHECK_EQ(wh_endpoint_enable(f->e, h->endpoint, 1), WH_E_RECURSIVE);
}

static void fx_init_seed(fx *f, uint64_t seed)
{
    tf_init(f, seed);
    f->health_hook = health_not_recursive;
}

static void fx_init(fx *f) { fx_init_seed(f, 42); }
static void fx_done(fx *f) { tf_done(f); }

static int add(fx *f, wh_endpoint_options *ep) { return tf_add(f, ep); }

static int add_preset(fx *f, const char *preset)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    CHECK_EQ(wh_endpoint_options_retry_preset(&ep, preset), WH_OK);
    return add(f, &ep);
}

/* Advance simulated time to each next deadline until nothing is pending. */
static void run_to_idle(fx *f, int64_t limit_ms) { tf_run_to_idle(f, limit_ms); }

/* Poll through simulated time up to `until` (absolute). */
static void run_until(fx *f, int64_t until) { tf_run_until(f, until); }

static void emit(fx *f, const char *data)
{
    CHECK_EQ(wh_emit(f->e, "t", NULL, data, strlen(data), NULL), 1);
}

/* Submission times of every request, relative to T0, must be `at`. */
static void check_times(fx *f, const int64_t *at, size_t n)
{
    size_t got = wh_scripted_count(f->t);
    if (got != n) {
        char buf[512];
        size_t o = 0;
        for (size_t i = 0; i < got && o < sizeof buf - 24; i++) {
            wh_scripted_request r;
            wh_scripted_get(f->t, i, &r);
            o += (size_t)snprintf(buf + o, sizeof buf - o, " %lld",
                                  (long long)(r.submitted_ms - T0));
        }
        buf[o] = 0;
        th_fail(__FILE__, __LINE__, "%zu requests, expected %zu; at:%s", got, n, buf);
    }
    for (size_t i = 0; i < n; i++) {
        wh_scripted_request r;
        wh_scripted_get(f->t, i, &r);
        if (r.submitted_ms - T0 != at[i])
            th_fail(__FILE__, __LINE__, "request %zu at %lld ms, expected %lld", i,
                    (long long)(r.submitted_ms - T0), (long long)at[i]);
    }
}

static const rec_outcome *last(const fx *f) { return tf_last(f); }

/* ---- presets ---------------------------------------------------------------- */

/* 000 SuperViz Real-time: 2 s doubling up to 5 min; 30 in flight. */
static void test_preset_realtime(void)
{
    fx f;
    fx_init(&f);
    add_preset(&f, "realtime");
    wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 3600 * 1000);
    /* delays 2, 4, 8, 16, 32, 64, 128, 256 s, then the 5 min cap */
    static const int64_t at[] = {0, 2000, 6000, 14000, 30000, 62000, 126000, 254000,
                                 510000, 810000};
    check_times(&f, at, 10);
    for (size_t i = 0; i < 9; i++) {
        CHECK_EQ(f.out[i].kind, WH_RETRY);
        CHECK_EQ(f.out[i].retry_in_ms, at[i + 1] - at[i]);
    }
    CHECK_EQ(f.out[8].retry_in_ms, 300000);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(last(&f)->attempt, 10);
    CHECK_EQ(last(&f)->http_status, 503);
    fx_done(&f);

    /* at most 30 requests in flight */
    fx_init(&f);
    add_preset(&f, "realtime");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, 1000, NULL, 0);
    for (int i = 0; i < 45; i++) emit(&f, "{}");
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 30);
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.in_flight, 30);
    CHECK_EQ(st.queued, 15);
    run_to_idle(&f, 10000);
    CHECK_EQ(wh_scripted_count(f.t), 45);
    wh_scripted_request r;
    wh_scripted_get(f.t, 30, &r);
    CHECK_EQ(r.submitted_ms, T0 + 1000); /* the 31st waits for a free slot */
    fx_done(&f);
}

/* 002 Sendbird: waits 1 s for a response, up to three times until one
 * arrives. */
static void test_preset_sendbird(void)
{
    fx f;
    fx_init(&f);
    add_preset(&f, "sendbird");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0); /* never answers */
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t at[] = {0, 2000, 4000}; /* 1 s timeout + 1 s wait */
    check_times(&f, at, 3);
    for (size_t i = 0; i < 3; i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        CHECK_EQ(r.completed_ms - r.submitted_ms, 1000);
    }
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(last(&f)->error, WH_E_TIMEOUT);
    CHECK_EQ(last(&f)->attempt, 3);
    fx_done(&f);

    /* a response, even a 500, ends it */
    fx_init(&f);
    add_preset(&f, "sendbird");
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 10, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(last(&f)->http_status, 500);
    fx_done(&f);

    /* no connection: three attempts */
    fx_init(&f);
    add_preset(&f, "sendbird");
    wh_scripted_rule(f.t, NULL, 0, WH_E_CONNECT, 0, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t at2[] = {0, 1000, 2000};
    check_times(&f, at2, 3);
    fx_done(&f);
}

/* 003 Dyte: 2xx within 3 s, else retried on 3xx/4xx/5xx up to 5 times. */
static void test_preset_dyte(void)
{
    static const int statuses[] = {301, 404, 500};
    for (size_t s = 0; s < 3; s++) {
        fx f;
        fx_init(&f);
        add_preset(&f, "dyte");
        wh_scripted_rule(f.t, NULL, statuses[s], WH_OK, 0, NULL, 0);
        emit(&f, "{}");
        run_to_idle(&f, 3600 * 1000);
        static const int64_t at[] = {0, 2000, 6000, 14000, 30000, 62000};
        check_times(&f, at, 6); /* 1 + 5 retries */
        CHECK_EQ(last(&f)->kind, WH_DEAD);
        CHECK_EQ(last(&f)->http_status, statuses[s]);
        fx_done(&f);
    }
    fx f;
    fx_init(&f);
    add_preset(&f, "dyte");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, 3001, NULL, 0); /* too slow */
    emit(&f, "{}");
    run_to_idle(&f, 3600 * 1000);
    static const int64_t at[] = {0, 5000, 12000, 23000, 42000, 77000};
    check_times(&f, at, 6);
    wh_scripted_request r;
    wh_scripted_get(f.t, 0, &r);
    CHECK_EQ(r.completed_ms - r.submitted_ms, 3000);
    CHECK_EQ(last(&f)->error, WH_E_TIMEOUT);
    fx_done(&f);
}

/* 004 Stream: 408/429/5xx -> 3 attempts, network error -> 2, timeout -> 3;
 * 6 s per request; 15 s for a delivery with all its retries. */
static void test_preset_stream(void)
{
    fx f;
    fx_init(&f);
    add_preset(&f, "stream");
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
    emit(&f, "{\"n\":1}");
    run_to_idle(&f, 60000);
    static const int64_t at500[] = {0, 500, 1500};
    check_times(&f, at500, 3);
    /* the dead letter: event, endpoint, attempts, last status */
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(last(&f)->attempt, 3);
    CHECK_EQ(last(&f)->http_status, 500);
    CHECK_EQ(last(&f)->error, WH_E_HTTP_STATUS);
    CHECK_STR(last(&f)->endpoint_id, "ep-1");
    CHECK_STR(last(&f)->data, "{\"n\":1}");
    fx_done(&f);

    /* dead socket: exactly 2 */
    fx_init(&f);
    add_preset(&f, "stream");
    wh_scripted_rule(f.t, NULL, 0, WH_E_CONNECT, 0, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t atnet[] = {0, 500};
    check_times(&f, atnet, 2);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(last(&f)->error, WH_E_CONNECT);
    fx_done(&f);

    /* never answering: 6 s each, the third cut short at 15 s */
    fx_init(&f);
    add_preset(&f, "stream");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t athang[] = {0, 6500, 13500};
    check_times(&f, athang, 3);
    for (size_t i = 0; i < 3; i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        CHECK_INT(r.submitted_ms - T0, <, 15000);
        CHECK_INT(r.completed_ms - T0, <=, 15000);
        CHECK_EQ(r.completed_ms - r.submitted_ms, i < 2 ? 6000 : 1500);
    }
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(last(&f)->error, WH_E_TIMEOUT);
    fx_done(&f);

    /* a slow 500 (5 s): the third attempt is cut at 15 s; nothing later */
    fx_init(&f);
    add_preset(&f, "stream");
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 5000, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t atslow[] = {0, 5500, 11500};
    check_times(&f, atslow, 3);
    wh_scripted_request r;
    wh_scripted_get(f.t, 2, &r);
    CHECK_EQ(r.completed_ms - T0, 15000);
    fx_done(&f);

    /* the latest failure's class decides: 500 then a network error -> 2 */
    fx_init(&f);
    add_preset(&f, "stream");
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 1);
    wh_scripted_rule(f.t, NULL, 0, WH_E_TRANSPORT, 0, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    fx_done(&f);
}

static const int64_t svix_at[] = {0,          5000,       305000,     2105000,
                                  9305000,    27305000,   63305000,   99305000};

/* Svix: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (+-20 %). */
static void test_preset_svix_schedule(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    CHECK_EQ(wh_endpoint_options_retry_preset(&ep, "svix"), WH_OK);
    ep.retry_jitter = WH_JITTER_NONE; /* the nominal schedule, exactly */
    add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 302, WH_OK, 0, NULL, 0); /* 3xx is a failure */
    emit(&f, "{}");
    run_to_idle(&f, 48LL * 3600 * 1000);
    check_times(&f, svix_at, 8);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(last(&f)->attempt, 8);
    fx_done(&f);
}

static void svix_jittered(uint64_t seed, int64_t *at)
{
    fx f;
    fx_init_seed(&f, seed);
    add_preset(&f, "svix");
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 48LL * 3600 * 1000);
    CHECK_EQ(wh_scripted_count(f.t), 8);
    for (size_t i = 0; i < 8; i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        at[i] = r.submitted_ms - T0;
    }
    fx_done(&f);
}

static void test_preset_svix_jitter(void)
{
    int64_t a[8], b[8], c[8];
    svix_jittered(42, a);
    svix_jittered(42, b);
    svix_jittered(7, c);
    int differs_nominal = 0, differs_seed = 0;
    CHECK_EQ(a[0], 0);
    for (size_t i = 1; i < 8; i++) {
        int64_t nominal = svix_at[i] - svix_at[i - 1], d = a[i] - a[i - 1];
        CHECK_INT(d, >=, nominal * 8 / 10);
        CHECK_INT(d, <=, nominal * 12 / 10);
        CHECK_EQ(a[i], b[i]); /* same seed, same times */
        if (d != nominal) differs_nominal = 1;
        if (a[i] != c[i]) differs_seed = 1;
    }
    CHECK(differs_nominal);
    CHECK(differs_seed);
}

/* Pusher: 4 s to respond, exponential backoff for at most 5 minutes. */
static void test_preset_pusher(void)
{
    fx f;
    fx_init(&f);
    add_preset(&f, "pusher");
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 3600 * 1000);
    /* 1, 2, 4, ... s; the next (256 s after 255 s) would start after 5 min */
    static const int64_t at[] = {0, 1000, 3000, 7000, 15000, 31000, 63000, 127000, 255000};
    check_times(&f, at, 9);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    fx_done(&f);

    fx_init(&f);
    add_preset(&f, "pusher");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 3600 * 1000);
    size_t n = wh_scripted_count(f.t);
    CHECK_EQ(n, 9); /* 0, 5, 11, 19, 31, 51, 87, 155, 287 s */
    for (size_t i = 0; i < n; i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        CHECK_EQ(r.completed_ms - r.submitted_ms, 4000);
        CHECK_INT(r.submitted_ms - T0, <, 300000);
    }
    fx_done(&f);

    /* unknown preset names are refused, the struct untouched */
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    CHECK_EQ(wh_endpoint_options_retry_preset(&ep, "nope"), WH_E_NOT_FOUND);
    CHECK_EQ(ep.max_attempts, 8);
    CHECK_EQ(wh_endpoint_options_retry_preset(&ep, NULL), WH_E_INVAL);
    CHECK_EQ(wh_endpoint_options_retry_preset(&ep, "stream"), WH_OK);
    CHECK_EQ(wh_endpoint_options_retry_preset(&ep, "default"), WH_OK);
    CHECK_EQ(ep.retry_budget_ms, 0);
    CHECK_EQ(ep.timeout_ms, 10000);
}

/* ---- knobs --------------------------------------------------------------------- */

static int add_formula(fx *f, uint32_t initial, uint32_t max, uint32_t attempts)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.retry_initial_ms = initial;
    ep.retry_max_ms = max;
    ep.max_attempts = attempts;
    return add(f, &ep);
}

static void test_retry_after_seconds_and_date(void)
{
    fx f;
    fx_init(&f);
    add_formula(&f, 500, 60000, 5);
    wh_scripted_rule(f.t, NULL, 429, WH_OK, 0, "2", 1);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t at[] = {0, 2000};
    check_times(&f, at, 2);
    CHECK_EQ(f.out[0].kind, WH_RETRY);
    CHECK_EQ(f.out[0].retry_in_ms, 2000);
    CHECK_EQ(last(&f)->kind, WH_DELIVERED);
    fx_done(&f);

    /* HTTP date: 7 s after the wall time of the answer */
    fx_init(&f);
    add_formula(&f, 500, 60000, 5);
    wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, "Tue, 14 Nov 2023 22:13:27 GMT", 1);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t at2[] = {0, 7000};
    check_times(&f, at2, 2);
    fx_done(&f);

    /* capped by retry_max_ms */
    fx_init(&f);
    add_formula(&f, 500, 10000, 5);
    wh_scripted_rule(f.t, NULL, 429, WH_OK, 0, "3600", 1);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    CHECK_EQ(f.out[0].retry_in_ms, 10000);
    fx_done(&f);

    /* beyond the budget: dead at once */
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.retry_budget_ms = 10000;
    ep.retry_initial_ms = 500;
    add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 429, WH_OK, 0, "20", 1);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    fx_done(&f);

    /* ignored on a 500, on garbage, and when honor_retry_after is 0 */
    static const struct { int status; const char *ra; int honor; } ign[] = {
        {500, "2", 1}, {429, "soon", 1}, {429, "2", 0}, {503, "Tue, 14 Nov 2023", 1}};
    for (size_t i = 0; i < 4; i++) {
        fx_init(&f);
        wh_endpoint_options_init(&ep);
        ep.url = URL;
        ep.retry_initial_ms = 500;
        ep.honor_retry_after = ign[i].honor;
        add(&f, &ep);
        wh_scripted_rule(f.t, NULL, ign[i].status, WH_OK, 0, ign[i].ra, 1);
        emit(&f, "{}");
        run_to_idle(&f, 60000);
        CHECK_EQ(f.out[0].retry_in_ms, 500);
        fx_done(&f);
    }
}

static void test_jitter_full_and_equal(void)
{
    for (int kind = WH_JITTER_FULL; kind <= WH_JITTER_EQUAL; kind++) {
        int64_t d[2][7];
        for (int run = 0; run < 2; run++) {
            fx f;
            fx_init(&f);
            wh_endpoint_options ep;
            wh_endpoint_options_init(&ep);
            ep.url = URL;
            ep.retry_initial_ms = 1000;
            ep.retry_max_ms = 30000;
            ep.retry_jitter = (wh_jitter)kind;
            add(&f, &ep);
            wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
            emit(&f, "{}");
            run_to_idle(&f, 3600 * 1000);
            CHECK_EQ(f.n_out, 8);
            for (size_t i = 0; i < 7; i++) {
                int64_t nominal = 1000LL << i;
                if (nominal > 30000) nominal = 30000;
                d[run][i] = f.out[i].retry_in_ms;
                CHECK_INT(d[run][i], <=, nominal);
                CHECK_INT(d[run][i], >=, kind == WH_JITTER_EQUAL ? nominal / 2 : 0);
                wh_scripted_request a, b;
                wh_scripted_get(f.t, i, &a);
                wh_scripted_get(f.t, i + 1, &b);
                CHECK_EQ(b.submitted_ms - a.submitted_ms, d[run][i]);
            }
            fx_done(&f);
        }
        CHECK(memcmp(d[0], d[1], sizeof d[0]) == 0); /* seeded: reproducible */
    }
}

static void test_status_classes(void)
{
    static const int list[] = {409};
    static const struct {
        int status, r3xx, r4xx, use_list;
        size_t attempts;
    } cases[] = {
        {409, 0, 0, 1, 3}, {418, 0, 0, 1, 1}, {418, 0, 1, 0, 3}, {302, 0, 0, 0, 1},
        {302, 1, 0, 0, 3}, {400, 1, 0, 0, 1}, {408, 0, 0, 0, 3}, {599, 0, 0, 0, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fx f;
        fx_init(&f);
        wh_endpoint_options ep;
        wh_endpoint_options_init(&ep);
        ep.url = URL;
        ep.max_attempts = 3;
        ep.retry_3xx = cases[c].r3xx;
        ep.retry_4xx = cases[c].r4xx;
        if (cases[c].use_list) {
            ep.retry_statuses = list;
            ep.n_retry_statuses = 1;
        }
        add(&f, &ep);
        wh_scripted_rule(f.t, NULL, cases[c].status, WH_OK, 0, NULL, 0);
        emit(&f, "{}");
        run_to_idle(&f, 3600 * 1000);
        if (wh_scripted_count(f.t) != cases[c].attempts)
            th_fail(__FILE__, __LINE__, "case %zu (status %d): %zu attempts, want %zu", c,
                    cases[c].status, wh_scripted_count(f.t), cases[c].attempts);
        CHECK_EQ(last(&f)->kind, WH_DEAD);
        fx_done(&f);
    }
}

static void test_schedule_and_class_limits(void)
{
    fx f;
    fx_init(&f);
    static const uint32_t sched[] = {0, 100, 1000};
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.retry_schedule_ms = sched;
    ep.n_retry_schedule = 3;
    ep.max_attempts = 100; /* the schedule ends it: 4 attempts */
    add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 0, WH_E_TRANSPORT, 0, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    static const int64_t at[] = {0, 0, 100, 1100};
    check_times(&f, at, 4);
    fx_done(&f);

    fx_init(&f);
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.retry_initial_ms = 100;
    ep.max_attempts = 10;
    ep.max_attempts_timeout = 2;
    ep.timeout_ms = 1000;
    add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, NULL, 3);
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0);
    emit(&f, "{}");
    run_to_idle(&f, 60000);
    /* three 503 then a timeout on attempt 4 >= 2: dead */
    CHECK_EQ(wh_scripted_count(f.t), 4);
    CHECK_EQ(last(&f)->error, WH_E_TIMEOUT);
    fx_done(&f);

    /* bad values are refused, naming the field */
    fx_init(&f);
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.n_retry_schedule = 2;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "retry_schedule_ms"));
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.retry_jitter_percent = 101;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "retry_jitter_percent"));
    static const int bad[] = {200};
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.retry_statuses = bad;
    ep.n_retry_statuses = 1;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "retry_statuses[0]"));
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.rate_limit = 5;
    ep.rate_period_ms = 0;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "rate_period_ms"));
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.breaker_failures = 5;
    ep.breaker_cooldown_ms = 0;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "breaker_cooldown_ms"));
    fx_done(&f);
}

/* ---- limits -------------------------------------------------------------------- */

static void test_rate_limit_exact(void)
{
    for (uint32_t burst = 1; burst <= 3; burst += 2) {
        fx f;
        fx_init(&f);
        wh_endpoint_options ep;
        wh_endpoint_options_init(&ep);
        ep.url = URL;
        ep.rate_limit = 10; /* per second: one every 100 ms */
        ep.rate_burst = burst;
        add(&f, &ep);
        for (int i = 0; i < 6; i++) emit(&f, "{}");
        run_to_idle(&f, 60000);
        static const int64_t at1[] = {0, 100, 200, 300, 400, 500};
        static const int64_t at3[] = {0, 0, 0, 100, 200, 300};
        check_times(&f, burst == 1 ? at1 : at3, 6);
        /* idle for a while: the bucket refills up to the burst only */
        wh_manual_clock_advance(f.clock, 10000);
        for (int i = 0; i < 4; i++) emit(&f, "{}");
        wh_poll(f.e, 0);
        CHECK_EQ(wh_scripted_count(f.t), 6 + burst);
        run_to_idle(&f, 60000);
        CHECK_EQ(wh_scripted_count(f.t), 10);
        fx_done(&f);
    }
}

static void test_ordered_head_blocks_only_its_endpoint(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/ordered";
    ep.ordered = 1;
    ep.retry_initial_ms = 1000;
    add(&f, &ep);
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/other";
    add(&f, &ep);
    wh_scripted_rule(f.t, "http://127.0.0.1:9/ordered", 500, WH_OK, 0, NULL, 2);
    wh_scripted_rule(f.t, NULL, 200, WH_OK, 10, NULL, 0);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "1", 1, NULL), 2);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "2", 1, NULL), 2);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "3", 1, NULL), 2);
    run_to_idle(&f, 60000);
    size_t n = wh_scripted_count(f.t);
    CHECK_EQ(n, 8);
    char order[8] = {0};
    size_t k = 0;
    int64_t other_last = 0, prev_done = 0;
    for (size_t i = 0; i < n; i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        if (strstr(r.url, "ordered")) {
            order[k++] = r.body[0];
            CHECK_INT(r.submitted_ms, >=, prev_done); /* one at a time */
            prev_done = r.completed_ms;
        } else {
            other_last = r.submitted_ms;
        }
    }
    CHECK_STR(order, "11123");
    CHECK_EQ(other_last, T0); /* the other endpoint was not held up */
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.delivered, 6);
    CHECK_EQ(st.dead, 0);
    fx_done(&f);
}

/* ---- health -------------------------------------------------------------------- */

static void test_410_disables_until_enabled(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.max_in_flight = 1;
    int h = add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 410, WH_OK, 0, NULL, 1);
    emit(&f, "1");
    emit(&f, "2");
    wh_poll(f.e, 0);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(f.n_out, 1);
    CHECK_EQ(f.out[0].kind, WH_RETRY);
    CHECK_EQ(f.out[0].http_status, 410);
    CHECK_EQ(f.out[0].retry_in_ms, -1);
    CHECK_EQ(f.n_health, 1);
    CHECK_EQ(f.health[0].state, WH_EP_DISABLED);
    CHECK_EQ(f.health[0].previous, WH_EP_ACTIVE);
    CHECK_EQ(f.health[0].http_status, 410);
    CHECK_EQ(wh_endpoint_state(f.e, h), WH_EP_DISABLED);
    CHECK_EQ(wh_timeout_ms(f.e), -1);
    /* an hour later nothing was sent, new events are kept */
    wh_manual_clock_advance(f.clock, 3600 * 1000);
    emit(&f, "3");
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.queued, 3);
    CHECK_EQ(st.dead, 0);
    CHECK_EQ(wh_endpoint_enable(f.e, h, 1), WH_OK);
    CHECK_EQ(f.n_health, 2);
    CHECK_EQ(f.health[1].state, WH_EP_ACTIVE);
    CHECK_EQ(wh_endpoint_state(f.e, h), WH_EP_ACTIVE);
    run_to_idle(&f, 60000);
    CHECK_EQ(wh_scripted_count(f.t), 4);
    CHECK_STR(wh_scripted_header(f.t, 1, "webhook-attempt"), "2"); /* the 410'd one */
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.delivered, 3);
    CHECK_EQ(st.queued, 0);
    /* disable by hand: kept; enable: sent */
    CHECK_EQ(wh_endpoint_enable(f.e, h, 0), WH_OK);
    CHECK_EQ(f.health[2].state, WH_EP_DISABLED);
    emit(&f, "4");
    run_to_idle(&f, 60000);
    CHECK_EQ(wh_scripted_count(f.t), 4);
    CHECK_EQ(wh_endpoint_enable(f.e, h, 1), WH_OK);
    run_to_idle(&f, 60000);
    CHECK_EQ(wh_scripted_count(f.t), 5);
    CHECK_EQ(wh_endpoint_enable(f.e, 99, 1), WH_E_NOT_FOUND);
    CHECK_EQ(wh_endpoint_state(f.e, 99), WH_E_NOT_FOUND);
    fx_done(&f);

    /* disable_on_410 = 0: a plain permanent failure */
    fx_init(&f);
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.disable_on_410 = 0;
    h = add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 410, WH_OK, 0, NULL, 1);
    emit(&f, "1");
    run_to_idle(&f, 60000);
    CHECK_EQ(last(&f)->kind, WH_DEAD);
    CHECK_EQ(f.n_health, 0);
    CHECK_EQ(wh_endpoint_state(f.e, h), WH_EP_ACTIVE);
    fx_done(&f);
}

static void test_circuit_breaker(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.max_in_flight = 1;
    ep.max_attempts = 10;
    ep.retry_initial_ms = 1000;
    ep.breaker_failures = 3;
    ep.breaker_cooldown_ms = 10000;
    int h = add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 4);
    wh_scripted_rule(f.t, NULL, 200, WH_OK, 500, NULL, 0);
    emit(&f, "1");
    emit(&f, "2");
    emit(&f, "3");
    run_until(&f, T0 + 9999);
    /* three failures open the breaker: nothing until the cool-down ends */
    CHECK_EQ(wh_scripted_count(f.t), 3);
    CHECK_EQ(wh_endpoint_state(f.e, h), WH_EP_PAUSED);
    CHECK_EQ(f.n_health, 1);
    CHECK_EQ(f.health[0].state, WH_EP_PAUSED);
    CHECK_EQ(f.health[0].failures, 3);
    CHECK_EQ(f.health[0].resume_at, T0 + 10000);
    emit(&f, "4"); /* kept while paused */
    run_to_idle(&f, 3600 * 1000);
    /* one probe at 10 s fails: paused again; one probe at 20 s succeeds
     * (answering after 500 ms): then the rest, one at a time */
    static const int64_t at[] = {0, 0, 0, 10000, 20000, 20500, 21000, 21500};
    check_times(&f, at, 8);
    CHECK_EQ(f.n_health, 3);
    CHECK_EQ(f.health[1].state, WH_EP_PAUSED);
    CHECK_EQ(f.health[1].previous, WH_EP_PROBING);
    CHECK_EQ(f.health[1].resume_at, T0 + 20000);
    CHECK_EQ(f.health[2].state, WH_EP_ACTIVE);
    CHECK_EQ(f.health[2].at, T0 + 20500);
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.delivered, 4); /* nothing lost across the pause */
    CHECK_EQ(st.dead, 0);
    CHECK_EQ(wh_endpoint_state(f.e, h), WH_EP_ACTIVE);
    fx_done(&f);
}

static void test_auto_disable_after_failing_for_a_while(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.max_attempts = 100;
    ep.retry_initial_ms = 10000;
    ep.retry_multiplier = 1;
    ep.disable_after_ms = 60000;
    int h = add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, NULL, 0);
    emit(&f, "1");
    run_to_idle(&f, 3600 * 1000);
    /* failures at 0, 10, ..., 60 s: the one at 60 s disables it */
    CHECK_EQ(wh_scripted_count(f.t), 7);
    CHECK_EQ(f.n_health, 1);
    CHECK_EQ(f.health[0].state, WH_EP_DISABLED);
    CHECK_EQ(f.health[0].at, T0 + 60000);
    CHECK_EQ(f.health[0].failures, 7);
    CHECK_EQ(wh_endpoint_state(f.e, h), WH_EP_DISABLED);
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.dead, 0);
    CHECK_EQ(st.queued, 1);
    fx_done(&f);
}

/* ---- batches and JSON -------------------------------------------------------------- */

static void test_policy_applies_to_batches(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.mode = WH_MODE_BATCH;
    ep.batch_linger_ms = 0;
    CHECK_EQ(wh_endpoint_options_retry_preset(&ep, "stream"), WH_OK);
    add(&f, &ep);
    wh_scripted_rule(f.t, NULL, 429, WH_OK, 0, "1", 1);
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
    emit(&f, "1");
    emit(&f, "2");
    run_to_idle(&f, 60000);
    /* Retry-After 1 s, then the formula (1 s after attempt 2) */
    static const int64_t at[] = {0, 1000, 2000};
    check_times(&f, at, 3);
    CHECK_EQ(f.n_out, 6);
    CHECK_EQ(f.out[5].kind, WH_DEAD);
    CHECK_EQ(f.out[5].attempt, 3);
    fx_done(&f);
}

static void test_json_retry_limits_health(void)
{
    fx f;
    fx_init(&f);
    const char *doc =
        "{\"endpoints\": ["
        " {\"id\": \"s\", \"url\": \"http://127.0.0.1:9/s\", \"retry\": \"stream\"},"
        " {\"id\": \"x\", \"url\": \"http://127.0.0.1:9/x\", \"max_attempts\": 3,"
        "  \"retry\": {\"initial_ms\": 100, \"max_ms\": 100, \"preset\": \"svix\","
        "   \"jitter\": \"none\", \"statuses\": [409]},"
        "  \"limits\": {\"rate\": 10, \"burst\": 1, \"ordered\": true},"
        "  \"health\": {\"breaker_failures\": 5, \"breaker_cooldown_ms\": 1000,"
        "   \"disable_on_410\": false, \"disable_after_ms\": 0}}]}";
    CHECK_EQ(wh_config_load(f.e, doc, strlen(doc)), WH_OK);
    wh_scripted_rule(f.t, "http://127.0.0.1:9/s", 500, WH_OK, 0, NULL, 0);
    wh_scripted_rule(f.t, "http://127.0.0.1:9/x", 409, WH_OK, 0, NULL, 0);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 2);
    run_to_idle(&f, 3600 * 1000);
    int64_t s_at[3], x_at[3];
    size_t ns = 0, nx = 0;
    for (size_t i = 0; i < wh_scripted_count(f.t); i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        if (r.url[strlen(r.url) - 1] == 's' && ns < 3) s_at[ns++] = r.submitted_ms - T0;
        else if (nx < 3) x_at[nx++] = r.submitted_ms - T0;
    }
    CHECK_EQ(ns, 3); /* the stream preset: 0, 0.5, 1.5 s */
    CHECK_EQ(s_at[1], 500);
    CHECK_EQ(s_at[2], 1500);
    /* svix's schedule, explicit keys override: 3 attempts, 409 retried,
     * 5 s then 5 min (the schedule is not capped by max_ms) */
    CHECK_EQ(nx, 3);
    CHECK_EQ(x_at[1], 5000);
    CHECK_EQ(x_at[2], 305000);
    fx_done(&f);

    static const struct { const char *doc, *msg; } bad[] = {
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":\"nope\"}]}",
         "endpoints[0].retry: unknown retry preset \"nope\""},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":{\"preset\":1}}]}",
         "endpoints[0].retry.preset: expected a string"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":{\"jitter\":\"lots\"}}]}",
         "endpoints[0].retry.jitter"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":{\"schedule_ms\":[1,-2]}}]}",
         "endpoints[0].retry.schedule_ms[1]"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":{\"statuses\":[200]}}]}",
         "endpoints[0].retry.statuses[0]"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":{\"retry_3xx\":1}}]}",
         "endpoints[0].retry.retry_3xx: expected true or false"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":{\"budget\":1}}]}",
         "endpoints[0].retry: unknown key \"budget\""},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"limits\":{\"rate\":-1}}]}",
         "endpoints[0].limits.rate"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"limits\":{\"period_ms\":0}}]}",
         "endpoints[0].limits.period_ms"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"health\":{\"breaker_cooldown_ms\":0}}]}",
         "endpoints[0].health.breaker_cooldown_ms"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"health\":[]}]}",
         "endpoints[0].health: expected an object"},
        {"{\"endpoints\":[{\"url\":\"http://a/\",\"retry\":{\"jitter_percent\":300}}]}",
         "endpoints[0].retry.jitter_percent"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_init(&f);
        CHECK_EQ(wh_config_load(f.e, bad[i].doc, strlen(bad[i].doc)), WH_E_CONFIG);
        if (!strstr(wh_last_error(f.e), bad[i].msg))
            th_fail(__FILE__, __LINE__, "case %zu: \"%s\" lacks \"%s\"", i,
                    wh_last_error(f.e), bad[i].msg);
        CHECK_EQ(wh_endpoint_find(f.e, "ep-1"), WH_E_NOT_FOUND);
        fx_done(&f);
    }
}

TH_MAIN(TH_CASE(test_preset_realtime),
        TH_CASE(test_preset_sendbird),
        TH_CASE(test_preset_dyte),
        TH_CASE(test_preset_stream),
        TH_CASE(test_preset_svix_schedule),
        TH_CASE(test_preset_svix_jitter),
        TH_CASE(test_preset_pusher),
        TH_CASE(test_retry_after_seconds_and_date),
        TH_CASE(test_jitter_full_and_equal),
        TH_CASE(test_status_classes),
        TH_CASE(test_schedule_and_class_limits),
        TH_CASE(test_rate_limit_exact),
        TH_CASE(test_ordered_head_blocks_only_its_endpoint),
        TH_CASE(test_410_disables_until_enabled),
        TH_CASE(test_circuit_breaker),
        TH_CASE(test_auto_disable_after_failing_for_a_while),
        TH_CASE(test_policy_applies_to_batches),
        TH_CASE(test_json_retry_limits_health))
