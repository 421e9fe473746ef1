/* SPDX-License-Identifier: Apache-2.0 */
/* es_mongo_internal.h — what the MongoDB adapter's files share. Not part of
 * the port: only the files below (and the adapter's unit test of its
 * URI defaults) include it.
 *
 *   es_mongo.c         the store (pool, index, error mapping), the document
 *                      format, append and the stream reads, and the es_ops
 *                      table;
 *   es_mongo_outbox.c  the outbox operations and the meta settings;
 *   es_mongo_snapshot.c  snapshots and the point-in-time lookup;
 *   es_mongo_lease.c   leases.
 *
 * Every function here has the thread-safety of the store: any thread, with
 * the client it checked out. Errors are reported like the rest of the
 * adapter, "event store (mongodb) OP failed: ..." with the status that
 * mongo_fail() maps. */
#ifndef ES_MONGO_INTERNAL_H
#define ES_MONGO_INTERNAL_H

#include "event_store.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>

#define ES_MONGO_STREAM_LOCKS 64

typedef struct mongo_store {
    mongoc_client_pool_t *pool;
    char *db_name;
    atomic_uint epoch;          /* bumped on every server change (es_mongo.c) */
    atomic_uint indexed_epoch;  /* epoch in which the indexes were last asserted */
    atomic_uint snap_indexed_epoch; /* same, for the snapshot index */
    atomic_bool server_checked;    /* buildInfo read (es_mongo.c, warn_server_limits) */
    pthread_mutex_t stream_locks[ES_MONGO_STREAM_LOCKS]; /* es_mongo.c, stream_lock() */
} mongo_store;

/* Fills in what the URI leaves unsaid, and nothing it says: the server
 * selection, connect and socket timeouts, the appname, and the write
 * concern, which defaults to { w: "majority", j: true, wtimeout: 4 s } so
 * that a 2xx is never answered for an event a replica-set failover can roll
 * back (docs/operations.md, "MongoDB"). */
void es_mongo_apply_uri_defaults(mongoc_uri_t *uri);

/* es_mongo_tls.c: at open, files the URI's TLS options name are readable
 * (ES_INVALID + err naming the option otherwise), and options that turn
 * certificate checks off are logged at warn. */
es_status mongo_tls_preflight(const mongoc_uri_t *uri, const char *db_name, sm_error *err);

/* es_mongo_tls.c: the first contact at open failed with st and *first:
 * returns ES_INVALID, with *first rewritten to say what to fix, for a
 * refused login, a TLS failure about certificates, or a server that answers
 * without TLS where the URI says tls=true; else st unchanged. */
es_status mongo_explain_open_failure(const mongoc_uri_t *uri, es_status st, sm_error *first);

/* A client borrowed from the pool and the event collection made from it. */
typedef struct mongo_conn {
    mongoc_client_t *client;
    mongoc_collection_t *events;
} mongo_conn;

/* Borrows a client into *c, waiting while the pool is exhausted no longer
 * than the request's deadline (sm_deadline.h) or 5 s: ES_UNAVAILABLE then.
 * On ES_OK give it back with mongo_checkin() on every path. */
es_status mongo_checkout(mongo_store *s, mongo_conn *c, sm_error *err);
void mongo_checkin(mongo_store *s, mongo_conn *c);

/* Creates the index `name` on key (a key pattern, borrowed) in collection
 * of the store's database, unique or not; an identical index already
 * there is success. One createIndexes command per index, whatever the
 * server (es_mongo.c says why). */
es_status mongo_create_index(mongo_store *s, mongoc_client_t *client, const char *collection,
                             const bson_t *key, const char *name, bool unique, sm_error *err);

/* Fills err for a failed driver call (reply may be NULL) and returns the
 * port status: ES_UNAVAILABLE for an unreachable or stepping-down server,
 * ES_CONFLICT for a duplicate key, else ES_INTERNAL. op names the
 * operation in the message. */
es_status mongo_fail(const bson_error_t *e, const bson_t *reply, const char *op, sm_error *err);
es_status mongo_fail_oom(sm_error *err);

/* Decodes every event document of cur into out, all or nothing, and
 * destroys cur. If last_id is given it receives the hex _id of the last
 * document (25 bytes). A document that does not decode is ES_INTERNAL,
 * naming its _id and the bad field. If the cursor itself fails and cause is
 * given, *cause receives the driver's error (domain and server code). */
es_status mongo_read_events(mongoc_cursor_t *cur, sm_event_list *out, char *last_id,
                            const char *op, bson_error_t *cause, sm_error *err);

/* An integer field (int32 or int64) of doc; false if absent or not one. */
bool mongo_find_int64(const bson_t *doc, const char *key, int64_t *out);

/* The outbox and meta operations of the es_ops table (es_mongo_outbox.c);
 * impl is a mongo_store. Semantics: event_store.h, "Outbox". */
es_status mongo_fetch_unpublished(void *impl, es_cursor *cursor, size_t limit,
                                  sm_event_list *out, int64_t *generation, sm_error *err);
es_status mongo_mark_published(void *impl, const sm_event *evs, size_t n, int64_t generation,
                               sm_error *err);
es_status mongo_reset_published(void *impl, int64_t *count, sm_error *err);
es_status mongo_outbox_stats(void *impl, int64_t *pending, int64_t *oldest_ms, int64_t *published,
                             sm_error *err);
es_status mongo_get_meta(void *impl, const char *key, char *out, size_t cap, sm_error *err);
es_status mongo_set_meta(void *impl, const char *key, const char *value, sm_error *err);


/* Snapshots and version_at (es_mongo_snapshot.c); semantics: event_store.h,
 * "Snapshots". */
es_status mongo_save_snapshot(void *impl, const char *aggregate_id, int64_t version, int schema,
                              const char *data, sm_error *err);
es_status mongo_load_snapshot(void *impl, const char *aggregate_id, int64_t max_version,
                              int schema, int64_t *version, char **data, sm_error *err);
es_status mongo_version_at(void *impl, const char *aggregate_id, int64_t at_ms,
                           int64_t *version, sm_error *err);

/* Leases (es_mongo_lease.c); semantics: event_store.h, "Leases". */
es_status mongo_lease_acquire(void *impl, const char *name, const char *owner, int64_t epoch,
                              int64_t now_ms, int64_t ttl_ms, es_lease *out, sm_error *err);
es_status mongo_lease_release(void *impl, const char *name, const char *owner, int64_t epoch,
                              sm_error *err);

#endif
