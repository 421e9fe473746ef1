/* dispatcher.c — the command table and the load/decide/append cycle. */
#include "dispatcher.h"

#include "post.h"
#include "post_repo.h"
#include "sm_deadline.h"
#include "sm_hash.h"
#include "sm_log.h"
#include "sm_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef sm_status (*cmd_decide_fn)(const post_state *p, const command *c, int64_t now,
                                   sm_event *out, sm_error *err);

/* The authenticated caller of c, or NULL (auth off: the seed's rules). */
static const post_actor *actor_of(const command *c, post_actor *buf)
{
    if (!c->actor)
        return NULL;
    *buf = (post_actor){.name = c->actor, .moderator = c->moderator, .user_id = c->user_id};
    return buf;
}

/* Stamps the command's metadata on an event it raised: who (the token's
 * sub), the request id and the trace context. On OOM clears ev. */
static sm_status stamp_meta(const command *c, sm_event *ev, sm_error *err)
{
    if (c->actor && c->user_id && !(ev->meta.user_id = strdup(c->user_id))) {
        sm_event_clear(ev);
        return sm_fail(err, SM_ERR_INTERNAL, "out of memory");
    }
    snprintf(ev->meta.request_id, sizeof ev->meta.request_id, "%s",
             c->request_id ? c->request_id : "");
    if (c->traceparent && sm_traceparent_valid(c->traceparent))
        snprintf(ev->meta.traceparent, sizeof ev->meta.traceparent, "%s", c->traceparent);
    return SM_OK;
}

static sm_status decide_edit_message(const post_state *p, const command *c, int64_t now,
                                     sm_event *out, sm_error *err)
{
    post_actor a;
    if (actor_of(c, &a))
        return post_decide_edit_message_as(p, c->message, &a, now, out, err);
    return post_decide_edit_message(p, c->message, now, out, err);
}

static sm_status decide_like(const post_state *p, const command *c, int64_t now, sm_event *out,
                             sm_error *err)
{
    (void)c;
    return post_decide_like(p, now, out, err);
}

static sm_status decide_add_comment(const post_state *p, const command *c, int64_t now,
                                    sm_event *out, sm_error *err)
{
    post_actor a;
    if (actor_of(c, &a))
        return post_decide_add_comment_as(p, c->comment, &a, now, out, err);
    return post_decide_add_comment(p, c->comment, c->username, now, out, err);
}

static sm_status decide_edit_comment(const post_state *p, const command *c, int64_t now,
                                     sm_event *out, sm_error *err)
{
    post_actor a;
    if (actor_of(c, &a))
        return post_decide_edit_comment_as(p, c->comment_id, c->comment, &a, now, out, err);
    return post_decide_edit_comment(p, c->comment_id, c->comment, c->username, now, out, err);
}

static sm_status decide_remove_comment(const post_state *p, const command *c, int64_t now,
                                       sm_event *out, sm_error *err)
{
    post_actor a;
    if (actor_of(c, &a))
        return post_decide_remove_comment_as(p, c->comment_id, &a, now, out, err);
    return post_decide_remove_comment(p, c->comment_id, c->username, now, out, err);
}

static sm_status decide_delete(const post_state *p, const command *c, int64_t now,
                               sm_event *out, sm_error *err)
{
    post_actor a;
    if (actor_of(c, &a))
        return post_decide_delete_as(p, &a, now, out, err);
    return post_decide_delete(p, c->username, now, out, err);
}

/* The command table: one handler per command, and its success text. NewPost
 * has no decide step against existing state (see run_new_post). */
static const struct {
    cmd_decide_fn decide;
    const char *success;
} handlers[CMD_COUNT] = {
    [CMD_NEW_POST] = {NULL, "The post creating request completed successfully!"},
    [CMD_EDIT_MESSAGE] = {decide_edit_message, "The edit message request completed successfully!"},
    [CMD_LIKE_POST] = {decide_like, "Like post request completed successfully!"},
    [CMD_ADD_COMMENT] = {decide_add_comment, "Add comment request completed successfully!"},
    [CMD_EDIT_COMMENT] = {decide_edit_comment, "Edit comment request completed successfully!"},
    [CMD_REMOVE_COMMENT] = {decide_remove_comment,
                            "Remove comment request completed successfully!"},
    [CMD_DELETE_POST] = {decide_delete, "Delete post request completed successfully!"},
};

void cmd_context_init(cmd_context *ctx, es_store *store)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->store = store;
    ctx->now_ms = sm_now_ms;
    ctx->max_attempts = CMD_DEFAULT_ATTEMPTS;
    ctx->budget_ms = CMD_DEFAULT_BUDGET_MS;
    for (int i = 0; i < CMD_LOCK_STRIPES; i++)
        pthread_mutex_init(&ctx->stripes[i], NULL);
}

void cmd_context_destroy(cmd_context *ctx)
{
    for (int i = 0; i < CMD_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&ctx->stripes[i]);
}

sm_status cmd_load_post(es_store *store, const char *post_id, post_state *state, sm_error *err)
{
    post_init(state);
    memcpy(state->id, post_id, sizeof state->id);
    sm_event_list evs = {0};
    es_status es = es_load(store, post_id, 0, 0, &evs, err);
    sm_status st = es == ES_OK ? SM_OK : es_to_sm_status(es);
    for (size_t i = 0; st == SM_OK && i < evs.len; i++)
        st = post_apply(state, &evs.items[i], err);
    sm_event_list_free(&evs);
    if (st != SM_OK) {
        post_free(state);
        memcpy(state->id, post_id, sizeof state->id);
    }
    return st;
}

static pthread_mutex_t *stripe_for(cmd_context *ctx, const char *post_id)
{
    return &ctx->stripes[sm_hash_text(post_id) % CMD_LOCK_STRIPES];
}

/* Sleeps a random 0..2^attempt ms (capped at 64 ms) so that writers from
 * several processes that keep colliding spread out. */
static void backoff(int attempt)
{
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned)attempt * 7919u;
    unsigned cap = 1u << (attempt < 6 ? attempt : 6);
    struct timespec ts = {0, (long)(r % (cap + 1)) * 1000000L};
    nanosleep(&ts, NULL);
}

static sm_status append_one(cmd_context *ctx, const sm_event *ev, int64_t expected,
                            sm_error *err)
{
    es_status es = es_append(ctx->store, ev->aggregate_id, expected, ev, 1, err);
    if (es == ES_OK && ctx->on_appended)
        ctx->on_appended(ctx->on_appended_arg, ev, 1);
    return es == ES_OK ? SM_OK : es_to_sm_status(es);
}

static sm_status run_new_post(cmd_context *ctx, const command *cmd, cmd_result *res,
                              sm_error *err)
{
    sm_event ev;
    post_actor a;
    sm_status st = actor_of(cmd, &a)
                       ? post_decide_create_as(cmd->post_id, cmd->message, &a, ctx->now_ms(),
                                               &ev, err)
                       : post_decide_create(cmd->post_id, cmd->author, cmd->message,
                                            ctx->now_ms(), &ev, err);
    if (st == SM_OK)
        st = stamp_meta(cmd, &ev, err);
    if (st != SM_OK)
        return st;
    st = append_one(ctx, &ev, -1, err);
    res->version = ev.version;
    res->attempts = 1;
    sm_event_clear(&ev);
    return st;
}

/* Takes the post's stripe lock, waiting no longer than the command's
 * deadline: the holder may itself be waiting out a locked store, and the
 * waits of everyone queued behind it would otherwise add up. */
static sm_status lock_stripe(pthread_mutex_t *lock, sm_error *err)
{
    int rc = sm_mutex_lock_until(lock, sm_deadline_get());
    if (rc == ETIMEDOUT)
        return sm_fail(err, SM_ERR_UNAVAILABLE,
                       "The event store did not answer in time for this post; retry.");
    return rc == 0 ? SM_OK : sm_fail(err, SM_ERR_INTERNAL, "stripe lock: error %d", rc);
}

/* One load/decide/append cycle under the post's stripe lock. */
static sm_status attempt(cmd_context *ctx, const command *cmd, cmd_result *res, sm_error *err)
{
    pthread_mutex_t *lock = stripe_for(ctx, cmd->post_id);
    sm_status locked = lock_stripe(lock, err);
    if (locked != SM_OK)
        return locked;
    post_state p;
    sm_status st = ctx->repo ? post_repo_acquire(ctx->repo, cmd->post_id, &p, err)
                             : cmd_load_post(ctx->store, cmd->post_id, &p, err);
    if (st == SM_OK && !post_exists(&p))
        st = sm_fail(err, SM_ERR_NOT_FOUND, "Incorrect post Id provided! %s", cmd->post_id);
    if (st == SM_OK && cmd->if_match >= 0 && cmd->if_match != p.version)
        st = sm_fail(err, SM_ERR_PRECONDITION,
                     "The post is at version %lld, not the version %lld given in If-Match.",
                     (long long)p.version, (long long)cmd->if_match);
    sm_event ev = {0};
    if (st == SM_OK)
        st = handlers[cmd->type].decide(&p, cmd, ctx->now_ms(), &ev, err);
    if (st == SM_OK)
        st = stamp_meta(cmd, &ev, err);
    /* The state stays a true prefix of the stream unless the append hit a
     * conflict (someone else wrote: drop it) or stored ev (fold it in). */
    bool current = st != SM_ERR_CONFLICT;
    if (st == SM_OK) {
        st = append_one(ctx, &ev, p.version, err);
        res->version = ev.version;
        if (ev.type == SM_EV_COMMENT_ADDED)
            memcpy(res->comment_id, ev.comment_id, sizeof res->comment_id);
        sm_error ignored;
        current = st == SM_OK ? post_apply(&p, &ev, &ignored) == SM_OK : st != SM_ERR_CONFLICT;
    }
    sm_event_clear(&ev);
    if (ctx->repo)
        post_repo_release(ctx->repo, &p, current);
    else
        post_free(&p);
    pthread_mutex_unlock(lock);
    return st;
}

static sm_status dispatch(cmd_context *ctx, const command *cmd, cmd_result *res, sm_error *err)
{
    memset(res, 0, sizeof *res);
    if (cmd->type >= CMD_COUNT)
        return sm_fail(err, SM_ERR_INTERNAL, "unknown command type");
    memcpy(res->post_id, cmd->post_id, sizeof res->post_id);
    res->message = handlers[cmd->type].success;
    if (cmd->type == CMD_NEW_POST)
        return run_new_post(ctx, cmd, res, err);
    sm_status st = SM_ERR_CONFLICT;
    for (int i = 1; i <= ctx->max_attempts && sm_mono_ms() < sm_deadline_get(); i++) {
        res->attempts = i;
        st = attempt(ctx, cmd, res, err);
        if (st != SM_ERR_CONFLICT)
            break;
        sm_log(SM_LOG_DEBUG, "command_conflict", "post=%s command=%s attempt=%d", cmd->post_id,
               cmd_name(cmd->type), i);
        if (i < ctx->max_attempts)
            backoff(i);
    }
    if (st == SM_ERR_CONFLICT)
        sm_fail(err, SM_ERR_CONFLICT,
                "The post was changed concurrently; gave up after %d attempts. Retry the request.",
                res->attempts);
    return st;
}

sm_status cmd_dispatch(cmd_context *ctx, const command *cmd, cmd_result *res, sm_error *err)
{
    /* every wait below (stripe lock, pool, store lock) is capped by this */
    sm_deadline_set(sm_mono_ms() + (ctx->budget_ms > 0 ? ctx->budget_ms : CMD_DEFAULT_BUDGET_MS));
    sm_status st = dispatch(ctx, cmd, res, err);
    sm_deadline_set(0);
    return st;
}
