/* sm_text.c — see sm_text.h. */
#include "sm_text.h"

#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <wctype.h>

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

/* towupper_l needs a UTF-8 locale object; made once, never freed (it lives
 * as long as the process and is read-only after creation). */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void make_locale(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') ? c - 32 : c;
    if (!utf8_locale)
        return c;
    return (uint32_t)towupper_l((wint_t)c, utf8_locale);
}

int sm_text_compare_ci(const char *a, size_t na, const char *b, size_t nb)
{
    pthread_once(&utf8_once, make_locale);
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    while (na > 0 && nb > 0) {
        uint32_t ca, cb;
        size_t ka = utf8_next(p, na, &ca), kb = utf8_next(q, nb, &cb);
        if (ka == 0 || kb == 0) { /* invalid text: fall back to bytes */
            int c = memcmp(p, q, na < nb ? na : nb);
            return c ? c : (na > nb) - (na < nb);
        }
        uint32_t fa = fold(ca), fb = fold(cb);
        if (fa != fb)
            return fa < fb ? -1 : 1;
        p += ka, na -= ka;
        q += kb, nb -= kb;
    }
    return (na > 0) - (nb > 0);
}

bool sm_text_equal_ci(const char *a, const char *b)
{
    return sm_text_compare_ci(a, strlen(a), b, strlen(b)) == 0;
}
