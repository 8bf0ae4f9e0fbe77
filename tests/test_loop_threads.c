/* emit_any_thread from several producer threads (also built under
 * ThreadSanitizer by .ci/run): every event accepted arrives exactly once,
 * WH_E_FULL pushes back instead of dropping, wh_wakeup from any thread.
 * The scripted transport on the system clock: no network, no other
 * threads than the test's. */
#include "harness.h"
#include <webhook/webhook.h>
#include <webhook/test.h>

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PRODUCERS 4
#define PER_PRODUCER 5000

typedef struct run {
    wh_engine *e;
    int producer;
    atomic_long fulls;
    unsigned char *seen;     /* PRODUCERS * PER_PRODUCER: times delivered */
    long delivered, dups, bad;
} run;

typedef struct prod {
    run *r;
    int id;
    long fulls;
} prod;

static void on_outcome(void *user, const wh_outcome *o)
{
    run *r = user;
    if (o->kind != WH_DELIVERED) {
        r->bad++;
        return;
    }
    int p = -1, i = -1;
    char buf[64];
    size_t n = o->ev.data_len < sizeof buf - 1 ? o->ev.data_len : sizeof buf - 1;
    memcpy(buf, o->ev.data, n);
    buf[n] = '\0';
    if (sscanf(buf, "{\"p\":%d,\"i\":%d}", &p, &i) != 2 || p < 0 || p >= PRODUCERS || i < 0 ||
        i >= PER_PRODUCER) {
        r->bad++;
        return;
    }
    if (r->seen[p * PER_PRODUCER + i]++) r->dups++;
    r->delivered++;
}

static void *producer(void *arg)
{
    prod *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        char b[48];
        int n = snprintf(b, sizeof b, "{\"p\":%d,\"i\":%d}", p->id, i);
        int rc;
        while ((rc = wh_emit(p->r->e, "t", "room", b, (size_t)n, NULL)) == WH_E_FULL) {
            p->fulls++;
            sched_yield(); /* back off and retry, as the header says */
        }
        if (rc != 0) return (void *)1;
        if (i % 1000 == 0) wh_wakeup(p->r->e); /* any thread may */
    }
    return NULL;
}

static void four_producers_all_arrive(void)
{
    wh_transport *t;
    CHECK_EQ(wh_transport_scripted_new(NULL, NULL, &t), WH_OK);
    run r;
    memset(&r, 0, sizeof r);
    r.seen = calloc(PRODUCERS * PER_PRODUCER, 1);
    CHECK(r.seen);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.transport = t;
    o.emit_any_thread = 1;
    o.inbox_capacity = 1024; /* small: producers meet WH_E_FULL */
    o.on_outcome = on_outcome;
    o.outcome_user = &r;
    int err;
    r.e = wh_engine_new(&o, &err);
    CHECK(r.e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/hook";
    ep.max_in_flight = 64;
    CHECK_INT(wh_endpoint_add(r.e, &ep), >, 0);
    int fd = wh_fd(r.e);
    CHECK_INT(fd, >=, 0);
    pthread_t th[PRODUCERS];
    prod pr[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        pr[i].r = &r;
        pr[i].id = i;
        pr[i].fulls = 0;
        CHECK_EQ(pthread_create(&th[i], NULL, producer, &pr[i]), 0);
    }
    /* the engine's thread: a poll(2) loop on wh_fd alone */
    int64_t end = th_now_ms() + 60000;
    while (r.delivered + r.bad < PRODUCERS * PER_PRODUCER && th_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) wh_poll(r.e, 0);
    }
    long fulls = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        void *ret;
        CHECK_EQ(pthread_join(th[i], &ret), 0);
        CHECK(ret == NULL);
        fulls += pr[i].fulls;
    }
    CHECK_EQ(r.delivered, PRODUCERS * PER_PRODUCER);
    CHECK_EQ(r.dups, 0);
    CHECK_EQ(r.bad, 0);
    wh_stats st;
    wh_stats_get(r.e, &st);
    CHECK_EQ(st.emitted, PRODUCERS * PER_PRODUCER);
    CHECK_EQ(st.rejected, (uint64_t)fulls); /* every refusal was a WH_E_FULL seen */
    printf("# %ld WH_E_FULL answers, retried\n", fulls);
    wh_engine_free(r.e);
    wh_transport_free(t);
    free(r.seen);
}

/* A wh_poll waiting in the (scripted) transport's perform or on wh_fd
 * returns when another thread emits. */
static void *late_emit(void *arg)
{
    wh_engine *e = arg;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    wh_emit(e, "t", NULL, "{}", 2, NULL);
    return NULL;
}

static void waiting_poll_returns_on_emit(void)
{
    wh_transport *t;
    CHECK_EQ(wh_transport_scripted_new(NULL, NULL, &t), WH_OK);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.transport = t;
    o.emit_any_thread = 1;
    o.outcome_queue = 1;
    int err;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/hook";
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    CHECK_INT(wh_fd(e), >=, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, late_emit, e), 0);
    int64_t t0 = th_now_ms();
    wh_poll(e, 20000);            /* returns when woken, not after 20 s */
    int64_t waited = th_now_ms() - t0;
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_INT(waited, <, 15000);  /* far from the 20 s bound: it was woken */
    for (int i = 0; i < 10 && wh_work_due(e); i++) wh_poll(e, 100);
    wh_outcome out;
    int got = 0;
    while (got < 1) {
        if (wh_outcome_next(e, &out) == 1) got++;
        else wh_poll(e, 100);
        CHECK_INT(th_now_ms() - t0, <, 15000);
    }
    CHECK_EQ(out.kind, WH_DELIVERED);
    wh_engine_free(e);
    wh_transport_free(t);
}

TH_MAIN(TH_CASE(four_producers_all_arrive), TH_CASE(waiting_poll_returns_on_emit))
