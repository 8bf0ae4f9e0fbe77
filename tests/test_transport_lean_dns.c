/* Host names over the lean transport (a library built with c-ares): a DNS
 * server this program runs on 127.0.0.1 (UDP) answers names under ".test"
 * with 127.0.0.1 and refuses the rest; the transport is pointed at it with
 * wh_lean_options.dns_servers, so no query ever leaves the machine.  The
 * HTTP side is a th_recv receiver.  Every wait is bounded in real time. */
#include "harness.h"
#include "http_receiver.h"
#include <webhook/webhook.h>
#include <webhook/plugin.h>
#include <webhook/lean.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- thread creation counter (as in test_transport_curl.c) ------------------- */
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

/* ---- DNS server ------------------------------------------------------------------ */
typedef struct dns_srv {
    int fd, port;
    pthread_t th;
    atomic_int stop;
    int silent;                  /* never answer */
    atomic_int a_queries;        /* type A queries for names under .test */
    atomic_int queries;
    char servers[32];            /* "127.0.0.1:PORT" */
} dns_srv;

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static void *dns_main(void *arg)
{
    dns_srv *s = arg;
    unsigned char q[512], a[600];
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (n < 12) continue;
        atomic_fetch_add(&s->queries, 1);
        if (s->silent) continue;
        /* the question: labels, type, class */
        char name[256];
        size_t i = 12, o = 0;
        while (i < (size_t)n && q[i] && o + q[i] + 1 < sizeof name) {
            size_t len = q[i++];
            if (o) name[o++] = '.';
            memcpy(name + o, q + i, len);
            o += len;
            i += len;
        }
        name[o] = '\0';
        i++; /* the root label */
        if (i + 4 > (size_t)n) continue;
        int qtype = q[i] << 8 | q[i + 1];
        size_t qend = i + 4;
        int known = ends_with(name, ".test");
        int answer = known && qtype == 1;
        if (answer) atomic_fetch_add(&s->a_queries, 1);
        memcpy(a, q, qend);
        a[2] = 0x81;                       /* response, recursion desired */
        a[3] = known ? 0x80 : 0x83;        /* recursion available; NXDOMAIN */
        a[4] = 0, a[5] = 1;                /* one question */
        a[6] = 0, a[7] = answer ? 1 : 0;   /* answers */
        memset(a + 8, 0, 4);               /* no authority, no additional */
        size_t m = qend;
        if (answer) {
            static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4,
                                               127, 0, 0, 1};
            memcpy(a + m, rr, sizeof rr);
            m += sizeof rr;
        }
        (void)sendto(s->fd, a, m, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static dns_srv *dns_start(int silent)
{
    dns_srv *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    s->silent = silent;
    s->fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s->fd >= 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    snprintf(s->servers, sizeof s->servers, "127.0.0.1:%d", s->port);
    CHECK_EQ(pthread_create(&s->th, NULL, dns_main, s), 0);
    return s;
}

static void dns_stop(dns_srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->fd);
    free(s);
}

/* ---- client side ------------------------------------------------------------------ */
typedef struct done_log {
    int n;
    int status[64], error[64];
    char msg[64][400];
} done_log;

static void on_done(void *user, void *token, const wh_response *res)
{
    done_log *d = user;
    (void)token;
    CHECK(d->n < 64);
    d->status[d->n] = res->status;
    d->error[d->n] = res->error;
    snprintf(d->msg[d->n], sizeof d->msg[0], "%s", res->error_msg ? res->error_msg : "");
    d->n++;
}

static wh_transport *lean(const char *servers)
{
    wh_lean_options o;
    wh_lean_options_init(&o);
    o.dns_servers = servers;
    wh_transport *t = NULL;
    CHECK_EQ(wh_transport_lean_new(&o, &t), WH_OK);
    return t;
}

static void submit(wh_transport *t, const char *url, uint32_t timeout_ms)
{
    wh_request q;
    memset(&q, 0, sizeof q);
    q.url = url;
    q.body = "{}";
    q.body_len = 2;
    q.timeout_ms = timeout_ms;
    q.connect_timeout_ms = timeout_ms;
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
}

static void drive(wh_transport *t, done_log *d, int want)
{
    int64_t end = th_now_ms() + 15000;
    while (d->n < want && th_now_ms() < end) CHECK(t->perform(t->user, 20, on_done, d) >= 0);
    CHECK_EQ(d->n, want);
}

/* Skip when the library was built without c-ares (asked through a server
 * of its own that answers). */
static void need_cares(dns_srv *s)
{
    dns_srv *probe = dns_start(0);
    wh_transport *t = lean(probe->servers);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    submit(t, "http://nothing.invalid:1/", 2000);
    drive(t, d, 1);
    int built = strstr(d->msg[0], "built without c-ares") == NULL;
    t->destroy(t->user);
    dns_stop(probe);
    free(d);
    if (!built) {
        dns_stop(s);
        th_skip("the lean transport was built without c-ares (WITH_CARES=0)");
    }
}

/* ---- cases --------------------------------------------------------------------------- */

/* A name resolves once (its TTL holds) and concurrent requests share the
 * query. */
static void t_name_resolves_once(void)
{
    dns_srv *s = dns_start(0);
    need_cares(s);
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    char url[96];
    snprintf(url, sizeof url, "http://hooks.test:%d/hook", th_recv_port(r));
    wh_transport *t = lean(s->servers);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    for (int i = 0; i < 8; i++) submit(t, url, 5000);
    drive(t, d, 8);
    for (int i = 0; i < 5; i++) {
        submit(t, url, 5000);
        drive(t, d, 9 + i);
    }
    for (int i = 0; i < d->n; i++) {
        CHECK_EQ(d->error[i], WH_OK);
        CHECK_EQ(d->status[i], 200);
    }
    CHECK_EQ(th_recv_count(r), 13);
    CHECK_EQ(atomic_load(&s->a_queries), 1);
    th_recv_req rq;
    CHECK_EQ(th_recv_get(r, 0, &rq), 0);
    char host[96], want[96];
    CHECK_EQ(th_recv_header(&rq, "Host", host, sizeof host), 1);
    snprintf(want, sizeof want, "hooks.test:%d", th_recv_port(r));
    CHECK_STR(host, want);
    t->destroy(t->user);
    th_recv_stop(r);
    dns_stop(s);
    free(d);
}

/* An unknown name: WH_E_CONNECT naming the host.  A known one resolves
 * (then the connection is refused: nobody listens).  Not a thread is
 * started for any of it (the DNS server's was started before). */
static void t_unknown_name(void)
{
    dns_srv *s = dns_start(0);
    need_cares(s);
    int created = atomic_load(&threads_created);
    wh_transport *t = lean(s->servers);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    submit(t, "http://nowhere.example:8080/hook", 5000);
    drive(t, d, 1);
    CHECK_EQ(d->error[0], WH_E_CONNECT);
    CHECK_EQ(d->status[0], 0);
    CHECK(strstr(d->msg[0], "cannot resolve host") != NULL);
    CHECK(strstr(d->msg[0], "nowhere.example") != NULL);
    submit(t, "http://closed.test:1/hook", 5000);
    drive(t, d, 2);
    CHECK_EQ(d->error[1], WH_E_CONNECT);
    CHECK(strstr(d->msg[1], "connect to closed.test:1") != NULL);
    t->destroy(t->user);
    CHECK_EQ(atomic_load(&threads_created), created);
    dns_stop(s);
    free(d);
}

/* A resolver that never answers: the attempt's timeout ends it; and a
 * request cancelled while resolving is never reported. */
static void t_silent_resolver(void)
{
    dns_srv *s = dns_start(1);
    need_cares(s);
    wh_transport *t = lean(s->servers);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    int64_t t0 = th_now_ms();
    submit(t, "http://slow.test:8080/hook", 400);
    drive(t, d, 1);
    int64_t took = th_now_ms() - t0;
    CHECK_EQ(d->error[0], WH_E_TIMEOUT);
    CHECK(strstr(d->msg[0], "resolving") != NULL);
    CHECK(took >= 350);
    CHECK(atomic_load(&s->queries) >= 1);
    wh_request q;
    memset(&q, 0, sizeof q);
    q.url = "http://slow2.test:8080/hook";
    q.timeout_ms = 300;
    q.token = (void *)0x7;
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    t->cancel(t->user, (void *)0x7);
    int64_t end = th_now_ms() + 600;
    while (th_now_ms() < end) CHECK(t->perform(t->user, 20, on_done, d) >= 0);
    CHECK_EQ(d->n, 1);
    t->destroy(t->user); /* with a query still out: LeakSanitizer checks */
    dns_stop(s);
    free(d);
}

TH_MAIN(TH_CASE(t_name_resolves_once), TH_CASE(t_unknown_name), TH_CASE(t_silent_resolver))
