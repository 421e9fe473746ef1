/* SPDX-License-Identifier: Apache-2.0 */
/* smpost-token — mints a signed JWT for local development and tests, and
 * makes a development key pair with its JWKS.
 *
 *   smpost-token --key FILE --sub S [--name N] [--roles a,b] [--ttl 3600]
 *                [--iss I] [--aud A] [--kid K]
 *   smpost-token --gen-key DIR [--type ed25519|es256]
 *
 * The key is a PEM private key (RSA, EC P-256 or Ed25519); the alg follows
 * from it (RS256, ES256, EdDSA). The kid defaults to the key's RFC 7638
 * thumbprint, which is also the kid --gen-key writes into DIR/jwks.json, so
 * the pair works without naming one. A production provider signs real
 * tokens; this tool exists so a developer can talk to a service running
 * with SMPOST_AUTH=jwt. */
#include "jwt_mint.h"
#include "sm_version.h"

#include <openssl/pem.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ISS "smpost-dev"
#define DEFAULT_AUD "smpost"

static void usage(void)
{
    fprintf(stderr,
            "usage: smpost-token --key FILE --sub S [--name N] [--roles a,b] [--ttl 3600]\n"
            "                    [--iss %s] [--aud %s] [--kid K]\n"
            "       smpost-token --gen-key DIR [--type ed25519|es256]\n",
            DEFAULT_ISS, DEFAULT_AUD);
}

/* Writes DIR/dev-key.pem (0600) and DIR/jwks.json; refuses to replace a key. */
static int gen_key(const char *dir, const char *type)
{
    int ec = type && strcmp(type, "es256") == 0;
    if (type && !ec && strcmp(type, "ed25519") != 0) {
        fprintf(stderr, "smpost-token: --type is ed25519 or es256\n");
        return 2;
    }
    EVP_PKEY *key = ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                       : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    char *kid = key ? jwt_mint_thumbprint(key) : NULL;
    json_t *jwk = kid ? jwt_mint_public_jwk(key, kid) : NULL;
    if (!jwk) {
        fprintf(stderr, "smpost-token: cannot generate a key\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/dev-key.pem", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0) {
        fprintf(stderr, "smpost-token: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    json_t *jwks = json_pack("{s:[o]}", "keys", jwk);
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    if (json_dump_file(jwks, path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "smpost-token: cannot write %s\n", path);
        return 1;
    }
    printf("%s/dev-key.pem\n%s/jwks.json kid=%s\n", dir, dir, kid);
    json_decref(jwks);
    free(kid);
    EVP_PKEY_free(key);
    return 0;
}

static json_t *roles_array(const char *csv)
{
    json_t *a = json_array();
    char *copy = strdup(csv), *save = NULL;
    for (char *r = strtok_r(copy, ",", &save); r; r = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(r));
    free(copy);
    return a;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},   {"sub", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},  {"roles", required_argument, NULL, 'r'},
        {"ttl", required_argument, NULL, 't'},   {"iss", required_argument, NULL, 'i'},
        {"aud", required_argument, NULL, 'a'},   {"kid", required_argument, NULL, 'd'},
        {"gen-key", required_argument, NULL, 'g'}, {"type", required_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *keyfile = NULL, *sub = NULL, *name = NULL, *roles = NULL, *kid = NULL;
    const char *iss = DEFAULT_ISS, *aud = DEFAULT_AUD, *gen = NULL, *type = NULL;
    long ttl = 3600;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keyfile = optarg; break;
        case 's': sub = optarg; break;
        case 'n': name = optarg; break;
        case 'r': roles = optarg; break;
        case 'i': iss = optarg; break;
        case 'a': aud = optarg; break;
        case 'd': kid = optarg; break;
        case 'g': gen = optarg; break;
        case 'y': type = optarg; break;
        case 'V': printf("smpost-token %s (commit %s)\n", sm_version(), sm_commit()); return 0;
        case 't': {
            char *end;
            ttl = strtol(optarg, &end, 10);
            if (*end || ttl <= 0 || ttl > 366L * 86400) {
                fprintf(stderr, "smpost-token: --ttl is 1..31622400 seconds\n");
                return 2;
            }
            break;
        }
        default: usage(); return c == 'h' ? 0 : 2;
        }
    }
    if (gen)
        return gen_key(gen, type);
    if (!keyfile || !sub || !*sub || optind != argc) {
        usage();
        return 2;
    }
    FILE *f = fopen(keyfile, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    const char *alg = key ? jwt_mint_alg(key) : NULL;
    if (!alg) {
        fprintf(stderr, "smpost-token: %s: not a PEM RSA, EC P-256 or Ed25519 private key\n",
                keyfile);
        return 1;
    }
    char *own_kid = kid ? NULL : jwt_mint_thumbprint(key);
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid",
                            kid ? kid : own_kid);
    long now = (long)time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", iss, "aud", aud, "sub", sub,
                               "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl));
    if (name)
        json_object_set_new(claims, "preferred_username", json_string(name));
    if (roles)
        json_object_set_new(claims, "roles", roles_array(roles));
    char *h = json_dumps(hdr, JSON_COMPACT), *p = json_dumps(claims, JSON_COMPACT);
    char *token = h && p ? jwt_mint_sign(key, h, p) : NULL;
    if (!token) {
        fprintf(stderr, "smpost-token: cannot sign\n");
        return 1;
    }
    printf("%s\n", token);
    free(token);
    free(h);
    free(p);
    free(own_kid);
    json_decref(hdr);
    json_decref(claims);
    EVP_PKEY_free(key);
    return 0;
}
