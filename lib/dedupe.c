/* Bounded memory of recently accepted delivery ids (see dedupe.h). */
#include "dedupe.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *id;           /* NULL: forgotten (a hole in the ring) */
    uint64_t hash;
    int64_t expires_ms;
} entry;

#define EMPTY UINT32_MAX

struct wh__dedupe {
    int64_t window_ms;
    size_t max_ids;
    entry *ring;         /* capacity ring_cap, live from head, n entries */
    size_t ring_cap, head, n;
    uint64_t base;       /* absolute sequence number of ring[head] */
    uint32_t *table;     /* ring positions (absolute seq mod 2^32), EMPTY */
    size_t table_cap;    /* power of two, >= 2 * ring_cap */
    size_t live;         /* entries with an id */
};

static uint64_t hash_id(const char *s)
{
    /* FNV-1a 64 then a murmur-style finaliser */
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static entry *at_seq(wh__dedupe *d, uint32_t seq32)
{
    /* the live window is smaller than 2^32, so 32 bits name an entry */
    uint32_t off = seq32 - (uint32_t)d->base;
    return &d->ring[(d->head + off) % d->ring_cap];
}

wh__dedupe *wh__dedupe_new(int64_t window_ms, size_t max_ids)
{
    if (window_ms <= 0 || max_ids == 0 || max_ids > (1u << 30)) return NULL;
    wh__dedupe *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->window_ms = window_ms;
    d->max_ids = max_ids;
    return d;
}

void wh__dedupe_free(wh__dedupe *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) free(d->ring[(d->head + i) % d->ring_cap].id);
    free(d->ring);
    free(d->table);
    free(d);
}

size_t wh__dedupe_count(const wh__dedupe *d) { return d ? d->live : 0; }

/* Table slot holding `id`, or the empty slot where it would go. */
static size_t find(wh__dedupe *d, const char *id, uint64_t h, int *found)
{
    size_t mask = d->table_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = d->table[i];
        if (v == EMPTY) {
            *found = 0;
            return i;
        }
        entry *e = at_seq(d, v);
        if (e->hash == h && e->id && strcmp(e->id, id) == 0) {
            *found = 1;
            return i;
        }
    }
}

/* Remove table slot i (linear probing: shift the cluster back). */
static void table_delete(wh__dedupe *d, size_t i)
{
    size_t mask = d->table_cap - 1;
    d->table[i] = EMPTY;
    for (size_t j = (i + 1) & mask; d->table[j] != EMPTY; j = (j + 1) & mask) {
        uint32_t v = d->table[j];
        size_t home = (size_t)at_seq(d, v)->hash & mask;
        /* move v to i when its home is not in (i, j] cyclically */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            d->table[i] = v;
            d->table[j] = EMPTY;
            i = j;
        }
    }
}

/* Drop the ring's head entry (expired or evicted). */
static void pop_head(wh__dedupe *d)
{
    entry *e = &d->ring[d->head];
    if (e->id) {
        int found;
        size_t i = find(d, e->id, e->hash, &found);
        if (found) table_delete(d, i);
        free(e->id);
        e->id = NULL;
        d->live--;
    }
    d->head = (d->head + 1) % d->ring_cap;
    d->base++;
    d->n--;
}

static int rebuild_table(wh__dedupe *d, size_t cap)
{
    uint32_t *t = malloc(cap * sizeof *t);
    if (!t) return WH_E_NOMEM;
    memset(t, 0xff, cap * sizeof *t);
    free(d->table);
    d->table = t;
    d->table_cap = cap;
    size_t mask = cap - 1;
    for (size_t k = 0; k < d->n; k++) {
        entry *e = &d->ring[(d->head + k) % d->ring_cap];
        if (!e->id) continue;
        size_t i = (size_t)e->hash & mask;
        while (t[i] != EMPTY) i = (i + 1) & mask;
        t[i] = (uint32_t)(d->base + k);
    }
    return WH_OK;
}

/* Room for one more entry: grow the ring (up to max_ids) and the table. */
static int reserve(wh__dedupe *d)
{
    if (d->n < d->ring_cap) return WH_OK;
    if (d->ring_cap >= d->max_ids) {
        pop_head(d);            /* full: forget the oldest early */
        return WH_OK;
    }
    size_t cap = d->ring_cap ? 2 * d->ring_cap : 64;
    if (cap > d->max_ids) cap = d->max_ids;
    entry *r = malloc(cap * sizeof *r);
    if (!r) return WH_E_NOMEM;
    for (size_t k = 0; k < d->n; k++) r[k] = d->ring[(d->head + k) % d->ring_cap];
    free(d->ring);
    d->ring = r;
    d->ring_cap = cap;
    d->head = 0;
    size_t tcap = 16;
    while (tcap < 2 * cap) tcap *= 2;
    return rebuild_table(d, tcap);
}

int wh__dedupe_check(wh__dedupe *d, const char *id, int64_t now_ms)
{
    if (!d || !id) return WH_E_INVAL;
    while (d->n && d->ring[d->head].expires_ms <= now_ms) pop_head(d);
    while (d->n && !d->ring[d->head].id) pop_head(d);  /* forgotten holes */
    uint64_t h = hash_id(id);
    int found = 0;
    if (d->table) {
        find(d, id, h, &found);
        if (found) return 1;
    }
    int rc = reserve(d);
    if (rc != WH_OK) return rc;
    char *copy = wh__strdup(id);
    if (!copy) return WH_E_NOMEM;
    size_t pos = (d->head + d->n) % d->ring_cap;
    d->ring[pos] = (entry){copy, h, now_ms + d->window_ms};
    uint32_t seq = (uint32_t)(d->base + d->n);
    d->n++;
    d->live++;
    size_t slot = find(d, id, h, &found);
    d->table[slot] = seq;
    return 0;
}

void wh__dedupe_forget(wh__dedupe *d, const char *id)
{
    if (!d || !id || !d->table) return;
    int found;
    size_t i = find(d, id, hash_id(id), &found);
    if (!found) return;
    entry *e = at_seq(d, d->table[i]);
    table_delete(d, i);
    free(e->id);
    e->id = NULL;
    d->live--;
}
