/* Bad input found by probes and fuzzers (issue 15), each refused by name or
 * handled correctly: IPv6 URL hosts, non-UTF-8 event names, strict
 * Retry-After dates (and the two obsolete formats RFC 9110 requires),
 * passwords in URLs, last-error messages of wh_endpoint_find and
 * wh_stats_get, reserved header names, several secrets with a hex scheme.
 * Real engine on the manual clock and the scripted transport. */
#include "harness.h"
#include "internal.h"
#include <webhook/webhook.h>
#include <webhook/test.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WALL0 1700000000000LL /* Tue, 14 Nov 2023 22:13:20 GMT */
#define URL "http://127.0.0.1:9/hook"

typedef struct fx {
    wh_manual_clock *clock;
    wh_transport *t;
    wh_engine *e;
    wh_outcome_kind kind[64];
    int64_t retry_in[64];
    char url[64][128];
    size_t n_out;
    char log[8192];
} fx;

static void on_outcome(void *user, const wh_outcome *o)
{
    fx *f = user;
    if (f->n_out < 64) {
        f->kind[f->n_out] = o->kind;
        f->retry_in[f->n_out] = o->retry_in_ms;
        snprintf(f->url[f->n_out], sizeof f->url[0], "%s", o->url ? o->url : "(null)");
    }
    f->n_out++;
}

static void on_log(void *user, wh_log_level lvl, const char *msg)
{
    fx *f = user;
    (void)lvl;
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "%s\n", msg);
}

static void fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    f->clock = wh_manual_clock_new(1000, WALL0);
    CHECK(f->clock);
    CHECK_EQ(wh_transport_scripted_new(NULL, f->clock, &f->t), WH_OK);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(f->clock);
    o.transport = f->t;
    o.on_outcome = on_outcome;
    o.outcome_user = f;
    o.on_log = on_log;
    o.log_user = f;
    o.log_level = WH_LOG_DEBUG;
    o.seed = 7;
    int err = -99;
    f->e = wh_engine_new(&o, &err);
    CHECK_EQ(err, WH_OK);
}

static void fx_done(fx *f)
{
    wh_engine_free(f->e);
    wh_transport_free(f->t);
    wh_manual_clock_free(f->clock);
}

static void run_to_idle(fx *f)
{
    for (int i = 0; i < 1000; i++) {
        wh_poll(f->e, 0);
        int64_t t = wh_timeout_ms(f->e);
        if (t < 0) return;
        wh_manual_clock_advance(f->clock, t);
    }
    th_fail(__FILE__, __LINE__, "engine never idle");
}

static int add_url(fx *f, const char *url)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = url;
    return wh_endpoint_add(f->e, &ep);
}

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* ---- F5 and friends: IPv6 literals ----------------------------------------- */
static void test_ipv6_literal_hosts(void)
{
    fx f;
    fx_init(&f);
    static const char *const bad[] = {
        "http://[::g]/", "http://[]/", "http://[:::]/", "http://[1:2:3:4:5:6:7:8:9]/",
        "http://[::1%]/", "http://[::1%25]/", "http://[::1%eth0]/", "http://[v1.fe]/",
        "http://[::1]x/", "http://[12345::]/", "http://[::1/",
        "http://[fe80::1%25e\"h]/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = add_url(&f, bad[i]);
        if (rc != WH_E_URL)
            th_fail(__FILE__, __LINE__, "%s: %d (%s)", bad[i], rc, wh_last_error(f.e));
        CHECK(has(wh_last_error(f.e), "url"));
    }
    static const char *const good[] = {"http://[::1]/", "http://[::1]:8080/x",
                                       "https://[2001:db8::1]/", "http://[::ffff:127.0.0.1]/",
                                       "http://[fe80::1%25eth0]/", "http://[FE80::A%25en%30]/"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        int rc = add_url(&f, good[i]);
        if (rc <= 0) th_fail(__FILE__, __LINE__, "%s: %d (%s)", good[i], rc, wh_last_error(f.e));
    }
    fx_done(&f);
}

/* ---- event type and channel must be UTF-8 ----------------------------------- */
static void test_non_utf8_event_names(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.body = WH_BODY_PUSHER;
    CHECK(wh_endpoint_add(f.e, &ep) > 0);
    static const char *const bad[] = {"a\xff", "\xc0\xaf", "x\xed\xa0\x80", "\xe2\x82",
                                      "\xf4\x90\x80\x80", "\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ(wh_emit(f.e, bad[i], NULL, "{}", 2, NULL), WH_E_INVAL);
        CHECK(has(wh_last_error(f.e), "event type is not valid UTF-8"));
        CHECK_EQ(wh_emit(f.e, "ok", bad[i], "{}", 2, NULL), WH_E_INVAL);
        CHECK(has(wh_last_error(f.e), "channel is not valid UTF-8"));
    }
    /* valid UTF-8 and control characters go out escaped in valid JSON */
    CHECK_EQ(wh_emit(f.e, "caf\xc3\xa9.\xf0\x9f\x8e\x89\x01", "ch\"\n", "{}", 2, NULL), 1);
    run_to_idle(&f);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_scripted_request r;
    CHECK_EQ(wh_scripted_get(f.t, 0, &r), WH_OK);
    size_t off;
    CHECK_EQ(wh__json_valid(r.body, r.body_len, &off), WH_OK);
    CHECK(has(r.body, "\"caf\xc3\xa9.\xf0\x9f\x8e\x89\\u0001\""));
    CHECK(has(r.body, "\"ch\\\"\\n\""));
    fx_done(&f);
}

/* ---- Retry-After -------------------------------------------------------------- */
static void test_http_date_formats(void)
{
    int64_t t, now = WALL0 / 1000;
    /* the three formats RFC 9110 5.6.7 requires a recipient to accept */
    CHECK(wh__http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29, now, &t));
    CHECK_EQ(t, 784111777);
    CHECK(wh__http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, now, &t));
    CHECK_EQ(t, 784111777);
    CHECK(wh__http_date_parse("Sun Nov  6 08:49:37 1994", 24, now, &t));
    CHECK_EQ(t, 784111777);
    CHECK(wh__http_date_parse("Tue Nov 14 22:13:27 2023", 24, now, &t));
    CHECK_EQ(t, 1700000007);
    /* RFC 850 years: more than 50 years ahead means the past century */
    CHECK(wh__http_date_parse("Tuesday, 14-Nov-73 22:13:27 GMT", 31, now, &t));
    CHECK_EQ(t, 3277923207LL);
    CHECK(wh__http_date_parse("Thursday, 14-Nov-74 22:13:27 GMT", 32, now, &t));
    CHECK_EQ(t, 153699207);
    /* leap days */
    CHECK(wh__http_date_parse("Thu, 29 Feb 2024 00:00:00 GMT", 29, now, &t));
    CHECK_EQ(t, 1709164800);
    static const char *const bad[] = {
        "Wed, 31 Feb 2023 00:00:00 GMT", "Thu, 29 Feb 2023 00:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:-1 GMT", "Sun, -6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov -994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sun, 06 Nov 1994 08:49:37", "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994", "Sun Nov  6 08:49:37 94", "Sun Nov 00 08:49:37 1994",
        "Sun Nov 32 08:49:37 1994", "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (wh__http_date_parse(bad[i], strlen(bad[i]), now, &t))
            th_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
}

static void test_retry_after_values(void)
{
    int64_t ms;
    CHECK(wh__retry_after_parse("120", WALL0, &ms));
    CHECK_EQ(ms, 120000);
    CHECK(wh__retry_after_parse(" 0 ", WALL0, &ms));
    CHECK_EQ(ms, 0);
    CHECK(wh__retry_after_parse("Tue, 14 Nov 2023 22:13:27 GMT", WALL0, &ms));
    CHECK_EQ(ms, 7000);
    CHECK(wh__retry_after_parse("Tuesday, 14-Nov-23 22:13:27 GMT", WALL0, &ms));
    CHECK_EQ(ms, 7000);
    CHECK(wh__retry_after_parse("Tue Nov 14 22:13:27 2023", WALL0, &ms));
    CHECK_EQ(ms, 7000);
    CHECK(wh__retry_after_parse("Tue, 14 Nov 2023 22:13:00 GMT", WALL0, &ms)); /* past */
    CHECK_EQ(ms, 0);
    CHECK(wh__retry_after_parse("99999999999999999999", WALL0, &ms));
    CHECK_INT(ms, >, 0);
    static const char *const bad[] = {"-5", "+5", "5s", "1.5", "5 5", "", "  ",
                                      "Wed, 31 Feb 2023 00:00:00 GMT",
                                      "Tue, 14 Nov 2023 22:13:-7 GMT", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (wh__retry_after_parse(bad[i], WALL0, &ms))
            th_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
}

/* Through the engine: an obsolete-format date is honoured, a bad one falls
 * back to the formula. */
static void test_retry_after_through_engine(void)
{
    static const struct { const char *ra; int64_t want; } cases[] = {
        {"Tuesday, 14-Nov-23 22:13:27 GMT", 7000},
        {"Tue Nov 14 22:13:27 2023", 7000},
        {"Wed, 31 Feb 2024 00:00:00 GMT", 500},
        {"-3", 500},
        {"Tue, 14 Nov 2023 22:13:-7 GMT", 500}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fx f;
        fx_init(&f);
        wh_endpoint_options ep;
        wh_endpoint_options_init(&ep);
        ep.url = URL;
        ep.retry_initial_ms = 500;
        CHECK(wh_endpoint_add(f.e, &ep) > 0);
        CHECK_EQ(wh_scripted_rule(f.t, NULL, 503, WH_OK, 0, cases[i].ra, 1), WH_OK);
        CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
        run_to_idle(&f);
        CHECK_EQ(f.kind[0], WH_RETRY);
        if (f.retry_in[0] != cases[i].want)
            th_fail(__FILE__, __LINE__, "\"%s\": retry in %lld, want %lld", cases[i].ra,
                    (long long)f.retry_in[0], (long long)cases[i].want);
        CHECK_EQ(f.kind[1], WH_DELIVERED);
        fx_done(&f);
    }
}

/* ---- passwords in URLs ---------------------------------------------------------- */
static void test_url_password_redacted(void)
{
    fx f;
    fx_init(&f);
    CHECK(add_url(&f, "http://alice:s3cr3tpw@127.0.0.1:9/hook?x=1") > 0);
    CHECK(add_url(&f, "http://bob@127.0.0.1:9/b") > 0);
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 500, WH_OK, 0, NULL, 1), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 2);
    run_to_idle(&f);
    CHECK_INT(f.n_out, >=, 3);
    int seen_alice = 0, seen_bob = 0;
    for (size_t i = 0; i < f.n_out; i++) {
        CHECK(!has(f.url[i], "s3cr3tpw"));
        seen_alice += strcmp(f.url[i], "http://alice:***@127.0.0.1:9/hook?x=1") == 0;
        seen_bob += strcmp(f.url[i], "http://bob@127.0.0.1:9/b") == 0;
    }
    CHECK_INT(seen_alice, >=, 2);
    CHECK_INT(seen_bob, >=, 1);
    /* the request itself carries the real credentials */
    int real = 0;
    for (size_t i = 0; i < wh_scripted_count(f.t); i++) {
        wh_scripted_request r;
        CHECK_EQ(wh_scripted_get(f.t, i, &r), WH_OK);
        real += strcmp(r.url, "http://alice:s3cr3tpw@127.0.0.1:9/hook?x=1") == 0;
    }
    CHECK_EQ(real, 2);
    CHECK(!has(f.log, "s3cr3tpw"));
    fx_done(&f);

    char *p = wh__url_dup_redacted("https://u:p@w@h/x@y");
    CHECK(p);
    CHECK_STR(p, "https://u:p@w@h/x@y");
    CHECK_STR(wh__url_redacted(p), "https://u:***@h/x@y");
    free(p);
}

/* ---- last error of find and stats -------------------------------------------- */
static void test_find_and_stats_set_last_error(void)
{
    /* the status a shared queue returns when its store is away */
    CHECK_STR(wh_status_name(WH_E_UNAVAILABLE), "WH_E_UNAVAILABLE");
    CHECK_INT(WH_STATUS_LAST_, <, WH_E_UNAVAILABLE);
    fx f;
    fx_init(&f);
    CHECK_EQ(wh_endpoint_find(f.e, NULL), WH_E_INVAL);
    CHECK(has(wh_last_error(f.e), "wh_endpoint_find"));
    CHECK_EQ(wh_stats_get_sized(f.e, NULL, sizeof(wh_stats)), WH_E_INVAL);
    CHECK(has(wh_last_error(f.e), "wh_stats_get"));
    wh_stats st;
    CHECK_EQ(wh_stats_get_sized(f.e, &st, 4), WH_E_INVAL);
    CHECK(has(wh_last_error(f.e), "wh_stats_get"));
    CHECK_EQ(wh_endpoint_find(f.e, "nope"), WH_E_NOT_FOUND);
    fx_done(&f);
}

/* ---- reserved header names ---------------------------------------------------- */
static int add_with_header(fx *f, const char *preset, const char *header, const char *id_header)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.preset = preset;
    ep.id_header = id_header;
    const char *hs[] = {"X-Fine: 1", header};
    ep.headers = hs;
    ep.n_headers = 2;
    return wh_endpoint_add(f->e, &ep);
}

static void test_reserved_headers_refused(void)
{
    fx f;
    fx_init(&f);
    static const struct { const char *preset, *header; } bad[] = {
        {NULL, "webhook-id: forged"}, {NULL, "Webhook-Signature: v1,x"},
        {NULL, "webhook-timestamp: 1"}, {NULL, "WEBHOOK-ATTEMPT: 1"},
        {NULL, "Host: evil.example"}, {NULL, "content-length: 5"},
        {NULL, "Content-Type: text/plain"}, {NULL, "Transfer-Encoding: chunked"},
        {"svix", "svix-id: x"}, {"stream", "x-signature: x"}, {"stream", "X-WEBHOOK-ID: x"},
        {"pusher", "X-Pusher-Signature: x"}, {"sendbird", "x-sendbird-signature: x"},
        {"dyte", "dyte-uuid: x"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = add_with_header(&f, bad[i].preset, bad[i].header, NULL);
        if (rc != WH_E_HEADER)
            th_fail(__FILE__, __LINE__, "%s: %d (%s)", bad[i].header, rc, wh_last_error(f.e));
        CHECK(has(wh_last_error(f.e), "headers[1]"));
        char name[64];
        snprintf(name, sizeof name, "\"%.*s\"", (int)strcspn(bad[i].header, ":"), bad[i].header);
        CHECK(has(wh_last_error(f.e), name));
    }
    /* an overridden name is reserved instead of the preset's */
    CHECK_EQ(add_with_header(&f, NULL, "My-Id: 1", "my-id"), WH_E_HEADER);
    CHECK(add_with_header(&f, NULL, "webhook-id: 1", "my-id") > 0);
    /* other presets' names are ordinary headers */
    CHECK(add_with_header(&f, "stream", "webhook-id: 1", NULL) > 0);
    CHECK(add_with_header(&f, NULL, "X-Api-Key: k", NULL) > 0);
    /* through the JSON configuration */
    static const char cfg[] =
        "{\"endpoints\":[{\"url\":\"" URL "\",\"headers\":{\"Host\":\"x\"}}]}";
    CHECK_EQ(wh_config_load(f.e, cfg, sizeof cfg - 1), WH_E_CONFIG);
    CHECK(has(wh_last_error(f.e), "endpoints[0].headers[0]: \"Host\""));
    fx_done(&f);
}

/* ---- several secrets with a hex scheme ------------------------------------- */
static void test_hex_scheme_refuses_several_secrets(void)
{
    fx f;
    fx_init(&f);
    const char *two[] = {"old-secret", "new-secret"};
    static const char *const hex[] = {"stream", "pusher", "sendbird"};
    for (size_t i = 0; i < 3; i++) {
        wh_endpoint_options ep;
        wh_endpoint_options_init(&ep);
        ep.url = URL;
        ep.preset = hex[i];
        ep.secrets = two;
        ep.n_secrets = 2;
        CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_SECRET);
        CHECK(has(wh_last_error(f.e), "secrets"));
        CHECK(has(wh_last_error(f.e), "one signature"));
        ep.n_secrets = 1;
        CHECK(wh_endpoint_add(f.e, &ep) > 0);
    }
    /* explicit scheme, and the standard scheme keeps its rotation */
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.signing = WH_SIGN_HMAC_HEX;
    ep.secrets = two;
    ep.n_secrets = 2;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_SECRET);
    ep.signing = WH_SIGN_STANDARD;
    CHECK(wh_endpoint_add(f.e, &ep) > 0);
    static const char cfg[] = "{\"endpoints\":[{\"url\":\"" URL "\",\"preset\":\"stream\","
                              "\"secrets\":[\"a\",\"b\"]}]}";
    CHECK_EQ(wh_config_load(f.e, cfg, sizeof cfg - 1), WH_E_CONFIG);
    CHECK(has(wh_last_error(f.e), "endpoints[0].secrets: the hex signature schemes"));
    fx_done(&f);
}

TH_MAIN(TH_CASE(test_ipv6_literal_hosts), TH_CASE(test_non_utf8_event_names),
        TH_CASE(test_http_date_formats), TH_CASE(test_retry_after_values),
        TH_CASE(test_retry_after_through_engine), TH_CASE(test_url_password_redacted),
        TH_CASE(test_find_and_stats_set_last_error), TH_CASE(test_reserved_headers_refused),
        TH_CASE(test_hex_scheme_refuses_several_secrets))
