/* libwebhook's Node.js addon (plain C N-API, node_api.h; no node-addon-api).
 *
 * The engine is attached to Node's own libuv loop (napi_get_uv_event_loop)
 * with the libuv adapter <webhook/adapters/libuv.h>: sockets and the timer
 * are uv handles, so no JavaScript timer polls and the process exits by
 * itself once nothing is queued or in flight and the engine is closed.
 *
 * Outcomes are produced inside the adapter's uv callbacks (never inside a
 * JavaScript call): the outcome callback appends each one to a JSON text
 * (and its payload to a byte buffer) and signals a uv_async_t, whose
 * callback hands both to JavaScript (index.js parses them and emits
 * 'outcome') through napi_make_callback, so promises resolved by a
 * listener run right after.  The async handle is referenced
 * only while outcomes wait, so it never keeps the process alive on its own.
 *
 * Built with the C compiler against /usr/include/node (Makefile `make node`),
 * linked with libwebhook.a whose symbols stay private to the addon. */
#include <node_api.h>
#include <uv.h>

#include <webhook/webhook.h>
#include <webhook/verify.h>
#ifdef WH_POLL_IN
#include <webhook/adapters/libuv.h>
#define HAVE_LOOP_API 1
#else
#define HAVE_LOOP_API 0
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                            \
    do {                                                                       \
        if ((call) != napi_ok) return NULL;                                    \
    } while (0)

/* ---- outcomes copied out of the engine ------------------------------------- */

/* A growable byte buffer. */
typedef struct wbuf {
    char *p;
    size_t len, cap;
    int failed;
} wbuf;

static int buf_reserve(wbuf *b, size_t more)
{
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->failed = 1; return -1; }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_add(wbuf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) < 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_str(wbuf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* s as a JSON string (quotes included) */
static void buf_json(wbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_reserve(b, strlen(s) * 6 + 2) < 0) return;
    char *w = b->p + b->len;
    *w++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') { *w++ = '\\'; *w++ = (char)*c; }
        else if (*c < 0x20) { *w++ = '\\'; *w++ = 'u'; *w++ = '0'; *w++ = '0'; *w++ = hex[*c >> 4]; *w++ = hex[*c & 15]; }
        else *w++ = (char)*c;
    }
    *w++ = '"';
    b->len = (size_t)(w - b->p);
}

typedef struct engine {
    wh_engine *e;
    napi_env env;
    napi_ref self;          /* weak ref to the JS object; its "_cb" property
                               is the function(json, dataBuffer) to call
                               (no strong reference: a dropped engine can
                               be collected) */
    int refs;               /* the JS object + the uv_async handle */
    napi_async_context actx;
    uv_loop_t *loop;
    uv_async_t async;
    int async_live;
    int attached;
    /* Outcomes waiting for JavaScript: a JSON array text (without its
     * brackets) of objects in their final shape, whose "data" holds the
     * payload's length; the payloads one after the other in `data`.  One
     * JSON.parse and one Buffer per batch instead of ~15 N-API calls per
     * outcome. */
    wbuf json, data;
    size_t n_pending;
} engine;

static void on_outcome(void *user, const wh_outcome *o)
{
    engine *g = user;
    wbuf *b = &g->json;
    char num[160];
    const char *kind = o->kind == WH_DELIVERED ? "delivered" : o->kind == WH_RETRY ? "retry" : "dead";
    buf_str(b, g->n_pending ? ",{\"kind\":\"" : "{\"kind\":\"");
    buf_str(b, kind);
    buf_str(b, "\",\"endpointId\":");
    buf_json(b, o->endpoint_id ? o->endpoint_id : "");
    snprintf(num, sizeof num, ",\"endpoint\":%d,\"url\":", o->endpoint);
    buf_str(b, num);
    buf_json(b, o->url ? o->url : "");
    buf_str(b, ",\"id\":");
    buf_json(b, o->ev.id ? o->ev.id : "");
    buf_str(b, ",\"type\":");
    buf_json(b, o->ev.type ? o->ev.type : "");
    buf_str(b, ",\"channel\":");
    if (o->ev.channel) buf_json(b, o->ev.channel);
    else buf_str(b, "null");
    snprintf(num, sizeof num, ",\"data\":%zu,\"attempt\":%u,\"httpStatus\":%d,\"error\":",
             o->ev.data_len, (unsigned)o->attempt, o->http_status);
    buf_str(b, num);
    if (o->error == WH_OK) buf_str(b, "null,\"errorMessage\":\"\"");
    else {
        buf_json(b, wh_status_name(o->error));
        buf_str(b, ",\"errorMessage\":");
        buf_json(b, o->error_msg ? o->error_msg : "");
    }
    snprintf(num, sizeof num, ",\"retryInMs\":%lld,\"latencyMs\":%lld}",
             (long long)o->retry_in_ms, (long long)o->latency_ms);
    buf_str(b, num);
    if (o->ev.data_len) buf_add(&g->data, o->ev.data, o->ev.data_len);
    if (g->n_pending++ == 0 && g->async_live) {
        uv_ref((uv_handle_t *)&g->async);
        uv_async_send(&g->async);
    }
}

/* Hand the waiting outcomes to JavaScript.  `from_js`: called from a JS
 * call (close, pollSync, ...), so a plain call; else from libuv, through a
 * callback scope (promises resolved by listeners run right after). */
static void drain(engine *g, int from_js)
{
    napi_env env = g->env;
    if (!g->n_pending) return;
    g->n_pending = 0;
    if (g->async_live) uv_unref((uv_handle_t *)&g->async);
    int failed = g->json.failed || g->data.failed;
    napi_handle_scope scope;
    if (failed || napi_open_handle_scope(env, &scope) != napi_ok) goto reset;
    napi_value argv[2], fn, self, result;
    void *dp;
    if (napi_create_string_utf8(env, g->json.p, g->json.len, &argv[0]) != napi_ok ||
        napi_create_buffer(env, g->data.len, &dp, &argv[1]) != napi_ok)
        goto close_scope;
    if (g->data.len) memcpy(dp, g->data.p, g->data.len);
    g->json.len = g->data.len = 0;
    if (!g->self || napi_get_reference_value(env, g->self, &self) != napi_ok || !self) goto close_scope;
    if (napi_get_named_property(env, self, "_cb", &fn) != napi_ok) goto close_scope;
    napi_valuetype t;
    if (napi_typeof(env, fn, &t) != napi_ok || t != napi_function) goto close_scope;
    napi_status st;
    if (from_js || !g->actx) st = napi_call_function(env, self, fn, 2, argv, &result);
    else st = napi_make_callback(env, g->actx, self, fn, 2, argv, &result);
    if (st == napi_pending_exception && !from_js) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err); /* 'uncaughtException', as for any listener */
    }
close_scope:
    napi_close_handle_scope(env, scope);
reset:
    /* out of memory while collecting: those outcomes are lost to JS (the
     * engine's stats still count them) */
    g->json.len = g->data.len = 0;
    g->json.failed = g->data.failed = 0;
}

static void async_cb(uv_async_t *h)
{
    engine *g = h->data;
    drain(g, 0);
}

static void release(engine *g)
{
    if (--g->refs > 0) return;
    free(g->json.p);
    free(g->data.p);
    free(g);
}

static void async_closed(uv_handle_t *h)
{
    release(h->data);
}

/* ---- errors ------------------------------------------------------------------ */

static napi_value throw_status(napi_env env, int st, const char *msg)
{
    napi_throw_error(env, wh_status_name(st), msg && *msg ? msg : wh_strerror(st));
    return NULL;
}

static napi_value throw_type(napi_env env, const char *msg)
{
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
}

/* A JS string into buf (size n) or a malloc'ed copy (*heap). NULL on error
 * (a TypeError is thrown naming `what`). */
static char *get_str(napi_env env, napi_value v, char *buf, size_t n, size_t *len, char **heap,
                     const char *what)
{
    *heap = NULL;
    size_t l;
    if (napi_get_value_string_utf8(env, v, buf, n, &l) != napi_ok) {
        char m[128];
        snprintf(m, sizeof m, "%s must be a string", what);
        throw_type(env, m);
        return NULL;
    }
    if (l + 1 < n) { if (len) *len = l; return buf; }
    if (napi_get_value_string_utf8(env, v, NULL, 0, &l) != napi_ok) return NULL;
    *heap = malloc(l + 1);
    if (!*heap) { throw_status(env, WH_E_NOMEM, NULL); return NULL; }
    napi_get_value_string_utf8(env, v, *heap, l + 1, &l);
    if (len) *len = l;
    return *heap;
}

static int is_nullish(napi_env env, napi_value v)
{
    napi_valuetype t;
    if (napi_typeof(env, v, &t) != napi_ok) return 1;
    return t == napi_undefined || t == napi_null;
}

/* bytes of a Buffer / Uint8Array or a string */
static const char *get_bytes(napi_env env, napi_value v, char *buf, size_t n, size_t *len,
                             char **heap, const char *what)
{
    bool isbuf = false;
    *heap = NULL;
    napi_is_buffer(env, v, &isbuf);
    if (isbuf) {
        void *d;
        if (napi_get_buffer_info(env, v, &d, len) != napi_ok) return NULL;
        return d ? d : "";
    }
    bool ista = false;
    napi_is_typedarray(env, v, &ista);
    if (ista) {
        napi_typedarray_type tt;
        size_t cnt, off;
        void *d;
        napi_value ab;
        if (napi_get_typedarray_info(env, v, &tt, &cnt, &d, &ab, &off) != napi_ok) return NULL;
        if (tt == napi_uint8_array || tt == napi_int8_array || tt == napi_uint8_clamped_array) {
            *len = cnt;
            return d ? d : "";
        }
    }
    return get_str(env, v, buf, n, len, heap, what);
}

static engine *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv)
{
    napi_value self;
    void *p = NULL;
    if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
    if (napi_unwrap(env, self, &p) != napi_ok || !p) {
        throw_type(env, "not an Engine");
        return NULL;
    }
    engine *g = p;
    if (!g->e) {
        napi_throw_error(env, "ERR_ENGINE_CLOSED", "the engine is closed");
        return NULL;
    }
    return g;
}

/* ---- Engine ---------------------------------------------------------------- */

static void engine_close(engine *g, int from_js)
{
    if (!g->e) return;
#if HAVE_LOOP_API
    if (g->attached) wh_libuv_detach(g->e);
    g->attached = 0;
#endif
    wh_engine *e = g->e;
    g->e = NULL;
    wh_engine_free(e); /* cancelled jobs reported through on_outcome */
    if (from_js) drain(g, 1);
}

/* close() or the finalizer: free the engine and let go of the loop */
static void engine_shutdown(napi_env env, engine *g, int from_js)
{
    engine_close(g, from_js);
    if (g->actx) {
        napi_async_destroy(env, g->actx);
        g->actx = NULL;
    }
    if (g->async_live) {
        g->async_live = 0;
        uv_close((uv_handle_t *)&g->async, async_closed);
    }
}

static void engine_finalize(napi_env env, void *data, void *hint)
{
    engine *g = data;
    engine_shutdown(env, g, 0);
    if (g->self) napi_delete_reference(env, g->self);
    g->self = NULL;
    g->n_pending = 0;
    release(g);
}

static int64_t get_int_prop(napi_env env, napi_value obj, const char *name, int64_t dflt)
{
    bool has = false;
    napi_value v;
    if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return dflt;
    if (napi_get_named_property(env, obj, name, &v) != napi_ok || is_nullish(env, v)) return dflt;
    int64_t r;
    if (napi_get_value_int64(env, v, &r) != napi_ok) return dflt;
    return r;
}

/* new Native(onOutcomes, options, queueJson|null) */
static napi_value Engine_ctor(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3], self;
    CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
    napi_valuetype t;
    if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
        return throw_type(env, "Engine: onOutcomes must be a function");
    wh_engine_options o;
    wh_engine_options_init(&o);
    if (argc >= 2 && !is_nullish(env, argv[1])) {
        int64_t v;
        if ((v = get_int_prop(env, argv[1], "max_queued_events", 0)) > 0) o.max_queued_events = (size_t)v;
        if ((v = get_int_prop(env, argv[1], "max_queued_bytes", 0)) > 0) o.max_queued_bytes = (size_t)v;
        if ((v = get_int_prop(env, argv[1], "max_payload_bytes", 0)) > 0) o.max_payload_bytes = (size_t)v;
        if ((v = get_int_prop(env, argv[1], "validate_json", -1)) >= 0) o.validate_json = (int)v;
        if ((v = get_int_prop(env, argv[1], "log_level", -1)) >= 0) o.log_level = (wh_log_level)v;
        if ((v = get_int_prop(env, argv[1], "seed", 0)) > 0) o.seed = (uint64_t)v;
    }
    if (argc >= 3 && !is_nullish(env, argv[2])) {
        char buf[4096], *heap;
        size_t len;
        const char *q = get_str(env, argv[2], buf, sizeof buf, &len, &heap, "queue");
        if (!q) return NULL;
        char err[512];
        wh_queue *qq = NULL;
        int st = wh_config_queue_new(q, len, NULL, NULL, &qq, err, sizeof err);
        free(heap);
        if (st != WH_OK) return throw_status(env, st, err);
        o.queue = qq;
        o.queue_owned = 1;
    }
    engine *g = calloc(1, sizeof *g);
    if (!g) return throw_status(env, WH_E_NOMEM, NULL);
    g->env = env;
    o.on_outcome = on_outcome;
    o.outcome_user = g;
    int err = 0;
    g->e = wh_engine_new(&o, &err);
    if (!g->e) {
        if (o.queue) wh_queue_free(o.queue);
        free(g);
        return throw_status(env, err, NULL);
    }
    if (napi_get_uv_event_loop(env, &g->loop) != napi_ok ||
        uv_async_init(g->loop, &g->async, async_cb) != 0) {
        wh_engine_free(g->e);
        free(g);
        return throw_status(env, WH_E_NOMEM, "cannot get Node's libuv loop");
    }
    g->async.data = g;
    g->async_live = 1;
    g->refs = 2;
    uv_unref((uv_handle_t *)&g->async);
#if HAVE_LOOP_API
    int st = wh_libuv_attach(g->e, g->loop);
    if (st < 0) {
        const char *m = wh_last_error(g->e);
        napi_throw_error(env, wh_status_name(st), m);
        wh_engine_free(g->e);
        g->e = NULL;
        g->async_live = 0;
        g->refs = 1; /* no JS object: the handle's close frees it */
        uv_close((uv_handle_t *)&g->async, async_closed);
        return NULL;
    }
    g->attached = 1;
#endif
    napi_value name, resource;
    CHECK(napi_set_named_property(env, self, "_cb", argv[0]));
    CHECK(napi_create_string_utf8(env, "libwebhook:outcome", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_object(env, &resource));
    CHECK(napi_async_init(env, resource, name, &g->actx));
    CHECK(napi_wrap(env, self, g, engine_finalize, NULL, &g->self));
    return self;
}

/* emit(type, data, channel, id) -> number; data: string or Buffer */
static napi_value Engine_emit(napi_env env, napi_callback_info info)
{
    size_t argc = 4;
    napi_value argv[4];
    engine *g = unwrap(env, info, &argc, argv);
    if (!g) return NULL;
    if (argc < 2) return throw_type(env, "emit(type, data[, {channel, id}])");
    char tb[256], db[8192], cb[256], ib[160];
    char *th = NULL, *dh = NULL, *ch = NULL, *ih = NULL;
    size_t dlen = 0;
    napi_value ret = NULL;
    const char *type = get_str(env, argv[0], tb, sizeof tb, NULL, &th, "type");
    if (!type) goto out;
    const char *data = get_bytes(env, argv[1], db, sizeof db, &dlen, &dh, "data");
    if (!data) goto out;
    const char *chan = NULL, *id = NULL;
    if (argc > 2 && !is_nullish(env, argv[2]) &&
        !(chan = get_str(env, argv[2], cb, sizeof cb, NULL, &ch, "channel")))
        goto out;
    if (argc > 3 && !is_nullish(env, argv[3]) &&
        !(id = get_str(env, argv[3], ib, sizeof ib, NULL, &ih, "id")))
        goto out;
    int n = wh_emit(g->e, type, chan, data, dlen, id);
    if (n < 0) throw_status(env, n, wh_last_error(g->e));
    else napi_create_int32(env, n, &ret);
out:
    free(th); free(dh); free(ch); free(ih);
    return ret;
}

static napi_value Engine_configLoad(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    engine *g = unwrap(env, info, &argc, argv);
    if (!g) return NULL;
    char buf[8192], *heap;
    size_t len;
    const char *s = get_str(env, argv[0], buf, sizeof buf, &len, &heap, "config");
    if (!s) return NULL;
    int st = wh_config_load(g->e, s, len);
    free(heap);
    if (st < 0) return throw_status(env, st, wh_last_error(g->e));
    return NULL;
}

static napi_value Engine_endpointFind(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], r;
    engine *g = unwrap(env, info, &argc, argv);
    if (!g) return NULL;
    char buf[512], *heap;
    const char *s = get_str(env, argv[0], buf, sizeof buf, NULL, &heap, "id");
    if (!s) return NULL;
    int h = wh_endpoint_find(g->e, s);
    free(heap);
    CHECK(napi_create_int32(env, h, &r));
    return r;
}

static napi_value Engine_endpointRemove(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    engine *g = unwrap(env, info, &argc, argv);
    if (!g) return NULL;
    int32_t h;
    if (napi_get_value_int32(env, argv[0], &h) != napi_ok) return throw_type(env, "endpoint handle");
    int st = wh_endpoint_remove(g->e, h);
    if (st < 0) return throw_status(env, st, wh_last_error(g->e));
    drain(g, 1);
    return NULL;
}

static napi_value Engine_stats(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    engine *g = unwrap(env, info, &argc, NULL);
    if (!g) return NULL;
    wh_stats s;
    wh_stats_get(g->e, &s);
    napi_value o, v;
    CHECK(napi_create_object(env, &o));
#define F(js, f)                                                                \
    CHECK(napi_create_double(env, (double)s.f, &v));                            \
    CHECK(napi_set_named_property(env, o, js, v));
    F("emitted", emitted) F("rejected", rejected) F("enqueued", enqueued)
    F("requests", requests) F("delivered", delivered) F("retries", retries)
    F("dead", dead) F("queued", queued) F("inFlight", in_flight) F("bytesSent", bytes_sent)
#undef F
    return o;
}

/* pollSync(ms): one wh_poll round (blocking up to ms); for hosts that do not
 * run Node's loop (and tests of the explicit mode). */
static napi_value Engine_pollSync(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], r;
    engine *g = unwrap(env, info, &argc, argv);
    if (!g) return NULL;
    int32_t ms = 0;
    if (argc > 0) napi_get_value_int32(env, argv[0], &ms);
    int n = wh_poll(g->e, ms);
    if (n < 0) return throw_status(env, n, wh_last_error(g->e));
    drain(g, 1);
    CHECK(napi_create_int32(env, n, &r));
    return r;
}

static napi_value Engine_flushSync(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], r;
    engine *g = unwrap(env, info, &argc, argv);
    if (!g) return NULL;
    int64_t ms = 30000;
    if (argc > 0) napi_get_value_int64(env, argv[0], &ms);
    int st = wh_flush(g->e, ms);
    if (st < 0 && st != WH_E_TIMEOUT) return throw_status(env, st, wh_last_error(g->e));
    drain(g, 1);
    CHECK(napi_get_boolean(env, st == WH_OK, &r));
    return r;
}

static napi_value Engine_timeoutMs(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    napi_value r;
    engine *g = unwrap(env, info, &argc, NULL);
    if (!g) return NULL;
    CHECK(napi_create_int64(env, wh_timeout_ms(g->e), &r));
    return r;
}

static napi_value Engine_close(napi_env env, napi_callback_info info)
{
    napi_value self;
    void *p = NULL;
    size_t argc = 0;
    CHECK(napi_get_cb_info(env, info, &argc, NULL, &self, NULL));
    if (napi_unwrap(env, self, &p) != napi_ok || !p) return NULL;
    engine_shutdown(env, p, 1);
    return NULL;
}

/* ---- verification ------------------------------------------------------------ */

/* verifyStandard(secrets[], id, timestamp, body, signature, nowS, toleranceS) -> status */
static napi_value m_verifyStandard(napi_env env, napi_callback_info info)
{
    size_t argc = 7;
    napi_value argv[7];
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 7) return throw_type(env, "verifyStandard: 7 arguments");
    uint32_t n = 0;
    bool isarr = false;
    napi_is_array(env, argv[0], &isarr);
    if (!isarr || napi_get_array_length(env, argv[0], &n) != napi_ok || n == 0 || n > 16)
        return throw_type(env, "secrets must be an array of 1 to 16 strings");
    char sb[16][256], *sh[16] = {0};
    const char *secrets[16];
    char idb[256], tsb[64], sigb[4096], bb[8192];
    char *idh = NULL, *tsh = NULL, *sigh = NULL, *bh = NULL;
    napi_value ret = NULL;
    uint32_t got = 0;
    for (; got < n; got++) {
        napi_value el;
        if (napi_get_element(env, argv[0], got, &el) != napi_ok) goto out;
        if (!(secrets[got] = get_str(env, el, sb[got], sizeof sb[got], NULL, &sh[got], "secret"))) goto out;
    }
    const char *id = get_str(env, argv[1], idb, sizeof idb, NULL, &idh, "webhook-id");
    const char *ts = id ? get_str(env, argv[2], tsb, sizeof tsb, NULL, &tsh, "webhook-timestamp") : NULL;
    size_t blen = 0;
    const char *body = ts ? get_bytes(env, argv[3], bb, sizeof bb, &blen, &bh, "body") : NULL;
    const char *sig = body ? get_str(env, argv[4], sigb, sizeof sigb, NULL, &sigh, "webhook-signature") : NULL;
    int64_t now = 0, tol = 300;
    if (!sig) goto out;
    napi_get_value_int64(env, argv[5], &now);
    napi_get_value_int64(env, argv[6], &tol);
    int st = wh_verify_standard(secrets, n, id, ts, body, blen, sig, now, tol);
    napi_create_int32(env, st, &ret);
out:
    for (uint32_t i = 0; i < got && i < 16; i++) free(sh[i]);
    free(idh); free(tsh); free(sigh); free(bh);
    return ret;
}

/* verifyHmacHex(secret, body, sigHex) / verifyRsaSha256(pem, body, sigB64) -> status */
static napi_value verify3(napi_env env, napi_callback_info info, int rsa)
{
    size_t argc = 3;
    napi_value argv[3], ret = NULL;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 3) return throw_type(env, "3 arguments: key, body, signature");
    char kb[8192], bb[8192], sgb[2048];
    char *kh = NULL, *bh = NULL, *sgh = NULL;
    size_t blen = 0;
    const char *k = get_str(env, argv[0], kb, sizeof kb, NULL, &kh, rsa ? "publicKeyPem" : "secret");
    const char *b = k ? get_bytes(env, argv[1], bb, sizeof bb, &blen, &bh, "body") : NULL;
    const char *s = b ? get_str(env, argv[2], sgb, sizeof sgb, NULL, &sgh, "signature") : NULL;
    if (s) {
        int st = rsa ? wh_verify_rsa_sha256(k, b, blen, s) : wh_verify_hmac_hex(k, b, blen, s);
        napi_create_int32(env, st, &ret);
    }
    free(kh); free(bh); free(sgh);
    return ret;
}
static napi_value m_verifyHmacHex(napi_env env, napi_callback_info info) { return verify3(env, info, 0); }
static napi_value m_verifyRsaSha256(napi_env env, napi_callback_info info) { return verify3(env, info, 1); }

/* signStandard(secrets[], id, timestampS, body) -> string */
static napi_value m_signStandard(napi_env env, napi_callback_info info)
{
    size_t argc = 4;
    napi_value argv[4], ret = NULL;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 4) return throw_type(env, "signStandard(secrets, id, timestamp, body)");
    uint32_t n = 0;
    bool isarr = false;
    napi_is_array(env, argv[0], &isarr);
    if (!isarr || napi_get_array_length(env, argv[0], &n) != napi_ok || n == 0 || n > 16)
        return throw_type(env, "secrets must be an array of 1 to 16 strings");
    char sb[16][256], *sh[16] = {0};
    const char *secrets[16];
    char idb[256], bb[8192], *idh = NULL, *bh = NULL;
    uint32_t got = 0;
    for (; got < n; got++) {
        napi_value el;
        if (napi_get_element(env, argv[0], got, &el) != napi_ok) goto out;
        if (!(secrets[got] = get_str(env, el, sb[got], sizeof sb[got], NULL, &sh[got], "secret"))) goto out;
    }
    const char *id = get_str(env, argv[1], idb, sizeof idb, NULL, &idh, "id");
    int64_t ts = 0;
    size_t blen = 0;
    const char *body = id ? get_bytes(env, argv[3], bb, sizeof bb, &blen, &bh, "body") : NULL;
    if (!body) goto out;
    napi_get_value_int64(env, argv[2], &ts);
    char out[16 * 64];
    int st = wh_sign_standard(secrets, n, id, ts, body, blen, out, sizeof out);
    if (st < 0) throw_status(env, st, NULL);
    else napi_create_string_utf8(env, out, NAPI_AUTO_LENGTH, &ret);
out:
    for (uint32_t i = 0; i < got && i < 16; i++) free(sh[i]);
    free(idh); free(bh);
    return ret;
}

static napi_value m_statusName(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], r;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    int32_t st = 0;
    if (argc > 0) napi_get_value_int32(env, argv[0], &st);
    CHECK(napi_create_string_utf8(env, wh_status_name(st), NAPI_AUTO_LENGTH, &r));
    return r;
}

static napi_value m_strerror(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], r;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    int32_t st = 0;
    if (argc > 0) napi_get_value_int32(env, argv[0], &st);
    CHECK(napi_create_string_utf8(env, wh_strerror(st), NAPI_AUTO_LENGTH, &r));
    return r;
}

static napi_value Init(napi_env env, napi_value exports)
{
    napi_property_descriptor methods[] = {
        {"emit", NULL, Engine_emit, NULL, NULL, NULL, napi_default, NULL},
        {"configLoad", NULL, Engine_configLoad, NULL, NULL, NULL, napi_default, NULL},
        {"endpointFind", NULL, Engine_endpointFind, NULL, NULL, NULL, napi_default, NULL},
        {"endpointRemove", NULL, Engine_endpointRemove, NULL, NULL, NULL, napi_default, NULL},
        {"stats", NULL, Engine_stats, NULL, NULL, NULL, napi_default, NULL},
        {"pollSync", NULL, Engine_pollSync, NULL, NULL, NULL, napi_default, NULL},
        {"flushSync", NULL, Engine_flushSync, NULL, NULL, NULL, napi_default, NULL},
        {"timeoutMs", NULL, Engine_timeoutMs, NULL, NULL, NULL, napi_default, NULL},
        {"close", NULL, Engine_close, NULL, NULL, NULL, napi_default, NULL},
    };
    napi_value cls, v;
    CHECK(napi_define_class(env, "NativeEngine", NAPI_AUTO_LENGTH, Engine_ctor, NULL,
                            sizeof methods / sizeof methods[0], methods, &cls));
    CHECK(napi_set_named_property(env, exports, "NativeEngine", cls));
    napi_property_descriptor fns[] = {
        {"verifyStandard", NULL, m_verifyStandard, NULL, NULL, NULL, napi_default, NULL},
        {"verifyHmacHex", NULL, m_verifyHmacHex, NULL, NULL, NULL, napi_default, NULL},
        {"verifyRsaSha256", NULL, m_verifyRsaSha256, NULL, NULL, NULL, napi_default, NULL},
        {"signStandard", NULL, m_signStandard, NULL, NULL, NULL, napi_default, NULL},
        {"statusName", NULL, m_statusName, NULL, NULL, NULL, napi_default, NULL},
        {"strerror", NULL, m_strerror, NULL, NULL, NULL, napi_default, NULL},
    };
    CHECK(napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
    CHECK(napi_get_boolean(env, HAVE_LOOP_API, &v));
    CHECK(napi_set_named_property(env, exports, "haveLoopApi", v));
    CHECK(napi_create_string_utf8(env, wh_version(0), NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, exports, "libraryVersion", v));
    return exports;
}

/* the module entry points node_api.h defines (their prototypes are Node's) */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#ifndef NODE_GYP_MODULE_NAME
#define NODE_GYP_MODULE_NAME libwebhook
#endif
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
