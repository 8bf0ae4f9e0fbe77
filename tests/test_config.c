/* wh_config_load / wh_config_load_file against the real engine, with a
 * manual clock and the scripted transport (no network, no sleeping). */
#include "harness.h"
#include <webhook/webhook.h>
#include <webhook/verify.h>
#include <webhook/test.h>

#include "config.h" /* the key tables (internal), for the README check */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET1 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET2 "whsec_dGVzdC1zZWNyZXQtMg=="
#define WALL0 INT64_C(1700000000000)

typedef struct fx {
    wh_manual_clock *clock;
    wh_transport *t;
    wh_engine *e;
} fx;

static void fx_init(fx *f)
{
    f->clock = wh_manual_clock_new(1000, WALL0);
    CHECK(f->clock != NULL);
    CHECK_EQ(wh_transport_scripted_new(wh_manual_clock_vtable(f->clock),
                                       f->clock, &f->t), WH_OK);
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(f->clock);
    o.transport = f->t;
    o.transport_owned = 1;
    o.seed = 42;
    int err = 0;
    f->e = wh_engine_new(&o, &err);
    CHECK(f->e != NULL);
    CHECK_EQ(err, WH_OK);
}

static void fx_free(fx *f)
{
    wh_engine_free(f->e);
    wh_manual_clock_free(f->clock);
}

static int load(fx *f, const char *doc)
{
    return wh_config_load(f->e, doc, strlen(doc));
}

/* Fail unless the last error contains `needle`. */
#define CHECK_MSG(f, needle)                                                  \
    do {                                                                      \
        const char *m_ = wh_last_error((f)->e);                               \
        if (!m_ || !strstr(m_, (needle)))                                     \
            th_fail(__FILE__, __LINE__, "last error \"%s\" lacks \"%s\"",     \
                    m_ ? m_ : "(null)", (needle));                            \
    } while (0)

/* No endpoint at all in the engine: an event matches nothing. */
static void check_empty(fx *f)
{
    CHECK_EQ(wh_emit(f->e, "message.created", "room-1", "{}", 2, NULL), 0);
    CHECK_EQ(wh_endpoint_find(f->e, "good"), WH_E_NOT_FOUND);
}

/* ---- valid documents --------------------------------------------------------- */

static void test_three_endpoints(void)
{
    fx f;
    fx_init(&f);
    const char *doc =
        "{\"endpoints\": [\n"
        "  {\"id\": \"a\", \"url\": \"https://a.example/hooks\",\n"
        "   \"event_types\": [\"message.created\", \"message.deleted\"],\n"
        "   \"secret\": \"" SECRET1 "\",\n"
        "   \"headers\": {\"X-Api-Key\": \"k1\", \"X-Team\": \"blue\"},\n"
        "   \"filter\": {\"channel_name_starts_with\": \"room-\",\n"
        "              \"channel_name_ends_with\": \"-vip\"},\n"
        "   \"timeout_ms\": 3000, \"connect_timeout_ms\": 1000,\n"
        "   \"max_attempts\": 4, \"max_in_flight\": 15,\n"
        "   \"retry\": {\"initial_ms\": 500, \"max_ms\": 60000, \"multiplier\": 3}},\n"
        "  {\"id\": \"b\", \"url\": \"http://b.example:8080/in\",\n"
        "   \"secret\": [\"" SECRET1 "\", \"" SECRET2 "\"], \"event_types\": [\"*\"]},\n"
        "  {\"id\": \"c\", \"url\": \"http://c.example/\", \"max_attempts\": 4294967295}\n"
        "]}\n";
    CHECK_EQ(load(&f, doc), WH_OK);
    int a = wh_endpoint_find(f.e, "a"), b = wh_endpoint_find(f.e, "b"),
        c = wh_endpoint_find(f.e, "c");
    CHECK(a > 0);
    CHECK(b > 0);
    CHECK(c > 0);
    CHECK(a != b && b != c && a != c);
    CHECK_EQ(wh_endpoint_find(f.e, "d"), WH_E_NOT_FOUND);
    /* "a" takes message.created on room-*-vip only; b and c take everything */
    CHECK_EQ(wh_emit(f.e, "message.created", "room-1-vip", "{}", 2, NULL), 3);
    CHECK_EQ(wh_emit(f.e, "message.created", "room-1", "{}", 2, NULL), 2);
    CHECK_EQ(wh_emit(f.e, "message.created", "lobby-vip", "{}", 2, NULL), 2);
    CHECK_EQ(wh_emit(f.e, "call.started", "room-1-vip", "{}", 2, NULL), 2);
    /* An empty document adds nothing and is not an error. */
    CHECK_EQ(load(&f, "{\"endpoints\": []}"), WH_OK);
    /* A second document adds to the first. */
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"id\": \"d\", \"url\": \"http://d.example/\"}]}"),
             WH_OK);
    CHECK(wh_endpoint_find(f.e, "d") > 0);
    /* The length is honoured: the text after it is not read. */
    const char *two = "{\"endpoints\": [{\"id\": \"e\", \"url\": \"http://e.example/\"}]}GARBAGE";
    CHECK_EQ(wh_config_load(f.e, two, strlen(two) - 7), WH_OK);
    CHECK(wh_endpoint_find(f.e, "e") > 0);
    fx_free(&f);
}

static void test_event_types_empty_vs_absent(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"id\": \"none\", \"url\": \"http://x.example/\","
                      " \"event_types\": []}]}"), WH_OK);
    CHECK(wh_endpoint_find(f.e, "none") > 0);
    CHECK_EQ(wh_emit(f.e, "message.created", NULL, "{}", 2, NULL), 0);
    CHECK_EQ(wh_emit(f.e, "*", NULL, "{}", 2, NULL), 0);
    fx_free(&f);

    fx_init(&f);
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"id\": \"all\", \"url\": \"http://x.example/\"}]}"),
             WH_OK);
    CHECK_EQ(wh_emit(f.e, "message.created", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "anything.else", "c", "{}", 2, NULL), 1);
    fx_free(&f);

    fx_init(&f);
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"url\": \"http://x.example/\","
                      " \"event_types\": [\"a.b\"]}]}"), WH_OK);
    CHECK_EQ(wh_emit(f.e, "a.b", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_emit(f.e, "a.c", NULL, "{}", 2, NULL), 0);
    fx_free(&f);
}

/* A config-loaded endpoint delivers: URL, custom headers, both signatures. */
static void test_delivers(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"id\": \"hook\","
                      " \"url\": \"https://hooks.example/in?x=1\","
                      " \"secret\": [\"" SECRET1 "\", \"" SECRET2 "\"],"
                      " \"headers\": {\"X-Api-Key\": \"k-123\", \"X-Empty\": \"\"}}]}"),
             WH_OK);
    const char *data = "{\"text\":\"hello\"}";
    CHECK_EQ(wh_emit(f.e, "message.created", "room-1", data, strlen(data), "evt-1"), 1);
    CHECK_EQ(wh_flush(f.e, 60000), WH_OK);
    CHECK_EQ(wh_scripted_count(f.t), 1);
    wh_scripted_request r;
    CHECK_EQ(wh_scripted_get(f.t, 0, &r), WH_OK);
    CHECK_STR(r.url, "https://hooks.example/in?x=1");
    CHECK_EQ(r.status, 200);
    CHECK_STR(wh_scripted_header(f.t, 0, "X-Api-Key"), "k-123");
    CHECK_STR(wh_scripted_header(f.t, 0, "x-api-key"), "k-123");
    CHECK_STR(wh_scripted_header(f.t, 0, "webhook-id"), "evt-1");
    const char *ts = wh_scripted_header(f.t, 0, "webhook-timestamp");
    const char *sig = wh_scripted_header(f.t, 0, "webhook-signature");
    CHECK(ts && sig);
    CHECK(strchr(sig, ' ') != NULL); /* two secrets: two signatures */
    const char *s1[] = {SECRET1}, *s2[] = {SECRET2};
    CHECK_EQ(wh_verify_standard(s1, 1, "evt-1", ts, r.body, r.body_len, sig,
                                WALL0 / 1000, 0), WH_OK);
    CHECK_EQ(wh_verify_standard(s2, 1, "evt-1", ts, r.body, r.body_len, sig,
                                WALL0 / 1000, 0), WH_OK);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.delivered, 1);
    fx_free(&f);
}

/* timeout_ms, max_attempts and retry.* reach the engine. */
static void test_retry_and_timeout_applied(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"url\": \"http://r.example/\","
                      " \"max_attempts\": 3, \"timeout_ms\": 700,"
                      " \"retry\": {\"initial_ms\": 100, \"multiplier\": 3,"
                      " \"max_ms\": 250}}]}"), WH_OK);
    /* every attempt hangs for 5 s: it must time out at 700 ms */
    CHECK_EQ(wh_scripted_rule(f.t, NULL, 200, WH_OK, 5000, NULL, 0), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "1", 1, NULL), 1);
    CHECK_EQ(wh_flush(f.e, 60000), WH_OK);
    CHECK_EQ(wh_scripted_count(f.t), 3);
    wh_scripted_request r[3];
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(wh_scripted_get(f.t, i, &r[i]), WH_OK);
        CHECK_EQ(r[i].error, WH_E_TIMEOUT);
        CHECK_EQ(r[i].completed_ms - r[i].submitted_ms, 700);
    }
    /* retry delays: 100, then 100*3 capped at 250 */
    CHECK_EQ(r[1].submitted_ms - r[0].completed_ms, 100);
    CHECK_EQ(r[2].submitted_ms - r[1].completed_ms, 250);
    wh_stats st;
    CHECK_EQ(wh_stats_get(f.e, &st), WH_OK);
    CHECK_EQ(st.dead, 1);
    CHECK_EQ(st.retries, 2);
    fx_free(&f);
}

/* ---- invalid documents ------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    const char *doc;
    int status;
    const char *needle1, *needle2;
} bad_case;

/* Each bad endpoint follows a valid one ("good") that must not be added. */
#define GOOD "{\"id\": \"good\", \"url\": \"http://good.example/\"}, "
#define DOC1(ep) "{\"endpoints\": [" GOOD ep "]}"

static const bad_case bad_cases[] = {
    {"unknown top-level key", "{\"endpoints\": [" GOOD "{\"url\": \"http://x.example/\"}],"
     " \"webhook\": []}", WH_E_CONFIG, "unknown", "\"webhook\""},
    {"missing endpoints", "{}", WH_E_CONFIG, "\"endpoints\"", NULL},
    {"top level not an object", "[" GOOD "{}]", WH_E_CONFIG, "expected an object", NULL},
    {"endpoints not an array", "{\"endpoints\": {\"url\": \"http://x.example/\"}}",
     WH_E_CONFIG, "endpoints: expected an array", NULL},
    {"endpoint not an object", DOC1("\"http://x.example/\""), WH_E_CONFIG,
     "endpoints[1]: expected an object", NULL},
    {"unknown endpoint key", DOC1("{\"url\": \"http://x.example/\", \"urll\": \"x\"}"),
     WH_E_CONFIG, "endpoints[1]: unknown key \"urll\"", NULL},
    {"unknown key with CR is escaped", DOC1("{\"url\": \"http://x.example/\", \"a\\rb\": 1}"),
     WH_E_CONFIG, "endpoints[1]: unknown key \"a\\x0db\"", NULL},
    {"duplicate key", DOC1("{\"url\": \"http://x.example/\", \"url\": \"http://y.example/\"}"),
     WH_E_CONFIG, "endpoints[1]: duplicate key \"url\"", NULL},
    {"url missing", DOC1("{\"id\": \"x\"}"), WH_E_CONFIG, "endpoints[1]", "\"url\""},
    {"url not a string", DOC1("{\"url\": 5}"), WH_E_CONFIG,
     "endpoints[1].url: expected a string", NULL},
    {"url ftp", DOC1("{\"url\": \"ftp://x\"}"), WH_E_CONFIG, "endpoints[1].url", "http"},
    {"url without host", DOC1("{\"url\": \"http://\"}"), WH_E_CONFIG, "endpoints[1].url",
     "host"},
    {"url with NUL escape", DOC1("{\"url\": \"http://x.example/\\u0000evil\"}"),
     WH_E_CONFIG, "\\u0000", NULL},
    {"id not a string", DOC1("{\"id\": 7, \"url\": \"http://x.example/\"}"), WH_E_CONFIG,
     "endpoints[1].id: expected a string", NULL},
    {"id empty", DOC1("{\"id\": \"\", \"url\": \"http://x.example/\"}"), WH_E_CONFIG,
     "endpoints[1].id", NULL},
    {"timeout_ms string", DOC1("{\"url\": \"http://x.example/\", \"timeout_ms\": \"10\"}"),
     WH_E_CONFIG, "endpoints[1].timeout_ms: expected a positive integer", NULL},
    {"timeout_ms negative", DOC1("{\"url\": \"http://x.example/\", \"timeout_ms\": -5}"),
     WH_E_CONFIG, "endpoints[1].timeout_ms: expected a positive integer", NULL},
    {"timeout_ms fraction", DOC1("{\"url\": \"http://x.example/\", \"timeout_ms\": 1.5}"),
     WH_E_CONFIG, "endpoints[1].timeout_ms: expected a positive integer", NULL},
    {"timeout_ms zero", DOC1("{\"url\": \"http://x.example/\", \"timeout_ms\": 0}"),
     WH_E_CONFIG, "endpoints[1].timeout_ms: expected a positive integer", NULL},
    {"timeout_ms over uint32",
     DOC1("{\"url\": \"http://x.example/\", \"timeout_ms\": 4294967296}"),
     WH_E_CONFIG, "endpoints[1].timeout_ms: expected a positive integer", NULL},
    {"connect_timeout_ms null",
     DOC1("{\"url\": \"http://x.example/\", \"connect_timeout_ms\": null}"),
     WH_E_CONFIG, "endpoints[1].connect_timeout_ms", NULL},
    {"max_attempts bool", DOC1("{\"url\": \"http://x.example/\", \"max_attempts\": true}"),
     WH_E_CONFIG, "endpoints[1].max_attempts", NULL},
    {"max_in_flight zero", DOC1("{\"url\": \"http://x.example/\", \"max_in_flight\": 0}"),
     WH_E_CONFIG, "endpoints[1].max_in_flight", NULL},
    {"event_types not an array",
     DOC1("{\"url\": \"http://x.example/\", \"event_types\": \"message.created\"}"),
     WH_E_CONFIG, "endpoints[1].event_types", NULL},
    {"event_types with a number",
     DOC1("{\"url\": \"http://x.example/\", \"event_types\": [\"a\", 3]}"),
     WH_E_CONFIG, "endpoints[1].event_types[1]", NULL},
    {"headers not an object", DOC1("{\"url\": \"http://x.example/\", \"headers\": [\"A: b\"]}"),
     WH_E_CONFIG, "endpoints[1].headers", NULL},
    {"header value with CR",
     DOC1("{\"url\": \"http://x.example/\", \"headers\": {\"X-A\": \"a\\r\\nX-Evil: 1\"}}"),
     WH_E_CONFIG, "endpoints[1].headers[\"X-A\"]", "CR"},
    {"header name with a space",
     DOC1("{\"url\": \"http://x.example/\", \"headers\": {\"X A\": \"v\"}}"),
     WH_E_CONFIG, "endpoints[1].headers[\"X A\"]", NULL},
    {"header value not a string",
     DOC1("{\"url\": \"http://x.example/\", \"headers\": {\"X-A\": 1}}"),
     WH_E_CONFIG, "endpoints[1].headers[\"X-A\"]: expected a string", NULL},
    {"header twice (case-insensitive)",
     DOC1("{\"url\": \"http://x.example/\", \"headers\": {\"X-A\": \"1\", \"x-a\": \"2\"}}"),
     WH_E_CONFIG, "endpoints[1].headers", "twice"},
    {"secret bad base64", DOC1("{\"url\": \"http://x.example/\", \"secret\": \"whsec_!!\"}"),
     WH_E_CONFIG, "endpoints[1].secret", NULL},
    {"secret array with a bad one",
     DOC1("{\"url\": \"http://x.example/\", \"secret\": [\"" SECRET1 "\", \"whsec_!!\"]}"),
     WH_E_CONFIG, "endpoints[1].secret[1]", NULL},
    {"secret number", DOC1("{\"url\": \"http://x.example/\", \"secret\": 12}"),
     WH_E_CONFIG, "endpoints[1].secret", NULL},
    {"filter unknown key",
     DOC1("{\"url\": \"http://x.example/\", \"filter\": {\"channel\": \"room-\"}}"),
     WH_E_CONFIG, "endpoints[1].filter: unknown key \"channel\"", NULL},
    {"filter value not a string",
     DOC1("{\"url\": \"http://x.example/\", \"filter\": {\"channel_name_starts_with\": 1}}"),
     WH_E_CONFIG, "endpoints[1].filter.channel_name_starts_with", NULL},
    {"retry unknown key",
     DOC1("{\"url\": \"http://x.example/\", \"retry\": {\"initial\": 5}}"),
     WH_E_CONFIG, "endpoints[1].retry: unknown key \"initial\"", NULL},
    {"retry multiplier zero",
     DOC1("{\"url\": \"http://x.example/\", \"retry\": {\"multiplier\": 0}}"),
     WH_E_CONFIG, "endpoints[1].retry.multiplier", NULL},
    {"retry max below initial",
     DOC1("{\"url\": \"http://x.example/\", \"retry\": {\"initial_ms\": 5000, \"max_ms\": 10}}"),
     WH_E_CONFIG, "endpoints[1].retry", "max_ms", },
    {"duplicate ids at 0 and 2",
     "{\"endpoints\": [{\"id\": \"dup\", \"url\": \"http://a.example/\"},"
     " {\"id\": \"good\", \"url\": \"http://b.example/\"},"
     " {\"id\": \"dup\", \"url\": \"http://c.example/\"}]}",
     WH_E_CONFIG, "endpoints[2]", "endpoints[0]"},
    {"malformed JSON", "{\"endpoints\": [" GOOD "{\"url\": }]}", WH_E_JSON, "byte", NULL},
    {"trailing text", "{\"endpoints\": [" GOOD "{\"url\": \"http://x.example/\"}]} x",
     WH_E_JSON, "byte", NULL},
    {"empty text", "", WH_E_JSON, "byte 0", NULL},
};

static void test_invalid_documents(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        fx f;
        fx_init(&f);
        int rc = load(&f, c->doc);
        if (rc != c->status)
            th_fail(__FILE__, __LINE__, "%s: status %s, expected %s (%s)", c->name,
                    wh_status_name(rc), wh_status_name(c->status), wh_last_error(f.e));
        const char *m = wh_last_error(f.e);
        for (int k = 0; k < 2; k++) {
            const char *needle = k ? c->needle2 : c->needle1;
            if (needle && (!m || !strstr(m, needle)))
                th_fail(__FILE__, __LINE__, "%s: message \"%s\" lacks \"%s\"", c->name,
                        m ? m : "(null)", needle);
        }
        check_empty(&f); /* all or nothing */
        fx_free(&f);
    }
}

/* The byte offset of a syntax error points near the bad character. */
static void test_json_error_offset(void)
{
    fx f;
    fx_init(&f);
    const char *doc = "{\"endpoints\": [\n  {\"url\": ]\n}";
    size_t bad = (size_t)(strchr(doc, ']') - doc);
    CHECK_EQ(load(&f, doc), WH_E_JSON);
    const char *m = strstr(wh_last_error(f.e), "byte ");
    CHECK(m != NULL);
    unsigned long off = strtoul(m + 5, NULL, 10);
    CHECK_INT(off + 2, >=, bad);
    CHECK_INT(off, <=, bad + 2);
    CHECK_MSG(&f, "line 2");
    fx_free(&f);
}

/* An id already in the engine: WH_E_EXISTS, nothing else added, and the
 * existing endpoint is untouched. */
static void test_id_in_use(void)
{
    fx f;
    fx_init(&f);
    wh_endpoint_options o;
    wh_endpoint_options_init(&o);
    o.id = "taken";
    o.url = "http://taken.example/";
    int h = wh_endpoint_add(f.e, &o);
    CHECK(h > 0);
    CHECK_EQ(load(&f, DOC1("{\"id\": \"taken\", \"url\": \"http://x.example/\"}")),
             WH_E_EXISTS);
    CHECK_MSG(&f, "endpoints[1].id");
    CHECK_EQ(wh_endpoint_find(f.e, "good"), WH_E_NOT_FOUND);
    CHECK_EQ(wh_endpoint_find(f.e, "taken"), h);
    CHECK_EQ(wh_emit(f.e, "e", NULL, "{}", 2, NULL), 1);
    fx_free(&f);
}

static void test_null_args(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(wh_config_load(NULL, "{}", 2), WH_E_INVAL);
    CHECK_EQ(wh_config_load(f.e, NULL, 0), WH_E_INVAL);
    CHECK_EQ(wh_config_load_file(NULL, "x.json"), WH_E_INVAL);
    CHECK_EQ(wh_config_load_file(f.e, NULL), WH_E_INVAL);
    check_empty(&f);
    fx_free(&f);
}

/* ---- issue 15: secret + secrets, NUL in strings, nesting depth ------------------ */

/* F1: "secrets" then "secret" (or the reverse) in one endpoint is refused by
 * name, whatever the order; nothing leaks (the ASan run checks). */
static void test_secret_and_secrets(void)
{
    static const char *const docs[] = {
        DOC1("{\"url\": \"http://x.example/\", \"secrets\": [\"" SECRET1 "\", \""
             SECRET2 "\"], \"secret\": \"" SECRET2 "\"}"),
        DOC1("{\"url\": \"http://x.example/\", \"secret\": \"" SECRET2 "\","
             " \"secrets\": [\"" SECRET1 "\"]}"),
        DOC1("{\"url\": \"http://x.example/\", \"secrets\": \"" SECRET1 "\","
             " \"secret\": [\"" SECRET1 "\", \"" SECRET2 "\"]}"),
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        fx f;
        fx_init(&f);
        CHECK_EQ(load(&f, docs[i]), WH_E_CONFIG);
        CHECK_MSG(&f, "endpoints[1]: give \"");
        CHECK_MSG(&f, "\"secret\"");
        CHECK_MSG(&f, "\"secrets\"");
        check_empty(&f);
        fx_free(&f);
    }
    /* "secrets" alone is "secret" under another name */
    fx f;
    fx_init(&f);
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"id\": \"s\", \"url\": \"http://x.example/\","
                      " \"secrets\": [\"" SECRET1 "\", \"" SECRET2 "\"]}]}"), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, "evt-s"), 1);
    CHECK_EQ(wh_flush(f.e, 60000), WH_OK);
    const char *sig = wh_scripted_header(f.t, 0, "webhook-signature");
    CHECK(sig && strchr(sig, ' ') != NULL); /* two signatures */
    fx_free(&f);
}

typedef struct nul_case {
    const char *doc;
    size_t len;
    const char *path; /* the key path the message must start with */
} nul_case;

#define NUL_CASE(lit, path) {lit, sizeof lit - 1, path}

/* F3: a NUL in a string, escaped or raw, is refused naming the key; it used
 * to cut the string (secret "ab\u0000cd" signed as "ab"). */
static void test_nul_in_strings(void)
{
    static const nul_case cases[] = {
        NUL_CASE(DOC1("{\"url\": \"http://x.example/\", \"secret\": \"ab\\u0000cd\"}"),
                 "endpoints[1].secret: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/\", \"secret\": \"ab\0cd\"}"),
                 "endpoints[1].secret: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/\", \"secret\": [\"" SECRET1 "\","
                      " \"x\\u0000\"]}"), "endpoints[1].secret[1]: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/a\\u0000b\"}"), "endpoints[1].url: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/a\0b\"}"), "endpoints[1].url: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/\", \"headers\": {\"X-A\": "
                      "\"v\\u0000w\"}}"), "endpoints[1].headers[\"X-A\"]: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/\", \"event_types\": [\"a\","
                      " \"b\\u0000\"]}"), "endpoints[1].event_types[1]: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/\", \"retry\": {\"jitter\":"
                      " \"full\\u0000\"}}"), "endpoints[1].retry.jitter: "),
        NUL_CASE("{\"webhooks\": [{\"url\": \"http://x.example/\"}], \"key\": \"k\\u0000\"}",
                 "key: "),
        NUL_CASE(DOC1("{\"url\": \"http://x.example/\", \"i\\u0000d\": \"x\"}"),
                 "endpoints[1]: a key contains a NUL"),
        NUL_CASE("{\"endpoints\": [], \"queue\": {\"type\": \"sqlite\", \"path\":"
                 " \"/tmp/a\\u0000b\"}}", "queue.path: "),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx f;
        fx_init(&f);
        int rc = wh_config_load(f.e, cases[i].doc, cases[i].len);
        const char *m = wh_last_error(f.e);
        const char *body = m ? strstr(m, ": ") : NULL; /* after "WH_E_CONFIG" */
        if (rc != WH_E_CONFIG || !body || strncmp(body + 2, cases[i].path,
                                                  strlen(cases[i].path)) != 0 ||
            !strstr(m, "NUL"))
            th_fail(__FILE__, __LINE__, "case %zu: %s \"%s\", expected %s", i,
                    wh_status_name(rc), m ? m : "(null)", cases[i].path);
        check_empty(&f);
        fx_free(&f);
    }
    /* wh_config_queue_new refuses the same way */
    const nul_case *q = &cases[sizeof cases / sizeof cases[0] - 1];
    char err[512];
    wh_queue *out = (wh_queue *)&err; /* must be reset to NULL */
    CHECK_EQ(wh_config_queue_new(q->doc, q->len, NULL, NULL, &out, err, sizeof err),
             WH_E_CONFIG);
    CHECK(out == NULL);
    CHECK(strncmp(err, "queue.path: ", 12) == 0);
    /* a NUL escape spelled out is not a NUL: "\\u0000" is six characters */
    fx f;
    fx_init(&f);
    CHECK_EQ(load(&f, "{\"endpoints\": [{\"url\": \"http://x.example/\","
                      " \"headers\": {\"X-A\": \"\\\\u0000\"}}]}"), WH_OK);
    CHECK_EQ(wh_emit(f.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_flush(f.e, 60000), WH_OK);
    CHECK_STR(wh_scripted_header(f.t, 0, "X-A"), "\\u0000");
    fx_free(&f);
}

/* "[[[...]]]" of `depth` levels as the value of key "x". */
static char *nested_doc(size_t depth)
{
    const char *head = "{\"endpoints\": [], \"x\": ";
    size_t hl = strlen(head), n = hl + 2 * depth + 2;
    char *d = malloc(n);
    CHECK(d != NULL);
    memcpy(d, head, hl);
    memset(d + hl, '[', depth);
    memset(d + hl + depth, ']', depth);
    d[hl + 2 * depth] = '}';
    d[hl + 2 * depth + 1] = '\0';
    return d;
}

/* Deep but valid JSON is refused naming the limit, not as malformed. */
static void test_nesting_limit(void)
{
    fx f;
    fx_init(&f);
    /* the root object is level 1: 999 more levels are within the limit and
     * reach the loader, which names the unknown key */
    char *ok = nested_doc(999);
    CHECK_EQ(load(&f, ok), WH_E_CONFIG);
    CHECK_MSG(&f, "config: unknown key \"x\"");
    free(ok);
    char *deep = nested_doc(1000);
    CHECK_EQ(load(&f, deep), WH_E_TOO_LARGE);
    CHECK_MSG(&f, "nesting deeper than 1000 levels");
    /* level 1001: the 1000th bracket of "x", after 23 bytes of head */
    CHECK_MSG(&f, "byte 1022");
    char err[256];
    wh_queue *q = NULL;
    CHECK_EQ(wh_config_queue_new(deep, strlen(deep), NULL, NULL, &q, err, sizeof err),
             WH_E_TOO_LARGE);
    CHECK(strstr(err, "nesting deeper than 1000 levels") != NULL);
    free(deep);
    /* a truly malformed document is still WH_E_JSON */
    CHECK_EQ(load(&f, "{\"endpoints\": [[[}"), WH_E_JSON);
    CHECK_MSG(&f, "malformed JSON");
    check_empty(&f);
    fx_free(&f);
}

/* Unknown keys are named with their full path at every level, and the
 * "queue" member gives the same message through wh_config_load and
 * wh_config_queue_new (one error channel). */
static void test_unknown_keys_named(void)
{
    static const struct { const char *doc, *msg; } cases[] = {
        {"{\"endpoints\": [], \"endpoint\": []}", "config: unknown key \"endpoint\""},
        {"{\"endpoints\": [], \"batching\": {\"enable\": true}}",
         "config.batching: unknown key \"enable\""},
        {DOC1("{\"url\": \"http://x.example/\", \"limits\": {\"rates\": 1}}"),
         "endpoints[1].limits: unknown key \"rates\""},
        {DOC1("{\"url\": \"http://x.example/\", \"health\": {\"x\": 1}}"),
         "endpoints[1].health: unknown key \"x\""},
        {DOC1("{\"url\": \"http://x.example/\", \"header_names\": {\"ids\": \"a\"}}"),
         "endpoints[1].header_names: unknown key \"ids\""},
        {DOC1("{\"url\": \"http://x.example/\", \"batch\": {\"linger\": 1}}"),
         "endpoints[1].batch: unknown key \"linger\""},
        {DOC1("{\"url\": \"http://x.example/\", \"retry\": {\"initial_ms\": -1}}"),
         "endpoints[1].retry.initial_ms: expected an integer from 0 to 4294967295"},
        {DOC1("{\"url\": \"http://x.example/\", \"retry\": {\"jitter_percent\": 101}}"),
         "endpoints[1].retry.jitter_percent: expected an integer from 0 to 100"},
        {DOC1("{\"url\": \"http://x.example/\", \"retry\": {\"statuses\": [200]}}"),
         "endpoints[1].retry.statuses[0]: expected an HTTP status from 300 to 599"},
        {"{\"webhooks\": [{\"url\": \"http://x.example/\", \"mode\": \"many\"}]}",
         "webhooks[0].mode: unknown value \"many\""},
        {"{\"endpoints\": [], \"queue\": {\"type\": \"redis\", \"path\": \"/tmp/x\"}}",
         "queue: unknown key \"path\" for type \"redis\""},
        {"{\"endpoints\": [], \"queue\": {\"type\": \"sqlite\", \"path\": \"/tmp/x\","
         " \"lease_ms\": 0}}", "queue.lease_ms: expected a positive integer"},
        {"{\"endpoints\": [], \"queue\": {\"type\": \"memory\", \"max_events\": 5,"
         " \"max_events\": 6}}", "queue: duplicate key \"max_events\""},
        {"{\"endpoints\": [], \"queue\": {\"path\": \"/tmp/x\"}}",
         "queue.type: expected \"memory\", \"sqlite\" or \"redis\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx f;
        fx_init(&f);
        int rc = load(&f, cases[i].doc);
        const char *m = wh_last_error(f.e);
        if (rc != WH_E_CONFIG || !m || strncmp(m, "WH_E_CONFIG: ", 13) != 0 ||
            strncmp(m + 13, cases[i].msg, strlen(cases[i].msg)) != 0)
            th_fail(__FILE__, __LINE__, "case %zu: %s \"%s\", expected \"%s\"", i,
                    wh_status_name(rc), m ? m : "(null)", cases[i].msg);
        if (strstr(cases[i].doc, "\"queue\"")) {
            char err[512];
            wh_queue *q = NULL;
            CHECK_EQ(wh_config_queue_new(cases[i].doc, strlen(cases[i].doc), NULL, NULL,
                                         &q, err, sizeof err), WH_E_CONFIG);
            CHECK(q == NULL);
            if (m) CHECK_STR(err, m + 13); /* the same message, the same way */
        }
        check_empty(&f);
        fx_free(&f);
    }
}

/* wh_config_load from inside a callback: pass 2's first wh_endpoint_add
 * refuses (WH_E_RECURSIVE), the message names the endpoint, nothing stays
 * added. */
typedef struct reentry {
    wh_engine *e;
    int rc, calls;
    char msg[256];
} reentry;

static void load_from_callback(void *user, const wh_outcome *o)
{
    (void)o;
    reentry *r = user;
    const char *doc = "{\"endpoints\": [{\"id\": \"late\", \"url\": \"http://l.example/\"}]}";
    r->calls++;
    r->rc = wh_config_load(r->e, doc, strlen(doc));
    snprintf(r->msg, sizeof r->msg, "%s", wh_last_error(r->e));
}

static void test_load_from_callback(void)
{
    wh_manual_clock *clock = wh_manual_clock_new(1000, WALL0);
    CHECK(clock != NULL);
    wh_transport *t = NULL;
    CHECK_EQ(wh_transport_scripted_new(wh_manual_clock_vtable(clock), clock, &t), WH_OK);
    reentry r = {NULL, 0, 0, ""};
    wh_engine_options o;
    wh_engine_options_init(&o);
    o.clock = wh_manual_clock_vtable(clock);
    o.transport = t;
    o.transport_owned = 1;
    o.on_outcome = load_from_callback;
    o.outcome_user = &r;
    int err = 0;
    r.e = wh_engine_new(&o, &err);
    CHECK(r.e != NULL);
    const char *first = "{\"endpoints\": [{\"url\": \"http://a.example/\"}]}";
    CHECK_EQ(wh_config_load(r.e, first, strlen(first)), WH_OK);
    CHECK_EQ(wh_emit(r.e, "t", NULL, "{}", 2, NULL), 1);
    CHECK_EQ(wh_flush(r.e, 60000), WH_OK);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.rc, WH_E_RECURSIVE);
    CHECK(strstr(r.msg, "endpoints[0]: ") != NULL);
    CHECK_EQ(wh_endpoint_find(r.e, "late"), WH_E_NOT_FOUND);
    wh_engine_free(r.e);
    wh_manual_clock_free(clock);
}

/* ---- the README's key reference ------------------------------------------------ */

typedef struct keydoc {
    char *text;
    size_t len, cap;
    const char *skip; /* a prefix of paths documented elsewhere */
} keydoc;

static void keydoc_add(keydoc *k, const char *s)
{
    size_t n = strlen(s);
    if (k->len + n + 1 > k->cap) {
        k->cap = (k->len + n + 1) * 2;
        k->text = realloc(k->text, k->cap);
        CHECK(k->text != NULL);
    }
    memcpy(k->text + k->len, s, n + 1);
    k->len += n;
}

static void keydoc_row(const char *path, const wh__cfg_key *key, void *user)
{
    keydoc *k = user;
    if (k->skip && strncmp(path, k->skip, strlen(k->skip)) == 0) return;
    char kind[128], row[512];
    wh__cfg_key_kind(key, kind, sizeof kind);
    snprintf(row, sizeof row, "| `%s` | %s | %s |\n", path, kind, key->doc);
    keydoc_add(k, row);
}

#define KEYS_BEGIN "<!-- config-keys: generated from the key tables of lib/config*.c; " \
                   "tests/test_config.c checks it -->\n"
#define KEYS_END "<!-- /config-keys -->\n"

/* The block README.md must hold: every key of every table, its type and its
 * meaning, in table order. */
static char *expected_key_block(void)
{
    keydoc k = {NULL, 0, 0, NULL};
    keydoc_add(&k, KEYS_BEGIN);
    keydoc_add(&k, "\nThe document:\n\n| key | type | meaning |\n|---|---|---|\n");
    k.skip = "endpoints.";
    wh__cfg_table_visit(&wh__cfg_root_table, "", keydoc_row, &k);
    k.skip = NULL;
    keydoc_add(&k, "\nAn endpoint object (an entry of `endpoints` or `webhooks`):\n\n"
                   "| key | type | meaning |\n|---|---|---|\n");
    wh__cfg_table_visit(&wh__cfg_endpoint_table, "", keydoc_row, &k);
    keydoc_add(&k, "\n" KEYS_END);
    return k.text;
}

static char *read_readme(void)
{
    const char *src = getenv("WH_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/README.md", src && *src ? src : ".");
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        th_fail(__FILE__, __LINE__, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            CHECK(buf != NULL);
        }
    }
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* README.md's key reference is the key tables, verbatim: a key added to a
 * table and not documented (or documented and gone) fails here, and the
 * expected block is printed to copy in. */
static void test_readme_documents_every_key(void)
{
    char *want = expected_key_block();
    char *readme = read_readme();
    if (!readme) {
        free(want);
        return;
    }
    const char *b = strstr(readme, KEYS_BEGIN);
    const char *e = b ? strstr(b, KEYS_END) : NULL;
    int same = b && e && (size_t)(e + strlen(KEYS_END) - b) == strlen(want) &&
               memcmp(b, want, strlen(want)) == 0;
    if (!same) {
        fprintf(stderr, "README.md must contain this block:\n%s", want);
        th_fail(__FILE__, __LINE__, "README.md's config key reference differs from "
                "the key tables");
    }
    /* and every key has a row (a coarse check that the block is not empty) */
    CHECK(strstr(want, "| `retry.initial_ms` |") != NULL);
    CHECK(strstr(want, "| `queue.lease_ms` |") != NULL);
    CHECK(strstr(want, "| `batching.duration_ms` |") != NULL);
    free(want);
    free(readme);
}

/* ---- files ------------------------------------------------------------------------ */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/whcfgXXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    CHECK_EQ(fwrite(text, 1, strlen(text), fp), strlen(text));
    CHECK_EQ(fclose(fp), 0);
}

static void test_file_missing(void)
{
    fx f;
    fx_init(&f);
    const char *path = "/nonexistent-dir/whcfg/config.json";
    CHECK_EQ(wh_config_load_file(f.e, path), WH_E_IO);
    CHECK_MSG(&f, path);
    CHECK_MSG(&f, strerror(ENOENT));
    check_empty(&f);
    fx_free(&f);
}

static void test_file_load(void)
{
    fx f;
    fx_init(&f);
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);

    /* good file */
    write_file(path, "{\"endpoints\": [{\"id\": \"f1\", \"url\": \"http://f.example/\"},"
                     " {\"id\": \"f2\", \"url\": \"http://g.example/\"}]}\n");
    CHECK_EQ(wh_config_load_file(f.e, path), WH_OK);
    CHECK(wh_endpoint_find(f.e, "f1") > 0);
    CHECK(wh_endpoint_find(f.e, "f2") > 0);

    /* bad file: the message names the file and the key */
    write_file(path, "{\"endpoints\": [{\"id\": \"f3\", \"url\": \"http://f.example/\","
                     " \"timeout\": 5}]}");
    CHECK_EQ(wh_config_load_file(f.e, path), WH_E_CONFIG);
    CHECK_MSG(&f, path);
    CHECK_MSG(&f, "endpoints[0]: unknown key \"timeout\"");
    CHECK_EQ(wh_endpoint_find(f.e, "f3"), WH_E_NOT_FOUND);

    /* a directory cannot be read */
    CHECK_EQ(wh_config_load_file(f.e, tmpdir), WH_E_IO);
    CHECK_MSG(&f, tmpdir);

    /* more than 16 MiB */
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    CHECK_EQ(ftruncate(fileno(fp), (16 << 20) + 1), 0);
    CHECK_EQ(fclose(fp), 0);
    CHECK_EQ(wh_config_load_file(f.e, path), WH_E_TOO_LARGE);
    CHECK_MSG(&f, path);

    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(rmdir(tmpdir), 0);
    CHECK_EQ(wh_emit(f.e, "x", NULL, "{}", 2, NULL), 2);
    fx_free(&f);
}

TH_MAIN(TH_CASE(test_three_endpoints), TH_CASE(test_event_types_empty_vs_absent),
        TH_CASE(test_delivers), TH_CASE(test_retry_and_timeout_applied),
        TH_CASE(test_invalid_documents), TH_CASE(test_json_error_offset),
        TH_CASE(test_id_in_use), TH_CASE(test_null_args), TH_CASE(test_file_missing),
        TH_CASE(test_file_load), TH_CASE(test_secret_and_secrets),
        TH_CASE(test_nul_in_strings), TH_CASE(test_nesting_limit),
        TH_CASE(test_unknown_keys_named), TH_CASE(test_readme_documents_every_key),
        TH_CASE(test_load_from_callback))
