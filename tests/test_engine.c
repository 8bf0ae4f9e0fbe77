/* Engine unit tests on the manual clock and the scripted transport: exact
 * retry times, classification, fan-out, limits, bad input, lifecycle. */
#include "harness.h"
#include <webhook/webhook.h>
#include <webhook/verify.h>
#include <webhook/test.h>

#include <stdlib.h>
#include <string.h>

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define WALL0 1700000000000LL

typedef struct rec_outcome {
    wh_outcome_kind kind;
    int endpoint;
    uint32_t attempt;
    int http_status, error;
    int64_t retry_in_ms;
    char id[160];
    char data[256];
} rec_outcome;

typedef struct fx {
    wh_manual_clock *clock;
    wh_transport *t;
    wh_engine *e;
    rec_outcome out[512];
    size_t n_out;
    int recursive_rc;
    int free_in_callback;
} fx;

static void on_outcome(void *user, const wh_outcome *o)
{
    fx *f = user;
    if (f->n_out < 512) {
        rec_outcome *r = &f->out[f->n_out];
        r->kind = o->kind;
        r->endpoint = o->endpoint;
        r->attempt = o->attempt;
        r->http_status = o->http_status;
        r->error = o->error;
        r->retry_in_ms = o->retry_in_ms;
        snprintf(r->id, sizeof r->id, "%s", o->ev.id);
        snprintf(r->data, sizeof r->data, "%.*s", (int)o->ev.data_len, o->ev.data);
    }
    f->n_out++;
    f->recursive_rc = wh_poll(f->e, 0);
    if (f->free_in_callback) wh_engine_free(f->e);
}

static void fx_init_opts(fx *f, wh_engine_options *o)
{
    memset(f, 0, sizeof *f);
    f->clock = wh_manual_clock_new(1000, WALL0);
    CHECK(f->clock);
    CHECK_EQ(wh_transport_scripted_new(NULL, f->clock, &f->t), WH_OK);
    wh_engine_options_init(o);
    o->clock = wh_manual_clock_vtable(f->clock);
    o->transport = f->t;
    o->transport_owned = 0;
    o->on_outcome = on_outcome;
    o->outcome_user = f;
    o->seed = 42;
}

static void fx_init(fx *f)
{
    wh_engine_options o;
    fx_init_opts(f, &o);
    int err = -99;
    f->e = wh_engine_new(&o, &err);
    CHECK_EQ(err, WH_OK);
    CHECK(f->e);
}

static void fx_done(fx *f)
{
    wh_engine_free(f->e);
    wh_transport_free(f->t);
    wh_manual_clock_free(f->clock);
}

static int add_ep(fx *f, const char *url, uint32_t max_attempts)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {SECRET};
    ep.url = url;
    ep.secrets = secrets;
    ep.n_secrets = 1;
    if (max_attempts) ep.max_attempts = max_attempts;
    int h = wh_endpoint_add(f->e, &ep);
    CHECK_INT(h, >, 0);
    return h;
}

/* Advance simulated time to each next deadline until nothing is pending. */
static void run_to_idle(fx *f, int64_t limit_ms)
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

static void test_delivers_signed_request(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/hook", 0);
    const char *body = "{\"room\":\"r1\",\"text\":\"hi\"}";
    CHECK_EQ(wh_emit(f.e, "message.sent", "room-1", body, strlen(body), NULL), 1);
    CHECK_EQ(wh_timeout_ms(f.e), 0);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_scripted_request r;
    CHECK_EQ(wh_scripted_get(f.t, 0, &r), WH_OK);
    CHECK_STR(r.url, "http://127.0.0.1:9/hook");
    CHECK_EQ(r.body_len, strlen(body));
    CHECK(memcmp(r.body, body, r.body_len) == 0);
    CHECK_STR(wh_scripted_header(f.t, 0, "Content-Type"), "application/json");
    CHECK_STR(wh_scripted_header(f.t, 0, "User-Agent"), "libwebhook/" WH_VERSION_STRING);
    CHECK_STR(wh_scripted_header(f.t, 0, "webhook-attempt"), "1");
    CHECK_STR(wh_scripted_header(f.t, 0, "webhook-timestamp"), "1700000000");
    const char *id = wh_scripted_header(f.t, 0, "webhook-id");
    CHECK(id && strlen(id) == 36 && id[14] == '7' && id[8] == '-');
    const char *sig = wh_scripted_header(f.t, 0, "webhook-signature");
    CHECK(sig && strncmp(sig, "v1,", 3) == 0);
    const char *secrets[] = {SECRET};
    CHECK_EQ(wh_verify_standard(secrets, 1, id, "1700000000", body, strlen(body), sig,
                                1700000000, 0), WH_OK);
    /* tampered body must not verify */
    CHECK_EQ(wh_verify_standard(secrets, 1, id, "1700000000", "{}", 2, sig,
                                1700000000, 0), WH_E_SIGNATURE);
    CHECK_EQ(f.n_out, 1);
    CHECK_EQ(f.out[0].kind, WH_DELIVERED);
    CHECK_EQ(f.out[0].http_status, 200);
    CHECK_STR(f.out[0].id, id);
    CHECK_STR(f.out[0].data, body);
    CHECK_EQ(f.recursive_rc, WH_E_RECURSIVE);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.emitted, 1);
    CHECK_EQ(st.delivered, 1);
    CHECK_EQ(st.requests, 1);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.in_flight, 0);
    CHECK_EQ(wh_timeout_ms(f.e), -1);
    fx_done(&f);
}

static void test_exact_retry_schedule_then_dead(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/a", 5);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, NULL, 0), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    run_to_idle(&f, 3600 * 1000);
    /* attempts at 0, +2 s, +4 s, +8 s, +16 s after the first */
    static const int64_t at[] = {1000, 3000, 7000, 15000, 31000};
    CHECK_EQ(wh_scripted_count(f.t), 5);
    const char *id0 = wh_scripted_header(f.t, 0, "webhook-id");
    for (size_t i = 0; i < 5; i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        CHECK_EQ(r.submitted_ms, at[i]);
        CHECK_STR(wh_scripted_header(f.t, i, "webhook-id"), id0);
        char num[8];
        snprintf(num, sizeof num, "%zu", i + 1);
        CHECK_STR(wh_scripted_header(f.t, i, "webhook-attempt"), num);
    }
    CHECK_EQ(f.n_out, 5);
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(f.out[i].kind, WH_RETRY);
        CHECK_EQ(f.out[i].retry_in_ms, 2000LL << i);
        CHECK_EQ(f.out[i].http_status, 503);
        CHECK_EQ(f.out[i].error, WH_E_HTTP_STATUS);
    }
    CHECK_EQ(f.out[4].kind, WH_DEAD);
    CHECK_EQ(f.out[4].attempt, 5);
    CHECK_EQ(f.out[4].http_status, 503);
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.dead, 1);
    CHECK_EQ(st.retries, 4);
    CHECK_EQ(st.requests, 5);
    fx_done(&f);
}

static void test_backoff_capped_at_five_minutes(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/a", 11);
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
    wh_emit(f.e, "t", NULL, "1", 1, NULL);
    run_to_idle(&f, 24LL * 3600 * 1000);
    static const int64_t delays[] = {2000, 4000, 8000, 16000, 32000, 64000,
                                     128000, 256000, 300000, 300000};
    CHECK_EQ(wh_scripted_count(f.t), 11);
    for (size_t i = 1; i < 11; i++) {
        wh_scripted_request a, b;
        wh_scripted_get(f.t, i - 1, &a);
        wh_scripted_get(f.t, i, &b);
        CHECK_EQ(b.submitted_ms - a.submitted_ms, delays[i - 1]);
    }
    CHECK_EQ(f.out[f.n_out - 1].kind, WH_DEAD);
    fx_done(&f);
}

static void test_classification(void)
{
    /* status -> expected attempts with max_attempts 3 (410 disables the
     * endpoint instead: tests/test_retry.c) */
    static const struct { int status, error, attempts; } cases[] = {
        {400, WH_OK, 1}, {401, WH_OK, 1}, {404, WH_OK, 1},
        {301, WH_OK, 1}, {408, WH_OK, 3}, {429, WH_OK, 3}, {500, WH_OK, 3},
        {502, WH_OK, 3}, {0, WH_E_CONNECT, 3}, {0, WH_E_TRANSPORT, 3},
        {0, WH_E_TIMEOUT, 3}, {204, WH_OK, 1}, {299, WH_OK, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fx f;
        fx_init(&f);
        add_ep(&f, "http://127.0.0.1:9/a", 3);
        wh_scripted_rule(f.t, NULL, cases[c].status, cases[c].error, 10, NULL, 0);
        wh_emit(f.e, "t", NULL, "{}", 2, NULL);
        run_to_idle(&f, 3600 * 1000);
        if ((long long)wh_scripted_count(f.t) != cases[c].attempts)
            th_fail(__FILE__, __LINE__, "status %d error %d: %zu attempts, want %d",
                    cases[c].status, cases[c].error, wh_scripted_count(f.t),
                    cases[c].attempts);
        int ok = cases[c].status >= 200 && cases[c].status < 300;
        CHECK_EQ(f.out[f.n_out - 1].kind, ok ? WH_DELIVERED : WH_DEAD);
        if (!ok)
            CHECK_EQ(f.out[f.n_out - 1].error,
                     cases[c].error ? cases[c].error : WH_E_HTTP_STATUS);
        fx_done(&f);
    }
}

static void test_timeout_of_hanging_endpoint(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/slow";
    ep.timeout_ms = 3000;
    ep.max_attempts = 2;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0);
    wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    run_to_idle(&f, 60000);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    wh_scripted_request r0, r1;
    wh_scripted_get(f.t, 0, &r0);
    wh_scripted_get(f.t, 1, &r1);
    CHECK_EQ(r0.completed_ms - r0.submitted_ms, 3000);
    CHECK_EQ(r1.submitted_ms, r0.completed_ms + 2000);
    CHECK_EQ(f.out[0].kind, WH_RETRY);
    CHECK_EQ(f.out[0].error, WH_E_TIMEOUT);
    CHECK_EQ(f.out[1].kind, WH_DEAD);
    CHECK_EQ(f.out[1].error, WH_E_TIMEOUT);
    fx_done(&f);
}

static void test_fanout_same_id_and_caller_id(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    add_ep(&f, "http://127.0.0.1:9/b", 0);
    add_ep(&f, "http://127.0.0.1:9/c", 0);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "[1,2]", 5, "evt_123"), 3);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "[3]", 3, NULL), 3);
    run_to_idle(&f, 1000);
    CHECK_EQ(wh_scripted_count(f.t), 6);
    int seen_abc[3] = {0, 0, 0};
    const char *gen = NULL;
    for (size_t i = 0; i < 6; i++) {
        wh_scripted_request r;
        wh_scripted_get(f.t, i, &r);
        const char *id = wh_scripted_header(f.t, i, "webhook-id");
        if (r.body_len == 5) {
            CHECK_STR(id, "evt_123");
            seen_abc[r.url[strlen(r.url) - 1] - 'a']++;
        } else {
            if (!gen) gen = id;
            CHECK_STR(id, gen);
        }
    }
    CHECK(seen_abc[0] == 1 && seen_abc[1] == 1 && seen_abc[2] == 1);
    CHECK(gen && strcmp(gen, "evt_123") != 0);
    /* ids: invalid caller ids are refused */
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, "has space"), WH_E_INVAL);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, ""), WH_E_INVAL);
    fx_done(&f);
}

static void test_generated_ids_unique(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    for (int i = 0; i < 300; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    run_to_idle(&f, 1000);
    CHECK_EQ(wh_scripted_count(f.t), 300);
    for (size_t i = 0; i < 300; i++)
        for (size_t j = i + 1; j < 300; j++)
            CHECK(strcmp(wh_scripted_header(f.t, i, "webhook-id"),
                         wh_scripted_header(f.t, j, "webhook-id")) != 0);
    fx_done(&f);
}

static void test_bad_input_rejected_nothing_lost(void)
{
    fx f;
    wh_engine_options o;
    fx_init_opts(&f, &o);
    o.max_payload_bytes = 64;
    f.e = wh_engine_new(&o, NULL);
    CHECK(f.e);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    CHECK_EQ(wh_emit(f.e, "ok", NULL, "{\"a\":1}", 7, NULL), 1);
    CHECK_EQ(wh_emit(NULL, "t", NULL, "{}", 2, NULL), WH_E_INVAL);
    CHECK_EQ(wh_emit(f.e, NULL, NULL, "{}", 2, NULL), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "type"));
    CHECK_EQ(wh_emit(f.e, "t", NULL, NULL, 2, NULL), WH_E_INVAL);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{\"a\":", 5, NULL), WH_E_JSON);
    CHECK(strstr(wh_last_error(f.e), "JSON"));
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{\"a\":1} x", 9, NULL), WH_E_JSON);
    char big[100];
    memset(big, ' ', sizeof big);
    big[0] = '1';
    CHECK_EQ(wh_emit(f.e, "t", NULL, big, sizeof big, NULL), WH_E_TOO_LARGE);
    CHECK(strstr(wh_last_error(f.e), "64"));
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.emitted, 1);
    CHECK_EQ(st.rejected, 5);
    run_to_idle(&f, 1000);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(f.out[0].kind, WH_DELIVERED);
    CHECK_STR(f.out[0].data, "{\"a\":1}");
    CHECK_EQ(wh_poll(NULL, 0), WH_E_INVAL);
    CHECK_EQ(wh_stats_get(NULL, &st), WH_E_INVAL);
    CHECK_EQ(wh_timeout_ms(NULL), -1);
    fx_done(&f);
}

static void test_endpoint_validation(void)
{
    fx f;
    fx_init(&f);
    static const char *bad_urls[] = {"ftp://x/", "http://", "https:///p", "x",
                                     "http://a b/", "http://h:99999/", "http://h:/",
                                     "http://h\r\n/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        wh_endpoint_options ep;
        wh_endpoint_options_init(&ep);
        ep.url = bad_urls[i];
        CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_URL);
        CHECK(strstr(wh_last_error(f.e), "url"));
    }
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL); /* no URL */
    CHECK_EQ(wh_endpoint_add(f.e, NULL), WH_E_INVAL);
    ep.url = "https://example.com/h";
    const char *hdr_crlf[] = {"X-A: b\r\nInjected: 1"};
    ep.headers = hdr_crlf;
    ep.n_headers = 1;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_HEADER);
    CHECK(strstr(wh_last_error(f.e), "headers[0]"));
    const char *hdr_name[] = {"Bad Name: x"};
    ep.headers = hdr_name;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_HEADER);
    ep.headers = NULL;
    ep.n_headers = 0;
    const char *bad_secret[] = {"whsec_!!!"};
    ep.secrets = bad_secret;
    ep.n_secrets = 1;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_SECRET);
    ep.secrets = NULL;
    ep.n_secrets = 0;
    ep.max_attempts = 0;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    ep.max_attempts = 3;
    ep.id = "orders";
    int h = wh_endpoint_add(f.e, &ep);
    CHECK_INT(h, >, 0);
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_EXISTS);
    CHECK_EQ(wh_endpoint_find(f.e, "orders"), h);
    CHECK_EQ(wh_endpoint_find(f.e, "nope"), WH_E_NOT_FOUND);
    /* an older, smaller options struct (up to url) still works */
    wh_endpoint_options small;
    memset(&small, 0, sizeof small);
    small.struct_size = offsetof(wh_endpoint_options, url) + sizeof(const char *);
    small.url = "http://127.0.0.1:1/x";
    CHECK_INT(wh_endpoint_add(f.e, &small), >, 0);
    small.struct_size = 4;
    CHECK_EQ(wh_endpoint_add(f.e, &small), WH_E_VERSION);
    fx_done(&f);
}

static void test_routing_filters(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/all"; /* event_types NULL: everything */
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    const char *types[] = {"member.joined", "member.left"};
    ep.url = "http://127.0.0.1:9/members";
    ep.event_types = types;
    ep.n_event_types = 2;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    ep.url = "http://127.0.0.1:9/none";
    ep.n_event_types = 0; /* non-NULL list, no entries: nothing */
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    const char *star[] = {"*"};
    ep.url = "http://127.0.0.1:9/beta";
    ep.event_types = star;
    ep.n_event_types = 1;
    ep.channel_prefix = "beta-";
    ep.channel_suffix = "-app";
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    CHECK_EQ(wh_emit(f.e, "message.sent", "room", "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "member.left", "room", "{}", 2, NULL), 2);
    CHECK_EQ(wh_emit(f.e, "x", "chat-room", "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "x", "beta-chat-room", "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "x", "chat-room-app", "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "x", "beta-chat-room-app", "{}", 2, NULL), 2);
    CHECK_EQ(wh_emit(f.e, "x", NULL, "{}", 2, NULL), 1);
    fx_done(&f);
}

static void test_queue_full_is_backpressure(void)
{
    fx f;
    wh_engine_options o;
    fx_init_opts(&f, &o);
    o.max_queued_events = 3;
    f.e = wh_engine_new(&o, NULL);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    for (int i = 0; i < 3; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), WH_E_FULL);
    CHECK(strstr(wh_last_error(f.e), "full"));
    run_to_idle(&f, 1000);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    run_to_idle(&f, 1000);
    CHECK_EQ(wh_scripted_count(f.t), 4);
    fx_done(&f);
}

static void test_max_in_flight_respected(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/a";
    ep.max_in_flight = 3;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    wh_scripted_rule(f.t, NULL, 200, WH_OK, 100, NULL, 0);
    for (int i = 0; i < 10; i++) wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 3);
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.in_flight, 3);
    CHECK_EQ(st.queued, 7);
    run_to_idle(&f, 10000);
    CHECK_EQ(wh_scripted_count(f.t), 10);
    /* at any instant at most 3 requests overlap */
    for (size_t i = 0; i < 10; i++) {
        wh_scripted_request a;
        wh_scripted_get(f.t, i, &a);
        int overlap = 0;
        for (size_t j = 0; j < 10; j++) {
            wh_scripted_request b;
            wh_scripted_get(f.t, j, &b);
            if (b.submitted_ms <= a.submitted_ms && b.completed_ms > a.submitted_ms)
                overlap++;
        }
        CHECK_INT(overlap, <=, 3);
    }
    wh_scripted_request last;
    wh_scripted_get(f.t, 9, &last);
    CHECK_EQ(last.completed_ms, 1000 + 400); /* 4 waves of 100 ms */
    fx_done(&f);
}

static void test_slow_endpoint_does_not_delay_others(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/slow";
    ep.timeout_ms = 10000;
    ep.max_in_flight = 2;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    ep.url = "http://127.0.0.1:9/fast";
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    wh_scripted_rule(f.t, "http://127.0.0.1:9/slow", 200, WH_OK, -1, NULL, 0);
    for (int i = 0; i < 20; i++) wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    int64_t t0 = wh_manual_clock_now(f.clock);
    for (int i = 0; i < 20; i++) wh_poll(f.e, 1);
    size_t fast = 0;
    for (size_t i = 0; i < f.n_out; i++)
        if (f.out[i].kind == WH_DELIVERED) fast++;
    CHECK_EQ(fast, 20);
    CHECK_INT(wh_manual_clock_now(f.clock) - t0, <, 100);
    fx_done(&f);
}

static void test_remove_and_free_report_cancelled(void)
{
    fx f;
    fx_init(&f);
    int a = add_ep(&f, "http://127.0.0.1:9/a", 0);
    add_ep(&f, "http://127.0.0.1:9/b", 0);
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0);
    for (int i = 0; i < 40; i++) wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    wh_poll(f.e, 0); /* 30 in flight per endpoint, 10 queued each */
    CHECK_EQ(wh_endpoint_remove(f.e, a), WH_OK);
    CHECK_EQ(wh_endpoint_remove(f.e, a), WH_E_NOT_FOUND);
    CHECK_EQ(f.n_out, 40);
    for (size_t i = 0; i < f.n_out; i++) {
        CHECK_EQ(f.out[i].kind, WH_DEAD);
        CHECK_EQ(f.out[i].error, WH_E_CANCELLED);
        CHECK_EQ(f.out[i].endpoint, a);
    }
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    wh_engine_free(f.e);
    CHECK_EQ(f.n_out, 81);
    f.e = NULL;
    fx_done(&f);
}

static void test_free_inside_callback_is_deferred(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    f.free_in_callback = 1;
    wh_poll(f.e, 0); /* frees the engine after the callback returns */
    CHECK_EQ(f.n_out, 1);
    f.e = NULL;
    fx_done(&f);
}

static void test_flush_drains_in_simulated_time(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    wh_scripted_rule(f.t, NULL, 503, WH_OK, 5, NULL, 2);
    for (int i = 0; i < 5; i++) wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    CHECK_EQ(wh_flush(f.e, 60000), WH_OK);
    wh_stats st;
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.delivered, 5);
    CHECK_EQ(st.retries, 2);
    /* a deadline too short leaves work queued and says so */
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
    wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    CHECK_EQ(wh_flush(f.e, 1000), WH_E_TIMEOUT);
    wh_stats_get(f.e, &st);
    CHECK_EQ(st.queued, 1);
    fx_done(&f);
}

static void test_timeout_ms_reports_next_deadline(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(wh_timeout_ms(f.e), -1);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 1);
    wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    CHECK_EQ(wh_timeout_ms(f.e), 0);
    wh_poll(f.e, 0);
    CHECK_EQ(f.out[0].kind, WH_RETRY);
    CHECK_EQ(wh_timeout_ms(f.e), 2000);
    wh_manual_clock_advance(f.clock, 1500);
    CHECK_EQ(wh_timeout_ms(f.e), 500);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1); /* not yet */
    wh_manual_clock_advance(f.clock, 500);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    CHECK_EQ(wh_timeout_ms(f.e), -1);
    fx_done(&f);
}

static void test_generated_ids_never_collide(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/a";
    ep.id = "ep-2";
    CHECK_EQ(wh_endpoint_add(f.e, &ep), 1);
    ep.id = NULL;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), 2); /* would be "ep-2" */
    CHECK_EQ(wh_endpoint_find(f.e, "ep-2"), 1);
    CHECK_EQ(wh_endpoint_find(f.e, "ep-2-2"), 2);
    fx_done(&f);
}

static void test_huge_backoff_values_saturate(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/a";
    ep.max_attempts = 4;
    ep.retry_initial_ms = 4294967294u;
    ep.retry_max_ms = 4294967295u;
    ep.retry_multiplier = 4294967295u;
    CHECK_INT(wh_endpoint_add(f.e, &ep), >, 0);
    wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 0);
    wh_emit(f.e, "t", NULL, "{}", 2, NULL);
    for (int i = 0; i < 4; i++) {
        wh_poll(f.e, 0);
        int64_t t = wh_timeout_ms(f.e);
        if (t < 0) break;
        wh_manual_clock_advance(f.clock, t);
    }
    CHECK_EQ(f.n_out, 4);
    CHECK_EQ(f.out[0].retry_in_ms, 4294967294LL);
    CHECK_EQ(f.out[1].retry_in_ms, 4294967295LL);
    CHECK_EQ(f.out[2].retry_in_ms, 4294967295LL);
    CHECK_EQ(f.out[3].kind, WH_DEAD);
    fx_done(&f);
}

static void test_strerror_and_version(void)
{
    CHECK_STR(wh_strerror(WH_OK), "success");
    CHECK_STR(wh_strerror(WH_E_URL), "invalid URL");
    CHECK_STR(wh_status_name(WH_E_FULL), "WH_E_FULL");
    CHECK_STR(wh_strerror(12345), "unknown status");
    CHECK_STR(wh_version(0), WH_VERSION_STRING);
    CHECK(wh_version(WH_VERSION_NUM + 1) == NULL);
    int err = 0;
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.struct_size = 2;
    CHECK(wh_engine_new(&o, &err) == NULL);
    CHECK_EQ(err, WH_E_VERSION);
}

/* wh_flush(e, INT64_MAX) waits as long as it takes: the deadline saturates
 * instead of overflowing into the past (issue 15, F2). */
static void test_flush_without_deadline(void)
{
    fx f;
    fx_init(&f);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    wh_scripted_rule(f.t, NULL, 503, WH_OK, 5, NULL, 3);
    for (int i = 0; i < 3; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_flush(f.e, INT64_MAX), WH_OK);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.delivered, 3);
    CHECK_EQ(st.retries, 3);
    CHECK_EQ(st.queued, 0);
    fx_done(&f);
}

static int destroyed;
static void count_destroy(void *user)
{
    (void)user;
    destroyed++;
}

/* wh_engine_new takes nothing on failure: a transport or queue handed in
 * with *_owned = 1 stays the caller's (no leak, no double free under
 * ASan), and what the engine made itself is freed. */
static void test_engine_new_failure_takes_nothing(void)
{
    wh_manual_clock *mc = wh_manual_clock_new(1000, WALL0);
    CHECK(mc);
    wh_transport *t = NULL;
    CHECK_EQ(wh_transport_scripted_new(NULL, mc, &t), WH_OK);
    /* a clock of an unknown version, owned transport */
    wh_clock bad_clock = *wh_manual_clock_vtable(mc);
    bad_clock.version = 0;
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = &bad_clock;
    o.transport = t;
    o.transport_owned = 1;
    int err = -99;
    CHECK(wh_engine_new(&o, &err) == NULL);
    CHECK_EQ(err, WH_E_VERSION);
    /* a queue of an unknown version, both owned */
    wh_queue q;
    memset(&q, 0, sizeof q);
    q.version = 0;
    q.destroy = count_destroy;
    destroyed = 0;
    o.clock = wh_manual_clock_vtable(mc);
    o.queue = &q;
    o.queue_owned = 1;
    err = -99;
    CHECK(wh_engine_new(&o, &err) == NULL);
    CHECK_EQ(err, WH_E_VERSION);
    CHECK_EQ(destroyed, 0);
    /* the default transport, made by the engine, is freed by it (ASan:
     * no leak) */
    o.transport = NULL;
    err = -99;
    CHECK(wh_engine_new(&o, &err) == NULL);
    CHECK_EQ(err, WH_E_VERSION);
    CHECK_EQ(destroyed, 0);
    /* the transport is still ours and still works */
    o.transport = t;
    o.queue = NULL;
    o.on_outcome = NULL;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/a";
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_flush(e, 1000), WH_OK);
    CHECK_EQ(wh_scripted_count(t), 1);
    wh_engine_free(e); /* owned now: frees t */
    wh_manual_clock_free(mc);
}

typedef struct chain {
    wh_engine *e;
    int delivered_t, delivered_u, emit_rc;
    int64_t in_flight_seen;
} chain;

static void chain_outcome(void *user, const wh_outcome *o)
{
    chain *c = user;
    if (o->kind != WH_DELIVERED) return;
    if (strcmp(o->ev.type, "t") == 0) {
        c->delivered_t++;
        /* outcomes come after the round: the engine's counters already
         * include this answer */
        wh_stats st;
        wh_stats_get(c->e, &st);
        c->in_flight_seen = (int64_t)st.in_flight;
        c->emit_rc = wh_emit(c->e, "u", NULL, "{\"k\":1}", 7, NULL);
    } else {
        c->delivered_u++;
    }
}

/* A callback may emit: the event it emits is delivered like any other. */
static void test_outcome_callback_may_emit(void)
{
    fx f;
    wh_engine_options o;
    fx_init_opts(&f, &o);
    chain c = {0};
    o.on_outcome = chain_outcome;
    o.outcome_user = &c;
    int err;
    f.e = c.e = wh_engine_new(&o, &err);
    CHECK(c.e);
    add_ep(&f, "http://127.0.0.1:9/a", 0);
    CHECK_EQ(wh_emit(c.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_flush(c.e, 10000), WH_OK);
    CHECK_EQ(c.delivered_t, 1);
    CHECK_EQ(c.emit_rc, 1);
    CHECK_EQ(c.in_flight_seen, 0);
    CHECK_EQ(c.delivered_u, 1);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    fx_done(&f);
}

TH_MAIN(TH_CASE(test_delivers_signed_request),
        TH_CASE(test_exact_retry_schedule_then_dead),
        TH_CASE(test_backoff_capped_at_five_minutes),
        TH_CASE(test_classification),
        TH_CASE(test_timeout_of_hanging_endpoint),
        TH_CASE(test_fanout_same_id_and_caller_id),
        TH_CASE(test_generated_ids_unique),
        TH_CASE(test_bad_input_rejected_nothing_lost),
        TH_CASE(test_endpoint_validation),
        TH_CASE(test_routing_filters),
        TH_CASE(test_queue_full_is_backpressure),
        TH_CASE(test_max_in_flight_respected),
        TH_CASE(test_slow_endpoint_does_not_delay_others),
        TH_CASE(test_remove_and_free_report_cancelled),
        TH_CASE(test_free_inside_callback_is_deferred),
        TH_CASE(test_flush_drains_in_simulated_time),
        TH_CASE(test_timeout_ms_reports_next_deadline),
        TH_CASE(test_generated_ids_never_collide),
        TH_CASE(test_huge_backoff_values_saturate),
        TH_CASE(test_strerror_and_version),
        TH_CASE(test_flush_without_deadline),
        TH_CASE(test_engine_new_failure_takes_nothing),
        TH_CASE(test_outcome_callback_may_emit))
