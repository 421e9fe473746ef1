/* SPDX-License-Identifier: Apache-2.0 */
/* test_idle_keepalive.c — idle keep-alive connections do not freeze a
 * service.
 *
 * civetweb gives each connection one worker thread for as long as it is
 * open, idle keep-alive time included. With 32 workers, a client pool or a
 * proxy holding 32 idle connections made every new request wait for a
 * keep-alive timeout (30 s then). Against the real binaries (both use
 * common/http_server.c), with their default worker pool:
 *  - 256 idle keep-alive connections, each after one answered request, and
 *    new requests on fresh connections still answer within BOUND_MS (the
 *    median of SAMPLES after WARMUP; every one must answer within CALL_MS);
 *  - a server with fewer workers than connections answers every request
 *    and closes the connections it cannot keep (Connection: close), so a
 *    new request still gets a worker at once;
 *  - an idle connection is closed after SMPOST_HTTP_KEEP_ALIVE_MS.
 * The idle connections are held open throughout (checked before and after
 * the measurement), with SMPOST_HTTP_KEEP_ALIVE_MS long enough that the
 * timeout does not end them first on a slow machine.
 *
 * File descriptors: this process and the server each hold IDLE sockets
 * and more; the soft RLIMIT_NOFILE is raised to cover that (the server
 * inherits it), and the test fails, naming the limit, if the hard limit is
 * too low. Binaries: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN. */
#include "http_client.h"
#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define IDLE 256          /* idle keep-alive connections held */
#define WARMUP 3          /* fresh requests not counted */
#define SAMPLES 21        /* fresh requests measured */
#define BOUND_MS 100.0    /* the bound for a loopback request: the median */
#define CALL_MS 2000      /* longest wait for any one answer */
#define HOLD_MS "60000"   /* keep-alive timeout while connections are held */
#define SHORT_MS 500      /* keep-alive timeout of the timeout test */
#define FDS_NEEDED (IDLE + 128)

static char dir[256];
/* What a test started, for its teardown to release when it fails. */
static test_proc server;
static int fds[IDLE];
static bool closing[IDLE]; /* the answer on fds[i] said Connection: close */
static int nfds;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Starts command-api or query-api on a free port with the keep-alive
 * timeout keep_alive_ms (SMPOST_HTTP_KEEP_ALIVE_MS, so a binary without
 * the setting ignores it) and threads workers (NULL: the default). */
static void start(test_proc *p, const char *name, const char *keep_alive_ms,
                  const char *threads)
{
    bool cmd = strcmp(name, "command-api") == 0;
    const char *bin = getenv(cmd ? "SMPOST_COMMAND_API_BIN" : "SMPOST_QUERY_API_BIN");
    if (!bin || !*bin)
        fail_msg("the %s binary is not set (tests/CMakeLists.txt sets it)", name);
    p->port = test_free_port();
    char port[16], data[400], log[400];
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(data, sizeof data, "sqlite:%s/%s-%d.db", dir, name, p->port);
    snprintf(log, sizeof log, "%s/%s-%d.log", dir, name, p->port);
    char *argv[] = {(char *)bin, "--port", port, cmd ? "--event-store" : "--read-model", data,
                    "--kafka-bootstrap", "none", "--log-level", "warn",
                    threads ? "--threads" : NULL, (char *)threads, NULL};
    setenv("SMPOST_HTTP_KEEP_ALIVE_MS", keep_alive_ms, 1);
    bool started = test_proc_start(p, argv, log);
    unsetenv("SMPOST_HTTP_KEEP_ALIVE_MS");
    assert_true(started);
    if (!test_proc_wait_http(p->port, 10000))
        fail_msg("%s did not come up on port %d; see %s", name, p->port, log);
}

/* Opens n connections (into fds, closing) and has each answer GET
 * /health, leaving it open. Fails the test if any request is not
 * answered. */
static void open_idle(const char *name, int port, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = http_conn_open(port, CALL_MS);
        if (fds[i] < 0)
            fail_msg("%s: connection %d of %d could not be opened", name, i + 1, n);
        nfds = i + 1;
        http_resp r;
        double t0 = now_ms();
        http_call_result rc = http_conn_call(fds[i], "GET", "/health", "", CALL_MS, &r);
        if (rc != HTTP_CALL_OK || r.status != 200)
            fail_msg("%s: with %d idle keep-alive connections open, request %d got %s after "
                     "%.0f ms",
                     name, i, i + 1, rc == HTTP_CALL_TIMEOUT ? "no answer" : "a failure",
                     now_ms() - t0);
        char conn[32];
        closing[i] = http_resp_header(&r, "Connection", conn, sizeof conn) &&
                     strcasecmp(conn, "close") == 0;
        http_resp_free(&r);
    }
}

/* Closes the connections and stops the server (SIGTERM: it must exit 0). */
static void release(void)
{
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    nfds = 0;
    if (server.pid > 0)
        assert_int_equal(test_proc_stop(&server, SIGTERM, 10000), 0);
}

/* After a failed test: what it left behind. */
static int test_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    nfds = 0;
    if (server.pid > 0)
        test_proc_stop(&server, SIGKILL, 5000);
    return 0;
}

/* How many of fds[0..n) the server has closed. */
static int count_closed(int n)
{
    int closed = 0;
    for (int i = 0; i < n; i++)
        closed += http_conn_closed(fds[i]);
    return closed;
}

/* The median time of SAMPLES GET /health on fresh connections (after
 * WARMUP); *max gets the slowest. Fails the test if one is not answered
 * within CALL_MS. */
static double fresh_median(const char *name, int port, double *max)
{
    double ms[SAMPLES];
    for (int i = -WARMUP; i < SAMPLES; i++) {
        http_resp r;
        double t0 = now_ms();
        int rc = http_call(port, "GET", "/health", "", NULL, 0, CALL_MS, &r);
        double took = now_ms() - t0;
        if (rc != 0 || r.status != 200)
            fail_msg("%s: a new request got %s after %.0f ms", name,
                     rc ? "no answer" : "an error", took);
        http_resp_free(&r);
        if (i >= 0)
            ms[i] = took;
    }
    qsort(ms, SAMPLES, sizeof ms[0], cmp_double);
    *max = ms[SAMPLES - 1];
    return ms[SAMPLES / 2];
}

static void test_new_requests_answer_while_256_idle_keepalive_connections_are_open(void **state)
{
    (void)state;
    const char *names[] = {"command-api", "query-api"};
    for (size_t b = 0; b < 2; b++) {
        start(&server, names[b], HOLD_MS, NULL);
        open_idle(names[b], server.port, IDLE);
        for (int i = 0; i < IDLE; i++)
            if (closing[i])
                fail_msg("%s: idle connection %d of %d was answered with Connection: close",
                         names[b], i + 1, IDLE);
        assert_int_equal(count_closed(IDLE), 0);
        double max, median = fresh_median(names[b], server.port, &max);
        print_message("%s: %d idle keep-alive connections open: new GET /health on a fresh "
                      "connection median %.2f ms, max %.2f ms (%d samples)\n",
                      names[b], IDLE, median, max, SAMPLES);
        int closed = count_closed(IDLE);
        if (closed)
            fail_msg("%s: %d idle connections were closed during the measurement", names[b],
                     closed);
        if (median >= BOUND_MS)
            fail_msg("%s: median %.2f ms with %d idle connections (bound %.0f ms)", names[b],
                     median, IDLE, BOUND_MS);
        release();
    }
}

/* 8 workers, 24 connections that each ask one question and then idle: every
 * question is answered; the connections the server cannot keep without
 * running out of workers are answered with Connection: close and closed,
 * and a new request still answers at once. */
static void test_more_idle_connections_than_workers_are_closed_after_their_answer(void **state)
{
    (void)state;
    enum { WORKERS = 8, CONNS = 3 * WORKERS };
    start(&server, "command-api", HOLD_MS, "8");
    open_idle("command-api with 8 workers", server.port, CONNS);
    int told = 0;
    for (int i = 0; i < CONNS; i++)
        told += closing[i];
    double max, median = fresh_median("command-api with 8 workers", server.port, &max);
    print_message("8 workers, %d connections: %d kept alive, %d answered with Connection: close; "
                  "new GET /health median %.2f ms, max %.2f ms\n",
                  CONNS, CONNS - told, told, median, max);
    /* keep-alive still works below the limit; above it every connection
     * was told, and those told are closed (give the server a moment) */
    assert_true(told < CONNS);
    assert_true(CONNS - told < WORKERS);
    usleep(200 * 1000);
    for (int i = 0; i < CONNS; i++)
        if (http_conn_closed(fds[i]) != closing[i])
            fail_msg("connection %d: told to close %d, closed %d", i + 1, closing[i], !closing[i]);
    if (median >= BOUND_MS)
        fail_msg("median %.2f ms with more connections than workers (bound %.0f ms)", median,
                 BOUND_MS);
    release();
}

static void test_an_idle_keepalive_connection_is_closed_after_the_keepalive_timeout(void **state)
{
    (void)state;
    const int timeout = SHORT_MS, margin = 1500;
    char ms[16];
    snprintf(ms, sizeof ms, "%d", timeout);
    start(&server, "query-api", ms, NULL);
    open_idle("query-api", server.port, 1);
    assert_false(closing[0]);
    double t0 = now_ms(), closed_after = -1;
    while (now_ms() - t0 < timeout + margin) {
        if (http_conn_closed(fds[0])) {
            closed_after = now_ms() - t0;
            break;
        }
        usleep(10 * 1000);
    }
    print_message("keep-alive timeout %d ms: the idle connection was closed after %.0f ms\n",
                  timeout, closed_after);
    if (closed_after < 0)
        fail_msg("an idle connection was still open %d ms after its answer (timeout %d ms)",
                 timeout + margin, timeout);
    assert_true(closed_after >= timeout - 50);
    release();
}

/* Raises the soft limit on open files to FDS_NEEDED if it is lower. */
static int ensure_fds(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur >= FDS_NEEDED)
        return 0;
    if (rl.rlim_max < FDS_NEEDED) {
        fprintf(stderr, "test_idle_keepalive needs %d open files; the hard limit is %llu\n",
                FDS_NEEDED, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = FDS_NEEDED;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

static int group_setup(void **state)
{
    (void)state;
    if (ensure_fds() != 0)
        return -1;
    return test_temp_dir("smpost-keepalive", dir, sizeof dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    test_rm_rf(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_new_requests_answer_while_256_idle_keepalive_connections_are_open, test_teardown),
        cmocka_unit_test_teardown(
            test_more_idle_connections_than_workers_are_closed_after_their_answer, test_teardown),
        cmocka_unit_test_teardown(
            test_an_idle_keepalive_connection_is_closed_after_the_keepalive_timeout,
            test_teardown),
    };
    return cmocka_run_group_tests_name("idle_keepalive", tests, group_setup, group_teardown);
}
