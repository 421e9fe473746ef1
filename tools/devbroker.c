/* SPDX-License-Identifier: Apache-2.0 */
/* devbroker.c — smpost-devbroker: a local Kafka for the embedded default.
 *
 * Starts librdkafka's mock cluster (a real Kafka wire-protocol broker that
 * keeps everything in memory), creates the event topic and its dead-letter
 * topic "<topic>.DLQ" (1 partition), prints
 *   SMPOST_KAFKA_BOOTSTRAP=127.0.0.1:<port>
 * on stdout, and runs until SIGINT/SIGTERM. Other processes (command-api,
 * query-api, kcat, tests) connect to that address.
 *
 * For fault tests: SIGUSR1 takes every broker down (connections refused,
 * as if Kafka were stopped), SIGUSR2 brings them back on the same address,
 * SIGHUP makes the next DEVBROKER_REJECTS Produce requests fail with a
 * permanent error (MSG_SIZE_TOO_LARGE: the producer does not retry it, so
 * each of those messages gets a failed delivery report), and SIGWINCH
 * makes every broker answer DEVBROKER_SLOW_MS late (a round trip time),
 * so that a test can catch a request in flight; SIGUSR2 ends that too.
 *
 * It is not a production broker: a restart loses every message (the relay
 * then republishes from the event store), and each partition keeps only
 * about 5 MiB (older messages vanish; the event store is the record). The
 * mock API is experimental in librdkafka, so it is used only in this file. */
#include "sm_config.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DEVBROKER_REJECTS 3
#define DEVBROKER_SLOW_MS 10000
#define PRODUCE_API_KEY 0 /* Kafka protocol ApiKey of Produce */

static char *topic;
static long partitions, brokers;
static sm_log_level log_level;

static const sm_option options[] = {
    {"topic", "KAFKA_TOPIC", SM_OPT_STRING, "SocialMediaPostEvents", 0, 0,
     "topic to create", &topic},
    {"partitions", "SMPOST_DEVBROKER_PARTITIONS", SM_OPT_INT, "6", 1, 256,
     "partitions of the topic (per-post order holds within a partition)", &partitions},
    {"brokers", "SMPOST_DEVBROKER_BROKERS", SM_OPT_INT, "1", 1, 9, "number of mock brokers",
     &brokers},
    {"log-level", "SMPOST_LOG_LEVEL", SM_OPT_LOG_LEVEL, "info", 0, 0,
     "debug, info, warn or error", &log_level},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void set_all(rd_kafka_mock_cluster_t *mc, bool up)
{
    for (int id = 1; id <= brokers; id++) {
        if (up) {
            rd_kafka_mock_broker_set_rtt(mc, id, 0);
            rd_kafka_mock_broker_set_up(mc, id);
        } else {
            rd_kafka_mock_broker_set_down(mc, id);
        }
    }
    sm_log(SM_LOG_INFO, up ? "devbroker_up" : "devbroker_down", "brokers=%ld", brokers);
}

static void slow_down(rd_kafka_mock_cluster_t *mc)
{
    for (int id = 1; id <= brokers; id++)
        rd_kafka_mock_broker_set_rtt(mc, id, DEVBROKER_SLOW_MS);
    sm_log(SM_LOG_INFO, "devbroker_slow", "brokers=%ld rtt_ms=%d", brokers, DEVBROKER_SLOW_MS);
}

static void reject_produce(rd_kafka_mock_cluster_t *mc)
{
    rd_kafka_resp_err_t errs[DEVBROKER_REJECTS];
    for (int i = 0; i < DEVBROKER_REJECTS; i++)
        errs[i] = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    rd_kafka_mock_push_request_errors_array(mc, PRODUCE_API_KEY, DEVBROKER_REJECTS, errs);
    sm_log(SM_LOG_INFO, "devbroker_rejecting_produce", "requests=%d error=%s", DEVBROKER_REJECTS,
           rd_kafka_err2name(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
}

int main(int argc, char **argv)
{
    int code = sm_config_start(options, NOPTIONS, argc, argv, "smpost-devbroker",
                               "Local in-memory Kafka (librdkafka mock cluster) for smpost.");
    if (code >= 0)
        return code;
    sm_log_set_level(log_level);

    sigset_t sigs;
    sm_block_stop_signals(&sigs, SIGUSR1, SIGUSR2);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    /* The mock cluster lives inside a client handle; a producer handle that
     * never produces is the lightest one. */
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "smpost-devbroker: %s\n", errstr);
        return 1;
    }
    /* The mock derives its cluster id from the address of its cluster
     * struct, so two runs with the same heap layout (ASLR off, sanitizer
     * builds) would share an id. A random-sized allocation first moves it;
     * the relay also checks topic offsets, so this is only a courtesy. */
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned)getpid();
    void *shift = malloc(16 * (1 + r % 4096));
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
    if (!mc) {
        free(shift);
        fprintf(stderr, "smpost-devbroker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    /* the events, and the query side's dead-letter topic beside them */
    char dlq[512];
    snprintf(dlq, sizeof dlq, "%s.DLQ", topic);
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topic, (int)partitions, 1);
    if (!e)
        e = rd_kafka_mock_topic_create(mc, dlq, 1, 1);
    if (e) {
        fprintf(stderr, "smpost-devbroker: create topic %s: %s\n", topic, rd_kafka_err2str(e));
        free(shift);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 1;
    }
    printf("SMPOST_KAFKA_BOOTSTRAP=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    sm_log(SM_LOG_INFO, "devbroker_ready", "bootstrap=%s topic=%s partitions=%ld brokers=%ld",
           rd_kafka_mock_cluster_bootstraps(mc), topic, partitions, brokers);

    for (;;) {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig == SIGUSR1)
            set_all(mc, false);
        else if (sig == SIGUSR2)
            set_all(mc, true);
        else if (sig == SIGHUP)
            reject_produce(mc);
        else if (sig == SIGWINCH)
            slow_down(mc);
        else
            break;
    }
    sm_log(SM_LOG_INFO, "devbroker_stopping", "topic=%s", topic);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    free(shift);
    sm_config_free(options, NOPTIONS);
    return 0;
}
