/* SPDX-License-Identifier: Apache-2.0 */
/* es_mongo.c — the MongoDB event store adapter ("mongodb://...").
 *
 * One document per event in collection "eventStore" of the URI's database
 * (default "socialMedia"):
 *   { _id: ObjectId, eventId, aggregateIdentifier, aggregateType:
 *     "PostAggregate", version: int64, eventType: "PostLikedEvent",
 *     timeStamp: Date, eventData: { ...payload as in sm_event.h... },
 *     metadata: { userId, requestId, traceparent }, published: false }
 * metadata is the envelope's (sm_event_meta); documents written before it
 * existed have none and read with empty metadata. Every read path (load,
 * read_all, the outbox pages) decodes whole
 * documents through mongo_read_events, so the relay publishes it.
 * The unique index { aggregateIdentifier: 1, version: 1 } is what makes
 * optimistic concurrency hold across processes: of two writers of version n
 * the server lets exactly one in, and the other gets ES_CONFLICT. The
 * outbox's flag `published` and its index, and the "meta" collection, are
 * described in es_mongo_outbox.c, which implements those operations; the
 * two files share es_mongo_internal.h.
 *
 * Threads: the store is shared by every HTTP worker, so it owns a
 * mongoc_client_pool_t and each call pops a client and pushes it back. The
 * pool's background monitor notices a server coming back, so the store
 * recovers without a reopen. Unless the URI says otherwise, server selection
 * and connect time out after 2 s and socket reads after 5 s, so a dead or
 * hung server turns into a quick ES_UNAVAILABLE instead of a long hang.
 *
 * Atomic batches: an append of n > 1 events runs in a transaction, which real
 * MongoDB only offers on a replica set or mongos (the compose stack runs a
 * single-node replica set). A standalone server, and FerretDB 1.x, which has
 * no transactions at all (it refuses the insert's startTransaction field),
 * take single-event appends and refuse batches whole, with an error that
 * says why: nothing of the batch is written. The atomicity is never traded
 * for a plain insert_many, which another process could interleave with.
 * command-api appends one event per command; only tools (bench/seed_store)
 * and the port's contract test send batches.
 *
 * The indexes (the unique one and the outbox's): created on open if the
 * server is up, else by the first append that reaches it, so a server that is
 * down at start is not an error. They are asserted again (createIndexes is
 * idempotent) after the monitor sees the server change, e.g. come back from
 * an outage: a server that lost its data (in-memory test servers, a dropped
 * database) must not silently lose the uniqueness guarantee. */
#include "es_mongo_internal.h"

#include "sm_deadline.h"
#include "sm_hash.h"
#include "sm_log.h"
#include "sm_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEFAULT_DB "socialMedia"
#define COLLECTION "eventStore"
#define INDEX_NAME "aggregate_version_unique"
#define OUTBOX_INDEX_NAME "outbox_unpublished"
#define OUTBOX_PAGE_INDEX_NAME "outbox_pages"
#define AGGREGATE_TYPE "PostAggregate"
#define APPNAME "smpost-command-api"
#define TIMEOUT_MS 2000         /* server selection and connect */
#define SOCKET_TIMEOUT_MS 5000  /* a server that hangs rather than dies */
/* w:"majority" waits for the secondaries at most this long, under the
 * socket timeout, so a slow majority is a write concern error (outcome
 * unknown: ES_UNAVAILABLE) rather than a dropped connection */
#define WRITE_TIMEOUT_MS 4000
/* A borrower waits this long at most for a free client (less when its
 * request's deadline comes first). */
#define POOL_WAIT_MS 5000
#define OID_HEX 25              /* 24 hex digits + NUL */

enum { DUPLICATE_KEY = 11000, WRITE_CONFLICT = 112 };

/* ---- process-wide driver setup ------------------------------------------- */
/* mongoc's own messages go to our log so stderr keeps one format. Its debug
 * and trace chatter is dropped, and the "endSessions" warning that servers
 * lacking the command (jongodb, FerretDB) cause when a pool is destroyed is
 * demoted: it only means server-side sessions expire on their own. A URI
 * in a message has its password hidden (sm_log_redact_url). */
static void mongoc_log_to_sm(mongoc_log_level_t level, const char *domain, const char *message,
                             void *unused)
{
    (void)unused;
    if (level >= MONGOC_LOG_LEVEL_DEBUG) /* DEBUG, TRACE */
        return;
    sm_log_level ours = level <= MONGOC_LOG_LEVEL_CRITICAL  ? SM_LOG_ERROR
                        : level == MONGOC_LOG_LEVEL_WARNING ? SM_LOG_WARN
                                                            : SM_LOG_INFO;
    if (message && strstr(message, "endSessions"))
        ours = SM_LOG_DEBUG;
    if (!sm_log_enabled(ours))
        return;
    char redacted[600], quoted[600];
    sm_log(ours, "mongoc_log", "domain=%s msg=%s", domain ? domain : "-",
           sm_log_quote(sm_log_redact_url(message ? message : "", redacted, sizeof redacted),
                        quoted, sizeof quoted));
}

/* Debian's libmongoc initializes itself in a library constructor, before
 * main, and maps a shared-memory segment /mongoc-<pid> for its counters,
 * whose name only mongoc_cleanup() removes: a process that is killed, or
 * that never calls it (we do not, see below), left a file in /dev/shm at
 * every start (this machine had 1,701), and a later process whose pid
 * matched one found the name taken and printed libmongoc's "Falling back
 * to malloc for counters" on stderr before its own first line. The name is
 * not needed once the segment is mapped; this runs after the libraries'
 * constructors. */
__attribute__((constructor)) static void release_counters_name(void)
{
    char name[32];
    snprintf(name, sizeof name, "/mongoc-%u", (unsigned)getpid());
    shm_unlink(name);
}

static pthread_once_t driver_once = PTHREAD_ONCE_INIT;

/* mongoc_cleanup() is never called: other stores (or threads) may still use
 * the driver at exit, and the OS reclaims the little it holds. The log
 * handler is process-wide too, which is what we want for every mongoc user. */
static void driver_init(void)
{
    mongoc_init();
    mongoc_log_set_handler(mongoc_log_to_sm, NULL);
}

/* ---- errors -------------------------------------------------------------- */
/* reply may be NULL. A duplicate key is recognised by its code alone: real
 * MongoDB reports it in writeErrors, jongodb as a command error, and the
 * driver gives both the same code. WriteConflict is what a transaction gets
 * when a concurrent one took the same (aggregate, version) key first: also a
 * lost race. The server codes below mean "this node cannot serve you right
 * now" (shutdown, step-down, its own network trouble): retry later. */
static es_status map_error(const bson_error_t *e, const bson_t *reply)
{
    if (e->code == DUPLICATE_KEY ||
        (e->domain == MONGOC_ERROR_SERVER && e->code == WRITE_CONFLICT))
        return ES_CONFLICT;
    if (e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION)
        return ES_UNAVAILABLE;
    if (e->domain == MONGOC_ERROR_SERVER) {
        switch (e->code) {
        case 6: case 7: case 89: case 91: case 189: case 262: case 9001: case 10107:
        case 11600: case 11602: case 13435: case 13436: return ES_UNAVAILABLE;
        default: break;
        }
    }
    if (reply && (mongoc_error_has_label(reply, "TransientTransactionError") ||
                  mongoc_error_has_label(reply, "RetryableWriteError")))
        return ES_UNAVAILABLE;
    return ES_INTERNAL;
}

es_status mongo_fail(const bson_error_t *e, const bson_t *reply, const char *op, sm_error *err)
{
    es_status st = map_error(e, reply);
    sm_fail(err, es_to_sm_status(st), "event store (mongodb) %s failed: %s", op, e->message);
    return st;
}

es_status mongo_fail_oom(sm_error *err)
{
    sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb): out of memory");
    return ES_INTERNAL;
}

es_status mongo_checkout(mongo_store *s, mongo_conn *c, sm_error *err)
{
    /* mongoc_client_pool_pop() waits for ever while every client is out
     * (maxPoolSize, each maybe waiting out a slow server): poll instead,
     * and give up with the request's deadline (sm_deadline.h) */
    int64_t until = sm_deadline_cap(sm_mono_ms() + POOL_WAIT_MS);
    c->events = NULL;
    for (int64_t pause = 1; !(c->client = mongoc_client_pool_try_pop(s->pool)); pause *= 2) {
        int64_t left = until - sm_mono_ms();
        if (left <= 0) {
            sm_fail(err, SM_ERR_UNAVAILABLE, "event store (mongodb): every connection of the pool "
                    "is busy; retry");
            return ES_UNAVAILABLE;
        }
        sm_sleep_ms(pause < 20 ? (pause < left ? pause : left) : (20 < left ? 20 : left));
    }
    c->events = mongoc_client_get_collection(c->client, s->db_name, COLLECTION);
    return ES_OK;
}

void mongo_checkin(mongo_store *s, mongo_conn *c)
{
    mongoc_collection_destroy(c->events);
    mongoc_client_pool_push(s->pool, c->client);
}

/* ---- the indexes --------------------------------------------------------- */
/* Called from the pool's monitor thread whenever a server's description
 * changes (discovered, lost, back, elected). */
static void server_changed(const mongoc_apm_server_changed_t *event)
{
    mongo_store *s = mongoc_apm_server_changed_get_context(event);
    atomic_fetch_add(&s->epoch, 1);
}

/* Each index has a createIndexes command of its own, never one command
 * listing several. MongoDB accepts either, but FerretDB 1.x (1.24.2 at
 * least; FerretDB issue #3858) filters the indexes that already exist out
 * of a list by their position in the original list: once two listed
 * indexes exist, as every reopen finds them, it panics and drops the
 * connection, or, where existing and new indexes alternate, answers ok and
 * silently skips a new one. A unique index silently missing would be
 * optimistic concurrency silently gone; one index per command is read
 * alike by every server. Idempotent: an identical index already there is
 * success. */
es_status mongo_create_index(mongo_store *s, mongoc_client_t *client, const char *collection,
                             const bson_t *key, const char *name, bool unique, sm_error *err)
{
    bson_t spec = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT(&spec, "key", key);
    BSON_APPEND_UTF8(&spec, "name", name);
    if (unique) /* only when set: the specs stay those existing deployments have */
        BSON_APPEND_BOOL(&spec, "unique", true);
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(collection), "indexes", "[",
                           BCON_DOCUMENT(&spec), "]");
    bson_destroy(&spec);
    mongoc_database_t *db = mongoc_client_get_database(client, s->db_name);
    bson_t reply;
    bson_error_t e;
    es_status st = ES_OK;
    if (!mongoc_database_write_command_with_opts(db, cmd, NULL, &reply, &e)) {
        char op[96];
        snprintf(op, sizeof op, "create index %s", name);
        st = mongo_fail(&e, &reply, op, err);
    }
    bson_destroy(&reply);
    mongoc_database_destroy(db);
    bson_destroy(cmd);
    return st;
}

/* The unique index first: it is the one appends wait for. The outbox's
 * index serves its queries (es_mongo_outbox.c says how). */
static es_status create_indexes(mongo_store *s, mongoc_client_t *client, sm_error *err)
{
    bson_t *unique = BCON_NEW("aggregateIdentifier", BCON_INT32(1), "version", BCON_INT32(1));
    bson_t *outbox = BCON_NEW("published", BCON_INT32(1), "aggregateIdentifier", BCON_INT32(1),
                              "version", BCON_INT32(1));
    bson_t *pages = BCON_NEW("published", BCON_INT32(1), "_id", BCON_INT32(1));
    es_status st = mongo_create_index(s, client, COLLECTION, unique, INDEX_NAME, true, err);
    if (st == ES_OK)
        st = mongo_create_index(s, client, COLLECTION, outbox, OUTBOX_INDEX_NAME, false, err);
    if (st == ES_OK)
        st = mongo_create_index(s, client, COLLECTION, pages, OUTBOX_PAGE_INDEX_NAME, false, err);
    bson_destroy(pages);
    bson_destroy(outbox);
    bson_destroy(unique);
    return st;
}

/* FerretDB (1.x, which names itself in buildInfo's ferretdbVersion) speaks
 * the protocol but lacks two things the adapter's guarantees rest on:
 * multi-document transactions (multi-event appends are refused, see
 * insert_docs) and atomic single-document updates (it reads a document and
 * writes it back without isolation, so two conditional updates of one
 * document can both apply: a lease taken over by two instances at once, a
 * relay's mark undoing a concurrent reset's). Appends and their unique
 * index hold. Said once per store, at warn, so nobody runs on it unaware;
 * docs/operations.md, "MongoDB stand-ins", has the details. A server that
 * does not answer buildInfo is asked again with the next indexes. */
static void warn_server_limits(mongo_store *s, mongoc_client_t *client)
{
    if (atomic_load(&s->server_checked))
        return;
    bson_t *cmd = BCON_NEW("buildInfo", BCON_INT32(1));
    bson_t reply;
    bson_iter_t it;
    bool answered = mongoc_client_command_simple(client, "admin", cmd, NULL, &reply, NULL);
    if (answered && !atomic_exchange(&s->server_checked, true) &&
        bson_iter_init_find(&it, &reply, "ferretdbVersion") && BSON_ITER_HOLDS_UTF8(&it)) {
        char quoted[80];
        sm_log(SM_LOG_WARN, "event_store_server_limits", "adapter=mongodb db=%s server=ferretdb "
               "version=%s lacks=transactions,atomic_updates multi_event_appends=refused "
               "lease_takeover=not_exclusive outbox_marks_vs_reset=racy "
               "see=docs/operations.md#mongodb-stand-ins", s->db_name,
               sm_log_quote(bson_iter_utf8(&it, NULL), quoted, sizeof quoted));
    }
    bson_destroy(&reply);
    bson_destroy(cmd);
}

/* Appends must not run before the unique index exists, since it alone
 * rejects the second writer of a version. No lock: createIndexes is
 * idempotent, and concurrent attempts against a dead server then cost each
 * request one timeout instead of queueing behind each other. Reading the
 * epoch first means a server change during the command forces a redo. */
static es_status ensure_indexes(mongo_store *s, mongoc_client_t *client, sm_error *err)
{
    unsigned epoch = atomic_load(&s->epoch);
    if (atomic_load(&s->indexed_epoch) == epoch)
        return ES_OK;
    es_status st = create_indexes(s, client, err);
    if (st == ES_OK) {
        atomic_store(&s->indexed_epoch, epoch);
        sm_log(SM_LOG_INFO, "event_store_index", "adapter=mongodb db=%s indexes=%s,%s,%s",
               s->db_name, INDEX_NAME, OUTBOX_INDEX_NAME, OUTBOX_PAGE_INDEX_NAME);
        warn_server_limits(s, client);
    }
    return st;
}

/* ---- documents ----------------------------------------------------------- */
/* The payload goes through sm_event_data_to_json so field names and formats
 * are defined in one place (sm_event.c). Returns NULL on OOM. */
/* j as a BSON document in *out (which the caller destroys on true);
 * releases j. */
static bool bson_from_json_new(json_t *j, bson_t *out)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    bool ok = text && bson_init_from_json(out, text, -1, NULL);
    free(text);
    return ok;
}

static bson_t *build_doc(const sm_event *ev)
{
    bson_t payload, meta;
    if (!bson_from_json_new(sm_event_data_to_json(ev), &payload))
        return NULL;
    if (!bson_from_json_new(sm_event_meta_to_json(&ev->meta), &meta)) {
        bson_destroy(&payload);
        return NULL;
    }
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_t *doc = bson_new();
    bool ok = BSON_APPEND_OID(doc, "_id", &oid) && BSON_APPEND_UTF8(doc, "eventId", ev->event_id) &&
         BSON_APPEND_UTF8(doc, "aggregateIdentifier", ev->aggregate_id) &&
         BSON_APPEND_UTF8(doc, "aggregateType", AGGREGATE_TYPE) &&
         BSON_APPEND_INT64(doc, "version", ev->version) &&
         BSON_APPEND_UTF8(doc, "eventType", sm_event_type_name(ev->type)) &&
         BSON_APPEND_DATE_TIME(doc, "timeStamp", ev->timestamp_ms) &&
         BSON_APPEND_DOCUMENT(doc, "eventData", &payload) &&
         BSON_APPEND_DOCUMENT(doc, "metadata", &meta) &&
         BSON_APPEND_BOOL(doc, "published", false);
    bson_destroy(&payload);
    bson_destroy(&meta);
    if (!ok) {
        bson_destroy(doc);
        doc = NULL;
    }
    return doc;
}

static const char *find_utf8(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

/* int32 is accepted too, in case another writer (a shell, a migration)
 * stored small numbers that way. */
bool mongo_find_int64(const bson_t *doc, const char *key, int64_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_INT(&it))
        return false;
    *out = bson_iter_as_int64(&it);
    return true;
}

/* The subdocument doc[key] as JSON, or NULL if it is absent, not a
 * document, or does not convert. */
static json_t *subdoc_json(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return NULL;
    uint32_t len;
    const uint8_t *raw;
    bson_iter_document(&it, &len, &raw);
    bson_t data;
    if (!bson_init_static(&data, raw, len))
        return NULL;
    char *text = bson_as_relaxed_extended_json(&data, NULL);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    bson_free(text);
    return j;
}

/* Fills the zeroed ev from doc. On failure ev may hold strings (the caller
 * clears it) and *why names the bad field. */
static bool decode_doc(const bson_t *doc, sm_event *ev, const char **why)
{
    const char *id = find_utf8(doc, "eventId"), *agg = find_utf8(doc, "aggregateIdentifier");
    bson_iter_t it;
    *why = "eventId";
    if (!id || !sm_uuid_parse(id, ev->event_id))
        return false;
    *why = "aggregateIdentifier";
    if (!agg || !sm_uuid_parse(agg, ev->aggregate_id))
        return false;
    *why = "version";
    if (!mongo_find_int64(doc, "version", &ev->version) || ev->version < 0)
        return false;
    *why = "eventType";
    if ((ev->type = sm_event_type_from_name(find_utf8(doc, "eventType"))) == SM_EV_NONE)
        return false;
    *why = "timeStamp";
    if (!bson_iter_init_find(&it, doc, "timeStamp") || !BSON_ITER_HOLDS_DATE_TIME(&it))
        return false;
    ev->timestamp_ms = bson_iter_date_time(&it);
    *why = "eventData";
    json_t *data = subdoc_json(doc, "eventData");
    sm_error ignored;
    bool ok = data && sm_event_data_from_json(ev, data, &ignored) == SM_OK;
    json_decref(data);
    if (!ok)
        return false;
    /* absent or null: stored before events carried metadata */
    *why = "metadata";
    if (!bson_iter_init_find(&it, doc, "metadata") || BSON_ITER_HOLDS_NULL(&it))
        return true;
    json_t *meta = subdoc_json(doc, "metadata");
    ok = meta && sm_event_meta_from_json(&ev->meta, meta, &ignored) == SM_OK;
    json_decref(meta);
    return ok;
}

static void oid_text(const bson_t *doc, char out[OID_HEX])
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
        bson_oid_to_string(bson_iter_oid(&it), out);
    else
        snprintf(out, OID_HEX, "%s", "(not an ObjectId)");
}

/* Decodes a cursor of event documents, all or nothing, and destroys it. Used
 * by the finds here and the outbox's aggregation. */
es_status mongo_read_events(mongoc_cursor_t *cur, sm_event_list *out, char *last_id,
                            const char *op, bson_error_t *cause, sm_error *err)
{
    size_t start = out->len;
    es_status st = ES_OK;
    const bson_t *doc, *reply;
    while (st == ES_OK && mongoc_cursor_next(cur, &doc)) {
        sm_event *ev = sm_event_list_push(out);
        const char *why;
        char oid[OID_HEX];
        if (!ev) {
            st = mongo_fail_oom(err);
        } else if (!decode_doc(doc, ev, &why)) {
            oid_text(doc, oid);
            sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) %s: corrupt event _id=%s (%s)",
                    op, oid, why);
            st = ES_INTERNAL;
        } else if (last_id) {
            oid_text(doc, last_id);
        }
    }
    bson_error_t e;
    if (st == ES_OK && mongoc_cursor_error_document(cur, &e, &reply)) {
        st = mongo_fail(&e, reply, op, err);
        if (cause)
            *cause = e;
    }
    mongoc_cursor_destroy(cur);
    if (st != ES_OK)
        while (out->len > start)
            sm_event_clear(&out->items[--out->len]);
    return st;
}

/* ---- append -------------------------------------------------------------- */
/* The unique index alone would catch a stream that moved past
 * expected_version (it already holds expected+1); this check is for a
 * stream that is behind, and gives the clearer message in both cases. The
 * last version comes from sort + limit 1 (jongodb lacks $max; the index
 * serves it on MongoDB), read on the primary whatever the URI's read
 * preference, since it decides a write. */
static es_status check_expected(mongoc_collection_t *coll, const char *aggregate_id,
                                int64_t expected, sm_error *err)
{
    bson_t *filter = BCON_NEW("aggregateIdentifier", BCON_UTF8(aggregate_id));
    bson_t *opts = BCON_NEW("sort", "{", "version", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                            "projection", "{", "version", BCON_INT32(1), "}");
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, primary);
    const bson_t *doc, *reply;
    bson_error_t e;
    int64_t current = -1;
    es_status st = ES_OK;
    if (mongoc_cursor_next(cur, &doc) && !mongo_find_int64(doc, "version", &current)) {
        sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) version check: stream %s has an "
                "event without an integer version", aggregate_id);
        st = ES_INTERNAL;
    } else if (mongoc_cursor_error_document(cur, &e, &reply)) {
        st = mongo_fail(&e, reply, "version check", err);
    } else if (current != expected) {
        sm_fail(err, SM_ERR_CONFLICT, "stream %s is at version %lld, expected %lld",
                aggregate_id, (long long)current, (long long)expected);
        st = ES_CONFLICT;
    }
    mongoc_cursor_destroy(cur);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(opts);
    bson_destroy(filter);
    return st;
}

/* Runs the batch in a transaction. reply is initialised on every path. */
static bool insert_batch(mongo_conn *c, bson_t **docs, size_t n, bson_t *reply, bson_error_t *e)
{
    bson_init(reply);
    mongoc_client_session_t *cs = mongoc_client_start_session(c->client, NULL, e);
    if (!cs)
        return false;
    bson_t opts = BSON_INITIALIZER;
    bool ok = mongoc_client_session_append(cs, &opts, e) &&
              mongoc_client_session_start_transaction(cs, NULL, e);
    if (ok) {
        bson_destroy(reply);
        ok = mongoc_collection_insert_many(c->events, (const bson_t **)docs, n, &opts, reply, e);
    }
    if (ok) {
        bson_destroy(reply);
        ok = mongoc_client_session_commit_transaction(cs, reply, e);
    } else if (mongoc_client_session_in_transaction(cs)) {
        mongoc_client_session_abort_transaction(cs, NULL);
    }
    bson_destroy(&opts);
    mongoc_client_session_destroy(cs);
    return ok;
}

static es_status insert_docs(mongo_conn *c, bson_t **docs, const sm_event *evs, size_t n,
                             sm_error *err)
{
    bson_error_t e;
    bson_t reply;
    bool ok = n == 1 ? mongoc_collection_insert_one(c->events, docs[0], NULL, &reply, &e)
                     : insert_batch(c, docs, n, &reply, &e);
    es_status st = ok ? ES_OK : map_error(&e, &reply);
    char versions[48];
    snprintf(versions, sizeof versions, n == 1 ? "version %lld" : "versions %lld..%lld",
             (long long)evs[0].version, (long long)evs[n - 1].version);
    if (st == ES_CONFLICT)
        sm_fail(err, SM_ERR_CONFLICT, "stream %s: %s already taken (a concurrent append won); "
                "nothing was appended", evs[0].aggregate_id, versions);
    else if (st == ES_INTERNAL && n > 1) /* most likely the transaction itself */
        sm_fail(err, SM_ERR_INTERNAL, "event store (mongodb) batch insert of %s failed: %s "
                "(multi-event appends need multi-document transactions: a replica set or "
                "mongos, not a standalone server; FerretDB 1.x has none)", versions, e.message);
    else if (st != ES_OK)
        mongo_fail(&e, &reply, n == 1 ? "insert" : "batch insert (transaction)", err);
    bson_destroy(&reply);
    return st;
}

static es_status write_events(mongo_conn *c, const sm_event *evs, size_t n, sm_error *err)
{
    bson_t **docs = calloc(n, sizeof *docs);
    size_t built = 0;
    while (docs && built < n && (docs[built] = build_doc(&evs[built])))
        built++;
    es_status st = built == n ? insert_docs(c, docs, evs, n, err) : mongo_fail_oom(err);
    for (size_t i = 0; docs && i < built; i++)
        bson_destroy(docs[i]);
    free(docs);
    return st;
}

/* Appends to one stream from this process take turns. MongoDB does not need
 * this (the unique index and WriteConflict settle races), but jongodb's
 * transactions do not check the unique index against concurrent writers: a
 * committing batch silently replaces the other writer's events and both are
 * told they won. Taking turns makes the second writer see the first one's
 * events; it cannot help across processes. Striped, so unrelated streams
 * seldom wait for each other. */
static pthread_mutex_t *stream_lock(mongo_store *s, const char *aggregate_id)
{
    return &s->stream_locks[sm_hash_text(aggregate_id) % ES_MONGO_STREAM_LOCKS];
}

static es_status mongo_append(void *impl, const char *aggregate_id, int64_t expected,
                              const sm_event *evs, size_t n, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    st = ensure_indexes(s, c.client, err);
    if (st == ES_OK) {
        pthread_mutex_t *lock = stream_lock(s, aggregate_id);
        pthread_mutex_lock(lock);
        if (expected >= 0)
            st = check_expected(c.events, aggregate_id, expected, err);
        if (st == ES_OK)
            st = write_events(&c, evs, n, err);
        pthread_mutex_unlock(lock);
    }
    mongo_checkin(s, &c);
    return st;
}

/* ---- reads --------------------------------------------------------------- */
static int64_t limit_of(size_t limit) { return limit > INT64_MAX ? INT64_MAX : (int64_t)limit; }

static es_status mongo_load(void *impl, const char *aggregate_id, int64_t from_version,
                            size_t limit, sm_event_list *out, sm_error *err)
{
    mongo_store *s = impl;
    bson_t *filter = BCON_NEW("aggregateIdentifier", BCON_UTF8(aggregate_id), "version", "{",
                              "$gte", BCON_INT64(from_version), "}");
    bson_t *opts = BCON_NEW("sort", "{", "version", BCON_INT32(1), "}");
    if (limit > 0)
        BSON_APPEND_INT64(opts, "limit", limit_of(limit));
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st == ES_OK) {
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c.events, filter, opts, NULL);
        st = mongo_read_events(cur, out, NULL, "load", NULL, err);
        mongo_checkin(s, &c);
    }
    bson_destroy(opts);
    bson_destroy(filter);
    return st;
}

static es_status mongo_read_all(void *impl, const es_cursor *after, size_t limit,
                                sm_event_list *out, es_cursor *next, sm_error *err)
{
    mongo_store *s = impl;
    bson_t filter = BSON_INITIALIZER;
    if (after && after->token[0]) {
        size_t len = strnlen(after->token, sizeof after->token);
        if (len != OID_HEX - 1 || !bson_oid_is_valid(after->token, len)) {
            sm_fail(err, SM_ERR_INVALID, "read_all: bad cursor '%.40s' (expected an ObjectId)",
                    after->token);
            return ES_INVALID;
        }
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, after->token);
        BCON_APPEND(&filter, "_id", "{", "$gt", BCON_OID(&oid), "}");
    }
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit",
                            BCON_INT64(limit_of(limit)));
    char last[OID_HEX] = "";
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st == ES_OK) {
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c.events, &filter, opts, NULL);
        st = mongo_read_events(cur, out, last, "read_all", NULL, err);
        mongo_checkin(s, &c);
    }
    if (st == ES_OK && last[0] && next)
        snprintf(next->token, sizeof next->token, "%s", last);
    bson_destroy(opts);
    bson_destroy(&filter);
    return st;
}

static es_status mongo_ping(void *impl, sm_error *err)
{
    mongo_store *s = impl;
    mongo_conn c;
    es_status st = mongo_checkout(s, &c, err);
    if (st != ES_OK)
        return st;
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_t reply;
    bson_error_t e;
    if (!mongoc_client_command_simple(c.client, "admin", cmd, NULL, &reply, &e))
        st = mongo_fail(&e, &reply, "ping", err);
    mongo_checkin(s, &c);
    bson_destroy(&reply);
    bson_destroy(cmd);
    return st;
}

/* ---- open / close -------------------------------------------------------- */
static void mongo_close(void *impl)
{
    mongo_store *s = impl;
    if (s->pool)
        mongoc_client_pool_destroy(s->pool);
    for (int i = 0; i < ES_MONGO_STREAM_LOCKS; i++)
        pthread_mutex_destroy(&s->stream_locks[i]);
    free(s->db_name);
    free(s);
}

static const es_ops mongo_ops = {
    .name = "mongodb",
    .append = mongo_append,
    .load = mongo_load,
    .read_all = mongo_read_all,
    .ping = mongo_ping,
    .close = mongo_close,
    .fetch_unpublished = mongo_fetch_unpublished,
    .mark_published = mongo_mark_published,
    .reset_published = mongo_reset_published,
    .outbox_stats = mongo_outbox_stats,
    .get_meta = mongo_get_meta,
    .set_meta = mongo_set_meta,
    .save_snapshot = mongo_save_snapshot,
    .load_snapshot = mongo_load_snapshot,
    .version_at = mongo_version_at,
    .lease_acquire = mongo_lease_acquire,
    .lease_release = mongo_lease_release,
};

void es_mongo_apply_uri_defaults(mongoc_uri_t *uri)
{
    /* With no write concern, the server's default applies (w:1 before
     * MongoDB 5.0, and whatever the replica set's getLastErrorDefaults or
     * setDefaultRWConcern say): an event answered 201 could be on the
     * primary alone, and rolled back by a failover. */
    const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern(uri);
    if (mongoc_write_concern_get_w(wc) == MONGOC_WRITE_CONCERN_W_DEFAULT &&
        !mongoc_write_concern_get_wtag(wc) && !mongoc_write_concern_journal_is_set(wc)) {
        mongoc_write_concern_t *majority = mongoc_write_concern_new();
        mongoc_write_concern_set_wmajority(majority, WRITE_TIMEOUT_MS);
        mongoc_write_concern_set_journal(majority, true);
        mongoc_uri_set_write_concern(uri, majority);
        mongoc_write_concern_destroy(majority);
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, TIMEOUT_MS);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, TIMEOUT_MS);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, SOCKET_TIMEOUT_MS);
    if (!mongoc_uri_get_appname(uri))
        mongoc_uri_set_appname(uri, APPNAME);
}

static es_status make_store(const mongoc_uri_t *uri, mongo_store **out, sm_error *err)
{
    mongo_store *s = calloc(1, sizeof *s);
    const char *db = mongoc_uri_get_database(uri);
    if (!s || !(s->db_name = strdup(db && *db ? db : DEFAULT_DB))) {
        free(s);
        return mongo_fail_oom(err);
    }
    atomic_init(&s->epoch, 1); /* indexed_epoch 0: not yet */
    for (int i = 0; i < ES_MONGO_STREAM_LOCKS; i++)
        pthread_mutex_init(&s->stream_locks[i], NULL);
    bson_error_t e;
    if (!(s->pool = mongoc_client_pool_new_with_error(uri, &e))) {
        sm_fail(err, SM_ERR_INVALID, "event store (mongodb): cannot create client pool: %s",
                e.message);
        mongo_close(s);
        return ES_INVALID;
    }
    mongoc_client_pool_set_error_api(s->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
    mongoc_apm_set_server_changed_cb(cbs, server_changed);
    mongoc_client_pool_set_apm_callbacks(s->pool, cbs, s); /* copies cbs */
    mongoc_apm_callbacks_destroy(cbs);
    *out = s;
    return ES_OK;
}

es_status es_mongo_open(const char *uri_text, es_store **out, sm_error *err)
{
    *out = NULL;
    pthread_once(&driver_once, driver_init);
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_text, &e);
    if (!uri) {
        sm_fail(err, SM_ERR_INVALID, "event store URL is not a valid MongoDB URI: %s",
                e.message);
        return ES_INVALID;
    }
    es_mongo_apply_uri_defaults(uri);
    const char *db = mongoc_uri_get_database(uri);
    es_status st = mongo_tls_preflight(uri, db && *db ? db : DEFAULT_DB, err);
    mongo_store *s = NULL;
    if (st == ES_OK)
        st = make_store(uri, &s, err);
    if (st != ES_OK) {
        mongoc_uri_destroy(uri);
        return st;
    }
    /* A server that is down gets the index on the first append instead.
     * Anything else (a conflicting index, bad credentials, a certificate
     * the CA did not sign: es_mongo_tls.c) is a configuration error worth
     * failing the start for. */
    sm_error first;
    mongo_conn c;
    st = mongo_checkout(s, &c, &first);
    if (st == ES_OK) {
        st = ensure_indexes(s, c.client, &first);
        mongo_checkin(s, &c);
    }
    if (st != ES_OK)
        st = mongo_explain_open_failure(uri, st, &first);
    mongoc_uri_destroy(uri); /* the pool keeps its own copy */
    if (st != ES_OK && st != ES_UNAVAILABLE) {
        sm_fail(err, first.status, "%s", first.message);
        mongo_close(s);
        return st;
    }
    if (st == ES_UNAVAILABLE) {
        char quoted[SM_ERROR_MAX + 16];
        sm_log(SM_LOG_WARN, "event_store_unavailable", "adapter=mongodb db=%s error=%s",
               s->db_name, sm_log_quote(first.message, quoted, sizeof quoted));
    }
    if (!(*out = es_store_new(&mongo_ops, s)))
        return mongo_fail_oom(err);
    sm_log(SM_LOG_INFO, "event_store_open", "adapter=mongodb db=%s collection=%s", s->db_name,
           COLLECTION);
    return ES_OK;
}
