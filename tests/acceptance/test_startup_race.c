/* SPDX-License-Identifier: Apache-2.0 */
/* test_startup_race.c — a request that reaches a binary while it starts is
 * answered by smpost's routes, never by civetweb's defaults.
 *
 * civetweb listens from inside mg_start(); a server that registers its
 * route only after mg_start() returns has a moment in which civetweb
 * answers by itself: a PUT got "405 PUT method not allowed" in a kill -9
 * restart test. Each round here starts a binary on a port known in
 * advance, connects from the first moment the port accepts (several
 * connections at once, so some land in that moment) and checks every
 * answer: the route's own status and error code, and X-Request-Id, which
 * only http_serve() sends (civetweb's own errors reach the client through
 * the http_error callback as JSON too, but without it). Then it kills the
 * binary with SIGKILL and starts it again on the same data.
 *
 * That moment is short (tens of microseconds: about one start in a few
 * hundred showed it, with the 32 workers of the time), so each binary is
 * also started DELAYED_ROUNDS times with tests/support/startup_delay_shim.c
 * preloaded, which holds mg_start()'s return back by DELAY_MS after
 * civetweb has started serving: with the route registered after mg_start()
 * every one of those starts answered the early requests with civetweb's
 * 405; with the route in mg_start()'s callbacks the delay changes nothing.
 * Binaries: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN; the shim:
 * SMPOST_STARTUP_DELAY_SHIM. */
#include "http_client.h"
#include "proc.h"
#include "sm_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 20        /* plain restarts of each binary */
#define DELAYED_ROUNDS 5 /* restarts with mg_start()'s return delayed */
#define DELAY_MS 200     /* that delay */
#define CLIENTS 4        /* threads connecting at once */
#define ANSWERS 4        /* answers each client collects per round */
#define START_MS 15000   /* longest wait for the port to accept */

static char dir[256];

typedef struct expected {
    const char *method, *path;
    int status;
    const char *error;
} expected;

typedef struct client {
    int port;
    const expected *want;
    pthread_t thread;
    int answers;
    char failure[400]; /* first wrong answer, or "" */
} client;

/* Checks one answer against what the route gives; fills why if wrong. */
static bool answer_ok(const http_resp *r, const expected *w, char *why, size_t cap)
{
    char ctype[80], rid[80];
    const char *err = http_resp_str(r, "error");
    if (r->status == w->status && err && strcmp(err, w->error) == 0 &&
        http_resp_header(r, "Content-Type", ctype, sizeof ctype) &&
        strstr(ctype, "application/json") &&
        http_resp_header(r, "X-Request-Id", rid, sizeof rid))
        return true;
    snprintf(why, cap, "%s %s: got %d, want %d %s from the route; reply %.200s%.100s", w->method,
             w->path, r->status, w->status, w->error, r->head ? r->head : "", r->body);
    return false;
}

/* Connects again and again until the port accepts, then collects ANSWERS
 * answers as fast as it can. Refused connections are the server not
 * listening yet; every answer must be the route's. */
static void *client_main(void *arg)
{
    client *c = arg;
    int64_t give_up = sm_mono_ms() + START_MS;
    while (c->answers < ANSWERS && sm_mono_ms() < give_up) {
        http_resp r;
        http_call_result rc =
            http_call_ex(c->port, c->want->method, c->want->path, "", NULL, 0, 5000, &r);
        if (rc == HTTP_CALL_NOT_SENT)
            continue; /* not listening yet */
        if (rc != HTTP_CALL_OK) {
            snprintf(c->failure, sizeof c->failure, "%s %s: connection accepted, no answer (%d)",
                     c->want->method, c->want->path, rc);
            return NULL;
        }
        bool ok = answer_ok(&r, c->want, c->failure, sizeof c->failure);
        http_resp_free(&r);
        if (!ok)
            return NULL;
        c->answers++;
    }
    if (c->answers < ANSWERS)
        snprintf(c->failure, sizeof c->failure, "the port did not accept within %d ms", START_MS);
    return NULL;
}

/* Makes the next binary started run with the delay shim preloaded (on),
 * or as before (off). The shim goes after anything already preloaded:
 * ASan insists on coming first, and checks that only loosely when told to
 * (the shim needs no instrumentation). */
static void delay_next_start(bool on)
{
    static char preload[1100], asan[600];
    static const char *given_preload;
    static bool saved;
    if (!saved) {
        const char *shim = getenv("SMPOST_STARTUP_DELAY_SHIM");
        if (!shim || !*shim)
            fail_msg("SMPOST_STARTUP_DELAY_SHIM is not set (tests/CMakeLists.txt sets it)");
        given_preload = getenv("LD_PRELOAD");
        snprintf(preload, sizeof preload, "%s%s%s", given_preload ? given_preload : "",
                 given_preload && *given_preload ? ":" : "", shim);
        given_preload = given_preload ? strdup(given_preload) : NULL;
        const char *given_asan = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", given_asan ? given_asan : "",
                 given_asan && *given_asan ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        saved = true;
    }
    if (on) {
        char ms[16];
        snprintf(ms, sizeof ms, "%d", DELAY_MS);
        setenv("LD_PRELOAD", preload, 1);
        setenv("SMPOST_TEST_MG_START_DELAY_MS", ms, 1);
    } else {
        if (given_preload)
            setenv("LD_PRELOAD", given_preload, 1);
        else
            unsetenv("LD_PRELOAD");
        unsetenv("SMPOST_TEST_MG_START_DELAY_MS");
    }
}

/* rounds starts of bin (kill -9 between them) on one data file, each
 * hammered from its first moment by CLIENTS clients; delayed: with the
 * delay shim. */
static void hammer_restarts(const char *bin_env, const char *data_flag, const char *name,
                            const expected *want, int rounds, bool delayed)
{
    const char *bin = getenv(bin_env);
    if (!bin || !*bin)
        fail_msg("%s is not set (tests/CMakeLists.txt sets it)", bin_env);
    char data[400], log[400];
    snprintf(data, sizeof data, "sqlite:%s/%s.db", dir, name);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    for (int round = 0; round < rounds; round++) {
        test_proc p = {.port = test_free_port()};
        char port[16];
        snprintf(port, sizeof port, "%d", p.port);
        char *argv[] = {(char *)bin, "--port", port, (char *)data_flag, data,
                        "--kafka-bootstrap", "none", "--log-level", "warn", NULL};
        client cl[CLIENTS] = {0};
        for (int i = 0; i < CLIENTS; i++) {
            cl[i].port = p.port;
            cl[i].want = want;
            assert_int_equal(pthread_create(&cl[i].thread, NULL, client_main, &cl[i]), 0);
        }
        delay_next_start(delayed);
        bool started = test_proc_start(&p, argv, log);
        delay_next_start(false);
        assert_true(started);
        for (int i = 0; i < CLIENTS; i++)
            pthread_join(cl[i].thread, NULL);
        test_proc_stop(&p, SIGKILL, 5000);
        for (int i = 0; i < CLIENTS; i++)
            if (cl[i].failure[0])
                fail_msg("%s, %sstart %d of %d: %s (log: %s)", name,
                         delayed ? "delayed " : "", round + 1, rounds, cl[i].failure, log);
    }
}

static void test_a_put_at_a_starting_command_api_is_answered_by_its_route(void **state)
{
    (void)state;
    static const expected like = {"PUT", "/api/v1/LikePost/6f0e1d2c-3b4a-4958-8776-655443322110",
                                  404, "not_found"};
    const char *bin = "SMPOST_COMMAND_API_BIN";
    hammer_restarts(bin, "--event-store", "command-api", &like, ROUNDS, false);
    hammer_restarts(bin, "--event-store", "command-api", &like, DELAYED_ROUNDS, true);
}

static void test_a_put_at_a_starting_query_api_is_answered_by_its_route(void **state)
{
    (void)state;
    static const expected put = {"PUT", "/api/v1/PostLookup", 405, "method_not_allowed"};
    const char *bin = "SMPOST_QUERY_API_BIN";
    hammer_restarts(bin, "--read-model", "query-api", &put, ROUNDS, false);
    hammer_restarts(bin, "--read-model", "query-api", &put, DELAYED_ROUNDS, true);
}

static int group_setup(void **state)
{
    (void)state;
    return test_temp_dir("smpost-startup", dir, sizeof dir) ? 0 : -1;
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
        cmocka_unit_test(test_a_put_at_a_starting_command_api_is_answered_by_its_route),
        cmocka_unit_test(test_a_put_at_a_starting_query_api_is_answered_by_its_route),
    };
    return cmocka_run_group_tests_name("startup_race", tests, group_setup, group_teardown);
}
