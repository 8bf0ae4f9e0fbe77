/* Endpoints: options, validation, add/remove/find. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EP_FIELD_OK(o, field)                                                  \
    ((o)->struct_size >= offsetof(wh_endpoint_options, field) + sizeof((o)->field))

void wh_endpoint_options_init_sized(wh_endpoint_options *o, size_t size)
{
    if (!o || size < sizeof(size_t)) return;
    wh_endpoint_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = size < sizeof d ? size : sizeof d;
    d.timeout_ms = 10000;
    d.connect_timeout_ms = 5000;
    d.max_attempts = 8;
    d.retry_initial_ms = 2000;
    d.retry_max_ms = 300000;
    d.retry_multiplier = 2;
    d.max_in_flight = 30;
    memcpy(o, &d, d.struct_size);
}

/* Copy the caller's options into a full-size struct with defaults for the
 * fields an older caller does not know. */
static int normalize(const wh_endpoint_options *in, wh_endpoint_options *o)
{
    if (in->struct_size < offsetof(wh_endpoint_options, url) + sizeof in->url)
        return WH_E_VERSION;
    wh_endpoint_options_init(o);
    size_t n = in->struct_size < sizeof *o ? in->struct_size : sizeof *o;
    memcpy(o, in, n);
    o->struct_size = sizeof *o;
    return WH_OK;
}

static int find_by_id(const wh_engine *e, const char *id)
{
    for (size_t i = 0; i < e->n_slots; i++)
        if (e->eps[i] && strcmp(e->eps[i]->id, id) == 0) return e->eps[i]->handle;
    return WH_E_NOT_FOUND;
}

int wh__endpoint_check(wh_engine *e, const wh_endpoint_options *in,
                       const char *where)
{
    if (!e || !in) return WH_E_INVAL;
    if (!where) where = "endpoint";
    wh_endpoint_options o;
    if (normalize(in, &o) != WH_OK)
        return wh__fail(e, WH_E_VERSION, "%s: options struct_size %zu too small "
                        "(use wh_endpoint_options_init)", where, in->struct_size);
    const char *why = NULL;
    if (!o.url) return wh__fail(e, WH_E_INVAL, "%s.url: required", where);
    if (!wh__url_valid(o.url, &why))
        return wh__fail(e, WH_E_URL, "%s.url: %s", where, why);
    if (o.id) {
        if (!*o.id || strlen(o.id) > 200)
            return wh__fail(e, WH_E_INVAL, "%s.id: must be 1 to 200 characters",
                            where);
        for (const char *c = o.id; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return wh__fail(e, WH_E_INVAL,
                                "%s.id: contains a control character", where);
        if (find_by_id(e, o.id) > 0)
            return wh__fail(e, WH_E_EXISTS, "%s.id: \"%s\" is already in use",
                            where, o.id);
    }
    if (o.n_event_types && !o.event_types)
        return wh__fail(e, WH_E_INVAL, "%s.event_types: NULL with count %zu",
                        where, o.n_event_types);
    for (size_t i = 0; o.event_types && i < o.n_event_types; i++)
        if (!o.event_types[i] || !*o.event_types[i])
            return wh__fail(e, WH_E_INVAL, "%s.event_types[%zu]: empty", where, i);
    if (o.n_secrets && !o.secrets)
        return wh__fail(e, WH_E_INVAL, "%s.secrets: NULL with count %zu", where,
                        o.n_secrets);
    for (size_t i = 0; i < o.n_secrets; i++) {
        wh__hmac *h = NULL;
        int rc = o.secrets[i] ? wh__hmac_new(o.secrets[i], &h) : WH_E_SECRET;
        wh__hmac_free(h);
        if (rc == WH_E_NOMEM) return wh__fail(e, rc, "%s: out of memory", where);
        if (rc != WH_OK)
            return wh__fail(e, WH_E_SECRET,
                            "%s.secrets[%zu]: not a valid secret (expected "
                            "whsec_<base64> or a non-empty string)", where, i);
    }
    if (o.n_headers && !o.headers)
        return wh__fail(e, WH_E_INVAL, "%s.headers: NULL with count %zu", where,
                        o.n_headers);
    for (size_t i = 0; i < o.n_headers; i++)
        if (wh__header_valid(o.headers[i], &why) != WH_OK)
            return wh__fail(e, WH_E_HEADER, "%s.headers[%zu]: %s", where, i, why);
    if (o.timeout_ms == 0)
        return wh__fail(e, WH_E_INVAL, "%s.timeout_ms: must be positive", where);
    if (o.max_attempts == 0)
        return wh__fail(e, WH_E_INVAL, "%s.max_attempts: must be positive", where);
    if (o.max_in_flight == 0)
        return wh__fail(e, WH_E_INVAL, "%s.max_in_flight: must be positive", where);
    if (o.retry_multiplier == 0)
        return wh__fail(e, WH_E_INVAL, "%s.retry_multiplier: must be positive",
                        where);
    if (o.retry_max_ms < o.retry_initial_ms)
        return wh__fail(e, WH_E_INVAL,
                        "%s.retry_max_ms: smaller than retry_initial_ms", where);
    return WH_OK;
}

void wh__ep_free(wh_ep *ep)
{
    if (!ep) return;
    free(ep->id);
    free(ep->url);
    for (size_t i = 0; i < ep->n_types; i++) free(ep->types[i]);
    free(ep->types);
    free(ep->ch_prefix);
    free(ep->ch_suffix);
    for (size_t i = 0; i < ep->n_keys; i++) wh__hmac_free(ep->keys[i]);
    free(ep->keys);
    for (size_t i = 0; i < ep->n_headers; i++) free(ep->headers[i]);
    free(ep->headers);
    free(ep);
}

static wh_ep *ep_build(const wh_engine *e, const wh_endpoint_options *o, int handle)
{
    wh_ep *ep = wh__calloc(1, sizeof *ep);
    if (!ep) return NULL;
    ep->handle = handle;
    ep->slot = (uint32_t)(handle - 1);
    ep->wake = INT64_MAX;
    ep->heap_idx = SIZE_MAX;
    if (o->id) ep->id = wh__strdup(o->id);
    else {
        /* "ep-<handle>", made unique against ids the host chose */
        char buf[48];
        snprintf(buf, sizeof buf, "ep-%d", handle);
        for (int k = 2; find_by_id(e, buf) > 0; k++)
            snprintf(buf, sizeof buf, "ep-%d-%d", handle, k);
        ep->id = wh__strdup(buf);
    }
    ep->url = wh__strdup(o->url);
    if (!ep->id || !ep->url) goto fail;
    ep->all_types = o->event_types == NULL;
    if (o->event_types && o->n_event_types) {
        ep->types = wh__calloc(o->n_event_types, sizeof *ep->types);
        if (!ep->types) goto fail;
        for (size_t i = 0; i < o->n_event_types; i++) {
            if (strcmp(o->event_types[i], "*") == 0) ep->all_types = 1;
            if (!(ep->types[ep->n_types++] = wh__strdup(o->event_types[i])))
                goto fail;
        }
    }
    if (o->channel_prefix) {
        if (!(ep->ch_prefix = wh__strdup(o->channel_prefix))) goto fail;
        ep->ch_prefix_len = strlen(ep->ch_prefix);
    }
    if (o->channel_suffix) {
        if (!(ep->ch_suffix = wh__strdup(o->channel_suffix))) goto fail;
        ep->ch_suffix_len = strlen(ep->ch_suffix);
    }
    if (o->n_secrets) {
        ep->keys = wh__calloc(o->n_secrets, sizeof *ep->keys);
        if (!ep->keys) goto fail;
        for (size_t i = 0; i < o->n_secrets; i++) {
            if (wh__hmac_new(o->secrets[i], &ep->keys[i]) != WH_OK) goto fail;
            ep->n_keys++;
        }
    }
    if (o->n_headers) {
        ep->headers = wh__calloc(o->n_headers, sizeof *ep->headers);
        if (!ep->headers) goto fail;
        for (size_t i = 0; i < o->n_headers; i++) {
            if (!(ep->headers[i] = wh__strdup(o->headers[i]))) goto fail;
            ep->n_headers++;
            ep->headers_bytes += strlen(o->headers[i]);
        }
    }
    ep->names.id = "webhook-id";
    ep->names.timestamp = "webhook-timestamp";
    ep->names.signature = "webhook-signature";
    ep->names.attempt = "webhook-attempt";
    ep->timeout_ms = o->timeout_ms;
    ep->connect_timeout_ms = o->connect_timeout_ms && o->connect_timeout_ms < o->timeout_ms
                                 ? o->connect_timeout_ms
                                 : o->timeout_ms;
    ep->max_attempts = o->max_attempts;
    ep->retry_initial_ms = o->retry_initial_ms;
    ep->retry_max_ms = o->retry_max_ms;
    ep->retry_multiplier = o->retry_multiplier;
    ep->max_in_flight = o->max_in_flight;
    return ep;
fail:
    wh__ep_free(ep);
    return NULL;
}

int wh_endpoint_add(wh_engine *e, const wh_endpoint_options *in)
{
    if (!e) return WH_E_INVAL;
    if (!in) return wh__fail(e, WH_E_INVAL, "wh_endpoint_add: options are NULL");
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_endpoint_add: called from a callback");
    int rc = wh__endpoint_check(e, in, "endpoint");
    if (rc != WH_OK) return rc;
    wh_endpoint_options o;
    normalize(in, &o);
    if (e->n_slots >= (size_t)INT32_MAX - 1)
        return wh__fail(e, WH_E_FULL, "too many endpoints");
    if (e->n_slots == e->cap_slots) {
        size_t cap = e->cap_slots ? e->cap_slots * 2 : 16;
        wh_ep **p = realloc(e->eps, cap * sizeof *p);
        if (!p) return wh__fail(e, WH_E_NOMEM, "out of memory");
        e->eps = p;
        e->cap_slots = cap;
    }
    if (wh__sched_reserve(e, e->n_slots + 1) != WH_OK)
        return wh__fail(e, WH_E_NOMEM, "out of memory");
    int handle = (int)e->n_slots + 1;
    wh_ep *ep = ep_build(e, &o, handle);
    if (!ep) return wh__fail(e, WH_E_NOMEM, "out of memory");
    if (wh__router_add(&e->router, ep) != WH_OK) {
        wh__ep_free(ep);
        return wh__fail(e, WH_E_NOMEM, "out of memory");
    }
    e->eps[e->n_slots++] = ep;
    wh__log(e, WH_LOG_DEBUG, "endpoint %d \"%s\" added", handle, ep->id);
    return handle;
}

static wh_ep *ep_get(wh_engine *e, int handle)
{
    if (handle <= 0 || (size_t)handle > e->n_slots) return NULL;
    return e->eps[handle - 1];
}

int wh_endpoint_remove(wh_engine *e, int handle)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_endpoint_remove: called from a callback");
    wh_ep *ep = ep_get(e, handle);
    if (!ep) return wh__fail(e, WH_E_NOT_FOUND, "no endpoint with handle %d", handle);
    wh__router_remove(&e->router, ep);
    wh__cancel_endpoint(e, ep);
    e->eps[handle - 1] = NULL;
    wh__ep_free(ep);
    return WH_OK;
}

int wh_endpoint_find(wh_engine *e, const char *id)
{
    if (!e || !id) return WH_E_INVAL;
    return find_by_id(e, id);
}
