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

/* on_batch_outcome: what one batch callback saw */
#define MAX_BATCHES 16
typedef struct batch_seen {
    wh_outcome_kind kind;
    size_t n_events;
    uint32_t attempt;
    int http_status, error;
    int64_t retry_in_ms;
    char batch_id[64];
    int first, last;  /* {"n":K} of the first and last event */
    int in_order;     /* the events' K rise by one */
    int64_t created0; /* created_ms of the first event */
} batch_seen;

typedef struct batches {
    size_t n;
    batch_seen b[MAX_BATCHES];
    size_t events;
} batches;

static void record_batch(void *user, const wh_batch_outcome *o)
{
    batches *bs = user;
    bs->events += o->n_events;
    if (bs->n == MAX_BATCHES) return;
    batch_seen *r = &bs->b[bs->n++];
    r->kind = o->kind;
    r->n_events = o->n_events;
    r->attempt = o->attempt;
    r->http_status = o->http_status;
    r->error = o->error;
    r->retry_in_ms = o->retry_in_ms;
    snprintf(r->batch_id, sizeof r->batch_id, "%s", o->batch_id ? o->batch_id : "(none)");
    r->in_order = o->n_events > 0 && o->error_msg != NULL;
    for (size_t k = 0; k < o->n_events; k++) {
        int v = atoi(o->events[k].data + 5);
        if (k == 0) {
            r->first = v;
            r->created0 = o->events[k].created_ms;
        } else if (v != r->last + 1) r->in_order = 0;
        r->last = v;
    }
}

/* One callback per request of a batch-mode endpoint, with its events in the
 * body's order; retried whole under the same id; a single-mode endpoint of
 * the same engine still reports per event to on_outcome; events cancelled
 * before a request come as one batch without an id. */
static void test_batch_outcome_per_request(void)
{
    fx f;
    wh_engine_options o;
    tf_options(&f, &o, 7);
    batches bs;
    memset(&bs, 0, sizeof bs);
    o.on_batch_outcome = record_batch;
    o.batch_outcome_user = &bs;
    tf_start(&f, &o);
    CHECK_EQ(wh_scripted_rule(f.t, "http://127.0.0.1:9/batch", 503, WH_OK, 0, NULL, 1), WH_OK);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/batch";
    ep.mode = WH_MODE_BATCH;
    ep.batch_max_events = 1000;
    ep.batch_linger_ms = 10;
    ep.event_types = (const char *[]){"message.created"};
    ep.n_event_types = 1;
    int hb = wh_endpoint_add(f.e, &ep);
    CHECK_INT(hb, >, 0);
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/single";
    ep.event_types = (const char *[]){"single.only"};
    ep.n_event_types = 1;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    emit_n(&f, 1200, 0);
    CHECK_EQ(wh_emit(f.e, "single.only", NULL, "{}", 2, NULL), 1);
    /* the full batch fails (503) and the single event is delivered: one
     * batch outcome for 1,000 events, one outcome */
    CHECK_EQ(wh_poll(f.e, 0), 1001);
    CHECK_EQ(bs.n, 1);
    CHECK_EQ(f.n_out, 1);
    CHECK_EQ(f.delivered, 1);
    CHECK_EQ(bs.b[0].kind, WH_RETRY);
    CHECK_EQ(bs.b[0].n_events, 1000);
    CHECK_EQ(bs.b[0].attempt, 1);
    CHECK_EQ(bs.b[0].http_status, 503);
    CHECK_EQ(bs.b[0].error, WH_E_HTTP_STATUS);
    CHECK_EQ(bs.b[0].retry_in_ms, 2000);
    CHECK_EQ(bs.b[0].first, 0);
    CHECK_EQ(bs.b[0].last, 999);
    CHECK(bs.b[0].in_order);
    CHECK_EQ(bs.b[0].created0, WALL0);
    CHECK_STR(bs.b[0].batch_id, wh_scripted_header(f.t, 0, "webhook-id"));
    /* the other 200 after their linger */
    wh_manual_clock_advance(f.clock, 10);
    CHECK_EQ(wh_poll(f.e, 0), 200);
    CHECK_EQ(bs.n, 2);
    CHECK_EQ(bs.b[1].kind, WH_DELIVERED);
    CHECK_EQ(bs.b[1].n_events, 200);
    CHECK_EQ(bs.b[1].first, 1000);
    CHECK_EQ(bs.b[1].last, 1199);
    CHECK(bs.b[1].in_order);
    CHECK_EQ(bs.b[1].http_status, 200);
    /* the retry: the same 1,000 under the same id, attempt 2 */
    wh_manual_clock_advance(f.clock, 1990);
    CHECK_EQ(wh_poll(f.e, 0), 1000);
    CHECK_EQ(bs.n, 3);
    CHECK_EQ(bs.b[2].kind, WH_DELIVERED);
    CHECK_EQ(bs.b[2].n_events, 1000);
    CHECK_EQ(bs.b[2].attempt, 2);
    CHECK_EQ(bs.b[2].first, 0);
    CHECK_STR(bs.b[2].batch_id, bs.b[0].batch_id);
    /* no per-event outcome for the batch endpoint */
    CHECK_EQ(f.n_out, 1);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.delivered, 1201);
    CHECK_EQ(st.queued, 0);
    /* cancelled before any request: one batch, no id */
    emit_n(&f, 5, 2000);
    CHECK_EQ(wh_endpoint_remove(f.e, hb), WH_OK);
    CHECK_EQ(bs.n, 4);
    CHECK_EQ(bs.b[3].kind, WH_DEAD);
    CHECK_EQ(bs.b[3].n_events, 5);
    CHECK_EQ(bs.b[3].error, WH_E_CANCELLED);
    CHECK_EQ(bs.b[3].attempt, 0);
    CHECK_STR(bs.b[3].batch_id, "(none)");
    CHECK_EQ(bs.b[3].first, 2000);
    CHECK_EQ(bs.events, 2205);
    fx_done(&f);
    /* with outcome_queue: refused */
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_batch_outcome = record_batch;
    eo.outcome_queue = 1;
    int err = 0;
    CHECK(wh_engine_new(&eo, &err) == NULL);
    CHECK_EQ(err, WH_E_INVAL);
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
        TH_CASE(test_batch_outcome_per_request),
        TH_CASE(test_flush_sends_partial_batch),
        TH_CASE(test_flush_deadline_reports_pending),
        TH_CASE(test_bodies_single),
        TH_CASE(test_bodies_batch),
        TH_CASE(test_batch_payload_bytes_untouched),
        TH_CASE(test_batch_options_refused))
