/* Routing: which endpoints an event goes to, through an index.
 *
 * Every active endpoint is in exactly one of three places:
 *   - by_type:   endpoints with an event-type list, once under each of
 *                their types (a hash map type -> endpoints);
 *   - by_prefix: endpoints taking every type ("*" or no list) with a channel
 *                prefix filter (a hash map prefix -> endpoints, plus the set
 *                of distinct prefix lengths);
 *   - any:       endpoints taking every type without a prefix filter.
 * A match looks up the event's type once, the channel's prefixes once per
 * distinct prefix length, and scans `any`; each candidate's remaining
 * filters (prefix, suffix) are then checked.  So an emit costs the same with
 * 1 or 10,000 endpoints configured when only one of them matches, as long
 * as they differ by type or by channel prefix.  Results come in endpoint
 * insertion order.
 *
 * Keys are copied into the map and never removed (an emptied bucket stays,
 * ready for the next endpoint with that key): the map only grows with the
 * number of distinct types and prefixes ever configured.
 *
 * Calls ds.c (the hash map) only. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

/* The endpoints under one key (the bucket owns the key's bytes). */
typedef struct wh__bucket {
    char *key;
    wh_ep **eps;            /* insertion (slot) order */
    size_t n, cap;
} wh__bucket;

static wh__bucket *map_find(const wh__map *m, const char *key, size_t len)
{
    return wh__map_get(m, key, len, wh__hash(key, len));
}

static wh__bucket *map_get_or_add(wh__map *m, const char *key)
{
    size_t len = strlen(key);
    uint64_t h = wh__hash(key, len);
    wh__bucket *b = wh__map_get(m, key, len, h);
    if (b) return b;
    b = wh__calloc(1, sizeof *b);
    if (!b || !(b->key = wh__strndup(key, len))) {
        free(b);
        return NULL;
    }
    if (wh__map_put(m, b->key, len, h, b) != WH_OK) {
        free(b->key);
        free(b);
        return NULL;
    }
    return b;
}

static void map_free(wh__map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        wh__bucket *b = m->slot[i].val;
        if (!m->slot[i].key) continue;
        free(b->key);
        free(b->eps);
        free(b);
    }
    wh__map_free(m);
}

/* Append ep to a list kept in slot order (endpoints are added with
 * increasing slots, so appending keeps the order).  A list already ending
 * with ep (a type named twice) is left alone. */
static int list_add(wh_ep ***eps, size_t *n, size_t *cap, wh_ep *ep)
{
    if (*n && (*eps)[*n - 1] == ep) return WH_OK;
    if (wh__array_reserve(eps, cap, *n + 1, sizeof **eps, 4) != WH_OK) return WH_E_NOMEM;
    (*eps)[(*n)++] = ep;
    return WH_OK;
}

static void list_del(wh_ep **eps, size_t *n, const wh_ep *ep)
{
    for (size_t i = 0; i < *n; i++)
        if (eps[i] == ep) {
            memmove(&eps[i], &eps[i + 1], (*n - i - 1) * sizeof *eps);
            (*n)--;
            return;
        }
}

static int bucket_add(wh__map *m, const char *key, wh_ep *ep)
{
    wh__bucket *b = map_get_or_add(m, key);
    if (!b) return WH_E_NOMEM;
    return list_add(&b->eps, &b->n, &b->cap, ep);
}

static void bucket_del(wh__map *m, const char *key, const wh_ep *ep)
{
    wh__bucket *b = map_find(m, key, strlen(key));
    if (b) list_del(b->eps, &b->n, ep);
}

static int prefix_len_add(wh__router *r, size_t len)
{
    for (size_t i = 0; i < r->n_plen; i++)
        if (r->plen[i].len == len) {
            r->plen[i].count++;
            return WH_OK;
        }
    if (wh__array_reserve(&r->plen, &r->cap_plen, r->n_plen + 1, sizeof *r->plen, 4) != WH_OK)
        return WH_E_NOMEM;
    r->plen[r->n_plen].len = len;
    r->plen[r->n_plen].count = 1;
    r->n_plen++;
    return WH_OK;
}

static void prefix_len_del(wh__router *r, size_t len)
{
    for (size_t i = 0; i < r->n_plen; i++)
        if (r->plen[i].len == len) {
            if (--r->plen[i].count == 0) r->plen[i] = r->plen[--r->n_plen];
            return;
        }
}

void wh__router_remove(wh__router *r, wh_ep *ep)
{
    if (!ep->conf.all_types) {
        for (size_t i = 0; i < ep->conf.n_types; i++)
            bucket_del(&r->by_type, ep->conf.types[i], ep);
    } else if (ep->conf.ch_prefix) {
        size_t before = 0, after = 0;
        wh__bucket *b = map_find(&r->by_prefix, ep->conf.ch_prefix, ep->conf.ch_prefix_len);
        if (b) {
            before = b->n;
            list_del(b->eps, &b->n, ep);
            after = b->n;
        }
        if (after < before) prefix_len_del(r, ep->conf.ch_prefix_len);
    } else {
        list_del(r->any, &r->n_any, ep);
    }
    r->n--;
}

int wh__router_add(wh__router *r, wh_ep *ep)
{
    int rc = WH_OK;
    if (!ep->conf.all_types) {
        for (size_t i = 0; i < ep->conf.n_types && rc == WH_OK; i++)
            rc = bucket_add(&r->by_type, ep->conf.types[i], ep);
    } else if (ep->conf.ch_prefix) {
        rc = bucket_add(&r->by_prefix, ep->conf.ch_prefix, ep);
        if (rc == WH_OK) rc = prefix_len_add(r, ep->conf.ch_prefix_len);
        if (rc != WH_OK) bucket_del(&r->by_prefix, ep->conf.ch_prefix, ep);
    } else {
        rc = list_add(&r->any, &r->n_any, &r->cap_any, ep);
    }
    r->n++;
    if (rc != WH_OK) wh__router_remove(r, ep); /* undo a partial add */
    return rc;
}

void wh__router_free(wh__router *r)
{
    map_free(&r->by_type);
    map_free(&r->by_prefix);
    free(r->any);
    free(r->plen);
    memset(r, 0, sizeof *r);
}

static int ep_filters_hold(const wh_ep *ep, const char *channel, size_t ch_len)
{
    if (ep->conf.ch_prefix) {
        if (!channel || ch_len < ep->conf.ch_prefix_len ||
            memcmp(channel, ep->conf.ch_prefix, ep->conf.ch_prefix_len) != 0)
            return 0;
    }
    if (ep->conf.ch_suffix) {
        if (!channel || ch_len < ep->conf.ch_suffix_len ||
            memcmp(channel + ch_len - ep->conf.ch_suffix_len, ep->conf.ch_suffix,
                   ep->conf.ch_suffix_len) != 0)
            return 0;
    }
    return 1;
}

/* Candidate lists merged for one match: the type bucket, `any`, and one
 * prefix bucket per distinct prefix length (beyond WH__MAX_SOURCES distinct
 * lengths, the remaining prefix buckets are appended after the merge). */
#define WH__MAX_SOURCES 32

typedef struct src {
    wh_ep *const *eps;
    size_t n, pos;
} src;

static void emit_one(const wh_ep *ep, const char *channel, size_t ch_len,
                     uint32_t *out, const char **ids, size_t cap, size_t *n)
{
    if (!ep_filters_hold(ep, channel, ch_len)) return;
    if (*n < cap) {
        out[*n] = ep->slot;
        ids[*n] = ep->conf.id;
    }
    (*n)++;
}

size_t wh__router_match(wh__router *r, const char *type,
                        const char *channel, uint32_t *out, const char **ids,
                        size_t cap)
{
    size_t ch_len = channel ? strlen(channel) : 0;
    src srcs[WH__MAX_SOURCES];
    size_t ns = 0, n = 0, next_plen = 0;
    if (r->by_type.n) {
        /* a stream of one type mostly: the last bucket found, if its key
         * is this type, before hashing */
        wh__bucket *b = r->hot;
        if (!b || strcmp(b->key, type) != 0) {
            b = map_find(&r->by_type, type, strlen(type));
            if (b) r->hot = b;
        }
        if (b && b->n) srcs[ns++] = (src){b->eps, b->n, 0};
    }
    if (r->n_any) srcs[ns++] = (src){r->any, r->n_any, 0};
    if (channel && r->by_prefix.n) {
        for (; next_plen < r->n_plen && ns < WH__MAX_SOURCES; next_plen++) {
            size_t L = r->plen[next_plen].len;
            if (L > ch_len) continue;
            const wh__bucket *b = map_find(&r->by_prefix, channel, L);
            if (b && b->n) srcs[ns++] = (src){b->eps, b->n, 0};
        }
    }
    /* k-way merge by slot (insertion order); usually one or two sources. */
    for (;;) {
        size_t best = SIZE_MAX;
        uint32_t best_slot = UINT32_MAX;
        for (size_t s = 0; s < ns; s++)
            if (srcs[s].pos < srcs[s].n && srcs[s].eps[srcs[s].pos]->slot < best_slot) {
                best = s;
                best_slot = srcs[s].eps[srcs[s].pos]->slot;
            }
        if (best == SIZE_MAX) break;
        emit_one(srcs[best].eps[srcs[best].pos++], channel, ch_len, out, ids, cap, &n);
    }
    /* prefix lengths that did not fit in srcs[] (unusual configurations) */
    for (; channel && next_plen < r->n_plen; next_plen++) {
        size_t L = r->plen[next_plen].len;
        if (L > ch_len) continue;
        const wh__bucket *b = map_find(&r->by_prefix, channel, L);
        for (size_t k = 0; b && k < b->n; k++)
            emit_one(b->eps[k], channel, ch_len, out, ids, cap, &n);
    }
    return n;
}
