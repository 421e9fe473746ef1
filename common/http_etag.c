/* SPDX-License-Identifier: Apache-2.0 */
/* http_etag.c — see http_etag.h. */
#include "http_etag.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

void http_etag_of(const char *body, size_t len, char out[HTTP_ETAG_MAX])
{
    uLong crc = crc32(0L, Z_NULL, 0), adler = adler32(0L, Z_NULL, 0);
    /* zlib takes at most uInt bytes per call */
    for (size_t at = 0; at < len;) {
        uInt n = len - at > 1u << 30 ? 1u << 30 : (uInt)(len - at);
        crc = crc32(crc, (const Bytef *)body + at, n);
        adler = adler32(adler, (const Bytef *)body + at, n);
        at += n;
    }
    uint64_t digest = ((uint64_t)(crc & 0xffffffffu) << 32) | (adler & 0xffffffffu);
    snprintf(out, HTTP_ETAG_MAX, "W/\"%016" PRIx64 "\"", digest);
}

/* The opaque part of a tag, quotes included: `W/"x"` -> `"x"`. */
static const char *opaque(const char *tag)
{
    return strncmp(tag, "W/", 2) == 0 ? tag + 2 : tag;
}

bool http_if_none_match(const char *header, const char *etag)
{
    if (!header || !etag)
        return false;
    const char *mine = opaque(etag);
    size_t mine_len = strlen(mine);
    const char *p = header;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return false;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"')
            return false;
        const char *end = strchr(p + 1, '"');
        if (!end)
            return false;
        char after = end[1];
        if (after && after != ',' && after != ' ' && after != '\t')
            return false;
        size_t n = (size_t)(end - p) + 1;
        if (n == mine_len && memcmp(p, mine, n) == 0)
            return true;
        p = end + 1;
    }
}
