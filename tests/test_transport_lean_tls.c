/* https:// over the lean transport (a library built with libssl), against a
 * TLS server this program runs on 127.0.0.1 with certificates it makes
 * (openssl CLI): keep-alive, SNI, verification by IP and by name, session
 * resumption, large bodies, verification failures named, and the engine's
 * "auto" choosing lean for https://.  Every wait is bounded in real time. */
#include "harness.h"
#include <webhook/webhook.h>
#include <webhook/plugin.h>
#include <webhook/lean.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- certificates ----------------------------------------------------------- */
static char ca_pem[512], srv_pem[512], srv_key[512], other_pem[512], other_key[512];
static char srv_pin[128]; /* "sha256//<base64>" of srv.pem's public key */

static void sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) th_fail(__FILE__, __LINE__, "command failed (%d): %s", rc, cmd);
}

/* A CA, a server certificate for 127.0.0.1 and localhost signed by it, and
 * one for other.example only. */
static void make_certs(void)
{
    const char *dir = th_tmp_init("whleantls");
    char cmd[4096];
    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
    snprintf(srv_pem, sizeof srv_pem, "%s/srv.pem", dir);
    snprintf(srv_key, sizeof srv_key, "%s/srv.key", dir);
    snprintf(other_pem, sizeof other_pem, "%s/other.pem", dir);
    snprintf(other_key, sizeof other_key, "%s/other.key", dir);
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
             " -subj /CN=test-ca -days 2 -keyout ca.key -out ca.pem 2>/dev/null"
             " && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > srv.ext"
             " && printf 'subjectAltName=DNS:other.example\\n' > other.ext"
             " && for n in srv other; do"
             "   openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=$n"
             "     -keyout $n.key -out $n.csr 2>/dev/null &&"
             "   openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
             "     -days 2 -extfile $n.ext -out $n.pem 2>/dev/null || exit 1; done"
             " && openssl x509 -in srv.pem -pubkey -noout | openssl pkey -pubin -outform der"
             "   | openssl dgst -sha256 -binary | base64 > srv.pin",
             dir);
    sh(cmd);
    char pinf[600];
    snprintf(pinf, sizeof pinf, "%s/srv.pin", dir);
    FILE *f = fopen(pinf, "r");
    CHECK(f != NULL);
    char b64[96] = "";
    CHECK(fgets(b64, sizeof b64, f) != NULL);
    fclose(f);
    b64[strcspn(b64, "\r\n")] = '\0';
    snprintf(srv_pin, sizeof srv_pin, "sha256//%s", b64);
}

/* ---- TLS server --------------------------------------------------------------- */
#define SRV_MAX 64
typedef struct tls_srv {
    int lfd, port;
    pthread_t th;
    atomic_int stop;
    SSL_CTX *ctx;
    int close_each;              /* Connection: close after every answer */
    atomic_int conns, reqs;
    int resumed[SRV_MAX];        /* per connection */
    char sni[SRV_MAX][64];       /* per connection, "" when none */
    int accept_hdr[SRV_MAX];     /* per request: an Accept header came */
    size_t body_bytes[SRV_MAX];  /* per request */
    char url[96], url_localhost[96];
} tls_srv;

static int srv_read(tls_srv *s, SSL *ssl, char *buf, size_t cap, size_t *n)
{
    for (;;) {
        if (atomic_load(&s->stop)) return -1;
        int fd = SSL_get_fd(ssl);
        if (!SSL_pending(ssl)) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
        }
        int k = SSL_read(ssl, buf + *n, (int)(cap - 1 - *n));
        if (k <= 0) return 0;
        *n += (size_t)k;
        buf[*n] = '\0';
        return 1;
    }
}

static void srv_conn(tls_srv *s, SSL *ssl, int ci)
{
    static char buf[1 << 21];
    for (;;) {
        size_t n = 0;
        char *end = NULL;
        while (!end) {
            if (n + 1 >= sizeof buf || srv_read(s, ssl, buf, sizeof buf, &n) <= 0) return;
            end = strstr(buf, "\r\n\r\n");
        }
        const char *cl = strcasestr(buf, "\r\ncontent-length:");
        size_t want = cl ? (size_t)strtoull(cl + 17, NULL, 10) : 0;
        size_t have = n - (size_t)(end + 4 - buf);
        int k = atomic_load(&s->reqs);
        if (k < SRV_MAX) s->accept_hdr[k] = strcasestr(buf, "\r\naccept:") != NULL;
        while (have < want) {
            size_t m = 0;
            if (srv_read(s, ssl, buf, sizeof buf, &m) <= 0) return;
            have += m;
        }
        if (k < SRV_MAX) s->body_bytes[k] = have;
        atomic_fetch_add(&s->reqs, 1);
        const char *ans = s->close_each
                              ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                              : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if (SSL_write(ssl, ans, (int)strlen(ans)) <= 0) return;
        if (s->close_each) return;
    }
    (void)ci;
}

static void *srv_main(void *arg)
{
    tls_srv *s = arg;
    /* the server's writes to a closed client: EPIPE in this thread only (a
     * SIGPIPE the library raised would still end the test) */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        int ci = atomic_load(&s->conns);
        if (SSL_accept(ssl) == 1) {
            atomic_fetch_add(&s->conns, 1);
            if (ci < SRV_MAX) {
                s->resumed[ci] = SSL_session_reused(ssl);
                const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
                snprintf(s->sni[ci], sizeof s->sni[ci], "%s", sn ? sn : "");
            }
            srv_conn(s, ssl, ci);
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static tls_srv *srv_start(const char *cert, const char *key, int close_each)
{
    tls_srv *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    s->close_each = close_each;
    s->ctx = SSL_CTX_new(TLS_server_method());
    CHECK(s->ctx != NULL);
    CHECK_EQ(SSL_CTX_use_certificate_chain_file(s->ctx, cert), 1);
    CHECK_EQ(SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM), 1);
    static const unsigned char sid[] = "whleantls";
    CHECK_EQ(SSL_CTX_set_session_id_context(s->ctx, sid, sizeof sid - 1), 1);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s->lfd >= 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(s->lfd, 16), 0);
    CHECK_EQ(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    snprintf(s->url, sizeof s->url, "https://127.0.0.1:%d/hook", s->port);
    snprintf(s->url_localhost, sizeof s->url_localhost, "https://localhost:%d/hook", s->port);
    CHECK_EQ(pthread_create(&s->th, NULL, srv_main, s), 0);
    return s;
}

static void srv_stop(tls_srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    free(s);
}

/* ---- client side ----------------------------------------------------------------- */
typedef struct done_log {
    int n;
    int status[64], error[64];
    char msg[64][400];
    char body[64][16];
} done_log;

static void on_done(void *user, void *token, const wh_response *res)
{
    done_log *d = user;
    (void)token;
    CHECK(d->n < 64);
    d->status[d->n] = res->status;
    d->error[d->n] = res->error;
    snprintf(d->msg[d->n], sizeof d->msg[0], "%s", res->error_msg ? res->error_msg : "");
    snprintf(d->body[d->n], sizeof d->body[0], "%.*s", (int)res->body_len,
             res->body ? res->body : "");
    d->n++;
}

static wh_transport *lean(const char *ca, int verify)
{
    wh_lean_options o;
    wh_lean_options_init(&o);
    o.ca_file = ca;
    o.verify_tls = verify;
    wh_transport *t = NULL;
    CHECK_EQ(wh_transport_lean_new(&o, &t), WH_OK);
    return t;
}

static const wh_tls *req_tls; /* the next requests' TLS settings */

static void request(wh_transport *t, done_log *d, const char *url, const char *body,
                    size_t len)
{
    static const char *const hdrs[] = {"Content-Type: application/json"};
    wh_request q;
    memset(&q, 0, sizeof q);
    q.url = url;
    q.headers = hdrs;
    q.n_headers = 1;
    q.body = body;
    q.body_len = len;
    q.timeout_ms = 10000;
    q.connect_timeout_ms = 5000;
    q.tls = req_tls;
    int before = d->n;
    CHECK_EQ(t->submit(t->user, &q), WH_OK);
    int64_t end = th_now_ms() + 15000;
    while (d->n == before && th_now_ms() < end) CHECK(t->perform(t->user, 50, on_done, d) >= 0);
    CHECK_EQ(d->n, before + 1);
}

/* Skip when the library was built without TLS for the lean transport. */
static void need_tls(void)
{
    wh_transport *t = lean(NULL, 1);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    request(t, d, "https://127.0.0.1:1/", "{}", 2);
    int built = strstr(d->msg[0], "built without TLS") == NULL;
    t->destroy(t->user);
    free(d);
    if (!built) th_skip("the lean transport was built without TLS (WITH_TLS=0)");
}

/* ---- cases ---------------------------------------------------------------------- */

static void t_tls_keepalive(void)
{
    need_tls();
    make_certs();
    tls_srv *s = srv_start(srv_pem, srv_key, 0);
    wh_transport *t = lean(ca_pem, 1);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    for (int i = 0; i < 5; i++) {
        request(t, d, s->url, "{\"a\":1}", 7);
        CHECK_EQ(d->error[i], WH_OK);
        CHECK_EQ(d->status[i], 200);
        CHECK_STR(d->body[i], "ok");
    }
    CHECK_EQ(atomic_load(&s->conns), 1);
    CHECK_STR(s->sni[0], ""); /* no SNI for an IP address */
    CHECK_EQ(s->accept_hdr[0], 0);
    /* a large body, in full */
    size_t big = 1u << 20;
    char *b = malloc(big);
    CHECK(b != NULL);
    memset(b, 'x', big);
    request(t, d, s->url, b, big);
    CHECK_EQ(d->status[5], 200);
    CHECK_EQ(s->body_bytes[5], big);
    free(b);
    t->destroy(t->user);
    srv_stop(s);
    free(d);
    th_tmp_cleanup();
}

static void t_tls_sni_and_resumption(void)
{
    need_tls();
    make_certs();
    tls_srv *s = srv_start(srv_pem, srv_key, 1);
    wh_transport *t = lean(ca_pem, 1);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    for (int i = 0; i < 3; i++) {
        request(t, d, s->url_localhost, "{}", 2);
        CHECK_EQ(d->error[i], WH_OK);
        CHECK_EQ(d->status[i], 200);
    }
    CHECK_EQ(atomic_load(&s->conns), 3);
    for (int i = 0; i < 3; i++) CHECK_STR(s->sni[i], "localhost");
    CHECK_EQ(s->resumed[0], 0);
    CHECK_EQ(s->resumed[1], 1);
    CHECK_EQ(s->resumed[2], 1);
    t->destroy(t->user);
    srv_stop(s);
    free(d);
    th_tmp_cleanup();
}

static void t_tls_verification_named(void)
{
    need_tls();
    make_certs();
    /* an unknown CA (the system store does not hold the test CA) */
    tls_srv *s = srv_start(srv_pem, srv_key, 0);
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    wh_transport *t = lean(NULL, 1);
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[0], WH_E_TRANSPORT);
    CHECK_EQ(d->status[0], 0);
    CHECK(strstr(d->msg[0], "TLS handshake") != NULL);
    CHECK(strstr(d->msg[0], "certificate") != NULL);
    CHECK_EQ(atomic_load(&s->reqs), 0);
    t->destroy(t->user);
    srv_stop(s);

    /* a certificate for another name */
    s = srv_start(other_pem, other_key, 0);
    t = lean(ca_pem, 1);
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[1], WH_E_TRANSPORT);
    CHECK(strstr(d->msg[1], "certificate") != NULL);
    request(t, d, s->url_localhost, "{}", 2);
    CHECK_EQ(d->error[2], WH_E_TRANSPORT);
    CHECK_EQ(atomic_load(&s->reqs), 0);
    t->destroy(t->user);
    /* verification off (testing only): accepted */
    t = lean(NULL, 0);
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[3], WH_OK);
    CHECK_EQ(d->status[3], 200);
    t->destroy(t->user);
    srv_stop(s);
    free(d);
    th_tmp_cleanup();
}

/* The engine with "auto": https:// to an IP literal goes over the lean
 * transport (libcurl would send an Accept header); the system store is
 * OpenSSL's, so SSL_CERT_FILE names the test CA. */
typedef struct outs {
    int delivered, other;
} outs;

static void on_outcome(void *user, const wh_outcome *o)
{
    outs *x = user;
    if (o->kind == WH_DELIVERED) x->delivered++;
    else if (o->kind != WH_RETRY) x->other++;

}

static void t_tls_engine_auto(void)
{
    need_tls();
    make_certs();
    setenv("SSL_CERT_FILE", ca_pem, 1);
    tls_srv *s = srv_start(srv_pem, srv_key, 0);
    outs x = {0, 0};
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.transport_kind = WH_TRANSPORT_AUTO;
    eo.on_outcome = on_outcome;
    eo.outcome_user = &x;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.url = s->url;
    o.max_in_flight = 1; /* the test server serves one connection at a time */
    CHECK(wh_endpoint_add(e, &o) > 0);
    for (int i = 0; i < 10; i++) CHECK(wh_emit(e, "t.x", NULL, "{}", 2, NULL) >= 0);
    CHECK_EQ(wh_flush(e, 15000), WH_OK);
    CHECK_EQ(x.delivered, 10);
    CHECK_EQ(atomic_load(&s->reqs), 10);
    for (int i = 0; i < 10; i++) CHECK_EQ(s->accept_hdr[i], 0);
    wh_engine_free(e);
    srv_stop(s);
    unsetenv("SSL_CERT_FILE");
    th_tmp_cleanup();
}

/* The per-request TLS settings (an endpoint's, wh_request.tls): its CA
 * file, public-key pins, TLS 1.3 minimum, insecure mode; connections are
 * not shared between settings. */
static void t_tls_request_settings(void)
{
    need_tls();
    make_certs();
    /* one connection at a time: each answer closes its connection */
    tls_srv *s = srv_start(srv_pem, srv_key, 1);
    unsetenv("SSL_CERT_FILE");
    wh_transport *t = lean(NULL, 1); /* the system store: not the test CA */
    done_log *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    wh_tls a;
    memset(&a, 0, sizeof a);
    a.ca_file = ca_pem;
    req_tls = &a;
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[0], WH_OK);
    CHECK_EQ(d->status[0], 200);
    /* the right pin, TLS 1.3 at least */
    wh_tls b = a;
    b.pinned_public_key = srv_pin;
    b.min_version = 13;
    req_tls = &b;
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[1], WH_OK);
    /* a wrong pin: refused after the handshake, nothing sent */
    wh_tls c = a;
    c.pinned_public_key = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    req_tls = &c;
    int before = atomic_load(&s->reqs);
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[2], WH_E_TRANSPORT);
    CHECK(strstr(d->msg[2], "pinned_public_key") != NULL);
    CHECK_EQ(atomic_load(&s->reqs), before);
    /* no settings: the transport's own store, which lacks the CA */
    req_tls = NULL;
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[3], WH_E_TRANSPORT);
    CHECK(strstr(d->msg[3], "certificate") != NULL);
    /* insecure (testing only) */
    wh_tls e;
    memset(&e, 0, sizeof e);
    e.insecure_skip_verify_DANGEROUS = 1;
    req_tls = &e;
    request(t, d, s->url, "{}", 2);
    CHECK_EQ(d->error[4], WH_OK);
    req_tls = NULL;
    t->destroy(t->user);
    srv_stop(s);
    free(d);
    th_tmp_cleanup();
}

TH_MAIN(TH_CASE(t_tls_request_settings), TH_CASE(t_tls_keepalive), TH_CASE(t_tls_sni_and_resumption),
        TH_CASE(t_tls_verification_named), TH_CASE(t_tls_engine_auto))
