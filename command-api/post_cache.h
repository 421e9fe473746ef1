/* SPDX-License-Identifier: Apache-2.0 */
/* post_cache.h — a bounded in-memory cache of Post aggregates, so that a
 * command on a hot post costs the same whether its stream holds ten events
 * or a million.
 *
 * The cache never answers on its own: a cached state is a *prefix* of the
 * post's history (the state after versions 0..v), and the loader
 * (post_repo.c) always reads the events after v from the store before using
 * it. So a state that another process has moved past, or that a failed
 * append left behind, is caught up, never trusted as current.
 *
 * Ownership moves in and out: post_cache_take() removes the entry and hands
 * the state to the caller, post_cache_put() takes it back. Two threads can
 * therefore never share a state; a second taker simply misses. Least
 * recently used entries are evicted beyond the byte budget (an estimate of
 * the heap each state holds). Thread-safe: one mutex, held for O(1) work
 * except post_cache_put's size estimate, which is O(comments). */
#ifndef POST_CACHE_H
#define POST_CACHE_H

#include "post.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct post_cache post_cache;

typedef struct post_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes, max_bytes;
} post_cache_stats;

/* A cache holding at most max_bytes of states (> 0). NULL on OOM. */
post_cache *post_cache_new(size_t max_bytes);

/* Frees every cached state. NULL is a no-op. */
void post_cache_free(post_cache *c);

/* If post_id is cached, moves its state into *out (the caller owns it) and
 * returns true; else returns false and leaves *out alone. */
bool post_cache_take(post_cache *c, const char *post_id, post_state *out);

/* Gives *p to the cache, which owns it from now on; *p is reset to an empty
 * state. A state that exists in the cache already is replaced only by a
 * newer version. A state larger than an eighth of the budget is freed
 * instead of cached, so one huge post cannot flush everything else. */
void post_cache_put(post_cache *c, post_state *p);

/* Drops post_id's entry if any. */
void post_cache_forget(post_cache *c, const char *post_id);

void post_cache_get_stats(post_cache *c, post_cache_stats *out);

#endif
