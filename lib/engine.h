/* The engine's private structures, shared by engine.c, endpoint.c and
 * router.c. */
#ifndef WH_ENGINE_H
#define WH_ENGINE_H

#include "internal.h"

/* Header names an endpoint sends (configurable per scheme in a later
 * version; Standard Webhooks names by default). */
typedef struct wh__header_names {
    const char *id;        /* "webhook-id" */
    const char *timestamp; /* "webhook-timestamp" */
    const char *signature; /* "webhook-signature" */
    const char *attempt;   /* "webhook-attempt" */
} wh__header_names;

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
    wh__hmac **keys;
    size_t n_keys;
    char **headers;         /* custom "Name: value" */
    size_t n_headers;
    size_t headers_bytes;   /* sum of strlen(headers[i]) */
    wh__header_names names;
    uint32_t timeout_ms, connect_timeout_ms;
    uint32_t max_attempts;
    uint32_t retry_initial_ms, retry_max_ms, retry_multiplier;
    uint32_t max_in_flight;
    uint32_t in_flight;
    /* scheduling: position in the engine's wake heap */
    int64_t wake;           /* INT64_MAX: not scheduled */
    size_t heap_idx;        /* SIZE_MAX: not in the heap */
} wh_ep;

/* A request in flight. */
typedef struct wh_flight {
    struct wh_flight *prev, *next; /* engine's in-flight list */
    wh_engine *e;
    wh_ep *ep;
    wh_job job;
    int64_t started;
    wh_request req;
    const char **hdrs;     /* points into the same allocation */
    char *text;            /* header text storage */
} wh_flight;

typedef struct wh__router {
    wh_ep **eps;           /* active endpoints, in insertion order */
    size_t n, cap;
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
    wh__rng rng;

    wh_ep **eps;           /* by slot; NULL when removed */
    size_t n_slots, cap_slots;
    wh__router router;

    wh_ep **heap;          /* endpoints by wake time */
    size_t heap_n, heap_cap;

    wh_flight *flights;    /* in-flight list head */
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

/* endpoint.c */
void wh__ep_free(wh_ep *ep);

/* engine.c: scheduling */
int wh__sched_reserve(wh_engine *e, size_t n_endpoints);
void wh__ep_schedule(wh_engine *e, wh_ep *ep, int64_t when);
void wh__ep_unschedule(wh_engine *e, wh_ep *ep);
void wh__cancel_endpoint(wh_engine *e, wh_ep *ep);

#endif
