/* Issue 12 features over real HTTP on 127.0.0.1 (libcurl transport, an
 * in-process libmicrohttpd receiver): payload filters, emit idempotency
 * (in memory, and across a kill -9 with the SQLite queue), receiver-driven
 * control (webhook-delivery: disable / abort-message), at-most-once,
 * operational events, the attempt log fields of wh_outcome, and
 * wh_metrics_write against wh_stats. */
#include "harness.h"
#include "http_receiver.h"
#include "proc.h"
#include <webhook/webhook.h>
#include <webhook/sqlite.h>

#include <cjson/cJSON.h>
#include <sys/stat.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    int delivered, retry, dead;
    uint32_t last_attempt;
    int last_error;
    int last_status;
    char last_body[WH_OUTCOME_BODY_MAX + 1];
    char last_control[64];
    int health_disabled;
    char health_reason[160];
} rec;

static void on_outcome(void *user, const wh_outcome *o)
{
    rec *c = user;
    if (o->kind == WH_DELIVERED) c->delivered++;
    else if (o->kind == WH_RETRY) c->retry++;
    else c->dead++;
    c->last_attempt = o->attempt;
    c->last_error = o->error;
    c->last_status = o->http_status;
    memcpy(c->last_body, o->response_body ? o->response_body : "", o->response_body_len);
    c->last_body[o->response_body_len] = '\0';
    snprintf(c->last_control, sizeof c->last_control, "%s",
             o->delivery_control ? o->delivery_control : "");
}

static void on_health(void *user, const wh_health *h)
{
    rec *c = user;
    if (h->state == WH_EP_DISABLED) {
        c->health_disabled++;
        snprintf(c->health_reason, sizeof c->health_reason, "%s", h->reason);
    }
}

static wh_engine *engine_with(rec *c, wh_engine_options *eo)
{
    memset(c, 0, sizeof *c);
    eo->on_outcome = on_outcome;
    eo->outcome_user = c;
    eo->on_health = on_health;
    eo->health_user = c;
    int err = 0;
    wh_engine *e = wh_engine_new(eo, &err);
    CHECK_EQ(err, WH_OK);
    CHECK(e);
    return e;
}

static wh_engine *engine(rec *c)
{
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    return engine_with(c, &eo);
}

static int add(wh_engine *e, wh_endpoint_options *ep)
{
    int h = wh_endpoint_add(e, ep);
    if (h <= 0) th_fail(__FILE__, __LINE__, "wh_endpoint_add: %s", wh_last_error(e));
    return h;
}

/* Poll until cond or a deadline (a bound, not a speed assertion). */
#define POLL_UNTIL(e, cond, ms)                                               \
    do {                                                                      \
        int64_t t0_ = th_now_ms();                                            \
        while (!(cond) && th_now_ms() - t0_ < (ms)) wh_poll((e), 20);         \
    } while (0)

/* ---- payload filters ------------------------------------------------------- */

static void test_payload_filter_delivers_matching_events(void)
{
    th_recv *big = th_recv_start(NULL), *all = th_recv_start(NULL);
    CHECK(big && all);
    rec c;
    wh_engine *e = engine(&c);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(big);
    ep.payload_filter_json = "{\"data.amount\": {\"$gt\": 100}}";
    add(e, &ep);
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(all);
    add(e, &ep);
    int amounts[] = {5, 101, 100, 250, -3, 1000, 99};
    int expect_big = 0;
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        char body[64];
        int len = snprintf(body, sizeof body, "{\"amount\":%d,\"seq\":%zu}", amounts[i], i);
        int want = amounts[i] > 100 ? 2 : 1;
        CHECK_EQ(wh_emit(e, "payment", NULL, body, (size_t)len, NULL), want);
        expect_big += amounts[i] > 100;
    }
    /* a payload without the field, and one where it is a string */
    CHECK_EQ(wh_emit(e, "payment", NULL, "{\"other\":1}", 11, NULL), 1);
    CHECK_EQ(wh_emit(e, "payment", NULL, "{\"amount\":\"500\"}", 16, NULL), 1);
    int total = 7 + 2 + expect_big;
    POLL_UNTIL(e, c.delivered >= total, 10000);
    CHECK_EQ(c.delivered, total);
    CHECK_EQ(th_recv_count(all), 9);
    CHECK_EQ(th_recv_count(big), (size_t)expect_big);
    for (size_t i = 0; i < th_recv_count(big); i++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(big, i, &q), 0);
        int amount = atoi(strstr(q.body, "\"amount\":") + 9);
        CHECK(amount > 100);
    }
    /* a bad filter is refused at add, with the path and the operator */
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(big);
    ep.payload_filter_json = "{\"data.amount\": {\"$gtt\": 100}}";
    CHECK_EQ(wh_endpoint_add(e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(e), "payload_filter_json"));
    CHECK(strstr(wh_last_error(e), "\"data.amount\": unknown operator \"$gtt\""));
    ep.payload_filter_json = "{\"data.amount\": ";
    CHECK_EQ(wh_endpoint_add(e, &ep), WH_E_JSON);
    wh_engine_free(e);
    th_recv_stop(big);
    th_recv_stop(all);
}

/* ---- dedupe ------------------------------------------------------------------ */

static void test_dedupe_in_memory(void)
{
    th_recv *r = th_recv_start(NULL);
    rec c;
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.dedupe_window_ms = 60000;
    wh_engine *e = engine_with(&c, &eo);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    add(e, &ep);
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":1}", 7, "evt_same"), 1);
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":2}", 7, "evt_same"), WH_E_DUPLICATE);
    CHECK(strstr(wh_last_error(e), "evt_same"));
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":3}", 7, "evt_other"), 1);
    /* without an id there is nothing to compare: always delivered */
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":4}", 7, NULL), 1);
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":4}", 7, NULL), 1);
    POLL_UNTIL(e, c.delivered >= 4, 10000);
    wh_poll(e, 100);
    CHECK_EQ(th_recv_count(r), 4);
    /* still a duplicate after delivery */
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":1}", 7, "evt_same"), WH_E_DUPLICATE);
    wh_stats st;
    wh_stats_get(e, &st);
    CHECK_EQ(st.duplicates, 2);
    CHECK_EQ(st.rejected, 0);
    CHECK_EQ(st.emitted, 4);
    /* a refused emit does not remember its id */
    CHECK_EQ(wh_emit(e, "t", NULL, "{bad", 4, "evt_bad"), WH_E_JSON);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, "evt_bad"), 1);
    wh_engine_free(e);
    th_recv_stop(r);
    /* negative window refused */
    wh_engine_options_init(&eo);
    eo.dedupe_window_ms = -1;
    int err = 0;
    CHECK(wh_engine_new(&eo, &err) == NULL);
    CHECK_EQ(err, WH_E_INVAL);
}

static void test_dedupe_window_expires(void)
{
    th_recv *r = th_recv_start(NULL);
    rec c;
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.dedupe_window_ms = 300;
    wh_engine *e = engine_with(&c, &eo);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    add(e, &ep);
    int64_t t0 = th_now_ms();
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, "evt_w"), 1);
    int rc = wh_emit(e, "t", NULL, "{}", 2, "evt_w");
    /* within 300 ms of the first (checked: the second call came first) */
    if (th_now_ms() - t0 < 300) CHECK_EQ(rc, WH_E_DUPLICATE);
    th_sleep_ms(350);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, "evt_w"), 1);
    POLL_UNTIL(e, c.delivered >= 2, 10000);
    CHECK_EQ(th_recv_count(r), 2);
    wh_engine_free(e);
    th_recv_stop(r);
}

static wh_engine *sqlite_engine(rec *c, const char *path, const char *url)
{
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    wh_queue *q = NULL;
    CHECK_EQ(wh_queue_sqlite_new(path, &so, &q), WH_OK);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.queue = q;
    eo.queue_owned = 1;
    eo.dedupe_window_ms = 3600000;
    wh_engine *e = engine_with(c, &eo);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = "hook";
    ep.url = url;
    add(e, &ep);
    return e;
}

/* The same id emitted before and after a kill -9, over the same SQLite
 * file: one request. */
static void test_dedupe_sqlite_across_kill(void)
{
    th_tmp_init("whdd");
    const char *path = th_tmp_path("q.db");
    th_recv *r = th_recv_start(NULL);
    int pipefd[2];
    CHECK_EQ(pipe(pipefd), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        rec c;
        wh_engine *e = sqlite_engine(&c, path, th_recv_url(r));
        if (wh_emit(e, "t", NULL, "{\"n\":1}", 7, "evt_once") != 1) _exit(3);
        if (wh_emit(e, "t", NULL, "{\"n\":1}", 7, "evt_once") != WH_E_DUPLICATE) _exit(4);
        int64_t t0 = th_now_ms();
        while (c.delivered < 1 && th_now_ms() - t0 < 10000) wh_poll(e, 20);
        wh_poll(e, 0); /* the ack is written */
        if (write(pipefd[1], c.delivered == 1 ? "y" : "n", 1) != 1) _exit(5);
        for (;;) wh_poll(e, 100); /* until killed */
    }
    close(pipefd[1]);
    char ch = 0;
    CHECK_EQ(read(pipefd[0], &ch, 1), 1);
    close(pipefd[0]);
    CHECK_EQ(ch, 'y');
    kill(pid, SIGKILL);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(th_recv_count(r), 1);
    /* a new process on the same file */
    rec c;
    wh_engine *e = sqlite_engine(&c, path, th_recv_url(r));
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":1}", 7, "evt_once"), WH_E_DUPLICATE);
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"n\":2}", 7, "evt_new"), 1);
    POLL_UNTIL(e, c.delivered >= 1, 10000);
    wh_poll(e, 100);
    CHECK_EQ(th_recv_count(r), 2);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 1, &q), 0);
    CHECK_STR(q.webhook_id, "evt_new");
    wh_engine_free(e);
    th_recv_stop(r);
    th_tmp_cleanup();
}

/* ---- receiver-driven control --------------------------------------------------- */

static void test_receiver_disable(void)
{
    th_recv_opts ro = {0};
    ro.delivery_control = "disable";
    ro.delay_ms = 50;     /* several requests in flight when the first answers */
    th_recv *r = th_recv_start(&ro);
    rec c;
    wh_engine *e = engine(&c);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    ep.max_in_flight = 4;
    ep.event_types = (const char *const[]){"t"};
    ep.n_event_types = 1;
    int h = add(e, &ep);
    for (int i = 0; i < 40; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    POLL_UNTIL(e, c.health_disabled > 0, 10000);
    CHECK_EQ(c.health_disabled, 1);
    CHECK(strstr(c.health_reason, "webhook-delivery: disable"));
    CHECK_EQ(wh_endpoint_state(e, h), WH_EP_DISABLED);
    /* what was in flight finishes; nothing more starts */
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 500) wh_poll(e, 20);
    CHECK_INT(th_recv_count(r), <=, 4);
    CHECK_INT(th_recv_count(r), >=, 1);
    CHECK_STR(c.last_control, "disable");
    size_t seen = th_recv_count(r);
    /* ignore_delivery_control: a second endpoint keeps sending */
    th_recv *r2 = th_recv_start(&ro);
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r2);
    ep.event_types = (const char *const[]){"u"};
    ep.n_event_types = 1;
    ep.ignore_delivery_control = 1;
    int h2 = add(e, &ep);
    for (int i = 0; i < 5; i++) CHECK_EQ(wh_emit(e, "u", NULL, "{}", 2, NULL), 1);
    int before = c.delivered;
    POLL_UNTIL(e, c.delivered >= before + 5, 10000);
    CHECK_EQ(th_recv_count(r2), 5);
    CHECK_EQ(wh_endpoint_state(e, h2), WH_EP_ACTIVE);
    CHECK_EQ(th_recv_count(r), seen);
    wh_engine_free(e);
    th_recv_stop(r);
    th_recv_stop(r2);
}

static void test_receiver_abort_message(void)
{
    th_recv_opts ro = {0};
    ro.status = 503;
    ro.delivery_control = "abort-message";
    th_recv *r = th_recv_start(&ro);
    rec c;
    wh_engine *e = engine(&c);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    ep.max_attempts = 5;
    ep.retry_initial_ms = 10;
    ep.retry_max_ms = 10;
    add(e, &ep);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    POLL_UNTIL(e, c.dead >= 1, 10000);
    CHECK_EQ(c.dead, 1);
    CHECK_EQ(c.retry, 0);
    CHECK_EQ(c.last_attempt, 1);
    CHECK_EQ(c.last_status, 503);
    /* the attempt log: the answer's first bytes and its header */
    CHECK_STR(c.last_body, "th_recv answered 503\n");
    CHECK_STR(c.last_control, "abort-message");
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 200) wh_poll(e, 20);
    CHECK_EQ(th_recv_count(r), 1);
    wh_engine_free(e);
    th_recv_stop(r);
    /* without the header the same answers are retried to max_attempts */
    ro.delivery_control = NULL;
    r = th_recv_start(&ro);
    e = engine(&c);
    ep.url = th_recv_url(r);
    add(e, &ep);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    POLL_UNTIL(e, c.dead >= 1, 10000);
    CHECK_EQ(th_recv_count(r), 5);
    CHECK_EQ(c.retry, 4);
    wh_engine_free(e);
    th_recv_stop(r);
}

/* ---- at-most-once ---------------------------------------------------------------- */

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t l = sizeof sa;
    CHECK_EQ(getsockname(s, (struct sockaddr *)&sa, &l), 0);
    close(s); /* nothing listens there now */
    return ntohs(sa.sin_port);
}

static void test_at_most_once(void)
{
    th_recv_opts ro = {0};
    ro.status = 503;
    th_recv *r = th_recv_start(&ro);
    rec c;
    wh_engine *e = engine(&c);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(r);
    ep.max_attempts = 4;
    ep.retry_initial_ms = 10;
    ep.retry_max_ms = 10;
    ep.delivery = WH_DELIVERY_AT_MOST_ONCE;
    add(e, &ep);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    POLL_UNTIL(e, c.dead >= 1, 10000);
    CHECK_EQ(c.dead, 1);
    CHECK_EQ(c.retry, 0);
    CHECK_EQ(th_recv_count(r), 1); /* the request reached it: never again */
    wh_engine_free(e);
    th_recv_stop(r);
    /* nothing listening: the connection failed before any byte, retried */
    e = engine(&c);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", closed_port());
    ep.url = url;
    add(e, &ep);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    POLL_UNTIL(e, c.dead >= 1, 10000);
    CHECK_EQ(c.retry, 3);
    CHECK_EQ(c.dead, 1);
    CHECK_EQ(c.last_attempt, 4);
    CHECK_EQ(c.last_error, WH_E_CONNECT);
    /* a bad mode is refused */
    ep.delivery = 7;
    CHECK_EQ(wh_endpoint_add(e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(e), "delivery"));
    wh_engine_free(e);
}

/* ---- operational events -------------------------------------------------------------- */

static void test_operational_events(void)
{
    th_recv *ops = th_recv_start(NULL);
    th_recv_opts gone = {0};
    gone.status = 410;
    th_recv *r410 = th_recv_start(&gone);
    th_recv_opts failing = {0};
    failing.status = 500;
    th_recv *r500 = th_recv_start(&failing);
    rec c;
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.operational_endpoint = "ops";
    wh_engine *e = engine_with(&c, &eo);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = "ops";
    ep.url = th_recv_url(ops);
    ep.event_types = (const char *const[]){"never.emitted"};
    ep.n_event_types = 1;
    add(e, &ep);
    wh_endpoint_options_init(&ep);
    ep.id = "gone";
    ep.url = th_recv_url(r410);
    ep.event_types = (const char *const[]){"a"};
    ep.n_event_types = 1;
    add(e, &ep);
    wh_endpoint_options_init(&ep);
    ep.id = "flaky";
    ep.url = th_recv_url(r500);
    ep.event_types = (const char *const[]){"b"};
    ep.n_event_types = 1;
    ep.max_attempts = 5;
    ep.retry_initial_ms = 10;
    ep.retry_max_ms = 10;
    add(e, &ep);
    CHECK_EQ(wh_emit(e, "a", NULL, "{}", 2, "evt_a"), 1);
    CHECK_EQ(wh_emit(e, "b", NULL, "{}", 2, "evt_b"), 1);
    /* gone: endpoint.disabled; flaky: message.attempt.failing after the 4th
     * attempt, then message.attempt.exhausted after the 5th */
    POLL_UNTIL(e, th_recv_count(ops) >= 3, 10000);
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 200) wh_poll(e, 20);
    CHECK_EQ(th_recv_count(ops), 3);
    int disabled = 0, failing_n = 0, exhausted = 0;
    for (size_t i = 0; i < 3; i++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(ops, i, &q), 0);
        if (strstr(q.body, "\"endpoint_id\":\"gone\"") && strstr(q.body, "\"state\":\"disabled\""))
            disabled++;
        if (strstr(q.body, "\"endpoint_id\":\"flaky\"") && strstr(q.body, "\"attempts\":4") &&
            strstr(q.body, "\"message_id\":\"evt_b\""))
            failing_n++;
        if (strstr(q.body, "\"endpoint_id\":\"flaky\"") && strstr(q.body, "\"attempts\":5") &&
            strstr(q.body, "\"http_status\":500"))
            exhausted++;
    }
    CHECK_EQ(disabled, 1);
    CHECK_EQ(failing_n, 1);
    CHECK_EQ(exhausted, 1);
    wh_engine_free(e);
    th_recv_stop(ops);
    th_recv_stop(r410);
    th_recv_stop(r500);
}

/* ---- metrics against wh_stats ------------------------------------------------------ */

static uint64_t metric(const char *text, const char *series)
{
    char want[256];
    snprintf(want, sizeof want, "\n%s", series);
    const char *p = strstr(text, want);
    if (!p) th_fail(__FILE__, __LINE__, "no series %s in:\n%s", series, text);
    return strtoull(p + strlen(want), NULL, 10);
}

static void test_metrics_match_stats(void)
{
    th_recv *ok = th_recv_start(NULL);
    th_recv_opts ro = {0};
    ro.fail_first = 1;
    th_recv *once = th_recv_start(&ro);
    rec c;
    wh_engine *e = engine(&c);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = "ok";
    ep.url = th_recv_url(ok);
    add(e, &ep);
    wh_endpoint_options_init(&ep);
    ep.id = "once";
    ep.url = th_recv_url(once);
    ep.retry_initial_ms = 10;
    add(e, &ep);
    for (int i = 0; i < 10; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 2);
    CHECK_EQ(wh_emit(e, "t", NULL, "{", 1, NULL), WH_E_JSON);
    POLL_UNTIL(e, c.delivered >= 20, 10000);
    CHECK_EQ(c.delivered, 20);
    size_t need = wh_metrics_write(e, NULL, 0);
    char *text = malloc(need + 1);
    CHECK_EQ(wh_metrics_write(e, text, need + 1), need);
    wh_stats st;
    wh_stats_get(e, &st);
    CHECK_EQ(metric(text, "webhook_events_emitted_total "), st.emitted);
    CHECK_EQ(metric(text, "webhook_events_rejected_total "), st.rejected);
    CHECK_EQ(metric(text, "webhook_requests_total "), st.requests);
    CHECK_EQ(metric(text, "webhook_delivered_total{endpoint=\"ok\"} ") +
                 metric(text, "webhook_delivered_total{endpoint=\"once\"} "),
             st.delivered);
    CHECK_EQ(metric(text, "webhook_retries_total{endpoint=\"once\"} "), 10);
    CHECK_EQ(metric(text, "webhook_retries_total{endpoint=\"ok\"} "), 0);
    CHECK_EQ(metric(text, "webhook_attempts_failed_total{endpoint=\"once\",class=\"http_5xx\"} "), 10);
    CHECK_EQ(metric(text, "webhook_queued{endpoint=\"ok\"} "), 0);
    CHECK_EQ(metric(text, "webhook_in_flight{endpoint=\"once\"} "), 0);
    CHECK_EQ(metric(text, "webhook_delivery_latency_seconds_count{endpoint=\"ok\"} "), 10);
    CHECK_EQ(metric(text, "webhook_endpoint_state{endpoint=\"ok\",state=\"active\"} "), 1);
    free(text);
    /* queued: accepted and not yet delivered */
    th_recv_set(ok, 200, 1, 0); /* hang */
    for (int i = 0; i < 3; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 2);
    char buf[16384];
    CHECK(wh_metrics_write(e, buf, sizeof buf) < sizeof buf);
    CHECK_EQ(metric(buf, "webhook_queued{endpoint=\"ok\"} ") +
                 metric(buf, "webhook_in_flight{endpoint=\"ok\"} "),
             3);
    wh_engine_free(e);
    th_recv_stop(ok);
    th_recv_stop(once);
}

/* ---- the JSON configuration ----------------------------------------------------- */

static void test_config_keys(void)
{
    th_recv *r = th_recv_start(NULL);
    rec c;
    wh_engine *e = engine(&c);
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"dedupe_window_ms\": 60000, \"operational_endpoint\": \"ops\","
             " \"endpoints\": [{\"id\": \"big\", \"url\": \"%s\","
             "  \"filter\": {\"channel_name_starts_with\": \"acct-\","
             "             \"data.amount\": {\"$gt\": 100},"
             "             \"$or\": [{\"data.currency\": \"EUR\"}, {\"data.vip\": true}]},"
             "  \"delivery\": \"at_most_once\", \"ignore_delivery_control\": true}]}",
             th_recv_url(r));
    CHECK_EQ(wh_config_load(e, doc, strlen(doc)), WH_OK);
    CHECK_EQ(wh_emit(e, "t", "acct-1", "{\"amount\":200,\"currency\":\"EUR\"}", strlen("{\"amount\":200,\"currency\":\"EUR\"}"), "e1"), 1);
    CHECK_EQ(wh_emit(e, "t", "acct-1", "{\"amount\":200,\"currency\":\"EUR\"}", strlen("{\"amount\":200,\"currency\":\"EUR\"}"), "e1"),
             WH_E_DUPLICATE);
    CHECK_EQ(wh_emit(e, "t", "acct-1", "{\"amount\":200,\"currency\":\"USD\"}", strlen("{\"amount\":200,\"currency\":\"USD\"}"), "e2"), 0);
    CHECK_EQ(wh_emit(e, "t", "acct-1", "{\"amount\":200,\"vip\":true}", strlen("{\"amount\":200,\"vip\":true}"), "e3"), 1);
    CHECK_EQ(wh_emit(e, "t", "acct-1", "{\"amount\":50,\"vip\":true}", strlen("{\"amount\":50,\"vip\":true}"), "e4"), 0);
    CHECK_EQ(wh_emit(e, "t", "other", "{\"amount\":200,\"vip\":true}", strlen("{\"amount\":200,\"vip\":true}"), "e5"), 0);
    POLL_UNTIL(e, c.delivered >= 2, 10000);
    CHECK_EQ(th_recv_count(r), 2);
    /* errors name the key path and the operator */
    const char *bad = "{\"endpoints\": [{\"url\": \"http://127.0.0.1:9/\","
                      " \"filter\": {\"data.amount\": {\"$gte\": 1, \"$bigger\": 2}}}]}";
    CHECK_EQ(wh_config_load(e, bad, strlen(bad)), WH_E_CONFIG);
    CHECK(strstr(wh_last_error(e),
                 "endpoints[0].filter: \"data.amount\": unknown operator \"$bigger\""));
    bad = "{\"endpoints\": [{\"url\": \"http://127.0.0.1:9/\", \"delivery\": \"twice\"}]}";
    CHECK_EQ(wh_config_load(e, bad, strlen(bad)), WH_E_CONFIG);
    CHECK(strstr(wh_last_error(e), "endpoints[0].delivery"));
    bad = "{\"endpoints\": [{\"url\": \"http://127.0.0.1:9/\","
          " \"filter\": {\"channel_name_starts_with\": \"a\", \"amount\": 1}}]}";
    CHECK_EQ(wh_config_load(e, bad, strlen(bad)), WH_E_CONFIG);
    if (!strstr(wh_last_error(e), "endpoints[0].filter: unknown key \"amount\""))
        th_fail(__FILE__, __LINE__, "%s", wh_last_error(e));
    wh_engine_free(e);
    th_recv_stop(r);
}

/* A whole Soketi app object (its settings read and not used), with the
 * batching duration under Soketi's own name. */
static void test_config_soketi_app(void)
{
    th_recv *r = th_recv_start(NULL);
    rec c;
    wh_engine *e = engine(&c);
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"id\": \"app-1\", \"key\": \"app-key\", \"secret\": \"app-secret\","
             " \"maxConnections\": -1, \"enableClientMessages\": false, \"enabled\": true,"
             " \"maxBackendEventsPerSecond\": -1, \"maxClientEventsPerSecond\": -1,"
             " \"maxReadRequestsPerSecond\": -1,"
             " \"batching\": {\"enabled\": true, \"duration\": 200},"
             " \"webhooks\": [{\"url\": \"%s\", \"event_types\": [\"channel_occupied\"]}]}",
             th_recv_url(r));
    CHECK_EQ(wh_config_load(e, doc, strlen(doc)), WH_OK);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < 3; i++)
        CHECK_EQ(wh_emit(e, "channel_occupied", "room-1", "{}", 2, NULL), 1);
    POLL_UNTIL(e, c.delivered >= 3, 10000);
    CHECK_EQ(c.delivered, 3);
    CHECK_EQ(th_recv_count(r), 1);               /* one batch ... */
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    CHECK_INT(q.at_ms - t0, >=, 200);            /* ... after the 200 ms linger */
    char key[64];
    CHECK(th_recv_header(&q, "X-Pusher-Key", key, sizeof key));
    CHECK_STR(key, "app-key");
    const char *both = "{\"batching\": {\"duration\": 1, \"duration_ms\": 2},"
                       " \"webhooks\": []}";
    CHECK_EQ(wh_config_load(e, both, strlen(both)), WH_E_CONFIG);
    CHECK(strstr(wh_last_error(e), "duration"));
    const char *typo = "{\"maxConnections\": \"lots\", \"webhooks\": []}";
    CHECK_EQ(wh_config_load(e, typo, strlen(typo)), WH_E_CONFIG);
    CHECK(strstr(wh_last_error(e), "maxConnections"));
    wh_engine_free(e);
    th_recv_stop(r);
}

/* ---- whsend --metrics and --attempts ------------------------------------------------ */

/* The value of sample `name{labels}` in prometheus_client's listing, -1 if
 * absent. */
static double sample(const char *listing, const char *name)
{
    char want[256];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = strstr(listing, want);
    return p ? strtod(p + strlen(want), NULL) : -1;
}

/* `curl 127.0.0.1:PORT/metrics` parsed by Debian's python3-prometheus-client:
 * one "name{k=v,...} value" line per sample (labels sorted), or NULL when
 * the scrape or the parse failed. */
static char *scrape(int port)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "curl -sf http://127.0.0.1:%d/metrics | /usr/bin/python3 -c '"
             "import sys\n"
             "from prometheus_client.parser import text_string_to_metric_families\n"
             "print()\n"
             "for fam in text_string_to_metric_families(sys.stdin.read()):\n"
             "    for s in fam.samples:\n"
             "        lab = \",\".join(k + \"=\" + v for k, v in sorted(s.labels.items()))\n"
             "        print(\"%%s{%%s} %%r\" %% (s.name, lab, s.value))'",
             port);
    FILE *f = popen(cmd, "r");
    CHECK(f);
    char *out = th_slurp(f);
    int st = pclose(f);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void test_whsend_metrics_and_attempts(void)
{
    th_tmp_init("whpm");
    th_recv *ok = th_recv_start(NULL);
    th_recv_opts ro = {0};
    ro.fail_first = 1;
    th_recv *flaky = th_recv_start(&ro);
    const char *cfg = th_tmp_path("cfg.json");
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"dedupe_window_ms\": 600000, \"endpoints\": ["
             "{\"id\": \"ok\", \"url\": \"%s\"},"
             "{\"id\": \"flaky\", \"url\": \"%s\", \"retry\": {\"initial_ms\": 20}}]}",
             th_recv_url(ok), th_recv_url(flaky));
    th_write_file(cfg, doc);
    const char *fifo = th_tmp_path("in.fifo");
    CHECK_EQ(mkfifo(fifo, 0600), 0);
    const char *out = th_tmp_path("out.txt"), *err = th_tmp_path("err.txt");
    const char *att = th_tmp_path("attempts.ndjson");
    int port = th_free_port();
    char metrics[32];
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", port);
    char *argv[] = {"whsend", "-c", (char *)cfg, "--metrics", metrics, "--attempts",
                    (char *)att, (char *)fifo, NULL};
    pid_t pid = th_spawn(th_example("whsend"), argv, NULL, out, err);
    FILE *in = fopen(fifo, "w");
    CHECK(in);
    for (int i = 0; i < 10; i++)
        fprintf(in, "{\"event\":\"t\",\"data\":{\"n\":%d},\"id\":\"evt-%d\"}\n", i, i);
    fprintf(in, "{\"event\":\"t\",\"data\":{\"n\":3},\"id\":\"evt-3\"}\n"); /* duplicate */
    fflush(in);
    CHECK_EQ(th_recv_wait(ok, 10, 10000), 10);
    CHECK_EQ(th_recv_wait(flaky, 20, 10000), 20);
    /* the served snapshot catches up within its 100 ms refresh */
    char *m = NULL;
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 10000) {
        free(m);
        m = scrape(port);
        if (m && sample(m, "webhook_delivered_total{endpoint=flaky}") == 10 &&
            sample(m, "webhook_delivered_total{endpoint=ok}") == 10)
            break;
        th_sleep_ms(50);
    }
    CHECK(m);
    fclose(in); /* end of input: whsend drains (nothing left) and exits */
    CHECK_EQ(th_wait_exit(pid, 20000), 0);
    char *summary = th_read_file(out);
    cJSON *sj = cJSON_Parse(summary);
    CHECK(sj);
#define SUM(k) cJSON_GetObjectItem(sj, k)->valuedouble
    CHECK_EQ(SUM("emitted"), 10);
    CHECK_EQ(SUM("duplicates"), 1);
    CHECK_EQ(SUM("emitted"), sample(m, "webhook_events_emitted_total{}"));
    CHECK_EQ(SUM("duplicates"), sample(m, "webhook_events_duplicate_total{}"));
    CHECK_EQ(SUM("delivered"), sample(m, "webhook_delivered_total{endpoint=ok}") +
                                   sample(m, "webhook_delivered_total{endpoint=flaky}"));
    CHECK_EQ(SUM("dead"), sample(m, "webhook_dead_total{endpoint=ok}") +
                              sample(m, "webhook_dead_total{endpoint=flaky}"));
    CHECK_EQ(SUM("requests"), sample(m, "webhook_requests_total{}"));
    CHECK_EQ(SUM("retries"), sample(m, "webhook_retries_total{endpoint=flaky}"));
    CHECK_EQ(SUM("retries"), 10);
    CHECK_EQ(sample(m, "webhook_attempts_failed_total{class=http_5xx,endpoint=flaky}"), 10);
    CHECK_EQ(sample(m, "webhook_delivery_latency_seconds_count{endpoint=ok}"), 10);
    CHECK_EQ(sample(m, "webhook_endpoint_state{endpoint=ok,state=active}"), 1);
    /* the attempt log: one line per request, the 503 answers with their body */
    char *log = th_read_file(att);
    size_t lines = 0, failed = 0;
    for (char *p = log; (p = strchr(p, '\n')); p++) lines++;
    for (char *p = log; (p = strstr(p, "\"outcome\":\"retry\",\"http_status\":503")); p++)
        failed++;
    CHECK_EQ(lines, (size_t)SUM("requests"));
    CHECK_EQ(failed, 10);
    CHECK(strstr(log, "\"response_body\":\"th_recv answered 503\\n\""));
#undef SUM
    free(log);
    cJSON_Delete(sj);
    free(summary);
    free(m);
    th_recv_stop(ok);
    th_recv_stop(flaky);
    th_tmp_cleanup();
}

/* Pusher event objects shaped per kind, as Pusher documents them. */
static void test_pusher_event_shapes(void)
{
    th_recv *r = th_recv_start(NULL);
    rec c;
    wh_engine *e = engine(&c);
    char doc[512];
    snprintf(doc, sizeof doc, "{\"key\": \"k\", \"secret\": \"s\", \"webhooks\": "
             "[{\"url\": \"%s\"}]}", th_recv_url(r));
    CHECK_EQ(wh_config_load(e, doc, strlen(doc)), WH_OK);
    struct { const char *type, *channel, *data, *want; } cases[] = {
        {"channel_occupied", "beta-x", "{}", "{\"name\":\"channel_occupied\",\"channel\":\"beta-x\"}"},
        {"channel_vacated", "beta-x", "{}", "{\"name\":\"channel_vacated\",\"channel\":\"beta-x\"}"},
        {"member_added", "presence-r", "{\"user_id\":\"u1\"}",
         "{\"name\":\"member_added\",\"channel\":\"presence-r\",\"user_id\":\"u1\"}"},
        {"member_removed", "presence-r", "\"u2\"",
         "{\"name\":\"member_removed\",\"channel\":\"presence-r\",\"user_id\":\"u2\"}"},
        {"client_event", "private-c",
         "{\"event\":\"client-typing\",\"data\":{\"x\":1},\"socket_id\":\"1.2\"}",
         "{\"name\":\"client_event\",\"channel\":\"private-c\",\"event\":\"client-typing\","
         "\"data\":\"{\\\"x\\\":1}\",\"socket_id\":\"1.2\"}"},
        {"client_event", "presence-c",
         "{\"event\":\"client-hi\",\"data\":\"hello\",\"user_id\":\"u3\"}",
         "{\"name\":\"client_event\",\"channel\":\"presence-c\",\"event\":\"client-hi\","
         "\"data\":\"hello\",\"user_id\":\"u3\"}"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(wh_emit(e, cases[i].type, cases[i].channel, cases[i].data,
                         strlen(cases[i].data), NULL), 1);
        POLL_UNTIL(e, c.delivered >= (int)i + 1, 10000);
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, i, &q), 0);
        cJSON *j = cJSON_Parse(q.body);
        CHECK(j);
        cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "events"), 0);
        char *got = cJSON_PrintUnformatted(ev);
        CHECK_STR(got, cases[i].want);
        /* client_event data is a string, as Pusher sends it */
        if (strcmp(cases[i].type, "client_event") == 0)
            CHECK(cJSON_IsString(cJSON_GetObjectItem(ev, "data")));
        cJSON_free(got);
        cJSON_Delete(j);
    }
    wh_engine_free(e);
    th_recv_stop(r);
}

/* ---- per-message headers ------------------------------------------------------------ */

static void emit_with_headers(wh_engine *e, const char *id, const char *const *h, size_t n,
                              int want)
{
    wh_event ev;
    wh_event_init(&ev);
    ev.type = "t";
    ev.data = "{}";
    ev.len = 2;
    ev.id = id;
    ev.headers = h;
    ev.n_headers = n;
    int rc = wh_emit_ex(e, &ev);
    if (rc != want) th_fail(__FILE__, __LINE__, "wh_emit_ex: %d (want %d): %s", rc, want,
                            wh_last_error(e));
}

static void check_message_headers(wh_engine *e, rec *c, th_recv *r)
{
    static const char *const h1[] = {"X-Tenant: acme", "X-Trace-Id: abc-123"};
    static const char *const h2[] = {"X-Tenant: globex"};
    emit_with_headers(e, "m1", h1, 2, 1);
    emit_with_headers(e, "m2", h2, 1, 1);
    emit_with_headers(e, "m3", NULL, 0, 1);
    /* the endpoint's own header wins over a message's */
    static const char *const h4[] = {"X-Static: from-message", "X-Other: yes"};
    emit_with_headers(e, "m4", h4, 2, 1);
    POLL_UNTIL(e, c->delivered >= 4, 10000);
    CHECK_EQ(th_recv_count(r), 4);
    char v[128];
    for (size_t i = 0; i < 4; i++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, i, &q), 0);
        int has_tenant = th_recv_header(&q, "X-Tenant", v, sizeof v);
        if (!strcmp(q.webhook_id, "m1")) {
            CHECK(has_tenant);
            CHECK_STR(v, "acme");
            CHECK(th_recv_header(&q, "X-Trace-Id", v, sizeof v));
            CHECK_STR(v, "abc-123");
        } else if (!strcmp(q.webhook_id, "m2")) {
            CHECK(has_tenant);
            CHECK_STR(v, "globex");
            CHECK(!th_recv_header(&q, "X-Trace-Id", v, sizeof v));
        } else if (!strcmp(q.webhook_id, "m3")) {
            CHECK(!has_tenant);
        } else {
            CHECK_STR(q.webhook_id, "m4");
            CHECK(th_recv_header(&q, "X-Static", v, sizeof v));
            CHECK_STR(v, "from-endpoint");
            CHECK(strstr(q.headers, "from-message") == NULL);
            CHECK(th_recv_header(&q, "X-Other", v, sizeof v));
        }
        /* signed as usual */
        CHECK(th_recv_header(&q, "webhook-signature", v, sizeof v));
    }
}

static void add_signed(wh_engine *e, const char *url)
{
    static const char *const secrets[] = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
    static const char *const statics[] = {"X-Static: from-endpoint"};
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = "hook";
    ep.url = url;
    ep.secrets = secrets;
    ep.n_secrets = 1;
    ep.headers = statics;
    ep.n_headers = 1;
    add(e, &ep);
}

static void test_message_headers(void)
{
    th_recv *r = th_recv_start(NULL);
    rec c;
    wh_engine *e = engine(&c);
    add_signed(e, th_recv_url(r));
    check_message_headers(e, &c, r);
    /* refused by name: reserved, malformed */
    static const char *const bad1[] = {"X-Ok: 1", "Content-Type: text/plain"};
    emit_with_headers(e, NULL, bad1, 2, WH_E_HEADER);
    CHECK(strstr(wh_last_error(e), "headers[1]"));
    CHECK(strstr(wh_last_error(e), "\"Content-Type\" is a reserved header name"));
    static const char *const bad2[] = {"webhook-signature: v1,forged"};
    emit_with_headers(e, NULL, bad2, 1, WH_E_HEADER);
    CHECK(strstr(wh_last_error(e), "reserved"));
    static const char *const bad3[] = {"X-Bad: a\r\nInjected: 1"};
    emit_with_headers(e, NULL, bad3, 1, WH_E_HEADER);
    CHECK(strstr(wh_last_error(e), "headers[0]"));
    static const char *const bad4[] = {"No colon here"};
    emit_with_headers(e, NULL, bad4, 1, WH_E_HEADER);
    wh_stats st;
    wh_stats_get(e, &st);
    CHECK_EQ(st.rejected, 4);
    /* a struct too short to hold the event's fields */
    wh_event small;
    wh_event_init(&small);
    small.struct_size = sizeof(size_t);
    CHECK_EQ(wh_emit_ex(e, &small), WH_E_VERSION);
    CHECK(strstr(wh_last_error(e), "struct_size"));
    CHECK_EQ(wh_emit_ex(e, NULL), WH_E_INVAL);
    CHECK_EQ(th_recv_count(r), 4);
    wh_engine_free(e);
    th_recv_stop(r);
}

/* With the SQLite queue the headers are stored with the event: emitted by
 * one engine, delivered by the next one on the same file. */
static void test_message_headers_sqlite(void)
{
    th_tmp_init("whmh");
    const char *path = th_tmp_path("q.db");
    th_recv *r = th_recv_start(NULL);
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    so.producer_only = 1;
    wh_queue *q = NULL;
    CHECK_EQ(wh_queue_sqlite_new(path, &so, &q), WH_OK);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.queue = q;
    eo.queue_owned = 1;
    rec c;
    wh_engine *e = engine_with(&c, &eo);
    add_signed(e, th_recv_url(r));
    static const char *const h1[] = {"X-Tenant: acme", "X-Trace-Id: abc-123"};
    static const char *const h2[] = {"X-Tenant: globex"};
    static const char *const h4[] = {"X-Static: from-message", "X-Other: yes"};
    emit_with_headers(e, "m1", h1, 2, 1);
    emit_with_headers(e, "m2", h2, 1, 1);
    emit_with_headers(e, "m3", NULL, 0, 1);
    emit_with_headers(e, "m4", h4, 2, 1);
    wh_poll(e, 0);
    wh_engine_free(e); /* producer: written, nothing delivered */
    CHECK_EQ(th_recv_count(r), 0);
    wh_sqlite_options_init(&so);
    CHECK_EQ(wh_queue_sqlite_new(path, &so, &q), WH_OK);
    wh_engine_options_init(&eo);
    eo.queue = q;
    eo.queue_owned = 1;
    e = engine_with(&c, &eo);
    add_signed(e, th_recv_url(r));
    POLL_UNTIL(e, c.delivered >= 4, 10000);
    CHECK_EQ(th_recv_count(r), 4);
    char v[64];
    int tenants = 0;
    for (size_t i = 0; i < 4; i++) {
        th_recv_req rq;
        CHECK_EQ(th_recv_get(r, i, &rq), 0);
        if (th_recv_header(&rq, "X-Tenant", v, sizeof v))
            tenants += !strcmp(rq.webhook_id, "m1") ? !strcmp(v, "acme")
                                                     : !strcmp(v, "globex") * 10;
        if (!strcmp(rq.webhook_id, "m4")) {
            CHECK(th_recv_header(&rq, "X-Static", v, sizeof v));
            CHECK_STR(v, "from-endpoint");
            CHECK(th_recv_header(&rq, "X-Other", v, sizeof v));
        }
    }
    CHECK_EQ(tenants, 11);
    wh_engine_free(e);
    th_recv_stop(r);
    th_tmp_cleanup();
}

/* whsend's "headers" member. */
static void test_whsend_headers(void)
{
    th_tmp_init("whwh");
    th_recv *r = th_recv_start(NULL);
    const char *cfg = th_tmp_path("cfg.json");
    char doc[512];
    snprintf(doc, sizeof doc, "{\"endpoints\": [{\"url\": \"%s\"}]}", th_recv_url(r));
    th_write_file(cfg, doc);
    const char *in = th_tmp_path("in.ndjson");
    th_write_file(in, "{\"event\":\"t\",\"data\":{},\"headers\":{\"X-Tenant\":\"acme\"}}\n"
                      "{\"event\":\"t\",\"data\":{},\"headers\":{\"Host\":\"evil\"}}\n"
                      "{\"event\":\"t\",\"data\":{},\"headers\":{\"X-N\":1}}\n"
                      "{\"event\":\"t\",\"data\":{},\"headers\":[\"X-A: b\"]}\n");
    const char *out = th_tmp_path("out.txt"), *err = th_tmp_path("err.txt");
    char *argv[] = {"whsend", "-c", (char *)cfg, (char *)in, NULL};
    pid_t pid = th_spawn(th_example("whsend"), argv, NULL, out, err);
    CHECK_EQ(th_wait_exit(pid, 20000), 1); /* three lines rejected */
    CHECK_EQ(th_recv_count(r), 1);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    char v[64];
    CHECK(th_recv_header(&q, "X-Tenant", v, sizeof v));
    CHECK_STR(v, "acme");
    CHECK(th_file_contains(out, "\"emitted\":1,"));
    CHECK(th_file_contains(out, "\"rejected\":3,"));
    CHECK(th_file_contains(err, "\"Host\" is a reserved header name"));
    CHECK(th_file_contains(err, "\"headers\".\"X-N\" must be a string"));
    CHECK(th_file_contains(err, "\"headers\" must be an object of strings"));
    th_recv_stop(r);
    /* a dead-lettered line keeps its headers, so a replay sends them again */
    snprintf(doc, sizeof doc, "{\"endpoints\": [{\"url\": \"http://127.0.0.1:%d/x\","
             " \"max_attempts\": 1}]}", th_free_port());
    th_write_file(cfg, doc);
    th_write_file(in, "{\"event\":\"t\",\"data\":{\"n\":1},\"id\":\"d1\","
                      "\"headers\":{\"X-Tenant\":\"acme\",\"X-Trace\":\"a: b\"}}\n");
    const char *dead = th_tmp_path("dead.ndjson");
    char *argv2[] = {"whsend", "-c", (char *)cfg, "--dead-letter", (char *)dead, (char *)in,
                     NULL};
    pid = th_spawn(th_example("whsend"), argv2, NULL, out, err);
    CHECK_EQ(th_wait_exit(pid, 20000), 1);
    CHECK(th_file_contains(dead, "\"id\":\"d1\",\"headers\":{\"X-Tenant\":\"acme\","
                                 "\"X-Trace\":\"a: b\"}}"));
    th_tmp_cleanup();
}

TH_MAIN(TH_CASE(test_message_headers), TH_CASE(test_message_headers_sqlite),
        TH_CASE(test_whsend_headers), TH_CASE(test_pusher_event_shapes), TH_CASE(test_whsend_metrics_and_attempts), TH_CASE(test_config_keys), TH_CASE(test_config_soketi_app),
        TH_CASE(test_payload_filter_delivers_matching_events),
        TH_CASE(test_dedupe_in_memory), TH_CASE(test_dedupe_window_expires),
        TH_CASE(test_dedupe_sqlite_across_kill), TH_CASE(test_receiver_disable),
        TH_CASE(test_receiver_abort_message), TH_CASE(test_at_most_once),
        TH_CASE(test_operational_events), TH_CASE(test_metrics_match_stats))
