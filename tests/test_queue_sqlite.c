/* The SQLite queue: real files, real SQLite.  Exact behaviour on the manual
 * clock and the scripted transport (persistence across engines, retries,
 * leases, unbound endpoints, the size bound), then real processes: whsend
 * killed with SIGKILL mid-delivery and restarted on the same file, and a
 * producer process feeding two worker processes. */
#include "harness.h"
#include "http_receiver.h"
#include "proc.h"
#include <webhook/webhook.h>
#include <webhook/sqlite.h>
#include <webhook/test.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WALL0 1700000000000LL

/* One integer from the file, read with a separate connection. */
static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db;
    CHECK_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    CHECK_EQ(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* ---- in-process fixture: manual clock, scripted transport, SQLite queue ------- */
typedef struct logbuf {
    char text[4096];
    size_t len;
} logbuf;

static void on_log(void *user, wh_log_level level, const char *msg)
{
    logbuf *b = user;
    int n = snprintf(b->text + b->len, sizeof b->text - b->len, "%d %s\n", (int)level, msg);
    if (n > 0 && b->len + (size_t)n < sizeof b->text) b->len += (size_t)n;
}

typedef struct fx {
    wh_manual_clock *clock;
    wh_transport *t;
    wh_queue *q;
    wh_engine *e;
    logbuf log;
    size_t delivered, dead;
    char ids[64][64];
} fx;

static void on_outcome(void *user, const wh_outcome *o)
{
    fx *f = user;
    if (o->kind == WH_DELIVERED) {
        if (f->delivered < 64) snprintf(f->ids[f->delivered], sizeof f->ids[0], "%s", o->ev.id);
        f->delivered++;
    }
    if (o->kind == WH_DEAD) f->dead++;
}

static void fx_open(fx *f, const char *path, wh_sqlite_options *so)
{
    wh_sqlite_options def;
    if (!so) {
        wh_sqlite_options_init(&def);
        so = &def;
    }
    so->clock = wh_manual_clock_vtable(f->clock);
    so->on_log = on_log;
    so->log_user = &f->log;
    CHECK_EQ(wh_queue_sqlite_new(path, so, &f->q), WH_OK);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(f->clock);
    o.transport = f->t;
    o.queue = f->q;
    o.queue_owned = 1;
    o.on_outcome = on_outcome;
    o.outcome_user = f;
    o.seed = 7;
    int err = -99;
    f->e = wh_engine_new(&o, &err);
    CHECK_EQ(err, WH_OK);
}

static void fx_init(fx *f, const char *path, wh_sqlite_options *so)
{
    memset(f, 0, sizeof *f);
    f->clock = wh_manual_clock_new(1000, WALL0);
    CHECK(f->clock);
    CHECK_EQ(wh_transport_scripted_new(NULL, f->clock, &f->t), WH_OK);
    fx_open(f, path, so);
}

/* A second engine on the same file, as after a restart (same clock). */
static void fx_restart(fx *f, const char *path, wh_sqlite_options *so)
{
    wh_engine_free(f->e);
    f->e = NULL;
    f->q = NULL;
    fx_open(f, path, so);
}

static void fx_done(fx *f)
{
    wh_engine_free(f->e);
    wh_transport_free(f->t);
    wh_manual_clock_free(f->clock);
}

static int add_ep(fx *f, const char *id, const char *url)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = id;
    ep.url = url;
    int h = wh_endpoint_add(f->e, &ep);
    CHECK_INT(h, >, 0);
    return h;
}

/* Poll in simulated time: ms milliseconds in 10 ms steps. */
static void run_for(fx *f, int64_t ms)
{
    for (int64_t t = 0; t <= ms; t += 10) {
        wh_poll(f->e, 0);
        wh_manual_clock_advance(f->clock, 10);
    }
    wh_poll(f->e, 0);
}

static wh_queue_info info_of(wh_queue *q)
{
    wh_queue_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    CHECK_EQ(wh_queue_info_get(q, &i), WH_OK);
    return i;
}

/* Jobs survive the engine: written at the end of the poll round, stored
 * once per event, delivered by the next engine with the same delivery ids. */
static void test_sqlite_jobs_survive_restart(void)
{
    th_tmp_init("whsq");
    const char *db = th_tmp_path("q.db");
    fx f;
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    so.producer_only = 1;
    fx_init(&f, db, &so);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    add_ep(&f, "b", "http://127.0.0.1:9/b");
    const char *ids[3] = {"evt-1", "evt-2", "evt-3"};
    for (int i = 0; i < 3; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%d}", i);
        CHECK_EQ(wh_emit(f.e, "t", NULL, data, strlen(data), ids[i]), 2);
    }
    /* buffered until the poll round ends */
    CHECK_EQ(info_of(f.q).pending, 6);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 0);
    wh_poll(f.e, 0);
    CHECK_EQ(info_of(f.q).pending, 0);
    CHECK_EQ(wh_scripted_count(f.t), 0); /* producer only: nothing sent */
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 6);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_events"), 3); /* payload once */
    sqlite3 *h;
    CHECK_EQ(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *jm;
    CHECK_EQ(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &jm, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_step(jm), SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(jm, 0), "wal");
    sqlite3_finalize(jm);
    sqlite3_close(h);

    /* a new engine on the file delivers all six, ids unchanged */
    fx_restart(&f, db, NULL);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    add_ep(&f, "b", "http://127.0.0.1:9/b");
    CHECK_EQ(wh_timeout_ms(f.e), 0);
    run_for(&f, 100);
    CHECK_EQ(wh_scripted_count(f.t), 6);
    CHECK_EQ(f.delivered, 6);
    for (size_t i = 0; i < 6; i++) {
        const char *id = wh_scripted_header(f.t, i, "webhook-id");
        CHECK(id && strncmp(id, "evt-", 4) == 0);
        wh_scripted_request r;
        CHECK_EQ(wh_scripted_get(f.t, i, &r), WH_OK);
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%c}", id[4] - 1);
        CHECK_EQ(r.body_len, strlen(want));
        CHECK(memcmp(r.body, want, r.body_len) == 0);
    }
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 0);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_events"), 0);
    CHECK_EQ(db_int(db, "SELECT jobs FROM wh_counts WHERE k=0"), 0);
    fx_done(&f);
    th_tmp_cleanup();
}

/* A failed attempt is stored with its count and due time: after a restart
 * the next attempt is number 2, at the scheduled time, with the same id. */
static void test_sqlite_retry_survives_restart(void)
{
    th_tmp_init("whsq");
    const char *db = th_tmp_path("q.db");
    fx f;
    fx_init(&f, db, NULL);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, NULL, 1);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, "retry-me"), 1);
    wh_poll(f.e, 0);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(db_int(db, "SELECT attempts FROM wh_jobs"), 1);
    /* default retry_initial_ms 2000 */
    CHECK_EQ(db_int(db, "SELECT due FROM wh_jobs"), WALL0 + 2000);
    CHECK_EQ(db_int(db, "SELECT lease_until FROM wh_jobs"), 0);

    fx_restart(&f, db, NULL);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    run_for(&f, 1900);
    CHECK_EQ(wh_scripted_count(f.t), 1); /* not before its time */
    run_for(&f, 200);
    CHECK_EQ(wh_scripted_count(f.t), 2);
    CHECK_STR(wh_scripted_header(f.t, 1, "webhook-id"), "retry-me");
    CHECK_STR(wh_scripted_header(f.t, 1, "webhook-attempt"), "2");
    wh_scripted_request r;
    CHECK_EQ(wh_scripted_get(f.t, 1, &r), WH_OK);
    CHECK_INT(r.submitted_ms, >=, 1000 + 2000);
    CHECK_EQ(f.delivered, 1);
    fx_done(&f);
    th_tmp_cleanup();
}

/* A claim is a lease: another queue on the file cannot take the job while
 * the lease runs, and takes it (same id, same payload) once it expired --
 * what happens after a process dies holding claims. */
static void test_sqlite_lease_expires(void)
{
    th_tmp_init("whsq");
    const char *db = th_tmp_path("q.db");
    wh_manual_clock *clock = wh_manual_clock_new(1000, WALL0);
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    so.clock = wh_manual_clock_vtable(clock);
    so.lease_ms = 5000;
    wh_queue *q1, *q2;
    CHECK_EQ(wh_queue_sqlite_new(db, &so, &q1), WH_OK);
    CHECK_EQ(wh_queue_sqlite_new(db, &so, &q2), WH_OK);
    CHECK_EQ(q1->bind(q1->user, 0, "ep"), WH_OK);
    CHECK_EQ(q2->bind(q2->user, 3, "ep"), WH_OK); /* another slot, same id */
    wh_event_view ev = {"lease-1", "t", "ch", "{\"x\":1}", 7, WALL0};
    uint32_t slot = 0;
    const char *epid = "ep";
    CHECK_EQ(q1->enqueue(q1->user, &ev, &slot, &epid, 1, 1000), WH_OK);
    CHECK_EQ(q1->commit(q1->user), WH_OK);
    CHECK_EQ(q2->next_due(q2->user, 3), 1000);

    wh_job j1, j2;
    CHECK_EQ(q1->claim(q1->user, 0, 1000, &j1, 1), 1);
    CHECK_STR(j1.ev.id, "lease-1");
    CHECK_EQ(q2->claim(q2->user, 3, 1000, &j2, 1), 0);
    CHECK_EQ(q2->next_due(q2->user, 3), INT64_MAX);
    wh_manual_clock_advance(clock, 4000);
    CHECK_EQ(q2->claim(q2->user, 3, 5000, &j2, 1), 0);
    /* q1 "dies": it never renews, acks or commits again */
    wh_manual_clock_advance(clock, 1001);
    CHECK_EQ(q2->claim(q2->user, 3, 6001, &j2, 1), 1);
    CHECK_STR(j2.ev.id, "lease-1");
    CHECK_STR(j2.ev.channel, "ch");
    CHECK_EQ(j2.ev.data_len, 7);
    CHECK(memcmp(j2.ev.data, "{\"x\":1}", 7) == 0);
    CHECK_EQ(j2.ev.created_ms, WALL0);
    CHECK_EQ(j2.endpoint, 3);
    q2->ack(q2->user, &j2);
    CHECK_EQ(q2->commit(q2->user), WH_OK);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 0);
    /* the late ack of the dead owner changes nothing */
    q1->ack(q1->user, &j1);
    CHECK_EQ(q1->commit(q1->user), WH_OK);
    CHECK_EQ(db_int(db, "SELECT jobs FROM wh_counts WHERE k=0"), 0);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_events"), 0);
    wh_queue_free(q1);
    wh_queue_free(q2);
    wh_manual_clock_free(clock);
    th_tmp_cleanup();
}

/* While a request runs longer than the lease, the lease is renewed, so no
 * other process takes the job. */
static void test_sqlite_lease_renewed_while_in_flight(void)
{
    th_tmp_init("whsq");
    const char *db = th_tmp_path("q.db");
    fx f;
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    so.lease_ms = 3000;
    fx_init(&f, db, &so);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, 8000, NULL, 1); /* 8 s answer */
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, "long"), 1);
    run_for(&f, 100);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_sqlite_options so2;
    wh_sqlite_options_init(&so2);
    so2.clock = wh_manual_clock_vtable(f.clock);
    wh_queue *other;
    CHECK_EQ(wh_queue_sqlite_new(db, &so2, &other), WH_OK);
    CHECK_EQ(other->bind(other->user, 0, "a"), WH_OK);
    wh_job j;
    for (int s = 0; s < 7; s++) {
        run_for(&f, 1000);
        int64_t now = wh_manual_clock_now(f.clock);
        CHECK_EQ(other->claim(other->user, 0, now, &j, 1), 0);
    }
    run_for(&f, 1500);
    CHECK_EQ(f.delivered, 1);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 0);
    wh_queue_free(other);
    fx_done(&f);
    th_tmp_cleanup();
}

/* Jobs of an endpoint that is not configured after a restart are kept,
 * counted and logged; configured again, it gets them. */
static void test_sqlite_unbound_jobs_kept_and_reported(void)
{
    th_tmp_init("whsq");
    const char *db = th_tmp_path("q.db");
    fx f;
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    so.producer_only = 1;
    fx_init(&f, db, &so);
    add_ep(&f, "keep", "http://127.0.0.1:9/k");
    add_ep(&f, "gone", "http://127.0.0.1:9/g");
    for (int i = 0; i < 4; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 2);
    wh_poll(f.e, 0);

    fx_restart(&f, db, NULL);
    add_ep(&f, "keep", "http://127.0.0.1:9/k");
    f.log.len = 0;
    f.log.text[0] = '\0';
    run_for(&f, 200);
    CHECK_EQ(f.delivered, 4);
    CHECK_EQ(f.dead, 0);
    wh_queue_info i = info_of(f.q);
    CHECK_EQ(i.unbound_jobs, 4);
    CHECK_EQ(i.jobs, 4);
    CHECK(strstr(f.log.text, "4 stored job(s) for endpoint \"gone\"") != NULL);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.queued, 0); /* not this engine's to deliver */
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 4);

    fx_restart(&f, db, NULL);
    add_ep(&f, "gone", "http://127.0.0.1:9/g");
    run_for(&f, 200);
    CHECK_EQ(f.delivered, 8);
    CHECK_EQ(info_of(f.q).jobs, 0);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_events"), 0);
    fx_done(&f);
    th_tmp_cleanup();
}

/* The size bound: WH_E_FULL with a message, nothing stored for the refused
 * event, room again after deliveries. */
static void test_sqlite_full(void)
{
    th_tmp_init("whsq");
    const char *db = th_tmp_path("q.db");
    fx f;
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    so.max_jobs = 5;
    fx_init(&f, db, &so);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0); /* hang */
    for (int i = 0; i < 5; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), WH_E_FULL);
    CHECK(strstr(wh_last_error(f.e), "queue is full") != NULL);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), WH_E_FULL);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 5);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.rejected, 2);
    CHECK_EQ(st.emitted, 5);
    fx_done(&f);

    /* max_bytes counts payload bytes */
    db = th_tmp_path("q2.db");
    wh_sqlite_options_init(&so);
    so.max_bytes = 10;
    so.producer_only = 1;
    fx_init(&f, db, &so);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    CHECK_EQ(wh_emit(f.e, "t", NULL, "[1,2,3]", 7, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "[1,2,3]", 7, NULL), WH_E_FULL);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "[1]", 3, NULL), 1);
    wh_poll(f.e, 0);
    CHECK_EQ(db_int(db, "SELECT bytes FROM wh_counts WHERE k=0"), 10);
    fx_done(&f);
    th_tmp_cleanup();
}

/* Freeing the engine keeps queued and in-flight jobs (nothing reported as
 * cancelled); removing an endpoint still cancels its jobs. */
static void test_sqlite_engine_free_keeps_jobs(void)
{
    th_tmp_init("whsq");
    const char *db = th_tmp_path("q.db");
    fx f;
    fx_init(&f, db, NULL);
    add_ep(&f, "a", "http://127.0.0.1:9/a");
    int hb = add_ep(&f, "b", "http://127.0.0.1:9/b");
    wh_scripted_rule(f.t, NULL, 200, WH_OK, -1, NULL, 0); /* hang */
    for (int i = 0; i < 40; i++) CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 2);
    wh_poll(f.e, 0);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.in_flight, 60); /* 30 per endpoint */
    CHECK_EQ(wh_endpoint_remove(f.e, hb), WH_OK);
    CHECK_EQ(f.dead, 40);
    wh_poll(f.e, 0);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 40);
    wh_engine_free(f.e);
    f.e = NULL;
    CHECK_EQ(f.dead, 40);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 40);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs WHERE lease_until<>0"), 0);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_events"), 40);
    fx_done(&f);
    th_tmp_cleanup();
}

static void test_sqlite_bad_arguments(void)
{
    wh_queue *q = (wh_queue *)1;
    CHECK_EQ(wh_queue_sqlite_new(NULL, NULL, &q), WH_E_INVAL);
    CHECK(q == NULL);
    CHECK_EQ(wh_queue_sqlite_new("", NULL, &q), WH_E_INVAL);
    logbuf lb = {{0}, 0};
    wh_sqlite_options so;
    wh_sqlite_options_init(&so);
    so.on_log = on_log;
    so.log_user = &lb;
    CHECK_EQ(wh_queue_sqlite_new("/nonexistent-dir/q.db", &so, &q), WH_E_IO);
    CHECK(strstr(lb.text, "/nonexistent-dir/q.db") != NULL);
    so.struct_size = 2;
    CHECK_EQ(wh_queue_sqlite_new("/tmp/x.db", &so, &q), WH_E_VERSION);
    wh_queue_info i;
    i.struct_size = sizeof i;
    CHECK_EQ(wh_queue_info_get(NULL, &i), WH_E_INVAL);
    wh_queue_free(NULL);
}

/* The "queue" member of the configuration. */
static void test_sqlite_from_config(void)
{
    th_tmp_init("whsq");
    char json[512];
    snprintf(json, sizeof json,
             "{\"endpoints\":[{\"id\":\"a\",\"url\":\"http://127.0.0.1:9/a\"}],"
             "\"queue\":{\"type\":\"sqlite\",\"path\":\"%s\",\"lease_ms\":2000,"
             "\"max_jobs\":3,\"synchronous\":\"full\"}}", th_tmp_path("c.db"));
    wh_queue *q = NULL;
    char err[256];
    CHECK_EQ(wh_config_queue_new(json, strlen(json), NULL, NULL, &q, err, sizeof err), WH_OK);
    CHECK(q && q->version >= 2 && (q->flags & WH_QUEUE_DURABLE));
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.queue = q;
    o.queue_owned = 1;
    wh_engine *e = wh_engine_new(&o, NULL);
    CHECK(e);
    CHECK_EQ(wh_config_load(e, json, strlen(json)), WH_OK); /* "queue" accepted */
    for (int i = 0; i < 3; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), WH_E_FULL); /* max_jobs 3 */
    wh_engine_free(e);

    static const struct {
        const char *queue, *msg;
    } bad[] = {
        {"{\"type\":\"disk\"}", "queue.type: expected"},
        {"{\"type\":\"sqlite\"}", "queue.path: required"},
        {"{\"type\":\"sqlite\",\"path\":\"/tmp/x\",\"lease_ms\":0}", "queue.lease_ms: expected a positive integer"},
        {"{\"type\":\"sqlite\",\"path\":\"/tmp/x\",\"lease\":5}", "queue: unknown key \"lease\""},
        {"{\"type\":\"sqlite\",\"path\":\"/tmp/x\",\"synchronous\":\"off\"}", "queue.synchronous"},
        {"{\"type\":\"memory\",\"path\":\"/tmp/x\"}", "unknown key \"path\" for type \"memory\""},
        {"{\"type\":\"redis\",\"url\":\"http://x\"}", "queue.url: expected redis://HOST:PORT"},
        {"[]", "queue: expected an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json, "{\"queue\":%s}", bad[i].queue);
        q = NULL;
        err[0] = '\0';
        CHECK_EQ(wh_config_queue_new(json, strlen(json), NULL, NULL, &q, err, sizeof err),
                 WH_E_CONFIG);
        CHECK(q == NULL);
        if (!strstr(err, bad[i].msg))
            th_fail(__FILE__, __LINE__, "\"%s\" not in \"%s\"", bad[i].msg, err);
        /* wh_config_load rejects it too, naming the key */
        e = wh_engine_new(NULL, NULL);
        CHECK(e);
        snprintf(json, sizeof json, "{\"endpoints\":[],\"queue\":%s}", bad[i].queue);
        CHECK_EQ(wh_config_load(e, json, strlen(json)), WH_E_CONFIG);
        if (!strstr(wh_last_error(e), bad[i].msg))
            th_fail(__FILE__, __LINE__, "\"%s\" not in \"%s\"", bad[i].msg, wh_last_error(e));
        wh_engine_free(e);
    }
    /* no "queue": the default */
    q = (wh_queue *)1;
    CHECK_EQ(wh_config_queue_new("{\"endpoints\":[]}", 16, NULL, NULL, &q, err, sizeof err),
             WH_OK);
    CHECK(q == NULL);
    CHECK_EQ(wh_config_queue_new("{", 1, NULL, NULL, &q, err, sizeof err), WH_E_JSON);
    th_tmp_cleanup();
}

/* ---- real processes ------------------------------------------------------------ */

/* Per-event tally of what the receiver got: the body holds {"i":N}. */
typedef struct tally {
    int n;
    int *copies;
    char (*id)[160];
    int64_t *first_at;
    int mismatched_ids;   /* a copy with another id than the first */
    int bad_bodies;
    long total;
} tally;

static tally tally_requests(th_recv *r, int n)
{
    tally t;
    memset(&t, 0, sizeof t);
    t.n = n;
    t.copies = calloc((size_t)n, sizeof *t.copies);
    t.id = calloc((size_t)n, sizeof *t.id);
    t.first_at = calloc((size_t)n, sizeof *t.first_at);
    CHECK(t.copies && t.id && t.first_at);
    size_t count = th_recv_count(r);
    for (size_t k = 0; k < count; k++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, k, &q), 0);
        t.total++;
        const char *p = strstr(q.body, "\"i\":");
        int i = p ? atoi(p + 4) : -1;
        if (i < 0 || i >= n) {
            t.bad_bodies++;
            continue;
        }
        if (t.copies[i]++ == 0) {
            snprintf(t.id[i], sizeof t.id[0], "%s", q.webhook_id);
            t.first_at[i] = q.at_ms;
        } else if (strcmp(t.id[i], q.webhook_id) != 0) {
            t.mismatched_ids++;
        }
    }
    return t;
}

static void tally_free(tally *t)
{
    free(t->copies);
    free(t->id);
    free(t->first_at);
}

static void write_events(const char *path, int n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"event\":\"order.paid\",\"data\":{\"i\":%d,\"pad\":\"%032d\"}}\n", i, i);
    CHECK_EQ(fclose(f), 0);
}

/* Done-when 1: whsend emits 20,000 events through the SQLite queue to a
 * slow receiver and is killed with SIGKILL mid-way; restarted on the same
 * file, every event arrives at least once, each duplicate with the id of its
 * first copy, and no more duplicates than requests could be in flight. */
static void test_sqlite_kill9_restart_delivers_everything(void)
{
    enum { N = 20000, IN_FLIGHT = 20 };
    th_tmp_init("whsq");
    th_recv_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.delay_ms = 10;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *db = th_tmp_path("q.db"), *events = th_tmp_path("events.ndjson");
    const char *config = th_tmp_path("config.json"), *err1 = th_tmp_path("err1");
    const char *err2 = th_tmp_path("err2"), *out2 = th_tmp_path("out2");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"endpoints\":[{\"id\":\"slow\",\"url\":\"%s\",\"max_in_flight\":%d}],"
             "\"queue\":{\"type\":\"sqlite\",\"path\":\"%s\",\"lease_ms\":1000}}",
             th_recv_url(r), IN_FLIGHT, db);
    th_write_file(config, cfg);
    write_events(events, N);

    const char *exe = th_example("whsend");
    char *argv1[] = {"whsend", "-q", "-c", (char *)config, (char *)events, NULL};
    pid_t pid = th_spawn(exe, argv1, NULL, NULL, err1);
    /* every event accepted and stored, some delivered: kill it */
    int64_t t0 = th_now_ms();
    while (!th_file_contains(err1, "input done") || th_recv_count(r) < 3000) {
        if (th_now_ms() - t0 > 60000) {
            th_kill9(pid);
            char *e = th_read_file(err1);
            th_fail(__FILE__, __LINE__, "no progress: %zu received; stderr: %s",
                    th_recv_count(r), e);
        }
        th_sleep_ms(5);
    }
    CHECK(th_file_contains(err1, "20000 event(s) accepted and stored"));
    kill(pid, SIGKILL);
    int64_t kill_ms = th_now_ms();
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    size_t at_kill = th_recv_count(r);
    CHECK_INT(at_kill, <, N);
    th_sleep_ms(50); /* answers still being written by the receiver */
    size_t unanswered = 0;
    for (size_t k = 0; k < at_kill; k++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, k, &q), 0);
        if (!q.answered) unanswered++;
    }

    /* restart on the same file: a worker that stops when nothing is left */
    char *argv2[] = {"whsend", "-q", "-c", (char *)config, "--worker", "--idle-exit", "1500",
                     NULL};
    pid = th_spawn(exe, argv2, NULL, out2, err2);
    int status = th_wait_exit(pid, 90000);
    char *e2 = th_read_file(err2);
    if (status != 0) th_fail(__FILE__, __LINE__, "worker exited %d: %s", status, e2);
    free(e2);

    tally t = tally_requests(r, N);
    int missing = 0, dups = 0, dup_late = 0;
    for (int i = 0; i < N; i++) {
        if (t.copies[i] == 0) missing++;
        if (t.copies[i] > 1) {
            dups += t.copies[i] - 1;
            /* a duplicate's first copy was in flight at the kill */
            if (t.first_at[i] < kill_ms - 2000) dup_late++;
        }
    }
    printf("    sqlite kill -9: %zu received before the kill, %zu of them unanswered; "
           "%ld requests in all, %d duplicates (max_in_flight %d)\n",
           at_kill, unanswered, t.total, dups, IN_FLIGHT);
    CHECK_EQ(t.bad_bodies, 0);
    CHECK_EQ(missing, 0);
    CHECK_EQ(t.mismatched_ids, 0);
    CHECK_INT(dups, <=, IN_FLIGHT);
    CHECK_EQ(dup_late, 0);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_jobs"), 0);
    CHECK_EQ(db_int(db, "SELECT count(*) FROM wh_events"), 0);
    tally_free(&t);
    th_recv_stop(r);
    th_tmp_cleanup();
}

/* whsend --producer stores events in the file and exits; two --worker
 * processes share the file and deliver each event exactly once. */
static void test_sqlite_producer_and_two_workers(void)
{
    enum { N = 3000 };
    th_tmp_init("whsq");
    th_recv_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.delay_ms = 2;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *db = th_tmp_path("q.db"), *events = th_tmp_path("events.ndjson");
    const char *config = th_tmp_path("config.json");
    const char *outp = th_tmp_path("outp"), *errp = th_tmp_path("errp");
    const char *outw[2] = {th_tmp_path("outw1"), th_tmp_path("outw2")};
    const char *errw[2] = {th_tmp_path("errw1"), th_tmp_path("errw2")};
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"endpoints\":[{\"id\":\"ep\",\"url\":\"%s\",\"max_in_flight\":8}]}",
             th_recv_url(r));
    th_write_file(config, cfg);
    write_events(events, N);
    char spec[256];
    snprintf(spec, sizeof spec, "sqlite:%s", db);
    const char *exe = th_example("whsend");

    pid_t w[2];
    for (int k = 0; k < 2; k++) {
        char *argv[] = {"whsend", "-q", "-c", (char *)config, "--queue", spec, "--worker",
                        "--idle-exit", "2000", NULL};
        w[k] = th_spawn(exe, argv, NULL, outw[k], errw[k]);
    }
    char *argvp[] = {"whsend", "-q", "-c", (char *)config, "--queue", spec, "--producer",
                     (char *)events, NULL};
    pid_t p = th_spawn(exe, argvp, NULL, outp, errp);
    int ps = th_wait_exit(p, 60000);
    char *pout = th_read_file(outp), *perr = th_read_file(errp);
    if (ps != 0) th_fail(__FILE__, __LINE__, "producer exited %d: %s", ps, perr);
    CHECK(strstr(pout, "\"emitted\":3000,\"delivered\":0") != NULL);
    free(pout);
    free(perr);
    long delivered[2];
    for (int k = 0; k < 2; k++) {
        int ws = th_wait_exit(w[k], 60000);
        char *o = th_read_file(outw[k]), *e = th_read_file(errw[k]);
        if (ws != 0) th_fail(__FILE__, __LINE__, "worker %d exited %d: %s", k, ws, e);
        const char *d = strstr(o, "\"delivered\":");
        CHECK(d);
        delivered[k] = atol(d + 12);
        free(o);
        free(e);
    }
    printf("    workers delivered %ld + %ld\n", delivered[0], delivered[1]);
    CHECK_EQ(delivered[0] + delivered[1], N);
    CHECK_INT(delivered[0], >, 0);
    CHECK_INT(delivered[1], >, 0);
    tally t = tally_requests(r, N);
    for (int i = 0; i < N; i++)
        if (t.copies[i] != 1) th_fail(__FILE__, __LINE__, "event %d received %d times", i, t.copies[i]);
    CHECK_EQ(t.total, N);
    tally_free(&t);
    th_recv_stop(r);
    th_tmp_cleanup();
}

TH_MAIN(TH_CASE(test_sqlite_jobs_survive_restart), TH_CASE(test_sqlite_retry_survives_restart),
        TH_CASE(test_sqlite_lease_expires), TH_CASE(test_sqlite_lease_renewed_while_in_flight),
        TH_CASE(test_sqlite_unbound_jobs_kept_and_reported), TH_CASE(test_sqlite_full),
        TH_CASE(test_sqlite_engine_free_keeps_jobs), TH_CASE(test_sqlite_bad_arguments),
        TH_CASE(test_sqlite_from_config), TH_CASE(test_sqlite_kill9_restart_delivers_everything),
        TH_CASE(test_sqlite_producer_and_two_workers))
