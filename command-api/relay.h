/* SPDX-License-Identifier: Apache-2.0 */
/* relay.h — the outbox relay: publishes stored events to Kafka, in order,
 * at least once, off the request path.
 *
 * An HTTP command returns as soon as its event is durable in the event
 * store, unpublished. The relay thread then, round after round:
 *   1. asks the store for the next page of the outbox as runs, each a
 *      post's lowest unpublished version and the ones right after it
 *      (es_fetch_unpublished, paged by a cursor that wraps at the end),
 *   2. produces them (key = post id: the idempotent producer keeps their
 *      order in the partition) and waits for the delivery reports (acks=all),
 *   3. marks the confirmed prefix of each run published, in one write.
 * So version n+1 of a post is marked only with version n, whatever the
 * order in which processes committed them; a failed delivery leaves it and
 * the rest of its run unpublished, offered again (the next round starts a
 * new pass). A crash between 2 and 3 republishes
 * (the projection is idempotent by version): at least once, never lost.
 *
 * The relay records the Kafka cluster id it publishes to (store meta
 * "kafka.cluster_id") and checks the broker before the first round, every
 * second and after any failed round. Meeting a different cluster, or a
 * topic that holds fewer messages than the store has marked published (a
 * fresh local broker keeps nothing, and librdkafka's mock cluster can reuse
 * an id), it marks the whole store unpublished and republishes from the
 * start: the event store is the source of truth.
 *
 * Several command-api processes on one store elect one publisher with a
 * lease in the store (relay_lease.h): the others stand by, checking the
 * lease every ttl/3 and Kafka's reachability (for /health), and take over
 * within ttl + ttl/3 of the publisher's death. Per-post order needs no
 * election (the runs rule holds it for any number of relays); the lease
 * keeps each event from being published once per process.
 *
 * Thread-safety: relay_notify and relay_get_stats may be called from any
 * thread. */
#ifndef RELAY_H
#define RELAY_H

#include "bus.h"
#include "event_store.h"
#include "sm_histogram.h"

typedef struct relay relay;

typedef struct relay_opts {
    es_store *store;        /* borrowed; must outlive the relay */
    bus_config bus;         /* strings borrowed for relay_start only */
    int batch;              /* events per round (default 500) */
    int idle_ms;            /* sleep when idle or failing (default 500) */
    int cluster_check_ms;   /* how often to re-check the cluster (default 1000) */
    const char *instance_id; /* lease owner (relay_lease.h); NULL: no election,
                              * this relay always publishes */
    int lease_ttl_ms;       /* default RELAY_LEASE_DEFAULT_TTL_MS */
} relay_opts;

typedef struct relay_stats {
    bus_state kafka;            /* last known broker state */
    char cluster_id[128];       /* "" until known */
    uint64_t published_total;   /* events confirmed by the broker since start */
    uint64_t failed_total;      /* delivery failures since start (retried) */
    uint64_t republish_total;   /* events reset for republishing (cluster change) */
    int64_t last_publish_ms;    /* wall time of the last confirmed event, 0 if none */
    char last_error[256];
    bool leader;                /* holds the relay lease (always true without one) */
    int64_t lease_epoch;        /* of the lease held or last seen; 0 without one */
    char lease_holder[128];     /* the instance that publishes, as last seen */
    uint64_t leader_acquired_total; /* times this instance became the publisher */
} relay_stats;

/* Starts the relay thread. NULL + err on bad Kafka configuration. */
relay *relay_start(const relay_opts *opts, sm_error *err);

/* Wakes the relay (new events were appended). Never blocks for long. */
void relay_notify(relay *r);

/* Signature-compatible with cmd_appended_fn: arg is the relay. */
void relay_on_appended(void *arg, const sm_event *evs, size_t n);

void relay_get_stats(relay *r, relay_stats *out);

/* From each confirmed event's timestamp (when its command raised and
 * stored it) to the broker's confirmation: the outbox wait, the produce and
 * the acknowledgement (smpost_relay_publish_seconds). Valid until
 * relay_stop. */
const sm_histogram *relay_publish_histogram(relay *r);
/* Events offered per publishing round (smpost_relay_round_events). */
const sm_histogram *relay_round_histogram(relay *r);

/* What each produced message carries to its delivery report: its round and
 * its index in that round. A report may arrive after its round was given up
 * (the wait for reports is bounded), and must then be neither taken for the
 * message at the same index of the current round nor used as an index
 * past its end. relay_delivery_match() tells whether tag belongs to `round`
 * (of round_len messages), with *index its position. Pure; exposed for
 * tests. */
void *relay_delivery_tag(uint32_t round, size_t index);
bool relay_delivery_match(const void *tag, uint32_t round, size_t round_len, size_t *index);

/* Which events of a round may be marked published: items are runs (each
 * post's unpublished versions in order, one post after another), delivered
 * says which the broker confirmed. mark[i] is set for the confirmed prefix
 * of each run only: after a version that failed or got no report, the rest
 * of its run stays unpublished even if confirmed, so it goes again after
 * that version, in order (event_store.h, "Outbox"); version n+1 is never
 * marked while n is not. Returns how many are marked. */
size_t relay_markable(const sm_event *items, const bool *delivered, size_t n, bool *mark);

/* Stops the relay and frees r; call it after the HTTP server stopped, so
 * that no command appends meanwhile. Within flush_ms it first publishes
 * what is still in the outbox (rounds until the outbox is empty, a round
 * fails, or the broker is not one identified lately) and marks what the
 * broker confirmed; anything left stays unpublished in the store for the
 * next relay to start (logged as relay_stopped pending=N). */
void relay_stop(relay *r, int flush_ms);

#endif
