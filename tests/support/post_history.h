/* SPDX-License-Identifier: Apache-2.0 */
/* post_history.h — a post history that exercises every event type, for
 * tests of rehydration, snapshots and point-in-time reads. */
#ifndef POST_HISTORY_H
#define POST_HISTORY_H

#include "dispatcher.h"

/* Runs one command on post_id through ctx (comment_id, text, user as the
 * command needs them; text is the message or the comment). */
sm_status ph_run(cmd_context *ctx, const char *post_id, cmd_type type, const char *comment_id,
                 const char *text, const char *user, cmd_result *r);

/* Creates a post (its id into id) and takes it through: an edit, 3 likes,
 * 3 comments, a comment edit, a comment removal, a like, another comment
 * edit and the delete: versions 0..PH_LAST_VERSION. after(arg), if given,
 * runs after each command. Fails the test on any error. */
#define PH_LAST_VERSION 12
void ph_write_history(cmd_context *ctx, sm_uuid_str id, void (*after)(void *), void *arg);

#endif
