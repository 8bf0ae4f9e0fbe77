/* The engine's default parts, the backends this build left out, and the
 * engine's network options.
 *
 * This is the one file that names concrete backends for the engine: its
 * own transport (libcurl when the library is built with it, the lean
 * transport, or both, per endpoint: wh_transport_kind) and the default
 * queue (bounded, in memory).  The engine itself only sees the
 * vtables.
 *
 * A backend whose package was not found at build time (make WITH_CURL=0,
 * WITH_SQLITE=0, WITH_REDIS=0; meson -Dcurl=disabled, ...) is not compiled;
 * its constructor is defined here instead and returns WH_E_UNSUPPORTED, so
 * <webhook/curl.h>, <webhook/sqlite.h> and <webhook/redis.h> are the same in
 * every build and a program can tell at run time what the library holds.
 * The build defines WH_HAVE_CURL / WH_HAVE_SQLITE / WH_HAVE_REDIS (lib/ only)
 * for what it compiled.
 *
 * Network options (README "Security", "TLS"): the TLS defaults and
 * https_only of wh_engine_options, the SSRF guard and proxy handed to the
 * default transport, and each endpoint's TLS profile, which travels with
 * every request as wh_request.tls. */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Fields of wh_engine_options an older caller may not have: wh_engine_new
 * copies the caller's struct into a full one with defaults, so every field
 * is readable here. */

struct wh__net {
    int https_only;
    int guard_set;               /* ssrf_guard or proxy set for the transport */
    /* TLS defaults, owned */
    char *ca_file, *ca_path, *cert, *key, *pin;
    int min_version;             /* 0, 12, 13 */
    int insecure;
};

struct wh__ep_net {
    wh_tls tls;                  /* points at the strings below */
    char *ca_file, *ca_path, *cert, *key, *pin;
};

static int parse_min_version(const char *v, int *out)
{
    if (!v) {
        *out = 0;
        return 1;
    }
    if (strcmp(v, "1.2") == 0) *out = 12;
    else if (strcmp(v, "1.3") == 0) *out = 13;
    else return 0;
    return 1;
}

/* "sha256//<base64>" entries joined by ';' (libcurl's format, without its
 * file-name form: a pin is a constant, not a path). */
static int pin_valid(const char *p)
{
    if (!*p) return 0;
    while (*p) {
        if (strncmp(p, "sha256//", 8) != 0) return 0;
        p += 8;
        size_t n = 0;
        while (*p && *p != ';') {
            char ch = *p++;
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '='))
                return 0;
            n++;
        }
        if (n != 44) return 0; /* base64 of 32 bytes */
        if (*p == ';') p++;
    }
    return 1;
}

/* Check one set of TLS fields; `where` names the owner ("endpoints[1]",
 * "engine").  Writes the message to buf. */
int wh__net_tls_check(const char *ca_file, const char *ca_path, const char *cert,
                      const char *key, const char *min, const char *pin, const char *where,
                      char *buf, size_t size)
{
    int v;
    const struct { const char *name, *path; } files[] = {
        {"ca_file", ca_file}, {"ca_path", ca_path}, {"client_cert_file", cert},
        {"client_key_file", key}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!files[i].path) continue;
        if (!*files[i].path) {
            snprintf(buf, size, "%s.%s: empty path", where, files[i].name);
            return WH_E_INVAL;
        }
        if (access(files[i].path, R_OK) != 0) {
            snprintf(buf, size, "%s.%s: %s: %s", where, files[i].name, files[i].path,
                     strerror(errno));
            return WH_E_IO;
        }
    }
    if (key && !cert) {
        snprintf(buf, size, "%s.client_key_file: requires client_cert_file", where);
        return WH_E_INVAL;
    }
    if (!parse_min_version(min, &v)) {
        snprintf(buf, size, "%s.tls_min_version: expected \"1.2\" or \"1.3\"", where);
        return WH_E_INVAL;
    }
    if (pin && !pin_valid(pin)) {
        snprintf(buf, size, "%s.pinned_public_key: expected \"sha256//<base64 of 32 "
                 "bytes>\" (several joined by ';')", where);
        return WH_E_INVAL;
    }
    return WH_OK;
}

/* Parse an allow list; message to buf on error. */
static int allow_parse(const char *const *list, size_t n, const char *where,
                       wh__cidr **out, char *buf, size_t size)
{
    *out = NULL;
    if (!n) return WH_OK;
    if (!list || n > 100000) {
        snprintf(buf, size, "%s.ssrf_allow: NULL list or more than 100000 entries", where);
        return WH_E_INVAL;
    }
    wh__cidr *a = wh__calloc(n, sizeof *a);
    if (!a) return WH_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *why = "NULL";
        if (!list[i] || wh__cidr_parse(list[i], &a[i], &why) != WH_OK) {
            snprintf(buf, size, "%s.ssrf_allow[%zu]: \"%s\": %s", where, i,
                     list[i] ? list[i] : "(null)", why);
            free(a);
            return WH_E_INVAL;
        }
    }
    *out = a;
    return WH_OK;
}

/* ---- the engine's own transport: a selector over lean and curl ------------- */
/* Each request goes to the transport its endpoint chose (wh_request.
 * transport), or the engine's kind.  The transport of the engine's kind is
 * made at once (so a failure shows in wh_engine_new); the other when a
 * request first needs it.  perform() drives the ones with work: one alone
 * waits as long as asked; both at once wait on the lean transport's set
 * at most 1 ms at a time, so neither starves (the price of keeping the two
 * event sets apart). */
typedef struct tsel {
    wh_transport vt;             /* vt.user == this */
    int kind;                    /* CURL, LEAN or AUTO */
    wh_transport *lean, *curl;
    int in_perform;
    int destroy_pending;
    /* the engine's network settings, applied to each part as it is made */
    int guard;
    wh__cidr *allow;
    size_t n_allow;
    char *proxy;                 /* set: every request goes through libcurl */
#ifdef WH_LOOP_VERSION
    /* version 2: the engine's hooks; each part gets hooks of its own whose
     * timers merge into the engine's one timer */
    wh_loop loop;
    int loop_on;
    struct tsel_part {
        struct tsel *t;
        wh_loop hooks;
        int64_t due;             /* the part's timer, INT64_MAX: none */
    } part[2];                   /* 0: lean, 1: curl */
    int64_t armed;
#endif
} tsel;

/* The lean transport has no proxy support: a proxy sends every request
 * through libcurl. */
static int tsel_pick(const tsel *t, const wh_request *req)
{
    int k = req->transport > WH_TRANSPORT_DEFAULT && req->transport <= WH_TRANSPORT_AUTO
                ? req->transport
                : t->kind;
    if (k == WH_TRANSPORT_AUTO) {
#ifdef WH_HAVE_CURL
        k = wh__lean_handles(req->url) && !t->proxy ? WH_TRANSPORT_LEAN : WH_TRANSPORT_CURL;
#else
        k = WH_TRANSPORT_LEAN;
#endif
    }
#ifdef WH_HAVE_CURL
    if (t->proxy) k = WH_TRANSPORT_CURL;
#endif
    return k;
}

static int tsel_apply(tsel *t, wh_transport *x)
{
    if (wh__lean_is(x)) return wh__lean_set_guard(x, t->guard, t->allow, t->n_allow, 1);
    int rc = wh__curl_set_guard(x, t->guard, t->allow, t->n_allow, 1);
    if (rc == WH_OK && t->proxy) rc = wh__curl_set_proxy(x, t->proxy);
    return rc;
}

static int tsel_get(tsel *t, int k, wh_transport **out)
{
    wh_transport **slot = k == WH_TRANSPORT_LEAN ? &t->lean : &t->curl;
    if (!*slot) {
        int rc = k == WH_TRANSPORT_LEAN ? wh_transport_lean_new(NULL, slot)
                                        : wh_transport_curl_new(NULL, slot);
        if (rc == WH_OK && (t->guard || t->n_allow || t->proxy)) {
            rc = tsel_apply(t, *slot);
            if (rc != WH_OK) (*slot)->destroy((*slot)->user);
        }
        if (rc != WH_OK) {
            *slot = NULL;
            return rc;
        }
#ifdef WH_LOOP_VERSION
        if (t->loop_on) {
            struct tsel_part *pt = &t->part[k == WH_TRANSPORT_LEAN ? 0 : 1];
            if ((*slot)->version < 2 || !(*slot)->set_loop ||
                (rc = (*slot)->set_loop((*slot)->user, &pt->hooks)) != WH_OK) {
                (*slot)->destroy((*slot)->user);
                *slot = NULL;
                return rc != WH_OK ? rc : WH_E_VERSION;
            }
        }
#endif
    }
    *out = *slot;
    return WH_OK;
}

static int tsel_submit(void *user, const wh_request *req)
{
    tsel *t = user;
    if (!t || !req || !req->url) return WH_E_INVAL;
    if (t->destroy_pending) return WH_E_INVAL;
    wh_transport *x = NULL;
    int rc = tsel_get(t, tsel_pick(t, req), &x);
    if (rc != WH_OK) return rc;
    /* pieces only where body_pieces said so (the engine asks before each
     * attempt) */
    if (req->n_pieces && !(x->version >= 3 && x->body_pieces && x->body_pieces(x->user, req)))
        return WH_E_INVAL;
    return x->submit(x->user, req);
}

/* Pieces only for a part that takes them (the lean transport); libcurl
 * gets the body contiguous, as the engine builds it for a 0 here. */
static int tsel_body_pieces(void *user, const wh_request *req)
{
    tsel *t = user;
    if (!t || !req || !req->url) return 0;
    wh_transport *x = NULL;
    if (tsel_get(t, tsel_pick(t, req), &x) != WH_OK) return 0;
    return x->version >= 3 && x->body_pieces ? x->body_pieces(x->user, req) : 0;
}

static int busy(const wh_transport *x) { return x && x->timeout_ms(x->user) >= 0; }

static void tsel_free(tsel *t)
{
    if (t->lean) t->lean->destroy(t->lean->user);
    if (t->curl) t->curl->destroy(t->curl->user);
    free(t->allow);
    free(t->proxy);
    free(t);
}

static int tsel_perform(void *user, int wait_ms, wh_transport_done_fn done, void *done_user)
{
    tsel *t = user;
    if (!t) return WH_E_INVAL;
    if (t->in_perform) return WH_E_RECURSIVE;
    t->in_perform = 1;
    int bl = busy(t->lean), bc = busy(t->curl), running = 0;
    if (bl && bc) {
        int rl = t->lean->perform(t->lean->user, wait_ms > 1 ? 1 : wait_ms, done, done_user);
        if (!t->destroy_pending) {
            int rc = t->curl->perform(t->curl->user, 0, done, done_user);
            running = (rl > 0 ? rl : 0) + (rc > 0 ? rc : 0);
        }
    } else if (bl || (!bc && t->lean)) {
        running = t->lean->perform(t->lean->user, wait_ms, done, done_user);
    } else if (t->curl) {
        running = t->curl->perform(t->curl->user, wait_ms, done, done_user);
    }
    t->in_perform = 0;
    if (t->destroy_pending) {
        tsel_free(t);
        return 0;
    }
    return running < 0 ? 0 : running;
}

static int64_t tsel_timeout_ms(void *user)
{
    tsel *t = user;
    if (!t) return -1;
    int64_t a = t->lean ? t->lean->timeout_ms(t->lean->user) : -1;
    int64_t b = t->curl ? t->curl->timeout_ms(t->curl->user) : -1;
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

static void tsel_cancel(void *user, void *token)
{
    tsel *t = user;
    if (!t) return;
    if (t->lean) t->lean->cancel(t->lean->user, token);
    if (t->curl) t->curl->cancel(t->curl->user, token);
}

static void tsel_destroy(void *user)
{
    tsel *t = user;
    if (!t) return;
    if (t->in_perform) {
        t->destroy_pending = 1;
        return;
    }
    tsel_free(t);
}

#ifdef WH_LOOP_VERSION
static int64_t mono_ms(void) { return wh__mono_ns() / 1000000; }

/* The engine's one timer: the nearer of the parts' timers. */
static void tsel_rearm(tsel *t)
{
    if (!t->loop_on) return;
    int64_t due = t->part[0].due < t->part[1].due ? t->part[0].due : t->part[1].due;
    if (due == t->armed) return;
    t->armed = due;
    int64_t ms = due == INT64_MAX ? -1 : due - mono_ms();
    t->loop.timer(t->loop.user, due == INT64_MAX ? -1 : ms < 0 ? 0 : ms);
}

static int part_watch(void *user, int fd, int events, void **sock)
{
    struct tsel_part *pt = user;
    return pt->t->loop.watch(pt->t->loop.user, fd, events, sock);
}

static int part_timer(void *user, int64_t ms)
{
    struct tsel_part *pt = user;
    pt->due = ms < 0 ? INT64_MAX : mono_ms() + ms;
    tsel_rearm(pt->t);
    return 0;
}

static int tsel_set_loop(void *user, const wh_loop *loop)
{
    tsel *t = user;
    if (!t) return WH_E_INVAL;
    wh_transport *parts[2] = {t->lean, t->curl};
    if (t->loop_on) {
        for (int i = 0; i < 2; i++)
            if (parts[i]) parts[i]->set_loop(parts[i]->user, NULL);
        if (t->armed != INT64_MAX) t->loop.timer(t->loop.user, -1);
        t->loop_on = 0;
    }
    if (!loop) return WH_OK;
    t->loop = *loop;
    t->armed = INT64_MAX;
    for (int i = 0; i < 2; i++) {
        t->part[i].t = t;
        t->part[i].due = INT64_MAX;
        t->part[i].hooks.version = loop->version;
        t->part[i].hooks.user = &t->part[i];
        t->part[i].hooks.watch = part_watch;
        t->part[i].hooks.timer = part_timer;
    }
    t->loop_on = 1;
    for (int i = 0; i < 2; i++) {
        if (!parts[i]) continue;
        int rc = parts[i]->version >= 2 && parts[i]->set_loop
                     ? parts[i]->set_loop(parts[i]->user, &t->part[i].hooks)
                     : WH_E_VERSION;
        if (rc != WH_OK) {
            tsel_set_loop(t, NULL);
            return rc;
        }
    }
    tsel_rearm(t);
    return WH_OK;
}

/* An fd of one part (the lean transport watches only its epoll fd; every
 * other fd is libcurl's), or the timer: the parts whose timer is due. */
static int tsel_socket_action(void *user, int fd, int events, wh_transport_done_fn done,
                              void *done_user)
{
    tsel *t = user;
    if (!t) return WH_E_INVAL;
    if (t->in_perform) return WH_E_RECURSIVE;
    t->in_perform = 1;
    int running = 0;
    if (fd == WH_SOCKET_TIMEOUT) {
        t->armed = INT64_MAX;
        int64_t now = mono_ms();
        wh_transport *parts[2] = {t->lean, t->curl};
        for (int i = 0; i < 2 && !t->destroy_pending; i++) {
            if (!parts[i] || t->part[i].due > now) continue;
            t->part[i].due = INT64_MAX;
            int rc = parts[i]->socket_action(parts[i]->user, WH_SOCKET_TIMEOUT, 0, done,
                                             done_user);
            if (rc > 0) running += rc;
        }
    } else {
        wh_transport *x = t->lean && fd == wh__lean_fd(t->lean) ? t->lean : t->curl;
        if (x) running = x->socket_action(x->user, fd, events, done, done_user);
    }
    t->in_perform = 0;
    if (t->destroy_pending) {
        tsel_free(t);
        return 0;
    }
    tsel_rearm(t);
    return running < 0 ? 0 : running;
}

static void tsel_wakeup(void *user)
{
    tsel *t = user;
    if (!t) return;
    if (t->lean && t->lean->wakeup) t->lean->wakeup(t->lean->user);
    if (t->curl && t->curl->version >= 2 && t->curl->wakeup) t->curl->wakeup(t->curl->user);
}
#endif

static int tsel_is(const wh_transport *t) { return t && t->submit == tsel_submit; }

/* Network settings for the engine's own transport (wh_config_load's
 * document keys): kept for the parts made later, applied to those made. */
static int tsel_set_guard(wh_transport *x, int on, const wh__cidr *allow, size_t n_allow,
                          int set_allow)
{
    tsel *t = x->user;
    if (set_allow && wh__cidr_list_set(&t->allow, &t->n_allow, allow, n_allow) != WH_OK)
        return WH_E_NOMEM;
    if (on != -1) t->guard = on != 0;
    int rc = WH_OK;
    if (t->lean) rc = wh__lean_set_guard(t->lean, on, allow, n_allow, set_allow);
    if (rc == WH_OK && t->curl) rc = wh__curl_set_guard(t->curl, on, allow, n_allow, set_allow);
    return rc;
}

static int tsel_set_proxy(wh_transport *x, const char *proxy)
{
    tsel *t = x->user;
#ifndef WH_HAVE_CURL
    (void)t, (void)proxy;
    return WH_E_UNSUPPORTED; /* the lean transport has no proxy support */
#else
    char *copy = NULL;
    if (proxy && *proxy && !(copy = wh__strdup(proxy))) return WH_E_NOMEM;
    free(t->proxy);
    t->proxy = copy;
    return t->curl ? wh__curl_set_proxy(t->curl, proxy) : WH_OK;
#endif
}

int wh__default_transport_new(const wh_engine_options *o, wh_transport **out)
{
    *out = NULL;
    int kind = o ? (int)o->transport_kind : WH_TRANSPORT_DEFAULT;
#ifndef WH_HAVE_CURL
    /* no libcurl: an engine of the default kind has no transport (the
     * host must hand one in, or ask for lean) */
    if (kind == WH_TRANSPORT_DEFAULT || kind == WH_TRANSPORT_CURL) return WH_E_UNSUPPORTED;
#endif
    if (kind == WH_TRANSPORT_DEFAULT) kind = WH_TRANSPORT_CURL;
    tsel *t = wh__calloc(1, sizeof *t);
    if (!t) return WH_E_NOMEM;
    t->kind = kind;
    int rc = WH_OK;
    if (o) {
        char buf[300];
        rc = allow_parse(o->ssrf_allow, o->n_ssrf_allow, "engine", &t->allow, buf, sizeof buf);
        if (rc != WH_OK) {
            wh__logf(o->on_log, o->log_user, WH_LOG_ERROR, "wh_engine_new: %s", buf);
            free(t);
            return rc;
        }
        t->n_allow = o->n_ssrf_allow;
        t->guard = o->ssrf_guard != 0;
        if (o->proxy && *o->proxy && !(t->proxy = wh__strdup(o->proxy))) rc = WH_E_NOMEM;
#ifndef WH_HAVE_CURL
        if (rc == WH_OK && t->proxy) rc = WH_E_UNSUPPORTED;
#endif
    }
    wh_transport *x = NULL;
    if (rc == WH_OK)
        rc = tsel_get(t, kind == WH_TRANSPORT_CURL || t->proxy ? WH_TRANSPORT_CURL
                                                               : WH_TRANSPORT_LEAN, &x);
    if (rc != WH_OK) {
        tsel_free(t);
        return rc;
    }
    t->vt.version = WH_TRANSPORT_VERSION;
    t->vt.user = t;
    t->vt.submit = tsel_submit;
    t->vt.perform = tsel_perform;
    t->vt.timeout_ms = tsel_timeout_ms;
    t->vt.cancel = tsel_cancel;
    t->vt.destroy = tsel_destroy;
    t->vt.body_pieces = tsel_body_pieces;
#ifdef WH_LOOP_VERSION
    t->vt.set_loop = tsel_set_loop;
    t->vt.socket_action = tsel_socket_action;
    t->vt.wakeup = tsel_wakeup;
#endif
    *out = &t->vt;
    return WH_OK;
}

int wh__default_queue_new(size_t max_events, size_t max_bytes, wh_queue **out)
{
    return wh__queue_memory_new(max_events ? max_events : 1000000,
                                max_bytes ? max_bytes : ((size_t)1 << 30), out);
}

/* ---- engine ---------------------------------------------------------------- */
static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s) return 1;
    *out = wh__strdup(s);
    return *out != NULL;
}

int wh__net_engine_init(wh_engine *e, const wh_engine_options *o)
{
    char buf[300];
    if (o->transport &&
        (o->ssrf_guard || o->n_ssrf_allow || (o->proxy && *o->proxy)) &&
        !wh__curl_is(o->transport)) {
        wh__logf(o->on_log, o->log_user, WH_LOG_ERROR,
                 "wh_engine_new: ssrf_guard, ssrf_allow and proxy apply to the default "
                 "libcurl transport; set them in your transport's options");
        return WH_E_INVAL;
    }
    int rc = wh__net_tls_check(o->ca_file, o->ca_path, o->client_cert_file, o->client_key_file,
                              o->tls_min_version, o->pinned_public_key, "engine", buf,
                              sizeof buf);
    if (rc != WH_OK) {
        wh__logf(o->on_log, o->log_user, WH_LOG_ERROR, "wh_engine_new: %s", buf);
        return rc;
    }
    struct wh__net *n = wh__calloc(1, sizeof *n);
    if (!n) return WH_E_NOMEM;
    e->net = n;
    n->https_only = o->https_only != 0;
    n->insecure = o->insecure_skip_verify_DANGEROUS != 0;
    (void)parse_min_version(o->tls_min_version, &n->min_version);
    if (!dup_opt(o->ca_file, &n->ca_file) || !dup_opt(o->ca_path, &n->ca_path) ||
        !dup_opt(o->client_cert_file, &n->cert) || !dup_opt(o->client_key_file, &n->key) ||
        !dup_opt(o->pinned_public_key, &n->pin))
        return WH_E_NOMEM; /* wh_engine_free releases e->net */
    if (o->transport && (o->ssrf_guard || o->n_ssrf_allow || (o->proxy && *o->proxy)) &&
        wh__curl_is(o->transport)) {
        /* a libcurl transport the host made: apply the engine's settings */
        wh__cidr *a = NULL;
        rc = allow_parse(o->ssrf_allow, o->n_ssrf_allow, "engine", &a, buf, sizeof buf);
        if (rc == WH_OK)
            rc = wh__curl_set_guard(o->transport, o->ssrf_guard, a, o->n_ssrf_allow, 1);
        free(a);
        if (rc == WH_OK && o->proxy && *o->proxy) rc = wh__curl_set_proxy(o->transport, o->proxy);
        if (rc != WH_OK) {
            wh__logf(o->on_log, o->log_user, WH_LOG_ERROR, "wh_engine_new: %s",
                     rc == WH_E_NOMEM ? "out of memory" : buf);
            return rc;
        }
    }
    return WH_OK;
}

void wh__net_engine_free(wh_engine *e)
{
    struct wh__net *n = e ? e->net : NULL;
    if (!n) return;
    free(n->ca_file);
    free(n->ca_path);
    free(n->cert);
    free(n->key);
    free(n->pin);
    free(n);
    e->net = NULL;
}

/* ---- endpoints --------------------------------------------------------------- */
int wh__net_ep_check(wh_engine *e, const wh_endpoint_options *o, const char *where)
{
    char buf[300];
    const struct wh__net *n = e->net;
    if (n && n->https_only && o->url && strncasecmp(o->url, "https://", 8) != 0)
        return wh__fail(e, WH_E_URL, "%s.url: only https:// URLs are accepted (https_only)",
                        where);
    /* the endpoint's own fields, then the merge with the engine's */
    int rc = wh__net_tls_check(o->ca_file, o->ca_path, o->client_cert_file,
                              o->client_key_file, o->tls_min_version, o->pinned_public_key,
                              where, buf, sizeof buf);
    if (rc != WH_OK) return wh__fail(e, rc, "%s", buf);
    if (o->client_key_file && !o->client_cert_file && !(n && n->cert))
        return wh__fail(e, WH_E_INVAL, "%s.client_key_file: requires client_cert_file", where);
    return WH_OK;
}

int wh__net_ep_new(const wh_engine *e, const wh_endpoint_options *o, struct wh__ep_net **out)
{
    *out = NULL;
    const struct wh__net *n = e->net;
    static const struct wh__net none;
    if (!n) n = &none;
    int min = 0;
    (void)parse_min_version(o->tls_min_version, &min);
    const char *ca_file = o->ca_file ? o->ca_file : n->ca_file;
    const char *ca_path = o->ca_path ? o->ca_path : n->ca_path;
    /* a client key goes with its own certificate */
    const char *cert = o->client_cert_file ? o->client_cert_file : n->cert;
    const char *key = o->client_cert_file ? o->client_key_file : n->key;
    const char *pin = o->pinned_public_key ? o->pinned_public_key : n->pin;
    if (!min) min = n->min_version;
    int insecure = o->insecure_skip_verify_DANGEROUS || n->insecure;
    if (!ca_file && !ca_path && !cert && !key && !pin && !min && !insecure) return WH_OK;
    struct wh__ep_net *p = wh__calloc(1, sizeof *p);
    if (!p) return WH_E_NOMEM;
    if (!dup_opt(ca_file, &p->ca_file) || !dup_opt(ca_path, &p->ca_path) ||
        !dup_opt(cert, &p->cert) || !dup_opt(key, &p->key) || !dup_opt(pin, &p->pin)) {
        wh__net_ep_free(p);
        return WH_E_NOMEM;
    }
    p->tls.ca_file = p->ca_file;
    p->tls.ca_path = p->ca_path;
    p->tls.client_cert_file = p->cert;
    p->tls.client_key_file = p->key;
    p->tls.pinned_public_key = p->pin;
    p->tls.min_version = min;
    p->tls.insecure_skip_verify_DANGEROUS = insecure;
    *out = p;
    return WH_OK;
}

void wh__net_ep_free(struct wh__ep_net *p)
{
    if (!p) return;
    free(p->ca_file);
    free(p->ca_path);
    free(p->cert);
    free(p->key);
    free(p->pin);
    free(p);
}

const wh_tls *wh__net_ep_tls(const struct wh__ep_net *p)
{
    return p ? &p->tls : NULL;
}

/* ---- document-level keys (wh_config_load) ----------------------------------- */
int wh__net_set_guard(wh_engine *e, int ssrf_guard, const char *const *allow,
                      size_t n_allow, int set_allow, const char *where)
{
    char buf[300];
    if (!where) where = "document";
    if (!wh__curl_is(e->transport) && !tsel_is(e->transport))
        return wh__fail(e, WH_E_CONFIG, "%s.ssrf_guard: applies to the engine's own "
                        "transport (or a libcurl one) only", where);
    wh__cidr *a = NULL;
    int rc = set_allow ? allow_parse(allow, n_allow, where, &a, buf, sizeof buf) : WH_OK;
    if (rc == WH_E_NOMEM) return wh__fail(e, rc, "out of memory");
    if (rc != WH_OK) return wh__fail(e, WH_E_CONFIG, "%s", buf);
    rc = tsel_is(e->transport) ? tsel_set_guard(e->transport, ssrf_guard, a, n_allow, set_allow)
                               : wh__curl_set_guard(e->transport, ssrf_guard, a, n_allow, set_allow);
    free(a);
    return rc == WH_OK ? WH_OK : wh__fail(e, rc, "%s.ssrf_guard: %s", where, wh_strerror(rc));
}

int wh__net_set_proxy(wh_engine *e, const char *proxy, const char *where)
{
    if (!where) where = "document";
    if (!wh__curl_is(e->transport) && !tsel_is(e->transport))
        return wh__fail(e, WH_E_CONFIG, "%s.proxy: applies to the engine's own transport "
                        "(or a libcurl one) only", where);
    int rc = tsel_is(e->transport) ? tsel_set_proxy(e->transport, proxy)
                                   : wh__curl_set_proxy(e->transport, proxy);
    return rc == WH_OK ? WH_OK : wh__fail(e, rc, "%s.proxy: %s", where, wh_strerror(rc));
}

int wh__net_set_https_only(wh_engine *e, int on)
{
    if (!e->net) {
        e->net = wh__calloc(1, sizeof *e->net);
        if (!e->net) return WH_E_NOMEM;
    }
    e->net->https_only = on != 0;
    return WH_OK;
}

int wh__net_has_curl(const wh_engine *e)
{
    return e && (wh__curl_is(e->transport) || tsel_is(e->transport));
}

/* ---- stand-ins for backends not built ------------------------------------- */
/* The options initialisers still fill struct_size (so a caller's code stays
 * the same); the constructors set *out to NULL and return WH_E_UNSUPPORTED. */
#define WH__STUB_INIT(o, size)                                                 \
    do {                                                                       \
        if (!(o) || (size) < sizeof(size_t)) return;                           \
        memset((o), 0, (size));                                                \
        (o)->struct_size = (size);                                             \
    } while (0)

#ifndef WH_HAVE_CURL
void wh_curl_options_init_sized(wh_curl_options *o, size_t size)
{
    WH__STUB_INIT(o, size);
}

int wh_transport_curl_new(const wh_curl_options *opts, wh_transport **out)
{
    (void)opts;
    if (out) *out = NULL;
    return WH_E_UNSUPPORTED;
}

/* the network settings have no libcurl transport to go to */
int wh__curl_is(const wh_transport *t)
{
    (void)t;
    return 0;
}

int wh__curl_set_guard(wh_transport *t, int on, const wh__cidr *allow, size_t n_allow,
                       int set_allow)
{
    (void)t, (void)on, (void)allow, (void)n_allow, (void)set_allow;
    return WH_E_UNSUPPORTED;
}

int wh__curl_set_proxy(wh_transport *t, const char *proxy)
{
    (void)t, (void)proxy;
    return WH_E_UNSUPPORTED;
}
#endif

#ifndef WH_HAVE_SQLITE
void wh_sqlite_options_init_sized(wh_sqlite_options *o, size_t size)
{
    WH__STUB_INIT(o, size);
}

int wh_queue_sqlite_new(const char *path, const wh_sqlite_options *opts,
                        wh_queue **out)
{
    (void)path;
    (void)opts;
    if (out) *out = NULL;
    return WH_E_UNSUPPORTED;
}

/* no SQLite queue: never one that remembers ids (the engine's memory does) */
int wh__queue_sqlite_remember(wh_queue *vq, const char *id, int64_t wall_ms,
                              int64_t window_ms)
{
    (void)vq, (void)id, (void)wall_ms, (void)window_ms;
    return WH_E_INVAL;
}
#endif

#ifndef WH_HAVE_REDIS
void wh_redis_options_init_sized(wh_redis_options *o, size_t size)
{
    WH__STUB_INIT(o, size);
}

int wh_queue_redis_new(const wh_redis_options *opts, wh_queue **out)
{
    (void)opts;
    if (out) *out = NULL;
    return WH_E_UNSUPPORTED;
}
#endif
