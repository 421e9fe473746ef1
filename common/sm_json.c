/* sm_json.c — see sm_json.h. */
#include "sm_json.h"

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
