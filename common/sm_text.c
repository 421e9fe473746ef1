/* SPDX-License-Identifier: Apache-2.0 */
/* sm_text.c — see sm_text.h. */
#include "sm_text.h"

#include "sm_casefold_table.h"

#include <stdint.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s (n bytes available). Returns its length,
 * or 0 if it is malformed; *cp receives the code point. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

bool sm_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    while (len > 0) {
        uint32_t cp;
        size_t k = utf8_next(p, len, &cp);
        if (k == 0 || cp == 0)
            return false;
        p += k;
        len -= k;
    }
    return true;
}

char *sm_utf8_scrub(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), o = 0;
    while (n > 0) {
        uint32_t cp;
        size_t k = utf8_next(p, n, &cp);
        const char *piece = k ? (const char *)p : "?";
        size_t len = k ? k : 1;
        if (o + len >= cap)
            break;
        memcpy(out + o, piece, len);
        o += len;
        p += len;
        n -= len;
    }
    out[o] = '\0';
    return out;
}

static bool is_space(uint32_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

bool sm_text_blank(const char *s)
{
    if (!s)
        return true;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        uint32_t cp;
        size_t k = utf8_next(p, n, &cp);
        if (k == 0 || !is_space(cp))
            return false;
        p += k;
        n -= k;
    }
    return true;
}

/* Case folding comes from the project's own table, generated from Unicode's
 * CaseFolding.txt (sm_casefold_table.h), not from the C library: the order
 * sm_text_compare_ci defines is kept on disk in an SQLite index, so it must
 * not change with the machine's locale files or a libc upgrade. Only a new
 * table or a change below moves it, and either changes sm_text_ci_version.
 * Revision 1 was towupper_l in C.UTF-8 (ASCII-only without that locale),
 * with invalid UTF-8 compared as raw bytes against valid text; it recorded
 * no version. */
#define SM_TEXT_CI_REVISION "2"

const char *sm_text_ci_version(void)
{
    return "fold-" SM_TEXT_CI_REVISION "/unicode-" SM_CASEFOLD_UNICODE_VERSION;
}

/* Two loads for a code point that may fold; nothing past the last folding
 * block. Unsigned arithmetic: a negative delta wraps to the right value. */
static inline uint32_t fold(uint32_t c)
{
    if (c >= SM_CASEFOLD_LIMIT)
        return c;
    return c + (uint32_t)sm_casefold_delta[sm_casefold_block[c >> SM_CASEFOLD_SHIFT]]
                                          [c & ((1u << SM_CASEFOLD_SHIFT) - 1)];
}

uint32_t sm_text_fold(uint32_t c)
{
    return fold(c);
}

/* 'A'..'Z' -> 'a'..'z', exactly what the table does to ASCII. */
static inline uint32_t ascii_fold(uint32_t c)
{
    return c - 'A' < 26u ? c + ('a' - 'A') : c;
}

int sm_text_compare_ci(const char *a, size_t na, const char *b, size_t nb)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    while (na > 0 && nb > 0) {
        uint32_t ca = *p, cb = *q;
        if ((ca | cb) < 0x80) { /* both ASCII: most authors, most of the time */
            if (ca != cb) {
                ca = ascii_fold(ca), cb = ascii_fold(cb);
                if (ca != cb)
                    return ca < cb ? -1 : 1;
            }
            p++, na--;
            q++, nb--;
            continue;
        }
        size_t ka = utf8_next(p, na, &ca), kb = utf8_next(q, nb, &cb);
        if (ka == 0 || kb == 0) {
            /* From a bad sequence on, a string is its bytes, and a byte
             * there sorts after any character: a key of its own, so the
             * order stays total even where folding changes byte lengths
             * (U+212A KELVIN SIGN is 3 bytes, its fold 'k' one). */
            if (ka != 0 || kb != 0)
                return ka == 0 ? 1 : -1;
            int c = memcmp(p, q, na < nb ? na : nb);
            return c ? (c > 0) - (c < 0) : (na > nb) - (na < nb);
        }
        if (ca != cb) { /* equal code points need no table */
            ca = fold(ca), cb = fold(cb);
            if (ca != cb)
                return ca < cb ? -1 : 1;
        }
        p += ka, na -= ka;
        q += kb, nb -= kb;
    }
    return (na > 0) - (nb > 0);
}

bool sm_text_equal_ci(const char *a, const char *b)
{
    return sm_text_compare_ci(a, strlen(a), b, strlen(b)) == 0;
}
