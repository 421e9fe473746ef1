/* SPDX-License-Identifier: Apache-2.0 */
/* routes.c — route table and the HTTP <-> command translation. */
#include "routes.h"

#include "auth_mode.h"
#include "history.h"
#include "post_repo.h"
#include "sm_json.h"
#include "sm_log.h"
#include "sm_metrics.h"
#include "sm_text.h"
#include "sm_time.h"
#include "sm_version.h"
#include "sqlite_group.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef enum {
    R_COMMAND, R_HISTORY, R_RESTORE, R_HEALTH, R_METRICS, R_OPENAPI, R_SWAGGER
} route_kind;

/* What a route needs when auth is on (routes.h). */
typedef enum { NEED_NOTHING, NEED_TOKEN, NEED_ADMIN } route_need;

typedef struct route {
    const char *method;
    const char *prefix;  /* matched case-insensitively */
    bool has_id;         /* prefix is followed by "/{postId}" */
    route_kind kind;
    int op;              /* R_COMMAND: a cmd_type; R_HISTORY: a hist_kind */
    const char *pattern; /* as documented */
    route_need need;     /* with SMPOST_AUTH=jwt */
    http_route_place place; /* with an admin listener (http_util.h) */
} route;

static const route routes[] = {
    {"POST", "/api/v1/NewPost", false, R_COMMAND, CMD_NEW_POST, "/api/v1/NewPost", NEED_TOKEN,
     HTTP_PLACE_PUBLIC},
    {"PUT", "/api/v1/EditMessage", true, R_COMMAND, CMD_EDIT_MESSAGE,
     "/api/v1/EditMessage/{postId}", NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"PUT", "/api/v1/LikePost", true, R_COMMAND, CMD_LIKE_POST, "/api/v1/LikePost/{postId}",
     NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"PUT", "/api/v1/AddComment", true, R_COMMAND, CMD_ADD_COMMENT,
     "/api/v1/AddComment/{postId}", NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"PUT", "/api/v1/EditComment", true, R_COMMAND, CMD_EDIT_COMMENT,
     "/api/v1/EditComment/{postId}", NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"DELETE", "/api/v1/RemoveComment", true, R_COMMAND, CMD_REMOVE_COMMENT,
     "/api/v1/RemoveComment/{postId}", NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"DELETE", "/api/v1/DeletePost", true, R_COMMAND, CMD_DELETE_POST,
     "/api/v1/DeletePost/{postId}", NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"GET", "/api/v1/PostHistory", true, R_HISTORY, HIST_POST_HISTORY,
     "/api/v1/PostHistory/{postId}", NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"GET", "/api/v1/PostAt", true, R_HISTORY, HIST_POST_AT, "/api/v1/PostAt/{postId}",
     NEED_TOKEN, HTTP_PLACE_PUBLIC},
    {"POST", "/api/v1/RestoreReadDb", false, R_RESTORE, 0, "/api/v1/RestoreReadDb", NEED_ADMIN,
     HTTP_PLACE_ADMIN},
    {"GET", "/health", false, R_HEALTH, 0, "/health", NEED_NOTHING, HTTP_PLACE_BOTH},
    {"GET", "/metrics", false, R_METRICS, 0, "/metrics", NEED_ADMIN, HTTP_PLACE_ADMIN},
    /* the API documentation (common/http_docs.h) */
    {"GET", "/openapi.json", false, R_OPENAPI, 0, "/openapi.json", NEED_NOTHING,
     HTTP_PLACE_PUBLIC},
    {"GET", "/swagger", false, R_SWAGGER, 0, "/swagger", NEED_NOTHING, HTTP_PLACE_PUBLIC},
    {"GET", "/swagger", true, R_SWAGGER, 0, "/swagger/{file}", NEED_NOTHING,
     HTTP_PLACE_PUBLIC},
};

#define NROUTES (sizeof routes / sizeof routes[0])

size_t routes_list(size_t i, const char **method, const char **pattern)
{
    if (i < NROUTES) {
        *method = routes[i].method;
        *pattern = routes[i].pattern;
    }
    return NROUTES;
}

static void reply_command(http_reply *reply, cmd_type type, const cmd_result *res)
{
    json_t *body = json_object();
    if (type == CMD_NEW_POST)
        json_object_set_new(body, "id", json_string(res->post_id));
    json_object_set_new(body, "message", json_string(res->message));
    if (type == CMD_ADD_COMMENT)
        json_object_set_new(body, "commentId", json_string(res->comment_id));
    json_object_set_new(body, "version", json_integer(res->version));
    http_reply_json(reply, type == CMD_NEW_POST ? 201 : 200, body);
    snprintf(reply->etag, sizeof reply->etag, "%lld", (long long)res->version);
}

/* Decodes the body of a body-taking command: JSON content type, one object.
 * *body is a new reference on success. */
static sm_status read_json_body(const http_request *req, json_t **body, sm_error *err)
{
    *body = NULL;
    if (req->body_len > 0 && !http_is_json_type(req->content_type))
        return sm_fail(err, SM_ERR_MEDIA_TYPE,
                       "Content-Type must be application/json, got '%.60s'.",
                       req->content_type ? req->content_type : "(none)");
    return sm_json_parse_object(req->body, req->body_len, body, err);
}

/* The body field that names the caller, or NULL (EditMessage, LikePost). */
static const char *name_field(cmd_type type)
{
    switch (type) {
    case CMD_NEW_POST:
        return "author";
    case CMD_ADD_COMMENT:
    case CMD_EDIT_COMMENT:
    case CMD_REMOVE_COMMENT:
    case CMD_DELETE_POST:
        return "username";
    default:
        return NULL;
    }
}

/* With a verified token: the token's name stands for the body's author /
 * username. A body value that names someone else is 403; one that matches
 * (compared as the aggregate compares it: posts' authors ignoring case,
 * comments' usernames exactly) or none is replaced by the token's name. */
static sm_status bind_identity(command *cmd, json_t **body, const auth_identity *who,
                               sm_error *err)
{
    cmd->actor = who->name;
    cmd->moderator = auth_identity_has_role(who, "moderator");
    cmd->user_id = who->sub;
    if (cmd->type == CMD_LIKE_POST)
        return SM_OK;
    if (!who->name[0])
        return sm_fail(err, SM_ERR_FORBIDDEN,
                       "The token carries no name claim; this command needs the caller's name.");
    const char *field = name_field(cmd->type);
    if (!field)
        return SM_OK;
    if (!*body && !(*body = json_object()))
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    json_t *v = sm_json_get_ci(*body, field); /* field names match ignoring case */
    if (v && !json_is_null(v) && !json_is_string(v))
        return sm_fail(err, SM_ERR_INVALID, "The %s field must be a string.", field);
    const char *given = json_string_value(v);
    bool ci = cmd->type == CMD_NEW_POST || cmd->type == CMD_DELETE_POST;
    if (given && !(ci ? sm_text_equal_ci(given, who->name) : strcmp(given, who->name) == 0))
        return sm_fail(err, SM_ERR_FORBIDDEN,
                       "The %s in the body is not the name in the bearer token; "
                       "omit it or give the same name.", field);
    if (json_object_set_new(*body, field, json_string(who->name)) != 0)
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    return SM_OK;
}

static void handle_command(cmd_app *app, const route *r, const char *id, size_t id_len,
                           const http_request *req, const auth_identity *who,
                           http_reply *reply)
{
    command cmd = {.type = (cmd_type)r->op, .if_match = CMD_NO_IF_MATCH,
                   .request_id = req->request_id};
    sm_error err = {0};
    json_t *body = NULL;
    sm_status st = SM_OK;
    /* every event carries a trace context: the caller's when it sent a
     * valid one, else a new trace starting here */
    char trace[SM_EVENT_TRACEPARENT_LEN + 1] = "";
    if (req->traceparent && sm_traceparent_valid(req->traceparent))
        cmd.traceparent = req->traceparent;
    else if (sm_traceparent_new(trace))
        cmd.traceparent = trace;
    if (id) {
        char raw[64];
        snprintf(raw, sizeof raw, "%.*s", (int)(id_len < 60 ? id_len : 60), id);
        if (id_len > 60 || !sm_uuid_parse(raw, cmd.post_id))
            st = sm_fail(&err, SM_ERR_INVALID, "The post id '%s' is not a valid UUID.", raw);
    } else if (!sm_uuid_new_v7(cmd.post_id)) {
        st = sm_fail(&err, SM_ERR_INTERNAL, "no randomness for a post id");
    }
    if (!st && req->if_match && !http_parse_if_match(req->if_match, &cmd.if_match))
        st = sm_fail(&err, SM_ERR_INVALID,
                     "If-Match must be a version in quotes, e.g. If-Match: \"3\".");
    /* with a token the name may be left out, and with it the whole body */
    if (!st && cmd_takes_body(cmd.type) && !(who && req->body_len == 0))
        st = read_json_body(req, &body, &err);
    if (!st && who)
        st = bind_identity(&cmd, &body, who, &err);
    if (!st)
        st = cmd_parse(cmd.type, body, &cmd, &err);
    cmd_result res;
    if (!st)
        st = cmd_dispatch(&app->cmd, &cmd, &res, &err);
    if (st == SM_OK) {
        reply_command(reply, cmd.type, &res);
    } else {
        http_reply_from_error(reply, &err);
        if (st == SM_ERR_INTERNAL || st == SM_ERR_UNAVAILABLE) {
            char q[600];
            sm_log(SM_LOG_ERROR, "command_failed", "req=%s command=%s post=%s error=%s msg=%s",
                   req->request_id, cmd_name(cmd.type), cmd.post_id, sm_status_code(st),
                   sm_log_quote(err.message, q, sizeof q));
        }
    }
    /* tell the caller which trace its events joined */
    size_t used = strlen(reply->extra_headers);
    if (cmd.traceparent && used + sizeof "traceparent: \r\n" + SM_EVENT_TRACEPARENT_LEN <=
                               sizeof reply->extra_headers)
        snprintf(reply->extra_headers + used, sizeof reply->extra_headers - used,
                 "traceparent: %s\r\n", cmd.traceparent);
    json_decref(body);
}

/* RestoreReadDb: republish every event of the store, in order. The relay
 * does the work: marking the store unpublished makes it publish each post's
 * events again from version 0, and the query side's version check makes
 * replaying into a live read model harmless (nothing is counted twice). */
static void handle_restore(cmd_app *app, const http_request *req, http_reply *reply)
{
    if (!app->relay) {
        http_reply_error(reply, SM_ERR_UNAVAILABLE,
                         "Publishing is disabled (kafka-bootstrap is none): nothing to restore to.");
        return;
    }
    int64_t count = 0;
    sm_error err = {0};
    es_status es = es_reset_published(app->store, &count, &err);
    if (es != ES_OK) {
        http_reply_error(reply, es_to_sm_status(es), err.message);
        return;
    }
    relay_notify(app->relay);
    sm_log(SM_LOG_INFO, "restore_read_db", "req=%s events=%lld", req->request_id,
           (long long)count);
    http_reply_json(reply, 201,
                    json_pack("{s:s, s:I}", "message",
                              "Restore read db request completed successfully!", "events",
                              (json_int_t)count));
}

static const char *kafka_state_name(bus_state st)
{
    return st == BUS_UP ? "up" : st == BUS_DOWN ? "down" : "unknown";
}

/* Kafka's part of /health: the relay's view plus the outbox backlog. Down
 * Kafka does not stop commands (they wait in the outbox), but it is
 * reported so operators see the backlog grow. */
static json_t *kafka_health(cmd_app *app, bool *ok)
{
    if (!app->relay) {
        *ok = true;
        return json_pack("{s:s}", "status", "disabled");
    }
    relay_stats rs;
    relay_get_stats(app->relay, &rs);
    *ok = rs.kafka == BUS_UP;
    json_t *k = json_pack("{s:s, s:s, s:I}", "status", kafka_state_name(rs.kafka), "clusterId",
                          rs.cluster_id, "publishedTotal", (json_int_t)rs.published_total);
    /* which instance publishes (several command-apis elect one: relay.h) */
    json_object_set_new(k, "relay",
                        json_pack("{s:s, s:s, s:I}", "role", rs.leader ? "publisher" : "standby",
                                  "publisher", rs.leader ? app->instance : rs.lease_holder,
                                  "leaseEpoch", (json_int_t)rs.lease_epoch));
    if (!*ok && rs.last_error[0])
        json_object_set_new(k, "error", json_string(rs.last_error));
    return k;
}

static void handle_health(cmd_app *app, http_reply *reply)
{
    sm_error err = {0};
    es_status es = es_ping(app->store, &err);
    json_t *store = json_pack("{s:s, s:s}", "adapter", es_adapter_name(app->store), "status",
                              es == ES_OK ? "up" : "down");
    int64_t pending = 0, oldest = 0;
    if (es == ES_OK && es_outbox_stats(app->store, &pending, &oldest, NULL, &err) == ES_OK)
        json_object_set_new(store, "unpublished", json_integer(pending));
    if (es != ES_OK)
        json_object_set_new(store, "error", json_string(err.message));
    bool kafka_ok;
    json_t *kafka = kafka_health(app, &kafka_ok);
    bool ok = es == ES_OK && kafka_ok;
    http_reply_json(reply, ok ? 200 : 503,
                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "status",
                              ok ? "ok" : "degraded", "service", "command-api", "version",
                              sm_version(), "commit", sm_commit(), "instance", app->instance,
                              "eventStore", store, "kafka", kafka));
    if (!ok)
        reply->retry_after = 1;
}

/* The aggregate cache and snapshots (post_repo.h). */
static void render_repo_metrics(sm_buf *b, post_repo *repo)
{
    post_repo_stats ps = {0};
    if (repo)
        post_repo_get_stats(repo, &ps);
    sm_metrics_render_value(b, "smpost_aggregate_cache_hits_total", "counter",
                            "Commands that found their post in the aggregate cache.",
                            (double)ps.cache_hits);
    sm_metrics_render_value(b, "smpost_aggregate_cache_misses_total", "counter",
                            "Commands that rebuilt their post from the event store.",
                            (double)ps.cache_misses);
    sm_metrics_render_value(b, "smpost_aggregate_cache_bytes", "gauge",
                            "Estimated memory held by cached posts.", (double)ps.cache_bytes);
    sm_metrics_render_value(b, "smpost_snapshot_loads_total", "counter",
                            "Rebuilds that started from a snapshot.", (double)ps.snapshot_hits);
    sm_metrics_render_value(b, "smpost_snapshots_written_total", "counter",
                            "Snapshots saved by the background writer.",
                            (double)ps.snapshots_written);
    sm_metrics_render_value(b, "smpost_snapshots_ignored_total", "counter",
                            "Snapshots found but not trusted (undecodable or another history).",
                            (double)ps.snapshots_ignored);
}

static void render_relay_histograms(sm_buf *b, relay *r)
{
    static const sm_histogram no_publish = SM_HISTOGRAM_INIT(&sm_hist_delay_seconds);
    static const sm_histogram no_rounds = SM_HISTOGRAM_INIT(&sm_hist_sizes);
    sm_hist_render_header(b, "smpost_relay_publish_seconds",
                          "From an event's append to the event store to Kafka's confirmation.");
    sm_hist_render(b, "smpost_relay_publish_seconds", "",
                   r ? relay_publish_histogram(r) : &no_publish);
    sm_hist_render_header(b, "smpost_relay_round_events", "Events offered per publishing round.");
    sm_hist_render(b, "smpost_relay_round_events", "", r ? relay_round_histogram(r) : &no_rounds);
}

static void handle_metrics(cmd_app *app, http_reply *reply)
{
    sm_buf b = {0};
    sm_metrics_render_info(&b, "command-api", app->instance);
    int64_t pending = 0, oldest = 0;
    sm_error err = {0};
    bool store_ok = es_outbox_stats(app->store, &pending, &oldest, NULL, &err) == ES_OK;
    sm_metrics_render_value(&b, "smpost_event_store_up", "gauge",
                            "1 if the event store answered the last query.", store_ok);
    sm_metrics_render_value(&b, "smpost_outbox_pending", "gauge",
                            "Events stored but not yet confirmed by Kafka.", (double)pending);
    double age = store_ok && pending > 0 ? (double)(sm_now_ms() - oldest) / 1000.0 : 0.0;
    sm_metrics_render_value(&b, "smpost_outbox_oldest_pending_seconds", "gauge",
                            "Age of the oldest event not yet confirmed by Kafka.",
                            age > 0 ? age : 0);
    relay_stats rs = {0};
    if (app->relay)
        relay_get_stats(app->relay, &rs);
    sm_metrics_render_value(&b, "smpost_events_published_total", "counter",
                            "Events confirmed by Kafka since start.", (double)rs.published_total);
    sm_metrics_render_value(&b, "smpost_events_publish_failures_total", "counter",
                            "Failed deliveries since start (each is retried).",
                            (double)rs.failed_total);
    sm_metrics_render_value(&b, "smpost_events_republished_total", "counter",
                            "Events reset for republishing after meeting a new Kafka cluster.",
                            (double)rs.republish_total);
    sm_metrics_render_value(&b, "smpost_kafka_up", "gauge", "1 if the broker answered lately.",
                            rs.kafka == BUS_UP);
    sm_metrics_render_value(&b, "smpost_relay_publisher", "gauge",
                            "1 if this instance holds the relay lease and publishes.",
                            app->relay && rs.leader);
    sm_metrics_render_value(&b, "smpost_relay_lease_acquired_total", "counter",
                            "Times this instance became the relay's publisher.",
                            (double)rs.leader_acquired_total);
    render_relay_histograms(&b, app->relay);
    sqlite_group_render_metrics(&b);
    render_repo_metrics(&b, app->cmd.repo);
    if (app->auth) {
        auth_stats as;
        auth_verifier_stats(app->auth, &as);
        sm_metrics_render_value(&b, "smpost_auth_cache_hits_total", "counter",
                                "Bearer tokens answered from the verified-token cache.",
                                (double)as.cache_hits);
        sm_metrics_render_value(&b, "smpost_auth_signature_checks_total", "counter",
                                "Bearer token signatures checked.",
                                (double)as.signature_checks);
        sm_metrics_render_value(&b, "smpost_auth_key_reloads_total", "counter",
                                "Successful reloads of the JWKS (file change or SIGHUP).",
                                (double)as.reloads);
    }
    sm_metrics_render_http(&b);
    reply->status = 200;
    reply->body_text = b.data; /* ownership moves to the reply */
    reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* The caller's identity for a route that needs one (auth on). false: the
 * reply is filled, 401 (no or refused token) or 403 (role missing). */
static bool authenticate(cmd_app *app, const route *r, const http_request *req,
                         http_reply *reply, auth_identity *who)
{
    sm_error err = {0};
    char q[SM_ERROR_MAX + 16];
    /* keys rotate by replacing the file: one stat per request notices it */
    if (auth_verifier_check_reload(app->auth, &err) != SM_OK)
        sm_log(SM_LOG_WARN, "jwks_reload_failed", "req=%s error=%s effect=\"old keys kept\"",
               req->request_id, sm_log_quote(err.message, q, sizeof q));
    const char *token = auth_bearer_token(req->authorization);
    if (!token) {
        auth_reply_unauthenticated(reply,
                                   req->authorization ? "not a Bearer token" : NULL);
        return false;
    }
    sm_status st = auth_verify(app->auth, token, sm_now_ms() / 1000, who, &err);
    if (st == SM_ERR_INVALID) {
        auth_reply_unauthenticated(reply, err.message);
        return false;
    }
    if (st != SM_OK) {
        http_reply_from_error(reply, &err);
        return false;
    }
    if (r->need == NEED_ADMIN && !auth_identity_has_role(who, "admin")) {
        http_reply_error(reply, SM_ERR_FORBIDDEN, "This route needs a token with role admin.");
        return false;
    }
    return true;
}

void routes_handle(void *appv, const http_request *req, http_reply *reply)
{
    cmd_app *app = appv;
    const route *path_hit = NULL;
    const char *id;
    size_t id_len;
    for (size_t i = 0; i < NROUTES; i++) {
        const route *r = &routes[i];
        /* a route the port does not serve is a path it does not know */
        if (!http_route_served(r->place, req->listener) ||
            !http_match_path(r->prefix, r->has_id, req->path, &id, &id_len))
            continue;
        if (strcmp(req->method, r->method) != 0 &&
            !(strcmp(r->method, "GET") == 0 && strcmp(req->method, "HEAD") == 0)) {
            path_hit = r;
            continue;
        }
        reply->route = r->pattern;
        auth_identity who_buf;
        const auth_identity *who = NULL;
        if (app->auth && r->need != NEED_NOTHING) {
            if (!authenticate(app, r, req, reply, &who_buf))
                return;
            who = &who_buf;
        }
        post_actor actor = {.name = who ? who->name : "",
                            .moderator = who && auth_identity_has_role(who, "moderator"),
                            .user_id = who ? who->sub : NULL};
        if (r->kind == R_HEALTH)
            handle_health(app, reply);
        else if (r->kind == R_METRICS)
            handle_metrics(app, reply);
        else if (r->kind == R_OPENAPI)
            http_docs_openapi(&app->docs, reply);
        else if (r->kind == R_SWAGGER)
            http_docs_swagger(&app->docs, req->path, id, id_len, reply);
        else if (r->kind == R_HISTORY)
            hist_handle(&app->cmd, (hist_kind)r->op, id, id_len, req->query,
                        who ? &actor : NULL, reply);
        else if (r->kind == R_RESTORE)
            handle_restore(app, req, reply);
        else
            handle_command(app, r, id, id_len, req, who, reply);
        return;
    }
    if (path_hit) {
        char msg[160];
        snprintf(msg, sizeof msg, "Method %.10s is not allowed on this route; use %s.",
                 req->method, path_hit->method);
        http_reply_error(reply, SM_ERR_METHOD, msg);
        reply->allow = path_hit->method;
        /* the path is the route's (metrics), as in query-api: a CORS
         * preflight answered from this 405 counts under its route */
        reply->route = path_hit->pattern;
        return;
    }
    char msg[200];
    char shown[120];
    snprintf(shown, sizeof shown, "%.100s", req->path);
    snprintf(msg, sizeof msg, "No route for %.10s %s.", req->method, shown);
    http_reply_error(reply, SM_ERR_NOT_FOUND, msg);
}
