/*
 * notify: systemd's service notifications (sd_notify's protocol: one
 * datagram to $NOTIFY_SOCKET) — READY=1, RELOADING=1, STOPPING=1 and the
 * watchdog's WATCHDOG=1 — without linking libsystemd: the protocol is one
 * sendto, and sedged then runs the same with or without systemd, on any
 * init, in a container or cross-built for a board whose sysroot has no
 * libsystemd.
 */
#ifndef SEDGE_NOTIFY_H
#define SEDGE_NOTIFY_H

#include "base/base.h"

/* Send `state` ("READY=1", ...) when $NOTIFY_SOCKET is set; a failure is
 * logged, never fatal. */
void notify_send(const char *state);
/* The watchdog's interval in microseconds ($WATCHDOG_USEC, for this
 * process by $WATCHDOG_PID when that is set), 0 when there is none. */
uint64_t notify_watchdog_usec(void);

#endif
