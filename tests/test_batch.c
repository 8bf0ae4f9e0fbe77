/* Batching and bodies on the manual clock and the scripted transport: when a
 * batch leaves (full, linger, flush), what it holds (max events, max bytes),
 * how it is retried (as a unit, one id), and the exact bytes of every body
 * format. */
#include "fixture.h"
#include <webhook/webhook.h>
#include <webhook/test.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WALL0 1700000000000LL /* 2023-11-14T22:13:20.000Z */
#define URL "http://127.0.0.1:9/hook"

/* the shared fixture (tests/support/fixture.h): manual clock at 1000,
 * scripted transport, outcomes counted in f->delivered / retried / dead */
typedef tf fx;
static void fx_init(fx *f) { tf_init(f, 7); }
static void fx_done(fx *f) { tf_done(f); }

static int add_batch_ep(fx *f, uint32_t max_events, uint32_t max_bytes,
                        uint32_t linger_ms, wh_body body)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.mode = WH_MODE_BATCH;
    if (max_events) ep.batch_max_events = max_events;
    if (max_bytes) ep.batch_max_bytes = max_bytes;
    ep.batch_linger_ms = linger_ms;
    ep.body = body;
    int h = wh_endpoint_add(f->e, &ep);
    if (h < 0) th_fail(__FILE__, __LINE__, "add: %s", wh_last_error(f->e));
    return h;
}

static void emit_n(fx *f, int n, int from)
{
    for (int i = 0; i < n; i++) {
        char data[64];
        int len = snprintf(data, sizeof data, "{\"n\":%d}", from + i);
        CHECK_EQ(wh_emit(f->e, "message.created", "room-1", data, (size_t)len, NULL), 1);
    }
}

/* Number of {"n":K} items in a body, and the first and last K. */
static size_t items(const char *body, int *first, int *last)
{
    size_t n = 0;
    for (const char *p = body; (p = strstr(p, "{\"n\":")); p += 5) {
        int k = atoi(p + 5);
        if (n == 0 && first) *first = k;
        if (last) *last = k;
        n++;
    }
    return n;
}

static wh_scripted_request req(fx *f, size_t i) { return tf_req(f, i); }

/* A lone event waits exactly its linger, measured from its emit. */
static void test_lone_event_leaves_after_linger(void)
{
    fx f;
    fx_init(&f);
    add_batch_ep(&f, 0, 0, 50, WH_BODY_RAW);
    emit_n(&f, 1, 0);
    CHECK_EQ(wh_timeout_ms(f.e), 50);
    wh_manual_clock_advance(f.clock, 49);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 0);
    wh_manual_clock_advance(f.clock, 1);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_scripted_request r = req(&f, 0);
    CHECK_EQ(r.submitted_ms, 1050);
    CHECK_STR(r.body, "[{\"n\":0}]");
    /* events emitted during the linger join the same batch */
    emit_n(&f, 1, 1);
    wh_manual_clock_advance(f.clock, 30);
    emit_n(&f, 2, 2);
    wh_manual_clock_advance(f.clock, 19);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_manual_clock_advance(f.clock, 1);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    r = req(&f, 1);
    CHECK_EQ(r.submitted_ms, 1100);
    CHECK_STR(r.body, "[{\"n\":1},{\"n\":2},{\"n\":3}]");
    wh_poll(f.e, 0);
    CHECK_EQ(f.delivered, 4);
    fx_done(&f);
}

/* 2,500 events at once with max 1,000: two full batches leave at once, the
 * last 500 after the linger. */
static void test_full_batches_leave_without_linger(void)
{
    fx f;
    fx_init(&f);
    add_batch_ep(&f, 1000, 0, 50, WH_BODY_RAW);
    emit_n(&f, 2500, 0);
    CHECK_EQ(wh_timeout_ms(f.e), 0);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    int first = -1, last = -1;
    wh_scripted_request r0 = req(&f, 0), r1 = req(&f, 1);
    CHECK_EQ(r0.submitted_ms, 1000);
    CHECK_EQ(r1.submitted_ms, 1000);
    CHECK_EQ(items(r0.body, &first, &last), 1000);
    CHECK_EQ(first, 0);
    CHECK_EQ(last, 999);
    CHECK_EQ(items(r1.body, &first, &last), 1000);
    CHECK_EQ(first, 1000);
    CHECK_EQ(last, 1999);
    CHECK_EQ(wh_timeout_ms(f.e), 50);
    wh_manual_clock_advance(f.clock, 50);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 3);
    wh_scripted_request r2 = req(&f, 2);
    CHECK_EQ(r2.submitted_ms, 1050);
    CHECK_EQ(items(r2.body, &first, &last), 500);
    CHECK_EQ(first, 2000);
    CHECK_EQ(last, 2499);
    wh_poll(f.e, 0);
    CHECK_EQ(f.delivered, 2500);
    fx_done(&f);
}

/* max_bytes bounds the payload bytes of a batch; order is kept. */
static void test_max_bytes(void)
{
    fx f;
    fx_init(&f);
    /* each payload {"n":1NN} is 9 bytes: 10 fit in 95 bytes */
    add_batch_ep(&f, 1000, 95, 50, WH_BODY_RAW);
    emit_n(&f, 25, 100);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 2); /* two full batches at once */
    wh_manual_clock_advance(f.clock, 50);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 3);
    int first = -1, last = -1, expect = 100;
    size_t sizes[3] = {10, 10, 5};
    for (size_t i = 0; i < 3; i++) {
        wh_scripted_request r = req(&f, i);
        CHECK_EQ(items(r.body, &first, &last), sizes[i]);
        CHECK_EQ(first, expect);
        expect = last + 1;
    }
    CHECK_EQ(expect, 125);
    fx_done(&f);
}

/* A failed batch is retried whole: same id, same body, attempt 2, at the
 * backoff time; then its events are delivered once. */
static void test_batch_retried_as_unit(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, NULL, 1), WH_OK);
    add_batch_ep(&f, 100, 0, 10, WH_BODY_RAW);
    emit_n(&f, 3, 0);
    wh_manual_clock_advance(f.clock, 10);
    wh_poll(f.e, 0);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(f.retried, 3);
    /* an event emitted meanwhile does not join the held batch */
    emit_n(&f, 1, 3);
    wh_manual_clock_advance(f.clock, 10);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    CHECK_STR(req(&f, 1).body, "[{\"n\":3}]");
    /* the retry: default policy, 2 s after the failure */
    CHECK_EQ(wh_timeout_ms(f.e), 2000 - 10);
    wh_manual_clock_advance(f.clock, 1990);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 3);
    wh_scripted_request a = req(&f, 0), b = req(&f, 2);
    CHECK_EQ(b.submitted_ms, 1010 + 2000);
    CHECK_STR(a.body, b.body);
    CHECK_STR(wh_scripted_header(f.t, 0, "webhook-id"),
              wh_scripted_header(f.t, 2, "webhook-id"));
    CHECK(strcmp(wh_scripted_header(f.t, 0, "webhook-id"),
                 wh_scripted_header(f.t, 1, "webhook-id")) != 0);
    CHECK_STR(wh_scripted_header(f.t, 0, "webhook-attempt"), "1");
    CHECK_STR(wh_scripted_header(f.t, 2, "webhook-attempt"), "2");
    wh_poll(f.e, 0);
    CHECK_EQ(f.delivered, 4);
    fx_done(&f);
}

/* A batch that exhausts its attempts reports each of its events dead once. */
static void test_batch_dead_reports_each_event(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0), WH_OK);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.mode = WH_MODE_BATCH;
    ep.max_attempts = 2;
    ep.batch_linger_ms = 0;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    emit_n(&f, 5, 0);
    for (int i = 0; i < 10 && wh_timeout_ms(f.e) >= 0; i++) {
        wh_poll(f.e, 0);
        int64_t t = wh_timeout_ms(f.e);
        if (t > 0) wh_manual_clock_advance(f.clock, t);
    }
    CHECK_EQ(wh_scripted_count(f.t), 2);
    CHECK_EQ(f.dead, 5);
    CHECK_EQ(f.delivered, 0);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.dead, 5);
    CHECK_EQ(st.queued, 0);
    fx_done(&f);
}

/* wh_flush sends a partial batch at once instead of waiting its linger. */
static void test_flush_sends_partial_batch(void)
{
    fx f;
    fx_init(&f);
    add_batch_ep(&f, 1000, 0, 50, WH_BODY_RAW);
    emit_n(&f, 7, 0);
    CHECK_EQ(wh_flush(f.e, 1000), WH_OK);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(req(&f, 0).submitted_ms, 1000);
    CHECK_EQ(items(req(&f, 0).body, NULL, NULL), 7);
    CHECK_EQ(f.delivered, 7);
    /* after the flush, lingering applies again */
    emit_n(&f, 1, 7);
    CHECK_EQ(wh_timeout_ms(f.e), 50);
    fx_done(&f);
}

/* wh_flush with a deadline shorter than what is pending reports it. */
static void test_flush_deadline_reports_pending(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 5000, NULL, 0), WH_OK);
    add_batch_ep(&f, 1000, 0, 50, WH_BODY_RAW);
    emit_n(&f, 3, 0);
    int rc = wh_flush(f.e, 1000);
    CHECK_EQ(rc, WH_E_TIMEOUT);
    CHECK(strstr(wh_last_error(f.e), "3 job(s) still pending"));
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.in_flight, 1); /* the batch request is still running: kept */
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(f.delivered, 0);
    CHECK_EQ(wh_flush(f.e, 10000), WH_OK);
    CHECK_EQ(f.delivered, 3);
    fx_done(&f);
}

/* ---- bodies ---------------------------------------------------------------- */

static const char *one_body(wh_mode mode, wh_body body, const char *type,
                            const char *channel, const char *data, fx *f)
{
    fx_init(f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.mode = mode;
    ep.body = body;
    ep.batch_linger_ms = 0;
    CHECK_INT(wh_endpoint_add(f->e, &ep), >, 0);
    CHECK_EQ(wh_emit(f->e, type, channel, data, strlen(data), "evt_1"), 1);
    if (mode == WH_MODE_BATCH)
        CHECK_EQ(wh_emit(f->e, type, channel, "[1]", 3, "evt_2"), 1);
    wh_poll(f->e, 0);
    CHECK_EQ(wh_scripted_count(f->t), 1);
    return req(f, 0).body;
}

static void test_bodies_single(void)
{
    fx f;
    const char *data = "{\"text\":\"h\\u00e9\\\"llo\"}";
    CHECK_STR(one_body(WH_MODE_SINGLE, WH_BODY_RAW, "message.created", "room-1", data, &f),
              data);
    fx_done(&f);
    CHECK_STR(one_body(WH_MODE_SINGLE, WH_BODY_STANDARD, "message.created", "room-1", data, &f),
              "{\"type\":\"message.created\",\"timestamp\":\"2023-11-14T22:13:20.000Z\","
              "\"data\":{\"text\":\"h\\u00e9\\\"llo\"}}");
    fx_done(&f);
    CHECK_STR(one_body(WH_MODE_SINGLE, WH_BODY_PUSHER, "member_added", "presence-\"x\"",
                       "{\"user_id\":\"u1\"}", &f),
              /* Pusher's member_added: {name, channel, user_id} */
              "{\"time_ms\":1700000000000,\"events\":[{\"name\":\"member_added\","
              "\"channel\":\"presence-\\\"x\\\"\",\"user_id\":\"u1\"}]}");
    fx_done(&f);
}

static void test_bodies_batch(void)
{
    fx f;
    CHECK_STR(one_body(WH_MODE_BATCH, WH_BODY_RAW, "t", NULL, "{\"a\":1}", &f),
              "[{\"a\":1},[1]]");
    fx_done(&f);
    CHECK_STR(one_body(WH_MODE_BATCH, WH_BODY_STANDARD, "t", NULL, "{\"a\":1}", &f),
              "[{\"type\":\"t\",\"timestamp\":\"2023-11-14T22:13:20.000Z\",\"data\":{\"a\":1}},"
              "{\"type\":\"t\",\"timestamp\":\"2023-11-14T22:13:20.000Z\",\"data\":[1]}]");
    fx_done(&f);
    CHECK_STR(one_body(WH_MODE_BATCH, WH_BODY_PUSHER, "channel_occupied", "beta-x-app",
                       "{}", &f),
              /* Pusher's channel_occupied: {name, channel} */
              "{\"time_ms\":1700000000000,\"events\":["
              "{\"name\":\"channel_occupied\",\"channel\":\"beta-x-app\"},"
              "{\"name\":\"channel_occupied\",\"channel\":\"beta-x-app\"}]}");
    fx_done(&f);
}

/* A batch is not re-serialised: payload bytes (whitespace, key order,
 * escapes) arrive exactly as emitted. */
static void test_batch_payload_bytes_untouched(void)
{
    fx f;
    const char *data = "{ \"b\" : 2 ,\n \"a\":[1, 2.50e1, \"\\u00e9\"] }";
    const char *body = one_body(WH_MODE_BATCH, WH_BODY_RAW, "t", NULL, data, &f);
    char want[256];
    snprintf(want, sizeof want, "[%s,[1]]", data);
    CHECK_STR(body, want);
    fx_done(&f);
}

/* ---- validation of the batch options ---------------------------------------- */

static void test_batch_options_refused(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.mode = WH_MODE_BATCH;
    ep.batch_max_events = 0;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "batch_max_events"));
    ep.batch_max_events = 10;
    ep.batch_max_bytes = 0;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "batch_max_bytes"));
    ep.batch_max_bytes = 1000;
    ep.mode = (wh_mode)7;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "mode"));
    ep.mode = WH_MODE_BATCH;
    ep.body = (wh_body)9;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "body"));
    ep.body = WH_BODY_RAW;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    fx_done(&f);
}

TH_MAIN(TH_CASE(test_lone_event_leaves_after_linger),
        TH_CASE(test_full_batches_leave_without_linger),
        TH_CASE(test_max_bytes),
        TH_CASE(test_batch_retried_as_unit),
        TH_CASE(test_batch_dead_reports_each_event),
        TH_CASE(test_flush_sends_partial_batch),
        TH_CASE(test_flush_deadline_reports_pending),
        TH_CASE(test_bodies_single),
        TH_CASE(test_bodies_batch),
        TH_CASE(test_batch_payload_bytes_untouched),
        TH_CASE(test_batch_options_refused))
