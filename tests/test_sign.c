/* Tests of lib/sign.c: HMAC-SHA256, base64, Standard Webhooks signing and
 * verification.  The official Standard Webhooks vector is checked, and
 * random messages are signed both here and by an independent implementation
 * (python3's hmac module, and the openssl command line tool). */
#include "harness.h"
#include "internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The Standard Webhooks specification's test vector. */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330
#define VEC_TS_STR "1614265330"
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* A second, unrelated secret (base64 of "a completely different key!"). */
#define OTHER_SECRET "whsec_YSBjb21wbGV0ZWx5IGRpZmZlcmVudCBrZXkh"

static const char *const vec_secrets[] = {VEC_SECRET};

static int verify_vec(const char *body, const char *sig, int64_t now_s)
{
    return wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, body,
                              strlen(body), sig, now_s, 0);
}

static void random_bytes(void *buf, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        CHECK(r > 0);
        got += (size_t)r;
    }
    close(fd);
}

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Run `cmd`, return its whole stdout (malloc'd, NUL-terminated) and its exit
 * status in *status. */
static char *run_capture(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    char *buf = th_slurp(f);
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static int have_command(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* ---- the official vector ----------------------------------------------------- */

static void test_standard_vector(void)
{
    char out[64];
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, VEC_TS, VEC_BODY,
                              strlen(VEC_BODY), out, sizeof out), WH_OK);
    CHECK_STR(out, VEC_SIG);
    /* The vector verifies at its own timestamp. */
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, VEC_TS), WH_OK);
}

static void test_standard_vector_keyed(void)
{
    /* The internal keyed path used by the engine gives the same value, and a
     * key reused for several messages keeps giving it (hmac_reset). */
    wh__hmac *k = NULL;
    CHECK_EQ(wh__hmac_new(VEC_SECRET, &k), WH_OK);
    CHECK(k != NULL);
    wh__hmac *const keys[] = {k};
    for (int i = 0; i < 3; i++) {
        char out[50];
        CHECK_EQ(wh__sign_standard_keyed(keys, 1, VEC_ID, VEC_TS, VEC_BODY,
                                         strlen(VEC_BODY), out, sizeof out),
                 WH_OK);
        CHECK_STR(out, VEC_SIG);
        CHECK_EQ(wh__sign_standard_keyed(keys, 1, "other", 1, "{}", 2, out,
                                         sizeof out), WH_OK);
        CHECK(strcmp(out, VEC_SIG) != 0);
    }
    wh__hmac_free(k);
    wh__hmac_free(NULL); /* no-op */
}

/* ---- HMAC-SHA256 (RFC 4231) ------------------------------------------------- */

static void test_hmac_rfc4231(void)
{
    /* Test case 2: key "Jefe" (a raw secret, no whsec_ prefix). */
    wh__hmac *h = NULL;
    CHECK_EQ(wh__hmac_new("Jefe", &h), WH_OK);
    uint8_t mac[32];
    char hex[65];
    const wh__iov whole[] = {{"what do ya want for nothing?", 28}};
    CHECK_EQ(wh__hmac_sha256(h, whole, 1, mac), WH_OK);
    to_hex(mac, 32, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* The same message in pieces (with an empty piece) gives the same MAC. */
    const wh__iov parts[] = {{"what do ya", 10}, {NULL, 0}, {" want ", 6},
                             {"for nothing?", 12}};
    memset(mac, 0, sizeof mac);
    CHECK_EQ(wh__hmac_sha256(h, parts, 4, mac), WH_OK);
    to_hex(mac, 32, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    wh__hmac_free(h);

    /* Test case 6: a 131-byte key (longer than the block), given base64. */
    uint8_t key[131];
    memset(key, 0xaa, sizeof key);
    char secret[6 + 4 * 44 + 1];
    memcpy(secret, "whsec_", 6);
    secret[6 + wh__base64_encode(key, sizeof key, secret + 6)] = '\0';
    CHECK_EQ(wh__hmac_new(secret, &h), WH_OK);
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    const wh__iov m6[] = {{msg, strlen(msg)}};
    CHECK_EQ(wh__hmac_sha256(h, m6, 1, mac), WH_OK);
    to_hex(mac, 32, hex);
    CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    CHECK_EQ(wh__hmac_sha256(NULL, m6, 1, mac), WH_E_INVAL);
    CHECK_EQ(wh__hmac_sha256(h, NULL, 1, mac), WH_E_INVAL);
    wh__hmac_free(h);
}

/* ---- base64 (RFC 4648 section 10) ------------------------------------------- */

static void test_base64_rfc4648(void)
{
    static const struct { const char *in, *out; } v[] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
        {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[16];
        memset(out, '#', sizeof out);
        size_t n = wh__base64_encode((const uint8_t *)v[i].in, strlen(v[i].in), out);
        CHECK_EQ(n, strlen(v[i].out));
        CHECK_EQ(out[n], '#'); /* no NUL or anything else written past n */
        out[n] = '\0';
        CHECK_STR(out, v[i].out);
    }
    /* All 256 byte values go through the whole alphabet. */
    uint8_t all[255];
    for (int i = 0; i < 255; i++) all[i] = (uint8_t)i;
    char out[4 * 85 + 1];
    size_t n = wh__base64_encode(all, sizeof all, out);
    CHECK_EQ(n, 340);
    out[n] = '\0';
    CHECK(strncmp(out, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 44) == 0);
    CHECK(strcmp(out + 336, "/P3+") == 0);
}

/* ---- secrets ---------------------------------------------------------------- */

static void test_invalid_secrets(void)
{
    static const char *const bad[] = {
        "whsec_", "whsec_!!!", "", "whsec_Zg=", "whsec_Zm9v=",
        "whsec_Z", "whsec_Zm 9v", "whsec_====", "whsec_Zm9v\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wh__hmac *h = (wh__hmac *)&h; /* must be reset to NULL on failure */
        if (wh__hmac_new(bad[i], &h) != WH_E_SECRET)
            th_fail(__FILE__, __LINE__, "secret \"%s\" accepted", bad[i]);
        CHECK(h == NULL);
        char out[64];
        const char *s[] = {bad[i]};
        CHECK_EQ(wh_sign_standard(s, 1, "id", 1, "{}", 2, out, sizeof out),
                 WH_E_SECRET);
        CHECK_EQ(wh_verify_standard(s, 1, "id", "1", "{}", 2, VEC_SIG, 1, 0),
                 WH_E_SECRET);
    }
    /* A bad secret among good ones is still an error. */
    const char *mixed[] = {VEC_SECRET, "whsec_!!!"};
    char out[128];
    CHECK_EQ(wh_sign_standard(mixed, 2, VEC_ID, VEC_TS, VEC_BODY,
                              strlen(VEC_BODY), out, sizeof out), WH_E_SECRET);

    /* Valid forms: padded and unpadded base64, and raw strings. */
    static const char *const good[] = {
        "whsec_Zg==", "whsec_Zg", "whsec_Zm8=", "whsec_Zm8", "whsec_Zm9v",
        "whsec_+/+/", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "x", "whsec",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        wh__hmac *h = NULL;
        if (wh__hmac_new(good[i], &h) != WH_OK)
            th_fail(__FILE__, __LINE__, "secret \"%s\" refused", good[i]);
        wh__hmac_free(h);
    }
    /* Padded and unpadded forms of one key sign identically. */
    const char *pad[] = {"whsec_Zm8="}, *nopad[] = {"whsec_Zm8"};
    char a[64], b[64];
    CHECK_EQ(wh_sign_standard(pad, 1, "id", 5, "{}", 2, a, sizeof a), WH_OK);
    CHECK_EQ(wh_sign_standard(nopad, 1, "id", 5, "{}", 2, b, sizeof b), WH_OK);
    CHECK_STR(a, b);
    /* The raw string is the key: "fo" raw == base64 "Zm8=". */
    const char *raw[] = {"fo"};
    CHECK_EQ(wh_sign_standard(raw, 1, "id", 5, "{}", 2, b, sizeof b), WH_OK);
    CHECK_STR(a, b);
}

/* ---- rotation ---------------------------------------------------------------- */

static void test_rotation_two_secrets(void)
{
    const char *both[] = {VEC_SECRET, OTHER_SECRET};
    char out[100];
    CHECK_EQ(wh_sign_standard(both, 2, VEC_ID, VEC_TS, VEC_BODY,
                              strlen(VEC_BODY), out, sizeof out), WH_OK);
    /* Two entries, one space between them, the first one the vector's. */
    char *sp = strchr(out, ' ');
    CHECK(sp != NULL);
    CHECK(strchr(sp + 1, ' ') == NULL);
    CHECK_EQ(strlen(out), 47 + 1 + 47);
    *sp = '\0';
    CHECK_STR(out, VEC_SIG);
    const char *second = sp + 1;
    CHECK(strncmp(second, "v1,", 3) == 0);
    CHECK(strcmp(second, VEC_SIG) != 0);
    *sp = ' ';

    /* Each secret alone verifies the two-entry header. */
    const char *a[] = {VEC_SECRET}, *b[] = {OTHER_SECRET};
    CHECK_EQ(wh_verify_standard(a, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), out, VEC_TS, 0), WH_OK);
    CHECK_EQ(wh_verify_standard(b, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), out, VEC_TS, 0), WH_OK);
    /* The second entry alone verifies with the second secret only. */
    CHECK_EQ(wh_verify_standard(b, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), second, VEC_TS, 0), WH_OK);
    CHECK_EQ(wh_verify_standard(a, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), second, VEC_TS, 0),
             WH_E_SIGNATURE);
    /* The second entry is exactly what the second secret signs alone. */
    char single[50];
    CHECK_EQ(wh_sign_standard(b, 1, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY),
                              single, sizeof single), WH_OK);
    CHECK_STR(single, second);
    /* A receiver that knows both secrets accepts either. */
    CHECK_EQ(wh_verify_standard(both, 2, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS, 0), WH_OK);
}

/* ---- verification ------------------------------------------------------------- */

static void test_verify_rejects_tampering(void)
{
    /* Body changed by one digit, trailing space, truncated, empty. */
    CHECK_EQ(verify_vec("{\"test\": 2432232315}", VEC_SIG, VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec("{\"test\": 2432232314} ", VEC_SIG, VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec("{\"test\": 243223231", VEC_SIG, VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec("", VEC_SIG, VEC_TS), WH_E_SIGNATURE);
    /* Other id, other (valid, in tolerance) timestamp. */
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, "msg_p5jXN8AQM9LWM0D4loKWxJeK",
                                VEC_TS_STR, VEC_BODY, strlen(VEC_BODY),
                                VEC_SIG, VEC_TS, 0), WH_E_SIGNATURE);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, "1614265331", VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS, 0),
             WH_E_SIGNATURE);
    /* Wrong secret (and a raw secret equal to the base64 text). */
    const char *wrong[] = {OTHER_SECRET};
    CHECK_EQ(wh_verify_standard(wrong, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS, 0),
             WH_E_SIGNATURE);
    const char *raw[] = {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
    CHECK_EQ(wh_verify_standard(raw, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS, 0),
             WH_E_SIGNATURE);
    /* One flipped character in the signature. */
    char sig[] = VEC_SIG;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    CHECK_EQ(verify_vec(VEC_BODY, sig, VEC_TS), WH_E_SIGNATURE);
}

static void test_verify_timestamp_tolerance(void)
{
    /* Default tolerance (0 -> 300 s), both directions. */
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, VEC_TS + 299), WH_OK);
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, VEC_TS + 300), WH_OK);
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, VEC_TS + 301), WH_E_TIMESTAMP);
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, VEC_TS - 299), WH_OK);
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, VEC_TS - 301), WH_E_TIMESTAMP);
    /* The timestamp check comes first: a bad signature far out of tolerance
     * is reported as a timestamp failure. */
    CHECK_EQ(verify_vec(VEC_BODY, "garbage", VEC_TS + 100000), WH_E_TIMESTAMP);
    /* Explicit tolerance. */
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS + 10, 10),
             WH_OK);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS + 11, 10),
             WH_E_TIMESTAMP);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS + 1000, 1000),
             WH_OK);
    /* Extreme clocks do not overflow. */
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, INT64_MIN), WH_E_TIMESTAMP);
    CHECK_EQ(verify_vec(VEC_BODY, VEC_SIG, INT64_MAX), WH_E_TIMESTAMP);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, VEC_BODY,
                                strlen(VEC_BODY), VEC_SIG, VEC_TS, INT64_MAX),
             WH_OK);

    /* A message signed 301 s ago is refused, 299 s ago accepted. */
    const int64_t now = 1700000000;
    char sig[50], ts[24];
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, "msg_1", now - 301, "{}", 2, sig,
                              sizeof sig), WH_OK);
    snprintf(ts, sizeof ts, "%" PRId64, now - 301);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, "msg_1", ts, "{}", 2, sig, now, 0),
             WH_E_TIMESTAMP);
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, "msg_1", now - 299, "{}", 2, sig,
                              sizeof sig), WH_OK);
    snprintf(ts, sizeof ts, "%" PRId64, now - 299);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, "msg_1", ts, "{}", 2, sig, now, 0),
             WH_OK);
}

static void test_verify_timestamp_strict(void)
{
    static const char *const bad[] = {
        "", " 1614265330", "1614265330 ", "+1614265330", "-1614265330",
        "1614265330.0", "0x60374ef2", "16142653a0", "1e9",
        "9999999999999999999999", /* overflows int64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wh_verify_standard(vec_secrets, 1, VEC_ID, bad[i], VEC_BODY,
                               strlen(VEC_BODY), VEC_SIG, VEC_TS, 0) != WH_E_INVAL)
            th_fail(__FILE__, __LINE__, "timestamp \"%s\" not refused", bad[i]);
}

static void test_verify_any_entry_matches(void)
{
    char hdr[512];
    /* The matching entry first, in the middle, last; with extra spaces. */
    const char *other = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    snprintf(hdr, sizeof hdr, "%s %s", VEC_SIG, other);
    CHECK_EQ(verify_vec(VEC_BODY, hdr, VEC_TS), WH_OK);
    snprintf(hdr, sizeof hdr, "%s v2,abc %s %s", other, VEC_SIG, other);
    CHECK_EQ(verify_vec(VEC_BODY, hdr, VEC_TS), WH_OK);
    snprintf(hdr, sizeof hdr, "v1a,xyz  %s   %s ", other, VEC_SIG);
    CHECK_EQ(verify_vec(VEC_BODY, hdr, VEC_TS), WH_OK);
    /* Only non-matching entries. */
    snprintf(hdr, sizeof hdr, "%s %s", other, other);
    CHECK_EQ(verify_vec(VEC_BODY, hdr, VEC_TS), WH_E_SIGNATURE);
}

static void test_verify_rejects_bad_entries(void)
{
    /* The right base64 under another version tag is not accepted. */
    CHECK_EQ(verify_vec(VEC_BODY, "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                        VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec(VEC_BODY, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                        VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec(VEC_BODY, "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                        VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec(VEC_BODY, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                        VEC_TS), WH_E_SIGNATURE);
    /* Truncated, extended, missing padding. */
    CHECK_EQ(verify_vec(VEC_BODY, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
                        VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec(VEC_BODY, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE==",
                        VEC_TS), WH_E_SIGNATURE);
    CHECK_EQ(verify_vec(VEC_BODY, "v1,g0hM9SsE", VEC_TS), WH_E_SIGNATURE);
    /* Garbage. */
    static const char *const junk[] = {
        "", " ", "v1,", "v1", ",", "garbage", "v1,,,,", "\x01\x02\xff",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=,extra",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        if (verify_vec(VEC_BODY, junk[i], VEC_TS) != WH_E_SIGNATURE)
            th_fail(__FILE__, __LINE__, "header \"%s\" accepted", junk[i]);
}

/* ---- argument checks ---------------------------------------------------------- */

static void test_null_arguments(void)
{
    char out[64];
    const size_t bl = strlen(VEC_BODY);
    const char *nulls[] = {NULL};
    CHECK_EQ(wh_sign_standard(NULL, 1, VEC_ID, VEC_TS, VEC_BODY, bl, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh_sign_standard(nulls, 1, VEC_ID, VEC_TS, VEC_BODY, bl, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh_sign_standard(vec_secrets, 0, VEC_ID, VEC_TS, VEC_BODY, bl, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, NULL, VEC_TS, VEC_BODY, bl, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, VEC_TS, NULL, bl, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, VEC_TS, VEC_BODY, bl, NULL, 64), WH_E_INVAL);
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, -1, VEC_BODY, bl, out, sizeof out), WH_E_INVAL);
    /* An empty body may be NULL. */
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, VEC_TS, NULL, 0, out, sizeof out), WH_OK);
    char empty[64];
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, VEC_TS, "", 0, empty, sizeof empty), WH_OK);
    CHECK_STR(out, empty);

    CHECK_EQ(wh_verify_standard(NULL, 1, VEC_ID, VEC_TS_STR, VEC_BODY, bl, VEC_SIG, VEC_TS, 0), WH_E_INVAL);
    CHECK_EQ(wh_verify_standard(nulls, 1, VEC_ID, VEC_TS_STR, VEC_BODY, bl, VEC_SIG, VEC_TS, 0), WH_E_INVAL);
    CHECK_EQ(wh_verify_standard(vec_secrets, 0, VEC_ID, VEC_TS_STR, VEC_BODY, bl, VEC_SIG, VEC_TS, 0), WH_E_INVAL);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, NULL, VEC_TS_STR, VEC_BODY, bl, VEC_SIG, VEC_TS, 0), WH_E_INVAL);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, NULL, VEC_BODY, bl, VEC_SIG, VEC_TS, 0), WH_E_INVAL);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, NULL, bl, VEC_SIG, VEC_TS, 0), WH_E_INVAL);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, VEC_BODY, bl, NULL, VEC_TS, 0), WH_E_INVAL);
    CHECK_EQ(wh_verify_standard(vec_secrets, 1, VEC_ID, VEC_TS_STR, VEC_BODY, bl, VEC_SIG, VEC_TS, -1), WH_E_INVAL);

    wh__hmac *h = NULL;
    CHECK_EQ(wh__hmac_new(NULL, &h), WH_E_INVAL);
    CHECK_EQ(wh__hmac_new(VEC_SECRET, NULL), WH_E_INVAL);
    CHECK_EQ(wh__hmac_new(VEC_SECRET, &h), WH_OK);
    wh__hmac *const keys[] = {h};
    CHECK_EQ(wh__sign_standard_keyed(NULL, 1, VEC_ID, VEC_TS, "{}", 2, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh__sign_standard_keyed(keys, 0, VEC_ID, VEC_TS, "{}", 2, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh__sign_standard_keyed(keys, 1, NULL, VEC_TS, "{}", 2, out, sizeof out), WH_E_INVAL);
    CHECK_EQ(wh__sign_standard_keyed(keys, 1, VEC_ID, VEC_TS, "{}", 2, NULL, 64), WH_E_INVAL);
    wh__hmac_free(h);
}

static void test_out_too_small(void)
{
    /* One entry needs 47 characters + NUL; the documented 50 per secret is
     * enough. */
    char out[200];
    for (size_t size = 0; size < 48; size++) {
        memset(out, 'x', sizeof out);
        CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, VEC_TS, VEC_BODY,
                                  strlen(VEC_BODY), out, size), WH_E_TOO_LARGE);
        CHECK_EQ(out[size], 'x'); /* nothing written past out_size */
        if (size) CHECK_EQ(out[0], '\0');
    }
    CHECK_EQ(wh_sign_standard(vec_secrets, 1, VEC_ID, VEC_TS, VEC_BODY,
                              strlen(VEC_BODY), out, 48), WH_OK);
    CHECK_STR(out, VEC_SIG);
    const char *three[] = {VEC_SECRET, OTHER_SECRET, "raw"};
    CHECK_EQ(wh_sign_standard(three, 3, VEC_ID, VEC_TS, VEC_BODY,
                              strlen(VEC_BODY), out, 3 * 48 - 1), WH_E_TOO_LARGE);
    CHECK_EQ(wh_sign_standard(three, 3, VEC_ID, VEC_TS, VEC_BODY,
                              strlen(VEC_BODY), out, 3 * 50), WH_OK);
    CHECK_EQ(strlen(out), 3 * 47 + 2);

    wh__hmac *h = NULL;
    CHECK_EQ(wh__hmac_new(VEC_SECRET, &h), WH_OK);
    wh__hmac *const keys[] = {h, h};
    CHECK_EQ(wh__sign_standard_keyed(keys, 2, VEC_ID, VEC_TS, "{}", 2, out, 95),
             WH_E_TOO_LARGE);
    CHECK_EQ(wh__sign_standard_keyed(keys, 2, VEC_ID, VEC_TS, "{}", 2, out, 96),
             WH_OK);
    wh__hmac_free(h);
}

/* ---- independent implementations ---------------------------------------------- */

/* python3 computes, from a hex key, the whsec_ secret and the Standard
 * Webhooks signature header; the id, timestamp and hex body are argv. */
static const char py_sign[] =
    "import base64,hashlib,hmac,sys\n"
    "key=bytes.fromhex(sys.argv[1]); msg_id=sys.argv[2]; ts=sys.argv[3]\n"
    "body=bytes.fromhex(sys.argv[4]); raw=sys.argv[5]=='raw'\n"
    "content=msg_id.encode()+b'.'+ts.encode()+b'.'+body\n"
    "sig=base64.b64encode(hmac.new(key,content,hashlib.sha256).digest()).decode()\n"
    "print(key.decode() if raw else 'whsec_'+base64.b64encode(key).decode())\n"
    "print('v1,'+sig)\n";

static void random_id(char *out, size_t n)
{
    static const char al[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    uint8_t r[64];
    random_bytes(r, n);
    for (size_t i = 0; i < n; i++) out[i] = al[r[i] % 64];
    out[n] = '\0';
}

static void test_python_random_messages(void)
{
    if (!have_command("python3")) {
        fprintf(stderr, "    python3 not found: independent check skipped\n");
        return;
    }
    char script[] = "/tmp/wh_test_sign_XXXXXX";
    int fd = mkstemp(script);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, py_sign, sizeof py_sign - 1), (ssize_t)(sizeof py_sign - 1));
    close(fd);

    for (int round = 0; round < 9; round++) {
        int raw = round % 3 == 2; /* every third secret is a raw string */
        uint8_t r[4];
        random_bytes(r, sizeof r);
        uint8_t key[64];
        size_t key_len = 1 + r[0] % 63;
        char key_hex[129];
        if (raw) {
            char rk[64];
            random_id(rk, key_len);
            if (strncmp(rk, "whsec_", 6) == 0) rk[0] = 'x';
            memcpy(key, rk, key_len);
        } else {
            random_bytes(key, key_len);
        }
        to_hex(key, key_len, key_hex);
        char id[40];
        random_id(id, 1 + r[1] % 38);
        uint32_t ts32;
        random_bytes(&ts32, sizeof ts32);
        int64_t ts = ts32;
        size_t body_len = (size_t)r[2] * 8 + r[3] % 8; /* 0 .. 2047 */
        uint8_t *body = malloc(body_len + 1);
        char *body_hex = malloc(2 * body_len + 1);
        CHECK(body && body_hex);
        random_bytes(body, body_len);
        to_hex(body, body_len, body_hex);

        size_t cmd_len = strlen(script) + strlen(key_hex) + strlen(id) +
                         2 * body_len + 128;
        char *cmd = malloc(cmd_len);
        CHECK(cmd != NULL);
        snprintf(cmd, cmd_len, "python3 %s %s %s %" PRId64 " '%s' %s", script,
                 key_hex, id, ts, body_hex, raw ? "raw" : "b64");
        int status;
        char *py = run_capture(cmd, &status);
        CHECK_EQ(status, 0);
        char *nl = strchr(py, '\n');
        CHECK(nl != NULL);
        *nl = '\0';
        const char *secret = py, *want = nl + 1;
        char *nl2 = strchr(want, '\n');
        CHECK(nl2 != NULL);
        *nl2 = '\0';

        const char *secrets[] = {secret};
        char got[64];
        CHECK_EQ(wh_sign_standard(secrets, 1, id, ts, (const char *)body,
                                  body_len, got, sizeof got), WH_OK);
        if (strcmp(got, want) != 0)
            th_fail(__FILE__, __LINE__,
                    "round %d: libwebhook \"%s\" python \"%s\" (secret %s id %s "
                    "ts %" PRId64 " body %zu bytes)", round, got, want, secret,
                    id, ts, body_len);
        /* And the library accepts python's signature. */
        char ts_str[24];
        snprintf(ts_str, sizeof ts_str, "%" PRId64, ts);
        CHECK_EQ(wh_verify_standard(secrets, 1, id, ts_str, (const char *)body,
                                    body_len, want, ts + 5, 0), WH_OK);
        free(py);
        free(cmd);
        free(body);
        free(body_hex);
    }
    unlink(script);
}

static void test_openssl_random_hmac(void)
{
    if (!have_command("openssl")) {
        fprintf(stderr, "    openssl not found: independent check skipped\n");
        return;
    }
    char path[] = "/tmp/wh_test_sign_msg_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    uint8_t key[48], msg[1000];
    random_bytes(key, sizeof key);
    random_bytes(msg, sizeof msg);
    CHECK_EQ(write(fd, msg, sizeof msg), (ssize_t)sizeof msg);
    close(fd);

    char key_hex[2 * sizeof key + 1];
    to_hex(key, sizeof key, key_hex);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl dgst -sha256 -mac HMAC -macopt hexkey:%s -r %s", key_hex,
             path);
    int status;
    char *ossl = run_capture(cmd, &status);
    unlink(path);
    CHECK_EQ(status, 0);

    char secret[6 + 64 + 1];
    memcpy(secret, "whsec_", 6);
    secret[6 + wh__base64_encode(key, sizeof key, secret + 6)] = '\0';
    wh__hmac *h = NULL;
    CHECK_EQ(wh__hmac_new(secret, &h), WH_OK);
    uint8_t mac[32];
    const wh__iov parts[] = {{msg, 300}, {msg + 300, 700}};
    CHECK_EQ(wh__hmac_sha256(h, parts, 2, mac), WH_OK);
    wh__hmac_free(h);
    char hex[65];
    to_hex(mac, sizeof mac, hex);
    if (strncmp(ossl, hex, 64) != 0)
        th_fail(__FILE__, __LINE__, "libwebhook %s openssl %.64s", hex, ossl);
    free(ossl);
}

TH_MAIN(TH_CASE(test_standard_vector), TH_CASE(test_standard_vector_keyed),
        TH_CASE(test_hmac_rfc4231), TH_CASE(test_base64_rfc4648),
        TH_CASE(test_invalid_secrets), TH_CASE(test_rotation_two_secrets),
        TH_CASE(test_verify_rejects_tampering),
        TH_CASE(test_verify_timestamp_tolerance),
        TH_CASE(test_verify_timestamp_strict),
        TH_CASE(test_verify_any_entry_matches),
        TH_CASE(test_verify_rejects_bad_entries), TH_CASE(test_null_arguments),
        TH_CASE(test_out_too_small), TH_CASE(test_python_random_messages),
        TH_CASE(test_openssl_random_hmac))
