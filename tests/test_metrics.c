/* Prometheus text exposition (lib/metrics.c): outcomes accounted per
 * endpoint, failure classes, the emit -> 2xx histogram, snprintf-style
 * sizing, label escaping, and the text parsed by Debian's
 * python3-prometheus-client with every value checked. */
#include "harness.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static wh_outcome outcome(wh_outcome_kind kind, int status, int error,
                          int64_t created_ms)
{
    wh_outcome o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.http_status = status;
    o.error = error;
    o.attempt = 1;
    o.ev.created_ms = created_ms;
    o.error_msg = "";
    return o;
}

static void fill(wh__ep_metrics *a, wh__ep_metrics *b)
{
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    const int64_t now = 1700000000000;
    /* a: 3 delivered (4 ms, 120 ms, 7 s after emit), a 503 retried, a 404
     * dead, a connect failure retried, a timeout retried, a cancel */
    wh_outcome o = outcome(WH_DELIVERED, 200, WH_OK, now - 4);
    wh__metrics_record(a, &o, now);
    o = outcome(WH_DELIVERED, 204, WH_OK, now - 120);
    wh__metrics_record(a, &o, now);
    o = outcome(WH_DELIVERED, 200, WH_OK, now - 7000);
    wh__metrics_record(a, &o, now);
    o = outcome(WH_RETRY, 503, WH_E_HTTP_STATUS, now);
    wh__metrics_record(a, &o, now);
    o = outcome(WH_DEAD, 404, WH_E_HTTP_STATUS, now);
    wh__metrics_record(a, &o, now);
    o = outcome(WH_RETRY, 0, WH_E_CONNECT, now);
    wh__metrics_record(a, &o, now);
    o = outcome(WH_RETRY, 0, WH_E_TIMEOUT, now);
    wh__metrics_record(a, &o, now);
    o = outcome(WH_DEAD, 0, WH_E_CANCELLED, now);
    o.attempt = 0;
    wh__metrics_record(a, &o, now);
    /* b: a 302 and a transport error, both dead; a delivery whose emit time
     * is ahead of the clock counts as 0 ms */
    o = outcome(WH_DEAD, 302, WH_E_HTTP_STATUS, now);
    wh__metrics_record(b, &o, now);
    o = outcome(WH_DEAD, 0, WH_E_TRANSPORT, now);
    wh__metrics_record(b, &o, now);
    o = outcome(WH_DELIVERED, 200, WH_OK, now + 50);
    wh__metrics_record(b, &o, now);
}

static void test_record_classes(void)
{
    wh__ep_metrics a, b;
    fill(&a, &b);
    CHECK_EQ(a.delivered, 3);
    CHECK_EQ(a.retries, 3);
    CHECK_EQ(a.dead, 2);
    CHECK_EQ(a.failed[WH__FAIL_HTTP_5XX], 1);
    CHECK_EQ(a.failed[WH__FAIL_HTTP_4XX], 1);
    CHECK_EQ(a.failed[WH__FAIL_CONNECT], 1);
    CHECK_EQ(a.failed[WH__FAIL_TIMEOUT], 1);
    CHECK_EQ(a.failed[WH__FAIL_TRANSPORT], 0); /* the cancel was no attempt */
    CHECK_EQ(a.lat[0], 1);                     /* 4 ms <= 5 ms */
    CHECK_EQ(a.lat[5], 1);                     /* 120 ms in (100, 250] */
    CHECK_EQ(a.lat[10], 1);                    /* 7 s in (5, 10] */
    CHECK_EQ(a.lat_sum_ms, 4 + 120 + 7000);
    CHECK_EQ(b.failed[WH__FAIL_HTTP_OTHER], 1);
    CHECK_EQ(b.failed[WH__FAIL_TRANSPORT], 1);
    CHECK_EQ(b.lat[0], 1);
    CHECK_EQ(b.lat_sum_ms, 0);
}

static void test_snprintf_sizing(void)
{
    wh__ep_metrics a, b;
    fill(&a, &b);
    wh__metrics_ep eps[2] = {{"ep-a", WH_EP_ACTIVE, 2, 5, &a},
                             {"ep-b", WH_EP_DISABLED, 0, 0, &b}};
    wh__metrics_engine g = {10, 1, 2, 9};
    size_t need = wh__metrics_format(&g, eps, 2, NULL, 0);
    CHECK(need > 1000);
    char *full = malloc(need + 1);
    CHECK_EQ(wh__metrics_format(&g, eps, 2, full, need + 1), need);
    CHECK_EQ(strlen(full), need);
    /* one byte short: same return, text cut, NUL-terminated */
    char *cut = malloc(need);
    CHECK_EQ(wh__metrics_format(&g, eps, 2, cut, need), need);
    CHECK_EQ(strlen(cut), need - 1);
    CHECK(memcmp(cut, full, need - 1) == 0);
    char small[16];
    CHECK_EQ(wh__metrics_format(&g, eps, 2, small, sizeof small), need);
    CHECK_EQ(strlen(small), 15);
    CHECK(full[need - 1] == '\n');
    free(full);
    free(cut);
}

static void test_label_escaping(void)
{
    wh__ep_metrics a;
    memset(&a, 0, sizeof a);
    wh__metrics_ep ep = {"we\"ird\\id\nx", WH_EP_ACTIVE, 0, 0, &a};
    char buf[16384];
    CHECK(wh__metrics_format(NULL, &ep, 1, buf, sizeof buf) < sizeof buf);
    CHECK(strstr(buf, "webhook_delivered_total{endpoint=\"we\\\"ird\\\\id\\nx\"} 0\n"));
}

/* Parse with prometheus_client and print "name{labels} value" per sample,
 * sorted, so the C side can compare exact values. */
static char *parse_with_prometheus(const char *text)
{
    const char *path = th_tmp_path("metrics.txt");
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(text, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '"
             "import sys\n"
             "from prometheus_client.parser import text_string_to_metric_families\n"
             "out = []\n"
             "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
             "    for s in fam.samples:\n"
             "        lab = \",\".join(k + \"=\" + v for k, v in sorted(s.labels.items()))\n"
             "        out.append(\"%%s %%s{%%s} %%g\" %% (fam.type, s.name, lab, s.value))\n"
             "print(\"\\n\".join(sorted(out)))' %s",
             path);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    char *res = th_slurp(p);
    int st = pclose(p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return res;
}

static void expect_line(const char *parsed, const char *line)
{
    char want[256];
    snprintf(want, sizeof want, "%s\n", line);
    /* match whole lines: at the start or after a newline */
    const char *p = parsed;
    size_t n = strlen(want);
    while ((p = strstr(p, want)) != NULL) {
        if (p == parsed || p[-1] == '\n') return;
        p++;
    }
    /* the last line has no newline */
    size_t pl = strlen(parsed), ll = strlen(line);
    if (pl >= ll && strcmp(parsed + pl - ll, line) == 0 &&
        (pl == ll || parsed[pl - ll - 1] == '\n'))
        return;
    (void)n;
    th_fail(__FILE__, __LINE__, "missing \"%s\" in:\n%s", line, parsed);
}

static void test_parsed_by_prometheus_client(void)
{
    th_tmp_init("whmet");
    wh__ep_metrics a, b;
    fill(&a, &b);
    wh__metrics_ep eps[2] = {{"ep-a", WH_EP_ACTIVE, 2, 5, &a},
                             {"ep-b", WH_EP_DISABLED, 0, 0, &b}};
    wh__metrics_engine g = {10, 1, 2, 9};
    char buf[32768];
    CHECK(wh__metrics_format(&g, eps, 2, buf, sizeof buf) < sizeof buf);
    char *parsed = parse_with_prometheus(buf);
    expect_line(parsed, "counter webhook_events_emitted_total{} 10");
    expect_line(parsed, "counter webhook_events_rejected_total{} 1");
    expect_line(parsed, "counter webhook_events_duplicate_total{} 2");
    expect_line(parsed, "counter webhook_requests_total{} 9");
    expect_line(parsed, "counter webhook_delivered_total{endpoint=ep-a} 3");
    expect_line(parsed, "counter webhook_delivered_total{endpoint=ep-b} 1");
    expect_line(parsed, "counter webhook_attempts_failed_total{class=http_5xx,endpoint=ep-a} 1");
    expect_line(parsed, "counter webhook_attempts_failed_total{class=http_4xx,endpoint=ep-a} 1");
    expect_line(parsed, "counter webhook_attempts_failed_total{class=connect,endpoint=ep-a} 1");
    expect_line(parsed, "counter webhook_attempts_failed_total{class=timeout,endpoint=ep-a} 1");
    expect_line(parsed, "counter webhook_attempts_failed_total{class=transport,endpoint=ep-a} 0");
    expect_line(parsed, "counter webhook_attempts_failed_total{class=http_other,endpoint=ep-b} 1");
    expect_line(parsed, "counter webhook_retries_total{endpoint=ep-a} 3");
    expect_line(parsed, "counter webhook_dead_total{endpoint=ep-a} 2");
    expect_line(parsed, "counter webhook_dead_total{endpoint=ep-b} 2");
    expect_line(parsed, "gauge webhook_in_flight{endpoint=ep-a} 2");
    expect_line(parsed, "gauge webhook_queued{endpoint=ep-a} 5");
    expect_line(parsed, "gauge webhook_endpoint_state{endpoint=ep-a,state=active} 1");
    expect_line(parsed, "gauge webhook_endpoint_state{endpoint=ep-a,state=paused} 0");
    expect_line(parsed, "gauge webhook_endpoint_state{endpoint=ep-b,state=disabled} 1");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_bucket{endpoint=ep-a,le=0.005} 1");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_bucket{endpoint=ep-a,le=0.1} 1");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_bucket{endpoint=ep-a,le=0.25} 2");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_bucket{endpoint=ep-a,le=5} 2");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_bucket{endpoint=ep-a,le=10} 3");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_bucket{endpoint=ep-a,le=+Inf} 3");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_count{endpoint=ep-a} 3");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_sum{endpoint=ep-a} 7.124");
    expect_line(parsed, "histogram webhook_delivery_latency_seconds_count{endpoint=ep-b} 1");
    free(parsed);
    th_tmp_cleanup();
}

TH_MAIN(TH_CASE(test_record_classes), TH_CASE(test_snprintf_sizing),
        TH_CASE(test_label_escaping), TH_CASE(test_parsed_by_prometheus_client))
