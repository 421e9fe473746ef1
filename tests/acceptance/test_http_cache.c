/* SPDX-License-Identifier: Apache-2.0 */
/* test_http_cache.c — conditional and compressed GETs on the real binaries
 * (docs/api.md, "Caching and compression"): query answers carry a weak
 * ETag that changes when and only when what they hold changes, and
 * If-None-Match then gets 304 with no body; Accept-Encoding: gzip gets a
 * gzip body that inflates to the very same JSON, on both services, above
 * the size threshold only, and every compressible answer says Vary.
 *
 * query-api runs on a SQLite read model with consuming off; this test
 * writes the read model directly between requests, as the projector would.
 * Binaries: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN. */
#include "http_client.h"
#include "proc.h"
#include "read_model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *cmd_bin, *query_bin;
static char dir[256], rm_url[320];
static test_proc cmd, query;
static rm_store *rm;
static sm_uuid_str feed_post, other_post;
static int64_t feed_version, other_version;

static void start(test_proc *p, const char *bin, const char *name, const char *store_flag,
                  const char *store)
{
    p->port = test_free_port();
    char port[16], log[320];
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    char *argv[] = {(char *)bin,         "--port",      port,       (char *)store_flag,
                    (char *)store,       "--kafka-bootstrap", "none", "--log-level",
                    "warn",              NULL};
    assert_true(test_proc_start(p, argv, log));
    if (!test_proc_wait_http(p->port, 10000))
        fail_msg("%s did not come up on port %d; see %s", name, p->port, log);
}

static void apply(sm_event *e)
{
    sm_uuid_new(e->event_id);
    if (!e->timestamp_ms)
        e->timestamp_ms = 1764198000000LL + e->version;
    rm_outcome o;
    sm_error err = {0};
    if (rm_apply(rm, e, &o, &err) != SM_OK || o != RM_APPLIED)
        fail_msg("apply: %s", err.message);
    sm_event_clear(e);
}

static void create_post(const char *author, sm_uuid_str id, int64_t at_ms)
{
    sm_event e = {.type = SM_EV_POST_CREATED, .at_ms = at_ms, .timestamp_ms = at_ms};
    sm_uuid_new(id);
    memcpy(e.aggregate_id, id, sizeof e.aggregate_id);
    e.author = strdup(author);
    e.message = strdup("a post whose comments make its answer worth compressing");
    apply(&e);
}

static void like(const sm_uuid_str id, int64_t *version)
{
    sm_event e = {.type = SM_EV_POST_LIKED, .version = ++*version};
    memcpy(e.aggregate_id, id, sizeof e.aggregate_id);
    apply(&e);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-cache", dir, sizeof dir))
        return -1;
    snprintf(rm_url, sizeof rm_url, "sqlite:%s/readmodel.db", dir);
    sm_error err = {0};
    if (rm_open(rm_url, &rm, &err) != SM_OK)
        fail_msg("rm_open: %s", err.message);
    /* "feed": one post with 20 comments (a few KB of JSON); "other": one
     * small post */
    create_post("feed", feed_post, 1764198000000LL);
    for (int i = 0; i < 20; i++) {
        sm_event e = {.type = SM_EV_COMMENT_ADDED, .version = ++feed_version,
                      .at_ms = 1764198001000LL + i};
        memcpy(e.aggregate_id, feed_post, sizeof e.aggregate_id);
        sm_uuid_new(e.comment_id);
        e.username = strdup("reader");
        char text[200];
        snprintf(text, sizeof text, "comment %d: the same words again and again, as in a thread", i);
        e.comment = strdup(text);
        apply(&e);
    }
    create_post("other", other_post, 1764198100000LL);
    char es[320];
    snprintf(es, sizeof es, "sqlite:%s/events.db", dir);
    start(&cmd, cmd_bin, "command-api", "--event-store", es);
    start(&query, query_bin, "query-api", "--read-model", rm_url);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (cmd.pid > 0)
        test_proc_stop(&cmd, SIGTERM, 5000);
    if (query.pid > 0)
        test_proc_stop(&query, SIGTERM, 5000);
    rm_close(rm);
    test_rm_rf(dir);
    return 0;
}

/* GET path with the given extra header lines; asserts the status. */
static void get(int port, const char *path, const char *headers, int status, http_resp *r)
{
    if (http_call(port, "GET", path, headers, NULL, 0, 10000, r) != 0)
        fail_msg("GET %s: no answer", path);
    if (r->status != status)
        fail_msg("GET %s [%s]: %d, expected %d: %.300s", path, headers, r->status, status,
                 r->body);
}

static char *header(const http_resp *r, const char *name)
{
    char buf[200];
    const char *v = http_resp_header(r, name, buf, sizeof buf);
    return v ? strdup(v) : NULL;
}

static char *inflate_body(const http_resp *r, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    size_t cap = 4 << 20;
    char *out = malloc(cap);
    z.next_in = (Bytef *)r->body;
    z.avail_in = (uInt)r->body_len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    inflateEnd(&z);
    return out;
}

#define FEED "/api/v1/PostLookup/byAuthor/feed"

static void test_gzip_body_inflates_to_the_same_json_with_the_same_etag(void **state)
{
    (void)state;
    http_resp plain, gz;
    get(query.port, FEED, "", 200, &plain);
    get(query.port, FEED, "Accept-Encoding: gzip, deflate\r\n", 200, &gz);
    assert_true(plain.body_len > 1024);
    assert_null(header(&plain, "Content-Encoding"));
    char *enc = header(&gz, "Content-Encoding");
    assert_non_null(enc);
    assert_string_equal(enc, "gzip");
    assert_true(gz.body_len < plain.body_len / 2);
    size_t n;
    char *back = inflate_body(&gz, &n);
    assert_int_equal(n, plain.body_len);
    assert_memory_equal(back, plain.body, n);
    char *v1 = header(&plain, "Vary"), *v2 = header(&gz, "Vary");
    assert_non_null(v1);
    assert_non_null(v2);
    assert_non_null(strstr(v1, "Accept-Encoding"));
    assert_non_null(strstr(v2, "Accept-Encoding"));
    char *t1 = header(&plain, "ETag"), *t2 = header(&gz, "ETag");
    assert_non_null(t1);
    assert_string_equal(t1, t2);
    assert_memory_equal(t1, "W/\"", 3);
    char *cc = header(&plain, "Cache-Control");
    assert_string_equal(cc, "no-cache");
    free(back), free(enc), free(v1), free(v2), free(t1), free(t2), free(cc);
    http_resp_free(&plain);
    http_resp_free(&gz);
}

static void test_gzip_refused_or_small_answers_go_as_they_are(void **state)
{
    (void)state;
    http_resp r;
    get(query.port, FEED, "Accept-Encoding: gzip;q=0, identity\r\n", 200, &r);
    assert_null(header(&r, "Content-Encoding"));
    assert_non_null(r.json);
    http_resp_free(&r);
    /* "other" is one small post: under the threshold, but Vary all the same */
    get(query.port, "/api/v1/PostLookup/byAuthor/other", "Accept-Encoding: gzip\r\n", 200, &r);
    assert_true(r.body_len < 1024);
    assert_null(header(&r, "Content-Encoding"));
    assert_non_null(r.json);
    char *vary = header(&r, "Vary");
    assert_non_null(vary);
    free(vary);
    http_resp_free(&r);
    /* an error answer is small JSON: not compressed either */
    get(query.port, "/api/v1/PostLookup/byId/nope", "Accept-Encoding: gzip\r\n", 400, &r);
    assert_null(header(&r, "Content-Encoding"));
    assert_non_null(r.json);
    assert_null(header(&r, "ETag"));
    http_resp_free(&r);
}

static void test_command_api_compresses_too(void **state)
{
    (void)state;
    http_resp plain, gz;
    get(cmd.port, "/openapi.json", "", 200, &plain);
    get(cmd.port, "/openapi.json", "Accept-Encoding: gzip\r\n", 200, &gz);
    char *enc = header(&gz, "Content-Encoding");
    assert_non_null(enc);
    assert_string_equal(enc, "gzip");
    size_t n;
    char *back = inflate_body(&gz, &n);
    assert_int_equal(n, plain.body_len);
    assert_memory_equal(back, plain.body, n);
    free(back), free(enc);
    http_resp_free(&plain);
    http_resp_free(&gz);
}

/* The ETag of path's answer. */
static char *etag_of(const char *path)
{
    http_resp r;
    get(query.port, path, "", 200, &r);
    char *t = header(&r, "ETag");
    assert_non_null(t);
    http_resp_free(&r);
    return t;
}

/* GET path with If-None-Match: tags; a 304 must carry no body and the
 * tag it matched (expect, or tags itself when NULL). Returns the status. */
static int revalidate_as(const char *path, const char *tag, const char *more_headers,
                         const char *expect)
{
    char h[300];
    snprintf(h, sizeof h, "If-None-Match: %s\r\n%s", tag, more_headers);
    http_resp r;
    if (http_call(query.port, "GET", path, h, NULL, 0, 10000, &r) != 0)
        fail_msg("GET %s: no answer", path);
    int status = r.status;
    if (status == 304) {
        assert_int_equal(r.body_len, 0);
        assert_null(header(&r, "Content-Length"));
        assert_null(header(&r, "Content-Type"));
        char *t = header(&r, "ETag");
        assert_non_null(t);
        assert_string_equal(t, expect ? expect : tag);
        free(t);
    }
    http_resp_free(&r);
    return status;
}

static int revalidate(const char *path, const char *tag, const char *more_headers)
{
    return revalidate_as(path, tag, more_headers, NULL);
}

static void test_304_only_while_nothing_in_the_answer_changed(void **state)
{
    (void)state;
    char *tag = etag_of(FEED);
    assert_int_equal(revalidate(FEED, tag, ""), 304);
    assert_int_equal(revalidate(FEED, tag, "Accept-Encoding: gzip\r\n"), 304);
    char list[200];
    snprintf(list, sizeof list, "\"nope\", %s", tag);
    assert_int_equal(revalidate_as(FEED, list, "", tag), 304);
    assert_int_equal(revalidate(FEED, "\"nope\"", ""), 200);

    /* a post outside the answer changes: still 304 */
    like(other_post, &other_version);
    assert_int_equal(revalidate(FEED, tag, ""), 304);

    /* a post in it changes: 200 with a new tag, which is then the one */
    like(feed_post, &feed_version);
    assert_int_equal(revalidate(FEED, tag, ""), 200);
    char *tag2 = etag_of(FEED);
    assert_string_not_equal(tag, tag2);
    assert_int_equal(revalidate(FEED, tag2, ""), 304);

    /* a post joins the list: 200 again */
    sm_uuid_str second;
    create_post("feed", second, 1764199000000LL);
    assert_int_equal(revalidate(FEED, tag2, ""), 200);
    free(tag);
    free(tag2);
}

static void test_every_query_route_revalidates_and_keeps_its_headers(void **state)
{
    (void)state;
    char path[200];
    snprintf(path, sizeof path, "/api/v1/PostLookup/byId/%s?minVersion=%lld", feed_post,
             (long long)feed_version);
    char *tag = etag_of(path);
    char h[300];
    snprintf(h, sizeof h, "If-None-Match: %s\r\n", tag);
    http_resp r;
    get(query.port, path, h, 304, &r);
    char *v = header(&r, "X-Read-Model-Version"); /* read-your-writes says where it is */
    assert_non_null(v);
    assert_int_equal(atoll(v), feed_version);
    free(v);
    http_resp_free(&r);
    free(tag);
    static const char *const lists[] = {"/api/v1/PostLookup", "/api/v1/PostLookup/withComments",
                                        "/api/v1/PostLookup/withLikes/1"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        tag = etag_of(lists[i]);
        assert_int_equal(revalidate(lists[i], tag, ""), 304);
        free(tag);
    }
    /* a comment page too */
    snprintf(path, sizeof path, "/api/v1/PostLookup/comments/%s?limit=5", feed_post);
    tag = etag_of(path);
    assert_int_equal(revalidate(path, tag, ""), 304);
    free(tag);
        /* HEAD revalidates as GET does */
    tag = etag_of(FEED);
    snprintf(h, sizeof h, "If-None-Match: %s\r\n", tag);
    assert_int_equal(http_call(query.port, "HEAD", FEED, h, NULL, 0, 10000, &r), 0);
    assert_int_equal(r.status, 304);
    http_resp_free(&r);
    free(tag);
    /* "*" stands for any current answer, never for a 204 or an error */
    get(query.port, FEED, "If-None-Match: *\r\n", 304, &r);
    http_resp_free(&r);
    get(query.port, "/api/v1/PostLookup/byAuthor/nobody", "If-None-Match: *\r\n", 204, &r);
    http_resp_free(&r);
    get(query.port, "/api/v1/PostLookup/nowhere", "If-None-Match: *\r\n", 404, &r);
    http_resp_free(&r);
}

int main(void)
{
    cmd_bin = getenv("SMPOST_COMMAND_API_BIN");
    query_bin = getenv("SMPOST_QUERY_API_BIN");
    if (!cmd_bin || !query_bin) {
        fprintf(stderr, "SMPOST_COMMAND_API_BIN and SMPOST_QUERY_API_BIN must be set\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_body_inflates_to_the_same_json_with_the_same_etag),
        cmocka_unit_test(test_gzip_refused_or_small_answers_go_as_they_are),
        cmocka_unit_test(test_command_api_compresses_too),
        cmocka_unit_test(test_304_only_while_nothing_in_the_answer_changed),
        cmocka_unit_test(test_every_query_route_revalidates_and_keeps_its_headers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
