/* SPDX-License-Identifier: Apache-2.0 */
/* relay_lease.h — which command-api process runs the outbox relay.
 *
 * Several command-api processes may share one event store; exactly one of
 * them should publish at a time, or every event goes to Kafka once per
 * process. They elect the publisher with a lease kept in the store itself
 * (event_store.h, "Leases"; name RELAY_LEASE_NAME, owner = the instance id).
 *
 * The holder renews every ttl/3. It may publish only while its *local*
 * deadline holds: the monotonic time at which it sent its last successful
 * renewal + ttl - margin (margin = ttl/3). The others take the lease over
 * once the stored expiry (the holder's wall clock + ttl) has passed on
 * their own wall clock, i.e. at least `margin` after the holder stopped
 * publishing, so clock skew below the margin cannot make two publishers.
 * A paused holder (SIGSTOP, a long GC, a hung disk) wakes up past its local
 * deadline and stops before producing; its next renewal meets a new epoch
 * and is refused. Takeover after a holder dies: at most ttl + ttl/3.
 *
 * A process presents the epoch it last held even after losing the lease,
 * so only a fresh start (epoch 0) takes a live lease back from its own
 * instance id (event_store.h, "Leases"): a restart with a stable id need
 * not wait, while a paused or duplicate process with that id is refused
 * like any other former holder (logged as relay_lease_owner_clash).
 *
 * A crash is still safe without the lease (the relay is at-least-once and
 * the projection idempotent); the lease removes the steady duplicate
 * stream, and the epoch keeps a zombie from publishing for long.
 *
 * Not thread-safe: owned and called by the relay thread only. */
#ifndef RELAY_LEASE_H
#define RELAY_LEASE_H

#include "event_store.h"

#include <stdbool.h>
#include <stdint.h>

#define RELAY_LEASE_NAME "outbox-relay"
#define RELAY_LEASE_DEFAULT_TTL_MS 3000

typedef struct relay_lease_info {
    bool leader;                        /* this process may publish now */
    int64_t epoch;                      /* of the lease we hold or last saw */
    char holder[ES_LEASE_OWNER_MAX];    /* the current holder as last seen */
    uint64_t acquired_total;            /* times this process became leader */
    uint64_t lost_total;                /* times it stopped being leader */
    int64_t valid_until_mono;           /* leader may publish until this sm_mono_ms() */
} relay_lease_info;

typedef struct relay_lease relay_lease;

/* owner is copied; ttl_ms >= 300. NULL on OOM. */
relay_lease *relay_lease_new(es_store *store, const char *owner, int64_t ttl_ms);
void relay_lease_free(relay_lease *l);

/* Renews or tries to acquire the lease when due (at most every ttl/3, or at
 * once with force) and returns whether this process may publish now. Store
 * errors count as "not leader". */
bool relay_lease_check(relay_lease *l, bool force);

/* True while the local deadline holds: cheap, no store access. Call right
 * before producing. */
bool relay_lease_valid(const relay_lease *l);

/* Milliseconds until the next relay_lease_check() is due. */
int relay_lease_next_check_ms(const relay_lease *l);

/* Gives the lease up (a clean shutdown), so a successor need not wait. */
void relay_lease_release(relay_lease *l);

void relay_lease_get_info(const relay_lease *l, relay_lease_info *out);

#endif
