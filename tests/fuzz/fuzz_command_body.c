/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_command_body.c — libFuzzer harness for the command API's JSON body
 * parsing: sm_json_parse_object (what routes.c runs on every body) and then
 * cmd_parse for every command that takes a body (NewPost, EditMessage,
 * AddComment, EditComment, RemoveComment, DeletePost), all on the same
 * input, so one corpus drives all six.
 *
 * The contract checked on every input (docs/api.md, "Limits"):
 *   - an accepted body nests no deeper than SM_JSON_MAX_DEPTH (the guard in
 *     front of jansson's recursive parser holds);
 *   - an accepted command has every field it needs, each valid UTF-8 with
 *     no NUL and within its byte limit, and a canonical comment id;
 *   - a refused body or command is SM_ERR_INVALID with a message, and the
 *     JSON error reply built from it serialises (never an empty 400). */
#include "commands.h"
#include "fuzz_support.h"
#include "http_util.h"
#include "sm_json.h"
#include "sm_log.h"
#include "sm_text.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sm_log_set_level(SM_LOG_ERROR);
    return 0;
}

static int depth_of(const json_t *j)
{
    int deepest = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            int d = depth_of(v);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            int d = depth_of(v);
            deepest = d > deepest ? d : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

/* The error reply a client would get must be JSON with a message. */
static void check_error_reply(const sm_error *err)
{
    FUZZ_CHECK(err->status == SM_ERR_INVALID, "refused with status %d, want SM_ERR_INVALID",
               (int)err->status);
    FUZZ_CHECK(err->message[0] != '\0', "refused without a message");
    http_reply reply = {0};
    http_reply_from_error(&reply, err);
    char *text = reply.body ? sm_json_dump(reply.body) : NULL;
    FUZZ_CHECK(reply.status == 400 && text, "error reply %d does not serialise", reply.status);
    free(text);
    http_reply_free(&reply);
}

static void check_text(const char *what, const char *s, size_t max)
{
    FUZZ_CHECK(s != NULL, "accepted command has no %s", what);
    size_t n = strlen(s);
    FUZZ_CHECK(n <= max, "%s of %zu bytes accepted (limit %zu)", what, n, max);
    FUZZ_CHECK(sm_utf8_valid(s, n), "%s is not valid UTF-8", what);
}

static void check_command(cmd_type type, const command *c)
{
    switch (type) {
    case CMD_NEW_POST:
        check_text("author", c->author, CMD_MAX_AUTHOR);
        check_text("message", c->message, CMD_MAX_MESSAGE);
        break;
    case CMD_EDIT_MESSAGE:
        check_text("message", c->message, CMD_MAX_MESSAGE);
        break;
    case CMD_EDIT_COMMENT:
        check_text("comment", c->comment, CMD_MAX_COMMENT);
        /* fall through: username and commentId as RemoveComment */
    case CMD_REMOVE_COMMENT: {
        sm_uuid_str canon;
        FUZZ_CHECK(sm_uuid_parse(c->comment_id, canon) && strcmp(canon, c->comment_id) == 0,
                   "commentId '%s' is not canonical", c->comment_id);
    }
        /* fall through */
    case CMD_DELETE_POST:
        check_text("username", c->username, CMD_MAX_USERNAME);
        break;
    case CMD_ADD_COMMENT:
        check_text("comment", c->comment, CMD_MAX_COMMENT);
        check_text("username", c->username, CMD_MAX_USERNAME);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HTTP_MAX_BODY) /* http_serve refuses these with 413 first */
        return 0;
    json_t *body = NULL;
    sm_error err = {0};
    if (sm_json_parse_object((const char *)data, size, &body, &err) != SM_OK) {
        FUZZ_CHECK(body == NULL, "a refused body was returned");
        check_error_reply(&err);
        return 0;
    }
    FUZZ_CHECK(json_is_object(body), "an accepted body is not an object");
    FUZZ_CHECK(depth_of(body) <= SM_JSON_MAX_DEPTH, "a body nested %d deep was accepted",
               depth_of(body));
    for (int t = 0; t < CMD_COUNT; t++) {
        if (!cmd_takes_body((cmd_type)t))
            continue;
        command c = {.if_match = CMD_NO_IF_MATCH};
        sm_error cerr = {0};
        if (cmd_parse((cmd_type)t, body, &c, &cerr) == SM_OK)
            check_command((cmd_type)t, &c);
        else
            check_error_reply(&cerr);
    }
    json_decref(body);
    return 0;
}
