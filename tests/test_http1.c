/* The lean transport's HTTP/1.1 response parser (lib/http1.c), on its own.
 * Every input is also fed split at every byte and one byte at a time: the
 * result must not depend on how the bytes arrive. */
#include "harness.h"
#include "http1.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct result {
    int rc;
    size_t used;
    int status, keep_alive, truncated, chunked, close_delimited;
    int64_t content_length;
    size_t body_len;
    uint64_t body_read;
    char body[256];
    int have_retry_after, have_delivery;
    char retry_after[WH__H1_VALUE_MAX], delivery[WH__H1_VALUE_MAX];
} result;

typedef struct setup {
    size_t body_cap;          /* default 256 */
    uint64_t max_body_read;   /* 0: none */
    size_t max_line, max_headers; /* 0: defaults */
} setup;

static wh__http1 *new_parser(const setup *s, char *body)
{
    wh__http1 *p = malloc(sizeof *p);
    CHECK(p != NULL);
    wh__http1_init(p);
    p->body = body;
    p->body_cap = s && s->body_cap ? s->body_cap : 256;
    if (s && s->max_body_read) p->max_body_read = s->max_body_read;
    if (s && s->max_line) p->max_line = s->max_line;
    if (s && s->max_headers) p->max_headers = s->max_headers;
    return p;
}

static void snap(const wh__http1 *p, result *r)
{
    r->status = p->status;
    r->keep_alive = p->keep_alive;
    r->truncated = p->truncated;
    r->chunked = p->chunked;
    r->close_delimited = p->close_delimited;
    r->content_length = p->content_length;
    r->body_len = p->body_len;
    r->body_read = p->body_read;
    CHECK(p->body_len <= sizeof r->body);
    memset(r->body, 0, sizeof r->body);
    memcpy(r->body, p->body, p->body_len);
    r->have_retry_after = p->have_retry_after;
    r->have_delivery = p->have_delivery;
    memcpy(r->retry_after, p->retry_after, sizeof r->retry_after);
    memcpy(r->delivery, p->delivery, sizeof r->delivery);
}

/* Feed `in` in pieces of `step` bytes (0: at once), after a first piece of
 * `first` bytes; stop at the first non-MORE result; then eof if asked. */
static void run(const setup *s, const char *in, size_t n, size_t first,
                size_t step, int eof, result *r)
{
    char *body = calloc(1, 256);
    CHECK(body != NULL);
    wh__http1 *p = new_parser(s, body);
    memset(r, 0, sizeof *r);
    size_t pos = 0;
    int rc = WH__H1_MORE;
    while (pos < n && rc == WH__H1_MORE) {
        size_t k = n - pos;
        if (pos == 0 && first) k = first < n ? first : n;
        else if (step && step < k) k = step;
        size_t used = 0;
        rc = wh__http1_feed(p, in + pos, k, &used);
        CHECK(used <= k);
        if (rc == WH__H1_MORE) CHECK_EQ(used, k);
        pos += used;
    }
    if (rc == WH__H1_MORE && eof) rc = wh__http1_eof(p);
    r->rc = rc;
    r->used = pos;
    snap(p, r);
    if (rc < 0) {
        /* sticky */
        size_t used = 99;
        CHECK_EQ(wh__http1_feed(p, "x", 1, &used), rc);
        CHECK_EQ(used, 0);
        CHECK_EQ(wh__http1_eof(p), rc);
    }
    free(p);
    free(body);
}

static void same(const result *a, const result *b)
{
    CHECK_EQ(a->rc, b->rc);
    if (a->rc < 0) return;
    CHECK_EQ(a->used, b->used);
    CHECK_EQ(a->status, b->status);
    CHECK_EQ(a->keep_alive, b->keep_alive);
    CHECK_EQ(a->truncated, b->truncated);
    CHECK_EQ(a->body_len, b->body_len);
    CHECK_EQ(a->body_read, b->body_read);
    CHECK(memcmp(a->body, b->body, sizeof a->body) == 0);
    CHECK_STR(a->retry_after, b->retry_after);
    CHECK_STR(a->delivery, b->delivery);
}

/* Parse at once, at every split and byte by byte; all must agree. */
static result parse_s(const setup *s, const char *in, size_t n, int eof)
{
    result whole, other;
    run(s, in, n, 0, 0, eof, &whole);
    for (size_t k = 1; k < n && n < 4096; k++) {
        run(s, in, n, k, 0, eof, &other);
        same(&whole, &other);
    }
    run(s, in, n, 0, 1, eof, &other);
    same(&whole, &other);
    run(s, in, n, 0, 7, eof, &other);
    same(&whole, &other);
    return whole;
}

static result parse(const char *in, int eof) { return parse_s(NULL, in, strlen(in), eof); }

/* ---- complete responses ---------------------------------------------------- */

static void t_content_length(void)
{
    const char *in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     "Content-Length: 5\r\n\r\nhello";
    result r = parse(in, 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.used, strlen(in));
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.keep_alive, 1);
    CHECK_EQ(r.content_length, 5);
    CHECK_EQ(r.body_len, 5);
    CHECK_STR(r.body, "hello");
    CHECK_EQ(r.truncated, 0);
    CHECK_EQ(r.have_retry_after, 0);

    /* no reason phrase; bare LF line ends; "42, 42" */
    r = parse("HTTP/1.1 201\nContent-Length: 2, 2\n\nab", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 201);
    CHECK_STR(r.body, "ab");
    /* an empty reason phrase, and two equal Content-Length headers */
    r = parse("HTTP/1.1 202 \r\nContent-Length: 1\r\ncontent-length:1\r\n\r\nz", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 202);
    CHECK_STR(r.body, "z");
    /* Content-Length: 0 and 204/304 end at the blank line */
    r = parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.body_len, 0);
    r = parse("HTTP/1.1 204 No Content\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 204);
    CHECK_EQ(r.keep_alive, 1);
    r = parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.body_len, 0);
    /* before the body is complete: MORE, then eof is an error */
    r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 0);
    CHECK_EQ(r.rc, WH__H1_MORE);
    CHECK_EQ(r.status, 200);
    r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 1);
    CHECK_EQ(r.rc, WH__H1_E_EOF);
}

static void t_keep_alive_rules(void)
{
    result r = parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.keep_alive, 0);
    r = parse("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.keep_alive, 0);
    r = parse("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.keep_alive, 1);
    r = parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.keep_alive, 0);
    r = parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.keep_alive, 1);
    r = parse("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.keep_alive, 0);
}

static void t_chunked(void)
{
    const char *in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n"
                     "1;name=value\r\n \r\n"
                     "5 \r\nworld\r\n"
                     "0\r\nX-Trailer: yes\r\n\r\n";
    result r = parse(in, 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.used, strlen(in));
    CHECK_EQ(r.chunked, 1);
    CHECK_EQ(r.keep_alive, 1);
    CHECK_STR(r.body, "hello world");
    CHECK_EQ(r.body_read, 11);
    /* upper-case hex, leading zeros, an empty list element */
    r = parse("HTTP/1.1 500 X\r\nTransfer-Encoding: , Chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 500);
    CHECK_STR(r.body, "0123456789");
    /* gzip then chunked (split over two header lines) is chunked */
    r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_STR(r.body, "x");
    /* unfinished: MORE; eof: error */
    r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 0);
    CHECK_EQ(r.rc, WH__H1_MORE);
    r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 1);
    CHECK_EQ(r.rc, WH__H1_E_EOF);
}

static void t_close_delimited(void)
{
    const char *in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    result r = parse(in, 0);
    CHECK_EQ(r.rc, WH__H1_MORE);
    r = parse(in, 1);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.close_delimited, 1);
    CHECK_EQ(r.keep_alive, 0);
    CHECK_STR(r.body, "until the end");
    /* a transfer coding other than chunked: to the end as well */
    r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", 1);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.close_delimited, 1);
    CHECK_STR(r.body, "abc");
    /* empty body to the end */
    r = parse("HTTP/1.1 500 Oops\r\n\r\n", 1);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 500);
    CHECK_EQ(r.body_len, 0);
}

static void t_interim_skipped(void)
{
    const char *in = "HTTP/1.1 100 Continue\r\n\r\n"
                     "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\nRetry-After: 99\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    result r = parse(in, 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.have_retry_after, 0); /* the interim block's header is gone */
    CHECK_STR(r.body, "ok");
    /* status is 0 while only an interim response was seen */
    r = parse("HTTP/1.1 100 Continue\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_MORE);
    CHECK_EQ(r.status, 0);
    r = parse("HTTP/1.1 100 Continue\r\n\r\n", 1);
    CHECK_EQ(r.rc, WH__H1_E_EOF);
    /* 16 interim responses pass, 17 do not */
    char buf[2048] = "";
    for (int i = 0; i < 16; i++) strcat(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    strcat(buf, "HTTP/1.1 204 No Content\r\n\r\n");
    r = parse(buf, 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 204);
    buf[0] = '\0';
    for (int i = 0; i < 17; i++) strcat(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    strcat(buf, "HTTP/1.1 204 No Content\r\n\r\n");
    r = parse(buf, 0);
    CHECK_EQ(r.rc, WH__H1_E_TOO_MANY_INTERIM);
    r = parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_E_SWITCHING);
}

static void t_retry_after_and_delivery(void)
{
    result r = parse("HTTP/1.1 503 Busy\r\nretry-after: \t 120 \r\n"
                     "Webhook-Delivery: dlv_42\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.status, 503);
    CHECK_EQ(r.have_retry_after, 1);
    CHECK_STR(r.retry_after, "120");
    CHECK_EQ(r.have_delivery, 1);
    CHECK_STR(r.delivery, "dlv_42");
    /* an HTTP date, and an empty value */
    r = parse("HTTP/1.1 429 Slow\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
              "Content-Length: 0\r\n\r\n", 0);
    CHECK_STR(r.retry_after, "Wed, 21 Oct 2015 07:28:00 GMT");
    r = parse("HTTP/1.1 429 Slow\r\nRetry-After:\r\nContent-Length: 0\r\n\r\n", 0);
    CHECK_EQ(r.have_retry_after, 1);
    CHECK_STR(r.retry_after, "");
    /* a long value is cut at WH__H1_VALUE_MAX - 1 bytes */
    char buf[1024];
    char val[400];
    memset(val, '7', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    snprintf(buf, sizeof buf, "HTTP/1.1 503 X\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n", val);
    r = parse(buf, 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(strlen(r.retry_after), WH__H1_VALUE_MAX - 1);
}

static void t_body_cap_and_limit(void)
{
    setup s = {0};
    s.body_cap = 5;
    const char *in = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";
    result r = parse_s(&s, in, strlen(in), 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.body_len, 5);
    CHECK_EQ(r.body_read, 11);
    CHECK_STR(r.body, "hello");
    CHECK_EQ(r.truncated, 0);
    CHECK_EQ(r.keep_alive, 1);

    /* the read limit: stop, complete, truncated, no keep-alive */
    setup lim = {0};
    lim.max_body_read = 4;
    r = parse_s(&lim, in, strlen(in), 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.truncated, 1);
    CHECK_EQ(r.keep_alive, 0);
    CHECK_EQ(r.body_read, 4);
    CHECK_STR(r.body, "hell");
    CHECK_EQ(r.used, strlen(in) - 7);
    /* exactly the limit: complete, not truncated */
    lim.max_body_read = 11;
    r = parse_s(&lim, in, strlen(in), 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.truncated, 0);
    CHECK_EQ(r.keep_alive, 1);
    /* close-delimited and chunked bodies stop at the limit too */
    lim.max_body_read = 3;
    const char *cd = "HTTP/1.1 200 OK\r\n\r\nabcdefgh";
    r = parse_s(&lim, cd, strlen(cd), 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.truncated, 1);
    CHECK_STR(r.body, "abc");
    const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
    r = parse_s(&lim, ch, strlen(ch), 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.truncated, 1);
    CHECK_STR(r.body, "abc");
    /* a chunk stream ending at the limit is complete */
    lim.max_body_read = 4;
    r = parse_s(&lim, ch, strlen(ch), 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.truncated, 0);
    CHECK_EQ(r.used, strlen(ch));
    CHECK_STR(r.body, "abcd");
    /* no body buffer at all */
    char *nobody = NULL;
    wh__http1 *p = new_parser(NULL, nobody);
    p->body_cap = 0;
    size_t used = 0;
    CHECK_EQ(wh__http1_feed(p, in, strlen(in), &used), WH__H1_DONE);
    CHECK_EQ(p->body_len, 0);
    CHECK_EQ(p->body_read, 11);
    free(p);
}

/* Two responses in one buffer: the first ends where it ends; more input is
 * refused until reset. */
static void t_leftover_and_reset(void)
{
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA";
    const char *b = "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nB";
    char both[256];
    snprintf(both, sizeof both, "%s%s", a, b);
    char body[16];
    wh__http1 *p = new_parser(NULL, body);
    p->body_cap = sizeof body;
    size_t used = 0;
    CHECK_EQ(wh__http1_feed(p, both, strlen(both), &used), WH__H1_DONE);
    CHECK_EQ(used, strlen(a));
    CHECK_EQ(p->status, 200);
    CHECK_EQ(p->bytes_fed, strlen(a));
    CHECK(wh__http1_done(p));
    CHECK_EQ(wh__http1_feed(p, both + used, 1, &used), WH__H1_E_DONE);
    CHECK_EQ(used, 0);
    CHECK_EQ(wh__http1_feed(p, "", 0, &used), WH__H1_DONE);
    CHECK_EQ(wh__http1_eof(p), WH__H1_DONE);
    wh__http1_reset(p);
    CHECK(!wh__http1_done(p));
    CHECK_EQ(p->status, 0);
    CHECK_EQ(wh__http1_feed(p, b, strlen(b), &used), WH__H1_DONE);
    CHECK_EQ(p->status, 404);
    CHECK_EQ(p->body_len, 1);
    CHECK_EQ(body[0], 'B');
    /* reset also clears an error */
    wh__http1_reset(p);
    CHECK_EQ(wh__http1_feed(p, "junk\r\n", 6, &used), WH__H1_E_STATUS_LINE);
    wh__http1_reset(p);
    CHECK_EQ(wh__http1_feed(p, a, strlen(a), &used), WH__H1_DONE);
    /* eof before any byte is its own error */
    wh__http1_reset(p);
    CHECK_EQ(wh__http1_eof(p), WH__H1_E_EMPTY);
    wh__http1_reset(p);
    CHECK_EQ(wh__http1_feed(p, "HT", 2, &used), WH__H1_MORE);
    CHECK_EQ(wh__http1_eof(p), WH__H1_E_EOF);
    free(p);
}

/* ---- refused input, each by its name ----------------------------------------- */
typedef struct bad_case {
    const char *in;
    int rc;
    int eof;
} bad_case;

static void t_malformed(void)
{
    static const bad_case cases[] = {
        {"HTTP/1.1 200OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTP/1.1 200 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"ICY 200 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"\r\nHTTP/1.1 200 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/1.1  200 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/1.1 20 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/1.1 2000 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/1.1 2x0 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/1.1\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/1.x 200 OK\r\n\r\n", WH__H1_E_STATUS_LINE, 0},
        {"HTTP/2.0 200 OK\r\n\r\n", WH__H1_E_VERSION, 0},
        {"HTTP/2 200\r\n\r\n", WH__H1_E_VERSION, 0},
        {"HTTP/0.9 200 OK\r\n\r\n", WH__H1_E_VERSION, 0},
        {"HTTP/1.1 099 Low\r\n\r\n", WH__H1_E_STATUS, 0},
        {"HTTP/1.1 600 High\r\n\r\n", WH__H1_E_STATUS, 0},
        {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\nName : value\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\n: value\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\nNa\x01me: value\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\nName: val\x7fue\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\nName: val\x02ue\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\nName(x): value\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\nA: b\r\n continued\r\n\r\n", WH__H1_E_FOLDING, 0},
        {"HTTP/1.1 200 OK\r\n\tcontinued\r\n\r\n", WH__H1_E_FOLDING, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: ,\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", WH__H1_E_CONTENT_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", WH__H1_E_TRANSFER_ENCODING, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", WH__H1_E_TRANSFER_ENCODING, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", WH__H1_E_TRANSFER_ENCODING, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chun ked\r\n\r\n", WH__H1_E_TRANSFER_ENCODING, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", WH__H1_E_TRANSFER_ENCODING, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", WH__H1_E_TE_AND_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n", WH__H1_E_TE_AND_LENGTH, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", WH__H1_E_CHUNK, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", WH__H1_E_CHUNK, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", WH__H1_E_CHUNK, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", WH__H1_E_CHUNK, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", WH__H1_E_CHUNK, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x01\r\n", WH__H1_E_CHUNK, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", WH__H1_E_CHUNK_TOO_LARGE, 0},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nbad trailer\r\n\r\n", WH__H1_E_HEADER, 0},
        {"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", WH__H1_E_BARE_CR, 0},
        {"HTTP/1.1 200 OK\rX\r\n\r\n", WH__H1_E_BARE_CR, 0},
        {"HTTP/1.1 200 OK\r\n\r\r\n", WH__H1_E_BARE_CR, 0},
        {"HTTP/1.1 200 OK\r\nA: b", WH__H1_E_EOF, 1},
        {"HTTP/1.1 200 OK\r\n", WH__H1_E_EOF, 1},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", WH__H1_E_EOF, 1},
        {"", WH__H1_E_EMPTY, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r = parse(cases[i].in, cases[i].eof);
        if (r.rc != cases[i].rc)
            th_fail(__FILE__, __LINE__, "case %zu (%s): got %d (%s), want %d (%s)", i,
                    cases[i].in, r.rc, wh__http1_strerror(r.rc), cases[i].rc,
                    wh__http1_strerror(cases[i].rc));
    }
    /* NUL bytes (strlen cannot carry them) */
    static const char nul_hdr[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
    result r = parse_s(NULL, nul_hdr, sizeof nul_hdr - 1, 0);
    CHECK_EQ(r.rc, WH__H1_E_NUL);
    static const char nul_status[] = "HTTP/1.1 200 O\0K\r\n\r\n";
    r = parse_s(NULL, nul_status, sizeof nul_status - 1, 0);
    CHECK_EQ(r.rc, WH__H1_E_NUL);
    /* NUL in a body is fine */
    static const char nul_body[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na\0b";
    r = parse_s(NULL, nul_body, sizeof nul_body - 1, 0);
    CHECK_EQ(r.rc, WH__H1_DONE);
    CHECK_EQ(r.body_len, 3);
    CHECK_EQ(r.body[1], '\0');
    /* every error has its own description */
    static const int codes[] = {
#define WH__H1_XX(name, val, msg) WH__H1_##name,
        WH__H1_ERRORS(WH__H1_XX)
#undef WH__H1_XX
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(wh__http1_strerror(codes[i]), "unknown HTTP/1.1 parser result") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(wh__http1_strerror(codes[i]), wh__http1_strerror(codes[j])) != 0);
    }
    CHECK_STR(wh__http1_strerror(-1000), "unknown HTTP/1.1 parser result");
}

/* ---- limits ------------------------------------------------------------------- */
static void t_line_limit(void)
{
    /* default limit 8192: a 8192-byte header line passes, 8193 does not */
    size_t n = 20000;
    char *buf = malloc(n);
    CHECK(buf != NULL);
    for (int extra = 0; extra <= 1; extra++) {
        size_t line = 8192 + (size_t)extra; /* bytes before CR LF, CR counted */
        int k = snprintf(buf, n, "HTTP/1.1 200 OK\r\nX: ");
        size_t fill = line - 3 - 1; /* "X: " and the CR */
        memset(buf + k, 'v', fill);
        k += (int)fill;
        k += snprintf(buf + k, n - (size_t)k, "\r\nContent-Length: 0\r\n\r\n");
        result r = parse_s(NULL, buf, (size_t)k, 0);
        CHECK_EQ(r.rc, extra ? WH__H1_E_LINE_TOO_LONG : WH__H1_DONE);
    }
    /* a status line without end is refused once past the limit */
    memset(buf, 'H', n);
    result r = parse_s(NULL, buf, 9000, 0);
    CHECK_EQ(r.rc, WH__H1_E_LINE_TOO_LONG);
    /* a smaller limit applies to chunk-size lines too */
    setup s = {0};
    s.max_line = 16;
    const char *ok = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK_EQ(parse_s(&s, ok, strlen(ok), 0).rc, WH__H1_E_LINE_TOO_LONG);
    s.max_line = 40;
    const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n";
    CHECK_EQ(parse_s(&s, ch, strlen(ch), 0).rc, WH__H1_E_LINE_TOO_LONG);
    /* above the buffer: clamped to it */
    s.max_line = 100000;
    r = parse_s(&s, buf, 9000, 0);
    CHECK_EQ(r.rc, WH__H1_E_LINE_TOO_LONG);
    free(buf);
}

static void t_header_count_limit(void)
{
    char *buf = malloc(8192);
    CHECK(buf != NULL);
    for (int count = 99; count <= 101; count++) {
        int k = snprintf(buf, 8192, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
        for (int i = 1; i < count; i++) k += snprintf(buf + k, 8192 - (size_t)k, "H%d: v\r\n", i);
        k += snprintf(buf + k, 8192 - (size_t)k, "\r\n");
        result r = parse_s(NULL, buf, (size_t)k, 0);
        CHECK_EQ(r.rc, count <= 100 ? WH__H1_DONE : WH__H1_E_TOO_MANY_HEADERS);
    }
    setup s = {0};
    s.max_headers = 2;
    const char *three = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK_EQ(parse_s(&s, three, strlen(three), 0).rc, WH__H1_E_TOO_MANY_HEADERS);
    const char *two = "HTTP/1.1 204 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    CHECK_EQ(parse_s(&s, two, strlen(two), 0).rc, WH__H1_DONE);
    /* trailers count against the limit too */
    const char *tr = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK_EQ(parse_s(&s, tr, strlen(tr), 0).rc, WH__H1_E_TOO_MANY_HEADERS);
    /* each interim block has its own count */
    const char *in = "HTTP/1.1 100 C\r\nA: 1\r\nB: 2\r\n\r\nHTTP/1.1 204 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    CHECK_EQ(parse_s(&s, in, strlen(in), 0).rc, WH__H1_DONE);
    free(buf);
}

/* Random bytes and random mutations of valid responses: never a crash, an
 * out-of-range result or a disagreement between splits. */
static void t_random_mutations(void)
{
    static const char *const seeds[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: x\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 503 X\r\nRetry-After: 5\r\n\r\nbody",
    };
    uint64_t x = 0x9e3779b97f4a7c15u;
    char buf[256];
    for (int iter = 0; iter < 3000; iter++) {
        const char *s = seeds[iter % 3];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int muts = 1 + iter % 4;
        for (int m = 0; m < muts; m++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[x % n] = (char)(x >> 32);
        }
        setup st = {0};
        st.max_body_read = iter % 2 ? 3 : 0;
        result r = parse_s(&st, buf, n, (int)(iter % 3 == 0));
        CHECK(r.rc >= WH__H1_E_DONE && r.rc <= WH__H1_DONE);
        CHECK(r.used <= n);
        if (r.rc == WH__H1_DONE) CHECK(r.status >= 200 && r.status <= 599);
    }
}

TH_MAIN(TH_CASE(t_content_length), TH_CASE(t_keep_alive_rules), TH_CASE(t_chunked),
        TH_CASE(t_close_delimited), TH_CASE(t_interim_skipped),
        TH_CASE(t_retry_after_and_delivery), TH_CASE(t_body_cap_and_limit),
        TH_CASE(t_leftover_and_reset), TH_CASE(t_malformed), TH_CASE(t_line_limit),
        TH_CASE(t_header_count_limit), TH_CASE(t_random_mutations))
