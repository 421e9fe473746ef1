/* SPDX-License-Identifier: Apache-2.0 */
/* sm_histogram.c — see sm_histogram.h. */
#include "sm_histogram.h"

#include <stdint.h>
#include <stdio.h>

const sm_hist_spec sm_hist_seconds = {
    .bounds = {500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
               2500000, 5000000, 10000000},
    .nbounds = 14,
    .unit = 1e-6,
};

const sm_hist_spec sm_hist_delay_seconds = {
    .bounds = {1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
               5000000, 10000000, 30000000, 60000000, 300000000, 600000000},
    .nbounds = 17,
    .unit = 1e-6,
};

const sm_hist_spec sm_hist_sizes = {
    .bounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000},
    .nbounds = 11,
    .unit = 1,
};

unsigned sm_hist_shard_of_thread(void)
{
    static atomic_uint next;
    static _Thread_local unsigned mine = UINT32_MAX;
    if (mine == UINT32_MAX)
        mine = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % SM_HIST_SHARDS;
    return mine;
}

void sm_hist_observe(sm_histogram *h, int64_t ticks)
{
    const sm_hist_spec *s = h->spec;
    size_t i = 0;
    while (i < s->nbounds && ticks > s->bounds[i])
        i++;
    sm_hist_shard *sh = &h->shards[sm_hist_shard_of_thread()];
    atomic_fetch_add_explicit(&sh->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->sum, ticks, memory_order_relaxed);
}

static uint64_t bucket(const sm_histogram *h, size_t i)
{
    uint64_t n = 0;
    for (size_t k = 0; k < SM_HIST_SHARDS; k++)
        n += atomic_load_explicit(&h->shards[k].buckets[i], memory_order_relaxed);
    return n;
}

uint64_t sm_hist_count(const sm_histogram *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->spec->nbounds; i++)
        n += bucket(h, i);
    return n;
}

int64_t sm_hist_sum(const sm_histogram *h)
{
    int64_t sum = 0;
    for (size_t k = 0; k < SM_HIST_SHARDS; k++)
        sum += atomic_load_explicit(&h->shards[k].sum, memory_order_relaxed);
    return sum;
}

void sm_hist_render_header(sm_buf *b, const char *name, const char *help)
{
    sm_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
}

void sm_hist_render(sm_buf *b, const char *name, const char *labels, const sm_histogram *h)
{
    const sm_hist_spec *s = h->spec;
    const char *sep = labels && *labels ? "," : "";
    if (!labels)
        labels = "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= s->nbounds; i++) {
        cumulative += bucket(h, i);
        if (i < s->nbounds)
            sm_buf_printf(b, "%s_bucket{%s%sle=\"%.6g\"} %llu\n", name, labels, sep,
                          (double)s->bounds[i] * s->unit, (unsigned long long)cumulative);
        else
            sm_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                          (unsigned long long)cumulative);
    }
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    sm_buf_printf(b, "%s_sum%s%s%s %.17g\n%s_count%s%s%s %llu\n", name, open, labels, close,
                  (double)sm_hist_sum(h) * s->unit, name, open, labels, close,
                  (unsigned long long)cumulative);
}
