/* SPDX-License-Identifier: Apache-2.0 */
/* rm_sqlite.c — the SQLite read model adapter, the embedded default.
 *
 * Each event is applied in one write transaction that first reads the
 * post's last applied version (PostVersion) and then either changes nothing
 * (duplicate or gap) or makes the change and records the new version, so a
 * crash or a redelivery can never apply an event twice. A batch is the
 * same steps for each of its events inside one transaction: one fsync
 * (synchronous=FULL) for the batch instead of one per event. Queries run in a
 * read transaction (a WAL snapshot), so a page and its comments agree.
 * Opening a file first adds the columns an older file lacks ("Columns
 * added after the first release") and brings its SM_NOCASE index into this
 * binary's order ("The collation's version"), both below. */
#include "read_model.h"

#include "sm_log.h"
#include "sm_text.h"
#include "sm_time.h"
#include "sqlite_pool.h"

#include <stdlib.h>
#include <string.h>

extern const char sm_sql_read_model_sqlite[]; /* sql/read_model.sqlite.sql */

enum {
    ST_VERSION_GET,
    ST_VERSION_SET,
    ST_POST_INSERT,
    ST_POST_MESSAGE,
    ST_POST_LIKE,
    ST_POST_TOUCH,
    ST_POST_DELETE,
    ST_COMMENT_INSERT,
    ST_COMMENT_UPDATE,
    ST_COMMENT_DELETE,
    ST_COMMENTS,
    ST_COMMENT_COUNT,
    ST_POST_EXISTS,
    ST_COMMENT_PAGE,
    ST_COMMENT_PAGE_AFTER,
    ST_PING,
    ST_Q_ALL, /* the query kinds, in rm_query_kind order */
    ST_Q_BY_ID,
    ST_Q_BY_AUTHOR,
    ST_Q_WITH_COMMENTS,
    ST_Q_WITH_LIKES,
    ST_K_ALL, /* the same after a cursor (rm_query.after_id), same order */
    ST_K_BY_ID,
    ST_K_BY_AUTHOR,
    ST_K_WITH_COMMENTS,
    ST_K_WITH_LIKES,
    ST_BEGIN,
    ST_COMMIT,
    ST_COUNT
};

#define COMMENT_COLS                                                                       \
    "SELECT CommentId, PostId, Username, Comment, CommentDate, Edited, EditedAt, UserId"     \
    " FROM Comment "
#define COMMENT_PAGE " ORDER BY CommentDate, CommentId LIMIT ?2"
#define POST_COLS "SELECT Id, Author, Message, DatePosted, Likes, Version, AuthorId FROM Post "
#define PAGE " ORDER BY DatePosted DESC, Id LIMIT ?1 OFFSET ?2"
/* After the post (?4, ?5) in that order. Written so that the first term is
 * a range on the index's first column (IX_Post_Order, or IX_Post_AuthorPage
 * after the author's =): the page starts with a seek, whatever its depth;
 * the second only sorts out the posts of that same millisecond. SQLite's
 * row values compare every column in one direction, so (DatePosted, Id) <
 * (?4, ?5) cannot say DESC, ASC. */
#define AFTER "DatePosted <= ?4 AND (DatePosted < ?4 OR Id > ?5)"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_VERSION_GET] = "SELECT Version FROM PostVersion WHERE PostId = ?1",
    [ST_VERSION_SET] = "INSERT INTO PostVersion (PostId, Version) VALUES (?1, ?2)"
                       " ON CONFLICT (PostId) DO UPDATE SET Version = excluded.Version",
    [ST_POST_INSERT] = "INSERT INTO Post (Id, Author, Message, DatePosted, Likes, Version,"
                       " AuthorId) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
    [ST_POST_MESSAGE] = "UPDATE Post SET Message = ?3, Version = ?2 WHERE Id = ?1",
    [ST_POST_LIKE] = "UPDATE Post SET Likes = Likes + 1, Version = ?2 WHERE Id = ?1",
    [ST_POST_TOUCH] = "UPDATE Post SET Version = ?2 WHERE Id = ?1",
    [ST_POST_DELETE] = "DELETE FROM Post WHERE Id = ?1", /* comments: ON DELETE CASCADE */
    [ST_COMMENT_INSERT] = "INSERT INTO Comment (CommentId, PostId, Username, Comment,"
                          " CommentDate, Edited, EditedAt, UserId)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, 0, NULL, ?6)",
    [ST_COMMENT_UPDATE] = "UPDATE Comment SET Comment = ?3, Edited = 1, EditedAt = ?4"
                          " WHERE CommentId = ?1 AND PostId = ?2",
    [ST_COMMENT_DELETE] = "DELETE FROM Comment WHERE CommentId = ?1 AND PostId = ?2",
    /* the newest ?2 (-1: all), oldest first: IX_Comment_PostPage walked
     * backwards from the post's end, then the few rows re-sorted */
    [ST_COMMENTS] = "SELECT * FROM (" COMMENT_COLS "WHERE PostId = ?1"
                    " ORDER BY CommentDate DESC, CommentId DESC LIMIT ?2)"
                    " ORDER BY CommentDate, CommentId",
    [ST_COMMENT_COUNT] = "SELECT COUNT(*) FROM Comment WHERE PostId = ?1",
    [ST_POST_EXISTS] = "SELECT 1 FROM Post WHERE Id = ?1",
    [ST_COMMENT_PAGE] = COMMENT_COLS "WHERE PostId = ?1" COMMENT_PAGE,
    /* after the comment (?3, ?4): as AFTER below, a range on the index's
     * second column after the post's = */
    [ST_COMMENT_PAGE_AFTER] = COMMENT_COLS "WHERE PostId = ?1 AND CommentDate >= ?3"
                              " AND (CommentDate > ?3 OR CommentId > ?4)" COMMENT_PAGE,
    [ST_PING] = "SELECT 1",
    [ST_Q_ALL] = POST_COLS PAGE,
    [ST_Q_BY_ID] = POST_COLS "WHERE Id = ?3" PAGE,
    [ST_Q_BY_AUTHOR] = POST_COLS "WHERE Author = ?3 COLLATE SM_NOCASE" PAGE,
    [ST_Q_WITH_COMMENTS] = POST_COLS
    "WHERE EXISTS (SELECT 1 FROM Comment c WHERE c.PostId = Post.Id)" PAGE,
    [ST_Q_WITH_LIKES] = POST_COLS "WHERE Likes >= ?3" PAGE,
    [ST_K_ALL] = POST_COLS "WHERE " AFTER PAGE,
    [ST_K_BY_ID] = POST_COLS "WHERE Id = ?3 AND " AFTER PAGE,
    [ST_K_BY_AUTHOR] = POST_COLS "WHERE Author = ?3 COLLATE SM_NOCASE AND " AFTER PAGE,
    [ST_K_WITH_COMMENTS] = POST_COLS
    "WHERE EXISTS (SELECT 1 FROM Comment c WHERE c.PostId = Post.Id) AND " AFTER PAGE,
    [ST_K_WITH_LIKES] = POST_COLS "WHERE Likes >= ?3 AND " AFTER PAGE,
    /* prepared once: sqlite3_exec would parse them on every query */
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
};

typedef struct rm_sqlite {
    sqlite_pool *pool;
} rm_sqlite;

/* Runs a bound statement that returns no rows, then resets it. */
static sm_status exec_stmt(rm_sqlite *s, sqlite_conn *c, sqlite3_stmt *q, const char *op,
                           sm_error *err)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(s->pool, c, rc, op, err);
}

static sm_status read_version(rm_sqlite *s, sqlite_conn *c, const char *id, int64_t *version,
                              sm_error *err)
{
    sqlite3_stmt *q = c->st[ST_VERSION_GET];
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *version = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SM_OK
                                                 : sqlite_pool_fail(s->pool, c, rc, "version", err);
}

/* Binds the post id and the new version as ?1 and ?2 (shared by most
 * statements) and returns the statement. */
static sqlite3_stmt *stmt_for(sqlite_conn *c, int which, const sm_event *ev)
{
    sqlite3_stmt *q = c->st[which];
    sqlite3_bind_text(q, 1, ev->aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, ev->version);
    return q;
}

/* An owner id, or NULL when the event has none. Bound explicitly: a
 * prepared statement keeps a parameter's last value across resets. */
static void bind_owner(sqlite3_stmt *q, int i, const char *id)
{
    if (id && *id)
        sqlite3_bind_text(q, i, id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, i);
}

/* The state change of one event (its version already checked). */
static sm_status project(rm_sqlite *s, sqlite_conn *c, const sm_event *ev, sm_error *err)
{
    sqlite3_stmt *q;
    sm_status st;
    switch (ev->type) {
    case SM_EV_POST_CREATED:
        q = c->st[ST_POST_INSERT];
        sqlite3_bind_text(q, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, ev->author ? ev->author : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, ev->message ? ev->message : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, ev->at_ms);
        sqlite3_bind_int64(q, 5, ev->version);
        bind_owner(q, 6, ev->author_id);
        return exec_stmt(s, c, q, "insert post", err);
    case SM_EV_MESSAGE_UPDATED:
        q = stmt_for(c, ST_POST_MESSAGE, ev);
        sqlite3_bind_text(q, 3, ev->message ? ev->message : "", -1, SQLITE_STATIC);
        return exec_stmt(s, c, q, "edit message", err);
    case SM_EV_POST_LIKED:
        return exec_stmt(s, c, stmt_for(c, ST_POST_LIKE, ev), "like", err);
    case SM_EV_COMMENT_ADDED:
        q = c->st[ST_COMMENT_INSERT];
        sqlite3_bind_text(q, 1, ev->comment_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, ev->username ? ev->username : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, ev->comment ? ev->comment : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, ev->at_ms);
        bind_owner(q, 6, ev->user_id);
        st = exec_stmt(s, c, q, "add comment", err);
        break;
    case SM_EV_COMMENT_UPDATED:
        q = c->st[ST_COMMENT_UPDATE];
        sqlite3_bind_text(q, 1, ev->comment_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, ev->comment ? ev->comment : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 4, ev->at_ms);
        st = exec_stmt(s, c, q, "edit comment", err);
        break;
    case SM_EV_COMMENT_REMOVED:
        q = c->st[ST_COMMENT_DELETE];
        sqlite3_bind_text(q, 1, ev->comment_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, ev->aggregate_id, -1, SQLITE_STATIC);
        st = exec_stmt(s, c, q, "remove comment", err);
        break;
    case SM_EV_POST_REMOVED:
        q = c->st[ST_POST_DELETE];
        sqlite3_bind_text(q, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        return exec_stmt(s, c, q, "remove post", err);
    default:
        return sm_fail(err, SM_ERR_INVALID, "read model: unknown event type");
    }
    /* comment events also move the post's version */
    return st ? st : exec_stmt(s, c, stmt_for(c, ST_POST_TOUCH, ev), "touch post", err);
}

typedef struct apply_args {
    rm_sqlite *s;
    const sm_event *ev;
    rm_outcome outcome;
    int64_t was;
} apply_args;

static sm_status do_apply(sqlite_conn *c, void *arg, sm_error *err)
{
    apply_args *a = arg;
    sm_status st = read_version(a->s, c, a->ev->aggregate_id, &a->was, err);
    if (st)
        return st;
    if (a->ev->version <= a->was) {
        a->outcome = RM_DUPLICATE;
        return SM_OK;
    }
    if (a->ev->version > a->was + 1) {
        a->outcome = RM_GAP;
        return SM_OK;
    }
    a->outcome = RM_APPLIED;
    st = project(a->s, c, a->ev, err);
    if (!st)
        st = exec_stmt(a->s, c, stmt_for(c, ST_VERSION_SET, a->ev), "set version", err);
    return st;
}

static sm_status sqlite_apply(void *impl, const sm_event *ev, rm_outcome *outcome, sm_error *err)
{
    apply_args a = {impl, ev, RM_DUPLICATE, -1};
    sm_status st = sqlite_pool_write(((rm_sqlite *)impl)->pool, do_apply, &a, err);
    if (st == SM_ERR_CONFLICT) /* a constraint the version check should have made impossible */
        st = sm_fail(err, SM_ERR_INTERNAL, "read model (sqlite): %s at version %lld violates a "
                     "constraint (post at %lld)", sm_event_type_name(ev->type),
                     (long long)ev->version, (long long)a.was);
    *outcome = a.outcome;
    return st;
}

typedef struct batch_args {
    rm_sqlite *s;
    const sm_event *const *evs;
    size_t n;
    rm_outcome *outcomes;
    size_t at;   /* the event being applied */
    int64_t was; /* its post's version before it */
} batch_args;

/* Each event by do_apply's rules, in order, inside one BEGIN IMMEDIATE:
 * a later event reads the versions the earlier ones wrote. */
static sm_status do_apply_batch(sqlite_conn *c, void *arg, sm_error *err)
{
    batch_args *b = arg;
    for (b->at = 0; b->at < b->n; b->at++) {
        apply_args a = {b->s, b->evs[b->at], RM_DUPLICATE, -1};
        sm_status st = do_apply(c, &a, err);
        b->was = a.was;
        if (st)
            return st;
        b->outcomes[b->at] = a.outcome;
    }
    return SM_OK;
}

static sm_status sqlite_apply_batch(void *impl, const sm_event *const *evs, size_t n,
                                    rm_outcome *outcomes, size_t *failed, sm_error *err)
{
    batch_args b = {impl, evs, n, outcomes, 0, -1};
    sm_status st = sqlite_pool_write(((rm_sqlite *)impl)->pool, do_apply_batch, &b, err);
    if (st && failed)
        *failed = b.at; /* n if BEGIN or COMMIT failed, or 0 if BEGIN did */
    if (st == SM_ERR_CONFLICT && b.at < n)
        st = sm_fail(err, SM_ERR_INTERNAL, "read model (sqlite): %s at version %lld violates a "
                     "constraint (post at %lld)", sm_event_type_name(evs[b.at]->type),
                     (long long)evs[b.at]->version, (long long)b.was);
    return st;
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const char *t = (const char *)sqlite3_column_text(q, i);
    return strdup(t ? t : "");
}

/* A nullable column: NULL stays NULL. */
static char *col_dup_or_null(sqlite3_stmt *q, int i)
{
    const char *t = (const char *)sqlite3_column_text(q, i);
    return t ? strdup(t) : NULL;
}

/* Appends to p the comments a bound COMMENT_COLS statement returns, then
 * resets it. */
static sm_status read_comments(rm_sqlite *s, sqlite_conn *c, sqlite3_stmt *q, rm_post *p,
                               sm_error *err)
{
    int rc;
    sm_status st = SM_OK;
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        rm_comment *cm = rm_post_add_comment(p);
        if (!cm) {
            st = sm_fail(err, SM_ERR_INTERNAL, "out of memory");
            break;
        }
        snprintf(cm->comment_id, sizeof cm->comment_id, "%s", sqlite3_column_text(q, 0));
        snprintf(cm->post_id, sizeof cm->post_id, "%s", sqlite3_column_text(q, 1));
        cm->username = col_dup(q, 2);
        cm->comment = col_dup(q, 3);
        cm->comment_date_ms = sqlite3_column_int64(q, 4);
        cm->edited = sqlite3_column_int(q, 5) != 0;
        cm->edited_at_ms = sqlite3_column_int64(q, 6);
        cm->user_id = col_dup_or_null(q, 7);
    }
    if (!st && rc != SQLITE_DONE)
        st = sqlite_pool_fail(s->pool, c, rc, "read comments", err);
    sqlite3_reset(q);
    return st;
}

/* Runs a statement whose one row is one integer (*found: was there one). */
static sm_status one_int(rm_sqlite *s, sqlite_conn *c, sqlite3_stmt *q, const char *op,
                         int64_t *v, bool *found, sm_error *err)
{
    int rc = sqlite3_step(q);
    *found = rc == SQLITE_ROW;
    *v = *found ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SM_OK
                                                 : sqlite_pool_fail(s->pool, c, rc, op, err);
}

/* p's comment count and its comments: all, or the newest rq asks for.
 * Fewer comments than the cap are all of them, so the count is only asked
 * of a post that fills its cap: one statement a post, not two, for the
 * usual post with a few comments (a list page was 20% slower with two). */
static sm_status load_comments(rm_sqlite *s, sqlite_conn *c, const rm_query *rq, rm_post *p,
                               sm_error *err)
{
    sm_status st = SM_OK;
    if (!rq->comments_capped || rq->comments_limit > 0) {
        sqlite3_stmt *q = c->st[ST_COMMENTS];
        sqlite3_bind_text(q, 1, p->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, rq->comments_capped ? rq->comments_limit : -1);
        st = read_comments(s, c, q, p, err);
        p->comment_count = (int64_t)p->ncomments;
        if (st || !rq->comments_capped || (int64_t)p->ncomments < rq->comments_limit)
            return st;
    }
    bool found;
    sqlite3_stmt *q = c->st[ST_COMMENT_COUNT];
    sqlite3_bind_text(q, 1, p->id, -1, SQLITE_STATIC);
    return one_int(s, c, q, "count comments", &p->comment_count, &found, err);
}

static sm_status run_posts(rm_sqlite *s, sqlite_conn *c, const rm_query *rq, rm_post_list *out,
                           sm_error *err)
{
    sqlite3_stmt *q = c->st[(rq->after_id ? ST_K_ALL : ST_Q_ALL) + rq->kind];
    sqlite3_bind_int64(q, 1, rq->limit);
    sqlite3_bind_int64(q, 2, rq->offset);
    if (rq->after_id) {
        sqlite3_bind_int64(q, 4, rq->after_date_ms);
        sqlite3_bind_text(q, 5, rq->after_id, -1, SQLITE_STATIC);
    }
    if (rq->kind == RM_Q_BY_ID)
        sqlite3_bind_text(q, 3, rq->id, -1, SQLITE_STATIC);
    else if (rq->kind == RM_Q_BY_AUTHOR)
        sqlite3_bind_text(q, 3, rq->author, -1, SQLITE_STATIC);
    else if (rq->kind == RM_Q_WITH_LIKES)
        sqlite3_bind_int64(q, 3, rq->min_likes);
    int rc;
    sm_status st = SM_OK;
    while (!st && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        rm_post *p = rm_post_list_push(out);
        if (!p) {
            st = sm_fail(err, SM_ERR_INTERNAL, "out of memory");
            break;
        }
        snprintf(p->id, sizeof p->id, "%s", sqlite3_column_text(q, 0));
        p->author = col_dup(q, 1);
        p->message = col_dup(q, 2);
        p->date_posted_ms = sqlite3_column_int64(q, 3);
        p->likes = sqlite3_column_int64(q, 4);
        p->version = sqlite3_column_int64(q, 5);
        p->author_id = col_dup_or_null(q, 6);
    }
    if (!st && rc != SQLITE_DONE)
        st = sqlite_pool_fail(s->pool, c, rc, "query posts", err);
    sqlite3_reset(q);
    return st;
}

static sm_status sqlite_query(void *impl, const rm_query *rq, rm_post_list *out, sm_error *err)
{
    rm_sqlite *s = impl;
    if ((int)rq->kind < 0 || rq->kind > RM_Q_WITH_LIKES)
        return sm_fail(err, SM_ERR_INVALID, "read model: unknown query");
    sqlite_conn *c = sqlite_pool_checkout(s->pool, err);
    if (!c)
        return err ? err->status : SM_ERR_UNAVAILABLE;
    size_t start = out->len;
    /* one snapshot for the page and its comments */
    int rc = sqlite3_step(c->st[ST_BEGIN]);
    sqlite3_reset(c->st[ST_BEGIN]);
    sm_status st = rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(s->pool, c, rc, "begin", err);
    if (!st)
        st = run_posts(s, c, rq, out, err);
    for (size_t i = start; !st && i < out->len; i++)
        st = load_comments(s, c, rq, &out->items[i], err);
    if (rc == SQLITE_DONE) {
        /* a read: nothing to lose, but the connection must leave the
         * transaction whatever happens */
        if (sqlite3_step(c->st[ST_COMMIT]) != SQLITE_DONE)
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_reset(c->st[ST_COMMIT]);
    }
    sqlite_pool_checkin(s->pool, c);
    return st;
}

/* The post's existence and its page of comments, in one read transaction
 * (a WAL snapshot) so that the two agree. */
static sm_status sqlite_comment_page(void *impl, const rm_comment_query *cq, rm_post_list *out,
                                     sm_error *err)
{
    rm_sqlite *s = impl;
    sqlite_conn *c = sqlite_pool_checkout(s->pool, err);
    if (!c)
        return err ? err->status : SM_ERR_UNAVAILABLE;
    int rc = sqlite3_step(c->st[ST_BEGIN]);
    sqlite3_reset(c->st[ST_BEGIN]);
    sm_status st = rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(s->pool, c, rc, "begin", err);
    bool found = false;
    int64_t one;
    if (!st) {
        sqlite3_stmt *q = c->st[ST_POST_EXISTS];
        sqlite3_bind_text(q, 1, cq->post_id, -1, SQLITE_STATIC);
        st = one_int(s, c, q, "find post", &one, &found, err);
    }
    rm_post *p = NULL;
    if (!st && found && !(p = rm_post_list_push(out)))
        st = sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    if (p) {
        snprintf(p->id, sizeof p->id, "%s", cq->post_id);
        sqlite3_stmt *q = c->st[cq->after_id ? ST_COMMENT_PAGE_AFTER : ST_COMMENT_PAGE];
        sqlite3_bind_text(q, 1, cq->post_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, cq->limit);
        if (cq->after_id) {
            sqlite3_bind_int64(q, 3, cq->after_date_ms);
            sqlite3_bind_text(q, 4, cq->after_id, -1, SQLITE_STATIC);
        }
        st = read_comments(s, c, q, p, err);
    }
    if (rc == SQLITE_DONE) {
        if (sqlite3_step(c->st[ST_COMMIT]) != SQLITE_DONE)
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_reset(c->st[ST_COMMIT]);
    }
    sqlite_pool_checkin(s->pool, c);
    return st;
}

static sm_status sqlite_post_version(void *impl, const char *post_id, int64_t *version,
                                     sm_error *err)
{
    rm_sqlite *s = impl;
    sqlite_conn *c = sqlite_pool_checkout(s->pool, err);
    if (!c)
        return err ? err->status : SM_ERR_UNAVAILABLE;
    sm_status st = read_version(s, c, post_id, version, err);
    sqlite_pool_checkin(s->pool, c);
    return st;
}

static sm_status sqlite_ping(void *impl, sm_error *err)
{
    rm_sqlite *s = impl;
    sqlite_conn *c = sqlite_pool_checkout(s->pool, err);
    if (!c)
        return err ? err->status : SM_ERR_UNAVAILABLE;
    int rc = sqlite3_step(c->st[ST_PING]);
    sm_status st = rc == SQLITE_ROW ? SM_OK : sqlite_pool_fail(s->pool, c, rc, "ping", err);
    sqlite_pool_checkin(s->pool, c);
    return st;
}

static void sqlite_close(void *impl)
{
    rm_sqlite *s = impl;
    sqlite_pool_close(s->pool);
    free(s);
}

static const rm_ops sqlite_ops = {
    .name = "sqlite",
    .apply = sqlite_apply,
    .apply_batch = sqlite_apply_batch,
    .query = sqlite_query,
    .comment_page = sqlite_comment_page,
    .post_version = sqlite_post_version,
    .ping = sqlite_ping,
    .close = sqlite_close,
};

/* ---- The collation's version ------------------------------------------------
 *
 * IX_Post_AuthorPage is a B-tree in SM_NOCASE order, and that order is code
 * (sm_text_compare_ci), named by sm_text_ci_version(). A file last written
 * by a binary with another order (a query-api from before the order was
 * ours, when it came from the C library's locale tables; one built on
 * another Unicode table) holds a tree sorted by other rules: lookups by
 * author search it with ours and miss rows, and new rows land where the old
 * ones say they should not. So the file records the version its index was
 * built in (CollationVersion), and an open by a binary with another
 * version rebuilds the index before anything reads or writes it: REINDEX
 * SM_NOCASE and the new version, in one write transaction, so a crash
 * leaves the old index and old version and the next start does it again.
 * A file with no version and no posts is new: nothing to sort.
 *
 * The collation keeps its name rather than carrying the version
 * (SM_NOCASE_2, ...). The name is written into the index definition kept
 * in each file, so renaming means dropping and re-creating the index and
 * changing every query's COLLATE in step, and a name only changes when
 * someone remembers to change it; the recorded version comes from the
 * compiled table and catches any difference, in either direction. The
 * price: a query-api from before this check does not read the version, so
 * going back to one needs the read model rebuilt (docs/operations.md). */

typedef struct collation_sync {
    rm_sqlite *s;
    char from[64];   /* the recorded version, "none" if there was none */
    int64_t posts;   /* rows re-sorted; -1 if no REINDEX ran */
} collation_sync;

/* Runs sql, a one-off statement, and copies its first row's first column
 * into out ("" if there is no row; *found, if given, says which). */
static int first_text(sqlite_conn *c, const char *sql, char *out, size_t cap, bool *found)
{
    sqlite3_stmt *q;
    if (found)
        *found = false;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(q);
    if (found)
        *found = rc == SQLITE_ROW;
    const char *t = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
    snprintf(out, cap, "%s", t ? t : "");
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static sm_status do_sync_collation(sqlite_conn *c, void *arg, sm_error *err)
{
    collation_sync *k = arg;
    const char *now = sm_text_ci_version();
    char count[32];
    bool recorded = false;
    int64_t posts = 0;
    k->posts = -1;
    int rc = first_text(c, "SELECT Version FROM CollationVersion WHERE Name = 'SM_NOCASE'",
                        k->from, sizeof k->from, &recorded);
    if (rc == SQLITE_OK && recorded && strcmp(k->from, now) == 0)
        return SM_OK; /* every start but the first after an upgrade */
    if (!recorded)
        snprintf(k->from, sizeof k->from, "none");
    if (rc == SQLITE_OK &&
        (rc = first_text(c, "SELECT COUNT(*) FROM Post", count, sizeof count, NULL)) == SQLITE_OK)
        posts = strtoll(count, NULL, 10);
    if (rc == SQLITE_OK && (recorded || posts > 0)) {
        rc = sqlite3_exec(c->db, "REINDEX SM_NOCASE", NULL, NULL, NULL);
        k->posts = posts;
    }
    sqlite3_stmt *q = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c->db, "INSERT INTO CollationVersion (Name, Version)"
                                " VALUES ('SM_NOCASE', ?1) ON CONFLICT (Name)"
                                " DO UPDATE SET Version = excluded.Version", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, now, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(c->db);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_OK ? SM_OK : sqlite_pool_fail(k->s->pool, c, rc, "reindex", err);
}

static sm_status sync_collation(rm_sqlite *s, const char *path, sm_error *err)
{
    collation_sync k = {.s = s};
    int64_t t0 = sm_mono_ms();
    sm_status st = sqlite_pool_write(s->pool, do_sync_collation, &k, err);
    if (st == SM_OK && k.posts >= 0) {
        char from[96];
        sm_log(SM_LOG_INFO, "read_model_reindex",
               "collation=SM_NOCASE from=%s to=%s posts=%lld ms=%lld path=%s",
               sm_log_quote(k.from, from, sizeof from), sm_text_ci_version(),
               (long long)k.posts, (long long)(sm_mono_ms() - t0), path);
    }
    return st;
}

/* ---- Columns added after the first release ---------------------------------
 *
 * CREATE TABLE IF NOT EXISTS leaves the tables of a file written by an
 * older query-api as they were, and the statements above name every
 * column, so they would not even prepare on it. So the open goes in two
 * steps: a first pool applies the schema and adds the missing columns (in
 * one write transaction, so two processes opening the same old file at
 * once add each column once: the second finds it there), then the pool
 * the store keeps is opened and prepares its statements. The columns are
 * nullable and added without a default, so the rows already there read as
 * NULL: an owner nobody recorded. ALTER TABLE ... ADD COLUMN only rewrites
 * the schema, not the rows, so this costs the same on a large file. */

static const struct {
    const char *table, *column, *type;
} added_columns[] = {
    {"Post", "AuthorId", "TEXT"},
    {"Comment", "UserId", "TEXT"},
};

#define N_ADDED_COLUMNS (sizeof added_columns / sizeof added_columns[0])

static const char *const migrate_sql[] = {
    "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
};

typedef struct migration {
    sqlite_pool *pool;
    bool added[N_ADDED_COLUMNS];
} migration;

static sm_status do_migrate(sqlite_conn *c, void *arg, sm_error *err)
{
    migration *m = arg;
    sqlite3_stmt *q = c->st[0];
    for (size_t i = 0; i < N_ADDED_COLUMNS; i++) {
        sqlite3_bind_text(q, 1, added_columns[i].table, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, added_columns[i].column, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        sqlite3_reset(q);
        if (rc == SQLITE_ROW)
            continue;
        if (rc != SQLITE_DONE)
            return sqlite_pool_fail(m->pool, c, rc, "read columns", err);
        char sql[128]; /* names from the table above, never from outside */
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", added_columns[i].table,
                 added_columns[i].column, added_columns[i].type);
        rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return sqlite_pool_fail(m->pool, c, rc, "add column", err);
        m->added[i] = true;
    }
    return SM_OK;
}

static sm_status migrate_columns(const char *path, sm_error *err)
{
    migration m = {0};
    m.pool = sqlite_pool_open(path, "read model", sm_sql_read_model_sqlite, migrate_sql, 1, err);
    if (!m.pool)
        return err ? err->status : SM_ERR_INTERNAL;
    sm_status st = sqlite_pool_write(m.pool, do_migrate, &m, err);
    sqlite_pool_close(m.pool);
    for (size_t i = 0; st == SM_OK && i < N_ADDED_COLUMNS; i++)
        if (m.added[i])
            sm_log(SM_LOG_INFO, "read_model_migrated",
                   "adapter=sqlite table=%s column=%s path=%s", added_columns[i].table,
                   added_columns[i].column, path);
    return st;
}

sm_status rm_sqlite_open(const char *path, rm_store **out, sm_error *err)
{
    *out = NULL;
    sm_status mst = migrate_columns(path, err);
    if (mst != SM_OK)
        return mst;
    rm_sqlite *s = calloc(1, sizeof *s);
    if (!s)
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    s->pool = sqlite_pool_open(path, "read model", sm_sql_read_model_sqlite, stmt_sql, ST_COUNT,
                               err);
    if (!s->pool) {
        free(s);
        return err ? err->status : SM_ERR_INTERNAL;
    }
    sm_status st = sync_collation(s, path, err);
    if (st != SM_OK) {
        sqlite_close(s);
        return st;
    }
    *out = rm_store_new(&sqlite_ops, s);
    if (!*out)
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    sm_log(SM_LOG_INFO, "read_model_open", "adapter=sqlite path=%s", path);
    return SM_OK;
}
