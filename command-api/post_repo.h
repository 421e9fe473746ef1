/* SPDX-License-Identifier: Apache-2.0 */
/* post_repo.h — where Post aggregates come from: rehydration from the
 * event store, made constant-cost by snapshots and an in-memory cache.
 *
 * Rehydration = the latest snapshot (post_snapshot.h) at or below the wanted
 * version + the events after it. A snapshot is used only if it decodes under
 * today's POST_SNAPSHOT_SCHEMA and the event it claims to follow is really
 * in the stream at its version; otherwise it is logged and the post is
 * rebuilt from event 0. The result is therefore always the fold of the
 * stored events, whatever the snapshots hold.
 *
 * Snapshots are written off the request path by one background thread:
 * after an append reaches a multiple of snapshot_every, or when a load had
 * to apply snapshot_every events or more (a long stream written before
 * snapshots existed), the post's id is queued; the thread rebuilds the post
 * on its own and saves a snapshot of its current version. A full queue drops
 * the hint: the next multiple or the next long load queues it again.
 *
 * Commands use post_repo_acquire/post_repo_release: the state comes from the
 * cache (post_cache.h) when it is there, and is caught up with the events
 * stored after it either way, so another process's appends are always seen.
 *
 * Thread-safety: every function may be called from any thread. A repo
 * borrows its store, which must outlive it. */
#ifndef POST_REPO_H
#define POST_REPO_H

#include "event_store.h"
#include "post.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POST_REPO_DEFAULT_SNAPSHOT_EVERY 100
#define POST_REPO_DEFAULT_CACHE_MB 64

typedef struct post_repo_config {
    int snapshot_every;   /* events between snapshots; 0: no snapshots */
    size_t cache_bytes;   /* aggregate cache budget; 0: no cache */
} post_repo_config;

typedef struct post_repo_stats {
    uint64_t loads;             /* rehydrations from the store */
    uint64_t snapshot_hits;     /* ... that started from a snapshot */
    uint64_t snapshots_ignored; /* snapshots found but not trusted */
    uint64_t snapshots_written;
    uint64_t snapshot_errors;   /* failed background saves */
    uint64_t cache_hits, cache_misses, cache_evictions;
    size_t cache_entries, cache_bytes;
} post_repo_stats;

typedef struct post_repo post_repo;

/* Starts the snapshot thread if cfg->snapshot_every > 0. NULL on OOM or if
 * the thread cannot start (err filled). */
post_repo *post_repo_new(es_store *store, const post_repo_config *cfg, sm_error *err);

/* Stops the thread (queued hints are dropped: they are only hints) and
 * frees the cache. NULL is a no-op. */
void post_repo_free(post_repo *r);

/* The post's current state into *out (post_init'ed by the call). A post with
 * no events is SM_OK with post_exists(out) false. Give the state back with
 * post_repo_release() (or post_free() it). Errors: SM_ERR_UNAVAILABLE,
 * SM_ERR_INTERNAL (a corrupt stream). */
sm_status post_repo_acquire(post_repo *r, const char *post_id, post_state *out, sm_error *err);

/* Returns a state from post_repo_acquire to the cache. `current` says the
 * state is a true prefix of the stored stream: pass false after an append
 * conflict (the store may hold something else than the cache assumed), and
 * the state is dropped. Queues a snapshot when p->version is a multiple of
 * snapshot_every. *p is reset either way. */
void post_repo_release(post_repo *r, post_state *p, bool current);

/* As post_repo_release, for a state acquired at version from_version and
 * then advanced by several appended events (a batch, dispatcher.h): the
 * snapshot is queued when (from_version, p->version] holds a multiple of
 * snapshot_every, so a batch that steps over one does not skip it.
 * post_repo_release(r, p, c) is post_repo_release_from(r, p, p->version - 1, c). */
void post_repo_release_from(post_repo *r, post_state *p, int64_t from_version, bool current);

/* The post's state after version max_version (INT64_MAX: the latest), from
 * the store only (never the cache, never changing it). max_version beyond
 * the stream's end gives the latest state. */
sm_status post_repo_load_at(post_repo *r, const char *post_id, int64_t max_version,
                            post_state *out, sm_error *err);

/* Waits until the snapshot queue is empty and the thread idle (tests and
 * benchmarks). */
void post_repo_drain(post_repo *r);

void post_repo_get_stats(post_repo *r, post_repo_stats *out);

#endif
