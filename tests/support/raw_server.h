/* A raw-socket HTTP/1.x server for hostile-receiver and SSRF tests (header
 * only, like proc.h).  It listens on a loopback address (127.0.0.1, ::1 or
 * ::ffff:127.0.0.1, which also takes IPv4 127.0.0.1 connections) on a free
 * port, reads each request (headers + Content-Length body), records its
 * webhook-id and webhook-attempt, and answers as its mode says: correctly,
 * or as a hostile receiver would.  One thread accepts; each connection gets
 * a thread; rs_stop() ends them all. */
#ifndef TH_RAW_SERVER_H
#define TH_RAW_SERVER_H

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum rs_mode {
    RS_OK,            /* 200 "ok", keep-alive */
    RS_SLOWLORIS,     /* a status line, then one header byte every 200 ms */
    RS_BLACKHOLE,     /* reads the request, never answers */
    RS_ENDLESS,       /* 200, then an endless close-delimited body */
    RS_REDIRECT,      /* 302 to itself */
    RS_RESET,         /* half a status line, then a TCP reset */
    RS_GARBAGE,       /* bytes that are not HTTP, then close */
    RS_HTTP10,        /* HTTP/1.0 200, body delimited by close */
    RS_INTERIM,       /* 100 and 102, then 200 */
    RS_HUGE_HEADERS,  /* 200, then header lines without end */
    RS_LATE,          /* attempt 1: answers 200 after late_ms; later: 200 */
    RS_DROP_SECOND,   /* per connection: 200 to the first request, closes
                         without an answer after reading the second */
    RS_EARLY          /* a complete 200 right after the request headers,
                         then a reset without reading the body */
} rs_mode;

#define RS_MAX_REQS 4096
#define RS_MAX_CONNS 256

typedef struct rs_req {
    char id[160];
    int attempt;
    int conn;              /* connection number, from 0 */
} rs_req;

typedef struct rs_server rs_server;
typedef struct rs_conn {
    rs_server *s;
    int fd;
    int num;
} rs_conn;

struct rs_server {
    int fd;
    int port;
    char host[64];         /* as written in a URL: 127.0.0.1, [::1] */
    rs_mode mode;
    int late_ms;
    volatile int stop;
    pthread_t acceptor;
    pthread_mutex_t mu;
    rs_req reqs[RS_MAX_REQS];
    size_t n_reqs;
    size_t n_conns;
    pthread_t threads[RS_MAX_CONNS];
    rs_conn conns[RS_MAX_CONNS];
    long long bytes_out;   /* bytes written to clients */
    char url[128];
};

/* Wait until fd is readable (or writable); 1 ready, 0 stopped/timeout
 * (timeout_ms < 0: until stop). */
static inline int rs_wait(rs_server *s, int fd, short ev, int timeout_ms)
{
    int64_t t0 = th_now_ms();
    while (!s->stop) {
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, 50);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return 0;
        if (timeout_ms >= 0 && th_now_ms() - t0 >= timeout_ms) return 0;
    }
    return 0;
}

static inline int rs_write(rs_server *s, int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        if (!rs_wait(s, fd, POLLOUT, -1)) return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (w <= 0) return -1;
        pthread_mutex_lock(&s->mu);
        s->bytes_out += w;
        pthread_mutex_unlock(&s->mu);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline int rs_puts(rs_server *s, int fd, const char *text)
{
    return rs_write(s, fd, text, strlen(text));
}

/* Header value of `name` in the header block hdr (NUL-terminated). */
static inline int rs_header(const char *hdr, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = hdr; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= size) n = size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Read one request; records it.  Returns its attempt number (>= 0), or -1
 * when the connection ended.  With headers_only the body is left unread. */
static inline int rs_read_request_ex(rs_conn *c, int headers_only)
{
    rs_server *s = c->s;
    char hdr[16384];
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n + 1 >= sizeof hdr) return -1;
        if (!rs_wait(s, c->fd, POLLIN, -1)) return -1;
        ssize_t r = recv(c->fd, hdr + n, sizeof hdr - 1 - n, 0);
        if (r <= 0) return -1;
        n += (size_t)r;
        hdr[n] = '\0';
        end = strstr(hdr, "\r\n\r\n");
    }
    size_t head = (size_t)(end + 4 - hdr);
    char v[160];
    long long len = rs_header(hdr, "Content-Length", v, sizeof v) ? atoll(v) : 0;
    long long have = (long long)(n - head);
    char buf[65536];
    while (!headers_only && have < len) {
        if (!rs_wait(s, c->fd, POLLIN, -1)) return -1;
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r <= 0) return -1;
        have += r;
    }
    rs_req q;
    memset(&q, 0, sizeof q);
    rs_header(hdr, "webhook-id", q.id, sizeof q.id);
    q.attempt = rs_header(hdr, "webhook-attempt", v, sizeof v) ? atoi(v) : 0;
    q.conn = c->num;
    pthread_mutex_lock(&s->mu);
    if (s->n_reqs < RS_MAX_REQS) s->reqs[s->n_reqs++] = q;
    pthread_mutex_unlock(&s->mu);
    return q.attempt;
}

static inline int rs_read_request(rs_conn *c)
{
    return rs_read_request_ex(c, 0);
}

static inline void *rs_conn_main(void *arg)
{
    rs_conn *c = arg;
    rs_server *s = c->s;
    int fd = c->fd;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    char chunk[8192];
    int served = 0;
    for (;;) {
        int attempt = rs_read_request_ex(c, s->mode == RS_EARLY);
        if (attempt < 0) break;
        served++;
        int keep = 0;
        switch (s->mode) {
        case RS_OK:
            keep = rs_puts(s, fd, ok) == 0;
            break;
        case RS_SLOWLORIS:
            if (rs_puts(s, fd, "HTTP/1.1 200 OK\r\nX-Slow: ") != 0) break;
            while (!s->stop && rs_puts(s, fd, "a") == 0) rs_wait(s, fd, 0, 200);
            break;
        case RS_BLACKHOLE:
            /* until the client gives up (EOF) or the test ends */
            while (rs_wait(s, fd, POLLIN, -1) && recv(fd, chunk, sizeof chunk, 0) > 0) {}
            break;
        case RS_ENDLESS:
            memset(chunk, 'x', sizeof chunk);
            if (rs_puts(s, fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               "Connection: close\r\n\r\n") != 0)
                break;
            while (!s->stop && rs_write(s, fd, chunk, sizeof chunk) == 0) {}
            break;
        case RS_REDIRECT: {
            char r[256];
            snprintf(r, sizeof r, "HTTP/1.1 302 Found\r\nLocation: %s\r\n"
                     "Content-Length: 0\r\n\r\n", s->url);
            keep = rs_puts(s, fd, r) == 0;
            break;
        }
        case RS_RESET: {
            rs_puts(s, fd, "HTTP/1.1 200 O");
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        case RS_GARBAGE: {
            static const char junk[] = "\x16\x03\x01\x02\x00\xff\xfe garbage \x01\x02\r\n\r\n";
            rs_write(s, fd, junk, sizeof junk - 1);
            break;
        }
        case RS_HTTP10:
            rs_puts(s, fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                           "body delimited by close");
            break;
        case RS_INTERIM:
            keep = rs_puts(s, fd, "HTTP/1.1 100 Continue\r\n\r\n"
                                  "HTTP/1.1 102 Processing\r\n\r\n") == 0 &&
                   rs_puts(s, fd, ok) == 0;
            break;
        case RS_HUGE_HEADERS: {
            if (rs_puts(s, fd, "HTTP/1.1 200 OK\r\n") != 0) break;
            char line[1100];
            memset(line, 'h', sizeof line);
            memcpy(line, "X-Filler: ", 10);
            memcpy(line + sizeof line - 2, "\r\n", 2);
            while (!s->stop && rs_write(s, fd, line, sizeof line) == 0) {}
            break;
        }
        case RS_LATE:
            if (attempt <= 1) rs_wait(s, fd, 0, s->late_ms);
            keep = rs_puts(s, fd, ok) == 0;
            break;
        case RS_DROP_SECOND:
            keep = served == 1 && rs_puts(s, fd, ok) == 0;
            break;
        case RS_EARLY: {
            /* the answer is complete; the client is still sending a body
             * larger than both socket buffers; then the unread body makes
             * the close a reset */
            rs_puts(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            rs_wait(s, fd, 0, 1000);
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        }
        if (!keep) break;
    }
    close(fd);
    return NULL;
}

static inline void *rs_accept_main(void *arg)
{
    rs_server *s = arg;
    while (rs_wait(s, s->fd, POLLIN, -1)) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&s->mu);
        size_t i = s->n_conns;
        if (i < RS_MAX_CONNS) s->n_conns++;
        pthread_mutex_unlock(&s->mu);
        if (i >= RS_MAX_CONNS) {
            close(fd);
            continue;
        }
        s->conns[i].s = s;
        s->conns[i].fd = fd;
        s->conns[i].num = (int)i;
        if (pthread_create(&s->threads[i], NULL, rs_conn_main, &s->conns[i]) != 0) {
            close(fd);
            s->conns[i].fd = -1;
        }
    }
    return NULL;
}

/* Start a server on `addr` ("127.0.0.1", "::1", "::ffff:127.0.0.1"). */
static inline rs_server *rs_start(const char *addr, rs_mode mode)
{
    rs_server *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    s->mode = mode;
    s->late_ms = 1500;
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int v6 = strchr(addr, ':') != NULL;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        CHECK_EQ(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
        len = sizeof *a;
        snprintf(s->host, sizeof s->host, "[%s]", addr);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        CHECK_EQ(inet_pton(AF_INET, addr, &a->sin_addr), 1);
        len = sizeof *a;
        snprintf(s->host, sizeof s->host, "%s", addr);
    }
    s->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    CHECK(s->fd >= 0);
    int one = 1, zero = 0;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    CHECK_EQ(bind(s->fd, (struct sockaddr *)&ss, len), 0);
    CHECK_EQ(listen(s->fd, 64), 0);
    CHECK_EQ(getsockname(s->fd, (struct sockaddr *)&ss, &len), 0);
    s->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    snprintf(s->url, sizeof s->url, "http://%s:%d/hook", s->host, s->port);
    CHECK_EQ(pthread_create(&s->acceptor, NULL, rs_accept_main, s), 0);
    return s;
}

static inline size_t rs_count(rs_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_reqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline size_t rs_conn_count(rs_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_conns;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline long long rs_bytes_out(rs_server *s)
{
    pthread_mutex_lock(&s->mu);
    long long n = s->bytes_out;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline void rs_stop(rs_server *s)
{
    s->stop = 1;
    pthread_join(s->acceptor, NULL);
    for (size_t i = 0; i < s->n_conns; i++)
        if (s->conns[i].fd >= 0) pthread_join(s->threads[i], NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

#endif
