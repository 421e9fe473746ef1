/* SPDX-License-Identifier: Apache-2.0 */
/* test_oversized_body.c — a client that sends a body over the limit can
 * read the 413.
 *
 * The server decides 413 from the headers (Content-Length over 64 KiB), or
 * after 64 KiB of a chunked body, and closes the connection. Closing with
 * the client's bytes unread, or with more of them still coming, makes the
 * kernel reset the connection, and a client that writes its whole body
 * before it reads (Python's urllib, for one) failed with EPIPE instead of
 * reading the 413. Here the client sends the headers, waits
 * until the server's answer is there and PAUSE_MS more, then sends the
 * whole body, then reads. The body thus always comes after the server's
 * decision, and after the close that used to follow it at once, as it does
 * whenever the body is slower than the server (urllib sends headers and
 * body in two writes; a network adds its delay); a client whose whole body
 * fits in the kernel's buffers before that close got away with it, which
 * on loopback happened now and then:
 *  - 1 MiB to either binary: every byte is taken, the 413 JSON is read and
 *    the connection ends cleanly (end of stream, not a reset);
 *  - 8 MiB declared, over HTTP_LINGER_MAX_BYTES: the server does not wait
 *    for it, and a chunked body (length unknown until its end) so long
 *    that the kernel's buffers cannot hold what the server does not read
 *    (tcp_rmem and tcp_wmem maxima) is read up to HTTP_LINGER_MAX_BYTES:
 *    either way the server stops taking the body (the client's write
 *    fails), yet the 413 JSON is readable, and the server's only worker
 *    is free for the next request at once;
 *  - a client that keeps trickling after the 413 holds the worker for at
 *    most HTTP_LINGER_MS.
 * Binaries: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN. */
#include "http_client.h"
#include "http_linger.h"
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

#define MIB (1024 * 1024)
#define PIECE (64 * 1024)   /* bytes per write of the body */
#define WAIT_MS 5000        /* longest wait for the server at any step */
#define PAUSE_MS 100        /* body after the answer (< HTTP_LINGER_IDLE_MS) */
#define MARGIN_MS 1500      /* scheduling slack on a loaded machine */

static char dir[256];
static test_proc cmd, query, single; /* single: command-api with one worker */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(test_proc *p, const char *name, const char *threads)
{
    bool is_cmd = strncmp(name, "command-api", 11) == 0;
    const char *bin = getenv(is_cmd ? "SMPOST_COMMAND_API_BIN" : "SMPOST_QUERY_API_BIN");
    if (!bin || !*bin)
        fail_msg("the %s binary is not set (tests/CMakeLists.txt sets it)", name);
    p->port = test_free_port();
    char port[16], data[400], log[400];
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(data, sizeof data, "sqlite:%s/%s.db", dir, name);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    char *argv[] = {(char *)bin, "--port", port, is_cmd ? "--event-store" : "--read-model", data,
                    "--kafka-bootstrap", "none", "--log-level", "warn", "--threads",
                    (char *)threads, NULL};
    assert_true(test_proc_start(p, argv, log));
    if (!test_proc_wait_http(p->port, 10000))
        fail_msg("%s did not come up on port %d; see %s", name, p->port, log);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-oversized", dir, sizeof dir))
        return -1;
    start(&cmd, "command-api", "8");
    start(&query, "query-api", "8");
    start(&single, "command-api-1-worker", "1");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    test_proc *all[] = {&cmd, &query, &single};
    for (size_t i = 0; i < 3; i++)
        if (all[i]->pid > 0)
            test_proc_stop(all[i], SIGTERM, 5000);
    test_rm_rf(dir);
    return 0;
}

/* ---- the client: headers, wait for the answer, whole body, read --------- */

typedef struct exchange {
    size_t sent;          /* body bytes the kernel took */
    int send_errno;       /* why it stopped taking them, 0 if it took all */
    char reply[4096];     /* what came back (the start of it) */
    size_t len;
    int end_errno;        /* how the reading ended: 0 end of stream, else errno */
    long long ended_ms;   /* when, counted from the answer's arrival */
} exchange;

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Writes len bytes; stops at the first failure (the server stopped taking
 * them) and returns how many were taken, errno in *err. */
static size_t write_all(int fd, const char *buf, size_t len, int *err)
{
    size_t done = 0;
    *err = 0;
    while (done < len) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, WAIT_MS) != 1) {
            *err = ETIMEDOUT;
            break;
        }
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            *err = n < 0 ? errno : EPIPE;
            break;
        }
        done += (size_t)n;
    }
    return done;
}

/* The body: body_len bytes of JSON-looking filler, in PIECE-sized writes,
 * as chunks of the chunked transfer coding when chunked. */
static void write_body(int fd, size_t body_len, bool chunked, exchange *x)
{
    char *piece = malloc(PIECE + 32);
    memset(piece, 'x', PIECE + 32);
    while (x->sent < body_len && !x->send_errno) {
        size_t n = body_len - x->sent < PIECE ? body_len - x->sent : PIECE;
        if (chunked) {
            char size[16];
            int sl = snprintf(size, sizeof size, "%zx\r\n", n);
            write_all(fd, size, (size_t)sl, &x->send_errno);
            memcpy(piece + n, "\r\n", 2);
            if (!x->send_errno && write_all(fd, piece, n + 2, &x->send_errno) == n + 2)
                x->sent += n;
            memset(piece + n, 'x', 2);
        } else {
            x->sent += write_all(fd, piece, n, &x->send_errno);
        }
    }
    if (chunked && !x->send_errno)
        write_all(fd, "0\r\n\r\n", 5, &x->send_errno);
    free(piece);
}

/* Reads until the server ends the stream (or WAIT_MS passes). */
static void read_reply(int fd, long long answered_at, exchange *x)
{
    x->end_errno = ETIMEDOUT;
    long long deadline = now_ms() + WAIT_MS;
    while (now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)(deadline - now_ms())) != 1)
            continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            x->end_errno = n == 0 ? 0 : errno;
            break;
        }
        size_t keep = (size_t)n < sizeof x->reply - 1 - x->len ? (size_t)n
                                                               : sizeof x->reply - 1 - x->len;
        memcpy(x->reply + x->len, buf, keep);
        x->len += keep;
        x->reply[x->len] = '\0';
    }
    x->ended_ms = now_ms() - answered_at;
}

/* POSTs a body of body_len bytes to path as described at the top. */
static exchange post_oversized(int port, const char *path, size_t body_len, bool chunked)
{
    exchange x = {0};
    int fd = connect_to(port);
    char head[300];
    int hl = chunked ? snprintf(head, sizeof head,
                                "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                "\r\nTransfer-Encoding: chunked\r\n\r\n",
                                path)
                     : snprintf(head, sizeof head,
                                "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                "\r\nContent-Length: %zu\r\n\r\n",
                                path, body_len);
    int err = 0;
    assert_int_equal(write_all(fd, head, (size_t)hl, &err), (size_t)hl);
    if (chunked) { /* the server decides after 64 KiB of a body of unknown length */
        exchange first = {0};
        write_body(fd, 2 * PIECE, true, &first);
        x.sent = first.sent;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, WAIT_MS) != 1)
        fail_msg("POST %s: no answer to the headers within %d ms", path, WAIT_MS);
    long long answered_at = now_ms();
    usleep(PAUSE_MS * 1000);
    write_body(fd, body_len, chunked, &x);
    read_reply(fd, answered_at, &x);
    close(fd);
    return x;
}

/* Asserts that x holds a 413 with the JSON error body. */
static void expect_413_json(const exchange *x, const char *what)
{
    int status = 0;
    const char *body = strstr(x->reply, "\r\n\r\n");
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(j, "error"));
    if (sscanf(x->reply, "HTTP/1.%*d %d", &status) != 1 || status != 413 || !code ||
        strcmp(code, "payload_too_large") != 0 || !json_string_value(json_object_get(j, "message")))
        fail_msg("%s: no 413 JSON error read (body sent %zu, send: %s, end: %s); got: %.300s",
                 what, x->sent, x->send_errno ? strerror(x->send_errno) : "ok",
                 x->end_errno ? strerror(x->end_errno) : "end of stream", x->reply);
    json_decref(j);
}

/* GET /health on the one-worker server answers within ms. */
static void expect_worker_free(int ms, const char *after)
{
    long long t0 = now_ms();
    http_resp r;
    int rc = http_call(single.port, "GET", "/health", "", NULL, 0, ms, &r);
    if (rc != 0 || r.status != 200)
        fail_msg("after %s, the only worker did not answer GET /health within %d ms", after, ms);
    http_resp_free(&r);
    assert_true(now_ms() - t0 <= ms);
}

/* ---- tests --------------------------------------------------------------- */

static void test_a_1_mib_body_sent_whole_before_reading_gets_the_413_json(void **state)
{
    (void)state;
    const struct {
        test_proc *p;
        const char *path;
    } to[] = {{&cmd, "/api/v1/NewPost"}, {&query, "/api/v1/PostLookup"}};
    for (size_t i = 0; i < 2; i++) {
        char what[100];
        snprintf(what, sizeof what, "1 MiB to %s", to[i].path);
        exchange x = post_oversized(to[i].p->port, to[i].path, MIB, false);
        if (x.send_errno || x.sent != MIB)
            fail_msg("%s: the server took %zu of %d body bytes, then: %s", what, x.sent, MIB,
                     strerror(x.send_errno));
        expect_413_json(&x, what);
        if (x.end_errno)
            fail_msg("%s: the connection ended with %s, not a clean close", what,
                     strerror(x.end_errno));
        print_message("%s: all sent, 413 read, clean close %lld ms after the answer\n", what,
                      x.ended_ms);
    }
}

/* The largest of the three numbers in /proc/sys/net/ipv4/<name> (the
 * kernel's most for one socket's buffer), 0 if unknown. */
static size_t tcp_buffer_max(const char *name)
{
    char path[100];
    snprintf(path, sizeof path, "/proc/sys/net/ipv4/%s", name);
    FILE *f = fopen(path, "r");
    unsigned long lo = 0, def = 0, max = 0;
    bool ok = f && fscanf(f, "%lu %lu %lu", &lo, &def, &max) == 3;
    if (f)
        fclose(f);
    return ok ? max : 0;
}

static void test_bodies_over_the_linger_bound_get_the_413_json_and_free_the_worker(void **state)
{
    (void)state;
    /* what the server's receive buffer and the client's send buffer can
     * hold after the server stopped reading, and more */
    size_t chunked_len = HTTP_LINGER_MAX_BYTES + tcp_buffer_max("tcp_rmem") +
                         tcp_buffer_max("tcp_wmem") + 8 * MIB;
    for (int chunked = 0; chunked <= 1; chunked++) {
        size_t len = chunked ? chunked_len : 8 * MIB;
        char what[100];
        snprintf(what, sizeof what, "%zu MiB %s", len / MIB, chunked ? "chunked" : "declared");
        exchange x = post_oversized(single.port, "/api/v1/NewPost", len, chunked);
        expect_413_json(&x, what);
        print_message("%s: server took %zu bytes (send: %s), 413 read, connection ended (%s) "
                      "%lld ms after the answer\n",
                      what, x.sent, x.send_errno ? strerror(x.send_errno) : "all",
                      x.end_errno ? strerror(x.end_errno) : "clean", x.ended_ms);
        /* the server stopped taking the body (the client's write failed),
         * within the linger's time */
        if (!x.send_errno)
            fail_msg("%s: the server took the whole body", what);
        assert_true(x.ended_ms <= HTTP_LINGER_MS + MARGIN_MS);
        expect_worker_free(HTTP_LINGER_MS + MARGIN_MS, what);
    }
}

static void test_a_client_trickling_after_the_413_is_cut_off_by_the_linger_bound(void **state)
{
    (void)state;
    int fd = connect_to(single.port);
    const char *head = "POST /api/v1/NewPost HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";
    int err = 0;
    assert_int_equal(write_all(fd, head, strlen(head), &err), strlen(head));
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    /* The server's end of the reply (its half-close) arrives at once; that
     * it stopped reading shows as a reset: a send or a recv that fails. */
    long long t0 = now_ms(), ended = -1;
    char buf[4096];
    while (ended < 0 && now_ms() - t0 < HTTP_LINGER_MS + MARGIN_MS) {
        bool gone = send(fd, "x", 1, MSG_NOSIGNAL) != 1;
        usleep(100 * 1000);
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            ;
        if (gone || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            ended = now_ms() - t0;
    }
    close(fd);
    print_message("a byte every 100 ms after the 413: cut off after %lld ms (bound %d ms)\n",
                  ended, HTTP_LINGER_MS);
    if (ended < 0)
        fail_msg("a client trickling after the 413 held the connection for %d ms",
                 HTTP_LINGER_MS + MARGIN_MS);
    expect_worker_free(MARGIN_MS, "a trickling client");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_1_mib_body_sent_whole_before_reading_gets_the_413_json),
        cmocka_unit_test(test_bodies_over_the_linger_bound_get_the_413_json_and_free_the_worker),
        cmocka_unit_test(test_a_client_trickling_after_the_413_is_cut_off_by_the_linger_bound),
    };
    return cmocka_run_group_tests_name("oversized_body", tests, group_setup, group_teardown);
}
