/* SPDX-License-Identifier: Apache-2.0 */
/* es_mongo_lease.c — the MongoDB adapter's leases (event_store.h,
 * "Leases"); the rest of the adapter is es_mongo.c.
 *
 * Collection "leases" of the same database, one document per lease:
 *   { _id: name, owner: string, epoch: int64, expiresMs: int64, claim }
 * Every step is a single-document atomic operation, tried in order:
 *   1. renew:    updateOne({_id, owner, epoch}, {$set: {expiresMs}})
 *   2. takeover: updateOne({_id, $or: [{expiresMs < now}, {owner}]},
 *                {$set: {owner, expiresMs, claim}, $inc: {epoch: 1}}),
 *                then the lease read back for its new epoch
 *      (the {owner} branch only for epoch 0: a restart under a stable id)
 *   3. create:   insertOne({_id, owner, epoch: 1, expiresMs})
 * If two processes race, the server serialises them on the document: one
 * renews or takes over, the other matches nothing, and its insert meets a
 * duplicate _id; it then reads the holder and reports ES_CONFLICT.
 *
 * The takeover is an updateOne, not a findAndModify that would return the
 * new epoch at once: jongodb's findAndModify matches a document and then
 * updates it without matching again, so two takers of one expired lease
 * both won (21 of 300 rounds of 8 takers), while its updateOne is atomic.
 * claim, a random id each takeover writes, tells the reader of the lease
 * whether the epoch it reads is the one its own update made. FerretDB 1.x
 * has neither form atomic (docs/operations.md, "MongoDB stand-ins"). */
#include "es_mongo_internal.h"

#include "sm_uuid.h"

#include <stdio.h>
#include <string.h>

#define LEASE_COLLECTION "leases"

static void read_lease(const bson_t *doc, es_lease *out)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "owner") && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(out->owner, sizeof out->owner, "%s", bson_iter_utf8(&it, NULL));
    mongo_find_int64(doc, "epoch", &out->epoch);
    mongo_find_int64(doc, "expiresMs", &out->expires_ms);
}

static es_status renew(mongoc_collection_t *coll, const char *name, const char *owner,
                       int64_t epoch, int64_t expires, bool *done, sm_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(name), "owner", BCON_UTF8(owner), "epoch",
                              BCON_INT64(epoch));
    bson_t *update = BCON_NEW("$set", "{", "expiresMs", BCON_INT64(expires), "}");
    bson_t reply;
    bson_error_t e;
    es_status st = ES_OK;
    if (!mongoc_collection_update_one(coll, filter, update, NULL, &reply, &e))
        st = mongo_fail(&e, &reply, "lease renew", err);
    int64_t matched = 0;
    *done = st == ES_OK && mongo_find_int64(&reply, "matchedCount", &matched) && matched == 1;
    bson_destroy(&reply);
    bson_destroy(update);
    bson_destroy(filter);
    return st;
}

/* Reads the lease back after our takeover: ours if it still carries our
 * claim (nobody took it since), and then *out is it. */
static es_status read_claimed(mongoc_collection_t *coll, const char *name, const char *claim,
                              es_lease *out, bool *done, sm_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(name));
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, primary);
    const bson_t *doc, *reply;
    bson_iter_t it;
    bson_error_t e;
    es_status st = ES_OK;
    if (mongoc_cursor_next(cur, &doc)) {
        *done = bson_iter_init_find(&it, doc, "claim") && BSON_ITER_HOLDS_UTF8(&it) &&
                strcmp(bson_iter_utf8(&it, NULL), claim) == 0;
        if (*done)
            read_lease(doc, out);
    } else if (mongoc_cursor_error_document(cur, &e, &reply)) {
        st = mongo_fail(&e, reply, "lease read", err);
    }
    mongoc_cursor_destroy(cur);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(filter);
    return st;
}

static es_status take_over(mongoc_collection_t *coll, const char *name, const char *owner,
                           bool fresh, int64_t now, int64_t expires, es_lease *out, bool *done,
                           sm_error *err)
{
    sm_uuid_str claim;
    *done = false;
    if (!sm_uuid_new(claim)) {
        sm_fail(err, SM_ERR_INTERNAL, "lease takeover: no random numbers for a claim");
        return ES_INTERNAL;
    }
    /* a stale epoch under our own name is a former holder: expiry only */
    bson_t *filter =
        fresh ? BCON_NEW("_id", BCON_UTF8(name), "$or", "[", "{", "expiresMs", "{", "$lt",
                         BCON_INT64(now), "}", "}", "{", "owner", BCON_UTF8(owner), "}", "]")
              : BCON_NEW("_id", BCON_UTF8(name), "expiresMs", "{", "$lt", BCON_INT64(now), "}");
    bson_t *update = BCON_NEW("$set", "{", "owner", BCON_UTF8(owner), "expiresMs",
                              BCON_INT64(expires), "claim", BCON_UTF8(claim), "}",
                              "$inc", "{", "epoch", BCON_INT64(1), "}");
    bson_t reply;
    bson_error_t e;
    int64_t matched = 0;
    es_status st = ES_OK;
    if (!mongoc_collection_update_one(coll, filter, update, NULL, &reply, &e))
        st = mongo_fail(&e, &reply, "lease takeover", err);
    else if (mongo_find_int64(&reply, "matchedCount", &matched) && matched == 1)
        st = read_claimed(coll, name, claim, out, done, err);
    bson_destroy(&reply);
    bson_destroy(update);
    bson_destroy(filter);
    return st;
}

/* The holder, after a lost race. */
static es_status read_holder(mongoc_collection_t *coll, const char *name, es_lease *out,
                             sm_error *err)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(name));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    es_status st = ES_CONFLICT;
    bson_error_t e;
    const bson_t *reply = NULL;
    memset(out, 0, sizeof *out); /* gone again meanwhile: no holder */
    if (mongoc_cursor_next(cur, &doc))
        read_lease(doc, out);
    else if (mongoc_cursor_error_document(cur, &e, &reply))
        st = mongo_fail(&e, reply, "lease read", err);
    if (st == ES_CONFLICT)
        sm_fail(err, SM_ERR_CONFLICT, "lease %s is held by %s (epoch %lld)", name, out->owner,
                (long long)out->epoch);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    return st;
}

es_status mongo_lease_acquire(void *impl, const char *name, const char *owner, int64_t epoch,
                              int64_t now_ms, int64_t ttl_ms, es_lease *out, sm_error *err)
{
    mongo_store *s = impl;
    int64_t expires = now_ms + ttl_ms;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    mongoc_collection_t *coll = mongoc_client_get_collection(c.client, s->db_name,
                                                             LEASE_COLLECTION);
    bool done = false;
    st = epoch > 0 ? renew(coll, name, owner, epoch, expires, &done, err) : ES_OK;
    if (st == ES_OK && done) {
        snprintf(out->owner, sizeof out->owner, "%s", owner);
        out->epoch = epoch;
        out->expires_ms = expires;
    }
    if (st == ES_OK && !done)
        st = take_over(coll, name, owner, epoch == 0, now_ms, expires, out, &done, err);
    if (st == ES_OK && !done) {
        bson_t *doc = BCON_NEW("_id", BCON_UTF8(name), "owner", BCON_UTF8(owner), "epoch",
                               BCON_INT64(1), "expiresMs", BCON_INT64(expires));
        bson_t reply;
        bson_error_t e;
        if (mongoc_collection_insert_one(coll, doc, NULL, &reply, &e)) {
            snprintf(out->owner, sizeof out->owner, "%s", owner);
            out->epoch = 1;
            out->expires_ms = expires;
        } else {
            st = mongo_fail(&e, &reply, "lease create", err);
            if (st == ES_CONFLICT) /* someone else holds it */
                st = read_holder(coll, name, out, err);
        }
        bson_destroy(&reply);
        bson_destroy(doc);
    }
    mongoc_collection_destroy(coll);
    mongo_checkin(s, &c);
    return st;
}

es_status mongo_lease_release(void *impl, const char *name, const char *owner, int64_t epoch,
                              sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    mongoc_collection_t *coll = mongoc_client_get_collection(c.client, s->db_name,
                                                             LEASE_COLLECTION);
    bool done;
    st = renew(coll, name, owner, epoch, 0, &done, err);
    mongoc_collection_destroy(coll);
    mongo_checkin(s, &c);
    return st;
}
