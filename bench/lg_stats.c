/* SPDX-License-Identifier: Apache-2.0 */
/* lg_stats.c — see lg_stats.h. */
#include "lg_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(lg_samples *s, size_t more)
{
    if (s->len + more <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + more)
        cap *= 2;
    uint32_t *us = realloc(s->us, cap * sizeof *us);
    if (!us)
        return false;
    s->us = us;
    uint16_t *target = realloc(s->target, cap * sizeof *target);
    if (!target)
        return false;
    s->target = target;
    s->cap = cap;
    return true;
}

bool lg_samples_add(lg_samples *s, int64_t latency_ns, uint16_t target)
{
    if (!reserve(s, 1))
        return false;
    int64_t us = latency_ns < 0 ? 0 : latency_ns / 1000;
    s->us[s->len] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    s->target[s->len] = target;
    s->len++;
    s->sorted = false;
    return true;
}

bool lg_samples_merge(lg_samples *into, const lg_samples *from)
{
    if (from->len == 0)
        return true;
    if (!reserve(into, from->len))
        return false;
    memcpy(into->us + into->len, from->us, from->len * sizeof *from->us);
    memcpy(into->target + into->len, from->target, from->len * sizeof *from->target);
    into->len += from->len;
    into->sorted = false;
    return true;
}

/* Sorting packs (latency, target) into one 64-bit key so one qsort keeps
 * the pairs together. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void sort_samples(lg_samples *s)
{
    if (s->sorted || s->len == 0)
        return;
    uint64_t *keys = malloc(s->len * sizeof *keys);
    if (!keys)
        return; /* unsorted percentiles are wrong but never out of bounds */
    for (size_t i = 0; i < s->len; i++)
        keys[i] = (uint64_t)s->us[i] << 16 | s->target[i];
    qsort(keys, s->len, sizeof *keys, cmp_u64);
    for (size_t i = 0; i < s->len; i++) {
        s->us[i] = (uint32_t)(keys[i] >> 16);
        s->target[i] = (uint16_t)(keys[i] & 0xffff);
    }
    free(keys);
    s->sorted = true;
}

size_t lg_samples_count(const lg_samples *s, int target)
{
    if (target < 0)
        return s->len;
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        n += s->target[i] == target;
    return n;
}

double lg_samples_pct(lg_samples *s, double p, int target)
{
    size_t n = lg_samples_count(s, target);
    if (n == 0)
        return 0;
    sort_samples(s);
    size_t rank = (size_t)ceil(p / 100.0 * (double)n); /* 1-based nearest rank */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    for (size_t i = 0, seen = 0; i < s->len; i++) {
        if (target >= 0 && s->target[i] != target)
            continue;
        if (++seen == rank)
            return s->us[i] / 1000.0;
    }
    return 0;
}

void lg_samples_free(lg_samples *s)
{
    free(s->us);
    free(s->target);
    memset(s, 0, sizeof *s);
}
