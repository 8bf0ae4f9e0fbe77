/* The HTTP/1.1 response parser of the lean transport (see http1.h). */
#include "http1.h"

#include <string.h>

enum {
    S_STATUS,      /* waiting for a status line */
    S_HEADER,      /* header lines of the current block */
    S_BODY_LEN,    /* Content-Length body: `remaining` bytes */
    S_CHUNK_SIZE,  /* a chunk-size line */
    S_CHUNK_DATA,  /* `remaining` bytes of chunk data */
    S_CHUNK_CRLF,  /* the CRLF after chunk data */
    S_TRAILER,     /* trailer lines after the last chunk */
    S_BODY_CLOSE,  /* body up to the end of the connection */
    S_DONE,
    S_ERROR
};

#define CL_MAX ((uint64_t)1 << 62) /* larger lengths are refused */

const char *wh__http1_strerror(int rc)
{
    switch (rc) {
    case WH__H1_MORE: return "incomplete response";
    case WH__H1_DONE: return "complete response";
#define WH__H1_XX(name, val, msg)                                              \
    case WH__H1_##name: return msg;
        WH__H1_ERRORS(WH__H1_XX)
#undef WH__H1_XX
    default: return "unknown HTTP/1.1 parser result";
    }
}

static void reset_block(wh__http1 *p)
{
    p->content_length = -1;
    p->chunked = 0;
    p->te_seen = 0;
    p->conn_close = p->conn_keep_alive = 0;
    p->n_headers = 0;
    p->have_retry_after = 0;
    p->retry_after[0] = '\0';
    p->have_delivery = 0;
    p->delivery[0] = '\0';
}

void wh__http1_reset(wh__http1 *p)
{
    p->status = 0;
    p->minor = 0;
    p->keep_alive = 0;
    p->truncated = 0;
    p->close_delimited = 0;
    p->body_len = 0;
    p->body_read = 0;
    p->bytes_fed = 0;
    p->state = S_STATUS;
    p->error = 0;
    p->interim = 0;
    p->remaining = 0;
    p->line_len = 0;
    reset_block(p);
}

void wh__http1_init(wh__http1 *p)
{
    p->max_line = WH__H1_LINE_MAX_DEFAULT;
    p->max_headers = WH__H1_HEADERS_MAX_DEFAULT;
    p->max_body_read = UINT64_MAX;
    p->body = NULL;
    p->body_cap = 0;
    wh__http1_reset(p);
}

int wh__http1_done(const wh__http1 *p) { return p->state == S_DONE; }

static int fail(wh__http1 *p, int rc)
{
    p->state = S_ERROR;
    p->error = rc;
    return rc;
}

/* ---- character classes ----------------------------------------------------- */
static int is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9') return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Case-insensitive equality of n bytes of s with lower-case `lit`. */
static int eq_ci(const char *s, size_t n, const char *lit)
{
    size_t ln = strlen(lit);
    if (n != ln) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i]) return 0;
    return 1;
}

/* ---- lines ------------------------------------------------------------------- */
/* One line from buf[*pos..len), CR LF (or a bare LF) removed.  Returns 1
 * with *out and *out_len set, 0 when the line continues past len (its bytes
 * are kept in p->line), or an error. */
static int take_line(wh__http1 *p, const char *buf, size_t len, size_t *pos,
                     const char **out, size_t *out_len)
{
    const char *s = buf + *pos;
    size_t avail = len - *pos;
    const char *nl = memchr(s, '\n', avail);
    if (!nl) {
        if (avail > p->max_line - p->line_len) return WH__H1_E_LINE_TOO_LONG;
        memcpy(p->line + p->line_len, s, avail);
        p->line_len += avail;
        *pos = len;
        return 0;
    }
    size_t n = (size_t)(nl - s);
    *pos += n + 1;
    const char *l;
    size_t ll;
    if (p->line_len) {
        if (n > p->max_line - p->line_len) return WH__H1_E_LINE_TOO_LONG;
        memcpy(p->line + p->line_len, s, n);
        l = p->line;
        ll = p->line_len + n;
        p->line_len = 0;
    } else {
        if (n > p->max_line) return WH__H1_E_LINE_TOO_LONG;
        l = s;
        ll = n;
    }
    if (ll && l[ll - 1] == '\r') ll--;
    if (memchr(l, '\r', ll)) return WH__H1_E_BARE_CR;
    if (memchr(l, '\0', ll)) return WH__H1_E_NUL;
    *out = l;
    *out_len = ll;
    return 1;
}

/* ---- status line ------------------------------------------------------------- */
static int parse_status(wh__http1 *p, const char *l, size_t n)
{
    if (n < 5 || memcmp(l, "HTTP/", 5) != 0) return WH__H1_E_STATUS_LINE;
    const char *v = l + 5;
    size_t vn = n - 5;
    if (vn >= 3 && v[0] >= '0' && v[0] <= '9' && v[1] == '.' && v[2] >= '0' &&
        v[2] <= '9') {
        if (v[0] != '1') return WH__H1_E_VERSION;
        p->minor = v[2] - '0';
        v += 3;
        vn -= 3;
    } else if (vn >= 1 && v[0] >= '0' && v[0] <= '9' && (vn == 1 || v[1] == ' ')) {
        return WH__H1_E_VERSION; /* "HTTP/2 200" */
    } else {
        return WH__H1_E_STATUS_LINE;
    }
    if (vn < 4 || v[0] != ' ') return WH__H1_E_STATUS_LINE;
    for (int i = 1; i <= 3; i++)
        if (v[i] < '0' || v[i] > '9') return WH__H1_E_STATUS_LINE;
    if (vn > 4 && v[4] != ' ') return WH__H1_E_STATUS_LINE;
    for (size_t i = 5; i < vn; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return WH__H1_E_STATUS_LINE;
    }
    int code = (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
    if (code < 100 || code > 599) return WH__H1_E_STATUS;
    p->status = code;
    return 0;
}

/* ---- header values ------------------------------------------------------------ */
/* Content-Length: a list of equal decimal numbers ("42" or "42, 42"). */
static int header_content_length(wh__http1 *p, const char *v, size_t n)
{
    size_t i = 0;
    int any = 0;
    while (i < n) {
        while (i < n && is_ows(v[i])) i++;
        if (i == n) break;
        if (v[i] < '0' || v[i] > '9') return WH__H1_E_CONTENT_LENGTH;
        uint64_t x = 0;
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            x = x * 10 + (uint64_t)(v[i] - '0');
            if (x > CL_MAX) return WH__H1_E_CONTENT_LENGTH;
            i++;
        }
        while (i < n && is_ows(v[i])) i++;
        if (i < n && v[i] != ',') return WH__H1_E_CONTENT_LENGTH;
        if (i < n) i++; /* the comma */
        if (p->content_length >= 0 && (uint64_t)p->content_length != x)
            return WH__H1_E_CONTENT_LENGTH;
        p->content_length = (int64_t)x;
        any = 1;
    }
    return any ? 0 : WH__H1_E_CONTENT_LENGTH;
}

/* Each element of a comma list: fn(p, elem, len) for the non-empty ones. */
typedef int (*elem_fn)(wh__http1 *p, const char *s, size_t n);

static int each_elem(wh__http1 *p, const char *v, size_t n, elem_fn fn)
{
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && is_ows(v[a])) a++;
        while (b > a && is_ows(v[b - 1])) b--;
        if (b > a) {
            int rc = fn(p, v + a, b - a);
            if (rc) return rc;
        }
        i = j + 1;
    }
    return 0;
}

static int te_elem(wh__http1 *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return WH__H1_E_TRANSFER_ENCODING;
    /* a coding after "chunked": chunked was not last (or came twice) */
    if (p->chunked) return WH__H1_E_TRANSFER_ENCODING;
    if (eq_ci(s, n, "chunked")) p->chunked = 1;
    return 0;
}

static int conn_elem(wh__http1 *p, const char *s, size_t n)
{
    if (eq_ci(s, n, "close")) p->conn_close = 1;
    else if (eq_ci(s, n, "keep-alive")) p->conn_keep_alive = 1;
    return 0;
}

static void keep_value(char *dst, int *have, const char *v, size_t n)
{
    if (n >= WH__H1_VALUE_MAX) n = WH__H1_VALUE_MAX - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    *have = 1;
}

/* One header line (not empty).  `trailer`: syntax only. */
static int parse_header(wh__http1 *p, const char *l, size_t n, int trailer)
{
    if (++p->n_headers > p->max_headers) return WH__H1_E_TOO_MANY_HEADERS;
    if (is_ows(l[0])) return WH__H1_E_FOLDING;
    size_t c = 0;
    while (c < n && is_tchar((unsigned char)l[c])) c++;
    if (c == 0 || c == n || l[c] != ':') return WH__H1_E_HEADER;
    const char *v = l + c + 1;
    size_t vn = n - c - 1;
    while (vn && is_ows(*v)) v++, vn--;
    while (vn && is_ows(v[vn - 1])) vn--;
    for (size_t i = 0; i < vn; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return WH__H1_E_HEADER;
    }
    if (trailer) return 0;
    switch (lower((unsigned char)l[0])) {
    case 'c':
        if (eq_ci(l, c, "content-length")) return header_content_length(p, v, vn);
        if (eq_ci(l, c, "connection")) return each_elem(p, v, vn, conn_elem);
        break;
    case 't':
        if (eq_ci(l, c, "transfer-encoding")) {
            p->te_seen = 1;
            int rc = each_elem(p, v, vn, te_elem);
            return rc;
        }
        break;
    case 'r':
        if (eq_ci(l, c, "retry-after"))
            keep_value(p->retry_after, &p->have_retry_after, v, vn);
        break;
    case 'w':
        if (eq_ci(l, c, "webhook-delivery"))
            keep_value(p->delivery, &p->have_delivery, v, vn);
        break;
    default: break;
    }
    return 0;
}

/* The empty line after a header block. */
static int end_of_headers(wh__http1 *p)
{
    if (p->status < 200) {
        if (p->status == 101) return WH__H1_E_SWITCHING;
        if (++p->interim > WH__H1_MAX_INTERIM) return WH__H1_E_TOO_MANY_INTERIM;
        p->status = 0;
        reset_block(p);
        p->state = S_STATUS;
        return 0;
    }
    if (p->te_seen && p->content_length >= 0) return WH__H1_E_TE_AND_LENGTH;
    p->keep_alive = p->minor >= 1 ? !p->conn_close
                                  : (p->conn_keep_alive && !p->conn_close);
    if (p->status == 204 || p->status == 304) {
        p->state = S_DONE;
    } else if (p->te_seen && p->chunked) {
        p->state = S_CHUNK_SIZE;
    } else if (p->te_seen || p->content_length < 0) {
        p->close_delimited = 1;
        p->keep_alive = 0;
        p->state = S_BODY_CLOSE;
    } else if (p->content_length == 0) {
        p->state = S_DONE;
    } else {
        p->remaining = (uint64_t)p->content_length;
        p->state = S_BODY_LEN;
    }
    return 0;
}

static int parse_chunk_size(wh__http1 *p, const char *l, size_t n)
{
    size_t i = 0;
    uint64_t x = 0;
    while (i < n) {
        char ch = l[i];
        int d;
        if (ch >= '0' && ch <= '9') d = ch - '0';
        else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') d = (ch | 0x20) - 'a' + 10;
        else break;
        if (x > (CL_MAX >> 4)) return WH__H1_E_CHUNK_TOO_LARGE;
        x = (x << 4) | (uint64_t)d;
        i++;
    }
    if (i == 0) return WH__H1_E_CHUNK;
    while (i < n && is_ows(l[i])) i++;
    if (i < n && l[i] != ';') return WH__H1_E_CHUNK;
    for (; i < n; i++) { /* chunk extensions: ignored, but no controls */
        unsigned char ch = (unsigned char)l[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return WH__H1_E_CHUNK;
    }
    p->remaining = x;
    p->state = x ? S_CHUNK_DATA : S_TRAILER;
    if (!x) p->n_headers = 0;
    return 0;
}

/* Body bytes: at most `n` of s, limited by the body limit; the first
 * body_cap are kept.  Returns how many were taken. */
static size_t take_body(wh__http1 *p, const char *s, size_t n)
{
    uint64_t room = p->max_body_read - p->body_read;
    if ((uint64_t)n > room) n = (size_t)room;
    if (p->body && p->body_len < p->body_cap) {
        size_t k = p->body_cap - p->body_len;
        if (k > n) k = n;
        memcpy(p->body + p->body_len, s, k);
        p->body_len += k;
    }
    p->body_read += n;
    return n;
}

static int truncate_here(wh__http1 *p)
{
    p->truncated = 1;
    p->keep_alive = 0;
    p->state = S_DONE;
    return WH__H1_DONE;
}

int wh__http1_feed(wh__http1 *p, const char *buf, size_t len, size_t *used)
{
    size_t pos = 0;
    int rc = 0;
    if (used) *used = 0;
    if (p->state == S_ERROR) return p->error;
    if (p->state == S_DONE) return len ? WH__H1_E_DONE : WH__H1_DONE;
    if (p->max_line > WH__H1_LINE_MAX_DEFAULT) p->max_line = WH__H1_LINE_MAX_DEFAULT;

    while (p->state != S_DONE && (pos < len)) {
        const char *l = NULL;
        size_t n = 0;
        switch (p->state) {
        case S_STATUS:
        case S_HEADER:
        case S_CHUNK_SIZE:
        case S_CHUNK_CRLF:
        case S_TRAILER:
            rc = take_line(p, buf, len, &pos, &l, &n);
            if (rc < 0) goto out;
            if (rc == 0) continue; /* pos == len */
            rc = 0;
            if (p->state == S_STATUS) {
                rc = parse_status(p, l, n);
                if (!rc) p->state = S_HEADER;
            } else if (p->state == S_HEADER) {
                rc = n ? parse_header(p, l, n, 0) : end_of_headers(p);
            } else if (p->state == S_CHUNK_SIZE) {
                rc = parse_chunk_size(p, l, n);
            } else if (p->state == S_CHUNK_CRLF) {
                if (n) rc = WH__H1_E_CHUNK;
                else p->state = S_CHUNK_SIZE;
            } else { /* S_TRAILER */
                if (n) rc = parse_header(p, l, n, 1);
                else p->state = S_DONE;
            }
            if (rc < 0) goto out;
            break;
        case S_BODY_LEN:
        case S_CHUNK_DATA: {
            if (p->body_read >= p->max_body_read) {
                truncate_here(p);
                break;
            }
            size_t want = len - pos;
            if ((uint64_t)want > p->remaining) want = (size_t)p->remaining;
            size_t k = take_body(p, buf + pos, want);
            pos += k;
            p->remaining -= k;
            if (p->remaining == 0)
                p->state = p->state == S_BODY_LEN ? S_DONE : S_CHUNK_CRLF;
            else if (p->body_read >= p->max_body_read)
                truncate_here(p);
            break;
        }
        case S_BODY_CLOSE:
            if (p->body_read >= p->max_body_read) {
                truncate_here(p);
                break;
            }
            pos += take_body(p, buf + pos, len - pos);
            if (p->body_read >= p->max_body_read) truncate_here(p);
            break;
        default: break;
        }
    }
out:
    p->bytes_fed += pos;
    if (used) *used = pos;
    if (rc < 0) return fail(p, rc);
    if (p->state == S_BODY_LEN && p->remaining == 0) p->state = S_DONE;
    if ((p->state == S_BODY_LEN || p->state == S_CHUNK_DATA ||
         p->state == S_BODY_CLOSE) &&
        p->body_read >= p->max_body_read)
        truncate_here(p);
    return p->state == S_DONE ? WH__H1_DONE : WH__H1_MORE;
}

int wh__http1_eof(wh__http1 *p)
{
    if (p->state == S_ERROR) return p->error;
    if (p->state == S_DONE) return WH__H1_DONE;
    if (p->state == S_BODY_CLOSE) {
        p->state = S_DONE;
        return WH__H1_DONE;
    }
    return fail(p, p->bytes_fed == 0 && p->line_len == 0 ? WH__H1_E_EMPTY
                                                         : WH__H1_E_EOF);
}
