/* SPDX-License-Identifier: Apache-2.0 */
/* broker.h — the Kafka broker a test runs against: smpost-devbroker
 * (librdkafka's mock cluster in a process of its own) or, in the CTest
 * instances whose names contain "realkafka", a real Apache Kafka broker
 * started for the test through the launcher named by SMPOST_TEST_KAFKA
 * (scripts/kafka.sh; .ci/run sets it).
 *
 * The same test code drives both: test_start_devbroker (proc.h) starts
 * whichever is selected, test_proc_stop stops either, and the faults
 * below are each broker's nearest equivalent of one production failure. */
#ifndef TEST_BROKER_H
#define TEST_BROKER_H

#include "proc.h"

#include <stdbool.h>

/* SMPOST_TEST_BROKER=realkafka (set by CTest for the realkafka tests). */
bool test_broker_is_real(void);

/* Call first in main(): 0 to run; 77 (skip, with the reason printed) when
 * a real broker is asked for but SMPOST_TEST_KAFKA is not set, or 1 (fail)
 * in CI (CI=true), where every realkafka test must run. */
int test_broker_check(const char *test_name);

typedef enum test_broker_fault {
    /* No broker answers: connections are refused (devbroker: SIGUSR1; real:
     * the broker stopped, data kept). */
    TEST_BROKER_DOWN,
    /* Back after DOWN, FREEZE or REFUSE (devbroker: SIGUSR2; real: the same
     * broker restarted on its ports and data, resumed, or the topic's
     * settings restored). */
    TEST_BROKER_UP,
    /* Connections stay open but nothing is answered (devbroker: SIGWINCH,
     * every answer 10 s late; real: the broker process stopped by SIGSTOP). */
    TEST_BROKER_FREEZE,
    /* Produce requests are refused for good (devbroker: SIGHUP, the next
     * three; real: max.message.bytes=1 on the event topic, so every write
     * fails with MSG_SIZE_TOO_LARGE, until TEST_BROKER_UP). Kafka 4.1 does
     * not refuse acks=all writes for min.insync.replicas above a topic's
     * replication factor, which would have been the retriable kind. */
    TEST_BROKER_REFUSE,
} test_broker_fault;

/* Injects f into the broker started by test_start_devbroker. */
bool test_broker_fault_inject(test_proc *broker, test_broker_fault f);

/* test_start_devbroker's real branch. */
bool test_start_real_kafka(test_proc *p, const char *dir, int partitions, char *bootstrap,
                           size_t cap);

/* test_start_real_kafka with `kafka.sh start DIR --secure`: SASL_SSL only,
 * a generated CA, the users admin, smpost-command and smpost-query, and the
 * services' ACLs (scripts/kafka.sh's header). */
bool test_start_secure_kafka(test_proc *p, const char *dir, int partitions, char *bootstrap,
                             size_t cap);

/* The librdkafka settings of a secure broker's user ("smpost-command",
 * "smpost-query", "admin"): the lines of DIR/<user>.conf joined with
 * commas, as --kafka-config takes them. False if the file is missing. */
bool test_kafka_client_config(const test_proc *broker, const char *user, char *out, size_t cap);

/* The secure broker's mutual-TLS listener ("127.0.0.1:PORT"); its users'
 * settings are test_kafka_client_config's "smpost-command-mtls" and
 * "smpost-query-mtls". */
bool test_kafka_mtls_bootstrap(const test_proc *broker, char *out, size_t cap);

/* Alters a topic of a real broker (kafka.sh config): "key=value[,...]". */
bool test_broker_topic_config(test_proc *broker, const char *topic, const char *setting);

/* Creates (with partitions) or deletes a topic of a real broker. */
bool test_broker_topic(test_proc *broker, bool create, const char *topic, int partitions);

/* Kafka's default max.message.bytes, restored after a refusal. */
#define TEST_KAFKA_MAX_MESSAGE_BYTES "1048588"

/* How long a refused produce may take to be reported as failed. */
int test_broker_refusal_ms(void);

#endif
