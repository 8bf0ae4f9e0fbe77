/* Batching, flush, Soketi filters and presets over real HTTP on 127.0.0.1,
 * through the libcurl transport, to the libmicrohttpd test receiver. */
#include "harness.h"
#include "http_receiver.h"
#include <webhook/webhook.h>
#include <webhook/verify.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEX_SECRET "soketi-app-secret"

static wh_engine *engine(void)
{
    int err = -1;
    wh_engine *e = wh_engine_new(NULL, &err);
    CHECK_EQ(err, WH_OK);
    CHECK(e);
    return e;
}

static int add_batch(wh_engine *e, const char *url, uint32_t max_events,
                     uint32_t linger_ms)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    ep.mode = WH_MODE_BATCH;
    ep.batch_max_events = max_events;
    ep.batch_linger_ms = linger_ms;
    int h = wh_endpoint_add(e, &ep);
    if (h < 0) th_fail(__FILE__, __LINE__, "add: %s", wh_last_error(e));
    return h;
}

/* Poll until the receiver has n requests or timeout_ms passed. */
static size_t poll_until(wh_engine *e, th_recv *r, size_t n, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    while (th_recv_count(r) < n && th_now_ms() < end) wh_poll(e, 5);
    return th_recv_count(r);
}

static size_t items(const char *body)
{
    size_t n = 0;
    for (const char *p = body; (p = strstr(p, "{\"n\":")); p += 5) n++;
    return n;
}

/* 2,500 events at once, max 1,000 per batch, linger 500 ms: two requests of
 * 1,000 leave at once (well before the linger), then one of 500 after it. */
static void test_2500_events_as_1000_1000_500(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    wh_engine *e = engine();
    add_batch(e, th_recv_url(r), 1000, 500);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < 2500; i++) {
        char data[32];
        int len = snprintf(data, sizeof data, "{\"n\":%d}", i);
        CHECK_EQ(wh_emit(e, "message.created", NULL, data, (size_t)len, NULL), 1);
    }
    CHECK_EQ(poll_until(e, r, 3, 10000), 3);
    th_recv_req q[3];
    for (size_t i = 0; i < 3; i++) CHECK_EQ(th_recv_get(r, i, &q[i]), 0);
    CHECK_EQ(items(q[0].body), 1000);
    CHECK_EQ(items(q[1].body), 1000);
    CHECK_EQ(items(q[2].body), 500);
    /* the first two did not wait for the linger; the last one did */
    CHECK_INT(q[0].at_ms - t0, <, 500);
    CHECK_INT(q[1].at_ms - t0, <, 500);
    CHECK_INT(q[2].at_ms - t0, >=, 499);
    /* every event once, in order across the three bodies */
    CHECK(strncmp(q[0].body, "[{\"n\":0}", 8) == 0 || strncmp(q[1].body, "[{\"n\":0}", 8) == 0);
    CHECK(strncmp(q[2].body, "[{\"n\":2000}", 11) == 0);
    CHECK(strstr(q[2].body, "{\"n\":2499}]"));
    CHECK(strcmp(q[0].webhook_id, q[1].webhook_id) != 0);
    wh_engine_free(e);
    th_recv_stop(r);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A lone event arrives its linger after the emit, within 10 ms (median of
 * five, so one scheduling hiccup of a shared machine does not decide). */
static void test_lone_event_after_linger(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    wh_engine *e = engine();
    add_batch(e, th_recv_url(r), 1000, 100);
    int64_t delays[5];
    for (int i = 0; i < 5; i++) {
        int64_t t0 = th_now_ms();
        CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":1}", 7, NULL), 1);
        CHECK_EQ(poll_until(e, r, (size_t)i + 1, 5000), (size_t)i + 1);
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, (size_t)i, &q), 0);
        CHECK_INT(q.at_ms - t0, >=, 99); /* never before the linger */
        delays[i] = q.at_ms - t0;
        while (wh_timeout_ms(e) >= 0) wh_poll(e, 5); /* let it complete */
    }
    qsort(delays, 5, sizeof delays[0], cmp_i64);
    CHECK_INT(delays[2], >=, 100 - 1);
    CHECK_INT(delays[2], <=, 100 + 10);
    wh_engine_free(e);
    th_recv_stop(r);
}

/* wh_flush with a 50 ms linger pending and a 1 s deadline delivers the
 * partial batch before returning. */
static void test_flush_delivers_partial_batch(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    wh_engine *e = engine();
    add_batch(e, th_recv_url(r), 1000, 50);
    for (int i = 0; i < 3; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":1}", 7, NULL), 1);
    CHECK_EQ(wh_flush(e, 1000), WH_OK);
    CHECK_EQ(th_recv_count(r), 1);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    CHECK_EQ(items(q.body), 3);
    CHECK_EQ(q.answered, 200);
    wh_stats st;
    CHECK_EQ(wh_stats_get(e, &st), WH_OK);
    CHECK_EQ(st.delivered, 3);
    CHECK_EQ(st.queued, 0);
    wh_engine_free(e);
    th_recv_stop(r);
}

/* Soketi's filter example, from a Soketi app's webhooks entry verbatim, with
 * batching on: only beta-chat-room-app triggers the webhook, sent as one
 * Pusher request signed with the app secret. */
static void test_soketi_filter_example(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    wh_engine *e = engine();
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"key\": \"app-key\", \"secret\": \"" HEX_SECRET "\","
             " \"batching\": {\"enabled\": true, \"duration_ms\": 50},"
             " \"webhooks\": [{"
             "  \"url\": \"%s\","
             "  \"event_types\": [\"channel_occupied\"],"
             "  \"filter\": {\"channel_name_starts_with\": \"beta-\","
             "              \"channel_name_ends_with\": \"-app\"},"
             "  \"headers\": {\"X-Custom-Header\": \"Custom Header\"}}]}",
             th_recv_url(r));
    if (wh_config_load(e, doc, strlen(doc)) != WH_OK)
        th_fail(__FILE__, __LINE__, "config: %s", wh_last_error(e));
    const char *channels[] = {"chat-room", "beta-chat-room", "chat-room-app",
                              "beta-chat-room-app"};
    int matched[4];
    for (int i = 0; i < 4; i++)
        matched[i] = wh_emit(e, "channel_occupied", channels[i], "{}", 2, NULL);
    CHECK_EQ(matched[0], 0);
    CHECK_EQ(matched[1], 0);
    CHECK_EQ(matched[2], 0);
    CHECK_EQ(matched[3], 1);
    /* another type on a matching channel: not subscribed */
    CHECK_EQ(wh_emit(e, "member_added", "beta-chat-room-app", "{}", 2, NULL), 0);
    CHECK_EQ(wh_flush(e, 2000), WH_OK);
    CHECK_EQ(th_recv_count(r), 1);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    CHECK(strncmp(q.body, "{\"time_ms\":", 11) == 0);
    CHECK(strstr(q.body, "\"events\":[{\"name\":\"channel_occupied\","
                         "\"channel\":\"beta-chat-room-app\""));
    char v[128];
    CHECK(th_recv_header(&q, "X-Custom-Header", v, sizeof v));
    CHECK_STR(v, "Custom Header");
    CHECK(th_recv_header(&q, "X-Pusher-Key", v, sizeof v));
    CHECK_STR(v, "app-key");
    CHECK(th_recv_header(&q, "X-Pusher-Signature", v, sizeof v));
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, q.body, q.body_len, v), WH_OK);
    wh_engine_free(e);
    th_recv_stop(r);
}

/* Stream's headers and hex signature survive the wire. */
static void test_stream_preset_over_http(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    wh_engine *e = engine();
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {HEX_SECRET};
    ep.url = th_recv_url(r);
    ep.preset = "stream";
    ep.secrets = secrets;
    ep.n_secrets = 1;
    ep.api_key = "stream-key";
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    const char *body = "{\"type\":\"call.session_started\"}";
    CHECK_EQ(wh_emit(e, "call.session_started", NULL, body, strlen(body), "evt-9"), 1);
    CHECK_EQ(wh_flush(e, 5000), WH_OK);
    CHECK_EQ(th_recv_count(r), 1);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    char v[128];
    CHECK(th_recv_header(&q, "X-WEBHOOK-ID", v, sizeof v));
    CHECK_STR(v, "evt-9");
    CHECK(th_recv_header(&q, "X-WEBHOOK-ATTEMPT", v, sizeof v));
    CHECK_STR(v, "1");
    CHECK(th_recv_header(&q, "X-API-KEY", v, sizeof v));
    CHECK_STR(v, "stream-key");
    CHECK(th_recv_header(&q, "X-SIGNATURE", v, sizeof v));
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, q.body, q.body_len, v), WH_OK);
    CHECK(!th_recv_header(&q, "webhook-signature", v, sizeof v));
    wh_engine_free(e);
    th_recv_stop(r);
}

TH_MAIN(TH_CASE(test_2500_events_as_1000_1000_500),
        TH_CASE(test_lone_event_after_linger),
        TH_CASE(test_flush_delivers_partial_batch),
        TH_CASE(test_soketi_filter_example),
        TH_CASE(test_stream_preset_over_http))
