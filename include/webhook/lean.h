/*
 * libwebhook's lean transport: HTTP/1.1 over non-blocking sockets on one
 * epoll set, no thread, no libcurl.  Select it for an engine with
 * wh_engine_options.transport_kind = WH_TRANSPORT_LEAN (or AUTO), or for
 * one endpoint with wh_endpoint_options.transport (JSON: "transport":
 * "lean" | "curl" | "auto").  Create one yourself only to set its options,
 * then hand it to wh_engine_options.transport.
 *
 * What it does: keep-alive connection pools per host and port (idle
 * connections kept up to the most used at once, at most max_idle_per_host),
 * one sendmsg per request (head and the engine's body, the body never
 * copied), no pipelining, connect and per-attempt timeouts, redirects never
 * followed, response bodies kept up to max_response_bytes and read up to
 * max_response_read (then the connection is closed).  A reused connection
 * that closes before any response byte while the request was not fully
 * written is retried once on a fresh connection (the server cannot have
 * acted on it); otherwise the failure is reported as the attempt's.
 *
 * https:// (a library built with OpenSSL libssl: make WITH_TLS=, meson
 * -Dtls=; detected by default): non-blocking TLS 1.2+, SNI, the server
 * certificate verified against its name or IP address, the CA store loaded
 * once per transport, sessions resumed per host and port.  Without libssl,
 * https:// is reported as WH_E_TRANSPORT naming the reason.
 *
 * Host names (a library built with c-ares: make WITH_CARES=, meson
 * -Dcares=; detected by default) are resolved on the same epoll set, no
 * thread; the answer is kept for its TTL (at most 300 s).  Without c-ares
 * only IP literals and "localhost" are taken (else WH_E_CONNECT naming the
 * reason).
 *
 * Transport vtable version 2: in a host loop (wh_loop_attach, wh_fd) it
 * asks for one fd to be watched, its epoll set, and one timer.
 *
 * What it does not do (use the curl transport, or "auto", which picks curl
 * for these): proxies, HTTP/2.
 */
#ifndef WEBHOOK_LEAN_H
#define WEBHOOK_LEAN_H

#include <webhook/webhook.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Options of the lean transport. */
typedef struct wh_lean_options {
    size_t struct_size;          /* set by wh_lean_options_init() */
    size_t max_response_bytes;   /* body bytes kept per response; default 4096 */
    uint64_t max_response_read;  /* body bytes read per response before the
                                    connection is closed; default 1 MiB */
    size_t max_idle_per_host;    /* idle keep-alive connections kept per
                                    host and port; default 256 */
    size_t max_line_bytes;       /* longest response head line; default
                                    8192 (also the most allowed) */
    size_t max_header_lines;     /* header lines per response; default 100 */
    /* TLS (https://; a library built with libssl, see README "Lean
     * transport"): the certificate store is loaded once per transport. */
    int verify_tls;              /* default 1; 0 only for testing */
    const char *ca_file;         /* PEM CA bundle (copied); NULL: the
                                    system store (OpenSSL's default paths,
                                    SSL_CERT_FILE / SSL_CERT_DIR) */
    const char *ca_path;         /* directory of hashed CA certificates */
    /* Host names (a library built with c-ares: make WITH_CARES=, meson
     * -Dcares=): resolved on the transport's own epoll set, no thread. */
    const char *dns_servers;     /* "ip[:port],..." (copied); NULL: the
                                    system's (/etc/resolv.conf, /etc/hosts) */
    /* As wh_engine_options.ssrf_guard / ssrf_allow (README "Security"):
     * checked on the address connected to, after resolution; a refusal
     * fails the attempt with WH_E_FORBIDDEN naming the address and rule. */
    int ssrf_guard;
    const char *const *ssrf_allow;
    size_t n_ssrf_allow;
} wh_lean_options;
WH_EXTERN void wh_lean_options_init_sized(wh_lean_options *o, size_t size);
#define wh_lean_options_init(o) wh_lean_options_init_sized((o), sizeof *(o))

/* Create a lean transport.  opts may be NULL.  Free it with
 * wh_transport_free() unless it was handed to the engine with
 * transport_owned.  Returns WH_OK, WH_E_INVAL (out NULL, a limit 0,
 * max_line_bytes above 8192, an ssrf_allow entry that is no address or
 * range), WH_E_VERSION (struct_size), WH_E_NOMEM or WH_E_TRANSPORT (no
 * epoll instance). */
WH_EXTERN int wh_transport_lean_new(const wh_lean_options *opts,
                                    wh_transport **out);

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_LEAN_H */
