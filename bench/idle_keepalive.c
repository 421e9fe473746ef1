/* SPDX-License-Identifier: Apache-2.0 */
/* idle_keepalive.c — bench/run.sh's "idle keep-alive" phase: how fast a
 * server answers new connections while many keep-alive connections sit
 * idle, as a client pool or a proxy leaves them between requests
 * (docs/operations.md, "HTTP connections").
 *
 *   idle_keepalive [-i IDLE] [-n SAMPLES] [-w WARMUP] [-t TIMEOUT_MS]
 *                  [--path PATH] [--name NAME] URL
 *
 * Opens IDLE (256) connections at once, asks GET PATH (/health) on each,
 * reads the answers and leaves the connections open; then times SAMPLES
 * (200) requests, one after another and each on a fresh connection
 * (connect, GET PATH with Connection: close, the whole answer), after
 * WARMUP (5) untimed ones; then counts the idle connections still open.
 * One line of key=value:
 *
 *   idle_keepalive name=.. idle=256 answered=256 held=256 samples=200
 *     ok=200 p50_ms=.. p99_ms=.. max_ms=.. errors=0
 *
 * answered: idle connections whose request was answered; held: idle
 * connections still open after the samples (a server closes idle ones
 * after its keep-alive timeout, and those it answered with
 * Connection: close). A sample runs from connect() to the end of its
 * answer; one without a 2xx answer within TIMEOUT_MS (10000) is an error,
 * timed as the time it took. Exit status: 0 when every request got a 2xx
 * answer, 1 otherwise, 2 for bad usage. */
#include "lg_http.h"
#include "lg_stats.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_IDLE 4096

typedef struct conn {
    int fd;
    char buf[4096];
    size_t len;
    bool answered;
} conn;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A connected socket to u with send/receive timeouts of timeout_ms, or -1. */
static int open_conn(const lg_url *u, int timeout_ms)
{
    int fd = socket(u->addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)&u->addr, u->addr_len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_get(int fd, const lg_url *u, const char *path, bool close_after)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, u->host,
                     close_after ? "Connection: close\r\n" : "");
    return n > 0 && (size_t)n < sizeof req && send(fd, req, (size_t)n, MSG_NOSIGNAL) == n;
}

/* Reads more of c's answer; true once it is complete (answered says
 * whether it was a 2xx) or the connection failed. */
static bool read_answer(conn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n <= 0)
        return true;
    c->len += (size_t)n;
    lg_response r;
    long whole = lg_http_parse(c->buf, c->len, &r);
    if (whole == 0 && c->len < sizeof c->buf)
        return false;
    c->answered = whole > 0 && r.status >= 200 && r.status < 300;
    return true;
}

/* Opens n connections, sends GET path on each at once, and waits up to
 * timeout_ms for the answers. Returns how many were answered 2xx. */
static int open_idle(const lg_url *u, const char *path, conn *cs, int n, int timeout_ms)
{
    struct pollfd *ps = calloc((size_t)n + 1, sizeof *ps);
    int pending = 0, answered = 0;
    for (int i = 0; i < n; i++)
        cs[i].fd = -1;
    for (int i = 0; i < n && ps; i++) {
        cs[i].fd = open_conn(u, timeout_ms);
        bool sent = cs[i].fd >= 0 && send_get(cs[i].fd, u, path, false);
        ps[i] = (struct pollfd){sent ? cs[i].fd : -1, POLLIN, 0};
        pending += sent;
    }
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    while (ps && pending > 0 && now_ns() < deadline) {
        int wait_ms = (int)((deadline - now_ns()) / 1000000) + 1;
        if (poll(ps, (nfds_t)n, wait_ms) <= 0)
            continue;
        for (int i = 0; i < n; i++)
            if (ps[i].fd >= 0 && ps[i].revents && read_answer(&cs[i])) {
                ps[i].fd = -1;
                pending--;
                answered += cs[i].answered;
            }
    }
    free(ps);
    return answered;
}

/* One request on a fresh connection; its time in ns (negative if it got no
 * 2xx answer). */
static int64_t fresh_request(const lg_url *u, const char *path, int timeout_ms)
{
    int64_t t0 = now_ns();
    conn c = {.fd = open_conn(u, timeout_ms)};
    bool done = c.fd >= 0 && !send_get(c.fd, u, path, true);
    while (c.fd >= 0 && !done)
        done = read_answer(&c);
    if (c.fd >= 0)
        close(c.fd);
    int64_t took = now_ns() - t0;
    return c.answered ? took : -took;
}

/* True while the server keeps fd open (nothing to read, no end of stream). */
static bool still_open(int fd)
{
    char b[256];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Raises the soft limit on open files to cover n connections. */
static void ensure_fds(int n)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)n + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: idle_keepalive [-i IDLE] [-n SAMPLES] [-w WARMUP] [-t TIMEOUT_MS]\n"
                 "                      [--path PATH] [--name NAME] URL\n"
                 "  URL  http://HOST:PORT of the server (see the top of idle_keepalive.c)\n");
}

int main(int argc, char **argv)
{
    int idle = 256, samples = 200, warmup = 5, timeout_ms = 10000;
    const char *path = "/health", *name = "idle";
    static const struct option longs[] = {
        {"path", 1, 0, 'p'}, {"name", 1, 0, 'N'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "i:n:w:t:h", longs, NULL)) != -1) {
        switch (c) {
        case 'i': idle = atoi(optarg); break;
        case 'n': samples = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 't': timeout_ms = atoi(optarg); break;
        case 'p': path = optarg; break;
        case 'N': name = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    lg_url u;
    char why[300];
    if (argc - optind != 1 || idle < 0 || idle > MAX_IDLE || samples < 1 || warmup < 0 ||
        timeout_ms < 1) {
        usage(stderr);
        return 2;
    }
    if (!lg_url_parse(argv[optind], &u, why, sizeof why)) {
        fprintf(stderr, "idle_keepalive: %s\n", why);
        return 2;
    }
    ensure_fds(idle);
    conn *cs = calloc((size_t)idle + 1, sizeof *cs);
    if (!cs)
        return 1;
    int answered = open_idle(&u, path, cs, idle, timeout_ms);
    lg_samples lat = {0};
    long ok = 0, errors = 0;
    for (int i = -warmup; i < samples; i++) {
        int64_t t = fresh_request(&u, path, timeout_ms);
        if (i < 0)
            continue;
        ok += t >= 0;
        errors += t < 0;
        lg_samples_add(&lat, t >= 0 ? t : -t, 0);
    }
    int held = 0;
    for (int i = 0; i < idle; i++) {
        held += cs[i].fd >= 0 && still_open(cs[i].fd);
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    }
    printf("idle_keepalive name=%s idle=%d answered=%d held=%d samples=%d ok=%ld p50_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f errors=%ld\n",
           name, idle, answered, held, samples, ok, lg_samples_pct(&lat, 50, -1),
           lg_samples_pct(&lat, 99, -1), lg_samples_pct(&lat, 100, -1),
           errors + (idle - answered));
    lg_samples_free(&lat);
    free(cs);
    return errors == 0 && answered == idle ? 0 : 1;
}
