/* The default queue: bounded, in memory, compact.
 *
 * An event is one allocation, shared by every endpoint it fans out to:
 *
 *     [header 56 bytes][job x n, 16 bytes each][payload NUL][id NUL]
 *
 * The header holds the creation and due times, the event type and channel
 * (interned: one reference-counted copy of each distinct string, so "chat.
 * message" is not stored a million times), the payload length, a reference
 * count and, for the UUIDs the engine generates, the id as 16 binary bytes
 * (other ids follow the payload as a string).  Each job is a FIFO link and
 * its index, from which the event is found.  So a queued event costs its
 * payload plus about 56 + 16 per endpoint + allocator rounding.
 *
 * Per endpoint, fresh jobs wait in a FIFO list (O(1) enqueue; due times
 * never decrease).  A claimed job gets a claim record (the caller's
 * wh_job.ref) that holds what a job only needs once it has been tried: the
 * attempt count, the first attempt time, its due time and the id as text.
 * Retried jobs wait, as their claim records, in a per-endpoint min-heap on
 * due time; room in that heap is reserved at claim time, so retry and
 * release never allocate and never fail. */
#include "ds.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- interned strings (event types, channels) -------------------------------- */
typedef struct mq_str {
    uint32_t refs;
    uint32_t len;
    uint64_t hash;
    char s[];
} mq_str;

/* The interned strings, keyed by their own bytes. */
typedef wh__map strtab;

/* A new reference to the interned copy of s[0..len), or NULL (out of
 * memory). */
static mq_str *strtab_get(strtab *t, const char *s, size_t len)
{
    uint64_t h = wh__hash(s, len);
    mq_str *x = wh__map_get(t, s, len, h);
    if (x) {
        x->refs++;
        return x;
    }
    if (len > UINT32_MAX) return NULL;
    x = malloc(sizeof *x + len + 1);
    if (!x) return NULL;
    x->refs = 1;
    x->len = (uint32_t)len;
    x->hash = h;
    memcpy(x->s, s, len);
    x->s[len] = '\0';
    if (wh__map_put(t, x->s, len, h, x) != WH_OK) {
        free(x);
        return NULL;
    }
    return x;
}

/* Remove x from the table and free it. */
static void strtab_del(strtab *t, mq_str *x)
{
    wh__map_del(t, x->s, x->len, x->hash);
    free(x);
}

/* ---- events, jobs, claims ------------------------------------------------------ */
typedef struct mq_job {
    struct mq_job *next;  /* endpoint FIFO */
    uint32_t idx;         /* this job's index in the event */
    uint32_t n;           /* the event's number of jobs */
} mq_job;

typedef struct mq_event {
    int64_t created;
    int64_t due;          /* when its fresh jobs are due */
    mq_str *type;
    mq_str *channel;      /* NULL: none */
    unsigned data_len : 30;
    unsigned id_bin : 1;  /* id is uuid[] (canonical lowercase UUID) */
    unsigned has_headers : 1; /* per-message headers follow the id */
    uint32_t refs;        /* jobs not yet acknowledged */
    uint8_t uuid[16];
    mq_job jobs[];        /* then: data NUL [id NUL] [headers NUL] */
} mq_event;

#define MQ_MAX_DATA (((size_t)1 << 30) - 1)

static mq_event *job_event(const mq_job *j)
{
    return (mq_event *)(void *)((char *)(j - j->idx) - offsetof(mq_event, jobs));
}

static char *job_data(const mq_job *j)
{
    return (char *)(j - j->idx + j->n);
}

typedef struct mq_claim {
    mq_job *job;
    struct mq_claim *next_free;
    wh__heap_node node;    /* key: due time (in the retry heap, or as claimed) */
    int64_t first_attempt;
    uint32_t attempts;
    uint32_t slot;
    char id[37];           /* the id as text when the event keeps it binary */
} mq_claim;

typedef struct mq_ep {
    mq_job *head, *tail;   /* fresh jobs, FIFO */
    wh__heap heap;         /* retries (claim records), min-heap on due */
    size_t out;            /* claimed, not yet acked/retried/released */
} mq_ep;

#define MQ_FREE_CLAIMS_MAX 4096

typedef struct mq {
    wh_queue vt;
    mq_ep *eps;
    size_t n_eps;
    size_t jobs, events, bytes;
    size_t max_events, max_bytes;
    strtab strs;
    mq_str *last_type, *last_channel; /* one-entry caches over strs */
    mq_claim *free_claims;
    size_t n_free_claims;
} mq;

static int ensure_slot(mq *q, uint32_t slot)
{
    if (slot < q->n_eps) return WH_OK;
    return wh__array_reserve(&q->eps, &q->n_eps, (size_t)slot + 1, sizeof *q->eps, 16);
}

static mq_str *intern(mq *q, mq_str **cache, const char *s)
{
    mq_str *c = *cache;
    if (c && strcmp(c->s, s) == 0) { /* one pass over s */
        c->refs++;
        return c;
    }
    c = strtab_get(&q->strs, s, strlen(s));
    if (c) *cache = c;
    return c;
}

static void unintern(mq *q, mq_str *x)
{
    if (!x || --x->refs) return;
    if (q->last_type == x) q->last_type = NULL;
    if (q->last_channel == x) q->last_channel = NULL;
    strtab_del(&q->strs, x);
}

/* ---- UUIDs: 36-character canonical lowercase text <-> 16 bytes ----------------- */
/* Lowercase hex digit values, -1 for anything else: a table, because the
 * digits of random ids would make a digit-or-letter branch a coin toss. */
static const signed char hexval[256] = {
    ['0'] = 0 + 1, ['1'] = 1 + 1, ['2'] = 2 + 1, ['3'] = 3 + 1, ['4'] = 4 + 1,
    ['5'] = 5 + 1, ['6'] = 6 + 1, ['7'] = 7 + 1, ['8'] = 8 + 1, ['9'] = 9 + 1,
    ['a'] = 10 + 1, ['b'] = 11 + 1, ['c'] = 12 + 1, ['d'] = 13 + 1,
    ['e'] = 14 + 1, ['f'] = 15 + 1,
}; /* stored + 1, so that the zero default means "not a digit" */

static int uuid_parse(const char *s, uint8_t out[16])
{
    static const uint8_t pos[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    const unsigned char *u = (const unsigned char *)s;
    /* the length first (no read past a shorter id's NUL), then the dashes */
    if (strnlen(s, 37) != 36) return 0;
    if (u[8] != '-' || u[13] != '-' || u[18] != '-' || u[23] != '-') return 0;
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        int hi = hexval[u[pos[i]]], lo = hexval[u[pos[i] + 1]];
        bad |= (hi == 0) | (lo == 0);
        out[i] = (uint8_t)(((unsigned)(hi - 1) & 15u) << 4 | ((unsigned)(lo - 1) & 15u));
    }
    return !bad;
}

static void uuid_format(const uint8_t b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/* ---- enqueue ------------------------------------------------------------------ */
/* Enqueue; bin: the id as a UUID's 16 bytes (ev->id not read), or NULL. */
static int enqueue(mq *q, const wh_event_view *ev, const uint8_t *bin, const char *headers,
                   size_t headers_len, const uint32_t *slots, size_t n, int64_t due)
{
    if (n == 0) return WH_OK;
    if (q->events >= q->max_events || ev->data_len > q->max_bytes - q->bytes)
        return WH_E_FULL;
    if (ev->data_len > MQ_MAX_DATA || n > UINT32_MAX) return WH_E_TOO_LARGE;
    for (size_t i = 0; i < n; i++)
        if (WH_UNLIKELY(slots[i] >= q->n_eps) && ensure_slot(q, slots[i]) != WH_OK)
            return WH_E_NOMEM;
    uint8_t uuid[16];
    int id_bin = 1;
    if (bin) memcpy(uuid, bin, sizeof uuid);
    else id_bin = uuid_parse(ev->id, uuid);
    size_t id_size = id_bin ? 0 : strlen(ev->id) + 1;
    size_t h_size = headers && headers_len ? headers_len + 1 : 0;
    mq_event *e = malloc(sizeof *e + n * sizeof(mq_job) + ev->data_len + 1 + id_size + h_size);
    mq_str *type = e ? intern(q, &q->last_type, ev->type) : NULL;
    mq_str *channel = type && ev->channel ? intern(q, &q->last_channel, ev->channel) : NULL;
    if (!e || !type || (ev->channel && !channel)) {
        unintern(q, type);
        free(e);
        return WH_E_NOMEM;
    }
    e->created = ev->created_ms;
    e->due = due;
    e->type = type;
    e->channel = channel;
    e->data_len = (unsigned)ev->data_len;
    e->id_bin = (unsigned)id_bin;
    e->refs = (uint32_t)n;
    char *data = (char *)(e->jobs + n);
    memcpy(data, ev->data, ev->data_len);
    data[ev->data_len] = '\0';
    if (id_bin) memcpy(e->uuid, uuid, sizeof uuid);
    else memcpy(data + ev->data_len + 1, ev->id, id_size);
    e->has_headers = h_size != 0;
    if (h_size) {
        char *h = data + ev->data_len + 1 + id_size;
        memcpy(h, headers, headers_len);
        h[headers_len] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        mq_job *j = &e->jobs[i];
        j->next = NULL;
        j->idx = (uint32_t)i;
        j->n = (uint32_t)n;
        mq_ep *ep = &q->eps[slots[i]];
        if (ep->tail) ep->tail->next = j;
        else ep->head = j;
        ep->tail = j;
    }
    q->jobs += n;
    q->events++;
    q->bytes += ev->data_len;
    return WH_OK;
}

static int mq_enqueue_h(void *user, const wh_event_view *ev, const char *headers,
                        size_t headers_len, const uint32_t *slots,
                        const char *const *ids, size_t n, int64_t due)
{
    (void)ids;
    return enqueue(user, ev, NULL, headers, headers_len, slots, n, due);
}

static int mq_enqueue(void *user, const wh_event_view *ev, const uint32_t *slots,
                      const char *const *ids, size_t n, int64_t due)
{
    (void)ids;
    return enqueue(user, ev, NULL, NULL, 0, slots, n, due);
}

int wh__queue_memory_enqueue_uuid(wh_queue *q, const wh_event_view *ev, const uint8_t uuid[16],
                                  const char *headers, size_t headers_len,
                                  const uint32_t *slots, size_t n, int64_t due)
{
    return enqueue(q->user, ev, uuid, headers, headers_len, slots, n, due);
}

/* ---- heap of retried jobs (claim records) --------------------------------------- */
static mq_claim *heap_pop(mq_ep *ep)
{
    return WH__CONTAINER_OF(wh__heap_pop(&ep->heap), mq_claim, node);
}

/* Room was reserved when the job was claimed. */
static void heap_push(mq_ep *ep, mq_claim *c, int64_t due)
{
    wh__heap_push(&ep->heap, &c->node, due);
}

static mq_claim *heap_top(const mq_ep *ep)
{
    wh__heap_node *t = wh__heap_top(&ep->heap);
    return t ? WH__CONTAINER_OF(t, mq_claim, node) : NULL;
}

/* Make sure every claimed job of ep could go back to its heap. */
static int heap_reserve(mq_ep *ep)
{
    return wh__heap_reserve(&ep->heap, ep->heap.n + ep->out + 1);
}

static mq_claim *claim_new(mq *q)
{
    mq_claim *c = q->free_claims;
    if (c) {
        q->free_claims = c->next_free;
        q->n_free_claims--;
        return c;
    }
    return malloc(sizeof *c);
}

static void claim_free(mq *q, mq_claim *c)
{
    if (q->n_free_claims >= MQ_FREE_CLAIMS_MAX) {
        free(c);
        return;
    }
    c->next_free = q->free_claims;
    q->free_claims = c;
    q->n_free_claims++;
}

/* ---- claim / ack / retry / release ------------------------------------------------ */
static size_t mq_claim_jobs(void *user, uint32_t slot, int64_t now, wh_job *out,
                            size_t max)
{
    mq *q = user;
    if (slot >= q->n_eps) return 0;
    mq_ep *ep = &q->eps[slot];
    size_t n = 0;
    while (n < max) {
        mq_claim *h = heap_top(ep);
        mq_job *f = ep->head;
        int64_t f_due = f ? job_event(f)->due : INT64_MAX;
        mq_claim *c;
        if (h && h->node.key <= now && (!f || h->node.key <= f_due)) {
            c = heap_pop(ep);
        } else if (f && f_due <= now) {
            if (heap_reserve(ep) != WH_OK || !(c = claim_new(q))) break;
            ep->head = f->next;
            if (!ep->head) ep->tail = NULL;
            f->next = NULL;
            mq_event *e = job_event(f);
            c->job = f;
            c->node.key = e->due;
            c->node.idx = SIZE_MAX;
            c->first_attempt = -1;
            c->attempts = 0;
            c->slot = slot;
            if (e->id_bin) uuid_format(e->uuid, c->id);
        } else {
            break;
        }
        ep->out++;
        mq_job *j = c->job;
        mq_event *e = job_event(j);
        const char *data = job_data(j);
        wh_job *o = &out[n++];
        o->ref = c;
        o->endpoint = slot;
        o->attempts = c->attempts;
        o->first_attempt_ms = c->first_attempt;
        o->ev.id = e->id_bin ? c->id : data + e->data_len + 1;
        o->ev.type = e->type->s;
        o->ev.channel = e->channel ? e->channel->s : NULL;
        o->ev.data = data;
        o->ev.data_len = e->data_len;
        o->ev.created_ms = e->created;
        o->headers = NULL;
        o->headers_len = 0;
        if (e->has_headers) {
            const char *id_end = data + e->data_len + 1;
            if (!e->id_bin) id_end += strlen(id_end) + 1;
            o->headers = id_end;
            o->headers_len = strlen(id_end);
        }
    }
    return n;
}

static void mq_ack(void *user, wh_job *job)
{
    mq *q = user;
    mq_claim *c = job->ref;
    mq_job *j = c->job;
    mq_event *e = job_event(j);
    q->eps[c->slot].out--;
    claim_free(q, c);
    q->jobs--;
    if (--e->refs == 0) {
        q->events--;
        q->bytes -= e->data_len;
        unintern(q, e->type);
        unintern(q, e->channel);
        free(e);
    }
    job->ref = NULL;
}

static void mq_retry(void *user, wh_job *job, int64_t due)
{
    mq *q = user;
    mq_claim *c = job->ref;
    mq_ep *ep = &q->eps[c->slot];
    c->attempts++;
    c->first_attempt = job->first_attempt_ms;
    ep->out--;
    heap_push(ep, c, due);
    job->ref = NULL;
}

static void mq_release(void *user, wh_job *job)
{
    mq *q = user;
    mq_claim *c = job->ref;
    mq_ep *ep = &q->eps[c->slot];
    job->ref = NULL;
    ep->out--;
    if (c->attempts == 0) {
        /* back to the front of the FIFO; callers release in reverse claim
         * order, which restores the original order */
        mq_job *j = c->job;
        j->next = ep->head;
        ep->head = j;
        if (!ep->tail) ep->tail = j;
        claim_free(q, c);
        return;
    }
    heap_push(ep, c, c->node.key); /* a retried job: due as before */
}

static int64_t mq_next_due(void *user, uint32_t slot)
{
    mq *q = user;
    if (slot >= q->n_eps) return INT64_MAX;
    mq_ep *ep = &q->eps[slot];
    int64_t t = INT64_MAX;
    if (ep->head) t = job_event(ep->head)->due;
    mq_claim *h = heap_top(ep);
    if (h && h->node.key < t) t = h->node.key;
    return t;
}

static size_t mq_size(void *user) { return ((mq *)user)->jobs; }

static void mq_destroy(void *user)
{
    mq *q = user;
    /* Drain whatever is left (the engine has reported it as cancelled). */
    wh_job tmp[64];
    for (uint32_t s = 0; s < q->n_eps; s++) {
        size_t n;
        while ((n = mq_claim_jobs(q, s, INT64_MAX, tmp, 64)) > 0)
            for (size_t i = 0; i < n; i++) mq_ack(q, &tmp[i]);
        wh__heap_free(&q->eps[s].heap);
    }
    free(q->eps);
    for (size_t i = 0; i < q->strs.cap; i++)
        if (q->strs.slot[i].key) free(q->strs.slot[i].val);
    wh__map_free(&q->strs);
    mq_claim *c;
    while ((c = q->free_claims)) {
        q->free_claims = c->next_free;
        free(c);
    }
    free(q);
}

static int mq_info(void *user, wh_queue_info *out);

int wh__queue_memory_new(size_t max_events, size_t max_bytes, wh_queue **out)
{
    mq *q = wh__calloc(1, sizeof *q);
    if (!q) return WH_E_NOMEM;
    q->max_events = max_events;
    q->max_bytes = max_bytes;
    q->vt.version = WH_QUEUE_VERSION;
    q->vt.user = q;
    q->vt.enqueue = mq_enqueue;
    q->vt.enqueue_with_headers = mq_enqueue_h;
    q->vt.claim = mq_claim_jobs;
    q->vt.ack = mq_ack;
    q->vt.retry = mq_retry;
    q->vt.release = mq_release;
    q->vt.next_due = mq_next_due;
    q->vt.size = mq_size;
    q->vt.commit = NULL;
    q->vt.destroy = mq_destroy;
    q->vt.info = mq_info;
    *out = &q->vt;
    return WH_OK;
}

/* wh_queue.info (version 3): what wh_queue_info_get reports. */
static int mq_info(void *user, wh_queue_info *out)
{
    mq *q = user;
    out->jobs = q->jobs;
    out->unbound_jobs = 0;
    out->pending = 0;
    out->claimed = 0;
    out->connected = 1;
    out->durable = 0;
    return WH_OK;
}

int wh__queue_memory_is(const wh_queue *q)
{
    return q && q->destroy == mq_destroy;
}
