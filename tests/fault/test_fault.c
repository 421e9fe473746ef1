/* SPDX-License-Identifier: Apache-2.0 */
/* test_fault.c — fault tests: the whole system on the embedded default
 * (smpost-devbroker, command-api on SQLite, query-api on SQLite), as
 * separate processes, under a steady mixed command load (fault_load.h)
 * while one component fails; afterwards every accepted command must be in
 * the event store exactly once and visible in the read model, nothing
 * duplicated, no version gap, no request hanging past the documented
 * request timeout (fault_check.h). Each run prints one summary line:
 *
 *   FAULT scenario=<name> accepted=N stored=N projected=N lost=0 duplicated=0 ...
 *
 * One scenario per run, `test_fault <scenario>`; ctest runs each as
 * fault_<scenario> (label "fault"):
 *   command_api_kill9    kill -9 command-api twice, restart it on its port
 *   query_api_kill9      kill -9 query-api twice, restart it
 *   broker_down_up       all brokers down (SIGUSR1) for seconds, then up
 *   broker_replaced      broker killed; a fresh, empty one; both services
 *                        restarted on it with SIGTERM (the relay republishes
 *                        the store, the projection skips what it has)
 *   store_outage         the event store locked by another writer for
 *                        longer than the request timeout: 503 + Retry-After
 *   sigterm_command_api  SIGTERM while requests are in flight (held by a
 *                        short store lock): they complete, exit 0 in time
 *   sigterm_query_api    SIGTERM, exit 0 in time; the restart resumes after
 *                        the committed offsets (re-applies nothing)
 *   read_model_outage_kill9    the read model locked by another writer
 *                        (every apply fails as unavailable and is retried),
 *                        query-api killed with -9 before it comes back,
 *                        restarted once it is: no event lost or doubled
 *                        (an offset committed before its apply would lose
 *                        the event in hand)
 *   read_model_outage_sigterm  the same with SIGTERM instead of -9 (the
 *                        final commit at close must not cover that event)
 * Every run also stops both services with SIGTERM at the end and checks
 * they exit 0 within the documented bound.
 *
 * Environment: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN,
 * SMPOST_DEVBROKER_BIN (set by ctest); SMPOST_FAULT_SCALE (default 1)
 * stretches the load phases; SMPOST_FAULT_OUTAGE_MS (default 12000) is the
 * store outage; SMPOST_TEST_KEEP keeps the directory (it is also kept, and
 * named, when the run fails). */
#include "fault_check.h"
#include "fault_load.h"
#include "fault_proc.h"
#include "sm_time.h"
#include "sqlite_pool.h"
#include "http_client.h"
#include "broker.h"
#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    F_CMD_UP = 1,      /* command-api never stops: every request gets a reply */
    F_NO_503 = 2,      /* the fault is not on the request path */
    F_NEEDS_503 = 4,   /* the fault must show as 503s */
    F_CLEAN_STOP = 8,  /* command-api only stops gracefully: no unanswered request stored */
    F_NO_REREAD = 16,  /* query-api restarted from committed offsets: re-read nothing */
};

typedef struct sys {
    char dir[256], es_path[300], es_url[320], rm_path[300], rm_url[320], bootstrap[128];
    test_proc broker, cmd, query;
    int cmd_port, query_port;
    fl_load *load;
    double scale;
    int64_t term_at; /* sigterm_command_api: when SIGTERM was sent (load clock) */
    bool passed;     /* keep the directory unless the scenario passed */
} sys;

typedef struct scenario {
    const char *name;
    void (*inject)(sys *s);
    unsigned flags;
} scenario;

static const char *api_bin, *query_bin, *broker_bin;
static const scenario *current;

/* A load phase, stretched by SMPOST_FAULT_SCALE. */
static void phase(const sys *s, int ms) { sm_sleep_ms((int)(ms * s->scale)); }

/* --- the processes ------------------------------------------------------ */

static void start_broker(sys *s)
{
    if (!test_start_devbroker(&s->broker, broker_bin, s->dir, 6, s->bootstrap,
                              sizeof s->bootstrap))
        fail_msg("smpost-devbroker did not start (see %s)", s->dir);
}

static void start_cmd(sys *s)
{
    char port[16];
    s->cmd.port = s->cmd_port;
    snprintf(port, sizeof port, "%d", s->cmd_port);
    char *argv[] = {(char *)api_bin, "--port", port, "--event-store", s->es_url,
                    "--kafka-bootstrap", s->bootstrap, NULL};
    fp_start_service(s->dir, &s->cmd, argv, "command-api");
}

static void start_query(sys *s)
{
    char port[16];
    s->query.port = s->query_port;
    snprintf(port, sizeof port, "%d", s->query_port);
    char *argv[] = {(char *)query_bin, "--port", port, "--read-model", s->rm_url,
                    "--kafka-bootstrap", s->bootstrap, "--min-version-wait-ms", "10000", NULL};
    fp_start_service(s->dir, &s->query, argv, "query-api");
}

/* Waits until command-api's /health reports Kafka as want. */
static bool wait_kafka(sys *s, const char *want, int timeout_ms)
{
    for (int64_t until = sm_mono_ms() + timeout_ms; sm_mono_ms() < until; sm_sleep_ms(200)) {
        http_resp r;
        if (http_call(s->cmd_port, "GET", "/health", "", NULL, 0, 5000, &r) != 0)
            continue;
        const char *st = json_string_value(json_object_get(json_object_get(r.json, "kafka"),
                                                           "status"));
        bool hit = st && strcmp(st, want) == 0;
        http_resp_free(&r);
        if (hit)
            return true;
    }
    return false;
}

/* Another connection takes a database's write lock (BEGIN EXCLUSIVE) and
 * holds it: for the service writing there the database is unavailable for
 * writes, as when another process or a stuck transaction holds it. In WAL
 * mode readers go on. */
static sqlite3 *lock_db(const char *path, const char *what)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 20000);
    int rc = sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fail_msg("cannot lock the %s: %s", what, sqlite3_errmsg(db));
    return db;
}

static sqlite3 *lock_store(sys *s) { return lock_db(s->es_path, "event store"); }

static void unlock_db(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* --- the faults --------------------------------------------------------- */

static void inject_command_api_kill9(sys *s)
{
    for (int cycle = 0; cycle < 2; cycle++) {
        phase(s, 1500);
        fp_kill9(&s->cmd, "command-api");
        sm_sleep_ms(500); /* clients meet a closed port */
        start_cmd(s);
    }
}

static void inject_query_api_kill9(sys *s)
{
    for (int cycle = 0; cycle < 2; cycle++) {
        phase(s, 1500);
        fp_kill9(&s->query, "query-api");
        sm_sleep_ms(500);
        start_query(s);
    }
}

static void inject_broker_down_up(sys *s)
{
    assert_true(test_broker_fault_inject(&s->broker, TEST_BROKER_DOWN));
    if (!wait_kafka(s, "down", 20000))
        fail_msg("command-api did not notice the broker going down");
    printf("# broker down (command-api /health: kafka down)\n");
    phase(s, 3000); /* commands go on meanwhile, into the outbox */
    assert_true(test_broker_fault_inject(&s->broker, TEST_BROKER_UP));
    if (!wait_kafka(s, "up", 30000))
        fail_msg("command-api did not see the broker come back");
    printf("# broker up again\n");
}

static void inject_broker_replaced(sys *s)
{
    test_proc_stop(&s->broker, SIGKILL, 5000);
    start_broker(s); /* empty, another address and cluster id */
    printf("# broker replaced: %s\n", s->bootstrap);
    fp_stop_gracefully(&s->cmd, "command-api", CMD_SHUTDOWN_MS);
    start_cmd(s);
    fp_stop_gracefully(&s->query, "query-api", QUERY_SHUTDOWN_MS);
    start_query(s);
}

static int outage_ms(void)
{
    const char *v = getenv("SMPOST_FAULT_OUTAGE_MS");
    return v && atoi(v) > 0 ? atoi(v) : 12000;
}

static void inject_store_outage(sys *s)
{
    sqlite3 *db = lock_store(s);
    int64_t t0 = fl_elapsed_ms(s->load);
    /* besides the steady load, several likes on one post at once: they
     * queue on that post inside command-api, and still none may take
     * longer than the request timeout */
    assert_int_equal(fl_burst(s->load, 6), 6);
    sm_sleep_ms(outage_ms());
    unlock_db(db);
    printf("# event store locked from %lld to %lld ms of the load\n", (long long)t0,
           (long long)fl_elapsed_ms(s->load));
}

/* Commands held in flight by a short store lock (shorter than the busy
 * timeout, so they succeed) when SIGTERM arrives: each must get its reply. */
static void inject_sigterm_command_api(sys *s)
{
    sqlite3 *db = lock_store(s);
    sm_sleep_ms(500);
    int64_t t_term = fl_elapsed_ms(s->load), t0 = sm_mono_ms();
    kill(s->cmd.pid, SIGTERM);
    sm_sleep_ms(2000);
    unlock_db(db);
    int rc = fp_wait_exit(&s->cmd, CMD_SHUTDOWN_MS);
    printf("# command-api: SIGTERM with requests in flight -> exit %d after %lld ms (bound %d ms)\n",
           rc, (long long)(sm_mono_ms() - t0), CMD_SHUTDOWN_MS);
    if (rc != 0)
        fail_msg("command-api did not exit 0 within %d ms of SIGTERM (status %d)",
                 CMD_SHUTDOWN_MS, rc);
    s->term_at = t_term; /* checked once the load stopped: check_in_flight */
    start_cmd(s);
}

static void inject_sigterm_query_api(sys *s)
{
    phase(s, 1000);
    fp_stop_gracefully(&s->query, "query-api", QUERY_SHUTDOWN_MS);
    sm_sleep_ms(500);
    start_query(s);
}

/* The read model locked for longer than an apply waits for it (the
 * projector meets SQLITE_BUSY, rewinds and retries), then query-api stopped
 * (kill -9, or SIGTERM) while it is still locked, and restarted once the
 * lock is gone: the event it had in hand must be applied after the
 * restart, which it is only if its offset was not committed before. */
static void read_model_outage(sys *s, bool kill9)
{
    char log[320];
    snprintf(log, sizeof log, "%s/query-api.log", s->dir);
    long before = fp_count_lines(log, "event=read_model_unavailable");
    sqlite3 *db = lock_db(s->rm_path, "read model");
    int64_t t0 = fl_elapsed_ms(s->load);
    sm_sleep_ms(SQLITE_POOL_BUSY_MS + 2500); /* past the busy wait: applies fail */
    if (kill9)
        fp_kill9(&s->query, "query-api");
    else
        fp_stop_gracefully(&s->query, "query-api", QUERY_SHUTDOWN_MS);
    long failed = fp_count_lines(log, "event=read_model_unavailable") - before;
    unlock_db(db);
    printf("# read model locked from %lld to %lld ms of the load; query-api stopped (%s) in "
           "it after %ld failed applies\n",
           (long long)t0, (long long)fl_elapsed_ms(s->load), kill9 ? "kill -9" : "SIGTERM",
           failed);
    assert_true(failed > 0); /* the outage was met, not slept through */
    sm_sleep_ms(500);
    start_query(s);
}

static void inject_read_model_outage_kill9(sys *s) { read_model_outage(s, true); }

static void inject_read_model_outage_sigterm(sys *s) { read_model_outage(s, false); }

static const scenario scenarios[] = {
    {"command_api_kill9", inject_command_api_kill9, 0},
    {"query_api_kill9", inject_query_api_kill9, F_CMD_UP | F_NO_503},
    {"broker_down_up", inject_broker_down_up, F_CMD_UP | F_NO_503},
    {"broker_replaced", inject_broker_replaced, F_CLEAN_STOP},
    {"store_outage", inject_store_outage, F_CMD_UP | F_NEEDS_503},
    {"sigterm_command_api", inject_sigterm_command_api, F_CLEAN_STOP},
    {"sigterm_query_api", inject_sigterm_query_api, F_CMD_UP | F_NO_503 | F_NO_REREAD},
    {"read_model_outage_kill9", inject_read_model_outage_kill9, F_CMD_UP | F_NO_503},
    {"read_model_outage_sigterm", inject_read_model_outage_sigterm, F_CMD_UP | F_NO_503},
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* --- the run ------------------------------------------------------------ */

static int setup(void **state)
{
    sys *s = calloc(1, sizeof *s);
    if (!s || !test_temp_dir("smpost-fault", s->dir, sizeof s->dir))
        return -1;
    const char *scale = getenv("SMPOST_FAULT_SCALE");
    s->scale = scale && atof(scale) > 0 ? atof(scale) : 1.0;
    s->term_at = -1;
    snprintf(s->es_path, sizeof s->es_path, "%s/events.db", s->dir);
    snprintf(s->es_url, sizeof s->es_url, "sqlite:%s", s->es_path);
    snprintf(s->rm_path, sizeof s->rm_path, "%s/readmodel.db", s->dir);
    snprintf(s->rm_url, sizeof s->rm_url, "sqlite:%s", s->rm_path);
    s->cmd_port = test_free_port();
    s->query_port = test_free_port();
    *state = s;
    start_broker(s);
    start_cmd(s);
    start_query(s);
    return 0;
}

static int teardown(void **state)
{
    sys *s = *state;
    if (!s)
        return 0;
    if (s->load) { /* a failed assertion left it running */
        fl_stop(s->load);
        fl_free(s->load);
    }
    if (s->query.pid > 0)
        test_proc_stop(&s->query, SIGKILL, 2000);
    if (s->cmd.pid > 0)
        test_proc_stop(&s->cmd, SIGKILL, 2000);
    fp_finish(&s->broker, s->dir, s->passed);
    free(s);
    return 0;
}

/* sigterm_command_api: the requests in flight when SIGTERM arrived must
 * each have been answered (2xx, or an error status), none cut off. */
static void check_in_flight(const sys *s, const fl_op *ops, size_t n)
{
    long in_flight = 0, answered = 0;
    for (size_t i = 0; i < n; i++) {
        const fl_op *op = &ops[i];
        if (op->started_ms > s->term_at || op->started_ms + op->latency_ms < s->term_at)
            continue;
        in_flight++;
        answered += op->outcome == FL_ACCEPTED || op->outcome == FL_REJECTED;
        if (op->outcome != FL_ACCEPTED)
            printf("# in flight at SIGTERM: %s -> %s %d\n", fl_kind_name(op->kind),
                   op->outcome == FL_REJECTED ? "status" : "no reply", op->status);
    }
    printf("# in flight at SIGTERM: %ld, answered: %ld\n", in_flight, answered);
    assert_true(in_flight > 0);
    assert_int_equal(answered, in_flight);
}

static void assert_counts(const fc_counts *c, unsigned flags)
{
    fc_assert_invariants(c, REQUEST_TIMEOUT_MS);
    if (flags & F_CMD_UP) {
        assert_int_equal(c->unknown, 0);
        assert_int_equal(c->not_sent, 0);
    }
    if (flags & F_NO_503)
        assert_int_equal(c->rejected_503, 0);
    if (flags & F_NEEDS_503)
        assert_true(c->rejected_503 > 0);
    if (flags & F_CLEAN_STOP)
        assert_int_equal(c->unknown_stored, 0);
}

static void test_scenario(void **state)
{
    sys *s = *state;
    const scenario *sc = current;
    fl_opts lo = {.port = s->cmd_port, .threads = 4, .pace_ms = 5,
                  .timeout_ms = 3 * REQUEST_TIMEOUT_MS, .hot_post = true, .tag = sc->name};
    int64_t t0 = sm_mono_ms();
    s->load = fl_start(&lo);
    assert_non_null(s->load);
    phase(s, 3000);
    sc->inject(s);
    phase(s, 3000);
    fl_stop(s->load);
    int64_t t_load = sm_mono_ms() - t0;

    size_t n;
    fl_op *ops = fl_ops(s->load, &n);
    fc_counts c = {0};
    fc_count_outcomes(ops, n, &c);
    fc_store *store = fc_check_store(s->es_path, ops, n, &c);
    assert_non_null(store);
    fc_check_projection(store, s->query_port, (int)(120000 * s->scale), &c);
    fc_store_free(store);
    int64_t t_check = sm_mono_ms() - t0 - t_load;
    if (s->term_at >= 0)
        check_in_flight(s, ops, n);
    fl_free(s->load);
    s->load = NULL;
    char name[80];
    snprintf(name, sizeof name, "%s%s", sc->name, test_broker_is_real() ? "_realkafka" : "");
    fc_print(name, &c);
    printf("# load %lld ms, verification %lld ms, %zu requests\n", (long long)t_load,
           (long long)t_check, n);
    if (sc->flags & F_NO_REREAD) {
        /* the restarted query-api resumed after the offsets committed at
         * SIGTERM: it applied the new events and re-read none */
        double dups = fp_metric(s->query_port, "smpost_events_duplicate_total");
        printf("# query-api after a graceful restart: %.0f events re-read\n", dups);
        assert_true(dups == 0);
    }
    assert_counts(&c, sc->flags);
    /* the end of every scenario: both services stop gracefully */
    fp_stop_gracefully(&s->query, "query-api", QUERY_SHUTDOWN_MS);
    fp_stop_gracefully(&s->cmd, "command-api", CMD_SHUTDOWN_MS);
    s->passed = true;
}

int main(int argc, char **argv)
{
    int rc = test_broker_check("fault");
    if (rc)
        return rc;
    api_bin = getenv("SMPOST_COMMAND_API_BIN");
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    broker_bin = getenv("SMPOST_DEVBROKER_BIN");
    if (!api_bin || !query_bin || !broker_bin) {
        fprintf(stderr, "binaries not set (run through ctest)\n");
        return 1;
    }
    for (size_t i = 0; argc == 2 && i < NSCENARIOS; i++)
        if (strcmp(argv[1], scenarios[i].name) == 0)
            current = &scenarios[i];
    if (!current) {
        fprintf(stderr, "usage: %s <scenario>; scenarios:", argv[0]);
        for (size_t i = 0; i < NSCENARIOS; i++)
            fprintf(stderr, " %s", scenarios[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scenario, setup, teardown),
    };
    return cmocka_run_group_tests_name(current->name, tests, NULL, NULL);
}
