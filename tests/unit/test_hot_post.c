/* SPDX-License-Identifier: Apache-2.0 */
/* test_hot_post.c — commands on one post in batches (dispatcher.h, "hot
 * posts"): the commands queued behind a leader are decided in order against
 * one state and appended in one call, each with its own version and its
 * own answer, against the in-memory store (no I/O).
 *
 * To know what a batch holds, a test holds the store's appends at a gate
 * (mem_store_hold_appends): the first command leads a batch of one and
 * waits there; the commands started next queue behind it, one at a time
 * and in a known order (cmd_queued); opening the gate lets the leader
 * finish, and the next in line takes all of them as one batch. */
#include "dispatcher.h"
#include "mem_store.h"
#include "post.h"
#include "post_repo.h"
#include "sm_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_TRIES 20000 /* x 1 ms: a stuck test fails instead of hanging */

typedef struct fixture {
    es_store *store;
    mem_store_ctl *ctl;
    cmd_context ctx;
    sm_uuid_str id; /* a post by alice, at version 0 */
} fixture;

typedef struct job {
    fixture *f;
    command cmd;
    cmd_result res;
    sm_error err;
    sm_status st;
    pthread_t thread;
} job;

static command make_cmd(cmd_type type, const char *post_id)
{
    command c = {.type = type, .if_match = CMD_NO_IF_MATCH};
    if (post_id)
        strcpy(c.post_id, post_id);
    return c;
}

static sm_status run(fixture *f, command *c, cmd_result *r)
{
    sm_error err;
    return cmd_dispatch(&f->ctx, c, r, &err);
}

static int setup_with(void **state, bool repo)
{
    fixture *f = calloc(1, sizeof *f);
    f->store = mem_store_new(&f->ctl);
    cmd_context_init(&f->ctx, f->store);
    if (repo) {
        post_repo_config cfg = {.snapshot_every = 3, .cache_bytes = 1 << 20};
        sm_error err;
        if (!(f->ctx.repo = post_repo_new(f->store, &cfg, &err)))
            return -1;
    }
    command c = make_cmd(CMD_NEW_POST, NULL);
    sm_uuid_new(c.post_id);
    c.author = "alice";
    c.message = "hello";
    cmd_result r;
    if (run(f, &c, &r) != SM_OK)
        return -1;
    strcpy(f->id, c.post_id);
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_with(state, false); }

/* The same cases from the aggregate cache, with a snapshot every 3 events. */
static int setup_repo(void **state) { return setup_with(state, true); }

static int teardown(void **state)
{
    fixture *f = *state;
    mem_store_hold_appends(f->ctl, false);
    post_repo_free(f->ctx.repo);
    cmd_context_destroy(&f->ctx);
    es_close(f->store);
    free(f);
    return 0;
}

static void *job_main(void *arg)
{
    job *j = arg;
    memset(&j->err, 0, sizeof j->err);
    j->st = cmd_dispatch(&j->f->ctx, &j->cmd, &j->res, &j->err);
    return NULL;
}

static void start(fixture *f, job *j, command c)
{
    j->f = f;
    j->cmd = c;
    assert_int_equal(pthread_create(&j->thread, NULL, job_main, j), 0);
}

static void wait_for(bool (*ready)(fixture *, int), fixture *f, int n)
{
    int i = 0;
    while (!ready(f, n) && i++ < WAIT_TRIES)
        sm_sleep_ms(1);
    assert_true(ready(f, n));
}

static bool held(fixture *f, int n) { return mem_store_appends_held(f->ctl) == n; }
static bool queued(fixture *f, int n) { return cmd_queued(&f->ctx, f->id) == n; }

/* Starts a like that leads a batch of its own and waits at the gate. */
static void start_leader(fixture *f, job *leader)
{
    mem_store_hold_appends(f->ctl, true);
    start(f, leader, make_cmd(CMD_LIKE_POST, f->id));
    wait_for(held, f, 1);
}

/* Starts cmds[0..n) into jobs, each queued behind the ones before it. */
static void queue_behind(fixture *f, job *jobs, const command *cmds, int n)
{
    for (int i = 0; i < n; i++) {
        start(f, &jobs[i], cmds[i]);
        wait_for(queued, f, i + 1);
    }
}

static void open_gate_and_join(fixture *f, job *leader, job *jobs, int n)
{
    mem_store_hold_appends(f->ctl, false);
    pthread_join(leader->thread, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(jobs[i].thread, NULL);
}

static post_state stored(fixture *f)
{
    post_state p;
    sm_error err;
    assert_int_equal(cmd_load_post(f->store, f->id, &p, &err), SM_OK);
    return p;
}

/* ---- batches ---------------------------------------------------------------- */

#define QUEUED 15

static void test_queued_likes_are_one_append_with_consecutive_versions(void **state)
{
    fixture *f = *state;
    job leader, jobs[QUEUED];
    command cmds[QUEUED];
    for (int i = 0; i < QUEUED; i++)
        cmds[i] = make_cmd(CMD_LIKE_POST, f->id);
    start_leader(f, &leader);
    queue_behind(f, jobs, cmds, QUEUED);
    open_gate_and_join(f, &leader, jobs, QUEUED);

    assert_int_equal(leader.st, SM_OK);
    assert_int_equal(leader.res.version, 1);
    for (int i = 0; i < QUEUED; i++) {
        assert_int_equal(jobs[i].st, SM_OK);
        assert_int_equal(jobs[i].res.version, 2 + i); /* queue order */
        assert_int_equal(jobs[i].res.attempts, 1);
    }
    /* NewPost, the leader, then the 15 in one append */
    assert_int_equal(f->ctl->appends, 3);
    assert_int_equal(f->ctl->max_batch, QUEUED);
    post_state p = stored(f);
    assert_int_equal(p.version, 1 + QUEUED);
    assert_int_equal(p.likes, 1 + QUEUED);
    post_free(&p);
}

#define THREADS 16
#define LIKES_EACH 40

typedef struct liker {
    fixture *f;
    int64_t versions[LIKES_EACH];
    int failures;
} liker;

static void *like_many(void *arg)
{
    liker *l = arg;
    for (int i = 0; i < LIKES_EACH; i++) {
        command c = make_cmd(CMD_LIKE_POST, l->f->id);
        cmd_result r;
        if (run(l->f, &c, &r) != SM_OK)
            l->failures++;
        l->versions[i] = r.version;
    }
    return NULL;
}

static int cmp_version(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* No gate: batches form as they will. Every like is answered 2xx with a
 * version of its own, and the versions are exactly 1..N, all stored. */
static void test_concurrent_likes_get_distinct_stored_versions(void **state)
{
    fixture *f = *state;
    liker l[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        l[i] = (liker){.f = f};
        pthread_create(&t[i], NULL, like_many, &l[i]);
    }
    int64_t all[THREADS * LIKES_EACH];
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(l[i].failures, 0);
        memcpy(&all[i * LIKES_EACH], l[i].versions, sizeof l[i].versions);
    }
    qsort(all, THREADS * LIKES_EACH, sizeof all[0], cmp_version);
    for (int i = 0; i < THREADS * LIKES_EACH; i++)
        assert_int_equal(all[i], i + 1);
    post_state p = stored(f);
    assert_int_equal(p.likes, THREADS * LIKES_EACH);
    assert_int_equal(p.version, THREADS * LIKES_EACH);
    post_free(&p);
    /* (how many appends that took depends on the scheduler: the in-memory
     * store is too fast for batches to form every time) */
}

/* One batch holding a stale If-Match, a comment removed by an earlier
 * member, and a DeletePost with commands after it: each refused command
 * gets its own answer, decided on the state the commands before it left,
 * and the others are stored as if it had not been there. */
static void test_refusals_in_the_middle_of_a_batch_touch_no_one_else(void **state)
{
    fixture *f = *state;
    command add = make_cmd(CMD_ADD_COMMENT, f->id);
    add.comment = "first";
    add.username = "bob";
    cmd_result r;
    assert_int_equal(run(f, &add, &r), SM_OK); /* version 1 */
    sm_uuid_str cid;
    strcpy(cid, r.comment_id);

    enum { N = 9 };
    command cmds[N];
    cmds[0] = make_cmd(CMD_LIKE_POST, f->id);     /* 3 */
    cmds[1] = make_cmd(CMD_LIKE_POST, f->id);     /* If-Match 2: stale after [0] -> 412 */
    cmds[1].if_match = 2;
    cmds[2] = make_cmd(CMD_REMOVE_COMMENT, f->id); /* 4 */
    strcpy(cmds[2].comment_id, cid);
    cmds[2].username = "bob";
    cmds[3] = make_cmd(CMD_EDIT_COMMENT, f->id);   /* the comment [2] removed: 404 */
    strcpy(cmds[3].comment_id, cid);
    cmds[3].comment = "edited";
    cmds[3].username = "bob";
    cmds[4] = make_cmd(CMD_LIKE_POST, f->id);     /* If-Match 4: what [2] made -> 5 */
    cmds[4].if_match = 4;
    cmds[5] = make_cmd(CMD_DELETE_POST, f->id);   /* mallory: 400, nothing written */
    cmds[5].username = "mallory";
    cmds[6] = make_cmd(CMD_DELETE_POST, f->id);   /* 6 */
    cmds[6].username = "alice";
    cmds[7] = make_cmd(CMD_LIKE_POST, f->id);     /* on the deleted post: 400 */
    cmds[8] = make_cmd(CMD_EDIT_MESSAGE, f->id);  /* likewise */
    cmds[8].message = "too late";

    job leader, jobs[N];
    start_leader(f, &leader); /* version 2 */
    queue_behind(f, jobs, cmds, N);
    open_gate_and_join(f, &leader, jobs, N);

    assert_int_equal(leader.st, SM_OK);
    assert_int_equal(leader.res.version, 2);
    assert_int_equal(jobs[0].st, SM_OK);
    assert_int_equal(jobs[0].res.version, 3);
    assert_int_equal(jobs[1].st, SM_ERR_PRECONDITION);
    assert_string_equal(jobs[1].err.message,
                        "The post is at version 3, not the version 2 given in If-Match.");
    assert_int_equal(jobs[2].st, SM_OK);
    assert_int_equal(jobs[2].res.version, 4);
    assert_int_equal(jobs[3].st, SM_ERR_NOT_FOUND);
    assert_non_null(strstr(jobs[3].err.message, "Comment not found!"));
    assert_int_equal(jobs[4].st, SM_OK);
    assert_int_equal(jobs[4].res.version, 5);
    assert_int_equal(jobs[5].st, SM_ERR_RULE);
    assert_string_equal(jobs[5].err.message,
                        "You are not allowed to delete a post that was made by somebody else!");
    assert_int_equal(jobs[6].st, SM_OK);
    assert_int_equal(jobs[6].res.version, 6);
    assert_int_equal(jobs[7].st, SM_ERR_RULE);
    assert_string_equal(jobs[7].err.message, "You cannot like an inactive post!");
    assert_int_equal(jobs[8].st, SM_ERR_RULE);
    assert_string_equal(jobs[8].err.message, "You cannot edit the message of an inactive post!");

    /* NewPost, AddComment, the leader, then one append of the 4 accepted */
    assert_int_equal(f->ctl->appends, 4);
    assert_int_equal(f->ctl->max_batch, 4);
    post_state p = stored(f);
    assert_int_equal(p.version, 6);
    assert_int_equal(p.likes, 3);
    assert_int_equal(p.ncomments, 0);
    assert_false(p.active);
    post_free(&p);
}

/* Concurrent commands on a post that does not exist: each is 404 on its
 * own (they may meet in one batch; nothing is appended either way). */
static void test_commands_on_an_unknown_post_are_404_each(void **state)
{
    fixture *f = *state;
    assert_true(sm_uuid_new(f->id));
    enum { N = 8 };
    job jobs[N];
    for (int i = 0; i < N; i++)
        start(f, &jobs[i], make_cmd(CMD_LIKE_POST, f->id));
    for (int i = 0; i < N; i++) {
        pthread_join(jobs[i].thread, NULL);
        assert_int_equal(jobs[i].st, SM_ERR_NOT_FOUND);
        assert_non_null(strstr(jobs[i].err.message, "Incorrect post Id provided!"));
    }
    assert_int_equal(f->ctl->append_calls, 1);
}

/* The batch's append fails: no member is told 2xx, refusals decided on the
 * batch's unstored events fail with it, a refusal decided on the stored
 * state stands; nothing is stored, and the next command starts again from
 * the store (not from a cache holding the lost events). */
static void test_failed_append_fails_every_member_of_the_batch(void **state)
{
    fixture *f = *state;
    enum { N = 6 };
    command cmds[N];
    cmds[0] = make_cmd(CMD_LIKE_POST, f->id); /* If-Match 7: refused on the stored state */
    cmds[0].if_match = 7;
    for (int i = 1; i < N; i++)
        cmds[i] = make_cmd(CMD_LIKE_POST, f->id);
    cmds[3].if_match = 9; /* refused after accepted ones: depends on the append */
    job leader, jobs[N];
    start_leader(f, &leader);
    queue_behind(f, jobs, cmds, N);
    mem_store_lock(f->ctl);
    f->ctl->appends_fail = true;
    mem_store_unlock(f->ctl);
    open_gate_and_join(f, &leader, jobs, N);

    assert_int_equal(leader.st, SM_ERR_UNAVAILABLE);
    assert_int_equal(jobs[0].st, SM_ERR_PRECONDITION);
    for (int i = 1; i < N; i++) {
        assert_int_equal(jobs[i].st, SM_ERR_UNAVAILABLE);
        assert_string_equal(jobs[i].err.message, "event store (memory) is down");
    }
    /* the leader's append and the batch's: two calls, nothing stored */
    assert_int_equal(f->ctl->append_calls, 3);
    assert_int_equal(f->ctl->appends, 1);
    post_state p = stored(f);
    assert_int_equal(p.version, 0);
    post_free(&p);

    f->ctl->appends_fail = false;
    command like = make_cmd(CMD_LIKE_POST, f->id);
    cmd_result r;
    assert_int_equal(run(f, &like, &r), SM_OK);
    assert_int_equal(r.version, 1);
    p = stored(f);
    assert_int_equal(p.likes, 1);
    post_free(&p);
}

/* Another process wrote first (ES_CONFLICT on the batch's append): every
 * member runs its cycle again against the fresh stream and succeeds. */
static void test_conflicting_batch_is_retried_by_each_member(void **state)
{
    fixture *f = *state;
    enum { N = 8 };
    command cmds[N];
    for (int i = 0; i < N; i++)
        cmds[i] = make_cmd(CMD_LIKE_POST, f->id);
    job leader, jobs[N];
    start_leader(f, &leader);
    queue_behind(f, jobs, cmds, N);
    mem_store_lock(f->ctl);
    f->ctl->conflicts_left = 2; /* the leader's append, then the batch's */
    mem_store_unlock(f->ctl);
    open_gate_and_join(f, &leader, jobs, N);

    int64_t v[N + 1];
    v[0] = leader.res.version;
    assert_int_equal(leader.st, SM_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].st, SM_OK);
        v[i + 1] = jobs[i].res.version;
    }
    qsort(v, N + 1, sizeof v[0], cmp_version);
    for (int i = 0; i <= N; i++)
        assert_int_equal(v[i], i + 1);
    post_state p = stored(f);
    assert_int_equal(p.likes, N + 1);
    post_free(&p);
}

/* max_batch 1 (the MongoDB adapter without transactions): one append per
 * command, as before batching. */
/* A command whose time runs out while it waits behind a batch is answered
 * 503 and writes nothing, whether its own wait ends first or the next
 * batch finds it expired in the queue (take_batch leaves it out); the
 * commands around it go on, one version each, with no hole. */
static void test_a_queued_command_out_of_time_is_refused_and_writes_nothing(void **state)
{
    fixture *f = *state;
    job leader, jobs[3];
    int64_t budget = f->ctx.budget_ms;
    start_leader(f, &leader);
    start(f, &jobs[0], make_cmd(CMD_LIKE_POST, f->id));
    wait_for(queued, f, 1);
    f->ctx.budget_ms = 30; /* read once, when the command starts */
    start(f, &jobs[1], make_cmd(CMD_LIKE_POST, f->id));
    wait_for(queued, f, 2);
    f->ctx.budget_ms = budget;
    start(f, &jobs[2], make_cmd(CMD_LIKE_POST, f->id));
    wait_for(queued, f, 3);
    sm_sleep_ms(60); /* past the middle one's time; the gate still holds */
    open_gate_and_join(f, &leader, jobs, 3);

    assert_int_equal(leader.st, SM_OK);
    assert_int_equal(jobs[0].st, SM_OK);
    assert_int_equal(jobs[1].st, SM_ERR_UNAVAILABLE);
    assert_non_null(strstr(jobs[1].err.message, "in time"));
    assert_int_equal(jobs[2].st, SM_OK);
    assert_int_equal(leader.res.version, 1);
    assert_int_equal(jobs[0].res.version, 2);
    assert_int_equal(jobs[2].res.version, 3);
    post_state p = stored(f);
    assert_int_equal(p.version, 3);
    assert_int_equal(p.likes, 3);
    post_free(&p);
}

static void test_max_batch_one_appends_one_event_at_a_time(void **state)
{
    fixture *f = *state;
    f->ctx.max_batch = 1;
    enum { N = 5 };
    command cmds[N];
    for (int i = 0; i < N; i++)
        cmds[i] = make_cmd(CMD_LIKE_POST, f->id);
    job leader, jobs[N];
    start_leader(f, &leader);
    queue_behind(f, jobs, cmds, N);
    open_gate_and_join(f, &leader, jobs, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].st, SM_OK);
        assert_int_equal(jobs[i].res.version, 2 + i);
    }
    assert_int_equal(f->ctl->appends, 2 + N);
    assert_int_equal(f->ctl->max_batch, 1);
}

/* A batch from version 1 to 5 steps over 3, a multiple of snapshot_every:
 * the snapshot is still written (repo fixture only). */
static void test_batch_stepping_over_a_snapshot_multiple_queues_the_snapshot(void **state)
{
    fixture *f = *state;
    enum { N = 4 };
    command cmds[N];
    for (int i = 0; i < N; i++)
        cmds[i] = make_cmd(CMD_LIKE_POST, f->id);
    job leader, jobs[N];
    start_leader(f, &leader); /* version 1 */
    queue_behind(f, jobs, cmds, N);
    open_gate_and_join(f, &leader, jobs, N); /* 2..5 in one append */
    assert_int_equal(jobs[N - 1].res.version, 5);
    post_repo_drain(f->ctx.repo);
    post_repo_stats st;
    post_repo_get_stats(f->ctx.repo, &st);
    assert_int_equal(st.snapshots_written, 1);
}

int main(void)
{
#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup, teardown), \
                cmocka_unit_test_setup_teardown(t, setup_repo, teardown)
    const struct CMUnitTest tests[] = {
        BOTH(test_queued_likes_are_one_append_with_consecutive_versions),
        BOTH(test_concurrent_likes_get_distinct_stored_versions),
        BOTH(test_refusals_in_the_middle_of_a_batch_touch_no_one_else),
        BOTH(test_commands_on_an_unknown_post_are_404_each),
        BOTH(test_failed_append_fails_every_member_of_the_batch),
        BOTH(test_conflicting_batch_is_retried_by_each_member),
        BOTH(test_max_batch_one_appends_one_event_at_a_time),
        BOTH(test_a_queued_command_out_of_time_is_refused_and_writes_nothing),
        cmocka_unit_test_setup_teardown(
            test_batch_stepping_over_a_snapshot_multiple_queues_the_snapshot, setup_repo,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
