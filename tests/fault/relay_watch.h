/* SPDX-License-Identifier: Apache-2.0 */
/* relay_watch.h — is exactly one command-api publishing? For tests with
 * several command-apis on one event store (test_scale_out.c).
 *
 * rw_relay_of() reads one instance's view of the relay from its /health
 * (kafka.relay: role, publisher, leaseEpoch). A watcher thread polls every
 * instance in turn, round after round, and counts what would break "one
 * publisher at a time" (relay_lease.h):
 *  - overlaps: two instances answered "publisher" within one round shorter
 *    than overlap_window_ms. A holder stops publishing ttl/3 before anyone
 *    may take its lease over, so with a window below that the two answers
 *    prove two publishers at once. Longer rounds prove nothing and are
 *    only counted (inconclusive);
 *  - stale: an instance answered "publisher" with a lower lease epoch than
 *    an answer received before its request was sent: a fenced former
 *    holder publishing again.
 * It also records each tenure (instance id, epoch) seen publishing.
 *
 * rw_start/rw_stop/rw_get from one thread; the watcher is its own. */
#ifndef RELAY_WATCH_H
#define RELAY_WATCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct relay_view {
    bool answered;         /* /health answered with a kafka.relay object */
    bool publisher;        /* role "publisher" */
    int64_t epoch;         /* leaseEpoch */
    long long published;   /* kafka.publishedTotal */
    char holder[96];       /* kafka.relay.publisher: who publishes, as it sees it */
} relay_view;

/* GET /health of the command-api on 127.0.0.1:port. */
relay_view rw_relay_of(int port, int timeout_ms);

typedef struct rw_counts {
    long rounds, overlaps, stale, inconclusive;
    int tenures; /* distinct (instance, epoch) seen publishing */
} rw_counts;

typedef struct relay_watch relay_watch;

/* Starts watching the n (at most 8) command-apis on ports, named ids (both
 * copied), one round every every_ms. NULL if the thread cannot start. */
relay_watch *rw_start(const int *ports, const char *const *ids, int n, int every_ms,
                      int overlap_window_ms);

/* Stops the thread (after its round in hand); the counts stay readable. */
void rw_stop(relay_watch *w);

void rw_get(relay_watch *w, rw_counts *out);

/* Stops it if needed and frees it. NULL is a no-op. */
void rw_free(relay_watch *w);

#endif
