/* SPDX-License-Identifier: Apache-2.0 */
/* queries.h — the query dispatcher: one handler per query, registered in
 * one table (queries.c), each turning HTTP parameters into an rm_query,
 * running it and shaping the original API's answer:
 *   200 {"posts":[PostEntity...],"message":"Successfully returned N post(s)"}
 *   204 with no body when nothing matches (byId included).
 * The list queries (all but byId) add "nextCursor" to the 200: the `after`
 * of the next page (page_cursor.h), null on the last one.
 *
 * Comments: a PostEntity carries commentCount (all its comments) and
 * commentsTruncated, always, and at most query_limits.comments_inline of
 * its comments, the newest (oldest first among themselves); the others come
 * from QUERY_COMMENTS, comments/{postId}?after=&limit=:
 *   200 {"comments":[Comment...],"nextCursor":cursor|null}, oldest first
 *   204 when the post does not exist (as byId); an existing post with no
 *       comment left answers 200 with [] and null.
 *
 * Bounded answers: a list page or a comment page ends early, with a
 * nextCursor that continues right after its last item, when the next item
 * would take the compact JSON body past query_limits.max_response_bytes;
 * it always holds at least one item, and that budget is at least
 * query_min_response_bytes(), so no answer is larger than the budget (as
 * long as the read model holds what the command side lets in). Sizes
 * are of the uncompressed body; the worst cases come from the command
 * side's field limits (QUERY_FIELD_MAX_*) with every byte a control
 * character, which JSON writes as \u00XX (6 bytes).
 *
 * Limits (docs/api.md): limit default QUERY_DEFAULT_LIMIT, at most
 * QUERY_MAX_LIMIT; offset at most QUERY_MAX_OFFSET, kept for the seed's
 * clients and capped because a read model reads every row it skips (deeper
 * pages go by `after`, whose cost does not grow with depth); author at most
 * 64 bytes.
 * Thread-safe. */
#ifndef QUERIES_H
#define QUERIES_H

#include "http_docs.h"
#include "http_util.h"
#include "projector.h"
#include "read_model.h"

#define QUERY_DEFAULT_LIMIT 50
#define QUERY_MAX_LIMIT 500
#define QUERY_MAX_OFFSET 10000
#define QUERY_MAX_AUTHOR 64
#define QUERY_DEFAULT_WAIT_MS 2000
/* posts read from the read model at once for a list page (queries.c,
 * run_posts): a default page and its one more in one read */
#define QUERY_FETCH_POSTS (QUERY_DEFAULT_LIMIT + 1)
#define QUERY_COMMENTS_DEFAULT_LIMIT 50
#define QUERY_COMMENTS_MAX_LIMIT 500
#define QUERY_DEFAULT_COMMENTS_INLINE 100
#define QUERY_MAX_COMMENTS_INLINE 500
#define QUERY_DEFAULT_MAX_RESPONSE_BYTES 4194304 /* 4 MiB; a bare number: main.c prints it */

/* The command side's limits on what a post holds (command-api/commands.h,
 * CMD_MAX_*, and sm_event.h's owner ids; tests/unit/test_query_routes.c
 * checks they agree): what the worst cases below are made of. */
#define QUERY_FIELD_MAX_NAME 64       /* author, username (bytes) */
#define QUERY_FIELD_MAX_MESSAGE 4096
#define QUERY_FIELD_MAX_COMMENT 2048
#define QUERY_FIELD_MAX_OWNER 255     /* authorId, userId */

/* query-api's answer-size settings (SMPOST_COMMENTS_INLINE,
 * SMPOST_MAX_RESPONSE_BYTES). */
typedef struct query_limits {
    int64_t comments_inline;    /* 0..QUERY_MAX_COMMENTS_INLINE */
    int64_t max_response_bytes; /* >= query_min_response_bytes(comments_inline) */
} query_limits;

/* Worst-case compact JSON sizes, in bytes: one Comment; one PostEntity
 * with `inline` comments; a list answer's or a comment page's body
 * without its items (message, nextCursor, brackets). */
int64_t query_comment_json_max(void);
int64_t query_post_json_max(int64_t inline_comments);
int64_t query_list_envelope_max(void);
int64_t query_comment_page_envelope_max(void);
/* An upper bound of query_post_json(p)'s compact bytes plus a comma, from
 * the lengths of p's own texts (query_post_json_max's worst case with
 * them): what a list page counts against its budget until a post might
 * not fit, when it measures exactly. */
int64_t query_post_bound(const rm_post *p);
/* The smallest budget that always holds one item of either kind. */
int64_t query_min_response_bytes(int64_t inline_comments);

typedef struct query_app {
    rm_store *rm;        /* owned by main */
    projector *proj;     /* owned by main; NULL when not consuming (tests) */
    int min_version_wait_ms;
    int request_timeout_ms; /* each request's budget for its waits (sm_deadline.h); 0: none */
    http_docs docs;      /* /openapi.json and /swagger/; zeroed: both answer 404 */
    char instance[100];  /* instance id (sm_config_instance_id); "" in tests */
    const query_limits *limits; /* owned by main; NULL: the defaults */
} query_app;

typedef enum {
    QUERY_ALL = 0,
    QUERY_BY_ID,
    QUERY_BY_AUTHOR,
    QUERY_WITH_COMMENTS,
    QUERY_WITH_LIKES,
    QUERY_COMMENTS, /* one post's comments, a page at a time */
    QUERY_COUNT
} query_type;

/* Runs query `type` with its path argument (the {postId}, {author} or {n}
 * segment, or NULL) and the raw query string, filling reply. */
void query_dispatch(query_app *app, query_type type, const char *arg, const char *query_string,
                    http_reply *reply);

/* PostEntity JSON of one read-model post (new reference), with
 * commentCount and commentsTruncated (comment_count > ncomments). */
json_t *query_post_json(const rm_post *p);

#endif
