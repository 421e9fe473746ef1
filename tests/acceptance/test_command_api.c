/* SPDX-License-Identifier: Apache-2.0 */
/* test_command_api.c — the real command-api binary on the embedded default
 * (SQLite in a temp directory), driven over HTTP: every route with good and
 * bad input, 32 concurrent likes on one post, body limit, restart keeps
 * the data, SIGTERM exits 0. The binary comes from SMPOST_COMMAND_API_BIN. */
#include "event_store.h"
#include "http_client.h"
#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

static const char *bin;
static char dir[256], db_url[320], log_path[320];
static test_proc proc;

static void start_server(void)
{
    proc.port = test_free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", proc.port);
    /* No broker here: events are stored unpublished (the relay has its own
     * tests against a real Kafka protocol peer). */
    char *argv[] = {(char *)bin, "--port", port, "--event-store", db_url, "--log-level",
                    "warn", "--kafka-bootstrap", "none", NULL};
    assert_true(test_proc_start(&proc, argv, log_path));
    if (!test_proc_wait_http(proc.port, 10000))
        fail_msg("command-api did not come up on port %d; see %s", proc.port, log_path);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-accept", dir, sizeof dir))
        return -1;
    snprintf(db_url, sizeof db_url, "sqlite:%s/data/events.db", dir);
    snprintf(log_path, sizeof log_path, "%s/command-api.log", dir);
    start_server();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (proc.pid > 0)
        test_proc_stop(&proc, SIGTERM, 5000);
    test_rm_rf(dir);
    return 0;
}

/* One JSON call; asserts the status; returns the response (caller frees). */
static http_resp expect(int status, const char *method, const char *path, const char *body)
{
    http_resp r;
    assert_int_equal(http_json(proc.port, method, path, body, &r), 0);
    if (r.status != status)
        fail_msg("%s %s: status %d, want %d; body %s", method, path, r.status, status, r.body);
    return r;
}

static void expect_msg(int status, const char *method, const char *path, const char *body,
                       const char *message)
{
    http_resp r = expect(status, method, path, body);
    assert_non_null(r.json);
    assert_string_equal(http_resp_str(&r, "message"), message);
    if (status >= 400)
        assert_non_null(http_resp_str(&r, "error"));
    http_resp_free(&r);
}

static void new_post(const char *author, char id[40])
{
    char body[200];
    snprintf(body, sizeof body, "{\"author\":\"%s\",\"message\":\"hello\"}", author);
    http_resp r = expect(201, "POST", "/api/v1/NewPost", body);
    assert_string_equal(http_resp_str(&r, "message"),
                        "The post creating request completed successfully!");
    strcpy(id, http_resp_str(&r, "id"));
    char etag[32];
    assert_string_equal(http_resp_header(&r, "ETag", etag, sizeof etag), "\"0\"");
    assert_non_null(http_resp_header(&r, "X-Request-Id", etag, sizeof etag));
    http_resp_free(&r);
}

static void path_for(char *out, const char *route, const char *id)
{
    sprintf(out, "/api/v1/%s/%s", route, id);
}

static void test_full_post_lifecycle_with_original_texts(void **state)
{
    (void)state;
    char id[40], p[120], body[300];
    new_post("alice", id);

    path_for(p, "EditMessage", id);
    expect_msg(400, "PUT", p, "{\"message\":\"  \"}",
               "The value of message cannot be null or empty. Please provide a valid message!");
    expect_msg(200, "PUT", p, "{\"message\":\"hi2\"}",
               "The edit message request completed successfully!");

    path_for(p, "LikePost", id);
    expect_msg(200, "PUT", p, NULL, "Like post request completed successfully!");
    expect_msg(200, "PUT", p, NULL, "Like post request completed successfully!");

    path_for(p, "AddComment", id);
    http_resp r = expect(200, "PUT", p, "{\"comment\":\"nice\",\"username\":\"bob\"}");
    assert_string_equal(http_resp_str(&r, "message"), "Add comment request completed successfully!");
    char cid[40];
    strcpy(cid, http_resp_str(&r, "commentId"));
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 4);
    http_resp_free(&r);

    path_for(p, "EditComment", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\",\"comment\":\"x\",\"username\":\"Bob\"}", cid);
    expect_msg(400, "PUT", p, body,
               "You are not allowed to edit a comment that was made by another user!");
    snprintf(body, sizeof body, "{\"commentId\":\"%s\",\"comment\":\"nicer\",\"username\":\"bob\"}", cid);
    expect_msg(200, "PUT", p, body, "Edit comment request completed successfully!");
    expect_msg(404, "PUT", p,
               "{\"commentId\":\"6f0e1d2c-3b4a-4958-8776-655443322110\",\"comment\":\"x\",\"username\":\"bob\"}",
               "Comment not found! 6f0e1d2c-3b4a-4958-8776-655443322110");

    path_for(p, "RemoveComment", id);
    snprintf(body, sizeof body, "{\"commentId\":\"%s\",\"username\":\"bob\"}", cid);
    expect_msg(200, "DELETE", p, body, "Remove comment request completed successfully!");

    path_for(p, "DeletePost", id);
    expect_msg(400, "DELETE", p, "{\"username\":\"mallory\"}",
               "You are not allowed to delete a post that was made by somebody else!");
    r = expect(200, "DELETE", p, "{\"username\":\"ALICE\"}");
    assert_string_equal(http_resp_str(&r, "message"), "Delete post request completed successfully!");
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 7);
    http_resp_free(&r);

    /* nothing but reads works on a removed post */
    path_for(p, "LikePost", id);
    expect_msg(400, "PUT", p, NULL, "You cannot like an inactive post!");
    path_for(p, "AddComment", id);
    expect_msg(400, "PUT", p, "{\"comment\":\"c\",\"username\":\"u\"}",
               "You cannot add a comment to an inactive post!");
    path_for(p, "EditMessage", id);
    expect_msg(400, "PUT", p, "{\"message\":\"m\"}",
               "You cannot edit the message of an inactive post!");
    snprintf(body, sizeof body, "{\"commentId\":\"%s\",\"comment\":\"c\",\"username\":\"bob\"}", cid);
    path_for(p, "EditComment", id);
    expect_msg(400, "PUT", p, body, "You cannot edit a comment to an inactive post!");
    path_for(p, "RemoveComment", id);
    expect_msg(400, "DELETE", p, body, "You cannot remove a comment from an inactive post!");
    path_for(p, "DeletePost", id);
    expect_msg(400, "DELETE", p, "{\"username\":\"alice\"}", "The post has been already removed!");
}

static void test_bad_requests_get_json_errors_with_the_right_status(void **state)
{
    (void)state;
    char p[120];
    path_for(p, "LikePost", "9d7c4b1e-0a2f-4e3d-b6c5-1f2e3d4c5b6a");
    expect_msg(404, "PUT", p, NULL, "Incorrect post Id provided! 9d7c4b1e-0a2f-4e3d-b6c5-1f2e3d4c5b6a");
    expect_msg(400, "PUT", "/api/v1/LikePost/not-a-guid", NULL,
               "The post id 'not-a-guid' is not a valid UUID.");
    http_resp bad = expect(400, "POST", "/api/v1/NewPost", "{\"author\":\"a\"");
    assert_non_null(strstr(http_resp_str(&bad, "message"), "not valid JSON"));
    http_resp_free(&bad);
    expect_msg(400, "POST", "/api/v1/NewPost", "{\"message\":\"m\"}", "The author field is required.");
    http_resp r = expect(405, "GET", "/api/v1/NewPost", NULL);
    char allow[16];
    assert_string_equal(http_resp_header(&r, "Allow", allow, sizeof allow), "POST");
    http_resp_free(&r);
    r = expect(404, "GET", "/nothing/here", NULL);
    http_resp_free(&r);

    http_resp t;
    const char *body = "{\"author\":\"a\",\"message\":\"m\"}";
    assert_int_equal(http_call(proc.port, "POST", "/api/v1/NewPost",
                               "Content-Type: text/plain\r\n", body, strlen(body), 5000, &t), 0);
    assert_int_equal(t.status, 415);
    assert_string_equal(http_resp_str(&t, "error"), "unsupported_media_type");
    http_resp_free(&t);
}

static void test_body_over_64k_is_413(void **state)
{
    (void)state;
    size_t n = 70 * 1024;
    char *big = malloc(n + 64);
    strcpy(big, "{\"author\":\"a\",\"message\":\"");
    size_t o = strlen(big);
    memset(big + o, 'x', n);
    strcpy(big + o + n, "\"}");
    http_resp r;
    assert_int_equal(http_call(proc.port, "POST", "/api/v1/NewPost",
                               "Content-Type: application/json\r\n", big, strlen(big), 10000, &r), 0);
    assert_int_equal(r.status, 413);
    assert_string_equal(http_resp_str(&r, "error"), "payload_too_large");
    http_resp_free(&r);
    free(big);
}

static void test_if_match_guards_a_command(void **state)
{
    (void)state;
    char id[40], p[120];
    new_post("carol", id);
    path_for(p, "LikePost", id);
    http_resp r;
    assert_int_equal(http_call(proc.port, "PUT", p, "If-Match: \"5\"\r\n", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 412);
    http_resp_free(&r);
    assert_int_equal(http_call(proc.port, "PUT", p, "If-Match: \"0\"\r\n", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    char etag[16];
    assert_string_equal(http_resp_header(&r, "ETag", etag, sizeof etag), "\"1\"");
    http_resp_free(&r);
}

typedef struct liker {
    char path[120];
    int status;
    int64_t version; /* the answer's */
} liker;

static void *like(void *arg)
{
    liker *l = arg;
    http_resp r;
    l->status = http_json(proc.port, "PUT", l->path, NULL, &r) == 0 ? r.status : -1;
    l->version = l->status == 200 ? json_integer_value(json_object_get(r.json, "version")) : -1;
    http_resp_free(&r);
    return NULL;
}

static void test_32_concurrent_likes_all_200_each_its_own_version_stream_ends_at_32(void **state)
{
    (void)state;
    char id[40];
    new_post("dave", id);
    enum { N = 32 };
    pthread_t t[N];
    liker l[N];
    for (int i = 0; i < N; i++) {
        path_for(l[i].path, "LikePost", id);
        pthread_create(&t[i], NULL, like, &l[i]);
    }
    bool answered[N + 1] = {false}; /* each version told to exactly one client */
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(l[i].status, 200);
        assert_true(l[i].version >= 1 && l[i].version <= N);
        assert_false(answered[l[i].version]);
        answered[l[i].version] = true;
    }
    /* read the stream straight from the store file the server writes */
    es_store *s = NULL;
    sm_error err;
    assert_int_equal(es_open(db_url, &s, &err), ES_OK);
    sm_event_list evs = {0};
    assert_int_equal(es_load(s, id, 0, 0, &evs, &err), ES_OK);
    assert_int_equal(evs.len, N + 1);
    for (size_t i = 0; i < evs.len; i++) {
        assert_int_equal(evs.items[i].version, (int64_t)i);
        assert_int_equal(evs.items[i].type, i == 0 ? SM_EV_POST_CREATED : SM_EV_POST_LIKED);
    }
    sm_event_list_free(&evs);
    es_close(s);
}

static void test_restart_keeps_posts_and_sigterm_exits_0(void **state)
{
    (void)state;
    char id[40], p[120];
    new_post("erin", id);
    assert_int_equal(test_proc_stop(&proc, SIGTERM, 5000), 0);
    start_server();
    path_for(p, "LikePost", id);
    http_resp r = expect(200, "PUT", p, NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    http_resp_free(&r);
}

/* libmongoc maps /dev/shm/mongoc-<pid> for its counters before main and
 * removes it only in mongoc_cleanup(): a command-api killed (or stopped)
 * must leave no such file, or every start leaks one and a later process
 * with the same pid prints libmongoc's "Falling back to malloc" warning
 * ahead of its own output. */
static void test_a_killed_server_leaves_nothing_in_dev_shm(void **state)
{
    (void)state;
    char shm[64];
    snprintf(shm, sizeof shm, "/dev/shm/mongoc-%d", (int)proc.pid);
    assert_int_equal(access(shm, F_OK), -1);
    pid_t pid = proc.pid;
    assert_int_equal(test_proc_stop(&proc, SIGKILL, 5000), 128 + SIGKILL);
    snprintf(shm, sizeof shm, "/dev/shm/mongoc-%d", (int)pid);
    assert_int_equal(access(shm, F_OK), -1);
    start_server();
}

static void test_health_and_help(void **state)
{
    (void)state;
    http_resp r = expect(200, "GET", "/health", NULL);
    json_t *es = json_object_get(r.json, "eventStore");
    assert_string_equal(json_string_value(json_object_get(es, "adapter")), "sqlite");
    assert_string_equal(json_string_value(json_object_get(es, "status")), "up");
    http_resp_free(&r);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' --help | grep -q SMPOST_EVENT_STORE", bin);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' --port nope 2>/dev/null", bin);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
}

int main(void)
{
    bin = getenv("SMPOST_COMMAND_API_BIN");
    if (!bin) {
        fprintf(stderr, "SMPOST_COMMAND_API_BIN is not set (run through ctest)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_post_lifecycle_with_original_texts),
        cmocka_unit_test(test_bad_requests_get_json_errors_with_the_right_status),
        cmocka_unit_test(test_body_over_64k_is_413),
        cmocka_unit_test(test_if_match_guards_a_command),
        cmocka_unit_test(test_32_concurrent_likes_all_200_each_its_own_version_stream_ends_at_32),
        cmocka_unit_test(test_restart_keeps_posts_and_sigterm_exits_0),
        cmocka_unit_test(test_a_killed_server_leaves_nothing_in_dev_shm),
        cmocka_unit_test(test_health_and_help),
    };
    return cmocka_run_group_tests_name("command_api_http", tests, group_setup, group_teardown);
}
