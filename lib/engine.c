/* The public engine API: lifecycle, emit, poll, flush, stats and the
 * endpoint calls.  No threads: every step runs inside a call of the host.
 *
 * The top of the one-way call graph (see engine.h): it routes (router.c),
 * enqueues (the queue's vtable), schedules (scheduler.c), has deliveries
 * made (delivery.c) and hands the queued outcomes to the host at the end
 * of each call (outcome.c).  Nothing calls back into this file. */
#include "engine.h"
#include "dedupe.h"
#include "filter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLAIM_BATCH 64

static void finish_call(wh_engine *e);

/* ---- options ------------------------------------------------------------------ */
/* The defaults: what wh_engine_options_init sets, and what a zero field that
 * needs a value means. */
static const wh_engine_options engine_defaults = {
    .struct_size = sizeof(wh_engine_options),
    .max_queued_events = 1000000,
    .max_queued_bytes = (size_t)1 << 30,
    .max_payload_bytes = (size_t)1 << 20,
    .validate_json = 1,
    .log_level = WH_LOG_INFO,
};

void wh_engine_options_init_sized(wh_engine_options *o, size_t size)
{
    wh__opts_init(o, size, &engine_defaults, sizeof engine_defaults);
}

/* ---- engine lifecycle ------------------------------------------------------------ */
wh_engine *wh_engine_new(const wh_engine_options *in, int *err)
{
    int dummy;
    if (!err) err = &dummy;
    wh_engine_options o;
    wh_engine_options_init(&o);
    if (wh__opts_copy_in(&o, sizeof o, in) != WH_OK) {
        *err = WH_E_VERSION;
        return NULL;
    }
    const wh_clock *c = o.clock ? o.clock : wh_clock_system();
    if (c->version < 1 || !c->now_ms || !c->wall_ms) {
        *err = WH_E_VERSION;
        return NULL;
    }
    wh_engine *e = wh__calloc(1, sizeof *e);
    if (!e) {
        *err = WH_E_NOMEM;
        return NULL;
    }
    e->clock = *c;
    e->max_payload = o.max_payload_bytes ? o.max_payload_bytes : engine_defaults.max_payload_bytes;
    e->validate_json = o.validate_json;
    e->on_outcome = o.on_outcome;
    e->outcome_user = o.outcome_user;
    e->on_log = o.on_log;
    e->log_user = o.log_user;
    e->log_level = o.log_level;
    e->on_health = o.on_health;
    e->health_user = o.health_user;
    wh__rng_seed(&e->rng, o.seed);
    int rc = WH_OK;
    if (o.transport) {
        if (o.transport->version < 1 || !o.transport->submit || !o.transport->perform ||
            !o.transport->timeout_ms || !o.transport->cancel)
            rc = WH_E_VERSION;
        e->transport = o.transport;
        e->transport_owned = o.transport_owned;
    } else {
        rc = wh__default_transport_new(&o, &e->transport);
        e->transport_owned = 1;
    }
    if (rc == WH_OK) rc = wh__net_engine_init(e, &o);
    if (rc == WH_OK) {
        if (o.queue) {
            if (o.queue->version < 1 || !o.queue->enqueue || !o.queue->claim ||
                !o.queue->ack || !o.queue->retry || !o.queue->release ||
                !o.queue->next_due ||
                !o.queue->size)
                rc = WH_E_VERSION;
            e->queue = o.queue;
            e->queue_owned = o.queue_owned;
        } else {
            rc = wh__default_queue_new(o.max_queued_events, o.max_queued_bytes, &e->queue);
            e->queue_owned = 1;
        }
    }
    if (rc == WH_OK && o.dedupe_window_ms < 0) rc = WH_E_INVAL;
    if (rc == WH_OK && o.dedupe_window_ms > 0) {
        e->dedupe_window = o.dedupe_window_ms;
        /* a durable queue that remembers ids does so in its own store */
        if (wh__queue_sqlite_remember(e->queue, NULL, 0, 0) == WH_E_INVAL) {
            e->dedupe = wh__dedupe_new(o.dedupe_window_ms,
                                       o.dedupe_max_ids ? o.dedupe_max_ids : 1000000);
            if (!e->dedupe) rc = WH_E_NOMEM;
        }
    }
    if (rc == WH_OK && o.operational_endpoint &&
        !(e->op_endpoint = wh__strdup(o.operational_endpoint)))
        rc = WH_E_NOMEM;
    if (rc == WH_OK) {
        e->claim_cap = CLAIM_BATCH;
        e->claim_buf = wh__calloc(e->claim_cap, sizeof *e->claim_buf);
        e->route_cap = 16;
        e->route_buf = wh__calloc(e->route_cap, sizeof *e->route_buf);
        e->route_ids = wh__calloc(e->route_cap, sizeof *e->route_ids);
        if (!e->claim_buf || !e->route_buf || !e->route_ids) rc = WH_E_NOMEM;
    }
    if (rc != WH_OK) {
        /* on failure the engine takes nothing: a transport or queue handed
         * in stays the caller's, whatever *_owned says; only what the
         * engine made itself is destroyed */
        *err = rc;
        if (e->transport == o.transport) e->transport_owned = 0;
        if (e->queue == o.queue) e->queue_owned = 0;
        wh_engine_free(e);
        return NULL;
    }
    *err = WH_OK;
    return e;
}

void wh_transport_free(wh_transport *t)
{
    if (t && t->destroy) t->destroy(t->user);
}

static int queue_durable(const wh_engine *e)
{
    return e->queue->version >= 2 && (e->queue->flags & WH_QUEUE_DURABLE);
}

void wh_engine_free(wh_engine *e)
{
    if (!e) return;
    if (e->in_callback) {
        e->free_pending = 1;
        return;
    }
    e->in_callback++; /* no re-entry while tearing down */
    if (e->queue && e->claim_buf && queue_durable(e)) {
        wh__leave_durable_queue(e);
    } else if (e->queue && e->claim_buf) {
        for (size_t i = 0; i < e->n_slots; i++)
            if (e->eps[i]) wh__cancel_endpoint(e, e->eps[i]);
    }
    if (e->queue) wh__outcomes_deliver(e);
    for (size_t i = 0; i < e->n_slots; i++) wh__ep_free(e->eps[i]);
    free(e->eps);
    wh__router_free(&e->router);
    wh__heap_free(&e->wake);
    free(e->reports);
    free(e->claim_buf);
    free(e->route_buf);
    free(e->route_ids);
    wh__dedupe_free(e->dedupe);
    free(e->op_endpoint);
    if (e->queue && e->queue_owned && e->queue->destroy) e->queue->destroy(e->queue->user);
    if (e->transport && e->transport_owned) wh_transport_free(e->transport);
    wh__net_engine_free(e);
    free(e);
}

/* ---- emit ----------------------------------------------------------------------- */
/* dedupe_window_ms: 1 when id was accepted within the window, 0 when it is
 * new (and now remembered), or a negative status. */
static int dedupe_check(wh_engine *e, const char *id)
{
    int64_t wall = e->clock.wall_ms(e->clock.user);
    if (e->dedupe) return wh__dedupe_check(e->dedupe, id, wall);
    return wh__queue_sqlite_remember(e->queue, id, wall, e->dedupe_window);
}

static void dedupe_forget(wh_engine *e, const char *id)
{
    if (e->dedupe) wh__dedupe_forget(e->dedupe, id);
    else wh__queue_sqlite_remember(e->queue, id, 0, -1);
}

/* Keep the routed endpoints whose payload filter (if any) the payload
 * satisfies; the payload is parsed on the first filter that needs it.
 * Returns how many remain in e->route_buf / e->route_ids. */
static size_t payload_filter(wh_engine *e, const char *data, size_t len, size_t n)
{
    wh__payload p;
    wh__payload_init(&p, data, len);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const wh__filter *f = e->eps[e->route_buf[i]]->conf.payload_filter;
        if (f && !wh__filter_match(f, &p)) continue;
        e->route_buf[k] = e->route_buf[i];
        e->route_ids[k] = e->route_ids[i];
        k++;
    }
    wh__payload_done(&p);
    return k;
}

static int queue_has_headers(const wh_engine *e)
{
    return e->queue->version >= 4 && e->queue->enqueue_with_headers;
}

/* wh_emit, and wh_emit_ex with its headers joined (hdrs: "\n"-separated
 * lines, or NULL). */
static int emit(wh_engine *e, const char *type, const char *channel, const char *data,
                size_t len, const char *id, const char *hdrs, size_t hdrs_len)
{
    if (WH_UNLIKELY(!type || !*type)) {
        e->st.rejected++;
        return wh__fail(e, WH_E_INVAL, "wh_emit: event type is NULL or empty");
    }
    if (WH_UNLIKELY(wh__event_names_check(e, type, channel) != WH_OK))
        return e->st.rejected++, WH_E_INVAL;
    if (WH_UNLIKELY(!data)) {
        e->st.rejected++;
        return wh__fail(e, WH_E_INVAL, "wh_emit: data is NULL");
    }
    if (WH_UNLIKELY(len > e->max_payload)) {
        e->st.rejected++;
        return wh__fail(e, WH_E_TOO_LARGE, "wh_emit: payload of %zu bytes exceeds "
                        "max_payload_bytes %zu", len, e->max_payload);
    }
    if (e->validate_json) {
        size_t off;
        if (WH_UNLIKELY(wh__json_valid(data, len, &off) != WH_OK)) {
            e->st.rejected++;
            return wh__fail(e, WH_E_JSON, "wh_emit: payload is not valid JSON "
                            "(at byte %zu)", off);
        }
    }
    if (id && WH_UNLIKELY(!wh__id_valid(id))) {
        e->st.rejected++;
        return wh__fail(e, WH_E_INVAL, "wh_emit: id must be 1 to 128 printable "
                        "characters without spaces");
    }
    int remembered = 0;
    if (id && e->dedupe_window > 0) {
        int d = dedupe_check(e, id);
        if (d == 1) {
            e->st.duplicates++;
            return wh__fail(e, WH_E_DUPLICATE, "wh_emit: id \"%s\" was accepted within "
                            "dedupe_window_ms (%" PRId64 " ms): not delivered again", id,
                            e->dedupe_window);
        }
        if (d < 0) {
            e->st.rejected++;
            return wh__fail(e, d, "wh_emit: cannot remember the id: %s", wh_strerror(d));
        }
        remembered = 1;
    }
    size_t n = wh__router_match(&e->router, type, channel, e->route_buf,
                                e->route_ids, e->route_cap);
    if (n > e->route_cap) {
        size_t cap = n * 2;
        uint32_t *rb = realloc(e->route_buf, cap * sizeof *rb);
        if (rb) e->route_buf = rb;
        const char **ri = realloc(e->route_ids, cap * sizeof *ri);
        if (ri) e->route_ids = ri;
        if (!rb || !ri) {
            e->st.rejected++;
            if (remembered) dedupe_forget(e, id);
            return wh__fail(e, WH_E_NOMEM, "wh_emit: out of memory");
        }
        e->route_cap = cap;
        n = wh__router_match(&e->router, type, channel, e->route_buf, e->route_ids,
                             e->route_cap);
    }
    if (n && e->n_payload_filters) n = payload_filter(e, data, len, n);
    e->st.emitted++;
    if (n == 0) return 0;
    int64_t now = e->clock.now_ms(e->clock.user);
    int64_t wall = e->clock.wall_ms(e->clock.user);
    char idbuf[37];
    if (!id) {
        wh__uuid7(&e->rng, wall, idbuf);
        id = idbuf;
    }
    wh_event_view ev = {id, type, channel, data, len, wall};
    int rc = hdrs ? e->queue->enqueue_with_headers(e->queue->user, &ev, hdrs, hdrs_len,
                                                   e->route_buf, e->route_ids, n, now)
                  : e->queue->enqueue(e->queue->user, &ev, e->route_buf, e->route_ids, n, now);
    if (rc != WH_OK) {
        e->st.emitted--;
        e->st.rejected++;
        if (remembered) dedupe_forget(e, id);
        if (rc == WH_E_FULL)
            return wh__fail(e, rc, "wh_emit: queue is full (%zu jobs queued)",
                            e->queue->size(e->queue->user));
        if (rc == WH_E_UNAVAILABLE)
            return wh__fail(e, rc, "wh_emit: the queue's store is unreachable and its local "
                            "buffer is full; the event was not stored");
        return wh__fail(e, rc, "wh_emit: queue refused the event");
    }
    e->st.enqueued += n;
    for (size_t i = 0; i < n; i++) {
        wh_ep *ep = e->eps[e->route_buf[i]];
        int64_t when = wh__work_enqueued(e, ep, len, now);
        if (ep->sched.wake.idx == SIZE_MAX || ep->sched.wake.key > when)
            wh__sched_at(e, ep, when);
    }
    return (int)n;
}

int wh_emit(wh_engine *e, const char *type, const char *channel, const char *data,
            size_t len, const char *id)
{
    if (!e) return WH_E_INVAL;
    return emit(e, type, channel, data, len, id, NULL, 0);
}

static const wh_event event_defaults = {.struct_size = sizeof(wh_event)};

void wh_event_init_sized(wh_event *ev, size_t size)
{
    wh__opts_init(ev, size, &event_defaults, sizeof event_defaults);
}

#define WH__MSG_HEADERS_MAX 64
#define WH__MSG_HEADERS_BYTES 8192

/* Names per-message headers may not use (they belong to the request or to
 * the signing schemes). */
static int reserved_header(const char *line, size_t name_len)
{
    static const char *const names[] = {"host", "content-length", "content-type",
                                        "content-encoding", "transfer-encoding",
                                        "connection", "expect", "te", "upgrade",
                                        "user-agent"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == name_len && strncasecmp(line, names[i], name_len) == 0)
            return 1;
    return name_len >= 8 && strncasecmp(line, "webhook-", 8) == 0;
}

int wh_emit_ex(wh_engine *e, const wh_event *in)
{
    if (!e) return WH_E_INVAL;
    if (!in) return wh__fail(e, WH_E_INVAL, "wh_emit_ex: event is NULL");
    wh_event ev = event_defaults;
    if (in->struct_size < offsetof(wh_event, id) + sizeof in->id ||
        wh__opts_copy_in(&ev, sizeof ev, in) != WH_OK)
        return wh__fail(e, WH_E_VERSION, "wh_emit_ex: struct_size %zu not supported",
                        in->struct_size);
    if (!ev.n_headers) return emit(e, ev.type, ev.channel, ev.data, ev.len, ev.id, NULL, 0);
    if (!ev.headers) {
        e->st.rejected++;
        return wh__fail(e, WH_E_INVAL, "wh_emit_ex: headers is NULL with n_headers %zu",
                        ev.n_headers);
    }
    if (ev.n_headers > WH__MSG_HEADERS_MAX) {
        e->st.rejected++;
        return wh__fail(e, WH_E_HEADER, "wh_emit_ex: %zu headers (at most %d)", ev.n_headers,
                        WH__MSG_HEADERS_MAX);
    }
    size_t total = 0;
    for (size_t i = 0; i < ev.n_headers; i++) {
        const char *why = NULL;
        const char *h = ev.headers[i];
        if (!h || wh__header_valid(h, &why) != WH_OK) {
            e->st.rejected++;
            return wh__fail(e, WH_E_HEADER, "wh_emit_ex: headers[%zu]: %s", i,
                            h ? why : "NULL");
        }
        size_t nl = strcspn(h, ":");
        if (reserved_header(h, nl)) {
            e->st.rejected++;
            return wh__fail(e, WH_E_HEADER, "wh_emit_ex: headers[%zu]: \"%.*s\" is a "
                            "reserved header name", i, (int)(nl > 64 ? 64 : nl), h);
        }
        total += strlen(h) + 1;
    }
    if (total > WH__MSG_HEADERS_BYTES) {
        e->st.rejected++;
        return wh__fail(e, WH_E_HEADER, "wh_emit_ex: headers of %zu bytes (at most %d)",
                        total, WH__MSG_HEADERS_BYTES);
    }
    if (!queue_has_headers(e)) {
        e->st.rejected++;
        return wh__fail(e, WH_E_INVAL, "wh_emit_ex: this queue cannot store per-message "
                        "headers (the in-memory and SQLite queues can)");
    }
    char stackbuf[1024];
    char *blob = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (!blob) {
        e->st.rejected++;
        return wh__fail(e, WH_E_NOMEM, "wh_emit_ex: out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < ev.n_headers; i++) {
        size_t l = strlen(ev.headers[i]);
        if (i) blob[o++] = '\n';
        memcpy(blob + o, ev.headers[i], l);
        o += l;
    }
    blob[o] = '\0';
    int rc = emit(e, ev.type, ev.channel, ev.data, ev.len, ev.id, blob, o);
    if (blob != stackbuf) free(blob);
    return rc;
}

/* ---- poll, flush ------------------------------------------------------------ */
/* Shared queue: let it look for jobs other processes wrote; when it found
 * some (or leases expired), wake every endpoint at its next due job, and at
 * the queue's next look at the latest so that wh_timeout_ms() stays finite. */
static void queue_poll(wh_engine *e, int64_t now)
{
    wh_queue *q = e->queue;
    if (q->version < 2 || !q->poll) return;
    int64_t next = INT64_MAX;
    int rc = q->poll(q->user, now, &next);
    if (rc < 0) wh__log(e, WH_LOG_ERROR, "queue poll failed: %s", wh_strerror(rc));
    if (rc <= 0) return;
    for (size_t i = 0; i < e->n_slots; i++) {
        wh_ep *ep = e->eps[i];
        if (!ep) continue;
        int64_t when = wh__sched_next_wake(e, ep);
        wh__sched_sooner(e, ep, next < when ? next : when);
    }
}

static void finish_call(wh_engine *e)
{
    if (e->free_pending && !e->in_callback) {
        e->free_pending = 0;
        wh_engine_free(e);
    }
}

int wh_poll(wh_engine *e, int max_wait_ms)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_poll: called from a callback");
    e->delivered_outcomes = 0;
    int64_t now = e->clock.now_ms(e->clock.user);
    if (wh__sched_first(e) <= now) wh__deliver_due(e, now);
    int wait = 0;
    if (max_wait_ms > 0 && e->rep_n == 0) {
        wait = max_wait_ms;
        int64_t first = wh__sched_first(e);
        if (first != INT64_MAX) {
            int64_t until = first - now;
            if (until < wait) wait = until < 0 ? 0 : (int)until;
        }
    }
    e->in_callback++;
    e->transport->perform(e->transport->user, wait, wh__delivery_done, e);
    e->in_callback--;
    /* what the transport finished is reported now: a retry due at once, and
     * what the callbacks emit, can still go out in this call */
    wh__outcomes_deliver(e);
    now = e->clock.now_ms(e->clock.user);
    if (wh__sched_first(e) <= now) wh__deliver_due(e, now);
    queue_poll(e, now);
    wh__outcomes_deliver(e);
    if (e->queue->commit) {
        int rc = e->queue->commit(e->queue->user);
        if (rc != WH_OK) wh__log(e, WH_LOG_ERROR, "queue commit failed: %s", wh_strerror(rc));
    }
    int n = (int)e->delivered_outcomes;
    finish_call(e);
    return n;
}

int64_t wh_timeout_ms(wh_engine *e)
{
    if (!e) return -1;
    int64_t t = -1;
    int64_t now = e->clock.now_ms(e->clock.user);
    int64_t first = wh__sched_first(e);
    if (first != INT64_MAX) {
        t = first - now;
        if (t < 0) t = 0;
    }
    int64_t tt = e->transport->timeout_ms(e->transport->user);
    if (tt >= 0 && (t < 0 || tt < t)) t = tt;
    return t;
}

int wh_flush(wh_engine *e, int64_t timeout_ms)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_flush: called from a callback");
    /* saturating: wh_flush(e, INT64_MAX) waits as long as it takes */
    int64_t start = e->clock.now_ms(e->clock.user);
    if (timeout_ms < 0) timeout_ms = 0;
    int64_t deadline = timeout_ms > INT64_MAX - start ? INT64_MAX : start + timeout_ms;
    /* partial batches leave now instead of lingering */
    e->flushing = 1;
    for (size_t i = 0; i < e->n_slots; i++) {
        wh_ep *ep = e->eps[i];
        if (ep && ep->conf.mode == WH_MODE_BATCH) wh__sched_update(e, ep);
    }
    int rc = WH_OK;
    for (;;) {
        if (e->queue->size(e->queue->user) == 0 && e->st.in_flight == 0) break;
        int64_t now = e->clock.now_ms(e->clock.user);
        if (now >= deadline) {
            rc = WH_E_TIMEOUT;
            break;
        }
        int64_t left = deadline - now;
        int prc = wh_poll(e, left > 100 ? 100 : (int)left);
        if (prc < 0) {
            e->flushing = 0;
            return prc;
        }
    }
    e->flushing = 0;
    if (rc == WH_OK) return WH_OK;
    return wh__fail(e, WH_E_TIMEOUT, "wh_flush: %zu job(s) still pending at the deadline",
                    e->queue->size(e->queue->user));
}

int wh__engine_configure(wh_engine *e, int64_t dedupe_window_ms,
                         const char *operational_endpoint)
{
    if (operational_endpoint) {
        char *s = wh__strdup(operational_endpoint);
        if (!s) return WH_E_NOMEM;
        free(e->op_endpoint);
        e->op_endpoint = s;
    }
    if (dedupe_window_ms > 0) {
        if (wh__queue_sqlite_remember(e->queue, NULL, 0, 0) == WH_E_INVAL &&
            (!e->dedupe || e->dedupe_window != dedupe_window_ms)) {
            wh__dedupe *d = wh__dedupe_new(dedupe_window_ms, 1000000);
            if (!d) return WH_E_NOMEM;
            wh__dedupe_free(e->dedupe);
            e->dedupe = d;
        }
        e->dedupe_window = dedupe_window_ms;
    }
    return WH_OK;
}

size_t wh_metrics_write(wh_engine *e, char *buf, size_t len)
{
    if (!e) {
        if (buf && len) buf[0] = '\0';
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < e->n_slots; i++) n += e->eps[i] != NULL;
    wh__metrics_ep *rows = wh__calloc(n ? n : 1, sizeof *rows);
    if (!rows) {
        if (buf && len) buf[0] = '\0';
        return 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < e->n_slots; i++) {
        const wh_ep *ep = e->eps[i];
        if (!ep) continue;
        uint64_t in_flight = 0;
        for (const wh__link *l = e->flights.head; l; l = l->next) {
            const wh_delivery *d = WH__CONTAINER_OF(l, const wh_delivery, link);
            if (d->ep == ep) in_flight += d->n_jobs;
        }
        rows[k].id = ep->conf.id;
        rows[k].state = ep->health.state;
        rows[k].in_flight = in_flight;
        /* accepted and not yet finished (approximate for jobs a durable
         * queue held before this engine started) */
        uint32_t done = (uint32_t)(ep->metrics->delivered + ep->metrics->dead + in_flight);
        uint32_t left = ep->work.accepted - done; /* modulo 2^32 */
        rows[k].queued = left < UINT32_MAX / 2 ? left : 0;
        rows[k].m = ep->metrics;
        k++;
    }
    wh__metrics_engine g = {e->st.emitted, e->st.rejected, e->st.duplicates, e->st.requests};
    size_t need = wh__metrics_format(&g, rows, k, buf, len);
    free(rows);
    return need;
}

int wh_stats_get_sized(const wh_engine *e, wh_stats *out, size_t size)
{
    /* the first version of wh_stats ends with bytes_sent */
    if (!e || !out || size < offsetof(wh_stats, bytes_sent) + sizeof out->bytes_sent)
        return wh__fail((wh_engine *)e, WH_E_INVAL, "wh_stats_get: %s",
                        !out ? "out is NULL" : "struct size too small (use wh_stats_get)");
    wh_stats st = e->st;
    size_t stored = e->queue->size(e->queue->user), jobs_in_flight = wh__jobs_in_flight(e);
    st.queued = stored > jobs_in_flight ? stored - jobs_in_flight : 0;
    st.struct_size = size < sizeof st ? size : sizeof st;
    memcpy(out, &st, st.struct_size);
    return WH_OK;
}

/* ---- endpoints ---------------------------------------------------------------- */
int wh_endpoint_add(wh_engine *e, const wh_endpoint_options *in)
{
    if (!e) return WH_E_INVAL;
    if (!in) return wh__fail(e, WH_E_INVAL, "wh_endpoint_add: options are NULL");
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_endpoint_add: called from a callback");
    int rc = wh__endpoint_check(e, in, "endpoint");
    if (rc != WH_OK) return rc;
    wh_endpoint_options o;
    wh__endpoint_normalize(in, &o);
    if (e->n_slots >= (size_t)INT32_MAX - 1)
        return wh__fail(e, WH_E_FULL, "too many endpoints");
    if (wh__array_reserve(&e->eps, &e->cap_slots, e->n_slots + 1, sizeof *e->eps, 16) != WH_OK ||
        wh__sched_reserve(e, e->n_slots + 1) != WH_OK)
        return wh__fail(e, WH_E_NOMEM, "out of memory");
    int handle = (int)e->n_slots + 1;
    wh_ep *ep = wh__ep_new(e, &o, handle);
    if (!ep) return wh__fail(e, WH_E_NOMEM, "out of memory");
    if (wh__router_add(&e->router, ep) != WH_OK) {
        wh__ep_free(ep);
        return wh__fail(e, WH_E_NOMEM, "out of memory");
    }
    if (e->queue->bind) {
        rc = e->queue->bind(e->queue->user, ep->slot, ep->conf.id);
        if (rc != WH_OK) {
            /* the id, never the URL (it may hold a password) */
            rc = wh__fail(e, rc, "endpoint: the queue cannot bind \"%s\"", ep->conf.id);
            wh__router_remove(&e->router, ep);
            wh__ep_free(ep);
            return rc;
        }
    }
    e->eps[e->n_slots++] = ep;
    if (ep->conf.payload_filter) e->n_payload_filters++;
    /* a persistent queue may already hold jobs for this endpoint */
    int64_t due = e->queue->next_due(e->queue->user, ep->slot);
    if (due != INT64_MAX) wh__sched_at(e, ep, due);
    wh__log(e, WH_LOG_DEBUG, "endpoint %d \"%s\" added", handle, ep->conf.id);
    return handle;
}

static wh_ep *ep_get(wh_engine *e, int handle)
{
    if (handle <= 0 || (size_t)handle > e->n_slots) return NULL;
    return e->eps[handle - 1];
}

int wh_endpoint_remove(wh_engine *e, int handle)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_endpoint_remove: called from a callback");
    wh_ep *ep = ep_get(e, handle);
    if (!ep) return wh__fail(e, WH_E_NOT_FOUND, "no endpoint with handle %d", handle);
    wh__router_remove(&e->router, ep);
    wh__cancel_endpoint(e, ep);
    wh__outcomes_deliver(e); /* before ep's strings go */
    e->eps[handle - 1] = NULL;
    if (ep->conf.payload_filter) e->n_payload_filters--;
    wh__ep_free(ep);
    finish_call(e);
    return WH_OK;
}

int wh_endpoint_find(wh_engine *e, const char *id)
{
    if (!e || !id) return wh__fail(e, WH_E_INVAL, "wh_endpoint_find: id is NULL");
    return wh__endpoint_find(e, id);
}

int wh_endpoint_enable(wh_engine *e, int endpoint, int enable)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_endpoint_enable: called from a callback");
    if (endpoint <= 0 || (size_t)endpoint > e->n_slots || !e->eps[endpoint - 1])
        return wh__fail(e, WH_E_NOT_FOUND, "no endpoint with handle %d", endpoint);
    wh_ep *ep = e->eps[endpoint - 1];
    int64_t now = e->clock.now_ms(e->clock.user);
    wh__health_host(e, ep, enable, now);
    if (enable) wh__sched_update(e, ep);
    else wh__sched_cancel(e, ep);
    wh__outcomes_deliver(e);
    finish_call(e);
    return WH_OK;
}

int wh_endpoint_state(wh_engine *e, int endpoint)
{
    if (!e) return WH_E_INVAL;
    if (endpoint <= 0 || (size_t)endpoint > e->n_slots || !e->eps[endpoint - 1])
        return WH_E_NOT_FOUND;
    return (int)e->eps[endpoint - 1]->health.state;
}
