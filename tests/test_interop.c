/* whsend against a receiver written independently of this project
 * (tests/independent_receiver.py: Python standard library only) that
 * verifies every Standard Webhooks signature. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static const char *examples_dir(void)
{
    const char *d = getenv("WH_EXAMPLES");
    return d && *d ? d : "build/examples";
}

static const char *source_dir(void)
{
    const char *d = getenv("WH_SOURCE_DIR");
    return d && *d ? d : ".";
}

static int extract(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\":", key);
        p = strstr(json, pat);
    }
    CHECK(p != NULL);
    return atoi(p + strlen(pat));
}

static void test_whsend_10000_to_independent_receiver(void)
{
    char tmp[] = "/tmp/whinteropXXXXXX";
    CHECK(mkdtemp(tmp));
    char script[512], cfg[600], events[600], out[600];
    snprintf(script, sizeof script, "%s/tests/independent_receiver.py", source_dir());
    snprintf(cfg, sizeof cfg, "%s/config.json", tmp);
    snprintf(events, sizeof events, "%s/events.ndjson", tmp);
    snprintf(out, sizeof out, "%s/out.json", tmp);

    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t rp = fork();
    CHECK(rp >= 0);
    if (rp == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execlp("python3", "python3", script, SECRET, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *rf = fdopen(pfd[0], "r");
    char line[128] = "";
    CHECK(fgets(line, sizeof line, rf) != NULL);
    int port = 0;
    CHECK(sscanf(line, "listening %d", &port) == 1 && port > 0);

    FILE *f = fopen(cfg, "w");
    CHECK(f);
    fprintf(f, "{\"endpoints\":[{\"id\":\"indep\",\"url\":\"http://127.0.0.1:%d/hook\","
               "\"secret\":\"%s\",\"max_in_flight\":16}]}", port, SECRET);
    fclose(f);
    f = fopen(events, "w");
    CHECK(f);
    for (int i = 0; i < 10000; i++)
        fprintf(f, "{\"event\":\"message.sent\",\"channel\":\"room-%d\",\"data\":"
                   "{\"seq\":%d,\"text\":\"h\\u00e9llo \\\"w\\\"\",\"n\":[1,2.5,null]}}\n",
                i % 7, i);
    fclose(f);

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/whsend -q -c %s %s > %s", examples_dir(), cfg, events,
             out);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc));
    CHECK_EQ(WEXITSTATUS(rc), 0);
    f = fopen(out, "r");
    CHECK(f);
    char summary[512] = "";
    CHECK(fgets(summary, sizeof summary, f) != NULL);
    fclose(f);
    CHECK_EQ(extract(summary, "emitted"), 10000);
    CHECK_EQ(extract(summary, "delivered"), 10000);
    CHECK_EQ(extract(summary, "dead"), 0);
    CHECK_EQ(extract(summary, "rejected"), 0);

    char stats[512] = "";
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import urllib.request;print(urllib.request.urlopen("
             "'http://127.0.0.1:%d/stats').read().decode())\" > %s", port, out);
    CHECK(system(cmd) == 0);
    f = fopen(out, "r");
    CHECK(f && fgets(stats, sizeof stats, f));
    fclose(f);
    kill(rp, SIGTERM);
    int st;
    waitpid(rp, &st, 0);
    fclose(rf);
    printf("    independent receiver: %s", stats);
    CHECK_EQ(extract(stats, "received"), 10000);
    CHECK_EQ(extract(stats, "verified"), 10000);
    CHECK_EQ(extract(stats, "distinct_ids"), 10000);
    CHECK_EQ(extract(stats, "bad_signature"), 0);
    unlink(cfg);
    unlink(events);
    unlink(out);
    rmdir(tmp);
}

TH_MAIN(TH_CASE(test_whsend_10000_to_independent_receiver))
