/* Prometheus text exposition of the engine's delivery metrics (see
 * metrics.h).  Every family is written whole (HELP, TYPE, then its series
 * for every endpoint), as the format requires. */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const int64_t lat_bounds_ms[WH__LAT_NB] = WH__LAT_BOUNDS_MS;

static const char *const fail_names[WH__FAIL_CLASSES] = {
    "http_4xx", "http_5xx", "http_other", "connect", "timeout", "transport",
};

static const char *const state_names[] = {"active", "paused", "probing", "disabled"};

int wh__metrics_fail_class(const wh_outcome *o)
{
    if (o->kind == WH_DELIVERED) return -1;
    if (o->http_status >= 500) return WH__FAIL_HTTP_5XX;
    if (o->http_status >= 400) return WH__FAIL_HTTP_4XX;
    if (o->http_status > 0) return WH__FAIL_HTTP_OTHER;
    switch (o->error) {
    case WH_E_CONNECT: return WH__FAIL_CONNECT;
    case WH_E_TIMEOUT: return WH__FAIL_TIMEOUT;
    case WH_E_CANCELLED: return -1;      /* no attempt was made */
    case WH_OK: return o->attempt ? WH__FAIL_TRANSPORT : -1;
    default: return WH__FAIL_TRANSPORT;
    }
}

void wh__metrics_record(wh__ep_metrics *m, const wh_outcome *o, int64_t now_wall_ms)
{
    if (!m || !o) return;
    if (o->kind == WH_DELIVERED) {
        m->delivered++;
        int64_t ms = now_wall_ms - o->ev.created_ms;
        if (ms < 0) ms = 0;           /* the wall clock stepped back */
        size_t b = 0;
        while (b < WH__LAT_NB && ms > lat_bounds_ms[b]) b++;
        m->lat[b]++;
        m->lat_sum_ms += (uint64_t)ms;
        return;
    }
    int c = wh__metrics_fail_class(o);
    if (c >= 0) m->failed[c]++;
    if (o->kind == WH_RETRY) m->retries++;
    else if (o->kind == WH_DEAD) m->dead++;
}

/* ---- writer ----------------------------------------------------------------- */

typedef struct out {
    char *buf;
    size_t len, pos;
} out;

static void put(out *w, const char *fmt, ...) WH_PRINTF(2, 3);
static void put(out *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = w->pos < w->len ? w->len - w->pos : 0;
    int n = vsnprintf(room ? w->buf + w->pos : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) w->pos += (size_t)n;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(out *w, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\\') put(w, "\\\\");
        else if (*p == '"') put(w, "\\\"");
        else if (*p == '\n') put(w, "\\n");
        else put(w, "%c", *p);
    }
}

static void family(out *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void series(out *w, const char *name, const char *suffix,
                   const wh__metrics_ep *ep, const char *extra_label,
                   const char *extra_value, uint64_t v)
{
    put(w, "%s%s{endpoint=\"", name, suffix);
    put_label(w, ep->id);
    put(w, "\"");
    if (extra_label) {
        put(w, ",%s=\"", extra_label);
        put_label(w, extra_value);
        put(w, "\"");
    }
    put(w, "} %" PRIu64 "\n", v);
}

size_t wh__metrics_format(const wh__metrics_engine *g, const wh__metrics_ep *eps,
                          size_t n, char *buf, size_t len)
{
    out w = {buf, buf ? len : 0, 0};
    static const wh__ep_metrics zero;
    if (g) {
        family(&w, "webhook_events_emitted_total", "counter", "Events accepted by wh_emit.");
        put(&w, "webhook_events_emitted_total %" PRIu64 "\n", g->emitted);
        family(&w, "webhook_events_rejected_total", "counter", "Events refused by wh_emit.");
        put(&w, "webhook_events_rejected_total %" PRIu64 "\n", g->rejected);
        family(&w, "webhook_events_duplicate_total", "counter",
               "Events not delivered again: their id was accepted within the dedupe window.");
        put(&w, "webhook_events_duplicate_total %" PRIu64 "\n", g->duplicates);
        family(&w, "webhook_requests_total", "counter", "HTTP attempts started.");
        put(&w, "webhook_requests_total %" PRIu64 "\n", g->requests);
    }
    family(&w, "webhook_delivered_total", "counter", "Deliveries answered with a 2xx.");
    for (size_t i = 0; i < n; i++)
        series(&w, "webhook_delivered_total", "", &eps[i], NULL, NULL,
               (eps[i].m ? eps[i].m : &zero)->delivered);
    family(&w, "webhook_attempts_failed_total", "counter", "Failed attempts by class.");
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < WH__FAIL_CLASSES; c++)
            series(&w, "webhook_attempts_failed_total", "", &eps[i], "class",
                   fail_names[c], (eps[i].m ? eps[i].m : &zero)->failed[c]);
    family(&w, "webhook_retries_total", "counter", "Failed attempts that were rescheduled.");
    for (size_t i = 0; i < n; i++)
        series(&w, "webhook_retries_total", "", &eps[i], NULL, NULL,
               (eps[i].m ? eps[i].m : &zero)->retries);
    family(&w, "webhook_dead_total", "counter", "Deliveries dead-lettered.");
    for (size_t i = 0; i < n; i++)
        series(&w, "webhook_dead_total", "", &eps[i], NULL, NULL,
               (eps[i].m ? eps[i].m : &zero)->dead);
    family(&w, "webhook_in_flight", "gauge", "Requests running now.");
    for (size_t i = 0; i < n; i++)
        series(&w, "webhook_in_flight", "", &eps[i], NULL, NULL, eps[i].in_flight);
    family(&w, "webhook_queued", "gauge", "Deliveries waiting now.");
    for (size_t i = 0; i < n; i++)
        series(&w, "webhook_queued", "", &eps[i], NULL, NULL, eps[i].queued);
    family(&w, "webhook_endpoint_state", "gauge",
           "1 for the endpoint's current state (active, paused, probing, disabled).");
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < 4; s++)
            series(&w, "webhook_endpoint_state", "", &eps[i], "state", state_names[s],
                   (int)eps[i].state == s);
    family(&w, "webhook_delivery_latency_seconds", "histogram",
           "Time from wh_emit to the 2xx answer, retries included.");
    for (size_t i = 0; i < n; i++) {
        const wh__ep_metrics *m = eps[i].m ? eps[i].m : &zero;
        uint64_t cum = 0;
        char le[32];
        for (size_t b = 0; b <= WH__LAT_NB; b++) {
            cum += m->lat[b];
            if (b < WH__LAT_NB)
                snprintf(le, sizeof le, "%g", (double)lat_bounds_ms[b] / 1000.0);
            else
                snprintf(le, sizeof le, "+Inf");
            series(&w, "webhook_delivery_latency_seconds", "_bucket", &eps[i], "le", le,
                   cum);
        }
        put(&w, "webhook_delivery_latency_seconds_sum{endpoint=\"");
        put_label(&w, eps[i].id);
        put(&w, "\"} %" PRIu64 ".%03" PRIu64 "\n", m->lat_sum_ms / 1000,
            m->lat_sum_ms % 1000);
        series(&w, "webhook_delivery_latency_seconds", "_count", &eps[i], NULL, NULL,
               cum);
    }
    if (buf && len) buf[w.pos < len ? w.pos : len - 1] = '\0';
    return w.pos;
}
