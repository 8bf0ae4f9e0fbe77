/* The engine's private structures, shared by engine.c, endpoint.c and
 * router.c. */
#ifndef WH_ENGINE_H
#define WH_ENGINE_H

#include "internal.h"

typedef struct wh_delivery wh_delivery;

typedef struct wh_ep {
    int handle;
    uint32_t slot;
    char *id;
    char *url;
    int all_types;          /* event_types == NULL or contains "*" */
    char **types;
    size_t n_types;
    char *ch_prefix, *ch_suffix;
    size_t ch_prefix_len, ch_suffix_len;
    char **headers;         /* custom "Name: value" */
    size_t n_headers;
    size_t headers_bytes;   /* sum of strlen(headers[i]) */
    /* header names (NULL: not sent) and the API key value */
    char *h_id, *h_ts, *h_attempt, *h_sig, *h_apikey;
    char *api_key;
    wh__signer *signer;     /* NULL: unsigned */
    wh_mode mode;
    wh_body body;
    uint32_t batch_max_events, batch_max_bytes, batch_linger_ms;
    uint32_t timeout_ms, connect_timeout_ms;
    uint32_t max_attempts;
    uint32_t retry_initial_ms, retry_max_ms, retry_multiplier;
    uint32_t max_in_flight;
    uint32_t in_flight;
    /* retry policy, limits, health (policy.c) */
    wh_jitter jitter;
    uint32_t jitter_pct;
    uint32_t *schedule;     /* owned copy, or NULL */
    size_t n_schedule;
    uint32_t max_status, max_network, max_timeout;
    uint32_t budget_ms;
    int retry_3xx, retry_4xx, honor_retry_after;
    int *retry_statuses;    /* owned copy */
    size_t n_retry_statuses;
    uint32_t rate, rate_period, rate_burst;
    int64_t tokens;         /* rate bucket, in 1/rate_period units */
    int64_t tokens_at;      /* time of the last refill, -1: full */
    int ordered;
    int disable_on_410;
    uint32_t breaker_failures, breaker_cooldown_ms, disable_after_ms;
    wh_ep_state state;
    int64_t paused_until;
    uint32_t consec_fail;
    int64_t fail_since;     /* start of the failure streak, -1: none */
    /* jobs enqueued and not yet claimed (batch readiness; approximate for a
     * queue that already held jobs when the engine started) */
    uint64_t fresh, fresh_bytes;
    wh_delivery *held;      /* batches waiting for their retry time */
    /* scheduling: position in the engine's wake heap */
    int64_t wake;           /* INT64_MAX: not scheduled */
    size_t heap_idx;        /* SIZE_MAX: not in the heap */
    struct wh__ep_net *net; /* TLS profile (backends.c), or NULL */
} wh_ep;

/* One request's worth of jobs: a single event, or a batch.  In single mode
 * it lives for one attempt (retries go back to the queue); a batch lives
 * until it is delivered or dead, keeping its id, body and jobs across
 * retries (held on its endpoint between attempts). */
struct wh_delivery {
    wh_delivery *prev, *next; /* engine's in-flight list, or ep->held */
    wh_ep *ep;
    const char *id;           /* event id (single) or id_buf (batch) */
    char id_buf[40];
    uint32_t attempts;        /* attempts made before the current one */
    int64_t first_attempt;
    int64_t due;              /* held: when to retry */
    int64_t started;
    const char *body;         /* payload (single raw) or body_buf */
    size_t body_len;
    char *body_buf;           /* owned, or NULL */
    wh_request req;
    const char **hdrs;        /* n_hdr_max pointers, same allocation */
    char *text;               /* header text storage, text_size bytes */
    size_t text_size;
    size_t n_jobs;
    wh_job jobs[];
};

/* The routing index (router.c). */
typedef struct wh__map wh__map;
typedef struct wh__router {
    wh__map *by_type;      /* type -> endpoints listing it */
    wh__map *by_prefix;    /* channel prefix -> all-type endpoints */
    struct { size_t len, count; } *plen; /* distinct prefix lengths */
    size_t n_plen, cap_plen;
    wh_ep **any;           /* all-type endpoints without a prefix filter */
    size_t n_any, cap_any;
    size_t n;              /* endpoints indexed */
} wh__router;

struct wh_engine {
    wh_clock clock;
    wh_transport *transport;
    int transport_owned;
    wh_queue *queue;
    int queue_owned;
    size_t max_payload;
    int validate_json;
    wh_outcome_fn on_outcome;
    void *outcome_user;
    wh_log_fn on_log;
    void *log_user;
    wh_log_level log_level;
    wh_health_fn on_health;
    void *health_user;
    wh__rng rng;

    wh_ep **eps;           /* by slot; NULL when removed */
    size_t n_slots, cap_slots;
    wh__router router;

    wh_ep **heap;          /* endpoints by wake time */
    size_t heap_n, heap_cap;

    wh_delivery *flights;  /* in-flight list head */
    int flushing;          /* wh_flush: batches leave without lingering */
    wh_job *claim_buf;
    size_t claim_cap;
    uint32_t *route_buf;
    const char **route_ids;
    size_t route_cap;

    int in_callback;
    int free_pending;
    int polled_outcomes;
    wh_stats st;
    char err[512];
    struct wh__net *net;   /* network options (backends.c), or NULL */
};

/* router.c */
int wh__router_add(wh__router *r, wh_ep *ep);
void wh__router_remove(wh__router *r, wh_ep *ep);
void wh__router_free(wh__router *r);
/* Write the slots of endpoints subscribed to (type, channel) into out
 * (capacity cap); returns how many match (may exceed cap: call again with a
 * bigger buffer). */
size_t wh__router_match(const wh__router *r, const char *type,
                        const char *channel, uint32_t *out, const char **ids,
                        size_t cap);

/* body.c: upper bound of the body of these jobs, and the body itself
 * (NUL-terminated; returns its length). */
size_t wh__body_max(const wh_ep *ep, const wh_job *jobs, size_t n);
size_t wh__body_build(const wh_ep *ep, const wh_job *jobs, size_t n, int64_t wall_ms,
                      char *out);

/* endpoint.c */
void wh__ep_free(wh_ep *ep);

/* policy.c: retry decisions, rate limit, health */
/* Copy the policy fields of o into ep (allocates the lists). */
int wh__policy_build(wh_ep *ep, const wh_endpoint_options *o);
void wh__policy_free(wh_ep *ep);
/* Check the policy fields; sets the last error prefixed with `where`. */
int wh__policy_check(wh_engine *e, const wh_endpoint_options *o, const char *where);
/* After a failed attempt number `attempt` (from 1) whose first attempt
 * started at `first`: the delay before the next one, or -1 when none is
 * made (*why says why). */
int64_t wh__policy_next_delay(wh_engine *e, const wh_ep *ep, const wh_response *res,
                              uint32_t attempt, int64_t first, int64_t now,
                              const char **why);
/* Timeout of an attempt starting now (the budget may shorten it). */
uint32_t wh__policy_attempt_timeout(const wh_ep *ep, int64_t first, int64_t now);
/* How many requests ep may start now (in-flight room, state, rate). */
uint32_t wh__policy_allowance(wh_engine *e, wh_ep *ep, int64_t now);
/* A request was started: take a token. */
void wh__policy_took(wh_ep *ep, int64_t now);
/* Earliest time `when` or later at which ep may start a request. */
int64_t wh__policy_gate(const wh_ep *ep, int64_t when);
/* Health bookkeeping after an attempt; returns 1 when the endpoint was
 * disabled by this answer (HTTP 410). Reports through on_health. */
int wh__health_after(wh_engine *e, wh_ep *ep, const wh_response *res, int ok,
                     int64_t now);
void wh__health_set(wh_engine *e, wh_ep *ep, wh_ep_state st, int http_status,
                    int error, const char *reason, int64_t now);

/* engine.c: scheduling */
int wh__sched_reserve(wh_engine *e, size_t n_endpoints);
void wh__ep_schedule(wh_engine *e, wh_ep *ep, int64_t when);
void wh__ep_unschedule(wh_engine *e, wh_ep *ep);
/* Schedule ep for its next due work (after a state change). */
void wh__ep_reschedule(wh_engine *e, wh_ep *ep);
void wh__cancel_endpoint(wh_engine *e, wh_ep *ep);

#endif
