/* The shared engine fixture (tests/support/fixture.h) itself: what it
 * records, when, and that its run helpers move simulated time exactly and
 * fail a case that runs past its limit. */
#include "fixture.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starts at TF_T0 / TF_WALL0; a delivery is recorded with its time, ids
 * and payload; the request carries the wall time. */
static void test_records_delivery(void)
{
    tf f;
    tf_init(&f, 1);
    CHECK_EQ(wh_manual_clock_now(f.clock), TF_T0);
    int h = tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{\"n\":1}", 7, "id-1"), 1);
    tf_run_to_idle(&f, 1000);
    CHECK_EQ(f.n_out, 1);
    CHECK_EQ(f.delivered, 1);
    CHECK_EQ(f.retried + f.dead, 0);
    CHECK_EQ(f.out[0].kind, WH_DELIVERED);
    CHECK_EQ(f.out[0].endpoint, h);
    CHECK_EQ(f.out[0].attempt, 1);
    CHECK_EQ(f.out[0].http_status, 200);
    CHECK_EQ(f.out[0].at, TF_T0);
    CHECK_STR(f.out[0].id, "id-1");
    CHECK_STR(f.out[0].data, "{\"n\":1}");
    CHECK_STR(f.out[0].endpoint_id, f.last[WH_DELIVERED].endpoint_id);
    CHECK_STR(tf_last(&f)->id, "id-1");
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_scripted_request r = tf_req(&f, 0);
    CHECK_EQ(r.submitted_ms, TF_T0);
    CHECK_STR(wh_scripted_header(f.t, 0, "webhook-timestamp"), "1700000000");
    tf_done(&f);
}

/* A 503 then a 200: the retry is recorded with its delay and the second
 * attempt happens exactly that much later in simulated time. */
static void test_records_retry_at_exact_time(void)
{
    tf f;
    tf_init(&f, 1);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = TF_URL;
    ep.retry_initial_ms = 2000;
    tf_add(&f, &ep);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, NULL, 1), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    tf_run_to_idle(&f, 10000);
    CHECK_EQ(f.n_out, 2);
    CHECK_EQ(f.out[0].kind, WH_RETRY);
    CHECK_EQ(f.out[0].http_status, 503);
    CHECK_EQ(f.out[0].retry_in_ms, 2000);
    CHECK_EQ(f.out[1].kind, WH_DELIVERED);
    CHECK_EQ(f.out[1].attempt, 2);
    CHECK_EQ(f.out[1].at, TF_T0 + 2000);
    CHECK_STR(f.out[0].id, f.out[1].id);
    CHECK_EQ(tf_req(&f, 1).submitted_ms, TF_T0 + 2000);
    CHECK_EQ(f.retried, 1);
    CHECK_EQ(f.delivered, 1);
    tf_done(&f);
}

/* Health changes are recorded with the clock time of the change. */
static void test_records_health(void)
{
    tf f;
    tf_init(&f, 1);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = TF_URL;
    ep.breaker_failures = 1;
    ep.breaker_cooldown_ms = 5000;
    int h = tf_add(&f, &ep);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 1), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    wh_poll(f.e, 0);
    CHECK_EQ(f.n_health, 1);
    CHECK_EQ(f.health[0].endpoint, h);
    CHECK_EQ(f.health[0].state, WH_EP_PAUSED);
    CHECK_EQ(f.health[0].previous, WH_EP_ACTIVE);
    CHECK_EQ(f.health[0].http_status, 500);
    CHECK_EQ(f.health[0].failures, 1);
    CHECK_EQ(f.health[0].at, TF_T0);
    CHECK_EQ(f.health[0].resume_at, TF_T0 + 5000);
    CHECK(f.health[0].reason[0] != '\0');
    tf_done(&f);
}

/* tf_run_until lands exactly on `until`, also when nothing is due. */
static void test_run_until_exact(void)
{
    tf f;
    tf_init(&f, 1);
    tf_run_until(&f, TF_T0 + 1234);
    CHECK_EQ(wh_manual_clock_now(f.clock), TF_T0 + 1234);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 300, NULL, 0), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    tf_run_until(&f, TF_T0 + 1234 + 299);
    CHECK_EQ(f.n_out, 0);
    tf_run_until(&f, TF_T0 + 1234 + 300);
    CHECK_EQ(f.n_out, 1);
    CHECK_EQ(f.out[0].at, TF_T0 + 1234 + 300);
    tf_done(&f);
}

/* Hooks run inside the callback, after the record was written. */
static void count_hook(tf *f, const wh_outcome *o)
{
    (void)o;
    CHECK_EQ(f->latest.kind, o->kind);
    (*(int *)f->user)++;
}

static void test_outcome_hook(void)
{
    tf f;
    int calls = 0;
    tf_init(&f, 1);
    f.outcome_hook = count_hook;
    f.user = &calls;
    tf_add_url(&f, TF_URL);
    tf_add_url(&f, "http://127.0.0.1:9/other");
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 2);
    tf_run_to_idle(&f, 1000);
    CHECK_EQ(calls, 2);
    CHECK_EQ(f.delivered, 2);
    tf_done(&f);
}

/* Past TF_MAX_OUT outcomes: counted, the table is not overrun, latest holds
 * the last one. */
static void test_many_outcomes_counted(void)
{
    tf f;
    tf_init(&f, 1);
    tf_add_url(&f, TF_URL);
    char id[32];
    for (int i = 0; i < TF_MAX_OUT + 10; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, id), 1);
    }
    tf_run_to_idle(&f, 100000);
    CHECK_EQ(f.n_out, TF_MAX_OUT + 10);
    CHECK_EQ(f.delivered, TF_MAX_OUT + 10);
    CHECK_STR(tf_last(&f)->id, id);
    tf_done(&f);
}

/* A refused endpoint and a run past its limit fail the case (checked in a
 * child, whose exit status is the verdict). */
static int child_status(void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        fn();
        _exit(0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void run_past_limit(void)
{
    tf f;
    tf_init(&f, 1);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 5000, NULL, 0), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    tf_run_to_idle(&f, 4999);
    tf_done(&f);
}

static void run_within_limit(void)
{
    tf f;
    tf_init(&f, 1);
    tf_add_url(&f, TF_URL);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 5000, NULL, 0), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    tf_run_to_idle(&f, 5000);
    tf_done(&f);
}

static void add_bad_url(void)
{
    tf f;
    tf_init(&f, 1);
    tf_add_url(&f, "ftp://127.0.0.1/x");
    tf_done(&f);
}

static void test_failures_fail_the_case(void)
{
    CHECK_EQ(child_status(run_within_limit), 0);
    CHECK_EQ(child_status(run_past_limit), 1);
    CHECK_EQ(child_status(add_bad_url), 1);
}

/* The harness itself: th_skip reports "skip - name (reason)", counts it
 * apart from passed and failed, and a binary whose every case skipped exits
 * 77 (what meson reads as SKIP). */
static void case_pass(void) {}
static void case_skip(void) { th_skip("needs %s", "nothing"); }
static void case_fail(void) { CHECK(0); }

static int run_harness(const th_case *cases, size_t n, char *out, size_t size)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        close(fds[0]);
        char *argv[] = {(char *)"h", NULL};
        _exit(th_main(cases, n, 1, argv));
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], out + len, size - 1 - len)) > 0) len += (size_t)r;
    out[len] = '\0';
    close(fds[0]);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_harness_skip(void)
{
    char out[1024];
    const th_case all_skip[] = {{"s1", case_skip}, {"s2", case_skip}};
    CHECK_EQ(run_harness(all_skip, 2, out, sizeof out), TH_SKIP_STATUS);
    CHECK(strstr(out, "skip - s1 (needs nothing)\n") != NULL);
    if (!strstr(out, "\n0 passed, 0 failed, 2 skipped\n")) th_fail(__FILE__, __LINE__, "out: %s", out);
    const th_case mixed[] = {{"p", case_pass}, {"s", case_skip}};
    CHECK_EQ(run_harness(mixed, 2, out, sizeof out), 0);
    CHECK(strstr(out, "\n1 passed, 0 failed, 1 skipped\n") != NULL);
    const th_case failing[] = {{"p", case_pass}, {"s", case_skip}, {"f", case_fail}};
    CHECK_EQ(run_harness(failing, 3, out, sizeof out), 1);
    CHECK(strstr(out, "FAIL - f") != NULL);
    CHECK(strstr(out, "\n1 passed, 1 failed, 1 skipped\n") != NULL);
    const th_case none_skipped[] = {{"p", case_pass}};
    CHECK_EQ(run_harness(none_skipped, 1, out, sizeof out), 0);
    CHECK(strstr(out, "\n1 passed, 0 failed\n") != NULL);
}

TH_MAIN(TH_CASE(test_records_delivery), TH_CASE(test_records_retry_at_exact_time),
        TH_CASE(test_records_health), TH_CASE(test_run_until_exact),
        TH_CASE(test_outcome_hook), TH_CASE(test_many_outcomes_counted),
        TH_CASE(test_failures_fail_the_case), TH_CASE(test_harness_skip))
