/* SPDX-License-Identifier: Apache-2.0 */
/* test_read_model.c — the read model port's contract: every projection rule,
 * idempotency by version, gaps, and every query, run unchanged against each
 * adapter. SMPOST_TEST_RM_URL picks it:
 *   "sqlite"  a fresh file in a temp directory (always runs);
 *   "mssql"   the SQL Server named by SMPOST_TEST_MSSQL (".ci/run" starts
 *             Babelfish); without it the test prints SKIPPED, exits 77.
 * Every case uses fresh post ids and authors, so cases never see each
 * other's rows even on a shared server. */
#include "mssql_params.h"
#include "proc.h"
#include "read_model.h"
#include "sm_deadline.h"
#include "sm_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sybfront.h>
#include <sybdb.h>

static char url[1024], tmpdir[256];

static int setup(void **state)
{
    rm_store *s = NULL;
    sm_error err = {0};
    if (rm_open(url, &s, &err) != SM_OK)
        fail_msg("rm_open(%s): %s", url, err.message);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    rm_close(*state);
    return 0;
}

/* Event builder: fills the fields each type uses. */
static sm_event ev_new(const char *post, int64_t v, sm_event_type t, int64_t at_ms)
{
    sm_event e = {0};
    sm_uuid_new(e.event_id);
    strcpy(e.aggregate_id, post);
    e.version = v;
    e.type = t;
    e.timestamp_ms = at_ms;
    e.at_ms = at_ms;
    return e;
}

static rm_outcome apply(rm_store *s, sm_event *e)
{
    rm_outcome o = RM_GAP;
    sm_error err = {0};
    if (rm_apply(s, e, &o, &err) != SM_OK)
        fail_msg("apply %s v%lld: %s", sm_event_type_name(e->type), (long long)e->version,
                 err.message);
    return o;
}

static rm_outcome apply_created(rm_store *s, const char *post, const char *author,
                                const char *message, int64_t at)
{
    sm_event e = ev_new(post, 0, SM_EV_POST_CREATED, at);
    e.author = strdup(author);
    e.message = strdup(message);
    rm_outcome o = apply(s, &e);
    sm_event_clear(&e);
    return o;
}

static rm_outcome apply_simple(rm_store *s, const char *post, int64_t v, sm_event_type t)
{
    sm_event e = ev_new(post, v, t, 1764198300000 + v);
    rm_outcome o = apply(s, &e);
    sm_event_clear(&e);
    return o;
}

static rm_outcome apply_comment(rm_store *s, const char *post, int64_t v, sm_event_type t,
                                const char *cid, const char *text, const char *user, int64_t at)
{
    sm_event e = ev_new(post, v, t, at);
    strcpy(e.comment_id, cid);
    e.comment = text ? strdup(text) : NULL;
    e.username = user ? strdup(user) : NULL;
    rm_outcome o = apply(s, &e);
    sm_event_clear(&e);
    return o;
}

static rm_outcome apply_message(rm_store *s, const char *post, int64_t v, const char *msg)
{
    sm_event e = ev_new(post, v, SM_EV_MESSAGE_UPDATED, 1764198300000 + v);
    e.message = strdup(msg);
    rm_outcome o = apply(s, &e);
    sm_event_clear(&e);
    return o;
}

/* Runs a query; returns the list (caller frees). */
static rm_post_list run(rm_store *s, rm_query_kind kind, const char *arg, int64_t n,
                        int64_t limit, int64_t offset)
{
    rm_query q = {.kind = kind, .limit = limit, .offset = offset, .min_likes = n};
    if (kind == RM_Q_BY_ID)
        q.id = arg;
    if (kind == RM_Q_BY_AUTHOR)
        q.author = arg;
    rm_post_list l = {0};
    sm_error err = {0};
    if (rm_query_posts(s, &q, &l, &err) != SM_OK)
        fail_msg("query: %s", err.message);
    return l;
}

static rm_post_list by_id(rm_store *s, const char *id) { return run(s, RM_Q_BY_ID, id, 0, 10, 0); }

static int64_t version_of(rm_store *s, const char *id)
{
    int64_t v = -2;
    sm_error err = {0};
    assert_int_equal(rm_post_version(s, id, &v, &err), SM_OK);
    return v;
}

static void fresh(char *out) { assert_true(sm_uuid_new(out)); }

/* A unique author name for this case. */
static void unique_author(char *out, size_t cap, const char *base)
{
    sm_uuid_str u;
    sm_uuid_new(u);
    snprintf(out, cap, "%s-%.8s", base, u);
}

#define T0 1764198000000LL /* 2025-11-26T23:00:00Z */

static void test_every_projection_rule_yields_the_expected_post(void **state)
{
    rm_store *s = *state;
    sm_uuid_str p, c1, c2;
    fresh(p), fresh(c1), fresh(c2);
    assert_int_equal(apply_created(s, p, "alice", "hello", T0), RM_APPLIED);
    assert_int_equal(apply_message(s, p, 1, "edited"), RM_APPLIED);
    for (int v = 2; v <= 4; v++)
        assert_int_equal(apply_simple(s, p, v, SM_EV_POST_LIKED), RM_APPLIED);
    assert_int_equal(apply_comment(s, p, 5, SM_EV_COMMENT_ADDED, c1, "first", "bob", T0 + 5000),
                     RM_APPLIED);
    assert_int_equal(apply_comment(s, p, 6, SM_EV_COMMENT_ADDED, c2, "second", "carol", T0 + 6000),
                     RM_APPLIED);
    assert_int_equal(apply_comment(s, p, 7, SM_EV_COMMENT_UPDATED, c1, "first!", "bob", T0 + 7000),
                     RM_APPLIED);
    rm_post_list l = by_id(s, p);
    assert_int_equal(l.len, 1);
    rm_post *r = &l.items[0];
    assert_string_equal(r->id, p);
    assert_string_equal(r->author, "alice");
    assert_string_equal(r->message, "edited");
    assert_int_equal(r->date_posted_ms, T0);
    assert_int_equal(r->likes, 3);
    assert_int_equal(r->version, 7);
    assert_int_equal(r->ncomments, 2);
    assert_string_equal(r->comments[0].comment_id, c1); /* oldest first */
    assert_string_equal(r->comments[0].post_id, p);
    assert_string_equal(r->comments[0].comment, "first!");
    assert_string_equal(r->comments[0].username, "bob");
    assert_int_equal(r->comments[0].comment_date_ms, T0 + 5000); /* kept on edit */
    assert_true(r->comments[0].edited);
    assert_int_equal(r->comments[0].edited_at_ms, T0 + 7000);
    assert_false(r->comments[1].edited);
    rm_post_list_free(&l);

    assert_int_equal(apply_comment(s, p, 8, SM_EV_COMMENT_REMOVED, c1, NULL, NULL, T0 + 8000),
                     RM_APPLIED);
    l = by_id(s, p);
    assert_int_equal(l.items[0].ncomments, 1);
    assert_string_equal(l.items[0].comments[0].comment_id, c2);
    assert_int_equal(l.items[0].version, 8);
    rm_post_list_free(&l);
    assert_int_equal(version_of(s, p), 8);
}

static void test_delete_removes_the_post_and_its_comments_but_keeps_its_version(void **state)
{
    rm_store *s = *state;
    sm_uuid_str p, c;
    fresh(p), fresh(c);
    char author[40];
    unique_author(author, sizeof author, "del");
    apply_created(s, p, author, "bye", T0);
    apply_comment(s, p, 1, SM_EV_COMMENT_ADDED, c, "x", "bob", T0 + 1);
    assert_int_equal(apply_simple(s, p, 2, SM_EV_POST_REMOVED), RM_APPLIED);
    rm_post_list l = by_id(s, p);
    assert_int_equal(l.len, 0);
    l = run(s, RM_Q_BY_AUTHOR, author, 0, 10, 0);
    assert_int_equal(l.len, 0);
    assert_int_equal(version_of(s, p), 2);
    /* a redelivered creation cannot bring it back */
    assert_int_equal(apply_created(s, p, author, "bye", T0), RM_DUPLICATE);
    l = by_id(s, p);
    assert_int_equal(l.len, 0);
}

static void test_redelivered_events_change_nothing(void **state)
{
    rm_store *s = *state;
    sm_uuid_str p, c;
    fresh(p), fresh(c);
    apply_created(s, p, "alice", "hello", T0);
    apply_simple(s, p, 1, SM_EV_POST_LIKED);
    apply_comment(s, p, 2, SM_EV_COMMENT_ADDED, c, "nice", "bob", T0 + 2);
    apply_message(s, p, 3, "v3");
    /* every earlier event again, as a replay or a redelivery would */
    assert_int_equal(apply_created(s, p, "alice", "hello", T0), RM_DUPLICATE);
    assert_int_equal(apply_simple(s, p, 1, SM_EV_POST_LIKED), RM_DUPLICATE);
    assert_int_equal(apply_comment(s, p, 2, SM_EV_COMMENT_ADDED, c, "nice", "bob", T0 + 2),
                     RM_DUPLICATE);
    assert_int_equal(apply_message(s, p, 3, "v3"), RM_DUPLICATE);
    assert_int_equal(apply_message(s, p, 2, "older"), RM_DUPLICATE);
    rm_post_list l = by_id(s, p);
    assert_int_equal(l.items[0].likes, 1);
    assert_int_equal(l.items[0].ncomments, 1);
    assert_string_equal(l.items[0].message, "v3");
    assert_int_equal(l.items[0].version, 3);
    rm_post_list_free(&l);
}

static void test_an_event_that_skips_a_version_is_a_gap_and_changes_nothing(void **state)
{
    rm_store *s = *state;
    sm_uuid_str p, q;
    fresh(p), fresh(q);
    apply_created(s, p, "alice", "hello", T0);
    assert_int_equal(apply_simple(s, p, 2, SM_EV_POST_LIKED), RM_GAP);
    assert_int_equal(apply_message(s, p, 5, "later"), RM_GAP);
    /* an event of a post never created is a gap too */
    assert_int_equal(apply_simple(s, q, 1, SM_EV_POST_LIKED), RM_GAP);
    assert_int_equal(version_of(s, q), -1);
    rm_post_list l = by_id(s, p);
    assert_int_equal(l.items[0].likes, 0);
    assert_string_equal(l.items[0].message, "hello");
    assert_int_equal(version_of(s, p), 0);
    rm_post_list_free(&l);
    /* the missing version heals it */
    assert_int_equal(apply_simple(s, p, 1, SM_EV_POST_LIKED), RM_APPLIED);
    assert_int_equal(apply_simple(s, p, 2, SM_EV_POST_LIKED), RM_APPLIED);
    assert_int_equal(version_of(s, p), 2);
}

static void test_queries_filter_and_page_in_a_stable_order(void **state)
{
    rm_store *s = *state;
    char author[40], upper[40];
    unique_author(author, sizeof author, "pager");
    for (size_t i = 0; i < strlen(author); i++)
        upper[i] = (char)(author[i] >= 'a' && author[i] <= 'z' ? author[i] - 32 : author[i]);
    upper[strlen(author)] = '\0';
    sm_uuid_str ids[5], c;
    fresh(c);
    /* posts 0..4 at increasing times; 0 and 1 share a time (order by id) */
    for (int i = 0; i < 5; i++) {
        fresh(ids[i]);
        apply_created(s, ids[i], author, "m", T0 + 100000 + (i < 2 ? 0 : i) * 1000);
        for (int v = 1; v <= i; v++)
            apply_simple(s, ids[i], v, SM_EV_POST_LIKED);
    }
    apply_comment(s, ids[3], 4, SM_EV_COMMENT_ADDED, c, "c", "u", T0 + 200000);

    rm_post_list l = run(s, RM_Q_BY_AUTHOR, upper, 0, 10, 0); /* case-insensitive */
    assert_int_equal(l.len, 5);
    assert_string_equal(l.items[0].id, ids[4]); /* newest first */
    assert_string_equal(l.items[1].id, ids[3]);
    assert_string_equal(l.items[2].id, ids[2]);
    const char *lo = strcmp(ids[0], ids[1]) < 0 ? ids[0] : ids[1];
    assert_string_equal(l.items[3].id, lo); /* same time: id ascending */
    rm_post_list_free(&l);

    l = run(s, RM_Q_BY_AUTHOR, author, 0, 2, 1); /* page 2 of size 2... from offset 1 */
    assert_int_equal(l.len, 2);
    assert_string_equal(l.items[0].id, ids[3]);
    assert_string_equal(l.items[1].id, ids[2]);
    rm_post_list_free(&l);

    l = run(s, RM_Q_WITH_LIKES, NULL, 3, 500, 0);
    int mine = 0;
    for (size_t i = 0; i < l.len; i++) {
        assert_true(l.items[i].likes >= 3);
        mine += strcmp(l.items[i].author, author) == 0;
    }
    assert_int_equal(mine, 2); /* posts 3 and 4 */
    rm_post_list_free(&l);

    l = run(s, RM_Q_WITH_COMMENTS, NULL, 0, 500, 0);
    mine = 0;
    for (size_t i = 0; i < l.len; i++) {
        assert_true(l.items[i].ncomments > 0);
        mine += strcmp(l.items[i].id, ids[3]) == 0;
    }
    assert_int_equal(mine, 1);
    rm_post_list_free(&l);

    l = run(s, RM_Q_ALL, NULL, 0, 500, 0);
    assert_true(l.len >= 5);
    for (size_t i = 1; i < l.len; i++)
        assert_true(l.items[i - 1].date_posted_ms > l.items[i].date_posted_ms ||
                    (l.items[i - 1].date_posted_ms == l.items[i].date_posted_ms &&
                     strcmp(l.items[i - 1].id, l.items[i].id) < 0));
    rm_post_list_free(&l);
}

/* Text that means something to SQL (quotes, comment markers, statement
 * separators, parameter and escape syntax), to LIKE patterns (%, _, [...],
 * backslash), to printf, or to the wire (non-BMP characters, which SQL
 * Server carries as UTF-16 surrogate pairs; bidi and zero-width marks;
 * control characters). No NUL: the API refuses it (docs/api.md, "Limits"). */
static const char *const hostile_texts[] = {
    "'; DROP TABLE Post; --",
    "x' OR '1'='1",
    "O'Brien \"quoted\" ''doubled'' `tick`",
    "-- line comment",
    "/* block */ */ /*",
    "; SELECT 1; DELETE FROM Comment; --",
    "100% _under_ [x] [^a] [%] ^$",
    "%",
    "_",
    "\\",
    "C:\\temp\\new \\' \\\" \\\\",
    "@author @@VERSION ?1 $1 :name %s %n %d",
    "N'x' 0x41 CHAR(39) + '' || ''",
    "\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    "\xe2\x80\xaeRTL\xe2\x80\xac zero\xe2\x80\x8bwidth e\xcc\x81 \xef\xbf\xbf \xf4\x8f\xbf\xbf",
    "tab\there\nnew line\r\nbell\x07 esc\x1b del\x7f",
    "  leading and trailing  ",
};
#define NHOSTILE (sizeof hostile_texts / sizeof hostile_texts[0])

/* The post's text columns hold exactly what the events carried. */
static void expect_post_text(rm_store *s, const char *post, const char *author,
                             const char *message, const char *comment, const char *user)
{
    rm_post_list l = by_id(s, post);
    assert_int_equal(l.len, 1);
    assert_string_equal(l.items[0].author, author);
    assert_string_equal(l.items[0].message, message);
    assert_int_equal(l.items[0].ncomments, 1);
    assert_string_equal(l.items[0].comments[0].comment, comment);
    assert_string_equal(l.items[0].comments[0].username, user);
    rm_post_list_free(&l);
}

static void test_hostile_text_in_every_column_is_stored_verbatim(void **state)
{
    rm_store *s = *state;
    for (size_t i = 0; i < NHOSTILE; i++) {
        const char *t = hostile_texts[i];
        sm_uuid_str p, c;
        fresh(p), fresh(c);
        char author[64]; /* the author column holds at most 64 UTF-16 units */
        snprintf(author, sizeof author, "%.40s", t);
        /* every statement that writes text: create, add, edit message,
         * edit comment; each with the hostile text */
        assert_int_equal(apply_created(s, p, author, t, T0 + (int64_t)i), RM_APPLIED);
        assert_int_equal(apply_comment(s, p, 1, SM_EV_COMMENT_ADDED, c, t, author, T0 + 10),
                         RM_APPLIED);
        expect_post_text(s, p, author, t, t, author);
        char edited[200];
        snprintf(edited, sizeof edited, "%s|%s", t, t);
        assert_int_equal(apply_message(s, p, 2, edited), RM_APPLIED);
        assert_int_equal(apply_comment(s, p, 3, SM_EV_COMMENT_UPDATED, c, edited, author,
                                       T0 + 20),
                         RM_APPLIED);
        expect_post_text(s, p, author, edited, edited, author);
    }
    /* the tables are all still there and whole */
    rm_post_list l = run(s, RM_Q_WITH_COMMENTS, NULL, 0, 500, 0);
    assert_true(l.len >= NHOSTILE);
    rm_post_list_free(&l);
}

static void test_text_at_the_api_limits_is_stored_verbatim(void **state)
{
    rm_store *s = *state;
    /* 4096-byte message of 4-byte characters (surrogate pairs on SQL
     * Server), 2048-byte comment of quotes, 64-byte author and username */
    char message[4097] = "", comment[2049] = "", author[65] = "", user[65] = "";
    for (int i = 0; i < 1024; i++)
        strcat(message, "\xf0\x9f\x98\x80");
    memset(comment, '\'', 2048);
    for (int i = 0; i < 32; i++)
        strcat(author, "\xc3\xa9"); /* 64 bytes, 32 characters */
    memset(user, '%', 64);
    sm_uuid_str p, c;
    fresh(p), fresh(c);
    apply_created(s, p, author, message, T0);
    apply_comment(s, p, 1, SM_EV_COMMENT_ADDED, c, comment, user, T0 + 1);
    expect_post_text(s, p, author, message, comment, user);
}

/* byAuthor is equality, ignoring case: never a pattern, never a
 * prefix, and trailing spaces count. Every author here ends in a suffix of
 * this run, so rows from other runs on a shared server cannot interfere. */
static void test_by_author_is_exact_with_no_wildcards_or_padding(void **state)
{
    rm_store *s = *state;
    sm_uuid_str u;
    fresh(u);
    u[8] = '\0';
    static const char *const bases[] = {"abc", "a_c", "a%", "[ab]c", "ac", "a\\c",
                                        "x' OR '1'='1", "'; DROP TABLE Post; --"};
    enum { NB = sizeof bases / sizeof bases[0] };
    char authors[NB][64], ids[NB][40];
    for (size_t i = 0; i < NB; i++) {
        snprintf(authors[i], sizeof authors[i], "%s-%s", bases[i], u);
        fresh(ids[i]);
        apply_created(s, ids[i], authors[i], "m", T0 + (int64_t)i);
    }
    /* each author finds its own post and only that */
    for (size_t i = 0; i < NB; i++) {
        rm_post_list l = run(s, RM_Q_BY_AUTHOR, authors[i], 0, 50, 0);
        if (l.len != 1)
            fail_msg("byAuthor(%s): %zu posts, want 1", authors[i], l.len);
        assert_string_equal(l.items[0].id, ids[i]);
        assert_string_equal(l.items[0].author, authors[i]);
        rm_post_list_free(&l);
    }
    /* patterns that LIKE (or a careless escape) would match, and padding
     * that SQL's blank-padded comparison would ignore: none match */
    const char *probes[] = {"%-", "_bc-", "a%c-", "[a-z]bc-", "%%-", "abc -", " abc-"};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        char q[64];
        snprintf(q, sizeof q, "%s%s", probes[i], u);
        rm_post_list l = run(s, RM_Q_BY_AUTHOR, q, 0, 50, 0);
        if (l.len != 0)
            fail_msg("byAuthor(%s) matched %zu posts (first: %s)", q, l.len,
                     l.items[0].author);
        rm_post_list_free(&l);
    }
    char padded[80];
    snprintf(padded, sizeof padded, "%s ", authors[0]); /* "abc-<u> " */
    rm_post_list l = run(s, RM_Q_BY_AUTHOR, padded, 0, 50, 0);
    if (l.len != 0)
        fail_msg("byAuthor('%s') matched '%s': trailing space ignored", padded,
                 l.items[0].author);
    /* ASCII case is ignored, and that is all that is */
    char upper[64];
    snprintf(upper, sizeof upper, "A_C-%s", u);
    for (char *c = upper; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    l = run(s, RM_Q_BY_AUTHOR, upper, 0, 50, 0);
    assert_int_equal(l.len, 1);
    assert_string_equal(l.items[0].id, ids[1]);
    rm_post_list_free(&l);
    /* beyond ASCII too, like the command side's author check (DeletePost):
     * both adapters fold É/é and Ä/ä */
    char accented[64], shouted[64], pid[40];
    snprintf(accented, sizeof accented, "\xc3\xa9mile-\xc3\xa4-%s", u);  /* émile-ä */
    snprintf(shouted, sizeof shouted, "\xc3\x89MILE-\xc3\x84-%s", u);    /* ÉMILE-Ä */
    for (char *c = shouted; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    fresh(pid);
    apply_created(s, pid, accented, "m", T0 + 100);
    l = run(s, RM_Q_BY_AUTHOR, shouted, 0, 50, 0);
    if (l.len != 1)
        fail_msg("byAuthor(%s) found %zu posts of %s, want 1", shouted, l.len, accented);
    assert_string_equal(l.items[0].id, pid);
    rm_post_list_free(&l);
}

typedef struct worker {
    rm_store *s;
    int failures;
} worker;

static void *apply_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 10; i++) {
        sm_uuid_str p;
        sm_uuid_new(p);
        sm_event e = ev_new(p, 0, SM_EV_POST_CREATED, T0);
        e.author = strdup("threads");
        e.message = strdup("m");
        rm_outcome o;
        sm_error err = {0};
        if (rm_apply(w->s, &e, &o, &err) != SM_OK || o != RM_APPLIED)
            w->failures++;
        sm_event_clear(&e);
        sm_event l = ev_new(p, 1, SM_EV_POST_LIKED, T0);
        if (rm_apply(w->s, &l, &o, &err) != SM_OK || o != RM_APPLIED)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent_appliers_on_different_posts_all_succeed(void **state)
{
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){*state, 0};
        pthread_create(&t[i], NULL, apply_many, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
}

/* Another session holds the write lock an apply of post needs, so applies
 * of it wait (as long as the adapter waits for a lock), each holding a
 * pooled connection. SQLite: the whole file (BEGIN EXCLUSIVE); SQL Server:
 * the post's PostVersion row (an open transaction that updated it). */
typedef struct blocker {
    sqlite3 *lite;
    DBPROCESS *db;
} blocker;

/* Runs a plain batch on the blocker's session and drains its results. */
static void blocker_exec(DBPROCESS *db, const char *sql)
{
    assert_int_equal(dbcmd(db, sql), SUCCEED);
    assert_int_equal(dbsqlexec(db), SUCCEED);
    while (dbresults(db) == SUCCEED)
        while (dbnextrow(db) == REG_ROW)
            ;
}

static blocker block_post(const char *post)
{
    blocker b = {0};
    if (strncmp(url, "sqlite:", 7) == 0) {
        assert_int_equal(sqlite3_open_v2(url + 7, &b.lite, SQLITE_OPEN_READWRITE, NULL),
                         SQLITE_OK);
        sqlite3_busy_timeout(b.lite, 10000);
        assert_int_equal(sqlite3_exec(b.lite, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
        return b;
    }
    mssql_conninfo ci;
    char why[128], server[300], sql[200];
    assert_true(mssql_conninfo_parse(url + 6, &ci, why, sizeof why));
    snprintf(server, sizeof server, "%s:%d", ci.host, ci.port);
    LOGINREC *login = dblogin(); /* db-lib is initialised: the store was opened */
    DBSETLUSER(login, ci.user);
    DBSETLPWD(login, ci.password);
    DBSETLDBNAME(login, ci.database);
    b.db = dbopen(login, server);
    dbloginfree(login);
    assert_non_null(b.db);
    snprintf(sql, sizeof sql,
             "BEGIN TRAN; UPDATE dbo.PostVersion SET Version = Version WHERE PostId = '%s';",
             post); /* a UUID this test made: nothing to escape */
    blocker_exec(b.db, sql);
    return b;
}

static void unblock(blocker *b)
{
    if (b->lite) {
        sqlite3_exec(b->lite, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(b->lite);
    }
    if (b->db) {
        blocker_exec(b->db, "ROLLBACK;");
        dbclose(b->db);
    }
}

typedef struct blocked_apply {
    rm_store *s;
    const char *post;
} blocked_apply;

static void *apply_blocked(void *arg)
{
    blocked_apply *a = arg;
    sm_event e = ev_new(a->post, 1, SM_EV_POST_LIKED, T0);
    rm_outcome o;
    sm_error err = {0};
    rm_apply(a->s, &e, &o, &err); /* waits for the lock; may fail, may not */
    return NULL;
}


/* apply_batch: the events of a batch in one transaction, each by the
 * rules of a single apply and seeing the ones before it: the same version
 * twice in one batch is applied then a duplicate, a skipped version is a
 * gap, and an old redelivery changes nothing. */
static void test_a_batch_applies_each_event_by_the_version_rules_in_order(void **state)
{
    rm_store *s = *state;
    sm_uuid_str a, b, cid;
    fresh(a);
    fresh(b);
    fresh(cid);
    sm_event evs[7] = {
        ev_new(a, 0, SM_EV_POST_CREATED, 1764198300000),
        ev_new(a, 1, SM_EV_POST_LIKED, 1764198300001),
        ev_new(a, 1, SM_EV_POST_LIKED, 1764198300001), /* redelivered inside the batch */
        ev_new(b, 0, SM_EV_POST_CREATED, 1764198300002),
        ev_new(b, 2, SM_EV_POST_LIKED, 1764198300003), /* b's version 1 never came */
        ev_new(a, 2, SM_EV_COMMENT_ADDED, 1764198300004),
        ev_new(a, 0, SM_EV_POST_CREATED, 1764198300000), /* an old one again */
    };
    evs[0].author = strdup("batcher");
    evs[0].message = strdup("first");
    evs[3].author = strdup("batcher");
    evs[3].message = strdup("second");
    strcpy(evs[5].comment_id, cid);
    evs[5].comment = strdup("in a batch");
    evs[5].username = strdup("bob");
    evs[6].author = strdup("batcher");
    evs[6].message = strdup("must not come back");
    const sm_event *ptrs[7];
    for (int i = 0; i < 7; i++)
        ptrs[i] = &evs[i];
    rm_outcome out[7];
    sm_error err = {0};
    size_t failed = 99;
    if (rm_apply_batch(s, ptrs, 7, out, &failed, &err) != SM_OK)
        fail_msg("apply_batch: %s", err.message);
    const rm_outcome want[7] = {RM_APPLIED, RM_APPLIED, RM_DUPLICATE, RM_APPLIED,
                                RM_GAP,     RM_APPLIED, RM_DUPLICATE};
    for (int i = 0; i < 7; i++)
        if (out[i] != want[i])
            fail_msg("event %d: outcome %d, expected %d", i, (int)out[i], (int)want[i]);
    assert_int_equal(version_of(s, a), 2);
    assert_int_equal(version_of(s, b), 0);
    rm_post_list l = by_id(s, a);
    assert_int_equal(l.len, 1);
    assert_int_equal(l.items[0].likes, 1);
    assert_string_equal(l.items[0].message, "first");
    assert_int_equal(l.items[0].ncomments, 1);
    assert_string_equal(l.items[0].comments[0].comment, "in a batch");
    rm_post_list_free(&l);
    l = by_id(s, b);
    assert_int_equal(l.len, 1);
    assert_int_equal(l.items[0].likes, 0);
    rm_post_list_free(&l);
    for (int i = 0; i < 7; i++)
        sm_event_clear(&evs[i]);
}

/* Runs of likes, as a hot post sends them: interleaved between two posts,
 * cut by another event of the post, a run the read model already holds
 * (all duplicates), and a run that starts past a missing version (all
 * gaps). The SQL Server adapter applies each run as one claim; every like
 * must still get the outcome it would get alone. */
static void test_runs_of_likes_in_a_batch_keep_each_like_s_outcome(void **state)
{
    rm_store *s = *state;
    sm_uuid_str a, b, c, cid;
    fresh(a);
    fresh(b);
    fresh(c);
    fresh(cid);
    /* setup: a, b, c created; a and b liked up to version 2 */
    sm_event pre[7] = {
        ev_new(a, 0, SM_EV_POST_CREATED, 1764198400000), ev_new(b, 0, SM_EV_POST_CREATED, 1764198400001),
        ev_new(c, 0, SM_EV_POST_CREATED, 1764198400002), ev_new(a, 1, SM_EV_POST_LIKED, 1764198400003),
        ev_new(a, 2, SM_EV_POST_LIKED, 1764198400004),   ev_new(b, 1, SM_EV_POST_LIKED, 1764198400005),
        ev_new(b, 2, SM_EV_POST_LIKED, 1764198400006),
    };
    for (int i = 0; i < 3; i++) {
        pre[i].author = strdup("runner");
        pre[i].message = strdup("m");
    }
    const sm_event *pp[7];
    rm_outcome pout[7];
    for (int i = 0; i < 7; i++)
        pp[i] = &pre[i];
    sm_error err = {0};
    size_t failed = 99;
    if (rm_apply_batch(s, pp, 7, pout, &failed, &err) != SM_OK)
        fail_msg("setup batch: %s", err.message);

    enum { N = 14 };
    sm_event evs[N] = {
        ev_new(a, 3, SM_EV_POST_LIKED, 1764198400010), /* a: run 3,4 */
        ev_new(b, 1, SM_EV_POST_LIKED, 1764198400011), /* b: run 1,2 held already */
        ev_new(a, 4, SM_EV_POST_LIKED, 1764198400012),
        ev_new(b, 2, SM_EV_POST_LIKED, 1764198400013),
        ev_new(a, 5, SM_EV_COMMENT_ADDED, 1764198400014), /* cuts a's run */
        ev_new(a, 6, SM_EV_POST_LIKED, 1764198400015),    /* a: run 6,7 */
        ev_new(c, 2, SM_EV_POST_LIKED, 1764198400016),    /* c: 1 never came: run 2,3 gaps */
        ev_new(a, 7, SM_EV_POST_LIKED, 1764198400017),
        ev_new(c, 3, SM_EV_POST_LIKED, 1764198400018),
        ev_new(b, 3, SM_EV_POST_LIKED, 1764198400019), /* b: run 3,4 new */
        ev_new(b, 4, SM_EV_POST_LIKED, 1764198400020),
        ev_new(a, 7, SM_EV_POST_LIKED, 1764198400017), /* redelivered inside the batch */
        ev_new(a, 9, SM_EV_POST_LIKED, 1764198400021), /* a's 8 never came */
        ev_new(a, 8, SM_EV_POST_LIKED, 1764198400022), /* ...and comes after 9: applied */
    };
    strcpy(evs[4].comment_id, cid);
    evs[4].comment = strdup("between runs");
    evs[4].username = strdup("bob");
    const sm_event *ptrs[N];
    for (int i = 0; i < N; i++)
        ptrs[i] = &evs[i];
    rm_outcome out[N];
    if (rm_apply_batch(s, ptrs, N, out, &failed, &err) != SM_OK)
        fail_msg("apply_batch: %s", err.message);
    const rm_outcome want[N] = {
        RM_APPLIED,   RM_DUPLICATE, RM_APPLIED, RM_DUPLICATE, RM_APPLIED, RM_APPLIED, RM_GAP,
        RM_APPLIED,   RM_GAP,       RM_APPLIED, RM_APPLIED,   RM_DUPLICATE, RM_GAP,   RM_APPLIED,
    };
    for (int i = 0; i < N; i++)
        if (out[i] != want[i])
            fail_msg("event %d: outcome %d, expected %d", i, (int)out[i], (int)want[i]);
    assert_int_equal(version_of(s, a), 8);
    assert_int_equal(version_of(s, b), 4);
    assert_int_equal(version_of(s, c), 0);
    const struct { const char *id; int64_t likes; } expect[] = {{a, 2 + 2 + 2 + 1}, {b, 4}, {c, 0}};
    for (size_t i = 0; i < 3; i++) {
        rm_post_list l = by_id(s, expect[i].id);
        assert_int_equal(l.len, 1);
        assert_int_equal(l.items[0].likes, expect[i].likes);
        assert_int_equal(l.items[0].version, i == 0 ? 8 : i == 1 ? 4 : 0);
        rm_post_list_free(&l);
    }
    for (int i = 0; i < N; i++)
        sm_event_clear(&evs[i]);
    for (int i = 0; i < 7; i++)
        sm_event_clear(&pre[i]);
}

/* An event the read model refuses (here a comment id used twice, which
 * the schema's primary key forbids) fails the whole batch: the events
 * before it in the batch are rolled back with it, *failed names it, and
 * what earlier batches applied stays. */
static void test_a_failed_batch_changes_nothing(void **state)
{
    rm_store *s = *state;
    sm_uuid_str a, before, cid;
    fresh(a);
    fresh(before);
    fresh(cid);
    assert_int_equal(apply_created(s, before, "batcher", "kept", 1764198300000), RM_APPLIED);
    sm_event evs[4] = {
        ev_new(a, 0, SM_EV_POST_CREATED, 1764198300000),
        ev_new(before, 1, SM_EV_POST_LIKED, 1764198300001),
        ev_new(a, 1, SM_EV_COMMENT_ADDED, 1764198300002),
        ev_new(a, 2, SM_EV_COMMENT_ADDED, 1764198300003),
    };
    evs[0].author = strdup("batcher");
    evs[0].message = strdup("rolled back");
    for (int i = 2; i < 4; i++) {
        strcpy(evs[i].comment_id, cid); /* the same comment id twice */
        evs[i].comment = strdup("dup");
        evs[i].username = strdup("bob");
    }
    const sm_event *ptrs[4] = {&evs[0], &evs[1], &evs[2], &evs[3]};
    rm_outcome out[4];
    sm_error err = {0};
    size_t failed = 99;
    sm_status st = rm_apply_batch(s, ptrs, 4, out, &failed, &err);
    printf("# failed batch: status=%s failed_at=%zu error=%s\n", sm_status_code(st), failed,
           err.message);
    assert_int_not_equal(st, SM_OK);
    assert_int_equal(failed, 3);
    assert_int_equal(version_of(s, a), -1);     /* its first events rolled back too */
    assert_int_equal(version_of(s, before), 0); /* the like in the batch too */
    rm_post_list l = by_id(s, before);
    assert_int_equal(l.len, 1);
    assert_int_equal(l.items[0].likes, 0);
    rm_post_list_free(&l);
    /* the store still works: the batch without the bad event goes through */
    assert_int_equal(rm_apply_batch(s, ptrs, 3, out, &failed, &err), SM_OK);
    assert_int_equal(version_of(s, a), 1);
    assert_int_equal(version_of(s, before), 1);
    for (int i = 0; i < 4; i++)
        sm_event_clear(&evs[i]);
}

/* More callers than either adapter's pool has connections (8). */
#define BLOCKED_CALLERS 16

static void test_a_call_finding_every_connection_busy_gives_up_at_its_deadline(void **state)
{
    rm_store *s = *state;
    sm_uuid_str pid, other;
    fresh(pid);
    fresh(other);
    apply_created(s, pid, "locked", "m", T0);
    blocker b = block_post(pid);
    pthread_t t[BLOCKED_CALLERS];
    blocked_apply a = {s, pid};
    for (int i = 0; i < BLOCKED_CALLERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, apply_blocked, &a), 0);
    sm_sleep_ms(1000); /* every connection is taken, waiting for the lock */
    /* a request with 300 ms left must not wait seconds for a connection */
    int64_t t0 = sm_mono_ms();
    sm_deadline_set(t0 + 300);
    int64_t v = -2;
    sm_error err = {0};
    sm_status st = rm_post_version(s, other, &v, &err);
    int64_t took = sm_mono_ms() - t0;
    sm_deadline_set(0);
    printf("# every connection busy: post_version -> %s after %lld ms (deadline 300 ms): %s\n",
           sm_status_code(st), (long long)took, err.message);
    unblock(&b);
    for (int i = 0; i < BLOCKED_CALLERS; i++)
        pthread_join(t[i], NULL);
    if (took > 2000)
        fail_msg("a call waited %lld ms for a connection, past its 300 ms deadline",
                 (long long)took);
    assert_int_equal(st, SM_ERR_UNAVAILABLE);
}

int main(void)
{
    const char *which = getenv("SMPOST_TEST_RM_URL");
    bool mssql = which && strcmp(which, "mssql") == 0;
    if (mssql) {
        const char *m = getenv("SMPOST_TEST_MSSQL");
        if (!m || !*m) {
            printf("SKIPPED: SMPOST_TEST_MSSQL not set (.ci/run starts Babelfish and sets it)\n");
            return 77;
        }
        snprintf(url, sizeof url, "mssql:%s", m);
    } else {
        if (!test_temp_dir("smpost-rm", tmpdir, sizeof tmpdir))
            return 1;
        snprintf(url, sizeof url, "sqlite:%s/readmodel.db", tmpdir);
    }
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_projection_rule_yields_the_expected_post),
        T(test_delete_removes_the_post_and_its_comments_but_keeps_its_version),
        T(test_redelivered_events_change_nothing),
        T(test_an_event_that_skips_a_version_is_a_gap_and_changes_nothing),
        T(test_queries_filter_and_page_in_a_stable_order),
        T(test_hostile_text_in_every_column_is_stored_verbatim),
        T(test_text_at_the_api_limits_is_stored_verbatim),
        T(test_by_author_is_exact_with_no_wildcards_or_padding),
        T(test_concurrent_appliers_on_different_posts_all_succeed),
        T(test_a_call_finding_every_connection_busy_gives_up_at_its_deadline),
        T(test_a_batch_applies_each_event_by_the_version_rules_in_order),
        T(test_a_failed_batch_changes_nothing),
        T(test_runs_of_likes_in_a_batch_keep_each_like_s_outcome),
    };
    int rc = cmocka_run_group_tests_name(mssql ? "read_model_mssql" : "read_model_sqlite", tests,
                                         NULL, NULL);
    if (tmpdir[0])
        test_rm_rf(tmpdir);
    return rc;
}
