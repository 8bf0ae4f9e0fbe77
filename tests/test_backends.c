/* What a build holds: every optional backend either works or, when the build
 * left it out, its constructor returns WH_E_UNSUPPORTED (and the config
 * loader names it), as WH_PARTS says (set by make check and meson test: the
 * parts this build has, e.g. "curl sqlite redis mhd").  Also the queue
 * vtable's info method (version 3) behind wh_queue_info_get. */
#include "fixture.h"
#include <webhook/curl.h>
#include <webhook/plugin.h>
#include <webhook/redis.h>
#include <webhook/sqlite.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* 1 when WH_PARTS names `part`, 0 when not; skips the case without it. */
static int built(const char *part)
{
    const char *parts = getenv("WH_PARTS");
    if (!parts) th_skip("WH_PARTS not set (run through make check or meson test)");
    size_t n = strlen(part);
    for (const char *p = parts; (p = strstr(p, part)); p += n)
        if ((p == parts || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) return 1;
    return 0;
}

static void test_status_unsupported_named(void)
{
    CHECK_STR(wh_status_name(WH_E_UNSUPPORTED), "WH_E_UNSUPPORTED");
    CHECK_STR(wh_strerror(WH_E_UNSUPPORTED), "backend not built into this library");
    CHECK_EQ(WH_E_UNSUPPORTED, -23);
    CHECK(WH_STATUS_LAST_ < WH_E_UNSUPPORTED); /* codes appended after it */
}

static void test_curl_transport(void)
{
    wh_curl_options o;
    memset(&o, 0xff, sizeof o);
    wh_curl_options_init(&o);
    CHECK_EQ(o.struct_size, sizeof o);
    wh_transport *t = (wh_transport *)1;
    int rc = wh_transport_curl_new(&o, &t);
    int err = WH_OK;
    wh_engine *e = wh_engine_new(NULL, &err);
    if (built("curl")) {
        CHECK_EQ(rc, WH_OK);
        CHECK(t != NULL);
        CHECK_EQ(t->version, WH_TRANSPORT_VERSION);
        wh_transport_free(t);
        CHECK(e != NULL);
        CHECK_EQ(err, WH_OK);
        wh_engine_free(e);
    } else {
        CHECK_EQ(rc, WH_E_UNSUPPORTED);
        CHECK(t == NULL);
        /* no default transport: the engine says so ... */
        CHECK(e == NULL);
        CHECK_EQ(err, WH_E_UNSUPPORTED);
        /* ... and works with a transport handed in */
        tf f;
        tf_init(&f, 1);
        tf_add_url(&f, TF_URL);
        CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
        tf_run_to_idle(&f, 1000);
        CHECK_EQ(f.delivered, 1);
        tf_done(&f);
    }
}

static void test_sqlite_queue(void)
{
    th_tmp_init("whbk");
    char *path = th_tmp_path("q.db");
    wh_sqlite_options o;
    wh_sqlite_options_init(&o);
    CHECK_EQ(o.struct_size, sizeof o);
    wh_queue *q = (wh_queue *)1;
    int rc = wh_queue_sqlite_new(path, &o, &q);
    char json[300], err[256];
    snprintf(json, sizeof json, "{\"queue\":{\"type\":\"sqlite\",\"path\":\"%s\"}}",
             th_tmp_path("c.db"));
    wh_queue *cq = (wh_queue *)1;
    int crc = wh_config_queue_new(json, strlen(json), NULL, NULL, &cq, err, sizeof err);
    if (built("sqlite")) {
        CHECK_EQ(rc, WH_OK);
        wh_queue_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        CHECK_EQ(wh_queue_info_get(q, &info), WH_OK);
        CHECK_EQ(info.durable, 1);
        CHECK_EQ(info.jobs, 0);
        CHECK_EQ(info.connected, 1);
        CHECK_EQ(q->version, WH_QUEUE_VERSION);
        CHECK(q->info != NULL);
        wh_queue_free(q);
        CHECK_EQ(crc, WH_OK);
        CHECK(cq != NULL);
        wh_queue_free(cq);
    } else {
        CHECK_EQ(rc, WH_E_UNSUPPORTED);
        CHECK(q == NULL);
        CHECK_EQ(crc, WH_E_UNSUPPORTED);
        CHECK(cq == NULL);
        CHECK_STR(err, "queue.type: \"sqlite\": backend not built into this library "
                       "(built without SQLite)");
    }
    th_tmp_cleanup();
}

static void test_redis_queue(void)
{
    wh_redis_options o;
    wh_redis_options_init(&o);
    CHECK_EQ(o.struct_size, sizeof o);
    o.port = 9; /* nothing listens: creation still succeeds (it retries) */
    wh_queue *q = (wh_queue *)1;
    int rc = wh_queue_redis_new(&o, &q);
    char err[256];
    const char *json = "{\"queue\":{\"type\":\"redis\",\"url\":\"redis://127.0.0.1:9\"}}";
    wh_queue *cq = (wh_queue *)1;
    int crc = wh_config_queue_new(json, strlen(json), NULL, NULL, &cq, err, sizeof err);
    if (built("redis")) {
        CHECK_EQ(rc, WH_OK);
        wh_queue_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        CHECK_EQ(wh_queue_info_get(q, &info), WH_OK);
        CHECK_EQ(info.durable, 1);
        CHECK_EQ(info.connected, 0);
        wh_queue_free(q);
        CHECK_EQ(crc, WH_OK);
        wh_queue_free(cq);
    } else {
        CHECK_EQ(rc, WH_E_UNSUPPORTED);
        CHECK(q == NULL);
        CHECK_EQ(crc, WH_E_UNSUPPORTED);
        CHECK(cq == NULL);
        CHECK_STR(err, "queue.type: \"redis\": backend not built into this library "
                       "(built without hiredis)");
    }
}

/* The memory queue answers through its info method: not durable, counts
 * what it holds; a smaller struct_size (an older caller) is not overrun. */
static void test_memory_queue_info(void)
{
    const char *json = "{\"queue\":{\"type\":\"memory\",\"max_events\":10}}";
    wh_queue *q = NULL;
    CHECK_EQ(wh_config_queue_new(json, strlen(json), NULL, NULL, &q, NULL, 0), WH_OK);
    CHECK(q && q->version >= 3 && q->info);
    wh_event_view ev = {"id-1", "t", NULL, "{}", 2, 0};
    uint32_t slots[] = {0, 1};
    const char *ids[] = {"a", "b"};
    CHECK_EQ(q->enqueue(q->user, &ev, slots, ids, 2, 0), WH_OK);
    wh_queue_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_EQ(wh_queue_info_get(q, &info), WH_OK);
    CHECK_EQ(info.jobs, 2);
    CHECK_EQ(info.durable, 0);
    CHECK_EQ(info.connected, 1);
    CHECK_EQ(info.struct_size, sizeof info);
    /* an older caller's struct ends before `durable` */
    unsigned char buf[sizeof info + 8];
    memset(buf, 0xab, sizeof buf);
    wh_queue_info *old = (wh_queue_info *)(void *)buf;
    size_t old_size = offsetof(wh_queue_info, durable);
    old->struct_size = old_size;
    CHECK_EQ(wh_queue_info_get(q, old), WH_OK);
    CHECK_EQ(old->jobs, 2);
    for (size_t i = old_size; i < sizeof buf; i++) CHECK_EQ(buf[i], 0xab);
    wh_queue_free(q);
}

/* A plug-in queue: its info method is what wh_queue_info_get reports; a
 * vtable older than version 3 (no info) is WH_E_INVAL. */
static int my_info(void *user, wh_queue_info *out)
{
    CHECK_EQ(out->jobs, 0); /* zeroed by the library */
    out->jobs = *(uint64_t *)user;
    out->durable = 1;
    out->connected = 1;
    return WH_OK;
}

static void test_plugin_queue_info(void)
{
    uint64_t jobs = 77;
    wh_queue q;
    memset(&q, 0, sizeof q);
    q.version = 3;
    q.user = &jobs;
    q.info = my_info;
    wh_queue_info info;
    memset(&info, 0xff, sizeof info);
    info.struct_size = sizeof info;
    CHECK_EQ(wh_queue_info_get(&q, &info), WH_OK);
    CHECK_EQ(info.jobs, 77);
    CHECK_EQ(info.durable, 1);
    CHECK_EQ(info.unbound_jobs, 0);
    q.version = 2; /* info is not read below version 3 */
    CHECK_EQ(wh_queue_info_get(&q, &info), WH_E_INVAL);
    q.version = 3;
    q.info = NULL;
    CHECK_EQ(wh_queue_info_get(&q, &info), WH_E_INVAL);
    CHECK_EQ(wh_queue_info_get(NULL, &info), WH_E_INVAL);
    info.struct_size = 0;
    q.info = my_info;
    CHECK_EQ(wh_queue_info_get(&q, &info), WH_E_INVAL);
}

TH_MAIN(TH_CASE(test_status_unsupported_named), TH_CASE(test_curl_transport),
        TH_CASE(test_sqlite_queue), TH_CASE(test_redis_queue),
        TH_CASE(test_memory_queue_info), TH_CASE(test_plugin_queue_info))
