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

/* Parses a request body that must be one JSON object. Rejects empty bodies,
 * invalid JSON, invalid UTF-8, NUL characters and non-objects with
 * SM_ERR_INVALID. On success *out is a new reference the caller owns. */
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

#endif
