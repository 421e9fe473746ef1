/* SPDX-License-Identifier: Apache-2.0 */
/* test_http_routes.c — the command API's HTTP mapping, without sockets:
 * http_request in, http_reply out, against the in-memory store. Covers the
 * status of every kind of failure and the shape of every success. */
#include "mem_store.h"
#include "routes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

typedef struct fixture {
    cmd_app app;
    mem_store_ctl *ctl;
    http_reply reply;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->app.store = mem_store_new(&f->ctl);
    cmd_context_init(&f->app.cmd, f->app.store);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_reply_free(&f->reply);
    cmd_context_destroy(&f->app.cmd);
    es_close(f->app.store);
    free(f);
    return 0;
}

/* Sends one request; returns the status. ct NULL means no Content-Type. */
static int call(fixture *f, const char *method, const char *path, const char *ct,
                const char *body, const char *if_match)
{
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    http_request req = {.method = method, .path = path, .content_type = ct, .body = body,
                        .body_len = body ? strlen(body) : 0, .if_match = if_match};
    strcpy(req.request_id, "test");
    routes_handle(&f->app, &req, &f->reply);
    return f->reply.status;
}

static int post_json(fixture *f, const char *method, const char *path, const char *body)
{
    return call(f, method, path, "application/json", body, NULL);
}

static const char *str(fixture *f, const char *key)
{
    return json_string_value(json_object_get(f->reply.body, key));
}

static void assert_error(fixture *f, int status, const char *code, const char *message)
{
    assert_int_equal(f->reply.status, status);
    assert_string_equal(str(f, "error"), code);
    if (message)
        assert_string_equal(str(f, "message"), message);
}

/* Creates a post and copies its id to id. */
static void create(fixture *f, char *id)
{
    assert_int_equal(post_json(f, "POST", "/api/v1/NewPost",
                               "{\"author\":\"alice\",\"message\":\"hello\"}"), 201);
    strcpy(id, str(f, "id"));
}

static void test_new_post_is_201_with_id_message_version_and_etag(void **state)
{
    fixture *f = *state;
    assert_int_equal(post_json(f, "POST", "/api/v1/NewPost",
                               "{\"author\":\"alice\",\"message\":\"hello\"}"), 201);
    assert_true(sm_uuid_parse(str(f, "id"), NULL));
    assert_string_equal(str(f, "message"), "The post creating request completed successfully!");
    assert_int_equal(json_integer_value(json_object_get(f->reply.body, "version")), 0);
    assert_string_equal(f->reply.etag, "0");
}

static void test_paths_and_field_names_match_ignoring_case(void **state)
{
    fixture *f = *state;
    assert_int_equal(post_json(f, "POST", "/API/V1/newpost/",
                               "{\"AUTHOR\":\"alice\",\"Message\":\"hello\",\"extra\":1}"), 201);
}

static void test_non_json_content_type_is_415(void **state)
{
    fixture *f = *state;
    call(f, "POST", "/api/v1/NewPost", "text/plain", "{\"author\":\"a\",\"message\":\"m\"}", NULL);
    assert_error(f, 415, "unsupported_media_type", NULL);
    call(f, "POST", "/api/v1/NewPost", NULL, "{\"author\":\"a\",\"message\":\"m\"}", NULL);
    assert_error(f, 415, "unsupported_media_type", NULL);
}

static void test_malformed_bodies_are_400_with_a_message(void **state)
{
    fixture *f = *state;
    post_json(f, "POST", "/api/v1/NewPost", NULL);
    assert_error(f, 400, "invalid_request", "A non-empty request body is required.");
    post_json(f, "POST", "/api/v1/NewPost", "{\"author\":");
    assert_error(f, 400, "invalid_request", NULL);
    assert_non_null(strstr(str(f, "message"), "not valid JSON"));
    post_json(f, "POST", "/api/v1/NewPost", "[1,2]");
    assert_error(f, 400, "invalid_request", "The request body must be a JSON object.");
    post_json(f, "POST", "/api/v1/NewPost", "{\"message\":\"m\"}");
    assert_error(f, 400, "invalid_request", "The author field is required.");
    post_json(f, "POST", "/api/v1/NewPost", "{\"author\":null,\"message\":\"m\"}");
    assert_error(f, 400, "invalid_request", "The author field is required.");
    post_json(f, "POST", "/api/v1/NewPost", "{\"author\":7,\"message\":\"m\"}");
    assert_error(f, 400, "invalid_request", "The author field must be a string.");
    post_json(f, "POST", "/api/v1/NewPost", "{\"author\":\"a\",\"message\":\"m\\u0000\"}");
    assert_error(f, 400, "invalid_request", NULL);
}

static void test_field_limits_are_enforced_in_bytes(void **state)
{
    fixture *f = *state;
    char body[8000];
    char author[70];
    memset(author, 'a', 64);
    author[64] = '\0';
    snprintf(body, sizeof body, "{\"author\":\"%s\",\"message\":\"m\"}", author);
    assert_int_equal(post_json(f, "POST", "/api/v1/NewPost", body), 201);
    strcpy(author + 64, "a");
    snprintf(body, sizeof body, "{\"author\":\"%s\",\"message\":\"m\"}", author);
    post_json(f, "POST", "/api/v1/NewPost", body);
    assert_error(f, 400, "invalid_request", "The author field must be at most 64 bytes.");
    /* 33 x "é" is 66 bytes: over, though only 33 characters */
    strcpy(body, "{\"author\":\"");
    for (int i = 0; i < 33; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\",\"message\":\"m\"}");
    post_json(f, "POST", "/api/v1/NewPost", body);
    assert_error(f, 400, "invalid_request", "The author field must be at most 64 bytes.");
}

static void test_blank_text_is_a_rule_violation_with_the_original_text(void **state)
{
    fixture *f = *state;
    post_json(f, "POST", "/api/v1/NewPost", "{\"author\":\"a\",\"message\":\"   \"}");
    assert_error(f, 400, "rule_violation",
                 "The value of message cannot be null or empty. Please provide a valid message!");
}

static void test_path_id_that_is_not_a_uuid_is_400(void **state)
{
    fixture *f = *state;
    call(f, "PUT", "/api/v1/LikePost/not-a-guid", NULL, NULL, NULL);
    assert_error(f, 400, "invalid_request", "The post id 'not-a-guid' is not a valid UUID.");
    call(f, "PUT", "/api/v1/LikePost/..%2F..%2Fetc", NULL, NULL, NULL);
    assert_error(f, 400, "invalid_request", NULL);
    call(f, "PUT", "/api/v1/LikePost/a/b", NULL, NULL, NULL);
    assert_error(f, 404, "not_found", NULL);
}

static void test_unknown_post_is_404_and_braced_ids_are_accepted(void **state)
{
    fixture *f = *state;
    call(f, "PUT", "/api/v1/LikePost/{5C3E6F0A-1B2C-4D5E-8F90-123456789ABC}", NULL, NULL, NULL);
    assert_error(f, 404, "not_found",
                 "Incorrect post Id provided! 5c3e6f0a-1b2c-4d5e-8f90-123456789abc");
}

static void test_unknown_route_is_404_and_wrong_verb_is_405_with_allow(void **state)
{
    fixture *f = *state;
    call(f, "GET", "/api/v1/Nope", NULL, NULL, NULL);
    assert_error(f, 404, "not_found", "No route for GET /api/v1/Nope.");
    call(f, "GET", "/api/v1/NewPost", NULL, NULL, NULL);
    assert_error(f, 405, "method_not_allowed", NULL);
    assert_string_equal(f->reply.allow, "POST");
    call(f, "GET", "/\xff\xfe", NULL, NULL, NULL); /* invalid UTF-8 in the echo */
    assert_int_equal(f->reply.status, 404);
    assert_non_null(str(f, "message"));
}

static void test_like_ignores_any_body(void **state)
{
    fixture *f = *state;
    char id[40], path[100];
    create(f, id);
    snprintf(path, sizeof path, "/api/v1/LikePost/%s", id);
    assert_int_equal(call(f, "PUT", path, "text/plain", "whatever", NULL), 200);
    assert_string_equal(str(f, "message"), "Like post request completed successfully!");
    assert_string_equal(f->reply.etag, "1");
}

static void test_add_comment_returns_comment_id_and_edit_of_unknown_comment_is_404(void **state)
{
    fixture *f = *state;
    char id[40], path[100], body[200];
    create(f, id);
    snprintf(path, sizeof path, "/api/v1/AddComment/%s", id);
    assert_int_equal(post_json(f, "PUT", path, "{\"comment\":\"nice\",\"username\":\"bob\"}"), 200);
    assert_true(sm_uuid_parse(str(f, "commentId"), NULL));
    assert_int_equal(json_integer_value(json_object_get(f->reply.body, "version")), 1);
    snprintf(path, sizeof path, "/api/v1/EditComment/%s", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\",\"comment\":\"x\",\"username\":\"bob\"}",
             "11111111-2222-4333-8444-555555555555");
    post_json(f, "PUT", path, body);
    assert_error(f, 404, "not_found", "Comment not found! 11111111-2222-4333-8444-555555555555");
    post_json(f, "PUT", path, "{\"commentId\":\"zzz\",\"comment\":\"x\",\"username\":\"bob\"}");
    assert_error(f, 400, "invalid_request", "The commentId field must be a UUID.");
}

static void test_if_match_mismatch_is_412_and_garbage_is_400(void **state)
{
    fixture *f = *state;
    char id[40], path[100];
    create(f, id);
    snprintf(path, sizeof path, "/api/v1/LikePost/%s", id);
    call(f, "PUT", path, NULL, NULL, "\"7\"");
    assert_error(f, 412, "precondition_failed", NULL);
    call(f, "PUT", path, NULL, NULL, "seven");
    assert_error(f, 400, "invalid_request", NULL);
    assert_int_equal(call(f, "PUT", path, NULL, NULL, "\"0\""), 200);
}

static void test_conflict_is_409_and_store_down_is_503_with_retry_after(void **state)
{
    fixture *f = *state;
    char id[40], path[100];
    create(f, id);
    snprintf(path, sizeof path, "/api/v1/LikePost/%s", id);
    f->app.cmd.max_attempts = 2;
    f->ctl->conflicts_left = 100;
    call(f, "PUT", path, NULL, NULL, NULL);
    assert_error(f, 409, "conflict", NULL);
    f->ctl->conflicts_left = 0;
    f->ctl->unavailable = true;
    call(f, "PUT", path, NULL, NULL, NULL);
    assert_error(f, 503, "unavailable", NULL);
    assert_int_equal(f->reply.retry_after, 1);
}

static void test_health_reports_the_event_store(void **state)
{
    fixture *f = *state;
    assert_int_equal(call(f, "GET", "/health", NULL, NULL, NULL), 200);
    assert_string_equal(str(f, "status"), "ok");
    json_t *es = json_object_get(f->reply.body, "eventStore");
    assert_string_equal(json_string_value(json_object_get(es, "status")), "up");
    f->ctl->unavailable = true;
    assert_int_equal(call(f, "GET", "/health", NULL, NULL, NULL), 503);
    es = json_object_get(f->reply.body, "eventStore");
    assert_string_equal(json_string_value(json_object_get(es, "status")), "down");
}

static void test_metrics_are_prometheus_text_with_request_counts(void **state)
{
    fixture *f = *state;
    call(f, "GET", "/health", NULL, NULL, NULL);
    assert_int_equal(call(f, "GET", "/metrics", NULL, NULL, NULL), 200);
    assert_null(f->reply.body);
    assert_non_null(f->reply.body_text);
    assert_string_equal(f->reply.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(f->reply.body_text, "# TYPE smpost_outbox_pending gauge\n"));
    assert_non_null(strstr(f->reply.body_text, "smpost_events_published_total 0\n"));
    assert_non_null(strstr(f->reply.body_text, "smpost_outbox_oldest_pending_seconds"));
    assert_string_equal(f->reply.route, "/metrics");
}

static void test_restore_without_publishing_is_503(void **state)
{
    fixture *f = *state;
    call(f, "POST", "/api/v1/RestoreReadDb", NULL, NULL, NULL);
    assert_error(f, 503, "unavailable", NULL);
    call(f, "GET", "/api/v1/RestoreReadDb", NULL, NULL, NULL);
    assert_error(f, 405, "method_not_allowed", NULL);
}

/* One GET or POST on the given port; returns the status. */
static int call_on(fixture *f, http_listener l, const char *method, const char *path)
{
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    http_request req = {.method = method, .path = path, .listener = l};
    strcpy(req.request_id, "test");
    routes_handle(&f->app, &req, &f->reply);
    return f->reply.status;
}

static void test_with_an_admin_listener_admin_routes_are_404_on_the_public_port(void **state)
{
    fixture *f = *state;
    /* not even 405 for another verb: the public port does not know the path */
    const char *hidden[][2] = {{"GET", "/metrics"}, {"POST", "/api/v1/RestoreReadDb"},
                               {"GET", "/api/v1/RestoreReadDb"}, {"GET", "/METRICS/"}};
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
        call_on(f, HTTP_LISTENER_PUBLIC, hidden[i][0], hidden[i][1]);
        assert_error(f, 404, "not_found", NULL);
    }
    assert_int_equal(call_on(f, HTTP_LISTENER_PUBLIC, "GET", "/health"), 200);
    /* the admin port serves them, /health too, and nothing of the API */
    assert_int_equal(call_on(f, HTTP_LISTENER_ADMIN, "GET", "/metrics"), 200);
    call_on(f, HTTP_LISTENER_ADMIN, "POST", "/api/v1/RestoreReadDb");
    assert_error(f, 503, "unavailable", NULL); /* reached: publishing is off here */
    assert_int_equal(call_on(f, HTTP_LISTENER_ADMIN, "GET", "/health"), 200);
    call_on(f, HTTP_LISTENER_ADMIN, "POST", "/api/v1/NewPost");
    assert_error(f, 404, "not_found", NULL);
    call_on(f, HTTP_LISTENER_ADMIN, "GET", "/openapi.json");
    assert_error(f, 404, "not_found", NULL);
    /* one port alone serves everything */
    assert_int_equal(call_on(f, HTTP_LISTENER_SOLE, "GET", "/metrics"), 200);
}

static void test_listener_addresses_are_host_colon_port(void **state)
{
    (void)state;
    char host[80];
    long port;
    sm_error err = {0};
    assert_int_equal(http_listen_parse("127.0.0.1:9101", host, sizeof host, &port, &err), SM_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9101);
    assert_int_equal(http_listen_parse("[::1]:0", host, sizeof host, &port, &err), SM_OK);
    assert_string_equal(host, "[::1]");
    assert_int_equal(port, 0);
    const char *bad[] = {"9101", ":9101", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000",
                         "127.0.0.1:91 01", "::1:9101", "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(http_listen_parse(bad[i], host, sizeof host, &port, &err),
                         SM_ERR_INVALID);
}

static void test_route_table_lists_every_command_route(void **state)
{
    (void)state;
    const char *want[] = {"POST /api/v1/NewPost", "PUT /api/v1/EditMessage/{postId}",
                          "PUT /api/v1/LikePost/{postId}", "PUT /api/v1/AddComment/{postId}",
                          "PUT /api/v1/EditComment/{postId}",
                          "DELETE /api/v1/RemoveComment/{postId}",
                          "DELETE /api/v1/DeletePost/{postId}",
                          "GET /api/v1/PostHistory/{postId}", "GET /api/v1/PostAt/{postId}",
                          "POST /api/v1/RestoreReadDb", "GET /health", "GET /metrics",
                          "GET /openapi.json", "GET /swagger", "GET /swagger/{file}"};
    const char *m, *p;
    size_t n = routes_list(0, &m, &p);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        char buf[120];
        routes_list(i, &m, &p);
        snprintf(buf, sizeof buf, "%s %s", m, p);
        assert_string_equal(buf, want[i]);
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_new_post_is_201_with_id_message_version_and_etag),
        T(test_paths_and_field_names_match_ignoring_case),
        T(test_non_json_content_type_is_415),
        T(test_malformed_bodies_are_400_with_a_message),
        T(test_field_limits_are_enforced_in_bytes),
        T(test_blank_text_is_a_rule_violation_with_the_original_text),
        T(test_path_id_that_is_not_a_uuid_is_400),
        T(test_unknown_post_is_404_and_braced_ids_are_accepted),
        T(test_unknown_route_is_404_and_wrong_verb_is_405_with_allow),
        T(test_like_ignores_any_body),
        T(test_add_comment_returns_comment_id_and_edit_of_unknown_comment_is_404),
        T(test_if_match_mismatch_is_412_and_garbage_is_400),
        T(test_conflict_is_409_and_store_down_is_503_with_retry_after),
        T(test_health_reports_the_event_store),
        T(test_metrics_are_prometheus_text_with_request_counts),
        T(test_restore_without_publishing_is_503),
        T(test_with_an_admin_listener_admin_routes_are_404_on_the_public_port),
        T(test_listener_addresses_are_host_colon_port),
        T(test_route_table_lists_every_command_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
