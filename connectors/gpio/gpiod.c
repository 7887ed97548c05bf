/*
 * gpiod: the GPIO connector's lines through libgpiod (1.6, the character
 * device /dev/gpiochipN), any chip, not only a Raspberry Pi's.
 */
#include "gpiod_backend.h"

#include <errno.h>
#include <gpiod.h>
#include <stdlib.h>

#define CONSUMER "sedge-gpio"

struct gpiod_backend {
    struct gpiod_chip *chip;
};

static struct gpiod_line *line_of(void *dev, unsigned line)
{
    gpiod_backend_t *b = dev;
    return gpiod_chip_get_line(b->chip, line);
}

static int request_input(void *dev, unsigned line, gpio_pull_t pull, int *event_fd)
{
    struct gpiod_line *l = line_of(dev, line);
    int flags = pull == GPIO_PULL_UP     ? GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP
                : pull == GPIO_PULL_DOWN ? GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN
                                         : 0;
    if (!l || gpiod_line_request_both_edges_events_flags(l, CONSUMER, flags) != 0)
        return -1;
    *event_fd = gpiod_line_event_get_fd(l);
    return *event_fd >= 0 ? 0 : -1;
}

static int request_output(void *dev, unsigned line, int value)
{
    struct gpiod_line *l = line_of(dev, line);
    return l ? gpiod_line_request_output(l, CONSUMER, value) : -1;
}

static int get(void *dev, unsigned line)
{
    struct gpiod_line *l = line_of(dev, line);
    return l ? gpiod_line_get_value(l) : -1;
}

static int set(void *dev, unsigned line, int value)
{
    struct gpiod_line *l = line_of(dev, line);
    return l ? gpiod_line_set_value(l, value) : -1;
}

static int read_event(void *dev, unsigned line)
{
    struct gpiod_line *l = line_of(dev, line);
    struct gpiod_line_event ev;
    if (!l || gpiod_line_event_read(l, &ev) != 0)
        return -1;
    return ev.event_type == GPIOD_LINE_EVENT_RISING_EDGE ? 1 : 0;
}

gpiod_backend_t *gpiod_backend_open(const char *chip, gpio_backend_t *out)
{
    gpiod_backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->chip = gpiod_chip_open_lookup(chip);
    if (!b->chip) {
        int e = errno;
        free(b);
        errno = e;
        return NULL;
    }
    *out = (gpio_backend_t){request_input, request_output, get, set, read_event, b};
    return b;
}

void gpiod_backend_close(gpiod_backend_t *b)
{
    if (!b)
        return;
    gpiod_chip_close(b->chip);
    free(b);
}
