/* sm_time.h — wall-clock time as milliseconds since the Unix epoch, and its
 * UTC ISO-8601 text form ("2026-11-26T23:05:01.123Z"). Thread-safe. */
#ifndef SM_TIME_H
#define SM_TIME_H

#include <stdbool.h>
#include <stdint.h>

#define SM_TIME_STR_LEN 24 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
typedef char sm_time_str[SM_TIME_STR_LEN + 1];

/* Current UTC time in milliseconds (CLOCK_REALTIME). */
int64_t sm_now_ms(void);

/* Monotonic milliseconds, for durations and deadlines only. */
int64_t sm_mono_ms(void);

/* Formats ms as UTC ISO-8601 with millisecond precision and a 'Z'. */
void sm_time_format(int64_t ms, sm_time_str out);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into UTC ms.
 * Fractions beyond milliseconds are truncated. The zone is mandatory, so a
 * local time can never be mistaken for UTC. Returns false on anything else. */
bool sm_time_parse(const char *text, int64_t *out_ms);

#endif
