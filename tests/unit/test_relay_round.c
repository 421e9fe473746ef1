/* SPDX-License-Identifier: Apache-2.0 */
/* test_relay_round.c — the relay's matching of delivery reports to the
 * round in flight (relay.h, relay_delivery_match): a late report of an
 * earlier round must never mark the event at the same index of the current
 * round, nor index past its end; and which events of a round of runs may
 * be marked published (relay_markable): only each run's confirmed prefix. */
#include "relay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

static void test_report_of_the_current_round_names_its_event(void **state)
{
    (void)state;
    size_t i = 99;
    assert_true(relay_delivery_match(relay_delivery_tag(7, 0), 7, 3, &i));
    assert_int_equal(i, 0);
    assert_true(relay_delivery_match(relay_delivery_tag(7, 2), 7, 3, &i));
    assert_int_equal(i, 2);
}

static void test_late_report_of_an_earlier_round_matches_no_event(void **state)
{
    (void)state;
    size_t i;
    /* round 6 had its event 1 in flight when it was given up; round 7 now
     * has another event at index 1 */
    assert_false(relay_delivery_match(relay_delivery_tag(6, 1), 7, 3, &i));
    /* the round counter wraps without aliasing a neighbour */
    assert_false(relay_delivery_match(relay_delivery_tag(UINT32_MAX, 1), 0, 3, &i));
    assert_true(relay_delivery_match(relay_delivery_tag(UINT32_MAX, 1), UINT32_MAX, 3, &i));
}

static void test_report_past_the_end_of_the_round_matches_no_event(void **state)
{
    (void)state;
    size_t i;
    /* an earlier round had 500 messages, the current one has 2 */
    assert_false(relay_delivery_match(relay_delivery_tag(7, 2), 7, 2, &i));
    assert_false(relay_delivery_match(relay_delivery_tag(7, 499), 7, 2, &i));
    assert_false(relay_delivery_match(relay_delivery_tag(7, 0), 7, 0, &i));
}

/* A round of runs: "a" versions 3..6, "b" 0..1, "c" 7. */
static void make_round(sm_event *items)
{
    static const struct {
        const char *post;
        int64_t version;
    } shape[] = {{"a", 3}, {"a", 4}, {"a", 5}, {"a", 6}, {"b", 0}, {"b", 1}, {"c", 7}};
    for (size_t i = 0; i < 7; i++) {
        memset(&items[i], 0, sizeof items[i]);
        snprintf(items[i].aggregate_id, sizeof items[i].aggregate_id, "%s", shape[i].post);
        items[i].version = shape[i].version;
    }
}

static void test_only_the_confirmed_prefix_of_each_run_is_marked(void **state)
{
    (void)state;
    sm_event items[7];
    make_round(items);
    bool mark[7];
    /* a@4 failed (a@5, a@6 confirmed after it); b@0 unreported; c fine */
    const bool delivered[7] = {true, false, true, true, false, true, true};
    assert_int_equal(relay_markable(items, delivered, 7, mark), 2);
    const bool want[7] = {true, false, false, false, false, false, true};
    for (size_t i = 0; i < 7; i++)
        if (mark[i] != want[i])
            fail_msg("%s@%lld: mark %d, want %d", items[i].aggregate_id,
                     (long long)items[i].version, mark[i], want[i]);
}

static void test_a_whole_confirmed_round_is_marked(void **state)
{
    (void)state;
    sm_event items[7];
    make_round(items);
    bool mark[7];
    const bool delivered[7] = {true, true, true, true, true, true, true};
    assert_int_equal(relay_markable(items, delivered, 7, mark), 7);
    const bool none[7] = {false};
    assert_int_equal(relay_markable(items, none, 7, mark), 0);
    /* a failure at the end of one run does not reach into the next */
    const bool last_a_failed[7] = {true, true, true, false, true, true, true};
    assert_int_equal(relay_markable(items, last_a_failed, 7, mark), 6);
    assert_true(mark[4] && mark[5] && mark[6]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_of_the_current_round_names_its_event),
        cmocka_unit_test(test_late_report_of_an_earlier_round_matches_no_event),
        cmocka_unit_test(test_report_past_the_end_of_the_round_matches_no_event),
        cmocka_unit_test(test_only_the_confirmed_prefix_of_each_run_is_marked),
        cmocka_unit_test(test_a_whole_confirmed_round_is_marked),
    };
    return cmocka_run_group_tests_name("relay_round", tests, NULL, NULL);
}
