/* The SQLite queue: durable, one file in WAL mode, shareable by several
 * processes of one machine.
 *
 * Tables: wh_events (one row per event: delivery id, type, channel,
 * payload, and how many jobs still reference it), wh_jobs (one row per
 * event x endpoint: due time, attempts, lease), wh_endpoints (stable id ->
 * small integer key) and wh_counts (job/event/byte totals, kept in the same
 * transactions, so size checks never count rows).  Every time stored is
 * wall-clock milliseconds, so it means the same in every process and after
 * a restart.
 *
 * Writes are buffered in memory and applied in one short transaction: at
 * the end of a wh_poll round (commit), or before a claim (which must see
 * them).  wh_emit therefore only copies the event.  No transaction is ever
 * left open between calls, so other processes wait at most the length of
 * one of these transactions for the write lock.
 *
 * A claim is a lease (owner, lease_until) written at once; while the job is
 * in flight the lease is renewed at commits; a process that dies stops
 * renewing, and after lease_ms its jobs are claimable again.  Acks, retries
 * and releases are buffered like enqueues; a claim flushes them first, so
 * at most max_in_flight leased jobs per endpoint are ever unfinished in the
 * file. */
#include "dedupe.h"
#include "ds.h"
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQ_BUSY_OPEN_MS 5000 /* opening (schema) and the last write at close */

#include <sqlite3.h>

/* An accepted event not yet written. */
typedef struct sq_pev {
    struct sq_pev *next;
    int64_t due;            /* wall */
    int64_t created;
    size_t data_len;
    uint32_t n;
    int64_t *eps;           /* n endpoint keys */
    uint32_t *slots;        /* n slots */
    char *id, *type, *channel, *data;
    char *headers;          /* per-message headers, or NULL */
} sq_pev;

enum { OP_ACK, OP_RETRY, OP_RELEASE };
typedef struct sq_op {
    int kind;
    uint32_t slot;
    uint32_t attempts;
    int64_t row, event;
    int64_t due, first;     /* wall; first -1 when none */
} sq_op;

/* A claimed job: the wh_job's ref. */
typedef struct sq_claim {
    wh__link link;          /* in q->claims */
    int64_t row, event, due; /* due: wall */
    uint32_t slot;
    char buf[];             /* id NUL type NUL [channel NUL] data NUL [headers NUL] */
} sq_claim;

typedef struct sq_slot {
    int64_t key;            /* 0: not bound */
    int64_t pend_min;       /* engine time of the earliest buffered job */
    int64_t delta;          /* job count change of the flush in progress */
} sq_slot;

enum {
    ST_INS_EVENT, ST_INS_JOB, ST_DEL_JOB, ST_DEC_REFS, ST_DEL_EVENT, ST_RETRY,
    ST_RELEASE, ST_COUNTS, ST_HAS_DUE, ST_CLAIM, ST_LEASE, ST_NEXT_DUE,
    ST_READ_COUNTS, ST_EP_INS, ST_EP_GET, ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_UNBOUND, ST_DD_GET, ST_DD_PUT, ST_DD_PURGE, ST_N
};

static const char *const sql_text[ST_N] = {
    [ST_INS_EVENT] = "INSERT INTO wh_events(delivery_id,type,channel,data,created,refs,"
                     "headers) VALUES(?,?,?,?,?,?,?)",
    [ST_INS_JOB] = "INSERT INTO wh_jobs(event,ep,due) VALUES(?,?,?)",
    [ST_DEL_JOB] = "DELETE FROM wh_jobs WHERE id=?",
    [ST_DEC_REFS] = "UPDATE wh_events SET refs=refs-1 WHERE id=? RETURNING refs,length(data)",
    [ST_DEL_EVENT] = "DELETE FROM wh_events WHERE id=?",
    [ST_RETRY] = "UPDATE wh_jobs SET due=?,attempts=?,first=?,lease_until=0,owner=0"
                 " WHERE id=? AND owner=?",
    [ST_RELEASE] = "UPDATE wh_jobs SET lease_until=0,owner=0 WHERE id=? AND owner=?",
    [ST_COUNTS] = "INSERT INTO wh_counts(k,jobs,events,bytes) VALUES(?,?,?,?)"
                  " ON CONFLICT(k) DO UPDATE SET jobs=jobs+excluded.jobs,"
                  " events=events+excluded.events, bytes=bytes+excluded.bytes",
    [ST_HAS_DUE] = "SELECT 1 FROM wh_jobs WHERE ep=? AND due<=? AND lease_until<? LIMIT 1",
    [ST_CLAIM] = "SELECT j.id,j.event,j.due,j.attempts,j.first,e.delivery_id,e.type,"
                 "e.channel,e.data,e.created,e.headers FROM wh_jobs j JOIN wh_events e ON"
                 " e.id=j.event WHERE j.ep=? AND j.due<=? AND j.lease_until<?"
                 " ORDER BY j.due,j.id LIMIT ?",
    [ST_LEASE] = "UPDATE wh_jobs SET lease_until=?,owner=? WHERE id=?",
    [ST_NEXT_DUE] = "SELECT due FROM wh_jobs WHERE ep=? AND lease_until<?"
                    " ORDER BY due,id LIMIT 1",
    [ST_READ_COUNTS] = "SELECT k,jobs,events,bytes FROM wh_counts",
    [ST_EP_INS] = "INSERT INTO wh_endpoints(name) VALUES(?) ON CONFLICT(name) DO NOTHING",
    [ST_EP_GET] = "SELECT key FROM wh_endpoints WHERE name=?",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_UNBOUND] = "SELECT c.k,e.name,c.jobs FROM wh_counts c JOIN wh_endpoints e"
                   " ON e.key=c.k WHERE c.k>0 AND c.jobs>0",
    [ST_DD_GET] = "SELECT 1 FROM wh_dedupe WHERE id=? AND expires>?",
    [ST_DD_PUT] = "INSERT INTO wh_dedupe(id,expires) VALUES(?,?)"
                  " ON CONFLICT(id) DO UPDATE SET expires=excluded.expires",
    [ST_DD_PURGE] = "DELETE FROM wh_dedupe WHERE expires<=?",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS wh_meta(k TEXT PRIMARY KEY, v);"
    "INSERT OR IGNORE INTO wh_meta(k,v) VALUES('schema',1);"
    "CREATE TABLE IF NOT EXISTS wh_endpoints(key INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS wh_events(id INTEGER PRIMARY KEY,"
    " delivery_id TEXT NOT NULL, type TEXT NOT NULL, channel TEXT,"
    " data BLOB NOT NULL, created INTEGER NOT NULL, refs INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS wh_jobs(id INTEGER PRIMARY KEY,"
    " event INTEGER NOT NULL, ep INTEGER NOT NULL, due INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, first INTEGER NOT NULL DEFAULT -1,"
    " lease_until INTEGER NOT NULL DEFAULT 0, owner INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS wh_jobs_due ON wh_jobs(ep,due);"
    "CREATE TABLE IF NOT EXISTS wh_counts(k INTEGER PRIMARY KEY,"
    " jobs INTEGER NOT NULL DEFAULT 0, events INTEGER NOT NULL DEFAULT 0,"
    " bytes INTEGER NOT NULL DEFAULT 0);"
    /* dedupe_window_ms: ids accepted, until when (wall ms) */
    "CREATE TABLE IF NOT EXISTS wh_dedupe(id TEXT PRIMARY KEY,"
    " expires INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS wh_dedupe_expires ON wh_dedupe(expires);";

typedef struct sq {
    wh_queue vt;
    sqlite3 *db;
    int busy_ms;            /* the wait for another process's lock in a round */
    sqlite3_stmt *st[ST_N];
    wh_clock clock;
    wh_log_fn on_log;
    void *log_user;
    uint64_t max_jobs, max_bytes;
    int64_t lease_ms, poll_ms;
    int producer_only;
    int64_t owner;

    sq_slot *slots;
    size_t n_slots;

    sq_pev *pend_head, *pend_tail;
    uint64_t pend_events, pend_jobs, pend_bytes;
    sq_op *ops;
    size_t n_ops, cap_ops;

    wh__list claims;        /* sq_claim.link */
    int64_t renew_at;       /* wall */

    /* totals as of the last read of wh_counts */
    uint64_t jobs, events, bytes, bound_jobs;
    int64_t next_check;     /* engine time of the next poll() look */
    int unbound_dirty;      /* report unbound jobs at the next commit */
    int failing;            /* last write failed (log once per episode) */

    /* dedupe_window_ms: ids accepted by this process (memory), and those
     * not yet written to wh_dedupe (written with the events they came
     * with, in the same transaction) */
    wh__dedupe *dd;
    struct { char *id; int64_t expires; } *dd_pend;
    size_t n_dd_pend, cap_dd_pend;
} sq;

#define sq_log(q, lvl, ...) wh__logf((q)->on_log, (q)->log_user, (lvl), __VA_ARGS__)

/* ---- time -------------------------------------------------------------------- */
static int64_t wall_now(sq *q) { return q->clock.wall_ms(q->clock.user); }

static int64_t wall_offset(sq *q)
{
    return q->clock.wall_ms(q->clock.user) - q->clock.now_ms(q->clock.user);
}

static int64_t to_wall(sq *q, int64_t t)
{
    if (t == INT64_MAX || t == INT64_MIN) return t;
    return t + wall_offset(q);
}

static int64_t to_engine(sq *q, int64_t w)
{
    if (w == INT64_MAX || w == INT64_MIN) return w;
    return w - wall_offset(q);
}

/* ---- statements -------------------------------------------------------------- */
static sqlite3_stmt *stmt(sq *q, int i)
{
    sqlite3_stmt *s = q->st[i];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Run a statement that returns no row we need. */
static int exec_stmt(sq *q, sqlite3_stmt *s)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {}
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int begin(sq *q) { return exec_stmt(q, stmt(q, ST_BEGIN)); }

static void rollback(sq *q)
{
    if (!sqlite3_get_autocommit(q->db)) exec_stmt(q, stmt(q, ST_ROLLBACK));
}

static int write_failed(sq *q, const char *what, int rc)
{
    if (!q->failing)
        sq_log(q, WH_LOG_ERROR, "sqlite queue: %s: %s (kept in memory, tried again)", what,
               sqlite3_errstr(rc));
    q->failing = 1;
    rollback(q);
    return WH_E_QUEUE;
}

/* ---- counts ---------------------------------------------------------------- */
static int slot_of_key(sq *q, int64_t key)
{
    for (size_t i = 0; i < q->n_slots; i++)
        if (q->slots[i].key == key) return (int)i;
    return -1;
}

static int refresh_counts(sq *q)
{
    sqlite3_stmt *s = stmt(q, ST_READ_COUNTS);
    uint64_t jobs = 0, events = 0, bytes = 0, bound = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(s, 0);
        int64_t j = sqlite3_column_int64(s, 1);
        if (j < 0) j = 0;
        if (k == 0) {
            jobs = (uint64_t)j;
            int64_t ev = sqlite3_column_int64(s, 2), b = sqlite3_column_int64(s, 3);
            events = ev > 0 ? (uint64_t)ev : 0;
            bytes = b > 0 ? (uint64_t)b : 0;
        } else if (slot_of_key(q, k) >= 0) {
            bound += (uint64_t)j;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return WH_E_QUEUE;
    q->jobs = jobs;
    q->events = events;
    q->bytes = bytes;
    q->bound_jobs = bound;
    return WH_OK;
}

static int add_counts(sq *q, int64_t k, int64_t jobs, int64_t events, int64_t bytes)
{
    if (!jobs && !events && !bytes) return SQLITE_OK;
    sqlite3_stmt *s = stmt(q, ST_COUNTS);
    sqlite3_bind_int64(s, 1, k);
    sqlite3_bind_int64(s, 2, jobs);
    sqlite3_bind_int64(s, 3, events);
    sqlite3_bind_int64(s, 4, bytes);
    return exec_stmt(q, s);
}

/* ---- flushing buffered writes ------------------------------------------------ */
/* Write every buffered enqueue and op inside the caller's transaction.  The
 * buffers are cleared by flush_done() once the transaction committed. */
static int flush_locked(sq *q)
{
    int64_t d_jobs = 0, d_events = 0, d_bytes = 0;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < q->n_slots; i++) q->slots[i].delta = 0;
    for (sq_pev *p = q->pend_head; p && rc == SQLITE_OK; p = p->next) {
        sqlite3_stmt *s = stmt(q, ST_INS_EVENT);
        sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, p->type, -1, SQLITE_STATIC);
        if (p->channel) sqlite3_bind_text(s, 3, p->channel, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(s, 4, p->data, p->data_len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, p->created);
        sqlite3_bind_int64(s, 6, p->n);
        if (p->headers) sqlite3_bind_text(s, 7, p->headers, -1, SQLITE_STATIC);
        if ((rc = exec_stmt(q, s)) != SQLITE_OK) break;
        int64_t ev = sqlite3_last_insert_rowid(q->db);
        for (uint32_t k = 0; k < p->n && rc == SQLITE_OK; k++) {
            s = stmt(q, ST_INS_JOB);
            sqlite3_bind_int64(s, 1, ev);
            sqlite3_bind_int64(s, 2, p->eps[k]);
            sqlite3_bind_int64(s, 3, p->due);
            rc = exec_stmt(q, s);
            int sl = slot_of_key(q, p->eps[k]);
            if (sl >= 0) q->slots[sl].delta++;
        }
        d_jobs += p->n;
        d_events++;
        d_bytes += (int64_t)p->data_len;
    }
    for (size_t i = 0; i < q->n_dd_pend && rc == SQLITE_OK; i++) {
        sqlite3_stmt *s = stmt(q, ST_DD_PUT);
        sqlite3_bind_text(s, 1, q->dd_pend[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, q->dd_pend[i].expires);
        rc = exec_stmt(q, s);
    }
    if (q->n_dd_pend && rc == SQLITE_OK) {
        sqlite3_stmt *s = stmt(q, ST_DD_PURGE);
        sqlite3_bind_int64(s, 1, wall_now(q));
        rc = exec_stmt(q, s);
    }
    for (size_t i = 0; i < q->n_ops && rc == SQLITE_OK; i++) {
        sq_op *o = &q->ops[i];
        sqlite3_stmt *s;
        if (o->kind == OP_ACK) {
            s = stmt(q, ST_DEL_JOB);
            sqlite3_bind_int64(s, 1, o->row);
            if ((rc = exec_stmt(q, s)) != SQLITE_OK) break;
            if (sqlite3_changes(q->db) != 1) continue; /* already gone */
            d_jobs--;
            if (o->slot < q->n_slots) q->slots[o->slot].delta--;
            s = stmt(q, ST_DEC_REFS);
            sqlite3_bind_int64(s, 1, o->event);
            int64_t refs = 1, len = 0;
            if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                refs = sqlite3_column_int64(s, 0);
                len = sqlite3_column_int64(s, 1);
                rc = sqlite3_step(s);
            }
            sqlite3_reset(s);
            if (rc != SQLITE_DONE) break;
            rc = SQLITE_OK;
            if (refs <= 0) {
                s = stmt(q, ST_DEL_EVENT);
                sqlite3_bind_int64(s, 1, o->event);
                if ((rc = exec_stmt(q, s)) != SQLITE_OK) break;
                d_events--;
                d_bytes -= len;
            }
        } else if (o->kind == OP_RETRY) {
            s = stmt(q, ST_RETRY);
            sqlite3_bind_int64(s, 1, o->due);
            sqlite3_bind_int64(s, 2, o->attempts);
            sqlite3_bind_int64(s, 3, o->first);
            sqlite3_bind_int64(s, 4, o->row);
            sqlite3_bind_int64(s, 5, q->owner);
            rc = exec_stmt(q, s);
        } else {
            s = stmt(q, ST_RELEASE);
            sqlite3_bind_int64(s, 1, o->row);
            sqlite3_bind_int64(s, 2, q->owner);
            rc = exec_stmt(q, s);
        }
    }
    if (rc == SQLITE_OK) rc = add_counts(q, 0, d_jobs, d_events, d_bytes);
    for (size_t i = 0; i < q->n_slots && rc == SQLITE_OK; i++)
        if (q->slots[i].key) rc = add_counts(q, q->slots[i].key, q->slots[i].delta, 0, 0);
    return rc;
}

static void free_pending(sq *q)
{
    sq_pev *p = q->pend_head;
    while (p) {
        sq_pev *next = p->next;
        free(p);
        p = next;
    }
    q->pend_head = q->pend_tail = NULL;
    q->pend_events = q->pend_jobs = q->pend_bytes = 0;
}

static void dd_pend_free(sq *q)
{
    for (size_t i = 0; i < q->n_dd_pend; i++) free(q->dd_pend[i].id);
    q->n_dd_pend = 0;
}

static void flush_done(sq *q)
{
    free_pending(q);
    dd_pend_free(q);
    q->n_ops = 0;
    for (size_t i = 0; i < q->n_slots; i++) q->slots[i].pend_min = INT64_MAX;
}

static int has_writes(const sq *q) { return q->pend_head || q->n_ops || q->n_dd_pend; }

/* Renew the leases of the jobs this process has claimed (in the caller's
 * transaction). */
static int renew_locked(sq *q, int64_t wall)
{
    int rc = SQLITE_OK;
    for (wh__link *l = q->claims.head; l && rc == SQLITE_OK; l = l->next) {
        sq_claim *c = WH__CONTAINER_OF(l, sq_claim, link);
        sqlite3_stmt *s = stmt(q, ST_LEASE);
        sqlite3_bind_int64(s, 1, wall + q->lease_ms);
        sqlite3_bind_int64(s, 2, q->owner);
        sqlite3_bind_int64(s, 3, c->row);
        rc = exec_stmt(q, s);
    }
    return rc;
}

/* ---- vtable ------------------------------------------------------------------ */
static int ensure_slot(sq *q, uint32_t slot)
{
    if (slot < q->n_slots) return WH_OK;
    size_t old = q->n_slots;
    if (wh__array_reserve(&q->slots, &q->n_slots, (size_t)slot + 1, sizeof *q->slots, 8) != WH_OK)
        return WH_E_NOMEM;
    for (size_t i = old; i < q->n_slots; i++) q->slots[i].pend_min = INT64_MAX;
    return WH_OK;
}

static int sq_enqueue_h(void *user, const wh_event_view *ev, const char *headers,
                        size_t headers_len, const uint32_t *slots,
                        const char *const *ids, size_t n, int64_t due)
{
    sq *q = user;
    (void)ids;
    if (n == 0) return WH_OK;
    for (size_t i = 0; i < n; i++)
        if (slots[i] >= q->n_slots || !q->slots[slots[i]].key) return WH_E_INVAL;
    if (q->jobs + q->pend_jobs + n > q->max_jobs ||
        q->bytes + q->pend_bytes + ev->data_len > q->max_bytes)
        return WH_E_FULL;
    size_t id_len = strlen(ev->id) + 1, type_len = strlen(ev->type) + 1;
    size_t ch_len = ev->channel ? strlen(ev->channel) + 1 : 0;
    size_t h_len = headers && headers_len ? headers_len + 1 : 0;
    sq_pev *p = malloc(sizeof *p + n * (sizeof(int64_t) + sizeof(uint32_t)) + id_len +
                       type_len + ch_len + ev->data_len + 1 + h_len);
    if (!p) return WH_E_NOMEM;
    p->next = NULL;
    p->due = to_wall(q, due);
    p->created = ev->created_ms;
    p->data_len = ev->data_len;
    p->n = (uint32_t)n;
    p->eps = (int64_t *)(p + 1);
    p->slots = (uint32_t *)(p->eps + n);
    char *s = (char *)(p->slots + n);
    for (size_t i = 0; i < n; i++) {
        p->eps[i] = q->slots[slots[i]].key;
        p->slots[i] = slots[i];
        if (due < q->slots[slots[i]].pend_min) q->slots[slots[i]].pend_min = due;
    }
    p->id = memcpy(s, ev->id, id_len);
    s += id_len;
    p->type = memcpy(s, ev->type, type_len);
    s += type_len;
    p->channel = NULL;
    if (ev->channel) {
        p->channel = memcpy(s, ev->channel, ch_len);
        s += ch_len;
    }
    p->data = s;
    memcpy(s, ev->data, ev->data_len);
    s[ev->data_len] = '\0';
    p->headers = NULL;
    if (h_len) {
        p->headers = s + ev->data_len + 1;
        memcpy(p->headers, headers, headers_len);
        p->headers[headers_len] = '\0';
    }
    if (q->pend_tail) q->pend_tail->next = p;
    else q->pend_head = p;
    q->pend_tail = p;
    q->pend_events++;
    q->pend_jobs += n;
    q->pend_bytes += ev->data_len;
    return WH_OK;
}

static int sq_enqueue(void *user, const wh_event_view *ev, const uint32_t *slots,
                      const char *const *ids, size_t n, int64_t due)
{
    return sq_enqueue_h(user, ev, NULL, 0, slots, ids, n, due);
}

/* 1 when table has the column. */
static int has_column(sqlite3 *db, const char *table, const char *column)
{
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    sqlite3_stmt *s = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK)
        while (!found && sqlite3_step(s) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(s, 1);
            found = name && strcmp(name, column) == 0;
        }
    sqlite3_finalize(s);
    return found;
}

static void claim_unlink(sq *q, sq_claim *c) { wh__list_unlink(&q->claims, &c->link); }

static size_t sq_claim_jobs(void *user, uint32_t slot, int64_t now, wh_job *out, size_t max)
{
    sq *q = user;
    if (q->producer_only || max == 0 || slot >= q->n_slots || !q->slots[slot].key) return 0;
    int64_t key = q->slots[slot].key;
    int64_t wall = wall_now(q);
    int64_t due_lim = to_wall(q, now);
    int64_t lease_lim = now == INT64_MAX ? INT64_MAX : wall;
    if (!has_writes(q)) {
        /* nothing buffered: a read tells whether a write is needed */
        sqlite3_stmt *s = stmt(q, ST_HAS_DUE);
        sqlite3_bind_int64(s, 1, key);
        sqlite3_bind_int64(s, 2, due_lim);
        sqlite3_bind_int64(s, 3, lease_lim);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc == SQLITE_DONE) return 0;
        if (rc != SQLITE_ROW) {
            write_failed(q, "claim", rc);
            return 0;
        }
    }
    int rc = begin(q);
    if (rc != SQLITE_OK) {
        write_failed(q, "claim", rc);
        return 0;
    }
    if ((rc = flush_locked(q)) != SQLITE_OK) {
        write_failed(q, "writing buffered jobs", rc);
        return 0;
    }
    sqlite3_stmt *s = stmt(q, ST_CLAIM);
    sqlite3_bind_int64(s, 1, key);
    sqlite3_bind_int64(s, 2, due_lim);
    sqlite3_bind_int64(s, 3, lease_lim);
    sqlite3_bind_int64(s, 4, (int64_t)max);
    size_t n = 0;
    wh__list got = {0};
    while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 5);
        const char *type = (const char *)sqlite3_column_text(s, 6);
        const char *ch = (const char *)sqlite3_column_text(s, 7);
        const void *data = sqlite3_column_blob(s, 8);
        size_t data_len = (size_t)sqlite3_column_bytes(s, 8);
        if (!id || !type) continue;
        size_t id_len = strlen(id) + 1, type_len = strlen(type) + 1;
        size_t ch_len = ch ? strlen(ch) + 1 : 0;
        const char *hd = (const char *)sqlite3_column_text(s, 10);
        size_t hd_len = hd ? strlen(hd) : 0;
        sq_claim *c = malloc(sizeof *c + id_len + type_len + ch_len + data_len + 1 +
                             (hd_len ? hd_len + 1 : 0));
        if (!c) break;
        c->row = sqlite3_column_int64(s, 0);
        c->event = sqlite3_column_int64(s, 1);
        c->due = sqlite3_column_int64(s, 2);
        c->slot = slot;
        char *p = c->buf;
        wh_job *o = &out[n];
        o->ref = c;
        o->endpoint = slot;
        int64_t att = sqlite3_column_int64(s, 3);
        o->attempts = att < 0 ? 0 : (uint32_t)att;
        int64_t first = sqlite3_column_int64(s, 4);
        o->first_attempt_ms = first < 0 ? -1 : to_engine(q, first);
        o->ev.id = memcpy(p, id, id_len);
        p += id_len;
        o->ev.type = memcpy(p, type, type_len);
        p += type_len;
        o->ev.channel = NULL;
        if (ch) {
            o->ev.channel = memcpy(p, ch, ch_len);
            p += ch_len;
        }
        if (data_len) memcpy(p, data, data_len);
        p[data_len] = '\0';
        o->ev.data = p;
        o->ev.data_len = data_len;
        o->ev.created_ms = sqlite3_column_int64(s, 9);
        o->headers = NULL;
        o->headers_len = 0;
        if (hd_len) {
            char *h = p + data_len + 1;
            memcpy(h, hd, hd_len + 1);
            o->headers = h;
            o->headers_len = hd_len;
        }
        wh__list_push_back(&got, &c->link);
        n++;
    }
    sqlite3_reset(s);
    rc = SQLITE_OK;
    for (wh__link *l = got.head; l && rc == SQLITE_OK; l = l->next) {
        sq_claim *c = WH__CONTAINER_OF(l, sq_claim, link);
        s = stmt(q, ST_LEASE);
        sqlite3_bind_int64(s, 1, wall + q->lease_ms);
        sqlite3_bind_int64(s, 2, q->owner);
        sqlite3_bind_int64(s, 3, c->row);
        rc = exec_stmt(q, s);
    }
    if (rc == SQLITE_OK) rc = exec_stmt(q, stmt(q, ST_COMMIT));
    if (rc != SQLITE_OK) {
        write_failed(q, "claim", rc);
        wh__link *l;
        while ((l = wh__list_pop_front(&got))) free(WH__CONTAINER_OF(l, sq_claim, link));
        return 0;
    }
    q->failing = 0;
    flush_done(q);
    refresh_counts(q);
    if (got.head) {
        wh__list_splice_front(&q->claims, &got);
        if (q->renew_at == 0 || q->renew_at > wall + q->lease_ms / 3)
            q->renew_at = wall + q->lease_ms / 3;
    }
    return n;
}

static int push_op(sq *q, const sq_op *o)
{
    if (wh__array_reserve(&q->ops, &q->cap_ops, q->n_ops + 1, sizeof *q->ops, 64) != WH_OK)
        return WH_E_NOMEM;
    q->ops[q->n_ops++] = *o;
    return WH_OK;
}

/* Record op for the job and forget the claim.  Out of memory: the op is
 * lost, the lease expires and the job is delivered again (at-least-once). */
static void finish_claim(sq *q, wh_job *job, int kind, int64_t due_engine)
{
    sq_claim *c = job->ref;
    if (!c) return;
    sq_op o = {kind, c->slot, job->attempts + 1, c->row, c->event, c->due,
               job->first_attempt_ms < 0 ? -1 : to_wall(q, job->first_attempt_ms)};
    if (kind == OP_RETRY) o.due = to_wall(q, due_engine);
    if (kind != OP_ACK) {
        int64_t d = kind == OP_RETRY ? due_engine : to_engine(q, c->due);
        if (c->slot < q->n_slots && d < q->slots[c->slot].pend_min)
            q->slots[c->slot].pend_min = d;
    }
    if (push_op(q, &o) != WH_OK)
        sq_log(q, WH_LOG_ERROR, "sqlite queue: out of memory recording a job's end; "
               "it will be delivered again after its lease");
    claim_unlink(q, c);
    free(c);
    job->ref = NULL;
}

static void sq_ack(void *user, wh_job *job) { finish_claim(user, job, OP_ACK, 0); }

static void sq_retry(void *user, wh_job *job, int64_t due)
{
    finish_claim(user, job, OP_RETRY, due);
}

static void sq_release(void *user, wh_job *job) { finish_claim(user, job, OP_RELEASE, 0); }

static int64_t sq_next_due(void *user, uint32_t slot)
{
    sq *q = user;
    if (q->producer_only || slot >= q->n_slots || !q->slots[slot].key) return INT64_MAX;
    int64_t t = q->slots[slot].pend_min;
    sqlite3_stmt *s = stmt(q, ST_NEXT_DUE);
    sqlite3_bind_int64(s, 1, q->slots[slot].key);
    sqlite3_bind_int64(s, 2, wall_now(q));
    if (sqlite3_step(s) == SQLITE_ROW) {
        int64_t d = to_engine(q, sqlite3_column_int64(s, 0));
        if (d < t) t = d;
    }
    sqlite3_reset(s);
    return t;
}

static size_t sq_size(void *user)
{
    sq *q = user;
    return (size_t)(q->bound_jobs + q->pend_jobs);
}

static void report_unbound(sq *q)
{
    q->unbound_dirty = 0;
    sqlite3_stmt *s = stmt(q, ST_UNBOUND);
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (slot_of_key(q, sqlite3_column_int64(s, 0)) >= 0) continue;
        const char *name = (const char *)sqlite3_column_text(s, 1);
        sq_log(q, WH_LOG_WARN, "sqlite queue: %" PRId64 " stored job(s) for endpoint "
               "\"%s\", which is not configured in this process; they are kept",
               (int64_t)sqlite3_column_int64(s, 2), name ? name : "?");
    }
    sqlite3_reset(s);
}

static int sq_commit(void *user)
{
    sq *q = user;
    int64_t wall = wall_now(q);
    int renew = q->claims.head && wall >= q->renew_at;
    int ret = WH_OK;
    if (has_writes(q) || renew) {
        int rc = begin(q);
        if (rc == SQLITE_OK) rc = flush_locked(q);
        if (rc == SQLITE_OK && renew) rc = renew_locked(q, wall);
        if (rc == SQLITE_OK) rc = exec_stmt(q, stmt(q, ST_COMMIT));
        if (rc == SQLITE_OK) {
            q->failing = 0;
            flush_done(q);
            refresh_counts(q);
            if (renew) q->renew_at = wall + q->lease_ms / 3;
        } else {
            ret = write_failed(q, "commit", rc);
        }
    }
    if (q->unbound_dirty) report_unbound(q);
    return ret;
}

static int sq_poll(void *user, int64_t now, int64_t *next)
{
    sq *q = user;
    if (q->producer_only) {
        *next = INT64_MAX;
        return 0;
    }
    if (now < q->next_check) {
        *next = q->next_check;
        return 0;
    }
    q->next_check = now + q->poll_ms;
    *next = q->next_check;
    return refresh_counts(q) == WH_OK ? 1 : WH_E_QUEUE;
}

static int sq_bind(void *user, uint32_t slot, const char *endpoint_id)
{
    sq *q = user;
    if (!endpoint_id || !*endpoint_id) return WH_E_INVAL;
    if (ensure_slot(q, slot) != WH_OK) return WH_E_NOMEM;
    sqlite3_stmt *s = stmt(q, ST_EP_INS);
    sqlite3_bind_text(s, 1, endpoint_id, -1, SQLITE_STATIC);
    /* wh_endpoint_add, not a wh_poll round: it may wait for another
     * process's write lock as long as opening does */
    sqlite3_busy_timeout(q->db, SQ_BUSY_OPEN_MS);
    int rc = exec_stmt(q, s);
    sqlite3_busy_timeout(q->db, q->busy_ms);
    if (rc != SQLITE_OK) {
        sq_log(q, WH_LOG_ERROR, "sqlite queue: cannot record endpoint \"%s\": %s",
               endpoint_id, sqlite3_errstr(rc));
        return WH_E_QUEUE;
    }
    s = stmt(q, ST_EP_GET);
    sqlite3_bind_text(s, 1, endpoint_id, -1, SQLITE_STATIC);
    int64_t key = 0;
    if (sqlite3_step(s) == SQLITE_ROW) key = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (key <= 0) return WH_E_QUEUE;
    /* an endpoint removed and added again: its old slot is gone */
    for (size_t i = 0; i < q->n_slots; i++)
        if (q->slots[i].key == key) q->slots[i].key = 0;
    q->slots[slot].key = key;
    q->slots[slot].pend_min = INT64_MAX;
    q->unbound_dirty = 1;
    q->next_check = 0;
    refresh_counts(q);
    return WH_OK;
}

static void sq_destroy(void *user)
{
    sq *q = user;
    if (!q) return;
    if (q->db) {
        /* give back what is still claimed, write what is buffered */
        wh__link *l;
        while ((l = wh__list_pop_front(&q->claims))) {
            sq_claim *c = WH__CONTAINER_OF(l, sq_claim, link);
            sq_op o = {OP_RELEASE, c->slot, 0, c->row, c->event, c->due, -1};
            push_op(q, &o);
            free(c);
        }
        sqlite3_busy_timeout(q->db, SQ_BUSY_OPEN_MS);
        if (has_writes(q) && sq_commit(q) != WH_OK)
            sq_log(q, WH_LOG_ERROR, "sqlite queue: closing with %" PRIu64
                   " accepted event(s) not written", q->pend_events);
    }
    for (wh__link *l; (l = wh__list_pop_front(&q->claims));)
        free(WH__CONTAINER_OF(l, sq_claim, link));
    free_pending(q);
    dd_pend_free(q);
    free(q->dd_pend);
    wh__dedupe_free(q->dd);
    for (int i = 0; i < ST_N; i++) sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    free(q->ops);
    free(q->slots);
    free(q);
}

/* ---- public ---------------------------------------------------------------- */
/* The defaults: what _init sets, and what a zero field means. */
static const wh_sqlite_options sq_defaults = {
    .struct_size = sizeof(wh_sqlite_options),
    .max_jobs = 10000000,
    .max_bytes = (uint64_t)4 << 30,
    .lease_ms = 30000,
    .poll_interval_ms = 100,
    /* small: the queue's writes run inside wh_poll / wh_socket_action, which
     * must not block the host's loop; a write that meets another process's
     * lock for longer stays in memory and is tried again next round */
    .busy_timeout_ms = 5,
};

void wh_sqlite_options_init_sized(wh_sqlite_options *o, size_t size)
{
    wh__opts_init(o, size, &sq_defaults, sizeof sq_defaults);
}

static int sq_info(void *user, wh_queue_info *out);

int wh_queue_sqlite_new(const char *path, const wh_sqlite_options *in, wh_queue **out)
{
    if (!out) return WH_E_INVAL;
    *out = NULL;
    wh_sqlite_options o;
    wh_sqlite_options_init(&o);
    if (wh__opts_copy_in(&o, sizeof o, in) != WH_OK) return WH_E_VERSION;
    if (!path || !*path) return WH_E_INVAL;
    sq *q = wh__calloc(1, sizeof *q);
    if (!q) return WH_E_NOMEM;
    const wh_clock *c = o.clock ? o.clock : wh_clock_system();
    q->clock = *c;
    q->on_log = o.on_log;
    q->log_user = o.log_user;
    q->max_jobs = o.max_jobs ? o.max_jobs : sq_defaults.max_jobs;
    q->max_bytes = o.max_bytes ? o.max_bytes : sq_defaults.max_bytes;
    q->lease_ms = o.lease_ms ? o.lease_ms : sq_defaults.lease_ms;
    q->poll_ms = o.poll_interval_ms ? o.poll_interval_ms : sq_defaults.poll_interval_ms;
    q->producer_only = o.producer_only;
    wh__rng r;
    wh__rng_seed(&r, 0);
    q->owner = (int64_t)(wh__rng_next(&r) >> 1) | 1;

    int rc = sqlite3_open_v2(path, &q->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    const char *step = "open";
    if (rc == SQLITE_OK) {
        /* opening and closing happen outside the host's loop: they may wait
         * as long as they need for the lock; the rounds wait busy_timeout_ms */
        sqlite3_busy_timeout(q->db, SQ_BUSY_OPEN_MS);
        step = "WAL mode";
        rc = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        step = "synchronous";
        rc = sqlite3_exec(q->db, o.synchronous_full ? "PRAGMA synchronous=FULL"
                                                     : "PRAGMA synchronous=NORMAL",
                          NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        step = "schema";
        rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(q->db, schema, NULL, NULL, NULL);
        /* per-message headers: a column files made before it lack */
        if (rc == SQLITE_OK && !has_column(q->db, "wh_events", "headers"))
            rc = sqlite3_exec(q->db, "ALTER TABLE wh_events ADD COLUMN headers TEXT", NULL,
                              NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
        else sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    }
    q->busy_ms = (int)(o.busy_timeout_ms ? o.busy_timeout_ms : sq_defaults.busy_timeout_ms);
    if (rc == SQLITE_OK) sqlite3_busy_timeout(q->db, q->busy_ms);
    for (int i = 0; i < ST_N && rc == SQLITE_OK; i++) {
        step = "prepare";
        rc = sqlite3_prepare_v3(q->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
                                NULL);
    }
    if (rc != SQLITE_OK) {
        sq_log(q, WH_LOG_ERROR, "sqlite queue: %s: %s: %s", path, step,
               q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        q->n_ops = 0;
        sq_destroy(q);
        return rc == SQLITE_NOMEM ? WH_E_NOMEM : WH_E_IO;
    }
    refresh_counts(q);
    q->vt.version = WH_QUEUE_VERSION;
    q->vt.user = q;
    q->vt.enqueue = sq_enqueue;
    q->vt.claim = sq_claim_jobs;
    q->vt.ack = sq_ack;
    q->vt.retry = sq_retry;
    q->vt.release = sq_release;
    q->vt.next_due = sq_next_due;
    q->vt.size = sq_size;
    q->vt.commit = sq_commit;
    q->vt.destroy = sq_destroy;
    q->vt.bind = sq_bind;
    q->vt.flags = WH_QUEUE_DURABLE;
    q->vt.poll = sq_poll;
    q->vt.info = sq_info;
    q->vt.enqueue_with_headers = sq_enqueue_h;
    *out = &q->vt;
    return WH_OK;
}

int wh__queue_sqlite_remember(wh_queue *vq, const char *id, int64_t wall_ms,
                              int64_t window_ms)
{
    if (!vq || vq->destroy != sq_destroy) return WH_E_INVAL;
    sq *q = vq->user;
    if (!id) return WH_OK;
    if (window_ms < 0) {             /* forget: the emit failed */
        wh__dedupe_forget(q->dd, id);
        for (size_t i = q->n_dd_pend; i-- > 0;)
            if (strcmp(q->dd_pend[i].id, id) == 0) {
                free(q->dd_pend[i].id);
                q->dd_pend[i] = q->dd_pend[--q->n_dd_pend];
                break;
            }
        return WH_OK;
    }
    if (!q->dd && !(q->dd = wh__dedupe_new(window_ms, 1000000))) return WH_E_NOMEM;
    int seen = wh__dedupe_check(q->dd, id, wall_ms);
    if (seen != 0) return seen;
    /* accepted before this process, or by another process on the file */
    sqlite3_stmt *s = stmt(q, ST_DD_GET);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, wall_ms);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW || (rc != SQLITE_DONE)) {
        wh__dedupe_forget(q->dd, id);
        if (rc == SQLITE_ROW) return 1;
        sq_log(q, WH_LOG_ERROR, "sqlite queue: dedupe lookup: %s", sqlite3_errstr(rc));
        return WH_E_QUEUE;
    }
    if (q->n_dd_pend == q->cap_dd_pend) {
        size_t cap = q->cap_dd_pend ? 2 * q->cap_dd_pend : 16;
        void *p = realloc(q->dd_pend, cap * sizeof *q->dd_pend);
        if (!p) {
            wh__dedupe_forget(q->dd, id);
            return WH_E_NOMEM;
        }
        q->dd_pend = p;
        q->cap_dd_pend = cap;
    }
    char *copy = wh__strdup(id);
    if (!copy) {
        wh__dedupe_forget(q->dd, id);
        return WH_E_NOMEM;
    }
    q->dd_pend[q->n_dd_pend].id = copy;
    q->dd_pend[q->n_dd_pend].expires = wall_ms + window_ms;
    q->n_dd_pend++;
    return 0;
}

/* wh_queue.info (version 3): what wh_queue_info_get reports. */
static int sq_info(void *user, wh_queue_info *out)
{
    sq *q = user;
    int rc = refresh_counts(q);
    out->jobs = q->jobs + q->pend_jobs;
    out->unbound_jobs = q->jobs > q->bound_jobs ? q->jobs - q->bound_jobs : 0;
    out->pending = q->pend_jobs;
    out->claimed = q->claims.n;
    out->connected = 1;
    out->durable = 1;
    return rc;
}
