/* SPDX-License-Identifier: Apache-2.0 */
/* es_mongo_snapshot.c — the MongoDB adapter's snapshots and point-in-time
 * lookup (event_store.h, "Snapshots"); the rest of the adapter is es_mongo.c.
 *
 * Collection "snapshots" of the same database, one document per snapshot:
 *   { _id: "<aggregate id>:<schema>:<version>", aggregateIdentifier, schema,
 *     version: int64, data: string }
 * The _id makes a save idempotent without another unique index: a second
 * writer of the same snapshot gets a duplicate key, which is success. The
 * index { aggregateIdentifier, schema, version } serves "latest at or below
 * a version"; it is created before the first save in each server epoch,
 * like the event indexes, so a server that lost its data gets it back.
 * Loads before any save in this process may run without it: slower, never
 * wrong. */
#include "es_mongo_internal.h"


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_COLLECTION "snapshots"
#define SNAP_INDEX_NAME "snapshot_lookup"

static es_status ensure_snapshot_index(mongo_store *s, mongoc_client_t *client, sm_error *err)
{
    unsigned epoch = atomic_load(&s->epoch);
    if (atomic_load(&s->snap_indexed_epoch) == epoch)
        return ES_OK;
    bson_t *key = BCON_NEW("aggregateIdentifier", BCON_INT32(1), "schema", BCON_INT32(1),
                           "version", BCON_INT32(-1));
    es_status st = mongo_create_index(s, client, SNAP_COLLECTION, key, SNAP_INDEX_NAME, false,
                                      err);
    if (st == ES_OK)
        atomic_store(&s->snap_indexed_epoch, epoch);
    bson_destroy(key);
    return st;
}

es_status mongo_save_snapshot(void *impl, const char *aggregate_id, int64_t version, int schema,
                              const char *data, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    char id[160];
    snprintf(id, sizeof id, "%s:%d:%lld", aggregate_id, schema, (long long)version);
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "aggregateIdentifier", BCON_UTF8(aggregate_id),
                           "schema", BCON_INT32(schema), "version", BCON_INT64(version),
                           "data", BCON_UTF8(data));
    st = ensure_snapshot_index(s, c.client, err);
    if (st == ES_OK) {
        mongoc_collection_t *coll =
            mongoc_client_get_collection(c.client, s->db_name, SNAP_COLLECTION);
        bson_t reply;
        bson_error_t e;
        if (!mongoc_collection_insert_one(coll, doc, NULL, &reply, &e)) {
            st = mongo_fail(&e, &reply, "save snapshot", err);
            if (st == ES_CONFLICT) /* already saved: the same fact */
                st = ES_OK;
        }
        bson_destroy(&reply);
        mongoc_collection_destroy(coll);
    }
    mongo_checkin(s, &c);
    bson_destroy(doc);
    return st;
}

/* The one document the cursor returns, or ES_NOT_FOUND; *doc is borrowed
 * from cur. */
static es_status first_doc(mongoc_cursor_t *cur, const bson_t **doc, const char *op,
                           sm_error *err)
{
    if (mongoc_cursor_next(cur, doc))
        return ES_OK;
    bson_error_t e;
    const bson_t *reply = NULL;
    if (mongoc_cursor_error_document(cur, &e, &reply))
        return mongo_fail(&e, reply, op, err);
    return ES_NOT_FOUND;
}

es_status mongo_load_snapshot(void *impl, const char *aggregate_id, int64_t max_version,
                              int schema, int64_t *version, char **data, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    bson_t *filter = BCON_NEW("aggregateIdentifier", BCON_UTF8(aggregate_id),
                              "schema", BCON_INT32(schema),
                              "version", "{", "$lte", BCON_INT64(max_version), "}");
    bson_t *opts = BCON_NEW("sort", "{", "version", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
    mongoc_collection_t *coll = mongoc_client_get_collection(c.client, s->db_name, SNAP_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    st = first_doc(cur, &doc, "load snapshot", err);
    if (st == ES_OK) {
        bson_iter_t it;
        if (!mongo_find_int64(doc, "version", version) ||
            !bson_iter_init_find(&it, doc, "data") || !BSON_ITER_HOLDS_UTF8(&it)) {
            sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb): corrupt snapshot of %s",
                    aggregate_id);
            st = ES_INTERNAL;
        } else if (!(*data = strdup(bson_iter_utf8(&it, NULL)))) {
            st = mongo_fail_oom(err);
        }
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    mongo_checkin(s, &c);
    bson_destroy(opts);
    bson_destroy(filter);
    return st;
}

es_status mongo_version_at(void *impl, const char *aggregate_id, int64_t at_ms, int64_t *version,
                           sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    bson_t *filter = BCON_NEW("aggregateIdentifier", BCON_UTF8(aggregate_id),
                              "timeStamp", "{", "$lte", BCON_DATE_TIME(at_ms), "}");
    bson_t *opts = BCON_NEW("sort", "{", "version", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                            "projection", "{", "version", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c.events, filter, opts, NULL);
    const bson_t *doc;
    st = first_doc(cur, &doc, "version at", err);
    if (st == ES_OK && !mongo_find_int64(doc, "version", version)) {
        sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb): event of %s without a version",
                aggregate_id);
        st = ES_INTERNAL;
    }
    if (st == ES_NOT_FOUND)
        st = ES_OK; /* *version stays -1: no event yet at that instant */
    mongoc_cursor_destroy(cur);
    mongo_checkin(s, &c);
    bson_destroy(opts);
    bson_destroy(filter);
    return st;
}
