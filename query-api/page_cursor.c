/* SPDX-License-Identifier: Apache-2.0 */
/* page_cursor.c — the keyset cursor's codec (page_cursor.h). Decoding
 * shares common's strict base64url decoder with the JWT verifier. */
#include "page_cursor.h"

#include "auth_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_BYTES 25

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool page_cursor_encode(int64_t date_posted_ms, const char *id, char out[PAGE_CURSOR_LEN + 1])
{
    return page_cursor_encode_as(PAGE_CURSOR_FORMAT, date_posted_ms, id, out);
}

bool page_cursor_decode(const char *text, page_cursor *out)
{
    return page_cursor_decode_as(PAGE_CURSOR_FORMAT, text, out);
}

bool page_cursor_encode_as(int format, int64_t date_posted_ms, const char *id,
                           char out[PAGE_CURSOR_LEN + 1])
{
    sm_uuid_str canon;
    if (format < 1 || format > 255 || date_posted_ms < 0 || date_posted_ms > PAGE_CURSOR_MAX_MS ||
        !id || !sm_uuid_parse(id, canon))
        return false;
    unsigned char raw[CURSOR_BYTES + 2] = {(unsigned char)format}; /* 2: a zero tail for the loop */
    for (int i = 0; i < 8; i++)
        raw[1 + i] = (unsigned char)((uint64_t)date_posted_ms >> (56 - 8 * i));
    size_t n = 9;
    for (const char *h = canon; *h; h++) {
        if (*h == '-')
            continue;
        raw[n++] = (unsigned char)(hex_value(h[0]) << 4 | hex_value(h[1]));
        h++;
    }
    /* 25 bytes: eight groups of three, then one byte left (two letters) */
    char *o = out;
    for (size_t i = 0; i < CURSOR_BYTES; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        if (i + 1 < CURSOR_BYTES)
            *o++ = b64url[v >> 6 & 63];
        if (i + 2 < CURSOR_BYTES)
            *o++ = b64url[v & 63];
    }
    *o = '\0';
    return true;
}

bool page_cursor_decode_as(int format, const char *text, page_cursor *out)
{
    if (!text || strlen(text) != PAGE_CURSOR_LEN)
        return false;
    size_t len = 0;
    unsigned char *raw = auth_b64url_decode(text, PAGE_CURSOR_LEN, &len);
    bool ok = raw && len == CURSOR_BYTES && raw[0] == format;
    uint64_t ms = 0;
    for (int i = 0; ok && i < 8; i++)
        ms = ms << 8 | raw[1 + i];
    ok = ok && ms <= (uint64_t)PAGE_CURSOR_MAX_MS;
    if (ok) {
        static const char hex[] = "0123456789abcdef";
        char *o = out->id;
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                *o++ = '-';
            *o++ = hex[raw[9 + i] >> 4];
            *o++ = hex[raw[9 + i] & 15];
        }
        *o = '\0';
        out->date_posted_ms = (int64_t)ms;
    }
    free(raw);
    return ok;
}
