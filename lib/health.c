/* Endpoint health: applies the policy's health transitions (policy.c
 * decides them) to an endpoint, logs them and queues their report for the
 * host's on_health callback (outcome.c delivers it at the end of the call).
 * Calls policy.c's types only, outcome.c and log.c. */
#include "engine.h"

#include <string.h>

static const char *state_name(wh_ep_state s)
{
    switch (s) {
    case WH_EP_ACTIVE: return "active";
    case WH_EP_PAUSED: return "paused";
    case WH_EP_PROBING: return "probing";
    default: return "disabled";
    }
}

static void report(wh_engine *e, const wh_ep *ep, wh_ep_state prev, int http_status,
                   int error, const char *reason, uint32_t failures)
{
    wh_ep_state st = ep->health.state;
    wh__log(e, st == WH_EP_ACTIVE ? WH_LOG_INFO : WH_LOG_WARN,
            "endpoint %s: %s -> %s: %s", ep->conf.id, state_name(prev), state_name(st),
            reason);
    if (!e->on_health) return;
    wh_health h;
    memset(&h, 0, sizeof h);
    h.endpoint = ep->handle;
    h.endpoint_id = ep->conf.id;
    h.url = wh__url_redacted(ep->conf.url);
    h.state = st;
    h.previous = prev;
    h.http_status = http_status;
    h.error = error;
    h.reason = reason;
    h.consecutive_failures = failures;
    h.resume_at_ms = st == WH_EP_PAUSED ? ep->health.paused_until : -1;
    wh__health_report(e, ep, &h);
}

void wh__health_apply(wh_engine *e, wh_ep *ep, const wh__decision *d, int64_t now)
{
    (void)now;
    wh_ep_state prev = ep->health.state;
    ep->health = d->health;
    if (d->health_changed)
        report(e, ep, prev, d->health_status, d->health_error, d->reason,
               d->health_failures);
}

void wh__health_set(wh_engine *e, wh_ep *ep, wh_ep_state st, int http_status, int error,
                    const char *reason, int64_t now)
{
    wh_ep_state prev = ep->health.state;
    uint32_t failures = ep->health.consec_fail;
    ep->health.state = st;
    if (st == WH_EP_PAUSED) ep->health.paused_until = now + ep->pol.breaker_cooldown_ms;
    if (st == WH_EP_ACTIVE) {
        ep->health.consec_fail = 0;
        ep->health.fail_since = -1;
    }
    report(e, ep, prev, http_status, error, reason, failures);
}

void wh__health_init(wh_ep_health *h)
{
    h->state = WH_EP_ACTIVE;
    h->paused_until = 0;
    h->consec_fail = 0;
    h->fail_since = -1;
}

void wh__health_host(wh_engine *e, wh_ep *ep, int enable, int64_t now)
{
    if (enable) {
        if (ep->health.state != WH_EP_ACTIVE)
            wh__health_set(e, ep, WH_EP_ACTIVE, 0, WH_OK, "enabled by the host", now);
        ep->health.consec_fail = 0;
        ep->health.fail_since = -1;
    } else if (ep->health.state != WH_EP_DISABLED) {
        wh__health_set(e, ep, WH_EP_DISABLED, 0, WH_OK, "disabled by the host", now);
    }
}

void wh__health_tick(wh_engine *e, wh_ep *ep, int64_t now)
{
    if (ep->health.state != WH_EP_PAUSED || now < ep->health.paused_until) return;
    ep->health.state = WH_EP_PROBING; /* one probe at a time from now on */
    wh__log(e, WH_LOG_INFO, "endpoint %s: cool-down over, probing", ep->conf.id);
}
