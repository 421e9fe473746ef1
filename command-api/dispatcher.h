/* dispatcher.h — runs commands: one handler per command type, registered in
 * one table (dispatcher.c).
 *
 * Every command but NewPost follows the same path: rehydrate the post (from
 * the post_repo when one is set: cache or snapshot + the events after it;
 * else from its whole stream), check the client's If-Match version, let the aggregate decide
 * the new event, append it with the loaded version as the expected one. If
 * another writer got there first (ES_CONFLICT) the whole cycle is retried
 * against the fresh stream, a bounded number of times, and only then does the
 * client see 409.
 *
 * Within one process, commands on the same post are serialised by a striped
 * lock, so concurrent requests queue instead of burning retries; the store's
 * UNIQUE (aggregate, version) is what keeps several processes correct.
 *
 * Thread-safety: cmd_dispatch may be called from any number of threads on
 * one context. */
#ifndef DISPATCHER_H
#define DISPATCHER_H

#include "commands.h"
#include "event_store.h"

#include <pthread.h>
#include <stdint.h>

#define CMD_LOCK_STRIPES 64
#define CMD_DEFAULT_ATTEMPTS 10
#define CMD_DEFAULT_BUDGET_MS 9000 /* 90 % of the default 10 s request timeout */

/* Called after events are durably appended (e.g. to wake the outbox relay).
 * Must not block. */
typedef void (*cmd_appended_fn)(void *arg, const sm_event *evs, size_t n);

struct post_repo;

typedef struct cmd_context {
    es_store *store;              /* borrowed */
    struct post_repo *repo;       /* borrowed, optional: snapshots + cache */
    int64_t (*now_ms)(void);      /* clock; sm_now_ms in production */
    int max_attempts;             /* append attempts before 409 */
    int64_t budget_ms;            /* a command's time, all waits included, then 503 */
    cmd_appended_fn on_appended;  /* optional */
    void *on_appended_arg;
    pthread_mutex_t stripes[CMD_LOCK_STRIPES];
} cmd_context;

typedef struct cmd_result {
    sm_uuid_str post_id;
    sm_uuid_str comment_id;  /* AddComment: the new comment's id */
    int64_t version;         /* the post's version after the command */
    const char *message;     /* success text of the original API (static) */
    int attempts;            /* append attempts it took (1 = no conflict) */
} cmd_result;

void cmd_context_init(cmd_context *ctx, es_store *store);
void cmd_context_destroy(cmd_context *ctx);

/* Runs cmd. For CMD_NEW_POST, cmd->post_id must already hold the new id.
 * On SM_OK fills *res. Errors: SM_ERR_NOT_FOUND (unknown post or comment),
 * SM_ERR_RULE (a business rule, with the original text),
 * SM_ERR_FORBIDDEN (cmd->actor set and not the owner: post_actor, post.h),
 * SM_ERR_PRECONDITION (If-Match), SM_ERR_CONFLICT (retries exhausted),
 * SM_ERR_UNAVAILABLE (event store down), SM_ERR_INTERNAL. */
sm_status cmd_dispatch(cmd_context *ctx, const command *cmd, cmd_result *res, sm_error *err);

/* Rebuilds a post from its stream into *state (post_init'ed by the call).
 * A post with no events is not an error: post_exists() says false. */
struct post_state;
sm_status cmd_load_post(es_store *store, const char *post_id, struct post_state *state,
                        sm_error *err);

#endif
