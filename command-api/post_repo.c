/* SPDX-License-Identifier: Apache-2.0 */
/* post_repo.c — rehydration with snapshots and the aggregate cache, and the
 * background snapshot writer (post_repo.h). */
#include "post_repo.h"

#include "post_cache.h"
#include "post_snapshot.h"
#include "sm_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_CAP 256

struct post_repo {
    es_store *store;
    post_repo_config cfg;
    post_cache *cache;

    pthread_mutex_t mu;        /* guards the queue and the flags below */
    pthread_cond_t work, idle;
    sm_uuid_str queue[QUEUE_CAP];
    size_t qhead, qlen;
    bool busy, stop, started;
    pthread_t thread;

    atomic_uint_fast64_t loads, snapshot_hits, snapshots_ignored, snapshots_written,
        snapshot_errors;
};

/* ---- the snapshot queue -------------------------------------------------- */
static void queue_hint(post_repo *r, const char *post_id)
{
    if (!r->started)
        return;
    pthread_mutex_lock(&r->mu);
    bool queued = false;
    for (size_t i = 0; i < r->qlen && !queued; i++)
        queued = strcmp(r->queue[(r->qhead + i) % QUEUE_CAP], post_id) == 0;
    if (!queued && r->qlen < QUEUE_CAP) {
        memcpy(r->queue[(r->qhead + r->qlen) % QUEUE_CAP], post_id, sizeof(sm_uuid_str));
        r->qlen++;
        pthread_cond_signal(&r->work);
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- rehydration --------------------------------------------------------- */
/* Applies evs to p, remembering the last event's id. */
static sm_status apply_all(post_state *p, const sm_event_list *evs, size_t from,
                           sm_uuid_str last_event_id, sm_error *err)
{
    for (size_t i = from; i < evs->len; i++) {
        sm_status st = post_apply(p, &evs->items[i], err);
        if (st != SM_OK)
            return st;
        if (last_event_id)
            memcpy(last_event_id, evs->items[i].event_id, sizeof(sm_uuid_str));
    }
    return SM_OK;
}

/* The snapshot to start from, or SM_ERR_NOT_FOUND if there is none worth
 * using (none stored, or one that does not decode: counted and logged). */
static sm_status find_snapshot(post_repo *r, const char *post_id, int64_t max_version,
                               post_state *snap, sm_uuid_str after, sm_error *err)
{
    int64_t version;
    char *data;
    es_status es = es_load_snapshot(r->store, post_id, max_version, POST_SNAPSHOT_SCHEMA,
                                    &version, &data, err);
    if (es == ES_NOT_FOUND)
        return SM_ERR_NOT_FOUND;
    if (es != ES_OK)
        return es_to_sm_status(es);
    sm_error why;
    sm_status st = post_snapshot_decode(data, post_id, version, snap, after, &why);
    free(data);
    if (st == SM_OK)
        return SM_OK;
    atomic_fetch_add(&r->snapshots_ignored, 1);
    sm_log(SM_LOG_WARN, "snapshot_ignored", "post=%s version=%lld reason=undecodable", post_id,
           (long long)version);
    return SM_ERR_NOT_FOUND;
}

/* Rebuilds post_id up to max_version into *out. *from_snapshot receives the
 * version of the snapshot used (-1: none) and *applied how many events were
 * folded on top of it. */
static sm_status rebuild(post_repo *r, const char *post_id, int64_t max_version, post_state *out,
                         sm_uuid_str last_event_id, int64_t *from_snapshot, size_t *applied,
                         sm_error *err)
{
    atomic_fetch_add(&r->loads, 1);
    post_init(out);
    memcpy(out->id, post_id, sizeof out->id);
    *from_snapshot = -1;
    *applied = 0;
    sm_uuid_str after = "";
    sm_status st = SM_ERR_NOT_FOUND;
    if (r->cfg.snapshot_every > 0) {
        st = find_snapshot(r, post_id, max_version, out, after, err);
        if (st != SM_OK && st != SM_ERR_NOT_FOUND)
            return st;
        if (st != SM_OK) /* a failed decode leaves out empty */
            memcpy(out->id, post_id, sizeof out->id);
    }
    int64_t from = st == SM_OK ? out->version : 0;
    int64_t limit = max_version == INT64_MAX ? 0 : max_version - from + 1;
    sm_event_list evs = {0};
    es_status es = es_load(r->store, post_id, from, (size_t)limit, &evs, err);
    if (es != ES_OK) {
        sm_event_list_free(&evs);
        post_free(out);
        return es_to_sm_status(es);
    }
    size_t skip = 0;
    if (st == SM_OK) {
        /* The snapshot's own event must still be there, with the same id. */
        if (evs.len > 0 && evs.items[0].version == from &&
            strcmp(evs.items[0].event_id, after) == 0) {
            skip = 1;
            *from_snapshot = from;
            memcpy(last_event_id, after, sizeof(sm_uuid_str));
            atomic_fetch_add(&r->snapshot_hits, 1);
        } else {
            atomic_fetch_add(&r->snapshots_ignored, 1);
            sm_log(SM_LOG_WARN, "snapshot_ignored", "post=%s version=%lld reason=stream_differs",
                   post_id, (long long)from);
            sm_event_list_free(&evs);
            post_free(out);
            memcpy(out->id, post_id, sizeof out->id);
            es = es_load(r->store, post_id, 0, max_version == INT64_MAX ? 0 : (size_t)max_version + 1,
                         &evs, err);
            if (es != ES_OK) {
                sm_event_list_free(&evs);
                return es_to_sm_status(es);
            }
        }
    }
    st = apply_all(out, &evs, skip, last_event_id, err);
    *applied = evs.len - skip;
    sm_event_list_free(&evs);
    if (st != SM_OK) {
        post_free(out);
        memcpy(out->id, post_id, sizeof out->id);
    }
    return st;
}

sm_status post_repo_load_at(post_repo *r, const char *post_id, int64_t max_version,
                            post_state *out, sm_error *err)
{
    sm_uuid_str last;
    int64_t snap;
    size_t applied;
    if (max_version < 0) {
        post_init(out);
        memcpy(out->id, post_id, sizeof out->id);
        return SM_OK;
    }
    return rebuild(r, post_id, max_version, out, last, &snap, &applied, err);
}

/* Brings a cached state up to date with the events stored after it. */
static sm_status catch_up(post_repo *r, post_state *p, sm_error *err)
{
    sm_event_list evs = {0};
    es_status es = es_load(r->store, p->id, p->version + 1, 0, &evs, err);
    sm_status st = es == ES_OK ? apply_all(p, &evs, 0, NULL, err) : es_to_sm_status(es);
    sm_event_list_free(&evs);
    return st;
}

sm_status post_repo_acquire(post_repo *r, const char *post_id, post_state *out, sm_error *err)
{
    if (r->cache && post_cache_take(r->cache, post_id, out)) {
        sm_status st = catch_up(r, out, err);
        if (st != SM_OK)
            post_free(out); /* the next load starts from the store */
        return st;
    }
    sm_uuid_str last;
    int64_t snap;
    size_t applied;
    sm_status st = rebuild(r, post_id, INT64_MAX, out, last, &snap, &applied, err);
    if (st == SM_OK && r->cfg.snapshot_every > 0 && applied >= (size_t)r->cfg.snapshot_every)
        queue_hint(r, post_id);
    return st;
}

void post_repo_release_from(post_repo *r, post_state *p, int64_t from_version, bool current)
{
    int64_t every = r->cfg.snapshot_every;
    if (current && post_exists(p) && every > 0) {
        /* the first multiple of every above from_version (0 needs no snapshot) */
        int64_t next = from_version < 0 ? every : (from_version / every + 1) * every;
        if (p->version >= next)
            queue_hint(r, p->id);
    }
    if (current && r->cache)
        post_cache_put(r->cache, p);
    else
        post_free(p);
}

void post_repo_release(post_repo *r, post_state *p, bool current)
{
    post_repo_release_from(r, p, p->version - 1, current);
}

/* ---- the snapshot thread ------------------------------------------------- */
static void snapshot_one(post_repo *r, const char *post_id)
{
    post_state p;
    sm_uuid_str last = "";
    int64_t snap;
    size_t applied;
    sm_error err;
    sm_status st = rebuild(r, post_id, INT64_MAX, &p, last, &snap, &applied, &err);
    if (st == SM_OK && post_exists(&p) && p.version > snap) {
        char *text = post_snapshot_encode(&p, last);
        if (!text)
            st = sm_fail(&err, SM_ERR_INTERNAL, "out of memory");
        else
            st = es_to_sm_status(es_save_snapshot(r->store, post_id, p.version,
                                                  POST_SNAPSHOT_SCHEMA, text, &err));
        free(text);
        if (st == SM_OK) {
            atomic_fetch_add(&r->snapshots_written, 1);
            sm_log(SM_LOG_DEBUG, "snapshot_written", "post=%s version=%lld", post_id,
                   (long long)p.version);
        }
    }
    if (st != SM_OK) {
        char quoted[SM_ERROR_MAX + 16];
        atomic_fetch_add(&r->snapshot_errors, 1);
        sm_log(SM_LOG_WARN, "snapshot_failed", "post=%s error=%s", post_id,
               sm_log_quote(err.message, quoted, sizeof quoted));
    }
    post_free(&p);
}

static void *snapshot_thread(void *arg)
{
    post_repo *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->qlen == 0)
            pthread_cond_wait(&r->work, &r->mu);
        if (r->stop)
            break;
        sm_uuid_str id;
        memcpy(id, r->queue[r->qhead], sizeof id);
        r->qhead = (r->qhead + 1) % QUEUE_CAP;
        r->qlen--;
        r->busy = true;
        pthread_mutex_unlock(&r->mu);
        snapshot_one(r, id);
        pthread_mutex_lock(&r->mu);
        r->busy = false;
        if (r->qlen == 0)
            pthread_cond_broadcast(&r->idle);
    }
    pthread_cond_broadcast(&r->idle);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */
post_repo *post_repo_new(es_store *store, const post_repo_config *cfg, sm_error *err)
{
    post_repo *r = calloc(1, sizeof *r);
    if (!r) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    r->store = store;
    r->cfg = *cfg;
    if (r->cfg.snapshot_every < 0)
        r->cfg.snapshot_every = 0;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->idle, NULL);
    if (cfg->cache_bytes > 0 && !(r->cache = post_cache_new(cfg->cache_bytes))) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        post_repo_free(r);
        return NULL;
    }
    if (r->cfg.snapshot_every > 0) {
        int rc = pthread_create(&r->thread, NULL, snapshot_thread, r);
        if (rc != 0) {
            sm_fail(err, SM_ERR_INTERNAL, "cannot start the snapshot thread: %s", strerror(rc));
            post_repo_free(r);
            return NULL;
        }
        r->started = true;
    }
    return r;
}

void post_repo_free(post_repo *r)
{
    if (!r)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_signal(&r->work);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    post_cache_free(r->cache);
    pthread_cond_destroy(&r->idle);
    pthread_cond_destroy(&r->work);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void post_repo_drain(post_repo *r)
{
    if (!r->started)
        return;
    pthread_mutex_lock(&r->mu);
    while (!r->stop && (r->qlen > 0 || r->busy))
        pthread_cond_wait(&r->idle, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

void post_repo_get_stats(post_repo *r, post_repo_stats *out)
{
    memset(out, 0, sizeof *out);
    out->loads = atomic_load(&r->loads);
    out->snapshot_hits = atomic_load(&r->snapshot_hits);
    out->snapshots_ignored = atomic_load(&r->snapshots_ignored);
    out->snapshots_written = atomic_load(&r->snapshots_written);
    out->snapshot_errors = atomic_load(&r->snapshot_errors);
    if (r->cache) {
        post_cache_stats cs;
        post_cache_get_stats(r->cache, &cs);
        out->cache_hits = cs.hits;
        out->cache_misses = cs.misses;
        out->cache_evictions = cs.evictions;
        out->cache_entries = cs.entries;
        out->cache_bytes = cs.bytes;
    }
}
