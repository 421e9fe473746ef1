/* SPDX-License-Identifier: Apache-2.0 */
/* test_kafka_secure.c — the services on the real Kafka broker behind
 * SASL_SSL, TLS and ACLs (scripts/kafka.sh start DIR --secure): the relay
 * publishes as smpost-command and an independent consumer reads every
 * event in order as smpost-query; command-api and query-api end to end;
 * command-api with the query user's credentials (no WRITE on the event
 * topic) keeps its event in the outbox and says why; a wrong password is
 * refused with a log line that names the settings and never the password.
 *
 * Only as the CTest test integration_kafka_secure_realkafka (SMPOST_TEST_KAFKA
 * names scripts/kafka.sh; .ci/run sets it). One broker for all cases (it
 * takes ~20 s to start); each case starts its own services and stores.
 * The client settings go through --kafka-config (comma-separated), which is
 * why kafka.sh's passwords have no commas, except in the end-to-end case,
 * where both services read kafka.sh's files through --kafka-config-file
 * (SMPOST_KAFKA_CONFIG_FILE) as a deployment would.
 *
 * The users log in with SASL/PLAIN (kafka.sh's default: Debian 12's
 * librdkafka 2.0.2 cannot do SCRAM with Kafka 4.x), or with SCRAM-SHA-512
 * when KAFKA_CLIENT_MECHANISM=SCRAM-SHA-512 (kafka.sh reads it too): the
 * CTest test integration_kafka_scram_realkafka runs this program that way,
 * built with librdkafka 2.6.1 (tests/integration/kafka_scram_realkafka.sh).
 * Then every client here and in the services must be 2.6.1 or later, each
 * user's settings must name SCRAM-SHA-512, and the broker must say the wrong
 * password failed a SCRAM login. */
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
#define CFG_MAX 1024
/* bounds of waits for something that must happen (never asserted as a
 * duration: only "it happened before this much time went by") */
#define WAIT_MS 60000

static const char *api_bin, *query_bin;
static char dir[256], bootstrap[128];
static char cmd_cfg[CFG_MAX], query_cfg[CFG_MAX];
static test_proc broker;
static int case_no;
static bool scram; /* KAFKA_CLIENT_MECHANISM=SCRAM-SHA-512 */

typedef struct svc {
    test_proc p;
    char log[400];
} svc;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-kafka-secure", dir, sizeof dir))
        return -1;
    if (!test_start_secure_kafka(&broker, dir, PARTITIONS, bootstrap, sizeof bootstrap)) {
        fprintf(stderr, "# the secure broker did not start (see %s)\n", dir);
        return -1;
    }
    if (!test_kafka_client_config(&broker, "smpost-command", cmd_cfg, sizeof cmd_cfg) ||
        !test_kafka_client_config(&broker, "smpost-query", query_cfg, sizeof query_cfg)) {
        fprintf(stderr, "# kafka.sh --secure wrote no client settings in %s\n", broker.kafka_dir);
        return -1;
    }
    const char *want = scram ? "sasl.mechanisms=SCRAM-SHA-512" : "sasl.mechanisms=PLAIN";
    if (!strstr(cmd_cfg, want) || !strstr(query_cfg, want)) {
        fprintf(stderr, "# kafka.sh --secure's client settings (%s/*.conf) lack %s\n",
                broker.kafka_dir, want);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (broker.pid > 0)
        test_proc_stop(&broker, SIGTERM, 20000);
    if (getenv("SMPOST_TEST_KEEP") == NULL)
        test_rm_rf(dir);
    return 0;
}

static void stop(svc *s)
{
    if (s->p.pid > 0)
        test_proc_stop(&s->p, SIGTERM, 10000);
}

/* A setting that starts with '/' is a file for --kafka-config-file. */
static const char *config_flag(const char *kafka_cfg)
{
    return kafka_cfg[0] == '/' ? "--kafka-config-file" : "--kafka-config";
}

/* Each case's services: stopped by case_teardown, even after a failure. */
static svc cmd, qry;

static int case_teardown(void **state)
{
    (void)state;
    stop(&cmd);
    stop(&qry);
    memset(&cmd, 0, sizeof cmd);
    memset(&qry, 0, sizeof qry);
    return 0;
}

static void start_command_api_at(svc *s, const char *kafka_cfg, const char *servers)
{
    char port[16], store[400];
    case_no++;
    s->p.port = test_free_port();
    snprintf(port, sizeof port, "%d", s->p.port);
    snprintf(s->log, sizeof s->log, "%s/command-api-%d.log", dir, case_no);
    snprintf(store, sizeof store, "sqlite:%s/events-%d.db", dir, case_no);
    char *argv[] = {(char *)api_bin, "--port", port, "--event-store", store,
                    "--kafka-bootstrap", (char *)servers, (char *)config_flag(kafka_cfg),
                    (char *)kafka_cfg,
                    "--log-level", "info", NULL};
    assert_true(test_proc_start(&s->p, argv, s->log));
    if (!test_proc_wait_http(s->p.port, 15000))
        fail_msg("command-api did not start; see %s", s->log);
}

static void start_command_api(svc *s, const char *kafka_cfg)
{
    start_command_api_at(s, kafka_cfg, bootstrap);
}

static void start_query_api(svc *s, const char *kafka_cfg)
{
    char port[16], rm[400];
    case_no++;
    s->p.port = test_free_port();
    snprintf(port, sizeof port, "%d", s->p.port);
    snprintf(s->log, sizeof s->log, "%s/query-api-%d.log", dir, case_no);
    snprintf(rm, sizeof rm, "sqlite:%s/readmodel-%d.db", dir, case_no);
    char *argv[] = {(char *)query_bin, "--port", port, "--read-model", rm,
                    "--kafka-bootstrap", bootstrap, (char *)config_flag(kafka_cfg),
                    (char *)kafka_cfg,
                    "--min-version-wait-ms", "30000", "--log-level", "info", NULL};
    assert_true(test_proc_start(&s->p, argv, s->log));
    if (!test_proc_wait_http(s->p.port, 15000))
        fail_msg("query-api did not start; see %s", s->log);
}

/* --- HTTP --------------------------------------------------------------- */

static void new_post(svc *api, const char *author, char id[40])
{
    char body[160];
    snprintf(body, sizeof body, "{\"author\":\"%s\",\"message\":\"over TLS\"}", author);
    http_resp r;
    assert_int_equal(http_json(api->p.port, "POST", "/api/v1/NewPost", body, &r), 0);
    assert_int_equal(r.status, 201);
    snprintf(id, 40, "%s", http_resp_str(&r, "id"));
    http_resp_free(&r);
}

static void like(svc *api, const char *id)
{
    char path[200];
    snprintf(path, sizeof path, "/api/v1/LikePost/%s", id);
    http_resp r;
    assert_int_equal(http_json(api->p.port, "PUT", path, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
}

/* A number from /metrics, or -1. */
static double metric(svc *api, const char *name)
{
    http_resp r;
    double v = -1;
    if (http_call(api->p.port, "GET", "/metrics", "", NULL, 0, 5000, &r) == 0 && r.body) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *p = strstr(r.body, key);
        if (p)
            v = strtod(p + strlen(key), NULL);
    }
    http_resp_free(&r);
    return v;
}

static bool wait_metric(svc *api, const char *name, double want)
{
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        if (metric(api, name) == want)
            return true;
        sleep_ms(100);
    }
    return false;
}

/* command-api's /health "kafka.error", or "" (out holds cap bytes). */
static const char *kafka_health_error(svc *api, char *out, size_t cap)
{
    http_resp r;
    out[0] = '\0';
    if (http_call(api->p.port, "GET", "/health", "", NULL, 0, 5000, &r) == 0 && r.json) {
        json_t *kafka = json_object_get(r.json, "kafka");
        const char *e = json_string_value(json_object_get(kafka, "error"));
        snprintf(out, cap, "%s", e ? e : "");
    }
    http_resp_free(&r);
    return out;
}

static bool wait_health_error(svc *api, const char *needle)
{
    char e[512];
    for (int waited = 0; waited < WAIT_MS; waited += 200) {
        if (strstr(kafka_health_error(api, e, sizeof e), needle))
            return true;
        sleep_ms(200);
    }
    return false;
}

/* --- logs --------------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static int count_in_file(const char *path, const char *needle)
{
    char *text = slurp(path);
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(text);
    return n;
}

static bool wait_in_file(const char *path, const char *needle, int times)
{
    for (int waited = 0; waited < WAIT_MS; waited += 200) {
        if (count_in_file(path, needle) >= times)
            return true;
        sleep_ms(200);
    }
    return false;
}

/* --- an independent Kafka consumer ---------------------------------------- */

typedef struct seen {
    char key[40];
    int64_t version;
} seen;

/* Applies "k=v,k=v" (a user's settings) to conf. */
static void apply_config(rd_kafka_conf_t *conf, const char *cfg)
{
    char copy[CFG_MAX], errstr[256];
    snprintf(copy, sizeof copy, "%s", cfg);
    for (char *save = NULL, *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        if (rd_kafka_conf_set(conf, kv, eq + 1, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            fail_msg("consumer setting %s: %s", kv, errstr);
    }
}

/* Reads the whole event topic (every partition from the beginning to its
 * end) with the settings cfg; returns how many messages, up to cap in out. */
static size_t read_topic_at(const char *servers, const char *cfg, seen *out, size_t cap)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", servers, errstr, sizeof errstr);
    /* a group the query user may read (kafka.sh: prefix SM_Consumer) */
    rd_kafka_conf_set(conf, "group.id", "SM_Consumer-secure-test", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr);
    apply_config(conf, cfg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    size_t n = 0;
    int eofs = 0;
    for (int waited = 0; eofs < PARTITIONS && waited < WAIT_MS; waited += 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fail_msg("the query user could not read %s: %s", TOPIC, rd_kafka_message_errstr(m));
        } else {
            sm_event ev;
            sm_error err;
            assert_int_equal(sm_event_decode(&ev, m->payload, m->len, &err), SM_OK);
            assert_int_equal(m->key_len, 36);
            assert_memory_equal(m->key, ev.aggregate_id, 36);
            if (n < cap) {
                snprintf(out[n].key, sizeof out[n].key, "%s", ev.aggregate_id);
                out[n].version = ev.version;
            }
            n++;
            sm_event_clear(&ev);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (eofs < PARTITIONS)
        fail_msg("the query user did not reach the end of %s", TOPIC);
    return n;
}

static size_t read_topic(const char *cfg, seen *out, size_t cap)
{
    return read_topic_at(bootstrap, cfg, out, cap);
}

static size_t count_key(const seen *s, size_t n, const char *key)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += strcmp(s[i].key, key) == 0;
    return c;
}

/* cfg ("k=v,k=v") with key's value replaced by value, into out (CFG_MAX). */
static void with_setting(const char *cfg, const char *key, const char *value, char *out)
{
    char copy[CFG_MAX];
    size_t len = 0, klen = strlen(key);
    bool found = false;
    snprintf(copy, sizeof copy, "%s", cfg);
    out[0] = '\0';
    for (char *save = NULL, *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        bool match = strncmp(kv, key, klen) == 0 && kv[klen] == '=';
        found |= match;
        len += (size_t)snprintf(out + len, CFG_MAX - len, "%s%s%s%s", len ? "," : "",
                                match ? key : kv, match ? "=" : "", match ? value : "");
        assert_true(len < CFG_MAX);
    }
    assert_true(found);
}

/* True if a client with the settings cfg gets the topic's metadata from
 * servers. */
static bool metadata_answers_at(const char *servers, const char *cfg)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", servers, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    apply_config(conf, cfg);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 5000);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static bool metadata_answers(const char *cfg) { return metadata_answers_at(bootstrap, cfg); }

/* --- cases ---------------------------------------------------------------- */

/* (a) command-api's relay publishes as smpost-command over SASL_SSL; a
 * consumer of its own, as smpost-query, reads every event, each post's in
 * version order. */
static void test_the_relay_publishes_over_sasl_ssl_and_the_query_user_reads_in_order(void **s)
{
    (void)s;
    /* the only listener is SASL_SSL with the generated CA: no plaintext
     * client, and no client that does not trust that CA, gets an answer */
    assert_true(metadata_answers(query_cfg));
    assert_false(metadata_answers("security.protocol=PLAINTEXT"));
    char no_ca[CFG_MAX];
    with_setting(query_cfg, "ssl.ca.location", "probe", no_ca); /* the system's CAs */
    assert_false(metadata_answers(no_ca));
    enum { POSTS = 3, LIKES = 4 };
    start_command_api(&cmd, cmd_cfg);
    char ids[POSTS][40];
    for (int i = 0; i < POSTS; i++)
        new_post(&cmd, "alice", ids[i]);
    for (int l = 0; l < LIKES; l++) /* interleaved: post 0, 1, 2, 0, 1, 2... */
        for (int i = 0; i < POSTS; i++)
            like(&cmd, ids[i]);
    if (!wait_metric(&cmd, "smpost_outbox_pending", 0))
        fail_msg("the relay did not publish over SASL_SSL; see %s", cmd.log);
    assert_true(metric(&cmd, "smpost_kafka_up") == 1);
    stop(&cmd);

    static seen got[256];
    size_t n = read_topic(query_cfg, got, 256);
    for (int i = 0; i < POSTS; i++) {
        assert_int_equal(count_key(got, n, ids[i]), 1 + LIKES);
        int64_t next = 0; /* this post's events, in the order read */
        for (size_t k = 0; k < n; k++)
            if (strcmp(got[k].key, ids[i]) == 0)
                assert_int_equal(got[k].version, next++);
    }
}

/* (b) command-api and query-api both through SASL_SSL, each as its own
 * user: a post created and liked is shown by query-cmd. */
static void test_command_api_and_query_api_end_to_end_over_sasl_ssl(void **s)
{
    (void)s;
    char cmd_file[400], query_file[400];
    snprintf(cmd_file, sizeof cmd_file, "%s/smpost-command.conf", broker.kafka_dir);
    snprintf(query_file, sizeof query_file, "%s/smpost-query.conf", broker.kafka_dir);
    start_command_api(&cmd, cmd_file);
    start_query_api(&qry, query_file);
    char id[40], path[200];
    new_post(&cmd, "bob", id);
    like(&cmd, id);
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s?minVersion=1", id);
    http_resp r;
    assert_int_equal(http_call(qry.p.port, "GET", path, "", NULL, 0, 40000, &r), 0);
    char stale[8];
    if (r.status != 200 || http_resp_header(&r, "X-Read-Model-Stale", stale, sizeof stale))
        fail_msg("query-api did not show the post (status %d); see %s and %s", r.status,
                 qry.log, cmd.log);
    json_t *post = json_array_get(json_object_get(r.json, "posts"), 0);
    assert_non_null(post);
    assert_string_equal(json_string_value(json_object_get(post, "author")), "bob");
    assert_string_equal(json_string_value(json_object_get(post, "message")), "over TLS");
    http_resp_free(&r);
    stop(&qry);
    stop(&cmd);
    assert_int_equal(count_in_file(qry.log, "kafka_auth_failed"), 0);
}

/* (c) command-api given the query user's credentials: the broker takes the
 * login but refuses every write to the event topic (no WRITE ACL). The
 * command succeeds, its event stays in the outbox, /health says why, the
 * relay keeps trying, and nothing reaches the topic. */
static void test_the_query_user_cannot_publish_and_the_event_waits_in_the_outbox(void **s)
{
    (void)s;
    start_command_api(&cmd, query_cfg);
    char id[40];
    new_post(&cmd, "mallory", id);
    if (!wait_health_error(&cmd, "Topic authorization failed"))
        fail_msg("/health never said the write was refused; see %s", cmd.log);
    /* tried again and again, refused each time, never dropped */
    if (!wait_in_file(cmd.log, "event=relay_delivery_failed", 3))
        fail_msg("the relay stopped trying; see %s", cmd.log);
    assert_true(metric(&cmd, "smpost_outbox_pending") == 1);
    assert_true(metric(&cmd, "smpost_kafka_up") == 0);
    assert_int_equal(kill(cmd.p.pid, 0), 0); /* still running */
    assert_int_equal(test_proc_stop(&cmd.p, SIGTERM, 10000), 0);

    static seen got[256];
    size_t n = read_topic(query_cfg, got, 256);
    if (count_key(got, n, id) != 0)
        fail_msg("an event of %s reached %s although smpost-query may not write it", id, TOPIC);
}

/* (c) a wrong password: the login is refused; both services log one clear
 * line (event=kafka_auth_failed, the settings to check) and never the
 * password; command-api's /health says the login was refused. */
static void test_a_wrong_password_is_refused_and_never_logged(void **s)
{
    (void)s;
    char marker[64], bad[CFG_MAX], bad_query[CFG_MAX];
    snprintf(marker, sizeof marker, "NotThePassword-%d-Marker", (int)getpid());
    with_setting(cmd_cfg, "sasl.password", marker, bad);
    with_setting(query_cfg, "sasl.password", marker, bad_query);
    start_command_api(&cmd, bad);
    start_query_api(&qry, bad_query);
    char id[40];
    new_post(&cmd, "eve", id); /* commands still succeed: the outbox keeps it */
    if (!wait_health_error(&cmd, "refused the client's login"))
        fail_msg("/health never said the login was refused; see %s", cmd.log);
    if (!wait_in_file(qry.log, "event=kafka_auth_failed client=consumer", 1))
        fail_msg("query-api never logged the refused login; see %s", qry.log);
    assert_true(metric(&cmd, "smpost_outbox_pending") == 1);
    assert_int_equal(test_proc_stop(&cmd.p, SIGTERM, 10000), 0);
    test_proc_stop(&qry.p, SIGTERM, 10000);
    assert_true(count_in_file(cmd.log, "event=kafka_auth_failed client=producer") >= 1);
    assert_true(count_in_file(cmd.log, "fix=\"check security.protocol, sasl.mechanisms, "
                                       "sasl.username, sasl.password") >= 1);
    if (count_in_file(cmd.log, marker) || count_in_file(qry.log, marker))
        fail_msg("the password appears in a log (%s, %s)", cmd.log, qry.log);
    /* SCRAM: the broker's word that the refused login was a SCRAM one (its
     * PLAIN refusals do not name the mechanism) */
    char klog[400];
    snprintf(klog, sizeof klog, "%s/kafka.log", broker.kafka_dir);
    const char *mech = "invalid credentials with SASL mechanism SCRAM-SHA-512";
    if (scram && count_in_file(klog, mech) < 1)
        fail_msg("the broker's log (%s) has no \"%s\"", klog, mech);
}

/* Mutual TLS instead of passwords: command-api publishes with the
 * smpost-command certificate, the query user's certificate reads the
 * events, and may not write the event topic; a client without a
 * certificate gets no answer. */
static void test_mutual_tls_identifies_each_service_by_its_certificate(void **s)
{
    (void)s;
    if (scram)
        skip(); /* no SASL here: integration_kafka_secure_realkafka has it */
    char mtls[128], cmd_mtls[CFG_MAX], query_mtls[CFG_MAX], no_cert[CFG_MAX];
    assert_true(test_kafka_mtls_bootstrap(&broker, mtls, sizeof mtls));
    assert_true(test_kafka_client_config(&broker, "smpost-command-mtls", cmd_mtls, CFG_MAX));
    assert_true(test_kafka_client_config(&broker, "smpost-query-mtls", query_mtls, CFG_MAX));
    snprintf(no_cert, sizeof no_cert, "security.protocol=SSL,ssl.ca.location=%s/tls/ca.pem",
             broker.kafka_dir);
    assert_true(metadata_answers_at(mtls, query_mtls));
    assert_false(metadata_answers_at(mtls, no_cert));

    start_command_api_at(&cmd, cmd_mtls, mtls);
    char id[40];
    new_post(&cmd, "carol", id);
    like(&cmd, id);
    if (!wait_metric(&cmd, "smpost_outbox_pending", 0))
        fail_msg("the relay did not publish over mutual TLS; see %s", cmd.log);
    stop(&cmd);
    static seen got[256];
    size_t n = read_topic_at(mtls, query_mtls, got, 256);
    assert_int_equal(count_key(got, n, id), 2);

    /* the query service's certificate may not write the event topic */
    start_command_api_at(&cmd, query_mtls, mtls);
    new_post(&cmd, "carol", id);
    if (!wait_health_error(&cmd, "Topic authorization failed"))
        fail_msg("/health never said the write was refused; see %s", cmd.log);
    assert_true(metric(&cmd, "smpost_outbox_pending") == 1);
}

int main(void)
{
    int rc = test_broker_check("kafka_secure");
    if (rc)
        return rc;
    if (!test_broker_is_real()) {
        printf("SKIPPED: kafka_secure runs only on the real broker (ctest -R "
               "kafka_secure_realkafka)\n");
        return 77;
    }
    const char *mech = getenv("KAFKA_CLIENT_MECHANISM");
    scram = mech && strcmp(mech, "SCRAM-SHA-512") == 0;
    /* SCRAM to Kafka 4.x needs librdkafka 2.6.1+ (librdkafka PR 4895): this
     * program's consumer is one of the clients; the services' are checked by
     * kafka_scram_realkafka.sh (ldd) and by logging in */
    if (scram && rd_kafka_version() < 0x020601ff) {
        fprintf(stderr, "KAFKA_CLIENT_MECHANISM=SCRAM-SHA-512 needs librdkafka 2.6.1 or later; "
                        "this program runs %s (build with -DSMPOST_RDKAFKA_DIR, "
                        "scripts/rdkafka_vendored.sh)\n", rd_kafka_version_str());
        return 1;
    }
    api_bin = getenv("SMPOST_COMMAND_API_BIN");
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    if (!api_bin || !query_bin) {
        fprintf(stderr, "SMPOST_COMMAND_API_BIN / SMPOST_QUERY_API_BIN not set (run via ctest)\n");
        return 1;
    }
#define T(name) cmocka_unit_test_teardown(name, case_teardown)
    const struct CMUnitTest tests[] = {
        T(test_the_relay_publishes_over_sasl_ssl_and_the_query_user_reads_in_order),
        T(test_command_api_and_query_api_end_to_end_over_sasl_ssl),
        T(test_the_query_user_cannot_publish_and_the_event_waits_in_the_outbox),
        T(test_a_wrong_password_is_refused_and_never_logged),
        T(test_mutual_tls_identifies_each_service_by_its_certificate),
    };
    return scram ? cmocka_run_group_tests_name("kafka_scram_realkafka", tests, group_setup,
                                               group_teardown)
                 : cmocka_run_group_tests_name("kafka_secure_realkafka", tests, group_setup,
                                               group_teardown);
}
