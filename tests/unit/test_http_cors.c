/* SPDX-License-Identifier: Apache-2.0 */
/* test_http_cors.c — the CORS policy (common/http_cors.h) without sockets:
 * SMPOST_CORS_ORIGINS parsed and refused, the headers an allowed, a
 * disallowed and an absent Origin get on 2xx, 4xx and 5xx replies, and a
 * preflight on every route of both services, answered from their real
 * route tables with exactly the methods each route takes. */
#include "http_cors.h"
#include "query_routes.h"
#include "routes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP "https://app.example.com"
#define DEV "http://localhost:3000"

static http_cors *parse_ok(const char *value)
{
    http_cors *c = NULL;
    sm_error err = {0};
    if (http_cors_parse("SMPOST_CORS_ORIGINS", value, &c, &err) != SM_OK)
        fail_msg("'%s' refused: %s", value ? value : "(null)", err.message);
    return c;
}

/* The setting is refused with a message naming it and the bad entry. */
static void assert_refused(const char *value, const char *shown)
{
    http_cors *c = (http_cors *)1;
    sm_error err = {0};
    assert_int_equal(http_cors_parse("SMPOST_CORS_ORIGINS", value, &c, &err), SM_ERR_INVALID);
    assert_null(c);
    if (!strstr(err.message, "SMPOST_CORS_ORIGINS") || !strstr(err.message, shown))
        fail_msg("'%s': message '%s' names neither the setting nor '%s'", value, err.message,
                 shown);
}

/* The value of header name in the reply's CORS lines, or NULL. */
static const char *cors_header(const http_reply *r, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = r->cors_headers; *line;) {
        const char *eol = strstr(line, "\r\n");
        assert_non_null(eol);
        if ((size_t)(eol - line) > n + 1 && strncmp(line, name, n) == 0 && line[n] == ':') {
            snprintf(buf, cap, "%.*s", (int)(eol - line - n - 2), line + n + 2);
            return buf;
        }
        line = eol + 2;
    }
    return NULL;
}

static void assert_header(const http_reply *r, const char *name, const char *want)
{
    char buf[HTTP_CORS_HEADERS_MAX];
    const char *got = cors_header(r, name, buf, sizeof buf);
    if (!want && got)
        fail_msg("%s: '%s', expected none (all: %s)", name, got, r->cors_headers);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("%s: '%s', expected '%s' (all: %s)", name, got ? got : "(none)", want,
                 r->cors_headers);
}

static void test_unset_or_empty_setting_is_cors_off(void **state)
{
    (void)state;
    assert_null(parse_ok(NULL));
    assert_null(parse_ok(""));
    /* off: a reply is left exactly as the service made it */
    http_reply r = {.status = 405, .allow = "GET"};
    http_cors_apply(NULL, "OPTIONS", APP, "GET", &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET");
    assert_string_equal(r.cors_headers, "");
}

static void test_origin_lists_and_star_are_accepted(void **state)
{
    (void)state;
    http_cors *c = parse_ok(APP "," DEV);
    assert_true(http_cors_allows(c, APP));
    assert_true(http_cors_allows(c, DEV));
    http_cors_free(c);
    c = parse_ok(" " APP " ,  " DEV "  ");
    assert_true(http_cors_allows(c, APP));
    assert_true(http_cors_allows(c, DEV));
    http_cors_free(c);
    c = parse_ok("http://[::1]:8080,http://127.0.0.1:5173,https://a-b.example.org:8443");
    assert_true(http_cors_allows(c, "http://[::1]:8080"));
    assert_true(http_cors_allows(c, "http://127.0.0.1:5173"));
    http_cors_free(c);
    c = parse_ok("*");
    assert_true(http_cors_allows(c, "https://anything.example"));
    assert_false(http_cors_allows(c, NULL));
    http_cors_free(c);
}

static void test_malformed_origins_are_refused_naming_the_setting(void **state)
{
    (void)state;
    assert_refused(APP "/", APP "/");                    /* trailing slash */
    assert_refused(APP "/api", APP "/api");              /* a path */
    assert_refused("app.example.com", "app.example.com"); /* no scheme */
    assert_refused("ftp://app.example.com", "ftp://");
    assert_refused("https://App.example.com", "App");    /* browsers send lowercase */
    assert_refused("https://app.example.com:443", ":443"); /* default port never sent */
    assert_refused("http://app.example.com:80", ":80");
    assert_refused("https://app.example.com:0", ":0");
    assert_refused("https://app.example.com:65536", ":65536");
    assert_refused("https://app.example.com:", "https://app.example.com:'");
    assert_refused("https://app.example.com:8x", ":8x");
    assert_refused("https://", "https://");
    assert_refused("https://app.example.com?x=1", "?x=1");
    assert_refused(APP ",", "''");                       /* an empty entry */
    assert_refused(APP ",,", "''");
    assert_refused("*," APP, "mixed");
    assert_refused(APP ",*", "mixed");
    assert_refused("http://[zz]:80", "[zz]");
    assert_refused("https://user@app.example.com", "user@");
    char long_origin[HTTP_CORS_ORIGIN_MAX + 32];
    snprintf(long_origin, sizeof long_origin, "https://%0*d.example", HTTP_CORS_ORIGIN_MAX, 0);
    assert_refused(long_origin, "longer than");
    char many[(sizeof DEV + 8) * (HTTP_CORS_ORIGINS_MAX + 1)] = "";
    for (int i = 0; i <= HTTP_CORS_ORIGINS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%shttp://h%d", i ? "," : "",
                 i);
    assert_refused(many, "too many");
}

static void test_origins_match_exactly(void **state)
{
    (void)state;
    http_cors *c = parse_ok(APP);
    assert_true(http_cors_allows(c, APP));
    assert_false(http_cors_allows(c, APP ":8443"));
    assert_false(http_cors_allows(c, "http://app.example.com"));
    assert_false(http_cors_allows(c, "https://app.example.co"));
    assert_false(http_cors_allows(c, "https://evil.app.example.com"));
    assert_false(http_cors_allows(c, "null"));
    assert_false(http_cors_allows(c, NULL));
    http_cors_free(c);
}

/* An ordinary reply of each class: an allowed origin may read it and its
 * headers; a disallowed or absent one gets Vary: Origin only. */
static void test_replies_of_every_class_carry_headers_for_allowed_origins(void **state)
{
    (void)state;
    http_cors *c = parse_ok(APP "," DEV);
    const int statuses[] = {200, 201, 400, 404, 412, 503};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        http_reply r = {.status = statuses[i], .retry_after = statuses[i] == 503};
        http_cors_apply(c, "GET", DEV, NULL, &r);
        assert_int_equal(r.status, statuses[i]);
        assert_header(&r, "Access-Control-Allow-Origin", DEV);
        assert_header(&r, "Vary", "Origin");
        assert_header(&r, "Access-Control-Expose-Headers", HTTP_CORS_EXPOSED);
        assert_header(&r, "Access-Control-Allow-Credentials", NULL);
        assert_header(&r, "Access-Control-Allow-Methods", NULL);

        http_reply other = {.status = statuses[i]};
        http_cors_apply(c, "GET", "https://evil.example", NULL, &other);
        assert_string_equal(other.cors_headers, "Vary: Origin\r\n");
        http_reply none = {.status = statuses[i]};
        http_cors_apply(c, "POST", NULL, NULL, &none);
        assert_string_equal(none.cors_headers, "Vary: Origin\r\n");
    }
    http_cors_free(c);
}

static void test_exposed_headers_cover_what_clients_read(void **state)
{
    (void)state;
    const char *must[] = {"ETag", "X-Request-Id", "Retry-After", "X-Read-Model-Version",
                          "X-Read-Model-Stale", "Location", "WWW-Authenticate"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(HTTP_CORS_EXPOSED, must[i]))
            fail_msg("%s is not exposed", must[i]);
}

static void test_star_answers_star_whatever_the_origin(void **state)
{
    (void)state;
    http_cors *c = parse_ok("*");
    http_reply r = {.status = 200};
    http_cors_apply(c, "GET", "https://whoever.example", NULL, &r);
    assert_header(&r, "Access-Control-Allow-Origin", "*");
    http_reply p = {.status = 405, .allow = "PUT"};
    http_cors_apply(c, "OPTIONS", "https://whoever.example", "PUT", &p);
    assert_int_equal(p.status, 204);
    assert_header(&p, "Access-Control-Allow-Origin", "*");
    http_cors_free(c);
}

/* The longest origin the setting takes, on the longest set of lines (a
 * preflight of a route taking both reads and writes), fits whole. */
static void test_longest_origin_fits_in_the_header_lines(void **state)
{
    (void)state;
    char origin[HTTP_CORS_ORIGIN_MAX + 1];
    snprintf(origin, sizeof origin, "https://%0*d", HTTP_CORS_ORIGIN_MAX - 8, 0);
    http_cors *c = parse_ok(origin);
    http_reply p = {.status = 405, .allow = "GET, PUT, POST, DELETE"};
    http_cors_apply(c, "OPTIONS", origin, "DELETE", &p);
    assert_int_equal(p.status, 204);
    assert_header(&p, "Access-Control-Allow-Origin", origin);
    assert_header(&p, "Access-Control-Allow-Methods", "GET, PUT, POST, DELETE, HEAD");
    assert_header(&p, "Access-Control-Max-Age", "600");
    assert_header(&p, "Vary", "Origin");
    http_reply r = {.status = 200};
    http_cors_apply(c, "GET", origin, NULL, &r);
    assert_header(&r, "Access-Control-Allow-Origin", origin);
    assert_header(&r, "Access-Control-Expose-Headers", HTTP_CORS_EXPOSED);
    assert_header(&r, "Vary", "Origin");
    http_cors_free(c);
}

/* A concrete path for a documented pattern: each {param} becomes a value. */
static void concrete_path(const char *pattern, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 40 < cap; p++) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            o += (size_t)snprintf(out + o, cap - o, "%s",
                                  strncmp(p, "{n}", 3) == 0 ? "5"
                                  : strncmp(p, "{file}", 6) == 0
                                      ? "index.html"
                                      : "0b6f5ad4-3c1e-4f7e-9a41-6f1c2b7d8e90");
            p = end;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

typedef void (*handler_fn)(void *app, const http_request *req, http_reply *reply);

/* OPTIONS path through the service's own handler, then the policy. */
static void preflight(handler_fn handle, void *app, const http_cors *c, const char *path,
                      const char *origin, const char *method, http_reply *r)
{
    http_request req = {.method = "OPTIONS", .path = path};
    strcpy(req.request_id, "test");
    memset(r, 0, sizeof *r);
    handle(app, &req, r);
    http_cors_apply(c, "OPTIONS", origin, method, r);
}

/* Every route of a service: a preflight for its method is 204 listing
 * exactly the route's methods; one for a method it does not take, or from
 * another origin, is 403 with no allow header. */
static void check_every_route(handler_fn handle, void *app,
                              size_t (*list)(size_t, const char **, const char **))
{
    http_cors *c = parse_ok(APP);
    size_t n = list(0, &(const char *){NULL}, &(const char *){NULL});
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        const char *method, *pattern;
        list(i, &method, &pattern);
        char path[200], want[40];
        concrete_path(pattern, path, sizeof path);
        snprintf(want, sizeof want, "%s%s", method, strcmp(method, "GET") == 0 ? ", HEAD" : "");
        http_reply r;
        preflight(handle, app, c, path, APP, method, &r);
        if (r.status != 204)
            fail_msg("preflight %s %s: %d", method, path, r.status);
        assert_null(r.body);
        assert_null(r.allow);
        /* counted under its route in smpost_http_requests_total */
        assert_non_null(r.route);
        assert_string_equal(r.route, pattern);
        assert_header(&r, "Access-Control-Allow-Origin", APP);
        assert_header(&r, "Access-Control-Allow-Methods", want);
        assert_header(&r, "Access-Control-Max-Age", "600");
        assert_header(&r, "Vary", "Origin");
        char hdrs[200];
        assert_non_null(cors_header(&r, "Access-Control-Allow-Headers", hdrs, sizeof hdrs));
        assert_non_null(strstr(hdrs, "Authorization"));
        assert_non_null(strstr(hdrs, "X-Request-Id"));
        assert_non_null(strstr(hdrs, "traceparent"));
        bool writes = strcmp(method, "GET") != 0;
        assert_int_equal(strstr(hdrs, "Content-Type") != NULL, writes);
        assert_int_equal(strstr(hdrs, "If-Match") != NULL, writes);
        assert_int_equal(strstr(hdrs, "If-None-Match") != NULL, !writes);
        http_reply_free(&r);

        /* HEAD goes with GET, and nothing else does */
        const char *other = strcmp(method, "PATCH") != 0 ? "PATCH" : "PUT";
        preflight(handle, app, c, path, APP, other, &r);
        assert_int_equal(r.status, 403);
        assert_string_equal(json_string_value(json_object_get(r.body, "error")), "forbidden");
        assert_string_equal(r.cors_headers, "Vary: Origin\r\n");
        assert_null(r.allow);
        http_reply_free(&r);

        preflight(handle, app, c, path, "https://evil.example", method, &r);
        assert_int_equal(r.status, 403);
        assert_string_equal(r.cors_headers, "Vary: Origin\r\n");
        http_reply_free(&r);
    }
    /* an unknown path is 404 to a preflight as to anything */
    http_reply r;
    preflight(handle, app, c, "/api/v1/NoSuchThing", APP, "GET", &r);
    assert_int_equal(r.status, 404);
    assert_header(&r, "Access-Control-Allow-Methods", NULL);
    http_reply_free(&r);
    /* OPTIONS that is not a preflight stays 405 with Allow */
    const char *method, *pattern;
    list(0, &method, &pattern);
    char path[200];
    concrete_path(pattern, path, sizeof path);
    preflight(handle, app, c, path, APP, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, method);
    assert_header(&r, "Access-Control-Allow-Methods", NULL);
    assert_header(&r, "Access-Control-Allow-Origin", APP);
    http_reply_free(&r);
    preflight(handle, app, c, path, NULL, "GET", &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.cors_headers, "Vary: Origin\r\n");
    http_reply_free(&r);
    http_cors_free(c);
}

static void test_preflight_on_every_command_route(void **state)
{
    (void)state;
    cmd_app app = {0};
    check_every_route(routes_handle, &app, routes_list);
}

static void test_preflight_on_every_query_route(void **state)
{
    (void)state;
    query_app app = {0};
    check_every_route(query_routes_handle, &app, query_routes_list);
}

static void test_head_is_allowed_beside_get(void **state)
{
    (void)state;
    http_cors *c = parse_ok(APP);
    query_app app = {0};
    http_reply r;
    preflight(query_routes_handle, &app, c, "/api/v1/PostLookup", APP, "HEAD", &r);
    assert_int_equal(r.status, 204);
    http_reply_free(&r);
    /* and not on a route that takes no GET */
    cmd_app capp = {0};
    preflight(routes_handle, &capp, c, "/api/v1/NewPost", APP, "HEAD", &r);
    assert_int_equal(r.status, 403);
    http_reply_free(&r);
    http_cors_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_or_empty_setting_is_cors_off),
        cmocka_unit_test(test_origin_lists_and_star_are_accepted),
        cmocka_unit_test(test_malformed_origins_are_refused_naming_the_setting),
        cmocka_unit_test(test_origins_match_exactly),
        cmocka_unit_test(test_replies_of_every_class_carry_headers_for_allowed_origins),
        cmocka_unit_test(test_exposed_headers_cover_what_clients_read),
        cmocka_unit_test(test_star_answers_star_whatever_the_origin),
        cmocka_unit_test(test_longest_origin_fits_in_the_header_lines),
        cmocka_unit_test(test_preflight_on_every_command_route),
        cmocka_unit_test(test_preflight_on_every_query_route),
        cmocka_unit_test(test_head_is_allowed_beside_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
