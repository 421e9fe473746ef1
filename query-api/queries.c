/* SPDX-License-Identifier: Apache-2.0 */
/* queries.c — the query table, parameter parsing and the JSON shapes. */
#include "queries.h"

#include "page_cursor.h"
#include "sm_json.h"
#include "sm_log.h"
#include "sm_text.h"
#include "sm_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parsed {
    rm_query q;
    rm_comment_query cq; /* comments/{postId} */
    sm_uuid_str id;
    int64_t min_version; /* byId?minVersion=V; -1: none */
    char author_buf[QUERY_MAX_AUTHOR + 2]; /* byAuthor?author=..., decoded */
    bool list;           /* a list query: takes `after`, answers nextCursor */
    page_cursor after;   /* ?after=, when q.after_id or cq.after_id points into it */
} parsed;

typedef sm_status (*query_parse_fn)(const char *arg, const char *qs, parsed *p, sm_error *err);
/* Runs a parsed query and fills reply on success; a failure is returned
 * (query_dispatch answers and logs it). */
typedef sm_status (*query_run_fn)(query_app *app, parsed *p, http_reply *reply, sm_error *err);

static const query_limits default_limits = {QUERY_DEFAULT_COMMENTS_INLINE,
                                            QUERY_DEFAULT_MAX_RESPONSE_BYTES};

/* ---- worst cases (queries.h) ---------------------------------------------
 * Each is the JSON skeleton with every value empty, plus each value at its
 * largest: a text field's bytes all control characters (6 bytes each as
 * \u00XX), integers at 20 characters ("-9223372036854775808"), times at
 * SM_TIME_STR_LEN, ids and cursors at their fixed lengths. */
#define LIT_LEN(lit) ((int64_t)sizeof(lit) - 1)
#define ESCAPED(n) (6 * (int64_t)(n))
#define INT_CHARS 20

int64_t query_comment_json_max(void)
{
    return LIT_LEN("{\"commentId\":\"\",\"postId\":\"\",\"username\":\"\",\"userId\":\"\","
                   "\"comment\":\"\",\"commentDate\":\"\",\"edited\":false,\"editedAt\":\"\"}") +
           2 * SM_UUID_LEN + ESCAPED(QUERY_FIELD_MAX_NAME) + ESCAPED(QUERY_FIELD_MAX_OWNER) +
           ESCAPED(QUERY_FIELD_MAX_COMMENT) + 2 * SM_TIME_STR_LEN;
}

int64_t query_post_json_max(int64_t inline_comments)
{
    return LIT_LEN("{\"id\":\"\",\"author\":\"\",\"authorId\":\"\",\"message\":\"\","
                   "\"datePosted\":\"\",\"likes\":,\"version\":,\"commentCount\":,"
                   "\"commentsTruncated\":false,\"comments\":[]}") +
           SM_UUID_LEN + ESCAPED(QUERY_FIELD_MAX_NAME) + ESCAPED(QUERY_FIELD_MAX_OWNER) +
           ESCAPED(QUERY_FIELD_MAX_MESSAGE) + SM_TIME_STR_LEN + 3 * INT_CHARS +
           inline_comments * (query_comment_json_max() + 1); /* 1: a comma */
}

int64_t query_list_envelope_max(void)
{
    return LIT_LEN("{\"posts\":[],\"message\":\"Successfully returned  posts\","
                   "\"nextCursor\":\"\"}") +
           INT_CHARS + PAGE_CURSOR_LEN;
}

int64_t query_comment_page_envelope_max(void)
{
    return LIT_LEN("{\"comments\":[],\"nextCursor\":\"\"}") + PAGE_CURSOR_LEN;
}

int64_t query_min_response_bytes(int64_t inline_comments)
{
    int64_t post = query_list_envelope_max() + query_post_json_max(inline_comments) + 1;
    int64_t comment = query_comment_page_envelope_max() + query_comment_json_max() + 1;
    return post > comment ? post : comment;
}

static const query_limits *limits_of(const query_app *app)
{
    return app->limits ? app->limits : &default_limits;
}

/* The compact JSON size of j plus a comma: what adding j to an array
 * costs. */
static int64_t item_bytes(const json_t *j)
{
    return (int64_t)json_dumpb(j, NULL, 0, JSON_COMPACT) + 1;
}

/* Strict non-negative integer (no sign, no spaces, no overflow). */
static bool parse_count(const char *text, int64_t max, int64_t *out)
{
    if (!text || !*text || strlen(text) > 18)
        return false;
    for (const char *c = text; *c; c++)
        if (!isdigit((unsigned char)*c))
            return false;
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno || v > max)
        return false;
    *out = v;
    return true;
}

/* Reads an optional count parameter. Returns false (bad input) if it is
 * present but not a count within max, including values too long to be one;
 * *found says whether it was there. */
static bool query_count(const char *qs, const char *key, int64_t max, int64_t *out, bool *found)
{
    char buf[32];
    int r = http_query_get(qs, key, buf, sizeof buf);
    *found = r != 0;
    return r == 0 || (r > 0 && parse_count(buf, max, out));
}

/* ?after=<cursor> of a list query: a cursor this API wrote, never with
 * offset (a client mixing them has lost track of its place). */
static sm_status parse_after(const char *qs, bool with_offset, parsed *p, sm_error *err)
{
    char buf[PAGE_CURSOR_LEN + 2];
    int r = http_query_get(qs, "after", buf, sizeof buf);
    if (r == 0)
        return SM_OK;
    if (r < 0 || !page_cursor_decode(buf, &p->after))
        return sm_fail(err, SM_ERR_INVALID,
                       "after must be a nextCursor from an earlier page of this list.");
    if (with_offset)
        return sm_fail(err, SM_ERR_INVALID, "Use either after or offset, not both.");
    p->q.after_id = p->after.id;
    p->q.after_date_ms = p->after.date_posted_ms;
    return SM_OK;
}

static sm_status parse_page(const char *qs, parsed *p, sm_error *err)
{
    bool found, with_offset;
    p->q.limit = QUERY_DEFAULT_LIMIT;
    p->q.offset = 0;
    if (!query_count(qs, "limit", QUERY_MAX_LIMIT, &p->q.limit, &found) || p->q.limit == 0)
        return sm_fail(err, SM_ERR_INVALID, "limit must be an integer from 1 to %d.",
                       QUERY_MAX_LIMIT);
    if (!query_count(qs, "offset", QUERY_MAX_OFFSET, &p->q.offset, &with_offset))
        return sm_fail(err, SM_ERR_INVALID,
                       "offset must be an integer from 0 to %d; to page deeper, pass the "
                       "previous page's nextCursor as after.",
                       QUERY_MAX_OFFSET);
    return p->list ? parse_after(qs, with_offset, p, err) : SM_OK;
}

static sm_status parse_all(const char *arg, const char *qs, parsed *p, sm_error *err)
{
    (void)arg;
    p->q.kind = RM_Q_ALL;
    p->list = true;
    return parse_page(qs, p, err);
}

static sm_status parse_post_id(const char *arg, parsed *p, sm_error *err)
{
    char shown[64];
    snprintf(shown, sizeof shown, "%.40s", arg ? arg : "");
    if (!arg || !sm_uuid_parse(arg, p->id))
        return sm_fail(err, SM_ERR_INVALID, "The post id '%s' is not a valid UUID.", shown);
    return SM_OK;
}

static sm_status parse_by_id(const char *arg, const char *qs, parsed *p, sm_error *err)
{
    if (parse_post_id(arg, p, err) != SM_OK)
        return err->status;
    p->q.kind = RM_Q_BY_ID;
    p->q.id = p->id;
    bool found;
    if (!query_count(qs, "minVersion", INT64_MAX / 2, &p->min_version, &found))
        return sm_fail(err, SM_ERR_INVALID, "minVersion must be a non-negative integer.");
    return parse_page(qs, p, err);
}

static sm_status parse_by_author(const char *arg, const char *qs, parsed *p, sm_error *err)
{
    int r = arg ? 0 : http_query_get(qs, "author", p->author_buf, sizeof p->author_buf);
    if (r < 0)
        return sm_fail(err, SM_ERR_INVALID,
                       "The author must be at most %d bytes, without NUL (%%00).",
                       QUERY_MAX_AUTHOR);
    if (r > 0)
        arg = p->author_buf;
    if (!arg || !*arg)
        return sm_fail(err, SM_ERR_INVALID, "The author is required.");
    if (strlen(arg) > QUERY_MAX_AUTHOR)
        return sm_fail(err, SM_ERR_INVALID, "The author must be at most %d bytes.",
                       QUERY_MAX_AUTHOR);
    if (!sm_utf8_valid(arg, strlen(arg)))
        return sm_fail(err, SM_ERR_INVALID, "The author must be valid UTF-8.");
    p->q.kind = RM_Q_BY_AUTHOR;
    p->q.author = arg;
    p->list = true;
    return parse_page(qs, p, err);
}

static sm_status parse_with_comments(const char *arg, const char *qs, parsed *p, sm_error *err)
{
    (void)arg;
    p->q.kind = RM_Q_WITH_COMMENTS;
    p->list = true;
    return parse_page(qs, p, err);
}

/* withLikes/{n}, withLikes?n=N, or withLikes alone meaning n = 1. */
static sm_status parse_with_likes(const char *arg, const char *qs, parsed *p, sm_error *err)
{
    bool found = false;
    p->q.kind = RM_Q_WITH_LIKES;
    p->q.min_likes = 1;
    p->list = true;
    bool ok = arg ? parse_count(arg, INT64_MAX / 2, &p->q.min_likes)
                  : query_count(qs, "n", INT64_MAX / 2, &p->q.min_likes, &found);
    if (!ok)
        return sm_fail(err, SM_ERR_INVALID, "The number of likes must be a non-negative integer.");
    return parse_page(qs, p, err);
}

/* comments/{postId}?after=&limit=: the after is a comment cursor
 * (PAGE_CURSOR_COMMENTS); a list's is refused like any other text. */
static sm_status parse_comments(const char *arg, const char *qs, parsed *p, sm_error *err)
{
    if (parse_post_id(arg, p, err) != SM_OK)
        return err->status;
    bool found;
    p->cq.post_id = p->id;
    p->cq.limit = QUERY_COMMENTS_DEFAULT_LIMIT;
    if (!query_count(qs, "limit", QUERY_COMMENTS_MAX_LIMIT, &p->cq.limit, &found) ||
        p->cq.limit == 0)
        return sm_fail(err, SM_ERR_INVALID, "limit must be an integer from 1 to %d.",
                       QUERY_COMMENTS_MAX_LIMIT);
    char buf[PAGE_CURSOR_LEN + 2];
    int r = http_query_get(qs, "after", buf, sizeof buf);
    if (r != 0 && (r < 0 || !page_cursor_decode_as(PAGE_CURSOR_COMMENTS, buf, &p->after)))
        return sm_fail(err, SM_ERR_INVALID,
                       "after must be a nextCursor from an earlier page of this post's "
                       "comments.");
    if (r > 0) {
        p->cq.after_id = p->after.id;
        p->cq.after_date_ms = p->after.date_posted_ms;
    }
    return SM_OK;
}

static json_t *comment_json(const rm_comment *c)
{
    return sm_json_comment(c->comment_id, c->post_id, c->username, c->user_id, c->comment,
                           c->comment_date_ms, c->edited, c->edited_at_ms);
}

json_t *query_post_json(const rm_post *p)
{
    json_t *comments = json_array();
    for (size_t i = 0; i < p->ncomments; i++)
        json_array_append_new(comments, comment_json(&p->comments[i]));
    json_t *post = sm_json_post(p->id, p->author, p->author_id, p->message, p->date_posted_ms,
                                p->likes, -1, p->version, comments);
    /* before "comments": a client reading the count first knows what the
     * array is */
    if (post) {
        json_object_set_new(post, "commentCount", json_integer((json_int_t)p->comment_count));
        json_object_set_new(post, "commentsTruncated",
                            json_boolean(p->comment_count > (int64_t)p->ncomments));
    }
    return post;
}

/* byId?minVersion=V: read-your-writes without client polling. Waits
 * (bounded) for the projection; on timeout answers with what it has and
 * says so in headers. */
static void wait_min_version(query_app *app, const parsed *p, http_reply *reply)
{
    int64_t seen = -1;
    bool fresh = app->proj ? projector_wait_version(app->proj, p->id, p->min_version,
                                                    app->min_version_wait_ms, &seen)
                           : false;
    if (!app->proj) {
        sm_error err = {0};
        rm_post_version(app->rm, p->id, &seen, &err);
        fresh = seen >= p->min_version;
    }
    snprintf(reply->extra_headers, sizeof reply->extra_headers,
             "X-Read-Model-Version: %lld\r\n%s", (long long)seen,
             fresh ? "" : "X-Read-Model-Stale: true\r\n");
}

/* A page being built: the posts shown so far, in JSON, and the place of
 * the last one. */
typedef struct post_page {
    json_t *posts;
    size_t shown;
    /* Body bytes so far (envelope + posts): while `exact` is false, an
     * upper bound (query_post_bound) that costs no serialization; once a post
     * might not fit by its bound, the exact sizes of what is shown. */
    int64_t used;
    bool exact;
    bool more;     /* a post follows the last one shown */
    sm_uuid_str last_id;
    int64_t last_ms;
} post_page;

/* An upper bound of a text's JSON bytes beyond its quotes: \u00XX for
 * every byte; a NULL one is written `null`, 2 more than `""`. */
static int64_t text_bound(const char *s)
{
    return s ? ESCAPED(strlen(s)) : 2;
}

/* Serializing each post once more to measure it cost a list query a
 * third of its throughput (docs/performance.md); the bound is a few strlen
 * calls. */
int64_t query_post_bound(const rm_post *p)
{
    int64_t n = query_post_json_max(0) - ESCAPED(QUERY_FIELD_MAX_NAME) -
                ESCAPED(QUERY_FIELD_MAX_OWNER) - ESCAPED(QUERY_FIELD_MAX_MESSAGE) +
                text_bound(p->author) + text_bound(p->author_id) + text_bound(p->message) + 1;
    int64_t fixed = query_comment_json_max() - ESCAPED(QUERY_FIELD_MAX_NAME) -
                    ESCAPED(QUERY_FIELD_MAX_OWNER) - ESCAPED(QUERY_FIELD_MAX_COMMENT) + 1;
    for (size_t i = 0; i < p->ncomments; i++) {
        const rm_comment *c = &p->comments[i];
        n += fixed + text_bound(c->username) + text_bound(c->user_id) + text_bound(c->comment);
    }
    return n;
}

/* From bounds to exact sizes: the posts shown so far, measured. */
static void measure_exactly(post_page *pg)
{
    pg->used = query_list_envelope_max();
    size_t i;
    json_t *post;
    json_array_foreach(pg->posts, i, post)
        pg->used += item_bytes(post);
    pg->exact = true;
}

/* Adds l's posts to pg up to `limit` shown and, for a list, the byte
 * budget; true once the page is complete (full, cut by the budget, or l
 * held the post after the last one the page can show). A page is cut
 * where exact sizes would cut it: bounds only decide that a post fits. */
static bool add_posts(post_page *pg, const rm_post_list *l, bool list, size_t limit,
                      int64_t budget)
{
    for (size_t i = 0; i < l->len; i++) {
        if (pg->shown == limit) {
            pg->more = true; /* the one more asked for: a next page exists */
            return true;
        }
        json_t *post = query_post_json(&l->items[i]);
        int64_t n = 0;
        if (list && !pg->exact) {
            n = query_post_bound(&l->items[i]);
            if (pg->used + n > budget)
                measure_exactly(pg);
        }
        if (list && pg->exact)
            n = item_bytes(post);
        if (pg->shown > 0 && pg->used + n > budget) {
            json_decref(post);
            pg->more = true;
            return true;
        }
        pg->used += n;
        json_array_append_new(pg->posts, post);
        pg->shown++;
        memcpy(pg->last_id, l->items[i].id, sizeof pg->last_id);
        pg->last_ms = l->items[i].date_posted_ms;
    }
    return false;
}

/* The post queries. A list page is read in chunks of at most
 * QUERY_FETCH_POSTS posts, each after the last post of the one before (by
 * the cursor's keyset, so no post is repeated or skipped between them),
 * and stops reading once the byte budget is reached: what is held in
 * memory is the budget plus one chunk, not `limit` posts with all their
 * inline comments (500 x 100 of them). A default page (50) is one read.
 * One more post than shown is asked for, to know whether a next page
 * exists, so the last page says null rather than sending the client to an
 * empty one. The answer is the original's 200, or 204 when nothing matches
 * (byId included); a list's carries nextCursor, the place after its last
 * post when another follows, else null. */
static sm_status run_posts(query_app *app, parsed *p, http_reply *reply, sm_error *err)
{
    const query_limits *lim = limits_of(app);
    if (p->min_version >= 0)
        wait_min_version(app, p, reply);
    rm_query q = p->q;
    q.comments_capped = true;
    q.comments_limit = lim->comments_inline;
    size_t limit = (size_t)p->q.limit;
    post_page pg = {.posts = json_array(), .used = query_list_envelope_max()};
    sm_status st = SM_OK;
    for (bool done = false; !done && st == SM_OK;) {
        if (p->list) {
            q.limit = (int64_t)(limit - pg.shown) + 1;
            if (q.limit > QUERY_FETCH_POSTS)
                q.limit = QUERY_FETCH_POSTS;
        }
        rm_post_list l = {0};
        st = rm_query_posts(app->rm, &q, &l, err);
        done = st != SM_OK || add_posts(&pg, &l, p->list, limit, lim->max_response_bytes) ||
               !p->list || (int64_t)l.len < q.limit; /* the list ended */
        rm_post_list_free(&l);
        q.offset = 0;
        q.after_id = pg.last_id;
        q.after_date_ms = pg.last_ms;
    }
    if (st != SM_OK || pg.shown == 0) {
        json_decref(pg.posts);
        if (st == SM_OK)
            reply->status = 204; /* the original's "nothing found", byId included */
        return st;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "Successfully returned %zu post%s", pg.shown,
             pg.shown > 1 ? "s" : "");
    json_t *body = json_pack("{s:o, s:s}", "posts", pg.posts, "message", msg);
    if (p->list) {
        char next[PAGE_CURSOR_LEN + 1];
        bool more = pg.more && page_cursor_encode(pg.last_ms, pg.last_id, next);
        json_object_set_new(body, "nextCursor", more ? json_string(next) : json_null());
    }
    http_reply_json(reply, 200, body);
    return SM_OK;
}

/* A page of one post's comments, oldest first, up to the limit or the
 * byte budget, whichever comes first; nextCursor is after the last one
 * shown when there are more (limit + 1 asked for, as for lists). */
static sm_status run_comments(query_app *app, parsed *p, http_reply *reply, sm_error *err)
{
    int64_t limit = p->cq.limit, budget = limits_of(app)->max_response_bytes;
    p->cq.limit++;
    rm_post_list l = {0};
    sm_status st = rm_comment_page(app->rm, &p->cq, &l, err);
    if (st != SM_OK || l.len == 0) {
        if (st == SM_OK)
            reply->status = 204; /* no such post, as byId */
        rm_post_list_free(&l);
        return st;
    }
    const rm_post *post = &l.items[0];
    size_t shown = post->ncomments < (size_t)limit ? post->ncomments : (size_t)limit;
    json_t *comments = json_array();
    int64_t used = query_comment_page_envelope_max();
    for (size_t i = 0; i < shown; i++) {
        json_t *c = comment_json(&post->comments[i]);
        int64_t n = item_bytes(c);
        if (i > 0 && used + n > budget) {
            json_decref(c);
            shown = i;
            break;
        }
        used += n;
        json_array_append_new(comments, c);
    }
    char next[PAGE_CURSOR_LEN + 1];
    const rm_comment *last = shown ? &post->comments[shown - 1] : NULL;
    bool more = last && post->ncomments > shown &&
                page_cursor_encode_as(PAGE_CURSOR_COMMENTS, last->comment_date_ms,
                                      last->comment_id, next);
    http_reply_json(reply, 200,
                    json_pack("{s:o, s:o}", "comments", comments, "nextCursor",
                              more ? json_string(next) : json_null()));
    rm_post_list_free(&l);
    return SM_OK;
}

/* The query table: one handler per query. */
static const struct {
    const char *what; /* for log lines */
    query_parse_fn parse;
    query_run_fn run;
} handlers[QUERY_COUNT] = {
    [QUERY_ALL] = {"all posts", parse_all, run_posts},
    [QUERY_BY_ID] = {"post by id", parse_by_id, run_posts},
    [QUERY_BY_AUTHOR] = {"posts by author", parse_by_author, run_posts},
    [QUERY_WITH_COMMENTS] = {"posts with comments", parse_with_comments, run_posts},
    [QUERY_WITH_LIKES] = {"posts with likes", parse_with_likes, run_posts},
    [QUERY_COMMENTS] = {"comments of a post", parse_comments, run_comments},
};

void query_dispatch(query_app *app, query_type type, const char *arg, const char *query_string,
                    http_reply *reply)
{
    parsed p = {.min_version = -1};
    sm_error err = {0};
    if (type >= QUERY_COUNT) {
        http_reply_error(reply, SM_ERR_INTERNAL, "unknown query");
        return;
    }
    sm_status st = handlers[type].parse(arg, query_string, &p, &err);
    if (st == SM_OK)
        st = handlers[type].run(app, &p, reply, &err);
    if (st == SM_OK)
        return;
    if (st == SM_ERR_UNAVAILABLE || st == SM_ERR_INTERNAL) {
        char q[SM_ERROR_MAX + 16];
        sm_log(SM_LOG_ERROR, "query_failed", "query=\"%s\" error=%s", handlers[type].what,
               sm_log_quote(err.message, q, sizeof q));
    }
    http_reply_from_error(reply, &err);
}
