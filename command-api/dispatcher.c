/* SPDX-License-Identifier: Apache-2.0 */
/* dispatcher.c — the command table and the load/decide/append cycle, run
 * in batches per post (dispatcher.h). */
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
    ctx->max_batch = CMD_MAX_BATCH;
    for (int i = 0; i < CMD_LOCK_STRIPES; i++) {
        pthread_mutex_init(&ctx->stripes[i].mu, NULL);
        sm_cond_init(&ctx->stripes[i].changed);
    }
}

void cmd_context_destroy(cmd_context *ctx)
{
    for (int i = 0; i < CMD_LOCK_STRIPES; i++) {
        pthread_cond_destroy(&ctx->stripes[i].changed);
        pthread_mutex_destroy(&ctx->stripes[i].mu);
    }
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

/* ---- hot posts: the stripe queue and its batches -------------------------
 * (the contract is in dispatcher.h). A command queues on its stripe; the
 * first in line, when no batch is running, leads: it takes the commands
 * queued behind it for the same post, runs them as one batch and hands each
 * its outcome. Commands for other posts that share the stripe stay queued
 * in their order and lead the next batches. */

/* A command waiting on its stripe, on its own thread's stack. The leader of
 * the batch that takes it writes st, *res and *err, then sets done under
 * the stripe's mu; after that the leader never touches it again. */
typedef struct cmd_waiter {
    const command *cmd;
    cmd_result *res;
    sm_error *err;
    int64_t deadline;  /* sm_mono_ms instant; 0: none */
    sm_status st;
    bool pending;      /* its answer depends on the batch's append */
    bool taken, done;
    struct cmd_waiter *next;
} cmd_waiter;

static cmd_stripe *stripe_for(cmd_context *ctx, const char *post_id)
{
    return &ctx->stripes[sm_hash_text(post_id) % CMD_LOCK_STRIPES];
}

/* Locks the stripe's mu, waiting no longer than the command's deadline
 * (it is held only briefly, but a test or a stuck thread may hold it). */
static sm_status lock_stripe(pthread_mutex_t *lock, sm_error *err)
{
    int rc = sm_mutex_lock_until(lock, sm_deadline_get());
    if (rc == ETIMEDOUT)
        return sm_fail(err, SM_ERR_UNAVAILABLE,
                       "The event store did not answer in time for this post; retry.");
    return rc == 0 ? SM_OK : sm_fail(err, SM_ERR_INTERNAL, "stripe lock: error %d", rc);
}

static void unlink_waiter(cmd_stripe *s, cmd_waiter *w)
{
    cmd_waiter *prev = NULL;
    for (cmd_waiter *it = s->head; it; prev = it, it = it->next) {
        if (it != w)
            continue;
        if (prev)
            prev->next = w->next;
        else
            s->head = w->next;
        if (s->tail == w)
            s->tail = prev;
        w->next = NULL;
        return;
    }
}

/* Takes the leader (the queue's head) and up to limit - 1 commands queued
 * after it for the same post, in queue order, into out. Under s->mu. One
 * whose deadline has passed is left to leave the queue with its 503: taken,
 * it would make the whole batch give up on the store at once. */
static size_t take_batch(cmd_stripe *s, cmd_waiter *leader, cmd_waiter **out, size_t limit)
{
    unlink_waiter(s, leader);
    leader->taken = true;
    out[0] = leader;
    size_t n = 1;
    int64_t now = sm_mono_ms();
    cmd_waiter *it = s->head;
    while (it && n < limit) {
        cmd_waiter *next = it->next;
        bool expired = it->deadline > 0 && it->deadline <= now;
        if (!expired && strcmp(it->cmd->post_id, leader->cmd->post_id) == 0) {
            unlink_waiter(s, it);
            it->taken = true;
            out[n++] = it;
        }
        it = next;
    }
    return n;
}

/* The checks and the rule of one command against p, and its event in *ev
 * (stamped with the command's metadata). Nothing is changed on failure. */
static sm_status decide_one(cmd_context *ctx, const post_state *p, const command *cmd,
                            sm_event *ev, sm_error *err)
{
    if (!post_exists(p))
        return sm_fail(err, SM_ERR_NOT_FOUND, "Incorrect post Id provided! %s", cmd->post_id);
    if (cmd->if_match >= 0 && cmd->if_match != p->version)
        return sm_fail(err, SM_ERR_PRECONDITION,
                       "The post is at version %lld, not the version %lld given in If-Match.",
                       (long long)p->version, (long long)cmd->if_match);
    sm_status st = handlers[cmd->type].decide(p, cmd, ctx->now_ms(), ev, err);
    return st == SM_OK ? stamp_meta(cmd, ev, err) : st;
}

/* Decides m[0..n) in order against p, folding each accepted event into p
 * so the next command sees it; the events go to evs (the accepted ones'
 * versions and comment ids to their results). Returns how many. */
static size_t decide_batch(cmd_context *ctx, post_state *p, cmd_waiter **m, size_t n,
                           sm_event *evs)
{
    size_t nev = 0;
    for (size_t i = 0; i < n; i++) {
        sm_event *ev = &evs[nev];
        m[i]->pending = nev > 0; /* decided on events not stored yet */
        sm_status st = decide_one(ctx, p, m[i]->cmd, ev, m[i]->err);
        if (st == SM_OK && (st = post_apply(p, ev, m[i]->err)) != SM_OK)
            sm_event_clear(ev); /* p is unchanged: the next command is decided as if
                                 * this one had been refused */
        m[i]->st = st;
        if (st != SM_OK)
            continue;
        m[i]->pending = true;
        m[i]->res->version = ev->version;
        if (ev->type == SM_EV_COMMENT_ADDED)
            memcpy(m[i]->res->comment_id, ev->comment_id, sizeof m[i]->res->comment_id);
        nev++;
    }
    return nev;
}

/* One batch: load the post once, decide every member, append the accepted
 * events in one call. Fills each member's st (and *err on failure). The
 * thread's deadline is the earliest of the members' meanwhile, so no member
 * waits for the store past its own. */
static void run_batch(cmd_context *ctx, cmd_waiter **m, size_t n)
{
    const char *post_id = m[0]->cmd->post_id;
    int64_t own = sm_deadline_get(), deadline = own;
    for (size_t i = 0; i < n; i++)
        if (m[i]->deadline > 0 && (deadline == 0 || m[i]->deadline < deadline))
            deadline = m[i]->deadline;
    sm_deadline_set(deadline);
    post_state p;
    sm_error lerr;
    sm_event *evs = calloc(n, sizeof *evs);
    sm_status st = !evs ? sm_fail(&lerr, SM_ERR_INTERNAL, "out of memory")
                   : ctx->repo ? post_repo_acquire(ctx->repo, post_id, &p, &lerr)
                               : cmd_load_post(ctx->store, post_id, &p, &lerr);
    if (st != SM_OK) {
        for (size_t i = 0; i < n; i++) {
            m[i]->st = st;
            *m[i]->err = lerr;
        }
        free(evs);
        sm_deadline_set(own);
        return;
    }
    int64_t base = p.version;
    size_t nev = decide_batch(ctx, &p, m, n, evs);
    bool current = true;
    if (nev > 0) {
        es_status es = es_append(ctx->store, post_id, base, evs, nev, &lerr);
        if (es == ES_OK && ctx->on_appended)
            ctx->on_appended(ctx->on_appended_arg, evs, nev);
        /* p holds the batch's events: a true prefix of the stream only if they were stored */
        current = es == ES_OK;
        for (size_t i = 0; i < n && es != ES_OK; i++) {
            if (!m[i]->pending)
                continue;
            m[i]->st = es_to_sm_status(es);
            *m[i]->err = lerr;
        }
    }
    for (size_t i = 0; i < nev; i++)
        sm_event_clear(&evs[i]);
    free(evs);
    if (ctx->repo)
        post_repo_release_from(ctx->repo, &p, base, current);
    else
        post_free(&p);
    sm_deadline_set(own);
}

/* One load/decide/append cycle for cmd: queued on its stripe, then either
 * taken into another command's batch or leading one of its own. */
static sm_status attempt(cmd_context *ctx, const command *cmd, cmd_result *res, sm_error *err)
{
    cmd_stripe *s = stripe_for(ctx, cmd->post_id);
    int64_t deadline = sm_deadline_get();
    sm_status locked = lock_stripe(&s->mu, err);
    if (locked != SM_OK)
        return locked;
    cmd_waiter w = {.cmd = cmd, .res = res, .err = err, .deadline = deadline};
    if (s->tail)
        s->tail->next = &w;
    else
        s->head = &w;
    s->tail = &w;
    while (!w.done && !(s->head == &w && !s->busy)) {
        /* once taken, its write may commit: wait for the batch whatever the time */
        if (w.taken || deadline == 0) {
            pthread_cond_wait(&s->changed, &s->mu);
            continue;
        }
        if (sm_cond_wait_until(&s->changed, &s->mu, deadline) == ETIMEDOUT && !w.taken &&
            !w.done) {
            unlink_waiter(s, &w);
            pthread_cond_broadcast(&s->changed); /* the next in line may lead now */
            pthread_mutex_unlock(&s->mu);
            return sm_fail(err, SM_ERR_UNAVAILABLE,
                           "The event store did not answer in time for this post; retry.");
        }
    }
    if (w.done) {
        pthread_mutex_unlock(&s->mu);
        return w.st;
    }
    s->busy = true;
    cmd_waiter *batch[CMD_MAX_BATCH];
    int limit = ctx->max_batch < 1 ? 1 : ctx->max_batch > CMD_MAX_BATCH ? CMD_MAX_BATCH
                                                                        : ctx->max_batch;
    size_t n = take_batch(s, &w, batch, (size_t)limit);
    pthread_mutex_unlock(&s->mu);
    run_batch(ctx, batch, n);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        batch[i]->done = true; /* from here on, members may return: their frames go */
    s->busy = false;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    return w.st;
}

int cmd_queued(cmd_context *ctx, const char *post_id)
{
    cmd_stripe *s = stripe_for(ctx, post_id);
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (cmd_waiter *it = s->head; it; it = it->next)
        n += strcmp(it->cmd->post_id, post_id) == 0;
    pthread_mutex_unlock(&s->mu);
    return n;
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
