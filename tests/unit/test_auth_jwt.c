/* SPDX-License-Identifier: Apache-2.0 */
/* test_auth_jwt.c — the JWT verifier (common/auth_jwt.h) against real
 * signed tokens: RSA 2048, EC P-256 and Ed25519 keys are generated through
 * OpenSSL when the group starts, their public JWKs written to a JWKS file in
 * a temporary directory, and every token is signed for the case at hand
 * (tools/jwt_mint.h). Each refusal is checked by its description, the text
 * a client reads in WWW-Authenticate. */
#include "auth_jwt.h"
#include "jwt_mint.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define ISS "https://id.example.test/realms/smpost"
#define AUD "smpost-api"
#define NOW ((int64_t)1800000000)
#define SECRET "0123456789abcdef0123456789abcdef-hs256-test-secret"

enum { K_RSA, K_EC, K_ED, NKEYS };

static struct {
    char dir[64];
    char jwks[128];
    char secret[128];
    EVP_PKEY *key[NKEYS];
    char kid[NKEYS][16];
} g;

/* ---- fixtures --------------------------------------------------------- */

/* Writes a JWKS of the keys whose bit is set in mask, atomically (rename),
 * so a verifier never reads half a file. */
static void write_jwks(const char *path, unsigned mask)
{
    json_t *keys = json_array();
    for (int i = 0; i < NKEYS; i++)
        if (mask & (1u << i))
            json_array_append_new(keys, jwt_mint_public_jwk(g.key[i], g.kid[i]));
    json_t *jwks = json_pack("{s:o}", "keys", keys);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(json_dump_file(jwks, tmp, 0), 0);
    assert_int_equal(rename(tmp, path), 0);
    json_decref(jwks);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    strcpy(g.dir, "/tmp/smpost-auth-XXXXXX");
    if (!mkdtemp(g.dir))
        return -1;
    snprintf(g.jwks, sizeof g.jwks, "%s/jwks.json", g.dir);
    snprintf(g.secret, sizeof g.secret, "%s/hs256.secret", g.dir);
    g.key[K_RSA] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g.key[K_EC] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    g.key[K_ED] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    strcpy(g.kid[K_RSA], "rsa-1");
    strcpy(g.kid[K_EC], "ec-1");
    strcpy(g.kid[K_ED], "ed-1");
    if (!g.key[K_RSA] || !g.key[K_EC] || !g.key[K_ED])
        return -1;
    write_jwks(g.jwks, 7);
    write_text(g.secret, SECRET "\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NKEYS; i++)
        EVP_PKEY_free(g.key[i]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static auth_config config(void)
{
    auth_config cfg;
    auth_config_init(&cfg);
    cfg.jwks_file = g.jwks;
    cfg.issuer = ISS;
    cfg.audience = AUD;
    return cfg;
}

static auth_verifier *verifier_with(const auth_config *cfg)
{
    sm_error err = {0};
    auth_verifier *v = auth_verifier_new(cfg, &err);
    if (!v)
        fail_msg("auth_verifier_new: %s", err.message);
    return v;
}

static auth_verifier *verifier(void)
{
    auth_config cfg = config();
    return verifier_with(&cfg);
}

/* Claims valid at NOW; a test changes what it is about. Caller decrefs. */
static json_t *claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[s,s], s:I, s:I}", "iss", ISS, "aud", AUD, "sub",
                     "user-42", "preferred_username", "alice", "roles", "moderator", "reader",
                     "iat", (json_int_t)(NOW - 10), "exp", (json_int_t)(NOW + 600));
}

static char *claims_text(void)
{
    json_t *c = claims();
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return text;
}

static const char *alg_of(int k)
{
    return jwt_mint_alg(g.key[k]);
}

/* A token signed with key k, whose header says alg and kid. Steals c. */
static char *token_as(int k, const char *alg, const char *kid, json_t *c)
{
    json_t *h = json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid", kid);
    char *hs = json_dumps(h, JSON_COMPACT), *cs = json_dumps(c, JSON_COMPACT);
    char *t = jwt_mint_sign(g.key[k], hs, cs);
    assert_non_null(t);
    free(hs);
    free(cs);
    json_decref(h);
    json_decref(c);
    return t;
}

static char *token(int k, json_t *c)
{
    return token_as(k, alg_of(k), g.kid[k], c);
}

static char *hs256_token(const void *secret, size_t n, const char *kid, json_t *c)
{
    json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "typ", "JWT", "kid", kid);
    char *hs = json_dumps(h, JSON_COMPACT), *cs = json_dumps(c, JSON_COMPACT);
    char *t = jwt_mint_hs256(secret, n, hs, cs);
    assert_non_null(t);
    free(hs);
    free(cs);
    json_decref(h);
    json_decref(c);
    return t;
}

/* Verifies at now and asserts the outcome: want NULL for accepted, else the
 * refusal's description. Frees tok. */
static void expect_at(auth_verifier *v, char *tok, int64_t now, const char *want,
                      auth_identity *out)
{
    auth_identity id;
    sm_error err = {0};
    sm_status st = auth_verify(v, tok, now, &id, &err);
    if (!want && st != SM_OK)
        fail_msg("refused: %s", err.message);
    if (want) {
        assert_int_equal(st, SM_ERR_INVALID);
        assert_string_equal(err.message, want);
    }
    if (out && st == SM_OK)
        *out = id;
    free(tok);
}

static void expect(auth_verifier *v, char *tok, const char *want)
{
    expect_at(v, tok, NOW, want, NULL);
}

/* ---- accepted --------------------------------------------------------- */

static void valid_token_gives_the_identity(int k)
{
    auth_verifier *v = verifier();
    auth_identity id;
    expect_at(v, token(k, claims()), NOW, NULL, &id);
    assert_string_equal(id.sub, "user-42");
    assert_string_equal(id.name, "alice");
    assert_int_equal(id.nroles, 2);
    assert_true(auth_identity_has_role(&id, "moderator"));
    assert_false(auth_identity_has_role(&id, "admin"));
    assert_int_equal(id.exp, NOW + 600);
    auth_verifier_free(v);
}

static void test_valid_rs256_token_is_accepted(void **state)
{
    (void)state;
    valid_token_gives_the_identity(K_RSA);
}

static void test_valid_es256_token_is_accepted(void **state)
{
    (void)state;
    valid_token_gives_the_identity(K_EC);
}

static void test_valid_eddsa_token_is_accepted(void **state)
{
    (void)state;
    valid_token_gives_the_identity(K_ED);
}

static void test_audience_as_array_is_accepted_when_it_contains_ours(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    json_t *c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other-api", AUD));
    expect(v, token(K_ED, c), NULL);
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other-api", "third"));
    expect(v, token(K_ED, c), "wrong audience");
    auth_verifier_free(v);
}

/* ---- time ------------------------------------------------------------- */

static void test_expired_token_is_refused_past_the_leeway(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    json_t *c = claims();
    json_object_set_new(c, "exp", json_integer(NOW - 61));
    expect(v, token(K_EC, c), "token expired");
    c = claims();
    json_object_set_new(c, "exp", json_integer(NOW - 30)); /* within the 60 s leeway */
    expect(v, token(K_RSA, c), NULL);
    c = claims();
    json_object_del(c, "exp");
    expect(v, token(K_RSA, c), "missing expiry");
    auth_verifier_free(v);
}

static void test_not_yet_valid_token_is_refused_past_the_leeway(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    json_t *c = claims();
    json_object_set_new(c, "nbf", json_integer(NOW + 300));
    expect(v, token(K_ED, c), "token not yet valid");
    c = claims();
    json_object_set_new(c, "nbf", json_integer(NOW + 30));
    expect(v, token(K_ED, c), NULL);
    auth_verifier_free(v);
}

static void test_leeway_is_configurable(void **state)
{
    (void)state;
    auth_config cfg = config();
    cfg.leeway_s = 0;
    auth_verifier *v = verifier_with(&cfg);
    json_t *c = claims();
    json_object_set_new(c, "exp", json_integer(NOW));
    expect(v, token(K_ED, c), "token expired");
    c = claims();
    json_object_set_new(c, "exp", json_integer(NOW + 1));
    expect(v, token(K_ED, c), NULL);
    auth_verifier_free(v);
}

/* ---- claims ----------------------------------------------------------- */

static void test_wrong_issuer_is_refused(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    json_t *c = claims();
    json_object_set_new(c, "iss", json_string("https://evil.example.test"));
    expect(v, token(K_RSA, c), "wrong issuer");
    c = claims();
    json_object_del(c, "iss");
    expect(v, token(K_RSA, c), "wrong issuer");
    auth_verifier_free(v);
}

static void test_wrong_audience_is_refused(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    json_t *c = claims();
    json_object_set_new(c, "aud", json_string("other-api"));
    expect(v, token(K_EC, c), "wrong audience");
    c = claims();
    json_object_del(c, "aud");
    expect(v, token(K_EC, c), "wrong audience");
    auth_verifier_free(v);
}

static void test_subject_is_required(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    json_t *c = claims();
    json_object_del(c, "sub");
    expect(v, token(K_ED, c), "missing subject");
    c = claims();
    json_object_set_new(c, "sub", json_string(""));
    expect(v, token(K_ED, c), "missing subject");
    c = claims();
    json_object_set_new(c, "sub", json_integer(42));
    expect(v, token(K_ED, c), "missing subject");
    auth_verifier_free(v);
}

static void test_name_and_roles_claims_are_configurable(void **state)
{
    (void)state;
    auth_config cfg = config();
    cfg.name_claim = "name";
    cfg.roles_claim = "realm_access.roles";
    auth_verifier *v = verifier_with(&cfg);
    json_t *c = claims();
    json_object_set_new(c, "name", json_string("Alice Liddell"));
    json_object_set_new(c, "realm_access", json_pack("{s:[s]}", "roles", "admin"));
    auth_identity id;
    expect_at(v, token(K_ED, c), NOW, NULL, &id);
    assert_string_equal(id.name, "Alice Liddell");
    assert_int_equal(id.nroles, 1);
    assert_true(auth_identity_has_role(&id, "admin"));
    assert_false(auth_identity_has_role(&id, "moderator")); /* the "roles" claim is not ours */

    /* absent: no name, no roles */
    c = claims();
    expect_at(v, token(K_ED, c), NOW, NULL, &id);
    assert_string_equal(id.name, "");
    assert_int_equal(id.nroles, 0);

    /* malformed or over the bound: refused, not truncated */
    c = claims();
    json_object_set_new(c, "realm_access", json_pack("{s:s}", "roles", "admin"));
    expect(v, token(K_ED, c), "invalid roles claim");
    c = claims();
    json_t *many = json_array();
    for (int i = 0; i <= AUTH_MAX_ROLES; i++)
        json_array_append_new(many, json_string("r"));
    json_object_set_new(c, "realm_access", json_pack("{s:o}", "roles", many));
    expect(v, token(K_ED, c), "invalid roles claim");
    c = claims();
    json_object_set_new(c, "name", json_integer(7));
    expect(v, token(K_ED, c), "invalid name claim");
    auth_verifier_free(v);
}

/* ---- algorithms and keys --------------------------------------------- */

static char *b64(const char *s)
{
    return jwt_b64url(s, strlen(s));
}

/* header.payload.signature from JSON text and a raw signature segment */
static char *assemble(const char *header_json, json_t *c, const char *sig)
{
    char *cs = json_dumps(c, JSON_COMPACT);
    char *h = b64(header_json), *p = b64(cs);
    char *t = malloc(strlen(h) + strlen(p) + strlen(sig) + 3);
    sprintf(t, "%s.%s.%s", h, p, sig);
    free(cs);
    free(h);
    free(p);
    json_decref(c);
    return t;
}

static void test_alg_none_is_refused(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    expect(v, assemble("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", claims(), ""),
           "algorithm none refused");
    expect(v, assemble("{\"alg\":\"NONE\",\"kid\":\"rsa-1\"}", claims(), "AAAA"),
           "algorithm none refused");
    expect(v, assemble("{\"kid\":\"rsa-1\"}", claims(), "AAAA"), "missing algorithm");
    expect(v, token_as(K_RSA, "RS512", g.kid[K_RSA], claims()), "algorithm not allowed");
    expect(v, token_as(K_RSA, "PS256", g.kid[K_RSA], claims()), "algorithm not allowed");
    auth_verifier_free(v);
}

static void test_hs256_signed_with_the_rsa_public_key_is_refused(void **state)
{
    (void)state;
    size_t n;
    unsigned char *pem = jwt_mint_public_pem(g.key[K_RSA], &n);
    assert_non_null(pem);
    /* no secret configured: HS256 is not in the allowlist at all */
    auth_verifier *v = verifier();
    expect(v, hs256_token(pem, n, g.kid[K_RSA], claims()), "algorithm not allowed");
    auth_verifier_free(v);
    /* a secret configured: HS256 is checked with that secret only, never
     * with the JWKS key the kid names */
    auth_config cfg = config();
    cfg.hs256_secret_file = g.secret;
    v = verifier_with(&cfg);
    expect(v, hs256_token(pem, n, g.kid[K_RSA], claims()), "signature invalid");
    auth_verifier_free(v);
    free(pem);
}

static void test_hs256_is_accepted_only_with_a_secret_file(void **state)
{
    (void)state;
    const char *secret = SECRET; /* the file's trailing newline is not part of it */
    auth_config cfg = config();
    cfg.hs256_secret_file = g.secret;
    auth_verifier *v = verifier_with(&cfg);
    auth_identity id;
    expect_at(v, hs256_token(secret, strlen(secret), "any", claims()), NOW, NULL, &id);
    assert_string_equal(id.sub, "user-42");
    expect(v, hs256_token("another secret of at least 32 bytes!", 36, "any", claims()),
           "signature invalid");
    auth_verifier_free(v);

    v = verifier();
    expect(v, hs256_token(secret, strlen(secret), "any", claims()), "algorithm not allowed");
    auth_verifier_free(v);

    /* a short secret is refused at start */
    char shortp[160];
    snprintf(shortp, sizeof shortp, "%s/short.secret", g.dir);
    write_text(shortp, "too short\n");
    cfg.hs256_secret_file = shortp;
    sm_error err = {0};
    assert_null(auth_verifier_new(&cfg, &err));
    assert_non_null(strstr(err.message, "at least 32 bytes"));
}

static void test_unknown_kid_is_refused(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    expect(v, token_as(K_RSA, "RS256", "rsa-2", claims()), "unknown key id");
    json_t *h = json_pack("{s:s}", "alg", "EdDSA");
    char *hs = json_dumps(h, JSON_COMPACT);
    char *cs = claims_text();
    expect(v, jwt_mint_sign(g.key[K_ED], hs, cs), "missing key id");
    free(hs);
    free(cs);
    json_decref(h);
    auth_verifier_free(v);
}

static void test_kid_of_another_key_type_is_refused(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    /* an ES256 token naming the K_RSA key, an EdDSA one naming the K_EC key */
    expect(v, token_as(K_EC, "ES256", g.kid[K_RSA], claims()), "key does not fit algorithm");
    expect(v, token_as(K_ED, "EdDSA", g.kid[K_EC], claims()), "key does not fit algorithm");
    /* each with its own kid is accepted */
    expect(v, token_as(K_EC, "ES256", g.kid[K_EC], claims()), NULL);
    expect(v, token_as(K_ED, "EdDSA", g.kid[K_ED], claims()), NULL);
    auth_verifier_free(v);
}

/* ---- tampering and shape ---------------------------------------------- */

static void test_payload_changed_after_signing_is_refused(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    for (int k = 0; k < NKEYS; k++) {
        char *good = token(k, claims());
        json_t *c = claims();
        json_object_set_new(c, "roles", json_pack("[s]", "admin"));
        char *other = token(k, c);
        /* good's header and signature around other's payload */
        char *p1 = strchr(good, '.'), *s1 = strrchr(good, '.');
        char *p2 = strchr(other, '.'), *s2 = strrchr(other, '.');
        char *forged = malloc(strlen(good) + strlen(other));
        sprintf(forged, "%.*s%.*s%s", (int)(p1 - good), good, (int)(s2 - p2), p2, s1);
        expect(v, forged, "signature invalid");
        free(good);
        free(other);
    }
    auth_verifier_free(v);
}

static void test_bad_base64_is_refused(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    char *t = token(K_ED, claims());
    t[3] = '*';
    expect(v, t, "malformed base64");
    t = token(K_ED, claims());
    strchr(t, '.')[1] = '+';
    expect(v, t, "malformed base64");
    t = token(K_RSA, claims());
    t[strlen(t) - 1] = '='; /* padding is not base64url */
    expect(v, t, "malformed base64");
    expect(v, strdup("abc.def"), "malformed token");
    expect(v, strdup("a.b.c.d"), "malformed token");
    expect(v, strdup(""), "malformed token");
    expect(v, strdup(".eyJ9.sig"), "malformed token");
    expect(v, assemble("[1,2]", claims(), "AAAA"), "header is not a JSON object");
    expect(v, assemble("{\"alg\":\"EdDSA\",\"kid\":\"ed-1\",\"crit\":[\"exp\"]}", claims(), "AAAA"),
           "unsupported critical header");
    auth_verifier_free(v);
}

static void test_header_over_8_kib_is_refused_before_parsing(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    char *pad = malloc(9000);
    memset(pad, 'x', 8999);
    pad[8999] = '\0';
    json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "kid", "ed-1", "pad", pad);
    char *hs = json_dumps(h, JSON_COMPACT);
    char *cs = claims_text();
    expect(v, jwt_mint_sign(g.key[K_ED], hs, cs), "header too large");
    free(hs);
    free(cs);
    json_decref(h);

    /* a whole token over 16 KiB, whatever its parts */
    json_t *c = claims();
    char *big = malloc(AUTH_MAX_TOKEN + 1);
    memset(big, 'y', AUTH_MAX_TOKEN);
    big[AUTH_MAX_TOKEN] = '\0';
    json_object_set_new(c, "pad", json_string(big));
    expect(v, token(K_ED, c), "token too large");
    free(big);
    free(pad);
    auth_verifier_free(v);
}

/* ---- rotation and the cache ------------------------------------------- */

static void test_replaced_jwks_is_picked_up_by_the_change_check(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof path, "%s/rotating.json", g.dir);
    write_jwks(path, 1u << K_RSA);
    auth_config cfg = config();
    cfg.jwks_file = path;
    auth_verifier *v = verifier_with(&cfg);
    sm_error err = {0};
    char *old_tok = token(K_RSA, claims());
    expect(v, strdup(old_tok), NULL); /* verified and cached */
    expect(v, token(K_ED, claims()), "unknown key id");
    assert_int_equal(auth_verifier_check_reload(v, &err), SM_OK); /* nothing changed */

    write_jwks(path, 1u << K_ED); /* the K_RSA key rotated out, Ed25519 in */
    assert_int_equal(auth_verifier_check_reload(v, &err), SM_OK);
    auth_stats st;
    auth_verifier_stats(v, &st);
    assert_int_equal(st.reloads, 1);
    expect(v, token(K_ED, claims()), NULL);
    expect(v, old_tok, "unknown key id"); /* the cache was dropped with the old keys */

    /* a broken file: the reload fails once, the keys in use stay */
    write_text(path, "{\"keys\": [");
    assert_int_equal(auth_verifier_check_reload(v, &err), SM_ERR_INVALID);
    assert_int_equal(auth_verifier_check_reload(v, &err), SM_OK); /* not retried unchanged */
    expect(v, token(K_ED, claims()), NULL);
    write_text(path, "{\"keys\": []}");
    assert_int_equal(auth_verifier_reload(v, &err), SM_ERR_INVALID);
    assert_non_null(strstr(err.message, "no usable signing key"));
    expect(v, token(K_ED, claims()), NULL);
    auth_verifier_free(v);
}

static void test_cached_token_returns_the_same_identity_until_it_expires(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    char *t = token(K_RSA, claims());
    auth_identity first, again;
    expect_at(v, strdup(t), NOW, NULL, &first);
    expect_at(v, strdup(t), NOW + 1, NULL, &again);
    auth_stats st;
    auth_verifier_stats(v, &st);
    assert_int_equal(st.signature_checks, 1);
    assert_int_equal(st.cache_hits, 1);
    assert_string_equal(first.sub, again.sub);
    assert_string_equal(first.name, again.name);
    assert_int_equal(first.nroles, again.nroles);
    for (int i = 0; i < first.nroles; i++)
        assert_string_equal(first.roles[i], again.roles[i]);
    assert_int_equal(first.exp, again.exp);
    /* exp is checked against now on a hit too */
    expect_at(v, strdup(t), NOW + 600 + 60, "token expired", NULL);
    auth_verifier_stats(v, &st);
    assert_int_equal(st.signature_checks, 1);
    /* a refused token is not cached: it costs a check every time */
    json_t *c = claims();
    json_object_set_new(c, "iss", json_string("nope"));
    char *bad = token(K_RSA, c);
    expect(v, strdup(bad), "wrong issuer");
    expect(v, bad, "wrong issuer");
    auth_verifier_stats(v, &st);
    assert_int_equal(st.signature_checks, 3);
    free(t);
    auth_verifier_free(v);
}

static void test_full_cache_evicts_the_entry_expiring_first(void **state)
{
    (void)state;
    auth_config cfg = config();
    cfg.cache_slots = 4; /* one set */
    auth_verifier *v = verifier_with(&cfg);
    char *t[5];
    for (int i = 0; i < 5; i++) {
        json_t *c = claims();
        json_object_set_new(c, "exp", json_integer(NOW + 100 * (5 - i))); /* t[4] expires first */
        t[i] = token(K_ED, c);
        expect(v, strdup(t[i]), NULL);
    }
    auth_stats st;
    auth_verifier_stats(v, &st);
    assert_int_equal(st.signature_checks, 5);
    /* t[4] came last and took the slot of the entry expiring first, t[3] */
    for (int i = 0; i < 5; i++)
        if (i != 3)
            expect(v, strdup(t[i]), NULL);
    auth_verifier_stats(v, &st);
    assert_int_equal(st.signature_checks, 5);
    expect(v, strdup(t[3]), NULL);
    auth_verifier_stats(v, &st);
    assert_int_equal(st.signature_checks, 6);
    for (int i = 0; i < 5; i++)
        free(t[i]);
    auth_verifier_free(v);
}

static void test_without_a_cache_every_token_is_checked(void **state)
{
    (void)state;
    auth_config cfg = config();
    cfg.cache_slots = -1;
    auth_verifier *v = verifier_with(&cfg);
    char *t = token(K_ED, claims());
    expect(v, strdup(t), NULL);
    expect(v, t, NULL);
    auth_stats st;
    auth_verifier_stats(v, &st);
    assert_int_equal(st.signature_checks, 2);
    assert_int_equal(st.cache_hits, 0);
    auth_verifier_free(v);
}

/* ---- threads ---------------------------------------------------------- */

typedef struct {
    auth_verifier *v;
    char *tok[NKEYS];
    int refused;
} race_arg;

static void *race_verify(void *p)
{
    race_arg *a = p;
    for (int i = 0; i < 300; i++) {
        auth_identity id;
        sm_error err;
        if (auth_verify(a->v, a->tok[i % NKEYS], NOW, &id, &err) != SM_OK)
            __atomic_add_fetch(&a->refused, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_verification_races_reloads_safely(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    race_arg a = {.v = v};
    for (int k = 0; k < NKEYS; k++)
        a.tok[k] = token(k, claims());
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, race_verify, &a);
    for (int i = 0; i < 20; i++) {
        sm_error err;
        assert_int_equal(auth_verifier_reload(v, &err), SM_OK);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(a.refused, 0);
    for (int k = 0; k < NKEYS; k++)
        free(a.tok[k]);
    auth_verifier_free(v);
}

static void test_jwks_oct_keys_and_small_rsa_keys_are_never_used(void **state)
{
    (void)state;
    const char *secret = SECRET;
    char path[160];
    snprintf(path, sizeof path, "%s/oct.json", g.dir);
    char *k = jwt_b64url(secret, strlen(secret));
    json_t *jwks = json_pack("{s:[{s:s,s:s,s:s},o]}", "keys", "kty", "oct", "kid", "hmac", "k", k,
                             jwt_mint_public_jwk(g.key[K_ED], g.kid[K_ED]));
    assert_int_equal(json_dump_file(jwks, path, 0), 0);
    json_decref(jwks);
    free(k);
    /* a symmetric key in the JWKS is skipped: HS256 stays refused */
    auth_config cfg = config();
    cfg.jwks_file = path;
    auth_verifier *v = verifier_with(&cfg);
    expect(v, hs256_token(secret, strlen(secret), "hmac", claims()), "algorithm not allowed");
    expect(v, token(K_ED, claims()), NULL);
    auth_verifier_free(v);

    /* an RSA key under 2048 bits fails the load */
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    jwks = json_pack("{s:[o]}", "keys", jwt_mint_public_jwk(weak, "weak"));
    assert_int_equal(json_dump_file(jwks, path, 0), 0);
    json_decref(jwks);
    EVP_PKEY_free(weak);
    sm_error err = {0};
    assert_null(auth_verifier_new(&cfg, &err));
    assert_non_null(strstr(err.message, "under 2048 bits"));
}

static void test_bad_settings_are_refused_at_start(void **state)
{
    (void)state;
    sm_error err = {0};
    auth_config cfg = config();
    cfg.issuer = NULL;
    assert_null(auth_verifier_new(&cfg, &err));
    cfg = config();
    cfg.jwks_file = "/nonexistent/jwks.json";
    assert_null(auth_verifier_new(&cfg, &err));
    assert_non_null(strstr(err.message, "cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_rs256_token_is_accepted),
        cmocka_unit_test(test_valid_es256_token_is_accepted),
        cmocka_unit_test(test_valid_eddsa_token_is_accepted),
        cmocka_unit_test(test_audience_as_array_is_accepted_when_it_contains_ours),
        cmocka_unit_test(test_expired_token_is_refused_past_the_leeway),
        cmocka_unit_test(test_not_yet_valid_token_is_refused_past_the_leeway),
        cmocka_unit_test(test_leeway_is_configurable),
        cmocka_unit_test(test_wrong_issuer_is_refused),
        cmocka_unit_test(test_wrong_audience_is_refused),
        cmocka_unit_test(test_subject_is_required),
        cmocka_unit_test(test_name_and_roles_claims_are_configurable),
        cmocka_unit_test(test_alg_none_is_refused),
        cmocka_unit_test(test_hs256_signed_with_the_rsa_public_key_is_refused),
        cmocka_unit_test(test_hs256_is_accepted_only_with_a_secret_file),
        cmocka_unit_test(test_unknown_kid_is_refused),
        cmocka_unit_test(test_kid_of_another_key_type_is_refused),
        cmocka_unit_test(test_payload_changed_after_signing_is_refused),
        cmocka_unit_test(test_bad_base64_is_refused),
        cmocka_unit_test(test_header_over_8_kib_is_refused_before_parsing),
        cmocka_unit_test(test_replaced_jwks_is_picked_up_by_the_change_check),
        cmocka_unit_test(test_cached_token_returns_the_same_identity_until_it_expires),
        cmocka_unit_test(test_full_cache_evicts_the_entry_expiring_first),
        cmocka_unit_test(test_without_a_cache_every_token_is_checked),
        cmocka_unit_test(test_verification_races_reloads_safely),
        cmocka_unit_test(test_jwks_oct_keys_and_small_rsa_keys_are_never_used),
        cmocka_unit_test(test_bad_settings_are_refused_at_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
