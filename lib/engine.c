/* The engine: accepts events, schedules jobs per endpoint, starts requests
 * through the transport, classifies outcomes, retries, dead-letters, and
 * reports everything through the host's callbacks.  No threads: every step
 * runs inside wh_emit / wh_poll / wh_flush. */
#include "engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_BATCH 64

/* ---- errors and logging ------------------------------------------------------ */
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

/* ---- options ------------------------------------------------------------------ */
void wh_engine_options_init_sized(wh_engine_options *o, size_t size)
{
    if (!o || size < sizeof(size_t)) return;
    wh_engine_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = size < sizeof d ? size : sizeof d;
    d.max_queued_events = 1000000;
    d.max_queued_bytes = (size_t)1 << 30;
    d.max_payload_bytes = (size_t)1 << 20;
    d.validate_json = 1;
    d.log_level = WH_LOG_INFO;
    memcpy(o, &d, d.struct_size);
}

/* ---- endpoint wake heap ------------------------------------------------------- */
static void heap_set(wh_engine *e, size_t i, wh_ep *ep)
{
    e->heap[i] = ep;
    ep->heap_idx = i;
}

static void heap_up(wh_engine *e, size_t i)
{
    wh_ep *ep = e->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (e->heap[p]->wake <= ep->wake) break;
        heap_set(e, i, e->heap[p]);
        i = p;
    }
    heap_set(e, i, ep);
}

static void heap_down(wh_engine *e, size_t i)
{
    wh_ep *ep = e->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->heap_n) break;
        if (c + 1 < e->heap_n && e->heap[c + 1]->wake < e->heap[c]->wake) c++;
        if (e->heap[c]->wake >= ep->wake) break;
        heap_set(e, i, e->heap[c]);
        i = c;
    }
    heap_set(e, i, ep);
}

void wh__ep_unschedule(wh_engine *e, wh_ep *ep)
{
    size_t i = ep->heap_idx;
    if (i == SIZE_MAX) return;
    ep->heap_idx = SIZE_MAX;
    ep->wake = INT64_MAX;
    if (--e->heap_n == i) return;
    wh_ep *moved = e->heap[e->heap_n];
    heap_set(e, i, moved);
    heap_up(e, i);
    if (moved->heap_idx == i) heap_down(e, i);
}

int wh__sched_reserve(wh_engine *e, size_t n)
{
    if (n <= e->heap_cap) return WH_OK;
    size_t cap = e->heap_cap ? e->heap_cap : 16;
    while (cap < n) cap *= 2;
    wh_ep **h = realloc(e->heap, cap * sizeof *h);
    if (!h) return WH_E_NOMEM;
    e->heap = h;
    e->heap_cap = cap;
    return WH_OK;
}

/* Make ep wake at `when` (INT64_MAX: not at all), or later when its state
 * or rate limit says so.  An endpoint with every in-flight slot taken (one
 * while probing) is left out: a completion reschedules it. */
void wh__ep_schedule(wh_engine *e, wh_ep *ep, int64_t when)
{
    uint32_t lim = ep->state == WH_EP_PROBING ? 1 : ep->max_in_flight;
    when = wh__policy_gate(ep, when);
    if (when == INT64_MAX || ep->in_flight >= lim) {
        wh__ep_unschedule(e, ep);
        return;
    }
    if (ep->heap_idx == SIZE_MAX) {
        /* wh__sched_reserve() at endpoint add makes room for every
         * endpoint, so this always fits. */
        ep->wake = when;
        heap_set(e, e->heap_n++, ep);
        heap_up(e, ep->heap_idx);
        return;
    }
    int64_t old = ep->wake;
    ep->wake = when;
    if (when < old) heap_up(e, ep->heap_idx);
    else if (when > old) heap_down(e, ep->heap_idx);
}

/* ---- outcomes -------------------------------------------------------------------- */
static void report(wh_engine *e, wh_outcome *o)
{
    e->polled_outcomes++;
    if (!e->on_outcome) return;
    e->in_callback++;
    e->on_outcome(e->outcome_user, o);
    e->in_callback--;
}

static void outcome_init(wh_outcome *o, wh_outcome_kind kind, const wh_ep *ep,
                         const wh_job *job)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->endpoint = ep->handle;
    o->endpoint_id = ep->id;
    o->url = wh__url_redacted(ep->url);
    o->ev = job->ev;
    o->error_msg = "";
}

/* ---- engine lifecycle ------------------------------------------------------------ */
wh_engine *wh_engine_new(const wh_engine_options *in, int *err)
{
    int dummy;
    if (!err) err = &dummy;
    wh_engine_options o;
    wh_engine_options_init(&o);
    if (in) {
        if (in->struct_size < sizeof(size_t) || in->struct_size > sizeof o * 4) {
            *err = WH_E_VERSION;
            return NULL;
        }
        memcpy(&o, in, in->struct_size < sizeof o ? in->struct_size : sizeof o);
    }
    wh_engine *e = wh__calloc(1, sizeof *e);
    if (!e) {
        *err = WH_E_NOMEM;
        return NULL;
    }
    const wh_clock *c = o.clock ? o.clock : wh_clock_system();
    if (c->version < 1 || !c->now_ms || !c->wall_ms) {
        free(e);
        *err = WH_E_VERSION;
        return NULL;
    }
    e->clock = *c;
    e->max_payload = o.max_payload_bytes ? o.max_payload_bytes : ((size_t)1 << 20);
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
        rc = wh__default_transport_new(&e->transport);
        e->transport_owned = 1;
    }
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
    if (rc == WH_OK) {
        e->claim_cap = CLAIM_BATCH;
        e->claim_buf = wh__calloc(e->claim_cap, sizeof *e->claim_buf);
        e->route_cap = 16;
        e->route_buf = wh__calloc(e->route_cap, sizeof *e->route_buf);
        e->route_ids = wh__calloc(e->route_cap, sizeof *e->route_ids);
        if (!e->claim_buf || !e->route_buf || !e->route_ids) rc = WH_E_NOMEM;
    }
    if (rc != WH_OK) {
        *err = rc;
        e->free_pending = 0;
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

static int queue_durable(const wh_engine *e);
static void leave_durable_queue(wh_engine *e);

void wh_engine_free(wh_engine *e)
{
    if (!e) return;
    if (e->in_callback) {
        e->free_pending = 1;
        return;
    }
    e->in_callback++; /* no re-entry while tearing down */
    if (e->queue && e->claim_buf && queue_durable(e))
        leave_durable_queue(e);
    else if (e->queue && e->claim_buf)
        for (size_t i = 0; i < e->n_slots; i++)
            if (e->eps[i]) wh__cancel_endpoint(e, e->eps[i]);
    for (size_t i = 0; i < e->n_slots; i++) wh__ep_free(e->eps[i]);
    free(e->eps);
    wh__router_free(&e->router);
    free(e->heap);
    free(e->claim_buf);
    free(e->route_buf);
    free(e->route_ids);
    if (e->queue && e->queue_owned && e->queue->destroy) e->queue->destroy(e->queue->user);
    if (e->transport && e->transport_owned) wh_transport_free(e->transport);
    free(e);
}

/* ---- emit ----------------------------------------------------------------------- */
int wh_emit(wh_engine *e, const char *type, const char *channel, const char *data,
            size_t len, const char *id)
{
    if (!e) return WH_E_INVAL;
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
            return wh__fail(e, WH_E_NOMEM, "wh_emit: out of memory");
        }
        e->route_cap = cap;
        n = wh__router_match(&e->router, type, channel, e->route_buf, e->route_ids,
                             e->route_cap);
    }
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
    int rc = e->queue->enqueue(e->queue->user, &ev, e->route_buf, e->route_ids, n, now);
    if (rc != WH_OK) {
        e->st.emitted--;
        e->st.rejected++;
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
        ep->fresh++;
        ep->fresh_bytes += len;
        int64_t when = now;
        if (ep->mode == WH_MODE_BATCH && ep->fresh < ep->batch_max_events &&
            ep->fresh_bytes < ep->batch_max_bytes && !e->flushing)
            when = now + ep->batch_linger_ms;
        if (ep->heap_idx == SIZE_MAX || ep->wake > when) wh__ep_schedule(e, ep, when);
    }
    return (int)n;
}

/* ---- deliveries ---------------------------------------------------------------- */
static void on_done(void *user, void *token, const wh_response *res);

static size_t name_len(const char *n) { return n ? strlen(n) + 2 : 0; }

/* Make a delivery of n claimed jobs: body built once (unless it is the raw
 * payload itself), id, and room for every attempt's headers. */
static wh_delivery *delivery_new(wh_engine *e, wh_ep *ep, const wh_job *jobs, size_t n)
{
    int batch = ep->mode == WH_MODE_BATCH;
    const char *id = batch ? NULL : jobs[0].ev.id;
    size_t id_len = batch ? 36 : strlen(id);
    size_t n_hdr = 7 + ep->n_headers;
    size_t text = name_len(ep->h_id) + id_len + 1 + name_len(ep->h_ts) + 21 +
                  name_len(ep->h_attempt) + 11 +
                  (ep->h_apikey && ep->api_key ? name_len(ep->h_apikey) + strlen(ep->api_key) + 1 : 0) +
                  (ep->h_sig && ep->signer ? name_len(ep->h_sig) + wh__signer_max_len(ep->signer) + 1
                                           : 0);
    wh_delivery *d = malloc(sizeof *d + n * sizeof(wh_job) + n_hdr * sizeof(char *) + text);
    if (!d) return NULL;
    memset(d, 0, sizeof *d);
    d->ep = ep;
    d->n_jobs = n;
    memcpy(d->jobs, jobs, n * sizeof *jobs);
    d->hdrs = (const char **)(d->jobs + n);
    d->text = (char *)(d->hdrs + n_hdr);
    d->text_size = text;
    d->attempts = jobs[0].attempts;
    d->first_attempt = jobs[0].first_attempt_ms;
    if (batch) {
        wh__uuid7(&e->rng, e->clock.wall_ms(e->clock.user), d->id_buf);
        d->id = d->id_buf;
    } else {
        d->id = id;
    }
    if (!batch && ep->body == WH_BODY_RAW) {
        d->body = jobs[0].ev.data;
        d->body_len = jobs[0].ev.data_len;
    } else {
        d->body_buf = malloc(wh__body_max(ep, jobs, n) + 1);
        if (!d->body_buf) {
            free(d);
            return NULL;
        }
        d->body_len = wh__body_build(ep, jobs, n, e->clock.wall_ms(e->clock.user),
                                     d->body_buf);
        d->body = d->body_buf;
    }
    return d;
}

static void delivery_free(wh_delivery *d)
{
    if (!d) return;
    free(d->body_buf);
    free(d);
}

static void list_push(wh_delivery **head, wh_delivery *d)
{
    d->prev = NULL;
    d->next = *head;
    if (*head) (*head)->prev = d;
    *head = d;
}

static void list_unlink(wh_delivery **head, wh_delivery *d)
{
    if (d->prev) d->prev->next = d->next;
    else *head = d->next;
    if (d->next) d->next->prev = d->prev;
    d->prev = d->next = NULL;
}

static void report_jobs(wh_engine *e, wh_delivery *d, wh_outcome *o)
{
    for (size_t i = 0; i < d->n_jobs; i++) {
        o->ev = d->jobs[i].ev;
        report(e, o);
    }
}

/* Attempt d now: headers for this attempt, signature, submit. */
static void send_delivery(wh_engine *e, wh_delivery *d, int64_t now)
{
    wh_ep *ep = d->ep;
    uint32_t attempt = d->attempts + 1;
    if (d->first_attempt < 0) d->first_attempt = now;
    d->started = now;
    char *p = d->text;
    size_t h = 0;
    d->hdrs[h++] = "Content-Type: application/json";
    d->hdrs[h++] = "User-Agent: " WH_USER_AGENT;
    int64_t ts = e->clock.wall_ms(e->clock.user) / 1000;
    if (ep->h_id) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %s", ep->h_id, d->id) + 1;
    }
    if (ep->h_ts) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %" PRId64, ep->h_ts, ts) + 1;
    }
    if (ep->h_attempt) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %" PRIu32, ep->h_attempt, attempt) + 1;
    }
    if (ep->h_apikey && ep->api_key) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %s", ep->h_apikey, ep->api_key) + 1;
    }
    if (ep->h_sig && ep->signer) {
        char *line = p;
        p += sprintf(p, "%s: ", ep->h_sig);
        size_t room = d->text_size - (size_t)(p - d->text);
        int rc = wh__signer_sign(ep->signer, d->id, ts, d->body, d->body_len, p, room);
        if (rc == WH_OK) {
            d->hdrs[h++] = line;
            p += strlen(p) + 1;
        } else {
            /* never send an unsigned request in place of a signed one */
            wh__log(e, WH_LOG_ERROR, "endpoint %s: signing failed: %s", ep->id,
                    wh_strerror(rc));
            list_push(&e->flights, d);
            ep->in_flight++;
            e->st.in_flight++;
            wh_response r = {0, WH_E_TRANSPORT, "signing failed", NULL, NULL, 0};
            on_done(e, d, &r);
            return;
        }
    }
    for (size_t i = 0; i < ep->n_headers; i++) d->hdrs[h++] = ep->headers[i];
    d->req.url = ep->url;
    d->req.headers = d->hdrs;
    d->req.n_headers = h;
    d->req.body = d->body;
    d->req.body_len = d->body_len;
    d->req.timeout_ms = wh__policy_attempt_timeout(ep, d->first_attempt, now);
    d->req.connect_timeout_ms = ep->connect_timeout_ms < d->req.timeout_ms
                                    ? ep->connect_timeout_ms
                                    : d->req.timeout_ms;
    d->req.token = d;
    list_push(&e->flights, d);
    ep->in_flight++;
    e->st.in_flight++;
    e->st.requests++;
    e->st.bytes_sent += d->body_len;
    int rc = e->transport->submit(e->transport->user, &d->req);
    if (rc != WH_OK) {
        wh_response r = {0, WH_E_TRANSPORT, wh_strerror(rc), NULL, NULL, 0};
        on_done(e, d, &r);
    }
}

static int64_t held_min_due(const wh_ep *ep)
{
    int64_t t = INT64_MAX;
    for (const wh_delivery *d = ep->held; d; d = d->next)
        if (d->due < t) t = d->due;
    return t;
}

/* When ep next has something to do. */
static int64_t ep_next_wake(wh_engine *e, wh_ep *ep)
{
    int64_t t = held_min_due(ep);
    if (ep->ordered && ep->held) return t; /* the failing head blocks */
    int64_t q = e->queue->next_due(e->queue->user, ep->slot);
    if (q != INT64_MAX) {
        if (ep->mode == WH_MODE_BATCH && !e->flushing && ep->fresh < ep->batch_max_events &&
            ep->fresh_bytes < ep->batch_max_bytes)
            q += ep->batch_linger_ms;
        if (q < t) t = q;
    }
    return t;
}

static void on_done(void *user, void *token, const wh_response *res)
{
    wh_engine *e = user;
    wh_delivery *d = token;
    wh_ep *ep = d->ep;
    int64_t now = e->clock.now_ms(e->clock.user);
    list_unlink(&e->flights, d);
    ep->in_flight--;
    e->st.in_flight--;

    uint32_t attempt = d->attempts + 1;
    wh_outcome o;
    char msg[160];
    int ok = res->error == WH_OK && res->status >= 200 && res->status < 300;
    int held = 0;
    if (ok) {
        outcome_init(&o, WH_DELIVERED, ep, &d->jobs[0]);
        o.attempt = attempt;
        o.http_status = res->status;
        o.latency_ms = now - d->started;
        e->st.delivered += d->n_jobs;
        report_jobs(e, d, &o);
        for (size_t i = 0; i < d->n_jobs; i++) e->queue->ack(e->queue->user, &d->jobs[i]);
    } else {
        int err = res->error != WH_OK ? res->error : WH_E_HTTP_STATUS;
        if (res->error != WH_OK)
            snprintf(msg, sizeof msg, "%s%s%s", wh_strerror(err),
                     res->error_msg && *res->error_msg ? ": " : "",
                     res->error_msg ? res->error_msg : "");
        else
            snprintf(msg, sizeof msg, "HTTP %d", res->status);
        /* HTTP 410 disables the endpoint: the delivery waits for it to be
         * enabled again instead of being dead-lettered */
        int gone = res->error == WH_OK && res->status == 410 && ep->disable_on_410;
        const char *why = "";
        int64_t delay = gone ? 0
                             : wh__policy_next_delay(e, ep, res, attempt, d->first_attempt,
                                                     now, &why);
        int again = delay >= 0;
        outcome_init(&o, again ? WH_RETRY : WH_DEAD, ep, &d->jobs[0]);
        o.attempt = attempt;
        o.http_status = res->status;
        o.error = err;
        o.error_msg = msg;
        o.latency_ms = now - d->started;
        if (again) {
            o.retry_in_ms = gone ? -1 : delay;
            e->st.retries += d->n_jobs;
            report_jobs(e, d, &o);
            if (ep->mode == WH_MODE_BATCH || ep->ordered) {
                /* the batch stays whole: same id, same body, same jobs; an
                 * ordered endpoint's head stays in front */
                d->attempts = attempt;
                d->due = now + delay;
                list_push(&ep->held, d);
                held = 1;
            } else {
                d->jobs[0].first_attempt_ms = d->first_attempt;
                e->queue->retry(e->queue->user, &d->jobs[0], now + delay);
            }
            wh__log(e, WH_LOG_DEBUG, "endpoint %s: %s, attempt %" PRIu32
                    " failed, retry in %" PRId64 " ms", ep->id, msg, attempt, delay);
        } else {
            e->st.dead += d->n_jobs;
            report_jobs(e, d, &o);
            for (size_t i = 0; i < d->n_jobs; i++)
                e->queue->ack(e->queue->user, &d->jobs[i]);
            wh__log(e, WH_LOG_WARN, "endpoint %s: delivery %s (%zu event(s)) dead after %"
                    PRIu32 " attempt(s): %s (%s)", ep->id, d->id, d->n_jobs, attempt, msg,
                    why);
        }
    }
    wh__health_after(e, ep, res, ok, now);
    if (!held) delivery_free(d);
    wh__ep_schedule(e, ep, ep_next_wake(e, ep));
}

static void count_claimed(wh_ep *ep, const wh_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].attempts != 0) continue;
        if (ep->fresh) ep->fresh--;
        ep->fresh_bytes -= ep->fresh_bytes < jobs[i].ev.data_len ? ep->fresh_bytes
                                                                  : jobs[i].ev.data_len;
    }
}

static int grow_claim_buf(wh_engine *e, size_t want)
{
    if (want <= e->claim_cap) return WH_OK;
    wh_job *b = realloc(e->claim_buf, want * sizeof *b);
    if (!b) return WH_E_NOMEM;
    e->claim_buf = b;
    e->claim_cap = want;
    return WH_OK;
}

/* Claim the next batch of ep's due jobs: up to batch_max_events, and up to
 * batch_max_bytes of payload (a single larger event still goes alone).
 * Returns how many are in e->claim_buf. */
static size_t claim_batch(wh_engine *e, wh_ep *ep, int64_t now)
{
    size_t max = ep->batch_max_events;
    if (grow_claim_buf(e, max) != WH_OK) max = e->claim_cap;
    size_t n = 0;
    uint64_t bytes = 0;
    while (n < max) {
        size_t want = max - n < CLAIM_BATCH ? max - n : CLAIM_BATCH;
        size_t got = e->queue->claim(e->queue->user, ep->slot, now, e->claim_buf + n, want);
        if (got == 0) break;
        size_t keep = 0;
        while (keep < got && (n + keep == 0 ||
                              bytes + e->claim_buf[n + keep].ev.data_len <= ep->batch_max_bytes)) {
            bytes += e->claim_buf[n + keep].ev.data_len;
            keep++;
        }
        /* give back what does not fit, last first so the order holds */
        for (size_t k = got; k-- > keep;) e->queue->release(e->queue->user, &e->claim_buf[n + k]);
        n += keep;
        if (keep < got || got < want) break;
    }
    return n;
}

/* Start what ep may start now: no more than its allowance (in-flight room,
 * health state, rate limit) says. */
static void service(wh_engine *e, wh_ep *ep, int64_t now)
{
    uint32_t room;
    while ((room = wh__policy_allowance(e, ep, now)) > 0) {
        if (ep->held) {
            /* a held batch (or ordered head) whose retry is due goes first */
            wh_delivery *due = NULL;
            for (wh_delivery *d = ep->held; d; d = d->next)
                if (d->due <= now && (!due || d->due < due->due)) due = d;
            if (due) {
                list_unlink(&ep->held, due);
                wh__policy_took(ep, now);
                send_delivery(e, due, now);
                continue;
            }
            if (ep->ordered) return; /* the failing head blocks the endpoint */
        }
        if (ep->mode == WH_MODE_SINGLE) {
            size_t n = e->queue->claim(e->queue->user, ep->slot, now, e->claim_buf,
                                       room < CLAIM_BATCH ? room : CLAIM_BATCH);
            if (n == 0) return;
            count_claimed(ep, e->claim_buf, n);
            /* send() may report outcomes (emit from a callback reuses no
             * buffer of ours, but keep a private copy anyway) */
            wh_job jobs[CLAIM_BATCH];
            memcpy(jobs, e->claim_buf, n * sizeof *jobs);
            for (size_t i = 0; i < n; i++) {
                if (i > 0 && wh__policy_allowance(e, ep, now) == 0) {
                    /* an outcome changed the endpoint's state (breaker):
                     * give the rest back untouched, last first */
                    for (size_t k = n; k-- > i;) {
                        if (jobs[k].attempts == 0) {
                            ep->fresh++;
                            ep->fresh_bytes += jobs[k].ev.data_len;
                        }
                        e->queue->release(e->queue->user, &jobs[k]);
                    }
                    return;
                }
                wh_delivery *d = delivery_new(e, ep, &jobs[i], 1);
                if (!d) {
                    /* out of memory: back to the queue as a failed attempt,
                     * due in a second; never lost */
                    wh__log(e, WH_LOG_ERROR, "out of memory building a request for %s",
                            ep->id);
                    if (jobs[i].first_attempt_ms < 0) jobs[i].first_attempt_ms = now;
                    e->queue->retry(e->queue->user, &jobs[i], now + 1000);
                    continue;
                }
                wh__policy_took(ep, now);
                send_delivery(e, d, now);
            }
            continue;
        }
        /* batch mode */
        int64_t q = e->queue->next_due(e->queue->user, ep->slot);
        if (q > now) return;
        int full = ep->fresh >= ep->batch_max_events || ep->fresh_bytes >= ep->batch_max_bytes;
        if (!full && !e->flushing && q + ep->batch_linger_ms > now) return;
        size_t n = claim_batch(e, ep, now);
        if (n == 0) return;
        count_claimed(ep, e->claim_buf, n);
        wh_delivery *d = delivery_new(e, ep, e->claim_buf, n);
        if (!d) {
            wh__log(e, WH_LOG_ERROR, "out of memory building a batch for %s", ep->id);
            for (size_t k = n; k-- > 0;) e->queue->release(e->queue->user, &e->claim_buf[k]);
            return;
        }
        wh__policy_took(ep, now);
        send_delivery(e, d, now);
    }
}

void wh__ep_reschedule(wh_engine *e, wh_ep *ep)
{
    wh__ep_schedule(e, ep, ep_next_wake(e, ep));
}

/* Start requests for every endpoint whose wake time has come. */
static void run_due(wh_engine *e, int64_t now)
{
    while (e->heap_n && e->heap[0]->wake <= now) {
        wh_ep *ep = e->heap[0];
        wh__ep_unschedule(e, ep);
        service(e, ep, now);
        if (ep->heap_idx == SIZE_MAX) wh__ep_schedule(e, ep, ep_next_wake(e, ep));
    }
}

static void cancel_delivery(wh_engine *e, wh_delivery *d, const char *why)
{
    wh_outcome o;
    outcome_init(&o, WH_DEAD, d->ep, &d->jobs[0]);
    o.attempt = d->attempts;
    o.error = WH_E_CANCELLED;
    o.error_msg = why;
    e->st.dead += d->n_jobs;
    report_jobs(e, d, &o);
    for (size_t i = 0; i < d->n_jobs; i++) e->queue->ack(e->queue->user, &d->jobs[i]);
    delivery_free(d);
}

/* Report every job of ep (in flight, held or queued) as cancelled and forget
 * it. */
void wh__cancel_endpoint(wh_engine *e, wh_ep *ep)
{
    wh__ep_unschedule(e, ep);
    wh_delivery *d = e->flights;
    while (d) {
        wh_delivery *next = d->next;
        if (d->ep == ep) {
            e->transport->cancel(e->transport->user, d);
            list_unlink(&e->flights, d);
            ep->in_flight--;
            e->st.in_flight--;
            d->attempts++; /* the attempt in flight counts */
            cancel_delivery(e, d, "cancelled while in flight");
        }
        d = next;
    }
    while ((d = ep->held)) {
        list_unlink(&ep->held, d);
        cancel_delivery(e, d, "cancelled while waiting for a retry");
    }
    size_t n;
    while ((n = e->queue->claim(e->queue->user, ep->slot, INT64_MAX, e->claim_buf,
                                e->claim_cap)) > 0) {
        for (size_t i = 0; i < n; i++) {
            wh_outcome o;
            outcome_init(&o, WH_DEAD, ep, &e->claim_buf[i]);
            o.attempt = e->claim_buf[i].attempts;
            o.error = WH_E_CANCELLED;
            o.error_msg = "cancelled before delivery";
            report(e, &o);
            e->queue->ack(e->queue->user, &e->claim_buf[i]);
            e->st.dead++;
        }
    }
    ep->fresh = ep->fresh_bytes = 0;
}

/* ---- durable and shared queues (WH_QUEUE_VERSION 2 members) ------------------ */
static int queue_durable(const wh_engine *e)
{
    return e->queue->version >= 2 && (e->queue->flags & WH_QUEUE_DURABLE);
}

/* Engine going away over a durable queue: stop the requests in flight and
 * give their jobs (and held batches' jobs) back; queued jobs stay stored
 * for the next run.  Nothing is reported: nothing was lost. */
static void leave_durable_queue(wh_engine *e)
{
    wh_delivery *d;
    while ((d = e->flights)) {
        e->transport->cancel(e->transport->user, d);
        e->flights = d->next;
        for (size_t i = d->n_jobs; i-- > 0;) e->queue->release(e->queue->user, &d->jobs[i]);
        delivery_free(d);
    }
    for (size_t s = 0; s < e->n_slots; s++) {
        wh_ep *ep = e->eps[s];
        while (ep && (d = ep->held)) {
            ep->held = d->next;
            for (size_t i = d->n_jobs; i-- > 0;) e->queue->release(e->queue->user, &d->jobs[i]);
            delivery_free(d);
        }
    }
    if (e->queue->commit) e->queue->commit(e->queue->user);
}

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
        int64_t when = ep_next_wake(e, ep);
        if (next < when) when = next;
        if (ep->heap_idx == SIZE_MAX || ep->wake > when) wh__ep_schedule(e, ep, when);
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
    e->polled_outcomes = 0;
    int64_t now = e->clock.now_ms(e->clock.user);
    run_due(e, now);
    int wait = 0;
    if (max_wait_ms > 0 && e->polled_outcomes == 0) {
        wait = max_wait_ms;
        if (e->heap_n) {
            int64_t until = e->heap[0]->wake - now;
            if (until < wait) wait = until < 0 ? 0 : (int)until;
        }
    }
    e->in_callback++;
    e->transport->perform(e->transport->user, wait, on_done, e);
    e->in_callback--;
    now = e->clock.now_ms(e->clock.user);
    run_due(e, now);
    queue_poll(e, now);
    if (e->queue->commit) {
        int rc = e->queue->commit(e->queue->user);
        if (rc != WH_OK) wh__log(e, WH_LOG_ERROR, "queue commit failed: %s", wh_strerror(rc));
    }
    int n = e->polled_outcomes;
    finish_call(e);
    return n;
}

int64_t wh_timeout_ms(wh_engine *e)
{
    if (!e) return -1;
    int64_t t = -1;
    int64_t now = e->clock.now_ms(e->clock.user);
    if (e->heap_n) {
        t = e->heap[0]->wake - now;
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
    int64_t deadline = e->clock.now_ms(e->clock.user) + (timeout_ms < 0 ? 0 : timeout_ms);
    /* partial batches leave now instead of lingering */
    e->flushing = 1;
    for (size_t i = 0; i < e->n_slots; i++) {
        wh_ep *ep = e->eps[i];
        if (ep && ep->mode == WH_MODE_BATCH) wh__ep_schedule(e, ep, ep_next_wake(e, ep));
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

int wh_stats_get_sized(const wh_engine *e, wh_stats *out, size_t size)
{
    /* the first version of wh_stats ends with bytes_sent */
    if (!e || !out || size < offsetof(wh_stats, bytes_sent) + sizeof out->bytes_sent)
        return wh__fail((wh_engine *)e, WH_E_INVAL, "wh_stats_get: %s",
                        !out ? "out is NULL" : "struct size too small (use wh_stats_get)");
    wh_stats st = e->st;
    size_t stored = e->queue->size(e->queue->user), jobs_in_flight = 0;
    for (const wh_delivery *d = e->flights; d; d = d->next) jobs_in_flight += d->n_jobs;
    st.queued = stored > jobs_in_flight ? stored - jobs_in_flight : 0;
    st.struct_size = size < sizeof st ? size : sizeof st;
    memcpy(out, &st, st.struct_size);
    return WH_OK;
}
