/* SPDX-License-Identifier: Apache-2.0 */
/* http_server.h — the civetweb HTTP server of a binary: start on an address and
 * port with a worker pool, route every request through one handler, stop.
 * Shared shape for both binaries; the handler decides the routes.
 *
 * The handler is in place before the port accepts connections, so every
 * request civetweb can parse reaches it, from the first moment on, and
 * civetweb answers nothing by itself (no CORS preflight, no files, no
 * PUT/DELETE of its own); what it cannot parse gets the same JSON error
 * body through its http_error callback. civetweb's own CORS options are
 * emptied, so no header of its making contradicts SMPOST_CORS_ORIGINS
 * (http_cors.h), which alone decides CORS.
 *
 * Connections and workers: civetweb serves each connection on one worker
 * thread for as long as it is open, idle keep-alive time included, so a
 * client pool or proxy that keeps N connections open holds N workers even
 * when it sends nothing. Hence many workers: civetweb starts all of them in
 * mg_start(), each with a 100 KiB stack (fixed by Debian's build of
 * civetweb 1.15, whatever glibc's default thread attributes say) and about
 * 30 KiB resident while idle: the default 512 cost about 15 MB more than 32
 * (docs/operations.md, "HTTP connections"). An idle connection is closed
 * after keep_alive_ms. And so that idle connections cannot take every
 * worker, a reply goes out with Connection: close, and its connection is
 * closed, whenever the connections held exceed threads - threads/8 (one
 * worker at least is kept for new connections): past that point a client
 * gets its answer but not keep-alive, and new connections keep finding
 * workers.
 * Connections beyond the workers wait unserved (civetweb's queue, then the
 * kernel's listen backlog) only while every worker is busy with a request
 * or a client slower than that; the request timeout bounds that.
 *
 * Graceful stop: civetweb's own mg_stop() makes every worker stop writing
 * at once, so a request whose handler is still running (a command whose
 * event is already stored) would lose its reply. http_server_stop()
 * therefore drains first: from that moment every new request is answered
 * 503 without reaching the handler, and the requests already inside the
 * handler run to the end and send their replies; only then is civetweb
 * stopped. A client sees either a complete reply or a request that was
 * never processed (503, or a connection closed before it was read).
 *
 * Admin listener: with admin_listen set, the same civetweb context listens
 * on a second address and port (listening_ports "0.0.0.0:5001,
 * 127.0.0.1:9101": one worker pool, one drain, one stop), and every request
 * tells the handler which port it came on (http_request.listener, from
 * civetweb's server_port, so the two ports must differ). The routes decide
 * what each port serves (http_route_served, http_util.h); the public port
 * answers 404 for what only the admin port serves. */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include "http_util.h"
#include "sm_error.h"

typedef struct http_server http_server;

/* Defaults of the binaries' --threads and --keep-alive-ms options (text,
 * for their sm_option tables). */
#define HTTP_SERVER_THREADS_DEFAULT "512"
#define HTTP_SERVER_KEEP_ALIVE_MS_DEFAULT "5000"

typedef struct http_server_opts {
    const char *listen_addr;  /* e.g. "127.0.0.1" or "0.0.0.0" */
    long port;                /* 0: let the OS choose; see http_server_port */
    long threads;             /* worker threads: connections served at once */
    long request_timeout_ms;  /* a request that takes longer is dropped */
    long drain_ms;            /* stop: longest wait for in-flight requests
                               * (0: request_timeout_ms) */
    long keep_alive_ms;       /* an idle keep-alive connection is closed after
                               * this long (0: no keep-alive) */
    const char *admin_listen; /* "HOST:PORT" of the admin listener, or NULL /
                               * "" for none (http_listen_parse, http_util.h) */
    const struct http_cors *cors; /* CORS policy (http_cors.h), borrowed for the
                                   * server's life; NULL: off */
} http_server_opts;


/* Starts serving; handler(app, ...) is called from worker threads and must be
 * thread-safe. Returns NULL and fills err if a port cannot be bound, or if
 * admin_listen is malformed or names the public port. */
http_server *http_server_start(const http_server_opts *opts, http_handler_fn handler, void *app,
                               sm_error *err);

/* The port actually bound (useful with port 0). */
int http_server_port(const http_server *s);

/* The admin listener's port actually bound; 0 when there is none. */
int http_server_admin_port(const http_server *s);

/* Stops gracefully (see the top of this file): new requests get 503 with
 * Retry-After: 1 and Connection: close; waits up to drain_ms for the
 * requests in the handler to send their replies, then stops civetweb
 * (closing the listening socket takes up to 2 s more: civetweb polls it
 * with that period) and frees s. Call from one thread, once; NULL is a
 * no-op. */
void http_server_stop(http_server *s);

#endif
