/* SPDX-License-Identifier: Apache-2.0 */
/* sm_uuid.c — see sm_uuid.h. */
#include "sm_uuid.h"

#include "sm_time.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

static const char hexdig[] = "0123456789abcdef";

static void format_uuid(const uint8_t b[16], sm_uuid_str out)
{
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hexdig[b[i] >> 4];
        *p++ = hexdig[b[i] & 15];
    }
    *p = '\0';
}

static bool fill_from_kernel(uint8_t *b, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(b + got, len - got, 0);
        if (n < 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* A request draws 40-odd random bytes (its id, a trace id, the new ids);
 * one getrandom per draw was four system calls a command. Each thread
 * keeps a block of the kernel's output and hands it out once: bytes are
 * wiped as they are taken, and the block is never shared between threads.
 * (The services never fork, where a copied block would repeat.) */
#define POOL_BYTES 512
static _Thread_local uint8_t pool[POOL_BYTES];
static _Thread_local size_t pool_left;

bool sm_random_bytes(void *buf, size_t len)
{
    uint8_t *b = buf;
    if (len > POOL_BYTES / 4)
        return fill_from_kernel(b, len);
    if (pool_left < len) {
        if (!fill_from_kernel(pool, POOL_BYTES))
            return false;
        pool_left = POOL_BYTES;
    }
    uint8_t *from = pool + POOL_BYTES - pool_left;
    memcpy(b, from, len);
    memset(from, 0, len);
    pool_left -= len;
    return true;
}

bool sm_uuid_new(sm_uuid_str out)
{
    uint8_t b[16];
    if (!sm_random_bytes(b, sizeof b))
        return false;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    format_uuid(b, out);
    return true;
}

bool sm_uuid_new_v7(sm_uuid_str out)
{
    uint8_t b[16];
    if (!sm_random_bytes(b + 6, sizeof b - 6))
        return false;
    uint64_t ms = (uint64_t)sm_now_ms();
    for (int i = 0; i < 6; i++) /* 48-bit big-endian Unix time in ms */
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x70); /* version 7 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
    format_uuid(b, out);
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool sm_uuid_parse(const char *text, sm_uuid_str out)
{
    size_t len = strlen(text);
    if (len >= 2 && text[0] == '{' && text[len - 1] == '}') {
        text++;
        len -= 2;
    }
    bool dashed = (len == 36);
    if (!dashed && len != 32)
        return false;
    uint8_t b[16];
    size_t pos = 0;
    for (int i = 0; i < 16; i++) {
        if (dashed && (i == 4 || i == 6 || i == 8 || i == 10)) {
            if (text[pos] != '-')
                return false;
            pos++;
        }
        int hi = hexval((unsigned char)text[pos]);
        int lo = hexval((unsigned char)text[pos + 1]);
        if (hi < 0 || lo < 0)
            return false;
        b[i] = (uint8_t)(hi << 4 | lo);
        pos += 2;
    }
    if (out)
        format_uuid(b, out);
    return true;
}
