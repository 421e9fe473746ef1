/* SPDX-License-Identifier: Apache-2.0 */
/* http_client.c — see http_client.h. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, long long deadline)
{
    long long left = deadline - now_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = {fd, ev, 0};
    return poll(&p, 1, (int)left) == 1 ? 0 : -1;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len > 0) {
        if (wait_fd(fd, POLLOUT, deadline) != 0)
            return -1;
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int parse_response(char *data, size_t len, http_resp *out)
{
    char *end = strstr(data, "\r\n\r\n");
    if (!end || sscanf(data, "HTTP/1.%*d %d", &out->status) != 1)
        return -1;
    size_t head_len = (size_t)(end - data) + 2;
    out->head = strndup(data, head_len);
    size_t off = head_len + 2;
    out->body_len = len - off;
    out->body = malloc(out->body_len + 1);
    if (!out->head || !out->body)
        return -1;
    memcpy(out->body, data + off, out->body_len);
    out->body[out->body_len] = '\0';
    out->json = out->body_len ? json_loadb(out->body, out->body_len, 0, NULL) : NULL;
    return 0;
}

http_call_result http_call_ex(int port, const char *method, const char *path,
                              const char *extra_headers, const char *body, size_t body_len,
                              int timeout_ms, http_resp *out)
{
    memset(out, 0, sizeof *out);
    long long deadline = now_ms() + timeout_ms;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return HTTP_CALL_NOT_SENT;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    http_call_result rc = HTTP_CALL_NOT_SENT;
    char *req = NULL, *buf = NULL;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)
        goto done;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (wait_fd(fd, POLLOUT, deadline) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
        goto done;
    /* From here on the server may have read (part of) the request. */
    rc = HTTP_CALL_NO_REPLY;
    size_t cap = strlen(path) + strlen(extra_headers ? extra_headers : "") + 256;
    req = malloc(cap);
    if (!req)
        goto done;
    int hl = snprintf(req, cap,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                      "%sContent-Length: %zu\r\n\r\n",
                      method, path, port, extra_headers ? extra_headers : "", body_len);
    if (send_all(fd, req, (size_t)hl, deadline) != 0 ||
        (body_len && send_all(fd, body, body_len, deadline) != 0))
        goto done;
    size_t len = 0, bcap = 8192;
    buf = malloc(bcap);
    for (;;) {
        if (!buf)
            goto done;
        if (len + 1 >= bcap) {
            char *b = realloc(buf, bcap *= 2);
            if (!b)
                goto done;
            buf = b;
        }
        if (wait_fd(fd, POLLIN, deadline) != 0) {
            if (now_ms() >= deadline)
                rc = HTTP_CALL_TIMEOUT;
            goto done;
        }
        ssize_t n = recv(fd, buf + len, bcap - len - 1, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    rc = parse_response(buf, len, out) == 0 ? HTTP_CALL_OK : HTTP_CALL_NO_REPLY;
done:
    if (rc != HTTP_CALL_OK)
        http_resp_free(out);
    free(req);
    free(buf);
    close(fd);
    return rc;
}

int http_call(int port, const char *method, const char *path, const char *extra_headers,
              const char *body, size_t body_len, int timeout_ms, http_resp *out)
{
    return http_call_ex(port, method, path, extra_headers, body, body_len, timeout_ms, out) ==
                   HTTP_CALL_OK
               ? 0
               : -1;
}

int http_conn_open(int port, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if ((connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) ||
        wait_fd(fd, POLLOUT, deadline) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Bytes of one whole response at the start of data (head, blank line and
 * Content-Length bytes of body), or 0 while it is incomplete. */
static size_t response_size(const char *data, size_t len)
{
    const char *end = strstr(data, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head = (size_t)(end - data) + 4;
    long long body = 0;
    for (const char *h = strstr(data, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
            body = atoll(h + 17);
    return len >= head + (size_t)body ? head + (size_t)body : 0;
}

http_call_result http_conn_call(int fd, const char *method, const char *path,
                                const char *extra_headers, int timeout_ms, http_resp *out)
{
    memset(out, 0, sizeof *out);
    long long deadline = now_ms() + timeout_ms;
    char req[2048];
    int hl = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", method,
                      path, extra_headers ? extra_headers : "");
    if (hl < 0 || (size_t)hl >= sizeof req || send_all(fd, req, (size_t)hl, deadline) != 0)
        return HTTP_CALL_NO_REPLY;
    char buf[16384];
    size_t len = 0, whole = 0;
    while (!whole) {
        if (len + 1 >= sizeof buf)
            return HTTP_CALL_NO_REPLY;
        if (wait_fd(fd, POLLIN, deadline) != 0)
            return now_ms() >= deadline ? HTTP_CALL_TIMEOUT : HTTP_CALL_NO_REPLY;
        ssize_t n = recv(fd, buf + len, sizeof buf - len - 1, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return HTTP_CALL_NO_REPLY;
        len += (size_t)n;
        buf[len] = '\0';
        whole = response_size(buf, len);
    }
    buf[whole] = '\0';
    if (parse_response(buf, whole, out) != 0) {
        http_resp_free(out);
        return HTTP_CALL_NO_REPLY;
    }
    return HTTP_CALL_OK;
}

bool http_conn_closed(int fd)
{
    for (;;) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
}

int http_json(int port, const char *method, const char *path, const char *body, http_resp *out)
{
    return http_call(port, method, path, body ? "Content-Type: application/json\r\n" : "", body,
                     body ? strlen(body) : 0, 10000, out);
}

const char *http_resp_header(const http_resp *r, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = r->head ? strstr(r->head, "\r\n") : NULL; line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r");
            if (vl >= cap)
                vl = cap - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return buf;
        }
    }
    return NULL;
}

const char *http_resp_str(const http_resp *r, const char *key)
{
    return r->json ? json_string_value(json_object_get(r->json, key)) : NULL;
}

void http_resp_free(http_resp *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}
