/*
 * gpio: the pin configuration, the request topics and the replies of the
 * GPIO connector, over a backend for the lines themselves.
 */
#include "gpio.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static bool parse_list(gpio_t *g, const char *list, bool output, char *why, size_t why_len)
{
    const char *p = list;
    while (p && *p) {
        unsigned long line = 0;
        const char *start = p;
        while (*p >= '0' && *p <= '9' && line <= GPIO_MAX_LINE)
            line = line * 10 + (unsigned long)(*p++ - '0');
        if (p == start || line > GPIO_MAX_LINE) {
            snprintf(why, why_len, "%s_gpios: \"%s\" is not a list of line numbers",
                     output ? "output" : "input", list);
            return false;
        }
        gpio_pin_t pin = {.line = (unsigned)line, .output = output, .initial = -1, .event_fd = -1};
        if (!output && (*p == 'U' || *p == 'D'))
            pin.pull = *p++ == 'U' ? GPIO_PULL_UP : GPIO_PULL_DOWN;
        else if (output && (*p == 'H' || *p == 'L'))
            pin.initial = *p++ == 'H' ? 1 : 0;
        if (*p && *p != ',') {
            snprintf(why, why_len, "%s_gpios: unexpected '%c' in \"%s\"",
                     output ? "output" : "input", *p, list);
            return false;
        }
        if (*p == ',')
            p++;
        for (size_t i = 0; i < g->pin_count; i++)
            if (g->pins[i].line == pin.line) {
                snprintf(why, why_len, "GPIO %u is listed twice", pin.line);
                return false;
            }
        if (g->pin_count == GPIO_MAX_PINS) {
            snprintf(why, why_len, "at most %d GPIOs", GPIO_MAX_PINS);
            return false;
        }
        g->pins[g->pin_count++] = pin;
    }
    return true;
}

bool gpio_parse_pins(gpio_t *g, const char *inputs, const char *outputs, char *why, size_t why_len)
{
    g->pin_count = 0;
    return parse_list(g, inputs, false, why, why_len) && parse_list(g, outputs, true, why, why_len);
}

bool gpio_setup(gpio_t *g, char *why, size_t why_len)
{
    for (size_t i = 0; i < g->pin_count; i++) {
        gpio_pin_t *pin = &g->pins[i];
        int rc = pin->output ? g->backend.request_output(g->backend.dev, pin->line,
                                                          pin->initial > 0 ? 1 : 0)
                             : g->backend.request_input(g->backend.dev, pin->line, pin->pull,
                                                        &pin->event_fd);
        if (rc != 0) {
            snprintf(why, why_len, "cannot use GPIO %u as an %s: %s", pin->line,
                     pin->output ? "output" : "input", strerror(errno));
            return false;
        }
    }
    return true;
}

static gpio_pin_t *pin_of(gpio_t *g, unsigned line)
{
    for (size_t i = 0; i < g->pin_count; i++)
        if (g->pins[i].line == line)
            return &g->pins[i];
    return NULL;
}

/* "0", "1", 0, 1, "\"0\"" or "\"1\"", with blanks around. */
static int parse_value(const uint8_t *p, size_t len)
{
    while (len && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r' ||
                   p[len - 1] == '\n'))
        len--;
    if (len == 3 && p[0] == '"' && p[2] == '"')
        p++, len = 1;
    if (len == 1 && (p[0] == '0' || p[0] == '1'))
        return p[0] - '0';
    return -1;
}

bool gpio_request_parse(const char *topic, const uint8_t *payload, size_t len, gpio_request_t *r,
                        char *why, size_t why_len)
{
    memset(r, 0, sizeof *r);
    if (strncmp(topic, "gpio/", 5) != 0) {
        snprintf(why, why_len, "not a GPIO topic");
        return false;
    }
    const char *thing = topic + 5;
    const char *slash = strchr(thing, '/');
    if (!slash || slash == thing || (size_t)(slash - thing) >= sizeof r->thing) {
        snprintf(why, why_len, "not a GPIO topic");
        return false;
    }
    memcpy(r->thing, thing, (size_t)(slash - thing));
    const char *num = slash + 1;
    unsigned long line = 0;
    const char *p = num;
    while (*p >= '0' && *p <= '9' && line <= GPIO_MAX_LINE)
        line = line * 10 + (unsigned long)(*p++ - '0');
    if (p == num || *p != '/' || line > GPIO_MAX_LINE) {
        snprintf(why, why_len, "the topic does not name a GPIO number: gpio/THING/NUMBER/read "
                               "or /write");
        return false;
    }
    r->line = (unsigned)line;
    if (strcmp(p, "/read") == 0) {
        r->op = GPIO_READ;
        return true;
    }
    if (strcmp(p, "/write") != 0) {
        snprintf(why, why_len, "unknown GPIO request %s (read or write)", p + 1);
        return false;
    }
    r->op = GPIO_WRITE;
    r->value = parse_value(payload, len);
    if (r->value < 0) {
        snprintf(why, why_len, "Invalid write value: expected 0 or 1");
        return false;
    }
    return true;
}

static void publish_error(gpio_t *g, const char *thing, const char *topic, const char *error,
                          const char *description)
{
    json_t *doc = json_pack("{s:s?, s:s, s:s?}", "topic", topic, "error", error,
                            "long_description", description);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    char err_topic[200];
    snprintf(err_topic, sizeof err_topic, "gpio/%s/error", thing);
    if (text)
        g->publish(g->publish_ctx, err_topic, text, strlen(text));
    free(text);
    json_decref(doc);
}

static void publish_state(gpio_t *g, const char *thing, unsigned line, int value)
{
    char topic[200];
    snprintf(topic, sizeof topic, "gpio/%s/%u/state", thing, line);
    g->publish(g->publish_ctx, topic, value ? "1" : "0", 1);
}

bool gpio_handle(gpio_t *g, const char *topic, const uint8_t *payload, size_t len, char *why,
                 size_t why_len)
{
    gpio_request_t r;
    if (!gpio_request_parse(topic, payload, len, &r, why, why_len)) {
        if (r.thing[0])
            publish_error(g, r.thing, topic, "Invalid GPIO request", why);
        return false;
    }
    gpio_pin_t *pin = pin_of(g, r.line);
    if (!pin) {
        snprintf(why, why_len, "GPIO %u is not configured. Configure it in input_gpios or "
                               "output_gpios.", r.line);
        publish_error(g, r.thing, topic, "Invalid GPIO", why);
        return false;
    }
    if (r.op == GPIO_WRITE && !pin->output) {
        snprintf(why, why_len, "GPIO %u is configured as an INPUT GPIO. Write operations are not "
                               "permitted.", r.line);
        publish_error(g, r.thing, topic, "Invalid GPIO operation", why);
        return false;
    }
    int value;
    if (r.op == GPIO_WRITE)
        value = g->backend.set(g->backend.dev, r.line, r.value) == 0 ? r.value : -1;
    else
        value = g->backend.get(g->backend.dev, r.line);
    if (value < 0) {
        snprintf(why, why_len, "GPIO %u: the %s failed: %s", r.line,
                 r.op == GPIO_WRITE ? "write" : "read", strerror(errno));
        publish_error(g, r.thing, topic, "GPIO operation failed", why);
        return false;
    }
    publish_state(g, r.thing, r.line, value);
    return true;
}

void gpio_on_event(gpio_t *g, size_t index)
{
    gpio_pin_t *pin = &g->pins[index];
    int value = g->backend.read_event(g->backend.dev, pin->line);
    if (value >= 0)
        publish_state(g, g->thing, pin->line, value);
}
