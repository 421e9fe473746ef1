/* SPDX-License-Identifier: Apache-2.0 */
/* test_common.c — the pure helpers in common/ as a specification: UUIDs,
 * ISO-8601 time, text rules (UTF-8, blank, case-insensitive equality), JSON
 * request helpers, configuration precedence and --help, log quoting, and the
 * socket-free half of the HTTP edge (status table, content type, If-Match,
 * query strings, error replies). No network; the only "files" are in memory. */
#include "auth_mode.h"
#include "http_util.h"
#include "sm_config.h"
#include "sm_json.h"
#include "sm_log.h"
#include "sm_text.h"
#include "sm_time.h"
#include "sm_uuid.h"
#include "sm_version.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1795734301123LL /* 2026-11-26T23:05:01.123Z */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- sm_uuid ------------------------------------------------------------- */

static bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static void assert_canonical_version(const char *u, char version)
{
    assert_int_equal(strlen(u), SM_UUID_LEN);
    for (int i = 0; i < SM_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else if (!is_hex_lower(u[i]))
            fail_msg("'%s': position %d is not lower-case hex", u, i);
    }
    assert_int_equal(u[14], version);
    assert_non_null(strchr("89ab", u[19]));     /* RFC 9562 variant 10xx */
}

static void assert_canonical_v4(const char *u) { assert_canonical_version(u, '4'); }

static int cmp_uuid(const void *a, const void *b) { return strcmp(a, b); }

static void test_uuid_new_is_canonical_v4_and_unique(void **state)
{
    enum { N = 1000 };
    sm_uuid_str *ids = calloc(N, sizeof *ids);
    for (int i = 0; i < N; i++) {
        assert_true(sm_uuid_new(ids[i]));
        assert_canonical_v4(ids[i]);
    }
    qsort(ids, N, sizeof *ids, cmp_uuid);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

/* v7: the first 48 bits are the Unix time in ms, so ids made later sort
 * later (across milliseconds) and the store's indexes grow at one edge. */
static void test_uuid_new_v7_is_time_ordered_and_unique(void **state)
{
    (void)state;
    enum { N = 5000 };
    sm_uuid_str *ids = calloc(N, sizeof *ids);
    int64_t before = sm_now_ms();
    for (int i = 0; i < N; i++) {
        assert_true(sm_uuid_new_v7(ids[i]));
        assert_canonical_version(ids[i], '7');
    }
    int64_t after = sm_now_ms();
    for (int i = 0; i < N; i++) {
        char hex[13];
        memcpy(hex, ids[i], 8);
        memcpy(hex + 8, ids[i] + 9, 4);
        hex[12] = '\0';
        int64_t ms = strtoll(hex, NULL, 16);
        assert_in_range(ms, before, after);
        if (i > 0 && strncmp(ids[i - 1], ids[i], 13) > 0)
            fail_msg("'%s' made after '%s' sorts before it", ids[i], ids[i - 1]);
    }
    /* the random part differs within one millisecond too */
    qsort(ids, N, sizeof *ids, cmp_uuid);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

/* sm_random_bytes hands out a per-thread block of the kernel's output: no
 * byte may be handed out twice, whatever the sizes asked for (small draws
 * from the block, large ones straight from the kernel). */
static void test_random_bytes_never_repeat_across_draw_sizes(void **state)
{
    (void)state;
    enum { DRAWS = 400, MAXLEN = 300 };
    uint8_t *seen = calloc(DRAWS, MAXLEN);
    size_t lens[DRAWS];
    for (int i = 0; i < DRAWS; i++) {
        lens[i] = (size_t)(8 + (i * 37) % (MAXLEN - 8)); /* 8..299: both paths */
        memset(seen + (size_t)i * MAXLEN, 0xee, MAXLEN);
        assert_true(sm_random_bytes(seen + (size_t)i * MAXLEN, lens[i]));
    }
    /* any 8-byte window equal across two draws means a block was reused
     * (chance of a false alarm: about 2^-64 per pair) */
    for (int i = 0; i < DRAWS; i++)
        for (int j = i + 1; j < DRAWS; j++)
            if (memcmp(seen + (size_t)i * MAXLEN, seen + (size_t)j * MAXLEN, 8) == 0)
                fail_msg("draws %d and %d begin with the same 8 bytes", i, j);
    for (int i = 0; i < DRAWS; i++) {
        const uint8_t *d = seen + (size_t)i * MAXLEN;
        size_t zeros = 0;
        for (size_t k = 0; k < lens[i]; k++)
            zeros += d[k] == 0;
        assert_true(zeros < lens[i] / 4 + 4); /* wiped bytes must not be handed out */
        assert_int_equal(d[lens[i]], 0xee);    /* nothing written past len */
    }
    free(seen);
}

static void test_uuid_parse_accepts_dotnet_forms_and_canonicalises(void **state)
{
    const char *canon = "0123abcd-4567-89ef-abcd-0123456789ab";
    const char *forms[] = {
        "0123abcd-4567-89ef-abcd-0123456789ab",   "0123ABCD-4567-89EF-ABCD-0123456789AB",
        "0123abcd456789efabcd0123456789ab",       "0123ABCD456789EFabcd0123456789AB",
        "{0123abcd-4567-89ef-abcd-0123456789ab}", "{0123abcd456789efabcd0123456789ab}",
    };
    for (size_t i = 0; i < COUNT(forms); i++) {
        sm_uuid_str out;
        memset(out, 'x', sizeof out);
        if (!sm_uuid_parse(forms[i], out))
            fail_msg("'%s' was rejected", forms[i]);
        assert_string_equal(out, canon);
        assert_true(sm_uuid_parse(forms[i], NULL)); /* validate only */
    }
}

static void test_uuid_parse_rejects_malformed_text(void **state)
{
    const char *bad[] = {
        "",
        "0123abcd-4567-89ef-abcd-0123456789a",     /* 35 */
        "0123abcd-4567-89ef-abcd-0123456789abc",   /* 37 */
        "0123abcd456789efabcd0123456789a",         /* 31 */
        "0123abcd456789efabcd0123456789abc",       /* 33 */
        "0123abcg-4567-89ef-abcd-0123456789ab",    /* non-hex */
        "0123abcd-4567-89ef-abcd-0123456789a ",    /* space */
        "0123abc-d4567-89ef-abcd-0123456789ab",    /* misplaced dash */
        "0123abcd-456789ef--abcd-0123456789ab",
        "0123abcd045670890ef0abcd00123456789ab",   /* 36 without dashes */
        "0123abcd_4567_89ef_abcd_0123456789ab",
        "{0123abcd-4567-89ef-abcd-0123456789ab",   /* unbalanced braces */
        "0123abcd-4567-89ef-abcd-0123456789ab}",
        "{0123abcd456789efabcd0123456789ab",
        "{{0123abcd-4567-89ef-abcd-0123456789ab}}",
        "{0123abcd-4567-89ef-abcd-0123456789ab)",  /* mismatched brackets */
        "(0123abcd-4567-89ef-abcd-0123456789ab}",
        "{}",
        "(0123abcd-4567-89ef-abcd-0123456789ab)",
    };
    for (size_t i = 0; i < COUNT(bad); i++)
        if (sm_uuid_parse(bad[i], NULL))
            fail_msg("'%s' was accepted", bad[i]);
}

/* ---- sm_time --------------------------------------------------------------- */

static void assert_formats(int64_t ms, const char *want)
{
    sm_time_str out;
    sm_time_format(ms, out);
    assert_string_equal(out, want);
}

static void test_time_format_known_instants(void **state)
{
    assert_formats(0, "1970-01-01T00:00:00.000Z");
    assert_formats(T0, "2026-11-26T23:05:01.123Z");
    assert_formats(1, "1970-01-01T00:00:00.001Z");
    assert_formats(999, "1970-01-01T00:00:00.999Z");
    assert_formats(1000, "1970-01-01T00:00:01.000Z");
    assert_formats(-1, "1969-12-31T23:59:59.999Z");      /* floor, not truncation */
    assert_formats(-1000, "1969-12-31T23:59:59.000Z");
    assert_formats(-14182940000LL, "1969-07-20T20:17:40.000Z");
    assert_formats(951782400000LL, "2000-02-29T00:00:00.000Z");
}

static void assert_parses(const char *text, int64_t want)
{
    int64_t ms = 42;
    if (!sm_time_parse(text, &ms))
        fail_msg("'%s' was rejected", text);
    assert_int_equal(ms, want);
}

static void test_time_parse_accepts_zones_and_fractions(void **state)
{
    assert_parses("2026-11-26T23:05:01.123Z", T0);
    assert_parses("2026-11-26T23:05:01.123z", T0);
    assert_parses("2026-11-27T00:05:01.123+01:00", T0);
    assert_parses("2026-11-26T17:35:01.123-05:30", T0);
    assert_parses("2026-11-26T23:05:01.123+00:00", T0);
    assert_parses("2026-11-26T23:05:01Z", T0 - 123);
    assert_parses("2026-11-26T23:05:01.1Z", T0 - 23);
    assert_parses("2026-11-26T23:05:01.12Z", T0 - 3);
    assert_parses("2026-11-26T23:05:01.1239Z", T0);       /* truncated, not rounded */
    assert_parses("2026-11-26T23:05:01.123999999Z", T0);  /* 9 digits */
    assert_parses("1969-12-31T23:59:59.999Z", -1);
    assert_parses("1970-01-01T00:00:00Z", 0);
    assert_parses("2024-02-29T00:00:00Z", 1709164800000LL); /* leap year */
    assert_parses("2000-02-29T00:00:00Z", 951782400000LL);
}

static void test_time_parse_rejects_malformed_text(void **state)
{
    const char *bad[] = {
        "",
        "2026-11-26T23:05:01.123",     /* no zone */
        "2026-11-26T23:05:01",
        "2026-11-26 23:05:01Z",
        "2026-13-01T00:00:00Z",        /* month */
        "2026-00-01T00:00:00Z",
        "2026-11-31T00:00:00Z",        /* day */
        "2026-11-00T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",        /* not a leap year */
        "1900-02-29T00:00:00Z",
        "2026-11-26T24:00:00Z",        /* hour */
        "2026-11-26T23:60:00Z",
        "2026-11-26T23:05:61Z",
        "2026-11-26T23:05:01.Z",       /* empty fraction */
        "2026-11-26T23:05:01.1234567890Z",
        "2026-11-26T23:05:01ZZ",       /* trailing junk */
        "2026-11-26T23:05:01Z ",
        "2026-11-26T23:05:01+01",
        "2026-11-26T23:05:01+0100",
        "2026-11-26T23:05:01+01:00x",
        "26-11-26T23:05:01Z",
        "2026-1-26T23:05:01Z",
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        int64_t ms;
        if (sm_time_parse(bad[i], &ms))
            fail_msg("'%s' was accepted", bad[i]);
    }
}

static void test_time_format_then_parse_round_trips(void **state)
{
    const int64_t samples[] = {0, 1, -1, T0, -14182939999LL, 951782399999LL, 4102444799999LL};
    for (size_t i = 0; i < COUNT(samples); i++) {
        sm_time_str s;
        sm_time_format(samples[i], s);
        assert_parses(s, samples[i]);
    }
}

/* ---- sm_text ------------------------------------------------------------------ */

static bool utf8(const char *s, size_t len) { return sm_utf8_valid(s, len); }
#define VALID(lit) utf8(lit, sizeof(lit) - 1)

static void test_utf8_valid_accepts_well_formed_text(void **state)
{
    assert_true(utf8("", 0));
    assert_true(VALID("plain ASCII"));
    assert_true(VALID("\xc3\xa9"));                 /* é */
    assert_true(VALID("\xe2\x82\xac"));             /* € */
    assert_true(VALID("\xf0\x9f\x98\x80"));         /* 😀 */
    assert_true(VALID("\xef\xbf\xbf"));             /* U+FFFF */
    assert_true(VALID("\xf4\x8f\xbf\xbf"));         /* U+10FFFF */
    assert_true(VALID("\xed\x9f\xbf\xee\x80\x80")); /* U+D7FF, U+E000 around surrogates */
}

static void test_utf8_valid_rejects_malformed_text(void **state)
{
    assert_false(VALID("\xc0\xaf"));                 /* overlong '/' */
    assert_false(VALID("\xc1\xbf"));
    assert_false(VALID("\xe0\x80\xaf"));
    assert_false(VALID("\xf0\x80\x80\xaf"));
    assert_false(VALID("\xf0\x8f\xbf\xbf"));         /* overlong U+FFFF */
    assert_false(VALID("\xed\xa0\x80"));             /* U+D800 */
    assert_false(VALID("\xed\xbf\xbf"));             /* U+DFFF */
    assert_false(VALID("\xf4\x90\x80\x80"));         /* U+110000 */
    assert_false(VALID("\xf5\x80\x80\x80"));
    assert_false(VALID("\xf8\x88\x80\x80\x80"));     /* 5-byte form */
    assert_false(VALID("\xff"));
    assert_false(VALID("\x80"));                     /* lone continuation */
    assert_false(VALID("ok\xc3"));                   /* truncated sequences */
    assert_false(VALID("\xe2\x82"));
    assert_false(VALID("\xf0\x9f\x98"));
    assert_false(VALID("\xc3\x28"));                 /* bad continuation */
    assert_false(VALID("a\0b"));                     /* embedded NUL */
    assert_false(utf8("\xc3\xa9", 1));              /* len cuts a sequence */
}

static void test_text_blank_means_only_white_space(void **state)
{
    const char *blank[] = {"", " ", "\t\r\n\v\f", "\xc2\xa0", "\xe3\x80\x80", "\xe1\x9a\x80",
                           "\xe2\x80\x80\xe2\x80\x8a", "\xe2\x80\xa8\xe2\x80\xa9",
                           "\xe2\x80\xaf\xe2\x81\x9f", " \xc2\xa0 \xe3\x80\x80\t"};
    assert_true(sm_text_blank(NULL));
    for (size_t i = 0; i < COUNT(blank); i++)
        if (!sm_text_blank(blank[i]))
            fail_msg("blank text #%zu was not blank", i);
    const char *not_blank[] = {"a", "  a  ", "\xc2\xa0x", "\xe2\x80\x8b" /* zero-width */,
                               "\xef\xbb\xbf" /* BOM */, "\xff", " \xc3"};
    for (size_t i = 0; i < COUNT(not_blank); i++)
        if (sm_text_blank(not_blank[i]))
            fail_msg("text #%zu was taken for blank", i);
}

static void test_text_equal_ci_folds_case_including_non_ascii(void **state)
{
    assert_true(sm_text_equal_ci("ALICE", "alice"));
    assert_true(sm_text_equal_ci("", ""));
    assert_true(sm_text_equal_ci("\xc3\x89MILE", "\xc3\xa9mile"));                /* ÉMILE */
    assert_true(sm_text_equal_ci("\xc3\x91" "and\xc3\xba", "\xc3\xb1" "AND\xc3\x9a")); /* Ñandú */
    assert_true(sm_text_equal_ci("\xce\xa3\xce\x9f\xce\xa6", "\xcf\x83\xce\xbf\xcf\x86"));
    assert_false(sm_text_equal_ci("alice", "alic"));
    assert_false(sm_text_equal_ci("alice", "alicea"));
    assert_false(sm_text_equal_ci("alice", "alise"));
    assert_false(sm_text_equal_ci("\xc3\xa9mile", "emile"));
    assert_true(sm_text_equal_ci("x\xff", "X\xff"));  /* invalid tail: bytes */
    assert_false(sm_text_equal_ci("\xff" "A", "\xff" "a"));
}

/* ---- sm_json -------------------------------------------------------------------- */

static json_t *obj(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_json_get_ci_ignores_case_but_prefers_exact_match(void **state)
{
    json_t *j = obj("{\"Author\":\"a\"}");
    assert_string_equal(json_string_value(sm_json_get_ci(j, "author")), "a");
    assert_string_equal(json_string_value(sm_json_get_ci(j, "AUTHOR")), "a");
    assert_null(sm_json_get_ci(j, "autho"));
    json_decref(j);
    const char *orders[] = {"{\"AUTHOR\":\"upper\",\"author\":\"exact\"}",
                            "{\"author\":\"exact\",\"AUTHOR\":\"upper\"}"};
    for (int i = 0; i < 2; i++) {
        j = obj(orders[i]);
        assert_string_equal(json_string_value(sm_json_get_ci(j, "author")), "exact");
        assert_string_equal(json_string_value(sm_json_get_ci(j, "AUTHOR")), "upper");
        json_decref(j);
    }
}

static void assert_req_string_fails(const char *body, size_t max, const char *want)
{
    json_t *j = obj(body);
    const char *out = NULL;
    sm_error err = {0};
    assert_int_equal(sm_json_req_string(j, "author", max, &out, &err), SM_ERR_INVALID);
    assert_int_equal(err.status, SM_ERR_INVALID);
    assert_string_equal(err.message, want);
    json_decref(j);
}

static void test_json_req_string_names_the_field_in_its_errors(void **state)
{
    assert_req_string_fails("{}", 64, "The author field is required.");
    assert_req_string_fails("{\"author\":null}", 64, "The author field is required.");
    assert_req_string_fails("{\"author\":5}", 64, "The author field must be a string.");
    assert_req_string_fails("{\"author\":[\"a\"]}", 64, "The author field must be a string.");
    assert_req_string_fails("{\"author\":\"abcde\"}", 4, "The author field must be at most 4 bytes.");
    /* the limit counts bytes, not characters: é is two */
    assert_req_string_fails("{\"author\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", 5,
                            "The author field must be at most 5 bytes.");

    json_t *j = obj("{\"Author\":\"\xc3\xa9\xc3\xa9\"}");
    const char *out = NULL;
    sm_error err = {0};
    assert_int_equal(sm_json_req_string(j, "author", 4, &out, &err), SM_OK);
    assert_string_equal(out, "\xc3\xa9\xc3\xa9");
    json_decref(j);
}

static void test_json_req_uuid_canonicalises_or_names_the_field(void **state)
{
    json_t *j = obj("{\"CommentId\":\"0123ABCD456789EFABCD0123456789AB\",\"bad\":\"x\"}");
    char out[37];
    sm_error err = {0};
    assert_int_equal(sm_json_req_uuid(j, "commentId", out, &err), SM_OK);
    assert_string_equal(out, "0123abcd-4567-89ef-abcd-0123456789ab");
    assert_int_equal(sm_json_req_uuid(j, "bad", out, &err), SM_ERR_INVALID);
    assert_string_equal(err.message, "The bad field must be a UUID.");
    json_decref(j);
}

static void assert_body_rejected(const char *body, size_t len)
{
    static int dummy;
    json_t *out = (json_t *)&dummy; /* must be reset to NULL */
    sm_error err = {0};
    if (sm_json_parse_object(body, len, &out, &err) != SM_ERR_INVALID)
        fail_msg("body '%.*s' was accepted", (int)len, body ? body : "");
    assert_null(out);
    assert_true(err.message[0] != '\0');
}
#define REJECTS(lit) assert_body_rejected(lit, sizeof(lit) - 1)

static void test_json_parse_object_accepts_only_one_clean_object(void **state)
{
    json_t *out = NULL;
    sm_error err = {0};
    const char ok[] = " {\"author\":\"\xc3\xa9\",\"n\":1} ";
    assert_int_equal(sm_json_parse_object(ok, sizeof ok - 1, &out, &err), SM_OK);
    assert_true(json_is_object(out));
    json_decref(out);

    assert_body_rejected(NULL, 0);
    REJECTS("");
    REJECTS("   ");
    REJECTS("{");
    REJECTS("{\"a\":1} {}");
    REJECTS("[1,2]");
    REJECTS("[]");
    REJECTS("\"text\"");
    REJECTS("42");
    REJECTS("null");
    REJECTS("{\"a\":\"\xff\xfe\"}");       /* invalid UTF-8 bytes */
    REJECTS("{\"a\":\"\xc0\xaf\"}");
    REJECTS("{\"a\":\"x\\u0000y\"}");     /* NUL character */
    REJECTS("{\"a\":1}\0");               /* NUL byte after the object */
}

/* ---- sm_config -------------------------------------------------------------------------- */

typedef struct config {
    char *name;
    long port;
    sm_log_level level;
    char *optional;
} config;

#define NOPTS 4

static void options(config *c, sm_option o[NOPTS])
{
    sm_option table[NOPTS] = {
        {"name", "SMTEST_NAME", SM_OPT_STRING, "dflt", 0, 0, "a name", &c->name},
        {"port", "SMTEST_PORT", SM_OPT_INT, "5001", 1, 65535, "TCP port", &c->port},
        {"log-level", "SMTEST_LOG_LEVEL", SM_OPT_LOG_LEVEL, "info", 0, 0, "log level", &c->level},
        {"optional", "SMTEST_OPTIONAL", SM_OPT_STRING, NULL, 0, 0, "maybe unset", &c->optional},
    };
    memcpy(o, table, sizeof table);
}

static int config_setup(void **state)
{
    unsetenv("SMTEST_NAME");
    unsetenv("SMTEST_PORT");
    unsetenv("SMTEST_LOG_LEVEL");
    unsetenv("SMTEST_OPTIONAL");
    return 0;
}

/* Loads argv (NULL-terminated, after the program name) into c. */
static sm_config_result load(config *c, sm_option o[NOPTS], const char *const *args, FILE *out,
                             sm_error *err)
{
    char *argv[16] = {"prog"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    memset(c, 0, sizeof *c);
    options(c, o);
    return sm_config_load(o, NOPTS, argc, argv, "prog", "A test program.", out, err);
}

static void test_config_defaults_apply_when_nothing_is_set(void **state)
{
    config c;
    sm_option o[NOPTS];
    sm_error err = {0};
    assert_int_equal(load(&c, o, NULL, stdout, &err), SM_CONFIG_RUN);
    assert_string_equal(c.name, "dflt");
    assert_int_equal(c.port, 5001);
    assert_int_equal(c.level, SM_LOG_INFO);
    assert_null(c.optional);
    sm_config_free(o, NOPTS);
    assert_null(c.name);
}

static void test_config_env_overrides_default_and_argv_overrides_env(void **state)
{
    setenv("SMTEST_NAME", "from-env", 1);
    setenv("SMTEST_PORT", "6000", 1);
    setenv("SMTEST_LOG_LEVEL", "WARN", 1);
    config c;
    sm_option o[NOPTS];
    sm_error err = {0};
    assert_int_equal(load(&c, o, NULL, stdout, &err), SM_CONFIG_RUN);
    assert_string_equal(c.name, "from-env");
    assert_int_equal(c.port, 6000);
    assert_int_equal(c.level, SM_LOG_WARN);
    sm_config_free(o, NOPTS);

    const char *args[] = {"--name", "from-argv", "--port=7000", "--log-level=debug",
                          "--optional", "", NULL};
    assert_int_equal(load(&c, o, args, stdout, &err), SM_CONFIG_RUN);
    assert_string_equal(c.name, "from-argv");
    assert_int_equal(c.port, 7000);
    assert_int_equal(c.level, SM_LOG_DEBUG);
    assert_string_equal(c.optional, "");
    sm_config_free(o, NOPTS);

    const char *eq_form[] = {"--name=a=b", "--port", "7001", NULL};
    assert_int_equal(load(&c, o, eq_form, stdout, &err), SM_CONFIG_RUN);
    assert_string_equal(c.name, "a=b");
    assert_int_equal(c.port, 7001);
    sm_config_free(o, NOPTS);
}

static void assert_config_error(const char *const *args, const char *needle)
{
    config c;
    sm_option o[NOPTS];
    sm_error err = {0};
    assert_int_equal(load(&c, o, args, stdout, &err), SM_CONFIG_EXIT_ERROR);
    if (!strstr(err.message, needle))
        fail_msg("message '%s' does not name '%s'", err.message, needle);
    sm_config_free(o, NOPTS);
}

static void test_config_bad_values_stop_with_a_message_naming_the_source(void **state)
{
    const char *out_of_range[] = {"--port", "70000", NULL};
    assert_config_error(out_of_range, "--port");
    const char *zero[] = {"--port=0", NULL};
    assert_config_error(zero, "--port");
    const char *not_int[] = {"--port", "12abc", NULL};
    assert_config_error(not_int, "--port");
    const char *bad_level[] = {"--log-level", "loud", NULL};
    assert_config_error(bad_level, "--log-level");
    const char *unknown[] = {"--bogus", "1", NULL};
    assert_config_error(unknown, "--bogus");
    const char *prefix[] = {"--nam=x", NULL};
    assert_config_error(prefix, "--nam");
    const char *no_value[] = {"--port", NULL};
    assert_config_error(no_value, "--port");
    const char *stray[] = {"stray", NULL};
    assert_config_error(stray, "stray");

    setenv("SMTEST_PORT", "99999", 1);
    assert_config_error(NULL, "SMTEST_PORT");
    setenv("SMTEST_PORT", "-3", 1);
    assert_config_error(NULL, "SMTEST_PORT");
    unsetenv("SMTEST_PORT");
    setenv("SMTEST_LOG_LEVEL", "verbose", 1);
    assert_config_error(NULL, "SMTEST_LOG_LEVEL");
}

static void test_config_empty_env_var_counts_as_unset(void **state)
{
    setenv("SMTEST_NAME", "", 1);
    setenv("SMTEST_PORT", "", 1);
    config c;
    sm_option o[NOPTS];
    sm_error err = {0};
    assert_int_equal(load(&c, o, NULL, stdout, &err), SM_CONFIG_RUN);
    assert_string_equal(c.name, "dflt");
    assert_int_equal(c.port, 5001);
    sm_config_free(o, NOPTS);
}

static void test_config_help_lists_every_flag_and_variable(void **state)
{
    const char *flags[] = {"-h", "--help"};
    for (int i = 0; i < 2; i++) {
        static char buf[4096];
        memset(buf, 0, sizeof buf);
        FILE *out = fmemopen(buf, sizeof buf - 1, "w");
        assert_non_null(out);
        config c;
        sm_option o[NOPTS];
        sm_error err = {0};
        const char *args[] = {"--port=7000", flags[i], NULL};
        assert_int_equal(load(&c, o, args, out, &err), SM_CONFIG_EXIT_OK);
        fclose(out);
        const char *want[] = {"prog", "A test program.", "--name", "SMTEST_NAME", "--port",
                              "SMTEST_PORT", "--log-level", "SMTEST_LOG_LEVEL", "--optional",
                              "SMTEST_OPTIONAL", "5001", "--help"};
        for (size_t k = 0; k < COUNT(want); k++)
            if (!strstr(buf, want[k]))
                fail_msg("usage lacks '%s':\n%s", want[k], buf);
        sm_config_free(o, NOPTS);
    }
}

/* --version: the project's version and the commit, then exit 0 without
 * reading the rest (a bad value after it does not matter). */
static void test_config_version_prints_the_build_s_version(void **state)
{
    (void)state;
    static char buf[256];
    memset(buf, 0, sizeof buf);
    FILE *out = fmemopen(buf, sizeof buf - 1, "w");
    config c;
    sm_option o[NOPTS];
    sm_error err = {0};
    const char *args[] = {"--version", "--port=nope", NULL};
    assert_int_equal(load(&c, o, args, out, &err), SM_CONFIG_EXIT_OK);
    fclose(out);
    char want[128];
    snprintf(want, sizeof want, "prog %s (commit %s)\n", sm_version(), sm_commit());
    assert_string_equal(buf, want);
    assert_string_not_equal(sm_version(), "unknown");
    assert_true(isdigit((unsigned char)sm_version()[0]));
    sm_config_free(o, NOPTS);
}

static void test_config_switch_takes_on_off_and_friends_and_names_a_bad_value(void **state)
{
    bool on = false;
    sm_option o[] = {
        {"swagger", "SMTEST_SWITCH", SM_OPT_BOOL, "on", 0, 0, "a switch", &on},
    };
    sm_error err = {0};
    char *argv[3] = {"prog", NULL, NULL};
    unsetenv("SMTEST_SWITCH");
    assert_int_equal(sm_config_load(o, 1, 1, argv, "prog", "s", stdout, &err), SM_CONFIG_RUN);
    assert_true(on);
    const char *no[] = {"off", "OFF", "false", "no", "0"};
    for (size_t i = 0; i < COUNT(no); i++) {
        on = true;
        setenv("SMTEST_SWITCH", no[i], 1);
        assert_int_equal(sm_config_load(o, 1, 1, argv, "prog", "s", stdout, &err), SM_CONFIG_RUN);
        assert_false(on);
    }
    const char *yes[] = {"on", "True", "yes", "1"};
    for (size_t i = 0; i < COUNT(yes); i++) {
        char flag[32];
        snprintf(flag, sizeof flag, "--swagger=%s", yes[i]);
        argv[1] = flag;
        on = false;
        assert_int_equal(sm_config_load(o, 1, 2, argv, "prog", "s", stdout, &err), SM_CONFIG_RUN);
        assert_true(on); /* the flag wins over SMTEST_SWITCH=0 */
    }
    argv[1] = "--swagger=maybe";
    assert_int_equal(sm_config_load(o, 1, 2, argv, "prog", "s", stdout, &err),
                     SM_CONFIG_EXIT_ERROR);
    assert_non_null(strstr(err.message, "--swagger"));
    assert_non_null(strstr(err.message, "'maybe'"));
    setenv("SMTEST_SWITCH", "enabled", 1);
    assert_int_equal(sm_config_load(o, 1, 1, argv, "prog", "s", stdout, &err),
                     SM_CONFIG_EXIT_ERROR);
    assert_non_null(strstr(err.message, "SMTEST_SWITCH"));
    unsetenv("SMTEST_SWITCH");
}

/* ---- sm_log_redact_url ------------------------------------------------------------------ */

static void test_log_redact_url_hides_user_info_and_passwords(void **state)
{
    (void)state;
    char buf[200];
    assert_string_equal(sm_log_redact_url("mongodb://app:s3cr%40t@db1:27017,db2/socialMedia"
                                          "?replicaSet=rs0", buf, sizeof buf),
                        "mongodb://***@db1:27017,db2/socialMedia?replicaSet=rs0");
    /* an '@' in the path or query is not user-info */
    assert_string_equal(sm_log_redact_url("mongodb://db1/x?appname=a@b", buf, sizeof buf),
                        "mongodb://db1/x?appname=a@b");
    assert_string_equal(sm_log_redact_url("mssql:host=h;port=1433;user=sa;Password=p;w;d;"
                                          "database=x", buf, sizeof buf),
                        "mssql:host=h;port=1433;user=sa;Password=***;w;d;database=x");
    assert_string_equal(sm_log_redact_url("mongodb://h/db?pwd=x&w=1", buf, sizeof buf),
                        "mongodb://h/db?pwd=***&w=1");
    /* a key that merely ends in "password" is another field */
    assert_string_equal(sm_log_redact_url("sqlite:/var/oldpassword=1", buf, sizeof buf),
                        "sqlite:/var/oldpassword=1");
    assert_string_equal(sm_log_redact_url("sqlite:var/events.db", buf, sizeof buf),
                        "sqlite:var/events.db");
    assert_string_equal(sm_log_redact_url(NULL, buf, sizeof buf), "");
    char tiny[12];
    assert_string_equal(sm_log_redact_url("mongodb://u:p@host/db", tiny, sizeof tiny),
                        "mongodb://*");
}

/* ---- sm_log_quote ----------------------------------------------------------------------- */

static void test_log_quote_escapes_quotes_backslashes_and_controls(void **state)
{
    char buf[128];
    assert_string_equal(sm_log_quote("plain", buf, sizeof buf), "\"plain\"");
    assert_string_equal(sm_log_quote(NULL, buf, sizeof buf), "\"\"");
    assert_string_equal(sm_log_quote("a \"b\" c\\d", buf, sizeof buf), "\"a \\\"b\\\" c\\\\d\"");
    assert_string_equal(sm_log_quote("l1\nl2\tx", buf, sizeof buf), "\"l1\\nl2\\tx\"");
    sm_log_quote("a\x01\x1b" "b\r", buf, sizeof buf);
    for (const char *p = buf; *p; p++)
        assert_true((unsigned char)*p >= 0x20); /* no raw control byte survives */
    assert_string_equal(sm_log_quote("caf\xc3\xa9", buf, sizeof buf), "\"caf\xc3\xa9\"");
}

static void test_log_quote_truncates_long_text_within_the_buffer(void **state)
{
    char text[300];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    char buf[33];
    memset(buf, '#', sizeof buf);
    sm_log_quote(text, buf, 32);
    size_t n = strlen(buf);
    assert_true(n < 32);
    assert_int_equal(buf[32], '#'); /* nothing written past cap */
    assert_int_equal(buf[0], '"');
    assert_string_equal(buf + n - 4, "...\"");

    char tiny[4] = "zzz";
    sm_log_quote(text, tiny, sizeof tiny); /* too small for anything: still a C string */
    assert_true(strlen(tiny) < sizeof tiny);
}

static void test_log_quote_keeps_text_that_fits(void **state)
{
    /* "hello" quoted is 7 bytes + NUL: an 8-byte buffer holds it whole. */
    char buf[8];
    assert_string_equal(sm_log_quote("hello", buf, sizeof buf), "\"hello\"");
    char big[16]; /* 13 + NUL */
    assert_string_equal(sm_log_quote("hello world", big, 14), "\"hello world\"");
}

/* ---- http_util (pure parts) --------------------------------------------------------------- */

static void test_http_status_for_maps_every_status(void **state)
{
    const struct { sm_status st; int code; } table[] = {
        {SM_OK, 200},           {SM_ERR_INVALID, 400},      {SM_ERR_RULE, 400},
        {SM_ERR_NOT_FOUND, 404}, {SM_ERR_METHOD, 405},       {SM_ERR_CONFLICT, 409},
        {SM_ERR_PRECONDITION, 412}, {SM_ERR_TOO_LARGE, 413}, {SM_ERR_MEDIA_TYPE, 415},
        {SM_ERR_UNAVAILABLE, 503}, {SM_ERR_INTERNAL, 500},  {(sm_status)99, 500},
        {SM_ERR_UNAUTHENTICATED, 401}, {SM_ERR_FORBIDDEN, 403},
    };
    for (size_t i = 0; i < COUNT(table); i++)
        assert_int_equal(http_status_for(table[i].st), table[i].code);
}

/* ---- auth_mode: protected mode and bearer headers ------------------------------------------ */

static void test_auth_loopback_addresses(void **state)
{
    (void)state;
    const char *yes[] = {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost",
                         "::ffff:127.0.0.1"};
    const char *no[] = {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "127.0.0.1x", "", "1270.0.0.1",
                        "127.0.0.256", "example.com", NULL};
    for (size_t i = 0; i < COUNT(yes); i++)
        if (!auth_listen_is_loopback(yes[i]))
            fail_msg("'%s' not taken for loopback", yes[i]);
    for (size_t i = 0; i < COUNT(no); i++)
        if (auth_listen_is_loopback(no[i]))
            fail_msg("'%s' taken for loopback", no[i] ? no[i] : "(null)");
}

static void test_auth_mode_protected_mode(void **state)
{
    (void)state;
    auth_mode m = AUTH_MODE_JWT;
    sm_error err = {0};
    assert_int_equal(auth_mode_resolve(NULL, "127.0.0.1", &m, &err), SM_OK);
    assert_int_equal(m, AUTH_MODE_OFF);
    assert_int_equal(auth_mode_resolve("", "0.0.0.0", &m, &err), SM_ERR_INVALID);
    assert_non_null(strstr(err.message, "SMPOST_AUTH=off"));
    assert_int_equal(auth_mode_resolve("off", "0.0.0.0", &m, &err), SM_OK);
    assert_int_equal(m, AUTH_MODE_OFF);
    assert_int_equal(auth_mode_resolve("jwt", "127.0.0.1", &m, &err), SM_OK);
    assert_int_equal(m, AUTH_MODE_JWT);
    assert_int_equal(auth_mode_resolve("JWT", "127.0.0.1", &m, &err), SM_ERR_INVALID);
}

static void test_auth_bearer_token_and_401_reply(void **state)
{
    (void)state;
    assert_string_equal(auth_bearer_token("Bearer abc.def.ghi"), "abc.def.ghi");
    assert_string_equal(auth_bearer_token("bearer   t"), "t");
    assert_null(auth_bearer_token("Bearer "));
    assert_null(auth_bearer_token("Basic YWxpY2U6eA=="));
    assert_null(auth_bearer_token("Bearerx t"));
    assert_null(auth_bearer_token(NULL));
    http_reply r = {0};
    auth_reply_unauthenticated(&r, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.extra_headers, "WWW-Authenticate: Bearer\r\n");
    auth_reply_unauthenticated(&r, "token \"expired\"");
    assert_string_equal(r.extra_headers, "WWW-Authenticate: Bearer error=\"invalid_token\", "
                                         "error_description=\"token 'expired'\"\r\n");
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "unauthenticated");
    http_reply_free(&r);
}

static void test_http_is_json_type(void **state)
{
    const char *yes[] = {"application/json", "application/json; charset=utf-8",
                         "APPLICATION/JSON", "application/problem+json",
                         "Application/Merge-Patch+JSON;charset=UTF-8", " application/json"};
    const char *no[] = {"text/plain", "application/jsonx", "application/json-seq",
                        "text/json+xml", "application/+json", "", "json"};
    for (size_t i = 0; i < COUNT(yes); i++)
        if (!http_is_json_type(yes[i]))
            fail_msg("'%s' was not taken for JSON", yes[i]);
    for (size_t i = 0; i < COUNT(no); i++)
        if (http_is_json_type(no[i]))
            fail_msg("'%s' was taken for JSON", no[i]);
    assert_false(http_is_json_type(NULL));
}

static void test_http_parse_if_match_rejects_overflowing_versions(void **state)
{
    (void)state;
    int64_t v = 42;
    assert_false(http_parse_if_match("99999999999999999999", &v));
    assert_false(http_parse_if_match("\"99999999999999999999\"", &v));
}

static void test_time_format_clamps_to_four_digit_years(void **state)
{
    (void)state;
    sm_time_str t;
    int64_t back;
    sm_time_format(253402300800000LL, t); /* year 10000 */
    assert_string_equal(t, "9999-12-31T23:59:59.999Z");
    assert_true(sm_time_parse(t, &back));
    sm_time_format(-70000000000000LL, t);
    assert_string_equal(t, "0001-01-01T00:00:00.000Z");
    assert_true(sm_time_parse(t, &back));
}

static void test_http_parse_if_match(void **state)
{
    const struct { const char *text; int64_t v; } ok[] = {
        {"\"5\"", 5}, {"W/\"5\"", 5}, {"5", 5}, {"*", -1}, {"\"0\"", 0}, {"\"123456\"", 123456},
    };
    for (size_t i = 0; i < COUNT(ok); i++) {
        int64_t v = 777;
        if (!http_parse_if_match(ok[i].text, &v))
            fail_msg("'%s' was rejected", ok[i].text);
        assert_int_equal(v, ok[i].v);
    }
    const char *bad[] = {"abc", "\"5", "5\"", "-1", "\"-1\"", "", "\"\"", "5x", "w/\"5\"",
                         "\"5\"x", "1.5"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        int64_t v = 777;
        if (http_parse_if_match(bad[i], &v))
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(v, 777);
    }
    int64_t v = 777;
    assert_false(http_parse_if_match(NULL, &v));
}

static void test_http_query_get_finds_and_decodes_values(void **state)
{
    char out[16];
    assert_true(http_query_get("a=1&b=x%20y+z&c=", "b", out, sizeof out));
    assert_string_equal(out, "x y z");
    assert_true(http_query_get("a=1&b=2", "a", out, sizeof out));
    assert_string_equal(out, "1");
    assert_true(http_query_get("xn=1&n=2", "n", out, sizeof out)); /* whole names only */
    assert_string_equal(out, "2");
    assert_true(http_query_get("a=1&c=", "c", out, sizeof out));
    assert_string_equal(out, "");
    assert_false(http_query_get("a=1&b=2", "z", out, sizeof out));
    assert_false(http_query_get(NULL, "a", out, sizeof out));
    assert_int_equal(http_query_get("a=0123456789abcdefXYZ", "a", out, sizeof out), -1); /* too long */
}

static void assert_error_reply(sm_status st, const char *message, int code, const char *error,
                               int retry_after)
{
    http_reply r = {0};
    http_reply_error(&r, st, message);
    assert_int_equal(r.status, code);
    assert_int_equal(r.retry_after, retry_after);
    assert_true(json_is_object(r.body));
    assert_int_equal(json_object_size(r.body), 2);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), error);
    const char *m = json_string_value(json_object_get(r.body, "message"));
    assert_non_null(m);
    if (message && sm_utf8_valid(message, strlen(message)))
        assert_string_equal(m, message);
    else
        assert_true(m[0] != '\0' && sm_utf8_valid(m, strlen(m)));
    http_reply_free(&r);
    assert_null(r.body);
}

static void test_http_reply_error_builds_message_and_code(void **state)
{
    assert_error_reply(SM_ERR_NOT_FOUND, "Comment not found! x", 404, "not_found", 0);
    assert_error_reply(SM_ERR_RULE, "You cannot like an inactive post!", 400, "rule_violation",
                       0);
    assert_error_reply(SM_ERR_CONFLICT, "busy", 409, "conflict", 0);
    assert_error_reply(SM_ERR_UNAVAILABLE, "store down", 503, "unavailable", 1);
    assert_error_reply(SM_ERR_INTERNAL, "caf\xc3\xa9", 500, "internal", 0);
}

static void test_http_reply_error_survives_invalid_utf8_message(void **state)
{
    assert_error_reply(SM_ERR_INVALID, "Incorrect post Id provided! \xff\xfe", 400,
                       "invalid_request", 0);
    assert_error_reply(SM_ERR_NOT_FOUND, NULL, 404, "not_found", 0);
}

static void test_http_reply_replaces_an_earlier_body(void **state)
{
    http_reply r = {0};
    http_reply_json(&r, 200, json_pack("{s:s}", "message", "ok"));
    http_reply_error(&r, SM_ERR_PRECONDITION, "stale"); /* the first body is released */
    assert_int_equal(r.status, 412);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")),
                        "precondition_failed");
    http_reply_free(&r);

    sm_error err = {0}; /* an error value with no status still becomes a 500 */
    http_reply_from_error(&r, &err);
    assert_int_equal(r.status, 500);
    http_reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_new_is_canonical_v4_and_unique),
        cmocka_unit_test(test_uuid_new_v7_is_time_ordered_and_unique),
        cmocka_unit_test(test_random_bytes_never_repeat_across_draw_sizes),
        cmocka_unit_test(test_uuid_parse_accepts_dotnet_forms_and_canonicalises),
        cmocka_unit_test(test_uuid_parse_rejects_malformed_text),
        cmocka_unit_test(test_time_format_known_instants),
        cmocka_unit_test(test_time_parse_accepts_zones_and_fractions),
        cmocka_unit_test(test_time_parse_rejects_malformed_text),
        cmocka_unit_test(test_time_format_then_parse_round_trips),
        cmocka_unit_test(test_utf8_valid_accepts_well_formed_text),
        cmocka_unit_test(test_utf8_valid_rejects_malformed_text),
        cmocka_unit_test(test_text_blank_means_only_white_space),
        cmocka_unit_test(test_text_equal_ci_folds_case_including_non_ascii),
        cmocka_unit_test(test_json_get_ci_ignores_case_but_prefers_exact_match),
        cmocka_unit_test(test_json_req_string_names_the_field_in_its_errors),
        cmocka_unit_test(test_json_req_uuid_canonicalises_or_names_the_field),
        cmocka_unit_test(test_json_parse_object_accepts_only_one_clean_object),
        cmocka_unit_test_setup(test_config_defaults_apply_when_nothing_is_set, config_setup),
        cmocka_unit_test_setup(test_config_env_overrides_default_and_argv_overrides_env,
                               config_setup),
        cmocka_unit_test_setup(test_config_bad_values_stop_with_a_message_naming_the_source,
                               config_setup),
        cmocka_unit_test_setup(test_config_empty_env_var_counts_as_unset, config_setup),
        cmocka_unit_test_setup(test_config_help_lists_every_flag_and_variable, config_setup),
        cmocka_unit_test_setup(test_config_version_prints_the_build_s_version, config_setup),
        cmocka_unit_test(test_config_switch_takes_on_off_and_friends_and_names_a_bad_value),
        cmocka_unit_test(test_log_redact_url_hides_user_info_and_passwords),
        cmocka_unit_test(test_log_quote_escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(test_log_quote_truncates_long_text_within_the_buffer),
        cmocka_unit_test(test_log_quote_keeps_text_that_fits),
        cmocka_unit_test(test_http_status_for_maps_every_status),
        cmocka_unit_test(test_auth_loopback_addresses),
        cmocka_unit_test(test_auth_mode_protected_mode),
        cmocka_unit_test(test_auth_bearer_token_and_401_reply),
        cmocka_unit_test(test_http_is_json_type),
        cmocka_unit_test(test_http_parse_if_match),
        cmocka_unit_test(test_http_parse_if_match_rejects_overflowing_versions),
        cmocka_unit_test(test_time_format_clamps_to_four_digit_years),
        cmocka_unit_test(test_http_query_get_finds_and_decodes_values),
        cmocka_unit_test(test_http_reply_error_builds_message_and_code),
        cmocka_unit_test(test_http_reply_error_survives_invalid_utf8_message),
        cmocka_unit_test(test_http_reply_replaces_an_earlier_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
