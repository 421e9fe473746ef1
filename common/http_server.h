/* http_server.h — the civetweb HTTP server of a binary: start on an address and
 * port with a worker pool, route every request through one handler, stop.
 * Shared shape for both binaries; the handler decides the routes. */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include "http_util.h"
#include "sm_error.h"

typedef struct http_server http_server;

typedef struct http_server_opts {
    const char *listen_addr;  /* e.g. "127.0.0.1" or "0.0.0.0" */
    long port;                /* 0: let the OS choose; see http_server_port */
    long threads;             /* worker threads */
    long request_timeout_ms;  /* a request that takes longer is dropped */
} http_server_opts;

/* Starts serving; handler(app, ...) is called from worker threads and must be
 * thread-safe. Returns NULL and fills err if the port cannot be bound. */
http_server *http_server_start(const http_server_opts *opts, http_handler_fn handler, void *app,
                               sm_error *err);

/* The port actually bound (useful with port 0). */
int http_server_port(const http_server *s);

/* Stops accepting, waits for in-flight requests, frees s. */
void http_server_stop(http_server *s);

#endif
