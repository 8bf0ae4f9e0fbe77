/* The engine's last error and its log callback.  Leaf: calls only the
 * host's log callback. */
#include "engine.h"

#include <stdio.h>

int wh__fail(wh_engine *e, int status, const char *fmt, ...)
{
    if (!e) return status;
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
    return e->err[0] ? e->err : "no error";
}
