/* Standard Webhooks signing and verification (HMAC-SHA256, base64).
 *
 * HMAC-SHA256 lives behind wh__hmac_* only.  A wh__hmac is keyed once per
 * secret: the SHA-256 states after absorbing the inner and the outer pad
 * (key XOR ipad / opad) are kept, and every message starts from copies of
 * them, so signing costs the message's blocks plus one block for the outer
 * hash, never anything per key.
 *
 * Two SHA-256 backends, chosen at build time:
 *   - Mbed TLS (default): mbedtls_sha256_*;
 *   - OpenSSL libcrypto (-DWH_HMAC_OPENSSL, `make WH_HMAC=openssl`): its
 *     SHA256_* functions use the CPU's SHA extensions (SHA-NI) where present,
 *     several times faster on large batch bodies.  libcurl already loads
 *     libcrypto.
 * Mbed TLS stays linked either way (RSA signing).
 *
 * A Standard Webhooks key list may mix HMAC secrets ("whsec_...", "v1,"
 * entries) and ed25519 keys ("whsk_..."/"whpk_...", "v1a," entries, see
 * sign_ed25519.c); an ed25519 key is never taken as HMAC bytes. */
#include "internal.h"
#include "sign_ed25519.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/version.h>
#if defined(MBEDTLS_VERSION_MAJOR) && MBEDTLS_VERSION_MAJOR >= 4
#  error "Mbed TLS 4 has no mbedtls/md.h HMAC: port wh__hmac_* to the PSA API"
#endif
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#if defined(WH_HMAC_OPENSSL)
/* The low-level SHA256_* API is deprecated in OpenSSL 3 but kept; it is the
 * only one that lets a keyed midstate be copied without an allocation. */
#  define OPENSSL_SUPPRESS_DEPRECATED
#  include <openssl/sha.h>
typedef SHA256_CTX wh__sha256;
static void sha_start(wh__sha256 *c) { SHA256_Init(c); }
static void sha_update(wh__sha256 *c, const void *p, size_t n) { SHA256_Update(c, p, n); }
static void sha_finish(wh__sha256 *c, uint8_t out[32]) { SHA256_Final(out, c); }
static void sha_copy(wh__sha256 *dst, const wh__sha256 *src) { *dst = *src; }
static void sha_free(wh__sha256 *c) { mbedtls_platform_zeroize(c, sizeof *c); }
#else
typedef mbedtls_sha256_context wh__sha256;
#  if MBEDTLS_VERSION_MAJOR >= 3
#    define WH__SHA_STARTS mbedtls_sha256_starts
#    define WH__SHA_UPDATE mbedtls_sha256_update
#    define WH__SHA_FINISH mbedtls_sha256_finish
#  else
#    define WH__SHA_STARTS mbedtls_sha256_starts_ret
#    define WH__SHA_UPDATE mbedtls_sha256_update_ret
#    define WH__SHA_FINISH mbedtls_sha256_finish_ret
#  endif
/* With a valid context, the software SHA-256 cannot fail. */
static void sha_start(wh__sha256 *c)
{
    mbedtls_sha256_init(c);
    (void)WH__SHA_STARTS(c, 0);
}
static void sha_update(wh__sha256 *c, const void *p, size_t n)
{
    (void)WH__SHA_UPDATE(c, p, n);
}
static void sha_finish(wh__sha256 *c, uint8_t out[32]) { (void)WH__SHA_FINISH(c, out); }
static void sha_copy(wh__sha256 *dst, const wh__sha256 *src) { mbedtls_sha256_clone(dst, src); }
static void sha_free(wh__sha256 *c) { mbedtls_sha256_free(c); } /* zeroes it */
#endif

#define WH__SECRET_PREFIX "whsec_"
#define WH__SECRET_PREFIX_LEN 6
#define WH__MAC_LEN 32
#define WH__MAC_B64_LEN 44            /* 4 * ceil(32 / 3) */
#define WH__SIG_ENTRY_LEN (3 + WH__MAC_B64_LEN) /* "v1," + base64 */
#define WH__DEFAULT_TOLERANCE_S 300

struct wh__hmac {
    wh__sha256 inner;   /* after (key ^ ipad) */
    wh__sha256 outer;   /* after (key ^ opad) */
};

/* ---- base64 ---------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t wh__base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

/* Value of one base64 character, or -1.  Computed without a table lookup
 * or a data-dependent branch, since the input is secret key material. */
static int b64_value(unsigned char ch)
{
    unsigned c = ch, r = 0;
    r |= (unsigned)((c - 'A') < 26u) * (c - 'A' + 1u);
    r |= (unsigned)((c - 'a') < 26u) * (c - 'a' + 27u);
    r |= (unsigned)((c - '0') < 10u) * (c - '0' + 53u);
    r |= (unsigned)(c == '+') * 63u;
    r |= (unsigned)(c == '/') * 64u;
    return (int)r - 1;
}

/* Strict standard base64 (RFC 4648 section 4).  Padding is optional but,
 * when present, must be complete; nothing else (no whitespace) is allowed.
 * `out` must hold 3 * ceil(len / 4) bytes.  Returns the decoded length, or
 * -1 when `in` is not base64. */
static long b64_decode(const char *in, size_t len, uint8_t *out)
{
    if (len >= 1 && in[len - 1] == '=') {
        if (len % 4) return -1;
        len--;
        if (len >= 1 && in[len - 1] == '=') len--;
    }
    if (len % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0, bad = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        bad |= (unsigned)(v < 0);
        acc = (acc << 6) | ((unsigned)v & 63u);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return bad ? -1 : (long)o;
}

long wh__base64_decode(const char *in, size_t len, uint8_t *out)
{
    return b64_decode(in, len, out);
}

/* ---- HMAC-SHA256 ----------------------------------------------------------- */

int wh__hmac_new(const char *secret, wh__hmac **out)
{
    if (!secret || !out) return WH_E_INVAL;
    *out = NULL;
    /* "whsk_"/"whpk_" name ed25519 keys: never HMAC key bytes */
    if (wh__ed_is_key(secret)) return WH_E_SECRET;

    const uint8_t *key;
    size_t key_len;
    uint8_t *decoded = NULL;
    size_t decoded_cap = 0;
    size_t slen = strlen(secret);
    if (strncmp(secret, WH__SECRET_PREFIX, WH__SECRET_PREFIX_LEN) == 0) {
        const char *b64 = secret + WH__SECRET_PREFIX_LEN;
        size_t blen = slen - WH__SECRET_PREFIX_LEN;
        if (blen == 0) return WH_E_SECRET;
        decoded_cap = (blen + 3) / 4 * 3;
        decoded = malloc(decoded_cap);
        if (!decoded) return WH_E_NOMEM;
        long n = b64_decode(b64, blen, decoded);
        if (n <= 0) {
            mbedtls_platform_zeroize(decoded, decoded_cap);
            free(decoded);
            return WH_E_SECRET;
        }
        key = decoded;
        key_len = (size_t)n;
    } else {
        if (slen == 0) return WH_E_SECRET;
        key = (const uint8_t *)secret;
        key_len = slen;
    }

    int rc = WH_E_NOMEM;
    wh__hmac *h = calloc(1, sizeof *h);
    if (h) {
        /* RFC 2104: a key longer than the block is hashed first. */
        uint8_t k[64], pad[64];
        memset(k, 0, sizeof k);
        if (key_len > sizeof k) {
            wh__sha256 c;
            sha_start(&c);
            sha_update(&c, key, key_len);
            sha_finish(&c, k);
            sha_free(&c);
        } else {
            memcpy(k, key, key_len);
        }
        for (size_t i = 0; i < sizeof pad; i++) pad[i] = (uint8_t)(k[i] ^ 0x36);
        sha_start(&h->inner);
        sha_update(&h->inner, pad, sizeof pad);
        for (size_t i = 0; i < sizeof pad; i++) pad[i] = (uint8_t)(k[i] ^ 0x5c);
        sha_start(&h->outer);
        sha_update(&h->outer, pad, sizeof pad);
        mbedtls_platform_zeroize(k, sizeof k);
        mbedtls_platform_zeroize(pad, sizeof pad);
        rc = WH_OK;
    }
    if (decoded) {
        mbedtls_platform_zeroize(decoded, decoded_cap);
        free(decoded);
    }
    *out = h;
    return rc;
}

void wh__hmac_free(wh__hmac *h)
{
    if (!h) return;
    /* the midstates are derived from the key: zeroed before release */
    sha_free(&h->inner);
    sha_free(&h->outer);
    mbedtls_platform_zeroize(h, sizeof *h);
    free(h);
}

/* HMAC over parts[0..n) followed by the body pieces body[0..nb). */
static int hmac_msg(wh__hmac *h, const wh__iov *parts, size_t n, const wh_body_piece *body,
                    size_t nb, uint8_t out[32])
{
    if (!h || !out || (n && !parts) || (nb && !body)) return WH_E_INVAL;
    for (size_t i = 0; i < n; i++)
        if (parts[i].n && !parts[i].p) return WH_E_INVAL;
    for (size_t i = 0; i < nb; i++)
        if (body[i].len && !body[i].data) return WH_E_INVAL;
    wh__sha256 c;
    uint8_t inner[32];
#if !defined(WH_HMAC_OPENSSL)
    mbedtls_sha256_init(&c);
#endif
    sha_copy(&c, &h->inner);
    for (size_t i = 0; i < n; i++)
        if (parts[i].n) sha_update(&c, parts[i].p, parts[i].n);
    for (size_t i = 0; i < nb; i++)
        if (body[i].len) sha_update(&c, body[i].data, body[i].len);
    sha_finish(&c, inner);
    sha_copy(&c, &h->outer);
    sha_update(&c, inner, sizeof inner);
    sha_finish(&c, out);
    sha_free(&c);
    mbedtls_platform_zeroize(inner, sizeof inner);
    return WH_OK;
}

int wh__hmac_sha256(wh__hmac *h, const wh__iov *parts, size_t n,
                    uint8_t out[32])
{
    return hmac_msg(h, parts, n, NULL, 0, out);
}

/* ---- Standard Webhooks ----------------------------------------------------- */

/* base64(HMAC(key, id "." ts "." body)) into b64[44]; the body in nb
 * pieces. */
static int sign_one(wh__hmac *key, const char *id, const char *ts, size_t ts_len,
                    const wh_body_piece *body, size_t nb,
                    char b64[WH__MAC_B64_LEN])
{
    uint8_t mac[WH__MAC_LEN];
    const wh__iov parts[4] = {
        {id, strlen(id)}, {".", 1}, {ts, ts_len}, {".", 1},
    };
    int rc = hmac_msg(key, parts, 4, body, nb, mac);
    if (rc == WH_OK) wh__base64_encode(mac, sizeof mac, b64);
    mbedtls_platform_zeroize(mac, sizeof mac);
    return rc;
}

int wh__sign_standard_keyed(wh__hmac *const *keys, size_t n, const char *id,
                            int64_t timestamp_s, const char *body,
                            size_t body_len, char *out, size_t out_size)
{
    if (!keys || n == 0 || !id || (!body && body_len) || !out ||
        timestamp_s < 0)
        return WH_E_INVAL;
    if (out_size < n * (WH__SIG_ENTRY_LEN + 1)) {
        if (out_size) out[0] = '\0';
        return WH_E_TOO_LARGE;
    }
    char ts[24];
    int ts_len = snprintf(ts, sizeof ts, "%" PRId64, timestamp_s);
    char *p = out;
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ' ';
        memcpy(p, "v1,", 3);
        const wh_body_piece whole = {body, body_len};
        int rc = sign_one(keys[i], id, ts, (size_t)ts_len, &whole, 1, p + 3);
        if (rc != WH_OK) {
            out[0] = '\0';
            return rc;
        }
        p += WH__SIG_ENTRY_LEN;
    }
    *p = '\0';
    return WH_OK;
}

/* The keys of a Standard Webhooks signer: entry i is an HMAC secret (h[i],
 * a "v1," signature) or an ed25519 key (ed[i], a "v1a," signature). */
typedef struct wh__stdkeys {
    wh__hmac **h;
    wh__edkey **ed;
    size_t n;
} wh__stdkeys;

static void stdkeys_free(wh__stdkeys *k)
{
    for (size_t i = 0; i < k->n; i++) {
        if (k->h) wh__hmac_free(k->h[i]);
        if (k->ed) wh__edkey_free(k->ed[i]);
    }
    free(k->h);
    free(k->ed);
    k->h = NULL;
    k->ed = NULL;
    k->n = 0;
}

/* Key every secret.  allow_ed: "whsk_" keys become ed25519 signing keys
 * (else they are refused); a "whpk_" key cannot sign and is refused.  On
 * failure frees what was made, sets *why and returns the status. */
static int stdkeys_new(const char *const *secrets, size_t n, int allow_ed,
                       wh__stdkeys *k, const char **why)
{
    k->n = n;
    k->h = wh__calloc(n, sizeof *k->h);
    k->ed = wh__calloc(n, sizeof *k->ed);
    if (!k->h || !k->ed) {
        stdkeys_free(k);
        return WH_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (!secrets[i]) {
            *why = "a secret is NULL";
            rc = WH_E_INVAL;
        } else if (wh__ed_is_key(secrets[i])) {
            if (!allow_ed) {
                *why = "a whsk_/whpk_ key is an ed25519 key; this signing scheme "
                       "needs an HMAC secret (whsec_ or raw bytes)";
                rc = WH_E_SECRET;
            } else {
                rc = wh__edkey_new(secrets[i], &k->ed[i], why);
                if (rc == WH_OK && !wh__edkey_can_sign(k->ed[i])) {
                    *why = "a whpk_ key is public and cannot sign; give the "
                           "whsk_ secret key";
                    rc = WH_E_SECRET;
                }
            }
        } else {
            rc = wh__hmac_new(secrets[i], &k->h[i]);
            if (rc == WH_E_SECRET)
                *why = "a secret is empty or not valid base64 after \"whsec_\"";
        }
        if (rc != WH_OK) {
            stdkeys_free(k);
            return rc;
        }
    }
    return WH_OK;
}

/* Bytes of the header with its NUL: entries separated by one space. */
static size_t stdkeys_size(const wh__stdkeys *k)
{
    size_t len = 0;
    for (size_t i = 0; i < k->n; i++)
        len += (k->ed[i] ? WH__ED_SIG_ENTRY_LEN : WH__SIG_ENTRY_LEN) + 1;
    return len;
}

/* "v1,<b64> v1a,<b64> ..." NUL-terminated, in key order. */
static int stdkeys_sign(wh__stdkeys *k, const char *id, int64_t timestamp_s,
                        const wh_body_piece *body, size_t nb, char *out,
                        size_t out_size)
{
    if (out_size < stdkeys_size(k) || out_size == 0) {
        if (out_size) out[0] = '\0';
        return WH_E_TOO_LARGE;
    }
    char ts[24];
    int ts_len = snprintf(ts, sizeof ts, "%" PRId64, timestamp_s);
    char *p = out;
    for (size_t i = 0; i < k->n; i++) {
        if (i) *p++ = ' ';
        int rc;
        if (k->ed[i]) {
            uint8_t sig[WH__ED_SIG_LEN];
            /* ed25519 signs the joined message: the pieces as parts */
            wh__iov small[16];
            wh__iov *parts = 4 + nb <= 16 ? small : wh__calloc(4 + nb, sizeof *parts);
            if (!parts) {
                out[0] = '\0';
                return WH_E_NOMEM;
            }
            parts[0] = (wh__iov){id, strlen(id)};
            parts[1] = (wh__iov){".", 1};
            parts[2] = (wh__iov){ts, (size_t)ts_len};
            parts[3] = (wh__iov){".", 1};
            for (size_t j = 0; j < nb; j++) parts[4 + j] = (wh__iov){body[j].data, body[j].len};
            rc = wh__edkey_sign(k->ed[i], parts, 4 + nb, sig);
            if (parts != small) free(parts);
            if (rc == WH_OK) {
                memcpy(p, "v1a,", 4);
                wh__base64_encode(sig, sizeof sig, p + 4);
                p += WH__ED_SIG_ENTRY_LEN;
            }
        } else {
            memcpy(p, "v1,", 3);
            rc = sign_one(k->h[i], id, ts, (size_t)ts_len, body, nb, p + 3);
            p += WH__SIG_ENTRY_LEN;
        }
        if (rc != WH_OK) {
            out[0] = '\0';
            return rc;
        }
    }
    *p = '\0';
    return WH_OK;
}

int wh_sign_standard(const char *const *secrets, size_t n_secrets,
                     const char *id, int64_t timestamp_s, const char *body,
                     size_t body_len, char *out, size_t out_size)
{
    if (!secrets || n_secrets == 0 || !id || (!body && body_len) || !out ||
        timestamp_s < 0)
        return WH_E_INVAL;
    wh__stdkeys keys = {0};
    const char *why = NULL;
    int rc = stdkeys_new(secrets, n_secrets, 1, &keys, &why);
    if (rc != WH_OK) {
        if (out_size) out[0] = '\0';
        return rc;
    }
    const wh_body_piece whole = {body, body_len};
    rc = stdkeys_sign(&keys, id, timestamp_s, &whole, 1, out, out_size);
    stdkeys_free(&keys);
    return rc;
}

/* Strict decimal: 1..18 ASCII digits, nothing else. */
static int parse_timestamp(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 18) return WH_E_INVAL;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return WH_E_INVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return WH_OK;
}

/* 1 when a[0..n) == b[0..n), in time that depends on n only. */
static int ct_equal(const char *a, const char *b, size_t n)
{
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* Next space-separated entry of a signature header: *p advances past it. */
static const char *next_entry(const char **p, size_t *len)
{
    const char *q = *p;
    while (*q == ' ') q++;
    const char *start = q;
    while (*q && *q != ' ') q++;
    *p = q;
    *len = (size_t)(q - start);
    return start;
}

/* Compare one HMAC secret against every "v1," entry; no early exit. */
static int verify_hmac(const char *secret, const char *id, const char *ts,
                       size_t ts_len, const char *body, size_t body_len,
                       const char *header, int *matched)
{
    wh__hmac *key = NULL;
    int rc = wh__hmac_new(secret, &key);
    if (rc != WH_OK) return rc;
    char expected[WH__MAC_B64_LEN];
    const wh_body_piece whole = {body, body_len};
    rc = sign_one(key, id, ts, ts_len, &whole, 1, expected);
    wh__hmac_free(key);
    if (rc != WH_OK) return rc;
    const char *p = header;
    while (*p) {
        size_t len;
        const char *start = next_entry(&p, &len);
        if (len == WH__SIG_ENTRY_LEN && memcmp(start, "v1,", 3) == 0)
            *matched |= ct_equal(start + 3, expected, WH__MAC_B64_LEN);
    }
    mbedtls_platform_zeroize(expected, sizeof expected);
    return WH_OK;
}

/* Check every "v1a," entry against one ed25519 key (whpk_, or the public
 * half of a whsk_). */
static int verify_ed(const char *keystr, const char *id, const char *ts,
                     size_t ts_len, const char *body, size_t body_len,
                     const char *header, int *matched)
{
    wh__edkey *key = NULL;
    int rc = wh__edkey_new(keystr, &key, NULL);
    if (rc != WH_OK) return rc;
    const wh__iov parts[5] = {
        {id, strlen(id)}, {".", 1}, {ts, ts_len}, {".", 1}, {body, body_len},
    };
    const char *p = header;
    while (*p && rc == WH_OK) {
        size_t len;
        const char *start = next_entry(&p, &len);
        if (len != WH__ED_SIG_ENTRY_LEN || memcmp(start, "v1a,", 4) != 0) continue;
        uint8_t sig[WH__ED_SIG_LEN + 2];
        if (b64_decode(start + 4, WH__ED_SIG_B64_LEN, sig) != WH__ED_SIG_LEN)
            continue;
        int v = wh__edkey_verify(key, parts, 5, sig);
        if (v == WH_OK) *matched = 1;
        else if (v != WH_E_SIGNATURE) rc = v;
    }
    wh__edkey_free(key);
    return rc;
}

int wh_verify_standard(const char *const *secrets, size_t n_secrets,
                       const char *id, const char *timestamp,
                       const char *body, size_t body_len,
                       const char *signature_header, int64_t now_s,
                       int64_t tolerance_s)
{
    if (!secrets || n_secrets == 0 || !id || !timestamp ||
        (!body && body_len) || !signature_header || tolerance_s < 0)
        return WH_E_INVAL;
    for (size_t i = 0; i < n_secrets; i++)
        if (!secrets[i]) return WH_E_INVAL;

    int64_t ts;
    if (parse_timestamp(timestamp, &ts) != WH_OK) return WH_E_INVAL;
    if (tolerance_s == 0) tolerance_s = WH__DEFAULT_TOLERANCE_S;
    /* |now - ts| computed in uint64 so it cannot overflow. */
    uint64_t skew = ts >= now_s ? (uint64_t)ts - (uint64_t)now_s
                                : (uint64_t)now_s - (uint64_t)ts;
    if (skew > (uint64_t)tolerance_s) return WH_E_TIMESTAMP;

    size_t ts_len = strlen(timestamp);
    int matched = 0;
    for (size_t k = 0; k < n_secrets; k++) {
        int rc = wh__ed_is_key(secrets[k])
                     ? verify_ed(secrets[k], id, timestamp, ts_len, body, body_len,
                                 signature_header, &matched)
                     : verify_hmac(secrets[k], id, timestamp, ts_len, body,
                                   body_len, signature_header, &matched);
        if (rc != WH_OK) return rc;
    }
    return matched ? WH_OK : WH_E_SIGNATURE;
}

/* ---- request signers (one per endpoint) ------------------------------------ */

#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ctr_drbg.h>

struct wh__signer {
    wh_sign_scheme scheme;
    wh__stdkeys keys;          /* STANDARD; HMAC_HEX: keys.h[0] */
    mbedtls_pk_context pk;     /* RSA_SHA256 */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg; /* RSA blinding */
    int has_pk;
};

static const char hex_digits[] = "0123456789abcdef";

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 15];
    }
}

void wh__signer_free(wh__signer *s)
{
    if (!s) return;
    stdkeys_free(&s->keys);
    if (s->has_pk) {
        mbedtls_pk_free(&s->pk);          /* zeroes the key */
        mbedtls_ctr_drbg_free(&s->drbg);
        mbedtls_entropy_free(&s->entropy);
    }
    mbedtls_platform_zeroize(s, sizeof *s);
    free(s);
}

/* Parse a PEM (or DER) key.  PEM parsing in Mbed TLS needs the terminating
 * NUL counted in the length. */
static int parse_pem(mbedtls_pk_context *pk, const char *pem, int private_key)
{
    size_t len = strlen(pem) + 1;
    int rc = private_key
                 ? mbedtls_pk_parse_key(pk, (const unsigned char *)pem, len, NULL, 0)
                 : mbedtls_pk_parse_public_key(pk, (const unsigned char *)pem, len);
    if (rc != 0) return WH_E_SECRET;
    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_RSA)) return WH_E_SECRET;
    return WH_OK;
}

int wh__signer_new(wh_sign_scheme scheme, const char *const *secrets,
                   size_t n_secrets, const char *private_key_pem,
                   wh__signer **out, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    *why = NULL;
    if (!out) return WH_E_INVAL;
    *out = NULL;
    wh__signer *s = calloc(1, sizeof *s);
    if (!s) return WH_E_NOMEM;
    s->scheme = scheme;
    int rc = WH_OK;
    switch (scheme) {
    case WH_SIGN_STANDARD:
    case WH_SIGN_HMAC_HEX:
        if (!secrets || n_secrets == 0) {
            *why = "the signing scheme needs at least one secret";
            rc = WH_E_SECRET;
            break;
        }
        /* the hex schemes carry one signature: a second secret would be
         * silently unused and a receiver holding it would reject all */
        if (scheme == WH_SIGN_HMAC_HEX && n_secrets > 1) {
            *why = "the hex signature schemes (stream, pusher, sendbird) carry one "
                   "signature: give one secret, not several";
            rc = WH_E_SECRET;
            break;
        }
        rc = stdkeys_new(secrets, scheme == WH_SIGN_STANDARD ? n_secrets : 1,
                         scheme == WH_SIGN_STANDARD, &s->keys, why);
        break;
    case WH_SIGN_RSA_SHA256: {
        if (!private_key_pem) {
            *why = "rsa-sha256 needs a private key (PEM)";
            rc = WH_E_SECRET;
            break;
        }
        mbedtls_pk_init(&s->pk);
        mbedtls_entropy_init(&s->entropy);
        mbedtls_ctr_drbg_init(&s->drbg);
        s->has_pk = 1;
        rc = parse_pem(&s->pk, private_key_pem, 1);
        if (rc != WH_OK) {
            *why = "the private key is not a PEM RSA private key";
            break;
        }
        static const unsigned char pers[] = "libwebhook-rsa";
        if (mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
                                  pers, sizeof pers - 1) != 0) {
            *why = "cannot seed the random generator";
            rc = WH_E_INVAL;
        }
        break;
    }
    default:
        *why = "unknown signing scheme";
        rc = WH_E_INVAL;
        break;
    }
    if (rc != WH_OK) {
        wh__signer_free(s);
        return rc;
    }
    *out = s;
    return WH_OK;
}

size_t wh__signer_max_len(const wh__signer *s)
{
    if (!s) return 0;
    switch (s->scheme) {
    case WH_SIGN_STANDARD: return stdkeys_size(&s->keys);
    case WH_SIGN_HMAC_HEX: return 2 * WH__MAC_LEN;
    case WH_SIGN_RSA_SHA256: {
        size_t n = mbedtls_pk_get_len(&s->pk);
        return 4 * ((n + 2) / 3);
    }
    default: return 0;
    }
}

int wh__signer_sign(wh__signer *s, const char *id, int64_t timestamp_s,
                    const char *body, size_t body_len, char *out,
                    size_t out_size)
{
    if (!body && body_len) return WH_E_INVAL;
    const wh_body_piece whole = {body, body_len};
    return wh__signer_sign_pieces(s, id, timestamp_s, &whole, 1, out, out_size);
}

int wh__signer_sign_pieces(wh__signer *s, const char *id, int64_t timestamp_s,
                           const wh_body_piece *body, size_t nb, char *out,
                           size_t out_size)
{
    if (!s || !out || (nb && !body)) return WH_E_INVAL;
    for (size_t i = 0; i < nb; i++)
        if (body[i].len && !body[i].data) return WH_E_INVAL;
    if (out_size < wh__signer_max_len(s) + 1) {
        if (out_size) out[0] = '\0';
        return WH_E_TOO_LARGE;
    }
    switch (s->scheme) {
    case WH_SIGN_STANDARD:
        if (!id) return WH_E_INVAL;
        return stdkeys_sign(&s->keys, id, timestamp_s, body, nb, out, out_size);
    case WH_SIGN_HMAC_HEX: {
        uint8_t mac[WH__MAC_LEN];
        int rc = hmac_msg(s->keys.h[0], NULL, 0, body, nb, mac);
        if (rc == WH_OK) {
            hex_encode(mac, sizeof mac, out);
            out[2 * WH__MAC_LEN] = '\0';
        } else {
            out[0] = '\0';
        }
        mbedtls_platform_zeroize(mac, sizeof mac);
        return rc;
    }
    case WH_SIGN_RSA_SHA256: {
        uint8_t hash[32];
        uint8_t sig[MBEDTLS_MPI_MAX_SIZE];
        size_t sig_len = 0;
        out[0] = '\0';
        wh__sha256 c;
        sha_start(&c);
        for (size_t i = 0; i < nb; i++)
            if (body[i].len) sha_update(&c, body[i].data, body[i].len);
        sha_finish(&c, hash);
        sha_free(&c);
        if (mbedtls_pk_sign(&s->pk, MBEDTLS_MD_SHA256, hash, sizeof hash, sig,
                            &sig_len, mbedtls_ctr_drbg_random, &s->drbg) != 0)
            return WH_E_INVAL;
        size_t n = wh__base64_encode(sig, sig_len, out);
        out[n] = '\0';
        return WH_OK;
    }
    default:
        out[0] = '\0';
        return WH_E_INVAL;
    }
}

/* ---- receiver-side helpers for the other schemes --------------------------- */

static int hex_nibble(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int wh_verify_hmac_hex(const char *secret, const char *body, size_t body_len,
                       const char *signature_hex)
{
    if (!secret || (!body && body_len) || !signature_hex) return WH_E_INVAL;
    wh__hmac *key = NULL;
    int rc = wh__hmac_new(secret, &key);
    if (rc != WH_OK) return rc;
    uint8_t mac[WH__MAC_LEN];
    const wh__iov part = {body, body_len};
    rc = wh__hmac_sha256(key, &part, 1, mac);
    wh__hmac_free(key);
    if (rc != WH_OK) return rc;
    int ok = strlen(signature_hex) == 2 * WH__MAC_LEN;
    volatile unsigned diff = 0;
    if (ok) {
        for (size_t i = 0; i < WH__MAC_LEN; i++) {
            int hi = hex_nibble((unsigned char)signature_hex[2 * i]);
            int lo = hex_nibble((unsigned char)signature_hex[2 * i + 1]);
            diff |= (unsigned)(hi < 0) | (unsigned)(lo < 0);
            diff |= (unsigned)(((hi & 15) << 4 | (lo & 15)) ^ mac[i]);
        }
    }
    mbedtls_platform_zeroize(mac, sizeof mac);
    return ok && diff == 0 ? WH_OK : WH_E_SIGNATURE;
}

int wh_verify_rsa_sha256(const char *public_key_pem, const char *body,
                         size_t body_len, const char *signature_b64)
{
    if (!public_key_pem || (!body && body_len) || !signature_b64)
        return WH_E_INVAL;
    size_t blen = strlen(signature_b64);
    if (blen == 0 || blen > 4 * ((MBEDTLS_MPI_MAX_SIZE + 2) / 3))
        return WH_E_SIGNATURE;
    uint8_t sig[MBEDTLS_MPI_MAX_SIZE + 3];
    long n = b64_decode(signature_b64, blen, sig);
    if (n <= 0) return WH_E_SIGNATURE;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = parse_pem(&pk, public_key_pem, 0);
    if (rc == WH_OK) {
        uint8_t hash[32];
        if (mbedtls_sha256_ret((const unsigned char *)body, body_len, hash, 0) != 0)
            rc = WH_E_INVAL;
        else if (mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, sizeof hash, sig,
                                   (size_t)n) != 0)
            rc = WH_E_SIGNATURE;
    }
    mbedtls_pk_free(&pk);
    return rc;
}
