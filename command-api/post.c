/* SPDX-License-Identifier: Apache-2.0 */
/* post.c — the Post aggregate (see post.h). The texts below are part of the
 * public contract (docs/api.md): clients of the original match on them. */
#include "post.h"

#include "sm_json.h"
#include "sm_text.h"
#include "sm_time.h"

#include <stdlib.h>
#include <string.h>

#define MSG_BLANK_MESSAGE \
    "The value of message cannot be null or empty. Please provide a valid message!"
#define MSG_BLANK_COMMENT \
    "The value of comment cannot be null or empty. Please provide a valid comment!"
#define MSG_BLANK_AUTHOR \
    "The value of author cannot be null or empty. Please provide a valid author!"
#define MSG_BLANK_USERNAME \
    "The value of username cannot be null or empty. Please provide a valid username!"
#define MSG_NOT_COMMENTER \
    "You are not allowed to edit a comment that was made by another user!"
#define MSG_NOT_POST_AUTHOR \
    "You are not allowed to delete a post that was made by somebody else!"
#define MSG_NOT_POST_EDITOR \
    "You are not allowed to edit a post that was made by somebody else!"

void post_init(post_state *p)
{
    memset(p, 0, sizeof *p);
    p->version = -1;
}

static void comment_free(post_comment *c)
{
    free(c->text);
    free(c->username);
    free(c->user_id);
}

void post_free(post_state *p)
{
    free(p->author);
    free(p->author_id);
    free(p->message);
    for (size_t i = 0; i < p->ncomments; i++)
        comment_free(&p->comments[i]);
    free(p->comments);
    post_init(p);
}

bool post_exists(const post_state *p) { return p->version >= 0; }

const post_comment *post_find_comment(const post_state *p, const char *comment_id)
{
    for (size_t i = 0; i < p->ncomments; i++)
        if (strcmp(p->comments[i].id, comment_id) == 0)
            return &p->comments[i];
    return NULL;
}

/* Replaces *dst with a copy of src; false on OOM (dst unchanged). */
static bool replace_str(char **dst, const char *src)
{
    char *copy = strdup(src ? src : "");
    if (!copy)
        return false;
    free(*dst);
    *dst = copy;
    return true;
}

/* As replace_str, but NULL stays NULL (owner ids of events without one). */
static bool replace_opt(char **dst, const char *src)
{
    if (!src) {
        free(*dst);
        *dst = NULL;
        return true;
    }
    return replace_str(dst, src);
}

static bool add_comment(post_state *p, const sm_event *ev)
{
    if (p->ncomments == p->comments_cap) {
        size_t cap = p->comments_cap ? p->comments_cap * 2 : 4;
        post_comment *c = realloc(p->comments, cap * sizeof *c);
        if (!c)
            return false;
        p->comments = c;
        p->comments_cap = cap;
    }
    post_comment c = {0};
    memcpy(c.id, ev->comment_id, sizeof c.id);
    c.date_ms = ev->at_ms;
    if (!replace_str(&c.text, ev->comment) || !replace_str(&c.username, ev->username) ||
        !replace_opt(&c.user_id, ev->user_id)) {
        comment_free(&c);
        return false;
    }
    p->comments[p->ncomments++] = c;
    return true;
}

static void remove_comment(post_state *p, const char *id)
{
    post_comment *c = (post_comment *)post_find_comment(p, id);
    if (!c)
        return;
    comment_free(c);
    size_t i = (size_t)(c - p->comments);
    memmove(c, c + 1, (p->ncomments - i - 1) * sizeof *c);
    p->ncomments--;
}

/* Applies the state change of ev; false only on OOM. Events that refer to a
 * comment that is not there are history we cannot change: they are ignored
 * rather than treated as corruption. */
static bool apply_payload(post_state *p, const sm_event *ev)
{
    post_comment *c;
    switch (ev->type) {
    case SM_EV_POST_CREATED:
        p->active = true;
        p->date_posted_ms = ev->at_ms;
        p->likes = 0;
        return replace_str(&p->author, ev->author) && replace_str(&p->message, ev->message) &&
               replace_opt(&p->author_id, ev->author_id);
    case SM_EV_MESSAGE_UPDATED:
        return replace_str(&p->message, ev->message);
    case SM_EV_POST_LIKED:
        p->likes++;
        return true;
    case SM_EV_COMMENT_ADDED:
        return add_comment(p, ev);
    case SM_EV_COMMENT_UPDATED:
        c = (post_comment *)post_find_comment(p, ev->comment_id);
        if (!c)
            return true;
        c->edited = true;
        c->edited_at_ms = ev->at_ms;
        return replace_str(&c->text, ev->comment);
    case SM_EV_COMMENT_REMOVED:
        remove_comment(p, ev->comment_id);
        return true;
    case SM_EV_POST_REMOVED:
        p->active = false;
        return true;
    case SM_EV_NONE:
        break;
    }
    return false;
}

sm_status post_apply(post_state *p, const sm_event *ev, sm_error *err)
{
    if (ev->version != p->version + 1)
        return sm_fail(err, SM_ERR_INTERNAL, "stream %s: event version %lld after %lld",
                       ev->aggregate_id, (long long)ev->version, (long long)p->version);
    if (p->version >= 0 && strcmp(p->id, ev->aggregate_id) != 0)
        return sm_fail(err, SM_ERR_INTERNAL, "event of stream %s applied to %s",
                       ev->aggregate_id, p->id);
    if ((ev->version == 0) != (ev->type == SM_EV_POST_CREATED))
        return sm_fail(err, SM_ERR_INTERNAL, "stream %s: %s at version %lld", ev->aggregate_id,
                       sm_event_type_name(ev->type) ? sm_event_type_name(ev->type) : "?",
                       (long long)ev->version);
    if (!apply_payload(p, ev))
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory applying event");
    memcpy(p->id, ev->aggregate_id, sizeof p->id);
    p->version = ev->version;
    return SM_OK;
}

/* Starts an event of the given type for the post; fills ids and stamps. */
static sm_status new_event(const char *post_id, int64_t version, sm_event_type type,
                           int64_t now_ms, sm_event *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!sm_uuid_new_v7(out->event_id))
        return sm_fail(err, SM_ERR_INTERNAL, "no randomness for an event id");
    memcpy(out->aggregate_id, post_id, sizeof out->aggregate_id);
    out->type = type;
    out->version = version;
    out->timestamp_ms = now_ms;
    out->at_ms = now_ms;
    return SM_OK;
}

/* Copies the payload strings; on OOM clears the event. */
static sm_status set_texts(sm_event *out, const char *message, const char *comment,
                           const char *username, const char *author, sm_error *err)
{
    if ((message && !(out->message = strdup(message))) ||
        (comment && !(out->comment = strdup(comment))) ||
        (username && !(out->username = strdup(username))) ||
        (author && !(out->author = strdup(author)))) {
        sm_event_clear(out);
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    }
    return SM_OK;
}

/* Records the owner id (authorId / userId) of a create / add comment; on OOM
 * clears the event. id NULL: nothing (auth off). */
static sm_status set_owner_id(sm_event *out, char **field, const char *id, sm_error *err)
{
    if (id && !(*field = strdup(id))) {
        sm_event_clear(out);
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    }
    return SM_OK;
}

static sm_status require_post(const post_state *p, sm_error *err)
{
    if (!post_exists(p))
        return sm_fail(err, SM_ERR_NOT_FOUND, "Incorrect post Id provided! %s", p->id);
    return SM_OK;
}

sm_status post_decide_create(const char *post_id, const char *author, const char *message,
                             int64_t now_ms, sm_event *out, sm_error *err)
{
    if (sm_text_blank(author))
        return sm_fail(err, SM_ERR_RULE, MSG_BLANK_AUTHOR);
    if (sm_text_blank(message))
        return sm_fail(err, SM_ERR_RULE, MSG_BLANK_MESSAGE);
    sm_status st = new_event(post_id, 0, SM_EV_POST_CREATED, now_ms, out, err);
    return st ? st : set_texts(out, message, NULL, NULL, author, err);
}

sm_status post_decide_create_as(const char *post_id, const char *message, const post_actor *actor,
                                int64_t now_ms, sm_event *out, sm_error *err)
{
    sm_status st = post_decide_create(post_id, actor->name, message, now_ms, out, err);
    return st ? st : set_owner_id(out, &out->author_id, actor->user_id, err);
}

sm_status post_decide_edit_message(const post_state *p, const char *message, int64_t now_ms,
                                   sm_event *out, sm_error *err)
{
    sm_status st = require_post(p, err);
    if (st)
        return st;
    if (!p->active)
        return sm_fail(err, SM_ERR_RULE, "You cannot edit the message of an inactive post!");
    if (sm_text_blank(message))
        return sm_fail(err, SM_ERR_RULE, MSG_BLANK_MESSAGE);
    st = new_event(p->id, p->version + 1, SM_EV_MESSAGE_UPDATED, now_ms, out, err);
    return st ? st : set_texts(out, message, NULL, NULL, NULL, err);
}

sm_status post_decide_like(const post_state *p, int64_t now_ms, sm_event *out, sm_error *err)
{
    sm_status st = require_post(p, err);
    if (st)
        return st;
    if (!p->active)
        return sm_fail(err, SM_ERR_RULE, "You cannot like an inactive post!");
    return new_event(p->id, p->version + 1, SM_EV_POST_LIKED, now_ms, out, err);
}

sm_status post_decide_add_comment(const post_state *p, const char *comment,
                                  const char *username, int64_t now_ms, sm_event *out,
                                  sm_error *err)
{
    sm_status st = require_post(p, err);
    if (st)
        return st;
    if (!p->active)
        return sm_fail(err, SM_ERR_RULE, "You cannot add a comment to an inactive post!");
    if (sm_text_blank(comment))
        return sm_fail(err, SM_ERR_RULE, MSG_BLANK_COMMENT);
    if (sm_text_blank(username))
        return sm_fail(err, SM_ERR_RULE, MSG_BLANK_USERNAME);
    st = new_event(p->id, p->version + 1, SM_EV_COMMENT_ADDED, now_ms, out, err);
    if (st == SM_OK && !sm_uuid_new_v7(out->comment_id)) {
        sm_event_clear(out);
        return sm_fail(err, SM_ERR_INTERNAL, "no randomness for a comment id");
    }
    return st ? st : set_texts(out, NULL, comment, username, NULL, err);
}

sm_status post_decide_add_comment_as(const post_state *p, const char *comment,
                                     const post_actor *actor, int64_t now_ms, sm_event *out,
                                     sm_error *err)
{
    sm_status st = post_decide_add_comment(p, comment, actor->name, now_ms, out, err);
    return st ? st : set_owner_id(out, &out->user_id, actor->user_id, err);
}

/* Shared checks of edit and remove: the comment exists and is the caller's.
 * actor NULL: the seed's rule on the body's username, exact match (400);
 * else post_check_comment_owner (403, moderators pass). */
static sm_status check_commenter(const post_state *p, const char *comment_id,
                                 const char *username, const post_actor *actor, sm_error *err)
{
    const post_comment *c = post_find_comment(p, comment_id);
    if (!c)
        return sm_fail(err, SM_ERR_NOT_FOUND, "Comment not found! %s", comment_id);
    if (actor)
        return post_check_comment_owner(c, actor, MSG_NOT_COMMENTER, err);
    if (strcmp(c->username, username ? username : "") != 0)
        return sm_fail(err, SM_ERR_RULE, MSG_NOT_COMMENTER);
    return SM_OK;
}

static sm_status edit_comment(const post_state *p, const char *comment_id, const char *comment,
                              const char *username, const post_actor *actor, int64_t now_ms,
                              sm_event *out, sm_error *err)
{
    sm_status st = require_post(p, err);
    if (st)
        return st;
    if (!p->active)
        return sm_fail(err, SM_ERR_RULE, "You cannot edit a comment to an inactive post!");
    if ((st = check_commenter(p, comment_id, username, actor, err)))
        return st;
    if (sm_text_blank(comment))
        return sm_fail(err, SM_ERR_RULE, MSG_BLANK_COMMENT);
    st = new_event(p->id, p->version + 1, SM_EV_COMMENT_UPDATED, now_ms, out, err);
    if (st == SM_OK)
        memcpy(out->comment_id, post_find_comment(p, comment_id)->id, sizeof out->comment_id);
    return st ? st : set_texts(out, NULL, comment, username, NULL, err);
}

sm_status post_decide_edit_comment(const post_state *p, const char *comment_id,
                                   const char *comment, const char *username, int64_t now_ms,
                                   sm_event *out, sm_error *err)
{
    return edit_comment(p, comment_id, comment, username, NULL, now_ms, out, err);
}

sm_status post_decide_edit_comment_as(const post_state *p, const char *comment_id,
                                      const char *comment, const post_actor *actor,
                                      int64_t now_ms, sm_event *out, sm_error *err)
{
    return edit_comment(p, comment_id, comment, actor->name, actor, now_ms, out, err);
}

static sm_status remove_comment_rule(const post_state *p, const char *comment_id,
                                     const char *username, const post_actor *actor,
                                     int64_t now_ms, sm_event *out, sm_error *err)
{
    sm_status st = require_post(p, err);
    if (st)
        return st;
    if (!p->active)
        return sm_fail(err, SM_ERR_RULE, "You cannot remove a comment from an inactive post!");
    /* The original says "edit" here too; clients match on the text, so the
     * copy-paste is kept (docs/api.md lists it). */
    if ((st = check_commenter(p, comment_id, username, actor, err)))
        return st;
    st = new_event(p->id, p->version + 1, SM_EV_COMMENT_REMOVED, now_ms, out, err);
    if (st == SM_OK)
        memcpy(out->comment_id, post_find_comment(p, comment_id)->id, sizeof out->comment_id);
    return st;
}

sm_status post_decide_remove_comment(const post_state *p, const char *comment_id,
                                     const char *username, int64_t now_ms, sm_event *out,
                                     sm_error *err)
{
    return remove_comment_rule(p, comment_id, username, NULL, now_ms, out, err);
}

sm_status post_decide_remove_comment_as(const post_state *p, const char *comment_id,
                                        const post_actor *actor, int64_t now_ms, sm_event *out,
                                        sm_error *err)
{
    return remove_comment_rule(p, comment_id, actor->name, actor, now_ms, out, err);
}

sm_status post_check_owner(const post_state *p, const post_actor *actor, const char *refusal,
                           sm_error *err)
{
    bool owner = p->author_id ? actor->user_id && strcmp(p->author_id, actor->user_id) == 0
                              : p->author && sm_text_equal_ci(p->author, actor->name);
    if (actor->moderator || owner)
        return SM_OK;
    return sm_fail(err, SM_ERR_FORBIDDEN, "%s", refusal);
}

sm_status post_check_comment_owner(const post_comment *c, const post_actor *actor,
                                   const char *refusal, sm_error *err)
{
    /* an owner id decides alone: a name is only a display name */
    bool owner = c->user_id ? actor->user_id && strcmp(c->user_id, actor->user_id) == 0
                            : c->username && strcmp(c->username, actor->name) == 0;
    if (actor->moderator || owner)
        return SM_OK;
    return sm_fail(err, SM_ERR_FORBIDDEN, "%s", refusal);
}

static sm_status delete_rule(const post_state *p, const char *username, const post_actor *actor,
                             int64_t now_ms, sm_event *out, sm_error *err)
{
    sm_status st = require_post(p, err);
    if (st)
        return st;
    if (!p->active)
        return sm_fail(err, SM_ERR_RULE, "The post has been already removed!");
    if (actor)
        st = post_check_owner(p, actor, MSG_NOT_POST_AUTHOR, err);
    else if (!username || !sm_text_equal_ci(p->author, username))
        st = sm_fail(err, SM_ERR_RULE, MSG_NOT_POST_AUTHOR);
    return st ? st : new_event(p->id, p->version + 1, SM_EV_POST_REMOVED, now_ms, out, err);
}

sm_status post_decide_delete(const post_state *p, const char *username, int64_t now_ms,
                             sm_event *out, sm_error *err)
{
    return delete_rule(p, username, NULL, now_ms, out, err);
}

sm_status post_decide_delete_as(const post_state *p, const post_actor *actor, int64_t now_ms,
                                sm_event *out, sm_error *err)
{
    return delete_rule(p, actor->name, actor, now_ms, out, err);
}

sm_status post_decide_edit_message_as(const post_state *p, const char *message,
                                      const post_actor *actor, int64_t now_ms, sm_event *out,
                                      sm_error *err)
{
    sm_status st = require_post(p, err);
    if (st == SM_OK && p->active)
        st = post_check_owner(p, actor, MSG_NOT_POST_EDITOR, err);
    return st ? st : post_decide_edit_message(p, message, now_ms, out, err);
}

json_t *post_to_json(const post_state *p)
{
    json_t *comments = json_array();
    for (size_t i = 0; i < p->ncomments; i++) {
        const post_comment *c = &p->comments[i];
        json_array_append_new(comments,
                              sm_json_comment(c->id, p->id, c->username, c->user_id, c->text,
                                              c->date_ms, c->edited, c->edited_at_ms));
    }
    return sm_json_post(p->id, p->author, p->author_id, p->message, p->date_posted_ms, p->likes,
                        p->active, p->version, comments);
}
