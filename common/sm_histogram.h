/* SPDX-License-Identifier: Apache-2.0 */
/* sm_histogram.h — Prometheus histograms that cost no lock to observe.
 *
 * A histogram counts observations into fixed buckets (upper bounds given
 * at definition, ascending, in the histogram's integer unit: microseconds
 * for durations, plain counts for sizes) and keeps their sum. Observing is
 * two relaxed atomic additions on the bucket and the sum of the thread's
 * shard (below): no mutex and no line shared with other threads, so the
 * request path of every worker thread may record its latency (docs/
 * performance.md measures it). Rendering reads the counters while writers
 * go on; a scrape may then see a count one observation ahead of a bucket,
 * which Prometheus tolerates (rates over scrapes stay exact).
 *
 * Values render in the metric's base unit: ticks * unit (unit 1e-6 turns
 * microseconds into seconds, as Prometheus names want). Thread-safe. */
#ifndef SM_HISTOGRAM_H
#define SM_HISTOGRAM_H

#include "sm_metrics.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SM_HIST_MAX_BOUNDS 20

typedef struct sm_hist_spec {
    int64_t bounds[SM_HIST_MAX_BOUNDS]; /* upper bounds in ticks, ascending */
    size_t nbounds;
    double unit;                        /* base units per tick */
} sm_hist_spec;

/* Observations go to one of SM_HIST_SHARDS copies of the counters, picked
 * per thread and a cache line apart, so threads that record at once do not
 * fight over the same line (a shared line cost 10 times more than a mutex
 * in bench/metrics_observe); rendering adds the shards up. */
#define SM_HIST_SHARDS 8

typedef struct sm_hist_shard {
    _Atomic uint64_t buckets[SM_HIST_MAX_BOUNDS + 1]; /* per bucket; last: above all */
    _Atomic int64_t sum;                              /* ticks */
} __attribute__((aligned(64))) sm_hist_shard;

typedef struct sm_histogram {
    const sm_hist_spec *spec; /* static */
    sm_hist_shard shards[SM_HIST_SHARDS];
} sm_histogram;

/* The calling thread's shard number (0..SM_HIST_SHARDS-1), fixed for the
 * thread's life; other per-thread counters use it too. */
unsigned sm_hist_shard_of_thread(void);

/* Durations in microseconds rendered as seconds: 0.5 ms to 10 s. */
extern const sm_hist_spec sm_hist_seconds;
/* Delays in microseconds rendered as seconds: 1 ms to 10 minutes (how far
 * a consumer or publisher is behind, outages included). */
extern const sm_hist_spec sm_hist_delay_seconds;
/* Sizes (members, events) 1 to 1000. */
extern const sm_hist_spec sm_hist_sizes;

/* A zeroed histogram of spec (for static or calloc'ed storage, setting
 * .spec is all it takes). */
#define SM_HISTOGRAM_INIT(s) {.spec = (s)}

void sm_hist_observe(sm_histogram *h, int64_t ticks);

/* Appends # HELP and # TYPE lines of histogram `name`. */
void sm_hist_render_header(sm_buf *b, const char *name, const char *help);

/* Appends name_bucket{labels,le=...}, name_sum{labels} and
 * name_count{labels}; labels is "" or `key="value",...` without braces. */
void sm_hist_render(sm_buf *b, const char *name, const char *labels, const sm_histogram *h);

/* Total observations (tests, dashboards of one process). */
uint64_t sm_hist_count(const sm_histogram *h);
/* Sum of the observations, in ticks. */
int64_t sm_hist_sum(const sm_histogram *h);

#endif
