/* http_util.c — see http_util.h. */
#include "http_util.h"

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
    /* Messages may echo client input (a path, an id); JSON needs UTF-8. */
    if (!message || !sm_utf8_valid(message, strlen(message)))
        message = "The request could not be processed (the error text was not valid UTF-8).";
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
    /* mg_get_var URL-decodes and bounds the output; -1 absent, -2 too long. */
    int n = mg_get_var(query, strlen(query), key, out, cap);
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

/* Reads the whole body into a NUL-terminated heap buffer. Bodies over the
 * limit are refused from Content-Length alone when it is given, so a client
 * cannot make the server buffer more than HTTP_MAX_BODY + 1 bytes. */
static sm_status read_body(struct mg_connection *conn, char **out, size_t *len, sm_error *err)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    *out = NULL;
    *len = 0;
    if (ri->content_length > HTTP_MAX_BODY)
        return sm_fail(err, SM_ERR_TOO_LARGE, "The request body exceeds %d bytes.", HTTP_MAX_BODY);
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
        int r = mg_read(conn, buf + n, cap - n - 1);
        if (r < 0) {
            free(buf);
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

static void send_reply(struct mg_connection *conn, const http_request *req, http_reply *reply)
{
    const char *ctype = "application/json; charset=utf-8";
    char *text = NULL;
    if (reply->body_text) {
        text = reply->body_text;
        reply->body_text = NULL;
        ctype = reply->content_type ? reply->content_type : "text/plain; charset=utf-8";
    } else if (reply->body) {
        text = sm_json_dump(reply->body);
    }
    if (reply->body && !text) {
        reply->status = 500;
        text = strdup("{\"message\":\"out of memory\",\"error\":\"internal\"}");
    }
    size_t len = text ? strlen(text) : 0;
    char extra[512] = "";
    size_t o = 0;
    if (reply->etag[0])
        o += (size_t)snprintf(extra + o, sizeof extra - o, "ETag: \"%s\"\r\n", reply->etag);
    if (reply->retry_after > 0 && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "Retry-After: %d\r\n",
                              reply->retry_after);
    if (reply->allow && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "Allow: %s\r\n", reply->allow);
    if (reply->close && o < sizeof extra)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "Connection: close\r\n");
    if (reply->extra_headers[0] && o < sizeof extra)
        snprintf(extra + o, sizeof extra - o, "%s", reply->extra_headers);
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\n"
              "%s%s%s"
              "Content-Length: %zu\r\n"
              "X-Request-Id: %s\r\n"
              "Cache-Control: no-store\r\n"
              "%s\r\n",
              reply->status, mg_get_response_code_text(conn, reply->status),
              text ? "Content-Type: " : "", text ? ctype : "", text ? "\r\n" : "", len,
              req->request_id, extra);
    if (text && strcmp(req->method, "HEAD") != 0)
        mg_write(conn, text, len);
    free(text);
}

int http_serve(struct mg_connection *conn, http_handler_fn handler, void *app)
{
    int64_t started = sm_mono_ms();
    const struct mg_request_info *ri = mg_get_request_info(conn);
    http_request req = {
        .method = ri->request_method,
        .path = ri->local_uri ? ri->local_uri : "/",
        .query = ri->query_string,
        .content_type = mg_get_header(conn, "Content-Type"),
        .if_match = mg_get_header(conn, "If-Match"),
    };
    pick_request_id(conn, req.request_id);
    http_reply reply = {0};
    sm_error err = {0};
    char *body = NULL;
    if (read_body(conn, &body, &req.body_len, &err) != SM_OK) {
        http_reply_from_error(&reply, &err);
        reply.close = true; /* the unread rest of the body must not be parsed as a request */
    } else {
        req.body = body;
        handler(app, &req, &reply);
        if (reply.status == 0)
            http_reply_error(&reply, SM_ERR_INTERNAL, "no reply produced");
    }
    send_reply(conn, &req, &reply);
    sm_metrics_http_observe(reply.route, reply.status);
    char qpath[300];
    sm_log(reply.status >= 500 ? SM_LOG_WARN : SM_LOG_INFO, "http_request",
           "req=%s method=%s path=%s status=%d dur_ms=%lld", req.request_id, req.method,
           sm_log_quote(req.path, qpath, sizeof qpath), reply.status,
           (long long)(sm_mono_ms() - started));
    int status = reply.status;
    http_reply_free(&reply);
    free(body);
    return status;
}
