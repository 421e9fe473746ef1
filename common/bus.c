/* SPDX-License-Identifier: Apache-2.0 */
/* bus.c — Kafka producer and consumer (see bus.h). */
#include "bus.h"

#include "sm_log.h"
#include "sm_secret.h"
#include "sm_time.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    bus_delivery_fn on_delivery;
    void *arg;
    atomic_int state;
    /* The librdkafka error code of the last refused login or TLS handshake
     * (bus_auth_error), 0 once a broker answered after it. */
    atomic_int auth_err;
    int delivery_timeout_ms; /* message.timeout.ms in force */
};

typedef const char *kv_pair[2];

#define STR_(x) #x
#define STR(x) STR_(x)

static sm_status set(rd_kafka_conf_t *conf, const char *k, const char *v, sm_error *err);

/* Builds a client configuration: common settings, then the role's defaults,
 * then cfg->extra ("key=value"), so operators and tests can override any
 * default. */
static rd_kafka_conf_t *make_conf(const bus_config *cfg, const kv_pair *role, size_t nrole,
                                  sm_error *err)
{
    static const kv_pair common[] = {
        /* A broker that went away should be found again quickly. */
        {"reconnect.backoff.ms", "100"},
        {"reconnect.backoff.max.ms", "2000"},
        {"topic.metadata.refresh.interval.ms", "10000"},
        {"log.connection.close", "false"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    sm_status st = set(conf, "bootstrap.servers", cfg->bootstrap, err);
    if (!st)
        st = set(conf, "client.id", cfg->client_id ? cfg->client_id : "smpost", err);
    for (size_t i = 0; !st && i < sizeof common / sizeof common[0]; i++)
        st = set(conf, common[i][0], common[i][1], err);
    for (size_t i = 0; !st && i < nrole; i++)
        st = set(conf, role[i][0], role[i][1], err);
    int item = 0;
    for (const char *const *kv = cfg->extra; !st && kv && *kv; kv++) {
        char key[128];
        const char *eq = strchr(*kv, '=');
        item++;
        /* the item itself is not shown: a mistyped one may be a secret */
        if (!eq || (size_t)(eq - *kv) >= sizeof key) {
            st = sm_fail(err, SM_ERR_INVALID, "kafka config item %d is not key=value", item);
            break;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - *kv), *kv);
        st = set(conf, key, eq + 1, err);
    }
    if (st) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

static sm_status set(rd_kafka_conf_t *conf, const char *k, const char *v, sm_error *err)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return sm_fail(err, SM_ERR_INVALID, "kafka config %s: %s", k,
                       sm_secret_kafka_key(k, strlen(k)) ? "invalid value" : errstr);
    return SM_OK;
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    bus_producer *p = opaque;
    bool ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok)
        atomic_store(&p->state, BUS_UP);
    if (p->on_delivery)
        p->on_delivery(p->arg, m->_private, ok, ok ? NULL : rd_kafka_err2str(m->err));
}

/* A broker that answers but refuses the client: a SASL login refused
 * (wrong user or password, mechanism not enabled) or a TLS handshake that
 * failed (CA, certificate, host name). Not an outage: a setting to fix. */
static bool is_auth_error(int code)
{
    return code == RD_KAFKA_RESP_ERR__AUTHENTICATION || code == RD_KAFKA_RESP_ERR__SSL ||
           code == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED;
}

#define AUTH_FIX                                                                                  \
    "check security.protocol, sasl.mechanisms, sasl.username, sasl.password and the ssl.* "      \
    "files in SMPOST_KAFKA_CONFIG_FILE or SMPOST_KAFKA_CONFIG"

/* One line that says what failed and which settings to fix. librdkafka's
 * reason names the broker and the broker's answer, never the password. */
static void log_auth_error(const char *client, int code, const char *reason)
{
    char q[400];
    sm_log(SM_LOG_ERROR, "kafka_auth_failed", "client=%s code=%s reason=%s fix=\"%s\"", client,
           rd_kafka_err2name(code), sm_log_quote(reason, q, sizeof q), AUTH_FIX);
}

bool bus_auth_error(int code, char *why, size_t cap)
{
    if (!is_auth_error(code))
        return false;
    snprintf(why, cap, "Kafka refused the client's %s (%s): " AUTH_FIX,
             code == RD_KAFKA_RESP_ERR__SSL ? "TLS handshake" : "login", rd_kafka_err2name(code));
    return true;
}

/* librdkafka reports most errors as transient and retries by itself; we
 * only track "all brokers down" for /health and log the rest. */
static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)rk;
    bus_producer *p = opaque;
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__TRANSPORT)
        atomic_store(&p->state, BUS_DOWN);
    if (is_auth_error(code)) {
        atomic_store(&p->state, BUS_DOWN);
        atomic_store(&p->auth_err, code);
        log_auth_error("producer", code, reason);
        return;
    }
    char q[400];
    sm_log(SM_LOG_WARN, "kafka_error", "code=%s reason=%s", rd_kafka_err2name(code),
           sm_log_quote(reason, q, sizeof q));
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    char q[600];
    sm_log(level <= 3 ? SM_LOG_ERROR : level <= 4 ? SM_LOG_WARN : SM_LOG_DEBUG, "kafka_log",
           "facility=%s msg=%s", fac, sm_log_quote(buf, q, sizeof q));
}

bus_producer *bus_producer_new(const bus_config *cfg, bus_delivery_fn on_delivery, void *arg,
                               sm_error *err)
{
    bus_producer *p = calloc(1, sizeof *p);
    if (!p) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->on_delivery = on_delivery;
    p->arg = arg;
    /* Idempotent + acks=all: no duplicates from retries and order kept per
     * partition. linger 1 ms keeps publish latency low while still batching
     * under load. */
    static const kv_pair role[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "1"},
        {"message.timeout.ms", STR(BUS_MESSAGE_TIMEOUT_MS)},
    };
    rd_kafka_conf_t *conf = make_conf(cfg, role, sizeof role / sizeof role[0], err);
    if (!conf) {
        free(p);
        return NULL;
    }
    char errstr[512], timeout[24];
    size_t timeout_len = sizeof timeout;
    p->delivery_timeout_ms = BUS_MESSAGE_TIMEOUT_MS;
    if (rd_kafka_conf_get(conf, "message.timeout.ms", timeout, &timeout_len) == RD_KAFKA_CONF_OK)
        p->delivery_timeout_ms = atoi(timeout);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        sm_fail(err, SM_ERR_INVALID, "kafka producer: %s", errstr);
        free(p);
        return NULL;
    }
    p->topic = rd_kafka_topic_new(p->rk, cfg->topic, NULL);
    if (!p->topic) {
        sm_fail(err, SM_ERR_INVALID, "kafka topic '%s': %s", cfg->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(p->rk);
        free(p);
        return NULL;
    }
    return p;
}

sm_status bus_produce(bus_producer *p, const sm_event *ev, void *opaque, sm_error *err)
{
    char *value = sm_event_encode(ev);
    if (!value)
        return sm_fail(err, SM_ERR_INTERNAL, "cannot encode event %s", ev->event_id);
    /* headers: type and eventId always, the W3C trace context when the
     * event has one (consumers continue the trace without parsing) */
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    rd_kafka_header_add(h, "type", -1, sm_event_type_name(ev->type), -1);
    rd_kafka_header_add(h, "eventId", -1, ev->event_id, -1);
    if (ev->meta.traceparent[0])
        rd_kafka_header_add(h, "traceparent", -1, ev->meta.traceparent, -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(p->topic), RD_KAFKA_V_KEY(ev->aggregate_id, strlen(ev->aggregate_id)),
        RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h); /* the message owns both only on success */
        free(value); /* F_FREE only takes ownership on success */
        return sm_fail(err, SM_ERR_UNAVAILABLE, "kafka produce: %s", rd_kafka_err2str(e));
    }
    return SM_OK;
}

sm_status bus_produce_raw(bus_producer *p, const void *key, size_t key_len, const void *value,
                          size_t value_len, const char *const *headers, void *opaque,
                          sm_error *err)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (const char *const *kv = headers; kv && kv[0] && kv[1]; kv += 2)
        rd_kafka_header_add(h, kv[0], -1, kv[1], -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(p->topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h); /* owned by the message only on success */
        return sm_fail(err, SM_ERR_UNAVAILABLE, "kafka produce: %s", rd_kafka_err2str(e));
    }
    return SM_OK;
}

int bus_producer_poll(bus_producer *p, int timeout_ms) { return rd_kafka_poll(p->rk, timeout_ms); }

int bus_producer_delivery_timeout_ms(const bus_producer *p) { return p->delivery_timeout_ms; }

int bus_producer_outstanding(bus_producer *p) { return rd_kafka_outq_len(p->rk); }

bool bus_producer_cluster_id(bus_producer *p, char *out, size_t cap, int timeout_ms)
{
    /* A metadata request proves a broker answers now; the cluster id alone
     * may come from a cache. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, p->topic, &md, timeout_ms);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_store(&p->state, BUS_DOWN);
        return false;
    }
    char *id = rd_kafka_clusterid(p->rk, timeout_ms);
    if (!id)
        return false;
    atomic_store(&p->state, BUS_UP);
    atomic_store(&p->auth_err, 0);
    snprintf(out, cap, "%s", id);
    rd_kafka_mem_free(p->rk, id);
    return true;
}

bool bus_producer_topic_end(bus_producer *p, int64_t *sum, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(p->rk, 0, p->topic, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool ok = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt > 0;
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(ok ? md->topics[0].partition_cnt : 1);
    for (int i = 0; ok && i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, md->topics[0].topic,
                                          md->topics[0].partitions[i].id)
            ->offset = RD_KAFKA_OFFSET_END; /* as a timestamp: "latest" */
    rd_kafka_metadata_destroy(md);
    /* Not rd_kafka_query_watermark_offsets: it waits for the broker's
     * answer however long that takes, past its timeout (librdkafka 2.0), and
     * a relay stopping with its broker gone sat there for a minute.
     * offsets_for_times keeps the timeout, asks each leader once for all its
     * partitions, and leaves a partition it got no answer for at
     * RD_KAFKA_OFFSET_END, which is negative. */
    if (ok)
        ok = rd_kafka_offsets_for_times(p->rk, parts, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR;
    *sum = 0;
    for (int i = 0; ok && i < parts->cnt; i++) {
        ok = parts->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && parts->elems[i].offset >= 0;
        *sum += parts->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return ok;
}

bus_state bus_producer_state(bus_producer *p) { return (bus_state)atomic_load(&p->state); }

bool bus_producer_auth_failed(bus_producer *p, char *why, size_t cap)
{
    return bus_auth_error(atomic_load(&p->auth_err), why, cap);
}

bool bus_producer_failed(bus_producer *p, char *why, size_t cap)
{
    return rd_kafka_fatal_error(p->rk, why, cap) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

void bus_producer_free(bus_producer *p, int timeout_ms)
{
    if (!p)
        return;
    rd_kafka_flush(p->rk, timeout_ms);
    /* Whatever is left fails now, so owners hear about every message. */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(p->rk, 0);
    rd_kafka_topic_destroy(p->topic);
    rd_kafka_destroy(p->rk);
    free(p);
}

struct bus_consumer {
    rd_kafka_t *rk;
    /* The messages of the last poll, valid until the next one (the caller
     * holds pointers into them): held[0..nheld). */
    rd_kafka_message_t *held[BUS_BATCH_MAX];
    int nheld;
    bool cooperative; /* partition.assignment.strategy is cooperative-sticky */
    /* Per partition, the offset after the last message committed: what the
     * final, confirmed commit at close sends. Touched only by the polling
     * thread (and by close, after it). */
    rd_kafka_topic_partition_list_t *done;
    bool dirty;             /* done holds offsets not yet sent */
    int64_t last_commit_ms; /* when commit_due last sent them */
    atomic_bool commit_in_flight;
    atomic_bool broker_down; /* a connection was lost and no message came since */
    atomic_uint_fast64_t commits_sent; /* read by /metrics threads */
};

static int commit_applied(bus_consumer *c, const rd_kafka_topic_partition_list_t *within,
                          int64_t deadline, const char *when);
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque);
static void on_consumer_error(rd_kafka_t *rk, int code, const char *reason, void *opaque);

/* Hands partitions to or back from librdkafka's assignment: the whole set
 * with an eager assignor (range, roundrobin: the default), just these with
 * a cooperative one (an operator may choose it with --kafka-config). The
 * kind comes from the configuration, not rd_kafka_rebalance_protocol(),
 * which can block for ever once the consumer is closing (librdkafka issue
 * 4041), and this also runs then. */
/* Frees the messages of the last poll. */
static void release_held(bus_consumer *c)
{
    for (int i = 0; i < c->nheld; i++)
        rd_kafka_message_destroy(c->held[i]);
    c->nheld = 0;
}

/* A revoke while a batch is being gathered: its messages of the revoked
 * partitions (all == true: of every partition) are dropped, so none is
 * handed out (and applied and committed) after the partition went to
 * another instance. */
static void drop_held(bus_consumer *c, const rd_kafka_topic_partition_list_t *parts, bool all)
{
    int kept = 0;
    for (int i = 0; i < c->nheld; i++) {
        rd_kafka_message_t *m = c->held[i];
        if (all || (parts && rd_kafka_topic_partition_list_find(
                                 parts, rd_kafka_topic_name(m->rkt), m->partition)))
            rd_kafka_message_destroy(m);
        else
            c->held[kept++] = m;
    }
    c->nheld = kept;
}

static void set_assignment(const bus_consumer *c, rd_kafka_resp_err_t what,
                           const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_t *rk = c->rk;
    bool coop = c->cooperative;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (what == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && coop)
        e = rd_kafka_incremental_assign(rk, parts);
    else if (what == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        re = rd_kafka_assign(rk, parts);
    else if (what == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && coop)
        e = rd_kafka_incremental_unassign(rk, parts);
    else /* an eager revoke, or a rebalance error: drop the whole set */
        re = rd_kafka_assign(rk, NULL);
    char q[300];
    if (e || re)
        sm_log(SM_LOG_WARN, "kafka_assign_failed", "what=%s error=%s", rd_kafka_err2name(what),
               sm_log_quote(e ? rd_kafka_error_string(e) : rd_kafka_err2str(re), q, sizeof q));
    if (e)
        rd_kafka_error_destroy(e);
}

/* Writes "p0,p3,p5" (partition numbers) to out. */
static const char *partition_names(const rd_kafka_topic_partition_list_t *parts, char *out,
                                   size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; parts && i < parts->cnt && n + 12 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%d", i ? "," : "",
                              (int)parts->elems[i].partition);
    return out;
}

/* The group moves partitions between instances (one joined, left or died).
 * librdkafka calls this from rd_kafka_consumer_poll, on the polling
 * thread, so no message is being applied meanwhile: every message handed
 * out before was applied and its offset committed asynchronously.
 * On a revoke, before giving the partitions up, those offsets are
 * committed again and the answer awaited (bounded), so the instance that
 * gets them next starts exactly after what this one applied, even if an
 * asynchronous commit was still in flight or failed. Once unassigned,
 * librdkafka drops the messages already fetched for them: nothing from a
 * revoked partition is delivered (and applied) here afterwards. Should
 * two instances still overlap (this one paused past the session timeout),
 * the read model's version check keeps every event applied once, in
 * order, and the broker refuses the stale instance's commits. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t what,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    bus_consumer *c = opaque;
    char names[256];
    partition_names(parts, names, sizeof names);
    if (what == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        sm_log(SM_LOG_INFO, "partitions_assigned", "count=%d partitions=%s", parts->cnt, names);
        set_assignment(c, what, parts);
        return;
    }
    int64_t t0 = sm_mono_ms();
    /* Lost (our session expired): others may own them already, and the
     * broker would refuse the commit anyway. */
    bool lost = rd_kafka_assignment_lost(rk) != 0;
    int committed = lost || what != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS
                        ? 0
                        : commit_applied(c, parts, t0 + BUS_REVOKE_COMMIT_MS, "revoke");
    /* Forget their offsets: should one come back, an old offset must not
     * be committed over what another instance applied meanwhile. */
    for (int i = 0; parts && i < parts->cnt; i++)
        rd_kafka_topic_partition_list_del(c->done, parts->elems[i].topic,
                                          parts->elems[i].partition);
    drop_held(c, parts, what != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS);
    set_assignment(c, what, parts);
    sm_log(committed < 0 ? SM_LOG_WARN : SM_LOG_INFO, "partitions_revoked",
           "count=%d partitions=%s committed=%d lost=%d ms=%lld%s", parts ? parts->cnt : 0, names,
           committed, lost, (long long)(sm_mono_ms() - t0),
           what == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? "" : " reason=rebalance_error");
}

bus_consumer *bus_consumer_new(const bus_config *cfg, const char *group_id, sm_error *err)
{
    const kv_pair role[] = {
        {"group.id", group_id},
        {"enable.auto.commit", "false"},
        /* offsets are committed explicitly, only for applied messages */
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* A consumer that died is noticed in seconds, not the default 45 s
         * (the local broker ignores LeaveGroup, see INFRA notes). */
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "500"},
        /* Real Kafka answers a fetch as soon as data arrives; librdkafka's
         * mock cluster waits out the whole interval, so keep it short
         * (the local run sets 10 ms; see scripts/run.sh). */
        {"fetch.wait.max.ms", "100"},
    };
    /* the rebalance callback needs the consumer: allocate it first */
    bus_consumer *c = calloc(1, sizeof *c);
    if (c && !(c->done = rd_kafka_topic_partition_list_new(8))) {
        free(c);
        c = NULL;
    }
    if (!c) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = make_conf(cfg, role, sizeof role / sizeof role[0], err);
    if (!conf) {
        rd_kafka_topic_partition_list_destroy(c->done);
        free(c);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
    rd_kafka_conf_set_opaque(conf, c);
    char strategy[256] = "";
    size_t len = sizeof strategy;
    if (rd_kafka_conf_get(conf, "partition.assignment.strategy", strategy, &len) ==
        RD_KAFKA_CONF_OK)
        c->cooperative = strstr(strategy, "cooperative") != NULL;
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        rd_kafka_topic_partition_list_destroy(c->done);
        free(c);
        sm_fail(err, SM_ERR_INVALID, "kafka consumer: %s", errstr);
        return NULL;
    }
    c->rk = rk;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        sm_fail(err, SM_ERR_INVALID, "kafka subscribe %s: %s", cfg->topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        rd_kafka_topic_partition_list_destroy(c->done);
        free(c);
        return NULL;
    }
    return c;
}

/* Commits the offsets of every message passed to bus_consumer_commit, in
 * one asynchronous request, at most once per BUS_COMMIT_INTERVAL_MS. A
 * commit per message would be one OffsetCommit round trip each, and a
 * group coordinator serves them one at a time (about 10 ms each on Kafka
 * 4.1): above ~100 events/s they queued without bound, heartbeats waited
 * behind them until the session expired, and a close waited for the whole
 * queue. A consumer that has caught up (nothing fetched is waiting)
 * commits sooner, after BUS_COMMIT_IDLE_MS, so what it applied is
 * confirmed while the broker is there; it would otherwise catch up after
 * every event of a trickle and commit once per event again. librdkafka's
 * own auto-commit is not used: it also commits when closing, and holds a
 * close without a broker for the answer. */
static void commit_due(bus_consumer *c, bool idle)
{
    int64_t now = sm_mono_ms(), since = now - c->last_commit_ms;
    if (!c->dirty || c->done->cnt == 0)
        return;
    /* Not to a broker known to be gone: the commit would wait for a
     * coordinator, and librdkafka's destroy waits for it (seconds). A lost
     * connection with the cluster still there (an idle one closed) is
     * tried again after a while, and a success clears the mark. */
    if (atomic_load(&c->broker_down) && since < BUS_COMMIT_STUCK_MS)
        return;
    /* One at a time (an answer lost for good frees the slot after a
     * while), and a consumer that catches up after every event, a trickle
     * of them, commits no more than every BUS_COMMIT_IDLE_MS. */
    if (atomic_load(&c->commit_in_flight) && since < BUS_COMMIT_STUCK_MS)
        return;
    if (since < (idle ? BUS_COMMIT_IDLE_MS : BUS_COMMIT_INTERVAL_MS))
        return;
    c->dirty = false;
    c->last_commit_ms = now;
    atomic_store(&c->commit_in_flight, true);
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, c->done, 1); /* copies the list */
    if (e) {
        atomic_store(&c->commit_in_flight, false);
        sm_log(SM_LOG_DEBUG, "offset_commit_not_sent", "error=%s", rd_kafka_err2name(e));
        return;
    }
    atomic_fetch_add(&c->commits_sent, 1);
}

/* librdkafka's error callback for the consumer: a lost connection or
 * every broker down holds commit_due back until messages come again. */
static void on_consumer_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)rk;
    bus_consumer *c = opaque;
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__TRANSPORT)
        atomic_store(&c->broker_down, true);
    if (is_auth_error(code)) {
        atomic_store(&c->broker_down, true);
        log_auth_error("consumer", code, reason);
        return;
    }
    char q[400];
    sm_log(SM_LOG_DEBUG, "kafka_consumer_error", "code=%s reason=%s", rd_kafka_err2name(code),
           sm_log_quote(reason, q, sizeof q));
}

/* The answer to commit_due's commit (librdkafka calls it from
 * rd_kafka_consumer_poll, on the polling thread). */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk, (void)offsets;
    bus_consumer *c = opaque;
    atomic_store(&c->commit_in_flight, false);
    if (!err)
        atomic_store(&c->broker_down, false);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        sm_log(SM_LOG_DEBUG, "offset_commit_failed", "when=interval error=%s",
               rd_kafka_err2name(err));
}

uint64_t bus_consumer_commits_sent(bus_consumer *c) { return atomic_load(&c->commits_sent); }

/* Copies m's last "traceparent" header into out if it is safe to log
 * (see bus_message in bus.h); "" otherwise. */
static void read_traceparent(const rd_kafka_message_t *m, char out[BUS_TRACEPARENT_MAX + 1])
{
    out[0] = '\0';
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, "traceparent", &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !v || n == 0 || n > BUS_TRACEPARENT_MAX)
        return;
    const unsigned char *b = v;
    for (size_t i = 0; i < n; i++)
        if (b[i] <= 0x20 || b[i] >= 0x7f || b[i] == '"' || b[i] == '\\')
            return;
    memcpy(out, v, n);
    out[n] = '\0';
}

static void to_message(rd_kafka_message_t *m, bus_message *msg)
{
    *msg = (bus_message){.key = m->key, .key_len = m->key_len, .value = m->payload,
                         .value_len = m->len, .partition = m->partition, .offset = m->offset,
                         .handle = m};
    read_traceparent(m, msg->traceparent);
}

/* The next message fetched within timeout_ms into held, or 0 (none), or
 * -1 (a consumer error, err filled). */
static int take(bus_consumer *c, int timeout_ms, sm_error *err)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!m)
        return 0;
    if (m->err) {
        sm_fail(err, SM_ERR_UNAVAILABLE, "kafka consume: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return -1;
    }
    atomic_store(&c->broker_down, false); /* a message came: a broker answers */
    c->held[c->nheld++] = m;
    return 1;
}

int bus_consumer_poll_batch(bus_consumer *c, int timeout_ms, int max, int max_ms,
                            bus_message *msgs, sm_error *err)
{
    commit_due(c, false);
    release_held(c);
    if (max > BUS_BATCH_MAX)
        max = BUS_BATCH_MAX;
    if (max < 1)
        max = 1;
    /* Caught up (nothing already fetched): commit before waiting, while
     * what was applied is fresh and the broker most likely there. */
    int r = c->dirty ? take(c, 0, err) : 0;
    if (r == 0) {
        commit_due(c, true);
        r = take(c, timeout_ms, err);
    }
    if (r <= 0)
        return r;
    /* Then what is already fetched, without waiting for more. A revoke
     * served by one of these polls drops the batch's messages of the
     * partitions given up (on_rebalance): the batch may shrink, even to
     * nothing. */
    for (int64_t until = sm_mono_ms() + max_ms; c->nheld < max && sm_mono_ms() < until;)
        if (take(c, 0, err) <= 0)
            break; /* an error ends the batch; the next poll reports it again if it lasts */
    for (int i = 0; i < c->nheld; i++)
        to_message(c->held[i], &msgs[i]);
    return c->nheld;
}

int bus_consumer_poll(bus_consumer *c, int timeout_ms, bus_message *msg, sm_error *err)
{
    return bus_consumer_poll_batch(c, timeout_ms, 1, 0, msg, err);
}

sm_status bus_consumer_commit(bus_consumer *c, const bus_message *msg, sm_error *err)
{
    const rd_kafka_message_t *m = msg->handle;
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_find(c->done, topic, m->partition);
    if (!tp)
        tp = rd_kafka_topic_partition_list_add(c->done, topic, m->partition);
    tp->offset = m->offset + 1;
    c->dirty = true;
    commit_due(c, false);
    return SM_OK;
}

sm_status bus_consumer_rewind(bus_consumer *c, const bus_message *msg, sm_error *err)
{
    const rd_kafka_message_t *m = msg->handle;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 2000);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        sm_fail(err, SM_ERR_UNAVAILABLE, "kafka seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return SM_ERR_UNAVAILABLE;
    }
    return SM_OK;
}

int64_t bus_consumer_lag(bus_consumer *c)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return 0;
    rd_kafka_position(c->rk, parts);
    int64_t lag = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_get_watermark_offsets(c->rk, parts->elems[i].topic,
                                           parts->elems[i].partition, &lo, &hi) ||
            hi < 0)
            continue;
        int64_t pos = parts->elems[i].offset >= 0 ? parts->elems[i].offset : lo;
        if (hi > pos)
            lag += hi - pos;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return lag;
}

int bus_consumer_assigned(bus_consumer *c)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return 0;
    int n = parts->cnt;
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

/* Commits c->done for the partitions in `within` and waits until deadline
 * for the broker's answer. The per-message commits are asynchronous and
 * the last ones may still be in flight, or may have failed while the
 * broker was away; this one is confirmed, so whoever reads a partition
 * next resumes exactly after the last applied message. Returns the
 * partitions committed, or -1 if the commit failed or was not confirmed in
 * time (logged; `when` says on what occasion). */
static int commit_applied(bus_consumer *c, const rd_kafka_topic_partition_list_t *within,
                          int64_t deadline, const char *when)
{
    rd_kafka_topic_partition_list_t *mine = rd_kafka_topic_partition_list_new(c->done->cnt + 1);
    for (int i = 0; i < c->done->cnt; i++) {
        const rd_kafka_topic_partition_t *d = &c->done->elems[i];
        if (rd_kafka_topic_partition_list_find(within, d->topic, d->partition))
            rd_kafka_topic_partition_list_add(mine, d->topic, d->partition)->offset = d->offset;
    }
    int n = mine->cnt;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (n > 0) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
        e = rd_kafka_commit_queue(c->rk, mine, q, NULL, NULL);
        bool answered = e != RD_KAFKA_RESP_ERR_NO_ERROR;
        while (!answered && sm_mono_ms() < deadline) {
            int64_t left = deadline - sm_mono_ms();
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)(left < 100 ? left : 100));
            if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
                e = rd_kafka_event_error(ev);
                answered = true;
            }
            if (ev)
                rd_kafka_event_destroy(ev);
        }
        rd_kafka_queue_destroy(q);
        if (!answered)
            e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    rd_kafka_topic_partition_list_destroy(mine);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        char q[300];
        sm_log(SM_LOG_WARN, "offset_commit_failed",
               "when=%s partitions=%d error=%s"
               " effect=\"some events are read again (skipped by version)\"",
               when, n, sm_log_quote(rd_kafka_err2str(e), q, sizeof q));
        return -1;
    }
    return n;
}

/* At close: commit_applied for the partitions still assigned (a partition
 * that went to another instance in a rebalance is its business now:
 * committing our older offset would move its position back). */
static int commit_final(bus_consumer *c, int64_t deadline)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(c->rk, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR || !assigned)
        return 0;
    int n = commit_applied(c, assigned, deadline, "close");
    rd_kafka_topic_partition_list_destroy(assigned);
    return n;
}

/* True if a broker answers a metadata request before deadline (waiting
 * BUS_CLOSE_PROBE_MS at most): a few milliseconds when one is up. */
static bool broker_answers(bus_consumer *c, int64_t deadline)
{
    int64_t left = deadline - sm_mono_ms();
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(
        c->rk, 0, NULL, &md, (int)(left < BUS_CLOSE_PROBE_MS ? (left > 0 ? left : 0)
                                                             : BUS_CLOSE_PROBE_MS));
    if (md)
        rd_kafka_metadata_destroy(md);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void bus_consumer_close(bus_consumer *c, int timeout_ms)
{
    if (!c)
        return;
    int64_t t0 = sm_mono_ms(), deadline = t0 + (timeout_ms > 0 ? timeout_ms : 0);
    release_held(c);
    /* With no broker there, the commit could not be confirmed, and sending
     * it anyway would keep librdkafka's close and destroy waiting for its
     * answer (up to session.timeout.ms): ask first. */
    bool reachable = broker_answers(c, deadline);
    int committed = reachable ? commit_final(c, deadline) : -1;
    /* Leave the group within what is left of timeout_ms: librdkafka's own
     * close can block for up to session.timeout.ms when the broker is
     * gone. */
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    /* No broker: nobody to leave the group with, and librdkafka's close
     * would wait for every commit still in flight (one sent just before
     * the broker went stays "in progress" until a coordinator is found). */
    rd_kafka_error_t *ce = reachable ? rd_kafka_consumer_close_queue(c->rk, q) : NULL;
    bool closing = reachable && ce == NULL;
    if (ce)
        rd_kafka_error_destroy(ce);
    while (closing && !rd_kafka_consumer_closed(c->rk) && sm_mono_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 50);
        /* Closing revokes the assignment; on this queue the revoke comes
         * as an event, not through on_rebalance, and must be acknowledged
         * here (the offsets were committed just above). */
        if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            set_assignment(c, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    bool closed = closing && rd_kafka_consumer_closed(c->rk);
    rd_kafka_queue_destroy(q);
    sm_log(closed ? SM_LOG_INFO : SM_LOG_WARN, "consumer_closed",
           "committed_partitions=%d left_group=%d broker=%s ms=%lld", committed, closed,
           reachable ? "up" : "unreachable", (long long)(sm_mono_ms() - t0));
    rd_kafka_destroy_flags(c->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    rd_kafka_topic_partition_list_destroy(c->done);
    free(c);
}
