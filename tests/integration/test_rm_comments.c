/* SPDX-License-Identifier: Apache-2.0 */
/* test_rm_comments.c — a post's comments against each read model adapter,
 * through the query dispatcher (queries.h) as HTTP would reach it: the
 * newest comments inline with commentCount and commentsTruncated, and the
 * pages of GET /api/v1/PostLookup/comments/{postId}, which together give
 * every comment exactly once, never one removed before its page is read.
 * SMPOST_TEST_RM_URL picks the adapter as in test_read_model.c ("sqlite":
 * a temp file; "mssql": SMPOST_TEST_MSSQL, else SKIPPED, 77).
 *
 * Each case works on posts of its own (new ids), asked for by id, so a
 * server shared with other tests changes nothing it reads. */
#include "page_cursor.h"
#include "proc.h"
#include "queries.h"
#include "sm_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char url[1024], tmpdir[256];

typedef struct fixture {
    query_app app;
    query_limits limits;
    http_reply reply;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sm_error err = {0};
    if (rm_open(url, &f->app.rm, &err) != SM_OK)
        fail_msg("rm_open(%s): %s", url, err.message);
    f->limits = (query_limits){QUERY_DEFAULT_COMMENTS_INLINE, QUERY_DEFAULT_MAX_RESPONSE_BYTES};
    f->app.limits = &f->limits;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_reply_free(&f->reply);
    rm_close(f->app.rm);
    free(f);
    return 0;
}

static void apply_ok(rm_store *s, sm_event *e)
{
    rm_outcome o;
    sm_error err = {0};
    if (rm_apply(s, e, &o, &err) != SM_OK || o != RM_APPLIED)
        fail_msg("apply %s: %s", sm_event_type_name(e->type), err.message);
    sm_event_clear(e);
}

/* A post of its own; returns its next version. */
static int64_t new_post(rm_store *s, sm_uuid_str id)
{
    sm_uuid_new(id);
    sm_event e = {.type = SM_EV_POST_CREATED, .at_ms = 1000, .timestamp_ms = 1000};
    strcpy(e.aggregate_id, id);
    e.author = strdup("alice");
    e.message = strdup("m");
    apply_ok(s, &e);
    return 1;
}

/* n comments at the given dates (ties on purpose: the id orders them),
 * their ids in cids; *v is the post's next version. */
static void add_comments(rm_store *s, const char *post, int64_t *v, size_t n, const int64_t *at,
                         sm_uuid_str *cids)
{
    for (size_t i = 0; i < n; i++) {
        sm_event c = {.type = SM_EV_COMMENT_ADDED, .version = (*v)++, .at_ms = at[i]};
        strcpy(c.aggregate_id, post);
        sm_uuid_new(c.comment_id);
        strcpy(cids[i], c.comment_id);
        char text[32];
        snprintf(text, sizeof text, "comment %zu", i);
        c.comment = strdup(text);
        c.username = strdup("bob");
        apply_ok(s, &c);
    }
}

static void remove_comment(rm_store *s, const char *post, int64_t *v, const char *cid)
{
    sm_event r = {.type = SM_EV_COMMENT_REMOVED, .version = (*v)++, .at_ms = 5000};
    strcpy(r.aggregate_id, post);
    strcpy(r.comment_id, cid);
    apply_ok(s, &r);
}

static int dispatch(fixture *f, query_type type, const char *arg, const char *qs)
{
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    query_dispatch(&f->app, type, arg, qs, &f->reply);
    return f->reply.status;
}

/* The post of a byId reply. */
static json_t *by_id(fixture *f, const char *id)
{
    assert_int_equal(dispatch(f, QUERY_BY_ID, id, NULL), 200);
    return json_array_get(json_object_get(f->reply.body, "posts"), 0);
}

/* Every comment of the post in (date, id) order, as the read model has
 * them with no cap: the reference the pages are held to. */
static size_t all_comments(fixture *f, const char *id, sm_uuid_str *out, size_t cap)
{
    rm_query q = {.kind = RM_Q_BY_ID, .id = id, .limit = 1};
    rm_post_list l = {0};
    sm_error err = {0};
    assert_int_equal(rm_query_posts(f->app.rm, &q, &l, &err), SM_OK);
    assert_int_equal(l.len, 1);
    assert_true(l.items[0].ncomments <= cap);
    assert_int_equal(l.items[0].comment_count, (int64_t)l.items[0].ncomments);
    size_t n = l.items[0].ncomments;
    for (size_t i = 0; i < n; i++)
        strcpy(out[i], l.items[0].comments[i].comment_id);
    rm_post_list_free(&l);
    return n;
}

/* One page of comments after `after` (NULL: the first); appends its ids
 * to seen and copies nextCursor into next ("" when null). */
static size_t comment_page(fixture *f, const char *post, const char *after, int limit,
                           sm_uuid_str *seen, size_t nseen, char *next)
{
    char qs[128];
    snprintf(qs, sizeof qs, "limit=%d%s%s", limit, after ? "&after=" : "", after ? after : "");
    assert_int_equal(dispatch(f, QUERY_COMMENTS, post, qs), 200);
    json_t *cs = json_object_get(f->reply.body, "comments");
    assert_true(json_is_array(cs));
    assert_true(json_array_size(cs) <= (size_t)limit);
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *c = json_array_get(cs, i);
        assert_string_equal(json_string_value(json_object_get(c, "postId")), post);
        strcpy(seen[nseen++], json_string_value(json_object_get(c, "commentId")));
    }
    json_t *n = json_object_get(f->reply.body, "nextCursor");
    assert_true(json_is_null(n) || json_is_string(n));
    snprintf(next, PAGE_CURSOR_LEN + 1, "%s", json_is_string(n) ? json_string_value(n) : "");
    return nseen;
}

static void test_comment_pages_together_are_the_full_list(void **state)
{
    fixture *f = *state;
    sm_uuid_str post, cids[9], full[16], seen[16];
    int64_t v = new_post(f->app.rm, post);
    const int64_t at[9] = {2000, 2000, 2000, 2001, 2002, 2002, 2003, 2004, 2004};
    add_comments(f->app.rm, post, &v, 9, at, cids);
    size_t n = all_comments(f, post, full, 16);
    assert_int_equal(n, 9);
    for (int limit = 1; limit <= 10; limit++) {
        char next[PAGE_CURSOR_LEN + 1] = "", after[PAGE_CURSOR_LEN + 1];
        size_t nseen = 0;
        int pages = 0;
        do {
            strcpy(after, next);
            nseen = comment_page(f, post, pages ? after : NULL, limit, seen, nseen, next);
            pages++;
            assert_true(pages <= 10);
        } while (*next);
        assert_int_equal(nseen, n);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(seen[i], full[i]);
        assert_int_equal(pages, (9 + limit - 1) / limit); /* the last page says null */
    }
}

static void test_a_removed_comment_never_appears_in_a_page(void **state)
{
    fixture *f = *state;
    sm_uuid_str post, cids[6], seen[8];
    int64_t v = new_post(f->app.rm, post);
    const int64_t at[6] = {2000, 2001, 2002, 2003, 2004, 2005};
    add_comments(f->app.rm, post, &v, 6, at, cids);
    remove_comment(f->app.rm, post, &v, cids[1]); /* before any page */
    char next[PAGE_CURSOR_LEN + 1], after[PAGE_CURSOR_LEN + 1];
    size_t nseen = comment_page(f, post, NULL, 2, seen, 0, next);
    assert_int_equal(nseen, 2);
    assert_string_equal(seen[0], cids[0]);
    assert_string_equal(seen[1], cids[2]);
    /* between two pages: the one the next page would start with, and the
     * one the cursor points at (the cursor is a place, not a row) */
    remove_comment(f->app.rm, post, &v, cids[3]);
    remove_comment(f->app.rm, post, &v, cids[2]);
    strcpy(after, next);
    nseen = comment_page(f, post, after, 2, seen, nseen, next);
    assert_int_equal(nseen, 4);
    assert_string_equal(seen[2], cids[4]);
    assert_string_equal(seen[3], cids[5]);
    assert_string_equal(next, "");
    json_t *p = by_id(f, post);
    assert_int_equal(json_integer_value(json_object_get(p, "commentCount")), 3);
}

/* commentCount and commentsTruncated at 0, exactly N and N + 1 comments,
 * the inline ones the newest N, oldest first. */
static void test_inline_comments_are_the_newest_n_with_count_and_truncated(void **state)
{
    fixture *f = *state;
    f->limits.comments_inline = 3;
    const int64_t at[4] = {2000, 2001, 2001, 2002};
    for (size_t n = 0; n <= 4; n++) {
        sm_uuid_str post, cids[4], full[4];
        int64_t v = new_post(f->app.rm, post);
        add_comments(f->app.rm, post, &v, n, at, cids);
        size_t all = all_comments(f, post, full, 4);
        json_t *p = by_id(f, post);
        json_t *cs = json_object_get(p, "comments");
        assert_int_equal(json_integer_value(json_object_get(p, "commentCount")), (json_int_t)n);
        assert_true(json_is_boolean(json_object_get(p, "commentsTruncated")));
        assert_int_equal(json_is_true(json_object_get(p, "commentsTruncated")), n > 3);
        size_t shown = n < 3 ? n : 3;
        assert_int_equal(json_array_size(cs), shown);
        for (size_t i = 0; i < shown; i++) /* the last `shown` of the full list */
            assert_string_equal(
                json_string_value(json_object_get(json_array_get(cs, i), "commentId")),
                full[all - shown + i]);
    }
}

static void test_inline_zero_carries_no_comment_but_the_count(void **state)
{
    fixture *f = *state;
    f->limits.comments_inline = 0;
    sm_uuid_str post, empty, cids[2];
    int64_t v = new_post(f->app.rm, post);
    const int64_t at[2] = {2000, 2001};
    add_comments(f->app.rm, post, &v, 2, at, cids);
    new_post(f->app.rm, empty);
    json_t *p = by_id(f, post);
    assert_int_equal(json_array_size(json_object_get(p, "comments")), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "commentCount")), 2);
    assert_true(json_is_true(json_object_get(p, "commentsTruncated")));
    p = by_id(f, empty);
    assert_int_equal(json_array_size(json_object_get(p, "comments")), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "commentCount")), 0);
    assert_true(json_is_false(json_object_get(p, "commentsTruncated")));
}

/* No such post: 204, as byId; a post with no comment: 200, [] and null. */
static void test_unknown_post_is_204_and_a_post_without_comments_an_empty_page(void **state)
{
    fixture *f = *state;
    sm_uuid_str post, nobody;
    new_post(f->app.rm, post);
    sm_uuid_new(nobody);
    assert_int_equal(dispatch(f, QUERY_COMMENTS, nobody, NULL), 204);
    assert_null(f->reply.body);
    assert_int_equal(dispatch(f, QUERY_COMMENTS, post, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(f->reply.body, "comments")), 0);
    assert_true(json_is_null(json_object_get(f->reply.body, "nextCursor")));
}

/* A comment page stops at the byte budget before its limit, and its
 * cursor goes on right after the last comment shown. */
static void test_a_comment_page_stops_at_the_byte_budget(void **state)
{
    fixture *f = *state;
    sm_uuid_str post, cids[5], seen[8];
    int64_t v = new_post(f->app.rm, post);
    const int64_t at[5] = {2000, 2001, 2002, 2003, 2004};
    add_comments(f->app.rm, post, &v, 5, at, cids);
    /* room for two of these small comments, not three */
    json_t *one = sm_json_comment(cids[0], post, "bob", NULL, "comment 0", 2000, false, 0);
    int64_t each = (int64_t)json_dumpb(one, NULL, 0, JSON_COMPACT) + 1;
    json_decref(one);
    f->limits.max_response_bytes = query_comment_page_envelope_max() + 2 * each + each / 2;
    char next[PAGE_CURSOR_LEN + 1], after[PAGE_CURSOR_LEN + 1];
    size_t nseen = comment_page(f, post, NULL, 50, seen, 0, next);
    assert_int_equal(nseen, 2);
    strcpy(after, next);
    nseen = comment_page(f, post, after, 50, seen, nseen, next);
    strcpy(after, next);
    nseen = comment_page(f, post, after, 50, seen, nseen, next);
    assert_int_equal(nseen, 5);
    assert_string_equal(next, "");
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(seen[i], cids[i]);
}

int main(void)
{
    const char *which = getenv("SMPOST_TEST_RM_URL");
    bool mssql = which && strcmp(which, "mssql") == 0;
    if (mssql) {
        const char *m = getenv("SMPOST_TEST_MSSQL");
        if (!m || !*m) {
            printf("SKIPPED: SMPOST_TEST_MSSQL not set (.ci/run starts Babelfish and sets it)\n");
            return 77;
        }
        snprintf(url, sizeof url, "mssql:%s", m);
    } else {
        if (!test_temp_dir("smpost-comments", tmpdir, sizeof tmpdir))
            return 1;
        snprintf(url, sizeof url, "sqlite:%s/readmodel.db", tmpdir);
    }
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_comment_pages_together_are_the_full_list),
        T(test_a_removed_comment_never_appears_in_a_page),
        T(test_inline_comments_are_the_newest_n_with_count_and_truncated),
        T(test_inline_zero_carries_no_comment_but_the_count),
        T(test_unknown_post_is_204_and_a_post_without_comments_an_empty_page),
        T(test_a_comment_page_stops_at_the_byte_budget),
    };
    int rc = cmocka_run_group_tests_name(mssql ? "rm_comments_mssql" : "rm_comments_sqlite",
                                         tests, NULL, NULL);
    if (tmpdir[0])
        test_rm_rf(tmpdir);
    return rc;
}
