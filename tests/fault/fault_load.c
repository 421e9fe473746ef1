/* SPDX-License-Identifier: Apache-2.0 */
/* fault_load.c — see fault_load.h. */
#include "fault_load.h"

#include "http_client.h"
#include "sm_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FL_MAX_POSTS 4    /* posts a thread works on at once */
#define FL_MAX_COMMENTS 6 /* live comments it remembers per post */
#define FL_MAX_BURST 16   /* one-shot threads of fl_burst */

typedef struct owned_post {
    char id[FL_ID_LEN];
    char comments[FL_MAX_COMMENTS][FL_ID_LEN];
    int ncomments;
} owned_post;

typedef struct fl_thread {
    struct fl_load *l;
    int idx;
    pthread_t tid;
    bool started;
    unsigned rnd;
    fl_op *ops;
    size_t n, cap;
    owned_post posts[FL_MAX_POSTS];
    int nposts;
    long seq;
    unsigned sent;        /* requests sent: picks the port with fl_opts.port2 */
} fl_thread;

struct fl_load {
    fl_opts o;
    char hot[FL_ID_LEN];
    char tag[24];
    atomic_bool stop;
    int64_t t0;
    fl_thread *threads;   /* o.threads load threads, then FL_MAX_BURST one-shots */
    int nburst;
    fl_op *all;
    size_t nall;
};

static const char *const kind_names[FL_KINDS] = {
    [FL_NEW_POST] = "NewPost",
    [FL_EDIT_MESSAGE] = "EditMessage",
    [FL_LIKE] = "LikePost",
    [FL_ADD_COMMENT] = "AddComment",
    [FL_EDIT_COMMENT] = "EditComment",
    [FL_REMOVE_COMMENT] = "RemoveComment",
    [FL_DELETE_POST] = "DeletePost",
};

const char *fl_kind_name(fl_kind k) { return k < FL_KINDS ? kind_names[k] : "?"; }


int64_t fl_elapsed_ms(const fl_load *l) { return sm_mono_ms() - l->t0; }

/* A request about to be sent: what it is, and where the thread's state for
 * it lives (post slot and comment slot, -1 when none). */
typedef struct plan {
    fl_op op;
    const char *method;
    char path[128];
    char body[400];
    int post_slot, comment_slot;
} plan;

static void plan_path(plan *p, const char *method, const char *route, const char *id)
{
    p->method = method;
    snprintf(p->path, sizeof p->path, "/api/v1/%s%s%s", route, id ? "/" : "", id ? id : "");
    p->op.kind = FL_KINDS;
    if (id)
        snprintf(p->op.post_id, sizeof p->op.post_id, "%s", id);
}

static void next_token(fl_thread *t, plan *p)
{
    snprintf(p->op.token, sizeof p->op.token, "%s-t%d-%ld", t->l->tag, t->idx, ++t->seq);
}

/* Chooses the next command from the thread's state: mostly likes and
 * comments on its posts, some edits, removals and deletions, new posts
 * to keep a few alive, and likes on the shared hot post. */
static void choose(fl_thread *t, plan *p)
{
    memset(p, 0, sizeof *p);
    p->post_slot = p->comment_slot = -1;
    p->op.thread = t->idx;
    int r = (int)(rand_r(&t->rnd) % 100);
    if (t->nposts == 0 || (t->nposts < FL_MAX_POSTS && r < 8)) {
        plan_path(p, "POST", "NewPost", NULL);
        p->op.kind = FL_NEW_POST;
        next_token(t, p);
        snprintf(p->body, sizeof p->body, "{\"author\":\"fault-t%d\",\"message\":\"%s\"}", t->idx,
                 p->op.token);
        return;
    }
    if (t->l->hot[0] && r < 20) {
        plan_path(p, "PUT", "LikePost", t->l->hot);
        p->op.kind = FL_LIKE;
        return;
    }
    p->post_slot = (int)(rand_r(&t->rnd) % (unsigned)t->nposts);
    owned_post *post = &t->posts[p->post_slot];
    int nc = post->ncomments;
    int c = nc > 0 ? (int)(rand_r(&t->rnd) % (unsigned)nc) : -1;
    int r2 = (int)(rand_r(&t->rnd) % 100);
    fl_kind k = r2 < 35   ? FL_LIKE
                : r2 < 55 ? (nc < FL_MAX_COMMENTS ? FL_ADD_COMMENT : FL_LIKE)
                : r2 < 70 ? FL_EDIT_MESSAGE
                : r2 < 84 ? (nc > 0 ? FL_EDIT_COMMENT : FL_EDIT_MESSAGE)
                : r2 < 96 ? (nc > 0 ? FL_REMOVE_COMMENT : FL_LIKE)
                          : FL_DELETE_POST;
    switch (k) {
    case FL_LIKE:
        plan_path(p, "PUT", "LikePost", post->id);
        break;
    case FL_ADD_COMMENT:
        plan_path(p, "PUT", "AddComment", post->id);
        next_token(t, p);
        snprintf(p->body, sizeof p->body, "{\"comment\":\"%s\",\"username\":\"user-t%d\"}",
                 p->op.token, t->idx);
        break;
    case FL_EDIT_MESSAGE:
        plan_path(p, "PUT", "EditMessage", post->id);
        next_token(t, p);
        snprintf(p->body, sizeof p->body, "{\"message\":\"%s\"}", p->op.token);
        break;
    case FL_EDIT_COMMENT:
        plan_path(p, "PUT", "EditComment", post->id);
        next_token(t, p);
        p->comment_slot = c;
        snprintf(p->op.comment_id, sizeof p->op.comment_id, "%s", post->comments[c]);
        snprintf(p->body, sizeof p->body,
                 "{\"commentId\":\"%s\",\"comment\":\"%s\",\"username\":\"user-t%d\"}",
                 post->comments[c], p->op.token, t->idx);
        break;
    case FL_REMOVE_COMMENT:
        plan_path(p, "DELETE", "RemoveComment", post->id);
        p->comment_slot = c;
        snprintf(p->op.comment_id, sizeof p->op.comment_id, "%s", post->comments[c]);
        snprintf(p->body, sizeof p->body, "{\"commentId\":\"%s\",\"username\":\"user-t%d\"}",
                 post->comments[c], t->idx);
        break;
    default:
        k = FL_DELETE_POST;
        plan_path(p, "DELETE", "DeletePost", post->id);
        snprintf(p->body, sizeof p->body, "{\"username\":\"FAULT-T%d\"}", t->idx);
        break;
    }
    p->op.kind = k;
}

/* Sends the planned request and records how it ended. */
static void send_plan(fl_thread *t, plan *p)
{
    fl_op *op = &p->op;
    int64_t start = sm_mono_ms();
    op->started_ms = start - t->l->t0;
    http_resp r;
    size_t blen = strlen(p->body);
    int port = t->l->o.port2 > 0 && (t->sent++ & 1) ? t->l->o.port2 : t->l->o.port;
    http_call_result rc =
        http_call_ex(port, p->method, p->path,
                     blen ? "Content-Type: application/json\r\n" : "", p->body, blen,
                     t->l->o.timeout_ms, &r);
    op->latency_ms = sm_mono_ms() - start;
    op->version = -1;
    if (rc == HTTP_CALL_NOT_SENT) {
        op->outcome = FL_NOT_SENT;
        return;
    }
    if (rc != HTTP_CALL_OK) {
        op->outcome = FL_UNKNOWN;
        op->timed_out = rc == HTTP_CALL_TIMEOUT;
        return;
    }
    char buf[64];
    op->status = r.status;
    op->retry_after = http_resp_header(&r, "Retry-After", buf, sizeof buf) != NULL;
    if (r.status >= 200 && r.status < 300) {
        op->outcome = FL_ACCEPTED;
        json_t *v = json_object_get(r.json, "version");
        op->version = json_is_integer(v) ? json_integer_value(v) : -1;
        const char *id = http_resp_str(&r, "id");
        if (op->kind == FL_NEW_POST && id)
            snprintf(op->post_id, sizeof op->post_id, "%s", id);
        const char *cid = http_resp_str(&r, "commentId");
        if (op->kind == FL_ADD_COMMENT && cid)
            snprintf(op->comment_id, sizeof op->comment_id, "%s", cid);
    } else {
        op->outcome = FL_REJECTED;
        snprintf(op->body, sizeof op->body, "%s", r.body ? r.body : "");
    }
    http_resp_free(&r);
}

static void forget_post(fl_thread *t, int slot)
{
    t->posts[slot] = t->posts[--t->nposts];
}

/* Keeps the thread's view of its posts in line with what it knows was
 * written. After an unknown outcome it errs towards not using the thing
 * again, so that its later commands stay valid either way. */
static void update_state(fl_thread *t, const plan *p)
{
    const fl_op *op = &p->op;
    owned_post *post = p->post_slot >= 0 ? &t->posts[p->post_slot] : NULL;
    switch (op->kind) {
    case FL_NEW_POST:
        if (op->outcome == FL_ACCEPTED && op->post_id[0] && t->nposts < FL_MAX_POSTS) {
            memset(&t->posts[t->nposts], 0, sizeof t->posts[0]);
            memcpy(t->posts[t->nposts++].id, op->post_id, FL_ID_LEN);
        }
        break;
    case FL_ADD_COMMENT:
        if (op->outcome == FL_ACCEPTED && op->comment_id[0] && post->ncomments < FL_MAX_COMMENTS)
            memcpy(post->comments[post->ncomments++], op->comment_id, FL_ID_LEN);
        break;
    case FL_REMOVE_COMMENT:
        if (op->outcome == FL_ACCEPTED || op->outcome == FL_UNKNOWN)
            memmove(post->comments[p->comment_slot], post->comments[--post->ncomments],
                   FL_ID_LEN);
        break;
    case FL_DELETE_POST:
        if (op->outcome != FL_NOT_SENT)
            forget_post(t, p->post_slot);
        break;
    default:
        break;
    }
}

static bool record(fl_thread *t, const fl_op *op)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        fl_op *ops = realloc(t->ops, cap * sizeof *ops);
        if (!ops)
            return false;
        t->ops = ops;
        t->cap = cap;
    }
    t->ops[t->n++] = *op;
    return true;
}

static void *burst_main(void *arg)
{
    fl_thread *t = arg;
    plan p;
    memset(&p, 0, sizeof p);
    p.post_slot = p.comment_slot = -1;
    p.op.thread = t->idx;
    plan_path(&p, "PUT", "LikePost", t->l->hot);
    p.op.kind = FL_LIKE;
    send_plan(t, &p);
    record(t, &p.op);
    return NULL;
}

static void *thread_main(void *arg)
{
    fl_thread *t = arg;
    while (!atomic_load(&t->l->stop)) {
        plan p;
        choose(t, &p);
        send_plan(t, &p);
        if (!record(t, &p.op))
            break;
        update_state(t, &p);
        /* a refused connection means the server is down: do not spin */
        sm_sleep_ms(p.op.outcome == FL_NOT_SENT ? 50 : t->l->o.pace_ms);
    }
    return NULL;
}

/* The shared post, created by thread 0's state before the threads start
 * (and recorded like any command, so the checker accounts for it). */
static bool create_hot_post(fl_thread *t)
{
    plan p;
    memset(&p, 0, sizeof p);
    p.post_slot = p.comment_slot = -1;
    plan_path(&p, "POST", "NewPost", NULL);
    p.op.kind = FL_NEW_POST;
    next_token(t, &p);
    snprintf(p.body, sizeof p.body, "{\"author\":\"everyone\",\"message\":\"%s\"}",
             p.op.token);
    send_plan(t, &p);
    if (p.op.outcome != FL_ACCEPTED || !p.op.post_id[0] || !record(t, &p.op))
        return false;
    memcpy(t->l->hot, p.op.post_id, FL_ID_LEN);
    return true;
}

fl_load *fl_start(const fl_opts *opts)
{
    fl_load *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->o = *opts;
    if (l->o.threads <= 0)
        l->o.threads = 4;
    if (l->o.pace_ms <= 0)
        l->o.pace_ms = 5;
    if (l->o.timeout_ms <= 0)
        l->o.timeout_ms = 30000;
    snprintf(l->tag, sizeof l->tag, "%s", opts->tag ? opts->tag : "load");
    l->o.tag = l->tag;
    atomic_init(&l->stop, false);
    l->t0 = sm_mono_ms();
    l->threads = calloc((size_t)(l->o.threads + FL_MAX_BURST), sizeof *l->threads);
    if (!l->threads) {
        free(l);
        return NULL;
    }
    for (int i = 0; i < l->o.threads; i++) {
        fl_thread *t = &l->threads[i];
        t->l = l;
        t->idx = i;
        t->rnd = (unsigned)(l->t0 * 31 + i * 7919);
    }
    if (l->o.hot_post && !create_hot_post(&l->threads[0])) {
        fl_free(l);
        return NULL;
    }
    for (int i = 0; i < l->o.threads; i++) {
        fl_thread *t = &l->threads[i];
        t->started = pthread_create(&t->tid, NULL, thread_main, t) == 0;
        if (!t->started) {
            fl_stop(l);
            fl_free(l);
            return NULL;
        }
    }
    return l;
}

int fl_burst(fl_load *l, int n)
{
    int started = 0;
    for (; started < n && l->hot[0] && l->nburst < FL_MAX_BURST; started++) {
        fl_thread *t = &l->threads[l->o.threads + l->nburst];
        t->l = l;
        t->idx = 100 + l->nburst;
        if (pthread_create(&t->tid, NULL, burst_main, t) != 0)
            break;
        t->started = true;
        l->nburst++;
    }
    return started;
}

void fl_stop(fl_load *l)
{
    atomic_store(&l->stop, true);
    size_t total = 0;
    for (int i = 0; i < l->o.threads + l->nburst; i++) {
        if (l->threads[i].started)
            pthread_join(l->threads[i].tid, NULL);
        l->threads[i].started = false;
        total += l->threads[i].n;
    }
    free(l->all);
    l->all = calloc(total ? total : 1, sizeof *l->all);
    l->nall = 0;
    for (int i = 0; l->all && i < l->o.threads + l->nburst; i++) {
        memcpy(l->all + l->nall, l->threads[i].ops, l->threads[i].n * sizeof *l->all);
        l->nall += l->threads[i].n;
    }
}

fl_op *fl_ops(fl_load *l, size_t *n)
{
    *n = l->nall;
    return l->all;
}

void fl_free(fl_load *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->o.threads + l->nburst; i++)
        free(l->threads[i].ops);
    free(l->threads);
    free(l->all);
    free(l);
}
