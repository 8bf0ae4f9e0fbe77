/* The "queue" object of a configuration document: which backend, and its
 * options (wh_config_queue_new; wh_config_load checks it too). */
#include "config.h"

#include <webhook/redis.h>
#include <webhook/sqlite.h>

#include <stdio.h>
#include <string.h>

#define Q(member) offsetof(wh__cfg_queue, member)
#define BIG (UINT64_C(1) << 52)
#define EVENTS_MAX (SIZE_MAX > UINT32_MAX ? BIG : (uint64_t)UINT32_MAX)

static wh__cfg_queue *q_of(void *target) { return target; }

/* "type" picked the table before the keys are read. */
static int type_seen(const cJSON *item, const char *path, void *target,
                     wh__cfg_err *err)
{
    (void)item, (void)path, (void)target, (void)err;
    return WH_OK;
}

static int parse_synchronous(const cJSON *item, const char *path, void *target,
                             wh__cfg_err *err)
{
    if (!cJSON_IsString(item) || (strcmp(item->valuestring, "normal") != 0 &&
                                  strcmp(item->valuestring, "full") != 0))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected \"normal\" or \"full\"",
                            path);
    q_of(target)->synchronous = item->valuestring;
    return WH_OK;
}

/* "redis://HOST[:PORT][/]" */
static int parse_url(const cJSON *item, const char *path, void *target,
                     wh__cfg_err *err)
{
    static const char scheme[] = "redis://";
    wh__cfg_queue *c = q_of(target);
    const char *url = NULL;
    int rc = wh__cfg_string(item, path, 1, &url, err);
    if (rc != WH_OK) return rc;
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected redis://HOST:PORT", path);
    const char *h = url + sizeof scheme - 1;
    const char *colon = strrchr(h, ':');
    const char *end = h + strlen(h);
    if (end > h && end[-1] == '/') end--;
    const char *hend = colon && colon < end ? colon : end;
    if (hend == h || (size_t)(hend - h) >= sizeof c->host ||
        memchr(h, '/', (size_t)(hend - h)) || memchr(h, '@', (size_t)(hend - h)))
        return wh__cfg_fail(err, WH_E_CONFIG, "%s: expected redis://HOST:PORT", path);
    memcpy(c->host, h, (size_t)(hend - h));
    c->host[hend - h] = '\0';
    c->url = url;
    if (colon && colon < end) {
        long port = 0;
        const char *p = colon + 1;
        if (p == end) return wh__cfg_fail(err, WH_E_CONFIG, "%s: missing port", path);
        for (; p < end; p++) {
            if (*p < '0' || *p > '9' || port > 65535)
                return wh__cfg_fail(err, WH_E_CONFIG, "%s: bad port", path);
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            return wh__cfg_fail(err, WH_E_CONFIG, "%s: bad port", path);
        c->port = (int)port;
    }
    return WH_OK;
}

/* Each key once; the tables per type list the ones that apply. */
#define K_TYPE {"type", WH__CFG_FN, 0, 0, 0, NULL, type_seen, NULL, \
    "`memory`, `sqlite`, `redis`", "the backend (required)"}
#define K_MAX_EVENTS {"max_events", WH__CFG_U64, Q(max_events), 1, EVENTS_MAX, NULL, \
    NULL, NULL, NULL, "memory: events held (default 1000000)"}
#define K_MAX_BYTES {"max_bytes", WH__CFG_U64, Q(max_bytes), 1, BIG, NULL, NULL, NULL, \
    NULL, "memory, sqlite: payload bytes held"}
#define K_PATH {"path", WH__CFG_STR, Q(path), 1, 0, NULL, NULL, NULL, NULL, \
    "sqlite: the database file (required)"}
#define K_MAX_JOBS {"max_jobs", WH__CFG_U64, Q(max_jobs), 1, BIG, NULL, NULL, NULL, \
    NULL, "sqlite, redis: jobs held"}
#define K_LEASE {"lease_ms", WH__CFG_U32, Q(lease_ms), 1, UINT32_MAX, NULL, NULL, \
    NULL, NULL, "sqlite, redis: claim lease (default 30000)"}
#define K_POLL {"poll_interval_ms", WH__CFG_U32, Q(poll_interval_ms), 1, UINT32_MAX, \
    NULL, NULL, NULL, NULL, "sqlite, redis: how often the store is read"}
#define K_SYNC {"synchronous", WH__CFG_FN, 0, 0, 0, NULL, parse_synchronous, NULL, \
    "`normal`, `full`", "sqlite: `full` also survives power loss"}
#define K_PRODUCER {"producer_only", WH__CFG_BOOL, Q(producer_only), 0, 0, NULL, NULL, \
    NULL, NULL, "sqlite, redis: store events, deliver nothing"}
#define K_BUSY {"busy_timeout_ms", WH__CFG_U32, Q(busy_timeout_ms), 1, UINT32_MAX, \
    NULL, NULL, NULL, NULL, "sqlite: wait for a lock"}
#define K_URL {"url", WH__CFG_FN, 0, 0, 0, NULL, parse_url, NULL, \
    "`redis://HOST[:PORT]`", "redis: the server"}
#define K_PREFIX {"prefix", WH__CFG_STR, Q(prefix), 1, 0, NULL, NULL, NULL, NULL, \
    "redis: key prefix (default `wh`)"}
#define K_CONSUMER {"consumer", WH__CFG_STR, Q(consumer), 1, 0, NULL, NULL, NULL, \
    NULL, "redis: consumer name (default host:pid)"}
#define K_TIMEOUT {"timeout_ms", WH__CFG_U32, Q(timeout_ms), 1, UINT32_MAX, NULL, \
    NULL, NULL, NULL, "redis: how long a command may go unanswered before Redis counts as away (default 50)"}
#define K_BUFFERED {"max_buffered", WH__CFG_U64, Q(max_buffered), 1, BIG, NULL, NULL, \
    NULL, NULL, "redis: jobs kept locally while Redis is away"}
#define K_RECONNECT {"reconnect_ms", WH__CFG_U32, Q(reconnect_ms), 1, UINT32_MAX, \
    NULL, NULL, NULL, NULL, "redis: wait between reconnections"}
#define K_SPOOL {"spool", WH__CFG_STR, Q(spool), 1, 0, NULL, NULL, NULL, NULL, \
    "redis: SQLite file for events accepted while Redis is away"}

static const wh__cfg_key memory_keys[] = {K_TYPE, K_MAX_EVENTS, K_MAX_BYTES};
static const wh__cfg_key sqlite_keys[] = {K_TYPE, K_PATH, K_MAX_JOBS, K_MAX_BYTES,
                                          K_LEASE, K_POLL, K_SYNC, K_PRODUCER,
                                          K_BUSY};
static const wh__cfg_key redis_keys[] = {K_TYPE, K_URL, K_PREFIX, K_CONSUMER, K_LEASE,
                                         K_POLL, K_TIMEOUT, K_BUFFERED, K_MAX_JOBS,
                                         K_PRODUCER, K_RECONNECT, K_SPOOL};
static const wh__cfg_key all_keys[] = {
    K_TYPE, K_PATH, K_URL, K_MAX_EVENTS, K_MAX_BYTES, K_MAX_JOBS, K_LEASE, K_POLL,
    K_SYNC, K_PRODUCER, K_BUSY, K_PREFIX, K_CONSUMER, K_TIMEOUT, K_BUFFERED,
    K_RECONNECT, K_SPOOL};

static int sqlite_after(const cJSON *obj, const char *path, void *target,
                        wh__cfg_err *err)
{
    (void)obj;
    if (!q_of(target)->path)
        return wh__cfg_fail(err, WH_E_CONFIG, "%s.path: required for type \"sqlite\"",
                            path);
    return WH_OK;
}

#define N(a) (sizeof a / sizeof a[0])
static const wh__cfg_table type_tables[3] = {
    {memory_keys, N(memory_keys), NULL, NULL, "for type \"memory\""},
    {sqlite_keys, N(sqlite_keys), NULL, sqlite_after, "for type \"sqlite\""},
    {redis_keys, N(redis_keys), NULL, NULL, "for type \"redis\""},
};
/* Every key of every type, for the documentation. */
const wh__cfg_table wh__cfg_queue_table = {all_keys, N(all_keys), NULL, NULL, NULL};

int wh__cfg_queue_parse(const cJSON *obj, wh__cfg_queue *c, wh__cfg_err *err)
{
    static const char *const types[] = {"memory", "sqlite", "redis"};
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(obj))
        return wh__cfg_fail(err, WH_E_CONFIG, "queue: expected an object with a "
                            "\"type\"");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    size_t t = 0;
    wh__cfg_err ignored = {WH_OK, ""};
    if (!type || wh__cfg_choice(type, "queue.type", types, 3, &t, &ignored) != WH_OK)
        return wh__cfg_fail(err, WH_E_CONFIG, "queue.type: expected \"memory\", "
                            "\"sqlite\" or \"redis\"");
    c->type = (wh__cfg_qtype)t;
    c->type_name = types[t];
    return wh__cfg_object(obj, "queue", &type_tables[t], c, err);
}

int wh__cfg_queue_create(const wh__cfg_queue *c, wh_log_fn on_log, void *log_user,
                         wh_queue **out, wh__cfg_err *err)
{
    int rc;
    if (c->type == WH__Q_MEMORY) {
        rc = wh__queue_memory_new(c->max_events ? (size_t)c->max_events : 1000000,
                                  c->max_bytes ? (size_t)c->max_bytes : ((size_t)1 << 30),
                                  out);
        if (rc != WH_OK) wh__cfg_fail(err, rc, "queue: %s", wh_strerror(rc));
        return rc;
    }
    if (c->type == WH__Q_SQLITE) {
        wh_sqlite_options o;
        wh_sqlite_options_init(&o);
        if (c->max_jobs) o.max_jobs = c->max_jobs;
        if (c->max_bytes) o.max_bytes = c->max_bytes;
        if (c->lease_ms) o.lease_ms = c->lease_ms;
        if (c->poll_interval_ms) o.poll_interval_ms = c->poll_interval_ms;
        if (c->busy_timeout_ms) o.busy_timeout_ms = c->busy_timeout_ms;
        if (c->synchronous) o.synchronous_full = strcmp(c->synchronous, "full") == 0;
        o.producer_only = c->producer_only;
        o.on_log = on_log;
        o.log_user = log_user;
        rc = wh_queue_sqlite_new(c->path, &o, out);
        if (rc == WH_E_UNSUPPORTED)
            wh__cfg_fail(err, rc, "queue.type: \"sqlite\": %s (built without SQLite)",
                         wh_strerror(rc));
        else if (rc != WH_OK)
            wh__cfg_fail(err, rc, "queue.path: cannot open %.200s: %s", c->path,
                         wh_strerror(rc));
        return rc;
    }
    wh_redis_options o;
    wh_redis_options_init(&o);
    if (c->url) o.host = c->host;
    if (c->port) o.port = c->port;
    if (c->prefix) o.prefix = c->prefix;
    if (c->consumer) o.consumer = c->consumer;
    if (c->lease_ms) o.lease_ms = c->lease_ms;
    if (c->poll_interval_ms) o.poll_interval_ms = c->poll_interval_ms;
    if (c->timeout_ms) o.timeout_ms = c->timeout_ms;
    if (c->max_buffered) o.max_buffered = c->max_buffered;
    if (c->max_jobs) o.max_jobs = c->max_jobs;
    if (c->reconnect_ms) o.reconnect_ms = c->reconnect_ms;
    o.spool_path = c->spool;
    o.producer_only = c->producer_only;
    o.on_log = on_log;
    o.log_user = log_user;
    rc = wh_queue_redis_new(&o, out);
    if (rc == WH_E_UNSUPPORTED)
        wh__cfg_fail(err, rc, "queue.type: \"redis\": %s (built without hiredis)",
                     wh_strerror(rc));
    else if (rc != WH_OK)
        wh__cfg_fail(err, rc, "queue: %s", wh_strerror(rc));
    return rc;
}
