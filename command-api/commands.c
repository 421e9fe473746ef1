/* SPDX-License-Identifier: Apache-2.0 */
/* commands.c — see commands.h. One table says which fields each command
 * reads, so adding a command is one row plus its handler. */
#include "commands.h"

#include "sm_json.h"

#include <string.h>

enum { F_AUTHOR = 1, F_MESSAGE = 2, F_COMMENT = 4, F_USERNAME = 8, F_COMMENT_ID = 16 };

static const struct {
    const char *name;
    unsigned fields; /* 0: no body */
} specs[CMD_COUNT] = {
    [CMD_NEW_POST] = {"NewPost", F_AUTHOR | F_MESSAGE},
    [CMD_EDIT_MESSAGE] = {"EditMessage", F_MESSAGE},
    [CMD_LIKE_POST] = {"LikePost", 0},
    [CMD_ADD_COMMENT] = {"AddComment", F_COMMENT | F_USERNAME},
    [CMD_EDIT_COMMENT] = {"EditComment", F_COMMENT_ID | F_COMMENT | F_USERNAME},
    [CMD_REMOVE_COMMENT] = {"RemoveComment", F_COMMENT_ID | F_USERNAME},
    [CMD_DELETE_POST] = {"DeletePost", F_USERNAME},
};

const char *cmd_name(cmd_type type) { return type < CMD_COUNT ? specs[type].name : "?"; }

bool cmd_takes_body(cmd_type type) { return type < CMD_COUNT && specs[type].fields != 0; }

sm_status cmd_parse(cmd_type type, const json_t *body, command *cmd, sm_error *err)
{
    if (type >= CMD_COUNT)
        return sm_fail(err, SM_ERR_INTERNAL, "unknown command");
    cmd->type = type;
    unsigned f = specs[type].fields;
    if (f == 0)
        return SM_OK;
    if (!json_is_object(body))
        return sm_fail(err, SM_ERR_INVALID, "The request body must be a JSON object.");
    sm_status st = SM_OK;
    /* Checked in the order the fields appear in the API docs. */
    if (!st && (f & F_COMMENT_ID))
        st = sm_json_req_uuid(body, "commentId", cmd->comment_id, err);
    if (!st && (f & F_AUTHOR))
        st = sm_json_req_string(body, "author", CMD_MAX_AUTHOR, &cmd->author, err);
    if (!st && (f & F_MESSAGE))
        st = sm_json_req_string(body, "message", CMD_MAX_MESSAGE, &cmd->message, err);
    if (!st && (f & F_COMMENT))
        st = sm_json_req_string(body, "comment", CMD_MAX_COMMENT, &cmd->comment, err);
    if (!st && (f & F_USERNAME))
        st = sm_json_req_string(body, "username", CMD_MAX_USERNAME, &cmd->username, err);
    return st;
}
