/*
 * The GPIO connector's topics and replies (connectors/gpio/gpio.c) over a
 * fake backend: this machine has no gpiochip, so the lines are an array
 * here, and what the connector publishes is recorded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gpio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int value[128];
    bool requested[128];
    gpio_pull_t pull[128];
    int fail_line;
    int pipe_fd[2];
    int pending_edge;
} fake_t;

typedef struct {
    char topic[200];
    char payload[600];
} sent_t;

static sent_t sent[16];
static size_t sent_count;

static void record(void *ctx, const char *topic, const char *payload, size_t len)
{
    (void)ctx;
    assert_true(sent_count < 16);
    snprintf(sent[sent_count].topic, sizeof sent[0].topic, "%s", topic);
    snprintf(sent[sent_count].payload, sizeof sent[0].payload, "%.*s", (int)len, payload);
    sent_count++;
}

static int fake_input(void *dev, unsigned line, gpio_pull_t pull, int *fd)
{
    fake_t *f = dev;
    if ((int)line == f->fail_line) {
        errno = EBUSY;
        return -1;
    }
    f->requested[line] = true;
    f->pull[line] = pull;
    *fd = 100 + (int)line; /* only compared, never read */
    return 0;
}

static int fake_output(void *dev, unsigned line, int value)
{
    fake_t *f = dev;
    f->requested[line] = true;
    f->value[line] = value;
    return 0;
}

static int fake_get(void *dev, unsigned line)
{
    fake_t *f = dev;
    return f->value[line];
}

static int fake_set(void *dev, unsigned line, int value)
{
    fake_t *f = dev;
    if ((int)line == f->fail_line) {
        errno = EIO;
        return -1;
    }
    f->value[line] = value;
    return 0;
}

static int fake_event(void *dev, unsigned line)
{
    fake_t *f = dev;
    f->value[line] = f->pending_edge;
    return f->pending_edge;
}

static fake_t fake;
static gpio_t g;

static int setup(void **state)
{
    (void)state;
    memset(&fake, 0, sizeof fake);
    fake.fail_line = -1;
    memset(&g, 0, sizeof g);
    g.backend = (gpio_backend_t){fake_input, fake_output, fake_get, fake_set, fake_event, &fake};
    g.publish = record;
    g.thing = "core";
    sent_count = 0;
    char why[200];
    assert_true(gpio_parse_pins(&g, "5,6U,7D", "8H,9,27L", why, sizeof why));
    assert_true(gpio_setup(&g, why, sizeof why));
    return 0;
}

static bool handle(const char *topic, const char *payload)
{
    char why[300];
    return gpio_handle(&g, topic, (const uint8_t *)payload, strlen(payload), why, sizeof why);
}

static void test_pins_are_configured_as_greengrass_writes_them(void **state)
{
    (void)state;
    assert_int_equal(g.pin_count, 6);
    assert_true(fake.requested[5] && fake.requested[6] && fake.requested[7]);
    assert_int_equal(fake.pull[6], GPIO_PULL_UP);
    assert_int_equal(fake.pull[7], GPIO_PULL_DOWN);
    assert_int_equal(fake.pull[5], GPIO_PULL_NONE);
    assert_int_equal(fake.value[8], 1);
    assert_int_equal(fake.value[27], 0);
    assert_int_equal(fake.value[9], 0);
}

static void test_bad_pin_lists_are_refused(void **state)
{
    (void)state;
    gpio_t h = {0};
    char why[200];
    assert_false(gpio_parse_pins(&h, "5,5", NULL, why, sizeof why));
    assert_non_null(strstr(why, "twice"));
    assert_false(gpio_parse_pins(&h, "5", "5H", why, sizeof why));
    assert_false(gpio_parse_pins(&h, "5X", NULL, why, sizeof why));
    assert_false(gpio_parse_pins(&h, NULL, "8U", why, sizeof why));
    assert_false(gpio_parse_pins(&h, "99999", NULL, why, sizeof why));
    assert_false(gpio_parse_pins(&h, ",", NULL, why, sizeof why));
    assert_true(gpio_parse_pins(&h, "", "", why, sizeof why));
}

static void test_read_publishes_the_state(void **state)
{
    (void)state;
    fake.value[6] = 1;
    assert_true(handle("gpio/core/6/read", "anything"));
    assert_int_equal(sent_count, 1);
    assert_string_equal(sent[0].topic, "gpio/core/6/state");
    assert_string_equal(sent[0].payload, "1");
}

static void test_write_sets_the_output_and_publishes_its_state(void **state)
{
    (void)state;
    assert_true(handle("gpio/core/9/write", "1"));
    assert_int_equal(fake.value[9], 1);
    assert_true(handle("gpio/core/9/write", " \"0\"\n"));
    assert_int_equal(fake.value[9], 0);
    assert_int_equal(sent_count, 2);
    assert_string_equal(sent[0].topic, "gpio/core/9/state");
    assert_string_equal(sent[0].payload, "1");
    assert_string_equal(sent[1].payload, "0");
}

static void test_writing_an_input_is_a_greengrass_error(void **state)
{
    (void)state;
    assert_false(handle("gpio/core/5/write", "1"));
    assert_int_equal(sent_count, 1);
    assert_string_equal(sent[0].topic, "gpio/core/error");
    assert_string_equal(sent[0].payload,
                        "{\"topic\":\"gpio/core/5/write\",\"error\":\"Invalid GPIO operation\","
                        "\"long_description\":\"GPIO 5 is configured as an INPUT GPIO. Write "
                        "operations are not permitted.\"}");
}

static void test_bad_requests_are_errors_on_the_error_topic(void **state)
{
    (void)state;
    const char *cases[][2] = {{"gpio/core/99/read", "not configured"},
                              {"gpio/core/9/write", "Invalid write value"},
                              {"gpio/core/x/read", "does not name"},
                              {"gpio/core/9/blink", "unknown GPIO request"}};
    for (size_t i = 0; i < 4; i++) {
        sent_count = 0;
        assert_false(handle(cases[i][0], i == 1 ? "2" : ""));
        assert_int_equal(sent_count, 1);
        assert_string_equal(sent[0].topic, "gpio/core/error");
        assert_non_null(strstr(sent[0].payload, cases[i][1]));
    }
    sent_count = 0;
    assert_false(handle("gpio//9/read", ""));
    assert_false(handle("sensors/9/read", ""));
    assert_int_equal(sent_count, 0); /* nowhere to answer */
}

static void test_a_failing_line_is_reported(void **state)
{
    (void)state;
    fake.fail_line = 9;
    assert_false(handle("gpio/core/9/write", "1"));
    assert_string_equal(sent[0].topic, "gpio/core/error");
    assert_non_null(strstr(sent[0].payload, "GPIO operation failed"));
}

static void test_an_edge_publishes_the_new_state(void **state)
{
    (void)state;
    fake.pending_edge = 1;
    gpio_on_event(&g, 1); /* pin 6 */
    fake.pending_edge = 0;
    gpio_on_event(&g, 1);
    assert_int_equal(sent_count, 2);
    assert_string_equal(sent[0].topic, "gpio/core/6/state");
    assert_string_equal(sent[0].payload, "1");
    assert_string_equal(sent[1].payload, "0");
}

static void test_a_line_that_cannot_be_requested_fails_the_setup(void **state)
{
    (void)state;
    fake_t f = {.fail_line = 7};
    gpio_t h = {.backend = {fake_input, fake_output, fake_get, fake_set, fake_event, &f}};
    char why[200];
    assert_true(gpio_parse_pins(&h, "7", NULL, why, sizeof why));
    assert_false(gpio_setup(&h, why, sizeof why));
    assert_non_null(strstr(why, "GPIO 7"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pins_are_configured_as_greengrass_writes_them, setup),
        cmocka_unit_test(test_bad_pin_lists_are_refused),
        cmocka_unit_test_setup(test_read_publishes_the_state, setup),
        cmocka_unit_test_setup(test_write_sets_the_output_and_publishes_its_state, setup),
        cmocka_unit_test_setup(test_writing_an_input_is_a_greengrass_error, setup),
        cmocka_unit_test_setup(test_bad_requests_are_errors_on_the_error_topic, setup),
        cmocka_unit_test_setup(test_a_failing_line_is_reported, setup),
        cmocka_unit_test_setup(test_an_edge_publishes_the_new_state, setup),
        cmocka_unit_test(test_a_line_that_cannot_be_requested_fails_the_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
