/* SPDX-License-Identifier: Apache-2.0 */
/* test_relay.c — the outbox relay end to end: the real command-api binary
 * publishing to smpost-devbroker (librdkafka's mock cluster, a real Kafka
 * protocol peer in another process), read back by a Kafka consumer here.
 *
 * SMPOST_TEST_ES_URL picks the event store as in test_event_store.c
 * ("sqlite", or "mongodb" with SMPOST_TEST_MONGO_URL from with_jongodb.sh).
 * Each case gets its own broker, store and command-api. */
#include "broker.h"
#include "http_client.h"
#include "proc.h"
#include "sm_event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC "SocialMediaPostEvents"
#define PARTITIONS 6

static const char *api_bin, *broker_bin;
static char mongo_base[400];
static int case_no;

typedef struct env {
    char dir[256];
    char store_url[512];
    char bootstrap[128];
    test_proc broker, api;
} env;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start_api(env *e)
{
    char port[16], log[400];
    e->api.port = test_free_port();
    snprintf(port, sizeof port, "%d", e->api.port);
    snprintf(log, sizeof log, "%s/command-api.log", e->dir);
    char *argv[] = {(char *)api_bin, "--port", port, "--event-store", e->store_url,
                    "--kafka-bootstrap", e->bootstrap, "--log-level", "info", NULL};
    assert_true(test_proc_start(&e->api, argv, log));
    if (!test_proc_wait_http(e->api.port, 15000))
        fail_msg("command-api did not start; see %s", log);
}

static void start_broker(env *e)
{
    if (!test_start_devbroker(&e->broker, broker_bin, e->dir, PARTITIONS, e->bootstrap,
                              sizeof e->bootstrap))
        fail_msg("smpost-devbroker did not start (see %s)", e->dir);
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    if (!test_temp_dir("smpost-relay", e->dir, sizeof e->dir))
        return -1;
    case_no++;
    if (mongo_base[0]) /* a database per case on the shared test server */
        snprintf(e->store_url, sizeof e->store_url, "%s/relay_case_%d_%d", mongo_base, case_no,
                 (int)getpid());
    else
        snprintf(e->store_url, sizeof e->store_url, "sqlite:%s/events.db", e->dir);
    start_broker(e);
    start_api(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    if (e->api.pid > 0)
        test_proc_stop(&e->api, SIGTERM, 8000);
    if (e->broker.pid > 0)
        test_proc_stop(&e->broker, SIGTERM, 5000);
    if (getenv("SMPOST_TEST_KEEP") == NULL)
        test_rm_rf(e->dir);
    free(e);
    return 0;
}

/* --- HTTP helpers ------------------------------------------------------- */

static void new_post(env *e, char id[40])
{
    http_resp r;
    assert_int_equal(http_json(e->api.port, "POST", "/api/v1/NewPost",
                               "{\"author\":\"alice\",\"message\":\"hello\"}", &r), 0);
    assert_int_equal(r.status, 201);
    strcpy(id, http_resp_str(&r, "id"));
    http_resp_free(&r);
}

static void like(env *e, const char *id)
{
    char path[200];
    snprintf(path, sizeof path, "/api/v1/LikePost/%s", id);
    http_resp r;
    assert_int_equal(http_json(e->api.port, "PUT", path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
}

/* A number from /metrics, or -1. */
static double metric(env *e, const char *name)
{
    http_resp r;
    double v = -1;
    if (http_call(e->api.port, "GET", "/metrics", "", NULL, 0, 5000, &r) == 0) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *p = strstr(r.body, key);
        if (p)
            v = strtod(p + strlen(key), NULL);
    }
    http_resp_free(&r);
    return v;
}

static bool wait_metric_at_least(env *e, const char *name, double want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if (metric(e, name) >= want)
            return true;
        sleep_ms(100);
    }
    return false;
}

static bool wait_metric(env *e, const char *name, double want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if (metric(e, name) == want)
            return true;
        sleep_ms(100);
    }
    return false;
}

/* Waits until /health reports Kafka in state want ("up"/"down"). */
static bool wait_kafka(env *e, const char *want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 200) {
        http_resp r;
        if (http_json(e->api.port, "GET", "/health", NULL, &r) == 0) {
            json_t *k = json_object_get(r.json, "kafka");
            bool hit = k && strcmp(json_string_value(json_object_get(k, "status")), want) == 0;
            int status = r.status;
            http_resp_free(&r);
            if (hit) {
                assert_int_equal(status, strcmp(want, "up") == 0 ? 200 : 503);
                return true;
            }
        }
        sleep_ms(200);
    }
    return false;
}

/* --- Kafka consumer ----------------------------------------------------- */

typedef struct seen {
    char key[40];
    int64_t version;
    sm_event_type type;
} seen;

/* Reads the whole topic from the beginning (all partitions assigned, no
 * group) until `want` messages arrived or timeout_ms passed. Checks that
 * each message's key, "type" and "traceparent" headers match its envelope. */
static size_t consume(const char *bootstrap, size_t want, int timeout_ms, seen *out)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", "smpost-test-reader", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    size_t n = 0;
    for (int waited = 0; n < want && waited < timeout_ms; waited += 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            sm_event ev;
            sm_error err;
            assert_int_equal(sm_event_decode(&ev, m->payload, m->len, &err), SM_OK);
            assert_int_equal(m->key_len, 36);
            assert_memory_equal(m->key, ev.aggregate_id, 36);
            rd_kafka_headers_t *h = NULL;
            const void *tv;
            size_t tl;
            assert_int_equal(rd_kafka_message_headers(m, &h), 0);
            assert_int_equal(rd_kafka_header_get_last(h, "type", &tv, &tl), 0);
            assert_memory_equal(tv, sm_event_type_name(ev.type), tl);
            /* every command's events carry a trace context (the request's or
             * a new one) and the request id, and the trace is a header too */
            assert_true(sm_traceparent_valid(ev.meta.traceparent));
            assert_true(ev.meta.request_id[0] != '\0');
            assert_int_equal(rd_kafka_header_get_last(h, "traceparent", &tv, &tl), 0);
            assert_int_equal(tl, SM_EVENT_TRACEPARENT_LEN);
            assert_memory_equal(tv, ev.meta.traceparent, tl);
            strcpy(out[n].key, ev.aggregate_id);
            out[n].version = ev.version;
            out[n].type = ev.type;
            n++;
            sm_event_clear(&ev);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* How many messages the topic holds: the sum of its partitions' high
 * watermarks (every message the broker took, re-sends included). */
static size_t topic_messages(const char *bootstrap)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    int64_t total = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo = 0, hi = 0;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, TOPIC, p, &lo, &hi, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        total += hi;
    }
    rd_kafka_destroy(rk);
    return (size_t)total;
}

/* Every post in ids[0..nposts) must appear with versions 0..last[i], in
 * order; with at_least_once, repeats are allowed but never a step back past
 * a version not yet seen. */
static void assert_per_post_order(const seen *s, size_t n, char ids[][40], const int64_t *last,
                                  int nposts, bool at_least_once)
{
    for (int p = 0; p < nposts; p++) {
        int64_t next = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(s[i].key, ids[p]) != 0)
                continue;
            if (s[i].version == next)
                next++;
            else if (!at_least_once || s[i].version > next)
                fail_msg("post %d: version %lld arrived when %lld was due", p,
                         (long long)s[i].version, (long long)next);
        }
        assert_int_equal(next, last[p] + 1);
    }
}

/* --- the cases ---------------------------------------------------------- */

static void test_interleaved_posts_arrive_in_version_order_per_post(void **state)
{
    env *e = *state;
    char ids[3][40];
    for (int p = 0; p < 3; p++)
        new_post(e, ids[p]);
    for (int round = 0; round < 10; round++)
        for (int p = 0; p < 3; p++)
            like(e, ids[p]);
    seen s[64];
    size_t n = consume(e->bootstrap, 33, 20000, s);
    assert_int_equal(n, 33);
    int64_t last[3] = {10, 10, 10};
    assert_per_post_order(s, n, ids, last, 3, false);
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 5000));
    assert_true(metric(e, "smpost_events_published_total") >= 33);
    /* the histograms of the write path saw every one of them */
    assert_true(metric(e, "smpost_relay_publish_seconds_count") >= 33);
    assert_true(metric(e, "smpost_relay_round_events_sum") >= 33);
    if (!mongo_base[0]) { /* the group commit is SQLite's */
        double txns = metric(e, "smpost_group_commit_members_count");
        assert_true(txns >= 1 && metric(e, "smpost_group_commit_members_sum") >= 33);
    }
    assert_int_equal(metric(e, "smpost_http_request_duration_seconds_count"
                               "{route=\"/api/v1/LikePost/{postId}\",code=\"2xx\"}"),
                     30);
}

static void test_commands_succeed_while_kafka_is_down_and_publish_after(void **state)
{
    env *e = *state;
    char ids[2][40];
    new_post(e, ids[0]);
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 10000));
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_DOWN));
    assert_true(wait_kafka(e, "down", 15000));
    new_post(e, ids[1]);
    for (int i = 0; i < 5; i++) {
        like(e, ids[0]);
        like(e, ids[1]);
    }
    assert_true(metric(e, "smpost_outbox_pending") >= 6);
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_UP));
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 40000));
    assert_true(wait_kafka(e, "up", 15000));
    seen s[64];
    size_t n = consume(e->bootstrap, 12, 20000, s);
    assert_int_equal(n, 12);
    int64_t last[2] = {5, 5};
    assert_per_post_order(s, n, ids, last, 2, false);
}

/* Runs: a hot post's likes go out as runs of many versions per round. The
 * broker goes down in the middle of the load and comes back: an independent
 * consumer must then read every post's versions 0..n, in order per post,
 * none lost; a re-send (at least once) may repeat versions, but only from
 * the first one not yet read, never skipping ahead (a run's later versions
 * are marked only with the whole prefix before them). */
static void test_runs_keep_per_post_order_across_a_broker_outage(void **state)
{
    env *e = *state;
    enum { POSTS = 4, HOT_LIKES = 150, LIKES = 20 };
    char ids[POSTS][40];
    for (int p = 0; p < POSTS; p++)
        new_post(e, ids[p]);
    int64_t last[POSTS] = {0};
    int step = 0, total_steps = HOT_LIKES + (POSTS - 1) * LIKES;
    bool down = false, back = false;
    for (int i = 0; i < HOT_LIKES; i++) {
        for (int p = 0; p < POSTS; p++) {
            if (p > 0 && (i % (HOT_LIKES / LIKES) != 0 || last[p] >= LIKES))
                continue;
            like(e, ids[p]);
            last[p]++;
            step++;
            if (!down && step >= total_steps / 3) { /* mid-load, rounds in flight */
                assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_DOWN));
                down = true;
            } else if (down && !back && step >= 2 * total_steps / 3) {
                assert_true(wait_kafka(e, "down", 15000));
                assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_UP));
                back = true;
            }
        }
    }
    assert_true(back);
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 60000));
    size_t want = topic_messages(e->bootstrap);
    size_t events = POSTS;
    for (int p = 0; p < POSTS; p++)
        events += (size_t)last[p];
    assert_true(want >= events);
    seen *s = calloc(want, sizeof *s);
    assert_non_null(s);
    size_t n = consume(e->bootstrap, want, 60000, s);
    assert_int_equal(n, want);
    assert_per_post_order(s, n, ids, last, POSTS, true);
    free(s);
}

static void test_acknowledged_events_survive_kill_9_before_publishing(void **state)
{
    env *e = *state;
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_DOWN)); /* hold publishing back */
    sleep_ms(300);
    char ids[3][40];
    for (int p = 0; p < 3; p++) {
        new_post(e, ids[p]);
        like(e, ids[p]);
    }
    assert_int_equal(test_proc_stop(&e->api, SIGKILL, 2000), 128 + SIGKILL);
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_UP));
    start_api(e);
    seen s[64];
    size_t n = consume(e->bootstrap, 6, 30000, s);
    assert_true(n >= 6);
    int64_t last[3] = {1, 1, 1};
    assert_per_post_order(s, n, ids, last, 3, true);
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 20000));
}

static void test_a_fresh_broker_gets_the_whole_store_republished(void **state)
{
    env *e = *state;
    char ids[2][40];
    for (int p = 0; p < 2; p++) {
        new_post(e, ids[p]);
        like(e, ids[p]);
        like(e, ids[p]);
    }
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 15000));
    /* stop the whole local stack hard, and start it again: the new broker is
     * empty and has a new cluster id */
    test_proc_stop(&e->api, SIGKILL, 2000);
    test_proc_stop(&e->broker, SIGKILL, 2000);
    start_broker(e);
    start_api(e);
    seen s[64];
    size_t n = consume(e->bootstrap, 6, 30000, s);
    assert_int_equal(n, 6);
    int64_t last[2] = {2, 2};
    assert_per_post_order(s, n, ids, last, 2, true);
    assert_true(metric(e, "smpost_events_republished_total") >= 6);
}

/* A delivery the broker refuses (smpost-devbroker's SIGHUP: the next
 * Produce requests fail with a permanent error; a real broker: acks=all
 * writes to a topic short of in-sync replicas, retried by librdkafka until
 * message.timeout.ms) is a failure, not a
 * publication: the event stays in the outbox and reaches Kafka in a later
 * round. Counting the failed report as published would lose it. */
static void test_a_refused_delivery_leaves_the_event_unpublished_until_kafka_takes_it(
    void **state)
{
    env *e = *state;
    char ids[1][40];
    new_post(e, ids[0]);
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 10000));
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_REFUSE));
    sleep_ms(300);
    like(e, ids[0]);
    if (!wait_metric_at_least(e, "smpost_events_publish_failures_total", 1,
                              test_broker_refusal_ms()))
        fail_msg("no delivery failed: the broker did not refuse the like");
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_UP));
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 20000));
    seen s[16];
    size_t n = consume(e->bootstrap, 2, 20000, s);
    if (n < 2)
        fail_msg("the refused event never reached Kafka (%zu of 2 messages)", n);
    int64_t last[1] = {1};
    assert_per_post_order(s, n, ids, last, 1, false);
}

/* Kafka stops answering while a round waits for its delivery reports: no
 * connection breaks, so librdkafka reports no error, and the reports only
 * come when message.timeout.ms (30 s) expires. /health must say "down"
 * within seconds anyway. (The same blind spot made fault_broker_down_up
 * fail now and then: librdkafka reports "all brokers down" once, and a
 * confirmation served after it set the state back to up.) */
static void test_kafka_that_stops_answering_is_noticed_while_a_round_waits(void **state)
{
    env *e = *state;
    char ids[1][40];
    new_post(e, ids[0]);
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 10000));
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_FREEZE));
    sleep_ms(300);
    like(e, ids[0]); /* a round now waits for its report */
    if (!wait_kafka(e, "down", 6000))
        fail_msg("/health still says Kafka is up 6 s after it stopped answering");
    assert_true(test_broker_fault_inject(&e->broker, TEST_BROKER_UP));
    assert_true(wait_kafka(e, "up", 40000));
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 40000));
}

/* Only the relay lease holder may reset the outbox. A standby on another
 * broker address (a misconfigured instance, a broker being migrated) sees a
 * cluster id other than the one the store recorded; at shutdown it must not
 * act on it, or the publisher would republish the whole store. */
static void test_a_standby_stopping_never_resets_the_store(void **state)
{
    env *e = *state; /* the publisher, on broker X */
    char ids[1][40];
    new_post(e, ids[0]);
    like(e, ids[0]);
    assert_true(wait_metric(e, "smpost_outbox_pending", 0, 10000));

    env b = {0}; /* a second command-api on the same store, on broker Y */
    assert_true(test_temp_dir("smpost-relay-b", b.dir, sizeof b.dir));
    snprintf(b.store_url, sizeof b.store_url, "%s", e->store_url);
    start_broker(&b);
    start_api(&b);
    assert_true(wait_metric(&b, "smpost_relay_publisher", 0, 5000));
    sleep_ms(1500); /* long enough for its cluster checks to have run */
    assert_int_equal(test_proc_stop(&b.api, SIGTERM, 10000), 0);
    test_proc_stop(&b.broker, SIGTERM, 5000);
    if (getenv("SMPOST_TEST_KEEP") == NULL)
        test_rm_rf(b.dir);

    /* had the standby reset the store, the publisher would republish: the
     * outbox would fill again and X would hold the events twice */
    sleep_ms(2000);
    assert_int_equal(metric(e, "smpost_outbox_pending"), 0);
    seen s[16];
    size_t n = consume(e->bootstrap, 4, 5000, s);
    if (n != 2)
        fail_msg("broker X holds %zu messages for 2 events: the standby's shutdown reset the "
                 "store", n);
}

int main(void)
{
    int rc = test_broker_check("relay");
    if (rc)
        return rc;
    api_bin = getenv("SMPOST_COMMAND_API_BIN");
    broker_bin = getenv("SMPOST_DEVBROKER_BIN");
    if (!api_bin || !broker_bin) {
        fprintf(stderr, "SMPOST_COMMAND_API_BIN / SMPOST_DEVBROKER_BIN not set (run via ctest)\n");
        return 1;
    }
    const char *which = getenv("SMPOST_TEST_ES_URL");
    if (which && strcmp(which, "mongodb") == 0) {
        const char *m = getenv("SMPOST_TEST_MONGO_URL");
        if (!m || !*m) {
            printf("SKIPPED: SMPOST_TEST_MONGO_URL not set (run through with_jongodb.sh)\n");
            return 77;
        }
        /* strip the database path: each case appends its own */
        snprintf(mongo_base, sizeof mongo_base, "%s", m);
        char *slash = strchr(mongo_base + strlen("mongodb://"), '/');
        if (slash)
            *slash = '\0';
    }
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_interleaved_posts_arrive_in_version_order_per_post),
        T(test_commands_succeed_while_kafka_is_down_and_publish_after),
        T(test_runs_keep_per_post_order_across_a_broker_outage),
        T(test_acknowledged_events_survive_kill_9_before_publishing),
        T(test_a_fresh_broker_gets_the_whole_store_republished),
        T(test_a_refused_delivery_leaves_the_event_unpublished_until_kafka_takes_it),
        T(test_a_standby_stopping_never_resets_the_store),
        T(test_kafka_that_stops_answering_is_noticed_while_a_round_waits),
    };
    return cmocka_run_group_tests_name(test_broker_is_real() ? "relay_realkafka"
                                       : mongo_base[0]      ? "relay_mongodb"
                                                            : "relay_sqlite",
                                       tests,
                                       NULL, NULL);
}
