/* SPDX-License-Identifier: Apache-2.0 */
/* es_sqlite.c — the SQLite event store adapter, the embedded default.
 *
 * One database file in WAL mode with synchronous=FULL: a commit has reached
 * the disk before append() returns, which is what lets the HTTP layer answer
 * 2xx only for durable events. Readers never block the writer and vice versa.
 * Connections come from a small pool (common/sqlite_pool.h). Appends take the
 * write lock up front (BEGIN IMMEDIATE) so the version check and the insert
 * see the same state; UNIQUE (aggregate_id, version) backs that up.
 *
 * Every read (load, read_all, the outbox heads) returns the envelope's
 * metadata from the `metadata` column, so the relay publishes it; rows
 * stored before the column existed have NULL there and read with empty
 * metadata. Files from before it get the column at open (add_metadata_column). */
#include "event_store.h"

#include "sm_log.h"
#include "sqlite_group.h"
#include "sqlite_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char sm_sql_event_store_sqlite[]; /* sql/event_store.sqlite.sql */

#define GEN_KEY "outbox.generation"

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
    ST_SNAP_SAVE,
    ST_SNAP_LOAD,
    ST_VERSION_AT,
    ST_LEASE_GET,
    ST_LEASE_PUT,
    ST_LEASE_RELEASE,
    ST_GEN_GET,
    ST_GEN_BUMP,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_MAX_VERSION] = "SELECT MAX(version) FROM events WHERE aggregate_id = ?1",
    [ST_INSERT] = "INSERT INTO events (event_id, aggregate_id, version, type, timestamp_ms, data,"
                  " metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* reads: the columns read_row() expects, in its order */
    [ST_LOAD] = "SELECT event_id, aggregate_id, version, type, timestamp_ms, data, position,"
                " metadata FROM events WHERE aggregate_id = ?1 AND version >= ?2"
                " ORDER BY version LIMIT ?3",
    [ST_READ_ALL] = "SELECT event_id, aggregate_id, version, type, timestamp_ms, data, position,"
                    " metadata FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
    [ST_PING] = "SELECT 1",
    /* A page of the outbox (event_store.h, "Outbox"): the next unpublished
     * events after a position, from the partial index events_outbox, each
     * with its post's head (lowest unpublished version) from the partial
     * index events_unpublished. */
    [ST_HEADS] = "SELECT e.event_id, e.aggregate_id, e.version, e.type, e.timestamp_ms, e.data,"
                 " e.position, e.metadata, (SELECT MIN(m.version) FROM events m"
                 " WHERE m.aggregate_id = e.aggregate_id AND m.published = 0)"
                 " FROM events e WHERE e.published = 0 AND e.position > ?1"
                 " ORDER BY e.position LIMIT ?2",
    /* one run of a post at a time */
    [ST_MARK] = "UPDATE events SET published = 1 WHERE aggregate_id = ?1"
                " AND version BETWEEN ?2 AND ?3",
    [ST_RESET] = "UPDATE events SET published = 0 WHERE published = 1",
    /* Pending count and age come from the partial index. The total is
     * MAX(position), O(1): events are never deleted and AUTOINCREMENT never
     * reuses a position, so it equals COUNT(*) without scanning the table
     * (the relay asks every second, /health and /metrics on each call). */
    [ST_STATS] = "SELECT COUNT(*), MIN(timestamp_ms),"
                 " (SELECT COALESCE(MAX(position), 0) FROM events)"
                 " FROM events WHERE published = 0",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_SNAP_SAVE] = "INSERT OR IGNORE INTO snapshots (aggregate_id, schema, version, data)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [ST_SNAP_LOAD] = "SELECT version, data FROM snapshots WHERE aggregate_id = ?1"
                     " AND schema = ?2 AND version <= ?3 ORDER BY version DESC LIMIT 1",
    /* Walks only this post's rows (the UNIQUE index), newest first, and
     * stops at the first one old enough. */
    [ST_VERSION_AT] = "SELECT version FROM events WHERE aggregate_id = ?1"
                      " AND timestamp_ms <= ?2 ORDER BY version DESC LIMIT 1",
    [ST_LEASE_GET] = "SELECT owner, epoch, expires_ms FROM leases WHERE name = ?1",
    [ST_LEASE_PUT] = "INSERT INTO leases (name, owner, epoch, expires_ms) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                     " epoch = excluded.epoch, expires_ms = excluded.expires_ms",
    [ST_LEASE_RELEASE] = "UPDATE leases SET expires_ms = 0"
                         " WHERE name = ?1 AND owner = ?2 AND epoch = ?3",
    /* The outbox generation (event_store.h, "Outbox"): absent reads as 0. */
    [ST_GEN_GET] = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = '" GEN_KEY "'",
    [ST_GEN_BUMP] = "INSERT INTO meta (key, value) VALUES ('" GEN_KEY "', '1')"
                    " ON CONFLICT (key) DO UPDATE"
                    " SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
};

typedef struct sqlite_store {
    sqlite_pool *pool;
    sqlite_group *writes; /* group commit: every write transaction */
} sqlite_store;

static es_status to_es(sm_status st)
{
    switch (st) {
    case SM_OK:              return ES_OK;
    case SM_ERR_CONFLICT:    return ES_CONFLICT;
    case SM_ERR_UNAVAILABLE: return ES_UNAVAILABLE;
    case SM_ERR_INVALID:     return ES_INVALID;
    case SM_ERR_NOT_FOUND:   return ES_NOT_FOUND;
    default:                 return ES_INTERNAL;
    }
}

static es_status fail_rc(sqlite_store *s, sqlite_conn *c, int rc, const char *op, sm_error *err)
{
    return to_es(sqlite_pool_fail(s->pool, c, rc, op, err));
}

/* Statement `which` of c, reset: an early return on an error path may have
 * left it in mid-step, and binding to a statement in mid-step fails
 * (SQLITE_MISUSE) while its next step would carry on the old query. */
static sqlite3_stmt *stmt(sqlite_conn *c, int which)
{
    sqlite3_stmt *q = c->st[which];
    sqlite3_reset(q);
    return q;
}

/* A connection to work with, or NULL with *st set. */
static sqlite_conn *borrow(sqlite_store *s, es_status *st, sm_error *err)
{
    sqlite_conn *c = sqlite_pool_checkout(s->pool, err);
    *st = c ? ES_OK : ES_UNAVAILABLE;
    return c;
}

/* Runs fn in a write transaction; maps the result back to es_status. The
 * callbacks speak sm_status (the pool's language). Every write of the
 * process goes through the one group (appends, the relay's marks, snapshots,
 * leases, meta), so they queue behind each other instead of meeting in
 * SQLite's busy handler, which sleeps; only other processes meet there. */
static es_status write_txn(sqlite_store *s, sm_status (*fn)(sqlite_conn *, void *, sm_error *),
                           void *arg, sm_error *err)
{
    return to_es(sqlite_group_write(s->writes, fn, arg, err));
}

typedef struct append_args {
    sqlite_store *s;
    const char *aggregate_id;
    int64_t expected;
    const sm_event *evs;
    size_t n;
} append_args;

static sm_status check_version(append_args *a, sqlite_conn *c, sm_error *err)
{
    sqlite3_stmt *q = stmt(c, ST_MAX_VERSION);
    sqlite3_bind_text(q, 1, a->aggregate_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW)
        return sqlite_pool_fail(a->s->pool, c, rc, "version check", err);
    int64_t current = sqlite3_column_type(q, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    if (current != a->expected)
        return sm_fail(err, SM_ERR_CONFLICT, "stream %s is at version %lld, expected %lld",
                       a->aggregate_id, (long long)current, (long long)a->expected);
    return SM_OK;
}

/* j as compact text, releasing j; NULL on failure. */
static char *dump_new(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

static sm_status insert_event(append_args *a, sqlite_conn *c, const sm_event *ev, sm_error *err)
{
    char *text = dump_new(sm_event_data_to_json(ev));
    char *meta = dump_new(sm_event_meta_to_json(&ev->meta));
    if (!text || !meta) {
        free(text);
        free(meta);
        return sm_fail(err, SM_ERR_INTERNAL, "event store (sqlite): cannot encode event");
    }
    sqlite3_stmt *q = stmt(c, ST_INSERT);
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, ev->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ev->aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, ev->version);
    sqlite3_bind_text(q, 4, sm_event_type_name(ev->type), -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, ev->timestamp_ms);
    sqlite3_bind_text(q, 6, text, -1, free);
    sqlite3_bind_text(q, 7, meta, -1, free);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(a->s->pool, c, rc, "insert", err);
}

static sm_status do_append(sqlite_conn *c, void *arg, sm_error *err)
{
    append_args *a = arg;
    sm_status st = check_version(a, c, err);
    for (size_t i = 0; st == SM_OK && i < a->n; i++)
        st = insert_event(a, c, &a->evs[i], err);
    return st;
}

static es_status sqlite_append(void *impl, const char *aggregate_id, int64_t expected,
                               const sm_event *evs, size_t n, sm_error *err)
{
    append_args a = {impl, aggregate_id, expected, evs, n};
    return write_txn(impl, do_append, &a, err);
}

/* Decodes the current row of a load/read_all/heads statement into a new
 * slot of out. On failure nothing is added. */
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
    const char *meta = (const char *)sqlite3_column_text(q, 7); /* NULL: stored before it */
    ev->type = sm_event_type_from_name(type);
    ev->version = sqlite3_column_int64(q, 2);
    ev->timestamp_ms = sqlite3_column_int64(q, 4);
    es_status st = ES_OK;
    json_t *j = data ? json_loads(data, 0, NULL) : NULL;
    json_t *m = meta ? json_loads(meta, 0, NULL) : NULL;
    if (!id || !agg || !sm_uuid_parse(id, ev->event_id) || !sm_uuid_parse(agg, ev->aggregate_id) ||
        ev->type == SM_EV_NONE || !j || sm_event_data_from_json(ev, j, err) != SM_OK ||
        (meta && !m) || sm_event_meta_from_json(&ev->meta, m, err) != SM_OK) {
        sm_fail(err, SM_ERR_INTERNAL, "event store (sqlite): corrupt event at position %lld",
                (long long)sqlite3_column_int64(q, 6));
        st = ES_INTERNAL;
    }
    json_decref(j);
    json_decref(m);
    if (st != ES_OK) {
        sm_event_clear(ev);
        out->len--;
    }
    return st;
}

/* Steps q to the end, decoding rows into out; all or nothing. */
static es_status run_query(sqlite_store *s, sqlite_conn *c, sqlite3_stmt *q, sm_event_list *out,
                           int64_t *last_pos, sm_error *err)
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
        st = fail_rc(s, c, rc, "read", err);
    sqlite3_reset(q);
    if (st != ES_OK)
        while (out->len > start)
            sm_event_clear(&out->items[--out->len]);
    return st;
}

static es_status sqlite_load(void *impl, const char *aggregate_id, int64_t from_version,
                             size_t limit, sm_event_list *out, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    sqlite3_stmt *q = stmt(c, ST_LOAD);
    sqlite3_bind_text(q, 1, aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, from_version);
    sqlite3_bind_int64(q, 3, limit ? (int64_t)limit : -1);
    st = run_query(s, c, q, out, NULL, err);
    sqlite_pool_checkin(s->pool, c);
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
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    sqlite3_stmt *q = stmt(c, ST_READ_ALL);
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, (int64_t)limit);
    int64_t last = -1;
    st = run_query(s, c, q, out, &last, err);
    sqlite_pool_checkin(s->pool, c);
    if (st == ES_OK && last >= 0 && next)
        snprintf(next->token, sizeof next->token, "%lld", (long long)last);
    return st;
}

static es_status sqlite_ping(void *impl, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    int rc = sqlite3_step(stmt(c, ST_PING));
    st = rc == SQLITE_ROW ? ES_OK : fail_rc(s, c, rc, "ping", err);
    sqlite_pool_checkin(s->pool, c);
    return st;
}

/* The outbox generation on c, or -1 (err filled). */
static int64_t read_generation(sqlite_store *s, sqlite_conn *c, sm_error *err)
{
    sqlite3_stmt *q = stmt(c, ST_GEN_GET);
    int rc = sqlite3_step(q);
    int64_t gen = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fail_rc(s, c, rc, "read outbox generation", err);
        return -1;
    }
    return gen;
}

/* The generation is read before the heads: a reset in between makes it
 * older than the heads, which only refuses their marks (they are
 * published again). Read after, it could be newer than heads fetched
 * before the reset, and their marks would be kept. */
static es_status sqlite_fetch_unpublished(void *impl, es_cursor *cursor, size_t limit,
                                          sm_event_list *out, int64_t *generation,
                                          sm_error *err)
{
    sqlite_store *s = impl;
    int64_t from = 0;
    if (cursor->token[0]) {
        char *end;
        from = strtoll(cursor->token, &end, 10);
        if (*end || from < 0) {
            sm_fail(err, SM_ERR_INVALID, "fetch_unpublished: bad cursor '%.40s'", cursor->token);
            return ES_INVALID;
        }
    }
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    if ((*generation = read_generation(s, c, err)) < 0) {
        sqlite_pool_checkin(s->pool, c);
        return ES_UNAVAILABLE;
    }
    sm_event_list page = {0};
    int64_t *heads = malloc(limit * sizeof *heads), last = from;
    if (!heads) {
        sqlite_pool_checkin(s->pool, c);
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return ES_INTERNAL;
    }
    sqlite3_stmt *q = stmt(c, ST_HEADS);
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, (int64_t)limit);
    int rc;
    while (st == ES_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        st = read_row(q, &page, err);
        if (st == ES_OK) {
            last = sqlite3_column_int64(q, 6);
            /* NULL (marked since the page's row was read): wait for the next pass */
            heads[page.len - 1] = sqlite3_column_type(q, 8) == SQLITE_NULL
                                      ? -1 : sqlite3_column_int64(q, 8);
        }
    }
    if (st == ES_OK && rc != SQLITE_DONE)
        st = fail_rc(s, c, rc, "fetch unpublished", err);
    sqlite3_reset(q);
    sqlite_pool_checkin(s->pool, c);
    size_t looked = page.len;
    if (st == ES_OK && !es_outbox_runs(&page, heads)) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        st = ES_INTERNAL;
    }
    free(heads);
    if (st == ES_OK && !es_outbox_move(out, &page)) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        st = ES_INTERNAL;
    }
    sm_event_list_free(&page);
    if (st == ES_OK) {
        if (looked < limit)
            cursor->token[0] = '\0'; /* the end: the next page starts a new pass */
        else
            snprintf(cursor->token, sizeof cursor->token, "%lld", (long long)last);
    }
    return st;
}

typedef struct mark_args {
    sqlite_store *s;
    const sm_event *evs;
    size_t n;
    int64_t generation;
} mark_args;

/* In the write transaction, so no reset can come between the check and
 * the marks. */
static sm_status do_mark(sqlite_conn *c, void *arg, sm_error *err)
{
    mark_args *a = arg;
    int64_t now = read_generation(a->s, c, err);
    if (now < 0)
        return err ? err->status : SM_ERR_UNAVAILABLE;
    if (now != a->generation)
        return sm_fail(err, SM_ERR_CONFLICT,
                       "the outbox was reset since these events were fetched (generation %lld, "
                       "now %lld): they stay unpublished",
                       (long long)a->generation, (long long)now);
    sqlite3_stmt *q = stmt(c, ST_MARK);
    for (size_t i = 0, j; i < a->n; i = j) {
        /* evs[i..j): consecutive versions of one post, one statement */
        for (j = i + 1; j < a->n && a->evs[j].version == a->evs[j - 1].version + 1 &&
                        strcmp(a->evs[j].aggregate_id, a->evs[i].aggregate_id) == 0;
             j++)
            ;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, a->evs[i].aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, a->evs[i].version);
        sqlite3_bind_int64(q, 3, a->evs[j - 1].version);
        int rc = sqlite3_step(q);
        if (rc != SQLITE_DONE)
            return sqlite_pool_fail(a->s->pool, c, rc, "mark published", err);
    }
    sqlite3_reset(q);
    return SM_OK;
}

static es_status sqlite_mark_published(void *impl, const sm_event *evs, size_t n,
                                       int64_t generation, sm_error *err)
{
    mark_args a = {impl, evs, n, generation};
    return write_txn(impl, do_mark, &a, err);
}

typedef struct reset_args {
    sqlite_store *s;
    int64_t count;
} reset_args;

static sm_status do_reset(sqlite_conn *c, void *arg, sm_error *err)
{
    reset_args *a = arg;
    int rc = sqlite3_step(stmt(c, ST_RESET));
    a->count = sqlite3_changes64(c->db);
    if (rc == SQLITE_DONE)
        rc = sqlite3_step(stmt(c, ST_GEN_BUMP));
    return rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(a->s->pool, c, rc, "reset published", err);
}

static es_status sqlite_reset_published(void *impl, int64_t *count, sm_error *err)
{
    reset_args a = {impl, 0};
    es_status st = write_txn(impl, do_reset, &a, err);
    *count = a.count;
    return st;
}

static es_status sqlite_outbox_stats(void *impl, int64_t *pending, int64_t *oldest_ms,
                                     int64_t *published, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    sqlite3_stmt *q = stmt(c, ST_STATS);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *pending = sqlite3_column_int64(q, 0);
        *oldest_ms = sqlite3_column_int64(q, 1); /* NULL reads as 0 */
        *published = sqlite3_column_int64(q, 2) - *pending;
    } else {
        st = fail_rc(s, c, rc, "outbox stats", err);
    }
    sqlite_pool_checkin(s->pool, c);
    return st;
}

static es_status sqlite_get_meta(void *impl, const char *key, char *out, size_t cap,
                                 sm_error *err)
{
    sqlite_store *s = impl;
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    sqlite3_stmt *q = stmt(c, ST_META_GET);
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    else if (rc == SQLITE_DONE)
        st = ES_NOT_FOUND;
    else
        st = fail_rc(s, c, rc, "get meta", err);
    sqlite_pool_checkin(s->pool, c);
    return st;
}

typedef struct meta_args {
    sqlite_store *s;
    const char *key, *value;
} meta_args;

static sm_status do_set_meta(sqlite_conn *c, void *arg, sm_error *err)
{
    meta_args *a = arg;
    sqlite3_stmt *q = stmt(c, ST_META_SET);
    sqlite3_bind_text(q, 1, a->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a->value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(a->s->pool, c, rc, "set meta", err);
}

static es_status sqlite_set_meta(void *impl, const char *key, const char *value, sm_error *err)
{
    meta_args a = {impl, key, value};
    return write_txn(impl, do_set_meta, &a, err);
}

typedef struct snap_args {
    sqlite_store *s;
    const char *aggregate_id;
    int64_t version;
    int schema;
    const char *data;
} snap_args;

static sm_status do_save_snapshot(sqlite_conn *c, void *arg, sm_error *err)
{
    snap_args *a = arg;
    sqlite3_stmt *q = stmt(c, ST_SNAP_SAVE);
    sqlite3_bind_text(q, 1, a->aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, a->schema);
    sqlite3_bind_int64(q, 3, a->version);
    sqlite3_bind_text(q, 4, a->data, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(a->s->pool, c, rc, "save snapshot", err);
}

static es_status sqlite_save_snapshot(void *impl, const char *aggregate_id, int64_t version,
                                      int schema, const char *data, sm_error *err)
{
    snap_args a = {impl, aggregate_id, version, schema, data};
    return write_txn(impl, do_save_snapshot, &a, err);
}

static es_status sqlite_load_snapshot(void *impl, const char *aggregate_id, int64_t max_version,
                                      int schema, int64_t *version, char **data, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    sqlite3_stmt *q = stmt(c, ST_SNAP_LOAD);
    sqlite3_bind_text(q, 1, aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, schema);
    sqlite3_bind_int64(q, 3, max_version);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(q, 1);
        *version = sqlite3_column_int64(q, 0);
        *data = text ? strdup(text) : NULL;
        if (!*data) {
            sm_fail(err, SM_ERR_INTERNAL, "out of memory");
            st = ES_INTERNAL;
        }
    } else if (rc == SQLITE_DONE) {
        st = ES_NOT_FOUND;
    } else {
        st = fail_rc(s, c, rc, "load snapshot", err);
    }
    sqlite_pool_checkin(s->pool, c);
    return st;
}

static es_status sqlite_version_at(void *impl, const char *aggregate_id, int64_t at_ms,
                                   int64_t *version, sm_error *err)
{
    sqlite_store *s = impl;
    es_status st;
    sqlite_conn *c = borrow(s, &st, err);
    if (!c)
        return st;
    sqlite3_stmt *q = stmt(c, ST_VERSION_AT);
    sqlite3_bind_text(q, 1, aggregate_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, at_ms);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int64(q, 0);
    else if (rc != SQLITE_DONE)
        st = fail_rc(s, c, rc, "version at", err);
    sqlite_pool_checkin(s->pool, c);
    return st;
}

typedef struct lease_args {
    sqlite_store *s;
    const char *name, *owner;
    int64_t epoch, now_ms, ttl_ms;
    es_lease *out;
} lease_args;

/* Read, decide and write in one BEGIN IMMEDIATE transaction, so two
 * processes can never both take the lease. */
static sm_status do_lease_acquire(sqlite_conn *c, void *arg, sm_error *err)
{
    lease_args *a = arg;
    sqlite3_stmt *q = stmt(c, ST_LEASE_GET);
    sqlite3_bind_text(q, 1, a->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    es_lease cur = {"", 0, 0};
    if (rc == SQLITE_ROW) {
        snprintf(cur.owner, sizeof cur.owner, "%s", (const char *)sqlite3_column_text(q, 0));
        cur.epoch = sqlite3_column_int64(q, 1);
        cur.expires_ms = sqlite3_column_int64(q, 2);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlite_pool_fail(a->s->pool, c, rc, "lease read", err);
    bool mine = strcmp(cur.owner, a->owner) == 0;
    int64_t epoch;
    if (rc == SQLITE_ROW && mine && cur.epoch == a->epoch)
        epoch = cur.epoch; /* renewal */
    else if (rc == SQLITE_DONE || (mine && a->epoch == 0) || cur.expires_ms < a->now_ms)
        epoch = cur.epoch + 1; /* takeover */
    else {
        *a->out = cur;
        return sm_fail(err, SM_ERR_CONFLICT, "lease %s is held by %s (epoch %lld)", a->name,
                       cur.owner, (long long)cur.epoch);
    }
    q = stmt(c, ST_LEASE_PUT);
    sqlite3_bind_text(q, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, epoch);
    sqlite3_bind_int64(q, 4, a->now_ms + a->ttl_ms);
    rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return sqlite_pool_fail(a->s->pool, c, rc, "lease write", err);
    snprintf(a->out->owner, sizeof a->out->owner, "%s", a->owner);
    a->out->epoch = epoch;
    a->out->expires_ms = a->now_ms + a->ttl_ms;
    return SM_OK;
}

static es_status sqlite_lease_acquire(void *impl, const char *name, const char *owner,
                                      int64_t epoch, int64_t now_ms, int64_t ttl_ms,
                                      es_lease *out, sm_error *err)
{
    lease_args a = {impl, name, owner, epoch, now_ms, ttl_ms, out};
    return write_txn(impl, do_lease_acquire, &a, err);
}

static sm_status do_lease_release(sqlite_conn *c, void *arg, sm_error *err)
{
    lease_args *a = arg;
    sqlite3_stmt *q = stmt(c, ST_LEASE_RELEASE);
    sqlite3_bind_text(q, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, a->epoch);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SM_OK : sqlite_pool_fail(a->s->pool, c, rc, "lease release", err);
}

static es_status sqlite_lease_release(void *impl, const char *name, const char *owner,
                                      int64_t epoch, sm_error *err)
{
    lease_args a = {impl, name, owner, epoch, 0, 0, NULL};
    return write_txn(impl, do_lease_release, &a, err);
}

static void sqlite_close(void *impl)
{
    sqlite_store *s = impl;
    sqlite_group_free(s->writes);
    sqlite_pool_close(s->pool);
    free(s);
}

static const es_ops sqlite_ops = {
    .name = "sqlite",
    .multi_append = true,
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
    .save_snapshot = sqlite_save_snapshot,
    .load_snapshot = sqlite_load_snapshot,
    .version_at = sqlite_version_at,
    .lease_acquire = sqlite_lease_acquire,
    .lease_release = sqlite_lease_release,
};

/* A file written before events carried metadata has an `events` table
 * without the column, and CREATE TABLE IF NOT EXISTS leaves it so: add it
 * before the pool prepares statements that name it. Checked and altered in
 * one write transaction, so two processes opening the same old file do it
 * once. A file that does not exist yet is left to the schema. */
static es_status add_metadata_column(const char *path, sm_error *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_CANTOPEN) {
        sqlite3_close(db);
        return ES_OK;
    }
    sqlite3_stmt *q = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT COUNT(*), COUNT(*) FILTER (WHERE name = 'metadata')"
                                " FROM pragma_table_info('events')",
                                -1, &q, NULL);
    bool alter = false;
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        alter = sqlite3_column_int(q, 0) > 0 && sqlite3_column_int(q, 1) == 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_OK && alter)
        rc = sqlite3_exec(db, "ALTER TABLE events ADD COLUMN metadata TEXT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    es_status st = ES_OK;
    if (rc != SQLITE_OK) {
        sm_fail(err, SM_ERR_UNAVAILABLE, "event store: cannot add the metadata column to %s: %s",
                path, db ? sqlite3_errmsg(db) : "out of memory");
        st = ES_UNAVAILABLE;
    } else if (alter) {
        sm_log(SM_LOG_INFO, "event_store_migrated", "adapter=sqlite path=%s added=events.metadata",
               path);
    }
    sqlite3_close(db); /* an open transaction is rolled back */
    return st;
}

es_status es_sqlite_open(const char *path, es_store **out, sm_error *err)
{
    *out = NULL;
    es_status migrated = add_metadata_column(path, err);
    if (migrated != ES_OK)
        return migrated;
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return ES_INTERNAL;
    }
    s->pool = sqlite_pool_open(path, "event store", sm_sql_event_store_sqlite, stmt_sql, ST_COUNT,
                               err);
    if (!s->pool) {
        free(s);
        return to_es(err ? err->status : SM_ERR_INTERNAL);
    }
    if (!(s->writes = sqlite_group_new(s->pool))) {
        sqlite_pool_close(s->pool);
        free(s);
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return ES_INTERNAL;
    }
    *out = es_store_new(&sqlite_ops, s);
    if (!*out) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return ES_INTERNAL;
    }
    sm_log(SM_LOG_INFO, "event_store_open", "adapter=sqlite path=%s", path);
    return ES_OK;
}
