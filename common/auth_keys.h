/* SPDX-License-Identifier: Apache-2.0 */
/* auth_keys.h — the JWT verifier's key sets (internal to auth_jwt.c).
 *
 * A key set is everything a token may be verified with: the usable signing
 * keys of a JWKS file, each bound to the one alg it verifies, and the HS256
 * secret when one is configured. It is immutable once loaded; auth_jwt.c
 * shares it between threads with a reference count (refs, gen are its). */
#ifndef AUTH_KEYS_H
#define AUTH_KEYS_H

#include "sm_error.h"

#include <cjose/cjose.h>
#include <openssl/evp.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define AUTH_MIN_RSA_BITS 2048

typedef enum { AUTH_ALG_RS256, AUTH_ALG_ES256, AUTH_ALG_EDDSA, AUTH_ALG_HS256 } auth_alg;

/* "RS256", ... indexed by auth_alg. */
extern const char *const auth_alg_names[4];

typedef struct auth_key {
    char *kid;
    auth_alg alg;     /* the one alg this key verifies */
    cjose_jwk_t *jwk; /* RS256, ES256 */
    EVP_PKEY *ed;     /* EdDSA */
} auth_key;

typedef struct auth_keyset {
    int refs; /* guarded by auth_verifier.mu */
    uint64_t gen;
    auth_key *keys;
    size_t nkeys;
    cjose_jwk_t *hs256; /* NULL: HS256 refused */
} auth_keyset;

/* What a file looked like when it was last (tried to be) loaded. */
typedef struct auth_file_id {
    int present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
} auth_file_id;

/* Reads the JWKS file (may be NULL) and the HS256 secret file (may be NULL)
 * into a new set (refs and gen 0). Keys of kinds we never verify with are
 * skipped: "use" other than "sig", kty "oct", curves other than P-256 and
 * Ed25519, an "alg" other than the one the kind implies, no kid. A usable
 * kind that is malformed, an RSA key under AUTH_MIN_RSA_BITS, a short
 * secret, or a set with no key at all fails the whole load (SM_ERR_INVALID,
 * err says which). Caller frees with auth_keyset_free. */
auth_keyset *auth_keyset_load(const char *jwks_file, const char *secret_file, sm_error *err);
void auth_keyset_free(auth_keyset *ks);

/* path's identity (dev, inode, size, mtime) into *id; present 0 if absent. */
void auth_file_stat(const char *path, auth_file_id *id);
int auth_file_same(const auth_file_id *a, const auth_file_id *b);

/* Strict base64url without padding (RFC 7515 2): only the 64 letters, no
 * '=', no length that leaves one sextet, no stray bits in the last one.
 * Returns a malloc'd buffer with a NUL byte beyond *outlen (so JSON text can
 * be handed on), or NULL. Caller frees. */
unsigned char *auth_b64url_decode(const char *in, size_t len, size_t *outlen);

#endif
