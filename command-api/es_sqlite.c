/* es_sqlite.c — the SQLite event store adapter, the embedded default.
 *
 * One database file in WAL mode with synchronous=FULL: a commit has reached
 * the disk before append() returns, which is what lets the HTTP layer answer
 * 2xx only for durable events. Readers never block the writer and vice versa.
 *
 * SQLite connections must not be used by two threads at once, and opening
 * one per request would cost a schema parse each time, so the adapter keeps
 * a small pool of connections, each with its prepared statements. Appends
 * take the write lock up front (BEGIN IMMEDIATE) so the version check and the
 * insert see the same state; UNIQUE (aggregate_id, version) backs that up. */
#include "event_store.h"

#include "sm_log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern const char sm_sql_event_store_sqlite[]; /* sql/event_store.sqlite.sql */

#define POOL_SIZE 8
#define BUSY_TIMEOUT_MS 5000

enum {
    ST_MAX_VERSION,
    ST_INSERT,
    ST_LOAD,
    ST_READ_ALL,
    ST_PING,
    ST_HEADS,
    ST_MARK,
    ST_RESET,
    ST_STATS,
    ST_META_GET,
    ST_META_SET,
    ST_COUNT
};

static const char *stmt_sql[ST_COUNT] = {
    [ST_MAX_VERSION] = "SELECT MAX(version) FROM events WHERE aggregate_id = ?1",
    [ST_INSERT] = "INSERT INTO events (event_id, aggregate_id, version, type, timestamp_ms, data)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_LOAD] = "SELECT event_id, aggregate_id, version, type, timestamp_ms, data, position"
                " FROM events WHERE aggregate_id = ?1 AND version >= ?2"
                " ORDER BY version LIMIT ?3",
    [ST_READ_ALL] = "SELECT event_id, aggregate_id, version, type, timestamp_ms, data, position"
                    " FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
    [ST_PING] = "SELECT 1",
    /* The lowest unpublished version of each post, longest-waiting post
     * first; served from the partial index events_unpublished. */
    [ST_HEADS] = "SELECT e.event_id, e.aggregate_id, e.version, e.type, e.timestamp_ms, e.data,"
                 " e.position FROM (SELECT aggregate_id, MIN(version) AS v, MIN(position) AS p"
                 " FROM events WHERE published = 0 GROUP BY aggregate_id ORDER BY p LIMIT ?1) h"
                 " JOIN events e ON e.aggregate_id = h.aggregate_id AND e.version = h.v"
                 " ORDER BY h.p",
    [ST_MARK] = "UPDATE events SET published = 1 WHERE aggregate_id = ?1 AND version = ?2",
    [ST_RESET] = "UPDATE events SET published = 0 WHERE published = 1",
    [ST_STATS] = "SELECT COUNT(*), MIN(timestamp_ms), (SELECT COUNT(*) FROM events)"
                 " FROM events WHERE published = 0",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
};

typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    bool broken; /* reopen before next use: the file went away or I/O failed */
} conn;

typedef struct sqlite_store {
    char *path;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    conn conns[POOL_SIZE];
    bool busy[POOL_SIZE];
} sqlite_store;

/* Maps an SQLite result to a port status. Lock timeouts and I/O trouble are
 * "unavailable" (the caller answers 503 and the client may retry); a
 * constraint hit on insert is a lost race, i.e. a conflict. */
static es_status map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:        return ES_OK;
    case SQLITE_CONSTRAINT: return ES_CONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:   return ES_UNAVAILABLE;
    default:                return ES_INTERNAL;
    }
}

static es_status fail_rc(conn *c, int rc, const char *op, sm_error *err)
{
    es_status st = map_rc(rc);
    if (st == ES_UNAVAILABLE && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
        c->broken = true;
    sm_fail(err, es_to_sm_status(st), "event store (sqlite) %s failed: %s", op,
            c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    return st;
}

static void conn_close(conn *c)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    if (c->db)
        sqlite3_close(c->db);
    c->db = NULL;
}

static int conn_open(conn *c, const char *path, bool apply_schema)
{
    memset(c, 0, sizeof *c);
    int rc = sqlite3_open_v2(path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    /* WAL + FULL: durable at commit, readers concurrent with the writer. */
    rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                      NULL);
    if (rc == SQLITE_OK && apply_schema)
        rc = sqlite3_exec(c->db, sm_sql_event_store_sqlite, NULL, NULL, NULL);
    for (int i = 0; rc == SQLITE_OK && i < ST_COUNT; i++)
        rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i],
                                NULL);
    return rc;
}

/* Borrows a connection; blocks while all are in use. Reopens a connection
 * marked broken, so the store recovers on its own once the file is back. */
static conn *checkout(sqlite_store *s, sm_error *err, es_status *st)
{
    pthread_mutex_lock(&s->lock);
    int i;
    for (;;) {
        for (i = 0; i < POOL_SIZE && s->busy[i]; i++)
            ;
        if (i < POOL_SIZE)
            break;
        pthread_cond_wait(&s->freed, &s->lock);
    }
    s->busy[i] = true;
    pthread_mutex_unlock(&s->lock);

    conn *c = &s->conns[i];
    if (c->broken || !c->db) {
        conn_close(c);
        int rc = conn_open(c, s->path, false);
        if (rc != SQLITE_OK) {
            *st = fail_rc(c, rc, "reopen", err);
            c->broken = true;
            conn_close(c);
            pthread_mutex_lock(&s->lock);
            s->busy[i] = false;
            pthread_cond_signal(&s->freed);
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
    }
    return c;
}

static void checkin(sqlite_store *s, conn *c)
{
    for (int i = 0; i < ST_COUNT; i++)
        if (c->st[i]) {
            sqlite3_reset(c->st[i]);
            sqlite3_clear_bindings(c->st[i]);
        }
    pthread_mutex_lock(&s->lock);
    s->busy[c - s->conns] = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

static int exec_simple(conn *c, const char *sql) { return sqlite3_exec(c->db, sql, NULL, NULL, NULL); }

static es_status check_version(conn *c, const char *aggregate_id, int64_t expected,
                               sm_error *err)
{
    sqlite3_stmt *q = c->st[ST_MAX_VERSION];
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, aggregate_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW)
        return fail_rc(c, rc, "version check", err);
    int64_t current = sqlite3_column_type(q, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    if (current != expected) {
        sm_fail(err, SM_ERR_CONFLICT, "stream %s is at version %lld, expected %lld", aggregate_id,
                (long long)current, (long long)expected);
        return ES_CONFLICT;
    }
    return ES_OK;
}

static es_status insert_event(conn *c, const sm_event *ev, sm_error *err)
{
    json_t *data = sm_event_data_to_json(ev);
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!text) {
        sm_fail(err, SM_ERR_INTERNAL, "event store (sqlite): cannot encode event");
        return ES_INTERNAL;
    }
    sqlite3_stmt *q = c->st[ST_INSERT];
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, ev->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ev->aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, ev->version);
    sqlite3_bind_text(q, 4, sm_event_type_name(ev->type), -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, ev->timestamp_ms);
    sqlite3_bind_text(q, 6, text, -1, free);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return fail_rc(c, rc, "insert", err);
    return ES_OK;
}

static es_status sqlite_append(void *impl, const char *aggregate_id, int64_t expected,
                               const sm_event *evs, size_t n, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    int rc = exec_simple(c, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        st = fail_rc(c, rc, "begin", err);
    } else {
        st = check_version(c, aggregate_id, expected, err);
        for (size_t i = 0; st == ES_OK && i < n; i++)
            st = insert_event(c, &evs[i], err);
        if (st == ES_OK) {
            rc = exec_simple(c, "COMMIT");
            if (rc != SQLITE_OK)
                st = fail_rc(c, rc, "commit", err);
        }
        if (st != ES_OK)
            exec_simple(c, "ROLLBACK"); /* no-op if COMMIT already undid it */
    }
    checkin(s, c);
    return st;
}

/* Decodes the current row of a load/read_all statement into a new slot of
 * out. On failure nothing is added. */
static es_status read_row(sqlite3_stmt *q, sm_event_list *out, sm_error *err)
{
    sm_event *ev = sm_event_list_push(out);
    if (!ev) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return ES_INTERNAL;
    }
    const char *id = (const char *)sqlite3_column_text(q, 0);
    const char *agg = (const char *)sqlite3_column_text(q, 1);
    const char *type = (const char *)sqlite3_column_text(q, 3);
    const char *data = (const char *)sqlite3_column_text(q, 5);
    ev->type = sm_event_type_from_name(type);
    ev->version = sqlite3_column_int64(q, 2);
    ev->timestamp_ms = sqlite3_column_int64(q, 4);
    es_status st = ES_OK;
    json_t *j = data ? json_loads(data, 0, NULL) : NULL;
    if (!id || !agg || !sm_uuid_parse(id, ev->event_id) || !sm_uuid_parse(agg, ev->aggregate_id) ||
        ev->type == SM_EV_NONE || !j || sm_event_data_from_json(ev, j, err) != SM_OK) {
        sm_fail(err, SM_ERR_INTERNAL, "event store (sqlite): corrupt event at position %lld",
                (long long)sqlite3_column_int64(q, 6));
        st = ES_INTERNAL;
    }
    json_decref(j);
    if (st != ES_OK) {
        sm_event_clear(ev);
        out->len--;
    }
    return st;
}

static es_status run_query(conn *c, sqlite3_stmt *q, sm_event_list *out, int64_t *last_pos,
                           sm_error *err)
{
    size_t start = out->len;
    es_status st = ES_OK;
    int rc;
    while (st == ES_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        st = read_row(q, out, err);
        if (last_pos)
            *last_pos = sqlite3_column_int64(q, 6);
    }
    if (st == ES_OK && rc != SQLITE_DONE)
        st = fail_rc(c, rc, "read", err);
    sqlite3_reset(q);
    if (st != ES_OK) /* all or nothing: drop what this call added */
        while (out->len > start)
            sm_event_clear(&out->items[--out->len]);
    return st;
}

static es_status sqlite_load(void *impl, const char *aggregate_id, int64_t from_version,
                             size_t limit, sm_event_list *out, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    sqlite3_stmt *q = c->st[ST_LOAD];
    sqlite3_bind_text(q, 1, aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, from_version);
    sqlite3_bind_int64(q, 3, limit ? (int64_t)limit : -1);
    st = run_query(c, q, out, NULL, err);
    checkin(s, c);
    return st;
}

static es_status sqlite_read_all(void *impl, const es_cursor *after, size_t limit,
                                 sm_event_list *out, es_cursor *next, sm_error *err)
{
    sqlite_store *s = impl;
    int64_t from = 0;
    if (after && after->token[0]) {
        char *end;
        from = strtoll(after->token, &end, 10);
        if (*end || from < 0) {
            sm_fail(err, SM_ERR_INVALID, "read_all: bad cursor '%.40s'", after->token);
            return ES_INVALID;
        }
    }
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    sqlite3_stmt *q = c->st[ST_READ_ALL];
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, (int64_t)limit);
    int64_t last = -1;
    st = run_query(c, q, out, &last, err);
    checkin(s, c);
    if (st == ES_OK && last >= 0 && next)
        snprintf(next->token, sizeof next->token, "%lld", (long long)last);
    return st;
}

static es_status sqlite_ping(void *impl, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    int rc = sqlite3_step(c->st[ST_PING]);
    st = rc == SQLITE_ROW ? ES_OK : fail_rc(c, rc, "ping", err);
    checkin(s, c);
    return st;
}

static es_status sqlite_fetch_unpublished(void *impl, size_t limit, sm_event_list *out,
                                          sm_error *err)
{
    sqlite_store *s = impl;
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    sqlite3_stmt *q = c->st[ST_HEADS];
    sqlite3_bind_int64(q, 1, (int64_t)limit);
    st = run_query(c, q, out, NULL, err);
    checkin(s, c);
    return st;
}

/* Runs fn inside BEGIN IMMEDIATE ... COMMIT on a pooled connection. */
static es_status in_write_txn(sqlite_store *s, es_status (*fn)(conn *, void *, sm_error *),
                              void *arg, sm_error *err)
{
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    int rc = exec_simple(c, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        st = fail_rc(c, rc, "begin", err);
    } else {
        st = fn(c, arg, err);
        if (st == ES_OK && (rc = exec_simple(c, "COMMIT")) != SQLITE_OK)
            st = fail_rc(c, rc, "commit", err);
        if (st != ES_OK)
            exec_simple(c, "ROLLBACK");
    }
    checkin(s, c);
    return st;
}

typedef struct mark_args {
    const sm_event *evs;
    size_t n;
} mark_args;

static es_status do_mark(conn *c, void *arg, sm_error *err)
{
    mark_args *a = arg;
    sqlite3_stmt *q = c->st[ST_MARK];
    for (size_t i = 0; i < a->n; i++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, a->evs[i].aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, a->evs[i].version);
        int rc = sqlite3_step(q);
        if (rc != SQLITE_DONE)
            return fail_rc(c, rc, "mark published", err);
    }
    sqlite3_reset(q);
    return ES_OK;
}

static es_status sqlite_mark_published(void *impl, const sm_event *evs, size_t n, sm_error *err)
{
    mark_args a = {evs, n};
    return in_write_txn(impl, do_mark, &a, err);
}

static es_status do_reset(conn *c, void *arg, sm_error *err)
{
    int rc = sqlite3_step(c->st[ST_RESET]);
    sqlite3_reset(c->st[ST_RESET]);
    if (rc != SQLITE_DONE)
        return fail_rc(c, rc, "reset published", err);
    *(int64_t *)arg = sqlite3_changes64(c->db);
    return ES_OK;
}

static es_status sqlite_reset_published(void *impl, int64_t *count, sm_error *err)
{
    return in_write_txn(impl, do_reset, count, err);
}

static es_status sqlite_outbox_stats(void *impl, int64_t *pending, int64_t *oldest_ms,
                                     int64_t *published, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    sqlite3_stmt *q = c->st[ST_STATS];
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *pending = sqlite3_column_int64(q, 0);
        *oldest_ms = sqlite3_column_int64(q, 1); /* NULL reads as 0 */
        *published = sqlite3_column_int64(q, 2) - *pending;
    } else {
        st = fail_rc(c, rc, "outbox stats", err);
    }
    checkin(s, c);
    return st;
}

static es_status sqlite_get_meta(void *impl, const char *key, char *out, size_t cap,
                                 sm_error *err)
{
    sqlite_store *s = impl;
    es_status st = ES_OK;
    conn *c = checkout(s, err, &st);
    if (!c)
        return st;
    sqlite3_stmt *q = c->st[ST_META_GET];
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    else if (rc == SQLITE_DONE)
        st = ES_NOT_FOUND;
    else
        st = fail_rc(c, rc, "get meta", err);
    checkin(s, c);
    return st;
}

typedef struct meta_args {
    const char *key, *value;
} meta_args;

static es_status do_set_meta(conn *c, void *arg, sm_error *err)
{
    meta_args *a = arg;
    sqlite3_stmt *q = c->st[ST_META_SET];
    sqlite3_bind_text(q, 1, a->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a->value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? ES_OK : fail_rc(c, rc, "set meta", err);
}

static es_status sqlite_set_meta(void *impl, const char *key, const char *value, sm_error *err)
{
    meta_args a = {key, value};
    return in_write_txn(impl, do_set_meta, &a, err);
}

static void sqlite_close(void *impl)
{
    sqlite_store *s = impl;
    for (int i = 0; i < POOL_SIZE; i++)
        conn_close(&s->conns[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    free(s->path);
    free(s);
}

static const es_ops sqlite_ops = {
    .name = "sqlite",
    .append = sqlite_append,
    .load = sqlite_load,
    .read_all = sqlite_read_all,
    .ping = sqlite_ping,
    .close = sqlite_close,
    .fetch_unpublished = sqlite_fetch_unpublished,
    .mark_published = sqlite_mark_published,
    .reset_published = sqlite_reset_published,
    .outbox_stats = sqlite_outbox_stats,
    .get_meta = sqlite_get_meta,
    .set_meta = sqlite_set_meta,
};

/* Creates the directories leading to path (like mkdir -p on its dirname),
 * so "sqlite:var/events.db" works on a fresh checkout. Errors surface when
 * SQLite then fails to open the file. */
static void make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(copy, 0755);
        *p = '/';
    }
    free(copy);
}

es_status es_sqlite_open(const char *path, es_store **out, sm_error *err)
{
    *out = NULL;
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return ES_INTERNAL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    if (strcmp(path, ":memory:") != 0)
        make_parent_dirs(path);
    /* The first connection applies the schema; the others open lazily on
     * first checkout, so start-up costs one open whatever the pool size. */
    int rc = conn_open(&s->conns[0], path, true);
    if (rc != SQLITE_OK) {
        es_status st = fail_rc(&s->conns[0], rc, "open", err);
        sm_fail(err, es_to_sm_status(st), "cannot open event store sqlite:%s: %s", path,
                s->conns[0].db ? sqlite3_errmsg(s->conns[0].db) : sqlite3_errstr(rc));
        sqlite_close(s);
        return st == ES_OK ? ES_INTERNAL : st;
    }
    *out = es_store_new(&sqlite_ops, s);
    if (!*out) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return ES_INTERNAL;
    }
    sm_log(SM_LOG_INFO, "event_store_open", "adapter=sqlite path=%s", path);
    return ES_OK;
}
