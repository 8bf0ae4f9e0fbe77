/* The engine's private structures and the seams between its files.
 *
 * Data walks one way:
 *
 *   wh_emit -> route -> queue -> schedule -> body/sign -> transport -> outcome
 *
 * and so do the calls.  Each file calls only files below it in this list
 * (a file never calls one above it, so there is no call cycle; every file
 * includes this header and nothing includes a .c file's private header):
 *
 *   engine.c     the public engine API: lifecycle, emit, poll, flush,
 *                stats, endpoint add/remove/enable.  Calls everything below.
 *   endpoint.c   an endpoint's configuration (wh_ep_conf): options, their
 *                defaults table, header-name and retry presets,
 *                validation, build and free.  Calls policy.c (its part of
 *                the options), sign.c, validate.c, log.c.
 *   delivery.c   an endpoint's requests (wh_ep_work) and one request's worth
 *                of jobs (wh_delivery): claim from the queue, build, sign, submit, take the transport's answer and
 *                turn it into a decision, cancel.  Calls policy.c,
 *                health.c, outcome.c, scheduler.c, body.c, sign.c.
 *   health.c     the health state of an endpoint (wh_ep_health): applies
 *                the policy's health transitions (a wh__decision), reports
 *                them.  Calls outcome.c, log.c.
 *   outcome.c    the engine's queue of outcomes and health changes, filled
 *                during a call and handed to the host's callbacks at its end
 *                (then the queue is told: ack or retry).  Calls scheduler.c
 *                (an endpoint whose job went back to the queue is
 *                rescheduled), log.c, ds.c, metrics.c (every outcome is
 *                counted), opevents.c and the queue's enqueue (operational
 *                events to the operational_endpoint) and the host's
 *                callbacks.
 *   scheduler.c  when each endpoint next has work (wh_ep_sched, the wake
 *                heap).  Calls policy.c (gates), ds.c.
 *   router.c     which endpoints an event goes to.  Calls ds.c.
 *   policy.c     pure retry and limit policy (wh_ep_policy): given state and
 *                an answer it returns a decision; changes nothing but what
 *                it is handed.  Calls log.c (option errors) and the random
 *                generator it is handed (ids.c).
 *   body.c       request bodies.  Leaf.
 *   log.c        the last error and the log callback.  Leaf (but for
 *                wh_status_name).
 *   ds.c         heap, hash map, intrusive list, growable array.  Leaf.
 *   filter.c     payload filters: compiled at endpoint add (endpoint.c),
 *                matched in wh_emit (engine.c).  Leaf (cJSON, regex.h).
 *   dedupe.c     the ids wh_emit accepted within dedupe_window_ms (engine.c;
 *                the SQLite queue keeps its own).  Leaf.
 *   metrics.c    per-endpoint counters (wh__ep_metrics: written through its
 *                functions only) and their Prometheus text.  Leaf.
 *   opevents.c   operational events as JSON (outcome.c) and the
 *                webhook-delivery response header (delivery.c).  Leaf.
 *
 * The other lib/ files (queues, transports, sign.c, validate.c, config.c,
 * ids.c, util.c) are reached through vtables or as leaves; none calls a
 * file above.  There is no include cycle: every engine file includes this
 * header, which includes ds.h and internal.h, which include only the
 * public headers.
 *
 * Host callbacks run only from outcome.c's wh__outcomes_deliver(), which the
 * public calls run after the transport step and at their end: never while a
 * scheduling loop holds engine state. */
#ifndef WH_ENGINE_H
#define WH_ENGINE_H

#include "ds.h"
#include "internal.h"
#include "metrics.h"

struct wh__filter;
struct wh__dedupe;

typedef struct wh_delivery wh_delivery;

/* What the host configured (endpoint.c builds it; read-only after). */
typedef struct wh_ep_conf {
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
    uint32_t connect_timeout_ms;
    struct wh__ep_net *net; /* TLS profile (backends.c), or NULL */
    int transport;          /* wh_transport_kind, handed to wh_request */
    struct wh__filter *payload_filter; /* NULL: none (filter.c) */
    int at_most_once;       /* delivery WH_DELIVERY_AT_MOST_ONCE */
    int ignore_control;     /* ignore the webhook-delivery header */
} wh_ep_conf;

/* Retry policy and request limits (policy.c builds it; read-only after). */
typedef struct wh_ep_policy {
    uint32_t timeout_ms;
    uint32_t max_attempts;
    uint32_t retry_initial_ms, retry_max_ms, retry_multiplier;
    uint32_t max_in_flight;
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
    int ordered;
    int disable_on_410;
    uint32_t breaker_failures, breaker_cooldown_ms, disable_after_ms;
} wh_ep_policy;

/* Health state (health.c changes it, from the policy's transitions). */
typedef struct wh_ep_health {
    wh_ep_state state;
    int64_t paused_until;
    uint32_t consec_fail;
    int64_t fail_since;     /* start of the failure streak, -1: none */
} wh_ep_health;

/* The rate bucket (policy.c's functions update it). */
typedef struct wh_ep_rate {
    int64_t tokens;         /* in 1/rate_period units */
    int64_t tokens_at;      /* time of the last refill, -1: full */
} wh_ep_rate;

/* Work state: the requests of an endpoint (delivery.c writes it). */
typedef struct wh_ep_work {
    uint32_t in_flight;
    /* jobs queued by this engine, modulo 2^32 (wh_metrics_write's
     * webhook_queued: accepted - delivered - dead - in flight); in the
     * padding after in_flight, so that wh_emit touches no further line */
    uint32_t accepted;
    /* jobs enqueued and not yet claimed (batch readiness; approximate for a
     * queue that already held jobs when the engine started) */
    uint64_t fresh, fresh_bytes;
    wh__list held;          /* wh_delivery.link: batches waiting for their
                               retry time */
    wh_ep_rate rate;
} wh_ep_work;

/* Scheduling state (scheduler.c writes it). */
typedef struct wh_ep_sched {
    wh__heap_node wake;     /* key: wake time, in the engine's heap */
    uint64_t pass;          /* the wh__deliver_due pass that last served it */
    struct wh_ep *again;    /* that pass's list of endpoints due again at once */
} wh_ep_sched;

/* An endpoint: each part is written by one file (conf: endpoint.c, pol:
 * policy.c's build, health: health.c, work: delivery.c, sched:
 * scheduler.c); the others read. */
typedef struct wh_ep {
    int handle;
    uint32_t slot;
    wh_ep_conf conf;
    wh_ep_policy pol;
    wh_ep_health health;
    wh_ep_work work;
    wh_ep_sched sched;
    wh__ep_metrics *metrics; /* its own allocation (cold: kept out of the
                                wh_ep lines wh_emit touches); outcome.c
                                records, wh_metrics_write reads */
} wh_ep;

/* One request's worth of jobs: a single event, or a batch.  In single mode
 * it lives for one attempt (retries go back to the queue); a batch lives
 * until it is delivered or dead, keeping its id, body and jobs across
 * retries (held on its endpoint between attempts). */
struct wh_delivery {
    wh__link link;            /* engine's in-flight list, failed list, or
                                 ep->work.held */
    wh_ep *ep;
    const char *id;           /* event id (single) or id_buf (batch) */
    char id_buf[40];
    uint32_t attempts;        /* attempts made before the current one */
    int64_t first_attempt;
    int64_t due;              /* held: when to retry */
    int64_t started;
    const char *body;         /* payload (single raw) or body_buf; NULL
                                 when in pieces */
    size_t body_len;
    const wh_body_piece *pieces; /* n_pieces > 0: the body, in body_buf */
    size_t n_pieces;
    char *body_buf;           /* owned, or NULL */
    size_t body_cap;          /* body_buf's size */
    size_t alloc_size;        /* this record's size (delivery.c's pool) */
    int fail_error;           /* failed before the transport answered */
    const char *fail_msg;     /* static */
    wh_request req;
    const char **hdrs;        /* n_hdr_max pointers, same allocation */
    char *text;               /* header text storage, text_size bytes */
    size_t text_size;
    size_t n_jobs;
    wh_job jobs[];
};

/* The routing index (router.c). */
typedef struct wh__router {
    wh__map by_type;       /* type -> wh__bucket of endpoints listing it */
    wh__map by_prefix;     /* channel prefix -> all-type endpoints */
    struct { size_t len, count; } *plen; /* distinct prefix lengths */
    size_t n_plen, cap_plen;
    wh_ep **any;           /* all-type endpoints without a prefix filter */
    size_t n_any, cap_any;
    size_t n;              /* endpoints indexed */
    struct wh__bucket *hot; /* by_type's bucket of the last type matched
                               (buckets live until wh__router_free) */
} wh__router;

/* A queued report (outcome.c): an outcome with the queue action to take
 * once the host has seen it, or a health change. */
enum { WH__ACT_NONE, WH__ACT_ACK, WH__ACT_RETRY };
typedef struct wh__report {
    int is_health;
    int act;                  /* outcomes: WH__ACT_* */
    int64_t due;              /* WH__ACT_RETRY */
    wh_ep *ep;
    wh_job job;
    wh_outcome o;
    wh_health h;
    char msg[160];            /* o.error_msg / h.reason when they point here */
    /* copies of the answer for o.response_body, o.retry_after,
     * o.delivery_control (pointed to when the report is delivered) */
    char resp_body[WH_OUTCOME_BODY_MAX];
    char retry_after[64], control[64];
    int has_retry_after, has_control;
    /* a batch outcome (on_batch_outcome): batch_n jobs at
     * e->bjobs[batch_off...], the request's id (empty: none); 0: one job */
    size_t batch_n, batch_off;
    char batch_id[40];
} wh__report;

struct wh_engine {
    wh_clock clock;
    /* wall time = monotonic now + wall_off, the offset read from both clocks
     * at wall_off_at (monotonic) and refreshed when 100 ms old: one clock
     * read per emit and per round (wh__wall_at) */
    int64_t wall_off, wall_off_at;
    wh_transport *transport;
    int transport_owned;
    int transport_library;  /* the library's own (lib/backends.c): endpoints
                               may choose lean/curl/auto */
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

    wh__heap wake;         /* endpoints by wake time (wh_ep_sched.wake) */

    wh__list flights;      /* in flight (wh_delivery.link) */
    wh__list failed;       /* failed before reaching the transport */
    int flushing;          /* wh_flush: batches leave without lingering */
    wh_job *claim_buf;
    size_t claim_cap;
    uint32_t *route_buf;
    const char **route_ids;
    size_t route_cap;

    /* delivery.c: freed request records [0] and body buffers [1], kept for
     * the next requests (no allocation per request in steady state) */
    struct { void *p; size_t cap; } pool[2][16];
    size_t n_pool[2];
    wh__report *reports;   /* outcome.c: reports[rep_head..rep_n) pending */
    /* on_batch_outcome: the jobs of the batch reports pending, and the
     * views handed to the host (reused from call to call) */
    wh_batch_outcome_fn on_batch_outcome;
    void *batch_outcome_user;
    wh_job *bjobs;
    size_t bjobs_n, bjobs_cap;
    wh_event_view *bviews;
    size_t bviews_cap;
    size_t rep_head, rep_n, rep_cap;
    size_t delivered_outcomes; /* outcomes handed out during this wh_poll */

    size_t n_payload_filters; /* endpoints with a payload filter */
    struct wh__dedupe *dedupe; /* dedupe_window_ms in memory, or NULL */
    int64_t dedupe_window;
    char *op_endpoint;      /* operational_endpoint id, or NULL */

    int in_callback;
    int free_pending;
    wh_stats st;
    char err[512];
    struct wh__net *net;   /* network options (backends.c), or NULL */

    /* loop.c: the hooks in use (the host's from wh_loop_attach, or the
     * engine's own epoll set for wh_fd) and what the transport is given */
    int loop_on;           /* 1: hooks attached */
    int fd_mode;           /* 1: the hooks are the engine's epoll set */
    wh_loop loop;          /* the hooks the engine calls */
    wh_loop inner;         /* handed to the transport (v2) */
    int tp_loop;           /* 1: the transport drives its sockets via inner */
    int64_t tp_due;        /* the transport's timer, absolute; INT64_MAX none */
    int64_t armed;         /* the hooks' timer is armed for; INT64_MAX none */
    int64_t queue_next;    /* the queue's poll() wants to run by then */
    int in_round;          /* inside a driving call: re-arm at its end */
    wh_loop q_inner;       /* handed to the queue (version 5) */
    int q_loop;            /* 1: the queue drives its socket via q_inner */
    int q_fd;              /* the fd the queue watches, -1 none */
    int fd_implicit;       /* 1: fd_mode started by wh_poll for the queue */
    int64_t budget_end_ns; /* wh_poll_budget: its end (CLOCK_MONOTONIC), 0 none */
    uint64_t due_pass;     /* wh__deliver_due passes, for wh_ep_sched.pass */
    uint64_t budget_req0;  /* st.requests when that call began */
    int epfd, tfd, wfd;    /* wh_fd's epoll set and timerfd; wakeup eventfd */
    void *wfd_slot;        /* the hooks' slot of wfd */
    int wfd_watched;

    /* inbox.c: emit_any_thread's inbox (NULL when off) */
    struct wh__inbox *inbox;

    /* outcome.c: the pull queue (outcome_queue = 1) */
    int outcome_queue;
    wh__list pulled;       /* kept outcomes, oldest first */
    void *pull_last;       /* handed out by the last wh_outcome_next */
};

/* endpoint.c */
extern const wh_endpoint_options wh__endpoint_defaults;
/* Copy the caller's options into a full-size struct with the defaults for
 * fields an older caller does not know.  WH_OK or WH_E_VERSION. */
int wh__endpoint_normalize(const wh_endpoint_options *in, wh_endpoint_options *o);
int wh__endpoint_find(const wh_engine *e, const char *id);
wh_ep *wh__ep_new(const wh_engine *e, const wh_endpoint_options *o, int handle);
void wh__ep_free(wh_ep *ep);

/* router.c */
int wh__router_add(wh__router *r, wh_ep *ep);
void wh__router_remove(wh__router *r, wh_ep *ep);
void wh__router_free(wh__router *r);
/* Write the slots of endpoints subscribed to (type, channel) into out
 * (capacity cap); returns how many match (may exceed cap: call again with a
 * bigger buffer). */
size_t wh__router_match(wh__router *r, const char *type,
                        const char *channel, uint32_t *out, const char **ids,
                        size_t cap);

/* body.c: upper bound of the body of these jobs, and the body itself
 * (NUL-terminated; returns its length). */
size_t wh__body_max(const wh_ep_conf *c, const wh_job *jobs, size_t n);
size_t wh__body_build(const wh_ep_conf *c, const wh_job *jobs, size_t n,
                      int64_t wall_ms, char *out);
/* The same body in pieces (a transport's body_pieces): envelope text in
 * frag (wh__body_frag_max bytes), payloads of WH__PIECE_MIN bytes or more
 * pointed to in the jobs (valid while they are claimed).  Writes at most
 * 2n + 1 pieces; returns how many, *len the bytes in all. */
#ifndef WH__PIECE_MIN
#define WH__PIECE_MIN 1024
#endif
size_t wh__body_frag_max(const wh_ep_conf *c, const wh_job *jobs, size_t n);
size_t wh__body_build_pieces(const wh_ep_conf *c, const wh_job *jobs, size_t n,
                             int64_t wall_ms, char *frag, wh_body_piece *pieces,
                             size_t *len);

/* policy.c: pure retry and limit decisions */
int wh__policy_build(wh_ep_policy *p, const wh_endpoint_options *o);
void wh__policy_free(wh_ep_policy *p);
/* Check the policy fields; sets the last error prefixed with `where`. */
int wh__policy_check(wh_engine *e, const wh_endpoint_options *o, const char *where);

/* An attempt's answer, as the policy sees it. */
typedef struct wh__attempt {
    const wh_response *res;
    uint32_t attempt;         /* number of the attempt just made, from 1 */
    int64_t first;            /* when the first attempt started, -1: unknown */
    int64_t now, wall;        /* monotonic and wall clock now */
} wh__attempt;

/* What to do after an attempt. */
typedef struct wh__decision {
    wh_outcome_kind kind;     /* WH_DELIVERED, WH_RETRY or WH_DEAD */
    int64_t delay;            /* WH_RETRY: ms until the next attempt; -1:
                                 when the endpoint is enabled again (410) */
    const char *why;          /* WH_DEAD: why no more attempts (static) */
    int error;                /* WH_OK or the attempt's error */
    char msg[160];            /* the answer, human-readable ("" when ok) */
    wh_ep_health health;      /* the endpoint's health after this answer */
    int health_changed;       /* health.state changed: reason says why */
    int health_status;        /* the answer's HTTP status (0: none) */
    int health_error;         /* the answer's error */
    uint32_t health_failures; /* consecutive failures to report */
    char reason[128];
} wh__decision;

/* The decision after attempt `a` of an endpoint with policy p and health h.
 * rng is drawn from for jitter only when a retry is decided. */
void wh__policy_decide(const wh_ep_policy *p, const wh_ep_health *h,
                       const wh__attempt *a, wh__rng *rng, wh__decision *out);
/* Timeout of an attempt starting now (the budget may shorten it). */
uint32_t wh__policy_attempt_timeout(const wh_ep_policy *p, int64_t first, int64_t now);
/* How many requests may start now (in-flight room, health state, rate). */
uint32_t wh__policy_allowance(const wh_ep_policy *p, const wh_ep_health *h,
                              const wh_ep_rate *r, uint32_t in_flight, int64_t now);
/* A request was started: take a token. */
void wh__policy_took(const wh_ep_policy *p, wh_ep_rate *r, int64_t now);
/* Earliest time `when` or later at which a request may start. */
int64_t wh__policy_gate(const wh_ep_policy *p, const wh_ep_health *h,
                        const wh_ep_rate *r, int64_t when);
/* Most requests in flight in health state h. */
uint32_t wh__policy_in_flight_limit(const wh_ep_policy *p, const wh_ep_health *h);

/* log.c: wh__fail and wh__log are declared in internal.h */

/* ds.c: see ds.h */

/* scheduler.c */
void wh__sched_init(wh_ep_sched *s);
int wh__sched_reserve(wh_engine *e, size_t n_endpoints);
/* Wake ep at `when` (INT64_MAX: not at all), or later when its state or
 * rate limit says so. */
void wh__sched_at(wh_engine *e, wh_ep *ep, int64_t when);
/* Wake ep at `when` unless it already wakes earlier. */
void wh__sched_sooner(wh_engine *e, wh_ep *ep, int64_t when);
void wh__sched_cancel(wh_engine *e, wh_ep *ep);
/* When ep next has something to do. */
int64_t wh__sched_next_wake(wh_engine *e, wh_ep *ep);
/* Schedule ep for its next due work (after a state change). */
void wh__sched_update(wh_engine *e, wh_ep *ep);
/* The endpoint due first, if due by now (taken off the heap), else NULL. */
wh_ep *wh__sched_pop_due(wh_engine *e, int64_t now);
/* Wake time of the first endpoint, INT64_MAX when none. */
static inline int64_t wh__sched_first(const wh_engine *e)
{
    const wh__heap_node *top = wh__heap_top(&e->wake);
    return top ? top->key : INT64_MAX;
}

/* engine.c: the wall clock at monotonic time `now` (read from e->clock
 * just before): now + an offset between the two clocks refreshed when it is
 * 100 ms old (a wall clock step shows within 100 ms).  Exact for a clock
 * whose wall time moves with its monotonic time (the manual clock). */
#define WH__WALL_REFRESH_MS 100
void wh__wall_refresh(wh_engine *e);
static inline int64_t wh__wall_at(wh_engine *e, int64_t now)
{
    if (WH_UNLIKELY(now - e->wall_off_at >= WH__WALL_REFRESH_MS))
        wh__wall_refresh(e);
    return now + e->wall_off;
}

/* outcome.c */
/* An outcome for job of ep; act says what to tell the queue after.  wall:
 * the wall clock now (for a delivered outcome's metrics; else unused). */
void wh__outcome_add(wh_engine *e, wh_ep *ep, wh_outcome_kind kind, const wh_job *job,
                     int act, int64_t due, const wh_outcome *tmpl, const char *msg,
                     int64_t wall);
/* The outcomes of n jobs of one request (batch_id: its id, or NULL): one
 * batch outcome when the host asked for them (on_batch_outcome) and ep is
 * in batch mode, else one outcome per job (wh__outcome_add). */
void wh__outcome_add_jobs(wh_engine *e, wh_ep *ep, wh_outcome_kind kind, const wh_job *jobs,
                          size_t n, int act, int64_t due, const wh_outcome *tmpl,
                          const char *msg, int64_t wall, const char *batch_id);
void wh__health_report(wh_engine *e, const wh_ep *ep, const wh_health *h);
/* Hand every queued report to the host's callbacks, then tell the queue. */
void wh__outcomes_deliver_all(wh_engine *e);
static inline void wh__outcomes_deliver(wh_engine *e)
{
    if (e->rep_n) wh__outcomes_deliver_all(e);
}

/* inbox.c: a bounded lock-free multi-producer, single-consumer inbox of
 * event copies (emit_any_thread).  push may be called from any thread; the
 * rest from the engine's thread. */
typedef struct wh__inbox_item {
    const char *type, *channel, *data, *id;   /* into the same allocation */
    size_t len;
    int64_t wall;
} wh__inbox_item;
struct wh__inbox *wh__inbox_new(size_t capacity);
void wh__inbox_free(struct wh__inbox *in);
/* Copy the event in.  WH_OK, WH_E_FULL or WH_E_NOMEM.  Returns in *wake
 * 1 when the consumer must be woken (the first push since its last
 * wh__inbox_armed). */
int wh__inbox_push(struct wh__inbox *in, const char *type, const char *channel,
                   const char *data, size_t len, const char *id, int64_t wall, int *wake);
/* The consumer is about to drain: later pushes wake it again. */
void wh__inbox_armed(struct wh__inbox *in);
/* The oldest item without taking it (NULL when empty); wh__inbox_pop
 * takes and frees it. */
const wh__inbox_item *wh__inbox_peek(struct wh__inbox *in);
void wh__inbox_pop(struct wh__inbox *in);
int wh__inbox_empty(struct wh__inbox *in);
void wh__inbox_reject(struct wh__inbox *in);      /* any thread */
uint64_t wh__inbox_rejected(struct wh__inbox *in);
/* The thread-local message of the last failed any-thread wh_emit on e. */
int wh__fail_tl(wh_engine *e, int status, const char *fmt, ...) WH_PRINTF(3, 4);
const char *wh__tl_error(const wh_engine *e);
void wh__tl_clear(void);

/* loop.c: the hooks.  wh__loop_set attaches `loop` (fd_mode: the engine's
 * epoll set, created here) and hands the transport its hooks; clear undoes
 * it.  rearm arms the hooks' timer for the next deadline (transport timer,
 * wake heap, queue poll, inbox). */
int wh__loop_set(wh_engine *e, const wh_loop *loop, int fd_mode);
void wh__loop_clear(wh_engine *e);
void wh__loop_rearm(wh_engine *e);
/* 1: the queue is of version 5 with set_loop/socket_action (loop.c). */
int wh__loop_queue_wants(const wh_engine *e);
/* wh_fd: wait up to wait_ms on the epoll set, then hand each ready fd to
 * fn (the timerfd as WH_SOCKET_TIMEOUT, the wakeup fd as itself). */
void wh__loop_fd_wait(wh_engine *e, int wait_ms,
                      void (*fn)(wh_engine *e, int fd, int events));
int wh__wakeup_fd_new(void);
void wh__wakeup_signal(int fd);
void wh__wakeup_drain(int fd);

/* outcome.c: the pull queue */
int wh__outcome_pull(wh_engine *e, wh_outcome *out);
void wh__outcome_pull_free(wh_engine *e);

/* health.c */
void wh__health_init(wh_ep_health *h);
/* The host enabled (enable != 0) or disabled the endpoint. */
void wh__health_host(wh_engine *e, wh_ep *ep, int enable, int64_t now);
/* Apply a decision's health transition to ep and report it. */
void wh__health_apply(wh_engine *e, wh_ep *ep, const wh__decision *d, int64_t now);
void wh__health_set(wh_engine *e, wh_ep *ep, wh_ep_state st, int http_status,
                    int error, const char *reason, int64_t now);
/* A paused endpoint whose cool-down is over starts probing. */
void wh__health_tick(wh_engine *e, wh_ep *ep, int64_t now);

/* delivery.c */
void wh__work_init(wh_ep_work *w);
/* wh_emit enqueued a job of `len` payload bytes for ep, due `now`: count it
 * (batch readiness) and return when ep should wake for it. */
static inline int64_t wh__work_enqueued(const wh_engine *e, wh_ep *ep, size_t len,
                                        int64_t now)
{
    ep->work.fresh++;
    ep->work.fresh_bytes += len;
    ep->work.accepted++;
    if (ep->conf.mode == WH_MODE_BATCH && ep->work.fresh < ep->conf.batch_max_events &&
        ep->work.fresh_bytes < ep->conf.batch_max_bytes && !e->flushing)
        return now + ep->conf.batch_linger_ms;
    return now;
}
/* Start requests for every endpoint whose wake time has come. */
void wh__deliver_due(wh_engine *e, int64_t now);
/* 1 inside wh_poll_budget once its budget is spent and it has started a
 * request (a tiny budget still moves): stop starting requests. */
int wh__budget_spent(const wh_engine *e);
/* 1 inside wh_poll_budget once its time is up (ready I/O waits for the
 * next call: the epoll set is level-triggered). */
int wh__budget_over(const wh_engine *e);
/* The transport's completion callback (token: the delivery). */
void wh__delivery_done(void *user, void *token, const wh_response *res);
/* Report every job of ep (in flight, held or queued) as cancelled. */
void wh__cancel_endpoint(wh_engine *e, wh_ep *ep);
/* Engine going away over a durable queue: give every job back. */
void wh__leave_durable_queue(wh_engine *e);
size_t wh__jobs_in_flight(const wh_engine *e);
/* Free the buffers kept for reuse (wh_engine_free). */
void wh__delivery_pool_free(wh_engine *e);

#endif
