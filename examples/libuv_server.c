/* libuv_server — a small chat server on libuv that reports what happens
 * in it as webhooks, through the libuv adapter (<webhook/adapters/libuv.h>).
 *
 *   libuv_server URL [--port N] [--selftest CLIENTS]
 *
 * TCP clients connect to 127.0.0.1:N (default 0: a free port, printed as
 * "listening 127.0.0.1:PORT") and send lines:
 *   JOIN room      -> webhook member.joined  {"user":U,"room":R}
 *   MSG text       -> webhook message.sent   {"user":U,"room":R,"text":T}
 *   LEAVE          -> webhook member.left    {"user":U,"room":R}
 * (a client that disconnects inside a room leaves it).  Every webhook goes
 * to URL on the same loop: no thread, no polling timer; idle, the webhook
 * engine arms nothing.
 *
 * --selftest CLIENTS: CLIENTS clients made on the same loop each join a
 * room, send 3 messages and leave; when every webhook is delivered the
 * server closes and the program prints its counts and exits 0 (bounded:
 * it gives up after 20 s).
 *
 * Build: cc -std=c11 libuv_server.c $(pkg-config --cflags --libs libwebhook libuv) */
#include <webhook/webhook.h>
#include <webhook/adapters/libuv.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct client {
    uv_tcp_t tcp;
    char name[32];
    char room[64];
    char line[1024];
    size_t len;
} client;

static wh_engine *engine;
static uv_tcp_t server;
static uv_timer_t guard;
static long expected = -1; /* selftest: webhooks to wait for */
static int closing;

static void json_str(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    out[o] = '\0';
}

static void hook(const char *type, client *c, const char *text)
{
    char body[2048], t[1200];
    int n;
    if (text) {
        json_str(t, sizeof t, text);
        n = snprintf(body, sizeof body, "{\"user\":\"%s\",\"room\":\"%s\",\"text\":\"%s\"}",
                     c->name, c->room, t);
    } else {
        n = snprintf(body, sizeof body, "{\"user\":\"%s\",\"room\":\"%s\"}", c->name, c->room);
    }
    if (wh_emit(engine, type, c->room, body, (size_t)n, NULL) < 0)
        fprintf(stderr, "libuv_server: %s\n", wh_last_error(engine));
}

static void on_line(client *c, char *line)
{
    if (strncmp(line, "JOIN ", 5) == 0 && line[5]) {
        if (c->room[0]) hook("member.left", c, NULL);
        json_str(c->room, sizeof c->room, line + 5);
        hook("member.joined", c, NULL);
    } else if (strncmp(line, "MSG ", 4) == 0 && c->room[0]) {
        hook("message.sent", c, line + 4);
    } else if (strcmp(line, "LEAVE") == 0 && c->room[0]) {
        hook("member.left", c, NULL);
        c->room[0] = '\0';
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char slab[65536];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_client_closed(uv_handle_t *h) { free(h->data); }

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client *c = s->data;
    if (n < 0) {
        if (c->room[0]) hook("member.left", c, NULL);
        uv_close((uv_handle_t *)s, on_client_closed);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf->base[i];
        if (ch == '\n' || c->len == sizeof c->line - 1) {
            c->line[c->len] = '\0';
            if (c->len && c->line[c->len - 1] == '\r') c->line[c->len - 1] = '\0';
            on_line(c, c->line);
            c->len = 0;
        } else {
            c->line[c->len++] = ch;
        }
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    static int next_user;
    if (status < 0) return;
    client *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    snprintf(c->name, sizeof c->name, "user-%d", ++next_user);
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

/* ---- selftest: clients on the same loop ---------------------------------------- */
typedef struct bot {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    char script[256];
} bot;

static void on_bot_closed(uv_handle_t *h) { free(h->data); }
static void on_bot_written(uv_write_t *w, int status)
{
    bot *b = w->data;
    (void)status;
    uv_close((uv_handle_t *)&b->tcp, on_bot_closed); /* after the lines went out */
}

static void on_bot_connected(uv_connect_t *req, int status)
{
    bot *b = req->data;
    if (status < 0) {
        uv_close((uv_handle_t *)&b->tcp, on_bot_closed);
        return;
    }
    uv_buf_t buf = uv_buf_init(b->script, (unsigned)strlen(b->script));
    b->wr.data = b;
    uv_write(&b->wr, (uv_stream_t *)&b->tcp, &buf, 1, on_bot_written);
}

static void start_bots(uv_loop_t *loop, int port, int n)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    for (int i = 0; i < n; i++) {
        bot *b = calloc(1, sizeof *b);
        if (!b) return;
        snprintf(b->script, sizeof b->script,
                 "JOIN room-%d\nMSG hello %d\nMSG \"quoted\"\nMSG bye\nLEAVE\n", i % 3, i);
        uv_tcp_init(loop, &b->tcp);
        b->tcp.data = b;
        b->conn.data = b;
        uv_tcp_connect(&b->conn, &b->tcp, (const struct sockaddr *)&a, on_bot_connected);
    }
}

static void on_outcome(void *user, const wh_outcome *o)
{
    (void)user;
    if (o->kind == WH_RETRY) return;
    wh_stats st;
    wh_stats_get(engine, &st);
    if (expected >= 0 && (long)(st.delivered + st.dead) >= expected && !closing) {
        closing = 1;
        uv_close((uv_handle_t *)&server, NULL);
        uv_close((uv_handle_t *)&guard, NULL);
    }
}

static void on_guard(uv_timer_t *t)
{
    fprintf(stderr, "libuv_server: selftest gave up after 20 s\n");
    closing = 1;
    uv_close((uv_handle_t *)&server, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: libuv_server URL [--port N] [--selftest CLIENTS]\n");
        return 2;
    }
    int port = 0, clients = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--selftest") == 0) clients = atoi(argv[i + 1]);
    }
    uv_loop_t *loop = uv_default_loop();
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.on_outcome = on_outcome;
    int err;
    engine = wh_engine_new(&o, &err);
    if (!engine) {
        fprintf(stderr, "libuv_server: %s\n", wh_strerror(err));
        return 1;
    }
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = argv[1];
    if (wh_endpoint_add(engine, &ep) < 0 || wh_libuv_attach(engine, loop) != WH_OK) {
        fprintf(stderr, "libuv_server: %s\n", wh_last_error(engine));
        return 1;
    }
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 128, on_connection) != 0) {
        fprintf(stderr, "libuv_server: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &len);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    printf("listening 127.0.0.1:%d\n", port);
    fflush(stdout);
    if (clients > 0) {
        expected = (long)clients * 5; /* join, 3 messages, leave */
        start_bots(loop, port, clients);
        uv_timer_init(loop, &guard);
        uv_timer_start(&guard, on_guard, 20000, 0);
    }
    uv_run(loop, UV_RUN_DEFAULT);   /* until the server closes */
    wh_stats st;
    wh_stats_get(engine, &st);
    printf("emitted %" PRIu64 ", delivered %" PRIu64 ", dead %" PRIu64 "\n", st.emitted,
           st.delivered, st.dead);
    wh_libuv_detach(engine);
    uv_run(loop, UV_RUN_NOWAIT);    /* the adapter's close callbacks */
    wh_engine_free(engine);
    uv_loop_close(loop);
    return expected < 0 || (long)st.delivered == expected ? 0 : 1;
}
