/* SPDX-License-Identifier: Apache-2.0 */
/* http_util.c — see http_util.h. */
#include "http_util.h"

#include "http_cors.h"
#include "http_etag.h"
#include "http_gzip.h"
#include "http_linger.h"
#include "sm_json.h"
#include "sm_log.h"
#include "sm_metrics.h"
#include "sm_text.h"
#include "sm_time.h"

#include <civetweb.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    sm_status status;
    int code;
} status_table[] = {
    {SM_OK, 200},
    {SM_ERR_INVALID, 400},
    {SM_ERR_RULE, 400},
    {SM_ERR_NOT_FOUND, 404},
    {SM_ERR_METHOD, 405},
    {SM_ERR_CONFLICT, 409},
    {SM_ERR_PRECONDITION, 412},
    {SM_ERR_TOO_LARGE, 413},
    {SM_ERR_MEDIA_TYPE, 415},
    {SM_ERR_TIMEOUT, 408},
    {SM_ERR_UNAUTHENTICATED, 401},
    {SM_ERR_FORBIDDEN, 403},
    {SM_ERR_UNAVAILABLE, 503},
    {SM_ERR_INTERNAL, 500},
};

int http_status_for(sm_status status)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].status == status)
            return status_table[i].code;
    return 500;
}

void http_reply_json(http_reply *reply, int status, json_t *body)
{
    json_decref(reply->body);
    reply->status = status;
    reply->body = body;
}

void http_reply_error(http_reply *reply, sm_status status, const char *message)
{
    /* Messages may echo client input (a path, an id); JSON needs UTF-8, so
     * bytes that are not are shown as '?'. */
    char scrubbed[SM_ERROR_MAX];
    if (!message)
        message = "The request could not be processed.";
    else if (!sm_utf8_valid(message, strlen(message)))
        message = sm_utf8_scrub(message, scrubbed, sizeof scrubbed);
    http_reply_json(reply, http_status_for(status),
                    json_pack("{s:s, s:s}", "message", message, "error", sm_status_code(status)));
    if (status == SM_ERR_UNAVAILABLE)
        reply->retry_after = 1;
}

void http_reply_from_error(http_reply *reply, const sm_error *err)
{
    http_reply_error(reply, err->status == SM_OK ? SM_ERR_INTERNAL : err->status, err->message);
}

void http_reply_free(http_reply *reply)
{
    json_decref(reply->body);
    reply->body = NULL;
    free(reply->body_text);
    reply->body_text = NULL;
}

bool http_is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t len = strcspn(ct, "; ");
    if (len == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    return len > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + len - 5, "+json", 5) == 0;
}

bool http_parse_if_match(const char *value, int64_t *version)
{
    if (!value)
        return false;
    while (*value == ' ')
        value++;
    if (strcmp(value, "*") == 0) {
        *version = -1;
        return true;
    }
    if (strncmp(value, "W/", 2) == 0)
        value += 2;
    bool quoted = (*value == '"');
    if (quoted)
        value++;
    if (!isdigit((unsigned char)*value))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno == ERANGE)
        return false;
    if (quoted && *end++ != '"')
        return false;
    while (*end == ' ')
        end++;
    if (*end || v < 0)
        return false;
    *version = v;
    return true;
}

int http_query_get(const char *query, const char *key, char *out, size_t cap)
{
    if (!query)
        return 0;
    /* mg_get_var URL-decodes and bounds the output; -1 absent, -2 too long.
     * A decoded %00 would cut the value short ("limit=5%00x" read as 5, an
     * author matched by a prefix), so a value holding one is unusable too. */
    int n = mg_get_var(query, strlen(query), key, out, cap);
    if (n >= 0 && strlen(out) != (size_t)n)
        return -1;
    return n >= 0 ? 1 : n == -1 ? 0 : -1;
}

bool http_match_path(const char *prefix, bool has_arg, const char *path, const char **arg,
                     size_t *arg_len)
{
    size_t plen = strlen(prefix), len = strlen(path);
    if (len > 1 && path[len - 1] == '/')
        len--;
    *arg = NULL;
    *arg_len = 0;
    if (len < plen || strncasecmp(path, prefix, plen) != 0)
        return false;
    if (len == plen)
        return !has_arg;
    if (!has_arg || path[plen] != '/')
        return false;
    const char *seg = path + plen + 1;
    size_t seg_len = len - plen - 1;
    if (seg_len == 0 || memchr(seg, '/', seg_len))
        return false;
    *arg = seg;
    *arg_len = seg_len;
    return true;
}

/* Accepts a client's X-Request-Id only if it is short printable ASCII
 * without spaces or quotes, so it can go into logs and headers verbatim. */
static void pick_request_id(struct mg_connection *conn, char out[HTTP_REQUEST_ID_MAX + 1])
{
    const char *given = mg_get_header(conn, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n <= HTTP_REQUEST_ID_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = given[i] > 0x20 && given[i] < 0x7f && given[i] != '"' && given[i] != '\\';
        if (ok) {
            memcpy(out, given, n + 1);
            return;
        }
    }
    if (!sm_uuid_new(out))
        snprintf(out, HTTP_REQUEST_ID_MAX + 1, "req-%lld", (long long)sm_mono_ms());
}

#define BODY_READ_PIECE 16 /* bytes per mg_read() of a body; see read_body */

/* The server's request timeout (civetweb's request_timeout_ms, set from
 * SMPOST_REQUEST_TIMEOUT_MS by http_server.c); 0 if none is set. */
static int64_t request_timeout_ms(struct mg_connection *conn)
{
    const char *v = mg_get_option(mg_get_context(conn), "request_timeout_ms");
    long long ms = v ? strtoll(v, NULL, 10) : 0;
    return ms > 0 ? ms : 0;
}

/* Reads the whole body into a NUL-terminated heap buffer. Bodies over the
 * limit are refused from Content-Length alone when it is given, so a client
 * cannot make the server buffer more than HTTP_MAX_BODY + 1 bytes.
 *
 * civetweb bounds each wait for the client by the request timeout, but one
 * mg_read() returns only when all it was asked for has come, so a client
 * that trickles a byte now and then would hold a worker for as long as it
 * likes. Hence the whole body must arrive within the request timeout
 * (counted from when the headers were in), else 408; and it is read in
 * pieces of BODY_READ_PIECE bytes, so that the deadline is checked at least
 * every BODY_READ_PIECE waits: a trickling client is cut off within
 * (1 + BODY_READ_PIECE) timeouts at worst. Smaller pieces would bound that
 * tighter but cost a poll and a recv per piece for bodies that arrive after
 * their headers (1 byte: about 5 ms for a 4 KiB body); a body that came with
 * its headers is copied from civetweb's buffer either way. */
static sm_status read_body(struct mg_connection *conn, char **out, size_t *len, sm_error *err)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    *out = NULL;
    *len = 0;
    if (ri->content_length > HTTP_MAX_BODY)
        return sm_fail(err, SM_ERR_TOO_LARGE, "The request body exceeds %d bytes.", HTTP_MAX_BODY);
    int64_t timeout = request_timeout_ms(conn);
    int64_t deadline = timeout > 0 ? sm_mono_ms() + timeout : INT64_MAX;
    size_t cap = ri->content_length >= 0 ? (size_t)ri->content_length + 1 : 4096;
    char *buf = malloc(cap);
    if (!buf)
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > HTTP_MAX_BODY + 1) {
                free(buf);
                return sm_fail(err, SM_ERR_TOO_LARGE, "The request body exceeds %d bytes.",
                               HTTP_MAX_BODY);
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
            }
            buf = bigger;
            cap *= 2;
        }
        size_t want = cap - n - 1;
        int r = mg_read(conn, buf + n, want < BODY_READ_PIECE ? want : BODY_READ_PIECE);
        bool late = sm_mono_ms() >= deadline;
        if (r < 0 || (r > 0 && late)) {
            free(buf);
            if (late)
                return sm_fail(err, SM_ERR_TIMEOUT,
                               "The request body was not received within %lld ms.",
                               (long long)timeout);
            return sm_fail(err, SM_ERR_INVALID, "The request body could not be read.");
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > HTTP_MAX_BODY) {
        free(buf);
        return sm_fail(err, SM_ERR_TOO_LARGE, "The request body exceeds %d bytes.", HTTP_MAX_BODY);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SM_OK;
}

/* civetweb is told not to decode the path (decode_url=no, http_server.c)
 * so that this can refuse what decoding would hide; see http_util.h. */
sm_status http_decode_path(const char *raw, char **out, sm_error *err)
{
    *out = NULL;
    for (const char *p = strchr(raw, '%'); p; p = strchr(p + 1, '%'))
        if (strncasecmp(p, "%2f", 3) == 0 || strncmp(p, "%00", 3) == 0)
            return sm_fail(err, SM_ERR_INVALID,
                           "The path must not contain an encoded '/' or NUL (%%2F, %%00).");
    size_t n = strlen(raw);
    char *buf = malloc(n + 1);
    if (!buf)
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    if (n > INT32_MAX - 1 || mg_url_decode(raw, (int)n, buf, (int)n + 1, 0) < 0) {
        free(buf);
        return sm_fail(err, SM_ERR_INVALID, "The path could not be decoded.");
    }
    *out = buf;
    return SM_OK;
}

/* A cacheable 200 (reply->etag_body) gets its tag here, from the bytes
 * about to be sent; a request that already holds them gets 304 and no
 * body. */
static void apply_etag(const http_request *req, http_reply *reply, char **text, size_t *len,
                       char etag[HTTP_ETAG_MAX])
{
    etag[0] = '\0';
    if (!reply->etag_body || reply->status != 200 || !*text)
        return;
    http_etag_of(*text, *len, etag);
    if (http_if_none_match(req->if_none_match, etag)) {
        reply->status = 304;
        free(*text);
        *text = NULL;
        *len = 0;
    }
}

/* Swaps *text for its gzip form when the client takes it and it is worth
 * it (http_gzip.h). Returns whether it did. */
static bool apply_gzip(const http_request *req, const char *ctype, char **text, size_t *len)
{
    char *gz;
    size_t gz_len;
    if (!*text || *len < HTTP_GZIP_MIN_BYTES || !http_gzip_compressible(ctype) ||
        !http_accepts_gzip(req->accept_encoding) || !http_gzip(*text, *len, &gz, &gz_len))
        return false;
    free(*text);
    *text = gz;
    *len = gz_len;
    return true;
}

static void send_reply(struct mg_connection *conn, const http_request *req, http_reply *reply)
{
    const char *ctype = "application/json; charset=utf-8";
    char *text = NULL;
    size_t len = 0;
    if (reply->body_text) {
        text = reply->body_text;
        len = reply->body_text_len ? reply->body_text_len : strlen(text);
        reply->body_text = NULL;
        ctype = reply->content_type ? reply->content_type : "text/plain; charset=utf-8";
    } else if (reply->body) {
        text = sm_json_dump(reply->body);
        if (!text) {
            reply->status = 500;
            text = strdup("{\"message\":\"out of memory\",\"error\":\"internal\"}");
        }
        len = text ? strlen(text) : 0;
    }
    char etag[HTTP_ETAG_MAX];
    apply_etag(req, reply, &text, &len, etag);
    /* a 304 stands for the 200 it replaces, so it keeps the 200's Vary */
    bool varies = http_gzip_compressible(ctype) && (text || reply->status == 304);
    bool gzipped = apply_gzip(req, ctype, &text, &len);
    char extra[768] = "";
    size_t o = 0;
    if (reply->etag[0])
        o += (size_t)snprintf(extra + o, sizeof extra - o, "ETag: \"%s\"\r\n", reply->etag);
    else if (etag[0])
        o += (size_t)snprintf(extra + o, sizeof extra - o, "ETag: %s\r\n", etag);
    if (varies && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "Vary: Accept-Encoding\r\n%s",
                              gzipped ? "Content-Encoding: gzip\r\n" : "");
    if (reply->retry_after > 0 && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "Retry-After: %d\r\n",
                              reply->retry_after);
    if (reply->allow && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "Allow: %s\r\n", reply->allow);
    if (reply->close && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "Connection: close\r\n");
    if (reply->extra_headers[0] && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "%s", reply->extra_headers);
    /* A 304 has no body and no Content-Length: a length there would have to
     * be the 200's (RFC 9110 8.6), which clients do not need. */
    char length[48] = "";
    if (reply->status != 304)
        snprintf(length, sizeof length, "Content-Length: %zu\r\n", len);
    /* Headers and body go out in one write (one sendto) when the body is
     * small: two writes cost a second trip through the loopback TCP stack,
     * a measurable share of a small query's time (docs/performance.md). */
    char head[1024 + HTTP_CORS_HEADERS_MAX];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\n"
                      "%s%s%s"
                      "%s"
                      "X-Request-Id: %s\r\n"
                      "Cache-Control: %s\r\n"
                      "%s%s\r\n",
                      reply->status, mg_get_response_code_text(conn, reply->status),
                      text ? "Content-Type: " : "", text ? ctype : "", text ? "\r\n" : "", length,
                      req->request_id, etag[0] ? "no-cache" : "no-store", extra,
                      reply->cors_headers);
    /* a head cut short would be a broken reply, never a shorter one */
    if (o >= sizeof extra || hn < 0 || (size_t)hn >= sizeof head) {
        sm_log(SM_LOG_ERROR, "http_head_too_long", "req=%s extra_bytes=%zu head_bytes=%d",
               req->request_id, o, hn);
        hn = snprintf(head, sizeof head,
                      "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                      "X-Request-Id: %s\r\nConnection: close\r\n\r\n",
                      req->request_id);
        free(text);
        text = NULL;
        mg_disable_connection_keep_alive(conn);
    }
    size_t hlen = hn < 0 ? 0 : (size_t)hn;
    bool body = text && strcmp(req->method, "HEAD") != 0;
    char *one = body && len <= 16384 ? malloc(hlen + len) : NULL;
    if (one) {
        memcpy(one, head, hlen);
        memcpy(one + hlen, text, len);
        mg_write(conn, one, hlen + len);
        free(one);
    } else {
        mg_write(conn, head, hlen);
        if (body)
            mg_write(conn, text, len);
    }
    free(text);
}

sm_status http_listen_parse(const char *spec, char *host, size_t cap, long *port, sm_error *err)
{
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    size_t host_len = colon ? (size_t)(colon - spec) : 0;
    char *end = NULL;
    long p = colon && colon[1] >= '0' && colon[1] <= '9' ? strtol(colon + 1, &end, 10) : -1;
    /* an IPv6 host needs its brackets, or the last ':' is part of it */
    bool v6_ok = !memchr(spec ? spec : "", ':', host_len) ||
                 (spec[0] == '[' && spec[host_len - 1] == ']');
    if (!colon || host_len == 0 || host_len >= cap || p < 0 || p > 65535 || *end || !v6_ok)
        return sm_fail(err, SM_ERR_INVALID,
                       "listener address '%.80s' is not HOST:PORT (e.g. 127.0.0.1:9101)",
                       spec ? spec : "");
    memcpy(host, spec, host_len);
    host[host_len] = '\0';
    *port = p;
    return SM_OK;
}

bool http_route_served(http_route_place place, http_listener l)
{
    switch (l) {
    case HTTP_LISTENER_PUBLIC:
        return place != HTTP_PLACE_ADMIN;
    case HTTP_LISTENER_ADMIN:
        return place != HTTP_PLACE_PUBLIC;
    default:
        return true;
    }
}

int http_serve(struct mg_connection *conn, http_listener listener, http_handler_fn handler,
               void *app, const struct http_cors *cors)
{
    int64_t started = sm_mono_us();
    const struct mg_request_info *ri = mg_get_request_info(conn);
    http_request req = {
        .method = ri->request_method,
        .path = ri->local_uri ? ri->local_uri : "/",
        .query = ri->query_string,
        .content_type = mg_get_header(conn, "Content-Type"),
        .if_match = mg_get_header(conn, "If-Match"),
        .authorization = mg_get_header(conn, "Authorization"),
        .traceparent = mg_get_header(conn, "traceparent"),
        .if_none_match = mg_get_header(conn, "If-None-Match"),
        .accept_encoding = mg_get_header(conn, "Accept-Encoding"),
        .listener = listener,
    };
    pick_request_id(conn, req.request_id);
    http_reply reply = {0};
    sm_error err = {0};
    char *body = NULL, *path = NULL;
    sm_status st = http_decode_path(req.path, &path, &err);
    /* refused before its body was read, or for the body's size: the client
     * may still be sending it (see http_linger.h) */
    bool body_unread = true;
    if (st == SM_OK) {
        req.path = path;
        st = read_body(conn, &body, &req.body_len, &err);
        body_unread = st == SM_ERR_TOO_LARGE;
    }
    if (st != SM_OK) {
        http_reply_from_error(&reply, &err);
        reply.close = true; /* the unread rest of the body must not be parsed as a request */
    } else {
        req.body = body;
        handler(app, &req, &reply);
        if (reply.status == 0)
            http_reply_error(&reply, SM_ERR_INTERNAL, "no reply produced");
    }
    /* CORS after everything that may answer: the route, and the errors
     * before it (the path, the body, a draining server) */
    if (cors)
        http_cors_apply(cors, req.method, mg_get_header(conn, "Origin"),
                        mg_get_header(conn, "Access-Control-Request-Method"), &reply);
    /* Connection: close alone is not enough: civetweb would still read and
     * discard the rest of a declared body before closing, which a client
     * that trickles (or declares a huge Content-Length) turns into a worker
     * held for as long as it likes. A body refused unread is discarded
     * after the reply instead, within http_linger's bounds. */
    if (reply.close)
        mg_disable_connection_keep_alive(conn);
    send_reply(conn, &req, &reply);
    int64_t took_us = sm_mono_us() - started;
    sm_metrics_http_observe(reply.route, reply.status, took_us);
    char qpath[300];
    sm_log(reply.status >= 500 ? SM_LOG_WARN : SM_LOG_INFO, "http_request",
           "req=%s method=%s path=%s status=%d dur_ms=%lld", req.request_id, req.method,
           sm_log_quote(req.path, qpath, sizeof qpath), reply.status,
           (long long)(took_us / 1000));
    if (st != SM_OK && body_unread)
        http_linger(conn, req.request_id);
    int status = reply.status;
    http_reply_free(&reply);
    free(body);
    free(path);
    return status;
}

bool http_query_count(const char *query, const char *key, int64_t max, int64_t *out,
                      bool *found)
{
    char buf[32];
    int r = http_query_get(query, key, buf, sizeof buf);
    *found = r != 0;
    if (r == 0)
        return true;
    if (r < 0 || !buf[0] || strlen(buf) > 18)
        return false;
    for (const char *c = buf; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    long long v = strtoll(buf, NULL, 10); /* 18 digits cannot overflow */
    if (v > max)
        return false;
    *out = v;
    return true;
}
