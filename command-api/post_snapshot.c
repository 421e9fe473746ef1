/* SPDX-License-Identifier: Apache-2.0 */
/* post_snapshot.c — snapshot text for the Post aggregate (post_snapshot.h).
 *
 * Format (schema 2), compact JSON:
 *   {"id":..,"version":n,"after":"<event id>","active":b,"author":..,
 *    ["authorId":..,]"message":..,"datePosted":ms,"likes":n,
 *    "comments":[{"id":..,"text":..,"username":..,["userId":..,]
 *                 "date":ms,"edited":b,"editedAt":ms}]}
 * authorId / userId are left out when NULL (made without auth).
 *
 * Schema 1 was the same without authorId / userId. Stores hand out only
 * snapshots of POST_SNAPSHOT_SCHEMA, so schema-1 rows are never read; the
 * decoder still takes a text without the ids (as NULL, which is what the
 * events of such a post fold to) so that a missing key is never a reason to
 * drop one. */
#include "post_snapshot.h"

#include <stdlib.h>
#include <string.h>

char *post_snapshot_encode(const post_state *p, const char *last_event_id)
{
    json_t *comments = json_array();
    for (size_t i = 0; comments && i < p->ncomments; i++) {
        const post_comment *c = &p->comments[i];
        if (json_array_append_new(comments,
                                  json_pack("{s:s, s:s, s:s, s:s*, s:I, s:b, s:I}", "id",
                                            c->id, "text", c->text, "username", c->username,
                                            "userId", c->user_id, "date",
                                            (json_int_t)c->date_ms, "edited", c->edited,
                                            "editedAt", (json_int_t)c->edited_at_ms)) != 0) {
            json_decref(comments);
            return NULL;
        }
    }
    json_t *j = json_pack("{s:s, s:I, s:s, s:b, s:s, s:s*, s:s, s:I, s:I, s:o}", "id", p->id,
                          "version", (json_int_t)p->version, "after", last_event_id, "active",
                          p->active, "author", p->author ? p->author : "", "authorId",
                          p->author_id, "message",
                          p->message ? p->message : "", "datePosted",
                          (json_int_t)p->date_posted_ms, "likes", (json_int_t)p->likes,
                          "comments", comments);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

/* An owner id: absent or null is NULL (schema 1, or made without auth);
 * anything but a string or null refuses the snapshot. */
static bool decode_owner_id(json_t *obj, const char *key, char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    return json_is_string(v) && (*out = strdup(json_string_value(v))) != NULL;
}

static bool decode_comment(json_t *jc, post_comment *c)
{
    const char *id, *text, *username;
    json_int_t date, edited_at;
    int edited;
    if (json_unpack(jc, "{s:s, s:s, s:s, s:I, s:b, s:I}", "id", &id, "text", &text, "username",
                    &username, "date", &date, "edited", &edited, "editedAt", &edited_at) != 0 ||
        !sm_uuid_parse(id, c->id) || !decode_owner_id(jc, "userId", &c->user_id))
        return false;
    c->text = strdup(text);
    c->username = strdup(username);
    c->date_ms = date;
    c->edited = edited;
    c->edited_at_ms = edited_at;
    return c->text && c->username;
}

static bool decode_comments(json_t *arr, post_state *p)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return true;
    if (!(p->comments = calloc(n, sizeof *p->comments)))
        return false;
    p->comments_cap = n;
    for (size_t i = 0; i < n; i++) {
        p->ncomments = i + 1; /* so post_free() releases a half-decoded one */
        if (!decode_comment(json_array_get(arr, i), &p->comments[i]))
            return false;
    }
    return true;
}

sm_status post_snapshot_decode(const char *text, const char *post_id, int64_t version,
                               post_state *out, sm_uuid_str last_event_id, sm_error *err)
{
    post_init(out);
    json_t *j = json_loads(text, 0, NULL);
    const char *id = NULL, *after = NULL, *author = NULL, *message = NULL;
    json_int_t v = -1, posted = 0, likes = 0;
    int active = 0;
    json_t *comments = NULL;
    bool ok = j && json_unpack(j, "{s:s, s:I, s:s, s:b, s:s, s:s, s:I, s:I, s:o}", "id", &id,
                               "version", &v, "after", &after, "active", &active, "author",
                               &author, "message", &message, "datePosted", &posted, "likes",
                               &likes, "comments", &comments) == 0;
    ok = ok && strcmp(id, post_id) == 0 && v == version && v >= 0 && likes >= 0 &&
         json_is_array(comments) && sm_uuid_parse(after, last_event_id);
    if (ok) {
        memcpy(out->id, id, sizeof out->id);
        out->version = v;
        out->active = active;
        out->date_posted_ms = posted;
        out->likes = likes;
        out->author = strdup(author);
        out->message = strdup(message);
        ok = out->author && out->message && decode_owner_id(j, "authorId", &out->author_id) &&
             decode_comments(comments, out);
    }
    json_decref(j);
    if (!ok) {
        post_free(out);
        return sm_fail(err, SM_ERR_INVALID, "snapshot of post %s at version %lld does not decode",
                       post_id, (long long)version);
    }
    return SM_OK;
}
