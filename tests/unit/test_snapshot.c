/* SPDX-License-Identifier: Apache-2.0 */
/* test_snapshot.c — snapshots, the aggregate cache and the repository that
 * combines them, against the in-memory store (no I/O). The oracle is always
 * the plain fold of the stored events (cmd_load_post / a prefix of it). */
#include "dispatcher.h"
#include "mem_store.h"
#include "post.h"
#include "post_cache.h"
#include "post_history.h"
#include "post_repo.h"
#include "post_snapshot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    es_store *store;
    mem_store_ctl *ctl;
    cmd_context ctx;       /* no repo: writes the histories */
    sm_uuid_str id;
    int64_t last;          /* the post's last version */
} fixture;

static int64_t clock_ms = 1700000000000;
static int64_t ticking_clock(void) { return clock_ms += 1000; }

static sm_status run(fixture *f, cmd_type type, const char *comment_id, const char *text,
                     const char *user, cmd_result *r)
{
    sm_status st = ph_run(&f->ctx, f->id, type, comment_id, text, user, r);
    if (st == SM_OK)
        f->last = r->version;
    return st;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->store = mem_store_new(&f->ctl);
    cmd_context_init(&f->ctx, f->store);
    f->ctx.now_ms = ticking_clock;
    ph_write_history(&f->ctx, f->id, NULL, NULL);
    f->last = PH_LAST_VERSION;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cmd_context_destroy(&f->ctx);
    es_close(f->store);
    free(f);
    return 0;
}

/* The state after versions 0..v, folded by hand from the stream. */
static void prefix_state(fixture *f, int64_t v, post_state *out)
{
    sm_event_list evs = {0};
    sm_error err;
    assert_int_equal(es_load(f->store, f->id, 0, (size_t)v + 1, &evs, &err), ES_OK);
    post_init(out);
    for (size_t i = 0; i < evs.len; i++)
        assert_int_equal(post_apply(out, &evs.items[i], &err), SM_OK);
    sm_event_list_free(&evs);
}

static void event_id_at(fixture *f, int64_t v, sm_uuid_str out)
{
    sm_event_list evs = {0};
    sm_error err;
    assert_int_equal(es_load(f->store, f->id, v, 1, &evs, &err), ES_OK);
    assert_int_equal(evs.len, 1);
    strcpy(out, evs.items[0].event_id);
    sm_event_list_free(&evs);
}

/* Both NULL, or equal strings (owner ids are NULL for posts made without
 * auth). */
static void assert_opt_equal(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_states_equal(const post_state *a, const post_state *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->active, b->active);
    assert_string_equal(a->author, b->author);
    assert_opt_equal(a->author_id, b->author_id);
    assert_string_equal(a->message, b->message);
    assert_int_equal(a->date_posted_ms, b->date_posted_ms);
    assert_int_equal(a->likes, b->likes);
    assert_int_equal(a->ncomments, b->ncomments);
    for (size_t i = 0; i < a->ncomments; i++) {
        const post_comment *x = &a->comments[i], *y = &b->comments[i];
        assert_string_equal(x->id, y->id);
        assert_string_equal(x->text, y->text);
        assert_string_equal(x->username, y->username);
        assert_opt_equal(x->user_id, y->user_id);
        assert_int_equal(x->date_ms, y->date_ms);
        assert_int_equal(x->edited, y->edited);
        assert_int_equal(x->edited_at_ms, y->edited_at_ms);
    }
}

static post_repo *repo_new(fixture *f, int every, size_t cache)
{
    post_repo_config cfg = {.snapshot_every = every, .cache_bytes = cache};
    sm_error err;
    post_repo *r = post_repo_new(f->store, &cfg, &err);
    assert_non_null(r);
    return r;
}

static void save_snapshot_at(fixture *f, int64_t v)
{
    post_state p;
    prefix_state(f, v, &p);
    sm_uuid_str after;
    event_id_at(f, v, after);
    char *text = post_snapshot_encode(&p, after);
    assert_non_null(text);
    sm_error err;
    assert_int_equal(es_save_snapshot(f->store, f->id, v, POST_SNAPSHOT_SCHEMA, text, &err),
                     ES_OK);
    free(text);
    post_free(&p);
}

static void test_snapshot_round_trip_is_exact_at_every_version(void **state)
{
    fixture *f = *state;
    for (int64_t v = 0; v <= f->last; v++) {
        post_state p, back;
        prefix_state(f, v, &p);
        sm_uuid_str after, got;
        event_id_at(f, v, after);
        char *text = post_snapshot_encode(&p, after);
        sm_error err;
        assert_int_equal(post_snapshot_decode(text, f->id, v, &back, got, &err), SM_OK);
        assert_states_equal(&p, &back);
        assert_string_equal(got, after);
        /* the wrong version or post is refused, not reinterpreted */
        post_state no;
        assert_int_equal(post_snapshot_decode(text, f->id, v + 1, &no, got, &err),
                         SM_ERR_INVALID);
        assert_false(post_exists(&no));
        free(text);
        post_free(&p);
        post_free(&back);
    }
}

/* With a snapshot at every version k, the state at every version j comes
 * from the snapshot at j plus nothing, and the latest from the last one:
 * all equal to the plain fold. Then the same with snapshots only every 4
 * versions, so every j is a snapshot plus a tail of 0..3 events. */
static void check_all_versions(fixture *f, post_repo *r, uint64_t *hits)
{
    for (int64_t j = 0; j <= f->last + 2; j++) {
        post_state want, got;
        prefix_state(f, j, &want);
        sm_error err;
        assert_int_equal(post_repo_load_at(r, f->id, j, &got, &err), SM_OK);
        assert_states_equal(&want, &got);
        post_free(&want);
        post_free(&got);
    }
    post_repo_stats st;
    post_repo_get_stats(r, &st);
    *hits = st.snapshot_hits;
    assert_int_equal(st.snapshots_ignored, 0);
}

/* Owner ids are part of the state, so the snapshot carries them: a post
 * made by an authenticated user, commented by another and by an
 * unauthenticated caller (NULL id), round-trips exactly. */
static void test_snapshot_keeps_owner_ids(void **state)
{
    (void)state;
    post_state p, back;
    post_init(&p);
    sm_event ev;
    sm_error err;
    sm_uuid_str id, after, got;
    assert_true(sm_uuid_new(id));
    post_actor alice = {"alice", false, "sub-alice"}, bob = {"bob", false, "sub-bob"};
    assert_int_equal(post_decide_create_as(id, "hi", &alice, 1000, &ev, &err), SM_OK);
    assert_int_equal(post_apply(&p, &ev, &err), SM_OK);
    sm_event_clear(&ev);
    assert_int_equal(post_decide_add_comment_as(&p, "c1", &bob, 2000, &ev, &err), SM_OK);
    assert_int_equal(post_apply(&p, &ev, &err), SM_OK);
    sm_event_clear(&ev);
    assert_int_equal(post_decide_add_comment(&p, "c2", "carol", 3000, &ev, &err), SM_OK);
    assert_int_equal(post_apply(&p, &ev, &err), SM_OK);
    strcpy(after, ev.event_id);
    sm_event_clear(&ev);
    char *text = post_snapshot_encode(&p, after);
    assert_non_null(strstr(text, "\"authorId\":\"sub-alice\""));
    assert_int_equal(post_snapshot_decode(text, id, 2, &back, got, &err), SM_OK);
    assert_states_equal(&p, &back);
    assert_string_equal(back.author_id, "sub-alice");
    assert_string_equal(back.comments[0].user_id, "sub-bob");
    assert_null(back.comments[1].user_id);
    free(text);
    post_free(&back);
    /* a wrongly typed id refuses the snapshot rather than dropping the owner */
    char bad[600];
    snprintf(bad, sizeof bad,
             "{\"id\":\"%s\",\"version\":0,\"after\":\"%s\",\"active\":true,"
             "\"author\":\"alice\",\"authorId\":7,\"message\":\"hi\",\"datePosted\":1000,"
             "\"likes\":0,\"comments\":[]}", id, after);
    assert_int_equal(post_snapshot_decode(bad, id, 0, &back, got, &err), SM_ERR_INVALID);
    post_free(&p);
}

/* A schema-1 text (written before owner ids, as in
 * tests/fixtures/event_store_v1.sqlite) still decodes, to the state its
 * events fold to: no owner ids. Stores no longer hand such rows to a reader
 * of schema 2, but a missing id must never be taken for a broken snapshot.
 * The schema number itself moved on. */
static void test_schema_1_snapshot_decodes_with_no_owner_ids(void **state)
{
    fixture *f = *state;
    assert_true(POST_SNAPSHOT_SCHEMA >= 2);
    for (int64_t v = 0; v <= f->last; v++) {
        post_state p, back;
        prefix_state(f, v, &p);
        sm_uuid_str after, got;
        event_id_at(f, v, after);
        char *text = post_snapshot_encode(&p, after);
        /* drop the new keys: what schema 1 wrote */
        json_t *j = json_loads(text, 0, NULL);
        json_object_del(j, "authorId");
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(j, "comments"), i, c)
            json_object_del(c, "userId");
        char *old = json_dumps(j, JSON_COMPACT);
        assert_null(strstr(old, "Id\":null"));
        sm_error err;
        assert_int_equal(post_snapshot_decode(old, f->id, v, &back, got, &err), SM_OK);
        assert_states_equal(&p, &back);
        assert_null(back.author_id);
        free(old);
        json_decref(j);
        free(text);
        post_free(&p);
        post_free(&back);
    }
}

static void test_snapshot_plus_tail_equals_the_full_stream(void **state)
{
    fixture *f = *state;
    post_repo *r = repo_new(f, 1, 0);
    for (int64_t k = 0; k <= f->last; k += 4)
        save_snapshot_at(f, k);
    uint64_t hits;
    check_all_versions(f, r, &hits);
    assert_int_equal(hits, f->last + 3); /* every load started from a snapshot */
    for (int64_t k = 0; k <= f->last; k++)
        save_snapshot_at(f, k);
    post_repo_free(r);
    r = repo_new(f, 1, 0);
    check_all_versions(f, r, &hits);
    assert_int_equal(hits, f->last + 3);
    post_repo_free(r);
}

static void test_snapshot_of_another_schema_is_ignored(void **state)
{
    fixture *f = *state;
    /* A lying snapshot under another schema at the latest version: a reader
     * of today's schema must never see it. */
    const char *liar = "{\"likes\":999}";
    sm_error err;
    assert_int_equal(es_save_snapshot(f->store, f->id, f->last, POST_SNAPSHOT_SCHEMA + 1, liar,
                                      &err), ES_OK);
    assert_int_equal(es_save_snapshot(f->store, f->id, f->last, POST_SNAPSHOT_SCHEMA - 1, liar,
                                      &err), ES_OK);
    post_repo *r = repo_new(f, 1, 0);
    post_state want, got;
    prefix_state(f, f->last, &want);
    assert_int_equal(post_repo_load_at(r, f->id, INT64_MAX, &got, &err), SM_OK);
    assert_states_equal(&want, &got);
    assert_int_equal(got.likes, 4);
    post_repo_stats st;
    post_repo_get_stats(r, &st);
    assert_int_equal(st.snapshot_hits, 0);
    post_free(&want);
    post_free(&got);
    post_repo_free(r);
}

/* Saves text as today's snapshot at version v, then checks that a load
 * ignores it (counted) and still returns the true state. */
static void expect_ignored(fixture *f, int64_t v, const char *text)
{
    sm_error err;
    assert_int_equal(es_save_snapshot(f->store, f->id, v, POST_SNAPSHOT_SCHEMA, text, &err),
                     ES_OK);
    post_repo *r = repo_new(f, 1, 0);
    post_state want, got;
    prefix_state(f, f->last, &want);
    assert_int_equal(post_repo_load_at(r, f->id, INT64_MAX, &got, &err), SM_OK);
    assert_states_equal(&want, &got);
    post_repo_stats st;
    post_repo_get_stats(r, &st);
    assert_int_equal(st.snapshot_hits, 0);
    assert_int_equal(st.snapshots_ignored, 1);
    post_free(&want);
    post_free(&got);
    post_repo_free(r);
}

static void test_undecodable_snapshot_is_ignored(void **state)
{
    fixture *f = *state;
    expect_ignored(f, f->last, "{\"id\": not json");
}

static void test_snapshot_of_another_post_is_ignored(void **state)
{
    fixture *f = *state;
    post_state p;
    prefix_state(f, f->last, &p);
    sm_uuid_str after;
    event_id_at(f, f->last, after);
    assert_true(sm_uuid_new(p.id)); /* same shape, someone else's post */
    char *text = post_snapshot_encode(&p, after);
    expect_ignored(f, f->last, text);
    free(text);
    post_free(&p);
}

/* A snapshot taken after an event that is not in this stream (a store that
 * was restored or rewritten since) must not be applied to it. */
static void test_snapshot_of_another_history_is_ignored(void **state)
{
    fixture *f = *state;
    post_state p;
    prefix_state(f, f->last - 1, &p);
    p.likes = 1000;
    sm_uuid_str other;
    assert_true(sm_uuid_new(other));
    char *text = post_snapshot_encode(&p, other);
    expect_ignored(f, f->last - 1, text);
    free(text);
    post_free(&p);
}

/* The store restored from a backup older than its snapshots: the snapshot
 * claims to follow an event that is not in the stream at all (the stream
 * ends before it). It must be ignored, not trusted because nothing
 * contradicts it. */
static void test_snapshot_newer_than_the_stream_is_ignored(void **state)
{
    fixture *f = *state;
    post_state p;
    prefix_state(f, f->last, &p);
    p.version = f->last + 5; /* five events the restored store does not have */
    p.likes += 5;
    sm_uuid_str gone;
    assert_true(sm_uuid_new(gone));
    char *text = post_snapshot_encode(&p, gone);
    expect_ignored(f, f->last + 5, text);
    free(text);
    post_free(&p);
}

static void test_background_thread_snapshots_every_n_events(void **state)
{
    fixture *f = *state;
    post_repo *r = repo_new(f, 5, 1 << 20);
    f->ctx.repo = r;
    cmd_result res;
    /* a fresh post: versions 0..12 */
    assert_true(sm_uuid_new(f->id));
    assert_int_equal(run(f, CMD_NEW_POST, NULL, "counting", "erin", &res), SM_OK);
    /* Draining after each command pins the versions the thread sees; without
     * it, it snapshots whatever version the post has reached by then. */
    for (int i = 0; i < 12; i++) {
        assert_int_equal(run(f, CMD_LIKE_POST, NULL, NULL, NULL, &res), SM_OK);
        post_repo_drain(r);
    }
    int64_t v;
    char *data;
    sm_error err;
    assert_int_equal(es_load_snapshot(f->store, f->id, INT64_MAX, POST_SNAPSHOT_SCHEMA, &v, &data,
                                      &err), ES_OK);
    assert_int_equal(v, 10);
    free(data);
    assert_int_equal(es_load_snapshot(f->store, f->id, 9, POST_SNAPSHOT_SCHEMA, &v, &data, &err),
                     ES_OK);
    assert_int_equal(v, 5);
    free(data);
    assert_int_equal(es_load_snapshot(f->store, f->id, 4, POST_SNAPSHOT_SCHEMA, &v, &data, &err),
                     ES_NOT_FOUND);
    post_repo_stats st;
    post_repo_get_stats(r, &st);
    assert_int_equal(st.snapshots_written, 2);
    assert_int_equal(st.snapshot_errors, 0);
    assert_int_equal(st.cache_hits, 11); /* every like but the first */
    f->ctx.repo = NULL;
    post_repo_free(r);
}

/* A long stream written before snapshots existed: the first load folds it
 * all and queues a snapshot; after that, a cold load starts from it. */
static void test_long_stream_gets_a_snapshot_on_first_load(void **state)
{
    fixture *f = *state;
    cmd_result res;
    assert_true(sm_uuid_new(f->id));
    assert_int_equal(run(f, CMD_NEW_POST, NULL, "long", "fred", &res), SM_OK);
    for (int i = 0; i < 250; i++)
        assert_int_equal(run(f, CMD_LIKE_POST, NULL, NULL, NULL, &res), SM_OK);
    post_repo *r = repo_new(f, 100, 0);
    post_state p;
    sm_error err;
    assert_int_equal(post_repo_acquire(r, f->id, &p, &err), SM_OK);
    assert_int_equal(p.likes, 250);
    post_repo_release(r, &p, true);
    post_repo_drain(r);
    assert_int_equal(post_repo_acquire(r, f->id, &p, &err), SM_OK);
    assert_int_equal(p.likes, 250);
    assert_int_equal(p.version, 250);
    post_repo_release(r, &p, true);
    post_repo_stats st;
    post_repo_get_stats(r, &st);
    assert_int_equal(st.snapshots_written, 1);
    assert_int_equal(st.snapshot_hits, 1);
    post_repo_free(r);
}

/* Another process (here: a context without the repo) appends behind the
 * cache's back; the next command still sees every event. */
static void test_cached_state_catches_up_with_other_writers(void **state)
{
    fixture *f = *state;
    cmd_result res;
    assert_true(sm_uuid_new(f->id));
    assert_int_equal(run(f, CMD_NEW_POST, NULL, "shared", "gina", &res), SM_OK);
    post_repo *r = repo_new(f, 0, 1 << 20);
    cmd_context cached;
    cmd_context_init(&cached, f->store);
    cached.repo = r;
    command like = {.type = CMD_LIKE_POST, .if_match = CMD_NO_IF_MATCH};
    strcpy(like.post_id, f->id);
    sm_error err;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(cmd_dispatch(&cached, &like, &res, &err), SM_OK);
        assert_int_equal(run(f, CMD_LIKE_POST, NULL, NULL, NULL, &res), SM_OK);
        assert_int_equal(run(f, CMD_LIKE_POST, NULL, NULL, NULL, &res), SM_OK);
    }
    assert_int_equal(cmd_dispatch(&cached, &like, &res, &err), SM_OK);
    assert_int_equal(res.version, 10);
    post_state p;
    assert_int_equal(post_repo_acquire(r, f->id, &p, &err), SM_OK);
    assert_int_equal(p.likes, 10);
    post_repo_release(r, &p, true);
    post_repo_stats st;
    post_repo_get_stats(r, &st);
    assert_true(st.cache_hits >= 4);
    cmd_context_destroy(&cached);
    post_repo_free(r);
}

/* ---- the cache on its own ------------------------------------------------ */
static void make_state(post_state *p, int64_t version, size_t message_len)
{
    post_init(p);
    assert_true(sm_uuid_new(p->id));
    p->version = version;
    p->author = strdup("a");
    p->message = calloc(1, message_len + 1);
    memset(p->message, 'm', message_len);
}

static void test_cache_take_moves_ownership_and_keeps_the_newest(void **state)
{
    (void)state;
    post_cache *c = post_cache_new(1 << 20);
    post_state p, out;
    make_state(&p, 3, 10);
    sm_uuid_str id;
    strcpy(id, p.id);
    post_cache_put(c, &p);
    assert_false(post_exists(&p)); /* moved */
    assert_true(post_cache_take(c, id, &out));
    assert_int_equal(out.version, 3);
    assert_false(post_cache_take(c, id, &p)); /* taken: a second taker misses */
    /* an older version does not replace a newer one */
    post_state older;
    make_state(&older, 2, 10);
    strcpy(older.id, id);
    post_cache_put(c, &out);
    post_cache_put(c, &older);
    assert_true(post_cache_take(c, id, &out));
    assert_int_equal(out.version, 3);
    post_free(&out);
    post_cache_stats st;
    post_cache_get_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    post_cache_free(c);
}

static void test_cache_evicts_least_recently_used_within_budget(void **state)
{
    (void)state;
    post_cache *c = post_cache_new(64 * 1024);
    sm_uuid_str ids[40];
    for (int i = 0; i < 40; i++) {
        post_state p;
        make_state(&p, 1, 4000); /* ~4 KiB each: about 15 fit */
        strcpy(ids[i], p.id);
        post_cache_put(c, &p);
    }
    post_cache_stats st;
    post_cache_get_stats(c, &st);
    assert_true(st.bytes <= 64 * 1024);
    assert_true(st.entries >= 10 && st.entries < 40);
    assert_int_equal(st.evictions, 40 - st.entries);
    post_state out;
    assert_false(post_cache_take(c, ids[0], &out));  /* the oldest went first */
    assert_true(post_cache_take(c, ids[39], &out));  /* the newest stayed */
    post_free(&out);
    /* a state bigger than an eighth of the budget is not cached */
    post_state big;
    make_state(&big, 1, 20000);
    strcpy(ids[0], big.id);
    post_cache_put(c, &big);
    assert_false(post_cache_take(c, ids[0], &out));
    post_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip_is_exact_at_every_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_keeps_owner_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_1_snapshot_decodes_with_no_owner_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_plus_tail_equals_the_full_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_of_another_schema_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_snapshot_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_of_another_post_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_of_another_history_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_newer_than_the_stream_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_thread_snapshots_every_n_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_stream_gets_a_snapshot_on_first_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_state_catches_up_with_other_writers, setup, teardown),
        cmocka_unit_test(test_cache_take_moves_ownership_and_keeps_the_newest),
        cmocka_unit_test(test_cache_evicts_least_recently_used_within_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
