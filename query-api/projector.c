/* projector.c — Kafka -> read model (see projector.h). */
#include "projector.h"

#include "sm_log.h"
#include "sm_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct projector {
    rm_store *rm;
    bus_consumer *consumer;
    bus_producer *dlq;
    char dlq_topic[256];
    pthread_t thread;
    pthread_mutex_t lock; /* guards stop, stats; applied_cond signals progress */
    pthread_cond_t applied_cond;
    bool stop;
    projector_stats stats;
};

static bool stopping(projector *p)
{
    pthread_mutex_lock(&p->lock);
    bool s = p->stop;
    pthread_mutex_unlock(&p->lock);
    return s;
}

static void count(projector *p, uint64_t *counter)
{
    pthread_mutex_lock(&p->lock);
    (*counter)++;
    pthread_mutex_unlock(&p->lock);
}

static void on_dlq_delivery(void *arg, void *opaque, bool ok, const char *error)
{
    (void)arg;
    int *state = opaque;
    *state = ok ? 1 : -1;
    if (!ok)
        sm_log(SM_LOG_ERROR, "dead_letter_failed", "error=\"%s\"", error ? error : "?");
}

/* Copies a message that cannot be projected to the dead-letter topic and
 * waits (bounded) for the broker to confirm it, so the evidence is kept
 * before the original's offset is committed. */
static void dead_letter(projector *p, const bus_message *m, const char *reason)
{
    char q[600], part[16], off[24];
    sm_log(SM_LOG_WARN, "event_dead_lettered", "partition=%d offset=%lld reason=%s",
           (int)m->partition, (long long)m->offset, sm_log_quote(reason, q, sizeof q));
    snprintf(part, sizeof part, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    const char *headers[] = {"error", reason, "sourcePartition", part, "sourceOffset", off, NULL};
    int state = 0;
    sm_error err = {0};
    if (!p->dlq ||
        bus_produce_raw(p->dlq, m->key, m->key_len, m->value, m->value_len, headers, &state,
                        &err) != SM_OK) {
        sm_log(SM_LOG_ERROR, "dead_letter_failed", "partition=%d offset=%lld error=\"%s\"",
               (int)m->partition, (long long)m->offset, p->dlq ? err.message : "no producer");
    } else {
        for (int64_t until = sm_mono_ms() + 10000; state == 0 && sm_mono_ms() < until;)
            bus_producer_poll(p->dlq, 50);
    }
    count(p, &p->stats.dead_lettered);
}

/* Applies one message. Returns false if it must be retried later (the read
 * model is unavailable); the caller then rewinds to it. */
static bool handle(projector *p, const bus_message *m)
{
    sm_event ev;
    sm_error err = {0};
    if (sm_event_decode(&ev, m->value, m->value_len, &err) != SM_OK) {
        dead_letter(p, m, err.message);
        return true;
    }
    if (m->key_len != SM_UUID_LEN || memcmp(m->key, ev.aggregate_id, SM_UUID_LEN) != 0)
        sm_log(SM_LOG_WARN, "event_key_mismatch", "partition=%d offset=%lld post=%s",
               (int)m->partition, (long long)m->offset, ev.aggregate_id);
    rm_outcome outcome = RM_DUPLICATE;
    sm_status st = rm_apply(p->rm, &ev, &outcome, &err);
    bool done = true;
    if (st == SM_ERR_UNAVAILABLE) {
        done = false;
    } else if (st != SM_OK) {
        dead_letter(p, m, err.message); /* e.g. a constraint only a bad event breaks */
    } else if (outcome == RM_GAP) {
        sm_log(SM_LOG_WARN, "event_gap", "post=%s version=%lld partition=%d offset=%lld",
               ev.aggregate_id, (long long)ev.version, (int)m->partition, (long long)m->offset);
        count(p, &p->stats.gaps);
    }
    pthread_mutex_lock(&p->lock);
    p->stats.read_model_ok = st != SM_ERR_UNAVAILABLE;
    if (st == SM_OK && outcome == RM_APPLIED) {
        p->stats.applied++;
        p->stats.last_applied_ms = sm_now_ms();
        pthread_cond_broadcast(&p->applied_cond);
    } else if (st == SM_OK && outcome == RM_DUPLICATE) {
        p->stats.duplicates++;
    }
    pthread_mutex_unlock(&p->lock);
    if (!done) {
        char q[600];
        sm_log(SM_LOG_WARN, "read_model_unavailable", "post=%s version=%lld error=%s",
               ev.aggregate_id, (long long)ev.version, sm_log_quote(err.message, q, sizeof q));
    }
    sm_event_clear(&ev);
    return done;
}

static void *projector_main(void *arg)
{
    projector *p = arg;
    int backoff_ms = 100;
    while (!stopping(p)) {
        bus_message m;
        sm_error err = {0};
        int r = bus_consumer_poll(p->consumer, 200, &m, &err);
        if (r < 0)
            sm_log(SM_LOG_DEBUG, "consumer_error", "error=\"%s\"", err.message);
        if (p->dlq)
            bus_producer_poll(p->dlq, 0);
        if (r <= 0)
            continue;
        if (handle(p, &m)) {
            backoff_ms = 100;
            if (bus_consumer_commit(p->consumer, &m, &err) != SM_OK)
                sm_log(SM_LOG_WARN, "offset_commit_failed", "error=\"%s\"", err.message);
            continue;
        }
        count(p, &p->stats.retries);
        if (bus_consumer_rewind(p->consumer, &m, &err) != SM_OK)
            sm_log(SM_LOG_WARN, "consumer_rewind_failed", "error=\"%s\"", err.message);
        for (int waited = 0; waited < backoff_ms && !stopping(p); waited += 50) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        backoff_ms = backoff_ms < 3200 ? backoff_ms * 2 : 5000;
    }
    return NULL;
}

projector *projector_start(const projector_opts *opts, sm_error *err)
{
    projector *p = calloc(1, sizeof *p);
    if (!p) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->rm = opts->rm;
    p->stats.read_model_ok = true;
    pthread_mutex_init(&p->lock, NULL);
    sm_cond_init(&p->applied_cond);
    p->consumer = bus_consumer_new(&opts->bus, opts->group_id ? opts->group_id : "SM_Consumer",
                                   err);
    snprintf(p->dlq_topic, sizeof p->dlq_topic, "%s.DLQ", opts->bus.topic);
    bus_config dcfg = {opts->bus.bootstrap, p->dlq_topic, "smpost-query-api-dlq",
                       opts->bus.extra};
    if (p->consumer)
        p->dlq = bus_producer_new(&dcfg, on_dlq_delivery, p, err);
    if (!p->consumer || !p->dlq || pthread_create(&p->thread, NULL, projector_main, p) != 0) {
        bus_producer_free(p->dlq, 0);
        bus_consumer_close(p->consumer, 0);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->applied_cond);
        free(p);
        return NULL;
    }
    return p;
}

void projector_get_stats(projector *p, projector_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
    out->lag = bus_consumer_lag(p->consumer);
    out->assigned = bus_consumer_assigned(p->consumer);
}

bool projector_wait_version(projector *p, const char *post_id, int64_t version, int timeout_ms,
                            int64_t *seen)
{
    int64_t deadline = sm_mono_ms() + timeout_ms;
    *seen = -1;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        uint64_t before = p->stats.applied;
        pthread_mutex_unlock(&p->lock);
        sm_error err = {0};
        if (rm_post_version(p->rm, post_id, seen, &err) == SM_OK && *seen >= version)
            return true;
        int64_t left = deadline - sm_mono_ms();
        if (left <= 0 || stopping(p)) /* nothing will be applied any more */
            return false;
        /* sleep until something is applied (or a short tick, in case the
         * event is applied by another instance sharing the read model) */
        int64_t until = sm_mono_ms() + (left < 50 ? left : 50);
        pthread_mutex_lock(&p->lock);
        while (p->stats.applied == before && !p->stop)
            if (sm_cond_wait_until(&p->applied_cond, &p->lock, until) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&p->lock);
    }
}

void projector_stop(projector *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->applied_cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL); /* the message in hand is applied and committed */
    /* confirms the final offsets, so a restart resumes right after the
     * last applied event, then leaves the group */
    bus_consumer_close(p->consumer, PROJECTOR_CLOSE_MS);
    bus_producer_free(p->dlq, 2000);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->applied_cond);
    free(p);
}
