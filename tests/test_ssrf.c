/* The SSRF guard: the CIDR parser and classifier (lib/ssrf.c) over every
 * range and spelling, then the engine against real receivers on loopback:
 * with ssrf_guard no spelling of a loopback address receives a request, and
 * each outcome names the refused address; ssrf_allow lets ranges through;
 * proxies from the environment are ignored unless asked for; https_only. */
#include "harness.h"
#include "outcomes.h"
#include "raw_server.h"
#include "internal.h"
#include <webhook/test.h>

/* tests/test_ssrf_lean.c includes this file with SSRF_KIND set: the guard
 * cases against the lean transport. */
#ifndef SSRF_KIND
#define SSRF_KIND WH_TRANSPORT_DEFAULT
#endif

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- classifier ------------------------------------------------------------- */
static int verdict(const char *addr, char *msg, size_t size, const wh__cidr *allow,
                   size_t n_allow)
{
    uint8_t a[16];
    struct in_addr a4;
    int v6 = 0;
    if (inet_pton(AF_INET, addr, &a4) == 1) {
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &a4, 4);
    } else {
        CHECK_EQ(inet_pton(AF_INET6, addr, a), 1);
        v6 = 1;
    }
    msg[0] = '\0';
    return wh__ssrf_check_addr(a, v6, allow, n_allow, msg, size);
}

#define REFUSED(addr, want)                                                    \
    do {                                                                       \
        char m_[256];                                                          \
        if (!verdict(addr, m_, sizeof m_, NULL, 0))                            \
            th_fail(__FILE__, __LINE__, "%s was allowed", addr);               \
        if (!strstr(m_, want))                                                 \
            th_fail(__FILE__, __LINE__, "%s: \"%s\" lacks \"%s\"", addr, m_, want); \
    } while (0)
#define ALLOWED(addr)                                                          \
    do {                                                                       \
        char m_[256];                                                          \
        if (verdict(addr, m_, sizeof m_, NULL, 0))                             \
            th_fail(__FILE__, __LINE__, "%s refused: %s", addr, m_);           \
    } while (0)

static void classify_ipv4_every_range(void)
{
    REFUSED("0.0.0.0", "0.0.0.0 is unspecified (0.0.0.0/32)");
    REFUSED("0.1.2.3", "(0.0.0.0/8)");
    REFUSED("10.0.0.1", "10.0.0.1 is private (10.0.0.0/8)");
    REFUSED("10.255.255.255", "private (10.0.0.0/8)");
    REFUSED("100.64.0.1", "CGNAT) (100.64.0.0/10)");
    REFUSED("100.127.255.255", "(100.64.0.0/10)");
    ALLOWED("100.63.255.255");
    ALLOWED("100.128.0.0");
    REFUSED("127.0.0.1", "127.0.0.1 is loopback (127.0.0.0/8)");
    REFUSED("127.255.255.254", "loopback (127.0.0.0/8)");
    REFUSED("169.254.169.254", "169.254.169.254 is link-local (169.254.0.0/16)");
    REFUSED("172.16.0.1", "private (172.16.0.0/12)");
    REFUSED("172.31.255.255", "private (172.16.0.0/12)");
    ALLOWED("172.15.255.255");
    ALLOWED("172.32.0.0");
    REFUSED("192.0.0.8", "(192.0.0.0/24)");
    REFUSED("192.0.2.10", "documentation (TEST-NET-1) (192.0.2.0/24)");
    REFUSED("192.88.99.1", "(192.88.99.0/24)");
    REFUSED("192.168.1.1", "private (192.168.0.0/16)");
    REFUSED("198.18.0.1", "benchmarking (reserved) (198.18.0.0/15)");
    REFUSED("198.19.255.255", "(198.18.0.0/15)");
    ALLOWED("198.20.0.0");
    REFUSED("198.51.100.7", "(198.51.100.0/24)");
    REFUSED("203.0.113.9", "(203.0.113.0/24)");
    REFUSED("224.0.0.1", "multicast (224.0.0.0/4)");
    REFUSED("239.255.255.250", "multicast (224.0.0.0/4)");
    REFUSED("240.0.0.1", "reserved (240.0.0.0/4)");
    REFUSED("255.255.255.255", "broadcast (255.255.255.255/32)");
    ALLOWED("8.8.8.8");
    ALLOWED("1.1.1.1");
    ALLOWED("93.184.216.34");
    ALLOWED("11.0.0.1");
    ALLOWED("223.255.255.255");
}

static void classify_ipv6_every_range(void)
{
    REFUSED("::", ":: is unspecified (::/128)");
    REFUSED("::1", "::1 is loopback (::1/128)");
    REFUSED("::2", "reserved (IPv4-compatible and other) (::/8)");
    REFUSED("::7f00:1", "(::/8)"); /* IPv4-compatible, deprecated */
    REFUSED("100::1", "discard-only (reserved) (100::/64)");
    REFUSED("2001:db8::1", "documentation (2001:db8::/32)");
    REFUSED("2001::1", "(2001::/23)"); /* Teredo */
    REFUSED("2001:2::1", "(2001::/23)"); /* benchmarking */
    REFUSED("3fff::1", "documentation (3fff::/20)");
    REFUSED("5f00::1", "(5f00::/16)");
    REFUSED("fc00::1", "unique local (private) (fc00::/7)");
    REFUSED("fd12:3456::1", "(fc00::/7)");
    REFUSED("fe80::1", "link-local (fe80::/10)");
    REFUSED("febf::1", "link-local (fe80::/10)");
    REFUSED("fec0::1", "site-local (deprecated) (fec0::/10)");
    REFUSED("ff02::1", "multicast (ff00::/8)");
    REFUSED("64:ff9b:1::1", "local-use NAT64 (reserved) (64:ff9b:1::/48)");
    ALLOWED("2606:4700:4700::1111");
    ALLOWED("2a00:1450:4001::1");
    ALLOWED("2001:4860:4860::8888");
}

static void classify_embedded_ipv4(void)
{
    /* IPv4-mapped: judged as the IPv4 address, named as spelled */
    REFUSED("::ffff:127.0.0.1",
            "::ffff:127.0.0.1 is loopback (127.0.0.0/8 via IPv4-mapped ::ffff:0:0/96)");
    REFUSED("::ffff:10.1.2.3", "private (10.0.0.0/8 via IPv4-mapped");
    REFUSED("::ffff:169.254.169.254", "link-local (169.254.0.0/16");
    REFUSED("::ffff:0.0.0.0", "unspecified");
    ALLOWED("::ffff:8.8.8.8");
    /* NAT64 well-known prefix: the embedded IPv4 address decides */
    REFUSED("64:ff9b::7f00:1", "64:ff9b::7f00:1 is loopback (127.0.0.0/8, embedded "
                               "127.0.0.1 via NAT64 64:ff9b::/96)");
    REFUSED("64:ff9b::a9fe:a9fe", "embedded 169.254.169.254 via NAT64");
    REFUSED("64:ff9b::c0a8:101", "private (192.168.0.0/16, embedded 192.168.1.1");
    ALLOWED("64:ff9b::808:808");
    /* 6to4 */
    REFUSED("2002:7f00:1::1", "embedded 127.0.0.1 via 6to4 2002::/16");
    REFUSED("2002:a00:1::", "private (10.0.0.0/8, embedded 10.0.0.1");
    ALLOWED("2002:808:808::1");
}

static void classify_allow_list(void)
{
    wh__cidr allow[3];
    CHECK_EQ(wh__cidr_parse("127.0.0.0/8", &allow[0], NULL), WH_OK);
    CHECK_EQ(wh__cidr_parse("fd00::/8", &allow[1], NULL), WH_OK);
    CHECK_EQ(wh__cidr_parse("10.1.2.3", &allow[2], NULL), WH_OK);
    char m[256];
    CHECK_EQ(verdict("127.0.0.1", m, sizeof m, allow, 3), 0);
    CHECK_EQ(verdict("127.8.9.10", m, sizeof m, allow, 3), 0);
    CHECK_EQ(verdict("::ffff:127.0.0.1", m, sizeof m, allow, 3), 0); /* mapped too */
    CHECK_EQ(verdict("64:ff9b::7f00:1", m, sizeof m, allow, 3), 0);  /* NAT64 too */
    CHECK_EQ(verdict("fd00::5", m, sizeof m, allow, 3), 0);
    CHECK_EQ(verdict("10.1.2.3", m, sizeof m, allow, 3), 0);
    CHECK_EQ(verdict("10.1.2.4", m, sizeof m, allow, 3), 1);
    CHECK(strstr(m, "10.1.2.4 is private (10.0.0.0/8)") != NULL);
    CHECK_EQ(verdict("::1", m, sizeof m, allow, 3), 1);
    CHECK_EQ(verdict("fc00::1", m, sizeof m, allow, 3), 1);
    CHECK_EQ(verdict("0.0.0.0", m, sizeof m, allow, 3), 1);
}

static void cidr_parse_spellings(void)
{
    wh__cidr c;
    const char *why = NULL;
    uint8_t a[16];
    CHECK_EQ(wh__cidr_parse("192.168.0.0/16", &c, &why), WH_OK);
    CHECK_EQ(c.bits, 96 + 16);
    CHECK_EQ(wh__cidr_parse("0.0.0.0/0", &c, &why), WH_OK);
    CHECK_EQ(c.bits, 96);
    CHECK_EQ(wh__cidr_parse("::/0", &c, &why), WH_OK);
    CHECK_EQ(c.bits, 0);
    CHECK_EQ(wh__cidr_parse("2001:db8::/32", &c, &why), WH_OK);
    CHECK_EQ(c.bits, 32);
    CHECK_EQ(inet_pton(AF_INET6, "2001:db8:ffff::1", a), 1);
    CHECK(wh__cidr_contains(&c, a));
    CHECK_EQ(inet_pton(AF_INET6, "2001:db9::1", a), 1);
    CHECK(!wh__cidr_contains(&c, a));
    CHECK_EQ(wh__cidr_parse("10.0.0.0/9", &c, &why), WH_OK);
    CHECK_EQ(inet_pton(AF_INET6, "::ffff:10.127.255.255", a), 1);
    CHECK(wh__cidr_contains(&c, a));
    CHECK_EQ(inet_pton(AF_INET6, "::ffff:10.128.0.0", a), 1);
    CHECK(!wh__cidr_contains(&c, a));
    CHECK_EQ(wh__cidr_parse("::1", &c, &why), WH_OK);
    CHECK_EQ(c.bits, 128);
    CHECK_EQ(wh__cidr_parse("8.8.8.8", &c, &why), WH_OK);
    CHECK_EQ(c.bits, 128);
    /* refused, each with a reason */
    const char *bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8x",
                         "10.0.0.0/-1", "127.1", "2130706433", "0x7f.0.0.1", "10.1.2.3/8",
                         "fd00::1/8", "localhost", "10.0.0.0/0008", "1.2.3.4 ", "[::1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (wh__cidr_parse(bad[i], &c, &why) != WH_E_INVAL)
            th_fail(__FILE__, __LINE__, "\"%s\" was accepted", bad[i]);
        CHECK(why != NULL && *why);
    }
    CHECK_EQ(wh__cidr_parse(NULL, &c, NULL), WH_E_INVAL);
}

/* ---- the engine against loopback receivers -------------------------------- */
typedef struct spelling {
    const char *host;   /* as written in the URL */
    int v6_server;      /* 1: the [::1] receiver's port */
    const char *named;  /* what the refusal names */
} spelling;

static const spelling spellings[] = {
    {"127.0.0.1", 0, "127.0.0.1 is loopback (127.0.0.0/8)"},
    {"localhost", 0, "is loopback"},
    {"[::1]", 1, "::1 is loopback (::1/128)"},
    {"0.0.0.0", 0, "0.0.0.0 is unspecified (0.0.0.0/32)"},
    {"127.1", 0, "127.0.0.1 is loopback (127.0.0.0/8)"},
    {"2130706433", 0, "127.0.0.1 is loopback (127.0.0.0/8)"},
    {"[::ffff:127.0.0.1]", 0, "::ffff:127.0.0.1 is loopback (127.0.0.0/8 via IPv4-mapped"},
};
#define N_SPELL (sizeof spellings / sizeof spellings[0])

typedef struct guard_run {
    rs_server *v4, *v6;
    oc_log log;
    int eps[N_SPELL];
} guard_run;

/* One engine, one endpoint per spelling, one event each. */
static void run_spellings(guard_run *g, int guard, const char *const *allow, size_t n_allow)
{
    /* ::ffff:127.0.0.1 takes IPv4 127.0.0.1 connections as well */
    g->v4 = rs_start("::ffff:127.0.0.1", RS_OK);
    g->v6 = rs_start("::1", RS_OK);
    memset(&g->log, 0, sizeof g->log);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.transport_kind = SSRF_KIND;
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &g->log;
    eo.ssrf_guard = guard;
    eo.ssrf_allow = allow;
    eo.n_ssrf_allow = n_allow;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    for (size_t i = 0; i < N_SPELL; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://%s:%d/hook", spellings[i].host,
                 spellings[i].v6_server ? g->v6->port : g->v4->port);
        wh_endpoint_options o;
        wh_endpoint_options_init(&o);
        o.url = url;
        o.max_attempts = 3;
        o.retry_initial_ms = 50;
        o.retry_max_ms = 100;
        o.timeout_ms = 5000;
        char ch[16];
        snprintf(ch, sizeof ch, "c%zu", i);
        o.channel_prefix = ch;
        g->eps[i] = wh_endpoint_add(e, &o);
        CHECK(g->eps[i] > 0);
        CHECK_EQ(wh_emit(e, "t", ch, "{}", 2, NULL), 1);
    }
    oc_run(e, &g->log, (int)N_SPELL, 20000);
    wh_engine_free(e);
}

static void guard_off_every_spelling_delivers(void)
{
    /* the control: the receivers do receive every spelling */
    guard_run g;
    run_spellings(&g, 0, NULL, 0);
    for (size_t i = 0; i < N_SPELL; i++) {
        const oc_rec *r = oc_final(&g.log, g.eps[i]);
        CHECK(r != NULL);
        if (r->kind != WH_DELIVERED)
            th_fail(__FILE__, __LINE__, "%s: not delivered: %s", spellings[i].host, r->msg);
    }
    CHECK_EQ(rs_count(g.v4) + rs_count(g.v6), N_SPELL);
    rs_stop(g.v4);
    rs_stop(g.v6);
}

static void guard_on_no_spelling_reaches_loopback(void)
{
    guard_run g;
    run_spellings(&g, 1, NULL, 0);
    for (size_t i = 0; i < N_SPELL; i++) {
        const oc_rec *r = oc_final(&g.log, g.eps[i]);
        CHECK(r != NULL);
        CHECK_EQ(r->kind, WH_DEAD);
        CHECK_EQ(r->error, WH_E_FORBIDDEN);
        CHECK_EQ(r->attempt, 1); /* never retried */
        if (!strstr(r->msg, spellings[i].named))
            th_fail(__FILE__, __LINE__, "%s: \"%s\" lacks \"%s\"", spellings[i].host, r->msg,
                    spellings[i].named);
    }
    /* no retry outcome at all, and nothing connected */
    for (int i = 0; i < g.log.n; i++) CHECK(g.log.recs[i].kind != WH_RETRY);
    CHECK_EQ(rs_count(g.v4), 0);
    CHECK_EQ(rs_count(g.v6), 0);
    CHECK_EQ(rs_conn_count(g.v4), 0);
    CHECK_EQ(rs_conn_count(g.v6), 0);
    rs_stop(g.v4);
    rs_stop(g.v6);
}

static void guard_allow_loopback_v4(void)
{
    static const char *const allow[] = {"127.0.0.0/8"};
    guard_run g;
    run_spellings(&g, 1, allow, 1);
    size_t delivered = 0;
    for (size_t i = 0; i < N_SPELL; i++) {
        const oc_rec *r = oc_final(&g.log, g.eps[i]);
        CHECK(r != NULL);
        const char *h = spellings[i].host;
        if (strcmp(h, "[::1]") == 0 || strcmp(h, "0.0.0.0") == 0) {
            CHECK_EQ(r->error, WH_E_FORBIDDEN); /* not inside 127.0.0.0/8 */
            CHECK(strstr(r->msg, spellings[i].named) != NULL);
        } else {
            if (r->kind != WH_DELIVERED)
                th_fail(__FILE__, __LINE__, "%s: not delivered: %s", h, r->msg);
            delivered++;
        }
    }
    CHECK_EQ(delivered, 5);
    CHECK_EQ(rs_count(g.v4), 5);
    CHECK_EQ(rs_count(g.v6), 0);
    rs_stop(g.v4);
    rs_stop(g.v6);
}

static void bad_allow_entry_refused_by_name(void)
{
    static const char *const allow[] = {"127.0.0.0/8", "10.1.2.3/8"};
    char logbuf[512] = "";
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.ssrf_guard = 1;
    eo.ssrf_allow = allow;
    eo.n_ssrf_allow = 2;
    eo.on_log = NULL;
    int err = 0;
    CHECK(wh_engine_new(&eo, &err) == NULL);
    CHECK_EQ(err, WH_E_INVAL);
    (void)logbuf;
    /* the transport on its own refuses it too */
    wh_curl_options co;
    wh_curl_options_init(&co);
    co.ssrf_allow = allow;
    co.n_ssrf_allow = 2;
    wh_transport *t = NULL;
    CHECK_EQ(wh_transport_curl_new(&co, &t), WH_E_INVAL);
    CHECK(t == NULL);
}

static void on_log_keep(void *user, wh_log_level lvl, const char *msg)
{
    (void)lvl;
    snprintf(user, 512, "%s", msg);
}

static void bad_allow_entry_logged(void)
{
    static const char *const allow[] = {"not-a-range"};
    char logbuf[512] = "";
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.ssrf_guard = 1;
    eo.ssrf_allow = allow;
    eo.n_ssrf_allow = 1;
    eo.on_log = on_log_keep;
    eo.log_user = logbuf;
    int err = 0;
    CHECK(wh_engine_new(&eo, &err) == NULL);
    CHECK_EQ(err, WH_E_INVAL);
    CHECK(strstr(logbuf, "ssrf_allow[0]") != NULL);
    CHECK(strstr(logbuf, "not-a-range") != NULL);
}

static void https_only_refuses_http(void)
{
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.https_only = 1;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.url = "http://127.0.0.1:9/hook";
    CHECK_EQ(wh_endpoint_add(e, &o), WH_E_URL);
    CHECK(strstr(wh_last_error(e), "endpoint.url") != NULL);
    CHECK(strstr(wh_last_error(e), "https_only") != NULL);
    o.url = "https://127.0.0.1:9/hook";
    CHECK(wh_endpoint_add(e, &o) > 0);
    wh_engine_free(e);
}

/* ---- proxies ------------------------------------------------------------------ */
static void proxy_run(const char *proxy_opt, rs_server *direct, rs_server *proxy)
{
    oc_log log;
    memset(&log, 0, sizeof log);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &log;
    eo.proxy = proxy_opt;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    int ep = oc_add(e, direct->url, 1, 5000);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    oc_run(e, &log, 1, 10000);
    const oc_rec *r = oc_final(&log, ep);
    CHECK(r != NULL);
    CHECK_EQ(r->kind, WH_DELIVERED);
    wh_engine_free(e);
    (void)proxy;
}

static void proxy_environment_ignored_unless_env(void)
{
    rs_server *direct = rs_start("127.0.0.1", RS_OK);
    rs_server *proxy = rs_start("127.0.0.1", RS_OK); /* answers 200 to anything */
    char purl[64];
    snprintf(purl, sizeof purl, "http://127.0.0.1:%d", proxy->port);
    setenv("http_proxy", purl, 1);
    setenv("HTTPS_PROXY", purl, 1);
    setenv("all_proxy", purl, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    /* default: straight to the receiver */
    proxy_run(NULL, direct, proxy);
    CHECK_EQ(rs_count(direct), 1);
    CHECK_EQ(rs_count(proxy), 0);
    /* "env": through the environment's proxy */
    proxy_run("env", direct, proxy);
    CHECK_EQ(rs_count(direct), 1);
    CHECK_EQ(rs_count(proxy), 1);
    /* an explicit proxy URL */
    unsetenv("http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    proxy_run(purl, direct, proxy);
    CHECK_EQ(rs_count(direct), 1);
    CHECK_EQ(rs_count(proxy), 2);
    rs_stop(direct);
    rs_stop(proxy);
}

static void guard_checks_proxy_address(void)
{
    /* with a proxy the guard judges the address connected to: the proxy's */
    rs_server *proxy = rs_start("127.0.0.1", RS_OK);
    char purl[64];
    snprintf(purl, sizeof purl, "http://127.0.0.1:%d", proxy->port);
    oc_log log;
    memset(&log, 0, sizeof log);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &log;
    eo.proxy = purl;
    eo.ssrf_guard = 1;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    int ep = oc_add(e, "http://192.0.2.1/hook", 3, 5000); /* never contacted */
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    oc_run(e, &log, 1, 10000);
    const oc_rec *r = oc_final(&log, ep);
    CHECK(r != NULL);
    CHECK_EQ(r->error, WH_E_FORBIDDEN);
    CHECK(strstr(r->msg, "127.0.0.1 is loopback") != NULL);
    CHECK_EQ(rs_count(proxy), 0);
    wh_engine_free(e);
    rs_stop(proxy);
}

/* ---- the same through wh_config_load ------------------------------------------ */
static wh_engine *config_engine(oc_log *log)
{
    memset(log, 0, sizeof *log);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = log;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    return e;
}

static void config_document_keys(void)
{
    rs_server *s = rs_start("127.0.0.1", RS_OK);
    char doc[512];
    oc_log log;
    /* guard on: refused by name, nothing received */
    wh_engine *e = config_engine(&log);
    snprintf(doc, sizeof doc, "{\"ssrf_guard\": true, \"endpoints\": [{\"url\": \"%s\", "
             "\"max_attempts\": 3}]}", s->url);
    CHECK_EQ(wh_config_load(e, doc, strlen(doc)), WH_OK);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    oc_run(e, &log, 1, 10000);
    CHECK_EQ(log.recs[0].kind, WH_DEAD);
    CHECK_EQ(log.recs[0].error, WH_E_FORBIDDEN);
    CHECK(strstr(log.recs[0].msg, "127.0.0.1 is loopback (127.0.0.0/8)") != NULL);
    CHECK_EQ(rs_count(s), 0);
    wh_engine_free(e);
    /* with the range allowed: delivered */
    e = config_engine(&log);
    snprintf(doc, sizeof doc, "{\"ssrf_guard\": true, \"ssrf_allow\": [\"127.0.0.0/8\"], "
             "\"endpoints\": [{\"url\": \"%s\"}]}", s->url);
    CHECK_EQ(wh_config_load(e, doc, strlen(doc)), WH_OK);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    oc_run(e, &log, 1, 10000);
    CHECK_EQ(log.recs[0].kind, WH_DELIVERED);
    CHECK_EQ(rs_count(s), 1);
    /* https_only from the document applies to this document and later adds */
    const char *d2 = "{\"https_only\": true, \"endpoints\": [{\"url\": \"http://127.0.0.1:9/x\"}]}";
    CHECK_EQ(wh_config_load(e, d2, strlen(d2)), WH_E_CONFIG);
    CHECK(strstr(wh_last_error(e), "endpoints[0].url: only https:// URLs are accepted "
                                   "(https_only)") != NULL);
    wh_engine_free(e);
    rs_stop(s);
}

static void config_document_keys_refused_by_name(void)
{
    oc_log log;
    wh_engine *e = config_engine(&log);
    static const struct { const char *doc, *msg; } bad[] = {
        {"{\"ssrf_allow\": [\"127.0.0.0/8\", \"10.1.2.3/8\"], \"endpoints\": []}",
         "ssrf_allow[1]: \"10.1.2.3/8\": address has bits set past the prefix length"},
        {"{\"ssrf_allow\": \"127.0.0.0/8\", \"endpoints\": []}",
         "ssrf_allow: expected an array of CIDR strings"},
        {"{\"ssrf_guard\": \"yes\", \"endpoints\": []}", "ssrf_guard"},
        {"{\"proxy\": \"proxy.local:3128\", \"endpoints\": []}",
         "proxy: expected \"\" (none), \"env\" or a proxy URL"},
        {"{\"tls_min_version\": \"1.1\", \"endpoints\": []}",
         "tls_min_version: expected \"1.2\" or \"1.3\""},
        {"{\"ca_file\": \"/nonexistent/ca.pem\", \"endpoints\": []}",
         "ca_file: /nonexistent/ca.pem: No such file or directory"},
        {"{\"endpoints\": [{\"url\": \"https://127.0.0.1:9/\", \"pinned_public_key\": \"x\"}]}",
         "endpoints[0].pinned_public_key: expected \"sha256//"},
        {"{\"endpoints\": [{\"url\": \"https://127.0.0.1:9/\", \"tls_min_version\": \"1.0\"}]}",
         "endpoints[0].tls_min_version"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(wh_config_load(e, bad[i].doc, strlen(bad[i].doc)), WH_E_CONFIG);
        if (!strstr(wh_last_error(e), bad[i].msg))
            th_fail(__FILE__, __LINE__, "%s: \"%s\" lacks \"%s\"", bad[i].doc,
                    wh_last_error(e), bad[i].msg);
    }
    wh_engine_free(e);
    /* another transport: the guard has nowhere to go */
    wh_transport *t = NULL;
    CHECK_EQ(wh_transport_scripted_new(NULL, NULL, &t), WH_OK);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.transport = t;
    eo.transport_owned = 1;
    int err = 0;
    e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    const char *d = "{\"ssrf_guard\": true, \"endpoints\": [{\"url\": \"https://a.example/\"}]}";
    CHECK_EQ(wh_config_load(e, d, strlen(d)), WH_E_CONFIG);
    CHECK(strstr(wh_last_error(e), "ssrf_guard: applies to the default libcurl transport") != NULL);
    wh_engine_free(e);
    /* and so does wh_engine_new */
    CHECK_EQ(wh_transport_scripted_new(NULL, NULL, &t), WH_OK);
    eo.transport = t;
    eo.transport_owned = 0;
    eo.ssrf_guard = 1;
    CHECK(wh_engine_new(&eo, &err) == NULL);
    CHECK_EQ(err, WH_E_INVAL);
    wh_transport_free(t);
}

static void host_made_curl_transport_gets_engine_guard(void)
{
    /* a libcurl transport the host created and handed over: the engine's
     * ssrf_guard applies to it */
    rs_server *s = rs_start("127.0.0.1", RS_OK);
    wh_curl_options co;
    wh_curl_options_init(&co);
    wh_transport *t = NULL;
    CHECK_EQ(wh_transport_curl_new(&co, &t), WH_OK);
    oc_log log;
    memset(&log, 0, sizeof log);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = &log;
    eo.transport = t;
    eo.transport_owned = 1;
    eo.ssrf_guard = 1;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    int ep = oc_add(e, s->url, 2, 5000);
    CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    oc_run(e, &log, 1, 10000);
    const oc_rec *r = oc_final(&log, ep);
    CHECK(r != NULL);
    CHECK_EQ(r->error, WH_E_FORBIDDEN);
    CHECK_EQ(rs_count(s), 0);
    wh_engine_free(e);
    rs_stop(s);
    /* the transport's own options are checked */
    co.tls.min_version = 11;
    CHECK_EQ(wh_transport_curl_new(&co, &t), WH_E_INVAL);
    co.tls.min_version = 13;
    co.max_connections = -1;
    CHECK_EQ(wh_transport_curl_new(&co, &t), WH_E_INVAL);
}

TH_MAIN(TH_CASE(cidr_parse_spellings), TH_CASE(classify_ipv4_every_range),
        TH_CASE(classify_ipv6_every_range), TH_CASE(classify_embedded_ipv4),
        TH_CASE(classify_allow_list), TH_CASE(guard_off_every_spelling_delivers),
        TH_CASE(guard_on_no_spelling_reaches_loopback), TH_CASE(guard_allow_loopback_v4),
        TH_CASE(bad_allow_entry_refused_by_name), TH_CASE(bad_allow_entry_logged),
        TH_CASE(https_only_refuses_http), TH_CASE(proxy_environment_ignored_unless_env),
        TH_CASE(guard_checks_proxy_address), TH_CASE(config_document_keys),
        TH_CASE(config_document_keys_refused_by_name),
        TH_CASE(host_made_curl_transport_gets_engine_guard))
