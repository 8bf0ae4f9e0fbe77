/* libFuzzer: the receiver-side helpers of <webhook/verify.h> on arbitrary
 * secrets, ids, timestamps, bodies and signature headers.  Beyond crashes:
 * each returns one of its documented statuses, and what wh_sign_standard
 * signs, wh_verify_standard accepts. */
#include "fuzz.h"

#include <webhook/verify.h>

/* a 1024-bit RSA test key (small: verification stays fast) */
static const char pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC/VTM2pry1t9sbeaXsC7EU+1lr\n"
    "frKr+jgFfHgqCqPg2mfIbOwf2bn6S/+phFV6N5BHzzWL0On5iolZ/LDm4k6bbCSe\n"
    "OZg7Xx4G8mvprKj+tbCVevwvxBQOnkTuYAHLLobSBTgjwog5qjLxtC6eG3LQBaah\n"
    "MYix7C0fD0ls9oMHcQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static int one_of(int rc, const int *allowed, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rc == allowed[i]) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = {data, data + size};
    unsigned mode = fz_u8(&f), nsec = fz_u8(&f) % 4;
    char *secrets[3] = {NULL, NULL, NULL};
    for (unsigned i = 0; i < nsec && i < 3; i++) secrets[i] = fz_str(&f, 256, NULL);
    size_t n_secrets = nsec < 3 ? nsec : 3;
    char *id = fz_str(&f, 512, NULL), *ts = fz_str(&f, 64, NULL);
    char *sig = fz_str(&f, 4096, NULL);
    size_t body_len;
    char *body = fz_str(&f, 1 << 16, &body_len);
    const char *const *sv = (const char *const *)secrets;
    int64_t now = (int64_t)(fz_u16(&f) * 65536u + fz_u16(&f)) - 1000;

    static const int std_ok[] = {WH_OK, WH_E_SIGNATURE, WH_E_TIMESTAMP, WH_E_SECRET, WH_E_INVAL};
    int rc = wh_verify_standard(n_secrets ? sv : NULL, n_secrets, id, ts, body, body_len, sig,
                                now, mode & 0x0f);
    FZ_CHECK(one_of(rc, std_ok, 5));

    static const int hex_ok[] = {WH_OK, WH_E_SIGNATURE, WH_E_SECRET, WH_E_INVAL};
    rc = wh_verify_hmac_hex(n_secrets ? secrets[0] : "", body, body_len, sig);
    FZ_CHECK(one_of(rc, hex_ok, 4));

    if (mode & 0x10) {
        static const int rsa_ok[] = {WH_OK, WH_E_SIGNATURE, WH_E_SECRET, WH_E_INVAL};
        rc = wh_verify_rsa_sha256(pub_pem, body, body_len, sig);
        FZ_CHECK(one_of(rc, rsa_ok, 4));
    }

    /* round trip: signed with these secrets now, it verifies */
    char out[256], tsbuf[24];
    int64_t t = 1700000000 + (int64_t)(mode & 0xff);
    rc = wh_sign_standard(n_secrets ? sv : NULL, n_secrets, id, t, body, body_len, out,
                          sizeof out);
    static const int sign_ok[] = {WH_OK, WH_E_SECRET, WH_E_INVAL, WH_E_TOO_LARGE};
    FZ_CHECK(one_of(rc, sign_ok, 4));
    if (rc == WH_OK) {
        snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)t);
        rc = wh_verify_standard(sv, n_secrets, id, tsbuf, body, body_len, out, t, 300);
        if (rc != WH_OK) fprintf(stderr, "signed \"%s\" does not verify: %d\n", out, rc);
        FZ_CHECK(rc == WH_OK);
    }
    for (unsigned i = 0; i < 3; i++) free(secrets[i]);
    free(id);
    free(ts);
    free(sig);
    free(body);
    return 0;
}
