/* Input validators: URLs, header lines, JSON payloads, delivery ids. */
#include "harness.h"
#include "internal.h"

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

TH_MAIN(TH_CASE(test_urls), TH_CASE(test_headers), TH_CASE(test_json), TH_CASE(test_ids))
