/* SPDX-License-Identifier: Apache-2.0 */
/* sm_log.h — structured logging: one key=value line per event, to stderr.
 *
 *   ts=2026-11-26T23:05:01.123Z level=info event=http_request req=... status=201
 *
 * The caller passes the event name and a printf-style tail of key=value pairs.
 * Values that may hold spaces or quotes (user text, error messages) go through
 * sm_log_quote() first. Each line is written with one write(2), so lines from
 * different threads never interleave. */
#ifndef SM_LOG_H
#define SM_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { SM_LOG_DEBUG = 0, SM_LOG_INFO, SM_LOG_WARN, SM_LOG_ERROR } sm_log_level;

/* Sets the minimum level written (default info). Call before starting threads. */
void sm_log_set_level(sm_log_level level);

/* Names this process in every line (instance=ID after the level), so the
 * logs of several instances can be merged. id must be a bare token (no
 * spaces or quotes: see sm_config's instance-id check). Call before
 * starting threads. */
void sm_log_set_instance(const char *id);

/* The id set above, or "". */
const char *sm_log_instance(void);

/* Parses "debug", "info", "warn" or "error" (any case). */
bool sm_log_parse_level(const char *text, sm_log_level *out);

bool sm_log_enabled(sm_log_level level);

void sm_log(sm_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes text as a double-quoted log value into buf (cap bytes, always
 * NUL-terminated), escaping quotes, backslashes and control characters and
 * truncating long text with "...". Returns buf. */
char *sm_log_quote(const char *text, char *buf, size_t cap);

/* Copies a connection string into buf (cap bytes, always NUL-terminated)
 * with its secrets replaced by "***": the user-info of a URL (the
 * "user:pass" before the host's '@') and the value of
 * every password= or pwd= field ("mssql:host=h;password=x" ->
 * "mssql:host=h;password=***"). For logs and error messages, which must
 * never carry a credential. Returns buf. */
char *sm_log_redact_url(const char *url, char *buf, size_t cap);

#endif
