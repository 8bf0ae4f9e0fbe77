/* An incremental HTTP/1.1 response parser (internal; lib/http1.c).
 *
 * Pure: no I/O, no allocation, no clock.  The caller feeds the bytes of one
 * connection as they arrive (any split, down to one byte at a time) and is
 * told when the response is complete, or why it is refused.  Interim 1xx
 * responses are skipped (101 is refused: nothing here switches protocols).
 *
 * Framing (RFC 9112 section 6): no body for 1xx, 204 and 304; else
 * Transfer-Encoding with "chunked" last: chunked; else Content-Length; else
 * the body runs to the end of the connection (wh__http1_eof).  Both
 * Transfer-Encoding and Content-Length, differing Content-Length values,
 * "chunked" anywhere but last, obsolete line folding, a space before a
 * header's colon, bare CR and NUL bytes are refused (request smuggling
 * and response splitting vectors), each by its own code.
 *
 * Limits: max_line bytes per line (status line, header line, chunk-size
 * line), max_headers header lines per header block (trailers included),
 * WH__H1_MAX_INTERIM interim responses, and max_body_read body bytes read:
 * past it parsing stops, the response counts as complete with `truncated`
 * set (the connection must then be closed).  Of the body, the first
 * body_cap bytes are kept in the caller's buffer. */
#ifndef WH_HTTP1_H
#define WH_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define WH__H1_LINE_MAX_DEFAULT 8192
#define WH__H1_HEADERS_MAX_DEFAULT 100
#define WH__H1_MAX_INTERIM 16
#define WH__H1_VALUE_MAX 128 /* longest Retry-After / webhook-delivery kept */

/* Results of wh__http1_feed() / wh__http1_eof(): 0 more input needed, 1 the
 * response is complete, < 0 refused (the connection is unusable). */
#define WH__H1_MORE 0
#define WH__H1_DONE 1
#define WH__H1_ERRORS(XX)                                                      \
    XX(E_STATUS_LINE, -1, "malformed status line")                             \
    XX(E_VERSION, -2, "not an HTTP/1.x response")                              \
    XX(E_STATUS, -3, "status code outside 100-599")                            \
    XX(E_LINE_TOO_LONG, -4, "line longer than the limit")                      \
    XX(E_TOO_MANY_HEADERS, -5, "more header lines than the limit")             \
    XX(E_HEADER, -6, "malformed header line")                                  \
    XX(E_FOLDING, -7, "obsolete header line folding")                          \
    XX(E_CONTENT_LENGTH, -8, "invalid or conflicting Content-Length")          \
    XX(E_TRANSFER_ENCODING, -9, "invalid Transfer-Encoding")                   \
    XX(E_TE_AND_LENGTH, -10, "both Transfer-Encoding and Content-Length")      \
    XX(E_CHUNK, -11, "malformed chunk")                                        \
    XX(E_CHUNK_TOO_LARGE, -12, "chunk size overflows")                         \
    XX(E_BARE_CR, -13, "CR not followed by LF")                                \
    XX(E_NUL, -14, "NUL byte in the head")                                     \
    XX(E_SWITCHING, -15, "101 Switching Protocols to a POST")                  \
    XX(E_TOO_MANY_INTERIM, -16, "too many interim (1xx) responses")            \
    XX(E_EOF, -17, "connection closed before the response was complete")      \
    XX(E_EMPTY, -18, "connection closed before any response byte")            \
    XX(E_DONE, -19, "bytes fed after the response was complete")

enum {
#define WH__H1_XX(name, val, msg) WH__H1_##name = val,
    WH__H1_ERRORS(WH__H1_XX)
#undef WH__H1_XX
};

typedef struct wh__http1 {
    /* ---- settings (wh__http1_init sets defaults; change before feeding) */
    size_t max_line;
    size_t max_headers;
    uint64_t max_body_read;   /* UINT64_MAX: no limit */
    char *body;               /* NULL: nothing kept */
    size_t body_cap;

    /* ---- results (valid once DONE; status as soon as headers ended) ---- */
    int status;               /* final status, 0 until its line is parsed */
    int minor;                /* HTTP/1.<minor> */
    int keep_alive;           /* the connection may carry another request */
    int truncated;            /* stopped at max_body_read */
    int64_t content_length;   /* -1 when absent */
    int chunked;
    int close_delimited;
    size_t body_len;          /* bytes kept in body[] */
    uint64_t body_read;       /* body bytes read (decoded) */
    int have_retry_after;
    char retry_after[WH__H1_VALUE_MAX];
    int have_delivery;        /* a "webhook-delivery" header */
    char delivery[WH__H1_VALUE_MAX];
    uint64_t bytes_fed;       /* every byte consumed so far */

    /* ---- state (private) ---- */
    int state;
    int error;
    int interim;
    int conn_close, conn_keep_alive;
    int te_seen;
    size_t n_headers;
    uint64_t remaining;       /* of the Content-Length or of the chunk */
    size_t line_len;
    char line[WH__H1_LINE_MAX_DEFAULT];
} wh__http1;

/* Defaults: max_line = WH__H1_LINE_MAX_DEFAULT (at most that), max_headers
 * = WH__H1_HEADERS_MAX_DEFAULT, no body kept, no body limit. */
void wh__http1_init(wh__http1 *p);
/* Forget the last response (keeps the settings and the body buffer). */
void wh__http1_reset(wh__http1 *p);
/* Feed len bytes.  *used receives how many were consumed (all of them
 * unless DONE came first: the rest belongs to no response).  Returns
 * WH__H1_MORE, WH__H1_DONE or an error (then every later call returns it). */
int wh__http1_feed(wh__http1 *p, const char *buf, size_t len, size_t *used);
/* The peer closed the connection.  DONE when the response was complete or
 * close-delimited; else WH__H1_E_EMPTY (no byte was fed at all) or
 * WH__H1_E_EOF. */
int wh__http1_eof(wh__http1 *p);
/* 1 when the response is complete. */
int wh__http1_done(const wh__http1 *p);
/* Static description of a result ("malformed chunk"); never NULL. */
const char *wh__http1_strerror(int rc);

#endif
