/* SPDX-License-Identifier: Apache-2.0 */
/* test_http_encoding.c — gzip replies and ETags (common/http_gzip.h,
 * common/http_etag.h) as a specification: which Accept-Encoding values take
 * gzip, which types are compressed, that a compressed body inflates to the
 * same bytes (also on a second use of the thread's stream), and how
 * If-None-Match lists are compared. */
#include "http_etag.h"
#include "http_gzip.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_accept_encoding_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool gzip;
    } cases[] = {
        {"gzip", true},
        {"GZIP", true},
        {"x-gzip", true},
        {"gzip, deflate, br", true},
        {"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
        {"deflate, gzip;q=0.001", true},
        {"*", true},
        {"identity", false},
        {"deflate, br", false},
        {"gzip;q=0", false},
        {"gzip; q=0.000", false},
        {"*, gzip;q=0", false},   /* named outright: refused */
        {"*;q=0", false},
        {"gzip;q=0, x-gzip", true}, /* the alias still asks for it */
        {"gzipped", false},
        {"", false},
        {" , ,", false},
    };
    for (size_t i = 0; i < COUNT(cases); i++)
        if (http_accepts_gzip(cases[i].value) != cases[i].gzip)
            fail_msg("Accept-Encoding \"%s\": expected %s", cases[i].value,
                     cases[i].gzip ? "gzip" : "identity");
    assert_false(http_accepts_gzip(NULL));
}

static void test_text_types_are_compressible_and_binary_ones_are_not(void **state)
{
    (void)state;
    assert_true(http_gzip_compressible("application/json; charset=utf-8"));
    assert_true(http_gzip_compressible("text/plain; version=0.0.4; charset=utf-8"));
    assert_true(http_gzip_compressible("text/html; charset=utf-8"));
    assert_true(http_gzip_compressible("application/javascript; charset=utf-8"));
    assert_true(http_gzip_compressible("image/svg+xml"));
    assert_false(http_gzip_compressible("image/png"));
    assert_false(http_gzip_compressible("font/woff2"));
    assert_false(http_gzip_compressible("application/octet-stream"));
    assert_false(http_gzip_compressible(NULL));
}

static char *inflate_all(const char *in, size_t len, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK); /* gzip only */
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    inflateEnd(&z);
    return out;
}

static void test_gzip_inflates_to_the_same_bytes_every_time(void **state)
{
    (void)state;
    char *json = malloc(200000);
    size_t n = 0;
    n += (size_t)sprintf(json + n, "{\"posts\":[");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(json + n, "%s{\"id\":\"%08d\",\"message\":\"hello %d\"}",
                             i ? "," : "", i, i * 7919);
    n += (size_t)sprintf(json + n, "]}");
    /* twice: the second reply reuses the thread's reset stream */
    for (int round = 0; round < 2; round++) {
        char *gz = NULL;
        size_t gz_len = 0;
        assert_true(http_gzip(json, n - (size_t)round * 10, &gz, &gz_len));
        assert_true(gz_len < (n / 4));
        assert_int_equal((unsigned char)gz[0], 0x1f); /* gzip magic */
        assert_int_equal((unsigned char)gz[1], 0x8b);
        size_t back_len;
        char *back = inflate_all(gz, gz_len, &back_len);
        assert_int_equal(back_len, n - (size_t)round * 10);
        assert_memory_equal(back, json, back_len);
        free(back);
        free(gz);
    }
    free(json);
}

/* More threads than the pool keeps streams: each reply still inflates to
 * its own bytes (no stream shared by two replies at once), and the streams
 * made beyond the pool are freed (the ASan build's leak check). */
#define GZ_THREADS 12
#define GZ_ROUNDS 200

static void *gzip_many(void *arg)
{
    long id = (long)(size_t)arg;
    char body[4096];
    for (int r = 0; r < GZ_ROUNDS; r++) {
        int n = snprintf(body, sizeof body, "{\"thread\":%ld,\"round\":%d,\"pad\":\"", id, r);
        while (n < 3000)
            n += snprintf(body + n, sizeof body - (size_t)n, "%ld-%d ", id, r);
        char *gz = NULL;
        size_t gz_len = 0, back_len = 0;
        if (!http_gzip(body, (size_t)n, &gz, &gz_len))
            return (void *)1;
        char *back = inflate_all(gz, gz_len, &back_len);
        bool same = back_len == (size_t)n && memcmp(back, body, back_len) == 0;
        free(back);
        free(gz);
        if (!same)
            return (void *)1;
    }
    return NULL;
}

static void test_threads_compressing_at_once_each_get_their_own_bytes(void **state)
{
    (void)state;
    pthread_t t[GZ_THREADS];
    for (long i = 0; i < GZ_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, gzip_many, (void *)(size_t)i), 0);
    for (int i = 0; i < GZ_THREADS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_null(bad);
    }
}

static void test_etag_is_weak_and_follows_the_bytes(void **state)
{
    (void)state;
    char a[HTTP_ETAG_MAX], b[HTTP_ETAG_MAX], c[HTTP_ETAG_MAX];
    const char *v1 = "{\"posts\":[{\"id\":\"p\",\"version\":1}]}";
    const char *v2 = "{\"posts\":[{\"id\":\"p\",\"version\":2}]}";
    http_etag_of(v1, strlen(v1), a);
    http_etag_of(v1, strlen(v1), b);
    http_etag_of(v2, strlen(v2), c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 2 + 1 + 16 + 1);
    assert_memory_equal(a, "W/\"", 3);
    assert_int_equal(a[strlen(a) - 1], '"');
}

static void test_if_none_match_compares_weakly(void **state)
{
    (void)state;
    const char *tag = "W/\"0123456789abcdef\"";
    static const struct {
        const char *header;
        bool match;
    } cases[] = {
        {"W/\"0123456789abcdef\"", true},
        {"\"0123456789abcdef\"", true}, /* weak comparison ignores W/ */
        {"*", true},
        {"\"x\", W/\"0123456789abcdef\"", true},
        {"\"x\",W/\"0123456789abcdef\"", true},
        {"W/\"0123456789abcdee\"", false},
        {"W/\"0123456789abcdef", false},   /* unterminated */
        {"0123456789abcdef", false},       /* not quoted */
        {"W/\"0123456789abcdef\"x", false}, /* junk after a tag */
        {"\"0123456789abcde\"", false},
        {"", false},
    };
    for (size_t i = 0; i < COUNT(cases); i++)
        if (http_if_none_match(cases[i].header, tag) != cases[i].match)
            fail_msg("If-None-Match '%s': expected %s", cases[i].header,
                     cases[i].match ? "a match" : "no match");
    assert_false(http_if_none_match(NULL, tag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding_values),
        cmocka_unit_test(test_text_types_are_compressible_and_binary_ones_are_not),
        cmocka_unit_test(test_gzip_inflates_to_the_same_bytes_every_time),
        cmocka_unit_test(test_threads_compressing_at_once_each_get_their_own_bytes),
        cmocka_unit_test(test_etag_is_weak_and_follows_the_bytes),
        cmocka_unit_test(test_if_none_match_compares_weakly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
