/* SPDX-License-Identifier: Apache-2.0 */
/* sm_metrics.c — see sm_metrics.h. A fixed table is enough: routes are a
 * handful of static patterns and statuses a dozen codes. */
#include "sm_metrics.h"

#include "sm_histogram.h"
#include "sm_version.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <dirent.h>

#define MAX_SERIES 256
#define MAX_LATENCY 128

/* Requests are counted without a lock: a pair is looked up in a table
 * that only grows, whose entries are filled before the release store of
 * its length publishes them; only adding a pair (the first request of a
 * route with that status) takes the mutex. */
typedef struct {
    _Atomic uint64_t n;
} __attribute__((aligned(64))) shard_count; /* one per cache line */

static struct {
    const char *route;
    int status;
    shard_count count[SM_HIST_SHARDS]; /* by sm_hist_shard_of_thread() */
} series[MAX_SERIES];
static atomic_size_t nseries;
static _Atomic uint64_t overflow; /* requests past MAX_SERIES distinct pairs */

/* Latency per route and status class ("2xx"...), the same way. */
static struct {
    const char *route;
    int class; /* 1..5 */
    sm_histogram h;
} latency[MAX_LATENCY];
static atomic_size_t nlatency;
static _Atomic uint64_t latency_overflow;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards adding entries */

static size_t find_series(size_t n, const char *route, int status)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (series[i].status == status && strcmp(series[i].route, route) == 0)
            break;
    return i;
}

static size_t find_latency(size_t n, const char *route, int class)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (latency[i].class == class && strcmp(latency[i].route, route) == 0)
            break;
    return i;
}

/* The entry of (route, status), added if new; MAX_SERIES when full. */
static size_t series_slot(const char *route, int status)
{
    size_t n = atomic_load_explicit(&nseries, memory_order_acquire);
    size_t i = find_series(n, route, status);
    if (i < n)
        return i;
    pthread_mutex_lock(&lock);
    n = atomic_load_explicit(&nseries, memory_order_relaxed);
    i = find_series(n, route, status);
    if (i == n && n < MAX_SERIES) {
        series[n].route = route;
        series[n].status = status;
        atomic_store_explicit(&nseries, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    return i < MAX_SERIES ? i : MAX_SERIES;
}

static sm_histogram *latency_of(const char *route, int class)
{
    size_t n = atomic_load_explicit(&nlatency, memory_order_acquire);
    size_t i = find_latency(n, route, class);
    if (i < n)
        return &latency[i].h;
    pthread_mutex_lock(&lock);
    n = atomic_load_explicit(&nlatency, memory_order_relaxed);
    i = find_latency(n, route, class);
    if (i == n && n < MAX_LATENCY) {
        latency[n].route = route;
        latency[n].class = class;
        latency[n].h.spec = &sm_hist_seconds;
        atomic_store_explicit(&nlatency, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    return i < MAX_LATENCY ? &latency[i].h : NULL;
}

void sm_metrics_http_observe(const char *route, int status, int64_t duration_us)
{
    if (!route)
        route = "unmatched";
    size_t i = series_slot(route, status);
    if (i < MAX_SERIES)
        atomic_fetch_add_explicit(&series[i].count[sm_hist_shard_of_thread()].n, 1,
                                  memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&overflow, 1, memory_order_relaxed);
    int class = status >= 100 && status < 600 ? status / 100 : 5;
    sm_histogram *h = latency_of(route, class);
    if (h)
        sm_hist_observe(h, duration_us);
    else
        atomic_fetch_add_explicit(&latency_overflow, 1, memory_order_relaxed);
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
    size_t n = atomic_load_explicit(&nseries, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        uint64_t count = 0;
        for (size_t k = 0; k < SM_HIST_SHARDS; k++)
            count += atomic_load_explicit(&series[i].count[k].n, memory_order_relaxed);
        sm_buf_printf(b, "smpost_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                      series[i].route, series[i].status, (unsigned long long)count);
    }
    if (atomic_load(&overflow))
        sm_buf_printf(b, "smpost_http_requests_total{route=\"other\",status=\"other\"} %llu\n",
                      (unsigned long long)atomic_load(&overflow));
    sm_hist_render_header(b, "smpost_http_request_duration_seconds",
                          "Time from a request's headers read to its reply written, by route "
                          "and status class.");
    n = atomic_load_explicit(&nlatency, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        char labels[200];
        snprintf(labels, sizeof labels, "route=\"%s\",code=\"%dxx\"", latency[i].route,
                 latency[i].class);
        sm_hist_render(b, "smpost_http_request_duration_seconds", labels, &latency[i].h);
    }
}

void sm_metrics_render_value(sm_buf *b, const char *name, const char *type, const char *help,
                             double value)
{
    sm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name,
                  value);
}

/* System boot time (seconds since the epoch), for the start time. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    long long btime = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &btime) == 1)
            break;
    if (f)
        fclose(f);
    return btime;
}

static long count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

/* The process collector every Prometheus client library has, from
 * /proc/self: CPU, memory, file descriptors, threads, start time. */
static void render_process(sm_buf *b)
{
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    /* fields after the command name, which is in parentheses and may hold
     * spaces: state is field 3; utime 14, stime 15, num_threads 20,
     * starttime 22, vsize 23, rss 24 */
    char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long threads = 0, rss = 0;
    if (p)
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %lld %*d "
               "%llu %llu %lld",
               &utime, &stime, &threads, &start, &vsize, &rss);
    double tick = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    sm_metrics_render_value(b, "process_cpu_seconds_total", "counter",
                            "Total user and system CPU time spent in seconds.",
                            (double)(utime + stime) / tick);
    sm_metrics_render_value(b, "process_resident_memory_bytes", "gauge",
                            "Resident memory size in bytes.", (double)rss * (double)page);
    sm_metrics_render_value(b, "process_virtual_memory_bytes", "gauge",
                            "Virtual memory size in bytes.", (double)vsize);
    sm_metrics_render_value(b, "process_open_fds", "gauge", "Number of open file descriptors.",
                            (double)count_open_fds());
    sm_metrics_render_value(b, "process_max_fds", "gauge",
                            "Maximum number of open file descriptors.", (double)rl.rlim_cur);
    sm_metrics_render_value(b, "process_threads", "gauge", "Number of OS threads.",
                            (double)threads);
    sm_metrics_render_value(b, "process_start_time_seconds", "gauge",
                            "Start time of the process since unix epoch in seconds.",
                            (double)boot_time() + (double)start / tick);
}

void sm_metrics_render_info(sm_buf *b, const char *service, const char *instance)
{
    sm_buf_printf(b,
                  "# HELP smpost_instance_info The service and instance id of this process.\n"
                  "# TYPE smpost_instance_info gauge\n"
                  "smpost_instance_info{service=\"%s\",instance=\"%s\"} 1\n",
                  service, instance && *instance ? instance : "unnamed");
    sm_buf_printf(b,
                  "# HELP smpost_build_info The version and commit this binary was built from.\n"
                  "# TYPE smpost_build_info gauge\n"
                  "smpost_build_info{service=\"%s\",version=\"%s\",commit=\"%s\"} 1\n",
                  service, sm_version(), sm_commit());
    render_process(b);
}
