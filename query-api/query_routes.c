/* SPDX-License-Identifier: Apache-2.0 */
/* query_routes.c — the query API's route table. */
#include "query_routes.h"

#include "sm_deadline.h"
#include "sm_metrics.h"
#include "sm_time.h"
#include "sm_version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { R_QUERY, R_HEALTH, R_METRICS, R_OPENAPI, R_SWAGGER } route_kind;

typedef struct route {
    const char *prefix;
    bool has_arg;
    route_kind kind;
    query_type query;
    const char *pattern;
    http_route_place place; /* with an admin listener (http_util.h) */
} route;

/* All GET. withLikes is listed with and without its {n}. */
static const route routes[] = {
    {"/api/v1/PostLookup", false, R_QUERY, QUERY_ALL, "/api/v1/PostLookup", HTTP_PLACE_PUBLIC},
    {"/api/v1/PostLookup/byId", true, R_QUERY, QUERY_BY_ID, "/api/v1/PostLookup/byId/{postId}",
     HTTP_PLACE_PUBLIC},
    {"/api/v1/PostLookup/byAuthor", true, R_QUERY, QUERY_BY_AUTHOR,
     "/api/v1/PostLookup/byAuthor/{author}", HTTP_PLACE_PUBLIC},
    /* ?author=: civetweb decodes the path before routing, so an author
     * with a '/' can only be asked for in the query string */
    {"/api/v1/PostLookup/byAuthor", false, R_QUERY, QUERY_BY_AUTHOR,
     "/api/v1/PostLookup/byAuthor", HTTP_PLACE_PUBLIC},
    {"/api/v1/PostLookup/withComments", false, R_QUERY, QUERY_WITH_COMMENTS,
     "/api/v1/PostLookup/withComments", HTTP_PLACE_PUBLIC},
    {"/api/v1/PostLookup/withLikes", true, R_QUERY, QUERY_WITH_LIKES,
     "/api/v1/PostLookup/withLikes/{n}", HTTP_PLACE_PUBLIC},
    {"/api/v1/PostLookup/withLikes", false, R_QUERY, QUERY_WITH_LIKES,
     "/api/v1/PostLookup/withLikes", HTTP_PLACE_PUBLIC},
    {"/api/v1/PostLookup/comments", true, R_QUERY, QUERY_COMMENTS,
     "/api/v1/PostLookup/comments/{postId}", HTTP_PLACE_PUBLIC},
    {"/health", false, R_HEALTH, QUERY_COUNT, "/health", HTTP_PLACE_BOTH},
    {"/metrics", false, R_METRICS, QUERY_COUNT, "/metrics", HTTP_PLACE_ADMIN},
    /* the API documentation (common/http_docs.h) */
    {"/openapi.json", false, R_OPENAPI, QUERY_COUNT, "/openapi.json", HTTP_PLACE_PUBLIC},
    {"/swagger", false, R_SWAGGER, QUERY_COUNT, "/swagger", HTTP_PLACE_PUBLIC},
    {"/swagger", true, R_SWAGGER, QUERY_COUNT, "/swagger/{file}", HTTP_PLACE_PUBLIC},
};
#define NROUTES (sizeof routes / sizeof routes[0])

size_t query_routes_list(size_t i, const char **method, const char **pattern)
{
    if (i < NROUTES) {
        *method = "GET";
        *pattern = routes[i].pattern;
    }
    return NROUTES;
}

/* The projector's progress on the message in hand: "retrying" while an
 * apply or a dead letter fails (projector.h), with the last failure. */
static json_t *projection_json(const projector_stats *ps)
{
    json_t *j = json_pack("{s:s, s:I, s:I}", "state", ps->retrying ? "retrying" : "ok",
                          "applyErrors", (json_int_t)ps->apply_errors, "deadLetterFailures",
                          (json_int_t)ps->dead_letter_failures);
    if (ps->last_error_ms > 0) {
        sm_time_str at;
        sm_time_format(ps->last_error_ms, at);
        json_object_set_new(j, "lastError", json_string(ps->last_error));
        json_object_set_new(j, "lastErrorAt", json_string(at));
    }
    return j;
}

static void handle_health(query_app *app, http_reply *reply)
{
    sm_error err = {0};
    sm_status st = rm_ping(app->rm, &err);
    json_t *rm = json_pack("{s:s, s:s}", "adapter", rm_adapter_name(app->rm), "status",
                           st == SM_OK ? "up" : "down");
    if (st != SM_OK)
        json_object_set_new(rm, "error", json_string(err.message));
    json_t *consumer = json_object();
    if (app->proj) {
        projector_stats ps;
        projector_get_stats(app->proj, &ps);
        json_object_set_new(consumer, "status", json_string("running"));
        json_object_set_new(consumer, "lag", json_integer(ps.lag));
        json_object_set_new(consumer, "assignedPartitions", json_integer(ps.assigned));
        json_object_set_new(consumer, "applied", json_integer((json_int_t)ps.applied));
        json_object_set_new(consumer, "deadLettered", json_integer((json_int_t)ps.dead_lettered));
        json_object_set_new(consumer, "gaps", json_integer((json_int_t)ps.gaps));
        json_object_set_new(consumer, "projection", projection_json(&ps));
    } else {
        json_object_set_new(consumer, "status", json_string("disabled"));
    }
    bool ok = st == SM_OK;
    http_reply_json(reply, ok ? 200 : 503,
                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "status",
                              ok ? "ok" : "degraded", "service", "query-api", "version",
                              sm_version(), "commit", sm_commit(), "instance", app->instance,
                              "readModel", rm, "consumer", consumer));
    if (!ok)
        reply->retry_after = 1;
}

/* How far the read model is behind, in time: the lag histogram, and per
 * partition the age of the newest event applied from it (which also grows
 * while nothing is written: read it beside smpost_consumer_lag). */
static void render_projection_lag(sm_buf *b, projector *proj, const projector_stats *ps)
{
    static const sm_histogram none = SM_HISTOGRAM_INIT(&sm_hist_delay_seconds);
    sm_hist_render_header(b, "smpost_projection_lag_seconds",
                          "From an event's timestamp (raised by a command) to its commit in the "
                          "read model.");
    sm_hist_render(b, "smpost_projection_lag_seconds", "",
                   proj ? projector_lag_histogram(proj) : &none);
    sm_buf_printf(b, "# HELP smpost_projection_newest_event_age_seconds Age of the newest event "
                     "applied from each partition.\n"
                     "# TYPE smpost_projection_newest_event_age_seconds gauge\n");
    int64_t now = sm_now_ms();
    for (int i = 0; i < PROJECTOR_MAX_PARTITIONS; i++)
        if (ps->newest_event_ms[i] > 0)
            sm_buf_printf(b, "smpost_projection_newest_event_age_seconds{partition=\"%d\"} %.3f\n",
                          i, now > ps->newest_event_ms[i] ? (double)(now - ps->newest_event_ms[i]) / 1000.0 : 0.0);
}

static void handle_metrics(query_app *app, http_reply *reply)
{
    sm_buf b = {0};
    sm_metrics_render_info(&b, "query-api", app->instance);
    sm_error err = {0};
    sm_metrics_render_value(&b, "smpost_read_model_up", "gauge",
                            "1 if the read model answered a ping.",
                            rm_ping(app->rm, &err) == SM_OK);
    projector_stats ps = {0};
    if (app->proj)
        projector_get_stats(app->proj, &ps);
    sm_metrics_render_value(&b, "smpost_events_applied_total", "counter",
                            "Events applied to the read model.", (double)ps.applied);
    sm_metrics_render_value(&b, "smpost_events_duplicate_total", "counter",
                            "Redelivered events skipped by the version check.",
                            (double)ps.duplicates);
    sm_metrics_render_value(&b, "smpost_events_gap_total", "counter",
                            "Events skipped because an earlier version is missing.",
                            (double)ps.gaps);
    sm_metrics_render_value(&b, "smpost_events_dead_lettered_total", "counter",
                            "Messages sent to the dead-letter topic.", (double)ps.dead_lettered);
    sm_metrics_render_value(&b, "smpost_events_dead_letter_failures_total", "counter",
                            "Dead letters refused or not confirmed by the broker (each retried).",
                            (double)ps.dead_letter_failures);
    sm_metrics_render_value(&b, "smpost_projection_apply_errors_total", "counter",
                            "Failed applies to the read model (each retried after a back-off).",
                            (double)ps.apply_errors);
    sm_metrics_render_value(&b, "smpost_projection_retrying", "gauge",
                            "1 while the message in hand failed and waits for its retry.",
                            ps.retrying ? 1 : 0);
    sm_metrics_render_value(&b, "smpost_consumer_offset_commits_total", "counter",
                            "Offset commits sent while consuming (bounded in rate, not one per "
                            "event).",
                            (double)ps.offset_commits);
    sm_metrics_render_value(&b, "smpost_consumer_lag", "gauge",
                            "Messages not yet consumed on the assigned partitions.",
                            (double)ps.lag);
    render_projection_lag(&b, app->proj, &ps);
    sm_metrics_render_http(&b);
    reply->status = 200;
    reply->body_text = b.data;
    reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void dispatch_route(query_app *app, const http_request *req, http_reply *reply);

/* Every wait below a request (a pooled connection, a lock) is bounded by
 * one budget, the request timeout, rather than each by its own. */
void query_routes_handle(void *appv, const http_request *req, http_reply *reply)
{
    query_app *app = appv;
    if (app->request_timeout_ms > 0)
        sm_deadline_set(sm_mono_ms() + app->request_timeout_ms);
    dispatch_route(app, req, reply);
    sm_deadline_set(0);
}

static void dispatch_route(query_app *app, const http_request *req, http_reply *reply)
{
    for (size_t i = 0; i < NROUTES; i++) {
        const route *r = &routes[i];
        const char *arg;
        size_t arg_len;
        /* a route the port does not serve is a path it does not know */
        if (!http_route_served(r->place, req->listener) ||
            !http_match_path(r->prefix, r->has_arg, req->path, &arg, &arg_len))
            continue;
        reply->route = r->pattern;
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            http_reply_error(reply, SM_ERR_METHOD, "Only GET is allowed on this route.");
            reply->allow = "GET";
            return;
        }
        if (r->kind == R_HEALTH) {
            handle_health(app, reply);
        } else if (r->kind == R_METRICS) {
            handle_metrics(app, reply);
        } else if (r->kind == R_OPENAPI) {
            http_docs_openapi(&app->docs, reply);
        } else if (r->kind == R_SWAGGER) {
            http_docs_swagger(&app->docs, req->path, arg, arg_len, reply);
        } else {
            /* civetweb has already URL-decoded the path */
            char *a = arg ? strndup(arg, arg_len) : NULL;
            query_dispatch(app, r->query, a, req->query, reply);
            free(a);
            reply->etag_body = true; /* polled feeds revalidate (http_etag.h) */
        }
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "No route for %.10s %.100s.", req->method, req->path);
    http_reply_error(reply, SM_ERR_NOT_FOUND, msg);
}
