/* SPDX-License-Identifier: Apache-2.0 */
/* mem_store.h — an in-memory event store adapter for unit tests, with fault
 * injection: make the next N appends lose a race (ES_CONFLICT), make every
 * call fail as if the server were down (ES_UNAVAILABLE), make only appends
 * fail (a commit that fails while reads work), or hold appends at a gate so
 * a test can line up what queues behind them. Thread-safe. */
#ifndef MEM_STORE_H
#define MEM_STORE_H

#include "event_store.h"

typedef struct mem_store_ctl {
    int conflicts_left;    /* next appends that report ES_CONFLICT (nothing written) */
    bool unavailable;      /* every call returns ES_UNAVAILABLE */
    bool appends_fail;     /* appends return ES_UNAVAILABLE, nothing written; reads work */
    int appends_held;      /* appends waiting at the gate (mem_store_hold_appends) */
    int max_batch;         /* most events one successful append has held */
    int appends;           /* successful appends so far */
    int append_calls;      /* all append calls */
    int load_calls;        /* es_load calls */
    int snapshot_saves;    /* snapshots stored (duplicates not counted) */
} mem_store_ctl;

/* New empty store; *ctl points into it (valid until es_close). */
es_store *mem_store_new(mem_store_ctl **ctl);

/* Locks/unlocks the store's state, for changing ctl from a test while
 * other threads run. */
void mem_store_lock(mem_store_ctl *ctl);
void mem_store_unlock(mem_store_ctl *ctl);

/* hold true: from now on every append waits (before doing anything) until
 * it is called with false. Call without the lock held. */
void mem_store_hold_appends(mem_store_ctl *ctl, bool hold);

/* ctl->appends_held, read under the lock. */
int mem_store_appends_held(mem_store_ctl *ctl);

#endif
