/* SPDX-License-Identifier: Apache-2.0 */
/* test_mongo_uri.c — the MongoDB adapter without a server: its defaults for
 * what a URI leaves unsaid (es_mongo_apply_uri_defaults: a durable write
 * concern unless the operator chose one, nothing the URI says overridden),
 * and its client pool's waits, which end at the request's deadline. */
#include "es_mongo_internal.h"
#include "sm_deadline.h"
#include "sm_time.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static mongoc_uri_t *defaults_of(const char *text)
{
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(text, &e);
    if (!uri)
        fail_msg("%s: %s", text, e.message);
    es_mongo_apply_uri_defaults(uri);
    return uri;
}

static void test_silent_uri_gets_majority_with_journal(void **state)
{
    (void)state;
    mongoc_uri_t *uri = defaults_of("mongodb://db1,db2/socialMedia?replicaSet=rs0");
    const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern(uri);
    assert_true(mongoc_write_concern_get_wmajority(wc));
    assert_true(mongoc_write_concern_get_journal(wc));
    assert_true(mongoc_write_concern_journal_is_set(wc));
    assert_true(mongoc_write_concern_get_wtimeout_int64(wc) > 0);
    assert_true(mongoc_write_concern_get_wtimeout_int64(wc) <
                mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 0));
    mongoc_uri_destroy(uri);
}

static void test_write_concern_in_the_uri_is_kept(void **state)
{
    (void)state;
    mongoc_uri_t *uri = defaults_of("mongodb://db1/x?w=1");
    const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern(uri);
    assert_int_equal(mongoc_write_concern_get_w(wc), 1);
    assert_false(mongoc_write_concern_journal_is_set(wc));
    mongoc_uri_destroy(uri);

    uri = defaults_of("mongodb://db1/x?journal=false");
    wc = mongoc_uri_get_write_concern(uri);
    assert_false(mongoc_write_concern_get_wmajority(wc));
    assert_true(mongoc_write_concern_journal_is_set(wc));
    assert_false(mongoc_write_concern_get_journal(wc));
    mongoc_uri_destroy(uri);

    uri = defaults_of("mongodb://db1/x?w=2&wtimeoutMS=100");
    wc = mongoc_uri_get_write_concern(uri);
    assert_int_equal(mongoc_write_concern_get_w(wc), 2);
    assert_int_equal(mongoc_write_concern_get_wtimeout_int64(wc), 100);
    mongoc_uri_destroy(uri);
}

static void test_timeouts_in_the_uri_are_kept(void **state)
{
    (void)state;
    mongoc_uri_t *uri = defaults_of("mongodb://db1/x?socketTimeoutMS=60000");
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 0), 60000);
    assert_true(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0) > 0);
    mongoc_uri_destroy(uri);
}

static void *ping_unreachable(void *arg)
{
    sm_error err;
    es_ping(arg, &err); /* holds the pool's only client for the server selection */
    return NULL;
}

/* maxPoolSize=1 and its client busy for 3 s (selecting a server that is not
 * there): a request with 300 ms left must get ES_UNAVAILABLE in about that
 * time, not wait for the client (mongoc_client_pool_pop waits for ever). */
static void test_pool_wait_ends_at_the_request_deadline(void **state)
{
    (void)state;
    es_store *s = NULL;
    sm_error err;
    assert_int_equal(es_open("mongodb://127.0.0.1:1/x?maxPoolSize=1&serverSelectionTimeoutMS=3000",
                             &s, &err), ES_OK);
    pthread_t holder;
    assert_int_equal(pthread_create(&holder, NULL, ping_unreachable, s), 0);
    sm_sleep_ms(200); /* the holder has the client */
    int64_t t0 = sm_mono_ms();
    sm_deadline_set(t0 + 300);
    es_status st = es_ping(s, &err);
    int64_t took = sm_mono_ms() - t0;
    sm_deadline_set(0);
    assert_int_equal(st, ES_UNAVAILABLE);
    if (took > 1500)
        fail_msg("es_ping waited %lld ms for a client with a 300 ms deadline", (long long)took);
    pthread_join(holder, NULL);
    es_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_uri_gets_majority_with_journal),
        cmocka_unit_test(test_write_concern_in_the_uri_is_kept),
        cmocka_unit_test(test_timeouts_in_the_uri_are_kept),
        cmocka_unit_test(test_pool_wait_ends_at_the_request_deadline),
    };
    return cmocka_run_group_tests_name("mongo_uri", tests, NULL, NULL);
}
