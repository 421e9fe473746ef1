/* SPDX-License-Identifier: Apache-2.0 */
/* jwt_mint.h — making signed tokens and public JWKs from OpenSSL keys.
 *
 * The signing side of what common/auth_jwt.c verifies, for development and
 * tests only: smpost-token, the verifier's unit tests, its benchmark and its
 * fuzz harness share it, so a token is built one way everywhere. The
 * services never sign anything.
 *
 * Keys are OpenSSL EVP_PKEYs: RSA (RS256), EC P-256 (ES256) or Ed25519
 * (EdDSA). Every function returns NULL (or -1) on failure; returned strings
 * and JSON are the caller's to free (free(), json_decref()). Thread-safe:
 * no state beyond the arguments. */
#ifndef JWT_MINT_H
#define JWT_MINT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

/* base64url without padding of n bytes. */
char *jwt_b64url(const void *data, size_t n);

/* "RS256", "ES256" or "EdDSA" for key; NULL for any other kind (EC keys on
 * other curves included). Static string. */
const char *jwt_mint_alg(EVP_PKEY *key);

/* The key's public JWK ({"kty",...,"kid","use":"sig","alg"}). */
json_t *jwt_mint_public_jwk(EVP_PKEY *key, const char *kid);

/* The RFC 7638 thumbprint of the key's public JWK (base64url of SHA-256):
 * smpost-token's default kid, so a token and the JWKS from --gen-key agree
 * without naming one. */
char *jwt_mint_thumbprint(EVP_PKEY *key);

/* "b64(header).b64(payload).b64(signature)", signed with key by the
 * algorithm its kind implies, whatever header_json says (tests make tokens
 * that lie about their alg that way). */
char *jwt_mint_sign(EVP_PKEY *key, const char *header_json, const char *payload_json);

/* The same with HMAC-SHA-256 under secret. */
char *jwt_mint_hs256(const void *secret, size_t secret_len, const char *header_json,
                     const char *payload_json);

/* The public key's bytes (SubjectPublicKeyInfo PEM), as an attacker would
 * use it for an HS256 "secret". Caller frees; *len set. */
unsigned char *jwt_mint_public_pem(EVP_PKEY *key, size_t *len);

#endif
