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
 * No thread is started here: URLs with IP literals never need curl's
 * resolver thread, and the library never calls anything else that would. */
#include "ds.h"
#include "internal.h"

#include <curl/curl.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WH_CURL_RETRY_AFTER_MAX 128  /* longest Retry-After value kept */
#define WH_CURL_POOL_MAX 256         /* idle easy handles kept for reuse */
#define WH_CURL_NO_TIMER_MS 1000     /* timeout_ms() while running, no timer */

/* Fields of wh_curl_options an older caller may not have. */
#define OPT_HAS(o, field)                                                     \
    ((o)->struct_size >= offsetof(wh_curl_options, field) + sizeof((o)->field))

typedef enum req_state { REQ_FREE, REQ_RUNNING, REQ_FINISHED } req_state;

typedef struct creq creq;
struct creq {
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
};

typedef wh__list req_list;      /* of creq.link */

typedef struct wh_curl {
    wh_transport vt;             /* vt.user == this */
    CURLM *multi;
    wh_curl_options opts;
    req_list running;            /* added to the multi handle */
    req_list finished;           /* removed from it, not yet reported */
    req_list idle;               /* the pool */
    int in_perform;
    int destroy_pending;
} wh_curl;

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
static void req_free(creq *r)
{
    if (!r) return;
    if (r->easy) curl_easy_cleanup(r->easy);
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
    return n; /* past the cap: discard, but keep the transfer going */
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    creq *r = ud;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    const size_t nl = sizeof name - 1;

    /* A new status line (interim 1xx, or the final response) starts a new
     * header block: forget what an earlier block said. */
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        r->have_retry_after = 0;
        r->retry_after[0] = '\0';
        r->delivery_control[0] = '\0';
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
    SET(CURLOPT_SSL_VERIFYPEER, c->opts.verify_tls ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, c->opts.verify_tls ? 2L : 0L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
#undef SET
    if (rc == CURLE_OUT_OF_MEMORY) return WH_E_NOMEM;
    if (rc != CURLE_OK) return WH_E_TRANSPORT;
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

static void report(creq *r, wh_transport_done_fn done, void *done_user)
{
    wh_response res;
    long code = 0;
    memset(&res, 0, sizeof res);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    res.status = (int)code;
    res.error = map_error(r->result);
    if (res.error != WH_OK)
        res.error_msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
    res.retry_after = r->have_retry_after ? r->retry_after : NULL;
    res.delivery_control = r->delivery_control[0] ? r->delivery_control : NULL;
    r->body[r->body_len] = '\0';
    res.body = r->body;
    res.body_len = r->body_len;
    if (done) done(done_user, r->token, &res);
}

static void tc_free(wh_curl *c);

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

    /* Report one at a time: done() may cancel a finished request that has
     * not been reported yet (it is then unlinked from c->finished) or
     * submit new ones (they go to c->running). */
    creq *r;
    while (!c->destroy_pending && (r = req_of(c->finished.head))) {
        list_unlink(&c->finished, r);
        report(r, done, done_user);
        req_recycle(c, r);
    }

    c->in_perform = 0;
    if (c->destroy_pending) {
        tc_free(c);
        return 0;
    }
    return (int)c->running.n;
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
    free_list(c, &c->running, 1);
    free_list(c, &c->finished, 0);
    free_list(c, &c->idle, 0);
    if (c->multi) curl_multi_cleanup(c->multi);
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
void wh_curl_options_init_sized(wh_curl_options *o, size_t size)
{
    if (!o || size < sizeof(size_t)) return;
    wh_curl_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = size < sizeof d ? size : sizeof d;
    d.max_response_bytes = 4096;
    d.max_host_connections = 0;
    d.verify_tls = 1;
    d.http2 = 1;
    memcpy(o, &d, d.struct_size);
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
    }
    if (o.max_host_connections < 0 || o.max_response_bytes >= SIZE_MAX / 2)
        return WH_E_INVAL;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return WH_E_TRANSPORT;
    wh_curl *c = wh__calloc(1, sizeof *c);
    if (!c) {
        curl_global_cleanup();
        return WH_E_NOMEM;
    }
    c->opts = o;
    c->multi = curl_multi_init();
    if (!c->multi) {
        tc_free(c);
        return WH_E_NOMEM;
    }
    CURLMcode mc = curl_multi_setopt(c->multi, CURLMOPT_PIPELINING,
                                     (long)CURLPIPE_MULTIPLEX);
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
    *out = &c->vt;
    return WH_OK;
}
