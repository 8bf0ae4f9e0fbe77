/* Internal declarations shared between the library's source files.
 * Nothing here is exported: the build uses -fvisibility=hidden and only
 * WH_EXTERN functions of include/webhook/ headers are visible. */
#ifndef WH_INTERNAL_H
#define WH_INTERNAL_H

#include <webhook/webhook.h>
#include <webhook/plugin.h>
#include <webhook/curl.h>
#include <webhook/lean.h>
#include <webhook/sqlite.h>
#include <webhook/redis.h>
#include <webhook/verify.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__GNUC__)
#  define WH_PRINTF(a, b) __attribute__((format(printf, a, b)))
#  define WH_LIKELY(x) __builtin_expect(!!(x), 1)
#  define WH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define WH_PRINTF(a, b)
#  define WH_LIKELY(x) (x)
#  define WH_UNLIKELY(x) (x)
#endif

/* CLOCK_MONOTONIC in nanoseconds (vDSO: no system call).  The one reader
 * of the real monotonic clock for the library's own bounds (round budgets,
 * per-call work limits, connection timers); the engine's schedule reads
 * its clock vtable instead, so tests can drive it. */
static inline int64_t wh__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define WH_USER_AGENT "libwebhook/" WH_VERSION_STRING

/* ---- allocation (overflow-checked) ---------------------------------------- */
void *wh__calloc(size_t n, size_t size);
char *wh__strdup(const char *s);
/* Options structs (first member size_t struct_size): fill `o` of the
 * caller's `size` from `defaults` (the library's struct is `full` bytes);
 * overlay a caller's struct `in` (NULL: nothing) onto `o`, which already
 * holds the defaults: WH_E_VERSION when in->struct_size is implausible. */
void wh__opts_init(void *o, size_t size, const void *defaults, size_t full);
int wh__opts_copy_in(void *o, size_t full, const void *in);          /* NULL -> NULL */
char *wh__strndup(const char *s, size_t n);

/* ---- validation (lib/validate.c) ------------------------------------------ */
/* 1 when `url` is an absolute http:// or https:// URL with a host and no
 * whitespace or control characters; else 0 and *why set to a static reason. */
int wh__url_valid(const char *url, const char **why);
/* Header line "Name: value": name is an RFC 7230 token, value has no CR, LF
 * or NUL.  Returns WH_OK or WH_E_HEADER with *why set. */
int wh__header_valid(const char *line, const char **why);
/* Same check for a separate name and value. */
int wh__header_pair_valid(const char *name, const char *value,
                          const char **why);
/* Strict RFC 8259 JSON validation without allocation: WH_OK or WH_E_JSON with
 * *offset set to the first bad byte. */
int wh__json_valid(const char *s, size_t len, size_t *offset);
/* wh__json_valid with its string scan chosen (tests, fuzzing): SSE2 where
 * compiled in (what wh__json_valid uses), or the portable SWAR one; the
 * two give the same status and offset. */
enum { WH__JSON_SIMD, WH__JSON_PORTABLE };
int wh__json_valid_path(const char *s, size_t len, size_t *offset, int path);
/* 1 when s is valid UTF-8 (no overlongs, surrogates or code points above
 * U+10FFFF); else 0 with *bad (may be NULL) at the first bad byte. */
int wh__utf8_valid(const char *s, size_t *bad);
/* wh_emit's event type and channel (NULL ok): WH_E_INVAL, naming the field
 * in wh_last_error, when one is not valid UTF-8. */
int wh__event_names_check(wh_engine *e, const char *type, const char *channel);
/* Custom header lines whose name is one the HTTP stack sets (Host,
 * Content-Length, Content-Type, Transfer-Encoding) or one of the n_delivery
 * delivery header names (NULL entries skipped): WH_E_HEADER naming
 * "<where>.headers[i]" and the header. */
int wh__headers_reserved_check(wh_engine *e, const char *where, const char *const *headers,
                               size_t n, const char *const *delivery, size_t n_delivery);
/* One allocation holding the URL and, after its NUL, the URL with any
 * password replaced by "***" ("user:***@host"); free() it.  The packed
 * pointer is the real URL; wh__url_redacted(packed) is the form to show in
 * outcomes, health events and logs. */
char *wh__url_dup_redacted(const char *url);
const char *wh__url_redacted(const char *packed);
/* HTTP-date (lib/httpdate.c): IMF-fixdate, RFC 850 or asctime (RFC 9110
 * 5.6.7), strictly; 1 with *out = Unix seconds, else 0.  now_s places an
 * RFC 850 two-digit year. */
int wh__http_date_parse(const char *s, size_t n, int64_t now_s, int64_t *out);
/* Retry-After: delay-seconds or an HTTP-date turned into a delay from
 * wall_ms (0 when in the past).  1 with *ms set, 0 when not understood. */
int wh__retry_after_parse(const char *v, int64_t wall_ms, int64_t *ms);

/* ---- signing (lib/sign.c) ------------------------------------------------- */
/* HMAC-SHA256 keyed state, precomputed once per secret.  Mbed TLS lives
 * behind these functions only, so a PSA port touches one file. */
typedef struct wh__hmac wh__hmac;
/* Decode a secret: "whsec_<base64>" -> bytes, anything else -> its bytes.
 * WH_E_SECRET when the whsec_ part is not valid base64 or is empty. */
int wh__hmac_new(const char *secret, wh__hmac **out);
void wh__hmac_free(wh__hmac *h);              /* zeroes the key; NULL ok */
typedef struct wh__iov { const void *p; size_t n; } wh__iov;
int wh__hmac_sha256(wh__hmac *h, const wh__iov *parts, size_t n,
                    uint8_t out[32]);
/* Standard base64 with padding.  Returns the length written (no NUL
 * appended); `out` must hold 4*ceil(n/3) bytes. */
size_t wh__base64_encode(const uint8_t *in, size_t n, char *out);
/* Signature header for an already-keyed list of secrets: writes
 * "v1,<b64> v1,<b64>..." NUL-terminated.  out_size >= 50 * n.  */
int wh__sign_standard_keyed(wh__hmac *const *keys, size_t n, const char *id,
                            int64_t timestamp_s, const char *body,
                            size_t body_len, char *out, size_t out_size);

/* A request signer for one endpoint: a scheme plus its keys, prepared once
 * (HMAC keyed state per secret, parsed RSA key). */
typedef struct wh__signer wh__signer;
/* scheme is never WH_SIGN_DEFAULT here.  WH_E_SECRET / WH_E_INVAL with *why
 * set on bad keys (no secret for an HMAC scheme, unparsable PEM, not an RSA
 * key). */
int wh__signer_new(wh_sign_scheme scheme, const char *const *secrets,
                   size_t n_secrets, const char *private_key_pem,
                   wh__signer **out, const char **why);
void wh__signer_free(wh__signer *s);   /* zeroes key material; NULL ok */
/* Upper bound of the header value length (without NUL). */
size_t wh__signer_max_len(const wh__signer *s);
/* Signature header value for one request, NUL-terminated in out.
 * Standard: over id "." ts "." body; the other schemes over the body. */
int wh__signer_sign(wh__signer *s, const char *id, int64_t timestamp_s,
                    const char *body, size_t body_len, char *out,
                    size_t out_size);
/* The same over a body in nb pieces (wh_request.pieces). */
int wh__signer_sign_pieces(wh__signer *s, const char *id, int64_t timestamp_s,
                           const wh_body_piece *body, size_t nb, char *out,
                           size_t out_size);

/* ---- randomness & ids (lib/ids.c) ----------------------------------------- */
typedef struct wh__rng { uint64_t s[4]; } wh__rng;
void wh__rng_seed(wh__rng *r, uint64_t seed);   /* seed 0 = from the OS */
uint64_t wh__rng_next(wh__rng *r);
/* UUIDv7 string (36 chars + NUL) for wall time wall_ms. */
void wh__uuid7(wh__rng *r, int64_t wall_ms, char out[37]);
/* The same UUID's 16 bytes (wh__uuid7 formats these). */
void wh__uuid7_bytes(wh__rng *r, int64_t wall_ms, uint8_t out[16]);
/* 1 when a caller-supplied delivery id is acceptable. */
int wh__id_valid(const char *id);

/* ---- SSRF guard (lib/ssrf.c) ------------------------------------------------ */
/* An address range.  IPv4 ranges are kept as their IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d, bits + 96), so one comparison covers both spellings. */
typedef struct wh__cidr {
    uint8_t addr[16];
    uint8_t bits;
} wh__cidr;
struct sockaddr;
/* Parse "10.0.0.0/8", "fd00::/8" or a single address ("127.0.0.1" = /32).
 * Bits past the prefix must be zero.  WH_OK, or WH_E_INVAL with *why set
 * (why may be NULL). */
int wh__cidr_parse(const char *s, wh__cidr *out, const char **why);
/* Replace *list (*n entries, owned) with a copy of src[0..n_src):
 * WH_OK, or WH_E_NOMEM with *list untouched. */
int wh__cidr_list_set(wh__cidr **list, size_t *n, const wh__cidr *src, size_t n_src);
/* 1 when addr (16 bytes, IPv4 as ::ffff:a.b.c.d) is inside c. */
int wh__cidr_contains(const wh__cidr *c, const uint8_t addr[16]);
/* Text of a 16-byte address (IPv4-mapped ones as dotted IPv4). */
void wh__addr_format(const uint8_t addr[16], char *out, size_t size);
/* The guard's verdict on a 16-byte address: 0 allowed (public, or inside
 * one of allow[]), 1 refused with msg set to e.g.
 * "127.0.0.1 is loopback (127.0.0.0/8)".  is_v6: the address came as an
 * IPv6 socket address (an IPv4-mapped one is then named as such). */
int wh__ssrf_check_addr(const uint8_t addr[16], int is_v6, const wh__cidr *allow,
                        size_t n_allow, char *msg, size_t msg_size);
/* The same for a socket address (AF_INET or AF_INET6; any other family is
 * refused). */
int wh__ssrf_check(const struct sockaddr *sa, size_t len, const wh__cidr *allow,
                   size_t n_allow, char *msg, size_t msg_size);

/* ---- network options of the engine and its endpoints (lib/backends.c) ------- */
/* Engine-wide: TLS defaults, https_only, and (for the default libcurl
 * transport) the SSRF guard and proxy.  Per endpoint: the TLS profile
 * handed to the transport with every request (wh_request.tls). */
struct wh__net;
struct wh__ep_net;
/* Called by wh_engine_new() after the transport exists: validates and
 * copies the network options of `o`; logs the reason through o->on_log on
 * failure (no engine to hold the message yet). */
int wh__net_engine_init(wh_engine *e, const wh_engine_options *o);
void wh__net_engine_free(wh_engine *e);
/* Check an endpoint's network options (https_only, TLS fields); on error
 * sets the last error naming `where`.field. */
int wh__net_ep_check(wh_engine *e, const wh_endpoint_options *o, const char *where);
/* The endpoint's merged TLS profile (endpoint fields over engine
 * defaults), or NULL when it has none of its own and the engine has no
 * defaults.  *out NULL with WH_OK is fine.  WH_E_NOMEM. */
int wh__net_ep_new(const wh_engine *e, const wh_endpoint_options *o, struct wh__ep_net **out);
void wh__net_ep_free(struct wh__ep_net *n);
const wh_tls *wh__net_ep_tls(const struct wh__ep_net *n);
/* Check one set of TLS fields (files readable, version, pin format); the
 * message, prefixed with `where` + ".", goes to buf.  WH_OK, WH_E_INVAL or
 * WH_E_IO. */
int wh__net_tls_check(const char *ca_file, const char *ca_path, const char *cert,
                      const char *key, const char *min, const char *pin, const char *where,
                      char *buf, size_t size);
/* Document-level keys of wh_config_load: set the engine-wide options after
 * creation.  Applied to the default libcurl transport; with another
 * transport, ssrf_guard/ssrf_allow/proxy are WH_E_CONFIG. */
/* ssrf_guard -1: unchanged; set_allow 0: the allow list unchanged. */
int wh__net_set_guard(wh_engine *e, int ssrf_guard, const char *const *allow,
                      size_t n_allow, int set_allow, const char *where);
int wh__net_set_proxy(wh_engine *e, const char *proxy, const char *where);
int wh__net_set_https_only(wh_engine *e, int on);
/* 1 when the engine's transport is the libcurl transport. */
int wh__net_has_curl(const wh_engine *e);
/* The libcurl transport's network settings (lib/transport_curl.c).
 * WH_E_INVAL when t is not a libcurl transport; the allow list is copied. */
int wh__curl_set_guard(wh_transport *t, int on, const wh__cidr *allow, size_t n_allow,
                       int set_allow);
int wh__curl_set_proxy(wh_transport *t, const char *proxy);
int wh__curl_is(const wh_transport *t);

/* ---- default parts ---------------------------------------------------------- */
/* In-memory queue (lib/queue_memory.c). */
int wh__queue_memory_new(size_t max_events, size_t max_bytes, wh_queue **out);
/* 1 when q is that queue; then wh__queue_memory_enqueue_uuid is its
 * enqueue (with headers: NULL, 0 for none) of an event whose id is the
 * UUID given as 16 bytes (ev->id is not read): the engine's own ids,
 * without formatting them as text to have them parsed back. */
int wh__queue_memory_is(const wh_queue *q);
int wh__queue_memory_enqueue_uuid(wh_queue *q, const wh_event_view *ev, const uint8_t uuid[16],
                                  const char *headers, size_t headers_len,
                                  const uint32_t *slots, size_t n, int64_t due);
/* backends.c: the engine's default transport and queue (0 bounds: defaults) */
int wh__default_transport_new(const wh_engine_options *o, wh_transport **out);
/* transport_lean.c: 1 when the lean transport can carry url (scheme and
 * host it takes in this build). */
int wh__lean_handles(const char *url);
/* transport_lean.c: its SSRF guard (as wh__curl_set_guard; the allow list
 * is copied). */
int wh__lean_is(const wh_transport *t);
/* transport_lean.c: its epoll fd (the one fd a host loop watches), or -1. */
int wh__lean_fd(const wh_transport *t);
/* transport_lean.c: what its writes did so far (tests): sendmsg/SSL_write
 * calls, calls that took some but not all of the bytes offered, most
 * iovecs in one call. */
typedef struct wh__lean_sends { uint64_t calls, short_writes; size_t max_iov; } wh__lean_sends;
wh__lean_sends wh__lean_send_counts(const wh_transport *t);
/* transport_lean.c: SO_SNDBUF of the connections it opens from now on
 * (tests: short writes); 0: the system's. */
void wh__lean_set_sndbuf(wh_transport *t, int bytes);
int wh__lean_set_guard(wh_transport *t, int on, const wh__cidr *allow, size_t n_allow,
                       int set_allow);
int wh__default_queue_new(size_t max_events, size_t max_bytes, wh_queue **out);
/* Emit idempotency kept by the SQLite queue in its file (table wh_dedupe,
 * written in the transaction of the events accepted with the ids):
 * WH_E_INVAL when vq is not a SQLite queue; id NULL: WH_OK (a probe);
 * window_ms < 0: forget id (its emit failed); else 1 when id was accepted
 * within the window (by this or an earlier process), 0 when it is new and
 * now remembered until wall_ms + window_ms, or a negative status. */
int wh__queue_sqlite_remember(wh_queue *vq, const char *id, int64_t wall_ms,
                              int64_t window_ms);

/* ---- engine internals used by config.c (lib/log.c, lib/endpoint.c) -------- */
/* The JSON document's engine-wide keys: dedupe_window_ms (> 0: on, as
 * wh_engine_options.dedupe_window_ms; 0: unchanged) and
 * operational_endpoint (NULL: unchanged) (lib/engine.c).  WH_OK or
 * WH_E_NOMEM. */
int wh__engine_configure(wh_engine *e, int64_t dedupe_window_ms,
                         const char *operational_endpoint);
/* Set the engine's last-error message (printf style) and return `status`. */
int wh__fail(wh_engine *e, int status, const char *fmt, ...) WH_PRINTF(3, 4);
/* Check endpoint options without adding; on error sets last error prefixed
 * with `where` (e.g. "endpoints[2]") and returns the status. */
int wh__endpoint_check(wh_engine *e, const wh_endpoint_options *o,
                       const char *where);
void wh__log(wh_engine *e, wh_log_level lvl, const char *fmt, ...)
    WH_PRINTF(3, 4);
/* Format a message for a log callback (nothing when fn is NULL); used by
 * parts that log without an engine (the queue backends). */
void wh__logf(wh_log_fn fn, void *user, wh_log_level lvl, const char *fmt, ...)
    WH_PRINTF(4, 5);

#endif /* WH_INTERNAL_H */
