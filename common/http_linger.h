/* SPDX-License-Identifier: Apache-2.0 */
/* http_linger.h — closing a connection whose request body was not read, so
 * that the client can read the reply (nginx's "lingering close").
 *
 * A server that answers before it has read the whole body (413 from the
 * Content-Length, a refused path) and then closes the connection makes
 * the kernel reset it: closing with bytes unread, or receiving more after
 * the close, sends RST. A client that writes its whole body before it
 * reads (Python's urllib, for one) then fails with EPIPE or ECONNRESET,
 * and never reads the reply. RFC 9112, 9.6 asks a server to half-close instead
 * and keep reading until the client is done; civetweb 1.15 does so only on
 * Windows (on Linux it shuts the write side and closes at once).
 *
 * http_linger() does it, after the reply was written: it shuts the write
 * side (the client sees the end of the reply), then reads and discards
 * what the client still sends until the client closes, or nothing came
 * for HTTP_LINGER_IDLE_MS, or HTTP_LINGER_MS passed in all, or
 * HTTP_LINGER_MAX_BYTES were discarded; civetweb then closes the socket.
 * A body declared longer than HTTP_LINGER_MAX_BYTES is not waited for at
 * all (the client could not finish sending it anyway), nor is one of a
 * request that declared none. So a worker is held at most HTTP_LINGER_MS
 * longer, and a body of up to HTTP_LINGER_MAX_BYTES is taken whole. */
#ifndef HTTP_LINGER_H
#define HTTP_LINGER_H

#define HTTP_LINGER_MS 2000                     /* longest linger in all */
#define HTTP_LINGER_IDLE_MS 1000                /* ... and without a byte */
#define HTTP_LINGER_MAX_BYTES (4 * 1024 * 1024) /* most bytes discarded */

struct mg_connection;

/* Lingers on conn as described above; request_id names it in the debug
 * log line. Call from the worker serving conn, after the reply, with
 * keep-alive disabled (nothing may be read from conn afterwards). Does
 * nothing when there is no body to wait for, or when conn's socket cannot
 * be found; then the connection closes as it would have. */
void http_linger(struct mg_connection *conn, const char *request_id);

#endif
