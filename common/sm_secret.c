/* SPDX-License-Identifier: Apache-2.0 */
/* sm_secret.c — see sm_secret.h. */
#include "sm_secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A secret file bigger than this is a mistake (a certificate bundle, a
 * log), not a password. */
#define SECRET_FILE_MAX (64 * 1024)

/* Reads at most max bytes of path; *n gets the length. NULL + errno. */
static char *slurp(const char *path, size_t max, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max + 2);
    size_t got = buf ? fread(buf, 1, max + 1, f) : 0;
    int failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = buf ? EIO : ENOMEM;
        return NULL;
    }
    buf[got] = '\0';
    *n = got;
    return buf;
}

char *sm_secret_read_file(const char *path, const char *setting, sm_error *err)
{
    size_t n = 0;
    char *text = slurp(path, SECRET_FILE_MAX, &n);
    if (!text) {
        sm_fail(err, SM_ERR_INVALID, "%s: cannot read %s: %s", setting, path, strerror(errno));
        return NULL;
    }
    if (n > SECRET_FILE_MAX || memchr(text, '\0', n)) {
        sm_fail(err, SM_ERR_INVALID, "%s: %s is not a secret file (%s)", setting, path,
                n > SECRET_FILE_MAX ? "over 64 KiB" : "it holds a NUL byte");
        free(text);
        return NULL;
    }
    /* one trailing newline, as `echo pass > file` and editors leave it */
    if (n && text[n - 1] == '\n')
        text[--n] = '\0';
    if (n && text[n - 1] == '\r')
        text[--n] = '\0';
    return text;
}

void sm_strv_free(char **v)
{
    for (char **p = v; p && *p; p++) {
        memset(*p, 0, strlen(*p));
        free(*p);
    }
    free(v);
}

/* Appends a heap copy of "key=value" (key of klen bytes) to *v (length *n);
 * with val NULL, of the key alone. */
static bool strv_push(char ***v, size_t *n, const char *key, size_t klen, const char *val,
                      size_t vlen)
{
    char **grown = realloc(*v, (*n + 2) * sizeof *grown);
    if (!grown)
        return false;
    *v = grown;
    char *item = malloc(klen + vlen + 2);
    if (!item)
        return false;
    memcpy(item, key, klen);
    item[klen] = '\0';
    if (val) {
        item[klen] = '=';
        memcpy(item + klen + 1, val, vlen);
        item[klen + 1 + vlen] = '\0';
    }
    grown[(*n)++] = item;
    grown[*n] = NULL;
    return true;
}

char **sm_kv_lines_parse(const char *text, const char *source, sm_error *err)
{
    size_t n = 0;
    char **v = calloc(1, sizeof *v);
    int line = 0;
    for (const char *p = text ? text : ""; v && *p;) {
        const char *eol = p + strcspn(p, "\n"), *next = *eol ? eol + 1 : eol;
        line++;
        while (p < eol && isspace((unsigned char)*p))
            p++;
        const char *end = eol;
        if (end > p && end[-1] == '\r')
            end--;
        if (p == end || *p == '#') {
            p = next;
            continue;
        }
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq;
        while (kend && kend > p && isspace((unsigned char)kend[-1]))
            kend--;
        if (!eq || kend == p) {
            sm_fail(err, SM_ERR_INVALID, "%s line %d: %s", source, line,
                    eq ? "the key before '=' is empty" : "not key=value (no '=')");
            sm_strv_free(v);
            return NULL;
        }
        const char *val = eq + 1;
        while (val < end && (*val == ' ' || *val == '\t'))
            val++;
        if (!strv_push(&v, &n, p, (size_t)(kend - p), val, (size_t)(end - val))) {
            sm_strv_free(v);
            v = NULL;
            break;
        }
        p = next;
    }
    if (!v)
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    return v;
}

char **sm_kafka_config_load(const char *file, const char *file_setting, const char *list,
                            sm_error *err)
{
    char **v;
    if (file && *file) {
        char *text = sm_secret_read_file(file, file_setting, err);
        if (!text)
            return NULL;
        char source[300];
        snprintf(source, sizeof source, "%s (%s)", file_setting, file);
        v = sm_kv_lines_parse(text, source, err);
        memset(text, 0, strlen(text));
        free(text);
    } else {
        v = sm_kv_lines_parse("", "", err);
    }
    size_t n = 0;
    while (v && v[n])
        n++;
    /* the list: "a=1,b=2"; an item without '=' is left for the bus to
     * refuse, naming its key-less position */
    for (const char *p = list ? list : ""; v && *p;) {
        size_t len = strcspn(p, ",");
        if (len && !strv_push(&v, &n, p, len, NULL, 0)) {
            sm_strv_free(v);
            sm_fail(err, SM_ERR_INTERNAL, "out of memory");
            return NULL;
        }
        p += len + (p[len] == ',');
    }
    return v;
}

bool sm_secret_kafka_key(const char *key, size_t len)
{
    static const char *const exact[] = {"ssl.key.pem", "sasl.oauthbearer.config",
                                        "ssl.certificate.pem"};
    char k[128];
    if (len >= sizeof k)
        len = sizeof k - 1;
    memcpy(k, key, len);
    k[len] = '\0';
    for (char *c = k; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strstr(k, "password") || strstr(k, "secret"))
        return true;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(k, exact[i]) == 0)
            return true;
    return false;
}

char *sm_redact_kv(const char *kv, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    const char *text = kv ? kv : "";
    const char *eq = strchr(text, '=');
    if (!eq) /* not key=value: it could be a mistyped secret */
        snprintf(buf, cap, "***");
    else if (sm_secret_kafka_key(text, (size_t)(eq - text)))
        snprintf(buf, cap, "%.*s=***", (int)(eq - text), text);
    else
        snprintf(buf, cap, "%s", text);
    return buf;
}

/* True if text at p starts a password field at a field boundary: "pwd=",
 * or a key ending in "password" ("password=", a MongoDB URI's
 * "tlsCertificateKeyFilePassword="), any case; *klen gets the length of
 * the key and '='. */
static bool password_key(const char *text, const char *p, size_t *klen)
{
    static const char suffix[] = "password";
    if (p != text && !strchr(";&?:", p[-1]))
        return false;
    size_t k = strcspn(p, "=;&?:/@ ");
    if (p[k] != '=')
        return false;
    if ((k == 3 && strncasecmp(p, "pwd", 3) == 0) ||
        (k >= sizeof suffix - 1 && strncasecmp(p + k - (sizeof suffix - 1), suffix,
                                               sizeof suffix - 1) == 0)) {
        *klen = k + 1;
        return true;
    }
    return false;
}

bool sm_secret_next_span(const char *text, size_t from, size_t *start, size_t *len,
                         size_t *pass_off)
{
    if (!text)
        return false;
    const char *scheme = strstr(text, "://");
    if (scheme && from <= (size_t)(scheme + 3 - text)) {
        /* user-info ends at the last '@' before the path */
        const char *host = scheme + 3, *end = host + strcspn(host, "/?#"), *at = NULL;
        for (const char *q = host; q < end; q++)
            if (*q == '@')
                at = q;
        if (at) {
            const char *colon = memchr(host, ':', (size_t)(at - host));
            *start = (size_t)(host - text);
            *len = (size_t)(at - host);
            *pass_off = colon ? (size_t)(colon + 1 - host) : *len;
            return true;
        }
    }
    /* a field ends at ';' (and in a URL's query also at '&') */
    const char *stops = scheme ? ";&" : ";";
    for (const char *p = text + from; *p; p++) {
        size_t klen;
        if (password_key(text, p, &klen)) {
            *start = (size_t)(p + klen - text);
            *len = strcspn(p + klen, stops);
            *pass_off = 0;
            return true;
        }
    }
    return false;
}

/* The passwords this repository shows as examples (compose/.env.example)
 * and the placeholders a deployer might leave in: a service holding one
 * runs with a password anyone can read. The Babelfish stand-in's test
 * password (../shared/mssql) is not here: it belongs to a throwaway local
 * server, and CI passes it to query-api. */
static const char *const examples[] = {
    "Change-Me-Sa-2024", "Change-Me-Smpost-2024", "changeme", "change-me", "change_me",
    "password", "passw0rd", "secret", "example", "admin", "smpost",
};

static int unhex(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

bool sm_secret_is_example(const char *password, size_t len)
{
    char plain[128];
    size_t n = 0;
    /* the mssql: parser trims a value's spaces, so compare it trimmed too */
    while (len && isspace((unsigned char)*password)) {
        password++;
        len--;
    }
    while (len && isspace((unsigned char)password[len - 1]))
        len--;
    for (size_t i = 0; i < len && n + 1 < sizeof plain; i++) {
        int hi, lo;
        if (password[i] == '%' && i + 2 < len &&
            (hi = unhex((unsigned char)password[i + 1])) >= 0 &&
            (lo = unhex((unsigned char)password[i + 2])) >= 0) {
            plain[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            plain[n++] = password[i];
        }
    }
    plain[n] = '\0';
    bool found = false;
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++)
        found |= strcasecmp(plain, examples[i]) == 0;
    memset(plain, 0, sizeof plain);
    return found;
}

static sm_status refuse(sm_error *err, const char *what, const char *setting)
{
    return sm_fail(err, SM_ERR_INVALID,
                   "%s%s holds an example password from the documentation: set a password of "
                   "your own (or " SM_SECRET_ALLOW_EXAMPLES_ENV "=1 for a local test)",
                   what, setting);
}

sm_status sm_secret_refuse_example_url(const char *setting, const char *text, bool allow,
                                       sm_error *err)
{
    size_t at = 0, start, len, off;
    while (!allow && sm_secret_next_span(text, at, &start, &len, &off)) {
        if (off < len && sm_secret_is_example(text + start + off, len - off))
            return refuse(err, "", setting);
        at = start + len;
    }
    return SM_OK;
}

sm_status sm_secret_refuse_example_kv(const char *setting, char *const *kv, bool allow,
                                      sm_error *err)
{
    for (char *const *p = kv; !allow && p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (eq && sm_secret_kafka_key(*p, (size_t)(eq - *p)) &&
            sm_secret_is_example(eq + 1, strlen(eq + 1))) {
            char what[160];
            snprintf(what, sizeof what, "%.*s in ", (int)(eq - *p < 100 ? eq - *p : 100), *p);
            return refuse(err, what, setting);
        }
    }
    return SM_OK;
}

bool sm_secret_examples_allowed(void)
{
    const char *v = getenv(SM_SECRET_ALLOW_EXAMPLES_ENV);
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 ||
                 strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0);
}

sm_status sm_secret_check_settings(const char *store_setting, const char *store_url,
                                   const char *kafka_file, const char *kafka_list,
                                   char ***kafka_extra, sm_error *err)
{
    bool allow = sm_secret_examples_allowed();
    *kafka_extra = sm_kafka_config_load(kafka_file, "SMPOST_KAFKA_CONFIG_FILE", kafka_list, err);
    if (!*kafka_extra)
        return err->status;
    if (sm_secret_refuse_example_url(store_setting, store_url, allow, err) != SM_OK ||
        sm_secret_refuse_example_kv("SMPOST_KAFKA_CONFIG_FILE or SMPOST_KAFKA_CONFIG",
                                    *kafka_extra, allow, err) != SM_OK) {
        sm_strv_free(*kafka_extra);
        *kafka_extra = NULL;
        return err->status;
    }
    return SM_OK;
}
