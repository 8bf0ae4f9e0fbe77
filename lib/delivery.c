/* Deliveries: one request's worth of jobs.  Claims due jobs from the queue
 * for an endpoint (within what the policy allows), builds the body and the
 * headers, signs, submits to the transport, and turns the transport's
 * answer into the policy's decision: an outcome queued for the host (the
 * queue is told after the host has seen it), a held batch, a health change.
 * Calls policy.c, health.c, outcome.c, scheduler.c, body.c, sign.c and the
 * transport's and queue's vtables; never a host callback. */
#include "engine.h"
#include "opevents.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLAIM_BATCH 64
/* Jobs claimed at a time under wh_poll_budget: the budget is looked at
 * between groups, so a call overruns it by at most this many requests. */
#define BUDGET_CLAIM 4

void wh__work_init(wh_ep_work *w)
{
    memset(w, 0, sizeof *w);
    w->rate.tokens_at = -1; /* the bucket starts full */
}

static wh_delivery *of(wh__link *l) { return WH__CONTAINER_OF(l, wh_delivery, link); }

static size_t name_len(const char *n) { return n ? strlen(n) + 2 : 0; }

/* The per-message headers of a job (single mode), or NULL. */
static const char *job_headers(const wh_engine *e, const wh_job *job)
{
    if (e->queue->version < 4 || !e->queue->enqueue_with_headers) return NULL;
    return job->headers && job->headers_len ? job->headers : NULL;
}

static size_t count_lines(const char *s)
{
    size_t n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* 1 when header line `line` (name nl bytes) names a header the endpoint
 * sends itself: its own wins. */
static int endpoint_sends(const wh_ep_conf *c, const char *line, size_t nl)
{
    const char *own[5] = {c->h_id, c->h_ts, c->h_attempt, c->h_sig, c->h_apikey};
    for (size_t i = 0; i < 5; i++)
        if (own[i] && strlen(own[i]) == nl && strncasecmp(own[i], line, nl) == 0) return 1;
    for (size_t i = 0; i < c->n_headers; i++)
        if (strncasecmp(c->headers[i], line, nl) == 0 && c->headers[i][nl] == ':') return 1;
    return 0;
}

/* ---- buffers kept for reuse ---------------------------------------------------
 * Request records (kind 0) and body buffers (kind 1) go back to a small
 * pool when a request is done and are taken again by the next one that
 * fits, so a steady stream of requests allocates nothing.  At most 16 of
 * each are kept (what is in flight at once, typically); when the pool is
 * full the smallest goes.  Body sizes are rounded up to 4 KiB so batches
 * of similar size share buffers; a buffer over 1 MiB is not kept (an idle
 * engine holds at most 16 MiB of them). */
#define POOL_KEEP_MAX ((size_t)1 << 20)
#define POOL_MAX (sizeof ((wh_engine *)0)->pool[0] / sizeof ((wh_engine *)0)->pool[0][0])

static void *pool_get(wh_engine *e, int kind, size_t need, size_t *cap)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < e->n_pool[kind]; i++)
        if (e->pool[kind][i].cap >= need &&
            (best == SIZE_MAX || e->pool[kind][i].cap < e->pool[kind][best].cap))
            best = i;
    if (best != SIZE_MAX) {
        void *p = e->pool[kind][best].p;
        *cap = e->pool[kind][best].cap;
        e->pool[kind][best] = e->pool[kind][--e->n_pool[kind]];
        return p;
    }
    if (kind == 1 && need <= SIZE_MAX - 4096) need = (need + 4095) & ~(size_t)4095;
    *cap = need;
    return malloc(need);
}

static void pool_put(wh_engine *e, int kind, void *p, size_t cap)
{
    if (!p) return;
    if (cap > POOL_KEEP_MAX) {
        free(p);
        return;
    }
    if (e->n_pool[kind] == POOL_MAX) {
        size_t small = 0;
        for (size_t i = 1; i < POOL_MAX; i++)
            if (e->pool[kind][i].cap < e->pool[kind][small].cap) small = i;
        if (e->pool[kind][small].cap >= cap) {
            free(p);
            return;
        }
        free(e->pool[kind][small].p);
        e->pool[kind][small] = e->pool[kind][--e->n_pool[kind]];
    }
    e->pool[kind][e->n_pool[kind]].p = p;
    e->pool[kind][e->n_pool[kind]++].cap = cap;
}

void wh__delivery_pool_free(wh_engine *e)
{
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < e->n_pool[k]; i++) free(e->pool[k][i].p);
        e->n_pool[k] = 0;
    }
}

/* 1 when the transport takes the body of a request to ep in pieces
 * (transport version 3, body_pieces). */
static int wants_pieces(const wh_engine *e, const wh_ep_conf *c)
{
    const wh_transport *t = e->transport;
    if (t->version < 3 || !t->body_pieces) return 0;
    wh_request q;
    memset(&q, 0, sizeof q);
    q.url = c->url;
    q.tls = wh__net_ep_tls(c->net);
    q.transport = c->transport;
    return t->body_pieces(t->user, &q) == 1;
}

/* d's body in pieces, joined into one buffer (the transport stopped taking
 * pieces since it was built).  WH_E_NOMEM leaves d as it was. */
static int join_pieces(wh_engine *e, wh_delivery *d)
{
    size_t cap;
    char *b = pool_get(e, 1, d->body_len + 1, &cap);
    if (!b) return WH_E_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < d->n_pieces; i++) {
        memcpy(b + o, d->pieces[i].data, d->pieces[i].len);
        o += d->pieces[i].len;
    }
    b[o] = '\0';
    pool_put(e, 1, d->body_buf, d->body_cap);
    d->body_buf = b;
    d->body_cap = cap;
    d->body = b;
    d->pieces = NULL;
    d->n_pieces = 0;
    return WH_OK;
}

/* Make a delivery of n claimed jobs: body built once (unless it is the raw
 * payload itself; in pieces pointing into the jobs' payloads for a
 * transport that takes them), id, and room for every attempt's headers. */
static wh_delivery *delivery_new(wh_engine *e, wh_ep *ep, const wh_job *jobs, size_t n,
                                 int64_t now)
{
    int64_t wall = wh__wall_at(e, now);
    const wh_ep_conf *c = &ep->conf;
    int batch = c->mode == WH_MODE_BATCH;
    const char *id = batch ? NULL : jobs[0].ev.id;
    size_t id_len = batch ? 36 : strlen(id);
    const char *msg_h = batch ? NULL : job_headers(e, &jobs[0]);
    size_t n_hdr = 7 + c->n_headers + (msg_h ? count_lines(msg_h) : 0);
    size_t text = (msg_h ? jobs[0].headers_len + 1 : 0) +
                  name_len(c->h_id) + id_len + 1 + name_len(c->h_ts) + 21 +
                  name_len(c->h_attempt) + 11 +
                  (c->h_apikey && c->api_key ? name_len(c->h_apikey) + strlen(c->api_key) + 1 : 0) +
                  (c->h_sig && c->signer ? name_len(c->h_sig) + wh__signer_max_len(c->signer) + 1
                                         : 0);
    size_t cap;
    wh_delivery *d =
        pool_get(e, 0, sizeof *d + n * sizeof(wh_job) + n_hdr * sizeof(char *) + text, &cap);
    if (!d) return NULL;
    memset(d, 0, sizeof *d);
    d->alloc_size = cap;
    d->ep = ep;
    d->n_jobs = n;
    memcpy(d->jobs, jobs, n * sizeof *jobs);
    d->hdrs = (const char **)(d->jobs + n);
    d->text = (char *)(d->hdrs + n_hdr);
    d->text_size = text;
    d->attempts = jobs[0].attempts;
    d->first_attempt = jobs[0].first_attempt_ms;
    if (batch) {
        wh__uuid7(&e->rng, wall, d->id_buf);
        d->id = d->id_buf;
    } else {
        d->id = id;
    }
    if (!batch && c->body == WH_BODY_RAW) {
        d->body = jobs[0].ev.data;
        d->body_len = jobs[0].ev.data_len;
    } else if (wants_pieces(e, c)) {
        /* the pieces array, then the envelope text */
        size_t np = 2 * n + 1;
        size_t frag = wh__body_frag_max(c, jobs, n) + 1;
        d->body_buf = pool_get(e, 1, np * sizeof(wh_body_piece) + frag, &d->body_cap);
        if (!d->body_buf) {
            pool_put(e, 0, d, d->alloc_size);
            return NULL;
        }
        wh_body_piece *pc = (wh_body_piece *)(void *)d->body_buf;
        char *frag_text = d->body_buf + np * sizeof(wh_body_piece);
        d->n_pieces = wh__body_build_pieces(c, jobs, n, wall, frag_text, pc, &d->body_len);
        d->pieces = pc;
        if (d->n_pieces == 0) d->body = frag_text; /* empty: contiguous */
    } else {
        d->body_buf = pool_get(e, 1, wh__body_max(c, jobs, n) + 1, &d->body_cap);
        if (!d->body_buf) {
            pool_put(e, 0, d, d->alloc_size);
            return NULL;
        }
        d->body_len = wh__body_build(c, jobs, n, wall, d->body_buf);
        d->body = d->body_buf;
    }
    return d;
}

static void delivery_free(wh_engine *e, wh_delivery *d)
{
    if (!d) return;
    pool_put(e, 1, d->body_buf, d->body_cap);
    pool_put(e, 0, d, d->alloc_size);
}

/* d failed before the transport had it: its answer is made after the
 * endpoint's service round (wh__deliver_due), so that an endpoint's state
 * never changes while it is being served. */
static void fail_early(wh_engine *e, wh_delivery *d, int error, const char *msg)
{
    d->fail_error = error;
    d->fail_msg = msg;
    wh__list_push_back(&e->failed, &d->link);
    d->ep->work.in_flight++;
    e->st.in_flight++;
}

/* Attempt d now: headers for this attempt, signature, submit. */
static void send_delivery(wh_engine *e, wh_delivery *d, int64_t now)
{
    wh_ep *ep = d->ep;
    const wh_ep_conf *c = &ep->conf;
    uint32_t attempt = d->attempts + 1;
    if (d->first_attempt < 0) d->first_attempt = now;
    d->started = now;
    if (d->n_pieces && !wants_pieces(e, c) && join_pieces(e, d) != WH_OK) {
        wh__log(e, WH_LOG_ERROR, "endpoint %s: out of memory joining a body", c->id);
        fail_early(e, d, WH_E_TRANSPORT, "out of memory joining the body");
        return;
    }
    char *p = d->text;
    size_t h = 0;
    d->hdrs[h++] = "Content-Type: application/json";
    d->hdrs[h++] = "User-Agent: " WH_USER_AGENT;
    int64_t ts = wh__wall_at(e, now) / 1000;
    if (c->h_id) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %s", c->h_id, d->id) + 1;
    }
    if (c->h_ts) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %" PRId64, c->h_ts, ts) + 1;
    }
    if (c->h_attempt) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %" PRIu32, c->h_attempt, attempt) + 1;
    }
    if (c->h_apikey && c->api_key) {
        d->hdrs[h++] = p;
        p += sprintf(p, "%s: %s", c->h_apikey, c->api_key) + 1;
    }
    if (c->h_sig && c->signer) {
        char *line = p;
        p += sprintf(p, "%s: ", c->h_sig);
        size_t room = d->text_size - (size_t)(p - d->text);
        const wh_body_piece whole = {d->body, d->body_len};
        int rc = d->n_pieces ? wh__signer_sign_pieces(c->signer, d->id, ts, d->pieces,
                                                      d->n_pieces, p, room)
                             : wh__signer_sign_pieces(c->signer, d->id, ts, &whole, 1, p,
                                                      room);
        if (rc == WH_OK) {
            d->hdrs[h++] = line;
            p += strlen(p) + 1;
        } else {
            /* never send an unsigned request in place of a signed one */
            wh__log(e, WH_LOG_ERROR, "endpoint %s: signing failed: %s", c->id,
                    wh_strerror(rc));
            fail_early(e, d, WH_E_TRANSPORT, "signing failed");
            return;
        }
    }
    for (size_t i = 0; i < c->n_headers; i++) d->hdrs[h++] = c->headers[i];
    const char *msg_h = c->mode == WH_MODE_BATCH ? NULL : job_headers(e, &d->jobs[0]);
    for (const char *l = msg_h; l && *l;) {
        size_t len = strcspn(l, "\n");
        size_t nl = strcspn(l, ":");
        if (nl < len && !endpoint_sends(c, l, nl)) {
            memcpy(p, l, len);
            p[len] = '\0';
            d->hdrs[h++] = p;
            p += len + 1;
        }
        l += len;
        if (*l == '\n') l++;
    }
    d->req.url = c->url;
    d->req.headers = d->hdrs;
    d->req.n_headers = h;
    d->req.body = d->n_pieces ? NULL : d->body;
    d->req.body_len = d->body_len;
    d->req.pieces = d->n_pieces ? d->pieces : NULL;
    d->req.n_pieces = d->n_pieces;
    d->req.timeout_ms = wh__policy_attempt_timeout(&ep->pol, d->first_attempt, now);
    d->req.connect_timeout_ms = c->connect_timeout_ms < d->req.timeout_ms
                                    ? c->connect_timeout_ms
                                    : d->req.timeout_ms;
    d->req.token = d;
    d->req.tls = wh__net_ep_tls(c->net);
    d->req.transport = c->transport;
    e->st.requests++;
    e->st.bytes_sent += d->body_len;
    wh__list_push_front(&e->flights, &d->link);
    ep->work.in_flight++;
    e->st.in_flight++;
    int rc = e->transport->submit(e->transport->user, &d->req);
    if (rc != WH_OK) {
        wh__list_unlink(&e->flights, &d->link);
        ep->work.in_flight--;
        e->st.in_flight--;
        fail_early(e, d, WH_E_TRANSPORT, wh_strerror(rc));
    }
}

/* The answer to d's attempt: ask the policy, queue the outcomes, keep a
 * batch for its retry, apply the health change, reschedule. */
static void complete(wh_engine *e, wh_delivery *d, const wh_response *res)
{
    wh_ep *ep = d->ep;
    int64_t now = e->clock.now_ms(e->clock.user);
    ep->work.in_flight--;
    e->st.in_flight--;

    wh__attempt a = {res, d->attempts + 1, d->first_attempt, now, 0};
    int64_t wall = wh__wall_at(e, now);
    if (ep->pol.honor_retry_after && res->retry_after) a.wall = wall;
    wh__decision dec;
    wh__policy_decide(&ep->pol, &ep->health, &a, &e->rng, &dec);
    /* the receiver's word (webhook-delivery), then at-most-once */
    const char *control = e->transport->version >= 2 ? res->delivery_control : NULL;
    unsigned ctl = ep->conf.ignore_control ? 0 : wh__delivery_control(control);
    if ((ctl & WH__CTL_ABORT) && dec.kind == WH_RETRY) {
        dec.kind = WH_DEAD;
        dec.why = "the receiver answered webhook-delivery: abort-message";
    }
    if (ep->conf.at_most_once && dec.kind == WH_RETRY && res->error != WH_E_CONNECT &&
        !d->fail_error) {
        dec.kind = WH_DEAD;
        dec.why = "at-most-once: the request may have reached the receiver";
    }

    wh_outcome o;
    memset(&o, 0, sizeof o);
    o.attempt = a.attempt;
    o.http_status = res->status;
    o.error = dec.error;
    o.latency_ms = now - d->started;
    o.response_body = res->body;
    o.response_body_len = res->body && res->body_len < WH_OUTCOME_BODY_MAX
                              ? res->body_len
                              : res->body ? WH_OUTCOME_BODY_MAX : 0;
    o.retry_after = res->retry_after;
    o.delivery_control = control;
    int held = 0;
    if (dec.kind == WH_DELIVERED) {
        e->st.delivered += d->n_jobs;
        wh__outcome_add_jobs(e, ep, WH_DELIVERED, d->jobs, d->n_jobs, WH__ACT_ACK, 0, &o, "",
                             wall, d->id);
    } else if (dec.kind == WH_RETRY) {
        int64_t delay = dec.delay < 0 ? 0 : dec.delay;
        o.retry_in_ms = dec.delay;
        e->st.retries += d->n_jobs;
        if (ep->conf.mode == WH_MODE_BATCH || ep->pol.ordered) {
            /* the batch stays whole: same id, same body, same jobs; an
             * ordered endpoint's head stays in front */
            wh__outcome_add_jobs(e, ep, WH_RETRY, d->jobs, d->n_jobs, WH__ACT_NONE, 0, &o,
                                 dec.msg, wall, d->id);
            d->attempts = a.attempt;
            d->due = now + delay;
            wh__list_push_front(&ep->work.held, &d->link);
            held = 1;
        } else {
            d->jobs[0].first_attempt_ms = d->first_attempt;
            wh__outcome_add(e, ep, WH_RETRY, &d->jobs[0], WH__ACT_RETRY, now + delay, &o,
                            dec.msg, wall);
        }
        wh__log(e, WH_LOG_DEBUG, "endpoint %s: %s, attempt %" PRIu32
                " failed, retry in %" PRId64 " ms", ep->conf.id, dec.msg, a.attempt, delay);
    } else {
        e->st.dead += d->n_jobs;
        wh__outcome_add_jobs(e, ep, WH_DEAD, d->jobs, d->n_jobs, WH__ACT_ACK, 0, &o, dec.msg,
                             wall, d->id);
        wh__log(e, WH_LOG_WARN, "endpoint %s: delivery %s (%zu event(s)) dead after %"
                PRIu32 " attempt(s): %s (%s)", ep->conf.id, d->id, d->n_jobs, a.attempt,
                dec.msg, dec.why);
    }
    wh__health_apply(e, ep, &dec, now);
    if ((ctl & WH__CTL_DISABLE) && ep->health.state != WH_EP_DISABLED) {
        wh__health_set(e, ep, WH_EP_DISABLED, res->status, res->error,
                       "the receiver answered webhook-delivery: disable", now);
        wh__sched_cancel(e, ep);
    }
    if (!held) delivery_free(e, d);
    wh__sched_update(e, ep);
}

void wh__delivery_done(void *user, void *token, const wh_response *res)
{
    wh_engine *e = user;
    wh_delivery *d = token;
    wh__list_unlink(&e->flights, &d->link);
    complete(e, d, res);
}

/* Answer the deliveries that failed before reaching the transport. */
static void complete_failed(wh_engine *e)
{
    wh__link *l;
    while ((l = wh__list_pop_front(&e->failed))) {
        wh_delivery *d = of(l);
        wh_response r = {0, d->fail_error, d->fail_msg, NULL, NULL, 0, NULL};
        complete(e, d, &r);
    }
}

static void count_claimed(wh_ep *ep, const wh_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].attempts != 0) continue;
        if (ep->work.fresh) ep->work.fresh--;
        uint64_t *fb = &ep->work.fresh_bytes;
        *fb -= *fb < jobs[i].ev.data_len ? *fb : jobs[i].ev.data_len;
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
    size_t max = ep->conf.batch_max_events;
    if (grow_claim_buf(e, max) != WH_OK) max = e->claim_cap;
    size_t n = 0;
    uint64_t bytes = 0;
    while (n < max) {
        size_t want = max - n < CLAIM_BATCH ? max - n : CLAIM_BATCH;
        size_t got = e->queue->claim(e->queue->user, ep->slot, now, e->claim_buf + n, want);
        if (got == 0) break;
        size_t keep = 0;
        while (keep < got &&
               (n + keep == 0 ||
                bytes + e->claim_buf[n + keep].ev.data_len <= ep->conf.batch_max_bytes)) {
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

static uint32_t allowance(wh_engine *e, wh_ep *ep, int64_t now)
{
    wh__health_tick(e, ep, now);
    return wh__policy_allowance(&ep->pol, &ep->health, &ep->work.rate, ep->work.in_flight,
                                now);
}

static void took(wh_ep *ep, int64_t now) { wh__policy_took(&ep->pol, &ep->work.rate, now); }

/* The held batch (or ordered head) due first, or NULL. */
static wh_delivery *held_due(wh_ep *ep, int64_t now)
{
    wh_delivery *due = NULL;
    for (wh__link *l = ep->work.held.head; l; l = l->next) {
        wh_delivery *d = of(l);
        if (d->due <= now && (!due || d->due < due->due)) due = d;
    }
    return due;
}

/* Start what ep may start now: no more than its allowance (in-flight room,
 * health state, rate limit) says.  Nothing here changes the endpoint's
 * state but the requests it starts (answers come later, failures before
 * the transport are answered after this round), so the allowance holds for
 * every job claimed. */
static void service(wh_engine *e, wh_ep *ep, int64_t now)
{
    uint32_t room;
    while ((room = allowance(e, ep, now)) > 0) {
        if (wh__budget_spent(e)) return; /* the endpoint stays due */
        if (e->budget_end_ns && room > BUDGET_CLAIM) room = BUDGET_CLAIM;
        if (ep->work.held.head) {
            /* a held batch (or ordered head) whose retry is due goes first */
            wh_delivery *due = held_due(ep, now);
            if (due) {
                wh__list_unlink(&ep->work.held, &due->link);
                took(ep, now);
                send_delivery(e, due, now);
                continue;
            }
            if (ep->pol.ordered) return; /* the failing head blocks the endpoint */
        }
        if (ep->conf.mode == WH_MODE_SINGLE) {
            size_t n = e->queue->claim(e->queue->user, ep->slot, now, e->claim_buf,
                                       room < CLAIM_BATCH ? room : CLAIM_BATCH);
            if (n == 0) return;
            count_claimed(ep, e->claim_buf, n);
            for (size_t i = 0; i < n; i++) {
                wh_job *job = &e->claim_buf[i];
                wh_delivery *d = delivery_new(e, ep, job, 1, now);
                if (!d) {
                    /* out of memory: back to the queue as a failed attempt,
                     * due in a second; never lost */
                    wh__log(e, WH_LOG_ERROR, "out of memory building a request for %s",
                            ep->conf.id);
                    if (job->first_attempt_ms < 0) job->first_attempt_ms = now;
                    e->queue->retry(e->queue->user, job, now + 1000);
                    continue;
                }
                took(ep, now);
                send_delivery(e, d, now);
            }
            continue;
        }
        /* batch mode */
        int64_t q = e->queue->next_due(e->queue->user, ep->slot);
        if (q > now) return;
        int full = ep->work.fresh >= ep->conf.batch_max_events ||
                   ep->work.fresh_bytes >= ep->conf.batch_max_bytes;
        if (!full && !e->flushing && q + ep->conf.batch_linger_ms > now) return;
        size_t n = claim_batch(e, ep, now);
        if (n == 0) return;
        count_claimed(ep, e->claim_buf, n);
        wh_delivery *d = delivery_new(e, ep, e->claim_buf, n, now);
        if (!d) {
            wh__log(e, WH_LOG_ERROR, "out of memory building a batch for %s", ep->conf.id);
            for (size_t k = n; k-- > 0;) e->queue->release(e->queue->user, &e->claim_buf[k]);
            return;
        }
        took(ep, now);
        send_delivery(e, d, now);
    }
}

/* Each due endpoint is served once per pass: one that is due again at
 * once without having started anything (a queue that hands out a share of
 * its jobs per round, and says the rest are due now) waits for the next
 * call instead of spinning here; the loop's timer is armed for 0 ms. */
void wh__deliver_due(wh_engine *e, int64_t now)
{
    wh_ep *ep, *again = NULL;
    uint64_t pass = ++e->due_pass;
    while (wh__sched_first(e) <= now && !wh__budget_spent(e) &&
           (ep = wh__sched_pop_due(e, now))) {
        if (ep->sched.pass == pass) { /* out of the heap for the rest of this pass */
            ep->sched.again = again;
            again = ep;
            continue;
        }
        ep->sched.pass = pass;
        service(e, ep, now);
        complete_failed(e);
        if (ep->sched.wake.idx == SIZE_MAX) wh__sched_update(e, ep);
    }
    while (again) {
        wh_ep *next = again->sched.again;
        again->sched.again = NULL;
        if (again->sched.wake.idx == SIZE_MAX) wh__sched_update(e, again);
        again = next;
    }
}

static void cancel_delivery(wh_engine *e, wh_delivery *d, const char *why)
{
    wh_outcome o;
    memset(&o, 0, sizeof o);
    o.attempt = d->attempts;
    o.error = WH_E_CANCELLED;
    e->st.dead += d->n_jobs;
    wh__outcome_add_jobs(e, d->ep, WH_DEAD, d->jobs, d->n_jobs, WH__ACT_ACK, 0, &o, why, 0,
                         d->id);
    delivery_free(e, d);
}

/* Called only by the host's calls that remove endpoints (wh_endpoint_remove,
 * wh_engine_free), outside any scheduling: it hands the reports over as it
 * goes. */
void wh__cancel_endpoint(wh_engine *e, wh_ep *ep)
{
    wh__sched_cancel(e, ep);
    wh__link *l = e->flights.head;
    while (l) {
        wh__link *next = l->next;
        wh_delivery *d = of(l);
        if (d->ep == ep) {
            e->transport->cancel(e->transport->user, d);
            wh__list_unlink(&e->flights, l);
            ep->work.in_flight--;
            e->st.in_flight--;
            d->attempts++; /* the attempt in flight counts */
            cancel_delivery(e, d, "cancelled while in flight");
        }
        l = next;
    }
    while ((l = wh__list_pop_front(&ep->work.held)))
        cancel_delivery(e, of(l), "cancelled while waiting for a retry");
    /* the queue forgets a job when it is acked, after the host saw it: hand
     * these over before claiming what is left */
    wh__outcomes_deliver(e);
    size_t n;
    while ((n = e->queue->claim(e->queue->user, ep->slot, INT64_MAX, e->claim_buf,
                                e->claim_cap)) > 0) {
        /* runs of jobs with the same attempt count: one report each */
        for (size_t i = 0, k; i < n; i = k) {
            for (k = i + 1; k < n && e->claim_buf[k].attempts == e->claim_buf[i].attempts; k++)
                ;
            wh_outcome o;
            memset(&o, 0, sizeof o);
            o.attempt = e->claim_buf[i].attempts;
            o.error = WH_E_CANCELLED;
            wh__outcome_add_jobs(e, ep, WH_DEAD, &e->claim_buf[i], k - i, WH__ACT_ACK, 0, &o,
                                 "cancelled before delivery", 0, NULL);
            e->st.dead += k - i;
        }
        wh__outcomes_deliver(e);
    }
    ep->work.fresh = ep->work.fresh_bytes = 0;
}

void wh__leave_durable_queue(wh_engine *e)
{
    wh__link *l;
    while ((l = wh__list_pop_front(&e->flights))) {
        wh_delivery *d = of(l);
        e->transport->cancel(e->transport->user, d);
        for (size_t i = d->n_jobs; i-- > 0;) e->queue->release(e->queue->user, &d->jobs[i]);
        delivery_free(e, d);
    }
    for (size_t s = 0; s < e->n_slots; s++) {
        wh_ep *ep = e->eps[s];
        while (ep && (l = wh__list_pop_front(&ep->work.held))) {
            wh_delivery *d = of(l);
            for (size_t i = d->n_jobs; i-- > 0;) e->queue->release(e->queue->user, &d->jobs[i]);
            delivery_free(e, d);
        }
    }
    if (e->queue->commit) e->queue->commit(e->queue->user);
}

size_t wh__jobs_in_flight(const wh_engine *e)
{
    size_t n = 0;
    for (const wh__link *l = e->flights.head; l; l = l->next)
        n += WH__CONTAINER_OF(l, const wh_delivery, link)->n_jobs;
    return n;
}
