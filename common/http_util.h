/* SPDX-License-Identifier: Apache-2.0 */
/* http_util.h — the HTTP edge shared by both binaries (civetweb).
 *
 * Routes are written against two plain structs, http_request and
 * http_reply, so they can be unit-tested without a socket; http_serve()
 * turns a civetweb connection into an http_request (enforcing the body
 * limit), calls the application's handler and writes the http_reply.
 *
 * Every reply is JSON (or empty for 204 and redirects; raw text or bytes for
 * /metrics and Swagger UI's files: body_text) and carries X-Request-Id: the
 * client's own if it sent a sane one, else a fresh UUID. Each request is
 * logged as one line with its id, method, path, status and duration.
 * Bodies of text types go gzip-compressed to clients that accept it
 * (http_gzip.h); cacheable answers carry ETags (http_etag.h). */
#ifndef HTTP_UTIL_H
#define HTTP_UTIL_H

#include "sm_error.h"
#include "sm_uuid.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mg_connection;
struct http_cors;

#define HTTP_MAX_BODY (64 * 1024)   /* request body limit (413 above) */
#define HTTP_REQUEST_ID_MAX 64
#define HTTP_CORS_HEADERS_MAX 640 /* http_reply.cors_headers (http_cors.h) */

/* Which listening port a request came on (http_server.h, "Admin
 * listener"). SOLE: the service has one port, which serves every route. */
typedef enum {
    HTTP_LISTENER_SOLE = 0, /* no admin listener configured */
    HTTP_LISTENER_PUBLIC,   /* the public port, with an admin listener beside it */
    HTTP_LISTENER_ADMIN     /* the admin listener */
} http_listener;

/* Where a route is served once an admin listener is configured: the
 * operational routes that must not face the Internet (/metrics,
 * RestoreReadDb) only on the admin port, the API and its documentation
 * only on the public port, /health on both. */
typedef enum { HTTP_PLACE_PUBLIC = 0, HTTP_PLACE_ADMIN, HTTP_PLACE_BOTH } http_route_place;

/* True when a route placed at place is served on listener l: always on
 * the sole port; on the public or admin port as placed. A route not served
 * on a port is answered there exactly as a path that matches no route
 * (404), so the public port does not even reveal that it exists. */
bool http_route_served(http_route_place place, http_listener l);

/* Splits a listener address "HOST:PORT" ("127.0.0.1:9101", "[::1]:9101";
 * PORT 0: any free port) into host (cap bytes, brackets kept) and *port.
 * SM_ERR_INVALID with a message naming spec when it is not of that form. */
sm_status http_listen_parse(const char *spec, char *host, size_t cap, long *port, sm_error *err);

typedef struct http_request {
    const char *method;       /* "GET", "POST"... */
    const char *path;         /* URL-decoded path, without the query */
    const char *query;        /* raw query string or NULL */
    const char *content_type; /* header value or NULL */
    const char *if_match;     /* header value or NULL */
    const char *authorization; /* header value or NULL */
    const char *traceparent;  /* W3C trace context header value (unchecked) or NULL */
    const char *if_none_match;   /* header value or NULL (http_etag.h) */
    const char *accept_encoding; /* header value or NULL (http_gzip.h) */
    const char *body;         /* NUL-terminated copy of the body, or NULL */
    size_t body_len;
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    http_listener listener;   /* the port it came on; SOLE in unit tests */
} http_request;

typedef struct http_reply {
    int status;
    json_t *body;           /* owned; NULL sends no body (204) */
    char etag[32];          /* sent as ETag: "<etag>" when non-empty */
    /* A cacheable answer (queries): a 200 with a body gets a weak ETag
     * derived from the body (http_etag.h) and Cache-Control: no-cache
     * instead of no-store, and becomes 304 with no body when the request's
     * If-None-Match matches that tag. */
    bool etag_body;
    int retry_after;        /* seconds; sent when > 0 */
    const char *allow;      /* Allow header for 405, static string */
    const char *route;      /* matched route pattern (static), for metrics */
    const char *content_type; /* non-JSON body type (static); body_text holds it */
    char *body_text;        /* owned raw body sent instead of JSON when set */
    size_t body_text_len;   /* its length in bytes (binary files); 0: strlen(body_text) */
    char extra_headers[160]; /* more "Name: value\r\n" lines, or "" */
    char cors_headers[HTTP_CORS_HEADERS_MAX]; /* http_cors_apply's lines, or "" */
    bool close;             /* ask the client to close the connection */
} http_reply;

/* The one table from error status to HTTP status code. */
int http_status_for(sm_status status);

/* Fills reply with the JSON error body {"message": ..., "error": <code>}
 * and the matching status (503 adds Retry-After: 1). Bytes of message that
 * are not UTF-8 (client input it echoes) are shown as '?'. */
void http_reply_error(http_reply *reply, sm_status status, const char *message);

/* Same, from an sm_error. */
void http_reply_from_error(http_reply *reply, const sm_error *err);

/* Fills reply with status and body (ownership of body passes to reply). */
void http_reply_json(http_reply *reply, int status, json_t *body);

void http_reply_free(http_reply *reply);

/* True for application/json and any application/<x>+json, parameters
 * (charset) allowed, case-insensitive. */
bool http_is_json_type(const char *content_type);

/* Parses an If-Match value: "5", W/"5" or 5 -> *version = 5, returns true;
 * "*" -> *version = -1, returns true. Anything else returns false. */
bool http_parse_if_match(const char *value, int64_t *version);

/* Looks up key in a raw query string ("a=1&b=2") and URL-decodes its value
 * into out (cap bytes). Returns 1 if found, 0 if absent, -1 if present but
 * unusable: longer than cap - 1, or holding an encoded NUL (%00) that would
 * cut it short (callers answer 400 rather than ignore it). */
int http_query_get(const char *query, const char *key, char *out, size_t cap);

/* Reads the optional count parameter key: digits only (no sign, spaces or
 * exponent), at most max. Returns false if it is present but not such a
 * count (including values too long to be one); true otherwise, with *found
 * saying whether it was there and *out set only when it was. */
bool http_query_count(const char *query, const char *key, int64_t max, int64_t *out,
                      bool *found);

/* Matches path against prefix (ignoring ASCII case; one trailing slash
 * tolerated). With has_arg the prefix must be followed by exactly one more
 * segment, returned in *arg / *arg_len (not NUL-terminated); without it the
 * path must end at the prefix. */
bool http_match_path(const char *prefix, bool has_arg, const char *path, const char **arg,
                     size_t *arg_len);

/* URL-decodes a raw request path once into a new heap string (*out, caller
 * frees). Refuses, with SM_ERR_INVALID, a path holding an encoded '/' (%2F)
 * or NUL (%00): decoded, one would turn a segment into two and the other
 * would cut the path short, so a request could act on another path than
 * the one it names; no route needs them (an author with a '/' goes in the
 * query string). Encoded dots (%2E) stay data: the server has removed
 * literal "." and ".." segments before this, and "..", once decoded,
 * matches no route. */
sm_status http_decode_path(const char *raw, char **out, sm_error *err);

typedef void (*http_handler_fn)(void *app, const http_request *req, http_reply *reply);

/* Reads the request from conn (path decoded by http_decode_path; the body
 * within HTTP_MAX_BODY, and within the server's request timeout counted
 * from the end of the headers, else 408), calls handler and writes its
 * reply. A request refused before its body was read (a path refused, 413)
 * is answered with Connection: close and then lingered on (http_linger.h),
 * so that a client still sending its body can read the answer. Returns the
 * status sent (for civetweb's handler return value convention the caller
 * returns non-zero). cors (borrowed; NULL: off) adds its headers to every
 * reply, the errors before routing included, and answers preflights
 * (http_cors.h). */
int http_serve(struct mg_connection *conn, http_listener listener, http_handler_fn handler,
               void *app, const struct http_cors *cors);

#endif
