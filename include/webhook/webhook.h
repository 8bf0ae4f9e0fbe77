/*
 * libwebhook — an embeddable webhook delivery library: the host API.
 *
 * The host program creates an engine, adds endpoints, emits events and
 * drives the engine from its own loop.  The library routes each event to
 * every subscribed endpoint, signs it, sends it over HTTP, retries it on
 * failure and reports every outcome through a callback.  This header is all
 * a host program needs; the other headers serve other audiences:
 *
 *     <webhook/plugin.h>   clock, transport and queue vtables (backend authors)
 *     <webhook/curl.h>     options of the libcurl transport
 *     <webhook/lean.h>     options of the lean (HTTP/1.1, no libcurl) transport
 *     <webhook/sqlite.h>   the durable SQLite queue
 *     <webhook/redis.h>    the shared Redis Streams queue
 *     <webhook/verify.h>   receiver side: signing and verification helpers
 *     <webhook/test.h>     manual clock and scripted transport (libwebhook-test)
 *
 * Example: the common case is three calls after creating the engine (the
 * test suite compiles this block, so it stays true):
 *
 *     static const char json[] = "{\"text\":\"hello\"}";
 *     int err;
 *     wh_engine *e = wh_engine_new(NULL, &err);          // defaults
 *     if (!e) { fprintf(stderr, "%s\n", wh_strerror(err)); return 1; }
 *     wh_endpoint_options ep;
 *     wh_endpoint_options_init(&ep);
 *     ep.url = "https://example.com/hooks";
 *     wh_endpoint_add(e, &ep);                             // 1
 *     wh_emit(e, "message.created", "room-1", json, sizeof json - 1, NULL); // 2
 *     wh_poll(e, 100);                                     // 3, from the loop
 *     wh_flush(e, 5000);                                   // at shutdown
 *     wh_engine_free(e);
 *
 * Threading: an engine belongs to one thread at a time; wh_wakeup() and
 * (with emit_any_thread) wh_emit() may be called from any thread.  Nothing
 * in the library blocks except wh_poll() with a positive max_wait_ms and
 * wh_flush().  The library starts no thread of its own; libcurl's resolver
 * starts one per lookup of a host name (not for IP literals).  See
 * "living in the host's loop" below for loop hooks, wh_fd() and ticks.
 *
 * Status codes: functions returning int return WH_OK (0) or a negative
 * wh_status; wh_strerror() names it and wh_last_error() returns the detailed
 * message of the engine's most recent failure.
 */
#ifndef WEBHOOK_H
#define WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- export macro -------------------------------------------------------- */
#if defined(WH_STATICLIB)
#  define WH_EXTERN
#elif defined(_WIN32)
#  if defined(BUILDING_WH)
#    define WH_EXTERN __declspec(dllexport)
#  else
#    define WH_EXTERN __declspec(dllimport)
#  endif
#elif defined(BUILDING_WH) && defined(__GNUC__)
#  define WH_EXTERN __attribute__((visibility("default")))
#else
#  define WH_EXTERN
#endif

/* ---- version (the only place it is written; both builds read it) -------- */
#define WH_VERSION_MAJOR 0
#define WH_VERSION_MINOR 1
#define WH_VERSION_PATCH 0
#define WH_VERSION_STRING "0.1.0"
#define WH_VERSION_NUM \
    ((WH_VERSION_MAJOR << 16) | (WH_VERSION_MINOR << 8) | WH_VERSION_PATCH)

/* Run-time version: returns the library's WH_VERSION_STRING, or NULL when the
 * library's WH_VERSION_NUM is older than `least` (pass 0 to always get it). */
WH_EXTERN const char *wh_version(int least);

/* ---- status codes -------------------------------------------------------- */
/* Never renumbered; new codes are appended. */
#define WH_STATUS_MAP(XX)                                                      \
    XX(OK, 0, "success")                                                       \
    XX(E_INVAL, -1, "invalid argument")                                        \
    XX(E_NOMEM, -2, "out of memory")                                           \
    XX(E_FULL, -3, "queue is full")                                            \
    XX(E_URL, -4, "invalid URL")                                               \
    XX(E_JSON, -5, "malformed JSON")                                           \
    XX(E_TOO_LARGE, -6, "payload too large")                                   \
    XX(E_HEADER, -7, "invalid header name or value")                           \
    XX(E_NOT_FOUND, -8, "not found")                                           \
    XX(E_EXISTS, -9, "already exists")                                         \
    XX(E_CONFIG, -10, "invalid configuration")                                 \
    XX(E_SECRET, -11, "invalid secret")                                        \
    XX(E_TRANSPORT, -12, "transport error")                                    \
    XX(E_TIMEOUT, -13, "timed out")                                            \
    XX(E_CANCELLED, -14, "cancelled")                                          \
    XX(E_RECURSIVE, -15, "called from inside a callback")                      \
    XX(E_IO, -16, "I/O error")                                                 \
    XX(E_VERSION, -17, "unsupported struct or vtable version")                 \
    XX(E_CONNECT, -18, "connection failed")                                    \
    XX(E_HTTP_STATUS, -19, "endpoint answered with a failure status")          \
    XX(E_SIGNATURE, -20, "signature does not verify")                          \
    XX(E_TIMESTAMP, -21, "timestamp outside tolerance")                        \
    XX(E_QUEUE, -22, "queue backend error")                                    \
    XX(E_UNSUPPORTED, -23, "backend not built into this library")              \
    XX(E_FORBIDDEN, -24, "address refused by the SSRF guard")                  \
    XX(E_UNAVAILABLE, -25, "queue backend unreachable and local buffer full")    \
    XX(E_DUPLICATE, -26, "event id already accepted within the dedupe window")

typedef enum wh_status {
#define WH_XX_(name, val, msg) WH_##name = val,
    WH_STATUS_MAP(WH_XX_)
#undef WH_XX_
    WH_STATUS_LAST_ = -27 /* never use */
} wh_status;

/* Static English description of a status ("invalid URL"); never NULL. */
WH_EXTERN const char *wh_strerror(int status);
/* Static symbolic name of a status ("WH_E_URL"); never NULL. */
WH_EXTERN const char *wh_status_name(int status);

/* ---- opaque handles ------------------------------------------------------ */
typedef struct wh_engine wh_engine;
/* Parts a host may hand to wh_engine_options (see <webhook/plugin.h> for
 * their vtables and the backend headers for their constructors). */
typedef struct wh_clock wh_clock;
typedef struct wh_transport wh_transport;
typedef struct wh_queue wh_queue;

/* ---- events as stored ---------------------------------------------------- */
/* An accepted event as a queue stores it. */
typedef struct wh_event_view {
    const char *id;           /* delivery id, identical on every retry */
    const char *type;         /* event type */
    const char *channel;      /* channel, or NULL */
    const char *data;         /* JSON payload, exactly as emitted */
    size_t data_len;
    int64_t created_ms;       /* wall-clock time of wh_emit */
} wh_event_view;

/* ---- outcomes ------------------------------------------------------------ */
typedef enum wh_outcome_kind {
    WH_DELIVERED = 1,   /* a 2xx arrived */
    WH_RETRY = 2,       /* the attempt failed; another is scheduled */
    WH_DEAD = 3         /* no further attempt: dead-lettered */
} wh_outcome_kind;

typedef struct wh_outcome {
    wh_outcome_kind kind;
    int endpoint;             /* handle returned by wh_endpoint_add */
    const char *endpoint_id;  /* the endpoint's stable id */
    const char *url;
    wh_event_view ev;         /* the event (payload included) */
    uint32_t attempt;         /* number of the attempt just made, from 1 */
    int http_status;          /* 0 when no response arrived */
    int error;                /* WH_OK, or why the attempt failed:
                                 WH_E_HTTP_STATUS, WH_E_CONNECT,
                                 WH_E_TIMEOUT, WH_E_TRANSPORT,
                                 WH_E_FORBIDDEN (the SSRF guard refused the
                                 address; never retried),
                                 WH_E_CANCELLED (endpoint removed or engine
                                 freed with work pending) */
    const char *error_msg;    /* human-readable detail, never NULL */
    int64_t retry_in_ms;      /* WH_RETRY: delay until the next attempt
                                 (later if the endpoint is paused then);
                                 -1 when the endpoint was disabled: the job
                                 waits for wh_endpoint_enable */
    int64_t latency_ms;       /* duration of the attempt */
    /* The attempt's answer, for an attempt log (NULL/0 when none arrived):
     * the first bytes of the response body as read (at most
     * WH_OUTCOME_BODY_MAX, not NUL-terminated), and response headers of
     * interest (NULL when absent). */
    const char *response_body;
    size_t response_body_len;
    const char *retry_after;      /* Retry-After */
    const char *delivery_control; /* webhook-delivery ("disable",
                                     "abort-message") */
    /* The event's per-message headers (wh_emit_ex), "Name: value" lines
     * separated by '\n', or NULL. */
    const char *event_headers;
} wh_outcome;

/* Most response body bytes an outcome carries. */
#define WH_OUTCOME_BODY_MAX 256

/* Outcome callback.  Outcomes are collected while the engine works and
 * handed to the callback at the end of the call that produced them: in
 * wh_poll() (and so wh_flush()) after the transport step and before it
 * returns, in wh_endpoint_remove() and wh_engine_free() for the jobs they
 * cancel; never while the engine is in the middle of scheduling.  They come
 * in the order they happened.  The outcome and everything it points to is
 * valid only during the call.  The callback may call wh_emit(), wh_stats()
 * and wh_last_error(); other engine calls return WH_E_RECURSIVE
 * (wh_engine_free is deferred until the callback returns). */
typedef void (*wh_outcome_fn)(void *user, const wh_outcome *o);

/* One outcome for a whole request of a batch-mode endpoint, instead of one
 * wh_outcome per event (wh_engine_options.on_batch_outcome).  Every event of
 * the request has the same fate: kind, attempt, HTTP status, error and the
 * answer are the request's.  Valid only during the callback, like
 * wh_outcome; the same rules apply to what the callback may call. */
typedef struct wh_batch_outcome {
    wh_outcome_kind kind;     /* of every event of the batch */
    int endpoint;             /* handle returned by wh_endpoint_add */
    const char *endpoint_id;
    const char *url;
    /* The request's id (its webhook-id header, the same on every retry of
     * the batch), or NULL for events cancelled before any request
     * (wh_endpoint_remove, wh_engine_free: error WH_E_CANCELLED). */
    const char *batch_id;
    const wh_event_view *events; /* the events, in the body's order */
    size_t n_events;
    uint32_t attempt;         /* as wh_outcome.attempt (0: never tried) */
    int http_status;          /* as in wh_outcome from here on */
    int error;
    const char *error_msg;    /* never NULL */
    int64_t retry_in_ms;
    int64_t latency_ms;
    const char *response_body;
    size_t response_body_len;
    const char *retry_after;
    const char *delivery_control;
} wh_batch_outcome;

typedef void (*wh_batch_outcome_fn)(void *user, const wh_batch_outcome *b);

typedef enum wh_log_level {
    WH_LOG_ERROR = 0, WH_LOG_WARN = 1, WH_LOG_INFO = 2, WH_LOG_DEBUG = 3
} wh_log_level;
/* Log callback: the library never prints; diagnostics come here.  Secrets
 * are never logged. */
typedef void (*wh_log_fn)(void *user, wh_log_level level, const char *msg);

/* ---- endpoint health ----------------------------------------------------- */
typedef enum wh_ep_state {
    WH_EP_ACTIVE = 0,    /* sending */
    WH_EP_PAUSED = 1,    /* circuit breaker open: nothing sent until the
                            cool-down ends */
    WH_EP_PROBING = 2,   /* cool-down over: one probe request at a time;
                            a success resumes, a failure pauses again */
    WH_EP_DISABLED = 3   /* nothing sent until wh_endpoint_enable */
} wh_ep_state;

/* A change of an endpoint's state, reported through on_health: to PAUSED
 * (breaker opened or probe failed), ACTIVE (a success after a pause, or
 * wh_endpoint_enable) and DISABLED (HTTP 410, disable_after_ms, or
 * wh_endpoint_enable(.., 0)).  Valid only during the call. */
typedef struct wh_health {
    int endpoint;
    const char *endpoint_id;
    const char *url;
    wh_ep_state state;        /* the new state */
    wh_ep_state previous;
    int http_status;          /* the answer that caused it, 0 if none */
    int error;                /* its error (WH_OK for an answer or a host
                                 call) */
    const char *reason;       /* human-readable, never NULL */
    uint32_t consecutive_failures;
    int64_t resume_at_ms;     /* PAUSED: monotonic time of the probe; else -1 */
} wh_health;

/* Health callback: same rules and same moment as the outcome callback (a
 * change made by wh_endpoint_enable() is reported before it returns); health
 * changes and outcomes come in one sequence, in the order they happened. */
typedef void (*wh_health_fn)(void *user, const wh_health *h);

/* ---- engine -------------------------------------------------------------- */
/* Which of the library's transports carries a request (engine default, or
 * one endpoint's choice).  AUTO: the lean transport where it can (http://
 * with an IP literal or "localhost" as host), libcurl for the rest
 * (https://, host names); in a build without libcurl, lean for all.
 * README "Lean transport". */
typedef enum wh_transport_kind {
    WH_TRANSPORT_DEFAULT = 0, /* engine: libcurl (lean when built without
                                 it); endpoint: the engine's choice */
    WH_TRANSPORT_CURL = 1,
    WH_TRANSPORT_LEAN = 2,
    WH_TRANSPORT_AUTO = 3
} wh_transport_kind;

typedef struct wh_engine_options {
    size_t struct_size;          /* set by wh_engine_options_init() */
    /* Parts.  NULL selects the default. The engine copies the structs;
     * their `user` pointers must outlive the engine. */
    const wh_clock *clock;       /* default: wh_clock_system() */
    wh_transport *transport;     /* default: a new libcurl transport
                                    (a build without libcurl has none:
                                    wh_engine_new fails, WH_E_UNSUPPORTED) */
    int transport_owned;         /* 1: the engine destroys `transport` */
    wh_queue *queue;             /* default: a bounded in-memory queue */
    int queue_owned;             /* 1: the engine destroys `queue` */
    /* In-memory queue bounds (default queue only). */
    size_t max_queued_events;    /* default 1,000,000 events */
    size_t max_queued_bytes;     /* default 1 GiB of payload */
    /* Inputs. */
    size_t max_payload_bytes;    /* default 1 MiB; larger -> WH_E_TOO_LARGE */
    int validate_json;           /* default 1: wh_emit rejects bad JSON */
    /* Callbacks. */
    wh_outcome_fn on_outcome;
    void *outcome_user;
    wh_log_fn on_log;
    void *log_user;
    wh_log_level log_level;      /* default WH_LOG_INFO */
    /* Randomness for delivery ids and jitter: 0 = seed from the OS. */
    uint64_t seed;
    /* Health callback. */
    wh_health_fn on_health;      /* endpoint state changes; may be NULL */
    void *health_user;

    /* ---- network safety (README "Security") ---------------------------
     * ssrf_guard, ssrf_allow and proxy apply to the engine's own
     * transports (libcurl and the lean transport; with your own transport,
     * set them in its options: wh_engine_new fails with WH_E_INVAL when
     * they are set here). */
    /* 1: wh_endpoint_add refuses http:// URLs (WH_E_URL). */
    int https_only;
    /* 1: refuse to connect to loopback, private, link-local, CGNAT,
     * multicast, unspecified, reserved and documentation addresses (IPv4
     * and IPv6, IPv4-mapped, NAT64 and 6to4 forms included), checked on
     * the address actually connected to, after name resolution.  A refused
     * delivery is WH_DEAD at once with WH_E_FORBIDDEN, whose message names
     * the address and the rule ("127.0.0.1 is loopback (127.0.0.0/8)"). */
    int ssrf_guard;
    /* Ranges let through despite the guard: "10.1.0.0/16", "fd00::/8", or a
     * single address.  IPv4 ranges also match IPv4-mapped addresses. */
    const char *const *ssrf_allow;
    size_t n_ssrf_allow;
    /* NULL or "" (default): no proxy; the environment's http_proxy,
     * https_proxy and all_proxy are ignored.  "env": use them.  Otherwise
     * the proxy URL ("http://proxy:3128").  With a proxy, the SSRF guard
     * sees the proxy's address, not the endpoint's. */
    const char *proxy;
    /* TLS defaults for every endpoint (see wh_endpoint_options). */
    const char *ca_file;
    const char *ca_path;
    const char *client_cert_file;
    const char *client_key_file;
    const char *tls_min_version;
    const char *pinned_public_key;
    int insecure_skip_verify_DANGEROUS;

    /* 1: wh_emit() may be called from any thread (see "Threads" at
     * wh_emit); events pass through a bounded lock-free inbox.  Default 0:
     * wh_emit() belongs to the engine's thread like every other call. */
    int emit_any_thread;
    /* 1: outcomes are kept for wh_outcome_next() instead of being handed
     * to on_outcome (which is then not called).  Default 0. */
    int outcome_queue;
    /* emit_any_thread: events the inbox holds before wh_emit() returns
     * WH_E_FULL; rounded up to a power of two; default 65,536. */
    size_t inbox_capacity;
    /* The engine's own transport (used when `transport` is NULL): which
     * of the library's transports carries requests whose endpoint says
     * WH_TRANSPORT_DEFAULT.  Default WH_TRANSPORT_DEFAULT (libcurl). */
    wh_transport_kind transport_kind;
    /* Emit idempotency: an event whose caller-supplied id was accepted
     * within the last dedupe_window_ms is not delivered again (wh_emit
     * returns WH_E_DUPLICATE).  0 (default): off.  Ids are remembered in
     * memory (at most dedupe_max_ids, default 1,000,000, about 56-80 bytes
     * plus the id's length each; when full the oldest is forgotten first),
     * or by a queue that remembers ids itself (the SQLite queue: a table in
     * its file, so across restarts). */
    int64_t dedupe_window_ms;
    size_t dedupe_max_ids;
    /* Operational events (endpoint.disabled, endpoint.recovered,
     * message.attempt.exhausted, message.attempt.failing) are emitted to the
     * endpoint with this id, as JSON events of those types, when it exists.
     * NULL (default): none.  Events about that endpoint itself are not
     * sent. */
    const char *operational_endpoint;
    /* Batch-mode endpoints: one call per request with all its events
     * (wh_batch_outcome) instead of one on_outcome call per event, so a
     * 1,000-event batch makes one callback.  Endpoints in single mode still
     * report to on_outcome.  NULL (default): every outcome goes to
     * on_outcome.  Cannot be combined with outcome_queue (wh_engine_new
     * fails with WH_E_INVAL). */
    wh_batch_outcome_fn on_batch_outcome;
    void *batch_outcome_user;
} wh_engine_options;

WH_EXTERN void wh_engine_options_init_sized(wh_engine_options *o, size_t size);
/* Fill `o` with defaults.  Always use this before setting fields, so an
 * older program keeps working with a newer library. */
#define wh_engine_options_init(o) wh_engine_options_init_sized((o), sizeof *(o))

/* Create an engine.  opts may be NULL for all defaults.
 * Returns NULL on failure; if err is not NULL it receives the status:
 * WH_E_VERSION (opts->struct_size, the clock's, the transport's or the
 * queue's version or a missing method), WH_E_NOMEM, or the status of the
 * default transport or queue that could not start; WH_E_INVAL or WH_E_IO
 * for a bad network option (ssrf_allow, TLS fields; the reason goes to
 * on_log); WH_E_INVAL when on_batch_outcome and outcome_queue are both set.
 * Ownership: on success the engine owns opts->transport when
 * transport_owned is 1 and opts->queue when queue_owned is 1, and destroys
 * them in wh_engine_free().  On failure it takes nothing, on every path: a
 * transport or queue handed in stays the caller's whatever *_owned says (free
 * it with wh_transport_free() / wh_queue_free()); only the defaults the
 * engine made itself are destroyed. */
WH_EXTERN wh_engine *wh_engine_new(const wh_engine_options *opts, int *err);

/* Destroy an engine.  Jobs still queued or in flight in the in-memory queue
 * are reported once through the outcome callback as WH_DEAD with error
 * WH_E_CANCELLED, so nothing disappears silently; call wh_flush() first for
 * a graceful shutdown.  Safe with NULL; deferred when called from a
 * callback. */
WH_EXTERN void wh_engine_free(wh_engine *e);

/* Message describing the engine's most recent failure (a status plus detail
 * such as the offending key or header).  Valid until the next engine call. */
WH_EXTERN const char *wh_last_error(const wh_engine *e);

/* ---- endpoints ----------------------------------------------------------- */
/* How events travel: one request each, or gathered into batches.  A batch
 * leaves when it holds batch_max_events or batch_max_bytes, or when its
 * oldest event has waited batch_linger_ms; it is retried as a unit and keeps
 * one delivery id across its retries. */
typedef enum wh_mode { WH_MODE_SINGLE = 0, WH_MODE_BATCH = 1 } wh_mode;

/* The body of one event.  In batch mode the request body is a JSON array of
 * these, except WH_BODY_PUSHER, whose envelope holds all the batch's events.
 * Payloads are copied in as emitted, never re-parsed. */
typedef enum wh_body {
    WH_BODY_RAW = 0,       /* the event's data exactly as emitted */
    WH_BODY_STANDARD = 1,  /* {"type":T,"timestamp":"<RFC 3339>","data":D}
                              (Standard Webhooks' recommended shape) */
    WH_BODY_PUSHER = 2     /* {"time_ms":N,"events":[{"name":T,"channel":C,
                              "event":T,"data":D}]} (Pusher / Soketi) */
} wh_body;

/* How requests are signed.  Every scheme is HMAC-SHA256 with the endpoint's
 * secrets except RSA. */
typedef enum wh_sign_scheme {
    WH_SIGN_DEFAULT = 0,    /* the preset's scheme */
    WH_SIGN_NONE = 1,       /* no signature header */
    WH_SIGN_STANDARD = 2,   /* Standard Webhooks: "v1,<base64 HMAC(id.ts.body)>",
                               one space-separated entry per secret */
    WH_SIGN_HMAC_HEX = 3,   /* lowercase hex HMAC of the body (Pusher, Stream's
                               X-SIGNATURE, Sendbird); first secret */
    WH_SIGN_RSA_SHA256 = 4  /* base64 RSA-SHA256 (PKCS#1 v1.5) of the body with
                               private_key_pem (Dyte) */
} wh_sign_scheme;

/* Randomisation of retry delays (the engine's seeded generator draws it,
 * so wh_engine_options.seed makes it reproducible). */
typedef enum wh_jitter {
    WH_JITTER_NONE = 0,    /* the delay as computed */
    WH_JITTER_FULL = 1,    /* uniform in [0, delay] */
    WH_JITTER_EQUAL = 2,   /* delay/2 + uniform in [0, delay/2] */
    WH_JITTER_PERCENT = 3  /* uniform in delay * (1 +- retry_jitter_percent %) */
} wh_jitter;

typedef struct wh_endpoint_options {
    size_t struct_size;          /* set by wh_endpoint_options_init() */
    const char *id;              /* stable id; default "ep-<handle>" */
    const char *url;             /* http:// or https:// (required) */
    /* Event types subscribed to.  event_types == NULL: every event.
     * Otherwise n_event_types names, "*" matching any type; n == 0 with a
     * non-NULL pointer subscribes to nothing. */
    const char *const *event_types;
    size_t n_event_types;
    /* Channel filters, both must hold when set (NULL = no filter). */
    const char *channel_prefix;
    const char *channel_suffix;
    /* Standard Webhooks secrets "whsec_<base64>" (raw strings are used as
     * bytes), or ed25519 secret keys "whsk_<base64>" ("v1a," signatures;
     * OpenSSL build only, see wh_sign_standard).  Several secrets produce
     * several signatures (key rotation, kinds may mix).
     * None: requests are not signed. */
    const char *const *secrets;
    size_t n_secrets;
    /* Extra static headers, "Name: value" each (no CR, LF or NUL). */
    const char *const *headers;
    size_t n_headers;
    uint32_t timeout_ms;         /* per attempt; default 10,000 */
    uint32_t connect_timeout_ms; /* default 5,000 (capped by timeout_ms) */
    uint32_t max_attempts;       /* total attempts, default 8 */
    uint32_t retry_initial_ms;   /* first retry delay, default 2,000 */
    uint32_t retry_max_ms;       /* cap, default 300,000 (5 min) */
    uint32_t retry_multiplier;   /* default 2 */
    uint32_t max_in_flight;      /* concurrent requests, default 30 */

    /* ---- batching, bodies, header names, signing schemes ---- */
    wh_mode mode;                /* WH_MODE_SINGLE (default) or WH_MODE_BATCH */
    uint32_t batch_max_events;   /* events per request, default 1,000 */
    uint32_t batch_max_bytes;    /* body bytes per request, default 1 MiB */
    uint32_t batch_linger_ms;    /* wait for more events, default 50 */
    wh_body body;                /* body of each event, default WH_BODY_RAW */
    /* Header names and signing scheme come from a preset, whose names the
     * fields below override one by one (NULL keeps the preset's name, ""
     * sends no such header):
     *   preset    id            timestamp         attempt           signature           api key      signing
     *   standard  webhook-id    webhook-timestamp webhook-attempt   webhook-signature   -            STANDARD
     *   svix      svix-id       svix-timestamp    svix-attempt      svix-signature      -            STANDARD
     *   stream    X-WEBHOOK-ID  -                 X-WEBHOOK-ATTEMPT X-SIGNATURE         X-API-KEY    HMAC_HEX
     *   dyte      dyte-uuid     -                 -                 dyte-signature      -            RSA_SHA256
     *   pusher    -             -                 -                 X-Pusher-Signature  X-Pusher-Key HMAC_HEX
     *   sendbird  -             -                 -                 x-sendbird-signature -           HMAC_HEX
     * NULL selects "standard".  A scheme that needs keys signs only when
     * they are given (secrets, or private_key_pem for RSA). */
    const char *preset;
    const char *id_header;       /* delivery id, identical on retries */
    const char *timestamp_header;/* Unix seconds of the attempt */
    const char *attempt_header;  /* attempt number, from 1 */
    const char *signature_header;
    const char *api_key_header;
    const char *api_key;         /* value sent in api_key_header (NULL: none) */
    wh_sign_scheme signing;      /* WH_SIGN_DEFAULT: the preset's scheme */
    const char *private_key_pem; /* WH_SIGN_RSA_SHA256: PEM private key */

    /* ---- retry policy, limits and endpoint health ----------------------
     * README "Retry policy, limits and endpoint health" explains each knob;
     * wh_endpoint_options_retry_preset() fills them from a named preset.
     * A failed attempt is retried when its failure is retryable (network
     * error, timeout, HTTP 408, 429, 5xx, plus the 3xx/4xx chosen below),
     * fewer than the applicable maximum attempts were made and the retry
     * starts inside the budget.  Otherwise the delivery is WH_DEAD. */
    wh_jitter retry_jitter;      /* randomise each delay; default NONE */
    uint32_t retry_jitter_percent; /* WH_JITTER_PERCENT: +-this %, default 20 */
    /* Explicit retry delays instead of the formula: entry i is the wait
     * after failed attempt i+1 (so at most n + 1 attempts).  Not capped by
     * retry_max_ms.  NULL: initial * multiplier^n, capped. */
    const uint32_t *retry_schedule_ms;
    size_t n_retry_schedule;
    /* Maximum attempts by the class of the latest failure (Stream's rule):
     * after a failure of that class, no further attempt is made once this
     * many attempts were made in all.  0: only max_attempts applies. */
    uint32_t max_attempts_status;  /* a retryable HTTP status */
    uint32_t max_attempts_network; /* connection or other network error */
    uint32_t max_attempts_timeout; /* the attempt timed out */
    /* Total time budget from the start of the first attempt: no attempt
     * starts at or after it, and a later attempt's timeout is shortened so
     * it ends by then.  0 (default): no budget. */
    uint32_t retry_budget_ms;
    int retry_3xx;               /* 1: retry 3xx answers (default 0: dead) */
    int retry_4xx;               /* 1: retry every 4xx (default 0: 408, 429
                                    and retry_statuses only) */
    const int *retry_statuses;   /* further statuses retried, e.g. 409 */
    size_t n_retry_statuses;
    /* 1 (default): a Retry-After (seconds or HTTP date) on a 429 or 503
     * answer sets the next delay instead of the formula, capped by
     * retry_max_ms; beyond the budget the delivery is dead. */
    int honor_retry_after;
    /* Token-bucket request rate: at most rate_limit requests per
     * rate_period_ms on average, bursts of up to rate_burst (0: rate_limit).
     * rate_limit 0 (default): no limit.  A batch counts as one request. */
    uint32_t rate_limit;
    uint32_t rate_period_ms;     /* default 1,000; at most 86,400,000 */
    uint32_t rate_burst;
    /* 1: strict FIFO per endpoint: one request at a time, and a failing
     * event (or batch) blocks the endpoint until it is delivered or dead. */
    int ordered;
    /* Health.  Events for a paused or disabled endpoint stay queued. */
    int disable_on_410;          /* 1 (default): HTTP 410 disables at once */
    uint32_t breaker_failures;   /* consecutive failed attempts that pause
                                    the endpoint; 0 (default): no breaker */
    uint32_t breaker_cooldown_ms; /* pause before one probe; default 30,000 */
    uint32_t disable_after_ms;   /* failing without a success for this long
                                    disables it; 0 (default): never */

    /* ---- TLS (README "TLS") -------------------------------------------
     * Certificates are always verified (chain and host name).  A field left
     * NULL takes the engine's default of the same name (wh_engine_options),
     * else libcurl's: the system trust store, TLS 1.2 at least. */
    const char *ca_file;          /* PEM bundle of trusted CAs; replaces the
                                     system store for this endpoint */
    const char *ca_path;          /* directory of hashed CA certificates
                                     (openssl rehash) */
    const char *client_cert_file; /* PEM client certificate (mutual TLS);
                                     requires client_key_file */
    const char *client_key_file;  /* PEM private key of client_cert_file */
    const char *tls_min_version;  /* "1.2" (default) or "1.3" */
    const char *pinned_public_key;/* "sha256//<base64>" (several joined by
                                     ';'): the server's public key must match
                                     one, else the attempt fails */
    /* 1: accept any certificate and host name.  Anyone on the path can then
     * read and change the deliveries.  For tests against self-signed
     * servers only; use ca_file instead. */
    int insecure_skip_verify_DANGEROUS;

    /* Transport of this endpoint's requests (JSON "transport": "lean",
     * "curl", "auto").  Default WH_TRANSPORT_DEFAULT: the engine's
     * transport_kind.  Another value needs the engine's own transport
     * (wh_engine_options.transport NULL): else WH_E_INVAL. */
    wh_transport_kind transport;
    /* Payload filter: a JSON object of conditions on the event's payload
     * (paths "data", "data.a.b", operators $eq $neq $gt $gte $lt $lte $in
     * $nin $exist $regex, combinators $and/$or; see README "Payload
     * filters"), compiled once here.  NULL (default): no condition. */
    const char *payload_filter_json;
    /* WH_DELIVERY_AT_LEAST_ONCE (default) or WH_DELIVERY_AT_MOST_ONCE: retry
     * only when the connection failed before any request byte was sent
     * (WH_E_CONNECT); any other failure is dead at once. */
    int delivery;
    /* 0 (default): obey a receiver's "webhook-delivery" response header
     * ("disable" disables the endpoint, "abort-message" dead-letters that
     * event without further retries).  1: ignore it. */
    int ignore_delivery_control;
} wh_endpoint_options;

#define WH_DELIVERY_AT_LEAST_ONCE 0
#define WH_DELIVERY_AT_MOST_ONCE 1

WH_EXTERN void wh_endpoint_options_init_sized(wh_endpoint_options *o,
                                              size_t size);
#define wh_endpoint_options_init(o) \
    wh_endpoint_options_init_sized((o), sizeof *(o))

/* Add an endpoint.  Every string is copied.  Returns a positive endpoint
 * handle, or WH_E_INVAL (NULL/zero where required; a bad tls_min_version
 * or pinned_public_key), WH_E_URL (also http:// with https_only),
 * WH_E_HEADER, WH_E_SECRET, WH_E_IO (a TLS file that cannot be read),
 * WH_E_EXISTS (id in use), WH_E_VERSION, WH_E_NOMEM, WH_E_RECURSIVE.
 * wh_last_error() says which field was wrong. */
WH_EXTERN int wh_endpoint_add(wh_engine *e, const wh_endpoint_options *opts);

/* Remove an endpoint.  Its queued and in-flight deliveries are reported as
 * WH_DEAD with WH_E_CANCELLED.  Returns WH_OK, WH_E_NOT_FOUND or
 * WH_E_RECURSIVE. */
WH_EXTERN int wh_endpoint_remove(wh_engine *e, int endpoint);

/* Handle of the endpoint with stable id `id`, or WH_E_NOT_FOUND. */
WH_EXTERN int wh_endpoint_find(wh_engine *e, const char *id);

/* Fill the retry policy of `o` (timeouts, attempts, backoff, jitter,
 * schedule, budget, which statuses retry, Retry-After; and max_in_flight
 * for "realtime") from a named preset reproducing a service's published
 * rules; set fields afterwards to adjust it.  Fields of other kinds are
 * left alone.  Presets: "default" (the library defaults), "realtime",
 * "sendbird", "dyte", "stream", "svix", "pusher" (README lists each
 * value and its source).  Returns WH_OK, WH_E_INVAL (NULL) or
 * WH_E_NOT_FOUND (unknown name). */
WH_EXTERN int wh_endpoint_options_retry_preset(wh_endpoint_options *o,
                                               const char *name);

/* Enable (1) or disable (0) an endpoint.  Enabling also resets its circuit
 * breaker and failure streak and sends what is queued; disabling keeps its
 * events queued (requests in flight finish).  Reported through on_health.
 * Returns WH_OK, WH_E_NOT_FOUND or WH_E_RECURSIVE. */
WH_EXTERN int wh_endpoint_enable(wh_engine *e, int endpoint, int enable);

/* The endpoint's wh_ep_state (>= 0), or WH_E_NOT_FOUND. */
WH_EXTERN int wh_endpoint_state(wh_engine *e, int endpoint);

/* Add every endpoint described by a JSON document:
 *   {"endpoints": [{"id": "...", "url": "...", "event_types": ["*"],
 *                   "secret": "whsec_..." | ["whsec_...", ...],
 *                   "headers": {"Name": "value"},
 *                   "filter": {"channel_name_starts_with": "...",
 *                              "channel_name_ends_with": "..."},
 *                   "timeout_ms": 10000, "connect_timeout_ms": 5000,
 *                   "max_attempts": 8, "max_in_flight": 30,
 *                   "retry": {"initial_ms": 2000, "max_ms": 300000,
 *                             "multiplier": 2}}]}
 * "retry" may also be a preset name ("retry": "stream", see
 * wh_endpoint_options_retry_preset) or an object with "preset" plus any of
 * "jitter" ("none"|"full"|"equal"|"percent"), "jitter_percent",
 * "schedule_ms" [..], "max_attempts_status", "max_attempts_network",
 * "max_attempts_timeout", "budget_ms", "retry_3xx", "retry_4xx",
 * "statuses" [..], "retry_after" (booleans for the flags); explicit keys
 * override the preset.  "limits": {"rate", "period_ms", "burst",
 * "ordered"} and "health": {"disable_on_410", "breaker_failures",
 * "breaker_cooldown_ms", "disable_after_ms"} set the fields of the same
 * names in wh_endpoint_options.  The TLS fields of wh_endpoint_options are
 * endpoint keys of the same names; at the top of the document the same TLS
 * keys are the defaults of its endpoints, and "https_only", "ssrf_guard",
 * "ssrf_allow" and "proxy" set the engine-wide options of those names
 * (applied once every endpoint of the document was added; the guard and
 * proxy need the default libcurl transport, else WH_E_CONFIG).
 * README.md lists every key.
 * All or nothing: the document is fully validated before any endpoint is
 * added.  Unknown keys, wrong types and invalid values are WH_E_CONFIG (or
 * WH_E_JSON for unparsable text) and wh_last_error() names the key and the
 * endpoint index, e.g. "endpoints[2].timeout_ms: expected a positive
 * integer".  A string or key holding a NUL character (\u0000) is
 * WH_E_CONFIG naming its path; nesting deeper than 1000 arrays/objects is
 * WH_E_TOO_LARGE; an id already in the engine WH_E_EXISTS; WH_E_NOMEM. */
WH_EXTERN int wh_config_load(wh_engine *e, const char *json, size_t len);
/* The same, reading the document from a file (WH_E_IO if unreadable). */
WH_EXTERN int wh_config_load_file(wh_engine *e, const char *path);

/* ---- events -------------------------------------------------------------- */
/* Accept an event for delivery.  `type` is required; `channel` may be NULL;
 * `data` is a JSON document of `len` bytes, copied once however many
 * endpoints receive it; `id` may be NULL to generate a delivery id (a
 * UUIDv7), otherwise it is used as the delivery id (1..128 printable
 * characters, no spaces).
 * Returns the number of endpoints the event was queued for (0 when nothing
 * subscribes), or WH_E_INVAL (also: type or channel not valid UTF-8),
 * WH_E_JSON, WH_E_TOO_LARGE, WH_E_FULL (queue at capacity: back off and
 * retry), WH_E_UNAVAILABLE (a shared queue's store is unreachable and the
 * local buffer is full: back off and retry), WH_E_NOMEM.  On an error nothing was
 * queued. Once it returns >= 0 the event is delivered to every endpoint
 * counted, or reported WH_DEAD through the outcome callback.
 * With dedupe_window_ms set, an `id` accepted within the window returns
 * WH_E_DUPLICATE (nothing queued; counted in wh_stats.duplicates, not in
 * rejected).  Endpoints with a payload filter count only when the payload
 * satisfies it (the payload is parsed once per call, and only when some
 * subscribed endpoint has one).
 *
 * Threads: with wh_engine_options.emit_any_thread = 1, wh_emit may be
 * called from any thread, concurrently.  It checks its arguments as above,
 * copies the event into a bounded lock-free inbox and wakes the engine
 * (wh_wakeup); the engine's thread routes and enqueues it in its next
 * wh_poll / wh_socket_action / wh_flush.  It then returns 0 when the event
 * was accepted (the fan-out count is not known yet) and WH_E_FULL when the
 * inbox is full (nothing was taken: back off and retry; never a silent
 * drop; a queue at capacity leaves events in the inbox, so producers see
 * WH_E_FULL).  An argument error is described by wh_last_error(e) in the
 * thread that called wh_emit (a thread-local message).  Duplicates
 * (dedupe_window_ms) are then found on the engine's thread: such an event is
 * counted in wh_stats.duplicates and not delivered, wh_emit having returned
 * 0. */
WH_EXTERN int wh_emit(wh_engine *e, const char *type, const char *channel,
                      const char *data, size_t len, const char *id);

/* An event for wh_emit_ex: wh_emit's arguments plus per-message headers. */
typedef struct wh_event {
    size_t struct_size;          /* set by wh_event_init() */
    const char *type;            /* required */
    const char *channel;         /* or NULL */
    const char *data;            /* JSON payload */
    size_t len;
    const char *id;              /* or NULL: a UUIDv7 is made */
    /* Extra headers for this event's requests, "Name: value" each, checked
     * like wh_endpoint_options.headers.  Reserved names are refused: Host,
     * Content-Length, Content-Type, Content-Encoding, Transfer-Encoding,
     * Connection, Expect, TE, Upgrade, User-Agent and any "webhook-*" name.
     * A name an endpoint sends itself (its id, timestamp, attempt,
     * signature or API-key header) is not sent twice: the endpoint's wins.
     * Sent in single mode; a batch (several events in one request) carries
     * none.  At most 64 headers, 8 KiB in all.  The queue must store them
     * (the in-memory and SQLite queues do; the Redis queue does not:
     * WH_E_INVAL). */
    const char *const *headers;
    size_t n_headers;
    /* 1: a trusted producer vouches that data is JSON: it is not validated
     * (as with validate_json = 0, for this event only; the validation is
     * the larger part of wh_emit's cost), and invalid JSON would be sent as
     * it is.  Default 0: validated when validate_json is set (WH_E_JSON). */
    int trusted_json;
} wh_event;

WH_EXTERN void wh_event_init_sized(wh_event *ev, size_t size);
#define wh_event_init(ev) wh_event_init_sized((ev), sizeof *(ev))

/* wh_emit with the fields of `ev` (which may carry headers).  Returns what
 * wh_emit returns; WH_E_HEADER (a bad or reserved header, named in
 * wh_last_error), WH_E_INVAL (headers the queue cannot store) and
 * WH_E_VERSION (struct_size) too. */
WH_EXTERN int wh_emit_ex(wh_engine *e, const wh_event *ev);

/* ---- metrics --------------------------------------------------------------- */
/* Prometheus text exposition (format 0.0.4) of the engine's counters:
 * webhook_events_emitted_total, _rejected_total, _duplicate_total,
 * webhook_requests_total, and per endpoint (label endpoint="<id>")
 * webhook_delivered_total, webhook_attempts_failed_total{class=http_4xx|
 * http_5xx|http_other|connect|timeout|transport}, webhook_retries_total,
 * webhook_dead_total, webhook_in_flight, webhook_queued,
 * webhook_endpoint_state{state=...} and the histogram
 * webhook_delivery_latency_seconds (wh_emit to the 2xx answer).
 * snprintf style: writes at most len - 1 bytes and a NUL (buf may be NULL
 * when len is 0) and returns the length of the whole text, so a caller can
 * size its buffer with a first call.  Returns 0 when e is NULL. */
WH_EXTERN size_t wh_metrics_write(wh_engine *e, char *buf, size_t len);

/* ---- driving the engine -------------------------------------------------- */
/* Do all work that is due: start requests for due jobs, process network
 * I/O and completions, schedule retries, then report the outcomes and
 * health changes of the round to the callbacks.  Waits up to
 * max_wait_ms for network activity or the next due job when there is
 * nothing to do now (0 = never block).  Returns the number of outcomes
 * reported in this call, or WH_E_RECURSIVE. */
WH_EXTERN int wh_poll(wh_engine *e, int max_wait_ms);

/* wh_poll(e, 0) that stops starting requests once budget_us microseconds
 * (CLOCK_MONOTONIC, from the call's start) are spent; what it leaves stays
 * due and is started by the next call, in order.  For a frame budget
 * (wh_tick).  With wh_fd() in use it also leaves the sockets that are
 * still ready when the time is up to the next call (one at least is
 * handled); it always reports the round's outcomes and starts at least
 * one request when any is due (a
 * tiny budget still moves), and looks at the clock between groups of up
 * to 4 requests, so it overruns the budget by at most 4 requests' work
 * (a few microseconds each over the lean transport, tens over libcurl).
 * Returns the number of outcomes reported, WH_E_INVAL (NULL engine,
 * budget_us < 0) or WH_E_RECURSIVE. */
WH_EXTERN int wh_poll_budget(wh_engine *e, int64_t budget_us);

/* Milliseconds until wh_poll() must next be called: 0 when work is due now,
 * -1 when nothing is queued or in flight. */
WH_EXTERN int64_t wh_timeout_ms(wh_engine *e);

/* ---- living in the host's loop ------------------------------------------ *
 * Three ways to drive an engine besides calling wh_poll() on a timer; the
 * README's "Living in the host's loop" shows each with code.
 *
 *  1. Loop hooks: wh_loop_attach() hands the engine the host's socket
 *     watcher and one timer; the host reports readiness and the fired timer
 *     with wh_socket_action().  Cost follows ready sockets, not running
 *     requests; idle, no timer is armed and nothing wakes up.  The adapters
 *     in <webhook/adapters/libuv.h> and <webhook/adapters/libevent.h> do
 *     this for libuv and libevent.
 *  2. One pollable fd: wh_fd() (poll(2), select, epoll-in-epoll, asyncio's
 *     add_reader): when it is readable, call wh_poll(e, 0).
 *  3. A fixed tick: wh_tick() in <webhook/adapters/tick.h> (game loops).
 *
 * Threads: every function of this header belongs to the engine's thread
 * (one thread at a time) except wh_wakeup() and, with emit_any_thread = 1,
 * wh_emit(), which may be called from any thread at any time while the
 * engine lives.  The library starts no thread of its own; libcurl's
 * resolver runs a short-lived thread per lookup of a host name (Debian's
 * libcurl uses the threaded resolver, not c-ares); URLs with IP literals
 * never start one.
 *
 * What may block: wh_poll() with max_wait_ms > 0 and wh_flush() (by
 * design).  wh_socket_action() and wh_poll(e, 0) do not wait for the
 * network; the durable queues bound their waits inside them (SQLite's busy
 * wait is at most 5 ms per call inside wh_poll/wh_socket_action; see
 * <webhook/sqlite.h> and <webhook/redis.h> for Redis). */
#define WH_POLL_IN  1
#define WH_POLL_OUT 2
#define WH_SOCKET_TIMEOUT (-1)          /* fd value for "the timer fired" */

#define WH_LOOP_VERSION 1
typedef struct wh_loop {
    int version;                        /* WH_LOOP_VERSION */
    void *user;                         /* passed to watch and timer */
    /* Start, change or stop (events == 0) watching fd for WH_POLL_IN /
     * WH_POLL_OUT.  *sock is a per-fd slot the host may use for its
     * watcher (NULL at first; set it; it is passed back on every change of
     * the same fd, and the host frees its watcher when events == 0).  The
     * engine stops watching an fd before it is closed.  Return 0, or -1
     * when the fd cannot be watched (the engine logs it). */
    int (*watch)(void *user, int fd, int events, void **sock);
    /* Arm (ms >= 0: fire once after ms), replace, or cancel (ms < 0) the
     * single timer.  When it fires: wh_socket_action(e, WH_SOCKET_TIMEOUT,
     * 0).  Return 0. */
    int (*timer)(void *user, int64_t ms);
} wh_loop;

/* Attach the host's loop (the struct is copied; `user` must outlive the
 * attachment), or detach it with loop == NULL: the engine then stops
 * watching every fd (watch(.., 0, ..)) and cancels the timer before it
 * returns, and wh_poll() drives it again.  Before it returns, attach
 * watches the engine's wakeup fd and arms the timer if work is due.
 * Returns WH_OK, WH_E_INVAL (NULL engine, missing watch/timer, or a
 * version-2 transport with requests in flight: attach before the first
 * wh_poll or when wh_stats says in_flight 0), WH_E_EXISTS (a loop or
 * wh_fd() is already attached: detach first), WH_E_VERSION (loop version),
 * WH_E_IO (no eventfd), WH_E_RECURSIVE.  A version-1 transport works too:
 * the engine then arms the timer from the transport's timeout_ms() and
 * calls its perform() when it fires. */
WH_EXTERN int wh_loop_attach(wh_engine *e, const wh_loop *loop);
/* The loop attached with wh_loop_attach(), or NULL (none, or wh_fd()). */
WH_EXTERN const wh_loop *wh_loop_attached(const wh_engine *e);
/* The host's report: fd (one the engine asked to watch) is ready for
 * `events` (WH_POLL_IN | WH_POLL_OUT; pass both on an error condition),
 * or fd == WH_SOCKET_TIMEOUT: the timer fired.  Does the I/O of that
 * socket, the work that is due, starts requests freed by completions in
 * the same call, reports outcomes, then re-arms the timer.  Never waits.
 * Returns the number of outcomes reported, or WH_E_INVAL (no loop
 * attached), WH_E_RECURSIVE. */
WH_EXTERN int wh_socket_action(wh_engine *e, int fd, int events);
/* One pollable file descriptor for the whole engine: an epoll set holding
 * the transport's sockets, a timerfd for the next deadline and the wakeup
 * eventfd.  It is readable exactly when wh_poll(e, 0) has work; then call
 * wh_poll(e, 0) (wh_poll(e, N) waits on it).  The first call sets it up
 * (the same rules as wh_loop_attach: WH_E_EXISTS when a loop is attached,
 * WH_E_INVAL with requests in flight); later calls return the same fd.
 * The engine owns it (closed by wh_engine_free).  Returns the fd (>= 0) or
 * a negative status (also WH_E_IO). */
WH_EXTERN int wh_fd(wh_engine *e);
/* Wake the engine: wh_fd() turns readable, the attached loop's watch of
 * the wakeup fd fires, a wh_poll() that is waiting returns (transports of
 * vtable version 2).  Safe from any thread, at any time while the engine
 * lives.  Returns WH_OK or WH_E_INVAL (NULL). */
WH_EXTERN int wh_wakeup(wh_engine *e);
/* 1 when wh_poll(e, 0) has something to do now (requests in flight,
 * events in the inbox, outcomes to report, a deadline due), 0 when not.
 * Makes no system call (reads the engine's clock).  For tick loops. */
WH_EXTERN int wh_work_due(wh_engine *e);

/* ---- pull API ------------------------------------------------------------ */
/* With wh_engine_options.outcome_queue = 1, outcomes are kept (strings
 * copied) instead of handed to on_outcome, and drained here, oldest
 * first.  Returns 1 and fills *out, whose strings are valid until the next
 * wh_outcome_next() or wh_engine_free(); 0 when none is waiting;
 * WH_E_INVAL (NULL, or outcome_queue not set).  The queue is told
 * (ack/retry) when the outcome is kept, so undrained outcomes hold no job;
 * they do hold memory: drain after each wh_poll/wh_socket_action. */
WH_EXTERN int wh_outcome_next(wh_engine *e, wh_outcome *out);

/* Drain for shutdown: poll until nothing is queued or in flight, or until
 * timeout_ms (engine clock) has passed; INT64_MAX waits as long as it takes
 * (the deadline saturates), a negative value is 0.  Returns WH_OK when
 * drained, WH_E_TIMEOUT when work remains (it stays queued; see wh_stats),
 * WH_E_RECURSIVE from a callback, or WH_E_INVAL when e is NULL. */
WH_EXTERN int wh_flush(wh_engine *e, int64_t timeout_ms);

/* ---- statistics ---------------------------------------------------------- */
typedef struct wh_stats {
    size_t struct_size;   /* set by wh_stats_get() */
    uint64_t emitted;     /* wh_emit calls accepted */
    uint64_t rejected;    /* wh_emit calls refused */
    uint64_t enqueued;    /* delivery jobs created (event x endpoint) */
    uint64_t requests;    /* HTTP attempts started */
    uint64_t delivered;   /* jobs delivered (2xx) */
    uint64_t retries;     /* attempts that failed and were rescheduled */
    uint64_t dead;        /* jobs dead-lettered (cancelled included) */
    uint64_t queued;      /* jobs waiting now (not in a running request) */
    uint64_t in_flight;   /* requests running now */
    uint64_t bytes_sent;  /* request body bytes */
    uint64_t duplicates;  /* wh_emit calls answered WH_E_DUPLICATE */
} wh_stats;

/* Copy the engine's counters into *out; `size` is sizeof *out as the
 * caller was compiled (the macro passes it), so counters added later are
 * not written past an older program's struct.  Returns WH_OK or WH_E_INVAL
 * (NULL, or size smaller than the first version of the struct). */
WH_EXTERN int wh_stats_get_sized(const wh_engine *e, wh_stats *out,
                                 size_t size);
#define wh_stats_get(e, out) wh_stats_get_sized((e), (out), sizeof *(out))

/* ---- queues and transports made by the library ---------------------------- */

/* What a queue created by the library holds. */
typedef struct wh_queue_info {
    size_t struct_size;          /* set by the caller: sizeof(wh_queue_info) */
    uint64_t jobs;               /* jobs stored (all endpoints, all
                                    processes; as of the last check) */
    uint64_t unbound_jobs;       /* jobs of endpoints this process has not
                                    configured (kept, not delivered here) */
    uint64_t pending;            /* accepted here, not yet written */
    uint64_t claimed;            /* claimed by this process now */
    int connected;               /* Redis: 1 when connected; others: 1 */
    int durable;                 /* 1: jobs outlive the engine (SQLite,
                                    Redis); 0: in memory */
} wh_queue_info;
/* Fill *out (set out->struct_size first) through the queue's info method
 * (every queue of this library has one).  Returns WH_OK, WH_E_INVAL (NULL,
 * struct_size too small, or a queue without an info method: a plug-in
 * queue of vtable version < 3) or WH_E_QUEUE (the store could not be
 * read). */
WH_EXTERN int wh_queue_info_get(wh_queue *q, wh_queue_info *out);

/* Destroy a queue created by the library (memory, SQLite, Redis) that was
 * not handed to an engine with queue_owned = 1.  Durable queues write what
 * is pending first.  Safe with NULL. */
WH_EXTERN void wh_queue_free(wh_queue *q);

/* Create the queue described by the "queue" member of a configuration
 * document (the wh_config_load format; other members are ignored):
 *   "queue": {"type": "memory", "max_events": N, "max_bytes": N}
 *   "queue": {"type": "sqlite", "path": "/var/lib/app/webhooks.db",
 *             "max_jobs": N, "max_bytes": N, "lease_ms": N,
 *             "poll_interval_ms": N, "synchronous": "normal" | "full",
 *             "producer_only": false}
 *   "queue": {"type": "redis", "url": "redis://HOST:PORT", "prefix": "wh",
 *             "consumer": "...", "lease_ms": N, "poll_interval_ms": N,
 *             "timeout_ms": N, "max_buffered": N, "max_jobs": N,
 *             "producer_only": false, "spool": "/var/lib/app/spool.db"}
 * No "queue" member: *out = NULL (use the engine's default queue).  Errors
 * are WH_E_INVAL (out or json NULL), WH_E_JSON, WH_E_TOO_LARGE (nesting),
 * WH_E_CONFIG (the message, naming the key, goes to err: "queue.lease_ms:
 * expected a positive integer"; the same text wh_config_load() reports for
 * the same document), WH_E_IO, WH_E_NOMEM, or the backend's status.
 * err may be NULL; it is "" on success. */
WH_EXTERN int wh_config_queue_new(const char *json, size_t len,
                                  wh_log_fn on_log, void *log_user,
                                  wh_queue **out, char *err, size_t err_size);

/* Destroy a transport created by the library (curl or scripted). */
WH_EXTERN void wh_transport_free(wh_transport *t);

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_H */
