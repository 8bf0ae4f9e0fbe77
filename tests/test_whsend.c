/* The whsend CLI, run as a child process against in-process receivers on
 * 127.0.0.1.  The binary is found through WH_BIN (set by make check),
 * else build/bin. */
#include "harness.h"
#include "http_receiver.h"

#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/* ---- temporary files ----------------------------------------------------------- */

static char tmpdir[64];
static char tmp_files[16][128];
static size_t n_tmp_files;

static void tmp_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/whsendXXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    n_tmp_files = 0;
}

static const char *tmp_path(const char *name)
{
    CHECK(n_tmp_files < sizeof tmp_files / sizeof tmp_files[0]);
    char *p = tmp_files[n_tmp_files++];
    snprintf(p, sizeof tmp_files[0], "%s/%s", tmpdir, name);
    return p;
}

static const char *tmp_write(const char *name, const char *text)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(text, 1, strlen(text), f), strlen(text));
    CHECK_EQ(fclose(f), 0);
    return path;
}

static void tmp_cleanup(void)
{
    for (size_t i = 0; i < n_tmp_files; i++) unlink(tmp_files[i]);
    n_tmp_files = 0;
    CHECK_EQ(rmdir(tmpdir), 0);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    char *s = th_slurp(f);
    fclose(f);
    return s;
}

/* ---- running whsend -------------------------------------------------------------- */

typedef struct run {
    int status;        /* exit status, or 128 + signal */
    char *out, *err;
    int64_t ms;
} run;

static const char *whsend_path(void)
{
    static char path[512];
    const char *dir = getenv("WH_BIN");
    if (!dir || !*dir) dir = "build/bin";
    snprintf(path, sizeof path, "%s/whsend", dir);
    if (access(path, X_OK) != 0)
        th_fail(__FILE__, __LINE__, "%s: %s (set WH_BIN)", path, strerror(errno));
    return path;
}

/* Run whsend with argv (NULL-terminated, without argv[0]) and stdin from
 * `in` (NULL: /dev/null); kill it after timeout_ms. */
static run run_whsend(const char *const *args, const char *in, int timeout_ms)
{
    const char *exe = whsend_path();
    const char *out_path = tmp_path("stdout"), *err_path = tmp_path("stderr");
    char *argv[32];
    size_t n = 0;
    argv[n++] = (char *)"whsend";
    for (; args[n - 1] && n < 31; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;

    fflush(stdout);
    fflush(stderr);
    int64_t t0 = th_now_ms();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int i = open(in ? in : "/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0) _exit(126);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(exe, argv);
        _exit(127);
    }
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        CHECK(w == 0 || errno == EINTR);
        if (th_now_ms() - t0 > timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            th_fail(__FILE__, __LINE__, "whsend still running after %d ms", timeout_ms);
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    run r;
    r.ms = th_now_ms() - t0;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = read_all(out_path);
    r.err = read_all(err_path);
    return r;
}

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
}

#define CHECK_CONTAINS(hay, needle)                                            \
    do {                                                                       \
        if (!strstr((hay), (needle)))                                          \
            th_fail(__FILE__, __LINE__, "\"%s\" not found in:\n%s", (needle),   \
                    (hay));                                                    \
    } while (0)

#define CHECK_STATUS(r, want)                                                  \
    do {                                                                       \
        if ((r).status != (want))                                              \
            th_fail(__FILE__, __LINE__, "exit status %d, expected %d; stderr:\n%s", \
                    (r).status, (want), (r).err);                              \
    } while (0)

typedef struct summary {
    long long emitted, delivered, dead, rejected, requests, retries, elapsed_ms;
} summary;

/* stdout must be exactly one JSON object line with every field. */
static summary parse_summary(const char *out)
{
    size_t len = strlen(out);
    if (len == 0 || out[len - 1] != '\n' || memchr(out, '\n', len - 1))
        th_fail(__FILE__, __LINE__, "stdout is not one line: \"%s\"", out);
    cJSON *j = cJSON_Parse(out);
    if (!cJSON_IsObject(j)) th_fail(__FILE__, __LINE__, "summary is not JSON: %s", out);
    static const char *const keys[] = {"emitted",  "delivered", "dead",      "rejected",
                                       "requests", "retries",   "elapsed_ms"};
    long long v[7];
    for (int i = 0; i < 7; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!cJSON_IsNumber(it))
            th_fail(__FILE__, __LINE__, "summary lacks \"%s\": %s", keys[i], out);
        v[i] = (long long)it->valuedouble;
        CHECK_INT(v[i], >=, 0);
    }
    CHECK_EQ(cJSON_GetArraySize(j), 7);
    cJSON_Delete(j);
    summary s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    return s;
}

static const char *config_for(const char *url, const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"endpoints\": [{\"id\": \"test\", \"url\": \"%s\"%s%s}]}\n", url,
             extra ? ", " : "", extra ? extra : "");
    return tmp_write("config.json", buf);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}


/* ---- whsend on an open pipe ------------------------------------------------------ */

/* whsend reading a pipe whose write end the test holds: the test can write
 * lines, keep the pipe open and idle, signal the process, or close it. */
typedef struct piped {
    pid_t pid;
    int in;                /* write end, -1 once closed */
    const char *out_path, *err_path;
    int64_t t0;
} piped;

static piped start_piped(const char *const *args)
{
    const char *exe = whsend_path();
    piped p;
    p.out_path = tmp_path("stdout");
    p.err_path = tmp_path("stderr");
    char *argv[32];
    size_t n = 0;
    argv[n++] = (char *)"whsend";
    for (; args[n - 1] && n < 31; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    int fds[2];
    CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    p.t0 = th_now_ms();
    p.pid = fork();
    CHECK(p.pid >= 0);
    if (p.pid == 0) {
        int o = open(p.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(p.err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0) _exit(126);
        dup2(fds[0], 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(exe, argv);
        _exit(127);
    }
    close(fds[0]);
    p.in = fds[1];
    return p;
}

static void piped_write(piped *p, const char *text)
{
    size_t len = strlen(text);
    CHECK_EQ(write(p->in, text, len), (ssize_t)len);
}

/* 1 while the process runs. */
static int piped_running(piped *p)
{
    int st;
    return waitpid(p->pid, &st, WNOHANG) == 0 ? 1 : (p->pid = -1, 0);
}

/* Close the input (unless keep_open), wait up to timeout_ms for the exit. */
static run piped_finish(piped *p, int keep_open, int timeout_ms)
{
    if (!keep_open && p->in >= 0) {
        close(p->in);
        p->in = -1;
    }
    int st = 0;
    int64_t t0 = th_now_ms();
    for (;;) {
        pid_t w = waitpid(p->pid, &st, WNOHANG);
        if (w == p->pid) break;
        CHECK(w == 0 || errno == EINTR);
        if (th_now_ms() - t0 > timeout_ms) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            th_fail(__FILE__, __LINE__, "whsend still running after %d ms", timeout_ms);
        }
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (p->in >= 0) {
        close(p->in);
        p->in = -1;
    }
    run r;
    r.ms = th_now_ms() - t0;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = read_all(p->out_path);
    r.err = read_all(p->err_path);
    return r;
}

/* Wait (really) until whsend's stderr contains needle; the time it was
 * seen, or -1 after timeout_ms. */
static int64_t wait_stderr(piped *p, const char *needle, int timeout_ms)
{
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 <= timeout_ms) {
        char *e = read_all(p->err_path);
        int found = strstr(e, needle) != NULL;
        free(e);
        if (found) return th_now_ms();
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* ---- cases ------------------------------------------------------------------------ */

/* (a) 200 signed events from stdin, all delivered and verified. */
static void test_deliver_200_signed(void)
{
    enum { N = 200 };
    tmp_init();
    th_recv_opts ro = {0};
    ro.secret = SECRET;
    th_recv *r = th_recv_start(&ro);
    CHECK(r != NULL);
    const char *cfg = config_for(th_recv_url(r), "\"secret\": \"" SECRET "\"");
    size_t cap = N * 128;
    char *events = malloc(cap), *p = events;
    CHECK(events != NULL);
    for (int i = 0; i < N; i++)
        p += snprintf(p, cap - (size_t)(p - events),
                      "{\"event\": \"message.created\", \"channel\": \"room-%d\", "
                      "\"data\": {\"i\": %d, \"big\": 12345678901234567890%d}}\n",
                      i % 7, i, i);
    const char *in = tmp_write("events.ndjson", events);
    free(events);

    const char *args[] = {"-q", "-c", cfg, NULL};
    run x = run_whsend(args, in, 50000);
    CHECK_STATUS(x, 0);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, N);
    CHECK_EQ(s.delivered, N);
    CHECK_EQ(s.dead, 0);
    CHECK_EQ(s.rejected, 0);
    CHECK_EQ(s.requests, N);
    CHECK_EQ(s.retries, 0);
    CHECK_INT(s.elapsed_ms, <=, x.ms + 50);

    CHECK_EQ(th_recv_wait(r, N, 5000), N);
    CHECK_EQ(th_recv_count(r), N);
    const char *ids[N];
    char (*id_store)[160] = calloc(N, sizeof *id_store);
    CHECK(id_store != NULL);
    int seen_body = 0;
    for (size_t i = 0; i < N; i++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, i, &q), 0);
        CHECK_STR(q.method, "POST");
        CHECK_EQ(q.verified, 1);
        CHECK_STR(q.attempt, "1");
        CHECK(q.webhook_id[0] != '\0');
        memcpy(id_store[i], q.webhook_id, sizeof id_store[i]);
        ids[i] = id_store[i];
        /* the payload is passed on byte for byte (no float round trip) */
        if (strstr(q.body, "{\"i\": 5, \"big\": 123456789012345678905}")) seen_body++;
    }
    CHECK_EQ(seen_body, 1);
    qsort(ids, N, sizeof ids[0], cmp_str);
    for (size_t i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            th_fail(__FILE__, __LINE__, "webhook-id %s used twice", ids[i]);
    free(id_store);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* (b) The first two attempts of every delivery get 503: each arrives on
 * attempt 3, with one webhook-id across its attempts, after the default
 * backoff (2 s, then 4 s). */
static void test_retries_same_id(void)
{
    enum { N = 5 };
    tmp_init();
    th_recv_opts ro = {0};
    ro.fail_first = 2;
    th_recv *r = th_recv_start(&ro);
    CHECK(r != NULL);
    const char *cfg = config_for(th_recv_url(r), NULL);
    char events[N * 64], *p = events;
    for (int i = 0; i < N; i++)
        p += sprintf(p, "{\"event\": \"call.ended\", \"data\": {\"n\": %d}}\n", i);
    const char *in = tmp_write("events.ndjson", events);

    const char *args[] = {"-c", cfg, "-q", "-", NULL};
    run x = run_whsend(args, in, 30000);
    CHECK_STATUS(x, 0);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, N);
    CHECK_EQ(s.delivered, N);
    CHECK_EQ(s.dead, 0);
    CHECK_EQ(s.rejected, 0);
    CHECK_EQ(s.requests, 3 * N);
    CHECK_EQ(s.retries, 2 * N);
    CHECK_INT(x.ms, <, 12000);

    CHECK_EQ(th_recv_count(r), 3 * N);
    /* group the requests by webhook-id, in arrival order */
    th_recv_req q[3 * N];
    for (size_t i = 0; i < 3 * N; i++) CHECK_EQ(th_recv_get(r, i, &q[i]), 0);
    int groups = 0;
    for (size_t i = 0; i < 3 * N; i++) {
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(q[j].webhook_id, q[i].webhook_id) == 0) first = 0;
        if (!first) continue;
        groups++;
        const th_recv_req *att[3];
        int k = 0;
        for (size_t j = i; j < 3 * N; j++)
            if (strcmp(q[j].webhook_id, q[i].webhook_id) == 0) {
                CHECK(k < 3);
                att[k++] = &q[j];
            }
        CHECK_EQ(k, 3);
        CHECK_STR(att[0]->attempt, "1");
        CHECK_STR(att[1]->attempt, "2");
        CHECK_STR(att[2]->attempt, "3");
        CHECK_EQ(att[0]->answered, 503);
        CHECK_EQ(att[1]->answered, 503);
        CHECK_EQ(att[2]->answered, 200);
        CHECK_STR(att[0]->body, att[2]->body);
        int64_t g1 = att[1]->at_ms - att[0]->at_ms, g2 = att[2]->at_ms - att[1]->at_ms;
        CHECK_INT(g1, >=, 1990);
        CHECK_INT(g1, <, 3500);
        CHECK_INT(g2, >=, 3990);
        CHECK_INT(g2, <, 5500);
    }
    CHECK_EQ(groups, N);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* A port on 127.0.0.1 that nothing listens on. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    CHECK_EQ(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* (c) Nobody listening: every event is dead-lettered after 2 attempts. */
static void test_no_receiver_dead(void)
{
    enum { N = 4 };
    tmp_init();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", closed_port());
    const char *cfg = config_for(url, "\"max_attempts\": 2, \"retry\": {\"initial_ms\": 100}");
    const char *in = tmp_write("events.ndjson",
                               "{\"event\": \"a\", \"data\": 1}\n"
                               "{\"event\": \"b\", \"data\": \"two\"}\n"
                               "{\"event\": \"c\", \"data\": null, \"id\": \"evt-c\"}\n"
                               "{\"event\": \"d\", \"data\": [4], \"channel\": \"x\"}\n");
    const char *args[] = {"-c", cfg, in, NULL};
    run x = run_whsend(args, NULL, 30000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, N);
    CHECK_EQ(s.delivered, 0);
    CHECK_EQ(s.dead, N);
    CHECK_EQ(s.rejected, 0);
    CHECK_EQ(s.requests, 2 * N);
    CHECK_EQ(s.retries, N);
    CHECK_CONTAINS(x.err, "evt-c");
    CHECK_INT(x.ms, <, 10000);
    run_free(&x);
    tmp_cleanup();
}

/* (d) Bad lines are reported with their number and counted; the good ones
 * are delivered. */
static void test_malformed_lines(void)
{
    tmp_init();
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    const char *cfg = config_for(th_recv_url(r), NULL);
    const char *in = tmp_write("events.ndjson",
                               "{\"event\": \"one\", \"data\": {\"k\": 1}}\n"
                               "this is not JSON\n"
                               "{\"event\": \"three\", \"data\": {\"k\": 3}}\r\n"
                               "{\"channel\": \"room\", \"data\": {}}\n"
                               "\n"
                               "   \n"
                               "{\"event\": \"seven\", \"data\": {\"k\": 7}}"); /* no final \n */
    const char *args[] = {"-q", "-c", cfg, in, NULL};
    run x = run_whsend(args, NULL, 30000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, 3);
    CHECK_EQ(s.delivered, 3);
    CHECK_EQ(s.dead, 0);
    CHECK_EQ(s.rejected, 2);
    CHECK_EQ(s.requests, 3);
    CHECK_CONTAINS(x.err, "line 2:");
    CHECK_CONTAINS(x.err, "line 4:");
    CHECK_CONTAINS(x.err, "\"event\"");
    CHECK(strstr(x.err, "line 1:") == NULL);
    CHECK(strstr(x.err, "line 3:") == NULL);
    CHECK(strstr(x.err, "line 5:") == NULL);
    CHECK(strstr(x.err, "line 6:") == NULL);
    CHECK(strstr(x.err, "line 7:") == NULL);
    CHECK_EQ(th_recv_count(r), 3);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* Lines of the common shape are read by whsend's scanner, the others by
 * the full JSON parser: both must accept and refuse the same lines, and
 * pass the payload on byte for byte. */
static void test_fast_and_full_parse_agree(void)
{
    tmp_init();
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    const char *cfg = config_for(th_recv_url(r), NULL);
    const char *in = tmp_write("events.ndjson",
                               "{\"event\":\"a\",\"data\":{\"x\":1]}}\n"            /* 1 bad data */
                               "{\"event\":\"a\",\"data\":{\"x\":1}} trailing\n"    /* 2 */
                               "{\"event\":\"a\",\"data\":{\"x\":1},}\n"            /* 3 */
                               "{\"event\":\"a\",\"data\":[1,2] , \"channel\":\"c\"}\n"
                               "{\"event\":\"a\\u0062\",\"data\":1}\n"              /* 5 escape */
                               "{\"data\":\"s\",\"event\":\"b\",\"id\":\"evt-1\"}\n"
                               "{\"event\":\"c\",\"data\":tru}\n"                   /* 7 */
                               "{\"event\":\"d\",\"data\":{},\"event\":\"e\"}\n"    /* 8 dup */
                               "{\"event\":\"f\",\"data\":12345678901234567890}\n"
                               "{\"event\":\"g\",\"data\":{\"s\":\"a\\\"}b\"}}\n"
                               "{\"event\":\"h\",\"channel\":null,\"data\":{}}\n"
                               "{\"event\":\"i\",\"data\":{}\n");                   /* 12 */
    const char *args[] = {"-q", "-c", cfg, in, NULL};
    run x = run_whsend(args, NULL, 30000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, 6);
    CHECK_EQ(s.delivered, 6);
    CHECK_EQ(s.rejected, 6);
    static const int bad[] = {1, 2, 3, 7, 8, 12}, good[] = {4, 5, 6, 9, 10, 11};
    char tag[32];
    for (size_t i = 0; i < 6; i++) {
        snprintf(tag, sizeof tag, "line %d:", bad[i]);
        CHECK_CONTAINS(x.err, tag);
        snprintf(tag, sizeof tag, "line %d:", good[i]);
        CHECK(strstr(x.err, tag) == NULL);
    }
    CHECK_EQ(th_recv_wait(r, 6, 5000), 6);
    static const char *const bodies[] = {"[1,2]", "1", "\"s\"", "12345678901234567890",
                                         "{\"s\":\"a\\\"}b\"}", "{}"};
    for (size_t b = 0; b < 6; b++) {
        int found = 0;
        for (size_t i = 0; i < 6; i++) {
            th_recv_req q;
            CHECK_EQ(th_recv_get(r, i, &q), 0);
            if (strcmp(q.body, bodies[b]) == 0) found++;
        }
        if (found != 1) th_fail(__FILE__, __LINE__, "body %s arrived %d times", bodies[b], found);
    }
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* (e) A configuration error: exit 2, the key named, no summary. */
static void test_config_error(void)
{
    tmp_init();
    const char *cfg = tmp_write("config.json",
                                "{\"endpoints\": [{\"url\": \"http://127.0.0.1:9/x\","
                                " \"urll\": \"http://127.0.0.1:9/y\"}]}");
    const char *args[] = {"-c", cfg, NULL};
    run x = run_whsend(args, NULL, 30000);
    CHECK_STATUS(x, 2);
    CHECK_CONTAINS(x.err, "\"urll\"");
    CHECK_CONTAINS(x.err, "endpoints[0]");
    CHECK_STR(x.out, "");
    run_free(&x);

    /* a configuration file that does not exist */
    const char *missing = tmp_path("missing.json");
    const char *args2[] = {"-c", missing, NULL};
    x = run_whsend(args2, NULL, 30000);
    CHECK_STATUS(x, 2);
    CHECK_CONTAINS(x.err, missing);
    CHECK_STR(x.out, "");
    run_free(&x);
    tmp_cleanup();
}

/* (f) Usage errors: exit 2 with a message; -h: usage on stdout, exit 0. */
static void test_usage(void)
{
    tmp_init();
    const char *no_c[] = {NULL};
    run x = run_whsend(no_c, NULL, 30000);
    CHECK_STATUS(x, 2);
    CHECK_CONTAINS(x.err, "-c");
    CHECK_CONTAINS(x.err, "usage");
    CHECK_STR(x.out, "");
    run_free(&x);

    const char *bad_opt[] = {"-c", "x.json", "--bogus", NULL};
    x = run_whsend(bad_opt, NULL, 30000);
    CHECK_STATUS(x, 2);
    CHECK_CONTAINS(x.err, "--bogus");
    run_free(&x);

    const char *bad_drain[] = {"-c", "x.json", "--drain-timeout", "soon", NULL};
    x = run_whsend(bad_drain, NULL, 30000);
    CHECK_STATUS(x, 2);
    CHECK_CONTAINS(x.err, "--drain-timeout");
    run_free(&x);

    const char *two_inputs[] = {"-c", "x.json", "a", "b", NULL};
    x = run_whsend(two_inputs, NULL, 30000);
    CHECK_STATUS(x, 2);
    run_free(&x);

    const char *help[] = {"--help", NULL};
    x = run_whsend(help, NULL, 30000);
    CHECK_STATUS(x, 0);
    CHECK_CONTAINS(x.out, "usage");
    run_free(&x);
    tmp_cleanup();
}

/* --drain-timeout bounds the wait for a hanging endpoint; what is left is
 * reported dead. */
static void test_drain_timeout(void)
{
    tmp_init();
    th_recv_opts ro = {0};
    ro.hang = 1;
    th_recv *r = th_recv_start(&ro);
    CHECK(r != NULL);
    const char *cfg = config_for(th_recv_url(r), "\"timeout_ms\": 20000");
    const char *in = tmp_write("events.ndjson",
                               "{\"event\": \"a\", \"data\": 1}\n"
                               "{\"event\": \"b\", \"data\": 2}\n");
    const char *args[] = {"-c", cfg, "--drain-timeout", "500", NULL};
    run x = run_whsend(args, in, 30000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, 2);
    CHECK_EQ(s.delivered, 0);
    CHECK_EQ(s.dead, 2);
    CHECK_EQ(s.rejected, 0);
    CHECK_INT(x.ms, >=, 450);
    CHECK_INT(x.ms, <, 10000);
    CHECK_CONTAINS(x.err, "drain timeout");
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* Done-when 4 (issue 10): a batch linger of 1 s fires on time while the
 * input is an open, idle pipe.  A warm-up event to a second endpoint shows
 * that whsend is up and reading; then three events for the batching
 * endpoint are written and the pipe stays open with nothing more.
 * Bounds from the mechanism: the linger starts when whsend emits the first
 * of them, after t0, so the batch cannot arrive before t0 + 1000 ms (990:
 * millisecond rounding of two clocks); it leaves when whsend's poll(2) on
 * the pipe times out at wh_timeout_ms, i.e. at the linger's end, so it is
 * late only by process wake-up latency: 200 ms covers a loaded 2-core
 * machine.  (Before: read() blocked and the batch left only at EOF.) */
static void test_idle_pipe_batch_linger_on_time(void)
{
    tmp_init();
    th_recv *warm = th_recv_start(NULL), *r = th_recv_start(NULL);
    CHECK(warm && r);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"endpoints\": [{\"id\": \"now\", \"url\": \"%s\", \"event_types\": [\"warmup\"]},"
             " {\"id\": \"batched\", \"url\": \"%s\", \"event_types\": [\"tick\"],"
             " \"batch\": {\"max_events\": 100, \"linger_ms\": 1000}}]}",
             th_recv_url(warm), th_recv_url(r));
    const char *path = tmp_write("config.json", cfg);
    const char *args[] = {"-q", "-c", path, NULL};
    piped p = start_piped(args);
    piped_write(&p, "{\"event\": \"warmup\", \"data\": 0}\n");
    CHECK_EQ(th_recv_wait(warm, 1, 20000), 1);
    int64_t t0 = th_now_ms();
    piped_write(&p, "{\"event\": \"tick\", \"data\": 1}\n{\"event\": \"tick\", \"data\": 2}\n"
                    "{\"event\": \"tick\", \"data\": 3}\n");
    CHECK_EQ(th_recv_wait(r, 1, 5000), 1);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    int64_t dt = q.at_ms - t0;
    printf("    batch arrived %lld ms after the events were written\n", (long long)dt);
    CHECK_INT(dt, >=, 990);
    CHECK_INT(dt, <=, 1200);
    CHECK(strstr(q.body, "1") && strstr(q.body, "2") && strstr(q.body, "3"));
    CHECK(piped_running(&p)); /* the pipe is still open: whsend waits for more */
    run x = piped_finish(&p, 0, 20000);
    CHECK_STATUS(x, 0);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, 4);
    CHECK_EQ(s.delivered, 4);
    CHECK_EQ(s.requests, 2);
    CHECK_EQ(th_recv_count(r), 1);
    th_recv_stop(warm);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* Done-when 4: a retry due 2 s after a 503 is sent on time while the input
 * is an open, idle pipe.  Bounds: the retry is scheduled 2000 ms after the
 * engine handled the 503 (retry_initial_ms 2000, no jitter), so the gap
 * between the two arrivals is at least 2000 ms (1990: rounding); the 503
 * is handled within one SLICE_MS (5 ms) wh_poll slice of its arrival, since
 * a request was in flight; then nothing is in flight and whsend sleeps in
 * poll(2) exactly until wh_timeout_ms: 300 ms covers the slice and wake-up
 * latency on a loaded machine.  (Before: 6.0 s.) */
static void test_idle_pipe_retry_on_time(void)
{
    tmp_init();
    th_recv_opts ro = {0};
    ro.fail_first = 1;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *cfg =
        config_for(th_recv_url(r), "\"retry\": {\"initial_ms\": 2000, \"jitter\": \"none\"}");
    const char *args[] = {"-q", "-c", cfg, NULL};
    piped p = start_piped(args);
    piped_write(&p, "{\"event\": \"call.ended\", \"data\": {\"n\": 1}}\n");
    CHECK_EQ(th_recv_wait(r, 2, 20000), 2);
    th_recv_req q0, q1;
    CHECK_EQ(th_recv_get(r, 0, &q0), 0);
    CHECK_EQ(th_recv_get(r, 1, &q1), 0);
    CHECK_EQ(q0.answered, 503);
    CHECK_STR(q1.attempt, "2");
    int64_t gap = q1.at_ms - q0.at_ms;
    printf("    retry sent %lld ms after the first attempt\n", (long long)gap);
    CHECK_INT(gap, >=, 1990);
    CHECK_INT(gap, <=, 2300);
    CHECK(piped_running(&p));
    run x = piped_finish(&p, 0, 20000);
    CHECK_STATUS(x, 0);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.delivered, 1);
    CHECK_EQ(s.retries, 1);
    CHECK_EQ(s.requests, 2);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* A 1 s request timeout ends after 1 s while the input is an open, idle
 * pipe (before: 5 s).  Bounds: the timeout counts from the request's start,
 * which is before the receiver recorded its arrival, so the dead line
 * comes at most 1000 ms after the arrival plus one wh_poll slice (5 ms),
 * the time to write the line and this test's 2 ms polling of the file:
 * 400 ms covers that on a loaded machine.  The request starts after the
 * test wrote the event, so the line cannot come earlier than 1000 ms after
 * that write (990: millisecond rounding). */
static void test_idle_pipe_timeout_on_time(void)
{
    tmp_init();
    th_recv_opts ro = {0};
    ro.hang = 1;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *cfg = config_for(th_recv_url(r), "\"timeout_ms\": 1000, \"max_attempts\": 1");
    const char *args[] = {"-c", cfg, NULL};
    piped p = start_piped(args);
    int64_t t0 = th_now_ms();
    piped_write(&p, "{\"event\": \"a\", \"data\": 1, \"id\": \"evt-timeout\"}\n");
    CHECK_EQ(th_recv_wait(r, 1, 20000), 1);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    int64_t seen = wait_stderr(&p, "dead: event evt-timeout", 10000);
    CHECK_INT(seen, >=, 0);
    int64_t dt = seen - q.at_ms;
    printf("    timed out %lld ms after the request arrived\n", (long long)dt);
    CHECK_INT(seen - t0, >=, 990);
    CHECK_INT(dt, <=, 1400);
    run x = piped_finish(&p, 0, 20000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.dead, 1);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* The first SIGINT stops reading (the pipe stays open) and drains: every
 * pending event is delivered and whsend exits 0.  max_in_flight 2 and a
 * 100 ms answer make 20 events take about 1 s, so most are pending when
 * the signal comes (after the first arrival; the 20 lines are one pipe
 * write, read and emitted in one chunk before the first request). */
static void test_sigint_drains(void)
{
    enum { N = 20 };
    tmp_init();
    th_recv_opts ro = {0};
    ro.delay_ms = 100;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *cfg = config_for(th_recv_url(r), "\"max_in_flight\": 2");
    const char *args[] = {"-c", cfg, NULL};
    piped p = start_piped(args);
    char lines[N * 64], *w = lines;
    for (int i = 0; i < N; i++) w += sprintf(w, "{\"event\": \"e\", \"data\": {\"n\": %d}}\n", i);
    piped_write(&p, lines);
    CHECK_INT(th_recv_wait(r, 1, 20000), >=, 1);
    CHECK_EQ(kill(p.pid, SIGINT), 0);
    run x = piped_finish(&p, 1, 30000); /* the input stays open */
    CHECK_STATUS(x, 0);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, N);
    CHECK_EQ(s.delivered, N);
    CHECK_EQ(s.dead, 0);
    CHECK_EQ(th_recv_count(r), N);
    CHECK_CONTAINS(x.err, "interrupted: not reading further input; draining");
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* A second SIGINT aborts the drain: what is pending is dead-lettered
 * (written to --dead-letter) and the counts are reported.  The receiver
 * never answers, so nothing can finish by itself.  After the first signal
 * whsend keeps running (draining); after the second it stops within one
 * drain slice (100 ms) plus the teardown: 5 s is far beyond both. */
static void test_second_sigint_aborts(void)
{
    enum { N = 5 };
    tmp_init();
    th_recv_opts ro = {0};
    ro.hang = 1;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *cfg = config_for(th_recv_url(r), "\"timeout_ms\": 30000");
    const char *dl = tmp_path("dead.ndjson");
    const char *args[] = {"-c", cfg, "--dead-letter", dl, NULL};
    piped p = start_piped(args);
    char lines[N * 64], *w = lines;
    for (int i = 0; i < N; i++) w += sprintf(w, "{\"event\": \"e\", \"data\": {\"n\": %d}}\n", i);
    piped_write(&p, lines);
    CHECK_EQ(th_recv_wait(r, N, 20000), N);
    CHECK_EQ(kill(p.pid, SIGINT), 0);
    CHECK_INT(wait_stderr(&p, "draining 5 pending deliveries", 10000), >=, 0);
    CHECK(piped_running(&p));
    int64_t t1 = th_now_ms();
    CHECK_EQ(kill(p.pid, SIGINT), 0);
    run x = piped_finish(&p, 1, 30000);
    CHECK_INT(th_now_ms() - t1, <, 5000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, N);
    CHECK_EQ(s.delivered, 0);
    CHECK_EQ(s.dead, N);
    CHECK_CONTAINS(x.err, "aborted by a second signal with 5 deliveries pending "
                          "(0 queued, 5 in flight); they are dead-lettered");
    char *d = read_all(dl);
    int lines_in_dl = 0;
    for (const char *c = d; *c; c++) lines_in_dl += *c == '\n';
    CHECK_EQ(lines_in_dl, N);
    free(d);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* Endpoint health changes are reported on stderr, one line each, unless
 * -q: a 410 disables the endpoint; a 503 with breaker_failures 1 pauses
 * the other, and the successful probe after the cool-down resumes it. */
static void test_health_lines(void)
{
    tmp_init();
    th_recv_opts gone = {0};
    gone.status = 410;
    th_recv *r410 = th_recv_start(&gone);
    th_recv_opts flaky = {0};
    flaky.fail_first = 1;
    th_recv *r503 = th_recv_start(&flaky);
    CHECK(r410 && r503);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"endpoints\": [{\"id\": \"gone\", \"url\": \"%s\"},"
             " {\"id\": \"flaky\", \"url\": \"%s\", \"retry\": {\"initial_ms\": 100},"
             " \"health\": {\"breaker_failures\": 1, \"breaker_cooldown_ms\": 300}}]}",
             th_recv_url(r410), th_recv_url(r503));
    const char *path = tmp_write("config.json", cfg);
    const char *in = tmp_write("events.ndjson", "{\"event\": \"e\", \"data\": 1}\n");
    /* the disabled endpoint keeps its job: the drain timeout ends the run */
    const char *args[] = {"-c", path, "--drain-timeout", "2000", in, NULL};
    run x = run_whsend(args, NULL, 30000);
    CHECK_STATUS(x, 1);
    CHECK_CONTAINS(x.err, "endpoint gone disabled (was active, HTTP 410)");
    CHECK_CONTAINS(x.err, "endpoint flaky paused (was active, HTTP 503");
    CHECK_CONTAINS(x.err, "endpoint flaky resumed (was ");
    summary s = parse_summary(x.out);
    CHECK_EQ(s.delivered, 1);
    CHECK_EQ(th_recv_count(r503), 2);
    run_free(&x);

    const char *quiet[] = {"-q", "-c", path, "--drain-timeout", "2000", in, NULL};
    x = run_whsend(quiet, NULL, 30000);
    CHECK_STATUS(x, 1);
    CHECK(strstr(x.err, "endpoint ") == NULL);
    run_free(&x);
    th_recv_stop(r410);
    th_recv_stop(r503);
    tmp_cleanup();
}

/* Issue 15 F4: a NUL character in "event", "channel" or "id" (\u0000, or a
 * raw byte) is refused by name, never cut short: cutting gave two
 * different events the same webhook-id.  NUL inside "data" is fine (the
 * payload is passed on as JSON text). */
static void test_nul_in_fields_refused(void)
{
    tmp_init();
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    const char *cfg = config_for(th_recv_url(r), NULL);
    const char *in = tmp_write("events.ndjson",
                               "{\"event\": \"a\\u0000b\", \"data\": 1}\n"
                               "{\"event\": \"ok\", \"channel\": \"c\\u0000d\", \"data\": 2}\n"
                               "{\"event\": \"ok\", \"data\": 3, \"id\": \"evt-1\\u0000x\"}\n"
                               "{\"event\": \"ok\", \"data\": 4, \"id\": \"evt-1\"}\n"
                               "{\"event\": \"ok\\\\u0000\", \"data\": {\"s\": \"x\\u0000y\"}}\n");
    const char *args[] = {"-q", "-c", cfg, in, NULL};
    run x = run_whsend(args, NULL, 30000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.rejected, 3);
    CHECK_EQ(s.emitted, 2);
    CHECK_EQ(s.delivered, 2);
    CHECK_CONTAINS(x.err, "line 1: \"event\" contains a NUL character");
    CHECK_CONTAINS(x.err, "line 2: \"channel\" contains a NUL character");
    CHECK_CONTAINS(x.err, "line 3: \"id\" contains a NUL character");
    CHECK(strstr(x.err, "line 4:") == NULL);
    CHECK(strstr(x.err, "line 5:") == NULL);
    CHECK_EQ(th_recv_count(r), 2);
    th_recv_req q;
    int evt1 = 0;
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ(th_recv_get(r, i, &q), 0);
        evt1 += strcmp(q.webhook_id, "evt-1") == 0;
    }
    CHECK_EQ(evt1, 1);
    run_free(&x);

    /* a raw NUL byte inside "id" */
    static const char raw[] = "{\"event\": \"ok\", \"data\": 5, \"id\": \"evt-2\0y\"}\n";
    const char *rawp = tmp_path("raw.ndjson");
    FILE *f = fopen(rawp, "wb");
    CHECK(f);
    CHECK_EQ(fwrite(raw, 1, sizeof raw - 1, f), sizeof raw - 1);
    CHECK_EQ(fclose(f), 0);
    const char *args2[] = {"-q", "-c", cfg, rawp, NULL};
    x = run_whsend(args2, NULL, 30000);
    CHECK_STATUS(x, 1);
    s = parse_summary(x.out);
    CHECK_EQ(s.emitted, 0);
    CHECK_EQ(s.rejected, 1);
    CHECK_CONTAINS(x.err, "line 1:");
    CHECK_EQ(th_recv_count(r), 2);
    run_free(&x);
    th_recv_stop(r);
    tmp_cleanup();
}

/* Input read in chunks: the engine gets the lines of a chunk at once and
 * starts max_in_flight requests together.  With a 100 ms answer, 8 slots
 * and 64 events, the receiver must see exactly 8 requests at the same
 * moment (never more: the engine's limit). */
static void test_keeps_max_in_flight_busy(void)
{
    enum { N = 64 };
    tmp_init();
    th_recv_opts ro = {0};
    ro.delay_ms = 100;
    th_recv *r = th_recv_start(&ro);
    CHECK(r);
    const char *cfg = config_for(th_recv_url(r), "\"max_in_flight\": 8");
    char events[N * 64], *p = events;
    for (int i = 0; i < N; i++) p += sprintf(p, "{\"event\": \"e\", \"data\": %d}\n", i);
    const char *in = tmp_write("events.ndjson", events);
    const char *args[] = {"-q", "-c", cfg, in, NULL};
    run x = run_whsend(args, NULL, 30000);
    CHECK_STATUS(x, 0);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.delivered, N);
    CHECK_EQ(th_recv_max_concurrent(r), 8);
    th_recv_stop(r);
    run_free(&x);
    tmp_cleanup();
}

/* --ssrf-guard: the receiver on 127.0.0.1 gets no request, the delivery is
 * dead at once (never retried) and the reason names the loopback rule; the
 * same run without the flag delivers (so the refusal is the flag's doing). */
static void test_ssrf_guard_flag(void)
{
    tmp_init();
    th_recv *r = th_recv_start(NULL);
    CHECK(r != NULL);
    const char *cfg = config_for(th_recv_url(r), "\"max_attempts\": 3");
    const char *in = tmp_write("events.ndjson", "{\"event\": \"one\", \"data\": {}}\n");
    const char *guarded[] = {"-c", cfg, "--ssrf-guard", in, NULL};
    run x = run_whsend(guarded, NULL, 30000);
    CHECK_STATUS(x, 1);
    summary s = parse_summary(x.out);
    CHECK_EQ(s.emitted, 1);
    CHECK_EQ(s.delivered, 0);
    CHECK_EQ(s.dead, 1);
    CHECK_EQ(s.retries, 0);
    CHECK_CONTAINS(x.err, "loopback");
    CHECK_EQ(th_recv_count(r), 0);
    run_free(&x);
    const char *open_args[] = {"-q", "-c", cfg, in, NULL};
    run y = run_whsend(open_args, NULL, 30000);
    CHECK_STATUS(y, 0);
    CHECK_EQ(parse_summary(y.out).delivered, 1);
    CHECK_EQ(th_recv_count(r), 1);
    run_free(&y);
    th_recv_stop(r);
    tmp_cleanup();
}

TH_MAIN(TH_CASE(test_deliver_200_signed), TH_CASE(test_retries_same_id),
        TH_CASE(test_no_receiver_dead), TH_CASE(test_malformed_lines),
        TH_CASE(test_config_error), TH_CASE(test_usage), TH_CASE(test_drain_timeout),
        TH_CASE(test_idle_pipe_batch_linger_on_time), TH_CASE(test_idle_pipe_retry_on_time),
        TH_CASE(test_idle_pipe_timeout_on_time), TH_CASE(test_sigint_drains),
        TH_CASE(test_second_sigint_aborts), TH_CASE(test_health_lines),
        TH_CASE(test_nul_in_fields_refused), TH_CASE(test_keeps_max_in_flight_busy),
        TH_CASE(test_ssrf_guard_flag), TH_CASE(test_fast_and_full_parse_agree))
