/* Per-endpoint delivery metrics and their Prometheus text exposition
 * (internal).  The engine keeps one wh__ep_metrics per endpoint and feeds it
 * every outcome (wh__metrics_record); wh_metrics_write() snapshots the
 * endpoints into wh__metrics_ep rows and formats them with
 * wh__metrics_format(). */
#ifndef WH_METRICS_H
#define WH_METRICS_H

#include "internal.h"

/* Classes of failed attempts (label class="..."). */
enum {
    WH__FAIL_HTTP_4XX,   /* answered 4xx */
    WH__FAIL_HTTP_5XX,   /* answered 5xx */
    WH__FAIL_HTTP_OTHER, /* answered 1xx/3xx (not followed) */
    WH__FAIL_CONNECT,    /* no connection: nothing was sent */
    WH__FAIL_TIMEOUT,    /* no answer in time */
    WH__FAIL_TRANSPORT,  /* anything else the transport reported */
    WH__FAIL_CLASSES
};

/* Emit -> 2xx latency histogram bucket bounds, milliseconds (the +Inf
 * bucket follows). */
#define WH__LAT_BOUNDS_MS \
    {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000}
#define WH__LAT_NB 14

typedef struct wh__ep_metrics {
    uint64_t delivered;                 /* jobs answered 2xx */
    uint64_t failed[WH__FAIL_CLASSES];  /* failed attempts by class */
    uint64_t retries;                   /* failed attempts rescheduled */
    uint64_t dead;                      /* jobs dead-lettered (cancelled too) */
    uint64_t lat[WH__LAT_NB + 1];       /* per bucket, not cumulative */
    uint64_t lat_sum_ms;
} wh__ep_metrics;

/* Account one outcome.  now_wall_ms: wall-clock time of the outcome; the
 * latency is now_wall_ms - o->ev.created_ms (emit -> 2xx, retries and
 * queueing included); read for WH_DELIVERED only. */
void wh__metrics_record(wh__ep_metrics *m, const wh_outcome *o,
                        int64_t now_wall_ms);
/* The class of a failed attempt, or -1 when no attempt failed (delivered,
 * or dead without an attempt: cancelled). */
int wh__metrics_fail_class(const wh_outcome *o);

/* One endpoint as wh_metrics_write sees it. */
typedef struct wh__metrics_ep {
    const char *id;            /* label endpoint="..." */
    wh_ep_state state;
    uint64_t in_flight;
    uint64_t queued;
    const wh__ep_metrics *m;
} wh__metrics_ep;

/* Engine-wide counters. */
typedef struct wh__metrics_engine {
    uint64_t emitted, rejected, duplicates, requests;
} wh__metrics_engine;

/* Prometheus text exposition (format 0.0.4) into buf, snprintf style:
 * returns the length of the whole text (without the NUL); writes at most
 * len - 1 bytes and a NUL when len > 0 (buf may be NULL when len is 0). */
size_t wh__metrics_format(const wh__metrics_engine *g, const wh__metrics_ep *eps,
                          size_t n, char *buf, size_t len);

#endif /* WH_METRICS_H */
