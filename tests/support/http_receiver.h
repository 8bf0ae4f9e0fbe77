/* An in-process HTTP receiver for tests (libmicrohttpd), listening on
 * 127.0.0.1 on a free port.  It can answer chosen statuses, fail the first
 * N attempts of every delivery id, delay, hang or drop the connection, and
 * it records every request it saw (thread-safe: MHD answers from its own
 * threads). */
#ifndef TH_HTTP_RECEIVER_H
#define TH_HTTP_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct th_recv th_recv;

typedef struct th_recv_opts {
    int status;            /* answer for successful requests; default 200 */
    int fail_first;        /* answer fail_status to the first N attempts of
                              each webhook-id; default 0 */
    int fail_status;       /* default 503 */
    int delay_ms;          /* wait before answering; default 0 */
    int hang;              /* never answer (until th_recv_stop) */
    int drop;              /* close the connection without an answer */
    const char *retry_after; /* Retry-After header on failure answers */
    const char *secret;    /* if set: verify Standard Webhooks signatures
                              (whsec_...) and record the verdict */
    const char *delivery_control; /* if set: a "webhook-delivery" header
                              with this value on every answer (the string
                              must outlive the receiver) */
} th_recv_opts;

typedef struct th_recv_req {
    int64_t at_ms;         /* th_now_ms() when the request arrived */
    char method[8];
    char path[128];
    char webhook_id[160];
    char webhook_timestamp[32];
    char webhook_signature[512];
    char attempt[16];      /* webhook-attempt header */
    char content_type[64];
    char user_agent[64];
    char *body;            /* NUL-terminated copy */
    size_t body_len;
    int answered;          /* status sent, 0 if dropped/hung */
    int verified;          /* 1 ok, 0 bad, -1 not checked */
    char headers[2048];    /* every request header, "name: value\n" each
                              (truncated at a line boundary) */
} th_recv_req;

/* Value of header `name` (case-insensitive) of a recorded request, copied
 * into out.  Returns 1 when present, 0 when not. */
int th_recv_header(const th_recv_req *q, const char *name, char *out,
                   size_t size);

/* Start a receiver; opts may be NULL.  Returns NULL on failure. */
th_recv *th_recv_start(const th_recv_opts *opts);
/* "http://127.0.0.1:PORT/hook" */
const char *th_recv_url(const th_recv *r);
int th_recv_port(const th_recv *r);
/* Requests fully received so far. */
size_t th_recv_count(th_recv *r);
/* Copy of request i (body pointer stays owned by the receiver and valid
 * until th_recv_stop).  Returns 0 on success, -1 if i is out of range. */
int th_recv_get(th_recv *r, size_t i, th_recv_req *out);
/* Most requests that were being handled at the same moment. */
int th_recv_max_concurrent(th_recv *r);
/* Wait (really, up to timeout_ms) until count >= n. Returns count. */
size_t th_recv_wait(th_recv *r, size_t n, int timeout_ms);
/* Change the answer while running (applies to requests that arrive after
 * the call): status for successful answers, hang 0/1, delay in ms. */
void th_recv_set(th_recv *r, int status, int hang, int delay_ms);
/* Stop the server, release everything. */
void th_recv_stop(th_recv *r);

#endif
