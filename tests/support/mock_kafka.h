/* SPDX-License-Identifier: Apache-2.0 */
/* mock_kafka.h — a private Kafka cluster inside the test process
 * (librdkafka's mock cluster, as smpost-devbroker runs it), for tests that
 * must make the broker misbehave in ways a separate process cannot be told
 * to: refuse produce requests. It speaks the real protocol on a loopback
 * port, so the code under test connects to it as to any broker.
 *
 * The mock API is experimental in librdkafka (no ABI promise): this file
 * and tools/devbroker.c are the only users. Failures end the running
 * cmocka test. Not thread-safe: one test thread drives it. */
#ifndef MOCK_KAFKA_H
#define MOCK_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mock_kafka mock_kafka;

/* One broker with topic (partitions) and "<topic>.DLQ" (1 partition). */
mock_kafka *mock_kafka_start(const char *topic, int partitions);

/* "127.0.0.1:<port>", for bootstrap.servers. Valid until stop. */
const char *mock_kafka_bootstrap(const mock_kafka *m);

/* Produces one message (key may be NULL) and waits for the broker's ack. */
void mock_kafka_produce(mock_kafka *m, const char *topic, const char *key, const char *value);

/* The same with headers: NULL-terminated name/value pairs. */
void mock_kafka_produce_headers(mock_kafka *m, const char *topic, const char *key,
                                const char *value, const char *const *headers);

/* The next n Produce requests to the cluster, whatever the topic or
 * client, are answered with err; n = 0 forgets those not yet used.
 * In a realkafka test (broker.h) the cluster is a real broker, which is
 * made to refuse writes to the dead-letter topic by its own means: for
 * NOT_ENOUGH_REPLICAS (retriable: no answer) the topic is deleted, and the
 * producer waits for it; for any other err, max.message.bytes=1 refuses
 * them for good (MSG_SIZE_TOO_LARGE). n = 0 restores the topic. */
void mock_kafka_fail_produce(mock_kafka *m, int n, rd_kafka_resp_err_t err);

/* The next n requests of Kafka API api_key (2: ListOffsets, 3: Metadata)
 * to broker 1 are answered after rtt_ms: a broker that stops answering
 * mid-request. Mock cluster only: returns false in a realkafka test, whose
 * broker cannot be told to (callers print why they skip). */
bool mock_kafka_slow_requests(mock_kafka *m, int16_t api_key, int n, int rtt_ms);

/* Messages the topic holds (sum over partitions of high - low watermark). */
int64_t mock_kafka_count(mock_kafka *m, const char *topic);

/* Reads partition 0 of topic from the start: how many messages have this
 * value, and the value of header `header` of the last of them (copied to
 * hval, "" if none). */
int mock_kafka_find(mock_kafka *m, const char *topic, const char *value, const char *header,
                    char *hval, size_t cap);

/* The offset group has committed for topic/partition, or -1 if none. */
int64_t mock_kafka_committed(mock_kafka *m, const char *group, const char *topic, int partition);

void mock_kafka_stop(mock_kafka *m);

#endif
