/* es_mongo_outbox.c — the MongoDB adapter's outbox and meta operations
 * (event_store.h, "Outbox"); the rest of the adapter is es_mongo.c.
 *
 * The flag: every event document carries `published`, false when build_doc()
 * writes it and true once the relay has marked it. Documents written before
 * the outbox existed have no such field and count as unpublished, so every
 * "unpublished" query here matches { published: { $in: [false, null] } }
 * (null also matches a missing field). Not the simpler { $ne: true }: $in
 * gives MongoDB's planner two point intervals on the first key of the index
 * { published: 1, aggregateIdentifier: 1, version: 1 } (created with the
 * unique index, es_mongo.c), so it can return the unpublished events already
 * in (post, version) order; $ne is a range, which needs an in-memory sort of
 * the whole backlog. The two forms select the same documents.
 *
 * Heads: the lowest unpublished version of each post comes from one
 * aggregation, $match unpublished -> $sort by (post, version) -> $group per
 * post keeping $first -> the head documents, longest-waiting (lowest _id)
 * first -> $limit. jongodb, the in-memory test server, has $group with $first
 * but not $min, so "first after a sort" is the form both it and MongoDB
 * take. FerretDB 1.x has neither $first nor $replaceRoot (its $group knows
 * $sum and $count only); where the server refuses the pipeline as
 * unsupported, the same heads come from two finds instead
 * (es_mongo_heads.c; logged once per server epoch as
 * event_store_outbox_heads method=find).
 *
 * Reads that decide what the relay does next (heads, meta) go to the primary
 * whatever the URI's read preference: a lagging secondary would offer events
 * that are already published (duplicates on the bus) or an old cluster id.
 *
 * Generations (event_store.h, "Outbox"): MongoDB without multi-document
 * transactions (FerretDB 1.x has none) cannot check a counter and mark in
 * one step, so the check is per event. The meta document
 * { _id: "outbox.generation", n: long } counts resets; a reset first
 * increments it, then sets every event's `resetGen` to the new value (and
 * `published` to false); a mark updates an event only if its `resetGen` is
 * not above the generation the relay read before fetching the heads. An
 * event a reset reached after the fetch is thus refused; one the reset had
 * not reached yet is marked, then unmarked by the reset: published twice,
 * never skipped. Events written before generations existed have no
 * `resetGen`, which the mark's filter accepts.
 *
 * Meta: collection "meta" of the same database, { _id: key, value: string }. */
#include "es_mongo_internal.h"

#include "sm_log.h"

#include <stdio.h>

#define META_COLLECTION "meta"
#define GEN_ID "outbox.generation"

/* Caller destroys. */
static bson_t *unpublished_filter(void)
{
    return BCON_NEW("published", "{", "$in", "[", BCON_BOOL(false), BCON_NULL, "]", "}");
}

/* ---- generation ----------------------------------------------------------- */
/* Reads the outbox generation (0 if never reset) from the primary. */
static es_status read_generation(mongo_store *s, mongo_conn *c, int64_t *gen, sm_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(GEN_ID));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_collection_t *meta = mongoc_client_get_collection(c->client, s->db_name,
                                                             META_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(meta, filter, opts, primary);
    const bson_t *doc, *reply;
    bson_error_t e;
    es_status st = ES_OK;
    *gen = 0;
    if (mongoc_cursor_next(cur, &doc)) {
        if (!mongo_find_int64(doc, "n", gen)) {
            sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb): meta %s has no number n",
                    GEN_ID);
            st = ES_INTERNAL;
        }
    } else if (mongoc_cursor_error_document(cur, &e, &reply)) {
        st = mongo_fail(&e, reply, "read outbox generation", err);
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(meta);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(opts);
    bson_destroy(filter);
    return st;
}

/* Increments the generation (creating it at 1) and returns the new value. */
static es_status bump_generation(mongo_store *s, mongo_conn *c, int64_t *gen, sm_error *err)
{
    bson_t *query = BCON_NEW("_id", BCON_UTF8(GEN_ID));
    bson_t *update = BCON_NEW("$inc", "{", "n", BCON_INT64(1), "}");
    mongoc_collection_t *meta = mongoc_client_get_collection(c->client, s->db_name,
                                                             META_COLLECTION);
    bson_t reply;
    bson_error_t e;
    es_status st = ES_OK;
    if (!mongoc_collection_find_and_modify(meta, query, NULL, update, NULL, false, true, true,
                                           &reply, &e)) {
        st = mongo_fail(&e, &reply, "bump outbox generation", err);
    } else {
        bson_iter_t it, val;
        if (!bson_iter_init_find(&it, &reply, "value") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
            !bson_iter_recurse(&it, &val) || !bson_iter_find(&val, "n") ||
            !(BSON_ITER_HOLDS_INT64(&val) || BSON_ITER_HOLDS_INT32(&val))) {
            sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) bump outbox generation: no "
                    "new value in the reply");
            st = ES_INTERNAL;
        } else {
            *gen = bson_iter_as_int64(&val);
        }
    }
    bson_destroy(&reply);
    mongoc_collection_destroy(meta);
    bson_destroy(update);
    bson_destroy(query);
    return st;
}

/* ---- heads ---------------------------------------------------------------- */
/* Server error codes meaning "this server lacks a stage or an accumulator of
 * that pipeline": FerretDB 1.x answers NotImplemented for $first (its $group
 * has only $sum and $count) and for $replaceRoot; MongoDB itself would name
 * an unknown stage or group operator. Any other failure is reported as is. */
enum { NOT_IMPLEMENTED = 238, UNKNOWN_GROUP_OPERATOR = 15952, UNKNOWN_STAGE = 40324 };

static bool pipeline_unsupported(const bson_error_t *e)
{
    return e->domain == MONGOC_ERROR_SERVER &&
           (e->code == NOT_IMPLEMENTED || e->code == UNKNOWN_GROUP_OPERATOR ||
            e->code == UNKNOWN_STAGE);
}

/* One aggregation (see the top). allowDiskUse: the $group holds one document
 * per post with a backlog, which after a reset (every post) can pass the
 * 100 MB a stage may use in memory on servers before 6.0. */
static es_status heads_by_aggregation(mongo_conn *c, size_t limit, sm_event_list *out,
                                      bson_error_t *cause, sm_error *err)
{
    bson_t *filter = unpublished_filter();
    bson_t *pipeline = BCON_NEW(
        "pipeline", "[",
        "{", "$match", BCON_DOCUMENT(filter), "}",
        "{", "$sort", "{", "aggregateIdentifier", BCON_INT32(1), "version", BCON_INT32(1), "}", "}",
        "{", "$group", "{", "_id", BCON_UTF8("$aggregateIdentifier"),
                            "head", "{", "$first", BCON_UTF8("$$ROOT"), "}", "}", "}",
        "{", "$replaceRoot", "{", "newRoot", BCON_UTF8("$head"), "}", "}",
        "{", "$sort", "{", "_id", BCON_INT32(1), "}", "}",
        "{", "$limit", BCON_INT64(limit > INT64_MAX ? INT64_MAX : (int64_t)limit), "}",
        "]");
    bson_t *opts = BCON_NEW("allowDiskUse", BCON_BOOL(true));
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_cursor_t *cur =
        mongoc_collection_aggregate(c->events, MONGOC_QUERY_NONE, pipeline, opts, primary);
    es_status st = mongo_read_events(cur, out, NULL, "fetch unpublished", cause, err);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(opts);
    bson_destroy(pipeline);
    bson_destroy(filter);
    return st;
}

/* The aggregation, unless the server refused it in this server epoch: then
 * the portable form, until the server changes (a restart or a failover may
 * bring one that has them). */
es_status mongo_fetch_unpublished(void *impl, size_t limit, sm_event_list *out,
                                  int64_t *generation, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    st = read_generation(s, &c, generation, err); /* before the heads */
    unsigned epoch = atomic_load(&s->epoch);
    bool by_find = atomic_load(&s->heads_by_find_epoch) == epoch;
    bson_error_t cause = {0};
    if (st == ES_OK && !by_find &&
        (st = heads_by_aggregation(&c, limit, out, &cause, err)) != ES_OK &&
        pipeline_unsupported(&cause)) {
        char quoted[SM_ERROR_MAX + 16];
        sm_log(SM_LOG_INFO, "event_store_outbox_heads", "adapter=mongodb db=%s method=find "
               "reason=%s", s->db_name, sm_log_quote(cause.message, quoted, sizeof quoted));
        atomic_store(&s->heads_by_find_epoch, epoch);
        by_find = true;
        st = ES_OK;
    }
    if (st == ES_OK && by_find) {
        bson_t *filter = unpublished_filter();
        st = mongo_heads_by_find(&c, limit, filter, out, err);
        bson_destroy(filter);
    }
    mongo_checkin(s, &c);
    return st;
}

/* ---- marking -------------------------------------------------------------- */
/* One bulk write of n update_one's, each found by the unique index and
 * refused if a reset after `generation` reached it (see the top). Marking a
 * published event again matches it and changes nothing: idempotent. */
es_status mongo_mark_published(void *impl, const sm_event *evs, size_t n, int64_t generation,
                               sm_error *err)
{
    if (n == 0) /* the driver refuses an empty bulk write */
        return ES_OK;
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    bson_t *set = BCON_NEW("$set", "{", "published", BCON_BOOL(true), "}");
    mongoc_bulk_operation_t *bulk =
        mongoc_collection_create_bulk_operation_with_opts(c.events, NULL);
    bson_error_t e;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        bson_t *sel = BCON_NEW("aggregateIdentifier", BCON_UTF8(evs[i].aggregate_id), "version",
                               BCON_INT64(evs[i].version), "$or", "[",
                               "{", "resetGen", "{", "$exists", BCON_BOOL(false), "}", "}",
                               "{", "resetGen", "{", "$lte", BCON_INT64(generation), "}", "}",
                               "]");
        ok = mongoc_bulk_operation_update_one_with_opts(bulk, sel, set, NULL, &e);
        bson_destroy(sel);
    }
    if (!ok) {
        st = mongo_fail(&e, NULL, "mark published", err);
    } else {
        bson_t reply; /* initialised by execute on every path */
        int64_t matched = 0;
        if (!mongoc_bulk_operation_execute(bulk, &reply, &e)) {
            st = mongo_fail(&e, &reply, "mark published", err);
        } else if (mongo_find_int64(&reply, "nMatched", &matched) && matched < (int64_t)n) {
            sm_fail(err, SM_ERR_CONFLICT, "the outbox was reset since these events were fetched "
                    "(generation %lld): %lld of %zu stay unpublished", (long long)generation,
                    (long long)((int64_t)n - matched), n);
            st = ES_CONFLICT;
        }
        bson_destroy(&reply);
    }
    mongoc_bulk_operation_destroy(bulk);
    mongo_checkin(s, &c);
    bson_destroy(set);
    return st;
}

/* The generation first, then every event (see the top); *count is the
 * number of events the update changed: all of them, since each gets the
 * new resetGen. */
es_status mongo_reset_published(void *impl, int64_t *count, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    int64_t gen = 0;
    st = bump_generation(s, &c, &gen, err);
    if (st != ES_OK) {
        mongo_checkin(s, &c);
        return st;
    }
    bson_t *filter = bson_new();
    bson_t *update = BCON_NEW("$set", "{", "published", BCON_BOOL(false), "resetGen",
                              BCON_INT64(gen), "}");
    bson_t reply;
    bson_error_t e;
    if (!mongoc_collection_update_many(c.events, filter, update, NULL, &reply, &e)) {
        st = mongo_fail(&e, &reply, "reset published", err);
    } else if (!mongo_find_int64(&reply, "modifiedCount", count)) {
        /* only an unacknowledged write concern (w=0) leaves it out */
        sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) reset published: the server did "
                "not report how many events changed (unacknowledged write concern?)");
        st = ES_INTERNAL;
    }
    mongo_checkin(s, &c);
    bson_destroy(&reply);
    bson_destroy(update);
    bson_destroy(filter);
    return st;
}

/* ---- stats ---------------------------------------------------------------- */
/* The oldest unpublished timeStamp by sort + limit 1 (jongodb lacks $min).
 * No index serves that sort, but it is a top-1 over the backlog the outbox
 * index already narrows to, which is fine for /health; a timeStamp index
 * would cost every append a write for this alone. */
static es_status oldest_unpublished(mongoc_collection_t *events, const bson_t *filter,
                                    int64_t *oldest_ms, sm_error *err)
{
    bson_t *opts = BCON_NEW("sort", "{", "timeStamp", BCON_INT32(1), "}", "limit",
                            BCON_INT64(1), "projection", "{", "timeStamp", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(events, filter, opts, NULL);
    const bson_t *doc, *reply;
    bson_iter_t it;
    bson_error_t e;
    es_status st = ES_OK;
    *oldest_ms = 0; /* none left: everything was marked since the count */
    if (mongoc_cursor_next(cur, &doc)) {
        if (bson_iter_init_find(&it, doc, "timeStamp") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            *oldest_ms = bson_iter_date_time(&it);
        } else {
            sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) outbox stats: an unpublished "
                    "event has no timeStamp date");
            st = ES_INTERNAL;
        }
    } else if (mongoc_cursor_error_document(cur, &e, &reply)) {
        st = mongo_fail(&e, reply, "outbox stats", err);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    return st;
}

es_status mongo_outbox_stats(void *impl, int64_t *pending, int64_t *oldest_ms, int64_t *published,
                             sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    bson_t *filter = unpublished_filter();
    bson_t reply;
    bson_error_t e;
    int64_t oldest = 0;
    int64_t n = mongoc_collection_count_documents(c.events, filter, NULL, NULL, &reply, &e);
    if (n < 0)
        st = mongo_fail(&e, &reply, "outbox stats", err);
    else if (n > 0)
        st = oldest_unpublished(c.events, filter, &oldest, err);
    int64_t done = 0;
    if (st == ES_OK) {
        bson_t *pub = BCON_NEW("published", BCON_BOOL(true));
        bson_destroy(&reply);
        done = mongoc_collection_count_documents(c.events, pub, NULL, NULL, &reply, &e);
        if (done < 0)
            st = mongo_fail(&e, &reply, "outbox stats", err);
        bson_destroy(pub);
    }
    mongo_checkin(s, &c);
    if (st == ES_OK) {
        *pending = n;
        *oldest_ms = oldest;
        *published = done;
    }
    bson_destroy(&reply);
    bson_destroy(filter);
    return st;
}

/* ---- meta ----------------------------------------------------------------- */
es_status mongo_get_meta(void *impl, const char *key, char *out, size_t cap, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(key));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", "value", BCON_INT32(1),
                            "}");
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_collection_t *meta = mongoc_client_get_collection(c.client, s->db_name,
                                                             META_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(meta, filter, opts, primary);
    const bson_t *doc, *reply;
    bson_iter_t it;
    bson_error_t e;
    if (mongoc_cursor_next(cur, &doc)) {
        if (bson_iter_init_find(&it, doc, "value") && BSON_ITER_HOLDS_UTF8(&it)) {
            snprintf(out, cap, "%s", bson_iter_utf8(&it, NULL));
        } else {
            sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) get meta: %s has no string "
                    "value", key);
            st = ES_INTERNAL;
        }
    } else if (mongoc_cursor_error_document(cur, &e, &reply)) {
        st = mongo_fail(&e, reply, "get meta", err);
    } else {
        sm_fail(err, SM_ERR_NOT_FOUND, "event store (mongodb): meta %s is not set", key);
        st = ES_NOT_FOUND;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(meta);
    mongo_checkin(s, &c);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(opts);
    bson_destroy(filter);
    return st;
}

/* An upsert. Two first writers of one key can both miss and both insert;
 * the loser gets a duplicate key (older servers do not retry that upsert
 * themselves), and its second try finds the document and updates it. */
es_status mongo_set_meta(void *impl, const char *key, const char *value, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(key));
    bson_t *update = BCON_NEW("$set", "{", "value", BCON_UTF8(value), "}");
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    mongoc_collection_t *meta = mongoc_client_get_collection(c.client, s->db_name,
                                                             META_COLLECTION);
    st = ES_CONFLICT;
    for (int attempt = 0; st == ES_CONFLICT && attempt < 2; attempt++) {
        bson_t reply;
        bson_error_t e;
        st = ES_OK;
        if (!mongoc_collection_update_one(meta, filter, update, opts, &reply, &e))
            st = mongo_fail(&e, &reply, "set meta", err);
        bson_destroy(&reply);
    }
    mongoc_collection_destroy(meta);
    mongo_checkin(s, &c);
    bson_destroy(opts);
    bson_destroy(update);
    bson_destroy(filter);
    return st;
}
