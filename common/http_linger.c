/* SPDX-License-Identifier: Apache-2.0 */
/* http_linger.c — see http_linger.h.
 *
 * civetweb 1.15 has no call that returns a connection's socket, so it is
 * looked up among this process's descriptors by its two ends: the peer is
 * the client's address and port (mg_request_info), the local port the
 * server's. A TCP connection's ends are unique while it is open, and the
 * calling worker keeps conn's open, so no other socket can match; other
 * descriptors may be opened and closed meanwhile, but only their names are
 * read. The lookup lists /proc/self/fd, a few hundred entries with
 * hundreds of connections open, and runs only on this error path. */
#include "http_linger.h"

#include "sm_log.h"
#include "sm_time.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* True if sa is port on addr (addr NULL: any address), civetweb's text
 * form of an address being inet_ntop's. */
static bool is_end(const struct sockaddr_storage *sa, const char *addr, int port)
{
    char text[INET6_ADDRSTRLEN];
    int p;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        p = ntohs(in->sin_port);
        if (addr && !inet_ntop(AF_INET, &in->sin_addr, text, sizeof text))
            return false;
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        p = ntohs(in6->sin6_port);
        if (addr && !inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text))
            return false;
    } else {
        return false;
    }
    return p == port && (!addr || strcmp(text, addr) == 0);
}

static bool is_conn_socket(int fd, const struct mg_request_info *ri)
{
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof peer, ll = sizeof local;
    return getpeername(fd, (struct sockaddr *)&peer, &pl) == 0 &&
           is_end(&peer, ri->remote_addr, ri->remote_port) &&
           getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
           is_end(&local, NULL, ri->server_port);
}

/* conn's socket (see the top of this file), or -1. */
static int find_socket(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(d));) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (end != e->d_name && !*end && fd != dirfd(d) && is_conn_socket((int)fd, ri))
            found = (int)fd;
    }
    closedir(d);
    return found;
}

/* Whether the client may still be sending a body worth waiting for. */
static bool body_to_wait_for(const struct mg_connection *conn)
{
    long long declared = mg_get_request_info(conn)->content_length;
    const char *te = mg_get_header(conn, "Transfer-Encoding");
    bool chunked = te && strcasestr(te, "chunked");
    if (declared > HTTP_LINGER_MAX_BYTES)
        return false;
    return declared > 0 || chunked;
}

/* Reads and discards from fd within the bounds (http_linger.h); adds the
 * bytes to *discarded and returns what ended it. */
static const char *discard(int fd, size_t *discarded)
{
    int64_t deadline = sm_mono_ms() + HTTP_LINGER_MS;
    char buf[8192];
    for (;;) {
        int64_t left = deadline - sm_mono_ms();
        if (left <= 0)
            return "time";
        if (*discarded >= HTTP_LINGER_MAX_BYTES)
            return "bytes";
        int wait = left < HTTP_LINGER_IDLE_MS ? (int)left : HTTP_LINGER_IDLE_MS;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, wait);
        if (r == 0)
            return wait == HTTP_LINGER_IDLE_MS ? "idle" : "time";
        ssize_t n = r > 0 ? recv(fd, buf, sizeof buf, MSG_DONTWAIT) : -1;
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return n == 0 ? "client_closed" : "error";
        *discarded += (size_t)n;
    }
}

void http_linger(struct mg_connection *conn, const char *request_id)
{
    if (!body_to_wait_for(conn))
        return;
    int fd = find_socket(conn);
    if (fd < 0) {
        sm_log(SM_LOG_DEBUG, "http_linger", "req=%s effect=\"socket not found, closed at once\"",
               request_id);
        return;
    }
    shutdown(fd, SHUT_WR); /* the end of the reply, for the client */
    int64_t start = sm_mono_ms();
    size_t discarded = 0;
    const char *end = discard(fd, &discarded);
    sm_log(SM_LOG_DEBUG, "http_linger", "req=%s discarded=%zu ms=%lld end=%s", request_id,
           discarded, (long long)(sm_mono_ms() - start), end);
}
