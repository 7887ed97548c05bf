/*
 * libFuzzer target: the GPIO connector's requests
 * (connectors/gpio/gpio.c): the input's first line is the topic, the rest
 * the payload, served by gpio_handle over a backend of plain memory.
 */
#include "gpio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lines[GPIO_MAX_LINE + 1];

static int input(void *dev, unsigned line, gpio_pull_t pull, int *fd)
{
    (void)dev, (void)pull;
    *fd = (int)line;
    return 0;
}

static int output(void *dev, unsigned line, int value)
{
    (void)dev;
    lines[line] = value;
    return 0;
}

static int get(void *dev, unsigned line)
{
    (void)dev;
    return lines[line];
}

static int set(void *dev, unsigned line, int value)
{
    (void)dev;
    if (value != 0 && value != 1)
        abort(); /* only 0 and 1 may reach a line */
    lines[line] = value;
    return 0;
}

static int event(void *dev, unsigned line)
{
    (void)dev;
    return lines[line];
}

static void publish(void *ctx, const char *topic, const char *payload, size_t len)
{
    (void)ctx;
    if (!topic[0] || (len && !payload))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gpio_t g;
    static bool ready;
    char why[300];
    if (!ready) {
        g.backend = (gpio_backend_t){input, output, get, set, event, NULL};
        g.publish = publish;
        g.thing = "core";
        if (!gpio_parse_pins(&g, "5,6U,7D", "8H,9,27L", why, sizeof why) ||
            !gpio_setup(&g, why, sizeof why))
            abort();
        ready = true;
    }
    const uint8_t *nl = memchr(data, '\n', size);
    size_t tlen = nl ? (size_t)(nl - data) : size;
    char topic[512];
    if (tlen >= sizeof topic || memchr(data, '\0', tlen))
        return 0;
    memcpy(topic, data, tlen);
    topic[tlen] = '\0';
    const uint8_t *payload = nl ? nl + 1 : data + size;
    (void)gpio_handle(&g, topic, payload, (size_t)(data + size - payload), why, sizeof why);
    return 0;
}
