/* SPDX-License-Identifier: Apache-2.0 */
/* ceiling.c — the HTTP ceiling for bench/run.sh: smpost's HTTP edge with a
 * handler that does no work.
 *
 *   ceiling [--port N] [--listen ADDR] [--threads N] [--log-level L] ...
 *
 * It starts the server through common/http_server.c, exactly as
 * command-api and query-api do, so the civetweb options (worker threads,
 * keep-alive, TCP_NODELAY, timeouts) and the per-request edge work in
 * http_serve() (request id, body read, JSON reply, metrics, one log line)
 * are identical by construction; only the route does nothing. Every
 * request, whatever its path or verb, is answered 200 with a small JSON
 * body. Runs until SIGINT or SIGTERM. The options and their defaults are
 * the services' own (SMPOST_PORT, SMPOST_HTTP_THREADS, SMPOST_LOG_LEVEL...),
 * so the ceiling sees the same environment as the stack it is compared
 * with. */
#include "http_server.h"
#include "sm_config.h"
#include "sm_log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static char *listen_addr;
static long port, threads, keep_alive_ms, request_timeout_ms;
static sm_log_level log_level;

static const sm_option options[] = {
    {"port", "SMPOST_PORT", SM_OPT_INT, "5009", 0, 65535, "HTTP port (0: any free port)", &port},
    {"listen", "SMPOST_LISTEN", SM_OPT_STRING, "127.0.0.1", 0, 0, "address to listen on",
     &listen_addr},
    {"threads", "SMPOST_HTTP_THREADS", SM_OPT_INT, HTTP_SERVER_THREADS_DEFAULT, 1, 1024,
     "HTTP worker threads: connections served at once, idle keep-alive ones included",
     &threads},
    {"keep-alive-ms", "SMPOST_HTTP_KEEP_ALIVE_MS", SM_OPT_INT, HTTP_SERVER_KEEP_ALIVE_MS_DEFAULT,
     0, 600000, "close an idle keep-alive connection after this long (0: no keep-alive)",
     &keep_alive_ms},
    {"request-timeout-ms", "SMPOST_REQUEST_TIMEOUT_MS", SM_OPT_INT, "10000", 100, 600000,
     "drop a request (or a slow client) after this long", &request_timeout_ms},
    {"log-level", "SMPOST_LOG_LEVEL", SM_OPT_LOG_LEVEL, "info", 0, 0,
     "debug, info, warn or error", &log_level},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* The trivial route: no parsing, no storage, a constant answer. */
static void handle(void *app, const http_request *req, http_reply *reply)
{
    (void)app;
    (void)req;
    reply->route = "/";
    http_reply_json(reply, 200, json_pack("{s:s}", "message", "ok"));
}

int main(int argc, char **argv)
{
    int code = sm_config_start(options, NOPTIONS, argc, argv, "ceiling",
                               "smpost HTTP ceiling: the services' HTTP edge with a route "
                               "that does nothing (bench/run.sh).");
    if (code >= 0)
        return code;
    sm_log_set_level(log_level);
    sigset_t stop;
    sm_block_stop_signals(&stop, 0, 0);
    sm_error err = {0};
    http_server_opts so = {.listen_addr = listen_addr, .port = port, .threads = threads,
                           .request_timeout_ms = request_timeout_ms,
                           .keep_alive_ms = keep_alive_ms};
    http_server *server = http_server_start(&so, handle, NULL, &err);
    if (!server) {
        sm_log(SM_LOG_ERROR, "startup_failed", "component=http error=\"%s\"", err.message);
        sm_config_free(options, NOPTIONS);
        return 1;
    }
    sm_log(SM_LOG_INFO, "listening", "service=ceiling addr=%s port=%d", listen_addr,
           http_server_port(server));
    int sig = 0;
    sigwait(&stop, &sig);
    http_server_stop(server);
    sm_config_free(options, NOPTIONS);
    return 0;
}
