/* SPDX-License-Identifier: Apache-2.0 */
/* test_hostile_input.c — the edge against input written to break it, below
 * HTTP: the JSON nesting guard (a deep body once overflowed a worker's
 * stack), field limits counted in bytes, timestamps the codec cannot
 * represent (found by fuzz_event_decode), and path decoding that refuses
 * encoded '/' and NUL. The same inputs over real sockets are in
 * tests/acceptance/test_hostile_http.c. */
#include "commands.h"
#include "http_util.h"
#include "sm_event.h"
#include "sm_json.h"
#include "sm_text.h"
#include "sm_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* civetweb's worker threads have 100 KiB stacks in Debian's build */
#define WORKER_STACK (100 * 1024)

/* {"author": [[[...]]], "message": "m"} with `depth` levels in all. */
static char *nested_body(int depth)
{
    size_t n = (size_t)depth * 2 + 64;
    char *b = malloc(n);
    assert_non_null(b);
    int o = sprintf(b, "{\"author\":");
    memset(b + o, '[', (size_t)depth - 1);
    memset(b + o + depth - 1, ']', (size_t)depth - 1);
    strcpy(b + o + 2 * (depth - 1), ",\"message\":\"m\"}");
    return b;
}

static void test_depth_guard_counts_only_real_nesting(void **state)
{
    (void)state;
    assert_true(sm_json_depth_within("[[[]]]", 6, 3));
    assert_false(sm_json_depth_within("[[[[]]]]", 8, 3));
    assert_true(sm_json_depth_within("{\"a\":[{}]}", 10, 3));
    assert_false(sm_json_depth_within("{\"a\":[{\"b\":[]}]}", 16, 3));
    /* brackets in strings are text, escaped quotes do not end a string,
     * and an escaped backslash does not escape the quote after it */
    const char *in_string = "{\"a\":\"[[[[{{{{\"}";
    assert_true(sm_json_depth_within(in_string, strlen(in_string), 1));
    const char *escaped_quote = "{\"a\":\"\\\"[[[[\"}";
    assert_true(sm_json_depth_within(escaped_quote, strlen(escaped_quote), 1));
    const char *escaped_backslash = "{\"a\":\"\\\\\",\"b\":[[[]]]}";
    assert_false(sm_json_depth_within(escaped_backslash, strlen(escaped_backslash), 3));
    assert_true(sm_json_depth_within(escaped_backslash, strlen(escaped_backslash), 4));
    /* stray closers cannot buy depth back */
    assert_false(sm_json_depth_within("]]]][[[[", 8, 3));
}

static void test_body_at_the_depth_limit_parses_and_one_deeper_is_refused(void **state)
{
    (void)state;
    char *ok = nested_body(SM_JSON_MAX_DEPTH), *deep = nested_body(SM_JSON_MAX_DEPTH + 1);
    json_t *j = NULL;
    sm_error err = {0};
    assert_int_equal(sm_json_parse_object(ok, strlen(ok), &j, &err), SM_OK);
    json_decref(j);
    assert_int_equal(sm_json_parse_object(deep, strlen(deep), &j, &err), SM_ERR_INVALID);
    assert_null(j);
    assert_string_equal(err.message,
                        "The request body nests arrays or objects deeper than 32 levels.");
    free(ok);
    free(deep);
}

typedef struct parse_job {
    const char *body;
    sm_status status;
} parse_job;

static void *parse_on_small_stack(void *arg)
{
    parse_job *job = arg;
    json_t *j = NULL;
    sm_error err = {0};
    job->status = sm_json_parse_object(job->body, strlen(job->body), &j, &err);
    json_decref(j);
    return NULL;
}

/* The crash this guards against: 30,000 nested arrays (60 KB, under the
 * 64 KiB body limit) made jansson recurse off the end of a civetweb
 * worker's stack. Parsed here on a thread with a stack of the same size. */
static void test_30000_nested_arrays_are_refused_on_a_worker_sized_stack(void **state)
{
    (void)state;
    char *deep = nested_body(30000);
    assert_true(strlen(deep) < HTTP_MAX_BODY);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    assert_int_equal(pthread_attr_setstacksize(&attr, WORKER_STACK), 0);
    pthread_t t;
    parse_job job = {deep, SM_OK};
    assert_int_equal(pthread_create(&t, &attr, parse_on_small_stack, &job), 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    assert_int_equal(job.status, SM_ERR_INVALID);
    free(deep);
}

static void test_an_event_nested_too_deep_is_refused_before_parsing(void **state)
{
    (void)state;
    char text[400];
    int o = sprintf(text, "{\"type\":\"PostLikedEvent\",\"data\":");
    memset(text + o, '[', 40);
    memset(text + o + 40, ']', 40);
    strcpy(text + o + 80, "}");
    sm_event ev;
    sm_error err = {0};
    assert_int_equal(sm_event_decode(&ev, text, strlen(text), &err), SM_ERR_INVALID);
    assert_string_equal(err.message, "event: nested deeper than 32 levels");
}

/* Found by fuzz_event_decode (corpus/fuzz_event_decode/
 * regression_timestamp_outside_years_1_9999.json): an offset moved a time
 * past 9999-12-31T23:59:59.999Z; the decoder accepted it and the encoder
 * clamped it, so the event changed on its way through. */
static void test_timestamps_outside_years_1_to_9999_are_refused(void **state)
{
    (void)state;
    int64_t ms;
    assert_false(sm_time_parse("9999-12-31T23:59:59.999-00:15", &ms));
    assert_false(sm_time_parse("0001-01-01T00:00:00+00:01", &ms));
    /* the ends themselves, and offsets that stay inside, still parse and
     * format back to the same instant */
    const char *ok[] = {"0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z",
                        "9999-12-31T23:59:59.999+00:15", "0001-01-01T23:00:00-22:59"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_true(sm_time_parse(ok[i], &ms));
        sm_time_str back;
        sm_time_format(ms, back);
        int64_t again;
        assert_true(sm_time_parse(back, &again));
        assert_int_equal(again, ms);
    }
    const char *ev =
        "{\"eventId\":\"0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f\",\"type\":\"CommentAddedEvent\","
        "\"aggregateId\":\"6f0e1d2c-3b4a-4958-8776-655443322110\",\"version\":9,"
        "\"timestamp\":\"9999-12-31T23:59:59.999-00:15\",\"data\":{\"commentId\":"
        "\"{7A1E2B3C-4D5E-4F60-8172-8394A5B6C7D8}\",\"comment\":\"c\",\"username\":\"u\","
        "\"commentDate\":\"0001-01-01T00:00:00.000000001Z\"}}";
    sm_event e;
    sm_error err = {0};
    assert_int_equal(sm_event_decode(&e, ev, strlen(ev), &err), SM_ERR_INVALID);
    assert_non_null(strstr(err.message, "'timestamp'"));
}

static void expect_decoded(const char *raw, const char *want)
{
    char *out = NULL;
    sm_error err = {0};
    if (http_decode_path(raw, &out, &err) != SM_OK)
        fail_msg("http_decode_path(%s): %s", raw, err.message);
    assert_string_equal(out, want);
    free(out);
}

static void expect_refused(const char *raw)
{
    char *out = NULL;
    sm_error err = {0};
    assert_int_equal(http_decode_path(raw, &out, &err), SM_ERR_INVALID);
    assert_null(out);
    assert_string_equal(err.message,
                        "The path must not contain an encoded '/' or NUL (%2F, %00).");
}

static void test_path_is_decoded_once_and_encoded_slash_or_nul_refused(void **state)
{
    (void)state;
    expect_decoded("/api/v1/NewPost", "/api/v1/NewPost");
    expect_decoded("/api/v1/%4cikePost/%41", "/api/v1/LikePost/A");
    expect_decoded("/byAuthor/%C3%A9mile%20x", "/byAuthor/\xc3\xa9mile x");
    expect_decoded("/byAuthor/%252F", "/byAuthor/%2F"); /* once, not twice */
    expect_decoded("/api/v1/%2e%2e/%2E%2E/etc", "/api/v1/../../etc"); /* data, no route */
    expect_decoded("/a/%ZZ/%4", "/a/%ZZ/%4");                         /* not escapes */
    expect_refused("/api/v1/LikePost%2F6f0e1d2c-3b4a-4958-8776-655443322110");
    expect_refused("/api/v1/LikePost/..%2f..%2fetc");
    expect_refused("/api/v1/LikePost/6f0e1d2c-3b4a-4958-8776-655443322110%00.json");
}

/* Parses body as routes.c does and runs cmd_parse for type. */
static sm_status parse_cmd(cmd_type type, const char *body, command *cmd, sm_error *err)
{
    json_t *j = NULL;
    sm_status st = sm_json_parse_object(body, strlen(body), &j, err);
    if (st == SM_OK)
        st = cmd_parse(type, j, cmd, err);
    json_decref(j);
    return st;
}

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

/* Each limit is in bytes of UTF-8: the limit passes, one byte more fails
 * with a message naming the field and the limit. */
static void test_every_text_field_limit_is_exact_and_in_bytes(void **state)
{
    (void)state;
    const struct {
        cmd_type type;
        const char *field, *other;
        size_t limit;
    } cases[] = {
        {CMD_NEW_POST, "author", "\"message\":\"m\"", CMD_MAX_AUTHOR},
        {CMD_NEW_POST, "message", "\"author\":\"a\"", CMD_MAX_MESSAGE},
        {CMD_ADD_COMMENT, "comment", "\"username\":\"u\"", CMD_MAX_COMMENT},
        {CMD_ADD_COMMENT, "username", "\"comment\":\"c\"", CMD_MAX_USERNAME},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int over = 0; over <= 1; over++) {
            /* two-byte characters, plus one ASCII byte when odd */
            size_t bytes = cases[i].limit + (size_t)over;
            char *text = repeat("\xc3\xa9", bytes / 2);
            if (bytes % 2) {
                size_t n = strlen(text);
                text = realloc(text, n + 2);
                strcpy(text + n, "x");
            }
            size_t cap = strlen(text) + 200;
            char *body = malloc(cap);
            snprintf(body, cap, "{\"%s\":\"%s\",%s}", cases[i].field, text, cases[i].other);
            command cmd = {0};
            sm_error err = {0};
            sm_status st = parse_cmd(cases[i].type, body, &cmd, &err);
            if (!over) {
                assert_int_equal(st, SM_OK);
            } else {
                assert_int_equal(st, SM_ERR_INVALID);
                char want[120];
                snprintf(want, sizeof want, "The %s field must be at most %zu bytes.",
                         cases[i].field, cases[i].limit);
                assert_string_equal(err.message, want);
            }
            free(body);
            free(text);
        }
    }
}

static void test_invalid_utf8_nul_and_lone_surrogates_are_refused(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"author\":\"a\xff\",\"message\":\"m\"}",         /* not UTF-8 at all */
        "{\"author\":\"a\xc0\xaf\",\"message\":\"m\"}",     /* overlong '/' */
        "{\"author\":\"a\xed\xa0\x80\",\"message\":\"m\"}", /* encoded surrogate */
        "{\"author\":\"a\\u0000b\",\"message\":\"m\"}",     /* NUL */
        "{\"author\":\"a\\ud800\",\"message\":\"m\"}",      /* lone surrogate */
        "{\"author\":\"a\",\"message\":\"m\",\"n\":1e400}", /* number out of range */
        "{\"author\":\"a\",\"message\":\"m\",\"n\":123456789012345678901234567890}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        command cmd = {0};
        sm_error err = {0};
        if (parse_cmd(CMD_NEW_POST, bodies[i], &cmd, &err) != SM_ERR_INVALID)
            fail_msg("accepted: %s", bodies[i]);
        assert_non_null(strstr(err.message, "not valid JSON"));
        /* the reply built from it is still JSON */
        http_reply reply = {0};
        http_reply_from_error(&reply, &err);
        assert_int_equal(reply.status, 400);
        char *text = sm_json_dump(reply.body);
        assert_non_null(text);
        free(text);
        http_reply_free(&reply);
    }
}

/* An error that echoes client bytes that are not UTF-8 (a decoded %C0%AE
 * in an id) still says what was wrong, with '?' for those bytes. */
static void test_error_text_echoing_invalid_utf8_is_scrubbed_not_dropped(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(sm_utf8_scrub("id '\xc0\xae\xc0\xae' \xc3\xa9", out, sizeof out),
                        "id '?\?\?\?' \xc3\xa9"); /* \? : no trigraphs */
    assert_string_equal(sm_utf8_scrub("\xf0\x9f\x98", out, sizeof out), "???"); /* cut short */
    assert_string_equal(sm_utf8_scrub("ab\xc3\xa9", out, 4), "ab"); /* no half character */
    http_reply reply = {0};
    http_reply_error(&reply, SM_ERR_INVALID, "The post id '\xc0\xae' is not a valid UUID.");
    assert_int_equal(reply.status, 400);
    assert_string_equal(json_string_value(json_object_get(reply.body, "message")),
                        "The post id '?\?' is not a valid UUID.");
    http_reply_free(&reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_guard_counts_only_real_nesting),
        cmocka_unit_test(test_body_at_the_depth_limit_parses_and_one_deeper_is_refused),
        cmocka_unit_test(test_30000_nested_arrays_are_refused_on_a_worker_sized_stack),
        cmocka_unit_test(test_an_event_nested_too_deep_is_refused_before_parsing),
        cmocka_unit_test(test_timestamps_outside_years_1_to_9999_are_refused),
        cmocka_unit_test(test_path_is_decoded_once_and_encoded_slash_or_nul_refused),
        cmocka_unit_test(test_every_text_field_limit_is_exact_and_in_bytes),
        cmocka_unit_test(test_invalid_utf8_nul_and_lone_surrogates_are_refused),
        cmocka_unit_test(test_error_text_echoing_invalid_utf8_is_scrubbed_not_dropped),
    };
    return cmocka_run_group_tests_name("hostile_input", tests, NULL, NULL);
}
