/* SPDX-License-Identifier: Apache-2.0 */
/* auth_jwt.h — verifying bearer tokens (JWT, compact JWS) against a JWKS.
 *
 * The services trust an OpenID Connect provider: the provider signs a
 * token, we check it with the provider's public keys (a JWKS file) and take
 * the identity from its claims. Signatures go through libcjose (RS256,
 * ES256, HS256) and, for EdDSA (Ed25519), which cjose 0.6 does not know
 * (no OKP keys), through OpenSSL's EVP_DigestVerify directly. The claim
 * checks are ours.
 *
 * What auth_verify checks, in this order (the first failure is reported):
 *   1. size: at most AUTH_MAX_TOKEN bytes, the header segment at most
 *      AUTH_MAX_HEADER bytes, before anything is parsed;
 *   2. shape: three base64url segments (no padding) separated by dots;
 *      the header a JSON object without "crit";
 *   3. alg: in the fixed allowlist RS256, ES256, EdDSA, plus HS256 only when
 *      an HS256 secret file is configured. "none" and every other value are
 *      refused. HS256 is verified with the configured secret only, never with
 *      a JWKS key, so a token "signed" with a public key's bytes as an HMAC
 *      secret is refused;
 *   4. kid (not for HS256): names a key in the JWKS whose kty/crv fits the
 *      alg (RSA for RS256, EC P-256 for ES256, OKP Ed25519 for EdDSA) and
 *      whose "use"/"alg", when present, allow it. JWKS keys with kty "oct"
 *      are never used;
 *   5. the signature;
 *   6. claims of the JSON payload: iss equals the issuer; aud (a string or
 *      an array) contains the audience; exp present, now < exp + leeway;
 *      nbf, when present, now + leeway >= nbf; sub a non-empty string of at
 *      most AUTH_MAX_SUB bytes; the name claim, when present, a string; the
 *      roles claim, when present, an array of at most AUTH_MAX_ROLES strings.
 *      Claim names may be dotted paths into nested objects
 *      ("realm_access.roles").
 * Each refusal sets a distinct short description ("token expired",
 * "unknown key id", "signature invalid", "wrong issuer", ...), plain ASCII
 * without quotes, fit for
 *   WWW-Authenticate: Bearer error="invalid_token", error_description="..."
 *
 * Keys rotate without a restart: auth_verifier_reload() rereads the JWKS
 * (and the HS256 secret); auth_verifier_check_reload() does so only when the
 * file's inode, size or mtime changed, cheaply enough (one stat) to call per
 * request. A failed reload keeps the keys in use.
 *
 * Verified tokens are cached (bounded: cache_slots entries in sets of 4,
 * about 1.6 KiB each; keyed by the SHA-256 of the whole token; an entry
 * lives until the token's exp or until a newer token needs its slot, the
 * entry expiring first going first) so a repeated token costs no signature
 * check. A refused token is never cached. exp and nbf are checked against `now` on every hit. A
 * reload drops the cache: entries verified under older keys are never used.
 *
 * Thread-safety: one auth_verifier is shared by every HTTP worker thread.
 * auth_verify, auth_verifier_reload and auth_verifier_check_reload may be
 * called concurrently from any threads. The key set is reference counted and
 * swapped under a mutex (a verification in flight finishes with the keys it
 * started with); the cache is guarded by striped mutexes. */
#ifndef AUTH_JWT_H
#define AUTH_JWT_H

#include "sm_error.h"

#include <stddef.h>
#include <stdint.h>

#define AUTH_MAX_TOKEN 16384      /* bytes of the whole compact token */
#define AUTH_MAX_HEADER 8192      /* bytes of the encoded header segment */
#define AUTH_MAX_SUB 255          /* bytes of sub */
#define AUTH_MAX_NAME 255         /* bytes of the name claim */
#define AUTH_MAX_ROLES 16         /* entries of the roles claim */
#define AUTH_MAX_ROLE 63          /* bytes of one role */
#define AUTH_MAX_JWKS (1024 * 1024) /* bytes of the JWKS file */
#define AUTH_MIN_HS256_SECRET 32  /* bytes: RFC 7518 3.2, a key as long as the hash */
#define AUTH_DEFAULT_LEEWAY_S 60
#define AUTH_DEFAULT_CACHE_SLOTS 1024
#define AUTH_DEFAULT_NAME_CLAIM "preferred_username"
#define AUTH_DEFAULT_ROLES_CLAIM "roles"

/* The settings (SMPOST_JWKS_FILE ... in docs/operations.md). Strings are
 * borrowed for the duration of auth_verifier_new, which copies them. */
typedef struct auth_config {
    const char *jwks_file;         /* JSON {"keys":[...]}; NULL only with hs256_secret_file */
    const char *hs256_secret_file; /* NULL: HS256 is refused. One trailing newline is
                                      ignored; at least AUTH_MIN_HS256_SECRET bytes */
    const char *issuer;            /* required */
    const char *audience;          /* required */
    int leeway_s;                  /* < 0: AUTH_DEFAULT_LEEWAY_S; 0 is honoured */
    const char *name_claim;        /* NULL: AUTH_DEFAULT_NAME_CLAIM */
    const char *roles_claim;       /* NULL: AUTH_DEFAULT_ROLES_CLAIM */
    int cache_slots;               /* 0: AUTH_DEFAULT_CACHE_SLOTS; < 0: no cache;
                                      rounded up to a multiple of 4 */
} auth_config;

/* Fills cfg with the defaults (every pointer NULL, leeway -1, cache 0). */
void auth_config_init(auth_config *cfg);

/* Who a verified token says the caller is. Fixed-size: copied by value, no
 * ownership. name is "" when the token has no name claim; roles holds
 * nroles entries. */
typedef struct auth_identity {
    char sub[AUTH_MAX_SUB + 1];
    char name[AUTH_MAX_NAME + 1];
    char roles[AUTH_MAX_ROLES][AUTH_MAX_ROLE + 1];
    int nroles;
    int64_t exp; /* seconds since the epoch */
} auth_identity;

/* 1 if id holds role (exact match), else 0. */
int auth_identity_has_role(const auth_identity *id, const char *role);

typedef struct auth_verifier auth_verifier;

/* Loads the keys. Returns NULL and fills err (SM_ERR_INVALID: a missing or
 * malformed setting or file; a JWKS with no usable signing key) on failure.
 * Caller frees with auth_verifier_free. */
auth_verifier *auth_verifier_new(const auth_config *cfg, sm_error *err);

/* Frees v. No call on v may be in flight. NULL is fine. */
void auth_verifier_free(auth_verifier *v);

/* Rereads the JWKS file and the HS256 secret and swaps them in, dropping the
 * cache. On failure (SM_ERR_INVALID, err says why) the keys in use stay. */
sm_status auth_verifier_reload(auth_verifier *v, sm_error *err);

/* Reloads when the JWKS or secret file's inode, size or mtime changed since
 * the last load or failed attempt (a broken file is tried once, not on every
 * call). SM_OK when nothing changed or the reload worked. Costs one or two
 * stat() calls when nothing changed. */
sm_status auth_verifier_check_reload(auth_verifier *v, sm_error *err);

/* Verifies token (a NUL-terminated compact JWS, without "Bearer ") at time
 * now (seconds since the epoch). SM_OK: *out is filled. SM_ERR_INVALID: the
 * token is refused (401), err->message is the short description.
 * SM_ERR_INTERNAL: out of memory. *out is untouched on failure. */
sm_status auth_verify(auth_verifier *v, const char *token, int64_t now, auth_identity *out,
                      sm_error *err);

/* Counters for /metrics and tests: verifications answered from the cache,
 * signatures checked, and successful reloads. */
typedef struct auth_stats {
    uint64_t cache_hits;
    uint64_t signature_checks;
    uint64_t reloads;
} auth_stats;
void auth_verifier_stats(auth_verifier *v, auth_stats *out);

#endif
