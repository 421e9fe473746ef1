/* SPDX-License-Identifier: Apache-2.0 */
/* test_hot_post_sqlite.c — many threads liking one post through the
 * dispatcher on the SQLite adapter (real group commit, real fsync): batches
 * form as they will, and whatever they were, every 2xx names a version of
 * its own that is stored, and nothing is stored that nobody was told about.
 *
 * The failing case: a trigger refuses every event past version LIMIT, so
 * batches that straddle it fail as a whole (one transaction). The answers
 * must still match the store exactly: the versions answered 2xx are 1..K,
 * K <= LIMIT events stored, every other like an error. */
#include "dispatcher.h"
#include "post.h"
#include "post_repo.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 12
#define LIKES_EACH 25
#define LIMIT 100 /* the trigger's last accepted version */

typedef struct fixture {
    char dir[64], path[128], url[160];
    es_store *store;
    cmd_context ctx;
    sm_uuid_str id;
} fixture;

typedef struct liker {
    fixture *f;
    int64_t ok_versions[LIKES_EACH];
    int ok, failed;
} liker;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/smpost-hot-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/events.db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    sm_error err = {0};
    if (es_open(f->url, &f->store, &err) != ES_OK)
        fail_msg("es_open: %s", err.message);
    cmd_context_init(&f->ctx, f->store);
    f->ctx.max_attempts = 3;
    post_repo_config cfg = {.snapshot_every = 0, .cache_bytes = 1 << 20};
    f->ctx.repo = post_repo_new(f->store, &cfg, &err);
    assert_non_null(f->ctx.repo);
    command c = {.type = CMD_NEW_POST, .if_match = CMD_NO_IF_MATCH, .author = "alice",
                 .message = "hot"};
    sm_uuid_new(c.post_id);
    cmd_result r;
    assert_int_equal(cmd_dispatch(&f->ctx, &c, &r, &err), SM_OK);
    strcpy(f->id, c.post_id);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    post_repo_free(f->ctx.repo);
    cmd_context_destroy(&f->ctx);
    es_close(f->store);
    char p[160];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void *like_many(void *arg)
{
    liker *l = arg;
    for (int i = 0; i < LIKES_EACH; i++) {
        command c = {.type = CMD_LIKE_POST, .if_match = CMD_NO_IF_MATCH};
        strcpy(c.post_id, l->f->id);
        cmd_result r;
        sm_error err;
        if (cmd_dispatch(&l->f->ctx, &c, &r, &err) == SM_OK)
            l->ok_versions[l->ok++] = r.version;
        else
            l->failed++;
    }
    return NULL;
}

static int cmp_version(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Runs the likers; returns how many were answered 2xx, after checking that
 * their versions are exactly 1..that many and that a fresh store (another
 * es_open on the file: what is durable) holds exactly those. */
static int like_and_check(fixture *f)
{
    liker l[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        l[i] = (liker){.f = f};
        assert_int_equal(pthread_create(&t[i], NULL, like_many, &l[i]), 0);
    }
    int64_t ok[THREADS * LIKES_EACH];
    int n = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        memcpy(&ok[n], l[i].ok_versions, (size_t)l[i].ok * sizeof ok[0]);
        n += l[i].ok;
        assert_int_equal(l[i].ok + l[i].failed, LIKES_EACH);
    }
    qsort(ok, (size_t)n, sizeof ok[0], cmp_version);
    for (int i = 0; i < n; i++)
        assert_int_equal(ok[i], i + 1);
    es_store *fresh;
    sm_error err;
    assert_int_equal(es_open(f->url, &fresh, &err), ES_OK);
    post_state p;
    assert_int_equal(cmd_load_post(fresh, f->id, &p, &err), SM_OK);
    assert_int_equal(p.version, n);
    assert_int_equal(p.likes, n);
    post_free(&p);
    es_close(fresh);
    return n;
}

static void test_concurrent_likes_on_one_post_are_all_stored_with_their_versions(void **state)
{
    fixture *f = *state;
    assert_int_equal(like_and_check(f), THREADS * LIKES_EACH);
}

static void test_refused_batches_store_nothing_and_answer_no_2xx(void **state)
{
    fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER full BEFORE INSERT ON events WHEN NEW.version > %d"
             " BEGIN SELECT RAISE(ABORT, 'the post is full'); END;", LIMIT);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    int n = like_and_check(f);
    assert_true(n > 0 && n <= LIMIT); /* the last batches may all have straddled it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_concurrent_likes_on_one_post_are_all_stored_with_their_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_batches_store_nothing_and_answer_no_2xx,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
