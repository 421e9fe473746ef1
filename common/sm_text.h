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

/* Copies NUL-terminated s into out (cap > 0 bytes, always NUL-terminated),
 * replacing each byte that does not begin a well-formed UTF-8 sequence with
 * '?', and stopping before a character that would not fit. So text that
 * echoes client input (an id in an error message) stays readable and is
 * valid UTF-8. Returns out. */
char *sm_utf8_scrub(const char *s, char *out, size_t cap);

/* True if s is NULL, empty, or only white space (ASCII space, tab, CR, LF,
 * VT, FF, and the Unicode spaces U+00A0, U+1680, U+2000..U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000), like .NET's string.IsNullOrWhiteSpace. */
bool sm_text_blank(const char *s);

/* Case-insensitive equality of two UTF-8 strings by simple Unicode case
 * mapping (so "ALICE" == "alice" and "ÉMILE" == "émile"). Invalid UTF-8
 * compares byte by byte. */
bool sm_text_equal_ci(const char *a, const char *b);

/* The order behind sm_text_equal_ci, on byte ranges (not NUL-terminated):
 * code points compared after simple case folding; < 0, 0 or > 0. Invalid
 * UTF-8 compares by bytes from the first bad sequence on. A total order,
 * so it can back an index (the SQLite read model's SM_NOCASE collation). */
int sm_text_compare_ci(const char *a, size_t na, const char *b, size_t nb);

#endif
