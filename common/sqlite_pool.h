/* SPDX-License-Identifier: Apache-2.0 */
/* sqlite_pool.h — a small pool of SQLite connections, each with its own
 * prepared statements, shared by the SQLite adapters (event store, read
 * model).
 *
 * A connection must not be used by two threads at once, and opening one
 * per request would re-parse the schema every time; so each adapter keeps
 * POOL_SIZE connections (WAL, synchronous=FULL, busy timeout) and borrows
 * one per call. A connection that hit an I/O error is marked broken and
 * reopened on its next checkout, so the store recovers by itself once the
 * file is usable again. Thread-safe. */
#ifndef SQLITE_POOL_H
#define SQLITE_POOL_H

#include "sm_error.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define SQLITE_POOL_SIZE 8
#define SQLITE_POOL_BUSY_MS 5000

/* Transaction control, prepared once per connection: parsing "SAVEPOINT w"
 * and "RELEASE w" again for every member of every group commit was a
 * tenth of the committing thread's time. */
typedef enum sqlite_txn_op {
    SQLITE_TXN_BEGIN,        /* BEGIN IMMEDIATE */
    SQLITE_TXN_COMMIT,
    SQLITE_TXN_ROLLBACK,
    SQLITE_TXN_SAVEPOINT,    /* SAVEPOINT w */
    SQLITE_TXN_RELEASE,      /* RELEASE w */
    SQLITE_TXN_ROLLBACK_TO,  /* ROLLBACK TO w */
    SQLITE_TXN_COUNT
} sqlite_txn_op;

typedef struct sqlite_conn {
    sqlite3 *db;
    sqlite3_stmt **st;  /* prepared statements, indexed as given to open */
    sqlite3_stmt *txn[SQLITE_TXN_COUNT];
    bool broken;
    int64_t busy_since;  /* the busy handler's clock */
} sqlite_conn;

typedef struct sqlite_pool sqlite_pool;

/* Opens the database at path (creating its parent directories), applies
 * schema (idempotent SQL) once, and prepares nstmts statements on each
 * connection. label names the store in error messages ("event store").
 * Returns NULL and fills err on failure. */
sqlite_pool *sqlite_pool_open(const char *path, const char *label, const char *schema,
                              const char *const *stmts, int nstmts, sm_error *err);

/* Borrows a connection, waiting while all are busy for at most
 * SQLITE_POOL_BUSY_MS and never past the thread's deadline (sm_deadline.h);
 * NULL + SM_ERR_UNAVAILABLE then, or if a broken connection cannot be
 * reopened. A locked database is likewise retried for SQLITE_POOL_BUSY_MS,
 * capped by the deadline. */
sqlite_conn *sqlite_pool_checkout(sqlite_pool *p, sm_error *err);

/* Returns c, resetting its statements. */
void sqlite_pool_checkin(sqlite_pool *p, sqlite_conn *c);

void sqlite_pool_close(sqlite_pool *p);

/* Maps a result code to a status: lock timeouts and I/O trouble are
 * SM_ERR_UNAVAILABLE (and mark c broken unless it was a lock), constraint
 * violations SM_ERR_CONFLICT, others SM_ERR_INTERNAL. Fills err with
 * "<label> <op> failed: <sqlite message>". */
sm_status sqlite_pool_fail(sqlite_pool *p, sqlite_conn *c, int rc, const char *op,
                           sm_error *err);

/* Runs one transaction-control statement on c: SQLITE_OK, or SQLite's
 * result code (as sqlite3_exec of the same text would return). */
int sqlite_conn_txn(sqlite_conn *c, sqlite_txn_op op);

/* Runs fn(c, arg, err) inside BEGIN IMMEDIATE ... COMMIT on a borrowed
 * connection, rolling back if fn fails. */
sm_status sqlite_pool_write(sqlite_pool *p, sm_status (*fn)(sqlite_conn *, void *, sm_error *),
                            void *arg, sm_error *err);

#endif
