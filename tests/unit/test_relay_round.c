/* test_relay_round.c — the relay's matching of delivery reports to the
 * round in flight (relay.h, relay_delivery_match): a late report of an
 * earlier round must never mark the event at the same index of the current
 * round, nor index past its end. */
#include "relay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_of_the_current_round_names_its_event),
        cmocka_unit_test(test_late_report_of_an_earlier_round_matches_no_event),
        cmocka_unit_test(test_report_past_the_end_of_the_round_matches_no_event),
    };
    return cmocka_run_group_tests_name("relay_round", tests, NULL, NULL);
}
