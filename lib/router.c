/* Routing: which endpoints an event goes to.
 *
 * First cut: a linear scan over the active endpoints, matching event type
 * (exact name or "*") and the channel prefix/suffix filters.  The interface
 * is what an index (by event type, with a wildcard list) will implement. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

int wh__router_add(wh__router *r, wh_ep *ep)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        wh_ep **p = realloc(r->eps, cap * sizeof *p);
        if (!p) return WH_E_NOMEM;
        r->eps = p;
        r->cap = cap;
    }
    r->eps[r->n++] = ep;
    return WH_OK;
}

void wh__router_remove(wh__router *r, wh_ep *ep)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->eps[i] == ep) {
            memmove(&r->eps[i], &r->eps[i + 1], (r->n - i - 1) * sizeof *r->eps);
            r->n--;
            return;
        }
}

void wh__router_free(wh__router *r)
{
    free(r->eps);
    r->eps = NULL;
    r->n = r->cap = 0;
}

static int ep_matches(const wh_ep *ep, const char *type, const char *channel,
                      size_t ch_len)
{
    if (!ep->all_types) {
        size_t i;
        for (i = 0; i < ep->n_types; i++)
            if (strcmp(ep->types[i], type) == 0) break;
        if (i == ep->n_types) return 0;
    }
    if (ep->ch_prefix) {
        if (!channel || ch_len < ep->ch_prefix_len ||
            memcmp(channel, ep->ch_prefix, ep->ch_prefix_len) != 0)
            return 0;
    }
    if (ep->ch_suffix) {
        if (!channel || ch_len < ep->ch_suffix_len ||
            memcmp(channel + ch_len - ep->ch_suffix_len, ep->ch_suffix,
                   ep->ch_suffix_len) != 0)
            return 0;
    }
    return 1;
}

size_t wh__router_match(const wh__router *r, const char *type,
                        const char *channel, uint32_t *out, const char **ids,
                        size_t cap)
{
    size_t n = 0, ch_len = channel ? strlen(channel) : 0;
    for (size_t i = 0; i < r->n; i++) {
        const wh_ep *ep = r->eps[i];
        if (!ep_matches(ep, type, channel, ch_len)) continue;
        if (n < cap) {
            out[n] = ep->slot;
            ids[n] = ep->id;
        }
        n++;
    }
    return n;
}
