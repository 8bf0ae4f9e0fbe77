/* Retry policy, request limits and endpoint health.
 *
 * Everything that decides *whether* and *when* an endpoint sends lives here:
 * the retry decision after a failed attempt (classification, maximum
 * attempts overall and per failure class, backoff formula or explicit
 * schedule, jitter, Retry-After, time budget), the token-bucket rate limit,
 * and the health state machine (HTTP 410, circuit breaker, auto-disable).
 *
 * (The named retry presets, wh_endpoint_options_retry_preset, fill options:
 * they live with the other options in endpoint.c.)
 *
 * Pure: every function takes the endpoint's policy and the state it is
 * handed (health, rate bucket, the attempt's answer, a random generator)
 * and returns a decision; none reaches the engine, starts a request or
 * reports anything.  delivery.c asks, health.c applies the health part.
 * Calls nothing of the library but wh__fail (option errors) and
 * wh__rng_next. */
#include "engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE_PERIOD_MAX 86400000u

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

int wh__policy_build(wh_ep_policy *p, const wh_endpoint_options *o)
{
    p->timeout_ms = o->timeout_ms;
    p->max_attempts = o->max_attempts;
    p->retry_initial_ms = o->retry_initial_ms;
    p->retry_max_ms = o->retry_max_ms;
    p->retry_multiplier = o->retry_multiplier;
    p->max_in_flight = o->max_in_flight;
    p->jitter = o->retry_jitter;
    p->jitter_pct = o->retry_jitter_percent;
    if (o->n_retry_schedule) {
        p->schedule = malloc(o->n_retry_schedule * sizeof *p->schedule);
        if (!p->schedule) return WH_E_NOMEM;
        memcpy(p->schedule, o->retry_schedule_ms, o->n_retry_schedule * sizeof *p->schedule);
        p->n_schedule = o->n_retry_schedule;
    }
    if (o->n_retry_statuses) {
        p->retry_statuses = malloc(o->n_retry_statuses * sizeof *p->retry_statuses);
        if (!p->retry_statuses) return WH_E_NOMEM;
        memcpy(p->retry_statuses, o->retry_statuses,
               o->n_retry_statuses * sizeof *p->retry_statuses);
        p->n_retry_statuses = o->n_retry_statuses;
    }
    p->max_status = o->max_attempts_status;
    p->max_network = o->max_attempts_network;
    p->max_timeout = o->max_attempts_timeout;
    p->budget_ms = o->retry_budget_ms;
    p->retry_3xx = o->retry_3xx != 0;
    p->retry_4xx = o->retry_4xx != 0;
    p->honor_retry_after = o->honor_retry_after != 0;
    p->rate = o->rate_limit;
    p->rate_period = o->rate_period_ms; /* checked: 1 or more when rate_limit is set */
    p->rate_burst = o->rate_burst ? o->rate_burst : o->rate_limit;
    p->ordered = o->ordered != 0;
    if (p->ordered) p->max_in_flight = 1;
    p->disable_on_410 = o->disable_on_410 != 0;
    p->breaker_failures = o->breaker_failures;
    p->breaker_cooldown_ms = o->breaker_cooldown_ms;
    p->disable_after_ms = o->disable_after_ms;
    return WH_OK;
}

void wh__policy_free(wh_ep_policy *p)
{
    free(p->schedule);
    free(p->retry_statuses);
}

/* ---- retry decision ---------------------------------------------------------- */

static int status_retryable(const wh_ep_policy *p, int s)
{
    if (s >= 500 || s == 408 || s == 429) return 1;
    if (s >= 300 && s < 400 && p->retry_3xx) return 1;
    if (s >= 400 && s < 500 && p->retry_4xx) return 1;
    for (size_t i = 0; i < p->n_retry_statuses; i++)
        if (p->retry_statuses[i] == s) return 1;
    return 0;
}

/* initial * multiplier^(attempt-1), capped, without overflow */
static int64_t backoff(const wh_ep_policy *p, uint32_t attempt)
{
    int64_t d = p->retry_initial_ms;
    for (uint32_t i = 1; i < attempt && d < p->retry_max_ms; i++) {
        if (d > p->retry_max_ms / p->retry_multiplier) return p->retry_max_ms;
        d *= p->retry_multiplier;
    }
    return d > p->retry_max_ms ? p->retry_max_ms : d;
}

/* uniform in [0, n] */
static int64_t uniform(wh__rng *rng, int64_t n)
{
    if (n <= 0) return 0;
    return (int64_t)(wh__rng_next(rng) % ((uint64_t)n + 1));
}

static int64_t jitter(wh__rng *rng, const wh_ep_policy *p, int64_t d)
{
    switch (p->jitter) {
    case WH_JITTER_FULL: return uniform(rng, d);
    case WH_JITTER_EQUAL: return d / 2 + uniform(rng, d - d / 2);
    case WH_JITTER_PERCENT: {
        int64_t span = d * (int64_t)p->jitter_pct / 100;
        return d - span + uniform(rng, 2 * span);
    }
    default: return d;
    }
}

/* After a failed attempt number `attempt` (from 1) whose first attempt
 * started at `first`: the delay before the next one, or -1 when none is
 * made (*why says why). */
static int64_t next_delay(const wh_ep_policy *p, const wh_response *res, uint32_t attempt,
                          int64_t first, int64_t now, int64_t wall, wh__rng *rng,
                          const char **why)
{
    uint32_t limit = p->max_attempts, class_limit;
    int status = 0;
    if (res->error == WH_E_FORBIDDEN) {
        *why = "address refused by the SSRF guard";
        return -1;
    }
    if (res->error == WH_E_TIMEOUT) {
        class_limit = p->max_timeout;
    } else if (res->error != WH_OK || res->status == 0) {
        class_limit = p->max_network;
    } else {
        status = res->status;
        if (!status_retryable(p, status)) {
            *why = "status not retried";
            return -1;
        }
        class_limit = p->max_status;
    }
    if (p->schedule && p->n_schedule < limit) limit = (uint32_t)p->n_schedule + 1;
    if (class_limit && class_limit < limit) limit = class_limit;
    if (attempt >= limit) {
        *why = "maximum attempts reached";
        return -1;
    }
    int64_t d, ra;
    if (p->honor_retry_after && (status == 429 || status == 503) && res->retry_after &&
        wh__retry_after_parse(res->retry_after, wall, &ra)) {
        d = ra > p->retry_max_ms ? p->retry_max_ms : ra;
    } else if (p->schedule) {
        d = jitter(rng, p, p->schedule[attempt - 1]);
    } else {
        d = jitter(rng, p, backoff(p, attempt));
        if (d > p->retry_max_ms) d = p->retry_max_ms;
    }
    if (p->budget_ms && first >= 0 && now + d >= first + p->budget_ms) {
        *why = "retry budget exhausted";
        return -1;
    }
    return d;
}

uint32_t wh__policy_attempt_timeout(const wh_ep_policy *p, int64_t first, int64_t now)
{
    uint32_t t = p->timeout_ms;
    if (p->budget_ms && first >= 0) {
        int64_t left = first + p->budget_ms - now;
        if (left < 1) left = 1;
        if (left < t) t = (uint32_t)left;
    }
    return t;
}

/* ---- rate limit -------------------------------------------------------------- */
/* The bucket holds `tokens` in units of 1/rate_period of a request: it gains
 * `rate` units per millisecond up to burst * period, and a request costs
 * `period` units.  Integer arithmetic, exact on the manual clock. */

static int64_t bucket_cap(const wh_ep_policy *p)
{
    return (int64_t)p->rate_burst * p->rate_period;
}

static int64_t tokens_at(const wh_ep_policy *p, const wh_ep_rate *r, int64_t now)
{
    int64_t cap = bucket_cap(p);
    if (r->tokens_at < 0) return cap;
    int64_t need = cap - r->tokens;
    int64_t elapsed = now - r->tokens_at;
    if (need <= 0 || elapsed <= 0) return r->tokens < cap ? r->tokens : cap;
    if (elapsed > need / p->rate) return cap;
    int64_t t = r->tokens + elapsed * (int64_t)p->rate;
    return t < cap ? t : cap;
}

void wh__policy_took(const wh_ep_policy *p, wh_ep_rate *r, int64_t now)
{
    if (!p->rate) return;
    r->tokens = tokens_at(p, r, now) - p->rate_period;
    r->tokens_at = now;
}

uint32_t wh__policy_in_flight_limit(const wh_ep_policy *p, const wh_ep_health *h)
{
    return h->state == WH_EP_PROBING ? 1 : p->max_in_flight;
}

uint32_t wh__policy_allowance(const wh_ep_policy *p, const wh_ep_health *h,
                              const wh_ep_rate *r, uint32_t in_flight, int64_t now)
{
    if (h->state == WH_EP_DISABLED) return 0;
    /* a paused endpoint whose cool-down is over probes: one at a time */
    if (h->state == WH_EP_PAUSED && now < h->paused_until) return 0;
    uint32_t lim = h->state == WH_EP_ACTIVE ? p->max_in_flight : 1;
    if (in_flight >= lim) return 0;
    uint32_t room = lim - in_flight;
    if (p->rate) {
        int64_t n = tokens_at(p, r, now) / p->rate_period;
        if (n < room) room = (uint32_t)(n < 0 ? 0 : n);
    }
    return room;
}

int64_t wh__policy_gate(const wh_ep_policy *p, const wh_ep_health *h,
                        const wh_ep_rate *r, int64_t when)
{
    if (when == INT64_MAX) return when;
    if (h->state == WH_EP_DISABLED) return INT64_MAX;
    if (h->state == WH_EP_PAUSED && when < h->paused_until) when = h->paused_until;
    if (p->rate) {
        /* the bucket is known from its last change on, not before */
        if (when < r->tokens_at) when = r->tokens_at;
        int64_t have = tokens_at(p, r, when);
        if (have < p->rate_period)
            when += (p->rate_period - have + p->rate - 1) / p->rate;
    }
    return when;
}

/* ---- health transitions ------------------------------------------------------ */

static void change(wh__decision *d, const wh_ep_policy *p, wh_ep_state st,
                   const char *reason, int64_t now)
{
    wh_ep_health *h = &d->health;
    h->state = st;
    if (st == WH_EP_PAUSED) h->paused_until = now + p->breaker_cooldown_ms;
    d->health_changed = 1;
    d->health_failures = h->consec_fail;
    snprintf(d->reason, sizeof d->reason, "%s", reason);
}

/* d->health holds the state before the answer; leaves the state after. */
static void health_next(const wh_ep_policy *p, const wh_response *res, int ok,
                        int64_t now, wh__decision *d)
{
    wh_ep_health *h = &d->health;
    d->health_changed = 0;
    d->health_status = res->status;
    d->health_error = WH_OK;
    if (ok) {
        if (h->state == WH_EP_PAUSED || h->state == WH_EP_PROBING)
            change(d, p, WH_EP_ACTIVE, "a request succeeded: circuit breaker closed", now);
        h->consec_fail = 0;
        h->fail_since = -1;
        return;
    }
    int status = res->error == WH_OK ? res->status : 0;
    d->health_status = status;
    d->health_error = res->error != WH_OK ? res->error : WH_E_HTTP_STATUS;
    if (status == 410 && p->disable_on_410) {
        if (h->state != WH_EP_DISABLED) change(d, p, WH_EP_DISABLED, "HTTP 410 Gone", now);
        return;
    }
    if (h->consec_fail < UINT32_MAX) h->consec_fail++;
    if (h->fail_since < 0) h->fail_since = now;
    if (h->state == WH_EP_DISABLED) return;
    char why[128];
    if (p->disable_after_ms && now - h->fail_since >= p->disable_after_ms) {
        snprintf(why, sizeof why, "failing without a success for %" PRId64 " ms",
                 now - h->fail_since);
        change(d, p, WH_EP_DISABLED, why, now);
        return;
    }
    if (!p->breaker_failures) return;
    if (h->state == WH_EP_PROBING) {
        change(d, p, WH_EP_PAUSED, "probe failed: circuit breaker open again", now);
    } else if (h->state == WH_EP_ACTIVE && h->consec_fail >= p->breaker_failures) {
        snprintf(why, sizeof why, "%" PRIu32 " consecutive failures: circuit breaker open",
                 h->consec_fail);
        change(d, p, WH_EP_PAUSED, why, now);
    }
}

/* ---- the decision ------------------------------------------------------------ */

void wh__policy_decide(const wh_ep_policy *p, const wh_ep_health *h,
                       const wh__attempt *a, wh__rng *rng, wh__decision *d)
{
    const wh_response *res = a->res;
    int ok = res->error == WH_OK && res->status >= 200 && res->status < 300;
    d->delay = 0;
    d->why = "";
    d->msg[0] = '\0';
    d->error = WH_OK;
    if (ok) {
        d->kind = WH_DELIVERED;
    } else {
        int err = res->error != WH_OK ? res->error : WH_E_HTTP_STATUS;
        d->error = err;
        if (res->error != WH_OK)
            snprintf(d->msg, sizeof d->msg, "%s%s%s", wh_strerror(err),
                     res->error_msg && *res->error_msg ? ": " : "",
                     res->error_msg ? res->error_msg : "");
        else
            snprintf(d->msg, sizeof d->msg, "HTTP %d", res->status);
        /* HTTP 410 disables the endpoint: the delivery waits for it to be
         * enabled again instead of being dead-lettered */
        int gone = res->error == WH_OK && res->status == 410 && p->disable_on_410;
        int64_t delay = gone ? -1
                             : next_delay(p, res, a->attempt, a->first, a->now, a->wall,
                                          rng, &d->why);
        if (gone || delay >= 0) {
            d->kind = WH_RETRY;
            d->delay = delay;
        } else {
            d->kind = WH_DEAD;
        }
    }
    d->health = *h;
    health_next(p, res, ok, a->now, d);
}
