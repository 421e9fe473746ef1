/* SPDX-License-Identifier: Apache-2.0 */
/* test_query_api_stop.c — SIGTERM on the real query-api binary, with the
 * local broker (smpost-devbroker) gone or still there:
 *  - gone (killed with SIGKILL after query-api consumed something, as when
 *    a script stopped it first): query-api exits 0 within 2 s, instead of
 *    waiting out its commit and close bounds for a broker that will not
 *    answer, even right after a request (civetweb's listener poll);
 *  - there: the final offsets are still committed and confirmed and the
 *    group left (consumer_closed committed_partitions=1 left_group=1
 *    broker=up).
 * Binaries from SMPOST_QUERY_API_BIN and SMPOST_DEVBROKER_BIN (ctest). */
#include "http_client.h"
#include "broker.h"
#include "proc.h"
#include "sm_event.h"
#include "sm_time.h"

#include <librdkafka/rdkafka.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC "SocialMediaPostEvents"
#define EXIT_BOUND_MS 2000 /* issue 14, item 12 */

static const char *query_bin, *broker_bin;

typedef struct fixture {
    char dir[256], bootstrap[128], log[320];
    test_proc broker, query;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !test_temp_dir("smpost-qstop", f->dir, sizeof f->dir) ||
        !test_start_devbroker(&f->broker, broker_bin, f->dir, 3, f->bootstrap,
                              sizeof f->bootstrap))
        return -1;
    char port[16], rm[320];
    f->query.port = test_free_port();
    snprintf(port, sizeof port, "%d", f->query.port);
    snprintf(rm, sizeof rm, "sqlite:%s/readmodel.db", f->dir);
    snprintf(f->log, sizeof f->log, "%s/query-api.log", f->dir);
    char *argv[] = {(char *)query_bin, "--port", port, "--read-model", rm, "--kafka-bootstrap",
                    f->bootstrap, NULL};
    if (!test_proc_start(&f->query, argv, f->log) || !test_proc_wait_http(f->query.port, 30000))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->query.pid > 0)
        test_proc_stop(&f->query, SIGKILL, 2000);
    if (f->broker.pid > 0)
        test_proc_stop(&f->broker, SIGKILL, 2000);
    if (getenv("SMPOST_TEST_KEEP"))
        printf("# kept %s\n", f->dir);
    else
        test_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Publishes n events of one new post (versions 0..n-1), as the relay would. */
static void publish_post(fixture *f, int n)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", f->bootstrap, errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    sm_uuid_str post;
    sm_uuid_new(post);
    for (int v = 0; v < n; v++) {
        sm_event e = {.type = v == 0 ? SM_EV_POST_CREATED : SM_EV_POST_LIKED, .version = v};
        sm_uuid_new(e.event_id);
        strcpy(e.aggregate_id, post);
        e.timestamp_ms = e.at_ms = sm_now_ms();
        e.author = v == 0 ? strdup("alice") : NULL;
        e.message = v == 0 ? strdup("hello") : NULL;
        char *text = sm_event_encode(&e);
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC),
                                           RD_KAFKA_V_KEY(post, strlen(post)),
                                           RD_KAFKA_V_VALUE(text, strlen(text)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
        free(text);
        sm_event_clear(&e);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

/* Waits until query-api's /health says it applied n events. */
static void wait_applied(fixture *f, int n)
{
    json_int_t applied = -1;
    for (int64_t until = sm_mono_ms() + 60000; sm_mono_ms() < until; sm_sleep_ms(100)) {
        http_resp r;
        if (http_call(f->query.port, "GET", "/health", "", NULL, 0, 5000, &r) != 0)
            continue;
        applied = json_integer_value(
            json_object_get(json_object_get(r.json, "consumer"), "applied"));
        http_resp_free(&r);
        if (applied >= n)
            return;
    }
    fail_msg("query-api applied %lld events, not %d, within 60 s", (long long)applied, n);
}

/* SIGTERM; returns the exit status, *took the time to exit. */
static int sigterm(fixture *f, int64_t *took)
{
    int64_t t0 = sm_mono_ms();
    int rc = test_proc_stop(&f->query, SIGTERM, 30000);
    *took = sm_mono_ms() - t0;
    return rc;
}

/* The log's consumer_closed line, or "" if none. */
static void closed_line(fixture *f, char *out, size_t cap)
{
    FILE *fp = fopen(f->log, "r");
    char line[1024];
    out[0] = '\0';
    while (fp && fgets(line, sizeof line, fp))
        if (strstr(line, "event=consumer_closed"))
            snprintf(out, cap, "%s", strstr(line, "event=consumer_closed"));
    if (fp)
        fclose(fp);
    out[strcspn(out, "\n")] = '\0';
}

static void test_query_api_exits_within_2s_of_sigterm_when_the_broker_is_gone(void **state)
{
    fixture *f = *state;
    publish_post(f, 3);
    wait_applied(f, 3);
    assert_int_equal(test_proc_stop(&f->broker, SIGKILL, 5000), 128 + SIGKILL);
    sm_sleep_ms(1000); /* the broker is gone, and query-api has noticed */
    /* a health check just before the signal, as a load balancer makes:
     * civetweb's listener has just started a new 2 s poll */
    http_resp r;
    assert_int_equal(http_call(f->query.port, "GET", "/health", "", NULL, 0, 5000, &r), 0);
    http_resp_free(&r);
    int64_t took;
    int rc = sigterm(f, &took);
    char line[1024];
    closed_line(f, line, sizeof line);
    printf("# broker gone: SIGTERM -> exit %d after %lld ms (bound %d ms); %s\n", rc,
           (long long)took, EXIT_BOUND_MS, line);
    assert_int_equal(rc, 0);
    if (took > EXIT_BOUND_MS)
        fail_msg("query-api took %lld ms to exit after SIGTERM with the broker gone (bound %d)",
                 (long long)took, EXIT_BOUND_MS);
    assert_non_null(strstr(line, "broker=unreachable"));
}

static void test_query_api_confirms_its_offsets_at_sigterm_when_the_broker_is_up(void **state)
{
    fixture *f = *state;
    publish_post(f, 3);
    wait_applied(f, 3);
    int64_t took;
    int rc = sigterm(f, &took);
    char line[1024];
    closed_line(f, line, sizeof line);
    printf("# broker up: SIGTERM -> exit %d after %lld ms; %s\n", rc, (long long)took, line);
    assert_int_equal(rc, 0);
    /* one post: one partition's offset committed, confirmed; group left */
    assert_non_null(strstr(line, "committed_partitions=1 "));
    assert_non_null(strstr(line, "left_group=1"));
    assert_non_null(strstr(line, "broker=up"));
}

int main(void)
{
    int rc = test_broker_check("query_api_stop");
    if (rc)
        return rc;
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    broker_bin = getenv("SMPOST_DEVBROKER_BIN");
    if (!query_bin || !broker_bin) {
        fprintf(stderr, "binaries not set (run through ctest)\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_query_api_exits_within_2s_of_sigterm_when_the_broker_is_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_query_api_confirms_its_offsets_at_sigterm_when_the_broker_is_up, setup,
            teardown),
    };
    return cmocka_run_group_tests_name("query_api_stop", tests, NULL, NULL);
}
