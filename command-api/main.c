/* SPDX-License-Identifier: Apache-2.0 */
/* main.c — command-api: configuration, event store, HTTP server, signals.
 * Everything it wires together lives in the smpost_cmd library. */
#include "auth_mode.h"
#include "event_store.h"
#include "http_cors.h"
#include "http_server.h"
#include "post_repo.h"
#include "routes.h"
#include "sm_config.h"
#include "sm_log.h"
#include "sm_secret.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the admin listener (common/http_server.h) */
static char *admin_listen;
/* browser apps on other origins (common/http_cors.h) */
static char *cors_origins;
static char *listen_addr, *event_store_url, *kafka_bootstrap, *kafka_topic, *kafka_config;
static char *kafka_config_file;
static long port, threads, keep_alive_ms, request_timeout_ms;
static long max_attempts, snapshot_every, cache_mb;
static sm_log_level log_level;
/* the API documentation (common/http_docs.h) */
static char *swagger_ui_dir, *instance_id;
static long lease_ms;
static bool swagger;
/* authentication (common/auth_mode.h, common/auth_jwt.h) */
static char *auth_setting, *jwks_file, *hs256_secret_file, *jwt_issuer, *jwt_audience;
static char *jwt_name_claim, *jwt_roles_claim;
static long jwt_leeway_s;

static const sm_option options[] = {
    {"port", "SMPOST_PORT", SM_OPT_INT, "5001", 0, 65535, "HTTP port (0: any free port)", &port},
    {"listen", "SMPOST_LISTEN", SM_OPT_STRING, "127.0.0.1", 0, 0,
     "address to listen on (0.0.0.0 for all interfaces)", &listen_addr},
    {"admin-listen", "SMPOST_ADMIN_LISTEN", SM_OPT_STRING, NULL, 0, 0,
     "HOST:PORT of a second port that alone serves /metrics and RestoreReadDb"
     " (e.g. 127.0.0.1:9101); unset: the one port serves everything", &admin_listen},
    {"cors-origins", "SMPOST_CORS_ORIGINS", SM_OPT_STRING, NULL, 0, 0,
     "origins of browser apps allowed to call the API, comma-separated"
     " (https://app.example.com,http://localhost:3000) or *; unset: no CORS", &cors_origins},
    {"event-store", "SMPOST_EVENT_STORE", SM_OPT_STRING, "sqlite:var/events.db", 0, 0,
     "event store URL: sqlite:PATH or mongodb://HOST:PORT[/DB]", &event_store_url},
    {"kafka-bootstrap", "KAFKA_BOOTSTRAP_SERVERS", SM_OPT_STRING, "localhost:9092", 0, 0,
     "Kafka bootstrap servers; \"none\" stores events without publishing them",
     &kafka_bootstrap},
    {"kafka-topic", "KAFKA_TOPIC", SM_OPT_STRING, "SocialMediaPostEvents", 0, 0,
     "Kafka topic for post events", &kafka_topic},
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
    {"max-attempts", "SMPOST_MAX_ATTEMPTS", SM_OPT_INT, "10", 1, 1000,
     "attempts per command when concurrent writers conflict, then 409", &max_attempts},
    {"snapshot-every", "SMPOST_SNAPSHOT_EVERY", SM_OPT_INT, "100", 0, 1000000,
     "write a post's snapshot every N events (0: never)", &snapshot_every},
    {"aggregate-cache-mb", "SMPOST_AGGREGATE_CACHE_MB", SM_OPT_INT, "64", 0, 65536,
     "memory for cached posts, MiB (0: no cache)", &cache_mb},
    {"instance-id", "SMPOST_INSTANCE_ID", SM_OPT_STRING, NULL, 0, 0,
     "this instance's name in logs, /health, /metrics and the relay lease"
     " (default: HOSTNAME-PORT)", &instance_id},
    {"relay-lease-ms", "SMPOST_RELAY_LEASE_MS", SM_OPT_INT, "3000", 300, 600000,
     "relay leader lease: renewed every third, taken over after it lapses", &lease_ms},
    {"log-level", "SMPOST_LOG_LEVEL", SM_OPT_LOG_LEVEL, "info", 0, 0,
     "debug, info, warn or error", &log_level},
    {"swagger", "SMPOST_SWAGGER", SM_OPT_BOOL, "on", 0, 0,
     "serve /openapi.json and Swagger UI at /swagger/ (on or off)", &swagger},
    {"swagger-ui-dir", "SMPOST_SWAGGER_UI_DIR", SM_OPT_STRING, NULL, 0, 0, HTTP_DOCS_UI_DIR_HELP,
     &swagger_ui_dir},
    {"auth", "SMPOST_AUTH", SM_OPT_STRING, NULL, 0, 0,
     "jwt (commands need a bearer token) or off (names from the body); unset: off on"
     " loopback, refused elsewhere", &auth_setting},
    {"jwks-file", "SMPOST_JWKS_FILE", SM_OPT_STRING, NULL, 0, 0,
     "JWKS of the token issuer's public keys (reloaded on change and on SIGHUP)", &jwks_file},
    {"jwt-hs256-secret-file", "SMPOST_JWT_HS256_SECRET_FILE", SM_OPT_STRING, NULL, 0, 0,
     "file with an HS256 secret (unset: HS256 tokens are refused)", &hs256_secret_file},
    {"jwt-issuer", "SMPOST_JWT_ISSUER", SM_OPT_STRING, NULL, 0, 0,
     "required iss of tokens", &jwt_issuer},
    {"jwt-audience", "SMPOST_JWT_AUDIENCE", SM_OPT_STRING, NULL, 0, 0,
     "required aud of tokens", &jwt_audience},
    {"jwt-leeway-s", "SMPOST_JWT_LEEWAY_S", SM_OPT_INT, "60", 0, 3600,
     "clock skew allowed on exp and nbf, seconds", &jwt_leeway_s},
    {"jwt-name-claim", "SMPOST_JWT_NAME_CLAIM", SM_OPT_STRING, AUTH_DEFAULT_NAME_CLAIM, 0, 0,
     "claim holding the user's name (author / username)", &jwt_name_claim},
    {"jwt-roles-claim", "SMPOST_JWT_ROLES_CLAIM", SM_OPT_STRING, AUTH_DEFAULT_ROLES_CLAIM, 0, 0,
     "claim holding the roles (moderator, admin), a string array", &jwt_roles_claim},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static bool publishing_enabled(void)
{
    return kafka_bootstrap && *kafka_bootstrap && strcmp(kafka_bootstrap, "none") != 0;
}

static void startup_failed(const char *component, const sm_error *err)
{
    char q[SM_ERROR_MAX + 16];
    sm_log(SM_LOG_ERROR, "startup_failed", "component=%s error=%s", component,
           sm_log_quote(err->message, q, sizeof q));
}

/* The verifier for SMPOST_AUTH=jwt; NULL and err filled when a setting or
 * the key file is missing or wrong. */
static auth_verifier *open_verifier(sm_error *err)
{
    auth_config ac;
    auth_config_init(&ac);
    ac.jwks_file = jwks_file;
    ac.hs256_secret_file = hs256_secret_file;
    ac.issuer = jwt_issuer;
    ac.audience = jwt_audience;
    ac.leeway_s = (int)jwt_leeway_s;
    ac.name_claim = jwt_name_claim;
    ac.roles_claim = jwt_roles_claim;
    return auth_verifier_new(&ac, err);
}

/* SIGHUP: reread the JWKS, here in the main thread's sigwait loop, never in
 * a signal handler. */
static void reload_keys(auth_verifier *v)
{
    sm_error err = {0};
    char q[SM_ERROR_MAX + 16];
    if (auth_verifier_reload(v, &err) == SM_OK)
        sm_log(SM_LOG_INFO, "jwks_reloaded", "reason=SIGHUP");
    else
        sm_log(SM_LOG_WARN, "jwks_reload_failed", "reason=SIGHUP error=%s effect=\"old keys kept\"",
               sm_log_quote(err.message, q, sizeof q));
}

int main(int argc, char **argv)
{
    int code = sm_config_start(options, NOPTIONS, argc, argv, "command-api",
                               "smpost command API: accepts post commands and stores "
                               "their events.");
    if (code >= 0)
        return code;
    sm_error err = {0};
    sm_log_set_level(log_level);
    cmd_app app = {0};
    if (!sm_config_instance_id(instance_id, port, app.instance, sizeof app.instance, &err)) {
        fprintf(stderr, "command-api: %s\n", err.message);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    sm_log_set_instance(app.instance);
    auth_mode mode;
    if (auth_mode_resolve_listeners(auth_setting, listen_addr, admin_listen, &mode, &err) !=
        SM_OK) {
        fprintf(stderr, "command-api: %s\n", err.message);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    char **extra = NULL;
    if (sm_secret_check_settings("SMPOST_EVENT_STORE", event_store_url, kafka_config_file,
                                 kafka_config, &extra, &err) != SM_OK) {
        fprintf(stderr, "command-api: %s\n", err.message);
        sm_config_free(options, NOPTIONS);
        return 2;
    }
    if (mode == AUTH_MODE_JWT && !(app.auth = open_verifier(&err))) {
        fprintf(stderr, "command-api: SMPOST_AUTH=jwt, but the token verifier cannot start: %s "
                "(set SMPOST_JWKS_FILE, SMPOST_JWT_ISSUER and SMPOST_JWT_AUDIENCE; "
                "docs/operations.md, Authentication)\n", err.message);
        sm_strv_free(extra);
        sm_config_free(options, NOPTIONS);
        return 2;
    }

    http_cors *cors = NULL;
    if (http_cors_parse("SMPOST_CORS_ORIGINS", cors_origins, &cors, &err) != SM_OK) {
        fprintf(stderr, "command-api: %s\n", err.message);
        auth_verifier_free(app.auth);
        sm_strv_free(extra);
        sm_config_free(options, NOPTIONS);
        return 2;
    }

    sigset_t stop;
    /* with tokens, SIGHUP rereads the keys (the loop at the end) */
    sm_block_stop_signals(&stop, app.auth ? SIGHUP : 0, 0);

    int rc = 1;
    http_server *server = NULL;
    if (es_open(event_store_url, &app.store, &err) != ES_OK) {
        char url[512], msg[SM_ERROR_MAX], q[SM_ERROR_MAX + 16];
        sm_log(SM_LOG_ERROR, "startup_failed",
               "component=event_store setting=SMPOST_EVENT_STORE url=%s error=%s",
               sm_log_redact_url(event_store_url, url, sizeof url),
               sm_log_quote(sm_log_redact_url(err.message, msg, sizeof msg), q, sizeof q));
        goto out;
    }
    cmd_context_init(&app.cmd, app.store);
    app.cmd.max_attempts = (int)max_attempts;
    /* a command gives up (503) in time to be answered within the request
     * timeout, with room left for a loaded machine to send the reply */
    app.cmd.budget_ms = request_timeout_ms * 9 / 10;
    /* A batch of commands on one post is one multi-event append; a store
     * that may refuse those (MongoDB needs a transaction, which a standalone
     * server or FerretDB 1.x lacks) takes commands one at a time, as before
     * batching (dispatcher.h). */
    if (!es_multi_append(app.store))
        app.cmd.max_batch = 1;
    post_repo_config rc_cfg = {(int)snapshot_every, (size_t)cache_mb << 20};
    if (!(app.cmd.repo = post_repo_new(app.store, &rc_cfg, &err))) {
        startup_failed("post_repo", &err);
        goto out_cmd;
    }
    if (publishing_enabled()) {
        relay_opts ro = {.store = app.store,
                         .bus = {kafka_bootstrap, kafka_topic, "smpost-command-api",
                                 (const char *const *)extra},
                         .instance_id = app.instance,
                         .lease_ttl_ms = (int)lease_ms};
        app.relay = relay_start(&ro, &err);
        if (!app.relay) {
            startup_failed("kafka", &err);
            goto out_cmd;
        }
        app.cmd.on_appended = relay_on_appended;
        app.cmd.on_appended_arg = app.relay;
    } else {
        sm_log(SM_LOG_WARN, "publishing_disabled",
               "reason=\"kafka-bootstrap is none\" effect=\"events are stored, not published\"");
    }
    app.docs = (http_docs){swagger,
                           http_docs_pick_ui_dir(swagger_ui_dir, HTTP_DOCS_UI_DIR_DEFAULT,
                                                 HTTP_DOCS_UI_DIR_INSTALLED),
                           sm_openapi_command_json};
    http_docs_log_status(&app.docs, "command-api");
    /* drain on SIGTERM for as long as a request may take */
    http_server_opts so = {listen_addr, port, threads, request_timeout_ms, request_timeout_ms,
                           keep_alive_ms, admin_listen, cors};
    server = http_server_start(&so, routes_handle, &app, &err);
    if (!server) {
        startup_failed("http", &err);
        goto out_cmd;
    }
    sm_log(SM_LOG_INFO, "listening",
           "service=command-api addr=%s port=%d event_store=%s kafka=%s kafka_topic=%s auth=%s"
           " admin_port=%d",
           listen_addr, http_server_port(server), es_adapter_name(app.store), kafka_bootstrap,
           kafka_topic, app.auth ? "jwt" : "off", http_server_admin_port(server));
    int sig = 0;
    while (sigwait(&stop, &sig) == 0 && sig == SIGHUP)
        reload_keys(app.auth);
    sm_log(SM_LOG_INFO, "stopping", "signal=%d", sig);
    http_server_stop(server); /* waits for in-flight requests */
    rc = 0;
out_cmd:
    /* After the server: no new events can arrive while the relay flushes. */
    relay_stop(app.relay, 5000);
    post_repo_free(app.cmd.repo);
    cmd_context_destroy(&app.cmd);
out:
    sm_strv_free(extra);
    es_close(app.store);
    auth_verifier_free(app.auth);
    http_cors_free(cors);
    sm_config_free(options, NOPTIONS);
    return rc;
}
