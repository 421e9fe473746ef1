/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_query_params.c — libFuzzer harness for the query API's input
 * handling: the raw request target "PATH[?QUERY]" goes through
 * http_decode_path (as http_serve does) and query_routes_handle, so route
 * matching and every parameter parser in queries.c (the {postId}, {author}
 * and {n} segments; limit, offset, n, minVersion, author) run on it.
 *
 * The read model is a checking double: it asserts what reaches it: queries.c is the
 * edge, and rm_*.c trust it (docs/api.md, "Order and pages"), so every query
 * must arrive with limit 1..501 (a list page asks for one more than it
 * shows, to know whether another follows), offset 0..10,000, a canonical UUID, an
 * author of 1..64 bytes of valid UTF-8 and a non-negative like count; a
 * comment page with limit 1..501, a canonical post id and, after a cursor,
 * a canonical comment id and a date in range. The reply must be one of the
 * documented statuses and serialise. */
#include "fuzz_support.h"
#include "query_routes.h"
#include "sm_json.h"
#include "sm_log.h"
#include "sm_text.h"

#include <string.h>

static sm_status checking_query(void *impl, const rm_query *q, rm_post_list *out, sm_error *err)
{
    (void)impl;
    (void)err;
    FUZZ_CHECK(q->limit >= 1 && q->limit <= QUERY_MAX_LIMIT + 1, "limit %lld reached the store",
               (long long)q->limit);
    FUZZ_CHECK(q->offset >= 0 && q->offset <= QUERY_MAX_OFFSET, "offset %lld reached the store",
               (long long)q->offset);
    switch (q->kind) {
    case RM_Q_BY_ID: {
        sm_uuid_str canon;
        FUZZ_CHECK(q->id && sm_uuid_parse(q->id, canon) && strcmp(canon, q->id) == 0,
                   "id '%s' reached the store", q->id ? q->id : "(null)");
        break;
    }
    case RM_Q_BY_AUTHOR: {
        size_t n = q->author ? strlen(q->author) : 0;
        FUZZ_CHECK(n >= 1 && n <= QUERY_MAX_AUTHOR && sm_utf8_valid(q->author, n),
                   "an author of %zu bytes (or invalid UTF-8) reached the store", n);
        break;
    }
    case RM_Q_WITH_LIKES:
        FUZZ_CHECK(q->min_likes >= 0, "min_likes %lld reached the store",
                   (long long)q->min_likes);
        break;
    case RM_Q_ALL:
    case RM_Q_WITH_COMMENTS:
        break;
    default:
        FUZZ_CHECK(0, "unknown query kind %d", (int)q->kind);
    }
    /* one post, so the 200 shape (and its JSON) is built too */
    rm_post *p = rm_post_list_push(out);
    if (p) {
        strcpy(p->id, "6f0e1d2c-3b4a-4958-8776-655443322110");
        p->author = strdup(q->kind == RM_Q_BY_AUTHOR ? q->author : "alice");
        p->message = strdup("hello");
    }
    return SM_OK;
}

static sm_status checking_comment_page(void *impl, const rm_comment_query *q, rm_post_list *out,
                                       sm_error *err)
{
    (void)impl;
    (void)err;
    sm_uuid_str canon;
    FUZZ_CHECK(q->limit >= 1 && q->limit <= QUERY_COMMENTS_MAX_LIMIT + 1,
               "comment limit %lld reached the store", (long long)q->limit);
    FUZZ_CHECK(q->post_id && sm_uuid_parse(q->post_id, canon) && strcmp(canon, q->post_id) == 0,
               "post id '%s' reached the store", q->post_id ? q->post_id : "(null)");
    FUZZ_CHECK(!q->after_id || (sm_uuid_parse(q->after_id, canon) &&
                                strcmp(canon, q->after_id) == 0 && q->after_date_ms >= 0),
               "comment cursor '%s' reached the store", q->after_id);
    /* one comment, so the 200 shape is built too */
    rm_post *p = rm_post_list_push(out);
    rm_comment *c = p ? rm_post_add_comment(p) : NULL;
    if (c) {
        strcpy(p->id, q->post_id);
        strcpy(c->post_id, q->post_id);
        strcpy(c->comment_id, "6f0e1d2c-3b4a-4958-8776-655443322111");
        c->username = strdup("bob");
        c->comment = strdup("nice");
    }
    return SM_OK;
}

static sm_status checking_version(void *impl, const char *post_id, int64_t *version, sm_error *err)
{
    (void)impl;
    (void)err;
    sm_uuid_str canon;
    FUZZ_CHECK(sm_uuid_parse(post_id, canon) && strcmp(canon, post_id) == 0,
               "post_version asked for '%s'", post_id);
    *version = 3;
    return SM_OK;
}

static sm_status checking_apply(void *impl, const sm_event *ev, rm_outcome *o, sm_error *err)
{
    (void)impl, (void)ev, (void)o;
    return sm_fail(err, SM_ERR_INTERNAL, "not used");
}

static sm_status checking_ping(void *impl, sm_error *err)
{
    (void)impl, (void)err;
    return SM_OK;
}

static void checking_close(void *impl) { (void)impl; }

static const rm_ops checking_ops = {
    .name = "fuzz-checking",
    .apply = checking_apply,
    .query = checking_query,
    .comment_page = checking_comment_page,
    .post_version = checking_version,
    .ping = checking_ping,
    .close = checking_close,
};

static query_app app;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sm_log_set_level(SM_LOG_ERROR);
    static int impl;
    app.rm = rm_store_new(&checking_ops, &impl);
    app.min_version_wait_ms = 0;
    return app.rm ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a request target never holds a NUL byte (civetweb stops there) */
    char *target = strndup((const char *)data, size);
    if (!target)
        return 0;
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    char *path = NULL;
    sm_error err = {0};
    http_reply reply = {0};
    if (http_decode_path(target, &path, &err) != SM_OK) {
        FUZZ_CHECK(err.status == SM_ERR_INVALID, "path refused with status %d", (int)err.status);
        free(target);
        return 0;
    }
    FUZZ_CHECK(strlen(path) <= strlen(target), "decoding made the path longer");
    http_request req = {.method = "GET", .path = path, .query = query};
    query_routes_handle(&app, &req, &reply);
    int s = reply.status;
    FUZZ_CHECK(s == 200 || s == 204 || s == 400 || s == 404, "status %d for a GET", s);
    FUZZ_CHECK((s == 204) == (reply.body == NULL && reply.body_text == NULL),
               "status %d with%s a body", s, reply.body ? "" : "out");
    if (reply.body) {
        char *text = sm_json_dump(reply.body);
        FUZZ_CHECK(text != NULL, "the %d reply does not serialise", s);
        free(text);
    }
    http_reply_free(&reply);
    free(path);
    free(target);
    return 0;
}
