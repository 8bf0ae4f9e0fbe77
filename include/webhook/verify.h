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
/* Compute the Standard Webhooks signature header value for one message:
 * "v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>", one
 * space-separated entry per secret.  `out` receives a NUL-terminated
 * string.  Returns WH_OK, WH_E_SECRET, WH_E_INVAL or WH_E_TOO_LARGE (out too
 * small; 50 bytes per secret are enough). */
WH_EXTERN int wh_sign_standard(const char *const *secrets, size_t n_secrets,
                               const char *id, int64_t timestamp_s,
                               const char *body, size_t body_len,
                               char *out, size_t out_size);

/* Verify a received Standard Webhooks request: `signature_header` is the
 * webhook-signature value (several space-separated "v1,..." entries
 * allowed), checked in constant time against every secret.  `timestamp` is
 * the webhook-timestamp value; it must be within tolerance_s of now_s
 * (tolerance_s 0 selects the reference default, 300 s).
 * Returns WH_OK, WH_E_SIGNATURE, WH_E_TIMESTAMP, WH_E_SECRET or WH_E_INVAL. */
WH_EXTERN int wh_verify_standard(const char *const *secrets, size_t n_secrets,
                                 const char *id, const char *timestamp,
                                 const char *body, size_t body_len,
                                 const char *signature_header, int64_t now_s,
                                 int64_t tolerance_s);

/* Verify a lowercase- or uppercase-hex HMAC-SHA256 of `body` keyed with
 * `secret` (used as raw bytes, or base64-decoded after "whsec_"), as sent by
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
