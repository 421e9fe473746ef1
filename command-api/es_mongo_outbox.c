/* SPDX-License-Identifier: Apache-2.0 */
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
 * Pages (event_store.h, "Outbox"): the next `limit` unpublished events
 * after the cursor (an ObjectId) in _id order, served by the index
 * { published: 1, _id: 1 } (es_mongo.c), then one more find for the posts of
 * the page that have a lower unpublished version outside it ({ $or: one
 * clause per post, version below the lowest the page holds }), which must
 * wait. Finds only: jongodb and FerretDB 1.x answer them alike (their
 * pipelines lack $first or $replaceRoot).
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
#include <stdlib.h>
#include <string.h>

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

/* ---- pages --------------------------------------------------------------- */
typedef struct page_post {
    const char *id;
    int64_t low;     /* lowest version of the post in the page */
    size_t index;    /* in the page */
} page_post;

static int by_post_version(const void *a, const void *b)
{
    const page_post *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : x->low < y->low ? -1 : x->low > y->low;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const page_post *)a)->id, ((const page_post *)b)->id);
}

/* heads[i] for the page (es_outbox_runs): the lowest version of the post in
 * the page, or -1 if the store holds a lower unpublished one. */
static es_status page_heads(mongo_conn *c, const sm_event_list *page, int64_t *heads,
                            sm_error *err)
{
    size_t n = page->len;
    page_post *by = malloc(n * sizeof *by);
    if (!by)
        return mongo_fail_oom(err);
    for (size_t i = 0; i < n; i++)
        by[i] = (page_post){page->items[i].aggregate_id, page->items[i].version, i};
    qsort(by, n, sizeof *by, by_post_version);
    /* The first of each post's group holds its lowest version. One $in
     * over the page's posts below the highest of those lows, sorted out
     * here, rather than an $or of a clause per post: FerretDB evaluates a
     * long $or document by document, and a page of 1000 posts then took
     * longer than the socket timeout. */
    bson_t filter = BSON_INITIALIZER, in, lt;
    bson_t *unpublished = unpublished_filter();
    bson_concat(&filter, unpublished);
    bson_destroy(unpublished);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "aggregateIdentifier", &in);
    bson_t ids;
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    size_t posts = 0;
    int64_t top = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(by[i].id, by[i - 1].id) == 0) {
            by[i].low = by[i - 1].low;
            continue;
        }
        char key[24];
        const char *k;
        bson_uint32_to_string((uint32_t)posts++, &k, key, sizeof key);
        BSON_APPEND_UTF8(&ids, k, by[i].id);
        if (by[i].low > top)
            top = by[i].low;
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(&filter, &in);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "version", &lt);
    BSON_APPEND_INT64(&lt, "$lt", top);
    bson_append_document_end(&filter, &lt);
    for (size_t i = 0; i < n; i++)
        heads[by[i].index] = by[i].low;
    bson_t *opts = BCON_NEW("projection", "{", "aggregateIdentifier", BCON_INT32(1), "version",
                            BCON_INT32(1), "_id", BCON_INT32(0), "}");
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c->events, &filter, opts, primary);
    const bson_t *doc, *reply;
    bson_iter_t it;
    bson_error_t e;
    es_status st = ES_OK;
    /* by[] sorted by post id: each waiting post found by bsearch */
    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "aggregateIdentifier") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        page_post key = {bson_iter_utf8(&it, NULL), 0, 0};
        page_post *hit = bsearch(&key, by, n, sizeof *by, by_id);
        if (!hit || !bson_iter_init_find(&it, doc, "version") ||
            bson_iter_as_int64(&it) >= hit->low)
            continue; /* its own run, or later: not below the page's lowest */
        while (hit > by && strcmp(hit[-1].id, key.id) == 0)
            hit--;
        for (; hit < by + n && strcmp(hit->id, key.id) == 0; hit++)
            heads[hit->index] = -1;
    }
    if (mongoc_cursor_error_document(cur, &e, &reply))
        st = mongo_fail(&e, reply, "fetch unpublished (lower versions)", err);
    mongoc_cursor_destroy(cur);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(opts);
    bson_destroy(&filter);
    free(by);
    return st;
}

es_status mongo_fetch_unpublished(void *impl, es_cursor *cursor, size_t limit,
                                  sm_event_list *out, int64_t *generation, sm_error *err)
{
    mongo_store *s = impl;
    bson_oid_t after;
    if (cursor->token[0] && !bson_oid_is_valid(cursor->token, strlen(cursor->token))) {
        sm_fail(err, SM_ERR_INVALID, "fetch_unpublished: bad cursor '%.40s'", cursor->token);
        return ES_INVALID;
    }
    if (cursor->token[0])
        bson_oid_init_from_string(&after, cursor->token);
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    st = read_generation(s, &c, generation, err); /* before the page */
    sm_event_list page = {0};
    char last[32] = "";
    if (st == ES_OK) {
        bson_t *filter = unpublished_filter();
        if (cursor->token[0]) {
            bson_t gt;
            BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &gt);
            BSON_APPEND_OID(&gt, "$gt", &after);
            bson_append_document_end(filter, &gt);
        }
        bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit",
                                BCON_INT64(limit > INT64_MAX ? INT64_MAX : (int64_t)limit));
        mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c.events, filter, opts, primary);
        st = mongo_read_events(cur, &page, last, "fetch unpublished", NULL, err);
        mongoc_read_prefs_destroy(primary);
        bson_destroy(opts);
        bson_destroy(filter);
    }
    int64_t *heads = NULL;
    if (st == ES_OK && page.len > 0) {
        if (!(heads = malloc(page.len * sizeof *heads)))
            st = mongo_fail_oom(err);
        else
            st = page_heads(&c, &page, heads, err);
    }
    mongo_checkin(s, &c);
    size_t looked = page.len;
    if (st == ES_OK && looked > 0 && !es_outbox_runs(&page, heads))
        st = mongo_fail_oom(err);
    free(heads);
    if (st == ES_OK && !es_outbox_move(out, &page))
        st = mongo_fail_oom(err);
    sm_event_list_free(&page);
    if (st == ES_OK) {
        if (looked < limit)
            cursor->token[0] = '\0'; /* the end: the next page starts a new pass */
        else
            snprintf(cursor->token, sizeof cursor->token, "%s", last);
    }
    return st;
}

/* ---- marking -------------------------------------------------------------- */
/* Bulk writes of an update per run of consecutive versions of a post, each
 * found by the unique index and refused for every event a reset after
 * `generation` reached (see the top); nMatched counts the events. Marking a
 * published event again matches it and changes nothing: idempotent.
 *
 * Runs per bulk write. A server without fast updates (FerretDB: some ms
 * each) took most of the 5 s socket timeout for a round of 600 runs in one
 * command; several shorter commands cost the same and each answers in time.
 * Nothing is lost by the split: each update is refused on its own after a
 * reset, and marking again is harmless. */
#define MARK_RUNS_PER_WRITE 64

/* One bulk write of the runs of evs[from..*to), at most MARK_RUNS_PER_WRITE
 * of them; *to is set to where it stopped, *matched to the events found. */
static es_status mark_chunk(mongo_conn *c, const sm_event *evs, size_t n, size_t from,
                            size_t *to, int64_t generation, int64_t *matched, sm_error *err)
{
    bson_t *set = BCON_NEW("$set", "{", "published", BCON_BOOL(true), "}");
    mongoc_bulk_operation_t *bulk =
        mongoc_collection_create_bulk_operation_with_opts(c->events, NULL);
    bson_error_t e;
    bool ok = true;
    size_t i = from, j, runs = 0;
    for (; ok && i < n && runs < MARK_RUNS_PER_WRITE; i = j, runs++) {
        /* evs[i..j): consecutive versions of one post, one update */
        for (j = i + 1; j < n && evs[j].version == evs[j - 1].version + 1 &&
                        strcmp(evs[j].aggregate_id, evs[i].aggregate_id) == 0;
             j++)
            ;
        bson_t *sel = BCON_NEW("aggregateIdentifier", BCON_UTF8(evs[i].aggregate_id), "version",
                               "{", "$gte", BCON_INT64(evs[i].version), "$lte",
                               BCON_INT64(evs[j - 1].version), "}", "$or", "[",
                               "{", "resetGen", "{", "$exists", BCON_BOOL(false), "}", "}",
                               "{", "resetGen", "{", "$lte", BCON_INT64(generation), "}", "}",
                               "]");
        ok = j - i == 1 ? mongoc_bulk_operation_update_one_with_opts(bulk, sel, set, NULL, &e)
                        : mongoc_bulk_operation_update_many_with_opts(bulk, sel, set, NULL, &e);
        bson_destroy(sel);
    }
    *to = i;
    es_status st = ES_OK;
    if (!ok) {
        st = mongo_fail(&e, NULL, "mark published", err);
    } else {
        bson_t reply; /* initialised by execute on every path */
        if (!mongoc_bulk_operation_execute(bulk, &reply, &e))
            st = mongo_fail(&e, &reply, "mark published", err);
        else if (!mongo_find_int64(&reply, "nMatched", matched))
            *matched = (int64_t)(i - from); /* no count: nothing to doubt */
        bson_destroy(&reply);
    }
    mongoc_bulk_operation_destroy(bulk);
    bson_destroy(set);
    return st;
}

es_status mongo_mark_published(void *impl, const sm_event *evs, size_t n, int64_t generation,
                               sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    for (size_t from = 0, to; st == ES_OK && from < n; from = to) {
        int64_t matched = 0;
        st = mark_chunk(&c, evs, n, from, &to, generation, &matched, err);
        if (st == ES_OK && matched < (int64_t)(to - from)) {
            sm_fail(err, SM_ERR_CONFLICT, "the outbox was reset since these events were fetched "
                    "(generation %lld): %lld of %zu stay unpublished", (long long)generation,
                    (long long)((int64_t)(to - from) - matched), to - from);
            st = ES_CONFLICT;
        }
    }
    mongo_checkin(s, &c);
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
