/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h — the commands the API accepts, and their parsing from HTTP
 * input (path id + JSON body). This is the edge: every field is checked for
 * presence, type, UTF-8 and length here, so handlers can trust a command.
 * Blank-text checks are business rules and live in post.c, where they run
 * in the original's order (an inactive post is reported before a blank
 * message). */
#ifndef COMMANDS_H
#define COMMANDS_H

#include "sm_error.h"
#include "sm_uuid.h"

#include <jansson.h>
#include <stdint.h>

/* Field limits in bytes (docs/api.md, "Limits"). */
#define CMD_MAX_AUTHOR 64
#define CMD_MAX_USERNAME 64
#define CMD_MAX_MESSAGE 4096
#define CMD_MAX_COMMENT 2048

typedef enum {
    CMD_NEW_POST = 0,
    CMD_EDIT_MESSAGE,
    CMD_LIKE_POST,
    CMD_ADD_COMMENT,
    CMD_EDIT_COMMENT,
    CMD_REMOVE_COMMENT,
    CMD_DELETE_POST,
    CMD_COUNT
} cmd_type;

typedef struct command {
    cmd_type type;
    sm_uuid_str post_id;      /* from the path; generated for NewPost */
    sm_uuid_str comment_id;   /* EditComment, RemoveComment */
    /* Borrowed from the parsed body, which must outlive the command. */
    const char *author;
    const char *message;
    const char *comment;
    const char *username;
    int64_t if_match;         /* -2: none; -1: "*"; else the expected version */
    /* Set when the caller is authenticated (SMPOST_AUTH=jwt): the token's
     * name (the route has put it in author / username) and whether it has
     * role moderator; the owner rules follow post_actor (post.h). NULL:
     * the seed's rules on the body's names. Borrowed. */
    const char *actor;
    bool moderator;
    /* The token's sub (set with actor): the owner id written into NewPost's
     * authorId / AddComment's userId and checked by the owner rules, and the
     * metadata userId of every event raised. NULL with auth off. Borrowed. */
    const char *user_id;
    /* Stamped on every event the command raises (sm_event_meta): the HTTP
     * request id and a W3C traceparent (the request's, or a new one: the
     * route makes sure there is one). NULL or "": none. An invalid
     * traceparent is dropped. Borrowed. */
    const char *request_id;
    const char *traceparent;
} command;

#define CMD_NO_IF_MATCH (-2)

/* Fills cmd from the body object for the given type (post_id is set by the
 * caller). Returns SM_ERR_INVALID naming the first bad field. `body` may be
 * NULL for commands without a body (LikePost). */
sm_status cmd_parse(cmd_type type, const json_t *body, command *cmd, sm_error *err);

/* True if the command takes a JSON body. */
bool cmd_takes_body(cmd_type type);

/* Route name of a command type ("NewPost", "LikePost"...). */
const char *cmd_name(cmd_type type);

#endif
