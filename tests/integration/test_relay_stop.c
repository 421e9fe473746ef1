/* SPDX-License-Identifier: Apache-2.0 */
/* test_relay_stop.c — a stopping relay keeps its flush deadline whatever
 * the broker does (relay.h, relay_stop). In process: a private mock cluster
 * (support/mock_kafka.c) told to answer slowly, an in-memory store.
 *
 * Found in CI: command-api, started on a broker that was seconds old and
 * then killed, did not exit within 22 s of SIGTERM. The relay thread sat in
 * its cluster check: librdkafka's rd_kafka_query_watermark_offsets() waits
 * for the broker's answer however long that takes, past the timeout it is
 * given. A broker that answers a ListOffsets request late is the same
 * wait, on demand. The store is SQLite: the check reads its outbox first. */
#include "bus.h"
#include "mock_kafka.h"
#include "proc.h"
#include "relay.h"
#include "sm_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>

#define TOPIC "SocialMediaPostEvents"
#define LIST_OFFSETS 2 /* ApiKey of ListOffsets in the Kafka protocol */
#define SLOW_MS 15000

/* The mock cluster only: a real broker cannot be told to answer late. */
static bool slow_list_offsets(mock_kafka *m, int n)
{
    if (mock_kafka_slow_requests(m, LIST_OFFSETS, n, SLOW_MS))
        return true;
    printf("# skipped on a real broker: answering requests late needs the mock cluster\n");
    return false;
}

static void test_topic_end_gives_up_at_its_timeout_when_the_broker_answers_late(void **state)
{
    (void)state;
    mock_kafka *m = mock_kafka_start(TOPIC, 3);
    bus_config cfg = {mock_kafka_bootstrap(m), TOPIC, "test-relay-stop", NULL};
    sm_error err = {0};
    bus_producer *p = bus_producer_new(&cfg, NULL, NULL, &err);
    assert_non_null(p);
    int64_t end = -1;
    assert_true(bus_producer_topic_end(p, &end, 10000));
    assert_int_equal(end, 0);
    /* the sum over partitions of the next offset, whichever they went to */
    static const char *const keys[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        mock_kafka_produce(m, TOPIC, keys[i], "x");
    assert_true(bus_producer_topic_end(p, &end, 10000));
    assert_int_equal(end, 5);
    if (slow_list_offsets(m, 6)) {
        int64_t t0 = sm_mono_ms();
        bool ok = bus_producer_topic_end(p, &end, 1000);
        int64_t took = sm_mono_ms() - t0;
        printf("# topic_end with a late broker: ok=%d after %lld ms (timeout 1000)\n", ok,
               (long long)took);
        assert_false(ok);
        assert_in_range(took, 0, 3000);
    }
    bus_producer_free(p, 0);
    mock_kafka_stop(m);
}

static void test_relay_stops_within_its_deadline_during_a_slow_cluster_check(void **state)
{
    (void)state;
    mock_kafka *m = mock_kafka_start(TOPIC, 3);
    if (!slow_list_offsets(m, 6)) {
        mock_kafka_stop(m);
        return;
    }
    char dir[256], url[320];
    assert_true(test_temp_dir("smpost-relay-stop", dir, sizeof dir));
    snprintf(url, sizeof url, "sqlite:%s/events.db", dir);
    es_store *store = NULL;
    sm_error err = {0};
    assert_int_equal(es_open(url, &store, &err), ES_OK);
    relay_opts o = {.store = store, .bus = {mock_kafka_bootstrap(m), TOPIC, NULL, NULL}};
    relay *r = relay_start(&o, &err); /* its first act: identify the cluster */
    assert_non_null(r);
    sm_sleep_ms(1500); /* well inside the slow ListOffsets answer */
    int64_t t0 = sm_mono_ms();
    relay_stop(r, 1000);
    int64_t took = sm_mono_ms() - t0;
    printf("# relay_stop(1000 ms) during a late ListOffsets answer took %lld ms\n",
           (long long)took);
    /* the check's own 2 s bound, then the stop; never the broker's 15 s */
    assert_in_range(took, 0, 5000);
    es_close(store);
    test_rm_rf(dir);
    mock_kafka_stop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_end_gives_up_at_its_timeout_when_the_broker_answers_late),
        cmocka_unit_test(test_relay_stops_within_its_deadline_during_a_slow_cluster_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
