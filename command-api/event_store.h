/* SPDX-License-Identifier: Apache-2.0 */
/* event_store.h — the event store port: append-only streams of events, one
 * stream per post (aggregate), with optimistic concurrency.
 *
 * Adapters: es_sqlite.c (the embedded default, "sqlite:PATH") and es_mongo.c
 * ("mongodb://...", with its outbox operations in es_mongo_outbox.c). Each
 * adapter fills an es_ops table and calls es_store_new(); the rest of the
 * program sees only this header.
 *
 * Guarantees every adapter gives:
 *  - UNIQUE (aggregate id, version): two writers can never both store version
 *    n of one post; the loser gets ES_CONFLICT and nothing of its batch is
 *    written.
 *  - Versions are dense: a post's first event is 0, then +1 each.
 *  - ES_UNAVAILABLE when the backing server or file cannot be reached; the
 *    store recovers by itself once it is back (no reopen needed).
 *  - An event reads back whole: payload (owner ids included) and the
 *    envelope's metadata (sm_event.meta), from every read (load, read_all,
 *    fetch_unpublished). Events stored before metadata existed read with
 *    empty metadata; opening a store written before it upgrades it in place
 *    (SQLite adds the events.metadata column).
 *
 * Thread-safety: an es_store may be shared by any number of threads; each
 * adapter pools its own connections. */
#ifndef EVENT_STORE_H
#define EVENT_STORE_H

#include "sm_error.h"
#include "sm_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ES_OK = 0,
    ES_CONFLICT,    /* the stream is not at expected_version */
    ES_NOT_FOUND,   /* reserved for lookups by id; loads return empty lists */
    ES_UNAVAILABLE, /* server or file unreachable: retry later. From append the
                     * outcome may be unknown (a connection that drops after
                     * sending can leave the write applied). */
    ES_INVALID,     /* caller error: bad arguments or event batch */
    ES_INTERNAL     /* anything else (corrupt row, OOM) */
} es_status;

/* Opaque position in the store-wide order used by es_read_all(). The empty
 * string means "before the first event". Adapters choose the encoding
 * (SQLite: rowid; MongoDB: ObjectId hex). */
#define ES_CURSOR_MAX 48
typedef struct es_cursor {
    char token[ES_CURSOR_MAX];
} es_cursor;

typedef struct es_store es_store;

/* A lease as stored (see "Leases"). */
#define ES_LEASE_OWNER_MAX 128
typedef struct es_lease {
    char owner[ES_LEASE_OWNER_MAX];
    int64_t epoch;       /* bumped on every change of owner; never reused */
    int64_t expires_ms;  /* wall clock of the writer that last renewed it */
} es_lease;

typedef struct es_ops {
    const char *name; /* "sqlite", "mongodb": shown in /health and logs */
    /* append() of several events is atomic on every server the adapter
     * accepts (false: it may refuse them, e.g. MongoDB without transactions) */
    bool multi_append;
    es_status (*append)(void *impl, const char *aggregate_id, int64_t expected_version,
                        const sm_event *evs, size_t n, sm_error *err);
    es_status (*load)(void *impl, const char *aggregate_id, int64_t from_version,
                      size_t limit, sm_event_list *out, sm_error *err);
    es_status (*read_all)(void *impl, const es_cursor *after, size_t limit,
                          sm_event_list *out, es_cursor *next, sm_error *err);
    es_status (*ping)(void *impl, sm_error *err);
    void (*close)(void *impl);
    /* outbox (see "Outbox" below) */
    es_status (*fetch_unpublished)(void *impl, es_cursor *cursor, size_t limit,
                                   sm_event_list *out, int64_t *generation, sm_error *err);
    es_status (*mark_published)(void *impl, const sm_event *evs, size_t n, int64_t generation,
                                sm_error *err);
    es_status (*reset_published)(void *impl, int64_t *count, sm_error *err);
    es_status (*outbox_stats)(void *impl, int64_t *pending, int64_t *oldest_ms,
                              int64_t *published, sm_error *err);
    es_status (*get_meta)(void *impl, const char *key, char *out, size_t cap, sm_error *err);
    es_status (*set_meta)(void *impl, const char *key, const char *value, sm_error *err);
    /* snapshots and point-in-time lookups (see "Snapshots" below) */
    es_status (*save_snapshot)(void *impl, const char *aggregate_id, int64_t version, int schema,
                               const char *data, sm_error *err);
    es_status (*load_snapshot)(void *impl, const char *aggregate_id, int64_t max_version,
                               int schema, int64_t *version, char **data, sm_error *err);
    es_status (*version_at)(void *impl, const char *aggregate_id, int64_t at_ms,
                            int64_t *version, sm_error *err);
    /* leases (see "Leases" below) */
    es_status (*lease_acquire)(void *impl, const char *name, const char *owner, int64_t epoch,
                               int64_t now_ms, int64_t ttl_ms, es_lease *out, sm_error *err);
    es_status (*lease_release)(void *impl, const char *name, const char *owner, int64_t epoch,
                               sm_error *err);
} es_ops;

/* Opens the store named by url: "sqlite:PATH" (file created if missing,
 * schema applied idempotently) or "mongodb://host:port[/db][?opts]" (database
 * from the path, default "socialMedia"; collection "eventStore"; the unique
 * index is created on open if the server is reachable, else before the first
 * append, and again after a server change). A server that is down at open is
 * not an error:
 * the store reports ES_UNAVAILABLE per call until it comes up. Returns
 * ES_INVALID for an unknown scheme or a malformed URL. Caller frees the store
 * with es_close(). */
es_status es_open(const char *url, es_store **out, sm_error *err);

/* Appends evs[0..n) to the stream aggregate_id, whose last stored version
 * must be expected_version (-1: the stream must not exist yet). The events'
 * versions must be expected_version+1, +2, ... and their aggregate_id must
 * equal aggregate_id, else ES_INVALID. Atomic: all n events or none. Returns
 * ES_CONFLICT if the stream is at any other version. The caller keeps
 * ownership of evs. */
es_status es_append(es_store *s, const char *aggregate_id, int64_t expected_version,
                    const sm_event *evs, size_t n, sm_error *err);

/* Appends to out (which the caller owns and frees) the events of one stream
 * with version >= from_version, in version order, at most limit of them
 * (0: no limit). A stream with no such events leaves out unchanged and
 * returns ES_OK: "not found" is the caller's judgement. */
es_status es_load(es_store *s, const char *aggregate_id, int64_t from_version, size_t limit,
                  sm_event_list *out, sm_error *err);

/* Appends to out up to limit events stored after cursor `after` (NULL or an
 * empty token: from the start), in the store's global order, and sets *next
 * to the position of the last one returned (unchanged if none). SQLite's
 * order is commit order. MongoDB's is ObjectId order, which matches commit
 * order only for one writer process; consumers that need per-stream order
 * across writers must not rely on it (see the outbox relay). */
es_status es_read_all(es_store *s, const es_cursor *after, size_t limit, sm_event_list *out,
                      es_cursor *next, sm_error *err);

/* Outbox. Every appended event starts unpublished; the relay (relay.h)
 * publishes it and then marks it published. Publication order must follow
 * version order per post even with several writer processes, and neither
 * rowids nor ObjectIds are a commit order across processes, so a position
 * only says where to look, never what may go: the relay is offered *runs*,
 * each starting at a post's head (its lowest unpublished version) and going
 * on with the versions right after it that are unpublished too, and it marks
 * only a confirmed prefix of a run, so version n+1 of a post is never marked
 * while n is not (a failed delivery of n leaves n and every later version
 * unpublished, to go again in order).
 *
 * Paging. The relay walks the unpublished events with a cursor (a position:
 * SQLite's rowid, MongoDB's ObjectId), one page of at most `limit` events
 * per round, and wraps to the start once a page reaches the end; every
 * event is looked at once per pass, so draining a backlog costs time linear
 * in its size. An event of a page whose post has a lower unpublished
 * version that is not in the page (behind the cursor: a failed delivery, or
 * an ObjectId of another writer process that sorts lower) is left for a
 * later page; the wrap brings the head back.
 *
 * A reset (RestoreReadDb, a new Kafka cluster) may come from any process
 * while a relay has a round in flight, fetched before the reset and
 * confirmed by Kafka after it. Its marks must not survive the reset, or the
 * replay would skip those versions, and a read model rebuilt from the
 * replay would miss them and hold every later event of their posts as a
 * gap. So the outbox has a generation, bumped by every reset: a fetch
 * reports the generation it was made in, and a mark is refused for every
 * event reset since then (adapters: SQLite checks it in the marking
 * transaction; MongoDB stamps each event with the generation of the last
 * reset that touched it). */

/* Appends to out the runs (see above) found among the next `limit`
 * unpublished events after *cursor (NULL or an empty token: from the
 * start), at most limit events in all. Each run is contiguous (versions
 * n, n+1, ... of one post, n its head) and in version order, and the runs
 * follow one another (a post's events are never split by another post's).
 * *cursor (if given) receives where the next page starts: the last event
 * looked at, or the empty token once the page reached the end (the next
 * call starts a new pass). A page whose events all wait for a lower
 * version may append nothing with a non-empty *cursor: call again.
 * *generation receives the outbox's generation, read before the page. */
es_status es_fetch_unpublished(es_store *s, es_cursor *cursor, size_t limit, sm_event_list *out,
                               int64_t *generation, sm_error *err);

/* Marks the events (by aggregate id and version) published, unless the
 * outbox was reset after `generation` (from the fetch that offered them).
 * Idempotent. ES_CONFLICT if some or all were refused for that reason:
 * they stay unpublished, to be published again by the replay. One write for
 * the whole call; consecutive versions of a post are marked as one range. */
es_status es_mark_published(es_store *s, const sm_event *evs, size_t n, int64_t generation,
                            sm_error *err);

/* For adapters: cuts a page of unpublished events (in scan order) down to
 * runs. heads[i] is the lowest unpublished version of page->items[i]'s post
 * as the adapter knows it, or -1 if that post has a lower unpublished
 * version outside the page. The events are regrouped by post (in order of
 * each post's first appearance) and by version within a post; an event is
 * kept if it is its post's head or right after the last kept one, and a
 * post's events after the first one not kept are dropped (freed). Returns
 * false on OOM (page unchanged). */
bool es_outbox_runs(sm_event_list *page, const int64_t *heads);

/* For adapters: moves page's events to the end of out, in order, and frees
 * page. On OOM out keeps the ones moved so far (whole runs' prefixes, in
 * order: still a valid offer) and false is returned. */
bool es_outbox_move(sm_event_list *out, sm_event_list *page);

/* Marks every event unpublished and starts a new outbox generation (to
 * republish the whole store: RestoreReadDb, a new Kafka cluster); *count
 * receives how many events that is. */
es_status es_reset_published(es_store *s, int64_t *count, sm_error *err);

/* Number of unpublished events, the timestamp of the oldest (0 if none),
 * and the number of published events. Any pointer may be NULL. */
es_status es_outbox_stats(es_store *s, int64_t *pending, int64_t *oldest_ms, int64_t *published,
                          sm_error *err);

/* Small key/value settings kept in the store itself (e.g. the Kafka cluster
 * id the relay published to). get: ES_NOT_FOUND if the key is absent. */
#define ES_META_MAX 256
es_status es_get_meta(es_store *s, const char *key, char *out, size_t cap, sm_error *err);
es_status es_set_meta(es_store *s, const char *key, const char *value, sm_error *err);

/* Snapshots. A snapshot is an opaque text (the aggregate's state encoded by
 * its owner, see post_snapshot.h) stored beside the events under (aggregate
 * id, version, schema): the state after applying versions 0..version. They
 * are a cache: deleting any or all of them changes nothing but speed, and a
 * reader only ever uses snapshots of the schema it understands, so a format
 * change in new code makes old snapshots invisible instead of wrong.
 *
 * save: idempotent; a snapshot already stored for (id, version, schema) is
 * kept (the state at a version is a fact, so both texts are equal).
 * load: the latest snapshot of that schema with version <= max_version;
 * ES_NOT_FOUND if there is none. *data is malloc'ed; the caller frees it. */
es_status es_save_snapshot(es_store *s, const char *aggregate_id, int64_t version, int schema,
                           const char *data, sm_error *err);
es_status es_load_snapshot(es_store *s, const char *aggregate_id, int64_t max_version, int schema,
                           int64_t *version, char **data, sm_error *err);

/* The version of the post's last event whose timestamp is <= at_ms, or -1
 * if the post had no event yet at that instant (or does not exist). Reads
 * only that post's events. */
es_status es_version_at(es_store *s, const char *aggregate_id, int64_t at_ms, int64_t *version,
                        sm_error *err);

/* Leases. A named lease kept in the store itself (SQLite table `leases`,
 * MongoDB collection `leases`) elects one holder among processes sharing
 * the store, e.g. the outbox relay's leader. Each holder has an epoch; a
 * change of holder increments it, so a former holder that was paused (GC,
 * SIGSTOP, a hung disk) and wakes up finds its epoch gone and its renewal
 * refused.
 *
 * acquire(name, owner, epoch, now, ttl): atomically
 *  - renews (same epoch, expiry now + ttl) if owner holds it with `epoch`;
 *  - takes it over (epoch + 1) if it is free, expired (expires_ms < now),
 *    or, with epoch 0 only, held by the same owner (a restarted process
 *    with a stable instance id, which cannot know its former epoch);
 *  - else returns ES_CONFLICT, with *out describing the holder. So a
 *    former holder presenting a stale epoch is refused even under the
 *    holder's own name (a paused process whose successor reused its id).
 * On ES_OK *out is the lease now held. Pass epoch 0 for a first attempt.
 * Expiry compares wall clocks of different processes: holders must stop
 * using a lease early enough to cover clock skew (the relay keeps a margin).
 *
 * release(name, owner, epoch): expires the lease now if owner still holds it
 * with that epoch (so a successor need not wait for the ttl); otherwise does
 * nothing. Both ES_OK. */
es_status es_lease_acquire(es_store *s, const char *name, const char *owner, int64_t epoch,
                           int64_t now_ms, int64_t ttl_ms, es_lease *out, sm_error *err);
es_status es_lease_release(es_store *s, const char *name, const char *owner, int64_t epoch,
                           sm_error *err);

/* Cheap reachability check for /health. */
es_status es_ping(es_store *s, sm_error *err);

/* Adapter name ("sqlite", "mongodb"). */
const char *es_adapter_name(const es_store *s);

/* True if appends of several events always work (es_ops.multi_append):
 * what batching commands on one post into one append needs. */
bool es_multi_append(const es_store *s);

void es_close(es_store *s);

/* Maps a store status to the program-wide status (ES_CONFLICT ->
 * SM_ERR_CONFLICT, ES_UNAVAILABLE -> SM_ERR_UNAVAILABLE, ...). */
sm_status es_to_sm_status(es_status st);

/* Checks the batch rules shared by every adapter's append (dense versions
 * from expected+1, matching aggregate id, known type). */
es_status es_validate_batch(const char *aggregate_id, int64_t expected_version,
                            const sm_event *evs, size_t n, sm_error *err);

/* For adapters only: wraps an adapter's state in a store. Takes ownership of
 * impl (ops->close frees it). Returns NULL on OOM, after closing impl. */
es_store *es_store_new(const es_ops *ops, void *impl);

/* Adapter constructors, called by es_open(). */
es_status es_sqlite_open(const char *path, es_store **out, sm_error *err);
es_status es_mongo_open(const char *uri, es_store **out, sm_error *err);

#endif
