/* SPDX-License-Identifier: Apache-2.0 */
/* sm_deadline.h — the time by which the calling thread's current request
 * must be answered.
 *
 * Set by whoever owns the request (the command dispatcher, from the request
 * timeout) and read by code far below it that may wait (the SQLite pool's
 * busy handler and checkout), so that the waits of one request add up to
 * no more than its budget instead of each being bounded on its own.
 * Thread-local: every thread has its own, nothing is shared. */
#ifndef SM_DEADLINE_H
#define SM_DEADLINE_H

#include <stdint.h>

/* sm_mono_ms() value by which to give up; 0 clears it. */
void sm_deadline_set(int64_t mono_ms);

/* The current thread's deadline, or 0 if none is set. */
int64_t sm_deadline_get(void);

/* min(a, the deadline) when one is set, else a (both sm_mono_ms values). */
int64_t sm_deadline_cap(int64_t a);

#endif
