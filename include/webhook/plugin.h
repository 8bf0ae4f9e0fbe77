/*
 * libwebhook plug-in interface: the clock, transport and queue vtables.
 *
 * For people who write a backend (a transport over another HTTP stack, a
 * queue over another store) or a test double.  Each vtable carries a
 * `version` and a `void *user`, and grows only at its end, so a backend
 * built against an older header keeps working: the engine reads a member
 * only when the vtable's version has it.  Host programs need only
 * <webhook/webhook.h>.
 */
#ifndef WEBHOOK_PLUGIN_H
#define WEBHOOK_PLUGIN_H

#include <webhook/webhook.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- clock vtable -------------------------------------------------------- */
/* Supplies "now" everywhere in the engine.  now_ms is monotonic (scheduling,
 * timeouts); wall_ms is Unix time in milliseconds (signature timestamps,
 * event timestamps).  The struct is copied by wh_engine_new(); `user` must
 * outlive the engine.  The engine reads now_ms per emit and per round and
 * derives wall time as now_ms + (wall_ms - now_ms), the offset re-read when
 * it is 100 ms old: a step of the wall clock shows within 100 ms. */
#define WH_CLOCK_VERSION 1
typedef struct wh_clock {
    int version;                 /* WH_CLOCK_VERSION */
    void *user;                  /* passed to every method */
    int64_t (*now_ms)(void *user);
    int64_t (*wall_ms)(void *user);
} wh_clock;

/* The default clock: CLOCK_MONOTONIC and CLOCK_REALTIME. */
WH_EXTERN const wh_clock *wh_clock_system(void);

/* ---- transport vtable ---------------------------------------------------- */
/* TLS settings of one request (an endpoint's, merged with the engine's
 * defaults; see wh_endpoint_options for each field).  NULL strings: the
 * transport's defaults. */
typedef struct wh_tls {
    const char *ca_file;
    const char *ca_path;
    const char *client_cert_file;
    const char *client_key_file;
    const char *pinned_public_key;
    int min_version;             /* 0: default (TLS 1.2), 12: 1.2, 13: 1.3 */
    int insecure_skip_verify_DANGEROUS;
} wh_tls;

/* One piece of a request body (wh_request.pieces): len bytes at data. */
typedef struct wh_body_piece {
    const void *data;
    size_t len;
} wh_body_piece;

/* A fully built request.  Every pointer stays valid until the transport has
 * reported the request's completion (or it was cancelled). */
typedef struct wh_request {
    const char *url;
    const char *const *headers; /* "Name: value" strings, already validated */
    size_t n_headers;
    const char *body;
    size_t body_len;
    uint32_t timeout_ms;         /* whole attempt, connect included */
    uint32_t connect_timeout_ms;
    void *token;                 /* engine's; handed back on completion */
    const wh_tls *tls;           /* NULL: the transport's TLS defaults */
    /* The endpoint's wh_transport_kind (WH_TRANSPORT_DEFAULT when it chose
     * none).  Only the library's own transport reads it; others ignore it. */
    int transport;
    /* ---- transport version 3 ---- */
    /* The body in pieces, only for a transport whose body_pieces() answered
     * 1 for this request: body_len bytes in n_pieces pieces, in order
     * (envelope text and the payloads where the queue stores them), and
     * body is NULL.  Otherwise n_pieces is 0 and body holds the whole body:
     * a transport that does not read these fields always gets it
     * contiguous. */
    const wh_body_piece *pieces;
    size_t n_pieces;
} wh_request;

/* The outcome of one request, as the transport reports it. */
typedef struct wh_response {
    int status;               /* HTTP status, 0 when no response arrived */
    int error;                /* WH_OK, WH_E_CONNECT, WH_E_TIMEOUT,
                                 WH_E_FORBIDDEN (address refused by the
                                 transport's SSRF guard: never retried) or
                                 WH_E_TRANSPORT (other network failure) */
    const char *error_msg;    /* NULL or a description of `error` */
    const char *retry_after;  /* Retry-After header value, or NULL */
    const char *body;         /* start of the response body (capped) */
    size_t body_len;
    /* ---- transport version 2 (read only when version >= 2) ---- */
    const char *delivery_control; /* webhook-delivery header value, or NULL */
} wh_response;

/* Called by a transport, from inside its perform (or socket_action)
 * method, once per finished request. The response and its strings are valid only during the call. */
typedef void (*wh_transport_done_fn)(void *done_user, void *token,
                                     const wh_response *res);

#define WH_TRANSPORT_VERSION 3
typedef struct wh_transport {
    int version;                 /* WH_TRANSPORT_VERSION */
    void *user;
    /* Start a request without blocking.  Returns WH_OK or a negative status
     * (then no completion will be reported for it). */
    int (*submit)(void *user, const wh_request *req);
    /* Make progress on all requests: do the I/O that is ready, waiting up to
     * wait_ms for some (0 = never block).  Reports each finished request
     * through done().  Returns the number of requests still running. */
    int (*perform)(void *user, int wait_ms, wh_transport_done_fn done,
                   void *done_user);
    /* Milliseconds until perform() must be called again for the transport's
     * own timers, or -1 when it has nothing running. */
    int64_t (*timeout_ms)(void *user);
    /* Abandon a submitted request; no completion is reported for it. */
    void (*cancel)(void *user, void *token);
    /* Release everything.  Called by wh_engine_free() only for a transport
     * the engine created itself. */
    void (*destroy)(void *user);

    /* ---- version 2 (read only when version >= 2; a version-1 transport
     * keeps working: the engine calls perform()) ---- */
    /* The engine hands the transport socket and timer hooks (the struct is
     * valid until the next set_loop): from now on the transport tells
     * loop->watch which of its fds to watch (events 0 before it closes
     * one) and arms loop->timer for its own timers, and the engine drives
     * it through socket_action().  perform() must keep working as well
     * (wh_flush).  loop == NULL: stop watching every fd (watch(.., 0, ..)
     * on the previous hooks), cancel the timer, back to perform().  Called
     * only while no request is running.  Returns WH_OK or a status. */
    int (*set_loop)(void *user, const wh_loop *loop);
    /* Readiness of one of the transport's fds (WH_POLL_IN/OUT), or
     * fd == WH_SOCKET_TIMEOUT: its timer is due.  Never waits.  Reports
     * finished requests through done() like perform(); done() may submit.
     * Returns the number of requests still running, or a status. */
    int (*socket_action)(void *user, int fd, int events, wh_transport_done_fn done,
                         void *done_user);
    /* Make a perform() that is waiting return soon.  Any thread.  May be
     * NULL. */
    void (*wakeup)(void *user);

    /* ---- version 3 (read only when version >= 3) ---- */
    /* 1 when a request like `req` (url, tls and transport set as they will
     * be at submit; no body, no headers) may be submitted with its body in
     * pieces (wh_request.pieces, which a transport sends with one
     * writev/sendmsg or copies), 0 when the transport wants it contiguous.
     * The engine asks before it builds a body and again before each attempt
     * of a body it built in pieces (it joins them when the answer became 0).
     * Never waits.  May be NULL: every body comes contiguous. */
    int (*body_pieces)(void *user, const wh_request *req);
} wh_transport;

/* ---- queue vtable -------------------------------------------------------- */
/* One delivery job (event x endpoint), as claimed from a queue.  Valid from
 * claim until ack or retry of the same job. */
typedef struct wh_job {
    void *ref;                /* the backend's reference */
    uint32_t endpoint;        /* endpoint slot (see wh_queue.claim) */
    uint32_t attempts;        /* attempts already made before this claim */
    int64_t first_attempt_ms; /* monotonic time of attempt 1, -1 if none */
    wh_event_view ev;
    /* Per-message headers stored with the event ("Name: value" lines
     * separated by '\n', NUL-terminated), or NULL.  Set on every claim by a
     * queue that has enqueue_with_headers (version 4); not read otherwise. */
    const char *headers;
    size_t headers_len;
} wh_job;

/* A queue stores delivery jobs.  Contract: at-least-once.  Jobs are enqueued
 * (one event fanned out to several endpoints, payload stored once), claimed
 * when due (leased to the caller), then acknowledged (delivered or
 * dead-lettered) or retried (due again later, attempts + 1).  Endpoints are
 * named by a small integer slot the engine assigns, and by their stable
 * string id for backends that persist jobs. */
#define WH_QUEUE_VERSION 5
typedef struct wh_queue {
    int version;                 /* WH_QUEUE_VERSION */
    void *user;
    /* Store `ev` once for n endpoints, due at `due_ms`.  Returns WH_OK,
     * WH_E_FULL when over capacity (nothing stored), or another status. */
    int (*enqueue)(void *user, const wh_event_view *ev, const uint32_t *slots,
                   const char *const *endpoint_ids, size_t n, int64_t due_ms);
    /* Claim up to `max` jobs of endpoint `slot` due at or before `now_ms`,
     * oldest first.  Returns how many were written to out[]. */
    size_t (*claim)(void *user, uint32_t slot, int64_t now_ms, wh_job *out,
                    size_t max);
    /* The job is finished (delivered or dead-lettered): forget it. */
    void (*ack)(void *user, wh_job *job);
    /* The attempt failed: count it and make the job due at `due_ms`. */
    void (*retry)(void *user, wh_job *job, int64_t due_ms);
    /* Give a claimed job back untouched (not an attempt): it is due again
     * as before and keeps its place, ahead of jobs enqueued after it. */
    void (*release)(void *user, wh_job *job);
    /* Earliest due time of an unclaimed job of `slot`, INT64_MAX if none. */
    int64_t (*next_due)(void *user, uint32_t slot);
    /* Unclaimed plus claimed jobs currently stored (all endpoints). */
    size_t (*size)(void *user);
    /* End of a poll round: make what was written durable (group commit).
     * May be NULL. */
    int (*commit)(void *user);
    /* Release everything.  Called by wh_engine_free() only for the queue the
     * engine created itself. */
    void (*destroy)(void *user);
    /* An endpoint was added: `slot` now names the endpoint whose stable id
     * is `endpoint_id`.  A persistent backend maps its stored jobs for that
     * id to the slot (jobs of a previous run become claimable).  May be
     * NULL. */
    int (*bind)(void *user, uint32_t slot, const char *endpoint_id);

    /* ---- version 2 (read only when version >= 2) ---- */
    /* WH_QUEUE_DURABLE: jobs outlive the engine.  wh_engine_free() then
     * leaves queued jobs in the queue and gives claimed ones back with
     * release(), instead of reporting them cancelled. */
    unsigned flags;
    /* Shared queues: other processes enqueue jobs and the leases of dead
     * claimers expire, so jobs appear that this engine did not enqueue.
     * Called at the end of every wh_poll round.  Returns 1 when jobs may
     * have become claimable (the engine then schedules every endpoint at its
     * next_due, or at *next_ms at the latest), 0 when there is nothing new,
     * or a negative status (logged).  *next_ms receives the engine time by
     * which poll() wants to run again.  May be NULL. */
    int (*poll)(void *user, int64_t now_ms, int64_t *next_ms);

    /* ---- version 3 (read only when version >= 3) ---- */
    /* Fill the fields of *out after struct_size (zeroed by the caller) with
     * what the queue holds: this is what wh_queue_info_get() returns for
     * it.  Returns WH_OK, or WH_E_QUEUE when the store could not be read
     * (the fields then hold what is known).  May be NULL. */
    int (*info)(void *user, wh_queue_info *out);

    /* ---- version 4 (read only when version >= 4) ---- */
    /* enqueue with per-message headers (wh_emit_ex): `headers` holds
     * headers_len bytes of "Name: value" lines separated by '\n' (already
     * validated), stored with the event and handed back in wh_job.headers.
     * May be NULL: the queue cannot store them, and wh_emit_ex with headers
     * returns WH_E_INVAL. */
    int (*enqueue_with_headers)(void *user, const wh_event_view *ev, const char *headers,
                                size_t headers_len, const uint32_t *slots,
                                const char *const *endpoint_ids, size_t n,
                                int64_t due_ms);

    /* ---- version 5 (read only when version >= 5) ---- */
    /* A queue that talks to a server over a socket (the Redis queue) lives
     * on the engine's loop like the transport: the engine hands it socket
     * and timer hooks (the host's from wh_loop_attach, or the engine's own
     * epoll set behind wh_fd and behind a plain wh_poll), valid until the
     * next set_loop.  The queue tells loop->watch which of its fds to watch
     * (events 0 before it closes one); loop->timer asks for a call of
     * poll() after ms (poll()'s *next_ms does the same at the end of every
     * round).  loop == NULL: stop watching (watch(.., 0, ..) on the previous
     * hooks); the queue must then still work from its other methods without
     * waiting.  Returns WH_OK or a status (then the queue is not given the
     * hooks).  May be NULL (with socket_action). */
    int (*set_loop)(void *user, const wh_loop *loop);
    /* Readiness (WH_POLL_IN/OUT) of one of the fds the queue watches.
     * Never waits.  Returns 1 when jobs may have become claimable (the
     * engine then schedules every endpoint at its next_due, as after
     * poll()), 0 when not, or a negative status (logged). */
    int (*socket_action)(void *user, int fd, int events);
} wh_queue;

#define WH_QUEUE_DURABLE 1u

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_PLUGIN_H */
