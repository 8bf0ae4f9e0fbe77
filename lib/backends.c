/* The engine's default parts, and the backends this build left out.
 *
 * This is the one file that names concrete backends for the engine: the
 * default transport (libcurl, when the library is built with it) and the
 * default queue (bounded, in memory).  The engine itself only sees the
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

#include <string.h>

int wh__default_transport_new(wh_transport **out)
{
#ifdef WH_HAVE_CURL
    return wh_transport_curl_new(NULL, out);
#else
    /* no transport to default to: the host must hand one in */
    *out = NULL;
    return WH_E_UNSUPPORTED;
#endif
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

/* no SQLite queue: never one that remembers ids (the engine's memory does) */
int wh__queue_sqlite_remember(wh_queue *vq, const char *id, int64_t wall_ms,
                              int64_t window_ms)
{
    (void)vq, (void)id, (void)wall_ms, (void)window_ms;
    return WH_E_INVAL;
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
