/* sm_event.c — event envelope codec. Each type is described by the payload
 * fields it carries, so encoding and decoding are driven by one table and
 * cannot drift apart. */
#include "sm_event.h"

#include "sm_json.h"
#include "sm_time.h"

#include <stdlib.h>
#include <string.h>

enum {
    F_AUTHOR = 1 << 0,
    F_MESSAGE = 1 << 1,
    F_COMMENT = 1 << 2,
    F_USERNAME = 1 << 3,
    F_COMMENT_ID = 1 << 4,
    F_AT = 1 << 5
};

static const struct {
    const char *name;
    unsigned fields;
    const char *at_name; /* JSON name of at_ms when F_AT is set */
} types[SM_EV_TYPE_COUNT] = {
    [SM_EV_NONE] = {NULL, 0, NULL},
    [SM_EV_POST_CREATED] = {"PostCreatedEvent", F_AUTHOR | F_MESSAGE | F_AT, "datePosted"},
    [SM_EV_MESSAGE_UPDATED] = {"MessageUpdatedEvent", F_MESSAGE, NULL},
    [SM_EV_POST_LIKED] = {"PostLikedEvent", 0, NULL},
    [SM_EV_COMMENT_ADDED] = {"CommentAddedEvent",
                             F_COMMENT_ID | F_COMMENT | F_USERNAME | F_AT, "commentDate"},
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
    if (dup_field(&dst->author, src->author) && dup_field(&dst->message, src->message) &&
        dup_field(&dst->comment, src->comment) && dup_field(&dst->username, src->username))
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
    if (bad) {
        json_decref(d);
        return NULL;
    }
    return d;
}

json_t *sm_event_to_json(const sm_event *ev)
{
    json_t *data = sm_event_data_to_json(ev);
    if (!data)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "eventId", ev->event_id, "type",
                     types[ev->type].name, "aggregateId", ev->aggregate_id, "version",
                     (json_int_t)ev->version, "timestamp", sm_json_time(ev->timestamp_ms), "data",
                     data);
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
