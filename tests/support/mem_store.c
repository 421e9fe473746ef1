/* SPDX-License-Identifier: Apache-2.0 */
/* mem_store.c — see mem_store.h. Events are kept in one array in append
 * order, which doubles as the global order for read_all. */
#include "mem_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mem_snapshot {
    sm_uuid_str id;
    int schema;
    int64_t version;
    char *data;
} mem_snapshot;

typedef struct mem_store {
    mem_store_ctl ctl; /* first, so a ctl pointer is the store's address */
    pthread_mutex_t lock;
    pthread_cond_t gate;   /* hold_appends changed */
    bool hold_appends;
    sm_event_list all;
    mem_snapshot *snaps;
    size_t nsnaps;
} mem_store;

static int64_t last_version(mem_store *m, const char *id)
{
    int64_t v = -1;
    for (size_t i = 0; i < m->all.len; i++)
        if (strcmp(m->all.items[i].aggregate_id, id) == 0 && m->all.items[i].version > v)
            v = m->all.items[i].version;
    return v;
}

static es_status down(sm_error *err)
{
    sm_fail(err, SM_ERR_UNAVAILABLE, "event store (memory) is down");
    return ES_UNAVAILABLE;
}

static es_status mem_append(void *impl, const char *id, int64_t expected, const sm_event *evs,
                            size_t n, sm_error *err)
{
    mem_store *m = impl;
    es_status st = ES_OK;
    pthread_mutex_lock(&m->lock);
    while (m->hold_appends) {
        m->ctl.appends_held++;
        pthread_cond_wait(&m->gate, &m->lock);
        m->ctl.appends_held--;
    }
    m->ctl.append_calls++;
    if (m->ctl.unavailable || m->ctl.appends_fail) {
        st = down(err);
    } else if (m->ctl.conflicts_left > 0 || last_version(m, id) != expected) {
        if (m->ctl.conflicts_left > 0)
            m->ctl.conflicts_left--;
        sm_fail(err, SM_ERR_CONFLICT, "stream %s moved on", id);
        st = ES_CONFLICT;
    } else {
        for (size_t i = 0; i < n; i++) {
            sm_event *slot = sm_event_list_push(&m->all);
            if (!slot || !sm_event_copy(slot, &evs[i])) {
                st = ES_INTERNAL;
                break;
            }
        }
        if (st == ES_OK) {
            m->ctl.appends++;
            if ((int)n > m->ctl.max_batch)
                m->ctl.max_batch = (int)n;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

static es_status mem_load(void *impl, const char *id, int64_t from, size_t limit,
                          sm_event_list *out, sm_error *err)
{
    mem_store *m = impl;
    es_status st = ES_OK;
    pthread_mutex_lock(&m->lock);
    m->ctl.load_calls++;
    if (m->ctl.unavailable) {
        st = down(err);
    } else {
        size_t got = 0;
        /* append order is version order within a stream */
        for (size_t i = 0; i < m->all.len && (!limit || got < limit); i++) {
            const sm_event *ev = &m->all.items[i];
            if (strcmp(ev->aggregate_id, id) != 0 || ev->version < from)
                continue;
            sm_event *slot = sm_event_list_push(out);
            if (!slot || !sm_event_copy(slot, ev)) {
                st = ES_INTERNAL;
                break;
            }
            got++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

static es_status mem_read_all(void *impl, const es_cursor *after, size_t limit,
                              sm_event_list *out, es_cursor *next, sm_error *err)
{
    mem_store *m = impl;
    size_t from = after && after->token[0] ? (size_t)strtoull(after->token, NULL, 10) : 0;
    es_status st = ES_OK;
    pthread_mutex_lock(&m->lock);
    if (m->ctl.unavailable) {
        st = down(err);
    } else {
        size_t i;
        for (i = from; i < m->all.len && i - from < limit; i++) {
            sm_event *slot = sm_event_list_push(out);
            if (!slot || !sm_event_copy(slot, &m->all.items[i])) {
                st = ES_INTERNAL;
                break;
            }
        }
        if (st == ES_OK && i > from && next)
            snprintf(next->token, sizeof next->token, "%zu", i);
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

static es_status mem_ping(void *impl, sm_error *err)
{
    mem_store *m = impl;
    pthread_mutex_lock(&m->lock);
    bool dn = m->ctl.unavailable;
    pthread_mutex_unlock(&m->lock);
    return dn ? down(err) : ES_OK;
}

static es_status mem_save_snapshot(void *impl, const char *id, int64_t version, int schema,
                                   const char *data, sm_error *err)
{
    mem_store *m = impl;
    es_status st = ES_OK;
    pthread_mutex_lock(&m->lock);
    bool have = false;
    for (size_t i = 0; i < m->nsnaps && !have; i++)
        have = strcmp(m->snaps[i].id, id) == 0 && m->snaps[i].schema == schema &&
               m->snaps[i].version == version;
    if (m->ctl.unavailable) {
        st = down(err);
    } else if (!have) {
        mem_snapshot *more = realloc(m->snaps, (m->nsnaps + 1) * sizeof *more);
        char *copy = strdup(data);
        if (!more || !copy) {
            free(copy);
            st = ES_INTERNAL;
        }
        if (more)
            m->snaps = more;
        if (st == ES_OK) {
            mem_snapshot *sn = &m->snaps[m->nsnaps++];
            snprintf(sn->id, sizeof sn->id, "%s", id);
            sn->schema = schema;
            sn->version = version;
            sn->data = copy;
            m->ctl.snapshot_saves++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

static es_status mem_load_snapshot(void *impl, const char *id, int64_t max_version, int schema,
                                   int64_t *version, char **data, sm_error *err)
{
    mem_store *m = impl;
    es_status st = ES_NOT_FOUND;
    pthread_mutex_lock(&m->lock);
    const mem_snapshot *best = NULL;
    for (size_t i = 0; i < m->nsnaps; i++) {
        const mem_snapshot *sn = &m->snaps[i];
        if (strcmp(sn->id, id) == 0 && sn->schema == schema && sn->version <= max_version &&
            (!best || sn->version > best->version))
            best = sn;
    }
    if (m->ctl.unavailable) {
        st = down(err);
    } else if (best) {
        *version = best->version;
        *data = strdup(best->data);
        st = *data ? ES_OK : ES_INTERNAL;
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

static es_status mem_version_at(void *impl, const char *id, int64_t at_ms, int64_t *version,
                                sm_error *err)
{
    mem_store *m = impl;
    es_status st = ES_OK;
    pthread_mutex_lock(&m->lock);
    if (m->ctl.unavailable)
        st = down(err);
    for (size_t i = 0; st == ES_OK && i < m->all.len; i++) {
        const sm_event *ev = &m->all.items[i];
        if (strcmp(ev->aggregate_id, id) == 0 && ev->timestamp_ms <= at_ms &&
            ev->version > *version)
            *version = ev->version;
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

static void mem_close(void *impl)
{
    mem_store *m = impl;
    for (size_t i = 0; i < m->nsnaps; i++)
        free(m->snaps[i].data);
    free(m->snaps);
    sm_event_list_free(&m->all);
    pthread_cond_destroy(&m->gate);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* No outbox operations: the dispatcher and routes never call them, and the
 * relay is tested against real adapters. */
static const es_ops mem_ops = {
    .name = "memory",
    .multi_append = true,
    .append = mem_append,
    .load = mem_load,
    .read_all = mem_read_all,
    .ping = mem_ping,
    .close = mem_close,
    .save_snapshot = mem_save_snapshot,
    .load_snapshot = mem_load_snapshot,
    .version_at = mem_version_at,
};

es_store *mem_store_new(mem_store_ctl **ctl)
{
    mem_store *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->gate, NULL);
    es_store *s = es_store_new(&mem_ops, m);
    if (s && ctl)
        *ctl = &m->ctl;
    return s;
}

void mem_store_lock(mem_store_ctl *ctl) { pthread_mutex_lock(&((mem_store *)ctl)->lock); }
void mem_store_unlock(mem_store_ctl *ctl) { pthread_mutex_unlock(&((mem_store *)ctl)->lock); }

void mem_store_hold_appends(mem_store_ctl *ctl, bool hold)
{
    mem_store *m = (mem_store *)ctl;
    pthread_mutex_lock(&m->lock);
    m->hold_appends = hold;
    pthread_cond_broadcast(&m->gate);
    pthread_mutex_unlock(&m->lock);
}

int mem_store_appends_held(mem_store_ctl *ctl)
{
    mem_store *m = (mem_store *)ctl;
    pthread_mutex_lock(&m->lock);
    int n = m->ctl.appends_held;
    pthread_mutex_unlock(&m->lock);
    return n;
}
