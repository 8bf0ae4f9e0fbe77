/* Hostile receivers on 127.0.0.1 (tests/support/raw_server.h), driven
 * through the engine and the default libcurl transport.  Each case asserts
 * the outcome and that it came in bounded time and memory: bounds derived
 * from the attempt timeout, never a speed figure. */
#include "harness.h"
#include "outcomes.h"
#include "raw_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* tests/test_hostile_lean.c includes this file with HOSTILE_KIND set: the
 * same receivers against the lean transport. */
#ifndef HOSTILE_KIND
#define HOSTILE_KIND WH_TRANSPORT_DEFAULT
#endif

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

typedef struct hrun {
    rs_server *s;
    wh_engine *e;
    oc_log log;
    int ep;
    int64_t elapsed_ms;
} hrun;

/* One event to a server in `mode`; runs until its final outcome. */
static void hostile(hrun *h, rs_mode mode, uint32_t max_attempts, uint32_t timeout_ms,
                    int limit_ms)
{
    memset(h, 0, sizeof *h);
    h->s = rs_start("127.0.0.1", mode);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.transport_kind = HOSTILE_KIND;
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &h->log;
    int err = 0;
    h->e = wh_engine_new(&eo, &err);
    CHECK(h->e != NULL);
    h->ep = oc_add(h->e, h->s->url, max_attempts, timeout_ms);
    CHECK_EQ(wh_emit(h->e, "t", NULL, "{\"k\":1}", 7, NULL), 1);
    int64_t t0 = th_now_ms();
    oc_run(h->e, &h->log, 1, limit_ms);
    h->elapsed_ms = th_now_ms() - t0;
}

static void hdone(hrun *h)
{
    wh_engine_free(h->e);
    rs_stop(h->s);
}

static const oc_rec *final_of(hrun *h)
{
    const oc_rec *r = oc_final(&h->log, h->ep);
    CHECK(r != NULL);
    return r;
}

static void slow_loris_cut_at_timeout(void)
{
    hrun h;
    hostile(&h, RS_SLOWLORIS, 1, 800, 10000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DEAD);
    CHECK_EQ(r->error, WH_E_TIMEOUT);
    CHECK_INT(r->latency_ms, >=, 700);
    CHECK_INT(r->latency_ms, <, 800 + 2000);
    hdone(&h);
}

static void black_hole_cut_at_timeout(void)
{
    hrun h;
    hostile(&h, RS_BLACKHOLE, 1, 800, 10000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DEAD);
    CHECK_EQ(r->error, WH_E_TIMEOUT);
    CHECK_INT(r->latency_ms, >=, 700);
    CHECK_INT(r->latency_ms, <, 800 + 2000);
    CHECK_EQ(rs_count(h.s), 1);
    hdone(&h);
}

static void endless_body_stops_at_cap(void)
{
    /* a 200 followed by a body without end: the status decides, and
     * reading stops soon after the cap instead of running to the 20 s
     * timeout */
    long rss0 = max_rss_kb();
    hrun h;
    hostile(&h, RS_ENDLESS, 1, 20000, 30000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DELIVERED);
    CHECK_EQ(r->http_status, 200);
    CHECK_INT(r->latency_ms, <, 20000 / 4);
    /* the server got rid of little: socket buffers plus the drain allowance */
    CHECK_INT(rs_bytes_out(h.s), <, 64LL << 20);
    CHECK_INT(max_rss_kb() - rss0, <, 32 * 1024);
    hdone(&h);
}

static void redirect_loop_not_followed(void)
{
    hrun h;
    hostile(&h, RS_REDIRECT, 3, 2000, 10000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DEAD);
    CHECK_EQ(r->http_status, 302);
    CHECK_EQ(r->attempt, 1);        /* 3xx: not retried by default */
    CHECK_EQ(rs_count(h.s), 1);     /* and never followed */
    hdone(&h);
}

static void reset_mid_response_is_retried(void)
{
    hrun h;
    hostile(&h, RS_RESET, 2, 2000, 10000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DEAD);
    CHECK_EQ(r->attempt, 2);
    CHECK(r->error == WH_E_TRANSPORT || r->error == WH_E_CONNECT);
    CHECK(r->msg[0] != '\0');
    CHECK_EQ(h.log.recs[0].kind, WH_RETRY);
    CHECK_EQ(rs_count(h.s), 2);
    hdone(&h);
}

static void garbage_bytes_fail_by_name(void)
{
    hrun h;
    hostile(&h, RS_GARBAGE, 2, 2000, 10000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DEAD);
    CHECK_EQ(r->error, WH_E_TRANSPORT);
    CHECK_EQ(r->http_status, 0);
    CHECK(r->msg[0] != '\0');
    CHECK_EQ(rs_count(h.s), 2);
    hdone(&h);
}

static void http10_close_delimited_delivered(void)
{
    hrun h;
    hostile(&h, RS_HTTP10, 1, 2000, 10000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DELIVERED);
    CHECK_EQ(r->http_status, 200);
    hdone(&h);
}

static void interim_1xx_then_200_delivered(void)
{
    hrun h;
    hostile(&h, RS_INTERIM, 1, 2000, 10000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DELIVERED);
    CHECK_EQ(r->http_status, 200);
    hdone(&h);
}

static void huge_headers_cut_by_name(void)
{
    long rss0 = max_rss_kb();
    hrun h;
    hostile(&h, RS_HUGE_HEADERS, 1, 20000, 30000);
    const oc_rec *r = final_of(&h);
    CHECK_EQ(r->kind, WH_DEAD);
    CHECK_EQ(r->error, WH_E_TRANSPORT);
    CHECK(strstr(r->msg, "response headers exceed") != NULL);
    CHECK_INT(r->latency_ms, <, 20000 / 4);
    CHECK_INT(max_rss_kb() - rss0, <, 32 * 1024);
    hdone(&h);
}

static void late_200_after_timeout_resent_with_next_attempt(void)
{
    /* the receiver answers attempt 1 only after the client gave up: the
     * engine counts a timeout and re-sends the same id as attempt 2 */
    hrun h;
    memset(&h, 0, sizeof h);
    h.s = rs_start("127.0.0.1", RS_LATE);
    h.s->late_ms = 1500;
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.transport_kind = HOSTILE_KIND;
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &h.log;
    int err = 0;
    h.e = wh_engine_new(&eo, &err);
    CHECK(h.e != NULL);
    h.ep = oc_add(h.e, h.s->url, 3, 500);
    CHECK_EQ(wh_emit(h.e, "t", NULL, "{}", 2, "evt-late-1"), 1);
    oc_run(h.e, &h.log, 1, 15000);
    CHECK_EQ(h.log.n, 2);
    CHECK_EQ(h.log.recs[0].kind, WH_RETRY);
    CHECK_EQ(h.log.recs[0].error, WH_E_TIMEOUT);
    CHECK_EQ(h.log.recs[1].kind, WH_DELIVERED);
    CHECK_EQ(h.log.recs[1].attempt, 2);
    CHECK_EQ(rs_count(h.s), 2);
    CHECK_STR(h.s->reqs[0].id, "evt-late-1");
    CHECK_STR(h.s->reqs[1].id, "evt-late-1");
    CHECK_EQ(h.s->reqs[0].attempt, 1);
    CHECK_EQ(h.s->reqs[1].attempt, 2);
    hdone(&h);
}

static void dropped_reused_connection_never_resent_silently(void)
{
    /* Each connection answers its first request and closes after reading
     * the second.  libcurl would re-send that second request on a fresh
     * connection within the same attempt; the receiver would then see one
     * id with one attempt number twice.  It must not. */
    enum { N = 12 };
    hrun h;
    memset(&h, 0, sizeof h);
    h.s = rs_start("127.0.0.1", RS_DROP_SECOND);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.transport_kind = HOSTILE_KIND;
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &h.log;
    int err = 0;
    h.e = wh_engine_new(&eo, &err);
    CHECK(h.e != NULL);
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.url = h.s->url;
    o.max_in_flight = 1;
    o.max_attempts = 6;
    o.retry_initial_ms = 20;
    o.retry_max_ms = 50;
    o.timeout_ms = 5000;
    h.ep = wh_endpoint_add(h.e, &o);
    CHECK(h.ep > 0);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "evt-%02d", i);
        CHECK_EQ(wh_emit(h.e, "t", NULL, "{}", 2, id), 1);
    }
    oc_run(h.e, &h.log, N, 30000);
    int delivered = 0, retried = 0;
    for (int i = 0; i < h.log.n; i++) {
        if (h.log.recs[i].kind == WH_DELIVERED) delivered++;
        if (h.log.recs[i].kind == WH_RETRY) retried++;
    }
    CHECK_EQ(delivered, N);
    CHECK_INT(retried, >, 0); /* the drop did happen */
    size_t n = rs_count(h.s);
    /* every request the receiver saw is one the engine counted */
    CHECK_EQ(n, (size_t)(delivered + retried));
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(h.s->reqs[i].id, h.s->reqs[j].id) == 0 &&
                h.s->reqs[i].attempt == h.s->reqs[j].attempt)
                th_fail(__FILE__, __LINE__, "%s attempt %d received twice", h.s->reqs[i].id,
                        h.s->reqs[i].attempt);
    hdone(&h);
}

static void complete_200_before_body_sent_counts_delivered(void)
{
    /* The receiver answers a complete 200 before reading a 16 MiB body and
     * then resets the connection: libcurl reports a send error, but the
     * answer had arrived (HTTP/2 receivers such as nginx do the same with
     * a stream reset). */
    enum { BODY = 16 << 20 };
    hrun h;
    memset(&h, 0, sizeof h);
    h.s = rs_start("127.0.0.1", RS_EARLY);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.transport_kind = HOSTILE_KIND;
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &h.log;
    eo.max_payload_bytes = BODY + 16;
    eo.validate_json = 0;
    int err = 0;
    h.e = wh_engine_new(&eo, &err);
    CHECK(h.e != NULL);
    h.ep = oc_add(h.e, h.s->url, 1, 10000);
    char *big = malloc(BODY);
    CHECK(big != NULL);
    memset(big, ' ', BODY);
    big[0] = '"';
    big[BODY - 1] = '"';
    CHECK_EQ(wh_emit(h.e, "t", NULL, big, BODY, NULL), 1);
    free(big);
    oc_run(h.e, &h.log, 1, 20000);
    const oc_rec *r = final_of(&h);
    if (r->kind != WH_DELIVERED)
        th_fail(__FILE__, __LINE__, "not delivered: HTTP %d, %s", r->http_status, r->msg);
    CHECK_EQ(r->http_status, 200);
    CHECK_EQ(rs_count(h.s), 1);
    hdone(&h);
}

TH_MAIN(TH_CASE(slow_loris_cut_at_timeout), TH_CASE(black_hole_cut_at_timeout),
        TH_CASE(endless_body_stops_at_cap), TH_CASE(redirect_loop_not_followed),
        TH_CASE(reset_mid_response_is_retried), TH_CASE(garbage_bytes_fail_by_name),
        TH_CASE(http10_close_delimited_delivered), TH_CASE(interim_1xx_then_200_delivered),
        TH_CASE(huge_headers_cut_by_name),
        TH_CASE(late_200_after_timeout_resent_with_next_attempt),
        TH_CASE(dropped_reused_connection_never_resent_silently),
        TH_CASE(complete_200_before_body_sent_counts_delivered))
