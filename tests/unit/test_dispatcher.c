/* SPDX-License-Identifier: Apache-2.0 */
/* test_dispatcher.c — the command dispatcher: table lookup, the
 * load/decide/append cycle, retries on conflict, If-Match, and error
 * mapping, against the in-memory store (no I/O). */
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
#include <string.h>
#include <time.h>

typedef struct fixture {
    es_store *store;
    mem_store_ctl *ctl;
    cmd_context ctx;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->store = mem_store_new(&f->ctl);
    cmd_context_init(&f->ctx, f->store);
    *state = f;
    return 0;
}

/* The same cases again with a post_repo: the aggregate cache and a snapshot
 * every 3 events, so every command path also runs from a cached state and
 * from snapshot + tail. */
static int setup_repo(void **state)
{
    setup(state);
    fixture *f = *state;
    post_repo_config cfg = {.snapshot_every = 3, .cache_bytes = 1 << 20};
    sm_error err;
    f->ctx.repo = post_repo_new(f->store, &cfg, &err);
    return f->ctx.repo ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    post_repo_free(f->ctx.repo);
    cmd_context_destroy(&f->ctx);
    es_close(f->store);
    free(f);
    return 0;
}

static command make_cmd(cmd_type type, const char *post_id)
{
    command c = {.type = type, .if_match = CMD_NO_IF_MATCH};
    if (post_id)
        strcpy(c.post_id, post_id);
    return c;
}

/* Creates a post by alice and returns its id in id. */
static void new_post(fixture *f, sm_uuid_str id)
{
    command c = make_cmd(CMD_NEW_POST, NULL);
    assert_true(sm_uuid_new(c.post_id));
    c.author = "alice";
    c.message = "hello";
    cmd_result r;
    sm_error err = {0};
    assert_int_equal(cmd_dispatch(&f->ctx, &c, &r, &err), SM_OK);
    assert_int_equal(r.version, 0);
    assert_string_equal(r.message, "The post creating request completed successfully!");
    strcpy(id, c.post_id);
}

static sm_status run(fixture *f, command *c, cmd_result *r, sm_error *err)
{
    memset(err, 0, sizeof *err);
    return cmd_dispatch(&f->ctx, c, r, err);
}

static void test_new_post_stores_post_created_at_version_0(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    post_state p;
    sm_error err;
    assert_int_equal(cmd_load_post(f->store, id, &p, &err), SM_OK);
    assert_true(post_exists(&p));
    assert_string_equal(p.author, "alice");
    assert_int_equal(p.version, 0);
    post_free(&p);
}

static void test_like_on_unknown_post_is_not_found_with_original_text(void **state)
{
    fixture *f = *state;
    command c = make_cmd(CMD_LIKE_POST, "5c3e6f0a-1b2c-4d5e-8f90-123456789abc");
    cmd_result r;
    sm_error err;
    assert_int_equal(run(f, &c, &r, &err), SM_ERR_NOT_FOUND);
    assert_string_equal(err.message,
                        "Incorrect post Id provided! 5c3e6f0a-1b2c-4d5e-8f90-123456789abc");
    assert_int_equal(f->ctl->appends, 0);
}

static void test_each_command_runs_its_handler_and_reports_its_text(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    cmd_result r;
    sm_error err;

    command c = make_cmd(CMD_EDIT_MESSAGE, id);
    c.message = "edited";
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_string_equal(r.message, "The edit message request completed successfully!");
    assert_int_equal(r.version, 1);

    c = make_cmd(CMD_LIKE_POST, id);
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_string_equal(r.message, "Like post request completed successfully!");

    c = make_cmd(CMD_ADD_COMMENT, id);
    c.comment = "nice";
    c.username = "bob";
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_string_equal(r.message, "Add comment request completed successfully!");
    assert_true(sm_uuid_parse(r.comment_id, NULL));
    sm_uuid_str cid;
    strcpy(cid, r.comment_id);

    c = make_cmd(CMD_EDIT_COMMENT, id);
    strcpy(c.comment_id, cid);
    c.comment = "nicer";
    c.username = "bob";
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_string_equal(r.message, "Edit comment request completed successfully!");

    c = make_cmd(CMD_REMOVE_COMMENT, id);
    strcpy(c.comment_id, cid);
    c.username = "bob";
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_string_equal(r.message, "Remove comment request completed successfully!");

    c = make_cmd(CMD_DELETE_POST, id);
    c.username = "ALICE";
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_string_equal(r.message, "Delete post request completed successfully!");
    assert_int_equal(r.version, 6);

    post_state p;
    assert_int_equal(cmd_load_post(f->store, id, &p, &err), SM_OK);
    assert_false(p.active);
    assert_string_equal(p.message, "edited");
    assert_int_equal(p.likes, 1);
    assert_int_equal(p.ncomments, 0);
    post_free(&p);
}

static void test_rule_violation_writes_nothing(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    command c = make_cmd(CMD_DELETE_POST, id);
    c.username = "mallory";
    cmd_result r;
    sm_error err;
    assert_int_equal(run(f, &c, &r, &err), SM_ERR_RULE);
    assert_string_equal(err.message,
                        "You are not allowed to delete a post that was made by somebody else!");
    assert_int_equal(f->ctl->appends, 1);
}

static void test_conflict_is_retried_against_the_fresh_stream(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    f->ctl->conflicts_left = 3;
    command c = make_cmd(CMD_LIKE_POST, id);
    cmd_result r;
    sm_error err;
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_int_equal(r.attempts, 4);
    assert_int_equal(r.version, 1);
    assert_int_equal(f->ctl->appends, 2);
}

static void test_conflict_outlasting_the_retries_is_409_and_writes_nothing(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    f->ctx.max_attempts = 5;
    f->ctl->conflicts_left = 1000;
    f->ctl->append_calls = 0;
    command c = make_cmd(CMD_LIKE_POST, id);
    cmd_result r;
    sm_error err;
    assert_int_equal(run(f, &c, &r, &err), SM_ERR_CONFLICT);
    assert_int_equal(f->ctl->append_calls, 5);
    assert_int_equal(f->ctl->appends, 1);
    assert_non_null(strstr(err.message, "5 attempts"));
}

static void test_store_down_is_unavailable(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    f->ctl->unavailable = true;
    command c = make_cmd(CMD_LIKE_POST, id);
    cmd_result r;
    sm_error err;
    assert_int_equal(run(f, &c, &r, &err), SM_ERR_UNAVAILABLE);
    command n = make_cmd(CMD_NEW_POST, NULL);
    sm_uuid_new(n.post_id);
    n.author = "a";
    n.message = "m";
    assert_int_equal(run(f, &n, &r, &err), SM_ERR_UNAVAILABLE);
}

/* Another request holds the post (here: every stripe) for a second, as one
 * stuck behind a locked store would. A command with a 200 ms budget gives
 * up with 503 in about that time instead of queueing behind it. */
typedef struct holder {
    cmd_context *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool holding;
} holder;

static void *hold_stripes(void *arg)
{
    holder *h = arg;
    for (int i = 0; i < CMD_LOCK_STRIPES; i++)
        pthread_mutex_lock(&h->ctx->stripes[i].mu);
    pthread_mutex_lock(&h->mu);
    h->holding = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    for (int i = 0; i < CMD_LOCK_STRIPES; i++)
        pthread_mutex_unlock(&h->ctx->stripes[i].mu);
    return NULL;
}

static void test_command_gives_up_with_503_at_its_deadline(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    f->ctx.budget_ms = 200;
    holder h = {&f->ctx, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    pthread_t t;
    pthread_create(&t, NULL, hold_stripes, &h);
    pthread_mutex_lock(&h.mu);
    while (!h.holding)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    command c = make_cmd(CMD_LIKE_POST, id);
    cmd_result r;
    sm_error err;
    int64_t t0 = sm_mono_ms();
    assert_int_equal(run(f, &c, &r, &err), SM_ERR_UNAVAILABLE);
    int64_t took = sm_mono_ms() - t0;
    assert_true(took >= 150 && took < 800);
    pthread_join(t, NULL);
    assert_int_equal(run(f, &c, &r, &err), SM_OK); /* free again */
    assert_int_equal(r.version, 1);
}

static void test_if_match_must_equal_the_current_version(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    command c = make_cmd(CMD_LIKE_POST, id);
    c.if_match = 3;
    cmd_result r;
    sm_error err;
    assert_int_equal(run(f, &c, &r, &err), SM_ERR_PRECONDITION);
    assert_int_equal(f->ctl->appends, 1);
    c.if_match = 0;
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_int_equal(r.version, 1);
    c.if_match = -1; /* "*": any existing version */
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_int_equal(r.version, 2);
}

static int hook_calls;
static int64_t hook_version;
static void on_appended(void *arg, const sm_event *evs, size_t n)
{
    (void)arg;
    hook_calls += (int)n;
    hook_version = evs[n - 1].version;
}

static void test_appended_hook_sees_each_stored_event(void **state)
{
    fixture *f = *state;
    hook_calls = 0;
    f->ctx.on_appended = on_appended;
    sm_uuid_str id;
    new_post(f, id);
    command c = make_cmd(CMD_LIKE_POST, id);
    cmd_result r;
    sm_error err;
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    assert_int_equal(hook_calls, 2);
    assert_int_equal(hook_version, 1);
    c = make_cmd(CMD_DELETE_POST, id);
    c.username = "nobody";
    run(f, &c, &r, &err);
    assert_int_equal(hook_calls, 2); /* refused: no event, no hook */
}

typedef struct liker {
    fixture *f;
    const char *id;
    sm_status st;
} liker;

static void *like_thread(void *arg)
{
    liker *l = arg;
    command c = make_cmd(CMD_LIKE_POST, l->id);
    cmd_result r;
    sm_error err;
    l->st = cmd_dispatch(&l->f->ctx, &c, &r, &err);
    return NULL;
}

/* An authenticated command records the owner id in the payload and stamps
 * every event with the caller's sub, the request id and the trace context;
 * with auth off the ids are NULL. An invalid traceparent is dropped, never
 * stored. Across snapshots and the cache (SETUP setup_repo) the owner stays
 * the sub: the same display name with another sub is forbidden. */
#define TRACE_A "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
static void test_commands_carry_owner_ids_and_metadata_into_events(void **state)
{
    fixture *f = *state;
    cmd_result r;
    sm_error err;
    command c = make_cmd(CMD_NEW_POST, NULL);
    assert_true(sm_uuid_new(c.post_id));
    c.author = c.actor = "alice";
    c.user_id = "sub-alice";
    c.message = "hello";
    c.request_id = "req-1";
    c.traceparent = TRACE_A;
    assert_int_equal(run(f, &c, &r, &err), SM_OK);
    sm_uuid_str id;
    strcpy(id, c.post_id);
    command add = make_cmd(CMD_ADD_COMMENT, id);
    add.username = add.actor = "bob";
    add.user_id = "sub-bob";
    add.comment = "nice";
    add.request_id = "req-2";
    add.traceparent = "00-not-a-trace";
    assert_int_equal(run(f, &add, &r, &err), SM_OK);
    command like = make_cmd(CMD_LIKE_POST, id); /* auth off: no ids */
    assert_int_equal(run(f, &like, &r, &err), SM_OK);
    assert_int_equal(run(f, &like, &r, &err), SM_OK);

    sm_event_list evs = {0};
    assert_int_equal(es_load(f->store, id, 0, 0, &evs, &err), ES_OK);
    assert_int_equal(evs.len, 4);
    assert_string_equal(evs.items[0].author_id, "sub-alice");
    assert_string_equal(evs.items[0].meta.user_id, "sub-alice");
    assert_string_equal(evs.items[0].meta.request_id, "req-1");
    assert_string_equal(evs.items[0].meta.traceparent, TRACE_A);
    assert_string_equal(evs.items[1].user_id, "sub-bob");
    assert_string_equal(evs.items[1].meta.user_id, "sub-bob");
    assert_string_equal(evs.items[1].meta.request_id, "req-2");
    assert_string_equal(evs.items[1].meta.traceparent, "");
    assert_null(evs.items[2].meta.user_id);
    assert_string_equal(evs.items[2].meta.request_id, "");
    sm_event_list_free(&evs);

    command edit = make_cmd(CMD_EDIT_MESSAGE, id);
    edit.message = "x";
    edit.actor = "alice";
    edit.user_id = "sub-mallory"; /* alice's name, not her sub */
    assert_int_equal(run(f, &edit, &r, &err), SM_ERR_FORBIDDEN);
    edit.actor = "Alice Renamed";
    edit.user_id = "sub-alice";
    assert_int_equal(run(f, &edit, &r, &err), SM_OK);
}

static void test_32_concurrent_likes_all_succeed_with_dense_versions(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    new_post(f, id);
    pthread_t t[32];
    liker l[32];
    for (int i = 0; i < 32; i++) {
        l[i] = (liker){f, id, SM_ERR_INTERNAL};
        pthread_create(&t[i], NULL, like_thread, &l[i]);
    }
    for (int i = 0; i < 32; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(l[i].st, SM_OK);
    }
    sm_event_list evs = {0};
    sm_error err;
    assert_int_equal(es_load(f->store, id, 0, 0, &evs, &err), ES_OK);
    assert_int_equal(evs.len, 33);
    for (size_t i = 0; i < evs.len; i++)
        assert_int_equal(evs.items[i].version, (int64_t)i);
    sm_event_list_free(&evs);
}

#define DISPATCHER_TESTS(SETUP) \
    { \
        cmocka_unit_test_setup_teardown(test_new_post_stores_post_created_at_version_0, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_like_on_unknown_post_is_not_found_with_original_text, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_each_command_runs_its_handler_and_reports_its_text, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_rule_violation_writes_nothing, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_conflict_is_retried_against_the_fresh_stream, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_conflict_outlasting_the_retries_is_409_and_writes_nothing, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_store_down_is_unavailable, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_command_gives_up_with_503_at_its_deadline, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_if_match_must_equal_the_current_version, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_appended_hook_sees_each_stored_event, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_commands_carry_owner_ids_and_metadata_into_events, SETUP, teardown), \
        cmocka_unit_test_setup_teardown(test_32_concurrent_likes_all_succeed_with_dense_versions, SETUP, teardown), \
    }

int main(void)
{
    const struct CMUnitTest full_replay[] = DISPATCHER_TESTS(setup);
    const struct CMUnitTest with_repo[] = DISPATCHER_TESTS(setup_repo);
    int failed = cmocka_run_group_tests_name("full replay", full_replay, NULL, NULL);
    failed += cmocka_run_group_tests_name("snapshots and cache", with_repo, NULL, NULL);
    return failed;
}
