/* SPDX-License-Identifier: Apache-2.0 */
/* sm_log.c — see sm_log.h. */
#include "sm_log.h"

#include "sm_secret.h"
#include "sm_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Set once at start-up, before worker threads exist; read-only afterwards. */
static sm_log_level min_level = SM_LOG_INFO;
static char instance[96]; /* "" until sm_log_set_instance */

static const char *level_names[] = {"debug", "info", "warn", "error"};

void sm_log_set_level(sm_log_level level) { min_level = level; }

void sm_log_set_instance(const char *id)
{
    snprintf(instance, sizeof instance, "%s", id ? id : "");
}

const char *sm_log_instance(void) { return instance; }

bool sm_log_enabled(sm_log_level level) { return level >= min_level; }

bool sm_log_parse_level(const char *text, sm_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (sm_log_level)i;
            return true;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = SM_LOG_WARN;
        return true;
    }
    return false;
}

void sm_log(sm_log_level level, const char *event, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[4096];
    sm_time_str ts;
    sm_time_format(sm_now_ms(), ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s%s%s event=%s ", ts,
                     level_names[level], instance[0] ? " instance=" : "", instance, event);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    while (len > 0 && line[len - 1] == ' ')
        len--;
    line[len++] = '\n';
    /* One write per line keeps concurrent lines whole; a failed log write
     * has nowhere better to be reported, so it is deliberately ignored. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

char *sm_log_quote(const char *text, char *buf, size_t cap)
{
    if (cap < 8) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    size_t o = 0;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        char esc = 0;
        if (*p == '"' || *p == '\\')
            esc = (char)*p;
        else if (*p < 0x20)
            esc = *p == '\n' ? 'n' : *p == '\t' ? 't' : '?';
        size_t need = esc ? 2 : 1;
        /* Keep room for the closing quote and the NUL; if this character
         * does not fit, end with "..." instead (backing off to make room). */
        if (o + need + 2 > cap) {
            while (o > 1 && o + 3 + 2 > cap)
                o--;
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (esc) {
            buf[o++] = '\\';
            buf[o++] = esc;
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Appends n bytes of text to buf at *o, as far as cap allows. */
static void append(char *buf, size_t cap, size_t *o, const char *text, size_t n)
{
    size_t room = cap - 1 - *o;
    n = n < room ? n : room;
    memcpy(buf + *o, text, n);
    *o += n;
}

/* The secrets are found by sm_secret_next_span (sm_secret.h), which the
 * example-password check shares. */
char *sm_log_redact_url(const char *url, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    const char *text = url ? url : "";
    size_t o = 0, at = 0, start, len, pass_off;
    while (sm_secret_next_span(text, at, &start, &len, &pass_off)) {
        append(buf, cap, &o, text + at, start - at);
        append(buf, cap, &o, "***", 3);
        at = start + len;
    }
    append(buf, cap, &o, text + at, strlen(text + at));
    buf[o] = '\0';
    return buf;
}
