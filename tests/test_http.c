/* The engine over real HTTP on 127.0.0.1: libcurl transport against an
 * in-process libmicrohttpd receiver. */
#include "harness.h"
#include "http_receiver.h"
#include <webhook/webhook.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

typedef struct counts {
    int delivered, retry, dead;
    int last_error;
    uint32_t max_attempt_delivered;
    uint32_t min_attempt_delivered;
} counts;

static void on_outcome(void *user, const wh_outcome *o)
{
    counts *c = user;
    if (o->kind == WH_DELIVERED) {
        c->delivered++;
        if (o->attempt > c->max_attempt_delivered) c->max_attempt_delivered = o->attempt;
        if (!c->min_attempt_delivered || o->attempt < c->min_attempt_delivered)
            c->min_attempt_delivered = o->attempt;
    } else if (o->kind == WH_RETRY) {
        c->retry++;
    } else {
        c->dead++;
        c->last_error = o->error;
    }
}

static wh_engine *engine(counts *c)
{
    memset(c, 0, sizeof *c);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.on_outcome = on_outcome;
    o.outcome_user = c;
    int err = 0;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK_EQ(err, WH_OK);
    CHECK(e);
    return e;
}

static int endpoint(wh_engine *e, const char *url, uint32_t max_attempts,
                    uint32_t retry_ms, uint32_t timeout_ms)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {SECRET};
    ep.url = url;
    ep.secrets = secrets;
    ep.n_secrets = 1;
    if (max_attempts) ep.max_attempts = max_attempts;
    if (retry_ms) ep.retry_initial_ms = retry_ms;
    if (timeout_ms) ep.timeout_ms = timeout_ms;
    int h = wh_endpoint_add(e, &ep);
    CHECK_INT(h, >, 0);
    return h;
}

static void emit_n(wh_engine *e, int n)
{
    for (int i = 0; i < n; i++) {
        char body[96];
        int len = snprintf(body, sizeof body, "{\"seq\":%d,\"text\":\"hello\"}", i);
        CHECK_EQ(wh_emit(e, "message.sent", "room-1", body, (size_t)len, NULL), 1);
    }
}

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static void test_delivers_signed_events(void)
{
    th_recv_opts ro = {.secret = SECRET};
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, th_recv_url(r), 0, 0, 0);
    emit_n(e, 300);
    CHECK_EQ(wh_flush(e, 20000), WH_OK);
    CHECK_EQ(c.delivered, 300);
    CHECK_EQ(th_recv_count(r), 300);
    for (size_t i = 0; i < 300; i++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, i, &q), 0);
        CHECK_EQ(q.verified, 1);
        CHECK_STR(q.method, "POST");
        CHECK_STR(q.content_type, "application/json");
        CHECK_STR(q.user_agent, "libwebhook/" WH_VERSION_STRING);
        CHECK_STR(q.attempt, "1");
        CHECK(strncmp(q.body, "{\"seq\":", 7) == 0);
        for (size_t j = 0; j < i; j++) {
            th_recv_req p;
            th_recv_get(r, j, &p);
            CHECK(strcmp(p.webhook_id, q.webhook_id) != 0);
        }
    }
    wh_stats st;
    wh_stats_get(e, &st);
    CHECK_EQ(st.requests, 300);
    CHECK_EQ(st.queued, 0);
    wh_engine_free(e);
    th_recv_stop(r);
}

static void test_503_twice_then_delivered_with_same_id(void)
{
    th_recv_opts ro = {.secret = SECRET, .fail_first = 2, .fail_status = 503};
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, th_recv_url(r), 5, 100, 0); /* retries after 100 ms, 200 ms */
    emit_n(e, 20);
    CHECK_EQ(wh_flush(e, 20000), WH_OK);
    CHECK_EQ(c.delivered, 20);
    CHECK_EQ(c.retry, 40);
    CHECK_EQ(c.min_attempt_delivered, 3);
    CHECK_EQ(c.max_attempt_delivered, 3);
    CHECK_EQ(th_recv_count(r), 60);
    /* per id: attempts 1, 2, 3 in order, each signature valid, spaced by the
     * backoff */
    for (size_t i = 0; i < 60; i++) {
        th_recv_req q;
        th_recv_get(r, i, &q);
        CHECK_EQ(q.verified, 1);
        if (strcmp(q.attempt, "1") != 0) continue;
        int seen = 1;
        int64_t prev = q.at_ms;
        for (size_t j = i + 1; j < 60; j++) {
            th_recv_req p;
            th_recv_get(r, j, &p);
            if (strcmp(p.webhook_id, q.webhook_id) != 0) continue;
            seen++;
            char want[16];
            snprintf(want, sizeof want, "%d", seen);
            CHECK_STR(p.attempt, want);
            CHECK_INT(p.at_ms - prev, >=, seen == 2 ? 90 : 190);
            prev = p.at_ms;
        }
        CHECK_EQ(seen, 3);
    }
    wh_engine_free(e);
    th_recv_stop(r);
}

static void test_no_listener_retried_then_dead(void)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", closed_port());
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, url, 3, 50, 0);
    emit_n(e, 10);
    int64_t t0 = th_now_ms();
    CHECK_EQ(wh_flush(e, 20000), WH_OK);
    CHECK_INT(th_now_ms() - t0, >=, 150 - 5); /* 50 + 100 ms of backoff */
    CHECK_EQ(c.dead, 10);
    CHECK_EQ(c.retry, 20);
    CHECK_EQ(c.last_error, WH_E_CONNECT);
    wh_engine_free(e);
}

static void test_permanent_status_not_retried(void)
{
    th_recv_opts ro = {.status = 400};
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, th_recv_url(r), 5, 50, 0);
    emit_n(e, 5);
    CHECK_EQ(wh_flush(e, 10000), WH_OK);
    CHECK_EQ(c.dead, 5);
    CHECK_EQ(c.retry, 0);
    CHECK_EQ(c.last_error, WH_E_HTTP_STATUS);
    CHECK_EQ(th_recv_count(r), 5);
    wh_engine_free(e);
    th_recv_stop(r);
}

static void test_hanging_receiver_times_out(void)
{
    th_recv_opts ro = {.hang = 1};
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, th_recv_url(r), 2, 50, 300);
    emit_n(e, 3);
    int64_t t0 = th_now_ms();
    CHECK_EQ(wh_flush(e, 10000), WH_OK);
    int64_t took = th_now_ms() - t0;
    CHECK_INT(took, >=, 600 + 50 - 20);
    CHECK_INT(took, <, 5000);
    CHECK_EQ(c.dead, 3);
    CHECK_EQ(c.last_error, WH_E_TIMEOUT);
    wh_engine_free(e);
    th_recv_stop(r);
}

static void test_dropped_connection_retried(void)
{
    th_recv_opts ro = {.drop = 1};
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, th_recv_url(r), 2, 50, 0);
    emit_n(e, 2);
    CHECK_EQ(wh_flush(e, 10000), WH_OK);
    CHECK_EQ(c.retry, 2);
    CHECK_EQ(c.dead, 2);
    CHECK_EQ(c.last_error, WH_E_TRANSPORT);
    wh_engine_free(e);
    th_recv_stop(r);
}

static void test_dead_endpoint_does_not_delay_live_one(void)
{
    th_recv_opts hang = {.hang = 1};
    th_recv *slow = th_recv_start(&hang);
    th_recv *fast = th_recv_start(NULL);
    CHECK(slow && fast);
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, th_recv_url(slow), 1, 0, 3000);
    endpoint(e, th_recv_url(fast), 0, 0, 0);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < 100; i++)
        CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 2);
    while (c.delivered < 100 && th_now_ms() - t0 < 2500) wh_poll(e, 50);
    CHECK_EQ(c.delivered, 100);           /* all of B before A's timeout */
    CHECK_INT(th_now_ms() - t0, <, 3000);
    CHECK_EQ(c.dead, 0);
    wh_engine_free(e); /* A's 100 pending deliveries are reported cancelled */
    CHECK_EQ(c.dead, 100);
    th_recv_stop(slow);
    th_recv_stop(fast);
}

/* The receiver runs in a child process so that its threads do not count. */
static void test_no_thread_started(void)
{
    int pfd[2], done[2];
    CHECK(pipe(pfd) == 0 && pipe(done) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        close(done[1]);
        th_recv *r = th_recv_start(NULL);
        int port = r ? th_recv_port(r) : 0;
        if (write(pfd[1], &port, sizeof port) != sizeof port) _exit(1);
        char b;
        while (read(done[0], &b, 1) > 0) {
        }
        th_recv_stop(r);
        _exit(0);
    }
    close(pfd[1]);
    close(done[0]);
    int port = 0;
    CHECK(read(pfd[0], &port, sizeof port) == sizeof port && port > 0);
    int before = th_thread_count();
    CHECK_EQ(before, 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    counts c;
    wh_engine *e = engine(&c);
    endpoint(e, url, 0, 0, 0);
    emit_n(e, 50);
    int64_t t0 = th_now_ms();
    while (c.delivered < 50 && th_now_ms() - t0 < 10000) {
        wh_poll(e, 20);
        CHECK_EQ(th_thread_count(), before);
    }
    CHECK_EQ(c.delivered, 50);
    wh_engine_free(e);
    CHECK_EQ(th_thread_count(), before);
    close(done[1]);
    int st;
    waitpid(pid, &st, 0);
}

TH_MAIN(TH_CASE(test_delivers_signed_events),
        TH_CASE(test_503_twice_then_delivered_with_same_id),
        TH_CASE(test_no_listener_retried_then_dead),
        TH_CASE(test_permanent_status_not_retried),
        TH_CASE(test_hanging_receiver_times_out),
        TH_CASE(test_dropped_connection_retried),
        TH_CASE(test_dead_endpoint_does_not_delay_live_one),
        TH_CASE(test_no_thread_started))
