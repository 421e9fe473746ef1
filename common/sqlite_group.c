/* sqlite_group.c — group commit (sqlite_group.h). */
#include "sqlite_group.h"

#include "sm_deadline.h"
#include "sm_time.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct request {
    sm_status (*fn)(sqlite_conn *, void *, sm_error *);
    void *arg;
    sm_error *err;       /* the caller's, valid while it waits */
    int64_t deadline;    /* the caller's (sm_deadline.h), 0 if none */
    sm_status st;
    bool taken, done;
    pthread_cond_t cv;   /* signalled when done, or when it is to lead */
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

/* Every request of the batch fails with st (and this message). */
static void fail_all(request *batch, sm_status st, const sm_error *why)
{
    for (request *r = batch; r; r = r->next) {
        if (r->err && why)
            *r->err = *why;
        r->st = st;
    }
}

static bool exec(sqlite_conn *c, const char *sql)
{
    return sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK;
}

/* Runs the batch in one transaction; fills each request's status. */
static void run_batch(sqlite_group *g, request *batch)
{
    sm_error why = {0};
    sqlite_conn *c = sqlite_pool_checkout(g->pool, &why);
    if (!c) {
        fail_all(batch, why.status ? why.status : SM_ERR_UNAVAILABLE, &why);
        return;
    }
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sm_status st = sqlite_pool_fail(g->pool, c, rc, "begin", &why);
        fail_all(batch, st, &why);
        sqlite_pool_checkin(g->pool, c);
        return;
    }
    size_t ok = 0;
    for (request *r = batch; r; r = r->next) {
        if (!exec(c, "SAVEPOINT w")) {
            r->st = sqlite_pool_fail(g->pool, c, sqlite3_errcode(c->db), "savepoint", r->err);
            continue;
        }
        r->st = r->fn(c, r->arg, r->err);
        if (r->st != SM_OK)
            exec(c, "ROLLBACK TO w");
        exec(c, "RELEASE w");
        ok += r->st == SM_OK;
    }
    rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sm_status st = sqlite_pool_fail(g->pool, c, rc, "commit", &why);
        exec(c, "ROLLBACK"); /* nothing of the batch is kept */
        for (request *r = batch; r; r = r->next)
            if (r->st == SM_OK) {
                *r->err = why;
                r->st = st;
            }
        ok = 0;
    }
    sqlite_pool_checkin(g->pool, c);
    pthread_mutex_lock(&g->mu);
    g->stats.commits += ok > 0;
    g->stats.writes += ok;
    pthread_mutex_unlock(&g->mu);
}

/* Takes up to SQLITE_GROUP_MAX_BATCH queued requests (called locked). */
static request *take_batch(sqlite_group *g)
{
    request *batch = g->head, *last = NULL;
    size_t n = 0;
    for (request *r = g->head; r && n < SQLITE_GROUP_MAX_BATCH; r = r->next, n++) {
        r->taken = true;
        last = r;
    }
    g->head = last ? last->next : NULL;
    if (!g->head)
        g->tail = NULL;
    if (last)
        last->next = NULL;
    return batch;
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

sm_status sqlite_group_write(sqlite_group *g, sm_status (*fn)(sqlite_conn *, void *, sm_error *),
                             void *arg, sm_error *err)
{
    sm_error local;
    int64_t deadline = sm_deadline_get();
    request me = {fn, arg, err ? err : &local, deadline, SM_OK, false, false,
                  PTHREAD_COND_INITIALIZER, NULL};
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = &me;
    else
        g->head = &me;
    g->tail = &me;
    while (!me.done) {
        if (!g->running && !me.taken) {
            /* lead: run the queue (starting with us) until we are done */
            g->running = true;
            request *batch = take_batch(g);
            pthread_mutex_unlock(&g->mu);
            /* the batch gives up when its most pressed member must */
            int64_t earliest = 0;
            for (request *r = batch; r; r = r->next)
                if (r->deadline > 0 && (earliest == 0 || r->deadline < earliest))
                    earliest = r->deadline;
            sm_deadline_set(earliest);
            run_batch(g, batch);
            sm_deadline_set(deadline);
            pthread_mutex_lock(&g->mu);
            /* Wake each member once, and the next in line to lead: a
             * broadcast to every waiter cost more than SQLite itself. */
            for (request *r = batch, *next; r; r = next) {
                next = r->next;
                r->done = true;
                if (r != &me)
                    pthread_cond_signal(&r->cv);
            }
            g->running = false;
            if (g->head)
                pthread_cond_signal(&g->head->cv);
            continue;
        }
        if (!me.taken && deadline > 0 && sm_mono_ms() >= deadline) {
            unqueue(g, &me);
            if (!g->running && g->head) /* we may have been the one to lead */
                pthread_cond_signal(&g->head->cv);
            pthread_mutex_unlock(&g->mu);
            pthread_cond_destroy(&me.cv);
            return sm_fail(me.err, SM_ERR_UNAVAILABLE,
                           "The event store did not take the write in time; retry.");
        }
        struct timespec until;
        sm_realtime_after(deadline > 0 ? deadline - sm_mono_ms() : 1000, &until);
        pthread_cond_timedwait(&me.cv, &g->mu, &until);
    }
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&me.cv);
    return me.st;
}

void sqlite_group_get_stats(sqlite_group *g, sqlite_group_stats *out)
{
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    pthread_mutex_unlock(&g->mu);
}
