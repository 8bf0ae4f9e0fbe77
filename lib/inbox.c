/* The inbox of emit_any_thread: a bounded lock-free multi-producer,
 * single-consumer ring of event copies (C11 atomics; D. Vyukov's bounded
 * queue: each cell carries a sequence number that says whose turn it is).
 * Producers (any thread) copy the event into one allocation and claim a
 * cell with one compare-and-swap; the engine's thread takes cells in
 * order.  A producer wakes the consumer only on the first push after the
 * consumer last armed the flag, so a burst costs one wakeup.
 * Leaf: calls nothing of the engine. */
#include "engine.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct inbox_cell {
    atomic_size_t seq;
    wh__inbox_item *item;
} inbox_cell;

struct wh__inbox {
    size_t mask;
    inbox_cell *cells;
    _Alignas(64) atomic_size_t tail;  /* producers: next position to claim */
    _Alignas(64) size_t head;         /* the consumer's next position */
    _Alignas(64) atomic_int wake;     /* 1: a wakeup is pending */
    atomic_uint_fast64_t rejected;    /* wh_emit calls refused (any thread) */
};

struct wh__inbox *wh__inbox_new(size_t capacity)
{
    size_t cap = 2;
    if (capacity > ((size_t)1 << 30)) capacity = (size_t)1 << 30;
    while (cap < capacity) cap <<= 1;
    size_t size = (sizeof(struct wh__inbox) + 63) / 64 * 64;
    struct wh__inbox *in = aligned_alloc(64, size);
    if (!in) return NULL;
    memset(in, 0, sizeof *in);
    in->cells = calloc(cap, sizeof *in->cells);
    if (!in->cells) {
        free(in);
        return NULL;
    }
    in->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) atomic_init(&in->cells[i].seq, i);
    atomic_init(&in->tail, 0);
    in->head = 0;
    atomic_init(&in->wake, 0);
    atomic_init(&in->rejected, 0);
    return in;
}

void wh__inbox_free(struct wh__inbox *in)
{
    if (!in) return;
    while (wh__inbox_peek(in)) wh__inbox_pop(in);
    free(in->cells);
    free(in);
}

static char *put(char **p, const char *s, size_t n)
{
    char *at = *p;
    memcpy(at, s, n);
    at[n] = '\0';
    *p += n + 1;
    return at;
}

int wh__inbox_push(struct wh__inbox *in, const char *type, const char *channel,
                   const char *data, size_t len, const char *id, int64_t wall, int *wake)
{
    *wake = 0;
    size_t lt = strlen(type), lc = channel ? strlen(channel) : 0, li = id ? strlen(id) : 0;
    wh__inbox_item *it = malloc(sizeof *it + lt + lc + li + len + 4);
    if (!it) return WH_E_NOMEM;
    char *p = (char *)(it + 1);
    it->type = put(&p, type, lt);
    it->channel = channel ? put(&p, channel, lc) : NULL;
    it->id = id ? put(&p, id, li) : NULL;
    it->data = put(&p, data, len);
    it->len = len;
    it->wall = wall;

    size_t pos = atomic_load_explicit(&in->tail, memory_order_relaxed);
    inbox_cell *c;
    for (;;) {
        c = &in->cells[pos & in->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&in->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (diff < 0) {
            free(it);
            return WH_E_FULL;
        } else {
            pos = atomic_load_explicit(&in->tail, memory_order_relaxed);
        }
    }
    c->item = it;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    if (atomic_exchange(&in->wake, 1) == 0) *wake = 1;
    return WH_OK;
}

void wh__inbox_armed(struct wh__inbox *in)
{
    atomic_store(&in->wake, 0);
}

const wh__inbox_item *wh__inbox_peek(struct wh__inbox *in)
{
    inbox_cell *c = &in->cells[in->head & in->mask];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if (seq != in->head + 1) return NULL;
    return c->item;
}

void wh__inbox_pop(struct wh__inbox *in)
{
    inbox_cell *c = &in->cells[in->head & in->mask];
    free(c->item);
    c->item = NULL;
    atomic_store_explicit(&c->seq, in->head + in->mask + 1, memory_order_release);
    in->head++;
}

int wh__inbox_empty(struct wh__inbox *in)
{
    return wh__inbox_peek(in) == NULL;
}

void wh__inbox_reject(struct wh__inbox *in)
{
    atomic_fetch_add_explicit(&in->rejected, 1, memory_order_relaxed);
}

uint64_t wh__inbox_rejected(struct wh__inbox *in)
{
    return (uint64_t)atomic_load_explicit(&in->rejected, memory_order_relaxed);
}
