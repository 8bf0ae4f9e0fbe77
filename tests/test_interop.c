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
    const char *d = getenv("WH_BIN");
    return d && *d ? d : "build/bin";
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

/* The example receiver checks each scheme with the wh_verify_* helpers:
 * whsend signs with a preset, the receiver (same preset) verifies every
 * request; a receiver holding the wrong key rejects every one. */
static void run_preset(const char *tmp, const char *preset, const char *sender_keys,
                       const char *receiver_keys, int expect_verified)
{
    char cmd[2048], cfg[600], events[600];
    snprintf(cmd, sizeof cmd, "%s/receiver --port 0 --quiet --preset %s %s --expect 20",
             examples_dir(), preset, receiver_keys);
    FILE *rp = popen(cmd, "r");
    CHECK(rp);
    char line[256] = "";
    CHECK(fgets(line, sizeof line, rp) != NULL);
    int port = 0;
    CHECK(sscanf(line, "listening 127.0.0.1:%d", &port) == 1 && port > 0);
    snprintf(cfg, sizeof cfg, "%s/%s.json", tmp, preset);
    snprintf(events, sizeof events, "%s/events.ndjson", tmp);
    FILE *f = fopen(cfg, "w");
    CHECK(f);
    fprintf(f, "{\"endpoints\":[{\"url\":\"http://127.0.0.1:%d/hook\","
               "\"preset\":\"%s\",\"max_attempts\":1,%s}]}", port, preset, sender_keys);
    fclose(f);
    f = fopen(events, "w");
    CHECK(f);
    for (int i = 0; i < 20; i++)
        fprintf(f, "{\"event\":\"call.ended\",\"data\":{\"seq\":%d}}\n", i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/whsend -q -c %s %s >/dev/null 2>&1", examples_dir(), cfg,
             events);
    int st = system(cmd);
    CHECK(WIFEXITED(st));
    CHECK(fgets(line, sizeof line, rp) != NULL); /* the receiver's summary */
    pclose(rp);
    CHECK_EQ(extract(line, "received"), 20);
    CHECK_EQ(extract(line, "verified"), expect_verified ? 20 : 0);
    CHECK_EQ(extract(line, "bad_signature"), expect_verified ? 0 : 20);
}

static void test_example_receiver_verifies_each_scheme(void)
{
    char tmp[] = "/tmp/whschemesXXXXXX";
    CHECK(mkdtemp(tmp));
    char cmd[1024], keys[700], rkeys[700];
    snprintf(cmd, sizeof cmd, "cd %s && openssl genpkey -algorithm RSA -pkeyopt "
             "rsa_keygen_bits:2048 -out priv.pem 2>/dev/null && openssl pkey -in "
             "priv.pem -pubout -out pub.pem && openssl genpkey -algorithm RSA -pkeyopt "
             "rsa_keygen_bits:2048 -out other.pem 2>/dev/null && openssl pkey -in "
             "other.pem -pubout -out otherpub.pem", tmp);
    CHECK_EQ(system(cmd), 0);
    snprintf(keys, sizeof keys, "\"private_key_file\":\"%s/priv.pem\"", tmp);
    snprintf(rkeys, sizeof rkeys, "--public-key %s/pub.pem", tmp);
    run_preset(tmp, "dyte", keys, rkeys, 1);
    snprintf(rkeys, sizeof rkeys, "--public-key %s/otherpub.pem", tmp);
    run_preset(tmp, "dyte", keys, rkeys, 0);
    run_preset(tmp, "stream", "\"secret\":\"s3cr3t\",\"api_key\":\"k\"",
               "--secret s3cr3t", 1);
    run_preset(tmp, "stream", "\"secret\":\"s3cr3t\"", "--secret wrong", 0);
    run_preset(tmp, "svix", "\"secret\":\"" SECRET "\"", "--secret " SECRET, 1);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK_EQ(system(cmd), 0);
}

TH_MAIN(TH_CASE(test_whsend_10000_to_independent_receiver),
        TH_CASE(test_example_receiver_verifies_each_scheme))
