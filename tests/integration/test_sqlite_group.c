/* SPDX-License-Identifier: Apache-2.0 */
/* test_sqlite_group.c — group commit (common/sqlite_group.h) on a real
 * SQLite file: the durability contract seen from each member of a batch.
 *
 * "SM_OK means durable, an error means absent" must hold for every member,
 * whatever another member or the COMMIT does. The faults are real SQLite
 * behaviour, reached through the schema and the connection:
 *  - a trigger doing RAISE(ROLLBACK): the whole transaction is rolled back
 *    under the batch, as SQLite does itself for some SQLITE_FULL, IOERR,
 *    BUSY and NOMEM errors (https://sqlite.org/lang_transaction.html);
 *  - a commit hook returning non-zero: the COMMIT fails;
 *  - a commit hook that sleeps: the COMMIT is slow, so a member answered
 *    before it would read its own write as missing from a new connection.
 * Batches are formed deterministically: the first member blocks inside its
 * transaction until the others are queued (sqlite_group_queued). */
#include "sm_deadline.h"
#include "sm_time.h"
#include "sqlite_group.h"
#include "proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MEMBERS 8

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);"
    "CREATE TRIGGER IF NOT EXISTS poison BEFORE INSERT ON t WHEN NEW.k LIKE 'poison%'"
    " BEGIN SELECT RAISE(ROLLBACK, 'poisoned row'); END;";

static const char *const stmts[] = {"INSERT INTO t (k) VALUES (?1)", "SELECT ?1"};

typedef struct fixture {
    char dir[256], path[300];
    sqlite_pool *pool;
    sqlite_group *group;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !test_temp_dir("smpost-group", f->dir, sizeof f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/g.db", f->dir);
    sm_error err = {0};
    f->pool = sqlite_pool_open(f->path, "test db", schema, stmts, 2, &err);
    if (!f->pool) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    f->group = sqlite_group_new(f->pool);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sqlite_group_free(f->group);
    sqlite_pool_close(f->pool);
    test_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Whether row k exists, read on a brand-new connection (sees only what
 * was committed). */
static bool row_committed(const fixture *f, const char *k)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM t WHERE k = ?1", -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    return rc == SQLITE_ROW;
}

/* ---- members ---------------------------------------------------------------- */

typedef struct member {
    fixture *f;
    char key[32];
    int wait_for_queued;  /* > 0: block inside the transaction until that many queue */
    int (*commit_hook)(void *); /* installed on the connection by this member */
    int64_t deadline_in_ms;     /* > 0: the caller's deadline, from its start */
    sm_status st;
    sm_error err;
    bool visible_when_answered; /* row_committed() right after the answer */
    double cpu_ms;              /* CPU the calling thread used while waiting */
} member;

static sm_status insert_row(sqlite_conn *c, void *arg, sm_error *err)
{
    member *m = arg;
    if (m->wait_for_queued > 0)
        while (sqlite_group_queued(m->f->group) < m->wait_for_queued)
            sm_sleep_ms(1);
    if (m->commit_hook)
        sqlite3_commit_hook(c->db, m->commit_hook, NULL);
    sqlite3_stmt *q = c->st[0];
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, m->key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return sm_fail(err, (rc & 0xff) == SQLITE_CONSTRAINT ? SM_ERR_CONFLICT : SM_ERR_INTERNAL,
                       "insert %s: %s", m->key, sqlite3_errmsg(c->db));
    return SM_OK;
}

static double thread_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

static void *run_member(void *arg)
{
    member *m = arg;
    if (m->deadline_in_ms > 0)
        sm_deadline_set(sm_mono_ms() + m->deadline_in_ms);
    double cpu0 = thread_cpu_ms();
    m->st = sqlite_group_write(m->f->group, insert_row, m, &m->err);
    m->cpu_ms = thread_cpu_ms() - cpu0;
    if (m->st == SM_OK)
        m->visible_when_answered = row_committed(m->f, m->key);
    sm_deadline_set(0);
    return NULL;
}

/* Runs members[0] first (it leads and holds its batch open until the rest
 * are queued), then the others, which queue behind it and form the next
 * batch together. */
static void run_batch_of(fixture *f, member *ms, size_t n)
{
    pthread_t th[MEMBERS + 1];
    assert_true(n <= MEMBERS + 1);
    for (size_t i = 0; i < n; i++)
        ms[i].f = f;
    ms[0].wait_for_queued = (int)n - 1;
    assert_int_equal(pthread_create(&th[0], NULL, run_member, &ms[0]), 0);
    sm_sleep_ms(20); /* members[0] is the leader before the others arrive */
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, run_member, &ms[i]), 0);
        sm_sleep_ms(5); /* queue in index order: members[1] leads the next batch */
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* Every member told SM_OK has its row committed; every member told an
 * error has none. */
static void assert_answers_match_the_file(const fixture *f, const member *ms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool there = row_committed(f, ms[i].key);
        if (ms[i].st == SM_OK && !there)
            fail_msg("%s was answered SM_OK but is not in the file", ms[i].key);
        if (ms[i].st != SM_OK && there)
            fail_msg("%s was answered %s (%s) but is in the file: a retry would duplicate it",
                     ms[i].key, sm_status_code(ms[i].st), ms[i].err.message);
    }
}

/* ---- cases ------------------------------------------------------------------ */

static void test_member_that_rolls_back_the_transaction_misreports_no_other_member(void **state)
{
    fixture *f = *state;
    member ms[MEMBERS + 1] = {0};
    snprintf(ms[0].key, sizeof ms[0].key, "leader");
    for (int i = 1; i <= MEMBERS; i++)
        snprintf(ms[i].key, sizeof ms[i].key, i == 3 ? "poison-%d" : "row-%d", i);
    run_batch_of(f, ms, MEMBERS + 1);
    assert_answers_match_the_file(f, ms, MEMBERS + 1);
    assert_int_equal(ms[0].st, SM_OK);
    assert_int_not_equal(ms[3].st, SM_OK);
    /* the innocent members of the poisoned batch are retried, not failed */
    for (int i = 1; i <= MEMBERS; i++)
        if (i != 3 && ms[i].st != SM_OK)
            fail_msg("%s failed (%s) because another member rolled the transaction back", ms[i].key,
                     ms[i].err.message);
}

static void test_two_members_that_roll_back_fail_alone_and_the_rest_commit(void **state)
{
    fixture *f = *state;
    member ms[MEMBERS + 1] = {0};
    snprintf(ms[0].key, sizeof ms[0].key, "leader");
    for (int i = 1; i <= MEMBERS; i++)
        snprintf(ms[i].key, sizeof ms[i].key, i == 2 || i == 6 ? "poison-%d" : "row-%d", i);
    run_batch_of(f, ms, MEMBERS + 1);
    assert_answers_match_the_file(f, ms, MEMBERS + 1);
    for (int i = 1; i <= MEMBERS; i++)
        assert_int_equal(ms[i].st == SM_OK, i != 2 && i != 6);
}

static int refuse_commit(void *arg)
{
    (void)arg;
    return 1; /* turns the COMMIT into a ROLLBACK */
}

static void test_failing_commit_reaches_every_member_of_the_batch(void **state)
{
    fixture *f = *state;
    member ms[MEMBERS + 1] = {0};
    snprintf(ms[0].key, sizeof ms[0].key, "leader");
    for (int i = 1; i <= MEMBERS; i++)
        snprintf(ms[i].key, sizeof ms[i].key, "row-%d", i);
    ms[MEMBERS].commit_hook = refuse_commit; /* the last member's COMMIT fails */
    run_batch_of(f, ms, MEMBERS + 1);
    assert_answers_match_the_file(f, ms, MEMBERS + 1);
    assert_int_equal(ms[0].st, SM_OK);
    for (int i = 1; i <= MEMBERS; i++) {
        assert_int_not_equal(ms[i].st, SM_OK);
        assert_non_null(strstr(ms[i].err.message, "commit"));
    }
}

static int slow_commit(void *arg)
{
    (void)arg;
    sm_sleep_ms(150);
    return 0;
}

static void test_member_answered_sees_its_write_from_a_new_connection(void **state)
{
    fixture *f = *state;
    member ms[MEMBERS + 1] = {0};
    snprintf(ms[0].key, sizeof ms[0].key, "leader");
    for (int i = 1; i <= MEMBERS; i++)
        snprintf(ms[i].key, sizeof ms[i].key, "row-%d", i);
    ms[1].commit_hook = slow_commit; /* the batch's COMMIT takes 150 ms */
    run_batch_of(f, ms, MEMBERS + 1);
    for (int i = 0; i <= MEMBERS; i++) {
        assert_int_equal(ms[i].st, SM_OK);
        if (!ms[i].visible_when_answered)
            fail_msg("%s was answered before its COMMIT returned", ms[i].key);
    }
}

static int very_slow_commit(void *arg)
{
    (void)arg;
    sm_sleep_ms(1000);
    return 0;
}

/* A member whose deadline passes while its batch runs must wait for the
 * batch (its write may commit) without spinning on an expired timeout. */
static void test_member_past_its_deadline_waits_for_its_batch_without_spinning(void **state)
{
    fixture *f = *state;
    member ms[3] = {0};
    snprintf(ms[0].key, sizeof ms[0].key, "leader");
    snprintf(ms[1].key, sizeof ms[1].key, "row-slow");
    snprintf(ms[2].key, sizeof ms[2].key, "row-late");
    ms[1].commit_hook = very_slow_commit; /* members[1] leads a batch with a slow COMMIT */
    ms[2].deadline_in_ms = 100;           /* members[2] is in it; its deadline passes */
    run_batch_of(f, ms, 3);
    assert_answers_match_the_file(f, ms, 3);
    assert_int_equal(ms[2].st, SM_OK); /* taken before its deadline: it waited */
    printf("# waiting member: %.1f ms CPU\n", ms[2].cpu_ms);
    /* sleeping on its condition variable costs well under a millisecond */
    if (ms[2].cpu_ms > 30)
        fail_msg("the waiting member used %.0f ms of CPU in a 900 ms wait", ms[2].cpu_ms);
}

/* A member still queued (not taken) at its deadline leaves with
 * SM_ERR_UNAVAILABLE and nothing written. */
static void test_member_still_queued_at_its_deadline_leaves_with_nothing_written(void **state)
{
    fixture *f = *state;
    member ms[2] = {0};
    snprintf(ms[0].key, sizeof ms[0].key, "leader");
    snprintf(ms[1].key, sizeof ms[1].key, "row-queued");
    ms[0].commit_hook = very_slow_commit; /* the leader's batch holds the group */
    ms[1].deadline_in_ms = 100;
    run_batch_of(f, ms, 2);
    assert_int_equal(ms[0].st, SM_OK);
    assert_int_equal(ms[1].st, SM_ERR_UNAVAILABLE);
    assert_false(row_committed(f, ms[1].key));
}

/* Two members that use one prepared statement of the shared connection:
 * the first returns early in mid-step (an error path that forgets
 * sqlite3_reset), the second binds and steps it as if it were fresh. */
typedef struct echo {
    const char *text;
    bool leave_mid_step;
    char got[32];
} echo;

static sm_status echo_text(sqlite_conn *c, void *arg, sm_error *err)
{
    echo *e = arg;
    sqlite3_stmt *q = c->st[1];
    sqlite3_bind_text(q, 1, e->text, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW)
        return sm_fail(err, SM_ERR_INTERNAL, "echo %s: step gave %d", e->text, rc);
    snprintf(e->got, sizeof e->got, "%s", (const char *)sqlite3_column_text(q, 0));
    if (e->leave_mid_step)
        return sm_fail(err, SM_ERR_INTERNAL, "echo %s: failing without a reset", e->text);
    sqlite3_reset(q);
    return SM_OK;
}

typedef struct echo_member {
    fixture *f;
    echo e;
    sm_status st;
    sm_error err;
} echo_member;

static void *run_echo(void *arg)
{
    echo_member *m = arg;
    m->st = sqlite_group_write(m->f->group, echo_text, &m->e, &m->err);
    return NULL;
}

static void test_statement_left_mid_step_by_one_member_is_fresh_for_the_next(void **state)
{
    fixture *f = *state;
    member lead = {.f = f, .wait_for_queued = 2};
    snprintf(lead.key, sizeof lead.key, "leader");
    echo_member a = {f, {"first", true, ""}, SM_OK, {0}}, b = {f, {"second", false, ""}, SM_OK, {0}};
    pthread_t tl, ta, tb;
    assert_int_equal(pthread_create(&tl, NULL, run_member, &lead), 0);
    sm_sleep_ms(20);
    assert_int_equal(pthread_create(&ta, NULL, run_echo, &a), 0);
    sm_sleep_ms(5);
    assert_int_equal(pthread_create(&tb, NULL, run_echo, &b), 0);
    pthread_join(tl, NULL);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.st, SM_ERR_INTERNAL);
    if (b.st != SM_OK)
        fail_msg("the second member failed: %s", b.err.message);
    assert_string_equal(b.e.got, "second");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_member_that_rolls_back_the_transaction_misreports_no_other_member),
        T(test_two_members_that_roll_back_fail_alone_and_the_rest_commit),
        T(test_failing_commit_reaches_every_member_of_the_batch),
        T(test_member_answered_sees_its_write_from_a_new_connection),
        T(test_member_past_its_deadline_waits_for_its_batch_without_spinning),
        T(test_member_still_queued_at_its_deadline_leaves_with_nothing_written),
        T(test_statement_left_mid_step_by_one_member_is_fresh_for_the_next),
    };
    return cmocka_run_group_tests_name("sqlite_group", tests, NULL, NULL);
}
