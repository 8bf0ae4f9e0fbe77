/* Retry policy, request limits and endpoint health.
 *
 * Everything that decides *whether* and *when* an endpoint sends lives here:
 * the retry decision after a failed attempt (classification, maximum
 * attempts overall and per failure class, backoff formula or explicit
 * schedule, jitter, Retry-After, time budget), the token-bucket rate limit,
 * and the health state machine (HTTP 410, circuit breaker, auto-disable).
 * engine.c asks; nothing here starts a request. */
#include "engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE_PERIOD_MAX 86400000u

/* ---- presets ----------------------------------------------------------------- */

/* Svix's published schedule after the immediate first attempt: 5 s, 5 min,
 * 30 min, 2 h, 5 h, 10 h, 10 h. */
static const uint32_t svix_schedule[] = {5000u,     300000u,    1800000u, 7200000u,
                                         18000000u, 36000000u, 36000000u};

/* The library's defaults for every policy field a preset sets. */
static void policy_defaults(wh_endpoint_options *o)
{
    o->timeout_ms = 10000;
    o->connect_timeout_ms = 5000;
    o->max_attempts = 8;
    o->retry_initial_ms = 2000;
    o->retry_max_ms = 300000;
    o->retry_multiplier = 2;
    o->retry_jitter = WH_JITTER_NONE;
    o->retry_jitter_percent = 20;
    o->retry_schedule_ms = NULL;
    o->n_retry_schedule = 0;
    o->max_attempts_status = 0;
    o->max_attempts_network = 0;
    o->max_attempts_timeout = 0;
    o->retry_budget_ms = 0;
    o->retry_3xx = 0;
    o->retry_4xx = 0;
    o->retry_statuses = NULL;
    o->n_retry_statuses = 0;
    o->honor_retry_after = 1;
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

/* ---- options ----------------------------------------------------------------- */

int wh__policy_check(wh_engine *e, const wh_endpoint_options *o, const char *where)
{
    if (o->retry_jitter < WH_JITTER_NONE || o->retry_jitter > WH_JITTER_PERCENT)
        return wh__fail(e, WH_E_INVAL, "%s.retry_jitter: unknown jitter %d", where,
                        (int)o->retry_jitter);
    if (o->retry_jitter_percent > 100)
        return wh__fail(e, WH_E_INVAL, "%s.retry_jitter_percent: at most 100", where);
    if (o->n_retry_schedule && !o->retry_schedule_ms)
        return wh__fail(e, WH_E_INVAL, "%s.retry_schedule_ms: NULL with count %zu",
                        where, o->n_retry_schedule);
    if (o->n_retry_schedule > 100000)
        return wh__fail(e, WH_E_INVAL, "%s.retry_schedule_ms: more than 100000 entries",
                        where);
    if (o->n_retry_statuses && !o->retry_statuses)
        return wh__fail(e, WH_E_INVAL, "%s.retry_statuses: NULL with count %zu", where,
                        o->n_retry_statuses);
    if (o->n_retry_statuses > 1000)
        return wh__fail(e, WH_E_INVAL, "%s.retry_statuses: more than 1000 entries", where);
    for (size_t i = 0; i < o->n_retry_statuses; i++)
        if (o->retry_statuses[i] < 300 || o->retry_statuses[i] > 599)
            return wh__fail(e, WH_E_INVAL, "%s.retry_statuses[%zu]: %d is not a 3xx, "
                            "4xx or 5xx status", where, i, o->retry_statuses[i]);
    if (o->rate_limit && (o->rate_period_ms == 0 || o->rate_period_ms > RATE_PERIOD_MAX))
        return wh__fail(e, WH_E_INVAL, "%s.rate_period_ms: must be 1 to %u", where,
                        RATE_PERIOD_MAX);
    if (o->breaker_failures && o->breaker_cooldown_ms == 0)
        return wh__fail(e, WH_E_INVAL, "%s.breaker_cooldown_ms: must be positive", where);
    return WH_OK;
}

int wh__policy_build(wh_ep *ep, const wh_endpoint_options *o)
{
    ep->jitter = o->retry_jitter;
    ep->jitter_pct = o->retry_jitter_percent;
    if (o->n_retry_schedule) {
        ep->schedule = malloc(o->n_retry_schedule * sizeof *ep->schedule);
        if (!ep->schedule) return WH_E_NOMEM;
        memcpy(ep->schedule, o->retry_schedule_ms, o->n_retry_schedule * sizeof *ep->schedule);
        ep->n_schedule = o->n_retry_schedule;
    }
    if (o->n_retry_statuses) {
        ep->retry_statuses = malloc(o->n_retry_statuses * sizeof *ep->retry_statuses);
        if (!ep->retry_statuses) return WH_E_NOMEM;
        memcpy(ep->retry_statuses, o->retry_statuses,
               o->n_retry_statuses * sizeof *ep->retry_statuses);
        ep->n_retry_statuses = o->n_retry_statuses;
    }
    ep->max_status = o->max_attempts_status;
    ep->max_network = o->max_attempts_network;
    ep->max_timeout = o->max_attempts_timeout;
    ep->budget_ms = o->retry_budget_ms;
    ep->retry_3xx = o->retry_3xx != 0;
    ep->retry_4xx = o->retry_4xx != 0;
    ep->honor_retry_after = o->honor_retry_after != 0;
    ep->rate = o->rate_limit;
    ep->rate_period = o->rate_period_ms ? o->rate_period_ms : 1000;
    ep->rate_burst = o->rate_burst ? o->rate_burst : o->rate_limit;
    ep->tokens_at = -1;
    ep->ordered = o->ordered != 0;
    if (ep->ordered) ep->max_in_flight = 1;
    ep->disable_on_410 = o->disable_on_410 != 0;
    ep->breaker_failures = o->breaker_failures;
    ep->breaker_cooldown_ms = o->breaker_cooldown_ms;
    ep->disable_after_ms = o->disable_after_ms;
    ep->state = WH_EP_ACTIVE;
    ep->paused_until = 0;
    ep->fail_since = -1;
    return WH_OK;
}

void wh__policy_free(wh_ep *ep)
{
    free(ep->schedule);
    free(ep->retry_statuses);
}

/* ---- retry decision ---------------------------------------------------------- */

static int status_retryable(const wh_ep *ep, int s)
{
    if (s >= 500 || s == 408 || s == 429) return 1;
    if (s >= 300 && s < 400 && ep->retry_3xx) return 1;
    if (s >= 400 && s < 500 && ep->retry_4xx) return 1;
    for (size_t i = 0; i < ep->n_retry_statuses; i++)
        if (ep->retry_statuses[i] == s) return 1;
    return 0;
}

/* initial * multiplier^(attempt-1), capped, without overflow */
static int64_t backoff(const wh_ep *ep, uint32_t attempt)
{
    int64_t d = ep->retry_initial_ms;
    for (uint32_t i = 1; i < attempt && d < ep->retry_max_ms; i++) {
        if (d > ep->retry_max_ms / ep->retry_multiplier) return ep->retry_max_ms;
        d *= ep->retry_multiplier;
    }
    return d > ep->retry_max_ms ? ep->retry_max_ms : d;
}

/* uniform in [0, n] */
static int64_t uniform(wh_engine *e, int64_t n)
{
    if (n <= 0) return 0;
    return (int64_t)(wh__rng_next(&e->rng) % ((uint64_t)n + 1));
}

static int64_t jitter(wh_engine *e, const wh_ep *ep, int64_t d)
{
    switch (ep->jitter) {
    case WH_JITTER_FULL: return uniform(e, d);
    case WH_JITTER_EQUAL: return d / 2 + uniform(e, d - d / 2);
    case WH_JITTER_PERCENT: {
        int64_t span = d * (int64_t)ep->jitter_pct / 100;
        return d - span + uniform(e, 2 * span);
    }
    default: return d;
    }
}

int64_t wh__policy_next_delay(wh_engine *e, const wh_ep *ep, const wh_response *res,
                              uint32_t attempt, int64_t first, int64_t now,
                              const char **why)
{
    uint32_t limit = ep->max_attempts, class_limit;
    int status = 0;
    if (res->error == WH_E_TIMEOUT) {
        class_limit = ep->max_timeout;
    } else if (res->error != WH_OK || res->status == 0) {
        class_limit = ep->max_network;
    } else {
        status = res->status;
        if (!status_retryable(ep, status)) {
            *why = "status not retried";
            return -1;
        }
        class_limit = ep->max_status;
    }
    if (ep->schedule && ep->n_schedule < limit) limit = (uint32_t)ep->n_schedule + 1;
    if (class_limit && class_limit < limit) limit = class_limit;
    if (attempt >= limit) {
        *why = "maximum attempts reached";
        return -1;
    }
    int64_t d, ra;
    if (ep->honor_retry_after && (status == 429 || status == 503) && res->retry_after &&
        wh__retry_after_parse(res->retry_after, e->clock.wall_ms(e->clock.user), &ra)) {
        d = ra > ep->retry_max_ms ? ep->retry_max_ms : ra;
    } else if (ep->schedule) {
        d = jitter(e, ep, ep->schedule[attempt - 1]);
    } else {
        d = jitter(e, ep, backoff(ep, attempt));
        if (d > ep->retry_max_ms) d = ep->retry_max_ms;
    }
    if (ep->budget_ms && first >= 0 && now + d >= first + ep->budget_ms) {
        *why = "retry budget exhausted";
        return -1;
    }
    return d;
}

uint32_t wh__policy_attempt_timeout(const wh_ep *ep, int64_t first, int64_t now)
{
    uint32_t t = ep->timeout_ms;
    if (ep->budget_ms && first >= 0) {
        int64_t left = first + ep->budget_ms - now;
        if (left < 1) left = 1;
        if (left < t) t = (uint32_t)left;
    }
    return t;
}

/* ---- rate limit -------------------------------------------------------------- */
/* The bucket holds `tokens` in units of 1/rate_period of a request: it gains
 * `rate` units per millisecond up to burst * period, and a request costs
 * `period` units.  Integer arithmetic, exact on the manual clock. */

static int64_t bucket_cap(const wh_ep *ep)
{
    return (int64_t)ep->rate_burst * ep->rate_period;
}

static int64_t tokens_at(const wh_ep *ep, int64_t now)
{
    int64_t cap = bucket_cap(ep);
    if (ep->tokens_at < 0) return cap;
    int64_t need = cap - ep->tokens;
    int64_t elapsed = now - ep->tokens_at;
    if (need <= 0 || elapsed <= 0) return ep->tokens < cap ? ep->tokens : cap;
    if (elapsed > need / ep->rate) return cap;
    int64_t t = ep->tokens + elapsed * (int64_t)ep->rate;
    return t < cap ? t : cap;
}

void wh__policy_took(wh_ep *ep, int64_t now)
{
    if (!ep->rate) return;
    ep->tokens = tokens_at(ep, now) - ep->rate_period;
    ep->tokens_at = now;
}

uint32_t wh__policy_allowance(wh_engine *e, wh_ep *ep, int64_t now)
{
    if (ep->state == WH_EP_DISABLED) return 0;
    if (ep->state == WH_EP_PAUSED) {
        if (now < ep->paused_until) return 0;
        ep->state = WH_EP_PROBING; /* one probe at a time from now on */
        wh__log(e, WH_LOG_INFO, "endpoint %s: cool-down over, probing", ep->id);
    }
    uint32_t lim = ep->state == WH_EP_PROBING ? 1 : ep->max_in_flight;
    if (ep->in_flight >= lim) return 0;
    uint32_t room = lim - ep->in_flight;
    if (ep->rate) {
        int64_t n = tokens_at(ep, now) / ep->rate_period;
        if (n < room) room = (uint32_t)(n < 0 ? 0 : n);
    }
    return room;
}

int64_t wh__policy_gate(const wh_ep *ep, int64_t when)
{
    if (when == INT64_MAX) return when;
    if (ep->state == WH_EP_DISABLED) return INT64_MAX;
    if (ep->state == WH_EP_PAUSED && when < ep->paused_until) when = ep->paused_until;
    if (ep->rate) {
        /* the bucket is known from its last change on, not before */
        if (when < ep->tokens_at) when = ep->tokens_at;
        int64_t have = tokens_at(ep, when);
        if (have < ep->rate_period)
            when += (ep->rate_period - have + ep->rate - 1) / ep->rate;
    }
    return when;
}

/* ---- health ------------------------------------------------------------------ */

static const char *state_name(wh_ep_state s)
{
    switch (s) {
    case WH_EP_ACTIVE: return "active";
    case WH_EP_PAUSED: return "paused";
    case WH_EP_PROBING: return "probing";
    default: return "disabled";
    }
}

void wh__health_set(wh_engine *e, wh_ep *ep, wh_ep_state st, int http_status, int error,
                    const char *reason, int64_t now)
{
    wh_ep_state prev = ep->state;
    ep->state = st;
    if (st == WH_EP_PAUSED) ep->paused_until = now + ep->breaker_cooldown_ms;
    wh_health h;
    memset(&h, 0, sizeof h);
    h.endpoint = ep->handle;
    h.endpoint_id = ep->id;
    h.url = wh__url_redacted(ep->url);
    h.state = st;
    h.previous = prev;
    h.http_status = http_status;
    h.error = error;
    h.reason = reason;
    h.consecutive_failures = ep->consec_fail;
    h.resume_at_ms = st == WH_EP_PAUSED ? ep->paused_until : -1;
    if (st == WH_EP_ACTIVE) {
        ep->consec_fail = 0;
        ep->fail_since = -1;
    }
    wh__log(e, st == WH_EP_ACTIVE ? WH_LOG_INFO : WH_LOG_WARN,
            "endpoint %s: %s -> %s: %s", ep->id, state_name(prev), state_name(st), reason);
    if (!e->on_health) return;
    e->in_callback++;
    e->on_health(e->health_user, &h);
    e->in_callback--;
}

int wh__health_after(wh_engine *e, wh_ep *ep, const wh_response *res, int ok, int64_t now)
{
    if (ok) {
        if (ep->state == WH_EP_PAUSED || ep->state == WH_EP_PROBING)
            wh__health_set(e, ep, WH_EP_ACTIVE, res->status, WH_OK,
                           "a request succeeded: circuit breaker closed", now);
        ep->consec_fail = 0;
        ep->fail_since = -1;
        return 0;
    }
    int status = res->error == WH_OK ? res->status : 0;
    int err = res->error != WH_OK ? res->error : WH_E_HTTP_STATUS;
    if (status == 410 && ep->disable_on_410) {
        if (ep->state != WH_EP_DISABLED)
            wh__health_set(e, ep, WH_EP_DISABLED, 410, err, "HTTP 410 Gone", now);
        return 1;
    }
    if (ep->consec_fail < UINT32_MAX) ep->consec_fail++;
    if (ep->fail_since < 0) ep->fail_since = now;
    if (ep->state == WH_EP_DISABLED) return 0;
    char why[128];
    if (ep->disable_after_ms && now - ep->fail_since >= ep->disable_after_ms) {
        snprintf(why, sizeof why, "failing without a success for %" PRId64 " ms",
                 now - ep->fail_since);
        wh__health_set(e, ep, WH_EP_DISABLED, status, err, why, now);
        return 0;
    }
    if (!ep->breaker_failures) return 0;
    if (ep->state == WH_EP_PROBING) {
        wh__health_set(e, ep, WH_EP_PAUSED, status, err,
                       "probe failed: circuit breaker open again", now);
    } else if (ep->state == WH_EP_ACTIVE && ep->consec_fail >= ep->breaker_failures) {
        snprintf(why, sizeof why, "%" PRIu32 " consecutive failures: circuit breaker open",
                 ep->consec_fail);
        wh__health_set(e, ep, WH_EP_PAUSED, status, err, why, now);
    }
    return 0;
}

/* ---- host calls ---------------------------------------------------------------- */

int wh_endpoint_enable(wh_engine *e, int endpoint, int enable)
{
    if (!e) return WH_E_INVAL;
    if (e->in_callback)
        return wh__fail(e, WH_E_RECURSIVE, "wh_endpoint_enable: called from a callback");
    if (endpoint <= 0 || (size_t)endpoint > e->n_slots || !e->eps[endpoint - 1])
        return wh__fail(e, WH_E_NOT_FOUND, "no endpoint with handle %d", endpoint);
    wh_ep *ep = e->eps[endpoint - 1];
    int64_t now = e->clock.now_ms(e->clock.user);
    if (enable) {
        if (ep->state != WH_EP_ACTIVE)
            wh__health_set(e, ep, WH_EP_ACTIVE, 0, WH_OK, "enabled by the host", now);
        ep->consec_fail = 0;
        ep->fail_since = -1;
        wh__ep_reschedule(e, ep);
    } else if (ep->state != WH_EP_DISABLED) {
        wh__health_set(e, ep, WH_EP_DISABLED, 0, WH_OK, "disabled by the host", now);
        wh__ep_unschedule(e, ep);
    }
    if (e->free_pending && !e->in_callback) {
        e->free_pending = 0;
        wh_engine_free(e);
    }
    return WH_OK;
}

int wh_endpoint_state(wh_engine *e, int endpoint)
{
    if (!e) return WH_E_INVAL;
    if (endpoint <= 0 || (size_t)endpoint > e->n_slots || !e->eps[endpoint - 1])
        return WH_E_NOT_FOUND;
    return (int)e->eps[endpoint - 1]->state;
}
