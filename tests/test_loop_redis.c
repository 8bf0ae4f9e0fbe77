/* The Redis queue on a libuv loop while Redis is stopped (SIGSTOP) for 3 s
 * (issue 11, Done-when 3).  A thin wh_loop on libuv times every call into
 * the library (wh_socket_action from the watchers and the timer, wh_emit
 * from the host's 10 ms timer).  Asserted:
 *  - the host's 10 ms repeating timer never fires more than 5 ms late;
 *  - no single call into the library takes over 1 ms;
 *  - every event emitted (before, during and after the stop) reaches the
 *    real HTTP receiver once Redis is back (at least once: a write whose
 *    reply was cut off is written again), none dead.
 * The machine has 2 cores shared with other work (and is a VM), so the
 * scheduler alone can stretch a call or a timer interval while the thread
 * is not running: measured here, a control timer in a child process that
 * never calls the library, run at the same time, is late by up to several
 * ms, and calls of 16 us of CPU took 1.6 ms of wall time without a single
 * context switch (the VM's steal time).  To tell that apart from the
 * library, each call also records the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) and voluntary context switches (getrusage
 * RUSAGE_THREAD): the library can only make the loop wait by blocking in a
 * system call (a voluntary switch: poll, ppoll, a blocking connect or
 * read) or by working (CPU time).  A library that waits on the stopped
 * Redis does so in call after call (the old one: one ppoll per exchange).
 * Seen here: no call makes a voluntary switch, but for a rare one (about
 * one run in ten) where the kernel put the thread to sleep once (a page
 * fault waiting for the mm lock held by the receiver's threads).  So: at
 * most 2 calls of the run may make a voluntary switch; a call over 1 ms of
 * wall time is accepted only when it made at most one and used at most
 * 1 ms of CPU; and a beat more than 5 ms late only when the library's
 * calls since the previous beat made at most one voluntary switch and used
 * at most 5 ms of CPU in all.  The excused ones are counted and printed,
 * with the largest figures of calls and beats that stayed on the CPU
 * (asserted against the same 1 ms and 5 ms) and the control timer's
 * lateness.  Ten runs in a row: no beat needed an excuse (at most 3.6 ms
 * late), calls on the CPU up to 0.63 ms, none made a voluntary switch; the
 * control timer was up to 4.4 ms late (21 ms in other runs). */
#include "harness.h"
#include "http_receiver.h"
#include "proc.h"
#include <webhook/webhook.h>
#include <webhook/redis.h>

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

static int ping(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
}

/* ---- timing every call into the library -------------------------------------- */
typedef struct tl {
    uv_loop_t *loop;
    wh_engine *e;
    uv_timer_t timer;
    int64_t max_call_us, calls, sum_us, sum_cpu_us;
    long sum_vcsw;            /* voluntary switches inside calls since the last beat */
    int64_t max_clean_us;     /* longest call that stayed on the CPU */
    int64_t max_stopped_us;   /* longest call while Redis was stopped */
    long excused;             /* calls over 1 ms only off the CPU */
    long bad;                 /* calls over 1 ms that were not */
    int64_t max_bad_cpu_us;
    const int *stopped;       /* 1 while Redis is stopped */
    int fd;                   /* of the call being timed (-100: wh_emit) */
    long vcalls;              /* calls that made a voluntary context switch */
    int64_t t0;               /* start (us) */
} tl;

typedef struct tsock {
    uv_poll_t poll;
    tl *t;
    int fd;
} tsock;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct mark {
    int64_t wall, cpu;
    long vcsw, ivcsw;
} mark;

static mark mark_now(void)
{
    mark m;
    struct rusage ru;
    struct timespec ts;
    getrusage(RUSAGE_THREAD, &ru);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    m.cpu = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    m.vcsw = ru.ru_nvcsw;
    m.ivcsw = ru.ru_nivcsw;
    m.wall = now_us();
    return m;
}

/* A sanitizer build (make SAN=-fsanitize=address,...) runs the library's
 * code 2-3 times slower: there the time bounds are 3 times larger (said in
 * the output); every other assertion is the same. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define SLOWER 3
#else
#  define SLOWER 1
#endif
#define CALL_MAX_US (1000 * SLOWER)

static void call_done(tl *t, const mark *a)
{
    mark b = mark_now();
    int64_t us = b.wall - a->wall, cpu = b.cpu - a->cpu;
    int off_cpu = b.ivcsw > a->ivcsw || us - cpu > 200; /* preempted, or steal time */
    if (us > t->max_call_us) t->max_call_us = us;
    if (!off_cpu && us > t->max_clean_us) t->max_clean_us = us;
    if (*t->stopped && us > t->max_stopped_us) t->max_stopped_us = us;
    t->sum_cpu_us += cpu;
    t->sum_vcsw += b.vcsw - a->vcsw;
    if (b.vcsw > a->vcsw) {
        t->vcalls++;
        if (getenv("WH_DEBUG_SLOW"))
            printf("# voluntary switch: fd %d, %lld us (cpu %lld us)%s\n", t->fd, (long long)us,
                   (long long)cpu, *t->stopped ? ", Redis stopped" : "");
    }
    if (cpu > 400 && getenv("WH_DEBUG_SLOW"))
        printf("# cpu %lld us wall %lld us fd %d at %lld ms%s\n", (long long)cpu, (long long)us,
               t->fd, (long long)((a->wall - t->t0) / 1000), *t->stopped ? " (stopped)" : "");
    if (us > CALL_MAX_US) {
        if (b.vcsw - a->vcsw <= 1 && cpu <= CALL_MAX_US) {
            t->excused++;
        } else {
            t->bad++;
            if (cpu > t->max_bad_cpu_us) t->max_bad_cpu_us = cpu;
            printf("#   call of %lld us (cpu %lld us, %ld voluntary / %ld involuntary "
                   "switches)\n", (long long)us, (long long)cpu, b.vcsw - a->vcsw,
                   b.ivcsw - a->ivcsw);
        }
    }
    t->sum_us += us;
    t->calls++;
}

static void act(tl *t, int fd, int ev)
{
    mark a = mark_now();
    t->fd = fd;
    wh_socket_action(t->e, fd, ev);
    call_done(t, &a);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    tsock *k = p->data;
    int ev = (events & UV_READABLE ? WH_POLL_IN : 0) | (events & UV_WRITABLE ? WH_POLL_OUT : 0);
    if (status < 0) ev = WH_POLL_IN | WH_POLL_OUT;
    act(k->t, k->fd, ev);
}

static void closed(uv_handle_t *h) { free(h->data); }

static int tl_watch(void *user, int fd, int events, void **sock)
{
    tl *t = user;
    tsock *k = *sock;
    if (!events) {
        if (k) {
            uv_poll_stop(&k->poll);
            uv_close((uv_handle_t *)&k->poll, closed);
        }
        *sock = NULL;
        return 0;
    }
    if (!k) {
        k = calloc(1, sizeof *k);
        k->t = t;
        k->fd = fd;
        uv_poll_init(t->loop, &k->poll, fd);
        k->poll.data = k;
        *sock = k;
    }
    return uv_poll_start(&k->poll, (events & WH_POLL_IN ? UV_READABLE : 0) |
                                       (events & WH_POLL_OUT ? UV_WRITABLE : 0), poll_cb);
}

static void timer_cb(uv_timer_t *h) { act(h->data, WH_SOCKET_TIMEOUT, 0); }

static int tl_timer(void *user, int64_t ms)
{
    tl *t = user;
    if (ms < 0) uv_timer_stop(&t->timer);
    else {
        uv_update_time(t->loop);
        uv_timer_start(&t->timer, timer_cb, (uint64_t)ms, 0);
    }
    return 0;
}

/* ---- the host's 10 ms timer ------------------------------------------------------ */
#define LATE_MAX_US (5000 * SLOWER)

typedef struct host {
    tl *t;
    wh_engine *e;
    pid_t redis;
    int64_t start, last, max_late_us, max_clean_late_us;
    mark last_mark;
    long emitted, ticks, late_excused, late_bad;
    int stopped, resumed, done, redis_stopped;
    long delivered, dead, distinct;
    unsigned char seen[4096];
} host;

static void on_outcome(void *user, const wh_outcome *o)
{
    host *h = user;
    if (o->kind == WH_DELIVERED) {
        h->delivered++;
        int n = -1;
        if (sscanf(o->ev.data, "{\"n\":%d", &n) == 1 && n >= 0 && n < 4096 && !h->seen[n]++)
            h->distinct++;
    }
    if (o->kind == WH_DEAD) h->dead++;
}

static void beat(uv_timer_t *t)
{
    host *h = t->data;
    mark m = mark_now();
    int64_t now = m.wall;
    if (h->last) {
        int64_t late = now - h->last - 10000;
        if (late > h->max_late_us) h->max_late_us = late;
        int lib_ok = h->t->sum_vcsw <= 1 && h->t->sum_cpu_us <= LATE_MAX_US;
        int off_cpu = m.ivcsw > h->last_mark.ivcsw || late > h->t->sum_cpu_us + 1000;
        if (!off_cpu && late > h->max_clean_late_us) h->max_clean_late_us = late;
        if (late > LATE_MAX_US) {
            if (lib_ok) {
                h->late_excused++;
            } else {
                h->late_bad++;
                printf("#   beat %lld us late; %lld us (cpu %lld us, %ld voluntary switches) in "
                       "the library since the last one\n", (long long)late,
                       (long long)h->t->sum_us, (long long)h->t->sum_cpu_us, h->t->sum_vcsw);
            }
        }
    }
    h->t->sum_us = h->t->sum_cpu_us = 0;
    h->t->sum_vcsw = 0;
    h->last = now;
    h->ticks++;
    int64_t el = now - h->start;
    if (!h->stopped && el > 1000000) {
        kill(h->redis, SIGSTOP);
        h->stopped = h->redis_stopped = 1;
    }
    if (h->stopped && !h->resumed && el > 4000000) {
        kill(h->redis, SIGCONT);
        h->resumed = 1;
        h->redis_stopped = 0;
    }
    if (el < 6000000) {
        for (int i = 0; i < 2; i++) { /* 200 events/s */
            char b[48];
            int n = snprintf(b, sizeof b, "{\"n\":%ld}", h->emitted);
            mark a = mark_now();
            h->t->fd = -100;
            int rc = h->emitted < 4096 ? wh_emit(h->e, "t", NULL, b, (size_t)n, NULL) : 0;
            call_done(h->t, &a);
            if (rc == 1) h->emitted++;
        }
    } else if (h->distinct + h->dead >= h->emitted || el > 30000000) {
        uv_timer_stop(t);
        h->done = 1;
    }
    h->last_mark = mark_now();
}

/* The control: a child process that never calls the library runs the same
 * 10 ms timer for `ms` and writes its largest lateness (us) to fd. */
static void control_beat(uv_timer_t *t)
{
    int64_t *st = t->data; /* start, last, max */
    int64_t now = now_us();
    if (st[1] && now - st[1] - 10000 > st[2]) st[2] = now - st[1] - 10000;
    st[1] = now;
    if (now - st[0] > st[3] * 1000) uv_timer_stop(t);
}

static pid_t control_start(int64_t ms, int *rfd)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid != 0) {
        close(p[1]);
        *rfd = p[0];
        return pid;
    }
    close(p[0]);
    uv_loop_t l;
    uv_loop_init(&l);
    uv_timer_t t;
    int64_t st[4] = {now_us(), 0, 0, ms};
    uv_timer_init(&l, &t);
    t.data = st;
    uv_timer_start(&t, control_beat, 10, 10);
    uv_run(&l, UV_RUN_DEFAULT);
    ssize_t w = write(p[1], &st[2], sizeof st[2]);
    _exit(w == (ssize_t)sizeof st[2] ? 0 : 1);
}

/* A failed check exits the test process: the Redis it started goes too. */
static pid_t started_redis = -1;

static void kill_started_redis(void)
{
    if (started_redis > 0) {
        kill(started_redis, SIGCONT);
        kill(started_redis, SIGKILL);
        waitpid(started_redis, NULL, 0);
    }
}

static void redis_sigstop_loop_keeps_time(void)
{
    th_tmp_init("whlr");
    int port = th_free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--dir",
                    th_tmp_path("."), "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--protected-mode", "no", "--logfile", "redis.log", NULL};
    const char *exe = getenv("REDIS_SERVER");
    if (!exe) exe = "/usr/bin/redis-server";
    if (access(exe, X_OK) != 0) th_skip("%s not found", exe);
    pid_t rp = th_spawn(exe, argv, NULL, NULL, NULL);
    started_redis = rp;
    atexit(kill_started_redis);
    int64_t t0 = th_now_ms();
    while (!(th_port_open(port) && ping(port))) {
        if (th_now_ms() - t0 > 10000) {
            th_kill9(rp);
            th_fail(__FILE__, __LINE__, "redis-server did not start");
        }
        th_sleep_ms(10);
    }
    th_recv *rv = th_recv_start(NULL);
    CHECK(rv);
    wh_redis_options ro;
    wh_redis_options_init(&ro);
    ro.port = port;
    /* no call waits on Redis whatever timeout_ms is: here it is how long a
     * command may go unanswered before the connection is dropped and tried
     * again (the stop is found after 100 ms) */
    ro.timeout_ms = 100;
    ro.reconnect_ms = 200;
    /* a claim whose reply was cut off by the stop stays pending on this
     * consumer until its lease ends: keep that short here */
    ro.lease_ms = 2000;
    wh_queue *q;
    CHECK_EQ(wh_queue_redis_new(&ro, &q), WH_OK);
    host h;
    memset(&h, 0, sizeof h);
    h.redis = rp;
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.queue = q;
    o.queue_owned = 1;
    o.on_outcome = on_outcome;
    o.outcome_user = &h;
    int err;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK(e);
    h.e = e;
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = th_recv_url(rv);
    ep.id = "ep";
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    tl t;
    memset(&t, 0, sizeof t);
    t.loop = &loop;
    t.e = e;
    h.t = &t;
    t.stopped = &h.redis_stopped;
    uv_timer_init(&loop, &t.timer);
    t.timer.data = &t;
    wh_loop l = {WH_LOOP_VERSION, &t, tl_watch, tl_timer};
    CHECK_EQ(wh_loop_attach(e, &l), WH_OK);
    uv_timer_t bt;
    uv_timer_init(&loop, &bt);
    bt.data = &h;
    int cfd = -1;
    pid_t ctl = control_start(7000, &cfd);
    CHECK_INT(ctl, >, 0);
    h.start = t.t0 = now_us();
    uv_timer_start(&bt, beat, 10, 10);
    while (!h.done) uv_run(&loop, UV_RUN_ONCE);
    if (!h.resumed) kill(rp, SIGCONT);
    int64_t control_late = -1;
    CHECK_EQ(read(cfd, &control_late, sizeof control_late), (ssize_t)sizeof control_late);
    close(cfd);
    int cst;
    waitpid(ctl, &cst, 0);
    printf("    %ld emitted, %ld delivered (%ld distinct), %ld dead; %ld calls into the "
           "library, longest %lld us (%lld us not preempted, %lld us while Redis was "
           "stopped), %ld over 1 ms only off the CPU; 10 ms timer late by at most %lld us "
           "(%lld us in intervals on the CPU), %ld beats over 5 ms only off the "
           "CPU; %ld calls made a voluntary context switch; control timer (no library) late by at most %lld us\n",
           h.emitted, h.delivered, h.distinct, h.dead, (long)t.calls, (long long)t.max_call_us,
           (long long)t.max_clean_us, (long long)t.max_stopped_us, t.excused,
           (long long)h.max_late_us, (long long)h.max_clean_late_us, h.late_excused,
           t.vcalls, (long long)control_late);
    if (SLOWER > 1)
        printf("    sanitizer build: the bounds are %d us per call, %d us of lateness\n",
               CALL_MAX_US, LATE_MAX_US);
    CHECK_EQ(h.dead, 0);
    CHECK_EQ(h.distinct, h.emitted);        /* nothing lost */
    CHECK_INT(h.emitted, >=, 1000);
    CHECK(h.stopped && h.resumed);
    /* no call into the library over 1 ms (but for the scheduler's) */
    CHECK_EQ(t.bad, 0);
    CHECK_INT(t.vcalls, <=, 2); /* the library never blocks in a system call */
    CHECK_INT(t.max_clean_us, <=, CALL_MAX_US);
    /* the host's timer never more than 5 ms late (but for the scheduler's) */
    CHECK_EQ(h.late_bad, 0);
    CHECK_INT(h.max_clean_late_us, <=, LATE_MAX_US);
    CHECK_EQ(wh_loop_attach(e, NULL), WH_OK);
    uv_close((uv_handle_t *)&t.timer, NULL);
    uv_close((uv_handle_t *)&bt, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    wh_engine_free(e);
    th_recv_stop(rv);
    kill(rp, SIGTERM);
    int st;
    waitpid(rp, &st, 0);
    started_redis = -1;
    th_tmp_cleanup();
}

TH_MAIN(TH_CASE(redis_sigstop_loop_keeps_time))
