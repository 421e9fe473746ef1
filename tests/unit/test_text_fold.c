/* SPDX-License-Identifier: Apache-2.0 */
/* test_text_fold.c — the case-insensitive order behind SM_NOCASE
 * (sm_text_compare_ci, sm_text_equal_ci) as a specification: which
 * characters fold together (Unicode simple case folding, CaseFolding.txt
 * statuses C and S, nothing else), how folded text is ordered, that the
 * order is total (it backs a persistent index), and that it owes nothing to
 * the C library's locale tables. Built a second time as
 * unit_text_fold_no_c_utf8, with newlocale() wrapped at link time to fail
 * for UTF-8 locales: the machine without C.UTF-8, on which the libc-based
 * fold this replaced silently degraded to ASCII. */
#include "sm_text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Appends code point cp to out as UTF-8; returns the bytes written. */
static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int sign(int v) { return (v > 0) - (v < 0); }

static int cmp(const char *a, const char *b)
{
    return sign(sm_text_compare_ci(a, strlen(a), b, strlen(b)));
}

/* ---- what folds together -------------------------------------------------------- */

/* Pairs of code points that simple case folding makes equal. The first
 * group is what toupper-style mapping through libc (towupper_l in C.UTF-8)
 * got wrong even where C.UTF-8 exists: characters whose upper case is
 * themselves but which fold onto another letter. */
static const uint32_t same[][2] = {
    {0x212a, 'k'},     /* KELVIN SIGN -> k */
    {0x212a, 'K'},
    {0x2126, 0x03c9},  /* OHM SIGN -> ω */
    {0x2126, 0x03a9},  /* OHM SIGN ~ Ω */
    {0x212b, 0x00e5},  /* ANGSTROM SIGN -> å */
    {0x1e9e, 0x00df},  /* ẞ -> ß (status S) */
    {0x03f4, 0x03b8},  /* ϴ -> θ */
    {0x00c9, 0x00e9},  /* É é: only a UTF-8 locale knew these */
    {0x00d1, 0x00f1},  /* Ñ ñ */
    {0x03a3, 0x03c3},  /* Σ σ */
    {0x03c2, 0x03c3},  /* final sigma ς -> σ */
    {0x03c2, 0x03a3},
    {0x017f, 's'},     /* LONG S ſ -> s */
    {0x0345, 0x03b9},  /* COMBINING YPOGEGRAMMENI -> ι */
    {0x01c5, 0x01c6},  /* title case ǅ -> ǆ */
    {0x01c4, 0x01c6},  /* Ǆ -> ǆ */
    {0x0141, 0x0142},  /* Ł ł: Latin Extended-A's odd/even pairs */
    {0x0410, 0x0430},  /* Cyrillic А а */
    {0x0531, 0x0561},  /* Armenian Ա ա */
    {0x10a0, 0x2d00},  /* Georgian Asomtavruli Ⴀ -> ⴀ */
    {0x1c90, 0x10d0},  /* Georgian Mtavruli Ა -> ა (Unicode 11) */
    {0xab70, 0x13a0},  /* Cherokee small ꭰ -> capital Ꭰ (folds to upper) */
    {0x13f8, 0x13f0},  /* Cherokee small ᏸ -> Ᏸ */
    {0x24b6, 0x24d0},  /* circled Ⓐ -> ⓐ */
    {0xff21, 0xff41},  /* fullwidth Ａ -> ａ */
    {0x10400, 0x10428}, /* Deseret 𐐀 -> 𐐨, outside the BMP */
    {0x10570, 0x10597}, /* Vithkuqi (Unicode 14) */
    {0x1e900, 0x1e922}, /* Adlam 𞤀 -> 𞤢 */
};

static void test_simple_case_folding_pairs_compare_equal(void **state)
{
    int wrong = 0;
    for (size_t i = 0; i < COUNT(same); i++) {
        char a[8] = {0}, b[8] = {0};
        utf8_put(same[i][0], a);
        utf8_put(same[i][1], b);
        if (!sm_text_equal_ci(a, b) || cmp(a, b) != 0 || cmp(b, a) != 0) {
            print_error("U+%04X and U+%04X should compare equal\n", same[i][0], same[i][1]);
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

static void test_folding_applies_inside_words(void **state)
{
    /* ΣΊΣΥΦΟΣ / σίσυφος: the last sigma is final in one, capital in the other */
    assert_true(sm_text_equal_ci("\xce\xa3\xce\x8a\xce\xa3\xce\xa5\xce\xa6\xce\x9f\xce\xa3",
                                 "\xcf\x83\xce\xaf\xcf\x83\xcf\x85\xcf\x86\xce\xbf\xcf\x82"));
    assert_true(sm_text_equal_ci("\xc3\x89MILE", "\xc3\xa9mile"));              /* ÉMILE */
    assert_true(sm_text_equal_ci("\xe2\x84\xaa" "ELVIN", "kelvin"));               /* KELVIN */
    assert_true(sm_text_equal_ci("STRA\xe1\xba\x9e" "E", "stra\xc3\x9f" "e"));   /* STRAẞE */
    assert_true(sm_text_equal_ci("\xf0\x90\x90\x80\xf0\x90\x90\xa8", "\xf0\x90\x90\xa8\xf0\x90\x90\x80"));
}

/* What simple case folding does not do: full folding (one character to
 * several), the Turkic dotted/dotless i rules (status T), normalization,
 * width. These stay distinct. */
static void test_text_outside_simple_folding_stays_distinct(void **state)
{
    const char *differ[][2] = {
        {"\xc3\x9f", "ss"},             /* ß is not ss (status F only) */
        {"\xe1\xba\x9e", "SS"},          /* nor is ẞ */
        {"\xc4\xb0", "i"},               /* İ (F and T only) */
        {"\xc4\xb0", "I"},
        {"\xc4\xb1", "i"},               /* dotless ı (T only) */
        {"\xc4\xb1", "I"},
        {"\xef\xac\x80", "ff"},          /* ﬀ ligature (F only) */
        {"\xc3\xa9", "e\xcc\x81"},       /* é precomposed vs e + combining acute */
        {"\xef\xbc\xa1", "A"},           /* fullwidth Ａ vs A */
        {"\xc3\xa9", "e"},
        {"\xe2\x84\xaa", "\xe2\x84\xab"}, /* Kelvin vs Angstrom */
    };
    for (size_t i = 0; i < COUNT(differ); i++)
        if (sm_text_equal_ci(differ[i][0], differ[i][1]))
            fail_msg("pair #%zu should not compare equal", i);
}

/* ---- how folded text is ordered ------------------------------------------------- */

/* Code points are compared after folding, and folding goes to lower case
 * (Cherokee aside). So ASCII punctuation between 'Z' and 'a' ([ \ ] ^ _ `)
 * sorts before every letter, where an upper-case mapping put it after. */
static void test_order_is_by_folded_code_point(void **state)
{
    assert_int_equal(cmp("_", "A"), -1);
    assert_int_equal(cmp("_", "a"), -1);
    assert_int_equal(cmp("_", "Z"), -1);
    assert_int_equal(cmp("[", "a"), -1);
    assert_int_equal(cmp("`", "B"), -1);
    assert_int_equal(cmp("{", "Z"), 1);
    assert_int_equal(cmp("@", "a"), -1);
    assert_int_equal(cmp("bob_smith", "BOBBY"), -1);
    assert_int_equal(cmp("Alice", "alicE"), 0);
    assert_int_equal(cmp("al", "ALICE"), -1);      /* a prefix sorts first */
    assert_int_equal(cmp("ALICE", "al"), 1);
    assert_int_equal(cmp("", "a"), -1);
    assert_int_equal(cmp("z", "\xc3\xa9"), -1);     /* z < é (U+00E9) */
    assert_int_equal(cmp("\xc3\x89", "z"), 1);      /* É folds to é */
    assert_int_equal(cmp("\xe2\x84\xaa", "l"), -1); /* Kelvin folds to k < l */
    assert_int_equal(cmp("\xe1\x8e\xa0", "\xea\xad\xb1"), -1); /* Ꭰ < ꭱ (folds to Ꭱ) */
}

/* Text that is not UTF-8 still has a place: from the first byte that does
 * not begin a well-formed sequence on, the rest compares byte by byte, and
 * that sorts after any character. */
static void test_invalid_utf8_compares_by_bytes_after_every_character(void **state)
{
    assert_true(sm_text_equal_ci("x\xff", "X\xff"));
    assert_false(sm_text_equal_ci("\xff" "A", "\xff" "a"));   /* bytes from there on */
    assert_int_equal(cmp("a\xff", "ab"), 1);
    assert_int_equal(cmp("a\xc3\x28", "a\xc3\xa9"), 1);        /* bad é after good é */
    assert_int_equal(cmp("\xe2\x84", "k"), 1);                 /* truncated Kelvin sign */
    assert_int_equal(cmp("\xe2\x84", "\xe2\x84\xaa"), 1);
    assert_int_equal(cmp("\xe2\x84", "\xf4\x8f\xbf\xbf"), 1);  /* even after U+10FFFF */
    assert_int_equal(cmp("\x80", "\x81"), -1);
    assert_int_equal(cmp("\x80", "\x80\x80"), -1);
}

/* The properties a B-tree needs from a collation, checked over every pair
 * and triple of a sample built to stress them: case variants, characters
 * that fold across UTF-8 lengths (Kelvin sign, 3 bytes, vs 'k'), prefixes,
 * and invalid UTF-8 whose bytes sit next to the encodings of valid ones. */
static const char *const sample[] = {
    "", "a", "A", "b", "k", "K", "\xe2\x84\xaa", "\xe2\x84\xaa" "a", "ka", "KA", "l", "_", "[",
    "z", "Z", "{", "~", "\x7f", "\xc3\xa9", "\xc3\x89", "e\xcc\x81", "\xc3\x9f", "\xe1\xba\x9e",
    "ss", "\xcf\x82", "\xcf\x83", "\xce\xa3", "\xe1\x8e\xa0", "\xea\xad\xb0", "\xf0\x90\x90\x80",
    "\xf0\x90\x90\xa8", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xe2\x84", "\xe2\x84\xab",
    "\xc3\xa5", "\xc3\x28", "\xc3", "\xff", "\xff" "A", "\xff" "a", "\x80", "k\xff", "K\xff",
    "\xe2\x84\xaa\xff", "a_b", "A_B", "ab", "aB", "a[", "a`",
};

static void test_order_is_total_over_a_sample(void **state)
{
    enum { N = COUNT(sample) };
    int c[N][N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            c[i][j] = cmp(sample[i], sample[j]);
    for (int i = 0; i < N; i++) {
        if (c[i][i] != 0)
            fail_msg("sample #%d is not equal to itself", i);
        for (int j = 0; j < N; j++) {
            if (c[i][j] != -c[j][i])
                fail_msg("antisymmetry: #%d vs #%d gives %d, reversed %d", i, j, c[i][j],
                         c[j][i]);
            if ((c[i][j] == 0) != sm_text_equal_ci(sample[i], sample[j]))
                fail_msg("equal_ci disagrees with compare_ci on #%d, #%d", i, j);
            for (int k = 0; k < N; k++)
                if (c[i][j] <= 0 && c[j][k] <= 0 && c[i][k] > 0)
                    fail_msg("transitivity: #%d <= #%d <= #%d but #%d > #%d", i, j, k, i, k);
        }
    }
}

/* ---- the table ------------------------------------------------------------------ */

/* Folding is idempotent and stays in Unicode's range for every code point
 * (what makes "equal" an equivalence: equal means same folded text), and
 * folds exactly as many code points as CaseFolding.txt has C and S lines.
 * That the table equals the file line by line is unit_casefold_table_current
 * (scripts/gen_casefold.py --check). */
static void test_fold_is_idempotent_over_every_code_point(void **state)
{
    size_t folded = 0;
    for (uint32_t c = 0; c <= 0x10ffff; c++) {
        uint32_t f = sm_text_fold(c);
        if (f != c && (f > 0x10ffff || (f >= 0xd800 && f <= 0xdfff)))
            fail_msg("U+%04X folds to U+%04X", c, f);
        if (sm_text_fold(f) != f)
            fail_msg("U+%04X -> U+%04X -> U+%04X", c, f, sm_text_fold(f));
        folded += f != c;
    }
    assert_int_equal(sm_text_fold(0x110000), 0x110000);
    assert_int_equal(sm_text_fold(UINT32_MAX), UINT32_MAX);
    const char *v = sm_text_ci_version();
    if (strstr(v, "/unicode-15.0.0"))
        assert_int_equal(folded, 1454); /* grep -c '; [CS];' CaseFolding-15.0.0.txt */
    else
        print_message("no mapping count known for %s\n", v);
}

static void test_fold_maps_known_code_points(void **state)
{
    assert_int_equal(sm_text_fold('A'), 'a');
    assert_int_equal(sm_text_fold('a'), 'a');
    assert_int_equal(sm_text_fold('_'), '_');
    assert_int_equal(sm_text_fold(0x212a), 'k');
    assert_int_equal(sm_text_fold(0x1e9e), 0xdf);
    assert_int_equal(sm_text_fold(0xdf), 0xdf);
    assert_int_equal(sm_text_fold(0x3c2), 0x3c3);
    assert_int_equal(sm_text_fold(0x3a3), 0x3c3);
    assert_int_equal(sm_text_fold(0xab70), 0x13a0);
    assert_int_equal(sm_text_fold(0x13a0), 0x13a0);
    assert_int_equal(sm_text_fold(0x10400), 0x10428);
    assert_int_equal(sm_text_fold(0x1e921), 0x1e943); /* the last mapping in 15.0 */
    assert_int_equal(sm_text_fold(0x130), 0x130);     /* İ: F and T only */
    assert_int_equal(sm_text_fold(0x131), 0x131);
    assert_int_equal(sm_text_fold(0x49), 0x69);       /* I: C (its T line is not taken) */
}

static void test_version_names_revision_and_unicode_data(void **state)
{
    const char *v = sm_text_ci_version();
    assert_non_null(strstr(v, "fold-"));
    assert_non_null(strstr(v, "/unicode-"));
    assert_ptr_equal(v, sm_text_ci_version()); /* static */
}

/* ---- no locale ------------------------------------------------------------------ */

static void answers(int out[COUNT(sample)][COUNT(sample)])
{
    for (size_t i = 0; i < COUNT(sample); i++)
        for (size_t j = 0; j < COUNT(sample); j++)
            out[i][j] = cmp(sample[i], sample[j]);
}

/* The same answers whatever the process or thread locale says, and the
 * known pairs hold under the plain "C" locale too. The other half of this
 * property, C.UTF-8 missing from the machine, is unit_text_fold_no_c_utf8. */
static void test_answers_do_not_depend_on_the_locale(void **state)
{
    enum { N = COUNT(sample) };
    static int base[N][N], other[N][N];
    answers(base);

    setlocale(LC_ALL, "C");
    answers(other);
    assert_memory_equal(base, other, sizeof base);
    test_simple_case_folding_pairs_compare_equal(state);

    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    assert_non_null(c);
    locale_t was = uselocale(c);
    answers(other);
    assert_memory_equal(base, other, sizeof base);
    uselocale(was);
    freelocale(c);

    locale_t utf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
    if (utf8) {
        freelocale(utf8);
        assert_non_null(setlocale(LC_ALL, "C.UTF-8"));
        answers(other);
        assert_memory_equal(base, other, sizeof base);
        setlocale(LC_ALL, "C");
    }
}

#ifdef SMPOST_TEST_NO_C_UTF8
/* -Wl,--wrap=newlocale sends every newlocale() call linked into this binary
 * (sm_text.o's included) here: no UTF-8 locale exists. */
locale_t __real_newlocale(int mask, const char *name, locale_t base);
locale_t __wrap_newlocale(int mask, const char *name, locale_t base);
locale_t __wrap_newlocale(int mask, const char *name, locale_t base)
{
    if (strstr(name, "UTF-8") || strstr(name, "utf8")) {
        errno = ENOENT;
        return (locale_t)0;
    }
    return __real_newlocale(mask, name, base);
}
#endif

/* The run without C.UTF-8 must mean what it says, else it tests nothing
 * new: the locale really cannot be made in this process. */
static void test_the_no_c_utf8_run_has_no_c_utf8(void **state)
{
#ifdef SMPOST_TEST_NO_C_UTF8
    assert_null(newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0));
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_no_c_utf8_run_has_no_c_utf8),
        cmocka_unit_test(test_simple_case_folding_pairs_compare_equal),
        cmocka_unit_test(test_folding_applies_inside_words),
        cmocka_unit_test(test_text_outside_simple_folding_stays_distinct),
        cmocka_unit_test(test_order_is_by_folded_code_point),
        cmocka_unit_test(test_invalid_utf8_compares_by_bytes_after_every_character),
        cmocka_unit_test(test_order_is_total_over_a_sample),
        cmocka_unit_test(test_answers_do_not_depend_on_the_locale),
        cmocka_unit_test(test_fold_is_idempotent_over_every_code_point),
        cmocka_unit_test(test_fold_maps_known_code_points),
        cmocka_unit_test(test_version_names_revision_and_unicode_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
