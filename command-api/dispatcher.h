/* SPDX-License-Identifier: Apache-2.0 */
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
 * Within one process, commands on the same post queue on a striped lock
 * instead of burning retries, and the queue is worked in batches (hot
 * posts): the first command in line becomes the batch's leader, takes every
 * command queued behind it for the same post (up to max_batch), and decides
 * them in arrival order against one state, each seeing the events of those
 * before it; the events of the accepted ones go to the store in ONE append
 * (one transaction, one group-commit member on SQLite). So a post liked by
 * N clients at once costs one commit per batch, not one per like. Each
 * command still gets its own outcome:
 *  - accepted: its own version, and SM_OK only once the append holding its
 *    event has returned ES_OK (durable, as before);
 *  - refused (404, 412, a rule, 403): its own error, decided against the
 *    state left by the commands before it in the batch (a like queued
 *    behind a DeletePost is 404); nothing of it is written, and the others
 *    go on as if it had not been there;
 *  - the append fails: every command whose answer depended on it (the
 *    accepted ones, and refusals decided after the first accepted one, on
 *    a state that was never stored) gets the append's error: SM_ERR_CONFLICT
 *    (another process wrote: each re-runs its own load/decide/append
 *    cycle, as before), SM_ERR_UNAVAILABLE etc. None of them is 2xx.
 * A leader waits for the store no longer than the earliest deadline in its
 * batch; a command still in the queue at its deadline leaves it with 503.
 * The store's UNIQUE (aggregate, version) is what keeps several processes
 * correct.
 *
 * Thread-safety: cmd_dispatch may be called from any number of threads on
 * one context. */
#ifndef DISPATCHER_H
#define DISPATCHER_H

#include "commands.h"
#include "event_store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CMD_LOCK_STRIPES 64
#define CMD_DEFAULT_ATTEMPTS 10
#define CMD_DEFAULT_BUDGET_MS 9000 /* 90 % of the default 10 s request timeout */
#define CMD_MAX_BATCH 64            /* commands on one post decided and appended together */

/* Called after events are durably appended (e.g. to wake the outbox relay).
 * Must not block. */
typedef void (*cmd_appended_fn)(void *arg, const sm_event *evs, size_t n);

struct post_repo;
struct cmd_waiter;

/* One lock stripe: the commands queued on the posts that hash to it. mu is
 * held only to queue, take a batch or hand results back; `busy` is the
 * stripe lock proper (a leader is loading/deciding/appending). */
typedef struct cmd_stripe {
    pthread_mutex_t mu;
    pthread_cond_t changed;           /* a batch ended or a waiter left */
    struct cmd_waiter *head, *tail;   /* FIFO, not yet taken into a batch */
    bool busy;
} cmd_stripe;

typedef struct cmd_context {
    es_store *store;              /* borrowed */
    struct post_repo *repo;       /* borrowed, optional: snapshots + cache */
    int64_t (*now_ms)(void);      /* clock; sm_now_ms in production */
    int max_attempts;             /* append attempts before 409 */
    int max_batch;                /* commands in one batch (1: one at a time); at most
                                   * CMD_MAX_BATCH (the default). A store that cannot append
                                   * several events atomically must run with 1. */
    int64_t budget_ms;            /* a command's time, all waits included, then 503 */
    cmd_appended_fn on_appended;  /* optional */
    void *on_appended_arg;
    cmd_stripe stripes[CMD_LOCK_STRIPES];
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

/* Commands waiting in the queue of post_id's stripe, not yet taken into a
 * batch (tests: to line commands up behind a leader). */
int cmd_queued(cmd_context *ctx, const char *post_id);

/* Rebuilds a post from its stream into *state (post_init'ed by the call).
 * A post with no events is not an error: post_exists() says false. */
struct post_state;
sm_status cmd_load_post(es_store *store, const char *post_id, struct post_state *state,
                        sm_error *err);

#endif
