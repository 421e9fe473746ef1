/* test_relay_lease.c — the relay's leader election (command-api/
 * relay_lease.h) with two contenders on one SQLite event store: one leader
 * at a time, a holder that stops renewing stops being valid before anyone
 * else can take over, a takeover bumps the epoch and fences the old holder,
 * and a release hands over at once. */
#include "event_store.h"
#include "proc.h"
#include "relay_lease.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <time.h>

static char url[512];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_one_leader_takeover_after_expiry_and_fencing(void **state)
{
    (void)state;
    es_store *s;
    sm_error err = {0};
    assert_int_equal(es_open(url, &s, &err), ES_OK);
    relay_lease *a = relay_lease_new(s, "instance-a", 3000);
    relay_lease *b = relay_lease_new(s, "instance-b", 3000);
    assert_true(relay_lease_check(a, true));
    assert_false(relay_lease_check(b, true));
    relay_lease_info ia, ib;
    relay_lease_get_info(b, &ib);
    assert_string_equal(ib.holder, "instance-a");
    assert_int_equal(ib.epoch, 1);

    /* a renews on schedule: b never gets in */
    for (int i = 0; i < 4; i++) {
        sleep_ms(1000);
        assert_true(relay_lease_check(a, false));
        assert_false(relay_lease_check(b, true));
    }

    /* a is paused (no renewals): its own deadline (ttl - ttl/3) passes
     * before the stored expiry (ttl), so it stops first */
    sleep_ms(2100);
    assert_false(relay_lease_valid(a));
    assert_false(relay_lease_check(b, true)); /* not expired yet */
    sleep_ms(1000);
    assert_true(relay_lease_check(b, true));
    relay_lease_get_info(b, &ib);
    assert_int_equal(ib.epoch, 2);
    assert_int_equal(ib.acquired_total, 1);

    /* a wakes up: its renewal meets epoch 2 and is refused */
    assert_false(relay_lease_check(a, true));
    relay_lease_get_info(a, &ia);
    assert_false(ia.leader);
    assert_int_equal(ia.lost_total, 1);
    assert_string_equal(ia.holder, "instance-b");

    /* a clean shutdown hands over without waiting for the ttl */
    relay_lease_release(b);
    assert_true(relay_lease_check(a, true));
    relay_lease_get_info(a, &ia);
    assert_int_equal(ia.epoch, 3);
    assert_int_equal(ia.acquired_total, 2);

    relay_lease_free(a);
    relay_lease_free(b);
    es_close(s);
}

int main(void)
{
    char dir[256];
    if (!test_temp_dir("smpost-lease", dir, sizeof dir))
        return 1;
    snprintf(url, sizeof url, "sqlite:%s/events.db", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_leader_takeover_after_expiry_and_fencing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
