/* SPDX-License-Identifier: Apache-2.0 */
/* http_client.h — a minimal blocking HTTP/1.1 client for tests (loopback
 * only, one request per connection). Enough to drive the real binaries
 * without pulling libcurl into the test build. */
#ifndef TEST_HTTP_CLIENT_H
#define TEST_HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct http_resp {
    int status;      /* 0 if the exchange failed */
    char *head;      /* raw status line + headers, NUL-terminated */
    char *body;      /* NUL-terminated body (may be "") */
    size_t body_len;
    json_t *json;    /* body parsed as JSON, or NULL */
} http_resp;

/* Sends one request to 127.0.0.1:port. extra_headers is "" or lines each
 * ending in "\r\n". Returns 0 and fills *out, or -1 on a socket error or
 * timeout (timeout_ms for the whole exchange). Caller frees with
 * http_resp_free. */
int http_call(int port, const char *method, const char *path, const char *extra_headers,
              const char *body, size_t body_len, int timeout_ms, http_resp *out);

/* How an exchange ended, for callers that must tell "never sent" from
 * "sent, outcome unknown" (fault tests). */
typedef enum {
    HTTP_CALL_OK = 0,         /* a response was received (*out filled) */
    HTTP_CALL_NOT_SENT = -1,  /* no connection: the server never saw it */
    HTTP_CALL_NO_REPLY = -2,  /* connection dropped before a full response */
    HTTP_CALL_TIMEOUT = -3,   /* no full response within timeout_ms */
} http_call_result;

/* Like http_call, telling the failures apart. */
http_call_result http_call_ex(int port, const char *method, const char *path,
                              const char *extra_headers, const char *body, size_t body_len,
                              int timeout_ms, http_resp *out);

/* Convenience: JSON body with Content-Type: application/json (body may be
 * NULL for none). */
int http_json(int port, const char *method, const char *path, const char *body, http_resp *out);

/* Connections the caller holds open, for tests of keep-alive (one request
 * after another on one connection, many idle connections at once). */

/* Connects to 127.0.0.1:port within timeout_ms. Returns the socket (the
 * caller closes it) or -1. */
int http_conn_open(int port, int timeout_ms);

/* Sends one request without a body on fd, as HTTP/1.1 keep-alive (no
 * Connection header unless extra_headers has one), and reads exactly its
 * response (by Content-Length), leaving fd open for the next. */
http_call_result http_conn_call(int fd, const char *method, const char *path,
                                const char *extra_headers, int timeout_ms, http_resp *out);

/* True when the server has closed fd (end of stream or reset), false when
 * it is open with nothing to read. Does not wait; any bytes waiting are
 * consumed. */
bool http_conn_closed(int fd);

/* Value of header name (case-insensitive) copied into buf, or NULL. */
const char *http_resp_header(const http_resp *r, const char *name, char *buf, size_t cap);

/* String member of the JSON body, or NULL. Borrowed. */
const char *http_resp_str(const http_resp *r, const char *key);

void http_resp_free(http_resp *r);

#endif
