/* Ed25519 keys and signatures for Standard Webhooks "v1a" (see
 * sign_ed25519.h).  OpenSSL libcrypto's EVP_PKEY_ED25519 does the
 * arithmetic; this file only decodes keys and frames messages. */
#include "sign_ed25519.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

int wh__ed_is_key(const char *key)
{
    return key && (strncmp(key, WH__ED_SECRET_PREFIX, WH__ED_PREFIX_LEN) == 0 ||
                   strncmp(key, WH__ED_PUBLIC_PREFIX, WH__ED_PREFIX_LEN) == 0);
}

#if defined(WH_HMAC_OPENSSL)

#include <openssl/evp.h>

struct wh__edkey {
    EVP_PKEY *pkey;
    int can_sign;
};

int wh__ed_available(void) { return 1; }

/* Decode the base64 after the prefix into buf[96]; returns the length or -1. */
static long decode_key(const char *b64, uint8_t buf[96])
{
    size_t len = strlen(b64);
    if (len == 0 || len > 128) return -1;
    return wh__base64_decode(b64, len, buf);
}

int wh__edkey_new(const char *key, wh__edkey **out, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    *why = NULL;
    if (!key || !out) return WH_E_INVAL;
    *out = NULL;
    int secret = strncmp(key, WH__ED_SECRET_PREFIX, WH__ED_PREFIX_LEN) == 0;
    if (!secret && strncmp(key, WH__ED_PUBLIC_PREFIX, WH__ED_PREFIX_LEN) != 0) {
        *why = "an ed25519 key starts with \"whsk_\" or \"whpk_\"";
        return WH_E_SECRET;
    }
    uint8_t buf[96];
    long n = decode_key(key + WH__ED_PREFIX_LEN, buf);
    EVP_PKEY *pk = NULL;
    int rc = WH_OK;
    if (secret) {
        if (n != 32 && n != 64) {
            *why = "a whsk_ key is base64 of a 32-byte ed25519 seed (or of "
                   "seed + public key, 64 bytes)";
            rc = WH_E_SECRET;
        } else {
            pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, buf, 32);
            if (!pk) {
                rc = WH_E_NOMEM;
            } else if (n == 64) {
                uint8_t pub[32];
                size_t plen = sizeof pub;
                if (EVP_PKEY_get_raw_public_key(pk, pub, &plen) != 1 ||
                    plen != 32 || memcmp(pub, buf + 32, 32) != 0) {
                    *why = "the whsk_ key's public half does not belong to its "
                           "seed";
                    rc = WH_E_SECRET;
                }
            }
        }
    } else {
        if (n != 32) {
            *why = "a whpk_ key is base64 of a 32-byte ed25519 public key";
            rc = WH_E_SECRET;
        } else {
            pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, buf, 32);
            if (!pk) {
                *why = "the whpk_ key is not an ed25519 public key";
                rc = WH_E_SECRET;
            }
        }
    }
    mbedtls_platform_zeroize(buf, sizeof buf);
    wh__edkey *k = NULL;
    if (rc == WH_OK) {
        k = calloc(1, sizeof *k);
        if (!k) rc = WH_E_NOMEM;
    }
    if (rc != WH_OK) {
        EVP_PKEY_free(pk);
        return rc;
    }
    k->pkey = pk;
    k->can_sign = secret;
    *out = k;
    return WH_OK;
}

void wh__edkey_free(wh__edkey *k)
{
    if (!k) return;
    EVP_PKEY_free(k->pkey); /* OpenSSL clears private key material it frees */
    free(k);
}

int wh__edkey_can_sign(const wh__edkey *k) { return k && k->can_sign; }

/* Ed25519 (pure) is one-shot over the whole message: join the parts. */
static uint8_t *join(const wh__iov *parts, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += parts[i].n;
    uint8_t *m = malloc(total ? total : 1);
    if (!m) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].n) memcpy(m + o, parts[i].p, parts[i].n);
        o += parts[i].n;
    }
    *len = total;
    return m;
}

int wh__edkey_sign(wh__edkey *k, const wh__iov *parts, size_t n,
                   uint8_t sig[WH__ED_SIG_LEN])
{
    if (!k || !k->can_sign || !sig || (n && !parts)) return WH_E_INVAL;
    size_t len;
    uint8_t *m = join(parts, n, &len);
    if (!m) return WH_E_NOMEM;
    int rc = WH_E_NOMEM;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t slen = WH__ED_SIG_LEN;
    if (c && EVP_DigestSignInit(c, NULL, NULL, NULL, k->pkey) == 1 &&
        EVP_DigestSign(c, sig, &slen, m, len) == 1 && slen == WH__ED_SIG_LEN)
        rc = WH_OK;
    EVP_MD_CTX_free(c);
    free(m);
    return rc;
}

int wh__edkey_verify(wh__edkey *k, const wh__iov *parts, size_t n,
                     const uint8_t sig[WH__ED_SIG_LEN])
{
    if (!k || !sig || (n && !parts)) return WH_E_INVAL;
    size_t len;
    uint8_t *m = join(parts, n, &len);
    if (!m) return WH_E_NOMEM;
    int rc = WH_E_NOMEM;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k->pkey) == 1)
        rc = EVP_DigestVerify(c, sig, WH__ED_SIG_LEN, m, len) == 1 ? WH_OK
                                                                   : WH_E_SIGNATURE;
    EVP_MD_CTX_free(c);
    free(m);
    return rc;
}

#else /* the Mbed TLS build: no ed25519 */

struct wh__edkey { int unused; };

int wh__ed_available(void) { return 0; }

int wh__edkey_new(const char *key, wh__edkey **out, const char **why)
{
    if (out) *out = NULL;
    if (why)
        *why = "whsk_/whpk_ (ed25519) keys need the OpenSSL libcrypto build "
               "(WH_HMAC=openssl); this build signs with Mbed TLS, which has no "
               "ed25519";
    (void)key;
    return WH_E_SECRET;
}

void wh__edkey_free(wh__edkey *k) { (void)k; }
int wh__edkey_can_sign(const wh__edkey *k) { (void)k; return 0; }

int wh__edkey_sign(wh__edkey *k, const wh__iov *parts, size_t n,
                   uint8_t sig[WH__ED_SIG_LEN])
{
    (void)k; (void)parts; (void)n; (void)sig;
    return WH_E_INVAL;
}

int wh__edkey_verify(wh__edkey *k, const wh__iov *parts, size_t n,
                     const uint8_t sig[WH__ED_SIG_LEN])
{
    (void)k; (void)parts; (void)n; (void)sig;
    return WH_E_INVAL;
}

#endif
