/* SPDX-License-Identifier: Apache-2.0 */
/* http_cors.c — see http_cors.h.
 *
 * Origins are compared byte for byte with the Origin header. Browsers send
 * the serialized origin (lowercase scheme and host, no default port, no
 * path), so the setting is held to that form at start: an entry that could
 * never match ("https://App.example.com", "https://a.example:443",
 * "https://a.example/") is a mistake the operator hears about at once
 * rather than a browser app that silently cannot call the API. */
#include "http_cors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_cors {
    bool any;   /* "*" */
    size_t n;
    char origins[HTTP_CORS_ORIGINS_MAX][HTTP_CORS_ORIGIN_MAX + 1];
};

/* The request headers routes read (http_serve): a read route takes the
 * token and a conditional request, a write route a JSON body and
 * If-Match. X-Request-Id and traceparent are taken everywhere. */
static const char read_headers[] = "Authorization, If-None-Match, X-Request-Id, traceparent";
static const char write_headers[] =
    "Authorization, Content-Type, If-Match, X-Request-Id, traceparent";
static const char all_headers[] =
    "Authorization, Content-Type, If-Match, If-None-Match, X-Request-Id, traceparent";

/* True when s[0..len) is scheme://host[:port] in the serialized form a
 * browser sends (see the top of this file). */
static bool origin_well_formed(const char *s, size_t len)
{
    size_t scheme_len = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    if (!scheme_len || len <= scheme_len)
        return false;
    const char *p = s + scheme_len, *end = s + len;
    if (*p == '[') { /* IPv6 literal */
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || close == p + 1)
            return false;
        for (const char *c = p + 1; c < close; c++)
            if (!*c || !strchr("0123456789abcdef:.", *c))
                return false;
        p = close + 1;
    } else {
        const char *h = p;
        while (p < end && *p && strchr("abcdefghijklmnopqrstuvwxyz0123456789.-", *p))
            p++;
        if (p == h || h[0] == '.' || h[0] == '-')
            return false;
    }
    if (p == end)
        return true;
    if (*p != ':' || p + 1 == end || p[1] == '0' || end - (p + 1) > 5)
        return false;
    long port = 0;
    for (const char *c = p + 1; c < end; c++) {
        if (*c < '0' || *c > '9')
            return false;
        port = port * 10 + (*c - '0');
    }
    bool is_default = (scheme_len == 8 && port == 443) || (scheme_len == 7 && port == 80);
    return port <= 65535 && !is_default;
}

sm_status http_cors_parse(const char *name, const char *value, http_cors **out, sm_error *err)
{
    *out = NULL;
    if (!value || !*value)
        return SM_OK;
    http_cors *c = calloc(1, sizeof *c);
    if (!c)
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    const char *p = value;
    for (;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && p[trimmed - 1] == ' ')
            trimmed--;
        const char *why = NULL;
        char too_long[48];
        if (trimmed == 1 && *p == '*') {
            c->any = true;
        } else if (trimmed == 0) {
            why = "is empty";
        } else if (trimmed > HTTP_CORS_ORIGIN_MAX) {
            snprintf(too_long, sizeof too_long, "is longer than %d characters",
                     HTTP_CORS_ORIGIN_MAX);
            why = too_long;
        } else if (!origin_well_formed(p, trimmed)) {
            why = "is not an origin: scheme://host[:port] as a browser sends it (http or https, "
                  "lowercase, no default port, no path or trailing slash)";
        } else if (c->n == HTTP_CORS_ORIGINS_MAX) {
            snprintf(too_long, sizeof too_long, "is one origin too many (at most %d)",
                     HTTP_CORS_ORIGINS_MAX);
            why = too_long;
        } else {
            memcpy(c->origins[c->n++], p, trimmed);
        }
        if (!why && c->any && c->n > 0)
            why = "is mixed with '*' (give either '*' or a list of origins)";
        if (why) {
            sm_fail(err, SM_ERR_INVALID, "%s: '%.*s' %s", name,
                    (int)(trimmed < 80 ? trimmed : 80), p, why);
            free(c);
            return SM_ERR_INVALID;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    *out = c;
    return SM_OK;
}

void http_cors_free(http_cors *c) { free(c); }

bool http_cors_allows(const http_cors *c, const char *origin)
{
    if (!c || !origin)
        return false;
    if (c->any)
        return true;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->origins[i], origin) == 0)
            return true;
    return false;
}

bool http_cors_is_preflight(const http_cors *c, const char *method, const char *origin,
                            const char *request_method)
{
    return c && origin && request_method && strcmp(method, "OPTIONS") == 0;
}

/* True when method is one of the comma-separated methods in list. */
static bool method_listed(const char *list, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ", ");
        if (len == n && n > 0 && strncmp(p, method, n) == 0)
            return true;
        p += len;
    }
    return false;
}

/* Appends one header line to reply->cors_headers. false, and nothing
 * appended, if it does not fit (the caller then drops every CORS line:
 * half a policy is worse than none). */
static bool add_line(http_reply *reply, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool add_line(http_reply *reply, const char *fmt, ...)
{
    size_t used = strlen(reply->cors_headers);
    size_t room = sizeof reply->cors_headers - used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(reply->cors_headers + used, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        reply->cors_headers[used] = '\0';
        return false;
    }
    return true;
}

/* The preflight's answer for an allowed origin asking for methods[0],
 * one of the route's methods. */
static bool allow_preflight(const http_cors *c, const char *origin, const char *methods,
                            http_reply *reply)
{
    bool reads = method_listed(methods, "GET");
    bool writes = method_listed(methods, "POST") || method_listed(methods, "PUT") ||
                  method_listed(methods, "PATCH") || method_listed(methods, "DELETE");
    json_decref(reply->body);
    reply->body = NULL;
    reply->status = 204;
    reply->allow = NULL;
    reply->retry_after = 0;
    return add_line(reply, "Access-Control-Allow-Origin: %s\r\n", c->any ? "*" : origin) &&
           add_line(reply, "Access-Control-Allow-Methods: %s\r\n", methods) &&
           add_line(reply, "Access-Control-Allow-Headers: %s\r\n",
                    writes && reads ? all_headers : writes ? write_headers : read_headers) &&
           add_line(reply, "Access-Control-Max-Age: %d\r\n", HTTP_CORS_MAX_AGE_S) &&
           add_line(reply, "Vary: Origin\r\n");
}

/* A refused preflight: 403, and no allow header, so the browser does not
 * send the request it asked about. */
static bool refuse_preflight(bool origin_allowed, const char *request_method,
                             const char *methods, http_reply *reply)
{
    char msg[200];
    if (origin_allowed)
        snprintf(msg, sizeof msg, "CORS: this route does not take %.10s; it takes %.40s.",
                 request_method, methods);
    else
        snprintf(msg, sizeof msg, "CORS: this origin is not allowed (SMPOST_CORS_ORIGINS).");
    http_reply_error(reply, SM_ERR_FORBIDDEN, msg);
    reply->allow = NULL;
    return add_line(reply, "Vary: Origin\r\n");
}

void http_cors_apply(const http_cors *c, const char *method, const char *origin,
                     const char *request_method, http_reply *reply)
{
    if (!c)
        return;
    reply->cors_headers[0] = '\0';
    bool allowed = http_cors_allows(c, origin);
    bool ok;
    if (http_cors_is_preflight(c, method, origin, request_method) && reply->status == 405 &&
        reply->allow) {
        /* the route's methods, as its 405 names them; HEAD goes with GET */
        char methods[80];
        snprintf(methods, sizeof methods, "%s%s", reply->allow,
                 method_listed(reply->allow, "GET") && !method_listed(reply->allow, "HEAD")
                     ? ", HEAD"
                     : "");
        ok = allowed && method_listed(methods, request_method)
                 ? allow_preflight(c, origin, methods, reply)
                 : refuse_preflight(allowed, request_method, methods, reply);
    } else if (allowed) {
        ok = add_line(reply, "Access-Control-Allow-Origin: %s\r\n", c->any ? "*" : origin) &&
             add_line(reply, "Access-Control-Expose-Headers: %s\r\n", HTTP_CORS_EXPOSED) &&
             add_line(reply, "Vary: Origin\r\n");
    } else {
        ok = add_line(reply, "Vary: Origin\r\n");
    }
    if (!ok)
        reply->cors_headers[0] = '\0';
}
