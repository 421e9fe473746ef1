/* SPDX-License-Identifier: Apache-2.0 */
/* test_rm_collation.c — a SQLite read model whose SM_NOCASE index was built
 * by another version of the collation is brought into this binary's order
 * when it is opened, once; a file at this binary's version is left alone.
 *
 * The stale files are real SQLite files written the way an older query-api
 * left them: the schema applied and the posts inserted over a connection on
 * which "SM_NOCASE" is the revision 1 order (ASCII letters mapped to upper
 * case, so '_' sorted after 'Z'; the current order folds to lower case and
 * puts '_' before 'a'). The authors are chosen so the two orders disagree
 * all over the index; with the index left as it was, lookups by author
 * binary-search a tree sorted by other rules and miss rows. */
#include "proc.h"
#include "read_model.h"
#include "sm_text.h"
#include "sqlite_pool.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const char sm_sql_read_model_sqlite[]; /* sql/read_model.sqlite.sql */

#define NPOSTS 2000
#define T0 1764198300000LL

static char tmpdir[256];

typedef struct post {
    sm_uuid_str id;
    char author[8];
    int64_t at;
} post;

static post posts[NPOSTS];

/* Authors from an alphabet whose non-letters sit between 'Z' and 'a' or
 * after 'z' in ASCII: the two orders disagree on nearly every pair. */
static void make_posts(void)
{
    static const char alphabet[] = "aAbBzZ_[^`{~";
    uint32_t x = 12345;
    for (int i = 0; i < NPOSTS; i++) {
        post *p = &posts[i];
        sm_uuid_new(p->id);
        int len = 1 + i % 3;
        for (int k = 0; k < len; k++) {
            x = x * 1103515245u + 12345u;
            p->author[k] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        p->author[len] = '\0';
        p->at = T0 + i;
    }
}

/* The revision 1 SM_NOCASE on ASCII text: 'a'..'z' -> 'A'..'Z'. */
static int legacy_compare(void *arg, int na, const void *a, int nb, const void *b)
{
    const unsigned char *p = a, *q = b;
    for (int i = 0; i < na && i < nb; i++) {
        int x = p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i];
        int y = q[i] >= 'a' && q[i] <= 'z' ? q[i] - 32 : q[i];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return (na > nb) - (na < nb);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

typedef enum { REC_NONE, REC_OLD, REC_CURRENT } recorded;

/* Writes path as an older query-api would have: schema, posts (none if
 * !with_posts), their versions, all indexed in the revision 1 order, and
 * the collation version recorded as rec says (REC_NONE: no table at all,
 * as before versions were recorded). */
static void write_stale_file(const char *path, bool with_posts, recorded rec)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_create_collation(db, "SM_NOCASE", SQLITE_UTF8, NULL, legacy_compare),
                     SQLITE_OK);
    exec(db, sm_sql_read_model_sqlite);
    exec(db, "DROP TABLE IF EXISTS CollationVersion");
    if (rec != REC_NONE) {
        exec(db, "CREATE TABLE CollationVersion (Name TEXT PRIMARY KEY, Version TEXT NOT NULL)");
        char sql[256];
        snprintf(sql, sizeof sql, "INSERT INTO CollationVersion VALUES ('SM_NOCASE', '%s')",
                 rec == REC_OLD ? "fold-1/libc" : sm_text_ci_version());
        exec(db, sql);
    }
    exec(db, "BEGIN");
    sqlite3_stmt *ins, *ver;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO Post (Id, Author, Message, DatePosted,"
                                            " Likes, Version) VALUES (?1, ?2, 'm', ?3, 0, 0)",
                                        -1, &ins, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO PostVersion VALUES (?1, 0)", -1, &ver,
                                        NULL), SQLITE_OK);
    for (int i = 0; with_posts && i < NPOSTS; i++) {
        sqlite3_bind_text(ins, 1, posts[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, posts[i].author, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, posts[i].at);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        sqlite3_bind_text(ver, 1, posts[i].id, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(ver), SQLITE_DONE);
        sqlite3_reset(ver);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(ver);
    exec(db, "COMMIT");
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Runs one text-valued statement on path over a connection with this
 * binary's SM_NOCASE (the pool registers it); "" when there is no row. */
static void query_text(const char *path, const char *sql, char *out, size_t cap)
{
    sm_error err = {0};
    sqlite_pool *p = sqlite_pool_open(path, "test", NULL, NULL, 0, &err);
    if (!p)
        fail_msg("open %s: %s", path, err.message);
    sqlite_conn *c = sqlite_pool_checkout(p, &err);
    assert_non_null(c);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(c->db, sql, -1, &q, NULL), SQLITE_OK);
    out[0] = '\0';
    if (sqlite3_step(q) == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite_pool_checkin(p, c);
    sqlite_pool_close(p);
}

static bool index_is_sound(const char *path)
{
    char r[4096];
    query_text(path, "PRAGMA integrity_check", r, sizeof r);
    return strcmp(r, "ok") == 0;
}

/* rm_open with stderr (sm_log's) captured: returns how many log lines name
 * the given event. */
static int open_counting(const char *path, const char *event, rm_store **out)
{
    char log[300], url[300], line[64];
    snprintf(log, sizeof log, "%s/open.log", tmpdir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    snprintf(line, sizeof line, "event=%s ", event);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    sm_error err = {0};
    sm_status st = rm_open(url, out, &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (st != SM_OK)
        fail_msg("rm_open(%s): %s", url, err.message);
    int n = 0;
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char buf[1024];
    while (fgets(buf, sizeof buf, f)) {
        fputs(buf, stderr); /* still shown */
        n += strstr(buf, line) != NULL;
    }
    fclose(f);
    return n;
}

static int by_time_desc(const void *a, const void *b)
{
    const post *x = *(post *const *)a, *y = *(post *const *)b;
    return x->at != y->at ? (x->at < y->at) - (x->at > y->at) : strcmp(x->id, y->id);
}

/* Every distinct author, asked for in a case variant, returns exactly the
 * posts whose author equals it ignoring case, newest first. */
static void assert_queries_by_author_are_right(rm_store *s)
{
    static post *want[NPOSTS];
    int checked = 0;
    for (int i = 0; i < NPOSTS; i++) {
        char asked[8];
        snprintf(asked, sizeof asked, "%s", posts[i].author);
        bool first = true;
        for (int j = 0; j < i && first; j++)
            first = !sm_text_equal_ci(posts[j].author, asked);
        if (!first)
            continue;
        for (char *c = asked; *c; c++) /* swap case: the query must fold too */
            *c = *c >= 'a' && *c <= 'z' ? *c - 32 : *c >= 'A' && *c <= 'Z' ? *c + 32 : *c;
        size_t n = 0;
        for (int j = 0; j < NPOSTS; j++)
            if (sm_text_equal_ci(posts[j].author, asked))
                want[n++] = &posts[j];
        qsort(want, n, sizeof *want, by_time_desc);

        rm_query q = {.kind = RM_Q_BY_AUTHOR, .author = asked, .limit = NPOSTS};
        rm_post_list got = {0};
        sm_error err = {0};
        assert_int_equal(rm_query_posts(s, &q, &got, &err), SM_OK);
        if (got.len != n)
            fail_msg("byAuthor '%s': %zu posts, expected %zu", asked, got.len, n);
        for (size_t k = 0; k < n; k++)
            if (strcmp(got.items[k].id, want[k]->id) != 0)
                fail_msg("byAuthor '%s': post #%zu is %s, expected %s", asked, k,
                         got.items[k].id, want[k]->id);
        rm_post_list_free(&got);
        checked++;
    }
    assert_true(checked > 100);
}

static void recorded_version(const char *path, char *out, size_t cap)
{
    query_text(path, "SELECT Version FROM CollationVersion WHERE Name = 'SM_NOCASE'", out, cap);
}

static void path_for(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.db", tmpdir, name);
}

/* The file an older query-api left: posts, no version recorded. */
static void test_a_file_indexed_before_versions_were_recorded_is_reindexed_once(void **state)
{
    char path[300], v[128];
    path_for("unversioned", path, sizeof path);
    write_stale_file(path, true, REC_NONE);
    assert_false(index_is_sound(path)); /* the premise: this order does not fit the tree */

    rm_store *s = NULL;
    int logged = open_counting(path, "read_model_reindex", &s);
    assert_queries_by_author_are_right(s);
    rm_close(s);
    assert_true(index_is_sound(path));
    recorded_version(path, v, sizeof v);
    assert_string_equal(v, sm_text_ci_version());
    assert_int_equal(logged, 1);

    /* recorded now: the next start does not pay for it again */
    assert_int_equal(open_counting(path, "read_model_reindex", &s), 0);
    assert_queries_by_author_are_right(s);
    rm_close(s);
}

static void test_a_file_indexed_under_another_version_is_reindexed(void **state)
{
    char path[300], v[128];
    path_for("older", path, sizeof path);
    write_stale_file(path, true, REC_OLD);
    assert_false(index_is_sound(path));

    rm_store *s = NULL;
    int logged = open_counting(path, "read_model_reindex", &s);
    assert_queries_by_author_are_right(s);
    rm_close(s);
    assert_true(index_is_sound(path));
    recorded_version(path, v, sizeof v);
    assert_string_equal(v, sm_text_ci_version());
    assert_int_equal(logged, 1);
}

/* A new read model has nothing to re-sort: the version is recorded, no
 * REINDEX is logged, and its index is right from the start. */
static void test_a_new_file_records_the_version_without_reindexing(void **state)
{
    char path[300], v[128];
    path_for("fresh", path, sizeof path);
    rm_store *s = NULL;
    assert_int_equal(open_counting(path, "read_model_reindex", &s), 0);
    rm_close(s);
    recorded_version(path, v, sizeof v);
    assert_string_equal(v, sm_text_ci_version());

    /* an old file whose Post table is empty is as good as new */
    path_for("empty", path, sizeof path);
    write_stale_file(path, false, REC_NONE);
    assert_int_equal(open_counting(path, "read_model_reindex", &s), 0);
    rm_close(s);
    recorded_version(path, v, sizeof v);
    assert_string_equal(v, sm_text_ci_version());
}

/* The recorded version is trusted, so a start costs one small read, not a
 * REINDEX. The witness: an index deliberately left in the other order but
 * labelled with this version stays as it was. */
static void test_a_file_at_this_version_is_not_reindexed(void **state)
{
    char path[300];
    path_for("current", path, sizeof path);
    write_stale_file(path, true, REC_CURRENT);
    rm_store *s = NULL;
    assert_int_equal(open_counting(path, "read_model_reindex", &s), 0);
    rm_close(s);
    assert_false(index_is_sound(path));
}

int main(void)
{
    if (!test_temp_dir("smpost-rmcoll", tmpdir, sizeof tmpdir))
        return 1;
    make_posts();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_file_indexed_before_versions_were_recorded_is_reindexed_once),
        cmocka_unit_test(test_a_file_indexed_under_another_version_is_reindexed),
        cmocka_unit_test(test_a_new_file_records_the_version_without_reindexing),
        cmocka_unit_test(test_a_file_at_this_version_is_not_reindexed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rm_rf(tmpdir);
    return rc;
}
