/* SPDX-License-Identifier: Apache-2.0 */
/* read_model.h — the read model port: the query side's tables (Post,
 * Comment) kept up to date by projecting events, and the queries over them.
 *
 * Adapters: rm_sqlite.c ("sqlite:PATH", the embedded default) and
 * rm_mssql.c ("mssql:host=...;port=...;user=...;password=...;database=..."
 * through FreeTDS). Schemas: sql/read_model.sqlite.sql and
 * sql/read_model.mssql.sql, applied idempotently on open.
 *
 * Projection is idempotent and ordered, keyed by the post's version: each
 * post's last applied version is kept in PostVersion, which outlives the
 * Post row (a removed post's row and comments are deleted, as in the
 * original, but its version stays so that a redelivered old event cannot
 * bring it back). For an event of version v on a post at version a:
 *   v <= a      RM_DUPLICATE: nothing changes (redelivery, replay)
 *   v == a + 1  RM_APPLIED: the change and the new version commit together
 *   v >  a + 1  RM_GAP: nothing changes; the caller logs and counts it
 * (a = -1 for a post never seen.)
 *
 * Owners: a post keeps its PostCreatedEvent's authorId and a comment its
 * CommentAddedEvent's userId (the token's `sub`), NULL for events without
 * one (auth off, or written before owner ids existed). Both columns were
 * added after the first release: opening an older database adds them,
 * nullable, so its rows read with NULL owners.
 *
 * Thread-safety: an rm_store may be shared by threads (the consumer applies
 * while HTTP workers query); adapters pool or lock their connections. */
#ifndef READ_MODEL_H
#define READ_MODEL_H

#include "sm_error.h"
#include "sm_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rm_comment {
    sm_uuid_str comment_id;
    sm_uuid_str post_id;
    char *username;
    char *user_id;          /* the commenter's user id; NULL if unknown */
    char *comment;
    int64_t comment_date_ms;
    bool edited;
    int64_t edited_at_ms;   /* 0 unless edited */
} rm_comment;

typedef struct rm_post {
    sm_uuid_str id;
    char *author;
    char *author_id;        /* the author's user id; NULL if unknown */
    char *message;
    int64_t date_posted_ms;
    int64_t likes;
    int64_t version;        /* last event applied to this post */
    rm_comment *comments;   /* oldest first */
    size_t ncomments;
    int64_t comment_count;  /* all the post's comments, ncomments or more (rm_query) */
} rm_post;

/* A list of posts that owns everything in it. */
typedef struct rm_post_list {
    rm_post *items;
    size_t len, cap;
} rm_post_list;

/* Appends a zeroed post (NULL on OOM); adds a zeroed comment to p. */
rm_post *rm_post_list_push(rm_post_list *l);
rm_comment *rm_post_add_comment(rm_post *p);
void rm_post_list_free(rm_post_list *l);

typedef enum {
    RM_Q_ALL = 0,
    RM_Q_BY_ID,
    RM_Q_BY_AUTHOR,       /* exact match ignoring case */
    RM_Q_WITH_COMMENTS,   /* at least one comment */
    RM_Q_WITH_LIKES       /* likes >= min_likes */
} rm_query_kind;

typedef struct rm_query {
    rm_query_kind kind;
    const char *id;       /* BY_ID: canonical UUID */
    const char *author;   /* BY_AUTHOR */
    int64_t min_likes;    /* WITH_LIKES */
    int64_t limit;        /* > 0 */
    int64_t offset;       /* >= 0; 0 with after_id */
    /* Keyset page (page_cursor.h): only the posts after the post
     * (after_date_ms, after_id) in the order below, found by an index seek
     * rather than by skipping rows. after_id NULL: from the first post. */
    const char *after_id; /* canonical UUID or NULL */
    int64_t after_date_ms;
    /* Comments: with comments_capped, each post carries only its newest
     * comments_limit (>= 0; 0: none), still oldest first among themselves;
     * without, all of them (so a zeroed rm_query keeps the port's first
     * contract). comment_count is every comment's count either way. */
    bool comments_capped;
    int64_t comments_limit;
} rm_query;

/* A page of one post's comments, oldest first: those after the comment
 * (after_date_ms, after_id) in the order (commentDate, commentId as
 * canonical text) ascending, at most limit (> 0). after_id NULL: from the
 * first comment. */
typedef struct rm_comment_query {
    const char *post_id;  /* canonical UUID */
    const char *after_id; /* canonical UUID or NULL */
    int64_t after_date_ms;
    int64_t limit;
} rm_comment_query;

typedef enum { RM_APPLIED = 0, RM_DUPLICATE, RM_GAP } rm_outcome;

typedef struct rm_store rm_store;

typedef struct rm_ops {
    const char *name;
    /* Applies ev in one transaction (see the rules above). On a failure
     * nothing is changed: SM_ERR_UNAVAILABLE (retry later) or
     * SM_ERR_INTERNAL. */
    sm_status (*apply)(void *impl, const sm_event *ev, rm_outcome *outcome, sm_error *err);
    /* Applies evs[0..n) in order in ONE transaction, each by the rules
     * above as if applied alone (a later event sees the earlier ones, so
     * the same version twice in a batch is applied, then a duplicate);
     * outcomes[i] is evs[i]'s. All or nothing: on a failure the whole
     * batch is rolled back, outcomes are undefined, *failed (if not NULL)
     * is the index of the event that failed (n: the commit did) and the
     * status is what apply would answer. One commit instead of n is what
     * makes catching up a backlog cheap (one fsync, or one log flush on
     * SQL Server, per batch). NULL: the adapter cannot batch (rm_apply_batch
     * then fails with SM_ERR_INTERNAL). */
    sm_status (*apply_batch)(void *impl, const sm_event *const *evs, size_t n,
                             rm_outcome *outcomes, size_t *failed, sm_error *err);
    /* Posts matching q in the stable order datePosted DESC, id ASC (the
     * id's canonical text), each with its comments (oldest first; all of
     * them, or the newest q->comments_limit) and comment_count. */
    sm_status (*query)(void *impl, const rm_query *q, rm_post_list *out, sm_error *err);
    /* The page q asks for of one post's comments, read in one snapshot:
     * out gets one post (id, comments and ncomments only; comment_count 0)
     * if the post exists, even with no comment on this page, and nothing
     * if it does not. */
    sm_status (*comment_page)(void *impl, const rm_comment_query *q, rm_post_list *out,
                              sm_error *err);
    /* Last applied version of a post (-1 if never seen; kept after removal). */
    sm_status (*post_version)(void *impl, const char *post_id, int64_t *version, sm_error *err);
    sm_status (*ping)(void *impl, sm_error *err);
    void (*close)(void *impl);
} rm_ops;

/* Opens the read model named by url ("sqlite:PATH" or "mssql:..."). A
 * server that is down at open is reported as SM_ERR_UNAVAILABLE; callers
 * may retry. */
sm_status rm_open(const char *url, rm_store **out, sm_error *err);

sm_status rm_apply(rm_store *s, const sm_event *ev, rm_outcome *outcome, sm_error *err);
/* See rm_ops.apply_batch. n == 0 is a no-op; an event that is not one
 * (unknown type, negative version) fails the batch with SM_ERR_INVALID
 * before anything is sent. Caller keeps ownership of evs. */
sm_status rm_apply_batch(rm_store *s, const sm_event *const *evs, size_t n, rm_outcome *outcomes,
                         size_t *failed, sm_error *err);
sm_status rm_query_posts(rm_store *s, const rm_query *q, rm_post_list *out, sm_error *err);
/* See rm_ops.comment_page. SM_ERR_INVALID for a limit <= 0 or no post id. */
sm_status rm_comment_page(rm_store *s, const rm_comment_query *q, rm_post_list *out,
                          sm_error *err);
sm_status rm_post_version(rm_store *s, const char *post_id, int64_t *version, sm_error *err);
sm_status rm_ping(rm_store *s, sm_error *err);
const char *rm_adapter_name(const rm_store *s);
void rm_close(rm_store *s);

/* For adapters: wraps impl (ownership passes; ops->close frees it). */
rm_store *rm_store_new(const rm_ops *ops, void *impl);

sm_status rm_sqlite_open(const char *path, rm_store **out, sm_error *err);
sm_status rm_mssql_open(const char *conn, rm_store **out, sm_error *err);

#endif
