/*
 * gpiod_backend: gpio_backend_t over libgpiod for one chip.
 */
#ifndef SEDGE_GPIOD_BACKEND_H
#define SEDGE_GPIOD_BACKEND_H

#include "gpio.h"

typedef struct gpiod_backend gpiod_backend_t;

/* Open `chip` (a name such as gpiochip0, a path, a label or a number) and
 * fill `out`; NULL with errno when it cannot be opened. */
gpiod_backend_t *gpiod_backend_open(const char *chip, gpio_backend_t *out);
void gpiod_backend_close(gpiod_backend_t *b);

#endif
