/* SPDX-License-Identifier: Apache-2.0 */
/* projector.h — the query side's event consumer: reads the post events
 * from Kafka (group SM_Consumer) and applies them to the read model.
 *
 * On one thread, in partition order, a batch at a time (what one poll
 * returns without waiting, up to PROJECTOR_BATCH_MAX messages gathered for
 * at most PROJECTOR_BATCH_MS):
 *   decode each -> rm_apply_batch (one read-model transaction for the
 *   events that decode) -> commit the offsets.
 * Offsets are committed only after the read model committed, so a crash
 * in between redelivers the messages, which the version check then skips.
 * Each message's outcome is the one it would have alone: applied, skipped
 * by version (a duplicate, even of an event earlier in the same batch, or
 * a gap), or dead-lettered; a message that cannot be decoded splits the
 * batch, so nothing behind it is applied before its dead letter is
 * confirmed.
 *
 * Only what cannot be decoded (bad JSON, unknown type, missing field) is
 * dead-lettered: copied to the dead-letter topic "<topic>.DLQ" with the
 * reason in a header, logged with its partition and offset, and committed
 * once the broker confirmed the copy, so it never stops the consumer. A
 * dead letter the broker refuses, or does not confirm within
 * dead_letter_wait_ms, is not committed: the message is retried like an
 * apply error until its copy is confirmed (a copy still in flight is
 * waited for again rather than sent twice, but the DLQ is at least once).
 *
 * An event that decodes is never dead-lettered. Whatever rm_apply answers
 * when it fails (the read model unreachable, its log full, out of memory,
 * a constraint the schema did not expect), the batch's transaction is
 * rolled back. Unavailable (down, locked): the whole batch waits for the
 * back-off below, as one event did. Any other error: its messages are
 * handled again one at a time, one transaction each, as before batches
 * existed: those before the failing
 * event are applied and committed, so one bad event never holds back or
 * loses the rest of its batch. At the failing one nothing is committed: the
 * consumer rewinds to the message and tries again after a back-off that
 * doubles from PROJECTOR_BACKOFF_MIN_MS to PROJECTOR_BACKOFF_MAX_MS, for as
 * long as it takes. Skipping the event instead would leave its post's
 * version behind for ever and turn every later event of the post into a
 * gap. While it retries, the partition waits (its lag grows) and the stats
 * say so: retrying, apply_errors, last_error (/health, /metrics).
 *
 * Read-your-writes: projector_wait_version() blocks (bounded) until a
 * post's applied version reaches a given one.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef PROJECTOR_H
#define PROJECTOR_H

#include "bus.h"
#include "read_model.h"
#include "sm_histogram.h"

#include <stdint.h>

/* The back-off between two attempts at a message that failed. */
#define PROJECTOR_BACKOFF_MIN_MS 100
#define PROJECTOR_BACKOFF_MAX_MS 5000

/* A batch: what one poll returns without waiting, up to this many
 * messages gathered for at most this long, applied in one read-model
 * transaction. */
#define PROJECTOR_BATCH_MAX 500
#define PROJECTOR_BATCH_MS 50

/* How long one attempt waits for the broker to confirm a dead letter. */
#define PROJECTOR_DEAD_LETTER_WAIT_MS 10000

typedef struct projector projector;

typedef struct projector_opts {
    rm_store *rm;            /* borrowed */
    bus_config bus;          /* strings borrowed for start only */
    const char *group_id;    /* default "SM_Consumer" */
    int dead_letter_wait_ms; /* 0: PROJECTOR_DEAD_LETTER_WAIT_MS */
} projector_opts;

/* Partitions whose newest applied event is tracked (topics have 3 by
 * default; later ones are counted but not shown per partition). */
#define PROJECTOR_MAX_PARTITIONS 64

typedef struct projector_stats {
    uint64_t applied, duplicates, gaps, dead_lettered, retries;
    uint64_t batches;              /* read-model transactions that applied a batch */
    uint64_t apply_errors;         /* failed rm_apply calls (each retried) */
    uint64_t dead_letter_failures; /* dead letters refused or unconfirmed (each retried) */
    int64_t lag;             /* messages not yet consumed on assigned partitions */
    uint64_t offset_commits; /* offset commits sent while consuming */
    int assigned;            /* partitions assigned to this instance */
    int64_t last_applied_ms; /* wall time of the last applied event, 0 if none */
    bool read_model_ok;      /* the last apply did not fail for unavailability */
    bool retrying;           /* the last attempt at a message failed; it is retried */
    char last_error[SM_ERROR_MAX]; /* the last apply or dead-letter failure, "" if none */
    int64_t last_error_ms;   /* its wall time, 0 if none */
    /* per partition (< PROJECTOR_MAX_PARTITIONS): the timestamp of the
     * newest event applied from it, 0 if none */
    int64_t newest_event_ms[PROJECTOR_MAX_PARTITIONS];
} projector_stats;

projector *projector_start(const projector_opts *opts, sm_error *err);

void projector_get_stats(projector *p, projector_stats *out);

/* Projection lag of every applied event (not duplicates or gaps): from its
 * timestamp (when the command raised it, the command side's clock) to its
 * commit in the read model (this side's), in
 * smpost_projection_lag_seconds. Valid until projector_stop. */
const sm_histogram *projector_lag_histogram(projector *p);

/* Waits until post_id's applied version is >= version or timeout_ms passes.
 * Returns true if it is; *seen gets the last version observed. */
bool projector_wait_version(projector *p, const char *post_id, int64_t version, int timeout_ms,
                            int64_t *seen);

/* How long projector_stop gives the broker to confirm the final offset
 * commit and the group leave. */
#define PROJECTOR_CLOSE_MS 5000

/* Stops consuming and frees p: an apply in progress finishes and is
 * committed; a back-off or a wait for a dead letter's confirmation ends at
 * once (that message stays uncommitted, so whoever reads the partition
 * next handles it again). Then the offset after the last applied message
 * of each assigned partition is committed and confirmed and the group is
 * left, within PROJECTOR_CLOSE_MS (bus_consumer_close: promptly when no
 * broker answers). A restart resumes right after the last applied event.
 * Call it after the HTTP server stopped: no thread may be in
 * projector_wait_version when p is freed. NULL is a no-op. */
void projector_stop(projector *p);

#endif
