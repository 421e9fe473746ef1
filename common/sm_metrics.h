/* SPDX-License-Identifier: Apache-2.0 */
/* sm_metrics.h — process-wide counters rendered as Prometheus text.
 *
 * HTTP requests are counted per (route pattern, status) by http_serve();
 * each binary adds its own gauges and counters when it renders /metrics.
 * Thread-safe. Route patterns must be static strings (they are kept). */
#ifndef SM_METRICS_H
#define SM_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Counts one request to route (static string; NULL counts as "unmatched")
 * answered with status after duration_us microseconds, in
 * smpost_http_requests_total{route,status} and
 * smpost_http_request_duration_seconds{route,code="2xx"...}. Takes no lock
 * once the route has been seen with that status (sm_histogram.h). */
void sm_metrics_http_observe(const char *route, int status, int64_t duration_us);

/* A growable text buffer for rendering. */
typedef struct sm_buf {
    char *data;
    size_t len, cap;
} sm_buf;

void sm_buf_printf(sm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sm_buf_free(sm_buf *b);

/* Appends smpost_http_requests_total{route,status} for every pair seen
 * and the latency histogram of every route and status class seen. */
void sm_metrics_render_http(sm_buf *b);

/* Appends one metric with HELP and TYPE lines. */
void sm_metrics_render_value(sm_buf *b, const char *name, const char *type, const char *help,
                             double value);

/* Appends smpost_instance_info{service,instance} 1, which names the process
 * that rendered the page (instance: a bare token, see
 * sm_config_instance_id; "" is rendered as "unnamed"),
 * smpost_build_info{service,version,commit} 1, and the standard process_*
 * metrics (CPU seconds, resident and virtual memory, open and maximum file
 * descriptors, threads, start time) read from /proc/self. */
void sm_metrics_render_info(sm_buf *b, const char *service, const char *instance);

#endif
