/* sm_metrics.c — see sm_metrics.h. A fixed table is enough: routes are a
 * handful of static patterns and statuses a dozen codes. */
#include "sm_metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 256

static struct {
    const char *route;
    int status;
    uint64_t count;
} series[MAX_SERIES];
static size_t nseries;
static uint64_t overflow; /* requests past MAX_SERIES distinct pairs */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void sm_metrics_http_observe(const char *route, int status)
{
    if (!route)
        route = "unmatched";
    pthread_mutex_lock(&lock);
    size_t i;
    for (i = 0; i < nseries; i++)
        if (series[i].status == status && strcmp(series[i].route, route) == 0)
            break;
    if (i == nseries && nseries < MAX_SERIES) {
        series[nseries].route = route;
        series[nseries].status = status;
        nseries++;
    }
    if (i < nseries)
        series[i].count++;
    else
        overflow++;
    pthread_mutex_unlock(&lock);
}

void sm_buf_printf(sm_buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return;
        b->data = d;
        b->cap = cap;
    }
}

void sm_buf_free(sm_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void sm_metrics_render_http(sm_buf *b)
{
    sm_buf_printf(b, "# HELP smpost_http_requests_total HTTP requests by route and status.\n"
                     "# TYPE smpost_http_requests_total counter\n");
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nseries; i++)
        sm_buf_printf(b, "smpost_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                      series[i].route, series[i].status, (unsigned long long)series[i].count);
    if (overflow)
        sm_buf_printf(b, "smpost_http_requests_total{route=\"other\",status=\"other\"} %llu\n",
                      (unsigned long long)overflow);
    pthread_mutex_unlock(&lock);
}

void sm_metrics_render_value(sm_buf *b, const char *name, const char *type, const char *help,
                             double value)
{
    sm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name,
                  value);
}

void sm_metrics_render_info(sm_buf *b, const char *service, const char *instance)
{
    sm_buf_printf(b,
                  "# HELP smpost_instance_info The service and instance id of this process.\n"
                  "# TYPE smpost_instance_info gauge\n"
                  "smpost_instance_info{service=\"%s\",instance=\"%s\"} 1\n",
                  service, instance && *instance ? instance : "unnamed");
}
