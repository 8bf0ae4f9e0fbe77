/* The libuv adapter (<webhook/adapters/libuv.h>): on the manual clock with
 * the scripted transport, and over real HTTP (libcurl on the uv loop, an
 * in-process receiver on 127.0.0.1): idle arms nothing (uv_run returns by
 * itself), a lone event to a 20 ms receiver, 20,000 events from 4 threads
 * with emit_any_thread, no thread started for IP literals. */
#include "fixture.h"
#include "http_receiver.h"
#include <webhook/adapters/libuv.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Manual clock, answers at once: the events go out and are delivered on
 * the loop, at the manual time they were emitted; the loop then has
 * nothing of the engine's left alive; a second attach is refused; detach
 * frees the adapter's state in its close callbacks (LeakSanitizer). */
static void uv_manual_clock(void)
{
    tf f;
    tf_init(&f, 1);
    tf_add_url(&f, TF_URL);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(wh_libuv_attach(f.e, &loop), WH_OK);
    CHECK_EQ(wh_libuv_attach(f.e, &loop), WH_E_EXISTS);
    CHECK_EQ(uv_loop_alive(&loop), 0);   /* idle: nothing armed */
    for (int i = 0; i < 5; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(uv_loop_alive(&loop), 1);   /* the timer, due now */
    uv_run(&loop, UV_RUN_DEFAULT);       /* returns once all is done */
    CHECK_EQ(f.delivered, 5);
    for (int i = 0; i < 5; i++) CHECK_EQ(f.out[i].at, TF_T0);
    CHECK_EQ(uv_loop_alive(&loop), 0);
    wh_libuv_detach(f.e);
    CHECK(wh_loop_attached(f.e) == NULL);
    uv_run(&loop, UV_RUN_NOWAIT);        /* close callbacks free the state */
    CHECK_EQ(uv_loop_close(&loop), 0);   /* every handle closed */
    tf_done(&f);
}

typedef struct hstate {
    long delivered, other;
    int64_t last_latency;
    uv_loop_t *loop;
} hstate;

static void on_outcome(void *user, const wh_outcome *o)
{
    hstate *h = user;
    if (o->kind == WH_DELIVERED) h->delivered++;
    else h->other++;
    h->last_latency = o->latency_ms;
}

static wh_engine *http_engine(hstate *h, const char *url, int any_thread)
{
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.on_outcome = on_outcome;
    o.outcome_user = h;
    o.emit_any_thread = any_thread;
    int err;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    ep.max_in_flight = 32;
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    return e;
}

/* Over HTTP: a lone event to a receiver answering after 20 ms is
 * delivered on the loop (latency at least the receiver's 20 ms); 1,000
 * more follow; uv_run returns by itself each time (the engine keeps
 * nothing alive when idle). */
static void uv_http_lone_event_and_idle(void)
{
    th_recv_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.delay_ms = 20;
    th_recv *rv = th_recv_start(&ro);
    CHECK(rv);
    hstate h;
    memset(&h, 0, sizeof h);
    wh_engine *e = http_engine(&h, th_recv_url(rv), 0);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(wh_libuv_attach(e, &loop), WH_OK);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(h.delivered, 1);
    CHECK_INT(h.last_latency, >=, 20);
    CHECK_EQ(uv_loop_alive(&loop), 0);
    th_recv_set(rv, 200, 0, 0);
    for (int i = 0; i < 1000; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(h.delivered, 1001);
    CHECK_EQ(h.other, 0);
    CHECK_EQ(th_recv_count(rv), 1001);
    wh_stats st;
    wh_stats_get(e, &st);
    CHECK_EQ(st.queued + st.in_flight, 0);
    wh_libuv_detach(e);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    wh_engine_free(e);
    th_recv_stop(rv);
}

typedef struct prod {
    wh_engine *e;
    int id;
    int failed;
} prod;

static void *producer(void *arg)
{
    prod *p = arg;
    for (int i = 0; i < 5000; i++) {
        char b[48];
        int n = snprintf(b, sizeof b, "{\"p\":%d,\"i\":%d}", p->id, i);
        int rc;
        while ((rc = wh_emit(p->e, "t", NULL, b, (size_t)n, NULL)) == WH_E_FULL) sched_yield();
        if (rc != 0) p->failed++;
    }
    return NULL;
}

static void on_check(uv_timer_t *t)
{
    hstate *h = t->data;
    if (h->delivered + h->other >= 20000) uv_close((uv_handle_t *)t, NULL);
}

/* 20,000 events from 4 threads with emit_any_thread over HTTP on the
 * libuv loop: all arrive. */
static void uv_http_four_threads(void)
{
    th_recv *rv = th_recv_start(NULL);
    CHECK(rv);
    hstate h;
    memset(&h, 0, sizeof h);
    wh_engine *e = http_engine(&h, th_recv_url(rv), 1);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(wh_libuv_attach(e, &loop), WH_OK);
    /* the host's own handle keeps the loop running until all arrived */
    uv_timer_t check;
    uv_timer_init(&loop, &check);
    check.data = &h;
    uv_timer_start(&check, on_check, 10, 10);
    pthread_t th[4];
    prod p[4];
    for (int i = 0; i < 4; i++) {
        p[i].e = e;
        p[i].id = i;
        p[i].failed = 0;
        CHECK_EQ(pthread_create(&th[i], NULL, producer, &p[i]), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_EQ(p[i].failed, 0);
    }
    CHECK_EQ(h.delivered, 20000);
    CHECK_EQ(h.other, 0);
    CHECK_EQ(th_recv_count(rv), 20000);
    wh_libuv_detach(e);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    wh_engine_free(e);
    th_recv_stop(rv);
}

static void on_outcome_threads(void *user, const wh_outcome *o)
{
    hstate *h = user;
    on_outcome(user, o);
    if (th_thread_count() != 1) h->other += 1000000; /* a thread appeared */
}

/* No thread: the example receiver runs in its own process, so this
 * process has one thread; it keeps one while libcurl delivers 200 events
 * to an IP literal on the uv loop. */
static void uv_http_no_thread_for_ip_literal(void)
{
    const char *bin = getenv("WH_BIN");
    if (!bin) th_skip("WH_BIN not set");
    char path[512];
    snprintf(path, sizeof path, "%s/receiver", bin);
    int out[2];
    CHECK_EQ(pipe(out), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(path, "receiver", "--port", "0", "--quiet", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[128] = "";
    size_t n = 0;
    while (n < sizeof line - 1 && read(out[0], line + n, 1) == 1 && line[n] != '\n') n++;
    line[n] = '\0';
    int port = 0;
    CHECK_EQ(sscanf(line, "listening 127.0.0.1:%d", &port), 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    CHECK_EQ(th_thread_count(), 1);
    hstate h;
    memset(&h, 0, sizeof h);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.on_outcome = on_outcome_threads;
    o.outcome_user = &h;
    int err;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(wh_libuv_attach(e, &loop), WH_OK);
    for (int i = 0; i < 200; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(h.delivered, 200);
    CHECK_EQ(h.other, 0);
    CHECK_EQ(th_thread_count(), 1);
    wh_libuv_detach(e);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    wh_engine_free(e);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    close(out[0]);
}

/* wh_flush with the loop attached (shutdown without running the loop):
 * the curl transport's perform still drives its transfers. */
static void uv_http_flush_while_attached(void)
{
    th_recv *rv = th_recv_start(NULL);
    CHECK(rv);
    hstate h;
    memset(&h, 0, sizeof h);
    wh_engine *e = http_engine(&h, th_recv_url(rv), 0);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(wh_libuv_attach(e, &loop), WH_OK);
    for (int i = 0; i < 100; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    uv_run(&loop, UV_RUN_NOWAIT);      /* some start on the loop */
    CHECK_EQ(wh_flush(e, 10000), WH_OK);
    CHECK_EQ(h.delivered, 100);
    uv_run(&loop, UV_RUN_DEFAULT);     /* nothing left: returns */
    wh_libuv_detach(e);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    wh_engine_free(e);
    th_recv_stop(rv);
}

TH_MAIN(TH_CASE(uv_manual_clock), TH_CASE(uv_http_flush_while_attached), TH_CASE(uv_http_lone_event_and_idle),
        TH_CASE(uv_http_four_threads), TH_CASE(uv_http_no_thread_for_ip_literal))
