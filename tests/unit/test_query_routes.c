/* SPDX-License-Identifier: Apache-2.0 */
/* test_query_routes.c — the query API's HTTP mapping and query dispatcher
 * over a real SQLite read model in a temp directory (no Kafka): shapes,
 * 200/204, pagination, and every kind of bad input. */
#include "commands.h"
#include "page_cursor.h"
#include "proc.h"
#include "query_routes.h"
#include "sm_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    char dir[256];
    query_app app;
    http_reply reply;
    sm_uuid_str ids[3];
} fixture;

/* author_id / user_id: the owners' user ids, NULL as in events written
 * with auth off. */
static void add_post(rm_store *rm, const char *id, const char *author, const char *author_id,
                     int64_t at, int likes, bool comment, const char *user_id)
{
    sm_event e = {0};
    sm_uuid_new(e.event_id);
    strcpy(e.aggregate_id, id);
    e.type = SM_EV_POST_CREATED;
    e.at_ms = e.timestamp_ms = at;
    e.author = strdup(author);
    e.message = strdup("hello");
    e.author_id = author_id ? strdup(author_id) : NULL;
    rm_outcome o;
    sm_error err = {0};
    assert_int_equal(rm_apply(rm, &e, &o, &err), SM_OK);
    sm_event_clear(&e);
    int64_t v = 1;
    for (; v <= likes; v++) {
        sm_event l = {.type = SM_EV_POST_LIKED, .version = v};
        strcpy(l.aggregate_id, id);
        assert_int_equal(rm_apply(rm, &l, &o, &err), SM_OK);
    }
    if (comment) {
        sm_event c = {.type = SM_EV_COMMENT_ADDED, .version = v, .at_ms = at + 1};
        strcpy(c.aggregate_id, id);
        sm_uuid_new(c.comment_id);
        c.comment = strdup("nice");
        c.username = strdup("bob");
        c.user_id = user_id ? strdup(user_id) : NULL;
        assert_int_equal(rm_apply(rm, &c, &o, &err), SM_OK);
        sm_event_clear(&c);
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char url[320];
    if (!test_temp_dir("smpost-q", f->dir, sizeof f->dir))
        return -1;
    snprintf(url, sizeof url, "sqlite:%s/rm.db", f->dir);
    sm_error err = {0};
    if (rm_open(url, &f->app.rm, &err) != SM_OK)
        return -1;
    f->app.min_version_wait_ms = 50;
    for (int i = 0; i < 3; i++)
        sm_uuid_new(f->ids[i]);
    add_post(f->app.rm, f->ids[0], "alice", NULL, 1000, 0, false, NULL);
    add_post(f->app.rm, f->ids[1], "Alice", "sub-alice", 2000, 2, true, "sub-bob");
    add_post(f->app.rm, f->ids[2], "bob", NULL, 3000, 5, false, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_reply_free(&f->reply);
    rm_close(f->app.rm);
    test_rm_rf(f->dir);
    free(f);
    return 0;
}

static int get(fixture *f, const char *path, const char *query)
{
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    http_request req = {.method = "GET", .path = path, .query = query};
    query_routes_handle(&f->app, &req, &f->reply);
    return f->reply.status;
}

static const char *msg(fixture *f)
{
    return json_string_value(json_object_get(f->reply.body, "message"));
}

static size_t nposts(fixture *f)
{
    return json_array_size(json_object_get(f->reply.body, "posts"));
}

static const char *post_field(fixture *f, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(f->reply.body, "posts"), i), key));
}

static void test_all_posts_newest_first_with_the_original_message(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup", NULL), 200);
    assert_int_equal(nposts(f), 3);
    assert_string_equal(msg(f), "Successfully returned 3 posts");
    assert_string_equal(post_field(f, 0, "id"), f->ids[2]);
    assert_string_equal(post_field(f, 2, "id"), f->ids[0]);
    json_t *p = json_array_get(json_object_get(f->reply.body, "posts"), 1);
    const char *keys[] = {"id",       "author",       "authorId",          "message",
                          "datePosted", "likes",      "version",           "comments",
                          "commentCount", "commentsTruncated"};
    assert_int_equal(json_object_size(p), 10);
    for (size_t i = 0; i < 10; i++)
        assert_non_null(json_object_get(p, keys[i]));
    assert_int_equal(json_integer_value(json_object_get(p, "commentCount")), 1);
    assert_true(json_is_false(json_object_get(p, "commentsTruncated")));
    json_t *c = json_array_get(json_object_get(p, "comments"), 0);
    const char *ckeys[] = {"commentId", "postId", "username",  "userId",
                           "comment",   "commentDate", "edited", "editedAt"};
    assert_int_equal(json_object_size(c), 8);
    for (size_t i = 0; i < 8; i++)
        assert_non_null(json_object_get(c, ckeys[i]));
    assert_string_equal(json_string_value(json_object_get(p, "datePosted")),
                        "1970-01-01T00:00:02.000Z");
}

/* A post's JSON in the last reply, by id (NULL if absent). */
static json_t *post_in_reply(fixture *f, const char *id)
{
    json_t *posts = json_object_get(f->reply.body, "posts"), *p;
    size_t i;
    json_array_foreach(posts, i, p)
        if (!strcmp(json_string_value(json_object_get(p, "id")), id))
            return p;
    return NULL;
}

static void test_owner_ids_are_returned_and_null_when_unknown(void **state)
{
    fixture *f = *state;
    char by_id[120];
    snprintf(by_id, sizeof by_id, "/api/v1/PostLookup/byId/%s", f->ids[1]);
    const char *paths[] = {"/api/v1/PostLookup", by_id, "/api/v1/PostLookup/byAuthor/alice",
                           "/api/v1/PostLookup/withComments"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(get(f, paths[i], NULL), 200);
        json_t *owned = post_in_reply(f, f->ids[1]);
        assert_non_null(owned);
        assert_string_equal(json_string_value(json_object_get(owned, "authorId")), "sub-alice");
        json_t *c = json_array_get(json_object_get(owned, "comments"), 0);
        assert_string_equal(json_string_value(json_object_get(c, "userId")), "sub-bob");
        json_t *old = post_in_reply(f, f->ids[0]); /* all and byAuthor only */
        if (old)
            assert_true(json_is_null(json_object_get(old, "authorId")));
    }
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor/bob", NULL), 200);
    assert_true(json_is_null(json_object_get(post_in_reply(f, f->ids[2]), "authorId")));
}

static void test_by_id_answers_one_post_or_204(void **state)
{
    fixture *f = *state;
    char path[120];
    snprintf(path, sizeof path, "/api/v1/postlookup/BYID/%s", f->ids[1]);
    assert_int_equal(get(f, path, NULL), 200);
    assert_string_equal(msg(f), "Successfully returned 1 post");
    assert_int_equal(get(f, "/api/v1/PostLookup/byId/6f0e1d2c-3b4a-4958-8776-655443322110", NULL),
                     204);
    assert_null(f->reply.body);
}

static void test_by_id_rejects_ids_that_are_not_uuids(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup/byId/nope", NULL), 400);
    assert_string_equal(msg(f), "The post id 'nope' is not a valid UUID.");
}

static void test_min_version_not_reached_answers_stale_with_headers(void **state)
{
    fixture *f = *state;
    char path[120];
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s", f->ids[2]);
    assert_int_equal(get(f, path, "minVersion=5"), 200);
    assert_null(strstr(f->reply.extra_headers, "Stale"));
    assert_non_null(strstr(f->reply.extra_headers, "X-Read-Model-Version: 5"));
    assert_int_equal(get(f, path, "minVersion=9"), 200);
    assert_non_null(strstr(f->reply.extra_headers, "X-Read-Model-Stale: true"));
    assert_int_equal(get(f, path, "minVersion=-1"), 400);
    assert_int_equal(get(f, path, "minVersion=abc"), 400);
}

static void test_by_author_matches_exactly_ignoring_case(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor/ALICE", NULL), 200);
    assert_int_equal(nposts(f), 2);
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor/ali", NULL), 204);
    /* the query-string form decodes its value (an author may hold a '/') */
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor", "author=Al%69ce"), 200);
    assert_int_equal(nposts(f), 2);
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor", "author=a%2Fb"), 204);
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor", NULL), 400);
    char path[200] = "/api/v1/PostLookup/byAuthor/";
    memset(path + strlen(path), 'a', 65);
    assert_int_equal(get(f, path, NULL), 400);
    assert_string_equal(msg(f), "The author must be at most 64 bytes.");
}

static void test_with_comments_and_with_likes_take_n_in_path_or_query(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup/withComments", NULL), 200);
    assert_int_equal(nposts(f), 1);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes/2", NULL), 200);
    assert_int_equal(nposts(f), 2);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes", "n=5"), 200);
    assert_int_equal(nposts(f), 1);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes", NULL), 200); /* n = 1 */
    assert_int_equal(nposts(f), 2);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes/0", NULL), 200);
    assert_int_equal(nposts(f), 3);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes/6", NULL), 204);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes/-1", NULL), 400);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes/two", NULL), 400);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes/99999999999999999999", NULL), 400);
}

static void test_limit_and_offset_page_and_are_bounded(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=2&offset=1"), 200);
    assert_int_equal(nposts(f), 2);
    assert_string_equal(post_field(f, 0, "id"), f->ids[1]);
    assert_int_equal(get(f, "/api/v1/PostLookup", "offset=3"), 204);
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=0"), 400);
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=501"), 400);
    assert_int_equal(get(f, "/api/v1/PostLookup", "offset=-2"), 400);
    /* a value too long to be a count is refused, not ignored */
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=000000000000000000000000000000000000002"),
                     400);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes",
                         "n=99999999999999999999999999999999999999999"), 400);
}

static const char *next_cursor(fixture *f)
{
    return json_string_value(json_object_get(f->reply.body, "nextCursor"));
}

static void test_list_answers_carry_next_cursor_and_by_id_does_not(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup", NULL), 200);
    assert_int_equal(json_object_size(f->reply.body), 3); /* posts, message, nextCursor */
    assert_true(json_is_null(json_object_get(f->reply.body, "nextCursor"))); /* all fit */
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=3"), 200); /* exactly full */
    assert_true(json_is_null(json_object_get(f->reply.body, "nextCursor")));
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=2"), 200);
    assert_int_equal(nposts(f), 2);
    assert_string_equal(msg(f), "Successfully returned 2 posts");
    char qs[128];
    snprintf(qs, sizeof qs, "limit=2&after=%s", next_cursor(f));
    assert_int_equal(get(f, "/api/v1/PostLookup", qs), 200);
    assert_int_equal(nposts(f), 1);
    assert_string_equal(post_field(f, 0, "id"), f->ids[0]);
    assert_string_equal(msg(f), "Successfully returned 1 post");
    assert_true(json_is_null(json_object_get(f->reply.body, "nextCursor")));
    /* after the last post (its cursor made here: the API never sends
     * one, but a post removed meanwhile leads there): the original's 204 */
    char last[PAGE_CURSOR_LEN + 1];
    assert_true(page_cursor_encode(1000, f->ids[0], last));
    snprintf(qs, sizeof qs, "after=%s", last);
    assert_int_equal(get(f, "/api/v1/PostLookup", qs), 204);
    char by_id[120];
    snprintf(by_id, sizeof by_id, "/api/v1/PostLookup/byId/%s", f->ids[0]);
    assert_int_equal(get(f, by_id, NULL), 200);
    assert_null(json_object_get(f->reply.body, "nextCursor"));
}

/* Walks path?query by offset and by cursor with page size `limit`,
 * returning both id sequences joined by spaces. */
static void walk_both(fixture *f, const char *path, const char *query, int limit, char *by_offset,
                      char *by_cursor, size_t cap)
{
    char qs[256], cursor[64] = "";
    by_offset[0] = by_cursor[0] = '\0';
    for (int off = 0;; off += limit) {
        snprintf(qs, sizeof qs, "%s%slimit=%d&offset=%d", query ? query : "", query ? "&" : "",
                 limit, off);
        int st = get(f, path, qs);
        if (st == 204)
            break;
        assert_int_equal(st, 200);
        for (size_t i = 0; i < nposts(f); i++)
            snprintf(by_offset + strlen(by_offset), cap - strlen(by_offset), "%s ",
                     post_field(f, i, "id"));
    }
    for (int pages = 0;; pages++) {
        assert_true(pages < 100);
        snprintf(qs, sizeof qs, "%s%slimit=%d%s%s", query ? query : "", query ? "&" : "", limit,
                 cursor[0] ? "&after=" : "", cursor);
        assert_int_equal(get(f, path, qs), 200);
        for (size_t i = 0; i < nposts(f); i++)
            snprintf(by_cursor + strlen(by_cursor), cap - strlen(by_cursor), "%s ",
                     post_field(f, i, "id"));
        const char *next = next_cursor(f);
        if (!next)
            break;
        assert_int_equal(nposts(f), limit); /* only the last page is short */
        snprintf(cursor, sizeof cursor, "%s", next);
    }
}

static void test_cursor_pages_equal_offset_pages_on_every_list_route(void **state)
{
    fixture *f = *state;
    /* three more of alice's posts at one millisecond (the id breaks the
     * tie), and more liked and commented ones */
    for (int i = 0; i < 9; i++) {
        sm_uuid_str id;
        sm_uuid_new(id);
        add_post(f->app.rm, id, i % 2 ? "ALICE" : "alice", NULL, i < 3 ? 2000 : 1500 + i * 100,
                 i % 3, i % 2 == 0, NULL);
    }
    const struct {
        const char *path, *query;
    } routes[] = {
        {"/api/v1/PostLookup", NULL},
        {"/api/v1/PostLookup/byAuthor/alice", NULL},
        {"/api/v1/PostLookup/byAuthor", "author=ALICE"},
        {"/api/v1/PostLookup/withComments", NULL},
        {"/api/v1/PostLookup/withLikes/1", NULL},
        {"/api/v1/PostLookup/withLikes", "n=2"},
    };
    static char a[4096], b[4096];
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++)
        for (int limit = 1; limit <= 4; limit++) {
            walk_both(f, routes[r].path, routes[r].query, limit, a, b, sizeof a);
            assert_true(strlen(a) > 37);
            if (strcmp(a, b))
                fail_msg("%s?%s limit %d:\n offset %s\n cursor %s", routes[r].path,
                         routes[r].query ? routes[r].query : "", limit, a, b);
        }
}

/* Posts inserted between two pages, newer than all or at the cursor's own
 * millisecond: the next page neither repeats a post nor skips one. */
static void test_cursor_pages_neither_repeat_nor_skip_under_inserts(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=1"), 200);
    assert_string_equal(post_field(f, 0, "id"), f->ids[2]);
    char qs[128];
    snprintf(qs, sizeof qs, "limit=1&after=%s", next_cursor(f));
    sm_uuid_str n1, n2, n3;
    sm_uuid_new(n1), sm_uuid_new(n2), sm_uuid_new(n3);
    n2[0] = '0';
    n3[0] = 'f';
    add_post(f->app.rm, n1, "carol", NULL, 9000, 0, false, NULL); /* newest */
    add_post(f->app.rm, n2, "carol", NULL, 3000, 0, false, NULL); /* tie with ids[2] */
    add_post(f->app.rm, n3, "carol", NULL, 3000, 0, false, NULL);
    char seen[512] = "";
    for (int pages = 0; pages < 10; pages++) {
        assert_int_equal(get(f, "/api/v1/PostLookup", qs), 200);
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s ", post_field(f, 0, "id"));
        if (!next_cursor(f))
            break;
        snprintf(qs, sizeof qs, "limit=1&after=%s", next_cursor(f));
    }
    assert_null(strstr(seen, f->ids[2])); /* never repeated */
    assert_non_null(strstr(seen, f->ids[1]));
    assert_non_null(strstr(seen, f->ids[0]));
    assert_null(strstr(seen, n1)); /* before the place: not on later pages */
}

static void test_a_malformed_cursor_or_a_deep_offset_is_400(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=1"), 200);
    char good[64], qs[160];
    snprintf(good, sizeof good, "%s", next_cursor(f));
    const char *bad[] = {"after=", "after=abc", "after=null", "after=%00", "after=%27%3B--",
                         "after=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                         "after=AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* format 2 */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (get(f, "/api/v1/PostLookup", bad[i]) != 400)
            fail_msg("%s: %d, want 400", bad[i], f->reply.status);
        assert_string_equal(json_string_value(json_object_get(f->reply.body, "error")),
                            "invalid_request");
        assert_non_null(strstr(msg(f), "nextCursor"));
    }
    /* a well-formed cursor is a place, not a lookup: no such post is fine */
    char place[PAGE_CURSOR_LEN + 1];
    sm_uuid_str gone;
    sm_uuid_new(gone);
    assert_true(page_cursor_encode(2500, gone, place));
    snprintf(qs, sizeof qs, "after=%s", place);
    assert_int_equal(get(f, "/api/v1/PostLookup", qs), 200);
    assert_int_equal(nposts(f), 2);
    assert_string_equal(post_field(f, 0, "id"), f->ids[1]);
    snprintf(qs, sizeof qs, "after=%sA", good);
    assert_int_equal(get(f, "/api/v1/PostLookup/withLikes/0", qs), 400);
    snprintf(qs, sizeof qs, "after=%s&offset=0", good);
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor/alice", qs), 400);
    assert_string_equal(msg(f), "Use either after or offset, not both.");
    /* offset stays for the seed's clients, up to 10,000 (docs/api.md) */
    assert_int_equal(get(f, "/api/v1/PostLookup", "offset=10000"), 204);
    assert_int_equal(get(f, "/api/v1/PostLookup", "offset=10001"), 400);
    assert_string_equal(msg(f), "offset must be an integer from 0 to 10000; to page deeper, "
                                "pass the previous page's nextCursor as after.");
}

/* Numbers no count can be, signs, exponents, encoded NULs and over-long
 * values: each is a 400 with a JSON message, never a query with a clamped
 * or truncated value. */
static void test_hostile_parameters_are_400(void **state)
{
    fixture *f = *state;
    char by_id[120];
    snprintf(by_id, sizeof by_id, "/api/v1/PostLookup/byId/%s", f->ids[0]);
    const struct {
        const char *path, *query;
    } bad[] = {
        {"/api/v1/PostLookup", "limit=1e400"},
        {"/api/v1/PostLookup", "limit=99999999999999999999"},
        {"/api/v1/PostLookup", "limit=18446744073709551617"},
        {"/api/v1/PostLookup", "limit=%2B5"}, /* "+5" */
        {"/api/v1/PostLookup", "limit=5%00"}, /* would read as 5 */
        {"/api/v1/PostLookup", "limit=%205"},
        {"/api/v1/PostLookup", "limit=0x10"},
        {"/api/v1/PostLookup", "offset=1000001"},
        {"/api/v1/PostLookup", "offset=1e3"},
        {"/api/v1/PostLookup", "offset=-0"},
        {by_id, "minVersion=9223372036854775808"},
        {by_id, "minVersion=1e400"},
        {by_id, "minVersion=%2D1"},
        {"/api/v1/PostLookup/withLikes/1e400", NULL},
        {"/api/v1/PostLookup/withLikes/9223372036854775808", NULL},
        {"/api/v1/PostLookup/withLikes", "n=-1"},
        {"/api/v1/PostLookup/byAuthor", "author=alice%00x"}, /* would match alice */
        {"/api/v1/PostLookup/byAuthor", "author=%FF%FE"},    /* not UTF-8 */
        {"/api/v1/PostLookup/byAuthor/\xc0\xae", NULL},      /* overlong '.' */
        {"/api/v1/PostLookup/byId/..", NULL},
        {"/api/v1/PostLookup/byId/6f0e1d2c-3b4a-4958-8776-65544332211", NULL},  /* 35 */
        {"/api/v1/PostLookup/byId/6f0e1d2c-3b4a-4958-8776-6554433221100", NULL}, /* 37 */
        {"/api/v1/PostLookup/byId/6f0e1d2c+3b4a-4958-8776-655443322110", NULL},
        {"/api/v1/PostLookup/byId/{6f0e1d2c-3b4a-4958-8776-655443322110", NULL},
        {"/api/v1/PostLookup/byId/' OR '1'='1", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = get(f, bad[i].path, bad[i].query);
        if (st != 400)
            fail_msg("GET %s?%s: %d, want 400", bad[i].path, bad[i].query ? bad[i].query : "",
                     st);
        assert_string_equal(json_string_value(json_object_get(f->reply.body, "error")),
                            "invalid_request");
        assert_non_null(msg(f));
    }
}

/* Authors that are SQL or LIKE syntax match exactly themselves (ignoring
 * ASCII case), through the route, the parser and the SQLite adapter (the
 * SQL Server adapter runs the same cases in test_read_model.c). */
static void test_by_author_with_sql_or_pattern_text_is_an_exact_match(void **state)
{
    fixture *f = *state;
    const char *authors[] = {"x' OR '1'='1", "'; DROP TABLE Post; --", "%", "a_c", "abc",
                             "[ab]c", "ac", "back\\slash", "50% off"};
    enum { N = sizeof authors / sizeof authors[0] };
    sm_uuid_str ids[N];
    for (size_t i = 0; i < N; i++) {
        sm_uuid_new(ids[i]);
        add_post(f->app.rm, ids[i], authors[i], NULL, 10000 + (int64_t)i, 0, false, NULL);
    }
    for (size_t i = 0; i < N; i++) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/PostLookup/byAuthor/%s", authors[i]);
        if (get(f, path, NULL) != 200 || nposts(f) != 1)
            fail_msg("byAuthor/%s: %d with %zu posts, want 1", authors[i], f->reply.status,
                     nposts(f));
        assert_string_equal(post_field(f, 0, "id"), ids[i]);
        assert_string_equal(post_field(f, 0, "author"), authors[i]);
    }
    /* patterns and injections that would widen the match find nothing */
    const char *none[] = {"_bc", "a%", "%%", "[a-z]c", "' OR ''='", "alice' --", "ALICE ",
                          " alice", "a\\_c"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/PostLookup/byAuthor/%s", none[i]);
        if (get(f, path, NULL) != 204)
            fail_msg("byAuthor/%s: %d with %zu posts, want 204", none[i], f->reply.status,
                     nposts(f));
    }
    /* the query-string form decodes once: %25 is a literal '%' */
    assert_int_equal(get(f, "/api/v1/PostLookup/byAuthor", "author=%25"), 200);
    assert_int_equal(nposts(f), 1);
    assert_string_equal(post_field(f, 0, "author"), "%");
    /* and the tables are all still there */
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=500"), 200);
    assert_int_equal(nposts(f), 3 + N);
}

static void test_unknown_routes_and_verbs(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/api/v1/PostLookup/nothing", NULL), 404);
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    http_request req = {.method = "POST", .path = "/api/v1/PostLookup"};
    query_routes_handle(&f->app, &req, &f->reply);
    assert_int_equal(f->reply.status, 405);
}

static void test_health_reports_the_read_model(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "/health", NULL), 200);
    json_t *rm = json_object_get(f->reply.body, "readModel");
    assert_string_equal(json_string_value(json_object_get(rm, "status")), "up");
    assert_int_equal(get(f, "/metrics", NULL), 200);
    assert_non_null(strstr(f->reply.body_text, "smpost_events_applied_total"));
}

/* ---- comment pages and bounded answers --------------------------------- */

static void test_comment_page_bad_input_is_400_and_unknown_post_204(void **state)
{
    fixture *f = *state;
    char path[128], qs[128];
    snprintf(path, sizeof path, "/api/v1/PostLookup/comments/%s", f->ids[1]);
    assert_int_equal(get(f, path, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(f->reply.body, "comments")), 1);
    assert_true(json_is_null(json_object_get(f->reply.body, "nextCursor")));
    assert_string_equal(f->reply.route, "/api/v1/PostLookup/comments/{postId}");
    const char *bad_limit[] = {"limit=0", "limit=501", "limit=-1", "limit=abc", "limit=1e2",
                               "limit=99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_limit / sizeof bad_limit[0]; i++) {
        if (get(f, path, bad_limit[i]) != 400)
            fail_msg("%s: %d, want 400", bad_limit[i], f->reply.status);
        assert_string_equal(msg(f), "limit must be an integer from 1 to 500.");
    }
    assert_int_equal(get(f, path, "limit=500"), 200);
    /* a list's cursor (format 1) is not a place among comments */
    char list[PAGE_CURSOR_LEN + 1];
    assert_true(page_cursor_encode(2000, f->ids[1], list));
    snprintf(qs, sizeof qs, "after=%s", list);
    const char *bad_after[] = {"after=", "after=abc", qs, "after=%00",
                               "after=AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="};
    for (size_t i = 0; i < sizeof bad_after / sizeof bad_after[0]; i++) {
        if (get(f, path, bad_after[i]) != 400)
            fail_msg("%s: %d, want 400", bad_after[i], f->reply.status);
        assert_string_equal(msg(f),
                            "after must be a nextCursor from an earlier page of this post's "
                            "comments.");
    }
    assert_int_equal(get(f, "/api/v1/PostLookup/comments/not-a-uuid", NULL), 400);
    assert_int_equal(get(f, "/api/v1/PostLookup/comments", NULL), 404); /* the id is required */
    sm_uuid_str nobody;
    sm_uuid_new(nobody);
    snprintf(path, sizeof path, "/api/v1/PostLookup/comments/%s", nobody);
    assert_int_equal(get(f, path, NULL), 204); /* as byId */
}

/* The command side's limits are the ones the worst cases are made of. */
static void test_field_limits_match_the_command_side(void **state)
{
    (void)state;
    assert_int_equal(QUERY_FIELD_MAX_NAME, CMD_MAX_AUTHOR);
    assert_int_equal(QUERY_FIELD_MAX_NAME, CMD_MAX_USERNAME);
    assert_int_equal(QUERY_FIELD_MAX_MESSAGE, CMD_MAX_MESSAGE);
    assert_int_equal(QUERY_FIELD_MAX_COMMENT, CMD_MAX_COMMENT);
    assert_int_equal(QUERY_FIELD_MAX_OWNER, SM_EVENT_USER_ID_MAX);
}

/* n bytes of U+0001, which JSON writes as \u0001: 6 bytes each. */
static char *escapes(size_t n)
{
    char *s = malloc(n + 1);
    memset(s, 1, n);
    s[n] = '\0';
    return s;
}

/* A post with every field at its largest, all escapes, and n comments
 * likewise; date far out so that it heads the lists. */
static void add_worst_post(rm_store *rm, sm_uuid_str id, int64_t at, size_t n)
{
    sm_event e = {.type = SM_EV_POST_CREATED, .at_ms = at, .timestamp_ms = at};
    sm_uuid_new(id);
    strcpy(e.aggregate_id, id);
    e.author = escapes(CMD_MAX_AUTHOR);
    e.author_id = escapes(SM_EVENT_USER_ID_MAX);
    e.message = escapes(CMD_MAX_MESSAGE);
    rm_outcome o;
    sm_error err = {0};
    assert_int_equal(rm_apply(rm, &e, &o, &err), SM_OK);
    sm_event_clear(&e);
    for (size_t i = 0; i < n; i++) {
        sm_event c = {.type = SM_EV_COMMENT_ADDED, .version = (int64_t)i + 1,
                      .at_ms = at + (int64_t)i};
        strcpy(c.aggregate_id, id);
        sm_uuid_new(c.comment_id);
        c.comment = escapes(CMD_MAX_COMMENT);
        c.username = escapes(CMD_MAX_USERNAME);
        c.user_id = escapes(SM_EVENT_USER_ID_MAX);
        assert_int_equal(rm_apply(rm, &c, &o, &err), SM_OK);
        sm_event_clear(&c);
    }
}

static size_t body_bytes(fixture *f)
{
    char *text = sm_json_dump(f->reply.body); /* what the server sends */
    size_t n = strlen(text);
    free(text);
    return n;
}

/* byId of the worst post at the default 100 inline comments stays within
 * the documented bound (docs/api.md), and the bound is not loose. */
static void test_the_worst_post_stays_within_its_documented_bound(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    add_worst_post(f->app.rm, id, 9000000, QUERY_DEFAULT_COMMENTS_INLINE + 1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s", id);
    assert_int_equal(get(f, path, NULL), 200);
    json_t *p = json_array_get(json_object_get(f->reply.body, "posts"), 0);
    assert_int_equal(json_array_size(json_object_get(p, "comments")),
                     QUERY_DEFAULT_COMMENTS_INLINE);
    assert_true(json_is_true(json_object_get(p, "commentsTruncated")));
    int64_t bound = query_list_envelope_max() + query_post_json_max(QUERY_DEFAULT_COMMENTS_INLINE);
    int64_t got = (int64_t)body_bytes(f);
    printf("worst byId: %lld bytes, bound %lld, min budget %lld\n", (long long)got,
           (long long)bound, (long long)query_min_response_bytes(QUERY_DEFAULT_COMMENTS_INLINE));
    assert_true(got <= bound);
    assert_true(got >= bound - bound / 100); /* within 1%: the formula is the real worst case */
    assert_true(bound <= QUERY_DEFAULT_MAX_RESPONSE_BYTES);
    /* a comment page of the worst comments: within its own bound */
    snprintf(path, sizeof path, "/api/v1/PostLookup/comments/%s", id);
    assert_int_equal(get(f, path, "limit=500"), 200);
    int64_t page = (int64_t)body_bytes(f);
    size_t shown = json_array_size(json_object_get(f->reply.body, "comments"));
    assert_int_equal(shown, QUERY_DEFAULT_COMMENTS_INLINE + 1);
    assert_true(page <= query_comment_page_envelope_max() +
                            (int64_t)shown * (query_comment_json_max() + 1));
    assert_true(page >= (int64_t)shown * (query_comment_json_max() - 30));
}

/* query_post_bound is never below what a post really takes, whatever its
 * texts hold (control characters, quotes, plain and non-ASCII text, empty
 * and missing owners, edited comments, big numbers), and is exact in
 * shape: the worst texts come within a few bytes of it. */
static void test_a_post_s_bound_covers_its_json(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "plain", "\"quoted\" \\ back", "\x01\x02\x1f",
                                        "caf\xc3\xa9 \xe2\x82\xac", "/ slash </script>", NULL};
    size_t nt = sizeof texts / sizeof texts[0];
    for (size_t a = 0; a < nt; a++)
        for (size_t m = 0; m < nt; m++) {
            rm_post_list l = {0};
            rm_post *p = rm_post_list_push(&l);
            sm_uuid_new(p->id);
            p->author = texts[a] ? strdup(texts[a]) : NULL;
            p->author_id = texts[m] ? strdup(texts[m]) : NULL;
            p->message = texts[(a + m) % nt] ? strdup(texts[(a + m) % nt]) : NULL;
            p->date_posted_ms = 253402300799999;
            p->likes = INT64_MAX;
            p->version = INT64_MIN;
            p->comment_count = INT64_MAX;
            for (size_t c = 0; c < 3; c++) {
                rm_comment *k = rm_post_add_comment(p);
                sm_uuid_new(k->comment_id);
                memcpy(k->post_id, p->id, sizeof k->post_id);
                k->username = texts[(a + c) % nt] ? strdup(texts[(a + c) % nt]) : NULL;
                k->user_id = texts[(m + c) % nt] ? strdup(texts[(m + c) % nt]) : NULL;
                k->comment = texts[c] ? strdup(texts[c]) : NULL;
                k->comment_date_ms = 253402300799999;
                k->edited = c == 1;
                k->edited_at_ms = c == 1 ? 253402300799999 : 0;
            }
            json_t *j = query_post_json(p);
            char *text = sm_json_dump(j);
            int64_t real = (int64_t)strlen(text) + 1, bound = query_post_bound(p);
            if (bound < real)
                fail_msg("bound %lld < %lld bytes for %s", (long long)bound, (long long)real,
                         text);
            free(text);
            json_decref(j);
            rm_post_list_free(&l);
        }
    /* the least slack: numbers at their widest, owners missing (`null` is
     * longer than `""`) and every comment edited */
    {
        rm_post_list l = {0};
        rm_post *p = rm_post_list_push(&l);
        sm_uuid_new(p->id);
        p->date_posted_ms = 253402300799999;
        p->likes = INT64_MAX;
        p->version = INT64_MIN;
        p->comment_count = 8;
        for (size_t c = 0; c < 8; c++) {
            rm_comment *k = rm_post_add_comment(p);
            sm_uuid_new(k->comment_id);
            memcpy(k->post_id, p->id, sizeof k->post_id);
            k->comment_date_ms = k->edited_at_ms = 253402300799999;
            k->edited = true;
        }
        json_t *j = query_post_json(p);
        char *text = sm_json_dump(j);
        int64_t real = (int64_t)strlen(text) + 1, bound = query_post_bound(p);
        if (bound < real)
            fail_msg("bound %lld < %lld bytes for %s", (long long)bound, (long long)real, text);
        free(text);
        json_decref(j);
        rm_post_list_free(&l);
    }
    /* the worst texts: the bound is the real size, near enough */
    rm_post_list l = {0};
    rm_post *p = rm_post_list_push(&l);
    sm_uuid_new(p->id);
    p->author = escapes(CMD_MAX_AUTHOR);
    p->author_id = escapes(SM_EVENT_USER_ID_MAX);
    p->message = escapes(CMD_MAX_MESSAGE);
    json_t *j = query_post_json(p);
    char *text = sm_json_dump(j);
    int64_t real = (int64_t)strlen(text) + 1;
    assert_true(query_post_bound(p) >= real && query_post_bound(p) <= real + 80);
    free(text);
    json_decref(j);
    rm_post_list_free(&l);
}

/* With the budget at its minimum, a list of worst posts answers one post a
 * page, each page within the budget, and the cursors still walk them all;
 * an offset page shorter than its limit is not the end (nextCursor is). */
static void test_list_pages_stop_at_the_byte_budget(void **state)
{
    fixture *f = *state;
    query_limits lim = {2, query_min_response_bytes(2)};
    f->app.limits = &lim;
    sm_uuid_str ids[3];
    for (int i = 0; i < 3; i++)
        add_worst_post(f->app.rm, ids[i], 9000000 - i, 3);
    char qs[128] = "limit=10";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(get(f, "/api/v1/PostLookup", qs), 200);
        assert_true((int64_t)body_bytes(f) <= lim.max_response_bytes);
        assert_int_equal(nposts(f), 1);
        assert_string_equal(post_field(f, 0, "id"), ids[i]);
        json_t *p = json_array_get(json_object_get(f->reply.body, "posts"), 0);
        assert_int_equal(json_array_size(json_object_get(p, "comments")), 2);
        assert_int_equal(json_integer_value(json_object_get(p, "commentCount")), 3);
        assert_non_null(next_cursor(f)); /* the fixture's posts follow */
        snprintf(qs, sizeof qs, "limit=10&after=%s", next_cursor(f));
    }
    assert_int_equal(get(f, "/api/v1/PostLookup", qs), 200);
    assert_int_equal(nposts(f), 3); /* the small ones, all in one page */
    assert_null(next_cursor(f));
    assert_int_equal(get(f, "/api/v1/PostLookup", "limit=10&offset=1"), 200);
    assert_int_equal(nposts(f), 1);
    assert_string_equal(post_field(f, 0, "id"), ids[1]);
    assert_non_null(next_cursor(f));
    /* byId: one post, whatever the budget */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s", ids[0]);
    assert_int_equal(get(f, path, NULL), 200);
    assert_int_equal(nposts(f), 1);
}

/* A page larger than one read (QUERY_FETCH_POSTS) is read in chunks that
 * join without a repeat or a gap, at every size around the chunk's. */
static void test_a_large_page_is_read_in_chunks_that_join_exactly(void **state)
{
    fixture *f = *state;
    enum { N = 2 * QUERY_FETCH_POSTS + 5 };
    for (int i = 0; i < N; i++) {
        sm_uuid_str id;
        sm_uuid_new(id);
        add_post(f->app.rm, id, "carol", NULL, 5000 + i / 3, 0, false, NULL); /* ties */
    }
    size_t total = N + 3;
    /* the reference: pages of 10 by offset, one read each */
    char (*ref)[SM_UUID_LEN + 1] = calloc(total, sizeof *ref);
    char qs[160];
    for (size_t off = 0; off < total; off += 10) {
        snprintf(qs, sizeof qs, "limit=10&offset=%zu", off);
        assert_int_equal(get(f, "/api/v1/PostLookup", qs), 200);
        for (size_t i = 0; i < nposts(f); i++)
            strcpy(ref[off + i], post_field(f, i, "id"));
    }
    const int limits[] = {QUERY_FETCH_POSTS - 1, QUERY_FETCH_POSTS, QUERY_FETCH_POSTS + 1,
                          2 * QUERY_FETCH_POSTS, (int)total - 1, (int)total, 500};
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        size_t seen = 0;
        snprintf(qs, sizeof qs, "limit=%d", limits[k]);
        for (;;) {
            assert_int_equal(get(f, "/api/v1/PostLookup", qs), 200);
            assert_true(nposts(f) <= (size_t)limits[k]);
            for (size_t i = 0; i < nposts(f); i++, seen++) {
                assert_true(seen < total);
                assert_string_equal(post_field(f, i, "id"), ref[seen]);
            }
            if (!next_cursor(f))
                break;
            assert_int_equal(nposts(f), limits[k]); /* no budget cut with small posts */
            snprintf(qs, sizeof qs, "limit=%d&after=%s", limits[k], next_cursor(f));
        }
        assert_int_equal(seen, total);
    }
    free(ref);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_all_posts_newest_first_with_the_original_message),
        T(test_owner_ids_are_returned_and_null_when_unknown),
        T(test_by_id_answers_one_post_or_204),
        T(test_by_id_rejects_ids_that_are_not_uuids),
        T(test_min_version_not_reached_answers_stale_with_headers),
        T(test_by_author_matches_exactly_ignoring_case),
        T(test_with_comments_and_with_likes_take_n_in_path_or_query),
        T(test_limit_and_offset_page_and_are_bounded),
        T(test_list_answers_carry_next_cursor_and_by_id_does_not),
        T(test_cursor_pages_equal_offset_pages_on_every_list_route),
        T(test_cursor_pages_neither_repeat_nor_skip_under_inserts),
        T(test_a_malformed_cursor_or_a_deep_offset_is_400),
        T(test_hostile_parameters_are_400),
        T(test_by_author_with_sql_or_pattern_text_is_an_exact_match),
        T(test_unknown_routes_and_verbs),
        T(test_health_reports_the_read_model),
        T(test_comment_page_bad_input_is_400_and_unknown_post_204),
        T(test_field_limits_match_the_command_side),
        T(test_the_worst_post_stays_within_its_documented_bound),
        cmocka_unit_test(test_a_post_s_bound_covers_its_json),
        T(test_list_pages_stop_at_the_byte_budget),
        T(test_a_large_page_is_read_in_chunks_that_join_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
