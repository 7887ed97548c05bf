/*
 * port: one serial port, opened and configured with libserialport when it
 * knows the port (a UART or USB adapter the kernel lists under
 * /sys/class/tty), else with termios directly: libserialport 0.1.1 cannot
 * open a pseudo-terminal (socat's or ser2net's virtual ports), which has
 * no such entry. Either way the bytes then go through the descriptor,
 * with poll() for the timeouts.
 */
#ifndef SEDGE_SERIAL_PORT_H
#define SEDGE_SERIAL_PORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int fd;                /* -1: closed */
    struct sp_port *sp;    /* NULL when opened with termios */
} serial_port_t;

/* Open `path` with the parameters baud_rate, data_bits, parity,
 * stop_bits, rtscts and xonxoff. false: `why` says what failed. */
bool serial_port_open(serial_port_t *p, const char *path, json_t *params, char *why,
                      size_t why_len);
void serial_port_close(serial_port_t *p);
/* Read up to `want` bytes, waiting at most timeout_ms for them all (0:
 * only what has arrived). The count, or -1 with errno (the port failed). */
long serial_port_read(serial_port_t *p, uint8_t *buf, size_t want, uint32_t timeout_ms);
/* Write all of `data` within timeout_ms; the count written, or -1. */
long serial_port_write(serial_port_t *p, const uint8_t *data, size_t len, uint32_t timeout_ms);

#endif
