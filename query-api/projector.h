/* projector.h — the query side's event consumer: reads the post events
 * from Kafka (group SM_Consumer) and applies them to the read model.
 *
 * For each message, on one thread, in partition order:
 *   decode -> rm_apply (one read-model transaction) -> commit the offset.
 * The offset is committed only after the read model committed, so a crash
 * in between redelivers the message, which the version check then skips.
 * A message that cannot be decoded (bad JSON, unknown type, missing field)
 * is logged with its partition and offset, copied to the dead-letter topic
 * "<topic>.DLQ" with the reason in a header, and committed: it never stops
 * the consumer. If the read model is unreachable the message is not
 * committed; the consumer rewinds to it and retries with back-off.
 *
 * Read-your-writes: projector_wait_version() blocks (bounded) until a
 * post's applied version reaches a given one.
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef PROJECTOR_H
#define PROJECTOR_H

#include "bus.h"
#include "read_model.h"

#include <stdint.h>

typedef struct projector projector;

typedef struct projector_opts {
    rm_store *rm;            /* borrowed */
    bus_config bus;          /* strings borrowed for start only */
    const char *group_id;    /* default "SM_Consumer" */
} projector_opts;

typedef struct projector_stats {
    uint64_t applied, duplicates, gaps, dead_lettered, retries;
    int64_t lag;             /* messages not yet consumed on assigned partitions */
    int assigned;            /* partitions assigned to this instance */
    int64_t last_applied_ms; /* wall time of the last applied event, 0 if none */
    bool read_model_ok;      /* the last apply did not fail for unavailability */
} projector_stats;

projector *projector_start(const projector_opts *opts, sm_error *err);

void projector_get_stats(projector *p, projector_stats *out);

/* Waits until post_id's applied version is >= version or timeout_ms passes.
 * Returns true if it is; *seen gets the last version observed. */
bool projector_wait_version(projector *p, const char *post_id, int64_t version, int timeout_ms,
                            int64_t *seen);

/* How long projector_stop gives the broker to confirm the final offset
 * commit and the group leave. */
#define PROJECTOR_CLOSE_MS 5000

/* Stops consuming and frees p: the message in hand is applied and
 * committed (a dead letter in hand waits up to 10 s for its broker
 * confirmation), then the offset after the last applied message of each
 * assigned partition is committed and confirmed and the group is left,
 * within PROJECTOR_CLOSE_MS. A restart resumes right after the last
 * applied event. Call it after the HTTP server stopped: no thread may be
 * in projector_wait_version when p is freed. */
void projector_stop(projector *p);

#endif
