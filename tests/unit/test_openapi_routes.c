/* test_openapi_routes.c — docs/openapi.yaml and the two route tables agree:
 * every (method, path) that command-api (routes_list) or query-api
 * (query_routes_list) registers is documented with the same method and path
 * template, every operation documented is registered by one of them, and
 * each path's `servers` names the service(s) that serve it.
 *
 * There is no YAML library in the build, so the file is written in a
 * disciplined subset (see the comment at its top) that this scanner reads:
 *   paths:                      column 0
 *     /api/v1/NewPost:          a path: exactly 2 spaces, unquoted
 *       servers:                4 spaces: servers|parameters|summary|description
 *         - url: http://...     6 spaces under servers
 *       post:                   4 spaces: a lower-case method
 * Anything else at 0-4 spaces inside `paths:` is reported as a format error,
 * so a reformatted file fails loudly instead of silently matching nothing.
 *
 * The file is named by SMPOST_OPENAPI (CMake sets it to the source file). */
#include "query_routes.h"
#include "routes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COMMAND_SERVER "http://127.0.0.1:5001"
#define QUERY_SERVER "http://127.0.0.1:5002"

/* ---- what the binaries register ---------------------------------------- */

typedef struct reg_route {
    const char *binary; /* "command-api" / "query-api" */
    const char *server; /* its URL in the OpenAPI servers list */
    const char *method; /* upper case, as registered */
    const char *pattern;
} reg_route;

#define MAX_ROUTES 128

typedef struct reg_table {
    reg_route r[MAX_ROUTES];
    size_t n;
} reg_table;

static void collect_routes(reg_table *t)
{
    t->n = 0;
    const char *m, *p;
    size_t nc = routes_list(0, &m, &p);
    for (size_t i = 0; i < nc && t->n < MAX_ROUTES; i++) {
        routes_list(i, &m, &p);
        t->r[t->n++] = (reg_route){"command-api", COMMAND_SERVER, m, p};
    }
    size_t nq = query_routes_list(0, &m, &p);
    for (size_t i = 0; i < nq && t->n < MAX_ROUTES; i++) {
        query_routes_list(i, &m, &p);
        t->r[t->n++] = (reg_route){"query-api", QUERY_SERVER, m, p};
    }
    assert_true(nc + nq <= MAX_ROUTES);
    assert_true(nc > 0 && nq > 0);
}

/* ---- problems: every mismatch is collected, then all are reported ------- */

typedef struct problems {
    char text[16384];
    size_t len;
    int count;
} problems;

static void problem(problems *pr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(problems *pr, const char *fmt, ...)
{
    pr->count++;
    if (pr->len + 2 >= sizeof pr->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pr->text + pr->len, sizeof pr->text - pr->len - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    pr->len += (size_t)n;
    if (pr->len > sizeof pr->text - 2)
        pr->len = sizeof pr->text - 2;
    pr->text[pr->len++] = '\n';
    pr->text[pr->len] = '\0';
}

/* Prints every problem and fails the test if there is one. */
static void report(const problems *pr, const char *what, const char *file)
{
    if (pr->count == 0)
        return;
    print_error("%s", pr->text);
    fail_msg("%d %s (file: %s)", pr->count, what, file);
}

/* ---- the scanner --------------------------------------------------------- */

#define MAX_PATH_LEN 256
#define MAX_SERVERS 4

typedef struct oa_path {
    char path[MAX_PATH_LEN];
    int line;
    int nops;
    int nservers;
    char servers[MAX_SERVERS][96];
} oa_path;

typedef struct oa_op {
    size_t path; /* index into paths */
    char method[16]; /* lower case, as written */
    int line;
} oa_op;

typedef struct oa_doc {
    oa_path *paths;
    size_t npaths;
    oa_op *ops;
    size_t nops;
} oa_doc;

static const char *const methods[] = {"get",    "put",     "post",  "delete",
                                      "patch",  "head",    "options", "trace"};
static const char *const path_item_keys[] = {"servers", "parameters", "summary", "description"};

static bool in_list(const char *key, const char *const *list, size_t n, bool ignore_case)
{
    for (size_t i = 0; i < n; i++)
        if (ignore_case ? strcasecmp(key, list[i]) == 0 : strcmp(key, list[i]) == 0)
            return true;
    return false;
}

static void doc_free(oa_doc *d)
{
    free(d->paths);
    free(d->ops);
    memset(d, 0, sizeof *d);
}

static oa_path *add_path(oa_doc *d)
{
    oa_path *p = realloc(d->paths, (d->npaths + 1) * sizeof *p);
    assert_non_null(p);
    d->paths = p;
    memset(&p[d->npaths], 0, sizeof *p);
    return &p[d->npaths++];
}

static void add_op(oa_doc *d, const char *method, int line)
{
    oa_op *o = realloc(d->ops, (d->nops + 1) * sizeof *o);
    assert_non_null(o);
    d->ops = o;
    o = &o[d->nops++];
    memset(o, 0, sizeof *o);
    o->path = d->npaths - 1;
    snprintf(o->method, sizeof o->method, "%.15s", method);
    o->line = line;
    d->paths[d->npaths - 1].nops++;
}

/* Splits "key: value" (text starts at the key); returns false if there is
 * no ':' ending the key. value points past the colon and spaces. */
static bool split_key(const char *text, char *key, size_t cap, const char **value)
{
    const char *colon = strchr(text, ':');
    if (!colon || (size_t)(colon - text) >= cap || colon == text)
        return false;
    if (colon[1] != '\0' && colon[1] != ' ')
        return false; /* "a:b" is a scalar, not a key */
    memcpy(key, text, (size_t)(colon - text));
    key[colon - text] = '\0';
    *value = colon + 1;
    while (**value == ' ')
        (*value)++;
    return true;
}

/* Scans the `paths:` section of YAML text into d; format errors go to pr. */
static void scan_openapi(const char *text, oa_doc *d, problems *pr)
{
    memset(d, 0, sizeof *d);
    bool in_paths = false, seen_paths = false;
    char last4[32] = ""; /* the current 4-space key of the current path */
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        lineno++;
        if (len >= sizeof line)
            len = sizeof line - 1; /* long lines are deep content (descriptions) */
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol ? eol + 1 : p + strlen(p);
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\r'))
            line[--len] = '\0';

        size_t indent = strspn(line, " ");
        const char *body = line + indent;
        if (*body == '\0' || *body == '#')
            continue;
        if (*body == '\t') {
            if (in_paths)
                problem(pr, "line %d: a tab in the indentation (spaces only)", lineno);
            continue;
        }
        if (indent == 0) {
            if (in_paths) {
                in_paths = false; /* the next top-level key ends the section */
            } else if (strcmp(body, "paths:") == 0) {
                if (seen_paths)
                    problem(pr, "line %d: a second `paths:` key", lineno);
                in_paths = seen_paths = true;
            }
            continue;
        }
        if (!in_paths)
            continue;

        char key[MAX_PATH_LEN];
        const char *value;
        if (indent == 2) {
            if (body[0] != '/' || !split_key(body, key, sizeof key, &value) || *value ||
                strpbrk(key, " \"'#")) {
                problem(pr,
                        "line %d: expected a path key at 2 spaces (`  /api/v1/X:`, unquoted, "
                        "nothing after the colon), got `%s`",
                        lineno, line);
                continue;
            }
            for (size_t i = 0; i < d->npaths; i++)
                if (strcmp(d->paths[i].path, key) == 0)
                    problem(pr, "line %d: path %s is already documented at line %d", lineno, key,
                            d->paths[i].line);
            oa_path *np = add_path(d);
            snprintf(np->path, sizeof np->path, "%s", key);
            np->line = lineno;
            last4[0] = '\0';
        } else if (indent == 4) {
            if (d->npaths == 0 || !split_key(body, key, sizeof key, &value)) {
                problem(pr, "line %d: expected a method or path-item key at 4 spaces, got `%s`",
                        lineno, line);
                continue;
            }
            snprintf(last4, sizeof last4, "%.31s", key);
            if (in_list(key, methods, sizeof methods / sizeof methods[0], false)) {
                if (*value)
                    problem(pr, "line %d: write the %s operation in block style (`    %s:` "
                                "alone on its line)",
                            lineno, key, key);
                for (size_t i = 0; i < d->nops; i++)
                    if (d->ops[i].path == d->npaths - 1 && strcmp(d->ops[i].method, key) == 0)
                        problem(pr, "line %d: `%s` appears twice under %s", lineno, key,
                                d->paths[d->npaths - 1].path);
                add_op(d, key, lineno);
            } else if (in_list(key, methods, sizeof methods / sizeof methods[0], true)) {
                problem(pr, "line %d: method `%s` under %s must be lower-case", lineno, key,
                        d->paths[d->npaths - 1].path);
            } else if (!in_list(key, path_item_keys,
                                sizeof path_item_keys / sizeof path_item_keys[0], false)) {
                problem(pr,
                        "line %d: unexpected key `%s` at 4 spaces under %s (allowed: a lower-case "
                        "method, servers, parameters, summary, description)",
                        lineno, key, d->paths[d->npaths - 1].path);
            }
        } else if (indent == 6 && strcmp(last4, "servers") == 0) {
            if (strncmp(body, "- ", 2) != 0)
                continue; /* a server's description or variables */
            if (strncmp(body, "- url:", 6) != 0) {
                problem(pr, "line %d: write each server as `      - url: <url>`", lineno);
                continue;
            }
            const char *url = body + 6;
            while (*url == ' ')
                url++;
            oa_path *cp = &d->paths[d->npaths - 1];
            if (cp->nservers < MAX_SERVERS)
                snprintf(cp->servers[cp->nservers++], sizeof cp->servers[0], "%.95s", url);
        } else if (indent < 6 && indent != 2 && indent != 4) {
            problem(pr, "line %d: indentation of %zu spaces inside `paths:` (use 2, 4, 6...)",
                    lineno, indent);
        }
    }
    if (!seen_paths)
        problem(pr, "no top-level `paths:` key");
    else if (d->npaths == 0)
        problem(pr, "`paths:` holds no path at 2 spaces");
    for (size_t i = 0; i < d->npaths; i++)
        if (d->paths[i].nops == 0)
            problem(pr, "line %d: path %s has no operation at 4 spaces", d->paths[i].line,
                    d->paths[i].path);
}

/* ---- the comparisons ------------------------------------------------------ */

static const oa_path *find_path(const oa_doc *d, const char *pattern)
{
    for (size_t i = 0; i < d->npaths; i++)
        if (strcmp(d->paths[i].path, pattern) == 0)
            return &d->paths[i];
    return NULL;
}

static bool has_op(const oa_doc *d, const oa_path *p, const char *method)
{
    for (size_t i = 0; i < d->nops; i++)
        if (&d->paths[d->ops[i].path] == p && strcasecmp(d->ops[i].method, method) == 0)
            return true;
    return false;
}

static bool path_lists_server(const oa_path *p, const char *url)
{
    for (int i = 0; i < p->nservers; i++)
        if (strcmp(p->servers[i], url) == 0)
            return true;
    return false;
}

static void lower(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    out[i] = '\0';
}

/* Registered -> documented. */
static void check_registered_are_documented(const oa_doc *d, const reg_table *t, problems *pr)
{
    for (size_t i = 0; i < t->n; i++) {
        const reg_route *r = &t->r[i];
        char m[16];
        lower(r->method, m, sizeof m);
        const oa_path *p = find_path(d, r->pattern);
        if (!p)
            problem(pr, "MISSING IN OPENAPI: %s registers %s %s, but docs/openapi.yaml has no "
                        "path `  %s:`",
                    r->binary, r->method, r->pattern, r->pattern);
        else if (!has_op(d, p, r->method))
            problem(pr, "MISSING IN OPENAPI: %s registers %s %s, but docs/openapi.yaml has no "
                        "`    %s:` under `  %s:` (line %d)",
                    r->binary, r->method, r->pattern, m, r->pattern, p->line);
    }
}

/* Documented -> registered. */
static void check_documented_are_registered(const oa_doc *d, const reg_table *t, problems *pr)
{
    for (size_t i = 0; i < d->nops; i++) {
        const oa_op *o = &d->ops[i];
        const char *path = d->paths[o->path].path;
        bool found = false;
        for (size_t j = 0; j < t->n && !found; j++)
            found = strcmp(t->r[j].pattern, path) == 0 && strcasecmp(t->r[j].method, o->method) == 0;
        if (!found) {
            char up[16];
            size_t k = 0;
            for (; o->method[k] && k + 1 < sizeof up; k++)
                up[k] = (char)(o->method[k] >= 'a' && o->method[k] <= 'z' ? o->method[k] - 32
                                                                          : o->method[k]);
            up[k] = '\0';
            problem(pr, "NOT REGISTERED: docs/openapi.yaml documents `%s` under %s (line %d), "
                        "but neither command-api nor query-api registers %s %s",
                    o->method, path, o->line, up, path);
        }
    }
}

/* Each documented path lists exactly the servers of the binaries serving it. */
static void check_servers(const oa_doc *d, const reg_table *t, problems *pr)
{
    const char *const urls[] = {COMMAND_SERVER, QUERY_SERVER};
    const char *const names[] = {"command-api", "query-api"};
    for (size_t i = 0; i < d->npaths; i++) {
        const oa_path *p = &d->paths[i];
        if (p->nservers == 0) {
            problem(pr, "NO SERVERS: path %s (line %d) has no path-level `servers:` list naming "
                        "its service",
                    p->path, p->line);
            continue;
        }
        for (int s = 0; s < 2; s++) {
            bool served = false;
            for (size_t j = 0; j < t->n && !served; j++)
                served = strcmp(t->r[j].pattern, p->path) == 0 && strcmp(t->r[j].server, urls[s]) == 0;
            bool listed = path_lists_server(p, urls[s]);
            if (served && !listed)
                problem(pr, "WRONG SERVERS: %s serves %s, but its servers (line %d) do not list %s",
                        names[s], p->path, p->line, urls[s]);
            else if (listed && !served)
                problem(pr, "WRONG SERVERS: path %s (line %d) lists %s, but %s does not register "
                            "it",
                        p->path, p->line, urls[s], names[s]);
        }
        for (int k = 0; k < p->nservers; k++)
            if (strcmp(p->servers[k], urls[0]) != 0 && strcmp(p->servers[k], urls[1]) != 0)
                problem(pr, "WRONG SERVERS: path %s (line %d) lists unknown server %s", p->path,
                        p->line, p->servers[k]);
    }
}

/* ---- fixture: the file, scanned once per test ----------------------------- */

typedef struct fixture {
    const char *file;
    char *text;
    oa_doc doc;
    problems format; /* scanner errors */
    reg_table routes;
} fixture;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->file = getenv("SMPOST_OPENAPI");
    if (!f->file || !*f->file) {
        print_error("SMPOST_OPENAPI is not set: it must name docs/openapi.yaml "
                    "(tests/CMakeLists.txt sets it)\n");
        free(f);
        return -1;
    }
    f->text = read_file(f->file);
    if (!f->text) {
        print_error("cannot read SMPOST_OPENAPI=%s\n", f->file);
        free(f);
        return -1;
    }
    scan_openapi(f->text, &f->doc, &f->format);
    collect_routes(&f->routes);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    doc_free(&f->doc);
    free(f->text);
    free(f);
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_openapi_file_follows_the_scanned_format(void **state)
{
    fixture *f = *state;
    report(&f->format, "format error(s) in the paths section", f->file);
    assert_true(f->doc.npaths > 0);
    assert_true(f->doc.nops >= f->doc.npaths);
}

static void test_every_registered_route_is_documented(void **state)
{
    fixture *f = *state;
    problems pr = {0};
    check_registered_are_documented(&f->doc, &f->routes, &pr);
    report(&pr, "registered route(s) missing from the OpenAPI file", f->file);
}

static void test_every_documented_operation_is_registered(void **state)
{
    fixture *f = *state;
    problems pr = {0};
    check_documented_are_registered(&f->doc, &f->routes, &pr);
    report(&pr, "documented operation(s) that no binary registers", f->file);
}

static void test_every_path_names_the_service_that_serves_it(void **state)
{
    fixture *f = *state;
    problems pr = {0};
    check_servers(&f->doc, &f->routes, &pr);
    report(&pr, "path(s) pointing at the wrong service", f->file);
}

/* Runs every check on a text; returns the problems. */
static void check_text(const char *text, const reg_table *t, problems *pr)
{
    oa_doc d;
    scan_openapi(text, &d, pr);
    check_registered_are_documented(&d, t, pr);
    check_documented_are_registered(&d, t, pr);
    check_servers(&d, t, pr);
    doc_free(&d);
}

/* Replaces the first occurrence of `from` after `anchor` in text (both must
 * be there). */
static char *mutate(const char *text, const char *anchor, const char *from, const char *to)
{
    const char *a = strstr(text, anchor);
    assert_non_null(a);
    const char *at = strstr(a, from);
    assert_non_null(at);
    size_t head = (size_t)(at - text), flen = strlen(from), tlen = strlen(to);
    char *out = malloc(strlen(text) - flen + tlen + 1);
    assert_non_null(out);
    memcpy(out, text, head);
    memcpy(out + head, to, tlen);
    strcpy(out + head + tlen, at + flen);
    return out;
}

/* A minimal document in the scanned format that matches t exactly: one
 * path per pattern, its servers, its methods. */
static char *synthetic_doc(const reg_table *t)
{
    size_t cap = 256 + t->n * 3 * (MAX_PATH_LEN + 64), len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    len += (size_t)snprintf(out + len, cap - len, "openapi: 3.1.0\npaths:\n");
    for (size_t i = 0; i < t->n; i++) {
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = strcmp(t->r[j].pattern, t->r[i].pattern) != 0;
        if (!first)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "  %s:\n    servers:\n", t->r[i].pattern);
        for (size_t j = i; j < t->n; j++)
            if (strcmp(t->r[j].pattern, t->r[i].pattern) == 0 &&
                (j == i || strcmp(t->r[j].server, t->r[i].server) != 0))
                len += (size_t)snprintf(out + len, cap - len, "      - url: %s\n", t->r[j].server);
        for (size_t j = i; j < t->n; j++) {
            bool dup = false;
            for (size_t k = i; k < j && !dup; k++)
                dup = strcmp(t->r[k].pattern, t->r[j].pattern) == 0 &&
                      strcmp(t->r[k].method, t->r[j].method) == 0;
            if (dup || strcmp(t->r[j].pattern, t->r[i].pattern) != 0)
                continue;
            char m[16];
            lower(t->r[j].method, m, sizeof m);
            len += (size_t)snprintf(out + len, cap - len, "    %s:\n      responses: {}\n", m);
        }
    }
    len += (size_t)snprintf(out + len, cap - len, "components: {}\n");
    assert_true(len < cap);
    return out;
}

/* The first route of a binary whose pattern only that binary serves. */
static const reg_route *only_served_by(const reg_table *t, const char *binary)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->r[i].binary, binary) != 0)
            continue;
        bool shared = false;
        for (size_t j = 0; j < t->n && !shared; j++)
            shared = strcmp(t->r[j].binary, binary) != 0 &&
                     strcmp(t->r[j].pattern, t->r[i].pattern) == 0;
        if (!shared)
            return &t->r[i];
    }
    fail_msg("%s serves no route of its own", binary);
    return NULL;
}

/* The checks themselves can fail: each kind of drift between a file and the
 * route tables is caught and named (on a generated document, so this test
 * does not depend on the state of docs/openapi.yaml). */
static void test_checks_catch_drift(void **state)
{
    fixture *f = *state;
    const reg_table *rt = &f->routes;
    char *base = synthetic_doc(rt);
    problems pr = {0};
    check_text(base, rt, &pr);
    if (pr.count)
        print_error("%s", pr.text);
    assert_int_equal(pr.count, 0);

    const reg_route *c = only_served_by(rt, "command-api");
    const reg_route *q = only_served_by(rt, "query-api");
    char anchor[MAX_PATH_LEN + 8], from[32], to[32], want[2 * MAX_PATH_LEN];

    /* a method changed in the file: missing one way, unregistered the other */
    snprintf(anchor, sizeof anchor, "\n  %s:\n", c->pattern);
    char m[16];
    lower(c->method, m, sizeof m);
    snprintf(from, sizeof from, "\n    %s:\n", m);
    char *t = mutate(base, anchor, from, "\n    trace:\n");
    memset(&pr, 0, sizeof pr);
    check_text(t, rt, &pr);
    assert_int_equal(pr.count, 2);
    snprintf(want, sizeof want, "MISSING IN OPENAPI: command-api registers %s %s", c->method,
             c->pattern);
    assert_non_null(strstr(pr.text, want));
    snprintf(want, sizeof want, "NOT REGISTERED: docs/openapi.yaml documents `trace` under %s",
             c->pattern);
    assert_non_null(strstr(pr.text, want));
    free(t);

    /* a path dropped from the file (renamed to one nobody serves) */
    snprintf(anchor, sizeof anchor, "\n  %s:\n", q->pattern);
    t = mutate(base, anchor, anchor, "\n  /removed-for-the-test:\n");
    memset(&pr, 0, sizeof pr);
    check_text(t, rt, &pr);
    snprintf(want, sizeof want, "MISSING IN OPENAPI: query-api registers %s %s, but "
                                "docs/openapi.yaml has no path",
             q->method, q->pattern);
    assert_non_null(strstr(pr.text, want));
    assert_non_null(strstr(pr.text, "NOT REGISTERED: docs/openapi.yaml documents `get` under "
                                    "/removed-for-the-test"));
    free(t);

    /* a path pointed at the wrong service */
    t = mutate(base, anchor, QUERY_SERVER, COMMAND_SERVER);
    memset(&pr, 0, sizeof pr);
    check_text(t, rt, &pr);
    assert_int_equal(pr.count, 2);
    snprintf(want, sizeof want, "WRONG SERVERS: query-api serves %s", q->pattern);
    assert_non_null(strstr(pr.text, want));
    free(t);

    /* a path without servers */
    snprintf(to, sizeof to, "\n    summary: x\n");
    t = mutate(base, anchor, "\n    servers:\n", to);
    memset(&pr, 0, sizeof pr);
    check_text(t, rt, &pr);
    assert_int_equal(pr.count, 1);
    assert_non_null(strstr(pr.text, "NO SERVERS"));
    free(t);

    /* format errors: an upper-case method, a 3-space path, a flow mapping */
    snprintf(anchor, sizeof anchor, "\n  %s:\n", c->pattern);
    snprintf(to, sizeof to, "\n    %s:\n", c->method);
    snprintf(from, sizeof from, "\n    %s:\n", m);
    t = mutate(base, anchor, from, to);
    memset(&pr, 0, sizeof pr);
    check_text(t, rt, &pr);
    snprintf(want, sizeof want, "method `%s` under %s must be lower-case", c->method, c->pattern);
    assert_non_null(strstr(pr.text, want));
    free(t);
    snprintf(to, sizeof to, "\n   /x:\n");
    t = mutate(base, "\npaths:\n", anchor, to);
    memset(&pr, 0, sizeof pr);
    check_text(t, rt, &pr);
    assert_non_null(strstr(pr.text, "indentation of 3 spaces"));
    free(t);
    t = mutate(base, "\npaths:\n", "\npaths:\n", "\npaths:\n  /x: {get: {}}\n");
    memset(&pr, 0, sizeof pr);
    check_text(t, rt, &pr);
    assert_non_null(strstr(pr.text, "expected a path key at 2 spaces"));
    free(t);

    /* a route registered but not documented */
    reg_table more = *rt;
    assert_true(more.n < MAX_ROUTES);
    more.r[more.n++] =
        (reg_route){"command-api", COMMAND_SERVER, "GET", "/api/v1/PostHistory/{postId}"};
    memset(&pr, 0, sizeof pr);
    check_text(base, &more, &pr);
    assert_int_equal(pr.count, 1);
    assert_non_null(strstr(pr.text, "MISSING IN OPENAPI: command-api registers GET "
                                    "/api/v1/PostHistory/{postId}"));
    free(base);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_openapi_file_follows_the_scanned_format),
        T(test_every_registered_route_is_documented),
        T(test_every_documented_operation_is_registered),
        T(test_every_path_names_the_service_that_serves_it),
        T(test_checks_catch_drift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
