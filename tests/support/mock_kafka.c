/* SPDX-License-Identifier: Apache-2.0 */
/* mock_kafka.c — see mock_kafka.h. */
#include "mock_kafka.h"

#include "broker.h"
#include "proc.h"

#include <librdkafka/rdkafka_mock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOCK_PRODUCE_API_KEY 0 /* ProduceRequest in the Kafka protocol */

struct mock_kafka {
    rd_kafka_t *rk; /* a producer that owns the cluster and produces to it */
    rd_kafka_mock_cluster_t *mc;
    char bootstrap[128];
    /* a realkafka test: the real broker in its place (broker.h) */
    test_proc real;
    char dir[256], dlq[300];
    bool dlq_gone, dlq_refusing;
};

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        fail_msg("kafka config %s: %s", k, errstr);
}

/* A realkafka test: a real broker with the same topics, and a plain
 * producer to it. */
static mock_kafka *start_real(mock_kafka *m, const char *topic, int partitions)
{
    char errstr[256];
    assert_true(test_temp_dir("smpost-realkafka", m->dir, sizeof m->dir));
    setenv("KAFKA_TOPIC", topic, 1);
    if (!test_start_real_kafka(&m->real, m->dir, partitions, m->bootstrap, sizeof m->bootstrap))
        fail_msg("the real Kafka broker did not start (see %s)", m->dir);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", m->bootstrap);
    conf_set(conf, "log_level", "3");
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!m->rk)
        fail_msg("producer: %s", errstr);
    return m;
}

mock_kafka *mock_kafka_start(const char *topic, int partitions)
{
    mock_kafka *m = calloc(1, sizeof *m);
    assert_non_null(m);
    snprintf(m->dlq, sizeof m->dlq, "%s.DLQ", topic);
    if (test_broker_is_real())
        return start_real(m, topic, partitions);
    char errstr[256], dlq[300];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* a client with its own mock cluster, bootstrapped to it */
    conf_set(conf, "test.mock.num.brokers", "1");
    conf_set(conf, "log_level", "3");
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!m->rk)
        fail_msg("mock cluster: %s", errstr);
    m->mc = rd_kafka_handle_mock_cluster(m->rk);
    assert_non_null(m->mc);
    snprintf(dlq, sizeof dlq, "%s.DLQ", topic);
    assert_int_equal(rd_kafka_mock_topic_create(m->mc, topic, partitions, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(m->mc, dlq, 1, 1), 0);
    snprintf(m->bootstrap, sizeof m->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
    return m;
}

const char *mock_kafka_bootstrap(const mock_kafka *m) { return m->bootstrap; }

void mock_kafka_produce(mock_kafka *m, const char *topic, const char *key, const char *value)
{
    mock_kafka_produce_headers(m, topic, key, value, NULL);
}

void mock_kafka_produce_headers(mock_kafka *m, const char *topic, const char *key,
                                const char *value, const char *const *headers)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (const char *const *kv = headers; kv && kv[0] && kv[1]; kv += 2)
        rd_kafka_header_add(h, kv[0], -1, kv[1], -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        m->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h); /* owned by the message only on success */
        fail_msg("produce to %s: %s", topic, rd_kafka_err2str(e));
    }
    if (rd_kafka_flush(m->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("produce to %s: not confirmed within 10 s", topic);
}

/* A real broker refuses the dead-letter topic's writes with its own
 * means: retriable (no answer) by deleting the topic, which the producer
 * then waits for; for good by max.message.bytes=1 (MSG_SIZE_TOO_LARGE).
 * n = 0 undoes whichever is in force. */
static void fail_real(mock_kafka *m, int n, rd_kafka_resp_err_t err)
{
    bool ok = true;
    if (n > 0 && err == RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS) {
        ok = test_broker_topic(&m->real, false, m->dlq, 1);
        m->dlq_gone = true;
    } else if (n > 0) {
        ok = test_broker_topic_config(&m->real, m->dlq, "max.message.bytes=1");
        m->dlq_refusing = true;
    } else {
        if (m->dlq_gone)
            ok = test_broker_topic(&m->real, true, m->dlq, 1);
        if (ok && m->dlq_refusing)
            ok = test_broker_topic_config(&m->real, m->dlq,
                                          "max.message.bytes=" TEST_KAFKA_MAX_MESSAGE_BYTES);
        m->dlq_gone = m->dlq_refusing = false;
    }
    if (!ok)
        fail_msg("cannot change %s on the real broker (see %s)", m->dlq, m->dir);
}

void mock_kafka_fail_produce(mock_kafka *m, int n, rd_kafka_resp_err_t err)
{
    if (!m->mc) {
        fail_real(m, n, err);
        return;
    }
    rd_kafka_mock_clear_request_errors(m->mc, MOCK_PRODUCE_API_KEY);
    if (n <= 0)
        return;
    rd_kafka_resp_err_t *errs = malloc((size_t)n * sizeof *errs);
    assert_non_null(errs);
    for (int i = 0; i < n; i++)
        errs[i] = err;
    rd_kafka_mock_push_request_errors_array(m->mc, MOCK_PRODUCE_API_KEY, (size_t)n, errs);
    free(errs);
}

bool mock_kafka_slow_requests(mock_kafka *m, int16_t api_key, int n, int rtt_ms)
{
    if (!m->mc)
        return false;
    for (int i = 0; i < n; i++)
        assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                             m->mc, 1, api_key, 1, RD_KAFKA_RESP_ERR_NO_ERROR, rtt_ms),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    return true;
}

int64_t mock_kafka_count(mock_kafka *m, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(m->rk, topic, NULL);
    assert_int_equal(rd_kafka_metadata(m->rk, 0, t, &md, 10000), 0);
    int64_t n = 0;
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int64_t lo = 0, hi = 0;
        assert_int_equal(rd_kafka_query_watermark_offsets(m->rk, topic, i, &lo, &hi, 10000), 0);
        n += hi - lo;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return n;
}

/* A consumer of this cluster; group may be NULL (assign only). */
static rd_kafka_t *new_consumer(mock_kafka *m, const char *group)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", m->bootstrap);
    conf_set(conf, "group.id", group ? group : "smpost-test-reader");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "log_level", "3");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        fail_msg("consumer: %s", errstr);
    return rk;
}

int mock_kafka_find(mock_kafka *m, const char *topic, const char *value, const char *header,
                    char *hval, size_t cap)
{
    int64_t lo = 0, hi = 0;
    assert_int_equal(rd_kafka_query_watermark_offsets(m->rk, topic, 0, &lo, &hi, 10000), 0);
    hval[0] = '\0';
    if (hi <= lo)
        return 0;
    rd_kafka_t *rk = new_consumer(m, NULL);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    int found = 0;
    for (int64_t next = lo, tries = 0; next < hi && tries < 200; tries++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err) {
            next = msg->offset + 1;
            rd_kafka_headers_t *h = NULL;
            const void *hv = NULL;
            size_t hl = 0;
            if (msg->len == strlen(value) && memcmp(msg->payload, value, msg->len) == 0) {
                found++;
                if (rd_kafka_message_headers(msg, &h) == 0 &&
                    rd_kafka_header_get_last(h, header, &hv, &hl) == 0)
                    snprintf(hval, cap, "%.*s", (int)hl, (const char *)hv);
            }
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return found;
}

int64_t mock_kafka_committed(mock_kafka *m, const char *group, const char *topic, int partition)
{
    rd_kafka_t *rk = new_consumer(m, group);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition);
    assert_int_equal(rd_kafka_committed(rk, parts, 10000), 0);
    int64_t off = parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return off >= 0 ? off : -1;
}

void mock_kafka_stop(mock_kafka *m)
{
    if (!m)
        return;
    rd_kafka_destroy(m->rk); /* and its cluster */
    if (m->real.pid > 0)
        test_proc_stop(&m->real, SIGTERM, 20000);
    if (m->dir[0] && !getenv("SMPOST_TEST_KEEP"))
        test_rm_rf(m->dir);
    free(m);
}
