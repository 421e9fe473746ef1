/* sm_time.h — wall-clock time as milliseconds since the Unix epoch, and its
 * UTC ISO-8601 text form ("2026-11-26T23:05:01.123Z"). Thread-safe. */
#ifndef SM_TIME_H
#define SM_TIME_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SM_TIME_STR_LEN 24 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
typedef char sm_time_str[SM_TIME_STR_LEN + 1];

/* Current UTC time in milliseconds (CLOCK_REALTIME). */
int64_t sm_now_ms(void);

/* The CLOCK_REALTIME instant `ms` milliseconds from now (a negative ms
 * counts as 0): the absolute time pthread's timed waits take. */
void sm_realtime_after(int64_t ms, struct timespec *out);

/* Sleeps ms milliseconds (a signal may cut it short). */
void sm_sleep_ms(int64_t ms);

/* Monotonic milliseconds, for durations and deadlines only. */
int64_t sm_mono_ms(void);

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
