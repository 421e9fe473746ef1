/* SPDX-License-Identifier: Apache-2.0 */
/* test_rm_pages.c — keyset pages (rm_query.after_id) against each read
 * model adapter: following the cursor gives exactly the offset pages, on
 * every list query, and stays exact while posts are inserted between two
 * pages. SMPOST_TEST_RM_URL picks the adapter as in test_read_model.c
 * ("sqlite": a temp file; "mssql": SMPOST_TEST_MSSQL, else SKIPPED, 77).
 *
 * The server may be shared with other tests that add posts at any time,
 * so each case puts its posts in a window of dates of its own far in the
 * future (2090 to 2093, nobody else's), near the head of every list: rows
 * of other tests land below it (they write at T0 or now), or above it and
 * stay there (test_rm_owners.c heads the lists from 2099 on, and earlier
 * runs of this test leave their windows). Walks start at the window's top
 * (the offset of its first post, or a cursor at its end) and stop once
 * they have left it. */
#include "proc.h"
#include "read_model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char url[1024], tmpdir[256];

#define NPOSTS 24
#define MAX_SEEN 4096
#define WINDOW_MS 100000

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

static void apply_ok(rm_store *s, sm_event *e)
{
    rm_outcome o;
    sm_error err = {0};
    if (rm_apply(s, e, &o, &err) != SM_OK || o != RM_APPLIED)
        fail_msg("apply %s: %s", sm_event_type_name(e->type), err.message);
    sm_event_clear(e);
}

/* A post at `at` with `likes` likes and, if asked, one comment. */
static void add_post(rm_store *s, const char *id, const char *author, int64_t at, int likes,
                     bool comment)
{
    sm_event e = {.type = SM_EV_POST_CREATED, .at_ms = at, .timestamp_ms = at};
    strcpy(e.aggregate_id, id);
    e.author = strdup(author);
    e.message = strdup("m");
    apply_ok(s, &e);
    int64_t v = 1;
    for (; v <= likes; v++) {
        sm_event l = {.type = SM_EV_POST_LIKED, .version = v, .at_ms = at};
        strcpy(l.aggregate_id, id);
        apply_ok(s, &l);
    }
    if (comment) {
        sm_event c = {.type = SM_EV_COMMENT_ADDED, .version = v, .at_ms = at + 1};
        strcpy(c.aggregate_id, id);
        sm_uuid_new(c.comment_id);
        c.comment = strdup("c");
        c.username = strdup("u");
        apply_ok(s, &c);
    }
}

/* A window of WINDOW_MS of its own from 2090-01-01 on. */
static int64_t window_start(void)
{
    sm_uuid_str u;
    sm_uuid_new(u);
    return INT64_C(3786912000000) + (int64_t)(strtoul(u + 24, NULL, 16) % 1000000) * WINDOW_MS;
}

typedef struct walk {
    sm_uuid_str ids[MAX_SEEN];
    size_t n;
    int pages;
} walk;

/* One page: q as given, or after the post `after` (NULL: the first). */
static rm_post_list page(rm_store *s, rm_query q, const rm_post *after, int64_t offset)
{
    q.offset = offset;
    if (after) {
        q.after_id = after->id;
        q.after_date_ms = after->date_posted_ms;
    }
    rm_post_list l = {0};
    sm_error err = {0};
    if (rm_query_posts(s, &q, &l, &err) != SM_OK)
        fail_msg("query: %s", err.message);
    return l;
}

/* Appends l's posts down to the window's start; false once past it or at
 * the end of the list. */
static bool take(walk *w, const rm_post_list *l, int64_t from, int64_t limit)
{
    for (size_t i = 0; i < l->len; i++) {
        if (l->items[i].date_posted_ms < from)
            return false;
        assert_true(w->n < MAX_SEEN);
        strcpy(w->ids[w->n++], l->items[i].id);
    }
    w->pages++;
    return (int64_t)l->len == limit;
}

/* The place of the window's top in q's list: how many posts come before
 * it, and the last of them (*above; id "" if none). */
static int64_t window_top(rm_store *s, rm_query q, int64_t from, rm_post *above)
{
    q.limit = 1000000;
    rm_post_list l = page(s, q, NULL, 0);
    size_t n = 0;
    while (n < l.len && l.items[n].date_posted_ms >= from + WINDOW_MS)
        n++;
    memset(above, 0, sizeof *above);
    if (n > 0) {
        strcpy(above->id, l.items[n - 1].id);
        above->date_posted_ms = l.items[n - 1].date_posted_ms;
    }
    rm_post_list_free(&l);
    return (int64_t)n;
}

static void walk_by_offset(rm_store *s, rm_query q, int64_t from, int64_t top, walk *w)
{
    bool more = true;
    for (int64_t off = top; more; off += q.limit) {
        rm_post_list l = page(s, q, NULL, off);
        more = take(w, &l, from, q.limit);
        rm_post_list_free(&l);
    }
}

/* From the first post after `start` (id "": from the list's head). */
static void walk_by_cursor(rm_store *s, rm_query q, int64_t from, const rm_post *start, walk *w)
{
    rm_post last = *start;
    bool more = true;
    while (more) {
        rm_post_list l = page(s, q, last.id[0] ? &last : NULL, 0);
        more = take(w, &l, from, q.limit);
        if (l.len) {
            strcpy(last.id, l.items[l.len - 1].id);
            last.date_posted_ms = l.items[l.len - 1].date_posted_ms;
        }
        rm_post_list_free(&l);
    }
}

static size_t count_of(const walk *w, const char *id)
{
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        k += strcmp(w->ids[i], id) == 0;
    return k;
}

/* NPOSTS posts in the window, in runs of three sharing a millisecond (the
 * id breaks those ties), with likes 0..3 and a comment on every third;
 * the author's case alternates, as byAuthor ignores it. */
static void seed(rm_store *s, const char *author, int64_t t, sm_uuid_str ids[NPOSTS])
{
    char upper[64];
    snprintf(upper, sizeof upper, "%s", author);
    upper[0] = (char)(upper[0] - 32);
    for (int i = 0; i < NPOSTS; i++) {
        sm_uuid_new(ids[i]);
        add_post(s, ids[i], i % 2 ? upper : author, t + 1000 + (i / 3) * 1000, i % 4, i % 3 == 0);
    }
}

static void test_cursor_pages_equal_offset_pages_on_every_list_query(void **state)
{
    rm_store *s = *state;
    char author[40];
    sm_uuid_str ids[NPOSTS], u;
    sm_uuid_new(u);
    snprintf(author, sizeof author, "keyset-%.8s", u);
    int64_t t = window_start();
    seed(s, author, t, ids);
    const rm_query queries[] = {
        {.kind = RM_Q_ALL},
        {.kind = RM_Q_BY_AUTHOR, .author = author},
        {.kind = RM_Q_WITH_COMMENTS},
        {.kind = RM_Q_WITH_LIKES, .min_likes = 2},
    };
    const int64_t limits[] = {1, 2, 5, 500};
    for (size_t k = 0; k < sizeof queries / sizeof queries[0]; k++) {
        for (size_t j = 0; j < sizeof limits / sizeof limits[0]; j++) {
            rm_query q = queries[k];
            q.limit = limits[j];
            walk *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
            rm_post above;
            int64_t top = window_top(s, q, t, &above);
            walk_by_offset(s, q, t, top, a);
            walk_by_cursor(s, q, t, &above, b);
            if (a->n != b->n)
                fail_msg("query %zu limit %lld: %zu posts by offset, %zu by cursor", k,
                         (long long)q.limit, a->n, b->n);
            for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->ids[i], b->ids[i]))
                    fail_msg("query %zu limit %lld: post %zu differs", k, (long long)q.limit, i);
            /* every post of the window the query selects, once */
            for (int i = 0; i < NPOSTS; i++) {
                bool in = k == 0 || k == 1 || (k == 2 && i % 3 == 0) || (k == 3 && i % 4 >= 2);
                assert_int_equal(count_of(b, ids[i]), in ? 1 : 0);
            }
            free(a);
            free(b);
        }
    }
}

/* Pages of 4 by cursor over the window while posts are inserted between
 * the pages: newer than all, at the same millisecond as the last post seen
 * (one id below it, one above), and further down among the posts still to
 * come. No post comes twice and every post there at the first page comes. */
static void test_cursor_pages_are_stable_under_concurrent_inserts(void **state)
{
    rm_store *s = *state;
    char author[40];
    sm_uuid_str ids[NPOSTS], u;
    sm_uuid_new(u);
    snprintf(author, sizeof author, "stable-%.8s", u);
    int64_t t = window_start();
    seed(s, author, t, ids);
    const rm_query kinds[] = {{.kind = RM_Q_ALL, .limit = 4},
                              {.kind = RM_Q_BY_AUTHOR, .author = author, .limit = 4}};
    for (size_t k = 0; k < 2; k++) {
        walk *w = calloc(1, sizeof *w);
        /* a cursor at the window's end: the first page is its newest posts */
        rm_post last = {.id = "ffffffff-ffff-ffff-ffff-ffffffffffff",
                        .date_posted_ms = t + WINDOW_MS};
        bool more = true;
        while (more) {
            rm_post_list l = page(s, kinds[k], &last, 0);
            more = take(w, &l, t, kinds[k].limit);
            if (l.len) {
                strcpy(last.id, l.items[l.len - 1].id);
                last.date_posted_ms = l.items[l.len - 1].date_posted_ms;
            }
            rm_post_list_free(&l);
            /* inserts between this page and the next */
            sm_uuid_str n;
            sm_uuid_new(n);
            add_post(s, n, author, t + WINDOW_MS / 2 + w->pages, 0, false); /* newest */
            sm_uuid_new(n);
            n[0] = '0';
            add_post(s, n, author, last.date_posted_ms, 0, false); /* tie, id likely below */
            sm_uuid_new(n);
            n[0] = 'f';
            add_post(s, n, author, last.date_posted_ms, 0, false); /* tie, id likely above */
            sm_uuid_new(n);
            add_post(s, n, author, last.date_posted_ms > t + 2000 ? last.date_posted_ms - 500
                                                                  : t + 1,
                     0, false); /* among the posts to come */
        }
        for (size_t i = 0; i < w->n; i++)
            if (count_of(w, w->ids[i]) != 1)
                fail_msg("kind %zu: post %s came %zu times", k, w->ids[i],
                         count_of(w, w->ids[i]));
        for (int i = 0; i < NPOSTS; i++)
            if (count_of(w, ids[i]) != 1)
                fail_msg("kind %zu: original post %d skipped", k, i);
        assert_true(w->pages > NPOSTS / 4);
        free(w);
    }
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
        if (!test_temp_dir("smpost-pages", tmpdir, sizeof tmpdir))
            return 1;
        snprintf(url, sizeof url, "sqlite:%s/readmodel.db", tmpdir);
    }
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_cursor_pages_equal_offset_pages_on_every_list_query),
        T(test_cursor_pages_are_stable_under_concurrent_inserts),
    };
    int rc = cmocka_run_group_tests_name(mssql ? "rm_pages_mssql" : "rm_pages_sqlite", tests,
                                         NULL, NULL);
    if (tmpdir[0])
        test_rm_rf(tmpdir);
    return rc;
}
