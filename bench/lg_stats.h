/* SPDX-License-Identifier: Apache-2.0 */
/* lg_stats.h — latency samples and their percentiles, for bench/loadgen.
 *
 * Every sample is kept (microseconds as uint32, with the index of the
 * target it was taken on), and percentiles are exact nearest-rank values
 * over the sorted set: a 10 s phase at 30,000 requests/s is 1.2 MB, so
 * there is no need for a histogram's approximation.
 *
 * Thread-safety: a sample set belongs to one thread; merge the sets of
 * several threads with lg_samples_merge() after they have finished. */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lg_samples {
    uint32_t *us;     /* latency in microseconds */
    uint16_t *target; /* index of the target (post id) each sample was taken on */
    size_t len, cap;
    bool sorted;
} lg_samples;

/* Appends one sample; latencies above ~71 minutes are clamped. Returns
 * false on OOM (the sample is lost). */
bool lg_samples_add(lg_samples *s, int64_t latency_ns, uint16_t target);

/* Appends all of from's samples to into. Returns false on OOM. */
bool lg_samples_merge(lg_samples *into, const lg_samples *from);

/* The p-th percentile (0 < p <= 100, nearest rank) in milliseconds, over
 * all samples (target == -1) or those of one target. Sorts s in place on
 * first use (the target indexes move with their samples). 0 if empty. */
double lg_samples_pct(lg_samples *s, double p, int target);

/* Number of samples of one target (-1: all). */
size_t lg_samples_count(const lg_samples *s, int target);

void lg_samples_free(lg_samples *s);

#endif
