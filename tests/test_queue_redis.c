/* The Redis Streams queue against a real redis-server that each case starts
 * on 127.0.0.1 (free port, temporary directory, appendonly persistence) and
 * stops: delivery and retries through the streams, jobs kept for endpoints
 * that are not configured, the local buffer while Redis is away, a worker
 * process killed with SIGKILL while another finishes its claims, and
 * Redis itself stopped and restarted mid-run while wh_poll stays prompt. */
#include "harness.h"
#include "http_receiver.h"
#include "proc.h"
#include <webhook/webhook.h>
#include <webhook/redis.h>

#include <hiredis/hiredis.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- redis-server ---------------------------------------------------------------- */
typedef struct rsrv {
    pid_t pid;
    int port;
} rsrv;

static long long redis_int(int port, const char *cmd, const char *arg);

/* Start redis-server on `port` (0: a free one) with its data in the test's scratch directory;
 * returns when it answers PING. */
static void redis_start(rsrv *r, int port)
{
    const char *exe = getenv("REDIS_SERVER");
    if (!exe) exe = "/usr/bin/redis-server";
    if (access(exe, X_OK) != 0)
        th_fail(__FILE__, __LINE__, "%s not found (apt-get install redis-server)", exe);
    r->port = port ? port : th_free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", r->port);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1",
                    "--dir", th_tmp_path("."), "--appendonly", "yes", "--appendfsync", "always",
                    "--save", "", "--daemonize", "no", "--protected-mode", "no",
                    "--logfile", "redis.log", NULL};
    r->pid = th_spawn(exe, argv, NULL, NULL, NULL);
    int64_t t0 = th_now_ms();
    for (;;) {
        if (th_port_open(r->port) && redis_int(r->port, "PING", NULL) == 1) return;
        if (th_now_ms() - t0 > 10000) {
            th_kill9(r->pid);
            th_fail(__FILE__, __LINE__, "redis-server did not start on port %d", r->port);
        }
        th_sleep_ms(10);
    }
}

static void redis_stop(rsrv *r, int sig)
{
    if (r->pid <= 0) return;
    kill(r->pid, sig);
    int st;
    waitpid(r->pid, &st, 0);
    r->pid = 0;
}

/* An integer answer (PING: 1 for PONG, -1 on any failure). */
static long long redis_int(int port, const char *cmd, const char *arg)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return -1;
    }
    redisReply *r = arg ? redisCommand(c, "%s %s", cmd, arg) : redisCommand(c, "%s", cmd);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
    if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) v = 1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return v;
}

/* ---- helpers ---------------------------------------------------------------------- */
typedef struct logbuf {
    char text[8192];
    size_t len;
} logbuf;

static void on_log(void *user, wh_log_level level, const char *msg)
{
    logbuf *b = user;
    int n = snprintf(b->text + b->len, sizeof b->text - b->len, "%d %s\n", (int)level, msg);
    if (n > 0 && b->len + (size_t)n < sizeof b->text) b->len += (size_t)n;
}

static wh_queue *redis_queue(int port, logbuf *lb, uint32_t lease_ms)
{
    wh_redis_options o;
    wh_redis_options_init(&o);
    o.port = port;
    o.on_log = on_log;
    o.log_user = lb;
    if (lease_ms) o.lease_ms = lease_ms;
    wh_queue *q = NULL;
    CHECK_EQ(wh_queue_redis_new(&o, &q), WH_OK);
    CHECK(q);
    return q;
}

static wh_engine *engine_on(wh_queue *q, logbuf *lb)
{
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.queue = q;
    o.queue_owned = 1;
    o.on_log = on_log;
    o.log_user = lb;
    o.log_level = WH_LOG_WARN;
    int err = 0;
    wh_engine *e = wh_engine_new(&o, &err);
    CHECK_EQ(err, WH_OK);
    return e;
}

static void add_ep(wh_engine *e, const char *id, const char *url, uint32_t retry_ms)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = id;
    ep.url = url;
    if (retry_ms) ep.retry_initial_ms = retry_ms;
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
}

static void emit_i(wh_engine *e, int i)
{
    char data[96];
    snprintf(data, sizeof data, "{\"i\":%d,\"pad\":\"%032d\"}", i, i);
    int rc = wh_emit(e, "order.paid", NULL, data, strlen(data), NULL);
    if (rc < 1) th_fail(__FILE__, __LINE__, "wh_emit %d: %s", i, wh_last_error(e));
}

typedef struct tally {
    int n;
    int *copies;
    char (*id)[160];
    int mismatched_ids, bad_bodies;
    long total;
    int missing, dups;
} tally;

static tally tally_requests(th_recv *r, int n, const char *path)
{
    tally t;
    memset(&t, 0, sizeof t);
    t.n = n;
    t.copies = calloc((size_t)n, sizeof *t.copies);
    t.id = calloc((size_t)n, sizeof *t.id);
    CHECK(t.copies && t.id);
    size_t count = th_recv_count(r);
    for (size_t k = 0; k < count; k++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, k, &q), 0);
        if (path && strcmp(q.path, path) != 0) continue;
        t.total++;
        const char *p = strstr(q.body, "\"i\":");
        int i = p ? atoi(p + 4) : -1;
        if (i < 0 || i >= n) {
            t.bad_bodies++;
            continue;
        }
        if (t.copies[i]++ == 0) snprintf(t.id[i], sizeof t.id[0], "%s", q.webhook_id);
        else if (strcmp(t.id[i], q.webhook_id) != 0) t.mismatched_ids++;
    }
    for (int i = 0; i < n; i++) {
        if (!t.copies[i]) t.missing++;
        if (t.copies[i] > 1) t.dups += t.copies[i] - 1;
    }
    return t;
}

static void tally_free(tally *t)
{
    free(t->copies);
    free(t->id);
}

/* Poll until the receiver saw `want` distinct events (or timeout). */
static void poll_until(wh_engine *e, th_recv *r, int want, int timeout_ms)
{
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < timeout_ms) {
        wh_poll(e, 10);
        tally t = tally_requests(r, want, NULL);
        int missing = t.missing;
        tally_free(&t);
        if (!missing) return;
    }
}

/* ---- cases -------------------------------------------------------------------------- */

/* Events to two endpoints go through the streams and arrive once each;
 * the streams are empty afterwards. */
/* A plain wh_poll(e, N) (no loop attached) waits on Redis's socket too:
 * the engine drives the queue's async connection on its own epoll set, so
 * each step of a lone event's way (XADD reply, XREADGROUP reply, HTTP
 * answer, XACK) ends the wait at once.  Were the socket not in the wait,
 * every step would cost a whole wh_poll(e, 2000) (2 s): the bound of 1.5 s
 * for all of them has that margin. */
static void test_redis_plain_poll_waits_on_redis(void)
{
    th_tmp_init("whrd");
    rsrv srv;
    redis_start(&srv, 0);
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    logbuf lb = {{0}, 0};
    wh_queue *q = redis_queue(srv.port, &lb, 0);
    wh_engine *e = engine_on(q, &lb);
    add_ep(e, "a", th_recv_url(r), 0);
    for (int k = 0; k < 3; k++) wh_poll(e, 0); /* the group is set up */
    int64_t t0 = th_now_ms();
    emit_i(e, 0);
    int calls = 0;
    while (th_recv_count(r) < 1 && th_now_ms() - t0 < 10000) {
        wh_poll(e, 2000);
        calls++;
    }
    int64_t took = th_now_ms() - t0;
    printf("    a lone event through Redis with wh_poll(e, 2000): %d calls, %lld ms\n", calls,
           (long long)took);
    CHECK_EQ(th_recv_count(r), (size_t)1);
    CHECK_INT(took, <, 1500);
    wh_engine_free(e);
    th_recv_stop(r);
    redis_stop(&srv, SIGTERM);
    th_tmp_cleanup();
}

static void test_redis_delivers_through_streams(void)
{
    enum { N = 300 };
    th_tmp_init("whrd");
    rsrv srv;
    redis_start(&srv, 0);
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    logbuf lb = {{0}, 0};
    wh_queue *q = redis_queue(srv.port, &lb, 0);
    wh_engine *e = engine_on(q, &lb);
    char url_a[256], url_b[256];
    snprintf(url_a, sizeof url_a, "%s/a", th_recv_url(r));
    snprintf(url_b, sizeof url_b, "%s/b", th_recv_url(r));
    add_ep(e, "a", url_a, 0);
    add_ep(e, "b", url_b, 0);
    for (int i = 0; i < N; i++) emit_i(e, i);
    int64_t t0 = th_now_ms();
    while (th_recv_count(r) < 2 * N && th_now_ms() - t0 < 20000) wh_poll(e, 10);
    CHECK_EQ(wh_flush(e, 5000), WH_OK);
    tally ta = tally_requests(r, N, "/hook/a"), tb = tally_requests(r, N, "/hook/b");
    CHECK_EQ(ta.missing, 0);
    CHECK_EQ(tb.missing, 0);
    CHECK_EQ(ta.dups, 0);
    CHECK_EQ(tb.dups, 0);
    CHECK_EQ(ta.mismatched_ids, 0);
    for (int i = 0; i < N; i++) CHECK_STR(ta.id[i], tb.id[i]); /* one id per event */
    tally_free(&ta);
    tally_free(&tb);
    wh_queue_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_EQ(wh_queue_info_get(q, &info), WH_OK);
    CHECK_EQ(info.connected, 1);
    CHECK_EQ(info.pending, 0);
    CHECK_EQ(info.claimed, 0);
    wh_engine_free(e);
    CHECK_EQ(redis_int(srv.port, "XLEN", "wh:s:a"), 0);
    CHECK_EQ(redis_int(srv.port, "XLEN", "wh:s:b"), 0);
    CHECK_EQ(redis_int(srv.port, "SCARD", "wh:endpoints"), 2);
    th_recv_stop(r);
    redis_stop(&srv, SIGTERM);
    th_tmp_cleanup();
}

/* A failed attempt waits in the retry set (in Redis, not in the process)
 * and comes back as attempt 2 with the same id. */
static void test_redis_retry_waits_in_redis(void)
{
    enum { N = 50 };
    th_tmp_init("whrd");
    rsrv srv;
    redis_start(&srv, 0);
    th_recv_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.fail_first = 1;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    logbuf lb = {{0}, 0};
    wh_queue *q = redis_queue(srv.port, &lb, 0);
    wh_engine *e = engine_on(q, &lb);
    add_ep(e, "a", th_recv_url(r), 1500);
    for (int i = 0; i < N; i++) emit_i(e, i);
    int64_t t0 = th_now_ms();
    while (th_recv_count(r) < N && th_now_ms() - t0 < 10000) wh_poll(e, 10);
    for (int k = 0; k < 20; k++) wh_poll(e, 10);
    /* all failed once and wait in the sorted set */
    CHECK_EQ(redis_int(srv.port, "ZCARD", "wh:r:a"), N);
    CHECK_EQ(redis_int(srv.port, "XLEN", "wh:s:a"), 0);
    while (th_recv_count(r) < 2 * N && th_now_ms() - t0 < 20000) wh_poll(e, 10);
    CHECK_EQ(wh_flush(e, 5000), WH_OK);
    tally t = tally_requests(r, N, NULL);
    CHECK_EQ(t.missing, 0);
    CHECK_EQ(t.total, 2 * N);
    CHECK_EQ(t.mismatched_ids, 0);
    size_t n = th_recv_count(r);
    for (size_t k = 0; k < n; k++) {
        th_recv_req rq;
        CHECK_EQ(th_recv_get(r, k, &rq), 0);
        CHECK(strcmp(rq.attempt, rq.answered == 200 ? "2" : "1") == 0);
    }
    tally_free(&t);
    CHECK_EQ(redis_int(srv.port, "ZCARD", "wh:r:a"), 0);
    wh_engine_free(e);
    th_recv_stop(r);
    redis_stop(&srv, SIGTERM);
    th_tmp_cleanup();
}

/* Redis away: wh_emit keeps accepting into the bounded buffer
 * (WH_E_UNAVAILABLE beyond it), the error is logged, and everything is written and delivered
 * once Redis is reachable. */
static void test_redis_away_at_start(void)
{
    enum { N = 20 };
    th_tmp_init("whrd");
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    int port = th_free_port();
    logbuf lb = {{0}, 0};
    wh_redis_options o;
    wh_redis_options_init(&o);
    o.port = port;
    o.on_log = on_log;
    o.log_user = &lb;
    o.max_buffered = N;
    o.reconnect_ms = 100;
    wh_queue *q = NULL;
    CHECK_EQ(wh_queue_redis_new(&o, &q), WH_OK); /* not an error */
    wh_engine *e = engine_on(q, &lb);
    add_ep(e, "a", th_recv_url(r), 0);
    for (int i = 0; i < N; i++) emit_i(e, i);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), WH_E_UNAVAILABLE);
    CHECK(strstr(wh_last_error(e), "not stored") != NULL);
    for (int k = 0; k < 10; k++) wh_poll(e, 10);
    CHECK(strstr(lb.text, "cannot connect to 127.0.0.1:") != NULL);
    wh_queue_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_EQ(wh_queue_info_get(q, &info), WH_OK);
    CHECK_EQ(info.connected, 0);
    CHECK_EQ(info.pending, N);
    rsrv srv;
    redis_start(&srv, port);
    poll_until(e, r, N, 10000);
    tally t = tally_requests(r, N, NULL);
    CHECK_EQ(t.missing, 0);
    CHECK_EQ(t.dups, 0);
    tally_free(&t);
    CHECK(strstr(lb.text, "connected to 127.0.0.1:") != NULL);
    wh_engine_free(e);
    th_recv_stop(r);
    redis_stop(&srv, SIGTERM);
    th_tmp_cleanup();
}

/* Jobs of an endpoint this process does not configure stay in Redis and
 * are reported; a process that configures it delivers them. */
static void test_redis_unbound_jobs_kept(void)
{
    th_tmp_init("whrd");
    rsrv srv;
    redis_start(&srv, 0);
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    logbuf lb = {{0}, 0};
    wh_redis_options o;
    wh_redis_options_init(&o);
    o.port = srv.port;
    o.producer_only = 1;
    wh_queue *q = NULL;
    CHECK_EQ(wh_queue_redis_new(&o, &q), WH_OK);
    wh_engine *e = engine_on(q, &lb);
    add_ep(e, "keep", th_recv_url(r), 0);
    add_ep(e, "other", th_recv_url(r), 0);
    for (int i = 0; i < 5; i++) emit_i(e, i);
    wh_poll(e, 0);
    CHECK_EQ(th_recv_count(r), 0); /* producer only */
    wh_engine_free(e);
    CHECK_EQ(redis_int(srv.port, "XLEN", "wh:s:other"), 5);

    q = redis_queue(srv.port, &lb, 0);
    e = engine_on(q, &lb);
    add_ep(e, "keep", th_recv_url(r), 0);
    poll_until(e, r, 5, 10000);
    for (int k = 0; k < 10; k++) wh_poll(e, 10);
    CHECK_EQ(th_recv_count(r), 5);
    CHECK(strstr(lb.text, "5 stored job(s) for endpoint \"other\"") != NULL);
    wh_queue_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_EQ(wh_queue_info_get(q, &info), WH_OK);
    CHECK_EQ(info.unbound_jobs, 5);
    wh_engine_free(e);
    CHECK_EQ(redis_int(srv.port, "XLEN", "wh:s:other"), 5);
    th_recv_stop(r);
    redis_stop(&srv, SIGTERM);
    th_tmp_cleanup();
}

/* How many times redis-server ran `cmd` (lower case), from INFO
 * commandstats ("cmdstat_xadd:calls=N,..."); -1 on failure. */
static long long redis_calls(int port, const char *cmd)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return -1;
    }
    redisReply *r = redisCommand(c, "INFO commandstats");
    long long v = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        char key[64];
        snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
        const char *p = strstr(r->str, key);
        v = p ? atoll(p + strlen(key)) : 0;
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return v;
}

/* Done-when 2: a producer process feeds two worker processes through one
 * Redis; one worker is killed with SIGKILL mid-run; the other takes over
 * its claims after the lease: every event arrives, duplicates carry the id
 * of their first copy and are no more than the killed worker can hold
 * delivered but unacknowledged.
 *
 * The bound, from lib/queue_redis.c: a duplicate is a job the killed worker
 * sent whose entry was still pending in Redis when it died, so that the
 * other worker took it over.  A worker's pending-and-sent entries are its
 * requests in flight (at most max_in_flight) plus the jobs that finished
 * but whose XACK Redis has not confirmed (buffered in q->ops until the
 * round's commit, or being written).  Every XREADGROUP claim is preceded
 * by a flush() that waits for the replies of all buffered XACKs, and the
 * engine claims only as many jobs as it has in-flight room; so in-flight +
 * unconfirmed acks never exceed max_in_flight: dups <= IN_FLIGHT.
 * Two things would break that, and the test rules both out instead of
 * widening the bound: (1) a lost reply (the queue's timeout_ms, 50 ms by
 * default, is too short for a loaded 2-core machine with appendfsync
 * always): the connection drops, a producer re-writes its XADDs (two
 * entries for one event) and a worker's lost claims come back to it
 * through XAUTOCLAIM into its ready list, from which it claims without a
 * flush, so unconfirmed acks can then exceed max_in_flight; (2) a live
 * worker that does not renew its claims for a whole lease (the other one
 * takes them over).  Here Redis gets timeout_ms 2000 to answer (no process
 * may log a reconnection), the lease (3000 ms) outlasts a round bounded by
 * that timeout, and every extra stream entry is counted: XADD calls must
 * equal N. */
static void test_redis_two_workers_one_killed(void)
{
    enum { N = 6000, IN_FLIGHT = 8 };
    th_tmp_init("whrd");
    rsrv srv;
    redis_start(&srv, 0);
    th_recv_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.delay_ms = 5;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *config = th_tmp_path("config.json"), *events = th_tmp_path("events.ndjson");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"endpoints\":[{\"id\":\"ep\",\"url\":\"%s\",\"max_in_flight\":%d}],"
             "\"queue\":{\"type\":\"redis\",\"url\":\"redis://127.0.0.1:%d\","
             "\"lease_ms\":3000,\"timeout_ms\":2000}}", th_recv_url(r), IN_FLIGHT, srv.port);
    th_write_file(config, cfg);
    FILE *f = fopen(events, "wb");
    CHECK(f);
    for (int i = 0; i < N; i++)
        fprintf(f, "{\"event\":\"order.paid\",\"data\":{\"i\":%d}}\n", i);
    CHECK_EQ(fclose(f), 0);
    const char *exe = th_example("whsend");
    const char *errw[2] = {th_tmp_path("errw1"), th_tmp_path("errw2")};
    const char *outw[2] = {th_tmp_path("outw1"), th_tmp_path("outw2")};
    pid_t w[2];
    for (int k = 0; k < 2; k++) {
        char *argv[] = {"whsend", "-q", "-c", (char *)config, "--worker", "--idle-exit",
                        "2500", NULL};
        w[k] = th_spawn(exe, argv, NULL, outw[k], errw[k]);
    }
    const char *errp = th_tmp_path("errp");
    char *argvp[] = {"whsend", "-q", "-c", (char *)config, "--producer", (char *)events, NULL};
    pid_t p = th_spawn(exe, argvp, NULL, NULL, errp);
    int64_t t0 = th_now_ms();
    while (th_recv_count(r) < N / 4) {
        if (th_now_ms() - t0 > 60000) th_fail(__FILE__, __LINE__, "no progress");
        th_sleep_ms(2);
    }
    th_kill9(w[0]);
    size_t at_kill = th_recv_count(r);
    int ps = th_wait_exit(p, 60000);
    char *pe = th_read_file(errp);
    if (ps != 0) th_fail(__FILE__, __LINE__, "producer exited %d: %s", ps, pe);
    free(pe);
    int ws = th_wait_exit(w[1], 90000);
    char *we = th_read_file(errw[1]);
    if (ws != 0) th_fail(__FILE__, __LINE__, "worker exited %d: %s", ws, we);
    free(we);
    tally t = tally_requests(r, N, NULL);
    long long xadds = redis_calls(srv.port, "xadd");
    printf("    redis: worker killed after %zu requests; %ld requests in all, %d duplicates "
           "(max_in_flight %d), %lld XADDs for %d events\n", at_kill, t.total, t.dups,
           IN_FLIGHT, xadds, N);
    const char *logs[3] = {errp, errw[0], errw[1]};
    for (int k = 0; k < 3; k++) {
        char *text = th_read_file(logs[k]);
        if (strstr(text, "reconnecting"))
            th_fail(__FILE__, __LINE__, "a Redis reply took over 2 s (the bound assumes "
                    "none is lost): %s", text);
        free(text);
    }
    CHECK_EQ(t.bad_bodies, 0);
    CHECK_EQ(t.missing, 0);
    CHECK_EQ(t.mismatched_ids, 0);
    CHECK_EQ(xadds, N);
    CHECK_INT(t.dups, <=, IN_FLIGHT);
    CHECK_EQ(redis_int(srv.port, "XLEN", "wh:s:ep"), 0);
    tally_free(&t);
    th_recv_stop(r);
    redis_stop(&srv, SIGTERM);
    th_tmp_cleanup();
}

/* Done-when 3: redis-server is killed mid-run and started again a few
 * seconds later on the same data (appendonly, fsync always).  Nothing
 * accepted is lost, duplicates keep their id, wh_emit never fails, and no
 * wh_poll call takes long. */
static void test_redis_restart_loses_nothing_poll_stays_prompt(void)
{
    enum { N = 3000 };
    th_tmp_init("whrd");
    rsrv srv;
    redis_start(&srv, 0);
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    logbuf lb = {{0}, 0};
    wh_redis_options o;
    wh_redis_options_init(&o);
    o.port = srv.port;
    o.on_log = on_log;
    o.log_user = &lb;
    o.lease_ms = 3000;
    wh_queue *q = NULL;
    CHECK_EQ(wh_queue_redis_new(&o, &q), WH_OK);
    wh_engine *e = engine_on(q, &lb);
    add_ep(e, "a", th_recv_url(r), 200);
    int64_t max_poll = 0, down_at = 0, up_at = 0;
    int emitted = 0, stopped = 0, restarted = 0;
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 60000) {
        for (int k = 0; k < 10 && emitted < N; k++) emit_i(e, emitted++);
        int64_t a = th_now_ms();
        wh_poll(e, 5);
        int64_t d = th_now_ms() - a;
        if (d > max_poll) max_poll = d;
        if (!stopped && emitted >= N / 3) {
            redis_stop(&srv, SIGKILL);
            stopped = 1;
            down_at = th_now_ms();
        }
        if (stopped && !restarted && th_now_ms() - down_at >= 3000) {
            redis_start(&srv, srv.port);
            restarted = 1;
            up_at = th_now_ms();
        }
        if (restarted && emitted == N) {
            tally t = tally_requests(r, N, NULL);
            int missing = t.missing;
            tally_free(&t);
            if (!missing) break;
        }
    }
    CHECK(restarted);
    tally t = tally_requests(r, N, NULL);
    printf("    redis down %" PRId64 " ms: %ld requests for %d events, %d duplicates, "
           "longest wh_poll %" PRId64 " ms\n", up_at - down_at, t.total, N, t.dups, max_poll);
    CHECK_EQ(t.missing, 0);
    CHECK_EQ(t.mismatched_ids, 0);
    CHECK_INT(max_poll, <, 200);
    CHECK(strstr(lb.text, "reconnecting") != NULL || strstr(lb.text, "cannot connect") != NULL);
    tally_free(&t);
    wh_engine_free(e);
    th_recv_stop(r);
    redis_stop(&srv, SIGTERM);
    th_tmp_cleanup();
}

static void test_redis_bad_arguments(void)
{
    wh_queue *q = (wh_queue *)1;
    CHECK_EQ(wh_queue_redis_new(NULL, NULL), WH_E_INVAL);
    wh_redis_options o;
    wh_redis_options_init(&o);
    o.port = 0;
    CHECK_EQ(wh_queue_redis_new(&o, &q), WH_E_INVAL);
    CHECK(q == NULL);
    wh_redis_options_init(&o);
    o.prefix = "";
    CHECK_EQ(wh_queue_redis_new(&o, &q), WH_E_INVAL);
    o.struct_size = 1;
    CHECK_EQ(wh_queue_redis_new(&o, &q), WH_E_VERSION);
    char err[256];
    const char *bad = "{\"queue\":{\"type\":\"redis\",\"url\":\"redis://h:99999\"}}";
    CHECK_EQ(wh_config_queue_new(bad, strlen(bad), NULL, NULL, &q, err, sizeof err), WH_E_CONFIG);
    CHECK(strstr(err, "queue.url: bad port") != NULL);
    bad = "{\"queue\":{\"type\":\"redis\",\"timeout_ms\":-1}}";
    CHECK_EQ(wh_config_queue_new(bad, strlen(bad), NULL, NULL, &q, err, sizeof err), WH_E_CONFIG);
    CHECK(strstr(err, "queue.timeout_ms: expected a positive integer") != NULL);
}

TH_MAIN(TH_CASE(test_redis_delivers_through_streams), TH_CASE(test_redis_plain_poll_waits_on_redis),
        TH_CASE(test_redis_retry_waits_in_redis),
        TH_CASE(test_redis_away_at_start), TH_CASE(test_redis_unbound_jobs_kept),
        TH_CASE(test_redis_two_workers_one_killed),
        TH_CASE(test_redis_restart_loses_nothing_poll_stays_prompt),
        TH_CASE(test_redis_bad_arguments))
