/* SPDX-License-Identifier: Apache-2.0 */
/* test_event_store.c — the event store port's contract, run unchanged
 * against each adapter. SMPOST_TEST_ES_URL picks the adapter:
 *   "sqlite"  a fresh database file in a temp directory (always runs);
 *   "mongodb" the server in SMPOST_TEST_MONGO_URL (with_jongodb.sh or
 *             with_ferretdb.sh starts one); without it the test prints
 *             SKIPPED and exits 77. SMPOST_TEST_MONGO_LACKS lists what the
 *             server lacks (with_ferretdb.sh: FerretDB 1.x lacks both):
 *             "transactions" (multi-event appends must then be refused
 *             whole), "atomic-updates" (a single-document update is a read
 *             then a write, so the lease race below cannot hold: skipped,
 *             and docs/operations.md says what that costs).
 * Every case works on fresh random stream ids, so cases never see each
 * other's streams even on a shared server. */
#include "event_store.h"
#include "proc.h"

#include <mongoc/mongoc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char url[512];
static char tmpdir[256];
static bool is_mongo;
static bool no_transactions;   /* SMPOST_TEST_MONGO_LACKS has "transactions" */
static bool no_atomic_updates; /* ... "atomic-updates" */

static es_store *open_store(void)
{
    es_store *s = NULL;
    sm_error err = {0};
    es_status st = es_open(url, &s, &err);
    if (st != ES_OK)
        fail_msg("es_open(%s): %s", url, err.message);
    return s;
}

static int setup(void **state)
{
    *state = open_store();
    return 0;
}

static int teardown(void **state)
{
    es_close(*state);
    return 0;
}

/* Fills ev as event `version` of stream id, with every payload field set so
 * round trips check them all. */
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void assert_opt_equal(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void make_event(sm_event *ev, const char *id, int64_t version, sm_event_type type)
{
    memset(ev, 0, sizeof *ev);
    assert_true(sm_uuid_new(ev->event_id));
    strcpy(ev->aggregate_id, id);
    ev->type = type;
    ev->version = version;
    ev->timestamp_ms = 1764198301123 + version;
    ev->at_ms = 1764198300456 + version;
    /* metadata on every event (sm_event_meta), owner ids where they go */
    ev->meta.user_id = strdup("auth0|ålice-1");
    snprintf(ev->meta.request_id, sizeof ev->meta.request_id, "req-%lld", (long long)version);
    strcpy(ev->meta.traceparent, TRACEPARENT);
    switch (type) {
    case SM_EV_POST_CREATED:
        ev->author = strdup("ålice \"the\" author");
        ev->author_id = strdup("auth0|ålice-1");
        ev->message = strdup("hello\nworld ✓");
        break;
    case SM_EV_MESSAGE_UPDATED:
        ev->message = strdup("edited '; DROP TABLE events; --");
        break;
    case SM_EV_COMMENT_ADDED:
        ev->user_id = strdup("auth0|bob-2");
        /* fall through */
    case SM_EV_COMMENT_UPDATED:
        ev->comment = strdup("nice \\ comment");
        ev->username = strdup("bob");
        /* fall through */
    case SM_EV_COMMENT_REMOVED:
        strcpy(ev->comment_id, "0b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d");
        break;
    default:
        break;
    }
}

static void assert_event_equal(const sm_event *a, const sm_event *b)
{
    assert_string_equal(a->event_id, b->event_id);
    assert_string_equal(a->aggregate_id, b->aggregate_id);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->timestamp_ms, b->timestamp_ms);
    assert_string_equal(a->author ? a->author : "", b->author ? b->author : "");
    assert_string_equal(a->message ? a->message : "", b->message ? b->message : "");
    assert_string_equal(a->comment ? a->comment : "", b->comment ? b->comment : "");
    assert_string_equal(a->username ? a->username : "", b->username ? b->username : "");
    assert_string_equal(a->comment_id, b->comment_id);
    assert_opt_equal(a->author_id, b->author_id);
    assert_opt_equal(a->user_id, b->user_id);
    assert_opt_equal(a->meta.user_id, b->meta.user_id);
    assert_string_equal(a->meta.request_id, b->meta.request_id);
    assert_string_equal(a->meta.traceparent, b->meta.traceparent);
    if (a->type == SM_EV_POST_CREATED || a->type == SM_EV_COMMENT_ADDED ||
        a->type == SM_EV_COMMENT_UPDATED)
        assert_int_equal(a->at_ms, b->at_ms);
}

static es_status append1(es_store *s, const char *id, int64_t version, sm_event_type type)
{
    sm_event ev;
    make_event(&ev, id, version, type);
    sm_error err = {0};
    es_status st = es_append(s, id, version - 1, &ev, 1, &err);
    sm_event_clear(&ev);
    return st;
}

static size_t stream_len(es_store *s, const char *id)
{
    sm_event_list l = {0};
    sm_error err;
    assert_int_equal(es_load(s, id, 0, 0, &l, &err), ES_OK);
    for (size_t i = 0; i < l.len; i++)
        assert_int_equal(l.items[i].version, (int64_t)i);
    size_t n = l.len;
    sm_event_list_free(&l);
    return n;
}

static void new_id(sm_uuid_str id) { assert_true(sm_uuid_new(id)); }

static void test_every_event_type_round_trips_exactly(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    sm_event evs[7];
    for (int t = 1; t <= 7; t++)
        make_event(&evs[t - 1], id, t - 1, (sm_event_type)t);
    sm_error err = {0};
    for (int i = 0; i < 7; i++)
        assert_int_equal(es_append(s, id, i - 1, &evs[i], 1, &err), ES_OK);
    sm_event_list got = {0};
    assert_int_equal(es_load(s, id, 0, 0, &got, &err), ES_OK);
    assert_int_equal(got.len, 7);
    for (int i = 0; i < 7; i++) {
        assert_event_equal(&got.items[i], &evs[i]);
        sm_event_clear(&evs[i]);
    }
    sm_event_list_free(&got);
}

static void test_new_stream_on_existing_id_conflicts(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_CONFLICT);
    assert_int_equal(stream_len(s, id), 1);
}

static void test_stale_or_future_expected_version_conflicts_and_writes_nothing(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(append1(s, id, 1, SM_EV_POST_LIKED), ES_OK);
    assert_int_equal(append1(s, id, 2, SM_EV_POST_LIKED), ES_OK);
    assert_int_equal(append1(s, id, 1, SM_EV_POST_LIKED), ES_CONFLICT); /* stale */
    assert_int_equal(append1(s, id, 7, SM_EV_POST_LIKED), ES_CONFLICT); /* ahead: a gap */
    assert_int_equal(stream_len(s, id), 3);
}

static void test_batch_with_wrong_versions_is_invalid(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    sm_event ev;
    make_event(&ev, id, 3, SM_EV_POST_CREATED);
    sm_error err = {0};
    assert_int_equal(es_append(s, id, -1, &ev, 1, &err), ES_INVALID);
    sm_event_clear(&ev);
    assert_int_equal(stream_len(s, id), 0);
}

/* A MongoDB without multi-document transactions (FerretDB 1.x, a
 * standalone server) cannot write a batch atomically, so the adapter must
 * refuse it whole, say why, and write none of it; single events still go
 * in. */
static void expect_batch_refused_whole(es_store *s, const char *id, int64_t expected,
                                       const sm_event *evs, size_t n)
{
    size_t before = stream_len(s, id);
    sm_error err = {0};
    es_status st = es_append(s, id, expected, evs, n, &err);
    if (st != ES_INTERNAL || !strstr(err.message, "transactions"))
        fail_msg("a batch on a server without transactions: status %d, want %d with a message "
                 "naming transactions (%s)", st, ES_INTERNAL, err.message);
    assert_int_equal(stream_len(s, id), before);
}

static void test_multi_event_append_is_all_or_nothing(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    sm_event evs[3];
    make_event(&evs[0], id, 0, SM_EV_POST_CREATED);
    make_event(&evs[1], id, 1, SM_EV_POST_LIKED);
    make_event(&evs[2], id, 2, SM_EV_POST_LIKED);
    sm_error err = {0};
    if (no_transactions) {
        expect_batch_refused_whole(s, id, -1, evs, 3);
        for (int i = 0; i < 3; i++)
            assert_int_equal(es_append(s, id, i - 1, &evs[i], 1, &err), ES_OK);
    } else {
        assert_int_equal(es_append(s, id, -1, evs, 3, &err), ES_OK);
    }
    assert_int_equal(stream_len(s, id), 3);
    for (int i = 0; i < 3; i++)
        sm_event_clear(&evs[i]);
    /* a batch whose first version is taken writes none of its events (a
     * conflict on every server: the version check comes first) */
    make_event(&evs[0], id, 2, SM_EV_POST_LIKED);
    make_event(&evs[1], id, 3, SM_EV_POST_LIKED);
    assert_int_equal(es_append(s, id, 1, evs, 2, &err), ES_CONFLICT);
    assert_int_equal(stream_len(s, id), 3);
    sm_event_clear(&evs[0]);
    sm_event_clear(&evs[1]);
}

static void test_load_honours_from_version_and_limit(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    for (int v = 1; v < 6; v++)
        assert_int_equal(append1(s, id, v, SM_EV_POST_LIKED), ES_OK);
    sm_event_list l = {0};
    sm_error err;
    assert_int_equal(es_load(s, id, 2, 3, &l, &err), ES_OK);
    assert_int_equal(l.len, 3);
    assert_int_equal(l.items[0].version, 2);
    assert_int_equal(l.items[2].version, 4);
    sm_event_list_free(&l);
    assert_int_equal(es_load(s, id, 6, 0, &l, &err), ES_OK);
    assert_int_equal(l.len, 0);
    sm_uuid_str other;
    new_id(other);
    assert_int_equal(es_load(s, other, 0, 0, &l, &err), ES_OK);
    assert_int_equal(l.len, 0);
}

/* Reads everything after *cur in pages of `page`, advancing *cur. */
static void drain(es_store *s, es_cursor *cur, size_t page, sm_event_list *out)
{
    for (;;) {
        size_t before = out->len;
        sm_error err = {0};
        assert_int_equal(es_read_all(s, cur, page, out, cur, &err), ES_OK);
        assert_true(out->len - before <= page);
        if (out->len - before < page)
            return;
    }
}

static void test_read_all_pages_through_new_events_in_stream_order(void **state)
{
    es_store *s = *state;
    es_cursor cur = {""};
    sm_event_list skip = {0};
    drain(s, &cur, 100, &skip); /* move past earlier cases' events */
    sm_event_list_free(&skip);

    sm_uuid_str a, b;
    new_id(a);
    new_id(b);
    assert_int_equal(append1(s, a, 0, SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(append1(s, b, 0, SM_EV_POST_CREATED), ES_OK);
    for (int v = 1; v <= 3; v++) {
        assert_int_equal(append1(s, a, v, SM_EV_POST_LIKED), ES_OK);
        assert_int_equal(append1(s, b, v, SM_EV_POST_LIKED), ES_OK);
    }
    sm_event_list got = {0};
    drain(s, &cur, 3, &got); /* 8 events in pages of 3: 3 + 3 + 2 */
    assert_int_equal(got.len, 8);
    int64_t next_a = 0, next_b = 0;
    for (size_t i = 0; i < got.len; i++) {
        const sm_event *ev = &got.items[i];
        if (strcmp(ev->aggregate_id, a) == 0)
            assert_int_equal(ev->version, next_a++);
        else if (strcmp(ev->aggregate_id, b) == 0)
            assert_int_equal(ev->version, next_b++);
        else
            fail_msg("foreign event in read_all");
    }
    sm_event_list_free(&got);
    /* nothing new: an empty page and an unchanged cursor */
    es_cursor same = cur;
    sm_error err;
    assert_int_equal(es_read_all(s, &cur, 10, &got, &cur, &err), ES_OK);
    assert_int_equal(got.len, 0);
    assert_string_equal(cur.token, same.token);
    es_cursor bad = {"not-a-position"};
    assert_int_equal(es_read_all(s, &bad, 10, &got, &cur, &err), ES_INVALID);
}

typedef struct racer {
    es_store *s;
    const char *id;
    int64_t version;
    es_status st;
    int ok_count;
} racer;

static void *race_same_version(void *arg)
{
    racer *r = arg;
    r->st = append1(r->s, r->id, r->version, SM_EV_POST_LIKED);
    return NULL;
}

static void test_racing_writers_of_one_version_have_exactly_one_winner(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    enum { N = 8 };
    pthread_t t[N];
    racer r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer){s, id, 1, ES_INTERNAL, 0};
        pthread_create(&t[i], NULL, race_same_version, &r[i]);
    }
    int wins = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (r[i].st == ES_OK)
            wins++;
        else
            assert_int_equal(r[i].st, ES_CONFLICT);
    }
    assert_int_equal(wins, 1);
    assert_int_equal(stream_len(s, id), 2);
}

/* Appends `ok_count` likes, each time reloading the stream's version and
 * retrying on conflict, like the dispatcher does across processes. */
static void *like_with_retry(void *arg)
{
    racer *r = arg;
    int done = 0;
    while (done < r->ok_count) {
        sm_event_list l = {0};
        sm_error err;
        if (es_load(r->s, r->id, 0, 0, &l, &err) != ES_OK) {
            r->st = ES_INTERNAL;
            return NULL;
        }
        int64_t v = (int64_t)l.len;
        sm_event_list_free(&l);
        es_status st = append1(r->s, r->id, v, SM_EV_POST_LIKED);
        if (st == ES_OK)
            done++;
        else if (st != ES_CONFLICT) {
            r->st = st;
            return NULL;
        }
    }
    r->st = ES_OK;
    return NULL;
}

static void test_concurrent_writers_with_retries_leave_a_dense_stream(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    enum { N = 4, EACH = 8 };
    pthread_t t[N];
    racer r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer){s, id, 0, ES_INTERNAL, EACH};
        pthread_create(&t[i], NULL, like_with_retry, &r[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].st, ES_OK);
    }
    assert_int_equal(stream_len(s, id), 1 + N * EACH);
}

/* Writers on their own posts, mixed with writers that lose races on one
 * shared post: on SQLite they share transactions (group commit), and one
 * writer's conflict must neither undo nor block the others' appends. */
typedef struct own_writer {
    es_store *s;
    sm_uuid_str id;
    es_status st;
} own_writer;

static void *append_own_stream(void *arg)
{
    own_writer *w = arg;
    w->st = append1(w->s, w->id, 0, SM_EV_POST_CREATED);
    for (int64_t v = 1; w->st == ES_OK && v < 40; v++)
        w->st = append1(w->s, w->id, v, SM_EV_POST_LIKED);
    return NULL;
}

static void test_concurrent_appends_to_many_streams_are_independent(void **state)
{
    es_store *s = *state;
    enum { OWN = 12, RACERS = 4 };
    pthread_t t[OWN + RACERS];
    own_writer w[OWN];
    racer r[RACERS];
    sm_uuid_str shared;
    new_id(shared);
    assert_int_equal(append1(s, shared, 0, SM_EV_POST_CREATED), ES_OK);
    for (int i = 0; i < OWN; i++) {
        w[i] = (own_writer){.s = s, .st = ES_INTERNAL};
        new_id(w[i].id);
        pthread_create(&t[i], NULL, append_own_stream, &w[i]);
    }
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){s, shared, 0, ES_INTERNAL, 10};
        pthread_create(&t[OWN + i], NULL, like_with_retry, &r[i]);
    }
    for (int i = 0; i < OWN + RACERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < OWN; i++) {
        assert_int_equal(w[i].st, ES_OK);
        assert_int_equal(stream_len(s, w[i].id), 40);
    }
    for (int i = 0; i < RACERS; i++)
        assert_int_equal(r[i].st, ES_OK);
    assert_int_equal(stream_len(s, shared), 1 + RACERS * 10);
}

static void test_events_survive_closing_and_reopening_the_store(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(append1(s, id, 1, SM_EV_POST_LIKED), ES_OK);
    es_close(s);
    *state = s = open_store();
    assert_int_equal(stream_len(s, id), 2);
    assert_int_equal(append1(s, id, 2, SM_EV_POST_LIKED), ES_OK);
    sm_error err;
    assert_int_equal(es_ping(s, &err), ES_OK);
}

static void test_unreachable_server_is_unavailable_not_fatal(void **state)
{
    (void)state;
    if (!is_mongo) {
        /* SQLite has no server; an unopenable path is the nearest failure. */
        es_store *s = NULL;
        sm_error err;
        assert_int_not_equal(es_open("sqlite:/proc/no/such/dir/events.db", &s, &err), ES_OK);
        assert_null(s);
        return;
    }
    char dead[128];
    snprintf(dead, sizeof dead, "mongodb://127.0.0.1:%d/smpost?serverSelectionTimeoutMS=300",
             test_free_port());
    es_store *s = NULL;
    sm_error err = {0};
    assert_int_equal(es_open(dead, &s, &err), ES_OK);
    assert_int_equal(es_ping(s, &err), ES_UNAVAILABLE);
    sm_uuid_str id;
    new_id(id);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_UNAVAILABLE);
    es_close(s);
}

/* Publishes (marks) everything unpublished, run by run, as a relay would;
 * returns how many events that took. */
static int64_t drain_outbox(es_store *s)
{
    int64_t total = 0;
    for (;;) {
        sm_event_list heads = {0};
        sm_error err = {0};
        int64_t gen;
        assert_int_equal(es_fetch_unpublished(s, NULL, 1000, &heads, &gen, &err), ES_OK);
        size_t n = heads.len;
        if (n)
            assert_int_equal(es_mark_published(s, heads.items, n, gen, &err), ES_OK);
        sm_event_list_free(&heads);
        if (n == 0)
            return total;
        total += (int64_t)n;
    }
}

/* The first event of id's run in the round, checking that the run is
 * contiguous, in version order, and not split by another post's events;
 * *len (if given) receives its length. NULL if id has no run there. */
static const sm_event *find_run(const sm_event_list *round, const char *id, size_t *len)
{
    const sm_event *first = NULL;
    size_t n = 0;
    for (size_t i = 0; i < round->len; i++) {
        if (strcmp(round->items[i].aggregate_id, id) != 0)
            continue;
        if (!first) {
            first = &round->items[i];
        } else {
            if (&round->items[i] != first + n)
                fail_msg("post %s: its run is split by another post's events", id);
            if (round->items[i].version != first->version + (int64_t)n)
                fail_msg("post %s: version %lld in its run where %lld was due", id,
                         (long long)round->items[i].version,
                         (long long)(first->version + (int64_t)n));
        }
        n++;
    }
    if (len)
        *len = n;
    return first;
}

static const sm_event *find_head(const sm_event_list *round, const char *id)
{
    return find_run(round, id, NULL);
}

static void test_outbox_offers_runs_from_each_posts_lowest_unpublished_version(void **state)
{
    es_store *s = *state;
    drain_outbox(s);
    sm_error err = {0};
    int64_t pending = -1, oldest = -1, published0 = -1, published = -1;
    assert_int_equal(es_outbox_stats(s, &pending, &oldest, &published0, &err), ES_OK);
    assert_int_equal(pending, 0);

    sm_uuid_str a, b;
    new_id(a);
    new_id(b);
    assert_int_equal(append1(s, a, 0, SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(append1(s, a, 1, SM_EV_POST_LIKED), ES_OK);
    assert_int_equal(append1(s, a, 2, SM_EV_POST_LIKED), ES_OK);
    assert_int_equal(append1(s, b, 0, SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(es_outbox_stats(s, &pending, &oldest, &published, &err), ES_OK);
    assert_int_equal(pending, 4);
    assert_int_equal(published, published0);
    assert_int_equal(oldest, 1764198301123); /* make_event's timestamp for version 0 */

    sm_event_list round = {0};
    int64_t gen;
    size_t len;
    assert_int_equal(es_fetch_unpublished(s, NULL, 100, &round, &gen, &err), ES_OK);
    assert_int_equal(round.len, 4);
    assert_int_equal(find_run(&round, a, &len)->version, 0);
    assert_int_equal(len, 3);
    assert_int_equal(find_run(&round, b, &len)->version, 0);
    assert_int_equal(len, 1);
    /* the confirmed prefix of A's run (a@0) is marked, a@1 failed: the next
     * run of A starts at a@1; marking twice is harmless */
    assert_int_equal(es_mark_published(s, find_head(&round, a), 1, gen, &err), ES_OK);
    assert_int_equal(es_mark_published(s, find_head(&round, a), 1, gen, &err), ES_OK);
    sm_event_list_free(&round);
    assert_int_equal(es_fetch_unpublished(s, NULL, 100, &round, &gen, &err), ES_OK);
    assert_int_equal(round.len, 3);
    assert_int_equal(find_run(&round, a, &len)->version, 1);
    assert_int_equal(len, 2);
    sm_event_list_free(&round);
    /* the bound is on events, not posts */
    assert_int_equal(es_fetch_unpublished(s, NULL, 1, &round, &gen, &err), ES_OK);
    assert_int_equal(round.len, 1);
    sm_event_list_free(&round);
    assert_int_equal(es_fetch_unpublished(s, NULL, 2, &round, &gen, &err), ES_OK);
    assert_int_equal(round.len, 2);
    assert_non_null(find_run(&round, a, &len));
    sm_event_list_free(&round);

    assert_int_equal(drain_outbox(s), 3);
    assert_int_equal(es_outbox_stats(s, &pending, &oldest, &published, &err), ES_OK);
    assert_int_equal(pending, 0);
    assert_int_equal(published, published0 + 4);
}

/* Pages after a cursor: a post whose head is behind the cursor (its
 * delivery failed) is not offered from a later page, even though its later
 * versions are there; the pass wraps and its run comes back from the head.
 * Every round honours the bound; a whole drain by pages offers every event
 * of each post in version order. */
static void test_outbox_pages_never_offer_a_version_before_its_predecessor(void **state)
{
    es_store *s = *state;
    drain_outbox(s);
    sm_uuid_str p, q;
    new_id(p);
    new_id(q);
    for (int64_t v = 0; v < 3; v++)
        assert_int_equal(append1(s, p, v, v ? SM_EV_POST_LIKED : SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(append1(s, q, 0, SM_EV_POST_CREATED), ES_OK);

    es_cursor cur = {0};
    sm_event_list round = {0};
    sm_error err = {0};
    int64_t gen;
    size_t len;
    assert_int_equal(es_fetch_unpublished(s, &cur, 2, &round, &gen, &err), ES_OK);
    assert_int_equal(round.len, 2); /* p@0, p@1 */
    assert_int_equal(find_run(&round, p, &len)->version, 0);
    assert_int_equal(len, 2);
    assert_true(cur.token[0] != '\0');
    /* p@0 confirmed, p@1 failed: only the prefix is marked */
    assert_int_equal(es_mark_published(s, &round.items[0], 1, gen, &err), ES_OK);
    sm_event_list_free(&round);
    assert_int_equal(append1(s, p, 3, SM_EV_POST_LIKED), ES_OK);

    /* the next page holds p@2 and q@0: p waits for p@1, behind the cursor */
    assert_int_equal(es_fetch_unpublished(s, &cur, 2, &round, &gen, &err), ES_OK);
    assert_null(find_head(&round, p));
    assert_int_equal(round.len, 1);
    assert_int_equal(find_head(&round, q)->version, 0);
    sm_event_list_free(&round);
    /* then p@3 alone, also waiting; that page reaches the end: a new pass */
    assert_int_equal(es_fetch_unpublished(s, &cur, 2, &round, &gen, &err), ES_OK);
    assert_null(find_head(&round, p));
    assert_int_equal(cur.token[0], '\0');
    sm_event_list_free(&round);
    /* the new pass: p's run from its head */
    assert_int_equal(es_fetch_unpublished(s, &cur, 10, &round, &gen, &err), ES_OK);
    assert_int_equal(find_run(&round, p, &len)->version, 1);
    assert_int_equal(len, 3);
    sm_event_list_free(&round);

    /* a drain by pages of at most 3: every version once, in order, per post */
    int64_t next_p = 1, next_q = 0;
    memset(&cur, 0, sizeof cur);
    for (int rounds = 0;; rounds++) {
        assert_true(rounds < 100);
        assert_int_equal(es_fetch_unpublished(s, &cur, 3, &round, &gen, &err), ES_OK);
        assert_true(round.len <= 3);
        for (size_t i = 0; i < round.len; i++) {
            const sm_event *ev = &round.items[i];
            int64_t *next = strcmp(ev->aggregate_id, p) == 0   ? &next_p
                            : strcmp(ev->aggregate_id, q) == 0 ? &next_q
                                                               : NULL;
            if (next) {
                if (ev->version != *next)
                    fail_msg("post %s: version %lld offered when %lld was due", ev->aggregate_id,
                             (long long)ev->version, (long long)*next);
                (*next)++;
            }
        }
        size_t n = round.len;
        if (n)
            assert_int_equal(es_mark_published(s, round.items, n, gen, &err), ES_OK);
        sm_event_list_free(&round);
        if (n == 0 && cur.token[0] == '\0')
            break;
    }
    assert_int_equal(next_p, 4);
    assert_int_equal(next_q, 1);
}

static void test_outbox_reset_makes_every_event_unpublished_again(void **state)
{
    es_store *s = *state;
    sm_uuid_str a;
    new_id(a);
    assert_int_equal(append1(s, a, 0, SM_EV_POST_CREATED), ES_OK);
    assert_int_equal(append1(s, a, 1, SM_EV_POST_LIKED), ES_OK);
    drain_outbox(s);
    sm_error err = {0};
    int64_t count = 0, pending = 0, oldest = 0;
    assert_int_equal(es_reset_published(s, &count, &err), ES_OK);
    assert_true(count >= 2);
    int64_t published = -1;
    assert_int_equal(es_outbox_stats(s, &pending, &oldest, &published, &err), ES_OK);
    assert_int_equal(pending, count);
    assert_int_equal(published, 0);
    assert_int_equal(drain_outbox(s), count);
}

/* RestoreReadDb resets the outbox while the relay may have a round in
 * flight: heads fetched before the reset, confirmed by Kafka after it. If
 * that round's marks were kept, those versions would be skipped by the
 * replay, and on a wiped read model every later event of their posts would
 * be a gap. The reset is served by another handle on the same store, as
 * when a standby command-api takes the request. */
static void test_marks_of_a_round_fetched_before_a_reset_are_refused(void **state)
{
    es_store *s = *state, *other = open_store();
    sm_uuid_str a, b;
    new_id(a);
    new_id(b);
    assert_int_equal(append1(s, a, 0, SM_EV_POST_CREATED), ES_OK);
    drain_outbox(s); /* a@0 published before the round */
    assert_int_equal(append1(s, a, 1, SM_EV_POST_LIKED), ES_OK);
    assert_int_equal(append1(s, b, 0, SM_EV_POST_CREATED), ES_OK);

    sm_event_list round = {0};
    sm_error err = {0};
    int64_t gen;
    assert_int_equal(es_fetch_unpublished(s, NULL, 100000, &round, &gen, &err), ES_OK);
    assert_int_equal(find_head(&round, a)->version, 1);
    assert_int_equal(find_head(&round, b)->version, 0);
    int64_t count = 0;
    assert_int_equal(es_reset_published(other, &count, &err), ES_OK); /* the restore */
    /* the round's confirmations arrive */
    assert_int_equal(es_mark_published(s, round.items, round.len, gen, &err), ES_CONFLICT);
    sm_event_list_free(&round);

    /* the replay publishes every event of both posts, in version order */
    int64_t next_a = 0, next_b = 0;
    for (;;) {
        sm_event_list heads = {0};
        assert_int_equal(es_fetch_unpublished(s, NULL, 100000, &heads, &gen, &err), ES_OK);
        size_t n = heads.len, len_a, len_b;
        const sm_event *ha = find_run(&heads, a, &len_a), *hb = find_run(&heads, b, &len_b);
        if (ha && ha->version != next_a)
            fail_msg("replay of post a: version %lld offered when %lld was due (a mark from "
                     "before the reset was kept)", (long long)ha->version, (long long)next_a);
        if (hb && hb->version != next_b)
            fail_msg("replay of post b: version %lld offered when %lld was due",
                     (long long)hb->version, (long long)next_b);
        next_a += (int64_t)len_a;
        next_b += (int64_t)len_b;
        if (n)
            assert_int_equal(es_mark_published(s, heads.items, n, gen, &err), ES_OK);
        sm_event_list_free(&heads);
        if (n == 0)
            break;
    }
    assert_int_equal(next_a, 2);
    assert_int_equal(next_b, 1);
    es_close(other);
}

static void test_meta_values_are_stored_and_replaced(void **state)
{
    es_store *s = *state;
    char key[64], buf[ES_META_MAX];
    sm_uuid_str k;
    new_id(k);
    snprintf(key, sizeof key, "test.%s", k);
    sm_error err = {0};
    assert_int_equal(es_get_meta(s, key, buf, sizeof buf, &err), ES_NOT_FOUND);
    assert_int_equal(es_set_meta(s, key, "cluster-1", &err), ES_OK);
    assert_int_equal(es_get_meta(s, key, buf, sizeof buf, &err), ES_OK);
    assert_string_equal(buf, "cluster-1");
    assert_int_equal(es_set_meta(s, key, "cluster-2", &err), ES_OK);
    assert_int_equal(es_get_meta(s, key, buf, sizeof buf, &err), ES_OK);
    assert_string_equal(buf, "cluster-2");
}

static void expect_snapshot(es_store *s, const char *id, int64_t max, int schema, es_status want,
                            int64_t want_version, const char *want_data)
{
    int64_t v;
    char *data;
    sm_error err = {0};
    es_status st = es_load_snapshot(s, id, max, schema, &v, &data, &err);
    if (st != want)
        fail_msg("load_snapshot(max %lld, schema %d): status %d, want %d (%s)", (long long)max,
                 schema, st, want, err.message);
    if (st == ES_OK) {
        assert_int_equal(v, want_version);
        assert_string_equal(data, want_data);
        free(data);
    }
}

static void test_snapshots_latest_at_or_below_a_version_of_one_schema(void **state)
{
    es_store *s = *state;
    sm_uuid_str id, other;
    new_id(id);
    new_id(other);
    sm_error err = {0};
    assert_int_equal(es_save_snapshot(s, id, 3, 1, "{\"at\":3}", &err), ES_OK);
    assert_int_equal(es_save_snapshot(s, id, 7, 1, "{\"at\":7}", &err), ES_OK);
    assert_int_equal(es_save_snapshot(s, id, 5, 2, "{\"schema2\":5}", &err), ES_OK);
    /* idempotent: the first text of a (post, version, schema) stays */
    assert_int_equal(es_save_snapshot(s, id, 3, 1, "{\"again\":3}", &err), ES_OK);
    expect_snapshot(s, id, INT64_MAX, 1, ES_OK, 7, "{\"at\":7}");
    expect_snapshot(s, id, 7, 1, ES_OK, 7, "{\"at\":7}");
    expect_snapshot(s, id, 6, 1, ES_OK, 3, "{\"at\":3}");
    expect_snapshot(s, id, 2, 1, ES_NOT_FOUND, 0, NULL);
    expect_snapshot(s, id, 10, 2, ES_OK, 5, "{\"schema2\":5}");
    expect_snapshot(s, id, 10, 3, ES_NOT_FOUND, 0, NULL);
    expect_snapshot(s, other, 10, 1, ES_NOT_FOUND, 0, NULL);
    /* they are durable like the events */
    es_close(s);
    *state = s = open_store();
    expect_snapshot(s, id, INT64_MAX, 1, ES_OK, 7, "{\"at\":7}");
}

static void test_version_at_finds_the_last_event_at_or_before_an_instant(void **state)
{
    es_store *s = *state;
    sm_uuid_str id, other;
    new_id(id);
    new_id(other);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    for (int64_t v = 1; v <= 3; v++)
        assert_int_equal(append1(s, id, v, SM_EV_POST_LIKED), ES_OK);
    const int64_t t0 = 1764198301123; /* make_event: timestamp = t0 + version */
    sm_error err = {0};
    int64_t v;
    assert_int_equal(es_version_at(s, id, t0 - 1, &v, &err), ES_OK);
    assert_int_equal(v, -1);
    assert_int_equal(es_version_at(s, id, t0, &v, &err), ES_OK);
    assert_int_equal(v, 0);
    assert_int_equal(es_version_at(s, id, t0 + 2, &v, &err), ES_OK);
    assert_int_equal(v, 2);
    assert_int_equal(es_version_at(s, id, INT64_MAX / 2, &v, &err), ES_OK);
    assert_int_equal(v, 3);
    assert_int_equal(es_version_at(s, other, INT64_MAX / 2, &v, &err), ES_OK);
    assert_int_equal(v, -1);
}

static es_status lease(es_store *s, const char *name, const char *owner, int64_t epoch,
                       int64_t now, es_lease *out)
{
    sm_error err = {0};
    return es_lease_acquire(s, name, owner, epoch, now, 100, out, &err);
}

static void test_lease_has_one_holder_and_a_new_epoch_per_change_of_holder(void **state)
{
    es_store *s = *state;
    char name[64];
    sm_uuid_str k;
    new_id(k);
    snprintf(name, sizeof name, "test.%s", k);
    es_lease l;
    assert_int_equal(lease(s, name, "A", 0, 1000, &l), ES_OK);
    assert_string_equal(l.owner, "A");
    assert_int_equal(l.epoch, 1);
    assert_int_equal(l.expires_ms, 1100);
    assert_int_equal(lease(s, name, "B", 0, 1050, &l), ES_CONFLICT); /* held */
    assert_string_equal(l.owner, "A");
    assert_int_equal(l.epoch, 1);
    assert_int_equal(lease(s, name, "A", 1, 1080, &l), ES_OK); /* renewal keeps the epoch */
    assert_int_equal(l.epoch, 1);
    assert_int_equal(l.expires_ms, 1180);
    assert_int_equal(lease(s, name, "B", 0, 1150, &l), ES_CONFLICT); /* renewed: still held */
    assert_int_equal(lease(s, name, "B", 0, 1181, &l), ES_OK);      /* expired: taken over */
    assert_int_equal(l.epoch, 2);
    /* the former holder wakes up: its epoch is gone, its renewal refused */
    assert_int_equal(lease(s, name, "A", 1, 1190, &l), ES_CONFLICT);
    assert_string_equal(l.owner, "B");
    assert_int_equal(l.epoch, 2);
    sm_error err = {0};
    assert_int_equal(es_lease_release(s, name, "A", 1, &err), ES_OK); /* not A's: no effect */
    assert_int_equal(lease(s, name, "C", 0, 1200, &l), ES_CONFLICT);
    assert_int_equal(es_lease_release(s, name, "B", 2, &err), ES_OK);
    assert_int_equal(lease(s, name, "C", 0, 1200, &l), ES_OK); /* released: free at once */
    assert_int_equal(l.epoch, 3);
    /* the same owner restarted (stable instance id, epoch unknown) takes it back */
    assert_int_equal(lease(s, name, "C", 0, 1210, &l), ES_OK);
    assert_int_equal(l.epoch, 4);
    /* ... but the former C, paused with epoch 3, is refused like any
     * former holder, though the name is its own; once the lease has
     * expired it may take it over like anyone */
    assert_int_equal(lease(s, name, "C", 3, 1220, &l), ES_CONFLICT);
    assert_string_equal(l.owner, "C");
    assert_int_equal(l.epoch, 4);
    assert_int_equal(lease(s, name, "C", 4, 1230, &l), ES_OK); /* the holder still renews */
    assert_int_equal(l.epoch, 4);
    assert_int_equal(lease(s, name, "C", 3, 1331, &l), ES_OK);
    assert_int_equal(l.epoch, 5);
}

typedef struct lease_race {
    es_store *s;
    const char *name;
    int who;
    es_status st;
} lease_race;

static void *race_lease(void *arg)
{
    lease_race *r = arg;
    char owner[16];
    snprintf(owner, sizeof owner, "owner-%d", r->who);
    es_lease l;
    r->st = lease(r->s, r->name, owner, 0, 5000, &l);
    return NULL;
}

static void test_racing_lease_takers_have_exactly_one_winner(void **state)
{
    es_store *s = *state;
    char name[64];
    sm_uuid_str k;
    new_id(k);
    snprintf(name, sizeof name, "test.%s", k);
    enum { N = 8 };
    pthread_t t[N];
    lease_race r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (lease_race){s, name, i, ES_INTERNAL};
        pthread_create(&t[i], NULL, race_lease, &r[i]);
    }
    int winners = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        winners += r[i].st == ES_OK;
        assert_true(r[i].st == ES_OK || r[i].st == ES_CONFLICT);
    }
    assert_int_equal(winners, 1);
}

/* Takers of an expired lease race on one stored lease (the create race
 * above is settled by the unique name alone): exactly one may win, or two
 * relays would publish at once under the same epoch, which fencing could
 * not tell apart. Several rounds, since a lost race is a matter of timing. */
static void test_racing_takeovers_of_an_expired_lease_have_exactly_one_winner(void **state)
{
    if (no_atomic_updates)
        skip(); /* FerretDB 1.x: docs/operations.md, "MongoDB stand-ins" */
    es_store *s = *state;
    enum { ROUNDS = 30, N = 8 };
    for (int round = 0; round < ROUNDS; round++) {
        char name[64];
        sm_uuid_str k;
        new_id(k);
        snprintf(name, sizeof name, "test.%s", k);
        es_lease l;
        assert_int_equal(lease(s, name, "former", 0, 1000, &l), ES_OK); /* expires at 1100 */
        pthread_t t[N];
        lease_race r[N];
        for (int i = 0; i < N; i++) {
            r[i] = (lease_race){s, name, i, ES_INTERNAL};
            pthread_create(&t[i], NULL, race_lease, &r[i]); /* at 5000: expired */
        }
        int winners = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            winners += r[i].st == ES_OK;
            assert_true(r[i].st == ES_OK || r[i].st == ES_CONFLICT);
        }
        if (winners != 1)
            fail_msg("round %d: %d takers won the expired lease", round, winners);
        assert_int_equal(lease(s, name, "former", 1, 5001, &l), ES_CONFLICT);
        assert_int_equal(l.epoch, 2);
    }
}

/* The version check under the write lock (SQLite) or the stream lock
 * (MongoDB) hides the schema's UNIQUE (aggregate, version) from every
 * test that goes through the port; it is what holds against a second
 * process, a script or a migration. Writes a duplicate behind the
 * adapter's back and expects the store itself to refuse it. */
static void test_raw_duplicate_of_a_post_version_is_refused_by_the_schema(void **state)
{
    es_store *s = *state;
    sm_uuid_str id, other;
    new_id(id);
    new_id(other);
    assert_int_equal(append1(s, id, 0, SM_EV_POST_CREATED), ES_OK);
    if (!is_mongo) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(url + strlen("sqlite:"), &db), SQLITE_OK);
        char sql[400];
        snprintf(sql, sizeof sql, "INSERT INTO events (event_id, aggregate_id, version, type,"
                 " timestamp_ms, data) VALUES ('%s', '%s', 0, 'PostLikedEvent', 1, '{}')",
                 other, id);
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_close(db);
        if (rc != SQLITE_CONSTRAINT)
            fail_msg("the events table took a second version 0 of a post (rc %d)", rc);
    } else {
        bson_error_t e;
        mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &e);
        assert_non_null(uri);
        mongoc_client_t *client = mongoc_client_new_from_uri(uri);
        const char *dbname = mongoc_uri_get_database(uri);
        mongoc_collection_t *coll = mongoc_client_get_collection(
            client, dbname && *dbname ? dbname : "socialMedia", "eventStore");
        bson_t *doc = BCON_NEW("eventId", BCON_UTF8(other), "aggregateIdentifier", BCON_UTF8(id),
                               "version", BCON_INT64(0), "eventType", BCON_UTF8("PostLikedEvent"));
        bool inserted = mongoc_collection_insert_one(coll, doc, NULL, NULL, &e);
        bson_destroy(doc);
        mongoc_collection_destroy(coll);
        mongoc_client_destroy(client);
        mongoc_uri_destroy(uri);
        if (inserted)
            fail_msg("the eventStore collection took a second version 0 of a post");
        assert_int_equal(e.code, 11000); /* duplicate key */
    }
    assert_int_equal(stream_len(s, id), 1);
}

/* Owner ids (in the payload) and the envelope's metadata come back from
 * every read path: load, read_all and the outbox heads (what the relay
 * publishes). An event without them (auth off) reads back without. */
static void test_metadata_and_owner_ids_come_back_from_every_read(void **state)
{
    es_store *s = *state;
    sm_uuid_str id;
    new_id(id);
    sm_event evs[2];
    make_event(&evs[0], id, 0, SM_EV_POST_CREATED);
    make_event(&evs[1], id, 1, SM_EV_COMMENT_ADDED);
    free(evs[1].user_id); /* a comment made with auth off */
    evs[1].user_id = NULL;
    free(evs[1].meta.user_id);
    evs[1].meta.user_id = NULL;
    evs[1].meta.traceparent[0] = '\0';
    sm_error err = {0};
    for (int i = 0; i < 2; i++)
        assert_int_equal(es_append(s, id, i - 1, &evs[i], 1, &err), ES_OK);

    sm_event_list got = {0};
    assert_int_equal(es_load(s, id, 0, 0, &got, &err), ES_OK);
    assert_int_equal(got.len, 2);
    assert_event_equal(&got.items[0], &evs[0]);
    assert_event_equal(&got.items[1], &evs[1]);
    assert_string_equal(got.items[0].author_id, "auth0|ålice-1");
    assert_string_equal(got.items[0].meta.traceparent, TRACEPARENT);
    assert_null(got.items[1].meta.user_id);
    sm_event_list_free(&got);

    es_cursor from = {0}, next = {0};
    size_t found = 0;
    for (;;) { /* the whole store, in pages: other tests' events are there too */
        sm_event_list page = {0};
        assert_int_equal(es_read_all(s, &from, 500, &page, &next, &err), ES_OK);
        for (size_t i = 0; i < page.len; i++)
            if (strcmp(page.items[i].aggregate_id, id) == 0)
                assert_event_equal(&page.items[i], &evs[page.items[i].version]), found++;
        size_t n = page.len;
        sm_event_list_free(&page);
        if (n == 0)
            break;
        from = next;
    }
    assert_int_equal(found, 2);

    int64_t gen;
    sm_event_list heads = {0};
    assert_int_equal(es_fetch_unpublished(s, NULL, 100000, &heads, &gen, &err), ES_OK);
    found = 0;
    for (size_t i = 0; i < heads.len; i++)
        if (strcmp(heads.items[i].aggregate_id, id) == 0)
            assert_event_equal(&heads.items[i], &evs[found]), found++;
    assert_int_equal(found, 2);
    sm_event_list_free(&heads);
    sm_event_clear(&evs[0]);
    sm_event_clear(&evs[1]);
}

/* An event as stores wrote them before metadata existed (a row with
 * metadata NULL, a document without the field), written behind the
 * adapter's back, reads back with empty metadata and no owner id. */
static void test_event_stored_without_metadata_reads_back_without(void **state)
{
    es_store *s = *state;
    sm_uuid_str id, ev_id;
    new_id(id);
    new_id(ev_id);
    const char *data = "{\"author\":\"old\",\"message\":\"from before\","
                       "\"datePosted\":\"2026-11-26T23:05:01.123Z\"}";
    if (!is_mongo) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(url + strlen("sqlite:"), &db), SQLITE_OK);
        char sql[600];
        snprintf(sql, sizeof sql, "INSERT INTO events (event_id, aggregate_id, version, type,"
                 " timestamp_ms, data) VALUES ('%s', '%s', 0, 'PostCreatedEvent', 1, '%s')",
                 ev_id, id, data);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    } else {
        bson_error_t e;
        mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &e);
        assert_non_null(uri);
        mongoc_client_t *client = mongoc_client_new_from_uri(uri);
        const char *dbname = mongoc_uri_get_database(uri);
        mongoc_collection_t *coll = mongoc_client_get_collection(
            client, dbname && *dbname ? dbname : "socialMedia", "eventStore");
        bson_t payload;
        assert_true(bson_init_from_json(&payload, data, -1, &e));
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        bson_t *doc = BCON_NEW("_id", BCON_OID(&oid), "eventId", BCON_UTF8(ev_id),
                               "aggregateIdentifier", BCON_UTF8(id), "aggregateType",
                               BCON_UTF8("PostAggregate"), "version", BCON_INT64(0),
                               "eventType", BCON_UTF8("PostCreatedEvent"), "timeStamp",
                               BCON_DATE_TIME(1), "eventData", BCON_DOCUMENT(&payload),
                               "published", BCON_BOOL(false));
        bool inserted = mongoc_collection_insert_one(coll, doc, NULL, NULL, &e);
        bson_destroy(doc);
        bson_destroy(&payload);
        mongoc_collection_destroy(coll);
        mongoc_client_destroy(client);
        mongoc_uri_destroy(uri);
        if (!inserted)
            fail_msg("raw insert: %s", e.message);
    }
    sm_event_list got = {0};
    sm_error err = {0};
    assert_int_equal(es_load(s, id, 0, 0, &got, &err), ES_OK);
    assert_int_equal(got.len, 1);
    assert_string_equal(got.items[0].author, "old");
    assert_null(got.items[0].author_id);
    assert_null(got.items[0].meta.user_id);
    assert_string_equal(got.items[0].meta.request_id, "");
    assert_string_equal(got.items[0].meta.traceparent, "");
    sm_event_list_free(&got);
    /* and the stream goes on with events that have it */
    sm_event next;
    make_event(&next, id, 1, SM_EV_POST_LIKED);
    assert_int_equal(es_append(s, id, 0, &next, 1, &err), ES_OK);
    assert_int_equal(es_load(s, id, 1, 0, &got, &err), ES_OK);
    assert_event_equal(&got.items[0], &next);
    sm_event_list_free(&got);
    sm_event_clear(&next);
}

static void test_unknown_url_scheme_is_invalid(void **state)
{
    (void)state;
    es_store *s = NULL;
    sm_error err;
    assert_int_equal(es_open("postgres://x", &s, &err), ES_INVALID);
    assert_int_equal(es_open("sqlite:", &s, &err), ES_INVALID);
}

int main(void)
{
    const char *which = getenv("SMPOST_TEST_ES_URL");
    if (!which || strcmp(which, "sqlite") == 0) {
        if (!test_temp_dir("smpost-es", tmpdir, sizeof tmpdir))
            return 1;
        snprintf(url, sizeof url, "sqlite:%s/events.db", tmpdir);
    } else if (strcmp(which, "mongodb") == 0) {
        const char *m = getenv("SMPOST_TEST_MONGO_URL");
        if (!m || !*m) {
            printf("SKIPPED: SMPOST_TEST_MONGO_URL not set (run through with_jongodb.sh)\n");
            return 77;
        }
        snprintf(url, sizeof url, "%s", m);
        is_mongo = true;
        const char *lacks = getenv("SMPOST_TEST_MONGO_LACKS");
        no_transactions = lacks && strstr(lacks, "transactions");
        no_atomic_updates = lacks && strstr(lacks, "atomic-updates");
    } else {
        snprintf(url, sizeof url, "%s", which);
        is_mongo = strncmp(which, "mongodb", 7) == 0;
    }
    printf("event store under test: %s%s%s\n", url,
           no_transactions ? " (without multi-document transactions)" : "",
           no_atomic_updates ? " (single-document updates not atomic)" : "");
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_event_type_round_trips_exactly),
        T(test_new_stream_on_existing_id_conflicts),
        T(test_stale_or_future_expected_version_conflicts_and_writes_nothing),
        T(test_batch_with_wrong_versions_is_invalid),
        T(test_multi_event_append_is_all_or_nothing),
        T(test_load_honours_from_version_and_limit),
        T(test_read_all_pages_through_new_events_in_stream_order),
        T(test_racing_writers_of_one_version_have_exactly_one_winner),
        T(test_concurrent_writers_with_retries_leave_a_dense_stream),
        T(test_concurrent_appends_to_many_streams_are_independent),
        T(test_events_survive_closing_and_reopening_the_store),
        T(test_outbox_offers_runs_from_each_posts_lowest_unpublished_version),
        T(test_outbox_pages_never_offer_a_version_before_its_predecessor),
        T(test_outbox_reset_makes_every_event_unpublished_again),
        T(test_marks_of_a_round_fetched_before_a_reset_are_refused),
        T(test_meta_values_are_stored_and_replaced),
        T(test_snapshots_latest_at_or_below_a_version_of_one_schema),
        T(test_version_at_finds_the_last_event_at_or_before_an_instant),
        T(test_lease_has_one_holder_and_a_new_epoch_per_change_of_holder),
        T(test_racing_lease_takers_have_exactly_one_winner),
        T(test_racing_takeovers_of_an_expired_lease_have_exactly_one_winner),
        T(test_raw_duplicate_of_a_post_version_is_refused_by_the_schema),
        T(test_metadata_and_owner_ids_come_back_from_every_read),
        T(test_event_stored_without_metadata_reads_back_without),
        cmocka_unit_test(test_unreachable_server_is_unavailable_not_fatal),
        cmocka_unit_test(test_unknown_url_scheme_is_invalid),
    };
    int rc = cmocka_run_group_tests_name(is_mongo ? "event_store_mongodb" : "event_store_sqlite",
                                         tests, NULL, NULL);
    if (tmpdir[0])
        test_rm_rf(tmpdir);
    return rc;
}
