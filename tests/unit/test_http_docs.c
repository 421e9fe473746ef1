/* SPDX-License-Identifier: Apache-2.0 */
/* test_http_docs.c — the API documentation routes of both binaries and the
 * static file serving under them (common/http_docs.h, common/http_static.h),
 * without sockets: http_request in, http_reply out. Swagger UI's directory
 * is a temporary one the test fills with stand-in files, plus a "secret"
 * file beside it that no request may ever read (path traversal). */
#include "http_docs.h"
#include "http_static.h"
#include "proc.h"
#include "query_routes.h"
#include "routes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "top-secret-content"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const unsigned char png_bytes[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
                                          0x00, 0x00, 0x00, 0x0d, 'I', 'H', 'D', 'R'};

typedef struct fixture {
    char base[1024]; /* temp dir: ui/ inside, secret.js beside it */
    char ui[PATH_MAX];
    cmd_app cmd;
    query_app query;
    http_reply reply;
} fixture;

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof path); /* a cut path would write elsewhere */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !test_temp_dir("http_docs", f->base, sizeof f->base))
        return -1;
    snprintf(f->ui, sizeof f->ui, "%s/ui", f->base);
    if (mkdir(f->ui, 0755) != 0)
        return -1;
    write_text(f->ui, "index.html", "<!DOCTYPE html><title>stand-in Swagger UI</title>");
    write_text(f->ui, "swagger-ui.css", "body{}");
    write_text(f->ui, "swagger-ui-bundle.js", "var SwaggerUIBundle;");
    write_text(f->ui, "swagger-ui-standalone-preset.js", "var SwaggerUIStandalonePreset;");
    write_text(f->ui, "swagger-initializer.js", "petstore.swagger.io");
    write_file(f->ui, "favicon-32x32.png", png_bytes, sizeof png_bytes);
    write_text(f->ui, ".hidden.js", SECRET);
    write_text(f->ui, "notes.exe", SECRET);
    write_text(f->base, "secret.js", SECRET);
    char target[PATH_MAX + 16], link[PATH_MAX + 16];
    snprintf(target, sizeof target, "%s/secret.js", f->base);
    snprintf(link, sizeof link, "%s/escape.js", f->ui);
    if (symlink(target, link) != 0)
        return -1;
    snprintf(link, sizeof link, "%s/sub.js", f->ui);
    if (mkdir(link, 0755) != 0)
        return -1;
    const http_docs on = {true, f->ui, NULL};
    f->cmd.docs = on;
    f->cmd.docs.openapi_json = sm_openapi_command_json;
    f->query.docs = on;
    f->query.docs.openapi_json = sm_openapi_query_json;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_reply_free(&f->reply);
    test_rm_rf(f->base);
    free(f);
    return 0;
}

typedef enum { CMD, QUERY } binary;

/* GET path on one binary; returns the status. */
static int get(fixture *f, binary b, const char *path)
{
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    http_request req = {.method = "GET", .path = path};
    strcpy(req.request_id, "test");
    if (b == CMD)
        routes_handle(&f->cmd, &req, &f->reply);
    else
        query_routes_handle(&f->query, &req, &f->reply);
    return f->reply.status;
}

static const char *error_code(const fixture *f)
{
    return json_string_value(json_object_get(f->reply.body, "error"));
}

static const char *error_message(const fixture *f)
{
    return json_string_value(json_object_get(f->reply.body, "message"));
}

static bool body_has(const fixture *f, const char *needle)
{
    if (f->reply.body_text)
        return strstr(f->reply.body_text, needle) != NULL;
    char *dump = f->reply.body ? json_dumps(f->reply.body, 0) : NULL;
    bool has = dump && strstr(dump, needle);
    free(dump);
    return has;
}

/* ---- http_static: names and types --------------------------------------- */

static void test_content_type_follows_the_extension(void **state)
{
    (void)state;
    assert_string_equal(http_static_content_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(http_static_content_type("swagger-ui-bundle.js"),
                        "text/javascript; charset=utf-8");
    assert_string_equal(http_static_content_type("swagger-ui.css"), "text/css; charset=utf-8");
    assert_string_equal(http_static_content_type("favicon-32x32.png"), "image/png");
    assert_string_equal(http_static_content_type("swagger-ui.css.map"),
                        "application/json; charset=utf-8");
    assert_string_equal(http_static_content_type("A.JS"), "text/javascript; charset=utf-8");
    assert_null(http_static_content_type("notes.exe"));
    assert_null(http_static_content_type("Makefile"));
    assert_null(http_static_content_type(".js"));
    assert_null(http_static_content_type("index.html.bak"));
}

static void test_file_names_refuse_traversal_hidden_files_and_odd_bytes(void **state)
{
    (void)state;
    const char *bad[] = {"",          ".",         "..",         "../secret.js", "a/b.js",
                         "..\\x.js",  ".env",      ".hidden.js", "%2e%2e",       "a b.js",
                         "a\"b.js",   "x.js?y=1",  "/etc/passwd", "~root",       "a:b.js"};
    for (size_t i = 0; i < COUNT(bad); i++)
        if (http_static_name_ok(bad[i], strlen(bad[i])))
            fail_msg("name '%s' was accepted", bad[i]);
    assert_false(http_static_name_ok("a\0b.js", 6));
    char longname[HTTP_STATIC_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(http_static_name_ok(longname, strlen(longname)));
    assert_true(http_static_name_ok(longname, HTTP_STATIC_MAX_NAME));
    assert_true(http_static_name_ok("swagger-ui-bundle.js", 20));
    assert_true(http_static_name_ok("favicon-32x32.png", 17));
    assert_true(http_static_name_ok("a_b.c.map", 9));
}

/* ---- http_static: serving ------------------------------------------------- */

static void test_a_file_is_sent_whole_with_its_type_even_with_nul_bytes(void **state)
{
    fixture *f = *state;
    assert_int_equal(http_static_serve(f->ui, "favicon-32x32.png", 17, &f->reply), 200);
    assert_string_equal(f->reply.content_type, "image/png");
    assert_int_equal(f->reply.body_text_len, sizeof png_bytes);
    assert_memory_equal(f->reply.body_text, png_bytes, sizeof png_bytes);
    assert_non_null(strstr(f->reply.extra_headers, "X-Content-Type-Options: nosniff"));
}

static void test_nothing_outside_the_directory_is_ever_served(void **state)
{
    fixture *f = *state;
    /* a link inside the root to a file beside it; a hidden file; an
     * extension that is not served; a directory; a missing file */
    const char *names[] = {"escape.js", ".hidden.js", "notes.exe", "sub.js", "missing.js",
                           "../secret.js", ".."};
    for (size_t i = 0; i < COUNT(names); i++) {
        http_reply_free(&f->reply);
        memset(&f->reply, 0, sizeof f->reply);
        int status = http_static_serve(f->ui, names[i], strlen(names[i]), &f->reply);
        if (status != 404 || body_has(f, SECRET))
            fail_msg("%s: status %d", names[i], status);
        assert_string_equal(error_code(f), "not_found");
    }
}

static void test_a_missing_directory_is_unavailable_not_a_crash(void **state)
{
    fixture *f = *state;
    char gone[PATH_MAX + 8];
    snprintf(gone, sizeof gone, "%s/gone", f->base);
    assert_int_equal(http_static_serve(gone, "index.html", 10, &f->reply), 503);
    assert_string_equal(error_code(f), "unavailable");
    assert_int_equal(http_static_serve(NULL, "index.html", 10, &f->reply), 503);
    sm_error err = {0};
    const char *const need[] = {"index.html", "nope.js", NULL};
    assert_int_equal(http_static_check_dir(f->ui, need, &err), SM_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.message, "nope.js"));
    assert_int_equal(http_static_check_dir(gone, need, &err), SM_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.message, "does not exist"));
    const char *const present[] = {"index.html", "favicon-32x32.png", NULL};
    assert_int_equal(http_static_check_dir(f->ui, present, &err), SM_OK);
}

/* The default directory: a checkout's relative one when it exists (the
 * build tree), the installed one otherwise; a setting always wins. */
static void test_ui_dir_default_falls_back_to_the_installed_copy(void **state)
{
    fixture *f = *state;
    char gone[PATH_MAX + 8], file[PATH_MAX + 16];
    snprintf(gone, sizeof gone, "%s/gone", f->base);
    snprintf(file, sizeof file, "%s/index.html", f->ui);
    const char *installed = "/usr/share/smpost/swagger-ui";
    assert_ptr_equal(http_docs_pick_ui_dir(NULL, f->ui, installed), f->ui);
    assert_ptr_equal(http_docs_pick_ui_dir(NULL, gone, installed), installed);
    assert_ptr_equal(http_docs_pick_ui_dir(NULL, file, installed), installed); /* not a dir */
    assert_ptr_equal(http_docs_pick_ui_dir(gone, f->ui, installed), gone);
    assert_string_equal(HTTP_DOCS_UI_DIR_DEFAULT, "docs/swagger-ui/node_modules/swagger-ui-dist");
    /* the installed copy is an absolute path under the install prefix */
    assert_true(HTTP_DOCS_UI_DIR_INSTALLED[0] == '/');
    assert_non_null(strstr(HTTP_DOCS_UI_DIR_INSTALLED, "/share/smpost/swagger-ui"));
}

/* ---- the docs routes, on both binaries ------------------------------------ */

static void test_openapi_json_is_the_binarys_own_document(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, CMD, "/openapi.json"), 200);
    assert_string_equal(f->reply.content_type, "application/json; charset=utf-8");
    assert_string_equal(f->reply.body_text, sm_openapi_command_json);
    assert_string_equal(f->reply.route, "/openapi.json");
    assert_int_equal(get(f, QUERY, "/OpenAPI.json"), 200);
    assert_string_equal(f->reply.body_text, sm_openapi_query_json);
    json_t *doc = json_loads(f->reply.body_text, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "servers"), 0), "url")),
                        "/");
    json_decref(doc);
}

static void test_swagger_without_slash_redirects_to_the_directory(void **state)
{
    fixture *f = *state;
    for (binary b = CMD; b <= QUERY; b++) {
        assert_int_equal(get(f, b, "/swagger"), 301);
        assert_string_equal(f->reply.extra_headers, "Location: swagger/\r\n");
        assert_null(f->reply.body);
        assert_null(f->reply.body_text);
        assert_string_equal(f->reply.route, "/swagger");
    }
}

static void test_swagger_serves_the_ui_with_its_own_initializer(void **state)
{
    fixture *f = *state;
    for (binary b = CMD; b <= QUERY; b++) {
        assert_int_equal(get(f, b, "/swagger/"), 200);
        assert_string_equal(f->reply.content_type, "text/html; charset=utf-8");
        assert_true(body_has(f, "stand-in Swagger UI"));
        assert_int_equal(get(f, b, "/swagger/swagger-ui.css"), 200);
        assert_string_equal(f->reply.content_type, "text/css; charset=utf-8");
        assert_string_equal(f->reply.route, "/swagger/{file}");
        assert_int_equal(get(f, b, "/swagger/swagger-ui-bundle.js"), 200);
        assert_string_equal(f->reply.content_type, "text/javascript; charset=utf-8");
        /* the package's initializer (Petstore from the internet) is replaced */
        assert_int_equal(get(f, b, "/swagger/swagger-initializer.js"), 200);
        assert_string_equal(f->reply.content_type, "text/javascript; charset=utf-8");
        assert_false(body_has(f, "petstore"));
        assert_true(body_has(f, "window.location.origin + \"/openapi.json\""));
        assert_true(body_has(f, "validatorUrl: null"));
    }
}

static void test_swagger_routes_refuse_traversal(void **state)
{
    fixture *f = *state;
    /* paths as civetweb hands them over: already URL-decoded */
    const char *paths[] = {"/swagger/../secret.js", "/swagger/..", "/swagger/../../etc/passwd",
                           "/swagger/escape.js",    "/swagger/.hidden.js", "/swagger/%2e%2e",
                           "/swagger/sub.js/..",    "/swagger/notes.exe",  "/swagger//secret.js",
                           "/swagger/..\\secret.js"};
    for (binary b = CMD; b <= QUERY; b++)
        for (size_t i = 0; i < COUNT(paths); i++) {
            int status = get(f, b, paths[i]);
            if (status != 404 || body_has(f, SECRET))
                fail_msg("%s on %s: status %d", paths[i], b == CMD ? "command-api" : "query-api",
                         status);
        }
}

static void test_missing_ui_files_answer_503_with_how_to_install(void **state)
{
    fixture *f = *state;
    char gone[PATH_MAX + 8];
    snprintf(gone, sizeof gone, "%s/not-installed", f->base);
    f->cmd.docs.swagger_ui_dir = gone;
    f->query.docs.swagger_ui_dir = gone;
    for (binary b = CMD; b <= QUERY; b++) {
        const char *paths[] = {"/swagger/", "/swagger/swagger-ui.css",
                               "/swagger/swagger-initializer.js"};
        for (size_t i = 0; i < COUNT(paths); i++) {
            assert_int_equal(get(f, b, paths[i]), 503);
            assert_string_equal(error_code(f), "unavailable");
            assert_non_null(strstr(error_message(f), "scripts/bootstrap.sh"));
            assert_non_null(strstr(error_message(f), "SMPOST_SWAGGER_UI_DIR"));
            assert_int_equal(f->reply.retry_after, 0);
        }
        assert_int_equal(get(f, b, "/openapi.json"), 200); /* the document is built in */
    }
    sm_error err = {0};
    assert_int_equal(http_docs_check(&f->cmd.docs, &err), SM_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.message, gone));
}

static void test_docs_switched_off_answer_404_everywhere(void **state)
{
    fixture *f = *state;
    f->cmd.docs.enabled = false;
    f->query.docs.enabled = false;
    for (binary b = CMD; b <= QUERY; b++) {
        const char *paths[] = {"/openapi.json", "/swagger", "/swagger/", "/swagger/index.html"};
        for (size_t i = 0; i < COUNT(paths); i++) {
            assert_int_equal(get(f, b, paths[i]), 404);
            assert_string_equal(error_code(f), "not_found");
            assert_non_null(strstr(error_message(f), "SMPOST_SWAGGER"));
        }
    }
    sm_error err = {0};
    assert_int_equal(http_docs_check(&f->cmd.docs, &err), SM_OK);
    /* a zeroed app (as in the other route tests) is "off" too */
    cmd_app zero = {0};
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    http_request req = {.method = "GET", .path = "/openapi.json"};
    routes_handle(&zero, &req, &f->reply);
    assert_int_equal(f->reply.status, 404);
}

static void test_docs_routes_take_only_get_and_head(void **state)
{
    fixture *f = *state;
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    http_request req = {.method = "POST", .path = "/openapi.json"};
    routes_handle(&f->cmd, &req, &f->reply);
    assert_int_equal(f->reply.status, 405);
    assert_string_equal(f->reply.allow, "GET");
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    req.path = "/swagger/index.html";
    req.method = "DELETE";
    query_routes_handle(&f->query, &req, &f->reply);
    assert_int_equal(f->reply.status, 405);
    http_reply_free(&f->reply);
    memset(&f->reply, 0, sizeof f->reply);
    req.method = "HEAD";
    query_routes_handle(&f->query, &req, &f->reply);
    assert_int_equal(f->reply.status, 200);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type_follows_the_extension),
        cmocka_unit_test(test_file_names_refuse_traversal_hidden_files_and_odd_bytes),
        T(test_a_file_is_sent_whole_with_its_type_even_with_nul_bytes),
        T(test_nothing_outside_the_directory_is_ever_served),
        T(test_a_missing_directory_is_unavailable_not_a_crash),
        T(test_ui_dir_default_falls_back_to_the_installed_copy),
        T(test_openapi_json_is_the_binarys_own_document),
        T(test_swagger_without_slash_redirects_to_the_directory),
        T(test_swagger_serves_the_ui_with_its_own_initializer),
        T(test_swagger_routes_refuse_traversal),
        T(test_missing_ui_files_answer_503_with_how_to_install),
        T(test_docs_switched_off_answer_404_everywhere),
        T(test_docs_routes_take_only_get_and_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
