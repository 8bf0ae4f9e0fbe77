/* The libcurl transport on its own (no engine), against th_recv receivers on
 * 127.0.0.1.  Every wait is bounded in real time.
 *
 * tests/test_transport_lean.c includes this file with TT_LEAN defined: the
 * same cases (TT_SHARED_CASES) then run against the lean transport. */
#include "harness.h"
#include "http_receiver.h"
#include <webhook/webhook.h>
#include <webhook/plugin.h>
#include <webhook/curl.h>
#include <webhook/lean.h>
#include <webhook/verify.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- thread creation counter ----------------------------------------------- */
/* This program's pthread_create() counts every thread started in the
 * process (libcurl's calls resolve to it) and forwards to the real one, so
 * even a thread that ends at once is seen. */
static atomic_int threads_created;

int pthread_create(pthread_t *restrict th, const pthread_attr_t *restrict attr,
                   void *(*fn)(void *), void *arg)
{
    typedef int (*create_fn)(pthread_t *restrict, const pthread_attr_t *restrict,
                             void *(*)(void *), void *);
    static _Atomic(create_fn) real;
    create_fn f = atomic_load(&real);
    if (!f) {
        void *sym = dlsym(RTLD_NEXT, "pthread_create");
        if (!sym) return EAGAIN;
        memcpy(&f, &sym, sizeof f);
        atomic_store(&real, f);
    }
    atomic_fetch_add(&threads_created, 1);
    return f(th, attr, fn, arg);
}

static int created_count(void) { return atomic_load(&threads_created); }

/* ---- helpers --------------------------------------------------------------- */
#define MAX_DONE 256

typedef struct done_rec {
    void *token;
    int status;
    int error;
    int has_msg;
    int has_retry_after;
    char retry_after[64];
    char body[8192];
    size_t body_len;
} done_rec;

typedef struct done_log {
    done_rec recs[MAX_DONE];
    int n;
    int max_threads;             /* most threads seen inside done() */
} done_log;

static void on_done(void *user, void *token, const wh_response *res)
{
    done_log *d = user;
    CHECK(d->n < MAX_DONE);
    CHECK(res != NULL);
    done_rec *r = &d->recs[d->n++];
    memset(r, 0, sizeof *r);
    r->token = token;
    r->status = res->status;
    r->error = res->error;
    r->has_msg = res->error_msg != NULL && res->error_msg[0] != '\0';
    if (res->retry_after) {
        r->has_retry_after = 1;
        snprintf(r->retry_after, sizeof r->retry_after, "%s", res->retry_after);
    }
    CHECK(res->body_len <= sizeof r->body);
    CHECK(res->body_len == 0 || res->body != NULL);
    if (res->body_len) memcpy(r->body, res->body, res->body_len);
    r->body_len = res->body_len;
    int th = th_thread_count();
    if (th > d->max_threads) d->max_threads = th;
}

/* Tests stay on 127.0.0.1 whatever the environment says. */
static void no_proxies(void)
{
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY",
                                       "https_proxy", "HTTPS_PROXY",
                                       "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static wh_transport *new_transport(const wh_curl_options *o)
{
    wh_transport *t = NULL;
    no_proxies();
#ifdef TT_LEAN
    wh_lean_options lo;
    wh_lean_options_init(&lo);
    if (o) lo.max_response_bytes = o->max_response_bytes;
    CHECK_EQ(wh_transport_lean_new(&lo, &t), WH_OK);
#else
    CHECK_EQ(wh_transport_curl_new(o, &t), WH_OK);
#endif
    CHECK(t != NULL);
    CHECK_EQ(t->version, WH_TRANSPORT_VERSION);
    CHECK(t->submit && t->perform && t->timeout_ms && t->cancel && t->destroy);
    return t;
}

/* What wh_transport_free() does. */
static void destroy(wh_transport *t) { t->destroy(t->user); }

static wh_request make_req(const char *url, const char *body, void *token)
{
    static const char *const hdrs[] = {"Content-Type: application/json"};
    wh_request q;
    memset(&q, 0, sizeof q);
    q.url = url;
    q.headers = hdrs;
    q.n_headers = 1;
    q.body = body;
    q.body_len = strlen(body);
    q.timeout_ms = 5000;
    q.connect_timeout_ms = 2000;
    q.token = token;
    return q;
}

/* perform(50) until `want` completions were logged or limit_ms passed.
 * Returns what the last perform() returned (requests still running). */
static int drive(wh_transport *t, done_log *d, int want, int limit_ms)
{
    int64_t end = th_now_ms() + limit_ms;
    int running = 0;
    do {
        running = t->perform(t->user, 50, on_done, d);
        CHECK(running >= 0);
    } while (d->n < want && th_now_ms() < end);
    return running;
}

/* Keep performing for ms, whatever happens. */
static void drive_for(wh_transport *t, done_log *d, int ms)
{
    int64_t end = th_now_ms() + ms;
    while (th_now_ms() < end) CHECK(t->perform(t->user, 20, on_done, d) >= 0);
}

static done_log *new_log(void)
{
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    return d;
}

/* ---- cases ----------------------------------------------------------------- */

/* A 200: body and headers arrive intact, the response is reported. */
static void t_post_200(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    int tok = 0;

    static const char *const hdrs[] = {
        "Content-Type: application/json", "webhook-id: msg_2KWPBgLlAfxdpx2A",
        "webhook-attempt: 3"};
    const char *body = "{\"type\":\"message.created\",\"data\":{\"text\":"
                       "\"h\\u00e9llo\",\"n\":42}}";
    wh_request q = make_req(th_recv_url(r), body, &tok);
    q.headers = hdrs;
    q.n_headers = 3;
    CHECK_EQ(t->timeout_ms(t->user), -1);
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    CHECK(t->timeout_ms(t->user) >= 0);
    CHECK_EQ(drive(t, d, 1, 5000), 0);
    CHECK_EQ(d->n, 1);
    CHECK(d->recs[0].token == &tok);
    CHECK_EQ(d->recs[0].status, 200);
    CHECK_EQ(d->recs[0].error, WH_OK);
    CHECK_EQ(d->recs[0].has_msg, 0);
    CHECK_EQ(d->recs[0].has_retry_after, 0);
    CHECK_STR(d->recs[0].body, "th_recv answered 200\n");
    CHECK_EQ(t->timeout_ms(t->user), -1);

    CHECK_EQ(th_recv_count(r), 1);
    th_recv_req rq;
    CHECK_EQ(th_recv_get(r, 0, &rq), 0);
    CHECK_STR(rq.method, "POST");
    CHECK_STR(rq.path, "/hook");
    CHECK_EQ(rq.body_len, strlen(body));
    CHECK(memcmp(rq.body, body, rq.body_len) == 0);
    CHECK_STR(rq.content_type, "application/json");
    CHECK_STR(rq.webhook_id, "msg_2KWPBgLlAfxdpx2A");
    CHECK_STR(rq.attempt, "3");
    CHECK(strncmp(rq.user_agent, "libwebhook/", 11) == 0);
    CHECK_EQ(rq.answered, 200);
    CHECK_EQ(rq.verified, -1);
    CHECK_EQ(th_recv_get(r, 1, &rq), -1);

    /* A large body with bytes of every value arrives byte for byte. */
    size_t big_len = 300 * 1024;
    char *big = malloc(big_len);
    CHECK(big != NULL);
    for (size_t i = 0; i < big_len; i++) big[i] = (char)(i * 7 + 1);
    wh_request q2 = make_req(th_recv_url(r), "", &tok);
    q2.body = big;
    q2.body_len = big_len;
    CHECK_EQ(t->submit(t->user, &q2), WH_OK);
    CHECK_EQ(drive(t, d, 2, 5000), 0);
    CHECK_EQ(d->n, 2);
    CHECK_EQ(d->recs[1].status, 200);
    CHECK_EQ(th_recv_get(r, 1, &rq), 0);
    CHECK_EQ(rq.body_len, big_len);
    CHECK(memcmp(rq.body, big, big_len) == 0);

    destroy(t);
    th_recv_stop(r);
    free(big);
    free(d);
}

/* No Content-Type given: JSON is assumed (never form-urlencoded). */
static void t_default_content_type(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    wh_request q = make_req(th_recv_url(r), "[]", NULL);
    q.headers = NULL;
    q.n_headers = 0;
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    drive(t, d, 1, 5000);
    CHECK_EQ(d->n, 1);
    CHECK_EQ(d->recs[0].status, 200);
    th_recv_req rq;
    CHECK_EQ(th_recv_get(r, 0, &rq), 0);
    CHECK_STR(rq.content_type, "application/json");
    CHECK_STR(rq.body, "[]");
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* A 503 with Retry-After: status 503 (not a transport error), "7". */
static void t_503_retry_after(void)
{
    th_recv_opts o = {0};
    o.status = 503;
    o.retry_after = "7";
    th_recv *r = th_recv_start(&o);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    CHECK_EQ(t->submit(t->user, &(wh_request){0}), WH_E_INVAL); /* no URL */
    wh_request q = make_req(th_recv_url(r), "{}", (void *)0x1);
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    CHECK_EQ(drive(t, d, 1, 5000), 0);
    CHECK_EQ(d->n, 1);
    CHECK(d->recs[0].token == (void *)0x1);
    CHECK_EQ(d->recs[0].status, 503);
    CHECK_EQ(d->recs[0].error, WH_OK);
    CHECK_EQ(d->recs[0].has_retry_after, 1);
    CHECK_STR(d->recs[0].retry_after, "7");

    /* The next response on the same handle has no Retry-After: the value
     * of the previous one must not leak into it. */
    th_recv *ok = th_recv_start(NULL);
    CHECK(ok != NULL);
    q = make_req(th_recv_url(ok), "{}", (void *)0x2);
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    drive(t, d, 2, 5000);
    CHECK_EQ(d->n, 2);
    CHECK_EQ(d->recs[1].status, 200);
    CHECK_EQ(d->recs[1].has_retry_after, 0);
    destroy(t);
    th_recv_stop(ok);
    th_recv_stop(r);
    free(d);
}

/* A 302 is reported as 302 and never followed. */
static void t_302_not_followed(void)
{
    th_recv_opts o = {0};
    o.status = 302;
    th_recv *r = th_recv_start(&o);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    wh_request q = make_req(th_recv_url(r), "{\"a\":1}", NULL);
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    CHECK_EQ(drive(t, d, 1, 5000), 0);
    CHECK_EQ(d->n, 1);
    CHECK_EQ(d->recs[0].status, 302);
    CHECK_EQ(d->recs[0].error, WH_OK);
    drive_for(t, d, 200);
    CHECK_EQ(th_recv_wait(r, 2, 200), 1);
    th_recv_req rq;
    CHECK_EQ(th_recv_get(r, 0, &rq), 0);
    CHECK_STR(rq.path, "/hook");
    CHECK_EQ(d->n, 1);
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* A port nobody listens on: WH_E_CONNECT, status 0. */
static void t_connect_refused(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", ntohs(sa.sin_port));

    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    wh_request q = make_req(url, "{}", (void *)0x5);
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    CHECK_EQ(drive(t, d, 1, 5000), 0);
    CHECK_EQ(d->n, 1);
    CHECK(d->recs[0].token == (void *)0x5);
    CHECK_EQ(d->recs[0].error, WH_E_CONNECT);
    CHECK_EQ(d->recs[0].status, 0);
    CHECK_EQ(d->recs[0].has_msg, 1);
    destroy(t);
    free(d);
}

/* A receiver that never answers: WH_E_TIMEOUT after timeout_ms. */
static void t_timeout(void)
{
    th_recv_opts o = {0};
    o.hang = 1;
    th_recv *r = th_recv_start(&o);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    wh_request q = make_req(th_recv_url(r), "{}", NULL);
    q.timeout_ms = 300;
    q.connect_timeout_ms = 300;
    int64_t t0 = th_now_ms();
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    /* While it runs, curl's timer is bounded by the request timeout. */
    CHECK(t->perform(t->user, 0, on_done, d) >= 0);
    int64_t tm = t->timeout_ms(t->user);
    CHECK(tm >= 0 && tm <= 300);
    drive(t, d, 1, 5000);
    int64_t took = th_now_ms() - t0;
    CHECK_EQ(d->n, 1);
    CHECK_EQ(d->recs[0].error, WH_E_TIMEOUT);
    CHECK_EQ(d->recs[0].status, 0);
    CHECK_EQ(d->recs[0].has_msg, 1);
    CHECK(took >= 250);
    CHECK(took < 3000);
    CHECK_EQ(th_recv_count(r), 1); /* the request did get there */
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* The receiver closes the connection without answering: WH_E_TRANSPORT. */
static void t_dropped(void)
{
    th_recv_opts o = {0};
    o.drop = 1;
    th_recv *r = th_recv_start(&o);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    wh_request q = make_req(th_recv_url(r), "{\"x\":true}", NULL);
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    CHECK_EQ(drive(t, d, 1, 5000), 0);
    CHECK_EQ(d->n, 1);
    CHECK_EQ(d->recs[0].error, WH_E_TRANSPORT);
    CHECK_EQ(d->recs[0].status, 0);
    CHECK_EQ(d->recs[0].has_msg, 1);
    CHECK(th_recv_count(r) >= 1);
    th_recv_req rq;
    CHECK_EQ(th_recv_get(r, 0, &rq), 0);
    CHECK_EQ(rq.answered, 0);
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* Only http and https: another scheme fails without any I/O. */
static void t_other_scheme_refused(void)
{
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    wh_request q = make_req("ftp://127.0.0.1:9/x", "{}", NULL);
    int rc = t->submit(t->user, &q);
    if (rc == WH_OK) {
        drive(t, d, 1, 5000);
        CHECK_EQ(d->n, 1);
        CHECK_EQ(d->recs[0].error, WH_E_TRANSPORT);
        CHECK_EQ(d->recs[0].status, 0);
    } else {
        CHECK(rc < 0);
    }
    destroy(t);
    free(d);
}

/* 50 requests at once: every one completes once, with its own token. */
static void t_concurrent_50(void)
{
    enum { N = 50 };
    th_recv_opts o = {0};
    o.delay_ms = 1000;
    th_recv *r = th_recv_start(&o);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    static int toks[N];
    static char bodies[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"i\":%d}", i);
        wh_request q = make_req(th_recv_url(r), bodies[i], &toks[i]);
        CHECK_EQ(t->submit(t->user, &q), WH_OK);
    }
    CHECK_EQ(drive(t, d, N, 20000), 0);
    CHECK_EQ(d->n, N);
    int seen[N] = {0};
    for (int i = 0; i < d->n; i++) {
        int *tk = d->recs[i].token;
        CHECK(tk >= &toks[0] && tk < &toks[N]);
        seen[tk - toks]++;
        CHECK_EQ(d->recs[i].status, 200);
        CHECK_EQ(d->recs[i].error, WH_OK);
    }
    for (int i = 0; i < N; i++) CHECK_EQ(seen[i], 1);
    CHECK_EQ(th_recv_count(r), N);
    int got[N] = {0};
    for (size_t i = 0; i < N; i++) {
        th_recv_req rq;
        CHECK_EQ(th_recv_get(r, i, &rq), 0);
        int k = -1;
        CHECK_EQ(sscanf(rq.body, "{\"i\":%d}", &k), 1);
        CHECK(k >= 0 && k < N);
        got[k]++;
    }
    for (int i = 0; i < N; i++) CHECK_EQ(got[i], 1);
    /* The transfers really overlapped: all 50 were at the receiver at once
     * (none waited for another's answer). */
    CHECK_EQ(th_recv_max_concurrent(r), N);
    CHECK_EQ(t->timeout_ms(t->user), -1);
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* TCP sockets of this host whose remote port is `port` (client ends of
 * connections to our receiver), in any state, TIME_WAIT included. */
static int client_sockets_to(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    CHECK(f != NULL);
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned lport, rport, st;
        if (sscanf(line, " %*d: %*x:%x %*x:%x %x", &lport, &rport, &st) == 3 &&
            (int)rport == port)
            n++;
    }
    fclose(f);
    return n;
}

/* 20 sequential requests travel over one keep-alive connection: the kernel
 * shows exactly one client socket to the receiver's port. */
static void t_keepalive_reuse(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    int before = client_sockets_to(th_recv_port(r));
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    for (int i = 0; i < 20; i++) {
        wh_request q = make_req(th_recv_url(r), "{\"seq\":true}", NULL);
        CHECK_EQ(t->submit(t->user, &q), WH_OK);
        CHECK_EQ(drive(t, d, i + 1, 5000), 0);
        CHECK_EQ(d->n, i + 1);
        CHECK_EQ(d->recs[i].status, 200);
    }
    CHECK_EQ(th_recv_count(r), 20);
    CHECK_EQ(client_sockets_to(th_recv_port(r)) - before, 1);
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* A cancelled request is never reported; the others are unaffected. */
static void t_cancel_running(void)
{
    th_recv_opts ho = {0};
    ho.hang = 1;
    th_recv *hang = th_recv_start(&ho);
    th_recv *ok = th_recv_start(NULL);
    CHECK(hang && ok);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    int a = 0, b = 0;
    wh_request qa = make_req(th_recv_url(hang), "{\"a\":1}", &a);
    qa.timeout_ms = 1000;
    CHECK_EQ(t->submit(t->user, &qa), WH_OK);
    int64_t end = th_now_ms() + 5000;
    while (th_recv_count(hang) < 1 && th_now_ms() < end)
        CHECK(t->perform(t->user, 20, on_done, d) >= 0);
    CHECK_EQ(th_recv_count(hang), 1); /* it is running on the server */
    t->cancel(t->user, &a);
    t->cancel(t->user, &a);                 /* twice: harmless */
    t->cancel(t->user, (void *)0xdeadbeef); /* unknown: harmless */
    CHECK_EQ(t->timeout_ms(t->user), -1);

    wh_request qb = make_req(th_recv_url(ok), "{\"b\":1}", &b);
    CHECK_EQ(t->submit(t->user, &qb), WH_OK);
    drive(t, d, 1, 5000);
    /* Past the cancelled request's own timeout: still nothing for it. */
    drive_for(t, d, 1300);
    CHECK_EQ(d->n, 1);
    CHECK(d->recs[0].token == &b);
    CHECK_EQ(d->recs[0].status, 200);
    CHECK_EQ(t->perform(t->user, 0, on_done, d), 0);
    destroy(t);
    th_recv_stop(ok);
    th_recv_stop(hang);
    free(d);
}

/* done() cancels every other request (running or finished but not yet
 * reported), submits a new one and tries to re-enter perform(). */
typedef struct reent {
    done_log log;
    wh_transport *t;
    int toks[6];
    const char *url;
    int recursive_rc;
} reent;

static void on_done_reent(void *user, void *token, const wh_response *res)
{
    reent *x = user;
    on_done(&x->log, token, res);
    if (x->log.n != 1) return;
    for (int i = 0; i < 5; i++)
        if (token != &x->toks[i]) x->t->cancel(x->t->user, &x->toks[i]);
    wh_request q = make_req(x->url, "{\"again\":1}", &x->toks[5]);
    CHECK_EQ(x->t->submit(x->t->user, &q), WH_OK);
    x->recursive_rc = x->t->perform(x->t->user, 0, on_done, &x->log);
}

static void t_reentrant_done(void)
{
    th_recv_opts o = {0};
    o.delay_ms = 200;
    th_recv *r = th_recv_start(&o);
    CHECK(r != NULL);
    reent *x = calloc(1, sizeof *x);
    CHECK(x != NULL);
    x->t = new_transport(NULL);
    x->url = th_recv_url(r);
    for (int i = 0; i < 5; i++) {
        wh_request q = make_req(x->url, "{}", &x->toks[i]);
        CHECK_EQ(x->t->submit(x->t->user, &q), WH_OK);
    }
    /* Send all five, let all five answers arrive while nobody performs, so
     * that one perform() finishes all of them: the first done() then
     * cancels four finished requests not yet reported. */
    int64_t end = th_now_ms() + 5000;
    while (th_recv_count(r) < 5 && th_now_ms() < end)
        CHECK(x->t->perform(x->t->user, 20, on_done_reent, x) >= 0);
    CHECK_EQ(th_recv_count(r), 5);
    CHECK_EQ(x->log.n, 0);
    struct timespec ts = {0, 600 * 1000000L};
    nanosleep(&ts, NULL);
    end = th_now_ms() + 5000;
    while (x->log.n < 2 && th_now_ms() < end)
        CHECK(x->t->perform(x->t->user, 50, on_done_reent, x) >= 0);
    drive_for(x->t, &x->log, 300);
    CHECK_EQ(x->recursive_rc, WH_E_RECURSIVE);
    CHECK_EQ(x->log.n, 2);
    CHECK(x->log.recs[0].token >= (void *)&x->toks[0] &&
          x->log.recs[0].token < (void *)&x->toks[5]);
    CHECK(x->log.recs[1].token == &x->toks[5]);
    CHECK_EQ(x->log.recs[1].status, 200);
    CHECK_EQ(x->t->timeout_ms(x->t->user), -1);
    CHECK_EQ(th_recv_count(r), 6);
    destroy(x->t);
    th_recv_stop(r);
    free(x);
}

/* destroy() from inside done() is deferred until perform() returns. */
static void on_done_destroy(void *user, void *token, const wh_response *res)
{
    wh_transport **tp = user;
    (*tp)->destroy((*tp)->user);
    *tp = NULL;
}

static void t_destroy_in_done(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL), *keep = t;
    for (int i = 0; i < 3; i++) {
        wh_request q = make_req(th_recv_url(r), "{}", NULL);
        CHECK_EQ(t->submit(t->user, &q), WH_OK);
    }
    int64_t end = th_now_ms() + 5000;
    while (t && th_now_ms() < end) {
        int rc = keep->perform(keep->user, 50, on_done_destroy, &t);
        if (t) CHECK(rc >= 0);
        else CHECK_EQ(rc, 0);
    }
    CHECK(t == NULL); /* freed: LeakSanitizer checks nothing is left */
    th_recv_stop(r);
}

/* Response bodies are kept up to max_response_bytes; the rest is read and
 * discarded, and the transfer still succeeds. */
static void t_body_cap(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    const char *full = "th_recv answered 200\n";
    size_t caps[] = {4096, 5, 0};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        wh_curl_options o;
        wh_curl_options_init(&o);
#ifndef TT_LEAN
        CHECK_EQ(o.max_response_bytes, 4096);
#endif
        o.max_response_bytes = caps[i];
        wh_transport *t = new_transport(&o);
        done_log *d = new_log();
        wh_request q = make_req(th_recv_url(r), "{}", NULL);
        CHECK_EQ(t->submit(t->user, &q), WH_OK);
        drive(t, d, 1, 5000);
        CHECK_EQ(d->n, 1);
        CHECK_EQ(d->recs[0].status, 200);
        CHECK_EQ(d->recs[0].error, WH_OK);
        size_t want = strlen(full) < caps[i] ? strlen(full) : caps[i];
        CHECK_EQ(d->recs[0].body_len, want);
        CHECK(memcmp(d->recs[0].body, full, want) == 0);
        destroy(t);
        free(d);
    }
    th_recv_stop(r);
}

#ifndef TT_LEAN
/* Options structs: init writes only `size` bytes; an older (smaller)
 * struct is read only up to its struct_size; bad input is refused. */
static void t_options_sized(void)
{
    unsigned char buf[sizeof(wh_curl_options) + 16];
    memset(buf, 0xAB, sizeof buf);
    size_t small = offsetof(wh_curl_options, max_host_connections);
    wh_curl_options_init_sized((wh_curl_options *)(void *)buf, small);
    for (size_t i = small; i < sizeof buf; i++) CHECK_EQ(buf[i], 0xAB);
    wh_curl_options o;
    memcpy(&o, buf, sizeof o);
    CHECK_EQ(o.struct_size, small);
    CHECK_EQ(o.max_response_bytes, 4096);

    wh_curl_options full;
    wh_curl_options_init(&full);
    CHECK_EQ(full.struct_size, sizeof full);
    CHECK_EQ(full.max_response_bytes, 4096);
    CHECK_EQ(full.max_host_connections, 0);
    CHECK_EQ(full.verify_tls, 1);
    CHECK_EQ(full.http2, 0); /* opt-in: see curl.h */

    /* An old caller: garbage past its struct_size is never read. */
    o.max_response_bytes = 3;
    memcpy(buf, &o, sizeof o); /* bytes past `small` are still 0xAB */
    wh_transport *t = NULL;
    no_proxies();
    CHECK_EQ(wh_transport_curl_new((wh_curl_options *)(void *)buf, &t), WH_OK);
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    done_log *d = new_log();
    wh_request q = make_req(th_recv_url(r), "{}", NULL);
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    drive(t, d, 1, 5000);
    CHECK_EQ(d->n, 1);
    CHECK_EQ(d->recs[0].status, 200);
    CHECK_EQ(d->recs[0].body_len, 3);
    destroy(t);
    th_recv_stop(r);
    free(d);

    CHECK_EQ(wh_transport_curl_new(NULL, NULL), WH_E_INVAL);
    wh_curl_options bad;
    wh_curl_options_init(&bad);
    bad.struct_size = 0;
    t = (wh_transport *)0x1;
    CHECK_EQ(wh_transport_curl_new(&bad, &t), WH_E_VERSION);
    CHECK(t == NULL);
    wh_curl_options_init(&bad);
    bad.max_host_connections = -1;
    CHECK_EQ(wh_transport_curl_new(&bad, &t), WH_E_INVAL);
    wh_curl_options_init_sized(NULL, sizeof bad); /* no crash */
}
#endif

/* The Standard Webhooks signature check of the test receiver. */
static void t_receiver_verifies_signature(void)
{
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    th_recv_opts ro = {0};
    ro.secret = secret;
    th_recv *r = th_recv_start(&ro);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    const char *body = "{\"test\":2432232314}";
    const char *id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    char ts[32], sig[128], h_id[96], h_ts[64], h_sig[160], h_bad[160];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    const char *secrets[1] = {secret};
    CHECK_EQ(wh_sign_standard(secrets, 1, id, atoll(ts), body, strlen(body),
                              sig, sizeof sig),
             WH_OK);
    snprintf(h_id, sizeof h_id, "webhook-id: %s", id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    snprintf(h_bad, sizeof h_bad, "webhook-signature: %s", sig);
    h_bad[strlen(h_bad) - 2] ^= 1; /* one bit of the base64 changed */
    const char *good[] = {"Content-Type: application/json", h_id, h_ts, h_sig};
    const char *bad[] = {"Content-Type: application/json", h_id, h_ts, h_bad};
    wh_request q = make_req(th_recv_url(r), body, NULL);
    q.headers = good;
    q.n_headers = 4;
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    drive(t, d, 1, 5000);
    q.headers = bad;
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    drive(t, d, 2, 5000);
    CHECK_EQ(d->n, 2);
    th_recv_req rq;
    CHECK_EQ(th_recv_get(r, 0, &rq), 0);
    CHECK_EQ(rq.verified, 1);
    CHECK_STR(rq.webhook_signature, sig);
    CHECK_EQ(th_recv_get(r, 1, &rq), 0);
    CHECK_EQ(rq.verified, 0);
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* The test receiver's fail_first: the first N attempts of every webhook-id
 * fail (with Retry-After), later ones succeed. */
static void t_receiver_fail_first(void)
{
    th_recv_opts ro = {0};
    ro.fail_first = 2;
    ro.fail_status = 429;
    ro.retry_after = "1";
    th_recv *r = th_recv_start(&ro);
    CHECK(r != NULL);
    wh_transport *t = new_transport(NULL);
    done_log *d = new_log();
    static const char *const a[] = {"webhook-id: a"}, *const b[] = {"webhook-id: b"};
    const char *const *order[] = {a, b, a, a, b, b, a};
    int want[] = {429, 429, 429, 200, 429, 200, 200};
    for (int i = 0; i < 7; i++) {
        wh_request q = make_req(th_recv_url(r), "{}", NULL);
        q.headers = order[i];
        q.n_headers = 1;
        CHECK_EQ(t->submit(t->user, &q), WH_OK);
        drive(t, d, i + 1, 5000);
        CHECK_EQ(d->n, i + 1);
        CHECK_EQ(d->recs[i].status, want[i]);
        CHECK_EQ(d->recs[i].has_retry_after, want[i] != 200);
        if (want[i] != 200) CHECK_STR(d->recs[i].retry_after, "1");
        th_recv_req rq;
        CHECK_EQ(th_recv_get(r, (size_t)i, &rq), 0);
        CHECK_EQ(rq.answered, want[i]);
        CHECK_STR(rq.webhook_id, order[i] == a ? "a" : "b");
    }
    destroy(t);
    th_recv_stop(r);
    free(d);
}

/* The transport never starts a thread.  The receiver runs in a child
 * process, so this process's thread count is the transport's alone. */
static void t_no_threads(void)
{
    int port_pipe[2], stop_pipe[2];
    CHECK_EQ(pipe(port_pipe), 0);
    CHECK_EQ(pipe(stop_pipe), 0);
    int base = th_thread_count();
    CHECK(base >= 1);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(port_pipe[0]);
        close(stop_pipe[1]);
        th_recv *r = th_recv_start(NULL);
        int port = r ? th_recv_port(r) : 0;
        if (write(port_pipe[1], &port, sizeof port) != (ssize_t)sizeof port)
            port = 0;
        close(port_pipe[1]);
        char c;
        /* Until the parent closes its end (or exits). */
        while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
        }
        th_recv_stop(r);
        _exit(port ? 0 : 1);
    }
    close(port_pipe[1]);
    close(stop_pipe[0]);
    int port = 0;
    CHECK_EQ(read(port_pipe[0], &port, sizeof port), (ssize_t)sizeof port);
    close(port_pipe[0]);
    CHECK(port > 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);

    CHECK_EQ(th_thread_count(), base);
    int created = created_count();
    wh_transport *t = new_transport(NULL);
    CHECK_EQ(th_thread_count(), base);
    done_log *d = new_log();
    for (int i = 0; i < 5; i++) {
        wh_request q = make_req(url, "{}", NULL);
        CHECK_EQ(t->submit(t->user, &q), WH_OK);
    }
    CHECK_EQ(th_thread_count(), base);
    int64_t end = th_now_ms() + 5000;
    while (d->n < 5 && th_now_ms() < end) {
        CHECK(t->perform(t->user, 10, on_done, d) >= 0);
        CHECK_EQ(th_thread_count(), base);
    }
    CHECK_EQ(d->n, 5);
    for (int i = 0; i < 5; i++) CHECK_EQ(d->recs[i].status, 200);
    CHECK_EQ(d->max_threads, base);
    destroy(t);
    CHECK_EQ(th_thread_count(), base);
    /* Not even a short-lived one (e.g. a resolver thread). */
    CHECK_EQ(created_count(), created);
    free(d);

    close(stop_pipe[1]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* The counter is live: an in-process receiver's threads are seen. */
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    CHECK(created_count() > created);
    th_recv_stop(r);
}

/* The cases every transport of the library passes. */
#define TT_SHARED_CASES                                                        \
    TH_CASE(t_post_200), TH_CASE(t_default_content_type),                      \
        TH_CASE(t_503_retry_after), TH_CASE(t_302_not_followed),               \
        TH_CASE(t_connect_refused), TH_CASE(t_timeout), TH_CASE(t_dropped),    \
        TH_CASE(t_other_scheme_refused), TH_CASE(t_concurrent_50),             \
        TH_CASE(t_keepalive_reuse), TH_CASE(t_cancel_running),                 \
        TH_CASE(t_reentrant_done), TH_CASE(t_destroy_in_done),                 \
        TH_CASE(t_body_cap), TH_CASE(t_receiver_verifies_signature),           \
        TH_CASE(t_receiver_fail_first), TH_CASE(t_no_threads)

#ifndef TT_LEAN
TH_MAIN(TT_SHARED_CASES, TH_CASE(t_options_sized))
#endif
