/* The public engine API: lifecycle, emit, poll, flush, stats and the
 * endpoint calls.  No threads: every step runs inside a call of the host.
 *
 * The top of the one-way call graph (see engine.h): it routes (router.c),
 * enqueues (the queue's vtable), schedules (scheduler.c), has deliveries
 * made (delivery.c) and hands the queued outcomes to the host at the end
 * of each call (outcome.c).  Nothing calls back into this file.
 *
 * The driving calls (wh_poll, wh_socket_action, wh_flush) are rounds:
 * round_begin takes what the inbox holds and starts what is due; the
 * transport step reports completions; round_end hands outcomes over,
 * starts what the completions freed (in the same call), lets the queue
 * poll and commit, and re-arms the loop's timer (loop.c). */
#include "engine.h"
#include "dedupe.h"
#include "filter.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define WH_INBOX_DEFAULT 65536

#define CLAIM_BATCH 64

static void finish_call(wh_engine *e);
static void inbox_drain(wh_engine *e);

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
    .inbox_capacity = WH_INBOX_DEFAULT,
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
    wh__wall_refresh(e);
    e->max_payload = o.max_payload_bytes ? o.max_payload_bytes : engine_defaults.max_payload_bytes;
    e->validate_json = o.validate_json;
    e->on_outcome = o.on_outcome;
    e->outcome_user = o.outcome_user;
    e->on_log = o.on_log;
    e->log_user = o.log_user;
    e->log_level = o.log_level;
    e->on_health = o.on_health;
    e->health_user = o.health_user;
    e->outcome_queue = o.outcome_queue != 0;
    e->on_batch_outcome = o.on_batch_outcome;
    e->batch_outcome_user = o.batch_outcome_user;
    e->epfd = e->tfd = e->q_fd = -1;
    e->armed = e->tp_due = e->queue_next = INT64_MAX;
    wh__rng_seed(&e->rng, o.seed);
    int rc = WH_OK;
    e->wfd = wh__wakeup_fd_new();
    if (e->wfd < 0) rc = WH_E_IO;
    if (o.on_batch_outcome && o.outcome_queue) rc = WH_E_INVAL;
    if (rc == WH_OK && o.emit_any_thread) {
        e->inbox = wh__inbox_new(o.inbox_capacity ? o.inbox_capacity : WH_INBOX_DEFAULT);
        if (!e->inbox) rc = WH_E_NOMEM;
    }
    if (rc != WH_OK) {
    } else if (o.transport) {
        if (o.transport->version < 1 || !o.transport->submit || !o.transport->perform ||
            !o.transport->timeout_ms || !o.transport->cancel ||
            (o.transport->version >= 2 &&
             (!o.transport->set_loop || !o.transport->socket_action)))
            rc = WH_E_VERSION;
        e->transport = o.transport;
        e->transport_owned = o.transport_owned;
    } else if (o.transport_kind < WH_TRANSPORT_DEFAULT || o.transport_kind > WH_TRANSPORT_AUTO) {
        rc = WH_E_INVAL;
    } else {
        rc = wh__default_transport_new(&o, &e->transport);
        e->transport_owned = 1;
        e->transport_library = 1;
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
        /* a shared queue's first poll is due at once */
        if (rc == WH_OK && e->queue->version >= 2 && e->queue->poll) e->queue_next = INT64_MIN;
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
    /* the host's loop lets go of every fd before the transport goes */
    if (e->loop_on) wh__loop_clear(e);
    /* events accepted into the inbox are queued, so they are reported */
    if (e->inbox && e->queue && e->claim_buf) inbox_drain(e);
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
    wh__delivery_pool_free(e);
    free(e->reports);
    free(e->bjobs);
    free(e->bviews);
    free(e->claim_buf);
    free(e->route_buf);
    free(e->route_ids);
    wh__dedupe_free(e->dedupe);
    free(e->op_endpoint);
    if (e->queue && e->queue_owned && e->queue->destroy) e->queue->destroy(e->queue->user);
    if (e->transport && e->transport_owned) wh_transport_free(e->transport);
    wh__outcome_pull_free(e);
    wh__inbox_free(e->inbox);
    if (e->wfd >= 0) close(e->wfd);
    wh__net_engine_free(e);
    free(e);
}

/* ---- clocks --------------------------------------------------------------------- */
void wh__wall_refresh(wh_engine *e)
{
    int64_t m = e->clock.now_ms(e->clock.user), w = e->clock.wall_ms(e->clock.user);
    e->wall_off = w - m;
    e->wall_off_at = m;
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

/* The checks of wh_emit, made in the calling thread: a status and its
 * message in msg, or WH_OK. */
static int check_event(const wh_engine *e, const char *type, const char *channel,
                       const char *data, size_t len, const char *id, int validate, char *msg,
                       size_t cap)
{
    if (WH_UNLIKELY(!type || !*type)) {
        snprintf(msg, cap, "wh_emit: event type is NULL or empty");
        return WH_E_INVAL;
    }
    /* wh__event_names_check's rules, without touching the engine (any
     * thread may be here) */
    size_t bad;
    if (WH_UNLIKELY(!wh__utf8_valid(type, &bad))) {
        snprintf(msg, cap, "wh_emit: event type is not valid UTF-8 (at byte %zu)", bad);
        return WH_E_INVAL;
    }
    if (channel && WH_UNLIKELY(!wh__utf8_valid(channel, &bad))) {
        snprintf(msg, cap, "wh_emit: channel is not valid UTF-8 (at byte %zu)", bad);
        return WH_E_INVAL;
    }
    if (WH_UNLIKELY(!data)) {
        snprintf(msg, cap, "wh_emit: data is NULL");
        return WH_E_INVAL;
    }
    if (WH_UNLIKELY(len > e->max_payload)) {
        snprintf(msg, cap, "wh_emit: payload of %zu bytes exceeds max_payload_bytes %zu", len,
                 e->max_payload);
        return WH_E_TOO_LARGE;
    }
    if (validate) {
        size_t off;
        if (WH_UNLIKELY(wh__json_valid(data, len, &off) != WH_OK)) {
            snprintf(msg, cap, "wh_emit: payload is not valid JSON (at byte %zu)", off);
            return WH_E_JSON;
        }
    }
    if (id && WH_UNLIKELY(!wh__id_valid(id))) {
        snprintf(msg, cap, "wh_emit: id must be 1 to 128 printable characters without spaces");
        return WH_E_INVAL;
    }
    return WH_OK;
}

/* Route and enqueue a checked event (wall < 0: read the clock now), with
 * its per-message headers (hdrs: "\n"-separated lines, or NULL).  Returns
 * the fan-out or a status (the last error is set); WH_E_DUPLICATE for an id
 * accepted within dedupe_window_ms (counted in st.duplicates). */
static int accept_event(wh_engine *e, const char *type, const char *channel, const char *data,
                        size_t len, const char *id, int64_t wall, const char *hdrs,
                        size_t hdrs_len)
{
    int remembered = 0;
    if (id && e->dedupe_window > 0) {
        int d = dedupe_check(e, id);
        if (d == 1) {
            e->st.duplicates++;
            return wh__fail(e, WH_E_DUPLICATE, "wh_emit: id \"%s\" was accepted within "
                            "dedupe_window_ms (%" PRId64 " ms): not delivered again", id,
                            e->dedupe_window);
        }
        if (d < 0) return wh__fail(e, d, "wh_emit: cannot remember the id: %s", wh_strerror(d));
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
    if (wall < 0) wall = wh__wall_at(e, now);
    char idbuf[37];
    uint8_t uuid[16];
    int rc;
    if (!id && wh__queue_memory_is(e->queue)) {
        /* the memory queue keeps the engine's ids as 16 bytes: no text */
        wh__uuid7_bytes(&e->rng, wall, uuid);
        wh_event_view ev = {NULL, type, channel, data, len, wall};
        rc = wh__queue_memory_enqueue_uuid(e->queue, &ev, uuid, hdrs, hdrs_len, e->route_buf,
                                           n, now);
    } else {
        if (!id) {
            wh__uuid7(&e->rng, wall, idbuf);
            id = idbuf;
        }
        wh_event_view ev = {id, type, channel, data, len, wall};
        rc = hdrs ? e->queue->enqueue_with_headers(e->queue->user, &ev, hdrs, hdrs_len,
                                                   e->route_buf, e->route_ids, n, now)
                  : e->queue->enqueue(e->queue->user, &ev, e->route_buf, e->route_ids, n, now);
    }
    if (rc != WH_OK) {
        e->st.emitted--;
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
    int64_t first = wh__sched_first(e);
    for (size_t i = 0; i < n; i++) {
        wh_ep *ep = e->eps[e->route_buf[i]];
        int64_t when = wh__work_enqueued(e, ep, len, now);
        if (ep->sched.wake.idx == SIZE_MAX || ep->sched.wake.key > when)
            wh__sched_at(e, ep, when);
    }
    /* a loop's timer learns of the earlier deadline at once */
    if (e->loop_on && !e->in_round && wh__sched_first(e) < first) wh__loop_rearm(e);
    return (int)n;
}

/* emit_any_thread: check, copy into the inbox, wake the engine. */
static int emit_any(wh_engine *e, const char *type, const char *channel, const char *data,
                    size_t len, const char *id, int validate)
{
    char msg[256];
    int rc = check_event(e, type, channel, data, len, id, validate, msg, sizeof msg);
    if (rc == WH_OK) {
        int wake = 0;
        rc = wh__inbox_push(e->inbox, type, channel, data, len, id,
                            e->clock.wall_ms(e->clock.user), &wake);
        if (rc == WH_OK) {
            if (wake) wh_wakeup(e);
            return 0;
        }
        snprintf(msg, sizeof msg, rc == WH_E_FULL ? "wh_emit: the inbox is full "
                 "(inbox_capacity): back off and retry" : "wh_emit: out of memory");
    }
    wh__inbox_reject(e->inbox);
    return wh__fail_tl(e, rc, "%s", msg);
}

/* wh_emit; validate: check that data is JSON. */
static int emit(wh_engine *e, const char *type, const char *channel, const char *data,
                size_t len, const char *id, int validate)
{
    if (e->inbox) return emit_any(e, type, channel, data, len, id, validate);
    char msg[256];
    int rc = check_event(e, type, channel, data, len, id, validate, msg, sizeof msg);
    if (WH_UNLIKELY(rc != WH_OK)) {
        e->st.rejected++;
        return wh__fail(e, rc, "%s", msg);
    }
    rc = accept_event(e, type, channel, data, len, id, -1, NULL, 0);
    if (rc < 0 && rc != WH_E_DUPLICATE) e->st.rejected++;
    return rc;
}

int wh_emit(wh_engine *e, const char *type, const char *channel, const char *data,
            size_t len, const char *id)
{
    if (!e) return WH_E_INVAL;
    return emit(e, type, channel, data, len, id, e->validate_json);
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
    /* a trusted producer's payload is not checked (wh_event.trusted_json) */
    int validate = e->validate_json && !ev.trusted_json;
    if (!ev.n_headers) return emit(e, ev.type, ev.channel, ev.data, ev.len, ev.id, validate);
    if (e->inbox) {
        e->st.rejected++;
        return wh__fail(e, WH_E_INVAL, "wh_emit_ex: per-message headers need the engine's "
                        "thread (emit_any_thread is set)");
    }
    char cmsg[256];
    int crc = check_event(e, ev.type, ev.channel, ev.data, ev.len, ev.id, validate, cmsg,
                          sizeof cmsg);
    if (crc != WH_OK) {
        e->st.rejected++;
        return wh__fail(e, crc, "%s", cmsg);
    }
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
    int rc = accept_event(e, ev.type, ev.channel, ev.data, ev.len, ev.id, -1, blob, o);
    if (rc < 0 && rc != WH_E_DUPLICATE) e->st.rejected++;
    if (blob != stackbuf) free(blob);
    return rc;
}

/* ---- poll, flush ------------------------------------------------------------ */

/* Take what the inbox holds (engine's thread).  An event the queue refuses
 * as full stays in the inbox, first in line, for the next round. */
static void inbox_drain(wh_engine *e)
{
    if (!e->inbox) return;
    wh__inbox_armed(e->inbox);
    const wh__inbox_item *it;
    while ((it = wh__inbox_peek(e->inbox))) {
        int rc = accept_event(e, it->type, it->channel, it->data, it->len, it->id, it->wall,
                              NULL, 0);
        if (rc == WH_E_FULL) break;
        if (rc < 0 && rc != WH_E_DUPLICATE) { /* a duplicate is counted, not an error */
            e->st.rejected++;
            wh__log(e, WH_LOG_ERROR, "an event from the inbox could not be queued: %s",
                    wh_last_error(e));
        }
        wh__inbox_pop(e->inbox);
    }
}

/* ---- poll, flush, loop ---------------------------------------------------- */
/* Jobs may have become claimable: wake every endpoint at its next due job,
 * and at `next` at the latest. */
static void queue_wake(wh_engine *e, int64_t next)
{
    for (size_t i = 0; i < e->n_slots; i++) {
        wh_ep *ep = e->eps[i];
        if (!ep) continue;
        int64_t when = wh__sched_next_wake(e, ep);
        wh__sched_sooner(e, ep, next < when ? next : when);
    }
}

/* Shared queue: let it look for jobs other processes wrote; when it found
 * some (or leases expired), wake every endpoint at its next due job, and at
 * the queue's next look at the latest so that wh_timeout_ms() stays finite.
 * The queue's next look is also a deadline of the loop's timer. */
static void queue_poll(wh_engine *e, int64_t now)
{
    wh_queue *q = e->queue;
    if (q->version < 2 || !q->poll) return;
    int64_t next = INT64_MAX;
    int rc = q->poll(q->user, now, &next);
    e->queue_next = next;
    if (rc < 0) wh__log(e, WH_LOG_ERROR, "queue poll failed: %s", wh_strerror(rc));
    if (rc > 0) queue_wake(e, next);
}

/* The queue's socket is ready (queue version 5). */
static void queue_io(wh_engine *e, int fd, int events)
{
    int rc = e->queue->socket_action(e->queue->user, fd, events);
    if (rc < 0) wh__log(e, WH_LOG_ERROR, "queue socket_action failed: %s", wh_strerror(rc));
    if (rc > 0) queue_wake(e, e->queue_next);
}

static void finish_call(wh_engine *e)
{
    if (e->free_pending && !e->in_callback) {
        e->free_pending = 0;
        wh_engine_free(e);
    }
}

static int64_t now_of(wh_engine *e) { return e->clock.now_ms(e->clock.user); }

static void round_begin(wh_engine *e)
{
    e->delivered_outcomes = 0;
    e->in_round++;
    inbox_drain(e);
    int64_t now = now_of(e);
    (void)wh__wall_at(e, now); /* refresh the wall offset when it is due */
    if (wh__sched_first(e) <= now) wh__deliver_due(e, now);
}

/* The transport's timer is due (loop mode): let it run its timers. */
static void transport_timeout(wh_engine *e)
{
    e->tp_due = INT64_MAX;
    e->in_callback++;
    e->transport->socket_action(e->transport->user, WH_SOCKET_TIMEOUT, 0, wh__delivery_done, e);
    e->in_callback--;
}

static int round_end(wh_engine *e)
{
    /* what the transport finished is reported now: a retry due at once, and
     * what the callbacks emit, can still go out in this call */
    wh__outcomes_deliver(e);
    inbox_drain(e); /* what arrived while the transport waited or callbacks ran */
    int64_t now = now_of(e);
    if (wh__sched_first(e) <= now) wh__deliver_due(e, now);
    /* requests just started: the transport's timer of 0 ms starts their
     * connections in this call, not in the next loop iteration */
    for (int k = 0; k < 2 && e->tp_loop && e->tp_due <= now; k++) {
        transport_timeout(e);
        wh__outcomes_deliver(e);
        now = now_of(e);
        if (wh__sched_first(e) <= now) wh__deliver_due(e, now);
    }
    queue_poll(e, now);
    wh__outcomes_deliver(e);
    if (e->queue->commit) {
        int rc = e->queue->commit(e->queue->user);
        if (rc != WH_OK) wh__log(e, WH_LOG_ERROR, "queue commit failed: %s", wh_strerror(rc));
    }
    e->in_round--;
    wh__loop_rearm(e);
    int n = (int)e->delivered_outcomes;
    finish_call(e);
    return n;
}

/* One ready fd, or the timer (WH_SOCKET_TIMEOUT), or the wakeup fd. */
static void dispatch(wh_engine *e, int fd, int events)
{
    wh_transport *t = e->transport;
    if (fd == WH_SOCKET_TIMEOUT) {
        e->armed = INT64_MAX; /* the timer fired: not armed any more */
        if (e->tp_loop) {
            if (e->tp_due <= now_of(e)) transport_timeout(e);
        } else if (e->st.in_flight) {
            e->in_callback++;
            t->perform(t->user, 0, wh__delivery_done, e);
            e->in_callback--;
        }
        return;
    }
    if (fd == e->wfd) {
        wh__wakeup_drain(fd);
        inbox_drain(e);
        return;
    }
    if (e->q_loop && fd == e->q_fd) {
        queue_io(e, fd, events);
        return;
    }
    if (!e->tp_loop) return;
    e->in_callback++;
    t->socket_action(t->user, fd, events, wh__delivery_done, e);
    e->in_callback--;
}

/* A deadline is due now or events wait in the inbox (requests in flight
 * are not "due": their sockets wake an epoll wait). */
static int due_now(wh_engine *e)
{
    if (e->inbox && !wh__inbox_empty(e->inbox)) return 1;
    int64_t now = now_of(e);
    return wh__sched_first(e) <= now || e->queue_next <= now || e->tp_due <= now;
}

static int fd_poll(wh_engine *e, int max_wait_ms)
{
    round_begin(e);
    int wait = 0;
    if (max_wait_ms > 0 && e->rep_n == 0 && !due_now(e)) {
        wait = max_wait_ms;
        wh__loop_rearm(e); /* the timerfd ends the wait at the next deadline */
    }
    wh__loop_fd_wait(e, wait, dispatch);
    /* due without the timerfd having fired yet (it is read next time) */
    if (e->tp_loop && e->tp_due <= now_of(e)) transport_timeout(e);
    return round_end(e);
}

int wh_poll(wh_engine *e, int max_wait_ms)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_poll: called from a callback");
    /* a queue on a socket (version 5) is driven on the engine's own epoll
     * set, so that the wait covers its fd too */
    if (!e->loop_on && wh__loop_queue_wants(e) &&
        !(e->transport->version >= 2 && e->st.in_flight) &&
        wh__loop_set(e, NULL, 1) == WH_OK)
        e->fd_implicit = 1;
    if (e->fd_mode) return fd_poll(e, max_wait_ms);
    round_begin(e);
    int64_t now = now_of(e);
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
    return round_end(e);
}

int wh__budget_over(const wh_engine *e)
{
    return e->budget_end_ns && wh__mono_ns() >= e->budget_end_ns;
}

int wh__budget_spent(const wh_engine *e)
{
    return e->budget_end_ns && e->st.requests != e->budget_req0 && wh__mono_ns() >= e->budget_end_ns;
}

int wh_poll_budget(wh_engine *e, int64_t budget_us)
{
    if (!e) return WH_E_INVAL;
    if (budget_us < 0)
        return wh__fail(e, WH_E_INVAL, "wh_poll_budget: budget_us must be >= 0 (got %" PRId64 ")",
                        budget_us);
    if (budget_us > INT64_MAX / 2000) budget_us = INT64_MAX / 2000;
    e->budget_end_ns = wh__mono_ns() + budget_us * 1000;
    e->budget_req0 = e->st.requests;
    int n = wh_poll(e, 0);
    e->budget_end_ns = 0;
    return n;
}

int wh_socket_action(wh_engine *e, int fd, int events)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_socket_action: called from a callback");
    if (!e->loop_on || e->fd_mode)
        return wh__fail(e, WH_E_INVAL, "wh_socket_action: no loop attached (wh_loop_attach)");
    round_begin(e);
    dispatch(e, fd, events);
    return round_end(e);
}

static int attach_check(wh_engine *e, const char *fn)
{
    if (e->in_callback) return wh__fail(e, WH_E_RECURSIVE, "%s: called from a callback", fn);
    /* the epoll set wh_poll made for the queue gives way to the host's */
    if (e->fd_implicit && !(e->transport->version >= 2 && e->st.in_flight))
        wh__loop_clear(e);
    if (e->loop_on)
        return wh__fail(e, WH_E_EXISTS, "%s: %s is already attached (detach first)", fn,
                        e->fd_mode ? "wh_fd" : "a loop");
    if (e->transport->version >= 2 && e->st.in_flight)
        return wh__fail(e, WH_E_INVAL, "%s: %" PRIu64 " request(s) in flight: attach before "
                        "the first wh_poll or when none is", fn, e->st.in_flight);
    return WH_OK;
}

int wh_loop_attach(wh_engine *e, const wh_loop *loop)
{
    if (!e) return WH_E_INVAL;
    if (!loop) {
        if (e->in_callback)
            return wh__fail(e, WH_E_RECURSIVE, "wh_loop_attach: called from a callback");
        if (e->fd_mode)
            return wh__fail(e, WH_E_INVAL, "wh_loop_attach: wh_fd() is in use (it stays)");
        wh__loop_clear(e);
        return WH_OK;
    }
    if (loop->version < 1)
        return wh__fail(e, WH_E_VERSION, "wh_loop_attach: loop.version %d", loop->version);
    if (!loop->watch || !loop->timer)
        return wh__fail(e, WH_E_INVAL, "wh_loop_attach: loop.%s is NULL",
                        loop->watch ? "timer" : "watch");
    int rc = attach_check(e, "wh_loop_attach");
    if (rc != WH_OK) return rc;
    rc = wh__loop_set(e, loop, 0);
    if (rc != WH_OK) return wh__fail(e, rc, "wh_loop_attach: cannot attach");
    return WH_OK;
}

const wh_loop *wh_loop_attached(const wh_engine *e)
{
    return e && e->loop_on && !e->fd_mode ? &e->loop : NULL;
}

int wh_fd(wh_engine *e)
{
    if (!e) return WH_E_INVAL;
    if (e->fd_mode) {
        e->fd_implicit = 0; /* the host's now: it stays */
        return e->epfd;
    }
    int rc = attach_check(e, "wh_fd");
    if (rc != WH_OK) return rc;
    rc = wh__loop_set(e, NULL, 1);
    if (rc != WH_OK) return wh__fail(e, rc, "wh_fd: cannot create the epoll set or timerfd");
    return e->epfd;
}

int wh_wakeup(wh_engine *e)
{
    if (!e) return WH_E_INVAL;
    wh__wakeup_signal(e->wfd);
    wh_transport *t = e->transport;
    if (t->version >= 2 && t->wakeup) t->wakeup(t->user);
    return WH_OK;
}

int wh_work_due(wh_engine *e)
{
    if (!e) return 0;
    if (e->st.in_flight || e->rep_n) return 1;
    return due_now(e);
}

int wh_outcome_next(wh_engine *e, wh_outcome *out)
{
    if (!e || !out) return WH_E_INVAL;
    if (!e->outcome_queue)
        return wh__fail(e, WH_E_INVAL, "wh_outcome_next: outcome_queue is not set");
    return wh__outcome_pull(e, out);
}

int64_t wh_timeout_ms(wh_engine *e)
{
    if (!e) return -1;
    int64_t t = -1;
    int64_t now = now_of(e);
    if (e->inbox && !wh__inbox_empty(e->inbox)) return 0;
    int64_t first = wh__sched_first(e);
    if (first != INT64_MAX) {
        t = first - now;
        if (t < 0) t = 0;
    }
    int64_t tt;
    if (e->tp_loop)
        tt = e->tp_due == INT64_MAX ? -1 : e->tp_due <= now ? 0 : e->tp_due - now;
    else
        tt = e->transport->timeout_ms(e->transport->user);
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
        if (e->queue->size(e->queue->user) == 0 && e->st.in_flight == 0 &&
            (!e->inbox || wh__inbox_empty(e->inbox)))
            break;
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
    if (e->inbox) st.rejected += wh__inbox_rejected(e->inbox);
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
    wh__loop_rearm(e);
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
    wh__loop_rearm(e);
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
    wh__loop_rearm(e);
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
