/* SPDX-License-Identifier: Apache-2.0 */
/* test_api_docs.c — /openapi.json and /swagger/ of the real binaries over
 * HTTP, so civetweb's own URL decoding and normalisation are part of what
 * is tested: content types, the redirect, exact bytes of a binary file, and
 * path traversal in every spelling (encoded dots and slashes, backslashes,
 * NUL bytes, a symbolic link) never reaching a file outside Swagger UI's
 * directory. Swagger UI's directory holds stand-in files made here; the
 * real package is exercised by the browser test (tests/browser).
 * Binaries: SMPOST_COMMAND_API_BIN, SMPOST_QUERY_API_BIN. */
#include "http_client.h"
#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "top-secret-content"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const unsigned char png_bytes[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
                                          0x00, 0x00, 0x00, 0x0d, 'I', 'H', 'D', 'R'};

static char dir[256], ui[300];
static test_proc cmd, query;

static void write_file(const char *d, const char *name, const void *data, size_t len)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", d, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *d, const char *name, const char *text)
{
    write_file(d, name, text, strlen(text));
}

/* Starts bin (command-api or query-api, by its data flag) on a free port
 * with the extra flags (NULL-terminated, at most 4). */
static void start(test_proc *p, const char *bin_env, const char *name, const char *const *extra)
{
    const char *bin = getenv(bin_env);
    if (!bin || !*bin)
        fail_msg("%s is not set (tests/CMakeLists.txt sets it)", bin_env);
    p->port = test_free_port();
    char port[16], data[400], log[400];
    snprintf(port, sizeof port, "%d", p->port);
    bool is_cmd = strcmp(name, "command-api") == 0;
    snprintf(data, sizeof data, "sqlite:%s/%s-%d.db", dir, name, p->port);
    snprintf(log, sizeof log, "%s/%s-%d.log", dir, name, p->port);
    char *argv[16] = {(char *)bin, "--port", port, is_cmd ? "--event-store" : "--read-model",
                      data, "--kafka-bootstrap", "none"};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && i < 4; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    assert_true(test_proc_start(p, argv, log));
    if (!test_proc_wait_http(p->port, 10000))
        fail_msg("%s did not come up on port %d; see %s", name, p->port, log);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-apidocs", dir, sizeof dir))
        return -1;
    snprintf(ui, sizeof ui, "%s/ui", dir);
    if (mkdir(ui, 0755) != 0)
        return -1;
    write_text(ui, "index.html", "<!DOCTYPE html><title>stand-in Swagger UI</title>");
    write_text(ui, "swagger-ui.css", "body{}");
    write_text(ui, "swagger-ui-bundle.js", "var SwaggerUIBundle;");
    write_text(ui, "swagger-ui-standalone-preset.js", "var SwaggerUIStandalonePreset;");
    write_file(ui, "favicon-32x32.png", png_bytes, sizeof png_bytes);
    write_text(ui, ".hidden.js", SECRET);
    write_text(dir, "secret.js", SECRET);
    char target[400], link[400];
    snprintf(target, sizeof target, "%s/secret.js", dir);
    snprintf(link, sizeof link, "%s/escape.js", ui);
    if (symlink(target, link) != 0)
        return -1;
    const char *const flags[] = {"--swagger-ui-dir", ui, "--log-level", "warn", NULL};
    start(&cmd, "SMPOST_COMMAND_API_BIN", "command-api", flags);
    start(&query, "SMPOST_QUERY_API_BIN", "query-api", flags);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (cmd.pid > 0)
        test_proc_stop(&cmd, SIGTERM, 5000);
    if (query.pid > 0)
        test_proc_stop(&query, SIGTERM, 5000);
    test_rm_rf(dir);
    return 0;
}

static http_resp get(int port, const char *path)
{
    http_resp r;
    if (http_call(port, "GET", path, "", NULL, 0, 10000, &r) != 0)
        fail_msg("GET %s on port %d: no reply", path, port);
    return r;
}

static void assert_header(const http_resp *r, const char *name, const char *want)
{
    char buf[160];
    const char *got = http_resp_header(r, name, buf, sizeof buf);
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s: got '%s', want '%s'", name, got ? got : "(none)", want);
}

static void test_each_binary_serves_its_own_openapi_document(void **state)
{
    (void)state;
    const struct {
        test_proc *p;
        const char *own, *other;
    } cases[] = {{&cmd, "/api/v1/NewPost", "/api/v1/PostLookup"},
                 {&query, "/api/v1/PostLookup", "/api/v1/NewPost"}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        http_resp r = get(cases[i].p->port, "/openapi.json");
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "application/json; charset=utf-8");
        assert_non_null(r.json);
        json_t *paths = json_object_get(r.json, "paths");
        assert_non_null(json_object_get(paths, cases[i].own));
        assert_null(json_object_get(paths, cases[i].other));
        assert_non_null(json_object_get(paths, "/openapi.json"));
        const char *url = json_string_value(
            json_object_get(json_array_get(json_object_get(r.json, "servers"), 0), "url"));
        assert_non_null(url);
        assert_string_equal(url, "/");
        http_resp_free(&r);
    }
}

static void test_swagger_ui_is_served_with_the_right_types(void **state)
{
    (void)state;
    const int ports[] = {cmd.port, query.port};
    for (size_t i = 0; i < COUNT(ports); i++) {
        http_resp r = get(ports[i], "/swagger");
        assert_int_equal(r.status, 301);
        assert_header(&r, "Location", "swagger/");
        http_resp_free(&r);
        r = get(ports[i], "/swagger/");
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "text/html; charset=utf-8");
        assert_non_null(strstr(r.body, "stand-in Swagger UI"));
        http_resp_free(&r);
        r = get(ports[i], "/swagger/swagger-ui.css");
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "text/css; charset=utf-8");
        assert_header(&r, "X-Content-Type-Options", "nosniff");
        http_resp_free(&r);
        r = get(ports[i], "/swagger/swagger-initializer.js");
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "text/javascript; charset=utf-8");
        assert_non_null(strstr(r.body, "\"/openapi.json\""));
        http_resp_free(&r);
        r = get(ports[i], "/swagger/favicon-32x32.png");
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Type", "image/png");
        assert_header(&r, "Content-Length", "16");
        assert_int_equal(r.body_len, sizeof png_bytes);
        assert_memory_equal(r.body, png_bytes, sizeof png_bytes);
        http_resp_free(&r);
    }
}

/* Every spelling of "a file outside the directory": the reply is an error
 * and never the secret's (or /etc/passwd's) content. */
static void test_path_traversal_never_reaches_another_file(void **state)
{
    (void)state;
    const char *paths[] = {
        "/swagger/../secret.js",          "/swagger/..%2fsecret.js",
        "/swagger/%2e%2e/secret.js",      "/swagger/%2e%2e%2fsecret.js",
        "/swagger/%2E%2E%2Fsecret.js",    "/swagger/....//secret.js",
        "/swagger/%252e%252e/secret.js",  "/swagger/escape.js",
        "/swagger/.hidden.js",            "/swagger/%2ehidden.js",
        "/swagger/..\\secret.js",         "/swagger/%5c..%5csecret.js",
        "/swagger/ui/../../secret.js",    "/swagger/index.html/../../secret.js",
        "/swagger/%00../secret.js",       "/swagger/secret.js%00.css",
        "//swagger/../secret.js",         "/swagger/../../../../../../etc/passwd",
        "/swagger/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/swagger/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    };
    const int ports[] = {cmd.port, query.port};
    for (size_t i = 0; i < COUNT(ports); i++)
        for (size_t k = 0; k < COUNT(paths); k++) {
            http_resp r;
            if (http_call(ports[i], "GET", paths[k], "", NULL, 0, 10000, &r) != 0)
                continue; /* refused at the socket: nothing leaked either */
            if (r.status < 400 || strstr(r.body, SECRET) || strstr(r.body, "root:"))
                fail_msg("GET %s on port %d: status %d, body %.80s", paths[k], ports[i],
                         r.status, r.body);
            http_resp_free(&r);
        }
}

static void test_switched_off_or_not_installed(void **state)
{
    (void)state;
    test_proc off = {0}, missing = {0};
    const char *const off_flags[] = {"--swagger", "off", "--swagger-ui-dir", ui, NULL};
    start(&off, "SMPOST_COMMAND_API_BIN", "command-api", off_flags);
    const char *const missing_flags[] = {"--swagger-ui-dir", "/nonexistent/swagger-ui", NULL};
    start(&missing, "SMPOST_QUERY_API_BIN", "query-api", missing_flags);

    const char *paths[] = {"/openapi.json", "/swagger/", "/swagger/swagger-ui.css"};
    for (size_t k = 0; k < COUNT(paths); k++) {
        http_resp r = get(off.port, paths[k]);
        assert_int_equal(r.status, 404);
        assert_non_null(strstr(r.body, "SMPOST_SWAGGER"));
        http_resp_free(&r);
    }
    http_resp r = get(missing.port, "/swagger/");
    assert_int_equal(r.status, 503);
    assert_string_equal(http_resp_str(&r, "error"), "unavailable");
    assert_non_null(strstr(http_resp_str(&r, "message"), "/nonexistent/swagger-ui"));
    assert_non_null(strstr(http_resp_str(&r, "message"), "scripts/bootstrap.sh"));
    http_resp_free(&r);
    r = get(missing.port, "/openapi.json");
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    r = get(missing.port, "/health");
    assert_int_equal(r.status, 200);
    http_resp_free(&r);

    assert_int_equal(test_proc_stop(&off, SIGTERM, 5000), 0);
    assert_int_equal(test_proc_stop(&missing, SIGTERM, 5000), 0);
    /* the start-up warning names the problem */
    char log[400], line[1024];
    snprintf(log, sizeof log, "%s/query-api-%d.log", dir, missing.port);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    bool warned = false;
    while (!warned && fgets(line, sizeof line, f))
        warned = strstr(line, "event=swagger_ui_missing") != NULL;
    fclose(f);
    assert_true(warned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_binary_serves_its_own_openapi_document),
        cmocka_unit_test(test_swagger_ui_is_served_with_the_right_types),
        cmocka_unit_test(test_path_traversal_never_reaches_another_file),
        cmocka_unit_test(test_switched_off_or_not_installed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
