/* The library's data-structure primitives, one of each (lib/ds.c):
 *
 *   wh__list  an intrusive doubly-linked list with head and tail: embed a
 *             wh__link in the element, get the element back with
 *             WH__CONTAINER_OF.  O(1) push at either end and unlink.
 *   wh__heap  a binary min-heap of embedded wh__heap_node {key, idx}: each
 *             node knows its index, so it can be moved or removed in
 *             O(log n).  Ties keep no particular order.
 *   wh__map   a hash map from byte-string keys to pointers, open addressing
 *             with linear probing and backward-shift deletion.  The map
 *             does not own its keys: the caller keeps each key's bytes
 *             alive (usually inside the value) until it deletes the entry.
 *
 *   wh__array_reserve  room in a growable array (doubling, new room zeroed).
 *
 * Leaf of the call graph: calls nothing of the library but wh__calloc. */
#ifndef WH_DS_H
#define WH_DS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WH__CONTAINER_OF(ptr, type, member)                                    \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- growable array ----------------------------------------------------- */
/* Make room for `want` elements of `size` bytes in the array at *(T **)pp of
 * capacity *cap, doubling from `first`; the new room is zeroed.  WH_OK, or
 * WH_E_NOMEM with the array and *cap unchanged. */
int wh__array_reserve(void *pp, size_t *cap, size_t want, size_t size, size_t first);

/* ---- intrusive list ------------------------------------------------------ */
typedef struct wh__link {
    struct wh__link *prev, *next;
} wh__link;

typedef struct wh__list {
    wh__link *head, *tail;
    size_t n;
} wh__list;

void wh__list_push_front(wh__list *l, wh__link *x);
void wh__list_push_back(wh__list *l, wh__link *x);
void wh__list_unlink(wh__list *l, wh__link *x);
/* Unlink and return the head, NULL when empty. */
wh__link *wh__list_pop_front(wh__list *l);
/* Move every element of src to the front of dst, in src's order. */
void wh__list_splice_front(wh__list *dst, wh__list *src);

/* ---- index-tracking heap ------------------------------------------------- */
typedef struct wh__heap_node {
    int64_t key;
    size_t idx;          /* SIZE_MAX: not in a heap */
} wh__heap_node;

typedef struct wh__heap {
    wh__heap_node **a;
    size_t n, cap;
} wh__heap;

#define WH__HEAP_NODE_INIT {INT64_MAX, SIZE_MAX}

/* Room for n nodes: after it, push never allocates.  WH_OK or WH_E_NOMEM. */
int wh__heap_reserve(wh__heap *h, size_t n);
/* Insert x with key; room must have been reserved. */
void wh__heap_push(wh__heap *h, wh__heap_node *x, int64_t key);
/* Change x's key (x in h). */
void wh__heap_update(wh__heap *h, wh__heap_node *x, int64_t key);
void wh__heap_remove(wh__heap *h, wh__heap_node *x);
wh__heap_node *wh__heap_pop(wh__heap *h);
static inline wh__heap_node *wh__heap_top(const wh__heap *h)
{
    return h->n ? h->a[0] : NULL;
}
void wh__heap_free(wh__heap *h);

/* ---- hash map ------------------------------------------------------------ */
typedef struct wh__map_entry {
    const char *key;     /* NULL: empty slot */
    size_t len;
    uint64_t hash;
    void *val;
} wh__map_entry;

typedef struct wh__map {
    wh__map_entry *slot; /* cap a power of two, at most 3/4 full */
    size_t cap, n;
} wh__map;

/* FNV-1a, folded.  Inline, like wh__map_get: both are on the emit path. */
static inline uint64_t wh__hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 32);
}

/* The value stored under key[0..len) with hash h = wh__hash(key, len), or
 * NULL. */
static inline void *wh__map_get(const wh__map *m, const char *key, size_t len, uint64_t h)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const wh__map_entry *x = &m->slot[i];
        if (!x->key) return NULL;
        if (x->hash == h && x->len == len && memcmp(x->key, key, len) == 0)
            return x->val;
    }
}
/* Store val under key (not present yet); the map keeps the key pointer.
 * WH_OK or WH_E_NOMEM. */
int wh__map_put(wh__map *m, const char *key, size_t len, uint64_t h, void *val);
/* Remove key's entry; returns its value or NULL. */
void *wh__map_del(wh__map *m, const char *key, size_t len, uint64_t h);
void wh__map_free(wh__map *m); /* frees the table only */

#endif
