/* SPDX-License-Identifier: Apache-2.0 */
/* auth_keys.c — loading the JWT verifier's key sets (see auth_keys.h):
 * the JWKS file through jansson and cjose (RSA, EC), Ed25519 keys straight
 * into OpenSSL (cjose 0.6.2 has no OKP keys), the HS256 secret into a cjose
 * oct key; and the strict base64url decoder the verifier shares. */
#include "auth_jwt.h"
#include "auth_keys.h"

#include <jansson.h>
#include <openssl/crypto.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const auth_alg_names[4] = {"RS256", "ES256", "EdDSA", "HS256"};

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

unsigned char *auth_b64url_decode(const char *in, size_t len, size_t *outlen)
{
    if (len % 4 == 1)
        return NULL;
    unsigned char *out = malloc(len / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int d = b64url_value((unsigned char)in[i]);
        if (d < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

void auth_keyset_free(auth_keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->nkeys; i++) {
        free(ks->keys[i].kid);
        if (ks->keys[i].jwk)
            cjose_jwk_release(ks->keys[i].jwk);
        EVP_PKEY_free(ks->keys[i].ed);
    }
    free(ks->keys);
    if (ks->hs256)
        cjose_jwk_release(ks->hs256);
    free(ks);
}

void auth_file_stat(const char *path, auth_file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (path && stat(path, &st) == 0) {
        id->present = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        id->size = st.st_size;
        id->mtim = st.st_mtim;
    }
}

int auth_file_same(const auth_file_id *a, const auth_file_id *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtim.tv_sec == b->mtim.tv_sec &&
           a->mtim.tv_nsec == b->mtim.tv_nsec;
}

/* Reads a whole file of at most max bytes. Caller frees. */
static unsigned char *read_file(const char *path, size_t max, size_t *len, sm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sm_fail(err, SM_ERR_INVALID, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad || n > max) {
        free(buf);
        sm_fail(err, SM_ERR_INVALID, "%s: %s", path, bad ? "cannot read" : "too large");
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* One JWKS entry into *k. Returns 1 when used, 0 when skipped (a kind we
 * never verify with: encryption keys, oct keys, other curves, no kid),
 * -1 with err filled when a key we would use is malformed. */
static int key_from_jwk(json_t *j, auth_key *k, sm_error *err)
{
    const char *kid = json_string_value(json_object_get(j, "kid"));
    const char *kty = json_string_value(json_object_get(j, "kty"));
    const char *crv = json_string_value(json_object_get(j, "crv"));
    const char *use = json_string_value(json_object_get(j, "use"));
    const char *alg = json_string_value(json_object_get(j, "alg"));
    if (!kid || !*kid || !kty || (use && strcmp(use, "sig") != 0))
        return 0;
    if (strcmp(kty, "RSA") == 0)
        k->alg = AUTH_ALG_RS256;
    else if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0)
        k->alg = AUTH_ALG_ES256;
    else if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0)
        k->alg = AUTH_ALG_EDDSA;
    else
        return 0;
    if (alg && strcmp(alg, auth_alg_names[k->alg]) != 0)
        return 0; /* e.g. an RSA key published for PS256 only */
    if (k->alg == AUTH_ALG_EDDSA) {
        const char *x = json_string_value(json_object_get(j, "x"));
        size_t n = 0;
        unsigned char *raw = x ? auth_b64url_decode(x, strlen(x), &n) : NULL;
        if (raw && n == 32)
            k->ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, n);
        free(raw);
        if (!k->ed) {
            sm_fail(err, SM_ERR_INVALID, "JWKS key %s: bad Ed25519 x", kid);
            return -1;
        }
    } else {
        cjose_err cerr;
        k->jwk = cjose_jwk_import_json((cjose_header_t *)j, &cerr);
        if (!k->jwk) {
            sm_fail(err, SM_ERR_INVALID, "JWKS key %s: %s", kid, cerr.message);
            return -1;
        }
        if (k->alg == AUTH_ALG_RS256 && cjose_jwk_get_keysize(k->jwk, &cerr) < AUTH_MIN_RSA_BITS) {
            cjose_jwk_release(k->jwk);
            k->jwk = NULL;
            sm_fail(err, SM_ERR_INVALID, "JWKS key %s: RSA key under %d bits", kid,
                    AUTH_MIN_RSA_BITS);
            return -1;
        }
    }
    k->kid = strdup(kid);
    return 1;
}

static auth_keyset *keyset_from_jwks(const char *text, size_t len, sm_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *arr = root ? json_object_get(root, "keys") : NULL;
    if (!json_is_array(arr)) {
        json_decref(root);
        sm_fail(err, SM_ERR_INVALID, "JWKS: not a JSON object with a \"keys\" array");
        return NULL;
    }
    auth_keyset *ks = calloc(1, sizeof *ks);
    if (ks)
        ks->keys = calloc(json_array_size(arr) + 1, sizeof *ks->keys);
    if (!ks || !ks->keys) {
        free(ks);
        json_decref(root);
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    size_t i;
    json_t *j;
    json_array_foreach(arr, i, j)
    {
        auth_key *k = &ks->keys[ks->nkeys];
        int r = json_is_object(j) ? key_from_jwk(j, k, err) : 0;
        if (r < 0 || (r > 0 && !k->kid)) {
            ks->nkeys++; /* so keyset_free releases what was made */
            auth_keyset_free(ks);
            json_decref(root);
            if (r > 0)
                sm_fail(err, SM_ERR_INTERNAL, "out of memory");
            return NULL;
        }
        ks->nkeys += (size_t)r;
    }
    json_decref(root);
    return ks;
}

/* Reads both files into a new set (refs 1), recording what they looked like. */
auth_keyset *auth_keyset_load(const char *jwks_file, const char *secret_file, sm_error *err)
{
    auth_keyset *ks = NULL;
    if (jwks_file) {
        size_t len;
        unsigned char *text = read_file(jwks_file, AUTH_MAX_JWKS, &len, err);
        if (!text)
            return NULL;
        ks = keyset_from_jwks((const char *)text, len, err);
        free(text);
        if (!ks)
            return NULL;
    } else if (!(ks = calloc(1, sizeof *ks))) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (secret_file) {
        size_t len;
        unsigned char *s = read_file(secret_file, 4096, &len, err);
        if (!s) {
            auth_keyset_free(ks);
            return NULL;
        }
        if (len > 0 && s[len - 1] == '\n')
            len--;
        if (len > 0 && s[len - 1] == '\r')
            len--;
        cjose_err cerr;
        if (len >= AUTH_MIN_HS256_SECRET)
            ks->hs256 = cjose_jwk_create_oct_spec(s, len, &cerr);
        OPENSSL_cleanse(s, len);
        free(s);
        if (!ks->hs256) {
            auth_keyset_free(ks);
            sm_fail(err, SM_ERR_INVALID, "%s: an HS256 secret needs at least %d bytes",
                    secret_file, AUTH_MIN_HS256_SECRET);
            return NULL;
        }
    }
    if (ks->nkeys == 0 && !ks->hs256) {
        auth_keyset_free(ks);
        sm_fail(err, SM_ERR_INVALID, "%s: no usable signing key (RSA, EC P-256, Ed25519 with kid)",
                jwks_file);
        return NULL;
    }
    return ks;
}

