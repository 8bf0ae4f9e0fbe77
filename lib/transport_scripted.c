/* The scripted transport: answers from rules on a (usually manual) clock,
 * and records every request.  For exact timing and fault-injection tests.
 *
 * Loop mode (vtable version 2): a fake socket, an eventfd, stands for the
 * network.  While requests run it is watched for WH_POLL_IN; when a
 * completion is due on the clock it is signalled (readable), and the
 * transport's timer is armed for the next completion still ahead, so a
 * loop adapter on the manual clock sees exactly the hooks a real socket
 * would cause, at exact times. */
#include "ds.h"
#include "internal.h"
#include <webhook/test.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* libwebhook-test.a uses only the public API of libwebhook (so it links
 * with libwebhook.so, whose wh__ internals are hidden): its own allocator. */
static void *td_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

static char *td_strndup(const char *s, size_t n)
{
    if (!s) return NULL;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* `p` (of *cap elements of `size` bytes) grown to hold at least `need`:
 * the new pointer, or NULL (p untouched) when out of memory. */
static void *td_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return p;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size) return NULL;
        n *= 2;
    }
    void *q = realloc(p, n * size);
    if (q) *cap = n;
    return q;
}

static char *td_strdup(const char *s)
{
    return s ? td_strndup(s, strlen(s)) : NULL;
}

typedef struct rule {
    char *url;          /* NULL: any */
    int status, error;
    int64_t delay_ms;   /* -1: hang */
    char *retry_after;
    unsigned left;      /* 0: unlimited */
    int unlimited;
} rule;

typedef struct rec {
    wh_scripted_request pub;
    char *url;
    char *body;
    char **headers;
    size_t n_headers;
} rec;

typedef struct running {
    void *token;
    size_t rec;         /* index into recs */
    int64_t done_at;
    int status, error;
    const char *retry_after;
} running;

typedef struct scripted {
    wh_transport vt;
    wh_clock clock;
    wh_manual_clock *manual;
    rule *rules;
    size_t n_rules;
    rec *recs;
    size_t n_recs, cap_recs;
    running *run;
    size_t n_run, cap_run;
    /* loop mode */
    int loop_on;
    wh_loop loop;
    int efd;              /* the fake socket; -1 until set_loop */
    void *slot;           /* the loop's slot for efd */
    int watched;          /* efd is watched */
    int signalled;        /* efd is readable */
    int64_t timer_at;     /* armed for (absolute), INT64_MAX: not armed */
} scripted;

static int64_t earliest(const scripted *s);

/* Loop mode: after every change, make the hooks say what a socket would:
 * watched while requests run, readable when one is due, the timer at the
 * next completion ahead. */
static void loop_update(scripted *s)
{
    if (!s->loop_on) return;
    int64_t now = s->clock.now_ms(s->clock.user);
    if (s->n_run && !s->watched) {
        s->loop.watch(s->loop.user, s->efd, WH_POLL_IN, &s->slot);
        s->watched = 1;
    } else if (!s->n_run && s->watched) {
        s->loop.watch(s->loop.user, s->efd, 0, &s->slot);
        s->watched = 0;
    }
    int64_t next = earliest(s);
    if (next <= now && !s->signalled) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w;
        s->signalled = 1;
    }
    int64_t want = next > now ? next : INT64_MAX;
    if (want != s->timer_at) {
        s->timer_at = want;
        s->loop.timer(s->loop.user, want == INT64_MAX ? -1 : want - now);
    }
}

static int sc_submit(void *user, const wh_request *req)
{
    scripted *s = user;
    rec *recs = td_grow(s->recs, &s->cap_recs, s->n_recs + 1, sizeof *s->recs);
    if (!recs) return WH_E_NOMEM;
    s->recs = recs;
    running *run = td_grow(s->run, &s->cap_run, s->n_run + 1, sizeof *s->run);
    if (!run) return WH_E_NOMEM;
    s->run = run;
    rec *r = &s->recs[s->n_recs];
    memset(r, 0, sizeof *r);
    r->url = td_strdup(req->url);
    r->body = td_strndup(req->body ? req->body : "", req->body_len);
    r->headers = td_calloc(req->n_headers ? req->n_headers : 1, sizeof *r->headers);
    if (!r->url || !r->body || !r->headers) goto oom;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!(r->headers[i] = td_strdup(req->headers[i]))) goto oom;
        r->n_headers++;
    }
    int64_t now = s->clock.now_ms(s->clock.user);
    r->pub.submitted_ms = now;
    r->pub.completed_ms = -1;
    r->pub.url = r->url;
    r->pub.body = r->body;
    r->pub.body_len = req->body_len;

    /* find the rule */
    int status = 200, error = WH_OK;
    int64_t delay = 0;
    const char *ra = NULL;
    for (size_t i = 0; i < s->n_rules; i++) {
        rule *ru = &s->rules[i];
        if (!ru->unlimited && ru->left == 0) continue;
        if (ru->url && strcmp(ru->url, req->url) != 0) continue;
        if (!ru->unlimited) ru->left--;
        status = ru->status;
        error = ru->error;
        delay = ru->delay_ms;
        ra = ru->retry_after;
        break;
    }
    if (delay < 0 || delay > (int64_t)req->timeout_ms) {
        delay = req->timeout_ms;
        status = 0;
        error = WH_E_TIMEOUT;
    }
    running *ru = &s->run[s->n_run++];
    ru->token = req->token;
    ru->rec = s->n_recs++;
    ru->done_at = now + delay;
    ru->status = error == WH_OK ? status : 0;
    ru->error = error;
    ru->retry_after = ra;
    loop_update(s);
    return WH_OK;
oom:
    for (size_t i = 0; i < r->n_headers; i++) free(r->headers[i]);
    free(r->headers);
    free(r->url);
    free(r->body);
    return WH_E_NOMEM;
}

static int64_t earliest(const scripted *s)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; i < s->n_run; i++)
        if (s->run[i].done_at < t) t = s->run[i].done_at;
    return t;
}

static int sc_perform(void *user, int wait_ms, wh_transport_done_fn done, void *done_user)
{
    scripted *s = user;
    int64_t now = s->clock.now_ms(s->clock.user);
    int64_t next = earliest(s);
    if (next > now && wait_ms > 0 && s->manual) {
        /* simulated time: jump to the next completion, at most wait_ms */
        int64_t to = next - now < wait_ms ? next : now + wait_ms;
        wh_manual_clock_set(s->manual, to);
        now = to;
    }
    /* complete everything due, in completion-time order (stable by submit) */
    for (;;) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < s->n_run; i++)
            if (s->run[i].done_at <= now &&
                (best == SIZE_MAX || s->run[i].done_at < s->run[best].done_at))
                best = i;
        if (best == SIZE_MAX) break;
        running r = s->run[best];
        memmove(&s->run[best], &s->run[best + 1], (s->n_run - best - 1) * sizeof r);
        s->n_run--;
        rec *rc = &s->recs[r.rec];
        rc->pub.completed_ms = now;
        rc->pub.status = r.status;
        rc->pub.error = r.error;
        wh_response res = {r.status, r.error,
                           r.error == WH_OK ? NULL : wh_strerror(r.error),
                           r.retry_after, "", 0, NULL};
        done(done_user, r.token, &res);
    }
    loop_update(s);
    return (int)s->n_run;
}

static int sc_set_loop(void *user, const wh_loop *loop)
{
    scripted *s = user;
    if (!loop) {
        if (!s->loop_on) return WH_OK;
        if (s->watched) s->loop.watch(s->loop.user, s->efd, 0, &s->slot);
        if (s->timer_at != INT64_MAX) s->loop.timer(s->loop.user, -1);
        s->watched = 0;
        s->timer_at = INT64_MAX;
        s->loop_on = 0;
        return WH_OK;
    }
    if (s->n_run) return WH_E_INVAL;
    if (s->efd < 0) {
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->efd < 0) return WH_E_IO;
    }
    s->loop = *loop;
    s->loop_on = 1;
    s->slot = NULL;
    s->watched = 0;
    s->timer_at = INT64_MAX;
    return WH_OK;
}

static int sc_socket_action(void *user, int fd, int events, wh_transport_done_fn done,
                            void *done_user)
{
    scripted *s = user;
    if (fd == WH_SOCKET_TIMEOUT) {
        s->timer_at = INT64_MAX; /* it fired */
    } else if (fd == s->efd) {
        uint64_t v;
        ssize_t r = read(s->efd, &v, sizeof v);
        (void)r;
        s->signalled = 0;
    }
    /* complete what is due now; never advances the clock */
    return sc_perform(user, 0, done, done_user);
}

static int64_t sc_timeout(void *user)
{
    scripted *s = user;
    if (!s->n_run) return -1;
    int64_t t = earliest(s) - s->clock.now_ms(s->clock.user);
    return t < 0 ? 0 : t;
}

static void sc_cancel(void *user, void *token)
{
    scripted *s = user;
    for (size_t i = 0; i < s->n_run; i++)
        if (s->run[i].token == token) {
            s->recs[s->run[i].rec].pub.error = WH_E_CANCELLED;
            memmove(&s->run[i], &s->run[i + 1], (s->n_run - i - 1) * sizeof *s->run);
            s->n_run--;
            loop_update(s);
            return;
        }
}

static void sc_destroy(void *user)
{
    scripted *s = user;
    for (size_t i = 0; i < s->n_rules; i++) {
        free(s->rules[i].url);
        free(s->rules[i].retry_after);
    }
    free(s->rules);
    for (size_t i = 0; i < s->n_recs; i++) {
        for (size_t h = 0; h < s->recs[i].n_headers; h++) free(s->recs[i].headers[h]);
        free(s->recs[i].headers);
        free(s->recs[i].url);
        free(s->recs[i].body);
    }
    free(s->recs);
    free(s->run);
    if (s->efd >= 0) close(s->efd);
    free(s);
}

int wh_transport_scripted_new(const wh_clock *clock, wh_manual_clock *manual,
                              wh_transport **out)
{
    if (!out) return WH_E_INVAL;
    if (!clock && manual) clock = wh_manual_clock_vtable(manual);
    if (!clock) clock = wh_clock_system();
    scripted *s = td_calloc(1, sizeof *s);
    if (!s) return WH_E_NOMEM;
    s->clock = *clock;
    s->manual = manual;
    s->vt.version = WH_TRANSPORT_VERSION;
    s->vt.user = s;
    s->vt.submit = sc_submit;
    s->vt.perform = sc_perform;
    s->vt.timeout_ms = sc_timeout;
    s->vt.cancel = sc_cancel;
    s->vt.destroy = sc_destroy;
    s->vt.set_loop = sc_set_loop;
    s->vt.socket_action = sc_socket_action;
    s->vt.wakeup = NULL;
    s->efd = -1;
    s->timer_at = INT64_MAX;
    *out = &s->vt;
    return WH_OK;
}

static scripted *as_scripted(const wh_transport *t)
{
    return t && t->destroy == sc_destroy ? (scripted *)t->user : NULL;
}

int wh_scripted_rule(wh_transport *t, const char *url, int status, int error,
                     int64_t delay_ms, const char *retry_after, unsigned count)
{
    scripted *s = as_scripted(t);
    if (!s) return WH_E_INVAL;
    rule *r = realloc(s->rules, (s->n_rules + 1) * sizeof *r);
    if (!r) return WH_E_NOMEM;
    s->rules = r;
    rule *ru = &s->rules[s->n_rules];
    memset(ru, 0, sizeof *ru);
    ru->url = td_strdup(url);
    ru->retry_after = td_strdup(retry_after);
    if ((url && !ru->url) || (retry_after && !ru->retry_after)) {
        free(ru->url);
        free(ru->retry_after);
        return WH_E_NOMEM;
    }
    ru->status = status;
    ru->error = error;
    ru->delay_ms = delay_ms;
    ru->left = count;
    ru->unlimited = count == 0;
    s->n_rules++;
    return WH_OK;
}

size_t wh_scripted_count(const wh_transport *t)
{
    scripted *s = as_scripted(t);
    return s ? s->n_recs : 0;
}

int wh_scripted_get(const wh_transport *t, size_t i, wh_scripted_request *out)
{
    scripted *s = as_scripted(t);
    if (!s || !out || i >= s->n_recs) return WH_E_NOT_FOUND;
    *out = s->recs[i].pub;
    return WH_OK;
}

const char *wh_scripted_header(const wh_transport *t, size_t i, const char *name)
{
    scripted *s = as_scripted(t);
    if (!s || !name || i >= s->n_recs) return NULL;
    size_t n = strlen(name);
    const rec *r = &s->recs[i];
    for (size_t h = 0; h < r->n_headers; h++) {
        const char *line = r->headers[h];
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            return v;
        }
    }
    return NULL;
}
