/* SPDX-License-Identifier: Apache-2.0 */
/* test_history.c — PostHistory and PostAt (command-api/history.h) against a
 * real event store adapter, picked like test_event_store.c does:
 * SMPOST_TEST_ES_URL "sqlite" (a temp file) or "mongodb" (the server in
 * SMPOST_TEST_MONGO_URL, started by with_jongodb.sh; else SKIPPED, 77).
 *
 * The oracle for PostAt is a fresh aggregate folding the stream's prefix;
 * the repo under test takes a snapshot every 3 events, so most versions are
 * answered from a snapshot plus a tail. */
#include "dispatcher.h"
#include "history.h"
#include "post.h"
#include "post_history.h"
#include "post_repo.h"
#include "proc.h"
#include "sm_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char url[512];
static char tmpdir[256];

typedef struct fixture {
    es_store *store;
    cmd_context ctx;
    sm_uuid_str id;
    int64_t last;
} fixture;

static int64_t clock_ms = 1764000000000;
static int64_t ticking_clock(void) { return clock_ms += 1000; }

static void drain_snapshots(void *repo) { post_repo_drain(repo); }

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sm_error err = {0};
    if (es_open(url, &f->store, &err) != ES_OK)
        fail_msg("es_open(%s): %s", url, err.message);
    cmd_context_init(&f->ctx, f->store);
    f->ctx.now_ms = ticking_clock;
    post_repo_config cfg = {.snapshot_every = 3, .cache_bytes = 1 << 20};
    f->ctx.repo = post_repo_new(f->store, &cfg, &err);
    assert_non_null(f->ctx.repo);
    /* draining after each command pins the snapshot versions (3, 6, 9, 12) */
    ph_write_history(&f->ctx, f->id, drain_snapshots, f->ctx.repo);
    f->last = PH_LAST_VERSION;
    *state = f;
    return 0;
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

/* Runs one history query; returns the status, *body (caller decrefs). */
static int ask(fixture *f, hist_kind kind, const char *id, const char *query, json_t **body)
{
    http_reply reply = {0};
    hist_handle(&f->ctx, kind, id, strlen(id), query, NULL, &reply);
    int status = reply.status;
    *body = json_incref(reply.body);
    http_reply_free(&reply);
    return status;
}

static int ask_status(fixture *f, hist_kind kind, const char *id, const char *query)
{
    json_t *body;
    int status = ask(f, kind, id, query, &body);
    json_decref(body);
    return status;
}

static void test_history_pages_across_a_page_boundary(void **state)
{
    fixture *f = *state;
    sm_event_list all = {0};
    sm_error err;
    assert_int_equal(es_load(f->store, f->id, 0, 0, &all, &err), ES_OK);
    assert_int_equal(all.len, 13);
    json_int_t from = 0;
    size_t seen = 0;
    int pages = 0;
    for (;;) {
        char q[64];
        snprintf(q, sizeof q, "fromVersion=%lld&limit=5", (long long)from);
        json_t *body;
        assert_int_equal(ask(f, HIST_POST_HISTORY, f->id, q, &body), 200);
        json_t *events = json_object_get(body, "events");
        pages++;
        for (size_t i = 0; i < json_array_size(events); i++, seen++) {
            json_t *want = sm_event_to_json(&all.items[seen]);
            assert_true(json_equal(json_array_get(events, i), want));
            json_decref(want);
        }
        json_t *next = json_object_get(body, "nextFromVersion");
        if (json_is_null(next)) {
            json_decref(body);
            break;
        }
        assert_int_equal(json_array_size(events), 5);
        from = json_integer_value(next);
        assert_int_equal(from, (json_int_t)seen);
        json_decref(body);
    }
    assert_int_equal(seen, 13);
    assert_int_equal(pages, 3);
    /* the default page holds everything; past the end is an empty page */
    json_t *body;
    assert_int_equal(ask(f, HIST_POST_HISTORY, f->id, NULL, &body), 200);
    assert_int_equal(json_array_size(json_object_get(body, "events")), 13);
    assert_int_equal(json_integer_value(json_object_get(body, "limit")), HIST_DEFAULT_LIMIT);
    json_decref(body);
    assert_int_equal(ask(f, HIST_POST_HISTORY, f->id, "fromVersion=13", &body), 200);
    assert_int_equal(json_array_size(json_object_get(body, "events")), 0);
    json_decref(body);
    sm_event_list_free(&all);
}

static void test_history_rejects_bad_input_and_unknown_posts(void **state)
{
    fixture *f = *state;
    sm_uuid_str nobody;
    assert_true(sm_uuid_new(nobody));
    assert_int_equal(ask_status(f, HIST_POST_HISTORY, nobody, NULL), 404);
    assert_int_equal(ask_status(f, HIST_POST_HISTORY, nobody, "fromVersion=3"), 404);
    assert_int_equal(ask_status(f, HIST_POST_HISTORY, "not-a-uuid", NULL), 400);
    const char *bad[] = {"limit=0", "limit=1001", "limit=-1", "limit=abc", "fromVersion=-1",
                         "fromVersion=1e3", "fromVersion=99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ask_status(f, HIST_POST_HISTORY, f->id, bad[i]) != 400)
            fail_msg("PostHistory?%s is not 400", bad[i]);
}

/* The state after versions 0..v by a fresh aggregate. */
static json_t *prefix_json(fixture *f, int64_t v)
{
    sm_event_list evs = {0};
    sm_error err;
    assert_int_equal(es_load(f->store, f->id, 0, (size_t)v + 1, &evs, &err), ES_OK);
    post_state p;
    post_init(&p);
    for (size_t i = 0; i < evs.len; i++)
        assert_int_equal(post_apply(&p, &evs.items[i], &err), SM_OK);
    json_t *j = post_to_json(&p);
    post_free(&p);
    sm_event_list_free(&evs);
    return j;
}

static void expect_state(fixture *f, const char *query, int64_t v)
{
    json_t *body;
    int status = ask(f, HIST_POST_AT, f->id, query, &body);
    if (status != 200)
        fail_msg("PostAt?%s: %d", query, status);
    json_t *want = prefix_json(f, v);
    if (!json_equal(json_object_get(body, "post"), want)) {
        char *a = json_dumps(json_object_get(body, "post"), 0), *b = json_dumps(want, 0);
        fail_msg("PostAt?%s\n got  %s\n want %s", query, a, b);
    }
    assert_int_equal(json_integer_value(json_object_get(body, "version")), v);
    json_decref(want);
    json_decref(body);
}

static void test_post_at_every_version_equals_a_fresh_fold_of_the_prefix(void **state)
{
    fixture *f = *state;
    post_repo_stats before, after;
    post_repo_get_stats(f->ctx.repo, &before);
    for (int64_t v = 0; v <= f->last; v++) {
        char q[32];
        snprintf(q, sizeof q, "version=%lld", (long long)v);
        expect_state(f, q, v);
    }
    post_repo_get_stats(f->ctx.repo, &after);
    /* snapshots at 3, 6, 9, 12: every version from 3 on starts at one */
    assert_true(after.snapshot_hits - before.snapshot_hits >= 10);
    assert_int_equal(after.snapshots_ignored, 0);
    json_t *body;
    assert_int_equal(ask(f, HIST_POST_AT, f->id, "version=13", &body), 404);
    json_decref(body);
}

/* Event v was stamped at t0 + 1000 * (v + 1) by the ticking clock. */
static void at_query(char *q, size_t cap, int64_t ms)
{
    sm_time_str t;
    sm_time_format(ms, t);
    snprintf(q, cap, "at=%s", t);
}

static void test_post_at_an_instant_between_two_events_is_the_earlier_state(void **state)
{
    fixture *f = *state;
    sm_event_list all = {0};
    sm_error err;
    assert_int_equal(es_load(f->store, f->id, 0, 0, &all, &err), ES_OK);
    char q[64];
    for (size_t v = 1; v < all.len; v++) {
        int64_t t = all.items[v].timestamp_ms;
        assert_true(t > all.items[v - 1].timestamp_ms + 1);
        at_query(q, sizeof q, t - 1); /* just before event v */
        expect_state(f, q, (int64_t)v - 1);
        at_query(q, sizeof q, t); /* the instant of event v */
        expect_state(f, q, (int64_t)v);
    }
    at_query(q, sizeof q, all.items[all.len - 1].timestamp_ms + 86400000);
    expect_state(f, q, f->last);
    at_query(q, sizeof q, all.items[0].timestamp_ms - 1);
    json_t *body;
    assert_int_equal(ask(f, HIST_POST_AT, f->id, q, &body), 404);
    assert_non_null(strstr(json_string_value(json_object_get(body, "message")),
                           "did not exist yet"));
    json_decref(body);
    sm_event_list_free(&all);
}

static void test_post_at_rejects_bad_input_and_unknown_posts(void **state)
{
    fixture *f = *state;
    sm_uuid_str nobody;
    assert_true(sm_uuid_new(nobody));
    assert_int_equal(ask_status(f, HIST_POST_AT, nobody, "version=0"), 404);
    assert_int_equal(ask_status(f, HIST_POST_AT, nobody, "at=2026-01-01T00:00:00Z"), 404);
    assert_int_equal(ask_status(f, HIST_POST_AT, "1234", "version=0"), 400);
    const char *bad[] = {NULL, "", "version=", "version=-1", "version=abc", "version=1.5",
                         "version=1&at=2026-01-01T00:00:00Z", "at=yesterday",
                         "at=2026-01-01T00:00:00", "at=2026-13-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ask_status(f, HIST_POST_AT, f->id, bad[i]) != 400)
            fail_msg("PostAt?%s is not 400", bad[i] ? bad[i] : "(none)");
}

int main(void)
{
    const char *which = getenv("SMPOST_TEST_ES_URL");
    if (!which || strcmp(which, "sqlite") == 0) {
        if (!test_temp_dir("smpost-hist", tmpdir, sizeof tmpdir))
            return 1;
        snprintf(url, sizeof url, "sqlite:%s/events.db", tmpdir);
    } else {
        const char *m = getenv("SMPOST_TEST_MONGO_URL");
        if (!m || !*m) {
            printf("SKIPPED: SMPOST_TEST_MONGO_URL not set (run through with_jongodb.sh)\n");
            return 77;
        }
        snprintf(url, sizeof url, "%s", m);
    }
    printf("event store under test: %s\n", url);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_history_pages_across_a_page_boundary),
        T(test_history_rejects_bad_input_and_unknown_posts),
        T(test_post_at_every_version_equals_a_fresh_fold_of_the_prefix),
        T(test_post_at_an_instant_between_two_events_is_the_earlier_state),
        T(test_post_at_rejects_bad_input_and_unknown_posts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
