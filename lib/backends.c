/* The engine's default parts, and the backends this build left out.
 *
 * This is the one file that names concrete backends for the engine: its
 * own transport (libcurl when the library is built with it, the lean
 * transport, or both, per endpoint: wh_transport_kind) and the default
 * queue (bounded, in memory).  The engine itself only sees the
 * vtables.
 *
 * A backend whose package was not found at build time (make WITH_CURL=0,
 * WITH_SQLITE=0, WITH_REDIS=0; meson -Dcurl=disabled, ...) is not compiled;
 * its constructor is defined here instead and returns WH_E_UNSUPPORTED, so
 * <webhook/curl.h>, <webhook/sqlite.h> and <webhook/redis.h> are the same in
 * every build and a program can tell at run time what the library holds.
 * The build defines WH_HAVE_CURL / WH_HAVE_SQLITE / WH_HAVE_REDIS (lib/ only)
 * for what it compiled. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the engine's own transport: a selector over lean and curl ------------- */
/* Each request goes to the transport its endpoint chose (wh_request.
 * transport), or the engine's kind.  The transport of the engine's kind is
 * made at once (so a failure shows in wh_engine_new); the other when a
 * request first needs it.  perform() drives the ones with work: one alone
 * waits as long as asked; both at once wait on the lean transport's set
 * at most 1 ms at a time, so neither starves (the price of keeping the two
 * event sets apart). */
typedef struct tsel {
    wh_transport vt;             /* vt.user == this */
    int kind;                    /* CURL, LEAN or AUTO */
    wh_transport *lean, *curl;
    int in_perform;
    int destroy_pending;
} tsel;

static int tsel_pick(const tsel *t, const wh_request *req)
{
    int k = req->transport > WH_TRANSPORT_DEFAULT && req->transport <= WH_TRANSPORT_AUTO
                ? req->transport
                : t->kind;
    if (k == WH_TRANSPORT_AUTO) {
#ifdef WH_HAVE_CURL
        k = wh__lean_handles(req->url) ? WH_TRANSPORT_LEAN : WH_TRANSPORT_CURL;
#else
        k = WH_TRANSPORT_LEAN;
#endif
    }
    return k;
}

static int tsel_get(tsel *t, int k, wh_transport **out)
{
    wh_transport **slot = k == WH_TRANSPORT_LEAN ? &t->lean : &t->curl;
    if (!*slot) {
        int rc = k == WH_TRANSPORT_LEAN ? wh_transport_lean_new(NULL, slot)
                                        : wh_transport_curl_new(NULL, slot);
        if (rc != WH_OK) {
            *slot = NULL;
            return rc;
        }
    }
    *out = *slot;
    return WH_OK;
}

static int tsel_submit(void *user, const wh_request *req)
{
    tsel *t = user;
    if (!t || !req || !req->url) return WH_E_INVAL;
    if (t->destroy_pending) return WH_E_INVAL;
    wh_transport *x = NULL;
    int rc = tsel_get(t, tsel_pick(t, req), &x);
    if (rc != WH_OK) return rc;
    return x->submit(x->user, req);
}

static int busy(const wh_transport *x) { return x && x->timeout_ms(x->user) >= 0; }

static void tsel_free(tsel *t)
{
    if (t->lean) t->lean->destroy(t->lean->user);
    if (t->curl) t->curl->destroy(t->curl->user);
    free(t);
}

static int tsel_perform(void *user, int wait_ms, wh_transport_done_fn done, void *done_user)
{
    tsel *t = user;
    if (!t) return WH_E_INVAL;
    if (t->in_perform) return WH_E_RECURSIVE;
    t->in_perform = 1;
    int bl = busy(t->lean), bc = busy(t->curl), running = 0;
    if (bl && bc) {
        int rl = t->lean->perform(t->lean->user, wait_ms > 1 ? 1 : wait_ms, done, done_user);
        if (!t->destroy_pending) {
            int rc = t->curl->perform(t->curl->user, 0, done, done_user);
            running = (rl > 0 ? rl : 0) + (rc > 0 ? rc : 0);
        }
    } else if (bl || (!bc && t->lean)) {
        running = t->lean->perform(t->lean->user, wait_ms, done, done_user);
    } else if (t->curl) {
        running = t->curl->perform(t->curl->user, wait_ms, done, done_user);
    }
    t->in_perform = 0;
    if (t->destroy_pending) {
        tsel_free(t);
        return 0;
    }
    return running < 0 ? 0 : running;
}

static int64_t tsel_timeout_ms(void *user)
{
    tsel *t = user;
    if (!t) return -1;
    int64_t a = t->lean ? t->lean->timeout_ms(t->lean->user) : -1;
    int64_t b = t->curl ? t->curl->timeout_ms(t->curl->user) : -1;
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

static void tsel_cancel(void *user, void *token)
{
    tsel *t = user;
    if (!t) return;
    if (t->lean) t->lean->cancel(t->lean->user, token);
    if (t->curl) t->curl->cancel(t->curl->user, token);
}

static void tsel_destroy(void *user)
{
    tsel *t = user;
    if (!t) return;
    if (t->in_perform) {
        t->destroy_pending = 1;
        return;
    }
    tsel_free(t);
}

int wh__default_transport_new(int kind, wh_transport **out)
{
    *out = NULL;
#ifndef WH_HAVE_CURL
    /* no libcurl: an engine of the default kind has no transport (the
     * host must hand one in, or ask for lean) */
    if (kind == WH_TRANSPORT_DEFAULT || kind == WH_TRANSPORT_CURL) return WH_E_UNSUPPORTED;
#endif
    if (kind == WH_TRANSPORT_DEFAULT) kind = WH_TRANSPORT_CURL;
    tsel *t = wh__calloc(1, sizeof *t);
    if (!t) return WH_E_NOMEM;
    t->kind = kind;
    wh_transport *x = NULL;
    int rc = tsel_get(t, kind == WH_TRANSPORT_CURL ? WH_TRANSPORT_CURL : WH_TRANSPORT_LEAN, &x);
    if (rc != WH_OK) {
        free(t);
        return rc;
    }
    t->vt.version = WH_TRANSPORT_VERSION;
    t->vt.user = t;
    t->vt.submit = tsel_submit;
    t->vt.perform = tsel_perform;
    t->vt.timeout_ms = tsel_timeout_ms;
    t->vt.cancel = tsel_cancel;
    t->vt.destroy = tsel_destroy;
    *out = &t->vt;
    return WH_OK;
}

int wh__default_queue_new(size_t max_events, size_t max_bytes, wh_queue **out)
{
    return wh__queue_memory_new(max_events ? max_events : 1000000,
                                max_bytes ? max_bytes : ((size_t)1 << 30), out);
}

/* ---- stand-ins for backends not built ------------------------------------- */
/* The options initialisers still fill struct_size (so a caller's code stays
 * the same); the constructors set *out to NULL and return WH_E_UNSUPPORTED. */
#define WH__STUB_INIT(o, size)                                                 \
    do {                                                                       \
        if (!(o) || (size) < sizeof(size_t)) return;                           \
        memset((o), 0, (size));                                                \
        (o)->struct_size = (size);                                             \
    } while (0)

#ifndef WH_HAVE_CURL
void wh_curl_options_init_sized(wh_curl_options *o, size_t size)
{
    WH__STUB_INIT(o, size);
}

int wh_transport_curl_new(const wh_curl_options *opts, wh_transport **out)
{
    (void)opts;
    if (out) *out = NULL;
    return WH_E_UNSUPPORTED;
}
#endif

#ifndef WH_HAVE_SQLITE
void wh_sqlite_options_init_sized(wh_sqlite_options *o, size_t size)
{
    WH__STUB_INIT(o, size);
}

int wh_queue_sqlite_new(const char *path, const wh_sqlite_options *opts,
                        wh_queue **out)
{
    (void)path;
    (void)opts;
    if (out) *out = NULL;
    return WH_E_UNSUPPORTED;
}
#endif

#ifndef WH_HAVE_REDIS
void wh_redis_options_init_sized(wh_redis_options *o, size_t size)
{
    WH__STUB_INIT(o, size);
}

int wh_queue_redis_new(const wh_redis_options *opts, wh_queue **out)
{
    (void)opts;
    if (out) *out = NULL;
    return WH_E_UNSUPPORTED;
}
#endif
