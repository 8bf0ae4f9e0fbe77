/* The engine's last error and its log callback.  Leaf: calls only the
 * host's log callback. */
#include "engine.h"

#include <stdio.h>

/* emit_any_thread: a failed wh_emit describes itself in its own thread */
static _Thread_local char tl_err[512];
static _Thread_local const wh_engine *tl_engine;

void wh__tl_clear(void) { tl_engine = NULL; }

const char *wh__tl_error(const wh_engine *e) { return e && tl_engine == e ? tl_err : NULL; }

int wh__fail_tl(wh_engine *e, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(tl_err, sizeof tl_err, "%s: ", wh_status_name(status));
    if (n < 0) n = 0;
    if ((size_t)n < sizeof tl_err) vsnprintf(tl_err + n, sizeof tl_err - (size_t)n, fmt, ap);
    va_end(ap);
    tl_engine = e;
    return status;
}

int wh__fail(wh_engine *e, int status, const char *fmt, ...)
{
    if (!e) return status;
    tl_engine = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(e->err, sizeof e->err, "%s: ", wh_status_name(status));
    if (n < 0) n = 0;
    if ((size_t)n < sizeof e->err) vsnprintf(e->err + n, sizeof e->err - (size_t)n, fmt, ap);
    va_end(ap);
    if (e->on_log && e->log_level >= WH_LOG_DEBUG)
        e->on_log(e->log_user, WH_LOG_DEBUG, e->err);
    return status;
}

void wh__log(wh_engine *e, wh_log_level lvl, const char *fmt, ...)
{
    if (!e || !e->on_log || lvl > e->log_level) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    e->on_log(e->log_user, lvl, buf);
}

const char *wh_last_error(const wh_engine *e)
{
    if (!e) return "engine is NULL";
    const char *tl = wh__tl_error(e);
    if (tl) return tl;
    return e->err[0] ? e->err : "no error";
}
