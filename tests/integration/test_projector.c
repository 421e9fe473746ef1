/* SPDX-License-Identifier: Apache-2.0 */
/* test_projector.c — the projector's rare paths, in process: the real
 * projector (query-api/projector.c) consuming from a private Kafka cluster
 * (tests/support/mock_kafka.h, which can refuse produce requests) into a
 * real SQLite read model wrapped in tests/support/faulty_rm.h (which fails
 * applies on demand). /health and /metrics are read through the query
 * API's own route handler.
 *
 * What it pins down (projector.h):
 *  - an event that decodes but cannot be applied (an apply error other
 *    than "unavailable") is retried with back-off, never dead-lettered:
 *    once the fault clears every event is applied, nothing is in the DLQ,
 *    the apply-error counter rose and /health showed the error meanwhile;
 *  - a message that cannot be decoded is dead-lettered and consumption
 *    goes on;
 *  - a dead letter the broker refuses, or does not confirm in time, is not
 *    committed: the message is retried, and a consumer restarted in the
 *    same group sees it again;
 *  - stopping ends a dead-letter wait and an apply back-off promptly;
 *  - the lines about a message carry its trace context (traceparent=):
 *    the Kafka header's, else the envelope metadata's, else "-". */
#include "faulty_rm.h"
#include "broker.h"
#include "bus.h"
#include "mock_kafka.h"
#include "proc.h"
#include "projector.h"
#include "query_routes.h"
#include "sm_log.h"
#include "sm_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC "ProjectorTestEvents"
#define DLQ TOPIC ".DLQ"
#define GROUP "smpost-test-projector"
#define WAIT_MS 60000 /* generous: a loaded 2-core machine, and a ~3 s group join */

typedef struct fixture {
    char dir[256];
    mock_kafka *kafka;
    rm_store *rm;
    faulty_rm *fault;
    query_app app;
} fixture;

static int setup_partitions(void **state, int partitions)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !test_temp_dir("smpost-projector", f->dir, sizeof f->dir))
        return -1;
    char url[320];
    snprintf(url, sizeof url, "sqlite:%s/readmodel.db", f->dir);
    rm_store *inner = NULL;
    sm_error err = {0};
    if (rm_open(url, &inner, &err) != SM_OK)
        return -1;
    f->rm = faulty_rm_wrap(inner, &f->fault);
    f->kafka = mock_kafka_start(TOPIC, partitions);
    f->app.rm = f->rm;
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_partitions(state, 3); }

/* One partition: every message in one known order, so a batch holds them
 * all and a committed offset says exactly how far the consumer got. */
static int setup_one_partition(void **state) { return setup_partitions(state, 1); }

static int teardown(void **state)
{
    fixture *f = *state;
    projector_stop(f->app.proj);
    rm_close(f->rm);
    mock_kafka_stop(f->kafka);
    test_rm_rf(f->dir);
    free(f);
    return 0;
}

/* dead_letter_wait_ms 0: the default */
/* The mock cluster holds every fetch for the whole wait: short, as
 * scripts/run.sh sets it for the local broker, so the consumer sees each
 * event as it comes (a real broker answers a fetch when data arrives). */
static const char *const fetch_now[] = {"fetch.wait.max.ms=10", NULL};

static void start_with(fixture *f, int dead_letter_wait_ms)
{
    sm_error err = {0};
    projector_opts o = {f->rm, {mock_kafka_bootstrap(f->kafka), TOPIC, "smpost-test", fetch_now},
                        GROUP, dead_letter_wait_ms};
    f->app.proj = projector_start(&o, &err);
    if (!f->app.proj)
        fail_msg("projector_start: %s", err.message);
}

static void start(fixture *f) { start_with(f, 0); }

static void stop(fixture *f)
{
    projector_stop(f->app.proj);
    f->app.proj = NULL;
}

/* Produces event (post, version) of type t, keyed by its post. */
static void produce_event(fixture *f, const char *post, int64_t v, sm_event_type t)
{
    sm_event e = {0};
    sm_uuid_new(e.event_id);
    strcpy(e.aggregate_id, post);
    e.version = v;
    e.type = t;
    e.timestamp_ms = e.at_ms = 1700000000000 + v;
    if (t == SM_EV_POST_CREATED) {
        e.author = strdup("alice");
        e.message = strdup("hello");
    } else if (t == SM_EV_COMMENT_ADDED) {
        sm_uuid_new(e.comment_id);
        e.comment = strdup("nice");
        e.username = strdup("bob");
    }
    char *text = sm_event_encode(&e);
    assert_non_null(text);
    mock_kafka_produce(f->kafka, TOPIC, post, text);
    free(text);
    sm_event_clear(&e);
}

/* Produces event (post, v) of type t with a "traceparent" header (unless
 * header is NULL) and traceparent meta in its envelope's metadata (unless
 * "" ). */
static void produce_traced(fixture *f, const char *post, int64_t v, sm_event_type t,
                           const char *header, const char *meta)
{
    sm_event e = {0};
    sm_uuid_new(e.event_id);
    strcpy(e.aggregate_id, post);
    e.version = v;
    e.type = t;
    e.timestamp_ms = e.at_ms = 1700000000000 + v;
    if (t == SM_EV_POST_CREATED) {
        e.author = strdup("alice");
        e.message = strdup("hello");
    }
    snprintf(e.meta.traceparent, sizeof e.meta.traceparent, "%s", meta);
    char *text = sm_event_encode(&e);
    assert_non_null(text);
    const char *headers[] = {"traceparent", header, NULL};
    mock_kafka_produce_headers(f->kafka, TOPIC, post, text, header ? headers : NULL);
    free(text);
    sm_event_clear(&e);
}

/* Five events on post a (0..4), three on post b (0..2). */
static void produce_two_posts(fixture *f, sm_uuid_str a, sm_uuid_str b)
{
    static const sm_event_type a_types[] = {SM_EV_POST_CREATED, SM_EV_POST_LIKED,
                                            SM_EV_COMMENT_ADDED, SM_EV_MESSAGE_UPDATED,
                                            SM_EV_POST_LIKED};
    sm_uuid_new(a);
    sm_uuid_new(b);
    for (int v = 0; v < 5; v++) {
        produce_event(f, a, v, a_types[v]);
        if (v < 3)
            produce_event(f, b, v, v == 0 ? SM_EV_POST_CREATED : SM_EV_POST_LIKED);
    }
}

static int64_t version_of(fixture *f, const char *post)
{
    int64_t v = -2;
    sm_error err = {0};
    assert_int_equal(rm_post_version(f->rm, post, &v, &err), SM_OK);
    return v;
}

/* Waits (bounded) until post is at version v; returns the version seen. */
static int64_t wait_version(fixture *f, const char *post, int64_t v)
{
    int64_t seen = -1;
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until; sm_sleep_ms(20))
        if ((seen = version_of(f, post)) >= v)
            break;
    return seen;
}

static bool wait_failed(fixture *f, int n)
{
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until; sm_sleep_ms(10))
        if (faulty_rm_failed(f->fault) >= n)
            return true;
    return false;
}

/* GET path through the query API's route handler; *out: the reply. */
static void get(fixture *f, const char *path, http_reply *out)
{
    memset(out, 0, sizeof *out);
    http_request req = {.method = "GET", .path = path};
    query_routes_handle(&f->app, &req, out);
}

/* The value of an unlabelled metric in /metrics, or -1 if absent. */
static double metric(fixture *f, const char *name)
{
    http_reply r;
    get(f, "/metrics", &r);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = r.body_text ? strstr(r.body_text, key) : NULL;
    double v = at ? strtod(at + strlen(key), NULL) : -1;
    http_reply_free(&r);
    return v;
}

/* /health's consumer.projection.<key> as text ("" if absent). */
static void projection_field(fixture *f, const char *key, char *out, size_t cap)
{
    http_reply r;
    get(f, "/health", &r);
    json_t *v = json_object_get(
        json_object_get(json_object_get(r.body, "consumer"), "projection"), key);
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, cap, "%s", "");
    http_reply_free(&r);
}

/* The offsets group committed on the topic, summed over partitions. */
static int64_t committed_total(fixture *f)
{
    int64_t sum = 0;
    for (int part = 0; part < 3; part++) {
        int64_t off = mock_kafka_committed(f->kafka, GROUP, TOPIC, part);
        sum += off > 0 ? off : 0;
    }
    return sum;
}

static void test_an_apply_error_is_retried_and_never_dead_lettered(void **state)
{
    fixture *f = *state;
    sm_uuid_str a, b;
    produce_two_posts(f, a, b);
    /* e.g. the log is full: every apply fails until the fault clears */
    faulty_rm_fail_applies(f->fault, -1, SM_ERR_INTERNAL);
    start(f);
    assert_true(wait_failed(f, 3));
    int64_t dead = mock_kafka_count(f->kafka, DLQ);
    if (dead != 0)
        fail_msg("%lld events that decode were sent to the dead-letter topic on an apply error",
                 (long long)dead);
    char state_text[64], last[600];
    projection_field(f, "state", state_text, sizeof state_text);
    projection_field(f, "lastError", last, sizeof last);
    printf("# while failing: projection state=%s lastError=%s apply_errors=%.0f\n", state_text,
           last, metric(f, "smpost_projection_apply_errors_total"));
    assert_string_equal(state_text, "retrying");
    assert_non_null(strstr(last, "injected fault"));
    assert_true(metric(f, "smpost_projection_apply_errors_total") >= 3);

    faulty_rm_fail_applies(f->fault, 0, SM_OK); /* the fault clears */
    assert_int_equal(wait_version(f, a, 4), 4);
    assert_int_equal(wait_version(f, b, 2), 2);
    projector_stats ps;
    projector_get_stats(f->app.proj, &ps);
    assert_int_equal(ps.applied, 8);
    assert_int_equal(ps.gaps, 0);
    assert_int_equal(ps.dead_lettered, 0);
    assert_int_equal(mock_kafka_count(f->kafka, DLQ), 0);
    assert_true(metric(f, "smpost_projection_apply_errors_total") >= faulty_rm_failed(f->fault));
    projection_field(f, "state", state_text, sizeof state_text);
    assert_string_equal(state_text, "ok");
    stop(f);
    assert_int_equal(committed_total(f), 8); /* every offset, once applied */
}

static void test_an_undecodable_message_is_dead_lettered_and_consumption_goes_on(void **state)
{
    fixture *f = *state;
    sm_uuid_str a;
    sm_uuid_new(a);
    /* same key as the post: the same partition, before its events */
    mock_kafka_produce(f->kafka, TOPIC, a, "this is not an event {");
    produce_event(f, a, 0, SM_EV_POST_CREATED);
    produce_event(f, a, 1, SM_EV_POST_LIKED);
    start(f);
    assert_int_equal(wait_version(f, a, 1), 1);
    char why[256];
    assert_int_equal(mock_kafka_find(f->kafka, DLQ, "this is not an event {", "error", why,
                                     sizeof why), 1);
    printf("# dead letter's error header: %s\n", why);
    assert_true(strlen(why) > 0);
    projector_stats ps;
    projector_get_stats(f->app.proj, &ps);
    assert_int_equal(ps.dead_lettered, 1);
    assert_int_equal(faulty_rm_failed(f->fault), 0);
}

static void test_a_refused_dead_letter_is_not_committed_and_is_seen_again(void **state)
{
    fixture *f = *state;
    sm_uuid_str a;
    sm_uuid_new(a);
    mock_kafka_produce(f->kafka, TOPIC, a, "poison {");
    produce_event(f, a, 0, SM_EV_POST_CREATED);
    /* the broker refuses every write to the dead-letter topic */
    mock_kafka_fail_produce(f->kafka, 100000, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    start(f);
    /* the poison is retried: the post's event behind it waits */
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until; sm_sleep_ms(50))
        if (metric(f, "smpost_events_dead_letter_failures_total") >= 3 || version_of(f, a) >= 0)
            break;
    printf("# DLQ refused: dead_letter_failures=%.0f post version=%lld\n",
           metric(f, "smpost_events_dead_letter_failures_total"), (long long)version_of(f, a));
    if (version_of(f, a) >= 0)
        fail_msg("the consumer moved past a message whose dead letter the broker refused");
    assert_true(metric(f, "smpost_events_dead_letter_failures_total") >= 3);
    char last[600];
    projection_field(f, "lastError", last, sizeof last);
    printf("# lastError: %s\n", last);
    assert_true(strlen(last) > 0);
    stop(f);
    assert_int_equal(committed_total(f), 0);

    /* the broker accepts dead letters again; a consumer restarted in the
     * same group starts from the poison again */
    mock_kafka_fail_produce(f->kafka, 0, RD_KAFKA_RESP_ERR_NO_ERROR);
    start(f);
    assert_int_equal(wait_version(f, a, 0), 0);
    char why[256];
    assert_int_equal(mock_kafka_find(f->kafka, DLQ, "poison {", "error", why, sizeof why), 1);
    stop(f);
    assert_int_equal(committed_total(f), 2);
}

static void test_an_unconfirmed_dead_letter_is_not_committed_and_is_retried(void **state)
{
    fixture *f = *state;
    sm_uuid_str a;
    sm_uuid_new(a);
    mock_kafka_produce(f->kafka, TOPIC, a, "poison {");
    produce_event(f, a, 0, SM_EV_POST_CREATED);
    /* a retriable error: the producer keeps trying, no answer comes */
    mock_kafka_fail_produce(f->kafka, 100000, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    start_with(f, 1000);
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until; sm_sleep_ms(50))
        if (metric(f, "smpost_events_dead_letter_failures_total") >= 2 || version_of(f, a) >= 0)
            break;
    char last[600];
    projection_field(f, "lastError", last, sizeof last);
    printf("# DLQ unanswered: dead_letter_failures=%.0f lastError=%s\n",
           metric(f, "smpost_events_dead_letter_failures_total"), last);
    assert_int_equal(version_of(f, a), -1);
    assert_non_null(strstr(last, "not confirmed"));
    /* the broker answers again: the copy is confirmed, the consumer goes on */
    mock_kafka_fail_produce(f->kafka, 0, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(wait_version(f, a, 0), 0);
    char why[256];
    int copies = mock_kafka_find(f->kafka, DLQ, "poison {", "error", why, sizeof why);
    printf("# copies of the poison in the DLQ: %d\n", copies);
    assert_int_equal(copies, 1); /* the copy in flight was waited for, not sent again */
    stop(f);
    assert_int_equal(committed_total(f), 2);
}

static void test_stop_ends_a_dead_letter_wait_promptly(void **state)
{
    fixture *f = *state;
    sm_uuid_str a;
    sm_uuid_new(a);
    mock_kafka_produce(f->kafka, TOPIC, a, "poison {");
    /* a retriable error: the producer keeps trying, the projector waits */
    mock_kafka_fail_produce(f->kafka, 100000, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    start(f);
    int64_t t_start = sm_mono_ms();
    projector_stats ps = {0};
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until && ps.assigned == 0;
         sm_sleep_ms(20))
        projector_get_stats(f->app.proj, &ps);
    assert_true(ps.assigned > 0);
    sm_sleep_ms(1500); /* the poison is in hand, its dead letter unconfirmed */
    int64_t t0 = sm_mono_ms();
    stop(f);
    int64_t took = sm_mono_ms() - t0;
    printf("# projector_stop with a dead letter waiting: %lld ms (started %lld ms before)\n",
           (long long)took, (long long)(t0 - t_start));
    if (took > 5000)
        fail_msg("projector_stop took %lld ms with a dead letter waiting for the broker",
                 (long long)took);
    assert_int_equal(committed_total(f), 0);
}

static void test_stop_ends_an_apply_back_off_promptly(void **state)
{
    fixture *f = *state;
    sm_uuid_str a;
    sm_uuid_new(a);
    produce_event(f, a, 0, SM_EV_POST_CREATED);
    faulty_rm_fail_applies(f->fault, -1, SM_ERR_INTERNAL);
    start(f);
    /* by the 7th failure the back-off has grown to its cap (seconds) */
    assert_true(wait_failed(f, 7));
    int64_t t0 = sm_mono_ms();
    stop(f);
    int64_t took = sm_mono_ms() - t0;
    printf("# projector_stop during a back-off: %lld ms\n", (long long)took);
    if (took > 3000)
        fail_msg("projector_stop took %lld ms during an apply back-off", (long long)took);
    assert_int_equal(version_of(f, a), -1);
}

/* A trickle of events, each applied before the next arrives: the consumer
 * catches up after every one. Committing then, once per event, is one
 * OffsetCommit round trip per event, which a real group coordinator serves
 * one at a time (~10 ms each): at a few hundred events/s the queue grew
 * until heartbeats waited behind it and the group was lost. The commits
 * must stay bounded in rate, and what was applied must still be committed
 * soon after the trickle stops. */
static void test_a_trickle_of_events_costs_a_bounded_number_of_commits(void **state)
{
    fixture *f = *state;
    start(f);
    projector_stats ps = {0};
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until && ps.assigned < 3;
         sm_sleep_ms(20))
        projector_get_stats(f->app.proj, &ps);
    assert_int_equal(ps.assigned, 3);
    enum { EVENTS = 150 };
    sm_uuid_str post;
    sm_uuid_new(post);
    int64_t t0 = sm_mono_ms();
    for (int v = 0; v < EVENTS; v++) { /* ~50/s: each applied before the next comes */
        produce_event(f, post, v, v == 0 ? SM_EV_POST_CREATED : SM_EV_POST_LIKED);
        sm_sleep_ms(20);
    }
    assert_int_equal(wait_version(f, post, EVENTS - 1), EVENTS - 1);
    int64_t took = sm_mono_ms() - t0;
    projector_get_stats(f->app.proj, &ps);
    long bound = (long)(took / 100) + 3; /* ten a second, not one per event */
    printf("# %d events one at a time in %lld ms: %llu offset commits (bound %ld)\n", EVENTS,
           (long long)took, (unsigned long long)ps.offset_commits, bound);
    if ((long)ps.offset_commits > bound)
        fail_msg("%llu offset commits for %d events in %lld ms: about one per event",
                 (unsigned long long)ps.offset_commits, EVENTS, (long long)took);
    /* ... and the last of them is committed without waiting for a stop */
    int64_t committed = 0;
    for (int64_t until = sm_mono_ms() + 5000; sm_mono_ms() < until; sm_sleep_ms(50))
        if ((committed = committed_total(f)) >= EVENTS)
            break;
    assert_int_equal(committed, EVENTS);
}

/* One batch (one partition, everything produced before the consumer
 * starts) holding a redelivered version, a gap, an undecodable message
 * and an event the read model refuses twice: the transaction is rolled
 * back, the messages are retried one by one up to the refused event, which
 * is retried after a back-off, and in the end every event that should be
 * applied is applied exactly once, the duplicates and the gap are counted
 * once each, the poison is in the DLQ once, and every offset is committed. */
static void test_a_batch_with_duplicates_a_gap_a_poison_and_an_apply_error(void **state)
{
    fixture *f = *state;
    sm_uuid_str a, b, c;
    sm_uuid_new(a);
    sm_uuid_new(b);
    sm_uuid_new(c);
    produce_event(f, a, 0, SM_EV_POST_CREATED);
    produce_event(f, a, 1, SM_EV_POST_LIKED);
    produce_event(f, a, 1, SM_EV_POST_LIKED); /* redelivered: a duplicate */
    mock_kafka_produce(f->kafka, TOPIC, b, "poison {");
    produce_event(f, b, 0, SM_EV_POST_CREATED);
    produce_event(f, b, 2, SM_EV_POST_LIKED); /* b's version 1 never came: a gap */
    produce_event(f, c, 0, SM_EV_POST_CREATED);
    produce_event(f, c, 1, SM_EV_POST_LIKED); /* refused twice */
    produce_event(f, c, 2, SM_EV_POST_LIKED);
    produce_event(f, c, 0, SM_EV_POST_CREATED); /* an old one again: a duplicate */
    produce_event(f, a, 2, SM_EV_POST_LIKED);
    enum { MESSAGES = 11 };
    faulty_rm_fail_event(f->fault, c, 1, 2, SM_ERR_INTERNAL);
    start(f);
    assert_int_equal(wait_version(f, c, 2), 2);
    assert_int_equal(wait_version(f, a, 2), 2);
    projector_stats ps;
    projector_get_stats(f->app.proj, &ps);
    printf("# applied=%llu duplicates=%llu gaps=%llu dead_lettered=%llu retries=%llu "
           "apply_errors=%llu batches=%llu refused=%d\n", (unsigned long long)ps.applied,
           (unsigned long long)ps.duplicates, (unsigned long long)ps.gaps,
           (unsigned long long)ps.dead_lettered, (unsigned long long)ps.retries,
           (unsigned long long)ps.apply_errors, (unsigned long long)ps.batches,
           faulty_rm_failed(f->fault));
    assert_int_equal(faulty_rm_failed(f->fault), 2);
    assert_int_equal(ps.applied, 7); /* a 0..2, b 0, c 0..2 */
    assert_int_equal(ps.duplicates, 2);
    assert_int_equal(ps.gaps, 1);
    assert_int_equal(ps.dead_lettered, 1);
    /* the lag histogram has the applied events only, each from its own
     * timestamp; the newest event per partition is an applied one */
    const sm_histogram *lag = projector_lag_histogram(f->app.proj);
    assert_int_equal(sm_hist_count(lag), 7);
    double years = (double)(sm_now_ms() - 1700000000000) / 1000.0;
    double sum = (double)sm_hist_sum(lag) * lag->spec->unit;
    assert_true(sum > 7 * (years - 60) && sum < 7 * (years + 60));
    int64_t newest = 0;
    for (int i = 0; i < PROJECTOR_MAX_PARTITIONS; i++) {
        int64_t t = ps.newest_event_ms[i];
        assert_true(t == 0 || (t >= 1700000000000 && t <= 1700000000002));
        newest = t > newest ? t : newest;
    }
    assert_int_equal(newest, 1700000000002);
    assert_int_equal(version_of(f, b), 0);
    char why[256];
    assert_int_equal(mock_kafka_find(f->kafka, DLQ, "poison {", "error", why, sizeof why), 1);
    assert_int_equal(mock_kafka_count(f->kafka, DLQ), 1);
    const char *posts[] = {a, c};
    for (int i = 0; i < 2; i++) { /* two likes each: none applied twice, none lost */
        rm_query q = {.kind = RM_Q_BY_ID, .id = posts[i], .limit = 1};
        rm_post_list l = {0};
        sm_error err = {0};
        assert_int_equal(rm_query_posts(f->rm, &q, &l, &err), SM_OK);
        assert_int_equal(l.len, 1);
        assert_int_equal(l.items[0].likes, 2);
        rm_post_list_free(&l);
    }
    stop(f);
    assert_int_equal(committed_total(f), MESSAGES);
}

/* While an event of a batch keeps failing, the offsets committed are
 * exactly those of the messages before it, applied one by one after the
 * batch's transaction was rolled back: never one of a message whose
 * transaction did not commit. */
static void test_offsets_are_committed_only_after_their_transaction(void **state)
{
    fixture *f = *state;
    sm_uuid_str a, b;
    sm_uuid_new(a);
    sm_uuid_new(b);
    produce_event(f, a, 0, SM_EV_POST_CREATED);
    produce_event(f, a, 1, SM_EV_POST_LIKED);
    produce_event(f, b, 0, SM_EV_POST_CREATED);
    produce_event(f, b, 1, SM_EV_POST_LIKED); /* refused until the fault clears */
    produce_event(f, b, 2, SM_EV_POST_LIKED);
    faulty_rm_fail_event(f->fault, b, 1, -1, SM_ERR_INTERNAL);
    start(f);
    assert_true(wait_failed(f, 4));
    int64_t committed = 0;
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until; sm_sleep_ms(50))
        if ((committed = committed_total(f)) >= 3)
            break;
    assert_true(wait_failed(f, faulty_rm_failed(f->fault) + 2)); /* more attempts since */
    committed = committed_total(f);
    printf("# while b v1 fails: committed=%lld a=%lld b=%lld\n", (long long)committed,
           (long long)version_of(f, a), (long long)version_of(f, b));
    assert_int_equal(committed, 3);
    assert_int_equal(version_of(f, a), 1);
    assert_int_equal(version_of(f, b), 0);
    faulty_rm_fail_event(f->fault, b, 1, 0, SM_OK); /* the fault clears */
    assert_int_equal(wait_version(f, b, 2), 2);
    stop(f);
    assert_int_equal(committed_total(f), 5);
}

/* This process's stderr (where sm_log writes) goes to a file meanwhile. */
typedef struct captured {
    char path[300];
    int saved;
} captured;

static captured capture_stderr(fixture *f)
{
    captured c;
    snprintf(c.path, sizeof c.path, "%s/stderr.log", f->dir);
    fflush(stderr);
    c.saved = dup(2);
    int fd = open(c.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(c.saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    return c;
}

/* Restores stderr; the captured text (caller frees), also echoed. */
static char *release_stderr(captured *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    FILE *in = fopen(c->path, "r");
    assert_non_null(in);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[n] = '\0';
    fputs(buf, stderr);
    return strdup(buf);
}

/* The first log line with event=<event> that contains every part given
 * (NULL-terminated); NULL if none. Returns a copy (caller frees). */
static char *log_line(const char *log, const char *event, const char *const *parts)
{
    char key[64];
    snprintf(key, sizeof key, " event=%s ", event);
    for (const char *line = log; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        bool match = strstr(copy, key) != NULL;
        for (const char *const *p = parts; match && *p; p++)
            match = strstr(copy, *p) != NULL;
        if (match)
            return copy;
        free(copy);
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

static void expect_line(const char *log, const char *event, const char *const *parts)
{
    char *line = log_line(log, event, parts);
    if (!line)
        fail_msg("no %s line with %s %s", event, parts[0], parts[1] ? parts[1] : "");
    printf("# %s\n", line);
    free(line);
}

/* What RestoreReadDb's replay and the live stream both rely on: the owner
 * ids in an envelope travel through decoding and the projection into the
 * read model and the query API's answer; an envelope without them (an
 * older event) reads null. */
static void test_owner_ids_travel_from_the_envelope_to_the_query_api(void **state)
{
    fixture *f = *state;
    sm_uuid_str a, cid, old;
    sm_uuid_new(a), sm_uuid_new(cid), sm_uuid_new(old);
    sm_event e[3];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 3; i++) {
        sm_uuid_new(e[i].event_id);
        strcpy(e[i].aggregate_id, i < 2 ? a : old);
        e[i].version = i == 1 ? 1 : 0;
        e[i].type = i == 1 ? SM_EV_COMMENT_ADDED : SM_EV_POST_CREATED;
        e[i].timestamp_ms = e[i].at_ms = 1700000000000 + i;
        e[i].author = strdup("alice");
        e[i].message = strdup("hello");
    }
    e[0].author_id = strdup("sub-alice");
    strcpy(e[1].comment_id, cid);
    e[1].comment = strdup("nice");
    e[1].username = strdup("bob");
    e[1].user_id = strdup("sub-bob");
    for (int i = 0; i < 3; i++) {
        char *text = sm_event_encode(&e[i]);
        assert_non_null(text);
        if (i < 2)
            assert_non_null(strstr(text, i ? "\"userId\":\"sub-bob\"" : "\"authorId\":\"sub-alice\""));
        mock_kafka_produce(f->kafka, TOPIC, e[i].aggregate_id, text);
        free(text);
        sm_event_clear(&e[i]);
    }
    start(f);
    assert_int_equal(wait_version(f, a, 1), 1);
    assert_int_equal(wait_version(f, old, 0), 0);
    char path[128];
    http_reply r;
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s", a);
    get(f, path, &r);
    assert_int_equal(r.status, 200);
    json_t *post = json_array_get(json_object_get(r.body, "posts"), 0);
    json_t *comment = json_array_get(json_object_get(post, "comments"), 0);
    assert_string_equal(json_string_value(json_object_get(post, "authorId")), "sub-alice");
    assert_string_equal(json_string_value(json_object_get(comment, "userId")), "sub-bob");
    http_reply_free(&r);
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s", old);
    get(f, path, &r);
    assert_int_equal(r.status, 200);
    post = json_array_get(json_object_get(r.body, "posts"), 0);
    assert_true(json_is_null(json_object_get(post, "authorId")));
    http_reply_free(&r);
}

#define TP_HEADER "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TP_META "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define TP_DEAD "00-11111111111111111111111111111111-2222222222222222-01"

static void test_log_lines_carry_the_trace_context_of_the_message(void **state)
{
    fixture *f = *state;
    sm_uuid_str a;
    sm_uuid_new(a);
    mock_kafka_produce_headers(f->kafka, TOPIC, a, "not an event {",
                               (const char *const[]){"traceparent", TP_DEAD, NULL});
    produce_traced(f, a, 0, SM_EV_POST_CREATED, TP_HEADER, TP_META); /* the header wins */
    produce_traced(f, a, 1, SM_EV_POST_LIKED, NULL, TP_META);  /* an older relay: no header */
    produce_traced(f, a, 2, SM_EV_POST_LIKED, "x\" y=1", ""); /* not fit to log: ignored */
    produce_traced(f, a, 4, SM_EV_POST_LIKED, TP_HEADER, ""); /* a gap */
    captured c = capture_stderr(f);
    sm_log_set_level(SM_LOG_DEBUG);
    start(f);
    int64_t seen = wait_version(f, a, 2);
    for (int64_t until = sm_mono_ms() + WAIT_MS; sm_mono_ms() < until; sm_sleep_ms(20)) {
        projector_stats ps;
        projector_get_stats(f->app.proj, &ps);
        if (ps.gaps >= 1 && ps.dead_lettered >= 1)
            break;
    }
    stop(f);
    sm_log_set_level(SM_LOG_WARN);
    char *log = release_stderr(&c);
    assert_int_equal(seen, 2);
    char post[64];
    snprintf(post, sizeof post, "post=%s", a);
    expect_line(log, "event_applied",
                (const char *const[]){post, "version=0 ", "traceparent=" TP_HEADER, NULL});
    expect_line(log, "event_applied",
                (const char *const[]){post, "version=1 ", "traceparent=" TP_META, NULL});
    expect_line(log, "event_applied",
                (const char *const[]){post, "version=2 ", "traceparent=-", NULL});
    expect_line(log, "event_gap",
                (const char *const[]){post, "version=4 ", "traceparent=" TP_HEADER, NULL});
    expect_line(log, "event_dead_lettered", (const char *const[]){"traceparent=" TP_DEAD, NULL});
    free(log);
}

int main(void)
{
    int rc = test_broker_check("projector");
    if (rc)
        return rc;
    sm_log_set_level(SM_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_batch_with_duplicates_a_gap_a_poison_and_an_apply_error, setup_one_partition,
            teardown),
        cmocka_unit_test_setup_teardown(test_offsets_are_committed_only_after_their_transaction,
                                        setup_one_partition, teardown),
        cmocka_unit_test_setup_teardown(test_an_apply_error_is_retried_and_never_dead_lettered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_undecodable_message_is_dead_lettered_and_consumption_goes_on, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_refused_dead_letter_is_not_committed_and_is_seen_again, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_unconfirmed_dead_letter_is_not_committed_and_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_ends_a_dead_letter_wait_promptly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_ends_an_apply_back_off_promptly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_trickle_of_events_costs_a_bounded_number_of_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_lines_carry_the_trace_context_of_the_message,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_owner_ids_travel_from_the_envelope_to_the_query_api, setup, teardown),
    };
    return cmocka_run_group_tests_name(test_broker_is_real() ? "projector_realkafka" : "projector",
                                       tests, NULL, NULL);
}
