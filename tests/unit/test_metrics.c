/* SPDX-License-Identifier: Apache-2.0 */
/* test_metrics.c — the metrics of both services as a specification
 * (common/sm_histogram.h, common/sm_metrics.h): bucket edges, cumulative
 * rendering, no observation lost by threads that record at once, the HTTP
 * latency histogram per route and status class, and the process_* and
 * smpost_build_info lines. */
#include "sm_histogram.h"
#include "sm_metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The value of the line that starts with `series ` in b (the first). */
static double value_of(const sm_buf *b, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = b->data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    fail_msg("no line '%s' in:\n%s", series, b->data ? b->data : "");
    return -1;
}

static void test_buckets_are_upper_bounds_inclusive_and_rendered_cumulative(void **state)
{
    (void)state;
    static sm_histogram h = SM_HISTOGRAM_INIT(&sm_hist_seconds);
    sm_hist_observe(&h, 400);     /* 0.4 ms */
    sm_hist_observe(&h, 500);     /* exactly 0.5 ms: in le=0.0005 */
    sm_hist_observe(&h, 501);
    sm_hist_observe(&h, 20000000); /* 20 s: only +Inf */
    sm_buf b = {0};
    sm_hist_render(&b, "t_seconds", "route=\"/x\"", &h);
    assert_int_equal(value_of(&b, "t_seconds_bucket{route=\"/x\",le=\"0.0005\"}"), 2);
    assert_int_equal(value_of(&b, "t_seconds_bucket{route=\"/x\",le=\"0.001\"}"), 3);
    assert_int_equal(value_of(&b, "t_seconds_bucket{route=\"/x\",le=\"10\"}"), 3);
    assert_int_equal(value_of(&b, "t_seconds_bucket{route=\"/x\",le=\"+Inf\"}"), 4);
    assert_int_equal(value_of(&b, "t_seconds_count{route=\"/x\"}"), 4);
    double sum = value_of(&b, "t_seconds_sum{route=\"/x\"}");
    assert_true(sum > 20.001 && sum < 20.002);
    assert_int_equal(sm_hist_count(&h), 4);
    sm_buf_free(&b);
    /* no labels: no braces on sum and count */
    static sm_histogram s = SM_HISTOGRAM_INIT(&sm_hist_sizes);
    sm_hist_observe(&s, 3);
    sm_hist_render(&b, "t_members", "", &s);
    assert_int_equal(value_of(&b, "t_members_bucket{le=\"2\"}"), 0);
    assert_int_equal(value_of(&b, "t_members_bucket{le=\"4\"}"), 1);
    assert_int_equal(value_of(&b, "t_members_sum"), 3);
    assert_int_equal(value_of(&b, "t_members_count"), 1);
    sm_buf_free(&b);
}

#define THREADS 4
#define EACH 200000

static sm_histogram shared = SM_HISTOGRAM_INIT(&sm_hist_sizes);

static void *observe_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < EACH; i++) {
        sm_hist_observe(&shared, i % 8);
        sm_metrics_http_observe(i % 2 ? "/a" : "/b", i % 3 ? 200 : 503, 1000);
    }
    return NULL;
}

static void test_threads_recording_at_once_lose_nothing(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observe_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(sm_hist_count(&shared), (uint64_t)THREADS * EACH);
    sm_buf b = {0};
    sm_hist_render(&b, "s", "", &shared);
    /* sum of i % 8 over EACH: EACH / 8 * 28 per thread */
    assert_int_equal(value_of(&b, "s_sum"), (double)THREADS * (EACH / 8) * 28);
    sm_buf_free(&b);
    sm_metrics_render_http(&b);
    double a2 = value_of(&b, "smpost_http_requests_total{route=\"/a\",status=\"200\"}");
    double a5 = value_of(&b, "smpost_http_requests_total{route=\"/a\",status=\"503\"}");
    double b2 = value_of(&b, "smpost_http_requests_total{route=\"/b\",status=\"200\"}");
    double b5 = value_of(&b, "smpost_http_requests_total{route=\"/b\",status=\"503\"}");
    assert_int_equal(a2 + a5 + b2 + b5, (double)THREADS * EACH);
    double h2 = value_of(&b, "smpost_http_request_duration_seconds_count{route=\"/a\",code=\"2xx\"}");
    double h5 = value_of(&b, "smpost_http_request_duration_seconds_count{route=\"/a\",code=\"5xx\"}");
    assert_int_equal(h2, a2);
    assert_int_equal(h5, a5);
    /* every observation took 1 ms: all in le=0.001, none below */
    assert_int_equal(value_of(&b, "smpost_http_request_duration_seconds_bucket{route=\"/a\","
                                  "code=\"2xx\",le=\"0.0005\"}"), 0);
    assert_int_equal(value_of(&b, "smpost_http_request_duration_seconds_bucket{route=\"/a\","
                                  "code=\"2xx\",le=\"0.001\"}"), a2);
    sm_buf_free(&b);
}

static void test_process_and_build_info_lines(void **state)
{
    (void)state;
    sm_buf b = {0};
    sm_metrics_render_info(&b, "query-api", "");
    assert_non_null(strstr(b.data, "smpost_build_info{service=\"query-api\",version=\""));
    assert_null(strstr(b.data, "version=\"unknown\""));
    double rss = value_of(&b, "process_resident_memory_bytes");
    assert_true(rss > 1e6 && rss < 1e10);
    assert_true(value_of(&b, "process_open_fds") >= 3);
    assert_true(value_of(&b, "process_max_fds") >= value_of(&b, "process_open_fds"));
    assert_true(value_of(&b, "process_threads") >= 1);
    assert_true(value_of(&b, "process_cpu_seconds_total") >= 0);
    double start = value_of(&b, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start > now - 600 && start <= now + 2);
    sm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_are_upper_bounds_inclusive_and_rendered_cumulative),
        cmocka_unit_test(test_threads_recording_at_once_lose_nothing),
        cmocka_unit_test(test_process_and_build_info_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
