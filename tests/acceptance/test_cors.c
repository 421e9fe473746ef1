/* SPDX-License-Identifier: Apache-2.0 */
/* test_cors.c — CORS on the real binaries (SMPOST_CORS_ORIGINS,
 * common/http_cors.h; docs/api.md, "CORS"), over HTTP:
 *  - off by default: OPTIONS is 405 and no reply has a CORS header;
 *  - a malformed setting stops either binary at start with one line naming
 *    it, the setting's _FILE form included;
 *  - an allowed origin can read 2xx, 4xx and 5xx replies, the errors made
 *    before routing included (400 path, 413, 408, the 503 of a draining
 *    server); another origin or none gets no Access-Control-Allow-Origin;
 *  - preflights: 204 with the route's methods, 403 for another origin or a
 *    method the route does not take, 404 for an unknown path;
 *  - civetweb's own errors (a request line it cannot parse) carry no CORS
 *    header, in particular not its default "Access-Control-Allow-Origin: *".
 * command-api on SQLite with publishing off (so RestoreReadDb is 503);
 * query-api on an empty SQLite read model without Kafka.
 * Binaries: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN. */
#include "http_client.h"
#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define APP "http://localhost:3000"
#define EVIL "https://evil.example"
#define ORIGINS APP ",https://app.example.com"
#define TIMEOUT_MS 1500 /* --request-timeout-ms: the 408 and the drain below */
#define POST_ID "0b6f5ad4-3c1e-4f7e-9a41-6f1c2b7d8e90"

static const char *cmd_bin, *query_bin;
static char dir[256];
static test_proc cmd, plain;

/* Starts bin with CORS set to origins (NULL: unset); true once it answers
 * (wait) or at once (!wait, for a start that should fail). */
static bool start_ex(test_proc *p, const char *bin, const char *name, const char *origins,
                     bool wait)
{
    p->port = test_free_port();
    char port[16], log[320], store[320], timeout[16];
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(timeout, sizeof timeout, "%d", TIMEOUT_MS);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    bool query = strstr(bin, "query-api") != NULL;
    snprintf(store, sizeof store, "sqlite:%s/%s.db", dir, name);
    char *argv[20] = {(char *)bin, "--port", port, query ? "--read-model" : "--event-store",
                      store, "--kafka-bootstrap", "none", "--request-timeout-ms", timeout,
                      "--log-level", "warn"};
    int n = 11;
    if (origins) {
        argv[n++] = "--cors-origins";
        argv[n++] = (char *)origins;
    }
    argv[n] = NULL;
    assert_true(test_proc_start(p, argv, log));
    return !wait || test_proc_wait_http(p->port, 10000);
}

static bool start(test_proc *p, const char *bin, const char *name, const char *origins)
{
    return start_ex(p, bin, name, origins, true);
}

static int group_setup(void **state)
{
    (void)state;
    cmd_bin = getenv("SMPOST_COMMAND_API_BIN");
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    if (!cmd_bin || !query_bin) {
        fprintf(stderr, "SMPOST_COMMAND_API_BIN / SMPOST_QUERY_API_BIN not set\n");
        return -1;
    }
    if (!test_temp_dir("smpost-cors", dir, sizeof dir))
        return -1;
    if (!start(&cmd, cmd_bin, "command-api", ORIGINS) ||
        !start(&plain, cmd_bin, "command-api-plain", NULL)) {
        fprintf(stderr, "a command-api did not come up; see %s\n", dir);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    test_proc_stop(&cmd, SIGTERM, 5000);
    test_proc_stop(&plain, SIGTERM, 5000);
    test_rm_rf(dir);
    return 0;
}

static http_resp call(int port, const char *method, const char *path, const char *headers,
                      const char *body)
{
    http_resp r;
    if (http_call(port, method, path, headers, body, body ? strlen(body) : 0, 10000, &r) != 0)
        fail_msg("%s %s: no reply", method, path);
    return r;
}

static const char *header(const http_resp *r, const char *name, char *buf, size_t cap)
{
    return http_resp_header(r, name, buf, cap);
}

/* The reply lets origin APP read it, and the headers a client needs. */
static void expect_readable(const http_resp *r, int status, const char *what)
{
    char buf[300];
    if (r->status != status)
        fail_msg("%s: status %d, want %d", what, r->status, status);
    const char *acao = header(r, "Access-Control-Allow-Origin", buf, sizeof buf);
    if (!acao || strcmp(acao, APP) != 0)
        fail_msg("%s: Access-Control-Allow-Origin '%s'\n%s", what, acao ? acao : "(none)",
                 r->head);
    const char *expose = header(r, "Access-Control-Expose-Headers", buf, sizeof buf);
    if (!expose || !strstr(expose, "X-Request-Id") || !strstr(expose, "Retry-After") ||
        !strstr(expose, "ETag"))
        fail_msg("%s: Access-Control-Expose-Headers '%s'", what, expose ? expose : "(none)");
    if (!strstr(r->head, "\r\nVary: Origin\r\n"))
        fail_msg("%s: no Vary: Origin\n%s", what, r->head);
    if (strstr(r->head, "Access-Control-Allow-Credentials"))
        fail_msg("%s: credentials allowed\n%s", what, r->head);
}

static void expect_unreadable(const http_resp *r, int status, const char *what)
{
    if (r->status != status)
        fail_msg("%s: status %d, want %d", what, r->status, status);
    if (strstr(r->head, "Access-Control-"))
        fail_msg("%s: a CORS header for a foreign origin\n%s", what, r->head);
}

/* The same request from APP, from EVIL and with no Origin. */
static void check_each_origin(int port, const char *method, const char *path,
                              const char *headers, const char *body, int status)
{
    const char *origins[] = {APP, EVIL, NULL};
    for (int i = 0; i < 3; i++) {
        char h[600], what[200];
        snprintf(h, sizeof h, "%s%s%s%s", headers, origins[i] ? "Origin: " : "",
                 origins[i] ? origins[i] : "", origins[i] ? "\r\n" : "");
        snprintf(what, sizeof what, "%s %.60s from %s", method, path,
                 origins[i] ? origins[i] : "no origin");
        http_resp r = call(port, method, path, h, body);
        if (i == 0)
            expect_readable(&r, status, what);
        else
            expect_unreadable(&r, status, what);
        http_resp_free(&r);
    }
}

/* Everything fd receives until the server closes it (cap bytes at most). */
static size_t read_until_closed(int fd, char *out, size_t cap, int timeout_ms)
{
    size_t n = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (n + 1 < cap && poll(&p, 1, timeout_ms) > 0) {
        ssize_t got = recv(fd, out + n, cap - 1 - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    out[n] = '\0';
    return n;
}

static void test_replies_of_every_class_are_readable_by_allowed_origins_only(void **state)
{
    (void)state;
    const char *json = "Content-Type: application/json\r\n";
    check_each_origin(cmd.port, "POST", "/api/v1/NewPost", json,
                      "{\"author\":\"alice\",\"message\":\"hello\"}", 201);
    check_each_origin(cmd.port, "GET", "/health", "", NULL, 200);
    check_each_origin(cmd.port, "POST", "/api/v1/NewPost", json, "{not json", 400);
    check_each_origin(cmd.port, "PUT", "/api/v1/LikePost/" POST_ID, json,
                      "{\"username\":\"bob\"}", 404);
    check_each_origin(cmd.port, "GET", "/api/v1/NoSuchRoute", "", NULL, 404);
    /* publishing is off: RestoreReadDb cannot run (503, Retry-After) */
    check_each_origin(cmd.port, "POST", "/api/v1/RestoreReadDb", "", NULL, 503);
    /* refused before routing: an encoded '/' in the path, a body too big */
    check_each_origin(cmd.port, "GET", "/api/v1/PostHistory/a%2Fb", "", NULL, 400);
    /* a declared body over the limit: 413 at once, the body never read */
    const char *origins[] = {APP, EVIL};
    for (int i = 0; i < 2; i++) {
        char req[300], reply[2048];
        snprintf(req, sizeof req,
                 "POST /api/v1/NewPost HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n",
                 origins[i]);
        int fd = http_conn_open(cmd.port, 5000);
        assert_true(fd >= 0);
        send(fd, req, strlen(req), MSG_NOSIGNAL);
        read_until_closed(fd, reply, sizeof reply, 5000);
        close(fd);
        bool readable = strstr(reply, "\r\nAccess-Control-Allow-Origin: " APP "\r\n") != NULL;
        if (strncmp(reply, "HTTP/1.1 413", 12) != 0 || readable != (i == 0))
            fail_msg("413 from %s: want%s Access-Control-Allow-Origin, got:\n%s", origins[i],
                     i == 0 ? "" : " no", reply);
    }
}

/* One request whose body never comes, from APP: held inside the server
 * until the request timeout ends it with 408. */
static int hold_request(int port)
{
    int fd = http_conn_open(port, 5000);
    assert_true(fd >= 0);
    const char req[] = "POST /api/v1/NewPost HTTP/1.1\r\nHost: x\r\nOrigin: " APP "\r\n"
                       "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"a\"";
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    return fd;
}

/* A draining server's 503 and a timed-out body's 408 are answered before
 * any route, and still readable by an allowed origin. */
static void test_draining_503_and_408_are_readable(void **state)
{
    (void)state;
    test_proc q;
    if (!start(&q, query_bin, "query-api-drain", ORIGINS))
        fail_msg("query-api did not come up; see %s", dir);
    int held = hold_request(q.port);
    usleep(200 * 1000); /* the held request is inside the server */
    kill(q.pid, SIGTERM);
    usleep(200 * 1000); /* draining now: it waits for the held request */
    http_resp r = call(q.port, "GET", "/api/v1/PostLookup", "Origin: " APP "\r\n", NULL);
    expect_readable(&r, 503, "GET while draining");
    char buf[16];
    assert_non_null(header(&r, "Retry-After", buf, sizeof buf));
    http_resp_free(&r);
    r = call(q.port, "GET", "/api/v1/PostLookup", "Origin: " EVIL "\r\n", NULL);
    expect_unreadable(&r, 503, "GET while draining from another origin");
    http_resp_free(&r);
    char reply[2048];
    read_until_closed(held, reply, sizeof reply, TIMEOUT_MS * 3);
    close(held);
    if (strncmp(reply, "HTTP/1.1 408", 12) != 0 ||
        !strstr(reply, "\r\nAccess-Control-Allow-Origin: " APP "\r\n"))
        fail_msg("held request: want 408 readable by " APP ", got:\n%s", reply);
    assert_int_equal(test_proc_stop(&q, 0, 10000), 0);
}

static void preflight(int port, const char *path, const char *origin, const char *method,
                      http_resp *r)
{
    char h[300];
    snprintf(h, sizeof h,
             "Origin: %s\r\nAccess-Control-Request-Method: %s\r\n"
             "Access-Control-Request-Headers: authorization, content-type\r\n",
             origin, method);
    *r = call(port, "OPTIONS", path, h, NULL);
}

static void test_preflights_list_the_routes_methods(void **state)
{
    (void)state;
    struct {
        const char *path, *method, *allowed;
    } cases[] = {
        {"/api/v1/NewPost", "POST", "POST"},
        {"/api/v1/EditMessage/" POST_ID, "PUT", "PUT"},
        {"/api/v1/DeletePost/" POST_ID, "DELETE", "DELETE"},
        {"/api/v1/PostHistory/" POST_ID, "GET", "GET, HEAD"},
        {"/API/V1/newpost/", "POST", "POST"}, /* routed as any request is */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_resp r;
        char buf[300];
        preflight(cmd.port, cases[i].path, APP, cases[i].method, &r);
        if (r.status != 204)
            fail_msg("preflight %s: %d\n%s", cases[i].path, r.status, r.head);
        assert_string_equal(header(&r, "Access-Control-Allow-Origin", buf, sizeof buf), APP);
        assert_string_equal(header(&r, "Access-Control-Allow-Methods", buf, sizeof buf),
                            cases[i].allowed);
        assert_non_null(strstr(header(&r, "Access-Control-Allow-Headers", buf, sizeof buf),
                               "Authorization"));
        assert_string_equal(header(&r, "Access-Control-Max-Age", buf, sizeof buf), "600");
        assert_non_null(strstr(r.head, "\r\nVary: Origin\r\n"));
        assert_null(header(&r, "Allow", buf, sizeof buf));
        http_resp_free(&r);

        preflight(cmd.port, cases[i].path, EVIL, cases[i].method, &r);
        expect_unreadable(&r, 403, "preflight from another origin");
        http_resp_free(&r);
    }
    http_resp r;
    preflight(cmd.port, "/api/v1/NewPost", APP, "DELETE", &r);
    assert_int_equal(r.status, 403);
    assert_null(strstr(r.head, "Access-Control-Allow-"));
    assert_string_equal(http_resp_str(&r, "error"), "forbidden");
    http_resp_free(&r);
    preflight(cmd.port, "/api/v1/NoSuchRoute", APP, "GET", &r);
    assert_int_equal(r.status, 404);
    assert_null(strstr(r.head, "Access-Control-Allow-Methods"));
    http_resp_free(&r);
    /* OPTIONS without Access-Control-Request-Method is no preflight */
    r = call(cmd.port, "OPTIONS", "/api/v1/NewPost", "Origin: " APP "\r\n", NULL);
    assert_int_equal(r.status, 405);
    char buf[40];
    assert_string_equal(header(&r, "Allow", buf, sizeof buf), "POST");
    assert_null(strstr(r.head, "Access-Control-Allow-Methods"));
    http_resp_free(&r);
}

static void test_cors_is_off_by_default(void **state)
{
    (void)state;
    http_resp r;
    preflight(plain.port, "/api/v1/NewPost", APP, "POST", &r);
    assert_int_equal(r.status, 405);
    char buf[40];
    assert_string_equal(header(&r, "Allow", buf, sizeof buf), "POST");
    assert_null(strstr(r.head, "Access-Control-"));
    assert_null(strstr(r.head, "Origin")); /* no Vary: Origin (Accept-Encoding is http_gzip.h's) */
    http_resp_free(&r);
    r = call(plain.port, "GET", "/health", "Origin: " APP "\r\n", NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.head, "Access-Control-"));
    http_resp_free(&r);
}

/* civetweb answers what it cannot parse through our http_error callback;
 * with its own CORS options emptied, no such answer allows any origin. */
static void test_civetweb_errors_carry_no_cors_headers(void **state)
{
    (void)state;
    const char *bad[] = {
        "GARBAGE\r\nOrigin: " APP "\r\n\r\n",
        "GET /health HTTP/9.9\r\nHost: x\r\nOrigin: " APP "\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\nOrigin: " APP "\r\nBroken header line\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\nOrigin: " APP "\r\nContent-Length: -5\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\nOrigin: " APP "\r\nTransfer-Encoding: gzip\r\n\r\n",
    };
    const int ports[] = {cmd.port, plain.port};
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int fd = http_conn_open(ports[p], 5000);
            assert_true(fd >= 0);
            send(fd, bad[i], strlen(bad[i]), MSG_NOSIGNAL);
            char reply[2048];
            read_until_closed(fd, reply, sizeof reply, 5000);
            close(fd);
            int status = 0;
            if (sscanf(reply, "HTTP/%*d.%*d %d", &status) != 1 || status < 400)
                fail_msg("request %zu: not an error reply:\n%s", i, reply);
            if (strstr(reply, "Access-Control-"))
                fail_msg("request %zu: civetweb's error has a CORS header:\n%s", i, reply);
        }
}

/* Starts bin expecting it to refuse; returns its log. */
static void expect_refused(const char *bin, const char *name, const char *origins,
                           const char *origins_file, const char *shown)
{
    test_proc p = {0};
    char log[320], file[320];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    if (origins_file) {
        snprintf(file, sizeof file, "%s/%s.origins", dir, name);
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fprintf(f, "%s\n", origins_file);
        fclose(f);
        setenv("SMPOST_CORS_ORIGINS_FILE", file, 1);
    }
    start_ex(&p, bin, name, origins, false);
    unsetenv("SMPOST_CORS_ORIGINS_FILE");
    int code = test_proc_stop(&p, 0, 5000);
    if (code != 2)
        fail_msg("%s with a malformed SMPOST_CORS_ORIGINS: exit %d, want 2", name, code);
    FILE *f = fopen(log, "r");
    char text[2048] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    int lines = 0;
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    if (lines != 1 || !strstr(text, "SMPOST_CORS_ORIGINS:") || !strstr(text, shown))
        fail_msg("%s: want one line naming SMPOST_CORS_ORIGINS and '%s', got:\n%s", name, shown,
                 text);
}

static void test_a_malformed_setting_stops_the_start(void **state)
{
    (void)state;
    expect_refused(cmd_bin, "cmd-bad-slash", "https://app.example.com/", NULL,
                   "'https://app.example.com/'");
    expect_refused(query_bin, "query-bad-path", APP ",http://x.example/api", NULL,
                   "'http://x.example/api'");
    /* the _FILE form of every string setting (sm_config.h) */
    expect_refused(query_bin, "query-bad-file", NULL, "*," APP, "mixed");
}

static void test_the_setting_may_come_from_a_file(void **state)
{
    (void)state;
    char file[320];
    snprintf(file, sizeof file, "%s/origins", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", APP);
    fclose(f);
    setenv("SMPOST_CORS_ORIGINS_FILE", file, 1);
    test_proc q;
    bool up = start(&q, query_bin, "query-api-file", NULL);
    unsetenv("SMPOST_CORS_ORIGINS_FILE");
    if (!up)
        fail_msg("query-api with SMPOST_CORS_ORIGINS_FILE did not come up; see %s", dir);
    http_resp r;
    preflight(q.port, "/api/v1/PostLookup", APP, "GET", &r);
    assert_int_equal(r.status, 204);
    char buf[80];
    assert_string_equal(header(&r, "Access-Control-Allow-Origin", buf, sizeof buf), APP);
    assert_string_equal(header(&r, "Access-Control-Allow-Methods", buf, sizeof buf),
                        "GET, HEAD");
    http_resp_free(&r);
    test_proc_stop(&q, SIGTERM, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cors_is_off_by_default),
        cmocka_unit_test(test_replies_of_every_class_are_readable_by_allowed_origins_only),
        cmocka_unit_test(test_preflights_list_the_routes_methods),
        cmocka_unit_test(test_civetweb_errors_carry_no_cors_headers),
        cmocka_unit_test(test_draining_503_and_408_are_readable),
        cmocka_unit_test(test_a_malformed_setting_stops_the_start),
        cmocka_unit_test(test_the_setting_may_come_from_a_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
