/* SPDX-License-Identifier: Apache-2.0 */
/* sqlite_group.h — group commit: concurrent write transactions on one
 * SQLite database share one COMMIT, and so one fsync.
 *
 * With synchronous=FULL every COMMIT waits for the disk, and SQLite lets
 * one writer in at a time, so N concurrent appends cost N fsyncs in a row.
 * sqlite_group_write() has the contract of sqlite_pool_write() (fn runs in
 * a write transaction; its changes are durable when it returns SM_OK, and
 * absent when it fails), but callers that arrive while a transaction is
 * running queue up, and the next one runs all of them in one transaction:
 * each fn inside its own SAVEPOINT (a failing fn is rolled back alone and
 * gets its own status), then one COMMIT for the batch. Nobody is answered
 * before the COMMIT that holds their change has returned, so "SM_OK means
 * durable" holds for every caller.
 *
 * If a member's error makes SQLite roll the whole transaction back (it
 * does for some SQLITE_FULL, IOERR, BUSY and NOMEM errors, and for a
 * trigger's RAISE(ROLLBACK)), that member gets its error and the others,
 * whose writes went with the transaction or never ran, are run again in a
 * new one (up to 4 transactions for one batch; past that they fail with
 * SM_ERR_UNAVAILABLE, nothing written). No member is ever run in
 * autocommit mode, where it would be committed alone and then told that
 * the batch failed. Statements a member left in mid-step are reset before
 * the next member runs.
 *
 * There is no extra thread: the first caller to find no batch running
 * becomes the leader, runs the queue, wakes the others, and so on. A caller
 * still waiting in the queue when its deadline (sm_deadline.h) passes
 * leaves it with SM_ERR_UNAVAILABLE, nothing written; once a batch has
 * taken it, it sleeps until that batch is done (its write may commit), and
 * the batch stops waiting for a locked database at the earliest deadline
 * among its members.
 *
 * Thread-safe. The group borrows its pool, which must outlive it. */
#ifndef SQLITE_GROUP_H
#define SQLITE_GROUP_H

#include "sm_metrics.h"
#include "sqlite_pool.h"

#define SQLITE_GROUP_MAX_BATCH 128

typedef struct sqlite_group sqlite_group;

typedef struct sqlite_group_stats {
    uint64_t commits;   /* transactions committed */
    uint64_t writes;    /* writes they held (writes / commits = mean batch) */
} sqlite_group_stats;

/* NULL on OOM. */
sqlite_group *sqlite_group_new(sqlite_pool *pool);
void sqlite_group_free(sqlite_group *g);

/* As sqlite_pool_write(), batched with concurrent callers. fn must leave
 * the connection usable for the next fn (no COMMIT/ROLLBACK of its own). */
sm_status sqlite_group_write(sqlite_group *g, sm_status (*fn)(sqlite_conn *, void *, sm_error *),
                             void *arg, sm_error *err);

void sqlite_group_get_stats(sqlite_group *g, sqlite_group_stats *out);

/* Appends the histogram of writes per committed transaction of every group
 * in this process, smpost_group_commit_members (its _count: transactions;
 * _sum: writes). Empty on a process without SQLite groups (MongoDB). */
void sqlite_group_render_metrics(sm_buf *b);

/* Requests waiting to be taken into a batch (for tests and metrics). */
int sqlite_group_queued(sqlite_group *g);

#endif
