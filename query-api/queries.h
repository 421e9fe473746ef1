/* queries.h — the query dispatcher: one handler per query, registered in
 * one table (queries.c), each turning HTTP parameters into an rm_query,
 * running it and shaping the original API's answer:
 *   200 {"posts":[PostEntity...],"message":"Successfully returned N post(s)"}
 *   204 with no body when nothing matches (byId included).
 * The list queries (all but byId) add "nextCursor" to the 200: the `after`
 * of the next page (page_cursor.h), null on the last one.
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

typedef struct query_app {
    rm_store *rm;        /* owned by main */
    projector *proj;     /* owned by main; NULL when not consuming (tests) */
    int min_version_wait_ms;
    int request_timeout_ms; /* each request's budget for its waits (sm_deadline.h); 0: none */
    http_docs docs;      /* /openapi.json and /swagger/; zeroed: both answer 404 */
    char instance[100];  /* instance id (sm_config_instance_id); "" in tests */
} query_app;

typedef enum {
    QUERY_ALL = 0,
    QUERY_BY_ID,
    QUERY_BY_AUTHOR,
    QUERY_WITH_COMMENTS,
    QUERY_WITH_LIKES,
    QUERY_COUNT
} query_type;

/* Runs query `type` with its path argument (the {postId}, {author} or {n}
 * segment, or NULL) and the raw query string, filling reply. */
void query_dispatch(query_app *app, query_type type, const char *arg, const char *query_string,
                    http_reply *reply);

/* PostEntity JSON of one read-model post (new reference). */
json_t *query_post_json(const rm_post *p);

#endif
