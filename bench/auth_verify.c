/* SPDX-License-Identifier: Apache-2.0 */
/* auth_verify — what verifying a bearer token costs (common/auth_jwt.c).
 *
 * For each of RS256 (RSA 2048), ES256 (P-256) and EdDSA (Ed25519): N
 * distinct tokens (distinct sub) are verified once each, every one a cache
 * miss and a signature check ("cold"), then the same tokens again, answered
 * from the cache ("cached"). One thread; the cache is sized to hold them
 * all. Prints one line:
 *   auth_verify n=500 rs256_cold_us=... rs256_cached_us=... es256_cold_us=...
 *
 *   auth_verify [N]   (default 500) */
#include "auth_jwt.h"
#include "jwt_mint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOW ((int64_t)1800000000)

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Microseconds per verification of every token in toks; exits on a refusal. */
static double pass(auth_verifier *v, char **toks, int n)
{
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        auth_identity id;
        sm_error err;
        if (auth_verify(v, toks[i], NOW, &id, &err) != SM_OK) {
            fprintf(stderr, "auth_verify: refused: %s\n", err.message);
            exit(1);
        }
    }
    return (now_us() - t0) / n;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 500;
    if (n < 1 || n > 100000) {
        fprintf(stderr, "usage: auth_verify [N 1..100000]\n");
        return 2;
    }
    static const char *const names[] = {"rs256", "es256", "eddsa"};
    EVP_PKEY *keys[3] = {EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
                         EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
                         EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
    json_t *arr = json_array();
    for (int k = 0; k < 3; k++)
        json_array_append_new(arr, jwt_mint_public_jwk(keys[k], names[k]));
    char dir[] = "/tmp/smpost-bench-auth-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    json_t *doc = json_pack("{s:o}", "keys", arr);
    json_dump_file(doc, path, 0);
    json_decref(doc);

    auth_config cfg;
    auth_config_init(&cfg);
    cfg.jwks_file = path;
    cfg.issuer = "https://issuer.bench";
    cfg.audience = "smpost";
    cfg.cache_slots = 16 * n; /* room for every token of the three algs */
    sm_error err;
    auth_verifier *v = auth_verifier_new(&cfg, &err);
    unlink(path);
    rmdir(dir);
    if (!v) {
        fprintf(stderr, "auth_verify: %s\n", err.message);
        return 1;
    }
    printf("auth_verify n=%d", n);
    char **toks = calloc((size_t)n, sizeof *toks);
    for (int k = 0; k < 3; k++) {
        char hdr[128];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 jwt_mint_alg(keys[k]), names[k]);
        for (int i = 0; i < n; i++) {
            char claims[512];
            snprintf(claims, sizeof claims,
                     "{\"iss\":\"https://issuer.bench\",\"aud\":\"smpost\",\"sub\":\"user-%d\","
                     "\"preferred_username\":\"user %d\",\"roles\":[\"reader\"],"
                     "\"iat\":%lld,\"exp\":%lld}",
                     i, i, (long long)NOW, (long long)NOW + 3600);
            toks[i] = jwt_mint_sign(keys[k], hdr, claims);
        }
        double cold = pass(v, toks, n), cached = pass(v, toks, n);
        printf(" %s_cold_us=%.1f %s_cached_us=%.2f", names[k], cold, names[k], cached);
        for (int i = 0; i < n; i++)
            free(toks[i]);
    }
    auth_stats st;
    auth_verifier_stats(v, &st);
    printf(" signature_checks=%llu cache_hits=%llu\n", (unsigned long long)st.signature_checks,
           (unsigned long long)st.cache_hits);
    free(toks);
    auth_verifier_free(v);
    for (int k = 0; k < 3; k++)
        EVP_PKEY_free(keys[k]);
    return 0;
}
