/* The Redis Streams queue: jobs shared by every process that delivers.
 *
 * Keys (P = prefix): one stream per endpoint, "P:s:<endpoint id>", read
 * through the consumer group "workers" that every process joins with its
 * own consumer name; one sorted set per endpoint, "P:r:<endpoint id>", of
 * jobs waiting for a retry (score: due wall-clock ms); the set
 * "P:endpoints" of every endpoint id that has jobs.  Each stream entry
 * holds one job in field "j": a short text header (nonce, attempts, first
 * attempt, creation time, lengths) followed by the delivery id, type,
 * channel and payload bytes.
 *
 * A job's life: XADD to its endpoint's stream; XREADGROUP claims it (it
 * enters this consumer's pending list); delivered or dead: XACK + XDEL in
 * one MULTI; failed: ZADD to the retry set + XACK + XDEL in one MULTI; due
 * retries are moved back into the stream by a Lua script (atomic).  A
 * consumer that dies leaves its claims pending; once idle for lease_ms,
 * another consumer takes them with XAUTOCLAIM.  While a request runs, its
 * entry's idle time is reset (XCLAIM JUSTID) every lease_ms / 3.
 *
 * Nothing waits: one hiredis async connection (redisAsyncContext, connect
 * included), driven by the engine's loop (queue vtable version 5: the
 * socket is watched through the hooks the engine gives the queue, the
 * host's loop or the engine's own epoll set behind wh_fd and behind a plain
 * wh_poll), or, with no hooks, by a poll() of timeout 0 in the queue's
 * methods.  Every command is pipelined with a callback; a method never
 * waits for a reply.  Claims are prefetched: claim() hands out the jobs
 * already read and, when it has fewer than asked, sends an XREADGROUP for
 * the rest; its reply puts them in the slot's ready list and tells the
 * engine (socket_action / poll return 1) to claim again.  A command that
 * has no reply within timeout_ms (a stopped or unreachable Redis) drops
 * the connection: the writes whose reply did not come go back, in order, to
 * the front of the list of writes (written again: at-least-once, a
 * duplicate carries the same delivery id) and the queue reconnects
 * reconnect_ms later.  Only wh_queue_redis_new (the first connect) and
 * destroy (the last writes) wait, each at most timeout_ms.
 *
 * Redis away.  New jobs wait in the in-memory list of writes (group
 * commit: written at the end of the round; confirmed one round trip
 * later).  With a spool (a local SQLite file), a round that cannot reach
 * Redis moves its new jobs into the spool, and while the spool holds
 * anything every new job goes there too (so the order is kept); the spool
 * is committed at the end of the round and forwarded, oldest first, once
 * Redis answers again (a row is deleted only after its XADD is confirmed).
 * Without a spool, at most max_buffered new jobs wait in memory while
 * Redis is away (they are lost if the process dies), and wh_emit returns
 * WH_E_UNAVAILABLE beyond that.  Acks and retries of claimed jobs stay in
 * memory: if they are lost the job is only delivered again after its
 * lease.  Each outage is logged once when it starts and once when it
 * ends. */
#include "ds.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
/* The spool needs SQLite: left out of a build with Redis but without SQLite
 * (then spool_path is refused). */
#if !defined(WH_HAVE_REDIS) || defined(WH_HAVE_SQLITE)
#  define RQ_SPOOL 1
#  include <sqlite3.h>
#else
#  define RQ_SPOOL 0
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
#endif

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define RQ_GROUP "workers"
#define RQ_MAX_FLUSH 256        /* writes sent per call (the rest: next call, at once) */
#define RQ_FLUSH_US 100         /* ... and no more than this long spent sending them */
#define RQ_FWD_BATCH 256        /* spooled jobs forwarded per round trip */
#define RQ_AUTOCLAIM_COUNT 64
#define RQ_READ_COUNT 32        /* jobs asked per XREADGROUP at most */
#define RQ_PREFETCH_MAX 4       /* jobs handed out per engine round; the rest
                                   are due at once and go in the next call
                                   (the engine serves an endpoint once per
                                   pass): the deliveries one call of the
                                   host's loop starts stay few */
#define RQ_MOVE_COUNT 256

enum { RO_XADD, RO_ACK, RO_RETRY, RO_READD };
typedef struct rq_op {
    int kind;
    uint32_t slot;
    int64_t due;              /* RO_RETRY: wall ms */
    char entry[48];           /* stream entry id (not RO_XADD) */
    char *blob;               /* RO_XADD, RO_RETRY, RO_READD */
    size_t blob_len;
} rq_op;

/* A job read from a stream: claimed by the engine, or waiting in its slot's
 * ready list (prefetched, reclaimed from a dead consumer, or released). */
typedef struct rq_job {
    wh__link link;            /* in q->held or its slot's ready list */
    uint32_t slot;
    char entry[48];
    uint64_t nonce;
    uint32_t attempts;
    int64_t first, created;   /* wall; first -1 when none */
    const char *id, *type, *channel, *data;
    size_t data_len;
    char buf[];
} rq_job;

typedef struct rq_slot {
    char *name;               /* endpoint id; NULL: not bound */
    char *skey, *rkey;        /* stream and retry-set keys */
    int ready_setup;          /* group created on this connection */
    int setup_sent;           /* XGROUP CREATE sent, reply to come */
    int more;                 /* the stream may hold unclaimed jobs */
    int reading;              /* an XREADGROUP (prefetch) is on its way */
    int recover;              /* read our own pending entries first (after a
                                 reconnect: a claim whose reply was lost) */
    char rcursor[48];         /* where that read is */
    size_t read_count;        /* its COUNT */
    int counting;             /* an XLEN/ZCARD of count_slots is on its way */
    int xl_ok;                /* the last XLEN answered */
    wh__list ready;           /* rq_job.link */
    uint64_t xlen, zcard;     /* as of the last look, plus our changes */
    uint64_t pend;            /* XADDs not confirmed yet (buffered or sent) */
    uint64_t spooled;         /* jobs of this endpoint in the spool */
    int counted;              /* xlen and zcard read from Redis once */
    char cursor[48];          /* XAUTOCLAIM position */
} rq_slot;

struct rq_fwd;

typedef struct rq {
    wh_queue vt;
    redisAsyncContext *ac;    /* NULL: no connection */
    int up;                   /* Redis answered on this connection */
    int fd;                   /* ac's socket, -1 none */
    int mask, watched;        /* what hiredis wants watched / what the hooks watch */
    wh_loop loop;             /* the engine's hooks (set_loop) */
    int has_loop;
    void *sock;               /* the hooks' slot of fd */
    size_t outstanding;       /* commands with a callback whose reply has not come */
    int64_t progress_at;      /* engine time of the last reply (or of the wait's start) */
    int woke;                 /* jobs may have become claimable since the last report */
    size_t handed;            /* jobs handed out in this round (RQ_PREFETCH_MAX) */
    int looking;              /* replies of the last look still to come */
    int refused_logged;
    wh_clock clock;
    wh_log_fn on_log;
    void *log_user;
    char *host, *prefix, *consumer, *ekey;
    int port;
    int64_t lease_ms, poll_ms, timeout_ms, reconnect_ms;
    uint64_t max_buffered, max_jobs;
    int producer_only;
    wh__rng rng;

    rq_slot *slots;
    size_t n_slots;
    rq_op *ops;               /* writes not sent yet, oldest first */
    size_t n_ops, cap_ops;
    rq_op *back;              /* sent writes whose reply did not come */
    size_t n_back, cap_back;
    uint64_t pend_jobs;
    wh__list held;            /* claimed by the engine (rq_job.link) */

    int64_t reconnect_at;     /* engine time */
    int64_t next_check;
    int64_t renew_at;
    int down_logged;          /* an outage is going on (and was logged) */

    /* spool: jobs accepted while Redis is away (NULL: none) */
    sqlite3 *sp;
    sqlite3_stmt *sp_ins, *sp_sel, *sp_del, *sp_count;
    char *spool_path;
    uint64_t spool_n;         /* rows in the spool */
    int sp_txn;               /* a write transaction is open */
    int sp_err_logged;
    struct rq_fwd *fwd;       /* spooled jobs being forwarded */
    int report_unbound;
    size_t unb_out;           /* replies of the unbound count to come */
    uint64_t unb_acc, unbound_jobs;
} rq;

#define rq_log(q, lvl, ...) wh__logf((q)->on_log, (q)->log_user, (lvl), __VA_ARGS__)

static int64_t mono(rq *q) { return q->clock.now_ms(q->clock.user); }
static int64_t wall(rq *q) { return q->clock.wall_ms(q->clock.user); }
static int64_t wall_offset(rq *q) { return wall(q) - mono(q); }

/* ---- job encoding ------------------------------------------------------------- */
static char *encode(uint64_t nonce, uint32_t attempts, int64_t first, int64_t created,
                    const char *id, const char *type, const char *channel, const char *data,
                    size_t data_len, size_t *out_len)
{
    size_t il = strlen(id), tl = strlen(type), cl = channel ? strlen(channel) : 0;
    char head[160];
    int hl = snprintf(head, sizeof head, "W1 %016" PRIx64 " %" PRIu32 " %" PRId64 " %" PRId64
                      " %zu %zu %lld\n", nonce, attempts, first, created, il, tl,
                      channel ? (long long)cl : -1LL);
    if (hl < 0 || (size_t)hl >= sizeof head) return NULL;
    size_t n = (size_t)hl + il + tl + cl + data_len;
    char *b = malloc(n ? n : 1);
    if (!b) return NULL;
    char *p = b;
    memcpy(p, head, (size_t)hl);
    p += hl;
    memcpy(p, id, il);
    p += il;
    memcpy(p, type, tl);
    p += tl;
    if (cl) memcpy(p, channel, cl);
    p += cl;
    if (data_len) memcpy(p, data, data_len);
    *out_len = n;
    return b;
}

static rq_job *decode(const char *b, size_t n, uint32_t slot, const char *entry)
{
    const char *nl = memchr(b, '\n', n < 160 ? n : 160);
    if (!nl || n < 3 || memcmp(b, "W1 ", 3) != 0) return NULL;
    char head[160];
    memcpy(head, b, (size_t)(nl - b));
    head[nl - b] = '\0';
    uint64_t nonce;
    uint32_t attempts;
    int64_t first, created;
    size_t il, tl;
    long long cl;
    if (sscanf(head, "W1 %" SCNx64 " %" SCNu32 " %" SCNd64 " %" SCNd64 " %zu %zu %lld", &nonce,
               &attempts, &first, &created, &il, &tl, &cl) != 7)
        return NULL;
    size_t body = n - (size_t)(nl + 1 - b);
    size_t cll = cl < 0 ? 0 : (size_t)cl;
    if (il == 0 || tl == 0 || il > body || tl > body - il || cll > body - il - tl) return NULL;
    size_t dl = body - il - tl - cll;
    rq_job *j = malloc(sizeof *j + il + 1 + tl + 1 + cll + 1 + dl + 1);
    if (!j) return NULL;
    memset(j, 0, sizeof *j);
    const char *s = nl + 1;
    char *p = j->buf;
    j->slot = slot;
    snprintf(j->entry, sizeof j->entry, "%s", entry);
    j->nonce = nonce;
    j->attempts = attempts;
    j->first = first;
    j->created = created;
    j->id = p;
    memcpy(p, s, il);
    p[il] = '\0';
    p += il + 1;
    s += il;
    j->type = p;
    memcpy(p, s, tl);
    p[tl] = '\0';
    p += tl + 1;
    s += tl;
    j->channel = NULL;
    if (cl >= 0) {
        j->channel = p;
        memcpy(p, s, cll);
        p[cll] = '\0';
        p += cll + 1;
        s += cll;
    }
    j->data = p;
    if (dl) memcpy(p, s, dl);
    p[dl] = '\0';
    j->data_len = dl;
    return j;
}

/* ---- lists ------------------------------------------------------------------- */
static rq_job *job_of(wh__link *l) { return l ? WH__CONTAINER_OF(l, rq_job, link) : NULL; }
#define RQ_EACH(j, list) for (rq_job *j = job_of((list).head); j; j = job_of(j->link.next))

static void held_push(rq *q, rq_job *j) { wh__list_push_front(&q->held, &j->link); }

static void held_unlink(rq *q, rq_job *j) { wh__list_unlink(&q->held, &j->link); }

static void ready_push(rq_slot *s, rq_job *j, int front)
{
    if (front) wh__list_push_front(&s->ready, &j->link);
    else wh__list_push_back(&s->ready, &j->link);
}

static rq_job *ready_pop(rq_slot *s) { return job_of(wh__list_pop_front(&s->ready)); }

/* Is the entry already ours (claimed or ready)? */
static int have_entry(rq *q, uint32_t slot, const char *entry)
{
    RQ_EACH(j, q->held)
        if (j->slot == slot && strcmp(j->entry, entry) == 0) return 1;
    RQ_EACH(j, q->slots[slot].ready)
        if (strcmp(j->entry, entry) == 0) return 1;
    /* finished here, its XACK not confirmed yet */
    for (size_t i = 0; i < q->n_ops; i++)
        if (q->ops[i].kind != RO_XADD && q->ops[i].slot == slot &&
            strcmp(q->ops[i].entry, entry) == 0)
            return 1;
    for (size_t i = 0; i < q->n_back; i++)
        if (q->back[i].kind != RO_XADD && q->back[i].slot == slot &&
            strcmp(q->back[i].entry, entry) == 0)
            return 1;
    return 0;
}

/* ---- connection ---------------------------------------------------------------- */
static void setup_slots(rq *q);
static void op_free(rq_op *o);
static void spool_take_ops(rq *q);
static void spool_forward(rq *q);
static size_t take_entries(rq *q, uint32_t slot, const redisReply *list);

static int live(const rq *q) { return q->ac && q->up; }

static const char *away_note(const rq *q)
{
    return q->sp ? "accepted events go to the spool meanwhile"
                 : "accepted events wait in memory meanwhile, up to max_buffered, then "
                   "wh_emit returns WH_E_UNAVAILABLE";
}

static int is_err(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str &&
           (!prefix || strncmp(r->str, prefix, strlen(prefix)) == 0);
}

static void lost(rq *q)
{
    q->ac = NULL;
    q->up = 0;
    q->down_logged = 1;
    q->reconnect_at = mono(q) + q->reconnect_ms;
    q->looking = 0;
    for (size_t i = 0; i < q->n_slots; i++) {
        q->slots[i].ready_setup = q->slots[i].setup_sent = 0;
        q->slots[i].counting = 0;
        q->slots[i].recover = 1;
        snprintf(q->slots[i].rcursor, sizeof q->slots[i].rcursor, "0");
    }
}

/* Drop the connection: the replies still to come are reported to their
 * callbacks as NULL (writes go back to the front of the list), then it is
 * tried again reconnect_ms later.  May be called from a callback (hiredis
 * then frees the context when the callback returns). */
static void drop(rq *q, const char *what)
{
    redisAsyncContext *ac = q->ac;
    if (!ac) return;
    if (!q->down_logged)
        rq_log(q, WH_LOG_ERROR, "redis queue: %s:%d: %s%s%s; reconnecting every %" PRId64
               " ms (%s)", q->host, q->port, what, ac->errstr && ac->errstr[0] ? ": " : "",
               ac->errstr && ac->errstr[0] ? ac->errstr : "", q->reconnect_ms, away_note(q));
    lost(q);
    redisAsyncFree(ac);
}

/* Writes whose reply did not come go back in front of the others (they
 * are older), in the order they were sent. */
static void merge_back(rq *q)
{
    if (!q->n_back) return;
    if (wh__array_reserve(&q->ops, &q->cap_ops, q->n_ops + q->n_back, sizeof *q->ops, 256) !=
        WH_OK)
        return; /* tried again at the next call */
    memmove(q->ops + q->n_back, q->ops, q->n_ops * sizeof *q->ops);
    memcpy(q->ops, q->back, q->n_back * sizeof *q->ops);
    q->n_ops += q->n_back;
    q->n_back = 0;
}

static void push_back(rq *q, const rq_op *o)
{
    if (wh__array_reserve(&q->back, &q->cap_back, q->n_back + 1, sizeof *q->back, 64) != WH_OK) {
        rq_log(q, WH_LOG_ERROR, "redis queue: out of memory keeping a write to do again%s",
               o->kind == RO_XADD ? "; an accepted job is lost" : "");
        rq_op c = *o;
        op_free(&c);
        if (o->kind == RO_XADD) {
            if (q->slots[o->slot].pend) q->slots[o->slot].pend--;
            if (q->pend_jobs) q->pend_jobs--;
        }
        return;
    }
    q->back[q->n_back++] = *o;
}

/* ---- the socket: hooks given to hiredis, the engine's loop ------------------------- */
static void ev_sync(rq *q)
{
    if (!q->has_loop || q->fd < 0 || q->mask == q->watched) return;
    if (q->loop.watch(q->loop.user, q->fd, q->mask, &q->sock) == 0) q->watched = q->mask;
}

static void ev_add_read(void *p)
{
    rq *q = p;
    q->mask |= WH_POLL_IN;
    ev_sync(q);
}

static void ev_del_read(void *p)
{
    rq *q = p;
    q->mask &= ~WH_POLL_IN;
    ev_sync(q);
}

static void ev_add_write(void *p)
{
    rq *q = p;
    q->mask |= WH_POLL_OUT;
    ev_sync(q);
}

static void ev_del_write(void *p)
{
    rq *q = p;
    q->mask &= ~WH_POLL_OUT;
    ev_sync(q);
}

static void ev_cleanup(void *p) /* before hiredis closes the socket */
{
    rq *q = p;
    q->mask = 0;
    ev_sync(q);
    q->watched = 0;
    q->sock = NULL;
    q->fd = -1;
}

/* hiredis writes with write(): a connection Redis closed must not raise
 * SIGPIPE in the host.  The signal is blocked in this thread for the
 * write, and one it raised is taken back (as libcurl does). */
static void write_out(rq *q)
{
    sigset_t pipe_set, old, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int was_pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
    redisAsyncHandleWrite(q->ac);
    if (!was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {}
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The readiness of the socket: hiredis writes and reads what it can
 * (never waiting) and runs the callbacks of the replies that came. */
static void io(rq *q, int events)
{
    if (q->ac && (events & WH_POLL_OUT)) write_out(q);
    if (q->ac && (events & WH_POLL_IN)) redisAsyncHandleRead(q->ac);
}

static int events_of(short re)
{
    int ev = 0;
    if (re & (POLLIN | POLLHUP | POLLERR)) ev |= WH_POLL_IN;
    if (re & (POLLOUT | POLLERR)) ev |= WH_POLL_OUT;
    return ev;
}

/* Without hooks from the engine: whatever the socket is ready for now
 * (timeout 0: never waits). */
static void pump(rq *q)
{
    for (int k = 0; k < 4 && !q->has_loop && q->ac && q->mask; k++) {
        struct pollfd p = {q->fd, (short)((q->mask & WH_POLL_IN ? POLLIN : 0) |
                                          (q->mask & WH_POLL_OUT ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 0) <= 0) return;
        io(q, events_of(p.revents));
    }
}

static int64_t real_us(void) { return wh__mono_ns() / 1000; }

/* The two calls that wait (the first connect, the last writes): drive the
 * socket until done(q) or the deadline (real time, us). */
static void wait_until(rq *q, int64_t deadline, int (*done)(const rq *q))
{
    while (q->ac && !done(q)) {
        int64_t left = deadline - real_us();
        if (left <= 0 || !q->mask) return;
        struct pollfd p = {q->fd, (short)((q->mask & WH_POLL_IN ? POLLIN : 0) |
                                          (q->mask & WH_POLL_OUT ? POLLOUT : 0)), 0};
        int n = poll(&p, 1, (int)((left + 999) / 1000));
        if (n > 0) io(q, events_of(p.revents));
    }
}

/* A command with a callback (fn NULL: its reply is not looked at).  -1:
 * not sent (no connection), the callback will not be called. */
static int cmd(rq *q, redisCallbackFn *fn, void *priv, int argc, const char **argv,
               const size_t *lens)
{
    if (!q->ac) return -1;
    if (redisAsyncCommandArgv(q->ac, fn, priv, argc, argv, lens) != REDIS_OK) return -1;
    if (fn) {
        if (!q->outstanding++) q->progress_at = mono(q);
    }
    return 0;
}

/* Every callback starts with this: one reply less to wait for. */
static rq *answered(redisAsyncContext *ac)
{
    rq *q = ac->data;
    if (q->outstanding) q->outstanding--;
    q->progress_at = mono(q);
    return q;
}

static void hello_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    (void)priv;
    if (!rep || ac != q->ac) return;
    if (is_err(rep, "LOADING")) { /* restarting Redis: try again shortly */
        drop(q, "server is loading its data");
        return;
    }
    /* only now are writes sent: a connection to a stopped Redis is
     * accepted by its kernel, and what is written to it would be applied
     * once Redis runs again, on top of the same writes sent again later */
    q->up = 1;
    if (q->down_logged) { /* the outage ends when Redis answers */
        rq_log(q, WH_LOG_INFO, "redis queue: connected to %s:%d again; writing %" PRIu64
               " buffered and %" PRIu64 " spooled job(s)", q->host, q->port, q->pend_jobs,
               q->spool_n);
        q->down_logged = 0;
    }
    q->woke = 1;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rq *q = ac->data;
    if (ac != q->ac) return;
    if (status == REDIS_OK) { /* up once Redis answers (hello_cb) */
        q->progress_at = mono(q);
        return;
    }
    if (!q->down_logged)
        rq_log(q, WH_LOG_ERROR, "redis queue: cannot connect to %s:%d: %s; trying again "
               "every %" PRId64 " ms (%s)", q->host, q->port,
               ac->errstr && ac->errstr[0] ? ac->errstr : "error", q->reconnect_ms,
               away_note(q));
    lost(q); /* hiredis frees the context after this */
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rq *q = ac->data;
    (void)status;
    if (ac != q->ac) return; /* dropped by us */
    if (!q->down_logged)
        rq_log(q, WH_LOG_ERROR, "redis queue: %s:%d: connection lost: %s; reconnecting every "
               "%" PRId64 " ms (%s)", q->host, q->port,
               ac->errstr && ac->errstr[0] ? ac->errstr : "closed", q->reconnect_ms,
               away_note(q));
    lost(q);
}

/* Start a connection (non-blocking connect; the host should be an IP
 * literal: a name is resolved by getaddrinfo, which waits). */
static void start_connect(rq *q)
{
    redisAsyncContext *ac = redisAsyncConnect(q->host, q->port);
    if (!ac || ac->err) {
        if (!q->down_logged)
            rq_log(q, WH_LOG_ERROR, "redis queue: cannot connect to %s:%d: %s; trying again "
                   "every %" PRId64 " ms (%s)", q->host, q->port,
                   ac && ac->errstr ? ac->errstr : "out of memory", q->reconnect_ms,
                   away_note(q));
        if (ac) redisAsyncFree(ac);
        q->down_logged = 1;
        q->reconnect_at = mono(q) + q->reconnect_ms;
        return;
    }
    ac->data = q;
    ac->ev.data = q;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    q->ac = ac;
    q->up = 0;
    q->fd = ac->c.fd;
    q->mask = q->watched = 0;
    q->sock = NULL;
    q->outstanding = 0;
    q->progress_at = mono(q);
    q->report_unbound = 1;
    q->next_check = 0;
    ev_add_read(q); /* hiredis only asks for reads once connected */
    const char *ping[] = {"PING"};
    if (cmd(q, hello_cb, NULL, 1, ping, NULL) != 0) {
        drop(q, "cannot send");
        return;
    }
    setup_slots(q);
}

/* queue version 5: the engine's hooks (NULL: none, pump() instead). */
static int rq_set_loop(void *user, const wh_loop *loop)
{
    rq *q = user;
    if (q->has_loop && q->watched && q->fd >= 0) q->loop.watch(q->loop.user, q->fd, 0, &q->sock);
    q->watched = 0;
    q->sock = NULL;
    q->has_loop = loop != NULL;
    if (loop) {
        q->loop = *loop;
        ev_sync(q);
    }
    return WH_OK;
}

static int rq_socket_action(void *user, int fd, int events)
{
    rq *q = user;
    if (fd == q->fd) io(q, events);
    merge_back(q);
    int w = q->woke && !q->producer_only;
    q->woke = 0;
    return w;
}

static void setup_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    size_t i = (size_t)(uintptr_t)priv;
    if (i >= q->n_slots) return;
    rq_slot *s = &q->slots[i];
    s->setup_sent = 0;
    if (!rep || ac != q->ac) return;
    if (is_err(rep, "BUSYGROUP") || !is_err(rep, NULL)) {
        s->ready_setup = 1;
        s->more = 1;
        q->woke = 1;
    } else if (is_err(rep, "LOADING")) {
        drop(q, "server is loading its data");
    } else {
        rq_log(q, WH_LOG_ERROR, "redis queue: XGROUP CREATE %s: %s", s->skey, rep->str);
    }
}

/* Create the group of every bound slot not set up on this connection. */
static void setup_slots(rq *q)
{
    for (size_t i = 0; i < q->n_slots && q->ac; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || s->ready_setup || s->setup_sent) continue;
        const char *a1[] = {"XGROUP", "CREATE", s->skey, RQ_GROUP, "0", "MKSTREAM"};
        const char *a2[] = {"SADD", q->ekey, s->name};
        if (cmd(q, setup_cb, (void *)(uintptr_t)i, 6, a1, NULL) != 0) return;
        s->setup_sent = 1;
        cmd(q, NULL, NULL, 3, a2, NULL);
    }
}

/* ---- writes ------------------------------------------------------------------ */
static void op_free(rq_op *o) { free(o->blob); }

static int push_op(rq *q, const rq_op *o)
{
    if (wh__array_reserve(&q->ops, &q->cap_ops, q->n_ops + 1, sizeof *q->ops, 256) != WH_OK)
        return WH_E_NOMEM;
    q->ops[q->n_ops++] = *o;
    return WH_OK;
}

/* ---- spool ------------------------------------------------------------------- */
#if RQ_SPOOL
/* One table; a row is one job: its stream key, endpoint id and the encoded
 * job (the XADD payload).  Rows are forwarded in seq order. */
static const char spool_schema[] =
    "CREATE TABLE IF NOT EXISTS wh_spool(seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "skey TEXT NOT NULL, endpoint TEXT NOT NULL, job BLOB NOT NULL)";

static int sp_fail(rq *q, const char *what)
{
    if (!q->sp_err_logged)
        rq_log(q, WH_LOG_ERROR, "redis queue: spool %s: %s: %s", q->spool_path, what,
               sqlite3_errmsg(q->sp));
    q->sp_err_logged = 1;
    return WH_E_IO;
}

static int spool_commit(rq *q)
{
    if (!q->sp_txn) return WH_OK;
    if (sqlite3_exec(q->sp, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int first = !q->sp_err_logged;
        sp_fail(q, "commit");
        sqlite3_exec(q->sp, "ROLLBACK", NULL, NULL, NULL);
        q->sp_txn = 0;
        /* the rows of this round are gone: recount */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(q->sp, "SELECT count(*) FROM wh_spool", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            q->spool_n = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return first ? WH_E_QUEUE : WH_OK;
    }
    q->sp_txn = 0;
    q->sp_err_logged = 0;
    return WH_OK;
}

static int spool_begin(rq *q)
{
    if (q->sp_txn) return WH_OK;
    if (sqlite3_exec(q->sp, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sp_fail(q, "begin");
    q->sp_txn = 1;
    return WH_OK;
}

/* Append one job of `slot` (inside the round's transaction). */
static int spool_put(rq *q, uint32_t slot, const char *blob, size_t len)
{
    rq_slot *s = &q->slots[slot];
    if (spool_begin(q) != WH_OK) return WH_E_IO;
    sqlite3_stmt *st = q->sp_ins;
    sqlite3_bind_text(st, 1, s->skey, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 3, blob, (sqlite3_uint64)len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) return sp_fail(q, "insert");
    s->spooled++;
    q->spool_n++;
    return WH_OK;
}

/* Redis is away: move the buffered new jobs (the oldest accepted ones) into
 * the spool, in order; stop at the first failure so the order is kept. */
static void spool_take_ops(rq *q)
{
    merge_back(q);
    if (!q->sp || live(q) || !q->pend_jobs) return;
    size_t kept = 0, i = 0;
    for (; i < q->n_ops; i++) {
        rq_op *o = &q->ops[i];
        if (o->kind == RO_XADD) {
            if (spool_put(q, o->slot, o->blob, o->blob_len) != WH_OK) break;
            rq_slot *s = &q->slots[o->slot];
            if (s->pend) s->pend--;
            if (q->pend_jobs) q->pend_jobs--;
            op_free(o);
            continue;
        }
        q->ops[kept++] = *o;
    }
    for (; i < q->n_ops; i++) q->ops[kept++] = q->ops[i];
    q->n_ops = kept;
}

/* One event for n endpoints into the spool, all or nothing. */
static int spool_event(rq *q, const wh_event_view *ev, const uint32_t *slots, size_t n)
{
    if (spool_begin(q) != WH_OK) return WH_E_UNAVAILABLE;
    int sp = n > 1;
    if (sp && sqlite3_exec(q->sp, "SAVEPOINT ev", NULL, NULL, NULL) != SQLITE_OK)
        return sp_fail(q, "savepoint"), WH_E_UNAVAILABLE;
    size_t done = 0;
    int rc = WH_OK;
    for (; done < n; done++) {
        size_t len;
        char *blob = encode(wh__rng_next(&q->rng), 0, -1, ev->created_ms, ev->id, ev->type,
                            ev->channel, ev->data, ev->data_len, &len);
        if (!blob) {
            rc = WH_E_NOMEM;
            break;
        }
        rc = spool_put(q, slots[done], blob, len);
        free(blob);
        if (rc != WH_OK) {
            rc = WH_E_UNAVAILABLE;
            break;
        }
    }
    if (done == n) {
        if (sp) sqlite3_exec(q->sp, "RELEASE ev", NULL, NULL, NULL);
        return WH_OK;
    }
    if (sp) { /* undo the rows of this event */
        sqlite3_exec(q->sp, "ROLLBACK TO ev", NULL, NULL, NULL);
        sqlite3_exec(q->sp, "RELEASE ev", NULL, NULL, NULL);
    }
    for (size_t i = 0; i < done; i++) {
        rq_slot *s = &q->slots[slots[i]];
        if (s->spooled) s->spooled--;
        if (q->spool_n) q->spool_n--;
    }
    return rc;
}


/* Spooled jobs on their way to Redis: one batch at a time, oldest first. */
typedef struct rq_fwd_row {
    struct rq_fwd *b;
    int64_t seq;
    int st;                   /* 0: no reply yet, 1: confirmed, -1: failed */
    char *ep;
} rq_fwd_row;

typedef struct rq_fwd {
    size_t n, left;
    char err[128];
    rq_fwd_row rows[];
} rq_fwd;

/* Every reply of the batch came (or the connection went): delete the rows
 * confirmed without a gap from the oldest. */
static void fwd_done(rq *q, rq_fwd *b)
{
    int64_t last = -1;
    uint64_t done = 0;
    size_t hint = 0;
    for (size_t i = 0; i < b->n && b->rows[i].st == 1; i++) {
        last = b->rows[i].seq;
        done++;
        /* the endpoint's slot, if bound here (rows of one endpoint are
         * usually consecutive) */
        size_t k = hint;
        if (!(k < q->n_slots && q->slots[k].name && strcmp(q->slots[k].name, b->rows[i].ep) == 0))
            for (k = 0; k < q->n_slots; k++)
                if (q->slots[k].name && strcmp(q->slots[k].name, b->rows[i].ep) == 0) break;
        if (k < q->n_slots) {
            rq_slot *s = &q->slots[k];
            if (s->spooled) s->spooled--;
            s->xlen++;
            s->more = 1;
            hint = k;
            q->woke = 1;
        } else {
            q->report_unbound = 1;
        }
    }
    if (b->err[0])
        rq_log(q, WH_LOG_ERROR, "redis queue: forwarding spooled jobs refused, kept for "
               "later: %s", b->err);
    for (size_t i = 0; i < b->n; i++) free(b->rows[i].ep);
    free(b);
    q->fwd = NULL;
    if (last < 0) return;
    sqlite3_bind_int64(q->sp_del, 1, last);
    int rc = sqlite3_step(q->sp_del);
    sqlite3_reset(q->sp_del);
    if (rc != SQLITE_DONE) { /* they will be forwarded again: duplicates, same ids */
        sp_fail(q, "delete");
        return;
    }
    q->spool_n = q->spool_n > done ? q->spool_n - done : 0;
}

static void fwd_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    rq_fwd_row *row = priv;
    rq_fwd *b = row->b;
    row->st = rep && rep->type == REDIS_REPLY_STRING ? 1 : -1;
    if (is_err(rep, NULL) && !b->err[0]) snprintf(b->err, sizeof b->err, "%s", rep->str);
    if (--b->left == 0) fwd_done(q, b);
}

/* Send up to RQ_FWD_BATCH spooled jobs, oldest first, in one round trip;
 * the rows are deleted when their XADDs are confirmed (fwd_done). */
static void spool_forward(rq *q)
{
    if (!q->sp || !q->spool_n || !live(q) || q->fwd) return;
    if (spool_commit(q) != WH_OK || q->sp_txn) return;
    rq_fwd *b = malloc(sizeof *b + RQ_FWD_BATCH * sizeof(rq_fwd_row));
    if (!b) return;
    b->n = b->left = 0;
    b->err[0] = '\0';
    sqlite3_stmt *st = q->sp_sel;
    char *prev_key = NULL;
    while (b->n < RQ_FWD_BATCH && q->ac && sqlite3_step(st) == SQLITE_ROW) {
        const char *skey = (const char *)sqlite3_column_text(st, 1);
        const char *ep = (const char *)sqlite3_column_text(st, 2);
        const void *blob = sqlite3_column_blob(st, 3);
        size_t bl = (size_t)sqlite3_column_bytes(st, 3);
        if (!skey || !ep) continue;
        rq_fwd_row *row = &b->rows[b->n];
        row->ep = wh__strdup(ep);
        if (!row->ep) break;
        if (!prev_key || strcmp(prev_key, skey) != 0) {
            free(prev_key);
            prev_key = wh__strdup(skey);
            const char *a1[] = {"XGROUP", "CREATE", skey, RQ_GROUP, "0", "MKSTREAM"};
            const char *a2[] = {"SADD", q->ekey, ep};
            cmd(q, NULL, NULL, 6, a1, NULL);
            cmd(q, NULL, NULL, 3, a2, NULL);
        }
        row->b = b;
        row->seq = sqlite3_column_int64(st, 0);
        row->st = 0;
        const char *a[] = {"XADD", skey, "*", "j", blob ? blob : ""};
        size_t l[] = {4, strlen(skey), 1, 1, bl};
        if (cmd(q, fwd_cb, row, 5, a, l) != 0) {
            free(row->ep);
            break;
        }
        b->n++;
        b->left++;
    }
    sqlite3_reset(st);
    free(prev_key);
    if (!b->n) {
        free(b);
        return;
    }
    q->fwd = b;
}
static uint64_t spool_count(rq *q, const char *endpoint)
{
    if (!q->sp) return 0;
    if (spool_commit(q) != WH_OK) return 0;
    sqlite3_bind_text(q->sp_count, 1, endpoint, -1, SQLITE_STATIC);
    uint64_t n = 0;
    if (sqlite3_step(q->sp_count) == SQLITE_ROW) n = (uint64_t)sqlite3_column_int64(q->sp_count, 0);
    sqlite3_reset(q->sp_count);
    sqlite3_clear_bindings(q->sp_count);
    return n;
}

static int spool_open(rq *q, const char *path)
{
    q->spool_path = wh__strdup(path);
    if (!q->spool_path) return WH_E_NOMEM;
    int rc = sqlite3_open_v2(path, &q->sp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    const char *step = "open";
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(q->sp, 10); /* one file per process: a lock held elsewhere is a mistake */
        step = "journal_mode";
        rc = sqlite3_exec(q->sp, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        step = "synchronous";
        rc = sqlite3_exec(q->sp, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        step = "schema";
        rc = sqlite3_exec(q->sp, spool_schema, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        step = "prepare";
        rc = sqlite3_prepare_v2(q->sp, "INSERT INTO wh_spool(skey, endpoint, job) "
                                "VALUES(?, ?, ?)", -1, &q->sp_ins, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(q->sp, "SELECT seq, skey, endpoint, job FROM wh_spool "
                                "ORDER BY seq", -1, &q->sp_sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(q->sp, "DELETE FROM wh_spool WHERE seq <= ?", -1, &q->sp_del,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(q->sp, "SELECT count(*) FROM wh_spool WHERE endpoint = ?", -1,
                                &q->sp_count, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        step = "count";
        rc = sqlite3_prepare_v2(q->sp, "SELECT count(*) FROM wh_spool", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            q->spool_n = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        rq_log(q, WH_LOG_ERROR, "redis queue: spool %s: %s: %s", path, step,
               q->sp ? sqlite3_errmsg(q->sp) : sqlite3_errstr(rc));
        return WH_E_IO;
    }
    if (q->spool_n)
        rq_log(q, WH_LOG_INFO, "redis queue: spool %s holds %" PRIu64 " job(s) accepted while "
               "Redis was away; forwarding them once it answers", path, q->spool_n);
    return WH_OK;
}

static void spool_close(rq *q)
{
    if (!q->sp) return;
    spool_commit(q);
    sqlite3_finalize(q->sp_ins);
    sqlite3_finalize(q->sp_sel);
    sqlite3_finalize(q->sp_del);
    sqlite3_finalize(q->sp_count);
    sqlite3_close(q->sp);
    q->sp = NULL;
}

#else /* !RQ_SPOOL: q->sp stays NULL */
static int spool_commit(rq *q) { (void)q; return WH_OK; }
static void spool_take_ops(rq *q) { (void)q; }
static int spool_event(rq *q, const wh_event_view *ev, const uint32_t *slots, size_t n)
{
    (void)q, (void)ev, (void)slots, (void)n;
    return WH_E_UNAVAILABLE;
}
static void spool_forward(rq *q) { (void)q; }
static uint64_t spool_count(rq *q, const char *endpoint)
{
    (void)q, (void)endpoint;
    return 0;
}
static int spool_open(rq *q, const char *path)
{
    rq_log(q, WH_LOG_ERROR, "redis queue: spool %s: this build of libwebhook has no SQLite "
           "(make WITH_SQLITE=1)", path);
    return WH_E_UNSUPPORTED;
}
static void spool_close(rq *q) { (void)q; }
#endif

/* ---- writes -------------------------------------------------------------------- */
static void op_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    rq_op *o = priv;
    rq_slot *s = &q->slots[o->slot];
    int ok = rep && (o->kind == RO_XADD ? rep->type == REDIS_REPLY_STRING
                                        : rep->type == REDIS_REPLY_ARRAY);
    if (!ok) {
        if (rep && !q->refused_logged) {
            const char *why = is_err(rep, NULL) ? rep->str : "unexpected reply";
            rq_log(q, WH_LOG_ERROR, "redis queue: a write refused, kept for later: %s", why);
            q->refused_logged = 1;
        }
        push_back(q, o); /* written again */
        free(o);
        return;
    }
    q->refused_logged = 0;
    if (o->kind == RO_XADD) {
        s->xlen++;
        if (s->pend) s->pend--;
        if (q->pend_jobs) q->pend_jobs--;
        s->more = 1;
        q->woke = 1;
    } else if (o->kind == RO_ACK) {
        if (s->xlen) s->xlen--;
    } else if (o->kind == RO_RETRY) {
        if (s->xlen) s->xlen--;
        s->zcard++;
    } else {
        s->more = 1;
        q->woke = 1;
    }
    op_free(o);
    free(o);
}

/* Send the writes (up to RQ_MAX_FLUSH; the rest at the next call, which
 * poll() asks for at once), the spooled jobs first.  A write is forgotten
 * only when its reply confirms it (op_cb).  Never waits. */
static void flush(rq *q)
{
    merge_back(q);
    if (!live(q)) return;
    spool_forward(q); /* the oldest jobs first */
    size_t n = q->n_ops < RQ_MAX_FLUSH ? q->n_ops : RQ_MAX_FLUSH;
    size_t sent = 0;
    int64_t until = n > 8 ? real_us() + RQ_FLUSH_US : 0;
    for (; sent < n && q->ac; sent++) {
        if (until && (sent & 7) == 7 && real_us() >= until) break;
        rq_op *o = &q->ops[sent];
        rq_slot *s = &q->slots[o->slot];
        rq_op *p = malloc(sizeof *p);
        if (!p) break;
        *p = *o;
        int rc;
        if (o->kind == RO_XADD) {
            const char *a[] = {"XADD", s->skey, "*", "j", o->blob};
            size_t l[] = {4, strlen(s->skey), 1, 1, o->blob_len};
            rc = cmd(q, op_cb, p, 5, a, l);
        } else {
            const char *multi[] = {"MULTI"};
            rc = cmd(q, NULL, NULL, 1, multi, NULL);
            if (rc == 0 && o->kind == RO_RETRY) {
                char due[32];
                snprintf(due, sizeof due, "%" PRId64, o->due);
                const char *a[] = {"ZADD", s->rkey, due, o->blob};
                size_t l[] = {4, strlen(s->rkey), strlen(due), o->blob_len};
                rc = cmd(q, NULL, NULL, 4, a, l);
            } else if (rc == 0 && o->kind == RO_READD) {
                const char *a[] = {"XADD", s->skey, "*", "j", o->blob};
                size_t l[] = {4, strlen(s->skey), 1, 1, o->blob_len};
                rc = cmd(q, NULL, NULL, 5, a, l);
            }
            const char *ack[] = {"XACK", s->skey, RQ_GROUP, o->entry};
            const char *del[] = {"XDEL", s->skey, o->entry};
            const char *exec[] = {"EXEC"};
            if (rc == 0) rc = cmd(q, NULL, NULL, 4, ack, NULL);
            if (rc == 0) rc = cmd(q, NULL, NULL, 3, del, NULL);
            if (rc == 0) rc = cmd(q, op_cb, p, 1, exec, NULL);
        }
        if (rc != 0) { /* not sent: stays in the list */
            free(p);
            break;
        }
    }
    if (!sent) return;
    memmove(q->ops, q->ops + sent, (q->n_ops - sent) * sizeof *q->ops);
    q->n_ops -= sent;
}
static int ensure_slot(rq *q, uint32_t slot)
{
    if (slot < q->n_slots) return WH_OK;
    return wh__array_reserve(&q->slots, &q->n_slots, (size_t)slot + 1, sizeof *q->slots, 8);
}

static uint64_t stored(const rq *q)
{
    uint64_t t = 0;
    for (size_t i = 0; i < q->n_slots; i++) t += q->slots[i].xlen + q->slots[i].zcard;
    return t;
}

static int rq_enqueue(void *user, const wh_event_view *ev, const uint32_t *slots,
                      const char *const *ids, size_t n, int64_t due)
{
    rq *q = user;
    (void)ids;
    (void)due; /* a new job is due at once */
    if (n == 0) return WH_OK;
    for (size_t i = 0; i < n; i++)
        if (slots[i] >= q->n_slots || !q->slots[slots[i]].name) return WH_E_INVAL;
    if (stored(q) + q->unbound_jobs + q->pend_jobs + q->spool_n + n > q->max_jobs)
        return WH_E_FULL;
    /* a spool takes every new job while Redis is away and until it has
     * forwarded what it holds (so the order is kept) */
    merge_back(q);
    if (q->sp && (!live(q) || q->spool_n)) {
        spool_take_ops(q);
        if (!live(q) && q->pend_jobs) return WH_E_UNAVAILABLE; /* spool failing */
        return spool_event(q, ev, slots, n);
    }
    /* the local buffer is full (it counts the writes sent but not confirmed
     * yet): send what waits, take the replies already there, never wait */
    if (q->pend_jobs + n > q->max_buffered && live(q)) {
        flush(q);
        pump(q);
    }
    if (q->pend_jobs + n > q->max_buffered) {
        if (q->sp && !live(q)) { /* Redis went away meanwhile */
            spool_take_ops(q);
            if (!q->pend_jobs) return spool_event(q, ev, slots, n);
        }
        return live(q) ? WH_E_FULL : WH_E_UNAVAILABLE;
    }
    size_t done = 0;
    for (; done < n; done++) {
        rq_op o;
        memset(&o, 0, sizeof o);
        o.kind = RO_XADD;
        o.slot = slots[done];
        o.blob = encode(wh__rng_next(&q->rng), 0, -1, ev->created_ms, ev->id, ev->type,
                        ev->channel, ev->data, ev->data_len, &o.blob_len);
        if (!o.blob || push_op(q, &o) != WH_OK) {
            free(o.blob);
            break;
        }
    }
    if (done < n) { /* all or nothing */
        q->n_ops -= done;
        for (size_t i = 0; i < done; i++) op_free(&q->ops[q->n_ops + i]);
        return WH_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) q->slots[slots[i]].pend++;
    q->pend_jobs += n;
    return WH_OK;
}

static void fill_job(rq *q, rq_job *j, wh_job *o)
{
    o->ref = j;
    o->endpoint = j->slot;
    o->attempts = j->attempts;
    o->first_attempt_ms = j->first < 0 ? -1 : j->first - wall_offset(q);
    o->ev.id = j->id;
    o->ev.type = j->type;
    o->ev.channel = j->channel;
    o->ev.data = j->data;
    o->ev.data_len = j->data_len;
    o->ev.created_ms = j->created;
}

/* Entries of an XREADGROUP/XAUTOCLAIM reply into the slot's ready list;
 * returns how many. */
static size_t take_entries(rq *q, uint32_t slot, const redisReply *list)
{
    size_t got = 0;
    if (!list || list->type != REDIS_REPLY_ARRAY) return 0;
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *e = list->element[i];
        if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *entry = e->element[0]->str;
        const redisReply *f = e->element[1];
        if (!f || f->type != REDIS_REPLY_ARRAY) continue; /* deleted meanwhile */
        const redisReply *blob = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING && strcmp(f->element[k]->str, "j") == 0)
                blob = f->element[k + 1];
        if (have_entry(q, slot, entry)) continue;
        rq_job *j = blob && blob->type == REDIS_REPLY_STRING
                        ? decode(blob->str, blob->len, slot, entry)
                        : NULL;
        if (!j) {
            rq_log(q, WH_LOG_ERROR, "redis queue: entry %s of %s is not a job; left pending",
                   entry, q->slots[slot].skey);
            continue;
        }
        ready_push(&q->slots[slot], j, 0);
        got++;
    }
    return got;
}


static void read_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    size_t i = (size_t)(uintptr_t)priv;
    if (i >= q->n_slots) return;
    rq_slot *s = &q->slots[i];
    s->reading = 0;
    if (!rep) return;
    size_t got = 0, seen = 0;
    const redisReply *list = NULL;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2)
        list = rep->element[0]->element[1];
    if (list && list->type == REDIS_REPLY_ARRAY) {
        seen = list->elements;
        got = take_entries(q, (uint32_t)i, list);
    } else if (is_err(rep, NULL)) {
        rq_log(q, WH_LOG_ERROR, "redis queue: XREADGROUP %s: %s", s->skey, rep->str);
    }
    if (s->recover) {
        /* our pending entries, from rcursor on: done when fewer came */
        if (seen && list->element[seen - 1]->type == REDIS_REPLY_ARRAY &&
            list->element[seen - 1]->elements >= 1 &&
            list->element[seen - 1]->element[0]->type == REDIS_REPLY_STRING)
            snprintf(s->rcursor, sizeof s->rcursor, "%s", list->element[seen - 1]->element[0]->str);
        if (seen < s->read_count) {
            s->recover = 0;
            s->more = 1; /* then the new ones */
        }
        if (got) q->woke = 1;
        return;
    }
    if (!is_err(rep, NULL)) s->more = got == s->read_count;
    if (got) q->woke = 1;
}

/* Would a prefetch of the slot find something?  (our unconfirmed or
 * spooled jobs, or the stream may hold some) */
static int can_read(const rq *q, const rq_slot *s)
{
    return !q->producer_only && live(q) && s->name && s->ready_setup && !s->reading &&
           (s->more || s->pend || s->spooled || s->recover);
}

/* Ask for up to `want` more jobs of the slot: the reply fills its ready
 * list (read_cb) and wakes the engine.  Our own writes are sent first, so
 * the read sees them (one connection: Redis answers in order). */
static void prefetch(rq *q, uint32_t slot, size_t want)
{
    rq_slot *s = &q->slots[slot];
    if (!can_read(q, s) || !want) return;
    if (want > RQ_READ_COUNT) want = RQ_READ_COUNT; /* at most the room the engine asked for */
    flush(q);
    if (!q->ac) return;
    char count[24];
    snprintf(count, sizeof count, "%zu", want);
    const char *a[] = {"XREADGROUP", "GROUP", RQ_GROUP, q->consumer, "COUNT", count,
                       "STREAMS", s->skey, s->recover ? s->rcursor : ">"};
    if (cmd(q, read_cb, (void *)(uintptr_t)slot, 9, a, NULL) != 0) {
        drop(q, "cannot send");
        return;
    }
    s->reading = 1;
    s->read_count = want;
}

/* Hands out the jobs already read; never waits: fewer than max, and a
 * prefetch of the rest is sent. */
static size_t rq_claim(void *user, uint32_t slot, int64_t now, wh_job *out, size_t max)
{
    rq *q = user;
    (void)now;
    if (q->producer_only || max == 0 || slot >= q->n_slots || !q->slots[slot].name) return 0;
    rq_slot *s = &q->slots[slot];
    size_t n = 0;
    rq_job *j;
    if (q->handed >= RQ_PREFETCH_MAX) return 0; /* next round (next_due) */
    if (max > RQ_PREFETCH_MAX - q->handed) max = RQ_PREFETCH_MAX - q->handed;
    while (n < max && (j = ready_pop(s))) {
        held_push(q, j);
        fill_job(q, j, &out[n++]);
    }
    q->handed += n;
    if (n < max) prefetch(q, slot, max - n);
    if (n && q->renew_at == 0) q->renew_at = mono(q) + q->lease_ms / 3;
    return n;
}
static void finish(rq *q, wh_job *job, int kind, int64_t due_engine)
{
    rq_job *j = job->ref;
    if (!j) return;
    held_unlink(q, j);
    job->ref = NULL;
    if (kind == -1) { /* release: ours still, first in line again */
        ready_push(&q->slots[j->slot], j, 1);
        return;
    }
    rq_op o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.slot = j->slot;
    snprintf(o.entry, sizeof o.entry, "%s", j->entry);
    if (kind == RO_RETRY) {
        int64_t first = job->first_attempt_ms < 0 ? -1 : job->first_attempt_ms + wall_offset(q);
        o.due = due_engine + wall_offset(q);
        o.blob = encode(j->nonce, job->attempts + 1, first, j->created, j->id, j->type,
                        j->channel, j->data, j->data_len, &o.blob_len);
    }
    if (!(kind == RO_RETRY && !o.blob) && push_op(q, &o) != WH_OK) {
        free(o.blob);
        rq_log(q, WH_LOG_ERROR, "redis queue: out of memory recording a job's end; it will "
               "be delivered again after its lease");
    } else if (kind == RO_RETRY && !o.blob) {
        rq_log(q, WH_LOG_ERROR, "redis queue: out of memory scheduling a retry; the job "
               "will be delivered again after its lease");
    }
    free(j);
}

static void rq_ack(void *user, wh_job *job) { finish(user, job, RO_ACK, 0); }
static void rq_retry(void *user, wh_job *job, int64_t due) { finish(user, job, RO_RETRY, due); }
static void rq_release(void *user, wh_job *job) { finish(user, job, -1, 0); }

/* Now when jobs are ready (their creation time when later: batch linger),
 * or when a claim would start a prefetch that may find some; INT64_MAX
 * otherwise (a reply that brings jobs wakes the engine). */
static int64_t rq_next_due(void *user, uint32_t slot)
{
    rq *q = user;
    if (q->producer_only || slot >= q->n_slots || !q->slots[slot].name) return INT64_MAX;
    rq_slot *s = &q->slots[slot];
    int64_t now = mono(q);
    rq_job *h = job_of(s->ready.head);
    if (h && q->handed >= RQ_PREFETCH_MAX) return now; /* this round's share is out: next call */
    if (h) {
        int64_t c = h->created - wall_offset(q);
        return c < now ? c : now;
    }
    if (can_read(q, s)) return now;
    return INT64_MAX;
}

static int all_counted(const rq *q)
{
    for (size_t i = 0; i < q->n_slots; i++)
        if (q->slots[i].name && !q->slots[i].counted) return 0;
    return 1;
}


/* XLEN / ZCARD replies.  priv: slot * 4 + (1: ZCARD) + (2: part of a look). */
static void count_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    uintptr_t v = (uintptr_t)priv;
    size_t i = (size_t)(v / 4);
    int zc = (v & 1) != 0, in_look = (v & 2) != 0;
    if (in_look && zc && q->looking) q->looking--;
    if (i >= q->n_slots) return;
    rq_slot *s = &q->slots[i];
    if (!in_look && zc) s->counting = 0;
    int ok = rep && rep->type == REDIS_REPLY_INTEGER;
    if (!zc) {
        if (ok) s->xlen = (uint64_t)rep->integer;
        s->xl_ok = ok;
        return;
    }
    if (ok) s->zcard = (uint64_t)rep->integer;
    if (ok && s->xl_ok) s->counted = 1;
    if (in_look && rep) {
        s->more = 1; /* other processes' jobs: the next claim reads */
        q->woke = 1;
    }
}

static int send_counts(rq *q, size_t i, int in_look)
{
    rq_slot *s = &q->slots[i];
    const char *xl[] = {"XLEN", s->skey};
    const char *zc[] = {"ZCARD", s->rkey};
    uintptr_t v = (uintptr_t)i * 4 + (in_look ? 2 : 0);
    if (cmd(q, count_cb, (void *)v, 2, xl, NULL) != 0) return -1;
    return cmd(q, count_cb, (void *)(v + 1), 2, zc, NULL);
}

/* Ask for the counts of the slots not counted yet (a new process knows
 * nothing of the jobs waiting in Redis until it asks). */
static void count_slots(rq *q)
{
    for (size_t i = 0; i < q->n_slots && live(q); i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || s->counted || s->counting) continue;
        if (send_counts(q, i, 0) == 0) s->counting = 1;
    }
}

/* What is known now: never waits (counts not known yet are asked for). */
static size_t rq_size(void *user)
{
    rq *q = user;
    if (!q->has_loop) pump(q);
    int known = all_counted(q);
    if (!known) count_slots(q);
    uint64_t n = stored(q) + q->pend_jobs + q->spool_n + q->n_back;
    /* not known yet (Redis away since the start): not reported empty, so
     * a drain waits for Redis instead of ending at once */
    if (!known && n == 0) n = 1;
    return (size_t)n;
}

/* Renew the claims of every job we hold (claimed or ready); the replies
 * are not looked at. */
static void renew(rq *q)
{
    for (size_t i = 0; i < q->n_slots && live(q); i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name) continue;
        size_t n = 0;
        RQ_EACH(j, q->held) n += j->slot == i;
        n += s->ready.n;
        if (!n) continue;
        const char **a = malloc((n + 6) * sizeof *a);
        if (!a) return;
        size_t k = 0;
        a[k++] = "XCLAIM";
        a[k++] = s->skey;
        a[k++] = RQ_GROUP;
        a[k++] = q->consumer;
        a[k++] = "0";
        RQ_EACH(j, q->held)
            if (j->slot == i) a[k++] = j->entry;
        RQ_EACH(j, s->ready) a[k++] = j->entry;
        a[k++] = "JUSTID";
        cmd(q, NULL, NULL, (int)k, a, NULL);
        free(a);
    }
}

static const char move_script[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, "
    "tonumber(ARGV[2]))\n"
    "for _, m in ipairs(due) do\n"
    "  redis.call('XADD', KEYS[2], '*', 'j', m)\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "end\n"
    "return #due\n";

static void move_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    size_t i = (size_t)(uintptr_t)priv;
    if (!rep || i >= q->n_slots) return;
    rq_slot *s = &q->slots[i];
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
        s->more = 1;
        q->woke = 1;
    } else if (is_err(rep, NULL)) {
        rq_log(q, WH_LOG_ERROR, "redis queue: moving retries of %s: %s", s->name, rep->str);
    }
}

static void autoclaim_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    size_t i = (size_t)(uintptr_t)priv;
    if (!rep || i >= q->n_slots) return;
    rq_slot *s = &q->slots[i];
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2) {
        if (rep->element[0]->type == REDIS_REPLY_STRING)
            snprintf(s->cursor, sizeof s->cursor, "%s", rep->element[0]->str);
        size_t got = take_entries(q, (uint32_t)i, rep->element[1]);
        if (got) {
            q->woke = 1;
            rq_log(q, WH_LOG_INFO, "redis queue: took over %zu job(s) of %s whose consumer "
                   "stopped renewing its claim", got, s->name);
        }
    } else if (is_err(rep, NULL)) {
        rq_log(q, WH_LOG_ERROR, "redis queue: XAUTOCLAIM %s: %s", s->skey, rep->str);
    }
}

/* Look at the shared state: move due retries into the streams, take over
 * claims of dead consumers, refresh the counts.  One look at a time; the
 * replies come to the callbacks. */
static void look(rq *q)
{
    if (!live(q) || q->looking) return;
    char now[32], lease[24], mc[16], ac[16];
    snprintf(now, sizeof now, "%" PRId64, wall(q));
    snprintf(lease, sizeof lease, "%" PRId64, q->lease_ms);
    snprintf(mc, sizeof mc, "%d", RQ_MOVE_COUNT);
    snprintf(ac, sizeof ac, "%d", RQ_AUTOCLAIM_COUNT);
    for (size_t i = 0; i < q->n_slots && q->ac; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || !s->ready_setup) continue;
        const char *ev[] = {"EVAL", move_script, "2", s->rkey, s->skey, now, mc};
        if (cmd(q, move_cb, (void *)(uintptr_t)i, 7, ev, NULL) != 0) return;
        if (!q->producer_only) {
            const char *a[] = {"XAUTOCLAIM", s->skey, RQ_GROUP, q->consumer, lease,
                               s->cursor[0] ? s->cursor : "0-0", "COUNT", ac};
            if (cmd(q, autoclaim_cb, (void *)(uintptr_t)i, 8, a, NULL) != 0) return;
        }
        if (send_counts(q, i, 1) != 0) return;
        q->looking++;
    }
}

/* The jobs of endpoints not bound here: SMEMBERS, then XLEN + ZCARD of
 * each unbound one. */
typedef struct rq_unb {
    int left;
    uint64_t n;
    char name[];
} rq_unb;

static void unb_count_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    rq_unb *u = priv;
    if (rep && rep->type == REDIS_REPLY_INTEGER) u->n += (uint64_t)rep->integer;
    if (--u->left) return;
    if (u->n)
        rq_log(q, WH_LOG_WARN, "redis queue: %" PRIu64 " stored job(s) for endpoint \"%s\", "
               "which is not configured in this process; they are kept", u->n, u->name);
    q->unb_acc += u->n;
    free(u);
    if (q->unb_out && !--q->unb_out) q->unbound_jobs = q->unb_acc;
}

static void unb_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rq *q = answered(ac);
    redisReply *rep = r;
    (void)priv;
    if (!rep || ac != q->ac) {
        q->report_unbound = 1; /* again on the next connection */
        return;
    }
    q->unb_acc = 0;
    q->unb_out = 1; /* this reply's own share, released below */
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && q->ac; i++) {
        const char *name = rep->element[i]->str;
        if (!name) continue;
        int bound = 0;
        for (size_t k = 0; k < q->n_slots && !bound; k++)
            bound = q->slots[k].name && strcmp(q->slots[k].name, name) == 0;
        if (bound) continue;
        size_t nl = strlen(name), kl = strlen(q->prefix) + nl + 4;
        rq_unb *u = malloc(sizeof *u + nl + 1);
        char *sk = malloc(kl), *rk = malloc(kl);
        if (!u || !sk || !rk) {
            free(u);
            free(sk);
            free(rk);
            break;
        }
        memcpy(u->name, name, nl + 1);
        u->n = 0;
        u->left = 2;
        snprintf(sk, kl, "%s:s:%s", q->prefix, name);
        snprintf(rk, kl, "%s:r:%s", q->prefix, name);
        const char *x[] = {"XLEN", sk};
        const char *z[] = {"ZCARD", rk};
        int ok = cmd(q, unb_count_cb, u, 2, x, NULL) == 0;
        if (ok && cmd(q, unb_count_cb, u, 2, z, NULL) != 0) u->left = 1; /* x's reply frees it */
        free(sk);
        free(rk);
        if (!ok) {
            free(u);
            break;
        }
        q->unb_out++;
    }
    if (!--q->unb_out) q->unbound_jobs = q->unb_acc;
}

static void report_unbound(rq *q)
{
    const char *a[] = {"SMEMBERS", q->ekey};
    if (!live(q) || q->unb_out) return;
    if (cmd(q, unb_cb, NULL, 2, a, NULL) == 0) q->report_unbound = 0;
}

/* End of a round: send the writes of the round (group commit), spool them
 * when Redis is away.  Writes that could not be done because Redis is away
 * are not reported here: the queue logs each outage once (the engine would
 * log every round). */
static int rq_commit(void *user)
{
    rq *q = user;
    q->handed = 0; /* the end of a round */
    if (!q->has_loop) pump(q);
    flush(q);
    spool_take_ops(q);
    int rc = q->sp ? spool_commit(q) : WH_OK;
    if (live(q) && q->renew_at && mono(q) >= q->renew_at) {
        renew(q);
        q->renew_at = q->held.n ? mono(q) + q->lease_ms / 3 : 0;
    }
    /* what was just queued leaves now, not at the next loop iteration */
    if (live(q)) write_out(q);
    return rc;
}

static int rq_poll(void *user, int64_t now, int64_t *next)
{
    rq *q = user;
    if (!q->has_loop) pump(q);
    if (q->ac && (q->outstanding || !q->up) && now - q->progress_at >= q->timeout_ms)
        drop(q, "no answer within timeout_ms");
    if (!q->ac && now >= q->reconnect_at) start_connect(q);
    if (live(q)) {
        flush(q);
        if (now >= q->next_check) {
            q->next_check = now + q->poll_ms;
            look(q);
            if (q->report_unbound) report_unbound(q);
        }
    }
    int64_t t = q->producer_only ? INT64_MAX : q->next_check;
    if (q->ac && (q->outstanding || !q->up) && q->progress_at + q->timeout_ms < t)
        t = q->progress_at + q->timeout_ms;
    if (!q->ac && q->reconnect_at < t) t = q->reconnect_at;
    if (live(q) && q->n_ops) t = now; /* more to send than one call sends */
    if (t <= now && !(live(q) && q->n_ops)) t = now + 1;
    *next = t;
    merge_back(q);
    int w = q->woke && !q->producer_only;
    q->woke = 0;
    return w;
}

static int rq_bind(void *user, uint32_t slot, const char *endpoint_id)
{
    rq *q = user;
    if (!endpoint_id || !*endpoint_id) return WH_E_INVAL;
    if (ensure_slot(q, slot) != WH_OK) return WH_E_NOMEM;
    for (size_t i = 0; i < q->n_slots; i++) /* removed and added again */
        if (q->slots[i].name && strcmp(q->slots[i].name, endpoint_id) == 0) {
            free(q->slots[i].name);
            free(q->slots[i].skey);
            free(q->slots[i].rkey);
            q->slots[i].name = q->slots[i].skey = q->slots[i].rkey = NULL;
            q->slots[i].spooled = 0;
        }
    rq_slot *s = &q->slots[slot];
    size_t kl = strlen(q->prefix) + strlen(endpoint_id) + 4;
    char *name = wh__strdup(endpoint_id), *sk = malloc(kl), *rk = malloc(kl);
    if (!name || !sk || !rk) {
        free(name);
        free(sk);
        free(rk);
        return WH_E_NOMEM;
    }
    snprintf(sk, kl, "%s:s:%s", q->prefix, endpoint_id);
    snprintf(rk, kl, "%s:r:%s", q->prefix, endpoint_id);
    free(s->name);
    free(s->skey);
    free(s->rkey);
    s->name = name;
    s->skey = sk;
    s->rkey = rk;
    s->ready_setup = 0;
    s->setup_sent = 0;
    s->more = 1;
    s->counted = 0;
    s->spooled = spool_count(q, endpoint_id);
    s->cursor[0] = '\0';
    s->recover = 1; /* a consumer of the same name may have left claims */
    snprintf(s->rcursor, sizeof s->rcursor, "0");
    q->report_unbound = 1;
    q->next_check = 0;
    if (q->ac) setup_slots(q); /* Redis away: done when it is back */
    return WH_OK;
}

static int writes_done(const rq *q) { return !q->n_ops && !q->n_back && !q->outstanding; }
static int answered_all(const rq *q) { return !q->outstanding; }
static int hello_done(const rq *q) { return q->up && !q->outstanding; }

static void rq_destroy(void *user)
{
    rq *q = user;
    if (!q) return;
    q->has_loop = 0; /* the engine took its hooks back; from here the queue polls itself */
    /* jobs we hold go back to their stream, at its end, for the others */
    rq_job *j;
    while ((j = job_of(q->held.head))) {
        held_unlink(q, j);
        ready_push(&q->slots[j->slot], j, 0);
    }
    for (size_t i = 0; i < q->n_slots; i++) {
        while ((j = ready_pop(&q->slots[i]))) {
            rq_op o;
            memset(&o, 0, sizeof o);
            o.kind = RO_READD;
            o.slot = (uint32_t)i;
            snprintf(o.entry, sizeof o.entry, "%s", j->entry);
            o.blob = encode(j->nonce, j->attempts, j->first, j->created, j->id, j->type,
                            j->channel, j->data, j->data_len, &o.blob_len);
            if (!o.blob || push_op(q, &o) != WH_OK) free(o.blob);
            free(j);
        }
    }
    /* the last writes: this call waits, at most timeout_ms in all */
    int64_t deadline = real_us() + q->timeout_ms * 1000;
    if (q->ac && !q->up) wait_until(q, deadline, hello_done);
    while (live(q) && !writes_done(q) && real_us() < deadline) {
        flush(q);
        if (live(q)) write_out(q);
        wait_until(q, deadline, answered_all);
        merge_back(q);
    }
    int holding = 0; /* jobs read while waiting stay pending on us: back after the lease */
    for (size_t i = 0; i < q->n_slots; i++) holding |= q->slots[i].ready.n > 0;
    if (live(q) && writes_done(q) && !holding) { /* nothing of ours is pending: leave the group tidy */
        for (size_t i = 0; i < q->n_slots && q->ac; i++) {
            if (!q->slots[i].name || !q->slots[i].ready_setup) continue;
            const char *a[] = {"XGROUP", "DELCONSUMER", q->slots[i].skey, RQ_GROUP,
                               q->consumer};
            cmd(q, NULL, NULL, 5, a, NULL);
        }
        const char *ping[] = {"PING"};
        if (cmd(q, hello_cb, NULL, 1, ping, NULL) == 0) {
            write_out(q);
            wait_until(q, deadline, answered_all);
        }
    }
    if (q->ac) { /* the replies still to come are NULL to their callbacks */
        redisAsyncContext *ac = q->ac;
        q->ac = NULL;
        q->up = 0;
        redisAsyncFree(ac);
    }
    merge_back(q);
    spool_take_ops(q); /* Redis away: new jobs are kept in the spool */
    if (q->sp && q->spool_n)
        rq_log(q, WH_LOG_INFO, "redis queue: closing with %" PRIu64 " job(s) in the spool %s; "
               "the next process that opens it forwards them", q->spool_n, q->spool_path);
    spool_close(q);
    if (q->n_ops)
        rq_log(q, WH_LOG_ERROR, "redis queue: closing with %zu write(s) not done (%" PRIu64
               " accepted job(s) lost; claims return to the others after the lease)",
               q->n_ops, q->pend_jobs);
    for (size_t i = 0; i < q->n_ops; i++) op_free(&q->ops[i]);
    for (size_t i = 0; i < q->n_slots; i++) {
        free(q->slots[i].name);
        free(q->slots[i].skey);
        free(q->slots[i].rkey);
        while ((j = ready_pop(&q->slots[i]))) free(j);
    }
    free(q->slots);
    free(q->ops);
    free(q->back);
    free(q->host);
    free(q->prefix);
    free(q->consumer);
    free(q->ekey);
    free(q->spool_path);
    free(q);
}

/* ---- public ---------------------------------------------------------------- */
/* The defaults: what _init sets. */
static const wh_redis_options rq_defaults = {
    .struct_size = sizeof(wh_redis_options),
    .host = "127.0.0.1",
    .port = 6379,
    .prefix = "wh",
    .lease_ms = 30000,
    .poll_interval_ms = 50,
    .timeout_ms = 50,
    .reconnect_ms = 500,
    .max_buffered = 10000,
    .max_jobs = 10000000,
};

void wh_redis_options_init_sized(wh_redis_options *o, size_t size)
{
    wh__opts_init(o, size, &rq_defaults, sizeof rq_defaults);
}

static int rq_info(void *user, wh_queue_info *out);

int wh_queue_redis_new(const wh_redis_options *in, wh_queue **out)
{
    if (!out) return WH_E_INVAL;
    *out = NULL;
    wh_redis_options o;
    wh_redis_options_init(&o);
    if (wh__opts_copy_in(&o, sizeof o, in) != WH_OK) return WH_E_VERSION;
    if (!o.host || !*o.host || o.port <= 0 || o.port > 65535 || !o.prefix || !*o.prefix ||
        (o.consumer && !*o.consumer) || (o.spool_path && !*o.spool_path))
        return WH_E_INVAL;
    rq *q = wh__calloc(1, sizeof *q);
    if (!q) return WH_E_NOMEM;
    q->fd = -1;
    const wh_clock *c = o.clock ? o.clock : wh_clock_system();
    q->clock = *c;
    q->on_log = o.on_log;
    q->log_user = o.log_user;
    q->port = o.port;
    q->lease_ms = o.lease_ms ? o.lease_ms : 30000;
    q->poll_ms = o.poll_interval_ms ? o.poll_interval_ms : 50;
    q->timeout_ms = o.timeout_ms ? o.timeout_ms : 50;
    q->reconnect_ms = o.reconnect_ms ? o.reconnect_ms : 500;
    q->max_buffered = o.max_buffered ? o.max_buffered : 10000;
    q->max_jobs = o.max_jobs ? o.max_jobs : 10000000;
    q->producer_only = o.producer_only;
    wh__rng_seed(&q->rng, 0);
    char consumer[160];
    if (o.consumer) {
        snprintf(consumer, sizeof consumer, "%s", o.consumer);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(consumer, sizeof consumer, "%s-%ld-%08" PRIx64, host, (long)getpid(),
                 wh__rng_next(&q->rng) & 0xffffffffu);
    }
    size_t el = strlen(o.prefix) + 16;
    q->host = wh__strdup(o.host);
    q->prefix = wh__strdup(o.prefix);
    q->consumer = wh__strdup(consumer);
    q->ekey = malloc(el);
    if (!q->host || !q->prefix || !q->consumer || !q->ekey) {
        rq_destroy(q);
        return WH_E_NOMEM;
    }
    snprintf(q->ekey, el, "%s:endpoints", o.prefix);
    if (o.spool_path) {
        int rc = spool_open(q, o.spool_path);
        if (rc != WH_OK) {
            rq_destroy(q);
            return rc;
        }
    }
    q->vt.version = WH_QUEUE_VERSION;
    q->vt.user = q;
    q->vt.enqueue = rq_enqueue;
    q->vt.claim = rq_claim;
    q->vt.ack = rq_ack;
    q->vt.retry = rq_retry;
    q->vt.release = rq_release;
    q->vt.next_due = rq_next_due;
    q->vt.size = rq_size;
    q->vt.commit = rq_commit;
    q->vt.destroy = rq_destroy;
    q->vt.bind = rq_bind;
    q->vt.flags = WH_QUEUE_DURABLE;
    q->vt.poll = rq_poll;
    q->vt.info = rq_info;
    q->vt.set_loop = rq_set_loop;
    q->vt.socket_action = rq_socket_action;
    /* the first connect waits, at most timeout_ms; a server that is away
     * is not an error: retried later */
    start_connect(q);
    wait_until(q, real_us() + q->timeout_ms * 1000, hello_done);
    *out = &q->vt;
    return WH_OK;
}

/* wh_queue.info (version 3): what wh_queue_info_get reports. */
static int rq_info(void *user, wh_queue_info *out)
{
    rq *q = user;
    out->jobs = stored(q) + q->unbound_jobs + q->pend_jobs + q->spool_n;
    out->unbound_jobs = q->unbound_jobs;
    out->pending = q->pend_jobs;
    out->claimed = q->held.n;
    out->connected = live(q);
    out->durable = 1;
    return WH_OK;
}
