/* SPDX-License-Identifier: Apache-2.0 */
/* sm_json.c — see sm_json.h. */
#include "sm_json.h"

#include "sm_time.h"

#include "sm_uuid.h"

#include <strings.h>

bool sm_json_depth_within(const char *text, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return true;
}

sm_status sm_json_parse_object(const char *body, size_t len, json_t **out, sm_error *err)
{
    *out = NULL;
    if (!body || len == 0)
        return sm_fail(err, SM_ERR_INVALID, "A non-empty request body is required.");
    if (!sm_json_depth_within(body, len, SM_JSON_MAX_DEPTH))
        return sm_fail(err, SM_ERR_INVALID,
                       "The request body nests arrays or objects deeper than %d levels.",
                       SM_JSON_MAX_DEPTH);
    json_error_t jerr;
    /* jansson validates UTF-8 and rejects \u0000 unless asked not to. */
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (!j)
        return sm_fail(err, SM_ERR_INVALID, "The request body is not valid JSON: %s (line %d, column %d).",
                       jerr.text, jerr.line, jerr.column);
    if (!json_is_object(j)) {
        json_decref(j);
        return sm_fail(err, SM_ERR_INVALID, "The request body must be a JSON object.");
    }
    *out = j;
    return SM_OK;
}

json_t *sm_json_get_ci(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (v)
        return v;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val) {
        if (strcasecmp(k, key) == 0)
            return val;
    }
    return NULL;
}

sm_status sm_json_req_string(const json_t *obj, const char *key, size_t max_bytes,
                             const char **out, sm_error *err)
{
    json_t *v = sm_json_get_ci(obj, key);
    if (!v || json_is_null(v))
        return sm_fail(err, SM_ERR_INVALID, "The %s field is required.", key);
    if (!json_is_string(v))
        return sm_fail(err, SM_ERR_INVALID, "The %s field must be a string.", key);
    if (json_string_length(v) > max_bytes)
        return sm_fail(err, SM_ERR_INVALID, "The %s field must be at most %zu bytes.", key,
                       max_bytes);
    *out = json_string_value(v);
    return SM_OK;
}

sm_status sm_json_req_uuid(const json_t *obj, const char *key, char out[37], sm_error *err)
{
    const char *s = NULL;
    sm_status st = sm_json_req_string(obj, key, 64, &s, err);
    if (st != SM_OK)
        return st;
    if (!sm_uuid_parse(s, out))
        return sm_fail(err, SM_ERR_INVALID, "The %s field must be a UUID.", key);
    return SM_OK;
}

char *sm_json_dump(const json_t *obj) { return json_dumps(obj, JSON_COMPACT); }

json_t *sm_json_time(int64_t ms)
{
    sm_time_str t;
    sm_time_format(ms, t);
    return json_string(t);
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* An owner id, or null when none is known (see sm_json.h). */
static json_t *owner_or_null(const char *id) { return id ? json_string(id) : json_null(); }

json_t *sm_json_comment(const char *comment_id, const char *post_id, const char *username,
                        const char *user_id, const char *comment, int64_t comment_date_ms,
                        bool edited, int64_t edited_at_ms)
{
    json_t *c = json_pack("{s:s, s:s, s:s}", "commentId", or_empty(comment_id), "postId",
                          or_empty(post_id), "username", or_empty(username));
    if (!c)
        return NULL;
    json_object_set_new(c, "userId", owner_or_null(user_id));
    json_object_set_new(c, "comment", json_string(or_empty(comment)));
    json_object_set_new(c, "commentDate", sm_json_time(comment_date_ms));
    json_object_set_new(c, "edited", json_boolean(edited));
    json_object_set_new(c, "editedAt", edited ? sm_json_time(edited_at_ms) : json_null());
    return c;
}

json_t *sm_json_post(const char *id, const char *author, const char *author_id,
                     const char *message, int64_t date_posted_ms, int64_t likes, int active,
                     int64_t version, json_t *comments)
{
    json_t *post = json_pack("{s:s, s:s}", "id", or_empty(id), "author", or_empty(author));
    if (!post) {
        json_decref(comments);
        return NULL;
    }
    json_object_set_new(post, "authorId", owner_or_null(author_id));
    json_object_set_new(post, "message", json_string(or_empty(message)));
    json_object_set_new(post, "datePosted", sm_json_time(date_posted_ms));
    json_object_set_new(post, "likes", json_integer((json_int_t)likes));
    if (active >= 0)
        json_object_set_new(post, "active", json_boolean(active));
    json_object_set_new(post, "version", json_integer(version));
    json_object_set_new(post, "comments", comments ? comments : json_array());
    return post;
}
