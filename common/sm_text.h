/* sm_text.h — text rules applied at the edge: UTF-8 validity, "blank"
 * (empty after trimming white space) and case-insensitive equality.
 * All functions are pure and thread-safe. */
#ifndef SM_TEXT_H
#define SM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, no
 * code point above U+10FFFF) with no NUL byte. */
bool sm_utf8_valid(const char *s, size_t len);

/* True if s is NULL, empty, or only white space (ASCII space, tab, CR, LF,
 * VT, FF, and the Unicode spaces U+00A0, U+1680, U+2000..U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000), like .NET's string.IsNullOrWhiteSpace. */
bool sm_text_blank(const char *s);

/* Case-insensitive equality of two UTF-8 strings by simple Unicode case
 * mapping (so "ALICE" == "alice" and "ÉMILE" == "émile"). Invalid UTF-8
 * compares byte by byte. */
bool sm_text_equal_ci(const char *a, const char *b);

#endif
