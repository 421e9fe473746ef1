/* SPDX-License-Identifier: Apache-2.0 */
/* relay_lease.c — the relay's leader election (relay_lease.h). */
#include "relay_lease.h"

#include "sm_log.h"
#include "sm_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relay_lease {
    es_store *store;
    char owner[ES_LEASE_OWNER_MAX];
    int64_t ttl_ms, margin_ms;
    /* The epoch held, or the last one held (0: none since start or the
     * last release). It is presented on every attempt, even after the
     * lease was lost: only a fresh process (epoch 0) may take a live lease
     * back from its own instance id (a restart), so a paused or duplicate
     * process with that id cannot steal it from its successor. */
    int64_t epoch;
    int64_t deadline_mono;  /* publish only before this (sm_mono_ms) */
    int64_t next_check_mono;
    relay_lease_info info;  /* info.leader: the last attempt succeeded */
};

relay_lease *relay_lease_new(es_store *store, const char *owner, int64_t ttl_ms)
{
    relay_lease *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->store = store;
    snprintf(l->owner, sizeof l->owner, "%s", owner);
    l->ttl_ms = ttl_ms < 300 ? 300 : ttl_ms;
    l->margin_ms = l->ttl_ms / 3;
    return l;
}

void relay_lease_free(relay_lease *l) { free(l); }

bool relay_lease_valid(const relay_lease *l)
{
    return l->info.leader && sm_mono_ms() < l->deadline_mono;
}

int relay_lease_next_check_ms(const relay_lease *l)
{
    int64_t left = l->next_check_mono - sm_mono_ms();
    return left < 0 ? 0 : (int)left;
}

static void lose(relay_lease *l, const char *why)
{
    if (l->info.leader) {
        l->info.lost_total++;
        char q[300];
        sm_log(SM_LOG_WARN, "relay_lease_lost", "owner=%s epoch=%lld reason=%s", l->owner,
               (long long)l->epoch, sm_log_quote(why, q, sizeof q));
    }
    l->info.leader = false;
}

bool relay_lease_check(relay_lease *l, bool force)
{
    int64_t start = sm_mono_ms();
    if (!force && start < l->next_check_mono)
        return relay_lease_valid(l);
    l->next_check_mono = start + l->ttl_ms / 3;
    es_lease got = {"", 0, 0};
    sm_error err = {0};
    es_status st = es_lease_acquire(l->store, RELAY_LEASE_NAME, l->owner, l->epoch, sm_now_ms(),
                                    l->ttl_ms, &got, &err);
    if (st == ES_OK) {
        bool was = l->info.leader;
        l->epoch = got.epoch;
        l->deadline_mono = start + l->ttl_ms - l->margin_ms;
        l->info.leader = true;
        l->info.valid_until_mono = l->deadline_mono;
        l->info.epoch = got.epoch;
        snprintf(l->info.holder, sizeof l->info.holder, "%s", got.owner);
        if (!was) {
            l->info.acquired_total++;
            sm_log(SM_LOG_INFO, "relay_lease_acquired", "owner=%s epoch=%lld ttl_ms=%lld",
                   l->owner, (long long)got.epoch, (long long)l->ttl_ms);
        }
    } else if (st == ES_CONFLICT) {
        /* our own id under a newer epoch: a restarted us, or a second
         * process configured with the same id (a mistake worth a line) */
        bool clash = strcmp(got.owner, l->owner) == 0;
        if (clash && l->info.leader)
            sm_log(SM_LOG_ERROR, "relay_lease_owner_clash",
                   "owner=%s epoch=%lld holder_epoch=%lld effect=\"standing by; instance ids must"
                   " be unique among the processes sharing an event store\"",
                   l->owner, (long long)l->epoch, (long long)got.epoch);
        lose(l, clash ? "taken over under this instance id by another process"
                      : "held by another instance");
        l->info.epoch = got.epoch;
        snprintf(l->info.holder, sizeof l->info.holder, "%s", got.owner);
    } else if (!relay_lease_valid(l)) {
        /* A store error keeps the lease only until the local deadline. */
        lose(l, err.message);
    }
    return relay_lease_valid(l);
}

void relay_lease_release(relay_lease *l)
{
    if (l->epoch <= 0)
        return;
    /* also after a lapse: the row may still be ours, and expiring it
     * spares the successor the wait (the store ignores a stale epoch) */
    sm_error err = {0};
    if (es_lease_release(l->store, RELAY_LEASE_NAME, l->owner, l->epoch, &err) == ES_OK &&
        l->info.leader)
        sm_log(SM_LOG_INFO, "relay_lease_released", "owner=%s epoch=%lld", l->owner,
               (long long)l->epoch);
    l->info.leader = false;
    l->epoch = 0;
}

void relay_lease_get_info(const relay_lease *l, relay_lease_info *out) { *out = l->info; }
