/* SPDX-License-Identifier: Apache-2.0 */
/* sqlite_group.c — group commit (sqlite_group.h). */
#include "sqlite_group.h"

#include "sm_histogram.h"

#include "sm_deadline.h"
#include "sm_time.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Members per committed transaction, over every group of the process:
 * smpost_group_commit_members (sqlite_group_render_metrics). */
static sm_histogram members_hist = SM_HISTOGRAM_INIT(&sm_hist_sizes);

typedef struct request {
    sm_status (*fn)(sqlite_conn *, void *, sm_error *);
    void *arg;
    sm_error *err;       /* the caller's, valid while it waits */
    int64_t deadline;    /* the caller's (sm_deadline.h), 0 if none */
    sm_status st;
    bool taken, done;
    pthread_cond_t cv;   /* signalled when done, or when it is to lead
                          * (monotonic clock: sm_cond_init) */
    atomic_bool waking;  /* its leader has yet to signal cv after done:
                          * cv must outlive that (see finish) */
    struct request *next;
} request;

struct sqlite_group {
    sqlite_pool *pool;
    pthread_mutex_t mu;  /* guards the queue and every request's flags */
    request *head, *tail;
    bool running;        /* a leader is running a batch */
    sqlite_group_stats stats;
};

sqlite_group *sqlite_group_new(sqlite_pool *pool)
{
    sqlite_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->pool = pool;
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

void sqlite_group_free(sqlite_group *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void fail_with(request *r, sm_status st, const sm_error *why)
{
    *r->err = *why;
    r->st = st;
}

/* A member that returns early can leave a statement of the shared
 * connection in mid-step; the next member's bind on it would then fail
 * (SQLITE_MISUSE, usually unchecked) and its step carry on the old query. */
static void reset_statements(sqlite_conn *c)
{
    for (sqlite3_stmt *q = sqlite3_next_stmt(c->db, NULL); q; q = sqlite3_next_stmt(c->db, q))
        if (sqlite3_stmt_busy(q))
            sqlite3_reset(q);
}

/* Runs one member in its savepoint. Returns false if the transaction is
 * gone afterwards: SQLite rolls the whole transaction back on some errors
 * (SQLITE_FULL, IOERR, BUSY, NOMEM, a trigger's RAISE(ROLLBACK)), and the
 * connection is then in autocommit mode, where the next member's SAVEPOINT
 * would open a transaction of its own and its RELEASE commit it alone,
 * before the batch's COMMIT fails and tells it otherwise. */
static bool run_member(sqlite_group *g, sqlite_conn *c, request *r)
{
    int rc = sqlite_conn_txn(c, SQLITE_TXN_SAVEPOINT);
    if (rc != SQLITE_OK)
        r->st = sqlite_pool_fail(g->pool, c, rc, "savepoint", r->err);
    else if ((r->st = r->fn(c, r->arg, r->err)) != SM_OK && !sqlite3_get_autocommit(c->db))
        sqlite_conn_txn(c, SQLITE_TXN_ROLLBACK_TO);
    reset_statements(c);
    if (sqlite3_get_autocommit(c->db)) {
        if (r->st == SM_OK) /* fn broke the contract, or swallowed the error */
            r->st = sm_fail(r->err, SM_ERR_INTERNAL,
                            "the write's transaction was rolled back under it");
        return false;
    }
    sqlite_conn_txn(c, SQLITE_TXN_RELEASE);
    return true;
}

/* Runs reqs[0..n) in one transaction and fills each request's status,
 * except for those it moves to the front of reqs and counts in its return
 * value: the members whose write was undone when another member rolled the
 * whole transaction back (that one keeps its own error). Nothing of theirs
 * is in the file, so they may simply run again. */
static size_t run_once(sqlite_group *g, request **reqs, size_t n)
{
    sm_error why = {0};
    sqlite_conn *c = sqlite_pool_checkout(g->pool, &why);
    if (!c) {
        for (size_t i = 0; i < n; i++)
            fail_with(reqs[i], why.status ? why.status : SM_ERR_UNAVAILABLE, &why);
        return 0;
    }
    int rc = sqlite_conn_txn(c, SQLITE_TXN_BEGIN);
    if (rc != SQLITE_OK) {
        sm_status st = sqlite_pool_fail(g->pool, c, rc, "begin", &why);
        for (size_t i = 0; i < n; i++)
            fail_with(reqs[i], st, &why);
        sqlite_pool_checkin(g->pool, c);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (run_member(g, c, reqs[i]))
            continue;
        /* the transaction is gone: the members before i that succeeded
         * lost their writes, the ones after i never ran */
        size_t again = 0;
        for (size_t j = 0; j < n; j++)
            if ((j < i && reqs[j]->st == SM_OK) || j > i)
                reqs[again++] = reqs[j];
        sqlite_pool_checkin(g->pool, c);
        return again;
    }
    size_t ok = 0;
    rc = sqlite_conn_txn(c, SQLITE_TXN_COMMIT);
    if (rc != SQLITE_OK) {
        sm_status st = sqlite_pool_fail(g->pool, c, rc, "commit", &why);
        sqlite_conn_txn(c, SQLITE_TXN_ROLLBACK); /* nothing of the batch is kept */
        for (size_t i = 0; i < n; i++)
            if (reqs[i]->st == SM_OK)
                fail_with(reqs[i], st, &why);
    } else {
        for (size_t i = 0; i < n; i++)
            ok += reqs[i]->st == SM_OK;
    }
    sqlite_pool_checkin(g->pool, c);
    pthread_mutex_lock(&g->mu);
    g->stats.commits += ok > 0;
    g->stats.writes += ok;
    pthread_mutex_unlock(&g->mu);
    if (ok > 0)
        sm_hist_observe(&members_hist, (int64_t)ok);
    return 0;
}

/* Runs a batch to the end: every request gets its final status. Each rerun
 * after a transaction-level rollback leaves its culprit out, so it ends;
 * the cap only bounds the cost of a disk that fails every transaction. */
#define MAX_RUNS 4
static void run_batch(sqlite_group *g, request **batch, size_t n)
{
    request *reqs[SQLITE_GROUP_MAX_BATCH];
    memcpy(reqs, batch, n * sizeof *reqs);
    for (int run = 0; n > 0 && run < MAX_RUNS; run++)
        n = run_once(g, reqs, n);
    sm_error why;
    sm_fail(&why, SM_ERR_UNAVAILABLE,
            "The event store rolled the transaction back %d times; nothing was written: retry.",
            MAX_RUNS);
    for (size_t i = 0; i < n; i++)
        fail_with(reqs[i], SM_ERR_UNAVAILABLE, &why);
}

/* Takes up to SQLITE_GROUP_MAX_BATCH queued requests into batch (called
 * locked); returns how many. */
static size_t take_batch(sqlite_group *g, request **batch)
{
    size_t n = 0;
    while (g->head && n < SQLITE_GROUP_MAX_BATCH) {
        request *r = g->head;
        g->head = r->next;
        r->next = NULL;
        r->taken = true;
        batch[n++] = r;
    }
    if (!g->head)
        g->tail = NULL;
    return n;
}

/* Removes r from the queue (called locked; r not taken). */
static void unqueue(sqlite_group *g, request *r)
{
    request **p = &g->head, *prev = NULL;
    while (*p && *p != r) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p)
        return;
    *p = r->next;
    if (g->tail == r)
        g->tail = prev;
}

/* Leads one batch (called locked, returns locked): runs it unlocked, then
 * wakes each member once, and the next in line to lead; a broadcast to
 * every waiter cost more than SQLite itself. The members are signalled
 * after the mutex is released: signalled under it, each woke only to block
 * on the mutex the leader still held, a second sleep and wake per write. */
static void lead(sqlite_group *g, const request *me)
{
    request *batch[SQLITE_GROUP_MAX_BATCH];
    g->running = true;
    size_t n = take_batch(g, batch);
    pthread_mutex_unlock(&g->mu);
    /* the batch gives up waiting for a locked file when its most pressed
     * member must */
    int64_t earliest = 0;
    for (size_t i = 0; i < n; i++)
        if (batch[i]->deadline > 0 && (earliest == 0 || batch[i]->deadline < earliest))
            earliest = batch[i]->deadline;
    sm_deadline_set(earliest);
    run_batch(g, batch, n);
    sm_deadline_set(me->deadline);
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < n; i++) {
        batch[i]->done = true;
        if (batch[i] != me)
            atomic_store_explicit(&batch[i]->waking, true, memory_order_relaxed);
    }
    g->running = false;
    if (g->head)
        pthread_cond_signal(&g->head->cv);
    pthread_mutex_unlock(&g->mu);
    for (size_t i = 0; i < n; i++) {
        if (batch[i] == me)
            continue;
        pthread_cond_signal(&batch[i]->cv);
        /* the last touch: from here the member may return and free it */
        atomic_store_explicit(&batch[i]->waking, false, memory_order_release);
    }
    pthread_mutex_lock(&g->mu);
}

/* A member whose write is done may have seen it before its leader's
 * signal (a timed wake-up): it must not free its condition variable while
 * the leader may still signal it. The wait is the leader's few signals. */
static void finish(request *r)
{
    while (atomic_load_explicit(&r->waking, memory_order_acquire))
        sched_yield();
    pthread_cond_destroy(&r->cv);
}

sm_status sqlite_group_write(sqlite_group *g, sm_status (*fn)(sqlite_conn *, void *, sm_error *),
                             void *arg, sm_error *err)
{
    sm_error local;
    request me = {.fn = fn, .arg = arg, .err = err ? err : &local, .deadline = sm_deadline_get()};
    if (sm_cond_init(&me.cv) != 0)
        return sm_fail(me.err, SM_ERR_INTERNAL, "group commit: cannot make a condition variable");
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = &me;
    else
        g->head = &me;
    g->tail = &me;
    while (!me.done) {
        if (!g->running && !me.taken) {
            lead(g, &me); /* our batch, or the one before it if we were late */
            continue;
        }
        if (me.taken) {
            /* In a batch: its outcome is ours, and the leader answers
             * within its own deadline, so wait for it; a deadline that
             * passes meanwhile must not turn this into a spin. */
            sm_cond_wait_until(&me.cv, &g->mu, sm_mono_ms() + 1000);
            continue;
        }
        if (me.deadline > 0 && sm_mono_ms() >= me.deadline) {
            unqueue(g, &me);
            if (!g->running && g->head) /* we may have been the one to lead */
                pthread_cond_signal(&g->head->cv);
            pthread_mutex_unlock(&g->mu);
            pthread_cond_destroy(&me.cv);
            return sm_fail(me.err, SM_ERR_UNAVAILABLE,
                           "The event store did not take the write in time; retry.");
        }
        sm_cond_wait_until(&me.cv, &g->mu, me.deadline > 0 ? me.deadline : sm_mono_ms() + 1000);
    }
    pthread_mutex_unlock(&g->mu);
    finish(&me);
    return me.st;
}

void sqlite_group_render_metrics(sm_buf *b)
{
    sm_hist_render_header(b, "smpost_group_commit_members",
                          "Writes committed per SQLite transaction by the group commit (its "
                          "_count is the transactions).");
    sm_hist_render(b, "smpost_group_commit_members", "", &members_hist);
}

void sqlite_group_get_stats(sqlite_group *g, sqlite_group_stats *out)
{
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    pthread_mutex_unlock(&g->mu);
}

int sqlite_group_queued(sqlite_group *g)
{
    pthread_mutex_lock(&g->mu);
    int n = 0;
    for (request *r = g->head; r; r = r->next)
        n++;
    pthread_mutex_unlock(&g->mu);
    return n;
}
