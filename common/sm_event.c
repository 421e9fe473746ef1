/* SPDX-License-Identifier: Apache-2.0 */
/* sm_event.c — event envelope codec. Each type is described by the payload
 * fields it carries, so encoding and decoding are driven by one table and
 * cannot drift apart. */
#include "sm_event.h"

#include "sm_json.h"
#include "sm_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    F_AUTHOR = 1 << 0,
    F_MESSAGE = 1 << 1,
    F_COMMENT = 1 << 2,
    F_USERNAME = 1 << 3,
    F_COMMENT_ID = 1 << 4,
    F_AT = 1 << 5,
    F_AUTHOR_ID = 1 << 6, /* optional: absent before auth */
    F_USER_ID = 1 << 7    /* optional: absent before auth */
};

static const struct {
    const char *name;
    unsigned fields;
    const char *at_name; /* JSON name of at_ms when F_AT is set */
} types[SM_EV_TYPE_COUNT] = {
    [SM_EV_NONE] = {NULL, 0, NULL},
    [SM_EV_POST_CREATED] = {"PostCreatedEvent", F_AUTHOR | F_MESSAGE | F_AT | F_AUTHOR_ID,
                            "datePosted"},
    [SM_EV_MESSAGE_UPDATED] = {"MessageUpdatedEvent", F_MESSAGE, NULL},
    [SM_EV_POST_LIKED] = {"PostLikedEvent", 0, NULL},
    [SM_EV_COMMENT_ADDED] = {"CommentAddedEvent",
                             F_COMMENT_ID | F_COMMENT | F_USERNAME | F_AT | F_USER_ID,
                             "commentDate"},
    [SM_EV_COMMENT_UPDATED] = {"CommentUpdatedEvent",
                               F_COMMENT_ID | F_COMMENT | F_USERNAME | F_AT, "editDate"},
    [SM_EV_COMMENT_REMOVED] = {"CommentRemovedEvent", F_COMMENT_ID, NULL},
    [SM_EV_POST_REMOVED] = {"PostRemovedEvent", 0, NULL},
};

const char *sm_event_type_name(sm_event_type type)
{
    if ((int)type <= SM_EV_NONE || (int)type >= SM_EV_TYPE_COUNT)
        return NULL;
    return types[type].name;
}

sm_event_type sm_event_type_from_name(const char *name)
{
    for (int t = 1; t < SM_EV_TYPE_COUNT; t++)
        if (name && strcmp(types[t].name, name) == 0)
            return (sm_event_type)t;
    return SM_EV_NONE;
}

void sm_event_clear(sm_event *ev)
{
    free(ev->author);
    free(ev->message);
    free(ev->comment);
    free(ev->username);
    free(ev->author_id);
    free(ev->user_id);
    free(ev->meta.user_id);
    memset(ev, 0, sizeof *ev);
}

static bool dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

bool sm_event_copy(sm_event *dst, const sm_event *src)
{
    *dst = *src;
    dst->author = dst->message = dst->comment = dst->username = NULL;
    dst->author_id = dst->user_id = dst->meta.user_id = NULL;
    if (dup_field(&dst->author, src->author) && dup_field(&dst->message, src->message) &&
        dup_field(&dst->comment, src->comment) && dup_field(&dst->username, src->username) &&
        dup_field(&dst->author_id, src->author_id) && dup_field(&dst->user_id, src->user_id) &&
        dup_field(&dst->meta.user_id, src->meta.user_id))
        return true;
    sm_event_clear(dst);
    return false;
}

/* json_string() rejects NULL; an absent string encodes as "". */
static json_t *jstr(const char *s) { return json_string(s ? s : ""); }

json_t *sm_event_data_to_json(const sm_event *ev)
{
    if (!sm_event_type_name(ev->type))
        return NULL;
    unsigned f = types[ev->type].fields;
    json_t *d = json_object();
    /* json_object_set_new fails (and frees the value) when the value is NULL,
     * e.g. text that is not valid UTF-8: the whole encoding fails rather than
     * silently dropping a field. */
    int bad = !d;
    if (!bad && (f & F_COMMENT_ID))
        bad |= json_object_set_new(d, "commentId", json_string(ev->comment_id));
    if (!bad && (f & F_AUTHOR))
        bad |= json_object_set_new(d, "author", jstr(ev->author));
    if (!bad && (f & F_MESSAGE))
        bad |= json_object_set_new(d, "message", jstr(ev->message));
    if (!bad && (f & F_COMMENT))
        bad |= json_object_set_new(d, "comment", jstr(ev->comment));
    if (!bad && (f & F_USERNAME))
        bad |= json_object_set_new(d, "username", jstr(ev->username));
    if (!bad && (f & F_AT))
        bad |= json_object_set_new(d, types[ev->type].at_name, sm_json_time(ev->at_ms));
    /* only when known, so an event raised without auth encodes as before */
    if (!bad && (f & F_AUTHOR_ID) && ev->author_id)
        bad |= json_object_set_new(d, "authorId", json_string(ev->author_id));
    if (!bad && (f & F_USER_ID) && ev->user_id)
        bad |= json_object_set_new(d, "userId", json_string(ev->user_id));
    if (bad) {
        json_decref(d);
        return NULL;
    }
    return d;
}

bool sm_traceparent_new(char out[SM_EVENT_TRACEPARENT_LEN + 1])
{
    static const char hexdig[] = "0123456789abcdef";
    uint8_t b[24]; /* trace id 16, parent id 8: the same source as sm_uuid_new */
    for (int tries = 0; tries < 4; tries++) {
        if (!sm_random_bytes(b, sizeof b))
            return false;
        char *p = out;
        memcpy(p, "00-", 3);
        p += 3;
        for (size_t k = 0; k < sizeof b; k++) {
            if (k == 16)
                *p++ = '-';
            *p++ = hexdig[b[k] >> 4];
            *p++ = hexdig[b[k] & 15];
        }
        memcpy(p, "-01", 4); /* sampled; includes the NUL */
        if (sm_traceparent_valid(out)) /* all-zero ids are invalid: draw again */
            return true;
    }
    return false;
}

bool sm_traceparent_valid(const char *s)
{
    /* 00-<trace-id 32>-<parent-id 16>-<flags 2>, lower-case hex */
    static const char shape[] = "00-................................-................-..";
    if (!s || strlen(s) != SM_EVENT_TRACEPARENT_LEN)
        return false;
    bool trace_zero = true, parent_zero = true;
    for (size_t i = 0; i < SM_EVENT_TRACEPARENT_LEN; i++) {
        if (shape[i] != '.') {
            if (s[i] != shape[i])
                return false;
            continue;
        }
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        if (s[i] != '0' && i < 35)
            trace_zero = false;
        else if (s[i] != '0' && i > 35 && i < 52)
            parent_zero = false;
    }
    return !trace_zero && !parent_zero;
}

json_t *sm_event_meta_to_json(const sm_event_meta *meta)
{
    json_t *m = json_object();
    int bad = !m;
    if (!bad)
        bad |= json_object_set_new(m, "userId",
                                   meta->user_id ? json_string(meta->user_id) : json_null());
    if (!bad && meta->request_id[0])
        bad |= json_object_set_new(m, "requestId", json_string(meta->request_id));
    if (!bad && meta->traceparent[0])
        bad |= json_object_set_new(m, "traceparent", json_string(meta->traceparent));
    if (bad) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* An optional string member: absent or null leaves *out untouched. */
static sm_status get_optional(const json_t *obj, const char *key, size_t max, const char **out,
                              sm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return SM_OK;
    if (!json_is_string(v))
        return sm_fail(err, SM_ERR_INVALID, "metadata: field '%s' must be a string", key);
    if (json_string_length(v) > max)
        return sm_fail(err, SM_ERR_INVALID, "metadata: field '%s' is longer than %zu bytes", key,
                       max);
    *out = json_string_value(v);
    return SM_OK;
}

sm_status sm_event_meta_from_json(sm_event_meta *meta, const json_t *obj, sm_error *err)
{
    memset(meta, 0, sizeof *meta);
    if (!obj || json_is_null(obj))
        return SM_OK;
    if (!json_is_object(obj))
        return sm_fail(err, SM_ERR_INVALID, "field 'metadata' must be an object");
    const char *user = NULL, *req = NULL, *tp = NULL;
    sm_status st = get_optional(obj, "userId", SM_EVENT_USER_ID_MAX, &user, err);
    if (st == SM_OK)
        st = get_optional(obj, "requestId", SM_EVENT_REQUEST_ID_MAX, &req, err);
    if (st == SM_OK)
        st = get_optional(obj, "traceparent", SM_EVENT_TRACEPARENT_LEN, &tp, err);
    if (st == SM_OK && tp && !sm_traceparent_valid(tp))
        st = sm_fail(err, SM_ERR_INVALID, "metadata: 'traceparent' is not a W3C traceparent");
    if (st != SM_OK)
        return st;
    if (user && !(meta->user_id = strdup(user)))
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    snprintf(meta->request_id, sizeof meta->request_id, "%s", req ? req : "");
    snprintf(meta->traceparent, sizeof meta->traceparent, "%s", tp ? tp : "");
    return SM_OK;
}

json_t *sm_event_to_json(const sm_event *ev)
{
    json_t *data = sm_event_data_to_json(ev);
    if (!data)
        return NULL;
    json_t *meta = sm_event_meta_to_json(&ev->meta);
    if (!meta) {
        json_decref(data);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o}", "eventId", ev->event_id, "type",
                     types[ev->type].name, "aggregateId", ev->aggregate_id, "version",
                     (json_int_t)ev->version, "timestamp", sm_json_time(ev->timestamp_ms), "data",
                     data, "metadata", meta);
}

char *sm_event_encode(const sm_event *ev)
{
    json_t *j = sm_event_to_json(ev);
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static sm_status get_string(const json_t *obj, const char *key, const char *where,
                            const char **out, sm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return sm_fail(err, SM_ERR_INVALID, "%s: missing field '%s'", where, key);
    if (!json_is_string(v))
        return sm_fail(err, SM_ERR_INVALID, "%s: field '%s' must be a string", where, key);
    *out = json_string_value(v);
    return SM_OK;
}

static sm_status get_uuid(const json_t *obj, const char *key, const char *where,
                          sm_uuid_str out, sm_error *err)
{
    const char *s = NULL;
    sm_status st = get_string(obj, key, where, &s, err);
    if (st != SM_OK)
        return st;
    if (!sm_uuid_parse(s, out))
        return sm_fail(err, SM_ERR_INVALID, "%s: field '%s' is not a UUID", where, key);
    return SM_OK;
}

static sm_status get_time(const json_t *obj, const char *key, const char *where,
                          int64_t *out, sm_error *err)
{
    const char *s = NULL;
    sm_status st = get_string(obj, key, where, &s, err);
    if (st != SM_OK)
        return st;
    if (!sm_time_parse(s, out))
        return sm_fail(err, SM_ERR_INVALID,
                       "%s: field '%s' is not an ISO-8601 UTC timestamp", where, key);
    return SM_OK;
}

/* An optional id in data: absent or null is NULL; a string is copied. */
static sm_status get_owned_optional(const json_t *obj, const char *key, char **out,
                                    sm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return SM_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > SM_EVENT_USER_ID_MAX)
        return sm_fail(err, SM_ERR_INVALID,
                       "data: field '%s' must be a non-empty string of at most %d bytes", key,
                       SM_EVENT_USER_ID_MAX);
    *out = strdup(json_string_value(v));
    return *out ? SM_OK : sm_fail(err, SM_ERR_INTERNAL, "out of memory");
}

static sm_status get_owned(const json_t *obj, const char *key, char **out, sm_error *err)
{
    const char *s = NULL;
    sm_status st = get_string(obj, key, "data", &s, err);
    if (st != SM_OK)
        return st;
    *out = strdup(s);
    return *out ? SM_OK : sm_fail(err, SM_ERR_INTERNAL, "out of memory");
}

sm_status sm_event_data_from_json(sm_event *ev, const json_t *data, sm_error *err)
{
    if (!sm_event_type_name(ev->type))
        return sm_fail(err, SM_ERR_INVALID, "unknown event type");
    if (!json_is_object(data))
        return sm_fail(err, SM_ERR_INVALID, "field 'data' must be an object");
    unsigned f = types[ev->type].fields;
    sm_status st = SM_OK;
    if (st == SM_OK && (f & F_COMMENT_ID))
        st = get_uuid(data, "commentId", "data", ev->comment_id, err);
    if (st == SM_OK && (f & F_AUTHOR))
        st = get_owned(data, "author", &ev->author, err);
    if (st == SM_OK && (f & F_MESSAGE))
        st = get_owned(data, "message", &ev->message, err);
    if (st == SM_OK && (f & F_COMMENT))
        st = get_owned(data, "comment", &ev->comment, err);
    if (st == SM_OK && (f & F_USERNAME))
        st = get_owned(data, "username", &ev->username, err);
    if (st == SM_OK && (f & F_AT))
        st = get_time(data, types[ev->type].at_name, "data", &ev->at_ms, err);
    if (st == SM_OK && (f & F_AUTHOR_ID))
        st = get_owned_optional(data, "authorId", &ev->author_id, err);
    if (st == SM_OK && (f & F_USER_ID))
        st = get_owned_optional(data, "userId", &ev->user_id, err);
    return st;
}

sm_status sm_event_from_json(sm_event *ev, const json_t *obj, sm_error *err)
{
    memset(ev, 0, sizeof *ev);
    if (!json_is_object(obj))
        return sm_fail(err, SM_ERR_INVALID, "event: not a JSON object");
    const char *type_name = NULL;
    sm_status st = get_string(obj, "type", "event", &type_name, err);
    if (st != SM_OK)
        return st;
    ev->type = sm_event_type_from_name(type_name);
    if (ev->type == SM_EV_NONE) {
        char shown[80];
        snprintf(shown, sizeof shown, "%.64s", type_name);
        return sm_fail(err, SM_ERR_INVALID, "event: unknown type '%s'", shown);
    }
    const json_t *ver = json_object_get(obj, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 0)
        st = sm_fail(err, SM_ERR_INVALID, "event: field 'version' must be a non-negative integer");
    if (st == SM_OK)
        st = get_uuid(obj, "eventId", "event", ev->event_id, err);
    if (st == SM_OK)
        st = get_uuid(obj, "aggregateId", "event", ev->aggregate_id, err);
    if (st == SM_OK)
        st = get_time(obj, "timestamp", "event", &ev->timestamp_ms, err);
    if (st == SM_OK) {
        ev->version = (int64_t)json_integer_value(ver);
        st = sm_event_data_from_json(ev, json_object_get(obj, "data"), err);
    }
    if (st == SM_OK)
        st = sm_event_meta_from_json(&ev->meta, json_object_get(obj, "metadata"), err);
    if (st != SM_OK)
        sm_event_clear(ev);
    return st;
}

sm_status sm_event_decode(sm_event *ev, const char *text, size_t len, sm_error *err)
{
    memset(ev, 0, sizeof *ev);
    /* an envelope is two levels deep; anything far deeper is hostile and
     * would only cost stack in jansson's recursive parser */
    if (!sm_json_depth_within(text, len, SM_JSON_MAX_DEPTH))
        return sm_fail(err, SM_ERR_INVALID, "event: nested deeper than %d levels",
                       SM_JSON_MAX_DEPTH);
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return sm_fail(err, SM_ERR_INVALID, "event: invalid JSON at line %d: %s", jerr.line,
                       jerr.text);
    sm_status st = sm_event_from_json(ev, obj, err);
    json_decref(obj);
    return st;
}

sm_event *sm_event_list_push(sm_event_list *list)
{
    if (list->len == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        sm_event *items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return NULL;
        list->items = items;
        list->cap = cap;
    }
    sm_event *ev = &list->items[list->len++];
    memset(ev, 0, sizeof *ev);
    return ev;
}

void sm_event_list_free(sm_event_list *list)
{
    for (size_t i = 0; i < list->len; i++)
        sm_event_clear(&list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}
