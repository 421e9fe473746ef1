/* SPDX-License-Identifier: Apache-2.0 */
/* test_page_cursor.c — the keyset cursor's codec (query-api/page_cursor.h):
 * what it writes decodes to the same place, and anything it could not have
 * written is refused. */
#include "page_cursor.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#define ID "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

static void test_a_cursor_decodes_to_the_place_it_was_made_from(void **state)
{
    (void)state;
    const int64_t dates[] = {0, 1, 1764198000000LL, PAGE_CURSOR_MAX_MS};
    const char *ids[] = {ID, "00000000-0000-0000-0000-000000000000",
                         "ffffffff-ffff-ffff-ffff-ffffffffffff", "3F2504E0-4F89-41D3-9A0C-0305E82C3301"};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++) {
            char text[PAGE_CURSOR_LEN + 1];
            assert_true(page_cursor_encode(dates[i], ids[j], text));
            assert_int_equal(strlen(text), PAGE_CURSOR_LEN);
            assert_int_equal(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789-_"),
                             PAGE_CURSOR_LEN); /* safe in a query string as it is */
            page_cursor c;
            assert_true(page_cursor_decode(text, &c));
            assert_int_equal(c.date_posted_ms, dates[i]);
            sm_uuid_str canon;
            assert_true(sm_uuid_parse(ids[j], canon));
            assert_string_equal(c.id, canon); /* canonical, lower case */
        }
}

/* The format is pinned: the example in docs/openapi.yaml, for the post
 * of 2026-11-25T08:00:00.000Z with this id. */
static void test_the_documented_cursor_is_the_one_written(void **state)
{
    (void)state;
    char text[PAGE_CURSOR_LEN + 1];
    assert_true(page_cursor_encode(1795593600000LL, "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5", text));
    assert_string_equal(text, "AQAAAaIRt_wAHC0-T1prTH2On6CxwtPk9Q");
}

/* A comment cursor (PAGE_CURSOR_COMMENTS) round-trips like a list's, and
 * neither is taken for the other: a list's cursor sent to a post's
 * comments (or the reverse) is refused, not read as a place. */
static void test_comment_cursors_round_trip_and_are_not_list_cursors(void **state)
{
    (void)state;
    char list[PAGE_CURSOR_LEN + 1], comments[PAGE_CURSOR_LEN + 1];
    assert_true(page_cursor_encode(1795593600000LL, ID, list));
    assert_true(page_cursor_encode_as(PAGE_CURSOR_COMMENTS, 1795593600000LL, ID, comments));
    assert_int_equal(strlen(comments), PAGE_CURSOR_LEN);
    assert_string_not_equal(list, comments);
    page_cursor c = {0};
    assert_true(page_cursor_decode_as(PAGE_CURSOR_COMMENTS, comments, &c));
    assert_int_equal(c.date_posted_ms, 1795593600000LL);
    assert_string_equal(c.id, ID);
    assert_false(page_cursor_decode(comments, &c));
    assert_false(page_cursor_decode_as(PAGE_CURSOR_COMMENTS, list, &c));
    assert_true(page_cursor_decode_as(PAGE_CURSOR_FORMAT, list, &c)); /* what decode is */
    /* the same limits as a list's */
    assert_false(page_cursor_encode_as(PAGE_CURSOR_COMMENTS, -1, ID, comments));
    assert_false(page_cursor_encode_as(PAGE_CURSOR_COMMENTS, PAGE_CURSOR_MAX_MS + 1, ID,
                                       comments));
    assert_false(page_cursor_encode_as(PAGE_CURSOR_COMMENTS, 5, "x", comments));
    assert_false(page_cursor_encode_as(0, 5, ID, comments));
    assert_false(page_cursor_encode_as(256, 5, ID, comments));
    /* pinned: docs/openapi.yaml's example of a comment cursor */
    assert_true(page_cursor_encode_as(PAGE_CURSOR_COMMENTS, 1795593600000LL,
                                      "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5", comments));
    assert_string_equal(comments, "AgAAAaIRt_wAHC0-T1prTH2On6CxwtPk9Q");
}

static void test_encode_refuses_what_no_post_can_have(void **state)
{
    (void)state;
    char text[PAGE_CURSOR_LEN + 1] = "untouched";
    assert_false(page_cursor_encode(-1, ID, text));
    assert_false(page_cursor_encode(PAGE_CURSOR_MAX_MS + 1, ID, text));
    assert_false(page_cursor_encode(5, "not-a-uuid", text));
    assert_false(page_cursor_encode(5, NULL, text));
    assert_string_equal(text, "untouched");
}

/* Base64url of raw bytes, for cursors the encoder would never write. */
static void b64(const unsigned char *raw, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (i + 1 < n ? raw[i + 1] : 0) << 8 |
                     (i + 2 < n ? raw[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

static void test_decode_refuses_anything_the_encoder_could_not_write(void **state)
{
    (void)state;
    char good[PAGE_CURSOR_LEN + 1], bad[80];
    assert_true(page_cursor_encode(1764198000000LL, ID, good));
    page_cursor c;
    assert_true(page_cursor_decode(good, &c));
    const char *texts[] = {"", "abc", "null", "0", "'; DROP TABLE Post; --"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_false(page_cursor_decode(texts[i], &c));
    assert_false(page_cursor_decode(NULL, &c));
    snprintf(bad, sizeof bad, "%s=", good); /* padding */
    assert_false(page_cursor_decode(bad, &c));
    snprintf(bad, sizeof bad, "%.33s", good); /* one letter short */
    assert_false(page_cursor_decode(bad, &c));
    snprintf(bad, sizeof bad, "%sA", good); /* one too many */
    assert_false(page_cursor_decode(bad, &c));
    for (const char *x = "+/= .%"; *x; x++) { /* base64, not base64url; blanks */
        snprintf(bad, sizeof bad, "%s", good);
        bad[5] = *x;
        assert_false(page_cursor_decode(bad, &c));
    }
    snprintf(bad, sizeof bad, "%s", good); /* stray bits in the last letter */
    bad[PAGE_CURSOR_LEN - 1] = bad[PAGE_CURSOR_LEN - 1] == 'B' ? 'C' : 'B';
    assert_false(page_cursor_decode(bad, &c));

    unsigned char raw[25] = {PAGE_CURSOR_FORMAT};
    b64(raw, 25, bad);
    assert_true(page_cursor_decode(bad, &c)); /* the builder writes valid ones */
    raw[0] = PAGE_CURSOR_FORMAT + 1;          /* a format this binary does not know */
    b64(raw, 25, bad);
    assert_false(page_cursor_decode(bad, &c));
    raw[0] = PAGE_CURSOR_FORMAT;
    raw[1] = 0x80; /* a negative date */
    b64(raw, 25, bad);
    assert_false(page_cursor_decode(bad, &c));
    raw[1] = 0;
    raw[2] = 1; /* 2^48 ms: past year 9999 */
    b64(raw, 25, bad);
    assert_false(page_cursor_decode(bad, &c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_cursor_decodes_to_the_place_it_was_made_from),
        cmocka_unit_test(test_the_documented_cursor_is_the_one_written),
        cmocka_unit_test(test_encode_refuses_what_no_post_can_have),
        cmocka_unit_test(test_comment_cursors_round_trip_and_are_not_list_cursors),
        cmocka_unit_test(test_decode_refuses_anything_the_encoder_could_not_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
