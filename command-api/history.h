/* SPDX-License-Identifier: Apache-2.0 */
/* history.h — the command side's read-only view of the event log:
 * PostHistory (a post's events, paged) and PostAt (its state after a
 * version, or at an instant).
 *
 * These are queries, but they read the event store, not the read model: the
 * store is the only place that keeps every change. They go through a small
 * dispatcher like the commands do (one table, parse -> run -> reply), and
 * never scan other posts: PostAt starts from the nearest snapshot at or
 * below the wanted version (post_repo_load_at) and folds the events after
 * it; `at` is first turned into a version by es_version_at, which walks only
 * that post's events.
 *
 * Limits (docs/api.md): PostHistory `limit` defaults to HIST_DEFAULT_LIMIT
 * and is at most HIST_MAX_LIMIT; `fromVersion` defaults to 0.
 *
 * Thread-safety: as the dispatcher's; any number of threads. */
#ifndef HISTORY_H
#define HISTORY_H

#include "dispatcher.h"
#include "http_util.h"
#include "post.h"

#define HIST_DEFAULT_LIMIT 100
#define HIST_MAX_LIMIT 1000

typedef enum { HIST_POST_HISTORY, HIST_POST_AT, HIST_COUNT } hist_kind;

/* Answers one history query: post_arg is the {postId} path segment (not
 * NUL-terminated), query the raw query string. Fills reply with 200 and the
 * JSON of docs/api.md, or an error: 400 bad id or parameter, 404 unknown
 * post (or not yet existing at that point), 503 store down. actor: the
 * authenticated caller (SMPOST_AUTH=jwt), who must be the post's owner or a
 * moderator (else 403); NULL with auth off: anyone reads. */
void hist_handle(cmd_context *ctx, hist_kind kind, const char *post_arg, size_t post_len,
                 const char *query, const post_actor *actor, http_reply *reply);

#endif
