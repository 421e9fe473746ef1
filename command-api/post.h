/* SPDX-License-Identifier: Apache-2.0 */
/* post.h — the Post aggregate: state rebuilt from events, and the business
 * rules that decide which event a command raises.
 *
 * Two kinds of function, kept apart on purpose:
 *  - post_apply() folds one stored event into the state. It never fails on
 *    a valid event: history is fact, even if today's rules would refuse it.
 *  - post_decide_*() check the rules against the current state and, if they
 *    hold, fill *out with the one new event (version = state version + 1).
 *    A broken rule returns SM_ERR_RULE (or SM_ERR_NOT_FOUND for an unknown
 *    comment) with the original service's exact text; nothing is raised.
 *
 * Rule order and texts follow docs/api.md (from the original, §2.3 of the
 * reference): nothing but delete-checks works on a removed post; only the
 * author deletes a post (ignoring case); only a comment's author edits or
 * removes it (exact match); anyone edits a post's message; likes are
 * unlimited; blank text is refused. With authentication the owners are user
 * ids instead (post_actor below).
 *
 * A post_state owns its strings and comments; post_free() releases them.
 * Not thread-safe: one state per request. */
#ifndef POST_H
#define POST_H

#include "sm_error.h"
#include "sm_event.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct post_comment {
    sm_uuid_str id;
    char *text;
    char *username;
    char *user_id;      /* the commenter's user id (token sub); NULL if made without auth */
    int64_t date_ms;
    bool edited;
    int64_t edited_at_ms;
} post_comment;

typedef struct post_state {
    sm_uuid_str id;
    int64_t version;    /* -1 until the first event is applied */
    bool active;        /* false once removed */
    char *author;
    char *author_id;    /* the owner's user id (token sub); NULL if made without auth */
    char *message;
    int64_t date_posted_ms;
    int64_t likes;
    post_comment *comments; /* in the order they were added */
    size_t ncomments, comments_cap;
} post_state;

void post_init(post_state *p);
void post_free(post_state *p);

/* True once PostCreated has been applied. */
bool post_exists(const post_state *p);

/* Folds ev into p. ev must belong to p's stream and have version
 * p->version + 1, else SM_ERR_INTERNAL (a corrupt stream); p is unchanged on
 * failure. */
sm_status post_apply(post_state *p, const sm_event *ev, sm_error *err);

/* Comment by id, or NULL. Borrowed. */
const post_comment *post_find_comment(const post_state *p, const char *comment_id);

/* The rules. `now_ms` stamps the event; ids are generated inside. Each fills
 * *out (caller clears it with sm_event_clear) only on SM_OK. */
sm_status post_decide_create(const char *post_id, const char *author, const char *message,
                             int64_t now_ms, sm_event *out, sm_error *err);
sm_status post_decide_edit_message(const post_state *p, const char *message, int64_t now_ms,
                                   sm_event *out, sm_error *err);
sm_status post_decide_like(const post_state *p, int64_t now_ms, sm_event *out, sm_error *err);
sm_status post_decide_add_comment(const post_state *p, const char *comment,
                                  const char *username, int64_t now_ms, sm_event *out,
                                  sm_error *err);
sm_status post_decide_edit_comment(const post_state *p, const char *comment_id,
                                   const char *comment, const char *username, int64_t now_ms,
                                   sm_event *out, sm_error *err);
sm_status post_decide_remove_comment(const post_state *p, const char *comment_id,
                                     const char *username, int64_t now_ms, sm_event *out,
                                     sm_error *err);
sm_status post_decide_delete(const post_state *p, const char *username, int64_t now_ms,
                             sm_event *out, sm_error *err);

/* Who acts, when callers are authenticated (SMPOST_AUTH=jwt). The seed's
 * rules compare a name taken from the request body and refuse a wrong owner
 * with SM_ERR_RULE (400); with tokens a wrong owner is SM_ERR_FORBIDDEN
 * (403), EditMessage joins the owner rule, and a moderator passes the owner
 * rules (never the others: an inactive post stays inactive).
 *
 * Owners are user ids (docs/api.md, "Authorization"): a post belongs to the
 * user_id that created it (PostCreated authorId), a comment to the one that
 * added it (CommentAdded userId); names are display names and two users may
 * share one. Posts and comments written before auth (no owner id) belong to
 * whoever has the owner's name, as the seed's rule had it: the post's author
 * ignoring case, the comment's username exactly.
 *
 * user_id is the token's sub; NULL only for callers without one (it then
 * owns nothing that has an owner id). Borrowed; name never NULL. */
typedef struct post_actor {
    const char *name;
    bool moderator;
    const char *user_id;
} post_actor;

/* SM_OK if actor may act as the post's owner (moderator; the post's
 * author_id when it has one; else the author's name ignoring case), else
 * SM_ERR_FORBIDDEN with `refusal` as the text. */
sm_status post_check_owner(const post_state *p, const post_actor *actor, const char *refusal,
                           sm_error *err);

/* SM_OK if actor may act as the comment's owner (moderator; the comment's
 * user_id when it has one; else its username, exact match), else
 * SM_ERR_FORBIDDEN with `refusal` as the text. */
sm_status post_check_comment_owner(const post_comment *c, const post_actor *actor,
                                   const char *refusal, sm_error *err);

/* The rules for an authenticated actor: as the ones above, with the owner
 * rules of post_actor. actor->name is the username / author written into
 * the event, actor->user_id its authorId (create) / userId (add comment). */
sm_status post_decide_create_as(const char *post_id, const char *message, const post_actor *actor,
                                int64_t now_ms, sm_event *out, sm_error *err);
sm_status post_decide_add_comment_as(const post_state *p, const char *comment,
                                     const post_actor *actor, int64_t now_ms, sm_event *out,
                                     sm_error *err);
sm_status post_decide_edit_message_as(const post_state *p, const char *message,
                                      const post_actor *actor, int64_t now_ms, sm_event *out,
                                      sm_error *err);
sm_status post_decide_edit_comment_as(const post_state *p, const char *comment_id,
                                      const char *comment, const post_actor *actor,
                                      int64_t now_ms, sm_event *out, sm_error *err);
sm_status post_decide_remove_comment_as(const post_state *p, const char *comment_id,
                                        const post_actor *actor, int64_t now_ms, sm_event *out,
                                        sm_error *err);
sm_status post_decide_delete_as(const post_state *p, const post_actor *actor, int64_t now_ms,
                                sm_event *out, sm_error *err);

/* The post's state as JSON (id, author, authorId, message, datePosted, likes, active,
 * version, comments[]): used by point-in-time reads and tests. New ref. */
json_t *post_to_json(const post_state *p);

#endif
