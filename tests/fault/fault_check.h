/* SPDX-License-Identifier: Apache-2.0 */
/* fault_check.h — after a fault scenario: is every accepted command in the
 * event store exactly once, and does the read model show it?
 *
 * The store is read directly (the SQLite file, opened read-only, schema in
 * sql/event_store.sqlite.sql); the read model through query-api
 * (byId?minVersion=, which waits for the projection). Matching rules:
 *  - an accepted command (2xx, version v) must be the event at version v of
 *    its post, of its type and with its unique text / comment id: "stored";
 *    otherwise "lost";
 *  - every other stored event must be explained by a command whose outcome
 *    is unknown (sent, no reply), each such command explaining at most one
 *    event; an event nothing explains (a second copy of a command, or a
 *    rejected command that was written after all) is "duplicated";
 *  - each post's versions must be exactly 0..n-1 ("gaps" otherwise);
 *  - the read model must show every post of the store at its last version
 *    with the same message, likes, comments (text, edited) or none if
 *    removed (its version, which outlives the row, still at the store's
 *    last: a removed post whose earlier events were skipped is behind,
 *    not fine); the accepted commands of a post that does are "projected",
 *    those of one that is behind when the deadline passes are "lost", and
 *    likes or comments above the store count as "duplicated". */
#ifndef FAULT_CHECK_H
#define FAULT_CHECK_H

#include "fault_load.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fc_counts {
    long accepted;       /* 2xx replies */
    long stored;         /* accepted, and their event is in the store */
    long projected;      /* accepted, and the read model shows them */
    long lost;           /* accepted, but not stored or not projected in time */
    long duplicated;     /* stored or projected more than once, or stored though rejected */
    long unknown;        /* sent, no complete reply */
    long unknown_stored; /* of those, stored (once) */
    long not_sent;       /* connection refused: never reached the server */
    long rejected_503;
    long rejected_503_without_retry_after;
    long rejected_other; /* any other error status (none is expected) */
    long hung;           /* no reply within the client's timeout */
    long gaps;           /* posts whose versions are not exactly 0..n-1 */
    long posts, events;  /* in the store */
    int64_t max_latency_ms; /* of every request that got a reply or dropped */
} fc_counts;

/* Tallies the outcomes of ops: accepted, unknown, not_sent, rejected_*,
 * hung, max_latency_ms. */
void fc_count_outcomes(const fl_op *ops, size_t n, fc_counts *c);

typedef struct fc_store fc_store;

/* Reads the event store at path and matches ops against it (setting each
 * op's matched count): fills stored, lost, duplicated, unknown_stored,
 * gaps, posts and events, printing the first discrepancies. NULL if the
 * file cannot be read (the reason is printed). */
fc_store *fc_check_store(const char *path, fl_op *ops, size_t n, fc_counts *c);

/* Compares every post of s with query-api's answer, waiting for the
 * projection until deadline_ms from now: adds to projected, lost and
 * duplicated, printing the first discrepancies. */
void fc_check_projection(const fc_store *s, int query_port, int deadline_ms, fc_counts *c);

void fc_store_free(fc_store *s);

/* The summary line, on stdout:
 * FAULT scenario=<name> accepted=N stored=N projected=N lost=N
 *   duplicated=N unknown=N rejected_503=N max_latency_ms=N ... */
void fc_print(const char *scenario, const fc_counts *c);

/* The invariants every scenario must keep (cmocka assertions): the load
 * ran, nothing lost, duplicated or out of order, every accepted command
 * stored and projected, no error but 503 (each with Retry-After), no
 * request hung or took longer than request_timeout_ms. */
void fc_assert_invariants(const fc_counts *c, int64_t request_timeout_ms);

#endif
