/* SPDX-License-Identifier: Apache-2.0 */
/* test_scale_out.c — scale-out on the embedded default, as processes:
 * smpost-devbroker (6 partitions), two command-api processes on one SQLite
 * event store, two query-api processes in one consumer group on one SQLite
 * read model. A mixed command load (fault_load.h) goes to both
 * command-apis, every other request to each, so one post's commands pass
 * through both processes. Under that load:
 *
 *   1. the command-api holding the relay lease (/health kafka.relay.role
 *      "publisher") is killed with SIGKILL; the time until the other one
 *      reports "publisher", and until it has published again, is measured
 *      and bounded (relay_lease.h: ttl + ttl/3 after the last renewal, plus
 *      the new publisher's cluster check); the killed one is restarted and
 *      must stand by;
 *   2. a query-api is killed with SIGKILL: the time until the survivor
 *      holds every partition is measured and bounded (the group's session
 *      timeout, then a rebalance);
 *   3. each kill meets a burst of likes on one hot post; the time from the
 *      last kill until the survivor shows every acknowledged write
 *      (converge_ms) is bounded by 15 s. Then the killed query-api is
 *      restarted and the partitions are shared again (bus.h, rebalances).
 *
 * Checked throughout and afterwards:
 *   - one publisher at a time: a watcher polls both command-apis' /health
 *     every 100 ms. Two "publisher" answers within one short round (under
 *     half the lease's safety margin, so they were simultaneous) or a
 *     "publisher" answer with a lower lease epoch than one seen before (a
 *     fenced former leader) must never happen;
 *   - nothing lost, nothing applied twice (fault_check.h): every accepted
 *     command is in the store once and the read model shows every post as
 *     the store has it (likes or comments above the store would be a
 *     double application);
 *   - no out-of-order application: no query-api ever met a version gap
 *     (log lines event=event_gap of every process that ran, including the
 *     killed one, and smpost_events_gap_total of the live ones);
 *   - Kafka holds at most one relay round (RELAY_BATCH events) more than
 *     the store: only the killed publisher's last round can be published
 *     twice (produced, not yet marked when it died). Two relays publishing
 *     side by side would double the topic;
 *   - both query-apis hold partitions of the topic (6 between them) at the
 *     start and again at the end;
 *   - every process reports its instance id in /health, in /metrics
 *     (smpost_instance_info) and in its log lines; one of each kind is
 *     given --instance-id, the other uses the default HOSTNAME-PORT;
 *   - all four stop with SIGTERM and exit 0 within the documented bounds.
 * Prints one line:
 *   SCALE accepted=N stored=N projected=N lost=0 duplicated=0
 *     out_of_order=0 relay_takeover_ms=N publishers_seen=N ... converge_ms=N
 *
 * Environment: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN,
 * SMPOST_DEVBROKER_BIN (set by ctest); SMPOST_FAULT_SCALE stretches the
 * load phases; SMPOST_TEST_KEEP keeps the directory (it is also kept, and
 * named, when the run fails). */
#include "bus.h"
#include "fault_check.h"
#include "fault_load.h"
#include "fault_proc.h"
#include "sm_time.h"
#include "http_client.h"
#include "broker.h"
#include "proc.h"
#include "relay_watch.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARTITIONS 6
#define TOPIC "SocialMediaPostEvents"
/* SMPOST_RELAY_LEASE_MS's default: the test measures what is documented. */
#define LEASE_MS 3000
/* The lease is taken over at most ttl + ttl/3 after the publisher's last
 * renewal; the new publisher then identifies the cluster (a metadata and
 * a watermark request) before its first round. The rest is slack for a
 * loaded two-core machine and the sanitizer build. */
#define TAKEOVER_BOUND_MS (LEASE_MS + LEASE_MS / 3 + 2500)
/* A killed query-api's partitions move once the group coordinator gives up
 * on it: session.timeout.ms (bus.c: 6 s), then a rebalance. The local
 * broker's coordinator (librdkafka's mock cluster) collects joins for 5 s
 * per round and needs a second round when the first one still counted the
 * dead member: up to about 6 + 5 + 5 s, measured 11 to 12 s. */
#define QUERY_TAKEOVER_BOUND_MS 20000
/* Last kill to the survivor showing every acknowledged write (issue 17). */
#define CONVERGE_BOUND_MS 15000
#define RELAY_BATCH 500     /* relay.c's default heads per round */
#define WATCH_EVERY_MS 100
/* A holder stops publishing ttl/3 before anyone may take over; two
 * "publisher" answers less than half that apart were simultaneous. */
#define OVERLAP_WINDOW_MS (LEASE_MS / 6)

typedef struct svc {
    test_proc p;
    const char *name;   /* log file: DIR/<name>.log */
    const char *given;  /* --instance-id, or NULL for the default */
    char id[96];        /* the instance id it must report */
    char log[320];
} svc;

typedef struct scale {
    char dir[256], es_path[300], es_url[320], rm_url[320], bootstrap[128];
    test_proc broker;
    svc cmd[2], query[2];
    fl_load *load;
    relay_watch *watch;
    rw_counts w;         /* the watcher's counts, once stopped */
    int64_t last_kill;   /* sm_mono_ms() of the last SIGKILL */
    double scale;
    bool passed;
} scale;

static const char *api_bin, *query_bin, *broker_bin;

static void phase(const scale *s, int ms) { sm_sleep_ms((int)(ms * s->scale)); }

/* --- the processes ------------------------------------------------------ */

/* The command line of command-api i (port: a buffer for its port). */
static void cmd_argv(scale *s, int i, char *argv[16], char port[16])
{
    svc *v = &s->cmd[i];
    snprintf(port, 16, "%d", v->p.port);
    int n = 0;
    argv[n++] = (char *)api_bin;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--event-store";
    argv[n++] = s->es_url;
    argv[n++] = "--kafka-bootstrap";
    argv[n++] = s->bootstrap;
    if (v->given) {
        argv[n++] = "--instance-id";
        argv[n++] = (char *)v->given;
    }
    argv[n] = NULL;
}

static void query_argv(scale *s, int i, char *argv[16], char port[16])
{
    svc *v = &s->query[i];
    snprintf(port, 16, "%d", v->p.port);
    int n = 0;
    argv[n++] = (char *)query_bin;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--read-model";
    argv[n++] = s->rm_url;
    argv[n++] = "--kafka-bootstrap";
    argv[n++] = s->bootstrap;
    argv[n++] = "--min-version-wait-ms";
    argv[n++] = "10000";
    if (v->given) {
        argv[n++] = "--instance-id";
        argv[n++] = (char *)v->given;
    }
    argv[n] = NULL;
}

/* A restart: same port, same instance id. */
static void start_cmd(scale *s, int i)
{
    char *argv[16], port[16];
    cmd_argv(s, i, argv, port);
    fp_start_service(s->dir, &s->cmd[i].p, argv, s->cmd[i].name);
}

static void start_query(scale *s, int i)
{
    char *argv[16], port[16];
    query_argv(s, i, argv, port);
    fp_start_service(s->dir, &s->query[i].p, argv, s->query[i].name);
}

/* All four at once, as an orchestrator starts replicas: they create and
 * open the same new SQLite files together. */
static void start_all(scale *s)
{
    svc *all[4] = {&s->cmd[0], &s->cmd[1], &s->query[0], &s->query[1]};
    for (int i = 0; i < 4; i++) {
        char *argv[16], port[16];
        if (i < 2)
            cmd_argv(s, i, argv, port);
        else
            query_argv(s, i - 2, argv, port);
        assert_true(test_proc_start(&all[i]->p, argv, all[i]->log));
    }
    for (int i = 0; i < 4; i++)
        if (!fp_wait_up(&all[i]->p, 30000))
            fail_msg("%s did not start with the others; see %s", all[i]->name, all[i]->log);
}

static void init_svc(scale *s, svc *v, const char *name, const char *given)
{
    v->name = name;
    v->given = given;
    v->p.port = test_free_port();
    snprintf(v->log, sizeof v->log, "%s/%s.log", s->dir, name);
    if (given) {
        snprintf(v->id, sizeof v->id, "%s", given);
    } else { /* sm_config_instance_id's default */
        char host[64] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !host[0])
            snprintf(host, sizeof host, "localhost");
        snprintf(v->id, sizeof v->id, "%s-%d", host, v->p.port);
    }
}

/* --- what /health says -------------------------------------------------- */

/* Partitions a query-api holds, or -1 without an answer. */
static int assigned(const svc *v)
{
    json_t *h = fp_health(v->p.port, 5000);
    json_t *a = json_object_get(json_object_get(h, "consumer"), "assignedPartitions");
    int n = json_is_integer(a) ? (int)json_integer_value(a) : -1;
    json_decref(h);
    return n;
}

/* Waits until both query-apis hold partitions, all of them between them. */
static void wait_partitions_shared(scale *s, const char *when)
{
    int a = -1, b = -1;
    for (int64_t until = sm_mono_ms() + 60000; sm_mono_ms() < until; sm_sleep_ms(200)) {
        a = assigned(&s->query[0]);
        b = assigned(&s->query[1]);
        if (a > 0 && b > 0 && a + b == PARTITIONS)
            break;
    }
    printf("# %s: query-api partitions %d + %d of %d\n", when, a, b, PARTITIONS);
    if (!(a > 0 && b > 0 && a + b == PARTITIONS))
        fail_msg("the two query-apis do not share the %d partitions (%d + %d)", PARTITIONS, a, b);
}

/* The index of the command-api that publishes, once exactly one does and
 * the other names it; fails the test after timeout_ms. */
static int wait_one_publisher(scale *s, int timeout_ms)
{
    for (int64_t until = sm_mono_ms() + timeout_ms; sm_mono_ms() < until; sm_sleep_ms(100)) {
        relay_view a = rw_relay_of(s->cmd[0].p.port, 5000);
        relay_view b = rw_relay_of(s->cmd[1].p.port, 5000);
        if (a.answered && b.answered && a.publisher != b.publisher) {
            int l = a.publisher ? 0 : 1;
            const relay_view *standby = l == 0 ? &b : &a;
            if (strcmp(standby->holder, s->cmd[l].id) == 0)
                return l;
        }
    }
    fail_msg("no single relay publisher among the two command-apis within %d ms", timeout_ms);
    return -1;
}

/* Its instance id in /health, /metrics and its log lines. */
static void check_identity(const svc *v, const char *service)
{
    json_t *h = fp_health(v->p.port, 5000);
    const char *inst = json_string_value(json_object_get(h, "instance"));
    const char *serv = json_string_value(json_object_get(h, "service"));
    printf("# %s: instance \"%s\" (%s)\n", v->name, inst ? inst : "?",
           v->given ? "--instance-id" : "default HOSTNAME-PORT");
    assert_non_null(inst);
    assert_string_equal(inst, v->id);
    assert_string_equal(serv, service);
    json_decref(h);

    http_resp r;
    char want[256];
    snprintf(want, sizeof want, "\nsmpost_instance_info{service=\"%s\",instance=\"%s\"} 1\n",
             service, v->id);
    assert_int_equal(http_call(v->p.port, "GET", "/metrics", "", NULL, 0, 10000, &r), 0);
    if (!r.body || !strstr(r.body, want))
        fail_msg("%s /metrics lacks%s", v->name, want);
    http_resp_free(&r);

    char line[160];
    snprintf(line, sizeof line, " instance=%s event=listening ", v->id);
    if (fp_count_lines(v->log, line) < 1)
        fail_msg("%s: no log line with \"%s\" in %s", v->name, line, v->log);
}

/* --- the faults --------------------------------------------------------- */

typedef struct takeover {
    int64_t role_ms;    /* kill -> the survivor says publisher */
    int64_t publish_ms; /* kill -> the survivor has published */
} takeover;

/* kill -9 the publisher; the other must take over within the bound and
 * publish; the killed one comes back as a standby. */
static takeover kill_publisher(scale *s)
{
    int l = wait_one_publisher(s, 20000), o = 1 - l;
    long long before = rw_relay_of(s->cmd[o].p.port, 5000).published;
    int64_t t0 = sm_mono_ms();
    fp_kill9(&s->cmd[l].p, s->cmd[l].name);
    takeover t = {-1, -1};
    for (int64_t until = t0 + 3 * TAKEOVER_BOUND_MS; sm_mono_ms() < until; sm_sleep_ms(20)) {
        relay_view r = rw_relay_of(s->cmd[o].p.port, 2000);
        if (t.role_ms < 0 && r.publisher)
            t.role_ms = sm_mono_ms() - t0;
        if (t.role_ms >= 0 && r.published > before) {
            t.publish_ms = sm_mono_ms() - t0;
            break;
        }
    }
    printf("# relay takeover: %s killed; %s publisher after %lld ms, publishing after %lld ms "
           "(bound %d ms)\n",
           s->cmd[l].id, s->cmd[o].id, (long long)t.role_ms, (long long)t.publish_ms,
           TAKEOVER_BOUND_MS);
    if (t.role_ms < 0 || t.publish_ms < 0 || t.publish_ms > TAKEOVER_BOUND_MS)
        fail_msg("the relay was not taken over and publishing within %d ms", TAKEOVER_BOUND_MS);
    start_cmd(s, l); /* same port, same instance id */
    relay_view back = {0};
    for (int64_t until = sm_mono_ms() + 10000; sm_mono_ms() < until; sm_sleep_ms(100)) {
        back = rw_relay_of(s->cmd[l].p.port, 5000);
        if (back.answered && !back.publisher && strcmp(back.holder, s->cmd[o].id) == 0)
            break;
    }
    printf("# %s restarted: %s, publisher %s\n", s->cmd[l].id,
           back.publisher ? "publisher" : "standby", back.holder);
    assert_false(back.publisher);
    assert_string_equal(back.holder, s->cmd[o].id);
    return t;
}

/* kill -9 query-api i: the group notices within its session timeout and
 * gives every partition to the other one. Returns the milliseconds from the
 * kill until the survivor holds them all; then the killed one restarts. */
static int64_t kill_query(scale *s, int i)
{
    int64_t t0 = sm_mono_ms(), took = -1;
    fp_kill9(&s->query[i].p, s->query[i].name);
    s->last_kill = t0;
    for (int64_t until = t0 + QUERY_TAKEOVER_BOUND_MS; sm_mono_ms() < until; sm_sleep_ms(50))
        if (assigned(&s->query[1 - i]) == PARTITIONS) {
            took = sm_mono_ms() - t0;
            break;
        }
    printf("# query-api takeover: %s killed; %s holds all %d partitions after %lld ms "
           "(bound %d ms)\n",
           s->query[i].id, s->query[1 - i].id, PARTITIONS, (long long)took,
           QUERY_TAKEOVER_BOUND_MS);
    if (took < 0)
        fail_msg("the surviving query-api did not get every partition within %d ms",
                 QUERY_TAKEOVER_BOUND_MS);
    return took;
}

/* --- checks ------------------------------------------------------------- */

/* Messages in the topic: the sum of its partitions' high watermarks. */
static int64_t topic_messages(const scale *s)
{
    bus_config cfg = {s->bootstrap, TOPIC, "smpost-test-scale", NULL};
    sm_error err = {0};
    bus_producer *p = bus_producer_new(&cfg, NULL, NULL, &err);
    assert_non_null(p);
    int64_t sum = -1;
    if (!bus_producer_topic_end(p, &sum, 10000))
        sum = -1;
    bus_producer_free(p, 0);
    return sum;
}

static long gap_lines(const scale *s)
{
    return fp_count_lines(s->query[0].log, " event=event_gap ") +
           fp_count_lines(s->query[1].log, " event=event_gap ");
}

/* --- the run ------------------------------------------------------------ */

static int setup(void **state)
{
    scale *s = calloc(1, sizeof *s);
    if (!s || !test_temp_dir("smpost-scale", s->dir, sizeof s->dir))
        return -1;
    const char *sc = getenv("SMPOST_FAULT_SCALE");
    s->scale = sc && atof(sc) > 0 ? atof(sc) : 1.0;
    snprintf(s->es_path, sizeof s->es_path, "%s/events.db", s->dir);
    snprintf(s->es_url, sizeof s->es_url, "sqlite:%s", s->es_path);
    snprintf(s->rm_url, sizeof s->rm_url, "sqlite:%s/readmodel.db", s->dir);
    init_svc(s, &s->cmd[0], "command-api-a", "scale-cmd-a");
    init_svc(s, &s->cmd[1], "command-api-b", NULL);
    init_svc(s, &s->query[0], "query-api-a", "scale-query-a");
    init_svc(s, &s->query[1], "query-api-b", NULL);
    *state = s;
    if (!test_start_devbroker(&s->broker, broker_bin, s->dir, PARTITIONS, s->bootstrap,
                              sizeof s->bootstrap))
        fail_msg("smpost-devbroker did not start (see %s)", s->dir);
    return 0;
}

static int teardown(void **state)
{
    scale *s = *state;
    if (!s)
        return 0;
    rw_free(s->watch);
    if (s->load) { /* a failed assertion left it running */
        fl_stop(s->load);
        fl_free(s->load);
    }
    for (int i = 0; i < 2; i++) {
        if (s->query[i].p.pid > 0)
            test_proc_stop(&s->query[i].p, SIGKILL, 2000);
        if (s->cmd[i].p.pid > 0)
            test_proc_stop(&s->cmd[i].p, SIGKILL, 2000);
    }
    fp_finish(&s->broker, s->dir, s->passed);
    free(s);
    return 0;
}

/* What one run measured. */
typedef struct outcome {
    fc_counts c;
    takeover relay;
    int64_t query_takeover_ms;
    int64_t converge_ms; /* last kill to the survivor showing every acknowledged write */
    int64_t load_ms, check_ms;
    size_t requests;
    long out_of_order;   /* event_gap lines, every query-api process that ran */
    double gaps_now;     /* smpost_events_gap_total of the live query-apis */
    double reread;       /* smpost_events_duplicate_total of the live ones */
    int64_t in_topic, kafka_dups;
} outcome;

/* The load on both command-apis, with the two kills in its course; then
 * the store and the read model checked against what was answered. */
static void run_load(scale *s, outcome *o)
{
    const int ports[2] = {s->cmd[0].p.port, s->cmd[1].p.port};
    const char *ids[2] = {s->cmd[0].id, s->cmd[1].id};
    s->watch = rw_start(ports, ids, 2, WATCH_EVERY_MS, OVERLAP_WINDOW_MS);
    assert_non_null(s->watch);
    fl_opts lo = {.port = s->cmd[0].p.port, .port2 = s->cmd[1].p.port, .threads = 4,
                  .pace_ms = 5, .timeout_ms = 3 * REQUEST_TIMEOUT_MS, .hot_post = true,
                  .tag = "scale"};
    int64_t t0 = sm_mono_ms();
    s->load = fl_start(&lo);
    assert_non_null(s->load);
    phase(s, 3000);
    /* each kill meets a burst on the hot post besides the steady load: the
     * commands queue on one post while the relay and the consumers move */
    assert_int_equal(fl_burst(s->load, 8), 8);
    o->relay = kill_publisher(s);
    phase(s, 2000);
    assert_int_equal(fl_burst(s->load, 8), 8);
    o->query_takeover_ms = kill_query(s, 0);
    phase(s, 1000); /* the load went on through the takeover, and a little after */
    fl_stop(s->load);
    o->load_ms = sm_mono_ms() - t0;

    fl_op *ops = fl_ops(s->load, &o->requests);
    fc_count_outcomes(ops, o->requests, &o->c);
    fc_store *store = fc_check_store(s->es_path, ops, o->requests, &o->c);
    assert_non_null(store);
    /* the survivor of the last kill (both serve the one read model) */
    fc_check_projection(store, s->query[1].p.port, (int)(120000 * s->scale), &o->c);
    o->converge_ms = sm_mono_ms() - s->last_kill;
    fc_store_free(store);
    /* back to two: the partitions are shared again (restarting under load
     * is fault_query_api_kill9's) */
    start_query(s, 0);
    o->check_ms = sm_mono_ms() - t0 - o->load_ms;
    fl_free(s->load);
    s->load = NULL;
    rw_stop(s->watch);
    rw_get(s->watch, &s->w);

    o->gaps_now = fp_metric(s->query[0].p.port, "smpost_events_gap_total") +
                  fp_metric(s->query[1].p.port, "smpost_events_gap_total");
    o->out_of_order = gap_lines(s);
    o->reread = fp_metric(s->query[0].p.port, "smpost_events_duplicate_total") +
                fp_metric(s->query[1].p.port, "smpost_events_duplicate_total");
    o->in_topic = topic_messages(s);
    o->kafka_dups = o->in_topic - o->c.events;
}

static void print_outcome(const scale *s, const outcome *o)
{
    const fc_counts *c = &o->c;
    long revokes = fp_count_lines(s->query[1].log, " event=partitions_revoked ");
    long refused = fp_count_lines(s->query[1].log, " committed=-1 ");
    printf("SCALE%s accepted=%ld stored=%ld projected=%ld lost=%ld duplicated=%ld out_of_order=%ld "
           "relay_takeover_ms=%lld first_publish_ms=%lld publishers_seen=%d "
           "publisher_overlaps=%ld query_takeover_ms=%lld converge_ms=%lld "
           "kafka_duplicates=%lld reread=%.0f "
           "unknown=%ld not_sent=%ld rejected_503=%ld rejected_other=%ld max_latency_ms=%lld "
           "posts=%ld events=%ld\n",
           test_broker_is_real() ? "_realkafka" : "", c->accepted, c->stored, c->projected, c->lost, c->duplicated, o->out_of_order,
           (long long)o->relay.role_ms, (long long)o->relay.publish_ms, s->w.tenures,
           s->w.overlaps + s->w.stale, (long long)o->query_takeover_ms,
           (long long)o->converge_ms, (long long)o->kafka_dups, o->reread, c->unknown, c->not_sent, c->rejected_503,
           c->rejected_other, (long long)c->max_latency_ms, c->posts, c->events);
    printf("# load %lld ms, verification %lld ms, %zu requests; watcher: %ld rounds, %ld too "
           "slow to tell; topic %lld messages for %ld events; query-api-b gave partitions up "
           "%ld times (%ld with a confirmed commit)\n",
           (long long)o->load_ms, (long long)o->check_ms, o->requests, s->w.rounds,
           s->w.inconclusive, (long long)o->in_topic, c->events, revokes, revokes - refused);
    fflush(stdout);
}

static void assert_outcome(const scale *s, const outcome *o)
{
    const fc_counts *c = &o->c;
    fc_assert_invariants(c, REQUEST_TIMEOUT_MS);
    assert_int_equal(o->out_of_order, 0);
    assert_true(o->gaps_now == 0);
    assert_int_equal(s->w.overlaps, 0);
    assert_int_equal(s->w.stale, 0);
    assert_true(s->w.tenures >= 2); /* the first publisher and its successor */
    /* the survivor's takeover (about 11 s on the local broker), a second of
     * load, and catching up: under 15 s in all on the local broker (issue
     * 17). A real broker's takeover depends on its group settings (6.6 to
     * 13.3 s measured, docs/operations.md): printed, not bounded. */
    if (!test_broker_is_real() && o->converge_ms > (int64_t)(CONVERGE_BOUND_MS * s->scale))
        fail_msg("the survivor showed every acknowledged write %lld ms after the last kill "
                 "(bound %d ms)", (long long)o->converge_ms, CONVERGE_BOUND_MS);
    if (o->in_topic < 0 || o->kafka_dups < 0 || o->kafka_dups > RELAY_BATCH)
        fail_msg("the topic holds %lld messages for %ld events: more than one relay round "
                 "(%d) published twice", (long long)o->in_topic, c->events, RELAY_BATCH);
}

static void test_two_of_each_on_one_store_topic_and_read_model(void **state)
{
    scale *s = *state;
    start_all(s);
    check_identity(&s->cmd[0], "command-api");
    check_identity(&s->cmd[1], "command-api");
    check_identity(&s->query[0], "query-api");
    check_identity(&s->query[1], "query-api");
    int first = wait_one_publisher(s, 20000);
    printf("# relay publisher at start: %s\n", s->cmd[first].id);
    wait_partitions_shared(s, "start");

    outcome o = {0};
    run_load(s, &o);
    print_outcome(s, &o);
    assert_outcome(s, &o);
    wait_partitions_shared(s, "end");
    /* the survivor gave partitions back to the restarted one, through the
     * rebalance callback */
    assert_true(fp_count_lines(s->query[1].log, " event=partitions_revoked ") >= 1);

    for (int i = 0; i < 2; i++) {
        fp_stop_gracefully(&s->query[i].p, s->query[i].name, QUERY_SHUTDOWN_MS);
        fp_stop_gracefully(&s->cmd[i].p, s->cmd[i].name, CMD_SHUTDOWN_MS);
    }
    s->passed = true;
}

int main(void)
{
    int rc = test_broker_check("scale_out");
    if (rc)
        return rc;
    api_bin = getenv("SMPOST_COMMAND_API_BIN");
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    broker_bin = getenv("SMPOST_DEVBROKER_BIN");
    if (!api_bin || !query_bin || !broker_bin) {
        fprintf(stderr, "binaries not set (run through ctest)\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_of_each_on_one_store_topic_and_read_model,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("scale_out", tests, NULL, NULL);
}
