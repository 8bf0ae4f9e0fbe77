/* The default queue: bounded, in memory.
 *
 * An event is stored once (one allocation holding the payload and its
 * strings) with a reference count; each endpoint it fans out to gets a small
 * job node.  Per endpoint, fresh jobs wait in a FIFO list (O(1) enqueue, due
 * times never decrease) and retried jobs in a min-heap keyed by due time.
 * Claimed jobs are owned by the caller until ack or retry. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct mq_job;
typedef struct mq_event {
    uint32_t refs;
    uint32_t id_len;
    int64_t created;
    size_t data_len;
    const char *type;
    const char *channel;
    char *id;
    struct mq_job *jobs_block; /* the event's jobs: one allocation */
    char data[]; /* data NUL id NUL type NUL [channel NUL] */
} mq_event;

typedef struct mq_job {
    mq_event *ev;
    struct mq_job *next;
    int64_t due;
    int64_t first_attempt;
    uint32_t attempts;
    uint32_t slot;
} mq_job;

typedef struct mq_ep {
    mq_job *head, *tail; /* fresh jobs, FIFO */
    mq_job **heap;       /* retries, min-heap on due */
    size_t heap_n, heap_cap;
} mq_ep;

typedef struct mq {
    wh_queue vt;
    mq_ep *eps;
    size_t n_eps;
    size_t jobs, events, bytes;
    size_t max_events, max_bytes;
} mq;

static int ensure_slot(mq *q, uint32_t slot)
{
    if (slot < q->n_eps) return WH_OK;
    size_t n = q->n_eps ? q->n_eps : 16;
    while (n <= slot) n *= 2;
    mq_ep *eps = realloc(q->eps, n * sizeof *eps);
    if (!eps) return WH_E_NOMEM;
    memset(eps + q->n_eps, 0, (n - q->n_eps) * sizeof *eps);
    q->eps = eps;
    q->n_eps = n;
    return WH_OK;
}

static int mq_enqueue(void *user, const wh_event_view *ev, const uint32_t *slots,
                      const char *const *ids, size_t n, int64_t due)
{
    mq *q = user;
    (void)ids;
    if (n == 0) return WH_OK;
    if (q->events >= q->max_events || ev->data_len > q->max_bytes - q->bytes)
        return WH_E_FULL;
    for (size_t i = 0; i < n; i++)
        if (ensure_slot(q, slots[i]) != WH_OK) return WH_E_NOMEM;
    size_t id_len = strlen(ev->id), type_len = strlen(ev->type);
    size_t ch_len = ev->channel ? strlen(ev->channel) + 1 : 0;
    mq_event *e = malloc(sizeof *e + ev->data_len + 1 + id_len + 1 + type_len +
                         1 + ch_len);
    mq_job *jobs = malloc(n * sizeof *jobs);
    if (!e || !jobs) {
        free(e);
        free(jobs);
        return WH_E_NOMEM;
    }
    /* The jobs of one event are one allocation, freed with the event. */
    e->jobs_block = jobs;
    e->refs = (uint32_t)n;
    e->created = ev->created_ms;
    e->data_len = ev->data_len;
    char *p = e->data;
    memcpy(p, ev->data, ev->data_len);
    p[ev->data_len] = '\0';
    p += ev->data_len + 1;
    e->id = p;
    e->id_len = (uint32_t)id_len;
    memcpy(p, ev->id, id_len + 1);
    p += id_len + 1;
    e->type = p;
    memcpy(p, ev->type, type_len + 1);
    p += type_len + 1;
    e->channel = NULL;
    if (ev->channel) {
        e->channel = p;
        memcpy(p, ev->channel, ch_len);
    }
    for (size_t i = 0; i < n; i++) {
        mq_job *j = &jobs[i];
        j->ev = e;
        j->next = NULL;
        j->due = due;
        j->first_attempt = -1;
        j->attempts = 0;
        j->slot = slots[i];
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

/* ---- heap of retried jobs --------------------------------------------------- */
static void heap_up(mq_ep *ep, size_t i)
{
    mq_job *j = ep->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (ep->heap[parent]->due <= j->due) break;
        ep->heap[i] = ep->heap[parent];
        i = parent;
    }
    ep->heap[i] = j;
}

static void heap_down(mq_ep *ep, size_t i)
{
    mq_job *j = ep->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= ep->heap_n) break;
        if (c + 1 < ep->heap_n && ep->heap[c + 1]->due < ep->heap[c]->due) c++;
        if (ep->heap[c]->due >= j->due) break;
        ep->heap[i] = ep->heap[c];
        i = c;
    }
    ep->heap[i] = j;
}

static mq_job *heap_pop(mq_ep *ep)
{
    mq_job *top = ep->heap[0];
    if (--ep->heap_n) {
        ep->heap[0] = ep->heap[ep->heap_n];
        heap_down(ep, 0);
    }
    return top;
}

static size_t mq_claim(void *user, uint32_t slot, int64_t now, wh_job *out,
                       size_t max)
{
    mq *q = user;
    if (slot >= q->n_eps) return 0;
    mq_ep *ep = &q->eps[slot];
    size_t n = 0;
    while (n < max) {
        mq_job *h = ep->heap_n ? ep->heap[0] : NULL;
        mq_job *f = ep->head;
        mq_job *j;
        if (h && h->due <= now && (!f || h->due <= f->due)) {
            j = heap_pop(ep);
        } else if (f && f->due <= now) {
            j = f;
            ep->head = f->next;
            if (!ep->head) ep->tail = NULL;
        } else {
            break;
        }
        j->next = NULL;
        wh_job *o = &out[n++];
        o->ref = j;
        o->endpoint = slot;
        o->attempts = j->attempts;
        o->first_attempt_ms = j->first_attempt;
        o->ev.id = j->ev->id;
        o->ev.type = j->ev->type;
        o->ev.channel = j->ev->channel;
        o->ev.data = j->ev->data;
        o->ev.data_len = j->ev->data_len;
        o->ev.created_ms = j->ev->created;
    }
    return n;
}

static void mq_ack(void *user, wh_job *job)
{
    mq *q = user;
    mq_job *j = job->ref;
    mq_event *e = j->ev;
    q->jobs--;
    if (--e->refs == 0) {
        q->events--;
        q->bytes -= e->data_len;
        free(e->jobs_block);
        free(e);
    }
    job->ref = NULL;
}

static void mq_retry(void *user, wh_job *job, int64_t due)
{
    mq *q = user;
    mq_job *j = job->ref;
    mq_ep *ep = &q->eps[j->slot];
    j->attempts++;
    j->first_attempt = job->first_attempt_ms;
    j->due = due;
    if (ep->heap_n == ep->heap_cap) {
        size_t cap = ep->heap_cap ? ep->heap_cap * 2 : 8;
        mq_job **h = realloc(ep->heap, cap * sizeof *h);
        if (!h) {
            /* Cannot grow the heap: keep the job due now at the FIFO head
             * rather than lose it. */
            j->next = ep->head;
            ep->head = j;
            if (!ep->tail) ep->tail = j;
            j->due = due;
            job->ref = NULL;
            return;
        }
        ep->heap = h;
        ep->heap_cap = cap;
    }
    ep->heap[ep->heap_n++] = j;
    heap_up(ep, ep->heap_n - 1);
    job->ref = NULL;
}

static void mq_release(void *user, wh_job *job)
{
    mq *q = user;
    mq_job *j = job->ref;
    mq_ep *ep = &q->eps[j->slot];
    job->ref = NULL;
    if (j->attempts == 0) {
        /* back to the front of the FIFO; callers release in reverse claim
         * order, which restores the original order */
        j->next = ep->head;
        ep->head = j;
        if (!ep->tail) ep->tail = j;
        return;
    }
    /* a retried job: back into the heap (room is there: it came from it, or
     * the FIFO fallback of mq_retry) */
    if (ep->heap_n == ep->heap_cap) {
        j->next = ep->head;
        ep->head = j;
        if (!ep->tail) ep->tail = j;
        return;
    }
    ep->heap[ep->heap_n++] = j;
    heap_up(ep, ep->heap_n - 1);
}

static int64_t mq_next_due(void *user, uint32_t slot)
{
    mq *q = user;
    if (slot >= q->n_eps) return INT64_MAX;
    mq_ep *ep = &q->eps[slot];
    int64_t t = INT64_MAX;
    if (ep->head) t = ep->head->due;
    if (ep->heap_n && ep->heap[0]->due < t) t = ep->heap[0]->due;
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
        while ((n = mq_claim(q, s, INT64_MAX, tmp, 64)) > 0)
            for (size_t i = 0; i < n; i++) mq_ack(q, &tmp[i]);
        free(q->eps[s].heap);
    }
    free(q->eps);
    free(q);
}

int wh__queue_memory_new(size_t max_events, size_t max_bytes, wh_queue **out)
{
    mq *q = wh__calloc(1, sizeof *q);
    if (!q) return WH_E_NOMEM;
    q->max_events = max_events;
    q->max_bytes = max_bytes;
    q->vt.version = WH_QUEUE_VERSION;
    q->vt.user = q;
    q->vt.enqueue = mq_enqueue;
    q->vt.claim = mq_claim;
    q->vt.ack = mq_ack;
    q->vt.retry = mq_retry;
    q->vt.release = mq_release;
    q->vt.next_due = mq_next_due;
    q->vt.size = mq_size;
    q->vt.commit = NULL;
    q->vt.destroy = mq_destroy;
    *out = &q->vt;
    return WH_OK;
}

int wh__queue_memory_info(wh_queue *vq, wh_queue_info *out)
{
    if (vq->destroy != mq_destroy) return WH_E_INVAL;
    mq *q = vq->user;
    out->jobs = q->jobs;
    out->unbound_jobs = 0;
    out->pending = 0;
    out->claimed = 0;
    out->connected = 1;
    return WH_OK;
}
