/*
 * The cloud's limits as the uplink checks them (AWS IoT Core's quotas:
 * 256-byte topics, 7 slashes not counting a $aws/rules/RULE/ prefix, a
 * filter judged by the shortest topic it matches), the endpoints taken for
 * AWS's, the reconnect backoff's bounds, and the pace: its rates, its
 * halving and pause on a throttle, and its climb back — with the time
 * passed in, so no test waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uplink/uplink.h"

static bool fits(const uplink_limits_t *l, const char *topic, bool filter)
{
    char why[200];
    return uplink_topic_fits(l, bytes_of_cstr(topic), filter, why, sizeof why);
}

static void test_aws_figures_and_none_for_a_plain_broker(void **state)
{
    (void)state;
    uplink_limits_t aws, plain;
    uplink_limits_default(true, &aws);
    uplink_limits_default(false, &plain);
    assert_int_equal(aws.max_topic_bytes, 256);
    assert_int_equal(aws.max_topic_slashes, 7);
    assert_int_equal(aws.max_payload_bytes, 131072);
    assert_int_equal(aws.max_filters_per_subscribe, 8);
    assert_int_equal(aws.publishes_per_s, 100);
    assert_int_equal(aws.bytes_per_s, 524288);
    assert_int_equal(aws.shadow_inflight, 10);
    assert_int_equal(plain.max_topic_bytes, 0);
    assert_int_equal(plain.publishes_per_s, 0);
    assert_int_equal(plain.max_filters_per_subscribe, 8);
}

static void test_endpoints_of_aws(void **state)
{
    (void)state;
    assert_true(uplink_endpoint_is_aws("a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883"));
    assert_true(uplink_endpoint_is_aws("X-ATS.IOT.US-EAST-1.AMAZONAWS.COM:443"));
    assert_true(uplink_endpoint_is_aws("a1-ats.iot.cn-north-1.amazonaws.com.cn:8883"));
    assert_false(uplink_endpoint_is_aws("localhost:8883"));
    assert_false(uplink_endpoint_is_aws("amazonaws.com.example.net:8883"));
    assert_false(uplink_endpoint_is_aws("broker.emqx.io:8883"));
    assert_false(uplink_endpoint_is_aws(NULL));
}

static void test_topic_slashes_and_bytes(void **state)
{
    (void)state;
    uplink_limits_t l;
    uplink_limits_default(true, &l);
    assert_true(fits(&l, "a/b/c/d/e/f/g/h", false)); /* 7 slashes */
    assert_false(fits(&l, "a/b/c/d/e/f/g/h/i", false));
    assert_true(fits(&l, "$aws/rules/r1/a/b/c/d/e/f/g/h", false)); /* 10, 3 not counted */
    assert_false(fits(&l, "$aws/rules/r1/a/b/c/d/e/f/g/h/i", false));
    assert_true(fits(&l, "$aws/things/thing/shadow/name/cfg/update/accepted", false));
    char topic[300];
    memset(topic, 'x', sizeof topic);
    topic[256] = '\0';
    assert_true(fits(&l, topic, false));
    topic[256] = 'x';
    topic[257] = '\0';
    assert_false(fits(&l, topic, false));
    char why[200];
    assert_false(uplink_topic_fits(&l, BYTES_LIT("a/b/c/d/e/f/g/h/i"), false, why, sizeof why));
    assert_non_null(strstr(why, "8 slashes"));
}

static void test_filter_judged_by_its_shortest_match(void **state)
{
    (void)state;
    uplink_limits_t l;
    uplink_limits_default(true, &l);
    assert_true(fits(&l, "a/b/c/d/e/f/g/#", true));   /* matches a/b/c/d/e/f/g */
    assert_true(fits(&l, "a/b/c/d/e/f/g/h/#", true)); /* matches a/b/c/d/e/f/g/h */
    assert_false(fits(&l, "a/b/c/d/e/f/g/h/i/#", true));
    assert_true(fits(&l, "a/b/c/d/e/f/g/+", true)); /* 7 slashes, + may be empty */
    assert_false(fits(&l, "a/b/c/d/e/f/g/h/+", true));
    char filter[300];
    memset(filter, 'x', sizeof filter);
    memcpy(filter + 255, "/#", 3); /* 255 bytes before "/#" */
    assert_true(fits(&l, filter, true));
    memset(filter, '+', 257);
    filter[257] = '\0'; /* not a valid filter, but every + may be empty */
    assert_true(fits(&l, filter, true));
}

static void test_no_limits_take_anything(void **state)
{
    (void)state;
    uplink_limits_t l;
    uplink_limits_default(false, &l);
    assert_true(fits(&l, "a/b/c/d/e/f/g/h/i/j/k/l/m", false));
    char topic[2000];
    memset(topic, 'y', sizeof topic - 1);
    topic[sizeof topic - 1] = '\0';
    assert_true(fits(&l, topic, false));
}

static void test_backoff_stays_within_its_bounds_and_grows(void **state)
{
    (void)state;
    uint64_t widest = 0;
    for (uint32_t n = 1; n <= 12; n++) {
        uint64_t ceiling = 100ull << n;
        if (ceiling > 5000)
            ceiling = 5000;
        for (int i = 0; i < 200; i++) {
            uint64_t d = uplink_backoff_ms(100, 5000, n);
            assert_true(d >= 100 && d <= ceiling);
            widest = d > widest ? d : widest;
        }
    }
    assert_true(widest > 2500); /* it does reach far when failures pile up */
    bool differ = false;
    uint64_t first = uplink_backoff_ms(1000, 60000, 3);
    for (int i = 0; i < 50 && !differ; i++)
        differ = uplink_backoff_ms(1000, 60000, 3) != first;
    assert_true(differ); /* jitter */
}

static void test_pace_allows_its_rate_and_no_more(void **state)
{
    (void)state;
    pace_t p;
    pace_init(&p, 100, 0, 1000);
    int sent = 0;
    /* Two seconds, asked every millisecond. */
    for (uint64_t now = 1000; now < 3000; now++) {
        while (pace_may_send(&p, now)) {
            pace_spend(&p, 10, now);
            sent++;
        }
    }
    assert_true(sent >= 195 && sent <= 212); /* 100/s plus one burst of 10 */
}

static void test_pace_bytes_allow_one_large_message_then_wait(void **state)
{
    (void)state;
    pace_t p;
    pace_init(&p, 0, 1000, 0);
    assert_true(pace_may_send(&p, 0));
    pace_spend(&p, 5000, 0); /* a debt of 4900 bytes */
    assert_false(pace_may_send(&p, 100));
    uint64_t wait = pace_wait_ms(&p, 100);
    assert_true(wait >= 4700 && wait <= 5001);
    assert_true(pace_may_send(&p, 100 + wait));
}

static void test_pace_halves_pauses_and_climbs_back_on_a_throttle(void **state)
{
    (void)state;
    pace_t p;
    pace_init(&p, 100, 0, 0);
    pace_throttled(&p, 0, 500);
    assert_true(p.rate == 50);
    assert_int_equal(p.throttles, 1);
    assert_false(pace_may_send(&p, 499));
    assert_true(pace_wait_ms(&p, 0) >= 500);
    pace_throttled(&p, 600, 500);
    assert_true(p.rate == 25);
    /* A second without a throttle: a tenth of the ceiling back, each. */
    pace_may_send(&p, 2200);
    assert_true(p.rate == 35);
    for (uint64_t now = 3300; now < 12000; now += 1100)
        pace_may_send(&p, now);
    assert_true(p.rate == 100);
    assert_int_equal(p.streak, 0);
}

static void test_pace_without_a_rate_paces_only_after_a_throttle(void **state)
{
    (void)state;
    pace_t p;
    pace_init(&p, 0, 0, 0);
    for (uint64_t now = 0; now < 2000; now++)
        for (int i = 0; i < 3; i++) {
            assert_true(pace_may_send(&p, now));
            pace_spend(&p, 10, now);
        }
    pace_throttled(&p, 2000, 0); /* 3000 went in the last second */
    assert_true(p.rate == 1500);
    for (uint64_t now = 3100; now < 40000; now += 1100)
        pace_may_send(&p, now);
    assert_true(p.rate == 0); /* unpaced again */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_figures_and_none_for_a_plain_broker),
        cmocka_unit_test(test_endpoints_of_aws),
        cmocka_unit_test(test_topic_slashes_and_bytes),
        cmocka_unit_test(test_filter_judged_by_its_shortest_match),
        cmocka_unit_test(test_no_limits_take_anything),
        cmocka_unit_test(test_backoff_stays_within_its_bounds_and_grows),
        cmocka_unit_test(test_pace_allows_its_rate_and_no_more),
        cmocka_unit_test(test_pace_bytes_allow_one_large_message_then_wait),
        cmocka_unit_test(test_pace_halves_pauses_and_climbs_back_on_a_throttle),
        cmocka_unit_test(test_pace_without_a_rate_paces_only_after_a_throttle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
