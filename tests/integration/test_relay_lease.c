/* SPDX-License-Identifier: Apache-2.0 */
/* test_relay_lease.c — the relay's leader election (command-api/
 * relay_lease.h) with two contenders on one SQLite event store: one leader
 * at a time, a holder that stops renewing stops being valid before anyone
 * else can take over, a takeover bumps the epoch and fences the old holder
 * (even one with the same instance id), and a release hands over at once. */
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

    relay_lease_release(a); /* free for the next test */
    relay_lease_free(a);
    relay_lease_free(b);
    es_close(s);
}

/* A restarted process with a stable instance id takes its lease back at
 * once; the former process under that id, if it is still alive (paused,
 * or a second process given the same id by mistake), is refused like any
 * former holder and stays out until the lease lapses. */
static void test_restart_under_the_same_id_fences_the_former_process(void **state)
{
    (void)state;
    es_store *s;
    sm_error err = {0};
    assert_int_equal(es_open(url, &s, &err), ES_OK);
    relay_lease *old = relay_lease_new(s, "instance-r", 3000);
    assert_true(relay_lease_check(old, true));
    relay_lease_info io, in;
    relay_lease_get_info(old, &io);

    relay_lease *restarted = relay_lease_new(s, "instance-r", 3000);
    assert_true(relay_lease_check(restarted, true)); /* no wait for the ttl */
    relay_lease_get_info(restarted, &in);
    assert_int_equal(in.epoch, io.epoch + 1);

    /* the old one renews with its stale epoch: refused, for good */
    for (int i = 0; i < 3; i++) {
        assert_false(relay_lease_check(old, true));
        assert_false(relay_lease_valid(old));
        assert_true(relay_lease_check(restarted, true));
    }
    relay_lease_get_info(old, &io);
    assert_false(io.leader);
    assert_int_equal(io.lost_total, 1);
    assert_int_equal(io.epoch, in.epoch);

    /* the successor shuts down cleanly: the old one may have it now */
    relay_lease_release(restarted);
    assert_true(relay_lease_check(old, true));
    relay_lease_get_info(old, &io);
    assert_int_equal(io.epoch, in.epoch + 1);

    relay_lease_free(old);
    relay_lease_free(restarted);
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
        cmocka_unit_test(test_restart_under_the_same_id_fences_the_former_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
