/* Batching, flush, Soketi filters and presets over real HTTP on 127.0.0.1,
 * through the libcurl transport, to the libmicrohttpd test receiver; batch
 * bodies in pieces over the lean transport (sendmsg of the stored
 * payloads) against the same bodies built contiguous for libcurl, to a
 * receiver that reads slowly. */
#include "harness.h"
#include "http_receiver.h"
#include "engine.h"
#include <webhook/webhook.h>
#include <webhook/lean.h>
#include <webhook/test.h>
#include <webhook/verify.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* ---- batch bodies in pieces ------------------------------------------------ */
#define PIECES_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8T9zbBjnQE4="
#define SLOW_MAX 8

/* A receiver that reads slowly through a small receive buffer (so the
 * sender's socket fills and its writes come back short), one connection
 * at a time, keep-alive; it verifies each request's Standard Webhooks
 * signature and keeps the body. */
typedef struct slow_rx {
    int fd, port;
    pthread_t th;
    volatile int stop;
    pthread_mutex_t mu;
    char *body[SLOW_MAX];
    size_t len[SLOW_MAX];
    int verified[SLOW_MAX];
    size_t n;
    char url[64];
} slow_rx;

static int slow_wait(slow_rx *s, int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    while (!s->stop) {
        int r = poll(&p, 1, 50);
        if (r > 0) return 1;
        if (r < 0) return 0;
    }
    return 0;
}

/* One request from fd into a fresh buffer; 0 at the end of the stream. */
static int slow_request(slow_rx *s, int fd)
{
    size_t cap = 1 << 16, got = 0, head = 0;
    char *buf = malloc(cap);
    if (!buf) return 0;
    long clen = -1;
    for (;;) {
        if (head && got >= head + (size_t)clen) break;
        if (got == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
        if (!slow_wait(s, fd)) break;
        /* 4 KiB at a time, a pause between reads */
        size_t want = cap - got < 4096 ? cap - got : 4096;
        ssize_t k = recv(fd, buf + got, want, 0);
        if (k <= 0) break;
        got += (size_t)k;
        usleep(100);
        if (!head) {
            char *end = memmem(buf, got, "\r\n\r\n", 4);
            if (!end) continue;
            head = (size_t)(end - buf) + 4;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (!cl || cl > end) break;
            clen = strtol(cl + 17, NULL, 10);
            if (head + (size_t)clen > cap) {
                char *nb = realloc(buf, cap = head + (size_t)clen);
                if (!nb) break;
                buf = nb;
            }
        }
    }
    if (!head || got < head + (size_t)clen) {
        free(buf);
        return 0;
    }
    char id[128] = "", ts[32] = "", sig[512] = "";
    buf[head - 2] = '\0';
    struct { const char *name; char *out; size_t size; } want[] = {
        {"\r\nwebhook-id: ", id, sizeof id},
        {"\r\nwebhook-timestamp: ", ts, sizeof ts},
        {"\r\nwebhook-signature: ", sig, sizeof sig},
    };
    for (size_t i = 0; i < 3; i++) {
        char *h = strcasestr(buf, want[i].name);
        if (!h) continue;
        h += strlen(want[i].name);
        size_t n = strcspn(h, "\r");
        if (n < want[i].size) memcpy(want[i].out, h, n), want[i].out[n] = '\0';
    }
    char *body = malloc((size_t)clen + 1);
    if (body) {
        memcpy(body, buf + head, (size_t)clen);
        body[clen] = '\0';
    }
    const char *secrets[] = {PIECES_SECRET};
    int ok = body && wh_verify_standard(secrets, 1, id, ts, body, (size_t)clen, sig,
                                        strtoll(ts, NULL, 10), 300) == WH_OK;
    pthread_mutex_lock(&s->mu);
    if (s->n < SLOW_MAX) {
        s->body[s->n] = body;
        s->len[s->n] = (size_t)clen;
        s->verified[s->n++] = ok;
        body = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    free(body);
    free(buf);
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    return send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof answer - 1);
}

static void *slow_main(void *arg)
{
    slow_rx *s = arg;
    while (!s->stop) {
        if (!slow_wait(s, s->fd)) break;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        while (slow_request(s, c)) {
        }
        close(c);
    }
    return NULL;
}

static slow_rx *slow_start(void)
{
    slow_rx *s = calloc(1, sizeof *s);
    CHECK(s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_INT(s->fd, >=, 0);
    int small = 4096; /* inherited by the accepted socket: a small window */
    CHECK_EQ(setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(s->fd, 8), 0);
    socklen_t al = sizeof a;
    CHECK_EQ(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/hook", s->port);
    CHECK_EQ(pthread_create(&s->th, NULL, slow_main, s), 0);
    return s;
}

static void slow_stop(slow_rx *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->fd);
    for (size_t i = 0; i < s->n; i++) free(s->body[i]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static size_t slow_count(slow_rx *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

#define PIECES_EVENTS 1500

/* Event i's payload: mostly over WH__PIECE_MIN bytes (sent in place), every
 * fifth one short (copied into the envelope text). */
static size_t piece_payload(int i, char *out, size_t cap)
{
    size_t want = i % 5 == 4 ? 20 + (size_t)i % 40 : WH__PIECE_MIN + (size_t)(i * 37) % 700;
    int n = snprintf(out, cap, "{\"n\":%d,\"pad\":\"", i);
    size_t o = (size_t)n;
    for (; o < want - 2; o++) out[o] = (char)('a' + (o + (size_t)i) % 26);
    out[o++] = '"';
    out[o++] = '}';
    out[o] = '\0';
    return o;
}

/* One engine on the given transport (NULL: the library's, libcurl) and a
 * manual clock at `wall`, one batch endpoint of `body` to url; emits the
 * PIECES_EVENTS events (one full batch) and polls until `count` says the
 * receiver has the request. */
static void pieces_send(wh_transport *t, const char *url, wh_body body, int64_t wall,
                        size_t (*count)(void *), void *rx)
{
    wh_manual_clock *mc = wh_manual_clock_new(1000, wall);
    CHECK(mc);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(mc);
    o.transport = t;
    o.seed = 7;
    int err = -1;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK_EQ(err, WH_OK);
    static const char *secrets[] = {PIECES_SECRET};
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    ep.mode = WH_MODE_BATCH;
    ep.body = body;
    ep.batch_max_events = PIECES_EVENTS;
    ep.batch_max_bytes = 16u << 20;
    ep.batch_linger_ms = 60000;
    ep.max_in_flight = 1;
    ep.secrets = secrets;
    ep.n_secrets = 1;
    ep.timeout_ms = 10000;
    if (wh_endpoint_add(e, &ep) < 0) th_fail(__FILE__, __LINE__, "add: %s", wh_last_error(e));
    static char data[4096];
    for (int i = 0; i < PIECES_EVENTS; i++) {
        size_t n = piece_payload(i, data, sizeof data);
        CHECK_EQ(wh_emit(e, "message.created", "room-1", data, n, NULL), 1);
    }
    int64_t end = th_now_ms() + 15000;
    while (count(rx) < 1 && th_now_ms() < end) wh_poll(e, 5);
    CHECK_EQ(count(rx), 1);
    /* the answer, so that the engine is idle when freed */
    end = th_now_ms() + 10000;
    while (wh_timeout_ms(e) >= 0 && th_now_ms() < end) wh_poll(e, 5);
    wh_engine_free(e);
    wh_manual_clock_free(mc);
}

static size_t slow_count_v(void *s) { return slow_count(s); }
static size_t recv_count_v(void *r) { return th_recv_count(r); }

/* The same batch of 1,500 events, 1,200 of them over WH__PIECE_MIN bytes:
 * over the lean transport in pieces (more than 1,024 of them, so more
 * than one sendmsg; short writes against a slow reader) and over libcurl
 * contiguous: byte-identical bodies, both signatures verify, and the raw
 * body is exactly the payloads joined. */
static void test_pieces_match_contiguous(wh_body body)
{
    int64_t wall = (int64_t)time(NULL) * 1000;
    slow_rx *s = slow_start();
    wh_transport *lean = NULL;
    CHECK_EQ(wh_transport_lean_new(NULL, &lean), WH_OK);
    wh__lean_set_sndbuf(lean, 16384); /* a small socket buffer: short writes */
    pieces_send(lean, s->url, body, wall, slow_count_v, s);
    wh__lean_sends sc = wh__lean_send_counts(lean);
    fprintf(stderr, "# lean: %llu calls, %llu short, most iovecs %zu\n",
            (unsigned long long)sc.calls, (unsigned long long)sc.short_writes, sc.max_iov);
    /* more than 1,024 pieces: several calls of 1,024 iovecs; the slow reader made some come back short */
    CHECK_EQ(sc.max_iov, 1024);
    CHECK_INT(sc.calls, >=, 2);
    CHECK_INT(sc.short_writes, >=, 1);
    wh_transport_free(lean);

    th_recv_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.secret = PIECES_SECRET;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    pieces_send(NULL, th_recv_url(r), body, wall, recv_count_v, r);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    CHECK_EQ(q.verified, 1);
    CHECK_EQ(s->verified[0], 1);
    CHECK_EQ(s->len[0], q.body_len);
    CHECK(memcmp(s->body[0], q.body, q.body_len) == 0);
    if (body == WH_BODY_RAW) {
        /* [p0,p1,...] */
        static char data[4096];
        size_t o = 0;
        CHECK_EQ(s->body[0][o++], '[');
        for (int i = 0; i < PIECES_EVENTS; i++) {
            size_t n = piece_payload(i, data, sizeof data);
            CHECK(memcmp(s->body[0] + o, data, n) == 0);
            o += n;
            CHECK_EQ(s->body[0][o++], i + 1 < PIECES_EVENTS ? ',' : ']');
        }
        CHECK_EQ(o, s->len[0]);
    } else {
        CHECK(strncmp(s->body[0], "[{\"type\":\"message.created\",\"timestamp\":\"", 40) == 0);
    }
    th_recv_stop(r);
    slow_stop(s);
}

static void test_pieces_raw_match_contiguous(void) { test_pieces_match_contiguous(WH_BODY_RAW); }
static void test_pieces_standard_match_contiguous(void)
{
    test_pieces_match_contiguous(WH_BODY_STANDARD);
}

TH_MAIN(TH_CASE(test_2500_events_as_1000_1000_500),
        TH_CASE(test_lone_event_after_linger),
        TH_CASE(test_flush_delivers_partial_batch),
        TH_CASE(test_soketi_filter_example),
        TH_CASE(test_stream_preset_over_http),
        TH_CASE(test_pieces_raw_match_contiguous),
        TH_CASE(test_pieces_standard_match_contiguous))
