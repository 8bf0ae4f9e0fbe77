/* Ed25519 in the Standard Webhooks format: "whsk_" secret keys sign
 * "v1a,<base64>" entries, "whpk_" public keys verify them, HMAC and ed25519
 * keys rotate in one header.  Keys are made and signatures checked by
 * independent implementations: Debian's python3-cryptography (/usr/bin/python3) and the openssl
 * command line tool (pkeyutl -rawin).  Over real HTTP, an engine endpoint
 * with a v1 + v1a rotation delivers to a receiver whose recorded header is
 * verified the same way. */
#include "harness.h"
#include "http_receiver.h"
#include "internal.h"
#include "sign_ed25519.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define HMAC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS 1614265330
#define TS_STR "1614265330"
#define BODY "{\"test\": 2432232314, \"text\": \"h\\u00e9llo\"}"

typedef struct keypair {
    char sk[128];   /* whsk_ + base64(seed) */
    char sk64[160]; /* whsk_ + base64(seed || public) */
    char pk[128];   /* whpk_ + base64(public) */
} keypair;

static char *run_capture(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    char *buf = th_slurp(f);
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* A fresh key pair made by python3-cryptography (not by the library). */
static void make_keypair(keypair *kp)
{
    int st;
    char *out = run_capture(
        "/usr/bin/python3 -c '"
        "import base64\n"
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
        "from cryptography.hazmat.primitives import serialization as s\n"
        "k = Ed25519PrivateKey.generate()\n"
        "seed = k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())\n"
        "pub = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)\n"
        "b = lambda x: base64.b64encode(x).decode()\n"
        "print(\"whsk_\" + b(seed), \"whsk_\" + b(seed + pub), \"whpk_\" + b(pub))'",
        &st);
    CHECK_EQ(st, 0);
    CHECK_EQ(sscanf(out, "%127s %159s %127s", kp->sk, kp->sk64, kp->pk), 3);
    free(out);
}

/* Verify with python3-cryptography: exit 0 when some "v1a," entry of
 * `header` is a valid signature by `pk` of id.ts.body. */
static int python_verifies(const char *pk, const char *id, const char *ts,
                           const char *body, const char *header)
{
    const char *path = th_tmp_path("pyin");
    FILE *f = fopen(path, "w");
    CHECK(f);
    fprintf(f, "%s\n%s\n%s\n%s\n%s", pk, id, ts, header, body);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '"
             "import base64, sys\n"
             "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey\n"
             "pk, mid, ts, hdr, body = open(sys.argv[1], \"rb\").read().split(b\"\\n\", 4)\n"
             "key = Ed25519PublicKey.from_public_bytes(base64.b64decode(pk[5:]))\n"
             "ok = 0\n"
             "for e in hdr.split(b\" \"):\n"
             "    v, _, sig = e.partition(b\",\")\n"
             "    if v != b\"v1a\": continue\n"
             "    try:\n"
             "        key.verify(base64.b64decode(sig), mid + b\".\" + ts + b\".\" + body); ok = 1\n"
             "    except Exception: pass\n"
             "sys.exit(0 if ok else 3)' %s", path);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Sign with python3-cryptography: the "v1a,<b64>" entry for the seed. */
static char *python_sign(const char *sk, const char *id, const char *ts,
                         const char *body)
{
    const char *path = th_tmp_path("pysign");
    FILE *f = fopen(path, "w");
    CHECK(f);
    fprintf(f, "%s\n%s\n%s\n%s", sk, id, ts, body);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '"
             "import base64, sys\n"
             "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
             "sk, mid, ts, body = open(sys.argv[1], \"rb\").read().split(b\"\\n\", 3)\n"
             "k = Ed25519PrivateKey.from_private_bytes(base64.b64decode(sk[5:])[:32])\n"
             "print(\"v1a,\" + base64.b64encode(k.sign(mid + b\".\" + ts + b\".\" + body)).decode(), end=\"\")' %s",
             path);
    int st;
    char *out = run_capture(cmd, &st);
    CHECK_EQ(st, 0);
    return out;
}

static void b64_to_file(const char *b64, size_t len, const char *path,
                        const uint8_t *prefix, size_t prefix_len)
{
    uint8_t raw[128];
    CHECK(len <= 128);
    long n = wh__base64_decode(b64, len, raw);
    CHECK(n > 0);
    FILE *f = fopen(path, "wb");
    CHECK(f);
    if (prefix_len) CHECK_EQ(fwrite(prefix, 1, prefix_len, f), prefix_len);
    CHECK_EQ(fwrite(raw, 1, (size_t)n, f), (size_t)n);
    fclose(f);
}

/* Verify the first "v1a," entry of header with `openssl pkeyutl -verify
 * -rawin`, the public key given as an SPKI DER built from the raw key. */
static int openssl_verifies(const char *pk, const char *id, const char *ts,
                            const char *body, const char *header)
{
    static const uint8_t spki[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
                                   0x70, 0x03, 0x21, 0x00};
    const char *pub = th_tmp_path("pub.der");
    b64_to_file(pk + 5, strlen(pk + 5), pub, spki, sizeof spki);
    const char *v1a = strstr(header, "v1a,");
    CHECK(v1a);
    const char *sigpath = th_tmp_path("sig.bin");
    b64_to_file(v1a + 4, 88, sigpath, NULL, 0);
    const char *msgpath = th_tmp_path("msg.bin");
    FILE *f = fopen(msgpath, "wb");
    CHECK(f);
    fprintf(f, "%s.%s.%s", id, ts, body);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl pkeyutl -verify -pubin -inkey %s -keyform DER -rawin -in %s "
             "-sigfile %s >/dev/null 2>&1",
             pub, msgpath, sigpath);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int verify1(const char *key, const char *header)
{
    const char *keys[] = {key};
    return wh_verify_standard(keys, 1, MSG_ID, TS_STR, BODY, strlen(BODY), header,
                              TS, 0);
}

/* The Mbed TLS build (WH_HMAC=mbedtls) has no ed25519: it must refuse
 * whsk_/whpk_ keys by name.  Returns 1 when that is the build (the case has
 * then checked the refusal and ends). */
static int refused_without_ed25519(void)
{
    if (wh__ed_available()) return 0;
    const char *sk[] = {"whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq="};
    char hdr[256];
    CHECK_EQ(wh_sign_standard(sk, 1, MSG_ID, TS, BODY, 4, hdr, sizeof hdr),
             WH_E_SECRET);
    const char *why = NULL;
    wh__signer *sg = NULL;
    CHECK_EQ(wh__signer_new(WH_SIGN_STANDARD, sk, 1, NULL, &sg, &why), WH_E_SECRET);
    CHECK(why && strstr(why, "ed25519") && strstr(why, "WH_HMAC=openssl"));
    const char *pk[] = {"whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq="};
    CHECK_EQ(wh_verify_standard(pk, 1, MSG_ID, TS_STR, BODY, 4, "v1a,x", TS, 0),
             WH_E_SECRET);
    return 1;
}

/* ---- cases --------------------------------------------------------------- */

static void test_whsk_signs_v1a_verified_independently(void)
{
    if (refused_without_ed25519()) return;
    th_tmp_init("whed");
    keypair kp;
    make_keypair(&kp);
    const char *secrets[] = {kp.sk};
    char hdr[256];
    CHECK_EQ(wh_sign_standard(secrets, 1, MSG_ID, TS, BODY, strlen(BODY), hdr,
                              sizeof hdr),
             WH_OK);
    CHECK(strncmp(hdr, "v1a,", 4) == 0);
    CHECK_EQ(strlen(hdr), 92);
    CHECK_EQ(python_verifies(kp.pk, MSG_ID, TS_STR, BODY, hdr), 0);
    CHECK_EQ(openssl_verifies(kp.pk, MSG_ID, TS_STR, BODY, hdr), 0);
    /* a changed body or id does not verify independently */
    CHECK_EQ(python_verifies(kp.pk, MSG_ID, TS_STR, "{\"test\": 1}", hdr), 3);
    CHECK(openssl_verifies(kp.pk, "msg_other", TS_STR, BODY, hdr) != 0);
    /* Ed25519 is deterministic: the 64-byte form of the key signs the same */
    const char *secrets64[] = {kp.sk64};
    char hdr64[256];
    CHECK_EQ(wh_sign_standard(secrets64, 1, MSG_ID, TS, BODY, strlen(BODY), hdr64,
                              sizeof hdr64),
             WH_OK);
    CHECK_STR(hdr64, hdr);
    /* and python's own signature is byte-identical */
    char *py = python_sign(kp.sk, MSG_ID, TS_STR, BODY);
    CHECK_STR(py, hdr);
    free(py);
    th_tmp_cleanup();
}

static void test_whpk_verifies_independent_signature(void)
{
    if (refused_without_ed25519()) return;
    th_tmp_init("whed");
    keypair kp, other;
    make_keypair(&kp);
    make_keypair(&other);
    char *sig = python_sign(kp.sk, MSG_ID, TS_STR, BODY);
    CHECK_EQ(verify1(kp.pk, sig), WH_OK);
    CHECK_EQ(verify1(kp.sk, sig), WH_OK);   /* a whsk_ also verifies */
    CHECK_EQ(verify1(other.pk, sig), WH_E_SIGNATURE);
    /* one flipped signature byte */
    char bad[128];
    snprintf(bad, sizeof bad, "%s", sig);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    CHECK_EQ(verify1(kp.pk, bad), WH_E_SIGNATURE);
    /* body changed */
    const char *keys[] = {kp.pk};
    CHECK_EQ(wh_verify_standard(keys, 1, MSG_ID, TS_STR, "{}", 2, sig, TS, 0),
             WH_E_SIGNATURE);
    /* timestamp outside tolerance */
    CHECK_EQ(wh_verify_standard(keys, 1, MSG_ID, TS_STR, BODY, strlen(BODY), sig,
                                TS + 301, 0),
             WH_E_TIMESTAMP);
    /* a v1a signature given as v1 does not count */
    char relabeled[160];
    snprintf(relabeled, sizeof relabeled, "v1,%s", sig + 4);
    CHECK_EQ(verify1(kp.pk, relabeled), WH_E_SIGNATURE);
    free(sig);
    th_tmp_cleanup();
}

static void test_rotation_v1_and_v1a_in_one_header(void)
{
    if (refused_without_ed25519()) return;
    th_tmp_init("whed");
    keypair kp, other;
    make_keypair(&kp);
    make_keypair(&other);
    const char *secrets[] = {HMAC_SECRET, kp.sk};
    char hdr[256];
    /* too small: 48 + 93 bytes (with the NUL) are needed */
    CHECK_EQ(wh_sign_standard(secrets, 2, MSG_ID, TS, BODY, strlen(BODY), hdr, 140),
             WH_E_TOO_LARGE);
    CHECK_EQ(wh_sign_standard(secrets, 2, MSG_ID, TS, BODY, strlen(BODY), hdr, 141),
             WH_OK);
    CHECK(strncmp(hdr, "v1,", 3) == 0);
    CHECK(strncmp(hdr + 48, "v1a,", 4) == 0);
    CHECK_EQ(strlen(hdr), 47 + 1 + 92);
    /* either key verifies, alone */
    CHECK_EQ(verify1(HMAC_SECRET, hdr), WH_OK);
    CHECK_EQ(verify1(kp.pk, hdr), WH_OK);
    /* keys that signed nothing do not */
    CHECK_EQ(verify1("whsec_YSBjb21wbGV0ZWx5IGRpZmZlcmVudCBrZXkh", hdr),
             WH_E_SIGNATURE);
    CHECK_EQ(verify1(other.pk, hdr), WH_E_SIGNATURE);
    /* a receiver's list holding both kinds */
    const char *both[] = {other.pk, HMAC_SECRET};
    CHECK_EQ(wh_verify_standard(both, 2, MSG_ID, TS_STR, BODY, strlen(BODY), hdr,
                                TS, 0),
             WH_OK);
    /* the HMAC entry equals the HMAC-only signature; the v1a entry is
     * verified by python */
    const char *hmac_only[] = {HMAC_SECRET};
    char h1[64];
    CHECK_EQ(wh_sign_standard(hmac_only, 1, MSG_ID, TS, BODY, strlen(BODY), h1,
                              sizeof h1),
             WH_OK);
    CHECK(strncmp(hdr, h1, 47) == 0);
    CHECK_EQ(python_verifies(kp.pk, MSG_ID, TS_STR, BODY, hdr), 0);
    th_tmp_cleanup();
}

static void test_bad_keys_named(void)
{
    if (refused_without_ed25519()) return;
    th_tmp_init("whed");
    keypair kp;
    make_keypair(&kp);
    char hdr[256];
    const char *bad_b64[] = {"whsk_not*base64"};
    CHECK_EQ(wh_sign_standard(bad_b64, 1, MSG_ID, TS, BODY, 4, hdr, sizeof hdr),
             WH_E_SECRET);
    const char *short_key[] = {"whsk_YWJj"}; /* 3 bytes */
    CHECK_EQ(wh_sign_standard(short_key, 1, MSG_ID, TS, BODY, 4, hdr, sizeof hdr),
             WH_E_SECRET);
    /* a public key cannot sign */
    const char *pub[] = {kp.pk};
    CHECK_EQ(wh_sign_standard(pub, 1, MSG_ID, TS, BODY, 4, hdr, sizeof hdr),
             WH_E_SECRET);
    /* a 64-byte key whose public half is another key's */
    keypair other;
    make_keypair(&other);
    char mixed[160];
    {
        uint8_t a[96], b[96];
        long na = wh__base64_decode(kp.sk64 + 5, strlen(kp.sk64 + 5), a);
        long nb = wh__base64_decode(other.pk + 5, strlen(other.pk + 5), b);
        CHECK_EQ(na, 64);
        CHECK_EQ(nb, 32);
        memcpy(a + 32, b, 32);
        memcpy(mixed, "whsk_", 5);
        size_t n = wh__base64_encode(a, 64, mixed + 5);
        mixed[5 + n] = '\0';
    }
    const char *mixed_keys[] = {mixed};
    CHECK_EQ(wh_sign_standard(mixed_keys, 1, MSG_ID, TS, BODY, 4, hdr, sizeof hdr),
             WH_E_SECRET);
    /* the signer names why, and a whsk_ key is never used as HMAC bytes */
    const char *why = NULL;
    wh__signer *sg = NULL;
    CHECK_EQ(wh__signer_new(WH_SIGN_STANDARD, pub, 1, NULL, &sg, &why), WH_E_SECRET);
    CHECK(why && strstr(why, "whpk_"));
    const char *sk[] = {kp.sk};
    why = NULL;
    CHECK_EQ(wh__signer_new(WH_SIGN_HMAC_HEX, sk, 1, NULL, &sg, &why), WH_E_SECRET);
    CHECK(why && strstr(why, "ed25519"));
    wh__hmac *h = NULL;
    CHECK_EQ(wh__hmac_new(kp.sk, &h), WH_E_SECRET);
    CHECK(h == NULL);
    CHECK_EQ(wh_verify_hmac_hex(kp.sk, "x", 1, "00"), WH_E_SECRET);
    /* a malformed whpk_ in a receiver's list is an error, not a mismatch */
    const char *badpk[] = {"whpk_YWJj"};
    CHECK_EQ(wh_verify_standard(badpk, 1, MSG_ID, TS_STR, BODY, 4, "v1a,xx", TS, 0),
             WH_E_SECRET);
    /* the endpoint signer sizes and signs a mixed rotation */
    const char *rot[] = {HMAC_SECRET, kp.sk64};
    CHECK_EQ(wh__signer_new(WH_SIGN_STANDARD, rot, 2, NULL, &sg, &why), WH_OK);
    CHECK_EQ(wh__signer_max_len(sg), 48 + 93);
    CHECK_EQ(wh__signer_sign(sg, MSG_ID, TS, BODY, strlen(BODY), hdr, sizeof hdr),
             WH_OK);
    CHECK_EQ(verify1(kp.pk, hdr), WH_OK);
    CHECK_EQ(verify1(HMAC_SECRET, hdr), WH_OK);
    wh__signer_free(sg);
    th_tmp_cleanup();
}

/* ---- over real HTTP ---------------------------------------------------------- */

static void on_outcome(void *user, const wh_outcome *o)
{
    if (o->kind == WH_DELIVERED) ++*(int *)user;
}

static void test_engine_delivers_v1_and_v1a_over_http(void)
{
    if (refused_without_ed25519()) return;
    th_tmp_init("whed");
    keypair kp;
    make_keypair(&kp);
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    int delivered = 0;
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    eo.on_outcome = on_outcome;
    eo.outcome_user = &delivered;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {HMAC_SECRET, kp.sk};
    ep.url = th_recv_url(r);
    ep.secrets = secrets;
    ep.n_secrets = 2;
    CHECK_INT(wh_endpoint_add(e, &ep), >, 0);
    const char *bodies[] = {"{\"n\":1}", "{\"n\":2,\"s\":\"\\u00fc\"}", "[]"};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(wh_emit(e, "t.x", NULL, bodies[i], strlen(bodies[i]), NULL), 1);
    int64_t t0 = th_now_ms();
    while (delivered < 3 && th_now_ms() - t0 < 10000) wh_poll(e, 50);
    CHECK_EQ(delivered, 3);
    CHECK_EQ(th_recv_count(r), 3);
    for (size_t i = 0; i < 3; i++) {
        th_recv_req q;
        CHECK_EQ(th_recv_get(r, i, &q), 0);
        /* independent verification of the v1a entry as received */
        CHECK_EQ(python_verifies(kp.pk, q.webhook_id, q.webhook_timestamp, q.body,
                                 q.webhook_signature),
                 0);
        CHECK_EQ(openssl_verifies(kp.pk, q.webhook_id, q.webhook_timestamp, q.body,
                                  q.webhook_signature),
                 0);
        /* and the library's verifier with either key alone */
        int64_t now = (int64_t)time(NULL);
        const char *pk[] = {kp.pk}, *hm[] = {HMAC_SECRET};
        CHECK_EQ(wh_verify_standard(pk, 1, q.webhook_id, q.webhook_timestamp, q.body,
                                    q.body_len, q.webhook_signature, now, 0),
                 WH_OK);
        CHECK_EQ(wh_verify_standard(hm, 1, q.webhook_id, q.webhook_timestamp, q.body,
                                    q.body_len, q.webhook_signature, now, 0),
                 WH_OK);
    }
    wh_engine_free(e);
    th_recv_stop(r);
    th_tmp_cleanup();
}

static void test_endpoint_add_names_bad_ed25519_key(void)
{
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e);
    wh_endpoint_options ep;
    wh_endpoint_options_init(&ep);
    const char *secrets[] = {"whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq="};
    ep.url = "http://127.0.0.1:9/hook";
    ep.secrets = secrets;
    ep.n_secrets = 1;
    CHECK_EQ(wh_endpoint_add(e, &ep), WH_E_SECRET);
    const char *m = wh_last_error(e);
    CHECK(strstr(m, "secrets"));
    CHECK(strstr(m, wh__ed_available() ? "whpk_" : "ed25519"));
    wh_engine_free(e);
}

/* The JSON configuration takes whsk_ keys beside whsec_ secrets. */
static void test_config_whsk_secret(void)
{
    th_recv *r = th_recv_start(NULL);
    CHECK(r);
    wh_engine_options eo;
    wh_engine_options_init(&eo);
    int delivered = 0;
    eo.on_outcome = on_outcome;
    eo.outcome_user = &delivered;
    int err = 0;
    wh_engine *e = wh_engine_new(&eo, &err);
    CHECK(e);
    char doc[512];
    const char *bad = "{\"endpoints\": [{\"url\": \"http://127.0.0.1:9/\","
                      " \"secret\": \"whsk_YWJj\"}]}";
    CHECK_EQ(wh_config_load(e, bad, strlen(bad)), WH_E_CONFIG);
    CHECK(strstr(wh_last_error(e), "endpoints[0].secret"));
    if (!wh__ed_available()) {
        CHECK(strstr(wh_last_error(e), "WH_HMAC=openssl"));
        wh_engine_free(e);
        th_recv_stop(r);
        return;
    }
    CHECK(strstr(wh_last_error(e), "32-byte"));
    th_tmp_init("whed");
    keypair kp;
    make_keypair(&kp);
    snprintf(doc, sizeof doc, "{\"endpoints\": [{\"url\": \"%s\", \"secret\": "
             "[\"%s\", \"%s\"]}]}", th_recv_url(r), HMAC_SECRET, kp.sk);
    CHECK_EQ(wh_config_load(e, doc, strlen(doc)), WH_OK);
    CHECK_EQ(wh_emit(e, "t", NULL, "{\"a\":1}", 7, NULL), 1);
    int64_t t0 = th_now_ms();
    while (delivered < 1 && th_now_ms() - t0 < 10000) wh_poll(e, 50);
    CHECK_EQ(delivered, 1);
    th_recv_req q;
    CHECK_EQ(th_recv_get(r, 0, &q), 0);
    CHECK_EQ(python_verifies(kp.pk, q.webhook_id, q.webhook_timestamp, q.body,
                             q.webhook_signature),
             0);
    CHECK(strncmp(q.webhook_signature, "v1,", 3) == 0);
    wh_engine_free(e);
    th_recv_stop(r);
    th_tmp_cleanup();
}

TH_MAIN(TH_CASE(test_config_whsk_secret),
        TH_CASE(test_whsk_signs_v1a_verified_independently),
        TH_CASE(test_whpk_verifies_independent_signature),
        TH_CASE(test_rotation_v1_and_v1a_in_one_header),
        TH_CASE(test_bad_keys_named),
        TH_CASE(test_engine_delivers_v1_and_v1a_over_http),
        TH_CASE(test_endpoint_add_names_bad_ed25519_key))
