/* Operational events and receiver-driven control (internal).
 *
 * Operational events are the engine's own happenings as JSON events a host
 * can route to an "operational_endpoint" like any webhook (Svix's
 * operational webhooks):
 *   endpoint.disabled          an endpoint went to DISABLED
 *   endpoint.recovered         an endpoint went back to ACTIVE
 *   message.attempt.exhausted  a delivery was dead-lettered (not cancelled)
 *   message.attempt.failing    the 4th attempt of a delivery failed
 * Their data objects are documented in README ("Operational events").
 *
 * Receiver-driven control: a response header webhook-delivery carrying the
 * token "disable" (stop sending to this endpoint) or "abort-message" (stop
 * retrying this message), comma-separated, case-insensitive. */
#ifndef WH_OPEVENTS_H
#define WH_OPEVENTS_H

#include "internal.h"

#define WH__OPEVENT_FAILING_ATTEMPT 4

/* The event for an outcome, or NULL when the outcome is none of the above
 * (or out of memory; *type is then NULL too).  Returns malloc'd JSON, its
 * type in *type (static). */
char *wh__opevent_outcome(const wh_outcome *o, int64_t wall_ms, const char **type);
/* The event for a health change, or NULL. */
char *wh__opevent_health(const wh_health *h, int64_t wall_ms, const char **type);

enum { WH__CTL_DISABLE = 1, WH__CTL_ABORT = 2 };
/* WH__CTL_* bits named by a webhook-delivery header value (NULL: 0). */
unsigned wh__delivery_control(const char *value);

#endif /* WH_OPEVENTS_H */
