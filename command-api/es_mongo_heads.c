/* es_mongo_heads.c — the outbox's heads without the aggregation, for servers
 * whose pipeline lacks $first or $replaceRoot (FerretDB 1.x); the
 * aggregation and the choice between the two are in es_mongo_outbox.c.
 *
 * The same heads as the aggregation, in the same order, from two finds:
 *   1. every unpublished event's (_id, post, version), in _id order: the
 *      lowest version of each post, and that event's _id, kept in a hash
 *      table of posts (the whole backlog is read, since with several writer
 *      processes a lower version may come later in _id order);
 *   2. the heads themselves, the `limit` lowest of those _ids, by
 *      { _id: { $in } } and still unpublished (a head marked in between is
 *      left out, as if it had been marked before the first find).
 * Two round trips and a read of the backlog's ids per call, where the
 * aggregation reads it on the server. On FerretDB's SQLite backend, which
 * reads the whole collection for every query but one by _id alone, that is
 * two such reads instead of one per post. */
#include "es_mongo_internal.h"

#include "sm_hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct head {
    char *post;
    int64_t version;
    bson_oid_t oid; /* of the event at that version */
} head;

/* Posts by id: heads[] in order of first meeting, slots an open-addressing
 * table over them (index + 1; 0: empty), cap a power of two, at least twice
 * the number of heads. */
typedef struct head_map {
    head *heads;
    size_t len;
    size_t *slots;
    size_t cap;
} head_map;

static void head_map_free(head_map *m)
{
    for (size_t i = 0; i < m->len; i++)
        free(m->heads[i].post);
    free(m->heads);
    free(m->slots);
}

static size_t *head_slot(const head_map *m, const char *post)
{
    size_t i = sm_hash_text(post) & (m->cap - 1);
    while (m->slots[i] && strcmp(m->heads[m->slots[i] - 1].post, post) != 0)
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static bool head_map_grow(head_map *m)
{
    size_t cap = m->cap ? 2 * m->cap : 64;
    head *heads = realloc(m->heads, cap / 2 * sizeof *heads);
    if (!heads)
        return false;
    m->heads = heads;
    size_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < m->len; i++)
        *head_slot(m, m->heads[i].post) = i + 1;
    return true;
}

/* Keeps (version, oid) as the post's head if it is the post's lowest version
 * so far. false on OOM. */
static bool head_map_offer(head_map *m, const char *post, int64_t version, const bson_oid_t *oid)
{
    size_t *slot = m->cap ? head_slot(m, post) : NULL;
    if (slot && *slot) {
        head *h = &m->heads[*slot - 1];
        if (version < h->version) {
            h->version = version;
            bson_oid_copy(oid, &h->oid);
        }
        return true;
    }
    if (2 * (m->len + 1) > m->cap && !head_map_grow(m))
        return false;
    head *h = &m->heads[m->len];
    if (!(h->post = strdup(post)))
        return false;
    h->version = version;
    bson_oid_copy(oid, &h->oid);
    m->len++;
    *head_slot(m, post) = m->len;
    return true;
}

/* Step 1. An event without an ObjectId, a post id or an integer version is
 * corrupt, and fails the call as the aggregation's decoding would. */
static es_status read_backlog(mongo_conn *c, const bson_t *unpublished,
                              const mongoc_read_prefs_t *primary, head_map *m, sm_error *err)
{
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "projection", "{",
                            "aggregateIdentifier", BCON_INT32(1), "version", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c->events, unpublished, opts, primary);
    const bson_t *doc, *reply;
    bson_iter_t id, post;
    bson_error_t e;
    int64_t version;
    es_status st = ES_OK;
    while (st == ES_OK && mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&id, doc, "_id") || !BSON_ITER_HOLDS_OID(&id) ||
            !bson_iter_init_find(&post, doc, "aggregateIdentifier") ||
            !BSON_ITER_HOLDS_UTF8(&post) || !mongo_find_int64(doc, "version", &version)) {
            sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) fetch unpublished: an "
                    "unpublished event without an ObjectId, a post id or an integer version");
            st = ES_INTERNAL;
        } else if (!head_map_offer(m, bson_iter_utf8(&post, NULL), version, bson_iter_oid(&id))) {
            st = mongo_fail_oom(err);
        }
    }
    if (st == ES_OK && mongoc_cursor_error_document(cur, &e, &reply))
        st = mongo_fail(&e, reply, "fetch unpublished (backlog)", err);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    return st;
}

static int by_oid(const void *a, const void *b)
{
    return bson_oid_compare(&((const head *)a)->oid, &((const head *)b)->oid);
}

es_status mongo_heads_by_find(mongo_conn *c, size_t limit, const bson_t *unpublished,
                              sm_event_list *out, sm_error *err)
{
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    head_map m = {0};
    es_status st = read_backlog(c, unpublished, primary, &m, err);
    if (st == ES_OK && m.len > 0) { /* step 2 */
        qsort(m.heads, m.len, sizeof *m.heads, by_oid);
        size_t n = m.len < limit ? m.len : limit;
        bson_t filter, in, ids;
        bson_copy_to(unpublished, &filter);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
        for (size_t i = 0; i < n; i++) {
            char key[24];
            const char *k;
            bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
            BSON_APPEND_OID(&ids, k, &m.heads[i].oid);
        }
        bson_append_array_end(&in, &ids);
        bson_append_document_end(&filter, &in);
        bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c->events, &filter, opts, primary);
        st = mongo_read_events(cur, out, NULL, "fetch unpublished (heads)", NULL, err);
        bson_destroy(opts);
        bson_destroy(&filter);
    }
    head_map_free(&m);
    mongoc_read_prefs_destroy(primary);
    return st;
}
