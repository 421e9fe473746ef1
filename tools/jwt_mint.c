/* SPDX-License-Identifier: Apache-2.0 */
/* jwt_mint.c — signed tokens and public JWKs from OpenSSL keys (see
 * jwt_mint.h). JWS signatures are not what OpenSSL emits for every kind:
 * ES256 wants r||s as two 32-byte big-endian numbers (RFC 7518 3.4) where
 * OpenSSL writes a DER ECDSA-Sig-Value, so that one is converted. */
#include "jwt_mint.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *jwt_b64url(const void *data, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = malloc(n / 3 * 4 + 5);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

const char *jwt_mint_alg(EVP_PKEY *key)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        return "RS256";
    case EVP_PKEY_ED25519:
        return "EdDSA";
    case EVP_PKEY_EC: {
        char group[64];
        size_t n = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &n) == 1 &&
            (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
            return "ES256";
        return NULL;
    }
    default:
        return NULL;
    }
}

/* A big number parameter of key, left-padded to pad bytes (0: its own
 * length), base64url. */
static char *bn_param_b64(EVP_PKEY *key, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
        return NULL;
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)n);
    char *out = NULL;
    if (buf && BN_bn2binpad(bn, buf, n) == n)
        out = jwt_b64url(buf, (size_t)n);
    free(buf);
    BN_free(bn);
    return out;
}

static int set_b64(json_t *o, const char *name, char *b64)
{
    if (!b64)
        return -1;
    json_object_set_new(o, name, json_string(b64));
    free(b64);
    return 0;
}

/* The members RFC 7638 hashes (the required public ones), nothing else. */
static json_t *required_members(EVP_PKEY *key)
{
    const char *alg = jwt_mint_alg(key);
    if (!alg)
        return NULL;
    json_t *o = json_object();
    int rc;
    if (strcmp(alg, "RS256") == 0) {
        json_object_set_new(o, "kty", json_string("RSA"));
        rc = set_b64(o, "n", bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0));
        rc |= set_b64(o, "e", bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0));
    } else if (strcmp(alg, "ES256") == 0) {
        json_object_set_new(o, "kty", json_string("EC"));
        json_object_set_new(o, "crv", json_string("P-256"));
        rc = set_b64(o, "x", bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, 32));
        rc |= set_b64(o, "y", bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    } else {
        unsigned char raw[32];
        size_t n = sizeof raw;
        json_object_set_new(o, "kty", json_string("OKP"));
        json_object_set_new(o, "crv", json_string("Ed25519"));
        rc = EVP_PKEY_get_raw_public_key(key, raw, &n) == 1 && n == 32
                 ? set_b64(o, "x", jwt_b64url(raw, n))
                 : -1;
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *jwt_mint_public_jwk(EVP_PKEY *key, const char *kid)
{
    json_t *o = required_members(key);
    if (!o)
        return NULL;
    json_object_set_new(o, "kid", json_string(kid));
    json_object_set_new(o, "use", json_string("sig"));
    json_object_set_new(o, "alg", json_string(jwt_mint_alg(key)));
    return o;
}

char *jwt_mint_thumbprint(EVP_PKEY *key)
{
    json_t *o = required_members(key);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!text)
        return NULL;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), d);
    free(text);
    return jwt_b64url(d, sizeof d);
}

/* "b64(h).b64(p)" with room for a signature after it. */
static char *signing_input(const char *header_json, const char *payload_json)
{
    char *h = jwt_b64url(header_json, strlen(header_json));
    char *p = jwt_b64url(payload_json, strlen(payload_json));
    char *out = NULL;
    if (h && p && (out = malloc(strlen(h) + strlen(p) + 2)))
        sprintf(out, "%s.%s", h, p);
    free(h);
    free(p);
    return out;
}

static char *append_sig(char *input, const unsigned char *sig, size_t n)
{
    char *s = input ? jwt_b64url(sig, n) : NULL;
    char *out = s ? malloc(strlen(input) + strlen(s) + 2) : NULL;
    if (out)
        sprintf(out, "%s.%s", input, s);
    free(s);
    free(input);
    return out;
}

/* DER ECDSA-Sig-Value into 64 bytes of r||s. */
static int der_to_raw(const unsigned char *der, size_t n, unsigned char raw[64])
{
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &der, (long)n);
    if (!sig)
        return -1;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

char *jwt_mint_sign(EVP_PKEY *key, const char *header_json, const char *payload_json)
{
    const char *alg = jwt_mint_alg(key);
    char *input = alg ? signing_input(header_json, payload_json) : NULL;
    if (!input)
        return NULL;
    int ed = strcmp(alg, "EdDSA") == 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024], raw[64];
    size_t n = sizeof sig;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, ed ? NULL : EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &n, (const unsigned char *)input, strlen(input)) == 1;
    EVP_MD_CTX_free(ctx);
    if (ok && strcmp(alg, "ES256") == 0) {
        ok = der_to_raw(sig, n, raw) == 0;
        memcpy(sig, raw, sizeof raw);
        n = sizeof raw;
    }
    if (!ok) {
        free(input);
        return NULL;
    }
    return append_sig(input, sig, n);
}

char *jwt_mint_hs256(const void *secret, size_t secret_len, const char *header_json,
                     const char *payload_json)
{
    char *input = signing_input(header_json, payload_json);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!input ||
        !HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, strlen(input),
              mac, &n)) {
        free(input);
        return NULL;
    }
    return append_sig(input, mac, n);
}

unsigned char *jwt_mint_public_pem(EVP_PKEY *key, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    unsigned char *out = NULL;
    if (b && PEM_write_bio_PUBKEY(b, key) == 1) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        if (n > 0 && (out = malloc((size_t)n))) {
            memcpy(out, data, (size_t)n);
            *len = (size_t)n;
        }
    }
    BIO_free(b);
    return out;
}
