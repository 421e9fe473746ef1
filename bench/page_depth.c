/* SPDX-License-Identifier: Apache-2.0 */
/* page_depth.c — the cost of a deep page by offset against the same page by
 * cursor (`after`), through the read model port, for docs/performance.md.
 *
 *   page_depth READ_MODEL_URL POSTS DEPTH [REPEAT]
 *
 * Projects POSTS posts (PostCreatedEvent, four to a millisecond so ties
 * are broken by id; a tenth with a like, a tenth with a comment) into an
 * empty read model (its own SQLite file, or its own SQL Server database),
 * then times REPEAT times each (median printed): the first page, the page
 * at offset DEPTH, and the same page after the cursor of the post at
 * DEPTH - 1, all of 50 posts, for `all` and `withLikes/1`. One line:
 *   PAGE adapter=.. posts=.. depth=.. first_ms=.. offset_ms=.. cursor_ms=..
 *        likes_offset_ms=.. likes_cursor_ms=..
 * Not a test: numbers depend on the machine. */
#include "read_model.h"
#include "sm_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 50
#define T_BASE 1500000000000LL /* 2017-07-14 */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int apply(rm_store *s, sm_event *e)
{
    rm_outcome o;
    sm_error err = {0};
    if (rm_apply(s, e, &o, &err) != SM_OK) {
        fprintf(stderr, "apply: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int seed(rm_store *s, long posts)
{
    for (long i = 0; i < posts; i++) {
        sm_event e = {.type = SM_EV_POST_CREATED, .at_ms = T_BASE + i / 4};
        sm_uuid_new(e.aggregate_id);
        e.author = (char *)"bench";
        e.message = (char *)"a post of the page_depth bench";
        if (apply(s, &e))
            return -1;
        e.version = 1;
        if (i % 10 == 3) {
            e.type = SM_EV_POST_LIKED;
            if (apply(s, &e))
                return -1;
        } else if (i % 10 == 7) {
            e.type = SM_EV_COMMENT_ADDED;
            sm_uuid_new(e.comment_id);
            e.username = (char *)"u";
            e.comment = (char *)"c";
            if (apply(s, &e))
                return -1;
        }
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median time of q over repeat runs; *len, the page's length. */
static double time_query(rm_store *s, const rm_query *q, int repeat, size_t *len)
{
    double *t = calloc((size_t)repeat, sizeof *t);
    for (int r = 0; r < repeat; r++) {
        rm_post_list l = {0};
        sm_error err = {0};
        double t0 = now_ms();
        if (rm_query_posts(s, q, &l, &err) != SM_OK) {
            fprintf(stderr, "query: %s\n", err.message);
            exit(1);
        }
        t[r] = now_ms() - t0;
        *len = l.len;
        rm_post_list_free(&l);
    }
    qsort(t, (size_t)repeat, sizeof *t, cmp_double);
    double m = t[repeat / 2];
    free(t);
    return m;
}

/* The offset page at depth and the same page by cursor; both must agree. */
static void deep_pair(rm_store *s, rm_query q, long depth, int repeat, double *by_offset,
                      double *by_cursor)
{
    rm_post_list before = {0};
    sm_error err = {0};
    q.limit = 1;
    q.offset = depth - 1;
    if (rm_query_posts(s, &q, &before, &err) != SM_OK || before.len != 1) {
        fprintf(stderr, "no post at depth %ld\n", depth);
        exit(1);
    }
    size_t n1, n2;
    q.limit = PAGE;
    q.offset = depth;
    *by_offset = time_query(s, &q, repeat, &n1);
    q.offset = 0;
    q.after_id = before.items[0].id;
    q.after_date_ms = before.items[0].date_posted_ms;
    *by_cursor = time_query(s, &q, repeat, &n2);
    if (n1 != n2) {
        fprintf(stderr, "offset page of %zu posts, cursor page of %zu\n", n1, n2);
        exit(1);
    }
    rm_post_list_free(&before);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: page_depth READ_MODEL_URL POSTS DEPTH [REPEAT]\n");
        return 2;
    }
    long posts = atol(argv[2]), depth = atol(argv[3]);
    int repeat = argc > 4 ? atoi(argv[4]) : 21;
    if (posts <= 0 || depth <= 0 || depth >= posts || repeat <= 0) {
        fprintf(stderr, "page_depth: need 0 < DEPTH < POSTS and REPEAT > 0\n");
        return 2;
    }
    rm_store *s = NULL;
    sm_error err = {0};
    if (rm_open(argv[1], &s, &err) != SM_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    double t0 = now_ms();
    if (seed(s, posts))
        return 1;
    fprintf(stderr, "page_depth: %ld posts projected in %.0f ms\n", posts, now_ms() - t0);
    rm_query all = {.kind = RM_Q_ALL, .limit = PAGE};
    rm_query likes = {.kind = RM_Q_WITH_LIKES, .min_likes = 1, .limit = PAGE};
    size_t n;
    double first = time_query(s, &all, repeat, &n), off, cur, loff, lcur;
    deep_pair(s, all, depth, repeat, &off, &cur);
    deep_pair(s, likes, depth / 10, repeat, &loff, &lcur);
    printf("PAGE adapter=%s posts=%ld depth=%ld first_ms=%.3f offset_ms=%.3f cursor_ms=%.3f "
           "likes_depth=%ld likes_offset_ms=%.3f likes_cursor_ms=%.3f\n",
           rm_adapter_name(s), posts, depth, first, off, cur, depth / 10, loff, lcur);
    rm_close(s);
    return 0;
}
