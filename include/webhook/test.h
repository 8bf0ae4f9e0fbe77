/*
 * libwebhook test doubles: a manual clock and a scripted transport.
 *
 * They ship in a separate static library, libwebhook-test.a (link it
 * before libwebhook), so hosts and bindings can test their own webhook
 * logic exactly, without sleeping and without a network: time only moves
 * when the test moves it, and the transport answers from a script.  They
 * are not exported by libwebhook.so.
 */
#ifndef WEBHOOK_TEST_H
#define WEBHOOK_TEST_H

#include <webhook/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- manual clock -------------------------------------------------------- */
typedef struct wh_manual_clock wh_manual_clock;

/* A clock whose monotonic time starts at `now_ms` and whose wall time starts
 * at `wall_ms`; both move only through set/advance.  NULL on OOM. */
WH_EXTERN wh_manual_clock *wh_manual_clock_new(int64_t now_ms, int64_t wall_ms);
WH_EXTERN void wh_manual_clock_free(wh_manual_clock *c);
/* The vtable to put in wh_engine_options.clock (valid while c lives). */
WH_EXTERN const wh_clock *wh_manual_clock_vtable(wh_manual_clock *c);
WH_EXTERN int64_t wh_manual_clock_now(const wh_manual_clock *c);
/* Move both times forward by ms (ms >= 0). */
WH_EXTERN void wh_manual_clock_advance(wh_manual_clock *c, int64_t ms);
/* Set the monotonic time (never backwards); wall time moves by as much. */
WH_EXTERN void wh_manual_clock_set(wh_manual_clock *c, int64_t now_ms);

/* ---- scripted transport -------------------------------------------------- */
/* Answers requests from rules instead of the network.  A request completes
 * `delay_ms` after it was submitted, on the given clock.  When a request's
 * delay exceeds its timeout_ms, it completes at the timeout with
 * WH_E_TIMEOUT.  If the clock is a wh_manual_clock passed as `manual`, a
 * perform() that is allowed to wait advances it to the next completion
 * (simulated time), so wh_poll(e, N) and wh_flush() work without sleeping.
 * With wh_fd() or a loop attached (vtable version 2: a fake socket, an
 * eventfd, is readable when a completion is due and the transport's timer
 * is armed for the next one), the engine does not wait in perform(): move
 * the manual clock yourself (wh_timeout_ms() says how far), then call
 * wh_poll(e, 0) or wh_socket_action(). */
WH_EXTERN int wh_transport_scripted_new(const wh_clock *clock,
                                        wh_manual_clock *manual,
                                        wh_transport **out);

/* Add a rule: requests whose URL equals `url` (NULL: any URL) are answered
 * with `status` (HTTP status, 0 for none) and `error` (WH_OK,
 * WH_E_CONNECT, WH_E_TIMEOUT, WH_E_TRANSPORT) after delay_ms (-1 = never:
 * the request hangs until its timeout).  `retry_after` (may be NULL) is
 * returned as the Retry-After header.  The rule applies to the next `count`
 * matching requests (0 = to all of them).  Rules are tried in the order
 * added; a request no rule matches gets 200 after 0 ms. */
WH_EXTERN int wh_scripted_rule(wh_transport *t, const char *url, int status,
                               int error, int64_t delay_ms,
                               const char *retry_after, unsigned count);

/* A request the scripted transport received. */
typedef struct wh_scripted_request {
    int64_t submitted_ms;     /* clock now_ms at submit */
    int64_t completed_ms;     /* when it completed, -1 while running */
    const char *url;
    const char *body;
    size_t body_len;
    int status;               /* what it was answered */
    int error;
} wh_scripted_request;

/* Number of requests received so far. */
WH_EXTERN size_t wh_scripted_count(const wh_transport *t);
/* Copy of request i's record (0 = first); pointers valid while t lives.
 * Returns WH_OK or WH_E_NOT_FOUND. */
WH_EXTERN int wh_scripted_get(const wh_transport *t, size_t i,
                              wh_scripted_request *out);
/* Value of header `name` (case-insensitive) of request i, or NULL. */
WH_EXTERN const char *wh_scripted_header(const wh_transport *t, size_t i,
                                         const char *name);

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_TEST_H */
