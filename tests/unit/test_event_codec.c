/* SPDX-License-Identifier: Apache-2.0 */
/* test_event_codec.c — the event envelope and its JSON codec (sm_event.h):
 * every type survives encode/decode field by field, the wire names are the
 * documented ones, and a decoder fed anything else says what is wrong and
 * leaves nothing behind. Pure: no I/O. */
#include "sm_event.h"
#include "sm_uuid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#define T0 1795734301123LL /* 2026-11-26T23:05:01.123Z */

/* Strings that stress the encoder: non-ASCII (2-, 3- and 4-byte UTF-8),
 * quotes, backslashes, newlines, tabs, a control character, U+2028 and text
 * that looks like JSON or an escape. */
static const char AUTHOR[] = "\xc3\x89mile \"the\" \\ author";
static const char MESSAGE[] = "Zo\xc3\xab said \"hi\" \\o/\nline two\ttab \x01 "
                              "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 </script> "
                              "\xe2\x80\xa8 end";
static const char COMMENT[] = "{\"json\": [1,2]}\r\n\\u0041 is not an escape";
static const char USERNAME[] = "\xc3\x91\x61nd\xc3\xba_\xc3\xbc";

static const char *const TYPE_NAMES[SM_EV_TYPE_COUNT] = {
    NULL,
    "PostCreatedEvent",
    "MessageUpdatedEvent",
    "PostLikedEvent",
    "CommentAddedEvent",
    "CommentUpdatedEvent",
    "CommentRemovedEvent",
    "PostRemovedEvent",
};

/* The documented payload fields of each type (NULL-terminated). */
static const char *const *payload_keys(sm_event_type t)
{
    static const char *const created[] = {"author", "message", "datePosted", NULL};
    static const char *const updated[] = {"message", NULL};
    static const char *const none[] = {NULL};
    static const char *const added[] = {"commentId", "comment", "username", "commentDate", NULL};
    static const char *const edited[] = {"commentId", "comment", "username", "editDate", NULL};
    static const char *const removed[] = {"commentId", NULL};
    switch (t) {
    case SM_EV_POST_CREATED: return created;
    case SM_EV_MESSAGE_UPDATED: return updated;
    case SM_EV_COMMENT_ADDED: return added;
    case SM_EV_COMMENT_UPDATED: return edited;
    case SM_EV_COMMENT_REMOVED: return removed;
    default: return none;
    }
}

/* An event of type t with exactly the payload fields t carries. */
static void make_event(sm_event *ev, sm_event_type t, int64_t ts, int64_t at)
{
    memset(ev, 0, sizeof *ev);
    assert_true(sm_uuid_new(ev->event_id));
    assert_true(sm_uuid_new(ev->aggregate_id));
    ev->type = t;
    ev->version = 41;
    ev->timestamp_ms = ts;
    switch (t) {
    case SM_EV_POST_CREATED:
        ev->author = strdup(AUTHOR);
        ev->message = strdup(MESSAGE);
        ev->at_ms = at;
        break;
    case SM_EV_MESSAGE_UPDATED:
        ev->message = strdup(MESSAGE);
        break;
    case SM_EV_COMMENT_ADDED:
    case SM_EV_COMMENT_UPDATED:
        ev->comment = strdup(COMMENT);
        ev->username = strdup(USERNAME);
        ev->at_ms = at;
        /* fall through */
    case SM_EV_COMMENT_REMOVED:
        assert_true(sm_uuid_new(ev->comment_id));
        break;
    default:
        break;
    }
}

static void assert_same_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_events_equal(const sm_event *a, const sm_event *b)
{
    assert_string_equal(a->event_id, b->event_id);
    assert_int_equal(a->type, b->type);
    assert_string_equal(a->aggregate_id, b->aggregate_id);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->timestamp_ms, b->timestamp_ms);
    assert_same_str(a->author, b->author);
    assert_same_str(a->message, b->message);
    assert_same_str(a->comment, b->comment);
    assert_same_str(a->username, b->username);
    assert_string_equal(a->comment_id, b->comment_id);
    assert_int_equal(a->at_ms, b->at_ms);
    assert_same_str(a->author_id, b->author_id);
    assert_same_str(a->user_id, b->user_id);
    assert_same_str(a->meta.user_id, b->meta.user_id);
    assert_string_equal(a->meta.request_id, b->meta.request_id);
    assert_string_equal(a->meta.traceparent, b->meta.traceparent);
}

static void assert_cleared(const sm_event *ev)
{
    static const sm_event zero;
    assert_memory_equal(ev, &zero, sizeof zero);
}

/* ---- round trips ---------------------------------------------------------- */

static void round_trip(sm_event_type t, int64_t ts, int64_t at)
{
    sm_event src, back;
    sm_error err = {0};
    make_event(&src, t, ts, at);
    char *text = sm_event_encode(&src);
    assert_non_null(text);
    if (sm_event_decode(&back, text, strlen(text), &err) != SM_OK)
        fail_msg("%s did not decode: %s\n%s", TYPE_NAMES[t], err.message, text);
    assert_events_equal(&src, &back);
    sm_event_clear(&back);

    json_t *j = sm_event_to_json(&src); /* the object form round-trips too */
    assert_non_null(j);
    assert_int_equal(sm_event_from_json(&back, j, &err), SM_OK);
    assert_events_equal(&src, &back);
    json_decref(j);
    sm_event_clear(&back);
    sm_event_clear(&src);
    free(text);
}

static void test_every_type_round_trips_field_by_field(void **state)
{
    for (int t = 1; t < SM_EV_TYPE_COUNT; t++)
        round_trip((sm_event_type)t, T0, T0 + 884); /* .123 and .007 ms parts */
}

static void test_round_trip_keeps_pre_epoch_and_millisecond_timestamps(void **state)
{
    round_trip(SM_EV_POST_CREATED, -1, -14182939999LL); /* 1969-12-31T23:59:59.999Z */
    round_trip(SM_EV_COMMENT_ADDED, 0, 1);
    round_trip(SM_EV_COMMENT_UPDATED, 999, 1000);
}

static void test_decode_reads_only_len_bytes(void **state)
{
    sm_event src, back;
    sm_error err = {0};
    make_event(&src, SM_EV_COMMENT_ADDED, T0, T0);
    char *text = sm_event_encode(&src);
    size_t len = strlen(text);
    char *exact = malloc(len); /* no NUL: ASan catches any read past len */
    memcpy(exact, text, len);
    assert_int_equal(sm_event_decode(&back, exact, len, &err), SM_OK);
    assert_events_equal(&src, &back);
    sm_event_clear(&back);
    sm_event_clear(&src);
    free(exact);
    free(text);
}

static void test_decode_normalises_uuids_to_lower_case(void **state)
{
    const char *text =
        "{\"eventId\":\"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\",\"type\":\"CommentRemovedEvent\","
        "\"aggregateId\":\"{0123456789ABCDEF0123456789ABCDEF}\",\"version\":7,"
        "\"timestamp\":\"2026-11-26T23:05:01.123Z\","
        "\"data\":{\"commentId\":\"FFFFFFFF-0000-4000-8000-00000000000A\"}}";
    sm_event ev;
    sm_error err = {0};
    assert_int_equal(sm_event_decode(&ev, text, strlen(text), &err), SM_OK);
    assert_string_equal(ev.event_id, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    assert_string_equal(ev.aggregate_id, "01234567-89ab-cdef-0123-456789abcdef");
    assert_string_equal(ev.comment_id, "ffffffff-0000-4000-8000-00000000000a");
    assert_int_equal(ev.version, 7);
    assert_int_equal(ev.timestamp_ms, T0);
    sm_event_clear(&ev);
}

/* ---- wire names ------------------------------------------------------------ */

static void test_encoding_uses_the_documented_field_names(void **state)
{
    for (int t = 1; t < SM_EV_TYPE_COUNT; t++) {
        sm_event ev;
        make_event(&ev, (sm_event_type)t, T0, T0 + 1);
        char *text = sm_event_encode(&ev);
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        assert_non_null(j);
        assert_int_equal(json_object_size(j), 7);
        /* raised without auth: no owner id, and the metadata says so */
        json_t *meta = json_object_get(j, "metadata");
        assert_true(json_is_object(meta));
        assert_int_equal(json_object_size(meta), 1);
        assert_true(json_is_null(json_object_get(meta, "userId")));
        assert_string_equal(json_string_value(json_object_get(j, "eventId")), ev.event_id);
        assert_string_equal(json_string_value(json_object_get(j, "type")), TYPE_NAMES[t]);
        assert_string_equal(json_string_value(json_object_get(j, "aggregateId")),
                            ev.aggregate_id);
        assert_true(json_is_integer(json_object_get(j, "version")));
        assert_int_equal(json_integer_value(json_object_get(j, "version")), 41);
        assert_string_equal(json_string_value(json_object_get(j, "timestamp")),
                            "2026-11-26T23:05:01.123Z");

        json_t *data = json_object_get(j, "data");
        assert_true(json_is_object(data));
        const char *const *keys = payload_keys((sm_event_type)t);
        size_t n = 0;
        for (; keys[n]; n++)
            if (!json_is_string(json_object_get(data, keys[n])))
                fail_msg("%s: data.%s missing or not a string", TYPE_NAMES[t], keys[n]);
        assert_int_equal(json_object_size(data), n);
        if (t == SM_EV_POST_CREATED || t == SM_EV_COMMENT_ADDED || t == SM_EV_COMMENT_UPDATED)
            assert_string_equal(json_string_value(json_object_get(data, keys[n - 1])),
                                "2026-11-26T23:05:01.124Z"); /* the date is listed last */
        json_decref(j);
        free(text);
        sm_event_clear(&ev);
    }
}

/* ---- rejections ---------------------------------------------------------------- */

static void assert_decode_rejects(const char *text, size_t len, const char *needle)
{
    sm_event ev;
    memset(&ev, 0x5a, sizeof ev); /* garbage in: the call must zero it */
    sm_error err = {0};
    sm_status st = sm_event_decode(&ev, text, len, &err);
    if (st != SM_ERR_INVALID)
        fail_msg("expected SM_ERR_INVALID (%s) for %.*s, got %d", needle, (int)len, text, st);
    assert_int_equal(err.status, SM_ERR_INVALID);
    if (!strstr(err.message, needle))
        fail_msg("message '%s' does not name '%s'", err.message, needle);
    assert_cleared(&ev);
}

/* A valid envelope of type t with one field replaced (value) or removed
 * (value NULL); "data.x" addresses the payload. Takes the reference. */
static void assert_field_rejected(sm_event_type t, const char *field, json_t *value,
                                  const char *needle)
{
    sm_event src;
    make_event(&src, t, T0, T0);
    json_t *j = sm_event_to_json(&src);
    json_t *obj = j;
    if (strncmp(field, "data.", 5) == 0) {
        obj = json_object_get(j, "data");
        field += 5;
    }
    if (value)
        json_object_set_new(obj, field, value);
    else
        json_object_del(obj, field);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_decode_rejects(text, strlen(text), needle);
    free(text);
    json_decref(j);
    sm_event_clear(&src);
}

static void assert_text_rejected(const char *text, const char *needle)
{
    assert_decode_rejects(text, strlen(text), needle);
}

static void test_decode_rejects_text_that_is_not_json(void **state)
{
    assert_text_rejected("{not json", "invalid JSON");
    assert_text_rejected("", "invalid JSON");
    assert_text_rejected("   ", "invalid JSON");
    assert_text_rejected("{\"type\":\"PostLikedEvent\"} trailing", "invalid JSON");
    assert_text_rejected("\"PostLikedEvent\"", "invalid JSON");
}

static void test_decode_rejects_truncated_input(void **state)
{
    sm_event src;
    make_event(&src, SM_EV_POST_CREATED, T0, T0);
    char *text = sm_event_encode(&src);
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut += 7)
        assert_decode_rejects(text, cut, "invalid JSON");
    free(text);
    sm_event_clear(&src);
}

static void test_decode_rejects_a_non_object(void **state)
{
    assert_text_rejected("[1,2]", "not a JSON object");
    assert_text_rejected("[{\"type\":\"PostLikedEvent\"}]", "not a JSON object");
}

static void test_decode_rejects_missing_unknown_or_non_string_type(void **state)
{
    assert_field_rejected(SM_EV_POST_LIKED, "type", NULL, "type");
    assert_field_rejected(SM_EV_POST_LIKED, "type", json_integer(3), "type");
    assert_field_rejected(SM_EV_POST_LIKED, "type", json_null(), "type");
    assert_field_rejected(SM_EV_POST_LIKED, "type", json_string("PostExplodedEvent"),
                          "unknown type");
    assert_field_rejected(SM_EV_POST_LIKED, "type", json_string("postlikedevent"),
                          "unknown type");
    assert_field_rejected(SM_EV_POST_LIKED, "type", json_string("PostLiked"), "unknown type");
}

static void test_decode_rejects_missing_or_malformed_ids(void **state)
{
    const char *ids[] = {"eventId", "aggregateId"};
    for (int i = 0; i < 2; i++) {
        assert_field_rejected(SM_EV_POST_LIKED, ids[i], NULL, ids[i]);
        assert_field_rejected(SM_EV_POST_LIKED, ids[i], json_string("not-a-uuid"), ids[i]);
        assert_field_rejected(SM_EV_POST_LIKED, ids[i], json_string(""), ids[i]);
        assert_field_rejected(SM_EV_POST_LIKED, ids[i],
                              json_string("0123456789ab-cdef-0123-456789abcdef0"), ids[i]);
        assert_field_rejected(SM_EV_POST_LIKED, ids[i], json_integer(12), ids[i]);
    }
}

static void test_decode_rejects_missing_negative_or_non_integer_version(void **state)
{
    assert_field_rejected(SM_EV_POST_LIKED, "version", NULL, "version");
    assert_field_rejected(SM_EV_POST_LIKED, "version", json_integer(-1), "version");
    assert_field_rejected(SM_EV_POST_LIKED, "version", json_real(1.5), "version");
    assert_field_rejected(SM_EV_POST_LIKED, "version", json_real(2.0), "version");
    assert_field_rejected(SM_EV_POST_LIKED, "version", json_string("3"), "version");
    assert_field_rejected(SM_EV_POST_LIKED, "version", json_null(), "version");
}

static void test_decode_rejects_bad_timestamps(void **state)
{
    const char *bad[] = {"2026-11-26T23:05:01.123", "2026-11-26T23:05:01", "2026-02-30T00:00:00Z",
                         "2026-13-01T00:00:00Z", "26-11-26T23:05:01Z", "yesterday", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_field_rejected(SM_EV_POST_LIKED, "timestamp", json_string(bad[i]), "timestamp");
    assert_field_rejected(SM_EV_POST_LIKED, "timestamp", NULL, "timestamp");
    assert_field_rejected(SM_EV_POST_LIKED, "timestamp", json_integer(T0), "timestamp");
}

static void test_decode_rejects_missing_or_non_object_data(void **state)
{
    assert_field_rejected(SM_EV_POST_LIKED, "data", NULL, "data");
    assert_field_rejected(SM_EV_POST_LIKED, "data", json_string("{}"), "data");
    assert_field_rejected(SM_EV_POST_LIKED, "data", json_array(), "data");
    assert_field_rejected(SM_EV_POST_LIKED, "data", json_null(), "data");
}

static void test_decode_rejects_missing_or_wrongly_typed_payload_fields(void **state)
{
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.commentId", NULL, "commentId");
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.commentId", json_string("c-1"), "commentId");
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.commentId", json_integer(1), "commentId");
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.comment", NULL, "comment");
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.username", json_false(), "username");
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.commentDate", NULL, "commentDate");
    assert_field_rejected(SM_EV_COMMENT_UPDATED, "data.editDate", json_string("soon"),
                          "editDate");
    assert_field_rejected(SM_EV_COMMENT_REMOVED, "data.commentId", NULL, "commentId");
    assert_field_rejected(SM_EV_POST_CREATED, "data.author", json_integer(5), "author");
    assert_field_rejected(SM_EV_POST_CREATED, "data.message", json_null(), "message");
    assert_field_rejected(SM_EV_POST_CREATED, "data.datePosted", NULL, "datePosted");
    assert_field_rejected(SM_EV_MESSAGE_UPDATED, "data.message", json_object(), "message");
}

static void test_failed_decode_after_payload_strings_leaves_event_cleared(void **state)
{
    /* author, message and comment are decoded (allocated) before the date
     * fails; the event must come back zeroed with nothing leaked. */
    assert_field_rejected(SM_EV_POST_CREATED, "data.datePosted", json_string("2026-02-30T00:00:00Z"),
                          "datePosted");
    assert_field_rejected(SM_EV_COMMENT_UPDATED, "data.editDate", json_integer(0), "editDate");
    assert_field_rejected(SM_EV_POST_CREATED, "data.message", json_integer(0), "message");
}

static void test_payload_of_another_type_is_ignored_not_required(void **state)
{
    /* PostLiked carries no payload: extra fields are ignored, {} is fine. */
    const char *text = "{\"eventId\":\"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee\","
                       "\"type\":\"PostLikedEvent\","
                       "\"aggregateId\":\"01234567-89ab-4def-8123-456789abcdef\",\"version\":0,"
                       "\"timestamp\":\"2026-11-26T23:05:01.123+01:00\","
                       "\"data\":{\"author\":5,\"extra\":[]}}";
    sm_event ev;
    sm_error err = {0};
    assert_int_equal(sm_event_decode(&ev, text, strlen(text), &err), SM_OK);
    assert_int_equal(ev.type, SM_EV_POST_LIKED);
    assert_null(ev.author);
    assert_int_equal(ev.timestamp_ms, T0 - 3600 * 1000); /* offsets are honoured */
    sm_event_clear(&ev);
}

/* ---- type names, copy, list ------------------------------------------------------- */

/* ---- owner ids and metadata (issue 16) --------------------------------------- */

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_owner_ids_and_metadata_round_trip(void **state)
{
    for (int t = 1; t < SM_EV_TYPE_COUNT; t++) {
        sm_event src, back;
        sm_error err = {0};
        make_event(&src, (sm_event_type)t, T0, T0);
        if (t == SM_EV_POST_CREATED)
            src.author_id = strdup("auth0|user-\xc3\xa9");
        if (t == SM_EV_COMMENT_ADDED)
            src.user_id = strdup("f:1234");
        src.meta.user_id = strdup("auth0|user-\xc3\xa9");
        strcpy(src.meta.request_id, "9b2c4f0e-1d1e-4a8a-9c39-0f1b7a1a2b3c");
        strcpy(src.meta.traceparent, TRACEPARENT);
        char *text = sm_event_encode(&src);
        assert_non_null(text);
        if (sm_event_decode(&back, text, strlen(text), &err) != SM_OK)
            fail_msg("%s did not decode: %s\n%s", TYPE_NAMES[t], err.message, text);
        assert_events_equal(&src, &back);
        json_t *j = json_loads(text, 0, NULL);
        json_t *data = json_object_get(j, "data");
        assert_int_equal(json_object_get(data, "authorId") != NULL, t == SM_EV_POST_CREATED);
        assert_int_equal(json_object_get(data, "userId") != NULL, t == SM_EV_COMMENT_ADDED);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(j, "metadata"), "traceparent")),
            TRACEPARENT);
        json_decref(j);
        free(text);
        sm_event_clear(&back);
        sm_event_clear(&src);
    }
}

/* An envelope as main wrote it before issue 16: no metadata, no ids. */
static void test_envelope_written_before_owner_ids_still_decodes(void **state)
{
    const char *text =
        "{\"eventId\":\"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee\",\"type\":\"PostCreatedEvent\","
        "\"aggregateId\":\"01234567-89ab-4def-8123-456789abcdef\",\"version\":0,"
        "\"timestamp\":\"2026-11-26T23:05:01.123Z\",\"data\":{\"author\":\"ann\","
        "\"message\":\"hi\",\"datePosted\":\"2026-11-26T23:05:01.123Z\"}}";
    sm_event ev;
    sm_error err = {0};
    assert_int_equal(sm_event_decode(&ev, text, strlen(text), &err), SM_OK);
    assert_string_equal(ev.author, "ann");
    assert_null(ev.author_id);
    assert_null(ev.meta.user_id);
    assert_string_equal(ev.meta.request_id, "");
    assert_string_equal(ev.meta.traceparent, "");
    sm_event_clear(&ev);
    /* null ids read as absent too */
    const char *nulls =
        "{\"eventId\":\"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee\",\"type\":\"CommentAddedEvent\","
        "\"aggregateId\":\"01234567-89ab-4def-8123-456789abcdef\",\"version\":1,"
        "\"timestamp\":\"2026-11-26T23:05:01.123Z\",\"data\":{\"commentId\":"
        "\"ffffffff-0000-4000-8000-00000000000a\",\"comment\":\"c\",\"username\":\"bo\","
        "\"commentDate\":\"2026-11-26T23:05:01.123Z\",\"userId\":null},"
        "\"metadata\":{\"userId\":null}}";
    assert_int_equal(sm_event_decode(&ev, nulls, strlen(nulls), &err), SM_OK);
    assert_null(ev.user_id);
    assert_null(ev.meta.user_id);
    sm_event_clear(&ev);
}

static void test_decode_rejects_bad_owner_ids_and_metadata(void **state)
{
    assert_field_rejected(SM_EV_POST_CREATED, "data.authorId", json_integer(7), "authorId");
    assert_field_rejected(SM_EV_POST_CREATED, "data.authorId", json_string(""), "authorId");
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.userId", json_true(), "userId");
    char long_id[SM_EVENT_USER_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_field_rejected(SM_EV_COMMENT_ADDED, "data.userId", json_string(long_id), "userId");
    assert_field_rejected(SM_EV_POST_LIKED, "metadata", json_string("x"), "metadata");
    assert_field_rejected(SM_EV_POST_LIKED, "metadata", json_pack("{s:i}", "userId", 3),
                          "userId");
    assert_field_rejected(SM_EV_POST_LIKED, "metadata", json_pack("{s:s}", "userId", long_id),
                          "userId");
    static const char *const bad_tp[] = {
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", /* separator */
    };
    for (size_t i = 0; i < sizeof bad_tp / sizeof bad_tp[0]; i++) {
        assert_false(sm_traceparent_valid(bad_tp[i]));
        assert_field_rejected(SM_EV_POST_LIKED, "metadata",
                              json_pack("{s:s}", "traceparent", bad_tp[i]), "traceparent");
    }
    assert_true(sm_traceparent_valid(TRACEPARENT));
}

static void test_type_names_map_both_ways(void **state)
{
    for (int t = 1; t < SM_EV_TYPE_COUNT; t++) {
        assert_string_equal(sm_event_type_name((sm_event_type)t), TYPE_NAMES[t]);
        assert_int_equal(sm_event_type_from_name(TYPE_NAMES[t]), t);
    }
    assert_null(sm_event_type_name(SM_EV_NONE));
    assert_null(sm_event_type_name((sm_event_type)SM_EV_TYPE_COUNT));
    assert_null(sm_event_type_name((sm_event_type)-1));
    const char *unknown[] = {"", "postlikedevent", "PostLiked", "PostLikedEvent ", "Event"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_int_equal(sm_event_type_from_name(unknown[i]), SM_EV_NONE);
    assert_int_equal(sm_event_type_from_name(NULL), SM_EV_NONE);

    sm_event none = {0}; /* a type-less event cannot be encoded */
    assert_null(sm_event_encode(&none));
    assert_null(sm_event_data_to_json(&none));
}

static void test_encoding_text_that_is_not_utf8_fails_instead_of_dropping_it(void **state)
{
    (void)state;
    sm_event ev = {0};
    assert_true(sm_uuid_new(ev.event_id));
    assert_true(sm_uuid_new(ev.aggregate_id));
    ev.type = SM_EV_MESSAGE_UPDATED;
    ev.version = 1;
    ev.message = strdup("bad \xff");
    assert_null(sm_event_data_to_json(&ev));
    assert_null(sm_event_encode(&ev));
    sm_event_clear(&ev);
}

static void test_copy_is_deep(void **state)
{
    sm_event src, dst;
    make_event(&src, SM_EV_POST_CREATED, T0, T0 + 5);
    src.author_id = strdup("sub-1");
    src.meta.user_id = strdup("sub-1");
    memset(&dst, 0, sizeof dst);
    assert_true(sm_event_copy(&dst, &src));
    assert_events_equal(&src, &dst);
    assert_ptr_not_equal(dst.author_id, src.author_id);
    assert_ptr_not_equal(dst.meta.user_id, src.meta.user_id);
    assert_ptr_not_equal(dst.author, src.author);
    assert_ptr_not_equal(dst.message, src.message);
    src.message[0] = 'X';
    sm_event_clear(&src); /* the copy outlives its source */
    assert_string_equal(dst.message, MESSAGE);
    assert_string_equal(dst.author, AUTHOR);
    sm_event_clear(&dst);

    make_event(&src, SM_EV_COMMENT_UPDATED, T0, T0);
    assert_true(sm_event_copy(&dst, &src));
    assert_events_equal(&src, &dst);
    assert_ptr_not_equal(dst.comment, src.comment);
    assert_ptr_not_equal(dst.username, src.username);
    assert_null(dst.author); /* absent strings stay absent */
    sm_event_clear(&src);
    sm_event_clear(&dst);
}

static void test_clear_frees_and_zeroes_and_is_idempotent(void **state)
{
    sm_event ev;
    make_event(&ev, SM_EV_COMMENT_ADDED, T0, T0);
    sm_event_clear(&ev);
    assert_cleared(&ev);
    sm_event_clear(&ev);
    assert_cleared(&ev);
}

static void test_event_list_owns_its_events(void **state)
{
    sm_event_list list = {0};
    for (int i = 0; i < 50; i++) {
        sm_event *ev = sm_event_list_push(&list);
        assert_non_null(ev);
        assert_cleared(ev); /* each new slot is zeroed */
        make_event(ev, SM_EV_MESSAGE_UPDATED, T0, T0);
        ev->version = i;
    }
    assert_int_equal(list.len, 50);
    assert_true(list.cap >= 50);
    for (int i = 0; i < 50; i++) { /* earlier slots survived the growth */
        assert_int_equal(list.items[i].version, i);
        assert_string_equal(list.items[i].message, MESSAGE);
    }
    sm_event_list_free(&list); /* frees every event's strings (LeakSanitizer checks) */
    assert_null(list.items);
    assert_int_equal(list.len, 0);
    assert_int_equal(list.cap, 0);
    assert_non_null(sm_event_list_push(&list)); /* a freed list is reusable */
    assert_int_equal(list.len, 1);
    sm_event_list_free(&list);
}

/* A new traceparent is valid (version 00, flags 01) and new each time. */
static void test_new_traceparent_is_valid_and_fresh(void **state)
{
    (void)state;
    char a[SM_EVENT_TRACEPARENT_LEN + 1], b[SM_EVENT_TRACEPARENT_LEN + 1];
    assert_true(sm_traceparent_new(a));
    assert_true(sm_traceparent_new(b));
    assert_true(sm_traceparent_valid(a));
    assert_true(sm_traceparent_valid(b));
    assert_int_equal(strlen(a), SM_EVENT_TRACEPARENT_LEN);
    assert_memory_equal(a, "00-", 3);
    assert_string_equal(a + 52, "-01");
    assert_memory_not_equal(a + 3, b + 3, 32);
    assert_memory_not_equal(a + 36, b + 36, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips_field_by_field),
        cmocka_unit_test(test_round_trip_keeps_pre_epoch_and_millisecond_timestamps),
        cmocka_unit_test(test_decode_reads_only_len_bytes),
        cmocka_unit_test(test_decode_normalises_uuids_to_lower_case),
        cmocka_unit_test(test_encoding_uses_the_documented_field_names),
        cmocka_unit_test(test_decode_rejects_text_that_is_not_json),
        cmocka_unit_test(test_decode_rejects_truncated_input),
        cmocka_unit_test(test_decode_rejects_a_non_object),
        cmocka_unit_test(test_decode_rejects_missing_unknown_or_non_string_type),
        cmocka_unit_test(test_decode_rejects_missing_or_malformed_ids),
        cmocka_unit_test(test_decode_rejects_missing_negative_or_non_integer_version),
        cmocka_unit_test(test_decode_rejects_bad_timestamps),
        cmocka_unit_test(test_decode_rejects_missing_or_non_object_data),
        cmocka_unit_test(test_decode_rejects_missing_or_wrongly_typed_payload_fields),
        cmocka_unit_test(test_failed_decode_after_payload_strings_leaves_event_cleared),
        cmocka_unit_test(test_payload_of_another_type_is_ignored_not_required),
        cmocka_unit_test(test_owner_ids_and_metadata_round_trip),
        cmocka_unit_test(test_envelope_written_before_owner_ids_still_decodes),
        cmocka_unit_test(test_decode_rejects_bad_owner_ids_and_metadata),
        cmocka_unit_test(test_type_names_map_both_ways),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_encoding_text_that_is_not_utf8_fails_instead_of_dropping_it),
        cmocka_unit_test(test_clear_frees_and_zeroes_and_is_idempotent),
        cmocka_unit_test(test_event_list_owns_its_events),
        cmocka_unit_test(test_new_traceparent_is_valid_and_fresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
