/* SPDX-License-Identifier: Apache-2.0 */
/* http_cors.h — Cross-Origin Resource Sharing for browser apps served from
 * another origin (SMPOST_CORS_ORIGINS; docs/api.md, "CORS").
 *
 * Off unless configured: with no policy (NULL) nothing here adds a header
 * or changes a reply, and OPTIONS stays 405 as for any method a route does
 * not take.
 *
 * On, the policy decides per request from three request headers (Origin,
 * Access-Control-Request-Method, the method) and the reply the service has
 * already produced, so it covers every answer that goes through http_serve:
 * the routes' 2xx/4xx/5xx, and the errors made before routing (400 path,
 * 408, 413, 503 while draining). civetweb's own errors (a request line it
 * cannot parse) never reach it and carry no CORS header at all.
 *
 * Preflights (OPTIONS with Origin and Access-Control-Request-Method) need
 * the methods of the route the path names. They come from the route table
 * itself, through the answer it gives to OPTIONS: a path some route serves
 * is 405 with Allow = that route's methods, any other path 404. So a
 * preflight is routed like every request (case-insensitive paths, the
 * admin listener's placement), and this module never keeps a second list
 * of routes.
 *
 * Thread-safety: a policy is immutable after http_cors_parse, shared by
 * every worker thread. */
#ifndef HTTP_CORS_H
#define HTTP_CORS_H

#include "http_util.h"
#include "sm_error.h"

#include <stdbool.h>

typedef struct http_cors http_cors;

#define HTTP_CORS_ORIGIN_MAX 200  /* longest origin accepted in the setting */
#define HTTP_CORS_ORIGINS_MAX 32  /* most origins in the setting */
#define HTTP_CORS_MAX_AGE_S 600   /* Access-Control-Max-Age of a preflight */

/* Response headers a script may read cross-origin (everything the services
 * send beyond the CORS-safelisted ones). */
#define HTTP_CORS_EXPOSED                                                                   \
    "ETag, Location, Retry-After, WWW-Authenticate, X-Request-Id, X-Read-Model-Version, "   \
    "X-Read-Model-Stale, traceparent"

/* Parses the setting named name (for messages): NULL or "" -> *out = NULL,
 * CORS off; "*" -> any origin; else a comma-separated list of exact
 * origins, spaces around commas ignored. Each origin is
 * scheme://host[:port] exactly as a browser sends it in Origin: scheme http
 * or https, host lowercase ([a-z0-9.-] or a bracketed IPv6 address), port
 * 1-65535 and not the scheme's default, nothing after it (no path, no
 * trailing slash). Anything else is SM_ERR_INVALID with one line naming
 * name and the offending entry; nothing is allocated then. The caller owns
 * *out (http_cors_free). */
sm_status http_cors_parse(const char *name, const char *value, http_cors **out, sm_error *err);

void http_cors_free(http_cors *c);

/* True when origin (an Origin header value, NULL when absent) may read
 * answers under policy c. */
bool http_cors_allows(const http_cors *c, const char *origin);

/* True when the request is a CORS preflight this policy answers: c is on
 * and it is OPTIONS with both Origin and Access-Control-Request-Method. */
bool http_cors_is_preflight(const http_cors *c, const char *method, const char *origin,
                            const char *request_method);

/* Adds the CORS header lines to reply->cors_headers, after the service has
 * produced reply for the request (method, origin, request_method as in
 * http_cors_is_preflight). No-op when c is NULL.
 *
 * An ordinary request: an allowed origin gets Access-Control-Allow-Origin
 * (the origin, or "*" under "*"), Vary: Origin and
 * Access-Control-Expose-Headers; any other gets Vary: Origin only. No
 * Access-Control-Allow-Credentials: the API takes bearer tokens, not
 * cookies.
 *
 * A preflight on a path some route serves (reply 405 with Allow): 204 with
 * Access-Control-Allow-Origin, -Allow-Methods (the route's methods, HEAD
 * beside GET), -Allow-Headers (the request headers such routes read),
 * -Max-Age and Vary: Origin, when the origin is allowed and asks for one of
 * the route's methods; else 403 {"error":"forbidden"} with Vary: Origin
 * and no allow header, so the browser refuses the request it was about to
 * send. A preflight on any other path keeps its reply (404), as above. */
void http_cors_apply(const http_cors *c, const char *method, const char *origin,
                     const char *request_method, http_reply *reply);

#endif
