/*
 * libwebhook receiver side: compute and verify the signatures the library
 * sends, without an engine (a receiver in C, or a test of what was sent).
 * Every comparison is constant-time.
 */
#ifndef WEBHOOK_VERIFY_H
#define WEBHOOK_VERIFY_H

#include <webhook/webhook.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- signatures (Standard Webhooks) -------------------------------------- */
/* Compute the Standard Webhooks signature header value for one message,
 * one space-separated entry per secret, in order:
 *   - an HMAC secret ("whsec_<base64>", or any other string used as raw key
 *     bytes) gives "v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>";
 *   - an ed25519 secret key ("whsk_<base64>" of the 32-byte RFC 8032 seed,
 *     or of the 64-byte seed || public key) gives "v1a,<base64 ed25519
 *     signature of id "." timestamp "." body>".
 * Mixing both is a key rotation a receiver verifies with either key.
 * ed25519 needs the OpenSSL libcrypto build (WH_HMAC=openssl, the default);
 * the Mbed TLS build refuses whsk_ keys with WH_E_SECRET.  A "whpk_" public
 * key cannot sign (WH_E_SECRET).  `out` receives a NUL-terminated string.
 * Returns WH_OK, WH_E_SECRET, WH_E_INVAL or WH_E_TOO_LARGE (out too small;
 * 48 bytes per HMAC secret plus 93 per whsk_ key are enough). */
WH_EXTERN int wh_sign_standard(const char *const *secrets, size_t n_secrets,
                               const char *id, int64_t timestamp_s,
                               const char *body, size_t body_len,
                               char *out, size_t out_size);

/* Verify a received Standard Webhooks request: `signature_header` is the
 * webhook-signature value (several space-separated "v1,..."/"v1a,..."
 * entries allowed).  Each key of `secrets` is an HMAC secret, checked in
 * constant time against every "v1," entry, or an ed25519 key ("whpk_<base64
 * of the 32-byte public key>", or a "whsk_" secret key's public half),
 * checked against every "v1a," entry; one match of any key is enough.  `timestamp` is
 * the webhook-timestamp value; it must be within tolerance_s of now_s
 * (tolerance_s 0 selects the reference default, 300 s).
 * Returns WH_OK, WH_E_SIGNATURE, WH_E_TIMESTAMP, WH_E_SECRET (a malformed
 * key; any whsk_/whpk_ key in the Mbed TLS build) or WH_E_INVAL. */
WH_EXTERN int wh_verify_standard(const char *const *secrets, size_t n_secrets,
                                 const char *id, const char *timestamp,
                                 const char *body, size_t body_len,
                                 const char *signature_header, int64_t now_s,
                                 int64_t tolerance_s);

/* Verify a lowercase- or uppercase-hex HMAC-SHA256 of `body` keyed with
 * `secret` (used as raw bytes, or base64-decoded after "whsec_"; a whsk_ or
 * whpk_ ed25519 key is refused with WH_E_SECRET), as sent by
 * WH_SIGN_HMAC_HEX.  Constant time.  Returns WH_OK, WH_E_SIGNATURE,
 * WH_E_SECRET or WH_E_INVAL. */
WH_EXTERN int wh_verify_hmac_hex(const char *secret, const char *body,
                                 size_t body_len, const char *signature_hex);

/* Verify a base64 RSA-SHA256 (PKCS#1 v1.5) signature of `body`, as sent by
 * WH_SIGN_RSA_SHA256, with a PEM public key.  Returns WH_OK,
 * WH_E_SIGNATURE, WH_E_SECRET (unusable key) or WH_E_INVAL. */
WH_EXTERN int wh_verify_rsa_sha256(const char *public_key_pem,
                                   const char *body, size_t body_len,
                                   const char *signature_b64);

#ifdef __cplusplus
}
#endif
#endif /* WEBHOOK_VERIFY_H */
