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

TH_MAIN(TH_CASE(test_deliver_200_signed), TH_CASE(test_retries_same_id),
        TH_CASE(test_no_receiver_dead), TH_CASE(test_malformed_lines),
        TH_CASE(test_config_error), TH_CASE(test_usage), TH_CASE(test_drain_timeout))
