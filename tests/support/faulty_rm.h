/* SPDX-License-Identifier: Apache-2.0 */
/* faulty_rm.h — a read-model adapter for tests that wraps a real one and
 * fails applies on demand, the way mem_store.h injects event-store faults:
 * the next N applies (single or batch) return a chosen status and change
 * nothing, or only those that include one given event, as a read
 * model does when its log is full, it runs out of memory or a constraint
 * the schema did not expect fires. Queries, post_version and ping go to the
 * wrapped store untouched. Thread-safe: the projector applies on its thread
 * while the test changes the fault on its own. */
#ifndef FAULTY_RM_H
#define FAULTY_RM_H

#include "read_model.h"

typedef struct faulty_rm faulty_rm;

/* Wraps inner (ownership passes: rm_close of the result closes it).
 * *ctl is valid until then. NULL on OOM (inner is closed). */
rm_store *faulty_rm_wrap(rm_store *inner, faulty_rm **ctl);

/* The next n applies fail with status st (n < 0: every apply until the
 * next call; n = 0: none). The message says "injected fault". */
void faulty_rm_fail_applies(faulty_rm *f, int n, sm_status st);

/* The next n applies that include event (post_id, version), alone or in
 * a batch, fail with status st (the whole batch, as a transaction would),
 * whatever faulty_rm_fail_applies says; n < 0: until the next call. */
void faulty_rm_fail_event(faulty_rm *f, const char *post_id, int64_t version, int n,
                          sm_status st);

/* Applies refused by the fault so far (a refused batch counts once). */
int faulty_rm_failed(faulty_rm *f);

#endif
