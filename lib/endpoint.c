/* An endpoint's configuration (wh_ep_conf): the options' defaults table,
 * header-name presets, validation, build and free.  The public endpoint
 * calls (add, remove, find, enable) are in engine.c.
 * Calls policy.c (the policy part of the options), sign.c, validate.c and
 * log.c. */
#include "engine.h"
#include "filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The defaults: what wh_endpoint_options_init sets, and what a zero field
 * of an option that needs a value means.  The retry presets start from the
 * same table (policy.c). */
const wh_endpoint_options wh__endpoint_defaults = {
    .struct_size = sizeof(wh_endpoint_options),
    .timeout_ms = 10000,
    .connect_timeout_ms = 5000,
    .max_attempts = 8,
    .retry_initial_ms = 2000,
    .retry_max_ms = 300000,
    .retry_multiplier = 2,
    .max_in_flight = 30,
    .mode = WH_MODE_SINGLE,
    .batch_max_events = 1000,
    .batch_max_bytes = 1u << 20,
    .batch_linger_ms = 50,
    .body = WH_BODY_RAW,
    .signing = WH_SIGN_DEFAULT,
    .retry_jitter = WH_JITTER_NONE,
    .retry_jitter_percent = 20,
    .honor_retry_after = 1,
    .rate_period_ms = 1000,
    .disable_on_410 = 1,
    .breaker_cooldown_ms = 30000,
};

void wh_endpoint_options_init_sized(wh_endpoint_options *o, size_t size)
{
    wh__opts_init(o, size, &wh__endpoint_defaults, sizeof wh__endpoint_defaults);
}

/* ---- retry presets ----------------------------------------------------------- */

/* Svix's published schedule after the immediate first attempt: 5 s, 5 min,
 * 30 min, 2 h, 5 h, 10 h, 10 h. */
static const uint32_t svix_schedule[] = {5000u,     300000u,    1800000u, 7200000u,
                                         18000000u, 36000000u, 36000000u};

/* A preset starts from the library's defaults (the endpoint defaults
 * table) for every policy field a preset sets. */
static void policy_defaults(wh_endpoint_options *o)
{
    const wh_endpoint_options *d = &wh__endpoint_defaults;
    o->timeout_ms = d->timeout_ms;
    o->connect_timeout_ms = d->connect_timeout_ms;
    o->max_attempts = d->max_attempts;
    o->retry_initial_ms = d->retry_initial_ms;
    o->retry_max_ms = d->retry_max_ms;
    o->retry_multiplier = d->retry_multiplier;
    o->retry_jitter = d->retry_jitter;
    o->retry_jitter_percent = d->retry_jitter_percent;
    o->retry_schedule_ms = d->retry_schedule_ms;
    o->n_retry_schedule = d->n_retry_schedule;
    o->max_attempts_status = d->max_attempts_status;
    o->max_attempts_network = d->max_attempts_network;
    o->max_attempts_timeout = d->max_attempts_timeout;
    o->retry_budget_ms = d->retry_budget_ms;
    o->retry_3xx = d->retry_3xx;
    o->retry_4xx = d->retry_4xx;
    o->retry_statuses = d->retry_statuses;
    o->n_retry_statuses = d->n_retry_statuses;
    o->honor_retry_after = d->honor_retry_after;
}

int wh_endpoint_options_retry_preset(wh_endpoint_options *o, const char *name)
{
    if (!o || !name || o->struct_size < sizeof(size_t)) return WH_E_INVAL;
    /* work on a full-size copy: an older caller's struct lacks the newer
     * fields */
    wh_endpoint_options f;
    wh_endpoint_options_init(&f);
    size_t n = o->struct_size < sizeof f ? o->struct_size : sizeof f;
    memcpy(&f, o, n);
    policy_defaults(&f);
    if (strcmp(name, "default") == 0) {
        /* the defaults above */
    } else if (strcmp(name, "realtime") == 0) {
        /* 000: 2 s doubling up to 5 min; 30 requests in flight */
        f.max_attempts = 10;
        f.max_in_flight = 30;
    } else if (strcmp(name, "sendbird") == 0) {
        /* 002: waits 1 s for a response, sends up to three times until a
         * response arrives (any HTTP answer ends it) */
        f.timeout_ms = 1000;
        f.connect_timeout_ms = 1000;
        f.max_attempts = 3;
        f.max_attempts_status = 1;
        f.retry_initial_ms = 1000;
        f.retry_max_ms = 1000;
        f.retry_multiplier = 1;
    } else if (strcmp(name, "dyte") == 0) {
        /* 003: 2xx within 3 s, else retried (3xx, 4xx, 5xx) up to 5 times */
        f.timeout_ms = 3000;
        f.connect_timeout_ms = 3000;
        f.max_attempts = 6;
        f.retry_3xx = 1;
        f.retry_4xx = 1;
    } else if (strcmp(name, "stream") == 0) {
        /* 004: 408/429/5xx 3 attempts, network error 2, timeout 3; 6 s per
         * request; 15 s for a delivery with all its retries */
        f.timeout_ms = 6000;
        f.max_attempts = 3;
        f.max_attempts_status = 3;
        f.max_attempts_network = 2;
        f.max_attempts_timeout = 3;
        f.retry_budget_ms = 15000;
        f.retry_initial_ms = 500;
        f.retry_max_ms = 1000;
        f.retry_multiplier = 2;
    } else if (strcmp(name, "svix") == 0) {
        /* Svix: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each
         * +-20 %; 3xx is a failure */
        f.retry_schedule_ms = svix_schedule;
        f.n_retry_schedule = sizeof svix_schedule / sizeof svix_schedule[0];
        f.max_attempts = 8;
        f.retry_jitter = WH_JITTER_PERCENT;
        f.retry_jitter_percent = 20;
        f.retry_3xx = 1;
    } else if (strcmp(name, "pusher") == 0) {
        /* Pusher Channels: 4 s to respond, exponential backoff for at most
         * 5 minutes */
        f.timeout_ms = 4000;
        f.connect_timeout_ms = 4000;
        f.max_attempts = UINT32_MAX;
        f.retry_initial_ms = 1000;
        f.retry_max_ms = 300000;
        f.retry_multiplier = 2;
        f.retry_budget_ms = 300000;
    } else {
        return WH_E_NOT_FOUND;
    }
    memcpy(o, &f, n);
    return WH_OK;
}

/* Copy the caller's options into a full-size struct with defaults for the
 * fields an older caller does not know. */
int wh__endpoint_normalize(const wh_endpoint_options *in, wh_endpoint_options *o)
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

int wh__endpoint_find(const wh_engine *e, const char *id)
{
    for (size_t i = 0; i < e->n_slots; i++)
        if (e->eps[i] && strcmp(e->eps[i]->conf.id, id) == 0) return e->eps[i]->handle;
    return WH_E_NOT_FOUND;
}

int wh__endpoint_check(wh_engine *e, const wh_endpoint_options *in,
                       const char *where)
{
    if (!e || !in) return WH_E_INVAL;
    if (!where) where = "endpoint";
    wh_endpoint_options o;
    if (wh__endpoint_normalize(in, &o) != WH_OK)
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
        if (wh__endpoint_find(e, o.id) > 0)
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
    if (o.transport < WH_TRANSPORT_DEFAULT || o.transport > WH_TRANSPORT_AUTO)
        return wh__fail(e, WH_E_INVAL, "%s.transport: unknown transport %d", where,
                        (int)o.transport);
    if (o.transport != WH_TRANSPORT_DEFAULT && !e->transport_library)
        return wh__fail(e, WH_E_INVAL, "%s.transport: the engine was given its own "
                        "transport (wh_engine_options.transport), which is not "
                        "chosen per endpoint", where);
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
    int rc = wh__net_ep_check(e, &o, where);
    if (rc != WH_OK) return rc;
    if (o.delivery != WH_DELIVERY_AT_LEAST_ONCE && o.delivery != WH_DELIVERY_AT_MOST_ONCE)
        return wh__fail(e, WH_E_INVAL, "%s.delivery: unknown delivery mode %d", where,
                        o.delivery);
    if (o.payload_filter_json) {
        wh__filter *f = NULL;
        char fwhy[200];
        rc = wh__filter_compile_json(o.payload_filter_json, strlen(o.payload_filter_json),
                                     &f, fwhy, sizeof fwhy);
        wh__filter_free(f);
        if (rc == WH_E_NOMEM) return wh__fail(e, rc, "%s: out of memory", where);
        if (rc != WH_OK)
            return wh__fail(e, rc == WH_E_JSON ? WH_E_JSON : WH_E_INVAL,
                            "%s.payload_filter_json: %s", where, fwhy);
    }
    return wh__policy_check(e, &o, where);
}

void wh__ep_free(wh_ep *ep)
{
    if (!ep) return;
    free(ep->conf.id);
    free(ep->conf.url);
    for (size_t i = 0; i < ep->conf.n_types; i++) free(ep->conf.types[i]);
    free(ep->conf.types);
    free(ep->conf.ch_prefix);
    free(ep->conf.ch_suffix);
    wh__signer_free(ep->conf.signer);
    wh__filter_free(ep->conf.payload_filter);
    free(ep->metrics);
    wh__policy_free(&ep->pol);
    free(ep->conf.h_id);
    free(ep->conf.h_ts);
    free(ep->conf.h_attempt);
    free(ep->conf.h_sig);
    free(ep->conf.h_apikey);
    if (ep->conf.api_key) {
        memset(ep->conf.api_key, 0, strlen(ep->conf.api_key));
        free(ep->conf.api_key);
    }
    for (size_t i = 0; i < ep->conf.n_headers; i++) free(ep->conf.headers[i]);
    free(ep->conf.headers);
    wh__net_ep_free(ep->conf.net);
    free(ep);
}

wh_ep *wh__ep_new(const wh_engine *e, const wh_endpoint_options *o, int handle)
{
    wh_ep *ep = wh__calloc(1, sizeof *ep);
    if (!ep) return NULL;
    ep->handle = handle;
    ep->slot = (uint32_t)(handle - 1);
    wh__health_init(&ep->health);
    wh__work_init(&ep->work);
    wh__sched_init(&ep->sched);
    if (!(ep->metrics = wh__calloc(1, sizeof *ep->metrics))) goto fail;
    if (o->id) ep->conf.id = wh__strdup(o->id);
    else {
        /* "ep-<handle>", made unique against ids the host chose */
        char buf[48];
        snprintf(buf, sizeof buf, "ep-%d", handle);
        for (int k = 2; wh__endpoint_find(e, buf) > 0; k++)
            snprintf(buf, sizeof buf, "ep-%d-%d", handle, k);
        ep->conf.id = wh__strdup(buf);
    }
    ep->conf.url = wh__url_dup_redacted(o->url);
    if (!ep->conf.id || !ep->conf.url) goto fail;
    ep->conf.all_types = o->event_types == NULL;
    if (o->event_types && o->n_event_types) {
        ep->conf.types = wh__calloc(o->n_event_types, sizeof *ep->conf.types);
        if (!ep->conf.types) goto fail;
        for (size_t i = 0; i < o->n_event_types; i++) {
            if (strcmp(o->event_types[i], "*") == 0) ep->conf.all_types = 1;
            if (!(ep->conf.types[ep->conf.n_types++] = wh__strdup(o->event_types[i])))
                goto fail;
        }
    }
    if (o->channel_prefix) {
        if (!(ep->conf.ch_prefix = wh__strdup(o->channel_prefix))) goto fail;
        ep->conf.ch_prefix_len = strlen(ep->conf.ch_prefix);
    }
    if (o->channel_suffix) {
        if (!(ep->conf.ch_suffix = wh__strdup(o->channel_suffix))) goto fail;
        ep->conf.ch_suffix_len = strlen(ep->conf.ch_suffix);
    }
    const preset *p = find_preset(o->preset);
    int explicit_scheme;
    wh_sign_scheme scheme = effective_scheme(o, p, &explicit_scheme);
    if (scheme != WH_SIGN_NONE &&
        wh__signer_new(scheme, o->secrets, o->n_secrets, o->private_key_pem,
                       &ep->conf.signer, NULL) != WH_OK)
        goto fail;
    const char *names[5] = {pick(o->id_header, p->id), pick(o->timestamp_header, p->ts),
                            pick(o->attempt_header, p->attempt),
                            pick(o->signature_header, p->sig),
                            pick(o->api_key_header, p->apikey)};
    char **dst[5] = {&ep->conf.h_id, &ep->conf.h_ts, &ep->conf.h_attempt, &ep->conf.h_sig, &ep->conf.h_apikey};
    for (size_t i = 0; i < 5; i++)
        if (names[i] && !(*dst[i] = wh__strdup(names[i]))) goto fail;
    if (o->api_key && !(ep->conf.api_key = wh__strdup(o->api_key))) goto fail;
    ep->conf.mode = o->mode;
    ep->conf.body = o->body;
    ep->conf.batch_max_events = o->batch_max_events;
    ep->conf.batch_max_bytes = o->batch_max_bytes;
    ep->conf.batch_linger_ms = o->batch_linger_ms;
    ep->conf.transport = (int)o->transport;
    if (o->n_headers) {
        ep->conf.headers = wh__calloc(o->n_headers, sizeof *ep->conf.headers);
        if (!ep->conf.headers) goto fail;
        for (size_t i = 0; i < o->n_headers; i++) {
            if (!(ep->conf.headers[i] = wh__strdup(o->headers[i]))) goto fail;
            ep->conf.n_headers++;
            ep->conf.headers_bytes += strlen(o->headers[i]);
        }
    }
    /* zero (or more than the whole timeout): the whole timeout */
    ep->conf.connect_timeout_ms = o->connect_timeout_ms && o->connect_timeout_ms < o->timeout_ms
                                 ? o->connect_timeout_ms
                                 : o->timeout_ms;
    if (o->payload_filter_json &&
        wh__filter_compile_json(o->payload_filter_json, strlen(o->payload_filter_json),
                                &ep->conf.payload_filter, NULL, 0) != WH_OK)
        goto fail;
    ep->conf.at_most_once = o->delivery == WH_DELIVERY_AT_MOST_ONCE;
    ep->conf.ignore_control = o->ignore_delivery_control != 0;
    if (wh__policy_build(&ep->pol, o) != WH_OK) goto fail;
    if (wh__net_ep_new(e, o, &ep->conf.net) != WH_OK) goto fail;
    return ep;
fail:
    wh__ep_free(ep);
    return NULL;
}

