/* TLS options against a local HTTPS receiver (tests/support/tls_server.py,
 * Python's ssl module) whose private CA is made at test time with the
 * openssl CLI (tests/support/tls_certs.sh): trusted through ca_file or not,
 * mutual TLS, public-key pinning, minimum version, the dangerous switch,
 * per-endpoint settings side by side, connection reuse, and bad options
 * refused by name. */
#include "harness.h"
#include "outcomes.h"
#include "proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *source_dir(void)
{
    const char *d = getenv("WH_SOURCE_DIR");
    return d && *d ? d : ".";
}

typedef struct tls_srv {
    pid_t pid;
    int port;
    char log[600];
    char url[128];
} tls_srv;

static char certdir[512];

static const char *cert(const char *name)
{
    return th_tmp_path(name);
}

static void make_certs(void)
{
    snprintf(certdir, sizeof certdir, "%s", th_tmp_init("whtls"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sh %s/tests/support/tls_certs.sh %s", source_dir(), certdir);
    CHECK_EQ(system(cmd), 0);
}

/* Start the receiver; extra: "--client-ca PATH", "--max-tls 1.2" or NULL. */
static void srv_start(tls_srv *s, const char *extra1, const char *extra2)
{
    memset(s, 0, sizeof s[0]);
    snprintf(s->log, sizeof s->log, "%s", cert("server.log"));
    char script[600];
    snprintf(script, sizeof script, "%s/tests/support/tls_server.py", source_dir());
    char a_cert[600], a_key[600], a_x1[600] = "", a_x2[600] = "";
    snprintf(a_cert, sizeof a_cert, "%s", cert("server.pem"));
    snprintf(a_key, sizeof a_key, "%s", cert("server.key"));
    char *argv[10];
    int n = 0;
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = a_cert;
    argv[n++] = a_key;
    argv[n++] = s->log;
    if (extra1) {
        snprintf(a_x1, sizeof a_x1, "%s", extra1);
        argv[n++] = a_x1;
    }
    if (extra2) {
        snprintf(a_x2, sizeof a_x2, "%s", extra2);
        argv[n++] = a_x2;
    }
    argv[n] = NULL;
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    fflush(stdout);
    s->pid = fork();
    CHECK(s->pid >= 0);
    if (s->pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execvp("python3", argv);
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[128] = "";
    CHECK(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    CHECK(sscanf(line, "listening %d", &s->port) == 1 && s->port > 0);
    snprintf(s->url, sizeof s->url, "https://127.0.0.1:%d/hook", s->port);
}

static void srv_stop(tls_srv *s)
{
    th_kill9(s->pid);
    unlink(s->log);
}

/* Lines of the server log starting with `what`. */
static int srv_lines(const tls_srv *s, const char *what)
{
    char *text = th_read_file(s->log);
    int n = 0;
    size_t wl = strlen(what);
    for (char *p = text; *p;) {
        if (strncmp(p, what, wl) == 0) n++;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    free(text);
    return n;
}

typedef struct tls_case {
    const char *ca_file, *cert_file, *key_file, *min, *pin;
    int insecure;
    uint32_t max_in_flight;
} tls_case;

/* Deliver n events to s with the endpoint's TLS fields from c; returns how
 * many were delivered; the last final outcome's message goes to msg. */
static int deliver(const tls_srv *s, const tls_case *c, int n, char *msg, size_t msg_size)
{
    oc_log *log = calloc(1, sizeof *log);
    CHECK(log != NULL);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = log;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.url = s->url;
    o.max_attempts = 1;
    o.timeout_ms = 10000;
    o.max_in_flight = c->max_in_flight ? c->max_in_flight : 4;
    o.ca_file = c->ca_file;
    o.client_cert_file = c->cert_file;
    o.client_key_file = c->key_file;
    o.tls_min_version = c->min;
    o.pinned_public_key = c->pin;
    o.insecure_skip_verify_DANGEROUS = c->insecure;
    int ep = wh_endpoint_add(e, &o);
    if (ep <= 0) th_fail(__FILE__, __LINE__, "wh_endpoint_add: %s", wh_last_error(e));
    for (int i = 0; i < n; i++) CHECK_EQ(wh_emit(e, "t", NULL, "{}", 2, NULL), 1);
    oc_run(e, log, n, 30000);
    int delivered = 0;
    for (int i = 0; i < log->n; i++)
        if (log->recs[i].kind == WH_DELIVERED) delivered++;
    const oc_rec *r = oc_final(log, ep);
    if (msg) snprintf(msg, msg_size, "%s", r ? r->msg : "");
    wh_engine_free(e);
    free(log);
    return delivered;
}

static void private_ca_trusted_through_ca_file(void)
{
    make_certs();
    tls_srv s;
    srv_start(&s, NULL, NULL);
    tls_case c = {.ca_file = cert("ca.pem")};
    CHECK_EQ(deliver(&s, &c, 20, NULL, 0), 20);
    CHECK_EQ(srv_lines(&s, "req "), 20);
    srv_stop(&s);
    th_tmp_cleanup();
}

static void private_ca_refused_without_ca_file(void)
{
    make_certs();
    tls_srv s;
    srv_start(&s, NULL, NULL);
    tls_case c = {0};
    char msg[512];
    CHECK_EQ(deliver(&s, &c, 3, msg, sizeof msg), 0);
    if (!strstr(msg, "certificate"))
        th_fail(__FILE__, __LINE__, "message does not name the certificate: %s", msg);
    CHECK_EQ(srv_lines(&s, "req "), 0);
    srv_stop(&s);
    th_tmp_cleanup();
}

static void engine_default_ca_file_and_per_endpoint_override(void)
{
    /* the engine's ca_file is every endpoint's default; an endpoint with
     * another CA file (here: a file that trusts nothing of ours) fails,
     * side by side with the one that inherits */
    make_certs();
    tls_srv s;
    srv_start(&s, NULL, NULL);
    oc_log *log = calloc(1, sizeof *log);
    CHECK(log != NULL);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = log;
    eo.ca_file = cert("ca.pem");
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.url = s.url;
    o.max_attempts = 1;
    o.channel_prefix = "a";
    int ep_a = wh_endpoint_add(e, &o);
    CHECK(ep_a > 0);
    o.id = "other-ca";
    o.channel_prefix = "b";
    o.ca_file = cert("client.pem"); /* a certificate that is not our CA */
    int ep_b = wh_endpoint_add(e, &o);
    CHECK(ep_b > 0);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(wh_emit(e, "t", "a", "{}", 2, NULL), 1);
        CHECK_EQ(wh_emit(e, "t", "b", "{}", 2, NULL), 1);
    }
    oc_run(e, log, 20, 30000);
    int da = 0, db = 0;
    for (int i = 0; i < log->n; i++) {
        if (log->recs[i].kind != WH_DELIVERED) continue;
        if (log->recs[i].endpoint == ep_a) da++;
        if (log->recs[i].endpoint == ep_b) db++;
    }
    CHECK_EQ(da, 10);
    CHECK_EQ(db, 0);
    CHECK_EQ(srv_lines(&s, "req "), 10);
    wh_engine_free(e);
    free(log);
    srv_stop(&s);
    th_tmp_cleanup();
}

static void mtls_every_event_with_client_cert_none_without(void)
{
    make_certs();
    char ca[600];
    snprintf(ca, sizeof ca, "%s", cert("ca.pem"));
    tls_srv s;
    srv_start(&s, "--client-ca", ca);
    tls_case with = {.ca_file = ca, .cert_file = cert("client.pem"), .key_file = cert("client.key")};
    CHECK_EQ(deliver(&s, &with, 25, NULL, 0), 25);
    CHECK_EQ(srv_lines(&s, "req "), 25);
    tls_case without = {.ca_file = ca};
    char msg[512];
    CHECK_EQ(deliver(&s, &without, 10, msg, sizeof msg), 0);
    CHECK(msg[0] != '\0');
    CHECK_EQ(srv_lines(&s, "req "), 25); /* none more */
    srv_stop(&s);
    th_tmp_cleanup();
}

static void pinned_public_key_right_and_wrong(void)
{
    make_certs();
    tls_srv s;
    srv_start(&s, NULL, NULL);
    char *right = th_read_file(cert("server.pin"));
    char *wrong = th_read_file(cert("other.pin"));
    tls_case ok = {.ca_file = cert("ca.pem"), .pin = right};
    CHECK_EQ(deliver(&s, &ok, 5, NULL, 0), 5);
    tls_case bad = {.ca_file = cert("ca.pem"), .pin = wrong};
    char msg[512];
    CHECK_EQ(deliver(&s, &bad, 3, msg, sizeof msg), 0);
    if (!strstr(msg, "public key"))
        th_fail(__FILE__, __LINE__, "message does not name the pin: %s", msg);
    CHECK_EQ(srv_lines(&s, "req "), 5);
    free(right);
    free(wrong);
    srv_stop(&s);
    th_tmp_cleanup();
}

static void min_version_13_against_12_only_server_fails(void)
{
    make_certs();
    tls_srv s;
    srv_start(&s, "--max-tls", "1.2");
    tls_case v12 = {.ca_file = cert("ca.pem"), .min = "1.2"};
    CHECK_EQ(deliver(&s, &v12, 3, NULL, 0), 3);
    tls_case v13 = {.ca_file = cert("ca.pem"), .min = "1.3"};
    char msg[512];
    CHECK_EQ(deliver(&s, &v13, 3, msg, sizeof msg), 0);
    CHECK(msg[0] != '\0');
    CHECK_EQ(srv_lines(&s, "req "), 3);
    srv_stop(&s);
    th_tmp_cleanup();
}

static void dangerous_switch_skips_verification(void)
{
    make_certs();
    tls_srv s;
    srv_start(&s, NULL, NULL);
    tls_case c = {.insecure = 1};
    CHECK_EQ(deliver(&s, &c, 3, NULL, 0), 3);
    srv_stop(&s);
    th_tmp_cleanup();
}

static void connections_reused_per_in_flight_slot(void)
{
    /* 200 events, 4 in flight: every slot keeps its TLS connection */
    make_certs();
    tls_srv s;
    srv_start(&s, NULL, NULL);
    tls_case c = {.ca_file = cert("ca.pem"), .max_in_flight = 4};
    CHECK_EQ(deliver(&s, &c, 200, NULL, 0), 200);
    CHECK_EQ(srv_lines(&s, "req "), 200);
    CHECK_INT(srv_lines(&s, "conn"), <=, 4);
    srv_stop(&s);
    th_tmp_cleanup();
}

static void bad_tls_options_refused_by_name(void)
{
    make_certs();
    wh_engine *e = wh_engine_new(NULL, NULL);
    CHECK(e != NULL);
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.url = "https://127.0.0.1:9/hook";
    o.tls_min_version = "1.1";
    CHECK_EQ(wh_endpoint_add(e, &o), WH_E_INVAL);
    CHECK(strstr(wh_last_error(e), "endpoint.tls_min_version") != NULL);
    o.tls_min_version = NULL;
    o.ca_file = "/nonexistent/ca.pem";
    CHECK_EQ(wh_endpoint_add(e, &o), WH_E_IO);
    CHECK(strstr(wh_last_error(e), "endpoint.ca_file") != NULL);
    CHECK(strstr(wh_last_error(e), "/nonexistent/ca.pem") != NULL);
    o.ca_file = NULL;
    o.pinned_public_key = "sha256//short";
    CHECK_EQ(wh_endpoint_add(e, &o), WH_E_INVAL);
    CHECK(strstr(wh_last_error(e), "endpoint.pinned_public_key") != NULL);
    o.pinned_public_key = NULL;
    o.client_key_file = cert("client.key");
    CHECK_EQ(wh_endpoint_add(e, &o), WH_E_INVAL);
    CHECK(strstr(wh_last_error(e), "endpoint.client_key_file: requires client_cert_file") != NULL);
    o.client_cert_file = cert("client.pem");
    CHECK(wh_endpoint_add(e, &o) > 0);
    wh_engine_free(e);
    /* engine-level: refused at creation */
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.tls_min_version = "TLSv1.3";
    int err = 0;
    CHECK(wh_engine_new(&eo, &err) == NULL);
    CHECK_EQ(err, WH_E_INVAL);
    th_tmp_cleanup();
}

static void config_tls_keys(void)
{
    /* the document's ca_file is the default; an endpoint's own keys win */
    make_certs();
    char ca[600], cl[600], key[600];
    snprintf(ca, sizeof ca, "%s", cert("ca.pem"));
    snprintf(cl, sizeof cl, "%s", cert("client.pem"));
    snprintf(key, sizeof key, "%s", cert("client.key"));
    tls_srv s;
    srv_start(&s, "--client-ca", ca);
    oc_log *log = calloc(1, sizeof *log);
    CHECK(log != NULL);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = oc_on_outcome;
    eo.outcome_user = log;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e != NULL);
    char doc[4096];
    snprintf(doc, sizeof doc,
             "{\"ca_file\": \"%s\", \"https_only\": true, \"tls_min_version\": \"1.2\", \"endpoints\": ["
             "{\"id\": \"mtls\", \"url\": \"%s\", \"client_cert_file\": \"%s\","
             " \"client_key_file\": \"%s\", \"max_attempts\": 1,"
             " \"filter\": {\"channel_name_starts_with\": \"a\"}},"
             "{\"id\": \"no-cert\", \"url\": \"%s\", \"max_attempts\": 1,"
             " \"filter\": {\"channel_name_starts_with\": \"b\"}}]}",
             ca, s.url, cl, key, s.url);
    if (wh_config_load(e, doc, strlen(doc)) != WH_OK)
        th_fail(__FILE__, __LINE__, "wh_config_load: %s", wh_last_error(e));
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(wh_emit(e, "t", "a", "{}", 2, NULL), 1);
        CHECK_EQ(wh_emit(e, "t", "b", "{}", 2, NULL), 1);
    }
    oc_run(e, log, 10, 30000);
    int da = 0, db = 0;
    for (int i = 0; i < log->n; i++) {
        if (log->recs[i].kind != WH_DELIVERED) continue;
        if (log->recs[i].endpoint == wh_endpoint_find(e, "mtls")) da++;
        if (log->recs[i].endpoint == wh_endpoint_find(e, "no-cert")) db++;
    }
    CHECK_EQ(da, 5);
    CHECK_EQ(db, 0);
    CHECK_EQ(srv_lines(&s, "req "), 5);
    wh_engine_free(e);
    free(log);
    srv_stop(&s);
    th_tmp_cleanup();
}

TH_MAIN(TH_CASE(private_ca_trusted_through_ca_file), TH_CASE(private_ca_refused_without_ca_file),
        TH_CASE(engine_default_ca_file_and_per_endpoint_override),
        TH_CASE(mtls_every_event_with_client_cert_none_without),
        TH_CASE(pinned_public_key_right_and_wrong),
        TH_CASE(min_version_13_against_12_only_server_fails),
        TH_CASE(dangerous_switch_skips_verification),
        TH_CASE(connections_reused_per_in_flight_slot), TH_CASE(bad_tls_options_refused_by_name),
        TH_CASE(config_tls_keys))
