/*
 * libwebhook's libcurl transport: the default transport of an engine when
 * the library is built with libcurl (make WITH_CURL=, meson -Dcurl=;
 * detected by default).  Create one yourself only to set its options, then
 * hand it to wh_engine_options.transport.  In a library built without
 * libcurl, this header is the same, wh_curl_options_init() only sets
 * struct_size, wh_transport_curl_new() returns WH_E_UNSUPPORTED, and an
 * engine given no transport fails with WH_E_UNSUPPORTED.
 */
#ifndef WEBHOOK_CURL_H
#define WEBHOOK_CURL_H

#include <webhook/webhook.h>
#include <webhook/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Options for the default libcurl transport. */
typedef struct wh_curl_options {
    size_t struct_size;          /* set by wh_curl_options_init() */
    size_t max_response_bytes;   /* body bytes kept per response; default 4096 */
    long max_host_connections;   /* per host, 0 = unlimited (default) */
    int verify_tls;              /* default 1; 0 only for testing */
    /* 1: offer HTTP/2 over TLS (ALPN).  Default 0: with libcurl 7.88
     * against nginx's http2 on 127.0.0.1, about 1 burst of 129 requests in
     * 12 left a stream hanging until its timeout (0 of 80 over HTTP/1.1);
     * README "TLS". */
    int http2;

    /* ---- connection pool and network safety (README "Security", "TLS") */
    /* Idle connections kept for reuse (CURLMOPT_MAXCONNECTS).  0 (default):
     * at least 64, and twice the most requests ever in flight at once, so
     * every in-flight slot keeps its connection however the transfers
     * interleave. */
    long max_connections;
    /* As wh_engine_options.ssrf_guard / ssrf_allow / proxy. */
    int ssrf_guard;
    const char *const *ssrf_allow;
    size_t n_ssrf_allow;
    const char *proxy;           /* NULL or "": none, "env", or a URL */
    /* TLS defaults for requests whose wh_request.tls leaves a field NULL
     * (see wh_endpoint_options).  Copied. */
    wh_tls tls;
} wh_curl_options;
WH_EXTERN void wh_curl_options_init_sized(wh_curl_options *o, size_t size);
#define wh_curl_options_init(o) wh_curl_options_init_sized((o), sizeof *(o))

/* Create a libcurl multi transport (non-blocking, keep-alive, HTTP/2 when
 * the http2 option asks for it and the server offers it, redirects never
 * followed, response bodies read up to a small cap).  opts may be NULL.  Free it with wh_transport_free() unless it
 * was handed to wh_engine_options.transport_owned.  Returns WH_OK, WH_E_INVAL
 * (a bad option: negative count, unparsable ssrf_allow entry, tls.min_version
 * not 0, 12 or 13), WH_E_VERSION, WH_E_NOMEM, WH_E_TRANSPORT (libcurl could
 * not start) or WH_E_UNSUPPORTED (library built without libcurl; *out is set
 * to NULL). */
WH_EXTERN int wh_transport_curl_new(const wh_curl_options *opts,
                                    wh_transport **out);

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_CURL_H */
