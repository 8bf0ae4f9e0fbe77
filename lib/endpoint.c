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
    d.mode = WH_MODE_SINGLE;
    d.batch_max_events = 1000;
    d.batch_max_bytes = 1u << 20;
    d.batch_linger_ms = 50;
    d.body = WH_BODY_RAW;
    d.signing = WH_SIGN_DEFAULT;
    d.retry_jitter = WH_JITTER_NONE;
    d.retry_jitter_percent = 20;
    d.honor_retry_after = 1;
    d.rate_period_ms = 1000;
    d.disable_on_410 = 1;
    d.breaker_cooldown_ms = 30000;
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

/* Header names and signing scheme of each preset (NULL: not sent). */
typedef struct preset {
    const char *name, *id, *ts, *attempt, *sig, *apikey;
    wh_sign_scheme sign;
} preset;

static const preset presets[] = {
    {"standard", "webhook-id", "webhook-timestamp", "webhook-attempt",
     "webhook-signature", NULL, WH_SIGN_STANDARD},
    {"svix", "svix-id", "svix-timestamp", "svix-attempt", "svix-signature", NULL,
     WH_SIGN_STANDARD},
    {"stream", "X-WEBHOOK-ID", NULL, "X-WEBHOOK-ATTEMPT", "X-SIGNATURE", "X-API-KEY",
     WH_SIGN_HMAC_HEX},
    {"dyte", "dyte-uuid", NULL, NULL, "dyte-signature", NULL, WH_SIGN_RSA_SHA256},
    {"pusher", NULL, NULL, NULL, "X-Pusher-Signature", "X-Pusher-Key",
     WH_SIGN_HMAC_HEX},
    {"sendbird", NULL, NULL, NULL, "x-sendbird-signature", NULL, WH_SIGN_HMAC_HEX},
};

static const preset *find_preset(const char *name)
{
    if (!name) return &presets[0];
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

/* The name to send: the override when given ("" = none), else the preset's. */
static const char *pick(const char *override, const char *preset_name)
{
    if (override) return *override ? override : NULL;
    return preset_name;
}

/* The scheme actually used: NONE when the needed keys are absent. */
static wh_sign_scheme effective_scheme(const wh_endpoint_options *o, const preset *p,
                                       int *explicit_scheme)
{
    wh_sign_scheme s = o->signing == WH_SIGN_DEFAULT ? p->sign : o->signing;
    *explicit_scheme = o->signing != WH_SIGN_DEFAULT;
    if (!*explicit_scheme) {
        if (s == WH_SIGN_RSA_SHA256 && !o->private_key_pem) s = WH_SIGN_NONE;
        if ((s == WH_SIGN_STANDARD || s == WH_SIGN_HMAC_HEX) && !o->n_secrets)
            s = WH_SIGN_NONE;
    }
    return s;
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
    for (size_t i = 0; i < o.n_secrets; i++)
        if (!o.secrets[i])
            return wh__fail(e, WH_E_SECRET, "%s.secrets[%zu]: NULL", where, i);
    if (o.n_headers && !o.headers)
        return wh__fail(e, WH_E_INVAL, "%s.headers: NULL with count %zu", where,
                        o.n_headers);
    for (size_t i = 0; i < o.n_headers; i++)
        if (wh__header_valid(o.headers[i], &why) != WH_OK)
            return wh__fail(e, WH_E_HEADER, "%s.headers[%zu]: %s", where, i, why);
    const preset *p = find_preset(o.preset);
    if (!p)
        return wh__fail(e, WH_E_INVAL, "%s.preset: unknown preset \"%s\" (standard, "
                        "svix, stream, dyte, pusher, sendbird)", where, o.preset);
    const char *dnames[] = {pick(o.id_header, p->id), pick(o.timestamp_header, p->ts),
                            pick(o.attempt_header, p->attempt), pick(o.signature_header, p->sig),
                            o.api_key ? pick(o.api_key_header, p->apikey) : NULL};
    if (wh__headers_reserved_check(e, where, o.headers, o.n_headers, dnames, 5) != WH_OK)
        return WH_E_HEADER;
    const char *hnames[] = {o.id_header, o.timestamp_header, o.attempt_header,
                            o.signature_header, o.api_key_header};
    static const char *const hfields[] = {"id_header", "timestamp_header",
                                          "attempt_header", "signature_header",
                                          "api_key_header"};
    for (size_t i = 0; i < 5; i++)
        if (hnames[i] && *hnames[i] &&
            wh__header_pair_valid(hnames[i], "x", &why) != WH_OK)
            return wh__fail(e, WH_E_HEADER, "%s.%s: %s", where, hfields[i], why);
    if (o.api_key && wh__header_pair_valid("X", o.api_key, &why) != WH_OK)
        return wh__fail(e, WH_E_HEADER, "%s.api_key: %s", where, why);
    if (o.mode != WH_MODE_SINGLE && o.mode != WH_MODE_BATCH)
        return wh__fail(e, WH_E_INVAL, "%s.mode: unknown mode %d", where, (int)o.mode);
    if (o.body != WH_BODY_RAW && o.body != WH_BODY_STANDARD && o.body != WH_BODY_PUSHER)
        return wh__fail(e, WH_E_INVAL, "%s.body: unknown body %d", where, (int)o.body);
    if (o.mode == WH_MODE_BATCH && (o.batch_max_events == 0 || o.batch_max_bytes == 0))
        return wh__fail(e, WH_E_INVAL,
                        "%s.batch_max_events/batch_max_bytes: must be positive", where);
    if (o.signing < WH_SIGN_DEFAULT || o.signing > WH_SIGN_RSA_SHA256)
        return wh__fail(e, WH_E_INVAL, "%s.signing: unknown scheme %d", where,
                        (int)o.signing);
    int explicit_scheme;
    wh_sign_scheme scheme = effective_scheme(&o, p, &explicit_scheme);
    if (scheme != WH_SIGN_NONE) {
        wh__signer *sg = NULL;
        int rc = wh__signer_new(scheme, o.secrets, o.n_secrets, o.private_key_pem, &sg,
                                &why);
        wh__signer_free(sg);
        if (rc == WH_E_NOMEM) return wh__fail(e, rc, "%s: out of memory", where);
        if (rc != WH_OK)
            return wh__fail(e, rc == WH_E_INVAL ? WH_E_SECRET : rc, "%s.%s: %s", where,
                            scheme == WH_SIGN_RSA_SHA256 ? "private_key_pem" : "secrets",
                            why ? why : wh_strerror(rc));
    }
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
    return wh__policy_check(e, &o, where);
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
    wh__signer_free(ep->signer);
    wh__policy_free(ep);
    free(ep->h_id);
    free(ep->h_ts);
    free(ep->h_attempt);
    free(ep->h_sig);
    free(ep->h_apikey);
    if (ep->api_key) {
        memset(ep->api_key, 0, strlen(ep->api_key));
        free(ep->api_key);
    }
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
    ep->url = wh__url_dup_redacted(o->url);
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
    const preset *p = find_preset(o->preset);
    int explicit_scheme;
    wh_sign_scheme scheme = effective_scheme(o, p, &explicit_scheme);
    if (scheme != WH_SIGN_NONE &&
        wh__signer_new(scheme, o->secrets, o->n_secrets, o->private_key_pem,
                       &ep->signer, NULL) != WH_OK)
        goto fail;
    const char *names[5] = {pick(o->id_header, p->id), pick(o->timestamp_header, p->ts),
                            pick(o->attempt_header, p->attempt),
                            pick(o->signature_header, p->sig),
                            pick(o->api_key_header, p->apikey)};
    char **dst[5] = {&ep->h_id, &ep->h_ts, &ep->h_attempt, &ep->h_sig, &ep->h_apikey};
    for (size_t i = 0; i < 5; i++)
        if (names[i] && !(*dst[i] = wh__strdup(names[i]))) goto fail;
    if (o->api_key && !(ep->api_key = wh__strdup(o->api_key))) goto fail;
    ep->mode = o->mode;
    ep->body = o->body;
    ep->batch_max_events = o->batch_max_events;
    ep->batch_max_bytes = o->batch_max_bytes;
    ep->batch_linger_ms = o->batch_linger_ms;
    if (o->n_headers) {
        ep->headers = wh__calloc(o->n_headers, sizeof *ep->headers);
        if (!ep->headers) goto fail;
        for (size_t i = 0; i < o->n_headers; i++) {
            if (!(ep->headers[i] = wh__strdup(o->headers[i]))) goto fail;
            ep->n_headers++;
            ep->headers_bytes += strlen(o->headers[i]);
        }
    }
    ep->timeout_ms = o->timeout_ms;
    ep->connect_timeout_ms = o->connect_timeout_ms && o->connect_timeout_ms < o->timeout_ms
                                 ? o->connect_timeout_ms
                                 : o->timeout_ms;
    ep->max_attempts = o->max_attempts;
    ep->retry_initial_ms = o->retry_initial_ms;
    ep->retry_max_ms = o->retry_max_ms;
    ep->retry_multiplier = o->retry_multiplier;
    ep->max_in_flight = o->max_in_flight;
    if (wh__policy_build(ep, o) != WH_OK) goto fail;
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
    if (e->queue->bind) {
        rc = e->queue->bind(e->queue->user, ep->slot, ep->id);
        if (rc != WH_OK) {
            /* the id, never the URL (it may hold a password) */
            rc = wh__fail(e, rc, "endpoint: the queue cannot bind \"%s\"", ep->id);
            wh__router_remove(&e->router, ep);
            wh__ep_free(ep);
            return rc;
        }
    }
    e->eps[e->n_slots++] = ep;
    /* a persistent queue may already hold jobs for this endpoint */
    int64_t due = e->queue->next_due(e->queue->user, ep->slot);
    if (due != INT64_MAX) wh__ep_schedule(e, ep, due);
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
    if (!e || !id) return wh__fail(e, WH_E_INVAL, "wh_endpoint_find: id is NULL");
    return find_by_id(e, id);
}
