/* SPDX-License-Identifier: Apache-2.0 */
/* http_gzip.c — see http_gzip.h. */
#include "http_gzip.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* One token of a comma-separated header value: its name and its q-value
 * (1000 = q=1). Returns where the next token starts, or NULL at the end. */
static const char *next_coding(const char *p, char *name, size_t cap, int *q)
{
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    if (!*p)
        return NULL;
    size_t n = 0;
    while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t') {
        if (n + 1 < cap)
            name[n++] = (char)tolower((unsigned char)*p);
        p++;
    }
    name[n] = '\0';
    *q = 1000;
    /* parameters: only q counts ("q=0", "q=0.5", "q=1.000") */
    while (*p && *p != ',') {
        if (*p == ';') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                p += 2;
                int v = 0, digits = 0, scale = 1000;
                if (*p == '0' || *p == '1')
                    v = (*p++ - '0') * 1000;
                if (*p == '.')
                    for (p++; isdigit((unsigned char)*p) && digits < 3; p++, digits++)
                        v += (*p - '0') * (scale /= 10);
                *q = v > 1000 ? 1000 : v;
                continue;
            }
        }
        p++;
    }
    return p;
}

bool http_accepts_gzip(const char *accept_encoding)
{
    if (!accept_encoding)
        return false;
    int gzip_q = -1, star_q = -1;
    char name[32];
    int q;
    for (const char *p = accept_encoding; (p = next_coding(p, name, sizeof name, &q));) {
        if (strcmp(name, "gzip") == 0 || strcmp(name, "x-gzip") == 0)
            gzip_q = q > gzip_q ? q : gzip_q;
        else if (strcmp(name, "*") == 0)
            star_q = q;
    }
    /* a coding named outright wins over the wildcard (RFC 9110 12.5.3) */
    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}

bool http_gzip_compressible(const char *content_type)
{
    if (!content_type)
        return false;
    static const char *const types[] = {
        "application/json", "application/problem+json", "application/javascript",
        "application/yaml", "image/svg+xml", "text/",
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strncasecmp(content_type, types[i], strlen(types[i])) == 0)
            return true;
    return false;
}

/* Idle deflate streams, kept for the next reply: setting one up costs
 * more than compressing a small reply. A stream per worker thread (there
 * are hundreds) would keep 256 KB each for good; the pool keeps at most
 * POOL_MAX idle ones, and a reply that finds none makes one (and frees it
 * after if the pool is full). */
#define POOL_MAX 8
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static z_stream *pool[POOL_MAX];
static size_t npool;

static void stream_free(z_stream *z)
{
    deflateEnd(z);
    free(z);
}

static z_stream *stream_take(void)
{
    pthread_mutex_lock(&pool_mu);
    z_stream *z = npool > 0 ? pool[--npool] : NULL;
    pthread_mutex_unlock(&pool_mu);
    if (z)
        return z;
    z = calloc(1, sizeof *z);
    /* 15 + 16: a 32 KB window and the gzip wrapper instead of zlib's */
    if (!z || deflateInit2(z, HTTP_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

/* Back to the pool, reset for its next reply; freed when the pool is full
 * or the reset fails. */
static void stream_give(z_stream *z)
{
    if (deflateReset(z) == Z_OK) {
        pthread_mutex_lock(&pool_mu);
        if (npool < POOL_MAX) {
            pool[npool++] = z;
            z = NULL;
        }
        pthread_mutex_unlock(&pool_mu);
    }
    if (z)
        stream_free(z);
}

bool http_gzip(const char *in, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len > UINT32_MAX / 2)
        return false;
    z_stream *z = stream_take();
    if (!z)
        return false;
    /* deflateBound is what one Z_FINISH call needs at most, so the whole
     * body is compressed in one pass over one buffer */
    size_t cap = deflateBound(z, (uLong)len);
    char *buf = malloc(cap);
    bool ok = buf != NULL;
    if (ok) {
        z->next_in = (Bytef *)in;
        z->avail_in = (uInt)len;
        z->next_out = (Bytef *)buf;
        z->avail_out = (uInt)cap;
        ok = deflate(z, Z_FINISH) == Z_STREAM_END;
    }
    if (ok) {
        *out = buf;
        *out_len = cap - z->avail_out;
    } else {
        free(buf);
    }
    stream_give(z);
    return ok;
}
