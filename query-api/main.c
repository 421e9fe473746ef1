/* SPDX-License-Identifier: Apache-2.0 */
/* main.c — query-api: configuration, read model, Kafka projector, HTTP
 * server, signals. */
#include "auth_mode.h"
#include "http_cors.h"
#include "http_server.h"
#include "projector.h"
#include "queries.h"
#include "read_model.h"
#include "query_routes.h"
#include "sm_config.h"
#include "sm_log.h"
#include "sm_secret.h"
#include "sm_time.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* the admin listener (common/http_server.h) */
static char *admin_listen;
/* browser apps on other origins (common/http_cors.h) */
static char *cors_origins;
static char *listen_addr, *read_model_url, *kafka_bootstrap, *kafka_topic, *kafka_config,
    *kafka_group, *kafka_config_file;
static long port, threads, keep_alive_ms, request_timeout_ms, wait_ms;
/* answer sizes (queries.h) */
static long comments_inline, max_response_bytes;
#define STR_(x) #x
#define STR(x) STR_(x)
static sm_log_level log_level;
/* the API documentation (common/http_docs.h) */
static char *swagger_ui_dir, *instance_id;
static bool swagger;
/* Protected mode (common/auth_mode.h). query-api serves only public reads
 * so far: jwt here only tells protected mode that tokens are configured;
 * protecting /metrics comes with the admin listener (issue 16). */
static char *auth_setting;
/* TLS to SQL Server (rm_mssql.c): the CA file, passed as ca= in the
 * read model's connection string */
static char *mssql_tls_ca, *rm_url_tls;

static const sm_option options[] = {
    {"port", "SMPOST_PORT", SM_OPT_INT, "5002", 0, 65535, "HTTP port (0: any free port)", &port},
    {"listen", "SMPOST_LISTEN", SM_OPT_STRING, "127.0.0.1", 0, 0,
     "address to listen on (0.0.0.0 for all interfaces)", &listen_addr},
    {"admin-listen", "SMPOST_ADMIN_LISTEN", SM_OPT_STRING, NULL, 0, 0,
     "HOST:PORT of a second port that alone serves /metrics (e.g. 127.0.0.1:9101);"
     " unset: the one port serves everything", &admin_listen},
    {"cors-origins", "SMPOST_CORS_ORIGINS", SM_OPT_STRING, NULL, 0, 0,
     "origins of browser apps allowed to call the API, comma-separated"
     " (https://app.example.com,http://localhost:3000) or *; unset: no CORS", &cors_origins},
    {"read-model", "SMPOST_READ_MODEL", SM_OPT_STRING, "sqlite:var/readmodel.db", 0, 0,
     "read model URL: sqlite:PATH or mssql:host=H;port=P;user=U;password=W;database=D",
     &read_model_url},
    {"mssql-tls-ca", "SMPOST_MSSQL_TLS_CA", SM_OPT_STRING, NULL, 0, 0,
     "PEM CA file: the mssql: read model requires TLS, verified against it, hostname"
     " checked (the same as ca=PATH in the connection string)",
     &mssql_tls_ca},
    {"kafka-bootstrap", "KAFKA_BOOTSTRAP_SERVERS", SM_OPT_STRING, "localhost:9092", 0, 0,
     "Kafka bootstrap servers; \"none\" serves the read model without consuming",
     &kafka_bootstrap},
    {"kafka-topic", "KAFKA_TOPIC", SM_OPT_STRING, "SocialMediaPostEvents", 0, 0,
     "Kafka topic of post events (dead letters go to <topic>.DLQ)", &kafka_topic},
    {"kafka-group", "KAFKA_GROUP_ID", SM_OPT_STRING, "SM_Consumer", 0, 0,
     "Kafka consumer group", &kafka_group},
    {"kafka-config", "SMPOST_KAFKA_CONFIG", SM_OPT_STRING, NULL, 0, 0,
     "extra librdkafka properties, comma-separated key=value", &kafka_config},
    {"kafka-config-file", "SMPOST_KAFKA_CONFIG_FILE", SM_OPT_STRING, NULL, 0, 0,
     "file of librdkafka properties, key=value lines (# comments), before --kafka-config",
     &kafka_config_file},
    {"threads", "SMPOST_HTTP_THREADS", SM_OPT_INT, HTTP_SERVER_THREADS_DEFAULT, 1, 1024,
     "HTTP worker threads: connections served at once, idle keep-alive ones included",
     &threads},
    {"keep-alive-ms", "SMPOST_HTTP_KEEP_ALIVE_MS", SM_OPT_INT, HTTP_SERVER_KEEP_ALIVE_MS_DEFAULT,
     0, 600000, "close an idle keep-alive connection after this long (0: no keep-alive)",
     &keep_alive_ms},
    {"request-timeout-ms", "SMPOST_REQUEST_TIMEOUT_MS", SM_OPT_INT, "10000", 100, 600000,
     "drop a request (or a slow client) after this long", &request_timeout_ms},
    {"min-version-wait-ms", "SMPOST_MIN_VERSION_WAIT_MS", SM_OPT_INT, "2000", 0, 30000,
     "how long byId?minVersion=V waits for the projection", &wait_ms},
    {"comments-inline", "SMPOST_COMMENTS_INLINE", SM_OPT_INT, STR(QUERY_DEFAULT_COMMENTS_INLINE),
     0, QUERY_MAX_COMMENTS_INLINE,
     "newest comments a PostEntity carries (the others: GET .../comments/{postId}); 0: none",
     &comments_inline},
    {"max-response-bytes", "SMPOST_MAX_RESPONSE_BYTES", SM_OPT_INT,
     STR(QUERY_DEFAULT_MAX_RESPONSE_BYTES), 65536, 1073741824,
     "byte budget of a list or comment page: it ends early (nextCursor) rather than pass it;"
     " at least one post's worst case", &max_response_bytes},
    {"instance-id", "SMPOST_INSTANCE_ID", SM_OPT_STRING, NULL, 0, 0,
     "this instance's name in logs, /health and /metrics (default: HOSTNAME-PORT)",
     &instance_id},
    {"log-level", "SMPOST_LOG_LEVEL", SM_OPT_LOG_LEVEL, "info", 0, 0,
     "debug, info, warn or error", &log_level},
    {"swagger", "SMPOST_SWAGGER", SM_OPT_BOOL, "on", 0, 0,
     "serve /openapi.json and Swagger UI at /swagger/ (on or off)", &swagger},
    {"swagger-ui-dir", "SMPOST_SWAGGER_UI_DIR", SM_OPT_STRING, NULL, 0, 0, HTTP_DOCS_UI_DIR_HELP,
     &swagger_ui_dir},
    {"auth", "SMPOST_AUTH", SM_OPT_STRING, NULL, 0, 0,
     "jwt or off; unset: off on loopback, refused elsewhere (queries stay public)",
     &auth_setting},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Opens the read model, waiting for a server that is still starting (as in
 * a compose stack) until it answers or a stop signal arrives. */
static rm_store *open_read_model(const sigset_t *stop)
{
    for (;;) {
        rm_store *rm = NULL;
        sm_error err = {0};
        sm_status st = rm_open(rm_url_tls ? rm_url_tls : read_model_url, &rm, &err);
        if (st == SM_OK)
            return rm;
        char q[SM_ERROR_MAX + 8], msg[SM_ERROR_MAX];
        sm_log(st == SM_ERR_UNAVAILABLE ? SM_LOG_WARN : SM_LOG_ERROR, "read_model_open_failed",
               "error=%s%s",
               sm_log_quote(sm_log_redact_url(err.message, msg, sizeof msg), q, sizeof q),
               st == SM_ERR_UNAVAILABLE ? " retry_in_ms=2000" : "");
        if (st != SM_ERR_UNAVAILABLE)
            return NULL;
        struct timespec two = {2, 0};
        if (sigtimedwait(stop, NULL, &two) > 0)
            return NULL;
    }
}

int main(int argc, char **argv)
{
    int code = sm_config_start(options, NOPTIONS, argc, argv, "query-api",
                               "smpost query API: projects post events into a read "
                               "model and answers queries.");
    if (code >= 0)
        return code;
    sm_error err = {0};
    char q[SM_ERROR_MAX + 8]; /* an error message quoted for a log line */
    sm_log_set_level(log_level);
    query_limits limits = {comments_inline, max_response_bytes};
    query_app app = {.min_version_wait_ms = (int)wait_ms,
                     .request_timeout_ms = (int)request_timeout_ms,
                     .limits = &limits};
    if (max_response_bytes < query_min_response_bytes(comments_inline)) {
        /* else one post could not fit in a page, and a page would break
         * its own bound */
        fprintf(stderr,
                "query-api: SMPOST_MAX_RESPONSE_BYTES must be at least %lld with"
                " SMPOST_COMMENTS_INLINE=%ld (the largest answer holding one post)\n",
                (long long)query_min_response_bytes(comments_inline), comments_inline);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    if (!sm_config_instance_id(instance_id, port, app.instance, sizeof app.instance, &err)) {
        fprintf(stderr, "query-api: %s\n", err.message);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    sm_log_set_instance(app.instance);
    auth_mode mode;
    if (auth_mode_resolve_listeners(auth_setting, listen_addr, admin_listen, &mode, &err) !=
        SM_OK) {
        fprintf(stderr, "query-api: %s\n", err.message);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    char **extra = NULL;
    if (sm_secret_check_settings("SMPOST_READ_MODEL", read_model_url, kafka_config_file,
                                 kafka_config, &extra, &err) != SM_OK) {
        fprintf(stderr, "query-api: %s\n", err.message);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    if (mssql_tls_ca && *mssql_tls_ca) {
        const char *why = NULL;
        if (!read_model_url || strncmp(read_model_url, "mssql:", 6) != 0)
            why = "SMPOST_MSSQL_TLS_CA is set but the read model (SMPOST_READ_MODEL) is not mssql:";
        else if (strchr(mssql_tls_ca, ';'))
            why = "SMPOST_MSSQL_TLS_CA must not contain ';'";
        else if (asprintf(&rm_url_tls, "%s;ca=%s", read_model_url, mssql_tls_ca) < 0) {
            rm_url_tls = NULL;
            why = "out of memory";
        }
        if (why) {
            fprintf(stderr, "query-api: %s\n", why);
            sm_config_free(options, NOPTIONS);
            return 2;
        }
    }
    http_cors *cors = NULL;
    if (http_cors_parse("SMPOST_CORS_ORIGINS", cors_origins, &cors, &err) != SM_OK) {
        fprintf(stderr, "query-api: %s\n", err.message);
        free(rm_url_tls);
        sm_strv_free(extra);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    sigset_t stop;
    sm_block_stop_signals(&stop, 0, 0);

    int rc = 1;
    http_server *server = NULL;
    app.rm = open_read_model(&stop);
    if (!app.rm)
        goto out;
    if (kafka_bootstrap && *kafka_bootstrap && strcmp(kafka_bootstrap, "none") != 0) {
        projector_opts po = {app.rm, {kafka_bootstrap, kafka_topic, "smpost-query-api",
                                            (const char *const *)extra},
                             kafka_group, 0};
        app.proj = projector_start(&po, &err);
        if (!app.proj) {
            sm_log(SM_LOG_ERROR, "startup_failed", "component=kafka error=%s",
                   sm_log_quote(err.message, q, sizeof q));
            goto out;
        }
    } else {
        sm_log(SM_LOG_WARN, "consumer_disabled", "reason=\"kafka-bootstrap is none\"");
    }
    app.docs = (http_docs){swagger,
                           http_docs_pick_ui_dir(swagger_ui_dir, HTTP_DOCS_UI_DIR_DEFAULT,
                                                 HTTP_DOCS_UI_DIR_INSTALLED),
                           sm_openapi_query_json};
    http_docs_log_status(&app.docs, "query-api");
    /* drain on SIGTERM for as long as a request may take */
    http_server_opts so = {listen_addr, port, threads, request_timeout_ms, request_timeout_ms,
                           keep_alive_ms, admin_listen, cors};
    server = http_server_start(&so, query_routes_handle, &app, &err);
    if (!server) {
        sm_log(SM_LOG_ERROR, "startup_failed", "component=http error=%s",
               sm_log_quote(err.message, q, sizeof q));
        goto out;
    }
    sm_log(SM_LOG_INFO, "listening",
           "service=query-api addr=%s port=%d read_model=%s kafka=%s kafka_topic=%s group=%s"
           " auth=%s admin_port=%d",
           listen_addr, http_server_port(server), rm_adapter_name(app.rm), kafka_bootstrap,
           kafka_topic, kafka_group, mode == AUTH_MODE_JWT ? "jwt" : "off",
           http_server_admin_port(server));
    int sig = 0;
    sigwait(&stop, &sig);
    sm_log(SM_LOG_INFO, "stopping", "signal=%d", sig);
    rc = 0;
out:
    http_server_stop(server);        /* no request is in flight after this */
    projector_stop(app.proj); /* commits, leaves the group */
    rm_close(app.rm);
    sm_strv_free(extra);
    free(rm_url_tls);
    http_cors_free(cors);
    sm_config_free(options, NOPTIONS);
    return rc;
}
