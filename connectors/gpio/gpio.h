/*
 * gpio: Greengrass's Raspberry Pi GPIO connector's topics, for any
 * gpiochip — the pin configuration ("5,6U,7D" inputs with pull-up or
 * down, "8H,9,27L" outputs with initial values), requests on
 * gpio/THING/LINE/read and gpio/THING/LINE/write (payload 0 or 1, bare or
 * as a JSON string), the state on gpio/THING/LINE/state ("0" or "1"), and
 * errors on gpio/THING/error as {"topic", "error", "long_description"}.
 *
 * The lines themselves are behind gpio_backend_t: libgpiod in the
 * connector (gpiod.c), a fake in the unit tests (tests/unit/
 * test_connector_gpio.c), so that the topic logic is tested where no
 * gpiochip exists.
 */
#ifndef SEDGE_GPIO_H
#define SEDGE_GPIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPIO_MAX_PINS 64
#define GPIO_MAX_LINE 65535

typedef enum { GPIO_PULL_NONE, GPIO_PULL_UP, GPIO_PULL_DOWN } gpio_pull_t;

/* The lines. Each returns -1 with errno on failure. */
typedef struct {
    /* An input with edge events on both edges; *event_fd becomes readable
     * at each. */
    int (*request_input)(void *dev, unsigned line, gpio_pull_t pull, int *event_fd);
    int (*request_output)(void *dev, unsigned line, int value);
    int (*get)(void *dev, unsigned line);
    int (*set)(void *dev, unsigned line, int value);
    /* After event_fd was readable: the value the line's last edge left (1
     * rising, 0 falling). */
    int (*read_event)(void *dev, unsigned line);
    void *dev;
} gpio_backend_t;

typedef void (*gpio_publish_fn)(void *ctx, const char *topic, const char *payload, size_t len);

typedef struct {
    unsigned line;
    bool output;
    gpio_pull_t pull;
    int initial; /* outputs: 0, 1, or -1 (left as it is: low) */
    int event_fd;
} gpio_pin_t;

typedef struct {
    gpio_backend_t backend;
    gpio_publish_fn publish;
    void *publish_ctx;
    const char *thing; /* the core's, for the state of inputs that change */
    gpio_pin_t pins[GPIO_MAX_PINS];
    size_t pin_count;
} gpio_t;

/* The pin lists of the parameters input_gpios and output_gpios (either may
 * be NULL). false: `why` says what is wrong. */
bool gpio_parse_pins(gpio_t *g, const char *inputs, const char *outputs, char *why, size_t why_len);
/* Request every line from the backend. */
bool gpio_setup(gpio_t *g, char *why, size_t why_len);

typedef enum { GPIO_READ, GPIO_WRITE } gpio_op_t;

typedef struct {
    gpio_op_t op;
    char thing[129];
    unsigned line;
    int value; /* write */
} gpio_request_t;

/* A request's topic and payload (pure; fuzzed by tests/fuzz/
 * fuzz_gpio_request.c). false: why[] says what is wrong and, when the
 * topic could be read that far, r->thing says where to answer. */
bool gpio_request_parse(const char *topic, const uint8_t *payload, size_t len, gpio_request_t *r,
                        char *why, size_t why_len);

/* Serve one request routed to the connector: publish the line's state, or
 * an error. false when it was an error (why says it). */
bool gpio_handle(gpio_t *g, const char *topic, const uint8_t *payload, size_t len, char *why,
                 size_t why_len);
/* pins[index]'s event_fd is readable: publish its new state. */
void gpio_on_event(gpio_t *g, size_t index);

#endif
