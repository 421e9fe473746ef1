/* SPDX-License-Identifier: Apache-2.0 */
/* post_history.c — see post_history.h. */
#include "post_history.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

sm_status ph_run(cmd_context *ctx, const char *post_id, cmd_type type, const char *comment_id,
                 const char *text, const char *user, cmd_result *r)
{
    command c = {.type = type, .if_match = CMD_NO_IF_MATCH};
    strcpy(c.post_id, post_id);
    if (comment_id)
        strcpy(c.comment_id, comment_id);
    c.author = user;
    c.message = text;
    c.comment = text;
    c.username = user;
    sm_error err;
    return cmd_dispatch(ctx, &c, r, &err);
}

typedef struct step {
    cmd_type type;
    int comment;       /* index of the comment it refers to, or -1 */
    const char *text, *user;
} step;

static const step steps[] = {
    {CMD_NEW_POST, -1, "first words", "alice"},
    {CMD_EDIT_MESSAGE, -1, "second words", NULL},
    {CMD_LIKE_POST, -1, NULL, NULL},
    {CMD_LIKE_POST, -1, NULL, NULL},
    {CMD_LIKE_POST, -1, NULL, NULL},
    {CMD_ADD_COMMENT, -1, "nice", "bob"},
    {CMD_ADD_COMMENT, -1, "agreed \xc3\xa9\"'", "carol"},
    {CMD_ADD_COMMENT, -1, "third", "dave"},
    {CMD_EDIT_COMMENT, 0, "nice, edited", "bob"},
    {CMD_REMOVE_COMMENT, 1, NULL, "carol"},
    {CMD_LIKE_POST, -1, NULL, NULL},
    {CMD_EDIT_COMMENT, 2, "third, edited", "dave"},
    {CMD_DELETE_POST, -1, NULL, "ALICE"},
};

void ph_write_history(cmd_context *ctx, sm_uuid_str id, void (*after)(void *), void *arg)
{
    sm_uuid_str comments[3];
    int ncomments = 0;
    assert_true(sm_uuid_new(id));
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const step *s = &steps[i];
        cmd_result r;
        const char *cid = s->comment >= 0 ? comments[s->comment] : NULL;
        assert_int_equal(ph_run(ctx, id, s->type, cid, s->text, s->user, &r), SM_OK);
        assert_int_equal(r.version, (int64_t)i);
        if (s->type == CMD_ADD_COMMENT)
            strcpy(comments[ncomments++], r.comment_id);
        if (after)
            after(arg);
    }
    assert_int_equal(sizeof steps / sizeof steps[0], PH_LAST_VERSION + 1);
}
