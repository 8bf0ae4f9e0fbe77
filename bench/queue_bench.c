/* Queue backends benchmark (not run by make check).
 *
 *   make && cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/queue_bench.c \
 *      build/libwebhook.a $(pkg-config --libs libcurl libcjson sqlite3 hiredis) \
 *      -lmbedcrypto -lm -o build/queue_bench
 *   build/queue_bench [EVENTS]          (default 200000)
 *
 * For each backend (memory, SQLite, Redis):
 *   enqueue   wh_emit of EVENTS events (one endpoint, ~90-byte payload) in a
 *             producer-only engine, wh_poll(e, 0) after every 1,000 (group
 *             commit), timed until everything is written (pending == 0).
 *   delivery  the same events emitted, then delivered end to end through
 *             the queue (claim, ack) with the scripted transport answering
 *             200 at once: the queue's cost per delivery, without HTTP.
 * Redis: a redis-server started here on 127.0.0.1 (free port, temporary
 * directory, appendonly yes, appendfsync everysec).  SQLite: a file in /tmp,
 * WAL, synchronous=NORMAL. */
#include <webhook/webhook.h>
#include <webhook/sqlite.h>
#include <webhook/redis.h>
#include <webhook/test.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        exit(1);
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

typedef struct kind {
    const char *name;
    int type;                 /* 0 memory, 1 sqlite, 2 redis */
} kind;

static char sqlite_path[64];
static int redis_port;
static int redis_db_seq;

static wh_queue *make_queue(int type, int producer, const wh_clock *clock)
{
    wh_queue *q = NULL;
    int rc = WH_OK;
    if (type == 1) {
        unlink(sqlite_path);
        char wal[80];
        snprintf(wal, sizeof wal, "%s-wal", sqlite_path);
        unlink(wal);
        wh_sqlite_options o;
        wh_sqlite_options_init(&o);
        o.producer_only = producer;
        o.clock = clock;
        rc = wh_queue_sqlite_new(sqlite_path, &o, &q);
    } else if (type == 2) {
        wh_redis_options o;
        wh_redis_options_init(&o);
        o.port = redis_port;
        o.producer_only = producer;
        o.clock = clock;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "bench%d", redis_db_seq++);
        o.prefix = prefix;
        rc = wh_queue_redis_new(&o, &q);
    }
    if (rc != WH_OK) {
        fprintf(stderr, "queue: %s\n", wh_strerror(rc));
        exit(1);
    }
    return q;
}

static wh_engine *make_engine(wh_queue *q, wh_transport *t)
{
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.queue = q;
    o.queue_owned = 1;
    o.transport = t;
    o.validate_json = 1;
    wh_engine *e = wh_engine_new(&o, NULL);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.id = "bench";
    ep.url = "http://127.0.0.1:9/hook";
    ep.max_in_flight = 64;
    if (!e || wh_endpoint_add(e, &ep) <= 0) exit(1);
    return e;
}

static size_t pending(wh_queue *q)
{
    wh_queue_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    if (!q || wh_queue_info_get(q, &i) != WH_OK) return 0;
    return (size_t)i.pending;
}

static void emit_all(wh_engine *e, int n, int poll_every)
{
    char data[128];
    for (int i = 0; i < n; i++) {
        int len = snprintf(data, sizeof data,
                           "{\"order\":%d,\"status\":\"paid\",\"amount\":1999,"
                           "\"currency\":\"EUR\",\"customer\":\"c-%08d\"}", i, i);
        int rc;
        while ((rc = wh_emit(e, "order.paid", "shop-1", data, (size_t)len, NULL)) == WH_E_FULL)
            wh_poll(e, 0);
        if (rc != 1) {
            fprintf(stderr, "wh_emit: %s\n", wh_last_error(e));
            exit(1);
        }
        if (poll_every && (i + 1) % poll_every == 0) wh_poll(e, 0);
    }
}

static double bench_enqueue(int type, int n)
{
    wh_transport *t;
    wh_transport_scripted_new(NULL, NULL, &t);
    wh_queue *q = type ? make_queue(type, 1, NULL) : NULL;
    wh_engine *e = make_engine(q, t);
    double t0 = now_s();
    emit_all(e, n, type ? 1000 : 0);
    while (pending(q)) wh_poll(e, 0);
    double dt = now_s() - t0;
    wh_engine_free(e);
    wh_transport_free(t);
    return n / dt;
}

static double bench_delivery(int type, int n)
{
    wh_transport *t;
    wh_transport_scripted_new(NULL, NULL, &t); /* 200 at once */
    wh_queue *q = type ? make_queue(type, 0, NULL) : NULL;
    wh_engine *e = make_engine(q, t);
    double t0 = now_s();
    emit_all(e, n, 1000);
    wh_stats st;
    do {
        wh_poll(e, 0);
        wh_stats_get(e, &st);
    } while (st.delivered < (uint64_t)n && now_s() - t0 < 600);
    double dt = now_s() - t0;
    if (st.delivered < (uint64_t)n) fprintf(stderr, "delivery: only %llu\n",
                                            (unsigned long long)st.delivered);
    wh_engine_free(e);
    wh_transport_free(t);
    return n / dt;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200000;
    if (n <= 0) return 2;
    snprintf(sqlite_path, sizeof sqlite_path, "/tmp/wh_queue_bench_%d.db", (int)getpid());
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/wh_queue_bench_%dXXXXXX", (int)getpid());
    if (!mkdtemp(dir)) return 1;
    redis_port = free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", redis_port);
    pid_t rp = fork();
    if (rp == 0) {
        execl("/usr/bin/redis-server", "redis-server", "--port", ports, "--bind", "127.0.0.1",
              "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
              "--logfile", "redis.log", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && !port_open(redis_port); i++) usleep(10000);
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);

    static const kind kinds[] = {{"memory", 0}, {"sqlite", 1}, {"redis", 2}};
    printf("%d events, ~90-byte payloads, one endpoint\n", n);
    printf("%-8s %18s %22s\n", "backend", "enqueue (ev/s)", "delivery (ev/s)");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        double enq = bench_enqueue(kinds[k].type, n);
        int dn = n > 100000 ? 100000 : n;
        double del = bench_delivery(kinds[k].type, dn);
        printf("%-8s %18.0f %22.0f\n", kinds[k].name, enq, del);
        fflush(stdout);
    }
    kill(rp, SIGTERM);
    waitpid(rp, NULL, 0);
    unlink(sqlite_path);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s-wal' '%s-shm'", dir, sqlite_path, sqlite_path);
    if (system(cmd) != 0) return 1;
    return 0;
}
