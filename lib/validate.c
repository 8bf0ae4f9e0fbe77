/* Input validation: URLs, header lines, JSON payloads, event names.  Nothing
 * here allocates except wh__url_dup_redacted. */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#  include <emmintrin.h>
#endif
#include <strings.h>

/* ---- URL ------------------------------------------------------------------- */
static int hexd(unsigned char c);

/* The inside of "[...]" (RFC 3986 IP-literal, RFC 6874 zone): an IPv6
 * address, optionally followed by "%25" and a zone id of unreserved or
 * pct-encoded characters.  IPvFuture is not accepted. */
static int ipv6_literal_ok(const char *s, size_t n)
{
    const char *pct = memchr(s, '%', n);
    size_t an = pct ? (size_t)(pct - s) : n;
    if (an == 0 || an >= INET6_ADDRSTRLEN) return 0;
    char buf[INET6_ADDRSTRLEN];
    memcpy(buf, s, an);
    buf[an] = '\0';
    struct in6_addr a;
    if (inet_pton(AF_INET6, buf, &a) != 1) return 0;
    if (!pct) return 1;
    const char *z = pct, *end = s + n;
    if (end - z < 4 || memcmp(z, "%25", 3) != 0) return 0; /* zone not empty */
    for (z += 3; z < end; z++) {
        unsigned char c = (unsigned char)*z;
        if (c == '%') {
            if (end - z < 3 || !hexd((unsigned char)z[1]) || !hexd((unsigned char)z[2]))
                return 0;
            z += 2;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_' || c == '~')) {
            return 0;
        }
    }
    return 1;
}

int wh__url_valid(const char *url, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (!url || !*url) return *why = "URL is empty", 0;
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0) p = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0) p = url + 8;
    else return *why = "URL must start with http:// or https://", 0;
    size_t len = strlen(url);
    if (len > 8192) return *why = "URL longer than 8192 bytes", 0;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= 0x20 || *c == 0x7f)
            return *why = "URL contains whitespace or a control character", 0;
    /* authority = [userinfo@]host[:port] up to '/', '?' or '#' */
    size_t alen = strcspn(p, "/?#");
    const char *at = memchr(p, '@', alen);
    if (at) {
        alen -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (alen == 0) return *why = "URL has no host", 0;
    const char *end = p + alen, *port = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', alen);
        if (!rb || !ipv6_literal_ok(p + 1, (size_t)(rb - p - 1)))
            return *why = "URL has a malformed IPv6 host", 0;
        if (rb + 1 < end) {
            if (rb[1] != ':') return *why = "URL has junk after the IPv6 host", 0;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        if (colon) port = colon + 1;
        const char *hend = colon ? colon : end;
        if (hend == p) return *why = "URL has no host", 0;
        for (const char *c = p; c < hend; c++) {
            unsigned char ch = (unsigned char)*c;
            if (!(ch == '-' || ch == '.' || ch == '_' || ch == '%' || ch >= 0x80 ||
                  (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z')))
                return *why = "URL host contains an invalid character", 0;
        }
    }
    if (port) {
        if (port == end) return *why = "URL has an empty port", 0;
        long v = 0;
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9') return *why = "URL port is not a number", 0;
            v = v * 10 + (*c - '0');
            if (v > 65535) return *why = "URL port is out of range", 0;
        }
        if (v == 0) return *why = "URL port is out of range", 0;
    }
    return 1;
}

/* ---- headers --------------------------------------------------------------- */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int value_ok(const char *v, size_t n, const char **why)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\r' || c == '\n' || c == '\0')
            return *why = "header value contains CR, LF or NUL", 0;
        if (c < 0x20 && c != '\t')
            return *why = "header value contains a control character", 0;
        if (c == 0x7f) return *why = "header value contains DEL", 0;
    }
    return 1;
}

int wh__header_pair_valid(const char *name, const char *value, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (!name || !value) return *why = "header name or value is NULL", WH_E_HEADER;
    if (!*name) return *why = "header name is empty", WH_E_HEADER;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (!is_tchar(*c))
            return *why = (*c == '\r' || *c == '\n')
                              ? "header name contains CR or LF"
                              : "header name is not a token (RFC 9110)",
                   WH_E_HEADER;
    if (!value_ok(value, strlen(value), why)) return WH_E_HEADER;
    return WH_OK;
}

int wh__header_valid(const char *line, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (!line) return *why = "header is NULL", WH_E_HEADER;
    const char *colon = strchr(line, ':');
    if (!colon) return *why = "header must be \"Name: value\"", WH_E_HEADER;
    if (colon == line) return *why = "header name is empty", WH_E_HEADER;
    for (const char *c = line; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return *why = (*c == '\r' || *c == '\n')
                              ? "header name contains CR or LF"
                              : "header name is not a token (RFC 9110)",
                   WH_E_HEADER;
    if (!value_ok(colon + 1, strlen(colon + 1), why)) return WH_E_HEADER;
    return WH_OK;
}

/* ---- JSON (RFC 8259), iterative, depth-limited ----------------------------- */
#if defined(__GNUC__)
#  define WH__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#  define WH__ALWAYS_INLINE inline
#endif
#define JSON_MAX_DEPTH 512

typedef struct jp {
    const unsigned char *s, *p, *end;
} jp;

static inline void ws(jp *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int lit(jp *j, const char *w, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0) return 0;
    j->p += n;
    return 1;
}

static int hexd(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* UTF-8 sequence starting at p; returns its length or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Nonzero when one of the 8 bytes in x is < 0x20, '"', '\\' or >= 0x80,
 * i.e. needs a closer look (may also be nonzero for a byte just above such
 * a byte: that only sends the word to the byte-wise path). */
static uint64_t special8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & high;
}

/* The string at j->p (its opening quote); 1 when it is well formed, j->p
 * after its closing quote; 0 with j->p at the first bad byte.  Plain bytes
 * are skipped 16 at a time (SSE2, when simd and compiled in) or 8 (SWAR),
 * then one byte at a time at the first byte that needs a look: both ways
 * stop at the same byte, so the answer and the offset are the same (the
 * tests compare them). */
static WH__ALWAYS_INLINE int string_impl(jp *j, int simd)
{
    const unsigned char *p = j->p + 1, *end = j->end; /* after the quote */
    int ok = 0;
    (void)simd;
    for (;;) {
#if defined(__SSE2__)
        if (simd) {
            const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                          low = _mm_set1_epi8(0x20);
            while (end - p >= 16) {
                const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
                const __m128i m =
                    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 /* signed: catches < 0x20 and >= 0x80 */
                                 _mm_cmplt_epi8(v, low));
                unsigned bits = (unsigned)_mm_movemask_epi8(m);
                if (bits) {
                    p += __builtin_ctz(bits); /* plain bytes before it */
                    goto look;
                }
                p += 16;
            }
        }
#endif
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            uint64_t sp = special8(w);
            if (sp) {
                /* the lowest flagged byte is a real one (a false flag only
                 * sits above a real one); little-endian byte order */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                p += __builtin_ctzll(sp) / 8;
#endif
                goto look;
            }
            p += 8;
        }
    look:
        if (p >= end) break;
        unsigned char c = *p;
        if (c == '"') {
            p++;
            ok = 1;
            break;
        }
        if (c < 0x20) break;
        if (c == '\\') {
            if (++p >= end) break;
            c = *p;
            if (c == 'u') {
                if (end - p < 5) break;
                int i;
                for (i = 1; i <= 4; i++)
                    if (!hexd(p[i])) break;
                if (i <= 4) break;
                p += 5;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                p++;
            } else {
                break;
            }
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n = utf8_len(p, end);
        if (!n) break;
        p += n;
    }
    j->p = p;
    return ok;
}

static inline int digits(jp *j)
{
    const unsigned char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > s;
}

static WH__ALWAYS_INLINE int number(jp *j)
{
    if (*j->p == '-') j->p++;
    if (j->p >= j->end) return 0;
    if (*j->p == '0') j->p++;
    else if (!digits(j)) return 0;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!digits(j)) return 0;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (!digits(j)) return 0;
    }
    return 1;
}

/* Token by token; *offset: where the first error is.  simd: strings
 * scanned with SSE2 (when compiled in), else with SWAR; the answer and the
 * offset do not depend on it. */
static WH__ALWAYS_INLINE int json_ref_impl(const char *s, size_t len, size_t *offset, int simd)
{
    jp j = {(const unsigned char *)s, (const unsigned char *)s,
            (const unsigned char *)s + len};
    char stack[JSON_MAX_DEPTH]; /* '{' or '[' */
    int depth = 0;
    ws(&j);
value:
    if (j.p >= j.end) goto bad;
    /* most frequent first (an if chain predicts better than a jump table) */
    if (*j.p == '"') {
        if (!string_impl(&j, simd)) goto bad;
    } else if (*j.p == '{' || *j.p == '[') {
        if (depth == JSON_MAX_DEPTH) goto bad;
        stack[depth++] = (char)*j.p++;
        ws(&j);
        if (j.p < j.end && *j.p == (stack[depth - 1] == '{' ? '}' : ']')) {
            j.p++;
            depth--;
            goto after;
        }
        if (stack[depth - 1] == '{') goto key;
        goto value;
    } else if (*j.p == '-' || (*j.p >= '0' && *j.p <= '9')) {
        if (!number(&j)) goto bad;
    } else if (*j.p == 't') {
        if (!lit(&j, "true", 4)) goto bad;
    } else if (*j.p == 'f') {
        if (!lit(&j, "false", 5)) goto bad;
    } else if (*j.p == 'n') {
        if (!lit(&j, "null", 4)) goto bad;
    } else {
        goto bad;
    }
after:
    ws(&j);
    if (depth == 0) {
        if (j.p != j.end) goto bad;
        return WH_OK;
    }
    if (j.p >= j.end) goto bad;
    if (*j.p == ',') {
        j.p++;
        ws(&j);
        if (stack[depth - 1] == '{') goto key;
        goto value;
    }
    if (*j.p == (stack[depth - 1] == '{' ? '}' : ']')) {
        j.p++;
        depth--;
        goto after;
    }
    goto bad;
key:
    if (j.p >= j.end || *j.p != '"' || !string_impl(&j, simd)) goto bad;
    ws(&j);
    if (j.p >= j.end || *j.p != ':') goto bad;
    j.p++;
    ws(&j);
    goto value;
bad:
    *offset = (size_t)(j.p - j.s);
    return WH_E_JSON;
}

/* The two paths: SWAR only, and SSE2 where compiled in (the same as the
 * portable one without SSE2). */
static int json_ref_portable(const char *s, size_t len, size_t *offset)
{
    return json_ref_impl(s, len, offset, 0);
}

static int json_ref(const char *s, size_t len, size_t *offset)
{
    return json_ref_impl(s, len, offset, 1);
}

int wh__json_valid_path(const char *s, size_t len, size_t *offset, int path)
{
    size_t dummy;
    if (!offset) offset = &dummy;
    if (!s) return *offset = 0, WH_E_JSON;
    return path == WH__JSON_PORTABLE ? json_ref_portable(s, len, offset)
                                     : json_ref(s, len, offset);
}

int wh__json_valid(const char *s, size_t len, size_t *offset)
{
    size_t dummy;
    if (!offset) offset = &dummy;
    if (!s) return *offset = 0, WH_E_JSON;
    return json_ref(s, len, offset);
}

/* ---- event names ----------------------------------------------------------- */
int wh__utf8_valid(const char *s, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = utf8_len(p, end);
        if (!n) {
            if (bad) *bad = (size_t)(p - (const unsigned char *)s);
            return 0;
        }
        p += n;
    }
    return 1;
}

int wh__event_names_check(wh_engine *e, const char *type, const char *channel)
{
    size_t off;
    if (!wh__utf8_valid(type, &off))
        return wh__fail(e, WH_E_INVAL, "wh_emit: event type is not valid UTF-8 (at byte %zu)",
                        off);
    if (channel && !wh__utf8_valid(channel, &off))
        return wh__fail(e, WH_E_INVAL, "wh_emit: channel is not valid UTF-8 (at byte %zu)",
                        off);
    return WH_OK;
}

/* ---- reserved header names ------------------------------------------------- */
/* Headers the library or the HTTP stack sets itself: a custom header of the
 * same name would be sent twice or override the real one. */
static const char *const fixed_reserved[] = {"Host", "Content-Length", "Content-Type",
                                             "Transfer-Encoding"};

int wh__headers_reserved_check(wh_engine *e, const char *where, const char *const *headers,
                               size_t n, const char *const *delivery, size_t n_delivery)
{
    for (size_t i = 0; i < n; i++) {
        const char *line = headers[i], *colon = line ? strchr(line, ':') : NULL;
        if (!colon) continue; /* wh__header_valid reports it */
        size_t nl = (size_t)(colon - line);
        for (size_t k = 0; k < sizeof fixed_reserved / sizeof *fixed_reserved; k++)
            if (strlen(fixed_reserved[k]) == nl && strncasecmp(line, fixed_reserved[k], nl) == 0)
                return wh__fail(e, WH_E_HEADER, "%s.headers[%zu]: \"%.*s\" is set by the "
                                "HTTP stack and cannot be a custom header", where, i,
                                (int)nl, line);
        for (size_t k = 0; k < n_delivery; k++)
            if (delivery[k] && strlen(delivery[k]) == nl &&
                strncasecmp(line, delivery[k], nl) == 0)
                return wh__fail(e, WH_E_HEADER, "%s.headers[%zu]: \"%.*s\" is a delivery "
                                "header the library sets (id, timestamp, attempt, signature "
                                "or API key) and cannot be a custom header", where, i,
                                (int)nl, line);
    }
    return WH_OK;
}

/* ---- redacted URLs --------------------------------------------------------- */
/* "scheme://user:password@host/..." -> "scheme://user:***@host/...". */
char *wh__url_dup_redacted(const char *url)
{
    if (!url) return NULL;
    size_t n = strlen(url);
    const char *auth = strstr(url, "://");
    const char *pw = NULL, *at = NULL;
    if (auth) {
        auth += 3;
        size_t alen = strcspn(auth, "/?#");
        at = memchr(auth, '@', alen);
        if (at) {
            /* the last '@' of the authority ends the userinfo */
            for (const char *c = at; c < auth + alen; c++)
                if (*c == '@') at = c;
            pw = memchr(auth, ':', (size_t)(at - auth));
        }
    }
    size_t shown = pw ? (size_t)(pw + 1 - url) + 3 + strlen(at) : n;
    char *out = malloc(n + 1 + shown + 1);
    if (!out) return NULL;
    memcpy(out, url, n + 1);
    char *r = out + n + 1;
    if (pw) {
        size_t head = (size_t)(pw + 1 - url);
        memcpy(r, url, head);
        memcpy(r + head, "***", 3);
        memcpy(r + head + 3, at, strlen(at) + 1);
    } else {
        memcpy(r, url, n + 1);
    }
    return out;
}

const char *wh__url_redacted(const char *packed)
{
    return packed ? packed + strlen(packed) + 1 : NULL;
}
