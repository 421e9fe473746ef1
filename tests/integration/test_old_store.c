/* SPDX-License-Identifier: Apache-2.0 */
/* test_old_store.c — today's code on an SQLite event store written by the
 * command-api of main at c28ab53 (tests/fixtures/event_store_v1.sqlite,
 * see tests/fixtures/README.md): before events carried owner ids and
 * metadata, before the events.metadata column, with schema-1 snapshots.
 *
 * Opening the file migrates it (the column is added), so the test works on a
 * copy in a temporary directory. It checks that every post folds to what the
 * commands that wrote it said, from the events and through the repository
 * (which must not trust the old snapshots' schema), that the old events read
 * with no owner ids and no metadata, that new commands append events with
 * metadata beside them and read back with it, and that the posts made
 * before auth belong to their author's name under the owner rules. */
#include "dispatcher.h"
#include "event_store.h"
#include "post.h"
#include "post_repo.h"
#include "post_snapshot.h"
#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SMPOST_FIXTURE_DIR
#error "SMPOST_FIXTURE_DIR must name tests/fixtures"
#endif

#define FIXTURE SMPOST_FIXTURE_DIR "/event_store_v1.sqlite"
#define TRACE "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static char dir[256], path[400];

/* The fixture's three posts, found by author (their ids are random). */
typedef struct old_posts {
    sm_uuid_str alice, dave, zoe;
} old_posts;

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        fail_msg("cannot copy %s to %s", from, to);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* 1 if events has a column `metadata`, 0 if not. */
static int has_metadata_column(const char *file)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM pragma_table_info('events')"
                                            " WHERE name = 'metadata'", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static es_store *open_copy(void)
{
    char url[450];
    snprintf(url, sizeof url, "sqlite:%s", path);
    es_store *s = NULL;
    sm_error err = {0};
    if (es_open(url, &s, &err) != ES_OK)
        fail_msg("es_open(%s): %s", url, err.message);
    return s;
}

/* Reads the whole store; checks it holds the fixture's 14 events, none with
 * an owner id or metadata, and finds the posts by their first event. */
static void read_old_events(es_store *s, old_posts *posts)
{
    sm_event_list all = {0};
    es_cursor next = {0};
    sm_error err = {0};
    assert_int_equal(es_read_all(s, NULL, 1000, &all, &next, &err), ES_OK);
    assert_int_equal(all.len, 14);
    memset(posts, 0, sizeof *posts);
    for (size_t i = 0; i < all.len; i++) {
        const sm_event *ev = &all.items[i];
        assert_null(ev->author_id);
        assert_null(ev->user_id);
        assert_null(ev->meta.user_id);
        assert_string_equal(ev->meta.request_id, "");
        assert_string_equal(ev->meta.traceparent, "");
        if (ev->type != SM_EV_POST_CREATED)
            continue;
        char *dst = strcmp(ev->author, "Alice") == 0 ? posts->alice
                    : strcmp(ev->author, "Dave") == 0 ? posts->dave
                    : strcmp(ev->author, "Zoë") == 0  ? posts->zoe
                                                       : NULL;
        assert_non_null(dst);
        memcpy(dst, ev->aggregate_id, sizeof(sm_uuid_str));
    }
    assert_true(posts->alice[0] && posts->dave[0] && posts->zoe[0]);
    sm_event_list_free(&all);
}

/* The folded state of each post is what the commands in
 * make_event_store_v1.sh left. */
static void check_alice(const post_state *p)
{
    assert_int_equal(p->version, 8);
    assert_true(p->active);
    assert_string_equal(p->author, "Alice");
    assert_null(p->author_id);
    assert_string_equal(p->message, "hello, edited");
    assert_int_equal(p->likes, 3);
    assert_int_equal(p->ncomments, 1); /* Carol's was removed */
    assert_string_equal(p->comments[0].text, "nice, edited");
    assert_string_equal(p->comments[0].username, "bob");
    assert_null(p->comments[0].user_id);
    assert_true(p->comments[0].edited);
}

static void check_dave(const post_state *p)
{
    assert_int_equal(p->version, 3);
    assert_false(p->active);
    assert_string_equal(p->author, "Dave");
    assert_string_equal(p->message, "to be deleted");
    assert_int_equal(p->likes, 1);
    assert_int_equal(p->ncomments, 1);
    assert_string_equal(p->comments[0].text, "bye");
    assert_string_equal(p->comments[0].username, "eve");
    assert_false(p->comments[0].edited);
}

static void check_zoe(const post_state *p)
{
    assert_int_equal(p->version, 0);
    assert_true(p->active);
    assert_string_equal(p->author, "Zoë");
    assert_string_equal(p->message, "ünïcode");
    assert_int_equal(p->likes, 0);
    assert_int_equal(p->ncomments, 0);
}

static void check_all(es_store *s, post_repo *r, const old_posts *posts)
{
    const char *ids[3] = {posts->alice, posts->dave, posts->zoe};
    void (*check[3])(const post_state *) = {check_alice, check_dave, check_zoe};
    for (int i = 0; i < 3; i++) {
        post_state p;
        sm_error err = {0};
        assert_int_equal(cmd_load_post(s, ids[i], &p, &err), SM_OK);
        check[i](&p);
        post_free(&p);
        if (r) {
            assert_int_equal(post_repo_load_at(r, ids[i], INT64_MAX, &p, &err), SM_OK);
            check[i](&p);
            post_free(&p);
        }
    }
}

static void test_old_store_opens_migrated_and_folds(void **state)
{
    (void)state;
    assert_int_equal(has_metadata_column(path), 0); /* really a store from before */
    es_store *s = open_copy();
    assert_int_equal(has_metadata_column(path), 1);
    old_posts posts;
    read_old_events(s, &posts);
    /* the file's snapshots are schema 1: today's repository asks for its own
     * schema only, so it folds from the events and must get the same */
    post_repo_config cfg = {.snapshot_every = 0, .cache_bytes = 0};
    sm_error err = {0};
    post_repo *r = post_repo_new(s, &cfg, &err);
    assert_non_null(r);
    check_all(s, r, &posts);
    post_repo_stats st;
    post_repo_get_stats(r, &st);
    assert_int_equal(st.snapshot_hits, 0);
    post_repo_free(r);
    /* the outbox offers the old events (published nowhere: made without
     * Kafka) with their empty metadata, as the relay would publish them */
    sm_event_list heads = {0};
    int64_t gen;
    assert_int_equal(es_fetch_unpublished(s, NULL, 1000, &heads, &gen, &err), ES_OK);
    size_t runs = 0; /* one per post, each from version 0 */
    for (size_t i = 0; i < heads.len; i++) {
        if (i == 0 || strcmp(heads.items[i].aggregate_id, heads.items[i - 1].aggregate_id) != 0) {
            assert_int_equal(heads.items[i].version, 0);
            runs++;
        } else {
            assert_int_equal(heads.items[i].version, heads.items[i - 1].version + 1);
        }
        assert_null(heads.items[i].meta.user_id);
    }
    assert_int_equal(runs, 3);
    sm_event_list_free(&heads);
    es_close(s);
    /* a second open finds the column there and changes nothing */
    s = open_copy();
    read_old_events(s, &posts);
    es_close(s);
}

static sm_status run(cmd_context *ctx, command *c, cmd_result *r)
{
    sm_error err = {0};
    sm_status st = cmd_dispatch(ctx, c, r, &err);
    if (st != SM_OK && st != SM_ERR_FORBIDDEN)
        fail_msg("%s: %s", cmd_name(c->type), err.message);
    return st;
}

static void test_new_commands_append_events_with_metadata_beside_old_ones(void **state)
{
    (void)state;
    es_store *s = open_copy();
    old_posts posts;
    read_old_events(s, &posts);
    cmd_context ctx;
    cmd_context_init(&ctx, s);
    cmd_result r;

    /* an authenticated comment on Alice's old post */
    command add = {.type = CMD_ADD_COMMENT, .if_match = CMD_NO_IF_MATCH, .comment = "new one",
                   .username = "carol", .actor = "carol", .user_id = "sub-carol",
                   .request_id = "req-42", .traceparent = TRACE};
    memcpy(add.post_id, posts.alice, sizeof add.post_id);
    assert_int_equal(run(&ctx, &add, &r), SM_OK);
    assert_int_equal(r.version, 9);

    /* Alice's post was made before auth: it belongs to the name "Alice"
     * (ignoring case), whatever the sub; another name is refused */
    command edit = {.type = CMD_EDIT_MESSAGE, .if_match = CMD_NO_IF_MATCH, .message = "by name",
                    .actor = "mallory", .user_id = "sub-mallory", .request_id = "req-43"};
    memcpy(edit.post_id, posts.alice, sizeof edit.post_id);
    assert_int_equal(run(&ctx, &edit, &r), SM_ERR_FORBIDDEN);
    edit.actor = "alice";
    edit.user_id = "sub-alice";
    assert_int_equal(run(&ctx, &edit, &r), SM_OK);
    /* bob's old comment belongs to "bob" exactly */
    command rm = {.type = CMD_REMOVE_COMMENT, .if_match = CMD_NO_IF_MATCH, .actor = "Bob",
                  .user_id = "sub-bob"};
    memcpy(rm.post_id, posts.alice, sizeof rm.post_id);
    post_state p;
    sm_error err = {0};
    assert_int_equal(cmd_load_post(s, posts.alice, &p, &err), SM_OK);
    memcpy(rm.comment_id, p.comments[0].id, sizeof rm.comment_id);
    post_free(&p);
    assert_int_equal(run(&ctx, &rm, &r), SM_ERR_FORBIDDEN);

    sm_event_list evs = {0};
    assert_int_equal(es_load(s, posts.alice, 0, 0, &evs, &err), ES_OK);
    assert_int_equal(evs.len, 11);
    for (size_t i = 0; i < 9; i++) /* the old ones, untouched */
        assert_null(evs.items[i].meta.user_id);
    const sm_event *c = &evs.items[9], *e = &evs.items[10];
    assert_int_equal(c->type, SM_EV_COMMENT_ADDED);
    assert_string_equal(c->user_id, "sub-carol");
    assert_string_equal(c->meta.user_id, "sub-carol");
    assert_string_equal(c->meta.request_id, "req-42");
    assert_string_equal(c->meta.traceparent, TRACE);
    assert_int_equal(e->type, SM_EV_MESSAGE_UPDATED);
    assert_string_equal(e->meta.user_id, "sub-alice");
    assert_string_equal(e->meta.request_id, "req-43");
    sm_event_list_free(&evs);

    /* the fold of old and new together */
    assert_int_equal(cmd_load_post(s, posts.alice, &p, &err), SM_OK);
    assert_null(p.author_id);
    assert_string_equal(p.message, "by name");
    assert_int_equal(p.ncomments, 2);
    assert_null(p.comments[0].user_id);
    assert_string_equal(p.comments[1].user_id, "sub-carol");
    post_free(&p);
    cmd_context_destroy(&ctx);
    es_close(s);
}

static int setup(void **state)
{
    (void)state;
    if (!test_temp_dir("smpost-oldstore", dir, sizeof dir))
        return -1;
    snprintf(path, sizeof path, "%s/events.db", dir);
    copy_file(FIXTURE, path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    char f[450];
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(f, sizeof f, "%s%s", path, suffix[i]);
        remove(f);
    }
    remove(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_old_store_opens_migrated_and_folds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_new_commands_append_events_with_metadata_beside_old_ones, setup, teardown),
    };
    return cmocka_run_group_tests_name("old_store_sqlite", tests, NULL, NULL);
}
