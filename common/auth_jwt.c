/* SPDX-License-Identifier: Apache-2.0 */
/* auth_jwt.c — the JWT verifier: reload, the checks, the cache. Loading a
 * key set (the JWKS and the HS256 secret) is auth_keys.c's.
 *
 * The contract is in auth_jwt.h. How it is built:
 *
 * - The key set (JWKS keys plus the HS256 secret) is one immutable object
 *   with a reference count. A verification takes a reference under v->mu,
 *   verifies without any lock, and drops it; a reload builds a new set and
 *   swaps the pointer under v->mu. So a reload never waits for a signature
 *   check and a check never sees half a set. cjose's own refcounts are not
 *   atomic, so we never retain cjose keys from worker threads: a key
 *   lives exactly as long as its set.
 * - Every set has a generation number. A cache entry records the generation
 *   it was verified under and counts only while that generation is current:
 *   that is how a reload "drops" the cache without touching it.
 * - Everything the token says is parsed here, before cjose sees it: the
 *   alg is decided from our parse of the header, and the key is chosen by
 *   (kid, alg) from the set, so cjose is only ever asked "does this
 *   signature verify under this key", never which key or alg to use.
 *   EdDSA does not reach cjose at all (0.6.2 has no OKP keys). */
#include "auth_jwt.h"
#include "auth_keys.h"

#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cache_slot {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    uint64_t gen; /* 0: empty (generations start at 1) */
    double exp, nbf;
    auth_identity id;
} cache_slot;

#define CACHE_STRIPES 64
#define CACHE_WAYS 4

struct auth_verifier {
    char *jwks_file, *secret_file, *issuer, *audience, *name_claim, *roles_claim;
    double leeway;

    pthread_mutex_t mu; /* guards ks and every auth_keyset's refs */
    auth_keyset *ks;

    pthread_mutex_t reload_mu; /* one reload at a time; guards the file_ids, next_gen */
    auth_file_id seen_jwks, seen_secret;
    uint64_t next_gen;

    cache_slot *slots;
    size_t nslots;
    pthread_mutex_t stripes[CACHE_STRIPES];

    auth_stats stats; /* relaxed atomics: counters, no lock on the hot path */
};

/* ---- small helpers ---------------------------------------------------- */

void auth_config_init(auth_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->leeway_s = -1;
}

int auth_identity_has_role(const auth_identity *id, const char *role)
{
    for (int i = 0; i < id->nroles; i++)
        if (strcmp(id->roles[i], role) == 0)
            return 1;
    return 0;
}

static void count(uint64_t *field)
{
    __atomic_add_fetch(field, 1, __ATOMIC_RELAXED);
}

static int b64url_decode_ok(const char *in, size_t len)
{
    size_t n;
    unsigned char *out = auth_b64url_decode(in, len, &n);
    free(out);
    return out != NULL;
}

/* A claim by name: the exact key first (namespaced claims such as
 * "https://example.com/roles" contain dots), then as a dotted path into
 * nested objects ("realm_access.roles"). Borrowed reference or NULL. */
static json_t *claim_at(json_t *obj, const char *name)
{
    json_t *j = json_object_get(obj, name);
    if (j || !strchr(name, '.'))
        return j;
    const char *p = name;
    j = obj;
    while (j && json_is_object(j)) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        j = json_object_getn(j, p, n);
        if (!dot)
            return j;
        p = dot + 1;
    }
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- key sets --------------------------------------------------------- */

/* A new key set from the files (refs 1, the next generation), recording
 * what the files looked like. Called with reload_mu held (or alone, from
 * auth_verifier_new). */
static auth_keyset *keyset_load(auth_verifier *v, sm_error *err)
{
    auth_file_stat(v->jwks_file, &v->seen_jwks);
    auth_file_stat(v->secret_file, &v->seen_secret);
    auth_keyset *ks = auth_keyset_load(v->jwks_file, v->secret_file, err);
    if (ks) {
        ks->refs = 1;
        ks->gen = ++v->next_gen;
    }
    return ks;
}

static auth_keyset *keyset_acquire(auth_verifier *v)
{
    pthread_mutex_lock(&v->mu);
    auth_keyset *ks = v->ks;
    ks->refs++;
    pthread_mutex_unlock(&v->mu);
    return ks;
}

static void keyset_release(auth_verifier *v, auth_keyset *ks)
{
    pthread_mutex_lock(&v->mu);
    int last = --ks->refs == 0;
    pthread_mutex_unlock(&v->mu);
    if (last)
        auth_keyset_free(ks);
}

/* ---- the verifier ----------------------------------------------------- */

auth_verifier *auth_verifier_new(const auth_config *cfg, sm_error *err)
{
    if (!cfg->issuer || !*cfg->issuer || !cfg->audience || !*cfg->audience) {
        sm_fail(err, SM_ERR_INVALID, "JWT verification needs an issuer and an audience");
        return NULL;
    }
    if (!cfg->jwks_file && !cfg->hs256_secret_file) {
        sm_fail(err, SM_ERR_INVALID, "JWT verification needs a JWKS file");
        return NULL;
    }
    auth_verifier *v = calloc(1, sizeof *v);
    if (!v) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    v->jwks_file = dup_or_null(cfg->jwks_file);
    v->secret_file = dup_or_null(cfg->hs256_secret_file);
    v->issuer = strdup(cfg->issuer);
    v->audience = strdup(cfg->audience);
    v->name_claim = strdup(cfg->name_claim ? cfg->name_claim : AUTH_DEFAULT_NAME_CLAIM);
    v->roles_claim = strdup(cfg->roles_claim ? cfg->roles_claim : AUTH_DEFAULT_ROLES_CLAIM);
    v->leeway = cfg->leeway_s < 0 ? AUTH_DEFAULT_LEEWAY_S : cfg->leeway_s;
    v->nslots = cfg->cache_slots == 0 ? AUTH_DEFAULT_CACHE_SLOTS
                : cfg->cache_slots < 0 ? 0 : (size_t)cfg->cache_slots;
    v->nslots = (v->nslots + CACHE_WAYS - 1) / CACHE_WAYS * CACHE_WAYS; /* whole sets */
    pthread_mutex_init(&v->mu, NULL);
    pthread_mutex_init(&v->reload_mu, NULL);
    for (int i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_init(&v->stripes[i], NULL);
    if (v->nslots)
        v->slots = calloc(v->nslots, sizeof *v->slots);
    if ((cfg->jwks_file && !v->jwks_file) || (cfg->hs256_secret_file && !v->secret_file) ||
        !v->issuer || !v->audience || !v->name_claim || !v->roles_claim ||
        (v->nslots && !v->slots)) {
        auth_verifier_free(v);
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    v->ks = keyset_load(v, err);
    if (!v->ks) {
        auth_verifier_free(v);
        return NULL;
    }
    return v;
}

void auth_verifier_free(auth_verifier *v)
{
    if (!v)
        return;
    if (v->ks)
        keyset_release(v, v->ks);
    pthread_mutex_destroy(&v->mu);
    pthread_mutex_destroy(&v->reload_mu);
    for (int i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_destroy(&v->stripes[i]);
    free(v->slots);
    free(v->jwks_file);
    free(v->secret_file);
    free(v->issuer);
    free(v->audience);
    free(v->name_claim);
    free(v->roles_claim);
    free(v);
}

static sm_status reload_locked(auth_verifier *v, sm_error *err)
{
    auth_keyset *fresh = keyset_load(v, err);
    if (!fresh)
        return err ? err->status : SM_ERR_INVALID;
    pthread_mutex_lock(&v->mu);
    auth_keyset *old = v->ks;
    v->ks = fresh;
    pthread_mutex_unlock(&v->mu);
    keyset_release(v, old);
    count(&v->stats.reloads);
    return SM_OK;
}

sm_status auth_verifier_reload(auth_verifier *v, sm_error *err)
{
    pthread_mutex_lock(&v->reload_mu);
    sm_status st = reload_locked(v, err);
    pthread_mutex_unlock(&v->reload_mu);
    return st;
}

sm_status auth_verifier_check_reload(auth_verifier *v, sm_error *err)
{
    auth_file_id jwks, secret;
    auth_file_stat(v->jwks_file, &jwks);
    auth_file_stat(v->secret_file, &secret);
    sm_status st = SM_OK;
    pthread_mutex_lock(&v->reload_mu);
    if (!auth_file_same(&jwks, &v->seen_jwks) || !auth_file_same(&secret, &v->seen_secret))
        st = reload_locked(v, err);
    pthread_mutex_unlock(&v->reload_mu);
    return st;
}

void auth_verifier_stats(auth_verifier *v, auth_stats *out)
{
    out->cache_hits = __atomic_load_n(&v->stats.cache_hits, __ATOMIC_RELAXED);
    out->signature_checks = __atomic_load_n(&v->stats.signature_checks, __ATOMIC_RELAXED);
    out->reloads = __atomic_load_n(&v->stats.reloads, __ATOMIC_RELAXED);
}

/* ---- the cache -------------------------------------------------------- */

/* 4-way set associative: a token's digest picks a set of CACHE_WAYS slots,
 * guarded by one of the stripes. A new entry takes a slot of its own token,
 * else an empty or stale one (older generation, or past its exp), else the
 * one that expires first: those are worth least. */

static cache_slot *set_of(const auth_verifier *v, const unsigned char *digest,
                          pthread_mutex_t **m)
{
    uint64_t h;
    memcpy(&h, digest, sizeof h);
    size_t set = (size_t)(h % (v->nslots / CACHE_WAYS));
    *m = (pthread_mutex_t *)&v->stripes[set % CACHE_STRIPES];
    return &v->slots[set * CACHE_WAYS];
}

/* 1 and the entry copied out when digest is cached under generation gen. */
static int cache_get(auth_verifier *v, const unsigned char *digest, uint64_t gen,
                     cache_slot *copy)
{
    if (!v->nslots)
        return 0;
    pthread_mutex_t *m;
    cache_slot *set = set_of(v, digest, &m);
    int hit = 0;
    pthread_mutex_lock(m);
    for (int w = 0; w < CACHE_WAYS && !hit; w++) {
        hit = set[w].gen == gen &&
              CRYPTO_memcmp(set[w].digest, digest, SHA256_DIGEST_LENGTH) == 0;
        if (hit)
            *copy = set[w];
    }
    pthread_mutex_unlock(m);
    return hit;
}

static void cache_put(auth_verifier *v, const cache_slot *entry, int64_t now)
{
    if (!v->nslots)
        return;
    pthread_mutex_t *m;
    cache_slot *set = set_of(v, entry->digest, &m);
    pthread_mutex_lock(m);
    cache_slot *victim = &set[0];
    for (int w = 0; w < CACHE_WAYS; w++) {
        cache_slot *s = &set[w];
        if (memcmp(s->digest, entry->digest, SHA256_DIGEST_LENGTH) == 0 ||
            s->gen != entry->gen || s->exp + v->leeway <= (double)now) {
            victim = s;
            break;
        }
        if (s->exp < victim->exp)
            victim = s;
    }
    *victim = *entry;
    pthread_mutex_unlock(m);
}

/* ---- the checks ------------------------------------------------------- */

#define REFUSE(msg) sm_fail(err, SM_ERR_INVALID, "%s", (msg))

static sm_status check_times(const auth_verifier *v, double exp, double nbf, int64_t now,
                             sm_error *err)
{
    if ((double)now >= exp + v->leeway)
        return REFUSE("token expired");
    if ((double)now + v->leeway < nbf)
        return REFUSE("token not yet valid");
    return SM_OK;
}

static int64_t clamp_time(double t)
{
    if (t > 1e15)
        return (int64_t)1e15;
    if (t < -1e15)
        return (int64_t)-1e15;
    return (int64_t)t;
}

/* The claims of a verified payload into e (times and identity). */
static sm_status check_claims(const auth_verifier *v, json_t *p, int64_t now, cache_slot *e,
                              sm_error *err)
{
    const char *iss = json_string_value(json_object_get(p, "iss"));
    if (!iss || strcmp(iss, v->issuer) != 0)
        return REFUSE("wrong issuer");

    json_t *aud = json_object_get(p, "aud");
    int aud_ok = json_is_string(aud) && strcmp(json_string_value(aud), v->audience) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach(aud, i, a) if (json_is_string(a) &&
                                          strcmp(json_string_value(a), v->audience) == 0)
            aud_ok = 1;
    }
    if (!aud_ok)
        return REFUSE("wrong audience");

    json_t *exp = json_object_get(p, "exp"), *nbf = json_object_get(p, "nbf");
    if (!json_is_number(exp))
        return REFUSE("missing expiry");
    if (nbf && !json_is_number(nbf))
        return REFUSE("invalid nbf");
    e->exp = json_number_value(exp);
    e->nbf = nbf ? json_number_value(nbf) : -1e300;
    sm_status st = check_times(v, e->exp, e->nbf, now, err);
    if (st != SM_OK)
        return st;

    auth_identity *id = &e->id;
    memset(id, 0, sizeof *id);
    id->exp = clamp_time(e->exp);
    json_t *sub = json_object_get(p, "sub");
    if (!json_is_string(sub) || json_string_length(sub) == 0)
        return REFUSE("missing subject");
    if (json_string_length(sub) > AUTH_MAX_SUB || strlen(json_string_value(sub)) !=
                                                      json_string_length(sub))
        return REFUSE("invalid subject");
    memcpy(id->sub, json_string_value(sub), json_string_length(sub));

    json_t *name = claim_at(p, v->name_claim);
    if (name) {
        if (!json_is_string(name) || json_string_length(name) > AUTH_MAX_NAME ||
            strlen(json_string_value(name)) != json_string_length(name))
            return REFUSE("invalid name claim");
        memcpy(id->name, json_string_value(name), json_string_length(name));
    }

    json_t *roles = claim_at(p, v->roles_claim);
    if (roles) {
        if (!json_is_array(roles) || json_array_size(roles) > AUTH_MAX_ROLES)
            return REFUSE("invalid roles claim");
        size_t i;
        json_t *r;
        json_array_foreach(roles, i, r)
        {
            if (!json_is_string(r) || json_string_length(r) > AUTH_MAX_ROLE ||
                strlen(json_string_value(r)) != json_string_length(r))
                return REFUSE("invalid roles claim");
            memcpy(id->roles[id->nroles++], json_string_value(r), json_string_length(r));
        }
    }
    return SM_OK;
}

/* The header's alg against the allowlist and the key set. */
static sm_status choose_alg(const auth_keyset *ks, json_t *hdr, auth_alg *alg, sm_error *err)
{
    const char *a = json_string_value(json_object_get(hdr, "alg"));
    if (!a)
        return REFUSE("missing algorithm");
    for (int i = 0; i < 4; i++) {
        if (strcmp(a, auth_alg_names[i]) == 0) {
            *alg = (auth_alg)i;
            if (*alg == AUTH_ALG_HS256 && !ks->hs256)
                return REFUSE("algorithm not allowed");
            return SM_OK;
        }
    }
    if (strcasecmp(a, "none") == 0)
        return REFUSE("algorithm none refused");
    return REFUSE("algorithm not allowed");
}

static sm_status choose_key(const auth_keyset *ks, json_t *hdr, auth_alg alg, const auth_key **key,
                            sm_error *err)
{
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    if (!kid)
        return REFUSE("missing key id");
    int kid_seen = 0;
    for (size_t i = 0; i < ks->nkeys; i++) {
        if (strcmp(ks->keys[i].kid, kid) != 0)
            continue;
        kid_seen = 1;
        if (ks->keys[i].alg == alg) {
            *key = &ks->keys[i];
            return SM_OK;
        }
    }
    return REFUSE(kid_seen ? "key does not fit algorithm" : "unknown key id");
}

static int ed25519_ok(EVP_PKEY *key, const char *token, size_t signed_len, const char *sig_b64,
                      size_t sig_b64_len)
{
    size_t n = 0;
    unsigned char *sig = auth_b64url_decode(sig_b64, sig_b64_len, &n);
    int ok = 0;
    EVP_MD_CTX *ctx = sig && n == 64 ? EVP_MD_CTX_new() : NULL;
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1)
        ok = EVP_DigestVerify(ctx, sig, n, (const unsigned char *)token, signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    free(sig);
    return ok;
}

static int cjose_ok(const cjose_jwk_t *jwk, const char *token, size_t len)
{
    cjose_err cerr;
    cjose_jws_t *jws = cjose_jws_import(token, len, &cerr);
    int ok = jws && cjose_jws_verify(jws, jwk, &cerr);
    if (jws)
        cjose_jws_release(jws);
    return ok;
}

/* Everything after the cache lookup: parse, pick the key, verify, check. */
static sm_status verify_cold(auth_verifier *v, const auth_keyset *ks, const char *token, size_t len,
                             const char *dot1, const char *dot2, int64_t now, cache_slot *e,
                             sm_error *err)
{
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1);
    size_t n;
    json_t *hdr = NULL, *payload = NULL;
    const auth_key *key = NULL;
    auth_alg alg = AUTH_ALG_RS256;
    sm_status st = SM_ERR_INVALID;

    unsigned char *text = auth_b64url_decode(token, hlen, &n);
    if (!text) {
        REFUSE("malformed base64");
        goto out;
    }
    hdr = json_loadb((const char *)text, n, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    if (!json_is_object(hdr)) {
        REFUSE("header is not a JSON object");
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        REFUSE("unsupported critical header");
        goto out;
    }
    if ((st = choose_alg(ks, hdr, &alg, err)) != SM_OK)
        goto out;
    if (alg != AUTH_ALG_HS256 && (st = choose_key(ks, hdr, alg, &key, err)) != SM_OK)
        goto out;

    st = SM_ERR_INVALID;
    text = auth_b64url_decode(dot1 + 1, plen, &n);
    if (!text || !b64url_decode_ok(dot2 + 1, len - (size_t)(dot2 + 1 - token))) {
        free(text);
        REFUSE("malformed base64");
        goto out;
    }
    payload = json_loadb((const char *)text, n, JSON_REJECT_DUPLICATES, NULL);
    free(text);

    count(&v->stats.signature_checks);
    int sig_ok = alg == AUTH_ALG_EDDSA
                     ? ed25519_ok(key->ed, token, (size_t)(dot2 - token), dot2 + 1,
                                  len - (size_t)(dot2 + 1 - token))
                     : cjose_ok(alg == AUTH_ALG_HS256 ? ks->hs256 : key->jwk, token, len);
    if (!sig_ok) {
        REFUSE("signature invalid");
        goto out;
    }
    if (!json_is_object(payload)) {
        REFUSE("payload is not a JSON object");
        goto out;
    }
    st = check_claims(v, payload, now, e, err);
out:
    json_decref(hdr);
    json_decref(payload);
    return st;
}

sm_status auth_verify(auth_verifier *v, const char *token, int64_t now, auth_identity *out,
                      sm_error *err)
{
    size_t len = strnlen(token, AUTH_MAX_TOKEN + 1);
    if (len > AUTH_MAX_TOKEN)
        return REFUSE("token too large");
    const char *dot1 = memchr(token, '.', len);
    if (dot1 && (size_t)(dot1 - token) > AUTH_MAX_HEADER)
        return REFUSE("header too large");
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) ||
        dot1 == token)
        return REFUSE("malformed token");

    cache_slot e;
    memset(&e, 0, sizeof e);
    SHA256((const unsigned char *)token, len, e.digest);
    auth_keyset *ks = keyset_acquire(v);
    sm_status st;
    cache_slot hit;
    if (cache_get(v, e.digest, ks->gen, &hit)) {
        count(&v->stats.cache_hits);
        st = check_times(v, hit.exp, hit.nbf, now, err);
        if (st == SM_OK)
            *out = hit.id;
    } else {
        st = verify_cold(v, ks, token, len, dot1, dot2, now, &e, err);
        if (st == SM_OK) {
            e.gen = ks->gen;
            cache_put(v, &e, now);
            *out = e.id;
        }
    }
    keyset_release(v, ks);
    return st;
}
