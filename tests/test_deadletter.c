/* whsend --dead-letter: every dead event is appended as an input line, and
 * feeding the file back to whsend against a healthy receiver delivers every
 * one of them, byte for byte, under the same delivery id.  whsend runs as a
 * child process (WH_BIN, else build/bin) against receivers on
 * 127.0.0.1. */
#include "harness.h"
#include "http_receiver.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static const char *path_in(const char *name)
{
    static char bufs[8][128];
    static int k;
    char *p = bufs[k++ % 8];
    snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(text, 1, strlen(text), f), strlen(text));
    CHECK_EQ(fclose(f), 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) th_fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
    char *s = th_slurp(f);
    fclose(f);
    return s;
}

/* Run whsend with the given arguments (shell words, paths without spaces);
 * returns its exit status. */
static int whsend(const char *args)
{
    const char *ex = getenv("WH_BIN");
    if (!ex || !*ex) ex = "build/bin";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/whsend -q %s >%s 2>%s", ex, args, path_in("out"),
             path_in("err"));
    fflush(stdout);
    int st = system(cmd);
    CHECK(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void write_config(const char *name, const char *url, const char *extra)
{
    char buf[512];
    snprintf(buf, sizeof buf, "{\"endpoints\": [{\"url\": \"%s\"%s%s}]}\n", url,
             extra ? ", " : "", extra ? extra : "");
    write_file(path_in(name), buf);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Each line is an object with only the keys whsend reads. */
static void check_lines(const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL);
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
        if (!cJSON_IsObject(j)) th_fail(__FILE__, __LINE__, "bad line: %.*s", (int)(nl - p), p);
        for (const cJSON *it = j->child; it; it = it->next)
            CHECK(strcmp(it->string, "event") == 0 || strcmp(it->string, "channel") == 0 ||
                  strcmp(it->string, "data") == 0 || strcmp(it->string, "id") == 0);
        CHECK(cJSON_GetObjectItemCaseSensitive(j, "id") != NULL);
        cJSON_Delete(j);
        p = nl + 1;
    }
}

static const char events[] =
    "{\"event\": \"a.b\", \"data\": {\"big\": 12345678901234567890, \"s\": \"q\\\"uote\\\\n\"}, "
    "\"id\": \"evt-1\"}\n"
    "{\"event\": \"t\\u00e9\\\"x\\ty\", \"channel\": \"room-1\", \"data\": [1, 2, 3]}\n"
    "{\"event\": \"c\", \"data\": \"str\", \"channel\": null}\n"
    "{\"event\": \"d\", \"data\": null, \"id\": \"evt-4\"}\n"
    "{\"event\": \"e\", \"data\": {\"unicode\": \"\\u2603 snow\"}, \"channel\": \"x/y\"}\n";
enum { N_EVENTS = 5 };

static void test_dead_letters_replay(void)
{
    snprintf(dir, sizeof dir, "/tmp/whdlXXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    th_recv_opts failing = {.status = 500};
    th_recv *bad = th_recv_start(&failing);
    th_recv *good = th_recv_start(NULL);
    CHECK(bad && good);
    write_file(path_in("events.ndjson"), events);
    write_config("bad.json", th_recv_url(bad),
                 "\"max_attempts\": 2, \"retry\": {\"initial_ms\": 50}");
    write_config("good.json", th_recv_url(good), NULL);

    char args[512];
    snprintf(args, sizeof args, "-c %s --dead-letter %s %s", path_in("bad.json"),
             path_in("dead.ndjson"), path_in("events.ndjson"));
    CHECK_EQ(whsend(args), 1);
    CHECK_EQ(th_recv_count(bad), 2 * N_EVENTS);
    char *dead = read_file(path_in("dead.ndjson"));
    CHECK_EQ(count_lines(dead), N_EVENTS);
    check_lines(dead);

    /* replay: every dead event delivered, same id, same body */
    snprintf(args, sizeof args, "-c %s %s", path_in("good.json"), path_in("dead.ndjson"));
    int rc = whsend(args);
    if (rc != 0) {
        char *err = read_file(path_in("err"));
        th_fail(__FILE__, __LINE__, "replay exit %d: %s", rc, err);
    }
    char *out = read_file(path_in("out"));
    CHECK(strstr(out, "\"delivered\":5,") != NULL);
    free(out);
    CHECK_EQ(th_recv_count(good), N_EVENTS);
    for (size_t i = 0; i < N_EVENTS; i++) {
        th_recv_req g;
        CHECK_EQ(th_recv_get(good, i, &g), 0);
        int found = 0;
        for (size_t k = 0; k < th_recv_count(bad); k++) {
            th_recv_req b;
            CHECK_EQ(th_recv_get(bad, k, &b), 0);
            if (strcmp(b.webhook_id, g.webhook_id) != 0) continue;
            CHECK_EQ(b.body_len, g.body_len);
            CHECK(memcmp(b.body, g.body, b.body_len) == 0);
            found = 1;
        }
        if (!found) th_fail(__FILE__, __LINE__, "id %s never went to the first receiver",
                            g.webhook_id);
        for (size_t k = 0; k < i; k++) {
            th_recv_req o;
            th_recv_get(good, k, &o);
            CHECK(strcmp(o.webhook_id, g.webhook_id) != 0);
        }
    }
    /* appended, not overwritten */
    snprintf(args, sizeof args, "-c %s --dead-letter %s %s", path_in("bad.json"),
             path_in("dead.ndjson"), path_in("events.ndjson"));
    CHECK_EQ(whsend(args), 1);
    char *dead2 = read_file(path_in("dead.ndjson"));
    CHECK_EQ(count_lines(dead2), 2 * N_EVENTS);
    free(dead2);
    free(dead);
    th_recv_stop(bad);
    th_recv_stop(good);
    unlink(path_in("events.ndjson"));
    unlink(path_in("bad.json"));
    unlink(path_in("good.json"));
    unlink(path_in("dead.ndjson"));
    unlink(path_in("out"));
    unlink(path_in("err"));
    CHECK_EQ(rmdir(dir), 0);
}

/* Deliveries still pending when whsend gives up (drain timeout) are
 * dead-lettered too, so nothing is lost; an unwritable file is a usage
 * error before anything is sent. */
static void test_pending_at_exit_and_bad_path(void)
{
    snprintf(dir, sizeof dir, "/tmp/whdlXXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    th_recv_opts hang = {.hang = 1};
    th_recv *r = th_recv_start(&hang);
    CHECK(r);
    write_file(path_in("events.ndjson"), events);
    write_config("hang.json", th_recv_url(r), "\"timeout_ms\": 60000");
    char args[512];
    snprintf(args, sizeof args, "-c %s --drain-timeout 300 --dead-letter %s %s",
             path_in("hang.json"), path_in("dead.ndjson"), path_in("events.ndjson"));
    CHECK_EQ(whsend(args), 1);
    char *dead = read_file(path_in("dead.ndjson"));
    CHECK_EQ(count_lines(dead), N_EVENTS);
    check_lines(dead);
    free(dead);

    snprintf(args, sizeof args, "-c %s --dead-letter %s/no/such/dir %s", path_in("hang.json"),
             dir, path_in("events.ndjson"));
    CHECK_EQ(whsend(args), 2);
    char *err = read_file(path_in("err"));
    CHECK(strstr(err, "no/such/dir") != NULL);
    free(err);
    th_recv_stop(r);
    unlink(path_in("events.ndjson"));
    unlink(path_in("hang.json"));
    unlink(path_in("dead.ndjson"));
    unlink(path_in("out"));
    unlink(path_in("err"));
    CHECK_EQ(rmdir(dir), 0);
}

TH_MAIN(TH_CASE(test_dead_letters_replay), TH_CASE(test_pending_at_exit_and_bad_path))
