/* An in-process HTTP receiver for tests, on libmicrohttpd (see
 * http_receiver.h).  One thread per connection, so a delayed or hanging
 * request never holds up the others; every record is behind one mutex.
 *
 * Answers: a failure answer (fail_first, or any non-2xx `status`) carries
 * Retry-After when opts.retry_after is set; a 3xx carries
 * "Location: /redirected"; every answer has a short text body
 * "th_recv answered <status>\n". */
#include "http_receiver.h"
#include "harness.h"
#include <webhook/webhook.h>
#include <webhook/verify.h>

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

typedef struct id_count {
    char *id;
    int n;
} id_count;

struct th_recv {
    struct MHD_Daemon *d;
    th_recv_opts opts;
    char *retry_after;           /* copies of the option strings */
    char *secret;
    int port;
    char url[64];
    atomic_int stopping;
    atomic_int rt_status, rt_hang, rt_delay; /* th_recv_set */
    pthread_mutex_t mu;
    th_recv_req *reqs;           /* mu */
    size_t n, cap;
    int active, max_active;      /* mu */
    id_count *ids;               /* mu */
    size_t n_ids, cap_ids;
};

typedef struct hdr_acc {
    char *buf;
    size_t len, cap;
} hdr_acc;

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *value)
{
    hdr_acc *a = cls;
    size_t need = strlen(key) + 2 + (value ? strlen(value) : 0) + 1;
    if (a->len + need + 1 > a->cap) return MHD_NO; /* keep whole lines only */
    a->len += (size_t)snprintf(a->buf + a->len, a->cap - a->len, "%s: %s\n", key,
                               value ? value : "");
    return MHD_YES;
}

int th_recv_header(const th_recv_req *q, const char *name, char *out,
                   size_t size)
{
    size_t nl = strlen(name);
    const char *p = q->headers;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol) break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 &&
            p[nl] == ':' && p[nl + 1] == ' ') {
            size_t vl = (size_t)(eol - p) - nl - 2;
            if (size) {
                if (vl >= size) vl = size - 1;
                memcpy(out, p + nl + 2, vl);
                out[vl] = '\0';
            }
            return 1;
        }
        p = eol + 1;
    }
    if (size) out[0] = '\0';
    return 0;
}

void th_recv_set(th_recv *r, int status, int hang, int delay_ms)
{
    atomic_store(&r->rt_status, status > 0 ? status : 200);
    atomic_store(&r->rt_hang, hang);
    atomic_store(&r->rt_delay, delay_ms);
}

/* Per-request state (MHD's con_cls). */
typedef struct conn_req {
    char *body;
    size_t len, cap;
    int active;                  /* counted in th_recv.active */
    int64_t at_ms;
} conn_req;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sleep up to ms, in small steps, returning early when stop is requested. */
static void sleep_unless_stopping(th_recv *r, int ms)
{
    int64_t end = th_now_ms() + ms;
    while (!atomic_load(&r->stopping)) {
        int64_t left = end - th_now_ms();
        if (left <= 0) break;
        sleep_ms(left < 10 ? (int)left : 10);
    }
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static void leave_handler(th_recv *r, conn_req *cr)
{
    if (!cr->active) return;
    cr->active = 0;
    pthread_mutex_lock(&r->mu);
    r->active--;
    pthread_mutex_unlock(&r->mu);
}

/* Attempt number (from 1) of webhook-id `id` ("" when absent); mu held. */
static int count_attempt(th_recv *r, const char *id)
{
    for (size_t i = 0; i < r->n_ids; i++)
        if (strcmp(r->ids[i].id, id) == 0) return ++r->ids[i].n;
    if (r->n_ids == r->cap_ids) {
        size_t nc = r->cap_ids ? r->cap_ids * 2 : 16;
        id_count *p = realloc(r->ids, nc * sizeof *p);
        if (!p) return 1;
        r->ids = p;
        r->cap_ids = nc;
    }
    char *copy = strdup(id);
    if (!copy) return 1;
    r->ids[r->n_ids].id = copy;
    r->ids[r->n_ids].n = 1;
    r->n_ids++;
    return 1;
}

static int verify(th_recv *r, const char *id, const char *ts, const char *sig,
                  const char *body, size_t len)
{
    if (!r->secret) return -1;
    if (!id || !ts || !sig) return 0;
    const char *secrets[1] = {r->secret};
    return wh_verify_standard(secrets, 1, id, ts, body, len, sig,
                              (int64_t)time(NULL), 300) == WH_OK;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    th_recv *r = cls;
    conn_req *cr = *con_cls;

    if (!cr) { /* headers arrived */
        cr = calloc(1, sizeof *cr);
        if (!cr) return MHD_NO;
        cr->at_ms = th_now_ms();
        cr->active = 1;
        *con_cls = cr;
        pthread_mutex_lock(&r->mu);
        if (++r->active > r->max_active) r->max_active = r->active;
        pthread_mutex_unlock(&r->mu);
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        size_t n = *upload_size;
        if (n > SIZE_MAX / 2 - cr->len) return MHD_NO;
        if (cr->len + n + 1 > cr->cap) {
            size_t nc = cr->cap ? cr->cap : 1024;
            while (nc < cr->len + n + 1) nc *= 2;
            char *p = realloc(cr->body, nc);
            if (!p) return MHD_NO;
            cr->body = p;
            cr->cap = nc;
        }
        memcpy(cr->body + cr->len, upload, n);
        cr->len += n;
        cr->body[cr->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }

    /* The whole request is here: record it. */
    if (!cr->body && !(cr->body = calloc(1, 1))) return MHD_NO;
    const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 "webhook-id");
    const char *ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 "webhook-timestamp");
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  "webhook-signature");
    th_recv_req rec;
    memset(&rec, 0, sizeof rec);
    rec.at_ms = cr->at_ms;
    copy_field(rec.method, sizeof rec.method, method);
    copy_field(rec.path, sizeof rec.path, url);
    copy_field(rec.webhook_id, sizeof rec.webhook_id, id);
    copy_field(rec.webhook_timestamp, sizeof rec.webhook_timestamp, ts);
    copy_field(rec.webhook_signature, sizeof rec.webhook_signature, sig);
    copy_field(rec.attempt, sizeof rec.attempt,
               MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           "webhook-attempt"));
    copy_field(rec.content_type, sizeof rec.content_type,
               MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           "Content-Type"));
    copy_field(rec.user_agent, sizeof rec.user_agent,
               MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           "User-Agent"));
    hdr_acc acc = {rec.headers, 0, sizeof rec.headers};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, &acc);
    rec.body = cr->body;
    rec.body_len = cr->len;
    rec.answered = 0;
    rec.verified = verify(r, id, ts, sig, cr->body, cr->len);

    int status = atomic_load(&r->rt_status);
    int hang = atomic_load(&r->rt_hang), delay = atomic_load(&r->rt_delay);
    pthread_mutex_lock(&r->mu);
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 64;
        th_recv_req *p = realloc(r->reqs, nc * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&r->mu);
            return MHD_NO;
        }
        r->reqs = p;
        r->cap = nc;
    }
    size_t idx = r->n++;
    r->reqs[idx] = rec;
    cr->body = NULL; /* owned by the record now */
    if (r->opts.fail_first > 0 &&
        count_attempt(r, id ? id : "") <= r->opts.fail_first)
        status = r->opts.fail_status;
    pthread_mutex_unlock(&r->mu);

    if (r->opts.drop) {
        leave_handler(r, cr);
        return MHD_NO;
    }
    if (hang) {
        while (!atomic_load(&r->stopping)) sleep_ms(10);
        leave_handler(r, cr);
        return MHD_NO;
    }
    if (delay > 0) sleep_unless_stopping(r, delay);

    char text[64];
    int tl = snprintf(text, sizeof text, "th_recv answered %d\n", status);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        (size_t)tl, text, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        leave_handler(r, cr);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    if ((status < 200 || status > 299) && r->retry_after)
        MHD_add_response_header(resp, "Retry-After", r->retry_after);
    if (status >= 300 && status <= 399)
        MHD_add_response_header(resp, "Location", "/redirected");
    if (r->opts.delivery_control)
        MHD_add_response_header(resp, "webhook-delivery", r->opts.delivery_control);

    pthread_mutex_lock(&r->mu);
    r->reqs[idx].answered = status;
    pthread_mutex_unlock(&r->mu);
    leave_handler(r, cr);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    th_recv *r = cls;
    conn_req *cr = *con_cls;
    if (!cr) return;
    leave_handler(r, cr); /* ended before the handler finished */
    free(cr->body);
    free(cr);
    *con_cls = NULL;
}

th_recv *th_recv_start(const th_recv_opts *opts)
{
    th_recv *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (opts) r->opts = *opts;
    if (r->opts.status <= 0) r->opts.status = 200;
    if (r->opts.fail_status <= 0) r->opts.fail_status = 503;
    r->opts.retry_after = NULL;
    r->opts.secret = NULL;
    atomic_init(&r->stopping, 0);
    atomic_init(&r->rt_status, r->opts.status);
    atomic_init(&r->rt_hang, r->opts.hang);
    atomic_init(&r->rt_delay, r->opts.delay_ms);
    if ((opts && opts->retry_after && !(r->retry_after = strdup(opts->retry_after))) ||
        (opts && opts->secret && !(r->secret = strdup(opts->secret))) ||
        pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r->retry_after);
        free(r->secret);
        free(r);
        return NULL;
    }

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
        (MHD_RequestCompletedCallback)on_completed, r, MHD_OPTION_END);
    if (!r->d) {
        th_recv_stop(r);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        th_recv_stop(r);
        return NULL;
    }
    r->port = info->port;
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d/hook", r->port);
    return r;
}

const char *th_recv_url(const th_recv *r) { return r->url; }

int th_recv_port(const th_recv *r) { return r->port; }

size_t th_recv_count(th_recv *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int th_recv_get(th_recv *r, size_t i, th_recv_req *out)
{
    int rc = -1;
    pthread_mutex_lock(&r->mu);
    if (i < r->n) {
        *out = r->reqs[i];
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int th_recv_max_concurrent(th_recv *r)
{
    pthread_mutex_lock(&r->mu);
    int m = r->max_active;
    pthread_mutex_unlock(&r->mu);
    return m;
}

size_t th_recv_wait(th_recv *r, size_t n, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    size_t c;
    while ((c = th_recv_count(r)) < n && th_now_ms() < end) sleep_ms(2);
    return c;
}

void th_recv_stop(th_recv *r)
{
    if (!r) return;
    atomic_store(&r->stopping, 1);
    if (r->d) MHD_stop_daemon(r->d); /* joins every connection thread */
    for (size_t i = 0; i < r->n; i++) free(r->reqs[i].body);
    free(r->reqs);
    for (size_t i = 0; i < r->n_ids; i++) free(r->ids[i].id);
    free(r->ids);
    free(r->retry_after);
    free(r->secret);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
