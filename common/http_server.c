/* SPDX-License-Identifier: Apache-2.0 */
/* http_server.c — civetweb glue (see http_server.h).
 *
 * Connections held are counted with civetweb's init_connection and
 * connection_close callbacks, which it calls when a worker takes a
 * connection and when it lets it go, whatever ended it (a client close, a
 * keep-alive or request timeout, an unparsable request): the count is the
 * number of workers taken by connections, idle or not.
 *
 * The drain bookkeeping lives here rather than in civetweb: civetweb has no
 * "stop accepting but finish what you have" mode (mg_stop() sets a flag that
 * also makes mg_write() give up, so replies of running handlers are lost).
 * A counter of requests inside the handler, guarded by one mutex, and a
 * draining flag checked under the same mutex are enough: a request either
 * got in before the flag (and is waited for) or sees it (and gets 503).
 *
 * The admin listener is a second entry of listening_ports in the same
 * context rather than a second context: the drain, the stop and the
 * connection count above then cover both ports with no more code. */
#include "http_server.h"

#include "sm_json.h"
#include "sm_log.h"
#include "sm_text.h"
#include "sm_time.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct http_server {
    struct mg_context *ctx;
    http_handler_fn handler;
    void *app;
    int port;
    int admin_port;        /* 0: no admin listener */
    char wake_addr[64];    /* where to connect to end the listener's poll */
    long drain_ms;
    const struct http_cors *cors; /* borrowed; NULL: CORS off */

    pthread_mutex_t lock;  /* guards inflight and draining */
    pthread_cond_t idle;   /* signalled when inflight drops to 0 */
    int inflight;          /* requests inside handler */
    bool draining;

    atomic_int conns;      /* connections held by a worker, idle or busy */
    int keep_limit;        /* above this many, replies close their connection */
};

/* The reply to a request that arrives while the server drains: it never
 * reaches the application, so the client may safely send it again. */
static void reply_draining(void *app, const http_request *req, http_reply *reply)
{
    (void)app;
    (void)req;
    http_reply_error(reply, SM_ERR_UNAVAILABLE, "The server is shutting down; retry the request.");
    reply->retry_after = 1;
    reply->close = true;
}

/* The application's handler, for a request whose connection is not kept
 * alive after the reply (too many connections held; see http_server.h). */
static void handle_then_close(void *server, const http_request *req, http_reply *reply)
{
    http_server *s = server;
    s->handler(s->app, req, reply);
    reply->close = true;
}

/* The port a request came on, told apart by civetweb's server_port (the
 * listening port that accepted the connection). */
static http_listener listener_of(const http_server *s, struct mg_connection *conn)
{
    if (s->admin_port == 0)
        return HTTP_LISTENER_SOLE;
    return mg_get_request_info(conn)->server_port == s->admin_port ? HTTP_LISTENER_ADMIN
                                                                     : HTTP_LISTENER_PUBLIC;
}

/* Every request, from civetweb's begin_request callback: it is set in the
 * callbacks given to mg_start(), so it is in place before civetweb listens.
 * A handler registered with mg_set_request_handler() after mg_start() came
 * too late for a request that arrived in between: civetweb answered it by
 * itself ("405 PUT method not allowed"; tests/acceptance/
 * test_startup_race.c). civetweb calls begin_request after parsing the
 * request and removing "." and ".." segments from the path (the URL is not
 * decoded: decode_url=no), before anything of its own (CORS preflight,
 * files, PUT/DELETE); returning the status (> 0) tells it the request was
 * answered. */
static int on_request(struct mg_connection *conn)
{
    http_server *s = mg_get_user_data(mg_get_context(conn));
    http_listener l = listener_of(s, conn);
    pthread_mutex_lock(&s->lock);
    bool admitted = !s->draining;
    if (admitted)
        s->inflight++;
    pthread_mutex_unlock(&s->lock);
    if (!admitted) {
        int status = http_serve(conn, l, reply_draining, NULL, s->cors);
        return status > 0 ? status : 503;
    }
    bool keep = atomic_load(&s->conns) <= s->keep_limit;
    int status = keep ? http_serve(conn, l, s->handler, s->app, s->cors)
                      : http_serve(conn, l, handle_then_close, s, s->cors);
    pthread_mutex_lock(&s->lock);
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    return status > 0 ? status : 500; /* non-zero: handled */
}

static int on_connection_taken(const struct mg_connection *conn, void **conn_data)
{
    http_server *s = mg_get_user_data(mg_get_context(conn));
    *conn_data = NULL;
    atomic_fetch_add(&s->conns, 1);
    return 0;
}

static void on_connection_released(const struct mg_connection *conn)
{
    http_server *s = mg_get_user_data(mg_get_context(conn));
    atomic_fetch_sub(&s->conns, 1);
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

static void server_free(http_server *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->idle);
    free(s);
}

/* civetweb answers some requests itself, before any handler runs: a
 * malformed request line or header, headers that did not all arrive within
 * request_timeout_ms, headers over its size limit. Those answers get the
 * same JSON error body as every other error (docs/api.md, "Errors") instead
 * of civetweb's text page; the connection is closed after it. */
static int on_http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    /* 505 (an HTTP version it does not speak) is the client's doing too */
    const char *code = status == 408   ? "request_timeout"
                       : status == 413 ? "payload_too_large"
                       : status == 500 ? "internal"
                       : status == 503 ? "unavailable"
                                       : "invalid_request";
    bool shown = errmsg && *errmsg && sm_utf8_valid(errmsg, strlen(errmsg));
    json_t *body = json_pack("{s:s, s:s}", "message",
                             shown ? errmsg : "The request could not be read.", "error", code);
    char *text = body ? sm_json_dump(body) : NULL;
    json_decref(body);
    if (!text)
        return 1; /* out of memory: let civetweb send its own page */
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\n"
              "Content-Type: application/json; charset=utf-8\r\n"
              "Content-Length: %zu\r\n"
              "Cache-Control: no-store\r\n"
              "Connection: close\r\n\r\n%s",
              status, mg_get_response_code_text(conn, status), strlen(text), text);
    free(text);
    return 0;
}

/* The listening_ports option: the public address, then the admin one. */
static sm_status listening_ports(const http_server_opts *opts, char *out, size_t cap,
                                 sm_error *err)
{
    snprintf(out, cap, "%s:%ld", opts->listen_addr, opts->port);
    if (!opts->admin_listen || !*opts->admin_listen)
        return SM_OK;
    char host[80];
    long admin_port;
    if (http_listen_parse(opts->admin_listen, host, sizeof host, &admin_port, err) != SM_OK)
        return err->status;
    if (admin_port != 0 && admin_port == opts->port)
        return sm_fail(err, SM_ERR_INVALID,
                       "the admin listener %.80s uses the public port %ld; give it another port",
                       opts->admin_listen, opts->port);
    size_t n = strlen(out);
    snprintf(out + n, cap - n, ",%s:%ld", host, admin_port);
    return SM_OK;
}

http_server *http_server_start(const http_server_opts *opts, http_handler_fn handler, void *app,
                               sm_error *err)
{
    char ports[200];
    if (listening_ports(opts, ports, sizeof ports, err) != SM_OK)
        return NULL;
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        sm_fail(err, SM_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->handler = handler;
    s->app = app;
    s->cors = opts->cors;
    s->drain_ms = opts->drain_ms > 0 ? opts->drain_ms : opts->request_timeout_ms;
    long spare = opts->threads / 8 > 1 ? opts->threads / 8 : 1;
    /* without keep-alive every reply says Connection: close */
    s->keep_limit = opts->keep_alive_ms > 0 ? (int)(opts->threads - spare) : 0;
    atomic_init(&s->conns, 0);
    pthread_mutex_init(&s->lock, NULL);
    sm_cond_init(&s->idle);
    char threads[16], timeout[24], keep_alive[24];
    snprintf(threads, sizeof threads, "%ld", opts->threads);
    snprintf(timeout, sizeof timeout, "%ld", opts->request_timeout_ms);
    snprintf(keep_alive, sizeof keep_alive, "%ld", opts->keep_alive_ms);
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", threads,
        "request_timeout_ms", timeout,
        /* http_serve decodes the path itself, refusing %2F and %00 */
        "decode_url", "no",
        "enable_keep_alive", opts->keep_alive_ms > 0 ? "yes" : "no",
        "keep_alive_timeout_ms", keep_alive,
        "tcp_nodelay", "1",
        /* civetweb's CORS (default origin "*") off: http_cors.h alone decides */
        "access_control_allow_origin", "",
        "access_control_allow_methods", "",
        "access_control_allow_headers", "",
        NULL, NULL,
    };
    struct mg_callbacks cb = {0};
    cb.begin_request = on_request;
    cb.init_connection = on_connection_taken;
    cb.connection_close = on_connection_released;
    cb.log_message = on_log_message;
    cb.http_error = on_http_error;
    s->ctx = mg_start(&cb, s, options);
    if (!s->ctx) {
        sm_fail(err, SM_ERR_UNAVAILABLE, "cannot listen on %s (port in use or address invalid)",
                ports);
        server_free(s);
        return NULL;
    }
    struct mg_server_port sp[4];
    int n = mg_get_server_ports(s->ctx, 4, sp);
    s->port = n > 0 ? sp[0].port : (int)opts->port;
    bool admin = opts->admin_listen && *opts->admin_listen;
    s->admin_port = admin && n > 1 ? sp[1].port : 0;
    if (admin && (s->admin_port == 0 || s->admin_port == s->port)) {
        /* port 0 for both, or the OS handed the same number on two addresses */
        sm_fail(err, SM_ERR_INVALID, "the admin listener %.80s did not get a port of its own",
                opts->admin_listen);
        mg_stop(s->ctx);
        server_free(s);
        return NULL;
    }
    /* the wildcard address is reached on loopback */
    snprintf(s->wake_addr, sizeof s->wake_addr, "%s",
             strcmp(opts->listen_addr, "0.0.0.0") == 0 ? "127.0.0.1" : opts->listen_addr);
    return s;
}

int http_server_port(const http_server *s) { return s->port; }

int http_server_admin_port(const http_server *s) { return s->admin_port; }

/* Waits until no request is inside the handler or drain_ms passed; returns
 * how many are still running. Called with s->lock held. */
static int wait_idle(http_server *s)
{
    int64_t until = sm_mono_ms() + s->drain_ms;
    while (s->inflight > 0)
        if (sm_cond_wait_until(&s->idle, &s->lock, until) == ETIMEDOUT)
            break;
    return s->inflight;
}

/* civetweb (1.15) notices that it is being stopped only when the poll on
 * its listening socket returns, which it does every 2 s if no client
 * connects: mg_stop() alone could take 2 s, query-api's whole exit budget.
 * While it runs, this thread connects to the port every 50 ms and closes
 * at once (no request, so nothing is answered), which ends that poll. */
typedef struct listener_waker {
    pthread_t thread;
    struct sockaddr_in addr;
    atomic_bool done;
} listener_waker;

static void *wake_listener(void *arg)
{
    listener_waker *w = arg;
    while (!atomic_load(&w->done)) {
        /* non-blocking: a full backlog must not hold this thread */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            if (connect(fd, (struct sockaddr *)&w->addr, sizeof w->addr) != 0) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                poll(&pfd, 1, 50);
            }
            close(fd);
        }
        sm_sleep_ms(50);
    }
    return NULL;
}

/* mg_stop, with the listener woken (see listener_waker). */
static void stop_civetweb(http_server *s)
{
    listener_waker w = {.addr = {.sin_family = AF_INET}};
    w.addr.sin_port = htons((uint16_t)s->port);
    atomic_init(&w.done, false);
    bool waking = inet_pton(AF_INET, s->wake_addr, &w.addr.sin_addr) == 1 &&
                  pthread_create(&w.thread, NULL, wake_listener, &w) == 0;
    mg_stop(s->ctx);
    if (waking) {
        atomic_store(&w.done, true);
        pthread_join(w.thread, NULL);
    }
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    int64_t t0 = sm_mono_ms();
    pthread_mutex_lock(&s->lock);
    s->draining = true;
    int waiting = s->inflight;
    int left = wait_idle(s);
    pthread_mutex_unlock(&s->lock);
    int64_t drained = sm_mono_ms() - t0;
    if (left > 0)
        sm_log(SM_LOG_WARN, "http_drain_timeout",
               "inflight=%d drain_ms=%ld effect=\"their replies may be lost\"", left, s->drain_ms);
    stop_civetweb(s);
    sm_log(SM_LOG_INFO, "http_stopped", "port=%d inflight_at_stop=%d drain_ms=%lld total_ms=%lld",
           s->port, waiting, (long long)drained, (long long)(sm_mono_ms() - t0));
    server_free(s);
}
