/* http_server.c — civetweb glue (see http_server.h). */
#include "http_server.h"

#include "sm_log.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_server {
    struct mg_context *ctx;
    http_handler_fn handler;
    void *app;
    int port;
};

static int on_request(struct mg_connection *conn, void *cbdata)
{
    http_server *s = cbdata;
    int status = http_serve(conn, s->handler, s->app);
    return status > 0 ? status : 500; /* non-zero: handled */
}

/* civetweb reports its own errors (bad requests it rejects before routing,
 * socket trouble) through this callback; route them to our log format. */
static int on_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char q[600];
    sm_log(SM_LOG_WARN, "http_server", "msg=%s", sm_log_quote(message, q, sizeof q));
    return 1;
}

http_server *http_server_start(const http_server_opts *opts, http_handler_fn handler, void *app,
                               sm_error *err)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->handler = handler;
    s->app = app;
    char ports[96], threads[16], timeout[24];
    snprintf(ports, sizeof ports, "%s:%ld", opts->listen_addr, opts->port);
    snprintf(threads, sizeof threads, "%ld", opts->threads);
    snprintf(timeout, sizeof timeout, "%ld", opts->request_timeout_ms);
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", threads,
        "request_timeout_ms", timeout,
        "enable_keep_alive", "yes",
        "keep_alive_timeout_ms", "30000",
        "tcp_nodelay", "1",
        NULL, NULL,
    };
    struct mg_callbacks cb = {0};
    cb.log_message = on_log_message;
    s->ctx = mg_start(&cb, s, options);
    if (!s->ctx) {
        sm_fail(err, SM_ERR_UNAVAILABLE, "cannot listen on %s (port in use or address invalid)",
                ports);
        free(s);
        return NULL;
    }
    mg_set_request_handler(s->ctx, "/", on_request, s);
    struct mg_server_port sp[4];
    int n = mg_get_server_ports(s->ctx, 4, sp);
    s->port = n > 0 ? sp[0].port : (int)opts->port;
    return s;
}

int http_server_port(const http_server *s) { return s->port; }

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    mg_stop(s->ctx);
    free(s);
}
