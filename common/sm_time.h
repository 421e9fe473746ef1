/* SPDX-License-Identifier: Apache-2.0 */
/* sm_time.h — wall-clock time as milliseconds since the Unix epoch, and its
 * UTC ISO-8601 text form ("2026-11-26T23:05:01.123Z"). Thread-safe. */
#ifndef SM_TIME_H
#define SM_TIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SM_TIME_STR_LEN 24 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
typedef char sm_time_str[SM_TIME_STR_LEN + 1];

/* Current UTC time in milliseconds (CLOCK_REALTIME). */
int64_t sm_now_ms(void);

/* Timed waits on the monotonic clock. A wait computed from the wall clock
 * stretches or ends early when the clock is set (NTP step, an operator),
 * so every condition variable that is waited on with a timeout is made by
 * sm_cond_init, and every timed wait takes an sm_mono_ms() instant. */

/* pthread_cond_init with CLOCK_MONOTONIC; 0 or an errno value. Never use
 * PTHREAD_COND_INITIALIZER for a condition waited on with sm_cond_wait_until:
 * that one runs on CLOCK_REALTIME. */
int sm_cond_init(pthread_cond_t *cv);

/* Waits on cv (made by sm_cond_init) until signalled or sm_mono_ms() reaches
 * until_ms. Returns 0 when woken (spuriously or not), ETIMEDOUT once the
 * instant has passed, at once if it already has. */
int sm_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ms);

/* Locks mu, waiting no later than sm_mono_ms() == until_ms: 0, ETIMEDOUT or
 * an errno value (pthread_mutex_clocklock). */
int sm_mutex_lock_until(pthread_mutex_t *mu, int64_t until_ms);

/* Sleeps ms milliseconds (a signal may cut it short). */
void sm_sleep_ms(int64_t ms);

/* Monotonic milliseconds, for durations and deadlines only. */
int64_t sm_mono_ms(void);
/* The same clock in microseconds (latency metrics). */
int64_t sm_mono_us(void);

/* Formats ms as UTC ISO-8601 with millisecond precision and a 'Z'. */
void sm_time_format(int64_t ms, sm_time_str out);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into UTC ms.
 * Fractions beyond milliseconds are truncated. The zone is mandatory, so a
 * local time can never be mistaken for UTC. The instant, in UTC, must lie in
 * 0001-01-01T00:00:00.000Z..9999-12-31T23:59:59.999Z (what sm_time_format
 * can write), so parse and format round-trip. Returns false on anything
 * else. */
bool sm_time_parse(const char *text, int64_t *out_ms);

#endif
