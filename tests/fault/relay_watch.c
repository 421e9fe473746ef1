/* SPDX-License-Identifier: Apache-2.0 */
/* relay_watch.c — see relay_watch.h. */
#include "relay_watch.h"

#include "fault_proc.h"
#include "sm_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RW_MAX 8
#define RW_TENURES 32

typedef struct tenure {
    char id[96];
    int64_t epoch;
} tenure;

struct relay_watch {
    int ports[RW_MAX];
    char ids[RW_MAX][96];
    int n, every_ms, window_ms;
    pthread_t tid;
    bool running;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards the counts below */
    rw_counts counts;
    int64_t max_epoch;    /* highest epoch seen publishing */
    tenure seen[RW_TENURES];
};

relay_view rw_relay_of(int port, int timeout_ms)
{
    relay_view r = {0};
    json_t *h = fp_health(port, timeout_ms);
    json_t *k = json_object_get(h, "kafka"), *rl = json_object_get(k, "relay");
    const char *role = json_string_value(json_object_get(rl, "role"));
    const char *holder = json_string_value(json_object_get(rl, "publisher"));
    r.answered = role != NULL;
    r.publisher = role && strcmp(role, "publisher") == 0;
    r.epoch = json_integer_value(json_object_get(rl, "leaseEpoch"));
    r.published = json_integer_value(json_object_get(k, "publishedTotal"));
    snprintf(r.holder, sizeof r.holder, "%s", holder ? holder : "");
    json_decref(h);
    return r;
}

/* Under lock. */
static void note_tenure(relay_watch *w, const char *id, int64_t epoch)
{
    for (int i = 0; i < w->counts.tenures; i++)
        if (w->seen[i].epoch == epoch && strcmp(w->seen[i].id, id) == 0)
            return;
    if (w->counts.tenures < RW_TENURES) {
        snprintf(w->seen[w->counts.tenures].id, sizeof w->seen[0].id, "%s", id);
        w->seen[w->counts.tenures++].epoch = epoch;
    }
    printf("# relay publisher: %s (lease epoch %lld)\n", id, (long long)epoch);
}

/* One round: every instance's /health, one after the other. */
static void watch_round(relay_watch *w)
{
    int64_t t0 = sm_mono_ms();
    int publishers = 0;
    for (int i = 0; i < w->n; i++) {
        relay_view r = rw_relay_of(w->ports[i], 2000);
        if (!r.publisher)
            continue;
        publishers++;
        pthread_mutex_lock(&w->lock);
        note_tenure(w, w->ids[i], r.epoch);
        /* this request left after every earlier answer arrived */
        if (r.epoch < w->max_epoch) {
            w->counts.stale++;
            printf("# VIOLATION: %s says publisher with lease epoch %lld after epoch %lld\n",
                   w->ids[i], (long long)r.epoch, (long long)w->max_epoch);
        }
        if (r.epoch > w->max_epoch)
            w->max_epoch = r.epoch;
        pthread_mutex_unlock(&w->lock);
    }
    int64_t took = sm_mono_ms() - t0;
    pthread_mutex_lock(&w->lock);
    w->counts.rounds++;
    if (publishers > 1 && took <= w->window_ms) {
        w->counts.overlaps++;
        printf("# VIOLATION: %d command-apis say publisher within %lld ms\n", publishers,
               (long long)took);
    } else if (publishers > 1) {
        w->counts.inconclusive++;
    }
    pthread_mutex_unlock(&w->lock);
}

static void *watch_main(void *arg)
{
    relay_watch *w = arg;
    while (!atomic_load(&w->stop)) {
        watch_round(w);
        sm_sleep_ms(w->every_ms);
    }
    return NULL;
}

relay_watch *rw_start(const int *ports, const char *const *ids, int n, int every_ms,
                      int overlap_window_ms)
{
    relay_watch *w = calloc(1, sizeof *w);
    if (!w || n < 1 || n > RW_MAX) {
        free(w);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        w->ports[i] = ports[i];
        snprintf(w->ids[i], sizeof w->ids[i], "%s", ids[i]);
    }
    w->n = n;
    w->every_ms = every_ms;
    w->window_ms = overlap_window_ms;
    atomic_init(&w->stop, false);
    pthread_mutex_init(&w->lock, NULL);
    w->running = pthread_create(&w->tid, NULL, watch_main, w) == 0;
    if (!w->running) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

void rw_stop(relay_watch *w)
{
    if (!w || !w->running)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->tid, NULL);
    w->running = false;
}

void rw_get(relay_watch *w, rw_counts *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->counts;
    pthread_mutex_unlock(&w->lock);
}

void rw_free(relay_watch *w)
{
    if (!w)
        return;
    rw_stop(w);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
