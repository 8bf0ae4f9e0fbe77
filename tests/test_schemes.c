/* Header presets and signing schemes: the headers each preset sends, the
 * signatures of every scheme checked by the library's verify helpers and by
 * an independent implementation (the openssl command line), key rotation,
 * and refusal of bad options at wh_endpoint_add and in the JSON config. */
#include "fixture.h"
#include <webhook/webhook.h>
#include <webhook/verify.h>
#include <webhook/test.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WALL0 1700000000000LL
#define URL "http://127.0.0.1:9/hook"
#define SECRET1 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET2 "whsec_dGVzdC1zZWNyZXQtbnVtYmVyLXR3bw=="
#define HEX_SECRET "app-secret-7f3a"

/* the shared fixture (tests/support/fixture.h): manual clock, scripted
 * transport */
typedef tf fx;
static void fx_init(fx *f) { tf_init(f, 0); }
static void fx_done(fx *f) { tf_done(f); }

static void add(fx *f, const wh_endpoint_options *ep)
{
    int h = wh_endpoint_add(f->e, ep);
    if (h < 0) th_fail(__FILE__, __LINE__, "add: %s", wh_last_error(f->e));
}

/* An endpoint with a preset, at most one secret and an optional API key. */
static void add_preset(fx *f, const char *preset, const char *secret,
                       const char *api_key)
{
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {secret};
    ep.url = URL;
    ep.preset = preset;
    ep.secrets = secret ? secrets : NULL;
    ep.n_secrets = secret ? 1 : 0;
    ep.api_key = api_key;
    add(f, &ep);
}

static void send_one(fx *f, const char *data)
{
    CHECK_EQ(wh_emit(f->e, "call.ended", NULL, data, strlen(data), "evt_42"), 1);
    wh_poll(f->e, 0);
    CHECK_EQ(wh_scripted_count(f->t), 1);
}

static const char *hdr(fx *f, const char *name)
{
    return wh_scripted_header(f->t, 0, name);
}

/* ---- a scratch directory and the openssl command line ------------------------ */

static const char *tmpdir;

static void mktmp(void) { tmpdir = th_tmp_init("wh_schemes_"); }
static void rmtmp(void) { th_tmp_cleanup(); }

static void write_file(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "wb");
    CHECK(fp);
    CHECK_EQ(fwrite(p, 1, n, fp), n);
    CHECK_EQ(fclose(fp), 0);
}

static char *read_file(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    char *s = th_slurp(fp);
    fclose(fp);
    return s;
}

/* Run a shell command in tmpdir; its stdout, malloc'd. */
static char *run(const char *fmt, const char *arg)
{
    char cmd[512], inner[400];
    snprintf(inner, sizeof inner, fmt, arg);
    snprintf(cmd, sizeof cmd, "cd %s && %s", tmpdir, inner);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    char *out = th_slurp(p);
    int st = pclose(p);
    if (st != 0) th_fail(__FILE__, __LINE__, "command failed (%d): %s", st, inner);
    return out;
}

/* RSA key pair made by openssl: private.pem, public.pem. */
static void make_rsa_keys(void)
{
    free(run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
             "-out private.pem 2>/dev/null && openssl pkey -in private.pem -pubout "
             "-out public.pem%s", ""));
}

/* ---- presets: the headers sent ------------------------------------------------- */

static void test_preset_standard_default(void)
{
    fx f;
    fx_init(&f);
    add_preset(&f, NULL, SECRET1, NULL);
    const char *secrets[] = {SECRET1};
    send_one(&f, "{\"a\":1}");
    CHECK_STR(hdr(&f, "webhook-id"), "evt_42");
    CHECK_STR(hdr(&f, "webhook-timestamp"), "1700000000");
    CHECK_STR(hdr(&f, "webhook-attempt"), "1");
    CHECK_EQ(wh_verify_standard(secrets, 1, "evt_42", "1700000000", "{\"a\":1}", 7,
                                hdr(&f, "webhook-signature"), 1700000000, 0),
             WH_OK);
    fx_done(&f);
}

static void test_preset_svix(void)
{
    fx f;
    fx_init(&f);
    add_preset(&f, "svix", SECRET1, NULL);
    const char *secrets[] = {SECRET1};
    send_one(&f, "{\"a\":1}");
    CHECK_STR(hdr(&f, "svix-id"), "evt_42");
    CHECK_STR(hdr(&f, "svix-timestamp"), "1700000000");
    CHECK(!hdr(&f, "webhook-id"));
    CHECK_EQ(wh_verify_standard(secrets, 1, "evt_42", "1700000000", "{\"a\":1}", 7,
                                hdr(&f, "svix-signature"), 1700000000, 0),
             WH_OK);
    fx_done(&f);
}

/* Stream: X-WEBHOOK-ID, X-WEBHOOK-ATTEMPT, X-API-KEY, X-SIGNATURE (hex HMAC
 * of the body), checked by the helper and by `openssl dgst -hmac`. */
static void test_preset_stream_hex_hmac(void)
{
    fx f;
    fx_init(&f);
    mktmp();
    add_preset(&f, "stream", HEX_SECRET, "stream-api-key-1");
    const char *body = "{\"type\":\"call.ended\",\"call_cid\":\"default:123\"}";
    send_one(&f, body);
    CHECK_STR(hdr(&f, "X-WEBHOOK-ID"), "evt_42");
    CHECK_STR(hdr(&f, "X-WEBHOOK-ATTEMPT"), "1");
    CHECK_STR(hdr(&f, "X-API-KEY"), "stream-api-key-1");
    CHECK(!hdr(&f, "webhook-timestamp"));
    const char *sig = hdr(&f, "X-SIGNATURE");
    CHECK(sig);
    CHECK_EQ(strlen(sig), 64);
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, body, strlen(body), sig), WH_OK);
    CHECK_EQ(wh_verify_hmac_hex("other", body, strlen(body), sig), WH_E_SIGNATURE);
    write_file("body", body, strlen(body));
    char *out = run("openssl dgst -sha256 -hmac %s -r body", HEX_SECRET);
    CHECK(strncmp(out, sig, 64) == 0);
    free(out);
    rmtmp();
    fx_done(&f);
}

static void test_preset_pusher_and_sendbird(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {HEX_SECRET};
    ep.url = URL;
    ep.preset = "pusher";
    ep.secrets = secrets;
    ep.n_secrets = 1;
    ep.api_key = "app-key-1";
    ep.body = WH_BODY_PUSHER;
    add(&f, &ep);
    CHECK_EQ(wh_emit(f.e, "member_added", "presence-room", "{\"user_id\":\"7\"}", 15, NULL), 1);
    wh_poll(f.e, 0);
    wh_scripted_request r;
    CHECK_EQ(wh_scripted_get(f.t, 0, &r), WH_OK);
    CHECK_STR(wh_scripted_header(f.t, 0, "X-Pusher-Key"), "app-key-1");
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, r.body, r.body_len,
                                wh_scripted_header(f.t, 0, "X-Pusher-Signature")),
             WH_OK);
    CHECK(!wh_scripted_header(f.t, 0, "webhook-id"));
    fx_done(&f);

    fx_init(&f);
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.preset = "sendbird";
    ep.secrets = secrets;
    ep.n_secrets = 1;
    add(&f, &ep);
    const char *sb = "{\"category\":\"direct_call:end\"}";
    send_one(&f, sb);
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, sb, strlen(sb),
                                hdr(&f, "x-sendbird-signature")),
             WH_OK);
    fx_done(&f);
}

/* Dyte: dyte-uuid and dyte-signature, base64 RSA-SHA256 of the body, checked
 * by the helper and by `openssl dgst -sha256 -verify`. */
static void test_preset_dyte_rsa(void)
{
    mktmp();
    make_rsa_keys();
    char *priv = read_file("private.pem"), *pub = read_file("public.pem");
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.preset = "dyte";
    ep.private_key_pem = priv;
    add(&f, &ep);
    const char *body = "{\"event\":\"meeting.ended\",\"meeting\":{\"id\":\"m-1\"}}";
    send_one(&f, body);
    CHECK_STR(hdr(&f, "dyte-uuid"), "evt_42");
    const char *sig = hdr(&f, "dyte-signature");
    CHECK(sig);
    CHECK_EQ(wh_verify_rsa_sha256(pub, body, strlen(body), sig), WH_OK);
    CHECK_EQ(wh_verify_rsa_sha256(pub, body, strlen(body) - 1, sig), WH_E_SIGNATURE);
    write_file("body", body, strlen(body));
    write_file("sig.b64", sig, strlen(sig));
    char *out = run("openssl base64 -d -A -in sig.b64 -out sig.bin && "
                    "openssl dgst -sha256 -verify public.pem -signature sig.bin body%s", "");
    CHECK(strstr(out, "Verified OK"));
    free(out);
    /* a tampered body fails the independent check too */
    write_file("body", "{}", 2);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cd %s && openssl dgst -sha256 -verify public.pem "
             "-signature sig.bin body >/dev/null 2>&1", tmpdir);
    CHECK(system(cmd) != 0);
    fx_done(&f);
    free(priv);
    free(pub);
    rmtmp();
}

/* Several secrets: one v1 entry per secret, each valid on its own. */
static void test_rotation_one_signature_per_secret(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {SECRET1, SECRET2};
    ep.url = URL;
    ep.secrets = secrets;
    ep.n_secrets = 2;
    add(&f, &ep);
    send_one(&f, "{\"a\":1}");
    const char *sig = hdr(&f, "webhook-signature");
    CHECK(sig);
    const char *sp = strchr(sig, ' ');
    CHECK(sp && !strchr(sp + 1, ' '));
    char first[128], second[128];
    snprintf(first, sizeof first, "%.*s", (int)(sp - sig), sig);
    snprintf(second, sizeof second, "%s", sp + 1);
    const char *s1[] = {SECRET1}, *s2[] = {SECRET2};
    CHECK_EQ(wh_verify_standard(s1, 1, "evt_42", "1700000000", "{\"a\":1}", 7, first,
                                1700000000, 0), WH_OK);
    CHECK_EQ(wh_verify_standard(s2, 1, "evt_42", "1700000000", "{\"a\":1}", 7, second,
                                1700000000, 0), WH_OK);
    CHECK_EQ(wh_verify_standard(s1, 1, "evt_42", "1700000000", "{\"a\":1}", 7, second,
                                1700000000, 0), WH_E_SIGNATURE);
    /* and the receiver holding only the new secret accepts the whole header */
    CHECK_EQ(wh_verify_standard(s2, 1, "evt_42", "1700000000", "{\"a\":1}", 7, sig,
                                1700000000, 0), WH_OK);
    fx_done(&f);
}

/* Header names overridden one by one; "" sends no such header; a static
 * custom header rides along. */
static void test_header_name_overrides(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {HEX_SECRET};
    const char *headers[] = {"X-Custom-Header: Custom Header"};
    ep.url = URL;
    ep.secrets = secrets;
    ep.n_secrets = 1;
    ep.signing = WH_SIGN_HMAC_HEX;
    ep.id_header = "X-Request-Id";
    ep.attempt_header = "";
    ep.timestamp_header = "X-Sent-At";
    ep.signature_header = "X-Hub-Signature-256";
    ep.api_key_header = "Authorization";
    ep.api_key = "Bearer t0k3n";
    ep.headers = headers;
    ep.n_headers = 1;
    add(&f, &ep);
    send_one(&f, "{}");
    CHECK_STR(hdr(&f, "X-Request-Id"), "evt_42");
    CHECK_STR(hdr(&f, "X-Sent-At"), "1700000000");
    CHECK_STR(hdr(&f, "Authorization"), "Bearer t0k3n");
    CHECK_STR(hdr(&f, "X-Custom-Header"), "Custom Header");
    CHECK(!hdr(&f, "webhook-attempt"));
    CHECK(!hdr(&f, "webhook-id"));
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, "{}", 2, hdr(&f, "X-Hub-Signature-256")), WH_OK);
    fx_done(&f);
}

/* A preset's scheme without its keys sends unsigned requests; an explicit
 * scheme without keys is refused. */
static void test_scheme_needs_keys(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.preset = "stream";
    add(&f, &ep);
    send_one(&f, "{}");
    CHECK(!hdr(&f, "X-SIGNATURE"));
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    ep.signing = WH_SIGN_STANDARD;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_SECRET);
    CHECK(strstr(wh_last_error(f.e), "secrets"));
    ep.signing = WH_SIGN_RSA_SHA256;
    ep.private_key_pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
    CHECK_INT(wh_endpoint_add(f.e, &ep), <, 0);
    CHECK(strstr(wh_last_error(f.e), "private_key"));
    fx_done(&f);
}

/* ---- refusals ---------------------------------------------------------------- */

static void test_bad_options_refused_at_add(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = URL;
    const char *crlf[] = {"X-Evil: a\r\nX-Injected: b"};
    ep.headers = crlf;
    ep.n_headers = 1;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_HEADER);
    CHECK(strstr(wh_last_error(f.e), "headers[0]"));
    ep.headers = NULL;
    ep.n_headers = 0;
    ep.signing = (wh_sign_scheme)42;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "signing"));
    ep.signing = WH_SIGN_DEFAULT;
    ep.preset = "carrier-pigeon";
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "preset"));
    ep.preset = NULL;
    ep.id_header = "X Bad Name";
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_HEADER);
    CHECK(strstr(wh_last_error(f.e), "id_header"));
    ep.id_header = NULL;
    ep.api_key = "k\nX-Injected: 1";
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_HEADER);
    CHECK(strstr(wh_last_error(f.e), "api_key"));
    ep.api_key = NULL;
    ep.mode = WH_MODE_BATCH;
    ep.batch_max_events = 0;
    CHECK_EQ(wh_endpoint_add(f.e, &ep), WH_E_INVAL);
    CHECK(strstr(wh_last_error(f.e), "batch_max_events"));
    /* nothing was added by the refused calls */
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 0);
    fx_done(&f);
}

static void expect_config_error(const char *doc, const char *needle)
{
    fx f;
    fx_init(&f);
    int rc = wh_config_load(f.e, doc, strlen(doc));
    if (rc != WH_E_CONFIG)
        th_fail(__FILE__, __LINE__, "%s: status %s (%s)", doc, wh_status_name(rc),
                wh_last_error(f.e));
    if (!strstr(wh_last_error(f.e), needle))
        th_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", wh_last_error(f.e),
                needle);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 0); /* all or nothing */
    fx_done(&f);
}

static void test_bad_options_refused_in_config(void)
{
    expect_config_error("{\"endpoints\":[{\"url\":\"http://a.example/\","
                        "\"headers\":{\"X-A\":\"1\\r\\nX-B: 2\"}}]}",
                        "endpoints[0].headers[\"X-A\"]");
    expect_config_error("{\"endpoints\":[{\"url\":\"http://a.example/\","
                        "\"signing\":\"md5\"}]}",
                        "endpoints[0].signing: unknown value \"md5\"");
    expect_config_error("{\"endpoints\":[{\"url\":\"http://a.example/\"},"
                        "{\"url\":\"http://b.example/\",\"batch\":{\"max_events\":0}}]}",
                        "endpoints[1].batch.max_events");
    expect_config_error("{\"endpoints\":[{\"url\":\"http://a.example/\","
                        "\"body\":\"xml\"}]}",
                        "endpoints[0].body: unknown value \"xml\"");
    expect_config_error("{\"endpoints\":[{\"url\":\"http://a.example/\","
                        "\"header_names\":{\"id\":\"bad name\"}}]}",
                        "endpoints[0]");
    expect_config_error("{\"webhooks\":[{\"url\":\"http://a.example/\","
                        "\"filter\":{\"channel_name_contains\":\"x\"}}]}",
                        "webhooks[0].filter: unknown key \"channel_name_contains\"");
    expect_config_error("{\"webhooks\":[],\"batching\":{\"enabled\":1}}",
                        "config.batching.enabled");
    expect_config_error("{\"endpoints\":[{\"url\":\"http://a.example/\","
                        "\"private_key_file\":\"/nonexistent/key.pem\"}]}",
                        "endpoints[0].private_key_file: cannot open");
}

/* Every new key of the JSON config reaches the endpoint. */
static void test_config_keys_applied(void)
{
    mktmp();
    make_rsa_keys();
    char *pub = read_file("public.pem");
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"endpoints\":[{\"id\":\"dyte\",\"url\":\"http://127.0.0.1:9/d\","
             "\"preset\":\"dyte\",\"private_key_file\":\"%s/private.pem\"},"
             "{\"id\":\"b\",\"url\":\"http://127.0.0.1:9/b\",\"mode\":\"batch\","
             "\"batch\":{\"max_events\":2,\"linger_ms\":20},\"body\":\"standard\","
             "\"preset\":\"stream\",\"secrets\":[\"" HEX_SECRET "\"],"
             "\"api_key\":\"k1\",\"header_names\":{\"attempt\":\"\"}}]}",
             tmpdir);
    fx f;
    fx_init(&f);
    if (wh_config_load(f.e, doc, strlen(doc)) != WH_OK)
        th_fail(__FILE__, __LINE__, "load: %s", wh_last_error(f.e));
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{\"x\":1}", 7, "e1"), 2);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{\"x\":2}", 7, "e2"), 2);
    wh_poll(f.e, 0);
    CHECK_EQ(wh_scripted_count(f.t), 3); /* 2 single (dyte) + 1 full batch */
    int seen_batch = 0, seen_dyte = 0;
    for (size_t i = 0; i < 3; i++) {
        wh_scripted_request r;
        CHECK_EQ(wh_scripted_get(f.t, i, &r), WH_OK);
        if (strcmp(r.url, "http://127.0.0.1:9/b") == 0) {
            seen_batch++;
            CHECK(strncmp(r.body, "[{\"type\":\"t\",\"timestamp\":", 25) == 0);
            CHECK_STR(wh_scripted_header(f.t, i, "X-API-KEY"), "k1");
            CHECK(!wh_scripted_header(f.t, i, "X-WEBHOOK-ATTEMPT"));
            CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, r.body, r.body_len,
                                        wh_scripted_header(f.t, i, "X-SIGNATURE")),
                     WH_OK);
        } else {
            seen_dyte++;
            CHECK_EQ(wh_verify_rsa_sha256(pub, r.body, r.body_len,
                                          wh_scripted_header(f.t, i, "dyte-signature")),
                     WH_OK);
        }
    }
    CHECK_EQ(seen_batch, 1);
    CHECK_EQ(seen_dyte, 2);
    fx_done(&f);
    free(pub);
    rmtmp();
}

/* ---- verify helpers: bad input ------------------------------------------------ */

static void test_verify_helpers_bad_input(void)
{
    CHECK_EQ(wh_verify_hmac_hex(NULL, "", 0, "00"), WH_E_INVAL);
    CHECK_EQ(wh_verify_hmac_hex("k", "", 0, "zz"), WH_E_SIGNATURE);
    CHECK_EQ(wh_verify_hmac_hex("k", "", 0, ""), WH_E_SIGNATURE);
    CHECK_EQ(wh_verify_rsa_sha256(NULL, "", 0, "AA=="), WH_E_INVAL);
    CHECK_EQ(wh_verify_rsa_sha256("not a key", "", 0, "AA=="), WH_E_SECRET);
    /* upper-case hex is accepted */
    fx f;
    fx_init(&f);
    add_preset(&f, "sendbird", HEX_SECRET, NULL);
    send_one(&f, "{}");
    char up[65];
    snprintf(up, sizeof up, "%s", hdr(&f, "x-sendbird-signature"));
    for (char *c = up; *c; c++)
        if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, "{}", 2, up), WH_OK);
    up[0] = up[0] == '0' ? '1' : '0';
    CHECK_EQ(wh_verify_hmac_hex(HEX_SECRET, "{}", 2, up), WH_E_SIGNATURE);
    fx_done(&f);
}

/* Every JSON block of the README's seed section is a valid document (the
 * Dyte key path is pointed at a generated key). */
static void test_readme_examples_load(void)
{
    const char *src = getenv("WH_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/README.md", src && *src ? src : ".");
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    char *readme = th_slurp(fp);
    fclose(fp);
    mktmp();
    make_rsa_keys();
    char keypath[128];
    snprintf(keypath, sizeof keypath, "%s/private.pem", tmpdir);
    const char *section = strstr(readme, "## The seed services, as configuration");
    CHECK(section);
    int blocks = 0;
    for (const char *p = section; (p = strstr(p, "```json\n")) && blocks < 20;) {
        p += 8;
        const char *end = strstr(p, "```");
        CHECK(end);
        const char *next_section = strstr(section + 3, "\n## ");
        if (next_section && p > next_section) break;
        /* the document, with the example key path replaced */
        size_t n = (size_t)(end - p);
        char *doc = malloc(n + 256);
        CHECK(doc);
        memcpy(doc, p, n);
        doc[n] = '\0';
        char *k = strstr(doc, "/etc/myapp/dyte-webhooks.pem");
        if (k) {
            char rest[4096];
            snprintf(rest, sizeof rest, "%s", k + strlen("/etc/myapp/dyte-webhooks.pem"));
            snprintf(k, 256 + n - (size_t)(k - doc), "%s%s", keypath, rest);
        }
        fx f;
        fx_init(&f);
        int rc = wh_config_load(f.e, doc, strlen(doc));
        if (rc != WH_OK)
            th_fail(__FILE__, __LINE__, "README block %d: %s", blocks + 1,
                    wh_last_error(f.e));
        fx_done(&f);
        free(doc);
        blocks++;
        p = end + 3;
    }
    CHECK_EQ(blocks, 5); /* one per seed service */
    free(readme);
    rmtmp();
}

TH_MAIN(TH_CASE(test_preset_standard_default),
        TH_CASE(test_preset_svix),
        TH_CASE(test_preset_stream_hex_hmac),
        TH_CASE(test_preset_pusher_and_sendbird),
        TH_CASE(test_preset_dyte_rsa),
        TH_CASE(test_rotation_one_signature_per_secret),
        TH_CASE(test_header_name_overrides),
        TH_CASE(test_scheme_needs_keys),
        TH_CASE(test_bad_options_refused_at_add),
        TH_CASE(test_bad_options_refused_in_config),
        TH_CASE(test_config_keys_applied),
        TH_CASE(test_verify_helpers_bad_input),
        TH_CASE(test_readme_examples_load))
