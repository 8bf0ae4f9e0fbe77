/* The data-structure primitives declared in ds.h. */
#include "ds.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- growable array ----------------------------------------------------- */
int wh__array_reserve(void *pp, size_t *cap, size_t want, size_t size, size_t first)
{
    if (want <= *cap) return WH_OK;
    size_t n = *cap ? *cap : first;
    while (n < want) {
        if (n > SIZE_MAX / 2 / size) return WH_E_NOMEM;
        n *= 2;
    }
    void *old;
    memcpy(&old, pp, sizeof old);
    char *a = realloc(old, n * size);
    if (!a) return WH_E_NOMEM;
    memset(a + *cap * size, 0, (n - *cap) * size);
    memcpy(pp, &a, sizeof a);
    *cap = n;
    return WH_OK;
}

/* ---- intrusive list ------------------------------------------------------ */
void wh__list_push_front(wh__list *l, wh__link *x)
{
    x->prev = NULL;
    x->next = l->head;
    if (l->head) l->head->prev = x;
    else l->tail = x;
    l->head = x;
    l->n++;
}

void wh__list_push_back(wh__list *l, wh__link *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail) l->tail->next = x;
    else l->head = x;
    l->tail = x;
    l->n++;
}

void wh__list_unlink(wh__list *l, wh__link *x)
{
    if (x->prev) x->prev->next = x->next;
    else l->head = x->next;
    if (x->next) x->next->prev = x->prev;
    else l->tail = x->prev;
    x->prev = x->next = NULL;
    l->n--;
}

wh__link *wh__list_pop_front(wh__list *l)
{
    wh__link *x = l->head;
    if (x) wh__list_unlink(l, x);
    return x;
}

void wh__list_splice_front(wh__list *dst, wh__list *src)
{
    if (!src->head) return;
    src->tail->next = dst->head;
    if (dst->head) dst->head->prev = src->tail;
    else dst->tail = src->tail;
    dst->head = src->head;
    dst->n += src->n;
    src->head = src->tail = NULL;
    src->n = 0;
}

/* ---- index-tracking heap ------------------------------------------------- */
static void heap_set(wh__heap *h, size_t i, wh__heap_node *x)
{
    h->a[i] = x;
    x->idx = i;
}

static void heap_up(wh__heap *h, size_t i)
{
    wh__heap_node *x = h->a[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p]->key <= x->key) break;
        heap_set(h, i, h->a[p]);
        i = p;
    }
    heap_set(h, i, x);
}

static void heap_down(wh__heap *h, size_t i)
{
    wh__heap_node *x = h->a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->a[c + 1]->key < h->a[c]->key) c++;
        if (h->a[c]->key >= x->key) break;
        heap_set(h, i, h->a[c]);
        i = c;
    }
    heap_set(h, i, x);
}

int wh__heap_reserve(wh__heap *h, size_t n)
{
    if (n <= h->cap) return WH_OK;
    size_t cap = h->cap ? h->cap : 16;
    while (cap < n) cap *= 2;
    wh__heap_node **a = realloc(h->a, cap * sizeof *a);
    if (!a) return WH_E_NOMEM;
    h->a = a;
    h->cap = cap;
    return WH_OK;
}

void wh__heap_push(wh__heap *h, wh__heap_node *x, int64_t key)
{
    x->key = key;
    heap_set(h, h->n++, x);
    heap_up(h, x->idx);
}

void wh__heap_update(wh__heap *h, wh__heap_node *x, int64_t key)
{
    int64_t old = x->key;
    x->key = key;
    if (key < old) heap_up(h, x->idx);
    else if (key > old) heap_down(h, x->idx);
}

void wh__heap_remove(wh__heap *h, wh__heap_node *x)
{
    size_t i = x->idx;
    x->idx = SIZE_MAX;
    if (--h->n == i) return;
    wh__heap_node *moved = h->a[h->n];
    heap_set(h, i, moved);
    heap_up(h, i);
    if (moved->idx == i) heap_down(h, i);
}

wh__heap_node *wh__heap_pop(wh__heap *h)
{
    wh__heap_node *top = h->a[0];
    top->idx = SIZE_MAX;
    if (--h->n) {
        heap_set(h, 0, h->a[h->n]);
        heap_down(h, 0);
    }
    return top;
}

void wh__heap_free(wh__heap *h)
{
    free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

/* ---- hash map ------------------------------------------------------------ */
static int map_grow(wh__map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    wh__map_entry *s = wh__calloc(cap, sizeof *s);
    if (!s) return WH_E_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slot[i].key) continue;
        size_t j = m->slot[i].hash & (cap - 1);
        while (s[j].key) j = (j + 1) & (cap - 1);
        s[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = s;
    m->cap = cap;
    return WH_OK;
}

int wh__map_put(wh__map *m, const char *key, size_t len, uint64_t h, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) != WH_OK) return WH_E_NOMEM;
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slot[i].key) i = (i + 1) & mask;
    m->slot[i] = (wh__map_entry){key, len, h, val};
    m->n++;
    return WH_OK;
}

void *wh__map_del(wh__map *m, const char *key, size_t len, uint64_t h)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        wh__map_entry *x = &m->slot[i];
        if (!x->key) return NULL;
        if (x->hash == h && x->len == len && memcmp(x->key, key, len) == 0) break;
    }
    void *val = m->slot[i].val;
    m->slot[i].key = NULL;
    /* backward shift: pull later entries of the run into the hole unless
     * their home lies in (hole, j] */
    for (size_t j = (i + 1) & mask; m->slot[j].key; j = (j + 1) & mask) {
        size_t k = m->slot[j].hash & mask;
        int stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (stays) continue;
        m->slot[i] = m->slot[j];
        m->slot[j].key = NULL;
        i = j;
    }
    m->n--;
    return val;
}

void wh__map_free(wh__map *m)
{
    free(m->slot);
    m->slot = NULL;
    m->cap = m->n = 0;
}
