/* SPDX-License-Identifier: Apache-2.0 */
/* relay.c — the outbox relay thread (see relay.h). */
#include "relay.h"

#include "relay_lease.h"
#include "sm_log.h"
#include "sm_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define META_CLUSTER "kafka.cluster_id"

/* How long past message.timeout.ms a round waits for its last reports. */
#define RELAY_REPORT_GRACE_MS 5000
/* How long a round waiting for reports gives the broker to answer a
 * metadata request before calling it down. */
#define RELAY_PROBE_MS 1000

struct relay {
    es_store *store;
    bus_config bus;
    char *bootstrap, *topic;
    const char *const *extra;
    bus_producer *producer;
    int batch, idle_ms, cluster_check_ms;
    relay_lease *lease;     /* NULL: no election; touched by the relay thread only */
    sm_histogram publish;   /* relay_publish_histogram */
    sm_histogram round_events; /* relay_round_histogram */

    pthread_t thread;
    pthread_mutex_t lock;   /* guards everything below */
    pthread_cond_t wake;
    bool stop, pending_wake;
    int64_t stop_deadline;  /* sm_mono_ms() by which a stopping relay gives up */
    relay_stats stats;
    int64_t leader_until;   /* with a lease: stats.leader holds until this sm_mono_ms() */

    /* the round in flight; touched only by the relay thread (and its
     * delivery callback, which runs on that thread inside poll) */
    sm_event_list round; /* runs of posts, one after the other (event_store.h) */
    int64_t round_gen;   /* outbox generation of the fetch (event_store.h) */
    es_cursor cursor;    /* where the next page of the outbox starts */
    uint32_t round_seq;  /* which round a delivery report belongs to */
    bool *delivered;
    size_t reported;
    int64_t last_cluster_check;
    bool recheck; /* verify the cluster before the next round */
};

static void set_error(relay *r, const char *msg)
{
    pthread_mutex_lock(&r->lock);
    snprintf(r->stats.last_error, sizeof r->stats.last_error, "%.*s",
             (int)sizeof r->stats.last_error - 1, msg);
    pthread_mutex_unlock(&r->lock);
}

_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "the opaque holds a round and an index");

void *relay_delivery_tag(uint32_t round, size_t index)
{
    return (void *)(uintptr_t)(((uint64_t)round << 32) | (uint32_t)index);
}

bool relay_delivery_match(const void *tag, uint32_t round, size_t round_len, size_t *index)
{
    uint64_t t = (uint64_t)(uintptr_t)tag;
    *index = (size_t)(uint32_t)t;
    return (uint32_t)(t >> 32) == round && *index < round_len;
}

static void on_delivery(void *arg, void *opaque, bool ok, const char *error)
{
    relay *r = arg;
    size_t i;
    if (!relay_delivery_match(opaque, r->round_seq, r->round.len, &i)) {
        /* its round is settled: confirmed or not, that event was left
         * unpublished and is offered again */
        sm_log(SM_LOG_INFO, "relay_late_report", "tag=%p ok=%d current_round=%u", opaque, ok,
               r->round_seq);
        return;
    }
    r->delivered[i] = ok;
    r->reported++;
    if (ok) {
        int64_t took = sm_now_ms() - r->round.items[i].timestamp_ms;
        sm_hist_observe(&r->publish, took > 0 ? took * 1000 : 0);
    }
    if (!ok) {
        char q[300];
        sm_log(SM_LOG_WARN, "relay_delivery_failed", "event=%s post=%s version=%lld error=%s",
               r->round.items[i].event_id, r->round.items[i].aggregate_id,
               (long long)r->round.items[i].version, sm_log_quote(error, q, sizeof q));
        set_error(r, error ? error : "delivery failed");
        pthread_mutex_lock(&r->lock);
        r->stats.kafka = BUS_DOWN;
        r->stats.failed_total++;
        pthread_mutex_unlock(&r->lock);
    }
}

/* Waits until notified, stopped or ms elapse. Returns false once stopped. */
static bool wait_for_work(relay *r, int ms)
{
    int64_t until = sm_mono_ms() + ms;
    pthread_mutex_lock(&r->lock);
    while (!r->stop && !r->pending_wake)
        if (sm_cond_wait_until(&r->wake, &r->lock, until) == ETIMEDOUT)
            break;
    r->pending_wake = false;
    bool running = !r->stop;
    pthread_mutex_unlock(&r->lock);
    return running;
}

static bool stopping(relay *r)
{
    pthread_mutex_lock(&r->lock);
    bool s = r->stop;
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* True once a stop was requested and its flush time is used up. */
static bool out_of_time(relay *r)
{
    pthread_mutex_lock(&r->lock);
    bool late = r->stop && sm_mono_ms() >= r->stop_deadline;
    pthread_mutex_unlock(&r->lock);
    return late;
}

/* Marks the whole store for republishing; why goes to the log. Only the
 * lease holder may: a standby's view of Kafka (another broker address, a
 * stale check) must never rewrite the outbox the publisher works from. */
static bool republish_all(relay *r, const char *why, const char *was, const char *now)
{
    int64_t count = 0;
    sm_error err = {0};
    if (r->lease && !relay_lease_valid(r->lease)) {
        sm_log(SM_LOG_WARN, "relay_republish_refused", "reason=%s was=%s now=%s role=standby",
               why, was, now);
        return false;
    }
    if (es_reset_published(r->store, &count, &err) != ES_OK) {
        set_error(r, err.message);
        return false;
    }
    sm_log(SM_LOG_WARN, "relay_republish_all", "reason=%s was=%s now=%s events=%lld", why, was,
           now, (long long)count);
    pthread_mutex_lock(&r->lock);
    r->stats.republish_total += (uint64_t)count;
    pthread_mutex_unlock(&r->lock);
    return true;
}

/* Reads a meta value; false on store trouble (absent reads as ""). */
static bool meta_get(relay *r, const char *key, char *out, size_t cap)
{
    sm_error err = {0};
    es_status st = es_get_meta(r->store, key, out, cap, &err);
    if (st == ES_NOT_FOUND)
        out[0] = '\0';
    else if (st != ES_OK)
        set_error(r, err.message);
    return st == ES_OK || st == ES_NOT_FOUND;
}

static bool meta_set(relay *r, const char *key, const char *value)
{
    sm_error err = {0};
    if (es_set_meta(r->store, key, value, &err) == ES_OK)
        return true;
    set_error(r, err.message);
    return false;
}

/* Identifies the broker. A different cluster id than the one recorded
 * means the broker does not hold what we published. So does a topic that
 * holds fewer messages than the store has marked published: every
 * confirmed event is in the log at least once and offsets never go back, so
 * end < published can only be a fresh or emptied topic (librdkafka's mock
 * cluster may even reuse a cluster id). Either way: republish everything.
 * The published count is read before the offsets, so events confirmed in
 * between can only raise the end. Returns false if no broker answered. */
static bool check_cluster(relay *r)
{
    char id[128], stored[ES_META_MAX], end_text[32];
    int64_t end = 0, published = 0;
    sm_error err = {0};
    if (es_outbox_stats(r->store, NULL, NULL, &published, &err) != ES_OK) {
        set_error(r, err.message);
        return false;
    }
    if (!bus_producer_cluster_id(r->producer, id, sizeof id, 2000) ||
        !bus_producer_topic_end(r->producer, &end, 2000)) {
        char why[256];
        bus_producer_poll(r->producer, 0); /* serves librdkafka's error callback */
        if (bus_producer_auth_failed(r->producer, why, sizeof why))
            set_error(r, why); /* /health says which setting to fix */
        pthread_mutex_lock(&r->lock);
        r->stats.kafka = BUS_DOWN;
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    if (!meta_get(r, META_CLUSTER, stored, sizeof stored))
        return false;
    snprintf(end_text, sizeof end_text, "end=%lld", (long long)end);
    if (stored[0] && strcmp(stored, id) != 0) {
        if (!republish_all(r, "new_cluster", stored, id))
            return false;
    } else if (end < published) {
        char pub_text[32];
        snprintf(pub_text, sizeof pub_text, "published=%lld", (long long)published);
        if (!republish_all(r, "topic_behind_store", pub_text, end_text))
            return false;
    }
    if (strcmp(stored, id) != 0 && !meta_set(r, META_CLUSTER, id))
        return false;
    pthread_mutex_lock(&r->lock);
    snprintf(r->stats.cluster_id, sizeof r->stats.cluster_id, "%s", id);
    r->stats.kafka = BUS_UP;
    pthread_mutex_unlock(&r->lock);
    r->last_cluster_check = sm_mono_ms();
    return true;
}

/* Renews or tries the lease when due (relay_lease_check) and copies the
 * outcome into the stats read by /health and /metrics. Returns whether this
 * relay may publish now. */
static bool check_lease(relay *r, bool force)
{
    bool leader = relay_lease_check(r->lease, force);
    relay_lease_info li;
    relay_lease_get_info(r->lease, &li);
    pthread_mutex_lock(&r->lock);
    r->stats.leader = li.leader;
    r->leader_until = li.valid_until_mono;
    r->stats.lease_epoch = li.epoch;
    snprintf(r->stats.lease_holder, sizeof r->stats.lease_holder, "%s", li.holder);
    r->stats.leader_acquired_total = li.acquired_total;
    pthread_mutex_unlock(&r->lock);
    return leader;
}

/* Produces the round's events and waits for every delivery report. */
static void publish_round(relay *r)
{
    r->reported = 0;
    sm_hist_observe(&r->round_events, (int64_t)r->round.len);
    size_t produced = 0;
    for (size_t i = 0; i < r->round.len; i++) {
        sm_error err = {0};
        if (r->lease && !relay_lease_valid(r->lease))
            break; /* lost (or could not renew) the lease: someone else publishes */
        if (bus_produce(r->producer, &r->round.items[i], relay_delivery_tag(r->round_seq, i), &err) !=
            SM_OK) {
            set_error(r, err.message);
            break; /* local queue full or fatal: the rest waits for next round */
        }
        produced++;
    }
    /* Reports come within message.timeout.ms at worst; a stop request
     * cuts the wait at its flush deadline, and whatever is not confirmed by
     * then stays unpublished (the next round or start publishes it). */
    int64_t give_up = sm_mono_ms() + bus_producer_delivery_timeout_ms(r->producer) +
                      RELAY_REPORT_GRACE_MS;
    int64_t next_probe = sm_mono_ms() + r->cluster_check_ms;
    while (r->reported < produced && sm_mono_ms() < give_up && !out_of_time(r)) {
        bus_producer_poll(r->producer, 50);
        if (r->lease) /* a long wait must not let the lease lapse */
            check_lease(r, false);
        /* Without news, /health would say "up" for as long as
         * message.timeout.ms. librdkafka's error callback says when every
         * broker is gone, but only once, and a confirmation of a message
         * the broker took just before going away, served after it, sets
         * the state up again; so a long wait also asks the broker. */
        bool down = bus_producer_state(r->producer) == BUS_DOWN;
        if (!down && sm_mono_ms() >= next_probe) {
            char id[128];
            down = !bus_producer_cluster_id(r->producer, id, sizeof id, RELAY_PROBE_MS);
            next_probe = sm_mono_ms() + r->cluster_check_ms;
        }
        if (down) {
            pthread_mutex_lock(&r->lock);
            r->stats.kafka = BUS_DOWN;
            pthread_mutex_unlock(&r->lock);
        }
    }
}

size_t relay_markable(const sm_event *items, const bool *delivered, size_t n, bool *mark)
{
    size_t count = 0;
    const char *broken = NULL; /* post whose run lost an event this round */
    for (size_t i = 0; i < n; i++) {
        const char *post = items[i].aggregate_id;
        if (broken && strcmp(broken, post) != 0)
            broken = NULL; /* the next post's run */
        mark[i] = !broken && delivered[i];
        if (!mark[i])
            broken = post; /* failed or unreported: it and what follows go again */
        count += mark[i];
    }
    return count;
}

/* Marks the confirmed prefix of each run of the round (relay_markable), in
 * one write, and updates the counters. Returns how many were marked;
 * *whole is false if anything of the round was left. */
static size_t settle_round(relay *r, bool *whole)
{
    sm_event_list ok = {0};
    bool *mark = calloc(r->round.len, sizeof *mark);
    ok.items = calloc(r->round.len, sizeof *ok.items);
    if (!mark || !ok.items) {
        free(mark);
        free(ok.items);
        *whole = false; /* nothing marked: all of it goes again */
        return 0;
    }
    *whole = relay_markable(r->round.items, r->delivered, r->round.len, mark) == r->round.len;
    for (size_t i = 0; i < r->round.len; i++)
        if (mark[i])
            ok.items[ok.len++] = r->round.items[i]; /* shallow: the strings stay in round */
    free(mark);
    sm_error err = {0};
    es_status st = ok.len ? es_mark_published(r->store, ok.items, ok.len, r->round_gen, &err)
                          : ES_OK;
    char q[300];
    if (st == ES_CONFLICT) {
        /* a reset (RestoreReadDb, maybe on another instance) came after
         * the fetch: these go out again with the replay */
        sm_log(SM_LOG_INFO, "relay_marks_refused", "events=%zu reason=%s", ok.len,
               sm_log_quote(err.message, q, sizeof q));
    } else if (st != ES_OK) {
        /* Already in Kafka; unmarked means republished later (harmless). */
        set_error(r, err.message);
        sm_log(SM_LOG_WARN, "relay_mark_failed", "events=%zu error=%s", ok.len,
               sm_log_quote(err.message, q, sizeof q));
    }
    pthread_mutex_lock(&r->lock);
    r->stats.published_total += ok.len;
    if (ok.len) {
        r->stats.last_publish_ms = sm_now_ms();
        r->stats.kafka = BUS_UP;
    }
    pthread_mutex_unlock(&r->lock);
    size_t marked = st == ES_OK ? ok.len : 0;
    free(ok.items); /* not sm_event_list_free: the strings belong to round */
    return marked;
}

/* One fetch/produce/mark round: the next page of the outbox (pages whose
 * events all wait for a lower version are skipped), its runs produced, the
 * confirmed prefixes marked. Returns the number of events marked, 0 if the
 * outbox had nothing to offer, or -1 if the round could not run or marked
 * nothing (store or broker trouble). After a round that left events, the
 * next starts a new pass, so the retry comes first and in order. */
static int run_round(relay *r)
{
    sm_event_list_free(&r->round);
    r->round_seq++; /* reports of earlier rounds no longer match */
    sm_error err = {0};
    int64_t gen = -1;
    do {
        if (es_fetch_unpublished(r->store, &r->cursor, (size_t)r->batch, &r->round, &gen, &err) !=
            ES_OK) {
            set_error(r, err.message);
            r->cursor.token[0] = '\0';
            return -1;
        }
        if (gen != r->round_gen) /* a reset: start its replay from the beginning */
            r->cursor.token[0] = '\0';
        r->round_gen = gen;
    } while (r->round.len == 0 && r->cursor.token[0] && !out_of_time(r));
    if (r->round.len == 0)
        return 0;
    free(r->delivered);
    r->delivered = calloc(r->round.len, sizeof *r->delivered);
    if (!r->delivered)
        return -1;
    publish_round(r);
    bool whole;
    size_t marked = settle_round(r, &whole);
    if (!whole)
        r->cursor.token[0] = '\0';
    return marked > 0 ? (int)marked : -1;
}

static void recreate_producer_if_failed(relay *r)
{
    char why[256];
    if (!bus_producer_failed(r->producer, why, sizeof why))
        return;
    char q[300];
    sm_log(SM_LOG_ERROR, "relay_producer_failed", "reason=%s action=recreate",
           sm_log_quote(why, q, sizeof q));
    bus_producer_free(r->producer, 0);
    sm_error err = {0};
    r->producer = bus_producer_new(&r->bus, on_delivery, r, &err);
    if (!r->producer)
        sm_log(SM_LOG_ERROR, "relay_producer_failed", "reason=%s",
               sm_log_quote(err.message, q, sizeof q));
}

/* The last act of a stopping relay: publish what the drained HTTP server
 * left in the outbox, so that a command-api that is not coming back (scaled
 * down) leaves nothing behind. Rounds go on until the outbox is empty, a
 * round fails or the flush deadline passes. Only a broker identified lately
 * is used (a failed round or an unverified cluster ends it): publishing to
 * an unknown cluster could only be undone by the next start. */
static void final_flush(relay *r)
{
    int64_t t0 = sm_mono_ms();
    long confirmed = 0;
    /* a standby neither checks the cluster (which may reset the store)
     * nor publishes: that is the lease holder's */
    bool holder = !r->lease || relay_lease_valid(r->lease);
    bool known = holder && r->producer && !r->recheck &&
                 t0 - r->last_cluster_check < 2 * (int64_t)r->cluster_check_ms;
    pthread_mutex_lock(&r->lock);
    int64_t left = r->stop_deadline - t0;
    pthread_mutex_unlock(&r->lock);
    if (holder && r->producer && !known && left > 4500) /* the check may take 2 x 2 s */
        known = check_cluster(r);
    while (known && !out_of_time(r)) {
        int n = run_round(r);
        if (n <= 0)
            break;
        confirmed += n;
    }
    int64_t pending = -1, oldest = 0;
    sm_error err = {0};
    es_outbox_stats(r->store, &pending, &oldest, NULL, &err);
    /* a standby leaves the outbox to the instance holding the lease */
    bool standby = r->lease && !r->stats.leader;
    sm_log(pending == 0 || standby ? SM_LOG_INFO : SM_LOG_WARN, "relay_stopped",
           "role=%s flushed=%ld pending=%lld ms=%lld%s", standby ? "standby" : "publisher",
           confirmed, (long long)pending, (long long)(sm_mono_ms() - t0),
           pending == 0 ? ""
           : standby    ? " effect=\"published by the instance holding the relay lease\""
                        : " effect=\"published by the next relay to start\"");
    if (r->lease) /* hand over now rather than after the ttl */
        relay_lease_release(r->lease);
}

/* A standby only watches: the lease (to take over) and whether Kafka
 * answers (for /health). It never republishes or produces. */
static void stand_by(relay *r)
{
    if (sm_mono_ms() - r->last_cluster_check >= r->cluster_check_ms) {
        char id[128];
        bool up = bus_producer_cluster_id(r->producer, id, sizeof id, 2000);
        pthread_mutex_lock(&r->lock);
        r->stats.kafka = up ? BUS_UP : BUS_DOWN;
        if (up)
            snprintf(r->stats.cluster_id, sizeof r->stats.cluster_id, "%s", id);
        pthread_mutex_unlock(&r->lock);
        r->last_cluster_check = sm_mono_ms();
    }
    int ms = relay_lease_next_check_ms(r->lease);
    wait_for_work(r, ms < r->idle_ms ? ms + 1 : r->idle_ms);
}

/* True if this relay may publish now; false (after standing by a while) if
 * another instance holds the lease. */
static bool lead(relay *r)
{
    if (!r->lease)
        return true;
    bool was = r->stats.leader;
    bool leader = check_lease(r, false);
    if (leader && !was)
        r->recheck = true; /* a new publisher identifies the cluster first */
    if (!leader)
        stand_by(r);
    return leader;
}

static void *relay_main(void *arg)
{
    relay *r = arg;
    while (!stopping(r)) {
        if (!r->producer) {
            recreate_producer_if_failed(r);
            if (!wait_for_work(r, r->idle_ms))
                break;
            continue;
        }
        if (!lead(r))
            continue;
        /* Never publish to a cluster we have not identified: it may be a
         * fresh broker that needs the whole store. */
        if (r->recheck || sm_mono_ms() - r->last_cluster_check >= r->cluster_check_ms) {
            int64_t t0 = sm_mono_ms();
            bool known = check_cluster(r);
            int64_t took = sm_mono_ms() - t0;
            /* publishing waits on this: worth a line when slow */
            sm_log(took > 1000 ? SM_LOG_WARN : SM_LOG_DEBUG,
                   took > 1000 ? "relay_slow_cluster_check" : "relay_cluster_check",
                   "ms=%lld ok=%d", (long long)took, known);
            if (!known) {
                wait_for_work(r, r->idle_ms);
                continue;
            }
            r->recheck = false;
        }
        int n = run_round(r);
        recreate_producer_if_failed(r);
        if (n > 0)
            continue; /* more may wait: the next page, or versions after these */
        if (n < 0)
            r->recheck = true;
        if (!wait_for_work(r, r->idle_ms))
            break;
    }
    final_flush(r);
    return NULL;
}

relay *relay_start(const relay_opts *opts, sm_error *err)
{
    relay *r = calloc(1, sizeof *r);
    if (!r) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    r->store = opts->store;
    r->publish.spec = &sm_hist_delay_seconds;
    r->round_events.spec = &sm_hist_sizes;
    r->bootstrap = strdup(opts->bus.bootstrap ? opts->bus.bootstrap : "");
    r->topic = strdup(opts->bus.topic ? opts->bus.topic : "");
    r->bus = (bus_config){r->bootstrap, r->topic, "smpost-command-api", opts->bus.extra};
    r->batch = opts->batch > 0 ? opts->batch : 500;
    r->idle_ms = opts->idle_ms > 0 ? opts->idle_ms : 500;
    r->cluster_check_ms = opts->cluster_check_ms > 0 ? opts->cluster_check_ms : 1000;
    r->recheck = true;
    r->round_gen = -1;
    r->stats.leader = !opts->instance_id;
    if (opts->instance_id &&
        !(r->lease = relay_lease_new(r->store, opts->instance_id,
                                     opts->lease_ttl_ms > 0 ? opts->lease_ttl_ms
                                                            : RELAY_LEASE_DEFAULT_TTL_MS))) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        free(r->bootstrap);
        free(r->topic);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    sm_cond_init(&r->wake);
    r->producer = r->bootstrap && r->topic ? bus_producer_new(&r->bus, on_delivery, r, err) : NULL;
    if (!r->producer || pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        if (r->producer)
            bus_producer_free(r->producer, 0);
        else if (!r->bootstrap || !r->topic)
            sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        relay_lease_free(r->lease);
        free(r->bootstrap);
        free(r->topic);
        free(r);
        return NULL;
    }
    return r;
}

void relay_notify(relay *r)
{
    pthread_mutex_lock(&r->lock);
    r->pending_wake = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void relay_on_appended(void *arg, const sm_event *evs, size_t n)
{
    (void)evs;
    (void)n;
    relay_notify(arg);
}

const sm_histogram *relay_publish_histogram(relay *r)
{
    return &r->publish;
}

const sm_histogram *relay_round_histogram(relay *r)
{
    return &r->round_events;
}

void relay_get_stats(relay *r, relay_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->stats;
    /* A holder whose relay thread is stuck (a store lock, a slow disk)
     * stops publishing at its local deadline, renewed or not: report what
     * it may do now, not what its last check found, so that /health never
     * shows two publishers while a successor takes over. */
    if (r->lease && out->leader && sm_mono_ms() >= r->leader_until)
        out->leader = false;
    pthread_mutex_unlock(&r->lock);
}

void relay_stop(relay *r, int flush_ms)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    r->stop_deadline = sm_mono_ms() + (flush_ms > 0 ? flush_ms : 0);
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    /* Nothing is in flight unless the deadline cut a round short; those
     * messages are failed now and stay unpublished in the store. */
    if (r->producer)
        bus_producer_free(r->producer, 0);
    sm_event_list_free(&r->round);
    free(r->delivered);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    relay_lease_free(r->lease);
    free(r->bootstrap);
    free(r->topic);
    free(r);
}
