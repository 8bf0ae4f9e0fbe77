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
 * Bounded time: one hiredis connection whose socket is non-blocking; every
 * wait for Redis (connect, send, each reply) is a ppoll() on its fd within
 * what is left of the call's budget: timeout_ms of waiting in all per
 * engine round (wh_poll / wh_socket_action; the budget starts again after
 * each commit, which ends a round).  When it runs out, or on any failure,
 * the connection is dropped and no further Redis call is made until
 * reconnect_ms later, so a round waits at most timeout_ms on Redis however
 * long it is away (timeout_ms = 1 keeps a host loop's timers on time).  A write whose reply
 * was lost is written again: at-least-once, a duplicate carries the same
 * delivery id.
 *
 * Redis away.  New jobs wait in the in-memory list of writes until the end
 * of the wh_poll round (group commit).  With a spool (a local SQLite file),
 * a round that cannot reach Redis moves its new jobs into the spool, and
 * while the spool holds anything every new job goes there too (so the order
 * is kept); the spool is committed at the end of the round and forwarded,
 * oldest first, once Redis answers again (a row is deleted only after its
 * XADD is confirmed).  Without a spool, at most max_buffered new jobs wait
 * in memory while Redis is away (they are lost if the process dies), and
 * wh_emit returns WH_E_UNAVAILABLE beyond that.  Acks and retries of
 * claimed jobs stay in memory: if they are lost the job is only delivered
 * again after its lease.  Each outage is logged once when it starts and
 * once when it ends. */
#include "ds.h"
#include "internal.h"

#include <hiredis/hiredis.h>
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RQ_GROUP "workers"
#define RQ_MAX_FLUSH 4096       /* writes per round trip */
#define RQ_AUTOCLAIM_COUNT 64
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
 * ready list (reclaimed from a dead consumer, or released). */
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
    int more;                 /* the stream may hold unclaimed jobs */
    wh__list ready;           /* rq_job.link */
    uint64_t xlen, zcard;     /* as of the last look, plus our changes */
    uint64_t pend;            /* buffered XADDs */
    uint64_t spooled;         /* jobs of this endpoint in the spool */
    int counted;              /* xlen and zcard read from Redis once */
    char cursor[48];          /* XAUTOCLAIM position */
} rq_slot;

typedef struct rq {
    wh_queue vt;
    redisContext *c;
    wh_clock clock;
    wh_log_fn on_log;
    void *log_user;
    char *host, *prefix, *consumer, *ekey;
    int port;
    int64_t lease_ms, poll_ms, timeout_ms, reconnect_ms;
    int64_t waited_us;        /* waited on Redis in this round (budget timeout_ms) */
    uint64_t max_buffered, max_jobs;
    int producer_only;
    wh__rng rng;

    rq_slot *slots;
    size_t n_slots;
    rq_op *ops;
    size_t n_ops, cap_ops;
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
    int report_unbound;
    uint64_t unbound_jobs;
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
    return 0;
}

/* ---- connection -------------------------------------------------------------- */
static const char *away_note(const rq *q)
{
    return q->sp ? "accepted events go to the spool meanwhile"
                 : "accepted events wait in memory meanwhile, up to max_buffered, then "
                   "wh_emit returns WH_E_UNAVAILABLE";
}

static void drop(rq *q, const char *what)
{
    if (!q->c) return;
    if (!q->down_logged)
        rq_log(q, WH_LOG_ERROR, "redis queue: %s:%d: %s: %s; reconnecting every %" PRId64
               " ms (%s)", q->host, q->port, what, q->c->errstr[0] ? q->c->errstr : "error",
               q->reconnect_ms, away_note(q));
    redisFree(q->c);
    q->c = NULL;
    q->down_logged = 1;
    q->reconnect_at = mono(q) + q->reconnect_ms;
    for (size_t i = 0; i < q->n_slots; i++) q->slots[i].ready_setup = 0;
}

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wait for the connection's fd to be ready for `ev`, within what is left of
 * this round's budget.  1 when ready, 0 when the budget is spent. */
static int wait_io(rq *q, short ev)
{
    int64_t left = q->timeout_ms * 1000 - q->waited_us;
    if (left <= 0) return 0;
    struct pollfd p = {q->c->fd, ev, 0};
    struct timespec ts = {(time_t)(left / 1000000), (long)(left % 1000000) * 1000};
    int64_t t0 = real_us();
    int n = ppoll(&p, 1, &ts, NULL);
    q->waited_us += real_us() - t0;
    return n > 0;
}

/* The next reply: send what is buffered, then read, never waiting longer
 * than the round's budget allows (the socket is non-blocking). */
static redisReply *reply(rq *q, const char *what)
{
    void *r = NULL;
    if (!q->c) return NULL;
    if (redisGetReplyFromReader(q->c, &r) != REDIS_OK) goto fail;
    if (r) return r;
    for (int done = 0;;) {
        if (redisBufferWrite(q->c, &done) != REDIS_OK) goto fail;
        if (done) break;
        if (!wait_io(q, POLLOUT)) goto timeout;
    }
    for (;;) {
        if (redisGetReplyFromReader(q->c, &r) != REDIS_OK) goto fail;
        if (r) return r;
        if (!wait_io(q, POLLIN)) goto timeout;
        if (redisBufferRead(q->c) != REDIS_OK) goto fail;
    }
timeout:
    snprintf(q->c->errstr, sizeof q->c->errstr, "no answer within timeout_ms (%" PRId64
             " ms of waiting per call)", q->timeout_ms);
fail:
    drop(q, what);
    return NULL;
}

static int is_err(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str &&
           (!prefix || strncmp(r->str, prefix, strlen(prefix)) == 0);
}

/* Create the group of every bound slot not set up on this connection. */
static int setup_slots(rq *q)
{
    size_t sent = 0;
    for (size_t i = 0; i < q->n_slots; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || s->ready_setup) continue;
        const char *a1[] = {"XGROUP", "CREATE", s->skey, RQ_GROUP, "0", "MKSTREAM"};
        const char *a2[] = {"SADD", q->ekey, s->name};
        redisAppendCommandArgv(q->c, 6, a1, NULL);
        redisAppendCommandArgv(q->c, 3, a2, NULL);
        sent++;
    }
    int ok = 1;
    for (size_t i = 0; i < q->n_slots && sent; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || s->ready_setup) continue;
        sent--;
        redisReply *r1 = reply(q, "creating the consumer group");
        redisReply *r2 = r1 ? reply(q, "registering an endpoint") : NULL;
        if (!r1 || !r2) {
            if (r1) freeReplyObject(r1);
            return 0;
        }
        if (is_err(r1, "BUSYGROUP") || !is_err(r1, NULL)) {
            s->ready_setup = 1;
            s->more = 1;
        } else {
            if (is_err(r1, "LOADING")) {
                /* restarting Redis: try again shortly */
                freeReplyObject(r1);
                freeReplyObject(r2);
                drop(q, "server is loading its data");
                return 0;
            }
            rq_log(q, WH_LOG_ERROR, "redis queue: XGROUP CREATE %s: %s", s->skey, r1->str);
            ok = 0;
        }
        freeReplyObject(r1);
        freeReplyObject(r2);
    }
    return ok;
}

/* Connected (connecting when it is time)?  Never waits more than
 * timeout_ms. */
static int connected(rq *q)
{
    if (q->c) return 1;
    if (mono(q) < q->reconnect_at) return 0;
    int64_t left = q->timeout_ms * 1000 - q->waited_us;
    if (left <= 0) return 0; /* this round's budget is spent: next round */
    struct timeval tv = {(time_t)(left / 1000000), (suseconds_t)(left % 1000000)};
    int64_t t0 = real_us();
    redisContext *c = redisConnectWithTimeout(q->host, q->port, tv);
    q->waited_us += real_us() - t0;
    if (!c || c->err) {
        if (!q->down_logged)
            rq_log(q, WH_LOG_ERROR, "redis queue: cannot connect to %s:%d: %s; trying again "
                   "every %" PRId64 " ms (%s)", q->host, q->port,
                   c ? c->errstr : "out of memory", q->reconnect_ms, away_note(q));
        q->down_logged = 1;
        if (c) redisFree(c);
        q->reconnect_at = mono(q) + q->reconnect_ms;
        return 0;
    }
    /* non-blocking from here: reply() waits with ppoll within the budget */
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        redisFree(c);
        q->reconnect_at = mono(q) + q->reconnect_ms;
        return 0;
    }
    c->flags &= ~REDIS_BLOCK;
    q->c = c;
    q->report_unbound = 1;
    if (!setup_slots(q)) return q->c != NULL;
    if (q->c && q->down_logged) { /* the outage ends when Redis answers */
        rq_log(q, WH_LOG_INFO, "redis queue: connected to %s:%d again; writing %" PRIu64
               " buffered and %" PRIu64 " spooled job(s)", q->host, q->port, q->pend_jobs,
               q->spool_n);
        q->down_logged = 0;
    }
    return q->c != NULL;
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
    if (!q->sp || q->c || !q->pend_jobs) return;
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

/* Forward up to RQ_MAX_FLUSH spooled jobs, oldest first, in one round
 * trip; rows whose XADD is confirmed are deleted. */
static void spool_forward(rq *q)
{
    if (!q->sp || !q->spool_n || !q->c) return;
    if (spool_commit(q) != WH_OK || q->sp_txn) return;
    typedef struct { int64_t seq; int setup; char *ep; } row;
    row *rows = malloc(RQ_MAX_FLUSH * sizeof *rows);
    if (!rows) return;
    size_t n = 0;
    sqlite3_stmt *st = q->sp_sel;
    char *prev_key = NULL;
    int rc;
    while (n < RQ_MAX_FLUSH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *skey = (const char *)sqlite3_column_text(st, 1);
        const char *ep = (const char *)sqlite3_column_text(st, 2);
        const void *blob = sqlite3_column_blob(st, 3);
        size_t bl = (size_t)sqlite3_column_bytes(st, 3);
        if (!skey || !ep) continue;
        char *epc = wh__strdup(ep);
        if (!epc) break;
        int setup = !prev_key || strcmp(prev_key, skey) != 0;
        if (setup) {
            free(prev_key);
            prev_key = wh__strdup(skey);
            const char *a1[] = {"XGROUP", "CREATE", skey, RQ_GROUP, "0", "MKSTREAM"};
            const char *a2[] = {"SADD", q->ekey, ep};
            redisAppendCommandArgv(q->c, 6, a1, NULL);
            redisAppendCommandArgv(q->c, 3, a2, NULL);
        }
        const char *a[] = {"XADD", skey, "*", "j", blob ? blob : ""};
        size_t l[] = {4, strlen(skey), 1, 1, bl};
        redisAppendCommandArgv(q->c, 5, a, l);
        rows[n].seq = sqlite3_column_int64(st, 0);
        rows[n].setup = setup;
        rows[n].ep = epc;
        n++;
    }
    sqlite3_reset(st);
    free(prev_key);
    int64_t last = -1;
    uint64_t done = 0;
    int failed = 0, dropped = 0;
    size_t hint = 0;
    char errbuf[128] = "";
    for (size_t i = 0; i < n && !dropped; i++) {
        for (int k = rows[i].setup ? 0 : 2; k < 3; k++) {
            redisReply *r = reply(q, "forwarding spooled jobs");
            if (!r) {
                dropped = 1;
                break;
            }
            if (k == 2 && r->type != REDIS_REPLY_STRING) {
                if (!failed && is_err(r, NULL)) snprintf(errbuf, sizeof errbuf, "%s", r->str);
                failed = 1;
            }
            freeReplyObject(r);
        }
        if (dropped || failed) continue;
        last = rows[i].seq;
        done++;
        /* the endpoint's slot, if bound here (rows of one endpoint are
         * usually consecutive) */
        size_t k = hint;
        if (!(k < q->n_slots && q->slots[k].name && strcmp(q->slots[k].name, rows[i].ep) == 0))
            for (k = 0; k < q->n_slots; k++)
                if (q->slots[k].name && strcmp(q->slots[k].name, rows[i].ep) == 0) break;
        if (k < q->n_slots) {
            rq_slot *s = &q->slots[k];
            if (s->spooled) s->spooled--;
            s->xlen++;
            s->more = 1;
            hint = k;
        } else {
            q->report_unbound = 1;
        }
    }
    for (size_t i = 0; i < n; i++) free(rows[i].ep);
    free(rows);
    if (failed && errbuf[0])
        rq_log(q, WH_LOG_ERROR, "redis queue: forwarding spooled jobs refused, kept for "
               "later: %s", errbuf);
    if (last < 0) return;
    sqlite3_bind_int64(q->sp_del, 1, last);
    rc = sqlite3_step(q->sp_del);
    sqlite3_reset(q->sp_del);
    if (rc != SQLITE_DONE) { /* they will be forwarded again: duplicates, same ids */
        sp_fail(q, "delete");
        return;
    }
    q->spool_n = q->spool_n > done ? q->spool_n - done : 0;
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
        sqlite3_busy_timeout(q->sp, 5000);
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

/* Send the buffered writes (up to RQ_MAX_FLUSH) in one round trip.  A write
 * is forgotten only when its reply confirms it. */
static void flush(rq *q)
{
    if ((!q->n_ops && !q->spool_n) || !connected(q)) return;
    spool_forward(q); /* the oldest jobs first */
    if (!q->n_ops || !q->c) return;
    size_t n = q->n_ops < RQ_MAX_FLUSH ? q->n_ops : RQ_MAX_FLUSH;
    for (size_t i = 0; i < n; i++) {
        rq_op *o = &q->ops[i];
        rq_slot *s = &q->slots[o->slot];
        if (o->kind == RO_XADD) {
            const char *a[] = {"XADD", s->skey, "*", "j", o->blob};
            size_t l[] = {4, strlen(s->skey), 1, 1, o->blob_len};
            redisAppendCommandArgv(q->c, 5, a, l);
            continue;
        }
        const char *multi[] = {"MULTI"};
        redisAppendCommandArgv(q->c, 1, multi, NULL);
        if (o->kind == RO_RETRY) {
            char due[32];
            snprintf(due, sizeof due, "%" PRId64, o->due);
            const char *a[] = {"ZADD", s->rkey, due, o->blob};
            size_t l[] = {4, strlen(s->rkey), strlen(due), o->blob_len};
            redisAppendCommandArgv(q->c, 4, a, l);
        } else if (o->kind == RO_READD) {
            const char *a[] = {"XADD", s->skey, "*", "j", o->blob};
            size_t l[] = {4, strlen(s->skey), 1, 1, o->blob_len};
            redisAppendCommandArgv(q->c, 5, a, l);
        }
        const char *ack[] = {"XACK", s->skey, RQ_GROUP, o->entry};
        const char *del[] = {"XDEL", s->skey, o->entry};
        const char *exec[] = {"EXEC"};
        redisAppendCommandArgv(q->c, 4, ack, NULL);
        redisAppendCommandArgv(q->c, 3, del, NULL);
        redisAppendCommandArgv(q->c, 1, exec, NULL);
    }
    size_t kept = 0, failed = 0;
    const char *first_err = NULL;
    char errbuf[128] = "";
    for (size_t i = 0; i < n; i++) {
        rq_op *o = &q->ops[i];
        rq_slot *s = &q->slots[o->slot];
        int ok = 0;
        if (q->c) {
            size_t replies = o->kind == RO_XADD ? 1 : o->kind == RO_ACK ? 4 : 5;
            for (size_t k = 0; k < replies; k++) {
                redisReply *r = reply(q, "writing jobs");
                if (!r) break;
                if (k == replies - 1)
                    ok = o->kind == RO_XADD ? r->type == REDIS_REPLY_STRING
                                            : r->type == REDIS_REPLY_ARRAY;
                if (is_err(r, NULL) && !first_err) {
                    snprintf(errbuf, sizeof errbuf, "%s", r->str);
                    first_err = errbuf;
                }
                freeReplyObject(r);
            }
        }
        if (ok) {
            if (o->kind == RO_XADD) {
                s->xlen++;
                if (s->pend) s->pend--;
                if (q->pend_jobs) q->pend_jobs--;
                s->more = 1;
            } else if (o->kind == RO_ACK) {
                if (s->xlen) s->xlen--;
            } else if (o->kind == RO_RETRY) {
                if (s->xlen) s->xlen--;
                s->zcard++;
            } else {
                s->more = 1;
            }
            op_free(o);
        } else {
            q->ops[kept++] = *o;
            failed++;
        }
    }
    if (first_err)
        rq_log(q, WH_LOG_ERROR, "redis queue: %zu write(s) refused, kept for later: %s",
               failed, first_err);
    memmove(q->ops + kept, q->ops + n, (q->n_ops - n) * sizeof *q->ops);
    q->n_ops = kept + (q->n_ops - n);
}

/* ---- vtable ------------------------------------------------------------------ */
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
    if (q->sp && (!q->c || q->spool_n)) {
        spool_take_ops(q);
        if (!q->c && q->pend_jobs) return WH_E_UNAVAILABLE; /* spool failing */
        return spool_event(q, ev, slots, n);
    }
    /* the local buffer is full: write it now if Redis answers */
    while (q->pend_jobs + n > q->max_buffered && q->c) {
        uint64_t before = q->pend_jobs;
        flush(q);
        if (q->pend_jobs == before) break;
    }
    if (q->pend_jobs + n > q->max_buffered) {
        if (q->sp && !q->c) { /* Redis went away meanwhile */
            spool_take_ops(q);
            if (!q->pend_jobs) return spool_event(q, ev, slots, n);
        }
        return q->c ? WH_E_FULL : WH_E_UNAVAILABLE;
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

static size_t rq_claim(void *user, uint32_t slot, int64_t now, wh_job *out, size_t max)
{
    rq *q = user;
    if (q->producer_only || max == 0 || slot >= q->n_slots || !q->slots[slot].name) return 0;
    rq_slot *s = &q->slots[slot];
    size_t n = 0;
    rq_job *j;
    while (n < max && (j = ready_pop(s))) {
        held_push(q, j);
        fill_job(q, j, &out[n++]);
    }
    if (n < max && (s->more || s->pend || s->spooled) && connected(q)) {
        flush(q); /* our own new jobs first, and the acks before new claims */
        if (q->c && !s->ready_setup) setup_slots(q);
        if (q->c && s->ready_setup) {
            char count[24];
            snprintf(count, sizeof count, "%zu", max - n);
            const char *a[] = {"XREADGROUP", "GROUP", RQ_GROUP, q->consumer, "COUNT", count,
                               "STREAMS", s->skey, ">"};
            redisAppendCommandArgv(q->c, 9, a, NULL);
            redisReply *r = reply(q, "claiming jobs");
            size_t got = 0;
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
                got = take_entries(q, slot, r->element[0]->element[1]);
            else if (is_err(r, NULL))
                rq_log(q, WH_LOG_ERROR, "redis queue: XREADGROUP %s: %s", s->skey, r->str);
            if (r) s->more = got == max - n;
            if (r) freeReplyObject(r);
            while (n < max && (j = ready_pop(s))) {
                held_push(q, j);
                fill_job(q, j, &out[n++]);
            }
        }
    }
    if (n && q->renew_at == 0) q->renew_at = mono(q) + q->lease_ms / 3;
    (void)now;
    return n;
}

/* Record what happens to a claimed job; the claim is forgotten. */
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

static int64_t rq_next_due(void *user, uint32_t slot)
{
    rq *q = user;
    if (q->producer_only || slot >= q->n_slots || !q->slots[slot].name) return INT64_MAX;
    rq_slot *s = &q->slots[slot];
    if (s->ready.head) return mono(q);
    int some = s->pend || s->more || s->spooled;
    if (some && (q->c || mono(q) >= q->reconnect_at)) return mono(q);
    if (some) return q->reconnect_at;
    return INT64_MAX;
}

static int all_counted(const rq *q)
{
    for (size_t i = 0; i < q->n_slots; i++)
        if (q->slots[i].name && !q->slots[i].counted) return 0;
    return 1;
}

/* Read the counts of the slots not counted yet (a new process knows
 * nothing of the jobs waiting in Redis until it asks). */
static void count_slots(rq *q)
{
    size_t sent = 0;
    for (size_t i = 0; i < q->n_slots && q->c; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || s->counted) continue;
        const char *xl[] = {"XLEN", s->skey};
        const char *zc[] = {"ZCARD", s->rkey};
        redisAppendCommandArgv(q->c, 2, xl, NULL);
        redisAppendCommandArgv(q->c, 2, zc, NULL);
        sent++;
    }
    for (size_t i = 0; i < q->n_slots && sent && q->c; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || s->counted) continue;
        sent--;
        redisReply *xl = reply(q, "counting jobs");
        redisReply *zc = xl ? reply(q, "counting retries") : NULL;
        if (xl && zc && xl->type == REDIS_REPLY_INTEGER && zc->type == REDIS_REPLY_INTEGER) {
            s->xlen = (uint64_t)xl->integer;
            s->zcard = (uint64_t)zc->integer;
            s->counted = 1;
        }
        if (xl) freeReplyObject(xl);
        if (zc) freeReplyObject(zc);
    }
}

static size_t rq_size(void *user)
{
    rq *q = user;
    int known = all_counted(q);
    if (!known && connected(q)) {
        count_slots(q);
        known = all_counted(q);
    }
    uint64_t n = stored(q) + q->pend_jobs + q->spool_n;
    /* not known yet (Redis away since the start): not reported empty, so
     * a drain waits for Redis instead of ending at once */
    if (!known && n == 0) n = 1;
    return (size_t)n;
}

/* Renew the claims of every job we hold (claimed or ready). */
static void renew(rq *q)
{
    for (size_t i = 0; i < q->n_slots && q->c; i++) {
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
        redisAppendCommandArgv(q->c, (int)k, a, NULL);
        free(a);
        redisReply *r = reply(q, "renewing claims");
        if (r) freeReplyObject(r);
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

/* Look at the shared state: move due retries into the streams, take over
 * claims of dead consumers, refresh the counts. */
static void look(rq *q)
{
    if (!q->c) return;
    char now[32], lease[24];
    snprintf(now, sizeof now, "%" PRId64, wall(q));
    snprintf(lease, sizeof lease, "%" PRId64, q->lease_ms);
    size_t sent = 0;
    for (size_t i = 0; i < q->n_slots; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || !s->ready_setup) continue;
        const char *ev[] = {"EVAL", move_script, "2", s->rkey, s->skey, now, "256"};
        redisAppendCommandArgv(q->c, 7, ev, NULL);
        if (!q->producer_only) {
            const char *ac[] = {"XAUTOCLAIM", s->skey, RQ_GROUP, q->consumer, lease,
                                s->cursor[0] ? s->cursor : "0-0", "COUNT", "64"};
            redisAppendCommandArgv(q->c, 8, ac, NULL);
        }
        const char *xl[] = {"XLEN", s->skey};
        const char *zc[] = {"ZCARD", s->rkey};
        redisAppendCommandArgv(q->c, 2, xl, NULL);
        redisAppendCommandArgv(q->c, 2, zc, NULL);
        sent++;
    }
    for (size_t i = 0; i < q->n_slots && sent; i++) {
        rq_slot *s = &q->slots[i];
        if (!s->name || !s->ready_setup) continue;
        sent--;
        redisReply *mv = reply(q, "moving due retries");
        if (!mv) return;
        if (mv->type == REDIS_REPLY_INTEGER && mv->integer > 0) s->more = 1;
        else if (is_err(mv, NULL))
            rq_log(q, WH_LOG_ERROR, "redis queue: moving retries of %s: %s", s->name, mv->str);
        freeReplyObject(mv);
        if (!q->producer_only) {
            redisReply *ac = reply(q, "reclaiming jobs");
            if (!ac) return;
            if (ac->type == REDIS_REPLY_ARRAY && ac->elements >= 2) {
                if (ac->element[0]->type == REDIS_REPLY_STRING)
                    snprintf(s->cursor, sizeof s->cursor, "%s", ac->element[0]->str);
                size_t got = take_entries(q, (uint32_t)i, ac->element[1]);
                if (got)
                    rq_log(q, WH_LOG_INFO, "redis queue: took over %zu job(s) of %s whose "
                           "consumer stopped renewing its claim", got, s->name);
            } else if (is_err(ac, NULL)) {
                rq_log(q, WH_LOG_ERROR, "redis queue: XAUTOCLAIM %s: %s", s->skey, ac->str);
            }
            freeReplyObject(ac);
        }
        redisReply *xl = reply(q, "counting jobs");
        redisReply *zc = xl ? reply(q, "counting retries") : NULL;
        if (xl && xl->type == REDIS_REPLY_INTEGER) s->xlen = (uint64_t)xl->integer;
        if (zc && zc->type == REDIS_REPLY_INTEGER) s->zcard = (uint64_t)zc->integer;
        if (xl && zc && xl->type == REDIS_REPLY_INTEGER && zc->type == REDIS_REPLY_INTEGER)
            s->counted = 1;
        if (xl) freeReplyObject(xl);
        if (zc) freeReplyObject(zc);
        if (!zc) return;
        s->more = 1;
    }
}

static void report_unbound(rq *q)
{
    if (!q->c) return;
    const char *a[] = {"SMEMBERS", q->ekey};
    redisAppendCommandArgv(q->c, 2, a, NULL);
    redisReply *r = reply(q, "listing endpoints");
    if (!r) return;
    q->report_unbound = 0;
    uint64_t total = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && q->c; i++) {
        const char *name = r->element[i]->str;
        if (!name) continue;
        int bound = 0;
        for (size_t k = 0; k < q->n_slots && !bound; k++)
            bound = q->slots[k].name && strcmp(q->slots[k].name, name) == 0;
        if (bound) continue;
        size_t kl = strlen(q->prefix) + strlen(name) + 4;
        char *sk = malloc(kl), *rk = malloc(kl);
        if (!sk || !rk) {
            free(sk);
            free(rk);
            break;
        }
        snprintf(sk, kl, "%s:s:%s", q->prefix, name);
        snprintf(rk, kl, "%s:r:%s", q->prefix, name);
        const char *x[] = {"XLEN", sk};
        const char *z[] = {"ZCARD", rk};
        redisAppendCommandArgv(q->c, 2, x, NULL);
        redisAppendCommandArgv(q->c, 2, z, NULL);
        free(sk);
        free(rk);
        redisReply *xr = reply(q, "counting jobs");
        redisReply *zr = xr ? reply(q, "counting retries") : NULL;
        uint64_t n = 0;
        if (xr && xr->type == REDIS_REPLY_INTEGER) n += (uint64_t)xr->integer;
        if (zr && zr->type == REDIS_REPLY_INTEGER) n += (uint64_t)zr->integer;
        if (xr) freeReplyObject(xr);
        if (zr) freeReplyObject(zr);
        if (n)
            rq_log(q, WH_LOG_WARN, "redis queue: %" PRIu64 " stored job(s) for endpoint \"%s\","
                   " which is not configured in this process; they are kept", n, name);
        total += n;
    }
    freeReplyObject(r);
    q->unbound_jobs = total;
}

/* End of a round.  Writes that could not be done because Redis is away are
 * not reported here: the queue logs each outage once (the engine would log
 * every round). */
static int rq_commit(void *user)
{
    rq *q = user;
    if (q->n_ops || q->spool_n) flush(q);
    spool_take_ops(q);
    int rc = q->sp ? spool_commit(q) : WH_OK;
    if (q->c && q->renew_at && mono(q) >= q->renew_at) {
        renew(q);
        q->renew_at = q->held.n ? mono(q) + q->lease_ms / 3 : 0;
    }
    q->waited_us = 0; /* the end of a round: the next one has its budget */
    return rc;
}

static int rq_poll(void *user, int64_t now, int64_t *next)
{
    rq *q = user;
    if (now < q->next_check) {
        *next = q->next_check;
        return 0;
    }
    q->next_check = now + q->poll_ms;
    *next = q->producer_only ? INT64_MAX : q->next_check;
    if (!connected(q)) return 0;
    flush(q);
    look(q);
    if (q->report_unbound) report_unbound(q);
    return q->producer_only ? 0 : 1;
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
    s->more = 1;
    s->counted = 0;
    s->spooled = spool_count(q, endpoint_id);
    s->cursor[0] = '\0';
    q->report_unbound = 1;
    q->next_check = 0;
    if (q->c) setup_slots(q); /* Redis away: done when it is back */
    return WH_OK;
}

static void rq_destroy(void *user)
{
    rq *q = user;
    if (!q) return;
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
    while (q->n_ops && q->c) {
        size_t before = q->n_ops;
        q->waited_us = 0; /* closing: a budget per round trip */
        flush(q);
        if (q->n_ops == before) break;
    }
    spool_take_ops(q); /* Redis away: new jobs are kept in the spool */
    if (q->sp && q->spool_n)
        rq_log(q, WH_LOG_INFO, "redis queue: closing with %" PRIu64 " job(s) in the spool %s; "
               "the next process that opens it forwards them", q->spool_n, q->spool_path);
    spool_close(q);
    if (q->n_ops)
        rq_log(q, WH_LOG_ERROR, "redis queue: closing with %zu write(s) not done (%" PRIu64
               " accepted job(s) lost; claims return to the others after the lease)",
               q->n_ops, q->pend_jobs);
    else if (q->c) /* nothing of ours is pending: leave the group tidy */
        for (size_t i = 0; i < q->n_slots && q->c; i++) {
            if (!q->slots[i].name || !q->slots[i].ready_setup) continue;
            const char *a[] = {"XGROUP", "DELCONSUMER", q->slots[i].skey, RQ_GROUP, q->consumer};
            redisAppendCommandArgv(q->c, 5, a, NULL);
            redisReply *r = reply(q, "leaving the group");
            if (r) freeReplyObject(r);
        }
    for (size_t i = 0; i < q->n_ops; i++) op_free(&q->ops[i]);
    for (size_t i = 0; i < q->n_slots; i++) {
        free(q->slots[i].name);
        free(q->slots[i].skey);
        free(q->slots[i].rkey);
    }
    if (q->c) redisFree(q->c);
    free(q->slots);
    free(q->ops);
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
    connected(q); /* a server that is away is not an error: retried later */
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
    out->connected = q->c != NULL;
    out->durable = 1;
    return WH_OK;
}
