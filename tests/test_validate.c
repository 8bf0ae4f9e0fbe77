/* Input validators: URLs, header lines, JSON payloads, delivery ids. */
#include "harness.h"
#include "internal.h"

#include <stddef.h>

static void test_urls(void)
{
    static const char *good[] = {
        "http://127.0.0.1:8080/hook", "https://example.com", "HTTPS://Example.COM/x?y=1#z",
        "http://[::1]:9000/h", "http://user:pw@host/p", "http://a.b-c_d.example:1/"};
    static const char *bad[] = {
        NULL, "", "ftp://x", "http://", "http:///x", "http://:80/", "http://h:0/",
        "http://h:65536/", "http://h:8a/", "http://h h/", "http://h/\r\n", "http://[::1/",
        "http://[]/", "http://h\x01/", "mailto:a@b", "//host/x", "http://ho$t/"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        const char *why = NULL;
        if (!wh__url_valid(good[i], &why))
            th_fail(__FILE__, __LINE__, "rejected %s: %s", good[i], why);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *why = NULL;
        if (wh__url_valid(bad[i], &why))
            th_fail(__FILE__, __LINE__, "accepted %s", bad[i] ? bad[i] : "(null)");
        CHECK(why && *why);
    }
}

static void test_headers(void)
{
    const char *why;
    CHECK_EQ(wh__header_valid("X-Api-Key: abc def", &why), WH_OK);
    CHECK_EQ(wh__header_valid("X-Empty:", &why), WH_OK);
    CHECK_EQ(wh__header_valid("X-A: b\r\nX-B: c", &why), WH_E_HEADER);
    CHECK(strstr(why, "CR"));
    CHECK_EQ(wh__header_valid("X-A: b\nc", &why), WH_E_HEADER);
    CHECK_EQ(wh__header_valid("X A: b", &why), WH_E_HEADER);
    CHECK_EQ(wh__header_valid(": b", &why), WH_E_HEADER);
    CHECK_EQ(wh__header_valid("NoColon", &why), WH_E_HEADER);
    CHECK_EQ(wh__header_valid("X\r\n: b", &why), WH_E_HEADER);
    CHECK_EQ(wh__header_valid(NULL, &why), WH_E_HEADER);
    CHECK_EQ(wh__header_pair_valid("X-Key", "v", &why), WH_OK);
    CHECK_EQ(wh__header_pair_valid("X-Key", "v\rx", &why), WH_E_HEADER);
    CHECK_EQ(wh__header_pair_valid("X:Key", "v", &why), WH_E_HEADER);
    CHECK_EQ(wh__header_pair_valid("", "v", &why), WH_E_HEADER);
}

static int json_ok(const char *s) { return wh__json_valid(s, strlen(s), NULL) == WH_OK; }

static void test_json(void)
{
    static const char *good[] = {
        "{}", "[]", "0", "-0.5e+10", "\"s\"", "true", "false", "null", " {\"a\" : [1, 2, {\"b\":null}]} ",
        "\"\\u00e9\\n\\\"\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "[[[[[]]]]]", "1E5", "{\"a\":{}}"};
    static const char *bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\"}", "{a:1}", "01", "1.", ".5", "-",
        "1e", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12G4\"", "\"\x01\"", "'a'",
        "{} {}", "[1 2]", "\"\xc3\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "NaN", "[1]]"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!json_ok(good[i])) th_fail(__FILE__, __LINE__, "rejected %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (json_ok(bad[i])) th_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
    /* embedded NUL inside the length is invalid */
    CHECK_EQ(wh__json_valid("{}\0", 3, NULL), WH_E_JSON);
    size_t off = 0;
    CHECK_EQ(wh__json_valid("[1, 2, x]", 9, &off), WH_E_JSON);
    CHECK_EQ(off, 7);
    /* depth limit: 600 nested arrays are refused, 500 accepted */
    char deep[1300];
    memset(deep, '[', 600);
    memset(deep + 600, ']', 600);
    CHECK_EQ(wh__json_valid(deep, 1200, NULL), WH_E_JSON);
    CHECK_EQ(wh__json_valid(deep + 100, 1000, NULL), WH_OK);
}

/* ---- the two string scans of the JSON validator give the same answers ---- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32) % n;
}

typedef struct gbuf {
    char b[8192];
    size_t n;
} gbuf;

static void put(gbuf *g, const char *s, size_t n)
{
    if (g->n + n >= sizeof g->b) return; /* truncated: still a test input */
    memcpy(g->b + g->n, s, n);
    g->n += n;
}

static void puts_(gbuf *g, const char *s) { put(g, s, strlen(s)); }

static void gen_ws(gbuf *g)
{
    static const char *ws[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    puts_(g, ws[rnd(7)]);
}

/* A valid string: plain runs of every length (around the 8- and 16-byte
 * steps of the scans), escapes, multi-byte UTF-8. */
static void gen_string(gbuf *g)
{
    static const char *pieces[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
                                   "\\u00e9", "\\uD83D\\uDE00", "\xc3\xa9", "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80", "\xdf\xbf", "\xef\xbf\xbf"};
    puts_(g, "\"");
    int parts = (int)rnd(4);
    for (int i = 0; i < parts; i++) {
        size_t run = rnd(5) == 0 ? rnd(70) : rnd(18);
        for (size_t k = 0; k < run; k++) {
            char c = (char)(0x20 + rnd(0x5f));
            if (c == '"' || c == '\\') c = 'x';
            put(g, &c, 1);
        }
        if (rnd(2)) puts_(g, pieces[rnd(sizeof pieces / sizeof *pieces)]);
    }
    puts_(g, "\"");
}

static void gen_value(gbuf *g, int depth)
{
    static const char *scalars[] = {"0", "-0", "1", "-12.5e+3", "1E5", "123456789", "0.25",
                                    "true", "false", "null", "-1.0E-2"};
    uint32_t k = depth > 6 ? rnd(2) : rnd(4);
    if (k == 0) {
        puts_(g, scalars[rnd(sizeof scalars / sizeof *scalars)]);
    } else if (k == 1) {
        gen_string(g);
    } else {
        int obj = k == 2;
        puts_(g, obj ? "{" : "[");
        int n = (int)rnd(5);
        for (int i = 0; i < n; i++) {
            if (i) puts_(g, ",");
            gen_ws(g);
            if (obj) {
                gen_string(g);
                gen_ws(g);
                puts_(g, ":");
                gen_ws(g);
            }
            gen_value(g, depth + 1);
            gen_ws(g);
        }
        puts_(g, obj ? "}" : "]");
    }
}

/* Both scans: the same status and, when invalid, the same offset. */
static void same_answer(const char *s, size_t n, int *valid)
{
    size_t o1 = 0, o2 = 0;
    int a = wh__json_valid_path(s, n, &o1, WH__JSON_SIMD);
    int b = wh__json_valid_path(s, n, &o2, WH__JSON_PORTABLE);
    int c = wh__json_valid(s, n, NULL);
    if (a != b || a != c || (a != WH_OK && o1 != o2))
        th_fail(__FILE__, __LINE__, "paths differ on %zu bytes \"%.*s\": simd %d at %zu, "
                "portable %d at %zu, wh__json_valid %d", n, (int)(n > 200 ? 200 : n), s, a,
                o1, b, o2, c);
    if (valid) *valid = a == WH_OK;
}

static void test_json_paths_generated(void)
{
    static const unsigned char special[] = {'"', '\\', 0x00, 0x01, 0x1f, 0x20, 0x7f, 0x80,
                                            0xbf, 0xc2, 0xc3, 0xe0, 0xed, 0xf0, 0xf4, 0xf5,
                                            0xff, ',', ':', '}', ']', '{', '[', 'u', '0'};
    gbuf g;
    size_t valid_docs = 0, mutants = 0, mutants_valid = 0;
    for (int i = 0; i < 20000; i++) {
        g.n = 0;
        gen_ws(&g);
        gen_value(&g, 0);
        gen_ws(&g);
        int ok;
        same_answer(g.b, g.n, &ok);
        if (g.n < sizeof g.b - 1) {
            if (!ok) th_fail(__FILE__, __LINE__, "a generated document was refused: %.*s",
                             (int)g.n, g.b);
            valid_docs++;
        }
        /* mutants: a byte replaced, inserted or removed, or the end cut */
        for (int m = 0; m < 8 && g.n; m++) {
            char t[sizeof g.b + 1];
            size_t n = g.n, at = rnd((uint32_t)n);
            memcpy(t, g.b, n);
            unsigned char c = rnd(3) ? special[rnd(sizeof special)] : (unsigned char)rnd(256);
            switch (rnd(4)) {
            case 0: t[at] = (char)c; break;
            case 1:
                memmove(t + at + 1, t + at, n - at);
                t[at] = (char)c;
                n++;
                break;
            case 2:
                memmove(t + at, t + at + 1, n - at - 1);
                n--;
                break;
            default: n = at; break;
            }
            same_answer(t, n, &ok);
            mutants++;
            mutants_valid += ok;
        }
    }
    /* the mutations reach both answers */
    CHECK(valid_docs > 19000);
    CHECK(mutants_valid > 0 && mutants_valid < mutants);
}

/* Every byte value at every position of strings of 1..40 bytes (around the
 * 8- and 16-byte steps), in a key and in a value, with the document
 * ending right after or well after the string. */
static void test_json_paths_every_byte(void)
{
    char doc[128];
    for (size_t len = 1; len <= 40; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (int c = 0; c < 256; c++)
                for (int shape = 0; shape < 3; shape++) {
                    size_t n = 0;
                    const char *pre = shape == 0 ? "\"" : shape == 1 ? "{\"" : "[1,\"";
                    const char *post = shape == 0 ? "\"" : shape == 1 ? "\":0}" : "\"]";
                    memcpy(doc, pre, strlen(pre));
                    n += strlen(pre);
                    memset(doc + n, 'a', len);
                    doc[n + pos] = (char)c;
                    n += len;
                    memcpy(doc + n, post, strlen(post));
                    n += strlen(post);
                    same_answer(doc, n, NULL);
                    same_answer(doc, n - 1, NULL); /* cut before the end */
                }
}

/* wh_event.trusted_json: that event's payload is not validated; others are. */
static void test_trusted_producer(void)
{
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    int err;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    ep.url = "http://127.0.0.1:9/hook"; /* never polled: nothing is sent */
    CHECK(wh_endpoint_add(e, &ep) > 0);
    static const char bad[] = "{\"a\":";
    wh_event ev;
    wh_event_init(&ev);
    ev.type = "t";
    ev.data = bad;
    ev.len = sizeof bad - 1;
    CHECK_EQ(wh_emit_ex(e, &ev), WH_E_JSON);
    CHECK(strstr(wh_last_error(e), "not valid JSON"));
    CHECK_EQ(wh_emit(e, "t", NULL, bad, sizeof bad - 1, NULL), WH_E_JSON);
    ev.trusted_json = 1;
    CHECK_EQ(wh_emit_ex(e, &ev), 1);
    /* an older caller's struct (without the field) is validated */
    ev.struct_size = offsetof(wh_event, trusted_json);
    CHECK_EQ(wh_emit_ex(e, &ev), WH_E_JSON);
    wh_stats st;
    wh_stats_get(e, &st);
    CHECK_EQ(st.emitted, 1);
    CHECK_EQ(st.rejected, 3);
    wh_engine_free(e);
}

static void test_ids(void)
{
    CHECK(wh__id_valid("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"));
    CHECK(!wh__id_valid(""));
    CHECK(!wh__id_valid("a b"));
    CHECK(!wh__id_valid("a\nb"));
    char long_id[200];
    memset(long_id, 'x', 199);
    long_id[199] = 0;
    CHECK(!wh__id_valid(long_id));
    long_id[128] = 0;
    CHECK(wh__id_valid(long_id));
    long_id[129] = 'x';
    long_id[129] = 0;
    long_id[128] = 'x';
    CHECK(!wh__id_valid(long_id));
    wh__rng r;
    wh__rng_seed(&r, 7);
    char a[37], b[37];
    wh__uuid7(&r, 1700000000123LL, a);
    wh__uuid7(&r, 1700000000123LL, b);
    CHECK_EQ(strlen(a), 36);
    CHECK(strncmp(a, "018bcfe5-687b-7", 15) == 0); /* 48-bit ms prefix + version */
    CHECK(strchr("89ab", a[19]) != NULL);           /* RFC 9562 variant */
    CHECK(strcmp(a, b) != 0);
}

TH_MAIN(TH_CASE(test_urls), TH_CASE(test_headers), TH_CASE(test_json),
        TH_CASE(test_json_paths_generated), TH_CASE(test_json_paths_every_byte),
        TH_CASE(test_trusted_producer), TH_CASE(test_ids))
