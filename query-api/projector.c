/* SPDX-License-Identifier: Apache-2.0 */
/* projector.c — Kafka -> read model (see projector.h).
 *
 * One thread polls the consumer for a batch and handles it to the end
 * before the next: its runs of events that decode applied in one
 * transaction each (usually the whole batch), its undecodable messages
 * dead-lettered between them, then the offsets of what is done committed.
 * A failed transaction sends the batch's rest through the old path, one
 * message at a time; at the first message that fails, the consumer
 * rewinds each partition of the batch to its first message not done and
 * waits out a back-off. The
 * dead-letter producer is polled on the same thread, so its delivery
 * reports need no lock.
 *
 * Tracing: every line about one message carries traceparent=, the W3C
 * trace context of the command that raised the event, so a request can be
 * followed from command-api into the read model. It comes from the Kafka
 * header, or, for a message without one (published by an older relay),
 * from the envelope's metadata; "-" if neither has it. An applied event is
 * logged at debug level only (event_applied): one line per event would
 * drown the info log under load; gaps, failures and dead letters are
 * logged at warn and error as before. */
#include "projector.h"

#include "sm_log.h"
#include "sm_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last dead letter produced: which message it copies and what the
 * broker said of it. Only the projector thread touches it (and
 * projector_stop, after that thread ended). */
typedef struct dead_letter_state {
    uint64_t seq;      /* its number, the delivery report's opaque; 0: none yet */
    int32_t partition; /* the message it copies */
    int64_t offset;
    int result;        /* 0 no answer yet, 1 confirmed, -1 refused */
    char error[200];   /* why it was refused */
} dead_letter_state;

/* The batch in hand: the messages of one poll and what decoding them
 * gave. Only the projector thread touches it. */
typedef struct batch {
    bus_message msgs[PROJECTOR_BATCH_MAX];
    sm_event evs[PROJECTOR_BATCH_MAX];
    bool decoded[PROJECTOR_BATCH_MAX];
    char *why[PROJECTOR_BATCH_MAX];   /* !decoded: the decoder's reason (owned) */
    const sm_event *apply[PROJECTOR_BATCH_MAX]; /* the decoded ones, in order */
    rm_outcome outcomes[PROJECTOR_BATCH_MAX];
    int n, napply;
} batch;

struct projector {
    rm_store *rm;
    batch *b;
    bus_consumer *consumer;
    bus_producer *dlq;
    char dlq_topic[256];
    int dlq_wait_ms;
    dead_letter_state dl;
    pthread_t thread;
    pthread_mutex_t lock; /* guards stop, stats; cond signals progress and stop */
    pthread_cond_t cond;
    bool stop;
    projector_stats stats;
    sm_histogram lag; /* projector_lag_histogram */
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

/* Sleeps ms, or less if projector_stop is called meanwhile. */
static void sleep_unless_stopped(projector *p, int ms)
{
    int64_t until = sm_mono_ms() + ms;
    pthread_mutex_lock(&p->lock);
    while (!p->stop && sm_cond_wait_until(&p->cond, &p->lock, until) == 0)
        ;
    pthread_mutex_unlock(&p->lock);
}

/* Records a failed attempt at the message in hand (retried after a
 * back-off): the error for /health, and one more on *counter. */
static void record_failure(projector *p, uint64_t *counter, const char *error)
{
    pthread_mutex_lock(&p->lock);
    (*counter)++;
    p->stats.retrying = true;
    snprintf(p->stats.last_error, sizeof p->stats.last_error, "%.*s",
             (int)sizeof p->stats.last_error - 1, error); /* cut, if need be */
    p->stats.last_error_ms = sm_now_ms();
    pthread_mutex_unlock(&p->lock);
}

static void on_dlq_delivery(void *arg, void *opaque, bool ok, const char *error)
{
    projector *p = arg;
    /* a report for an older dead letter, abandoned when its wait ended,
     * changes nothing: its message was not committed */
    if ((uintptr_t)opaque != p->dl.seq)
        return;
    p->dl.result = ok ? 1 : -1;
    snprintf(p->dl.error, sizeof p->dl.error, "%s", ok || !error ? "" : error);
}

/* Produces the copy of m, unless the copy made at m's previous attempt was
 * not refused: still in flight, it is waited for again; confirmed since
 * (during the back-off), it is done. Either way it is not sent twice. */
static bool dead_letter_send(projector *p, const bus_message *m, const char *reason,
                             sm_error *err)
{
    dead_letter_state *dl = &p->dl;
    if (dl->seq && dl->result >= 0 && dl->partition == m->partition && dl->offset == m->offset)
        return true;
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    const char *headers[] = {"error", reason, "sourcePartition", part, "sourceOffset", off, NULL};
    uint64_t seq = dl->seq + 1;
    if (bus_produce_raw(p->dlq, m->key, m->key_len, m->value, m->value_len, headers,
                        (void *)(uintptr_t)seq, err) != SM_OK)
        return false;
    *dl = (dead_letter_state){seq, m->partition, m->offset, 0, ""};
    return true;
}

/* Copies a message that cannot be decoded to the dead-letter topic and
 * waits (bounded, and not past a stop) for the broker to confirm it, so
 * the evidence is kept before the original's offset is committed. Returns
 * true once confirmed; false if refused or unanswered (retry later). */
/* The trace context to log for m: its header, else ev's metadata (ev may
 * be NULL: not decoded), else "-". Borrowed from m or ev. */
static const char *trace_of(const bus_message *m, const sm_event *ev)
{
    if (m->traceparent[0])
        return m->traceparent;
    if (ev && ev->meta.traceparent[0])
        return ev->meta.traceparent;
    return "-";
}

static bool dead_letter(projector *p, const bus_message *m, const char *reason)
{
    char q[600], why[SM_ERROR_MAX + 64];
    sm_error err = {0};
    if (!dead_letter_send(p, m, reason, &err)) {
        snprintf(why, sizeof why, "dead letter refused: %s", err.message);
    } else {
        for (int64_t until = sm_mono_ms() + p->dlq_wait_ms;
             p->dl.result == 0 && sm_mono_ms() < until && !stopping(p);)
            bus_producer_poll(p->dlq, 50);
        if (p->dl.result == 1) {
            sm_log(SM_LOG_WARN, "event_dead_lettered",
                   "partition=%d offset=%lld reason=%s traceparent=%s", (int)m->partition,
                   (long long)m->offset, sm_log_quote(reason, q, sizeof q), trace_of(m, NULL));
            pthread_mutex_lock(&p->lock);
            p->stats.dead_lettered++;
            p->stats.retrying = false;
            pthread_mutex_unlock(&p->lock);
            return true;
        }
        if (p->dl.result == 0 && stopping(p))
            return false; /* abandoned, not failed: the next reader handles it */
        if (p->dl.result < 0)
            snprintf(why, sizeof why, "dead letter refused: %s", p->dl.error);
        else
            snprintf(why, sizeof why, "dead letter not confirmed within %d ms", p->dlq_wait_ms);
    }
    sm_log(SM_LOG_ERROR, "dead_letter_failed",
           "partition=%d offset=%lld error=%s effect=%s traceparent=%s", (int)m->partition,
           (long long)m->offset, sm_log_quote(why, q, sizeof q), "\"not committed; retried\"",
           trace_of(m, NULL));
    record_failure(p, &p->stats.dead_letter_failures, why);
    return false;
}

/* Bookkeeping after a successful apply. */
static void record_applied(projector *p, const bus_message *m, const sm_event *ev,
                           rm_outcome outcome)
{
    if (outcome == RM_GAP)
        sm_log(SM_LOG_WARN, "event_gap",
               "post=%s version=%lld partition=%d offset=%lld traceparent=%s", ev->aggregate_id,
               (long long)ev->version, (int)m->partition, (long long)m->offset,
               trace_of(m, ev));
    else if (sm_log_enabled(SM_LOG_DEBUG))
        sm_log(SM_LOG_DEBUG, "event_applied",
               "post=%s version=%lld type=%s outcome=%s partition=%d offset=%lld traceparent=%s",
               ev->aggregate_id, (long long)ev->version, sm_event_type_name(ev->type),
               outcome == RM_APPLIED ? "applied" : "duplicate", (int)m->partition,
               (long long)m->offset, trace_of(m, ev));
    pthread_mutex_lock(&p->lock);
    p->stats.read_model_ok = true;
    p->stats.retrying = false;
    if (outcome == RM_APPLIED) {
        int64_t now = sm_now_ms();
        p->stats.applied++;
        p->stats.last_applied_ms = now;
        /* a clock behind the command side's reads as no lag, not less */
        sm_hist_observe(&p->lag, now > ev->timestamp_ms ? (now - ev->timestamp_ms) * 1000 : 0);
        if (m->partition >= 0 && m->partition < PROJECTOR_MAX_PARTITIONS &&
            ev->timestamp_ms > p->stats.newest_event_ms[m->partition])
            p->stats.newest_event_ms[m->partition] = ev->timestamp_ms;
        pthread_cond_broadcast(&p->cond);
    } else if (outcome == RM_DUPLICATE) {
        p->stats.duplicates++;
    } else {
        p->stats.gaps++;
    }
    pthread_mutex_unlock(&p->lock);
}

/* A failed apply: logged and counted; the caller rewinds and retries. */
static void record_apply_error(projector *p, const bus_message *m, const sm_event *ev,
                               sm_status st, const sm_error *err)
{
    char q[600];
    bool down = st == SM_ERR_UNAVAILABLE;
    sm_log(down ? SM_LOG_WARN : SM_LOG_ERROR,
           down ? "read_model_unavailable" : "event_apply_failed",
           "post=%s version=%lld partition=%d offset=%lld status=%s error=%s traceparent=%s",
           ev->aggregate_id, (long long)ev->version, (int)m->partition, (long long)m->offset,
           sm_status_code(st), sm_log_quote(err->message, q, sizeof q), trace_of(m, ev));
    record_failure(p, &p->stats.apply_errors, err->message);
    pthread_mutex_lock(&p->lock);
    p->stats.read_model_ok = !down; /* for /health: which kind of failure */
    pthread_mutex_unlock(&p->lock);
}

/* Decodes the batch's messages (the key mismatch is only logged). */
static void decode_batch(batch *b)
{
    b->napply = 0;
    for (int i = 0; i < b->n; i++) {
        const bus_message *m = &b->msgs[i];
        sm_error err = {0};
        b->why[i] = NULL;
        b->decoded[i] = sm_event_decode(&b->evs[i], m->value, m->value_len, &err) == SM_OK;
        if (!b->decoded[i]) {
            b->why[i] = strdup(err.message[0] ? err.message : "cannot decode");
            continue;
        }
        const sm_event *ev = &b->evs[i];
        if (m->key_len != SM_UUID_LEN || memcmp(m->key, ev->aggregate_id, SM_UUID_LEN) != 0)
            sm_log(SM_LOG_WARN, "event_key_mismatch",
                   "partition=%d offset=%lld post=%s traceparent=%s", (int)m->partition,
                   (long long)m->offset, ev->aggregate_id, trace_of(m, ev));
        b->apply[b->napply++] = ev;
    }
}

static void clear_batch(batch *b)
{
    for (int i = 0; i < b->n; i++) {
        if (b->decoded[i])
            sm_event_clear(&b->evs[i]);
        free(b->why[i]);
        b->why[i] = NULL;
    }
    b->n = b->napply = 0;
}

static bool dead_letter_why(projector *p, const batch *b, int i)
{
    return dead_letter(p, &b->msgs[i], b->why[i] ? b->why[i] : "out of memory");
}

/* Applies the decoded messages [from, to) of b (apply[k..]) in one
 * read-model transaction. Otherwise nothing changed (logged, counted) and
 * the status says why: SM_ERR_UNAVAILABLE (down or locked: the whole run
 * waits for the back-off, as one event would) or another (retry the run
 * one event at a time to find the event refused). */
static sm_status apply_run(projector *p, batch *b, int from, int to, int k)
{
    int n = to - from;
    sm_error err = {0};
    size_t failed = 0;
    sm_status st = rm_apply_batch(p->rm, &b->apply[k], (size_t)n, &b->outcomes[k], &failed, &err);
    if (st == SM_ERR_UNAVAILABLE) {
        int at = from + (failed < (size_t)n ? (int)failed : 0);
        record_apply_error(p, &b->msgs[at], &b->evs[at], st, &err);
        return st;
    }
    if (st != SM_OK) {
        char q[600];
        sm_log(SM_LOG_WARN, "batch_apply_failed",
               "events=%d failed_at=%zu status=%s error=%s effect=\"rolled back; retried event "
               "by event\"", n, failed, sm_status_code(st), sm_log_quote(err.message, q, sizeof q));
        record_failure(p, &p->stats.apply_errors, err.message);
        return st;
    }
    count(p, &p->stats.batches);
    for (int i = from; i < to; i++)
        record_applied(p, &b->msgs[i], &b->evs[i], b->outcomes[k++]);
    return SM_OK;
}

/* The batch in runs of events that decode, each run in one read-model
 * transaction, and each message that does not decode dead-lettered
 * between them, in order: as with one message at a time, nothing behind a
 * dead letter the broker has not confirmed is applied. Returns how many
 * messages from the start are done with (b->n: all); *failed_run says the
 * message there starts a run whose transaction failed (nothing of it
 * changed) for another reason than the read model being unavailable, so
 * its events are worth trying one at a time. */
static int handle_batch(projector *p, batch *b, bool *failed_run)
{
    *failed_run = false;
    int k = 0; /* index in apply[] of message i's event */
    for (int i = 0; i < b->n;) {
        if (!b->decoded[i]) {
            if (!dead_letter_why(p, b, i))
                return i;
            i++;
            continue;
        }
        int end = i;
        while (end < b->n && b->decoded[end])
            end++;
        sm_status st = apply_run(p, b, i, end, k);
        if (st != SM_OK) {
            *failed_run = st != SM_ERR_UNAVAILABLE;
            return i;
        }
        k += end - i;
        i = end;
    }
    return b->n;
}

/* After a failed transaction: each message from `from` alone, in order, as
 * the projector did before batches: one transaction per event, so the
 * events before the one that fails are applied and committed, and that
 * one is retried. Returns how many messages from the start are done with. */
static int handle_one_by_one(projector *p, batch *b, int from)
{
    for (int i = from; i < b->n; i++) {
        if (!b->decoded[i]) {
            if (!dead_letter_why(p, b, i))
                return i;
            continue;
        }
        sm_error err = {0};
        rm_outcome outcome = RM_DUPLICATE;
        sm_status st = rm_apply(p->rm, &b->evs[i], &outcome, &err);
        if (st != SM_OK) {
            record_apply_error(p, &b->msgs[i], &b->evs[i], st, &err);
            return i;
        }
        record_applied(p, &b->msgs[i], &b->evs[i], outcome);
    }
    return b->n;
}

/* Marks msgs[0..done) committed, and makes the next poll deliver each
 * partition's messages again from its first one at or after done. */
static void commit_and_rewind(projector *p, const batch *b, int done)
{
    char q[SM_ERROR_MAX + 8];
    sm_error err = {0};
    for (int i = 0; i < done; i++)
        if (bus_consumer_commit(p->consumer, &b->msgs[i], &err) != SM_OK)
            sm_log(SM_LOG_WARN, "offset_commit_failed", "error=%s",
                   sm_log_quote(err.message, q, sizeof q));
    for (int i = done; i < b->n; i++) {
        bool first = true; /* of its partition, at or after done */
        for (int j = done; j < i && first; j++)
            first = b->msgs[j].partition != b->msgs[i].partition;
        if (first && bus_consumer_rewind(p->consumer, &b->msgs[i], &err) != SM_OK)
            sm_log(SM_LOG_WARN, "consumer_rewind_failed", "error=%s",
                   sm_log_quote(err.message, q, sizeof q));
    }
}

static void *projector_main(void *arg)
{
    projector *p = arg;
    batch *b = p->b;
    int backoff_ms = PROJECTOR_BACKOFF_MIN_MS;
    char q[SM_ERROR_MAX + 8];
    while (!stopping(p)) {
        sm_error err = {0};
        int r = bus_consumer_poll_batch(p->consumer, 200, PROJECTOR_BATCH_MAX,
                                        PROJECTOR_BATCH_MS, b->msgs, &err);
        if (r < 0)
            sm_log(SM_LOG_DEBUG, "consumer_error", "error=%s",
                   sm_log_quote(err.message, q, sizeof q));
        bus_producer_poll(p->dlq, 0);
        if (r <= 0)
            continue;
        b->n = r;
        decode_batch(b);
        bool failed_run;
        int done = handle_batch(p, b, &failed_run);
        if (failed_run)
            done = handle_one_by_one(p, b, done);
        /* Offsets only now, after the read model committed what they cover. */
        if (done == b->n) {
            commit_and_rewind(p, b, done);
            clear_batch(b);
            backoff_ms = PROJECTOR_BACKOFF_MIN_MS;
            continue;
        }
        if (stopping(p)) { /* the rest not committed: the next reader handles it */
            commit_and_rewind(p, b, done);
            clear_batch(b);
            break;
        }
        count(p, &p->stats.retries);
        commit_and_rewind(p, b, done);
        clear_batch(b);
        sleep_unless_stopped(p, backoff_ms);
        backoff_ms = backoff_ms * 2 < PROJECTOR_BACKOFF_MAX_MS ? backoff_ms * 2
                                                               : PROJECTOR_BACKOFF_MAX_MS;
    }
    return NULL;
}

static void free_projector(projector *p, int close_ms)
{
    bus_consumer_close(p->consumer, close_ms);
    /* A dead letter still in flight copies a message that was not
     * committed, which will be dead-lettered again: no need to wait. */
    bus_producer_free(p->dlq, 0);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->b);
    free(p);
}

projector *projector_start(const projector_opts *opts, sm_error *err)
{
    projector *p = calloc(1, sizeof *p);
    if (!p) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->rm = opts->rm;
    p->lag.spec = &sm_hist_delay_seconds;
    if (!(p->b = calloc(1, sizeof *p->b))) {
        free(p);
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->dlq_wait_ms = opts->dead_letter_wait_ms > 0 ? opts->dead_letter_wait_ms
                                                   : PROJECTOR_DEAD_LETTER_WAIT_MS;
    p->stats.read_model_ok = true;
    pthread_mutex_init(&p->lock, NULL);
    sm_cond_init(&p->cond);
    p->consumer = bus_consumer_new(&opts->bus, opts->group_id ? opts->group_id : "SM_Consumer",
                                   err);
    snprintf(p->dlq_topic, sizeof p->dlq_topic, "%s.DLQ", opts->bus.topic);
    bus_config dcfg = {opts->bus.bootstrap, p->dlq_topic, "smpost-query-api-dlq",
                       opts->bus.extra};
    if (p->consumer)
        p->dlq = bus_producer_new(&dcfg, on_dlq_delivery, p, err);
    if (!p->consumer || !p->dlq || pthread_create(&p->thread, NULL, projector_main, p) != 0) {
        if (p->consumer && p->dlq)
            sm_fail(err, SM_ERR_INTERNAL, "cannot start the projector thread");
        free_projector(p, 0);
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
    out->offset_commits = bus_consumer_commits_sent(p->consumer);
    out->assigned = bus_consumer_assigned(p->consumer);
}

const sm_histogram *projector_lag_histogram(projector *p)
{
    return &p->lag;
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
            if (sm_cond_wait_until(&p->cond, &p->lock, until) == ETIMEDOUT)
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
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL); /* an apply in progress finishes and is committed */
    /* confirms the final offsets, so a restart resumes right after the
     * last applied event, then leaves the group */
    free_projector(p, PROJECTOR_CLOSE_MS);
}
