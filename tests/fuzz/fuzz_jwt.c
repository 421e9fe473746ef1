/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_jwt.c — libFuzzer harness for the JWT verifier (common/auth_jwt.c).
 *
 * The first byte picks what the rest is:
 *   'e' or 'p': "HEADER_JSON\nPAYLOAD_JSON", signed here with the harness's
 *        Ed25519 ('e') or P-256 ('p') key, so the fuzzer reaches the claim
 *        checks behind a valid signature, where it could never forge one;
 *   anything else: a raw token, as from an Authorization header.
 * Keys (RSA 2048, P-256, Ed25519) and an HS256 secret are made once per run
 * in LLVMFuzzerInitialize, so no seed can hold a token they signed.
 *
 * Properties: a raw token is never accepted (it would be a forgery); every
 * refusal is SM_ERR_INVALID with a non-empty description that can sit in a
 * quoted WWW-Authenticate parameter (printable ASCII, no '"' or '\');
 * an accepted identity is within its bounds (sub non-empty, at most
 * AUTH_MAX_SUB bytes, at most AUTH_MAX_ROLES roles); verifying an accepted
 * token again (from the cache) gives the same identity. */
#include "auth_jwt.h"
#include "fuzz_support.h"
#include "jwt_mint.h"

#include <string.h>
#include <unistd.h>

#define NOW ((int64_t)1800000000)

static auth_verifier *verifier;
static EVP_PKEY *ed_key, *ec_key;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/smpost-fuzz-jwt-XXXXXX", jwks[64], secret[64];
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    FUZZ_CHECK(rsa && ec_key && ed_key, "key generation");
    json_t *keys = json_pack("[o,o,o]", jwt_mint_public_jwk(rsa, "rsa-1"),
                             jwt_mint_public_jwk(ec_key, "ec-1"),
                             jwt_mint_public_jwk(ed_key, "ed-1"));
    json_t *doc = json_pack("{s:o}", "keys", keys);
    snprintf(jwks, sizeof jwks, "%s/jwks.json", dir);
    snprintf(secret, sizeof secret, "%s/secret", dir);
    FUZZ_CHECK(json_dump_file(doc, jwks, 0) == 0, "writing the JWKS");
    json_decref(doc);
    EVP_PKEY_free(rsa);
    write_file(secret, "fuzzing-secret-fuzzing-secret-fuzzing-secret\n");

    auth_config cfg;
    auth_config_init(&cfg);
    cfg.jwks_file = jwks;
    cfg.hs256_secret_file = secret;
    cfg.issuer = "https://issuer.test";
    cfg.audience = "smpost";
    cfg.roles_claim = "realm_access.roles";
    sm_error err = {0};
    verifier = auth_verifier_new(&cfg, &err);
    FUZZ_CHECK(verifier != NULL, "auth_verifier_new: %s", err.message);
    unlink(jwks);
    unlink(secret);
    rmdir(dir);
    return 0;
}

static int same_identity(const auth_identity *a, const auth_identity *b)
{
    if (strcmp(a->sub, b->sub) || strcmp(a->name, b->name) || a->nroles != b->nroles ||
        a->exp != b->exp)
        return 0;
    for (int i = 0; i < a->nroles; i++)
        if (strcmp(a->roles[i], b->roles[i]))
            return 0;
    return 1;
}

static void check_refusal(const sm_error *err, sm_status st)
{
    FUZZ_CHECK(st == SM_ERR_INVALID, "refusal with status %d", (int)st);
    FUZZ_CHECK(err->message[0], "refusal without a description");
    for (const char *c = err->message; *c; c++)
        FUZZ_CHECK(*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\',
                   "description not fit for WWW-Authenticate: %s", err->message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > AUTH_MAX_TOKEN + 64)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    int signed_here = data[0] == 'e' || data[0] == 'p';
    char *tok = text;
    if (signed_here) {
        char *nl = strchr(text, '\n');
        if (!nl) {
            free(text);
            return 0;
        }
        *nl = '\0';
        tok = jwt_mint_sign(data[0] == 'e' ? ed_key : ec_key, text, nl + 1);
        if (!tok) {
            free(text);
            return 0;
        }
    }
    auth_identity id, again;
    sm_error err = {0};
    sm_status st = auth_verify(verifier, tok, NOW, &id, &err);
    if (st != SM_OK) {
        check_refusal(&err, st);
    } else {
        FUZZ_CHECK(signed_here, "an unsigned token was accepted: %s", tok);
        size_t n = strlen(id.sub);
        FUZZ_CHECK(n >= 1 && n <= AUTH_MAX_SUB, "sub of %zu bytes accepted", n);
        FUZZ_CHECK(id.nroles >= 0 && id.nroles <= AUTH_MAX_ROLES, "%d roles", id.nroles);
        FUZZ_CHECK(auth_verify(verifier, tok, NOW, &again, &err) == SM_OK,
                   "accepted once, refused from the cache: %s", err.message);
        FUZZ_CHECK(same_identity(&id, &again), "the cache changed the identity");
    }
    if (tok != text)
        free(tok);
    free(text);
    return 0;
}
