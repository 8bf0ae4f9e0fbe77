/* Ed25519 keys in the Standard Webhooks format (internal).
 *
 * A "whsk_" secret key is base64 of the 32-byte RFC 8032 seed, or of the
 * 64-byte seed || public key that libsodium and Svix serialise (the public
 * half is then checked against the seed).  A "whpk_" public key is base64 of
 * the 32-byte public key.  Signatures are "v1a,<base64 of 64 bytes>" over
 * id "." timestamp "." body.
 *
 * Implemented with OpenSSL libcrypto (EVP_PKEY_ED25519) when the library is
 * built with WH_HMAC=openssl; the Mbed TLS build (Mbed TLS 2.x/3.x has no
 * Ed25519) refuses such keys with WH_E_SECRET and a reason naming it. */
#ifndef WH_SIGN_ED25519_H
#define WH_SIGN_ED25519_H

#include "internal.h"

#define WH__ED_SECRET_PREFIX "whsk_"
#define WH__ED_PUBLIC_PREFIX "whpk_"
#define WH__ED_PREFIX_LEN 5
#define WH__ED_SIG_LEN 64
#define WH__ED_SIG_B64_LEN 88                         /* 4 * ceil(64 / 3) */
#define WH__ED_SIG_ENTRY_LEN (4 + WH__ED_SIG_B64_LEN)  /* "v1a," + base64 */

typedef struct wh__edkey wh__edkey;

/* 1 when `key` starts with "whsk_" or "whpk_" (an ed25519 key, never HMAC
 * bytes). */
int wh__ed_is_key(const char *key);
/* 1 when this build can sign and verify ed25519. */
int wh__ed_available(void);
/* Parse "whsk_..." (can sign and verify) or "whpk_..." (verify only).
 * WH_E_SECRET with *why set when the key is malformed or this build has no
 * ed25519; WH_E_NOMEM. */
int wh__edkey_new(const char *key, wh__edkey **out, const char **why);
void wh__edkey_free(wh__edkey *k);               /* zeroes the key; NULL ok */
int wh__edkey_can_sign(const wh__edkey *k);
/* Sign the concatenation of parts.  WH_OK, WH_E_INVAL (public key only),
 * WH_E_NOMEM. */
int wh__edkey_sign(wh__edkey *k, const wh__iov *parts, size_t n,
                   uint8_t sig[WH__ED_SIG_LEN]);
/* WH_OK when sig is a valid signature of the concatenation, else
 * WH_E_SIGNATURE (WH_E_NOMEM on allocation failure). */
int wh__edkey_verify(wh__edkey *k, const wh__iov *parts, size_t n,
                     const uint8_t sig[WH__ED_SIG_LEN]);

/* Strict standard base64 decode (lib/sign.c); `out` holds 3*ceil(len/4)
 * bytes.  Returns the decoded length or -1. */
long wh__base64_decode(const char *in, size_t len, uint8_t *out);

#endif /* WH_SIGN_ED25519_H */
