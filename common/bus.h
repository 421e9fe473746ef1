/* SPDX-License-Identifier: Apache-2.0 */
/* bus.h — the event bus on Kafka (librdkafka): a producer that publishes
 * event envelopes, and a consumer that reads them back.
 *
 * Messages: key = post id (so one post's events stay in one partition, in
 * order), value = the JSON envelope (sm_event.h), headers "type",
 * "eventId" and, when the event has one, "traceparent" (W3C, from its
 * metadata; the consumer hands it back in bus_message). The producer is
 * idempotent with acks=all: a message the broker confirmed is stored once,
 * and per-partition order survives retries.
 *
 * Threading: a bus_producer may be used from one thread at a time for
 * produce/poll (the outbox relay owns it); bus_producer_state() may be read
 * from any thread. Delivery reports are delivered from bus_producer_poll(),
 * on the polling thread. */
#ifndef BUS_H
#define BUS_H

#include "sm_error.h"
#include "sm_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bus_config {
    const char *bootstrap;   /* "host:port[,host:port]" */
    const char *topic;
    const char *client_id;   /* shown in broker logs */
    /* Extra librdkafka properties "key=value", NULL-terminated; may be NULL.
     * Applied last, so tests and operators can tune anything. */
    const char *const *extra;
} bus_config;

typedef enum { BUS_UNKNOWN = 0, BUS_UP, BUS_DOWN } bus_state;

/* Called once per produced message from bus_producer_poll(). opaque is what
 * was given to bus_produce(); ok is true only when the broker acknowledged
 * the message (acks=all). error is a static or short-lived string. */
typedef void (*bus_delivery_fn)(void *arg, void *opaque, bool ok, const char *error);

typedef struct bus_producer bus_producer;

/* The producer's default message.timeout.ms: a message not confirmed by
 * then is reported failed. cfg->extra may change it per producer; ask
 * bus_producer_delivery_timeout_ms() for the value in force. */
#define BUS_MESSAGE_TIMEOUT_MS 30000

/* Creates a producer; it connects in the background, so a broker that is
 * down now is not an error. NULL + err on bad configuration. */
bus_producer *bus_producer_new(const bus_config *cfg, bus_delivery_fn on_delivery, void *arg,
                               sm_error *err);

/* Queues ev for publication (copied). SM_ERR_UNAVAILABLE if the local queue
 * is full or the producer has failed fatally (recreate it). */
sm_status bus_produce(bus_producer *p, const sm_event *ev, void *opaque, sm_error *err);

/* The message.timeout.ms in force: every produced message is reported
 * (confirmed or failed) within about this long. */
int bus_producer_delivery_timeout_ms(const bus_producer *p);

/* Serves delivery reports for up to timeout_ms. Returns how many. */
int bus_producer_poll(bus_producer *p, int timeout_ms);

/* Messages queued or in flight (not yet reported). */
int bus_producer_outstanding(bus_producer *p);

/* The Kafka cluster id, asking the broker for metadata if needed. Returns
 * false if no broker answered within timeout_ms. Refreshes the state. */
bool bus_producer_cluster_id(bus_producer *p, char *out, size_t cap, int timeout_ms);

/* Sum over the topic's partitions of the high watermark (the offset the
 * next message will get): how many messages the topic has ever held. It
 * never goes back on a given topic, so the relay compares it with what it
 * has published to tell a fresh broker from the one it knew (librdkafka's
 * mock cluster derives its cluster id from a memory address, so two local
 * brokers can share an id). False if the broker did not answer in time. */
bool bus_producer_topic_end(bus_producer *p, int64_t *sum, int timeout_ms);

/* Last known connectivity (updated by delivery reports, metadata requests
 * and librdkafka's error callback). Thread-safe. */
bus_state bus_producer_state(bus_producer *p);

/* True while the broker refuses the producer's login or TLS handshake (set
 * by librdkafka's error callback, cleared when a broker answers): why gets
 * a message for /health that names the settings to check, never a secret.
 * Each refusal is also logged once as event=kafka_auth_failed. */
bool bus_producer_auth_failed(bus_producer *p, char *why, size_t cap);

/* For a librdkafka error code that is a refused login or TLS handshake:
 * true, and why gets the message above. */
bool bus_auth_error(int code, char *why, size_t cap);

/* True after a fatal (unrecoverable) producer error: recreate it. */
bool bus_producer_failed(bus_producer *p, char *why, size_t cap);

/* Queues raw bytes (copied) with the given headers (NULL-terminated
 * name/value pairs, may be NULL): used for the dead-letter topic, whose
 * messages are whatever could not be decoded. */
sm_status bus_produce_raw(bus_producer *p, const void *key, size_t key_len, const void *value,
                          size_t value_len, const char *const *headers, void *opaque,
                          sm_error *err);

/* Waits up to timeout_ms for outstanding messages, then destroys p. Messages
 * still outstanding are reported as failed. */
void bus_producer_free(bus_producer *p, int timeout_ms);

/* Longest "traceparent" header value kept (a W3C traceparent, version 00,
 * is 55 characters; later versions may append fields). */
#define BUS_TRACEPARENT_MAX 127

/* A received message. Pointers stay valid until the next poll or close.
 * traceparent is the message's "traceparent" header (W3C trace context, as
 * the producer copied it from the command's request), "" if it has none or
 * one that is empty, longer than BUS_TRACEPARENT_MAX or not printable
 * ASCII: a header is outside input, so it is bounded here, and a bad one is
 * as good as none. Only that it is safe to log is checked, not its syntax
 * (sm_traceparent_valid does that). */
typedef struct bus_message {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int32_t partition;
    int64_t offset;
    char traceparent[BUS_TRACEPARENT_MAX + 1];
    void *handle; /* internal */
} bus_message;

typedef struct bus_consumer bus_consumer;

/* How long a revoke waits for the broker to confirm the offsets of the
 * partitions given up (see bus_consumer_new). */
#define BUS_REVOKE_COMMIT_MS 3000

/* Creates a group consumer subscribed to cfg->topic, reading from the
 * earliest offset when the group has none, committing only the offsets
 * of messages passed to bus_consumer_commit.
 *
 * Instances in one group share the topic's partitions. When a rebalance
 * takes partitions away (inside bus_consumer_poll, so never while the
 * caller holds a message from it), the consumer first commits the offset
 * after the last message committed with bus_consumer_commit on each of
 * them and waits up to BUS_REVOKE_COMMIT_MS for the broker's answer, then
 * gives them up: no message of a revoked partition is returned afterwards,
 * and the next owner resumes right after what this one applied. Logged as
 * partitions_assigned / partitions_revoked. */
bus_consumer *bus_consumer_new(const bus_config *cfg, const char *group_id, sm_error *err);

/* Waits up to timeout_ms for one message. Returns 1 with *msg filled, 0 on
 * timeout, -1 on a consumer error (err filled; keep polling). The same as
 * bus_consumer_poll_batch with max 1. */
int bus_consumer_poll(bus_consumer *c, int timeout_ms, bus_message *msg, sm_error *err);

/* The most messages one bus_consumer_poll_batch returns. */
#define BUS_BATCH_MAX 1000

/* Waits up to timeout_ms for a first message, then adds those already
 * fetched (no further wait) until there are max (capped at BUS_BATCH_MAX)
 * or max_ms has passed. Returns how many, with msgs[0..n) filled in the
 * order they came (each partition's in offset order); 0 on timeout; -1 on
 * a consumer error before any message (err filled; keep polling). Every
 * message stays valid until the next poll or close. A revoke served while
 * gathering drops the batch's messages of the revoked partitions (see
 * bus_consumer_new): none is ever returned after its partition left. */
int bus_consumer_poll_batch(bus_consumer *c, int timeout_ms, int max, int max_ms,
                            bus_message *msgs, sm_error *err);

/* How often the offsets of bus_consumer_commit are committed under load,
 * at least how far apart when the consumer keeps catching up (a trickle
 * of events), and after how long an unanswered commit stops holding the
 * next one back (and how long a lost connection holds commits back). */
#define BUS_COMMIT_INTERVAL_MS 500
#define BUS_COMMIT_IDLE_MS 100
#define BUS_COMMIT_STUCK_MS 10000

/* Marks msg done: its offset + 1 is committed asynchronously within
 * BUS_COMMIT_INTERVAL_MS (by this call or a later poll; sooner, but no
 * more often than every BUS_COMMIT_IDLE_MS, by a poll that finds nothing
 * fetched), in one request with those of the other partitions, one
 * request at a time: a bounded rate of commits whatever the event rate. A commit lost in a
 * crash only means messages are delivered again (callers are idempotent).
 * The offset is also remembered for the confirmed commits at a revoke and
 * at close. */
sm_status bus_consumer_commit(bus_consumer *c, const bus_message *msg, sm_error *err);

/* Offset commits sent for bus_consumer_commit since the consumer was
 * made (not those of a revoke or close). Any thread. */
uint64_t bus_consumer_commits_sent(bus_consumer *c);

/* Makes the next poll deliver msg again (e.g. the read model was down),
 * and every later message of its partition after it. After a batch, call
 * it for the first message to redo of each partition concerned. */
sm_status bus_consumer_rewind(bus_consumer *c, const bus_message *msg, sm_error *err);

/* Messages not yet consumed on the assigned partitions (high watermark
 * minus position, from cached statistics; no broker round trip). */
int64_t bus_consumer_lag(bus_consumer *c);

/* Partitions currently assigned to this consumer. */
int bus_consumer_assigned(bus_consumer *c);

/* How long bus_consumer_close asks whether a broker answers at all. */
#define BUS_CLOSE_PROBE_MS 500

/* Graceful end, bounded by timeout_ms: commits the last committed offset
 * of every partition still assigned and waits for the broker to confirm it
 * (so a restart resumes right after the last applied message even if an
 * asynchronous commit was lost), leaves the group, and frees c. What does
 * not finish in time is logged and abandoned (a restart then re-reads a
 * few messages). If no broker answers a metadata request within
 * BUS_CLOSE_PROBE_MS, nothing is committed (nobody could confirm it, and
 * librdkafka would hold the close for its answer): the close then takes
 * about that long, not timeout_ms. Logged as consumer_closed. NULL is a
 * no-op. Call from the polling thread, or after it stopped. */
void bus_consumer_close(bus_consumer *c, int timeout_ms);

#endif
