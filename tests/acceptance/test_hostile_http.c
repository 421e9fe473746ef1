/* SPDX-License-Identifier: Apache-2.0 */
/* test_hostile_http.c — the real binaries against hostile HTTP clients
 * (docs/api.md, "Hostile input and limits"): bodies over the limit, fields
 * over theirs, JSON nested 30,000 deep, invalid UTF-8, numbers no field can
 * hold, ids that are not UUIDs, path traversal and encoded '/' and NUL,
 * wrong content types, SQL and LIKE syntax in the author of a query, and
 * slow clients: a request that never finishes is cut off within the request
 * timeout while other requests are served.
 *
 * command-api runs on SQLite with publishing off; query-api on a SQLite
 * read model this test fills directly (no Kafka). Both use a 1 s request
 * timeout so the slow-client cases are quick; one more command-api with two
 * worker threads shows that slow clients cannot hold the workers for good.
 * Binaries: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN. */
#include "http_client.h"
#include "proc.h"
#include "read_model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 1000     /* --request-timeout-ms of every server here */
#define MARGIN_MS 1500      /* scheduling slack on a loaded CI machine */
#define BODY_READ_PIECE 16  /* common/http_util.c: bytes per body read */
#define MAX_BODY (64 * 1024)

static const char *cmd_bin, *query_bin;
static char dir[256];
static test_proc cmd, query;

static const char *const query_authors[] = {"alice", "x' OR '1'='1", "'; DROP TABLE Post; --",
                                            "%", "a_c", "abc", "[ab]c", "ac"};
#define NQAUTHORS (sizeof query_authors / sizeof query_authors[0])

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(test_proc *p, const char *bin, const char *name, const char *store_flag,
                  const char *store, const char *threads)
{
    p->port = test_free_port();
    char port[16], log[320], timeout[16];
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(timeout, sizeof timeout, "%d", TIMEOUT_MS);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    char *argv[] = {(char *)bin, "--port", port, (char *)store_flag, (char *)store,
                    "--kafka-bootstrap", "none", "--log-level", "warn", "--request-timeout-ms",
                    timeout, "--threads", (char *)threads, NULL};
    assert_true(test_proc_start(p, argv, log));
    if (!test_proc_wait_http(p->port, 10000))
        fail_msg("%s did not come up on port %d; see %s", name, p->port, log);
}

/* Fills the query side's read model: one post per author in query_authors. */
static void seed_read_model(const char *url)
{
    rm_store *rm = NULL;
    sm_error err = {0};
    if (rm_open(url, &rm, &err) != SM_OK)
        fail_msg("rm_open(%s): %s", url, err.message);
    for (size_t i = 0; i < NQAUTHORS; i++) {
        sm_event e = {.type = SM_EV_POST_CREATED, .at_ms = 1764198000000LL + (int64_t)i};
        sm_uuid_new(e.event_id);
        sm_uuid_new(e.aggregate_id);
        e.timestamp_ms = e.at_ms;
        e.author = strdup(query_authors[i]);
        e.message = strdup("hello");
        rm_outcome o;
        assert_int_equal(rm_apply(rm, &e, &o, &err), SM_OK);
        sm_event_clear(&e);
    }
    rm_close(rm);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-hostile", dir, sizeof dir))
        return -1;
    char es[320], rm[320];
    snprintf(es, sizeof es, "sqlite:%s/events.db", dir);
    snprintf(rm, sizeof rm, "sqlite:%s/readmodel.db", dir);
    seed_read_model(rm);
    start(&cmd, cmd_bin, "command-api", "--event-store", es, "8");
    start(&query, query_bin, "query-api", "--read-model", rm, "8");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (cmd.pid > 0)
        test_proc_stop(&cmd, SIGTERM, 5000);
    if (query.pid > 0)
        test_proc_stop(&query, SIGTERM, 5000);
    test_rm_rf(dir);
    return 0;
}

/* ---- raw sockets: what http_client.c cannot send ------------------------ */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void raw_send(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the server closed: the caller looks at what came back */
        data += n;
        len -= (size_t)n;
    }
}

typedef struct raw_result {
    long long closed_after_ms; /* -1: still open at the limit */
    char reply[2048];          /* start of what the server sent */
    size_t len;
} raw_result;

/* Waits until the server closes fd (or limit_ms passes), collecting what it
 * sends; every drip_ms > 0 sends one more byte of body, as a client that
 * trickles would. */
static raw_result wait_closed(int fd, long long t0, int limit_ms, int drip_ms)
{
    raw_result r = {.closed_after_ms = -1};
    long long next_drip = drip_ms > 0 ? now_ms() + drip_ms : 0;
    while (now_ms() - t0 < limit_ms) {
        struct pollfd p = {fd, POLLIN, 0};
        int wait = drip_ms > 0 ? (int)(next_drip - now_ms()) : 50;
        if (poll(&p, 1, wait < 0 ? 0 : wait) == 1) {
            char buf[1024];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                r.closed_after_ms = now_ms() - t0;
                break;
            }
            size_t keep = (size_t)n < sizeof r.reply - 1 - r.len ? (size_t)n
                                                                 : sizeof r.reply - 1 - r.len;
            memcpy(r.reply + r.len, buf, keep);
            r.len += keep;
            r.reply[r.len] = '\0';
        }
        if (drip_ms > 0 && now_ms() >= next_drip) {
            send(fd, "x", 1, MSG_NOSIGNAL);
            next_drip = now_ms() + drip_ms;
        }
    }
    close(fd);
    return r;
}

/* The reply's status line code, or 0. */
static int raw_status(const raw_result *r)
{
    int status = 0;
    return sscanf(r->reply, "HTTP/1.%*d %d", &status) == 1 ? status : 0;
}

/* The reply's body parsed as JSON (new reference), or NULL. */
static json_t *raw_json(const raw_result *r)
{
    const char *body = strstr(r->reply, "\r\n\r\n");
    return body ? json_loads(body + 4, 0, NULL) : NULL;
}

/* ---- helpers over http_client.c ------------------------------------------ */

static http_resp call(test_proc *p, const char *method, const char *path, const char *headers,
                      const char *body, size_t len)
{
    http_resp r;
    if (http_call(p->port, method, path, headers, body, len, 10000, &r) != 0)
        fail_msg("%s %s: no reply", method, path);
    return r;
}

/* Asserts a JSON error reply with this status and error code. */
static void expect_error(http_resp *r, int status, const char *code, const char *what)
{
    if (r->status != status)
        fail_msg("%s: status %d, want %d; body %s", what, r->status, status, r->body);
    char ctype[80];
    assert_non_null(http_resp_header(r, "Content-Type", ctype, sizeof ctype));
    assert_non_null(strstr(ctype, "application/json"));
    assert_non_null(http_resp_str(r, "message"));
    assert_string_equal(http_resp_str(r, "error"), code);
}

static const char *json_hdr = "Content-Type: application/json\r\n";

static void new_post(char id[40])
{
    const char *body = "{\"author\":\"alice\",\"message\":\"hello\"}";
    http_resp r = call(&cmd, "POST", "/api/v1/NewPost", json_hdr, body, strlen(body));
    assert_int_equal(r.status, 201);
    strcpy(id, http_resp_str(&r, "id"));
    http_resp_free(&r);
}

/* ---- body size ------------------------------------------------------------ */

/* {"author":"a","message":"m","pad":"xxx"} of exactly n bytes. */
static char *body_of_size(size_t n)
{
    const char *head = "{\"author\":\"a\",\"message\":\"m\",\"pad\":\"";
    char *b = malloc(n + 1);
    size_t h = strlen(head);
    memcpy(b, head, h);
    memset(b + h, 'x', n - h - 2);
    memcpy(b + n - 2, "\"}", 3);
    return b;
}

static void test_body_limit_is_64_kib_exactly(void **state)
{
    (void)state;
    char *at = body_of_size(MAX_BODY), *over = body_of_size(MAX_BODY + 1);
    http_resp r = call(&cmd, "POST", "/api/v1/NewPost", json_hdr, at, MAX_BODY);
    assert_int_equal(r.status, 201);
    http_resp_free(&r);
    r = call(&cmd, "POST", "/api/v1/NewPost", json_hdr, over, MAX_BODY + 1);
    expect_error(&r, 413, "payload_too_large", "65537-byte body");
    assert_string_equal(http_resp_str(&r, "message"), "The request body exceeds 65536 bytes.");
    http_resp_free(&r);
    free(at);
    free(over);
}

/* A declared gigabyte is refused from its Content-Length, at once, and the
 * connection is closed rather than drained. */
static void test_a_declared_gigabyte_is_413_at_once_and_not_drained(void **state)
{
    (void)state;
    int fd = raw_connect(cmd.port);
    long long t0 = now_ms();
    const char *head = "POST /api/v1/NewPost HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n";
    raw_send(fd, head, strlen(head));
    char chunk[8192];
    memset(chunk, 'x', sizeof chunk);
    raw_send(fd, chunk, sizeof chunk);
    raw_result res = wait_closed(fd, t0, 5000, 0);
    assert_int_equal(raw_status(&res), 413);
    if (res.closed_after_ms < 0 || res.closed_after_ms > MARGIN_MS)
        fail_msg("connection closed after %lld ms (want < %d)", res.closed_after_ms, MARGIN_MS);
}

/* ---- field limits ---------------------------------------------------------- */

/* Sends pre + text + post with text at the field's limit (ok_status) and
 * one byte over it (400 naming the field and the limit). */
static void expect_field_limit(const char *method, const char *path, const char *pre,
                               const char *post, const char *field, size_t limit, int ok_status)
{
    for (int over = 0; over <= 1; over++) {
        size_t n = limit + (size_t)over;
        size_t cap = strlen(pre) + n + strlen(post) + 1;
        char *body = malloc(cap);
        strcpy(body, pre);
        memset(body + strlen(pre), 'q', n);
        strcpy(body + strlen(pre) + n, post);
        http_resp r = call(&cmd, method, path, json_hdr, body, strlen(body));
        if (!over) {
            if (r.status != ok_status)
                fail_msg("%s %s with %s of %zu bytes: %d, want %d; %s", method, path, field, n,
                         r.status, ok_status, r.body);
        } else {
            expect_error(&r, 400, "invalid_request", field);
            char want[100];
            snprintf(want, sizeof want, "The %s field must be at most %zu bytes.", field, limit);
            assert_string_equal(http_resp_str(&r, "message"), want);
        }
        http_resp_free(&r);
        free(body);
    }
}

static void test_every_text_field_is_limited_with_a_400_naming_it(void **state)
{
    (void)state;
    char id[40], p[120], pre[200];
    new_post(id);
    expect_field_limit("POST", "/api/v1/NewPost", "{\"author\":\"", "\",\"message\":\"m\"}",
                       "author", 64, 201);
    expect_field_limit("POST", "/api/v1/NewPost", "{\"author\":\"a\",\"message\":\"", "\"}",
                       "message", 4096, 201);
    snprintf(p, sizeof p, "/api/v1/EditMessage/%s", id);
    expect_field_limit("PUT", p, "{\"message\":\"", "\"}", "message", 4096, 200);
    snprintf(p, sizeof p, "/api/v1/AddComment/%s", id);
    expect_field_limit("PUT", p, "{\"comment\":\"", "\",\"username\":\"bob\"}", "comment",
                       2048, 200);
    expect_field_limit("PUT", p, "{\"comment\":\"c\",\"username\":\"", "\"}", "username", 64,
                       200);
    /* EditComment of bob's comment: the limits apply before the rules */
    const char *add = "{\"comment\":\"c\",\"username\":\"bob\"}";
    http_resp r = call(&cmd, "PUT", p, json_hdr, add, strlen(add));
    assert_int_equal(r.status, 200);
    char cid[40];
    strcpy(cid, http_resp_str(&r, "commentId"));
    http_resp_free(&r);
    snprintf(p, sizeof p, "/api/v1/EditComment/%s", id);
    snprintf(pre, sizeof pre, "{\"commentId\":\"%s\",\"comment\":\"", cid);
    expect_field_limit("PUT", p, pre, "\",\"username\":\"bob\"}", "comment", 2048, 200);
    snprintf(p, sizeof p, "/api/v1/DeletePost/%s", id);
    /* at the limit the rule answers: only alice may delete her post */
    expect_field_limit("DELETE", p, "{\"username\":\"", "\"}", "username", 64, 400);
}

/* ---- JSON that attacks the parser ------------------------------------------- */

static void test_deeply_nested_json_is_refused_and_the_server_stays_up(void **state)
{
    (void)state;
    /* 30,000 levels (60 KB) crashed a worker before the depth guard */
    int depth = 30000;
    char *b = malloc((size_t)depth * 2 + 64);
    int o = sprintf(b, "{\"author\":");
    memset(b + o, '[', (size_t)depth);
    memset(b + o + depth, ']', (size_t)depth);
    strcpy(b + o + 2 * depth, ",\"message\":\"m\"}");
    http_resp r = call(&cmd, "POST", "/api/v1/NewPost", json_hdr, b, strlen(b));
    expect_error(&r, 400, "invalid_request", "30,000 nested arrays");
    assert_string_equal(http_resp_str(&r, "message"),
                        "The request body nests arrays or objects deeper than 32 levels.");
    http_resp_free(&r);
    free(b);
    /* 100,000 levels are over the body limit before they are JSON */
    depth = 100000;
    b = malloc((size_t)depth * 2 + 1);
    memset(b, '[', (size_t)depth);
    memset(b + depth, ']', (size_t)depth);
    r = call(&cmd, "POST", "/api/v1/NewPost", json_hdr, b, (size_t)depth * 2);
    expect_error(&r, 413, "payload_too_large", "100,000 nested arrays");
    http_resp_free(&r);
    free(b);
    r = call(&cmd, "GET", "/health", "", NULL, 0);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
}

static void test_invalid_utf8_nul_and_unrepresentable_numbers_are_400(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"author\":\"a\xff\",\"message\":\"m\"}",
        "{\"author\":\"a\xc0\xaf\",\"message\":\"m\"}",
        "{\"author\":\"a\xed\xa0\x80\",\"message\":\"m\"}",
        "{\"author\":\"a\\u0000b\",\"message\":\"m\"}",
        "{\"author\":\"a\\udc00\",\"message\":\"m\"}",
        "{\"author\":\"a\",\"message\":\"m\",\"n\":1e400}",
        "{\"author\":\"a\",\"message\":\"m\",\"n\":-99999999999999999999999}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        http_resp r = call(&cmd, "POST", "/api/v1/NewPost", json_hdr, bodies[i], strlen(bodies[i]));
        expect_error(&r, 400, "invalid_request", bodies[i]);
        assert_non_null(strstr(http_resp_str(&r, "message"), "not valid JSON"));
        http_resp_free(&r);
    }
    /* a raw NUL byte in the body, too */
    const char nul[] = "{\"author\":\"a\0b\",\"message\":\"m\"}";
    http_resp r = call(&cmd, "POST", "/api/v1/NewPost", json_hdr, nul, sizeof nul - 1);
    expect_error(&r, 400, "invalid_request", "raw NUL");
    http_resp_free(&r);
}

static void test_versions_no_integer_can_hold_are_400(void **state)
{
    (void)state;
    char id[40], p[120];
    new_post(id);
    snprintf(p, sizeof p, "/api/v1/LikePost/%s", id);
    const char *bad[] = {"If-Match: \"99999999999999999999999\"\r\n", "If-Match: \"-1\"\r\n",
                         "If-Match: \"1e3\"\r\n", "If-Match: \"0x10\"\r\n",
                         "If-Match: \"\"\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_resp r = call(&cmd, "PUT", p, bad[i], NULL, 0);
        expect_error(&r, 400, "invalid_request", bad[i]);
        http_resp_free(&r);
    }
    /* the largest version there is parses, and does not match */
    http_resp r = call(&cmd, "PUT", p, "If-Match: \"9223372036854775807\"\r\n", NULL, 0);
    expect_error(&r, 412, "precondition_failed", "If-Match: INT64_MAX");
    http_resp_free(&r);
}

/* ---- ids and paths ----------------------------------------------------------- */

static void test_ids_that_are_not_uuids_are_400(void **state)
{
    (void)state;
    const char *ids[] = {"not-a-guid", "6f0e1d2c-3b4a-4958-8776-65544332211",
                         "6f0e1d2c-3b4a-4958-8776-6554433221100",
                         "6f0e1d2c-3b4a-4958-8776_655443322110",
                         "{6f0e1d2c-3b4a-4958-8776-655443322110",
                         "6f0e1d2c-3b4a-4958-8776-65544332211g", "%27%20OR%20%271%27%3D%271",
                         "%2e%2e", "%C0%AE%C0%AE"};
    const char *routes[] = {"PUT /api/v1/LikePost/", "PUT /api/v1/EditMessage/",
                            "DELETE /api/v1/DeletePost/"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        for (size_t k = 0; k < sizeof routes / sizeof routes[0]; k++) {
            char method[8], path[200];
            sscanf(routes[k], "%7s %150s", method, path);
            strcat(path, ids[i]);
            const char *body = "{\"message\":\"m\",\"username\":\"u\"}";
            http_resp r = call(&cmd, method, path, json_hdr, body, strlen(body));
            expect_error(&r, 400, "invalid_request", path);
            if (!strstr(http_resp_str(&r, "message"), "is not a valid UUID"))
                fail_msg("%s: message %s", path, http_resp_str(&r, "message"));
            http_resp_free(&r);
        }
    }
}

/* No route serves a file, and none is reached by climbing out of another:
 * every traversal is a JSON 404 (or 400 for an encoded '/' or NUL). */
static void test_path_traversal_is_404_or_400_and_never_a_file(void **state)
{
    (void)state;
    char id[40];
    new_post(id);
    const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/etc/passwd", 404},
        {"/api/v1/../../../../etc/passwd", 404},
        {"/api/v1/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 404},
        {"/api/v1/%252e%252e/etc/passwd", 404},
        {"/api/v1/..%5c..%5c..%5cetc%5cpasswd", 404},
        {"/api/v1/LikePost/..%2F..%2F..%2Fetc%2Fpasswd", 400},
        {"/api/v1/LikePost/..%2f..%2fhealth", 400},
        {"/api/v1/LikePost%2F6f0e1d2c-3b4a-4958-8776-655443322110", 400},
        {"/swagger/..%2F..%2F..%2Fetc%2Fpasswd", 400},
        {"/swagger/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 404},
        {"/swagger/../../../etc/passwd", 404},
        {"/swagger/.%2e/.%2e/README.md", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_resp r = call(&cmd, "GET", cases[i].path, "", NULL, 0);
        expect_error(&r, cases[i].status, cases[i].status == 404 ? "not_found" : "invalid_request",
                     cases[i].path);
        assert_null(strstr(r.body, "root:"));
        http_resp_free(&r);
    }
    /* an encoded NUL does not cut the path to a valid one: this would
     * otherwise like the post */
    char p[160];
    snprintf(p, sizeof p, "/api/v1/LikePost/%s%%00.json", id);
    http_resp r = call(&cmd, "PUT", p, "", NULL, 0);
    expect_error(&r, 400, "invalid_request", p);
    assert_string_equal(http_resp_str(&r, "message"),
                        "The path must not contain an encoded '/' or NUL (%2F, %00).");
    http_resp_free(&r);
    /* the post was not liked */
    snprintf(p, sizeof p, "/api/v1/LikePost/%s", id);
    r = call(&cmd, "PUT", p, "", NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    http_resp_free(&r);
}

/* Requests civetweb refuses before any route (a bad request line, an HTTP
 * version it does not speak) get a JSON error too. */
static void test_malformed_requests_get_json_errors(void **state)
{
    (void)state;
    const char *reqs[] = {"GARBAGE\r\n\r\n", "GET /health HTTP/9.9\r\n\r\n",
                          "GET /he\x01lth HTTP/1.1\r\nHost: x\r\n\r\n"};
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        int fd = raw_connect(cmd.port);
        long long t0 = now_ms();
        raw_send(fd, reqs[i], strlen(reqs[i]));
        raw_result res = wait_closed(fd, t0, TIMEOUT_MS + MARGIN_MS, 0);
        int status = raw_status(&res);
        if (status < 400 || status > 505)
            fail_msg("request %zu: status %d; reply %s", i, status, res.reply);
        json_t *j = raw_json(&res);
        if (!j || !json_string_value(json_object_get(j, "error")))
            fail_msg("request %zu: reply is not a JSON error: %s", i, res.reply);
        json_decref(j);
    }
}

/* ---- content types ---------------------------------------------------------- */

static void test_every_body_taking_command_wants_json_else_415(void **state)
{
    (void)state;
    char id[40];
    new_post(id);
    const char *routes[][2] = {{"POST", "/api/v1/NewPost"},    {"PUT", "/api/v1/EditMessage/"},
                               {"PUT", "/api/v1/AddComment/"}, {"PUT", "/api/v1/EditComment/"},
                               {"DELETE", "/api/v1/RemoveComment/"},
                               {"DELETE", "/api/v1/DeletePost/"}};
    const char *types[] = {"Content-Type: text/plain\r\n", "",
                           "Content-Type: application/x-www-form-urlencoded\r\n",
                           "Content-Type: multipart/form-data; boundary=x\r\n",
                           "Content-Type: application/jsonx\r\n",
                           "Content-Type: application/+json\r\n",
                           "Content-Type: text/json\r\n"};
    const char *body = "{\"author\":\"a\",\"message\":\"m\",\"comment\":\"c\",\"username\":\"alice\","
                       "\"commentId\":\"6f0e1d2c-3b4a-4958-8776-655443322110\"}";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s", routes[i][1], i ? id : "");
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            http_resp r = call(&cmd, routes[i][0], path, types[k], body, strlen(body));
            expect_error(&r, 415, "unsupported_media_type", path);
            http_resp_free(&r);
        }
    }
    /* any application/<x>+json with parameters is JSON */
    http_resp r = call(&cmd, "POST", "/api/v1/NewPost",
                       "Content-Type: application/vnd.smpost+JSON; charset=UTF-8\r\n", body,
                       strlen(body));
    assert_int_equal(r.status, 201);
    http_resp_free(&r);
}

/* ---- the query side ----------------------------------------------------------- */

static void test_query_authors_with_sql_and_like_syntax_match_only_themselves(void **state)
{
    (void)state;
    for (size_t i = 0; i < NQAUTHORS; i++) {
        /* percent-encode everything but unreserved characters */
        char path[300] = "/api/v1/PostLookup/byAuthor/";
        for (const unsigned char *c = (const unsigned char *)query_authors[i]; *c; c++) {
            size_t o = strlen(path);
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))
                path[o] = (char)*c, path[o + 1] = '\0';
            else
                sprintf(path + o, "%%%02X", *c);
        }
        http_resp r = call(&query, "GET", path, "", NULL, 0);
        json_t *posts = json_object_get(r.json, "posts");
        if (r.status != 200 || json_array_size(posts) != 1)
            fail_msg("GET %s: %d, %zu posts; want one", path, r.status, json_array_size(posts));
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(posts, 0), "author")),
            query_authors[i]);
        http_resp_free(&r);
    }
    /* patterns and injections that would widen the match find nothing */
    const char *none[] = {"_lice", "%25lice", "a%25", "%5Ba-z%5Dc", "alice%20",
                          "%27%20OR%20%27%27%3D%27", "alice%27%20--"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        char path[200];
        snprintf(path, sizeof path, "/api/v1/PostLookup/byAuthor/%s", none[i]);
        http_resp r = call(&query, "GET", path, "", NULL, 0);
        if (r.status != 204)
            fail_msg("GET %s: %d, want 204; %s", path, r.status, r.body);
        http_resp_free(&r);
    }
    /* and every table is still whole */
    http_resp r = call(&query, "GET", "/api/v1/PostLookup?limit=500", "", NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "posts")), NQAUTHORS);
    http_resp_free(&r);
}

static void test_query_parameters_and_paths_out_of_range_are_400_or_404(void **state)
{
    (void)state;
    const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/api/v1/PostLookup?limit=1e400", 400},
        {"/api/v1/PostLookup?limit=99999999999999999999", 400},
        {"/api/v1/PostLookup?offset=1000001", 400},
        {"/api/v1/PostLookup?limit=5%00", 400},
        {"/api/v1/PostLookup/withLikes/1e400", 400},
        {"/api/v1/PostLookup/byId/6f0e1d2c-3b4a-4958-8776-655443322110?minVersion="
         "9223372036854775808",
         400},
        {"/api/v1/PostLookup/byId/%2e%2e", 400},
        {"/api/v1/PostLookup/byAuthor?author=alice%00x", 400},
        {"/api/v1/PostLookup/byAuthor/a%2Fb", 400},
        {"/api/v1/PostLookup/byAuthor/..%2F..%2F..%2Fetc%2Fpasswd", 400},
        {"/api/v1/PostLookup/../../../etc/passwd", 404},
        {"/api/v1/%2e%2e/%2e%2e/etc/passwd", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_resp r = call(&query, "GET", cases[i].path, "", NULL, 0);
        expect_error(&r, cases[i].status, cases[i].status == 404 ? "not_found" : "invalid_request",
                     cases[i].path);
        assert_null(strstr(r.body, "root:"));
        http_resp_free(&r);
    }
}

/* ---- slow clients ------------------------------------------------------------ */

/* GET /health answers within ms. */
static bool served_within(int port, int ms)
{
    long long t0 = now_ms();
    http_resp r;
    bool ok = http_call(port, "GET", "/health", "", NULL, 0, ms, &r) == 0 && r.status == 200;
    http_resp_free(&r);
    return ok && now_ms() - t0 <= ms;
}

static const char *half_head = "POST /api/v1/NewPost HTTP/1.1\r\nHost: x\r\nContent-";
static const char *full_head = "POST /api/v1/NewPost HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
                               "{\"author\":";

static void test_half_a_request_is_cut_off_within_the_timeout(void **state)
{
    (void)state;
    test_proc *servers[] = {&cmd, &query};
    for (size_t s = 0; s < 2; s++) {
        int fd = raw_connect(servers[s]->port);
        long long t0 = now_ms();
        raw_send(fd, half_head, strlen(half_head));
        /* meanwhile everyone else is served */
        assert_true(served_within(servers[s]->port, 500));
        raw_result res = wait_closed(fd, t0, TIMEOUT_MS + MARGIN_MS, 0);
        if (res.closed_after_ms < 0)
            fail_msg("half a request line was not cut off within %d ms", TIMEOUT_MS + MARGIN_MS);
        assert_true(res.closed_after_ms >= TIMEOUT_MS - 100);
        if (res.len) { /* civetweb's answer, as JSON */
            json_t *j = raw_json(&res);
            assert_non_null(j);
            json_decref(j);
        }
    }
    /* headers complete, body never finished: 408 */
    int fd = raw_connect(cmd.port);
    long long t0 = now_ms();
    raw_send(fd, full_head, strlen(full_head));
    assert_true(served_within(cmd.port, 500));
    raw_result res = wait_closed(fd, t0, TIMEOUT_MS + MARGIN_MS, 0);
    if (res.closed_after_ms < 0)
        fail_msg("half a body was not cut off within %d ms", TIMEOUT_MS + MARGIN_MS);
    assert_int_equal(raw_status(&res), 408);
    json_t *j = raw_json(&res);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "request_timeout");
    json_decref(j);
}

/* A client that sends its body a byte every 100 ms never lets one read time
 * out; it is cut off by the whole-body deadline instead, within
 * (1 + BODY_READ_PIECE) timeouts at worst, here within one timeout plus
 * BODY_READ_PIECE drips. */
static void test_a_trickling_body_is_cut_off(void **state)
{
    (void)state;
    int fd = raw_connect(cmd.port);
    long long t0 = now_ms();
    const char *head = "POST /api/v1/NewPost HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n";
    raw_send(fd, head, strlen(head));
    int limit = TIMEOUT_MS + BODY_READ_PIECE * 100 + MARGIN_MS;
    raw_result res = wait_closed(fd, t0, limit, 100);
    if (res.closed_after_ms < 0)
        fail_msg("a trickling body held the connection for over %d ms", limit);
    assert_int_equal(raw_status(&res), 408);
}

/* With every worker held by a slow client, a new request waits only until
 * the timeout frees one. */
static void test_slow_clients_cannot_hold_every_worker(void **state)
{
    (void)state;
    test_proc small = {0};
    char es[320];
    snprintf(es, sizeof es, "sqlite:%s/small.db", dir);
    start(&small, cmd_bin, "command-api-2-threads", "--event-store", es, "2");
    int fds[2];
    long long t0 = now_ms();
    for (int i = 0; i < 2; i++) {
        fds[i] = raw_connect(small.port);
        raw_send(fds[i], full_head, strlen(full_head));
    }
    usleep(100 * 1000); /* let both workers take their connection */
    http_resp r;
    int rc = http_call(small.port, "GET", "/health", "", NULL, 0, TIMEOUT_MS + 2 * MARGIN_MS, &r);
    long long waited = now_ms() - t0;
    if (rc != 0 || r.status != 200)
        fail_msg("with both workers held, /health got no answer in %lld ms", waited);
    http_resp_free(&r);
    assert_true(waited <= TIMEOUT_MS + 2 * MARGIN_MS);
    for (int i = 0; i < 2; i++) {
        raw_result res = wait_closed(fds[i], t0, TIMEOUT_MS + MARGIN_MS, 0);
        assert_true(res.closed_after_ms >= 0);
    }
    assert_int_equal(test_proc_stop(&small, SIGTERM, 5000), 0);
}

int main(void)
{
    cmd_bin = getenv("SMPOST_COMMAND_API_BIN");
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    if (!cmd_bin || !query_bin) {
        fprintf(stderr, "SMPOST_COMMAND_API_BIN / SMPOST_QUERY_API_BIN not set (run via ctest)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_limit_is_64_kib_exactly),
        cmocka_unit_test(test_a_declared_gigabyte_is_413_at_once_and_not_drained),
        cmocka_unit_test(test_every_text_field_is_limited_with_a_400_naming_it),
        cmocka_unit_test(test_deeply_nested_json_is_refused_and_the_server_stays_up),
        cmocka_unit_test(test_invalid_utf8_nul_and_unrepresentable_numbers_are_400),
        cmocka_unit_test(test_versions_no_integer_can_hold_are_400),
        cmocka_unit_test(test_ids_that_are_not_uuids_are_400),
        cmocka_unit_test(test_path_traversal_is_404_or_400_and_never_a_file),
        cmocka_unit_test(test_malformed_requests_get_json_errors),
        cmocka_unit_test(test_every_body_taking_command_wants_json_else_415),
        cmocka_unit_test(test_query_authors_with_sql_and_like_syntax_match_only_themselves),
        cmocka_unit_test(test_query_parameters_and_paths_out_of_range_are_400_or_404),
        cmocka_unit_test(test_half_a_request_is_cut_off_within_the_timeout),
        cmocka_unit_test(test_a_trickling_body_is_cut_off),
        cmocka_unit_test(test_slow_clients_cannot_hold_every_worker),
    };
    return cmocka_run_group_tests_name("hostile_http", tests, group_setup, group_teardown);
}
