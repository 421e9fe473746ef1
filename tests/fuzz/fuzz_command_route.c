/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_command_route.c — libFuzzer harness for the whole command edge:
 * a request given as text goes through http_decode_path and routes_handle
 * (route matching, the {postId} UUID, If-Match, Content-Type, the JSON body)
 * into the real dispatcher and Post aggregate, over the in-memory event
 * store of the unit tests. Input:
 *
 *   METHOD TARGET\n            e.g. "PUT /api/v1/AddComment/<id>?x=1"
 *   Name: value\n ...          If-Match, Content-Type and traceparent are used
 *   \n
 *   body                       the rest, as sent
 *
 * Each input starts from a fresh store holding one post (FUZZ_POST, by
 * "alice") with one comment (FUZZ_COMMENT, by "bob"), so edits, likes,
 * comment changes and deletes reach the business rules. Checked: the status
 * is one the API documents for a command, and every reply body is JSON that
 * serialises (errors with a message and a code). */
#include "fuzz_support.h"
#include "mem_store.h"
#include "routes.h"
#include "sm_json.h"
#include "sm_log.h"

#include <string.h>
#include <strings.h>

#define FUZZ_POST "11111111-1111-4111-8111-111111111111"
#define FUZZ_COMMENT "22222222-2222-4222-8222-222222222222"
#define FUZZ_T0 1764198000000LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sm_log_set_level(SM_LOG_ERROR);
    return 0;
}

static es_store *seeded_store(void)
{
    mem_store_ctl *ctl;
    es_store *s = mem_store_new(&ctl);
    sm_event evs[2] = {{.type = SM_EV_POST_CREATED, .version = 0},
                       {.type = SM_EV_COMMENT_ADDED, .version = 1}};
    for (int i = 0; i < 2; i++) {
        snprintf(evs[i].event_id, sizeof evs[i].event_id, "3333333%d-3333-4333-8333-333333333333",
                 i);
        strcpy(evs[i].aggregate_id, FUZZ_POST);
        evs[i].timestamp_ms = evs[i].at_ms = FUZZ_T0 + i;
    }
    evs[0].author = "alice";
    evs[0].message = "hello";
    strcpy(evs[1].comment_id, FUZZ_COMMENT);
    evs[1].comment = "nice";
    evs[1].username = "bob";
    sm_error err = {0};
    FUZZ_CHECK(es_append(s, FUZZ_POST, -1, evs, 2, &err) == ES_OK, "seeding: %s", err.message);
    return s;
}

/* Copies the value of header `name` from the header block into buf. */
static const char *header(const char *headers, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *h = headers; h && *h; h = strchr(h, '\n') ? strchr(h, '\n') + 1 : NULL) {
        if (strncasecmp(h, name, nl) != 0 || h[nl] != ':')
            continue;
        const char *v = h + nl + 1;
        while (*v == ' ')
            v++;
        size_t n = strcspn(v, "\n");
        snprintf(buf, cap, "%.*s", (int)n, v);
        return buf;
    }
    return NULL;
}

static bool documented(int status)
{
    static const int ok[] = {200, 201, 400, 404, 405, 409, 412, 413, 415, 503};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (status == ok[i])
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HTTP_MAX_BODY)
        return 0;
    /* the request line and headers are text up to the first NUL (as on the
     * wire); the body is the bytes after the blank line, NULs and all */
    char *head = strndup((const char *)data, size);
    const char *sep = memmem(data, size, "\n\n", 2);
    size_t head_len = sep ? (size_t)(sep - (const char *)data) : size;
    if (!head || head_len > strlen(head)) {
        free(head);
        return 0;
    }
    head[head_len] = '\0';
    const char *body = sep ? sep + 2 : NULL;
    size_t body_len = sep ? size - head_len - 2 : 0;

    char method[16], *target = NULL;
    char *nl = strchr(head, '\n');
    if (nl)
        *nl = '\0';
    char *sp = strchr(head, ' ');
    if (!sp || sp == head || (size_t)(sp - head) >= sizeof method) {
        free(head);
        return 0;
    }
    snprintf(method, sizeof method, "%.*s", (int)(sp - head), head);
    target = sp + 1;
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';

    char *path = NULL;
    sm_error err = {0};
    if (http_decode_path(target, &path, &err) != SM_OK) {
        FUZZ_CHECK(err.status == SM_ERR_INVALID, "path refused with status %d", (int)err.status);
        free(head);
        return 0;
    }
    /* the request as http_serve would hand it over: body NUL-terminated */
    char *body_copy = body_len ? malloc(body_len + 1) : NULL;
    if (body_copy) {
        memcpy(body_copy, body, body_len);
        body_copy[body_len] = '\0';
    }
    char ctype[128], if_match[64], trace[128];
    const char *headers = nl ? nl + 1 : NULL;
    http_request req = {
        .method = method,
        .path = path,
        .query = query,
        .content_type = header(headers, "Content-Type", ctype, sizeof ctype),
        .if_match = header(headers, "If-Match", if_match, sizeof if_match),
        .traceparent = header(headers, "traceparent", trace, sizeof trace),
        .body = body_copy,
        .body_len = body_copy ? body_len : 0,
        .request_id = "fuzz",
    };

    static cmd_app app; /* zeroed: no relay, no docs */
    app.store = seeded_store();
    cmd_context_init(&app.cmd, app.store);
    http_reply reply = {0};
    routes_handle(&app, &req, &reply);

    FUZZ_CHECK(documented(reply.status), "status %d for %s %s", reply.status, method, path);
    if (reply.body) {
        char *text = sm_json_dump(reply.body);
        FUZZ_CHECK(text != NULL, "the %d reply does not serialise", reply.status);
        free(text);
        if (reply.status >= 400)
            FUZZ_CHECK(json_string_value(json_object_get(reply.body, "message")) &&
                           json_string_value(json_object_get(reply.body, "error")),
                       "the %d reply has no message or error code", reply.status);
    }
    http_reply_free(&reply);
    cmd_context_destroy(&app.cmd);
    es_close(app.store);
    free(body_copy);
    free(path);
    free(head);
    return 0;
}
