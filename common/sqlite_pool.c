/* SPDX-License-Identifier: Apache-2.0 */
/* sqlite_pool.c — see sqlite_pool.h. */
#include "sqlite_pool.h"

#include "sm_deadline.h"
#include "sm_text.h"
#include "sm_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct sqlite_pool {
    char *path;
    const char *label;
    const char *const *stmts;
    int nstmts;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    sqlite_conn conns[SQLITE_POOL_SIZE];
    bool busy[SQLITE_POOL_SIZE];
};

sm_status sqlite_pool_fail(sqlite_pool *p, sqlite_conn *c, int rc, const char *op,
                           sm_error *err)
{
    sm_status st;
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        st = SM_ERR_CONFLICT;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        st = SM_ERR_UNAVAILABLE;
        break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
        st = SM_ERR_UNAVAILABLE;
        if (c)
            c->broken = true;
        break;
    default:
        st = SM_ERR_INTERNAL;
    }
    return sm_fail(err, st, "%s (sqlite) %s failed: %s", p->label, op,
                   c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
}

static const char *const txn_sql[SQLITE_TXN_COUNT] = {
    [SQLITE_TXN_BEGIN] = "BEGIN IMMEDIATE",  [SQLITE_TXN_COMMIT] = "COMMIT",
    [SQLITE_TXN_ROLLBACK] = "ROLLBACK",      [SQLITE_TXN_SAVEPOINT] = "SAVEPOINT w",
    [SQLITE_TXN_RELEASE] = "RELEASE w",      [SQLITE_TXN_ROLLBACK_TO] = "ROLLBACK TO w",
};

int sqlite_conn_txn(sqlite_conn *c, sqlite_txn_op op)
{
    sqlite3_stmt *q = c->txn[op];
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void conn_close(sqlite_conn *c, int nstmts)
{
    for (int i = 0; c->st && i < nstmts; i++)
        sqlite3_finalize(c->st[i]);
    for (int i = 0; i < SQLITE_TXN_COUNT; i++)
        sqlite3_finalize(c->txn[i]);
    free(c->st);
    if (c->db)
        sqlite3_close(c->db);
    memset(c, 0, sizeof *c);
}

/* SQLite's busy handler: retry a locked database for SQLITE_POOL_BUSY_MS,
 * but never past the calling thread's deadline (sm_deadline.h), so that a
 * request that already waited elsewhere gives up in time. */
static int on_busy(void *arg, int count)
{
    int64_t *since = arg;
    int64_t now = sm_mono_ms();
    if (count == 0)
        *since = now;
    int64_t until = sm_deadline_cap(*since + SQLITE_POOL_BUSY_MS);
    if (now >= until)
        return 0;
    int64_t ms = count < 4 ? 1 << count : 20;
    if (ms > until - now)
        ms = until - now;
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* SM_NOCASE: the Unicode simple case folding the command side uses for
 * authors (sm_text.h), so "ÉMILE" finds émile's posts; SQLite's own NOCASE
 * folds ASCII only. Registered on every connection, before the schema
 * (whose indexes may use it) is applied. Its order is versioned
 * (sm_text_ci_version); a file with an index in it records the version and
 * reindexes when it differs (the read model: query-api/rm_sqlite.c). */
static int nocase_compare(void *arg, int na, const void *a, int nb, const void *b)
{
    (void)arg;
    return sm_text_compare_ci(a, (size_t)na, b, (size_t)nb);
}

static int conn_open(sqlite_pool *p, sqlite_conn *c, const char *schema)
{
    memset(c, 0, sizeof *c);
    c->st = calloc((size_t)p->nstmts, sizeof *c->st);
    if (!c->st)
        return SQLITE_NOMEM;
    int rc = sqlite3_open_v2(p->path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_busy_handler(c->db, on_busy, &c->busy_since);
    rc = sqlite3_create_collation(c->db, "SM_NOCASE", SQLITE_UTF8, NULL, nocase_compare);
    if (rc != SQLITE_OK)
        return rc;
    /* WAL + FULL: durable at commit, readers concurrent with the writer. */
    rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                             " PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    if (rc == SQLITE_OK && schema)
        rc = sqlite3_exec(c->db, schema, NULL, NULL, NULL);
    for (int i = 0; rc == SQLITE_OK && i < p->nstmts; i++)
        rc = sqlite3_prepare_v3(c->db, p->stmts[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i],
                                NULL);
    for (int i = 0; rc == SQLITE_OK && i < SQLITE_TXN_COUNT; i++)
        rc = sqlite3_prepare_v3(c->db, txn_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->txn[i],
                                NULL);
    return rc;
}

/* mkdir -p of path's directory, so "sqlite:var/x.db" works on a fresh
 * checkout; failures surface when SQLite opens the file. */
static void make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    for (char *s = copy ? copy + 1 : NULL; s && *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(copy, 0755);
        *s = '/';
    }
    free(copy);
}

sqlite_pool *sqlite_pool_open(const char *path, const char *label, const char *schema,
                              const char *const *stmts, int nstmts, sm_error *err)
{
    sqlite_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->label = label;
    p->stmts = stmts;
    p->nstmts = nstmts;
    pthread_mutex_init(&p->lock, NULL);
    sm_cond_init(&p->freed);
    if (strcmp(path, ":memory:") != 0)
        make_parent_dirs(path);
    /* The first connection applies the schema; the others open lazily on
     * first checkout, so start-up costs one open whatever the pool size.
     * Several processes opening one new file at once (scaled-out services
     * sharing a store) can meet SQLITE_BUSY without the busy handler being
     * called: SQLite returns at once where waiting could deadlock (turning
     * on WAL, a reader upgrading to a writer in the schema script). The
     * schema is idempotent, so the whole open is simply tried again. */
    int rc = conn_open(p, &p->conns[0], schema);
    for (int64_t until = sm_mono_ms() + 2 * SQLITE_POOL_BUSY_MS;
         ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) && sm_mono_ms() < until;) {
        conn_close(&p->conns[0], p->nstmts);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        rc = conn_open(p, &p->conns[0], schema);
    }
    if (rc != SQLITE_OK) {
        sqlite_pool_fail(p, &p->conns[0], rc, "open", err);
        sm_fail(err, err ? err->status : SM_ERR_INTERNAL, "cannot open %s sqlite:%s: %s", label,
                path, p->conns[0].db ? sqlite3_errmsg(p->conns[0].db) : sqlite3_errstr(rc));
        sqlite_pool_close(p);
        return NULL;
    }
    return p;
}

sqlite_conn *sqlite_pool_checkout(sqlite_pool *p, sm_error *err)
{
    /* every connection busy (each may be waiting out a lock): wait no
     * longer than a lock would be waited for, nor past the deadline */
    int64_t until = sm_deadline_cap(sm_mono_ms() + SQLITE_POOL_BUSY_MS);
    pthread_mutex_lock(&p->lock);
    int i;
    for (;;) {
        for (i = 0; i < SQLITE_POOL_SIZE && p->busy[i]; i++)
            ;
        if (i < SQLITE_POOL_SIZE)
            break;
        if (sm_cond_wait_until(&p->freed, &p->lock, until) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            sm_fail(err, SM_ERR_UNAVAILABLE, "%s (sqlite): every connection is busy", p->label);
            return NULL;
        }
    }
    p->busy[i] = true;
    pthread_mutex_unlock(&p->lock);

    sqlite_conn *c = &p->conns[i];
    if (c->broken || !c->db) {
        conn_close(c, p->nstmts);
        int rc = conn_open(p, c, NULL);
        if (rc != SQLITE_OK) {
            sqlite_pool_fail(p, c, rc, "reopen", err);
            conn_close(c, p->nstmts);
            sqlite_pool_checkin(p, c);
            return NULL;
        }
    }
    return c;
}

void sqlite_pool_checkin(sqlite_pool *p, sqlite_conn *c)
{
    for (int i = 0; c->st && i < p->nstmts; i++)
        if (c->st[i]) {
            sqlite3_reset(c->st[i]);
            sqlite3_clear_bindings(c->st[i]);
        }
    pthread_mutex_lock(&p->lock);
    p->busy[c - p->conns] = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

sm_status sqlite_pool_write(sqlite_pool *p, sm_status (*fn)(sqlite_conn *, void *, sm_error *),
                            void *arg, sm_error *err)
{
    sqlite_conn *c = sqlite_pool_checkout(p, err);
    if (!c)
        return err ? err->status : SM_ERR_UNAVAILABLE;
    sm_status st;
    int rc = sqlite_conn_txn(c, SQLITE_TXN_BEGIN);
    if (rc != SQLITE_OK) {
        st = sqlite_pool_fail(p, c, rc, "begin", err);
    } else {
        st = fn(c, arg, err);
        if (st == SM_OK && (rc = sqlite_conn_txn(c, SQLITE_TXN_COMMIT)) != SQLITE_OK)
            st = sqlite_pool_fail(p, c, rc, "commit", err);
        if (st != SM_OK)
            sqlite_conn_txn(c, SQLITE_TXN_ROLLBACK); /* no-op if already undone */
    }
    sqlite_pool_checkin(p, c);
    return st;
}

void sqlite_pool_close(sqlite_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < SQLITE_POOL_SIZE; i++)
        conn_close(&p->conns[i], p->nstmts);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->path);
    free(p);
}
