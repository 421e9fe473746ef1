/* SPDX-License-Identifier: Apache-2.0 */
/* metrics_observe.c — what recording one request's metrics costs a worker
 * thread (sm_metrics_http_observe: the request counter and the latency
 * histogram), alone and with threads recording at once, beside what the
 * same counting cost under one mutex (the way requests were counted before
 * the histograms). Prints one line per thread count:
 *
 *   metrics_observe threads=4 lockfree_ns=.. mutex_ns=..
 *
 * ns per observation, per thread (wall time / observations of a thread). */
#include "sm_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 2000000

static const char *const routes[] = {"/api/v1/PostLookup/byId/{postId}", "/api/v1/LikePost/{postId}",
                                     "/api/v1/NewPost", "/health"};

/* the old way: one mutex around a table scan and an increment */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *route;
    int status;
    unsigned long long count;
} table[16];
static size_t ntable;

static void observe_mutex(const char *route, int status)
{
    pthread_mutex_lock(&mu);
    size_t i;
    for (i = 0; i < ntable; i++)
        if (table[i].status == status && strcmp(table[i].route, route) == 0)
            break;
    if (i == ntable && ntable < 16) {
        table[i].route = route;
        table[i].status = status;
        ntable++;
    }
    if (i < ntable)
        table[i].count++;
    pthread_mutex_unlock(&mu);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int use_mutex;

static void *run(void *arg)
{
    long seed = (long)(size_t)arg;
    for (long i = 0; i < N; i++) {
        const char *r = routes[(i + seed) & 3];
        if (use_mutex)
            observe_mutex(r, 200);
        else
            sm_metrics_http_observe(r, 200, 300 + (i & 1023));
    }
    return NULL;
}

static double per_op_ns(int threads)
{
    pthread_t t[16];
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, run, (void *)(size_t)i);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return (now_s() - t0) * 1e9 / N;
}

int main(void)
{
    for (int threads = 1; threads <= 8; threads *= 2) {
        use_mutex = 0;
        double lf = per_op_ns(threads);
        use_mutex = 1;
        double mx = per_op_ns(threads);
        printf("metrics_observe threads=%d lockfree_ns=%.1f mutex_ns=%.1f\n", threads, lf, mx);
    }
    return 0;
}
