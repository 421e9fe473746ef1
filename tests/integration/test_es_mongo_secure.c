/* SPDX-License-Identifier: Apache-2.0 */
/* test_es_mongo_secure.c — the MongoDB event store over TLS with a login:
 * append, load, the outbox (fetch, mark, stats) and ping through the URI
 * in SMPOST_TEST_MONGO_URL, which tests/integration/mongo_secure_ferretdb.sh
 * sets to FerretDB started by `scripts/mongo.sh start DIR --secure`
 * (user:password@, tls=true, tlsCAFile; with --mtls also a client
 * certificate). The refusals (wrong CA, password, host name, a server
 * without TLS) are checked on command-api's start by that script.
 * Without SMPOST_TEST_MONGO_URL: SKIPPED (77). */
#include "event_store.h"
#include "sm_uuid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *url;

static void make_event(sm_event *ev, const char *id, int64_t version, sm_event_type type)
{
    memset(ev, 0, sizeof *ev);
    assert_true(sm_uuid_new(ev->event_id));
    strcpy(ev->aggregate_id, id);
    ev->type = type;
    ev->version = version;
    ev->timestamp_ms = 1764198301123 + version;
    ev->at_ms = ev->timestamp_ms;
    if (type == SM_EV_POST_CREATED) {
        ev->author = strdup("alice");
        ev->message = strdup("over TLS");
    }
}

static void test_append_load_and_outbox_over_tls_with_a_login(void **state)
{
    (void)state;
    es_store *s = NULL;
    sm_error err = {0};
    if (es_open(url, &s, &err) != ES_OK)
        fail_msg("es_open: %s", err.message);
    assert_int_equal(es_ping(s, &err), ES_OK);

    sm_uuid_str id;
    assert_true(sm_uuid_new(id));
    sm_event evs[2];
    make_event(&evs[0], id, 0, SM_EV_POST_CREATED);
    make_event(&evs[1], id, 1, SM_EV_POST_LIKED);
    for (int i = 0; i < 2; i++)
        assert_int_equal(es_append(s, id, i - 1, &evs[i], 1, &err), ES_OK);
    /* a second writer of version 1: the unique index made at open holds */
    assert_int_equal(es_append(s, id, 0, &evs[1], 1, &err), ES_CONFLICT);

    sm_event_list got = {0};
    assert_int_equal(es_load(s, id, 0, 0, &got, &err), ES_OK);
    assert_int_equal(got.len, 2);
    assert_string_equal(got.items[0].event_id, evs[0].event_id);
    assert_string_equal(got.items[0].message, "over TLS");
    assert_string_equal(got.items[1].event_id, evs[1].event_id);
    sm_event_list_free(&got);

    /* the outbox: both events offered (with whatever else the server holds),
     * marked, and no longer offered */
    size_t ours = 0;
    es_cursor cursor = {{0}};
    for (int pass = 0; pass < 100; pass++) {
        sm_event_list page = {0};
        int64_t gen;
        assert_int_equal(es_fetch_unpublished(s, &cursor, 1000, &page, &gen, &err), ES_OK);
        for (size_t i = 0; i < page.len; i++)
            ours += strcmp(page.items[i].aggregate_id, id) == 0;
        if (page.len)
            assert_int_equal(es_mark_published(s, page.items, page.len, gen, &err), ES_OK);
        size_t n = page.len;
        sm_event_list_free(&page);
        if (n == 0 && !cursor.token[0])
            break;
    }
    assert_int_equal(ours, 2);
    int64_t pending = -1, oldest = 0, published = 0;
    assert_int_equal(es_outbox_stats(s, &pending, &oldest, &published, &err), ES_OK);
    assert_int_equal(pending, 0);
    assert_true(published >= 2);
    for (int i = 0; i < 2; i++)
        sm_event_clear(&evs[i]);
    es_close(s);
}

int main(void)
{
    url = getenv("SMPOST_TEST_MONGO_URL");
    if (!url || !*url) {
        printf("SKIPPED: SMPOST_TEST_MONGO_URL not set (run through "
               "tests/integration/mongo_secure_ferretdb.sh)\n");
        return 77;
    }
    if (!strstr(url, "tls=true") || !strchr(url, '@'))
        fail_msg("SMPOST_TEST_MONGO_URL has no tls=true or no user: not the secure server");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_load_and_outbox_over_tls_with_a_login),
    };
    return cmocka_run_group_tests_name("event_store_mongodb_secure", tests, NULL, NULL);
}
