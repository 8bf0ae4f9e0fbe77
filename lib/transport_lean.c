/* The lean transport: HTTP/1.1 over non-blocking sockets (see
 * <webhook/lean.h>).
 *
 * Objects:
 *   ltarget  one URL as submitted (parsed once, cached by URL text): its
 *            pool and the request-head prefix ("POST /path HTTP/1.1", Host).
 *   lpool    one host and port: the resolved address, idle connections.
 *   lconn    one TCP connection (fd on the epoll set, edge-triggered, for
 *            both directions, registered once) with its response parser.
 *   lreq     one submitted request: its head buffer (reused), response
 *            body buffer, deadline in the timer heap.  Recycled through a
 *            free list, so steady state allocates nothing.
 *
 * perform() waits on the epoll set (up to the nearest deadline), does the
 * ready I/O, expires deadlines, then reports finished requests one at a
 * time, as the curl transport does: done() may submit and cancel (even a
 * finished request not yet reported), must not call perform()
 * (WH_E_RECURSIVE), and a destroy() from inside done() is deferred until
 * perform() returns.  No thread is ever started. */
#include "ds.h"
#include "http1.h"
#include "internal.h"

#include <webhook/lean.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef WH_HAVE_CARES
#include <ares.h>
#endif
#ifdef WH_HAVE_LEAN_TLS
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#define LEAN_RBUF 16384           /* shared read buffer */
#define LEAN_EVENTS 64            /* epoll events per wait */
#define LEAN_NO_TIMER_MS 1000     /* timeout_ms() while running, no deadline */
#define LEAN_IDLE_CHECK_MS 1000   /* idle this long: peek before reuse */
#define LEAN_MSG 320
#define LEAN_DNS_TAG ((uint64_t)1 << 63) /* epoll data of a resolver socket */
#define LEAN_WAKE_TAG ((uint64_t)1 << 62) /* epoll data of the wakeup eventfd */
#define LEAN_DNS_TTL_MAX_S 300          /* longest an answer is kept */
#define LEAN_IOV 1024             /* iovecs per sendmsg (Linux's IOV_MAX) */

#define OPT_HAS(o, field)                                                     \
    ((o)->struct_size >= offsetof(wh_lean_options, field) + sizeof((o)->field))

typedef struct lpool lpool;
typedef struct lconn lconn;
typedef struct lreq lreq;
typedef struct wh_lean wh_lean;

#ifdef WH_HAVE_LEAN_TLS
/* One TLS profile (wh_request.tls: CA store, client certificate, minimum
 * version, verification, pins): one SSL_CTX each, made once. */
typedef struct ltls {
    struct ltls *next;
    char *key;
    SSL_CTX *ctx;
    size_t n_pins;
    unsigned char (*pins)[32];   /* SHA-256 of the accepted public keys */
} ltls;
#endif

typedef struct ltarget {
    char *url;                   /* the map key: url, or url \x1f profile */
    lpool *pool;                 /* NULL when refused */
    char *prefix;                /* request line, Host, Authorization */
    size_t prefix_len;
    int error;                   /* refused: reported for every request */
    char msg[LEAN_MSG];
} ltarget;

struct lpool {
    char *key;                   /* "host:port", "https:host:port" */
    int tls;
    char *host;                  /* for SNI and verification */
    int host_is_ip;
    int port;
    wh_lean *owner;
#ifdef WH_HAVE_LEAN_TLS
    ltls *prof;                  /* NULL: the transport's own TLS settings */
#endif
    int needs_dns;               /* a host name: resolved through c-ares */
    int resolving;
    int64_t resolved_until;      /* the answer's TTL */
    wh__list waiting;            /* of lreq.wait_link: for the answer */
#ifdef WH_HAVE_LEAN_TLS
    SSL_SESSION *session;        /* the last one the server gave: resumption */
#endif
    struct sockaddr_storage addr;
    socklen_t addr_len;
    wh__list idle;               /* of lconn.link, most recent at the tail */
    size_t busy;                 /* connections carrying a request */
    size_t peak;                 /* most busy at once */
};

enum { C_CONNECTING, C_HANDSHAKE, C_WRITING, C_READING, C_IDLE };

struct lconn {
    wh__link link;               /* in pool->idle while idle */
    lpool *pool;
    int fd;
    int state;
    int reused;                  /* carried a request before this one */
    int write_failed;
    int clean;                   /* ends after a complete answer */
    int64_t idle_since;
    lreq *req;
#ifdef WH_HAVE_LEAN_TLS
    SSL *ssl;
#endif
    wh__http1 parser;
};

enum { R_FREE, R_RUNNING, R_FINISHED };

struct lreq {
    wh__link link;               /* running, finished or free */
    wh__link wait_link;          /* in pool->waiting while resolving */
    int waiting;
    wh__heap_node timer;
    int state;
    void *token;
    ltarget *tgt;
    lconn *conn;
    char *head;
    size_t head_len, head_cap;
    const wh_body_piece *pieces; /* the body: the request's pieces, or &one */
    size_t n_pieces;
    wh_body_piece one;           /* a contiguous body */
    size_t body_len;
    int body_inline;             /* TLS: the body was appended to head */
    size_t written;              /* of req_total() */
    size_t piece, piece_off;     /* send cursor in the body, past the head */
    int64_t deadline;            /* the attempt */
    int64_t connect_deadline;
    uint32_t timeout_ms, connect_timeout_ms;
    int retried;
    /* the answer */
    int status;
    int error;
    char msg[LEAN_MSG];
    char *rbody;                 /* max_response_bytes + 1 */
    size_t rbody_len;
    int have_retry_after;
    char retry_after[WH__H1_VALUE_MAX];
};

struct wh_lean {
    wh_transport vt;             /* vt.user == this */
    wh_lean_options opts;
    int ep;                      /* epoll fd */
    wh__map targets;             /* url -> ltarget */
    wh__map pools;               /* key -> lpool */
    wh__list running, finished, free_reqs;
    size_t n_reqs;               /* allocated lreq (heap room) */
    wh__heap timers;
    size_t open_conns;
    int in_perform;
    int destroy_pending;
#ifdef WH_HAVE_LEAN_TLS
    SSL_CTX *ssl_ctx;            /* made at the first https:// target */
    ltls *profiles;
    BIO_METHOD *bio_meth;        /* sockets without SIGPIPE (send MSG_NOSIGNAL) */
    char *ca_file, *ca_path;
#endif
    int wake_fd;                 /* eventfd: wakeup() interrupts a wait */
#ifdef WH_LOOP_VERSION
    wh_loop loop;                /* set_loop's hooks (version 2) */
    int loop_on;
    void *ep_slot;               /* the host's slot for our epoll fd */
    int64_t armed;               /* deadline the host's timer is armed for */
#endif
    int ssrf_guard;              /* lib/ssrf.c on every address connected to */
    wh__cidr *allow;
    size_t n_allow;
#ifdef WH_HAVE_CARES
    ares_channel dns;            /* made at the first host name */
    int dns_init;
    char *dns_servers;
#endif
    char rbuf[LEAN_RBUF];
    struct iovec iov[LEAN_IOV];  /* do_write's */
    wh__lean_sends sends;        /* counted by do_write (tests) */
    int sndbuf;                  /* > 0: SO_SNDBUF of new connections (tests) */
};

static int64_t now_ms(void) { return wh__mono_ns() / 1000000; }

static size_t req_total(const lreq *r)
{
    return r->head_len + (r->body_inline ? 0 : r->body_len);
}

static lreq *req_of(wh__link *x) { return x ? WH__CONTAINER_OF(x, lreq, link) : NULL; }
static lconn *conn_of(wh__link *x) { return x ? WH__CONTAINER_OF(x, lconn, link) : NULL; }
static lreq *req_of_timer(wh__heap_node *x)
{
    return x ? WH__CONTAINER_OF(x, lreq, timer) : NULL;
}

/* ---- URLs -------------------------------------------------------------------- */
static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (room n); returns the length. */
static size_t pct_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    return o;
}

static int set_refused(ltarget *t, int error, const char *fmt, const char *arg)
{
    t->error = error;
    snprintf(t->msg, sizeof t->msg, fmt, arg);
    return WH_OK;
}

static lpool *pool_get(wh_lean *l, int tls, const char *host, size_t host_len, int port,
                       int is_ip, const struct sockaddr_storage *sa, socklen_t sl, void *prof)
{
    char key[340];
    int kn = prof ? snprintf(key, sizeof key, "https:%.*s:%d|%p", (int)host_len, host, port,
                             prof)
                  : snprintf(key, sizeof key, "%s%.*s:%d", tls ? "https:" : "",
                             (int)host_len, host, port);
    if (kn < 0 || (size_t)kn >= sizeof key) return NULL;
    uint64_t h = wh__hash(key, (size_t)kn);
    lpool *p = wh__map_get(&l->pools, key, (size_t)kn, h);
    if (p) return p;
    p = wh__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->key = wh__strndup(key, (size_t)kn);
    p->host = wh__strndup(host, host_len);
    if (!p->key || !p->host || wh__map_put(&l->pools, p->key, (size_t)kn, h, p) != WH_OK) {
        free(p->key);
        free(p->host);
        free(p);
        return NULL;
    }
    p->tls = tls;
    p->host_is_ip = is_ip;
    p->port = port;
    p->owner = l;
#ifdef WH_HAVE_LEAN_TLS
    p->prof = prof;
#endif
    p->addr = *sa;
    p->addr_len = sl;
    return p;
}

/* Parse url into t (scheme, authority, target, address).  Returns WH_OK
 * (t may be refused, t->error set), WH_E_URL for what is no http(s) URL, or
 * WH_E_NOMEM. */
#ifdef WH_HAVE_LEAN_TLS
static int tls_ctx(wh_lean *l);
#endif

/* An IPv4 address in any of the forms URL parsers read as one ("127.0.0.1",
 * "127.1", "2130706433", "0x7f.1"): never sent to a resolver. */
static int ipv4_literal(const char *h, struct in_addr *out)
{
    if (!*h || strspn(h, "0123456789abcdefABCDEFxX.") != strlen(h)) return 0;
    return inet_aton(h, out) != 0;
}

static int target_parse(wh_lean *l, ltarget *t, const char *url, void *prof)
{
    const char *s;
    int tls = 0;
    if (strncasecmp(url, "http://", 7) == 0) {
        s = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
#ifdef WH_HAVE_LEAN_TLS
        s = url + 8;
        tls = 1;
        if (tls_ctx(l) != WH_OK)
            return set_refused(t, WH_E_TRANSPORT, "lean transport: %s: cannot set up TLS "
                               "(CA store)", "url");
#else
        return set_refused(t, WH_E_TRANSPORT,
                           "lean transport: %s: https:// is not supported by the lean "
                           "transport (built without TLS; use transport \"auto\" or "
                           "\"curl\")", "url");
#endif
    } else {
        return WH_E_URL;
    }
    size_t alen = strcspn(s, "/?#");
    const char *auth = s, *path = s + alen;
    const char *at = NULL;
    for (const char *q = auth; q < auth + alen; q++)
        if (*q == '@') at = q;
    const char *hp = at ? at + 1 : auth;
    size_t hplen = (size_t)(auth + alen - hp);
    if (hplen == 0) return WH_E_URL;
    const char *host = hp, *port_s = NULL;
    size_t host_len;
    if (hp[0] == '[') {
        const char *rb = memchr(hp, ']', hplen);
        if (!rb) return WH_E_URL;
        host = hp + 1;
        host_len = (size_t)(rb - host);
        if (rb + 1 < hp + hplen) {
            if (rb[1] != ':') return WH_E_URL;
            port_s = rb + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', hplen);
        host_len = colon ? (size_t)(colon - hp) : hplen;
        if (colon) port_s = colon + 1;
    }
    int port = tls ? 443 : 80;
    if (port_s && port_s < hp + hplen) {
        port = 0;
        for (const char *q = port_s; q < hp + hplen; q++) {
            if (*q < '0' || *q > '9') return WH_E_URL;
            port = port * 10 + (*q - '0');
            if (port > 65535) return WH_E_URL;
        }
        if (port == 0) return WH_E_URL;
    }
    if (host_len == 0 || host_len > 253) return WH_E_URL;

    /* the address: IP literals and "localhost" only */
    char hbuf[256];
    memcpy(hbuf, host, host_len);
    hbuf[host_len] = '\0';
    struct sockaddr_storage sa;
    socklen_t sl = 0;
    memset(&sa, 0, sizeof sa);
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&sa;
    if (hp[0] == '[') {
        if (inet_pton(AF_INET6, hbuf, &v6->sin6_addr) != 1) return WH_E_URL;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        sl = sizeof *v6;
    } else if (ipv4_literal(hbuf, &v4->sin_addr) || strcasecmp(hbuf, "localhost") == 0) {
        if (strcasecmp(hbuf, "localhost") == 0) v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        sl = sizeof *v4;
    } else {
#ifdef WH_HAVE_CARES
        sl = 0; /* resolved when a request needs it */
#else
        return set_refused(t, WH_E_CONNECT,
                           "lean transport: cannot resolve host \"%.100s\": the lean "
                           "transport was built without c-ares and takes IP literals and "
                           "localhost only (use transport \"auto\" or \"curl\")", hbuf);
#endif
    }
    int is_ip = hp[0] == '[' || (sl != 0 && strcasecmp(hbuf, "localhost") != 0);
    t->pool = pool_get(l, tls, hbuf, host_len, port, is_ip, &sa, sl, tls ? prof : NULL);
    if (!t->pool) return WH_E_NOMEM;
    if (sl == 0) t->pool->needs_dns = 1;

    /* the head prefix */
    const char *frag = strchr(path, '#');
    size_t plen = frag ? (size_t)(frag - path) : strlen(path);
    size_t cap = plen + hplen + 64 + (at ? 4 * (size_t)(at - auth) / 3 + 48 : 0);
    t->prefix = malloc(cap);
    if (!t->prefix) return WH_E_NOMEM;
    char *o = t->prefix;
    o += sprintf(o, "POST %s%.*s HTTP/1.1\r\nHost: %.*s\r\n",
                 plen == 0 || path[0] == '?' ? "/" : "", (int)plen, path, (int)hplen, hp);
    if (at) {
        size_t ulen = (size_t)(at - auth);
        char *dec = malloc(ulen + 1);
        if (!dec) return WH_E_NOMEM;
        size_t dn = pct_decode(auth, ulen, dec);
        static const char basic[] = "Authorization: Basic ";
        memcpy(o, basic, sizeof basic - 1);
        o += sizeof basic - 1;
        o += b64_encode((const unsigned char *)dec, dn, o);
        memcpy(o, "\r\n", 2);
        o += 2;
        explicit_bzero(dec, ulen + 1);
        free(dec);
    }
    t->prefix_len = (size_t)(o - t->prefix);
    return WH_OK;
}

int wh__lean_handles(const char *url)
{
    if (!url) return 0;
    const char *s;
    if (strncasecmp(url, "http://", 7) == 0) s = url + 7;
#ifdef WH_HAVE_LEAN_TLS
    else if (strncasecmp(url, "https://", 8) == 0) s = url + 8;
#endif
    else return 0;
    size_t alen = strcspn(s, "/?#");
    const char *hp = s;
    for (const char *q = s; q < s + alen; q++)
        if (*q == '@') hp = q + 1;
    size_t hplen = (size_t)(s + alen - hp);
    if (hplen && hp[0] == '[') return 1;
    const char *colon = memchr(hp, ':', hplen);
    size_t hl = colon ? (size_t)(colon - hp) : hplen;
    char buf[64];
    if (hl == 0 || hl >= sizeof buf) return 0;
    memcpy(buf, hp, hl);
    buf[hl] = '\0';
#ifdef WH_HAVE_CARES
    return 1; /* names are resolved on the transport's own loop */
#else
    struct in_addr a;
    return ipv4_literal(buf, &a) || strcasecmp(buf, "localhost") == 0;
#endif
}

static void target_free(ltarget *t)
{
    if (!t) return;
    free(t->url);
    free(t->prefix);
    free(t);
}

#ifdef WH_HAVE_LEAN_TLS
static int tls_profile(wh_lean *l, const wh_tls *tls, ltls **out);
#endif

/* The target of url (with TLS settings tls, https:// only), made at its
 * first request. */
static int target_get(wh_lean *l, const char *url, const wh_tls *tls, ltarget **out)
{
    size_t n = strlen(url);
    void *prof = NULL;
    char *key = (char *)url;
    size_t kn = n;
#ifdef WH_HAVE_LEAN_TLS
    if (tls && strncasecmp(url, "https://", 8) == 0) {
        ltls *pr = NULL;
        int prc = tls_profile(l, tls, &pr);
        if (prc != WH_OK) return prc;
        prof = pr;
        kn = n + 1 + strlen(pr->key);
        key = malloc(kn + 1);
        if (!key) return WH_E_NOMEM;
        memcpy(key, url, n);
        key[n] = '\x1f';
        memcpy(key + n + 1, pr->key, kn - n - 1);
        key[kn] = '\0';
    }
#else
    (void)tls;
#endif
    uint64_t h = wh__hash(key, kn);
    ltarget *t = wh__map_get(&l->targets, key, kn, h);
    if (t) {
        if (key != url) free(key);
        *out = t;
        return WH_OK;
    }
    t = wh__calloc(1, sizeof *t);
    if (!t) {
        if (key != url) free(key);
        return WH_E_NOMEM;
    }
    t->url = key != url ? key : wh__strndup(url, n);
    int rc = t->url ? target_parse(l, t, url, prof) : WH_E_NOMEM;
    if (rc == WH_OK) rc = wh__map_put(&l->targets, t->url, kn, h, t);
    if (rc != WH_OK) {
        target_free(t);
        return rc;
    }
    *out = t;
    return WH_OK;
}

/* ---- requests ----------------------------------------------------------------- */
static void req_free(lreq *r)
{
    if (!r) return;
    free(r->head);
    free(r->rbody);
    free(r);
}

static lreq *req_get(wh_lean *l)
{
    lreq *r = req_of(wh__list_pop_front(&l->free_reqs));
    if (r) return r;
    if (wh__heap_reserve(&l->timers, l->n_reqs + 1) != WH_OK) return NULL;
    r = wh__calloc(1, sizeof *r);
    if (!r) return NULL;
    r->rbody = malloc(l->opts.max_response_bytes + 1);
    if (!r->rbody) {
        free(r);
        return NULL;
    }
    r->timer = (wh__heap_node)WH__HEAP_NODE_INIT;
    l->n_reqs++;
    return r;
}

static void req_recycle(wh_lean *l, lreq *r)
{
    if (r->timer.idx != SIZE_MAX) wh__heap_remove(&l->timers, &r->timer);
    r->state = R_FREE;
    r->token = NULL;
    r->conn = NULL;
    wh__list_push_front(&l->free_reqs, &r->link);
}

static int has_header(const wh_request *req, const char *name, size_t nl)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i];
        if (h && strncasecmp(h, name, nl) == 0 && h[nl] == ':') return 1;
    }
    return 0;
}

static int build_head(lreq *r, const ltarget *t, const wh_request *req)
{
    static const char ct[] = "Content-Type: application/json\r\n";
    static const char ua[] = "User-Agent: " WH_USER_AGENT "\r\n";
    /* TLS encrypts from a copy anyway: head and body go in one record */
    r->body_inline = t->pool->tls;
    size_t want = t->prefix_len + sizeof ct + sizeof ua + 48 +
                  (r->body_inline ? req->body_len : 0);
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i]) want += strlen(req->headers[i]) + 2;
    if (want > r->head_cap) {
        char *h = realloc(r->head, want);
        if (!h) return WH_E_NOMEM;
        r->head = h;
        r->head_cap = want;
    }
    char *o = r->head;
    memcpy(o, t->prefix, t->prefix_len);
    o += t->prefix_len;
    static const char cl[] = "Content-Length: ";
    memcpy(o, cl, sizeof cl - 1);
    o += sizeof cl - 1;
    char digits[24];
    size_t nd = 0, v = req->body_len;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd) *o++ = digits[--nd];
    *o++ = '\r';
    *o++ = '\n';
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i];
        if (!h) continue;
        size_t n = strlen(h);
        memcpy(o, h, n);
        o[n] = '\r';
        o[n + 1] = '\n';
        o += n + 2;
    }
    if (!has_header(req, "Content-Type", 12)) {
        memcpy(o, ct, sizeof ct - 1);
        o += sizeof ct - 1;
    }
    if (!has_header(req, "User-Agent", 10)) {
        memcpy(o, ua, sizeof ua - 1);
        o += sizeof ua - 1;
    }
    memcpy(o, "\r\n", 2);
    o += 2;
    if (r->body_inline) {
        if (req->n_pieces) {
            for (size_t i = 0; i < req->n_pieces; i++) {
                if (!req->pieces[i].len) continue;
                memcpy(o, req->pieces[i].data, req->pieces[i].len);
                o += req->pieces[i].len;
            }
        } else if (req->body_len) {
            memcpy(o, req->body, req->body_len);
            o += req->body_len;
        }
    }
    r->head_len = (size_t)(o - r->head);
    return WH_OK;
}

/* r is finished: off its connection and timer, onto the finished list. */
static void req_finish(wh_lean *l, lreq *r, int error, const char *fmt, ...)
    WH_PRINTF(4, 5);
static void req_finish(wh_lean *l, lreq *r, int error, const char *fmt, ...)
{
    r->error = error;
    r->msg[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->msg, sizeof r->msg, fmt, ap);
        va_end(ap);
    }
    if (r->timer.idx != SIZE_MAX) wh__heap_remove(&l->timers, &r->timer);
    if (r->waiting) {
        wh__list_unlink(&r->tgt->pool->waiting, &r->wait_link);
        r->waiting = 0;
    }
    r->conn = NULL;
    wh__list_unlink(&l->running, &r->link);
    r->state = R_FINISHED;
    wh__list_push_back(&l->finished, &r->link);
}

/* ---- connections ----------------------------------------------------------------- */
static void conn_close(wh_lean *l, lconn *c)
{
    if (c->state == C_IDLE) wh__list_unlink(&c->pool->idle, &c->link);
    else if (c->pool->busy) c->pool->busy--;
#ifdef WH_HAVE_LEAN_TLS
    if (c->ssl) {
        /* after a complete answer: close_notify (not waited for), which
         * also keeps the session resumable; after a failure OpenSSL
         * forgets the session */
        if (c->state == C_IDLE || c->clean) {
            ERR_clear_error();
            (void)SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
    }
#endif
    close(c->fd);
    l->open_conns--;
    free(c);
}

/* A new connection to pool (connect started).  NULL with *err set. */
static lconn *conn_new(wh_lean *l, lpool *p, int *err)
{
    lconn *c = wh__calloc(1, sizeof *c);
    if (!c) {
        *err = ENOMEM;
        return NULL;
    }
    c->pool = p;
    c->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        *err = errno;
        free(c);
        return NULL;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (l->sndbuf) (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &l->sndbuf, sizeof l->sndbuf);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        *err = errno;
        close(c->fd);
        free(c);
        return NULL;
    }
    wh__http1_init(&c->parser);
    c->parser.max_line = l->opts.max_line_bytes;
    c->parser.max_headers = l->opts.max_header_lines;
    c->parser.max_body_read = l->opts.max_response_read;
    c->state = C_CONNECTING;
    l->open_conns++;
    p->busy++;
    if (p->busy > p->peak) p->peak = p->busy;
    if (connect(c->fd, (const struct sockaddr *)&p->addr, p->addr_len) != 0 &&
        errno != EINPROGRESS) {
        *err = errno;
        conn_close(l, c);
        return NULL;
    }
    return c;
}

/* Is an idle connection still usable?  (The peer may have closed it while
 * nobody looked; edge-triggered events for idle connections close them in
 * perform(), this catches one that went quiet for long.) */
static int idle_alive(lconn *c, int64_t now)
{
    if (now - c->idle_since < LEAN_IDLE_CHECK_MS) return 1;
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Both return 1 while c still carries its request, 0 when c was closed,
 * went idle or its request finished (c may then be freed). */
static int do_write(wh_lean *l, lconn *c);
static int do_read(wh_lean *l, lconn *c, int hup);

static const char *pool_name(const lconn *c) { return c->pool->key; }

/* Put r on a connection: an idle one of its pool (unless `fresh`), or a new
 * one.  Starts writing when the connection is ready. */
#ifdef WH_HAVE_CARES
static void dns_wait(wh_lean *l, lreq *r);
#endif

static void req_start(wh_lean *l, lreq *r, int fresh, int64_t now)
{
    lpool *p = r->tgt->pool;
    lconn *c = NULL;
#ifdef WH_HAVE_CARES
    if (p->needs_dns && (p->resolving || now >= p->resolved_until)) {
        dns_wait(l, r);
        return;
    }
#endif
    while (!fresh && (c = conn_of(p->idle.tail))) {
        wh__list_unlink(&p->idle, &c->link);
        c->state = C_READING; /* not idle any more (conn_close bookkeeping) */
        p->busy++;
        if (p->busy > p->peak) p->peak = p->busy;
        if (idle_alive(c, now)) break;
        conn_close(l, c);
        c = NULL;
    }
    r->written = 0;
    r->piece = r->piece_off = 0;
    r->status = 0;
    r->rbody_len = 0;
    r->have_retry_after = 0;
    if (c) {
        c->reused = 1;
        c->req = r;
        r->conn = c;
        wh__http1_reset(&c->parser);
        c->parser.body = r->rbody;
        c->parser.body_cap = l->opts.max_response_bytes;
        c->state = C_WRITING;
        do_write(l, c);
        return;
    }
    if (l->ssrf_guard) {
        char why[200];
        if (wh__ssrf_check((const struct sockaddr *)&p->addr, p->addr_len, l->allow,
                           l->n_allow, why, sizeof why)) {
            req_finish(l, r, WH_E_FORBIDDEN, "lean transport: %s: %s (ssrf_guard)", p->key,
                       why);
            return;
        }
    }
    int err = 0;
    c = conn_new(l, p, &err);
    if (!c) {
        req_finish(l, r, err == ENOMEM ? WH_E_NOMEM : WH_E_CONNECT,
                   "lean transport: connect to %s: %s", p->key, strerror(err));
        return;
    }
    c->req = r;
    r->conn = c;
    c->parser.body = r->rbody;
    c->parser.body_cap = l->opts.max_response_bytes;
    if (r->connect_timeout_ms && r->timer.idx != SIZE_MAX) {
        int64_t cd = now + r->connect_timeout_ms;
        if (cd < r->deadline) {
            r->connect_deadline = cd;
            wh__heap_update(&l->timers, &r->timer, cd);
        }
    }
}

/* The connection failed while carrying r (err: errno or 0; what: where). */
static void conn_fail(wh_lean *l, lconn *c, int wh_err, const char *what, int err)
{
    lreq *r = c->req;
    int retry = r && c->reused && !r->retried && c->parser.bytes_fed == 0 &&
                r->written < req_total(r);
    const char *name = pool_name(c);
    char where[300];
    snprintf(where, sizeof where, "%s", name);
    c->req = NULL;
    conn_close(l, c);
    if (!r) return;
    r->conn = NULL;
    if (retry) {
        /* the server closed a kept-alive connection before it had the
         * whole request: it cannot have acted on it; once more, fresh */
        r->retried = 1;
        req_start(l, r, 1, now_ms());
        return;
    }
    if (err)
        req_finish(l, r, wh_err, "lean transport: %s %s: %s", what, where, strerror(err));
    else
        req_finish(l, r, wh_err, "lean transport: %s %s", what, where);
}

/* The response on c is complete. */
static void conn_response(wh_lean *l, lconn *c, int reusable)
{
    lreq *r = c->req;
    wh__http1 *p = &c->parser;
    r->status = p->status;
    r->rbody_len = p->body_len;
    r->have_retry_after = p->have_retry_after;
    if (p->have_retry_after) memcpy(r->retry_after, p->retry_after, sizeof r->retry_after);
    c->req = NULL;
    r->conn = NULL;
    req_finish(l, r, WH_OK, NULL);
    /* an early answer (before the request was fully written) ends the
     * connection too: the rest of the request would follow the answer */
    if (reusable && p->keep_alive && !c->write_failed &&
        r->written == req_total(r) &&
        c->pool->idle.n < l->opts.max_idle_per_host) {
        c->state = C_IDLE;
        c->idle_since = now_ms();
        c->pool->busy--;
        wh__list_push_back(&c->pool->idle, &c->link);
    } else {
        c->clean = 1;
        conn_close(l, c);
    }
}

/* ---- DNS (c-ares, on the transport's epoll set) ----------------------------------- */
#ifdef WH_HAVE_CARES
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    wh_lean *l = data;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    ev.data.u64 = LEAN_DNS_TAG | (uint32_t)fd;
    if (!readable && !writable) {
        (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, &ev);
        return;
    }
    if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        (void)epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
}

static int dns_init(wh_lean *l)
{
    if (l->dns_init) return l->dns ? WH_OK : WH_E_TRANSPORT;
    l->dns_init = 1;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) return WH_E_TRANSPORT;
    struct ares_options ao;
    memset(&ao, 0, sizeof ao);
    ao.sock_state_cb = dns_sock_state;
    ao.sock_state_cb_data = l;
    if (ares_init_options(&l->dns, &ao, ARES_OPT_SOCK_STATE_CB) != ARES_SUCCESS) {
        l->dns = NULL;
        ares_library_cleanup();
        return WH_E_TRANSPORT;
    }
    if (l->dns_servers && ares_set_servers_ports_csv(l->dns, l->dns_servers) != ARES_SUCCESS) {
        ares_destroy(l->dns);
        l->dns = NULL;
        ares_library_cleanup();
        return WH_E_TRANSPORT;
    }
    return WH_OK;
}

static void dns_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    lpool *p = arg;
    wh_lean *l = p->owner;
    p->resolving = 0;
    if (status == ARES_EDESTRUCTION) {
        if (res) ares_freeaddrinfo(res);
        return;
    }
    const struct ares_addrinfo_node *n = status == ARES_SUCCESS && res ? res->nodes : NULL;
    int64_t now = now_ms();
    if (n && n->ai_addrlen <= sizeof p->addr &&
        (n->ai_family == AF_INET || n->ai_family == AF_INET6)) {
        memset(&p->addr, 0, sizeof p->addr);
        memcpy(&p->addr, n->ai_addr, n->ai_addrlen);
        p->addr_len = n->ai_addrlen;
        uint16_t port = htons((uint16_t)p->port);
        if (n->ai_family == AF_INET) ((struct sockaddr_in *)(void *)&p->addr)->sin_port = port;
        else ((struct sockaddr_in6 *)(void *)&p->addr)->sin6_port = port;
        int ttl = n->ai_ttl < 1 ? 1 : n->ai_ttl > LEAN_DNS_TTL_MAX_S ? LEAN_DNS_TTL_MAX_S
                                                                      : n->ai_ttl;
        p->resolved_until = now + (int64_t)ttl * 1000;
    } else {
        p->resolved_until = 0;
        if (status == ARES_SUCCESS) status = ARES_ENODATA;
    }
    if (res) ares_freeaddrinfo(res);
    lreq *r;
    while ((r = p->waiting.head ? WH__CONTAINER_OF(p->waiting.head, lreq, wait_link) : NULL)) {
        wh__list_unlink(&p->waiting, &r->wait_link);
        r->waiting = 0;
        if (p->resolved_until > now) req_start(l, r, 0, now);
        else
            req_finish(l, r, WH_E_CONNECT, "lean transport: cannot resolve host \"%.100s\": %s",
                       p->host, ares_strerror(status));
    }
}

static void dns_wait(wh_lean *l, lreq *r)
{
    lpool *p = r->tgt->pool;
    r->waiting = 1;
    wh__list_push_back(&p->waiting, &r->wait_link);
    if (p->resolving) return;
    if (dns_init(l) != WH_OK) {
        wh__list_unlink(&p->waiting, &r->wait_link);
        r->waiting = 0;
        req_finish(l, r, WH_E_CONNECT, "lean transport: cannot resolve host \"%.100s\": "
                   "the resolver (c-ares) could not start", p->host);
        return;
    }
    p->resolving = 1;
    char port[8];
    snprintf(port, sizeof port, "%d", p->port);
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(l->dns, p->host, port, &hints, dns_done, p); /* may answer at once */
}

/* Resolver sockets ready (fd >= 0), or its timers (fd < 0). */
static void dns_process(wh_lean *l, int fd, uint32_t ev)
{
    if (!l->dns) return;
    ares_socket_t rd = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;
    if (fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) rd = fd;
    if (fd >= 0 && (ev & EPOLLOUT)) wr = fd;
    ares_process_fd(l->dns, rd, wr);
}

/* ms until the resolver's next timer, -1 when it has none. */
static int64_t dns_timeout_ms(wh_lean *l)
{
    if (!l->dns) return -1;
    struct timeval tv;
    struct timeval *tp = ares_timeout(l->dns, NULL, &tv);
    if (!tp) return -1;
    return (int64_t)tp->tv_sec * 1000 + (tp->tv_usec + 999) / 1000;
}
#endif

/* ---- TLS ----------------------------------------------------------------------- */
#ifdef WH_HAVE_LEAN_TLS
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    lconn *c = SSL_get_app_data(ssl);
    if (!c) return 0;
    if (c->pool->session) SSL_SESSION_free(c->pool->session);
    c->pool->session = sess;
    return 1; /* kept */
}

static SSL_CTX *make_ctx(const char *ca_file, const char *ca_path, const char *cert,
                         const char *key, int min, int verify)
{
    SSL_CTX *x = SSL_CTX_new(TLS_client_method());
    if (!x) return NULL;
    SSL_CTX_set_min_proto_version(x, min == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* one recv per answer instead of two (the 5-byte record header, then
     * the record); conn_pending asks SSL_has_pending, which sees what the
     * read-ahead buffer holds */
    SSL_CTX_set_read_ahead(x, 1);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    SSL_CTX_set_options(x, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    int ok = ca_file || ca_path ? SSL_CTX_load_verify_locations(x, ca_file, ca_path)
                                : SSL_CTX_set_default_verify_paths(x);
    if (ok && cert) ok = SSL_CTX_use_certificate_chain_file(x, cert) == 1 &&
                         SSL_CTX_use_PrivateKey_file(x, key ? key : cert, SSL_FILETYPE_PEM) == 1;
    if (!ok) {
        SSL_CTX_free(x);
        return NULL;
    }
    SSL_CTX_set_verify(x, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(x, alpn, sizeof alpn - 1);
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(x, new_session);
    return x;
}

/* A socket BIO whose writes never raise SIGPIPE (OpenSSL's own uses
 * write(2)); the fd is the BIO's data. */
static int nb_fd(BIO *b) { return (int)(intptr_t)BIO_get_data(b); }

static int nb_write(BIO *b, const char *buf, int len)
{
    ssize_t n = send(nb_fd(b), buf, (size_t)len, MSG_NOSIGNAL);
    BIO_clear_retry_flags(b);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)n;
}

static int nb_read(BIO *b, char *buf, int len)
{
    ssize_t n = recv(nb_fd(b), buf, (size_t)len, 0);
    BIO_clear_retry_flags(b);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    return (int)n;
}

static long nb_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int nb_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int tls_ctx(wh_lean *l)
{
    if (!l->bio_meth) {
        l->bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wh-lean-socket");
        if (!l->bio_meth || !BIO_meth_set_write(l->bio_meth, nb_write) ||
            !BIO_meth_set_read(l->bio_meth, nb_read) || !BIO_meth_set_ctrl(l->bio_meth, nb_ctrl) ||
            !BIO_meth_set_create(l->bio_meth, nb_create))
            return WH_E_NOMEM;
    }
    if (l->ssl_ctx) return WH_OK;
    l->ssl_ctx = make_ctx(l->ca_file, l->ca_path, NULL, NULL, 0, l->opts.verify_tls);
    return l->ssl_ctx ? WH_OK : WH_E_TRANSPORT;
}

static int tls_profile(wh_lean *l, const wh_tls *tls, ltls **out)
{
    char key[2048];
    int kn = snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s\x1f%d\x1f%d\x1f%s",
                      tls->ca_file ? tls->ca_file : "", tls->ca_path ? tls->ca_path : "",
                      tls->client_cert_file ? tls->client_cert_file : "",
                      tls->client_key_file ? tls->client_key_file : "", tls->min_version,
                      tls->insecure_skip_verify_DANGEROUS,
                      tls->pinned_public_key ? tls->pinned_public_key : "");
    if (kn < 0 || (size_t)kn >= sizeof key) return WH_E_INVAL;
    for (ltls *p = l->profiles; p; p = p->next)
        if (strcmp(p->key, key) == 0) {
            *out = p;
            return WH_OK;
        }
    ltls *p = wh__calloc(1, sizeof *p);
    if (!p) return WH_E_NOMEM;
    p->key = wh__strdup(key);
    /* no CA of the endpoint's own: the transport's (ca_file option, else
     * OpenSSL's default store) */
    const char *ca_file = tls->ca_file, *ca_path = tls->ca_path;
    if (!ca_file && !ca_path) ca_file = l->ca_file, ca_path = l->ca_path;
    p->ctx = make_ctx(ca_file, ca_path, tls->client_cert_file, tls->client_key_file,
                      tls->min_version,
                      l->opts.verify_tls && !tls->insecure_skip_verify_DANGEROUS);
    const char *pin = tls->pinned_public_key;
    size_t n = 0;
    for (const char *q = pin; q && *q; q++)
        if (*q == ';') n++;
    if (pin && *pin) n++;
    if (n) p->pins = wh__calloc(n, sizeof *p->pins);
    int ok = p->key && p->ctx && (!n || p->pins);
    for (const char *q = pin; ok && q && *q;) {
        /* "sha256//" + 44 base64 characters (checked by the engine) */
        unsigned char raw[48];
        if (strncmp(q, "sha256//", 8) != 0 ||
            EVP_DecodeBlock(raw, (const unsigned char *)q + 8, 44) != 33) {
            ok = 0;
            break;
        }
        memcpy(p->pins[p->n_pins++], raw, 32);
        q += 8 + 44;
        if (*q == ';') q++;
    }
    if (!ok) {
        if (p->ctx) SSL_CTX_free(p->ctx);
        free(p->pins);
        free(p->key);
        free(p);
        return WH_E_TRANSPORT;
    }
    p->next = l->profiles;
    l->profiles = p;
    *out = p;
    return WH_OK;
}

/* The server's public key is one of the pins (or there are none). */
static int pin_ok(lconn *c)
{
    ltls *p = c->pool->prof;
    if (!p || !p->n_pins) return 1;
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (!cert) return 0;
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    X509_free(cert);
    if (len <= 0) return 0;
    unsigned char md[32];
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    for (size_t i = 0; i < p->n_pins; i++)
        if (memcmp(md, p->pins[i], 32) == 0) return 1;
    return 0;
}

/* The TLS client on c's connected socket. */
static int tls_start(wh_lean *l, lconn *c)
{
    c->ssl = SSL_new(c->pool->prof ? c->pool->prof->ctx : l->ssl_ctx);
    if (!c->ssl) return 0;
    SSL_set_app_data(c->ssl, c);
    BIO *bio = BIO_new(l->bio_meth);
    if (!bio) return 0;
    BIO_set_data(bio, (void *)(intptr_t)c->fd);
    SSL_set_bio(c->ssl, bio, bio);
    lpool *p = c->pool;
    if (p->host_is_ip) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (!X509_VERIFY_PARAM_set1_ip_asc(vp, p->host)) return 0;
    } else {
        if (!SSL_set_tlsext_host_name(c->ssl, p->host)) return 0;
        if (!SSL_set1_host(c->ssl, p->host)) return 0;
    }
    if (p->session) SSL_set_session(c->ssl, p->session);
    SSL_set_connect_state(c->ssl);
    return 1;
}

/* Why the TLS call failed, for a message. */
static const char *tls_why(lconn *c, char *buf, size_t n)
{
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        snprintf(buf, n, "certificate verification failed: %s",
                 X509_verify_cert_error_string(v));
        return buf;
    }
    unsigned long e = ERR_peek_last_error();
    if (e) {
        ERR_error_string_n(e, buf, n);
        return buf;
    }
    return "TLS error";
}
#endif

/* Send up to n iovecs; returns bytes written or -1 (errno). */
static ssize_t conn_send(lconn *c, struct iovec *iov, int n)
{
#ifdef WH_HAVE_LEAN_TLS
    if (c->ssl) {
        size_t k = 0;
        ERR_clear_error();
        int rc = SSL_write_ex(c->ssl, iov[0].iov_base, iov[0].iov_len, &k);
        if (rc > 0) return (ssize_t)k;
        int e = SSL_get_error(c->ssl, rc);
        errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN
                : e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO;
        return -1;
    }
#endif
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    return sendmsg(c->fd, &m, MSG_NOSIGNAL);
}

/* Receive; 0 at the end of the stream, -1 with errno (EAGAIN: none now). */
static ssize_t conn_recv(lconn *c, char *buf, size_t n)
{
#ifdef WH_HAVE_LEAN_TLS
    if (c->ssl) {
        size_t k = 0;
        ERR_clear_error();
        int rc = SSL_read_ex(c->ssl, buf, n, &k);
        if (rc > 0) return (ssize_t)k;
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            errno = EAGAIN;
            return -1;
        }
        if (e == SSL_ERROR_SYSCALL && errno == 0) return 0;
        if (e != SSL_ERROR_SYSCALL) errno = EPROTO;
        return -1;
    }
#endif
    return recv(c->fd, buf, n, 0);
}

static int conn_pending(lconn *c)
{
#ifdef WH_HAVE_LEAN_TLS
    if (c->ssl) return SSL_has_pending(c->ssl);
#endif
    (void)c;
    return 0;
}

/* k more bytes of r were sent: move the cursor past them (the head first,
 * then the body's pieces). */
static void advance(lreq *r, size_t k)
{
    if (r->written < r->head_len) {
        size_t h = r->head_len - r->written;
        if (k <= h) {
            r->written += k;
            return;
        }
        r->written += h;
        k -= h;
    }
    r->written += k;
    while (k) {
        size_t left = r->pieces[r->piece].len - r->piece_off;
        if (k < left) {
            r->piece_off += k;
            return;
        }
        k -= left;
        r->piece++;
        r->piece_off = 0;
    }
}

static int do_write(wh_lean *l, lconn *c)
{
    lreq *r = c->req;
    size_t total = req_total(r);
    while (r->written < total) {
        /* what is left of the head, then of the pieces, at most LEAN_IOV */
        struct iovec *iov = l->iov;
        int n = 0;
        if (r->written < r->head_len) {
            iov[n].iov_base = r->head + r->written;
            iov[n++].iov_len = r->head_len - r->written;
        }
        if (!r->body_inline) {
            size_t off = r->piece_off;
            for (size_t i = r->piece; i < r->n_pieces && n < LEAN_IOV; i++, off = 0) {
                if (r->pieces[i].len == off) continue;
                iov[n].iov_base = (char *)r->pieces[i].data + off;
                iov[n++].iov_len = r->pieces[i].len - off;
            }
        }
        ssize_t k = conn_send(c, iov, n);
        l->sends.calls++;
        if ((size_t)n > l->sends.max_iov) l->sends.max_iov = (size_t)n;
        if (k >= 0) {
            size_t offered = 0;
            for (int i = 0; i < n; i++) offered += iov[i].iov_len;
            if ((size_t)k < offered) l->sends.short_writes++;
        }
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
            /* the peer may have answered and closed: read what it said */
            int err = errno;
            c->write_failed = 1;
            c->state = C_READING;
            if (do_read(l, c, 1)) conn_fail(l, c, WH_E_TRANSPORT, "send to", err);
            return 0;
        }
        advance(r, (size_t)k);
    }
    c->state = C_READING;
    return 1;
}

/* Read what is there; feed the parser; finish the request when done. */
/* hup: the event said the peer closed (or reset): read to the end, and
 * never keep the connection (no later edge would tell). */
static int do_read(wh_lean *l, lconn *c, int hup)
{
    for (;;) {
        ssize_t n = conn_recv(c, l->rbuf, sizeof l->rbuf);
        if (n > 0) {
            size_t used = 0;
            int rc = wh__http1_feed(&c->parser, l->rbuf, (size_t)n, &used);
            if (rc == WH__H1_DONE) {
                conn_response(l, c, used == (size_t)n && !hup && !conn_pending(c));
                return 0;
            }
            if (rc < 0) {
                lreq *r = c->req;
                c->req = NULL;
                char where[300];
                snprintf(where, sizeof where, "%s", pool_name(c));
                conn_close(l, c);
                r->conn = NULL;
                if (rc == WH__H1_E_LINE_TOO_LONG || rc == WH__H1_E_TOO_MANY_HEADERS)
                    req_finish(l, r, WH_E_TRANSPORT, "lean transport: response headers exceed "
                               "the limits (%zu bytes a line, %zu lines) from %s: %s",
                               l->opts.max_line_bytes, l->opts.max_header_lines, where,
                               wh__http1_strerror(rc));
                else
                    req_finish(l, r, WH_E_TRANSPORT, "lean transport: invalid response from "
                               "%s: %s", where, wh__http1_strerror(rc));
                return 0;
            }
            /* drained: new bytes bring a new edge (TLS: read until it
             * says so, it may hold decrypted bytes) */
            if ((size_t)n < sizeof l->rbuf && !hup && !conn_pending(c)) {
#ifdef WH_HAVE_LEAN_TLS
                if (!c->ssl) return 1;
#else
                return 1;
#endif
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
        /* end of the connection (0) or an error */
        int err = n < 0 ? errno : 0;
        int rc = wh__http1_eof(&c->parser);
        if (rc == WH__H1_DONE) {
            conn_response(l, c, 0);
            return 0;
        }
        if (rc == WH__H1_E_EMPTY)
            conn_fail(l, c, WH_E_TRANSPORT, "connection closed before any response byte by",
                      err);
        else
            conn_fail(l, c, WH_E_TRANSPORT, "connection closed mid-response by", err);
        return 0;
    }
}

static void on_event(wh_lean *l, lconn *c, uint32_t ev)
{
    int hup = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    if (c->state == C_IDLE) {
        /* the server closed it, or sent what nobody asked for */
        conn_close(l, c);
        return;
    }
    if (c->state == C_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
        if (err == 0 && (ev & (EPOLLERR | EPOLLHUP)) && !(ev & EPOLLOUT)) err = ECONNREFUSED;
        if (err) {
            lreq *r = c->req;
            c->req = NULL;
            char where[300];
            snprintf(where, sizeof where, "%s", pool_name(c));
            conn_close(l, c);
            r->conn = NULL;
            req_finish(l, r, WH_E_CONNECT, "lean transport: connect to %s: %s", where,
                       strerror(err));
            return;
        }
        lreq *r = c->req;
#ifdef WH_HAVE_LEAN_TLS
        if (c->pool->tls) {
            if (!tls_start(l, c)) {
                conn_fail(l, c, WH_E_TRANSPORT, "cannot start TLS with", 0);
                return;
            }
            c->state = C_HANDSHAKE;
            ev = EPOLLOUT;
        }
#endif
        if (c->state == C_CONNECTING) {
            if (r->connect_deadline) {
                r->connect_deadline = 0;
                wh__heap_update(&l->timers, &r->timer, r->deadline);
            }
            c->state = C_WRITING;
            if (!do_write(l, c)) return; /* closed or finished */
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) do_read(l, c, hup);
            return;
        }
    }
#ifdef WH_HAVE_LEAN_TLS
    if (c->state == C_HANDSHAKE) {
        lreq *r = c->req;
        ERR_clear_error();
        int rc = SSL_connect(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            char why[256];
            const char *w = tls_why(c, why, sizeof why);
            char where[300];
            snprintf(where, sizeof where, "%s", pool_name(c));
            c->req = NULL;
            conn_close(l, c);
            r->conn = NULL;
            req_finish(l, r, WH_E_TRANSPORT, "lean transport: TLS handshake with %s: %s",
                       where, w);
            return;
        }
        if (!pin_ok(c)) {
            char where[340];
            snprintf(where, sizeof where, "%s", pool_name(c));
            c->req = NULL;
            conn_close(l, c);
            r->conn = NULL;
            req_finish(l, r, WH_E_TRANSPORT, "lean transport: TLS handshake with %s: the "
                       "server's public key matches no pinned_public_key", where);
            return;
        }
        if (r->connect_deadline) {
            r->connect_deadline = 0;
            wh__heap_update(&l->timers, &r->timer, r->deadline);
        }
        c->state = C_WRITING;
        if (!do_write(l, c)) return;
        do_read(l, c, hup);
        return;
    }
#endif
    if (c->state == C_WRITING) {
        if ((ev & EPOLLOUT) && !do_write(l, c)) return;
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) do_read(l, c, hup);
        return;
    }
    /* C_READING */
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) do_read(l, c, hup);
}

/* Deadlines passed by `now`. */
static void expire(wh_lean *l, int64_t now)
{
    wh__heap_node *top;
    while ((top = wh__heap_top(&l->timers)) && top->key <= now) {
        lreq *r = req_of_timer(top);
        int connecting = r->connect_deadline && r->connect_deadline == top->key;
        lconn *c = r->conn;
        if (c) {
            c->req = NULL;
            conn_close(l, c);
            r->conn = NULL;
        }
        if (r->waiting)
            req_finish(l, r, WH_E_TIMEOUT, "lean transport: resolving %s timed out after %u ms",
                       r->tgt->pool->key, (unsigned)r->timeout_ms);
        else if (connecting)
            req_finish(l, r, WH_E_TIMEOUT, "lean transport: connect to %s timed out after %u ms",
                       r->tgt->pool->key, (unsigned)r->connect_timeout_ms);
        else
            req_finish(l, r, WH_E_TIMEOUT, "lean transport: %s: no complete answer after %u ms",
                       r->tgt->pool->key, (unsigned)r->timeout_ms);
    }
}

/* ---- vtable ------------------------------------------------------------------------ */
static void rearm(wh_lean *l);
static int64_t tl_timeout_ms(void *user);

static int tl_submit(void *user, const wh_request *req)
{
    wh_lean *l = user;
    if (!l || !req || !req->url || (req->n_headers && !req->headers)) return WH_E_INVAL;
    if (req->n_pieces) {
        /* pieces (body_pieces said yes): they must add up to body_len */
        if (!req->pieces) return WH_E_INVAL;
        size_t sum = 0;
        for (size_t i = 0; i < req->n_pieces; i++) {
            if (req->pieces[i].len && !req->pieces[i].data) return WH_E_INVAL;
            sum += req->pieces[i].len;
        }
        if (sum != req->body_len) return WH_E_INVAL;
    } else if (!req->body && req->body_len) {
        return WH_E_INVAL;
    }
    if (l->destroy_pending) return WH_E_INVAL;
    ltarget *t = NULL;
    int rc = target_get(l, req->url, req->tls, &t);
    if (rc != WH_OK) return rc;
    lreq *r = req_get(l);
    if (!r) return WH_E_NOMEM;
    rc = t->error ? WH_OK : build_head(r, t, req);
    if (rc != WH_OK) {
        wh__list_push_front(&l->free_reqs, &r->link);
        return rc;
    }
    int64_t now = now_ms();
    r->token = req->token;
    r->tgt = t;
    if (req->n_pieces) {
        r->pieces = req->pieces;
        r->n_pieces = req->n_pieces;
    } else {
        r->one.data = req->body ? req->body : "";
        r->one.len = req->body_len;
        r->pieces = &r->one;
        r->n_pieces = 1;
    }
    r->body_len = req->body_len;
    r->timeout_ms = req->timeout_ms;
    r->connect_timeout_ms = req->connect_timeout_ms;
    r->deadline = req->timeout_ms ? now + req->timeout_ms : INT64_MAX;
    r->connect_deadline = 0;
    r->retried = 0;
    r->status = 0;
    r->error = WH_OK;
    r->msg[0] = '\0';
    r->rbody_len = 0;
    r->have_retry_after = 0;
    r->conn = NULL;
    r->state = R_RUNNING;
    wh__list_push_back(&l->running, &r->link);
    wh__heap_push(&l->timers, &r->timer, r->deadline);
    if (t->error) {
        req_finish(l, r, t->error, "%s", t->msg);
        rearm(l);
        return WH_OK;
    }
    req_start(l, r, 0, now);
    if (!l->in_perform) rearm(l);
    return WH_OK;
}

/* Every body may come in pieces: sent with the head by sendmsg, or (TLS)
 * copied after the head, as a contiguous body is. */
static int tl_body_pieces(void *user, const wh_request *req)
{
    (void)user;
    (void)req;
    return 1;
}

static void report(lreq *r, wh_transport_done_fn done, void *done_user)
{
    wh_response res;
    memset(&res, 0, sizeof res);
    res.status = r->error == WH_OK ? r->status : 0;
    res.error = r->error;
    res.error_msg = r->error != WH_OK ? r->msg : NULL;
    res.retry_after = r->error == WH_OK && r->have_retry_after ? r->retry_after : NULL;
    r->rbody[r->rbody_len] = '\0';
    res.body = r->rbody;
    res.body_len = r->error == WH_OK ? r->rbody_len : 0;
    if (done) done(done_user, r->token, &res);
}

static void tl_free(wh_lean *l);

/* One round: wait up to wait_ms for I/O (0: none), do it, expire
 * deadlines, report what finished. */
static int tl_perform(void *user, int wait_ms, wh_transport_done_fn done, void *done_user)
{
    wh_lean *l = user;
    if (!l) return WH_E_INVAL;
    if (l->in_perform) return WH_E_RECURSIVE;
    l->in_perform = 1;

    int64_t now = now_ms();
    int timeout = wait_ms < 0 ? 0 : wait_ms;
    if (l->finished.n) timeout = 0;
    wh__heap_node *top = wh__heap_top(&l->timers);
    if (top && timeout > 0) {
        int64_t until = top->key - now;
        if (until < 0) until = 0;
        if (until < timeout) timeout = (int)until;
    }
#ifdef WH_HAVE_CARES
    int64_t dt = dns_timeout_ms(l);
    if (dt >= 0 && dt < timeout) timeout = (int)dt;
#endif
    struct epoll_event evs[LEAN_EVENTS];
    int n = epoll_wait(l->ep, evs, LEAN_EVENTS, timeout);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == LEAN_WAKE_TAG) {
            uint64_t v;
            ssize_t k = read(l->wake_fd, &v, sizeof v);
            (void)k;
            continue;
        }
#ifdef WH_HAVE_CARES
        if (evs[i].data.u64 & LEAN_DNS_TAG) {
            dns_process(l, (int)(uint32_t)evs[i].data.u64, evs[i].events);
            continue;
        }
#endif
        on_event(l, evs[i].data.ptr, evs[i].events);
    }
#ifdef WH_HAVE_CARES
    if (l->dns && dns_timeout_ms(l) == 0) dns_process(l, -1, 0);
#endif
    if (l->timers.n) {
        now = now_ms();
        expire(l, now);
    }

    lreq *r;
    while (!l->destroy_pending && (r = req_of(l->finished.head))) {
        wh__list_unlink(&l->finished, &r->link);
        r->state = R_FREE;
        report(r, done, done_user);
        req_recycle(l, r);
    }
    l->in_perform = 0;
    if (l->destroy_pending) {
        tl_free(l);
        return 0;
    }
    rearm(l);
    return (int)l->running.n;
}

static void tl_wakeup(void *user)
{
    wh_lean *l = user;
    uint64_t one = 1;
    if (!l) return;
    ssize_t k = write(l->wake_fd, &one, sizeof one);
    (void)k; /* EAGAIN: the counter is huge, it is readable anyway */
}

/* ---- version 2: the host's loop ------------------------------------------------ */
/* The host watches one fd, the epoll set (readable when any socket of ours
 * is ready), and arms its one timer for our nearest deadline. */
static void rearm(wh_lean *l)
{
#ifdef WH_LOOP_VERSION
    if (!l->loop_on) return;
    int64_t t = tl_timeout_ms(l);
    int64_t due = t < 0 ? INT64_MAX : now_ms() + t;
    if (due == l->armed) return;
    l->armed = due;
    l->loop.timer(l->loop.user, t < 0 ? -1 : t);
#else
    (void)l;
#endif
}

#ifdef WH_LOOP_VERSION
static int tl_set_loop(void *user, const wh_loop *loop)
{
    wh_lean *l = user;
    if (!l) return WH_E_INVAL;
    if (l->loop_on) {
        l->loop.watch(l->loop.user, l->ep, 0, &l->ep_slot);
        if (l->armed != INT64_MAX) l->loop.timer(l->loop.user, -1);
        l->loop_on = 0;
    }
    if (!loop) return WH_OK;
    if (loop->version < 1 || !loop->watch || !loop->timer) return WH_E_VERSION;
    l->loop = *loop;
    l->ep_slot = NULL;
    if (l->loop.watch(l->loop.user, l->ep, WH_POLL_IN, &l->ep_slot) != 0) return WH_E_IO;
    l->loop_on = 1;
    l->armed = INT64_MAX;
    rearm(l);
    return WH_OK;
}

/* Our epoll fd is ready, or the timer fired: one round without waiting. */
static int tl_socket_action(void *user, int fd, int events, wh_transport_done_fn done,
                            void *done_user)
{
    (void)fd, (void)events;
    wh_lean *l = user;
    if (!l) return WH_E_INVAL;
    if (fd == WH_SOCKET_TIMEOUT) l->armed = INT64_MAX; /* fired: not armed any more */
    return tl_perform(user, 0, done, done_user);
}
#endif

/* The epoll fd (the one fd the host watches in loop mode). */
int wh__lean_fd(const wh_transport *t)
{
    return wh__lean_is(t) ? ((const wh_lean *)t->user)->ep : -1;
}

void wh__lean_set_sndbuf(wh_transport *t, int bytes)
{
    if (wh__lean_is(t)) ((wh_lean *)t->user)->sndbuf = bytes;
}

wh__lean_sends wh__lean_send_counts(const wh_transport *t)
{
    wh__lean_sends none = {0, 0, 0};
    return wh__lean_is(t) ? ((const wh_lean *)t->user)->sends : none;
}

static int64_t tl_timeout_ms(void *user)
{
    wh_lean *l = user;
    if (!l || (!l->running.n && !l->finished.n)) return -1;
    if (l->finished.n) return 0;
    wh__heap_node *top = wh__heap_top(&l->timers);
    int64_t d = !top || top->key == INT64_MAX ? LEAN_NO_TIMER_MS : top->key - now_ms();
#ifdef WH_HAVE_CARES
    int64_t dt = dns_timeout_ms(l);
    if (dt >= 0 && dt < d) d = dt;
#endif
    return d < 0 ? 0 : d;
}

static lreq *find(const wh__list *list, void *token)
{
    for (lreq *r = req_of(list->head); r; r = req_of(r->link.next))
        if (r->token == token) return r;
    return NULL;
}

static void cancel_one(wh_lean *l, void *token);

static void tl_cancel(void *user, void *token)
{
    wh_lean *l = user;
    if (!l) return;
    cancel_one(l, token);
    if (!l->in_perform) rearm(l);
}

static void cancel_one(wh_lean *l, void *token)
{
    lreq *r = find(&l->running, token);
    if (r) {
        if (r->conn) {
            lconn *c = r->conn;
            c->req = NULL;
            conn_close(l, c); /* mid-request: unusable */
        }
        if (r->waiting) {
            wh__list_unlink(&r->tgt->pool->waiting, &r->wait_link);
            r->waiting = 0;
        }
        wh__list_unlink(&l->running, &r->link);
        req_recycle(l, r);
        return;
    }
    r = find(&l->finished, token);
    if (r) {
        wh__list_unlink(&l->finished, &r->link);
        req_recycle(l, r);
    }
}

static void tl_free(wh_lean *l)
{
#ifdef WH_HAVE_CARES
    if (l->dns) {
        ares_destroy(l->dns); /* pending answers: ARES_EDESTRUCTION */
        l->dns = NULL;
        ares_library_cleanup();
    }
    free(l->dns_servers);
#endif
    lreq *r;
    while ((r = req_of(wh__list_pop_front(&l->running)))) {
        if (r->conn) {
            r->conn->req = NULL;
            conn_close(l, r->conn);
        }
        req_free(r);
    }
    while ((r = req_of(wh__list_pop_front(&l->finished)))) req_free(r);
    while ((r = req_of(wh__list_pop_front(&l->free_reqs)))) req_free(r);
    for (size_t i = 0; i < l->pools.cap; i++) {
        lpool *p = l->pools.slot[i].key ? l->pools.slot[i].val : NULL;
        if (!p) continue;
        lconn *c;
        while ((c = conn_of(p->idle.head))) conn_close(l, c);
#ifdef WH_HAVE_LEAN_TLS
        if (p->session) SSL_SESSION_free(p->session);
#endif
        free(p->key);
        free(p->host);
        free(p);
    }
    for (size_t i = 0; i < l->targets.cap; i++)
        if (l->targets.slot[i].key) target_free(l->targets.slot[i].val);
    free(l->allow);
    wh__map_free(&l->pools);
    wh__map_free(&l->targets);
    wh__heap_free(&l->timers);
    if (l->ep >= 0) close(l->ep);
    if (l->wake_fd >= 0) close(l->wake_fd);
#ifdef WH_HAVE_LEAN_TLS
    if (l->ssl_ctx) SSL_CTX_free(l->ssl_ctx);
    if (l->bio_meth) BIO_meth_free(l->bio_meth);
    while (l->profiles) {
        ltls *p = l->profiles;
        l->profiles = p->next;
        SSL_CTX_free(p->ctx);
        free(p->pins);
        free(p->key);
        free(p);
    }
    free(l->ca_file);
    free(l->ca_path);
#endif
    free(l);
}

static void tl_destroy(void *user)
{
    wh_lean *l = user;
    if (!l) return;
    if (l->in_perform) {
        l->destroy_pending = 1;
        return;
    }
    tl_free(l);
}

/* ---- public ------------------------------------------------------------------------ */
void wh_lean_options_init_sized(wh_lean_options *o, size_t size)
{
    if (!o || size < sizeof(size_t)) return;
    wh_lean_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = size < sizeof d ? size : sizeof d;
    d.max_response_bytes = 4096;
    d.max_response_read = (uint64_t)1 << 20;
    d.max_idle_per_host = 256;
    d.max_line_bytes = WH__H1_LINE_MAX_DEFAULT;
    d.max_header_lines = WH__H1_HEADERS_MAX_DEFAULT;
    d.verify_tls = 1;
    memcpy(o, &d, d.struct_size);
}

int wh_transport_lean_new(const wh_lean_options *opts, wh_transport **out)
{
    if (!out) return WH_E_INVAL;
    *out = NULL;
    wh_lean_options o;
    wh_lean_options_init(&o);
    if (opts) {
        if (opts->struct_size < sizeof opts->struct_size) return WH_E_VERSION;
        if (OPT_HAS(opts, max_response_bytes)) o.max_response_bytes = opts->max_response_bytes;
        if (OPT_HAS(opts, max_response_read)) o.max_response_read = opts->max_response_read;
        if (OPT_HAS(opts, max_idle_per_host)) o.max_idle_per_host = opts->max_idle_per_host;
        if (OPT_HAS(opts, max_line_bytes)) o.max_line_bytes = opts->max_line_bytes;
        if (OPT_HAS(opts, max_header_lines)) o.max_header_lines = opts->max_header_lines;
        if (OPT_HAS(opts, verify_tls)) o.verify_tls = opts->verify_tls;
        if (OPT_HAS(opts, ca_file)) o.ca_file = opts->ca_file;
        if (OPT_HAS(opts, ca_path)) o.ca_path = opts->ca_path;
        if (OPT_HAS(opts, dns_servers)) o.dns_servers = opts->dns_servers;
        if (OPT_HAS(opts, ssrf_guard)) o.ssrf_guard = opts->ssrf_guard;
        if (OPT_HAS(opts, n_ssrf_allow)) {
            o.ssrf_allow = opts->ssrf_allow;
            o.n_ssrf_allow = opts->n_ssrf_allow;
        }
    }
    if (o.max_response_bytes >= SIZE_MAX / 2 || o.max_line_bytes == 0 ||
        o.max_line_bytes > WH__H1_LINE_MAX_DEFAULT || o.max_header_lines == 0 ||
        (o.n_ssrf_allow && !o.ssrf_allow) || o.n_ssrf_allow > 100000)
        return WH_E_INVAL;
    for (size_t i = 0; i < o.n_ssrf_allow; i++) {
        wh__cidr c;
        if (!o.ssrf_allow[i] || wh__cidr_parse(o.ssrf_allow[i], &c, NULL) != WH_OK)
            return WH_E_INVAL;
    }
    wh_lean *l = wh__calloc(1, sizeof *l);
    if (!l) return WH_E_NOMEM;
    l->opts = o;
    l->opts.ca_file = l->opts.ca_path = l->opts.dns_servers = NULL; /* copies below */
    l->opts.ssrf_allow = NULL;
    l->ssrf_guard = o.ssrf_guard != 0;
    if (o.n_ssrf_allow) {
        l->allow = wh__calloc(o.n_ssrf_allow, sizeof *l->allow);
        if (!l->allow) {
            free(l);
            return WH_E_NOMEM;
        }
        for (size_t i = 0; i < o.n_ssrf_allow; i++)
            (void)wh__cidr_parse(o.ssrf_allow[i], &l->allow[i], NULL);
        l->n_allow = o.n_ssrf_allow;
    }
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event wev;
    memset(&wev, 0, sizeof wev);
    wev.events = EPOLLIN;
    wev.data.u64 = LEAN_WAKE_TAG;
    if (l->ep < 0 || l->wake_fd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake_fd, &wev) != 0) {
        if (l->ep >= 0) close(l->ep);
        if (l->wake_fd >= 0) close(l->wake_fd);
        free(l->allow);
        free(l);
        return WH_E_TRANSPORT;
    }
#ifdef WH_HAVE_LEAN_TLS
    if ((o.ca_file && !(l->ca_file = wh__strdup(o.ca_file))) ||
        (o.ca_path && !(l->ca_path = wh__strdup(o.ca_path)))) {
        tl_free(l);
        return WH_E_NOMEM;
    }
#endif
#ifdef WH_HAVE_CARES
    if (o.dns_servers && !(l->dns_servers = wh__strdup(o.dns_servers))) {
        tl_free(l);
        return WH_E_NOMEM;
    }
#endif
    l->vt.version = WH_TRANSPORT_VERSION;
    l->vt.user = l;
    l->vt.submit = tl_submit;
    l->vt.perform = tl_perform;
    l->vt.timeout_ms = tl_timeout_ms;
    l->vt.cancel = tl_cancel;
    l->vt.destroy = tl_destroy;
    l->vt.body_pieces = tl_body_pieces;
#ifdef WH_LOOP_VERSION
    l->vt.set_loop = tl_set_loop;
    l->vt.socket_action = tl_socket_action;
    l->vt.wakeup = tl_wakeup;
#else
    (void)tl_wakeup;
#endif
    *out = &l->vt;
    return WH_OK;
}

/* ---- settings changed after creation (the engine's network keys) ---------- */
int wh__lean_is(const wh_transport *t)
{
    return t && t->submit == tl_submit && t->user;
}

int wh__lean_set_guard(wh_transport *t, int on, const wh__cidr *allow, size_t n_allow,
                       int set_allow)
{
    if (!wh__lean_is(t) || (n_allow && !allow)) return WH_E_INVAL;
    wh_lean *l = t->user;
    if (set_allow && wh__cidr_list_set(&l->allow, &l->n_allow, allow, n_allow) != WH_OK)
        return WH_E_NOMEM;
    if (on != -1) l->ssrf_guard = on != 0;
    return WH_OK;
}
