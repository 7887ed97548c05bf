/*
 * gpio: the GPIO connector's program — its parameters (chip, input_gpios,
 * output_gpios), the lines through libgpiod, requests routed to it, and
 * the edges of its inputs published as they happen (each input's event
 * descriptor is in the connector's poll).
 */
#include "connector.h"
#include "gpio.h"
#include "gpiod_backend.h"

#include <errno.h>
#include <string.h>

static void publish(void *ctx, const char *topic, const char *payload, size_t len)
{
    (void)ctx;
    (void)conn_publish(topic, payload, len);
}

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    char why[300];
    if (gpio_handle(ctx, ev->topic, ev->payload, ev->payload_len, why, sizeof why))
        return SEDGE_OK;
    return sedge_result_error(res, why);
}

static size_t fds(void *ctx, struct pollfd *p, size_t cap)
{
    gpio_t *g = ctx;
    size_t n = 0;
    for (size_t i = 0; i < g->pin_count && n < cap; i++)
        if (g->pins[i].event_fd >= 0)
            p[n++] = (struct pollfd){.fd = g->pins[i].event_fd, .events = POLLIN};
    return n;
}

static void ready(void *ctx, const struct pollfd *p, size_t n)
{
    gpio_t *g = ctx;
    for (size_t k = 0; k < n; k++) {
        if (!p[k].revents)
            continue;
        for (size_t i = 0; i < g->pin_count; i++)
            if (g->pins[i].event_fd == p[k].fd)
                gpio_on_event(g, i);
    }
}

int main(void)
{
    json_t *params;
    if (conn_parameters(&params)) {
        conn_log("error", "cannot read the parameters: %s", sedge_last_error());
        return 1;
    }
    static gpio_t g;
    g.publish = publish;
    g.thing = conn_thing_name();
    char why[300];
    const char *chip = conn_param_str(params, "chip", "gpiochip0");
    if (!gpio_parse_pins(&g, conn_param_str(params, "input_gpios", NULL),
                         conn_param_str(params, "output_gpios", NULL), why, sizeof why)) {
        conn_log("error", "%s", why);
        return 1;
    }
    gpiod_backend_t *b = gpiod_backend_open(chip, &g.backend);
    if (!b) {
        conn_log("error", "cannot open GPIO chip %s: %s (declare its device, e.g. "
                          "/dev/gpiochip0, in the connector's resources)", chip, strerror(errno));
        return 1;
    }
    if (!gpio_setup(&g, why, sizeof why)) {
        conn_log("error", "%s", why);
        gpiod_backend_close(b);
        return 1;
    }
    conn_ops_t ops = {.handle = handle, .fds = fds, .ready = ready, .ctx = &g};
    sedge_err err = conn_run(&ops);
    conn_log(err == SEDGE_ERR_CLOSED ? "info" : "error", "stopping: %s", sedge_last_error());
    gpiod_backend_close(b);
    json_decref(params);
    return err == SEDGE_ERR_CLOSED ? 0 : 1;
}
