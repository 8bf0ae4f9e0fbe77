/* The default transport: libcurl multi, non-blocking.
 *
 * Every request is one easy handle added to one multi handle.  Easy handles
 * come from a free pool and are reset and reused; connections live in the
 * multi handle's connection cache, so consecutive requests to one host reuse
 * a keep-alive connection (or multiplex over one HTTP/2 connection).
 *
 * perform() collects every finished transfer first (removing it from the
 * multi handle) and only then reports them through done(), one at a time.
 * done() may therefore submit or cancel requests, including finished ones
 * not yet reported; it must not call perform() (WH_E_RECURSIVE) and a
 * destroy() from inside done() is deferred until perform() returns.
 *
 * Loop mode (vtable version 2, set_loop): libcurl's socket and timer
 * callbacks (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION) go to the engine's
 * hooks and socket_action() is curl_multi_socket_action(), so the cost of
 * a call follows the sockets that are ready, not the transfers running.
 * perform() still works in loop mode (curl_multi_perform also updates the
 * socket callbacks), for wh_flush.
 *
 * No thread is started here: URLs with IP literals never need curl's
 * resolver thread, and the library never calls anything else that would.
 * A host name is resolved by libcurl's threaded resolver (Debian's libcurl
 * is built with it, not c-ares): one short-lived thread per lookup.
 *
 * Connection reuse: CURLMOPT_MAXCONNECTS is set (at least 64, and twice
 * the most transfers ever in flight at once), because libcurl's default
 * cache holds 4 idle connections per easy handle *currently added*, and
 * finished handles leave the multi handle here, so under load the cache
 * shrank and closed connections depending on timing.  A share handle keeps
 * TLS sessions (resumption) and DNS answers across easy handles; the
 * connection cache itself is the multi handle's.  The CA store is parsed
 * once per multi handle (CURLOPT_CA_CACHE_TIMEOUT, libcurl 7.87+).
 *
 * Safety: the SSRF guard runs in the open-socket callback, on the address
 * about to be connected to (lib/ssrf.c).  The environment's proxy
 * variables are ignored unless the proxy option says "env".  A request is
 * never sent twice within one attempt: libcurl re-sends a request whose
 * reused connection died before an answer, on a fresh connection; the
 * pre-request callback refuses that second send, so the attempt fails and
 * the engine's next attempt carries the next attempt number.  A response
 * body past the cap (plus a small drain allowance that keeps the
 * connection) aborts the transfer; the status already received decides. */
#include "ds.h"
#include "internal.h"

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define WH_CURL_RETRY_AFTER_MAX 128  /* longest Retry-After value kept */
#define WH_CURL_POOL_MAX 256         /* idle easy handles kept for reuse */
#define WH_CURL_NO_TIMER_MS 1000     /* timeout_ms() while running, no timer */
#define WH_CURL_UPLOAD_DEFAULT 65536 /* libcurl's default upload buffer */
#define WH_CURL_UPLOAD_MAX (2L << 20) /* CURLOPT_UPLOAD_BUFFERSIZE's maximum */
#define WH_CURL_DRAIN_MAX 65536      /* body bytes read past the cap (to keep
                                        the connection) before aborting */
#define WH_CURL_HEADERS_MAX 65536    /* response header bytes accepted */
#define WH_CURL_MIN_CONNECTS 64      /* CURLMOPT_MAXCONNECTS floor (auto) */

/* Fields of wh_curl_options an older caller may not have. */
#define OPT_HAS(o, field)                                                     \
    ((o)->struct_size >= offsetof(wh_curl_options, field) + sizeof((o)->field))

typedef enum req_state { REQ_FREE, REQ_RUNNING, REQ_FINISHED } req_state;

/* TLS settings as applied to an easy handle (owned copies). */
typedef struct tls_set {
    char *ca_file, *ca_path, *cert, *key, *pin;
    int min_version, insecure;
} tls_set;

typedef struct wh_curl wh_curl;
typedef struct creq creq;
struct creq {
    wh_curl *c;
    wh__link link;               /* in one list: running, finished or free */
    CURL *easy;
    /* The header list handed to libcurl: nodes owned here, pointing at the
     * request's own header strings (valid until completion), so building
     * it allocates nothing. */
    struct curl_slist *hdr_nodes;
    size_t hdr_cap;
    /* Options as last set on `easy`: a reused handle only gets what
     * changed (the handle is never reset; every per-request option is set
     * for every request). */
    char *url;                   /* copy of the URL last set */
    long timeout_ms, connect_timeout_ms;
    long upload_buffer;          /* CURLOPT_UPLOAD_BUFFERSIZE as last set */
    void *token;
    req_state state;
    CURLcode result;             /* set when finished */
    char *body;                  /* max_response_bytes + 1 (NUL) */
    size_t body_len;
    size_t body_cap;
    int have_retry_after;
    char retry_after[WH_CURL_RETRY_AFTER_MAX];
    char delivery_control[64];   /* webhook-delivery value, "" if none */
    char errbuf[CURL_ERROR_SIZE];
    /* network options as last set on `easy` */
    unsigned net_gen;            /* c->net_gen when the proxy was set */
    tls_set tls;
    int tls_valid;
    /* per attempt */
    int prereq_calls;            /* sends of this request (1 normally) */
    int resend_blocked;          /* a second send was refused */
    int forbidden;               /* the SSRF guard refused an address */
    char refused[192];           /* its message */
    size_t body_seen;            /* body bytes received, kept or not */
    int body_aborted;            /* stopped reading past the cap */
    size_t hdr_bytes;            /* response header bytes */
    int hdr_too_big;
    int block_status;            /* status of the current header block */
    int final_headers_done;      /* the final (>= 200) header block ended */
    long long content_length;    /* of the final response, -1 unknown */
};

typedef wh__list req_list;      /* of creq.link */

/* A socket libcurl asked the loop to watch (curl_multi_assign'ed). */
typedef struct csock {
    wh__link link;               /* wh_curl.socks */
    curl_socket_t fd;
    void *slot;                  /* the loop's slot for this fd */
} csock;

struct wh_curl {
    wh_transport vt;             /* vt.user == this */
    CURLM *multi;
    CURLSH *share;               /* TLS sessions + DNS */
    wh_curl_options opts;        /* strings below are owned copies */
    long maxconn;                /* CURLMOPT_MAXCONNECTS as set */
    size_t peak;                 /* most transfers running at once */
    /* network safety */
    int ssrf_guard;
    wh__cidr *allow;
    size_t n_allow;
    char *proxy;                 /* NULL: none; "env"; or a URL */
    unsigned net_gen;            /* bumped when the proxy changes */
    tls_set def_tls;             /* opts.tls, owned */
    char *sys_cainfo, *sys_capath; /* libcurl's built-in CA locations */
    req_list running;            /* added to the multi handle */
    req_list finished;           /* removed from it, not yet reported */
    req_list idle;               /* the pool */
    int in_perform;
    int destroy_pending;
    int loop_on;                 /* socket/timer callbacks go to loop */
    wh_loop loop;
    wh__list socks;              /* of csock.link: watched sockets */
};

/* ---- lists ----------------------------------------------------------------- */
static creq *req_of(wh__link *x) { return x ? WH__CONTAINER_OF(x, creq, link) : NULL; }
static void list_push(req_list *l, creq *r) { wh__list_push_back(l, &r->link); }
static void list_unlink(req_list *l, creq *r) { wh__list_unlink(l, &r->link); }

static creq *list_find(const req_list *l, void *token)
{
    for (creq *r = req_of(l->head); r; r = req_of(r->link.next))
        if (r->token == token) return r;
    return NULL;
}

/* ---- requests ---------------------------------------------------------------- */
static void tls_set_clear(tls_set *t)
{
    free(t->ca_file);
    free(t->ca_path);
    free(t->cert);
    free(t->key);
    free(t->pin);
    memset(t, 0, sizeof *t);
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static void req_free(creq *r)
{
    if (!r) return;
    if (r->easy) curl_easy_cleanup(r->easy);
    tls_set_clear(&r->tls);
    free(r->hdr_nodes);
    free(r->url);
    free(r->body);
    free(r);
}

/* Put a request that is no longer in the multi handle back in the pool. */
static void req_recycle(wh_curl *c, creq *r)
{
    r->token = NULL;
    r->state = REQ_FREE;
    if (c->idle.n >= WH_CURL_POOL_MAX) {
        req_free(r);
        return;
    }
    list_push(&c->idle, r);
}

static int req_init_options(wh_curl *c, creq *r);

/* An idle handle, preferably one last used for `url` (its options then
 * mostly stand), or a new one. */
static creq *req_get(wh_curl *c, const char *url)
{
    creq *r = req_of(c->idle.tail); /* most recently recycled */
    if (r && (!r->url || strcmp(r->url, url) != 0)) {
        int tries = 0;
        for (creq *x = req_of(c->idle.tail); x && tries < 8; x = req_of(x->link.prev), tries++)
            if (x->url && strcmp(x->url, url) == 0) {
                r = x;
                break;
            }
    }
    if (r) {
        list_unlink(&c->idle, r);
        return r;
    }
    r = wh__calloc(1, sizeof *r);
    if (!r) return NULL;
    r->c = c;
    r->body_cap = c->opts.max_response_bytes;
    r->body = malloc(r->body_cap + 1);
    r->easy = curl_easy_init();
    if (!r->body || !r->easy || req_init_options(c, r) != WH_OK) {
        req_free(r);
        return NULL;
    }
    return r;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    creq *r = ud;
    size_t n = size * nmemb;
    size_t room = r->body_cap - r->body_len;
    size_t take = n < room ? n : room;
    if (take) {
        memcpy(r->body + r->body_len, ptr, take);
        r->body_len += take;
    }
    r->body_seen += n;
    /* Past the cap the bytes are discarded; a little more is read so that a
     * modest response keeps its connection, then the transfer is cut: an
     * endless body costs bounded time, not the whole timeout.  The status
     * already received decides the attempt (see report()). */
    if (r->body_seen > r->body_cap + WH_CURL_DRAIN_MAX) {
        r->body_aborted = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    creq *r = ud;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    const size_t nl = sizeof name - 1;

    r->hdr_bytes += n;
    if (r->hdr_bytes > WH_CURL_HEADERS_MAX) {
        r->hdr_too_big = 1;
        return 0; /* aborts the transfer */
    }
    /* A new status line (interim 1xx, or the final response) starts a new
     * header block: forget what an earlier block said. */
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        r->have_retry_after = 0;
        r->retry_after[0] = '\0';
        r->delivery_control[0] = '\0';
        r->content_length = -1;
        r->block_status = 0;
        const char *sp = memchr(buf, ' ', n);
        if (sp && (size_t)(sp - buf) + 4 <= n) {
            int st = 0, k;
            for (k = 1; k <= 3 && sp[k] >= '0' && sp[k] <= '9'; k++) st = st * 10 + (sp[k] - '0');
            if (k == 4) r->block_status = st;
        }
        return n;
    }
    if ((n == 2 && buf[0] == '\r' && buf[1] == '\n') || (n == 1 && buf[0] == '\n')) {
        if (r->block_status >= 200) r->final_headers_done = 1;
        return n;
    }
    static const char dc[] = "webhook-delivery:";
    if (n > sizeof dc - 1 && strncasecmp(buf, dc, sizeof dc - 1) == 0) {
        const char *v = buf + sizeof dc - 1;
        while (v < buf + n && (*v == ' ' || *v == '\t')) v++;
        size_t vl = (size_t)(buf + n - v);
        if (vl >= sizeof r->delivery_control) vl = sizeof r->delivery_control - 1;
        memcpy(r->delivery_control, v, vl);
        r->delivery_control[vl] = '\0';
        r->delivery_control[strcspn(r->delivery_control, "\r\n")] = '\0';
        return n;
    }
    static const char cl[] = "content-length:";
    if (n > sizeof cl - 1 && strncasecmp(buf, cl, sizeof cl - 1) == 0) {
        const char *v = buf + sizeof cl - 1, *end = buf + n;
        long long x = 0;
        int digits = 0;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        for (; v < end && *v >= '0' && *v <= '9' && digits < 18; v++, digits++)
            x = x * 10 + (*v - '0');
        r->content_length = digits ? x : -1;
        return n;
    }
    if (n < nl || strncasecmp(buf, name, nl) != 0) return n;
    const char *v = buf + nl, *end = buf + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= sizeof r->retry_after) len = sizeof r->retry_after - 1;
    memcpy(r->retry_after, v, len);
    r->retry_after[len] = '\0';
    r->have_retry_after = 1;
    return n;
}

static int has_header(const wh_request *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i];
        if (h && strncasecmp(h, name, nl) == 0 && h[nl] == ':') return 1;
    }
    return 0;
}

/* The SSRF guard: judge the address libcurl is about to connect to. */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose,
                                   struct curl_sockaddr *a)
{
    creq *r = ud;
    wh_curl *c = r->c;
    if (purpose == CURLSOCKTYPE_IPCXN && c->ssrf_guard) {
        char msg[sizeof r->refused];
        if (wh__ssrf_check(&a->addr, a->addrlen, c->allow, c->n_allow, msg, sizeof msg)) {
            /* keep the first refusal: libcurl may try further addresses */
            if (!r->forbidden) {
                r->forbidden = 1;
                memcpy(r->refused, msg, sizeof msg);
            }
            return CURL_SOCKET_BAD;
        }
    }
    int type = a->socktype;
#ifdef SOCK_CLOEXEC
    type |= SOCK_CLOEXEC;
#endif
    return socket(a->family, type, a->protocol);
}

#if LIBCURL_VERSION_NUM >= 0x075000 /* 7.80.0: CURLOPT_PREREQFUNCTION */
/* Called once the connection is there, before the request goes out: on a
 * fresh connection, on a reused one, and again when libcurl re-sends the
 * request after a reused connection died without an answer.  That re-send
 * would reach the receiver with the same id and attempt number while the
 * engine counts one attempt: refuse it (the attempt fails, the engine's
 * retry policy decides, the next attempt is numbered). */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    creq *r = ud;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (++r->prereq_calls > 1) {
        r->resend_blocked = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}
#endif

/* Proxy as the transport says: "" disables every proxy, the environment's
 * included; NULL (for "env") lets libcurl read http_proxy & co. */
static CURLcode apply_proxy(wh_curl *c, creq *r)
{
    const char *p = !c->proxy ? "" : strcmp(c->proxy, "env") == 0 ? NULL : c->proxy;
    CURLcode rc = curl_easy_setopt(r->easy, CURLOPT_PROXY, p);
    if (rc == CURLE_OK) r->net_gen = c->net_gen;
    return rc;
}

/* The TLS settings for one request: its own fields over the transport's. */
static void tls_effective(const wh_curl *c, const wh_tls *t, wh_tls *out)
{
    out->ca_file = t && t->ca_file ? t->ca_file : c->def_tls.ca_file;
    out->ca_path = t && t->ca_path ? t->ca_path : c->def_tls.ca_path;
    out->client_cert_file = t && t->client_cert_file ? t->client_cert_file : c->def_tls.cert;
    out->client_key_file = t && t->client_key_file ? t->client_key_file : c->def_tls.key;
    out->pinned_public_key =
        t && t->pinned_public_key ? t->pinned_public_key : c->def_tls.pin;
    out->min_version = t && t->min_version ? t->min_version : c->def_tls.min_version;
    out->insecure_skip_verify_DANGEROUS =
        (t && t->insecure_skip_verify_DANGEROUS) || c->def_tls.insecure;
}

static int tls_same(const tls_set *a, const wh_tls *b)
{
    return str_eq(a->ca_file, b->ca_file) && str_eq(a->ca_path, b->ca_path) &&
           str_eq(a->cert, b->client_cert_file) && str_eq(a->key, b->client_key_file) &&
           str_eq(a->pin, b->pinned_public_key) && a->min_version == b->min_version &&
           a->insecure == b->insecure_skip_verify_DANGEROUS;
}

/* Set the TLS options of r->easy to t, unless they already are. */
static int apply_tls(wh_curl *c, creq *r, const wh_tls *t)
{
    if (r->tls_valid && tls_same(&r->tls, t)) return WH_OK;
    r->tls_valid = 0;
    tls_set_clear(&r->tls);
    CURL *h = r->easy;
    CURLcode rc = CURLE_OK;
    /* ca_file or ca_path given: only that store is trusted.  Neither: the
     * system's bundle file alone when libcurl has one (Debian:
     * /etc/ssl/certs/ca-certificates.crt, the same CAs as the directory),
     * because libcurl caches a parsed CA store only when no CA path is set;
     * with the directory too, every new connection parsed the whole bundle
     * again.  The directory only when there is no bundle. */
    const char *cainfo = t->ca_file ? t->ca_file : t->ca_path ? NULL : c->sys_cainfo;
    const char *capath = t->ca_path ? t->ca_path
                         : t->ca_file || c->sys_cainfo ? NULL
                                                       : c->sys_capath;
    int verify = c->opts.verify_tls && !t->insecure_skip_verify_DANGEROUS;
#define SET(opt, val)                                                          \
    do {                                                                       \
        if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val);                \
    } while (0)
    SET(CURLOPT_CAINFO, cainfo);
    SET(CURLOPT_CAPATH, capath);
    SET(CURLOPT_SSLCERT, t->client_cert_file);
    SET(CURLOPT_SSLKEY, t->client_key_file);
    SET(CURLOPT_PINNEDPUBLICKEY, t->pinned_public_key);
    SET(CURLOPT_SSLVERSION, t->min_version == 13 ? (long)CURL_SSLVERSION_TLSv1_3
                                                 : (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
#undef SET
    if (rc == CURLE_OUT_OF_MEMORY) return WH_E_NOMEM;
    if (rc != CURLE_OK) return WH_E_TRANSPORT;
    r->tls.ca_file = wh__strdup(t->ca_file);
    r->tls.ca_path = wh__strdup(t->ca_path);
    r->tls.cert = wh__strdup(t->client_cert_file);
    r->tls.key = wh__strdup(t->client_key_file);
    r->tls.pin = wh__strdup(t->pinned_public_key);
    r->tls.min_version = t->min_version;
    r->tls.insecure = t->insecure_skip_verify_DANGEROUS;
    if ((t->ca_file && !r->tls.ca_file) || (t->ca_path && !r->tls.ca_path) ||
        (t->client_cert_file && !r->tls.cert) || (t->client_key_file && !r->tls.key) ||
        (t->pinned_public_key && !r->tls.pin)) {
        tls_set_clear(&r->tls);
        return WH_E_NOMEM;
    }
    r->tls_valid = 1;
    return WH_OK;
}

/* Options that are the same for every request: set once per handle. */
static int req_init_options(wh_curl *c, creq *r)
{
    CURL *h = r->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
    do {                                                                       \
        if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val);                \
    } while (0)
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_USERAGENT, WH_USER_AGENT);
    SET(CURLOPT_SHARE, c->share);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    SET(CURLOPT_OPENSOCKETDATA, (void *)r);
#if LIBCURL_VERSION_NUM >= 0x075000
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, (void *)r);
#endif
#if LIBCURL_VERSION_NUM >= 0x075700 /* 7.87.0: CA store cached per multi */
    SET(CURLOPT_CA_CACHE_TIMEOUT, 86400L);
#endif
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
#undef SET
    if (rc == CURLE_OK) rc = apply_proxy(c, r);
    if (rc == CURLE_OUT_OF_MEMORY) return WH_E_NOMEM;
    if (rc != CURLE_OK) return WH_E_TRANSPORT;
    wh_tls t;
    tls_effective(c, NULL, &t);
    int st = apply_tls(c, r, &t);
    if (st != WH_OK) return st;
    /* Refused by a libcurl built without HTTP/2: then HTTP/1.1 it is. */
    (void)curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                           c->opts.http2 ? (long)CURL_HTTP_VERSION_2TLS
                                         : (long)CURL_HTTP_VERSION_1_1);
    r->timeout_ms = r->connect_timeout_ms = -1;
    return WH_OK;
}

/* Configure r->easy for req.  Returns WH_OK or a status. */
static int req_setup(wh_curl *c, creq *r, const wh_request *req)
{
    CURL *h = r->easy;
    static char content_type[] = "Content-Type: application/json";
    static char no_expect[] = "Expect:";

    /* header list: the request's lines, a default Content-Type, no
     * "Expect: 100-continue" */
    size_t want = req->n_headers + 2;
    if (want > r->hdr_cap) {
        struct curl_slist *nodes = realloc(r->hdr_nodes, want * sizeof *nodes);
        if (!nodes) return WH_E_NOMEM;
        r->hdr_nodes = nodes;
        r->hdr_cap = want;
    }
    size_t n = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i]) r->hdr_nodes[n++].data = (char *)req->headers[i];
    if (!has_header(req, "Content-Type")) r->hdr_nodes[n++].data = content_type;
    r->hdr_nodes[n++].data = no_expect;
    for (size_t i = 0; i < n; i++)
        r->hdr_nodes[i].next = i + 1 < n ? &r->hdr_nodes[i + 1] : NULL;

    r->token = req->token;
    r->result = CURLE_OK;
    r->body_len = 0;
    r->body[0] = '\0';
    r->have_retry_after = 0;
    r->retry_after[0] = '\0';
    r->delivery_control[0] = '\0';
    r->errbuf[0] = '\0';
    r->prereq_calls = 0;
    r->resend_blocked = 0;
    r->forbidden = 0;
    r->refused[0] = '\0';
    r->body_seen = 0;
    r->body_aborted = 0;
    r->hdr_bytes = 0;
    r->hdr_too_big = 0;
    r->block_status = 0;
    r->final_headers_done = 0;
    r->content_length = -1;
    wh_tls t;
    tls_effective(c, req->tls, &t);
    int st = apply_tls(c, r, &t);
    if (st != WH_OK) return st;
    if (r->net_gen != c->net_gen) {
        CURLcode pc = apply_proxy(c, r);
        if (pc != CURLE_OK) return pc == CURLE_OUT_OF_MEMORY ? WH_E_NOMEM : WH_E_TRANSPORT;
    }

    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
    do {                                                                       \
        if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val);                \
    } while (0)
    if (!r->url || strcmp(r->url, req->url) != 0) {
        char *copy = wh__strdup(req->url);
        if (!copy) return WH_E_NOMEM;
        free(r->url);
        r->url = NULL;
        SET(CURLOPT_URL, req->url);
        /* Wait for a connection that may multiplex (HTTP/2 is only
         * negotiated over TLS here).  On http:// it would only make every
         * transfer to a host wait for the first response. */
        SET(CURLOPT_PIPEWAIT,
            c->opts.http2 && strncasecmp(req->url, "https://", 8) == 0 ? 1L : 0L);
        if (rc == CURLE_OK) r->url = copy;
        else free(copy);
    }
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    /* a body over libcurl's 64 KiB upload buffer leaves in one go (one
     * socket write per buffer, not one wh_poll per 64 KiB) */
    long ub = req->body_len <= WH_CURL_UPLOAD_DEFAULT ? 0
              : req->body_len >= (size_t)WH_CURL_UPLOAD_MAX ? WH_CURL_UPLOAD_MAX
                                                            : (long)req->body_len;
    if (ub != r->upload_buffer) {
        SET(CURLOPT_UPLOAD_BUFFERSIZE, ub ? ub : (long)WH_CURL_UPLOAD_DEFAULT);
        r->upload_buffer = rc == CURLE_OK ? ub : -1;
    }
    SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
    SET(CURLOPT_HTTPHEADER, r->hdr_nodes);
    if (r->timeout_ms != (long)req->timeout_ms) {
        SET(CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
        r->timeout_ms = rc == CURLE_OK ? (long)req->timeout_ms : -1;
    }
    if (r->connect_timeout_ms != (long)req->connect_timeout_ms) {
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
        r->connect_timeout_ms = rc == CURLE_OK ? (long)req->connect_timeout_ms : -1;
    }
#undef SET
    if (rc == CURLE_OUT_OF_MEMORY) return WH_E_NOMEM;
    if (rc != CURLE_OK) return WH_E_TRANSPORT;
    return WH_OK;
}

/* ---- vtable ------------------------------------------------------------------ */
static int tc_submit(void *user, const wh_request *req)
{
    wh_curl *c = user;
    if (!c || !req || !req->url || (!req->body && req->body_len) ||
        (req->n_headers && !req->headers))
        return WH_E_INVAL;
    if (c->destroy_pending) return WH_E_INVAL;
    creq *r = req_get(c, req->url);
    if (!r) return WH_E_NOMEM;
    int rc = req_setup(c, r, req);
    if (rc == WH_OK) {
        CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
        if (mc != CURLM_OK)
            rc = mc == CURLM_OUT_OF_MEMORY ? WH_E_NOMEM : WH_E_TRANSPORT;
    }
    if (rc != WH_OK) {
        req_recycle(c, r);
        return rc;
    }
    r->state = REQ_RUNNING;
    list_push(&c->running, r);
    if (c->running.n > c->peak) {
        c->peak = c->running.n;
        /* every in-flight slot keeps its idle connection between requests */
        if (c->opts.max_connections == 0 && (long)(2 * c->peak) > c->maxconn) {
            long want = (long)(2 * c->peak);
            if (curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, want) == CURLM_OK)
                c->maxconn = want;
        }
    }
    return WH_OK;
}

/* Move every finished transfer from the multi handle to c->finished.
 * Returns how many were moved. */
static int collect(wh_curl *c)
{
    int n = 0, left = 0;
    CURLMsg *m;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;
        void *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        creq *r = priv;
        /* m is invalid once the handle is removed. */
        curl_multi_remove_handle(c->multi, easy);
        if (!r || r->state != REQ_RUNNING) continue;
        r->result = result;
        list_unlink(&c->running, r);
        r->state = REQ_FINISHED;
        list_push(&c->finished, r);
        n++;
    }
    return n;
}

static int map_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return WH_OK;
    case CURLE_OPERATION_TIMEDOUT: return WH_E_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return WH_E_CONNECT;
    default: return WH_E_TRANSPORT;
    }
}

/* A complete final 2xx arrived (headers ended; a 204, or the whole
 * Content-Length body), whatever happened to the rest of the request. */
static int complete_2xx(const creq *r, long code)
{
    if (code < 200 || code >= 300 || !r->final_headers_done) return 0;
    if (code == 204) return 1;
    return r->content_length >= 0 && (long long)r->body_seen >= r->content_length;
}

static void report(creq *r, wh_transport_done_fn done, void *done_user)
{
    wh_response res;
    long code = 0;
    char msg[256];
    memset(&res, 0, sizeof res);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    res.status = (int)code;
    res.error = map_error(r->result);
    if (res.error != WH_OK)
        res.error_msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
    if (r->forbidden && r->result == CURLE_COULDNT_CONNECT) {
        res.status = 0;
        res.error = WH_E_FORBIDDEN;
        res.error_msg = r->refused;
    } else if (r->hdr_too_big) {
        snprintf(msg, sizeof msg, "response headers exceed %d bytes", WH_CURL_HEADERS_MAX);
        res.error = WH_E_TRANSPORT;
        res.error_msg = msg;
    } else if (r->body_aborted && r->result == CURLE_WRITE_ERROR && code > 0) {
        /* stopped reading an oversized body: the status decides */
        res.error = WH_OK;
        res.error_msg = NULL;
    } else if (r->resend_blocked) {
        res.error = WH_E_TRANSPORT;
        res.error_msg = "the reused connection closed before an answer (the request "
                        "is not re-sent within the same attempt)";
    } else if (res.error != WH_OK && complete_2xx(r, code)) {
        /* e.g. HTTP/2: the receiver answered before reading the whole body
         * and reset the stream; its answer stands */
        res.error = WH_OK;
        res.error_msg = NULL;
    }
    res.retry_after = r->have_retry_after ? r->retry_after : NULL;
    res.delivery_control = r->delivery_control[0] ? r->delivery_control : NULL;
    r->body[r->body_len] = '\0';
    res.body = r->body;
    res.body_len = r->body_len;
    if (done) done(done_user, r->token, &res);
}

static void tc_free(wh_curl *c);

/* Report what collect() moved to c->finished, one at a time: done() may
 * cancel a finished request that has not been reported yet (it is then
 * unlinked from c->finished) or submit new ones (they go to c->running). */
static void report_finished(wh_curl *c, wh_transport_done_fn done, void *done_user)
{
    creq *r;
    while (!c->destroy_pending && (r = req_of(c->finished.head))) {
        list_unlink(&c->finished, r);
        report(r, done, done_user);
        req_recycle(c, r);
    }
}

static int tc_perform(void *user, int wait_ms, wh_transport_done_fn done,
                      void *done_user)
{
    wh_curl *c = user;
    int still = 0;
    if (!c) return WH_E_INVAL;
    if (c->in_perform) return WH_E_RECURSIVE;
    c->in_perform = 1;

    int n = 0;
    if (c->running.n) {
        curl_multi_perform(c->multi, &still);
        n = collect(c);
    }
    if (n == 0 && wait_ms > 0 && !c->finished.n) {
        /* Wait for socket activity or the timeout.  With nothing running,
         * curl_multi_poll sleeps for wait_ms (unlike curl_multi_wait), so an
         * idle host loop calling wh_poll(e, N) does not spin. */
        curl_multi_poll(c->multi, NULL, 0, wait_ms, NULL);
        if (c->running.n) {
            curl_multi_perform(c->multi, &still);
            collect(c);
        }
    }

    report_finished(c, done, done_user);

    c->in_perform = 0;
    if (c->destroy_pending) {
        tc_free(c);
        return 0;
    }
    return (int)c->running.n;
}

/* ---- loop mode --------------------------------------------------------------- */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    wh_curl *c = userp;
    csock *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            c->loop.watch(c->loop.user, (int)fd, 0, &k->slot);
            wh__list_unlink(&c->socks, &k->link);
            curl_multi_assign(c->multi, fd, NULL);
            free(k);
        }
        return 0;
    }
    if (!k) {
        k = wh__calloc(1, sizeof *k);
        if (!k) return -1; /* libcurl fails the transfer */
        k->fd = fd;
        wh__list_push_back(&c->socks, &k->link);
        curl_multi_assign(c->multi, fd, k);
    }
    int ev = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? WH_POLL_IN : 0) |
             (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? WH_POLL_OUT : 0);
    return c->loop.watch(c->loop.user, (int)fd, ev, &k->slot) == 0 ? 0 : -1;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    wh_curl *c = userp;
    c->loop.timer(c->loop.user, timeout_ms < 0 ? -1 : (int64_t)timeout_ms);
    return 0;
}

static int tc_set_loop(void *user, const wh_loop *loop)
{
    wh_curl *c = user;
    if (!c) return WH_E_INVAL;
    if (!loop) {
        if (!c->loop_on) return WH_OK;
        wh__link *l;
        while ((l = wh__list_pop_front(&c->socks))) {
            csock *k = WH__CONTAINER_OF(l, csock, link);
            c->loop.watch(c->loop.user, (int)k->fd, 0, &k->slot);
            curl_multi_assign(c->multi, k->fd, NULL);
            free(k);
        }
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, (curl_socket_callback)NULL);
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, (curl_multi_timer_callback)NULL);
        c->loop.timer(c->loop.user, -1);
        c->loop_on = 0;
        return WH_OK;
    }
    if (c->running.n || c->finished.n) return WH_E_INVAL;
    c->loop = *loop;
    c->loop_on = 1;
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, (void *)c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, (void *)c) != CURLM_OK) {
        c->loop_on = 0;
        return WH_E_TRANSPORT;
    }
    return WH_OK;
}

static int tc_socket_action(void *user, int fd, int events, wh_transport_done_fn done,
                            void *done_user)
{
    wh_curl *c = user;
    if (!c) return WH_E_INVAL;
    if (c->in_perform) return WH_E_RECURSIVE;
    c->in_perform = 1;
    int mask = 0, still = 0;
    if (fd != WH_SOCKET_TIMEOUT) {
        if (events & WH_POLL_IN) mask |= CURL_CSELECT_IN;
        if (events & WH_POLL_OUT) mask |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(c->multi, fd == WH_SOCKET_TIMEOUT ? CURL_SOCKET_TIMEOUT
                                                                : (curl_socket_t)fd,
                             mask, &still);
    collect(c);
    report_finished(c, done, done_user);
    c->in_perform = 0;
    if (c->destroy_pending) {
        tc_free(c);
        return 0;
    }
    return (int)c->running.n;
}

static void tc_wakeup(void *user)
{
    wh_curl *c = user;
    if (c) curl_multi_wakeup(c->multi);
}

static int64_t tc_timeout_ms(void *user)
{
    wh_curl *c = user;
    if (!c || (!c->running.n && !c->finished.n)) return -1;
    if (c->finished.n) return 0;
    long ms = -1;
    if (curl_multi_timeout(c->multi, &ms) != CURLM_OK || ms < 0)
        return WH_CURL_NO_TIMER_MS;
    return (int64_t)ms;
}

static void tc_cancel(void *user, void *token)
{
    wh_curl *c = user;
    if (!c) return;
    creq *r = list_find(&c->running, token);
    if (r) {
        curl_multi_remove_handle(c->multi, r->easy);
        list_unlink(&c->running, r);
        req_recycle(c, r);
        return;
    }
    r = list_find(&c->finished, token);
    if (r) {
        list_unlink(&c->finished, r);
        req_recycle(c, r);
    }
}

static void free_list(wh_curl *c, req_list *l, int in_multi)
{
    creq *r;
    while ((r = req_of(l->head))) {
        list_unlink(l, r);
        if (in_multi) curl_multi_remove_handle(c->multi, r->easy);
        req_free(r);
    }
}

static void tc_free(wh_curl *c)
{
    /* the loop lets go of every socket before libcurl closes them */
    if (c->loop_on) tc_set_loop(c, NULL);
    free_list(c, &c->running, 1);
    free_list(c, &c->finished, 0);
    free_list(c, &c->idle, 0);
    if (c->multi) curl_multi_cleanup(c->multi);
    if (c->share) curl_share_cleanup(c->share);
    tls_set_clear(&c->def_tls);
    free(c->allow);
    free(c->proxy);
    free(c->sys_cainfo);
    free(c->sys_capath);
    free(c);
    curl_global_cleanup();
}

static void tc_destroy(void *user)
{
    wh_curl *c = user;
    if (!c) return;
    if (c->in_perform) {       /* from inside done(): finish perform first */
        c->destroy_pending = 1;
        return;
    }
    tc_free(c);
}

/* ---- public ------------------------------------------------------------------ */
/* The defaults: what _init sets. */
static const wh_curl_options tc_defaults = {
    .struct_size = sizeof(wh_curl_options),
    .max_response_bytes = 4096,
    .max_host_connections = 0,
    .verify_tls = 1,
    .http2 = 0, /* see curl.h */
};

void wh_curl_options_init_sized(wh_curl_options *o, size_t size)
{
    wh__opts_init(o, size, &tc_defaults, sizeof tc_defaults);
}

int wh_transport_curl_new(const wh_curl_options *opts, wh_transport **out)
{
    if (!out) return WH_E_INVAL;
    *out = NULL;
    wh_curl_options o;
    wh_curl_options_init(&o);
    if (opts) {
        if (opts->struct_size < sizeof opts->struct_size) return WH_E_VERSION;
        if (OPT_HAS(opts, max_response_bytes))
            o.max_response_bytes = opts->max_response_bytes;
        if (OPT_HAS(opts, max_host_connections))
            o.max_host_connections = opts->max_host_connections;
        if (OPT_HAS(opts, verify_tls)) o.verify_tls = opts->verify_tls;
        if (OPT_HAS(opts, http2)) o.http2 = opts->http2;
        if (OPT_HAS(opts, max_connections)) o.max_connections = opts->max_connections;
        if (OPT_HAS(opts, ssrf_guard)) o.ssrf_guard = opts->ssrf_guard;
        if (OPT_HAS(opts, n_ssrf_allow)) {
            o.ssrf_allow = opts->ssrf_allow;
            o.n_ssrf_allow = opts->n_ssrf_allow;
        }
        if (OPT_HAS(opts, proxy)) o.proxy = opts->proxy;
        if (OPT_HAS(opts, tls)) o.tls = opts->tls;
    }
    if (o.max_host_connections < 0 || o.max_response_bytes >= SIZE_MAX / 2 ||
        o.max_connections < 0 || (o.n_ssrf_allow && !o.ssrf_allow) ||
        o.n_ssrf_allow > 100000 ||
        (o.tls.min_version != 0 && o.tls.min_version != 12 && o.tls.min_version != 13))
        return WH_E_INVAL;
    wh__cidr *allow = NULL;
    if (o.n_ssrf_allow) {
        allow = wh__calloc(o.n_ssrf_allow, sizeof *allow);
        if (!allow) return WH_E_NOMEM;
        for (size_t i = 0; i < o.n_ssrf_allow; i++)
            if (wh__cidr_parse(o.ssrf_allow[i], &allow[i], NULL) != WH_OK) {
                free(allow);
                return WH_E_INVAL;
            }
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return WH_E_TRANSPORT;
    wh_curl *c = wh__calloc(1, sizeof *c);
    if (!c) {
        free(allow);
        curl_global_cleanup();
        return WH_E_NOMEM;
    }
    c->opts = o;
    c->opts.ssrf_allow = NULL;  /* copied below; the caller's may go */
    c->opts.n_ssrf_allow = 0;
    c->opts.proxy = NULL;
    memset(&c->opts.tls, 0, sizeof c->opts.tls);
    c->allow = allow;
    c->n_allow = o.n_ssrf_allow;
    c->ssrf_guard = o.ssrf_guard != 0;
    int nomem = 0;
    if (o.proxy && *o.proxy) nomem |= !(c->proxy = wh__strdup(o.proxy));
    nomem |= o.tls.ca_file && !(c->def_tls.ca_file = wh__strdup(o.tls.ca_file));
    nomem |= o.tls.ca_path && !(c->def_tls.ca_path = wh__strdup(o.tls.ca_path));
    nomem |= o.tls.client_cert_file && !(c->def_tls.cert = wh__strdup(o.tls.client_cert_file));
    nomem |= o.tls.client_key_file && !(c->def_tls.key = wh__strdup(o.tls.client_key_file));
    nomem |= o.tls.pinned_public_key &&
             !(c->def_tls.pin = wh__strdup(o.tls.pinned_public_key));
    c->def_tls.min_version = o.tls.min_version;
    c->def_tls.insecure = o.tls.insecure_skip_verify_DANGEROUS != 0;
    /* libcurl's built-in CA locations, to go back to when a request has
     * no ca_file/ca_path of its own */
    CURL *probe = curl_easy_init();
    if (probe) {
#if LIBCURL_VERSION_NUM >= 0x075400 /* 7.84.0 */
        char *s = NULL;
        if (curl_easy_getinfo(probe, CURLINFO_CAINFO, &s) == CURLE_OK && s)
            nomem |= !(c->sys_cainfo = wh__strdup(s));
        s = NULL;
        if (curl_easy_getinfo(probe, CURLINFO_CAPATH, &s) == CURLE_OK && s)
            nomem |= !(c->sys_capath = wh__strdup(s));
#endif
        curl_easy_cleanup(probe);
    } else {
        nomem = 1;
    }
    c->multi = curl_multi_init();
    c->share = curl_share_init();
    if (nomem || !c->multi || !c->share) {
        tc_free(c);
        return WH_E_NOMEM;
    }
    CURLSHcode sc = curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (sc != CURLSHE_OK) {
        tc_free(c);
        return WH_E_TRANSPORT;
    }
    c->maxconn = o.max_connections ? o.max_connections : WH_CURL_MIN_CONNECTS;
    CURLMcode mc = curl_multi_setopt(c->multi, CURLMOPT_PIPELINING,
                                     (long)CURLPIPE_MULTIPLEX);
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, c->maxconn);
    if (mc == CURLM_OK && o.max_host_connections > 0)
        mc = curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                               o.max_host_connections);
    if (mc != CURLM_OK) {
        tc_free(c);
        return WH_E_TRANSPORT;
    }
    c->vt.version = WH_TRANSPORT_VERSION;
    c->vt.user = c;
    c->vt.submit = tc_submit;
    c->vt.perform = tc_perform;
    c->vt.timeout_ms = tc_timeout_ms;
    c->vt.cancel = tc_cancel;
    c->vt.destroy = tc_destroy;
    c->vt.set_loop = tc_set_loop;
    c->vt.socket_action = tc_socket_action;
    c->vt.wakeup = tc_wakeup;
    *out = &c->vt;
    return WH_OK;
}

/* ---- settings changed after creation (wh_config_load's document keys) ---- */
int wh__curl_is(const wh_transport *t)
{
    return t && t->submit == tc_submit && t->user;
}

int wh__curl_set_guard(wh_transport *t, int on, const wh__cidr *allow, size_t n_allow,
                       int set_allow)
{
    if (!wh__curl_is(t) || (n_allow && !allow)) return WH_E_INVAL;
    wh_curl *c = t->user;
    if (!set_allow) {
        if (on != -1) c->ssrf_guard = on != 0;
        return WH_OK;
    }
    if (wh__cidr_list_set(&c->allow, &c->n_allow, allow, n_allow) != WH_OK) return WH_E_NOMEM;
    if (on != -1) c->ssrf_guard = on != 0;
    return WH_OK;
}

int wh__curl_set_proxy(wh_transport *t, const char *proxy)
{
    if (!wh__curl_is(t)) return WH_E_INVAL;
    wh_curl *c = t->user;
    char *copy = NULL;
    if (proxy && *proxy && !(copy = wh__strdup(proxy))) return WH_E_NOMEM;
    free(c->proxy);
    c->proxy = copy;
    c->net_gen++;
    return WH_OK;
}
