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
    sm_uuid_str id;
    int64_t min_version; /* byId?minVersion=V; -1: none */
    char author_buf[QUERY_MAX_AUTHOR + 2]; /* byAuthor?author=..., decoded */
    bool list;           /* a list query: takes `after`, answers nextCursor */
    page_cursor after;   /* ?after=, when q.after_id points into it */
} parsed;

typedef sm_status (*query_parse_fn)(const char *arg, const char *qs, parsed *p, sm_error *err);

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

static sm_status parse_by_id(const char *arg, const char *qs, parsed *p, sm_error *err)
{
    char shown[64];
    snprintf(shown, sizeof shown, "%.40s", arg ? arg : "");
    if (!arg || !sm_uuid_parse(arg, p->id))
        return sm_fail(err, SM_ERR_INVALID, "The post id '%s' is not a valid UUID.", shown);
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

/* The query table: one handler per query. */
static const struct {
    const char *what; /* for log lines */
    query_parse_fn parse;
} handlers[QUERY_COUNT] = {
    [QUERY_ALL] = {"all posts", parse_all},
    [QUERY_BY_ID] = {"post by id", parse_by_id},
    [QUERY_BY_AUTHOR] = {"posts by author", parse_by_author},
    [QUERY_WITH_COMMENTS] = {"posts with comments", parse_with_comments},
    [QUERY_WITH_LIKES] = {"posts with likes", parse_with_likes},
};

json_t *query_post_json(const rm_post *p)
{
    json_t *comments = json_array();
    for (size_t i = 0; i < p->ncomments; i++) {
        const rm_comment *c = &p->comments[i];
        json_array_append_new(comments,
                              sm_json_comment(c->comment_id, c->post_id, c->username, c->user_id,
                                              c->comment, c->comment_date_ms, c->edited,
                                              c->edited_at_ms));
    }
    return sm_json_post(p->id, p->author, p->author_id, p->message, p->date_posted_ms, p->likes,
                        -1, p->version, comments);
}

/* The original's answer for the first `shown` posts of l; a list query's
 * also carries nextCursor: the place after the last post shown when l
 * holds one more (the read model was asked for limit + 1, so the last
 * page says null instead of sending the client to an empty one), else
 * null. */
static void reply_posts(const parsed *p, const rm_post_list *l, http_reply *reply)
{
    size_t shown = l->len;
    if (p->list && shown > (size_t)p->q.limit - 1)
        shown = (size_t)p->q.limit - 1;
    if (shown == 0) {
        reply->status = 204; /* the original's "nothing found", byId included */
        return;
    }
    json_t *posts = json_array();
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(posts, query_post_json(&l->items[i]));
    char msg[64];
    snprintf(msg, sizeof msg, "Successfully returned %zu post%s", shown, shown > 1 ? "s" : "");
    json_t *body = json_pack("{s:o, s:s}", "posts", posts, "message", msg);
    if (p->list) {
        const rm_post *last = &l->items[shown - 1];
        char next[PAGE_CURSOR_LEN + 1];
        bool more = l->len > shown && page_cursor_encode(last->date_posted_ms, last->id, next);
        json_object_set_new(body, "nextCursor", more ? json_string(next) : json_null());
    }
    http_reply_json(reply, 200, body);
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
    if (st == SM_OK && p.min_version >= 0)
        wait_min_version(app, &p, reply);
    rm_post_list l = {0};
    if (st == SM_OK && p.list)
        p.q.limit++; /* one more than shown: is there a next page? */
    if (st == SM_OK)
        st = rm_query_posts(app->rm, &p.q, &l, &err);
    if (st == SM_OK) {
        reply_posts(&p, &l, reply);
    } else {
        if (st == SM_ERR_UNAVAILABLE || st == SM_ERR_INTERNAL) {
            char q[SM_ERROR_MAX + 16];
            sm_log(SM_LOG_ERROR, "query_failed", "query=\"%s\" error=%s", handlers[type].what,
                   sm_log_quote(err.message, q, sizeof q));
        }
        http_reply_from_error(reply, &err);
    }
    rm_post_list_free(&l);
}
