/* SPDX-License-Identifier: Apache-2.0 */
/* sm_json.h — JSON helpers for request bodies (jansson).
 *
 * Request field names are matched case-insensitively, as the original
 * ASP.NET service did ("author" and "Author" both bind); unknown fields are
 * ignored. Messages name the field as the API documents it (camelCase). */
#ifndef SM_JSON_H
#define SM_JSON_H

#include "sm_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of arrays and objects accepted in JSON text from outside
 * (request bodies, event envelopes). Every document smpost takes is flat
 * (depth 1 or 2); the bound exists because jansson parses recursively and
 * civetweb's worker threads have small stacks (100 KiB in Debian's build):
 * a body of 30,000 nested arrays, well under the 64 KiB body limit,
 * overflowed a worker's stack before jansson's own limit (2048) applied. */
#define SM_JSON_MAX_DEPTH 32

/* True if text[0..len) never nests arrays and objects deeper than
 * max_depth. Brackets inside strings do not count. Only a bound: the text
 * need not be valid JSON (the parser judges that afterwards). */
bool sm_json_depth_within(const char *text, size_t len, int max_depth);

/* Parses a request body that must be one JSON object. Rejects empty bodies,
 * nesting deeper than SM_JSON_MAX_DEPTH, invalid JSON, invalid UTF-8, NUL
 * characters and non-objects with SM_ERR_INVALID. On success *out is a new
 * reference the caller owns. */
sm_status sm_json_parse_object(const char *body, size_t len, json_t **out, sm_error *err);

/* Member of obj whose key equals key ignoring ASCII case; an exact match
 * wins over a case-folded one. Borrowed reference, or NULL. */
json_t *sm_json_get_ci(const json_t *obj, const char *key);

/* Reads a required string field of at most max_bytes bytes. Missing or null
 * -> "The <key> field is required."; other types -> "... must be a string.";
 * too long -> "... must be at most N bytes.". *out is borrowed from obj. */
sm_status sm_json_req_string(const json_t *obj, const char *key, size_t max_bytes,
                             const char **out, sm_error *err);

/* Reads a required UUID string field into out (canonical form). */
sm_status sm_json_req_uuid(const json_t *obj, const char *key, char out[37], sm_error *err);

/* Serialises obj compactly; caller frees. NULL on OOM. */
char *sm_json_dump(const json_t *obj);

/* An instant (ms since the epoch) as the API writes every time: a JSON
 * string in UTC ISO-8601 with milliseconds (sm_time_format). New reference. */
json_t *sm_json_time(int64_t ms);

/* The API's PostEntity and CommentEntity (docs/api.md), written in one
 * place for both services: the query side's read model rows and the
 * command side's rebuilt aggregates (PostHistory, PostAt) must never drift
 * apart. active < 0 leaves "active" out (the read model holds only live
 * posts); comments is an array of sm_json_comment()s, stolen. NULL strings
 * are written as "". The owner ids follow the name they belong to:
 * "authorId" after "author", "userId" after "username", the user id (the
 * token's `sub`) of whoever made the post or comment, or JSON null when
 * none is known (made with auth off, or before owner ids existed). New
 * references. */
json_t *sm_json_comment(const char *comment_id, const char *post_id, const char *username,
                        const char *user_id, const char *comment, int64_t comment_date_ms,
                        bool edited, int64_t edited_at_ms);
json_t *sm_json_post(const char *id, const char *author, const char *author_id,
                     const char *message, int64_t date_posted_ms, int64_t likes, int active,
                     int64_t version, json_t *comments);

#endif
